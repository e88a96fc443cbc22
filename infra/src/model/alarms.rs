//! The alarms of a stack. Besides the processor's health (errors, throttles, duration), every way
//! an event can be lost or stop arriving has one: Lambda dropping or failing to hand over an
//! asynchronous event, EventBridge failing to deliver or to dead-letter, a DLQ message nearing
//! its retention, DynamoDB refusing writes, the feed going quiet, the feed's format changing.

use std::collections::BTreeMap;

use super::cloudwatch as cw;
use super::{RuleSpec, TableSpec};
use crate::stack::AlarmsConfig;

/// What an alarm watches; the renderer knows which config key sets each threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlarmKind {
    FunctionErrors,
    FunctionThrottles,
    FunctionDuration,
    /// Events Lambda discarded: retries or age spent with nowhere to send them.
    AsyncEventsDropped,
    /// Failed events Lambda could not hand to the on-failure destination.
    DestinationDeliveryFailures,
    /// Failed events Lambda could not send to the function's dead-letter queue.
    DeadLetterErrors,
    DlqMessages,
    /// The DLQ's oldest message, which SQS deletes at the queue's retention.
    DlqAge,
    /// `FailedInvocations` of `rules[index]`.
    RuleFailedInvocations(usize),
    /// `InvocationsFailedToBeSentToDlq` of `rules[index]`.
    RuleDlqFailures(usize),
    /// Throttled requests of the processor's operations on `tables[index]`.
    TableThrottles(usize),
    /// DynamoDB's internal errors on the processor's operations on `tables[index]`.
    TableSystemErrors(usize),
    /// Too few `Processed` events, or no metric at all.
    SilentFeed,
    /// Rejected events as a share of all outcomes.
    RejectedShare,
    /// The age of the records the stream path hands the processor: a shard falling behind,
    /// whose records go to the DLQ once they reach the mapping's maximum record age.
    StreamIteratorAge,
}

/// One CloudWatch metric; dimensions by physical name, so the alarm needs no other resource to
/// exist first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricSpec {
    pub namespace: &'static str,
    pub name: &'static str,
    pub statistic: &'static str,
    pub dimensions: BTreeMap<&'static str, String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlarmMetric {
    Metric(MetricSpec),
    /// Metric math: `expression` over `metrics`, each under its query id.
    Expression {
        expression: String,
        label: String,
        metrics: Vec<(String, MetricSpec)>,
    },
}

/// How a period without data counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MissingData {
    /// Where no data means nothing happened: no errors, no drops, no messages.
    NotBreaching,
    /// Where no data means no events: the silent feed.
    Breaching,
}

impl MissingData {
    pub fn as_str(self) -> &'static str {
        match self {
            MissingData::NotBreaching => "notBreaching",
            MissingData::Breaching => "breaching",
        }
    }
}

/// How many of the evaluated periods must breach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Breach {
    /// Every one: a rate or a level that matters only when it lasts.
    Sustained,
    /// Any one: a count of lost events, where a single one is a loss.
    Any,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlarmSpec {
    pub kind: AlarmKind,
    /// Pulumi logical name.
    pub key: String,
    pub name: String,
    pub description: String,
    pub metric: AlarmMetric,
    pub comparison: &'static str,
    pub threshold: u32,
    pub breach: Breach,
    pub missing_data: MissingData,
}

impl AlarmSpec {
    /// CloudWatch bills an alarm per metric it reads: one, or each metric of an expression.
    pub fn metric_count(&self) -> usize {
        match &self.metric {
            AlarmMetric::Metric(_) => 1,
            AlarmMetric::Expression { metrics, .. } => metrics.len(),
        }
    }
}

const ERRORS: &str = "market-processor-errors";
const THROTTLES: &str = "market-processor-throttles";
const DURATION: &str = "market-processor-duration";
const DROPPED: &str = "market-processor-async-events-dropped";
const DESTINATION: &str = "market-processor-destination-failures";
const DEAD_LETTER: &str = "market-processor-dead-letter-errors";
const DLQ_MESSAGES: &str = "market-processor-dlq-messages";
const DLQ_AGE: &str = "market-processor-dlq-age";
const SILENT_FEED: &str = "market-data-silent-feed";
const REJECTED_SHARE: &str = "market-data-rejected-share";
const ITERATOR_AGE: &str = "market-processor-iterator-age";
const RULE_FAILED: &str = "failed-invocations";
const RULE_DLQ_FAILED: &str = "dlq-failures";
const TABLE_THROTTLES: &str = "throttles";
const TABLE_SYSTEM_ERRORS: &str = "system-errors";

