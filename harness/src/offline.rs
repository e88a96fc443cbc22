//! A processor whose DynamoDB client never touches the network, and the session to feed it:
//! what the hot-path benchmark (`benches/hot_path.rs`) and the `hot_path` example that
//! `cargo xtask bench` runs measure.

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use chrono::{DateTime, Utc};
use names::Settings;
use processor::Processor;

/// Answers every request with DynamoDB's empty success reply. Everything before the socket
/// still runs: building the request, JSON serialization, endpoint resolution, SigV4 signing,
/// retry and timeout bookkeeping, and parsing the reply.
#[derive(Debug, Clone)]
pub struct NoNetwork;

impl HttpConnector for NoNetwork {
    fn call(&self, _request: HttpRequest) -> HttpConnectorFuture {
        let response = HttpResponse::new(
            aws_smithy_runtime_api::http::StatusCode::try_from(200_u16)
                .unwrap_or_else(|_| unreachable!("200 is a valid status")),
            SdkBody::from("{}"),
        );
        HttpConnectorFuture::ready(Ok(response))
    }
}

impl HttpClient for NoNetwork {
    fn http_connector(
        &self,
        _settings: &HttpConnectorSettings,
        _components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(self.clone())
    }
}

/// The deployed configuration (`processor::aws::loader`: timeouts, retries, behaviour
/// version) with the connector swapped for [`NoNetwork`]. The endpoint is a closed loopback
/// port, so a request that somehow escaped the stub could not leave the machine.
pub async fn offline_processor() -> Processor {
    let config = crate::aws::emulated(
        processor::aws::loader().http_client(NoNetwork),
        "http://127.0.0.1:9",
    )
    .load()
    .await;
    Processor::new(settings(), processor::aws::dynamodb_client(&config))
}

pub fn settings() -> Settings {
    let vars = [
        (names::ENV_MARKET_DATA_TABLE, "market-data-bench"),
        (names::ENV_AUDIT_TRAIL_TABLE, "audit-trail-bench"),
        (names::ENV_LATEST_TABLE, "latest-prices-bench"),
        (names::ENV_ENVIRONMENT, "bench"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    match Settings::from_map(&vars) {
        Ok(settings) => settings,
        Err(err) => panic!("bench settings are invalid: {err}"),
    }
}

/// `count` routed events of the bundled session as the bus hands them to the function, timed
/// at `now`: what the benchmarks feed the offline processor.
pub fn events(count: usize, now: DateTime<Utc>) -> Vec<String> {
    let end = now - chrono::Duration::minutes(1);
    crate::session::envelopes(
        &crate::session::routed(count, crate::local::SESSION_SEED, end),
        now,
    )
}
