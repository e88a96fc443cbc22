//! The dependency rules of ARCHITECTURE.md, read off the resolved dependency graph: a layer
//! that starts to pull in what it must not fails here, not in a user's first `pulumi preview`.

use std::process::Command;

/// The packages `package` builds for its own code (normal dependencies, every feature the
/// workspace resolves).
fn normal_dependencies(package: &str) -> Vec<String> {
    tree(package, &[])
}

/// The package itself and its direct normal dependencies.
fn direct_dependencies(package: &str) -> Vec<String> {
    tree(package, &["--depth", "1"])
}

fn tree(package: &str, extra: &[&str]) -> Vec<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .current_dir(tests::workspace_root())
        .args([
            "tree",
            "--locked",
            "--offline",
            "-e",
            "normal",
            "--prefix",
            "none",
        ])
        .args(["--format", "{p}", "-p", package])
        .args(extra)
        .output()
        .expect("cargo tree runs");
    assert!(
        output.status.success(),
        "cargo tree -p {package}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .map(String::from)
        .collect()
}

fn offending<'a>(deps: &'a [String], forbidden: &[&str]) -> Vec<&'a String> {
    deps.iter()
        .filter(|dep| {
            forbidden
                .iter()
                .any(|f| dep.as_str() == *f || (f.ends_with('-') && dep.starts_with(f)))
        })
        .collect()
}

#[test]
fn the_pulumi_compiler_builds_no_sdk_no_runtime_no_http() {
    let deps = normal_dependencies("infra");
    assert!(deps.iter().any(|d| d == "names"), "{deps:?}");
    let bad = offending(
        &deps,
        &[
            "aws-",
            "tokio",
            "hyper",
            "hyper-util",
            "processor",
            "harness",
        ],
    );
    assert!(bad.is_empty(), "infra reaches {bad:?}");
}

#[test]
fn the_shared_names_depend_on_std_and_thiserror_only() {
    let deps = normal_dependencies("names");
    let own: Vec<&String> = deps
        .iter()
        .filter(|d| {
            ![
                "names",
                "thiserror",
                "thiserror-impl",
                "proc-macro2",
                "quote",
                "syn",
                "unicode-ident",
            ]
            .contains(&d.as_str())
        })
        .collect();
    assert!(own.is_empty(), "names depends on {own:?}");
}

#[test]
fn the_lambda_ships_nothing_of_the_tools() {
    let deps = normal_dependencies("processor");
    let bad = offending(&deps, &["infra", "harness", "xtask", "clap", "zip"]);
    assert!(bad.is_empty(), "processor reaches {bad:?}");
}

#[test]
fn the_command_line_reaches_the_libraries_only_through_infra_and_harness() {
    let direct = direct_dependencies("xtask");
    let allowed = ["xtask", "infra", "harness", "anyhow", "clap", "tokio"];
    let other: Vec<&String> = direct
        .iter()
        .filter(|d| !allowed.contains(&d.as_str()))
        .collect();
    assert!(
        other.is_empty(),
        "xtask depends on {other:?} directly: what a command does belongs in infra or harness"
    );
}
