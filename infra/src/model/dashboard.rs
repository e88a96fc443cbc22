//! The stack's CloudWatch dashboard: the body as CloudWatch takes it (a JSON document of metric
//! widgets), built from the model so that every metric, table, queue and function it names is
//! the stack's own.

use serde_json::{Value, json};

use super::cloudwatch as cw;
use super::{EmfSpec, TableSpec};

/// Minutes: every widget plots per-minute points.
const PERIOD_SECONDS: u32 = 60;
/// Two widgets a row on CloudWatch's 24-column grid.
const WIDGET_WIDTH: u32 = 12;
const WIDGET_HEIGHT: u32 = 6;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DashboardSpec {
    pub name: String,
    /// The dashboard body; rendered as its JSON text.
    pub body: Value,
}

impl DashboardSpec {
    /// The body exactly as CloudWatch receives it: indented, so that a change to it reads as a
    /// change of lines in a review and in `pulumi preview`. serde_json's map keeps keys sorted,
    /// so the text is the same on every render.
    pub fn body_json(&self) -> String {
        serde_json::to_string_pretty(&self.body).unwrap_or_else(|_| self.body.to_string())
    }
}

/// What the dashboard shows, by physical name.
pub(super) struct Shown<'a> {
    pub region: &'a str,
    pub environment: &'a str,
    pub emf: &'a EmfSpec,
    pub function: &'a str,
    pub dlq: &'a str,
    pub tables: &'a [TableSpec],
    /// Per table: the DynamoDB operations the processor calls on it, as the alarms sum them.
    pub operations: Vec<Vec<&'static str>>,
}

pub(super) fn dashboard(name: String, s: &Shown) -> DashboardSpec {
    let widgets: Vec<Value> = [
        ingest(s),
        outcomes(s),
        lag(s, "p50"),
        lag(s, "p99"),
        rejected_by_class(s),
        dead_letters(s),
        function(s),
        throttled_requests(s),
    ]
    .into_iter()
    .enumerate()
    .map(|(i, (title, stat, metrics))| {
        let i = i as u32;
        json!({
            "type": "metric",
            "x": (i % 2) * WIDGET_WIDTH,
            "y": (i / 2) * WIDGET_HEIGHT,
            "width": WIDGET_WIDTH,
            "height": WIDGET_HEIGHT,
            "properties": {
                "title": title,
                "region": s.region,
                "view": "timeSeries",
                "stacked": false,
                "period": PERIOD_SECONDS,
                "stat": stat,
                "metrics": metrics,
            },
        })
    })
    .collect();
    DashboardSpec {
        name,
        body: json!({ "widgets": widgets }),
    }
}

