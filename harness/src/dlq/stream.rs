//! The records of a stream letter, read back from the stream: Lambda's on-failure destination
//! for a stream names the failed batch by shard and sequence range and carries no record.

use anyhow::{Context, Result};
use aws_sdk_kinesis::types::ShardIteratorType;

use super::letter::{Event, StreamBatch, event_of};

/// One record of the batch: its event, or its raw bytes when they hold none (the processor
/// rejects and audits such records at every delivery).
#[derive(Debug, Clone)]
pub struct BatchRecord {
    pub sequence_number: String,
    pub partition_key: String,
    pub data: Vec<u8>,
    pub event: Result<Event, String>,
}

/// Why the batch could not be read.
#[derive(Debug)]
pub enum Unreadable {
    /// The stream no longer holds the range (past its retention) or the stream is gone.
    Gone(String),
    /// Anything else: worth another try.
    Failed(anyhow::Error),
}

/// Sequence numbers are decimal strings of up to 128 bits; among strings without leading zeros
/// the longer is the larger.
fn sequence_order(a: &str, b: &str) -> std::cmp::Ordering {
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// The stream's name from its ARN (`arn:aws:kinesis:REGION:ACCOUNT:stream/NAME`).
pub fn stream_name(arn: &str) -> &str {
    arn.rsplit_once("stream/").map_or(arn, |(_, name)| name)
}

/// Every record from the batch's first sequence number to its last, in stream order.
pub async fn read(
    kinesis: &aws_sdk_kinesis::Client,
    batch: &StreamBatch,
) -> Result<Vec<BatchRecord>, Unreadable> {
    let stream = stream_name(&batch.stream_arn);
    let iterator = kinesis
        .get_shard_iterator()
        .stream_name(stream)
        .shard_id(&batch.shard_id)
        .shard_iterator_type(ShardIteratorType::AtSequenceNumber)
        .starting_sequence_number(&batch.start_sequence_number)
        .send()
        .await;
    let mut iterator = match iterator {
        Ok(output) => output.shard_iterator,
        Err(err) => {
            let code = aws_sdk_kinesis::error::ProvideErrorMetadata::code(&err)
                .unwrap_or_default()
                .to_string();
            let error = crate::aws::sdk_error("GetShardIterator", err);
            // Kinesis answers a trimmed sequence number, like a deleted stream or shard, with
            // one of these: nothing left to read.
            return Err(match code.as_str() {
                "ResourceNotFoundException" | "InvalidArgumentException" => Unreadable::Gone(
                    format!("{stream} {} no longer holds it: {error:#}", batch.shard_id),
                ),
                _ => Unreadable::Failed(error),
            });
        }
    };
    let mut records = Vec::new();
    // A shard's GetRecords may answer empty while records follow; an open shard's iterator
    // never ends, so the reads stop at the range's end, or after a run of empty answers.
    let mut empty = 0;
    while let Some(current) = iterator.take() {
        let output = kinesis
            .get_records()
            .shard_iterator(current)
            .limit(10_000)
            .send()
            .await
            .map_err(|e| crate::aws::sdk_error("GetRecords", e))
            .with_context(|| format!("reading {stream} {}", batch.shard_id))
            .map_err(Unreadable::Failed)?;
        if output.records().is_empty() {
            empty += 1;
        } else {
            empty = 0;
        }
        for record in output.records() {
            let sequence_number = record.sequence_number().to_string();
            if sequence_order(&sequence_number, &batch.end_sequence_number).is_gt() {
                return Ok(records);
            }
            let data = record.data().as_ref().to_vec();
            let event = match std::str::from_utf8(&data) {
                Ok(text) => event_of(text),
                Err(err) => Err(format!("the record's data is not UTF-8: {err}")),
            };
            records.push(BatchRecord {
                sequence_number: sequence_number.clone(),
                // A put needs a key; a record without one goes back under its sequence number.
                partition_key: record
                    .partition_key()
                    .filter(|key| !key.is_empty())
                    .unwrap_or(&sequence_number)
                    .to_string(),
                data,
                event,
            });
            if sequence_number == batch.end_sequence_number {
                return Ok(records);
            }
        }
        if empty >= 5 || output.millis_behind_latest() == Some(0) && output.records().is_empty() {
            break;
        }
        iterator = output.next_shard_iterator;
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_numbers_compare_as_numbers() {
        use std::cmp::Ordering::*;
        assert_eq!(sequence_order("9", "10"), Less);
        assert_eq!(
            sequence_order(
                "49590338271490256608559692538361571095921575989136588898",
                "49590338271490256608559692538361571095921575989136588899"
            ),
            Less
        );
        assert_eq!(sequence_order("12", "12"), Equal);
        assert_eq!(sequence_order("100", "99"), Greater);
    }

    #[test]
    fn the_stream_name_comes_from_its_arn() {
        assert_eq!(
            stream_name("arn:aws:kinesis:us-east-1:123456789012:stream/market-data-stream-prod"),
            "market-data-stream-prod"
        );
        assert_eq!(stream_name("plain"), "plain");
    }
}
