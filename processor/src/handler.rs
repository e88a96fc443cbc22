//! One event in, one outcome out: decode, validate, store, audit.

use std::time::{Duration, Instant};

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
}

/// How a valid event ended in the store.
enum Stored {
    New { received_at: String },
    Duplicate { reason: String },
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
        };
        let store = Store::new(
            client,
            settings.market_data_table.clone(),
            settings.audit_trail_table.clone(),
        );
        Processor {
            settings,
            rules,
            store,
        }
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
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
    ) -> Result<Outcome, ProcessError> {
        let started = Instant::now();
        let received_at = Utc::now();
        let elapsed_ms = || started.elapsed().as_secs_f64() * 1000.0;
        let audit_ctx = |processing_ms| AuditContext {
            request_id,
            environment: &self.settings.environment,
            processing_ms,
        };

        let event = match event::decode(raw, &self.rules, received_at) {
            Ok(event) => event,
            Err(rejection) => {
                let reason = rejection.reason();
                let audit = item::audit_for_rejection(&rejection, raw, &audit_ctx(elapsed_ms()));
                self.audit(audit, rejection.envelope_id.as_deref(), Status::Rejected)
                    .await?;
                return Ok(self.finish(
                    Status::Rejected,
                    rejection.envelope_id,
                    rejection.detail_type,
                    reason,
                    request_id,
                    elapsed_ms(),
                ));
            }
        };

        let (status, reason) = match self.store_event(&event, received_at, request_id).await {
            Ok(Stored::New { received_at }) => {
                let audit = item::processed_audit(&event, &received_at, &audit_ctx(elapsed_ms()));
                self.audit(audit, Some(&event.envelope_id), Status::Processed)
                    .await?;
                (Status::Processed, "stored".to_string())
            }
            Ok(Stored::Duplicate { reason }) => {
                let audit = item::audit_for_event(
                    &event,
                    Status::Duplicate,
                    &reason,
                    &audit_ctx(elapsed_ms()),
                );
                self.audit(audit, Some(&event.envelope_id), Status::Duplicate)
                    .await?;
                (Status::Duplicate, reason)
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
                );
                return Err(ProcessError::Store {
                    event_id: event.envelope_id,
                    source,
                });
            }
        };
        Ok(self.finish(
            status,
            Some(event.envelope_id),
            Some(event.detail_type),
            reason,
            request_id,
            elapsed_ms(),
        ))
    }

    /// The guard (for trades with an id), then the record: the guard must be decided first,
    /// or a re-published trade could be stored before it is recognised.
    async fn store_event(
        &self,
        event: &MarketEvent,
        received_at: DateTime<Utc>,
        request_id: &str,
    ) -> Result<Stored, StoreError> {
        let ttl_days = self.settings.ttl_days;
        let dedupe_key = item::dedupe_key(event);
        if let Some(key) = &dedupe_key {
            let guard = item::guard(event, key, ttl_days);
            if let GuardOutcome::TakenBy { owner, timestamp } =
                self.store.claim_guard(guard, &event.envelope_id).await?
            {
                // A guard whose record never landed (its event failed, maybe to the DLQ) must
                // not swallow this copy: fail, so that it is retried or dead-lettered too.
                if !self.owner_stored(&owner, &timestamp).await? {
                    return Err(StoreError::Transient {
                        operation: "PutItem",
                        message: format!(
                            "trade already claimed by event {owner:?}, whose record is not stored (yet)"
                        ),
                    });
                }
                return Ok(Stored::Duplicate {
                    reason: format!("same trade as event {owner:?} (dedupe key {key})"),
                });
            }
        }
        let record = item::record(
            event,
            dedupe_key.as_deref(),
            received_at,
            request_id,
            ttl_days,
        );
        Ok(match self.store.put_record(record, request_id).await? {
            RecordOutcome::Stored { received_at } => Stored::New { received_at },
            RecordOutcome::Duplicate => Stored::Duplicate {
                reason: "already stored: same envelope id and event time".to_string(),
            },
        })
    }

    /// Whether the record behind a taken guard exists. Its owner may be between its guard and
    /// record writes right now, so a miss is re-read a few times before it counts.
    async fn owner_stored(&self, owner: &str, timestamp: &str) -> Result<bool, StoreError> {
        for delay_ms in [20, 80, 320] {
            if self.store.record_exists(owner, timestamp).await? {
                return Ok(true);
            }
            tokio::time::sleep(std::time::Duration::from_millis(delay_ms)).await;
        }
        self.store.record_exists(owner, timestamp).await
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
            .map_err(|source| ProcessError::Audit {
                event_id: event_id.unwrap_or_default().to_string(),
                status: status.as_str(),
                source,
            })
    }

    /// Logs and meters an outcome.
    fn finish(
        &self,
        status: Status,
        event_id: Option<String>,
        detail_type: Option<String>,
        reason: String,
        request_id: &str,
        processing_ms: f64,
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
        metrics::emit(&self.settings.environment, status, processing_ms);
        outcome
    }
}

/// The Lambda handler: a plain async fn over the typed invocation.
///
/// The payload is taken as raw JSON so that an event whose envelope does not decode is still
/// audited as REJECTED, with its bytes, instead of failing inside the runtime.
pub async fn handle(
    processor: &Processor,
    event: LambdaEvent<Box<RawValue>>,
) -> Result<Outcome, ProcessError> {
    processor
        .process_within(
            event.payload.get(),
            &event.context.request_id,
            Some(budget(event.context.deadline, std::time::SystemTime::now())),
        )
        .await
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
        let (ProcessError::Store { source, .. } | ProcessError::Audit { source, .. }) = self else {
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
