//! The local stand-in for Lambda's asynchronous invocation of the processor.
//!
//! The emulator's rules deliver matched events to an SQS queue; this runner takes each one,
//! hands it to the same `Processor::process` that the `bootstrap` binary calls, and applies the
//! stack's async-invoke semantics: on error, retry up to the configured count, then send the
//! event to the DLQ in the shape of Lambda's on-failure destination record.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use aws_sdk_sqs::Client as SqsClient;
use aws_sdk_sqs::types::DeleteMessageBatchRequestEntry;
use chrono::{SecondsFormat, Utc};
use processor::Processor;
use tokio::sync::watch;
use tokio::task::JoinSet;

/// Counters a progress line and the summary read while the runner works.
#[derive(Debug, Default)]
pub struct RunnerStats {
    pub invocations: AtomicU64,
    pub processed: AtomicU64,
    pub duplicate: AtomicU64,
    pub rejected: AtomicU64,
    pub failed_attempts: AtomicU64,
    pub dead_lettered: AtomicU64,
    pub redelivered: AtomicU64,
}

impl RunnerStats {
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

#[derive(Clone)]
pub struct Runner {
    pub sqs: SqsClient,
    pub delivery_queue_url: String,
    pub dlq_url: String,
    pub function_arn: String,
    pub processor: Processor,
    /// Lambda's `MaximumRetryAttempts` for asynchronous invocation (0–2).
    pub retries: u32,
    /// Delay before each retry. Lambda waits about a minute; locally that would only slow
    /// the run without changing the outcome.
    pub retry_delay: Duration,
    /// Per mille of events delivered a second time, as EventBridge and Lambda may do.
    pub redeliver_per_mille: u32,
    pub workers: usize,
    /// Messages each worker takes per receive, and so invokes at once (1-10).
    pub batch: i32,
    /// Time each invocation may take, as Lambda's timeout less the processor's deadline
    /// margin; none where the processor runs with the tool's patient timeouts.
    pub budget: Option<Duration>,
    pub stats: Arc<RunnerStats>,
}

impl Runner {
    /// Polls until `shutdown` turns true, then finishes the messages in hand.
    pub async fn run(self, shutdown: watch::Receiver<bool>) -> Result<()> {
        let mut workers = JoinSet::new();
        for _ in 0..self.workers.max(1) {
            let runner = self.clone();
            let shutdown = shutdown.clone();
            workers.spawn(async move { runner.poll(shutdown).await });
        }
        while let Some(joined) = workers.join_next().await {
            joined.context("runner worker panicked")??;
        }
        Ok(())
    }

