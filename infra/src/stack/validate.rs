//! The limits a stack file must respect. AWS's own limits where AWS has one, the processor's where
//! it reads the value, the relations between values that keep every event accounted for, and the
//! production rules. Every check runs, so a file shows all its problems at once.

mod alarms;
mod archive;
mod events;
mod indexes;
mod interpolation;
mod kinesis;
mod metrics;
mod windows;

use std::fmt::Display;
use std::ops::RangeInclusive;

use super::{BillingMode, LogLevel, Problem, StackConfig, stack_file};
use crate::model;

pub use interpolation::interpolation;

/// Values CloudWatch Logs accepts for `retentionInDays` (0, "never expire", is deliberately absent).
pub const LOG_RETENTION_DAYS: [u32; 22] = [
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
    3288, 3653,
];

const MEMORY_MB: RangeInclusive<u32> = 128..=10_240;
/// Lambda's own limit is 1..=900; below the processor's minimum an event's writes could not
/// all run to their timeouts before the invocation gives up.
const TIMEOUT_SECONDS: RangeInclusive<u32> = names::limits::MIN_LAMBDA_TIMEOUT_SECONDS..=900;
/// DynamoDB's default per-table quota for provisioned capacity.
const CAPACITY_UNITS: RangeInclusive<u32> = 1..=40_000;
const TARGET_RETRIES: RangeInclusive<u32> = 0..=185;
const TARGET_EVENT_AGE_SECONDS: RangeInclusive<u32> = 60..=86_400;
const ASYNC_RETRIES: RangeInclusive<u32> = 0..=2;
const ASYNC_EVENT_AGE_SECONDS: RangeInclusive<u32> = 60..=21_600;
const SQS_RETENTION_SECONDS: RangeInclusive<u32> = 60..=1_209_600;
const MAX_TAGS: usize = 50;
const TAG_KEY_CHARS: RangeInclusive<usize> = 1..=128;
const TAG_VALUE_CHARS: RangeInclusive<usize> = 0..=256;

/// Collects every problem of `config`, the file of stack `stack`.
pub fn validate(config: &StackConfig, stack: &str) -> Vec<Problem> {
    let mut v = Checks::default();
    if v.suffix(&config.environment) {
        v.own_environment(&config.environment, stack);
    }
    v.region(&config.region);

    let lambda = &config.lambda;
    v.range("lambda.memory_mb", lambda.memory_mb, MEMORY_MB);
    if lambda.timeout_seconds < *TIMEOUT_SECONDS.start() {
        v.push(
            "lambda.timeout_seconds",
            format!(
                "{} is too short for the processor: each of an event's {} DynamoDB writes may \
                 take up to {} s before it gives up, and it stops {} s before the deadline; \
                 allowed {}..={}",
                lambda.timeout_seconds,
                names::limits::WRITES_PER_EVENT,
                names::limits::OPERATION_TIMEOUT.as_secs(),
                names::limits::DEADLINE_MARGIN.as_secs(),
                TIMEOUT_SECONDS.start(),
                TIMEOUT_SECONDS.end()
            ),
        );
    } else {
        v.range(
            "lambda.timeout_seconds",
            lambda.timeout_seconds,
            TIMEOUT_SECONDS,
        );
    }
    if lambda.reserved_concurrency == Some(0) {
        v.push(
            "lambda.reserved_concurrency",
            "0 would throttle every invocation; allowed 1 or more, or leave it out to share the account's unreserved concurrency",
        );
    }

    let db = &config.dynamodb;
    match db.billing_mode {
        BillingMode::Provisioned => {
            for (path, value) in [
                ("dynamodb.read_capacity", db.read_capacity),
                ("dynamodb.write_capacity", db.write_capacity),
            ] {
                match value {
                    Some(units) => v.range(path, units, CAPACITY_UNITS),
                    None => v.push(
                        path,
                        "missing; billing_mode PROVISIONED needs it; allowed 1..=40000",
                    ),
                }
            }
        }
        BillingMode::PayPerRequest => {
            for (path, value) in [
                ("dynamodb.read_capacity", db.read_capacity),
                ("dynamodb.write_capacity", db.write_capacity),
            ] {
                if let Some(units) = value {
                    v.push(
                        path,
                        format!("{units} is not allowed with billing_mode PAY_PER_REQUEST; remove it or use PROVISIONED"),
                    );
                }
            }
        }
    }

    v.indexes(config);

    v.sources(&config.events.accepted_sources);
    v.publishers(&config.events.publishers);
    v.range(
        "events.target_max_retry_attempts",
        config.events.target_max_retry_attempts,
        TARGET_RETRIES,
    );
    v.range(
        "events.target_max_event_age_seconds",
        config.events.target_max_event_age_seconds,
        TARGET_EVENT_AGE_SECONDS,
    );
    v.range(
        "async_invoke.max_retry_attempts",
        config.async_invoke.max_retry_attempts,
        ASYNC_RETRIES,
    );
    v.range(
        "async_invoke.max_event_age_seconds",
        config.async_invoke.max_event_age_seconds,
        ASYNC_EVENT_AGE_SECONDS,
    );
    v.windows(config);
    v.range(
        "dlq.retention_seconds",
        config.dlq.retention_seconds,
        SQS_RETENTION_SECONDS,
    );
    v.archive(config);
    v.metrics(&config.metrics);
    if !LOG_RETENTION_DAYS.contains(&config.logs.retention_days) {
        v.push(
            "logs.retention_days",
            format!(
                "{} is not a retention CloudWatch Logs accepts; allowed {}",
                config.logs.retention_days,
                join(&LOG_RETENTION_DAYS)
            ),
        );
    }

    v.alarms(config);
    v.kinesis(config);
    v.tags(&config.tags);
    if config.is_production() {
        v.production(config);
    }
    v.problems
}

