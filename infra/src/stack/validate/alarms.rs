//! `alarms.*`: periods CloudWatch accepts, thresholds that can be crossed, and an address that
//! can receive them.

use std::ops::RangeInclusive;

use super::{Checks, SQS_RETENTION_SECONDS, TIMEOUT_SECONDS};
use crate::stack::StackConfig;

/// CloudWatch evaluates at most one day of periods.
const ALARM_WINDOW_SECONDS: u32 = 86_400;
/// SQS reports ages from a minute up; the longest retention bounds the rest.
const DLQ_AGE_SECONDS: RangeInclusive<u32> = 60..=1_209_600;
const REJECTED_PERCENT: RangeInclusive<u32> = 0..=99;
/// The longest address SMTP allows.
const EMAIL_CHARS: usize = 254;

impl Checks {
    pub(super) fn alarms(&mut self, config: &StackConfig) {
        let alarms = &config.alarms;
        let period = alarms.period_seconds;
        if !(period == 10 || period == 30 || (period >= 60 && period.is_multiple_of(60))) {
            self.push(
                "alarms.period_seconds",
                format!(
                    "{period} is not a CloudWatch alarm period; allowed 10, 30 or a multiple of 60"
                ),
            );
        }
        if alarms.evaluation_periods == 0 {
            self.push(
                "alarms.evaluation_periods",
                "0 is out of range; allowed 1 or more",
            );
        } else if u64::from(period) * u64::from(alarms.evaluation_periods)
            > u64::from(ALARM_WINDOW_SECONDS)
        {
            self.push(
                "alarms.evaluation_periods",
                format!(
                    "{} periods of {period} s exceed one day; allowed period_seconds x evaluation_periods <= 86400",
                    alarms.evaluation_periods
                ),
            );
        }
        for (path, value) in [
            ("alarms.errors_threshold", alarms.errors_threshold),
            ("alarms.throttles_threshold", alarms.throttles_threshold),
            (
                "alarms.failed_invocations_threshold",
                alarms.failed_invocations_threshold,
            ),
        ] {
            if value == 0 {
                self.push(path, "0 would keep the alarm firing; allowed 1 or more");
            }
        }
        // Only a valid timeout bounds the threshold; an invalid one is reported on its own.
        let timeout = config.lambda.timeout_seconds;
        let duration = alarms.duration_threshold_ms;
        if TIMEOUT_SECONDS.contains(&timeout) {
            let below_timeout = u64::from(timeout) * 1000 - 1;
            if duration == 0 || u64::from(duration) > below_timeout {
                self.push(
                    "alarms.duration_threshold_ms",
                    format!(
                        "{duration} can never be crossed by an average duration; allowed 1..={below_timeout} (below lambda.timeout_seconds)"
                    ),
                );
            }
        }
        self.dlq_age(config);
        if alarms.silent_feed_min_processed == 0 {
            self.push(
                "alarms.silent_feed_min_processed",
                "0 can never be crossed (fewer than 0 events): the silent-feed alarm would be off; allowed 1 or more",
            );
        }
        if alarms.silent_feed_periods == 0 {
            self.push(
                "alarms.silent_feed_periods",
                "0 is out of range; allowed 1 or more",
            );
        } else if u64::from(period) * u64::from(alarms.silent_feed_periods)
            > u64::from(ALARM_WINDOW_SECONDS)
        {
            self.push(
                "alarms.silent_feed_periods",
                format!(
                    "{} periods of {period} s exceed one day; allowed period_seconds x silent_feed_periods <= 86400",
                    alarms.silent_feed_periods
                ),
            );
        }
        // Above 99 the alarm could never fire: a share is at most 100 and it alarms above the
        // threshold.
        self.range(
            "alarms.rejected_percent_threshold",
            alarms.rejected_percent_threshold,
            REJECTED_PERCENT,
        );
        if let Some(email) = &alarms.email {
            if !is_email(email) {
                self.push(
                    "alarms.email",
                    format!("{email:?} is not an email address; allowed name@domain.tld"),
                );
            }
            if !alarms.sns_topic {
                self.push(
                    "alarms.email",
                    "needs alarms.sns_topic: true; the subscription belongs to that topic",
                );
            }
        }
    }

    /// The DLQ age alarm must fire while the oldest message can still be redriven.
    fn dlq_age(&mut self, config: &StackConfig) {
        let path = "alarms.dlq_age_threshold_seconds";
        let threshold = config.alarms.dlq_age_threshold_seconds;
        let retention = config.dlq.retention_seconds;
        if !DLQ_AGE_SECONDS.contains(&threshold) {
            self.range(path, threshold, DLQ_AGE_SECONDS);
        } else if SQS_RETENTION_SECONDS.contains(&retention) && threshold >= retention {
            self.push(
                path,
                format!(
                    "{threshold} is not below dlq.retention_seconds ({retention}): SQS would delete the message before the alarm fires; allowed {}..={}",
                    DLQ_AGE_SECONDS.start(),
                    retention - 1
                ),
            );
        }
    }
}

fn is_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    email.len() <= EMAIL_CHARS
        && !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
}
