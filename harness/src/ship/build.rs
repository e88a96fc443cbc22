//! `cargo xtask build`: the processor's `bootstrap` compiled for the Lambda architecture and
//! packaged at `target/lambda/market-processor/bootstrap.zip`.
//!
//! Cross-compiling needs a standard library for the target and a linker for it. Machines get
//! those in different ways, so the build looks at what is installed and picks the first route
//! that works; when none does, it names exactly what to install.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use thiserror::Error;

use crate::ship::package::{self, Inspection, LAMBDA_GLIBC};
use crate::ship::which::which;
use infra::stack::Architecture;

/// Where the copied binary and the package go, relative to the workspace root.
pub fn package_path(root: &Path) -> PathBuf {
    root.join(names::PACKAGE_PATH)
}

/// The Rust target triple Lambda's Amazon Linux runs for `arch`.
pub fn triple(arch: Architecture) -> &'static str {
    match arch {
        Architecture::Arm64 => "aarch64-unknown-linux-gnu",
        Architecture::X86_64 => "x86_64-unknown-linux-gnu",
    }
}

/// Prefix of the GNU cross tools (`<prefix>-gcc`, `<prefix>-ar`).
fn gnu_prefix(arch: Architecture) -> &'static str {
    match arch {
        Architecture::Arm64 => "aarch64-linux-gnu",
        Architecture::X86_64 => "x86_64-linux-gnu",
    }
}

/// Debian's name for the architecture, and the packages of its cross linker.
fn debian_names(arch: Architecture) -> (&'static str, &'static str, &'static str) {
    match arch {
        Architecture::Arm64 => ("arm64", "gcc-aarch64-linux-gnu", "libc6-dev-arm64-cross"),
        Architecture::X86_64 => ("amd64", "gcc-x86-64-linux-gnu", "libc6-dev-amd64-cross"),
    }
}

/// The architecture of the machine running this build, if Lambda has it.
pub fn host_arch() -> Option<Architecture> {
    match std::env::consts::ARCH {
        "aarch64" => Some(Architecture::Arm64),
        "x86_64" => Some(Architecture::X86_64),
        _ => None,
    }
}

/// How the binary gets built on this machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// The machine is the target architecture: the toolchain running this command.
    Host,
    /// Debian's `rustc-web` with its target std package and the GNU cross linker. It is another
    /// compiler than rustup's, so it gets its own target directory: sharing one would make each
    /// toolchain rebuild every host dependency of the other.
    Debian { cargo: PathBuf, rustc: PathBuf },
    /// rustup's target std, linked by zig through `cargo zigbuild`, which also pins the glibc
    /// version the binary may use.
    Zigbuild,
    /// rustup's target std, built by `cargo lambda` (zig underneath).
    CargoLambda,
    /// rustup's target std with the GNU cross linker.
    CrossGcc,
}

impl Route {
    pub fn describe(&self, arch: Architecture) -> String {
        let gcc = format!("{}-gcc", gnu_prefix(arch));
        match self {
            Route::Host => "the host toolchain".to_string(),
            Route::Debian { rustc, .. } => format!("Debian's {} and {gcc}", rustc.display()),
            Route::Zigbuild => "rustup's target and cargo zigbuild".to_string(),
            Route::CargoLambda => "rustup's target and cargo lambda".to_string(),
            Route::CrossGcc => format!("rustup's target and {gcc}"),
        }
    }
}

/// What this machine offers for building one target.
#[derive(Debug, Default, Clone)]
pub struct Probe {
    pub host: Option<Architecture>,
    /// Debian's cargo and rustc, when that rustc has the target's std.
    pub debian: Option<(PathBuf, PathBuf)>,
    /// The `rustc` on PATH (rustup's, usually) has the target's std.
    pub rustup_target: bool,
    pub cross_gcc: bool,
    pub zigbuild: bool,
    pub cargo_lambda: bool,
}

