//! CloudWatch Embedded Metric Format: one JSON line per event on stdout, which Lambda ships
//! to CloudWatch Logs and CloudWatch turns into metrics without any API call.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::item::Status;

static ENABLED: AtomicBool = AtomicBool::new(false);

/// Turns emission on; only the Lambda binary does, so tests and the local runner stay quiet.
pub fn enable() {
    ENABLED.store(true, Ordering::Relaxed);
}

/// What one event contributes to the metrics.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample<'a> {
    pub status: Status,
    pub processing_ms: f64,
    /// A configured exchange, or [`names::METRIC_OTHER_EXCHANGE`]: the value set stays bounded
    /// whatever a producer sends.
    pub exchange: &'a str,
    /// `trade`, `quote` or `unknown`.
    pub event_type: &'a str,
    /// Stored events: when stored minus the event time, in whole milliseconds, at least 0 (an
    /// event stamped ahead of the clock, within the allowed skew, counts as no lag).
    pub lag_ms: Option<i64>,
    /// Rejected events: one of [`names::REJECT_CLASSES`].
    pub reason_class: Option<&'static str>,
}

/// The EMF document for one event: up to four directives in one line.
/// - `Environment`: the counters and the processing latency (the alarms read these);
/// - `Environment, Exchange, EventType`: the counters again, per feed;
/// - the same dimensions, `Lag`, for a stored event;
/// - `Environment, ReasonClass`: `Rejected`, for a rejected event.
///
/// At most 11 metric values per event whatever the input, and a bounded set of series: the
/// exchanges configured plus one, three event types, six reason classes.
///
/// Written by hand rather than through a `serde_json::Value`: building and serializing the
/// tree cost more than the rest of the processor's own per-event work. The bytes are those
/// `serde_json` writes for the same document (keys in sorted order; the test holds both).
pub fn document(environment: &str, sample: &Sample, now_ms: i64) -> String {
    let status = sample.status;
    let counter = |s: Status| if s == status { '1' } else { '0' };
    let latency = (sample.processing_ms * 1000.0).round() / 1000.0;
    let mut out = String::with_capacity(1100 + environment.len());
    out.push_str("{\"Duplicate\":");
    out.push(counter(Status::Duplicate));
    out.push_str(",\"Environment\":");
    push_json_string(&mut out, environment);
    out.push_str(",\"EventType\":");
    push_json_string(&mut out, sample.event_type);
    out.push_str(",\"Exchange\":");
    push_json_string(&mut out, sample.exchange);
    out.push_str(",\"Failed\":");
    out.push(counter(Status::Failed));
    if let Some(lag) = sample.lag_ms {
        out.push_str(",\"Lag\":");
        out.push_str(&lag.max(0).to_string());
    }
    out.push_str(",\"Processed\":");
    out.push(counter(Status::Processed));
    out.push_str(",\"ProcessingLatency\":");
    push_json_f64(&mut out, latency);
    if let Some(class) = sample.reason_class {
        out.push_str(",\"ReasonClass\":");
        push_json_string(&mut out, class);
    }
    out.push_str(",\"Rejected\":");
    out.push(counter(Status::Rejected));
    out.push_str(",\"_aws\":{\"CloudWatchMetrics\":[");
    push_directive(
        &mut out,
        &[names::METRIC_DIMENSION],
        &[
            (names::METRIC_PROCESSED, COUNT),
            (names::METRIC_DUPLICATE, COUNT),
            (names::METRIC_REJECTED, COUNT),
            (names::METRIC_FAILED, COUNT),
            (names::METRIC_PROCESSING_LATENCY, MILLISECONDS),
        ],
    );
    out.push(',');
    push_directive(
        &mut out,
        &names::METRIC_FEED_DIMENSIONS,
        &[
            (names::METRIC_PROCESSED, COUNT),
            (names::METRIC_DUPLICATE, COUNT),
            (names::METRIC_REJECTED, COUNT),
        ],
    );
    if sample.lag_ms.is_some() {
        out.push(',');
        push_directive(
            &mut out,
            &names::METRIC_FEED_DIMENSIONS,
            &[(names::METRIC_LAG, MILLISECONDS)],
        );
    }
    if sample.reason_class.is_some() {
        out.push(',');
        push_directive(
            &mut out,
            &[
                names::METRIC_DIMENSION,
                names::METRIC_DIMENSION_REASON_CLASS,
            ],
            &[(names::METRIC_REJECTED, COUNT)],
        );
    }
    out.push_str("],\"Timestamp\":");
    out.push_str(&now_ms.to_string());
    out.push_str("}}");
    out
}

