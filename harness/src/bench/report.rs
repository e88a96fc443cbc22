//! The bench's results: the table printed on stdout and the BENCHMARKS.md written by a full run.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use super::Env;

/// Which direction is better for a figure, and so how its ratio reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Better {
    Lower,
    Higher,
    /// Context, not a contest (e.g. how busy the emulator was).
    Neutral,
}

#[derive(Debug, Clone)]
pub struct Row {
    pub label: String,
    pub unit: &'static str,
    pub ours: Option<f64>,
    pub baseline: Option<f64>,
    pub better: Better,
    pub note: String,
}

impl Row {
    pub fn new(
        label: &str,
        unit: &'static str,
        ours: Option<f64>,
        baseline: Option<f64>,
        better: Better,
        note: &str,
    ) -> Row {
        Row {
            label: label.to_string(),
            unit,
            ours,
            baseline,
            better,
            note: note.to_string(),
        }
    }

    /// How many times better ours is (above 1: ours is better).
    pub fn advantage(&self) -> Option<f64> {
        let (ours, baseline) = (self.ours?, self.baseline?);
        if ours <= 0.0 || baseline <= 0.0 {
            return None;
        }
        match self.better {
            Better::Lower => Some(baseline / ours),
            Better::Higher => Some(ours / baseline),
            Better::Neutral => None,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Profile {
    pub events: u64,
    pub instructions_per_event: f64,
    /// (instructions per event, function), most expensive first.
    pub self_cost: Vec<(f64, String)>,
    pub inclusive: Vec<(f64, String)>,
    pub file: String,
}

#[derive(Debug, Clone, Default)]
pub struct FirstInvocation {
    pub first_ms: f64,
    pub warm_ms: f64,
    pub connections_at_init: usize,
    pub connections_in_first: usize,
}

#[derive(Debug, Clone, Default)]
pub struct PipelineRun {
    pub side: &'static str,
    pub routed: usize,
    pub stored: usize,
    pub seconds: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub moto_busy: f64,
}

impl PipelineRun {
    pub fn events_per_second(&self) -> f64 {
        self.routed as f64 / self.seconds.max(f64::MIN_POSITIVE)
    }

    pub fn moto_ms_per_event(&self) -> f64 {
        self.moto_busy * self.seconds * 1000.0 / self.routed.max(1) as f64
    }
}

#[derive(Debug, Clone, Default)]
pub struct Package {
    pub ours_bytes: u64,
    pub ours_what: String,
    pub baseline_handler_bytes: u64,
    pub baseline_with_deps_bytes: u64,
    pub baseline_distributions: String,
}

#[derive(Debug, Clone, Default)]
pub struct Machine {
    pub cpu: String,
    pub cores: usize,
    pub memory: String,
    pub os: String,
    pub kernel: String,
    pub rustc: String,
    pub python: String,
    pub valgrind: String,
    pub date: String,
    pub commit: String,
}

impl Machine {
    pub fn detect(env: &Env) -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .and_then(|rest| rest.split_once(':'))
            .map_or("unknown".to_string(), |(_, v)| v.trim().to_string());
        let memory = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|m| {
                m.lines()
                    .find_map(|l| l.strip_prefix("MemTotal:"))
                    .and_then(|v| v.split_whitespace().next())
                    .and_then(|kb| kb.parse::<f64>().ok())
            })
            .map_or("unknown".to_string(), |kb| {
                format!("{:.0} GiB", kb / 1024.0 / 1024.0)
            });
        let os = std::fs::read_to_string("/etc/os-release")
            .ok()
            .and_then(|t| {
                t.lines()
                    .find_map(|l| l.strip_prefix("PRETTY_NAME="))
                    .map(|v| v.trim_matches('"').to_string())
            })
            .unwrap_or_else(|| "unknown".to_string());
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|k| k.trim().to_string())
            .unwrap_or_default();
        let commit = {
            let head = first_line(Command::new("git").current_dir(&env.root).args([
                "rev-parse",
                "--short=12",
                "HEAD",
            ]));
            let dirty = Command::new("git")
                .current_dir(&env.root)
                .args(["status", "--porcelain", "--untracked-files=no"])
                .output()
                .is_ok_and(|o| !o.stdout.is_empty());
            if dirty {
                format!("{head} with uncommitted changes")
            } else {
                head
            }
        };
        Machine {
            cpu,
            cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
            memory,
            os,
            kernel,
            rustc: first_line(Command::new("rustc").arg("-V")),
            python: first_line(Command::new(&env.python).arg("-V")),
            valgrind: first_line(Command::new("valgrind").arg("--version")),
            date: chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string(),
            commit,
        }
    }
}

