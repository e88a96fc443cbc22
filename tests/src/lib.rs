//! What the system tests share: the workspace binaries they run, a scratch workspace with a
//! fake `pulumi` for the command-line tests ([`cli`]), and fresh tables on the shared moto
//! server for the processor's tests ([`tables`]).
//!
//! Every test that needs moto gets it from `harness::moto::shared()`: installed into `.venv/`
//! on first use, started once per test binary, stopped when the binary exits.

pub mod cli;
pub mod tables;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

/// The workspace root, where the binaries run.
pub use infra::workspace_root;

/// The binary `bin` of workspace package `package`, built (debug) the first time a test asks.
pub fn binary(package: &str, bin: &str) -> PathBuf {
    static BUILT: OnceLock<Mutex<HashMap<String, PathBuf>>> = OnceLock::new();
    let mut built = BUILT
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    built
        .entry(format!("{package}/{bin}"))
        .or_insert_with(|| {
            let run = escargot::CargoBuild::new()
                .manifest_path(workspace_root().join("Cargo.toml"))
                .package(package)
                .bin(bin)
                // As CI builds: the committed Cargo.lock, never an updated one.
                .arg("--locked")
                .run()
                .unwrap_or_else(|err| panic!("building {package}'s {bin}: {err}"));
            run.path().to_path_buf()
        })
        .clone()
}

/// The `cargo xtask` binary.
pub fn xtask() -> PathBuf {
    binary("xtask", "xtask")
}
