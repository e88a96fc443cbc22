//! Writes to DynamoDB and the classification of their failures.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use thiserror::Error;

use crate::item::{self, Item};

/// A write that did not land. Both kinds end the invocation with an error so that Lambda
/// retries it and, when retries are spent, sends the event to the DLQ; the kind only tells
/// the operator whether waiting can help.
#[derive(Debug, Error)]
pub enum StoreError {
    #[error("transient DynamoDB failure on {operation} (after the SDK's retries): {message}")]
    Transient {
        operation: &'static str,
        message: String,
    },
    #[error("DynamoDB rejected {operation}: {message}")]
    Permanent {
        operation: &'static str,
        message: String,
    },
}

/// The result of claiming a trade's dedupe guard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GuardOutcome {
    /// The guard is ours: new, or written earlier for this same envelope (a redelivery or a
    /// retry whose first reply was lost). The record write decides what happens next.
    Claimed,
    /// Another envelope already carries this trade: its id and event time (the record key).
    TakenBy { owner: String, timestamp: String },
}

/// The result of the conditional record write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordOutcome {
    /// The record exists and this invocation wrote it, now or in an earlier attempt with the
    /// same request id; `received_at` is the stored value, which keys the PROCESSED audit.
    Stored { received_at: String },
    /// Another invocation stored this event; `received_at` is the stored record's, which keys
    /// its PROCESSED entry.
    Duplicate { received_at: String },
}

#[derive(Clone)]
pub struct Store {
    client: Client,
    market_data_table: String,
    audit_trail_table: String,
    latest_table: String,
    /// Every item is written with its index keys here, whichever path built it.
    index_buckets: u16,
    /// Which index copies the items get.
    ingest: names::Ingest,
}

impl Store {
    pub fn new(
        client: Client,
        market_data_table: String,
        audit_trail_table: String,
        latest_table: String,
        index_buckets: u16,
    ) -> Self {
        Store {
            client,
            market_data_table,
            audit_trail_table,
            latest_table,
            index_buckets,
            ingest: names::Ingest::Bus,
        }
    }

    /// This store, writing items the way the stream path indexes them.
    pub fn streamed(&self) -> Store {
        Store {
            ingest: names::Ingest::Stream,
            ..self.clone()
        }
    }

    /// The index keys of an audit entry: a PROCESSED entry's indexes depend on the path.
    fn add_audit_index_keys(&self, audit: &mut Item) {
        let indexes = if text(audit, names::STATUS) == Some(item::Status::Processed.as_str()) {
            self.ingest.processed_audit_indexes()
        } else {
            names::AUDIT_TRAIL_SCHEMA.indexes
        };
        item::add_index_keys(
            audit,
            &names::AUDIT_TRAIL_SCHEMA,
            indexes,
            self.index_buckets,
        );
    }

    /// Describes both tables: opens the connection before the first event and proves that the
    /// configured names exist, so a misconfiguration fails the init rather than a trade.
    pub async fn warm_up(&self) -> Result<(), StoreError> {
        let describe = |table: &str| {
            self.client
                .describe_table()
                .table_name(table.to_string())
                .send()
        };
        let (market, audit) = tokio::join!(
            describe(&self.market_data_table),
            describe(&self.audit_trail_table)
        );
        for (result, table, var) in [
            (
                market.map(|_| ()),
                &self.market_data_table,
                names::ENV_MARKET_DATA_TABLE,
            ),
            (
                audit.map(|_| ()),
                &self.audit_trail_table,
                names::ENV_AUDIT_TRAIL_TABLE,
            ),
        ] {
            if let Err(err) = result {
                let class = classify("DescribeTable", &err);
                return Err(match class {
                    StoreError::Transient { message, .. } => StoreError::Transient {
                        operation: "DescribeTable",
                        message: format!("table {table:?} ({var}): {message}"),
                    },
                    StoreError::Permanent { message, .. } => StoreError::Permanent {
                        operation: "DescribeTable",
                        message: format!("table {table:?} ({var}): {message}"),
                    },
                });
            }
        }
        Ok(())
    }

    /// Claims a trade's dedupe guard with a conditional put.
    pub async fn claim_guard(
        &self,
        guard: Item,
        envelope_id: &str,
    ) -> Result<GuardOutcome, StoreError> {
        match self.put_if_absent(guard).await? {
            None => Ok(GuardOutcome::Claimed),
            Some(existing) => match text(&existing, names::GUARD_RECORD_EVENT_ID) {
                Some(owner) if owner == envelope_id => Ok(GuardOutcome::Claimed),
                owner => Ok(GuardOutcome::TakenBy {
                    owner: owner.unwrap_or_default().to_string(),
                    timestamp: text(&existing, names::GUARD_RECORD_TIMESTAMP)
                        .unwrap_or_default()
                        .to_string(),
                }),
            },
        }
    }

    /// Writes a market-data record unless its key exists. An existing record written under
    /// the same request id is this invocation's own earlier attempt, so it counts as stored.
    pub async fn put_record(
        &self,
        record: Item,
        request_id: &str,
    ) -> Result<RecordOutcome, StoreError> {
        let received_at = text(&record, names::RECEIVED_AT)
            .unwrap_or_default()
            .to_string();
        match self.put_if_absent(record).await? {
            None => Ok(RecordOutcome::Stored { received_at }),
            Some(existing) if text(&existing, names::REQUEST_ID) == Some(request_id) => {
                Ok(RecordOutcome::Stored {
                    received_at: text(&existing, names::RECEIVED_AT)
                        .unwrap_or_default()
                        .to_string(),
                })
            }
            Some(existing) => Ok(RecordOutcome::Duplicate {
                received_at: text(&existing, names::RECEIVED_AT)
                    .unwrap_or_default()
                    .to_string(),
            }),
        }
    }

