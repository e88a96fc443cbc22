//! Replayed events against moto: stored once whether or not the replay keeps the envelope id,
//! and an archived event older than the live age limit still stored.
//!
//! EventBridge's documentation (the user guide's "Replaying archived events" and the
//! StartReplay reference) says a replayed event carries `replay-name` and may arrive out of
//! order; it does not say whether the event keeps its `id`. Both cases are tested here.

use chrono::{Duration, Utc};
use processor::event::format_timestamp;
use tests::tables::{Tables, s, statuses};

const QUOTE: &str =
    r#"{"exchange":"NYSE","symbol":"IBM","bid":"221.14","ask":"221.16","bid_size":300}"#;
const TRADE: &str =
    r#"{"exchange":"NASDAQ","symbol":"AAPL","price":"150.25","volume":100,"trade_id":"T-9"}"#;

/// The envelope EventBridge delivers: `replay` adds the replay's name, as a replay does.
fn envelope(
    id: &str,
    detail_type: &str,
    detail: &str,
    age: Duration,
    replay: Option<&str>,
) -> String {
    let time = format_timestamp(Utc::now() - age);
    let replay = replay.map_or(String::new(), |name| format!(r#""replay-name":"{name}","#));
    format!(
        r#"{{"version":"0","id":"{id}","detail-type":"{detail_type}","source":"market.data","account":"123456789012","time":"{time}","region":"us-east-1","resources":[],{replay}"detail":{detail}}}"#
    )
}

#[tokio::test]
async fn a_replay_that_keeps_the_envelope_id_stores_nothing_new() {
    let tables = Tables::create().await;
    let p = tables.processor();
    let outcome = live_then_replayed(&p, ("q-1", "q-1"), "Market Quote", QUOTE, "fix-1").await;
    assert_eq!(outcome.status, "DUPLICATE", "{}", outcome.reason);
    let records = tables.records().await;
    assert_eq!(records.len(), 1);
    assert_eq!(s(&records[0], names::EVENT_ID), "q-1");
    assert_eq!(statuses(&tables.audits().await), ["DUPLICATE", "PROCESSED"]);
}

#[tokio::test]
async fn a_replay_under_new_ids_finds_its_original_by_content() {
    let tables = Tables::create().await;
    let p = tables.processor();
    let time = format_timestamp(Utc::now() - Duration::hours(3));
    let at_time = |id: &str, detail: &str, replay: Option<&str>| {
        pin_time(
            &envelope(id, "Market Quote", detail, Duration::zero(), replay),
            &time,
        )
    };
    let original = at_time("q-live", QUOTE, None);
    assert_eq!(
        p.process(&original, "live").await.unwrap().status,
        "PROCESSED"
    );
    // A quote at the same time with another bid is another event, and stays one.
    let other = QUOTE.replace("221.14", "221.13");
    let neighbour = at_time("q-other", &other, None);
    assert_eq!(
        p.process(&neighbour, "live-2").await.unwrap().status,
        "PROCESSED"
    );

    let replayed = at_time("q-new-id", QUOTE, Some("fix-2"));
    let outcome = p.process(&replayed, "replay").await.unwrap();
    assert_eq!(outcome.status, "DUPLICATE", "{}", outcome.reason);
    assert!(
        outcome.reason.contains("replayed under a new id") && outcome.reason.contains("q-live"),
        "{}",
        outcome.reason
    );
    let replayed_other = at_time("q-new-id-2", &other, Some("fix-2"));
    let outcome = p.process(&replayed_other, "replay").await.unwrap();
    assert_eq!(outcome.status, "DUPLICATE", "{}", outcome.reason);
    assert!(outcome.reason.contains("q-other"), "{}", outcome.reason);
    let mut ids: Vec<String> = tables
        .records()
        .await
        .iter()
        .map(|r| s(r, names::EVENT_ID))
        .collect();
    ids.sort();
    assert_eq!(ids, ["q-live", "q-other"]);
}

/// An event stored live an hour ago under `ids.0`, then delivered by replay `replay` under
/// `ids.1`: the replay's outcome.
async fn live_then_replayed(
    p: &processor::Processor,
    ids: (&str, &str),
    detail_type: &str,
    detail: &str,
    replay: &str,
) -> processor::handler::Outcome {
    let time = format_timestamp(Utc::now() - Duration::hours(1));
    let at_time = |id: &str, replay: Option<&str>| {
        pin_time(
            &envelope(id, detail_type, detail, Duration::zero(), replay),
            &time,
        )
    };
    let live = p.process(&at_time(ids.0, None), "live").await.unwrap();
    assert_eq!(live.status, "PROCESSED", "{}", live.reason);
    p.process(&at_time(ids.1, Some(replay)), "replay")
        .await
        .unwrap()
}

/// The same envelope with its `time` set to `time`, so two envelopes built apart share it.
fn pin_time(envelope: &str, time: &str) -> String {
    let mut value: serde_json::Value = serde_json::from_str(envelope).unwrap();
    value["time"] = serde_json::json!(time);
    value.to_string()
}

#[tokio::test]
async fn copies_of_an_event_whose_original_never_stored_store_once_however_they_race() {
    let tables = Tables::create().await;
    let p = tables.processor();
    let time = format_timestamp(Utc::now() - Duration::days(2));
    // The original was rejected by a bug since fixed; the archive holds it (twice: the producer
    // retried), and the replay hands out new ids, concurrently.
    let copies: Vec<String> = (0..6)
        .map(|i| {
            pin_time(
                &envelope(
                    &format!("r-{i}"),
                    "Market Quote",
                    QUOTE,
                    Duration::zero(),
                    Some("fix-3"),
                ),
                &time,
            )
        })
        .collect();
    let request_ids: Vec<String> = (0..copies.len()).map(|i| format!("inv-{i}")).collect();
    let outcomes = futures_util::future::join_all(
        copies
            .iter()
            .zip(&request_ids)
            .map(|(raw, request_id)| p.process(raw, request_id)),
    )
    .await;
    let mut statuses_seen: Vec<&str> = outcomes
        .iter()
        .map(|o| o.as_ref().expect("accounted for").status)
        .collect();
    statuses_seen.sort();
    assert_eq!(
        statuses_seen,
        [
            "DUPLICATE",
            "DUPLICATE",
            "DUPLICATE",
            "DUPLICATE",
            "DUPLICATE",
            "PROCESSED"
        ]
    );
    let records = tables.records().await;
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(s(&records[0], names::REPLAYED_BY), "fix-3");
    // A second replay of the same range meets the same record.
    let again = pin_time(
        &envelope(
            "r-later",
            "Market Quote",
            QUOTE,
            Duration::zero(),
            Some("fix-4"),
        ),
        &time,
    );
    assert_eq!(
        p.process(&again, "inv-c").await.unwrap().status,
        "DUPLICATE"
    );
    assert_eq!(tables.records().await.len(), 1);
    let processed = tables
        .audits()
        .await
        .iter()
        .filter(|a| s(a, names::STATUS) == "PROCESSED")
        .count();
    assert_eq!(processed, 1);
}

#[tokio::test]
async fn a_replayed_trade_under_a_new_id_meets_its_trade_guard() {
    let tables = Tables::create().await;
    let p = tables.processor();
    let outcome =
        live_then_replayed(&p, ("t-live", "t-new"), "Trade Execution", TRADE, "fix-5").await;
    assert_eq!(outcome.status, "DUPLICATE", "{}", outcome.reason);
    assert!(
        outcome.reason.contains("same trade as event \"t-live\""),
        "{}",
        outcome.reason
    );
    assert_eq!(tables.records().await.len(), 1);
}

#[tokio::test]
async fn an_archived_event_older_than_the_live_limit_is_stored_by_a_replay_only() {
    let tables = Tables::create().await;
    let p = tables.processor();
    // Ten days old: past the seven-day live limit, inside the 30-day TTL less a day.
    let age = Duration::days(10);
    let live = envelope("old-1", "Market Quote", QUOTE, age, None);
    let outcome = p.process(&live, "live").await.unwrap();
    assert_eq!(outcome.status, "REJECTED");
    assert!(
        outcome.reason.contains("s old; at most 604800 s"),
        "{}",
        outcome.reason
    );
    let replayed = envelope("old-1", "Market Quote", QUOTE, age, Some("backfill"));
    let outcome = p.process(&replayed, "replay").await.unwrap();
    assert_eq!(outcome.status, "PROCESSED", "{}", outcome.reason);
    let too_old = envelope(
        "old-2",
        "Market Quote",
        QUOTE,
        Duration::days(29) + Duration::minutes(1),
        Some("backfill"),
    );
    assert_eq!(
        p.process(&too_old, "replay").await.unwrap().status,
        "REJECTED"
    );
}

#[tokio::test]
async fn a_stream_record_claiming_to_be_a_replay_is_rejected() {
    let tables = Tables::create().await;
    let p = tables.processor();
    let data = envelope(
        "s-1",
        "Market Quote",
        QUOTE,
        Duration::days(10),
        Some("forged"),
    );
    let batch = harness::stream::batch(vec![
        harness::stream::record(
            "shardId-000000000000",
            "1",
            "NYSE#IBM",
            data.as_bytes(),
            "arn:aws:kinesis:us-east-1:123456789012:stream/s",
            Utc::now(),
        )
        .unwrap(),
    ]);
    let (response, summary) = p.process_batch(&batch, "inv", None).await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(summary.accounted, 1);
    assert!(tables.records().await.is_empty());
    let audits = tables.audits().await;
    assert_eq!(statuses(&audits), ["REJECTED"]);
    assert!(s(&audits[0], names::REASON).starts_with("replay-name: is set only by EventBridge"));
}