impl Probe {
    pub fn detect(arch: Architecture) -> Probe {
        let triple = triple(arch);
        let (cargo, rustc) = (
            PathBuf::from("/usr/bin/cargo"),
            PathBuf::from("/usr/bin/rustc"),
        );
        let debian = (cargo.is_file() && has_target_std(&rustc, triple)).then_some((cargo, rustc));
        Probe {
            host: host_arch(),
            debian,
            rustup_target: has_target_std(Path::new("rustc"), triple),
            cross_gcc: which(&format!("{}-gcc", gnu_prefix(arch))).is_some(),
            zigbuild: which("cargo-zigbuild").is_some(),
            cargo_lambda: which("cargo-lambda").is_some(),
        }
    }

    fn found(&self, arch: Architecture) -> Vec<String> {
        let mut found = Vec::new();
        if self.debian.is_some() {
            found.push(format!("Debian rustc with the {} std", triple(arch)));
        }
        if self.rustup_target {
            found.push(format!("rustup target {}", triple(arch)));
        }
        if self.cross_gcc {
            found.push(format!("{}-gcc", gnu_prefix(arch)));
        }
        if self.zigbuild {
            found.push("cargo-zigbuild".to_string());
        }
        if self.cargo_lambda {
            found.push("cargo-lambda".to_string());
        }
        found
    }
}

/// Whether `rustc --print sysroot` has `lib/rustlib/<triple>/lib`, the target's std.
fn has_target_std(rustc: &Path, triple: &str) -> bool {
    let Ok(output) = Command::new(rustc)
        .args(["--print", "sysroot"])
        .env_remove("RUSTUP_TOOLCHAIN")
        .output()
    else {
        return false;
    };
    let sysroot = String::from_utf8_lossy(&output.stdout).trim().to_string();
    output.status.success()
        && !sysroot.is_empty()
        && Path::new(&sysroot)
            .join("lib/rustlib")
            .join(triple)
            .join("lib")
            .is_dir()
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum RouteError {
    #[error(
        "this machine ({0}) is not an architecture Lambda runs; build on x86_64 or aarch64 Linux"
    )]
    UnknownHost(&'static str),
    #[error("{0}")]
    NothingInstalled(String),
}

/// The first route the machine supports, in order of preference: the host itself; Debian's
/// packages (they need no download from rustup, so they work where only package registries are
/// reachable); then rustup's target with zig (which pins glibc), cargo lambda, or a GNU linker.
pub fn choose(probe: &Probe, arch: Architecture) -> Result<Route, RouteError> {
    let Some(host) = probe.host else {
        return Err(RouteError::UnknownHost(std::env::consts::ARCH));
    };
    if host == arch {
        return Ok(Route::Host);
    }
    if let Some((cargo, rustc)) = &probe.debian
        && probe.cross_gcc
    {
        return Ok(Route::Debian {
            cargo: cargo.clone(),
            rustc: rustc.clone(),
        });
    }
    if probe.rustup_target {
        if probe.zigbuild {
            return Ok(Route::Zigbuild);
        }
        if probe.cargo_lambda {
            return Ok(Route::CargoLambda);
        }
        if probe.cross_gcc {
            return Ok(Route::CrossGcc);
        }
    }
    Err(RouteError::NothingInstalled(install_hint(probe, arch)))
}

fn install_hint(probe: &Probe, arch: Architecture) -> String {
    let triple = triple(arch);
    let (deb_arch, gcc_pkg, libc_pkg) = debian_names(arch);
    let found = probe.found(arch);
    let found = if found.is_empty() {
        "none of them".to_string()
    } else {
        found.join(", ")
    };
    format!(
        "cannot build for {triple} (Lambda {}) on this {} machine: it needs the target's Rust \
         standard library and a linker for it (found: {found}). Install one of:\n\
         \x20 1. Debian/Ubuntu packages, no rustup download needed:\n\
         \x20      sudo dpkg --add-architecture {deb_arch} && sudo apt-get update\n\
         \x20      sudo apt-get install --no-install-recommends rustc-web cargo-web \
         libstd-rust-web-dev:{deb_arch} {gcc_pkg} {libc_pkg}\n\
         \x20 2. rustup's target plus one linker:\n\
         \x20      rustup target add {triple}\n\
         \x20      then `pip install cargo-zigbuild` (brings zig), or `pip install cargo-lambda`, \
         or `sudo apt-get install {gcc_pkg} {libc_pkg}`",
        arch.as_str(),
        std::env::consts::ARCH,
    )
}

/// What a build produced.
pub struct Built {
    pub inspection: Inspection,
    pub route: String,
    pub elapsed: Duration,
}

