//! `cargo xtask fuzz`: the fuzz targets under libFuzzer, each for a bounded time.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};

/// The cargo-fuzz the flags below were written for: `--sanitizer none`, `--target-dir` and the
/// stable toolchain through `RUSTC_BOOTSTRAP`.
pub const CARGO_FUZZ_VERSION: &str = "0.13.2";

/// A target under `fuzz/fuzz_targets/`, where its seeds live and the dictionary that steers it.
pub struct Target {
    pub name: &'static str,
    /// Directories, relative to the workspace root, whose files seed the corpus: the test
    /// inputs themselves where they are files already, so seeds and tests do not drift apart.
    pub seeds: &'static [&'static str],
    /// A libFuzzer dictionary under `fuzz/dicts/`.
    pub dict: Option<&'static str>,
}

pub const TARGETS: [Target; 2] = [
    Target {
        name: "decode",
        seeds: &["fuzz/seeds/decode"],
        dict: None,
    },
    Target {
        name: "stack_config",
        seeds: &["stacks", "infra/tests/bad-stacks"],
        dict: Some("stack_config.dict"),
    },
];

pub fn run(root: &Path, seconds: u64) -> Result<()> {
    ensure_cargo_fuzz()?;
    let fuzz_dir = root.join("fuzz");
    check_lock_file(&fuzz_dir)?;
    for Target { name, seeds, dict } in TARGETS {
        // A working corpus under target/, seeded from the committed seeds: what the fuzzer
        // discovers is not committed.
        let corpus = root.join("target").join("fuzz-corpus").join(name);
        std::fs::create_dir_all(&corpus).context("creating the fuzz corpus directory")?;
        for dir in seeds {
            for seed in
                std::fs::read_dir(root.join(dir)).with_context(|| format!("reading {dir}"))?
            {
                let seed = seed.context("listing seeds")?.path();
                if let Some(file) = seed.file_name() {
                    std::fs::copy(&seed, corpus.join(file))
                        .with_context(|| format!("copying the seed {}", seed.display()))?;
                }
            }
        }
        let mut options = vec![
            format!("-max_total_time={seconds}"),
            "-max_len=65536".to_string(),
            "-print_final_stats=1".to_string(),
        ];
        if let Some(dict) = dict {
            options.push(format!(
                "-dict={}",
                fuzz_dir.join("dicts").join(dict).display()
            ));
        }
        let output = Command::new("cargo")
            .current_dir(&fuzz_dir)
            // cargo-fuzz passes unstable flags to rustc; this lets a stable toolchain take them.
            .env("RUSTC_BOOTSTRAP", "1")
            .args(["fuzz", "run", "--sanitizer", "none", "--target-dir"])
            .arg(root.join("target").join("fuzz"))
            .arg(name)
            .arg(&corpus)
            .arg("--")
            .args(&options)
            .output()
            .context("running cargo fuzz")?;
        let log = String::from_utf8_lossy(&output.stderr);
        let runs = log
            .lines()
            .rev()
            .find_map(|l| l.strip_prefix("Done ").and_then(|r| r.split(' ').next()));
        if !output.status.success() {
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            let tail = tail.into_iter().rev().collect::<Vec<_>>().join("\n");
            // libFuzzer prints "Done N runs" when it ran; without it the target never started
            // (most often it did not build), and there is no crash input to look for.
            match runs {
                Some(runs) => bail!(
                    "fuzz target {name} failed after {runs} runs; crash input under \
                     fuzz/artifacts/{name}/:\n{tail}"
                ),
                None => {
                    bail!("fuzz target {name} did not run (it failed to build or start):\n{tail}")
                }
            }
        }
        let runs = runs.unwrap_or("?");
        println!("fuzz {name}: {runs} executions in {seconds} s, no crash");
    }
    Ok(())
}

fn ensure_cargo_fuzz() -> Result<()> {
    let install = format!("cargo install cargo-fuzz --version {CARGO_FUZZ_VERSION} --locked");
    match installed_cargo_fuzz() {
        Some(version) if version == CARGO_FUZZ_VERSION => return Ok(()),
        Some(version) => bail!(
            "cargo-fuzz {version} is installed, and `cargo xtask fuzz` runs with \
             {CARGO_FUZZ_VERSION}, whose options it uses; install that one with `{install}`"
        ),
        None => {}
    }
    eprintln!("installing cargo-fuzz ({install})");
    let status = Command::new("cargo")
        .args([
            "install",
            "cargo-fuzz",
            "--version",
            CARGO_FUZZ_VERSION,
            "--locked",
        ])
        .status()
        .context("running cargo install")?;
    if !status.success() {
        bail!(
            "could not install cargo-fuzz ({status}); cargo's messages are above. Install it with `{install}`"
        );
    }
    Ok(())
}