    async fn poll(&self, shutdown: watch::Receiver<bool>) -> Result<()> {
        while !*shutdown.borrow() {
            let received = self
                .sqs
                .receive_message()
                .queue_url(&self.delivery_queue_url)
                .max_number_of_messages(self.batch.clamp(1, 10))
                .wait_time_seconds(1)
                .send()
                .await;
            let messages = match received {
                Ok(output) => output.messages.unwrap_or_default(),
                Err(err) => {
                    // The emulator going away is how `local down` ends a detached runner.
                    if *shutdown.borrow() {
                        break;
                    }
                    eprintln!(
                        "runner: receive failed: {}",
                        processor::aws::error_chain(&err)
                    );
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
            };
            if messages.is_empty() {
                continue;
            }
            let mut handled = JoinSet::new();
            for (i, message) in messages.into_iter().enumerate() {
                let receipt = message.receipt_handle;
                let body = message.body.unwrap_or_default();
                let runner = self.clone();
                handled.spawn(async move { (i, receipt, runner.deliver(body).await) });
            }
            // Only messages whose event is accounted for are deleted; any other comes back
            // after its visibility timeout, and the processor absorbs the repeat.
            let mut receipts = Vec::new();
            while let Some(joined) = handled.join_next().await {
                let (i, receipt, delivered) = joined.context("invocation task panicked")?;
                match (delivered, receipt) {
                    (Ok(()), Some(receipt)) => receipts.push(
                        DeleteMessageBatchRequestEntry::builder()
                            .id(i.to_string())
                            .receipt_handle(receipt)
                            .build()
                            .context("delete entry")?,
                    ),
                    (Ok(()), None) => {}
                    (Err(err), _) => eprintln!("runner: event left on the queue: {err:#}"),
                }
            }
            if receipts.is_empty() {
                continue;
            }
            // A failed delete only means a redelivery, which the processor absorbs.
            if let Err(err) = self
                .sqs
                .delete_message_batch()
                .queue_url(&self.delivery_queue_url)
                .set_entries(Some(receipts))
                .send()
                .await
            {
                eprintln!(
                    "runner: delivered messages not deleted: {}",
                    processor::aws::error_chain(&err)
                );
            }
        }
        Ok(())
    }

    /// One event delivery: an asynchronous invocation with retries, and maybe a second delivery.
    async fn deliver(&self, event: String) -> Result<()> {
        self.invoke(&event).await?;
        if self.redeliver_per_mille > 0
            && stable_hash(&event) % 1000 < u64::from(self.redeliver_per_mille)
        {
            self.stats.redelivered.fetch_add(1, Ordering::Relaxed);
            self.invoke(&event).await?;
        }
        Ok(())
    }

    async fn invoke(&self, event: &str) -> Result<()> {
        // Lambda keeps the request id across the retries of one asynchronous invocation.
        let request_id = uuid::Uuid::new_v4().to_string();
        let attempts = self.retries + 1;
        for attempt in 1..=attempts {
            self.stats.invocations.fetch_add(1, Ordering::Relaxed);
            match self
                .processor
                .process_within(event, &request_id, self.budget)
                .await
            {
                Ok(outcome) => {
                    let counter = match outcome.status {
                        "PROCESSED" => &self.stats.processed,
                        "DUPLICATE" => &self.stats.duplicate,
                        _ => &self.stats.rejected,
                    };
                    counter.fetch_add(1, Ordering::Relaxed);
                    return Ok(());
                }
                Err(err) => {
                    self.stats.failed_attempts.fetch_add(1, Ordering::Relaxed);
                    if attempt == attempts {
                        return self.dead_letter(event, &request_id, attempts, &err).await;
                    }
                    tokio::time::sleep(self.retry_delay * attempt).await;
                }
            }
        }
        Ok(())
    }

    async fn dead_letter(
        &self,
        event: &str,
        request_id: &str,
        attempts: u32,
        err: &processor::ProcessError,
    ) -> Result<()> {
        let payload: serde_json::Value =
            serde_json::from_str(event).unwrap_or_else(|_| serde_json::Value::String(event.into()));
        let record = serde_json::json!({
            "version": "1.0",
            "timestamp": Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
            "requestContext": {
                "requestId": request_id,
                "functionArn": self.function_arn,
                "condition": "RetriesExhausted",
                "approximateInvokeCount": attempts,
            },
            "requestPayload": payload,
            "responseContext": {
                "statusCode": 200,
                "executedVersion": "$LATEST",
                "functionError": "Unhandled",
            },
            "responsePayload": {"errorType": err.error_type(), "errorMessage": err.to_string()},
        });
        self.sqs
            .send_message()
            .queue_url(&self.dlq_url)
            .message_body(record.to_string())
            .send()
            .await
            .map_err(|e| crate::aws::sdk_error("SendMessage", e))
            .context("sending a failed event to the DLQ")?;
        self.stats.dead_lettered.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

/// A stable per-event number, so the same session redelivers the same events on every run.
fn stable_hash(text: &str) -> u64 {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(text.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::local::LocalStack;
    use crate::scenario::{self, Clients};

    /// An event the processor cannot store is retried the configured number of times and then
    /// lands in the DLQ with the error, as Lambda's on-failure destination puts it there.
    #[tokio::test]
    async fn failing_events_are_retried_then_dead_lettered_with_the_error() {
        let root = infra::workspace_root();
        let local = LocalStack::start(&root, "dev").await.expect("local stack");
        let mut runner = local.runner(0).expect("runner");
        let mut env: std::collections::HashMap<String, String> =
            local.model.function.env.clone().into_iter().collect();
        env.insert(
            names::ENV_MARKET_DATA_TABLE.into(),
            "market-data-missing".into(),
        );
        let settings = names::Settings::from_map(&env).expect("settings");
        runner.processor =
            processor::Processor::new(settings, processor::aws::dynamodb_client(&local.config));
        runner.retries = 2;
        runner.retry_delay = Duration::from_millis(1);

        let event = serde_json::json!({
            "version": "0", "id": "evt-doomed", "detail-type": "Market Quote",
            "source": "market.data", "time": processor::event::format_timestamp(Utc::now()),
            "detail": {"exchange": "NYSE", "symbol": "IBM", "bid": "1.5", "ask": "1.6"}
        })
        .to_string();
        runner.deliver(event).await.expect("delivered");

        assert_eq!(RunnerStats::get(&runner.stats.invocations), 3);
        assert_eq!(RunnerStats::get(&runner.stats.failed_attempts), 3);
        assert_eq!(RunnerStats::get(&runner.stats.dead_lettered), 1);
        let clients = Clients::for_stack(&local.outputs).await;
        let letters = scenario::peek_dlq(&clients, &local.outputs.dlq_url)
            .await
            .expect("dlq readable");
        assert_eq!(letters.len(), 1);
        assert_eq!(letters[0].event_id.as_deref(), Some("evt-doomed"));
        assert!(
            letters[0]
                .error
                .starts_with("StoreError: event \"evt-doomed\" not stored"),
            "{}",
            letters[0].error
        );
        assert!(
            letters[0].error.contains("market-data-missing")
                || letters[0].error.contains("ResourceNotFound"),
            "{}",
            letters[0].error
        );
    }
}
