//! What each path needs as a function of its rate, and the limit each need is held to.

use super::{
    ASSUMED_BATCH_RECORD_MS, Limit, Load, POLL_SECONDS, Path, RegionalQuota, STREAM_RECORD_KB,
    quotas,
};
use crate::cost::{self, Mix};
use crate::model::{Model, indexes};
use crate::stack::{BillingMode, EventClass, StackConfig, StreamMode};

/// A quantity a path needs, the limit it is held to, and the resource it draws on.
pub(super) struct Check<'a> {
    pub(super) what: String,
    pub(super) limit: Option<Limit>,
    /// The resource both paths draw on, whose needs add up.
    pub(super) shared: Option<&'static str>,
    pub(super) need: Need<'a>,
}

/// The key of the function's concurrency among the shared resources.
pub(super) const CONCURRENCY: &str = "concurrency";

/// A quantity at a path's rate and the trade share of what it carries.
pub(super) type Need<'a> = Box<dyn Fn(f64, f64) -> f64 + 'a>;

/// A path and the part of the feed it carries.
#[derive(Debug, Clone)]
pub(super) struct Route {
    pub(super) path: Path,
    pub(super) classes: Vec<EventClass>,
    pub(super) share: Share,
}

/// The stack as `capacity` sees it.
pub(super) struct Plan<'a> {
    pub(super) config: &'a StackConfig,
    pub(super) model: &'a Model,
    pub(super) load: &'a Load,
}

/// A path's part of the traffic.
#[derive(Debug, Clone, Copy)]
pub(super) struct Share {
    /// Of the total rate.
    pub(super) of_rate: f64,
    /// Trades among what the path carries.
    pub(super) trades: f64,
}

