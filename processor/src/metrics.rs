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

/// The EMF document for one event.
///
/// Written by hand rather than through a `serde_json::Value`: building and serializing the
/// tree cost more than the rest of the processor's own per-event work. The bytes are those
/// `serde_json` writes for the same document (keys in sorted order; the test holds both).
pub fn document(environment: &str, status: Status, processing_ms: f64, now_ms: i64) -> String {
    let counter = |s: Status| if s == status { '1' } else { '0' };
    let latency = (processing_ms * 1000.0).round() / 1000.0;
    let mut out = String::with_capacity(420 + environment.len());
    out.push_str("{\"Duplicate\":");
    out.push(counter(Status::Duplicate));
    out.push_str(",\"Environment\":");
    push_json_string(&mut out, environment);
    out.push_str(",\"Failed\":");
    out.push(counter(Status::Failed));
    out.push_str(",\"Processed\":");
    out.push(counter(Status::Processed));
    out.push_str(",\"ProcessingLatency\":");
    push_json_f64(&mut out, latency);
    out.push_str(",\"Rejected\":");
    out.push(counter(Status::Rejected));
    out.push_str(
        ",\"_aws\":{\"CloudWatchMetrics\":[{\"Dimensions\":[[\"Environment\"]],\"Metrics\":[",
    );
    out.push_str(
        "{\"Name\":\"Processed\",\"Unit\":\"Count\"},\
         {\"Name\":\"Duplicate\",\"Unit\":\"Count\"},\
         {\"Name\":\"Rejected\",\"Unit\":\"Count\"},\
         {\"Name\":\"Failed\",\"Unit\":\"Count\"},\
         {\"Name\":\"ProcessingLatency\",\"Unit\":\"Milliseconds\"}",
    );
    out.push_str("],\"Namespace\":");
    push_json_string(&mut out, names::METRICS_NAMESPACE);
    out.push_str("}],\"Timestamp\":");
    out.push_str(&now_ms.to_string());
    out.push_str("}}");
    out
}

fn push_json_string(out: &mut String, text: &str) {
    // Serializing a string cannot fail.
    out.push_str(&serde_json::to_string(text).unwrap_or_default());
}

fn push_json_f64(out: &mut String, value: f64) {
    // serde_json writes a non-finite number as null, as `json!` does.
    out.push_str(&serde_json::to_string(&value).unwrap_or_else(|_| "null".to_string()));
}

pub fn emit(environment: &str, status: Status, processing_ms: f64) {
    if !ENABLED.load(Ordering::Relaxed) {
        return;
    }
    let line = document(
        environment,
        status,
        processing_ms,
        chrono::Utc::now().timestamp_millis(),
    );
    // A lost metric line must never fail an event.
    let _ = writeln!(std::io::stdout().lock(), "{line}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn document_counts_exactly_one_status() {
        let doc: serde_json::Value =
            serde_json::from_str(&document("dev", Status::Duplicate, 1.23456, 42)).unwrap();
        assert_eq!(doc["Duplicate"], 1);
        assert_eq!(doc["Processed"], 0);
        assert_eq!(doc["Rejected"], 0);
        assert_eq!(doc["Failed"], 0);
        assert_eq!(doc["Environment"], "dev");
        assert_eq!(doc["_aws"]["Timestamp"], 42);
        assert_eq!(
            doc["_aws"]["CloudWatchMetrics"][0]["Namespace"],
            "MarketData"
        );
        assert_eq!(doc["ProcessingLatency"].to_string(), "1.235");
    }

    /// The alarms read these metrics by the names in `names`; the document must declare each.
    #[test]
    fn document_declares_the_metric_names_alarms_use() {
        let doc: serde_json::Value =
            serde_json::from_str(&document("dev", Status::Processed, 1.0, 42)).unwrap();
        let directive = &doc["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Dimensions"][0][0], names::METRIC_DIMENSION);
        let declared: Vec<&str> = directive["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|m| m["Name"].as_str())
            .collect();
        for name in [
            names::METRIC_PROCESSED,
            names::METRIC_DUPLICATE,
            names::METRIC_REJECTED,
            names::METRIC_FAILED,
            names::METRIC_PROCESSING_LATENCY,
        ] {
            assert!(
                declared.contains(&name),
                "{name} not declared: {declared:?}"
            );
            assert!(doc.get(name).is_some(), "{name} has no value");
        }
        assert_eq!(doc[names::METRIC_DIMENSION], "dev");
    }

    /// The document as `serde_json` builds it from a value tree: the reference for the
    /// hand-written one.
    fn reference(environment: &str, status: Status, processing_ms: f64, now_ms: i64) -> String {
        let counter = |s: Status| u8::from(s == status);
        serde_json::json!({
            "_aws": {
                "Timestamp": now_ms,
                "CloudWatchMetrics": [{
                    "Namespace": names::METRICS_NAMESPACE,
                    "Dimensions": [["Environment"]],
                    "Metrics": [
                        {"Name": "Processed", "Unit": "Count"},
                        {"Name": "Duplicate", "Unit": "Count"},
                        {"Name": "Rejected", "Unit": "Count"},
                        {"Name": "Failed", "Unit": "Count"},
                        {"Name": "ProcessingLatency", "Unit": "Milliseconds"}
                    ]
                }]
            },
            "Environment": environment,
            "Processed": counter(Status::Processed),
            "Duplicate": counter(Status::Duplicate),
            "Rejected": counter(Status::Rejected),
            "Failed": counter(Status::Failed),
            "ProcessingLatency": (processing_ms * 1000.0).round() / 1000.0,
        })
        .to_string()
    }

    #[test]
    fn document_is_byte_for_byte_what_serde_json_writes() {
        for status in [
            Status::Processed,
            Status::Duplicate,
            Status::Rejected,
            Status::Failed,
        ] {
            for (environment, ms, now) in [
                ("dev", 1.23456, 1_764_081_000_123),
                ("prod \"eu\"\\\n", 0.0, 0),
                ("staging", 12_345.0, -5),
                ("x", f64::NAN, 1),
                ("x", 1e-9, 1),
                ("x", 2.0e21, 1),
            ] {
                assert_eq!(
                    document(environment, status, ms, now),
                    reference(environment, status, ms, now),
                    "{environment:?} {status:?} {ms}"
                );
            }
        }
    }
}
