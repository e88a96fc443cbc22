//! The exchanges that get their own feed-health metrics: codes the processor can receive, each
//! once, and few enough that the metric series they add stay a known bill.

use super::Checks;
use crate::model::metrics::{FEED_EVENT_TYPES, METRICS_PER_FEED};
use crate::stack::MetricsConfig;

/// Each listed exchange adds [`FEED_EVENT_TYPES`] × [`METRICS_PER_FEED`] metric series, and
/// CloudWatch bills every series each month it has data; 20 keeps that under $80 a month.
pub const MAX_METRIC_EXCHANGES: usize = 20;
impl Checks {
    pub(super) fn metrics(&mut self, metrics: &MetricsConfig) {
        let exchanges = &metrics.exchanges;
        if exchanges.len() > MAX_METRIC_EXCHANGES {
            self.push(
                "metrics.exchanges",
                format!(
                    "{} exchanges; allowed at most {MAX_METRIC_EXCHANGES}: each adds {} metric \
                     series ({FEED_EVENT_TYPES} event types x {METRICS_PER_FEED} metrics), \
                     billed every month",
                    exchanges.len(),
                    FEED_EVENT_TYPES * METRICS_PER_FEED
                ),
            );
        }
        for (i, exchange) in exchanges.iter().enumerate() {
            let path = format!("metrics.exchanges[{i}]");
            if !names::is_exchange_code(exchange) {
                self.push(
                    &path,
                    format!(
                        "{exchange:?} is not an exchange code the processor accepts, so no event \
                         would ever carry it; allowed 1 to {} of A-Z 0-9 . - _, \
                         starting with a letter or digit",
                        names::MAX_EXCHANGE_LEN
                    ),
                );
            } else if exchange == names::METRIC_OTHER_EXCHANGE {
                self.push(
                    &path,
                    format!(
                        "{exchange:?} is the value every exchange not listed counts under; a real \
                         exchange of that name would be counted with them, so it cannot be listed"
                    ),
                );
            }
            if let Some(first) = exchanges[..i].iter().position(|e| e == exchange) {
                self.push(
                    &path,
                    format!("{exchange:?} is listed already, at metrics.exchanges[{first}]"),
                );
            }
        }
    }
}
