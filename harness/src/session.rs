//! A deterministic market session: trades and quotes for twenty instruments on six exchanges,
//! with re-published trades, corrections, malformed events and events no rule routes.

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rust_decimal::Decimal;

/// What the pipeline must do with an event; the scenario engine checks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Expect {
    Stored,
    /// A feed re-publishing an earlier trade: DUPLICATE, no second record.
    Duplicate,
    Rejected,
    /// No rule matches it: EventBridge drops it by design and nothing may be stored.
    Unrouted,
}

/// One PutEvents entry plus its expected fate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SampleEvent {
    pub source: String,
    pub detail_type: String,
    pub detail: String,
    pub expect: Expect,
    /// Copies of one trade share a group: whichever copy the pipeline sees first is stored and
    /// the others are duplicates, so the check is per group, not per copy.
    pub group: Option<u64>,
}

impl SampleEvent {
    /// An event from the accepted source that the pipeline must store.
    pub fn stored(detail_type: &str, detail: String) -> SampleEvent {
        SampleEvent {
            source: names::DEFAULT_SOURCE.into(),
            detail_type: detail_type.into(),
            detail,
            expect: Expect::Stored,
            group: None,
        }
    }

    /// The event as the bus hands it to the function, under envelope id `id` and `time`.
    pub fn envelope(&self, id: &str, time: &str) -> String {
        format!(
            r#"{{"version":"0","id":"{id}","detail-type":"{}","source":"{}","account":"123456789012","time":"{time}","region":"us-east-1","resources":[],"detail":{}}}"#,
            self.detail_type, self.source, self.detail
        )
    }
}

