//! `cargo xtask e2e`: the scenario engine against the local stack or a stack's outputs.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Result, bail};
use chrono::Utc;

use crate::dlq;
use crate::faults::FaultProxy;
use crate::local::runner::RunnerStats;
use crate::local::{self, LocalStack};
use crate::scenario::{self, Clients, Published, Route};
use crate::session::{self, Expect};
use infra::outputs::Outputs;

pub struct Options {
    pub events: usize,
    /// Events per second to publish; `None` for as fast as the bus takes them.
    pub rate: Option<f64>,
    pub double_deliveries: usize,
    pub timeout: Duration,
    /// Share (0–1) of the processor's DynamoDB calls answered with a fault (local stack only).
    pub faults: f64,
    /// Share (0–1) of events the local runner delivers a second time.
    pub redeliver_rate: f64,
    /// Redrives of the DLQ after the run, with the faults off (local stack only).
    pub redrives: usize,
    /// How long each of those redrives watches its copies.
    pub settle: Duration,
    /// After the run (and the redrives), replay the run's range from the archive (local stack
    /// only): nothing may be stored new, and every replayed event must be accounted for.
    pub replay: Option<crate::replay::plan::Ids>,
}

/// A latency fault holds an answer past the processor's per-attempt timeout.
const FAULT_LATENCY: Duration = Duration::from_millis(2_500);
const FAULT_WORKERS: usize = 16;

/// Where the scenario runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A fresh local stack shaped by this stack's config.
    Local(String),
    /// The stack these outputs describe.
    Outputs(PathBuf),
    /// A deployed stack, its outputs from pulumi.
    Deployed(String),
}

/// `cargo xtask e2e`: the scenario against `target`.
pub async fn run(root: &Path, target: &Target, options: &Options) -> Result<()> {
    let local = matches!(target, Target::Local(_));
    if !local
        && (options.faults > 0.0
            || options.redeliver_rate > 0.0
            || options.redrives > 0
            || options.replay.is_some())
    {
        bail!(
            "--faults, --redeliver-rate, --redrive and --replay need --local: they act on the \
             local runner"
        );
    }
    match target {
        Target::Local(stack) => run_local(root, stack, options).await,
        Target::Outputs(path) => {
            let outputs = read_outputs(path)?;
            let model = crate::query::stack_model(root, None, &outputs)?;
            run_outputs(path, options, &model).await
        }
        Target::Deployed(stack) => {
            let source = crate::aws::deployed::Source::Stack(stack.clone());
            let (outputs, path) = crate::aws::deployed::load(root, &source).await?;
            if options.double_deliveries > 0 && outputs.delivery_queue_url.is_none() {
                bail!(
                    "a deployed stack offers no direct path to the processor for double \
                     deliveries: pass --double-deliveries 0"
                );
            }
            let model = crate::query::stack_model(root, Some(stack), &outputs)?;
            run_outputs(&path, options, &model).await
        }
    }
}

/// `e2e --local`: a fresh local stack with its runner, the scenario, then everything stopped.
pub async fn run_local(root: &Path, stack: &str, options: &Options) -> Result<()> {
    let local = LocalStack::start(root, stack).await?;
    println!("local stack on {}", local.moto.endpoint);
    let redeliver_per_mille = (options.redeliver_rate.clamp(0.0, 1.0) * 1000.0).round() as u32;
    let mut proxy = None;
    let runner = if options.faults > 0.0 {
        let faults =
            FaultProxy::start(&local.moto.endpoint, options.faults, FAULT_LATENCY, 7).await?;
        // The processor's own timeouts and retries, as deployed: the point is to see them
        // hold up, not the tool's patient ones.
        let config = faults.processor_loader().load().await;
        println!(
            "injecting faults into {:.0}% of the processor's DynamoDB calls via {}",
            options.faults * 100.0,
            faults.endpoint
        );
        let mut runner = local.runner_with(
            redeliver_per_mille,
            processor::aws::dynamodb_client(&config),
        )?;
        // Injected latency and backoff keep invocations waiting, not working: Lambda would
        // run more of them at once, and so does the runner. But one event per worker at a
        // time: with the processor's 2 s attempt timeout, more calls in flight than the
        // emulator answers in that time turn its queueing into timeouts, the timeouts into
        // retries and redeliveries, and those into more queueing, until the run stalls.
        runner.workers = FAULT_WORKERS;
        runner.batch = 1;
        // And the deadline of a deployed invocation, from the stack's Lambda timeout.
        runner.budget = Some(names::limits::invocation_budget(Duration::from_secs(
            u64::from(local.model.function.timeout_seconds),
        )));
        proxy = Some(faults);
        runner
    } else {
        local.runner(redeliver_per_mille)?
    };
    let sources = local.start_sources(runner, redeliver_per_mille)?;
    let stats = sources.queue.clone();
    let stream_stats = sources.stream.clone();
    let buckets = local.model.table_settings.index_buckets;
    let route = Route::for_stack(&local.model, &local.outputs);
    let result = run_scenario(
        &local.outputs,
        options,
        Some(&sources),
        route.as_ref(),
        buckets,
    )
    .await;
    sources.stop().await?;
    print_runner(&stats);
    local::print_stream(stream_stats.as_deref());
    if let Some(proxy) = &proxy {
        println!("  fault proxy: {}", proxy.stats.summary());
    }
    let run = result?;
    run.check(options)?;
    if options.redrives > 0 {
        redrive_after(&local, options, &run, redeliver_per_mille).await?;
    }
    if let Some(ids) = options.replay {
        replay_after(root, &local, &run, ids, redeliver_per_mille).await?;
    }
    Ok(())
}

