//! `cargo xtask test`: every test of the workspace against a moto server it starts.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::moto::Moto;

pub fn run(root: &Path, args: &[String]) -> Result<()> {
    let moto = Moto::start(root)?;
    eprintln!("moto server {} (log {})", moto.endpoint, moto.log.display());
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let status = Command::new(cargo)
        .current_dir(root)
        .args(["test", "--workspace"])
        .args(args)
        .envs(moto.env())
        .status()
        .context("running cargo test")?;
    if !status.success() {
        bail!("cargo test failed ({status})");
    }
    Ok(())
}