/// The resources the alarms watch, by physical name.
pub(super) struct Watched<'a> {
    pub suffix: &'a str,
    pub function: &'a str,
    pub dlq: &'a str,
    pub bus: &'a str,
    pub rules: &'a [RuleSpec],
    pub tables: &'a [TableSpec],
    /// Per table: the DynamoDB operations the processor calls on it per event.
    pub operations: Vec<Vec<&'static str>>,
    /// The stream mapping's maximum record age, when the stack has the stream path.
    pub stream_record_age_seconds: Option<u32>,
}

/// The name prefix of every alarm `alarms` builds for `rules` and `tables`.
pub(super) fn name_prefixes(rule_prefixes: &[&str], table_prefixes: &[&str]) -> Vec<String> {
    let mut prefixes: Vec<String> = [
        ERRORS,
        THROTTLES,
        DURATION,
        DROPPED,
        DESTINATION,
        DEAD_LETTER,
        DLQ_MESSAGES,
        DLQ_AGE,
        SILENT_FEED,
        REJECTED_SHARE,
        ITERATOR_AGE,
    ]
    .iter()
    .map(|p| p.to_string())
    .collect();
    for rule in rule_prefixes {
        prefixes.extend([RULE_FAILED, RULE_DLQ_FAILED].map(|a| format!("{rule}-{a}")));
    }
    for table in table_prefixes {
        prefixes.extend([TABLE_THROTTLES, TABLE_SYSTEM_ERRORS].map(|a| format!("{table}-{a}")));
    }
    prefixes
}

