//! The event contract: what a valid trade or quote is, and why an invalid one is rejected.
//! `docs/events.md` is the prose form of this module.

use std::borrow::Cow;

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use chrono::{DateTime, SecondsFormat, Utc};
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::number::{self, NumberError};

/// Largest accepted `detail`, in bytes of JSON text. Quotes and trades are a few hundred bytes;
/// the bound keeps a stored item and a rejected event's audit copy far below DynamoDB's 400 KB.
pub const MAX_DETAIL_BYTES: usize = 32 * 1024;
pub const MAX_SYMBOL_LEN: usize = 32;
pub const MAX_EXCHANGE_LEN: usize = names::MAX_EXCHANGE_LEN;
pub const MAX_TRADE_ID_LEN: usize = 64;
/// Envelope strings are bounded in bytes of UTF-8, the unit DynamoDB and CloudWatch Logs limit:
/// an `id` of 43 "€" is 43 characters but 129 bytes, and is refused.
pub const MAX_ENVELOPE_ID_LEN: usize = 128;
/// EventBridge's own limit on `detail-type` and `source` is far below this; it holds for events
/// that reach the function by direct invocation too.
pub const MAX_ENVELOPE_TEXT_LEN: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Trade,
    Quote,
}

impl Kind {
    /// The `event_type` attribute: the partition of `EventTypeIndex`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Trade => "trade",
            Kind::Quote => "quote",
        }
    }

    pub fn of_detail_type(detail_type: &str) -> Option<Kind> {
        if names::TRADE_DETAIL_TYPES.contains(&detail_type) {
            Some(Kind::Trade)
        } else if names::QUOTE_DETAIL_TYPES.contains(&detail_type) {
            Some(Kind::Quote)
        } else {
            None
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Buy,
    Sell,
}

impl Side {
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Buy => "buy",
            Side::Sell => "sell",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trade {
    pub trade_id: Option<String>,
    pub price: Decimal,
    pub volume: u64,
    pub side: Option<Side>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quote {
    pub bid: Option<Decimal>,
    pub ask: Option<Decimal>,
    pub bid_size: Option<u64>,
    pub ask_size: Option<u64>,
    /// The last price; required for `Price Update`, absent otherwise.
    pub price: Option<Decimal>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    Trade(Trade),
    Quote(Quote),
}

/// A validated event, ready to be stored.
#[derive(Debug, Clone, PartialEq)]
pub struct MarketEvent {
    /// The id this delivery arrived under.
    pub envelope_id: String,
    /// The id the event is stored and deduplicated under: the envelope id, or for a redriven
    /// copy the id of the event it copies (its `resources` marker, see
    /// [`names::REDRIVE_OF_PREFIX`]).
    pub record_id: String,
    pub source: String,
    pub detail_type: String,
    pub kind: Kind,
    /// `detail.timestamp` if given, else the envelope time; truncated to milliseconds.
    pub event_time: DateTime<Utc>,
    /// `detail.timestamp` exactly as sent, when sent.
    pub detail_timestamp: Option<String>,
    pub exchange: String,
    pub symbol: String,
    pub currency: String,
    pub body: Body,
    /// Detail fields this contract does not know, kept verbatim.
    pub extra: Map<String, Value>,
    /// The replay that delivered this copy (the envelope's `replay-name`, which only
    /// EventBridge sets), when it came from an archive.
    pub replay_name: Option<String>,
}

impl MarketEvent {
    /// The sort key value: RFC 3339 UTC with milliseconds, so keys sort in time order.
    pub fn timestamp_key(&self) -> String {
        format_timestamp(self.event_time)
    }
}

pub fn format_timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// One broken rule: the field (a path such as `detail.price`) and what it must be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub field: String,
    pub rule: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.rule)
    }
}

/// Why an event was not accepted, with whatever of the envelope could be read for the audit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub envelope_id: Option<String>,
    pub detail_type: Option<String>,
    pub source: Option<String>,
    pub kind: Option<Kind>,
    pub violations: Vec<Violation>,
}

