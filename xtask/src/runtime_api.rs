//! A Lambda Runtime API on loopback: the `next`, `response` and `error` calls (and the init
//! error) a custom runtime such as `bootstrap` makes, enough to drive the real binary through
//! invocations without Lambda.
//!
//! Self-contained on purpose (only external crates, no `crate::` paths): the processor's
//! integration tests include this same file, so there is one emulator in the workspace.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::{Mutex, mpsc};

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

/// The emulator; dropping it stops accepting connections.
pub struct RuntimeApi {
    pub addr: SocketAddr,
    invocations: mpsc::UnboundedSender<(String, Vec<u8>)>,
    replies: mpsc::UnboundedReceiver<Reply>,
    server: tokio::task::JoinHandle<()>,
}

struct State {
    pending: Mutex<mpsc::UnboundedReceiver<(String, Vec<u8>)>>,
    replies: mpsc::UnboundedSender<Reply>,
}

impl RuntimeApi {
    /// Listens on a free port of 127.0.0.1.
    pub async fn start() -> std::io::Result<RuntimeApi> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (invocations, pending) = mpsc::unbounded_channel();
        let (reply_tx, replies) = mpsc::unbounded_channel();
        let state = Arc::new(State {
            pending: Mutex::new(pending),
            replies: reply_tx,
        });
        let server = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let state = state.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| serve(state.clone(), req));
                    // A runtime that hangs up mid-request is not the emulator's failure.
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(RuntimeApi {
            addr,
            invocations,
            replies,
            server,
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
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn serve(
    state: Arc<State>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| String::from_utf8_lossy(&b.to_bytes()).into_owned())
        .unwrap_or_default();
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let reply = |status: StatusCode, body: &str| {
        let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
        *response.status_mut() = status;
        response
    };
    match (method, parts.as_slice()) {
        (Method::GET, ["2018-06-01", "runtime", "invocation", "next"]) => {
            let next = state.pending.lock().await.recv().await;
            let Some((request_id, payload)) = next else {
                return Ok(reply(StatusCode::GONE, "no more invocations"));
            };
            let deadline = chrono::Utc::now().timestamp_millis() + DEADLINE_MS;
            let response = Response::builder()
                .status(StatusCode::OK)
                .header("Lambda-Runtime-Aws-Request-Id", request_id)
                .header("Lambda-Runtime-Deadline-Ms", deadline.to_string())
                .header("Lambda-Runtime-Invoked-Function-Arn", FUNCTION_ARN)
                .header(
                    "Lambda-Runtime-Trace-Id",
                    "Root=1-00000000-000000000000000000000000",
                )
                .body(Full::new(Bytes::from(payload)));
            Ok(response.unwrap_or_else(|_| {
                reply(StatusCode::INTERNAL_SERVER_ERROR, "bad request id header")
            }))
        }
        (Method::POST, ["2018-06-01", "runtime", "invocation", id, "response"]) => {
            let _ = state.replies.send(Reply::Response {
                request_id: id.to_string(),
                body,
            });
            Ok(reply(StatusCode::ACCEPTED, "{}"))
        }
        (Method::POST, ["2018-06-01", "runtime", "invocation", id, "error"]) => {
            let _ = state.replies.send(Reply::Error {
                request_id: id.to_string(),
                body,
            });
            Ok(reply(StatusCode::ACCEPTED, "{}"))
        }
        (Method::POST, ["2018-06-01", "runtime", "init", "error"]) => {
            let _ = state.replies.send(Reply::InitError { body });
            Ok(reply(StatusCode::ACCEPTED, "{}"))
        }
        _ => Ok(reply(StatusCode::NOT_FOUND, "unknown runtime API path")),
    }
}
