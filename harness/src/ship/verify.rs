//! `cargo xtask verify-package`: the built package run for real before it ships. The `bootstrap`
//! from the zip runs (under qemu-user when it is for another architecture) against a Lambda
//! Runtime API on loopback and a moto endpoint, and must store a trade and reject a bad event
//! exactly as Lambda would have it do.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use aws_sdk_dynamodb::types::AttributeValue;
use tokio::process::{Child, Command};

use crate::local::provision;
use crate::moto::Moto;
use crate::runtime_api::{Reply, RuntimeApi};
use crate::session::SampleEvent;
use crate::ship::build;
use crate::ship::package;
use crate::ship::which::which;
use infra::model::Model;
use infra::stack::{Architecture, StackConfig};

/// Generous: under emulation the first invocation also pays TLS set-up and the table check.
const REPLY_TIMEOUT: Duration = Duration::from_secs(120);
const PRICE: &str = "412.07";

/// How the binary is started on this machine.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Launcher {
    Native,
    Qemu {
        qemu: PathBuf,
        /// `-L` sysroot, only when the target's loader is not installed at its own path:
        /// with the loader installed, an extra sysroot mixes two glibcs and hangs threads.
        sysroot: Option<PathBuf>,
    },
}

impl Launcher {
    fn for_binary(arch: Architecture, dynamic: bool) -> Result<Launcher> {
        if build::host_arch() == Some(arch) {
            return Ok(Launcher::Native);
        }
        let (qemu_name, loader, cross_root, loader_pkg) = match arch {
            Architecture::Arm64 => (
                "qemu-aarch64",
                "/lib/ld-linux-aarch64.so.1",
                "/usr/aarch64-linux-gnu",
                "libc6:arm64 (after `dpkg --add-architecture arm64`) or libc6-arm64-cross",
            ),
            Architecture::X86_64 => (
                "qemu-x86_64",
                "/lib64/ld-linux-x86-64.so.2",
                "/usr/x86_64-linux-gnu",
                "libc6:amd64 (after `dpkg --add-architecture amd64`) or libc6-amd64-cross",
            ),
        };
        let qemu = which(qemu_name)
            .or_else(|| which(&format!("{qemu_name}-static")))
            .ok_or_else(|| {
                anyhow!(
                    "running the {} package on this {} machine needs {qemu_name}: install \
                     qemu-user (`sudo apt-get install qemu-user` on Debian/Ubuntu); binfmt \
                     registration is not needed",
                    arch.as_str(),
                    std::env::consts::ARCH
                )
            })?;
        let sysroot = if !dynamic || Path::new(loader).exists() {
            None
        } else {
            let file_name = Path::new(loader).file_name().unwrap_or_default();
            let cross = Path::new(cross_root);
            if !cross.join("lib").join(file_name).exists() {
                bail!(
                    "the {} package is dynamically linked, and its loader {loader} is not \
                     installed: install {loader_pkg}",
                    arch.as_str()
                );
            }
            Some(cross.to_path_buf())
        };
        Ok(Launcher::Qemu { qemu, sysroot })
    }

    fn command(&self, binary: &Path) -> Command {
        match self {
            Launcher::Native => Command::new(binary),
            Launcher::Qemu { qemu, sysroot } => {
                let mut command = Command::new(qemu);
                if let Some(root) = sysroot {
                    command.arg("-L").arg(root);
                }
                command.arg(binary);
                command
            }
        }
    }

    fn describe(&self) -> String {
        match self {
            Launcher::Native => "natively".to_string(),
            Launcher::Qemu { qemu, .. } => format!("under {}", qemu.display()),
        }
    }
}