/// `cargo xtask build --arch A`: compile, copy to `target/lambda/market-processor/bootstrap`,
/// package, and check the result is what Lambda can run.
pub fn run(root: &Path, arch: Architecture) -> Result<Built> {
    let started = Instant::now();
    let route = choose(&Probe::detect(arch), arch)?;
    let route_text = route.describe(arch);
    println!(
        "building bootstrap for {} (Lambda {}) with {route_text}",
        triple(arch),
        arch.as_str()
    );
    let binary = compile(root, arch, &route)?;
    let zip = package_path(root);
    let copy = zip.with_file_name(package::ENTRY);
    let bytes = std::fs::read(&binary).with_context(|| format!("reading {}", binary.display()))?;
    if let Some(dir) = copy.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(&copy, &bytes).with_context(|| format!("writing {}", copy.display()))?;
    set_executable(&copy)?;
    package::write(&bytes, &zip)?;
    let inspection = package::inspect(&zip)?;
    check(&inspection, arch)?;
    Ok(Built {
        inspection,
        route: route_text,
        elapsed: started.elapsed(),
    })
}

/// A package Lambda will refuse or fail to start is an error now, not at the first invocation.
pub fn check(inspection: &Inspection, arch: Architecture) -> Result<()> {
    if inspection.arch != arch {
        bail!(
            "{} holds an {} binary, but the stack runs {}: run `cargo xtask build --arch {}`",
            inspection.path.display(),
            inspection.arch.as_str(),
            arch.as_str(),
            arch.as_str()
        );
    }
    if let Some(glibc) = inspection.glibc
        && glibc > LAMBDA_GLIBC
    {
        bail!(
            "{}: bootstrap needs glibc {glibc}, but Lambda's provided.al2023 has {LAMBDA_GLIBC}; \
             build with `cargo zigbuild` (it pins glibc) or on a distribution with glibc {LAMBDA_GLIBC} or older",
            inspection.path.display()
        );
    }
    Ok(())
}

fn compile(root: &Path, arch: Architecture, route: &Route) -> Result<PathBuf> {
    let triple = triple(arch);
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let target = root.join("target");
    // --locked: the package ships exactly the dependency versions of the committed Cargo.lock.
    let release = [
        "--locked",
        "--release",
        "-p",
        "processor",
        "--bin",
        "bootstrap",
    ];
    let (mut command, output) = match route {
        Route::Host => {
            let mut c = Command::new(&cargo);
            c.arg("build").args(release);
            (c, target.join("release").join("bootstrap"))
        }
        Route::Debian { cargo, rustc } => {
            let dir = target.join(match arch {
                Architecture::Arm64 => "aarch64-debian",
                Architecture::X86_64 => "x86_64-debian",
            });
            let mut c = Command::new(cargo);
            c.args(["build", "--target", triple])
                .args(release)
                .arg("--target-dir")
                .arg(&dir)
                // rustup's proxies come first on PATH and would hand this cargo rustup's rustc.
                .env("RUSTC", rustc)
                .env_remove("RUSTUP_TOOLCHAIN")
                .env_remove("RUSTDOC");
            gnu_linker_env(&mut c, arch);
            (c, dir.join(triple).join("release").join("bootstrap"))
        }
        Route::Zigbuild => {
            let mut c = Command::new(&cargo);
            // The suffix makes zig link against exactly the glibc Lambda has.
            c.args(["zigbuild", "--target"])
                .arg(format!("{triple}.{LAMBDA_GLIBC}"))
                .args(release);
            (c, target.join(triple).join("release").join("bootstrap"))
        }
        Route::CargoLambda => {
            let mut c = Command::new(&cargo);
            let flag = match arch {
                Architecture::Arm64 => "--arm64",
                Architecture::X86_64 => "--x86-64",
            };
            c.args(["lambda", "build", flag]).args(release);
            (c, target.join("lambda").join("bootstrap").join("bootstrap"))
        }
        Route::CrossGcc => {
            let mut c = Command::new(&cargo);
            c.args(["build", "--target", triple]).args(release);
            gnu_linker_env(&mut c, arch);
            (c, target.join(triple).join("release").join("bootstrap"))
        }
    };
    let status = command
        .current_dir(root)
        .status()
        .with_context(|| format!("starting {command:?}"))?;
    if !status.success() {
        bail!("the build of bootstrap for {triple} failed ({status}); cargo's messages are above");
    }
    if !output.is_file() {
        bail!(
            "the build succeeded but left no binary at {}",
            output.display()
        );
    }
    Ok(output)
}

