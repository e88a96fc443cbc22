//! `cargo xtask`: the command line. Each command is one call into `infra` or `harness`; see
//! ARCHITECTURE.md for where each lives.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use clap::{Parser, Subcommand};
use harness::aws::deployed;
use harness::ship::{build, deploy, pulumi, verify};
use harness::{bench, dlq, e2e, fuzz, local, publish, query};
use infra::{capacity, cost, render, stack, workspace_root};

#[derive(Parser)]
#[command(
    name = "cargo xtask",
    about = "Build, render, test and run the market-data pipeline"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Fuzz the event decoder and the stack config loader for a bounded time (installs
    /// cargo-fuzz if absent).
    Fuzz {
        /// Seconds per fuzz target.
        #[arg(long, default_value_t = 60)]
        seconds: u64,
    },
    /// Render Pulumi.yaml and Pulumi.<stack>.yaml from stacks/*.yaml.
    Render {
        /// Render only this stack (default: every file under stacks/).
        #[arg(long)]
        stack: Option<String>,
        /// Fail if the committed files differ from a fresh render instead of writing them.
        #[arg(long)]
        check: bool,
        /// Print the Pulumi program of --stack (or $PULUMI_STACK) to stdout, as Pulumi's
        /// compiler (`pulumi-program`, named in Pulumi.yaml) gives it.
        #[arg(long, conflicts_with = "check")]
        program: bool,
    },
    /// Run the whole pipeline on loopback (moto + the processor): replay a market session and
    /// account for every event. Subcommands keep a local stack up for your own events.
    Local {
        #[command(subcommand)]
        action: Option<LocalAction>,
        /// The stack whose config (stacks/<stack>.yaml) shapes the local resources.
        #[arg(long, default_value = "dev", global = true)]
        stack: String,
        /// Events in the replayed session.
        #[arg(long, default_value_t = local::SESSION_EVENTS)]
        events: usize,
    },
    /// Run the end-to-end scenario: publish, then account for every event in tables and DLQ.
    E2e {
        /// Against a fresh local stack (moto + local runner).
        #[arg(long, conflicts_with = "outputs")]
        local: bool,
        /// Against the stack these outputs describe (same keys as target/local/outputs.json).
        #[arg(long)]
        outputs: Option<PathBuf>,
        /// With --local: the config of the local stack (default dev). Alone: a deployed stack,
        /// whose outputs come from `pulumi stack output --json --stack S`.
        #[arg(long, conflicts_with = "outputs")]
        stack: Option<String>,
        /// Events published by the scenario.
        #[arg(long, default_value_t = 2_000)]
        events: usize,
        /// Events handed to the processor twice. Only a local stack offers that path: pass 0
        /// against a deployed stack (--stack S, or --outputs of a deployed stack).
        #[arg(long, default_value_t = 20)]
        double_deliveries: usize,
        /// Publish at most this many events per second (0: as fast as the bus accepts). With
        /// --local, publishing follows the local processor instead.
        #[arg(long, default_value_t = 25.0)]
        rate: f64,
        /// With --local: answer this share (0-1) of the processor's DynamoDB calls with
        /// throttling, 500s, timeouts, resets and lost acknowledgements.
        #[arg(long, default_value_t = 0.0, value_parser = share)]
        faults: f64,
        /// With --local: deliver this share (0-1) of events to the processor twice.
        #[arg(long, default_value_t = 0.0, value_parser = share)]
        redeliver_rate: f64,
        /// With --local: after the run, turn the faults off and redrive the DLQ this many
        /// times, printing its count after the run and after each redrive; every event must
        /// then be stored once, a duplicate, or rejected with its reason.
        #[arg(long, default_value_t = 0)]
        redrive: usize,
        /// With --redrive: seconds each redrive waits for the outcome of its copies.
        #[arg(long, default_value_t = dlq::redrive::DEFAULT_SETTLE_SECONDS)]
        settle_seconds: u64,
        /// With --local: after the run (and the redrives), replay the run's range from the
        /// archive, with new envelope ids or kept ones; nothing may be stored new.
        #[arg(long, value_enum)]
        replay: Option<ReplayIds>,
        /// Seconds to wait for every event to be accounted for.
        #[arg(long, default_value_t = 300)]
        timeout: u64,
    },
    /// Measure the processor against the Python handler it replaces (harness/baseline/): handler
    /// CPU per event, start-up, peak memory, package size, the local pipeline. Writes
    /// BENCHMARKS.md.
    Bench {
        /// Every measurement on fewer events (a check that it all works; numbers indicative).
        #[arg(long)]
        quick: bool,
    },
    /// Build the Lambda package: bootstrap for the Lambda architecture, zipped at
    /// target/lambda/market-processor/bootstrap.zip with fixed timestamps (same binary, same
    /// sha256). Cross-compiles with what is installed and says what to install otherwise.
    Build {
        /// arm64 (Graviton) or x86_64.
        #[arg(long, default_value = "arm64", value_parser = parse_arch)]
        arch: stack::Architecture,
    },
    /// Run the built package for real: its bootstrap (under qemu-user when it is for another
    /// architecture) against a Lambda Runtime API on loopback and a moto server; it must store
    /// a trade and reject an invalid event.
    VerifyPackage,
    /// Validate stacks/<STACK>.yaml, build, render, then `pulumi preview --stack STACK --diff`.
    Preview {
        stack: String,
        /// Reuse target/lambda/market-processor/bootstrap.zip instead of building it.
        #[arg(long)]
        no_build: bool,
    },
    /// Validate, build, render, then `pulumi up --stack STACK --yes`. prod asks first.
    Deploy {
        stack: String,
        /// Do not ask before changing prod.
        #[arg(long)]
        yes: bool,
        /// Reuse target/lambda/market-processor/bootstrap.zip instead of building it.
        #[arg(long)]
        no_build: bool,
    },
    /// `pulumi destroy --stack STACK`; prod asks first. Without --yes pulumi shows what it
    /// deletes and asks too.
    Destroy {
        stack: String,
        /// Do not ask, neither here nor in pulumi.
        #[arg(long)]
        yes: bool,
    },
    /// Print a deployed stack's outputs: `pulumi stack output --json --stack STACK`.
    Outputs { stack: String },
    /// Publish a feed file to a deployed stack's bus: one EventBridge entry per line, batches of
    /// 10, failed entries retried.
    Send {
        /// The deployed stack (outputs from pulumi).
        #[arg(long, conflicts_with = "outputs", required_unless_present = "outputs")]
        stack: Option<String>,
        /// A stack's outputs file instead (same keys as target/local/outputs.json).
        #[arg(long)]
        outputs: Option<PathBuf>,
        file: PathBuf,
    },
    /// List a stack's dead-letter queue with the error of each message; --redrive publishes the
    /// events that were in it to the bus again, deletes each letter once the bus accepted its
    /// event, and reports what became of each copy (docs/recovery.md). Fails while letters stay.
    Dlq {
        /// The deployed stack (outputs from pulumi).
        #[arg(long, conflicts_with = "outputs", required_unless_present = "outputs")]
        stack: Option<String>,
        /// A stack's outputs file instead (same keys as target/local/outputs.json).
        #[arg(long)]
        outputs: Option<PathBuf>,
        #[arg(long)]
        redrive: bool,
        /// With --redrive: seconds to wait for the outcome of each copy (stored, failed again).
        #[arg(long, default_value_t = dlq::redrive::DEFAULT_SETTLE_SECONDS, requires = "redrive")]
        settle_seconds: u64,
        /// With --redrive: the stack config (stacks/<CONFIG>.yaml) whose rules and event age
        /// limit decide what may be published. Default: --stack, or with --outputs the stack
        /// whose bus the outputs name.
        #[arg(long, requires = "redrive")]
        config: Option<String>,
    },
    /// Replay events of a time range from a deployed stack's archive to the processor's rules
    /// only (StartReplay with FilterArns), with its progress, and then what was stored new
    /// against what was already there (docs/recovery.md, "Replaying from the archive").
    Replay {
        /// The deployed stack (outputs from pulumi).
        #[arg(long, conflicts_with = "outputs", required_unless_present = "outputs")]
        stack: Option<String>,
        /// A stack's outputs file instead (a local stack's: the local stand-in replays).
        #[arg(long)]
        outputs: Option<PathBuf>,
        #[command(flatten)]
        replay: ReplayArgs,
    },
    /// Read a deployed stack's newest records of a symbol (SymbolIndex) or an exchange
    /// (ExchangeIndex): every bucket of the stack's `dynamodb.index_buckets` queried and merged
    /// by event time. With --latest, the symbol's last trade and quote per exchange instead.
    Query {
        /// The deployed stack (outputs from pulumi; bucket count from stacks/<STACK>.yaml).
        #[arg(long)]
        stack: String,
        #[arg(long, required_unless_present_any = ["exchange", "latest"])]
        symbol: Option<String>,
        /// Alone: the exchange's records; with --symbol: the symbol's records on it.
        #[arg(long)]
        exchange: Option<String>,
        /// RFC 3339 lower bound on the event time.
        #[arg(long)]
        since: Option<String>,
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// The latest view of this symbol (the latest-price table) instead of its records.
        #[arg(long, conflicts_with_all = ["symbol", "exchange", "since"])]
        latest: Option<String>,
    },
    /// Monthly cost estimate of a stack from its config, at a given traffic.
    Cost {
        #[arg(long)]
        stack: String,
        #[arg(long)]
        events_per_day: u64,
        /// Billed duration of one invocation, in ms (default: an assumption until measured).
        #[arg(long)]
        duration_ms: Option<f64>,
        /// Share of valid events that are trades with a trade_id, in percent.
        #[arg(long, default_value_t = 40.0)]
        trade_percent: f64,
        /// Share of events rejected by validation, in percent.
        #[arg(long, default_value_t = 2.0)]
        rejected_percent: f64,
    },
    /// What a stack's ingest paths need at a rate (PutEvents, target invocations, Lambda
    /// concurrency, Kinesis shards, DynamoDB write units), against AWS's quotas: the limit each
    /// path reaches first, and the cost per million events and per month.
    Capacity {
        #[arg(long)]
        stack: String,
        /// Events per second over every ingest path.
        #[arg(long)]
        events_per_second: u64,
        /// Share (0-1) of events that are trades; the rest are quotes.
        #[arg(long, default_value_t = capacity::DEFAULT_TRADE_SHARE, value_parser = share)]
        trade_share: f64,
        /// Duration of one bus-path invocation, in ms (default: an assumption until measured).
        #[arg(long)]
        duration_ms: Option<f64>,
        /// Duration of one full stream batch (the mapping's batch_size), in ms (default: an
        /// assumption until measured).
        #[arg(long)]
        batch_duration_ms: Option<f64>,
        /// Entries per PutEvents request the producers send (default: the limit, 10).
        #[arg(long)]
        entries_per_request: Option<u32>,
    },
}

