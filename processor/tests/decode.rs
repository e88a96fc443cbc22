//! The event contract, without a network: what is accepted, exactly, and what is rejected, why.

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use processor::event::{Body, Kind, Rules, Side, decode};
use proptest::prelude::*;
use rust_decimal::Decimal;

fn rules() -> Rules {
    Rules {
        accepted_sources: vec!["market.data".into()],
        max_future_skew_seconds: 300,
        max_event_age_seconds: 7 * 86_400,
        replay_max_age_seconds: None,
    }
}

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-25T12:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn at(offset_seconds: i64) -> String {
    (now() + Duration::seconds(offset_seconds)).to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn event(detail_type: &str, detail: &str) -> String {
    format!(
        r#"{{"version":"0","id":"evt-1","detail-type":"{detail_type}","source":"market.data","account":"123456789012","time":"{}","region":"us-east-1","resources":[],"detail":{detail}}}"#,
        at(-1)
    )
}

const TRADE: &str = r#"{"exchange":"NASDAQ","symbol":"AAPL","price":150.25,"volume":100}"#;

#[test]
fn a_minimal_trade_gets_defaults() {
    let e = decode(&event("Trade Execution", TRADE), &rules(), now()).unwrap();
    assert_eq!(e.kind, Kind::Trade);
    assert_eq!(e.envelope_id, "evt-1");
    assert_eq!(e.exchange, "NASDAQ");
    assert_eq!(e.symbol, "AAPL");
    assert_eq!(e.currency, "USD");
    assert_eq!(e.timestamp_key(), at(-1));
    assert_eq!(e.detail_timestamp, None);
    let Body::Trade(t) = e.body else {
        panic!("not a trade")
    };
    assert_eq!(t.price.to_string(), "150.25");
    assert_eq!(t.volume, 100);
    assert_eq!((t.trade_id, t.side), (None, None));
}

#[test]
fn a_full_trade_keeps_every_field_and_unknown_ones() {
    let detail = format!(
        r#"{{"exchange":"LSE","symbol":"VOD.L","price":"0.000000012345","volume":"250","trade_id":"T-1:a","side":"sell","currency":"GBP","timestamp":"{}","venue_flags":[1,2],"note":{{"x":1.10}}}}"#,
        at(-60)
    );
    let e = decode(&event("Trade Update", &detail), &rules(), now()).unwrap();
    let Body::Trade(t) = &e.body else {
        panic!("not a trade")
    };
    assert_eq!(t.price.to_string(), "0.000000012345");
    assert_eq!(t.volume, 250);
    assert_eq!(t.trade_id.as_deref(), Some("T-1:a"));
    assert_eq!(t.side, Some(Side::Sell));
    assert_eq!(e.currency, "GBP");
    assert_eq!(e.timestamp_key(), at(-60));
    assert_eq!(e.extra.len(), 2);
    assert_eq!(e.extra["note"].to_string(), r#"{"x":1.10}"#);
}

#[test]
fn large_prices_keep_every_digit() {
    let detail = r#"{"exchange":"X","symbol":"BIG","price":12345678901234567890.123,"volume":1}"#;
    let e = decode(&event("Trade Execution", detail), &rules(), now()).unwrap();
    let Body::Trade(t) = e.body else {
        panic!("not a trade")
    };
    assert_eq!(t.price.to_string(), "12345678901234567890.123");
}

#[test]
fn quotes_and_price_updates() {
    let q = decode(
        &event(
            "Market Quote",
            r#"{"exchange":"NYSE","symbol":"IBM","bid":"99.5","ask":99.75,"bid_size":10,"ask_size":"20"}"#,
        ),
        &rules(),
        now(),
    )
    .unwrap();
    assert_eq!(q.kind, Kind::Quote);
    let Body::Quote(quote) = q.body else {
        panic!("not a quote")
    };
    assert_eq!(quote.bid, Some(Decimal::new(995, 1)));
    assert_eq!(quote.ask, Some(Decimal::new(9975, 2)));
    assert_eq!((quote.bid_size, quote.ask_size), (Some(10), Some(20)));
    assert_eq!(quote.price, None);

    let p = decode(
        &event(
            "Price Update",
            r#"{"exchange":"NYSE","symbol":"IBM","price":"99.6"}"#,
        ),
        &rules(),
        now(),
    )
    .unwrap();
    let Body::Quote(update) = p.body else {
        panic!("not a quote")
    };
    assert_eq!(update.price, Some(Decimal::new(996, 1)));
    assert_eq!((update.bid, update.ask), (None, None));

    // A crossed-free, locked quote (bid == ask) is valid.
    assert!(
        decode(
            &event(
                "Market Quote",
                r#"{"exchange":"NYSE","symbol":"IBM","bid":1,"ask":"1.00"}"#
            ),
            &rules(),
            now()
        )
        .is_ok()
    );
}

/// Every reject reason, each case naming the field and a part of the rule it broke.
#[test]
fn every_reject_reason_names_the_field_and_the_rule() {
    let trade = |patch: &str| {
        event(
            "Trade Execution",
            &format!(r#"{{"exchange":"NASDAQ","symbol":"AAPL","price":1,"volume":1{patch}}}"#),
        )
    };
    let bare = |detail: &str| event("Trade Execution", detail);
    let quote = |detail: &str| event("Market Quote", detail);
    let update = |detail: &str| event("Price Update", detail);
    let envelope = |raw: &str| raw.to_string();
    let big_detail = format!(
        r#"{{"exchange":"NASDAQ","symbol":"AAPL","price":1,"volume":1,"pad":"{}"}}"#,
        "x".repeat(40_000)
    );

    let cases: Vec<(String, &str, &str)> = vec![
        // Envelope
        (envelope("not json"), "event", "not valid JSON"),
        (envelope("[1,2]"), "event", "must be a JSON object"),
        (envelope("42"), "event", "must be a JSON object"),
        (
            envelope(r#"{"id":"a","source":"market.data","detail":{}}"#),
            "detail-type",
            "is required",
        ),
        (
            envelope(r#"{"id":"a","detail-type":"Trade Execution","detail":{}}"#),
            "source",
            "is required",
        ),
        (
            envelope(r#"{"id":"a","detail-type":"Trade Execution","source":"market.data"}"#),
            "detail",
            "is required",
        ),
        (
            envelope(
                r#"{"id":7,"detail-type":"Trade Execution","source":"market.data","detail":{}}"#,
            ),
            "id",
            "must be a string",
        ),
        (
            envelope(r#"{"id":"a","detail-type":["x"],"source":"market.data","detail":{}}"#),
            "detail-type",
            "must be a string",
        ),
        (
            envelope(
                r#"{"id":"a","detail-type":"Trade Execution","source":"market.data","time":"yesterday","detail":{}}"#,
            ),
            "time",
            "RFC 3339",
        ),
        (
            envelope(
                r#"{"id":"a","detail-type":"Trade Execution","source":"market.data","resources":"x","detail":{}}"#,
            ),
            "resources",
            "array of strings",
        ),
        (
            trade("").replace(r#""id":"evt-1","#, ""),
            "id",
            "is required",
        ),
        (
            trade("").replace(r#""id":"evt-1""#, r#""id":"""#),
            "id",
            "1 to 128 bytes of UTF-8",
        ),
        (
            trade("").replace("market.data", "evil.feed"),
            "source",
            "not an accepted source",
        ),
        (
            event("Trade Cancel", TRADE),
            "detail-type",
            "not a known detail-type",
        ),
        // Detail shape
        (bare(r#""a string""#), "detail", "must be a JSON object"),
        (bare("[]"), "detail", "must be a JSON object"),
        (bare(&big_detail), "detail", "at most 32768"),
        (
            bare(r#"{"exchange":"NASDAQ","symbol":"AAPL","price":1,"price":2,"volume":1}"#),
            "detail",
            "appears more than once",
        ),
        // Exchange and symbol
        (
            bare(r#"{"symbol":"AAPL","price":1,"volume":1}"#),
            "detail.exchange",
            "is required",
        ),
        (
            bare(r#"{"exchange":5,"symbol":"AAPL","price":1,"volume":1}"#),
            "detail.exchange",
            "must be a string",
        ),
        (
            bare(r#"{"exchange":"nasdaq","symbol":"AAPL","price":1,"volume":1}"#),
            "detail.exchange",
            "A-Z",
        ),
        (
            bare(r#"{"exchange":"","symbol":"AAPL","price":1,"volume":1}"#),
            "detail.exchange",
            "1 to 16",
        ),
        (
            bare(r#"{"exchange":"ABCDEFGHIJKLMNOPQ","symbol":"AAPL","price":1,"volume":1}"#),
            "detail.exchange",
            "1 to 16",
        ),
        (
            bare(r#"{"exchange":"NASDAQ","price":1,"volume":1}"#),
            "detail.symbol",
            "is required",
        ),
        (
            bare(r#"{"exchange":"NASDAQ","symbol":"AA PL","price":1,"volume":1}"#),
            "detail.symbol",
            "A-Z",
        ),
        (
            bare(r#"{"exchange":"NASDAQ","symbol":"-AAPL","price":1,"volume":1}"#),
            "detail.symbol",
            "starting with a letter or digit",
        ),
        (
            bare(&format!(
                r#"{{"exchange":"NASDAQ","symbol":"{}","price":1,"volume":1}}"#,
                "A".repeat(33)
            )),
            "detail.symbol",
            "1 to 32",
        ),
        // Price
        (
            bare(r#"{"exchange":"NASDAQ","symbol":"AAPL","volume":1}"#),
            "detail.price",
            "is required",
        ),
        (
            trade(r#","price":0"#).replace(r#""price":1,"#, ""),
            "detail.price",
            "greater than 0",
        ),
        (
            trade(r#","price":-1.5"#).replace(r#""price":1,"#, ""),
            "detail.price",
            "greater than 0",
        ),
        (
            trade(r#","price":"-0""#).replace(r#""price":1,"#, ""),
            "detail.price",
            "greater than 0",
        ),
        (
            trade(r#","price":"NaN""#).replace(r#""price":1,"#, ""),
            "detail.price",
            "not a decimal number",
        ),
        (
            trade(r#","price":"Infinity""#).replace(r#""price":1,"#, ""),
            "detail.price",
            "not a decimal number",
        ),
        (
            trade(r#","price":"1,5""#).replace(r#""price":1,"#, ""),
            "detail.price",
            "not a decimal number",
        ),
        (
            trade(r#","price":true"#).replace(r#""price":1,"#, ""),
            "detail.price",
            "found a boolean",
        ),
        (
            trade(r#","price":{"v":1}"#).replace(r#""price":1,"#, ""),
            "detail.price",
            "found an object",
        ),
        (
            trade(r#","price":1234567890123456789012345678901234567890"#)
                .replace(r#""price":1,"#, ""),
            "detail.price",
            "28 significant digits",
        ),
        (
            trade(r#","price":1e-40"#).replace(r#""price":1,"#, ""),
            "detail.price",
            "28 significant digits",
        ),
        // Volume
        (
            bare(r#"{"exchange":"NASDAQ","symbol":"AAPL","price":1}"#),
            "detail.volume",
            "is required",
        ),
        (
            trade(r#","volume":0"#)
                .replace(r#""volume":1,"#, "")
                .replace(r#","volume":1"#, ""),
            "detail.volume",
            "positive whole number",
        ),
        (
            bare(r#"{"exchange":"NASDAQ","symbol":"AAPL","price":1,"volume":1.5}"#),
            "detail.volume",
            "positive whole number",
        ),
        (
            bare(r#"{"exchange":"NASDAQ","symbol":"AAPL","price":1,"volume":-3}"#),
            "detail.volume",
            "positive whole number",
        ),
        (
            bare(r#"{"exchange":"NASDAQ","symbol":"AAPL","price":1,"volume":"many"}"#),
            "detail.volume",
            "not a decimal number",
        ),
        (
            bare(
                r#"{"exchange":"NASDAQ","symbol":"AAPL","price":1,"volume":18446744073709551616}"#,
            ),
            "detail.volume",
            "below 2^64",
        ),
        // Optional trade fields
        (
            trade(r#","side":"BUY""#),
            "detail.side",
            r#"must be "buy" or "sell""#,
        ),
        (trade(r#","side":1"#), "detail.side", "must be a string"),
        (
            trade(r#","trade_id":"has space""#),
            "detail.trade_id",
            "1 to 64 characters",
        ),
        (
            trade(&format!(r#","trade_id":"{}""#, "t".repeat(65))),
            "detail.trade_id",
            "1 to 64 characters",
        ),
        (
            trade(r#","trade_id":12"#),
            "detail.trade_id",
            "must be a string",
        ),
        (trade(r#","currency":"usd""#), "detail.currency", "ISO 4217"),
        (trade(r#","currency":"US""#), "detail.currency", "ISO 4217"),
        (
            trade(r#","currency":840"#),
            "detail.currency",
            "must be a string",
        ),
        // Time
        (
            trade(r#","timestamp":"2026-11-25 12:00:00""#),
            "detail.timestamp",
            "RFC 3339",
        ),
        (
            trade(r#","timestamp":"1764072000""#),
            "detail.timestamp",
            "RFC 3339",
        ),
        (
            trade(r#","timestamp":1764072000"#),
            "detail.timestamp",
            "must be a string",
        ),
        (
            trade(&format!(r#","timestamp":"{}""#, at(3600))),
            "detail.timestamp",
            "ahead of the processing clock",
        ),
        (
            trade(r#","timestamp":"9999-12-31T23:59:59Z""#),
            "detail.timestamp",
            "ahead of the processing clock",
        ),
        (
            trade(&format!(r#","timestamp":"{}""#, at(-8 * 86_400))),
            "detail.timestamp",
            "old; at most 604800 s",
        ),
        // Quotes
        (
            quote(r#"{"exchange":"NYSE","symbol":"IBM","ask":1}"#),
            "detail.bid",
            "is required",
        ),
        (
            quote(r#"{"exchange":"NYSE","symbol":"IBM","bid":1}"#),
            "detail.ask",
            "is required",
        ),
        (
            quote(r#"{"exchange":"NYSE","symbol":"IBM","bid":2,"ask":1}"#),
            "detail.bid",
            "must not exceed ask 1",
        ),
        (
            quote(r#"{"exchange":"NYSE","symbol":"IBM","bid":0,"ask":1}"#),
            "detail.bid",
            "greater than 0",
        ),
        (
            quote(r#"{"exchange":"NYSE","symbol":"IBM","bid":1,"ask":2,"bid_size":0}"#),
            "detail.bid_size",
            "positive whole number",
        ),
        (
            quote(r#"{"exchange":"NYSE","symbol":"IBM","bid":1,"ask":2,"ask_size":"1.5"}"#),
            "detail.ask_size",
            "positive whole number",
        ),
        (
            quote(r#"{"exchange":"NYSE","symbol":"IBM","bid":1,"ask":2,"price":1.5}"#),
            "detail.price",
            "belongs to Price Update",
        ),
        (
            update(r#"{"exchange":"NYSE","symbol":"IBM"}"#),
            "detail.price",
            "is required",
        ),
        (
            update(r#"{"exchange":"NYSE","symbol":"IBM","price":1,"bid":3,"ask":2}"#),
            "detail.bid",
            "must not exceed ask",
        ),
    ];
    assert!(cases.len() >= 40, "{} cases", cases.len());

    for (raw, field, rule) in &cases {
        let rejection = match decode(raw, &rules(), now()) {
            Ok(event) => panic!("accepted {raw}: {event:?}"),
            Err(rejection) => rejection,
        };
        assert!(
            rejection
                .violations
                .iter()
                .any(|v| v.field == *field && v.rule.contains(rule)),
            "for {}\nexpected {field}: ...{rule}...\ngot {}",
            &raw[..raw.len().min(300)],
            rejection.reason()
        );
    }
}

#[test]
fn all_violations_of_one_event_are_reported_together() {
    let raw = event(
        "Trade Execution",
        r#"{"exchange":"nasdaq","symbol":"","price":-1,"volume":0,"side":"hold"}"#,
    );
    let rejection = decode(&raw, &rules(), now()).unwrap_err();
    let fields: Vec<&str> = rejection
        .violations
        .iter()
        .map(|v| v.field.as_str())
        .collect();
    for field in [
        "detail.exchange",
        "detail.symbol",
        "detail.price",
        "detail.volume",
        "detail.side",
    ] {
        assert!(fields.contains(&field), "{field} missing from {fields:?}");
    }
    assert_eq!(rejection.envelope_id.as_deref(), Some("evt-1"));
    assert_eq!(rejection.kind, Some(Kind::Trade));
}

#[test]
fn hostile_bytes_never_panic() {
    let long_nesting = format!("{}1{}", "[".repeat(10_000), "]".repeat(10_000));
    for raw in [
        String::new(),
        "\u{0}".to_string(),
        "{".to_string(),
        long_nesting.clone(),
        event("Trade Execution", &long_nesting),
        event("Trade Execution", r#"{"exchange":"\ud800"}"#),
        "{\"detail\":".repeat(1000),
    ] {
        assert!(decode(&raw, &rules(), now()).is_err());
    }
}

proptest! {
    /// Any price and volume the contract accepts is carried with its exact digits.
    #[test]
    fn accepted_prices_are_exact(int in 0u64..10_000_000_000, frac in "[0-9]{0,10}", volume in 1u64..u64::MAX, quoted in any::<bool>()) {
        let text = if frac.is_empty() { int.to_string() } else { format!("{int}.{frac}") };
        let expected = Decimal::from_str_exact(&text).unwrap().normalize();
        prop_assume!(expected > Decimal::ZERO);
        let price = if quoted { format!("\"{text}\"") } else { text.clone() };
        let detail = format!(r#"{{"exchange":"X","symbol":"Y","price":{price},"volume":{volume}}}"#);
        let e = decode(&event("Trade Execution", &detail), &rules(), now()).unwrap();
        let Body::Trade(t) = e.body else { panic!("not a trade") };
        prop_assert_eq!(t.price, expected);
        prop_assert_eq!(t.price.to_string(), expected.to_string());
        prop_assert_eq!(t.volume, volume);
    }

    /// Arbitrary text never panics the decoder.
    #[test]
    fn arbitrary_input_never_panics(raw in ".{0,400}") {
        let _ = decode(&raw, &rules(), now());
    }
}

proptest! {
    /// Any accepted trade or quote reaches its DynamoDB item with every decimal exact: the
    /// stored `N` text is the sent value, normalized, for prices with up to 28 digits.
    #[test]
    fn accepted_events_round_trip_through_the_stored_item(
        price in (1u64..u64::MAX, 0u32..=8).prop_map(|(m, scale)| Decimal::new(m as i64 & i64::MAX, scale)),
        bid in (1i64..1_000_000_000_000, 0u32..=12).prop_map(|(m, scale)| Decimal::new(m, scale)),
        spread in (0i64..1_000_000, 0u32..=12).prop_map(|(m, scale)| Decimal::new(m, scale)),
        volume in 1u64..u64::MAX,
        quoted in any::<bool>(),
    ) {
        prop_assume!(price > Decimal::ZERO);
        let number = |d: Decimal| if quoted { format!("\"{d}\"") } else { d.to_string() };
        let trade = format!(
            r#"{{"exchange":"X","symbol":"Y","price":{},"volume":{volume},"trade_id":"t1"}}"#,
            number(price)
        );
        let e = decode(&event("Trade Execution", &trade), &rules(), now()).unwrap();
        let item = processor::item::record(&e, processor::item::dedupe_key(&e).as_deref(), now(), "r", 30);
        let stored = |key: &str| match item.get(key) {
            Some(aws_sdk_dynamodb::types::AttributeValue::N(text)) => text.clone(),
            other => panic!("{key}: {other:?}"),
        };
        prop_assert_eq!(stored("price"), price.normalize().to_string());
        prop_assert_eq!(Decimal::from_str_exact(&stored("price")).unwrap(), price);
        prop_assert_eq!(stored("volume"), volume.to_string());

        let ask = bid + spread;
        let quote = format!(
            r#"{{"exchange":"X","symbol":"Y","bid":{},"ask":{}}}"#,
            number(bid),
            number(ask)
        );
        let q = decode(&event("Market Quote", &quote), &rules(), now()).unwrap();
        let item = processor::item::record(&q, None, now(), "r", 30);
        let stored = |key: &str| match item.get(key) {
            Some(aws_sdk_dynamodb::types::AttributeValue::N(text)) => text.clone(),
            other => panic!("{key}: {other:?}"),
        };
        prop_assert_eq!(Decimal::from_str_exact(&stored("bid")).unwrap(), bid);
        prop_assert_eq!(Decimal::from_str_exact(&stored("ask")).unwrap(), ask);
    }
}

/// An envelope EventBridge replayed from an archive: the event as it was put, `time` ten days
/// back, and the `replay-name` EventBridge adds.
fn replayed(replay_name: &str, age_days: i64) -> String {
    format!(
        r#"{{"version":"0","id":"evt-r","detail-type":"Trade Execution","source":"market.data","account":"123456789012","time":"{}","region":"us-east-1","resources":[],"replay-name":{replay_name},"detail":{TRADE}}}"#,
        at(-age_days * 86_400)
    )
}

fn bus_rules() -> Rules {
    Rules {
        replay_max_age_seconds: Some(29 * 86_400),
        ..rules()
    }
}

#[test]
fn a_replayed_event_may_be_as_old_as_the_replay_age_allows() {
    let e = decode(&replayed(r#""fix-2026-11-24""#, 10), &bus_rules(), now()).unwrap();
    assert_eq!(e.replay_name.as_deref(), Some("fix-2026-11-24"));
    assert_eq!(e.envelope_id, "evt-r");
    // The same event without the field is refused for its age.
    let plain = replayed(r#""x""#, 10).replace(r#""replay-name":"x","#, "");
    let err = decode(&plain, &bus_rules(), now()).unwrap_err();
    assert!(
        err.reason().contains("s old; at most 604800 s"),
        "{}",
        err.reason()
    );
    // Past the replay age (the records' TTL less a day) it is refused too.
    let err = decode(&replayed(r#""late""#, 30), &bus_rules(), now()).unwrap_err();
    assert!(err.reason().starts_with("time: "), "{}", err.reason());
    assert_eq!(err.class(), "time");
}

#[test]
fn replay_name_is_refused_where_only_a_producer_could_have_set_it() {
    // The stream path's rules: the envelope is the producer's own bytes.
    let err = decode(&replayed(r#""fix""#, 0), &rules(), now()).unwrap_err();
    assert!(
        err.reason()
            .starts_with("replay-name: is set only by EventBridge"),
        "{}",
        err.reason()
    );
    assert_eq!(err.class(), "envelope");
    for bad in [
        r#""""#,
        r#""a b""#,
        "7",
        "null",
        &format!("\"{}\"", "r".repeat(65)),
    ] {
        let err = decode(&replayed(bad, 1), &bus_rules(), now()).unwrap_err();
        assert!(
            err.reason().starts_with("replay-name: must be 1 to 64 of"),
            "{bad}: {}",
            err.reason()
        );
    }
    // A detail field of that name is just an unknown field.
    let detail = r#"{"exchange":"NASDAQ","symbol":"AAPL","price":1,"volume":1,"replay-name":"x"}"#;
    let e = decode(&event("Trade Execution", detail), &rules(), now()).unwrap();
    assert_eq!(e.replay_name, None);
}

#[test]
fn each_rejection_has_a_reason_class() {
    for (detail_type, detail, class) in [
        (
            "Trade Execution",
            r#"{"exchange":"NASDAQ","symbol":"AAPL","price":-1,"volume":1}"#,
            "field",
        ),
        ("Nope", TRADE, "detail-type"),
        ("Trade Execution", "[1]", "malformed"),
    ] {
        let err = decode(&event(detail_type, detail), &rules(), now()).unwrap_err();
        assert_eq!(err.class(), class, "{}", err.reason());
        assert!(names::REJECT_CLASSES.contains(&err.class()));
    }
    let foreign = event("Trade Execution", TRADE).replace("market.data", "other.feed");
    assert_eq!(
        decode(&foreign, &rules(), now()).unwrap_err().class(),
        "source"
    );
    let no_id = event("Trade Execution", TRADE).replace(r#""id":"evt-1","#, "");
    assert_eq!(
        decode(&no_id, &rules(), now()).unwrap_err().class(),
        "envelope"
    );
}