impl Rejection {
    /// What the first broken rule is about: one of [`names::REJECT_CLASSES`], for the metric
    /// of rejections by reason.
    pub fn class(&self) -> &'static str {
        let [envelope, source, detail_type, time, field, malformed] = names::REJECT_CLASSES;
        match self.violations.first().map(|v| v.field.as_str()) {
            Some("source") => source,
            Some("detail-type") => detail_type,
            Some("time" | "detail.timestamp") => time,
            Some("detail") => malformed,
            Some(f) if f.starts_with("detail.") => field,
            _ => envelope,
        }
    }

    /// All violations in one line, for the audit `reason`.
    pub fn reason(&self) -> String {
        self.violations
            .iter()
            .map(Violation::to_string)
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// The deployment-specific rules that decoding needs.
#[derive(Debug, Clone)]
pub struct Rules {
    pub accepted_sources: Vec<String>,
    pub max_future_skew_seconds: u32,
    pub max_event_age_seconds: u32,
    /// How old a replayed event (one with `replay-name`) may be; `None` refuses the field, as
    /// the stream path does: a Kinesis record's envelope is written by the producer, who could
    /// otherwise claim to be a replay and escape the age rule.
    pub replay_max_age_seconds: Option<u32>,
}

/// EventBridge's own rule for replay names (StartReplay's `ReplayName`): 1 to 64 of these.
const MAX_REPLAY_NAME_LEN: usize = 64;

fn is_replay_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')
}

