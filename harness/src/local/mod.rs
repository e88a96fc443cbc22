//! `cargo xtask local`: the whole pipeline on loopback, no AWS account needed.

pub mod provision;
pub mod runner;
pub mod stream;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::Utc;
use names::Settings;
use processor::Processor;
use tokio::sync::watch;

use crate::moto::Moto;
use crate::query;
use crate::scenario::{self, Clients};
use crate::session;
use infra::model::Model;
use infra::outputs::{self, Outputs};
use infra::stack::StackConfig;
use runner::{Runner, RunnerStats};

/// Events in the bundled session, and its seed: the same session on every machine.
pub const SESSION_EVENTS: usize = 10_000;
pub const SESSION_SEED: u64 = 20_261_125;
/// Per mille of deliveries the local runner repeats, as EventBridge and Lambda may.
pub const REDELIVER_PER_MILLE: u32 = 20;
/// Concurrent invocations the local runner allows.
const WORKERS: usize = 4;
/// Events published at a time, and how far publishing may run ahead of the processor.
const PUBLISH_CHUNK: usize = 50;
const MAX_BACKLOG: u64 = 200;
/// How long draining waits without a single invocation before it gives up.
const DRAIN_STALL: Duration = Duration::from_secs(120);

/// A local stack: the emulator, the provisioned resources, and the runner standing in for
/// Lambda. Dropping it stops the emulator.
pub struct LocalStack {
    pub moto: Moto,
    pub model: Model,
    pub outputs: Outputs,
    pub config: aws_config::SdkConfig,
}

impl LocalStack {
    pub async fn start(root: &Path, stack: &str) -> Result<LocalStack> {
        Self::start_with(root, stack, Moto::start(root)?).await
    }

    pub async fn start_with(root: &Path, stack: &str, moto: Moto) -> Result<LocalStack> {
        let config = StackConfig::load(root, stack).map_err(|e| anyhow::anyhow!("{e}"))?;
        let model = Model::from_stack(&config);
        let sdk = crate::aws::local_sdk_config(&moto.endpoint).await;
        let outputs = provision::provision(&sdk, &model, &moto.endpoint)
            .await
            .context("provisioning the local stack")?;
        // A fresh stack has an empty archive: what an earlier local stack captured is not its.
        crate::replay::archive::forget(root, &model)?;
        Ok(LocalStack {
            moto,
            model,
            outputs,
            config: sdk,
        })
    }

    /// A runner over this stack, with the stack's own async-invoke retries.
    pub fn runner(&self, redeliver_per_mille: u32) -> Result<Runner> {
        runner_for(
            &self.config,
            &self.model,
            &self.outputs,
            redeliver_per_mille,
        )
    }

    /// A runner whose processor reaches DynamoDB through `dynamodb` (e.g. a fault proxy).
    pub fn runner_with(
        &self,
        redeliver_per_mille: u32,
        dynamodb: aws_sdk_dynamodb::Client,
    ) -> Result<Runner> {
        runner_with_client(
            &self.config,
            &self.model,
            &self.outputs,
            redeliver_per_mille,
            dynamodb,
        )
    }
}

pub fn runner_for(
    config: &aws_config::SdkConfig,
    model: &Model,
    outputs: &Outputs,
    redeliver_per_mille: u32,
) -> Result<Runner> {
    let dynamodb = processor::aws::dynamodb_client(config);
    runner_with_client(config, model, outputs, redeliver_per_mille, dynamodb)
}

