//! `cargo xtask send`, `dlq` and `e2e --stack` through the binary, against a stack made of moto
//! resources (on the shared moto server) and, for `--stack`, a fake pulumi that
//! reports that stack's outputs.

use tests::cli::{Scratch, describe, text};

fn endpoint() -> String {
    harness::moto::shared().endpoint.clone()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Runtime::new().expect("tokio runtime")
}

/// The dev stack's resources, provisioned in moto by the local pipeline's own provisioner under a
/// fresh suffix (the tests share one moto server); `outputs` is the outputs JSON describing them.
struct MotoStack {
    config: aws_config::SdkConfig,
    model: infra::model::Model,
    outputs: serde_json::Value,
    delivery_url: String,
}

impl MotoStack {
    async fn create(name: &str) -> MotoStack {
        let endpoint = endpoint();
        let config = processor::aws::loader()
            .endpoint_url(&endpoint)
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_sqs::config::Credentials::new(
                "test", "test", None, None, "tests",
            ))
            .load()
            .await;
        let mut stack = infra::stack::StackConfig::load(&infra::workspace_root(), name)
            .expect("the stack file loads");
        stack.environment = format!("cli{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
        let model = infra::model::Model::from_stack(&stack);
        let provisioned = harness::local::provision::provision(&config, &model, &endpoint)
            .await
            .expect("provisioned in moto");
        let delivery_url = provisioned
            .delivery_queue_url
            .clone()
            .expect("a local stack has a delivery queue");
        let mut outputs = serde_json::to_value(&provisioned).expect("outputs as JSON");
        // A deployed stack's outputs carry no region: the commands take it from the stack file.
        if let Some(fields) = outputs.as_object_mut() {
            fields.remove("region");
        }
        MotoStack {
            config,
            model,
            outputs,
            delivery_url,
        }
    }

    fn write_outputs(&self, scratch: &Scratch) -> std::path::PathBuf {
        let path = scratch.root.join("outputs.json");
        std::fs::write(&path, self.outputs.to_string()).expect("outputs file");
        path
    }

    fn dlq_url(&self) -> String {
        self.outputs["dlq_url"]
            .as_str()
            .expect("dlq url")
            .to_string()
    }

    /// Bodies of the messages on `url`, received for good.
    async fn drain(&self, url: &str) -> Vec<serde_json::Value> {
        let sqs = aws_sdk_sqs::Client::new(&self.config);
        let mut bodies = Vec::new();
        let mut empty = 0;
        while empty < 2 {
            let messages = sqs
                .receive_message()
                .queue_url(url)
                .max_number_of_messages(10)
                .visibility_timeout(60)
                .wait_time_seconds(1)
                .send()
                .await
                .expect("receive")
                .messages
                .unwrap_or_default();
            if messages.is_empty() {
                empty += 1;
            }
            for message in messages {
                bodies.push(
                    serde_json::from_str(message.body().unwrap_or_default())
                        .unwrap_or(serde_json::Value::Null),
                );
            }
        }
        bodies
    }
}

fn feed_line(symbol: &str, n: usize) -> String {
    format!(
        r#"{{"source":"market.data","detail-type":"Trade Execution","detail":{{"exchange":"NASDAQ","symbol":"{symbol}","price":"10.{n:02}","volume":{n}}}}}"#
    )
}

#[test]
fn send_publishes_a_feed_in_batches_and_names_bad_lines() {
    let rt = runtime();
    let stack = rt.block_on(MotoStack::create("dev"));
    let scratch = Scratch::new("send");
    let outputs = stack.write_outputs(&scratch);
    let mut lines: Vec<String> = (1..=12).map(|n| feed_line("SEND", n)).collect();
    lines.insert(5, r#"{"source":"market.data""#.to_string());
    let feed = scratch.root.join("feed.jsonl");
    std::fs::write(&feed, lines.join("\n")).expect("feed");

    let output = scratch
        .xtask(&[
            "send",
            "--outputs",
            &outputs.to_string_lossy(),
            &feed.to_string_lossy(),
        ])
        .output()
        .expect("run xtask");
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    assert!(
        text(&output.stdout).contains("published 12 events"),
        "{}",
        describe(&output)
    );
    assert!(
        text(&output.stderr).contains("line 6: "),
        "{}",
        describe(&output)
    );
    assert!(
        text(&output.stderr).contains("1 malformed lines"),
        "{}",
        describe(&output)
    );
    let delivered = rt.block_on(stack.drain(&stack.delivery_url));
    assert_eq!(delivered.len(), 12, "{delivered:#?}");
    assert!(delivered.iter().all(|e| e["detail"]["symbol"] == "SEND"));
}

/// The value of a summary row such as `  published     1`.
fn row(text: &str, label: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        l.trim_start()
            .strip_prefix(label)
            .and_then(|rest| rest.trim().parse().ok())
    })
}