/// Decodes and validates one EventBridge event given as raw JSON text. `now` is the processing
/// clock used for the time window.
pub fn decode(raw: &str, rules: &Rules, now: DateTime<Utc>) -> Result<MarketEvent, Rejection> {
    let envelope: EventBridgeEvent<Box<RawValue>> = match serde_json::from_str(raw) {
        Ok(envelope) => envelope,
        Err(err) => return Err(envelope_rejection(raw, &err)),
    };
    let mut v = Validator::default();
    let kind = Kind::of_detail_type(&envelope.detail_type);
    // Built only when the event is rejected: a valid event moves these strings into its
    // `MarketEvent` instead of copying them.
    let reject = |envelope: EventBridgeEvent<Box<RawValue>>, violations| Rejection {
        envelope_id: envelope.id.filter(|id| id.len() <= MAX_ENVELOPE_ID_LEN),
        detail_type: Some(envelope.detail_type).filter(|t| t.len() <= MAX_ENVELOPE_TEXT_LEN),
        source: Some(envelope.source).filter(|t| t.len() <= MAX_ENVELOPE_TEXT_LEN),
        kind,
        violations,
    };

    match envelope.id.as_deref() {
        None => v.fail("id", "is required"),
        Some(id) if id.is_empty() || id.len() > MAX_ENVELOPE_ID_LEN => v.fail(
            "id",
            format!(
                "must be 1 to {MAX_ENVELOPE_ID_LEN} bytes of UTF-8, found {} bytes",
                id.len()
            ),
        ),
        Some(_) => {}
    }
    for (field, text) in [
        ("source", &envelope.source),
        ("detail-type", &envelope.detail_type),
    ] {
        if text.len() > MAX_ENVELOPE_TEXT_LEN {
            v.fail(
                field,
                format!(
                    "is {} bytes; at most {MAX_ENVELOPE_TEXT_LEN} are accepted",
                    text.len()
                ),
            );
        }
    }
    let record_id = redrive_of(envelope.resources.as_deref(), &mut v);
    let replay_name = replay_name(raw, rules, &mut v);
    let rules_for_time = match (&replay_name, rules.replay_max_age_seconds) {
        (Some(_), Some(max_age)) => Cow::Owned(Rules {
            max_event_age_seconds: max_age,
            ..rules.clone()
        }),
        _ => Cow::Borrowed(rules),
    };
    if envelope.source.len() <= MAX_ENVELOPE_TEXT_LEN
        && !rules.accepted_sources.contains(&envelope.source)
    {
        v.fail(
            "source",
            format!(
                "{:?} is not an accepted source; accepted: {}",
                truncate(&envelope.source),
                rules.accepted_sources.join(", ")
            ),
        );
    }
    if kind.is_none() && envelope.detail_type.len() <= MAX_ENVELOPE_TEXT_LEN {
        v.fail(
            "detail-type",
            format!(
                "{:?} is not a known detail-type; known: {}, {}",
                truncate(&envelope.detail_type),
                names::TRADE_DETAIL_TYPES.join(", "),
                names::QUOTE_DETAIL_TYPES.join(", ")
            ),
        );
    }

    let detail_text = envelope.detail.get();
    if detail_text.len() > MAX_DETAIL_BYTES {
        v.fail(
            "detail",
            format!(
                "is {} bytes; at most {MAX_DETAIL_BYTES} are accepted",
                detail_text.len()
            ),
        );
        return Err(reject(envelope, v.violations));
    }
    let mut detail = match serde_json::from_str::<UniqueKeyObject>(detail_text) {
        Ok(UniqueKeyObject(map)) => map,
        Err(err) => {
            v.fail("detail", detail_error(detail_text, &err));
            return Err(reject(envelope, v.violations));
        }
    };

    let exchange = v.code(
        &mut detail,
        "exchange",
        MAX_EXCHANGE_LEN,
        names::is_exchange_char,
        "A-Z, 0-9, '.', '-', '_'",
    );
    let symbol = v.code(
        &mut detail,
        "symbol",
        MAX_SYMBOL_LEN,
        is_symbol_char,
        "A-Z, 0-9, '.', '-', '_', '/', ':'",
    );
    let currency = v.currency(&mut detail);
    let detail_timestamp = v.string(&mut detail, "timestamp", false);
    let event_time = v.event_time(
        detail_timestamp.as_deref(),
        envelope.time,
        &rules_for_time,
        now,
    );

    let body = match kind {
        Some(Kind::Trade) => v.trade(&mut detail).map(Body::Trade),
        Some(Kind::Quote) => v
            .quote(&mut detail, envelope.detail_type == names::PRICE_UPDATE)
            .map(Body::Quote),
        None => None,
    };

    // The top level refused repeated keys already; only nested values (unknown fields, as the
    // known ones are scalars) need the second walk, so the common event pays nothing for it.
    if detail
        .values()
        .any(|value| value.is_object() || value.is_array())
        && let Err(err) = serde_json::from_str::<NoRepeatedKeys>(detail_text)
    {
        v.fail("detail", err.to_string());
    }

    match (kind, exchange, symbol, currency, event_time, body) {
        (
            Some(kind),
            Some(exchange),
            Some(symbol),
            Some(currency),
            Some(event_time),
            Some(body),
        ) if v.violations.is_empty() => {
            // Checked above: without an id there is a violation.
            let envelope_id = envelope.id.unwrap_or_default();
            Ok(MarketEvent {
                record_id: record_id.unwrap_or_else(|| envelope_id.clone()),
                envelope_id,
                source: envelope.source,
                detail_type: envelope.detail_type,
                kind,
                event_time,
                detail_timestamp,
                exchange,
                symbol,
                currency,
                body,
                extra: detail,
                replay_name,
            })
        }
        _ => Err(reject(envelope, v.violations)),
    }
}

/// The envelope's `replay-name`, if any, read in a second pass only when the text mentions it:
/// the typed envelope has no such field, and the common event must not pay for one.
fn replay_name(raw: &str, rules: &Rules, v: &mut Validator) -> Option<String> {
    if !raw.contains(names::REPLAY_NAME) {
        return None;
    }
    #[derive(Deserialize)]
    struct ReplayField {
        // `null` is present, and refused: EventBridge writes a name.
        #[serde(rename = "replay-name", default, deserialize_with = "present")]
        replay_name: Option<Value>,
    }
    fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
        Value::deserialize(d).map(Some)
    }
    // The envelope decoded already, so this reads; a failure leaves the field absent.
    let value = serde_json::from_str::<ReplayField>(raw).ok()?.replay_name?;
    if rules.replay_max_age_seconds.is_none() {
        v.fail(
            names::REPLAY_NAME,
            "is set only by EventBridge on events it replays from an archive; a stream record \
             cannot carry it",
        );
        return None;
    }
    match value {
        Value::String(name)
            if !name.is_empty()
                && name.len() <= MAX_REPLAY_NAME_LEN
                && name.chars().all(is_replay_name_char) =>
        {
            Some(name)
        }
        other => {
            v.fail(
                names::REPLAY_NAME,
                format!(
                    "must be 1 to {MAX_REPLAY_NAME_LEN} of A-Z a-z 0-9 . - _ (a replay name), \
                     found {}",
                    describe(&other)
                ),
            );
            None
        }
    }
}

