//! CloudWatch Embedded Metric Format: one JSON line per event on stdout, which Lambda ships
//! to CloudWatch Logs and CloudWatch turns into metrics without any API call.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::item::Status;
use crate::names;

static ENABLED: AtomicBool = AtomicBool::new(false);

/// Turns emission on; only the Lambda binary does, so tests and the local runner stay quiet.
pub fn enable() {
    ENABLED.store(true, Ordering::Relaxed);
}

/// The EMF document for one event.
pub fn document(environment: &str, status: Status, processing_ms: f64, now_ms: i64) -> String {
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
}
