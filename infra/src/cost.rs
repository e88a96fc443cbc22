//! `cargo xtask cost --stack S --events-per-day N`: a monthly cost estimate for one stack from its
//! config, the processor's writes per event, and list prices stated with their source and date.

use crate::model::Model;
use crate::stack::{Architecture, BillingMode, LogLevel, StackConfig};

/// A month as AWS prices it: 730 hours.
pub(crate) const HOURS_PER_MONTH: f64 = 730.0;
pub(crate) const DAYS_PER_MONTH: f64 = HOURS_PER_MONTH / 24.0;
pub(crate) const KIB: f64 = 1024.0;
pub(crate) const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

/// A unit price and where it is published.
#[derive(Debug, Clone, Copy)]
pub struct Price {
    pub usd: f64,
    pub per: &'static str,
    pub page: &'static str,
}

/// us-east-1 on-demand list prices, as published on the pages named, reviewed on this date.
/// Free tiers are left out: they belong to an account, not to a stack.
pub const PRICES_REVIEWED: &str = "2026-11-25";

pub const EVENTBRIDGE_CUSTOM_EVENTS: Price = Price {
    usd: 1.00,
    per: "per million custom events (each entry up to 64 KB)",
    page: "https://aws.amazon.com/eventbridge/pricing/",
};
pub const LAMBDA_REQUESTS: Price = Price {
    usd: 0.20,
    per: "per million requests",
    page: "https://aws.amazon.com/lambda/pricing/",
};
pub const LAMBDA_ARM64_GB_SECOND: Price = Price {
    usd: 0.000_013_333_4,
    per: "per GB-second, arm64 (first 7.5 billion GB-s a month)",
    page: "https://aws.amazon.com/lambda/pricing/",
};
pub const LAMBDA_X86_64_GB_SECOND: Price = Price {
    usd: 0.000_016_666_7,
    per: "per GB-second, x86_64 (first 6 billion GB-s a month)",
    page: "https://aws.amazon.com/lambda/pricing/",
};
pub const DYNAMODB_ON_DEMAND_WRITES: Price = Price {
    usd: 0.625,
    per: "per million write request units, on-demand (price since 2024-11-01)",
    page: "https://aws.amazon.com/dynamodb/pricing/on-demand/",
};
pub const DYNAMODB_PROVISIONED_WCU: Price = Price {
    usd: 0.000_65,
    per: "per write capacity unit-hour, provisioned",
    page: "https://aws.amazon.com/dynamodb/pricing/provisioned/",
};
pub const DYNAMODB_PROVISIONED_RCU: Price = Price {
    usd: 0.000_13,
    per: "per read capacity unit-hour, provisioned",
    page: "https://aws.amazon.com/dynamodb/pricing/provisioned/",
};
pub const DYNAMODB_STORAGE: Price = Price {
    usd: 0.25,
    per: "per GB-month, Standard table class (tables and indexes)",
    page: "https://aws.amazon.com/dynamodb/pricing/on-demand/",
};
pub const DYNAMODB_PITR: Price = Price {
    usd: 0.20,
    per: "per GB-month of table size, point-in-time recovery",
    page: "https://aws.amazon.com/dynamodb/pricing/on-demand/",
};
pub const LOGS_INGESTION: Price = Price {
    usd: 0.50,
    per: "per GB ingested, Standard log class",
    page: "https://aws.amazon.com/cloudwatch/pricing/",
};
pub const LOGS_STORAGE: Price = Price {
    usd: 0.03,
    per: "per GB-month archived",
    page: "https://aws.amazon.com/cloudwatch/pricing/",
};
pub const CUSTOM_METRICS: Price = Price {
    usd: 0.30,
    per: "per custom metric-month (first 10,000)",
    page: "https://aws.amazon.com/cloudwatch/pricing/",
};
/// CloudWatch bills an alarm per metric it evaluates: one for a metric alarm, each metric of the
/// expression for an alarm on metric math.
pub const ALARM_STANDARD: Price = Price {
    usd: 0.10,
    per: "per alarm metric-month, standard resolution (period of 60 s or more)",
    page: "https://aws.amazon.com/cloudwatch/pricing/",
};
pub const ALARM_HIGH_RESOLUTION: Price = Price {
    usd: 0.30,
    per: "per alarm metric-month, high resolution (period under 60 s)",
    page: "https://aws.amazon.com/cloudwatch/pricing/",
};
/// The day the Kinesis prices below were last compared with their page.
pub const KINESIS_PRICES_REVIEWED: &str = "2026-12-02";
/// Kinesis Data Streams bills on-demand data in and out per record rounded up to 1 KB.
pub const KINESIS_ON_DEMAND_STREAM_HOUR: Price = Price {
    usd: 0.04,
    per: "per stream-hour, on-demand",
    page: "https://aws.amazon.com/kinesis/data-streams/pricing/",
};
pub const KINESIS_ON_DEMAND_INGESTED: Price = Price {
    usd: 0.08,
    per: "per GB ingested, on-demand (each record rounded up to 1 KB)",
    page: "https://aws.amazon.com/kinesis/data-streams/pricing/",
};
pub const KINESIS_ON_DEMAND_RETRIEVED: Price = Price {
    usd: 0.04,
    per: "per GB retrieved, on-demand (each record rounded up to 1 KB)",
    page: "https://aws.amazon.com/kinesis/data-streams/pricing/",
};
pub const KINESIS_SHARD_HOUR: Price = Price {
    usd: 0.015,
    per: "per shard-hour, provisioned",
    page: "https://aws.amazon.com/kinesis/data-streams/pricing/",
};
pub const KINESIS_PUT_PAYLOAD_UNITS: Price = Price {
    usd: 0.014,
    per: "per million PUT payload units (25 KB each), provisioned",
    page: "https://aws.amazon.com/kinesis/data-streams/pricing/",
};

