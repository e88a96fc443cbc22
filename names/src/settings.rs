//! Runtime settings read once at init from the Lambda environment.

use std::collections::HashMap;

use thiserror::Error;

use crate as names;

/// What the processor needs to know about its deployment. Built once, before the first event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub market_data_table: String,
    pub audit_trail_table: String,
    /// The latest trade and quote per symbol and exchange ([`names::LATEST_SCHEMA`]).
    pub latest_table: String,
    pub environment: String,
    pub ttl_days: u32,
    /// How many buckets the index keys spread over (see [`names::bucket_of`]).
    pub index_buckets: u16,
    pub accepted_sources: Vec<String>,
    pub log_level: String,
    /// How far in the future (relative to the processing clock) an event time may lie.
    pub max_future_skew_seconds: u32,
    /// How far in the past an event time may lie; older events would expire almost at once.
    pub max_event_age_seconds: u32,
    /// How long audit items are kept, in days: each one's `expires_at` is its write time plus
    /// this.
    pub audit_retention_days: u32,
    /// Partition keys of one Kinesis batch handled at once; one key's records run in order.
    pub batch_concurrency: u32,
    /// The exchanges that get their own feed-health metrics; others count as
    /// [`names::METRIC_OTHER_EXCHANGE`].
    pub metric_exchanges: Vec<String>,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum SettingsError {
    #[error("environment variable {0} is required but not set")]
    Missing(&'static str),
    #[error("environment variable {name} is empty")]
    Empty { name: &'static str },
    #[error("environment variable {name}={value:?} is invalid: {allowed}")]
    Invalid {
        name: &'static str,
        value: String,
        allowed: &'static str,
    },
}

impl Settings {
    pub const DEFAULT_TTL_DAYS: u32 = 30;
    /// Without the variable every item lands in bucket 0, which every query reads whatever
    /// count it fans out over: nothing is hidden, though a hot key is on one partition again.
    /// The model always sets the stack's count.
    pub const DEFAULT_INDEX_BUCKETS: u16 = 1;
    pub const DEFAULT_MAX_FUTURE_SKEW_SECONDS: u32 = 300;
    pub const DEFAULT_MAX_EVENT_AGE_SECONDS: u32 = 7 * 24 * 3600;
    /// Without the variable the trail is kept as long as a regulated firm keeps trade records
    /// (seven years, the longest of SEC Rule 17a-4's six and MiFID II's five to seven): a
    /// missing setting must never shorten it.
    pub const DEFAULT_AUDIT_RETENTION_DAYS: u32 = 2557;
    /// The longest retention the processor accepts (100 years).
    pub const MAX_AUDIT_RETENTION_DAYS: u32 = 36_500;
    /// Each key in flight holds one DynamoDB request at a time; the SDK's connection pool and
    /// the function's memory bound how many are worth having.
    pub const DEFAULT_BATCH_CONCURRENCY: u32 = 16;
    pub const MAX_BATCH_CONCURRENCY: u32 = 64;

    /// Reads the process environment.
    pub fn from_env() -> Result<Self, SettingsError> {
        let vars: HashMap<String, String> = std::env::vars().collect();
        Self::from_map(&vars)
    }

    /// Reads settings from any variable map, so tests need not touch the process environment.
    pub fn from_map(vars: &HashMap<String, String>) -> Result<Self, SettingsError> {
        let required = |name: &'static str| -> Result<String, SettingsError> {
            match vars.get(name) {
                None => Err(SettingsError::Missing(name)),
                Some(v) if v.trim().is_empty() => Err(SettingsError::Empty { name }),
                Some(v) => Ok(v.trim().to_string()),
            }
        };
        let bounded = |name: &'static str,
                       default: u32,
                       range: std::ops::RangeInclusive<u32>,
                       allowed: &'static str|
         -> Result<u32, SettingsError> {
            let Some(raw) = vars.get(name) else {
                return Ok(default);
            };
            match raw.trim().parse::<u32>() {
                Ok(v) if range.contains(&v) => Ok(v),
                _ => Err(SettingsError::Invalid {
                    name,
                    value: raw.clone(),
                    allowed,
                }),
            }
        };

        let market_data_table = required(names::ENV_MARKET_DATA_TABLE)?;
        let audit_trail_table = required(names::ENV_AUDIT_TRAIL_TABLE)?;
        let latest_table = required(names::ENV_LATEST_TABLE)?;
        let environment = required(names::ENV_ENVIRONMENT)?;
        let ttl_days = bounded(
            names::ENV_TTL_DAYS,
            Self::DEFAULT_TTL_DAYS,
            1..=3650,
            "a whole number of days from 1 to 3650",
        )?;
        let index_buckets = bounded(
            names::ENV_INDEX_BUCKETS,
            u32::from(Self::DEFAULT_INDEX_BUCKETS),
            1..=u32::from(names::MAX_INDEX_BUCKETS),
            "a whole number of buckets from 1 to 100",
        )?;
        let index_buckets = u16::try_from(index_buckets).unwrap_or(Self::DEFAULT_INDEX_BUCKETS);
        let max_future_skew_seconds = bounded(
            names::ENV_MAX_FUTURE_SKEW_SECONDS,
            Self::DEFAULT_MAX_FUTURE_SKEW_SECONDS,
            0..=86_400,
            "a whole number of seconds from 0 to 86400",
        )?;
        let max_event_age_seconds = bounded(
            names::ENV_MAX_EVENT_AGE_SECONDS,
            Self::DEFAULT_MAX_EVENT_AGE_SECONDS,
            1..=3650 * 86_400,
            "a whole number of seconds from 1 to 315360000",
        )?;

        let audit_retention_days = bounded(
            names::ENV_AUDIT_RETENTION_DAYS,
            Self::DEFAULT_AUDIT_RETENTION_DAYS,
            1..=Self::MAX_AUDIT_RETENTION_DAYS,
            "a whole number of days from 1 to 36500",
        )?;

        let batch_concurrency = bounded(
            names::ENV_BATCH_CONCURRENCY,
            Self::DEFAULT_BATCH_CONCURRENCY,
            1..=Self::MAX_BATCH_CONCURRENCY,
            "a whole number from 1 to 64",
        )?;

        let accepted_sources = match vars.get(names::ENV_ACCEPTED_SOURCES) {
            None => vec![names::DEFAULT_SOURCE.to_string()],
            Some(raw) => {
                let sources: Vec<String> = raw
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect();
                if sources.is_empty() {
                    return Err(SettingsError::Invalid {
                        name: names::ENV_ACCEPTED_SOURCES,
                        value: raw.clone(),
                        allowed: "a comma-separated list of one or more event sources",
                    });
                }
                sources
            }
        };

        let metric_exchanges = vars
            .get(names::ENV_METRIC_EXCHANGES)
            .map(|raw| {
                raw.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default();

        let log_level = vars
            .get(names::ENV_LOG_LEVEL)
            .map(|s| s.trim().to_ascii_lowercase())
            .unwrap_or_else(|| "info".to_string());
        if !["trace", "debug", "info", "warn", "error"].contains(&log_level.as_str()) {
            return Err(SettingsError::Invalid {
                name: names::ENV_LOG_LEVEL,
                value: log_level,
                allowed: "one of trace, debug, info, warn, error",
            });
        }

        Ok(Settings {
            market_data_table,
            audit_trail_table,
            latest_table,
            environment,
            ttl_days,
            index_buckets,
            accepted_sources,
            log_level,
            max_future_skew_seconds,
            max_event_age_seconds,
            audit_retention_days,
            batch_concurrency,
            metric_exchanges,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    const REQUIRED: [(&str, &str); 4] = [
        ("MARKET_DATA_TABLE", "market-data-dev"),
        ("AUDIT_TRAIL_TABLE", "audit-trail-dev"),
        ("LATEST_TABLE", "latest-prices-dev"),
        ("ENVIRONMENT", "dev"),
    ];

    #[test]
    fn defaults_apply_when_only_required_vars_are_set() {
        let s = Settings::from_map(&vars(&REQUIRED)).unwrap();
        assert_eq!(s.ttl_days, 30);
        assert_eq!(s.accepted_sources, vec!["market.data".to_string()]);
        assert_eq!(s.log_level, "info");
        assert_eq!(s.environment, "dev");
        assert_eq!(s.audit_retention_days, 2557);
        assert_eq!(s.index_buckets, 1);
        assert!(s.metric_exchanges.is_empty());
    }

    #[test]
    fn metric_exchanges_are_a_comma_separated_list() {
        let mut v = vars(&REQUIRED);
        v.insert("METRIC_EXCHANGES".into(), " NASDAQ, NYSE,,LSE ".into());
        let s = Settings::from_map(&v).unwrap();
        assert_eq!(s.metric_exchanges, ["NASDAQ", "NYSE", "LSE"]);
    }

    #[test]
    fn each_missing_required_var_is_named() {
        for (name, _) in REQUIRED {
            let partial: Vec<_> = REQUIRED.into_iter().filter(|(n, _)| *n != name).collect();
            let err = Settings::from_map(&vars(&partial)).unwrap_err();
            assert_eq!(err, SettingsError::Missing(name));
            assert!(err.to_string().contains(name));
        }
    }

    #[test]
    fn invalid_optional_values_are_rejected_with_the_variable_name() {
        for (name, value) in [
            ("TTL_DAYS", "0"),
            ("TTL_DAYS", "thirty"),
            ("ACCEPTED_SOURCES", " , "),
            ("LOG_LEVEL", "loud"),
            ("MAX_FUTURE_SKEW_SECONDS", "-1"),
            ("AUDIT_RETENTION_DAYS", "0"),
            ("AUDIT_RETENTION_DAYS", "36501"),
            ("INDEX_BUCKETS", "0"),
            ("INDEX_BUCKETS", "101"),
            ("INDEX_BUCKETS", "eight"),
        ] {
            let mut v = vars(&REQUIRED);
            v.insert(name.to_string(), value.to_string());
            let err = Settings::from_map(&v).unwrap_err();
            assert!(err.to_string().contains(name), "{err}");
        }
    }

    #[test]
    fn the_bucket_count_is_read_and_a_bad_one_names_the_variable() {
        let mut v = vars(&REQUIRED);
        v.insert("INDEX_BUCKETS".into(), " 16 ".into());
        assert_eq!(Settings::from_map(&v).unwrap().index_buckets, 16);
        v.insert("INDEX_BUCKETS".into(), "101".into());
        assert_eq!(
            Settings::from_map(&v).unwrap_err().to_string(),
            "environment variable INDEX_BUCKETS=\"101\" is invalid: a whole number of buckets from 1 to 100"
        );
    }

    #[test]
    fn sources_are_split_and_trimmed() {
        let mut v = vars(&REQUIRED);
        v.insert("ACCEPTED_SOURCES".into(), "market.data, feed.b ,".into());
        let s = Settings::from_map(&v).unwrap();
        assert_eq!(s.accepted_sources, vec!["market.data", "feed.b"]);
    }

    #[test]
    fn empty_required_var_is_an_error() {
        let mut v = vars(&REQUIRED);
        v.insert("ENVIRONMENT".into(), "  ".into());
        assert_eq!(
            Settings::from_map(&v).unwrap_err(),
            SettingsError::Empty {
                name: "ENVIRONMENT"
            }
        );
    }
}
