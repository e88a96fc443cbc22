//! Stack outputs: what a deployed stack reports through `pulumi stack output --json`, and what
//! the local stack writes to `target/local/outputs.json` under the same keys.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outputs {
    pub event_bus_name: String,
    pub event_bus_arn: String,
    pub lambda_function_name: String,
    pub lambda_function_arn: String,
    pub market_data_table_name: String,
    pub market_data_table_arn: String,
    pub audit_trail_table_name: String,
    pub audit_trail_table_arn: String,
    pub latest_table_name: String,
    pub latest_table_arn: String,
    /// The bus's archive, which replays read.
    pub archive_name: String,
    pub archive_arn: String,
    pub dlq_url: String,
    pub dlq_arn: String,
    pub log_group_name: String,
    pub trade_events_rule_arn: String,
    pub quote_events_rule_arn: String,
    /// Stacks with the stream path only (`kinesis:` in the stack file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kinesis_stream_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kinesis_stream_arn: Option<String>,
    /// Local stack only: the emulator every SDK call goes to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Local stack only: the queue the rules deliver to, standing in for the Lambda.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery_queue_url: Option<String>,
}

/// The outputs every deployed stack reports, as the Pulumi program names them: the fields of
/// [`Outputs`] that are not local-only.
pub const DEPLOYED_KEYS: [&str; 17] = [
    "event_bus_name",
    "event_bus_arn",
    "lambda_function_name",
    "lambda_function_arn",
    "market_data_table_name",
    "market_data_table_arn",
    "audit_trail_table_name",
    "audit_trail_table_arn",
    "latest_table_name",
    "latest_table_arn",
    "archive_name",
    "archive_arn",
    "dlq_url",
    "dlq_arn",
    "log_group_name",
    "trade_events_rule_arn",
    "quote_events_rule_arn",
];

/// The outputs of a stack with the stream path, besides [`DEPLOYED_KEYS`].
pub const STREAM_KEYS: [&str; 2] = ["kinesis_stream_name", "kinesis_stream_arn"];

/// Where `cargo xtask local up` writes the local stack's outputs.
pub fn local_path(root: &Path) -> PathBuf {
    root.join("target").join("local").join("outputs.json")
}

impl Outputs {
    pub fn read(path: &Path) -> Result<Outputs> {
        let text = std::fs::read_to_string(path).with_context(|| {
            format!(
                "reading stack outputs {} (is the local stack up? `cargo xtask local up`)",
                path.display()
            )
        })?;
        Self::parse(&text).with_context(|| format!("parsing stack outputs {}", path.display()))
    }

    pub fn parse(text: &str) -> Result<Outputs> {
        serde_json::from_str(text).context(
            "stack outputs must be a JSON object with the keys event_bus_name, \
             market_data_table_name, audit_trail_table_name, dlq_url and the other stack outputs",
        )
    }

    pub fn write(&self, path: &Path) -> Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let text = serde_json::to_string_pretty(self).context("serializing outputs")?;
        std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_keys<'a>(keys: impl Iterator<Item = &'a str>) -> serde_json::Value {
        keys.map(|k| (k.to_string(), serde_json::Value::from(format!("{k}-value"))))
            .collect::<serde_json::Map<_, _>>()
            .into()
    }

    /// The list and the struct describe the same outputs: all of them read, any one missing
    /// does not.
    #[test]
    fn the_deployed_keys_are_exactly_the_required_fields() {
        let all: Outputs =
            serde_json::from_value(with_keys(DEPLOYED_KEYS.into_iter())).expect("all keys read");
        assert_eq!(all.dlq_url, "dlq_url-value");
        assert_eq!(all.endpoint_url, None);
        for missing in DEPLOYED_KEYS {
            let fewer = with_keys(DEPLOYED_KEYS.into_iter().filter(|k| *k != missing));
            assert!(
                serde_json::from_value::<Outputs>(fewer).is_err(),
                "{missing} is listed but not required"
            );
        }
    }
}