fn parse_arch(value: &str) -> Result<stack::Architecture, String> {
    match value {
        "arm64" | "aarch64" => Ok(stack::Architecture::Arm64),
        "x86_64" | "amd64" => Ok(stack::Architecture::X86_64),
        other => Err(format!("{other:?} is not arm64 or x86_64")),
    }
}

/// The range and rules of a replay, shared by `replay` and `local replay`.
#[derive(clap::Args)]
struct ReplayArgs {
    /// Start of the range (event time, RFC 3339).
    #[arg(long, value_parser = harness::replay::parse_time)]
    from: harness::replay::Time,
    /// End of the range, exclusive.
    #[arg(long, value_parser = harness::replay::parse_time)]
    to: harness::replay::Time,
    /// The processor rules to replay to (comma-separated): trade, quote. Default: both.
    #[arg(long, value_delimiter = ',')]
    rules: Vec<String>,
    /// Seconds the outcome count may stay unchanged before it is final.
    #[arg(long, default_value_t = harness::replay::DEFAULT_SETTLE_SECONDS)]
    settle_seconds: u64,
    /// Replay although the range is inside EventBridge's and Lambda's retry windows.
    #[arg(long)]
    inside_retry_windows: bool,
    /// Replay although the DLQ holds letters.
    #[arg(long)]
    with_dlq_letters: bool,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum ReplayIds {
    New,
    Keep,
}

impl ReplayArgs {
    fn request(self, ids: ReplayIds) -> harness::replay::Request {
        harness::replay::Request {
            from: self.from,
            to: self.to,
            rules: self.rules,
            settle: Duration::from_secs(self.settle_seconds),
            inside_retry_windows: self.inside_retry_windows,
            with_dlq_letters: self.with_dlq_letters,
            ids: ids.ids(),
        }
    }
}

impl ReplayIds {
    fn ids(self) -> harness::replay::plan::Ids {
        match self {
            ReplayIds::New => harness::replay::plan::Ids::New,
            ReplayIds::Keep => harness::replay::plan::Ids::Keep,
        }
    }
}

#[derive(Subcommand)]
enum LocalAction {
    /// Start the emulator and a background runner, provision, write target/local/outputs.json.
    Up {
        /// Port for the emulator (default: a free one).
        #[arg(long)]
        port: Option<u16>,
    },
    /// Stop what `local up` started.
    Down,
    /// Publish your events to the local bus: one EventBridge entry per line
    /// ({"source": ..., "detail-type": ..., "detail": {...}}).
    Send { file: PathBuf },
    /// Read stored records, newest first, over every index bucket; or with --latest, a
    /// symbol's last trade and quote per exchange and its best bid and ask.
    Query {
        #[arg(long, required_unless_present_any = ["exchange", "latest"])]
        symbol: Option<String>,
        #[arg(long)]
        exchange: Option<String>,
        /// RFC 3339 lower bound on the event time.
        #[arg(long)]
        since: Option<String>,
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// The latest view of this symbol (the latest-price table) instead of its records.
        #[arg(long, conflicts_with_all = ["symbol", "exchange", "since"])]
        latest: Option<String>,
    },
    /// Replay a range of the local archive to the local processor (see `cargo xtask replay`).
    Replay {
        #[command(flatten)]
        replay: ReplayArgs,
        /// Replayed events get new envelope ids (as moto's replay gives them) or keep theirs;
        /// EventBridge does not document which it does, and the processor handles both.
        #[arg(long, value_enum, default_value_t = ReplayIds::New)]
        ids: ReplayIds,
    },
    /// The background runner of `local up`.
    #[command(hide = true)]
    Serve,
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("Error: {err:?}");
            // A failed pulumi run ends this command with pulumi's own exit code.
            ExitCode::from(pulumi::exit_code(&err))
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    let root = workspace_root();
    let root = root.as_path();
    match cli.command {
        Command::Fuzz { seconds } => fuzz::run(root, seconds),
        Command::Render {
            stack,
            program: true,
            ..
        } => render::print_program(root, stack.as_deref()),
        Command::Render { stack, check, .. } => render::run(root, stack.as_deref(), check),
        Command::Local {
            action,
            stack,
            events,
        } => block_on(async {
            match action {
                None => local::run(root, &stack, events).await,
                Some(LocalAction::Up { port }) => local::up(root, &stack, port).await,
                Some(LocalAction::Down) => local::down(root),
                Some(LocalAction::Serve) => local::serve(root, &stack).await,
                Some(LocalAction::Send { file }) => local::send(root, &file).await,
                Some(LocalAction::Query {
                    symbol,
                    exchange,
                    since,
                    limit,
                    latest,
                }) => {
                    let args = query::Args {
                        symbol,
                        exchange,
                        since,
                        limit,
                        latest,
                    };
                    local::query_command(root, &args).await
                }
                Some(LocalAction::Replay { replay, ids }) => {
                    let source = deployed::Source::File(infra::outputs::local_path(root));
                    harness::replay::run(root, &source, &replay.request(ids)).await
                }
            }
        }),
        Command::E2e {
            local,
            outputs,
            stack,
            events,
            double_deliveries,
            timeout,
            rate,
            faults,
            redeliver_rate,
            redrive,
            settle_seconds,
            replay,
        } => {
            let target = match (local, outputs, stack) {
                (true, _, stack) => e2e::Target::Local(stack.unwrap_or_else(|| "dev".into())),
                (false, Some(path), _) => e2e::Target::Outputs(path),
                (false, None, Some(stack)) => e2e::Target::Deployed(stack),
                (false, None, None) => anyhow::bail!(
                    "say where to run: --local (a fresh local stack), --stack S (a deployed \
                     stack) or --outputs FILE"
                ),
            };
            let options = e2e::Options {
                events,
                faults,
                redeliver_rate,
                redrives: redrive,
                settle: Duration::from_secs(settle_seconds),
                rate: Some(rate),
                double_deliveries,
                timeout: Duration::from_secs(timeout),
                replay: replay.map(ReplayIds::ids),
            };
            block_on(e2e::run(root, &target, &options))
        }
        Command::Bench { quick } => block_on(bench::run(root, &bench::Options { quick })),
        Command::Build { arch } => build::run(root, arch).map(|built| build::print(&built)),
        Command::VerifyPackage => block_on(verify::run(root)),
        Command::Preview { stack, no_build } => {
            let options = deploy::Options {
                yes: false,
                no_build,
            };
            deploy::run(root, &stack, deploy::Action::Preview, &options)
        }
        Command::Deploy {
            stack,
            yes,
            no_build,
        } => deploy::run(
            root,
            &stack,
            deploy::Action::Deploy,
            &deploy::Options { yes, no_build },
        ),
        Command::Destroy { stack, yes } => deploy::run(
            root,
            &stack,
            deploy::Action::Destroy,
            &deploy::Options {
                yes,
                no_build: true,
            },
        ),
        Command::Outputs { stack } => deploy::run(
            root,
            &stack,
            deploy::Action::Outputs,
            &deploy::Options {
                yes: false,
                no_build: true,
            },
        ),
        Command::Send {
            stack,
            outputs,
            file,
        } => block_on(async {
            let source = deployed::Source::from_args(stack, outputs)?;
            publish::send_to(root, &source, &file).await
        }),
        Command::Dlq {
            stack,
            outputs,
            redrive,
            settle_seconds,
            config,
        } => block_on(async {
            let source = deployed::Source::from_args(stack, outputs)?;
            let args = dlq::Args {
                redrive,
                settle: Duration::from_secs(settle_seconds),
                config,
            };
            dlq::run(root, &source, &args).await
        }),
        Command::Replay {
            stack,
            outputs,
            replay,
        } => block_on(async {
            let source = deployed::Source::from_args(stack, outputs)?;
            harness::replay::run(root, &source, &replay.request(ReplayIds::New)).await
        }),
        Command::Query {
            stack,
            symbol,
            exchange,
            since,
            limit,
            latest,
        } => {
            let args = query::Args {
                symbol,
                exchange,
                since,
                limit,
                latest,
            };
            block_on(query::run(root, &stack, &args))
        }
        Command::Cost {
            stack,
            events_per_day,
            duration_ms,
            trade_percent,
            rejected_percent,
        } => {
            let traffic =
                cost::Traffic::new(events_per_day, duration_ms, trade_percent, rejected_percent)?;
            cost::run(root, &stack, &traffic)
        }
        Command::Capacity {
            stack,
            events_per_second,
            trade_share,
            duration_ms,
            batch_duration_ms,
            entries_per_request,
        } => {
            let load = capacity::Load::new(
                events_per_second,
                trade_share,
                duration_ms,
                batch_duration_ms,
                entries_per_request,
            )?;
            capacity::run(root, &stack, &load)
        }
    }
}

/// A share from 0 to 1, for clap.
fn share(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(value) if (0.0..=1.0).contains(&value) => Ok(value),
        _ => Err(format!(
            "{text:?} is not a share between 0 and 1 (e.g. 0.2)"
        )),
    }
}

/// Runs a command to completion, or until SIGINT/SIGTERM: then the command's future is dropped,
/// and with it every emulator and runner it started.
fn block_on<F: std::future::Future<Output = Result<()>>>(future: F) -> Result<()> {
    let runtime = tokio::runtime::Runtime::new().map_err(anyhow::Error::from)?;
    runtime.block_on(async {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            result = future => result,
            _ = tokio::signal::ctrl_c() => anyhow::bail!("interrupted; stopped what this command started"),
            _ = terminate.recv() => anyhow::bail!("terminated; stopped what this command started"),
        }
    })
}
