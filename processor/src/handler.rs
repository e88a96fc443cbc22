//! One event in, one outcome out: decode, validate, store, audit.

use std::time::Instant;

use aws_sdk_dynamodb::Client;
use chrono::Utc;
use lambda_runtime::LambdaEvent;
use serde::Serialize;
use serde_json::value::RawValue;
use thiserror::Error;

use crate::config::Settings;
use crate::event::{self, Rules};
use crate::item::{self, AuditContext, Status};
use crate::metrics;
use crate::store::{Store, StoreError, WriteOutcome};

/// Everything an invocation needs, built once at init and shared by every invocation.
#[derive(Clone)]
pub struct Processor {
    settings: Settings,
    rules: Rules,
    store: Store,
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
    pub async fn process(&self, raw: &str, request_id: &str) -> Result<Outcome, ProcessError> {
        let started = Instant::now();
        let received_at = Utc::now();
        let elapsed_ms = || started.elapsed().as_secs_f64() * 1000.0;
        let audit_ctx = |processing_ms| AuditContext {
            request_id,
            environment: &self.settings.environment,
            at: Utc::now(),
            processing_ms,
        };

        let event = match event::decode(raw, &self.rules, received_at) {
            Ok(event) => event,
            Err(rejection) => {
                let reason = rejection.reason();
                let audit = item::audit_for_rejection(&rejection, raw, &audit_ctx(elapsed_ms()));
                let event_id = rejection.envelope_id.clone();
                self.store
                    .write_audit(audit)
                    .await
                    .map_err(|source| ProcessError::Audit {
                        event_id: event_id.clone().unwrap_or_default(),
                        status: Status::Rejected.as_str(),
                        source,
                    })?;
                return Ok(self.finish(
                    Status::Rejected,
                    event_id,
                    rejection.detail_type,
                    reason,
                    request_id,
                    elapsed_ms(),
                ));
            }
        };

        let dedupe_key = item::dedupe_key(&event);
        let ttl_days = self.settings.ttl_days;
        let record = item::record(
            &event,
            dedupe_key.as_deref(),
            received_at,
            request_id,
            ttl_days,
        );
        let guard = dedupe_key
            .as_deref()
            .map(|key| item::guard(&event, key, ttl_days));
        let processed = item::audit_for_event(
            &event,
            Status::Processed,
            "stored",
            &audit_ctx(elapsed_ms()),
        );

        let (status, reason) = match self.store.write_processed(record, guard, processed).await {
            Ok(WriteOutcome::Stored) => (Status::Processed, "stored".to_string()),
            Ok(WriteOutcome::Duplicate) => {
                let reason = match &dedupe_key {
                    Some(key) => format!(
                        "already stored: same envelope id, or same trade (dedupe key {key})"
                    ),
                    None => "already stored: same envelope id and event time".to_string(),
                };
                let audit = item::audit_for_event(
                    &event,
                    Status::Duplicate,
                    &reason,
                    &audit_ctx(elapsed_ms()),
                );
                self.store
                    .write_audit(audit)
                    .await
                    .map_err(|source| ProcessError::Audit {
                        event_id: event.envelope_id.clone(),
                        status: Status::Duplicate.as_str(),
                        source,
                    })?;
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
        .process(event.payload.get(), &event.context.request_id)
        .await
}

impl ProcessError {
    /// The `errorType` Lambda records and the DLQ message carries.
    pub fn error_type(&self) -> &'static str {
        let (ProcessError::Store { source, .. } | ProcessError::Audit { source, .. }) = self;
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
