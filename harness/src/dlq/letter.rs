//! One DLQ message, decoded: which producer wrote it, the error it carries, and the event inside.
//!
//! Four producers write to the queue, each in its own shape:
//! - Lambda's on-failure destination: a JSON record with the event under `requestPayload` and
//!   the error under `responsePayload` (`errorType`, `errorMessage`);
//! - the stream's event source mapping, as its on-failure destination: a JSON record with no
//!   payload, only where the failed batch lies in the stream (`KinesisBatchInfo`); its records
//!   are read back from the stream ([`super::stream`]);
//! - the function's dead-letter config: the bare event, with `ErrorCode` and `ErrorMessage`
//!   message attributes;
//! - an EventBridge rule target's dead-letter config: the bare event, with `ERROR_CODE` and
//!   `ERROR_MESSAGE` message attributes.

use std::collections::BTreeMap;

use aws_sdk_sqs::types::{Message, MessageSystemAttributeName};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::value::RawValue;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    LambdaDestination,
    StreamDestination,
    LambdaDeadLetter,
    RuleTarget,
    Unknown,
}

impl Origin {
    pub fn describe(self) -> &'static str {
        match self {
            Origin::LambdaDestination => "Lambda on-failure destination",
            Origin::StreamDestination => "stream event source mapping",
            Origin::LambdaDeadLetter => "Lambda dead-letter queue",
            Origin::RuleTarget => "EventBridge rule target",
            Origin::Unknown => "unknown producer",
        }
    }
}

/// The original event, as much of it as PutEvents needs to publish it again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The envelope id of this delivery.
    pub id: Option<String>,
    /// For a copy a redrive published: the id of the event it copies, from its
    /// [`names::REDRIVE_OF_PREFIX`] entry in `resources`.
    pub redrive_of: Option<String>,
    /// The envelope's other `resources` entries, passed on unchanged.
    pub resources: Vec<String>,
    pub source: String,
    pub detail_type: String,
    /// RFC 3339 event time; kept on redrive, since the processor stores records by it.
    pub time: Option<String>,
    /// The detail object, as the exact JSON text the queue holds.
    pub detail: String,
}

impl Event {
    /// The id the processor stores and deduplicates this event under: the original's id for a
    /// copy, else its own. Every copy a redrive publishes names this id, so however often the
    /// event is redriven its record key stays the same.
    pub fn record_id(&self) -> Option<&str> {
        self.redrive_of.as_deref().or(self.id.as_deref())
    }
}

/// One DLQ message, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Letter {
    pub message_id: String,
    pub receipt_handle: Option<String>,
    /// When SQS received the message (its `SentTimestamp`).
    pub sent_at: Option<DateTime<Utc>>,
    pub origin: Origin,
    pub error: String,
    /// The event, or why it cannot be published again. A stream letter holds no event: see
    /// `batch`.
    pub event: Result<Event, String>,
    /// For a stream letter: where its records lie.
    pub batch: Option<StreamBatch>,
}

/// Where the records of a failed stream batch lie: Lambda sends this, not the records, so they
/// must be read back while the stream still holds them (its retention).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct StreamBatch {
    #[serde(rename = "shardId")]
    pub shard_id: String,
    #[serde(rename = "startSequenceNumber")]
    pub start_sequence_number: String,
    #[serde(rename = "endSequenceNumber")]
    pub end_sequence_number: String,
    #[serde(rename = "batchSize")]
    pub batch_size: usize,
    #[serde(rename = "streamArn")]
    pub stream_arn: String,
}

#[derive(Deserialize)]
struct StreamRecord {
    #[serde(rename = "KinesisBatchInfo")]
    batch: StreamBatch,
    #[serde(rename = "requestContext", default)]
    request_context: Option<serde_json::Value>,
    #[serde(rename = "responseContext", default)]
    response_context: Option<serde_json::Value>,
}

impl Letter {
    /// The record id of its event (see [`Event::record_id`]).
    pub fn record_id(&self) -> Option<&str> {
        self.event.as_ref().ok().and_then(Event::record_id)
    }

    pub fn sent_text(&self) -> String {
        self.sent_at.map_or_else(
            || "?".to_string(),
            |t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        )
    }
}

#[derive(Deserialize)]
struct DestinationRecord<'a> {
    #[serde(rename = "requestPayload", borrow)]
    request_payload: &'a RawValue,
    #[serde(rename = "responsePayload", default)]
    response_payload: Option<serde_json::Value>,
    #[serde(rename = "requestContext", default)]
    request_context: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    source: Option<String>,
    #[serde(rename = "detail-type", default)]
    detail_type: Option<String>,
    #[serde(default)]
    time: Option<String>,
    #[serde(default)]
    resources: Option<Vec<serde_json::Value>>,
    #[serde(borrow, default)]
    detail: Option<&'a RawValue>,
}

