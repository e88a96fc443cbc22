//! Whether AWS credentials can be found the way Pulumi's AWS provider and the SDK look for them:
//! environment, shared config and credentials files, web identity, container and instance
//! roles. Checked before a long build so that a missing login fails in seconds.

use std::time::Duration;

use aws_credential_types::provider::ProvideCredentials;
use aws_credential_types::provider::error::CredentialsError;
use thiserror::Error;

/// Long enough for an instance or container role, short enough not to stall a laptop without one.
const TIMEOUT: Duration = Duration::from_secs(20);

#[derive(Debug, Error)]
#[error(
    "no AWS credentials found ({detail}). Pulumi deploys with the AWS default credential chain: \
     run `aws configure` (access keys), or `aws configure sso` and `aws sso login` and then \
     `export AWS_PROFILE=<profile>`, or export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
)]
pub struct NoCredentials {
    detail: String,
}

/// What the check found.
#[derive(Debug)]
pub enum Found {
    /// Credentials resolved.
    Resolved,
    /// A source is configured but this tool cannot resolve it (for example an SSO or
    /// `credential_process` profile); Pulumi resolves those itself, so this is only a warning.
    Unverified(String),
}

pub async fn check(region: &str) -> Result<Found, NoCredentials> {
    let config = processor::aws::loader_with_timeouts(crate::aws::tool_timeouts())
        .region(aws_config::Region::new(region.to_string()))
        .load()
        .await;
    let Some(provider) = config.credentials_provider() else {
        return Err(NoCredentials {
            detail: "the SDK configured no credential provider".into(),
        });
    };
    match tokio::time::timeout(TIMEOUT, provider.provide_credentials()).await {
        Ok(Ok(_)) => Ok(Found::Resolved),
        Ok(Err(CredentialsError::CredentialsNotLoaded(_))) => Err(NoCredentials {
            detail: "no source in the default chain has any".into(),
        }),
        Ok(Err(other)) => Ok(Found::Unverified(processor::aws::error_chain(&other))),
        Err(_) => Err(NoCredentials {
            detail: format!("none resolved within {} s", TIMEOUT.as_secs()),
        }),
    }
}
