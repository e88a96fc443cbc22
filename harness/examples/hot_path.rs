//! The processor's per-event CPU cost with the network taken out, as one loop on one thread:
//! `cargo xtask bench` runs it natively for events per second and under callgrind for
//! instructions per event (it collects only inside `measured_loop`).
//!
//! ```text
//! hot_path [--events FILE] [--count N] [--passes N] [--mode process|items] [--logs] [--out FILE]
//! ```
//!
//! `--events` is a file of EventBridge events, one JSON document per line (default: a built-in
//! session of `--count` events). `--mode process` (default) runs `Processor::process`, the
//! deployed code path, with a DynamoDB client whose connector answers without a socket;
//! `--mode items` stops at the DynamoDB items (decode, validate, dedupe key, guard, record,
//! PROCESSED audit). `--logs` turns on the JSON log line and the EMF metrics line that the
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
}

/// What the measured loop needs, built once before it.
struct Run<'a> {
    runtime: &'a tokio::runtime::Runtime,
    processor: &'a Processor,
    rules: &'a Rules,
    mode: Mode,
}

struct Args {
    events: Option<String>,
    count: usize,
    passes: usize,
    mode: Mode,
    logs: bool,
    out: Option<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        events: None,
        count: 10_000,
        passes: 1,
        mode: Mode::Process,
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
                    other => return Err(format!("--mode {other:?}: expected process or items")),
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
    };
    let run = Run {
        runtime: &runtime,
        processor: &processor,
        rules: &rules,
        mode: args.mode,
    };

    // One untimed pass over a slice warms the allocator, the SDK's lazily built parts and the
    // caches, as the first invocations of a warm Lambda would.
    let warm = events.len().min(200);
    run_events(&run, &events[..warm], &request_ids, 1);

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
    run_events(run, events, request_ids, passes)
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
                Mode::Items => items(run, raw, request_id),
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