/// Decodes one message. Never fails: what cannot be understood is reported in the letter.
pub fn decode(
    message_id: &str,
    receipt_handle: Option<&str>,
    body: &str,
    attributes: &BTreeMap<String, String>,
) -> Letter {
    let attribute = |name: &str| attributes.get(name).map(String::as_str);
    let field = |value: &Option<serde_json::Value>, key: &str| {
        value
            .as_ref()
            .and_then(|v| v.get(key))
            .map(|v| v.as_str().map_or_else(|| v.to_string(), String::from))
            .filter(|text| !text.is_empty())
    };
    if let Ok(record) = serde_json::from_str::<StreamRecord>(body) {
        let condition = field(&record.request_context, "condition")
            .unwrap_or_else(|| "no condition recorded".to_string());
        let error = match field(&record.response_context, "functionError") {
            Some(kind) => format!("{condition} (function error {kind})"),
            None => condition,
        };
        let batch = record.batch;
        return Letter {
            message_id: message_id.to_string(),
            receipt_handle: receipt_handle.map(String::from),
            sent_at: None,
            origin: Origin::StreamDestination,
            error,
            event: Err(format!(
                "a stream batch of {} records ({} {}..{}): they are read back from the stream",
                batch.batch_size,
                batch.shard_id,
                batch.start_sequence_number,
                batch.end_sequence_number
            )),
            batch: Some(batch),
        };
    }
    let (origin, error, payload) =
        if let Ok(record) = serde_json::from_str::<DestinationRecord>(body) {
            let mut error = match (
                field(&record.response_payload, "errorType"),
                field(&record.response_payload, "errorMessage"),
            ) {
                (Some(kind), Some(message)) => format!("{kind}: {message}"),
                (Some(only), None) | (None, Some(only)) => only,
                (None, None) => "no error in the record".to_string(),
            };
            if let Some(condition) = field(&record.request_context, "condition") {
                let attempts = field(&record.request_context, "approximateInvokeCount")
                    .map(|n| format!(" after {n} attempts"))
                    .unwrap_or_default();
                error.push_str(&format!(" ({condition}{attempts})"));
            }
            (
                Origin::LambdaDestination,
                error,
                record.request_payload.get(),
            )
        } else if let Some(code) = attribute("ERROR_CODE") {
            let mut error = match attribute("ERROR_MESSAGE") {
                Some(message) => format!("{code}: {message}"),
                None => code.to_string(),
            };
            if let Some(retries) = attribute("RETRY_ATTEMPTS") {
                error.push_str(&format!(" ({retries} retries)"));
            }
            (Origin::RuleTarget, error, body)
        } else if attribute("ErrorCode").is_some() || attribute("ErrorMessage").is_some() {
            let error = format!(
                "function error {}: {}",
                attribute("ErrorCode").unwrap_or("?"),
                attribute("ErrorMessage").unwrap_or("no message")
            );
            (Origin::LambdaDeadLetter, error, body)
        } else {
            (Origin::Unknown, "no error recorded".to_string(), body)
        };
    Letter {
        message_id: message_id.to_string(),
        receipt_handle: receipt_handle.map(String::from),
        sent_at: None,
        origin,
        error,
        event: event_of(payload),
        batch: None,
    }
}

/// The event an EventBridge envelope holds (a DLQ payload, or a stream record's data).
pub fn event_of(payload: &str) -> Result<Event, String> {
    let envelope: Envelope = serde_json::from_str(payload)
        .map_err(|e| format!("the payload is not an EventBridge event: {e}"))?;
    let missing = |field: &str| format!("the event has no {field}");
    let detail = envelope.detail.ok_or_else(|| missing("detail"))?;
    if !detail.get().trim_start().starts_with('{') {
        return Err("the event's detail is not a JSON object".to_string());
    }
    let mut resources = Vec::new();
    let mut markers = Vec::new();
    for entry in envelope.resources.unwrap_or_default() {
        let Some(text) = entry.as_str() else {
            return Err(format!(
                "the event's resources hold a non-string entry {entry}"
            ));
        };
        match text.strip_prefix(names::REDRIVE_OF_PREFIX) {
            Some(original) => markers.push(original.to_string()),
            None => resources.push(text.to_string()),
        }
    }
    // Two markers would make the processor refuse the copy; which original was meant is a guess.
    if markers.len() > 1 || markers.iter().any(String::is_empty) {
        return Err(format!(
            "the event's resources name {} original events ({}...); a copy names one",
            markers.len(),
            names::REDRIVE_OF_PREFIX
        ));
    }
    Ok(Event {
        id: envelope.id,
        redrive_of: markers.pop(),
        resources,
        source: envelope.source.ok_or_else(|| missing("source"))?,
        detail_type: envelope.detail_type.ok_or_else(|| missing("detail-type"))?,
        time: envelope.time,
        detail: detail.get().to_string(),
    })
}

