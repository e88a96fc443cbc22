//! The processor against a real DynamoDB-compatible server (moto), through the real SDK.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use harness::faults::Writes;
use tests::tables::{BUCKETS, Tables, envelope, n, s, statuses};

const TRADE: &str = r#"{"exchange":"NASDAQ","symbol":"AAPL","price":150.25,"volume":100,"side":"buy","trade_id":"T-1"}"#;
const QUOTE: &str = r#"{"exchange":"NYSE","symbol":"IBM","bid":"0.000000012345","ask":12345678901234567890.123,"bid_size":5}"#;

#[tokio::test]
async fn valid_trade_and_quote_are_stored_and_found_through_both_indexes() {
    let tables = Tables::create().await;
    let p = tables.processor();
    p.warm_up().await.expect("tables exist");

    let trade = p
        .process(&envelope("e-trade", "Trade Execution", TRADE), "req-1")
        .await
        .unwrap();
    assert_eq!(trade.status, "PROCESSED", "{}", trade.reason);
    let quote = p
        .process(&envelope("e-quote", "Market Quote", QUOTE), "req-2")
        .await
        .unwrap();
    assert_eq!(quote.status, "PROCESSED", "{}", quote.reason);

    let by_symbol = tables
        .query_index(&names::SYMBOL_INDEX_SCHEMA, "AAPL")
        .await;
    assert_eq!(by_symbol.len(), 1);
    let t = &by_symbol[0];
    assert_eq!(s(t, names::EVENT_ID), "e-trade");
    assert_eq!(n(t, names::PRICE), "150.25");
    assert_eq!(n(t, names::VOLUME), "100");
    assert_eq!(s(t, names::SIDE), "buy");
    assert_eq!(s(t, names::CURRENCY), "USD");
    assert_eq!(s(t, names::EVENT_TYPE), "trade");
    assert_eq!(s(t, names::DETAIL_TYPE), "Trade Execution");
    assert_eq!(s(t, names::REQUEST_ID), "req-1");
    let bucket = names::bucket_of("e-trade", BUCKETS);
    assert_eq!(
        s(t, names::SYMBOL_BUCKET),
        names::bucket_key("AAPL", bucket)
    );
    assert_eq!(
        s(t, names::EXCHANGE_BUCKET),
        names::bucket_key("NASDAQ", bucket)
    );
    let expires_at: i64 = n(t, names::EXPIRES_AT).parse().unwrap();
    let event_time = chrono::DateTime::parse_from_rfc3339(&s(t, names::TIMESTAMP)).unwrap();
    assert_eq!(expires_at, event_time.timestamp() + 30 * 86_400);

    let by_exchange = tables
        .query_index(&names::EXCHANGE_INDEX_SCHEMA, "NYSE")
        .await;
    assert_eq!(by_exchange.len(), 1);
    let q = &by_exchange[0];
    assert_eq!(s(q, names::EVENT_ID), "e-quote");
    assert_eq!(n(q, names::BID), "0.000000012345");
    assert_eq!(n(q, names::ASK), "12345678901234567890.123");
    assert_eq!(n(q, names::BID_SIZE), "5");

    let audits = tables.audits().await;
    assert_eq!(statuses(&audits), ["PROCESSED", "PROCESSED"]);
    let retention_ends = chrono::Utc::now().timestamp()
        + i64::from(names::Settings::DEFAULT_AUDIT_RETENTION_DAYS) * 86_400;
    for audit in &audits {
        // Every entry expires with the stack's audit retention, counted from its write.
        let expires_at: i64 = n(audit, names::EXPIRES_AT).parse().unwrap();
        assert!(
            (retention_ends - 60..=retention_ends).contains(&expires_at),
            "{expires_at}"
        );
        assert_eq!(s(audit, names::ENVIRONMENT), "test");
        assert!(s(audit, names::REQUEST_ID).starts_with("req-"));
        assert!(audit.contains_key("processing_ms"));
        let bucket = names::bucket_of(&s(audit, names::AUDIT_ID), BUCKETS);
        let event_type = s(audit, names::EVENT_TYPE);
        assert_eq!(
            s(audit, names::EVENT_TYPE_BUCKET),
            names::bucket_key(&event_type, bucket)
        );
    }
}

