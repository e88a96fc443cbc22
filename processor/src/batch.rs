//! A Kinesis batch from the stream path's event source mapping. Each record's data is one event
//! envelope, the JSON EventBridge would deliver, decoded under the same contract
//! (docs/events.md); the response names exactly the records that are not accounted for, which
//! Lambda retries (from the lowest) and, once its retries or the record age are spent, sends to
//! the DLQ.
//!
//! Records of one partition key (`exchange#symbol`) are handled one after another in stream
//! order, and after the first of them fails the rest are not attempted: Lambda redelivers them
//! anyway, and handling them now would let a later quote overtake an earlier one. Different keys
//! run concurrently, up to `BATCH_CONCURRENCY` at a time.

use std::time::{Duration, Instant};

pub use aws_lambda_events::event::kinesis::{KinesisEvent, KinesisEventRecord};
pub use aws_lambda_events::event::streams::{KinesisBatchItemFailure, KinesisEventResponse};
use futures_util::stream::{self, StreamExt};

use crate::event::{Rejection, Violation};
use crate::handler::{Handled, ProcessError, Processor};
use crate::item::Latest;

/// What one batch came to, for the log line and the tests.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct BatchSummary {
    pub records: usize,
    /// Accounted for: stored, duplicate or rejected, each audited.
    pub accounted: usize,
    /// Failed, or not attempted after a failure of their key or past the deadline.
    pub unaccounted: usize,
}

impl Processor {
    /// Processes a Kinesis batch within `budget` (none: no deadline). `request_id` is the
    /// invocation's; each record is handled under its own `eventID` (shard and sequence number),
    /// which every redelivery of the record carries, so a retried record recognises its own
    /// earlier writes as the same delivery.
    pub async fn process_batch(
        &self,
        batch: &KinesisEvent,
        request_id: &str,
        budget: Option<Duration>,
    ) -> (KinesisEventResponse, BatchSummary) {
        let deadline = budget.map(|b| Instant::now() + b);
        let streamed = self.streamed();
        let records = &batch.records;
        let keys = group_by_partition_key(records);
        let concurrency = usize::try_from(self.settings().batch_concurrency)
            .unwrap_or(1)
            .max(1);
        let mut unaccounted: Vec<usize> = stream::iter(keys)
            .map(|indices| streamed.process_key(records, indices, request_id, deadline))
            .buffer_unordered(concurrency)
            .collect::<Vec<Vec<usize>>>()
            .await
            .into_iter()
            .flatten()
            .collect();
        unaccounted.sort_unstable();
        let summary = BatchSummary {
            records: records.len(),
            accounted: records.len() - unaccounted.len(),
            unaccounted: unaccounted.len(),
        };
        let mut response = KinesisEventResponse::default();
        response.batch_item_failures = unaccounted
            .into_iter()
            .map(|i| {
                let mut failure = KinesisBatchItemFailure::default();
                failure.item_identifier = Some(records[i].kinesis.sequence_number.clone());
                failure
            })
            .collect();
        tracing::info!(
            request_id,
            records = summary.records,
            accounted = summary.accounted,
            unaccounted = summary.unaccounted,
            "batch handled"
        );
        (response, summary)
    }