fn runner_with_client(
    config: &aws_config::SdkConfig,
    model: &Model,
    outputs: &Outputs,
    redeliver_per_mille: u32,
    dynamodb: aws_sdk_dynamodb::Client,
) -> Result<Runner> {
    let env: HashMap<String, String> = model.function.env.clone().into_iter().collect();
    let settings = Settings::from_map(&env).context("the stack's Lambda environment")?;
    let processor = Processor::new(settings, dynamodb);
    Ok(Runner {
        sqs: aws_sdk_sqs::Client::new(config),
        delivery_queue_url: outputs
            .delivery_queue_url
            .clone()
            .context("outputs have no delivery_queue_url: not a local stack")?,
        dlq_url: outputs.dlq_url.clone(),
        function_arn: outputs.lambda_function_arn.clone(),
        processor,
        retries: model.async_invoke.max_retry_attempts,
        retry_delay: Duration::from_millis(100),
        redeliver_per_mille,
        workers: WORKERS,
        batch: 10,
        budget: None,
        stats: Arc::new(RunnerStats::default()),
    })
}

/// The local stand-ins for Lambda's event sources, running: the queue runner (the bus path),
/// and the stream runner when the stack has a stream.
pub struct Sources {
    pub queue: Arc<RunnerStats>,
    pub stream: Option<Arc<stream::StreamStats>>,
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<Result<()>>>,
}

impl Sources {
    pub fn start(queue: Runner, stream: Option<stream::StreamRunner>) -> Sources {
        let (stop, stopped) = watch::channel(false);
        let queue_stats = queue.stats.clone();
        let mut tasks = vec![tokio::spawn(queue.run(stopped.clone()))];
        let stream_stats = stream.as_ref().map(|s| s.stats.clone());
        if let Some(stream) = stream {
            tasks.push(tokio::spawn(stream.run(stopped)));
        }
        Sources {
            queue: queue_stats,
            stream: stream_stats,
            stop,
            tasks,
        }
    }

    /// Events handed to the processor so far: invocations of the queue runner, records the
    /// stream runner read.
    pub fn handled(&self) -> u64 {
        RunnerStats::get(&self.queue.invocations)
            + self
                .stream
                .as_ref()
                .map_or(0, |s| stream::StreamStats::get(&s.records_read))
    }

    /// Signals both runners and waits for them to finish what they hold.
    pub async fn stop(self) -> Result<()> {
        let _ = self.stop.send(true);
        for task in self.tasks {
            task.await.context("runner task")??;
        }
        Ok(())
    }
}

/// The stream runner's line of a summary, when there is a stream.
pub fn print_stream(stats: Option<&stream::StreamStats>) {
    {
        if let Some(stats) = stats {
            let get = stream::StreamStats::get;
            println!(
                "  stream records read          {:>8}  (invocations {}, retried batches {}, bisected {}, redelivered {}, dead-lettered records {} in {} letters)",
                get(&stats.records_read),
                get(&stats.invocations),
                get(&stats.retried_batches),
                get(&stats.bisected_batches),
                get(&stats.redelivered_batches),
                get(&stats.dead_lettered_records),
                get(&stats.letters)
            );
        }
    }
}

impl LocalStack {
    /// The stream runner of this stack, over `processor`; `None` without a stream.
    pub fn stream_runner(
        &self,
        processor: Processor,
        redeliver_per_mille: u32,
    ) -> Result<Option<stream::StreamRunner>> {
        stream::stream_runner(
            &self.config,
            &self.model,
            &self.outputs,
            processor,
            redeliver_per_mille,
        )
    }

    /// The queue runner and, with a stream, the stream runner, over one processor, started.
    pub fn start_sources(&self, runner: Runner, redeliver_per_mille: u32) -> Result<Sources> {
        let stream = self
            .stream_runner(runner.processor.clone(), redeliver_per_mille)?
            .map(|mut s| {
                s.budget = runner.budget;
                s
            });
        Ok(Sources::start(runner, stream))
    }
}

