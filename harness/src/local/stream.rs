//! The local stand-in for Lambda's Kinesis event source mapping.
//!
//! One poller per shard reads from the oldest record (`TRIM_HORIZON`, as the mapping does),
//! hands each batch to the same `Processor::process_batch` the `bootstrap` binary calls, and
//! applies what Lambda documents for a mapping with `ReportBatchItemFailures`:
//! - an empty `batchItemFailures` checkpoints the whole batch;
//! - otherwise the batch is retried from the lowest sequence number reported (records after it
//!   that were accounted for come again, which the processor recognises);
//! - a complete failure (a function error, or an identifier that is not in the batch) retries
//!   the whole batch, split in two first when `bisect_batch_on_function_error` is set (a split
//!   does not count as a retry);
//! - when the retries are spent or the oldest record is past `maximum_record_age_seconds`, the
//!   records are sent to the on-failure destination, as a record naming the shard and sequence
//!   numbers (not the data), and skipped.
//!
//! Not emulated: the batching window (a batch is what one GetRecords returns), and the
//! parallelization factor (one batch per shard at a time, which keeps every key in order just
//! the same).

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use aws_sdk_kinesis::types::ShardIteratorType;
use chrono::{DateTime, SecondsFormat, Utc};
use infra::model::MappingSpec;
use processor::Processor;
use processor::batch::KinesisEventRecord;
use tokio::sync::watch;
use tokio::task::JoinSet;

/// How long a caught-up shard waits before it reads again.
const IDLE_POLL: Duration = Duration::from_millis(200);

/// Counters the progress lines, the drain and the summary read.
#[derive(Debug, Default)]
pub struct StreamStats {
    pub shards: AtomicUsize,
    /// Shards whose last read found nothing new, with no batch in hand.
    pub idle_shards: AtomicUsize,
    pub records_read: AtomicU64,
    pub invocations: AtomicU64,
    pub retried_batches: AtomicU64,
    pub bisected_batches: AtomicU64,
    pub redelivered_batches: AtomicU64,
    pub dead_lettered_records: AtomicU64,
    pub letters: AtomicU64,
}

impl StreamStats {
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    /// Every shard has read all there is and holds nothing.
    pub fn idle(&self) -> bool {
        let shards = self.shards.load(Ordering::Relaxed);
        shards > 0 && self.idle_shards.load(Ordering::Relaxed) == shards
    }
}

#[derive(Clone)]
pub struct StreamRunner {
    pub kinesis: aws_sdk_kinesis::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub stream_name: String,
    pub stream_arn: String,
    pub dlq_url: String,
    pub function_arn: String,
    pub processor: Processor,
    pub mapping: MappingSpec,
    /// Delay before a retry; Lambda's backoff would only slow the run without changing it.
    pub retry_delay: Duration,
    /// Per mille of batches invoked a second time, as Lambda may.
    pub redeliver_per_mille: u32,
    pub budget: Option<Duration>,
    pub stats: Arc<StreamStats>,
}

/// A batch Lambda still has to get accounted for, and the retries it has had.
struct Pending {
    records: Vec<KinesisEventRecord>,
    retries: u32,
}

impl StreamRunner {
    /// Reads every shard until `shutdown` turns true and the shard is caught up.
    pub async fn run(self, shutdown: watch::Receiver<bool>) -> Result<()> {
        let shards = self
            .kinesis
            .list_shards()
            .stream_name(&self.stream_name)
            .send()
            .await
            .map_err(|e| crate::aws::sdk_error("ListShards", e))?
            .shards
            .unwrap_or_default();
        self.stats.shards.store(shards.len(), Ordering::Relaxed);
        let mut pollers = JoinSet::new();
        for shard in shards {
            let runner = self.clone();
            let shutdown = shutdown.clone();
            pollers.spawn(async move { runner.poll(shard.shard_id, shutdown).await });
        }
        while let Some(joined) = pollers.join_next().await {
            joined.context("stream poller panicked")??;
        }
        Ok(())
    }

