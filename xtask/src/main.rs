//! `cargo xtask`: the project's automation. See ARCHITECTURE.md for the map.

mod moto;
mod render;
mod stack;
mod model;
mod schema;
mod policy;
mod test;

use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cargo xtask", about = "Build, render, test and run the market-data pipeline")]
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
    },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let root = workspace_root();
    match cli.command {
        Command::Test { args } => test::run(&root, &args),
        Command::Render { stack, check } => render::run(&root, stack.as_deref(), check),
    }
}

/// The workspace root: xtask always lives one level below it.
fn workspace_root() -> PathBuf {
    let manifest_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest_dir.parent().map(PathBuf::from).unwrap_or(manifest_dir)
}