#[tokio::test]
async fn a_busy_symbol_spreads_over_every_bucket_and_reads_back_in_time_order() {
    let tables = Tables::create().await;
    let p = tables.processor();
    let now = chrono::Utc::now();
    let mut expected = Vec::new();
    for n in 0..24_i64 {
        let at = processor::event::format_timestamp(now - chrono::Duration::seconds(n));
        let detail = format!(
            r#"{{"exchange":"NYSE","symbol":"HOT","bid":"10.{n:02}","ask":"10.99","timestamp":"{at}"}}"#
        );
        let id = format!("e-hot-{n:02}");
        let outcome = p
            .process(&envelope(&id, "Market Quote", &detail), &format!("req-{n}"))
            .await
            .unwrap();
        assert_eq!(outcome.status, "PROCESSED", "{}", outcome.reason);
        expected.push(id);
    }
    let records = tables.records().await;
    let buckets: std::collections::BTreeSet<String> =
        records.iter().map(|r| s(r, names::SYMBOL_BUCKET)).collect();
    assert_eq!(buckets.len(), usize::from(BUCKETS), "{buckets:?}");

    let newest_first: Vec<String> = tables
        .query_index(&names::SYMBOL_INDEX_SCHEMA, "HOT")
        .await
        .iter()
        .map(|r| s(r, names::EVENT_ID))
        .collect();
    assert_eq!(newest_first, expected);
    // Guards and items of other symbols stay out; the exchange index holds the same records.
    assert_eq!(
        tables
            .query_index(&names::EXCHANGE_INDEX_SCHEMA, "NYSE")
            .await
            .len(),
        24
    );
}

#[tokio::test]
async fn a_redelivered_event_leaves_one_record_and_a_duplicate_audit() {
    let tables = Tables::create().await;
    let p = tables.processor();
    let raw = envelope("e-1", "Market Quote", QUOTE);

    let first = p.process(&raw, "req-1").await.unwrap();
    let second = p.process(&raw, "req-2").await.unwrap();
    assert_eq!((first.status, second.status), ("PROCESSED", "DUPLICATE"));
    assert_eq!(tables.records().await.len(), 1);
    assert_eq!(statuses(&tables.audits().await), ["DUPLICATE", "PROCESSED"]);
}

#[tokio::test]
async fn the_same_event_delivered_twice_at_once_is_stored_once() {
    let tables = Tables::create().await;
    let p = tables.processor();
    let raw = envelope("e-race", "Trade Execution", TRADE);

    let (a, b) = tokio::join!(p.process(&raw, "req-a"), p.process(&raw, "req-b"));
    let mut outcomes = [a.unwrap().status, b.unwrap().status];
    outcomes.sort();
    assert_eq!(outcomes, ["DUPLICATE", "PROCESSED"]);
    assert_eq!(tables.records().await.len(), 1);
    assert_eq!(statuses(&tables.audits().await), ["DUPLICATE", "PROCESSED"]);
}

#[tokio::test]
async fn a_republished_trade_is_a_duplicate_but_an_update_is_new() {
    let tables = Tables::create().await;
    let p = tables.processor();

    let original = p
        .process(&envelope("e-1", "Trade Execution", TRADE), "r1")
        .await
        .unwrap();
    // The feed publishes the same trade again: new envelope id, same trade id and content.
    let republished = p
        .process(&envelope("e-2", "Trade Execution", TRADE), "r2")
        .await
        .unwrap();
    // A correction of that trade: same trade id, new content.
    let corrected = TRADE.replace("150.25", "150.26");
    let update = p
        .process(&envelope("e-3", "Trade Update", &corrected), "r3")
        .await
        .unwrap();
    // The same trade id with the original content but as an update is a new record too.
    let update_same_content = p
        .process(&envelope("e-4", "Trade Update", TRADE), "r4")
        .await
        .unwrap();

    assert_eq!(original.status, "PROCESSED");
    assert_eq!(republished.status, "DUPLICATE");
    assert!(republished.reason.contains("dedupe key"));
    assert_eq!(update.status, "PROCESSED");
    assert_eq!(update_same_content.status, "PROCESSED");

    let mut stored: Vec<String> = tables
        .records()
        .await
        .iter()
        .map(|r| s(r, names::EVENT_ID))
        .collect();
    stored.sort();
    assert_eq!(stored, ["e-1", "e-3", "e-4"]);
}

