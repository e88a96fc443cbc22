//! `cargo xtask fuzz`: the decoder fuzz target under libFuzzer for a bounded time.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};

/// Targets under `fuzz/fuzz_targets/`, each with seeds under `fuzz/seeds/<target>/`.
pub const TARGETS: [&str; 1] = ["decode"];

pub fn run(root: &Path, seconds: u64) -> Result<()> {
    ensure_cargo_fuzz()?;
    let fuzz_dir = root.join("fuzz");
    for target in TARGETS {
        // A working corpus under target/, seeded from the committed seeds: what the fuzzer
        // discovers is not committed.
        let corpus = root.join("target").join("fuzz-corpus").join(target);
        std::fs::create_dir_all(&corpus).context("creating the fuzz corpus directory")?;
        for seed in std::fs::read_dir(fuzz_dir.join("seeds").join(target))
            .with_context(|| format!("reading fuzz/seeds/{target}"))?
        {
            let seed = seed.context("listing seeds")?.path();
            if let Some(name) = seed.file_name() {
                std::fs::copy(&seed, corpus.join(name)).context("copying a seed")?;
            }
        }
        let output = Command::new("cargo")
            .current_dir(&fuzz_dir)
            // cargo-fuzz passes unstable flags to rustc; this lets a stable toolchain take them.
            .env("RUSTC_BOOTSTRAP", "1")
            .args(["fuzz", "run", "--sanitizer", "none", "--target-dir"])
            .arg(root.join("target").join("fuzz"))
            .arg(target)
            .arg(&corpus)
            .args([
                "--",
                &format!("-max_total_time={seconds}"),
                "-max_len=65536",
                "-print_final_stats=1",
            ])
            .output()
            .context("running cargo fuzz")?;
        let log = String::from_utf8_lossy(&output.stderr);
        let runs = log
            .lines()
            .rev()
            .find_map(|l| l.strip_prefix("Done ").and_then(|r| r.split(' ').next()))
            .unwrap_or("?");
        if !output.status.success() {
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            bail!(
                "fuzz target {target} failed after {runs} runs; crash input under fuzz/artifacts/{target}/:\n{}",
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
        println!("fuzz {target}: {runs} executions in {seconds} s, no crash");
    }
    Ok(())
}

fn ensure_cargo_fuzz() -> Result<()> {
    let present = Command::new("cargo")
        .args(["fuzz", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if present {
        return Ok(());
    }
    eprintln!("installing cargo-fuzz (cargo install cargo-fuzz --locked)");
    let status = Command::new("cargo")
        .args(["install", "cargo-fuzz", "--locked"])
        .status()
        .context("running cargo install")?;
    if !status.success() {
        bail!("could not install cargo-fuzz; install it with `cargo install cargo-fuzz --locked`");
    }
    Ok(())
}
