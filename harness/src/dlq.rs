//! `cargo xtask dlq`: what is in a stack's dead-letter queue and why, and `--redrive` to publish
//! those events to the bus again once the cause is fixed.
//!
//! Three producers write to the queue, each in its own shape:
//! - Lambda's on-failure destination: a JSON record with the event under `requestPayload` and
//!   the error under `responsePayload` (`errorType`, `errorMessage`);
//! - the function's dead-letter config: the bare event, with `ErrorCode` and `ErrorMessage`
//!   message attributes;
//! - an EventBridge rule target's dead-letter config: the bare event, with `ERROR_CODE` and
//!   `ERROR_MESSAGE` message attributes.

use std::collections::{BTreeMap, HashSet};

use anyhow::{Context, Result};
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_eventbridge::primitives::{DateTime, DateTimeFormat};
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use aws_sdk_sqs::types::{Message, MessageSystemAttributeName};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::aws::sdk_error;

/// How long a message being redriven stays hidden from other readers: enough for one
/// PutEvents call and the deletes after it.
const REDRIVE_VISIBILITY_SECONDS: i32 = 120;
/// Empty receives in a row after which the queue counts as read.
const EMPTY_RECEIVES: u32 = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    LambdaDestination,
    LambdaDeadLetter,
    RuleTarget,
    Unknown,
}

impl Origin {
    fn describe(self) -> &'static str {
        match self {
            Origin::LambdaDestination => "Lambda on-failure destination",
            Origin::LambdaDeadLetter => "Lambda dead-letter queue",
            Origin::RuleTarget => "EventBridge rule target",
            Origin::Unknown => "unknown producer",
        }
    }
}

/// The original event, as much of it as PutEvents needs to publish it again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub id: Option<String>,
    pub source: String,
    pub detail_type: String,
    /// RFC 3339 event time; kept on redrive, since the processor stores records by it.
    pub time: Option<String>,
    /// The detail object, as the exact JSON text the queue holds.
    pub detail: String,
}

/// One DLQ message, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Letter {
    pub message_id: String,
    pub receipt_handle: Option<String>,
    pub sent_at: Option<String>,
    pub origin: Origin,
    pub error: String,
    /// The event, or why it cannot be published again.
    pub event: Result<Event, String>,
}

impl Letter {
    fn event_id(&self) -> Option<&str> {
        self.event.as_ref().ok().and_then(|e| e.id.as_deref())
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
    let (origin, error, payload) =
        if let Ok(record) = serde_json::from_str::<DestinationRecord>(body) {
            let field = |value: &Option<serde_json::Value>, key: &str| {
                value
                    .as_ref()
                    .and_then(|v| v.get(key))
                    .map(|v| v.as_str().map_or_else(|| v.to_string(), String::from))
            };
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
    }
}

fn event_of(payload: &str) -> Result<Event, String> {
    let envelope: Envelope = serde_json::from_str(payload)
        .map_err(|e| format!("the payload is not an EventBridge event: {e}"))?;
    let missing = |field: &str| format!("the event has no {field}");
    let detail = envelope.detail.ok_or_else(|| missing("detail"))?;
    if !detail.get().trim_start().starts_with('{') {
        return Err("the event's detail is not a JSON object".to_string());
    }
    Ok(Event {
        id: envelope.id,
        source: envelope.source.ok_or_else(|| missing("source"))?,
        detail_type: envelope.detail_type.ok_or_else(|| missing("detail-type"))?,
        time: envelope.time,
        detail: detail.get().to_string(),
    })
}

fn decode_message(message: &Message) -> Letter {
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
        .and_then(chrono::DateTime::from_timestamp_millis)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    letter
}

async fn receive(
    sqs: &aws_sdk_sqs::Client,
    url: &str,
    visibility_timeout: i32,
) -> Result<Vec<Message>> {
    let output = sqs
        .receive_message()
        .queue_url(url)
        .max_number_of_messages(10)
        .visibility_timeout(visibility_timeout)
        // Long polling asks every SQS server, so an empty answer means an empty queue.
        .wait_time_seconds(1)
        .message_attribute_names("All")
        .message_system_attribute_names(MessageSystemAttributeName::SentTimestamp)
        .send()
        .await
        .map_err(|e| sdk_error("ReceiveMessage", e))
        .with_context(|| format!("reading the DLQ {url}"))?;
    Ok(output.messages.unwrap_or_default())
}

/// Every message in the queue, left in place (a zero visibility timeout).
pub async fn list(sqs: &aws_sdk_sqs::Client, url: &str) -> Result<Vec<Letter>> {
    let mut seen = BTreeMap::new();
    let mut empty = 0;
    // Received messages stay hidden while the queue is read, so every receive returns new ones
    // (with a zero timeout a queue may keep answering with the same first ten); then they are
    // made visible again: listing consumes nothing.
    while empty < EMPTY_RECEIVES {
        let messages = receive(sqs, url, REDRIVE_VISIBILITY_SECONDS).await?;
        if messages.is_empty() {
            empty += 1;
        }
        for message in messages {
            let letter = decode_message(&message);
            seen.entry(letter.message_id.clone()).or_insert(letter);
        }
    }
    let mut letters: Vec<Letter> = seen.into_values().collect();
    release_all(sqs, url, &letters).await;
    letters.sort_by(|a, b| a.sent_at.cmp(&b.sent_at));
    Ok(letters)
}

/// What a redrive did.
#[derive(Debug, Default)]
pub struct Redriven {
    /// Events the bus accepted again.
    pub published: usize,
    /// Messages deleted: the published events, and further copies of them.
    pub deleted: usize,
    /// Messages left in the queue, each with the reason.
    pub kept: Vec<(String, String)>,
    /// Messages deleted without publishing: their event's record is in the table already.
    pub already_stored: usize,
}

/// Whether a dead-lettered event's record exists in the market-data table.
pub struct StoredCheck<'a> {
    pub dynamodb: &'a aws_sdk_dynamodb::Client,
    pub market_data_table: &'a str,
}

