//! Typed per-stack configuration: `stacks/<stack>.yaml`, one file per Pulumi stack.
//!
//! The file is the only place an operator changes the infrastructure. Everything else — the
//! Pulumi program, `Pulumi.<stack>.yaml`, the local emulator's resources — is derived from it,
//! so the type rejects unknown fields and [`validate`] enforces AWS's own limits before anything
//! reaches Pulumi or AWS.

mod kinesis;
pub mod principal;
mod validate;

pub use kinesis::{EventClass, KinesisConfig, MappingConfig, StreamConfig, StreamMode};

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use serde::Deserialize;
use thiserror::Error;

/// Folder of the stack files, relative to the workspace root.
pub const STACKS_DIR: &str = "stacks";

/// The environment whose rules are strict: PITR, deletion protection, an alarm address, named
/// publishers, seven years of audit trail, no payload logging, a confirmation before a change.
/// A stack file's environment is its file name, so this is also `stacks/prod.yaml`.
pub const PRODUCTION_ENVIRONMENT: &str = "prod";

/// One stack file. Field names are the YAML keys.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StackConfig {
    /// Appended to every physical resource name (`market-data-<environment>`); must be the stack
    /// file's name.
    pub environment: String,
    /// AWS region code, e.g. `us-east-1`.
    pub region: String,
    pub lambda: LambdaConfig,
    pub dynamodb: DynamoDbConfig,
    pub events: EventsConfig,
    pub async_invoke: AsyncInvokeConfig,
    /// The stream path for high volume; absent, events arrive through the bus only.
    #[serde(default)]
    pub kinesis: Option<KinesisConfig>,
    /// Absent: the processor's own default, seven years.
    #[serde(default)]
    pub audit: AuditConfig,
    pub dlq: DlqConfig,
    /// The bus's archive, which `cargo xtask replay` replays from. Required: how long events
    /// stay replayable is a decision per stack, bounded by the records' TTL.
    pub archive: ArchiveConfig,
    /// Feed-health metrics; absent, every exchange counts as `OTHER`.
    #[serde(default)]
    pub metrics: MetricsConfig,
    pub logs: LogsConfig,
    pub alarms: AlarmsConfig,
    /// Applied to every taggable resource.
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LambdaConfig {
    pub memory_mb: u32,
    pub timeout_seconds: u32,
    #[serde(default)]
    pub architecture: Architecture,
    /// Unset: the function shares the account's unreserved concurrency.
    #[serde(default)]
    pub reserved_concurrency: Option<u32>,
    pub log_level: LogLevel,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub enum Architecture {
    #[default]
    #[serde(rename = "arm64")]
    Arm64,
    #[serde(rename = "x86_64")]
    X86_64,
}

impl Architecture {
    /// The value Lambda's `Architectures` field takes.
    pub fn as_str(self) -> &'static str {
        match self {
            Architecture::Arm64 => "arm64",
            Architecture::X86_64 => "x86_64",
        }
    }
}

/// The levels the processor's `LOG_LEVEL` accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

impl LogLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Trace => "trace",
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DynamoDbConfig {
    pub billing_mode: BillingMode,
    /// Required with `PROVISIONED`, rejected with `PAY_PER_REQUEST`; applies to tables and indexes.
    #[serde(default)]
    pub read_capacity: Option<u32>,
    #[serde(default)]
    pub write_capacity: Option<u32>,
    pub point_in_time_recovery: bool,
    pub deletion_protection: bool,
    /// Lifetime of stored items; the processor writes `expires_at` from it.
    pub ttl_days: u32,
    /// The events per second, over every ingest path, the tables must take; it sets the least
    /// `index_buckets` (ARCHITECTURE.md, "Index keys"). Required in production.
    #[serde(default)]
    pub design_events_per_second: Option<u32>,
    /// How many buckets each index partition key is spread over (`INDEX_BUCKETS`). On a live
    /// stack it may only grow: items stay in the bucket they were written to, and queries read
    /// the buckets of the configured count.
    #[serde(default = "default_index_buckets")]
    pub index_buckets: u16,
}

