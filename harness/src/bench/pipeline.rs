//! Both handlers behind the local pipeline (moto's bus, rules and delivery queue), each on a
//! fresh local stack, fed the same session: events per second and put → handled latency, and
//! how busy the emulator was, which is where the time goes.
//!
//! Ours runs as `cargo xtask local` runs it: the local runner hands each delivery to
//! `Processor::process`, four at a time. The baseline runs as four sandboxes would: four
//! `bench.py consumer` processes reading the same queue and calling the handler.

use std::collections::HashMap;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use tokio::sync::watch;

use super::report::{Better, PipelineRun, Report, Row};
use super::startup::Side;
use super::{Env, cpu, percentile};
use crate::aws::sdk_error;
use crate::local::LocalStack;
use crate::scenario::{self, Clients, Published};
use crate::session::{Expect, SampleEvent};

/// Concurrent invocations on both sides (the local runner's default).
const WORKERS: usize = 4;
/// Events published at a time, and how many may wait in the delivery queue: moto's queue slows
/// down with its length, and a long backlog would measure the queue, not the handlers.
const PUBLISH_CHUNK: usize = 50;
const MAX_BACKLOG: u64 = 60;
const DRAIN_TIMEOUT: Duration = Duration::from_secs(600);

pub async fn measure(env: &Env, session: &[SampleEvent], report: &mut Report) -> Result<()> {
    let mut runs = Vec::new();
    for side in [Side::Ours, Side::Baseline] {
        let run = run_side(env, side, session).await?;
        println!(
            "  {}: {} routed events in {:.1} s = {:.0} events/s; put → handled p50 {:.0} ms, p99 {:.0} ms; moto busy {:.0}%",
            side.label(),
            run.routed,
            run.seconds,
            run.events_per_second(),
            run.p50_ms,
            run.p99_ms,
            run.moto_busy * 100.0
        );
        runs.push(run);
    }
    let (ours, baseline) = (&runs[0], &runs[1]);
    report.rows.push(Row::new(
        "local pipeline throughput",
        "events/s",
        Some(ours.events_per_second()),
        Some(baseline.events_per_second()),
        Better::Higher,
        "moto bus → queue → handler → moto DynamoDB, 4 concurrent",
    ));
    report.rows.push(Row::new(
        "local pipeline put → handled p50",
        "ms",
        Some(ours.p50_ms),
        Some(baseline.p50_ms),
        Better::Lower,
        "PutEvents to the handler's received_at",
    ));
    report.rows.push(Row::new(
        "local pipeline put → handled p99",
        "ms",
        Some(ours.p99_ms),
        Some(baseline.p99_ms),
        Better::Lower,
        "",
    ));
    report.rows.push(Row::new(
        "moto CPU busy during the pipeline run",
        "%",
        Some(ours.moto_busy * 100.0),
        Some(baseline.moto_busy * 100.0),
        Better::Neutral,
        "share of wall time the emulator process spent on a core",
    ));
    report.rows.push(Row::new(
        "moto CPU per routed event",
        "ms",
        Some(ours.moto_ms_per_event()),
        Some(baseline.moto_ms_per_event()),
        Better::Neutral,
        "the emulator's own work per event (bus, queue, DynamoDB writes): next to the handler's \
         CPU per event above, this is where the pipeline's time goes",
    ));
    report.pipeline = runs;
    Ok(())
}

/// The stack whose stream the batch path's run reads: its shards and parallelization factor
/// give the mapping 4 batches at once, as many as the queue side's workers.
const STREAM_STACK: &str = "staging";
/// Records put on the stream per PutRecords request (its limit is 500).
const STREAM_CHUNK: usize = 500;