/// The linker, C compiler and archiver for crates with C parts (ring), all from the GNU cross
/// toolchain of `arch`.
fn gnu_linker_env(command: &mut Command, arch: Architecture) {
    let prefix = gnu_prefix(arch);
    let var = triple(arch).replace('-', "_");
    command
        .env(
            format!("CARGO_TARGET_{}_LINKER", var.to_uppercase()),
            format!("{prefix}-gcc"),
        )
        .env(format!("CC_{var}"), format!("{prefix}-gcc"))
        .env(format!("AR_{var}"), format!("{prefix}-ar"));
}

fn set_executable(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
        .with_context(|| format!("making {} executable", path.display()))
}

/// `cargo xtask build` output.
pub fn print(built: &Built) {
    let secs = built.elapsed.as_secs();
    println!(
        "built in {}m {:02}s with {}\n{}",
        secs / 60,
        secs % 60,
        built.route,
        built.inspection.summary()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn x86_host() -> Probe {
        Probe {
            host: Some(Architecture::X86_64),
            ..Probe::default()
        }
    }

    fn debian() -> Option<(PathBuf, PathBuf)> {
        Some(("/usr/bin/cargo".into(), "/usr/bin/rustc".into()))
    }

    #[test]
    fn the_host_architecture_needs_nothing_else() {
        assert_eq!(choose(&x86_host(), Architecture::X86_64), Ok(Route::Host));
    }

    #[test]
    fn debian_packages_come_first_but_need_the_cross_linker() {
        let probe = Probe {
            debian: debian(),
            cross_gcc: true,
            rustup_target: true,
            zigbuild: true,
            ..x86_host()
        };
        assert!(matches!(
            choose(&probe, Architecture::Arm64),
            Ok(Route::Debian { .. })
        ));
        let no_gcc = Probe {
            cross_gcc: false,
            ..probe
        };
        assert_eq!(choose(&no_gcc, Architecture::Arm64), Ok(Route::Zigbuild));
    }

    #[test]
    fn rustup_target_prefers_zig_then_cargo_lambda_then_gcc() {
        let rustup = |zigbuild, cargo_lambda, cross_gcc| Probe {
            rustup_target: true,
            zigbuild,
            cargo_lambda,
            cross_gcc,
            ..x86_host()
        };
        let arm = Architecture::Arm64;
        assert_eq!(choose(&rustup(true, true, true), arm), Ok(Route::Zigbuild));
        assert_eq!(
            choose(&rustup(false, true, true), arm),
            Ok(Route::CargoLambda)
        );
        assert_eq!(
            choose(&rustup(false, false, true), arm),
            Ok(Route::CrossGcc)
        );
        assert!(choose(&rustup(false, false, false), arm).is_err());
    }

    #[test]
    fn a_linker_without_a_target_std_is_not_enough_and_the_message_says_what_to_install() {
        let probe = Probe {
            cross_gcc: true,
            zigbuild: true,
            ..x86_host()
        };
        let Err(RouteError::NothingInstalled(message)) = choose(&probe, Architecture::Arm64) else {
            panic!("expected an install hint");
        };
        for needle in [
            "found: aarch64-linux-gnu-gcc, cargo-zigbuild",
            "dpkg --add-architecture arm64",
            "rustc-web cargo-web libstd-rust-web-dev:arm64 gcc-aarch64-linux-gnu libc6-dev-arm64-cross",
            "rustup target add aarch64-unknown-linux-gnu",
            "pip install cargo-zigbuild",
            "pip install cargo-lambda",
        ] {
            assert!(
                message.contains(needle),
                "{needle:?} missing from:\n{message}"
            );
        }
    }

    #[test]
    fn an_unknown_host_is_named() {
        let probe = Probe::default();
        assert!(matches!(
            choose(&probe, Architecture::Arm64),
            Err(RouteError::UnknownHost(_))
        ));
    }
}
