//! The one way this project builds its AWS configuration.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_dynamodb::config::retry::{RetryPartition, TokenBucket};
use aws_smithy_http_client::tls;

/// Per-attempt and whole-operation limits, and the retries between them: a DynamoDB call makes
/// at most `MAX_ATTEMPTS` attempts of at most `ATTEMPT_TIMEOUT` each, backing off from
/// `INITIAL_BACKOFF` (with jitter, doubling, at most `MAX_BACKOFF`), and gives up after
/// `OPERATION_TIMEOUT` whatever happens. The SDK's default backoff (1 s doubling to 20 s) would
/// spend the operation's time waiting, so a third attempt would rarely run.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(6);
pub const MAX_ATTEMPTS: u32 = 3;
pub const INITIAL_BACKOFF: Duration = Duration::from_millis(100);
pub const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// The writes of one event in the slowest path that still stores it: guard, record, audit.
pub const WRITES_PER_EVENT: u32 = 3;

/// The shortest Lambda timeout a stack may configure: room for every write of an event to run
/// to its `OPERATION_TIMEOUT`, and for the deadline margin. Stack validation enforces it.
pub const MIN_LAMBDA_TIMEOUT_SECONDS: u32 =
    OPERATION_TIMEOUT.as_secs() as u32 * WRITES_PER_EVENT + DEADLINE_MARGIN.as_secs() as u32 + 1;

/// How long before the Lambda deadline an invocation gives up on its own: time to report the
/// error (and so have the event retried) instead of being killed mid-write.
pub const DEADLINE_MARGIN: Duration = Duration::from_secs(1);

/// The time an invocation may spend on its event when `time_left` remains before its deadline.
pub fn invocation_budget(time_left: Duration) -> Duration {
    time_left.saturating_sub(DEADLINE_MARGIN)
}

/// Each error of an SDK error's chain once, outermost first, without the debug dump of the raw
/// response that `DisplayErrorContext` appends (a kilobyte of headers in every DLQ message and
/// log line). The processor and the tools both describe SDK errors this way.
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let part = cause.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = cause.source();
    }
    text
}

/// The processor's DynamoDB client: the shared configuration, and a retry quota of its own that
/// never runs dry.
///
/// The SDK's default quota (500 tokens, 5 per retry, 10 per timeout, one back per success) is
/// meant to stop a fleet of clients from amplifying an outage. Under a sustained error or
/// timeout rate it empties and stays empty, and from then on every first failure is final: the
/// event goes the long way, through Lambda's retries to the DLQ, instead of being retried in
/// place. Here the amplification is bounded already (`MAX_ATTEMPTS`, `OPERATION_TIMEOUT` per
/// call, one event per invocation, the function's concurrency), so each call gets all its
/// attempts.
pub fn dynamodb_client(config: &SdkConfig) -> aws_sdk_dynamodb::Client {
    let dynamodb = aws_sdk_dynamodb::config::Builder::from(config)
        .retry_partition(
            RetryPartition::custom("market-processor")
                .token_bucket(TokenBucket::unlimited())
                .build(),
        )
        .build();
    aws_sdk_dynamodb::Client::from_conf(dynamodb)
}

/// Loads region, credentials and endpoint (`AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_<SERVICE>`)
/// from the environment as every AWS SDK does, over a rustls + ring HTTPS client.
///
/// ring rather than aws-lc: a smaller binary and no entropy-jitter start-up cost on Lambda.
pub async fn sdk_config() -> SdkConfig {
    loader().load().await
}

/// The loader behind [`sdk_config`], for callers that must override one setting.
pub fn loader() -> aws_config::ConfigLoader {
    loader_with_timeouts(
        TimeoutConfig::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .operation_attempt_timeout(ATTEMPT_TIMEOUT)
            .operation_timeout(OPERATION_TIMEOUT)
            .build(),
    )
}

/// Same client, other limits: operator tools wait longer than a Lambda invocation may.
pub fn loader_with_timeouts(timeouts: TimeoutConfig) -> aws_config::ConfigLoader {
    let http_client = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https();
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(http_client)
        .timeout_config(timeouts)
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(MAX_ATTEMPTS)
                .with_initial_backoff(INITIAL_BACKOFF)
                .with_max_backoff(MAX_BACKOFF),
        )
}