/// The original id a redriven copy names in its `resources`, if it is one. More than one marker,
/// or one with an unusable id, is refused: the copy's identity would be a guess.
fn redrive_of(resources: Option<&[String]>, v: &mut Validator) -> Option<String> {
    let mut markers = resources
        .unwrap_or_default()
        .iter()
        .filter_map(|r| r.strip_prefix(names::REDRIVE_OF_PREFIX));
    let first = markers.next()?;
    if markers.next().is_some() {
        v.fail(
            "resources",
            format!(
                "names more than one original event ({}...); a redriven copy has one",
                names::REDRIVE_OF_PREFIX
            ),
        );
        return None;
    }
    if first.is_empty() || first.len() > MAX_ENVELOPE_ID_LEN {
        v.fail(
            "resources",
            format!(
                "{}<id> must name an id of 1 to {MAX_ENVELOPE_ID_LEN} bytes, found {} bytes",
                names::REDRIVE_OF_PREFIX,
                first.len()
            ),
        );
        return None;
    }
    Some(first.to_string())
}

/// Names the envelope field that made the typed decode fail; serde's message alone does not.
fn envelope_rejection(raw: &str, err: &serde_json::Error) -> Rejection {
    let mut rejection = Rejection {
        envelope_id: None,
        detail_type: None,
        source: None,
        kind: None,
        violations: Vec::new(),
    };
    let object = match serde_json::from_str::<Value>(raw) {
        Ok(Value::Object(object)) => object,
        Ok(other) => {
            rejection.violations.push(Violation {
                field: "event".into(),
                rule: format!(
                    "must be a JSON object (an EventBridge event), found {}",
                    number::json_type(&other)
                ),
            });
            return rejection;
        }
        Err(_) => {
            rejection.violations.push(Violation {
                field: "event".into(),
                rule: format!("is not valid JSON: {err}"),
            });
            return rejection;
        }
    };
    // Oversized strings stay out of the audit entry's attributes; its raw copy still has them.
    let text = |key: &str, max: usize| {
        object
            .get(key)
            .and_then(Value::as_str)
            .filter(|text| text.len() <= max)
            .map(String::from)
    };
    rejection.envelope_id = text("id", MAX_ENVELOPE_ID_LEN);
    rejection.detail_type = text("detail-type", MAX_ENVELOPE_TEXT_LEN);
    rejection.source = text("source", MAX_ENVELOPE_TEXT_LEN);
    rejection.kind = rejection
        .detail_type
        .as_deref()
        .and_then(Kind::of_detail_type);

    let mut v = Validator::default();
    for (key, required) in [
        ("id", false),
        ("detail-type", true),
        ("source", true),
        ("version", false),
        ("account", false),
        ("region", false),
    ] {
        match object.get(key) {
            None if required => v.fail(key, "is required"),
            None | Some(Value::String(_)) => {}
            Some(Value::Null) if !required => {}
            Some(other) => v.fail(
                key,
                format!("must be a string, found {}", number::json_type(other)),
            ),
        }
    }
    match object.get("time") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) if DateTime::parse_from_rfc3339(s).is_ok() => {}
        Some(other) => v.fail(
            "time",
            format!(
                "must be an RFC 3339 date-time such as 2026-01-02T15:04:05Z, found {}",
                describe(other)
            ),
        ),
    }
    match object.get("resources") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) if items.iter().all(Value::is_string) => {}
        Some(other) => v.fail(
            "resources",
            format!(
                "must be an array of strings, found {}",
                number::json_type(other)
            ),
        ),
    }
    if !object.contains_key("detail") {
        v.fail("detail", "is required");
    }
    if v.violations.is_empty() {
        v.fail("event", format!("is not a valid EventBridge event: {err}"));
    }
    rejection.violations = v.violations;
    rejection
}

