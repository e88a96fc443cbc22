//! The processor's Kinesis batch path against moto: partial failures named exactly, key order,
//! redelivered batches, retries from Lambda's checkpoint, the deadline, and the handler telling a
//! batch from an event.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use harness::faults::Writes;
use harness::stream::{batch, record};
use processor::batch::{KinesisEvent, KinesisEventRecord};
use tests::tables::{Tables, envelope, s, statuses};

const SHARD: &str = "shardId-000000000000";
const ARN: &str = "arn:aws:kinesis:us-east-1:123456789012:stream/market-data-stream-test";

fn quote(exchange: &str, symbol: &str, bid: &str) -> String {
    format!(r#"{{"exchange":"{exchange}","symbol":"{symbol}","bid":"{bid}","ask":"1000.5"}}"#)
}

/// A record of `key` whose data is the envelope of quote `id`, at sequence number `seq`.
fn quote_record(seq: u32, id: &str, exchange: &str, symbol: &str) -> KinesisEventRecord {
    let data = envelope(
        id,
        "Market Quote",
        &quote(exchange, symbol, &format!("{seq}.25")),
    );
    raw_record(seq, &format!("{exchange}#{symbol}"), data.as_bytes())
}

fn raw_record(seq: u32, key: &str, data: &[u8]) -> KinesisEventRecord {
    record(
        SHARD,
        &format!("{seq:056}"),
        key,
        data,
        ARN,
        chrono::Utc::now(),
    )
    .expect("a record")
}

fn failed(response: &processor::batch::KinesisEventResponse) -> Vec<String> {
    response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone().unwrap_or_default())
        .collect()
}

fn seq(record: &KinesisEventRecord) -> String {
    record.kinesis.sequence_number.clone()
}

fn ids(records: &[HashMap<String, AttributeValue>]) -> Vec<String> {
    let mut ids: Vec<String> = records.iter().map(|r| s(r, names::EVENT_ID)).collect();
    ids.sort();
    ids
}

