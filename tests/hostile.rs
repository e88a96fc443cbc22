//! Hostile input, case by case, through the real decode path into moto: each ends with the
//! outcome docs/events.md promises, and none fails the invocation or panics.

use chrono::{Duration, Utc};
use processor::event::format_timestamp;
use tests::tables::{Tables, n, s};

/// An envelope with `detail` (raw JSON text) and the given top-level overrides.
fn event(id: &str, detail_type: &str, detail: &str) -> String {
    format!(
        r#"{{"version":"0","id":{},"detail-type":{},"source":"market.data","account":"123456789012","time":"{}","region":"us-east-1","resources":[],"detail":{detail}}}"#,
        serde_json::Value::from(id),
        serde_json::Value::from(detail_type),
        format_timestamp(Utc::now())
    )
}

fn trade(price: &str, volume: &str) -> String {
    format!(r#"{{"exchange":"NASDAQ","symbol":"AAPL","price":{price},"volume":{volume}}}"#)
}

/// A trade stamped `offset` from now, to the millisecond: whole seconds would put "now + 301 s"
/// anywhere from 300 to 301 s ahead of the processing clock.
fn at(offset: Duration) -> String {
    format!(
        r#"{{"exchange":"NASDAQ","symbol":"AAPL","price":1,"volume":1,"timestamp":"{}"}}"#,
        (Utc::now() + offset).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    )
}

/// A trade detail padded with an unknown field to exactly `bytes` bytes.
fn detail_of(bytes: usize) -> String {
    let bare = r#"{"exchange":"NASDAQ","symbol":"AAPL","price":1,"volume":1,"pad":""}"#;
    let pad = "x".repeat(bytes - bare.len());
    bare.replace(r#""pad":"""#, &format!(r#""pad":"{pad}""#))
}

fn nested(depth: usize) -> String {
    format!(
        r#"{{"exchange":"NASDAQ","symbol":"AAPL","price":1,"volume":1,"deep":{}{}}}"#,
        "[".repeat(depth),
        "]".repeat(depth)
    )
}

enum Expect {
    /// Stored, with these attributes of the record as they must read.
    Stored(&'static [(&'static str, &'static str)]),
    /// Rejected with a reason naming the field and containing this text.
    Rejected(&'static str, &'static str),
}

struct Case {
    name: &'static str,
    raw: String,
    expect: Expect,
}

fn case(name: &'static str, raw: String, expect: Expect) -> Case {
    Case { name, raw, expect }
}

fn cases() -> Vec<Case> {
    use Expect::*;
    let t = "Trade Execution";
    vec![
        case(
            "29 significant digits",
            event(
                "h-29",
                t,
                &trade(r#""12345678901234567890.123456789""#, "1"),
            ),
            Rejected("detail.price", "28 significant digits"),
        ),
        case(
            "1e-28",
            event("h-1e-28", t, &trade("1e-28", "1")),
            Stored(&[("price", "0.0000000000000000000000000001")]),
        ),
        case(
            "1e-29",
            event("h-1e-29", t, &trade("1e-29", "1")),
            Rejected("detail.price", "28 significant digits"),
        ),
        case(
            "1e999999",
            event("h-1e999999", t, &trade("1e999999", "1")),
            Rejected("detail.price", "28 significant digits"),
        ),
        case(
            "-0",
            event("h-minus-0", t, &trade("-0", "1")),
            Rejected("detail.price", "greater than 0"),
        ),
        case(
            "\"+1\"",
            event("h-plus-1", t, &trade(r#""+1""#, "1")),
            Rejected("detail.price", "is not a decimal number"),
        ),
        case(
            "\".5\"",
            event("h-dot-5", t, &trade(r#"".5""#, "1")),
            Rejected("detail.price", "is not a decimal number"),
        ),
        case(
            "\"NaN\"",
            event("h-nan", t, &trade(r#""NaN""#, "1")),
            Rejected("detail.price", "is not a decimal number"),
        ),
        case(
            "\"1_000\"",
            event("h-underscore", t, &trade(r#""1_000""#, "1")),
            Rejected("detail.price", "is not a decimal number"),
        ),
        case(
            "volume 2^64-1",
            event("h-vol-max", t, &trade("1", "18446744073709551615")),
            Stored(&[("volume", "18446744073709551615")]),
        ),
        case(
            "volume 2^64",
            event("h-vol-over", t, &trade("1", "18446744073709551616")),
            Rejected("detail.volume", "2^64"),
        ),
        case(
            "volume \"1e2\"",
            event("h-vol-exp", t, &trade("1", r#""1e2""#)),
            Stored(&[("volume", "100")]),
        ),
        case(
            "detail of exactly 32 768 bytes",
            event("h-32768", t, &detail_of(32_768)),
            Stored(&[]),
        ),
        case(
            "detail of 32 769 bytes",
            event("h-32769", t, &detail_of(32_769)),
            Rejected("detail", "is 32769 bytes"),
        ),
        case(
            "envelope over 256 KiB",
            event("h-256k", t, &detail_of(300 * 1024)),
            Rejected("detail", "at most 32768"),
        ),
        case(
            "duplicate keys nested in the detail",
            event(
                "h-nested-dup",
                t,
                r#"{"exchange":"NASDAQ","symbol":"AAPL","price":1,"volume":1,"venue":{"mic":"XNAS","mic":"XNYS"}}"#,
            ),
            Rejected("detail", "\"mic\" appears more than once"),
        ),
        case(
            "nesting 129 levels in an unknown field",
            event("h-deep-129", t, &nested(129)),
            Rejected("detail", "recursion limit"),
        ),
        case(
            "nesting 10 000 levels in an unknown field",
            event("h-deep-10000", t, &nested(10_000)),
            Rejected("detail", "recursion limit"),
        ),
        case(
            ":60 seconds on an ordinary minute",
            event(
                "h-leap",
                t,
                &format!(
                    r#"{{"exchange":"NASDAQ","symbol":"AAPL","price":1,"volume":1,"timestamp":"{}"}}"#,
                    (Utc::now() - Duration::minutes(5)).format("%Y-%m-%dT%H:%M:60Z")
                ),
            ),
            Rejected("detail.timestamp", "leap second"),
        ),
        case(
            "now + 299 s",
            event("h-future-299", t, &at(Duration::seconds(299))),
            Stored(&[]),
        ),
        case(
            "now + 301 s",
            event("h-future-301", t, &at(Duration::seconds(301))),
            Rejected("detail.timestamp", "ahead of the processing clock"),
        ),
        case(
            "now - 7 days - 1 s",
            event("h-old", t, &at(-Duration::days(7) - Duration::seconds(1))),
            Rejected("detail.timestamp", "at most 604800 s allowed"),
        ),
        case(
            "year +12026",
            event(
                "h-year",
                t,
                r#"{"exchange":"NASDAQ","symbol":"AAPL","price":1,"volume":1,"timestamp":"+12026-01-01T00:00:00Z"}"#,
            ),
            Rejected("detail.timestamp", "not an RFC 3339 date-time"),
        ),
        case(
            "an id of 43 \"€\" (129 bytes)",
            event(&"€".repeat(43), t, &trade("1", "1")),
            Rejected("id", "found 129 bytes"),
        ),
        case(
            "an id of 42 \"€\" (126 bytes)",
            event(&"€".repeat(42), t, &trade("1", "1")),
            Stored(&[]),
        ),
        case(
            "a 5 MB detail-type",
            event("h-5mb-type", &"T".repeat(5 * 1024 * 1024), &trade("1", "1")),
            Rejected("detail-type", "is 5242880 bytes"),
        ),
    ]
}

#[tokio::test]
async fn every_hostile_input_ends_as_the_contract_says() {
    let tables = Tables::create().await;
    let p = tables.processor();
    let cases = cases();
    let mut expected_records = 0;
    for (i, case) in cases.iter().enumerate() {
        let outcome = p
            .process(&case.raw, &format!("req-{i}"))
            .await
            .unwrap_or_else(|err| panic!("{}: the invocation failed: {err}", case.name));
        match &case.expect {
            Expect::Stored(attributes) => {
                expected_records += 1;
                assert_eq!(
                    outcome.status, "PROCESSED",
                    "{}: {}",
                    case.name, outcome.reason
                );
                let id = outcome.event_id.clone().unwrap_or_default();
                let records = tables.records().await;
                let record = records
                    .iter()
                    .find(|r| s(r, names::EVENT_ID) == id)
                    .unwrap_or_else(|| panic!("{}: no record", case.name));
                for (attribute, value) in *attributes {
                    assert_eq!(&n(record, attribute), value, "{}: {attribute}", case.name);
                }
            }
            Expect::Rejected(field, text) => {
                assert_eq!(outcome.status, "REJECTED", "{}", case.name);
                let reason = &outcome.reason;
                let named = (reason.starts_with(&format!("{field}: "))
                    || reason.contains(&format!("; {field}: ")))
                    && reason.contains(text);
                assert!(named, "{}: {:?}", case.name, outcome.reason);
            }
        }
    }
    assert_eq!(tables.records().await.len(), expected_records);
    // Every case is in the audit trail, and no entry carries an oversized envelope string.
    let audits = tables.audits().await;
    assert_eq!(audits.len(), cases.len());
    for audit in &audits {
        for attribute in [names::EVENT_ID, names::DETAIL_TYPE, names::SOURCE] {
            if let Some(aws_sdk_dynamodb::types::AttributeValue::S(text)) = audit.get(attribute) {
                assert!(text.len() <= 256, "{attribute} of {} bytes", text.len());
            }
        }
    }
    let oversized = audits
        .iter()
        .find(|a| a.get(names::RAW_TRUNCATED).is_some())
        .expect("the 5 MB event's raw copy is truncated");
    assert_eq!(s(oversized, names::STATUS), "REJECTED");
}