/// Decodes a received SQS message, with its message attributes and `SentTimestamp`.
pub fn decode_message(message: &Message) -> Letter {
    let attributes: BTreeMap<String, String> = message
        .message_attributes()
        .map(|all| {
            all.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.string_value()?.to_string())))
                .collect()
        })
        .unwrap_or_default();
    let mut letter = decode(
        message.message_id().unwrap_or("?"),
        message.receipt_handle(),
        message.body().unwrap_or_default(),
        &attributes,
    );
    letter.sent_at = message
        .attributes()
        .and_then(|a| a.get(&MessageSystemAttributeName::SentTimestamp))
        .and_then(|ms| ms.parse::<i64>().ok())
        .and_then(DateTime::from_timestamp_millis);
    letter
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRADE: &str = r#"{"version":"0","id":"ev-1","detail-type":"Trade Execution","source":"market.data","account":"123456789012","time":"2026-11-25T14:00:00Z","region":"us-east-1","resources":[],"detail":{"exchange":"NASDAQ","symbol":"AAPL","price":150.250000000000000001,"volume":100}}"#;

    fn attributes(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_destination_record_keeps_the_event_and_its_exact_detail() {
        let body = format!(
            r#"{{"version":"1.0","requestContext":{{"requestId":"r","condition":"RetriesExhausted","approximateInvokeCount":3}},"requestPayload":{TRADE},"responsePayload":{{"errorType":"StoreUnavailable","errorMessage":"DynamoDB throttled"}}}}"#
        );
        let letter = decode("m-1", Some("h"), &body, &BTreeMap::new());
        assert_eq!(letter.origin, Origin::LambdaDestination);
        assert_eq!(
            letter.error,
            "StoreUnavailable: DynamoDB throttled (RetriesExhausted after 3 attempts)"
        );
        let event = letter.event.expect("event");
        assert_eq!(event.id.as_deref(), Some("ev-1"));
        assert_eq!(event.record_id(), Some("ev-1"));
        assert_eq!(event.source, "market.data");
        assert_eq!(event.detail_type, "Trade Execution");
        assert_eq!(event.time.as_deref(), Some("2026-11-25T14:00:00Z"));
        assert_eq!(
            event.detail,
            r#"{"exchange":"NASDAQ","symbol":"AAPL","price":150.250000000000000001,"volume":100}"#
        );
    }

    #[test]
    fn a_rule_target_dead_letter_has_the_bare_event_and_error_attributes() {
        let letter = decode(
            "m-2",
            None,
            TRADE,
            &attributes(&[
                ("ERROR_CODE", "SDK_CLIENT_ERROR"),
                ("ERROR_MESSAGE", "Lambda throttled"),
                ("RETRY_ATTEMPTS", "185"),
            ]),
        );
        assert_eq!(letter.origin, Origin::RuleTarget);
        assert_eq!(
            letter.error,
            "SDK_CLIENT_ERROR: Lambda throttled (185 retries)"
        );
        assert_eq!(letter.record_id(), Some("ev-1"));
    }

    #[test]
    fn a_function_dead_letter_uses_lambdas_attribute_names() {
        let letter = decode(
            "m-3",
            None,
            TRADE,
            &attributes(&[("ErrorCode", "200"), ("ErrorMessage", "Unhandled")]),
        );
        assert_eq!(letter.origin, Origin::LambdaDeadLetter);
        assert_eq!(letter.error, "function error 200: Unhandled");
        assert!(letter.event.is_ok());
    }

    /// A letter of a copy that failed again names the original, never the copy's own id: the
    /// next redrive must meet the original's record key.
    #[test]
    fn a_copy_keeps_the_id_of_the_event_it_copies() {
        let copy = TRADE.replace("\"ev-1\"", "\"ev-copy\"").replace(
            r#""resources":[]"#,
            &format!(
                r#""resources":["arn:aws:s3:::feed","{}ev-1"]"#,
                names::REDRIVE_OF_PREFIX
            ),
        );
        let letter = decode("m-7", None, &copy, &BTreeMap::new());
        let event = letter.event.expect("event");
        assert_eq!(event.id.as_deref(), Some("ev-copy"));
        assert_eq!(event.redrive_of.as_deref(), Some("ev-1"));
        assert_eq!(event.record_id(), Some("ev-1"));
        assert_eq!(event.resources, ["arn:aws:s3:::feed"]);

        let twice = TRADE.replace(
            r#""resources":[]"#,
            &format!(r#""resources":["{0}a","{0}b"]"#, names::REDRIVE_OF_PREFIX),
        );
        let letter = decode("m-8", None, &twice, &BTreeMap::new());
        assert!(
            letter
                .event
                .expect_err("ambiguous")
                .contains("name 2 original events")
        );
    }

    #[test]
    fn what_cannot_be_published_again_says_why() {
        let garbage = decode("m-4", None, "not json", &BTreeMap::new());
        assert_eq!(garbage.origin, Origin::Unknown);
        assert!(
            garbage
                .event
                .expect_err("no event")
                .contains("not an EventBridge event")
        );
        let no_detail = decode(
            "m-5",
            None,
            r#"{"requestPayload":{"id":"x","source":"s","detail-type":"d"}}"#,
            &BTreeMap::new(),
        );
        assert_eq!(no_detail.event, Err("the event has no detail".to_string()));
        let string_payload = decode(
            "m-6",
            None,
            r#"{"requestPayload":"raw text","responsePayload":{"errorType":"DecodeError"}}"#,
            &BTreeMap::new(),
        );
        assert_eq!(string_payload.error, "DecodeError");
        assert!(string_payload.event.is_err());
    }
}