#[tokio::test]
async fn an_invalid_event_is_rejected_with_its_reason_and_raw_event() {
    let tables = Tables::create().await;
    let p = tables.processor();
    let raw = envelope(
        "e-bad",
        "Trade Execution",
        r#"{"exchange":"NASDAQ","symbol":"AAPL","price":"-1","volume":100}"#,
    );

    let outcome = p.process(&raw, "req-bad").await.unwrap();
    assert_eq!(outcome.status, "REJECTED");
    assert!(tables.records().await.is_empty());
    let audits = tables.audits().await;
    assert_eq!(audits.len(), 1);
    let audit = &audits[0];
    assert_eq!(s(audit, names::STATUS), "REJECTED");
    assert_eq!(s(audit, names::EVENT_ID), "e-bad");
    assert_eq!(s(audit, names::EVENT_TYPE), "trade");
    assert!(
        s(audit, names::REASON).contains("detail.price: must be greater than 0"),
        "{}",
        s(audit, names::REASON)
    );
    assert_eq!(s(audit, names::RAW_EVENT), raw);
    assert_eq!(n(audit, names::RAW_BYTES), raw.len().to_string());
}

#[tokio::test]
async fn an_event_without_an_envelope_is_rejected_and_kept() {
    let tables = Tables::create().await;
    let p = tables.processor();
    let outcome = p.process("{\"hello\":", "req-x").await.unwrap();
    assert_eq!(outcome.status, "REJECTED");
    let audits = tables.audits().await;
    assert_eq!(s(&audits[0], names::EVENT_TYPE), "unknown");
    assert_eq!(s(&audits[0], names::RAW_EVENT), "{\"hello\":");
    assert!(s(&audits[0], names::REASON).starts_with("event: is not valid JSON"));
}

#[tokio::test]
async fn a_wrong_table_name_fails_warm_up_naming_the_variable() {
    let tables = Tables::create().await;
    let mut settings = tables.settings();
    settings.audit_trail_table = "no-such-table".into();
    let p = processor::Processor::new(settings, tables.client.clone());
    let err = p.warm_up().await.unwrap_err().to_string();
    assert!(err.contains("\"no-such-table\""), "{err}");
    assert!(err.contains("AUDIT_TRAIL_TABLE"), "{err}");
}

#[tokio::test]
async fn an_unreachable_endpoint_is_an_error_not_a_panic() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let config = tests::tables::sdk_config_for(&format!("http://127.0.0.1:{port}")).await;
    let settings = names::Settings::from_map(&HashMap::from([
        ("MARKET_DATA_TABLE".to_string(), "market-data-x".to_string()),
        ("AUDIT_TRAIL_TABLE".to_string(), "audit-trail-x".to_string()),
        ("LATEST_TABLE".to_string(), "latest-prices-x".to_string()),
        ("ENVIRONMENT".to_string(), "test".to_string()),
    ]))
    .unwrap();
    let p = processor::Processor::new(settings, processor::aws::dynamodb_client(&config));

    let err = p
        .process(&envelope("e-1", "Trade Execution", TRADE), "req-1")
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("e-1"), "{text}");
    assert!(text.contains("transient DynamoDB failure"), "{text}");
    // The cause in words, without the SDK's debug dump of the error.
    assert!(text.contains("onnect"), "{text}");
    assert!(!text.contains('{') && text.len() < 400, "{text}");

    // Rejections must be audited too; when that fails the event is not accounted for.
    let err = p.process("nonsense", "req-2").await.unwrap_err();
    assert!(err.to_string().contains("not audited as REJECTED"), "{err}");

    let warm = p.warm_up().await.unwrap_err().to_string();
    assert!(warm.contains("MARKET_DATA_TABLE"), "{warm}");
}

#[tokio::test]
async fn a_retry_of_the_same_invocation_completes_instead_of_duplicating() {
    let tables = Tables::create().await;
    let p = tables.processor();
    let raw = envelope("e-retry", "Trade Execution", TRADE);

    // Lambda keeps the request id across the retries of one asynchronous invocation: the
    // second attempt finds its own record (a lost reply, or a crash before the audit write).
    let first = p.process(&raw, "req-same").await.unwrap();
    let again = p.process(&raw, "req-same").await.unwrap();
    assert_eq!((first.status, again.status), ("PROCESSED", "PROCESSED"));
    assert_eq!(tables.records().await.len(), 1);
    // The PROCESSED entry is keyed by its record, so writing it twice leaves one entry.
    assert_eq!(statuses(&tables.audits().await), ["PROCESSED"]);

    // Another delivery of the same event is a duplicate.
    let other = p.process(&raw, "req-other").await.unwrap();
    assert_eq!(other.status, "DUPLICATE");
    assert_eq!(statuses(&tables.audits().await), ["DUPLICATE", "PROCESSED"]);
}

