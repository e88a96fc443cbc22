//! A fault-injecting proxy for the DynamoDB endpoint: between the processor and the emulator it
//! answers a share of requests with what DynamoDB and networks do on bad days.
//!
//! Faults hit data-plane calls (PutItem, GetItem) only, so the stack can still be set up and
//! read back through the proxy-free endpoint. The lost-ack fault forwards the request, lets the
//! write land, and then tells the client it failed: the case that tests idempotency.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Result;
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio::sync::Mutex;

use crate::http::{Answer, Reset, Server, Upstream};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// 400 ProvisionedThroughputExceededException.
    Throughput,
    /// 400 ThrottlingException.
    Throttling,
    /// 500 InternalServerError.
    ServerError,
    /// The answer arrives after the client's per-attempt timeout.
    Latency,
    /// The connection closes without an answer.
    Reset,
    /// The request reaches DynamoDB and succeeds, but the client sees a 500.
    LostAck,
}

const FAULTS: [Fault; 6] = [
    Fault::Throughput,
    Fault::Throttling,
    Fault::ServerError,
    Fault::Latency,
    Fault::Reset,
    Fault::LostAck,
];

/// How many of each fault were injected, and how many requests passed untouched.
#[derive(Debug, Default)]
pub struct FaultStats {
    pub passed: AtomicU64,
    pub injected: [AtomicU64; 6],
}

impl FaultStats {
    pub fn injected_total(&self) -> u64 {
        self.injected
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .sum()
    }

    pub fn summary(&self) -> String {
        let counts: Vec<String> = FAULTS
            .iter()
            .zip(&self.injected)
            .map(|(fault, count)| format!("{fault:?} {}", count.load(Ordering::Relaxed)))
            .collect();
        format!(
            "{} requests passed, {} faults injected ({})",
            self.passed.load(Ordering::Relaxed),
            self.injected_total(),
            counts.join(", ")
        )
    }
}

pub struct FaultProxy {
    pub endpoint: String,
    pub stats: Arc<FaultStats>,
    state: Arc<State>,
    _server: Server,
}

/// Which requests the proxy faults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    /// A random `rate` of every PutItem and GetItem, each fault drawn at random.
    DataPlane,
    /// Every PutItem of one kind, as a server error, until lifted: a store that takes a
    /// trade's guard and then never its record, or stores it and never its audit entry.
    Writes(Writes),
}

/// The kinds of write [`FaultProxy::failing`] can fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Writes {
    /// Market-data records; guards (which carry no symbol) pass.
    Records,
    /// Audit entries.
    Audits,
}

struct State {
    upstream: Upstream,
    scope: Scope,
    lifted: AtomicBool,
    rate: f64,
    latency: Duration,
    rng: Mutex<ChaCha8Rng>,
    stats: Arc<FaultStats>,
}

impl FaultProxy {
    /// The processor's own SDK settings (Lambda timeouts and retries), with every call going
    /// through this proxy.
    pub fn processor_loader(&self) -> aws_config::ConfigLoader {
        crate::aws::emulated(processor::aws::loader(), &self.endpoint)
    }

    /// Proxies to `upstream`, faulting `rate` (0–1) of the data-plane requests; a latency
    /// fault holds the answer for `latency`.
    pub async fn start(upstream: &str, rate: f64, latency: Duration, seed: u64) -> Result<Self> {
        Self::start_scoped(upstream, Scope::DataPlane, rate, latency, seed).await
    }

    /// Proxies to `upstream`, failing every write of `writes` with a server error (everything
    /// else passes) until [`lift`](Self::lift) is called.
    pub async fn failing(upstream: &str, writes: Writes) -> Result<Self> {
        Self::start_scoped(upstream, Scope::Writes(writes), 1.0, Duration::ZERO, 0).await
    }

    /// Ends the faults of [`failing`](Self::failing).
    pub fn lift(&self) {
        self.state.lifted.store(true, Ordering::Relaxed);
    }

