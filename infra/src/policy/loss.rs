//! `loss-paths-alarmed`: every way an event can be lost, or stop arriving, has an alarm.

use std::collections::BTreeMap;

use serde_yaml::Value;

use super::{
    Checks, EVENT_RULE, EVENT_TARGET, FUNCTION, LOSS_PATHS_ALARMED, METRIC_ALARM, QUEUE, Resource,
    TABLE,
};
use crate::model::cloudwatch as cw;
use crate::schema::expr;

/// A metric an alarm reads.
struct Watched {
    namespace: String,
    metric: String,
    dimensions: BTreeMap<String, String>,
}

/// What the rule needs of one alarm.
struct Alarm<'p> {
    resource: &'p Resource<'p>,
    watched: Vec<Watched>,
    /// Whether it reads one metric, not an expression over several.
    single: bool,
    /// Whether one breaching period puts it in ALARM.
    one_period: bool,
    breaching_when_missing: bool,
}

/// A loss path: a metric of a resource that counts (or foretells) lost events.
struct Path {
    at: String,
    namespace: &'static str,
    metric: &'static str,
    dimension: &'static str,
    value: String,
    what: &'static str,
    /// A count of lost events: one breaching period must alarm.
    counter: bool,
    /// The silent feed: no data must breach, and only an alarm on the metric alone counts (a
    /// share computed from it says nothing when it has no data).
    breaching_when_missing: bool,
}

impl<'c, 'p> Checks<'c, 'p> {
    pub(super) fn loss_paths_alarmed(&mut self) {
        let alarms: Vec<Alarm> = self
            .of_type(METRIC_ALARM)
            .into_iter()
            .map(|resource| self.alarm(resource))
            .collect();
        let mut failing = Vec::new();
        for path in self.loss_paths() {
            let watching: Vec<&Alarm> = alarms
                .iter()
                .filter(|alarm| alarm.single || !path.breaching_when_missing)
                .filter(|alarm| {
                    alarm.watched.iter().any(|w| {
                        w.namespace == path.namespace
                            && w.metric == path.metric
                            && w.dimensions.get(path.dimension) == Some(&path.value)
                    })
                })
                .collect();
            let described = format!(
                "{} {} ({} {})",
                path.namespace, path.metric, path.dimension, path.value
            );
            if watching.is_empty() {
                failing.push((
                    path.at,
                    format!("no alarm on {described}: {} unnoticed", path.what),
                ));
            } else if path.counter && !watching.iter().any(|a| a.one_period) {
                failing.push((
                    format!("resources.{}.properties.datapointsToAlarm", watching[0].resource.name),
                    format!("must be 1 (or evaluationPeriods 1): every alarm on {described} needs several periods in a row, and a single loss would go unnoticed"),
                ));
            } else if path.breaching_when_missing
                && !watching.iter().any(|a| a.breaching_when_missing)
            {
                failing.push((
                    format!(
                        "resources.{}.properties.treatMissingData",
                        watching[0].resource.name
                    ),
                    format!(
                        "must be \"breaching\": {described} has no data at all when the feed stops"
                    ),
                ));
            }
        }
        if self.context.production {
            for alarm in &alarms {
                let actions = alarm.resource.get("alarmActions");
                if strings_or_refs(actions) == 0 {
                    failing.push((
                        alarm.resource.path("alarmActions"),
                        "missing in the production stack: the alarm would reach no one".to_string(),
                    ));
                }
            }
        }
        for (path, message) in failing {
            self.fail(LOSS_PATHS_ALARMED, path, message);
        }
    }

