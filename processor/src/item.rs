//! DynamoDB items: the market-data record, its dedupe guard, and the audit entry.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use crate::event::{Body, MarketEvent, Rejection, format_timestamp};

pub type Item = HashMap<String, AttributeValue>;

/// The largest raw event copied into a REJECTED audit entry: EventBridge's own event limit, so
/// anything that came through a bus is kept whole, and the item stays under DynamoDB's 400 KB.
pub const MAX_RAW_AUDIT_BYTES: usize = 256 * 1024;

/// `event_type` of audit entries for events whose detail-type could not be classified.
pub const UNKNOWN_EVENT_TYPE: &str = "unknown";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Processed,
    Duplicate,
    Rejected,
    Failed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Processed => "PROCESSED",
            Status::Duplicate => "DUPLICATE",
            Status::Rejected => "REJECTED",
            Status::Failed => "FAILED",
        }
    }
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// The key that makes a re-published trade a duplicate although its envelope id is new:
/// same detail-type, trade id and content (every detail field as sent, numbers normalized).
/// Events without a trade id need no guard: their record key (envelope id + event time) is
/// already stable across redeliveries.
pub fn dedupe_key(event: &MarketEvent) -> Option<String> {
    let Body::Trade(trade) = &event.body else {
        return None;
    };
    let trade_id = trade.trade_id.as_deref()?;
    let extra = extra_json(event);
    Some(content_key(
        names::DEDUPE_KEY_PREFIX,
        &[
            event.detail_type.as_str(),
            event.exchange.as_str(),
            event.symbol.as_str(),
            trade_id,
            &trade.price.to_string(),
            &trade.volume.to_string(),
            trade.side.map_or("", |side| side.as_str()),
            event.currency.as_str(),
            event.detail_timestamp.as_deref().unwrap_or(""),
            &extra,
        ],
    ))
}

/// The guard key of a replayed event that has no trade guard: every replayed copy of one
/// archived event has the same source, detail-type, event time and detail, whatever envelope id
/// the replay gave it, so the copies of a replay (or of two overlapping replays) claim one
/// guard and store one record.
pub fn replay_key(event: &MarketEvent) -> String {
    let extra = extra_json(event);
    let numbers: Vec<String> = content_numbers(event)
        .into_iter()
        .map(|(name, value)| format!("{name}={}", value.unwrap_or_default()))
        .collect();
    let mut parts = vec![
        event.source.as_str(),
        event.detail_type.as_str(),
        event.exchange.as_str(),
        event.symbol.as_str(),
        event.currency.as_str(),
        event.detail_timestamp.as_deref().unwrap_or(""),
        &extra,
    ];
    let time = event.timestamp_key();
    parts.push(&time);
    parts.extend(numbers.iter().map(String::as_str));
    content_key(names::REPLAY_KEY_PREFIX, &parts)
}

/// The number and text fields of an event's body, by attribute name, absent ones as `None`.
fn content_numbers(event: &MarketEvent) -> Vec<(&'static str, Option<String>)> {
    let text = |v: Option<rust_decimal::Decimal>| v.map(|d| d.to_string());
    match &event.body {
        Body::Trade(trade) => vec![
            (names::PRICE, Some(trade.price.to_string())),
            (names::VOLUME, Some(trade.volume.to_string())),
            (names::TRADE_ID, trade.trade_id.clone()),
            (
                names::SIDE,
                trade.side.map(|side| side.as_str().to_string()),
            ),
        ],
        Body::Quote(quote) => vec![
            (names::BID, text(quote.bid)),
            (names::ASK, text(quote.ask)),
            (names::PRICE, text(quote.price)),
            (names::BID_SIZE, quote.bid_size.map(|n| n.to_string())),
            (names::ASK_SIZE, quote.ask_size.map(|n| n.to_string())),
        ],
    }
}

