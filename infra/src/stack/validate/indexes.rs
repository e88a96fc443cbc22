//! `dynamodb.index_buckets` and `dynamodb.design_events_per_second`: enough buckets that the
//! hottest index key stays under a partition's write limit at the rate the stack is built for.

use std::ops::RangeInclusive;

use super::Checks;
use crate::model::indexes::{PARTITION_WRITE_UNITS, buckets_needed, max_events_per_second};
use crate::stack::StackConfig;

const INDEX_BUCKETS: RangeInclusive<u16> = 1..=names::MAX_INDEX_BUCKETS;
const DESIGN_EVENTS_PER_SECOND: RangeInclusive<u32> = 1..=1_000_000;

impl Checks {
    pub(super) fn indexes(&mut self, config: &StackConfig) {
        let db = &config.dynamodb;
        self.range("dynamodb.index_buckets", db.index_buckets, INDEX_BUCKETS);
        let Some(rate) = db.design_events_per_second else {
            if config.is_production() {
                self.push(
                    "dynamodb.design_events_per_second",
                    "missing; the production stack must state the events per second its tables are built for, which sets the least index_buckets",
                );
            }
            return;
        };
        if !DESIGN_EVENTS_PER_SECOND.contains(&rate) {
            self.range(
                "dynamodb.design_events_per_second",
                rate,
                DESIGN_EVENTS_PER_SECOND,
            );
            return;
        }
        let needed = buckets_needed(rate);
        let max = u64::from(*INDEX_BUCKETS.end());
        if needed > max {
            self.push(
                "dynamodb.design_events_per_second",
                format!(
                    "{rate} needs {needed} index buckets, more than the {max} a query fans out \
                     over; allowed at most {}",
                    max_events_per_second(*INDEX_BUCKETS.end())
                ),
            );
        } else if u64::from(db.index_buckets) < needed && INDEX_BUCKETS.contains(&db.index_buckets)
        {
            self.push(
                "dynamodb.index_buckets",
                format!(
                    "{} is too few for design_events_per_second {rate}: one exchange, symbol or \
                     event type carrying all of it puts {rate} writes a second on its index, a \
                     partition takes {PARTITION_WRITE_UNITS}, planned at two thirds; allowed \
                     {needed}..={max}",
                    db.index_buckets
                ),
            );
        }
    }
}