const COUNT: &str = "Count";
const MILLISECONDS: &str = "Milliseconds";

/// `{"Dimensions":[[...]],"Metrics":[{"Name":..,"Unit":..},...],"Namespace":..}`; every name
/// is a constant of plain ASCII, so none needs escaping.
fn push_directive(out: &mut String, dimensions: &[&str], metrics: &[(&str, &str)]) {
    out.push_str("{\"Dimensions\":[[");
    for (i, dimension) in dimensions.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push('"');
        out.push_str(dimension);
        out.push('"');
    }
    out.push_str("]],\"Metrics\":[");
    for (i, (name, unit)) in metrics.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("{\"Name\":\"");
        out.push_str(name);
        out.push_str("\",\"Unit\":\"");
        out.push_str(unit);
        out.push_str("\"}");
    }
    out.push_str("],\"Namespace\":");
    push_json_string(out, names::METRICS_NAMESPACE);
    out.push('}');
}

fn push_json_string(out: &mut String, text: &str) {
    // Serializing a string cannot fail.
    out.push_str(&serde_json::to_string(text).unwrap_or_default());
}

fn push_json_f64(out: &mut String, value: f64) {
    // serde_json writes a non-finite number as null, as `json!` does.
    out.push_str(&serde_json::to_string(&value).unwrap_or_else(|_| "null".to_string()));
}