/// `prefix` and the hex SHA-256 of `parts`, each length-prefixed so that no two different
/// lists hash the same bytes.
fn content_key(prefix: &str, parts: &[&str]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part.as_bytes());
    }
    let digest = hasher.finalize();
    let mut key = String::with_capacity(prefix.len() + 64);
    key.push_str(prefix);
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for byte in digest {
        key.push(char::from(HEX[usize::from(byte >> 4)]));
        key.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    key
}

/// The attributes that make two records the same event, whatever ids they are stored under.
const CONTENT_ATTRIBUTES: [&str; 17] = [
    names::TIMESTAMP,
    names::EVENT_TYPE,
    names::DETAIL_TYPE,
    names::SOURCE,
    names::EXCHANGE,
    names::SYMBOL,
    names::CURRENCY,
    names::PRICE,
    names::VOLUME,
    names::TRADE_ID,
    names::SIDE,
    names::BID,
    names::ASK,
    names::BID_SIZE,
    names::ASK_SIZE,
    names::SOURCE_TIMESTAMP,
    names::EXTRA,
];

/// Whether a stored record holds the same event as `record` (built for a replayed copy):
/// equal on every content attribute, numbers compared as decimals, as DynamoDB may write them
/// back in another form.
pub fn same_content(stored: &Item, record: &Item) -> bool {
    CONTENT_ATTRIBUTES
        .iter()
        .all(|name| match (stored.get(*name), record.get(*name)) {
            (None, None) => true,
            (Some(AttributeValue::N(a)), Some(AttributeValue::N(b))) => {
                match (
                    a.parse::<rust_decimal::Decimal>(),
                    b.parse::<rust_decimal::Decimal>(),
                ) {
                    (Ok(a), Ok(b)) => a == b,
                    _ => a == b,
                }
            }
            (Some(a), Some(b)) => a == b,
            _ => false,
        })
}

/// The unknown detail fields as JSON text, the form both the dedupe hash and the record use.
fn extra_json(event: &MarketEvent) -> String {
    // Serializing a map of JSON values to a string cannot fail.
    serde_json::to_string(&event.extra).unwrap_or_default()
}

fn expires_at(event_time: DateTime<Utc>, ttl_days: u32) -> i64 {
    event_time.timestamp() + i64::from(ttl_days) * 86_400
}

/// Adds the partition keys of `indexes` (some or all of `schema`'s: [`names::Ingest`]) to an
/// item of `schema`'s table: for each index whose
/// plain attribute the item has, that value with the item's bucket ([`names::bucket_key`]).
/// The bucket derives from the item's table key, unique per item, so a hot exchange's items
/// spread over every bucket and a rewrite of the same item keeps its bucket. An item without
/// the attribute (a dedupe guard) stays out of that index.
pub fn add_index_keys(
    item: &mut Item,
    schema: &names::TableSchema,
    indexes: &[names::IndexSchema],
    buckets: u16,
) {
    let bucket = match item.get(schema.hash_key) {
        Some(AttributeValue::S(unique)) => names::bucket_of(unique, buckets),
        _ => return,
    };
    for index in indexes {
        let key = match item.get(index.bucketed) {
            Some(AttributeValue::S(value)) => names::bucket_key(value, bucket),
            _ => continue,
        };
        item.insert(index.hash_key.into(), s(key));
    }
}

