//! Handler CPU per event with the network taken out. Ours: the `hot_path` example runs
//! `Processor::process` with a connector that answers without a socket (logs and metrics on,
//! to /dev/null). Baseline: the handler with botocore answered by a `before-send` hook, after
//! it has serialized and signed each request. Both over the same events, on one thread.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

use super::report::{Better, Profile, Report, Row};
use super::{Env, Sizes};
use crate::ship::which::which;

pub fn measure(env: &Env, sizes: &Sizes, events: &Path, report: &mut Report) -> Result<()> {
    let subset = env.dir.join("events-cpu.jsonl");
    write_head(events, &subset, sizes.cpu_events)?;

    let items = hot_path(env, &subset, sizes.cpu_passes_ours, "items", false, None)?;
    let ours = hot_path(env, &subset, sizes.cpu_passes_ours, "process", true, None)?;
    let request = baseline(env, &subset, "request")?;
    let wire = baseline(env, &subset, "wire")?;
    println!(
        "  up to the request: ours {:.1} µs/event, baseline {:.1}; whole handler without network: ours {:.1}, baseline {:.1}",
        items.us_per_event(),
        request.us_per_event(),
        ours.us_per_event(),
        wire.us_per_event()
    );

    report.rows.push(Row::new(
        "handler CPU per event, up to the request",
        "µs",
        Some(items.us_per_event()),
        Some(request.us_per_event()),
        Better::Lower,
        "decode + validate + both DynamoDB items. Ours: the items the SDK is handed \
         (plus the dedupe guard of a trade). Baseline: up to boto3's serialized request, \
         answered where botocore's Stubber answers (`before-call`)",
    ));
    report.rows.push(Row::new(
        "handler CPU per event, whole, no network",
        "µs",
        Some(ours.us_per_event()),
        Some(wire.us_per_event()),
        Better::Lower,
        "as deployed, only the socket replaced: SDK requests serialized and SigV4-signed, \
         replies parsed; ours also writes its JSON log and EMF metric lines",
    ));
    report.rows.push(Row::new(
        "events per second, one core",
        "events/s",
        Some(ours.per_second()),
        Some(wire.per_second()),
        Better::Higher,
        "the whole handler without network, on one thread",
    ));
    report.cpu_detail = Some(format!(
        "{} events from the session. Ours: {} passes, wall time of a single-threaded loop \
         ({:.3} s up to the request, {:.3} s whole; per pass {} events stored or duplicate, \
         {} rejected). Baseline: one pass, `time.process_time` ({:.3} s CPU and {:.3} s wall \
         up to the request, {:.3} s CPU and {:.3} s wall whole).",
        ours.events / sizes.cpu_passes_ours.max(1),
        sizes.cpu_passes_ours,
        items.seconds,
        ours.seconds,
        ours.ok / sizes.cpu_passes_ours.max(1) as u64,
        ours.rejected / sizes.cpu_passes_ours.max(1) as u64,
        request.seconds,
        request.wall_seconds,
        wire.seconds,
        wire.wall_seconds,
    ));

    match which("valgrind") {
        None => report.notes.push(
            "Instructions per event: valgrind is not installed (`apt-get install valgrind`), \
             so the callgrind column was skipped."
                .to_string(),
        ),
        Some(valgrind) => {
            let small = env.dir.join("events-callgrind.jsonl");
            write_head(events, &small, sizes.callgrind_events)?;
            let items = callgrind(env, &valgrind, &small, "items", None, "items")?;
            let profile = callgrind(env, &valgrind, &small, "process", None, "process")?;
            println!(
                "  callgrind: {:.0} instructions/event up to the request, {:.0} whole",
                items.instructions_per_event, profile.instructions_per_event
            );
            report.rows.push(Row::new(
                "instructions per event, up to the request",
                "Ir",
                Some(items.instructions_per_event),
                None,
                Better::Lower,
                "callgrind, ours only: counts do not move with the machine's load",
            ));
            report.rows.push(Row::new(
                "instructions per event, whole",
                "Ir",
                Some(profile.instructions_per_event),
                None,
                Better::Lower,
                "callgrind, ours only; valgrind hides the CPU's SHA extensions, so SigV4's \
                 SHA-256 runs the portable code here and weighs more than natively",
            ));
            report.profile = Some(profile);
        }
    }
    Ok(())
}