/// The day the prices below were taken from the project's brief. Their pages' sections could not
/// be read from where they were added, so they have not been compared with the page yet, unlike
/// those of [`PRICES_REVIEWED`]; `cost` says so next to them.
pub const UNCONFIRMED_PRICES_TAKEN: &str = "2026-12-03";
pub const EVENTBRIDGE_ARCHIVE_PROCESSING: Price = Price {
    usd: 0.10,
    per: "per GB of events archived (processing)",
    page: "https://aws.amazon.com/eventbridge/pricing/",
};
pub const EVENTBRIDGE_ARCHIVE_STORAGE: Price = Price {
    usd: 0.023,
    per: "per GB-month of events in an archive (storage)",
    page: "https://aws.amazon.com/eventbridge/pricing/",
};
/// An account's first three dashboards are free; like every free tier, that is the account's, so
/// the stack's dashboard is priced in full.
pub const CLOUDWATCH_DASHBOARD: Price = Price {
    usd: 3.00,
    per: "per dashboard-month (an account's first 3 are free)",
    page: "https://aws.amazon.com/cloudwatch/pricing/",
};
/// The prices of [`UNCONFIRMED_PRICES_TAKEN`].
pub const UNCONFIRMED_PRICES: [Price; 3] = [
    EVENTBRIDGE_ARCHIVE_PROCESSING,
    EVENTBRIDGE_ARCHIVE_STORAGE,
    CLOUDWATCH_DASHBOARD,
];

/// One event as the bus delivers it and a stream record carries it: its envelope, JSON.
pub const EVENT_KB: f64 = 0.5;
/// Item sizes the processor writes (attribute names and values together).
const RECORD_KB: f64 = 0.5;
const GUARD_KB: f64 = 0.2;
const AUDIT_KB: f64 = 0.4;
/// A REJECTED audit entry carries the raw event: assumed to stay within 1 KB.
const REJECTED_AUDIT_KB: f64 = 1.0;
/// A latest-price item: the symbol, view, exchange, event time and id, and the prices.
const LATEST_KB: f64 = 0.3;
/// Symbols the latest table holds an item for, per view: about what the US equity markets list.
/// The sample session has 20; a feed's own count only moves a line that stays under a dollar.
const LATEST_SYMBOLS: f64 = 10_000.0;
/// Views per symbol: its last trade and its last quote (on one exchange; each further exchange
/// it trades on adds two more, which the symbol count above leaves room for).
const LATEST_VIEWS_PER_SYMBOL: f64 = 2.0;
/// DynamoDB bills 100 bytes of overhead per stored item, in the table and in each index copy.
const ITEM_OVERHEAD_BYTES: f64 = 100.0;
/// The processor's EMF document, one per event (`processor::metrics::document`): its three
/// directives with their dimension sets and metric declarations, the values and a timestamp.
/// Lambda ships it to CloudWatch Logs like any line, and Logs bills its ingestion.
pub const EMF_DOCUMENT_BYTES: f64 = 1_000.0;
/// Besides the EMF document: platform lines (START, END, REPORT, about 0.35 KB) and, at `info`
/// and below, the processor's outcome line (about 0.4 KB); `debug` adds about 0.6 KB.
fn log_kb_per_invocation(level: LogLevel) -> f64 {
    match level {
        LogLevel::Trace | LogLevel::Debug => 1.35,
        LogLevel::Info => 0.75,
        LogLevel::Warn | LogLevel::Error => 0.35,
    }
}

/// What the estimate assumes about the traffic.
#[derive(Debug, Clone, Copy)]
pub struct Traffic {
    pub events_per_day: u64,
    /// Billed duration of one invocation.
    pub duration_ms: f64,
    /// Whether `duration_ms` is [`ASSUMED_DURATION_MS`] rather than a measured value.
    pub duration_assumed: bool,
    /// Share of valid events that are trades with a `trade_id` (each writes a guard item).
    pub trade_share: f64,
    /// Share of events rejected by validation.
    pub rejected_share: f64,
}