/// The market-data record of a valid event.
pub fn record(
    event: &MarketEvent,
    dedupe_key: Option<&str>,
    received_at: DateTime<Utc>,
    request_id: &str,
    ttl_days: u32,
) -> Item {
    // Room for the index keys the store adds.
    let mut item = Item::with_capacity(23);
    item.insert(names::EVENT_ID.into(), s(&event.record_id));
    delivered_as(&mut item, event);
    item.insert(names::TIMESTAMP.into(), s(event.timestamp_key()));
    item.insert(names::EVENT_TYPE.into(), s(event.kind.as_str()));
    item.insert(names::DETAIL_TYPE.into(), s(&event.detail_type));
    item.insert(names::SOURCE.into(), s(&event.source));
    item.insert(names::EXCHANGE.into(), s(&event.exchange));
    item.insert(names::SYMBOL.into(), s(&event.symbol));
    item.insert(names::CURRENCY.into(), s(&event.currency));
    match &event.body {
        Body::Trade(trade) => {
            item.insert(names::PRICE.into(), n(trade.price));
            item.insert(names::VOLUME.into(), n(trade.volume));
            if let Some(id) = &trade.trade_id {
                item.insert(names::TRADE_ID.into(), s(id));
            }
            if let Some(side) = trade.side {
                item.insert(names::SIDE.into(), s(side.as_str()));
            }
        }
        Body::Quote(quote) => {
            for (name, value) in [
                (names::BID, quote.bid),
                (names::ASK, quote.ask),
                (names::PRICE, quote.price),
            ] {
                if let Some(value) = value {
                    item.insert(name.into(), n(value));
                }
            }
            for (name, value) in [
                (names::BID_SIZE, quote.bid_size),
                (names::ASK_SIZE, quote.ask_size),
            ] {
                if let Some(value) = value {
                    item.insert(name.into(), n(value));
                }
            }
        }
    }
    if let Some(ts) = &event.detail_timestamp {
        item.insert(names::SOURCE_TIMESTAMP.into(), s(ts));
    }
    if !event.extra.is_empty() {
        // Kept as JSON text: unknown fields can hold numbers DynamoDB's N type cannot represent.
        item.insert(names::EXTRA.into(), s(extra_json(event)));
    }
    if let Some(key) = dedupe_key {
        item.insert(names::DEDUPE_KEY.into(), s(key));
    }
    item.insert(names::RECEIVED_AT.into(), s(format_timestamp(received_at)));
    item.insert(names::REQUEST_ID.into(), s(request_id));
    item.insert(
        names::EXPIRES_AT.into(),
        n(expires_at(event.event_time, ttl_days)),
    );
    item
}

/// The guard item that claims a dedupe key; it expires with the record it protects.
pub fn guard(event: &MarketEvent, dedupe_key: &str, ttl_days: u32) -> Item {
    HashMap::from([
        (names::EVENT_ID.into(), s(dedupe_key)),
        (names::TIMESTAMP.into(), s(names::DEDUPE_SORT_KEY)),
        (names::GUARD_RECORD_EVENT_ID.into(), s(&event.record_id)),
        (
            names::GUARD_RECORD_TIMESTAMP.into(),
            s(event.timestamp_key()),
        ),
        (
            names::EXPIRES_AT.into(),
            n(expires_at(event.event_time, ttl_days)),
        ),
    ])
}

/// A latest-price item ([`names::LATEST_SCHEMA`]) and the order it is kept by.
#[derive(Debug, Clone, PartialEq)]
pub struct Latest {
    /// The sort key: `trade#NASDAQ` or `quote#NASDAQ`.
    pub view: String,
    /// The event's time key and record id: a write lands only over an item whose pair is
    /// smaller, so the newest event wins whatever order copies arrive in, and a tie in time is
    /// settled the same way everywhere.
    pub order: (String, String),
    pub item: Item,
}

/// The latest view `event` (as stored: its record id) updates: a trade the exchange's last
/// trade, a quote with a bid or an ask its quote. A `Price Update` with neither updates none.
pub fn latest(event: &MarketEvent, ttl_days: u32) -> Option<Latest> {
    let view = match &event.body {
        Body::Trade(_) => names::VIEW_TRADE,
        Body::Quote(quote) if quote.bid.is_some() || quote.ask.is_some() => names::VIEW_QUOTE,
        Body::Quote(_) => return None,
    };
    let view = names::latest_view(view, &event.exchange);
    let time = event.timestamp_key();
    let mut item = Item::with_capacity(16);
    item.insert(names::SYMBOL.into(), s(&event.symbol));
    item.insert(names::VIEW.into(), s(&view));
    item.insert(names::EXCHANGE.into(), s(&event.exchange));
    item.insert(names::EVENT_TYPE.into(), s(event.kind.as_str()));
    item.insert(names::DETAIL_TYPE.into(), s(&event.detail_type));
    item.insert(names::LATEST_EVENT_TIME.into(), s(&time));
    item.insert(names::EVENT_ID.into(), s(&event.record_id));
    item.insert(names::CURRENCY.into(), s(&event.currency));
    for (name, value) in content_numbers(event) {
        let Some(value) = value else { continue };
        let attribute = if [names::TRADE_ID, names::SIDE].contains(&name) {
            s(value)
        } else {
            AttributeValue::N(value)
        };
        item.insert(name.into(), attribute);
    }
    item.insert(
        names::EXPIRES_AT.into(),
        n(expires_at(event.event_time, ttl_days)),
    );
    Some(Latest {
        view,
        order: (time, event.record_id.clone()),
        item,
    })
}

