//! `cargo xtask`: the project's automation. See ARCHITECTURE.md for the map.

mod e2e;
mod local;
mod model;
mod moto;
mod outputs;
mod policy;
mod render;
mod sample;
mod scenario;
mod schema;
mod stack;
mod test;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use clap::{Parser, Subcommand};

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
    /// Run every test (installs moto into .venv and starts it on loopback first).
    Test {
        /// Extra arguments passed to `cargo test`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Render Pulumi.yaml and Pulumi.<stack>.yaml from stacks/*.yaml.
    Render {
        /// Render only this stack (default: every file under stacks/).
        #[arg(long)]
        stack: Option<String>,
        /// Fail if the committed files differ from a fresh render instead of writing them.
        #[arg(long)]
        check: bool,
        /// Print the Pulumi program of --stack (or $PULUMI_STACK) to stdout: the compiler
        /// command Pulumi.yaml runs.
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
        /// The stack config used with --local.
        #[arg(long, default_value = "dev")]
        stack: String,
        /// Events published by the scenario.
        #[arg(long, default_value_t = 2_000)]
        events: usize,
        /// Events handed to the processor twice.
        #[arg(long, default_value_t = 20)]
        double_deliveries: usize,
        /// Publish at most this many events per second (0: as fast as the bus accepts).
        #[arg(long, default_value_t = 25.0)]
        rate: f64,
        /// Seconds to wait for every event to be accounted for.
        #[arg(long, default_value_t = 300)]
        timeout: u64,
    },
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
    /// Read stored records, newest first.
    Query {
        #[arg(long)]
        symbol: Option<String>,
        #[arg(long)]
        exchange: Option<String>,
        /// RFC 3339 lower bound on the event time.
        #[arg(long)]
        since: Option<String>,
        #[arg(long, default_value_t = 20)]
        limit: i32,
    },
    /// The background runner of `local up`.
    #[command(hide = true)]
    Serve,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let root = workspace_root();
    match cli.command {
        Command::Test { args } => test::run(&root, &args),
        Command::Render {
            stack,
            check,
            program,
        } => {
            if program {
                render::print_program(&root, stack.as_deref())
            } else {
                render::run(&root, stack.as_deref(), check)
            }
        }
        Command::Local {
            action,
            stack,
            events,
        } => block_on(async {
            match action {
                None => local::run(&root, &stack, events).await,
                Some(LocalAction::Up { port }) => local::up(&root, &stack, port).await,
                Some(LocalAction::Down) => local::down(&root),
                Some(LocalAction::Serve) => local::serve(&root, &stack).await,
                Some(LocalAction::Send { file }) => {
                    let outputs = outputs::Outputs::read(&outputs::local_path(&root))?;
                    local::send(&outputs, &file).await
                }
                Some(LocalAction::Query {
                    symbol,
                    exchange,
                    since,
                    limit,
                }) => {
                    let outputs = outputs::Outputs::read(&outputs::local_path(&root))?;
                    let clients = scenario::Clients::for_stack(&outputs).await;
                    let query = local::Query {
                        symbol,
                        exchange,
                        since,
                        limit,
                        event_type: None,
                    };
                    let rows = local::query(&clients, &outputs, &query).await?;
                    local::print_rows(&rows);
                    Ok(())
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
        } => {
            let options = e2e::Options {
                events,
                rate: Some(rate),
                double_deliveries,
                timeout: Duration::from_secs(timeout),
            };
            block_on(async {
                match (local, outputs) {
                    (true, _) => e2e::run_local(&root, &stack, &options).await,
                    (false, Some(path)) => e2e::run_outputs(&path, &options).await,
                    (false, None) => anyhow::bail!(
                        "say where to run: --local (a fresh local stack) or --outputs FILE"
                    ),
                }
            })
        }
    }
}

fn block_on<F: std::future::Future<Output = Result<()>>>(future: F) -> Result<()> {
    tokio::runtime::Runtime::new()
        .map_err(anyhow::Error::from)?
        .block_on(future)
}

/// The workspace root: xtask always lives one level below it.
fn workspace_root() -> PathBuf {
    let manifest_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest_dir
        .parent()
        .map(PathBuf::from)
        .unwrap_or(manifest_dir)
}
