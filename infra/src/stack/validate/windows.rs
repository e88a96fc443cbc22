//! The time windows that must nest for every copy of an event to be accounted for: the
//! platform's delivery windows inside the processor's age limit, the age limit (plus a day)
//! inside the items' lifetime, the records' lifetime inside the audit trail's.

use std::ops::RangeInclusive;

use super::{ASYNC_EVENT_AGE_SECONDS, Checks, TARGET_EVENT_AGE_SECONDS};
use crate::stack::StackConfig;

const DAY_SECONDS: u64 = 86_400;
/// The processor rejects a `TTL_DAYS` outside this range at start-up.
const TTL_DAYS: RangeInclusive<u32> = 1..=3650;
/// The processor accepts up to 3650 days; one day less leaves `dynamodb.ttl_days` (at most 3650)
/// room to cover it by the day's margin below.
const MAX_EVENT_AGE_SECONDS: RangeInclusive<u32> = 1..=3649 * 86_400;
/// The processor's own range for `MAX_FUTURE_SKEW_SECONDS`.
const MAX_FUTURE_SKEW_SECONDS: RangeInclusive<u32> = 0..=86_400;
const AUDIT_RETENTION_DAYS: RangeInclusive<u32> = 1..=names::Settings::MAX_AUDIT_RETENTION_DAYS;
/// Seven years (7 x 365 days and two leap days). SEC Rule 17a-4(a) (17 CFR 240.17a-4) has a
/// broker-dealer keep its trade blotters and order records for six years; MiFID II (Directive
/// 2014/65/EU, Article 16(6) and (7)) has a firm keep its order and transaction records for five
/// years, and up to seven where the competent authority asks. The longest of these decides.
pub const PRODUCTION_AUDIT_RETENTION_DAYS: u32 = 2557;

impl Checks {
    pub(super) fn windows(&mut self, config: &StackConfig) {
        let events = &config.events;
        self.range(
            "events.max_future_skew_seconds",
            events.max_future_skew_seconds,
            MAX_FUTURE_SKEW_SECONDS,
        );

        let age = events.max_event_age_seconds;
        let age_ok = MAX_EVENT_AGE_SECONDS.contains(&age);
        if !age_ok {
            self.range("events.max_event_age_seconds", age, MAX_EVENT_AGE_SECONDS);
        }
        // Only valid windows bound the age; an invalid one is reported on its own.
        let target = events.target_max_event_age_seconds;
        let invoke = config.async_invoke.max_event_age_seconds;
        if age_ok
            && TARGET_EVENT_AGE_SECONDS.contains(&target)
            && ASYNC_EVENT_AGE_SECONDS.contains(&invoke)
        {
            // EventBridge retries delivery for up to its window, then Lambda retries the
            // invocation for up to its own: a copy may reach the processor that late after it
            // was published, and refusing it then would turn a retry into a rejection.
            let platform = u64::from(target) + u64::from(invoke);
            if u64::from(age) < platform {
                self.push(
                    "events.max_event_age_seconds",
                    format!(
                        "{age} is shorter than the platform's delivery windows (events.target_max_event_age_seconds {target} + async_invoke.max_event_age_seconds {invoke} = {platform}): a retried event would be refused as too old; allowed {platform}..={}",
                        MAX_EVENT_AGE_SECONDS.end()
                    ),
                );
            }
        }

        let ttl = config.dynamodb.ttl_days;
        let ttl_ok = TTL_DAYS.contains(&ttl);
        if !ttl_ok {
            self.range("dynamodb.ttl_days", ttl, TTL_DAYS);
        } else if age_ok {
            // Records and guards expire at event time + ttl_days, and the processor still stores
            // a copy up to max_event_age_seconds after its event time. A day more keeps a late
            // record from being written expired (or about to be) and a guard alive for every
            // copy it can still meet.
            let needed = u64::from(age) + DAY_SECONDS;
            if u64::from(ttl) * DAY_SECONDS < needed {
                self.push(
                    "dynamodb.ttl_days",
                    format!(
                        "{ttl} days do not cover the oldest copy the processor still stores plus a day (events.max_event_age_seconds {age} + 86400 s): a late copy would be written already expired, and a guard could expire before a copy it must catch; allowed {}..={}",
                        needed.div_ceil(DAY_SECONDS),
                        TTL_DAYS.end()
                    ),
                );
            }
        }

        let audit = config.audit.retention_days;
        if !AUDIT_RETENTION_DAYS.contains(&audit) {
            self.range("audit.retention_days", audit, AUDIT_RETENTION_DAYS);
        } else if ttl_ok && audit < ttl {
            self.push(
                "audit.retention_days",
                format!(
                    "{audit} is shorter than dynamodb.ttl_days ({ttl}): records would outlive the audit entries that explain them; allowed {ttl}..={}",
                    AUDIT_RETENTION_DAYS.end()
                ),
            );
        }
    }

    pub(super) fn production_audit_retention(&mut self, days: u32) {
        // An out-of-range value is reported on its own.
        if AUDIT_RETENTION_DAYS.contains(&days) && days < PRODUCTION_AUDIT_RETENTION_DAYS {
            self.push(
                "audit.retention_days",
                format!(
                    "{days} is too short for the production stack; allowed {PRODUCTION_AUDIT_RETENTION_DAYS}..={} (seven years: SEC Rule 17a-4(a) six years, MiFID II Article 16 five to seven)",
                    AUDIT_RETENTION_DAYS.end()
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_audit_setting_never_shortens_the_production_minimum() {
        assert_eq!(
            names::Settings::DEFAULT_AUDIT_RETENTION_DAYS,
            PRODUCTION_AUDIT_RETENTION_DAYS
        );
        assert_eq!(PRODUCTION_AUDIT_RETENTION_DAYS, 7 * 365 + 2);
    }
}