/// Duration per invocation until a benchmark measures it: a warm invocation that decodes one
/// event and writes up to three small items with plain PutItem calls.
pub const ASSUMED_DURATION_MS: f64 = 20.0;

impl Traffic {
    /// From the command line's numbers, percentages as given there.
    pub fn new(
        events_per_day: u64,
        duration_ms: Option<f64>,
        trade_percent: f64,
        rejected_percent: f64,
    ) -> anyhow::Result<Traffic> {
        for (name, value) in [
            ("--trade-percent", trade_percent),
            ("--rejected-percent", rejected_percent),
        ] {
            if !(0.0..=100.0).contains(&value) {
                anyhow::bail!("{name} {value} is not a percentage between 0 and 100");
            }
        }
        let duration_assumed = duration_ms.is_none();
        let duration_ms = duration_ms.unwrap_or(ASSUMED_DURATION_MS);
        if !(duration_ms > 0.0 && duration_ms <= 900_000.0) {
            anyhow::bail!(
                "--duration-ms {duration_ms} is not between 0 and Lambda's 900000 ms limit"
            );
        }
        Ok(Traffic {
            events_per_day,
            duration_ms,
            duration_assumed,
            trade_share: trade_percent / 100.0,
            rejected_share: rejected_percent / 100.0,
        })
    }
}

#[derive(Debug, Clone)]
pub struct Line {
    pub item: String,
    pub quantity: String,
    pub price: Price,
    pub monthly_usd: f64,
}

#[derive(Debug, Clone)]
pub struct Estimate {
    pub lines: Vec<Line>,
    pub notes: Vec<String>,
}

impl Estimate {
    pub fn total(&self) -> f64 {
        self.lines.iter().map(|l| l.monthly_usd).sum()
    }
}

/// What events are, as far as their writes differ.
#[derive(Debug, Clone, Copy)]
pub struct Mix {
    /// Share of valid events that are trades with a `trade_id` (each writes a guard item).
    pub trade_share: f64,
    /// Share of events rejected by validation.
    pub rejected_share: f64,
}

/// Write request units of a number of events, by table. Items are written with plain PutItem,
/// so a unit per started KB; every index projects all attributes, so an item an index covers
/// costs its units once more in that index. Which indexes cover which item depends on the path
/// the events came by ([`names::Ingest`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WriteUnits {
    /// The records alone: what each index that takes a record copies.
    pub records: f64,
    /// The dedupe guards alone: they have no symbol or exchange and stay out of the indexes.
    pub guards: f64,
    /// The PROCESSED entries alone, and the other audit entries.
    pub processed_audits: f64,
    pub other_audits: f64,
    /// The latest-price items: no index.
    pub latest: f64,
    pub ingest: names::Ingest,
}

impl WriteUnits {
    /// What the index `name`, of either table, takes.
    pub fn index(&self, name: &str) -> f64 {
        let covers = |indexes: &[names::IndexSchema]| indexes.iter().any(|i| i.name == name);
        let mut units = 0.0;
        if covers(self.ingest.record_indexes()) {
            units += self.records;
        }
        if covers(self.ingest.processed_audit_indexes()) {
            units += self.processed_audits;
        }
        if covers(names::AUDIT_TRAIL_SCHEMA.indexes) {
            units += self.other_audits;
        }
        units
    }

    /// market-data alone: records and guards.
    pub fn market_table(&self) -> f64 {
        self.records + self.guards
    }

    /// audit-trail alone.
    pub fn audit_table(&self) -> f64 {
        self.processed_audits + self.other_audits
    }

    /// market-data with its indexes.
    pub fn market(&self) -> f64 {
        self.market_table() + self.indexes_of(&names::MARKET_DATA_SCHEMA)
    }

    /// audit-trail with its index.
    pub fn audit(&self) -> f64 {
        self.audit_table() + self.indexes_of(&names::AUDIT_TRAIL_SCHEMA)
    }

    /// Everything, every table with its indexes.
    pub fn total(&self) -> f64 {
        self.market() + self.audit() + self.latest
    }

    fn indexes_of(&self, table: &names::TableSchema) -> f64 {
        table.indexes.iter().map(|i| self.index(i.name)).sum()
    }
}