    async fn poll(&self, shard: String, shutdown: watch::Receiver<bool>) -> Result<()> {
        let mut iterator = self
            .kinesis
            .get_shard_iterator()
            .stream_name(&self.stream_name)
            .shard_id(&shard)
            .shard_iterator_type(ShardIteratorType::TrimHorizon)
            .send()
            .await
            .map_err(|e| crate::aws::sdk_error("GetShardIterator", e))?
            .shard_iterator;
        let mut idle = false;
        let set_idle = |now: bool, was: &mut bool| {
            if now != *was {
                if now {
                    self.stats.idle_shards.fetch_add(1, Ordering::Relaxed);
                } else {
                    self.stats.idle_shards.fetch_sub(1, Ordering::Relaxed);
                }
                *was = now;
            }
        };
        while let Some(current) = iterator.take() {
            let read = self
                .kinesis
                .get_records()
                .shard_iterator(&current)
                .limit(i32::try_from(self.mapping.config.batch_size).unwrap_or(10_000))
                .send()
                .await;
            let output = match read {
                Ok(output) => output,
                Err(err) => {
                    if *shutdown.borrow() {
                        break;
                    }
                    eprintln!(
                        "stream runner: GetRecords on {shard} failed: {}",
                        processor::aws::error_chain(&err)
                    );
                    tokio::time::sleep(IDLE_POLL).await;
                    iterator = Some(current);
                    continue;
                }
            };
            iterator = output.next_shard_iterator;
            if output.records.is_empty() {
                set_idle(true, &mut idle);
                if *shutdown.borrow() {
                    break;
                }
                tokio::time::sleep(IDLE_POLL).await;
                continue;
            }
            set_idle(false, &mut idle);
            let records = output
                .records
                .iter()
                .map(|r| {
                    crate::stream::record(
                        &shard,
                        &r.sequence_number,
                        r.partition_key.as_deref().unwrap_or_default(),
                        r.data.as_ref(),
                        &self.stream_arn,
                        r.approximate_arrival_timestamp
                            .and_then(|t| DateTime::from_timestamp_millis(t.to_millis().ok()?))
                            .unwrap_or_else(Utc::now),
                    )
                })
                .collect::<Result<Vec<_>>>()?;
            self.stats
                .records_read
                .fetch_add(records.len() as u64, Ordering::Relaxed);
            self.deliver(&shard, records).await?;
        }
        set_idle(true, &mut idle);
        Ok(())
    }

    /// One batch until every record is accounted for or sent to the DLQ.
    async fn deliver(&self, shard: &str, records: Vec<KinesisEventRecord>) -> Result<()> {
        let mut pending = VecDeque::from([Pending {
            records,
            retries: 0,
        }]);
        while let Some(Pending { records, retries }) = pending.pop_front() {
            let mut outcome = self.invoke(&records).await;
            if self.redeliver_per_mille > 0 && redelivered(&records, self.redeliver_per_mille) {
                // Lambda may invoke with the same batch again; that invocation's answer is the
                // one the checkpoint follows.
                self.stats
                    .redelivered_batches
                    .fetch_add(1, Ordering::Relaxed);
                outcome = self.invoke(&records).await;
            }
            let rest = match outcome {
                Invocation::Done => continue,
                Invocation::Partial(from) => records[from..].to_vec(),
                Invocation::Failed => {
                    if self.mapping.config.bisect_batch_on_function_error && records.len() > 1 {
                        self.stats.bisected_batches.fetch_add(1, Ordering::Relaxed);
                        let (first, second) = records.split_at(records.len() / 2);
                        pending.push_front(Pending {
                            records: second.to_vec(),
                            retries,
                        });
                        pending.push_front(Pending {
                            records: first.to_vec(),
                            retries,
                        });
                        continue;
                    }
                    records
                }
            };
            let oldest = rest
                .first()
                .map(|r| r.kinesis.approximate_arrival_timestamp.0)
                .unwrap_or_else(Utc::now);
            let age = (Utc::now() - oldest).num_seconds();
            let condition = if age > i64::from(self.mapping.config.maximum_record_age_seconds) {
                Some("RecordAgeExceeded")
            } else if retries >= self.mapping.config.maximum_retry_attempts {
                Some("RetryAttemptsExhausted")
            } else {
                None
            };
            match condition {
                Some(condition) => {
                    self.dead_letter(shard, &rest, condition, retries + 1)
                        .await?
                }
                None => {
                    self.stats.retried_batches.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(self.retry_delay * (retries + 1)).await;
                    pending.push_front(Pending {
                        records: rest,
                        retries: retries + 1,
                    });
                }
            }
        }
        Ok(())
    }

