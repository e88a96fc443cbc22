//! The stack an operator command (`e2e`, `send`, `dlq`) acts on: a deployed stack's outputs from
//! `pulumi stack output --json`, or an outputs file with the same keys.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::aws::credentials::{self, Found};
use crate::ship::pulumi::Pulumi;
use infra::outputs::Outputs;
use infra::stack::StackConfig;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `--stack S`: ask pulumi.
    Stack(String),
    /// `--outputs FILE`.
    File(PathBuf),
}

impl Source {
    /// From the `--stack` / `--outputs` pair of a command line; clap makes them exclusive.
    pub fn from_args(stack: Option<String>, outputs: Option<PathBuf>) -> Result<Source> {
        match (stack, outputs) {
            (_, Some(path)) => Ok(Source::File(path)),
            (Some(stack), None) => Ok(Source::Stack(stack)),
            (None, None) => {
                anyhow::bail!("say which stack: --stack S (a deployed stack) or --outputs FILE")
            }
        }
    }
}

/// Where the outputs of a deployed stack are kept after `--stack S` fetched them.
pub fn outputs_path(root: &Path, stack: &str) -> PathBuf {
    root.join("target")
        .join("stacks")
        .join(stack)
        .join("outputs.json")
}

/// The outputs, with the region filled in, and the file that holds them.
pub async fn load(root: &Path, source: &Source) -> Result<(Outputs, PathBuf)> {
    match source {
        Source::Stack(stack) => {
            let config = StackConfig::load(root, stack)?;
            let pulumi = Pulumi::locate(root)?;
            pulumi.whoami()?;
            let json = pulumi
                .capture(&["stack", "output", "--json", "--stack", stack])
                .with_context(|| {
                    format!("reading the outputs of stack {stack} (is it deployed? `cargo xtask deploy {stack}`)")
                })?;
            let mut outputs =
                Outputs::parse(&json).with_context(|| format!("the outputs of stack {stack}"))?;
            // A deployed stack's resources live in its configured region, whatever the shell's
            // default region is.
            outputs.region.get_or_insert(config.region);
            let path = outputs_path(root, stack);
            outputs.write(&path)?;
            require_credentials(&outputs).await?;
            Ok((outputs, path))
        }
        Source::File(path) => {
            let mut outputs = Outputs::read(path)?;
            if outputs.region.is_none() {
                outputs.region = region_from_arn(&outputs.event_bus_arn);
            }
            require_credentials(&outputs).await?;
            Ok((outputs, path.clone()))
        }
    }
}

/// Real AWS needs real credentials; an emulator (outputs with an endpoint) takes dummy ones.
async fn require_credentials(outputs: &Outputs) -> Result<()> {
    if outputs.endpoint_url.is_some() {
        return Ok(());
    }
    let region = outputs.region.as_deref().unwrap_or("us-east-1");
    if let Found::Unverified(why) = credentials::check(region).await? {
        eprintln!("warning: AWS credentials are configured but not resolvable here: {why}");
    }
    Ok(())
}

/// The region of an ARN (`arn:aws:events:us-east-1:123456789012:event-bus/x`).
pub fn region_from_arn(arn: &str) -> Option<String> {
    let region = arn.split(':').nth(3)?;
    (!region.is_empty()).then(|| region.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_region_comes_from_the_fourth_arn_field() {
        assert_eq!(
            region_from_arn("arn:aws:events:eu-west-1:123456789012:event-bus/market-data-bus-dev")
                .as_deref(),
            Some("eu-west-1")
        );
        assert_eq!(region_from_arn("arn:aws:iam::123456789012:role/x"), None);
        assert_eq!(region_from_arn("not an arn"), None);
    }

    #[test]
    fn a_command_needs_a_stack_or_an_outputs_file() {
        assert_eq!(
            Source::from_args(Some("dev".into()), None).expect("source"),
            Source::Stack("dev".into())
        );
        assert_eq!(
            Source::from_args(None, Some("o.json".into())).expect("source"),
            Source::File("o.json".into())
        );
        assert!(Source::from_args(None, None).is_err());
    }
}
