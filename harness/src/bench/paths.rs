//! The per-event (EventBridge) path and the batch (Kinesis) path side by side: the handler's
//! CPU per event on the same events, each run as its path hands them over, and what that makes
//! of invocations, GB-seconds and cost per million events at prod's settings, through
//! `infra::capacity`'s arithmetic (the same as `cargo xtask capacity` prints).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};
use infra::capacity::{self, Load};
use infra::cost;
use infra::model::Model;
use infra::stack::StackConfig;

use super::cpu::{self, Loop};
use super::report::PipelineRun;
use super::{Env, Sizes};

/// The stack whose settings the comparison prices: the one the targets are stated for.
const STACK: &str = "prod";
/// The rate the costs are computed at: prod's design rate, where batches fill.
const EVENTS_PER_SECOND: u64 = 10_000;
/// One DynamoDB write as the function waits for it, in the region: assumed (DynamoDB states
/// single-digit milliseconds). The handler's own CPU is measured; this is the rest of an
/// invocation's billed time, the same for both paths.
pub const WRITE_WAIT_MS: f64 = 4.0;
/// Writes one event waits for in turn: its record, then its audit entry (a trade's guard
/// comes first, in 40 % of events with the session's mix, so 2.4 on average).
const SEQUENTIAL_WRITES_PER_EVENT: f64 = 2.4;

/// What the comparison measured and modelled.
#[derive(Debug, Clone)]
pub struct Paths {
    pub events: usize,
    pub batch_size: u32,
    pub concurrent_keys: u32,
    /// Handler CPU per event, µs: per-event path, batch path.
    pub cpu_us: (f64, f64),
    /// Instructions per event under callgrind, which the machine's load does not move; `None`
    /// without valgrind.
    pub instructions: Option<(f64, f64)>,
    /// Billed milliseconds of one invocation: one event; one full batch.
    pub invocation_ms: (f64, f64),
    /// The longest chain of one key's records in a batch of the session, which the batch's
    /// time waits for even with every key running at once.
    pub longest_key_run: usize,
    pub invocations_per_million: (f64, f64),
    pub gb_seconds_per_million: (f64, f64),
    pub write_units_per_event: (f64, f64),
    pub cost_per_million: (f64, f64),
    /// The local pipeline on each path, the same session: the bus run of the pipeline step
    /// and the stream's (`pipeline::measure_stream`).
    pub pipeline: Option<(PipelineRun, PipelineRun)>,
}

pub fn measure(env: &Env, sizes: &Sizes, events: &Path) -> Result<Paths> {
    let config = StackConfig::load(&env.root, STACK)
        .map_err(|e| anyhow::anyhow!("{e}"))
        .with_context(|| format!("loading stacks/{STACK}.yaml"))?;
    let model = Model::from_stack(&config);
    let mapping = &model
        .kinesis
        .as_ref()
        .with_context(|| format!("stack {STACK} has no stream path to compare with"))?
        .mapping
        .config;
    let batch_size = mapping.batch_size;
    let subset = env.dir.join("events-paths.jsonl");
    cpu::write_head(events, &subset, sizes.cpu_events)?;
    // Alternated, best of two each: the machine is shared, and a slow moment should not land
    // on one side only.
    let mut per_event: Vec<Loop> = Vec::new();
    let mut batch: Vec<Loop> = Vec::new();
    for _ in 0..2 {
        per_event.push(cpu::hot_path(
            env,
            &subset,
            sizes.cpu_passes_ours,
            "process",
            true,
            None,
        )?);
        batch.push(cpu::hot_path(
            env,
            &subset,
            sizes.cpu_passes_ours,
            "batch",
            true,
            Some(batch_size),
        )?);
    }
    let best = |loops: &[Loop]| {
        loops
            .iter()
            .map(Loop::us_per_event)
            .fold(f64::INFINITY, f64::min)
    };
    let cpu_us = (best(&per_event), best(&batch));
    let instructions = match crate::ship::which::which("valgrind") {
        None => None,
        Some(valgrind) => {
            let small = env.dir.join("events-paths-callgrind.jsonl");
            cpu::write_head(events, &small, sizes.callgrind_events)?;
            let of = |mode, size, name| {
                cpu::callgrind(env, &valgrind, &small, mode, size, name)
                    .map(|p| p.instructions_per_event)
            };
            Some((
                of("process", None, "paths-per-event")?,
                of("batch", Some(batch_size), "paths-batch")?,
            ))
        }
    };

    let longest_key_run = longest_key_run(&subset, batch_size as usize)?;
    let batch_records = f64::from(batch_size);
    let per_event_ms = cpu_us.0 / 1000.0 + SEQUENTIAL_WRITES_PER_EVENT * WRITE_WAIT_MS;
    // Keys run concurrently up to `concurrent_keys`, one key's records in turn: the batch waits
    // for its longest key, or for all its records shared over the concurrent slots.
    let rounds =
        (longest_key_run as f64).max((batch_records / f64::from(mapping.concurrent_keys)).ceil());
    let batch_ms =
        cpu_us.1 * batch_records / 1000.0 + rounds * SEQUENTIAL_WRITES_PER_EVENT * WRITE_WAIT_MS;
    let invocation_ms = (per_event_ms.ceil(), batch_ms.ceil());

    let load = Load::new(
        EVENTS_PER_SECOND,
        capacity::DEFAULT_TRADE_SHARE,
        Some(invocation_ms.0),
        Some(invocation_ms.1),
        None,
    )?;
    let report = capacity::report(&config, &model, &load);
    let cost_of = |path: capacity::Path| {
        report
            .path(path)
            .map(|p| p.cost_alone.per_million)
            .with_context(|| format!("capacity has no {path:?} path for stack {STACK}"))
    };
    let memory_gb = f64::from(config.lambda.memory_mb) / 1024.0;
    let invocations = (1e6, 1e6 / batch_records);
    let mix = cost::Mix {
        trade_share: capacity::DEFAULT_TRADE_SHARE,
        rejected_share: 0.0,
    };
    let units = |path: capacity::Path| cost::write_units_per_event(mix, path.ingest()).total();
    Ok(Paths {
        events: cpu_events(&subset)?,
        batch_size,
        concurrent_keys: mapping.concurrent_keys,
        cpu_us,
        instructions,
        invocation_ms,
        longest_key_run,
        invocations_per_million: invocations,
        gb_seconds_per_million: (
            invocations.0 * invocation_ms.0 / 1000.0 * memory_gb,
            invocations.1 * invocation_ms.1 / 1000.0 * memory_gb,
        ),
        // The same items, indexed as each path indexes them (names::Ingest).
        write_units_per_event: (units(capacity::Path::Bus), units(capacity::Path::Stream)),
        cost_per_million: (
            cost_of(capacity::Path::Bus)?,
            cost_of(capacity::Path::Stream)?,
        ),
        pipeline: None,
    })
}

