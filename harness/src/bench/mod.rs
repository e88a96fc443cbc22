//! `cargo xtask bench`: the processor side by side with the Python 3.11 + boto3 handler it
//! replaces (`harness/baseline/`), measured in one run on one machine: handler CPU per event,
//! start-up, peak memory, package size and the local pipeline end to end; and its two ingest
//! paths, per event and in batches, side by side ([`paths`]).
//!
//! Every figure is measured the same way for both sides: the same events, the same moto
//! server, the same Lambda Runtime API emulator, the same clock. Nothing here asserts a
//! timing; targets are reported as met or not.

mod cpu;
mod paths;
mod pipeline;
mod report;
mod startup;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use chrono::Utc;

use crate::local::{LocalStack, SESSION_SEED};
use crate::session::{self, SampleEvent};
use report::{Better, Report, Row};

pub struct Options {
    /// A short run that checks every measurement works; its numbers are indicative only.
    pub quick: bool,
}

/// How much of everything a run measures.
struct Sizes {
    /// Events in the CPU loops, and passes of ours over them (ours is fast enough that one
    /// pass would be too short to time well).
    cpu_events: usize,
    cpu_passes_ours: usize,
    /// Events run under callgrind.
    callgrind_events: usize,
    startup_runs: usize,
    /// Invocations before peak RSS is read.
    rss_events: usize,
    /// Events published through each local pipeline.
    pipeline_events: usize,
}

impl Sizes {
    fn new(quick: bool) -> Sizes {
        if quick {
            Sizes {
                cpu_events: 2_000,
                cpu_passes_ours: 2,
                callgrind_events: 200,
                startup_runs: 5,
                rss_events: 500,
                pipeline_events: 300,
            }
        } else {
            Sizes {
                cpu_events: 10_000,
                cpu_passes_ours: 5,
                callgrind_events: 2_000,
                startup_runs: 25,
                rss_events: 10_000,
                pipeline_events: 3_000,
            }
        }
    }
}

/// Paths and programs every part of the bench uses.
pub struct Env {
    pub root: PathBuf,
    /// `target/bench`: events, logs, profiles, the baseline's packages.
    pub dir: PathBuf,
    /// The host release `bootstrap` (start-up and memory are measured natively: under qemu
    /// they would measure the emulator).
    pub bootstrap: PathBuf,
    /// The `hot_path` example, release code generation with symbols.
    pub hot_path: PathBuf,
    pub python: PathBuf,
    pub baseline_dir: PathBuf,
}

impl Env {
    /// The baseline's `bench.py` with the given arguments, in a clean environment.
    pub fn python(&self, args: &[&str], vars: &[(&str, String)]) -> Command {
        let mut command = Command::new(&self.python);
        command
            .arg(self.baseline_dir.join("bench.py"))
            .args(args)
            .env_clear()
            .envs(base_vars(&self.dir))
            .envs(vars.iter().map(|(k, v)| (*k, v.as_str())));
        command
    }
}

/// What every measured process gets besides its own settings: nothing from the caller's
/// environment leaks into a measurement. Python keeps its compiled modules under
/// `target/bench` so that neither the source tree nor `.venv` is written to, and only the
/// first, untimed, start compiles them.
pub fn base_vars(dir: &Path) -> Vec<(&'static str, String)> {
    let mut vars = vec![
        ("PATH", "/usr/local/bin:/usr/bin:/bin".to_string()),
        (
            "PYTHONPYCACHEPREFIX",
            dir.join("pycache").display().to_string(),
        ),
    ];
    if let Some(home) = std::env::var_os("HOME") {
        vars.push(("HOME", home.to_string_lossy().into_owned()));
    }
    vars
}

