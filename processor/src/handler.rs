//! One event in, one outcome out: decode, validate, store, audit.

use std::borrow::Cow;
use std::time::{Duration, Instant};

use aws_lambda_events::event::kinesis::KinesisEvent;
use aws_lambda_events::event::streams::KinesisEventResponse;
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Utc};
use lambda_runtime::LambdaEvent;
use serde::Serialize;
use serde_json::value::RawValue;
use thiserror::Error;

use crate::event::MarketEvent;
use crate::event::{self, Rules};
use crate::item::{self, AuditContext, Status};
use crate::metrics;
use crate::store::{GuardOutcome, RecordOutcome, Store, StoreError};
use names::Settings;

/// Everything an invocation needs, built once at init and shared by every invocation.
#[derive(Clone)]
pub struct Processor {
    settings: Settings,
    rules: Rules,
    store: Store,
    /// The latest-price write is returned to the caller instead of made (a Kinesis batch:
    /// [`Processor::process_batch`] writes the newest of each key once).
    defer_latest: bool,
}

/// One event's outcome, and the latest-price write it still owes when that is deferred.
pub(crate) struct Handled {
    pub outcome: Outcome,
    pub latest: Option<item::Latest>,
}

/// What an outcome tells the feed-health metrics.
struct Feed<'a> {
    /// As validated; `None` when the event was not readable that far.
    exchange: Option<&'a str>,
    event_type: &'static str,
    lag_ms: Option<i64>,
    reason_class: Option<&'static str>,
}

impl<'a> Feed<'a> {
    fn of(event: &'a MarketEvent, lag_ms: Option<i64>) -> Self {
        Feed {
            exchange: Some(&event.exchange),
            event_type: event.kind.as_str(),
            lag_ms,
            reason_class: None,
        }
    }
}

/// How a copy found the record key it was written under.
enum Via {
    /// Its own: the envelope id, or a redriven copy's original id.
    Envelope,
    /// A trade's dedupe guard, held by another copy of the trade.
    TradeGuard(String),
    /// A replayed copy's original, found by content under another id.
    Content,
    /// A replayed copy's guard, held by another replayed copy of the same archived event.
    ReplayGuard(String),
}

/// How a valid event ended in the store.
struct Stored<'a> {
    /// The event as its record holds it: the delivered event, or, for a trade whose first copy
    /// claimed the guard, that copy's id and event time.
    event: Cow<'a, MarketEvent>,
    /// The record's `received_at`, which keys its PROCESSED entry.
    received_at: String,
    /// This delivery wrote the record (else it was there already).
    new: bool,
    reason: String,
}

/// What happened to one event; returned to the caller and logged.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Outcome {
    pub status: &'static str,
    pub event_id: Option<String>,
    pub detail_type: Option<String>,
    pub reason: String,
    pub processing_ms: f64,
}

/// The invocation failed and must be retried (and, once retries are spent, dead-lettered).
#[derive(Debug, Error)]
pub enum ProcessError {
    #[error("event {event_id:?} not stored: {source}")]
    Store {
        event_id: String,
        #[source]
        source: StoreError,
    },
    #[error("event {event_id:?} stored, but its latest-price view not updated: {source}")]
    Latest {
        event_id: String,
        #[source]
        source: StoreError,
    },
    #[error("event {event_id:?} not audited as {status}: {source}")]
    Audit {
        event_id: String,
        status: &'static str,
        #[source]
        source: StoreError,
    },
    /// The invocation's time ran out before the event was accounted for. Every write is
    /// idempotent, so the retry picks up where this one stopped.
    #[error(
        "gave up after {budget_ms} ms, {margin_ms} ms before the Lambda timeout, with the event \
         not yet accounted for (DynamoDB too slow); it will be retried"
    )]
    Deadline { budget_ms: u128, margin_ms: u128 },
}

impl Processor {
    pub fn new(settings: Settings, client: Client) -> Self {
        let rules = Rules {
            accepted_sources: settings.accepted_sources.clone(),
            max_future_skew_seconds: settings.max_future_skew_seconds,
            max_event_age_seconds: settings.max_event_age_seconds,
            // A replayed event is as old as the range replayed; it is refused only once its
            // record would be stored with less than a day to live (its TTL runs from the event
            // time), so an archive kept up to `ttl_days - 1` days can always be replayed.
            replay_max_age_seconds: Some(settings.ttl_days.saturating_sub(1) * 86_400),
        };
        let store = Store::new(
            client,
            settings.market_data_table.clone(),
            settings.audit_trail_table.clone(),
            settings.latest_table.clone(),
            settings.index_buckets,
        );
        Processor {
            settings,
            rules,
            store,
            defer_latest: false,
        }
    }

