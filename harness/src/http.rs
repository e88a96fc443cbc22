//! The one loopback HTTP server of the harness, and the one way it forwards a request: the
//! Runtime API emulator, the fault proxy and the benchmark's connection-counting front all
//! run on it.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use anyhow::{Context, Result};
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::task::JoinSet;

/// A handler's answer: a response, or [`Reset`] to close the connection without one.
pub type Answer = std::result::Result<Response<Full<Bytes>>, Reset>;

/// Closes the connection instead of answering, as a network failure would.
#[derive(Debug, thiserror::Error)]
#[error("connection reset by the loopback server")]
pub struct Reset;

/// A server on a free port of 127.0.0.1; dropping it stops it and ends its connections.
pub struct Server {
    pub addr: SocketAddr,
    accepted: Arc<Mutex<Vec<Instant>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    /// Serves every request of every connection with `handler`. `what` names the server in
    /// errors.
    pub async fn start<H, F>(what: &str, handler: H) -> Result<Server>
    where
        H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
        F: Future<Output = Answer> + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .with_context(|| format!("binding the {what} to a loopback port"))?;
        let addr = listener
            .local_addr()
            .with_context(|| format!("reading the {what}'s address"))?;
        let accepted = Arc::new(Mutex::new(Vec::new()));
        let log = accepted.clone();
        let task = tokio::spawn(async move {
            // Connections live in this task's set, so stopping the server ends them too.
            let mut connections = JoinSet::new();
            while let Ok((stream, _)) = listener.accept().await {
                lock(&log).push(Instant::now());
                let handler = handler.clone();
                connections.spawn(async move {
                    let service = service_fn(handler);
                    // A client that hangs up mid-request is not the server's failure.
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(Server {
            addr,
            accepted,
            task,
        })
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// When each client connection was accepted, in order.
    pub fn accepted(&self) -> Vec<Instant> {
        lock(&self.accepted).clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A response with `status` and `body`.
pub fn response(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response
}

/// Reads a request's body in full; a body that breaks off reads as what arrived, i.e. empty.
pub async fn body(body: Incoming) -> Bytes {
    body.collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default()
}

/// Where a proxy sends what it does not answer itself.
#[derive(Clone)]
pub struct Upstream {
    base: String,
    client: Client<HttpConnector, Full<Bytes>>,
}

impl Upstream {
    pub fn new(base: &str) -> Upstream {
        Upstream {
            base: base.trim_end_matches('/').to_string(),
            client: Client::builder(TokioExecutor::new()).build_http(),
        }
    }

    /// The request, method, path and headers as they came, and upstream's answer read in full;
    /// 502 when upstream fails.
    pub async fn forward(&self, req: Request<Incoming>) -> Response<Full<Bytes>> {
        let (parts, body) = req.into_parts();
        let body = match body.collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(err) => return bad_gateway(&err.to_string()),
        };
        self.forward_read(parts, body).await
    }

    /// [`forward`](Self::forward) for a request whose body has been read already.
    pub async fn forward_read(
        &self,
        parts: hyper::http::request::Parts,
        body: Bytes,
    ) -> Response<Full<Bytes>> {
        let path = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/");
        let mut builder = Request::builder()
            .method(parts.method)
            .uri(format!("{}{path}", self.base));
        for (name, value) in &parts.headers {
            builder = builder.header(name, value);
        }
        let request = match builder.body(Full::new(body)) {
            Ok(request) => request,
            Err(err) => return bad_gateway(&err.to_string()),
        };
        match self.client.request(request).await {
            Ok(answer) => {
                let (parts, body) = answer.into_parts();
                match body.collect().await {
                    Ok(collected) => Response::from_parts(parts, Full::new(collected.to_bytes())),
                    Err(err) => bad_gateway(&err.to_string()),
                }
            }
            Err(err) => bad_gateway(&err.to_string()),
        }
    }
}

fn bad_gateway(message: &str) -> Response<Full<Bytes>> {
    response(
        StatusCode::BAD_GATEWAY,
        format!("loopback proxy: upstream failed: {message}"),
    )
}

/// A poisoned lock only means a connection task panicked; its data is still what was recorded.
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn serves_each_connection_and_records_it_and_a_reset_closes_it() {
        let server = Server::start("test server", |req: Request<Incoming>| async move {
            if req.uri().path() == "/reset" {
                return Err(Reset);
            }
            let text = body(req.into_body()).await;
            Ok(response(StatusCode::OK, text))
        })
        .await
        .expect("starts");
        let client: Client<HttpConnector, Full<Bytes>> =
            Client::builder(TokioExecutor::new()).build_http();
        let echo = client
            .request(
                Request::post(format!("{}/echo", server.url()))
                    .body(Full::new(Bytes::from_static(b"ping")))
                    .expect("request"),
            )
            .await
            .expect("answered");
        assert_eq!(echo.status(), StatusCode::OK);
        assert_eq!(body(echo.into_body()).await, Bytes::from_static(b"ping"));
        let reset = client
            .request(
                Request::get(format!("{}/reset", server.url()))
                    .body(Full::new(Bytes::new()))
                    .expect("request"),
            )
            .await;
        assert!(reset.is_err(), "a reset must not answer");
        assert!(!server.accepted().is_empty());
    }
}
