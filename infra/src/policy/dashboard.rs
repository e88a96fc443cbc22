//! `dashboard-metrics`: a dashboard shows metrics that exist, of resources that exist, and every
//! table. CloudWatch draws an empty graph for a metric nobody publishes, so a misspelt name or
//! a metric under the wrong dimensions would look like a quiet feed instead of an error.

use std::collections::BTreeSet;

use serde_json::Value as Json;
use serde_yaml::Value;

use super::{Checks, DASHBOARD_METRICS, FUNCTION, QUEUE, TABLE};
use crate::model::EmfSpec;
use crate::model::cloudwatch as cw;
use crate::stack::MetricsConfig;

pub(super) const DASHBOARD: &str = "aws:cloudwatch/dashboard:Dashboard";

/// The physical names a metric's dimensions may refer to.
struct Known {
    suffix: String,
    /// Which metric goes under which dimensions does not depend on the exchanges listed.
    emf: EmfSpec,
    functions: BTreeSet<String>,
    queues: BTreeSet<String>,
    tables: BTreeSet<String>,
}

impl<'c, 'p> Checks<'c, 'p> {
    pub(super) fn dashboard_metrics(&mut self) {
        let names = |token: &str| -> BTreeSet<String> {
            self.of_type(token)
                .into_iter()
                .filter_map(|r| self.literal_name(r))
                .collect()
        };
        let known = Known {
            suffix: self.context.suffix.to_string(),
            emf: EmfSpec::new(&MetricsConfig::default()),
            functions: names(FUNCTION),
            queues: names(QUEUE),
            tables: names(TABLE),
        };
        let mut failing = Vec::new();
        for dashboard in self.of_type(DASHBOARD) {
            let path = dashboard.path("dashboardBody");
            let body = dashboard
                .get("dashboardBody")
                .and_then(Value::as_str)
                .and_then(|text| serde_json::from_str::<Json>(text).ok());
            let Some(widgets) = body.as_ref().and_then(|b| b["widgets"].as_array()) else {
                failing.push((
                    path,
                    "is not a dashboard body the rule can read: a JSON text with a widgets list"
                        .to_string(),
                ));
                continue;
            };
            let mut throttles_shown = BTreeSet::new();
            for (w, widget) in widgets.iter().enumerate() {
                let rows = widget["properties"]["metrics"].as_array();
                for (r, row) in rows.into_iter().flatten().enumerate() {
                    let at = format!("{path}.widgets[{w}].properties.metrics[{r}]");
                    match metric_row(row, &known) {
                        Ok(Some(table)) => {
                            throttles_shown.insert(table);
                        }
                        Ok(None) => {}
                        Err(message) => failing.push((at, message)),
                    }
                }
            }
            for table in known.tables.difference(&throttles_shown) {
                failing.push((
                    path.clone(),
                    format!(
                        "shows no {} {} of table {table:?}: its throttled writes, which end in \
                         the DLQ, would not be on the dashboard",
                        cw::DYNAMODB,
                        cw::THROTTLED_REQUESTS
                    ),
                ));
            }
        }
        for (path, message) in failing {
            self.fail(DASHBOARD_METRICS, path, message);
        }
    }
}

