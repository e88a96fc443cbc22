//! Start-up, the first invocation and peak memory of both handlers, each run as Lambda runs
//! it: a process that polls a Runtime API (ours: the real `bootstrap`; baseline: `bench.py
//! runtime`, the loop Lambda's Python runtime runs around a handler), against moto.
//!
//! Ready is the moment the process sends its first `GET /2018-06-01/runtime/invocation/next`:
//! from then on Lambda could hand it an event. The clock starts just before the spawn.

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tokio::process::{Child, Command};

use super::report::{Better, FirstInvocation, Report, Row};
use super::{Env, Sizes, cpu, median, percentile};
use crate::http::{Server, Upstream};
use crate::local::LocalStack;
use crate::runtime_api::{Reply, RuntimeApi};

/// The two handlers, as processes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Ours,
    Baseline,
}

impl Side {
    pub fn label(self) -> &'static str {
        match self {
            Side::Ours => "ours",
            Side::Baseline => "baseline",
        }
    }
}

const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// A handler process for `side`, polling the Runtime API at `api`, writing to `endpoint`.
fn handler_process(
    env: &Env,
    local: &LocalStack,
    side: Side,
    api: SocketAddr,
    endpoint: &str,
) -> Command {
    let mut vars = cpu::handler_vars(&cpu::Tables::of(&local.outputs), endpoint);
    vars.extend([
        ("AWS_LAMBDA_RUNTIME_API", api.to_string()),
        ("AWS_LAMBDA_FUNCTION_NAME", "market-processor-bench".into()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128".into()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".into()),
    ]);
    let mut command = match side {
        Side::Ours => Command::new(&env.bootstrap),
        Side::Baseline => {
            let mut c = Command::new(&env.python);
            c.arg(env.baseline_dir.join("bench.py")).arg("runtime");
            c
        }
    };
    let log = env.dir.join(format!("{}-runtime.log", side.label()));
    let stderr = std::fs::File::create(&log)
        .map(Stdio::from)
        .unwrap_or_else(|_| Stdio::null());
    command
        .env_clear()
        .envs(super::base_vars(&env.dir))
        .envs(vars)
        .stdin(Stdio::null())
        // Log and metric lines: Lambda ships them from a pipe; here they cost a write.
        .stdout(Stdio::null())
        .stderr(stderr)
        .kill_on_drop(true);
    command
}

pub async fn measure(
    env: &Env,
    local: &LocalStack,
    sizes: &Sizes,
    report: &mut Report,
) -> Result<()> {
    let mut medians = [None, None];
    let mut cpu_medians = [None, None];
    for (i, side) in [Side::Ours, Side::Baseline].into_iter().enumerate() {
        // One untimed start: the page cache holds the binaries and Python has compiled its
        // modules, as on a Lambda host that has started the function before.
        start_once(env, local, side).await?;
        let mut runs = Vec::with_capacity(sizes.startup_runs);
        let mut cpu = Vec::with_capacity(sizes.startup_runs);
        for _ in 0..sizes.startup_runs {
            let start = start_once(env, local, side).await?;
            runs.push(start.ready.as_secs_f64() * 1000.0);
            cpu.push(start.cpu.as_secs_f64() * 1000.0);
        }
        let (min, max) = (
            runs.iter().copied().fold(f64::INFINITY, f64::min),
            runs.iter().copied().fold(0.0, f64::max),
        );
        let p90 = percentile(&mut runs.clone(), 0.9);
        medians[i] = median(&mut runs);
        cpu_medians[i] = median(&mut cpu);
        let line = format!(
            "{}: median {:.1} ms (min {min:.1}, p90 {:.1}, max {max:.1}) over {} runs; CPU to ready {:.1} ms (median)",
            side.label(),
            medians[i].unwrap_or(0.0),
            p90.unwrap_or(0.0),
            sizes.startup_runs,
            cpu_medians[i].unwrap_or(0.0),
        );
        println!("  start-up {line}");
        report.startup_detail.push(line);
    }
    report.rows.push(Row::new(
        "start-up to ready (median)",
        "ms",
        medians[0],
        medians[1],
        Better::Lower,
        "process start until it polls the Runtime API; ours includes DescribeTable on both tables",
    ));
    report.rows.push(Row::new(
        "start-up CPU time (median)",
        "ms",
        cpu_medians[0],
        cpu_medians[1],
        Better::Lower,
        "CPU the process used until it was ready, every thread: what a busy machine cannot inflate",
    ));

    warm_tables(local).await?;
    let mut opened = [None, None];
    for (i, side) in [Side::Ours, Side::Baseline].into_iter().enumerate() {
        let first = first_invocation(env, local, side).await?;
        opened[i] = Some(first.connections_in_first as f64);
        println!(
            "  {} first invocation {:.2} ms (warm median {:.2} ms); connections opened: init {}, first invocation {}",
            side.label(),
            first.first_ms,
            first.warm_ms,
            first.connections_at_init,
            first.connections_in_first
        );
        report.first_invocation.push((side.label(), first));
    }
    report.rows.push(Row::new(
        "connections opened by the 1st invocation",
        "count",
        opened[0],
        opened[1],
        Better::Neutral,
        "each would be a TLS handshake on Lambda; ours opens its connections during init",
    ));
    Ok(())
}

