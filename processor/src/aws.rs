//! The one way this project builds its AWS configuration.

use std::time::Duration;

use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_smithy_http_client::tls;

/// Per-attempt and whole-operation limits. With the SDK's standard retry mode (3 attempts),
/// a DynamoDB call gives up after `OPERATION_TIMEOUT`, well inside the shortest Lambda timeout
/// a stack may configure, so a stuck call ends as a FAILED audit rather than a killed sandbox.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(6);

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
}