/// Checks one row of a widget's `metrics`; returns the table whose `ThrottledRequests` it shows.
fn metric_row(row: &Json, known: &Known) -> Result<Option<String>, String> {
    let Some(items) = row.as_array() else {
        return Err("is not a metric row (an array)".to_string());
    };
    if let Some(expression) = items.first().and_then(|first| first.get("expression")) {
        let expression = expression.as_str().unwrap_or_default();
        // Metric math over ids names no metric of its own; a SEARCH does.
        for search in searches(expression) {
            search_problem(search, known)?;
        }
        return Ok(None);
    }
    let strings: Vec<&str> = items.iter().map_while(Json::as_str).collect();
    let options = items.len() - strings.len();
    if options > 1 || strings.len() < 2 || !strings.len().is_multiple_of(2) {
        return Err(
            "is not [namespace, metric, dimension, value, ..., {options}]: the rule cannot tell \
             which metric it shows (the \"...\" shorthand included)"
                .to_string(),
        );
    }
    let (namespace, metric) = (strings[0], strings[1]);
    let dimensions: Vec<(&str, &str)> = strings[2..].chunks(2).map(|d| (d[0], d[1])).collect();
    let keys: Vec<&str> = dimensions.iter().map(|(k, _)| *k).collect();
    if namespace == known.emf.namespace {
        if !known.emf.emits(metric, &keys) {
            return Err(format!(
                "{namespace} {metric} under {keys:?}: the processor emits no such metric"
            ));
        }
        for (key, value) in &dimensions {
            own_dimension(key, value, known)?;
        }
        return Ok(None);
    }
    if !aws_publishes(namespace, metric, &keys) {
        return Err(format!(
            "{namespace} {metric} under {keys:?} is not a metric of the processor or one AWS \
             publishes that the rule knows (model::cloudwatch::DASHBOARD_AWS_METRICS)"
        ));
    }
    let mut table = None;
    for (key, value) in &dimensions {
        let resources = match *key {
            cw::FUNCTION_NAME => &known.functions,
            cw::QUEUE_NAME => &known.queues,
            cw::TABLE_NAME => {
                table = Some(value.to_string());
                &known.tables
            }
            _ => continue,
        };
        if !resources.contains(*value) {
            return Err(format!(
                "{key} {value:?} is no resource of this program: the graph would stay empty"
            ));
        }
    }
    Ok(table.filter(|_| namespace == cw::DYNAMODB && metric == cw::THROTTLED_REQUESTS))
}

fn aws_publishes(namespace: &str, metric: &str, keys: &[&str]) -> bool {
    cw::DASHBOARD_AWS_METRICS.iter().any(|(ns, name, dims)| {
        *ns == namespace
            && *name == metric
            && dims.len() == keys.len()
            && dims.iter().all(|d| keys.contains(d))
    })
}

/// The processor's dimensions whose values the stack fixes.
fn own_dimension(key: &str, value: &str, known: &Known) -> Result<(), String> {
    if key == names::METRIC_DIMENSION && value != known.suffix {
        return Err(format!(
            "{key} {value:?} is another environment's; this stack's is {:?}",
            known.suffix
        ));
    }
    if key == names::METRIC_DIMENSION_REASON_CLASS && !names::REJECT_CLASSES.contains(&value) {
        return Err(format!(
            "{key} {value:?} is not a reason class the processor uses: {:?}",
            names::REJECT_CLASSES
        ));
    }
    Ok(())
}

/// The search strings of every `SEARCH('...', ...)` in a metric math expression.
fn searches(expression: &str) -> Vec<&str> {
    expression
        .split("SEARCH('")
        .skip(1)
        .map(|rest| rest.split('\'').next().unwrap_or_default())
        .collect()
}

/// A SEARCH must say what it matches: a `{namespace,dimensions}` schema, `MetricName` terms the
/// schema's metrics have, and, over the processor's metrics, this stack's environment.
fn search_problem(search: &str, known: &Known) -> Result<(), String> {
    let schema = search
        .trim_start()
        .strip_prefix('{')
        .and_then(|rest| rest.split_once('}'))
        .map(|(schema, _)| schema.split(',').map(str::trim).collect::<Vec<_>>());
    let Some((namespace, keys)) = schema.as_ref().and_then(|s| s.split_first()) else {
        return Err(format!(
            "SEARCH('{search}') has no {{namespace,dimension,...}} schema: it may match any metric"
        ));
    };
    let metrics: Vec<&str> = search
        .split("MetricName=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .collect();
    if metrics.is_empty() {
        return Err(format!(
            "SEARCH('{search}') names no MetricName=\"...\": the rule cannot tell what it shows"
        ));
    }
    for metric in metrics {
        let emitted = *namespace == known.emf.namespace && known.emf.emits(metric, keys);
        if !emitted && !aws_publishes(namespace, metric, keys) {
            return Err(format!(
                "SEARCH('{search}'): {namespace} {metric} under {keys:?} is not a metric the \
                 processor emits or AWS publishes"
            ));
        }
    }
    let environment = format!("{}=\"{}\"", names::METRIC_DIMENSION, known.suffix);
    if *namespace == known.emf.namespace && !search.contains(&environment) {
        return Err(format!(
            "SEARCH('{search}') does not hold {environment}: it would draw every environment's \
             metrics"
        ));
    }
    Ok(())
}