/// What every audit entry records, whatever the outcome.
pub struct AuditContext<'a> {
    pub request_id: &'a str,
    pub environment: &'a str,
    pub processing_ms: f64,
    /// The stack's audit retention: every entry expires this many days after it is written.
    pub retention_days: u32,
}

/// The PROCESSED entry of a stored record. Its key derives from the record (envelope id, event
/// time, `received_at`), so writing it again after a lost reply or a retried invocation
/// overwrites the same entry: one PROCESSED entry per record, however often it is written.
pub fn processed_audit(event: &MarketEvent, received_at: &str, ctx: &AuditContext) -> Item {
    let mut item = audit_base(
        processed_audit_id(&event.record_id, &event.timestamp_key(), received_at),
        received_at.to_string(),
        Status::Processed,
        "stored",
        ctx,
    );
    describe_event(&mut item, event);
    item
}

/// The `audit_id` of the PROCESSED entry of the record keyed (`event_id`, `timestamp`) and
/// stored at `received_at` (the entry's sort key): a name-based UUID (version 8) from the first
/// 16 bytes of SHA-256 over the three, newline-separated. A reader finds a record's entry from
/// the record alone, which is how a streamed entry, in no index, is found. Never change it.
pub fn processed_audit_id(event_id: &str, timestamp: &str, received_at: &str) -> String {
    let digest = Sha256::new()
        .chain_update(event_id.as_bytes())
        .chain_update(b"\n")
        .chain_update(timestamp.as_bytes())
        .chain_update(b"\n")
        .chain_update(received_at.as_bytes())
        .finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid_text(uuid::Uuid::new_v8(bytes))
}

/// A DUPLICATE or FAILED entry: one per delivery, so each gets a fresh id.
pub fn audit_for_event(
    event: &MarketEvent,
    status: Status,
    reason: &str,
    ctx: &AuditContext,
) -> Item {
    let mut item = fresh_audit(status, reason, ctx);
    describe_event(&mut item, event);
    item
}

/// The delivery id of a copy stored under another event's id (a redrive, or a copy that stood
/// in for a trade's first copy): without it the audit could not tell which delivery did what.
fn delivered_as(item: &mut Item, event: &MarketEvent) {
    if event.envelope_id != event.record_id {
        item.insert(names::DELIVERED_AS.into(), s(&event.envelope_id));
    }
    if let Some(replay) = &event.replay_name {
        item.insert(names::REPLAYED_BY.into(), s(replay));
    }
}

fn describe_event(item: &mut Item, event: &MarketEvent) {
    item.insert(names::EVENT_ID.into(), s(&event.record_id));
    delivered_as(item, event);
    item.insert(names::EVENT_TYPE.into(), s(event.kind.as_str()));
    item.insert(names::DETAIL_TYPE.into(), s(&event.detail_type));
    item.insert(names::SOURCE.into(), s(&event.source));
    item.insert(names::EXCHANGE.into(), s(&event.exchange));
    item.insert(names::SYMBOL.into(), s(&event.symbol));
    item.insert(names::EVENT_TIMESTAMP.into(), s(event.timestamp_key()));
}