impl StoredCheck<'_> {
    /// Looks up the record key the processor would use (envelope id, event time in
    /// milliseconds). An event the processor would not accept has no record.
    async fn holds(&self, event: &Event) -> Result<bool> {
        let Some(id) = &event.id else {
            return Ok(false);
        };
        let envelope = serde_json::json!({
            "id": id,
            "source": event.source,
            "detail-type": event.detail_type,
            "time": event.time,
            "detail": serde_json::from_str::<serde_json::Value>(&event.detail).unwrap_or_default(),
        })
        .to_string();
        let rules = processor::event::Rules {
            accepted_sources: vec![event.source.clone()],
            max_future_skew_seconds: u32::MAX,
            max_event_age_seconds: u32::MAX,
        };
        let Ok(decoded) = processor::event::decode(&envelope, &rules, chrono::Utc::now()) else {
            return Ok(false);
        };
        let found = self
            .dynamodb
            .get_item()
            .table_name(self.market_data_table)
            .key(names::EVENT_ID, AttributeValue::S(id.clone()))
            .key(names::TIMESTAMP, AttributeValue::S(decoded.timestamp_key()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error("GetItem", e))
            .with_context(|| format!("looking up event {id} in {}", self.market_data_table))?;
        Ok(found.item.is_some())
    }
}

