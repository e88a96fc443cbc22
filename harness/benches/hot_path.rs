//! Criterion micro-benchmarks of the per-event work, with the network taken out:
//! `decode` (parse and validate), `items` (decode plus the DynamoDB items of a stored event)
//! and `process` (`Processor::process`, the deployed path, against a connector that answers
//! without a socket). `cargo bench -p harness --bench hot_path`.

use std::hint::black_box;
use std::time::Duration;

use chrono::Utc;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use processor::event::{self, Rules};
use processor::item::{self, AuditContext};

use harness::offline;

const EVENTS: usize = 1_000;

fn rules() -> Rules {
    let settings = offline::settings();
    Rules {
        accepted_sources: settings.accepted_sources,
        max_future_skew_seconds: settings.max_future_skew_seconds,
        max_event_age_seconds: settings.max_event_age_seconds,
        replay_max_age_seconds: None,
    }
}

fn hot_path(c: &mut Criterion) {
    let now = Utc::now();
    let events = offline::events(EVENTS, now);
    let rules = rules();
    let mut group = c.benchmark_group("hot_path");
    group.throughput(Throughput::Elements(EVENTS as u64));
    group.measurement_time(Duration::from_secs(5));

    group.bench_function("decode", |b| {
        b.iter(|| {
            for raw in &events {
                let _ = black_box(event::decode(black_box(raw), &rules, now));
            }
        })
    });

    group.bench_function("items", |b| {
        let ctx = AuditContext {
            request_id: "11111111-2222-4333-8444-555566667777",
            environment: "bench",
            processing_ms: 0.1,
            retention_days: names::Settings::DEFAULT_AUDIT_RETENTION_DAYS,
        };
        b.iter(|| {
            for raw in &events {
                match event::decode(black_box(raw), &rules, now) {
                    Ok(event) => {
                        let key = item::dedupe_key(&event);
                        if let Some(key) = &key {
                            black_box(item::guard(&event, key, 30));
                        }
                        black_box(item::record(
                            &event,
                            key.as_deref(),
                            now,
                            ctx.request_id,
                            30,
                        ));
                        let received_at = event::format_timestamp(now);
                        black_box(item::processed_audit(&event, &received_at, &ctx));
                    }
                    Err(rejection) => {
                        black_box(item::audit_for_rejection(&rejection, raw, &ctx));
                    }
                }
            }
        })
    });

    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => panic!("tokio runtime: {err}"),
    };
    let processor = runtime.block_on(offline::offline_processor());
    // A thousand SDK round trips per iteration: fewer, longer samples.
    group.sample_size(20);
    group.bench_function("process", |b| {
        b.iter(|| {
            for raw in &events {
                let _ = black_box(
                    runtime.block_on(processor.process(black_box(raw), "11111111-2222-4333")),
                );
            }
        })
    });
    group.finish();
}

criterion_group!(benches, hot_path);
criterion_main!(benches);