/// What `--replay` adds to a local run: the run's range replayed from the archive, through the
/// local stand-in, to every processor rule. Every event of the range is in the tables already
/// (stored, a duplicate, or rejected with its reason), so the replay must store nothing new,
/// leave the record count as it was, and account for every replayed event.
async fn replay_after(
    root: &Path,
    local: &LocalStack,
    run: &Run,
    ids: crate::replay::plan::Ids,
    redeliver_per_mille: u32,
) -> Result<()> {
    let outputs = &local.outputs;
    let clients = Clients::for_stack(outputs).await;
    let before = scenario::count_records(&clients, outputs).await?;
    let request = crate::replay::Request {
        from: run.window.0,
        // The window reaches past the clock by the allowed skew; nothing is archived there yet.
        to: (run.window.1 + chrono::Duration::milliseconds(1)).min(Utc::now()),
        rules: Vec::new(),
        settle: Duration::from_secs(30),
        // The run is accounted for and its DLQ checked, which is what the windows guard.
        inside_retry_windows: true,
        with_dlq_letters: false,
        ids,
    };
    let plan = crate::replay::Plan::new(&local.model, outputs, &request, Utc::now())?;
    println!();
    let sources = local.start_sources(local.runner(redeliver_per_mille)?, redeliver_per_mille)?;
    let executed =
        crate::replay::execute(root, &clients, &local.model, outputs, &plan, request.settle).await;
    sources.stop().await?;
    let (replayed, tally) = executed?;
    // A local stack's replay goes through the stand-in, which counts what it delivered.
    let replayed = replayed.unwrap_or(0);
    let after = scenario::count_records(&clients, outputs).await?;
    crate::replay::print_tally(&plan, Some(replayed), &tally);
    println!("  records before {before}, after {after}");
    if replayed == 0 {
        bail!("the replay found none of the run's events in the local archive");
    }
    if tally.stored_new > 0 || after != before {
        bail!(
            "the replay stored {} events new ({before} records before, {after} after): every \
             event of the run was in the tables already",
            tally.stored_new
        );
    }
    if tally.accounted() != replayed {
        bail!(
            "{} of {replayed} replayed events accounted for",
            tally.accounted()
        );
    }
    Ok(())
}

fn print_runner(stats: &RunnerStats) {
    println!(
        "  processor invocations        {:>8}  (failed attempts {}, redelivered {}, dead-lettered {})",
        RunnerStats::get(&stats.invocations),
        RunnerStats::get(&stats.failed_attempts),
        RunnerStats::get(&stats.redelivered),
        RunnerStats::get(&stats.dead_lettered)
    );
}

