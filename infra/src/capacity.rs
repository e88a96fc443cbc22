//! `cargo xtask capacity --stack S --events-per-second N`: what a stack's ingest paths need at a
//! rate, against the AWS quotas that bound them ([`quotas`]), the rate at which each quota is
//! reached, and what the rate costs at the unit prices of [`crate::cost`].
//!
//! The feed's classes split the rate: the classes in `kinesis.publish` go through the stream, the
//! rest through the bus. Each path is shown at its share and as if it carried every event; the
//! function and the tables are one for both paths, so their limits are also summed over both.

mod checks;
mod print;
pub mod quotas;
#[cfg(test)]
mod tests;

use anyhow::Context;

use crate::cost::{self, Price};
use crate::model::{Model, indexes};
use crate::stack::{Architecture, BillingMode, EventClass, StackConfig, StreamMode};
use checks::{Check, Plan, Share};
pub use print::print;
pub use quotas::{QUOTAS_REVIEWED, Quota, RegionalQuota};

/// One stream record: an event envelope, JSON, as EventBridge would deliver it.
pub const STREAM_RECORD_KB: f64 = cost::EVENT_KB;
/// Processor time per record of a batch until a benchmark measures it: 250 ms for a batch of
/// 500, with the 16 keys of prod's `concurrent_keys` in flight and each record's two or three
/// writes taking about 8 ms together (500 / 16 rounds of 8 ms). A batch of B records is taken
/// to last B times this.
pub const ASSUMED_BATCH_RECORD_MS: f64 = 0.5;
/// Lambda reads each shard about once a second
/// (https://docs.aws.amazon.com/lambda/latest/dg/with-kinesis.html), so a batch holds at most
/// that long's records unless the batching window is longer.
pub const POLL_SECONDS: f64 = 1.0;
pub const DEFAULT_TRADE_SHARE: f64 = 0.4;
/// A rate above every limit modelled: past it a limit counts as never reached.
const SEARCH_CEILING: u64 = 1_000_000_000_000;

/// What the command is asked about.
#[derive(Debug, Clone, Copy)]
pub struct Load {
    /// Over every ingest path.
    pub events_per_second: u64,
    /// Share of events that are trades; each is assumed to carry a `trade_id` (a guard write).
    pub trade_share: f64,
    /// One invocation of the bus path.
    pub duration_ms: f64,
    pub duration_assumed: bool,
    /// One full batch of the mapping's `batch_size`; `None`: [`ASSUMED_BATCH_RECORD_MS`] each.
    pub batch_duration_ms: Option<f64>,
    /// Entries the producers put in one PutEvents request: the tools fill each to the limit.
    pub entries_per_request: u32,
}