/// What `events` events of `mix`, arrived by `ingest`, write, the way the processor writes
/// them: one record, one PROCESSED entry and one latest-price put per valid event, a guard per
/// trade, one REJECTED entry with the raw event per rejected event.
///
/// The latest-price put is priced at one per valid event on either path, which is the most it
/// can be: the stream path writes it at most once per partition key and view of a batch
/// (`processor::batch`), fewer for a busy key. A put whose condition fails (an older event than
/// the one stored) costs its unit all the same.
pub fn write_units(events: f64, mix: Mix, ingest: names::Ingest) -> WriteUnits {
    let rejected = events * mix.rejected_share;
    let valid = events - rejected;
    WriteUnits {
        records: valid * item_write_units(RECORD_KB),
        guards: valid * mix.trade_share * item_write_units(GUARD_KB),
        processed_audits: valid * item_write_units(AUDIT_KB),
        other_audits: rejected * item_write_units(REJECTED_AUDIT_KB),
        latest: valid * item_write_units(LATEST_KB),
        ingest,
    }
}

/// [`write_units`] of one event.
pub fn write_units_per_event(mix: Mix, ingest: names::Ingest) -> WriteUnits {
    write_units(1.0, mix, ingest)
}

fn millions(n: f64) -> String {
    format!("{:.2} M", n / 1e6)
}

/// `5000000` as `5,000,000`.
pub(crate) fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A unit price with its significant digits and at least cents: `1.00`, `0.625`, `0.0000133334`.
pub(crate) fn usd(value: f64) -> String {
    let text = format!("{value:.10}");
    let trimmed = text.trim_end_matches('0');
    let decimals = trimmed.split('.').nth(1).map_or(0, str::len);
    if decimals < 2 {
        format!("{value:.2}")
    } else {
        trimmed.to_string()
    }
}

fn line(item: impl Into<String>, quantity: String, price: Price, units: f64) -> Line {
    Line {
        item: item.into(),
        quantity,
        price,
        monthly_usd: units * price.usd,
    }
}

/// Write request units of one item: one per started KB.
fn item_write_units(kb: f64) -> f64 {
    kb.ceil().max(1.0)
}

fn stored_gib(items: f64, kb: f64, copies: f64) -> f64 {
    items * (kb * KIB + ITEM_OVERHEAD_BYTES) * copies / GIB
}