fn first_line(command: &mut Command) -> String {
    command
        .output()
        .ok()
        .map(|o| {
            let text = if o.stdout.is_empty() {
                o.stderr
            } else {
                o.stdout
            };
            String::from_utf8_lossy(&text)
                .lines()
                .next()
                .unwrap_or("")
                .trim()
                .to_string()
        })
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "not found".to_string())
}

#[derive(Debug, Default)]
pub struct Report {
    pub quick: bool,
    pub rows: Vec<Row>,
    pub notes: Vec<String>,
    pub cpu_detail: Option<String>,
    pub profile: Option<Profile>,
    pub startup_detail: Vec<String>,
    pub first_invocation: Vec<(&'static str, FirstInvocation)>,
    pub rss_events: usize,
    pub rss_detail: Vec<String>,
    pub package: Option<Package>,
    pub pipeline: Vec<PipelineRun>,
    pub paths: Option<super::paths::Paths>,
    pub machine: Machine,
    pub wall_s: f64,
}

/// Heading of the hand-written part of BENCHMARKS.md that a new run keeps.
const KEPT_HEADING: &str = "## Optimisation log";

impl Report {
    pub fn new(quick: bool) -> Report {
        Report {
            quick,
            ..Report::default()
        }
    }

    fn row(&self, label_start: &str) -> Option<&Row> {
        self.rows.iter().find(|r| r.label.starts_with(label_start))
    }

