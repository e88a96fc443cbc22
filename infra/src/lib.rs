//! The infrastructure as data: a stack's config (`stacks/<env>.yaml`, [`stack`]) becomes a
//! resource model ([`model`]), the model a Pulumi YAML program ([`render`]), and the program is
//! checked against the provider's schema ([`schema`]) and the project's rules ([`policy`]).
//! [`cost`] prices a model at a given traffic, [`capacity`] holds its ingest paths to AWS's
//! quotas at a given rate; [`outputs`] is what a deployed stack reports.
//!
//! No AWS SDK, no async runtime, no HTTP: Pulumi's compiler command (`pulumi-program`) builds
//! only this crate and `names`.

pub mod capacity;
pub mod cost;
pub mod model;
pub mod outputs;
pub mod policy;
pub mod render;
pub mod schema;
pub mod stack;

use std::path::PathBuf;

/// The workspace root: the crates live one level below it. `XTASK_WORKSPACE_ROOT` points the
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
