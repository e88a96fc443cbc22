//! `stream-delivery`: a stream path that cannot lose records. Each Kinesis stream is encrypted
//! with KMS; each mapping that reads one reports partial batch failures (else one bad record
//! fails and retries its whole batch), sends what it gives up on to a queue of this program,
//! bounds the age of a retried record (else the stream trims it unseen), and starts at the
//! oldest record (else what was put before the mapping existed is skipped).

use serde_yaml::Value;

use super::{Checks, QUEUE, STREAM_DELIVERY};
use crate::schema::expr;

pub(super) const STREAM: &str = "aws:kinesis/stream:Stream";
pub(super) const MAPPING: &str = "aws:lambda/eventSourceMapping:EventSourceMapping";

impl Checks<'_, '_> {
    pub(super) fn stream_delivery(&mut self) {
        let mut failing = Vec::new();
        for stream in self.of_type(STREAM) {
            let kms = stream
                .get("encryptionType")
                .map(|v| self.resolve(v))
                .and_then(Value::as_str)
                == Some("KMS");
            if !kms || stream.get("kmsKeyId").is_none() {
                failing.push((
                    stream.path("encryptionType"),
                    "must be \"KMS\" with a kmsKeyId: the stream holds market data at rest"
                        .to_string(),
                ));
            }
        }
        let streams: Vec<&str> = self.of_type(STREAM).iter().map(|s| s.name).collect();
        for mapping in self.of_type(MAPPING) {
            let source = mapping
                .get("eventSourceArn")
                .and_then(Value::as_str)
                .and_then(expr::substitution);
            if !source.is_some_and(|s| streams.contains(&s.root.as_str())) {
                continue;
            }
            let reports = mapping
                .get("functionResponseTypes")
                .and_then(Value::as_sequence)
                .is_some_and(|types| {
                    types
                        .iter()
                        .any(|t| t.as_str() == Some("ReportBatchItemFailures"))
                });
            if !reports {
                failing.push((
                    mapping.path("functionResponseTypes"),
                    "must include ReportBatchItemFailures: without it one failing record fails its whole batch".to_string(),
                ));
            }
            let destination = mapping
                .get("destinationConfig")
                .and_then(|c| c.get("onFailure"))
                .and_then(|c| c.get("destinationArn"))
                .and_then(Value::as_str)
                .and_then(expr::substitution);
            let to_queue =
                destination.is_some_and(|d| self.of_type(QUEUE).iter().any(|q| q.name == d.root));
            if !to_queue {
                failing.push((
                    mapping.path("destinationConfig.onFailure.destinationArn"),
                    "must reference a queue of this program: records Lambda gives up on would be skipped without a trace".to_string(),
                ));
            }
            let age = mapping
                .get("maximumRecordAgeInSeconds")
                .map(|v| self.resolve(v))
                .and_then(Value::as_i64);
            if age.is_none_or(|a| a <= 0) {
                failing.push((
                    mapping.path("maximumRecordAgeInSeconds"),
                    "must be a positive number of seconds: with none (or -1) a failing record is retried until the stream trims it, and it is lost".to_string(),
                ));
            }
            let start = mapping
                .get("startingPosition")
                .map(|v| self.resolve(v))
                .and_then(Value::as_str);
            if start != Some("TRIM_HORIZON") {
                failing.push((
                    mapping.path("startingPosition"),
                    "must be TRIM_HORIZON: a mapping that starts at LATEST skips what producers put before it existed".to_string(),
                ));
            }
        }
        for (path, message) in failing {
            self.fail(STREAM_DELIVERY, path, message);
        }
    }
}
