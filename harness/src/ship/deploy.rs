//! `cargo xtask preview|deploy|destroy|outputs <stack>`: validate the stack file, check what
//! the pulumi CLI needs, build the package, render the program, then run pulumi.
//!
//! The prerequisites are checked before the build, so a missing CLI, login or credential fails
//! in seconds instead of after a multi-minute cross-compile.

use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;

use anyhow::{Context, Result};
use thiserror::Error;

use crate::aws::credentials::{self, Found};
use crate::ship::build;
use crate::ship::package;
use crate::ship::pulumi::Pulumi;
use infra::render;
use infra::stack::{self, StackConfig};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Preview,
    Deploy,
    Destroy,
    Outputs,
}

impl Action {
    fn name(self) -> &'static str {
        match self {
            Action::Preview => "preview",
            Action::Deploy => "deploy",
            Action::Destroy => "destroy",
            Action::Outputs => "outputs",
        }
    }

    fn pulumi_args(self, stack: &str, yes: bool) -> Vec<&str> {
        match self {
            Action::Preview => vec!["preview", "--stack", stack, "--diff"],
            // The confirmation, when one is due, happened before the build.
            Action::Deploy => vec!["up", "--stack", stack, "--yes"],
            // Without --yes pulumi lists what it will delete and asks itself.
            Action::Destroy if yes => vec!["destroy", "--stack", stack, "--yes"],
            Action::Destroy => vec!["destroy", "--stack", stack],
            Action::Outputs => vec!["stack", "output", "--json", "--stack", stack],
        }
    }

    /// Preview and update run the program, and the program hashes the package.
    fn needs_program(self) -> bool {
        matches!(self, Action::Preview | Action::Deploy)
    }

    fn needs_aws(self) -> bool {
        !matches!(self, Action::Outputs)
    }

    fn changes_resources(self) -> bool {
        matches!(self, Action::Deploy | Action::Destroy)
    }
}

pub struct Options {
    /// Confirm a production change without asking.
    pub yes: bool,
    /// Ship the package already at `target/lambda/market-processor/bootstrap.zip`.
    pub no_build: bool,
}

fn step(text: &str) {
    println!("==> {text}");
}

pub fn run(root: &Path, stack: &str, action: Action, options: &Options) -> Result<()> {
    step(&format!("validate {}", stack::stack_file(stack)));
    let config = StackConfig::load(root, stack)?;
    println!(
        "    environment {}, region {}, Lambda {} {} MB",
        config.environment,
        config.region,
        config.lambda.architecture.as_str(),
        config.lambda.memory_mb
    );

    step("check the pulumi CLI, its login and AWS credentials");
    let pulumi = Pulumi::locate(root)?;
    let who = pulumi.whoami()?;
    println!("    {} (logged in as {who})", pulumi.path.display());
    if action.needs_aws() {
        aws_credentials(&config.region)?;
    }

    if action.changes_resources() && config.is_production() && !options.yes {
        let stdin = std::io::stdin();
        let interactive = stdin.is_terminal();
        confirm(
            action.name(),
            stack,
            &config,
            &mut stdin.lock(),
            interactive,
        )?;
    }

    if action.needs_program() {
        let arch = config.lambda.architecture;
        if options.no_build {
            step("reuse the package (--no-build)");
            let inspection = package::inspect(&build::package_path(root))?;
            build::check(&inspection, arch)?;
            println!("    {}", inspection.summary().replace('\n', "\n    "));
        } else {
            step(&format!("build the {} package", arch.as_str()));
            build::print(&build::run(root, arch)?);
        }

        step(&format!("render Pulumi.yaml and Pulumi.{stack}.yaml"));
        render::run(root, Some(stack), false)?;
    }

    let args = action.pulumi_args(stack, options.yes);
    step(&format!("pulumi {}", args.join(" ")));
    pulumi.run(&args)?;
    if action == Action::Deploy {
        println!(
            "\ndeployed {stack}. Check it end to end with \
             `cargo xtask e2e --stack {stack} --double-deliveries 0`"
        );
    }
    Ok(())
}

fn aws_credentials(region: &str) -> Result<()> {
    let found = tokio::runtime::Runtime::new()
        .context("starting a runtime for the credential check")?
        .block_on(credentials::check(region))?;
    match found {
        Found::Resolved => println!("    AWS credentials: found"),
        Found::Unverified(why) => println!(
            "    AWS credentials: configured, but not resolvable here ({why}); pulumi will try them"
        ),
    }
    Ok(())
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum ConfirmError {
    #[error(
        "`{action} {stack}` changes production and needs a confirmation, but stdin is not a \
         terminal: pass --yes to confirm without a prompt"
    )]
    NotInteractive { action: String, stack: String },
    #[error("`{action} {stack}` cancelled ({answer:?} is not y or yes); nothing was changed")]
    Declined {
        action: String,
        stack: String,
        answer: String,
    },
}

/// Asks before a production change. Only an answer of `y` or `yes` goes on; a closed or
/// non-interactive stdin never counts as consent.
pub fn confirm(
    action: &str,
    stack: &str,
    config: &StackConfig,
    input: &mut dyn BufRead,
    interactive: bool,
) -> Result<(), ConfirmError> {
    if !interactive {
        return Err(ConfirmError::NotInteractive {
            action: action.into(),
            stack: stack.into(),
        });
    }
    eprint!(
        "`{action} {stack}` changes production ({} in {}). Continue? [y/N] ",
        config.environment, config.region
    );
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    // A read error is treated like no answer: the change does not happen.
    let _ = input.read_line(&mut answer);
    let answer = answer.trim().to_string();
    if matches!(answer.to_ascii_lowercase().as_str(), "y" | "yes") {
        Ok(())
    } else {
        Err(ConfirmError::Declined {
            action: action.into(),
            stack: stack.into(),
            answer,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prod() -> StackConfig {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .unwrap_or(Path::new("."));
        StackConfig::load(root, "prod").expect("committed stack is valid")
    }

    fn answer(text: &str) -> Result<(), ConfirmError> {
        confirm("deploy", "prod", &prod(), &mut text.as_bytes(), true)
    }

    #[test]
    fn only_y_or_yes_confirms() {
        for yes in ["y\n", "yes\n", "Y\n", " YES \n"] {
            assert_eq!(answer(yes), Ok(()), "{yes:?}");
        }
        for no in ["n\n", "no\n", "\n", "", "yep\n", "sure\n"] {
            assert!(
                matches!(answer(no), Err(ConfirmError::Declined { .. })),
                "{no:?}"
            );
        }
    }

    #[test]
    fn without_a_terminal_it_refuses_even_with_input() {
        let err =
            confirm("destroy", "prod", &prod(), &mut "y\n".as_bytes(), false).expect_err("refused");
        assert!(err.to_string().contains("pass --yes"), "{err}");
    }

    #[test]
    fn pulumi_commands_per_action() {
        assert_eq!(
            Action::Preview.pulumi_args("dev", false),
            ["preview", "--stack", "dev", "--diff"]
        );
        assert_eq!(
            Action::Deploy.pulumi_args("dev", false),
            ["up", "--stack", "dev", "--yes"]
        );
        assert_eq!(
            Action::Destroy.pulumi_args("dev", false),
            ["destroy", "--stack", "dev"]
        );
        assert_eq!(
            Action::Destroy.pulumi_args("dev", true),
            ["destroy", "--stack", "dev", "--yes"]
        );
        assert_eq!(
            Action::Outputs.pulumi_args("dev", false),
            ["stack", "output", "--json", "--stack", "dev"]
        );
    }
}
