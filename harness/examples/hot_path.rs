//! The processor's per-event CPU cost with the network taken out, as one loop on one thread:
//! `cargo xtask bench` runs it natively for events per second and under callgrind for
//! instructions per event (it collects only inside `measured_loop`).
//!
//! ```text
//! hot_path [--events FILE] [--count N] [--passes N] [--mode process|items|batch]
//!          [--batch-size N] [--logs] [--out FILE]
//! ```
//!
//! `--events` is a file of EventBridge events, one JSON document per line (default: a built-in
//! session of `--count` events). `--mode process` (default) runs `Processor::process`, the
//! deployed code path, with a DynamoDB client whose connector answers without a socket;
//! `--mode items` stops at the DynamoDB items (decode, validate, dedupe key, guard, record,
//! PROCESSED audit). `--mode batch` hands the same events to `Processor::process_batch` as
//! Kinesis records, `--batch-size` to an invocation (default 500), keyed by instrument as the
//! publisher keys them; the batches are built before the clock starts. `--logs` turns on the JSON log line and the EMF metrics line that the
//! Lambda writes per event (to stdout: send it to /dev/null). The result is one JSON line,
//! written to `--out` or stderr.

use std::process::ExitCode;
use std::time::Instant;

use chrono::Utc;
use processor::event::{self, Rules};
use processor::item::{self, AuditContext};
use processor::{Processor, metrics, telemetry};

use harness::offline;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Process,
    Items,
    Batch,
}

/// What the measured loop needs, built once before it.
struct Run<'a> {
    runtime: &'a tokio::runtime::Runtime,
    processor: &'a Processor,
    rules: &'a Rules,
    mode: Mode,
    /// For [`Mode::Batch`]: the events as Kinesis batches.
    batches: Vec<processor::batch::KinesisEvent>,
}

struct Args {
    events: Option<String>,
    count: usize,
    passes: usize,
    mode: Mode,
    batch_size: usize,
    logs: bool,
    out: Option<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        events: None,
        count: 10_000,
        passes: 1,
        mode: Mode::Process,
        batch_size: 500,
        logs: false,
        out: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--events" => args.events = Some(value()?),
            "--count" => args.count = value()?.parse().map_err(|e| format!("--count: {e}"))?,
            "--passes" => args.passes = value()?.parse().map_err(|e| format!("--passes: {e}"))?,
            "--mode" => {
                args.mode = match value()?.as_str() {
                    "process" => Mode::Process,
                    "items" => Mode::Items,
                    "batch" => Mode::Batch,
                    other => {
                        return Err(format!(
                            "--mode {other:?}: expected process, items or batch"
                        ));
                    }
                }
            }
            "--batch-size" => {
                args.batch_size = value()?.parse().map_err(|e| format!("--batch-size: {e}"))?;
                if !(1..=10_000).contains(&args.batch_size) {
                    return Err("--batch-size: Lambda takes 1 to 10000 records".into());
                }
            }
            "--logs" => args.logs = true,
            "--out" => args.out = Some(value()?),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(args)
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("hot_path: {err}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let args = parse_args()?;
    let events: Vec<String> = match &args.events {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| format!("reading {path}: {e}"))?
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(String::from)
            .collect(),
        None => offline::events(args.count, Utc::now()),
    };
    if events.is_empty() {
        return Err("no events to run".into());
    }
    // Lambda hands the request id over with each event; making them here keeps their
    // formatting out of the measurement.
    let request_ids: Vec<String> = (0..events.len())
        .map(|i| format!("{i:08x}-1111-4222-8333-444455556666"))
        .collect();
    if args.logs {
        telemetry::init("info");
        metrics::enable();
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("starting the runtime: {e}"))?;
    let processor = runtime.block_on(offline::offline_processor());
    let settings = processor.settings();
    let rules = Rules {
        accepted_sources: settings.accepted_sources.clone(),
        max_future_skew_seconds: settings.max_future_skew_seconds,
        max_event_age_seconds: settings.max_event_age_seconds,
        replay_max_age_seconds: None,
    };
    let batches = match args.mode {
        Mode::Batch => batches(&events, args.batch_size)?,
        _ => Vec::new(),
    };
    let run = Run {
        runtime: &runtime,
        processor: &processor,
        rules: &rules,
        mode: args.mode,
        batches,
    };

    // One untimed pass over a slice warms the allocator, the SDK's lazily built parts and the
    // caches, as the first invocations of a warm Lambda would.
    let warm = events.len().min(200);
    if run.mode == Mode::Batch {
        run_batches(&run, &run.batches[..1], 1);
    } else {
        run_events(&run, &events[..warm], &request_ids, 1);
    }