    /// A conditional put into the market-data table; `Some(existing)` when the key was taken.
    async fn put_if_absent(&self, mut item: Item) -> Result<Option<Item>, StoreError> {
        item::add_index_keys(
            &mut item,
            &names::MARKET_DATA_SCHEMA,
            self.ingest.record_indexes(),
            self.index_buckets,
        );
        let result = self
            .client
            .put_item()
            .table_name(&self.market_data_table)
            .set_item(Some(item))
            .condition_expression(format!("attribute_not_exists({})", names::EVENT_ID))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) => Ok(None),
            Err(err) => match err.as_service_error() {
                Some(PutItemError::ConditionalCheckFailedException(failed)) => {
                    Ok(Some(failed.item().cloned().unwrap_or_default()))
                }
                _ => Err(classify("PutItem", &err)),
            },
        }
    }

    /// Writes a latest-price item unless the table holds a newer event for its view (or this
    /// one): `Ok(false)` when it held one, so out-of-order, redelivered and replayed copies never
    /// overwrite fresher data.
    pub async fn put_latest(&self, latest: item::Latest) -> Result<bool, StoreError> {
        let (time, id) = latest.order;
        let result = self
            .client
            .put_item()
            .table_name(&self.latest_table)
            .set_item(Some(latest.item))
            .condition_expression(
                "attribute_not_exists(#view) OR #time < :time OR (#time = :time AND #id < :id)",
            )
            .expression_attribute_names("#view", names::VIEW)
            .expression_attribute_names("#time", names::LATEST_EVENT_TIME)
            .expression_attribute_names("#id", names::EVENT_ID)
            .expression_attribute_values(":time", AttributeValue::S(time))
            .expression_attribute_values(":id", AttributeValue::S(id))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(err) => match err.as_service_error() {
                Some(PutItemError::ConditionalCheckFailedException(_)) => Ok(false),
                _ => Err(classify("PutItem", &err)),
            },
        }
    }

    /// The record key (`event_id`) of a stored record with the content of `record`, looked up
    /// in `SymbolIndex` at the record's symbol and exact event time, every bucket: how a
    /// replayed copy finds its original when the replay gave it a new envelope id. The index is
    /// eventually consistent, which is safe here: a replay covers events old enough to have
    /// settled (the replay command refuses a range still inside the retry windows).
    pub async fn find_same(&self, record: &Item) -> Result<Option<String>, StoreError> {
        let (Some(symbol), Some(time)) =
            (text(record, names::SYMBOL), text(record, names::TIMESTAMP))
        else {
            return Ok(None);
        };
        let index = names::SYMBOL_INDEX_SCHEMA;
        let lookups = names::bucket_keys(symbol, self.index_buckets).map(|bucket| {
            let query = self
                .client
                .query()
                .table_name(&self.market_data_table)
                .index_name(index.name)
                .key_condition_expression("#bucket = :bucket AND #time = :time")
                .expression_attribute_names("#bucket", index.hash_key)
                .expression_attribute_names("#time", index.range_key)
                .expression_attribute_values(":bucket", AttributeValue::S(bucket))
                .expression_attribute_values(":time", AttributeValue::S(time.to_string()));
            async move {
                let mut pages = query.into_paginator().items().send();
                while let Some(found) = pages.next().await {
                    let found = found.map_err(|err| classify("Query", &err))?;
                    if item::same_content(&found, record)
                        && let Some(id) = text(&found, names::EVENT_ID)
                    {
                        return Ok::<_, StoreError>(Some(id.to_string()));
                    }
                }
                Ok(None)
            }
        });
        for found in futures_util::future::join_all(lookups).await {
            if let Some(id) = found? {
                return Ok(Some(id));
            }
        }
        Ok(None)
    }

    /// Writes one audit entry.
    pub async fn write_audit(&self, mut audit: Item) -> Result<(), StoreError> {
        self.add_audit_index_keys(&mut audit);
        self.client
            .put_item()
            .table_name(&self.audit_trail_table)
            .set_item(Some(audit))
            .send()
            .await
            .map(|_| ())
            .map_err(|err| classify("PutItem", &err))
    }

    /// Writes an audit entry unless its key exists: the PROCESSED entry a later copy writes on
    /// behalf of a stored record, which must not overwrite what the storing invocation wrote.
    pub async fn backfill_audit(&self, mut audit: Item) -> Result<(), StoreError> {
        self.add_audit_index_keys(&mut audit);
        let result = self
            .client
            .put_item()
            .table_name(&self.audit_trail_table)
            .set_item(Some(audit))
            .condition_expression(format!("attribute_not_exists({})", names::AUDIT_ID))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(err) => match err.as_service_error() {
                Some(PutItemError::ConditionalCheckFailedException(_)) => Ok(()),
                _ => Err(classify("PutItem", &err)),
            },
        }
    }
}

fn text<'a>(item: &'a Item, key: &str) -> Option<&'a str> {
    match item.get(key) {
        Some(AttributeValue::S(value)) => Some(value),
        _ => None,
    }
}

/// Error codes that waiting can cure; everything else (validation, access, missing table) cannot.
const TRANSIENT_CODES: [&str; 5] = [
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "InternalServerError",
    "ServiceUnavailable",
];

fn classify<E>(operation: &'static str, err: &SdkError<E, HttpResponse>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let message = crate::aws::error_chain(err);
    let transient = match err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(service) => {
            let code = service.err().code().unwrap_or_default();
            service.raw().status().is_server_error() || TRANSIENT_CODES.contains(&code)
        }
        _ => false,
    };
    if transient {
        StoreError::Transient { operation, message }
    } else {
        StoreError::Permanent { operation, message }
    }
}
