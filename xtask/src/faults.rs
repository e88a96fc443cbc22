//! A fault-injecting proxy for the DynamoDB endpoint: between the processor and the emulator it
//! answers a share of requests with what DynamoDB and networks do on bad days.
//!
//! Faults hit data-plane calls (PutItem, GetItem) only, so the stack can still be set up and
//! read back through the proxy-free endpoint. The lost-ack fault forwards the request, lets the
//! write land, and then tells the client it failed: the case that tests idempotency.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio::net::TcpListener;
use tokio::sync::Mutex;

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
    server: tokio::task::JoinHandle<()>,
}

struct State {
    upstream: String,
    rate: f64,
    latency: Duration,
    rng: Mutex<ChaCha8Rng>,
    client: Client<HttpConnector, Full<Bytes>>,
    stats: Arc<FaultStats>,
}

impl FaultProxy {
    /// The processor's own SDK settings (Lambda timeouts and retries), with every call going
    /// through this proxy.
    pub fn processor_loader(&self) -> aws_config::ConfigLoader {
        processor::aws::loader()
            .endpoint_url(&self.endpoint)
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
                "test",
                "test",
                None,
                None,
                "fault-proxy",
            ))
    }

    /// Proxies to `upstream`, faulting `rate` (0–1) of the data-plane requests; a latency
    /// fault holds the answer for `latency`.
    pub async fn start(upstream: &str, rate: f64, latency: Duration, seed: u64) -> Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding the fault proxy")?;
        let addr: SocketAddr = listener.local_addr().context("fault proxy address")?;
        let stats = Arc::new(FaultStats::default());
        let state = Arc::new(State {
            upstream: upstream.trim_end_matches('/').to_string(),
            rate: rate.clamp(0.0, 1.0),
            latency,
            rng: Mutex::new(ChaCha8Rng::seed_from_u64(seed)),
            client: Client::builder(TokioExecutor::new()).build_http(),
            stats: stats.clone(),
        });
        let server = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let state = state.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| handle(state.clone(), req));
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(FaultProxy {
            endpoint: format!("http://{addr}"),
            stats,
            server,
        })
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Why the proxy closed a connection without answering.
#[derive(Debug, thiserror::Error)]
#[error("connection reset by the fault proxy")]
struct InjectedReset;

async fn handle(
    state: Arc<State>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, InjectedReset> {
    let target = req
        .headers()
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let data_plane = target.ends_with(".PutItem") || target.ends_with(".GetItem");
    let fault = if data_plane {
        let mut rng = state.rng.lock().await;
        rng.random_bool(state.rate)
            .then(|| FAULTS[rng.random_range(0..FAULTS.len())])
    } else {
        None
    };
    let Some(fault) = fault else {
        state.stats.passed.fetch_add(1, Ordering::Relaxed);
        return Ok(forward(&state, req).await);
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
            Ok(forward(&state, req).await)
        }
        Fault::Reset => Err(InjectedReset),
        Fault::LostAck => {
            let _ = forward(&state, req).await;
            Ok(error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "com.amazonaws.dynamodb.v20120810#InternalServerError",
            ))
        }
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

async fn forward(state: &State, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(err) => return bad_gateway(&err.to_string()),
    };
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let mut builder = Request::builder()
        .method(parts.method)
        .uri(format!("{}{path}", state.upstream));
    for (name, value) in &parts.headers {
        builder = builder.header(name, value);
    }
    let request = match builder.body(Full::new(body)) {
        Ok(request) => request,
        Err(err) => return bad_gateway(&err.to_string()),
    };
    match state.client.request(request).await {
        Ok(response) => {
            let (parts, body) = response.into_parts();
            match body.collect().await {
                Ok(collected) => Response::from_parts(parts, Full::new(collected.to_bytes())),
                Err(err) => bad_gateway(&err.to_string()),
            }
        }
        Err(err) => bad_gateway(&err.to_string()),
    }
}