fn default_index_buckets() -> u16 {
    names::Settings::DEFAULT_INDEX_BUCKETS
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum BillingMode {
    #[serde(rename = "PAY_PER_REQUEST")]
    PayPerRequest,
    #[serde(rename = "PROVISIONED")]
    Provisioned,
}

impl BillingMode {
    /// The value DynamoDB's `BillingMode` field takes.
    pub fn as_str(self) -> &'static str {
        match self {
            BillingMode::PayPerRequest => "PAY_PER_REQUEST",
            BillingMode::Provisioned => "PROVISIONED",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsConfig {
    /// Event `source` values the rules match and the processor accepts.
    pub accepted_sources: Vec<String>,
    /// How often EventBridge retries delivering to the Lambda before the target DLQ.
    pub target_max_retry_attempts: u32,
    /// How long EventBridge keeps retrying an undelivered event.
    pub target_max_event_age_seconds: u32,
    /// Who may put events on the bus: 12-digit account ids and IAM role or user ARNs. Empty: the
    /// account that deploys the stack (refused in production).
    #[serde(default)]
    pub publishers: Vec<String>,
    /// The processor refuses an event whose time is older than this (`MAX_EVENT_AGE_SECONDS`).
    #[serde(default = "default_max_event_age_seconds")]
    pub max_event_age_seconds: u32,
    /// ... or further ahead of its clock than this (`MAX_FUTURE_SKEW_SECONDS`).
    #[serde(default = "default_max_future_skew_seconds")]
    pub max_future_skew_seconds: u32,
}

fn default_max_event_age_seconds() -> u32 {
    names::Settings::DEFAULT_MAX_EVENT_AGE_SECONDS
}

fn default_max_future_skew_seconds() -> u32 {
    names::Settings::DEFAULT_MAX_FUTURE_SKEW_SECONDS
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    /// Days an audit entry is kept after its event time (`AUDIT_RETENTION_DAYS`).
    pub retention_days: u32,
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            retention_days: names::Settings::DEFAULT_AUDIT_RETENTION_DAYS,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AsyncInvokeConfig {
    /// Retries Lambda makes after the function itself returns an error.
    pub max_retry_attempts: u32,
    pub max_event_age_seconds: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DlqConfig {
    pub retention_seconds: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArchiveConfig {
    /// Days EventBridge keeps each archived event.
    pub retention_days: u32,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// Exchanges with their own value of the feed-health metrics' `Exchange` dimension
    /// (`METRIC_EXCHANGES`); events of any other exchange count as `OTHER`.
    #[serde(default)]
    pub exchanges: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogsConfig {
    pub retention_days: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlarmsConfig {
    pub period_seconds: u32,
    pub evaluation_periods: u32,
    /// Lambda `Errors` (sum per period) at or above this alarms.
    pub errors_threshold: u32,
    /// Lambda `Throttles` (sum per period) at or above this alarms.
    pub throttles_threshold: u32,
    /// Lambda average `Duration` above this (milliseconds) alarms.
    pub duration_threshold_ms: u32,
    /// EventBridge `FailedInvocations` per rule (sum per period) at or above this alarms.
    pub failed_invocations_threshold: u32,
    /// Create an SNS topic and make it the action of every alarm.
    pub sns_topic: bool,
    /// Subscribe this address to the topic; needs `sns_topic: true`.
    #[serde(default)]
    pub email: Option<String>,
    /// The DLQ's oldest message older than this alarms: it must be redriven before the queue's
    /// retention deletes it.
    #[serde(default = "default_dlq_age_threshold_seconds")]
    pub dlq_age_threshold_seconds: u32,
    /// Fewer `Processed` events than this per period, for `silent_feed_periods` periods in a
    /// row (or no metric at all), alarms: the feed has stopped or nothing reaches the store.
    #[serde(default = "default_silent_feed_min_processed")]
    pub silent_feed_min_processed: u32,
    #[serde(default = "default_silent_feed_periods")]
    pub silent_feed_periods: u32,
    /// A share of rejected events above this (percent of all outcomes per period) alarms.
    #[serde(default = "default_rejected_percent_threshold")]
    pub rejected_percent_threshold: u32,
}

fn default_dlq_age_threshold_seconds() -> u32 {
    86_400
}

fn default_silent_feed_min_processed() -> u32 {
    1
}

fn default_silent_feed_periods() -> u32 {
    12
}

fn default_rejected_percent_threshold() -> u32 {
    10
}

impl StackConfig {
    /// Reads and validates `stacks/<stack>.yaml` under `root`.
    pub fn load(root: &Path, stack: &str) -> Result<StackConfig, StackErrors> {
        let available = list_stacks(root)?;
        if !available.iter().any(|s| s == stack) {
            return Err(StackErrors::UnknownStack {
                name: stack.to_string(),
                available,
            });
        }
        let file = stack_file(stack);
        let text =
            std::fs::read_to_string(root.join(&file)).map_err(|source| StackErrors::Read {
                file: file.clone(),
                source,
            })?;
        StackConfig::parse(&file, stack, &text)
    }

    /// Parses and validates the text of a stack file. `file` only labels messages.
    pub fn parse(file: &str, stack: &str, text: &str) -> Result<StackConfig, StackErrors> {
        let config: StackConfig = serde_yaml::from_str(text).map_err(|err| StackErrors::Parse {
            file: file.to_string(),
            message: err.to_string(),
        })?;
        let mut problems = validate::validate(&config, stack);
        // A field whose value is already refused (a tag's charset, say) is not named twice.
        if let Ok(document) = serde_yaml::from_str::<serde_yaml::Value>(text) {
            for problem in validate::interpolation(&document) {
                if !problems.iter().any(|p| p.path == problem.path) {
                    problems.push(problem);
                }
            }
        }
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(StackErrors::Invalid {
                file: file.to_string(),
                problems,
            })
        }
    }

    /// Whether the production rules apply: they follow the environment, which names every
    /// resource, not the file that happens to hold it.
    pub fn is_production(&self) -> bool {
        self.environment == PRODUCTION_ENVIRONMENT
    }
}

/// `stacks/<stack>.yaml`, relative to the workspace root, as messages show it.
pub fn stack_file(stack: &str) -> String {
    format!("{STACKS_DIR}/{stack}.yaml")
}

/// Names of the stacks that exist: the `*.yaml` files under `stacks/`, sorted.
pub fn list_stacks(root: &Path) -> Result<Vec<String>, StackErrors> {
    let dir = root.join(STACKS_DIR);
    let entries = std::fs::read_dir(&dir).map_err(|source| StackErrors::Read {
        file: STACKS_DIR.to_string(),
        source,
    })?;
    let mut stacks = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| StackErrors::Read {
            file: STACKS_DIR.to_string(),
            source,
        })?;
        let path = entry.path();
        if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
            continue;
        }
        if let Some(stem) = path.file_stem().and_then(|s| s.to_str()) {
            stacks.push(stem.to_string());
        }
    }
    stacks.sort();
    Ok(stacks)
}

/// One thing wrong with a field of a stack file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Dotted field path, e.g. `lambda.memory_mb`.
    pub path: String,
    /// What is wrong and what is allowed.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Why a stack could not be loaded. Every variant names the file or lists the choices.
#[derive(Debug, Error)]
pub enum StackErrors {
    #[error("unknown stack `{name}`; stacks: {}", list_or_none(.available))]
    UnknownStack {
        name: String,
        available: Vec<String>,
    },
    #[error("{file}: cannot read: {source}")]
    Read {
        file: String,
        #[source]
        source: std::io::Error,
    },
    /// Not YAML, or not the shape of [`StackConfig`]; serde stops at the first such error.
    #[error("{file}: {message}")]
    Parse { file: String, message: String },
    /// Well-formed but outside the limits: every problem of the file at once.
    #[error("{}", lines(.file, .problems))]
    Invalid {
        file: String,
        problems: Vec<Problem>,
    },
}

fn list_or_none(items: &[String]) -> String {
    if items.is_empty() {
        format!("none (no *.yaml under {STACKS_DIR}/)")
    } else {
        items.join(", ")
    }
}

fn lines(file: &str, problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| format!("{file}: {p}"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests;