fn metric(
    namespace: &'static str,
    name: &'static str,
    statistic: &'static str,
    dimensions: impl IntoIterator<Item = (&'static str, String)>,
) -> MetricSpec {
    MetricSpec {
        namespace,
        name,
        statistic,
        dimensions: dimensions.into_iter().collect(),
    }
}

pub(super) fn alarms(config: &AlarmsConfig, w: &Watched) -> Vec<AlarmSpec> {
    let name = |prefix: &str| names::suffixed(prefix, w.suffix);
    let function = || [(cw::FUNCTION_NAME, w.function.to_string())];
    let lambda = |kind,
                  key: &str,
                  prefix: &str,
                  metric_name,
                  statistic,
                  comparison,
                  threshold,
                  breach,
                  description: String| AlarmSpec {
        kind,
        key: key.to_string(),
        name: name(prefix),
        description,
        metric: AlarmMetric::Metric(metric(cw::LAMBDA, metric_name, statistic, function())),
        comparison,
        threshold,
        breach,
        missing_data: MissingData::NotBreaching,
    };
    let mut alarms = vec![
        lambda(
            AlarmKind::FunctionErrors,
            "processorErrorsAlarm",
            ERRORS,
            cw::ERRORS,
            "Sum",
            "GreaterThanOrEqualToThreshold",
            config.errors_threshold,
            Breach::Sustained,
            format!("Invocation errors of {}", w.function),
        ),
        lambda(
            AlarmKind::FunctionThrottles,
            "processorThrottlesAlarm",
            THROTTLES,
            cw::THROTTLES,
            "Sum",
            "GreaterThanOrEqualToThreshold",
            config.throttles_threshold,
            Breach::Sustained,
            format!("Throttled invocations of {}", w.function),
        ),
        lambda(
            AlarmKind::FunctionDuration,
            "processorDurationAlarm",
            DURATION,
            cw::DURATION,
            "Average",
            "GreaterThanThreshold",
            config.duration_threshold_ms,
            Breach::Sustained,
            format!("Average duration (ms) of {}", w.function),
        ),
        lambda(
            AlarmKind::AsyncEventsDropped,
            "processorAsyncEventsDroppedAlarm",
            DROPPED,
            "AsyncEventsDropped",
            "Sum",
            "GreaterThanThreshold",
            0,
            Breach::Any,
            format!(
                "Events {} dropped with retries or age spent and nowhere to send them",
                w.function
            ),
        ),
        lambda(
            AlarmKind::DestinationDeliveryFailures,
            "processorDestinationFailuresAlarm",
            DESTINATION,
            "DestinationDeliveryFailures",
            "Sum",
            "GreaterThanThreshold",
            0,
            Breach::Any,
            format!(
                "Failed events {} could not hand to its on-failure destination",
                w.function
            ),
        ),
        lambda(
            AlarmKind::DeadLetterErrors,
            "processorDeadLetterErrorsAlarm",
            DEAD_LETTER,
            "DeadLetterErrors",
            "Sum",
            "GreaterThanThreshold",
            0,
            Breach::Any,
            format!(
                "Failed events {} could not send to its dead-letter queue",
                w.function
            ),
        ),
    ];

    let queue = || [(cw::QUEUE_NAME, w.dlq.to_string())];
    alarms.extend([
        AlarmSpec {
            kind: AlarmKind::DlqMessages,
            key: "deadLetterQueueAlarm".to_string(),
            name: name(DLQ_MESSAGES),
            description: format!(
                "Messages waiting in {}: events that were never stored",
                w.dlq
            ),
            metric: AlarmMetric::Metric(metric(cw::SQS, cw::MESSAGES_VISIBLE, "Maximum", queue())),
            comparison: "GreaterThanThreshold",
            threshold: 0,
            breach: Breach::Any,
            missing_data: MissingData::NotBreaching,
        },
        AlarmSpec {
            kind: AlarmKind::DlqAge,
            key: "deadLetterQueueAgeAlarm".to_string(),
            name: name(DLQ_AGE),
            description: format!(
                "Oldest message in {} (s): redrive it before the queue's retention deletes it",
                w.dlq
            ),
            metric: AlarmMetric::Metric(metric(
                cw::SQS,
                cw::OLDEST_MESSAGE_AGE,
                "Maximum",
                queue(),
            )),
            comparison: "GreaterThanThreshold",
            threshold: config.dlq_age_threshold_seconds,
            breach: Breach::Any,
            missing_data: MissingData::NotBreaching,
        },
    ]);

    for (index, rule) in w.rules.iter().enumerate() {
        // Rules on a custom bus publish under both dimensions.
        let dimensions = || {
            [
                ("EventBusName", w.bus.to_string()),
                ("RuleName", rule.name.clone()),
            ]
        };
        alarms.push(AlarmSpec {
            kind: AlarmKind::RuleFailedInvocations(index),
            key: format!("{}FailedAlarm", rule.key),
            name: name(&format!("{}-{RULE_FAILED}", rule.prefix)),
            description: format!("Events {} could not deliver to the processor", rule.name),
            metric: AlarmMetric::Metric(metric(
                "AWS/Events",
                "FailedInvocations",
                "Sum",
                dimensions(),
            )),
            comparison: "GreaterThanOrEqualToThreshold",
            threshold: config.failed_invocations_threshold,
            breach: Breach::Any,
            missing_data: MissingData::NotBreaching,
        });
        alarms.push(AlarmSpec {
            kind: AlarmKind::RuleDlqFailures(index),
            key: format!("{}DlqFailedAlarm", rule.key),
            name: name(&format!("{}-{RULE_DLQ_FAILED}", rule.prefix)),
            description: format!(
                "Undeliverable events {} could not put in the DLQ either: lost",
                rule.name
            ),
            metric: AlarmMetric::Metric(metric(
                "AWS/Events",
                "InvocationsFailedToBeSentToDlq",
                "Sum",
                dimensions(),
            )),
            comparison: "GreaterThanThreshold",
            threshold: 0,
            breach: Breach::Any,
            missing_data: MissingData::NotBreaching,
        });
    }

    for (index, (table, operations)) in w.tables.iter().zip(&w.operations).enumerate() {
        let table_alarm = |kind, alarm: &str, metric_name, what: &str| AlarmSpec {
            kind,
            key: format!("{}{}Alarm", table.key, upper_camel(alarm)),
            name: name(&format!("{}-{alarm}", table.prefix)),
            description: format!(
                "{what} on {} (the processor's {})",
                table.name,
                operations.join(", ")
            ),
            metric: per_operation(metric_name, &table.name, operations),
            comparison: "GreaterThanThreshold",
            threshold: 0,
            breach: Breach::Any,
            missing_data: MissingData::NotBreaching,
        };
        alarms.push(table_alarm(
            AlarmKind::TableThrottles(index),
            TABLE_THROTTLES,
            cw::THROTTLED_REQUESTS,
            "Throttled requests",
        ));
        alarms.push(table_alarm(
            AlarmKind::TableSystemErrors(index),
            TABLE_SYSTEM_ERRORS,
            "SystemErrors",
            "DynamoDB system errors",
        ));
    }

    let feed = |metric_name| {
        metric(
            names::METRICS_NAMESPACE,
            metric_name,
            "Sum",
            [(names::METRIC_DIMENSION, w.suffix.to_string())],
        )
    };
    alarms.push(AlarmSpec {
        kind: AlarmKind::SilentFeed,
        key: "silentFeedAlarm".to_string(),
        name: name(SILENT_FEED),
        description: format!(
            "Events stored per period by {}: the feed stopped, or nothing reaches the tables",
            w.function
        ),
        metric: AlarmMetric::Metric(feed(names::METRIC_PROCESSED)),
        comparison: "LessThanThreshold",
        threshold: config.silent_feed_min_processed,
        breach: Breach::Sustained,
        missing_data: MissingData::Breaching,
    });
    // The processor's EMF line carries all four counters for every event (one of them 1), so
    // they have data in the same periods; a period without events has none and is not a breach.
    let outcomes = [
        ("processed", names::METRIC_PROCESSED),
        ("duplicate", names::METRIC_DUPLICATE),
        ("rejected", names::METRIC_REJECTED),
        ("failed", names::METRIC_FAILED),
    ];
    alarms.push(AlarmSpec {
        kind: AlarmKind::RejectedShare,
        key: "rejectedShareAlarm".to_string(),
        name: name(REJECTED_SHARE),
        description: format!(
            "Share of events {} rejected (%): a feed format change rejects them all while Errors stays 0",
            w.function
        ),
        metric: AlarmMetric::Expression {
            expression: "100 * rejected / (processed + duplicate + rejected + failed)".to_string(),
            label: "Rejected share of all outcomes (%)".to_string(),
            metrics: outcomes
                .iter()
                .map(|(id, metric_name)| (id.to_string(), feed(metric_name)))
                .collect(),
        },
        comparison: "GreaterThanThreshold",
        threshold: config.rejected_percent_threshold,
        breach: Breach::Sustained,
        missing_data: MissingData::NotBreaching,
    });
    if let Some(age) = w.stream_record_age_seconds {
        // Half the maximum age leaves as long again to add capacity before records start
        // going to the DLQ instead of the tables.
        alarms.push(lambda(
            AlarmKind::StreamIteratorAge,
            "processorIteratorAgeAlarm",
            ITERATOR_AGE,
            "IteratorAge",
            "Maximum",
            "GreaterThanThreshold",
            age.saturating_mul(1000) / 2,
            Breach::Sustained,
            format!(
                "Age (ms) of the stream records {} receives: at {age} s they go to the DLQ",
                w.function
            ),
        ));
    }
    alarms
}

/// DynamoDB reports `ThrottledRequests` and `SystemErrors` per table and operation: one metric
/// for a single operation, their sum for several.
fn per_operation(
    metric_name: &'static str,
    table: &str,
    operations: &[&'static str],
) -> AlarmMetric {
    let one = |operation: &str| {
        metric(
            cw::DYNAMODB,
            metric_name,
            "Sum",
            [
                (cw::TABLE_NAME, table.to_string()),
                (cw::OPERATION, operation.to_string()),
            ],
        )
    };
    if let [operation] = operations {
        return AlarmMetric::Metric(one(operation));
    }
    let metrics: Vec<(String, MetricSpec)> = operations
        .iter()
        .map(|operation| (operation.to_ascii_lowercase(), one(operation)))
        .collect();
    // An operation without requests in a period has no data point; FILL keeps the sum defined.
    let expression = metrics
        .iter()
        .map(|(id, _)| format!("FILL({id}, 0)"))
        .collect::<Vec<_>>()
        .join(" + ");
    AlarmMetric::Expression {
        expression,
        label: format!("{metric_name} ({})", operations.join(", ")),
        metrics,
    }
}

/// `system-errors` → `SystemErrors`.
fn upper_camel(kebab: &str) -> String {
    kebab
        .split('-')
        .map(|word| {
            let mut chars = word.chars();
            chars
                .next()
                .map(|first| first.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect()
}
