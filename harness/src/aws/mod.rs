//! The AWS SDK as the tools use it: one configuration for a stack (deployed or local), one
//! way to describe an SDK error, the credential check, and the outputs of a deployed stack.

pub mod credentials;
pub mod deployed;

use std::time::Duration;

use aws_config::timeout::TimeoutConfig;
use aws_config::{Region, SdkConfig};
use infra::outputs::Outputs;

/// The region of every emulated stack.
pub const LOCAL_REGION: &str = "us-east-1";
/// The access key id and secret of every emulated stack: moto accepts any.
pub const LOCAL_KEY: &str = "test";

/// Limits for the operator tools: generous, since an emulator under load answers slowly and a
/// tool can afford to wait where a Lambda invocation cannot.
pub fn tool_timeouts() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(5))
        .operation_attempt_timeout(Duration::from_secs(60))
        .operation_timeout(Duration::from_secs(180))
        .build()
}

/// Points a loader at an emulator (moto, or the fault proxy in front of it) with the local
/// region and credentials, so that no call can reach real AWS.
pub fn emulated(loader: aws_config::ConfigLoader, endpoint: &str) -> aws_config::ConfigLoader {
    loader
        .endpoint_url(endpoint)
        .region(Region::new(LOCAL_REGION))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            LOCAL_KEY, LOCAL_KEY, None, None, "local",
        ))
}

/// The tools' SDK configuration for an emulator at `endpoint`.
pub async fn local_sdk_config(endpoint: &str) -> SdkConfig {
    emulated(
        processor::aws::loader_with_timeouts(tool_timeouts()),
        endpoint,
    )
    .load()
    .await
}

/// The tools' SDK configuration for a stack: the emulator's endpoint and region when local,
/// else the environment's (default credential chain, `AWS_REGION`, `AWS_ENDPOINT_URL`).
pub async fn sdk_config(outputs: &Outputs) -> SdkConfig {
    let mut loader = processor::aws::loader_with_timeouts(tool_timeouts());
    if let Some(endpoint) = &outputs.endpoint_url {
        loader = emulated(loader, endpoint);
    }
    if let Some(region) = &outputs.region {
        loader = loader.region(Region::new(region.clone()));
    }
    loader.load().await
}

/// Endpoint, region and dummy credentials for an emulator, as environment variables: what
/// points every AWS SDK (ours, boto3, the CLI) in a child process at it.
pub fn emulated_env(endpoint: &str) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ENDPOINT_URL", endpoint.to_string()),
        ("AWS_REGION", LOCAL_REGION.to_string()),
        ("AWS_DEFAULT_REGION", LOCAL_REGION.to_string()),
        ("AWS_ACCESS_KEY_ID", LOCAL_KEY.to_string()),
        ("AWS_SECRET_ACCESS_KEY", LOCAL_KEY.to_string()),
        ("AWS_EC2_METADATA_DISABLED", "true".to_string()),
    ]
}

/// The SDK's full error chain: the top-level message alone is often just "service error".
pub fn sdk_error<E: std::error::Error + Send + Sync + 'static>(
    operation: &str,
    err: E,
) -> anyhow::Error {
    anyhow::anyhow!("{operation} failed: {}", processor::aws::error_chain(&err))
}