    async fn invoke(&self, records: &[KinesisEventRecord]) -> Invocation {
        self.stats.invocations.fetch_add(1, Ordering::Relaxed);
        let request_id = uuid::Uuid::new_v4().to_string();
        let batch = crate::stream::batch(records.to_vec());
        // A panic is a function error, as it is in Lambda (the runtime reports it).
        let processor = self.processor.clone();
        let budget = self.budget;
        let handled =
            tokio::spawn(
                async move { processor.process_batch(&batch, &request_id, budget).await.0 },
            )
            .await;
        let Ok(response) = handled else {
            return Invocation::Failed;
        };
        let failed: Vec<&str> = response
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.as_deref().unwrap_or(""))
            .collect();
        if failed.is_empty() {
            return Invocation::Done;
        }
        let positions: Option<Vec<usize>> = failed
            .iter()
            .map(|id| {
                records
                    .iter()
                    .position(|r| r.kinesis.sequence_number == *id)
            })
            .collect();
        match positions.and_then(|p| p.into_iter().min()) {
            Some(lowest) => Invocation::Partial(lowest),
            // Lambda treats an identifier it cannot find as a failure of the whole batch.
            None => Invocation::Failed,
        }
    }

    /// The on-failure destination record of a Kinesis mapping: where the records are, not the
    /// records (`docs/recovery.md` on how a redrive reads them back).
    async fn dead_letter(
        &self,
        shard: &str,
        records: &[KinesisEventRecord],
        condition: &str,
        invocations: u32,
    ) -> Result<()> {
        let (Some(first), Some(last)) = (records.first(), records.last()) else {
            return Ok(());
        };
        let arrival = |r: &KinesisEventRecord| -> String {
            let at: DateTime<Utc> = r.kinesis.approximate_arrival_timestamp.0;
            at.to_rfc3339_opts(SecondsFormat::Millis, true)
        };
        let letter = serde_json::json!({
            "version": "1.0",
            "timestamp": Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
            "requestContext": {
                "requestId": uuid::Uuid::new_v4().to_string(),
                "functionArn": self.function_arn,
                "condition": condition,
                "approximateInvokeCount": invocations,
            },
            "responseContext": {
                "statusCode": 200,
                "executedVersion": "$LATEST",
                "functionError": "",
            },
            "KinesisBatchInfo": {
                "shardId": shard,
                "startSequenceNumber": first.kinesis.sequence_number,
                "endSequenceNumber": last.kinesis.sequence_number,
                "approximateArrivalOfFirstRecord": arrival(first),
                "approximateArrivalOfLastRecord": arrival(last),
                "batchSize": records.len(),
                "streamArn": self.stream_arn,
            },
        });
        self.sqs
            .send_message()
            .queue_url(&self.dlq_url)
            .message_body(letter.to_string())
            .send()
            .await
            .map_err(|e| crate::aws::sdk_error("SendMessage", e))
            .context("sending failed stream records to the DLQ")?;
        self.stats.letters.fetch_add(1, Ordering::Relaxed);
        self.stats
            .dead_lettered_records
            .fetch_add(records.len() as u64, Ordering::Relaxed);
        Ok(())
    }
}

enum Invocation {
    Done,
    /// Retry from this position of the batch.
    Partial(usize),
    Failed,
}

/// Whether this batch is the one in `per_mille` that Lambda hands over twice; stable per batch.
fn redelivered(records: &[KinesisEventRecord], per_mille: u32) -> bool {
    use sha2::{Digest, Sha256};
    let mut digest = Sha256::new();
    for record in records {
        digest.update(record.kinesis.sequence_number.as_bytes());
    }
    let digest = digest.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first) % 1000 < u64::from(per_mille)
}