    /// The records of one partition key, in order; returns those not accounted for.
    ///
    /// The latest-price view is written once per view the key's records touch, from the newest
    /// of them, after the records: a hot symbol's quotes then cost one latest write per batch
    /// instead of one per quote (a single item takes at most 1 000 writes a second). If that
    /// write fails, the records from the one it came from are reported, so their redelivery
    /// (duplicates by then) owes it again.
    async fn process_key(
        &self,
        records: &[KinesisEventRecord],
        indices: Vec<usize>,
        request_id: &str,
        deadline: Option<Instant>,
    ) -> Vec<usize> {
        let mut newest: Vec<(usize, Latest)> = Vec::new();
        let mut unaccounted_from = None;
        for (position, &index) in indices.iter().enumerate() {
            let remaining = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            if remaining.is_some_and(|r| r.is_zero()) {
                unaccounted_from = Some(position);
                break;
            }
            let record = &records[index];
            let delivery_id = record
                .event_id
                .clone()
                .unwrap_or_else(|| format!("{request_id}:{}", record.kinesis.sequence_number));
            match self.process_record(record, &delivery_id, remaining).await {
                Ok(handled) => {
                    if let Some(latest) = handled.latest {
                        keep_newest(&mut newest, position, latest);
                    }
                }
                Err(err) => {
                    tracing::warn!(
                        request_id,
                        delivery_id,
                        error = %err,
                        later_records_of_key = indices.len() - position - 1,
                        "stream record not accounted for; it and the key's later records are \
                         retried"
                    );
                    unaccounted_from = Some(position);
                    break;
                }
            }
        }
        let writes = newest.into_iter().map(|(position, latest)| async move {
            self.store()
                .put_latest(latest)
                .await
                .map_err(|err| (position, err))
        });
        for result in futures_util::future::join_all(writes).await {
            if let Err((position, err)) = result {
                tracing::warn!(
                    request_id,
                    error = %err,
                    "latest-price view not updated; the key's records from the one it came \
                     from are retried"
                );
                unaccounted_from = Some(unaccounted_from.map_or(position, |p| p.min(position)));
            }
        }
        unaccounted_from.map_or_else(Vec::new, |from| indices[from..].to_vec())
    }

    async fn process_record(
        &self,
        record: &KinesisEventRecord,
        delivery_id: &str,
        budget: Option<Duration>,
    ) -> Result<Handled, ProcessError> {
        let data = &record.kinesis.data.0;
        match std::str::from_utf8(data) {
            Ok(text) => self.handle_within(text, delivery_id, budget).await,
            Err(err) => {
                // Not text, so not an envelope: audited with the bytes as far as they read.
                let rejection = Rejection {
                    envelope_id: None,
                    detail_type: None,
                    source: None,
                    kind: None,
                    violations: vec![Violation {
                        field: "data".to_string(),
                        rule: format!(
                            "must be a UTF-8 JSON event envelope; byte {} of {} is not UTF-8",
                            err.valid_up_to(),
                            data.len()
                        ),
                    }],
                };
                let lossy = String::from_utf8_lossy(data);
                self.reject(rejection, &lossy, delivery_id, Instant::now())
                    .await
                    .map(|outcome| Handled {
                        outcome,
                        latest: None,
                    })
            }
        }
    }
}

/// Keeps, per view, the newest latest-price write and the position of the record it came from.
fn keep_newest(newest: &mut Vec<(usize, Latest)>, position: usize, latest: Latest) {
    match newest.iter_mut().find(|(_, kept)| kept.view == latest.view) {
        Some(kept) if kept.1.order < latest.order => *kept = (position, latest),
        Some(_) => {}
        None => newest.push((position, latest)),
    }
}

/// Record indices per partition key, keys in order of first appearance, each key's records in
/// stream order.
fn group_by_partition_key(records: &[KinesisEventRecord]) -> Vec<Vec<usize>> {
    let mut position: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for (index, record) in records.iter().enumerate() {
        let key = record.kinesis.partition_key.as_str();
        match position.get(key) {
            Some(&group) => groups[group].push(index),
            None => {
                position.insert(key, groups.len());
                groups.push(vec![index]);
            }
        }
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(key: &str, sequence: &str) -> KinesisEventRecord {
        serde_json::from_value(serde_json::json!({
            "eventID": format!("shardId-000000000000:{sequence}"),
            "eventSource": "aws:kinesis",
            "kinesis": {
                "approximateArrivalTimestamp": 1_700_000_000.0,
                "data": "e30=",
                "partitionKey": key,
                "sequenceNumber": sequence,
                "kinesisSchemaVersion": "1.0"
            }
        }))
        .expect("a record")
    }

    #[test]
    fn records_are_grouped_by_key_in_stream_order() {
        let records = [
            record("NYSE#IBM", "1"),
            record("NASDAQ#AAPL", "2"),
            record("NYSE#IBM", "3"),
            record("NYSE#GE", "4"),
            record("NASDAQ#AAPL", "5"),
        ];
        assert_eq!(
            group_by_partition_key(&records),
            [vec![0, 2], vec![1, 4], vec![3]]
        );
    }
}
