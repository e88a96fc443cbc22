//! `kinesis:` in a stack file: the high-volume ingest path, a Kinesis Data Stream read by a Lambda
//! event source mapping into the same processor. Absent: the stack ingests through EventBridge
//! only.

use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KinesisConfig {
    /// The event classes the feed sends through the stream. The bus keeps its rules for every
    /// class, so a producer that still publishes there is stored just the same (and once).
    pub publish: Vec<EventClass>,
    pub stream: StreamConfig,
    pub mapping: MappingConfig,
}

/// A class of market data, as the bus's rules split it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventClass {
    Trade,
    Quote,
}

impl EventClass {
    pub fn as_str(self) -> &'static str {
        match self {
            EventClass::Trade => "trade",
            EventClass::Quote => "quote",
        }
    }

    /// The detail-types of the class.
    pub fn detail_types(self) -> [&'static str; 2] {
        match self {
            EventClass::Trade => names::TRADE_DETAIL_TYPES,
            EventClass::Quote => names::QUOTE_DETAIL_TYPES,
        }
    }

    pub fn of_detail_type(detail_type: &str) -> Option<EventClass> {
        [EventClass::Trade, EventClass::Quote]
            .into_iter()
            .find(|class| class.detail_types().contains(&detail_type))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamConfig {
    pub capacity_mode: StreamMode,
    /// Required with `PROVISIONED`, refused with `ON_DEMAND`.
    #[serde(default)]
    pub shard_count: Option<u32>,
    /// How long the stream keeps a record. A DLQ letter of the stream path names records by
    /// sequence number, so a redrive can only replay what is still in the stream.
    pub retention_hours: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum StreamMode {
    #[serde(rename = "ON_DEMAND")]
    OnDemand,
    #[serde(rename = "PROVISIONED")]
    Provisioned,
}

impl StreamMode {
    /// The value Kinesis's `StreamModeDetails.StreamMode` takes.
    pub fn as_str(self) -> &'static str {
        match self {
            StreamMode::OnDemand => "ON_DEMAND",
            StreamMode::Provisioned => "PROVISIONED",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MappingConfig {
    /// Records per invocation, at most.
    pub batch_size: u32,
    /// How long Lambda gathers records before it invokes with fewer than `batch_size`.
    pub maximum_batching_window_seconds: u32,
    /// Concurrent batches per shard; records of one partition key stay in order.
    pub parallelization_factor: u32,
    /// Split a failed batch in two and retry each half, to isolate what fails.
    pub bisect_batch_on_function_error: bool,
    /// Older records go to the DLQ instead of being retried. Lambda's "-1" (forever) is not
    /// offered: a record the stream trims before it is handled is lost without a trace.
    pub maximum_record_age_seconds: u32,
    /// Retries of a failing batch before its records go to the DLQ.
    pub maximum_retry_attempts: u32,
    /// Partition keys (`exchange#symbol`) the processor works on at once within one batch
    /// (`BATCH_CONCURRENCY`); records of one key run one after another, in stream order.
    pub concurrent_keys: u32,
}