    /// The comparison table, as printed and as embedded in BENCHMARKS.md.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "| {:<38} | {:>12} | {:>12} | {:>14} |",
            "measure", "ours", "baseline", "ours vs base"
        );
        let _ = writeln!(
            out,
            "| {:-<38} | {:->12} | {:->12} | {:->14} |",
            "", "", "", ""
        );
        for row in &self.rows {
            let label = format!("{} ({})", row.label, row.unit);
            let ratio = match (row.advantage(), row.better) {
                (Some(a), _) if a >= 1.0 => format!("{} better", times(a)),
                (Some(a), _) => format!("{} worse", times(1.0 / a)),
                (None, Better::Neutral) => String::new(),
                (None, _) => "n/a".to_string(),
            };
            let _ = writeln!(
                out,
                "| {label:<38} | {:>12} | {:>12} | {ratio:>14} |",
                cell(row.ours, row.unit),
                cell(row.baseline, row.unit),
            );
        }
        out
    }

    /// Targets from the issue, each met or not.
    fn targets(&self) -> Vec<(String, Option<bool>, String)> {
        let mut targets = Vec::new();
        let cpu = self.row("handler CPU").and_then(Row::advantage);
        targets.push((
            "handler CPU per event ≥ 50× better than the baseline".to_string(),
            cpu.map(|a| a >= 50.0),
            cpu.map_or("not measured".into(), |a| format!("{} better", times(a))),
        ));
        let startup = self.row("start-up").and_then(|r| r.ours);
        targets.push((
            "start-up to ready ≤ 15 ms".to_string(),
            startup.map(|v| v <= 15.0),
            startup.map_or("not measured".into(), |v| format!("{v:.1} ms")),
        ));
        let rss = self.row("peak RSS").and_then(|r| r.ours);
        targets.push((
            "peak RSS ≤ 20 MB".to_string(),
            rss.map(|v| v * 1.048_576 <= 20.0),
            rss.map_or("not measured".into(), |v| {
                format!("{:.1} MB ({v:.1} MiB)", v * 1.048_576)
            }),
        ));
        let zip = self.package.as_ref().map(|p| p.ours_bytes);
        targets.push((
            "bootstrap.zip ≤ 4 MB".to_string(),
            zip.map(|b| b <= 4_000_000),
            zip.map_or("not measured".into(), |b| format!("{:.2} MB", super::mb(b))),
        ));
        let first = self
            .first_invocation
            .iter()
            .find(|(side, _)| *side == "ours")
            .map(|(_, f)| f);
        targets.push((
            "first invocation after init opens no connection (no TLS handshake)".to_string(),
            first.map(|f| f.connections_in_first == 0),
            first.map_or("not measured".into(), |f| {
                format!(
                    "{} opened during init, {} during the first invocation",
                    f.connections_at_init, f.connections_in_first
                )
            }),
        ));
        if let Some(paths) = &self.paths {
            targets.extend(paths.targets());
        }
        targets
    }

    pub fn markdown(&self, table: &str) -> String {
        let m = &self.machine;
        let mut out = String::new();
        let _ = writeln!(out, "# Benchmarks\n");
        let _ = writeln!(
            out,
            "The processor against the Python 3.11 + boto3 handler it replaces \
             (`harness/baseline/handler.py`), measured in one run of `cargo xtask bench{}` on one machine. \
             This file is written by that command; only the section \"{}\" at the end is kept \
             from one run to the next.\n",
            if self.quick { " --quick" } else { "" },
            KEPT_HEADING.trim_start_matches("## ")
        );
        let _ = writeln!(out, "## Machine\n");
        let _ = writeln!(out, "| | |\n| --- | --- |");
        for (k, v) in [
            ("date", m.date.clone()),
            ("commit", m.commit.clone()),
            ("CPU", format!("{} ({} cores)", m.cpu, m.cores)),
            ("memory", m.memory.clone()),
            ("OS", format!("{} (Linux {})", m.os, m.kernel)),
            ("Rust", m.rustc.clone()),
            ("Python", m.python.clone()),
            (
                "baseline packages",
                self.package
                    .as_ref()
                    .map(|p| p.baseline_distributions.clone())
                    .unwrap_or_default(),
            ),
            ("moto", crate::moto::MOTO_VERSION.to_string()),
            ("valgrind", m.valgrind.clone()),
            ("bench wall time", format!("{:.0} s", self.wall_s)),
        ] {
            let _ = writeln!(out, "| {k} | {v} |");
        }
        let _ = writeln!(out, "\n## Results\n");
        out.push_str(table);
        let _ = writeln!(out);
        for row in self.rows.iter().filter(|r| !r.note.is_empty()) {
            let _ = writeln!(out, "- *{}*: {}", row.label, row.note);
        }
        let _ = writeln!(out, "\n### Targets\n");
        let _ = writeln!(out, "| target | met | measured |\n| --- | --- | --- |");
        for (target, met, measured) in self.targets() {
            let met = match met {
                Some(true) => "yes",
                Some(false) => "**no**",
                None => "n/a",
            };
            let _ = writeln!(out, "| {target} | {met} | {measured} |");
        }

        if let Some(paths) = &self.paths {
            out.push_str(&paths.markdown());
        }

        let _ = writeln!(out, "\n## How each figure is measured\n");
        let _ = writeln!(
            out,
            "- **Handler CPU per event**: the same events (the bundled market session: trades, \
             quotes, price updates, corrections, re-published trades and about 2% invalid events, \
             as EventBridge envelopes) through each handler on one thread, with the network taken \
             out after the SDK has built, serialized and signed each request. Ours: the \
             `hot_path` example runs `Processor::process`, the deployed code path, with a \
             connector that answers every DynamoDB call with `{{}}`, and with the JSON log line \
             and EMF metric line written per event (to /dev/null). Baseline: `bench.py cpu` \
             parses each payload with `json.loads` as Lambda's runtime does, then calls the \
             handler, whose boto3 requests a `before-send` hook answers; `time.process_time`."
        );
        if let Some(detail) = &self.cpu_detail {
            let _ = writeln!(out, "  {detail}");
        }
        let _ = writeln!(
            out,
            "- **Instructions per event**: callgrind, collecting only inside the measured loop \
             of `hot_path` (start-up and warm-up excluded); instruction counts do not depend on \
             the machine's load. Baseline: not run under callgrind (the interpreter would take \
             minutes); its CPU time above is the comparison."
        );
        let _ = writeln!(
            out,
            "- **Start-up to ready**: from just before the process is spawned to the moment its \
             first `GET /2018-06-01/runtime/invocation/next` reaches a Runtime API on loopback. \
             Ours: the release `bootstrap` on the host (x86_64; an arm64 binary under qemu \
             would measure the emulator), including its init work: settings, logging, the SDK \
             client and `DescribeTable` on both tables against moto. Baseline: interpreter \
             start, imports, boto3 resource and tables, then the same poll (`bench.py runtime`). \
             One untimed start first for each, so both read warm files and Python's compiled \
             modules."
        );
        for line in &self.startup_detail {
            let _ = writeln!(out, "  - {line}");
        }
        let _ = writeln!(
            out,
            "- **First invocation**: a fresh process gets 21 events, after moto has served one \
             put and one get of each table (its first calls are slow). An HTTP front for moto \
             counts the connections the process opens before it is ready and during the first \
             invocation; it keeps them alive as DynamoDB does (moto closes each one after a \
             response). On Lambda every new connection to DynamoDB is a TLS handshake."
        );
        for (side, f) in &self.first_invocation {
            let _ = writeln!(
                out,
                "  - {side}: {} connections opened during init, {} during the first invocation; \
                 first invocation {:.2} ms, later ones {:.2} ms (median)",
                f.connections_at_init, f.connections_in_first, f.first_ms, f.warm_ms
            );
        }
        let _ = writeln!(
            out,
            "- **Peak RSS**: `VmHWM` from `/proc/<pid>/status` of the handler process after {} \
             invocations served by the project's Runtime API emulator (`harness/src/runtime_api.rs`), \
             storing into moto.",
            self.rss_events
        );
        for line in &self.rss_detail {
            let _ = writeln!(out, "  - {line}");
        }
        if let Some(p) = &self.package {
            let _ = writeln!(
                out,
                "- **Package**: ours: {} ({:.2} MB). Baseline: the handler with boto3 and its \
                 dependencies as pip installed them ({:.2} MB; `.pyc` caches left out), or \
                 the handler alone ({} bytes) since Lambda's Python runtime already bundles a \
                 boto3 (of its own version, which a function that pins boto3 cannot rely on).",
                p.ours_what,
                super::mb(p.ours_bytes),
                super::mb(p.baseline_with_deps_bytes),
                p.baseline_handler_bytes
            );
        }
        let _ = writeln!(
            out,
            "- **Local pipeline**: each handler behind its own fresh local stack (moto's bus, the \
             stack's rules, the delivery queue), fed the same session in chunks of 50 with at most \
             60 events waiting. Ours: the local runner as `cargo xtask local` runs it (4 pollers \
             of the queue, `Processor::process` per event). Baseline: 4 `bench.py consumer` \
             processes, one per sandbox. Throughput is routed events over the time from the first \
             publish to an empty queue; latency is PutEvents to the handler's `received_at`, over \
             the events that left a record (ours stores none for rejected and duplicate events, \
             which get an audit entry only). moto is one Python process and the bottleneck: it \
             spends some 16 ms of CPU per event against well under 1 ms in either handler, so \
             the two sides are within this figure's run-to-run spread (about 10%)."
        );
        for run in &self.pipeline {
            let _ = writeln!(
                out,
                "  - {}: {} routed, {} with a record, {:.1} s, {:.0} events/s, p50 {:.0} ms, \
                 p99 {:.0} ms, moto busy {:.0}% of the time",
                run.side,
                run.routed,
                run.stored,
                run.seconds,
                run.events_per_second(),
                run.p50_ms,
                run.p99_ms,
                run.moto_busy * 100.0
            );
        }

        if let Some(profile) = &self.profile {
            let _ = writeln!(
                out,
                "\n## Per-event profile (callgrind, ours)\n\n{:.0} instructions per event over \
                 {} events (`{}`; open it with `callgrind_annotate` or KCachegrind).\n",
                profile.instructions_per_event, profile.events, profile.file
            );
            let _ = writeln!(
                out,
                "Most expensive functions by own cost:\n\n| Ir/event | share | function |\n| ---: | ---: | --- |"
            );
            for (ir, name) in profile.self_cost.iter().take(15) {
                let _ = writeln!(
                    out,
                    "| {ir:.0} | {:.1}% | `{}` |",
                    ir * 100.0 / profile.instructions_per_event.max(1.0),
                    shorten(name)
                );
            }
            let phases: Vec<&(f64, String)> = profile
                .inclusive
                .iter()
                .filter(|(_, name)| is_phase(name))
                .collect();
            if !phases.is_empty() {
                let _ = writeln!(
                    out,
                    "\nIncluding what they call (phases of an event):\n\n| Ir/event | share | function |\n| ---: | ---: | --- |"
                );
                for (ir, name) in phases {
                    let _ = writeln!(
                        out,
                        "| {ir:.0} | {:.1}% | `{}` |",
                        ir * 100.0 / profile.instructions_per_event.max(1.0),
                        shorten(name)
                    );
                }
            }
        }

        if !self.notes.is_empty() {
            let _ = writeln!(out, "\n## Notes\n");
            for note in &self.notes {
                let _ = writeln!(out, "- {note}");
            }
        }
        let _ = writeln!(
            out,
            "\n## Reproduce\n\n```sh\ncargo xtask bench          # full run, writes BENCHMARKS.md (about 5 minutes once built)\n\
             cargo xtask bench --quick  # every measurement on fewer events; report in target/bench/\n\
             cargo bench -p harness --bench hot_path   # criterion: decode, items, process\n```\n\n\
             Needs what `cargo test --locked --workspace` needs (Rust, Python 3.11 with venv) and, for the \
             instruction counts, valgrind. Profiles, logs and the event files are left in \
             `target/bench/`."
        );
        out
    }
}

