//! `dlq --redrive` against the local pipeline on the shared moto server: the dev stack's
//! resources under a fresh suffix, and the local runner standing in for Lambda (dev: no async
//! retries, so a failed event goes straight to the DLQ).

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::Utc;
use harness::dlq::{self, Outcome, Policy, redrive::Hold};
use harness::faults::{FaultProxy, Writes};
use harness::local::runner::Runner;
use harness::scenario::Clients;
use infra::model::Model;
use infra::outputs::Outputs;
use tokio::sync::watch;

/// How long any one redrive may take here before the test calls it unbounded.
const BOUND: Duration = Duration::from_secs(240);

struct Stack {
    sdk: aws_config::SdkConfig,
    model: Model,
    outputs: Outputs,
    clients: Clients,
    policy: Policy,
    /// Stops the runner when dropped.
    _runner: Option<watch::Sender<bool>>,
}

impl Stack {
    async fn create() -> Stack {
        let endpoint = harness::moto::shared().endpoint.clone();
        let mut config = infra::stack::StackConfig::load(&infra::workspace_root(), "dev")
            .expect("stacks/dev.yaml loads");
        config.environment = format!("rd{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
        let model = Model::from_stack(&config);
        let sdk = harness::aws::local_sdk_config(&endpoint).await;
        let outputs = harness::local::provision::provision(&sdk, &model, &endpoint)
            .await
            .expect("provisioned in moto");
        let clients = Clients::for_stack(&outputs).await;
        let policy = Policy::for_stack(&model).expect("policy");
        Stack {
            sdk,
            model,
            outputs,
            clients,
            policy,
            _runner: None,
        }
    }

    /// The stack's own runner: the processor over the stack's tables, dev's retries.
    fn runner(&self) -> Runner {
        let mut runner =
            harness::local::runner_for(&self.sdk, &self.model, &self.outputs, 0).expect("runner");
        runner.retry_delay = Duration::from_millis(10);
        runner
    }

    /// A runner whose processor reaches DynamoDB through `config` and, if given, a market-data
    /// table other than the stack's.
    fn runner_through(&self, config: &aws_config::SdkConfig, table: Option<&str>) -> Runner {
        let mut env: HashMap<String, String> =
            self.model.function.env.clone().into_iter().collect();
        if let Some(table) = table {
            env.insert(names::ENV_MARKET_DATA_TABLE.into(), table.into());
        }
        let settings = names::Settings::from_map(&env).expect("settings");
        let mut runner = self.runner();
        runner.processor =
            processor::Processor::new(settings, processor::aws::dynamodb_client(config));
        runner
    }

    fn start(&mut self, runner: Runner) {
        let (stop, stopped) = watch::channel(false);
        tokio::spawn(runner.run(stopped));
        self._runner = Some(stop);
    }

    async fn redrive(&self, options: &dlq::Options) -> dlq::Redriven {
        tokio::time::timeout(
            BOUND,
            dlq::redrive(&self.clients, &self.outputs, &self.policy, options),
        )
        .await
        .expect("the redrive must end by itself")
        .expect("redrive")
    }

    async fn letters(&self) -> Vec<dlq::Letter> {
        dlq::list(&self.clients.sqs, &self.outputs.dlq_url)
            .await
            .expect("list the DLQ")
    }

    /// Waits until the DLQ holds `n` letters.
    async fn await_letters(&self, n: usize) -> Vec<dlq::Letter> {
        for _ in 0..120 {
            let letters = self.letters().await;
            if letters.len() >= n {
                return letters;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        panic!("the DLQ never held {n} letters");
    }

    async fn put_letter(&self, body: &str) {
        self.clients
            .sqs
            .send_message()
            .queue_url(&self.outputs.dlq_url)
            .message_body(body)
            .send()
            .await
            .expect("send to DLQ");
    }

    /// Publishes one event to the stack's bus; its envelope id.
    async fn publish(&self, detail_type: &str, detail: &serde_json::Value) -> String {
        let entry = aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
            .event_bus_name(&self.outputs.event_bus_name)
            .source(names::DEFAULT_SOURCE)
            .detail_type(detail_type)
            .detail(detail.to_string())
            .build();
        let output = self
            .clients
            .events
            .put_events()
            .entries(entry)
            .send()
            .await
            .expect("PutEvents");
        output.entries()[0]
            .event_id()
            .expect("the bus accepted the event")
            .to_string()
    }

    async fn scan(
        &self,
        table: &str,
        key: &str,
        value: &str,
    ) -> Vec<HashMap<String, AttributeValue>> {
        let mut items = Vec::new();
        let mut pages = self
            .clients
            .dynamodb
            .scan()
            .table_name(table)
            .filter_expression("#k = :v")
            .expression_attribute_names("#k", key)
            .expression_attribute_values(":v", AttributeValue::S(value.into()))
            .consistent_read(true)
            .into_paginator()
            .items()
            .send();
        while let Some(item) = pages.next().await {
            items.push(item.expect("scan"));
        }
        items
    }

    /// Market-data records of `symbol` (guards carry no symbol).
    async fn records(&self, symbol: &str) -> Vec<HashMap<String, AttributeValue>> {
        self.scan(&self.outputs.market_data_table_name, names::SYMBOL, symbol)
            .await
    }

    /// Statuses of the audit entries of `event_id`.
    async fn audits(&self, event_id: &str) -> Vec<String> {
        self.scan(
            &self.outputs.audit_trail_table_name,
            names::EVENT_ID,
            event_id,
        )
        .await
        .iter()
        .filter_map(|item| text(item, names::STATUS))
        .collect()
    }
}

fn text(item: &HashMap<String, AttributeValue>, key: &str) -> Option<String> {
    match item.get(key) {
        Some(AttributeValue::S(s)) => Some(s.clone()),
        _ => None,
    }
}

fn unique(prefix: &str) -> String {
    format!(
        "{prefix}{}",
        uuid::Uuid::new_v4().simple().to_string()[..8].to_uppercase()
    )
}

/// `time` to the second, as EventBridge writes it.
fn envelope_time(time: chrono::DateTime<Utc>) -> String {
    time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn quote(id: &str, source: &str, symbol: &str, time: &str) -> String {
    format!(
        r#"{{"version":"0","id":"{id}","detail-type":"Market Quote","source":"{source}","account":"123456789012","time":"{time}","region":"us-east-1","resources":[],"detail":{{"exchange":"NYSE","symbol":"{symbol}","bid":"221.14","ask":"221.16"}}}}"#
    )
}

/// Lambda's on-failure record of `event`, as the runner writes it.
fn destination_record(event: &str) -> String {
    format!(
        r#"{{"version":"1.0","requestContext":{{"condition":"RetriesExhausted","approximateInvokeCount":1}},"requestPayload":{event},"responsePayload":{{"errorType":"TransientStoreError","errorMessage":"DynamoDB throttled the write"}}}}"#
    )
}

fn settle(seconds: u64) -> dlq::Options {
    dlq::Options {
        settle: Duration::from_secs(seconds),
        stop_after_publish: false,
    }
}

/// A crash between PutEvents and DeleteMessage leaves the letter of a published event in the
/// queue, and the next redrive publishes it again. Both copies name the original, meet its
/// record key, and the quote is stored once: one PROCESSED, one DUPLICATE.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redrive_repeated_after_a_crash_stores_a_quote_once() {
    let mut stack = Stack::create().await;
    let symbol = unique("CRASH");
    let id = format!("ev-{}", symbol.to_lowercase());
    let event = quote(&id, "market.data", &symbol, &envelope_time(Utc::now()));
    stack.put_letter(&destination_record(&event)).await;

    // Twice, before the processor has seen either copy: the second run cannot find a record.
    let crash = dlq::Options {
        settle: Duration::from_secs(1),
        stop_after_publish: true,
    };
    for _ in 0..2 {
        let crashed = stack.redrive(&crash).await;
        assert_eq!(
            (crashed.copies.len(), crashed.deleted),
            (1, 0),
            "{}",
            crashed.report()
        );
        assert_eq!(
            stack.letters().await.len(),
            1,
            "the letter survives the crash"
        );
    }
    stack.start(stack.runner());
    let mut statuses = Vec::new();
    for _ in 0..120 {
        statuses = stack.audits(&id).await;
        if statuses.len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    statuses.sort();
    assert_eq!(statuses, ["DUPLICATE", "PROCESSED"]);
    let records = stack.records(&symbol).await;
    assert_eq!(records.len(), 1, "{records:#?}");
    assert_eq!(
        text(&records[0], names::EVENT_ID).as_deref(),
        Some(id.as_str())
    );

    // The run after the crash finds the event stored and clears its letter.
    let after = stack.redrive(&settle(10)).await;
    let report = after.report();
    println!("{report}");
    assert_eq!(
        (after.already_stored, after.copies.len()),
        (1, 0),
        "{report}"
    );
    assert_eq!(after.remaining(), 0, "{report}");
    assert!(stack.letters().await.is_empty(), "{report}");
    assert_eq!(stack.records(&symbol).await.len(), 1);
}

/// A letter whose event no rule of the stack matches stays, with the field and the patterns:
/// published, the bus would accept it and deliver it nowhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_letter_no_rule_matches_is_kept_with_the_reason() {
    let mut stack = Stack::create().await;
    stack.start(stack.runner());
    let symbol = unique("NORULE");
    let event = quote(
        "ev-norule",
        "legacy.feed",
        &symbol,
        &envelope_time(Utc::now()),
    );
    stack.put_letter(&destination_record(&event)).await;

    let done = stack.redrive(&settle(5)).await;
    let report = done.report();
    println!("{report}");
    assert!(done.copies.is_empty(), "{report}");
    assert_eq!(done.kept.len(), 1, "{report}");
    assert_eq!(done.kept[0].hold, Hold::NoRule, "{report}");
    assert_eq!(done.remaining(), 1, "{report}");
    assert!(
        report.contains(r#"source "legacy.feed" matches no rule of the stack"#),
        "{report}"
    );
    assert!(report.contains(r#""source":["market.data"]"#), "{report}");
    let left = stack.letters().await;
    assert_eq!(left.len(), 1, "the letter stays");
    assert_eq!(left[0].record_id(), Some("ev-norule"));
}

/// A letter whose event is older than the processor's age limit stays: a copy would be
/// REJECTED and the letter gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_letter_past_the_event_age_limit_is_kept_with_the_reason() {
    let mut stack = Stack::create().await;
    stack.start(stack.runner());
    let symbol = unique("OLD");
    let eight_days = envelope_time(Utc::now() - chrono::Duration::days(8));
    let event = quote("ev-old", "market.data", &symbol, &eight_days);
    stack.put_letter(&destination_record(&event)).await;

    let done = stack.redrive(&settle(5)).await;
    let report = done.report();
    println!("{report}");
    assert!(done.copies.is_empty(), "{report}");
    assert_eq!(done.kept.len(), 1, "{report}");
    assert_eq!(done.kept[0].hold, Hold::TooOld, "{report}");
    assert!(report.contains("is 8d 0h old"), "{report}");
    assert!(
        report.contains("the processor rejects events older than 7d 0h"),
        "{report}"
    );
    assert!(report.contains("docs/recovery.md"), "{report}");
    assert_eq!(stack.letters().await.len(), 1, "the letter stays");
    assert!(
        stack.audits("ev-old").await.is_empty(),
        "no copy reached the processor"
    );
}

/// An event that fails on every delivery: one redrive publishes it once, sees the copy fail
/// again, and ends, leaving that copy's letter (which names the original) for the next run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permanently_failing_event_is_redriven_once_and_reported_failed_again() {
    let mut stack = Stack::create().await;
    let runner = stack.runner_through(&stack.sdk.clone(), Some("market-data-missing"));
    stack.start(runner);
    let symbol = unique("DOOMED");
    let id = stack
        .publish(
            names::MARKET_QUOTE,
            &serde_json::json!({"exchange": "NYSE", "symbol": symbol, "bid": "1.5", "ask": "1.6"}),
        )
        .await;
    let letters = stack.await_letters(1).await;
    assert_eq!(letters[0].record_id(), Some(id.as_str()));

    let done = stack.redrive(&settle(60)).await;
    let report = done.report();
    println!("{report}");
    assert_eq!(done.copies.len(), 1, "{report}");
    let Outcome::FailedAgain(error) = &done.copies[0].outcome else {
        panic!("the copy must be reported failed again:\n{report}");
    };
    assert!(
        error.contains("market-data-missing") || error.contains("ResourceNotFound"),
        "{error}"
    );
    assert!(report.contains("failed again: StoreError"), "{report}");
    assert_eq!(done.failed_letters, 1, "{report}");
    assert_eq!(done.remaining(), 1, "{report}");

    let left = stack.letters().await;
    assert_eq!(left.len(), 1, "{left:#?}");
    assert_eq!(
        left[0].record_id(),
        Some(id.as_str()),
        "the copy names the original"
    );
    let copy = left[0].event.as_ref().expect("decodable");
    assert_eq!(
        copy.id.as_deref(),
        Some(done.copies[0].delivered_as.as_str())
    );
}

/// Finding 1 end to end: a trade claims its dedupe guard, its record write fails on every
/// attempt, the event goes to the DLQ. Once the store is back, a redrive stores it: one
/// record, one PROCESSED entry, under the original id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trade_whose_record_write_failed_after_its_guard_is_stored_by_the_redrive() {
    let mut stack = Stack::create().await;
    let faults = FaultProxy::failing(&harness::moto::shared().endpoint, Writes::Records)
        .await
        .expect("fault proxy");
    let config = faults.processor_loader().load().await;
    let runner = stack.runner_through(&config, None);
    stack.start(runner);
    let symbol = unique("STUCK");
    let trade_id = format!("NASDAQ-{symbol}-1");
    let id = stack
        .publish(
            names::TRADE_EXECUTION,
            &serde_json::json!({
                "exchange": "NASDAQ", "symbol": symbol, "price": "150.25", "volume": 100,
                "trade_id": trade_id,
                "timestamp": processor::event::format_timestamp(Utc::now()),
            }),
        )
        .await;
    let letters = stack.await_letters(1).await;
    assert_eq!(letters[0].record_id(), Some(id.as_str()));
    assert!(stack.records(&symbol).await.is_empty());
    let guards = stack
        .scan(
            &stack.outputs.market_data_table_name,
            names::GUARD_RECORD_EVENT_ID,
            &id,
        )
        .await;
    assert_eq!(guards.len(), 1, "the guard is held by the failed event");

    faults.lift();
    let done = stack.redrive(&settle(60)).await;
    let report = done.report();
    println!("{report}");
    assert_eq!(done.copies.len(), 1, "{report}");
    assert_eq!(done.copies[0].outcome, Outcome::Stored, "{report}");
    assert_eq!(done.remaining(), 0, "{report}");
    assert!(stack.letters().await.is_empty());

    let records = stack.records(&symbol).await;
    assert_eq!(records.len(), 1, "{records:#?}");
    assert_eq!(
        text(&records[0], names::EVENT_ID).as_deref(),
        Some(id.as_str())
    );
    let statuses = stack.audits(&id).await;
    assert_eq!(
        statuses.iter().filter(|s| *s == "PROCESSED").count(),
        1,
        "{statuses:?}"
    );
}