#[test]
fn dlq_lists_each_error_and_redrive_republishes_what_it_can() {
    let rt = runtime();
    let stack = rt.block_on(MotoStack::create("dev"));
    let scratch = Scratch::new("dlq");
    let outputs = stack.write_outputs(&scratch);
    // Recent, to the second as EventBridge writes it: inside the processor's age limit.
    let time = (chrono::Utc::now() - chrono::Duration::hours(1))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let event = format!(
        r#"{{"version":"0","id":"ev-dlq-1","detail-type":"Trade Execution","source":"market.data","account":"123456789012","time":"{time}","region":"us-east-1","resources":[],"detail":{{"exchange":"NYSE","symbol":"DLQ","price":"99.5","volume":7}}}}"#
    );
    let record = format!(
        r#"{{"requestContext":{{"condition":"RetriesExhausted","approximateInvokeCount":3}},"requestPayload":{event},"responsePayload":{{"errorType":"StoreUnavailable","errorMessage":"DynamoDB throttled the write"}}}}"#
    );
    rt.block_on(async {
        let sqs = aws_sdk_sqs::Client::new(&stack.config);
        for body in [record.as_str(), "not an event"] {
            sqs.send_message()
                .queue_url(stack.dlq_url())
                .message_body(body)
                .send()
                .await
                .expect("send to DLQ");
        }
    });
    let outputs = outputs.to_string_lossy().to_string();

    let list = scratch
        .xtask(&["dlq", "--outputs", &outputs])
        .output()
        .expect("run xtask");
    assert!(list.status.success(), "{}", describe(&list));
    let stdout = text(&list.stdout);
    for needle in [
        "2 message(s)".to_string(),
        "StoreUnavailable: DynamoDB throttled the write (RetriesExhausted after 3 attempts)"
            .to_string(),
        format!("ev-dlq-1 (Trade Execution from market.data, time {time})"),
        r#""symbol":"DLQ""#.to_string(),
        "cannot be redriven: the payload is not an EventBridge event".to_string(),
    ] {
        assert!(stdout.contains(&needle), "{needle:?} missing:\n{stdout}");
    }

    // The stack's suffix is no file under stacks/: the rules to decide by must be named.
    let unnamed = scratch
        .xtask(&["dlq", "--outputs", &outputs, "--redrive"])
        .output()
        .expect("run xtask");
    assert_eq!(unnamed.status.code(), Some(1), "{}", describe(&unnamed));
    assert!(
        text(&unnamed.stderr).contains("--config STACK"),
        "{}",
        describe(&unnamed)
    );

    let redrive = scratch
        .xtask(&[
            "dlq",
            "--outputs",
            &outputs,
            "--redrive",
            "--config",
            "dev",
            "--settle-seconds",
            "1",
        ])
        .output()
        .expect("run xtask");
    assert_eq!(redrive.status.code(), Some(1), "{}", describe(&redrive));
    let out = text(&redrive.stdout);
    for (label, value) in [
        ("letters read", 2),
        ("published", 1),
        ("no outcome seen", 1),
        ("deleted", 1),
        ("kept: undecodable", 1),
        ("left in the queue", 1),
    ] {
        assert_eq!(
            row(&out, label),
            Some(value),
            "{label}: {}",
            describe(&redrive)
        );
    }
    assert!(
        out.contains("look in the audit trail"),
        "{}",
        describe(&redrive)
    );
    assert!(
        text(&redrive.stderr).contains("1 letters stay in the DLQ"),
        "{}",
        describe(&redrive)
    );
    let delivered = rt.block_on(stack.drain(&stack.delivery_url));
    assert_eq!(delivered.len(), 1, "{delivered:#?}");
    assert_eq!(delivered[0]["detail"]["symbol"], "DLQ");
    assert_eq!(delivered[0]["time"], time.as_str());
    assert_eq!(
        delivered[0]["resources"],
        serde_json::json!([format!("{}ev-dlq-1", names::REDRIVE_OF_PREFIX)])
    );

    let after = scratch
        .xtask(&["dlq", "--outputs", &outputs])
        .output()
        .expect("run xtask");
    assert!(
        text(&after.stdout).contains("1 message(s)"),
        "{}",
        describe(&after)
    );
}

