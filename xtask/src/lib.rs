//! The project's automation as a library: the `cargo xtask` binary is its command line, and the
//! fuzz targets reach the stack config loader and the renderer through it.

pub mod bench;
pub mod build;
pub mod cost;
pub mod credentials;
pub mod deploy;
pub mod deployed;
pub mod dlq;
pub mod e2e;
pub mod faults;
pub mod fuzz;
pub mod local;
pub mod model;
pub mod moto;
pub mod outputs;
pub mod package;
pub mod policy;
pub mod pulumi;
pub mod render;
pub mod runtime_api;
pub mod sample;
pub mod scenario;
pub mod schema;
pub mod stack;
pub mod test;
pub mod verify;
pub mod which;

use std::path::PathBuf;

/// The workspace root: xtask always lives one level below it. `XTASK_WORKSPACE_ROOT` points the
/// commands at another copy of the workspace (the CLI tests run against scratch copies).
pub fn workspace_root() -> PathBuf {
    if let Some(root) = std::env::var_os("XTASK_WORKSPACE_ROOT") {
        return PathBuf::from(root);
    }
    let manifest_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest_dir
        .parent()
        .map(PathBuf::from)
        .unwrap_or(manifest_dir)
}