/// A UUID-shaped envelope id for `tag`, the same for the same tag: its first eight characters
/// (zero-padded), then a digest of the whole tag.
pub fn envelope_id(tag: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(tag.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    let suffix = u64::from_be_bytes(first) & 0xffff_ffff_ffff;
    format!("{tag:0>8.8}-5b1c-4e7a-9c3d-{suffix:012x}")
}

/// `count` events of the session that a rule routes to the function (the bus drops the others
/// before any handler could see them).
pub fn routed(count: usize, seed: u64, end: DateTime<Utc>) -> Vec<SampleEvent> {
    // About one event in a hundred is unrouted; generate a little more than needed.
    let mut generated = count + count / 20 + 10;
    loop {
        let events: Vec<SampleEvent> = session(generated, seed, end)
            .into_iter()
            .filter(|e| e.expect != Expect::Unrouted)
            .take(count)
            .collect();
        if events.len() == count {
            return events;
        }
        generated *= 2;
    }
}

/// The events as the bus hands them to the function, each under its own envelope id, all at
/// `time`.
pub fn envelopes(events: &[SampleEvent], time: DateTime<Utc>) -> Vec<String> {
    let time = processor::event::format_timestamp(time);
    events
        .iter()
        .enumerate()
        .map(|(n, event)| event.envelope(&envelope_id(&format!("{n:08x}")), &time))
        .collect()
}

struct Instrument {
    symbol: &'static str,
    exchange: &'static str,
    currency: &'static str,
    /// Opening price in minor-unit ticks.
    open_ticks: i64,
    /// Tick size as (mantissa, scale).
    tick: (i64, u32),
    lot: u64,
}

const INSTRUMENTS: [Instrument; 20] = [
    inst("AAPL", "NASDAQ", "USD", 18_950, (1, 2), 100),
    inst("MSFT", "NASDAQ", "USD", 41_207, (1, 2), 100),
    inst("NVDA", "NASDAQ", "USD", 13_512, (1, 2), 100),
    inst("AMZN", "NASDAQ", "USD", 20_188, (1, 2), 100),
    inst("GOOGL", "NASDAQ", "USD", 17_633, (1, 2), 100),
    inst("META", "NASDAQ", "USD", 58_421, (1, 2), 50),
    inst("IBM", "NYSE", "USD", 22_115, (1, 2), 100),
    inst("JPM", "NYSE", "USD", 24_067, (1, 2), 100),
    inst("GS", "NYSE", "USD", 59_830, (1, 2), 50),
    inst("XOM", "NYSE", "USD", 11_842, (1, 2), 100),
    inst("BRK.B", "NYSE", "USD", 47_519, (1, 2), 10),
    inst("VOD.L", "LSE", "GBP", 7_215, (1, 4), 1_000),
    inst("HSBA.L", "LSE", "GBP", 8_912, (1, 3), 500),
    inst("BP.L", "LSE", "GBP", 4_185, (1, 3), 500),
    inst("SAP", "XETRA", "EUR", 24_410, (1, 2), 50),
    inst("SIE", "XETRA", "EUR", 18_602, (1, 2), 50),
    inst("7203", "TSE", "JPY", 2_874, (1, 0), 100),
    inst("6758", "TSE", "JPY", 3_215, (1, 0), 100),
    inst("BTC-USD", "COINBASE", "USD", 9_712_345, (1, 2), 1),
    inst("ETH-USD", "COINBASE", "USD", 361_055, (1, 2), 1),
];

const fn inst(
    symbol: &'static str,
    exchange: &'static str,
    currency: &'static str,
    open_ticks: i64,
    tick: (i64, u32),
    lot: u64,
) -> Instrument {
    Instrument {
        symbol,
        exchange,
        currency,
        open_ticks,
        tick,
        lot,
    }
}

/// Six and a half hours of trading ending a minute before `end`, `count` events, from `seed`.
///
/// Event times lie in the past, inside the processor's accepted window, so the same session
/// replays correctly on any day.
pub fn session(count: usize, seed: u64, end: DateTime<Utc>) -> Vec<SampleEvent> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let start = end - Duration::minutes(391);
    let step_ms = (390 * 60 * 1000) / count.max(1) as i64;
    let mut ticks: Vec<i64> = INSTRUMENTS.iter().map(|i| i.open_ticks).collect();
    let mut trades: Vec<SampleEvent> = Vec::new();
    let mut trade_seq = 0u64;
    let mut events = Vec::with_capacity(count);

    for n in 0..count {
        let at = start
            + Duration::milliseconds(n as i64 * step_ms + rng.random_range(0..step_ms.max(1)));
        let timestamp = at.to_rfc3339_opts(SecondsFormat::Millis, true);
        let which = rng.random_range(0..INSTRUMENTS.len());
        let instrument = &INSTRUMENTS[which];
        ticks[which] = (ticks[which] + rng.random_range(-3..=3)).max(1);
        let price = price_of(instrument, ticks[which]);
        let roll = rng.random_range(0..1000);

        let event = if roll < 20 {
            malformed(n, instrument, &timestamp)
        } else if roll < 30 {
            unrouted(n, instrument, price, &timestamp)
        } else if roll < 60 && !trades.is_empty() {
            let earlier = &trades[rng.random_range(0..trades.len())];
            SampleEvent {
                expect: Expect::Duplicate,
                ..earlier.clone()
            }
        } else if roll < 90 && !trades.is_empty() {
            let earlier = trades[rng.random_range(0..trades.len())].clone();
            correction(&earlier, n, &mut rng)
        } else if roll < 450 {
            trade_seq += 1;
            let side = if rng.random_bool(0.5) { "buy" } else { "sell" };
            let volume = instrument.lot * rng.random_range(1..=20);
            let price_json = number(&mut rng, price);
            let detail = format!(
                r#"{{"exchange":"{}","symbol":"{}","price":{price_json},"volume":{volume},"trade_id":"{}-{trade_seq:08}","side":"{side}","currency":"{}","timestamp":"{timestamp}"}}"#,
                instrument.exchange, instrument.symbol, instrument.exchange, instrument.currency
            );
            let trade = SampleEvent {
                group: Some(trade_seq),
                ..stored(names::TRADE_EXECUTION, detail)
            };
            trades.push(trade.clone());
            trade
        } else if roll < 900 {
            let tick = Decimal::new(instrument.tick.0, instrument.tick.1);
            let half_spread = tick * Decimal::from(rng.random_range(1..=3));
            let bid = (price - half_spread).max(tick);
            let ask = price + half_spread;
            let detail = format!(
                r#"{{"exchange":"{}","symbol":"{}","bid":{},"ask":{},"bid_size":{},"ask_size":{},"currency":"{}","timestamp":"{timestamp}"}}"#,
                instrument.exchange,
                instrument.symbol,
                number(&mut rng, bid),
                number(&mut rng, ask),
                instrument.lot * rng.random_range(1..=50),
                instrument.lot * rng.random_range(1..=50),
                instrument.currency
            );
            stored(names::MARKET_QUOTE, detail)
        } else {
            let detail = format!(
                r#"{{"exchange":"{}","symbol":"{}","price":{},"currency":"{}","timestamp":"{timestamp}"}}"#,
                instrument.exchange,
                instrument.symbol,
                number(&mut rng, price),
                instrument.currency
            );
            stored(names::PRICE_UPDATE, detail)
        };
        events.push(event);
    }
    events
}