/// A widget: its title, its default statistic and its metric rows.
type Widget = (String, &'static str, Vec<Value>);

/// A processor metric under `Environment` (and more dimensions), as a widget's metric row.
fn own(s: &Shown, metric: &str, more: &[(&str, &str)], options: Value) -> Value {
    let mut row = vec![
        json!(s.emf.namespace),
        json!(metric),
        json!(names::METRIC_DIMENSION),
        json!(s.environment),
    ];
    for (dimension, value) in more {
        row.extend([json!(dimension), json!(value)]);
    }
    row.push(options);
    Value::Array(row)
}

/// A CloudWatch SEARCH over the feed-health metrics of this environment: every `Exchange` and
/// `EventType` value that has data, without listing them.
fn feed_search(s: &Shown, metric_names: &[&str], filter: &str, stat: &str) -> String {
    let schema = std::iter::once(s.emf.namespace)
        .chain(names::METRIC_FEED_DIMENSIONS)
        .collect::<Vec<_>>()
        .join(",");
    let metrics = metric_names
        .iter()
        .map(|m| format!("MetricName=\"{m}\""))
        .collect::<Vec<_>>()
        .join(" OR ");
    format!(
        "SEARCH('{{{schema}}} {}=\"{}\"{filter} ({metrics})', '{stat}', {PERIOD_SECONDS})",
        names::METRIC_DIMENSION,
        s.environment
    )
}

fn expression(expression: String, label: &str, id: &str) -> Value {
    json!([{ "expression": expression, "label": label, "id": id }])
}

fn ingest(s: &Shown) -> Widget {
    let counted = [
        names::METRIC_PROCESSED,
        names::METRIC_DUPLICATE,
        names::METRIC_REJECTED,
    ];
    let ids: Vec<String> = counted.iter().map(|m| m.to_ascii_lowercase()).collect();
    let mut metrics: Vec<Value> = counted
        .iter()
        .zip(&ids)
        .map(|(metric, id)| own(s, metric, &[], json!({ "id": id, "visible": false })))
        .collect();
    metrics.push(expression(ids.join(" + "), "all exchanges", "ingest"));
    // One line per exchange the stack lists, and OTHER: each sums its event types and counters.
    for (i, exchange) in s.emf.exchanges.iter().enumerate() {
        let filter = format!(" {}=\"{exchange}\"", names::METRIC_DIMENSION_EXCHANGE);
        metrics.push(expression(
            format!("SUM({})", feed_search(s, &counted, &filter, "Sum")),
            exchange,
            &format!("exchange{i}"),
        ));
    }
    (
        "Events in per minute (processed + duplicate + rejected)".to_string(),
        "Sum",
        metrics,
    )
}

fn outcomes(s: &Shown) -> Widget {
    let metrics = [
        names::METRIC_PROCESSED,
        names::METRIC_DUPLICATE,
        names::METRIC_REJECTED,
        names::METRIC_FAILED,
    ]
    .iter()
    .map(|metric| own(s, metric, &[], json!({ "label": metric })))
    .collect();
    ("Outcomes per minute".to_string(), "Sum", metrics)
}

/// A percentile cannot be summed over series, so each exchange and event type is its own line.
fn lag(s: &Shown, stat: &'static str) -> Widget {
    let search = feed_search(s, &[names::METRIC_LAG], "", stat);
    (
        format!("Lag {stat} (ms, stored time - event time) per exchange and event type"),
        stat,
        vec![json!([{ "expression": search, "id": format!("lag{stat}") }])],
    )
}

fn rejected_by_class(s: &Shown) -> Widget {
    let metrics = names::REJECT_CLASSES
        .iter()
        .map(|class| {
            own(
                s,
                names::METRIC_REJECTED,
                &[(names::METRIC_DIMENSION_REASON_CLASS, class)],
                json!({ "label": class }),
            )
        })
        .collect();
    ("Rejected per minute by reason".to_string(), "Sum", metrics)
}

fn dead_letters(s: &Shown) -> Widget {
    let metrics = vec![
        json!([cw::SQS, cw::MESSAGES_VISIBLE, cw::QUEUE_NAME, s.dlq,
            { "label": "messages waiting" }]),
        json!([cw::SQS, cw::OLDEST_MESSAGE_AGE, cw::QUEUE_NAME, s.dlq,
            { "label": "oldest message (s)", "yAxis": "right" }]),
    ];
    (format!("Dead letters: {}", s.dlq), "Maximum", metrics)
}

fn function(s: &Shown) -> Widget {
    let metrics = vec![
        json!([cw::LAMBDA, cw::ERRORS, cw::FUNCTION_NAME, s.function, { "label": "errors" }]),
        json!([cw::LAMBDA, cw::THROTTLES, cw::FUNCTION_NAME, s.function,
            { "label": "throttles" }]),
        json!([cw::LAMBDA, cw::DURATION, cw::FUNCTION_NAME, s.function,
            { "label": "duration p99 (ms)", "stat": "p99", "yAxis": "right" }]),
    ];
    (format!("Function: {}", s.function), "Sum", metrics)
}

/// DynamoDB counts throttled requests per table and operation: per table, the sum over the
/// operations the processor calls, as its throttle alarm reads it.
fn throttled_requests(s: &Shown) -> Widget {
    let mut metrics = Vec::new();
    for (i, (table, operations)) in s.tables.iter().zip(&s.operations).enumerate() {
        let mut ids = Vec::new();
        for operation in operations {
            let id = format!("t{i}{}", operation.to_ascii_lowercase());
            metrics.push(json!([
                cw::DYNAMODB,
                cw::THROTTLED_REQUESTS,
                cw::TABLE_NAME,
                table.name,
                cw::OPERATION,
                operation,
                { "id": id, "visible": false }
            ]));
            ids.push(format!("FILL({id}, 0)"));
        }
        metrics.push(expression(ids.join(" + "), &table.name, &format!("t{i}")));
    }
    (
        "DynamoDB throttled requests per table".to_string(),
        "Sum",
        metrics,
    )
}

#[cfg(test)]
mod tests {
    use super::super::Model;
    use crate::stack::StackConfig;

    fn model(stack: &str) -> Model {
        let config = StackConfig::load(&crate::workspace_root(), stack).expect("committed stack");
        Model::from_stack(&config)
    }

    #[test]
    fn every_table_the_function_and_the_dlq_are_on_it() {
        let model = model("prod");
        let body = model.dashboard.body_json();
        for table in &model.tables {
            assert!(
                body.contains(&format!("\"{}\"", table.name)),
                "{}",
                table.name
            );
        }
        assert!(body.contains(&format!("\"{}\"", model.function.name)));
        assert!(body.contains(&format!("\"{}\"", model.dlq.name)));
        assert_eq!(model.dashboard.name, "market-data-prod");
        assert!(body.contains("\"region\": \"us-east-1\""));
        // Pulumi YAML would read `${` in the body as an interpolation.
        assert!(!body.contains("${"), "{body}");
    }

    #[test]
    fn the_ingest_rate_has_a_line_per_listed_exchange_and_other() {
        let model = model("prod");
        let widget = &model.dashboard.body["widgets"][0]["properties"];
        let metrics = widget["metrics"].as_array().cloned().unwrap_or_default();
        // Three hidden counters, their sum, then NASDAQ ... COINBASE and OTHER.
        assert_eq!(metrics.len(), 3 + 1 + 7);
        assert_eq!(
            metrics[3][0]["expression"],
            "processed + duplicate + rejected"
        );
        assert_eq!(metrics[4][0]["label"], "NASDAQ");
        assert_eq!(
            metrics[4][0]["expression"],
            "SUM(SEARCH('{MarketData,Environment,Exchange,EventType} Environment=\"prod\" \
             Exchange=\"NASDAQ\" (MetricName=\"Processed\" OR MetricName=\"Duplicate\" OR \
             MetricName=\"Rejected\")', 'Sum', 60))"
        );
        assert_eq!(metrics[10][0]["label"], names::METRIC_OTHER_EXCHANGE);
    }

    #[test]
    fn throttles_sum_the_operations_the_role_calls_per_table() {
        let model = model("dev");
        let widgets = model.dashboard.body["widgets"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let throttles = widgets
            .iter()
            .find(|w| w["properties"]["title"] == "DynamoDB throttled requests per table")
            .map(|w| w["properties"]["metrics"].clone())
            .unwrap_or_default();
        let sums: Vec<(String, String)> = throttles
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|row| {
                let e = &row[0];
                Some((
                    e["label"].as_str()?.to_string(),
                    e["expression"].as_str()?.to_string(),
                ))
            })
            .collect();
        assert_eq!(
            sums,
            [
                (
                    "market-data-dev".to_string(),
                    "FILL(t0getitem, 0) + FILL(t0putitem, 0) + FILL(t0query, 0)".to_string()
                ),
                (
                    "audit-trail-dev".to_string(),
                    "FILL(t1putitem, 0)".to_string()
                ),
                (
                    "latest-prices-dev".to_string(),
                    "FILL(t2putitem, 0)".to_string()
                ),
            ]
        );
    }

    #[test]
    fn the_body_is_the_same_on_every_build() {
        let (a, b) = (model("staging"), model("staging"));
        assert_eq!(a.dashboard.body_json(), b.dashboard.body_json());
        // Widgets tile two a row.
        let widgets = a.dashboard.body["widgets"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert_eq!(widgets.len(), 8);
        assert_eq!(
            (widgets[7]["x"].as_u64(), widgets[7]["y"].as_u64()),
            (Some(12), Some(18))
        );
    }
}