#[derive(Default)]
struct Checks {
    problems: Vec<Problem>,
}

impl Checks {
    fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.problems.push(Problem {
            path: path.into(),
            message: message.into(),
        });
    }

    fn range<T: PartialOrd + Display>(&mut self, path: &str, value: T, allowed: RangeInclusive<T>) {
        if !allowed.contains(&value) {
            self.push(
                path,
                format!(
                    "{value} is out of range; allowed {}..={}",
                    allowed.start(),
                    allowed.end()
                ),
            );
        }
    }

    /// The suffix ends up in every name, so it takes the charset all of them accept. Reports an
    /// invalid one and says whether it was valid.
    fn suffix(&mut self, suffix: &str) -> bool {
        let max = model::max_suffix_len();
        let allowed = format!(
            "allowed 1..={max} characters of a-z, 0-9 and '-', starting with a letter, not ending with '-', no '--'"
        );
        let len = suffix.chars().count();
        let charset_ok = suffix
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        let shape_ok = suffix.starts_with(|c: char| c.is_ascii_lowercase())
            && !suffix.ends_with('-')
            && !suffix.contains("--");
        if len == 0 || len > max || !charset_ok || !shape_ok {
            let what = if len > max {
                format!("{suffix:?} is {len} characters")
            } else {
                format!("{suffix:?} is not a valid name suffix")
            };
            self.push("environment", format!("{what}; {allowed}"));
            return false;
        }
        true
    }

    /// The environment names every resource and decides which rules apply, and the stack file's
    /// name is the stack Pulumi deploys: one name for both, or `stacks/prod-eu.yaml` could
    /// deploy `-prod` resources under production rules nobody asked for (or escape them).
    fn own_environment(&mut self, environment: &str, stack: &str) {
        if environment != stack {
            self.push(
                "environment",
                format!(
                    "{environment:?} differs from the stack's name {stack:?} ({}); allowed {stack:?}, or rename the file to {}",
                    stack_file(stack),
                    stack_file(environment)
                ),
            );
        }
    }

    fn region(&mut self, region: &str) {
        if !is_region(region) {
            self.push(
                "region",
                format!("{region:?} is not an AWS region code; allowed e.g. us-east-1, eu-west-2, us-gov-west-1"),
            );
        }
    }

    fn tags(&mut self, tags: &std::collections::BTreeMap<String, String>) {
        if tags.is_empty() {
            self.push(
                "tags",
                "empty; allowed 1..=50 tags (every taggable resource is tagged)",
            );
        }
        if tags.len() > MAX_TAGS {
            self.push(
                "tags",
                format!("has {} tags; allowed at most {MAX_TAGS}", tags.len()),
            );
        }
        for (key, value) in tags {
            let path = format!("tags.{key}");
            let key_len = key.chars().count();
            if !TAG_KEY_CHARS.contains(&key_len) {
                self.push(
                    &path,
                    format!("key {key:?} is {key_len} characters; allowed 1..=128"),
                );
            }
            if key.to_ascii_lowercase().starts_with("aws:") {
                self.push(
                    &path,
                    format!("key {key:?} uses the reserved prefix \"aws:\"; allowed any other key"),
                );
            }
            if !key.chars().all(is_tag_char) {
                self.push(
                    &path,
                    format!("key {key:?} has a character tags do not allow; allowed letters, digits, spaces and _ . : / = + - @"),
                );
            }
            let value_len = value.chars().count();
            if !TAG_VALUE_CHARS.contains(&value_len) {
                self.push(
                    &path,
                    format!("value is {value_len} characters; allowed 0..=256"),
                );
            }
            if !value.chars().all(is_tag_char) {
                self.push(
                    &path,
                    format!("value {value:?} has a character tags do not allow; allowed letters, digits, spaces and _ . : / = + - @"),
                );
            }
        }
    }

    fn production(&mut self, config: &StackConfig) {
        let why = "false is not allowed in the production stack; allowed true (its data must stay recoverable)";
        if !config.dynamodb.point_in_time_recovery {
            self.push("dynamodb.point_in_time_recovery", why);
        }
        if !config.dynamodb.deletion_protection {
            self.push("dynamodb.deletion_protection", why);
        }
        if !config.alarms.sns_topic || config.alarms.email.is_none() {
            self.push(
                "alarms.email",
                "missing; the production stack needs an address (and sns_topic: true) so alarms reach someone",
            );
        }
        if config.events.publishers.is_empty() {
            self.push(
                "events.publishers",
                "empty; the production stack must name the accounts or roles that publish market data (the default, the deploying account, lets every principal of that account with events:PutEvents publish)",
            );
        }
        // At trace and debug, lambda_runtime logs every raw payload it receives: market data
        // would end up in CloudWatch Logs, outside the tables' retention and access rules.
        let level = config.lambda.log_level;
        if matches!(level, LogLevel::Trace | LogLevel::Debug) {
            self.push(
                "lambda.log_level",
                format!(
                    "{} is not allowed in the production stack: the Lambda runtime logs every raw event at that level; allowed info, warn, error",
                    level.as_str()
                ),
            );
        }
        self.production_audit_retention(config.audit.retention_days);
    }
}