pub fn emit(environment: &str, sample: &Sample) {
    if !ENABLED.load(Ordering::Relaxed) {
        return;
    }
    let line = document(environment, sample, chrono::Utc::now().timestamp_millis());
    // A lost metric line must never fail an event.
    let _ = writeln!(std::io::stdout().lock(), "{line}");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(status: Status) -> Sample<'static> {
        Sample {
            status,
            processing_ms: 1.23456,
            exchange: "NASDAQ",
            event_type: "trade",
            lag_ms: (status == Status::Processed).then_some(250),
            reason_class: (status == Status::Rejected).then_some("field"),
        }
    }

    fn parse(doc: &str) -> serde_json::Value {
        serde_json::from_str(doc).unwrap()
    }

    #[test]
    fn document_counts_exactly_one_status() {
        let doc = parse(&document("dev", &sample(Status::Duplicate), 42));
        assert_eq!(doc["Duplicate"], 1);
        assert_eq!(doc["Processed"], 0);
        assert_eq!(doc["Rejected"], 0);
        assert_eq!(doc["Failed"], 0);
        assert_eq!(doc["Environment"], "dev");
        assert_eq!(doc["Exchange"], "NASDAQ");
        assert_eq!(doc["EventType"], "trade");
        assert_eq!(doc["_aws"]["Timestamp"], 42);
        assert_eq!(
            doc["_aws"]["CloudWatchMetrics"][0]["Namespace"],
            "MarketData"
        );
        assert_eq!(doc["ProcessingLatency"].to_string(), "1.235");
        assert!(doc.get("Lag").is_none(), "a duplicate has no lag");
    }

    /// Every metric a directive declares has a value in the document, and the directives are
    /// the ones the dashboard and alarms read (names from `names`).
    #[test]
    fn directives_declare_the_names_alarms_and_dashboards_use() {
        for status in [
            Status::Processed,
            Status::Duplicate,
            Status::Rejected,
            Status::Failed,
        ] {
            let doc = parse(&document("dev", &sample(status), 42));
            let directives = doc["_aws"]["CloudWatchMetrics"].as_array().unwrap();
            let mut values = 0;
            for directive in directives {
                for dimension in directive["Dimensions"][0].as_array().unwrap() {
                    let dimension = dimension.as_str().unwrap();
                    assert!(doc[dimension].is_string(), "{dimension} has no value");
                }
                for metric in directive["Metrics"].as_array().unwrap() {
                    let name = metric["Name"].as_str().unwrap();
                    assert!(doc[name].is_number(), "{name} has no value");
                    values += 1;
                }
            }
            assert!(values <= 11, "{values} metric values for one event");
            let dims = |i: usize| directives[i]["Dimensions"][0].clone();
            assert_eq!(dims(0), serde_json::json!([names::METRIC_DIMENSION]));
            assert_eq!(dims(1), serde_json::json!(names::METRIC_FEED_DIMENSIONS));
            match status {
                Status::Processed => {
                    assert_eq!(directives.len(), 3);
                    assert_eq!(directives[2]["Metrics"][0]["Name"], names::METRIC_LAG);
                    assert_eq!(doc[names::METRIC_LAG], 250);
                }
                Status::Rejected => {
                    assert_eq!(directives.len(), 3);
                    assert_eq!(
                        dims(2),
                        serde_json::json!([
                            names::METRIC_DIMENSION,
                            names::METRIC_DIMENSION_REASON_CLASS
                        ])
                    );
                    assert_eq!(doc[names::METRIC_DIMENSION_REASON_CLASS], "field");
                }
                _ => assert_eq!(directives.len(), 2),
            }
        }
    }

    /// The document as `serde_json` builds it from a value tree: the reference for the
    /// hand-written one.
    fn reference(environment: &str, sample: &Sample, now_ms: i64) -> String {
        let status = sample.status;
        let counter = |s: Status| u8::from(s == status);
        let directive = |dimensions: serde_json::Value, metrics: serde_json::Value| {
            serde_json::json!({
                "Namespace": names::METRICS_NAMESPACE,
                "Dimensions": [dimensions],
                "Metrics": metrics,
            })
        };
        let feed = serde_json::json!(["Environment", "Exchange", "EventType"]);
        let mut directives = vec![
            directive(
                serde_json::json!(["Environment"]),
                serde_json::json!([
                    {"Name": "Processed", "Unit": "Count"},
                    {"Name": "Duplicate", "Unit": "Count"},
                    {"Name": "Rejected", "Unit": "Count"},
                    {"Name": "Failed", "Unit": "Count"},
                    {"Name": "ProcessingLatency", "Unit": "Milliseconds"}
                ]),
            ),
            directive(
                feed.clone(),
                serde_json::json!([
                    {"Name": "Processed", "Unit": "Count"},
                    {"Name": "Duplicate", "Unit": "Count"},
                    {"Name": "Rejected", "Unit": "Count"}
                ]),
            ),
        ];
        let mut doc = serde_json::json!({
            "Environment": environment,
            "Exchange": sample.exchange,
            "EventType": sample.event_type,
            "Processed": counter(Status::Processed),
            "Duplicate": counter(Status::Duplicate),
            "Rejected": counter(Status::Rejected),
            "Failed": counter(Status::Failed),
            "ProcessingLatency": (sample.processing_ms * 1000.0).round() / 1000.0,
        });
        if let Some(lag) = sample.lag_ms {
            doc["Lag"] = serde_json::json!(lag.max(0));
            directives.push(directive(
                feed,
                serde_json::json!([{"Name": "Lag", "Unit": "Milliseconds"}]),
            ));
        }
        if let Some(class) = sample.reason_class {
            doc["ReasonClass"] = serde_json::json!(class);
            directives.push(directive(
                serde_json::json!(["Environment", "ReasonClass"]),
                serde_json::json!([{"Name": "Rejected", "Unit": "Count"}]),
            ));
        }
        doc["_aws"] = serde_json::json!({
            "Timestamp": now_ms,
            "CloudWatchMetrics": directives,
        });
        doc.to_string()
    }

    #[test]
    fn document_is_byte_for_byte_what_serde_json_writes() {
        for status in [
            Status::Processed,
            Status::Duplicate,
            Status::Rejected,
            Status::Failed,
        ] {
            for (environment, ms, now, lag) in [
                ("dev", 1.23456, 1_764_081_000_123, 17),
                ("prod \"eu\"\\\n", 0.0, 0, -40),
                ("staging", 12_345.0, -5, 0),
                ("x", f64::NAN, 1, i64::MAX),
                ("x", 1e-9, 1, 3),
                ("x", 2.0e21, 1, 3),
            ] {
                let sample = Sample {
                    processing_ms: ms,
                    lag_ms: (status == Status::Processed).then_some(lag),
                    exchange: "N\"Y\"SE",
                    ..sample(status)
                };
                assert_eq!(
                    document(environment, &sample, now),
                    reference(environment, &sample, now),
                    "{environment:?} {status:?} {ms}"
                );
            }
        }
    }
}