/// `cargo xtask local`: replay the bundled session through the whole pipeline and account for
/// every event.
pub async fn run(root: &Path, stack: &str, events: usize) -> Result<()> {
    let started = Instant::now();
    println!("starting moto server and provisioning stack {stack:?} from stacks/{stack}.yaml");
    let local = LocalStack::start(root, stack).await?;
    println!(
        "  emulator {}  bus {}  tables {}, {}",
        local.moto.endpoint,
        local.outputs.event_bus_name,
        local.outputs.market_data_table_name,
        local.outputs.audit_trail_table_name
    );
    local.processor_check().await?;

    let sources = local.start_sources(local.runner(REDELIVER_PER_MILLE)?, REDELIVER_PER_MILLE)?;
    let route = scenario::Route::for_stack(&local.model, &local.outputs);
    if let Some(route) = &route {
        let classes: Vec<&str> = route.classes.iter().map(|c| c.as_str()).collect();
        println!(
            "  stream {} takes the {} events; the bus the rest",
            route.stream,
            classes.join(" and ")
        );
    }

    let end = Utc::now() - chrono::Duration::minutes(1);
    let session = session::session(events, SESSION_SEED, end);
    println!(
        "replaying a market session of {} events (seed {SESSION_SEED})",
        session.len()
    );
    let clients = Clients::for_stack(&local.outputs).await;
    let since = Utc::now() - chrono::Duration::seconds(1);
    let published = publish_with_backpressure(
        &clients,
        &local.outputs.event_bus_name,
        route.as_ref(),
        &session,
        &sources,
    )
    .await?;
    drain(&clients, &local.outputs, &sources, published.len()).await?;

    let window = (end - chrono::Duration::minutes(392), Utc::now());
    let report = scenario::account(
        &clients,
        &local.outputs,
        local.model.table_settings.index_buckets,
        &published,
        since,
        window,
        Duration::from_secs(300),
        |settled, total| println!("  accounted for {settled:>6} of {total} routed events"),
    )
    .await?;

    let stats = sources.queue.clone();
    let stream_stats = sources.stream.clone();
    sources.stop().await?;

    println!("\nsummary");
    print!("{}", report.table());
    println!(
        "  processor invocations        {:>8}  (retried {}, dead-lettered {})",
        RunnerStats::get(&stats.invocations),
        RunnerStats::get(&stats.failed_attempts),
        RunnerStats::get(&stats.dead_lettered)
    );
    print_stream(stream_stats.as_deref());

    if report.dead_lettered > 0 {
        println!("\nin the DLQ (first 5):");
        for letter in scenario::peek_dlq(&clients, &local.outputs.dlq_url)
            .await?
            .iter()
            .take(5)
        {
            println!(
                "  {}: {}",
                letter.event_id.as_deref().unwrap_or("?"),
                letter.error
            );
        }
    }

    println!(
        "\nlatest AAPL trades through {} ({} buckets):",
        names::SYMBOL_INDEX,
        local.model.table_settings.index_buckets
    );
    let rows = query::records(
        &clients.dynamodb,
        &local.outputs,
        local.model.table_settings.index_buckets,
        &query::Args {
            symbol: Some("AAPL".into()),
            exchange: None,
            since: None,
            limit: 5,
            latest: None,
        },
        Some("trade"),
    )
    .await?;
    print_rows(&rows);
    for symbol in ["AAPL", "IBM"] {
        let items =
            query::latest(&clients.dynamodb, &local.outputs.latest_table_name, symbol).await?;
        query::print_latest(symbol, &items);
    }
    println!("\nwall time {:.1} s", started.elapsed().as_secs_f64());
    if !report.ok() {
        bail!(
            "the pipeline lost {} and stored {} twice; {} unexpected outcomes",
            report.lost,
            report.stored_twice,
            report.unexpected.len()
        );
    }
    Ok(())
}

