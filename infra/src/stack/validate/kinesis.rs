//! `kinesis`: the stream and its event source mapping, at AWS's limits, and the windows that keep
//! every record accounted for: a record must reach the DLQ before the stream trims it, stay in
//! the stream while its letter waits to be redriven, and not be refused by the processor as too
//! old while Lambda still retries it.

use std::ops::RangeInclusive;

use super::Checks;
use crate::stack::{KinesisConfig, StackConfig, StreamMode};

/// Kinesis Data Streams retention (https://docs.aws.amazon.com/streams/latest/dev/kinesis-extended-retention.html).
const RETENTION_HOURS: RangeInclusive<u32> = 24..=8760;
/// Default shard quota per account and region: 500 in us-east-1, us-west-2 and eu-west-1, 200
/// elsewhere (https://docs.aws.amazon.com/streams/latest/dev/service-sizes-and-limits.html,
/// reviewed 2026-12-02). A raised quota needs this bound raised with it.
const SHARDS_LARGE_REGIONS: u32 = 500;
const SHARDS_OTHER_REGIONS: u32 = 200;
const LARGE_SHARD_QUOTA_REGIONS: [&str; 3] = ["us-east-1", "us-west-2", "eu-west-1"];
/// Event source mapping limits for a Kinesis source
/// (https://docs.aws.amazon.com/lambda/latest/api/API_CreateEventSourceMapping.html).
const BATCH_SIZE: RangeInclusive<u32> = 1..=10_000;
const BATCHING_WINDOW_SECONDS: RangeInclusive<u32> = 0..=300;
const PARALLELIZATION_FACTOR: RangeInclusive<u32> = 1..=10;
const RECORD_AGE_SECONDS: RangeInclusive<u32> = 60..=604_800;
const RETRY_ATTEMPTS: RangeInclusive<u32> = 0..=10_000;
/// The processor's bound on partition keys in flight within one batch.
const CONCURRENT_KEYS: RangeInclusive<u32> = 1..=names::Settings::MAX_BATCH_CONCURRENCY;
const DAY_SECONDS: u64 = 86_400;

impl Checks {
    pub(super) fn kinesis(&mut self, config: &StackConfig) {
        let Some(kinesis) = &config.kinesis else {
            return;
        };
        self.publish(kinesis);
        self.stream(kinesis, &config.region);

        let m = &kinesis.mapping;
        self.range("kinesis.mapping.batch_size", m.batch_size, BATCH_SIZE);
        self.range(
            "kinesis.mapping.maximum_batching_window_seconds",
            m.maximum_batching_window_seconds,
            BATCHING_WINDOW_SECONDS,
        );
        self.range(
            "kinesis.mapping.parallelization_factor",
            m.parallelization_factor,
            PARALLELIZATION_FACTOR,
        );
        self.range(
            "kinesis.mapping.maximum_retry_attempts",
            m.maximum_retry_attempts,
            RETRY_ATTEMPTS,
        );
        self.range(
            "kinesis.mapping.concurrent_keys",
            m.concurrent_keys,
            CONCURRENT_KEYS,
        );
        let age = m.maximum_record_age_seconds;
        if !RECORD_AGE_SECONDS.contains(&age) {
            self.range(
                "kinesis.mapping.maximum_record_age_seconds",
                age,
                RECORD_AGE_SECONDS,
            );
            return;
        }
        // Lambda retries a record until it is this old; the processor must still take it then,
        // or a retry becomes a rejection.
        let max_event_age = config.events.max_event_age_seconds;
        if max_event_age < age {
            self.push(
                "kinesis.mapping.maximum_record_age_seconds",
                format!(
                    "{age} is longer than events.max_event_age_seconds ({max_event_age}): a record Lambda still retries would be refused as too old; allowed {}..={max_event_age}",
                    RECORD_AGE_SECONDS.start()
                ),
            );
        }
        let retention = kinesis.stream.retention_hours;
        if RETENTION_HOURS.contains(&retention) {
            // A stream letter holds sequence numbers, not the records: the records must outlive
            // Lambda's retries, the DLQ alarm's delay and a day for someone to redrive.
            let needed =
                u64::from(age) + u64::from(config.alarms.dlq_age_threshold_seconds) + DAY_SECONDS;
            if u64::from(retention) * 3600 < needed {
                self.push(
                    "kinesis.stream.retention_hours",
                    format!(
                        "{retention} hours do not keep a failed record until its DLQ letter can be redriven (kinesis.mapping.maximum_record_age_seconds {age} + alarms.dlq_age_threshold_seconds {} + 86400 s): the letter would point at trimmed records; allowed {}..={}",
                        config.alarms.dlq_age_threshold_seconds,
                        needed.div_ceil(3600),
                        RETENTION_HOURS.end()
                    ),
                );
            }
        }
    }

    fn publish(&mut self, kinesis: &KinesisConfig) {
        let path = "kinesis.publish";
        if kinesis.publish.is_empty() {
            self.push(
                path,
                "empty; allowed one or both of trade, quote (or remove the kinesis section)",
            );
        }
        for (i, class) in kinesis.publish.iter().enumerate() {
            if kinesis.publish[..i].contains(class) {
                self.push(
                    format!("{path}[{i}]"),
                    format!(
                        "{} is listed twice; allowed each class once",
                        class.as_str()
                    ),
                );
            }
        }
    }

    fn stream(&mut self, kinesis: &KinesisConfig, region: &str) {
        let stream = &kinesis.stream;
        self.range(
            "kinesis.stream.retention_hours",
            stream.retention_hours,
            RETENTION_HOURS,
        );
        let path = "kinesis.stream.shard_count";
        let quota = if LARGE_SHARD_QUOTA_REGIONS.contains(&region) {
            SHARDS_LARGE_REGIONS
        } else {
            SHARDS_OTHER_REGIONS
        };
        match (stream.capacity_mode, stream.shard_count) {
            (StreamMode::Provisioned, Some(shards)) => {
                if !(1..=quota).contains(&shards) {
                    self.push(
                        path,
                        format!(
                            "{shards} is out of range; allowed 1..={quota} (the default shard quota of {region})"
                        ),
                    );
                }
            }
            (StreamMode::Provisioned, None) => self.push(
                path,
                format!("missing; capacity_mode PROVISIONED needs it; allowed 1..={quota}"),
            ),
            (StreamMode::OnDemand, Some(shards)) => self.push(
                path,
                format!(
                    "{shards} is not allowed with capacity_mode ON_DEMAND (Kinesis sizes the stream itself); remove it or use PROVISIONED"
                ),
            ),
            (StreamMode::OnDemand, None) => {}
        }
    }
}
