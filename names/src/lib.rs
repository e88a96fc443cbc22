//! What the processor and the infrastructure agree on: the names of tables, keys, indexes,
//! attributes and environment variables, the tables' key schemas ([`TableSchema`]), the
//! processor's settings as read from its environment ([`settings`]) and its time limits
//! ([`limits`]).
//!
//! The Pulumi renderer, the local pipeline, the tools and the Lambda all read these, so a table
//! key, index or variable renamed here changes everywhere at once. std and thiserror only: the
//! Pulumi compiler builds this crate.

pub mod limits;
pub mod settings;

pub use settings::Settings;

/// Prefix of the market-data table; the stack suffix follows after a `-`.
pub const MARKET_DATA_TABLE_PREFIX: &str = "market-data";
/// Prefix of the audit-trail table; the stack suffix follows after a `-`.
pub const AUDIT_TRAIL_TABLE_PREFIX: &str = "audit-trail";
/// Prefix of the latest-price table (one item per symbol and view, see [`LATEST_SCHEMA`]).
pub const LATEST_TABLE_PREFIX: &str = "latest-prices";

/// market-data partition key: the envelope id (or a dedupe guard id, see [`DEDUPE_KEY_PREFIX`]).
pub const EVENT_ID: &str = "event_id";
/// Sort key of both tables: RFC 3339 UTC with millisecond precision.
pub const TIMESTAMP: &str = "timestamp";
/// audit-trail partition key.
pub const AUDIT_ID: &str = "audit_id";
pub const EXCHANGE: &str = "exchange";
pub const SYMBOL: &str = "symbol";
pub const EVENT_TYPE: &str = "event_type";
/// Processing time of a record; also the sort key of its PROCESSED audit entry.
pub const RECEIVED_AT: &str = "received_at";
/// Lambda request id that wrote a record or audit entry.
pub const REQUEST_ID: &str = "request_id";
/// On a guard item: the envelope id of the record it protects.
pub const GUARD_RECORD_EVENT_ID: &str = "record_event_id";
/// On a guard item: the event time (sort key) of the record it protects.
pub const GUARD_RECORD_TIMESTAMP: &str = "record_timestamp";
/// TTL attribute of both tables, epoch seconds.
pub const EXPIRES_AT: &str = "expires_at";

/// Attributes of stored records and audit entries besides the keys above.
pub const CURRENCY: &str = "currency";
/// On a trade record: the content hash its guard item is keyed by.
pub const DEDUPE_KEY: &str = "dedupe_key";
pub const DETAIL_TYPE: &str = "detail_type";
/// On an audit entry: the stack that wrote it.
pub const ENVIRONMENT: &str = "environment";
/// On an audit entry: the event time of its event.
pub const EVENT_TIMESTAMP: &str = "event_timestamp";
/// On a record: the detail fields the contract does not name, as JSON.
pub const EXTRA: &str = "extra";
pub const PRICE: &str = "price";
/// On a REJECTED entry: the size of the raw event.
pub const RAW_BYTES: &str = "raw_bytes";
/// On a REJECTED entry: the raw event as it arrived (up to the item size limit).
pub const RAW_EVENT: &str = "raw_event";
/// On a REJECTED entry: set when `raw_event` holds only the start of the event.
pub const RAW_TRUNCATED: &str = "raw_truncated";
/// Why an audit entry has its status, in words.
pub const REASON: &str = "reason";
pub const SIDE: &str = "side";
pub const SOURCE: &str = "source";
/// On a record: the event time as the feed wrote it, when it differs from the key.
pub const SOURCE_TIMESTAMP: &str = "source_timestamp";
/// Outcome of an audit entry: PROCESSED, DUPLICATE, REJECTED or FAILED.
pub const STATUS: &str = "status";
pub const TRADE_ID: &str = "trade_id";
pub const VOLUME: &str = "volume";
pub const BID: &str = "bid";
pub const ASK: &str = "ask";
pub const BID_SIZE: &str = "bid_size";
pub const ASK_SIZE: &str = "ask_size";
/// On an audit entry: the time the invocation spent on the event.
pub const PROCESSING_MS: &str = "processing_ms";

