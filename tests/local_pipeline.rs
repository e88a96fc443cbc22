//! The local pipeline, run as a user runs it: the `cargo xtask` binary against moto.

use std::path::PathBuf;
use std::process::{Command, Output};

/// Tests that use `local up` share target/local/ and take turns.
static LOCAL_STATE: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn root() -> PathBuf {
    tests::workspace_root()
}

fn xtask(args: &[&str]) -> Output {
    Command::new(tests::xtask())
        .args(args)
        .current_dir(root())
        .env_remove("AWS_ENDPOINT_URL")
        .output()
        .expect("run xtask")
}

fn text(output: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The value of a summary row such as `  lost    0`.
fn row(text: &str, label: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        l.trim_start()
            .strip_prefix(label)
            .and_then(|rest| rest.trim().parse().ok())
    })
}

#[test]
fn e2e_against_a_fresh_local_stack_accounts_for_every_event() {
    let output = xtask(&[
        "e2e",
        "--local",
        "--events",
        "1000",
        "--double-deliveries",
        "20",
        "--rate",
        "40",
    ]);
    let out = text(&output);
    println!("{out}");
    assert!(output.status.success(), "{out}");
    assert_eq!(row(&out, "published"), Some(1020), "{out}");
    assert_eq!(row(&out, "lost"), Some(0), "{out}");
    assert_eq!(row(&out, "stored twice"), Some(0), "{out}");
    assert_eq!(row(&out, "unexpected outcome"), Some(0), "{out}");
    assert!(
        row(&out, "redeliveries absorbed").unwrap_or(0) >= 20,
        "{out}"
    );
    assert!(
        row(&out, "duplicates (re-published)").unwrap_or(0) > 0,
        "{out}"
    );
    assert!(
        row(&out, "rejected (with reason)").unwrap_or(0) > 0,
        "{out}"
    );
    assert!(
        row(&out, "unrouted (no rule matches)").unwrap_or(0) > 0,
        "{out}"
    );
    assert!(out.contains("put -> stored latency"), "{out}");
}

#[test]
fn local_runs_the_session_and_prints_a_summary_and_a_query() {
    let output = xtask(&["local", "--events", "400"]);
    let out = text(&output);
    println!("{out}");
    assert!(output.status.success(), "{out}");
    assert_eq!(row(&out, "published"), Some(400), "{out}");
    assert_eq!(row(&out, "lost"), Some(0), "{out}");
    assert_eq!(row(&out, "stored twice"), Some(0), "{out}");
    assert!(
        out.contains("latest AAPL trades through SymbolIndex"),
        "{out}"
    );
    assert!(out.contains("Trade Execution"), "{out}");
    assert!(out.contains("latest for AAPL:"), "{out}");
    assert!(out.contains("trade#NASDAQ"), "{out}");
}