pub async fn run(root: &Path, options: &Options) -> Result<()> {
    let started = Instant::now();
    let sizes = Sizes::new(options.quick);
    let env = prepare(root)?;
    let mut report = Report::new(options.quick);

    println!("generating the sample session");
    let end = Utc::now() - chrono::Duration::minutes(1);
    let cpu_events = session::routed(sizes.cpu_events.max(sizes.rss_events), SESSION_SEED, end);
    let events_path = env.dir.join("events.jsonl");
    write_envelopes(&events_path, &cpu_events)?;

    println!("1/6 handler CPU per event, network taken out");
    cpu::measure(&env, &sizes, &events_path, &mut report)?;

    println!("2/6 package size");
    report.package = Some(measure_package(&env, &mut report)?);

    {
        println!("3/6 start-up and the first invocation (moto + a Runtime API on loopback)");
        let local = LocalStack::start(root, "dev").await?;
        startup::measure(&env, &local, &sizes, &mut report).await?;
        println!("4/6 peak memory after {} invocations", sizes.rss_events);
        let rss_events: Vec<String> = std::fs::read_to_string(&events_path)
            .with_context(|| format!("reading {}", events_path.display()))?
            .lines()
            .take(sizes.rss_events)
            .map(String::from)
            .collect();
        startup::measure_rss(&env, &local, &rss_events, &mut report).await?;
    }

    println!("5/6 the local pipeline end to end");
    let session = session::session(sizes.pipeline_events, SESSION_SEED, end);
    pipeline::measure(&env, &session, &mut report).await?;

    println!("6/6 the per-event and batch paths side by side");
    let stream_run = pipeline::measure_stream(&env, &session).await?;
    let mut paths = paths::measure(&env, &sizes, &events_path)?;
    paths.pipeline = report.pipeline.first().map(|bus| (bus.clone(), stream_run));
    println!(
        "  CPU per event: per-event {:.1} µs, batch {:.1} µs ({:.2}×); cost per million at prod: ${:.3} against ${:.3} ({:.2}×)",
        paths.cpu_us.0,
        paths.cpu_us.1,
        paths.cpu_ratio(),
        paths.cost_per_million.0,
        paths.cost_per_million.1,
        paths.cost_ratio()
    );
    if let Some((per_event, batch)) = paths.instructions {
        println!(
            "  instructions per event: per-event {per_event:.0}, batch {batch:.0} ({:.3}×)",
            batch / per_event.max(f64::MIN_POSITIVE)
        );
    }
    if let Some((bus, stream)) = paths.pipeline_events_per_second() {
        println!(
            "  local pipeline: per-event {bus:.0} events/s, batch {stream:.0} events/s ({:.2}×)",
            stream / bus.max(f64::MIN_POSITIVE)
        );
    }
    report.paths = Some(paths);

    report.wall_s = started.elapsed().as_secs_f64();
    report.machine = report::Machine::detect(&env);
    let table = report.table();
    println!("\n{table}");
    let markdown = report.markdown(&table);
    if options.quick {
        let path = env.dir.join("BENCHMARKS.quick.md");
        std::fs::write(&path, markdown).with_context(|| format!("writing {}", path.display()))?;
        println!(
            "quick run: numbers are indicative only; report in {} (BENCHMARKS.md is written by a full run)",
            path.display()
        );
    } else {
        let path = root.join("BENCHMARKS.md");
        let kept = report::kept_section(&path);
        std::fs::write(&path, markdown + &kept)
            .with_context(|| format!("writing {}", path.display()))?;
        println!("wrote {}", path.display());
    }
    println!("bench finished in {:.0} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// Builds what the bench runs and checks the tools it needs, naming what is missing.
fn prepare(root: &Path) -> Result<Env> {
    let dir = root.join("target").join("bench");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    crate::moto::ensure_installed(root)?;
    let python = root.join(".venv").join("bin").join("python");
    if !python.is_file() {
        bail!(
            "{} is missing although moto is installed; remove .venv and run again to recreate it",
            python.display()
        );
    }
    let baseline_dir = root.join("harness").join("baseline");
    if !baseline_dir.join("bench.py").is_file() {
        bail!(
            "the baseline handler is missing: {}",
            baseline_dir.display()
        );
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    for (what, args) in [
        (
            "the release bootstrap",
            &[
                "build",
                "--locked",
                "--release",
                "-p",
                "processor",
                "--bin",
                "bootstrap",
            ][..],
        ),
        (
            "the hot_path example",
            &[
                "build",
                "--locked",
                "--profile",
                "bench",
                "-p",
                "harness",
                "--example",
                "hot_path",
            ][..],
        ),
    ] {
        println!("building {what} (cargo {})", args.join(" "));
        let status = Command::new(&cargo)
            .current_dir(root)
            .args(args)
            .status()
            .with_context(|| format!("starting cargo to build {what}"))?;
        if !status.success() {
            bail!("building {what} failed ({status}); cargo's messages are above");
        }
    }
    let release = root.join("target").join("release");
    Ok(Env {
        bootstrap: release.join("bootstrap"),
        hot_path: release.join("examples").join("hot_path"),
        root: root.to_path_buf(),
        dir,
        python,
        baseline_dir,
    })
}

/// The events as the bus hands them to the function: one EventBridge envelope per line.
fn write_envelopes(path: &Path, events: &[SampleEvent]) -> Result<()> {
    let mut text = String::new();
    for line in session::envelopes(events, Utc::now()) {
        text.push_str(&line);
        text.push('\n');
    }
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// Ours: the `cargo xtask build` package if there is one, else the host release binary zipped
/// the same way. Baseline: the handler alone, and with boto3 and its dependencies.
fn measure_package(env: &Env, report: &mut Report) -> Result<report::Package> {
    let built = crate::ship::build::package_path(&env.root);
    let (ours_bytes, ours_what) = match crate::ship::package::inspect(&built) {
        Ok(inspection) => (
            inspection.zip_bytes,
            format!(
                "{} ({}, from `cargo xtask build`)",
                names::PACKAGE_PATH,
                inspection.arch.as_str()
            ),
        ),
        Err(err) => {
            let binary = std::fs::read(&env.bootstrap)
                .with_context(|| format!("reading {}", env.bootstrap.display()))?;
            let zip = crate::ship::package::zip_bytes(&binary).context("zipping bootstrap")?;
            report.notes.push(format!(
                "Package: {err}; measured the host (x86_64) release bootstrap zipped the same way \
                 (deflate level 9, one entry). The arm64 package is built by `cargo xtask build`."
            ));
            (
                zip.len() as u64,
                "target/release/bootstrap zipped like the package (x86_64)".to_string(),
            )
        }
    };
    let out = env.dir.join("baseline-package");
    let output = env
        .python(&["package", &out.display().to_string()], &[])
        .output()
        .context("running the baseline's package step")?;
    if !output.status.success() {
        bail!(
            "packaging the baseline failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let value: serde_json::Value =
        serde_json::from_slice(&output.stdout).context("reading the baseline's package summary")?;
    let field = |key: &str| value.get(key).and_then(serde_json::Value::as_u64);
    let distributions = value
        .get("distributions")
        .and_then(serde_json::Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k} {}", v.as_str().unwrap_or("?")))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default();
    let package = report::Package {
        ours_bytes,
        ours_what,
        baseline_handler_bytes: field("handler_zip").unwrap_or(0),
        baseline_with_deps_bytes: field("with_deps_zip").unwrap_or(0),
        baseline_distributions: distributions,
    };
    report.rows.push(Row::new(
        "package zip",
        "MB",
        Some(mb(package.ours_bytes)),
        Some(mb(package.baseline_with_deps_bytes)),
        Better::Lower,
        "baseline: handler + boto3 and its dependencies",
    ));
    report.rows.push(Row::new(
        "package zip, baseline on the runtime's boto3",
        "MB",
        Some(mb(package.ours_bytes)),
        Some(mb(package.baseline_handler_bytes)),
        Better::Lower,
        "baseline: the handler alone, relying on the boto3 that Lambda's Python runtime bundles",
    ));
    Ok(package)
}

pub fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1_000_000.0
}

pub fn median(values: &mut [f64]) -> Option<f64> {
    percentile(values, 0.5)
}

/// Nearest-rank percentile of `values` (sorted in place).
pub fn percentile(values: &mut [f64], q: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let rank = ((values.len() as f64 * q).ceil() as usize).clamp(1, values.len());
    Some(values[rank - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let mut values: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&mut values, 0.5), Some(50.0));
        assert_eq!(percentile(&mut values, 0.99), Some(99.0));
        assert_eq!(percentile(&mut values, 1.0), Some(100.0));
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&mut []), None);
    }

    #[test]
    fn envelopes_are_valid_eventbridge_events() {
        let end = Utc::now() - chrono::Duration::minutes(1);
        let events = session::routed(50, SESSION_SEED, end);
        assert_eq!(events.len(), 50);
        let time = processor::event::format_timestamp(Utc::now());
        let rules = processor::event::Rules {
            accepted_sources: vec![names::DEFAULT_SOURCE.into()],
            max_future_skew_seconds: 300,
            max_event_age_seconds: 7 * 86_400,
            replay_max_age_seconds: None,
        };
        let mut ids = std::collections::HashSet::new();
        for (n, event) in events.iter().enumerate() {
            let raw = event.envelope(&session::envelope_id(&format!("{n:08x}")), &time);
            let value: serde_json::Value = serde_json::from_str(&raw).expect("valid JSON");
            let id = value["id"].as_str().expect("id").to_string();
            assert_eq!(id.len(), 36, "{id}");
            assert!(ids.insert(id));
            let decoded = processor::event::decode(&raw, &rules, Utc::now());
            assert_eq!(
                decoded.is_ok(),
                event.expect != session::Expect::Rejected,
                "{raw}"
            );
        }
    }
}