/// GSI on market-data: exchange bucket + timestamp.
pub const EXCHANGE_INDEX: &str = "ExchangeIndex";
/// GSI on market-data: symbol bucket + timestamp.
pub const SYMBOL_INDEX: &str = "SymbolIndex";
/// GSI on audit-trail: event-type bucket + timestamp.
pub const EVENT_TYPE_INDEX: &str = "EventTypeIndex";

/// The partition keys of the indexes: the item's `exchange`, `symbol` or `event_type` with the
/// item's bucket appended ([`bucket_key`]), e.g. `NYSE#07`. An index keyed on the plain value
/// would put every item of a busy exchange on one partition, which takes at most 1 000 write
/// units a second, and an index that falls behind throttles writes to its table
/// (ARCHITECTURE.md, "Index keys").
pub const EXCHANGE_BUCKET: &str = "exchange_bucket";
pub const SYMBOL_BUCKET: &str = "symbol_bucket";
pub const EVENT_TYPE_BUCKET: &str = "event_type_bucket";

/// The most buckets an index key may be spread over. A query reads every bucket, so this bounds
/// its fan-out; and every bucket number has two digits.
pub const MAX_INDEX_BUCKETS: u16 = 100;

/// The bucket, among `buckets`, of the item whose table key is `unique_key` (its `event_id` or
/// `audit_id`): FNV-1a (64-bit) of the key's UTF-8 bytes, the high half folded onto the low
/// half, modulo `buckets` (0 counts as 1). Keys unique per item spread a hot value's items
/// evenly, and a rewrite of the same item lands in the same bucket.
///
/// Never change this function: every stored item's index key was computed with it, and a query
/// finds an item only under the key this gives. Its values are pinned by a test.
pub fn bucket_of(unique_key: &str, buckets: u16) -> u16 {
    const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut hash = OFFSET_BASIS;
    for byte in unique_key.as_bytes() {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(PRIME);
    }
    // The low bits of an FNV hash depend only on the low bits of the input bytes: modulo a
    // power of two they would spread worse than the whole hash does.
    let folded = hash ^ (hash >> 32);
    let bucket = folded % u64::from(buckets.max(1));
    u16::try_from(bucket).unwrap_or(0)
}

/// The index partition key of `value` in `bucket`: `NYSE#07`. The bucket number always has at
/// least two digits and never contains the `#`, so two different (value, bucket) pairs never
/// give the same key, even for a value that contains `#`. Never change it either.
pub fn bucket_key(value: &str, bucket: u16) -> String {
    format!("{value}#{bucket:02}")
}

/// Every index partition key of `value` under `buckets`: what a query reads to see all of its
/// items.
pub fn bucket_keys(value: &str, buckets: u16) -> impl Iterator<Item = String> + '_ {
    (0..buckets.max(1)).map(move |bucket| bucket_key(value, bucket))
}

/// Guard items share the market-data table; their `event_id` starts with this and they carry no
/// exchange or symbol, hence no bucket attribute, so they never appear in the indexes.
pub const DEDUPE_KEY_PREFIX: &str = "dedupe#";
/// Sort key value of every guard item: the guard must not depend on the event time.
pub const DEDUPE_SORT_KEY: &str = "-";

