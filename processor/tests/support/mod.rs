//! Shared by the integration tests: a DynamoDB client for the moto server that
//! `cargo xtask test` starts, tables with the real key schema, and sample events.
#![allow(dead_code)]

// The workspace's one Lambda Runtime API emulator; `cargo xtask verify-package` runs the
// shipped arm64 binary against the same code.
#[path = "../../../xtask/src/runtime_api.rs"]
pub mod runtime_api;

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::Credentials;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, KeySchemaElement,
    KeyType, Projection, ProjectionType, ScalarAttributeType,
};
use processor::names::{self, TableSchema};
use processor::{Processor, Settings};

/// The moto endpoint; these tests need a real DynamoDB-compatible server.
pub fn endpoint() -> String {
    std::env::var("AWS_ENDPOINT_URL").unwrap_or_else(|_| {
        panic!(
            "AWS_ENDPOINT_URL is not set: these tests talk to a moto server. \
             Run them with `cargo xtask test`, which installs and starts one."
        )
    })
}

pub async fn sdk_config_for(endpoint: &str) -> aws_config::SdkConfig {
    processor::aws::loader()
        .endpoint_url(endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "tests"))
        .load()
        .await
}

pub async fn client() -> Client {
    Client::new(&sdk_config_for(&endpoint()).await)
}

/// A fresh pair of tables under a unique suffix, so tests never see each other's items.
pub struct Tables {
    pub client: Client,
    pub suffix: String,
    pub market_data: String,
    pub audit_trail: String,
}

impl Tables {
    pub async fn create() -> Tables {
        let client = client().await;
        let suffix = format!("t{}", uuid::Uuid::new_v4().simple());
        let market_data = names::suffixed(names::MARKET_DATA_TABLE_PREFIX, &suffix);
        let audit_trail = names::suffixed(names::AUDIT_TRAIL_TABLE_PREFIX, &suffix);
        create_table(&client, &market_data, &names::MARKET_DATA_SCHEMA).await;
        create_table(&client, &audit_trail, &names::AUDIT_TRAIL_SCHEMA).await;
        Tables {
            client,
            suffix,
            market_data,
            audit_trail,
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
            (names::ENV_ENVIRONMENT.to_string(), "test".to_string()),
        ]))
        .expect("test settings are valid")
    }

    pub fn processor(&self) -> Processor {
        Processor::new(self.settings(), self.client.clone())
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

    /// Records of a GSI partition, newest first.
    pub async fn query_index(
        &self,
        index: &str,
        key: &str,
        value: &str,
    ) -> Vec<HashMap<String, AttributeValue>> {
        self.client
            .query()
            .table_name(&self.market_data)
            .index_name(index)
            .key_condition_expression("#k = :v")
            .expression_attribute_names("#k", key)
            .expression_attribute_values(":v", AttributeValue::S(value.into()))
            .scan_index_forward(false)
            .send()
            .await
            .expect("query succeeds")
            .items
            .unwrap_or_default()
    }
}

pub async fn create_table(client: &Client, name: &str, schema: &TableSchema) {
    let key = |attr: &str, kind: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(attr)
            .key_type(kind)
            .build()
            .expect("key schema")
    };
    let mut request = client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key(schema.hash_key, KeyType::Hash))
        .key_schema(key(schema.range_key, KeyType::Range));
    for attr in schema.key_attributes() {
        request = request.attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(attr)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .expect("attribute definition"),
        );
    }
    for index in schema.indexes {
        request = request.global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(index.name)
                .key_schema(key(index.hash_key, KeyType::Hash))
                .key_schema(key(index.range_key, KeyType::Range))
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::All)
                        .build(),
                )
                .build()
                .expect("index"),
        );
    }
    request.send().await.expect("create table");
}

pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// An EventBridge envelope around `detail`, as the bus delivers it to the Lambda.
pub fn envelope(id: &str, detail_type: &str, detail: &str) -> String {
    format!(
        r#"{{"version":"0","id":"{id}","detail-type":"{detail_type}","source":"market.data","account":"123456789012","time":"{}","region":"us-east-1","resources":[],"detail":{detail}}}"#,
        now_rfc3339()
    )
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
    let mut statuses: Vec<String> = audits.iter().map(|a| s(a, "status")).collect();
    statuses.sort();
    statuses
}