#[test]
fn stack_commands_read_the_outputs_through_pulumi() {
    let rt = runtime();
    let stack = rt.block_on(MotoStack::create("dev"));
    let scratch = Scratch::new("e2e-stack");
    scratch.fake_outputs(&stack.outputs.to_string());

    let e2e = scratch
        .xtask(&[
            "e2e",
            "--stack",
            "dev",
            "--events",
            "0",
            "--double-deliveries",
            "0",
            "--timeout",
            "10",
        ])
        .output()
        .expect("run xtask");
    assert!(e2e.status.success(), "{}", describe(&e2e));
    assert!(
        text(&e2e.stdout).contains(stack.outputs["event_bus_name"].as_str().expect("bus")),
        "{}",
        describe(&e2e)
    );
    let saved: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(scratch.root.join("target/stacks/dev/outputs.json"))
            .expect("outputs saved"),
    )
    .expect("json");
    assert_eq!(
        saved["region"], "us-east-1",
        "filled in from stacks/dev.yaml"
    );
    assert_eq!(saved["dlq_url"], stack.outputs["dlq_url"]);

    let feed = scratch.root.join("feed.jsonl");
    std::fs::write(&feed, feed_line("VIA-PULUMI", 1)).expect("feed");
    let send = scratch
        .xtask(&["send", "--stack", "dev", &feed.to_string_lossy()])
        .output()
        .expect("run xtask");
    assert!(send.status.success(), "{}", describe(&send));
    assert_eq!(
        scratch.argv(),
        [
            "pulumi whoami",
            "pulumi stack output --json --stack dev",
            "pulumi whoami",
            "pulumi stack output --json --stack dev"
        ]
    );
    let delivered = rt.block_on(stack.drain(&stack.delivery_url));
    assert_eq!(delivered.len(), 1, "{delivered:#?}");
}

/// Every record on the stream, from each shard's start.
async fn stream_records(
    config: &aws_config::SdkConfig,
    stream: &str,
) -> Vec<aws_sdk_kinesis::types::Record> {
    let kinesis = aws_sdk_kinesis::Client::new(config);
    let shards = kinesis
        .list_shards()
        .stream_name(stream)
        .send()
        .await
        .expect("list shards");
    let mut out = Vec::new();
    for shard in shards.shards() {
        let iterator = kinesis
            .get_shard_iterator()
            .stream_name(stream)
            .shard_id(shard.shard_id())
            .shard_iterator_type(aws_sdk_kinesis::types::ShardIteratorType::TrimHorizon)
            .send()
            .await
            .expect("iterator")
            .shard_iterator
            .expect("an iterator");
        let records = kinesis
            .get_records()
            .shard_iterator(iterator)
            .send()
            .await
            .expect("get records");
        out.extend(records.records().iter().cloned());
    }
    out
}

/// On a stack with the stream path, `send --stack S` puts the classes the stack streams on its
/// stream with PutRecords, keyed by instrument, and the rest on the bus.
#[test]
fn send_routes_streamed_classes_through_put_records() {
    let rt = runtime();
    let stack = rt.block_on(MotoStack::create("staging"));
    let scratch = Scratch::new("send-stream");
    scratch.fake_outputs(&stack.outputs.to_string());
    let quote = |n: usize| {
        format!(
            r#"{{"source":"market.data","detail-type":"Market Quote","detail":{{"exchange":"NYSE","symbol":"STRM","bid":"10.{n:02}","ask":"10.50","bid_size":1,"ask_size":2}}}}"#
        )
    };
    let lines = [
        feed_line("BUS", 1),
        quote(1),
        quote(2),
        feed_line("BUS", 2),
        quote(3),
    ];
    let feed = scratch.root.join("feed.jsonl");
    std::fs::write(&feed, lines.join("\n")).expect("feed");
    let send = scratch
        .xtask(&["send", "--stack", "staging", &feed.to_string_lossy()])
        .output()
        .expect("run xtask");
    assert!(send.status.success(), "{}", describe(&send));
    let stream = stack.outputs["kinesis_stream_name"]
        .as_str()
        .expect("staging has a stream")
        .to_string();
    assert!(
        text(&send.stdout).contains(&format!(
            "published 5 events 2 to bus {} and 3 to stream {stream} (quote)",
            stack.outputs["event_bus_name"].as_str().unwrap_or("?")
        )),
        "{}",
        describe(&send)
    );
    let delivered = rt.block_on(stack.drain(&stack.delivery_url));
    assert_eq!(delivered.len(), 2, "{delivered:#?}");
    assert!(delivered.iter().all(|e| e["detail"]["symbol"] == "BUS"));
    let records = rt.block_on(stream_records(&stack.config, &stream));
    assert_eq!(records.len(), 3, "{records:?}");
    let mut bids = Vec::new();
    for record in &records {
        assert_eq!(record.partition_key(), Some("NYSE#STRM"));
        let event: serde_json::Value =
            serde_json::from_slice(record.data().as_ref()).expect("an envelope");
        assert!(event["id"].is_string(), "the producer sets the id: {event}");
        assert_eq!(event["detail-type"], "Market Quote");
        bids.push(event["detail"]["bid"].as_str().unwrap_or("?").to_string());
    }
    // One instrument, one shard: the order is the feed's.
    assert_eq!(bids, ["10.01", "10.02", "10.03"]);
}