fn price_of(instrument: &Instrument, ticks: i64) -> Decimal {
    Decimal::new(ticks * instrument.tick.0, instrument.tick.1)
}

fn stored(detail_type: &str, detail: String) -> SampleEvent {
    SampleEvent {
        source: names::DEFAULT_SOURCE.to_string(),
        detail_type: detail_type.to_string(),
        detail,
        expect: Expect::Stored,
        group: None,
    }
}

/// A price as a JSON number or a numeric string: feeds send both.
fn number(rng: &mut ChaCha8Rng, value: Decimal) -> String {
    if rng.random_bool(0.5) {
        value.to_string()
    } else {
        format!("\"{value}\"")
    }
}

/// A `Trade Update` amending the price of an earlier trade: a new record, not a duplicate.
fn correction(trade: &SampleEvent, n: usize, rng: &mut ChaCha8Rng) -> SampleEvent {
    let detail: serde_json::Value = serde_json::from_str(&trade.detail).unwrap_or_default();
    let mut detail = match detail {
        serde_json::Value::Object(map) => map,
        _ => serde_json::Map::new(),
    };
    let bump = Decimal::new(rng.random_range(1..=9), 2);
    let old = detail
        .get("price")
        .and_then(|p| match p {
            serde_json::Value::String(s) => s.parse::<Decimal>().ok(),
            other => other.to_string().parse::<Decimal>().ok(),
        })
        .unwrap_or(Decimal::ONE);
    detail.insert(
        "price".into(),
        serde_json::Value::String((old + bump).to_string()),
    );
    detail.insert(
        "correction_reason".into(),
        serde_json::Value::String("price amended".into()),
    );
    // Two amendments of one trade may land on the same price; the number keeps them distinct.
    detail.insert("correction_id".into(), serde_json::Value::from(n));
    stored(
        names::TRADE_UPDATE,
        serde_json::Value::Object(detail).to_string(),
    )
}