/// The audit entry of a rejected event, carrying the raw event so it can be fixed and replayed.
pub fn audit_for_rejection(rejection: &Rejection, raw: &str, ctx: &AuditContext) -> Item {
    let mut item = fresh_audit(Status::Rejected, &rejection.reason(), ctx);
    if let Some(id) = &rejection.envelope_id {
        item.insert(names::EVENT_ID.into(), s(id));
    }
    item.insert(
        names::EVENT_TYPE.into(),
        s(rejection.kind.map_or(UNKNOWN_EVENT_TYPE, |k| k.as_str())),
    );
    if let Some(detail_type) = &rejection.detail_type {
        item.insert(names::DETAIL_TYPE.into(), s(detail_type));
    }
    if let Some(source) = &rejection.source {
        item.insert(names::SOURCE.into(), s(source));
    }
    item.insert(names::RAW_BYTES.into(), n(raw.len()));
    if raw.len() <= MAX_RAW_AUDIT_BYTES {
        item.insert(names::RAW_EVENT.into(), s(raw));
    } else {
        let mut end = MAX_RAW_AUDIT_BYTES;
        while !raw.is_char_boundary(end) {
            end -= 1;
        }
        item.insert(names::RAW_EVENT.into(), s(&raw[..end]));
        item.insert(names::RAW_TRUNCATED.into(), AttributeValue::Bool(true));
    }
    item
}

/// The hyphenated lower-case form `Uuid::to_string` gives, without the formatting machinery.
fn uuid_text(id: uuid::Uuid) -> String {
    let mut buffer = uuid::Uuid::encode_buffer();
    id.hyphenated().encode_lower(&mut buffer).to_string()
}

fn fresh_audit(status: Status, reason: &str, ctx: &AuditContext) -> Item {
    audit_base(
        uuid_text(uuid::Uuid::now_v7()),
        format_timestamp(Utc::now()),
        status,
        reason,
        ctx,
    )
}

