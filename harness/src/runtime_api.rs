//! A Lambda Runtime API on loopback: the `next`, `response` and `error` calls (and the init
//! error) a custom runtime such as `bootstrap` makes, enough to drive the real binary through
//! invocations without Lambda. It notes when each call arrives, for the start-up benchmark.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::Result;
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use tokio::sync::mpsc;

use crate::http::{self, Answer, Server, lock};

/// The function ARN the emulator reports to the runtime.
pub const FUNCTION_ARN: &str =
    "arn:aws:lambda:us-east-1:123456789012:function:market-processor-test";
/// How long the runtime is told it has per invocation.
const DEADLINE_MS: i64 = 30_000;

/// What the runtime reported for an invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Response { request_id: String, body: String },
    Error { request_id: String, body: String },
    InitError { body: String },
}

/// The emulator; dropping it stops it. Once the queued invocations are spent, `next` waits, as
/// Lambda's does between invocations.
pub struct RuntimeApi {
    pub addr: SocketAddr,
    invocations: mpsc::UnboundedSender<(String, Vec<u8>)>,
    replies: mpsc::UnboundedReceiver<Reply>,
    state: Arc<State>,
    _server: Server,
}

struct State {
    pending: tokio::sync::Mutex<mpsc::UnboundedReceiver<(String, Vec<u8>)>>,
    replies: mpsc::UnboundedSender<Reply>,
    /// Arrival of each `next` request, and of each response or error.
    nexts: Mutex<Vec<Instant>>,
    replied: Mutex<Vec<Instant>>,
}

impl RuntimeApi {
    /// Listens on a free port of 127.0.0.1.
    pub async fn start() -> Result<RuntimeApi> {
        let (invocations, pending) = mpsc::unbounded_channel();
        let (reply_tx, replies) = mpsc::unbounded_channel();
        let state = Arc::new(State {
            pending: tokio::sync::Mutex::new(pending),
            replies: reply_tx,
            nexts: Mutex::new(Vec::new()),
            replied: Mutex::new(Vec::new()),
        });
        let served = state.clone();
        let server = Server::start("Runtime API emulator", move |req| {
            serve(served.clone(), req)
        })
        .await?;
        Ok(RuntimeApi {
            addr: server.addr,
            invocations,
            replies,
            state,
            _server: server,
        })
    }

    /// Queues one invocation; the runtime receives it on its next poll.
    pub fn invoke(&self, request_id: &str, payload: &str) {
        self.invoke_bytes(request_id, payload.as_bytes());
    }

    /// Queues an invocation whose payload is any bytes, UTF-8 or not.
    pub fn invoke_bytes(&self, request_id: &str, payload: &[u8]) {
        // The receiver lives in the server state, which lives as long as `self`.
        let _ = self
            .invocations
            .send((request_id.to_string(), payload.to_vec()));
    }

    /// The next reply of the runtime, in the order they arrive.
    pub async fn reply(&mut self) -> Option<Reply> {
        self.replies.recv().await
    }

    /// When each `next` request arrived so far.
    pub fn nexts(&self) -> Vec<Instant> {
        lock(&self.state.nexts).clone()
    }

    /// When each response or error arrived so far.
    pub fn replied(&self) -> Vec<Instant> {
        lock(&self.state.replied).clone()
    }
}

async fn serve(state: Arc<State>, req: Request<Incoming>) -> Answer {
    let arrived = Instant::now();
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    // The body is read in full before the reply, as the real Runtime API does.
    let body = String::from_utf8_lossy(&http::body(req.into_body()).await).into_owned();
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let accepted = || http::response(StatusCode::ACCEPTED, "{}");
    let reply = match (method, parts.as_slice()) {
        (Method::GET, ["2018-06-01", "runtime", "invocation", "next"]) => {
            lock(&state.nexts).push(arrived);
            let next = state.pending.lock().await.recv().await;
            let Some((request_id, payload)) = next else {
                return Ok(http::response(StatusCode::GONE, "no more invocations"));
            };
            return Ok(invocation(&request_id, payload));
        }
        (Method::POST, ["2018-06-01", "runtime", "invocation", id, "response"]) => {
            Reply::Response {
                request_id: id.to_string(),
                body,
            }
        }
        (Method::POST, ["2018-06-01", "runtime", "invocation", id, "error"]) => Reply::Error {
            request_id: id.to_string(),
            body,
        },
        (Method::POST, ["2018-06-01", "runtime", "init", "error"]) => Reply::InitError { body },
        _ => {
            return Ok(http::response(
                StatusCode::NOT_FOUND,
                "unknown runtime API path",
            ));
        }
    };
    if !matches!(reply, Reply::InitError { .. }) {
        lock(&state.replied).push(arrived);
    }
    let _ = state.replies.send(reply);
    Ok(accepted())
}

/// The answer to `next`: the payload and the headers Lambda sets.
fn invocation(request_id: &str, payload: Vec<u8>) -> Response<Full<Bytes>> {
    let deadline = chrono::Utc::now().timestamp_millis() + DEADLINE_MS;
    Response::builder()
        .status(StatusCode::OK)
        .header("Lambda-Runtime-Aws-Request-Id", request_id)
        .header("Lambda-Runtime-Deadline-Ms", deadline.to_string())
        .header("Lambda-Runtime-Invoked-Function-Arn", FUNCTION_ARN)
        .header(
            "Lambda-Runtime-Trace-Id",
            "Root=1-00000000-000000000000000000000000",
        )
        .body(Full::new(Bytes::from(payload)))
        .unwrap_or_else(|_| {
            http::response(StatusCode::INTERNAL_SERVER_ERROR, "bad request id header")
        })
}