pub async fn run(root: &Path) -> Result<()> {
    let zip = build::package_path(root);
    let inspection = package::inspect(&zip)?;
    println!("{}", inspection.summary());
    let dir = root.join("target").join("verify");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    // Run what ships: the bytes inside the zip, not the build's copy next to it.
    let binary = dir.join(package::ENTRY);
    std::fs::write(&binary, package::read_bootstrap(&zip)?)
        .with_context(|| format!("writing {}", binary.display()))?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&binary, std::fs::Permissions::from_mode(0o755))
            .with_context(|| format!("making {} executable", binary.display()))?;
    }
    let launcher = Launcher::for_binary(inspection.arch, inspection.glibc.is_some())?;

    let moto = Moto::start(root)?;
    let mut config = StackConfig::load(root, "dev")?;
    config.environment = format!("verify{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let model = Model::from_stack(&config);
    let sdk = crate::aws::local_sdk_config(&moto.endpoint).await;
    let outputs = provision::provision(&sdk, &model, &moto.endpoint)
        .await
        .context("creating the tables in moto")?;
    let mut api = RuntimeApi::start()
        .await
        .context("starting the Runtime API")?;

    let log_path = dir.join("bootstrap.log");
    let log = std::fs::File::create(&log_path)
        .with_context(|| format!("creating {}", log_path.display()))?;
    let mut command = launcher.command(&binary);
    command
        .env_clear()
        .envs(&model.function.env)
        .envs(moto.env())
        .env("AWS_LAMBDA_RUNTIME_API", api.addr.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", &model.function.name)
        .env(
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
            model.function.memory_mb.to_string(),
        )
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", &model.log_group.name)
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "verify")
        .stdin(Stdio::null())
        .stdout(log.try_clone().context("bootstrap log")?)
        .stderr(log)
        .kill_on_drop(true);
    println!(
        "running {} {} against a Runtime API on {} and moto on {}",
        binary.display(),
        launcher.describe(),
        api.addr,
        moto.endpoint
    );
    let started = Instant::now();
    let mut child = command
        .spawn()
        .with_context(|| format!("starting {}", binary.display()))?;

    let result = async {
        let run_id = uuid::Uuid::new_v4().simple().to_string();
        let trade_id = format!("verify-{run_id}-trade");
        let detail = format!(
            r#"{{"exchange":"NASDAQ","symbol":"VRFY","price":"{PRICE}","volume":3,"trade_id":"{run_id}"}}"#
        );
        api.invoke("verify-1", &envelope(&trade_id, &detail));
        let outcome = expect_response(&mut api, &mut child, "verify-1").await?;
        let first = started.elapsed();
        if outcome[names::STATUS] != "PROCESSED" || outcome["event_id"] != trade_id.as_str() {
            bail!("the trade was not processed: {outcome}");
        }

        let bad_id = format!("verify-{run_id}-bad");
        api.invoke(
            "verify-2",
            &envelope(&bad_id, r#"{"exchange":"NASDAQ"}"#),
        );
        let outcome = expect_response(&mut api, &mut child, "verify-2").await?;
        if outcome[names::STATUS] != "REJECTED" {
            bail!("the invalid trade was not rejected: {outcome}");
        }

        let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
        let records = dynamodb
            .query()
            .table_name(&outputs.market_data_table_name)
            .key_condition_expression("#id = :id")
            .expression_attribute_names("#id", names::EVENT_ID)
            .expression_attribute_values(":id", AttributeValue::S(trade_id.clone()))
            .send()
            .await
            .map_err(|e| crate::aws::sdk_error("Query", e))?
            .items
            .unwrap_or_default();
        let price = records.first().and_then(|r| match r.get(names::PRICE) {
            Some(AttributeValue::N(n)) => Some(n.clone()),
            _ => None,
        });
        if records.len() != 1 || price.as_deref() != Some(PRICE) {
            bail!(
                "expected one record of {trade_id} with price {PRICE} in {}, found {records:?}",
                outputs.market_data_table_name
            );
        }
        let audits = audit_statuses(&dynamodb, &outputs.audit_trail_table_name).await?;
        for (id, status) in [(&trade_id, "PROCESSED"), (&bad_id, "REJECTED")] {
            if audits.get(id.as_str()).map(String::as_str) != Some(status) {
                bail!("expected a {status} audit entry for {id}, found {audits:?}");
            }
        }
        Ok(first)
    }
    .await;
    let _ = child.kill().await;

    match result {
        Ok(first) => {
            println!(
                "ok: the {} bootstrap stored a trade (price {PRICE}) with its PROCESSED audit \
                 entry and rejected an invalid event; first reply {:.1} s after start",
                inspection.arch.as_str(),
                first.as_secs_f64()
            );
            Ok(())
        }
        Err(err) => Err(err.context(format!(
            "package verification failed; the bootstrap's output ({}) ends with:\n{}",
            log_path.display(),
            tail(&log_path, 30)
        ))),
    }
}

/// A trade under envelope id `id`, timed now.
fn envelope(id: &str, detail: &str) -> String {
    let time = processor::event::format_timestamp(chrono::Utc::now());
    SampleEvent::stored(names::TRADE_EXECUTION, detail.to_string()).envelope(id, &time)
}

async fn expect_response(
    api: &mut RuntimeApi,
    child: &mut Child,
    request_id: &str,
) -> Result<serde_json::Value> {
    let reply = tokio::select! {
        reply = api.reply() => reply.ok_or_else(|| anyhow!("the Runtime API stopped"))?,
        status = child.wait() => bail!("bootstrap exited before answering {request_id}: {status:?}"),
        _ = tokio::time::sleep(REPLY_TIMEOUT) => {
            bail!("bootstrap did not answer {request_id} within {} s", REPLY_TIMEOUT.as_secs())
        }
    };
    match reply {
        Reply::Response {
            request_id: id,
            body,
        } if id == request_id => serde_json::from_str(&body)
            .with_context(|| format!("the response to {request_id} is not JSON: {body}")),
        other => bail!("expected the response to {request_id}, got {other:?}"),
    }
}

/// event_id → status of every audit entry (a small throwaway table: a scan is fine).
async fn audit_statuses(
    dynamodb: &aws_sdk_dynamodb::Client,
    table: &str,
) -> Result<HashMap<String, String>> {
    let items = dynamodb
        .scan()
        .table_name(table)
        .send()
        .await
        .map_err(|e| crate::aws::sdk_error("Scan", e))?
        .items
        .unwrap_or_default();
    let text = |item: &HashMap<String, AttributeValue>, key: &str| match item.get(key) {
        Some(AttributeValue::S(s)) => Some(s.clone()),
        _ => None,
    };
    Ok(items
        .iter()
        .filter_map(|item| Some((text(item, names::EVENT_ID)?, text(item, names::STATUS)?)))
        .collect())
}

fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_architecture_runs_natively() {
        let host = build::host_arch().expect("tests run on x86_64 or aarch64");
        assert_eq!(
            Launcher::for_binary(host, true).expect("native"),
            Launcher::Native
        );
    }
}