fn cpu_events(path: &Path) -> Result<usize> {
    Ok(std::fs::read_to_string(path)
        .with_context(|| format!("reading {}", path.display()))?
        .lines()
        .filter(|l| !l.trim().is_empty())
        .count())
}

/// The most records of one partition key in any batch of `size` consecutive events, keyed as
/// the publisher keys them.
fn longest_key_run(events: &Path, size: usize) -> Result<usize> {
    let text =
        std::fs::read_to_string(events).with_context(|| format!("reading {}", events.display()))?;
    let keys: Vec<String> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(n, line)| crate::stream::envelope_partition_key(line, &format!("event-{n}")))
        .collect();
    Ok(keys
        .chunks(size.max(1))
        .map(|batch| {
            let mut counts: HashMap<&str, usize> = HashMap::new();
            for key in batch {
                *counts.entry(key).or_default() += 1;
            }
            counts.into_values().max().unwrap_or(0)
        })
        .max()
        .unwrap_or(0))
}

impl Paths {
    fn ratio(pair: (f64, f64)) -> f64 {
        pair.1 / pair.0.max(f64::MIN_POSITIVE)
    }

    /// The batch path's cost per million events against the per-event path's.
    pub fn cost_ratio(&self) -> f64 {
        Self::ratio(self.cost_per_million)
    }

    pub fn cpu_ratio(&self) -> f64 {
        Self::ratio(self.cpu_us)
    }

    pub fn instructions_ratio(&self) -> Option<f64> {
        self.instructions.map(Self::ratio)
    }

    /// Events/s of the local pipeline: per-event path, batch path.
    pub fn pipeline_events_per_second(&self) -> Option<(f64, f64)> {
        self.pipeline
            .as_ref()
            .map(|(bus, stream)| (bus.events_per_second(), stream.events_per_second()))
    }