fn mixed_batch() -> KinesisEvent {
    batch(vec![
        quote_record(1, "k-1", "NYSE", "IBM"),
        quote_record(2, "k-2", "NASDAQ", "AAPL"),
        raw_record(3, "NYSE#IBM", br#"{"not": "an envelope""#),
        quote_record(4, "k-4", "NYSE", "IBM"),
        raw_record(5, "NYSE#GE", &[0x7b, 0xff, 0xfe, 0x7d]),
        quote_record(6, "k-6", "NYSE", "GE"),
    ])
}

#[tokio::test]
async fn a_batch_is_stored_once_and_its_redelivery_stores_nothing_more() {
    let tables = Tables::create().await;
    let p = tables.processor();
    let batch = mixed_batch();

    let (response, summary) = p.process_batch(&batch, "req-1", None).await;
    assert!(failed(&response).is_empty(), "{response:?}");
    assert_eq!((summary.records, summary.accounted), (6, 6));
    assert_eq!(ids(&tables.records().await), ["k-1", "k-2", "k-4", "k-6"]);
    let audits = tables.audits().await;
    assert_eq!(
        statuses(&audits),
        [
            "PROCESSED",
            "PROCESSED",
            "PROCESSED",
            "PROCESSED",
            "REJECTED",
            "REJECTED"
        ]
    );
    let reasons: Vec<String> = audits
        .iter()
        .filter(|a| s(a, names::STATUS) == "REJECTED")
        .map(|a| s(a, names::REASON))
        .collect();
    assert!(
        reasons
            .iter()
            .any(|r| r
                .contains("data: must be a UTF-8 JSON event envelope; byte 1 of 4 is not UTF-8")),
        "{reasons:?}"
    );
    // Each record is written under its own delivery id, the record's eventID.
    for record in tables.records().await {
        assert!(
            s(&record, names::REQUEST_ID).starts_with(SHARD),
            "{record:?}"
        );
    }

    // Lambda redelivers a whole batch (a timeout, a lost response): the same records, the same
    // eventIDs. Each valid record recognises its own write: no second record, no DUPLICATE.
    let (response, _) = p.process_batch(&batch, "req-2", None).await;
    assert!(failed(&response).is_empty(), "{response:?}");
    assert_eq!(ids(&tables.records().await), ["k-1", "k-2", "k-4", "k-6"]);
    let processed = statuses(&tables.audits().await)
        .into_iter()
        .filter(|s| s == "PROCESSED")
        .count();
    assert_eq!(processed, 4);

    // The same events put on the stream again (a producer's retry) are new records with new
    // sequence numbers: duplicates of the stored events.
    let again = batch_of_copies(&batch, 100);
    let (response, _) = p.process_batch(&again, "req-3", None).await;
    assert!(failed(&response).is_empty(), "{response:?}");
    assert_eq!(ids(&tables.records().await), ["k-1", "k-2", "k-4", "k-6"]);
    let duplicates = statuses(&tables.audits().await)
        .into_iter()
        .filter(|s| s == "DUPLICATE")
        .count();
    assert_eq!(duplicates, 4);
}

/// The stream path's items go without the index copies it does not need (names::Ingest): a
/// record is in SymbolIndex only, a PROCESSED entry in no index and found from its record;
/// DUPLICATE and REJECTED entries are indexed as on the bus, and the bus indexes everything.
#[tokio::test]
async fn streamed_items_carry_only_the_stream_paths_index_keys() {
    let tables = Tables::create().await;
    let p = tables.processor();
    let batch = mixed_batch();
    let (response, _) = p.process_batch(&batch, "req-1", None).await;
    assert!(failed(&response).is_empty(), "{response:?}");
    let (response, _) = p
        .process_batch(&batch_of_copies(&batch, 100), "req-2", None)
        .await;
    assert!(failed(&response).is_empty(), "{response:?}");
    let bus = envelope("bus-1", "Market Quote", &quote("NYSE", "IBM", "7.5"));
    p.process(&bus, "req-3")
        .await
        .expect("the bus event is stored");

    let records = tables.records().await;
    assert_eq!(records.len(), 5);
    let mut processed_keys = HashMap::new();
    for record in &records {
        let id = s(record, names::EVENT_ID);
        assert!(record.contains_key(names::SYMBOL_BUCKET), "{record:?}");
        assert_eq!(
            record.contains_key(names::EXCHANGE_BUCKET),
            id == "bus-1",
            "{record:?}"
        );
        processed_keys.insert(
            processor::item::processed_audit_id(
                &id,
                &s(record, names::TIMESTAMP),
                &s(record, names::RECEIVED_AT),
            ),
            id,
        );
    }
    let audits = tables.audits().await;
    let mut found = 0;
    for audit in &audits {
        let status = s(audit, names::STATUS);
        let id = audit
            .get(names::EVENT_ID)
            .map(|_| s(audit, names::EVENT_ID));
        let indexed = audit.contains_key(names::EVENT_TYPE_BUCKET);
        match status.as_str() {
            "PROCESSED" => {
                // Every PROCESSED entry is the one its record's key names.
                assert_eq!(processed_keys.get(&s(audit, names::AUDIT_ID)), id.as_ref());
                found += 1;
                assert_eq!(indexed, id.as_deref() == Some("bus-1"), "{audit:?}");
            }
            _ => assert!(indexed, "{audit:?}"),
        }
    }
    assert_eq!(found, 5);
    assert_eq!(
        statuses(&audits)
            .iter()
            .filter(|s| *s == "DUPLICATE" || *s == "REJECTED")
            .count(),
        8
    );
}

/// The records of `batch` put on the stream again, at sequence numbers from `from`.
fn batch_of_copies(original: &KinesisEvent, from: u32) -> KinesisEvent {
    batch(
        original
            .records
            .iter()
            .zip(from..)
            .map(|(r, n)| raw_record(n, &r.kinesis.partition_key, &r.kinesis.data.0))
            .collect(),
    )
}

#[tokio::test]
async fn the_response_names_exactly_the_records_not_stored_and_a_retry_from_the_checkpoint_stores_each_once()
 {
    let tables = Tables::create().await;
    let (faulted, proxy) = tables.faulted(Writes::Records).await;
    let batch = mixed_batch();

    let (response, summary) = faulted.process_batch(&batch, "req-1", None).await;
    // Every record write fails. The malformed record 3 shares NYSE#IBM with the failed k-1,
    // so it waits for k-1's retry; the non-UTF-8 record 5 comes first on NYSE#GE and is
    // rejected and accounted for, and k-6 after it fails.
    let expected = [0, 1, 2, 3, 5].map(|i| seq(&batch.records[i]));
    assert_eq!(failed(&response), expected);
    assert_eq!((summary.accounted, summary.unaccounted), (1, 5));
    assert!(tables.records().await.is_empty());
    // A key stops at its first failure: k-4 comes after k-1 on NYSE#IBM and is not attempted
    // (no FAILED entry of its own), so it cannot overtake k-1.
    let failed_ids: Vec<String> = tables
        .audits()
        .await
        .iter()
        .filter(|a| s(a, names::STATUS) == "FAILED")
        .map(|a| s(a, names::EVENT_ID))
        .collect();
    assert!(failed_ids.contains(&"k-1".to_string()), "{failed_ids:?}");
    assert!(!failed_ids.contains(&"k-4".to_string()), "{failed_ids:?}");

    // Lambda retries from the lowest failed sequence number: every record from there on,
    // including the ones already accounted for.
    proxy.lift();
    let retry = harness::stream::batch(batch.records.clone());
    let (response, _) = faulted.process_batch(&retry, "req-2", None).await;
    assert!(failed(&response).is_empty(), "{response:?}");
    assert_eq!(ids(&tables.records().await), ["k-1", "k-2", "k-4", "k-6"]);
    let audits = tables.audits().await;
    let count = |status: &str| {
        audits
            .iter()
            .filter(|a| s(a, names::STATUS) == status)
            .count()
    };
    assert_eq!(count("PROCESSED"), 4);
    assert_eq!(count("DUPLICATE"), 0);
}

#[tokio::test]
async fn bisected_halves_store_each_record_once() {
    let tables = Tables::create().await;
    let (faulted, proxy) = tables.faulted(Writes::Records).await;
    let whole = mixed_batch();
    let (response, _) = faulted.process_batch(&whole, "req-1", None).await;
    assert_eq!(failed(&response).len(), 5);
    proxy.lift();
    // Bisect-on-error splits the batch and retries each half; the halves overlap nothing, and
    // the second half's records are retried too though some were accounted for.
    let (first, second) = whole.records.split_at(3);
    for (half, rid) in [(first, "req-2"), (second, "req-3")] {
        let (response, _) = faulted
            .process_batch(&batch(half.to_vec()), rid, None)
            .await;
        assert!(failed(&response).is_empty(), "{response:?}");
    }
    // And the whole batch once more, as a re-read shard would deliver it.
    let (response, _) = faulted.process_batch(&whole, "req-4", None).await;
    assert!(failed(&response).is_empty(), "{response:?}");
    assert_eq!(ids(&tables.records().await), ["k-1", "k-2", "k-4", "k-6"]);
    let audits = tables.audits().await;
    let processed: Vec<String> = audits
        .iter()
        .filter(|a| s(a, names::STATUS) == "PROCESSED")
        .map(|a| {
            format!(
                "{} {} {}",
                s(a, names::EVENT_ID),
                s(a, names::AUDIT_ID),
                s(a, names::TIMESTAMP)
            )
        })
        .collect();
    assert_eq!(processed.len(), 4, "{processed:#?}");
}

#[tokio::test]
async fn a_batch_out_of_time_leaves_every_record_to_the_retry() {
    let tables = Tables::create().await;
    let p = tables.processor();
    let batch = mixed_batch();
    let (response, summary) = p.process_batch(&batch, "req-1", Some(Duration::ZERO)).await;
    let all: Vec<String> = batch.records.iter().map(seq).collect();
    assert_eq!(failed(&response), all);
    assert_eq!(summary.unaccounted, 6);
    assert!(tables.records().await.is_empty());
    assert!(tables.audits().await.is_empty());
}

#[tokio::test]
async fn records_of_one_key_are_stored_in_stream_order_while_keys_interleave() {
    let tables = Tables::create().await;
    let p = tables.processor();
    let keys = [("NYSE", "IBM"), ("NASDAQ", "AAPL"), ("NYSE", "GE")];
    let records: Vec<KinesisEventRecord> = (0..30u32)
        .map(|n| {
            let (exchange, symbol) = keys[(n % 3) as usize];
            quote_record(n + 1, &format!("o-{n:02}"), exchange, symbol)
        })
        .collect();
    let (response, _) = p.process_batch(&batch(records), "req-1", None).await;
    assert!(failed(&response).is_empty(), "{response:?}");
    let stored = tables.records().await;
    assert_eq!(stored.len(), 30);
    for (exchange, symbol) in keys {
        let mut of_key: Vec<(String, String)> = stored
            .iter()
            .filter(|r| s(r, names::EXCHANGE) == exchange && s(r, names::SYMBOL) == symbol)
            .map(|r| (s(r, names::EVENT_ID), s(r, names::RECEIVED_AT)))
            .collect();
        of_key.sort();
        let received: Vec<&String> = of_key.iter().map(|(_, at)| at).collect();
        let mut in_order = received.clone();
        in_order.sort();
        assert_eq!(
            received, in_order,
            "{exchange}#{symbol} out of order: {of_key:?}"
        );
    }
}

#[tokio::test]
async fn the_handler_answers_a_batch_with_its_failures_and_an_event_with_its_outcome() {
    let tables = Tables::create().await;
    let p = tables.processor();
    let mut context = lambda_runtime::Context::default();
    context.request_id = "req-handler".into();
    context.deadline = u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap_or(0) + 30_000;

    let batch_json = serde_json::to_string(&mixed_batch()).expect("serializes");
    let payload = serde_json::value::RawValue::from_string(batch_json).expect("json");
    let reply = processor::handle(
        &p,
        lambda_runtime::LambdaEvent::new(payload, context.clone()),
    )
    .await
    .expect("a batch is answered");
    assert_eq!(
        serde_json::to_value(&reply).expect("serializes"),
        serde_json::json!({"batchItemFailures": []})
    );
    assert_eq!(tables.records().await.len(), 4);

    let event = envelope("e-direct", "Market Quote", &quote("NYSE", "IBM", "1.5"));
    let payload = serde_json::value::RawValue::from_string(event).expect("json");
    let reply = processor::handle(
        &p,
        lambda_runtime::LambdaEvent::new(payload, context.clone()),
    )
    .await
    .expect("an event is answered");
    let reply = serde_json::to_value(&reply).expect("serializes");
    assert_eq!(reply["status"], "PROCESSED", "{reply}");

    // `Records` that are not a Kinesis batch: an event like any other, rejected and audited.
    let payload =
        serde_json::value::RawValue::from_string(r#"{"Records": "nope"}"#.into()).expect("json");
    let reply = processor::handle(&p, lambda_runtime::LambdaEvent::new(payload, context))
        .await
        .expect("answered");
    let reply = serde_json::to_value(&reply).expect("serializes");
    assert_eq!(reply["status"], "REJECTED", "{reply}");
}