pub const ENV_MARKET_DATA_TABLE: &str = "MARKET_DATA_TABLE";
pub const ENV_AUDIT_TRAIL_TABLE: &str = "AUDIT_TRAIL_TABLE";
pub const ENV_LATEST_TABLE: &str = "LATEST_TABLE";
pub const ENV_ENVIRONMENT: &str = "ENVIRONMENT";
pub const ENV_TTL_DAYS: &str = "TTL_DAYS";
/// How many buckets the index keys of the items spread over; the stack's
/// `dynamodb.index_buckets`.
pub const ENV_INDEX_BUCKETS: &str = "INDEX_BUCKETS";
pub const ENV_ACCEPTED_SOURCES: &str = "ACCEPTED_SOURCES";
pub const ENV_LOG_LEVEL: &str = "LOG_LEVEL";
pub const ENV_MAX_FUTURE_SKEW_SECONDS: &str = "MAX_FUTURE_SKEW_SECONDS";
pub const ENV_MAX_EVENT_AGE_SECONDS: &str = "MAX_EVENT_AGE_SECONDS";
/// Days every audit item is kept (its `expires_at`); the stack's `audit.retention_days`.
pub const ENV_AUDIT_RETENTION_DAYS: &str = "AUDIT_RETENTION_DAYS";
/// Partition keys of a Kinesis batch the processor works on at once; the stack's
/// `kinesis.mapping.concurrent_keys`.
pub const ENV_BATCH_CONCURRENCY: &str = "BATCH_CONCURRENCY";

/// A redriven copy names the event it is a copy of with one envelope `resources` entry of this
/// prefix followed by the original envelope id. PutEvents gives every copy a new id; the
/// processor stores and deduplicates the copy under the original's id instead, so that a redrive
/// repeated after a crash, or racing the original's own retry, meets the same record key.
pub const REDRIVE_OF_PREFIX: &str = "market-data:redrive-of:";
/// Attribute of a record or audit entry written for a copy delivered under another envelope id
/// than the one it is stored under (a redrive, or a copy adopting an orphaned guard): that id.
pub const DELIVERED_AS: &str = "delivered_as";

/// The envelope field EventBridge adds to every event it replays from an archive: the replay's
/// name. A producer cannot set it: PutEvents entries carry only source, detail-type, detail,
/// resources and time, and EventBridge builds the envelope around them.
pub const REPLAY_NAME: &str = "replay-name";
/// Attribute of a record or audit entry written for a replayed event: the replay's name.
pub const REPLAYED_BY: &str = "replayed_by";
/// Guard id prefix of a replayed event's content key (an event without a trade id, which has
/// no [`DEDUPE_KEY_PREFIX`] guard): replayed copies of one archived event claim the same guard
/// whatever envelope ids the replay gives them.
pub const REPLAY_KEY_PREFIX: &str = "replay#";

/// latest-prices partition key: the symbol (the plain attribute [`SYMBOL`]).
/// Sort key: the view, `trade#<exchange>` or `quote#<exchange>` ([`latest_view`]).
pub const VIEW: &str = "view";
/// The view of a trade (last price and volume) or of a quote (best bid and ask as quoted).
pub const VIEW_TRADE: &str = "trade";
pub const VIEW_QUOTE: &str = "quote";
/// Event time (`timestamp` of the record) of the event a latest item holds: the conditional
/// write compares it, with [`EVENT_ID`] breaking ties.
pub const LATEST_EVENT_TIME: &str = "event_time";

/// The sort key of a latest item: `view#exchange`.
pub fn latest_view(view: &str, exchange: &str) -> String {
    format!("{view}#{exchange}")
}

/// The longest `exchange` the processor accepts.
pub const MAX_EXCHANGE_LEN: usize = 16;

/// A character an `exchange` code may hold.
pub fn is_exchange_char(c: char) -> bool {
    c.is_ascii_uppercase() || c.is_ascii_digit() || matches!(c, '.' | '-' | '_')
}

/// The processor's rule for an `exchange`: 1 to [`MAX_EXCHANGE_LEN`] of A-Z 0-9 . - _, starting
/// with a letter or digit. Stack validation holds configured exchanges to it.
pub fn is_exchange_code(code: &str) -> bool {
    code.len() <= MAX_EXCHANGE_LEN
        && code
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
        && code.chars().all(is_exchange_char)
}

