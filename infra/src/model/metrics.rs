//! What the processor's EMF document declares (`processor::metrics::document`): per directive,
//! its dimension set, its metrics and how many values those dimensions take in one stack. The
//! cost of the custom metrics and the dashboard's metric references both come from here.
//!
//! `names` holds the metric and dimension names but not which metric goes under which
//! dimensions; the processor writes that out and these directives must follow it.

use crate::stack::MetricsConfig;

/// Values of the `EventType` dimension: `trade`, `quote`, and `unknown` for an event rejected
/// before its type was known (`processor::item::UNKNOWN_EVENT_TYPE`).
pub const FEED_EVENT_TYPES: usize = 3;
/// Metrics of the feed-health directive per exchange and event type.
pub const METRICS_PER_FEED: usize = 4;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmfSpec {
    pub namespace: &'static str,
    /// The `Exchange` dimension's values: the configured exchanges, then
    /// [`names::METRIC_OTHER_EXCHANGE`].
    pub exchanges: Vec<String>,
    pub directives: Vec<Directive>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directive {
    pub dimensions: Vec<&'static str>,
    pub metrics: Vec<&'static str>,
    /// How many combinations of dimension values the directive takes in one stack (whose
    /// `Environment` is one value).
    pub combinations: usize,
}

impl EmfSpec {
    pub fn new(config: &MetricsConfig) -> EmfSpec {
        let mut exchanges = config.exchanges.clone();
        exchanges.push(names::METRIC_OTHER_EXCHANGE.to_string());
        let feed: [&str; METRICS_PER_FEED] = [
            names::METRIC_PROCESSED,
            names::METRIC_DUPLICATE,
            names::METRIC_REJECTED,
            names::METRIC_LAG,
        ];
        let directives = vec![
            // What the alarms read: one series per metric.
            Directive {
                dimensions: vec![names::METRIC_DIMENSION],
                metrics: vec![
                    names::METRIC_PROCESSED,
                    names::METRIC_DUPLICATE,
                    names::METRIC_REJECTED,
                    names::METRIC_FAILED,
                    names::METRIC_PROCESSING_LATENCY,
                ],
                combinations: 1,
            },
            // Feed health: `Lag` is declared only for a stored event, under the same dimensions.
            Directive {
                dimensions: names::METRIC_FEED_DIMENSIONS.to_vec(),
                metrics: feed.to_vec(),
                combinations: exchanges.len() * FEED_EVENT_TYPES,
            },
            // Rejected events only, by what their first broken rule was about.
            Directive {
                dimensions: vec![
                    names::METRIC_DIMENSION,
                    names::METRIC_DIMENSION_REASON_CLASS,
                ],
                metrics: vec![names::METRIC_REJECTED],
                combinations: names::REJECT_CLASSES.len(),
            },
        ];
        EmfSpec {
            namespace: names::METRICS_NAMESPACE,
            exchanges,
            directives,
        }
    }

    /// The custom metric series CloudWatch keeps (and bills) for the stack: a metric under one
    /// combination of dimension values is one series.
    pub fn series(&self) -> usize {
        self.directives
            .iter()
            .map(|d| d.metrics.len() * d.combinations)
            .sum()
    }

    /// Whether the processor emits `metric` under exactly the dimension set `dimensions`.
    pub fn emits(&self, metric: &str, dimensions: &[&str]) -> bool {
        self.directives.iter().any(|d| {
            d.metrics.contains(&metric)
                && d.dimensions.len() == dimensions.len()
                && d.dimensions.iter().all(|n| dimensions.contains(n))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exchanges(n: usize) -> MetricsConfig {
        MetricsConfig {
            exchanges: (0..n).map(|i| format!("X{i}")).collect(),
        }
    }

    #[test]
    fn the_series_are_counted_per_directive() {
        // 5 under Environment; (exchanges + OTHER) x 3 event types x 4 under the feed's
        // dimensions; 6 reason classes x Rejected.
        assert_eq!(EmfSpec::new(&exchanges(0)).series(), 5 + 3 * 4 + 6);
        assert_eq!(EmfSpec::new(&exchanges(6)).series(), 5 + 7 * 3 * 4 + 6);
        assert_eq!(EmfSpec::new(&exchanges(6)).series(), 95);
        assert_eq!(EmfSpec::new(&exchanges(20)).series(), 263);
        let spec = EmfSpec::new(&exchanges(2));
        assert_eq!(spec.exchanges, ["X0", "X1", names::METRIC_OTHER_EXCHANGE]);
    }

    #[test]
    fn a_metric_is_emitted_under_its_own_dimension_sets_only() {
        let spec = EmfSpec::new(&exchanges(1));
        let feed = names::METRIC_FEED_DIMENSIONS;
        assert!(spec.emits(names::METRIC_LAG, &feed));
        assert!(spec.emits(names::METRIC_LAG, &[feed[2], feed[0], feed[1]]));
        assert!(!spec.emits(names::METRIC_LAG, &[names::METRIC_DIMENSION]));
        assert!(!spec.emits(names::METRIC_FAILED, &feed));
        assert!(spec.emits(
            names::METRIC_REJECTED,
            &[
                names::METRIC_DIMENSION_REASON_CLASS,
                names::METRIC_DIMENSION
            ]
        ));
        assert!(!spec.emits("Throughput", &[names::METRIC_DIMENSION]));
    }
}