pub fn estimate(config: &StackConfig, model: &Model, traffic: &Traffic) -> Estimate {
    let mut lines = Vec::new();
    let mut notes = Vec::new();
    let events_month = traffic.events_per_day as f64 * DAYS_PER_MONTH;
    let rejected = events_month * traffic.rejected_share;
    let valid = events_month - rejected;
    let trades = valid * traffic.trade_share;
    // Every index projects all attributes, so each item the index covers is stored once more
    // per index (and written once more: `write_units`). Guard items have no symbol or exchange
    // and stay out of the market-data indexes; the latest table has no index.
    let (market, audit, latest) = (&model.tables[0], &model.tables[1], &model.tables[2]);
    let market_indexes = market.indexes.len() as f64;
    let audit_indexes = audit.indexes.len() as f64;

    lines.push(line(
        "EventBridge custom events",
        millions(events_month),
        EVENTBRIDGE_CUSTOM_EVENTS,
        events_month / 1e6,
    ));

    lines.push(line(
        "Lambda requests",
        millions(events_month),
        LAMBDA_REQUESTS,
        events_month / 1e6,
    ));
    let gb_seconds = events_month * traffic.duration_ms.ceil() / 1000.0
        * f64::from(config.lambda.memory_mb)
        / 1024.0;
    let duration_price = match config.lambda.architecture {
        Architecture::Arm64 => LAMBDA_ARM64_GB_SECOND,
        Architecture::X86_64 => LAMBDA_X86_64_GB_SECOND,
    };
    lines.push(line(
        format!(
            "Lambda duration ({} MB x {} ms)",
            config.lambda.memory_mb,
            traffic.duration_ms.ceil()
        ),
        format!("{} GB-s", thousands(gb_seconds.round() as u64)),
        duration_price,
        gb_seconds,
    ));

    let writes = write_units(
        events_month,
        Mix {
            trade_share: traffic.trade_share,
            rejected_share: traffic.rejected_share,
        },
        // Every event priced here comes by the bus (EventBridge events, one invocation each).
        names::Ingest::Bus,
    );
    match config.dynamodb.billing_mode {
        BillingMode::PayPerRequest => {
            for (table, writes) in [
                (market, writes.market()),
                (audit, writes.audit()),
                (latest, writes.latest),
            ] {
                let with = if table.indexes.is_empty() {
                    ""
                } else {
                    " (with indexes)"
                };
                let table = &table.name;
                lines.push(line(
                    format!("DynamoDB writes, {table}{with}"),
                    format!("{} WRU", millions(writes)),
                    DYNAMODB_ON_DEMAND_WRITES,
                    writes / 1e6,
                ));
            }
        }
        BillingMode::Provisioned => {
            let read = f64::from(config.dynamodb.read_capacity.unwrap_or(0));
            let write = f64::from(config.dynamodb.write_capacity.unwrap_or(0));
            // Capacity is set per table and per index.
            let holders = model
                .tables
                .iter()
                .map(|t| 1.0 + t.indexes.len() as f64)
                .sum::<f64>();
            let hours = HOURS_PER_MONTH;
            lines.push(line(
                "DynamoDB provisioned writes",
                format!("{write} WCU x {holders} tables and indexes x {hours} h"),
                DYNAMODB_PROVISIONED_WCU,
                write * holders * hours,
            ));
            lines.push(line(
                "DynamoDB provisioned reads",
                format!("{read} RCU x {holders} tables and indexes x {hours} h"),
                DYNAMODB_PROVISIONED_RCU,
                read * holders * hours,
            ));
            let seconds = DAYS_PER_MONTH * 86_400.0;
            let busiest = model
                .tables
                .iter()
                .flat_map(|t| t.indexes.iter().map(|i| writes.index(i.name)))
                .fold(
                    writes
                        .market_table()
                        .max(writes.audit_table())
                        .max(writes.latest),
                    f64::max,
                );
            let needed = busiest / seconds;
            if needed > write {
                notes.push(format!(
                    "the average write rate needs {needed:.0} WCU on the busiest table or index; {write} are provisioned, so writes will throttle"
                ));
            }
        }
    }

    // TTL keeps records and guards for ttl_days and audit entries for the audit retention;
    // expired items are deleted for free. The steady state holds that many days of traffic.
    let kept = |monthly: f64, days: u32| monthly / DAYS_PER_MONTH * f64::from(days);
    let ttl = config.dynamodb.ttl_days;
    let retention = config.audit.retention_days;
    let market_table =
        stored_gib(kept(valid, ttl), RECORD_KB, 1.0) + stored_gib(kept(trades, ttl), GUARD_KB, 1.0);
    let market_gib = market_table + stored_gib(kept(valid, ttl), RECORD_KB, market_indexes);
    let audit_table = stored_gib(kept(valid, retention), AUDIT_KB, 1.0)
        + stored_gib(kept(rejected, retention), REJECTED_AUDIT_KB, 1.0);
    let audit_gib = audit_table * (1.0 + audit_indexes);
    // One item per symbol and view, rewritten in place: its size does not grow with traffic.
    let latest_gib = stored_gib(LATEST_SYMBOLS * LATEST_VIEWS_PER_SYMBOL, LATEST_KB, 1.0);
    lines.push(line(
        format!(
            "DynamoDB storage, {} and indexes ({ttl} d TTL)",
            market.name
        ),
        format!("{market_gib:.2} GB"),
        DYNAMODB_STORAGE,
        market_gib,
    ));
    lines.push(line(
        format!(
            "DynamoDB storage, {} and index ({retention} d retention)",
            audit.name
        ),
        format!("{audit_gib:.2} GB"),
        DYNAMODB_STORAGE,
        audit_gib,
    ));
    lines.push(line(
        format!(
            "DynamoDB storage, {} ({} items)",
            latest.name,
            thousands((LATEST_SYMBOLS * LATEST_VIEWS_PER_SYMBOL) as u64)
        ),
        format!("{latest_gib:.3} GB"),
        DYNAMODB_STORAGE,
        latest_gib,
    ));
    if config.dynamodb.point_in_time_recovery {
        let tables = market_table + audit_table + latest_gib;
        lines.push(line(
            "DynamoDB point-in-time recovery",
            format!("{tables:.2} GB"),
            DYNAMODB_PITR,
            tables,
        ));
    }

    // The archive takes every event of an accepted source as the bus received it; EventBridge
    // bills the bytes once as they are archived, and the bytes held each month.
    let archived_gb = events_month * EVENT_KB * KIB / GIB;
    lines.push(line(
        "EventBridge archive, events archived",
        format!("{archived_gb:.2} GB"),
        EVENTBRIDGE_ARCHIVE_PROCESSING,
        archived_gb,
    ));
    let archive_days = config.archive.retention_days;
    let archive_gb = archived_gb / DAYS_PER_MONTH * f64::from(archive_days);
    lines.push(line(
        format!("EventBridge archive storage ({archive_days} d retention)"),
        format!("{archive_gb:.2} GB"),
        EVENTBRIDGE_ARCHIVE_STORAGE,
        archive_gb,
    ));

    let log_gb_month = events_month * log_kb_per_invocation(config.lambda.log_level) * KIB / GIB;
    lines.push(line(
        format!(
            "CloudWatch Logs ingestion (LOG_LEVEL {})",
            config.lambda.log_level.as_str()
        ),
        format!("{log_gb_month:.2} GB"),
        LOGS_INGESTION,
        log_gb_month,
    ));
    // Its own line: at volume the metrics' documents cost more to ingest than the metrics do.
    let emf_gb_month = events_month * EMF_DOCUMENT_BYTES / GIB;
    lines.push(line(
        format!(
            "CloudWatch Logs ingestion, EMF ({} B/event)",
            thousands(EMF_DOCUMENT_BYTES as u64)
        ),
        format!("{emf_gb_month:.2} GB"),
        LOGS_INGESTION,
        emf_gb_month,
    ));
    let retained =
        (log_gb_month + emf_gb_month) / DAYS_PER_MONTH * f64::from(config.logs.retention_days);
    lines.push(line(
        format!(
            "CloudWatch Logs storage ({} d retention)",
            config.logs.retention_days
        ),
        format!("{retained:.2} GB"),
        LOGS_STORAGE,
        retained,
    ));
    // Every series has data in a month with traffic: the feed's exchanges and event types all
    // trade, and every reason class is seen sooner or later. CloudWatch bills a series only in
    // the hours it gets data, so a quiet one costs less.
    let series = model.emf.series();
    lines.push(line(
        "CloudWatch custom metrics (EMF)",
        format!("{series} series ({} exchanges)", model.emf.exchanges.len()),
        CUSTOM_METRICS,
        series as f64,
    ));
    lines.push(line(
        format!("CloudWatch dashboard ({})", model.dashboard.name),
        "1 dashboard".to_string(),
        CLOUDWATCH_DASHBOARD,
        1.0,
    ));
    let alarm_price = if config.alarms.period_seconds < 60 {
        ALARM_HIGH_RESOLUTION
    } else {
        ALARM_STANDARD
    };
    let alarm_metrics: usize = model.alarms.iter().map(|a| a.metric_count()).sum();
    lines.push(line(
        "CloudWatch alarms",
        format!("{} alarms, {alarm_metrics} metrics", model.alarms.len()),
        alarm_price,
        alarm_metrics as f64,
    ));

    if config.region != "us-east-1" {
        notes.push(format!(
            "prices are us-east-1's; {} may differ (see the pages below)",
            config.region
        ));
    }
    notes.push(
        "not counted: free tiers, cold-start init time, retries, DLQ and SNS traffic (cents), \
         replays (each replayed event is delivered, stored and audited again, and queries \
         SymbolIndex), reads by operators, log compression (storage is counted uncompressed, \
         an upper bound)"
            .to_string(),
    );
    Estimate { lines, notes }
}