    fn loss_paths(&self) -> Vec<Path> {
        let mut paths = Vec::new();
        let path =
            |resource: &Resource, namespace, metric, dimension, value: &str, what, counter| Path {
                at: format!("resources.{}", resource.name),
                namespace,
                metric,
                dimension,
                value: value.to_string(),
                what,
                counter,
                breaching_when_missing: false,
            };
        for function in self.of_type(FUNCTION) {
            let Some(name) = self.literal_name(function) else {
                continue;
            };
            for (metric, what) in [
                ("AsyncEventsDropped", "events Lambda drops would go"),
                (
                    "DestinationDeliveryFailures",
                    "failed events lost on the way to their destination would go",
                ),
                (
                    "DeadLetterErrors",
                    "failed events lost on the way to the dead-letter queue would go",
                ),
            ] {
                paths.push(path(
                    function,
                    cw::LAMBDA,
                    metric,
                    cw::FUNCTION_NAME,
                    &name,
                    what,
                    true,
                ));
            }
        }
        let targeted: Vec<String> = self
            .of_type(EVENT_TARGET)
            .into_iter()
            .filter_map(|t| {
                t.get("rule")
                    .and_then(Value::as_str)
                    .and_then(expr::substitution)
            })
            .map(|r| r.root)
            .collect();
        for rule in self.of_type(EVENT_RULE) {
            if !targeted.iter().any(|t| t == rule.name) {
                continue;
            }
            let Some(name) = self.literal_name(rule) else {
                continue;
            };
            for (metric, what) in [
                (
                    "FailedInvocations",
                    "events the rule could not deliver would go",
                ),
                (
                    "InvocationsFailedToBeSentToDlq",
                    "events neither delivered nor dead-lettered would go",
                ),
            ] {
                paths.push(path(
                    rule,
                    "AWS/Events",
                    metric,
                    "RuleName",
                    &name,
                    what,
                    true,
                ));
            }
        }
        for queue in self.of_type(QUEUE) {
            let Some(name) = self.literal_name(queue) else {
                continue;
            };
            paths.push(path(
                queue,
                cw::SQS,
                cw::MESSAGES_VISIBLE,
                cw::QUEUE_NAME,
                &name,
                "events waiting for a redrive would go",
                true,
            ));
            paths.push(path(
                queue,
                cw::SQS,
                cw::OLDEST_MESSAGE_AGE,
                cw::QUEUE_NAME,
                &name,
                "messages nearing the queue's retention, which deletes them, would go",
                true,
            ));
        }
        for table in self.of_type(TABLE) {
            let Some(name) = self.literal_name(table) else {
                continue;
            };
            for (metric, what) in [
                (
                    cw::THROTTLED_REQUESTS,
                    "writes DynamoDB refuses for capacity would go",
                ),
                ("SystemErrors", "writes DynamoDB fails itself would go"),
            ] {
                paths.push(path(
                    table,
                    cw::DYNAMODB,
                    metric,
                    cw::TABLE_NAME,
                    &name,
                    what,
                    true,
                ));
            }
        }
        // A stream mapping retries a failing shard's records until they reach its maximum age;
        // a falling-behind shard shows first as the age of what it hands the function.
        for mapping in self.of_type(super::stream::MAPPING) {
            let function = mapping
                .get("functionName")
                .and_then(Value::as_str)
                .and_then(expr::substitution)
                .and_then(|r| self.resources.iter().find(|f| f.name == r.root));
            let Some(name) = function.and_then(|f| self.literal_name(f)) else {
                continue;
            };
            paths.push(path(
                mapping,
                cw::LAMBDA,
                "IteratorAge",
                cw::FUNCTION_NAME,
                &name,
                "stream records ageing towards the DLQ would go",
                false,
            ));
        }
        // The processor's own outcomes: a feed that stops, and a feed it no longer understands
        // (every event REJECTED while Errors stays 0).
        if let Some(function) = self.of_type(FUNCTION).first() {
            let suffix = self.context.suffix;
            let mut silent = path(
                function,
                names::METRICS_NAMESPACE,
                names::METRIC_PROCESSED,
                names::METRIC_DIMENSION,
                suffix,
                "a feed that stops would go",
                false,
            );
            silent.breaching_when_missing = true;
            paths.push(silent);
            paths.push(path(
                function,
                names::METRICS_NAMESPACE,
                names::METRIC_REJECTED,
                names::METRIC_DIMENSION,
                suffix,
                "a feed whose every event is rejected would go",
                false,
            ));
        }
        paths
    }

    pub(super) fn literal_name(&self, resource: &Resource) -> Option<String> {
        resource
            .get("name")
            .map(|v| self.resolve(v))
            .and_then(Value::as_str)
            .map(str::to_string)
    }

    fn alarm(&self, resource: &'p Resource<'p>) -> Alarm<'p> {
        let mut watched: Vec<Watched> = Vec::new();
        let single = Watched {
            namespace: text(resource.get("namespace")),
            metric: text(resource.get("metricName")),
            dimensions: dimensions(resource.get("dimensions")),
        };
        if !single.metric.is_empty() {
            watched.push(single);
        }
        if let Some(Value::Sequence(queries)) = resource.get("metricQueries") {
            for metric in queries.iter().filter_map(|q| q.get("metric")) {
                watched.push(Watched {
                    namespace: text(metric.get("namespace")),
                    metric: text(metric.get("metricName")),
                    dimensions: dimensions(metric.get("dimensions")),
                });
            }
        }
        let number = |key: &str| {
            resource
                .get(key)
                .map(|v| self.resolve(v))
                .and_then(Value::as_u64)
        };
        Alarm {
            resource,
            single: watched.len() == 1 && resource.get("metricQueries").is_none(),
            watched,
            one_period: number("datapointsToAlarm") == Some(1)
                || number("evaluationPeriods") == Some(1),
            breaching_when_missing: resource.get("treatMissingData").and_then(Value::as_str)
                == Some("breaching"),
        }
    }
}

fn text(value: Option<&Value>) -> String {
    value
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn dimensions(value: Option<&Value>) -> BTreeMap<String, String> {
    value
        .and_then(Value::as_mapping)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.as_str()?.to_string(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// How many actions a list names.
fn strings_or_refs(value: Option<&Value>) -> usize {
    match value {
        Some(Value::Sequence(items)) => items.iter().filter(|i| i.is_string()).count(),
        Some(Value::String(_)) => 1,
        _ => 0,
    }
}
