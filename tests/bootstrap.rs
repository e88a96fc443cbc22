//! The real `bootstrap` binary, served by a Lambda Runtime API on loopback, storing into moto.

use std::process::Stdio;
use std::time::Duration;

use harness::runtime_api::{Reply, RuntimeApi};
use tests::tables::{Tables, envelope, statuses};
use tokio::process::{Child, Command};

fn bootstrap(api: Option<&RuntimeApi>, market: &str, audit: &str) -> Command {
    // The latest table is named like the others of the same test's tables.
    let latest = market.replace(names::MARKET_DATA_TABLE_PREFIX, names::LATEST_TABLE_PREFIX);
    let mut cmd = Command::new(tests::binary("processor", "bootstrap"));
    cmd.env_clear()
        .envs(harness::moto::shared().env())
        .env(names::ENV_MARKET_DATA_TABLE, market)
        .env(names::ENV_AUDIT_TRAIL_TABLE, audit)
        .env(names::ENV_LATEST_TABLE, latest)
        .env(names::ENV_ENVIRONMENT, "test")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(api) = api {
        cmd.env("AWS_LAMBDA_RUNTIME_API", api.addr.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", "market-processor-test")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST");
    }
    cmd
}

async fn reply(api: &mut RuntimeApi, child: &mut Child) -> Reply {
    tokio::select! {
        reply = api.reply() => reply.expect("runtime API running"),
        status = child.wait() => panic!("bootstrap exited early: {status:?}"),
        _ = tokio::time::sleep(Duration::from_secs(60)) => panic!("no reply within 60 s"),
    }
}

#[tokio::test]
async fn bootstrap_processes_events_end_to_end() {
    let tables = Tables::create().await;
    let mut api = RuntimeApi::start().await.expect("runtime API");
    let mut child = bootstrap(Some(&api), &tables.market_data, &tables.audit_trail)
        .spawn()
        .expect("spawn bootstrap");

    api.invoke(
        "req-1",
        &envelope(
            "e-1",
            "Trade Execution",
            r#"{"exchange":"NASDAQ","symbol":"MSFT","price":"412.07","volume":3}"#,
        ),
    );
    match reply(&mut api, &mut child).await {
        Reply::Response { request_id, body } => {
            assert_eq!(request_id, "req-1");
            let outcome: serde_json::Value = serde_json::from_str(&body).unwrap();
            assert_eq!(outcome[names::STATUS], "PROCESSED", "{body}");
            assert_eq!(outcome["event_id"], "e-1");
        }
        other => panic!("unexpected {other:?}"),
    }

    api.invoke(
        "req-2",
        &envelope("e-2", "Trade Execution", r#"{"exchange":"NASDAQ"}"#),
    );
    match reply(&mut api, &mut child).await {
        Reply::Response { body, .. } => {
            assert!(body.contains("REJECTED"), "{body}");
            assert!(body.contains("detail.symbol: is required"), "{body}");
        }
        other => panic!("unexpected {other:?}"),
    }
    child.kill().await.ok();

    let records = tables.records().await;
    assert_eq!(records.len(), 1);
    assert_eq!(tests::tables::n(&records[0], names::PRICE), "412.07");
    assert_eq!(statuses(&tables.audits().await), ["PROCESSED", "REJECTED"]);

    // Logs are JSON lines with the request id and outcome; metrics are EMF documents.
    let output = child.wait_with_output().await.expect("output");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let logs: Vec<serde_json::Value> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert!(
        logs.iter()
            .any(|l| l["request_id"] == "req-1" && l["outcome"] == "PROCESSED"),
        "{stdout}"
    );
    assert!(
        logs.iter()
            .any(|l| l["Processed"] == 1 && l["_aws"]["CloudWatchMetrics"].is_array()),
        "{stdout}"
    );
}

/// Payloads the runtime cannot hand to the handler (not UTF-8, not JSON) end as invocation
/// errors, which Lambda retries and dead-letters, and the process goes on serving.
#[tokio::test]
async fn undecodable_payloads_are_invocation_errors_and_the_runtime_goes_on() {
    let tables = Tables::create().await;
    let mut api = RuntimeApi::start().await.expect("runtime API");
    let mut child = bootstrap(Some(&api), &tables.market_data, &tables.audit_trail)
        .spawn()
        .expect("spawn bootstrap");

    let payloads: [(&str, &[u8]); 3] = [
        ("req-bytes", b"\xff\xfe{\"id\":\"\xc3\x28\"}"),
        ("req-text", b"not json at all"),
        ("req-cut", b"{\"id\":\"e-cut\",\"detail\":{"),
    ];
    for (request_id, payload) in payloads {
        api.invoke_bytes(request_id, payload);
        match reply(&mut api, &mut child).await {
            Reply::Error {
                request_id: id,
                body,
            } => {
                assert_eq!(id, request_id);
                let error: serde_json::Value = serde_json::from_str(&body).expect("error JSON");
                assert!(
                    error["errorType"].as_str().is_some_and(|t| !t.is_empty()),
                    "{body}"
                );
                assert!(
                    error["errorMessage"]
                        .as_str()
                        .is_some_and(|m| m.contains("deserialize")),
                    "{body}"
                );
            }
            other => panic!("{request_id}: unexpected {other:?}"),
        }
    }

    api.invoke(
        "req-after",
        &envelope(
            "e-after",
            "Trade Execution",
            r#"{"exchange":"NASDAQ","symbol":"MSFT","price":"1.5","volume":1}"#,
        ),
    );
    match reply(&mut api, &mut child).await {
        Reply::Response { body, .. } => assert!(body.contains("PROCESSED"), "{body}"),
        other => panic!("unexpected {other:?}"),
    }
    child.kill().await.ok();
    assert_eq!(tables.records().await.len(), 1);
}

#[tokio::test]
async fn bootstrap_outside_lambda_says_what_is_missing() {
    let output = bootstrap(None, "a", "b").output().await.expect("run");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("AWS_LAMBDA_RUNTIME_API"), "{stderr}");
}

