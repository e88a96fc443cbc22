//! Kinesis batches as Lambda's event source mapping hands them to the function: the records the
//! local runner reads from a shard, and the ones tests build by hand.

use processor::batch::{KinesisEvent, KinesisEventRecord};

/// A record of `shard` as Lambda delivers it: `eventID` is `<shard>:<sequence number>`, the data
/// base64 in the JSON and raw bytes once decoded.
pub fn record(
    shard: &str,
    sequence_number: &str,
    partition_key: &str,
    data: &[u8],
    stream_arn: &str,
    arrival: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<KinesisEventRecord> {
    let json = serde_json::json!({
        "eventID": format!("{shard}:{sequence_number}"),
        "eventName": "aws:kinesis:record",
        "eventSource": "aws:kinesis",
        "eventSourceARN": stream_arn,
        "eventVersion": "1.0",
        "awsRegion": crate::aws::LOCAL_REGION,
        "kinesis": {
            "kinesisSchemaVersion": "1.0",
            "partitionKey": partition_key,
            "sequenceNumber": sequence_number,
            "data": aws_smithy_types::base64::encode(data),
            "approximateArrivalTimestamp": arrival.timestamp_millis() as f64 / 1000.0,
        }
    });
    Ok(serde_json::from_value(json)?)
}

pub fn batch(records: Vec<KinesisEventRecord>) -> KinesisEvent {
    let mut event = KinesisEvent::default();
    event.records = records;
    event
}

/// PutRecords takes at most 500 records, and 5 MiB, per call
/// (https://docs.aws.amazon.com/kinesis/latest/APIReference/API_PutRecords.html).
pub const PUT_RECORDS_MAX: usize = 500;
pub const PUT_RECORDS_MAX_BYTES: usize = 5 * 1024 * 1024;
const PUT_ATTEMPTS: u32 = 6;

/// One record to put: its partition key and data.
#[derive(Debug, Clone)]
pub struct Entry {
    pub partition_key: String,
    pub data: Vec<u8>,
}

/// The partition key of a market event: `exchange#symbol`, so that one instrument's events stay
/// on one shard, in order. An event without both (malformed) is keyed by `fallback`.
pub fn partition_key(detail: &str, fallback: &str) -> String {
    let value: Option<serde_json::Value> = serde_json::from_str(detail).ok();
    key_of(value.as_ref(), fallback)
}

/// [`partition_key`] of the detail inside an EventBridge envelope given as JSON text.
pub fn envelope_partition_key(envelope: &str, fallback: &str) -> String {
    let value: Option<serde_json::Value> = serde_json::from_str(envelope).ok();
    key_of(value.as_ref().and_then(|v| v.get("detail")), fallback)
}

fn key_of(detail: Option<&serde_json::Value>, fallback: &str) -> String {
    let field = |name: &str| {
        detail
            .and_then(|v| v.get(name))
            .and_then(|v| v.as_str())
            .filter(|s| !s.is_empty())
    };
    match (field("exchange"), field("symbol")) {
        (Some(exchange), Some(symbol)) => format!("{exchange}#{symbol}"),
        _ => fallback.to_string(),
    }
}

/// Puts `entries` on `stream` in calls of at most [`PUT_RECORDS_MAX`] records and
/// [`PUT_RECORDS_MAX_BYTES`], retrying only the entries a partial success failed. Returns when
/// each entry was accepted, in input order.
pub async fn put_records(
    client: &aws_sdk_kinesis::Client,
    stream: &str,
    entries: &[Entry],
) -> anyhow::Result<Vec<chrono::DateTime<chrono::Utc>>> {
    use anyhow::Context;
    use aws_sdk_kinesis::primitives::Blob;
    use aws_sdk_kinesis::types::PutRecordsRequestEntry;

    let mut accepted = vec![None; entries.len()];
    for chunk in chunks(entries) {
        let mut pending: Vec<usize> = chunk;
        for attempt in 1..=PUT_ATTEMPTS {
            let records = pending
                .iter()
                .map(|&i| {
                    PutRecordsRequestEntry::builder()
                        .partition_key(&entries[i].partition_key)
                        .data(Blob::new(entries[i].data.clone()))
                        .build()
                        .context("a PutRecords entry")
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let put_at = chrono::Utc::now();
            let output = client
                .put_records()
                .stream_name(stream)
                .set_records(Some(records))
                .send()
                .await
                .map_err(|e| crate::aws::sdk_error("PutRecords", e))
                .with_context(|| format!("PutRecords to stream {stream}"))?;
            let mut retry = Vec::new();
            for (&i, result) in pending.iter().zip(output.records()) {
                if result.error_code().is_some() {
                    retry.push(i);
                } else {
                    accepted[i] = Some(put_at);
                }
            }
            // Entries without a result (a short answer) are retried too.
            retry.extend(pending.iter().skip(output.records().len()).copied());
            if retry.is_empty() {
                break;
            }
            if attempt == PUT_ATTEMPTS {
                anyhow::bail!(
                    "{} records were refused by stream {stream} after {PUT_ATTEMPTS} attempts (throughput exceeded?)",
                    retry.len()
                );
            }
            pending = retry;
            tokio::time::sleep(std::time::Duration::from_millis(100 << attempt)).await;
        }
    }
    accepted
        .into_iter()
        .map(|at| at.ok_or_else(|| anyhow::anyhow!("a record was neither accepted nor refused")))
        .collect()
}

/// Entry indices per PutRecords call, in order, within both limits.
fn chunks(entries: &[Entry]) -> Vec<Vec<usize>> {
    let mut chunks = Vec::new();
    let mut current = Vec::new();
    let mut bytes = 0;
    for (i, entry) in entries.iter().enumerate() {
        // Kinesis counts the partition key with the data.
        let size = entry.data.len() + entry.partition_key.len();
        if !current.is_empty()
            && (current.len() == PUT_RECORDS_MAX || bytes + size > PUT_RECORDS_MAX_BYTES)
        {
            chunks.push(std::mem::take(&mut current));
            bytes = 0;
        }
        current.push(i);
        bytes += size;
    }
    if !current.is_empty() {
        chunks.push(current);
    }
    chunks
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(size: usize) -> Entry {
        Entry {
            partition_key: "NYSE#IBM".into(),
            data: vec![b'x'; size],
        }
    }

    #[test]
    fn calls_hold_at_most_500_records_and_5_mib() {
        let small: Vec<Entry> = (0..1201).map(|_| entry(100)).collect();
        let sizes: Vec<usize> = chunks(&small).iter().map(Vec::len).collect();
        assert_eq!(sizes, [500, 500, 201]);
        // 1 MiB records: five fit in 5 MiB only without their keys, so four per call.
        let large: Vec<Entry> = (0..9).map(|_| entry(1024 * 1024)).collect();
        let sizes: Vec<usize> = chunks(&large).iter().map(Vec::len).collect();
        assert_eq!(sizes, [4, 4, 1]);
        let order: Vec<usize> = chunks(&small).into_iter().flatten().collect();
        assert_eq!(order, (0..1201).collect::<Vec<_>>());
    }

    #[test]
    fn the_partition_key_is_the_instrument() {
        assert_eq!(
            partition_key(r#"{"exchange":"NYSE","symbol":"IBM","bid":"1"}"#, "id-1"),
            "NYSE#IBM"
        );
        assert_eq!(partition_key(r#"{"exchange":"NYSE"}"#, "id-1"), "id-1");
        assert_eq!(partition_key("not json", "id-2"), "id-2");
        assert_eq!(
            envelope_partition_key(
                r#"{"id":"e","detail":{"exchange":"NYSE","symbol":"IBM"}}"#,
                "id-3"
            ),
            "NYSE#IBM"
        );
        assert_eq!(envelope_partition_key(r#"{"id":"e"}"#, "id-3"), "id-3");
    }
}