    /// This processor, writing its items the way the stream path indexes them
    /// ([`names::Ingest`]), refusing `replay-name` (only EventBridge replays), and leaving the
    /// latest-price writes to the batch, which makes one per key and view.
    pub fn streamed(&self) -> Processor {
        Processor {
            store: self.store.streamed(),
            rules: Rules {
                replay_max_age_seconds: None,
                ..self.rules.clone()
            },
            defer_latest: true,
            ..self.clone()
        }
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub(crate) fn store(&self) -> &Store {
        &self.store
    }

    /// See [`Store::warm_up`].
    pub async fn warm_up(&self) -> Result<(), StoreError> {
        self.store.warm_up().await
    }

    /// Processes one EventBridge event given as raw JSON.
    ///
    /// `Ok` means the event is accounted for (stored, duplicate or rejected, each audited);
    /// `Err` means it is not, and the caller must retry it or dead-letter it.
    ///
    /// Every step can be repeated safely: the guard and record writes are conditional and
    /// recognise this invocation's own earlier attempt by envelope id and request id, and the
    /// PROCESSED entry has a key derived from the record. A retry after a lost reply or a
    /// crash therefore completes the work instead of duplicating it.
    pub async fn process(&self, raw: &str, request_id: &str) -> Result<Outcome, ProcessError> {
        self.process_within(raw, request_id, None).await
    }

    /// [`process`](Self::process), giving up once `budget` has passed: an invocation must end
    /// on its own, with an error Lambda retries, rather than be killed at its timeout.
    pub async fn process_within(
        &self,
        raw: &str,
        request_id: &str,
        budget: Option<Duration>,
    ) -> Result<Outcome, ProcessError> {
        self.handle_within(raw, request_id, budget)
            .await
            .map(|handled| handled.outcome)
    }

    /// [`process_within`](Self::process_within), with the latest-price write it owes when this
    /// processor defers them.
    pub(crate) async fn handle_within(
        &self,
        raw: &str,
        request_id: &str,
        budget: Option<Duration>,
    ) -> Result<Handled, ProcessError> {
        let Some(budget) = budget else {
            return self.process_unbounded(raw, request_id).await;
        };
        match tokio::time::timeout(budget, self.process_unbounded(raw, request_id)).await {
            Ok(result) => result,
            Err(_) => {
                let err = ProcessError::Deadline {
                    budget_ms: budget.as_millis(),
                    margin_ms: names::limits::DEADLINE_MARGIN.as_millis(),
                };
                tracing::error!(request_id, error = %err, "invocation out of time");
                Err(err)
            }
        }
    }

    async fn process_unbounded(
        &self,
        raw: &str,
        request_id: &str,
    ) -> Result<Handled, ProcessError> {
        let started = Instant::now();
        let received_at = Utc::now();
        let elapsed_ms = || started.elapsed().as_secs_f64() * 1000.0;
        let audit_ctx = |processing_ms| AuditContext {
            request_id,
            environment: &self.settings.environment,
            processing_ms,
            retention_days: self.settings.audit_retention_days,
        };

        let event = match event::decode(raw, &self.rules, received_at) {
            Ok(event) => event,
            Err(rejection) => {
                return self
                    .reject(rejection, raw, request_id, started)
                    .await
                    .map(|outcome| Handled {
                        outcome,
                        latest: None,
                    });
            }
        };

        let owed;
        let (status, reason) = match self.store_event(&event, received_at, request_id).await {
            Ok(stored) => {
                let processed = item::processed_audit(
                    &stored.event,
                    &stored.received_at,
                    &audit_ctx(elapsed_ms()),
                );
                // Written on duplicates too: the copy that stored the record may have failed
                // before its latest write, and the write is conditional on being newer.
                let latest = item::latest(&stored.event, self.settings.ttl_days);
                let latest_write = async {
                    match latest {
                        Some(latest) if !self.defer_latest => self
                            .store
                            .put_latest(latest)
                            .await
                            .map(|_| None)
                            .map_err(|source| ProcessError::Latest {
                                event_id: event.record_id.clone(),
                                source,
                            }),
                        deferred => Ok(deferred),
                    }
                };
                if stored.new {
                    let (audit, latest) = tokio::join!(
                        self.audit(processed, Some(&event.record_id), Status::Processed),
                        latest_write
                    );
                    audit?;
                    owed = latest?;
                    (Status::Processed, stored.reason)
                } else {
                    // The record's own invocation may have failed after storing it (its PROCESSED
                    // write ran out of retries): every later copy writes that entry if it is
                    // missing. Its key is the record's, so this never makes a second one.
                    let duplicate = item::audit_for_event(
                        &event,
                        Status::Duplicate,
                        &stored.reason,
                        &audit_ctx(elapsed_ms()),
                    );
                    let (backfill, audit, latest) = tokio::join!(
                        self.store.backfill_audit(processed),
                        self.store.write_audit(duplicate),
                        latest_write
                    );
                    for (result, status) in
                        [(backfill, Status::Processed), (audit, Status::Duplicate)]
                    {
                        result.map_err(audit_failed(Some(&event.record_id), status))?;
                    }
                    owed = latest?;
                    (Status::Duplicate, stored.reason)
                }
            }
            Err(source) => {
                let reason = source.to_string();
                let audit = item::audit_for_event(
                    &event,
                    Status::Failed,
                    &reason,
                    &audit_ctx(elapsed_ms()),
                );
                // Best effort: the store is failing, and the event is safe in Lambda's retry
                // and DLQ path whether or not this entry lands.
                if let Err(audit_err) = self.store.write_audit(audit).await {
                    tracing::warn!(event_id = %event.envelope_id, error = %audit_err, "FAILED audit not written");
                }
                self.finish(
                    Status::Failed,
                    Some(event.envelope_id.clone()),
                    Some(event.detail_type.clone()),
                    reason,
                    request_id,
                    elapsed_ms(),
                    Feed::of(&event, None),
                );
                return Err(ProcessError::Store {
                    event_id: event.envelope_id,
                    source,
                });
            }
        };
        Ok(Handled {
            outcome: {
                let lag = (status == Status::Processed).then(|| {
                    Utc::now()
                        .signed_duration_since(event.event_time)
                        .num_milliseconds()
                });
                let feed = Feed::of(&event, lag);
                self.finish(
                    status,
                    Some(event.envelope_id.clone()),
                    Some(event.detail_type.clone()),
                    reason,
                    request_id,
                    elapsed_ms(),
                    feed,
                )
            },
            latest: owed,
        })
    }

    /// Audits `rejection` of `raw` as REJECTED; `Err` only when that entry cannot be written.
    pub(crate) async fn reject(
        &self,
        rejection: event::Rejection,
        raw: &str,
        request_id: &str,
        started: Instant,
    ) -> Result<Outcome, ProcessError> {
        let elapsed_ms = || started.elapsed().as_secs_f64() * 1000.0;
        let reason = rejection.reason();
        let ctx = AuditContext {
            request_id,
            environment: &self.settings.environment,
            processing_ms: elapsed_ms(),
            retention_days: self.settings.audit_retention_days,
        };
        let audit = item::audit_for_rejection(&rejection, raw, &ctx);
        self.audit(audit, rejection.envelope_id.as_deref(), Status::Rejected)
            .await?;
        let feed = Feed {
            exchange: None,
            event_type: rejection
                .kind
                .map_or(item::UNKNOWN_EVENT_TYPE, |k| k.as_str()),
            lag_ms: None,
            reason_class: Some(rejection.class()),
        };
        Ok(self.finish(
            Status::Rejected,
            rejection.envelope_id,
            rejection.detail_type,
            reason,
            request_id,
            elapsed_ms(),
            feed,
        ))
    }

    /// The guard (for trades with an id), then the record: the guard must be decided first,
    /// or a re-published trade could be stored before it is recognised.
    async fn store_event<'a>(
        &self,
        event: &'a MarketEvent,
        received_at: DateTime<Utc>,
        request_id: &str,
    ) -> Result<Stored<'a>, StoreError> {
        let ttl_days = self.settings.ttl_days;
        let dedupe_key = item::dedupe_key(event);
        let mut stored_as = Cow::Borrowed(event);
        let mut via = Via::Envelope;
        if let Some(key) = &dedupe_key {
            let guard = item::guard(event, key, ttl_days);
            if let GuardOutcome::TakenBy { owner, timestamp } =
                self.store.claim_guard(guard, &event.record_id).await?
            {
                // Another copy of this trade holds the guard. Its record may be stored, or may
                // never land (that copy failed, maybe to the DLQ). Either way this copy writes
                // under the owner's key, with the same conditional put: if the record is there
                // it is a duplicate, if not this copy stores the trade in the owner's place.
                // The owner's own retry or redrive then meets that record. One key, so however
                // many copies race, one record.
                stored_as = Cow::Owned(adopt(event, owner, &timestamp)?);
                via = Via::TradeGuard(key.clone());
            }
        } else if event.replay_name.is_some() {
            // EventBridge does not say that a replayed event keeps its envelope id, so a replayed
            // copy finds its original by content; if there is none (the original was rejected,
            // or never came), the copies of the archived event share one guard, as a trade's
            // copies share theirs.
            let probe = item::record(event, None, received_at, request_id, ttl_days);
            if let Some(owner) = self.store.find_same(&probe).await? {
                if owner != event.record_id {
                    stored_as = Cow::Owned(adopt(event, owner, &event.timestamp_key())?);
                    via = Via::Content;
                }
            } else {
                let key = item::replay_key(event);
                let guard = item::guard(event, &key, ttl_days);
                if let GuardOutcome::TakenBy { owner, timestamp } =
                    self.store.claim_guard(guard, &event.record_id).await?
                {
                    stored_as = Cow::Owned(adopt(event, owner, &timestamp)?);
                    via = Via::ReplayGuard(key);
                }
            }
        }
        let record = item::record(
            &stored_as,
            dedupe_key.as_deref(),
            received_at,
            request_id,
            ttl_days,
        );
        let owner = stored_as.record_id.clone();
        Ok(match self.store.put_record(record, request_id).await? {
            RecordOutcome::Stored { received_at } => Stored {
                reason: match via {
                    Via::Envelope | Via::Content => "stored".to_string(),
                    Via::TradeGuard(_) => format!(
                        "stored under event {owner:?}, the trade's first copy, whose own record \
                         had not landed"
                    ),
                    Via::ReplayGuard(_) => format!(
                        "stored under event {owner:?}, the first replayed copy of this archived \
                         event, whose own record had not landed"
                    ),
                },
                event: stored_as,
                received_at,
                new: true,
            },
            RecordOutcome::Duplicate { received_at } => Stored {
                reason: match via {
                    Via::Envelope => "already stored: same envelope id and event time".to_string(),
                    Via::TradeGuard(key) => {
                        format!("same trade as event {owner:?} (dedupe key {key})")
                    }
                    Via::Content => format!(
                        "replayed under a new id; same event as stored event {owner:?} (same \
                         content at the same event time)"
                    ),
                    Via::ReplayGuard(key) => format!(
                        "replayed copy of the same archived event as event {owner:?} (replay key \
                         {key})"
                    ),
                },
                event: stored_as,
                received_at,
                new: false,
            },
        })
    }

    async fn audit(
        &self,
        audit: item::Item,
        event_id: Option<&str>,
        status: Status,
    ) -> Result<(), ProcessError> {
        self.store
            .write_audit(audit)
            .await
            .map_err(audit_failed(event_id, status))
    }

    /// Logs and meters an outcome.
    #[allow(clippy::too_many_arguments)]
    fn finish(
        &self,
        status: Status,
        event_id: Option<String>,
        detail_type: Option<String>,
        reason: String,
        request_id: &str,
        processing_ms: f64,
        feed: Feed,
    ) -> Outcome {
        let outcome = Outcome {
            status: status.as_str(),
            event_id,
            detail_type,
            reason,
            processing_ms,
        };
        tracing::info!(
            request_id,
            event_id = outcome.event_id.as_deref().unwrap_or(""),
            detail_type = outcome.detail_type.as_deref().unwrap_or(""),
            outcome = outcome.status,
            latency_ms = processing_ms,
            reason = %outcome.reason,
            "event handled"
        );
        let exchange = feed
            .exchange
            .filter(|exchange| self.settings.metric_exchanges.iter().any(|e| e == exchange))
            .unwrap_or(names::METRIC_OTHER_EXCHANGE);
        metrics::emit(
            &self.settings.environment,
            &metrics::Sample {
                status,
                processing_ms,
                exchange,
                event_type: feed.event_type,
                lag_ms: feed.lag_ms,
                reason_class: feed.reason_class,
            },
        );
        outcome
    }
}

