//! The fault proxy, and the processor's retries through it, against the shared moto server.

use std::time::Duration;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use harness::faults::FaultProxy;

/// Each fault reaches the SDK as the error DynamoDB or the network would give.
#[tokio::test]
async fn every_request_faulted_is_an_error_and_a_lost_ack_still_lands() {
    let moto = harness::moto::shared();
    let proxy = FaultProxy::start(&moto.endpoint, 1.0, Duration::from_millis(2500), 3)
        .await
        .expect("proxy");
    let direct = harness::aws::local_sdk_config(&moto.endpoint).await;
    let direct = aws_sdk_dynamodb::Client::new(&direct);
    let table = "faults-test";
    create_table(&direct, table).await;

    // The processor's own client: Lambda timeouts, no SDK retries, so each fault shows.
    let config = proxy
        .processor_loader()
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .load()
        .await;
    let client = aws_sdk_dynamodb::Client::new(&config);
    for n in 0..40 {
        let result = client
            .put_item()
            .table_name(table)
            .item(
                "event_id",
                aws_sdk_dynamodb::types::AttributeValue::S(format!("e{n}")),
            )
            .item(
                "timestamp",
                aws_sdk_dynamodb::types::AttributeValue::S("t".into()),
            )
            .send()
            .await;
        assert!(
            result.is_err(),
            "request {n} passed a proxy that faults all"
        );
    }
    let injected: Vec<u64> = proxy
        .stats
        .injected
        .iter()
        .map(|c| c.load(Ordering::Relaxed))
        .collect();
    assert!(injected.iter().all(|n| *n > 0), "{}", proxy.stats.summary());

    // Lost acks and late answers reached the table although the client saw failures.
    let landed = direct
        .scan()
        .table_name(table)
        .send()
        .await
        .expect("scan")
        .count;
    let expected_at_least = injected[5];
    assert!(
        landed as u64 >= expected_at_least,
        "{landed} items landed, {expected_at_least} lost acks"
    );
}

/// A sustained fault rate must not switch the processor's retries off. The SDK's default
/// retry quota empties after some hundreds of faulted calls and from then on every first
/// failure is final; the processor's client keeps its attempts per call throughout.
#[tokio::test]
async fn sustained_faults_do_not_exhaust_the_processors_retries() {
    let moto = harness::moto::shared();
    // Late answers arrive well inside the attempt timeout, so five of the six faults are
    // errors: 75 % of attempts fail, three in a row 42 % of the time.
    let proxy = FaultProxy::start(&moto.endpoint, 0.9, Duration::from_millis(5), 11)
        .await
        .expect("proxy");
    let direct =
        aws_sdk_dynamodb::Client::new(&harness::aws::local_sdk_config(&moto.endpoint).await);
    let table = "retry-quota-test";
    create_table(&direct, table).await;
    let config = proxy.processor_loader().load().await;

    // The second half of the calls, once a default quota would be long empty.
    const CALLS: usize = 600;
    let late = |outcomes: Vec<bool>| outcomes[CALLS / 2..].iter().filter(|f| **f).count();
    let processors = late(failures(processor::aws::dynamodb_client(&config), table, CALLS).await);
    let defaults = late(failures(aws_sdk_dynamodb::Client::new(&config), table, CALLS).await);
    // About 125 of 300 fail with the processor's client, 200 or more with the default.
    assert!(
        processors < 175,
        "{processors} of the last {} calls failed with the processor's client; {}",
        CALLS / 2,
        proxy.stats.summary()
    );
    assert!(
        defaults > 175,
        "the SDK's default quota failed only {defaults} of the last {} calls: if it no \
         longer runs dry, processor::aws::dynamodb_client may not be needed",
        CALLS / 2
    );
}

/// PutItem `calls` times, 8 at once; whether each failed, in the order they ended.
async fn failures(client: aws_sdk_dynamodb::Client, table: &str, calls: usize) -> Vec<bool> {
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let outcomes = Arc::new(std::sync::Mutex::new(Vec::with_capacity(calls)));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let (client, next, outcomes) = (client.clone(), next.clone(), outcomes.clone());
        let table = table.to_string();
        tasks.spawn(async move {
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= calls {
                    break;
                }
                let failed = client
                    .put_item()
                    .table_name(&table)
                    .item(
                        "event_id",
                        aws_sdk_dynamodb::types::AttributeValue::S(format!("q{n}")),
                    )
                    .item(
                        "timestamp",
                        aws_sdk_dynamodb::types::AttributeValue::S("t".into()),
                    )
                    .send()
                    .await
                    .is_err();
                outcomes.lock().expect("outcomes").push(failed);
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    outcomes.lock().expect("outcomes").clone()
}

/// A table with the market-data key schema, created directly in moto.
async fn create_table(direct: &aws_sdk_dynamodb::Client, table: &str) {
    let schema = names::MARKET_DATA_SCHEMA;
    direct
        .create_table()
        .table_name(table)
        .billing_mode(aws_sdk_dynamodb::types::BillingMode::PayPerRequest)
        .key_schema(key(schema.hash_key, aws_sdk_dynamodb::types::KeyType::Hash))
        .key_schema(key(
            schema.range_key,
            aws_sdk_dynamodb::types::KeyType::Range,
        ))
        .attribute_definitions(attr(schema.hash_key))
        .attribute_definitions(attr(schema.range_key))
        .send()
        .await
        .expect("table");
}

fn key(
    name: &str,
    kind: aws_sdk_dynamodb::types::KeyType,
) -> aws_sdk_dynamodb::types::KeySchemaElement {
    aws_sdk_dynamodb::types::KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(kind)
        .build()
        .expect("key")
}

fn attr(name: &str) -> aws_sdk_dynamodb::types::AttributeDefinition {
    aws_sdk_dynamodb::types::AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(aws_sdk_dynamodb::types::ScalarAttributeType::S)
        .build()
        .expect("attribute")
}