fn detail_error(text: &str, err: &serde_json::Error) -> String {
    match serde_json::from_str::<Value>(text) {
        Ok(value) if !value.is_object() => {
            format!("must be a JSON object, found {}", number::json_type(&value))
        }
        _ => err.to_string(),
    }
}

/// A JSON object that refuses repeated keys: with two `price` fields, which one is the trade?
struct UniqueKeyObject(Map<String, Value>);

impl<'de> Deserialize<'de> for UniqueKeyObject {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = UniqueKeyObject;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut access: A,
            ) -> Result<Self::Value, A::Error> {
                let mut map = Map::new();
                while let Some(key) = access.next_key::<String>()? {
                    let value: Value = access.next_value()?;
                    match map.entry(key) {
                        serde_json::map::Entry::Vacant(slot) => {
                            slot.insert(value);
                        }
                        serde_json::map::Entry::Occupied(taken) => {
                            return Err(serde::de::Error::custom(format!(
                                "field {:?} appears more than once",
                                taken.key()
                            )));
                        }
                    }
                }
                Ok(UniqueKeyObject(map))
            }
        }
        deserializer.deserialize_map(Visitor)
    }
}

/// Walks JSON text and fails on an object, at any depth, that names a field twice: serde_json's
/// `Value` would keep the last one silently, and a stored `extra` would differ from what was
/// sent. (With `arbitrary_precision` a number is seen here as a one-field object: harmless.)
struct NoRepeatedKeys;