/// The source accepted when `ACCEPTED_SOURCES` is not set.
pub const DEFAULT_SOURCE: &str = "market.data";

pub const TRADE_EXECUTION: &str = "Trade Execution";
pub const TRADE_UPDATE: &str = "Trade Update";
pub const MARKET_QUOTE: &str = "Market Quote";
pub const PRICE_UPDATE: &str = "Price Update";
/// Detail-types routed by the trade rule.
pub const TRADE_DETAIL_TYPES: [&str; 2] = [TRADE_EXECUTION, TRADE_UPDATE];
/// Detail-types routed by the quote rule.
pub const QUOTE_DETAIL_TYPES: [&str; 2] = [MARKET_QUOTE, PRICE_UPDATE];

/// Namespace of the Embedded Metric Format metrics the processor prints.
pub const METRICS_NAMESPACE: &str = "MarketData";
/// The one dimension of those metrics; its value is the stack's environment.
pub const METRIC_DIMENSION: &str = "Environment";
/// The processor's per-event counters (one of them is 1 for each event) and its latency, in
/// milliseconds. Alarms and dashboards read them under these names.
pub const METRIC_PROCESSED: &str = "Processed";
pub const METRIC_DUPLICATE: &str = "Duplicate";
pub const METRIC_REJECTED: &str = "Rejected";
pub const METRIC_FAILED: &str = "Failed";
pub const METRIC_PROCESSING_LATENCY: &str = "ProcessingLatency";
/// Feed health, per exchange and event type ([`METRIC_FEED_DIMENSIONS`]): the counters above
/// (`Processed`, `Duplicate`, `Rejected`) again, and the lag of each stored event in
/// milliseconds: the time it was stored minus its event time.
pub const METRIC_LAG: &str = "Lag";
pub const METRIC_DIMENSION_EXCHANGE: &str = "Exchange";
pub const METRIC_DIMENSION_EVENT_TYPE: &str = "EventType";
/// The dimension set of the feed-health metrics.
pub const METRIC_FEED_DIMENSIONS: [&str; 3] = [
    METRIC_DIMENSION,
    METRIC_DIMENSION_EXCHANGE,
    METRIC_DIMENSION_EVENT_TYPE,
];
/// `Rejected` once more, per reason class ([`REJECT_CLASSES`]): dimensions `Environment`,
/// `ReasonClass`.
pub const METRIC_DIMENSION_REASON_CLASS: &str = "ReasonClass";
/// What a rejection was about, from its first broken rule: the envelope (`id`, `version`,
/// `resources`, `replay-name`, a record's `data`), the `source`, the `detail-type`, the event
/// time window, a detail field, or a detail that is not a readable JSON object.
pub const REJECT_CLASSES: [&str; 6] = [
    "envelope",
    "source",
    "detail-type",
    "time",
    "field",
    "malformed",
];
/// Exchanges outside the stack's `metrics.exchanges` are counted under this value, so that a
/// producer's typo cannot create metrics (each one is billed per month).
pub const METRIC_OTHER_EXCHANGE: &str = "OTHER";
/// The exchanges that get their own feed-health dimension value (comma-separated); the stack's
/// `metrics.exchanges`.
pub const ENV_METRIC_EXCHANGES: &str = "METRIC_EXCHANGES";

/// Name of the Lambda package the build produces and the program deploys.
pub const FUNCTION_BASE_NAME: &str = "market-processor";
/// Path of the deployable archive, relative to the workspace root.
pub const PACKAGE_PATH: &str = "target/lambda/market-processor/bootstrap.zip";

/// `<prefix>-<suffix>`: the one naming rule for every suffixed resource.
pub fn suffixed(prefix: &str, suffix: &str) -> String {
    format!("{prefix}-{suffix}")
}

