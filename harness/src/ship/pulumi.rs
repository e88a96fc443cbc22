//! The stock `pulumi` CLI, run from the workspace root (the Pulumi project directory). Its
//! output streams through unchanged and its exit code becomes ours.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use thiserror::Error;
use tokio::signal::unix::SignalKind;

use crate::ship::which::which;

pub const INSTALL_URL: &str = "https://www.pulumi.com/docs/install/";

#[derive(Debug, Error)]
pub enum PulumiError {
    #[error(
        "the pulumi CLI is not on PATH. Install it from {INSTALL_URL} \
         (for example `curl -fsSL https://get.pulumi.com | sh`, then open a new shell so that \
         ~/.pulumi/bin is on PATH)"
    )]
    NotInstalled,
    #[error(
        "pulumi is not logged in to a state backend (`pulumi whoami` failed: {detail}). \
         Run `pulumi login` for Pulumi Cloud, or `pulumi login --local` (or \
         `pulumi login s3://<bucket>`) for a backend you manage"
    )]
    NotLoggedIn { detail: String },
    #[error("could not run {}: {source}", path.display())]
    Spawn {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("`pulumi {command}` exited with code {code}")]
    Exited { command: String, code: i32 },
    #[error("`pulumi {command}` was killed by a signal")]
    Killed { command: String },
}

impl PulumiError {
    /// The exit code this command should end with: pulumi's own when it ran and failed.
    pub fn exit_code(&self) -> u8 {
        match self {
            PulumiError::Exited { code, .. } => u8::try_from(*code).unwrap_or(1).max(1),
            _ => 1,
        }
    }
}

/// The exit code for an error of any command: pulumi's when pulumi failed, else 1.
pub fn exit_code(err: &anyhow::Error) -> u8 {
    err.chain()
        .find_map(|cause| cause.downcast_ref::<PulumiError>())
        .map_or(1, PulumiError::exit_code)
}

pub struct Pulumi {
    pub path: PathBuf,
    root: PathBuf,
}

impl Pulumi {
    /// The `pulumi` on PATH, to run in the project directory `root`.
    pub fn locate(root: &Path) -> Result<Pulumi, PulumiError> {
        let path = which("pulumi").ok_or(PulumiError::NotInstalled)?;
        Ok(Pulumi {
            path,
            root: root.to_path_buf(),
        })
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(&self.path);
        command.args(args).current_dir(&self.root);
        command
    }

    /// The logged-in identity; an error that says how to log in when there is none.
    pub fn whoami(&self) -> Result<String, PulumiError> {
        let output = self
            .command(&["whoami"])
            .stdin(Stdio::null())
            .output()
            .map_err(|source| self.spawn_error(source))?;
        if output.status.success() {
            return Ok(String::from_utf8_lossy(&output.stdout).trim().to_string());
        }
        let stderr = String::from_utf8_lossy(&output.stderr);
        let detail = stderr
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .unwrap_or("no message")
            .to_string();
        Err(PulumiError::NotLoggedIn { detail })
    }

    /// Runs `pulumi ARGS` with the terminal attached: output streams, prompts work.
    ///
    /// Ctrl-C reaches pulumi from the terminal too, and pulumi cancels an update cleanly (a
    /// second Ctrl-C forces it). This command waits for that instead of dying first, so
    /// pulumi's last words stay on screen and its exit code is still ours.
    pub fn run(&self, args: &[&str]) -> Result<(), PulumiError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|source| self.spawn_error(source))?;
        runtime.block_on(async {
            // Installed before pulumi starts: from then on SIGINT no longer ends this process.
            let mut interrupts = tokio::signal::unix::signal(SignalKind::interrupt())
                .map_err(|source| self.spawn_error(source))?;
            let mut child = tokio::process::Command::from(self.command(args))
                .spawn()
                .map_err(|source| self.spawn_error(source))?;
            loop {
                tokio::select! {
                    biased;
                    _ = interrupts.recv() => {
                        eprintln!("interrupted: waiting for pulumi to stop");
                    }
                    status = child.wait() => {
                        return check(args, status.map_err(|source| self.spawn_error(source))?);
                    }
                }
            }
        })
    }

    /// Runs `pulumi ARGS` and returns its stdout; its stderr goes to ours.
    pub fn capture(&self, args: &[&str]) -> Result<String, PulumiError> {
        let output = self
            .command(args)
            .stdin(Stdio::null())
            .stderr(Stdio::inherit())
            .output()
            .map_err(|source| self.spawn_error(source))?;
        check(args, output.status)?;
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    fn spawn_error(&self, source: std::io::Error) -> PulumiError {
        PulumiError::Spawn {
            path: self.path.clone(),
            source,
        }
    }
}

fn check(args: &[&str], status: std::process::ExitStatus) -> Result<(), PulumiError> {
    let command = args.join(" ");
    match status.code() {
        Some(0) => Ok(()),
        Some(code) => Err(PulumiError::Exited { command, code }),
        None => Err(PulumiError::Killed { command }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pulumi_exit_codes_pass_through_any_context() {
        let err = anyhow::Error::new(PulumiError::Exited {
            command: "up --stack dev --yes".into(),
            code: 3,
        })
        .context("deploying dev");
        assert_eq!(exit_code(&err), 3);
        assert_eq!(exit_code(&anyhow::anyhow!("other failure")), 1);
        let odd = PulumiError::Exited {
            command: "up".into(),
            code: 300,
        };
        assert_eq!(odd.exit_code(), 1);
    }
}