/// `raw` as the redrive publishes it again: a new envelope id, the original's named in
/// `resources`, everything else as it was.
fn redriven(raw: &str, new_id: &str) -> String {
    let mut event: serde_json::Value = serde_json::from_str(raw).expect("an envelope");
    let original = event["id"].as_str().expect("an id").to_string();
    event["id"] = new_id.into();
    event["resources"] = serde_json::json!([format!("{}{original}", names::REDRIVE_OF_PREFIX)]);
    event.to_string()
}

fn processed(audits: &[HashMap<String, AttributeValue>]) -> Vec<&HashMap<String, AttributeValue>> {
    audits
        .iter()
        .filter(|a| s(a, names::STATUS) == "PROCESSED")
        .collect()
}

/// The first copy of a trade claims its guard; every write of its record fails, so it ends in
/// the DLQ (with dev's 0 async retries, at once) and the guard names a record that is not there.
async fn stuck_trade(tables: &Tables, id: &str) -> String {
    let (faulted, proxy) = tables.faulted(Writes::Records).await;
    let raw = envelope(id, "Trade Execution", TRADE);
    let err = faulted.process(&raw, "req-stuck").await.unwrap_err();
    assert!(err.to_string().contains("not stored"), "{err}");
    assert!(
        proxy.stats.injected_total() >= 3,
        "{}",
        proxy.stats.summary()
    );
    assert!(tables.records().await.is_empty());
    raw
}

#[tokio::test]
async fn a_stuck_trade_is_stored_once_by_its_redrive() {
    let tables = Tables::create().await;
    let p = tables.processor();
    let stuck = stuck_trade(&tables, "e-stuck").await;

    let copy = p
        .process(&redriven(&stuck, "e-redrive-1"), "req-redrive-1")
        .await
        .unwrap();
    assert_eq!(copy.status, "PROCESSED", "{}", copy.reason);
    // A second redrive of the same letter (its delete failed, or the tool died), and the first
    // copy's own late retry, both meet the record.
    let again = p
        .process(&redriven(&stuck, "e-redrive-2"), "req-redrive-2")
        .await
        .unwrap();
    let late = p.process(&stuck, "req-late").await.unwrap();
    assert_eq!((again.status, late.status), ("DUPLICATE", "DUPLICATE"));

    let records = tables.records().await;
    assert_eq!(records.len(), 1);
    assert_eq!(s(&records[0], names::EVENT_ID), "e-stuck");
    assert_eq!(s(&records[0], names::DELIVERED_AS), "e-redrive-1");
    let audits = tables.audits().await;
    assert_eq!(processed(&audits).len(), 1);
    assert_eq!(
        statuses(&audits),
        ["DUPLICATE", "DUPLICATE", "FAILED", "PROCESSED"]
    );
}

#[tokio::test]
async fn a_stuck_trade_is_stored_once_by_the_feeds_republication() {
    let tables = Tables::create().await;
    let p = tables.processor();
    let stuck = stuck_trade(&tables, "e-first").await;

    // The feed publishes the trade again: a new envelope id and time, the same content.
    let copy = envelope("e-again", "Trade Execution", TRADE);
    let outcome = p.process(&copy, "req-again").await.unwrap();
    assert_eq!(outcome.status, "PROCESSED", "{}", outcome.reason);
    assert!(outcome.reason.contains("e-first"), "{}", outcome.reason);
    // The first copy's redrive, and a third copy, are duplicates of that record.
    let redrive = p
        .process(&redriven(&stuck, "e-redrive"), "req-redrive")
        .await
        .unwrap();
    let third = p
        .process(&envelope("e-third", "Trade Execution", TRADE), "req-third")
        .await
        .unwrap();
    assert_eq!((redrive.status, third.status), ("DUPLICATE", "DUPLICATE"));
    assert!(third.reason.contains("dedupe key"), "{}", third.reason);

    let records = tables.records().await;
    assert_eq!(records.len(), 1);
    // Stored under the guard's owner, so every later copy finds it by the same key.
    assert_eq!(s(&records[0], names::EVENT_ID), "e-first");
    assert_eq!(s(&records[0], names::DELIVERED_AS), "e-again");
    assert_eq!(processed(&tables.audits().await).len(), 1);
}

#[tokio::test]
async fn two_copies_taking_over_an_orphaned_guard_store_one_record() {
    let tables = Tables::create().await;
    let p = tables.processor();
    stuck_trade(&tables, "e-orphan").await;

    let a = envelope("e-taker-a", "Trade Execution", TRADE);
    let b = envelope("e-taker-b", "Trade Execution", TRADE);
    let (a, b) = tokio::join!(p.process(&a, "req-a"), p.process(&b, "req-b"));
    let mut outcomes = [a.unwrap().status, b.unwrap().status];
    outcomes.sort();
    assert_eq!(outcomes, ["DUPLICATE", "PROCESSED"]);
    assert_eq!(tables.records().await.len(), 1);
    assert_eq!(processed(&tables.audits().await).len(), 1);
}