fn malformed(n: usize, instrument: &Instrument, timestamp: &str) -> SampleEvent {
    let (s, x) = (instrument.symbol, instrument.exchange);
    let (detail_type, detail) = match n % 7 {
        0 => (
            names::TRADE_EXECUTION,
            format!(
                r#"{{"exchange":"{x}","symbol":"{s}","price":"-1.00","volume":100,"timestamp":"{timestamp}"}}"#
            ),
        ),
        1 => (
            names::MARKET_QUOTE,
            format!(
                r#"{{"exchange":"{x}","symbol":"{s}","bid":"101.5","ask":"101.4","timestamp":"{timestamp}"}}"#
            ),
        ),
        2 => (
            names::TRADE_EXECUTION,
            format!(
                r#"{{"exchange":"{x}","price":"10.5","volume":100,"timestamp":"{timestamp}"}}"#
            ),
        ),
        3 => (
            names::TRADE_EXECUTION,
            format!(
                r#"{{"exchange":"{x}","symbol":"{s}","price":"10.5","volume":100,"timestamp":"yesterday"}}"#
            ),
        ),
        4 => (
            names::TRADE_UPDATE,
            format!(
                r#"{{"exchange":"{}","symbol":"{s}","price":"10.5","volume":100,"timestamp":"{timestamp}"}}"#,
                x.to_lowercase()
            ),
        ),
        5 => (
            names::PRICE_UPDATE,
            format!(
                r#"{{"exchange":"{x}","symbol":"{s}","price":"NaN","timestamp":"{timestamp}"}}"#
            ),
        ),
        _ => (
            names::TRADE_EXECUTION,
            format!(
                r#"{{"exchange":"{x}","symbol":"{s}","price":"10.5","volume":1.5,"timestamp":"{timestamp}"}}"#
            ),
        ),
    };
    SampleEvent {
        source: names::DEFAULT_SOURCE.to_string(),
        detail_type: detail_type.to_string(),
        detail,
        expect: Expect::Rejected,
        group: None,
    }
}

fn unrouted(n: usize, instrument: &Instrument, price: Decimal, timestamp: &str) -> SampleEvent {
    let detail = format!(
        r#"{{"exchange":"{}","symbol":"{}","price":"{price}","volume":1,"timestamp":"{timestamp}"}}"#,
        instrument.exchange, instrument.symbol
    );
    // One kind a rule ignores for its detail-type, the other for its source.
    let (source, detail_type) = if n.is_multiple_of(2) {
        (names::DEFAULT_SOURCE, "Trade Cancel")
    } else {
        ("other.feed", names::TRADE_EXECUTION)
    };
    SampleEvent {
        source: source.to_string(),
        detail_type: detail_type.to_string(),
        detail,
        expect: Expect::Unrouted,
        group: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn end() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-25T21:00:00Z")
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default()
    }

    #[test]
    fn the_session_is_deterministic_and_mixed() {
        let a = session(10_000, 7, end());
        assert_eq!(a, session(10_000, 7, end()));
        assert_ne!(a, session(10_000, 8, end()));
        let mut counts: BTreeMap<Expect, usize> = BTreeMap::new();
        for e in &a {
            *counts.entry(e.expect).or_default() += 1;
        }
        assert!(counts[&Expect::Stored] > 9_000, "{counts:?}");
        assert!(counts[&Expect::Duplicate] > 100, "{counts:?}");
        assert!(counts[&Expect::Rejected] > 100, "{counts:?}");
        assert!(counts[&Expect::Unrouted] > 50, "{counts:?}");
        let symbols: std::collections::BTreeSet<&str> = a
            .iter()
            .filter_map(|e| e.detail.split("\"symbol\":\"").nth(1))
            .filter_map(|rest| rest.split('"').next())
            .collect();
        assert_eq!(symbols.len(), 20);
    }

    #[test]
    fn every_stored_event_passes_the_processor_contract() {
        let rules = processor::event::Rules {
            accepted_sources: vec![names::DEFAULT_SOURCE.into()],
            max_future_skew_seconds: 300,
            max_event_age_seconds: 7 * 86_400,
            replay_max_age_seconds: None,
        };
        for (i, e) in session(2_000, 1, end()).iter().enumerate() {
            let raw = format!(
                r#"{{"id":"e{i}","detail-type":"{}","source":"{}","time":"2026-11-25T20:59:00Z","detail":{}}}"#,
                e.detail_type, e.source, e.detail
            );
            let decoded = processor::event::decode(&raw, &rules, end());
            match e.expect {
                Expect::Stored | Expect::Duplicate => {
                    assert!(decoded.is_ok(), "{raw}: {:?}", decoded.err())
                }
                Expect::Rejected => assert!(decoded.is_err(), "{raw}"),
                Expect::Unrouted => {}
            }
        }
    }
}