/// Publishes every event in the queue to `bus` again and deletes each message only after the
/// bus accepted its event. An event found more than once (the destination and a dead-letter
/// config may both hold it) is published once and all its copies deleted, since every
/// publication gets a new envelope id and would be stored again.
pub async fn redrive(
    sqs: &aws_sdk_sqs::Client,
    events: &aws_sdk_eventbridge::Client,
    url: &str,
    bus: &str,
    stored: &StoredCheck<'_>,
) -> Result<Redriven> {
    let mut result = Redriven::default();
    let mut seen = HashSet::new();
    let mut published_ids = HashSet::new();
    let mut release = Vec::new();
    let mut empty = 0;
    while empty < EMPTY_RECEIVES {
        let letters: Vec<Letter> = receive(sqs, url, REDRIVE_VISIBILITY_SECONDS)
            .await?
            .iter()
            .map(decode_message)
            .filter(|l| seen.insert(l.message_id.clone()))
            .collect();
        if letters.is_empty() {
            empty += 1;
            continue;
        }
        empty = 0;
        // One PutEvents entry per distinct event of this batch; the letters each entry stands for.
        let mut entries: Vec<(PutEventsRequestEntry, Vec<&Letter>)> = Vec::new();
        for letter in &letters {
            let event = match &letter.event {
                Ok(event) => event,
                Err(why) => {
                    result.kept.push((letter.message_id.clone(), why.clone()));
                    release.push(letter.clone());
                    continue;
                }
            };
            // A store failure after the record landed (its audit entry failed, say) leaves a
            // stored event in the DLQ; published again it would get a new envelope id and be
            // stored twice.
            if stored.holds(event).await? {
                delete(sqs, url, letter).await?;
                result.deleted += 1;
                result.already_stored += 1;
                continue;
            }
            if let Some(id) = letter.event_id() {
                if published_ids.contains(id) {
                    delete(sqs, url, letter).await?;
                    result.deleted += 1;
                    continue;
                }
                if let Some((_, group)) = entries
                    .iter_mut()
                    .find(|(_, group)| group[0].event_id() == Some(id))
                {
                    group.push(letter);
                    continue;
                }
            }
            entries.push((entry(event, bus), vec![letter]));
        }
        if entries.is_empty() {
            continue;
        }
        let output = events
            .put_events()
            .set_entries(Some(entries.iter().map(|(e, _)| e.clone()).collect()))
            .send()
            .await
            .map_err(|e| sdk_error("PutEvents", e))
            .with_context(|| format!("PutEvents to bus {bus}"));
        let output = match output {
            Ok(output) => output,
            Err(err) => {
                // Nothing was accepted: every message stays for the next attempt.
                for (_, group) in &entries {
                    release.extend(group.iter().map(|l| (*l).clone()));
                }
                release_all(sqs, url, &release).await;
                return Err(err);
            }
        };
        for ((_, group), answer) in entries.iter().zip(output.entries()) {
            if answer.error_code().is_some() || answer.event_id().is_none() {
                let why = format!(
                    "the bus refused it: {} {}",
                    answer.error_code().unwrap_or("no event id"),
                    answer.error_message().unwrap_or_default()
                );
                for letter in group {
                    result.kept.push((letter.message_id.clone(), why.clone()));
                    release.push((*letter).clone());
                }
                continue;
            }
            result.published += 1;
            if let Some(id) = group[0].event_id() {
                published_ids.insert(id.to_string());
            }
            for letter in group {
                delete(sqs, url, letter).await?;
                result.deleted += 1;
            }
        }
    }
    release_all(sqs, url, &release).await;
    Ok(result)
}

fn entry(event: &Event, bus: &str) -> PutEventsRequestEntry {
    let time = event
        .time
        .as_deref()
        .and_then(|t| DateTime::from_str(t, DateTimeFormat::DateTime).ok());
    PutEventsRequestEntry::builder()
        .event_bus_name(bus)
        .source(&event.source)
        .detail_type(&event.detail_type)
        .detail(&event.detail)
        .set_time(time)
        .build()
}

async fn delete(sqs: &aws_sdk_sqs::Client, url: &str, letter: &Letter) -> Result<()> {
    let Some(handle) = &letter.receipt_handle else {
        return Ok(());
    };
    sqs.delete_message()
        .queue_url(url)
        .receipt_handle(handle)
        .send()
        .await
        .map_err(|e| sdk_error("DeleteMessage", e))
        .with_context(|| {
            format!(
                "deleting message {} from the DLQ after its event was published again",
                letter.message_id
            )
        })?;
    Ok(())
}

/// Makes kept messages visible again at once, so the next `dlq` lists them.
async fn release_all(sqs: &aws_sdk_sqs::Client, url: &str, letters: &[Letter]) {
    for handle in letters.iter().filter_map(|l| l.receipt_handle.as_deref()) {
        // Best effort: if this fails, the message reappears when its visibility timeout ends.
        let _ = sqs
            .change_message_visibility()
            .queue_url(url)
            .receipt_handle(handle)
            .visibility_timeout(0)
            .send()
            .await;
    }
}

/// `cargo xtask dlq`: the stack's dead letters with their errors, or with `redrive`, their
/// events published again; fails while any letter stays.
pub async fn run(
    root: &std::path::Path,
    source: &crate::aws::deployed::Source,
    redrive: bool,
) -> Result<()> {
    let (outputs, _) = crate::aws::deployed::load(root, source).await?;
    let clients = crate::scenario::Clients::for_stack(&outputs).await;
    if !redrive {
        let letters = list(&clients.sqs, &outputs.dlq_url).await?;
        print(&outputs.dlq_url, &letters);
        return Ok(());
    }
    let stored = StoredCheck {
        dynamodb: &clients.dynamodb,
        market_data_table: &outputs.market_data_table_name,
    };
    let done = self::redrive(
        &clients.sqs,
        &clients.events,
        &outputs.dlq_url,
        &outputs.event_bus_name,
        &stored,
    )
    .await?;
    println!(
        "redrive to {}: {} events published again, {} already stored, {} messages deleted",
        outputs.event_bus_name, done.published, done.already_stored, done.deleted
    );
    for (message, why) in &done.kept {
        println!("  kept {message}: {why}");
    }
    if !done.kept.is_empty() {
        anyhow::bail!(
            "{} messages could not be redriven and stay in the DLQ",
            done.kept.len()
        );
    }
    Ok(())
}