/// `query --stack S` reads the deployed stack's tables (outputs through pulumi) over the bucket
/// count of stacks/S.yaml, and merges the buckets newest first.
#[test]
fn query_reads_every_bucket_of_a_deployed_stack_newest_first() {
    let rt = runtime();
    let stack = rt.block_on(MotoStack::create("dev"));
    let scratch = Scratch::new("query");
    scratch.fake_outputs(&stack.outputs.to_string());
    let buckets = stack.model.table_settings.index_buckets;
    assert!(buckets > 1, "the dev stack spreads its index keys");
    let now = chrono::Utc::now();
    let at = |n: i64| processor::event::format_timestamp(now - chrono::Duration::seconds(n));
    let used = rt.block_on(async {
        let env: std::collections::HashMap<String, String> =
            stack.model.function.env.clone().into_iter().collect();
        let settings = names::Settings::from_map(&env).expect("the model's environment");
        let processor = processor::Processor::new(
            settings,
            processor::aws::dynamodb_client(&stack.config),
        );
        let mut used = std::collections::BTreeSet::new();
        for n in 0..12_i64 {
            let (symbol, exchange) = if n % 3 == 2 { ("OTHER", "LSE") } else { ("QRY", "NASDAQ") };
            let detail = format!(
                r#"{{"exchange":"{exchange}","symbol":"{symbol}","price":"10.{n:02}","volume":{},"timestamp":"{}"}}"#,
                n + 1,
                at(n)
            );
            let id = format!("ev-query-{n:02}");
            let outcome = processor
                .process(
                    &tests::tables::envelope(&id, "Trade Execution", &detail),
                    &format!("req-{n}"),
                )
                .await
                .expect("processed");
            assert_eq!(outcome.status, "PROCESSED", "{}", outcome.reason);
            if symbol == "QRY" {
                used.insert(names::bucket_of(&id, buckets));
            }
        }
        used
    });
    assert!(
        used.len() > 1,
        "the records lie in several buckets: {used:?}"
    );

    let timestamps = |output: &std::process::Output, symbol: &str| -> Vec<String> {
        text(&output.stdout)
            .lines()
            .filter(|line| line.contains(symbol))
            .filter_map(|line| line.split_whitespace().next().map(String::from))
            .collect()
    };
    let newest = scratch
        .xtask(&["query", "--stack", "dev", "--symbol", "QRY", "--limit", "5"])
        .output()
        .expect("run xtask");
    assert!(newest.status.success(), "{}", describe(&newest));
    assert_eq!(
        timestamps(&newest, "QRY"),
        [0, 1, 3, 4, 6].map(at),
        "{}",
        describe(&newest)
    );
    let by_exchange = scratch
        .xtask(&["query", "--stack", "dev", "--exchange", "LSE"])
        .output()
        .expect("run xtask");
    assert!(by_exchange.status.success(), "{}", describe(&by_exchange));
    assert_eq!(
        timestamps(&by_exchange, "OTHER"),
        [2, 5, 8, 11].map(at),
        "{}",
        describe(&by_exchange)
    );
    assert_eq!(
        scratch.argv(),
        [
            "pulumi whoami",
            "pulumi stack output --json --stack dev",
            "pulumi whoami",
            "pulumi stack output --json --stack dev"
        ]
    );

    let neither = scratch
        .xtask(&["query", "--stack", "dev"])
        .output()
        .expect("run xtask");
    assert_eq!(neither.status.code(), Some(2), "{}", describe(&neither));
}
