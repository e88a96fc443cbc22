//! The capacity report as text: one table per path, the shared limits, the quotas and prices.

use super::{ASSUMED_BATCH_RECORD_MS, Load, Path, PathCost, PathReport, Report, Row, quotas};
use crate::cost::{self, PRICES_REVIEWED, thousands, usd};
use crate::model::Model;
use crate::stack::{EventClass, StackConfig, StreamMode};

/// Whole numbers from 100 up (and whole values below), one decimal otherwise.
pub(super) fn amount(value: f64) -> String {
    if value >= 100.0 || value.fract() == 0.0 {
        thousands(value.round() as u64)
    } else {
        format!("{value:.1}")
    }
}

fn rate(binds: Option<u64>) -> String {
    binds.map_or_else(|| "never".to_string(), thousands)
}

fn classes(classes: &[EventClass]) -> String {
    if classes.is_empty() {
        return "no class".into();
    }
    classes
        .iter()
        .map(|c| c.as_str())
        .collect::<Vec<_>>()
        .join(" and ")
}

fn dollars(value: f64) -> String {
    if value >= 100.0 {
        format!("${}", thousands(value.round() as u64))
    } else {
        format!("${value:.2}")
    }
}

fn cost_line(cost: &PathCost) -> String {
    format!(
        "{} per million events, {}/month",
        dollars(cost.per_million),
        dollars(cost.per_month)
    )
}

fn header() {
    println!(
        "  {:<44} {:>9} {:>9} {:>9} {:<28} {:>10} {:>10}",
        "", "share", "alone", "limit", "", "binds at", "alone"
    );
}

fn row(row: &Row, alone: bool) {
    let (limit, source) = row.limit.as_ref().map_or_else(
        || ("-".to_string(), String::new()),
        |l| (amount(l.value), l.source.clone()),
    );
    let (need_alone, binds_alone) = if alone {
        (amount(row.need_alone), rate(row.binds_alone))
    } else {
        (String::new(), String::new())
    };
    let binds = if row.limit.is_some() {
        rate(row.binds_at)
    } else {
        String::new()
    };
    let binds_alone = if row.limit.is_some() {
        binds_alone
    } else {
        String::new()
    };
    println!(
        "  {:<44} {:>9} {:>9} {:>9} {:<28} {:>10} {:>10}",
        row.what,
        amount(row.need),
        need_alone,
        limit,
        source,
        binds,
        binds_alone
    );
}

fn binds_first(first: Option<(&Row, u64)>) -> String {
    match first {
        Some((row, rate)) => format!("{} at {} events/s", row.what, thousands(rate)),
        None => "nothing modelled, below 10^12 events/s".into(),
    }
}

/// At a share of the total rate: the total, and what the path carries then.
fn binds_first_at_share(first: Option<(&Row, u64)>, share: f64) -> String {
    match first {
        Some((row, rate)) => format!(
            "{} at {} events/s in all ({} on this path)",
            row.what,
            thousands(rate),
            thousands((rate as f64 * share).round() as u64)
        ),
        None => binds_first(None),
    }
}

fn path(report: &PathReport, model: &Model, total: u64) {
    let title = match report.path {
        Path::Bus => "EventBridge path".to_string(),
        Path::Stream => {
            let mode = model
                .kinesis
                .as_ref()
                .map_or(StreamMode::OnDemand, |k| k.stream.mode);
            format!("Kinesis stream path ({})", mode.as_str())
        }
    };
    println!(
        "\n{title}: {}, {} of {} events/s",
        classes(&report.classes),
        amount(report.events_per_second),
        thousands(total)
    );
    header();
    for r in &report.rows {
        row(r, true);
    }
    if report.events_per_second > 0.0 {
        let share = report.events_per_second / total as f64;
        println!(
            "  binds first: {}",
            binds_first_at_share(report.binds_first(), share)
        );
    }
    println!(
        "  binds first alone: {}",
        binds_first(report.binds_first_alone())
    );
    println!("  cost at its share: {}", cost_line(&report.cost));
    println!(
        "  cost alone ({} events/s): {}",
        thousands(total),
        cost_line(&report.cost_alone)
    );
}

