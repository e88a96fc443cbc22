//! The alarm topic, its subscription and the alarms, from [`Model::alarms`].

use serde_yaml::Value;

use super::{
    ALARM_EMAIL, ALARM_EVALUATIONS, ALARM_PERIOD, DLQ_AGE_THRESHOLD, DURATION_THRESHOLD,
    EMAIL_SUBSCRIPTION, ERRORS_THRESHOLD, FAILED_THRESHOLD, REJECTED_THRESHOLD, Resources,
    SILENT_FEED_MIN, SILENT_FEED_PERIODS, THROTTLES_THRESHOLD, TOPIC, config, int, obj, reference,
    seq, string,
};
use crate::model::{AlarmKind, AlarmMetric, AlarmSpec, Breach, MetricSpec};

/// Id of the expression whose result an alarm on metric math compares.
const RESULT_ID: &str = "result";

impl Resources<'_> {
    pub(super) fn alarms(&mut self) {
        let actions = self.model.topic.as_ref().map(|topic| {
            let properties = obj([("name", string(&topic.name)), ("tags", self.tags())]);
            self.add(TOPIC, "aws:sns/topic:Topic", properties, &[]);
            if topic.email.is_some() {
                let properties = obj([
                    ("topic", reference(TOPIC, "arn")),
                    ("protocol", string("email")),
                    ("endpoint", config(ALARM_EMAIL)),
                ]);
                self.add(
                    EMAIL_SUBSCRIPTION,
                    "aws:sns/topicSubscription:TopicSubscription",
                    properties,
                    &[],
                );
            }
            seq([reference(TOPIC, "arn")])
        });
        for alarm in &self.model.alarms {
            let mut properties = vec![
                ("name", string(&alarm.name)),
                ("alarmDescription", string(&alarm.description)),
            ];
            match &alarm.metric {
                AlarmMetric::Metric(metric) => properties.extend([
                    ("namespace", string(metric.namespace)),
                    ("metricName", string(metric.name)),
                    ("dimensions", dimensions(metric)),
                    ("statistic", string(metric.statistic)),
                    ("period", config(ALARM_PERIOD)),
                ]),
                AlarmMetric::Expression {
                    expression,
                    label,
                    metrics,
                } => {
                    let mut queries: Vec<Value> = metrics
                        .iter()
                        .map(|(id, metric)| {
                            obj([
                                ("id", string(id)),
                                (
                                    "metric",
                                    obj([
                                        ("namespace", string(metric.namespace)),
                                        ("metricName", string(metric.name)),
                                        ("dimensions", dimensions(metric)),
                                        ("stat", string(metric.statistic)),
                                        ("period", config(ALARM_PERIOD)),
                                    ]),
                                ),
                                ("returnData", Value::Bool(false)),
                            ])
                        })
                        .collect();
                    queries.push(obj([
                        ("id", string(RESULT_ID)),
                        ("expression", string(expression)),
                        ("label", string(label)),
                        ("returnData", Value::Bool(true)),
                    ]));
                    properties.push(("metricQueries", Value::Sequence(queries)));
                }
            }
            let periods = match alarm.kind {
                AlarmKind::SilentFeed => SILENT_FEED_PERIODS,
                _ => ALARM_EVALUATIONS,
            };
            properties.push(("evaluationPeriods", config(periods)));
            if alarm.breach == Breach::Any {
                // One lost event is one too many: a single breaching period alarms.
                properties.push(("datapointsToAlarm", int(1)));
            }
            properties.extend([
                ("comparisonOperator", string(alarm.comparison)),
                ("threshold", threshold(alarm)),
                // notBreaching where no data means no errors, drops or messages; breaching
                // only for the silent feed, where no data means no events.
                ("treatMissingData", string(alarm.missing_data.as_str())),
            ]);
            if let Some(actions) = &actions {
                properties.push(("alarmActions", actions.clone()));
                properties.push(("okActions", actions.clone()));
            }
            properties.push(("tags", self.tags()));
            self.add(
                alarm.key.clone(),
                "aws:cloudwatch/metricAlarm:MetricAlarm",
                obj(properties),
                &[],
            );
        }
    }
}

/// A tunable threshold comes from config; a fixed one (any loss alarms) is a literal.
fn threshold(alarm: &AlarmSpec) -> Value {
    match alarm.kind {
        AlarmKind::FunctionErrors => config(ERRORS_THRESHOLD),
        AlarmKind::FunctionThrottles => config(THROTTLES_THRESHOLD),
        AlarmKind::FunctionDuration => config(DURATION_THRESHOLD),
        AlarmKind::RuleFailedInvocations(_) => config(FAILED_THRESHOLD),
        AlarmKind::DlqAge => config(DLQ_AGE_THRESHOLD),
        AlarmKind::SilentFeed => config(SILENT_FEED_MIN),
        AlarmKind::RejectedShare => config(REJECTED_THRESHOLD),
        AlarmKind::AsyncEventsDropped
        | AlarmKind::DestinationDeliveryFailures
        | AlarmKind::DeadLetterErrors
        | AlarmKind::DlqMessages
        | AlarmKind::RuleDlqFailures(_)
        | AlarmKind::TableThrottles(_)
        | AlarmKind::TableSystemErrors(_)
        | AlarmKind::StreamIteratorAge => int(alarm.threshold),
    }
}

fn dimensions(metric: &MetricSpec) -> Value {
    obj(metric.dimensions.iter().map(|(k, v)| (*k, string(v))))
}