    async fn start_scoped(
        upstream: &str,
        scope: Scope,
        rate: f64,
        latency: Duration,
        seed: u64,
    ) -> Result<Self> {
        let stats = Arc::new(FaultStats::default());
        let state = Arc::new(State {
            upstream: Upstream::new(upstream),
            scope,
            lifted: AtomicBool::new(false),
            rate: rate.clamp(0.0, 1.0),
            latency,
            rng: Mutex::new(ChaCha8Rng::seed_from_u64(seed)),
            stats: stats.clone(),
        });
        let handler_state = state.clone();
        let server =
            Server::start("fault proxy", move |req| handle(handler_state.clone(), req)).await?;
        Ok(FaultProxy {
            endpoint: server.url(),
            stats,
            state,
            _server: server,
        })
    }
}

async fn handle(state: Arc<State>, req: Request<Incoming>) -> Answer {
    let target = req
        .headers()
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let data_plane = target.ends_with(".PutItem") || target.ends_with(".GetItem");
    let (parts, body) = req.into_parts();
    let body = crate::http::body(body).await;
    let fault = match state.scope {
        Scope::DataPlane if data_plane => {
            let mut rng = state.rng.lock().await;
            rng.random_bool(state.rate)
                .then(|| FAULTS[rng.random_range(0..FAULTS.len())])
        }
        Scope::Writes(writes)
            if target.ends_with(".PutItem")
                && !state.lifted.load(Ordering::Relaxed)
                && writes_of(&body) == Some(writes) =>
        {
            Some(Fault::ServerError)
        }
        _ => None,
    };
    let Some(fault) = fault else {
        state.stats.passed.fetch_add(1, Ordering::Relaxed);
        return Ok(state.upstream.forward_read(parts, body).await);
    };
    if let Some(index) = FAULTS.iter().position(|f| *f == fault) {
        state.stats.injected[index].fetch_add(1, Ordering::Relaxed);
    }
    match fault {
        Fault::Throughput => Ok(error(
            StatusCode::BAD_REQUEST,
            "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
        )),
        Fault::Throttling => Ok(error(
            StatusCode::BAD_REQUEST,
            "com.amazonaws.dynamodb.v20120810#ThrottlingException",
        )),
        Fault::ServerError => Ok(error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "com.amazonaws.dynamodb.v20120810#InternalServerError",
        )),
        Fault::Latency => {
            // The request still lands late: a timed-out write may have been applied.
            tokio::time::sleep(state.latency).await;
            Ok(state.upstream.forward_read(parts, body).await)
        }
        Fault::Reset => Err(Reset),
        Fault::LostAck => {
            let _ = state.upstream.forward_read(parts, body).await;
            Ok(error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "com.amazonaws.dynamodb.v20120810#InternalServerError",
            ))
        }
    }
}

/// What a PutItem writes: a record is an item with a symbol in a market-data table (a guard has
/// none), an audit entry is anything in an audit table.
fn writes_of(body: &[u8]) -> Option<Writes> {
    let request = serde_json::from_slice::<serde_json::Value>(body).ok()?;
    let table = request["TableName"].as_str()?;
    if table.starts_with(names::AUDIT_TRAIL_TABLE_PREFIX) {
        Some(Writes::Audits)
    } else if table.starts_with(names::MARKET_DATA_TABLE_PREFIX)
        && request["Item"].get(names::SYMBOL).is_some()
    {
        Some(Writes::Records)
    } else {
        None
    }
}

fn error(status: StatusCode, kind: &str) -> Response<Full<Bytes>> {
    let body = format!(r#"{{"__type":"{kind}","message":"injected by the fault proxy"}}"#);
    Response::builder()
        .status(status)
        .header("content-type", "application/x-amz-json-1.0")
        .body(Full::new(Bytes::from(body)))
        .unwrap_or_default()
}