/// `cargo xtask cost --stack S ...`: the estimate of stack `stack` at `traffic`, printed.
pub fn run(root: &std::path::Path, stack: &str, traffic: &Traffic) -> anyhow::Result<()> {
    let config = StackConfig::load(root, stack)?;
    let model = Model::from_stack(&config);
    let estimate = estimate(&config, &model, traffic);
    print(stack, &config, traffic, &estimate);
    Ok(())
}

pub fn print(stack: &str, config: &StackConfig, traffic: &Traffic, estimate: &Estimate) {
    let duration_assumed = traffic.duration_assumed;
    println!(
        "monthly cost estimate for stack {stack} ({}, Lambda {} {} MB, DynamoDB {})",
        config.region,
        config.lambda.architecture.as_str(),
        config.lambda.memory_mb,
        config.dynamodb.billing_mode.as_str()
    );
    println!(
        "  {} events/day = {:.1} M events/month (730 h); {:.0}% of valid events are trades with a \
         trade_id, {:.1}% rejected",
        thousands(traffic.events_per_day),
        traffic.events_per_day as f64 * DAYS_PER_MONTH / 1e6,
        traffic.trade_share * 100.0,
        traffic.rejected_share * 100.0
    );
    println!(
        "  per event: a valid one writes a record ({RECORD_KB} KB), an audit entry ({AUDIT_KB} KB) \
         and its latest-price item ({LATEST_KB} KB), a trade also a guard ({GUARD_KB} KB); a \
         rejected one an audit entry with the raw event (up to {REJECTED_AUDIT_KB} KB); plain \
         PutItem, 1 WRU per item up to 1 KB"
    );
    println!(
        "  invocation duration {} ms{}\n",
        traffic.duration_ms,
        if duration_assumed {
            " (assumed: pass --duration-ms with a measured value)"
        } else {
            ""
        }
    );
    println!("  {:<52} {:>20} {:>12}", "item", "per month", "USD/month");
    for l in &estimate.lines {
        println!(
            "  {:<52} {:>20} {:>12.2}",
            l.item, l.quantity, l.monthly_usd
        );
    }
    println!("  {:<52} {:>20} {:>12.2}", "total", "", estimate.total());
    for note in &estimate.notes {
        println!("\n  note: {note}");
    }
    println!("\nunit prices (us-east-1 list prices, reviewed {PRICES_REVIEWED}):");
    let mut seen = Vec::new();
    for l in &estimate.lines {
        let key = (l.price.per, l.price.page);
        if seen.contains(&key) {
            continue;
        }
        seen.push(key);
        let unconfirmed = UNCONFIRMED_PRICES
            .iter()
            .any(|p| (p.per, p.page) == (l.price.per, l.price.page));
        let taken = if unconfirmed {
            format!(" (taken {UNCONFIRMED_PRICES_TAKEN}, not yet compared with the page)")
        } else {
            String::new()
        };
        println!(
            "  ${} {}  {}{taken}",
            usd(l.price.usd),
            l.price.per,
            l.price.page
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stack(name: &str) -> StackConfig {
        StackConfig::load(&crate::workspace_root(), name).expect("committed stack")
    }

    fn traffic(events_per_day: u64) -> Traffic {
        Traffic {
            events_per_day,
            duration_ms: 20.0,
            duration_assumed: false,
            trade_share: 0.4,
            rejected_share: 0.02,
        }
    }

    fn cost_of(estimate: &Estimate, prefix: &str) -> f64 {
        estimate
            .lines
            .iter()
            .filter(|l| l.item.starts_with(prefix))
            .map(|l| l.monthly_usd)
            .sum()
    }

    #[test]
    fn prod_at_five_million_events_a_day_adds_up() {
        let config = stack("prod");
        let model = Model::from_stack(&config);
        let e = estimate(&config, &model, &traffic(5_000_000));
        let events = 5e6 * 730.0 / 24.0;
        let close = |a: f64, b: f64| (a - b).abs() < 1e-6 * b.max(1.0);
        assert!(close(
            cost_of(&e, "EventBridge custom events"),
            events / 1e6 * 1.00
        ));
        assert!(close(cost_of(&e, "Lambda requests"), events / 1e6 * 0.20));
        // 1024 MB x 20 ms = 0.02 GB-s per event, at the arm64 price.
        assert!(close(
            cost_of(&e, "Lambda duration"),
            events * 0.02 * 0.000_013_333_4
        ));
        // Per valid event: record + 2 index copies + audit + 1 index copy + the latest-price
        // put = 6 WRU, a trade one more for its guard; per rejected event: audit + 1 index copy.
        let valid = events * 0.98;
        let wru = valid * 6.0 + valid * 0.4 + events * 0.02 * 2.0;
        assert!(close(cost_of(&e, "DynamoDB writes"), wru / 1e6 * 0.625));
        assert!(close(
            cost_of(&e, "DynamoDB writes, latest-prices"),
            valid / 1e6 * 0.625
        ));
        assert!(cost_of(&e, "DynamoDB point-in-time") > 0.0, "prod has PITR");
        assert!(cost_of(&e, "CloudWatch alarms") > 0.0);
        // 95 series: 5 + (6 exchanges + OTHER) x 3 event types x 4 + 6 reason classes.
        assert!(close(cost_of(&e, "CloudWatch custom"), 95.0 * 0.30));
        let sum: f64 = e.lines.iter().map(|l| l.monthly_usd).sum();
        assert!(close(e.total(), sum));
    }

    #[test]
    fn storage_follows_the_ttl_and_the_audit_retention_and_dev_has_no_pitr() {
        let dev = stack("dev");
        let model = Model::from_stack(&dev);
        let short = estimate(&dev, &model, &traffic(1_000_000));
        let records = |e: &Estimate| cost_of(e, "DynamoDB storage, market-data");
        let trail = |e: &Estimate| cost_of(e, "DynamoDB storage, audit-trail");
        let mut longer = dev.clone();
        longer.dynamodb.ttl_days *= 2;
        let long = estimate(&longer, &Model::from_stack(&longer), &traffic(1_000_000));
        assert!((records(&long) / records(&short) - 2.0).abs() < 1e-9);
        assert!((trail(&long) / trail(&short) - 1.0).abs() < 1e-9);
        let mut kept = dev.clone();
        kept.audit.retention_days *= 3;
        let kept = estimate(&kept, &Model::from_stack(&kept), &traffic(1_000_000));
        assert!((trail(&kept) / trail(&short) - 3.0).abs() < 1e-9);
        assert!((records(&kept) / records(&short) - 1.0).abs() < 1e-9);
        assert_eq!(cost_of(&short, "DynamoDB point-in-time"), 0.0);
        // The latest table keeps one item per symbol and view whatever the traffic and TTL:
        // 20 000 items of 0.3 KB + 100 B overhead.
        let latest = |e: &Estimate| cost_of(e, "DynamoDB storage, latest-prices");
        let gib = 20_000.0 * (0.3 * 1024.0 + 100.0) / (1024.0 * 1024.0 * 1024.0);
        assert!((latest(&short) - gib * 0.25).abs() < 1e-12);
        assert_eq!(latest(&short), latest(&long));
        let busy = estimate(&dev, &model, &traffic(100_000_000));
        assert_eq!(latest(&short), latest(&busy));
    }

    #[test]
    fn alarms_are_priced_per_metric_they_read() {
        let config = stack("prod");
        let model = Model::from_stack(&config);
        let e = estimate(&config, &model, &traffic(1));
        // 21 alarms (the stream's iterator age among them, two per table); the rejected share
        // reads 4 metrics and market-data's two DynamoDB alarms 3 each (GetItem, PutItem,
        // Query): 21 - 3 + 4 + 3 + 3 = 28 alarm metrics at $0.10 (prod's period is 60 s).
        assert_eq!(model.alarms.len(), 21);
        let metrics: usize = model.alarms.iter().map(|a| a.metric_count()).sum();
        assert_eq!(metrics, 28);
        assert!((cost_of(&e, "CloudWatch alarms") - 2.8).abs() < 1e-9);
        let mut fast = config.clone();
        fast.alarms.period_seconds = 30;
        let e = estimate(&fast, &Model::from_stack(&fast), &traffic(1));
        assert!((cost_of(&e, "CloudWatch alarms") - 28.0 * 0.30).abs() < 1e-9);
    }

    #[test]
    fn the_archive_is_billed_per_gb_archived_and_per_gb_month_kept() {
        let config = stack("prod");
        let model = Model::from_stack(&config);
        // 10 000 events/s: 864 M a day, 26 280 M a month (730 h) of 0.5 KB each.
        let e = estimate(&config, &model, &traffic(864_000_000));
        let events = 864e6 * 730.0 / 24.0;
        let gb = events * 512.0 / (1024.0 * 1024.0 * 1024.0);
        let close = |a: f64, b: f64| (a - b).abs() < 1e-9 * b.max(1.0);
        assert!(close(cost_of(&e, "EventBridge archive, events"), gb * 0.10));
        // Prod keeps 30 days: 30 of the month's 30.42 days of events are held at any time.
        assert_eq!(config.archive.retention_days, 30);
        let held = gb / (730.0 / 24.0) * 30.0;
        assert!(close(
            cost_of(&e, "EventBridge archive storage"),
            held * 0.023
        ));
        let mut longer = config.clone();
        longer.archive.retention_days = 60;
        let e = estimate(&longer, &Model::from_stack(&longer), &traffic(864_000_000));
        assert!(close(
            cost_of(&e, "EventBridge archive storage"),
            2.0 * held * 0.023
        ));
    }

    #[test]
    fn the_emf_documents_are_their_own_log_line_and_the_series_follow_the_exchanges() {
        let config = stack("prod");
        let model = Model::from_stack(&config);
        // 10 000 events/s: 26 280 M documents a month of 1 000 bytes, 24 475 GB at $0.50.
        let e = estimate(&config, &model, &traffic(864_000_000));
        let documents: f64 = 864e6 * 730.0 / 24.0;
        let gb = documents * 1_000.0 / (1024.0 * 1024.0 * 1024.0);
        assert!((gb - 24_475.16).abs() < 0.01, "{gb}");
        let emf = cost_of(&e, "CloudWatch Logs ingestion, EMF");
        assert!((emf - gb * 0.50).abs() < 1e-6, "{emf}");
        // The other lines, at info: 0.75 KB an invocation.
        let other = cost_of(&e, "CloudWatch Logs ingestion (");
        assert!(
            (other - documents * 0.75 * 1024.0 / (1024.0 * 1024.0 * 1024.0) * 0.50).abs() < 1e-6
        );
        // The series do not grow with traffic, only with the exchanges listed.
        let metrics = |e: &Estimate| cost_of(e, "CloudWatch custom metrics");
        assert!((metrics(&e) - 95.0 * 0.30).abs() < 1e-9);
        let mut more = config.clone();
        more.metrics.exchanges.push("CBOE".into());
        let e = estimate(&more, &Model::from_stack(&more), &traffic(864_000_000));
        assert!((metrics(&e) - 107.0 * 0.30).abs() < 1e-9);
    }

    #[test]
    fn the_dashboard_costs_the_same_at_any_traffic() {
        let config = stack("dev");
        let model = Model::from_stack(&config);
        for events in [1, 1_000_000_000] {
            let e = estimate(&config, &model, &traffic(events));
            assert!((cost_of(&e, "CloudWatch dashboard") - 3.00).abs() < 1e-12);
        }
    }

    #[test]
    fn numbers_print_the_way_prices_are_quoted() {
        assert_eq!(usd(1.0), "1.00");
        assert_eq!(usd(0.2), "0.20");
        assert_eq!(usd(0.625), "0.625");
        assert_eq!(usd(0.000_013_333_4), "0.0000133334");
        assert_eq!(thousands(5_000_000), "5,000,000");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(0), "0");
    }

    #[test]
    fn every_price_names_its_page() {
        let config = stack("prod");
        let e = estimate(&config, &Model::from_stack(&config), &traffic(1));
        for l in &e.lines {
            assert!(l.price.page.starts_with("https://aws.amazon.com/"), "{l:?}");
        }
    }
}