/// What `--redrive N` adds to a local run: the faults off (a runner straight to the emulator),
/// N redrives of the DLQ, its count after the run and after each redrive, and the accounting
/// again, which must find every event stored once, a duplicate, or rejected with its reason.
async fn redrive_after(
    local: &LocalStack,
    options: &Options,
    run: &Run,
    redeliver_per_mille: u32,
) -> Result<()> {
    let outputs = &local.outputs;
    let clients = Clients::for_stack(outputs).await;
    let policy = dlq::Policy::for_stack(&local.model)?;
    let dlq_count = || async { anyhow::Ok(dlq::list(&clients.sqs, &outputs.dlq_url).await?.len()) };
    let mut counts = vec![("after the run".to_string(), dlq_count().await?)];
    println!(
        "
DLQ after the run: {} letters; faults off",
        counts[0].1
    );

    let sources = local.start_sources(local.runner(redeliver_per_mille)?, redeliver_per_mille)?;
    let stats = sources.queue.clone();
    let redriven = redrive_rounds(&clients, outputs, &policy, options, &mut counts).await;
    let drained = match &redriven {
        Ok(_) => local::drain(&clients, outputs, &sources, 0).await,
        Err(_) => Ok(()),
    };
    sources.stop().await?;
    print_runner(&stats);
    let copies = redriven?;
    drained?;

    let report = scenario::account_with(
        &clients,
        outputs,
        local.model.table_settings.index_buckets,
        &run.published,
        run.since,
        run.window,
        options.timeout,
        &copies,
        |settled, total| println!("  accounted for {settled}/{total}"),
    )
    .await?;
    println!(
        "
e2e run {} after {} redrives",
        run.id, options.redrives
    );
    print!("{}", report.table());
    let line: Vec<String> = counts
        .iter()
        .map(|(when, n)| format!("{when} {n}"))
        .collect();
    println!("  DLQ letters: {}", line.join(", "));
    if !report.ok() {
        bail!(
            "after the redrives: {} lost, {} stored twice, {} unexpected outcomes",
            report.lost,
            report.stored_twice,
            report.unexpected.len()
        );
    }
    if report.missing_processed > 0 {
        bail!(
            "after the redrives {} stored events still have no PROCESSED entry",
            report.missing_processed
        );
    }
    let left = counts.last().map_or(0, |(_, n)| *n);
    if left > 0 || report.dead_lettered > 0 {
        bail!(
            "after {} redrives {left} letters are still in the DLQ ({} of the run's events);              `cargo xtask dlq` on the stack lists them",
            options.redrives,
            report.dead_lettered
        );
    }
    Ok(())
}

/// The redrives; the DLQ count after each is pushed onto `counts`. Returns every copy's id with
/// the id of the event it copies.
async fn redrive_rounds(
    clients: &Clients,
    outputs: &Outputs,
    policy: &dlq::Policy,
    options: &Options,
    counts: &mut Vec<(String, usize)>,
) -> Result<HashMap<String, String>> {
    let mut copies = HashMap::new();
    let redrive_options = dlq::Options {
        settle: options.settle,
        ..dlq::Options::default()
    };
    for round in 1..=options.redrives {
        let done = dlq::redrive(clients, outputs, policy, &redrive_options).await?;
        println!(
            "
redrive {round}"
        );
        print!("{}", done.report());
        copies.extend(
            done.copies
                .iter()
                .map(|c| (c.delivered_as.clone(), c.record_id.clone())),
        );
        let left = dlq::list(&clients.sqs, &outputs.dlq_url).await?.len();
        println!("DLQ after redrive {round}: {left} letters");
        counts.push((format!("after redrive {round}"), left));
    }
    Ok(copies)
}

/// `e2e --outputs FILE`: the scenario against whatever stack the outputs describe, whose
/// indexes have `buckets` buckets.
pub async fn run_outputs(
    path: &Path,
    options: &Options,
    model: &infra::model::Model,
) -> Result<()> {
    let outputs = read_outputs(path)?;
    let route = Route::for_stack(model, &outputs);
    let buckets = model.table_settings.index_buckets;
    run_scenario(&outputs, options, None, route.as_ref(), buckets)
        .await?
        .check(options)
}

fn read_outputs(path: &Path) -> Result<Outputs> {
    let mut outputs = Outputs::read(path)?;
    if outputs.region.is_none() {
        outputs.region = crate::aws::deployed::region_from_arn(&outputs.event_bus_arn);
    }
    Ok(outputs)
}

/// One scenario run: what it published, and where each event ended.
struct Run {
    id: String,
    published: Vec<Published>,
    /// Audit entries from this time on are the run's.
    since: chrono::DateTime<Utc>,
    /// The event times of the run's events lie in here.
    window: (chrono::DateTime<Utc>, chrono::DateTime<Utc>),
    report: scenario::Report,
}

impl Run {
    /// Fails if an event was lost, stored twice or ended otherwise than expected.
    fn check(&self, options: &Options) -> Result<()> {
        let report = &self.report;
        if options.double_deliveries > 0 && report.redeliveries_absorbed < options.double_deliveries
        {
            bail!(
                "{} events were delivered twice but only {} second deliveries were recorded as DUPLICATE",
                options.double_deliveries,
                report.redeliveries_absorbed
            );
        }
        if !report.ok() {
            bail!(
                "e2e failed: {} lost, {} stored twice, {} unexpected outcomes",
                report.lost,
                report.stored_twice,
                report.unexpected.len()
            );
        }
        Ok(())
    }
}