/// A global secondary index: name, partition key, sort key. Projection is ALL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexSchema {
    pub name: &'static str,
    /// A bucketed attribute: [`bucket_key`] of `bucketed`'s value and the item's bucket.
    pub hash_key: &'static str,
    pub range_key: &'static str,
    /// The plain attribute (`exchange`, ...) whose value the partition key carries; items keep
    /// it too.
    pub bucketed: &'static str,
}

/// Key schema of a table. Every key attribute is a string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableSchema {
    pub prefix: &'static str,
    pub hash_key: &'static str,
    pub range_key: &'static str,
    pub indexes: &'static [IndexSchema],
    pub ttl_attribute: &'static str,
}

impl TableSchema {
    /// Every attribute that a key of the table or of one of its indexes uses, sorted, once each.
    pub fn key_attributes(&self) -> Vec<&'static str> {
        let mut attrs = vec![self.hash_key, self.range_key];
        for index in self.indexes {
            attrs.push(index.hash_key);
            attrs.push(index.range_key);
        }
        attrs.sort_unstable();
        attrs.dedup();
        attrs
    }
}

pub const EXCHANGE_INDEX_SCHEMA: IndexSchema = IndexSchema {
    name: EXCHANGE_INDEX,
    hash_key: EXCHANGE_BUCKET,
    range_key: TIMESTAMP,
    bucketed: EXCHANGE,
};

pub const SYMBOL_INDEX_SCHEMA: IndexSchema = IndexSchema {
    name: SYMBOL_INDEX,
    hash_key: SYMBOL_BUCKET,
    range_key: TIMESTAMP,
    bucketed: SYMBOL,
};

pub const EVENT_TYPE_INDEX_SCHEMA: IndexSchema = IndexSchema {
    name: EVENT_TYPE_INDEX,
    hash_key: EVENT_TYPE_BUCKET,
    range_key: TIMESTAMP,
    bucketed: EVENT_TYPE,
};

pub const MARKET_DATA_SCHEMA: TableSchema = TableSchema {
    prefix: MARKET_DATA_TABLE_PREFIX,
    hash_key: EVENT_ID,
    range_key: TIMESTAMP,
    indexes: &[EXCHANGE_INDEX_SCHEMA, SYMBOL_INDEX_SCHEMA],
    ttl_attribute: EXPIRES_AT,
};

/// The latest trade and quote per symbol and exchange; no index: it is read a symbol at a time.
pub const LATEST_SCHEMA: TableSchema = TableSchema {
    prefix: LATEST_TABLE_PREFIX,
    hash_key: SYMBOL,
    range_key: VIEW,
    indexes: &[],
    ttl_attribute: EXPIRES_AT,
};

pub const AUDIT_TRAIL_SCHEMA: TableSchema = TableSchema {
    prefix: AUDIT_TRAIL_TABLE_PREFIX,
    hash_key: AUDIT_ID,
    range_key: TIMESTAMP,
    indexes: &[EVENT_TYPE_INDEX_SCHEMA],
    ttl_attribute: EXPIRES_AT,
};

/// The path an event arrived by, as far as the items written for it differ.
///
/// The stream carries the volume, so its items go without the index copies its access
/// patterns do not need; each copy is a write unit per item (every index projects ALL):
/// - a streamed record is in `SymbolIndex` only: quotes are read a symbol at a time, and
///   `ExchangeIndex` would double the stream's busiest write for a query that a stack's bus
///   path (trades, on the shipped stacks) still answers;
/// - a streamed PROCESSED entry is in no index: its key derives from its record's
///   (`processor::item::processed_audit_id`), so the record leads to it. DUPLICATE, REJECTED and FAILED
///   entries stay in `EventTypeIndex` on either path: they are few, and they are what an
///   operator looks for by type.
///
/// ARCHITECTURE.md ("Index keys") has the arithmetic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ingest {
    /// EventBridge, one event per invocation; also every redriven or replayed copy.
    Bus,
    /// Kinesis, in batches.
    Stream,
}

