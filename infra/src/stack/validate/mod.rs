//! The limits a stack file must respect. AWS's own limits where AWS has one, the processor's where
//! it reads the value, and the production rules. Every check runs, so a file shows all its
//! problems at once.

use std::fmt::Display;
use std::ops::RangeInclusive;

use super::{BillingMode, Problem, StackConfig};
use crate::model;

/// Values CloudWatch Logs accepts for `retentionInDays` (0, "never expire", is deliberately absent).
pub const LOG_RETENTION_DAYS: [u32; 22] = [
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
    3288, 3653,
];

const MEMORY_MB: RangeInclusive<u32> = 128..=10_240;
/// Lambda's own limit is 1..=900; below the processor's minimum an event's writes could not
/// all run to their timeouts before the invocation gives up.
const TIMEOUT_SECONDS: RangeInclusive<u32> = names::limits::MIN_LAMBDA_TIMEOUT_SECONDS..=900;
/// The processor rejects a `TTL_DAYS` outside this range at start-up.
const TTL_DAYS: RangeInclusive<u32> = 1..=3650;
/// DynamoDB's default per-table quota for provisioned capacity.
const CAPACITY_UNITS: RangeInclusive<u32> = 1..=40_000;
const TARGET_RETRIES: RangeInclusive<u32> = 0..=185;
const TARGET_EVENT_AGE_SECONDS: RangeInclusive<u32> = 60..=86_400;
const ASYNC_RETRIES: RangeInclusive<u32> = 0..=2;
const ASYNC_EVENT_AGE_SECONDS: RangeInclusive<u32> = 60..=21_600;
const SQS_RETENTION_SECONDS: RangeInclusive<u32> = 60..=1_209_600;
/// CloudWatch evaluates at most one day of periods.
const ALARM_WINDOW_SECONDS: u32 = 86_400;
const MAX_TAGS: usize = 50;
const TAG_KEY_CHARS: RangeInclusive<usize> = 1..=128;
const TAG_VALUE_CHARS: RangeInclusive<usize> = 0..=256;
const SOURCE_CHARS: RangeInclusive<usize> = 1..=256;
/// The longest address SMTP allows.
const EMAIL_CHARS: usize = 254;

/// Collects every problem of `config`; `stack` decides whether the production rules apply.
pub fn validate(config: &StackConfig, stack: &str) -> Vec<Problem> {
    let mut v = Checks::default();
    v.suffix(&config.environment);
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
    v.range("dynamodb.ttl_days", db.ttl_days, TTL_DAYS);
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

    v.sources(&config.events.accepted_sources);
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
    v.range(
        "dlq.retention_seconds",
        config.dlq.retention_seconds,
        SQS_RETENTION_SECONDS,
    );
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
    v.tags(&config.tags);
    if StackConfig::is_production(stack) {
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

    /// The suffix ends up in every name, so it takes the charset all of them accept.
    fn suffix(&mut self, suffix: &str) {
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

    fn sources(&mut self, sources: &[String]) {
        let path = "events.accepted_sources";
        if sources.is_empty() {
            self.push(path, "empty; allowed one or more event sources");
        }
        for (i, source) in sources.iter().enumerate() {
            let item = format!("{path}[{i}]");
            let len = source.chars().count();
            if !SOURCE_CHARS.contains(&len) {
                self.push(
                    &item,
                    format!("{source:?} is {len} characters; allowed 1..=256"),
                );
            } else if source.contains(',') || source.chars().any(char::is_whitespace) {
                // The processor receives the list comma-separated in ACCEPTED_SOURCES.
                self.push(
                    &item,
                    format!("{source:?} contains a comma or whitespace; allowed neither"),
                );
            } else if source.starts_with("aws.") {
                self.push(
                    &item,
                    format!("{source:?} starts with \"aws.\", which only AWS services may send; allowed a custom source"),
                );
            }
            if sources[..i].contains(source) {
                self.push(
                    &item,
                    format!("{source:?} is listed twice; allowed each source once"),
                );
            }
        }
    }

    fn alarms(&mut self, config: &StackConfig) {
        let alarms = &config.alarms;
        let period = alarms.period_seconds;
        if !(period == 10 || period == 30 || (period >= 60 && period.is_multiple_of(60))) {
            self.push(
                "alarms.period_seconds",
                format!(
                    "{period} is not a CloudWatch alarm period; allowed 10, 30 or a multiple of 60"
                ),
            );
        }
        if alarms.evaluation_periods == 0 {
            self.push(
                "alarms.evaluation_periods",
                "0 is out of range; allowed 1 or more",
            );
        } else if u64::from(period) * u64::from(alarms.evaluation_periods)
            > u64::from(ALARM_WINDOW_SECONDS)
        {
            self.push(
                "alarms.evaluation_periods",
                format!(
                    "{} periods of {period} s exceed one day; allowed period_seconds x evaluation_periods <= 86400",
                    alarms.evaluation_periods
                ),
            );
        }
        for (path, value) in [
            ("alarms.errors_threshold", alarms.errors_threshold),
            ("alarms.throttles_threshold", alarms.throttles_threshold),
            (
                "alarms.failed_invocations_threshold",
                alarms.failed_invocations_threshold,
            ),
        ] {
            if value == 0 {
                self.push(path, "0 would keep the alarm firing; allowed 1 or more");
            }
        }
        // Only a valid timeout bounds the threshold; an invalid one is reported on its own.
        let timeout = config.lambda.timeout_seconds;
        let duration = alarms.duration_threshold_ms;
        if TIMEOUT_SECONDS.contains(&timeout) {
            let below_timeout = u64::from(timeout) * 1000 - 1;
            if duration == 0 || u64::from(duration) > below_timeout {
                self.push(
                    "alarms.duration_threshold_ms",
                    format!(
                        "{duration} can never be crossed by an average duration; allowed 1..={below_timeout} (below lambda.timeout_seconds)"
                    ),
                );
            }
        }
        if let Some(email) = &alarms.email {
            if !is_email(email) {
                self.push(
                    "alarms.email",
                    format!("{email:?} is not an email address; allowed name@domain.tld"),
                );
            }
            if !alarms.sns_topic {
                self.push(
                    "alarms.email",
                    "needs alarms.sns_topic: true; the subscription belongs to that topic",
                );
            }
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

fn is_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    email.len() <= EMAIL_CHARS
        && !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
}

fn is_tag_char(c: char) -> bool {
    c.is_alphanumeric() || c == ' ' || "_.:/=+-@".contains(c)
}
