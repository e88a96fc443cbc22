//! The bus's archive: kept long enough to replay what the DLQ may still hold, and no longer
//! than a replayed event can still be stored.

use super::{Checks, SQS_RETENTION_SECONDS};
use crate::stack::StackConfig;

const DAY_SECONDS: u32 = 86_400;

impl Checks {
    pub(super) fn archive(&mut self, config: &StackConfig) {
        let days = config.archive.retention_days;
        if days == 0 {
            self.push(
                "archive.retention_days",
                "0 is EventBridge's \"keep forever\": the archive would grow without end and hold \
                 events no replay can store; allowed 1 or more",
            );
            return;
        }
        // The processor refuses a replayed event older than its records' TTL less a day (it
        // would be stored about to expire), so events archived longer can never be replayed.
        // An invalid TTL is reported on its own.
        let ttl = config.dynamodb.ttl_days;
        if ttl >= 1 && days > ttl - 1 {
            self.push(
                "archive.retention_days",
                format!(
                    "{days} is longer than a replayed event can be stored: the processor refuses \
                     one older than dynamodb.ttl_days ({ttl}) less a day, so the archive would \
                     hold events that can never be replayed; allowed 1..={}",
                    ttl - 1
                ),
            );
        }
        let dlq = config.dlq.retention_seconds;
        if config.is_production() && SQS_RETENTION_SECONDS.contains(&dlq) {
            let dlq_days = dlq.div_ceil(DAY_SECONDS);
            if days < dlq_days {
                self.push(
                    "archive.retention_days",
                    format!(
                        "{days} is shorter than the DLQ keeps a letter (dlq.retention_seconds \
                         {dlq}, {dlq_days} days rounded up): in the production stack every event \
                         that may still be in the DLQ must still be replayable from the archive; \
                         allowed {dlq_days} or more"
                    ),
                );
            }
        }
    }
}