/// The listing `cargo xtask dlq` prints.
pub fn print(url: &str, letters: &[Letter]) {
    println!("{url}: {} message(s)", letters.len());
    for (n, letter) in letters.iter().enumerate() {
        println!(
            "\n[{}] message {}  sent {}  from {}",
            n + 1,
            letter.message_id,
            letter.sent_at.as_deref().unwrap_or("?"),
            letter.origin.describe()
        );
        println!("    error   {}", letter.error);
        match &letter.event {
            Ok(event) => {
                println!(
                    "    event   {} ({} from {}, time {})",
                    event.id.as_deref().unwrap_or("?"),
                    event.detail_type,
                    event.source,
                    event.time.as_deref().unwrap_or("?")
                );
                println!("    detail  {}", shorten(&event.detail, 300));
            }
            Err(why) => println!("    cannot be redriven: {why}"),
        }
    }
}

fn shorten(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
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
        assert_eq!(letter.event_id(), Some("ev-1"));
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

    mod against_moto {
        use super::*;
        use crate::aws::local_sdk_config;
        use crate::local::provision;
        use aws_sdk_sqs::types::MessageAttributeValue;
        use infra::model::Model;
        use infra::outputs::Outputs;
        use infra::stack::StackConfig;

        fn endpoint() -> String {
            crate::moto::shared().endpoint.clone()
        }

        /// The dev stack's resources under a fresh suffix, so parallel tests never share a queue.
        async fn stack() -> (Outputs, aws_sdk_sqs::Client, aws_sdk_eventbridge::Client) {
            let mut config = StackConfig::load(&infra::workspace_root(), "dev").expect("dev stack");
            config.environment = format!("dlq{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
            let endpoint = endpoint();
            let sdk = local_sdk_config(&endpoint).await;
            let outputs = provision::provision(&sdk, &Model::from_stack(&config), &endpoint)
                .await
                .expect("provision");
            (
                outputs,
                aws_sdk_sqs::Client::new(&sdk),
                aws_sdk_eventbridge::Client::new(&sdk),
            )
        }

        fn trade(id: &str, symbol: &str) -> String {
            TRADE.replace("ev-1", id).replace("AAPL", symbol)
        }

        async fn put(sqs: &aws_sdk_sqs::Client, url: &str, body: &str, attrs: &[(&str, &str)]) {
            let mut request = sqs.send_message().queue_url(url).message_body(body);
            for (name, value) in attrs {
                request = request.message_attributes(
                    *name,
                    MessageAttributeValue::builder()
                        .data_type("String")
                        .string_value(*value)
                        .build()
                        .expect("attribute"),
                );
            }
            request.send().await.expect("send to DLQ");
        }

        fn destination_record(event: &str) -> String {
            format!(
                r#"{{"requestContext":{{"condition":"RetriesExhausted","approximateInvokeCount":1}},"requestPayload":{event},"responsePayload":{{"errorType":"StoreUnavailable","errorMessage":"throttled"}}}}"#
            )
        }

        /// Everything the rules delivered to the local stack's delivery queue.
        async fn delivered(sqs: &aws_sdk_sqs::Client, url: &str) -> Vec<serde_json::Value> {
            let mut out = Vec::new();
            for _ in 0..3 {
                for message in receive(sqs, url, 60).await.expect("receive") {
                    out.push(
                        serde_json::from_str(message.body().unwrap_or_default()).expect("json"),
                    );
                }
            }
            out
        }

        #[tokio::test]
        async fn redrive_publishes_each_event_once_and_keeps_what_it_cannot_send() {
            let (outputs, sqs, events) = stack().await;
            let dlq = &outputs.dlq_url;
            // The same failed trade from the destination and from the function's DLQ config.
            put(&sqs, dlq, &destination_record(&trade("ev-1", "AAPL")), &[]).await;
            put(
                &sqs,
                dlq,
                &trade("ev-1", "AAPL"),
                &[("ErrorCode", "200"), ("ErrorMessage", "Unhandled")],
            )
            .await;
            put(
                &sqs,
                dlq,
                &trade("ev-2", "MSFT"),
                &[("ERROR_CODE", "SDK_CLIENT_ERROR"), ("ERROR_MESSAGE", "x")],
            )
            .await;
            put(&sqs, dlq, "not an event", &[]).await;

            let letters = list(&sqs, dlq).await.expect("list");
            assert_eq!(letters.len(), 4, "{letters:#?}");
            assert_eq!(list(&sqs, dlq).await.expect("list again").len(), 4);

            let dynamodb = aws_sdk_dynamodb::Client::new(&local_sdk_config(&endpoint()).await);
            let stored = StoredCheck {
                dynamodb: &dynamodb,
                market_data_table: &outputs.market_data_table_name,
            };
            let done = redrive(&sqs, &events, dlq, &outputs.event_bus_name, &stored)
                .await
                .expect("redrive");
            assert_eq!(done.published, 2, "{done:?}");
            assert_eq!(done.deleted, 3, "{done:?}");
            assert_eq!(done.kept.len(), 1, "{done:?}");

            let left = list(&sqs, dlq).await.expect("list");
            assert_eq!(left.len(), 1);
            assert!(left[0].event.is_err());

            let delivery = outputs.delivery_queue_url.as_deref().expect("local stack");
            let mut got = delivered(&sqs, delivery).await;
            got.sort_by_key(|e| e["detail"]["symbol"].to_string());
            assert_eq!(got.len(), 2, "{got:#?}");
            assert_eq!(got[0]["detail"]["symbol"], "AAPL");
            assert_eq!(got[1]["detail"]["symbol"], "MSFT");
            for event in &got {
                assert_eq!(event["source"], "market.data");
                assert_eq!(event["detail-type"], "Trade Execution");
                assert_eq!(event["time"], "2026-11-25T14:00:00Z");
                assert_eq!(event["detail"]["volume"], 100);
            }
        }

        #[tokio::test]
        async fn nothing_is_deleted_when_the_bus_refuses() {
            let (outputs, sqs, events) = stack().await;
            let dlq = &outputs.dlq_url;
            put(&sqs, dlq, &destination_record(&trade("ev-9", "IBM")), &[]).await;
            let dynamodb = aws_sdk_dynamodb::Client::new(&local_sdk_config(&endpoint()).await);
            let stored = StoredCheck {
                dynamodb: &dynamodb,
                market_data_table: &outputs.market_data_table_name,
            };
            let result = redrive(&sqs, &events, dlq, "no-such-bus", &stored).await;
            match result {
                Err(_) => {}
                Ok(done) => {
                    assert_eq!(done.published, 0, "{done:?}");
                    assert_eq!(done.kept.len(), 1, "{done:?}");
                }
            }
            let left = list(&sqs, dlq).await.expect("list");
            assert_eq!(
                left.len(),
                1,
                "the message must stay until the bus accepts it"
            );
        }

        /// An event whose record landed before its invocation failed (say, on the audit write)
        /// must not be published again: a new envelope id would store it a second time.
        #[tokio::test]
        async fn redrive_drops_events_that_are_stored_already() {
            let (outputs, sqs, events) = stack().await;
            let dlq = &outputs.dlq_url;
            let dynamodb = aws_sdk_dynamodb::Client::new(&local_sdk_config(&endpoint()).await);
            put(
                &sqs,
                dlq,
                &destination_record(&trade("ev-stored", "AAPL")),
                &[],
            )
            .await;
            let letters = list(&sqs, dlq).await.expect("list");
            let event = letters[0].event.clone().expect("decodable");
            let stored = StoredCheck {
                dynamodb: &dynamodb,
                market_data_table: &outputs.market_data_table_name,
            };
            assert!(!stored.holds(&event).await.expect("lookup"));
            // The record the processor would have written for it.
            let rules = processor::event::Rules {
                accepted_sources: vec!["market.data".into()],
                max_future_skew_seconds: u32::MAX,
                max_event_age_seconds: u32::MAX,
            };
            let envelope = serde_json::json!({
                "id": "ev-stored", "source": event.source, "detail-type": event.detail_type,
                "time": event.time, "detail": serde_json::from_str::<serde_json::Value>(&event.detail).expect("detail"),
            })
            .to_string();
            let decoded =
                processor::event::decode(&envelope, &rules, chrono::Utc::now()).expect("valid");
            dynamodb
                .put_item()
                .table_name(&outputs.market_data_table_name)
                .set_item(Some(processor::item::record(
                    &decoded,
                    None,
                    chrono::Utc::now(),
                    "req",
                    30,
                )))
                .send()
                .await
                .expect("record");
            assert!(stored.holds(&event).await.expect("lookup"));

            let done = redrive(&sqs, &events, dlq, &outputs.event_bus_name, &stored)
                .await
                .expect("redrive");
            assert_eq!(
                (done.published, done.already_stored, done.deleted),
                (0, 1, 1),
                "{done:?}"
            );
            assert!(list(&sqs, dlq).await.expect("list").is_empty());
        }
    }
}