#[tokio::test]
async fn a_duplicate_writes_the_processed_entry_its_record_lacks() {
    let tables = Tables::create().await;
    let p = tables.processor();
    // The record lands and every write of its PROCESSED entry fails: the event ends in the DLQ
    // with its record stored.
    let (faulted, proxy) = tables.faulted(Writes::Audits).await;
    let raw = envelope("e-unaudited", "Trade Execution", TRADE);
    let err = faulted.process(&raw, "req-1").await.unwrap_err();
    assert!(
        err.to_string().contains("not audited as PROCESSED"),
        "{err}"
    );
    assert!(
        proxy.stats.injected_total() >= 3,
        "{}",
        proxy.stats.summary()
    );
    assert_eq!(tables.records().await.len(), 1);
    assert!(tables.audits().await.is_empty());

    // A redelivery (here: a redrive) is a duplicate, and writes the missing entry.
    let again = p
        .process(&redriven(&raw, "e-redrive"), "req-2")
        .await
        .unwrap();
    assert_eq!(again.status, "DUPLICATE", "{}", again.reason);
    let audits = tables.audits().await;
    assert_eq!(statuses(&audits), ["DUPLICATE", "PROCESSED"]);
    let entry = processed(&audits)[0].clone();
    assert_eq!(s(&entry, names::EVENT_ID), "e-unaudited");

    // The re-published trade's duplicate path backfills too, and never makes a second entry:
    // the entry's key is the record's.
    let republished = p
        .process(
            &envelope("e-republished", "Trade Execution", TRADE),
            "req-3",
        )
        .await
        .unwrap();
    assert_eq!(republished.status, "DUPLICATE");
    let audits = tables.audits().await;
    assert_eq!(processed(&audits).len(), 1);
    assert_eq!(processed(&audits)[0], &entry, "the first backfill is kept");
}

#[tokio::test]
async fn a_trade_update_arriving_before_its_execution_is_stored() {
    let tables = Tables::create().await;
    let p = tables.processor();
    let update = TRADE.replace("150.25", "150.30");
    let first = p
        .process(&envelope("e-upd", "Trade Update", &update), "r1")
        .await
        .unwrap();
    let second = p
        .process(&envelope("e-exe", "Trade Execution", TRADE), "r2")
        .await
        .unwrap();
    assert_eq!((first.status, second.status), ("PROCESSED", "PROCESSED"));
    assert_eq!(tables.records().await.len(), 2);
}

#[tokio::test]
async fn an_invocation_out_of_time_fails_and_its_retry_stores_once() {
    let tables = Tables::create().await;
    let p = tables.processor();
    let raw = envelope("e-late", "Trade Execution", TRADE);

    // Growing budgets stop the same invocation at different points of its guard, record and
    // audit writes, as Lambda's retries of a timed-out invocation would find it.
    let mut budget = std::time::Duration::ZERO;
    let outcome = loop {
        match p.process_within(&raw, "req-late", Some(budget)).await {
            Ok(outcome) => break outcome,
            Err(err) => {
                assert_eq!(err.error_type(), "DeadlineExceeded", "{err}");
                assert!(err.to_string().contains("will be retried"), "{err}");
            }
        }
        assert!(
            budget < std::time::Duration::from_secs(10),
            "never finished within {budget:?}"
        );
        budget = budget * 2 + std::time::Duration::from_millis(1);
    };
    assert_eq!(outcome.status, "PROCESSED", "{}", outcome.reason);
    assert_eq!(tables.records().await.len(), 1);
    assert_eq!(statuses(&tables.audits().await), ["PROCESSED"]);
}

#[test]
fn the_budget_ends_a_margin_before_the_lambda_deadline() {
    let now = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_000);
    let deadline_ms = 1_000_000 + 30_000;
    assert_eq!(
        processor::budget(deadline_ms, now),
        std::time::Duration::from_secs(30) - names::limits::DEADLINE_MARGIN
    );
    assert_eq!(
        processor::budget(1_000_000 + 200, now),
        std::time::Duration::ZERO,
        "less time left than the margin"
    );
    assert_eq!(
        processor::budget(0, now),
        std::time::Duration::ZERO,
        "deadline passed"
    );
}