impl Plan<'_> {
    fn duration_s(&self) -> f64 {
        self.load.duration_ms / 1000.0
    }

    fn concurrency_limit(&self) -> Limit {
        match self.model.function.reserved_concurrency {
            Some(reserved) => Limit {
                value: f64::from(reserved),
                source: "lambda.reserved_concurrency".into(),
            },
            None => Limit {
                value: quotas::LAMBDA_CONCURRENCY.value,
                source: "account default".into(),
            },
        }
    }

    fn regional(&self, quota: &RegionalQuota) -> Limit {
        Limit {
            value: quota.in_region(&self.model.region).value,
            source: format!("quota, {}", self.model.region),
        }
    }

    /// Where the feed's classes go, and each path's share: the bus, then the stream when the
    /// stack has one. A path's trade share is the feed's when it carries both classes.
    pub(super) fn routes(&self) -> Vec<Route> {
        let all = [EventClass::Trade, EventClass::Quote];
        let share_of = |class: EventClass| match class {
            EventClass::Trade => self.load.trade_share,
            EventClass::Quote => 1.0 - self.load.trade_share,
        };
        let route = |path: Path, classes: Vec<EventClass>| {
            let of_rate: f64 = classes.iter().map(|c| share_of(*c)).sum();
            let trades = if classes.contains(&EventClass::Trade) {
                share_of(EventClass::Trade) / of_rate.max(f64::MIN_POSITIVE)
            } else {
                0.0
            };
            Route {
                path,
                classes,
                share: Share {
                    of_rate,
                    trades: trades.min(1.0),
                },
            }
        };
        let Some(kinesis) = &self.model.kinesis else {
            return vec![route(Path::Bus, all.to_vec())];
        };
        let (stream, bus): (Vec<EventClass>, Vec<EventClass>) =
            all.into_iter().partition(|c| kinesis.publish.contains(c));
        vec![route(Path::Bus, bus), route(Path::Stream, stream)]
    }

    /// What `route` needs, each against its limit.
    pub(super) fn checks(&self, route: &Route) -> Vec<Check<'_>> {
        match (route.path, self.stream()) {
            (Path::Stream, Some(stream)) => self.stream_checks(stream),
            _ => self.bus_checks(),
        }
    }

    pub(super) fn writes(&self, path: Path, rate: f64, trades: f64) -> cost::WriteUnits {
        let mix = Mix {
            trade_share: trades,
            rejected_share: 0.0,
        };
        cost::write_units(rate, mix, path.ingest())
    }

    /// Per table and per index, and on the hottest index partition, of what `path` writes: the
    /// paths index their items differently ([`names::Ingest`]).
    fn table_checks(&self, path: Path) -> Vec<Check<'_>> {
        let settings = &self.model.table_settings;
        let limit = |what: &str| match (settings.billing_mode, settings.capacity) {
            (BillingMode::Provisioned, Some(capacity)) => Limit {
                value: f64::from(capacity.write),
                source: format!("{what} write_capacity"),
            },
            _ => Limit {
                value: quotas::DYNAMODB_ON_DEMAND_TABLE_WRITES.value,
                source: "on-demand quota".into(),
            },
        };
        let (market, audit, latest) = (
            &self.model.tables[0],
            &self.model.tables[1],
            &self.model.tables[2],
        );
        let mut checks = vec![Check {
            what: format!("{} WRU/s, table", market.name),
            limit: Some(limit("table")),
            shared: Some("market table"),
            need: Box::new(move |rate, trades| self.writes(path, rate, trades).market_table()),
        }];
        for index in &market.indexes {
            checks.push(Check {
                what: format!("{} WRU/s, {}", market.name, index.name),
                limit: Some(limit("index")),
                shared: Some(index.name),
                need: Box::new(move |rate, trades| {
                    self.writes(path, rate, trades).index(index.name)
                }),
            });
        }
        checks.push(Check {
            what: format!("{} WRU/s, table", audit.name),
            limit: Some(limit("table")),
            shared: Some("audit table"),
            need: Box::new(move |rate, trades| self.writes(path, rate, trades).audit_table()),
        });
        for index in &audit.indexes {
            checks.push(Check {
                what: format!("{} WRU/s, {}", audit.name, index.name),
                limit: Some(limit("index")),
                shared: Some(index.name),
                need: Box::new(move |rate, trades| {
                    self.writes(path, rate, trades).index(index.name)
                }),
            });
        }
        checks.push(Check {
            what: format!("{} WRU/s, table", latest.name),
            limit: Some(limit("table")),
            shared: Some("latest table"),
            need: Box::new(move |rate, trades| self.writes(path, rate, trades).latest),
        });
        let buckets = f64::from(settings.index_buckets);
        checks.push(Check {
            what: format!("hottest index partition WRU/s ({buckets} buckets)"),
            limit: Some(Limit {
                value: quotas::DYNAMODB_PARTITION_WRITES.value,
                source: "per partition".into(),
            }),
            shared: Some("hottest key"),
            need: Box::new(move |rate, _| hottest_partition_units(rate, buckets)),
        });
        checks
    }

    fn bus_checks(&self) -> Vec<Check<'_>> {
        let entries = f64::from(self.load.entries_per_request);
        let mut checks = vec![
            Check {
                what: format!("PutEvents requests/s ({entries} entries each)"),
                limit: Some(self.regional(&quotas::PUT_EVENTS_REQUESTS)),
                shared: None,
                need: Box::new(move |rate, _| rate / entries),
            },
            Check {
                what: "target invocations/s (one rule, one target)".into(),
                limit: Some(self.regional(&quotas::TARGET_INVOCATIONS)),
                shared: None,
                need: Box::new(|rate, _| rate),
            },
            Check {
                what: format!(
                    "Lambda concurrency (events/s x {} ms)",
                    self.load.duration_ms
                ),
                limit: Some(self.concurrency_limit()),
                shared: Some(CONCURRENCY),
                // Little's law: invocations in flight = arrival rate x time each takes.
                need: Box::new(|rate, _| rate * self.duration_s()),
            },
        ];
        checks.extend(self.table_checks(Path::Bus));
        checks
    }

    fn stream_checks(&self, stream: Stream) -> Vec<Check<'_>> {
        let (write_mb, write_records, shards) = match stream.provisioned {
            Some(count) => {
                let count = f64::from(count);
                let source = format!("{count} shards");
                (
                    Limit {
                        value: count * quotas::KINESIS_SHARD_WRITE_BYTES.value / MIB,
                        source: source.clone(),
                    },
                    Some(Limit {
                        value: count * quotas::KINESIS_SHARD_WRITE_RECORDS.value,
                        source: source.clone(),
                    }),
                    Limit {
                        value: count,
                        source: "kinesis.stream.shard_count".into(),
                    },
                )
            }
            None => {
                let max = self.regional(&quotas::KINESIS_ON_DEMAND_WRITE_MB);
                let source = format!("on-demand max, {}", self.model.region);
                // An on-demand stream is shards underneath; its ceiling in shards is its write
                // ceiling over a shard's 1 MB/s.
                let in_shards = max.value * MIB / quotas::KINESIS_SHARD_WRITE_BYTES.value;
                (
                    Limit {
                        value: max.value,
                        source: source.clone(),
                    },
                    None,
                    Limit {
                        value: in_shards,
                        source,
                    },
                )
            }
        };
        let mut checks = vec![
            Check {
                what: format!("Kinesis writes, MB/s ({STREAM_RECORD_KB} KB records)"),
                limit: Some(write_mb),
                shared: None,
                need: Box::new(|rate, _| stream_bytes(rate) / MIB),
            },
            Check {
                what: "Kinesis writes, records/s".into(),
                limit: write_records,
                shared: None,
                need: Box::new(|rate, _| rate),
            },
            Check {
                what: "Kinesis shards needed".into(),
                limit: Some(shards),
                shared: None,
                need: Box::new(move |rate, _| stream.shards_needed(rate)),
            },
            Check {
                what: "Lambda invocations/s (batches)".into(),
                limit: None,
                shared: None,
                need: Box::new(move |rate, _| stream.invocations(rate)),
            },
            Check {
                what: format!(
                    "Lambda concurrency (shards x {})",
                    stream.parallelization_factor
                ),
                limit: Some(self.concurrency_limit()),
                shared: Some(CONCURRENCY),
                need: Box::new(move |rate, _| stream.concurrency(rate)),
            },
        ];
        checks.extend(self.table_checks(Path::Stream));
        checks
    }

    pub(super) fn stream(&self) -> Option<Stream> {
        let kinesis = self.model.kinesis.as_ref()?;
        let mapping = &kinesis.mapping.config;
        let batch_size = f64::from(mapping.batch_size);
        let batch_ms = self
            .load
            .batch_duration_ms
            .unwrap_or(batch_size * ASSUMED_BATCH_RECORD_MS);
        Some(Stream {
            provisioned: match kinesis.stream.mode {
                StreamMode::Provisioned => kinesis.stream.shard_count,
                StreamMode::OnDemand => None,
            },
            batch_size,
            batch_s: batch_ms / 1000.0,
            parallelization_factor: f64::from(mapping.parallelization_factor),
            window_s: f64::from(mapping.maximum_batching_window_seconds),
        })
    }
}

