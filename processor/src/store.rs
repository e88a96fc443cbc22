//! Writes to DynamoDB and the classification of their failures.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{Put, TransactWriteItem};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use thiserror::Error;

use crate::item::Item;
use crate::names;

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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOutcome {
    Stored,
    /// A record or guard with the same key already exists; nothing was written.
    Duplicate,
}

#[derive(Clone)]
pub struct Store {
    client: Client,
    market_data_table: String,
    audit_trail_table: String,
}

impl Store {
    pub fn new(client: Client, market_data_table: String, audit_trail_table: String) -> Self {
        Store {
            client,
            market_data_table,
            audit_trail_table,
        }
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

    /// Stores a record, its optional dedupe guard and its PROCESSED audit entry atomically:
    /// either all three exist or none does, so a stored event always has its audit entry.
    pub async fn write_processed(
        &self,
        record: Item,
        guard: Option<Item>,
        audit: Item,
    ) -> Result<WriteOutcome, StoreError> {
        let not_exists = format!("attribute_not_exists({})", names::EVENT_ID);
        let mut items = Vec::with_capacity(3);
        for item in std::iter::once(record).chain(guard) {
            items.push(put(&self.market_data_table, item, Some(&not_exists))?);
        }
        items.push(put(&self.audit_trail_table, audit, None)?);
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await;
        match result {
            Ok(_) => Ok(WriteOutcome::Stored),
            Err(err) if is_condition_failure(&err) => Ok(WriteOutcome::Duplicate),
            Err(err) => Err(classify("TransactWriteItems", &err)),
        }
    }

    /// Writes one audit entry on its own (DUPLICATE, REJECTED, FAILED).
    pub async fn write_audit(&self, audit: Item) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.audit_trail_table)
            .set_item(Some(audit))
            .send()
            .await
            .map(|_| ())
            .map_err(|err| classify("PutItem", &err))
    }
}

fn put(table: &str, item: Item, condition: Option<&str>) -> Result<TransactWriteItem, StoreError> {
    let put = Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .set_condition_expression(condition.map(String::from))
        .build()
        .map_err(|err| StoreError::Permanent {
            operation: "TransactWriteItems",
            message: err.to_string(),
        })?;
    Ok(TransactWriteItem::builder().put(put).build())
}

/// True when the transaction was cancelled because a key already exists.
fn is_condition_failure(err: &SdkError<TransactWriteItemsError, HttpResponse>) -> bool {
    match err.as_service_error() {
        Some(TransactWriteItemsError::TransactionCanceledException(cancel)) => cancel
            .cancellation_reasons()
            .iter()
            .any(|reason| reason.code() == Some("ConditionalCheckFailed")),
        _ => false,
    }
}

/// Error codes that waiting can cure; everything else (validation, access, missing table) cannot.
const TRANSIENT_CODES: [&str; 7] = [
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "InternalServerError",
    "ServiceUnavailable",
    "TransactionConflict",
    "TransactionInProgressException",
];

fn classify<E>(operation: &'static str, err: &SdkError<E, HttpResponse>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let message = DisplayErrorContext(err).to_string();
    let transient = match err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(service) => {
            let code = service.err().code().unwrap_or_default();
            service.raw().status().is_server_error()
                || TRANSIENT_CODES.contains(&code)
                || message.contains("TransactionConflict")
        }
        _ => false,
    };
    if transient {
        StoreError::Transient { operation, message }
    } else {
        StoreError::Permanent { operation, message }
    }
}