pub fn print(stack: &str, config: &StackConfig, model: &Model, load: &Load, report: &Report) {
    println!(
        "capacity of stack {stack} ({}) at {} events/s, trade share {}",
        model.region,
        thousands(load.events_per_second),
        load.trade_share
    );
    println!(
        "  Lambda {} MB; {} ms per bus invocation{}",
        model.function.memory_mb,
        load.duration_ms,
        if load.duration_assumed {
            " (assumed: pass --duration-ms with a measured value)"
        } else {
            ""
        }
    );
    if let Some(kinesis) = &model.kinesis {
        let batch = kinesis.mapping.config.batch_size;
        match load.batch_duration_ms {
            Some(ms) => println!("  {ms} ms per batch of {batch} records"),
            None => println!(
                "  {} ms per batch of {batch} records (assumed: {ASSUMED_BATCH_RECORD_MS} ms a \
                 record; pass --batch-duration-ms with a measured value)",
                f64::from(batch) * ASSUMED_BATCH_RECORD_MS
            ),
        }
    }
    match config.lambda.reserved_concurrency {
        Some(reserved) => println!(
            "  concurrency available: {reserved} (lambda.reserved_concurrency; the account has {})",
            thousands(quotas::LAMBDA_CONCURRENCY.value as u64)
        ),
        None => println!(
            "  concurrency available: the account's {}, shared with every function in {}",
            thousands(quotas::LAMBDA_CONCURRENCY.value as u64),
            model.region
        ),
    }
    println!(
        "  share: need at the path's share of the rate; alone: with every event on the path;\n  \
         binds at: the highest total rate (events/s) within the limit, at the share or alone"
    );
    for p in &report.paths {
        path(p, model, load.events_per_second);
    }
    if !report.together.is_empty() {
        println!("\nboth paths together: one function, one pair of tables");
        header();
        for r in &report.together {
            row(r, false);
        }
        println!("  cost: {}", cost_line(&report.cost));
    }
    println!(
        "\nbinds first for stack {stack}: {}",
        binds_first(report.binds_first())
    );
    for note in &report.notes {
        println!("\n  note: {note}");
    }
    println!(
        "\nquotas (account defaults, reviewed {}):",
        quotas::QUOTAS_REVIEWED
    );
    for q in quotas::all(&model.region) {
        println!("  {} {}  {}", amount(q.value), q.per, q.page);
    }
    println!(
        "\nunit prices (us-east-1 list prices, reviewed {PRICES_REVIEWED}; Kinesis {}):",
        cost::KINESIS_PRICES_REVIEWED
    );
    let mut prices = vec![
        cost::EVENTBRIDGE_CUSTOM_EVENTS,
        cost::LAMBDA_REQUESTS,
        match config.lambda.architecture {
            crate::stack::Architecture::Arm64 => cost::LAMBDA_ARM64_GB_SECOND,
            crate::stack::Architecture::X86_64 => cost::LAMBDA_X86_64_GB_SECOND,
        },
        cost::DYNAMODB_ON_DEMAND_WRITES,
    ];
    match model.kinesis.as_ref().map(|k| k.stream.mode) {
        Some(StreamMode::OnDemand) => prices.extend([
            cost::KINESIS_ON_DEMAND_STREAM_HOUR,
            cost::KINESIS_ON_DEMAND_INGESTED,
            cost::KINESIS_ON_DEMAND_RETRIEVED,
        ]),
        Some(StreamMode::Provisioned) => {
            prices.extend([cost::KINESIS_SHARD_HOUR, cost::KINESIS_PUT_PAYLOAD_UNITS])
        }
        None => {}
    }
    for p in prices {
        println!("  ${} {}  {}", usd(p.usd), p.per, p.page);
    }
}