/// The invocation's error when the `status` entry of `event_id` could not be written.
fn audit_failed(event_id: Option<&str>, status: Status) -> impl FnOnce(StoreError) -> ProcessError {
    let event_id = event_id.unwrap_or_default().to_string();
    move |source| ProcessError::Audit {
        event_id,
        status: status.as_str(),
        source,
    }
}

/// `event` as the trade's first copy `owner` would have stored it: same content, the owner's id
/// and event time (the guard holds both).
fn adopt(event: &MarketEvent, owner: String, timestamp: &str) -> Result<MarketEvent, StoreError> {
    let corrupt = || StoreError::Permanent {
        operation: "PutItem",
        message: format!(
            "the dedupe guard of trade event {:?} names no usable record (owner {owner:?}, \
             timestamp {timestamp:?})",
            event.envelope_id
        ),
    };
    if owner.is_empty() {
        return Err(corrupt());
    }
    let event_time = DateTime::parse_from_rfc3339(timestamp)
        .map_err(|_| corrupt())?
        .with_timezone(&Utc);
    let mut adopted = event.clone();
    adopted.record_id = owner;
    adopted.event_time = event_time;
    Ok(adopted)
}

/// What an invocation returns: the outcome of one EventBridge event, or, for a Kinesis batch,
/// the records Lambda must retry.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Reply {
    Event(Outcome),
    Batch(KinesisEventResponse),
}

