//! How many buckets an index partition key needs for a stack's design rate: the arithmetic of
//! ARCHITECTURE.md, "Index keys". Stack validation refuses fewer; the model test in
//! `tests/index_capacity.rs` checks the hottest partition of every table and index against
//! the same limit with the sample session's keys.

/// What one DynamoDB partition, and so one partition key value, takes per second: writes
/// (1 KB each), and strongly consistent reads (4 KB each). A global secondary index that cannot
/// take its writes throttles the writes to its table.
pub const PARTITION_WRITE_UNITS: u32 = 1_000;
pub const PARTITION_READ_UNITS: u32 = 3_000;

/// Write units one copy of an item costs in an index. Every item the processor indexes is a
/// record or an audit entry well under 1 KB (the model test measures them); only a REJECTED
/// entry carrying a large raw event weighs more.
pub const WRITE_UNITS_PER_INDEX_ITEM: u32 = 1;

/// Index copies an event writes to each index at most: its record to ExchangeIndex and
/// SymbolIndex, its audit entry (PROCESSED, DUPLICATE or REJECTED) to EventTypeIndex. A
/// duplicate's PROCESSED backfill writes nothing when the entry exists, and when it does not,
/// the event's own entry was never written.
pub const INDEX_ITEMS_PER_EVENT: u32 = 1;

/// The share of the design rate the hottest key is planned to carry: all of it. The sample
/// session's hottest exchange has 30 % and its hottest event type about half, but a feed
/// decides its own mix: one symbol on a news day, or a stream path carrying only quotes (every
/// audit entry then has event type `quote`), puts nearly everything on one key.
pub const HOTTEST_KEY_SHARE_PERCENT: u32 = 100;

/// A bucket is planned at two thirds of a partition's limit, for bursts above the mean rate,
/// the unevenness of hashing, and retried writes.
pub const HEADROOM_PERCENT: u32 = 150;

/// The fewest buckets that keep the hottest index partition at or below its write limit at
/// `events_per_second`: ceil(rate × share × units per item × headroom / 1000).
pub fn buckets_needed(events_per_second: u32) -> u64 {
    let units = u64::from(events_per_second)
        * u64::from(INDEX_ITEMS_PER_EVENT)
        * u64::from(WRITE_UNITS_PER_INDEX_ITEM)
        * u64::from(HOTTEST_KEY_SHARE_PERCENT)
        * u64::from(HEADROOM_PERCENT);
    units.div_ceil(u64::from(PARTITION_WRITE_UNITS) * 100 * 100)
}

/// The highest rate `buckets` cover: the inverse of [`buckets_needed`].
pub fn max_events_per_second(buckets: u16) -> u64 {
    u64::from(buckets) * u64::from(PARTITION_WRITE_UNITS) * 100 * 100
        / (u64::from(INDEX_ITEMS_PER_EVENT)
            * u64::from(WRITE_UNITS_PER_INDEX_ITEM)
            * u64::from(HOTTEST_KEY_SHARE_PERCENT)
            * u64::from(HEADROOM_PERCENT))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_bucket_per_two_thirds_of_a_partition() {
        assert_eq!(buckets_needed(1), 1);
        assert_eq!(buckets_needed(666), 1);
        assert_eq!(buckets_needed(667), 2);
        assert_eq!(buckets_needed(1_000), 2);
        assert_eq!(buckets_needed(10_000), 15);
        assert_eq!(buckets_needed(66_666), 100);
        assert_eq!(buckets_needed(66_667), 101);
        for buckets in [1, 2, 15, 16, 100] {
            let max = max_events_per_second(buckets);
            assert_eq!(buckets_needed(max as u32), u64::from(buckets));
            assert_eq!(buckets_needed(max as u32 + 1), u64::from(buckets) + 1);
        }
    }
}