fn audit_base(
    audit_id: String,
    timestamp: String,
    status: Status,
    reason: &str,
    ctx: &AuditContext,
) -> Item {
    let mut item = Item::with_capacity(17);
    item.insert(names::AUDIT_ID.into(), s(audit_id));
    item.insert(names::TIMESTAMP.into(), s(timestamp));
    item.insert(names::STATUS.into(), s(status.as_str()));
    item.insert(names::REASON.into(), s(reason));
    item.insert(names::REQUEST_ID.into(), s(ctx.request_id));
    item.insert(names::ENVIRONMENT.into(), s(ctx.environment));
    item.insert(
        names::PROCESSING_MS.into(),
        AttributeValue::N(format!("{:.3}", ctx.processing_ms)),
    );
    item.insert(
        names::EXPIRES_AT.into(),
        n(Utc::now().timestamp() + i64::from(ctx.retention_days) * 86_400),
    );
    item
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{self, Rules};

    fn trade() -> MarketEvent {
        let now = Utc::now();
        let raw = format!(
            r#"{{"id":"e-1","detail-type":"Trade Execution","source":"market.data","time":"{}","detail":{{"exchange":"NASDAQ","symbol":"AAPL","price":150.250,"volume":100,"trade_id":"T-1","side":"buy","zeta":[1,2.50],"alpha":{{"b":"x\u00e9"}}}}}}"#,
            format_timestamp(now)
        );
        let rules = Rules {
            accepted_sources: vec![names::DEFAULT_SOURCE.into()],
            max_future_skew_seconds: 300,
            max_event_age_seconds: 86_400,
            replay_max_age_seconds: None,
        };
        match event::decode(&raw, &rules, now) {
            Ok(event) => event,
            Err(rejection) => panic!("{}", rejection.reason()),
        }
    }

    /// The key this trade has always had: guards already stored must keep matching.
    const TRADE_DEDUPE_KEY: &str =
        "dedupe#bafd331f0d4f04cf7a5a4f50171169581e7413aa1764aac39113d2063e889e58";

    #[test]
    fn dedupe_key_and_extra_text_are_unchanged() {
        let event = trade();
        let key = dedupe_key(&event);
        assert!(key.is_some());
        assert_eq!(key.as_deref(), Some(TRADE_DEDUPE_KEY));
        let record = record(&event, key.as_deref(), Utc::now(), "r-1", 30);
        assert_eq!(
            record.get("extra"),
            Some(&AttributeValue::S(
                serde_json::Value::Object(event.extra.clone()).to_string()
            ))
        );
        assert_eq!(
            record.get("extra"),
            Some(&AttributeValue::S(
                r#"{"alpha":{"b":"xé"},"zeta":[1,2.50]}"#.into()
            ))
        );
    }

    #[test]
    fn index_keys_carry_the_plain_value_and_the_bucket_of_the_table_key() {
        let event = trade();
        let mut record = record(&event, None, Utc::now(), "r-1", 30);
        add_index_keys(
            &mut record,
            &names::MARKET_DATA_SCHEMA,
            names::MARKET_DATA_SCHEMA.indexes,
            16,
        );
        let bucket = names::bucket_of(&event.record_id, 16);
        assert_eq!(
            record.get(names::EXCHANGE_BUCKET),
            Some(&s(names::bucket_key("NASDAQ", bucket)))
        );
        assert_eq!(
            record.get(names::SYMBOL_BUCKET),
            Some(&s(names::bucket_key("AAPL", bucket)))
        );
        assert_eq!(record.get(names::EXCHANGE), Some(&s("NASDAQ")));

        let key = dedupe_key(&event).expect("a trade with an id");
        let mut guard = guard(&event, &key, 30);
        let before = guard.clone();
        add_index_keys(
            &mut guard,
            &names::MARKET_DATA_SCHEMA,
            names::MARKET_DATA_SCHEMA.indexes,
            16,
        );
        assert_eq!(guard, before, "guards stay out of the indexes");

        let ctx = AuditContext {
            request_id: "r-1",
            environment: "test",
            processing_ms: 1.5,
            retention_days: 30,
        };
        let mut audit = processed_audit(&event, "2026-01-01T00:00:00.000Z", &ctx);
        add_index_keys(
            &mut audit,
            &names::AUDIT_TRAIL_SCHEMA,
            names::AUDIT_TRAIL_SCHEMA.indexes,
            16,
        );
        let Some(AttributeValue::S(audit_id)) = audit.get(names::AUDIT_ID) else {
            panic!("no audit id: {audit:?}");
        };
        let bucket = names::bucket_of(audit_id, 16);
        assert_eq!(
            audit.get(names::EVENT_TYPE_BUCKET),
            Some(&s(names::bucket_key("trade", bucket)))
        );
    }

    #[test]
    fn processed_audit_id_is_unchanged() {
        let event = trade();
        let received_at = format_timestamp(Utc::now());
        let ctx = AuditContext {
            request_id: "r-1",
            environment: "test",
            processing_ms: 1.5,
            retention_days: 2557,
        };
        let audit = processed_audit(&event, &received_at, &ctx);
        let digest = Sha256::digest(
            format!(
                "{}\n{}\n{received_at}",
                event.record_id,
                event.timestamp_key()
            )
            .as_bytes(),
        );
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&digest[..16]);
        assert_eq!(
            audit.get(names::AUDIT_ID),
            Some(&AttributeValue::S(uuid::Uuid::new_v8(bytes).to_string()))
        );
        assert_eq!(
            audit.get("processing_ms"),
            Some(&AttributeValue::N("1.500".into()))
        );
        let fresh = audit_for_event(&event, Status::Duplicate, "again", &ctx);
        let Some(AttributeValue::S(id)) = fresh.get(names::AUDIT_ID) else {
            panic!("no audit id: {fresh:?}");
        };
        let parsed = uuid::Uuid::parse_str(id).expect("a UUID");
        assert_eq!(parsed.get_version_num(), 7);
        assert_eq!(&parsed.to_string(), id);
    }
}