impl<'de> Deserialize<'de> for NoRepeatedKeys {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = NoRepeatedKeys;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok(NoRepeatedKeys)
            }
            fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
                Ok(NoRepeatedKeys)
            }
            fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
                Ok(NoRepeatedKeys)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
                Ok(NoRepeatedKeys)
            }
            fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
                Ok(NoRepeatedKeys)
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(NoRepeatedKeys)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut access: A,
            ) -> Result<Self::Value, A::Error> {
                while access.next_element::<NoRepeatedKeys>()?.is_some() {}
                Ok(NoRepeatedKeys)
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut access: A,
            ) -> Result<Self::Value, A::Error> {
                let mut seen = std::collections::HashSet::new();
                while let Some(key) = access.next_key::<String>()? {
                    access.next_value::<NoRepeatedKeys>()?;
                    if !seen.insert(key.clone()) {
                        return Err(serde::de::Error::custom(format!(
                            "field {key:?} appears more than once in a nested object"
                        )));
                    }
                }
                Ok(NoRepeatedKeys)
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// Collects every violation of a detail, so a feed sees all its mistakes at once.
#[derive(Default)]
struct Validator {
    violations: Vec<Violation>,
}

impl Validator {
    fn fail(&mut self, field: &str, rule: impl Into<String>) {
        let field = match field {
            "id"
            | "source"
            | "detail-type"
            | "time"
            | "detail"
            | "event"
            | "version"
            | "account"
            | "region"
            | "resources"
            | names::REPLAY_NAME => field.to_string(),
            _ => format!("detail.{field}"),
        };
        self.violations.push(Violation {
            field,
            rule: rule.into(),
        });
    }

    fn string(
        &mut self,
        detail: &mut Map<String, Value>,
        field: &str,
        required: bool,
    ) -> Option<String> {
        match self.present(detail, field, required)? {
            Value::String(s) => Some(s),
            other => {
                self.fail(
                    field,
                    format!("must be a string, found {}", number::json_type(&other)),
                );
                None
            }
        }
    }

    /// Takes `field` out of the detail; absent and `null` are the same, and an error only when
    /// the field is required.
    fn present(
        &mut self,
        detail: &mut Map<String, Value>,
        field: &str,
        required: bool,
    ) -> Option<Value> {
        match detail.remove(field) {
            None | Some(Value::Null) => {
                if required {
                    self.fail(field, "is required");
                }
                None
            }
            Some(value) => Some(value),
        }
    }

    /// Exchange and symbol codes: upper case, bounded, and safe to use as index keys.
    fn code(
        &mut self,
        detail: &mut Map<String, Value>,
        field: &str,
        max_len: usize,
        allowed: fn(char) -> bool,
        allowed_text: &str,
    ) -> Option<String> {
        let value = self.string(detail, field, true)?;
        let first_ok = value
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
        if value.is_empty() || value.len() > max_len || !first_ok || !value.chars().all(allowed) {
            self.fail(
                field,
                format!(
                    "{:?} must be 1 to {max_len} characters of {allowed_text}, starting with a letter or digit",
                    truncate(&value),
                ),
            );
            return None;
        }
        Some(value)
    }

    fn currency(&mut self, detail: &mut Map<String, Value>) -> Option<String> {
        let value = match detail.get("currency") {
            None | Some(Value::Null) => {
                detail.remove("currency");
                return Some("USD".into());
            }
            Some(_) => self.string(detail, "currency", false)?,
        };
        if value.len() == 3 && value.chars().all(|c| c.is_ascii_uppercase()) {
            Some(value)
        } else {
            self.fail(
                "currency",
                format!(
                    "{:?} must be an ISO 4217 code of three upper-case letters such as USD",
                    truncate(&value)
                ),
            );
            None
        }
    }

    fn event_time(
        &mut self,
        detail_timestamp: Option<&str>,
        envelope_time: Option<DateTime<Utc>>,
        rules: &Rules,
        now: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        let (field, time) = match (detail_timestamp, envelope_time) {
            (Some(text), _) => match DateTime::parse_from_rfc3339(text) {
                Ok(t) => ("timestamp", t.with_timezone(&Utc)),
                Err(_) => {
                    self.fail(
                        "timestamp",
                        format!(
                            "{:?} is not an RFC 3339 date-time such as 2026-01-02T15:04:05.123Z",
                            truncate(text)
                        ),
                    );
                    return None;
                }
            },
            (None, Some(t)) => ("time", t),
            (None, None) => {
                self.fail("timestamp", "is required when the envelope has no time");
                return None;
            }
        };
        // chrono reads second 60 in any minute as a leap second; as a sort key it would sort
        // inside the next minute's keys, and no feed stamps real leap seconds (none since 2016).
        if time.timestamp_subsec_nanos() >= 1_000_000_000 {
            self.fail(
                field,
                "has second 60 (a leap second), which is not accepted: send 59.999 or the next \
                 minute",
            );
            return None;
        }
        let time = truncate_to_millis(time);
        // Compared to the millisecond, not in whole seconds: 300.4 s ahead is more than 300.
        let ahead = time.signed_duration_since(now);
        let behind = now.signed_duration_since(time);
        let seconds = |d: chrono::Duration| d.num_milliseconds() as f64 / 1000.0;
        if ahead > chrono::Duration::seconds(i64::from(rules.max_future_skew_seconds)) {
            self.fail(
                field,
                format!(
                    "{} is {:.3} s ahead of the processing clock; at most {} s allowed",
                    format_timestamp(time),
                    seconds(ahead),
                    rules.max_future_skew_seconds
                ),
            );
            return None;
        }
        if behind > chrono::Duration::seconds(i64::from(rules.max_event_age_seconds)) {
            self.fail(
                field,
                format!(
                    "{} is {:.3} s old; at most {} s allowed",
                    format_timestamp(time),
                    seconds(behind),
                    rules.max_event_age_seconds
                ),
            );
            return None;
        }
        Some(time)
    }

    fn decimal(
        &mut self,
        detail: &mut Map<String, Value>,
        field: &str,
        required: bool,
    ) -> Option<Decimal> {
        let value = self.present(detail, field, required)?;
        match number::exact_decimal(&value) {
            Ok(d) if d > Decimal::ZERO => Some(d),
            Ok(_) => {
                self.fail(
                    field,
                    format!("must be greater than 0, found {}", describe(&value)),
                );
                None
            }
            Err(err) => {
                self.fail(field, describe_number_error(&err, &value));
                None
            }
        }
    }

    fn count(
        &mut self,
        detail: &mut Map<String, Value>,
        field: &str,
        required: bool,
    ) -> Option<u64> {
        let value = self.present(detail, field, required)?;
        let rule = "must be a positive whole number";
        match number::exact_decimal(&value) {
            Ok(d) if d > Decimal::ZERO && d.fract().is_zero() => match u64::try_from(d) {
                Ok(n) => Some(n),
                Err(_) => {
                    self.fail(
                        field,
                        format!("{rule} below 2^64, found {}", describe(&value)),
                    );
                    None
                }
            },
            Ok(_) => {
                self.fail(field, format!("{rule}, found {}", describe(&value)));
                None
            }
            Err(err) => {
                self.fail(field, describe_number_error(&err, &value));
                None
            }
        }
    }

    fn trade(&mut self, detail: &mut Map<String, Value>) -> Option<Trade> {
        let price = self.decimal(detail, "price", true);
        let volume = self.count(detail, "volume", true);
        let trade_id = self.string(detail, "trade_id", false);
        let trade_id_ok = match &trade_id {
            Some(id)
                if id.is_empty()
                    || id.len() > MAX_TRADE_ID_LEN
                    || !id.chars().all(is_trade_id_char) =>
            {
                self.fail(
                    "trade_id",
                    format!(
                        "{:?} must be 1 to {MAX_TRADE_ID_LEN} characters of A-Z, a-z, 0-9, '.', '-', '_', ':'",
                        truncate(id)
                    ),
                );
                false
            }
            _ => true,
        };
        let side = match self.string(detail, "side", false).as_deref() {
            None => Some(None),
            Some("buy") => Some(Some(Side::Buy)),
            Some("sell") => Some(Some(Side::Sell)),
            Some(other) => {
                self.fail(
                    "side",
                    format!("{:?} must be \"buy\" or \"sell\"", truncate(other)),
                );
                None
            }
        };
        if !trade_id_ok {
            return None;
        }
        Some(Trade {
            trade_id,
            price: price?,
            volume: volume?,
            side: side?,
        })
    }

    fn quote(&mut self, detail: &mut Map<String, Value>, price_update: bool) -> Option<Quote> {
        let bid = self.decimal(detail, "bid", !price_update);
        let ask = self.decimal(detail, "ask", !price_update);
        let bid_size = self.count(detail, "bid_size", false);
        let ask_size = self.count(detail, "ask_size", false);
        let price = if price_update {
            self.decimal(detail, "price", true)
        } else if detail.contains_key("price") {
            self.fail(
                "price",
                "belongs to Price Update; a Market Quote carries bid and ask",
            );
            detail.remove("price");
            None
        } else {
            None
        };
        if let (Some(b), Some(a)) = (bid, ask)
            && b > a
        {
            self.fail("bid", format!("{b} must not exceed ask {a}"));
            return None;
        }
        if price_update && price.is_none() {
            return None;
        }
        if !price_update && (bid.is_none() || ask.is_none()) {
            return None;
        }
        Some(Quote {
            bid,
            ask,
            bid_size,
            ask_size,
            price,
        })
    }
}

fn truncate_to_millis(t: DateTime<Utc>) -> DateTime<Utc> {
    let nanos = t.timestamp_subsec_nanos();
    t - chrono::Duration::nanoseconds(i64::from(nanos % 1_000_000))
}

fn is_symbol_char(c: char) -> bool {
    c.is_ascii_uppercase() || c.is_ascii_digit() || matches!(c, '.' | '-' | '_' | '/' | ':')
}

fn is_trade_id_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':')
}

fn describe_number_error(err: &NumberError, value: &Value) -> String {
    match err {
        NumberError::WrongType(_) => err.to_string(),
        _ => format!("{} {err}", describe(value)),
    }
}

/// A short rendering of a bad value for a message; feeds can send megabytes.
fn describe(value: &Value) -> String {
    match value {
        Value::String(s) => format!("{:?}", truncate(s)),
        other => truncate(&other.to_string()).to_string(),
    }
}

fn truncate(s: &str) -> &str {
    const LIMIT: usize = 64;
    if s.len() <= LIMIT {
        return s;
    }
    let mut end = LIMIT;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}
