//! `cargo xtask e2e`: the scenario engine against the local stack or a stack's outputs.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use chrono::Utc;
use tokio::sync::watch;

use crate::local::runner::RunnerStats;
use crate::local::{self, LocalStack};
use crate::outputs::Outputs;
use crate::sample::{self, Expect};
use crate::scenario::{self, Clients, Published};

pub struct Options {
    pub events: usize,
    /// Events per second to publish; `None` for as fast as the bus takes them.
    pub rate: Option<f64>,
    pub double_deliveries: usize,
    pub timeout: Duration,
}

/// `e2e --local`: a fresh local stack with its runner, the scenario, then everything stopped.
pub async fn run_local(root: &Path, stack: &str, options: &Options) -> Result<()> {
    let local = LocalStack::start(root, stack).await?;
    println!("local stack on {}", local.moto.endpoint);
    let runner = local.runner(0)?;
    let stats = runner.stats.clone();
    let (stop, stopped) = watch::channel(false);
    let runner_task = tokio::spawn(runner.run(stopped));
    let result = run_scenario(&local.outputs, options, Some(&stats)).await;
    let _ = stop.send(true);
    runner_task.await.context("runner task")??;
    result
}

/// `e2e --outputs FILE`: the scenario against whatever stack the outputs describe.
pub async fn run_outputs(path: &Path, options: &Options) -> Result<()> {
    let outputs = Outputs::read(path)?;
    run_scenario(&outputs, options, None).await
}

/// `runner`: the in-process runner of a local stack, whose queue is drained before the tables
/// are read.
async fn run_scenario(
    outputs: &Outputs,
    options: &Options,
    runner: Option<&RunnerStats>,
) -> Result<()> {
    let clients = Clients::for_stack(outputs).await;
    let run_id = uuid::Uuid::new_v4().simple().to_string()[..12].to_string();
    let end = Utc::now() - chrono::Duration::minutes(1);
    let since = Utc::now() - chrono::Duration::seconds(1);
    // The run id is an unknown detail field: kept with each record, and it makes this run's
    // trades distinct from any earlier run's, so only this run's duplicates are duplicates.
    let seed = u64::from_str_radix(&run_id[..8], 16).unwrap_or(1);
    let events: Vec<sample::SampleEvent> = sample::session(options.events, seed, end)
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
    let mut published = scenario::publish_paced(
        &clients,
        &outputs.event_bus_name,
        &events,
        options.rate,
        |_| {},
    )
    .await?;
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
        &published,
        since,
        window,
        options.timeout,
        |settled, total| println!("  accounted for {settled}/{total}"),
    )
    .await?;
    println!("\ne2e run {run_id}");
    print!("{}", report.table());
    if options.double_deliveries > 0 && report.redeliveries_absorbed < options.double_deliveries {
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
        bail!(
            "double delivery needs a direct path to the processor; these outputs have no \
             delivery_queue_url (use --double-deliveries 0 against a deployed stack)"
        );
    };
    let mut published = Vec::with_capacity(count);
    let symbol = format!("TWICE-{}", run_id.to_uppercase());
    for n in 0..count {
        let id = format!("e2e-{run_id}-twice-{n}");
        let time = Utc::now();
        let event = serde_json::json!({
            "version": "0",
            "id": id,
            "detail-type": processor::names::MARKET_QUOTE,
            "source": processor::names::DEFAULT_SOURCE,
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
                .map_err(|e| local::provision::sdk_error("SendMessage", e))?;
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