    let started = Instant::now();
    let counts = measured_loop(&run, &events, &request_ids, args.passes);
    let elapsed = started.elapsed().as_secs_f64();
    let line = format!(
        r#"{{"events":{},"elapsed_s":{elapsed},"ok":{},"rejected":{},"failed":{}}}"#,
        events.len() * args.passes,
        counts[0],
        counts[1],
        counts[2]
    );
    match &args.out {
        Some(path) => std::fs::write(path, line + "\n").map_err(|e| format!("writing {path}: {e}")),
        None => {
            eprintln!("{line}");
            Ok(())
        }
    }
}

/// The measured region. Not inlined, so that callgrind can collect inside it alone (the
/// warm-up calls [`run_events`] directly and is not collected).
#[inline(never)]
fn measured_loop(run: &Run, events: &[String], request_ids: &[String], passes: usize) -> [u64; 3] {
    match run.mode {
        Mode::Batch => run_batches(run, &run.batches, passes),
        _ => run_events(run, events, request_ids, passes),
    }
}

/// The events as Kinesis batches of `size` records, one shard, keyed by instrument.
fn batches(events: &[String], size: usize) -> Result<Vec<processor::batch::KinesisEvent>, String> {
    let arrival = Utc::now();
    let arn = "arn:aws:kinesis:us-east-1:123456789012:stream/market-data-stream-bench";
    let mut records = Vec::with_capacity(events.len());
    for (n, raw) in events.iter().enumerate() {
        let key = harness::stream::envelope_partition_key(raw, &format!("event-{n}"));
        let sequence = format!("{:056}", n + 1);
        let record = harness::stream::record(
            "shardId-000000000000",
            &sequence,
            &key,
            raw.as_bytes(),
            arn,
            arrival,
        )
        .map_err(|e| format!("building record {n}: {e}"))?;
        records.push(record);
    }
    Ok(records
        .chunks(size)
        .map(|chunk| harness::stream::batch(chunk.to_vec()))
        .collect())
}

/// Every batch `passes` times, each as one invocation. Records the processor accounts for
/// count as ok (rejected ones among them cannot be told apart here), the rest as failed.
#[inline(never)]
fn run_batches(run: &Run, batches: &[processor::batch::KinesisEvent], passes: usize) -> [u64; 3] {
    let mut counts = [0u64; 3];
    for pass in 0..passes {
        for (n, batch) in batches.iter().enumerate() {
            let request_id = format!("{pass:04x}{n:04x}-1111-4222-8333-444455556666");
            let (_, summary) =
                run.runtime
                    .block_on(run.processor.process_batch(batch, &request_id, None));
            counts[0] += summary.accounted as u64;
            counts[2] += summary.unaccounted as u64;
        }
    }
    counts
}

/// Everything the processor does per event, `passes` times over `events`.
#[inline(never)]
fn run_events(run: &Run, events: &[String], request_ids: &[String], passes: usize) -> [u64; 3] {
    let mut counts = [0u64; 3];
    for _ in 0..passes {
        for (raw, request_id) in events.iter().zip(request_ids) {
            let slot = match run.mode {
                Mode::Process => match run.runtime.block_on(run.processor.process(raw, request_id))
                {
                    Ok(outcome) if outcome.status == "REJECTED" => 1,
                    Ok(_) => 0,
                    Err(_) => 2,
                },
                Mode::Items | Mode::Batch => items(run, raw, request_id),
            };
            counts[slot] += 1;
        }
    }
    counts
}

/// The CPU part of `Processor::process` up to the DynamoDB items, without the SDK.
fn items(run: &Run, raw: &str, request_id: &str) -> usize {
    let settings = run.processor.settings();
    let rules = run.rules;
    let now = Utc::now();
    let ctx = AuditContext {
        request_id,
        environment: &settings.environment,
        processing_ms: 0.1,
        retention_days: settings.audit_retention_days,
    };
    match event::decode(raw, rules, now) {
        Ok(event) => {
            let key = item::dedupe_key(&event);
            if let Some(key) = &key {
                std::hint::black_box(item::guard(&event, key, settings.ttl_days));
            }
            let record = item::record(&event, key.as_deref(), now, request_id, settings.ttl_days);
            let received_at = event::format_timestamp(now);
            std::hint::black_box(record);
            std::hint::black_box(item::processed_audit(&event, &received_at, &ctx));
            0
        }
        Err(rejection) => {
            std::hint::black_box(item::audit_for_rejection(&rejection, raw, &ctx));
            1
        }
    }
}