/// Writes and reads one item in each table, so that moto has run its put and get paths (its
/// first call of each is slower) before a handler's first invocation is timed: otherwise
/// whichever side went first would pay for the emulator's warm-up.
async fn warm_tables(local: &LocalStack) -> Result<()> {
    use aws_sdk_dynamodb::types::AttributeValue;
    let client = aws_sdk_dynamodb::Client::new(&local.config);
    for (table, key) in [
        (&local.outputs.market_data_table_name, names::EVENT_ID),
        (&local.outputs.audit_trail_table_name, names::AUDIT_ID),
    ] {
        let id = AttributeValue::S(format!("bench-warm-up-{}", uuid::Uuid::new_v4()));
        let sort = AttributeValue::S("-".into());
        // Conditional, as the processor's record and guard writes are.
        client
            .put_item()
            .table_name(table)
            .item(key, id.clone())
            .item(names::TIMESTAMP, sort.clone())
            .condition_expression("attribute_not_exists(#k)")
            .expression_attribute_names("#k", key)
            .send()
            .await
            .map_err(|e| crate::aws::sdk_error("PutItem", e))?;
        client
            .get_item()
            .table_name(table)
            .key(key, id)
            .key(names::TIMESTAMP, sort)
            .send()
            .await
            .map_err(|e| crate::aws::sdk_error("GetItem", e))?;
    }
    Ok(())
}

/// One start: the time from spawn to the first `next` request, and the CPU time the process
/// spent to get there.
struct Start {
    ready: Duration,
    cpu: Duration,
}

/// Spawns one handler and times it until its first `next` request, which the Runtime API
/// emulator stamps as it arrives.
async fn start_once(env: &Env, local: &LocalStack, side: Side) -> Result<Start> {
    let api = RuntimeApi::start().await?;
    let mut command = handler_process(env, local, side, api.addr, &local.moto.endpoint);
    let started = Instant::now();
    let mut child = command
        .spawn()
        .with_context(|| format!("starting the {} handler", side.label()))?;
    let result = wait_next(&api, 1, &mut child, env, side)
        .await
        .map(|nexts| Start {
            ready: nexts[0].duration_since(started),
            cpu: child.id().and_then(cpu_time).unwrap_or_default(),
        });
    let _ = child.kill().await;
    result
}