    /// The section of BENCHMARKS.md.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "\n## Per-event and batch paths\n");
        let _ = writeln!(
            out,
            "The same {} events of the session through the processor as the bus hands them \
             over (one invocation each, `Processor::process`) and as the stream's mapping does \
             (batches of {}, `Processor::process_batch`, keyed by instrument), network taken \
             out, logs and metrics on. Costs at stack `{STACK}`'s settings and \
             {EVENTS_PER_SECOND} events/s, every event on the path compared, through \
             `infra::capacity` (what `cargo xtask capacity --stack {STACK}` prints); logs, \
             storage and alarms are the same on both paths and left out.\n",
            self.events, self.batch_size
        );
        let _ = writeln!(
            out,
            "| measure | per-event (bus) | batch (stream) | batch / per-event |\n| --- | ---: | ---: | ---: |"
        );
        let rows = [
            ("handler CPU per event, no network (µs)", self.cpu_us, 2),
            (
                "billed duration of one invocation (ms)",
                self.invocation_ms,
                0,
            ),
            (
                "invocations per million events",
                self.invocations_per_million,
                0,
            ),
            (
                "Lambda GB-seconds per million events",
                self.gb_seconds_per_million,
                1,
            ),
            (
                "DynamoDB write units per event",
                self.write_units_per_event,
                2,
            ),
            (
                "modelled cost per million events (USD)",
                self.cost_per_million,
                3,
            ),
        ];
        let pipeline = self.pipeline_events_per_second();
        let instructions = self.instructions.map(|pair| {
            (
                "handler instructions per event, no network (callgrind)",
                pair,
                0,
            )
        });
        let rows = rows
            .into_iter()
            .chain(instructions)
            .chain(pipeline.map(|pair| ("local pipeline events/s (moto, 4 at once)", pair, 0)));
        for (label, pair, digits) in rows {
            let _ = writeln!(
                out,
                "| {label} | {:.digits$} | {:.digits$} | {:.3} |",
                pair.0,
                pair.1,
                Self::ratio(pair)
            );
        }
        let _ = writeln!(
            out,
            "\n- *billed duration*: the measured CPU plus {WRITE_WAIT_MS} ms per DynamoDB write \
             waited for (assumed), {SEQUENTIAL_WRITES_PER_EVENT} writes in turn per event. A \
             batch runs {} keys at once, one key's records in turn, so it waits for its longest \
             key ({} records in the session's worst batch) or for its records shared over the \
             keys running at once, whichever is longer.",
            self.concurrent_keys, self.longest_key_run
        );
        let _ = writeln!(
            out,
            "- *handler CPU*: wall clock of a single-threaded loop, the paths alternated and the \
             better of two runs each; and instructions under callgrind on the first events of \
             the same set, which do not move with the machine's load. Both paths run the same \
             code per event (the batch path adds grouping by key and one log line per batch, \
             and writes fewer index keys), so the target is judged on instructions: the wall \
             clock of two runs of one path differs by more than the paths do."
        );
        let _ = writeln!(
            out,
            "- *local pipeline*: the bus run is the pipeline section's (moto's bus, rule and \
             delivery queue, 4 invocations at once); the stream run puts the same routed events \
             on stack `staging`'s stream (2 shards, parallelization factor 2: 4 batches at \
             once), read by the local stand-in for the event source mapping. Both write to \
             moto's DynamoDB, whose work per write is the same on both paths."
        );
        let _ = writeln!(
            out,
            "- *write units per event*: by the bus, a record and its two index copies, a \
             PROCESSED entry and its index copy, a guard per trade; by the stream, the record \
             in SymbolIndex only and the PROCESSED entry in no index (`names::Ingest`, \
             `infra::cost::write_units`). DynamoDB is most of either path's cost, so these \
             copies, not the batching, decide the ratio."
        );
        out
    }

    /// The targets of the comparison, each met or not.
    pub fn targets(&self) -> Vec<(String, Option<bool>, String)> {
        let pipeline = self.pipeline_events_per_second();
        let pipeline_ratio = pipeline.map(Self::ratio);
        vec![
            (
                "local batched pipeline ≥ 2× the per-event pipeline's events/s".to_string(),
                pipeline_ratio.map(|r| r >= 2.0),
                pipeline.map_or("not measured".to_string(), |(bus, stream)| {
                    format!(
                        "{stream:.0} events/s against {bus:.0}: {:.2}×",
                        Self::ratio((bus, stream))
                    )
                }),
            ),
            (
                "batch path cost per million events ≤ ½ the per-event path's (prod)".to_string(),
                Some(self.cost_ratio() <= 0.5),
                format!(
                    "${:.3} against ${:.3}: {:.2}×",
                    self.cost_per_million.1,
                    self.cost_per_million.0,
                    self.cost_ratio()
                ),
            ),
            // Judged on instructions where callgrind ran: the two paths run the same code per
            // event, and on a shared machine their wall-clock times differ by more than that
            // code does from one run to the next.
            (
                "batch path handler CPU per event ≤ the per-event path's".to_string(),
                Some(self.instructions_ratio().unwrap_or(self.cpu_ratio()) <= 1.0),
                match self.instructions {
                    Some((per_event, batch)) => format!(
                        "{batch:.0} instructions against {per_event:.0}: {:.3}× (wall clock {:.2} µs against {:.2} µs: {:.2}×)",
                        Self::ratio((per_event, batch)),
                        self.cpu_us.1,
                        self.cpu_us.0,
                        self.cpu_ratio()
                    ),
                    None => format!(
                        "{:.2} µs against {:.2} µs: {:.2}×",
                        self.cpu_us.1,
                        self.cpu_us.0,
                        self.cpu_ratio()
                    ),
                },
            ),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_run_is_the_busiest_key_of_any_batch() {
        let dir = std::env::temp_dir().join(format!("paths-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("events.jsonl");
        let line = |symbol: &str| {
            format!(r#"{{"id":"x","detail":{{"exchange":"NYSE","symbol":"{symbol}"}}}}"#)
        };
        // Batches of 4: [A A B A] [B B C D] [A]
        let lines: Vec<String> = ["A", "A", "B", "A", "B", "B", "C", "D", "A"]
            .iter()
            .map(|s| line(s))
            .collect();
        std::fs::write(&path, lines.join("\n")).expect("write");
        assert_eq!(longest_key_run(&path, 4).expect("runs"), 3);
        assert_eq!(longest_key_run(&path, 2).expect("runs"), 2);
        assert_eq!(longest_key_run(&path, 9).expect("runs"), 4);
        assert_eq!(cpu_events(&path).expect("count"), 9);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