#[tokio::test]
async fn bootstrap_without_table_variable_names_it() {
    let api = RuntimeApi::start().await.expect("runtime API");
    let output = bootstrap(Some(&api), "a", "b")
        .env_remove(names::ENV_MARKET_DATA_TABLE)
        .output()
        .await
        .expect("run");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("MARKET_DATA_TABLE is required"), "{stderr}");
}

#[tokio::test]
async fn bootstrap_with_a_missing_table_fails_init() {
    let tables = Tables::create().await;
    let api = RuntimeApi::start().await.expect("runtime API");
    let output = bootstrap(Some(&api), &tables.market_data, "audit-trail-missing")
        .output()
        .await
        .expect("run");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("audit-trail-missing"), "{stderr}");
    assert!(stderr.contains("AUDIT_TRAIL_TABLE"), "{stderr}");
}

#[tokio::test]
async fn a_panic_in_the_handler_fails_that_invocation_and_the_runtime_goes_on() {
    let tables = Tables::create().await;
    let mut api = RuntimeApi::start().await.expect("runtime API");
    let mut child = bootstrap(Some(&api), &tables.market_data, &tables.audit_trail)
        .env("BOOTSTRAP_PANIC_PROBE", "e-panic")
        .spawn()
        .expect("spawn bootstrap");
    let trade = r#"{"exchange":"NASDAQ","symbol":"MSFT","price":"412.07","volume":3}"#;

    api.invoke("req-panic", &envelope("e-panic", "Trade Execution", trade));
    match reply(&mut api, &mut child).await {
        // An invocation error: Lambda retries the event and then dead-letters it.
        Reply::Error { request_id, body } => {
            assert_eq!(request_id, "req-panic");
            let error: serde_json::Value = serde_json::from_str(&body).unwrap();
            assert!(
                error["errorMessage"]
                    .as_str()
                    .is_some_and(|m| m.contains("panicking on purpose")),
                "{body}"
            );
        }
        other => panic!("unexpected {other:?}"),
    }
    // The same process serves the next invocation.
    api.invoke("req-next", &envelope("e-next", "Trade Execution", trade));
    match reply(&mut api, &mut child).await {
        Reply::Response { body, .. } => assert!(body.contains("PROCESSED"), "{body}"),
        other => panic!("unexpected {other:?}"),
    }
    assert!(
        child.try_wait().expect("child status").is_none(),
        "bootstrap exited"
    );
    child.kill().await.ok();
    assert_eq!(tables.records().await.len(), 1);
}