/// Waits until `count` `next` requests arrived, failing if the process exits first or takes
/// longer than [`READY_TIMEOUT`].
async fn wait_next(
    api: &RuntimeApi,
    count: usize,
    child: &mut Child,
    env: &Env,
    side: Side,
) -> Result<Vec<Instant>> {
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        let nexts = api.nexts();
        if nexts.len() >= count {
            return Ok(nexts);
        }
        if let Ok(Some(status)) = child.try_wait() {
            let log = env.dir.join(format!("{}-runtime.log", side.label()));
            bail!(
                "the {} handler exited before it was ready ({status}); its stderr:\n{}",
                side.label(),
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        if Instant::now() > deadline {
            bail!(
                "the {} handler did not poll the Runtime API within {} s",
                side.label(),
                READY_TIMEOUT.as_secs()
            );
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// CPU time (user + system, every thread) a process has used so far, from the scheduler's
/// nanosecond counters in `/proc/<pid>/task/*/schedstat`.
fn cpu_time(pid: u32) -> Option<Duration> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    let mut total = 0u64;
    for task in tasks.flatten() {
        let stat = std::fs::read_to_string(task.path().join("schedstat")).ok()?;
        total += stat.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(Duration::from_nanos(total))
}

/// Serves 21 events to a fresh process and counts the connections it opens to DynamoDB
/// before it is ready and during its first invocation: a connection opened in the first
/// invocation would be a TLS handshake on Lambda.
async fn first_invocation(env: &Env, local: &LocalStack, side: Side) -> Result<FirstInvocation> {
    const EVENTS: usize = 21;
    let proxy = counting_proxy(&local.moto.endpoint).await?;
    let time = processor::event::format_timestamp(chrono::Utc::now());
    let run = uuid::Uuid::new_v4().simple().to_string();
    let events: Vec<(String, String)> = (0..EVENTS)
        .map(|i| {
            let detail = format!(
                r#"{{"exchange":"NYSE","symbol":"IBM","bid":"221.1{i}","ask":"221.2{i}","bid_size":100,"ask_size":200,"timestamp":"{time}"}}"#,
            );
            let event = crate::session::SampleEvent::stored(names::MARKET_QUOTE, detail);
            let tag = format!("{}{i:02}{}", &run[..6], side.label());
            (
                format!("req-{run}-{i}"),
                event.envelope(&crate::session::envelope_id(&tag), &time),
            )
        })
        .collect();
    let api = RuntimeApi::start().await?;
    for (request_id, payload) in &events {
        api.invoke(request_id, payload);
    }
    let endpoint = proxy.url();
    let mut child = handler_process(env, local, side, api.addr, &endpoint)
        .spawn()
        .with_context(|| format!("starting the {} handler", side.label()))?;
    let nexts = wait_next(&api, EVENTS + 1, &mut child, env, side).await?;
    let posts = api.replied();
    let _ = child.kill().await;
    if posts.len() < EVENTS {
        bail!(
            "the {} handler answered {} of {EVENTS} invocations",
            side.label(),
            posts.len()
        );
    }
    let opened = proxy.accepted();
    let ready = nexts[0];
    let first_done = posts[0];
    let mut warm: Vec<f64> = (1..EVENTS)
        .map(|i| posts[i].duration_since(nexts[i]).as_secs_f64() * 1000.0)
        .collect();
    Ok(FirstInvocation {
        first_ms: first_done.duration_since(ready).as_secs_f64() * 1000.0,
        warm_ms: median(&mut warm).unwrap_or(0.0),
        connections_at_init: opened.iter().filter(|t| **t <= ready).count(),
        connections_in_first: opened
            .iter()
            .filter(|t| **t > ready && **t <= first_done)
            .count(),
    })
}

/// Peak RSS (VmHWM) of each handler process after it has handled `events` through the
/// project's Runtime API emulator, against moto.
pub async fn measure_rss(
    env: &Env,
    local: &LocalStack,
    events: &[String],
    report: &mut Report,
) -> Result<()> {
    let mut peaks = [None, None];
    for (i, side) in [Side::Ours, Side::Baseline].into_iter().enumerate() {
        let mut api = RuntimeApi::start()
            .await
            .context("starting the Runtime API emulator")?;
        for (n, event) in events.iter().enumerate() {
            api.invoke(&format!("rss-{}-{n}", side.label()), event);
        }
        let started = Instant::now();
        let mut child = handler_process(env, local, side, api.addr, &local.moto.endpoint)
            .spawn()
            .with_context(|| format!("starting the {} handler", side.label()))?;
        let mut errors = 0;
        for n in 0..events.len() {
            let reply = tokio::select! {
                reply = api.reply() => reply,
                status = child.wait() => bail!(
                    "the {} handler exited after {n} invocations ({status:?}); see {}",
                    side.label(),
                    env.dir.join(format!("{}-runtime.log", side.label())).display()
                ),
                _ = tokio::time::sleep(Duration::from_secs(60)) => bail!(
                    "the {} handler gave no reply for 60 s after {n} invocations",
                    side.label()
                ),
            };
            if matches!(
                reply,
                Some(Reply::Error { .. } | Reply::InitError { .. }) | None
            ) {
                errors += 1;
            }
            if (n + 1) % 2_000 == 0 {
                println!("  {} {} invocations", side.label(), n + 1);
            }
        }
        let elapsed = started.elapsed().as_secs_f64();
        let peak_kb = child.id().and_then(vm_hwm_kb);
        let _ = child.kill().await;
        let Some(peak_kb) = peak_kb else {
            bail!(
                "could not read VmHWM of the {} handler from /proc",
                side.label()
            );
        };
        peaks[i] = Some(peak_kb as f64 / 1024.0);
        println!(
            "  {} peak RSS {:.1} MiB after {} invocations ({errors} errors, {:.0} invocations/s against moto)",
            side.label(),
            peak_kb as f64 / 1024.0,
            events.len(),
            events.len() as f64 / elapsed
        );
        report.rss_detail.push(format!(
            "{}: {} invocations in {elapsed:.1} s against moto, {errors} answered with an error",
            side.label(),
            events.len()
        ));
    }
    report.rss_events = events.len();
    report.rows.push(Row::new(
        &format!("peak RSS after {} events", events.len()),
        "MiB",
        peaks[0],
        peaks[1],
        Better::Lower,
        "VmHWM of the handler process",
    ));
    Ok(())
}

/// Peak resident set size of a process, from `/proc/<pid>/status`.
fn vm_hwm_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

/// An HTTP front for moto whose server notes when each client connection opens. moto closes
/// every connection after one response (`Connection: close`); DynamoDB keeps them open, so the
/// front drops that header and keeps client connections alive. What it counts is then what a
/// handler would open against DynamoDB.
async fn counting_proxy(moto: &str) -> Result<Server> {
    let upstream = Upstream::new(moto);
    Server::start("connection-counting proxy", move |req| {
        let upstream = upstream.clone();
        async move {
            let mut response = upstream.forward(req).await;
            response.headers_mut().remove(hyper::header::CONNECTION);
            Ok(response)
        }
    })
    .await
}
