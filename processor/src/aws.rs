//! The one way this project builds its AWS configuration. The limits it applies are
//! `names::limits`, which stack validation reads too.

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_dynamodb::config::retry::{RetryPartition, TokenBucket};
use aws_smithy_http_client::tls;
use names::limits::{
    ATTEMPT_TIMEOUT, CONNECT_TIMEOUT, INITIAL_BACKOFF, MAX_ATTEMPTS, MAX_BACKOFF, OPERATION_TIMEOUT,
};

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