/// Ours on the batch path: the same session, every class put on `STREAM_STACK`'s stream, read
/// by the local stand-in for the event source mapping and handed to `Processor::process_batch`.
/// The bus would not route some events; the stream has no rules, so those are left out to give
/// both paths the same work.
pub async fn measure_stream(env: &Env, session: &[SampleEvent]) -> Result<PipelineRun> {
    let local = LocalStack::start(&env.root, STREAM_STACK).await?;
    let outputs = &local.outputs;
    let route = scenario::Route::for_stack(&local.model, outputs)
        .map(|route| scenario::Route {
            classes: vec![
                infra::stack::EventClass::Trade,
                infra::stack::EventClass::Quote,
            ],
            ..route
        })
        .with_context(|| format!("stack {STREAM_STACK} has no stream"))?;
    let clients = Clients::for_stack(outputs).await;
    let runner = local.runner(0)?;
    let Some(mut stream) = local.stream_runner(runner.processor.clone(), 0)? else {
        bail!("stack {STREAM_STACK} has no stream to read");
    };
    stream.budget = runner.budget;
    let stats = stream.stats.clone();
    let (stop, stopped) = watch::channel(false);
    let task = tokio::spawn(stream.run(stopped));
    tokio::time::sleep(Duration::from_secs(2)).await;

    let events: Vec<SampleEvent> = session
        .iter()
        .filter(|e| e.expect != Expect::Unrouted)
        .cloned()
        .collect();
    let moto_cpu_before = cpu_seconds(local.moto.pid());
    let started = Instant::now();
    let mut published: Vec<Published> = Vec::with_capacity(events.len());
    for chunk in events.chunks(STREAM_CHUNK) {
        published.extend(
            scenario::publish_routed(
                &clients,
                &outputs.event_bus_name,
                Some(&route),
                chunk,
                None,
                |_| {},
            )
            .await?,
        );
    }
    let get = crate::local::stream::StreamStats::get;
    let seconds = loop {
        if get(&stats.records_read) >= published.len() as u64 && stats.idle() {
            break started.elapsed().as_secs_f64();
        }
        if started.elapsed() > DRAIN_TIMEOUT {
            bail!(
                "the stream runner had read {} of {} records after {} s",
                get(&stats.records_read),
                published.len(),
                DRAIN_TIMEOUT.as_secs()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let moto_cpu = cpu_seconds(local.moto.pid())
        .zip(moto_cpu_before)
        .map(|(after, before)| after - before);
    let _ = stop.send(true);
    task.await.context("stream runner task")??;

    let handled = handled_at(&clients, &outputs.market_data_table_name, Side::Ours).await?;
    let mut latencies = latencies_ms(published.iter(), &handled);
    let run = PipelineRun {
        side: "ours, batch path",
        routed: published.len(),
        stored: latencies.len(),
        seconds,
        p50_ms: percentile(&mut latencies, 0.5).unwrap_or(0.0),
        p99_ms: percentile(&mut latencies, 0.99).unwrap_or(0.0),
        moto_busy: moto_cpu.map_or(0.0, |cpu| cpu / seconds.max(f64::MIN_POSITIVE)),
    };
    println!(
        "  ours, batch path: {} events in {:.1} s = {:.0} events/s over {} invocations; put → stored p50 {:.0} ms, p99 {:.0} ms; moto busy {:.0}%",
        run.routed,
        run.seconds,
        run.events_per_second(),
        get(&stats.invocations),
        run.p50_ms,
        run.p99_ms,
        run.moto_busy * 100.0
    );
    Ok(run)
}

async fn run_side(env: &Env, side: Side, session: &[SampleEvent]) -> Result<PipelineRun> {
    let local = LocalStack::start(&env.root, "dev").await?;
    let outputs = &local.outputs;
    let Some(queue) = outputs.delivery_queue_url.clone() else {
        bail!("the local stack has no delivery queue");
    };
    let clients = Clients::for_stack(outputs).await;

    // Start the handler side and let it reach its polling loop before the clock starts.
    let (stop, stopped) = watch::channel(false);
    let mut consumers = Vec::new();
    let mut runner_task = None;
    match side {
        Side::Ours => {
            let mut runner = local.runner(0)?;
            runner.workers = WORKERS;
            runner_task = Some(tokio::spawn(runner.run(stopped)));
        }
        Side::Baseline => {
            let vars = cpu::handler_vars(&cpu::Tables::of(outputs), &local.moto.endpoint);
            let log = env.dir.join("baseline-consumer.log");
            let log = std::fs::File::create(&log)
                .with_context(|| format!("creating {}", log.display()))?;
            for _ in 0..WORKERS {
                let mut command =
                    tokio::process::Command::from(env.python(&["consumer", &queue], &vars));
                let child = command
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(log.try_clone().context("consumer log")?)
                    .kill_on_drop(true)
                    .spawn()
                    .context("starting a baseline consumer")?;
                consumers.push(child);
            }
        }
    }
    tokio::time::sleep(Duration::from_secs(2)).await;

    let moto_cpu_before = cpu_seconds(local.moto.pid());
    let started = Instant::now();
    let mut published: Vec<Published> = Vec::with_capacity(session.len());
    for chunk in session.chunks(PUBLISH_CHUNK) {
        while queue_depth(&clients, &queue).await?.0 > MAX_BACKLOG {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        published
            .extend(scenario::publish(&clients, &outputs.event_bus_name, chunk, |_| {}).await?);
        for consumer in &mut consumers {
            if let Ok(Some(status)) = consumer.try_wait() {
                bail!(
                    "a baseline consumer exited ({status}); see {}",
                    env.dir.join("baseline-consumer.log").display()
                );
            }
        }
    }
    let drained = drain(&clients, &queue, started).await?;
    let moto_cpu = cpu_seconds(local.moto.pid())
        .zip(moto_cpu_before)
        .map(|(after, before)| after - before);

    let _ = stop.send(true);
    if let Some(task) = runner_task {
        task.await.context("runner task")??;
    }
    for mut consumer in consumers {
        let _ = consumer.kill().await;
    }

    let routed: Vec<&Published> = published
        .iter()
        .filter(|p| p.expect != Expect::Unrouted)
        .collect();
    let handled = handled_at(&clients, &outputs.market_data_table_name, side).await?;
    let mut latencies = latencies_ms(routed.iter().copied(), &handled);
    let stored = latencies.len();
    let seconds = drained.as_secs_f64();
    Ok(PipelineRun {
        side: side.label(),
        routed: routed.len(),
        stored,
        seconds,
        p50_ms: percentile(&mut latencies, 0.5).unwrap_or(0.0),
        p99_ms: percentile(&mut latencies, 0.99).unwrap_or(0.0),
        moto_busy: moto_cpu.map_or(0.0, |cpu| cpu / seconds.max(f64::MIN_POSITIVE)),
    })
}

/// Put → handled, in ms, of each published event the handler took.
fn latencies_ms<'a>(
    published: impl Iterator<Item = &'a Published>,
    handled: &HashMap<String, DateTime<Utc>>,
) -> Vec<f64> {
    published
        .filter_map(|p| {
            let at = handled.get(&p.id)?;
            Some((*at - p.put_at).num_microseconds()? as f64 / 1000.0)
        })
        .collect()
}

/// Visible and in-flight messages of the delivery queue.
async fn queue_depth(clients: &Clients, queue: &str) -> Result<(u64, u64)> {
    use aws_sdk_sqs::types::QueueAttributeName;
    let attributes = clients
        .sqs
        .get_queue_attributes()
        .queue_url(queue)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .map_err(|e| sdk_error("GetQueueAttributes", e))?;
    let get = |name: QueueAttributeName| {
        attributes
            .attributes()
            .and_then(|a| a.get(&name))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Ok((
        get(QueueAttributeName::ApproximateNumberOfMessages),
        get(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
    ))
}

/// Waits until the queue is empty and nothing is in flight, twice in a row; returns the time
/// from `started` to the first empty reading.
async fn drain(clients: &Clients, queue: &str, started: Instant) -> Result<Duration> {
    let mut empty_since: Option<Duration> = None;
    loop {
        let (visible, in_flight) = queue_depth(clients, queue).await?;
        if visible == 0 && in_flight == 0 {
            match empty_since {
                Some(at) if started.elapsed() > at + Duration::from_millis(300) => return Ok(at),
                Some(_) => {}
                None => empty_since = Some(started.elapsed()),
            }
        } else {
            empty_since = None;
        }
        if started.elapsed() > DRAIN_TIMEOUT {
            bail!(
                "the delivery queue still held {visible} waiting and {in_flight} in-flight events after {} s",
                DRAIN_TIMEOUT.as_secs()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Envelope id → when the handler took the event, from the market-data records: ours keys
/// records by the envelope id, the baseline keeps it in `source_event_id`; both stamp
/// `received_at` when the handler starts on the event.
async fn handled_at(
    clients: &Clients,
    table: &str,
    side: Side,
) -> Result<HashMap<String, DateTime<Utc>>> {
    let id_attribute = match side {
        Side::Ours => names::EVENT_ID,
        Side::Baseline => "source_event_id",
    };
    let mut pages = clients
        .dynamodb
        .scan()
        .table_name(table)
        .into_paginator()
        .items()
        .send();
    let mut handled = HashMap::new();
    while let Some(item) = pages.next().await {
        let item = item.map_err(|e| sdk_error("Scan", e))?;
        let text = |key: &str| match item.get(key) {
            Some(AttributeValue::S(s)) => Some(s.as_str()),
            _ => None,
        };
        let (Some(id), Some(at)) = (text(id_attribute), text(names::RECEIVED_AT)) else {
            continue;
        };
        if let Ok(at) = DateTime::parse_from_rfc3339(at) {
            handled.insert(id.to_string(), at.with_timezone(&Utc));
        }
    }
    Ok(handled)
}

/// CPU seconds (user + system) a process has used, from `/proc/<pid>/stat`.
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces; the fields after its closing parenthesis do not.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i)?.parse::<u64>().ok();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    let total = ticks(11)? + ticks(12)?;
    Some(total as f64 / clock_ticks_per_second())
}

fn clock_ticks_per_second() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .trim()
                .parse::<f64>()
                .ok()
        })
        .unwrap_or(100.0)
}