/// Publishes `events` without running far ahead of the in-process runner: the emulator's queue
/// slows down with its length. Prints progress every thousand events.
pub async fn publish_with_backpressure(
    clients: &Clients,
    bus: &str,
    route: Option<&scenario::Route>,
    events: &[session::SampleEvent],
    sources: &Sources,
) -> Result<Vec<scenario::Published>> {
    let mut published = Vec::with_capacity(events.len());
    for chunk in events.chunks(PUBLISH_CHUNK) {
        while published.len() as u64 > sources.handled() + MAX_BACKLOG {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        published.extend(scenario::publish_routed(clients, bus, route, chunk, None, |_| {}).await?);
        if published.len() % 1000 < PUBLISH_CHUNK || published.len() == events.len() {
            println!(
                "  published {:>6}   handed to the processor {:>6}",
                published.len(),
                sources.handled()
            );
        }
    }
    Ok(published)
}

/// Waits until the runner has emptied the delivery queue, printing its progress: reading the
/// tables while events still stream in would only slow the emulator down.
pub async fn drain(
    clients: &Clients,
    outputs: &Outputs,
    sources: &Sources,
    published: usize,
) -> Result<()> {
    let Some(queue) = &outputs.delivery_queue_url else {
        return Ok(());
    };
    let mut last = u64::MAX;
    let mut quiet = 0;
    let mut printed = 0;
    let mut last_progress = std::time::Instant::now();
    loop {
        if last_progress.elapsed() > DRAIN_STALL {
            bail!(
                "the local runner made no progress for {} s with events still queued",
                DRAIN_STALL.as_secs()
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let invocations = sources.handled();
        if invocations / 1000 != printed {
            printed = invocations / 1000;
            println!("  handed to the processor {invocations:>6} of about {published}");
        }
        let attributes = clients
            .sqs
            .get_queue_attributes()
            .queue_url(queue)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(
                aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
            )
            .send()
            .await
            .map_err(|e| crate::aws::sdk_error("GetQueueAttributes", e))?;
        let waiting: u64 = attributes
            .attributes()
            .map(|a| a.values().filter_map(|v| v.parse::<u64>().ok()).sum())
            .unwrap_or(0);
        if invocations != last {
            last_progress = std::time::Instant::now();
        }
        // The stream is drained when every shard has read all there is and holds nothing.
        let stream_idle = sources.stream.as_ref().is_none_or(|s| s.idle());
        quiet = if waiting == 0 && stream_idle && invocations == last {
            quiet + 1
        } else {
            0
        };
        last = invocations;
        if quiet >= 2 {
            return Ok(());
        }
    }
}

impl LocalStack {
    /// The processor's own init check (DescribeTable on both tables), as the Lambda does it.
    async fn processor_check(&self) -> Result<()> {
        let runner = self.runner(0)?;
        runner
            .processor
            .warm_up()
            .await
            .context("processor init against the local stack")
    }
}

fn state_dir(root: &Path) -> PathBuf {
    root.join("target").join("local")
}

/// `cargo xtask local up`: start the emulator and a runner in the background and leave them.
pub async fn up(root: &Path, stack: &str, port: Option<u16>) -> Result<()> {
    let dir = state_dir(root);
    if let Ok(pids) = std::fs::read_to_string(dir.join("pids"))
        && pids.lines().any(|pid| process_alive(pid.trim()))
    {
        bail!(
            "a local stack is already up (pids in {}); run `cargo xtask local down` first",
            dir.display()
        );
    }
    let moto = Moto::start_detached(root, port)?;
    let local = LocalStack::start_with(root, stack, moto).await?;
    local.processor_check().await?;
    let outputs_path = outputs::local_path(root);
    local.outputs.write(&outputs_path)?;

    let exe = std::env::current_exe().context("locating the xtask binary")?;
    let log_path = dir.join("runner.log");
    let log = std::fs::File::create(&log_path).context("creating the runner log")?;
    let runner = std::process::Command::new(exe)
        .args(["local", "serve", "--stack", stack])
        .current_dir(root)
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone().context("runner log")?)
        .stderr(log)
        .spawn()
        .context("starting the background runner")?;

    // The emulator must outlive this command.
    let moto_pid = local.moto.detach();
    std::fs::write(dir.join("pids"), format!("{moto_pid}\n{}\n", runner.id()))
        .context("writing target/local/pids")?;
    println!("local stack {stack:?} is up");
    println!(
        "  endpoint_url   {}",
        local.outputs.endpoint_url.as_deref().unwrap_or("")
    );
    println!("  event bus      {}", local.outputs.event_bus_name);
    println!("  outputs        {}", outputs_path.display());
    println!("  runner log     {}", log_path.display());
    println!(
        "publish with `cargo xtask local send FILE.jsonl`, read with `cargo xtask local query --symbol AAPL`, stop with `cargo xtask local down`"
    );
    Ok(())
}

/// The background half of `local up`: the runner, until `local down` stops it.
pub async fn serve(root: &Path, stack: &str) -> Result<()> {
    let outputs = Outputs::read(&outputs::local_path(root))?;
    let config = StackConfig::load(root, stack).map_err(|e| anyhow::anyhow!("{e}"))?;
    let model = Model::from_stack(&config);
    let sdk = crate::aws::sdk_config(&outputs).await;
    let runner = runner_for(&sdk, &model, &outputs, 0)?;
    // Runs until `local down` signals the process; see `block_on` in main.rs.
    let (_stop, stopped) = watch::channel(false);
    runner.run(stopped).await
}

/// `cargo xtask local down`.
pub fn down(root: &Path) -> Result<()> {
    let path = state_dir(root).join("pids");
    let Ok(pids) = std::fs::read_to_string(&path) else {
        println!("no local stack is up");
        return Ok(());
    };
    for pid in pids.lines().map(str::trim).filter(|p| !p.is_empty()) {
        if process_alive(pid) {
            let _ = std::process::Command::new("kill").arg(pid).status();
        }
    }
    std::fs::remove_file(&path).context("removing target/local/pids")?;
    let _ = std::fs::remove_file(outputs::local_path(root));
    println!("local stack stopped");
    Ok(())
}

fn process_alive(pid: &str) -> bool {
    !pid.is_empty() && Path::new("/proc").join(pid).exists()
}

/// `cargo xtask local query`: the local stack's newest records, printed, read over the buckets
/// of the stack the local outputs name.
pub async fn query_command(root: &Path, args: &query::Args) -> Result<()> {
    let outputs = Outputs::read(&outputs::local_path(root))?;
    let model = query::stack_model(root, None, &outputs)?;
    let clients = Clients::for_stack(&outputs).await;
    if let Some(symbol) = &args.latest {
        let items = query::latest(&clients.dynamodb, &outputs.latest_table_name, symbol).await?;
        query::print_latest(symbol, &items);
        return Ok(());
    }
    let rows = query::records(
        &clients.dynamodb,
        &outputs,
        model.table_settings.index_buckets,
        args,
        None,
    )
    .await?;
    if let Some(note) = query::exchange_note(&model, args) {
        eprintln!("{note}");
    }
    print_rows(&rows);
    Ok(())
}

/// `cargo xtask local send FILE`: a feed file onto the local stack's bus.
pub async fn send(root: &Path, file: &Path) -> Result<()> {
    let path = outputs::local_path(root);
    let outputs = Outputs::read(&path)?;
    let source = crate::aws::deployed::Source::File(path);
    crate::publish::send(root, &source, &outputs, file).await
}

pub fn print_rows(rows: &[HashMap<String, AttributeValue>]) {
    let get = query::shown;
    println!(
        "  {:<25} {:<9} {:<8} {:<16} {:>14} {:>8} {:>14} {:>14}",
        "timestamp", "symbol", "exchange", "detail-type", "price", "volume", "bid", "ask"
    );
    for row in rows {
        println!(
            "  {:<25} {:<9} {:<8} {:<16} {:>14} {:>8} {:>14} {:>14}",
            get(row, names::TIMESTAMP),
            get(row, names::SYMBOL),
            get(row, names::EXCHANGE),
            get(row, "detail_type"),
            get(row, "price"),
            get(row, "volume"),
            get(row, "bid"),
            get(row, "ask"),
        );
    }
    if rows.is_empty() {
        println!("  (no records)");
    }
}
