//! The stream path: the Kinesis stream, and the event source mapping that hands its records to
//! the processor in batches, with partial-batch responses and the DLQ as on-failure destination.

use serde_yaml::Value;

use super::{
    ConfigEntry, DLQ, FUNCTION, ROLE_POLICY, Resources, config, int, obj, reference, seq, string,
};
use crate::model::{KinesisSpec, Model};

pub(super) const STREAM: &str = "marketDataStream";
const MAPPING: &str = "marketDataStreamMapping";

const RETENTION: &str = "streamRetentionHours";
const SHARDS: &str = "streamShardCount";
const BATCH_SIZE: &str = "streamBatchSize";
const BATCHING_WINDOW: &str = "streamBatchingWindowSeconds";
const PARALLELIZATION: &str = "streamParallelizationFactor";
const BISECT: &str = "streamBisectOnError";
const RECORD_AGE: &str = "streamMaximumRecordAgeSeconds";
const RETRIES: &str = "streamMaximumRetryAttempts";

/// The stream path's tunables, in declaration order.
pub(super) fn config_entries(kinesis: &KinesisSpec) -> Vec<ConfigEntry> {
    let entry = |key, ty, description, value| ConfigEntry {
        key,
        ty,
        description,
        value,
    };
    let (s, m) = (&kinesis.stream, &kinesis.mapping.config);
    let mut entries = vec![entry(
        RETENTION,
        "integer",
        "Hours the stream keeps a record",
        int(s.retention_hours),
    )];
    if let Some(shards) = s.shard_count {
        entries.push(entry(
            SHARDS,
            "integer",
            "Shards of the provisioned stream",
            int(shards),
        ));
    }
    entries.extend([
        entry(
            BATCH_SIZE,
            "integer",
            "Stream records per invocation, at most",
            int(m.batch_size),
        ),
        entry(
            BATCHING_WINDOW,
            "integer",
            "Seconds Lambda gathers stream records before a smaller batch",
            int(m.maximum_batching_window_seconds),
        ),
        entry(
            PARALLELIZATION,
            "integer",
            "Concurrent batches per shard",
            int(m.parallelization_factor),
        ),
        entry(
            BISECT,
            "boolean",
            "Split a failed batch in two before retrying it",
            Value::Bool(m.bisect_batch_on_function_error),
        ),
        entry(
            RECORD_AGE,
            "integer",
            "Age (s) at which a failing stream record goes to the DLQ",
            int(m.maximum_record_age_seconds),
        ),
        entry(
            RETRIES,
            "integer",
            "Retries of a failing batch before its records go to the DLQ",
            int(m.maximum_retry_attempts),
        ),
    ]);
    entries
}

/// The role statement that lets the mapping read the stream, and nothing else.
pub(super) fn read_statement(kinesis: &KinesisSpec) -> Value {
    obj([
        ("Sid", string("ReadMarketDataStream")),
        ("Effect", string("Allow")),
        (
            "Action",
            seq(kinesis.stream_actions.iter().map(|a| string(*a))),
        ),
        ("Resource", seq([reference(STREAM, "arn")])),
    ])
}

pub(super) fn outputs(model: &Model) -> Vec<(String, Value)> {
    match model.kinesis {
        Some(_) => vec![
            ("kinesis_stream_name".into(), reference(STREAM, "name")),
            ("kinesis_stream_arn".into(), reference(STREAM, "arn")),
        ],
        None => vec![],
    }
}

impl Resources<'_> {
    pub(super) fn stream(&mut self) {
        let Some(kinesis) = &self.model.kinesis else {
            return;
        };
        let s = &kinesis.stream;
        let mut properties = vec![
            ("name", string(&s.name)),
            (
                "streamModeDetails",
                obj([("streamMode", string(s.mode.as_str()))]),
            ),
        ];
        if s.shard_count.is_some() {
            properties.push(("shardCount", config(SHARDS)));
        }
        properties.extend([
            ("retentionPeriod", config(RETENTION)),
            ("encryptionType", string("KMS")),
            ("kmsKeyId", string(s.kms_key)),
            ("tags", self.tags()),
        ]);
        self.add(STREAM, "aws:kinesis/stream:Stream", obj(properties), &[]);
    }

    pub(super) fn stream_mapping(&mut self) {
        let Some(kinesis) = &self.model.kinesis else {
            return;
        };
        let m = &kinesis.mapping;
        let properties = obj([
            ("functionName", reference(FUNCTION, "arn")),
            ("eventSourceArn", reference(STREAM, "arn")),
            ("startingPosition", string(m.starting_position)),
            ("batchSize", config(BATCH_SIZE)),
            ("maximumBatchingWindowInSeconds", config(BATCHING_WINDOW)),
            ("parallelizationFactor", config(PARALLELIZATION)),
            ("bisectBatchOnFunctionError", config(BISECT)),
            ("maximumRecordAgeInSeconds", config(RECORD_AGE)),
            ("maximumRetryAttempts", config(RETRIES)),
            (
                "functionResponseTypes",
                seq(m.function_response_types.iter().map(|t| string(*t))),
            ),
            (
                "destinationConfig",
                obj([(
                    "onFailure",
                    obj([("destinationArn", reference(DLQ, "arn"))]),
                )]),
            ),
            ("tags", self.tags()),
        ]);
        // Lambda checks at creation that the role may read the stream and send to the DLQ.
        self.add(
            MAPPING,
            "aws:lambda/eventSourceMapping:EventSourceMapping",
            properties,
            &[ROLE_POLICY],
        );
    }
}