impl Load {
    /// From the command line's values; `entries_per_request` defaults to PutEvents' limit.
    pub fn new(
        events_per_second: u64,
        trade_share: f64,
        duration_ms: Option<f64>,
        batch_duration_ms: Option<f64>,
        entries_per_request: Option<u32>,
    ) -> anyhow::Result<Load> {
        let max_entries = quotas::PUT_EVENTS_ENTRIES.value as u32;
        let entries_per_request = entries_per_request.unwrap_or(max_entries);
        if !(1..=max_entries).contains(&entries_per_request) {
            anyhow::bail!(
                "--entries-per-request {entries_per_request} is not between 1 and PutEvents' \
                 {max_entries}"
            );
        }
        if events_per_second == 0 {
            anyhow::bail!("--events-per-second 0: give a rate of at least 1 event per second");
        }
        if !(0.0..=1.0).contains(&trade_share) {
            anyhow::bail!("--trade-share {trade_share} is not a share between 0 and 1");
        }
        for (flag, value) in [
            ("--duration-ms", duration_ms),
            ("--batch-duration-ms", batch_duration_ms),
        ] {
            if let Some(ms) = value.filter(|ms| !(*ms > 0.0 && *ms <= 900_000.0)) {
                anyhow::bail!("{flag} {ms} is not between 0 and Lambda's 900000 ms limit");
            }
        }
        Ok(Load {
            events_per_second,
            trade_share,
            duration_ms: duration_ms.unwrap_or(cost::ASSUMED_DURATION_MS),
            duration_assumed: duration_ms.is_none(),
            batch_duration_ms,
            entries_per_request,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Path {
    Bus,
    Stream,
}

impl Path {
    /// How the processor writes what the path delivers.
    pub fn ingest(self) -> names::Ingest {
        match self {
            Path::Bus => names::Ingest::Bus,
            Path::Stream => names::Ingest::Stream,
        }
    }
}

/// A limit and what sets it (a quota in a region, the stack's config).
#[derive(Debug, Clone, PartialEq)]
pub struct Limit {
    pub value: f64,
    pub source: String,
}

/// One quantity of a path.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub what: String,
    /// At the path's share of the rate.
    pub need: f64,
    /// If the path carried every event.
    pub need_alone: f64,
    pub limit: Option<Limit>,
    /// The highest total rate (events/s over both paths) at which `need` stays within the
    /// limit; `None`: never reached.
    pub binds_at: Option<u64>,
    /// The same with every event on this path.
    pub binds_alone: Option<u64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PathCost {
    pub per_month: f64,
    pub per_million: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PathReport {
    pub path: Path,
    pub classes: Vec<EventClass>,
    pub events_per_second: f64,
    pub rows: Vec<Row>,
    pub cost: PathCost,
    pub cost_alone: PathCost,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub paths: Vec<PathReport>,
    /// The function's and the tables' limits with both paths' shares summed; empty for a stack
    /// with the bus only.
    pub together: Vec<Row>,
    pub cost: PathCost,
    pub notes: Vec<String>,
}

impl Report {
    pub fn path(&self, path: Path) -> Option<&PathReport> {
        self.paths.iter().find(|p| p.path == path)
    }

    /// The limit the stack reaches first as its rate grows: every path's limits at its share,
    /// and the shared ones summed.
    pub fn binds_first(&self) -> Option<(&Row, u64)> {
        let rows = self
            .paths
            .iter()
            .flat_map(|p| &p.rows)
            .chain(&self.together);
        first(rows, |row| row.binds_at)
    }
}

impl PathReport {
    pub fn binds_first(&self) -> Option<(&Row, u64)> {
        first(&self.rows, |row| row.binds_at)
    }

    pub fn binds_first_alone(&self) -> Option<(&Row, u64)> {
        first(&self.rows, |row| row.binds_alone)
    }
}

/// The lowest rate, the earlier row on a tie (rows are listed from the producer inwards).
fn first<'a>(
    rows: impl IntoIterator<Item = &'a Row>,
    at: impl Fn(&Row) -> Option<u64>,
) -> Option<(&'a Row, u64)> {
    rows.into_iter()
        .filter_map(|row| at(row).map(|rate| (row, rate)))
        .fold(None, |best, (row, rate)| match best {
            Some((_, lowest)) if lowest <= rate => best,
            _ => Some((row, rate)),
        })
}

/// The highest integer rate at which `need(rate)` stays within `limit`, for a `need` that never
/// falls as the rate grows.
fn highest_within(limit: f64, need: impl Fn(f64) -> f64) -> Option<u64> {
    // Shares such as 0.4 are not exact in binary; a rate that lands on the limit fits.
    let fits = |rate: u64| need(rate as f64) <= limit * (1.0 + 1e-9);
    if fits(SEARCH_CEILING) {
        return None;
    }
    if !fits(0) {
        return Some(0);
    }
    let (mut low, mut high) = (0, SEARCH_CEILING);
    while high - low > 1 {
        let mid = low + (high - low) / 2;
        if fits(mid) {
            low = mid;
        } else {
            high = mid;
        }
    }
    Some(low)
}

fn rows(checks: &[Check<'_>], rate: u64, share: Share, alone_trades: f64) -> Vec<Row> {
    let total = rate as f64;
    checks
        .iter()
        .map(|check| {
            let need = |n: f64| (check.need)(n * share.of_rate, share.trades);
            let alone = |n: f64| (check.need)(n, alone_trades);
            Row {
                what: check.what.clone(),
                need: need(total),
                need_alone: alone(total),
                binds_at: check
                    .limit
                    .as_ref()
                    .filter(|_| share.of_rate > 0.0)
                    .and_then(|l| highest_within(l.value, need)),
                binds_alone: check
                    .limit
                    .as_ref()
                    .and_then(|l| highest_within(l.value, alone)),
                limit: check.limit.clone(),
            }
        })
        .collect()
}

/// What `rate` events/s cost a month on `path`, and per million events.
fn path_cost(plan: &Plan<'_>, path: Path, rate: f64, trades: f64) -> PathCost {
    let seconds = cost::HOURS_PER_MONTH * 3600.0;
    let events = rate * seconds;
    let memory_gb = f64::from(plan.model.function.memory_mb) / 1024.0;
    let gb_second = match plan.config.lambda.architecture {
        Architecture::Arm64 => cost::LAMBDA_ARM64_GB_SECOND,
        Architecture::X86_64 => cost::LAMBDA_X86_64_GB_SECOND,
    };
    let per_million = |price: Price, units: f64| units / 1e6 * price.usd;
    let mut month = 0.0;
    match (path, plan.stream()) {
        (Path::Stream, Some(stream)) => {
            let invocations = stream.invocations(rate) * seconds;
            month += per_million(cost::LAMBDA_REQUESTS, invocations);
            month += invocations * stream.invocation_ms(rate) / 1000.0 * memory_gb * gb_second.usd;
            match stream.provisioned {
                Some(shards) => {
                    month +=
                        f64::from(shards) * cost::HOURS_PER_MONTH * cost::KINESIS_SHARD_HOUR.usd;
                    let units = (STREAM_RECORD_KB / 25.0).ceil();
                    month += per_million(cost::KINESIS_PUT_PAYLOAD_UNITS, events * units);
                }
                None => {
                    month += cost::HOURS_PER_MONTH * cost::KINESIS_ON_DEMAND_STREAM_HOUR.usd;
                    let gb = events * STREAM_RECORD_KB.ceil() * cost::KIB / cost::GIB;
                    month += gb
                        * (cost::KINESIS_ON_DEMAND_INGESTED.usd
                            + cost::KINESIS_ON_DEMAND_RETRIEVED.usd);
                }
            }
        }
        _ => {
            month += per_million(cost::EVENTBRIDGE_CUSTOM_EVENTS, events);
            month += per_million(cost::LAMBDA_REQUESTS, events);
            month += events * plan.load.duration_ms.ceil() / 1000.0 * memory_gb * gb_second.usd;
        }
    }
    if plan.model.table_settings.billing_mode == BillingMode::PayPerRequest {
        let writes = plan.writes(path, events, trades);
        month += per_million(cost::DYNAMODB_ON_DEMAND_WRITES, writes.total());
    }
    PathCost {
        per_month: month,
        per_million: if events > 0.0 {
            month / events * 1e6
        } else {
            0.0
        },
    }
}

/// A resource both paths draw on: the function, a table or index, the hottest index partition.
struct Pool<'a> {
    key: &'static str,
    what: String,
    limit: Option<Limit>,
    needs: Vec<(Share, checks::Need<'a>)>,
}

pub fn report(config: &StackConfig, model: &Model, load: &Load) -> Report {
    let plan = Plan {
        config,
        model,
        load,
    };
    let rate = load.events_per_second;
    let routes = plan.routes();
    let both = routes.len() > 1;
    let mut paths = Vec::new();
    let mut pools: Vec<Pool<'_>> = Vec::new();
    for route in routes {
        let checks = plan.checks(&route);
        let share = route.share;
        let carried = rate as f64 * share.of_rate;
        paths.push(PathReport {
            path: route.path,
            events_per_second: carried,
            rows: rows(&checks, rate, share, load.trade_share),
            cost: path_cost(&plan, route.path, carried, share.trades),
            cost_alone: path_cost(&plan, route.path, rate as f64, load.trade_share),
            classes: route.classes,
        });
        for check in checks.into_iter().filter(|_| both) {
            let Some(key) = check.shared else {
                continue;
            };
            match pools.iter_mut().find(|pool| pool.key == key) {
                Some(pool) => pool.needs.push((share, check.need)),
                None => pools.push(Pool {
                    key,
                    what: check.what,
                    limit: check.limit,
                    needs: vec![(share, check.need)],
                }),
            }
        }
    }
    let together: Vec<Row> = pools
        .into_iter()
        .map(|pool| {
            let need = |n: f64| {
                pool.needs
                    .iter()
                    .map(|(share, need)| need(n * share.of_rate, share.trades))
                    .sum::<f64>()
            };
            Row {
                what: if pool.key == checks::CONCURRENCY {
                    "Lambda concurrency (both paths)".to_string()
                } else {
                    pool.what.clone()
                },
                need: need(rate as f64),
                need_alone: need(rate as f64),
                binds_at: pool
                    .limit
                    .as_ref()
                    .and_then(|l| highest_within(l.value, need)),
                binds_alone: None,
                limit: pool.limit.clone(),
            }
        })
        .collect();
    let cost = PathCost {
        per_month: paths.iter().map(|p| p.cost.per_month).sum(),
        per_million: paths.iter().map(|p| p.cost.per_month).sum::<f64>()
            / (rate as f64 * cost::HOURS_PER_MONTH * 3600.0)
            * 1e6,
    };
    let notes = notes(&plan);
    Report {
        paths,
        together,
        cost,
        notes,
    }
}

fn notes(plan: &Plan<'_>) -> Vec<String> {
    let entries = plan.load.entries_per_request;
    let mut notes = vec![format!(
        "the bus path assumes PutEvents requests of {entries} entries (the limit is {}, which \
         the tools fill); producers that send fewer use more requests: --entries-per-request",
        quotas::PUT_EVENTS_ENTRIES.value
    )];
    if let Some(kinesis) = &plan.model.kinesis {
        notes.push(format!(
            "one partition key (exchange#symbol) lives on one shard: one instrument sends at \
             most {} records/s through the stream, whatever the shard count",
            cost::thousands(quotas::KINESIS_SHARD_WRITE_RECORDS.value as u64)
        ));
        notes.push(format!(
            "the stream path's concurrency is what the mapping may run at once, shards x {}: \
             fewer concurrent executions than that throttle batches, which wait in the stream",
            kinesis.mapping.config.parallelization_factor
        ));
        if kinesis.stream.mode == StreamMode::OnDemand {
            notes.push(format!(
                "a new on-demand stream takes {} MB/s ({} records/s of {STREAM_RECORD_KB} KB are \
                 4 shards) and then twice its previous peak; a faster jump throttles while it scales",
                quotas::KINESIS_ON_DEMAND_INITIAL_WRITE_MB.value,
                cost::thousands(4 * quotas::KINESIS_SHARD_WRITE_RECORDS.value as u64)
            ));
        }
        if kinesis.stream.retention_hours > 24 {
            notes.push(format!(
                "not priced: the stream's retention past 24 h ({} h)",
                kinesis.stream.retention_hours
            ));
        }
    }
    let buckets = plan.model.table_settings.index_buckets;
    notes.push(format!(
        "the hottest index partition carries {}% of the rate over {buckets} buckets, at the \
         partition's full limit; the design keeps 1/3 headroom, reached at {} events/s",
        indexes::HOTTEST_KEY_SHARE_PERCENT,
        cost::thousands(indexes::max_events_per_second(buckets))
    ));
    // Not a row: its share depends on how a feed's trades spread over symbols, which the load
    // does not say, and the index arithmetic's one-key-takes-all would put it near every rate.
    notes.push(format!(
        "the latest-price table keeps one item per symbol and view, and one item takes at most \
         {} writes/s: a symbol trading faster than that on one exchange through the bus \
         throttles its latest-price put (the stream path puts it once per key and batch)",
        cost::thousands(quotas::DYNAMODB_PARTITION_WRITES.value as u64)
    ));
    if plan.model.table_settings.billing_mode == BillingMode::Provisioned {
        notes.push("DynamoDB is provisioned: its writes cost the capacity, not per event; `cargo xtask cost` prices it".into());
    }
    notes.push(
        "every event is taken as valid and every trade as carrying a trade_id: the most writes \
         per event; the cost counts ingest, Lambda and DynamoDB writes only (storage, logs, \
         alarms: `cargo xtask cost`)"
            .into(),
    );
    notes
}

/// `cargo xtask capacity --stack S ...`.
pub fn run(root: &std::path::Path, stack: &str, load: &Load) -> anyhow::Result<()> {
    let config = StackConfig::load(root, stack).with_context(|| format!("--stack {stack}"))?;
    let model = Model::from_stack(&config);
    let report = report(&config, &model, load);
    print(stack, &config, &model, load, &report);
    Ok(())
}