/// `local up` leaves a stack running for the user's own events until `local down`.
#[test]
fn local_up_send_query_down() {
    struct Down;
    impl Drop for Down {
        fn drop(&mut self) {
            let _ = xtask(&["local", "down"]);
        }
    }
    let _turn = LOCAL_STATE.lock().unwrap_or_else(|e| e.into_inner());
    let _ = xtask(&["local", "down"]);
    let up = xtask(&["local", "up"]);
    let _down = Down;
    assert!(up.status.success(), "{}", text(&up));
    let outputs = root().join("target/local/outputs.json");
    let outputs_text = std::fs::read_to_string(&outputs).expect("outputs written");
    let outputs_json: serde_json::Value = serde_json::from_str(&outputs_text).unwrap();
    for key in [
        "event_bus_name",
        "market_data_table_name",
        "audit_trail_table_name",
        "dlq_url",
        "endpoint_url",
        "region",
    ] {
        assert!(
            outputs_json[key].is_string(),
            "{key} missing: {outputs_text}"
        );
    }

    let again = xtask(&["local", "up"]);
    assert!(!again.status.success());
    assert!(text(&again).contains("already up"), "{}", text(&again));

    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let feed = root().join("target/local/test-feed.jsonl");
    std::fs::write(
        &feed,
        format!(
            "{{\"source\":\"market.data\",\"detail-type\":\"Trade Execution\",\"detail\":{{\"exchange\":\"NASDAQ\",\"symbol\":\"ZZTEST\",\"price\":\"12345678.000001\",\"volume\":7,\"timestamp\":\"{now}\"}}}}\n\
             not json\n\
             {{\"source\":\"market.data\",\"detail-type\":\"Market Quote\",\"detail\":{{\"exchange\":\"NYSE\",\"symbol\":\"ZZTEST\",\"bid\":\"1.5\",\"ask\":\"1.6\",\"timestamp\":\"{now}\"}}}}\n"
        ),
    )
    .unwrap();
    let send = xtask(&["local", "send", feed.to_str().unwrap()]);
    let send_text = text(&send);
    assert!(
        !send.status.success(),
        "a malformed line fails the command: {send_text}"
    );
    assert!(send_text.contains("line 2:"), "{send_text}");
    assert!(send_text.contains("published 2 events"), "{send_text}");

    // The background runner stores them shortly.
    let mut found = String::new();
    for _ in 0..60 {
        let query = xtask(&["local", "query", "--symbol", "ZZTEST"]);
        found = text(&query);
        if found.contains("12345678.000001") && found.contains("Market Quote") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    assert!(found.contains("12345678.000001"), "{found}");
    assert!(found.contains("Market Quote"), "{found}");

    let down = xtask(&["local", "down"]);
    assert!(down.status.success(), "{}", text(&down));
    assert!(!outputs.exists());
}

#[test]
fn a_taken_port_is_one_clear_error_and_nothing_is_left_running() {
    let _turn = LOCAL_STATE.lock().unwrap_or_else(|e| e.into_inner());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let output = xtask(&["local", "up", "--port", &port, "--stack", "dev"]);
    let out = text(&output);
    assert!(!output.status.success(), "{out}");
    assert!(
        out.contains(&format!("port {port} on 127.0.0.1 is already in use")),
        "{out}"
    );
    assert!(!out.contains("panicked"), "{out}");
}

#[test]
fn an_unknown_stack_is_named_with_the_ones_that_exist() {
    let output = xtask(&["local", "--stack", "qa", "--events", "10"]);
    let out = text(&output);
    assert!(!output.status.success(), "{out}");
    assert!(out.contains("qa"), "{out}");
    assert!(out.contains("dev") && out.contains("prod"), "{out}");
}

/// A tenth of the events delivered twice, a fifth of the processor's DynamoDB calls faulted
/// (throttling, 500s, timeouts, resets, lost acknowledgements): every event still ends stored
/// once, as a duplicate, rejected with its reason, or in the DLQ with its error. The same run
/// with 10 000 events: `cargo xtask e2e --local --events 10000 --faults 0.2 --redeliver-rate 0.1`.
#[test]
fn under_faults_and_redelivery_nothing_is_lost_or_stored_twice() {
    let output = xtask(&[
        "e2e",
        "--local",
        "--events",
        "2000",
        "--faults",
        "0.2",
        "--redeliver-rate",
        "0.1",
        "--double-deliveries",
        "20",
        "--timeout",
        "600",
    ]);
    let out = text(&output);
    println!("{out}");
    assert!(output.status.success(), "{out}");
    assert_eq!(row(&out, "published"), Some(2_020), "{out}");
    assert_eq!(row(&out, "lost"), Some(0), "{out}");
    assert_eq!(row(&out, "stored twice"), Some(0), "{out}");
    assert_eq!(row(&out, "unexpected outcome"), Some(0), "{out}");
    assert!(
        row(&out, "redeliveries absorbed").unwrap_or(0) > 100,
        "{out}"
    );
    assert!(out.contains("faults injected"), "{out}");
    assert!(!out.contains("faults injected (Throughput 0"), "{out}");
}

/// A faulted run, its DLQ redriven, then the whole run replayed from the archive under new
/// envelope ids (the redriven copies are in the archive too): nothing is stored again, and
/// every replayed event is accounted for as already there or rejected with its reason.
#[test]
fn a_replay_after_faults_and_a_redrive_stores_nothing_twice() {
    let output = xtask(&[
        "e2e",
        "--local",
        "--events",
        "300",
        "--faults",
        "0.1",
        "--redrive",
        "2",
        "--replay",
        "new",
        "--timeout",
        "600",
    ]);
    let out = text(&output);
    println!("{out}");
    assert!(output.status.success(), "{out}");
    let tally = &out[out.find(" done:").expect("the replay's tally")..];
    assert_eq!(row(tally, "stored new"), Some(0), "{out}");
    let replayed = row(tally, "replayed").expect("a replay count");
    let there = row(tally, "already there").unwrap_or(0);
    let rejected = row(tally, "rejected").unwrap_or(0);
    assert!(replayed > 250, "{out}");
    assert_eq!(there + rejected, replayed, "{out}");
}