/// Functions worth showing with their callees: the processor's own steps, and the parts of an
/// SDK call.
fn is_phase(name: &str) -> bool {
    const PHASES: [&str; 14] = [
        "processor::event::decode",
        "processor::item::dedupe_key",
        "processor::item::guard",
        "processor::item::record",
        "processor::item::processed_audit",
        "processor::handler::Processor::finish",
        "processor::store::Store::put_if_absent::{{closure}}",
        "processor::store::Store::write_audit::{{closure}}",
        "aws_sigv4::http_request::sign::sign",
        "aws_sigv4::sign::v4::generate_signing_key",
        "aws_smithy_runtime::client::orchestrator::apply_configuration",
        "<aws_sdk_dynamodb::operation::put_item::PutItemRequestSerializer",
        "<aws_runtime::user_agent::interceptor::UserAgentInterceptor",
        "aws_sdk_dynamodb::config::endpoint::DefaultResolver::resolve_endpoint",
    ];
    PHASES.iter().any(|p| {
        name.starts_with(p) && (p.ends_with('}') || !name[p.len()..].starts_with("::{{closure}}"))
    })
}

/// Function names without their generic arguments, which can run to hundreds of characters.
/// A `<` right after a name opens generic arguments (elided); anywhere else it opens a
/// qualified path such as `<T as Trait>::f`, which is kept.
fn shorten(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    // For each open `<`: whether its contents are being elided.
    let mut open: Vec<bool> = Vec::new();
    let mut previous = ' ';
    for c in name.chars() {
        let eliding = open.iter().any(|e| *e);
        match c {
            '<' => {
                let generics = previous.is_alphanumeric() || previous == '_';
                if generics && !eliding {
                    out.push_str("<…>");
                } else if !eliding {
                    out.push(c);
                }
                open.push(generics);
            }
            '>' if !open.is_empty() => {
                let generics = open.pop().unwrap_or(false);
                if !generics && !eliding {
                    out.push(c);
                }
            }
            _ if !eliding => out.push(c),
            _ => {}
        }
        previous = c;
    }
    if out.chars().count() > 110 {
        out = out.chars().take(110).collect::<String>() + "…";
    }
    out.replace('|', "\\|")
}