/// The version of the `cargo fuzz` on this machine, or `None` if there is none.
fn installed_cargo_fuzz() -> Option<String> {
    let output = Command::new("cargo")
        .args(["fuzz", "--version"])
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    cargo_fuzz_version(&String::from_utf8_lossy(&output.stdout)).map(str::to_string)
}

/// `"cargo-fuzz 0.13.2\n"` (what `cargo fuzz --version` prints) to `"0.13.2"`.
fn cargo_fuzz_version(text: &str) -> Option<&str> {
    text.trim()
        .strip_prefix("cargo-fuzz ")
        .filter(|version| !version.is_empty() && !version.contains(char::is_whitespace))
}

/// `cargo fuzz run` has no `--locked` and lets cargo update `fuzz/Cargo.lock`; checking the
/// lock first means the build that follows uses it unchanged.
fn check_lock_file(fuzz_dir: &Path) -> Result<()> {
    let output = Command::new("cargo")
        .current_dir(fuzz_dir)
        .args(["fetch", "--locked"])
        .output()
        .context("running cargo fetch in fuzz/")?;
    if !output.status.success() {
        bail!(
            "fuzz/Cargo.lock is out of date with fuzz/Cargo.toml or the workspace crates it \
             builds: update it with `cargo update --manifest-path fuzz/Cargo.toml --workspace` \
             and commit it. cargo said:\n{}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cargo_fuzz_version_is_read_from_its_version_line() {
        assert_eq!(cargo_fuzz_version("cargo-fuzz 0.13.2\n"), Some("0.13.2"));
        for bad in [
            "",
            "cargo-fuzz",
            "cargo-fuzz ",
            "cargo-deny 0.13.2",
            "cargo-fuzz 0.13 2",
        ] {
            assert_eq!(cargo_fuzz_version(bad), None, "{bad:?}");
        }
    }

    /// Every binary of the fuzz crate runs in `cargo xtask fuzz`, and every target here has its
    /// source, seeds and dictionary: a target added to one place only fails here, not silently.
    #[test]
    fn every_fuzz_binary_is_run_with_its_seeds() {
        let root = infra::workspace_root();
        let manifest =
            std::fs::read_to_string(root.join("fuzz/Cargo.toml")).expect("fuzz/Cargo.toml");
        let mut bins: Vec<&str> = manifest
            .split("[[bin]]")
            .skip(1)
            .filter_map(|section| {
                section
                    .lines()
                    .find_map(|l| l.trim().strip_prefix("name = "))
                    .map(|name| name.trim_matches('"'))
            })
            .collect();
        bins.sort_unstable();
        let mut names: Vec<&str> = TARGETS.iter().map(|t| t.name).collect();
        names.sort_unstable();
        assert_eq!(bins, names);
        for target in &TARGETS {
            let source = root.join(format!("fuzz/fuzz_targets/{}.rs", target.name));
            assert!(source.is_file(), "{} is missing", source.display());
            let seeds: usize = target
                .seeds
                .iter()
                .map(|dir| {
                    std::fs::read_dir(root.join(dir))
                        .unwrap_or_else(|err| panic!("{dir}: {err}"))
                        .count()
                })
                .sum();
            assert!(seeds > 0, "{} has no seeds", target.name);
            if let Some(dict) = target.dict {
                let text = std::fs::read_to_string(root.join("fuzz/dicts").join(dict))
                    .unwrap_or_else(|err| panic!("{dict}: {err}"));
                // libFuzzer refuses a dictionary with any other kind of line.
                for line in text.lines() {
                    let line = line.trim();
                    assert!(
                        line.is_empty()
                            || line.starts_with('#')
                            || (line.starts_with('"') && line.ends_with('"') && line.len() > 2),
                        "{dict}: not a dictionary entry: {line}"
                    );
                }
            }
        }
    }
}