/// The first `count` lines of `from`.
pub fn write_head(from: &Path, to: &Path, count: usize) -> Result<()> {
    let text =
        std::fs::read_to_string(from).with_context(|| format!("reading {}", from.display()))?;
    let mut head: String = text.lines().take(count).collect::<Vec<_>>().join("\n");
    head.push('\n');
    std::fs::write(to, head).with_context(|| format!("writing {}", to.display()))
}

#[derive(Debug, Clone, Default)]
pub struct Loop {
    pub events: usize,
    /// CPU seconds for the baseline, wall seconds of a single-threaded loop for ours.
    pub seconds: f64,
    pub wall_seconds: f64,
    pub ok: u64,
    pub rejected: u64,
}

impl Loop {
    pub fn us_per_event(&self) -> f64 {
        self.seconds * 1e6 / self.events.max(1) as f64
    }

    pub fn per_second(&self) -> f64 {
        self.events as f64 / self.seconds.max(f64::MIN_POSITIVE)
    }
}

pub fn hot_path(
    env: &Env,
    events: &Path,
    passes: usize,
    mode: &str,
    logs: bool,
    batch_size: Option<u32>,
) -> Result<Loop> {
    let out = env.dir.join(format!("hot_path-{mode}.json"));
    let mut command = Command::new(&env.hot_path);
    command
        .arg("--events")
        .arg(events)
        .args(["--passes", &passes.to_string(), "--mode", mode, "--out"])
        .arg(&out)
        .env_clear()
        .envs(super::base_vars(&env.dir))
        // The log and metric lines go where Lambda's would go: a sink that costs a write.
        .stdout(Stdio::null());
    if logs {
        command.arg("--logs");
    }
    if let Some(size) = batch_size {
        command.args(["--batch-size", &size.to_string()]);
    }
    let output = command
        .output()
        .with_context(|| format!("running {}", env.hot_path.display()))?;
    if !output.status.success() {
        bail!(
            "{} failed ({}): {}",
            env.hot_path.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let value = read_json(&out)?;
    let number = |key: &str| value.get(key).and_then(serde_json::Value::as_f64);
    let (Some(events), Some(seconds)) = (number("events"), number("elapsed_s")) else {
        bail!("{} holds no events/elapsed_s: {value}", out.display());
    };
    if number("failed").unwrap_or(0.0) > 0.0 {
        bail!(
            "the hot path failed events against the offline connector: {value}; \
             a stubbed store must never fail"
        );
    }
    Ok(Loop {
        events: events as usize,
        seconds,
        wall_seconds: seconds,
        ok: number("ok").unwrap_or(0.0) as u64,
        rejected: number("rejected").unwrap_or(0.0) as u64,
    })
}

fn baseline(env: &Env, events: &Path, stop: &str) -> Result<Loop> {
    let tables = Tables {
        market: "market-data-bench",
        audit: "audit-trail-bench",
        latest: "latest-prices-bench",
    };
    let vars = handler_vars(&tables, "http://127.0.0.1:9");
    let output = env
        .python(&["cpu", &events.display().to_string(), "1", stop], &vars)
        .output()
        .context("running the baseline CPU loop")?;
    if !output.status.success() {
        bail!(
            "the baseline CPU loop failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let value: serde_json::Value = serde_json::from_slice(&output.stdout)
        .with_context(|| format!("reading {}", String::from_utf8_lossy(&output.stdout)))?;
    let number = |key: &str| value.get(key).and_then(serde_json::Value::as_f64);
    let (Some(events), Some(cpu), Some(wall)) =
        (number("events"), number("cpu_s"), number("wall_s"))
    else {
        bail!("the baseline CPU loop printed {value}, without events/cpu_s/wall_s");
    };
    Ok(Loop {
        events: events as usize,
        seconds: cpu,
        wall_seconds: wall,
        ..Loop::default()
    })
}

/// The tables a handler under measurement writes to.
pub struct Tables<'a> {
    pub market: &'a str,
    pub audit: &'a str,
    pub latest: &'a str,
}

impl<'a> Tables<'a> {
    pub fn of(outputs: &'a infra::outputs::Outputs) -> Self {
        Tables {
            market: &outputs.market_data_table_name,
            audit: &outputs.audit_trail_table_name,
            latest: &outputs.latest_table_name,
        }
    }
}

/// What both handlers read from their environment, pointing at `endpoint`.
pub fn handler_vars(outputs: &Tables, endpoint: &str) -> Vec<(&'static str, String)> {
    let mut vars = crate::aws::emulated_env(endpoint);
    vars.extend([
        (names::ENV_MARKET_DATA_TABLE, outputs.market.to_string()),
        (names::ENV_AUDIT_TRAIL_TABLE, outputs.audit.to_string()),
        (names::ENV_LATEST_TABLE, outputs.latest.to_string()),
        (names::ENV_ENVIRONMENT, "bench".to_string()),
    ]);
    vars
}

fn read_json(path: &Path) -> Result<serde_json::Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(text.trim()).with_context(|| format!("parsing {}", path.display()))
}

/// Instructions per event inside `measured_loop` only (start-up and warm-up excluded), and the
/// functions that cost the most; `batch_size` for the batch mode. The profile is left in
/// `target/bench/callgrind-<name>.out`.
pub(super) fn callgrind(
    env: &Env,
    valgrind: &Path,
    events: &Path,
    mode: &str,
    batch_size: Option<u32>,
    name: &str,
) -> Result<Profile> {
    let out_file = env.dir.join(format!("callgrind-{name}.out"));
    let result = env.dir.join(format!("hot_path-callgrind-{name}.json"));
    let mut command = Command::new(valgrind);
    command
        .args(["--tool=callgrind", "--toggle-collect=*measured_loop*"])
        .arg(format!("--callgrind-out-file={}", out_file.display()))
        .arg(&env.hot_path)
        .arg("--events")
        .arg(events)
        .args(["--passes", "1", "--mode", mode, "--logs", "--out"])
        .arg(&result);
    if let Some(size) = batch_size {
        command.args(["--batch-size", &size.to_string()]);
    }
    let output = command
        .env_clear()
        .envs(super::base_vars(&env.dir))
        .stdout(Stdio::null())
        .output()
        .context("running callgrind")?;
    if !output.status.success() {
        bail!(
            "callgrind failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let value = read_json(&result)?;
    let events = value
        .get("events")
        .and_then(serde_json::Value::as_u64)
        .unwrap_or(0);
    let text = std::fs::read_to_string(&out_file)
        .with_context(|| format!("reading {}", out_file.display()))?;
    let Some(total) = total_instructions(&text) else {
        bail!("{} has no totals line", out_file.display());
    };
    let measured = events;
    let per_event = total as f64 / measured.max(1) as f64;

    let annotate = |inclusive: bool| -> Result<String> {
        let output = Command::new("callgrind_annotate")
            .arg(format!(
                "--inclusive={}",
                if inclusive { "yes" } else { "no" }
            ))
            .args(["--threshold=99", "--auto=no"])
            .arg(&out_file)
            .output()
            .context("running callgrind_annotate (it comes with valgrind)")?;
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    };
    let self_cost = top_functions(&annotate(false)?, 25, false)
        .into_iter()
        .map(|(ir, name)| (ir as f64 / measured.max(1) as f64, name))
        .collect();
    let inclusive = top_functions(&annotate(true)?, 80, true)
        .into_iter()
        .map(|(ir, name)| (ir as f64 / measured.max(1) as f64, name))
        .collect();
    Ok(Profile {
        events: measured,
        instructions_per_event: per_event,
        self_cost,
        inclusive,
        file: out_file
            .strip_prefix(&env.root)
            .unwrap_or(&out_file)
            .display()
            .to_string(),
    })
}

/// The `totals:` (or `summary:`) line of a callgrind output file.
fn total_instructions(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| {
            l.strip_prefix("totals:")
                .or_else(|| l.strip_prefix("summary:"))
        })
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

/// `(Ir, function)` rows of the function table of `callgrind_annotate` output, most expensive
/// first. Inlining splits a function into one row per source file it took code from: their own
/// costs are disjoint and add up (`inclusive` false), while each inclusive row already counts
/// the whole call, so the largest stands for the function.
fn top_functions(annotated: &str, limit: usize, inclusive: bool) -> Vec<(u64, String)> {
    let mut totals: HashMap<String, u64> = HashMap::new();
    let mut in_table = false;
    for line in annotated.lines() {
        if !in_table {
            in_table = line.starts_with("Ir") && line.trim_end().ends_with("file:function");
            continue;
        }
        let line = line.trim();
        if line.starts_with("---") {
            if totals.is_empty() {
                continue;
            }
            break;
        }
        let Some((count, rest)) = line.split_once(' ') else {
            continue;
        };
        let Ok(ir) = count.replace(',', "").parse::<u64>() else {
            continue;
        };
        // `1,234 (12.3%)  file:function [object]`; the percentage is optional.
        let rest = rest.trim_start();
        let rest = match rest.strip_prefix('(') {
            Some(after) => after.split_once(')').map_or(after, |(_, r)| r).trim_start(),
            None => rest,
        };
        if rest.is_empty() || rest.starts_with("PROGRAM TOTALS") {
            continue;
        }
        let function = rest.split_once(':').map_or(rest, |(_, f)| f);
        let function = function
            .rsplit_once(" [")
            .map_or(function, |(f, _)| f)
            .trim();
        let total = totals.entry(function.to_string()).or_default();
        *total = if inclusive {
            (*total).max(ir)
        } else {
            *total + ir
        };
    }
    let mut rows: Vec<(u64, String)> = totals.into_iter().map(|(f, ir)| (ir, f)).collect();
    rows.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    rows.truncate(limit);
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_callgrind_totals_and_annotations() {
        assert_eq!(
            total_instructions("events: Ir\nsummary: 123456\ntotals: 123456\n"),
            Some(123_456)
        );
        let annotated = "\
--------------------------------------------------------------------------------
Ir                 file:function
--------------------------------------------------------------------------------
5,000,000 (100.0%)  PROGRAM TOTALS
1,200,000 (24.00%)  ./malloc/malloc.c:_int_malloc [/usr/lib/x86_64-linux-gnu/libc.so.6]
  900,000 (18.00%)  /rustc/abc/library/core/src/fmt/mod.rs:core::fmt::write [/work/target/release/examples/hot_path]
   10,000  ???:memcpy [/usr/lib/libc.so.6]
  800,000 (16.00%)  /work/processor/src/event.rs:processor::event::decode
  500,000 (10.00%)  /registry/serde_json/src/de.rs:processor::event::decode [/work/hot_path]

--------------------------------------------------------------------------------
-- Auto-annotated source: /work/processor/src/event.rs
--------------------------------------------------------------------------------
9,000,000 (180.0%)  => /work/processor/src/item.rs:processor::item::record (2,000x)
";
        assert_eq!(
            top_functions(annotated, 2, false),
            vec![
                (1_300_000, "processor::event::decode".to_string()),
                (1_200_000, "_int_malloc".to_string())
            ]
        );
        assert_eq!(
            top_functions(annotated, 2, true),
            vec![
                (1_200_000, "_int_malloc".to_string()),
                (900_000, "core::fmt::write".to_string())
            ]
        );
    }
}