fn times(x: f64) -> String {
    if x >= 10.0 {
        format!("{x:.0}×")
    } else {
        format!("{x:.1}×")
    }
}

fn cell(value: Option<f64>, unit: &str) -> String {
    match value {
        Some(v) if unit == "count" => format!("{v:.0}"),
        _ => number(value),
    }
}

fn number(value: Option<f64>) -> String {
    match value {
        None => "n/a".to_string(),
        Some(v) if v.abs() >= 1000.0 => {
            let whole = v.round() as i64;
            let digits = whole.unsigned_abs().to_string();
            let mut grouped = String::new();
            for (i, c) in digits.chars().enumerate() {
                if i > 0 && (digits.len() - i).is_multiple_of(3) {
                    grouped.push(',');
                }
                grouped.push(c);
            }
            if whole < 0 {
                format!("-{grouped}")
            } else {
                grouped
            }
        }
        Some(v) if v.abs() >= 100.0 => format!("{v:.0}"),
        Some(v) if v.abs() >= 10.0 => format!("{v:.1}"),
        // Three significant digits for small values (a 1 kB zip shows as 0.00114 MB, not 0.00).
        Some(v) if v != 0.0 && v.abs() < 0.1 => {
            let decimals = (-v.abs().log10().floor()) as usize + 2;
            format!("{v:.decimals$}")
        }
        Some(v) => format!("{v:.2}"),
    }
}

