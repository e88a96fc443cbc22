//! A Lambda Runtime API on loopback: the `next`, `response` and `error` calls that a custom
//! runtime such as `bootstrap` makes, enough to drive the real binary through invocations.

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

/// What the runtime reported for an invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Response { request_id: String, body: String },
    Error { request_id: String, body: String },
    InitError { body: String },
}

pub struct RuntimeApi {
    pub addr: SocketAddr,
    invocations: mpsc::UnboundedSender<(String, String)>,
    replies: mpsc::UnboundedReceiver<Reply>,
}

struct State {
    pending: Mutex<mpsc::UnboundedReceiver<(String, String)>>,
    replies: mpsc::UnboundedSender<Reply>,
}

impl RuntimeApi {
    pub async fn start() -> RuntimeApi {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (invocations, pending) = mpsc::unbounded_channel();
        let (reply_tx, replies) = mpsc::unbounded_channel();
        let state = Arc::new(State {
            pending: Mutex::new(pending),
            replies: reply_tx,
        });
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let state = state.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| serve(state.clone(), req));
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        RuntimeApi {
            addr,
            invocations,
            replies,
        }
    }

    /// Queues one invocation; the runtime receives it on its next poll.
    pub fn invoke(&self, request_id: &str, payload: &str) {
        self.invocations
            .send((request_id.to_string(), payload.to_string()))
            .expect("server running");
    }

    pub async fn reply(&mut self) -> Option<Reply> {
        self.replies.recv().await
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
        Response::builder()
            .status(status)
            .body(Full::new(Bytes::from(body.to_string())))
            .unwrap_or_default()
    };
    match (method, parts.as_slice()) {
        (Method::GET, ["2018-06-01", "runtime", "invocation", "next"]) => {
            let next = state.pending.lock().await.recv().await;
            let Some((request_id, payload)) = next else {
                return Ok(reply(StatusCode::GONE, "no more invocations"));
            };
            let deadline = chrono::Utc::now().timestamp_millis() + 30_000;
            Ok(Response::builder()
                .status(StatusCode::OK)
                .header("Lambda-Runtime-Aws-Request-Id", request_id)
                .header("Lambda-Runtime-Deadline-Ms", deadline.to_string())
                .header(
                    "Lambda-Runtime-Invoked-Function-Arn",
                    "arn:aws:lambda:us-east-1:123456789012:function:market-processor-test",
                )
                .header(
                    "Lambda-Runtime-Trace-Id",
                    "Root=1-00000000-000000000000000000000000",
                )
                .body(Full::new(Bytes::from(payload)))
                .unwrap_or_default())
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