/// A runner for `model`'s stream, as the local stack provisioned it.
pub fn stream_runner(
    config: &aws_config::SdkConfig,
    model: &infra::model::Model,
    outputs: &infra::outputs::Outputs,
    processor: Processor,
    redeliver_per_mille: u32,
) -> Result<Option<StreamRunner>> {
    let Some(kinesis) = &model.kinesis else {
        return Ok(None);
    };
    let stream_name = outputs
        .kinesis_stream_name
        .clone()
        .ok_or_else(|| anyhow!("the stack has a stream but its outputs name none"))?;
    Ok(Some(StreamRunner {
        kinesis: aws_sdk_kinesis::Client::new(config),
        sqs: aws_sdk_sqs::Client::new(config),
        stream_name,
        stream_arn: outputs.kinesis_stream_arn.clone().unwrap_or_default(),
        dlq_url: outputs.dlq_url.clone(),
        function_arn: outputs.lambda_function_arn.clone(),
        processor,
        mapping: kinesis.mapping.clone(),
        retry_delay: Duration::from_millis(100),
        redeliver_per_mille,
        budget: None,
        stats: Arc::new(StreamStats::default()),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::faults::{FaultProxy, Writes};
    use crate::stream::{Entry, put_records};
    use infra::model::Model;
    use infra::stack::StackConfig;

    /// dev with the stream path, under a fresh suffix so tests share the one server.
    fn model() -> Model {
        let root = infra::workspace_root();
        let mut config = StackConfig::load(&root, "dev").expect("dev loads");
        config.kinesis = Some(infra::stack::KinesisConfig {
            publish: vec![infra::stack::EventClass::Quote],
            stream: infra::stack::StreamConfig {
                capacity_mode: infra::stack::StreamMode::OnDemand,
                shard_count: None,
                retention_hours: 168,
            },
            mapping: infra::stack::MappingConfig {
                batch_size: 25,
                maximum_batching_window_seconds: 0,
                parallelization_factor: 1,
                bisect_batch_on_function_error: true,
                maximum_record_age_seconds: 3600,
                maximum_retry_attempts: 2,
                concurrent_keys: 8,
            },
        });
        config.environment = format!("s{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
        Model::from_stack(&config)
    }

    fn quotes(count: usize) -> Vec<(String, Entry)> {
        let time = processor::event::format_timestamp(Utc::now());
        (0..count)
            .map(|n| {
                let id = format!("sq-{n:03}");
                let symbol = ["IBM", "GE", "KO", "T"][n % 4];
                let detail = format!(
                    r#"{{"exchange":"NYSE","symbol":"{symbol}","bid":"{n}.5","ask":"{n}.75"}}"#
                );
                let sample = crate::session::SampleEvent::stored(names::MARKET_QUOTE, detail);
                let entry = Entry {
                    partition_key: crate::stream::partition_key(&sample.detail, &id),
                    data: sample.envelope(&id, &time).into_bytes(),
                };
                (id, entry)
            })
            .collect()
    }

    async fn run_until_idle(runner: StreamRunner) -> Arc<StreamStats> {
        let stats = runner.stats.clone();
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(runner.run(stopped));
        let started = std::time::Instant::now();
        while !stats.idle() || StreamStats::get(&stats.records_read) == 0 {
            assert!(started.elapsed() < Duration::from_secs(120), "{stats:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let _ = stop.send(true);
        task.await.expect("runner task").expect("runner ran");
        stats
    }

    async fn stack() -> (Model, infra::outputs::Outputs, aws_config::SdkConfig) {
        let moto = crate::moto::shared();
        let sdk = crate::aws::local_sdk_config(&moto.endpoint).await;
        let model = model();
        let outputs = crate::local::provision::provision(&sdk, &model, &moto.endpoint)
            .await
            .expect("provisioned");
        (model, outputs, sdk)
    }

    fn processor_for(model: &Model, client: aws_sdk_dynamodb::Client) -> Processor {
        let env: std::collections::HashMap<String, String> =
            model.function.env.clone().into_iter().collect();
        Processor::new(names::Settings::from_map(&env).expect("settings"), client)
    }

    async fn count(sdk: &aws_config::SdkConfig, table: &str) -> i32 {
        aws_sdk_dynamodb::Client::new(sdk)
            .scan()
            .table_name(table)
            .select(aws_sdk_dynamodb::types::Select::Count)
            .send()
            .await
            .expect("scan")
            .count
    }

    #[tokio::test]
    async fn every_record_on_every_shard_is_handed_to_the_processor_once() {
        let (model, outputs, sdk) = stack().await;
        let stream = outputs.kinesis_stream_name.clone().expect("a stream");
        let kinesis = aws_sdk_kinesis::Client::new(&sdk);
        let entries: Vec<Entry> = quotes(60).into_iter().map(|(_, e)| e).collect();
        put_records(&kinesis, &stream, &entries).await.expect("put");

        let processor = processor_for(&model, processor::aws::dynamodb_client(&sdk));
        let runner = stream_runner(&sdk, &model, &outputs, processor, 500)
            .expect("runner")
            .expect("the model has a stream");
        let stats = run_until_idle(runner).await;
        assert_eq!(StreamStats::get(&stats.records_read), 60);
        assert_eq!(StreamStats::get(&stats.dead_lettered_records), 0);
        // Half the batches were handed over twice; still one record per event.
        assert!(
            StreamStats::get(&stats.redelivered_batches) > 0,
            "{stats:?}"
        );
        assert_eq!(count(&sdk, &outputs.market_data_table_name).await, 60);
    }

    #[tokio::test]
    async fn records_that_keep_failing_go_to_the_dlq_as_shard_ranges_and_nothing_is_stored() {
        let (model, outputs, sdk) = stack().await;
        let stream = outputs.kinesis_stream_name.clone().expect("a stream");
        let kinesis = aws_sdk_kinesis::Client::new(&sdk);
        let entries: Vec<Entry> = quotes(20).into_iter().map(|(_, e)| e).collect();
        put_records(&kinesis, &stream, &entries).await.expect("put");

        let moto = crate::moto::shared();
        let proxy = FaultProxy::failing(&moto.endpoint, Writes::Records)
            .await
            .expect("proxy");
        let config = proxy.processor_loader().load().await;
        let processor = processor_for(&model, processor::aws::dynamodb_client(&config));
        let mut runner = stream_runner(&sdk, &model, &outputs, processor, 0)
            .expect("runner")
            .expect("a stream");
        runner.retry_delay = Duration::from_millis(1);
        let stats = run_until_idle(runner).await;
        assert_eq!(StreamStats::get(&stats.dead_lettered_records), 20);
        // Each failing batch was invoked once and retried twice (maximum_retry_attempts 2).
        let letters = StreamStats::get(&stats.letters);
        assert!(letters >= 1, "{stats:?}");
        assert_eq!(StreamStats::get(&stats.invocations), letters * 3);
        assert_eq!(count(&sdk, &outputs.market_data_table_name).await, 0);

        let sqs = aws_sdk_sqs::Client::new(&sdk);
        let received = sqs
            .receive_message()
            .queue_url(&outputs.dlq_url)
            .max_number_of_messages(10)
            .send()
            .await
            .expect("receive");
        let letter: serde_json::Value =
            serde_json::from_str(received.messages()[0].body().unwrap_or("{}")).expect("json");
        let info = &letter["KinesisBatchInfo"];
        assert_eq!(
            info["streamArn"],
            outputs.kinesis_stream_arn.clone().unwrap_or_default()
        );
        assert!(
            info["shardId"]
                .as_str()
                .unwrap_or("")
                .starts_with("shardId-"),
            "{letter}"
        );
        assert!(info["startSequenceNumber"].is_string(), "{letter}");
        assert_eq!(
            letter["requestContext"]["condition"],
            "RetryAttemptsExhausted"
        );
    }
}