/// The hand-written section at the end of an existing BENCHMARKS.md, kept by a new run.
pub fn kept_section(path: &Path) -> String {
    let Ok(text) = std::fs::read_to_string(path) else {
        return String::new();
    };
    match text.find(KEPT_HEADING) {
        Some(at) => format!("\n{}", &text[at..]),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_read_in_the_direction_that_is_better() {
        let lower = Row::new("cpu", "µs", Some(2.0), Some(200.0), Better::Lower, "");
        assert_eq!(lower.advantage(), Some(100.0));
        let higher = Row::new(
            "rate",
            "events/s",
            Some(50.0),
            Some(100.0),
            Better::Higher,
            "",
        );
        assert_eq!(higher.advantage(), Some(0.5));
        let missing = Row::new("ir", "Ir", Some(1.0), None, Better::Lower, "");
        assert_eq!(missing.advantage(), None);
        let mut report = Report::new(true);
        report.rows = vec![lower, higher, missing];
        let table = report.table();
        assert!(table.contains("100× better"), "{table}");
        assert!(table.contains("2.0× worse"), "{table}");
        assert!(table.contains("n/a"), "{table}");
    }

    #[test]
    fn numbers_and_names_are_short() {
        assert_eq!(number(Some(12_345.6)), "12,346");
        assert_eq!(number(Some(123.4)), "123");
        assert_eq!(number(Some(12.34)), "12.3");
        assert_eq!(number(Some(1.234)), "1.23");
        assert_eq!(number(Some(0.001_146)), "0.00115");
        assert_eq!(number(Some(0.0)), "0.00");
        assert_eq!(number(None), "n/a");
        assert_eq!(
            shorten("core::ptr::drop_in_place<alloc::vec::Vec<u8>>"),
            "core::ptr::drop_in_place<…>"
        );
        assert_eq!(
            shorten("<aws_runtime::Signer as aws_smithy::Sign<T>>::sign"),
            "<aws_runtime::Signer as aws_smithy::Sign<…>>::sign"
        );
        assert_eq!(
            shorten("hashbrown::map::HashMap<K,V,S,A>::insert"),
            "hashbrown::map::HashMap<…>::insert"
        );
    }

    #[test]
    fn a_new_run_keeps_the_hand_written_section() {
        let path = std::env::temp_dir().join(format!("bench-{}.md", uuid::Uuid::new_v4()));
        std::fs::write(
            &path,
            "# Benchmarks\nold numbers\n## Optimisation log\nkept\n",
        )
        .expect("write");
        assert_eq!(kept_section(&path), "\n## Optimisation log\nkept\n");
        let _ = std::fs::remove_file(&path);
        assert_eq!(kept_section(&path), "");
    }
}
