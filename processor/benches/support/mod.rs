//! Shared by the hot-path benchmark (`benches/hot_path.rs`) and the `hot_path` example that
//! `cargo xtask bench` runs: a processor whose DynamoDB client never touches the network, and
//! a market session to feed it.
#![allow(dead_code)]

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use processor::{Processor, Settings, names};

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
    let config = processor::aws::loader()
        .http_client(NoNetwork)
        .endpoint_url("http://127.0.0.1:9")
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "bench", "bench", None, None, "bench",
        ))
        .load()
        .await;
    Processor::new(settings(), processor::aws::dynamodb_client(&config))
}

pub fn settings() -> Settings {
    let vars = [
        (names::ENV_MARKET_DATA_TABLE, "market-data-bench"),
        (names::ENV_AUDIT_TRAIL_TABLE, "audit-trail-bench"),
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

/// A small deterministic market session in the shape of `cargo xtask local`'s: trades with a
/// trade id (half of them with the price as a JSON number, half as a string), quotes, price
/// updates, corrections with unknown fields, and a few invalid events. Event times end at
/// `now` so that every valid event is inside the accepted window.
pub fn session(count: usize, now: DateTime<Utc>) -> Vec<String> {
    const INSTRUMENTS: [(&str, &str, &str, i64, u32); 6] = [
        ("NASDAQ", "AAPL", "USD", 18_950, 2),
        ("NYSE", "IBM", "USD", 22_115, 2),
        ("LSE", "VOD.L", "GBP", 7_215, 4),
        ("XETRA", "SAP", "EUR", 24_410, 2),
        ("TSE", "7203", "JPY", 2_874, 0),
        ("COINBASE", "BTC-USD", "USD", 9_712_345, 2),
    ];
    // A fixed linear congruential sequence: no RNG crate, same events on every machine.
    let mut state: u64 = 0x2026_1125;
    let mut next = move |bound: u64| {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (state >> 33) % bound.max(1)
    };
    let start = now - Duration::minutes(390);
    (0..count)
        .map(|n| {
            let at = start + Duration::milliseconds((n as i64) * 1_000 + next(1_000) as i64);
            let timestamp = at.to_rfc3339_opts(SecondsFormat::Millis, true);
            let (exchange, symbol, currency, ticks, scale) =
                INSTRUMENTS[next(INSTRUMENTS.len() as u64) as usize];
            let price = rust_decimal::Decimal::new(ticks + next(50) as i64, scale);
            let number = |quoted: bool, value: rust_decimal::Decimal| {
                if quoted {
                    format!("\"{value}\"")
                } else {
                    value.to_string()
                }
            };
            let roll = next(100);
            let quoted = next(2) == 0;
            let (detail_type, detail) = if roll < 2 {
                (
                    names::TRADE_EXECUTION,
                    format!(
                        r#"{{"exchange":"{exchange}","symbol":"{symbol}","price":"-1.00","volume":100,"timestamp":"{timestamp}"}}"#
                    ),
                )
            } else if roll < 45 {
                (
                    names::TRADE_EXECUTION,
                    format!(
                        r#"{{"exchange":"{exchange}","symbol":"{symbol}","price":{},"volume":{},"trade_id":"{exchange}-{n:08}","side":"{}","currency":"{currency}","timestamp":"{timestamp}"}}"#,
                        number(quoted, price),
                        100 * (1 + next(20)),
                        if next(2) == 0 { "buy" } else { "sell" },
                    ),
                )
            } else if roll < 48 {
                (
                    names::TRADE_UPDATE,
                    format!(
                        r#"{{"exchange":"{exchange}","symbol":"{symbol}","price":"{price}","volume":100,"trade_id":"{exchange}-{n:08}","side":"buy","currency":"{currency}","timestamp":"{timestamp}","correction_reason":"price amended","correction_id":{n}}}"#
                    ),
                )
            } else if roll < 90 {
                let tick = rust_decimal::Decimal::new(1, scale);
                (
                    names::MARKET_QUOTE,
                    format!(
                        r#"{{"exchange":"{exchange}","symbol":"{symbol}","bid":{},"ask":{},"bid_size":{},"ask_size":{},"currency":"{currency}","timestamp":"{timestamp}"}}"#,
                        number(quoted, price - tick),
                        number(quoted, price + tick),
                        100 * (1 + next(50)),
                        100 * (1 + next(50)),
                    ),
                )
            } else {
                (
                    names::PRICE_UPDATE,
                    format!(
                        r#"{{"exchange":"{exchange}","symbol":"{symbol}","price":{},"currency":"{currency}","timestamp":"{timestamp}"}}"#,
                        number(quoted, price)
                    ),
                )
            };
            envelope(n, detail_type, &detail, now)
        })
        .collect()
}

/// An EventBridge envelope as the bus hands it to the function.
pub fn envelope(n: usize, detail_type: &str, detail: &str, time: DateTime<Utc>) -> String {
    format!(
        r#"{{"version":"0","id":"{:08x}-0000-4000-8000-{n:012x}","detail-type":"{detail_type}","source":"{}","account":"123456789012","time":"{}","region":"us-east-1","resources":[],"detail":{detail}}}"#,
        n as u32,
        names::DEFAULT_SOURCE,
        time.to_rfc3339_opts(SecondsFormat::Secs, true)
    )
}