/// Just enough of a payload to tell a Kinesis batch (`{"Records": [...]}`) from an event: an
/// EventBridge envelope has no `Records` field.
#[derive(serde::Deserialize)]
struct Shape {
    #[serde(rename = "Records")]
    records: Option<serde::de::IgnoredAny>,
}

/// The Lambda handler: a plain async fn over the typed invocation.
///
/// The payload is taken as raw JSON so that an event whose envelope does not decode is still
/// audited as REJECTED, with its bytes, instead of failing inside the runtime. A payload with
/// `Records` that is not a Kinesis batch is handled as an event, and so rejected and audited.
pub async fn handle(
    processor: &Processor,
    event: LambdaEvent<Box<RawValue>>,
) -> Result<Reply, ProcessError> {
    let raw = event.payload.get();
    let budget = Some(budget(event.context.deadline, std::time::SystemTime::now()));
    let request_id = &event.context.request_id;
    let is_batch = serde_json::from_str::<Shape>(raw).is_ok_and(|shape| shape.records.is_some());
    if is_batch && let Ok(batch) = serde_json::from_str::<KinesisEvent>(raw) {
        let (response, _) = processor.process_batch(&batch, request_id, budget).await;
        return Ok(Reply::Batch(response));
    }
    processor
        .process_within(raw, request_id, budget)
        .await
        .map(Reply::Event)
}

/// The [`invocation_budget`](names::limits::invocation_budget) for Lambda's deadline
/// (`deadline_ms`, milliseconds since the epoch); zero when the deadline has passed.
pub fn budget(deadline_ms: u64, now: std::time::SystemTime) -> Duration {
    let deadline = std::time::UNIX_EPOCH + Duration::from_millis(deadline_ms);
    names::limits::invocation_budget(deadline.duration_since(now).unwrap_or_default())
}

impl ProcessError {
    /// The `errorType` Lambda records and the DLQ message carries.
    pub fn error_type(&self) -> &'static str {
        let (ProcessError::Store { source, .. }
        | ProcessError::Audit { source, .. }
        | ProcessError::Latest { source, .. }) = self
        else {
            return "DeadlineExceeded";
        };
        match source {
            StoreError::Transient { .. } => "TransientStoreError",
            StoreError::Permanent { .. } => "StoreError",
        }
    }
}

impl From<ProcessError> for lambda_runtime::Diagnostic {
    fn from(err: ProcessError) -> Self {
        lambda_runtime::Diagnostic {
            error_type: err.error_type().to_string(),
            error_message: err.to_string(),
        }
    }
}