/// `runner`: the in-process runner of a local stack, whose queue is drained before the tables
/// are read.
async fn run_scenario(
    outputs: &Outputs,
    options: &Options,
    runner: Option<&local::Sources>,
    route: Option<&Route>,
    buckets: u16,
) -> Result<Run> {
    if options.double_deliveries > 0 && outputs.delivery_queue_url.is_none() {
        bail!(
            "double delivery needs a direct path to the processor, which only the local stack \
             has (no delivery_queue_url in the outputs); pass --double-deliveries 0"
        );
    }
    let clients = Clients::for_stack(outputs).await;
    let run_id = uuid::Uuid::new_v4().simple().to_string()[..12].to_string();
    let end = Utc::now() - chrono::Duration::minutes(1);
    let since = Utc::now() - chrono::Duration::seconds(1);
    // The run id is an unknown detail field: kept with each record, and it makes this run's
    // trades distinct from any earlier run's, so only this run's duplicates are duplicates.
    let seed = u64::from_str_radix(&run_id[..8], 16).unwrap_or(1);
    let events: Vec<session::SampleEvent> = session::session(options.events, seed, end)
        .into_iter()
        .map(|mut e| {
            if let Some(rest) = e.detail.strip_prefix('{') {
                e.detail = format!(r#"{{"e2e_run":"{run_id}",{rest}"#);
            }
            e
        })
        .collect();
    println!(
        "run {run_id}: publishing {} events to {}",
        events.len(),
        outputs.event_bus_name
    );
    let mut published = match runner {
        Some(stats) => {
            local::publish_with_backpressure(
                &clients,
                &outputs.event_bus_name,
                route,
                &events,
                stats,
            )
            .await?
        }
        None => {
            scenario::publish_routed(
                &clients,
                &outputs.event_bus_name,
                route,
                &events,
                options.rate,
                |_| {},
            )
            .await?
        }
    };
    published
        .extend(double_deliveries(&clients, outputs, &run_id, options.double_deliveries).await?);
    if let Some(stats) = runner {
        local::drain(&clients, outputs, stats, published.len()).await?;
    }

    let window = (
        end - chrono::Duration::minutes(392),
        Utc::now() + chrono::Duration::minutes(1),
    );
    let report = scenario::account(
        &clients,
        outputs,
        buckets,
        &published,
        since,
        window,
        options.timeout,
        |settled, total| println!("  accounted for {settled}/{total}"),
    )
    .await?;
    println!("\ne2e run {run_id}");
    print!("{}", report.table());
    if report.dead_lettered > 0 {
        for letter in scenario::peek_dlq(&clients, &outputs.dlq_url)
            .await?
            .iter()
            .take(3)
        {
            println!(
                "  in the DLQ: {}: {}",
                letter.event_id.as_deref().unwrap_or("?"),
                letter.error
            );
        }
    }
    Ok(Run {
        id: run_id,
        published,
        since,
        window,
        report,
    })
}

/// Hands the same event to the processor twice, as EventBridge and Lambda may. On the local
/// stack that means two messages on the queue the runner reads.
async fn double_deliveries(
    clients: &Clients,
    outputs: &Outputs,
    run_id: &str,
    count: usize,
) -> Result<Vec<Published>> {
    if count == 0 {
        return Ok(Vec::new());
    }
    let Some(queue) = &outputs.delivery_queue_url else {
        bail!("double delivery needs the local stack's delivery queue");
    };
    let mut published = Vec::with_capacity(count);
    let symbol = format!("TWICE-{}", run_id.to_uppercase());
    for n in 0..count {
        let id = format!("e2e-{run_id}-twice-{n}");
        let time = Utc::now();
        let event = serde_json::json!({
            "version": "0",
            "id": id,
            "detail-type": names::MARKET_QUOTE,
            "source": names::DEFAULT_SOURCE,
            "account": "123456789012",
            "time": processor::event::format_timestamp(time),
            "region": outputs.region.clone().unwrap_or_default(),
            "resources": [],
            "detail": {"e2e_run": run_id, "exchange": "E2E", "symbol": symbol, "bid": "10.01", "ask": "10.02"}
        })
        .to_string();
        for _ in 0..2 {
            clients
                .sqs
                .send_message()
                .queue_url(queue)
                .message_body(&event)
                .send()
                .await
                .map_err(|e| crate::aws::sdk_error("SendMessage", e))?;
        }
        published.push(Published {
            id,
            expect: Expect::Stored,
            group: None,
            symbol: Some(symbol.clone()),
            put_at: time,
        });
    }
    Ok(published)
}