impl Ingest {
    /// The indexes a market-data record of this path is copied into.
    pub fn record_indexes(self) -> &'static [IndexSchema] {
        match self {
            Ingest::Bus => MARKET_DATA_SCHEMA.indexes,
            Ingest::Stream => &[SYMBOL_INDEX_SCHEMA],
        }
    }

    /// The indexes a PROCESSED audit entry of this path is copied into. Every other audit
    /// entry is in all of [`AUDIT_TRAIL_SCHEMA`]'s.
    pub fn processed_audit_indexes(self) -> &'static [IndexSchema] {
        match self {
            Ingest::Bus => AUDIT_TRAIL_SCHEMA.indexes,
            Ingest::Stream => &[],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exchange_codes_follow_the_processors_rule() {
        for ok in [
            "NASDAQ",
            "LSE",
            "X.1-A_B",
            "7",
            &"A".repeat(MAX_EXCHANGE_LEN),
        ] {
            assert!(is_exchange_code(ok), "{ok}");
        }
        for bad in [
            "",
            "nasdaq",
            ".NYSE",
            "NY SE",
            &"A".repeat(MAX_EXCHANGE_LEN + 1),
        ] {
            assert!(!is_exchange_code(bad), "{bad}");
        }
    }

    /// Stored items were keyed with these values: if this test fails, queries no longer find
    /// them.
    #[test]
    fn buckets_never_change() {
        // FNV-1a's published vectors: "" 0xcbf29ce484222325, "a" 0xaf63dc4c8601ec8c,
        // "foobar" 0x85944171f73967e8; folded, modulo 100.
        assert_eq!(bucket_of("", 100), 45);
        assert_eq!(bucket_of("a", 100), 24);
        assert_eq!(bucket_of("foobar", 100), 97);
        assert_eq!(bucket_of("e-trade", 16), 4);
        assert_eq!(bucket_of("e-trade", 1), 0);
        assert_eq!(bucket_of("e-trade", 0), 0);
        let id = "0000002a-5b1c-4e7a-9c3d-8f14e45fceea";
        assert_eq!((bucket_of(id, 16), bucket_of(id, 100)), (3, 43));
        assert_eq!(bucket_key("NYSE", 7), "NYSE#07");
        assert_eq!(bucket_key("NYSE", 42), "NYSE#42");
        assert_eq!(
            bucket_keys("AAPL", 3).collect::<Vec<_>>(),
            ["AAPL#00", "AAPL#01", "AAPL#02"]
        );
        assert_eq!(bucket_keys("AAPL", 0).count(), 1);
    }

    #[test]
    fn buckets_spread_unique_keys_evenly() {
        for buckets in [2_u16, 3, 4, 16, 100] {
            let mut counts = vec![0_u32; usize::from(buckets)];
            for n in 0..100_000_u32 {
                counts[usize::from(bucket_of(&format!("{n:08x}-5b1c"), buckets))] += 1;
            }
            let mean = 100_000 / u32::from(buckets);
            for count in counts {
                assert!(
                    count.abs_diff(mean) * 10 < mean,
                    "{buckets}: {count} vs {mean}"
                );
            }
        }
    }

    #[test]
    fn the_indexes_are_keyed_on_buckets_of_the_plain_attributes() {
        for index in MARKET_DATA_SCHEMA
            .indexes
            .iter()
            .chain(AUDIT_TRAIL_SCHEMA.indexes)
        {
            assert_eq!(index.hash_key, format!("{}_bucket", index.bucketed));
            assert_eq!(index.range_key, TIMESTAMP);
        }
        assert_eq!(
            MARKET_DATA_SCHEMA.key_attributes(),
            [EVENT_ID, EXCHANGE_BUCKET, SYMBOL_BUCKET, TIMESTAMP]
        );
    }
}