fn join(values: &[u32]) -> String {
    values
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// `xx[-gov|-iso…]-direction-N`, the shape of every AWS region code.
fn is_region(region: &str) -> bool {
    const DIRECTIONS: [&str; 9] = [
        "north",
        "south",
        "east",
        "west",
        "central",
        "northeast",
        "southeast",
        "northwest",
        "southwest",
    ];
    const PARTITIONS: [&str; 5] = ["gov", "iso", "isob", "isoe", "isof"];
    let parts: Vec<&str> = region.split('-').collect();
    let (first, rest) = match parts.split_first() {
        Some(split) => split,
        None => return false,
    };
    let (last, middle) = match rest.split_last() {
        Some(split) => split,
        None => return false,
    };
    let country_ok = first.len() == 2 && first.chars().all(|c| c.is_ascii_lowercase());
    let number_ok = (1..=2).contains(&last.len()) && last.chars().all(|c| c.is_ascii_digit());
    let middle_ok = match middle {
        [direction] => DIRECTIONS.contains(direction),
        [partition, direction] => PARTITIONS.contains(partition) && DIRECTIONS.contains(direction),
        _ => false,
    };
    country_ok && number_ok && middle_ok
}

fn is_tag_char(c: char) -> bool {
    c.is_alphanumeric() || c == ' ' || "_.:/=+-@".contains(c)
}