fn bad_gateway(message: &str) -> Response<Full<Bytes>> {
    Response::builder()
        .status(StatusCode::BAD_GATEWAY)
        .body(Full::new(Bytes::from(format!(
            "fault proxy: upstream failed: {message}"
        ))))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::moto::Moto;

    /// Each fault reaches the SDK as the error DynamoDB or the network would give.
    #[tokio::test]
    async fn every_request_faulted_is_an_error_and_a_lost_ack_still_lands() {
        let root = crate::workspace_root();
        let moto = Moto::start(&root).expect("moto");
        let proxy = FaultProxy::start(&moto.endpoint, 1.0, Duration::from_millis(2500), 3)
            .await
            .expect("proxy");
        let direct = crate::local::local_sdk_config(&moto.endpoint).await;
        let direct = aws_sdk_dynamodb::Client::new(&direct);
        let table = "faults-test";
        create_table(&direct, table).await;

        // The processor's own client: Lambda timeouts, no SDK retries, so each fault shows.
        let config = proxy
            .processor_loader()
            .retry_config(aws_config::retry::RetryConfig::disabled())
            .load()
            .await;
        let client = aws_sdk_dynamodb::Client::new(&config);
        for n in 0..40 {
            let result = client
                .put_item()
                .table_name(table)
                .item(
                    "event_id",
                    aws_sdk_dynamodb::types::AttributeValue::S(format!("e{n}")),
                )
                .item(
                    "timestamp",
                    aws_sdk_dynamodb::types::AttributeValue::S("t".into()),
                )
                .send()
                .await;
            assert!(
                result.is_err(),
                "request {n} passed a proxy that faults all"
            );
        }
        let injected: Vec<u64> = proxy
            .stats
            .injected
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect();
        assert!(injected.iter().all(|n| *n > 0), "{}", proxy.stats.summary());

        // Lost acks and late answers reached the table although the client saw failures.
        let landed = direct
            .scan()
            .table_name(table)
            .send()
            .await
            .expect("scan")
            .count;
        let expected_at_least = injected[5];
        assert!(
            landed as u64 >= expected_at_least,
            "{landed} items landed, {expected_at_least} lost acks"
        );
    }

    /// A sustained fault rate must not switch the processor's retries off. The SDK's default
    /// retry quota empties after some hundreds of faulted calls and from then on every first
    /// failure is final; the processor's client keeps its attempts per call throughout.
    #[tokio::test]
    async fn sustained_faults_do_not_exhaust_the_processors_retries() {
        let root = crate::workspace_root();
        let moto = Moto::start(&root).expect("moto");
        // Late answers arrive well inside the attempt timeout, so five of the six faults are
        // errors: 75 % of attempts fail, three in a row 42 % of the time.
        let proxy = FaultProxy::start(&moto.endpoint, 0.9, Duration::from_millis(5), 11)
            .await
            .expect("proxy");
        let direct =
            aws_sdk_dynamodb::Client::new(&crate::local::local_sdk_config(&moto.endpoint).await);
        let table = "retry-quota-test";
        create_table(&direct, table).await;
        let config = proxy.processor_loader().load().await;

        // The second half of the calls, once a default quota would be long empty.
        const CALLS: usize = 600;
        let late = |outcomes: Vec<bool>| outcomes[CALLS / 2..].iter().filter(|f| **f).count();
        let processors =
            late(failures(processor::aws::dynamodb_client(&config), table, CALLS).await);
        let defaults = late(failures(aws_sdk_dynamodb::Client::new(&config), table, CALLS).await);
        // About 125 of 300 fail with the processor's client, 200 or more with the default.
        assert!(
            processors < 175,
            "{processors} of the last {} calls failed with the processor's client; {}",
            CALLS / 2,
            proxy.stats.summary()
        );
        assert!(
            defaults > 175,
            "the SDK's default quota failed only {defaults} of the last {} calls: if it no \
             longer runs dry, processor::aws::dynamodb_client may not be needed",
            CALLS / 2
        );
    }

    /// PutItem `calls` times, 8 at once; whether each failed, in the order they ended.
    async fn failures(client: aws_sdk_dynamodb::Client, table: &str, calls: usize) -> Vec<bool> {
        let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let outcomes = Arc::new(std::sync::Mutex::new(Vec::with_capacity(calls)));
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..8 {
            let (client, next, outcomes) = (client.clone(), next.clone(), outcomes.clone());
            let table = table.to_string();
            tasks.spawn(async move {
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n >= calls {
                        break;
                    }
                    let failed = client
                        .put_item()
                        .table_name(&table)
                        .item(
                            "event_id",
                            aws_sdk_dynamodb::types::AttributeValue::S(format!("q{n}")),
                        )
                        .item(
                            "timestamp",
                            aws_sdk_dynamodb::types::AttributeValue::S("t".into()),
                        )
                        .send()
                        .await
                        .is_err();
                    outcomes.lock().expect("outcomes").push(failed);
                }
            });
        }
        while tasks.join_next().await.is_some() {}
        outcomes.lock().expect("outcomes").clone()
    }

    /// A table with the market-data key schema, created directly in moto.
    async fn create_table(direct: &aws_sdk_dynamodb::Client, table: &str) {
        let schema = processor::names::MARKET_DATA_SCHEMA;
        direct
            .create_table()
            .table_name(table)
            .billing_mode(aws_sdk_dynamodb::types::BillingMode::PayPerRequest)
            .key_schema(key(schema.hash_key, aws_sdk_dynamodb::types::KeyType::Hash))
            .key_schema(key(
                schema.range_key,
                aws_sdk_dynamodb::types::KeyType::Range,
            ))
            .attribute_definitions(attr(schema.hash_key))
            .attribute_definitions(attr(schema.range_key))
            .send()
            .await
            .expect("table");
    }

    fn key(
        name: &str,
        kind: aws_sdk_dynamodb::types::KeyType,
    ) -> aws_sdk_dynamodb::types::KeySchemaElement {
        aws_sdk_dynamodb::types::KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
            .expect("key")
    }

    fn attr(name: &str) -> aws_sdk_dynamodb::types::AttributeDefinition {
        aws_sdk_dynamodb::types::AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(aws_sdk_dynamodb::types::ScalarAttributeType::S)
            .build()
            .expect("attribute")
    }
}