const MIB: f64 = 1024.0 * 1024.0;

fn stream_bytes(rate: f64) -> f64 {
    rate * STREAM_RECORD_KB * cost::KIB
}

/// Write units on the busiest index partition: the hottest key's share of the rate, spread over
/// the buckets (ARCHITECTURE.md, "Index keys"), without the planning headroom.
fn hottest_partition_units(rate: f64, buckets: f64) -> f64 {
    rate * f64::from(indexes::HOTTEST_KEY_SHARE_PERCENT) / 100.0
        * f64::from(indexes::INDEX_ITEMS_PER_EVENT)
        * f64::from(indexes::WRITE_UNITS_PER_INDEX_ITEM)
        / buckets
}

/// The stream and its mapping, as numbers.
#[derive(Debug, Clone, Copy)]
pub(super) struct Stream {
    /// The shard count of a provisioned stream; `None`: on-demand.
    pub(super) provisioned: Option<u32>,
    pub(super) batch_size: f64,
    /// One full batch.
    pub(super) batch_s: f64,
    pub(super) parallelization_factor: f64,
    pub(super) window_s: f64,
}

impl Stream {
    /// The fewest shards that take `rate` records/s: each writes 1 MB/s and 1 000 records/s, and
    /// the mapping drains it through `parallelization_factor` batches at a time, each of
    /// `batch_size` records in `batch_s`, so a shard is read at most P x batch_size / batch_s
    /// records/s. A stream has at least one shard.
    fn shards_needed(&self, rate: f64) -> f64 {
        let bytes = (stream_bytes(rate) / quotas::KINESIS_SHARD_WRITE_BYTES.value).ceil();
        let records = (rate / quotas::KINESIS_SHARD_WRITE_RECORDS.value).ceil();
        let drained =
            (rate * self.batch_s / (self.batch_size * self.parallelization_factor)).ceil();
        bytes.max(records).max(drained).max(1.0)
    }

    /// On-demand scales to what is needed; a provisioned stream has what it was given.
    fn shards(&self, rate: f64) -> f64 {
        self.provisioned
            .map_or_else(|| self.shards_needed(rate), f64::from)
    }

    /// The mapping runs up to P batches per shard at once, whatever their size, so this is what
    /// it may hold, not the mean in flight.
    fn concurrency(&self, rate: f64) -> f64 {
        self.shards(rate) * self.parallelization_factor
    }

    /// Records per batch: each of the shards x P batchers gathers its part of the rate for a poll
    /// or the batching window, whichever is longer, up to `batch_size`.
    fn batch_records(&self, rate: f64) -> f64 {
        let batchers = self.shards(rate) * self.parallelization_factor;
        (rate / batchers * self.window_s.max(POLL_SECONDS)).clamp(1.0, self.batch_size)
    }

    pub(super) fn invocations(&self, rate: f64) -> f64 {
        if rate <= 0.0 {
            return 0.0;
        }
        rate / self.batch_records(rate)
    }

    /// Billed time of one invocation: its records at a full batch's pace per record.
    pub(super) fn invocation_ms(&self, rate: f64) -> f64 {
        (self.batch_records(rate) * self.batch_s * 1000.0 / self.batch_size).ceil()
    }
}
