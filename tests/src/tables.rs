//! Fresh tables on the shared moto server, a processor over them, and readers of what it
//! stored.

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use names::Settings;
use processor::Processor;

/// The shared moto server's endpoint.
pub fn endpoint() -> String {
    harness::moto::shared().endpoint.clone()
}

/// The processor's own SDK settings (Lambda timeouts and retries) against `endpoint`.
pub async fn sdk_config_for(endpoint: &str) -> aws_config::SdkConfig {
    harness::aws::emulated(processor::aws::loader(), endpoint)
        .load()
        .await
}

pub async fn client() -> Client {
    Client::new(&sdk_config_for(&endpoint()).await)
}

/// The index buckets of the test tables' processor: more than one, so every test that reads an
/// index reads through the fan-out over buckets.
pub const BUCKETS: u16 = 4;

/// A fresh pair of tables under a unique suffix, so tests never see each other's items.
pub struct Tables {
    pub client: Client,
    pub suffix: String,
    pub market_data: String,
    pub audit_trail: String,
    pub latest: String,
}

impl Tables {
    pub async fn create() -> Tables {
        let client = client().await;
        let suffix = format!("t{}", uuid::Uuid::new_v4().simple());
        let market_data = names::suffixed(names::MARKET_DATA_TABLE_PREFIX, &suffix);
        let audit_trail = names::suffixed(names::AUDIT_TRAIL_TABLE_PREFIX, &suffix);
        let latest = names::suffixed(names::LATEST_TABLE_PREFIX, &suffix);
        for table in [
            infra::model::market_data_table(market_data.clone()),
            infra::model::audit_trail_table(audit_trail.clone()),
            infra::model::latest_table(latest.clone()),
        ] {
            harness::local::provision::create_table(&client, &table)
                .await
                .expect("create table");
        }
        Tables {
            client,
            suffix,
            market_data,
            audit_trail,
            latest,
        }
    }

    pub fn settings(&self) -> Settings {
        Settings::from_map(&HashMap::from([
            (
                names::ENV_MARKET_DATA_TABLE.to_string(),
                self.market_data.clone(),
            ),
            (
                names::ENV_AUDIT_TRAIL_TABLE.to_string(),
                self.audit_trail.clone(),
            ),
            (names::ENV_LATEST_TABLE.to_string(), self.latest.clone()),
            (names::ENV_ENVIRONMENT.to_string(), "test".to_string()),
            (names::ENV_INDEX_BUCKETS.to_string(), BUCKETS.to_string()),
        ]))
        .expect("test settings are valid")
    }

    pub fn processor(&self) -> Processor {
        Processor::new(self.settings(), self.client.clone())
    }

    /// A processor over these tables whose DynamoDB calls go through a proxy failing `writes`.
    pub async fn faulted(
        &self,
        writes: harness::faults::Writes,
    ) -> (Processor, harness::faults::FaultProxy) {
        let proxy = harness::faults::FaultProxy::failing(&endpoint(), writes)
            .await
            .expect("fault proxy starts");
        let config = proxy.processor_loader().load().await;
        let processor = Processor::new(self.settings(), processor::aws::dynamodb_client(&config));
        (processor, proxy)
    }

    /// Every market-data record (guards excluded).
    pub async fn records(&self) -> Vec<HashMap<String, AttributeValue>> {
        self.scan(&self.market_data)
            .await
            .into_iter()
            .filter(|item| item.contains_key(names::SYMBOL))
            .collect()
    }

    pub async fn audits(&self) -> Vec<HashMap<String, AttributeValue>> {
        self.scan(&self.audit_trail).await
    }

    /// Every latest-price item.
    pub async fn latest_items(&self) -> Vec<HashMap<String, AttributeValue>> {
        self.scan(&self.latest).await
    }

    async fn scan(&self, table: &str) -> Vec<HashMap<String, AttributeValue>> {
        let mut items = Vec::new();
        let mut pages = self
            .client
            .scan()
            .table_name(table)
            .into_paginator()
            .items()
            .send();
        while let Some(item) = pages.next().await {
            items.push(item.expect("scan succeeds"));
        }
        items
    }

    /// The records a market-data index holds for `value`, newest first, over every bucket.
    pub async fn query_index(
        &self,
        index: &'static names::IndexSchema,
        value: &str,
    ) -> Vec<HashMap<String, AttributeValue>> {
        harness::query::IndexQuery::new(&self.market_data, index, value, BUCKETS)
            .order(harness::query::Order::NewestFirst)
            .run(&self.client)
            .await
            .expect("query succeeds")
    }
}

/// An EventBridge envelope around `detail`, as the bus delivers it to the Lambda, timed now.
pub fn envelope(id: &str, detail_type: &str, detail: &str) -> String {
    let time = processor::event::format_timestamp(chrono::Utc::now());
    harness::session::SampleEvent::stored(detail_type, detail.to_string()).envelope(id, &time)
}

pub fn s(item: &HashMap<String, AttributeValue>, key: &str) -> String {
    match item.get(key) {
        Some(AttributeValue::S(v)) => v.clone(),
        other => panic!("{key} is not a string attribute: {other:?}"),
    }
}

pub fn n(item: &HashMap<String, AttributeValue>, key: &str) -> String {
    match item.get(key) {
        Some(AttributeValue::N(v)) => v.clone(),
        other => panic!("{key} is not a number attribute: {other:?}"),
    }
}

pub fn statuses(audits: &[HashMap<String, AttributeValue>]) -> Vec<String> {
    let mut statuses: Vec<String> = audits.iter().map(|a| s(a, names::STATUS)).collect();
    statuses.sort();
    statuses
}
