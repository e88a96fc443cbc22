//! The AWS limits `capacity` holds a stack's rates to: the defaults of an account, each with the
//! page that publishes it, checked on [`QUOTAS_REVIEWED`]. An account whose quotas were raised
//! has higher ones; the Service Quotas console shows them.

use crate::model::indexes::PARTITION_WRITE_UNITS;

/// The day every value below was last compared with its page.
pub const QUOTAS_REVIEWED: &str = "2026-12-02";

/// A limit and where it is published.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quota {
    pub value: f64,
    pub per: &'static str,
    pub page: &'static str,
}

/// A quota whose default differs by region: the regions listed, and every other one.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RegionalQuota {
    pub regions: &'static [(&'static str, f64)],
    /// For a region not listed: the lowest default the page gives, so that an unlisted region
    /// is never credited with more than it has.
    pub elsewhere: f64,
    pub per: &'static str,
    pub page: &'static str,
}

impl RegionalQuota {
    pub fn in_region(&self, region: &str) -> Quota {
        let value = self
            .regions
            .iter()
            .find(|(name, _)| *name == region)
            .map_or(self.elsewhere, |(_, value)| *value);
        Quota {
            value,
            per: self.per,
            page: self.page,
        }
    }
}

const EVENTBRIDGE_QUOTAS: &str =
    "https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-quota.html";
const KINESIS_QUOTAS: &str =
    "https://docs.aws.amazon.com/streams/latest/dev/service-sizes-and-limits.html";
/// The regions where Kinesis gives on-demand streams (and provisioned shards) the most room.
const KINESIS_LARGE_REGIONS: [&str; 3] = ["us-east-1", "us-west-2", "eu-west-1"];

/// PutEvents calls per second, per account and region, whatever the number of entries in each;
/// a throttled call fails whole. Regions the page lists lower than 10 000 and that are not
/// named here get the fallback; add a region's own value here when a stack moves there.
pub const PUT_EVENTS_REQUESTS: RegionalQuota = RegionalQuota {
    regions: &[
        ("us-east-1", 10_000.0),
        ("us-west-2", 10_000.0),
        ("eu-west-1", 10_000.0),
        ("us-east-2", 2_400.0),
    ],
    elsewhere: 400.0,
    per: "PutEvents requests/s per account and region",
    page: EVENTBRIDGE_QUOTAS,
};

/// Entries in one PutEvents request, at most.
pub const PUT_EVENTS_ENTRIES: Quota = Quota {
    value: 10.0,
    per: "entries per PutEvents request",
    page: "https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_PutEvents.html",
};

/// Deliveries of a matched event to a rule's target, per account and region. Past it deliveries
/// are delayed, not dropped, until the rule's retry window runs out.
pub const TARGET_INVOCATIONS: RegionalQuota = RegionalQuota {
    regions: &[
        ("us-east-1", 18_750.0),
        ("us-west-2", 18_750.0),
        ("eu-west-1", 18_750.0),
        ("us-east-2", 4_500.0),
        ("eu-central-1", 4_500.0),
        ("us-west-1", 2_250.0),
        ("ap-northeast-1", 2_250.0),
        ("ap-southeast-1", 2_250.0),
        ("ap-southeast-2", 2_250.0),
        ("eu-west-2", 2_250.0),
        ("af-south-1", 750.0),
        ("ap-northeast-3", 750.0),
        ("ap-southeast-3", 750.0),
        ("eu-south-1", 750.0),
    ],
    elsewhere: 1_100.0,
    per: "target invocations/s per account and region",
    page: EVENTBRIDGE_QUOTAS,
};

/// Concurrent executions of every function in an account and region, when the function has no
/// reserved concurrency of its own.
pub const LAMBDA_CONCURRENCY: Quota = Quota {
    value: 1_000.0,
    per: "concurrent executions per account and region",
    page: "https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html",
};

/// What one shard takes in, in either capacity mode: bytes, and records, per second.
pub const KINESIS_SHARD_WRITE_BYTES: Quota = Quota {
    value: 1024.0 * 1024.0,
    per: "bytes/s written per shard (1 MB)",
    page: KINESIS_QUOTAS,
};
pub const KINESIS_SHARD_WRITE_RECORDS: Quota = Quota {
    value: 1_000.0,
    per: "records/s written per shard",
    page: KINESIS_QUOTAS,
};

/// The write throughput an on-demand stream scales up to, in MB/s: 10 GB/s in the large regions,
/// 200 MB/s elsewhere.
pub const KINESIS_ON_DEMAND_WRITE_MB: RegionalQuota = RegionalQuota {
    regions: &[
        (KINESIS_LARGE_REGIONS[0], 10_240.0),
        (KINESIS_LARGE_REGIONS[1], 10_240.0),
        (KINESIS_LARGE_REGIONS[2], 10_240.0),
    ],
    elsewhere: 200.0,
    per: "MB/s written per on-demand stream, at most",
    page: KINESIS_QUOTAS,
};

/// What a new on-demand stream takes before it has seen a higher peak. It then accommodates up
/// to twice its previous peak; a jump past that throttles writes while it scales.
pub const KINESIS_ON_DEMAND_INITIAL_WRITE_MB: Quota = Quota {
    value: 4.0,
    per: "MB/s written per new on-demand stream",
    page: KINESIS_QUOTAS,
};

/// Write units a partition, and so one partition key value, takes per second.
pub const DYNAMODB_PARTITION_WRITES: Quota = Quota {
    value: PARTITION_WRITE_UNITS as f64,
    per: "write units/s per partition",
    page: "https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/bp-partition-key-design.html",
};

/// Write request units per second an on-demand table takes, and separately each of its global
/// secondary indexes (an index over it throttles with `IndexWriteAccountLimitExceeded`).
pub const DYNAMODB_ON_DEMAND_TABLE_WRITES: Quota = Quota {
    value: 40_000.0,
    per: "write request units/s per on-demand table or index",
    page: "https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/ServiceQuotas.html",
};

/// Every quota above, for the list the command prints and the test that each names its page.
pub fn all(region: &str) -> [Quota; 10] {
    [
        PUT_EVENTS_REQUESTS.in_region(region),
        PUT_EVENTS_ENTRIES,
        TARGET_INVOCATIONS.in_region(region),
        LAMBDA_CONCURRENCY,
        KINESIS_SHARD_WRITE_BYTES,
        KINESIS_SHARD_WRITE_RECORDS,
        KINESIS_ON_DEMAND_WRITE_MB.in_region(region),
        KINESIS_ON_DEMAND_INITIAL_WRITE_MB,
        DYNAMODB_PARTITION_WRITES,
        DYNAMODB_ON_DEMAND_TABLE_WRITES,
    ]
}
