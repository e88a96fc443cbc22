//! The resources of one stack as plain data, computed once from its [`StackConfig`].
//!
//! The Pulumi renderer turns a [`Model`] into a program, and the local pipeline provisions the
//! same tables, bus, rules and queue into an emulator from it. Anything both need — names, keys,
//! indexes, event patterns, the Lambda environment — is decided here and nowhere else.

mod alarms;
pub mod cloudwatch;
mod dashboard;
pub mod indexes;
pub mod metrics;

use std::collections::BTreeMap;

use serde_json::json;

use crate::stack::principal::Principal;
use crate::stack::{BillingMode, EventClass, MappingConfig, StackConfig, StreamMode};

pub use alarms::{AlarmKind, AlarmMetric, AlarmSpec, Breach, MetricSpec, MissingData};
pub use dashboard::DashboardSpec;
pub use metrics::{Directive, EmfSpec};

/// The Pulumi project name; stack config keys are namespaced with it.
pub const PROJECT: &str = "market-data-pipeline";

/// Lambda runtime for a self-contained Rust `bootstrap` binary.
pub const RUNTIME: &str = "provided.al2023";
pub const HANDLER: &str = "bootstrap";

const BUS: &str = "market-data-bus";
const TRADE_RULE: &str = "trade-events";
const QUOTE_RULE: &str = "quote-events";
const ROLE: &str = "market-processor-role";
const ROLE_POLICY: &str = "market-processor-access";
const DLQ: &str = "market-processor-dlq";
const TOPIC: &str = "market-data-alarms";
const STREAM: &str = "market-data-stream";
const ARCHIVE: &str = "market-data-archive";
const DASHBOARD: &str = "market-data";
/// The key Kinesis encrypts the stream with: the account's AWS managed key for Kinesis, which
/// needs no key policy and no KMS permission on the producer's or the function's role.
pub const STREAM_KMS_KEY: &str = "alias/aws/kinesis";
/// Where a new mapping starts reading: the oldest record, so that nothing a producer put on the
/// stream before the mapping existed (during the first deploy, say) is skipped.
pub const STARTING_POSITION: &str = "TRIM_HORIZON";
const LOG_GROUP_PARENT: &str = "/aws/lambda/";
/// CloudWatch's limit on an alarm name.
const ALARM_NAME_LIMIT: usize = 255;

/// DynamoDB's limit on a table name.
const TABLE_NAME_LIMIT: usize = 255;

/// The key schemas of the stack's tables, in the order of [`Model::tables`]: the names of the
/// tables and of their alarms derive from these prefixes.
const TABLE_SCHEMAS: [&names::TableSchema; 3] = [
    &names::MARKET_DATA_SCHEMA,
    &names::AUDIT_TRAIL_SCHEMA,
    &names::LATEST_SCHEMA,
];

/// Every physical name is `<prefix>-<suffix>`; AWS caps each whole name at the given length.
/// The tightest entry, tables and alarms included, decides how long a suffix may be.
const NAME_LIMITS: [(&str, usize); 11] = [
    (BUS, 256),
    (ARCHIVE, 48),
    (DASHBOARD, 255),
    (TRADE_RULE, 64),
    (QUOTE_RULE, 64),
    (names::FUNCTION_BASE_NAME, 64),
    (ROLE, 64),
    (ROLE_POLICY, 128),
    (DLQ, 80),
    (TOPIC, 256),
    (STREAM, 128),
];

/// The longest environment suffix every resource name can carry.
pub fn max_suffix_len() -> usize {
    let table_prefixes = TABLE_SCHEMAS.map(|schema| schema.prefix);
    let alarms = alarms::name_prefixes(&[TRADE_RULE, QUOTE_RULE], &table_prefixes);
    NAME_LIMITS
        .iter()
        .map(|(prefix, limit)| (prefix.len(), *limit))
        .chain(
            table_prefixes
                .iter()
                .map(|prefix| (prefix.len(), TABLE_NAME_LIMIT)),
        )
        .chain(alarms.iter().map(|prefix| (prefix.len(), ALARM_NAME_LIMIT)))
        .map(|(prefix, limit)| limit.saturating_sub(prefix + 1))
        .min()
        .unwrap_or(0)
}

#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    pub suffix: String,
    pub region: String,
    /// Whether the production rules apply (the environment is `prod`).
    pub production: bool,
    pub tags: BTreeMap<String, String>,
    pub bus: BusSpec,
    /// The trade rule, then the quote rule.
    pub rules: Vec<RuleSpec>,
    /// market-data, then audit-trail, then latest-prices ([`TABLE_SCHEMAS`]).
    pub tables: Vec<TableSpec>,
    pub table_settings: TableSettings,
    pub dlq: QueueSpec,
    pub role: RoleSpec,
    pub log_group: LogGroupSpec,
    pub function: FunctionSpec,
    pub async_invoke: AsyncInvokeSpec,
    /// The SNS topic every alarm notifies, when the stack wants one.
    pub topic: Option<TopicSpec>,
    pub alarm_period_seconds: u32,
    pub alarm_evaluation_periods: u32,
    /// Periods the silent-feed alarm evaluates; the others evaluate `alarm_evaluation_periods`.
    pub silent_feed_periods: u32,
    pub alarms: Vec<AlarmSpec>,
    /// The stream path, when the stack has one.
    pub kinesis: Option<KinesisSpec>,
    pub archive: ArchiveSpec,
    /// The processor's custom metrics, as the stack's `metrics` configures them.
    pub emf: EmfSpec,
    pub dashboard: DashboardSpec,
}

/// The bus's archive, which replays read: every event of an accepted source, as it was put on
/// the bus. Stream records never pass the bus and are not in it (the stream keeps its own).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveSpec {
    pub name: String,
    pub retention_days: u32,
    /// The archive's filter, exactly as EventBridge receives it in Pulumi and in the emulator.
    pub event_pattern: serde_json::Value,
}

/// The Kinesis stream and the event source mapping that reads it into the processor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KinesisSpec {
    pub stream: StreamSpec,
    pub mapping: MappingSpec,
    /// The event classes the feed (and the tools) send through the stream.
    pub publish: Vec<EventClass>,
    /// What the mapping reads with the function's role, on the stream only.
    pub stream_actions: Vec<&'static str>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamSpec {
    pub name: String,
    pub mode: StreamMode,
    /// Set only with [`StreamMode::Provisioned`].
    pub shard_count: Option<u32>,
    pub retention_hours: u32,
    pub kms_key: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappingSpec {
    /// The stack's tunables, as its file sets them.
    pub config: MappingConfig,
    pub starting_position: &'static str,
    /// Always `ReportBatchItemFailures`: the processor answers with the records that failed.
    pub function_response_types: Vec<&'static str>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusSpec {
    pub name: String,
    pub publishers: Publishers,
    /// The only `source` values a publisher may put on the bus: the accepted sources.
    pub sources: Vec<String>,
}

/// Who may put events on the bus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Publishers {
    /// The account the stack is deployed into, resolved when Pulumi runs.
    DeployingAccount,
    Listed(Vec<Principal>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct RuleSpec {
    /// Stem of the Pulumi logical names of the rule, its target, permission and alarm.
    pub key: &'static str,
    pub name: String,
    pub description: String,
    pub sources: Vec<String>,
    pub detail_types: Vec<String>,
    pub event_pattern: serde_json::Value,
    /// Id of the Lambda target within the rule.
    pub target_id: &'static str,
    pub target_max_retry_attempts: u32,
    pub target_max_event_age_seconds: u32,
    /// The rule's name without the suffix; its alarms' names start with it.
    prefix: &'static str,
}

impl RuleSpec {
    /// The pattern exactly as EventBridge receives it, in Pulumi and in the emulator alike.
    pub fn event_pattern_json(&self) -> String {
        self.event_pattern.to_string()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttributeType {
    String,
}

impl AttributeType {
    /// DynamoDB's one-letter attribute type.
    pub fn as_str(self) -> &'static str {
        match self {
            AttributeType::String => "S",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttributeSpec {
    pub name: &'static str,
    pub kind: AttributeType,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexSpec {
    pub name: &'static str,
    pub hash_key: &'static str,
    pub range_key: &'static str,
    /// Every index projects all attributes: operators read whole items through them.
    pub projection: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSpec {
    pub key: &'static str,
    pub name: String,
    /// The name without the suffix; the table's alarms' names start with it.
    pub prefix: &'static str,
    pub hash_key: &'static str,
    pub range_key: &'static str,
    /// Every attribute used as a key by the table or an index, each once.
    pub attributes: Vec<AttributeSpec>,
    pub indexes: Vec<IndexSpec>,
    pub ttl_attribute: &'static str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableSettings {
    pub billing_mode: BillingMode,
    /// Set only with [`BillingMode::Provisioned`]; applies to each table and each index.
    pub capacity: Option<Capacity>,
    pub point_in_time_recovery: bool,
    pub deletion_protection: bool,
    /// Buckets each index partition key is spread over; the processor's `INDEX_BUCKETS`, and
    /// the buckets every query of the stack's indexes reads.
    pub index_buckets: u16,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capacity {
    pub read: u32,
    pub write: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueSpec {
    pub name: String,
    pub retention_seconds: u32,
}

/// The Lambda's role and the one inline policy it gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleSpec {
    pub name: String,
    pub policy_name: String,
    /// Per table, in the order of [`Model::tables`], on the table's ARN: `PutItem` for every
    /// write (conditional puts return the existing item themselves; on latest-prices a failed
    /// condition is an older event, which must not overwrite a newer one), `GetItem` on
    /// market-data to check the record behind a taken dedupe guard, `DescribeTable` for the
    /// warm-up at init.
    pub table_actions: Vec<Vec<&'static str>>,
    /// On one index's ARN each, never the table's: `Query` on market-data's `SymbolIndex`, where
    /// a replayed event with a new envelope id finds its original by symbol, event time and
    /// content (`processor::store::Store::find_same`).
    pub index_actions: Vec<IndexGrant>,
    /// On the function's own log group.
    pub log_actions: Vec<&'static str>,
    /// On the DLQ: Lambda sends failed asynchronous invocations there with the function's role.
    pub queue_actions: Vec<&'static str>,
}

/// Actions the role may take on one index of a table, and on nothing else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexGrant {
    /// The table, as its position in [`Model::tables`].
    pub table: usize,
    pub index: &'static str,
    pub actions: Vec<&'static str>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogGroupSpec {
    pub name: String,
    pub retention_days: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionSpec {
    pub name: String,
    pub runtime: &'static str,
    pub handler: &'static str,
    pub architecture: &'static str,
    /// Deployable archive, relative to the workspace root (the Pulumi project directory).
    pub package_path: &'static str,
    pub memory_mb: u32,
    pub timeout_seconds: u32,
    pub reserved_concurrency: Option<u32>,
    /// The processor's environment, also used verbatim when it runs locally.
    pub env: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AsyncInvokeSpec {
    pub max_retry_attempts: u32,
    pub max_event_age_seconds: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSpec {
    pub name: String,
    pub email: Option<String>,
}

impl Model {
    pub fn from_stack(config: &StackConfig) -> Model {
        let suffix = config.environment.as_str();
        let name = |prefix: &str| names::suffixed(prefix, suffix);
        let sources = config.events.accepted_sources.clone();

        let rule = |key: &'static str, prefix: &'static str, what: &str, types: [&str; 2]| {
            let detail_types: Vec<String> = types.iter().map(|t| t.to_string()).collect();
            RuleSpec {
                key,
                name: name(prefix),
                description: format!("Routes {what} events to the market-data processor"),
                event_pattern: json!({ "source": sources, "detail-type": detail_types }),
                sources: sources.clone(),
                detail_types,
                target_id: names::FUNCTION_BASE_NAME,
                target_max_retry_attempts: config.events.target_max_retry_attempts,
                target_max_event_age_seconds: config.events.target_max_event_age_seconds,
                prefix,
            }
        };
        let rules = vec![
            rule(
                "tradeEvents",
                TRADE_RULE,
                "trade",
                names::TRADE_DETAIL_TYPES,
            ),
            rule(
                "quoteEvents",
                QUOTE_RULE,
                "quote",
                names::QUOTE_DETAIL_TYPES,
            ),
        ];

        let market_data = market_data_table(name(names::MARKET_DATA_TABLE_PREFIX));
        let audit_trail = audit_trail_table(name(names::AUDIT_TRAIL_TABLE_PREFIX));
        let latest = latest_table(name(names::LATEST_TABLE_PREFIX));
        let db = &config.dynamodb;
        let capacity = match (db.billing_mode, db.read_capacity, db.write_capacity) {
            (BillingMode::Provisioned, Some(read), Some(write)) => Some(Capacity { read, write }),
            _ => None,
        };

        let function_name = name(names::FUNCTION_BASE_NAME);
        let mut env = BTreeMap::from([
            (
                names::ENV_MARKET_DATA_TABLE.to_string(),
                market_data.name.clone(),
            ),
            (
                names::ENV_AUDIT_TRAIL_TABLE.to_string(),
                audit_trail.name.clone(),
            ),
            (names::ENV_LATEST_TABLE.to_string(), latest.name.clone()),
            (names::ENV_ENVIRONMENT.to_string(), suffix.to_string()),
            (names::ENV_TTL_DAYS.to_string(), db.ttl_days.to_string()),
            (
                names::ENV_INDEX_BUCKETS.to_string(),
                db.index_buckets.to_string(),
            ),
            (
                names::ENV_MAX_EVENT_AGE_SECONDS.to_string(),
                config.events.max_event_age_seconds.to_string(),
            ),
            (
                names::ENV_MAX_FUTURE_SKEW_SECONDS.to_string(),
                config.events.max_future_skew_seconds.to_string(),
            ),
            (
                names::ENV_AUDIT_RETENTION_DAYS.to_string(),
                config.audit.retention_days.to_string(),
            ),
            (names::ENV_ACCEPTED_SOURCES.to_string(), sources.join(",")),
            (
                names::ENV_LOG_LEVEL.to_string(),
                config.lambda.log_level.as_str().to_string(),
            ),
        ]);
        // Left out when empty: the processor's own default is no exchange of its own.
        if !config.metrics.exchanges.is_empty() {
            env.insert(
                names::ENV_METRIC_EXCHANGES.to_string(),
                config.metrics.exchanges.join(","),
            );
        }
        let kinesis = config.kinesis.as_ref().map(|k| {
            env.insert(
                names::ENV_BATCH_CONCURRENCY.to_string(),
                k.mapping.concurrent_keys.to_string(),
            );
            let mut publish = k.publish.clone();
            publish.sort_unstable();
            publish.dedup();
            KinesisSpec {
                stream: StreamSpec {
                    name: name(STREAM),
                    mode: k.stream.capacity_mode,
                    shard_count: match k.stream.capacity_mode {
                        StreamMode::Provisioned => k.stream.shard_count,
                        StreamMode::OnDemand => None,
                    },
                    retention_hours: k.stream.retention_hours,
                    kms_key: STREAM_KMS_KEY,
                },
                mapping: MappingSpec {
                    config: k.mapping.clone(),
                    starting_position: STARTING_POSITION,
                    function_response_types: vec!["ReportBatchItemFailures"],
                },
                publish,
                stream_actions: vec![
                    "kinesis:DescribeStream",
                    "kinesis:DescribeStreamSummary",
                    "kinesis:GetRecords",
                    "kinesis:GetShardIterator",
                    "kinesis:ListShards",
                ],
            }
        });
        let dlq = QueueSpec {
            name: name(DLQ),
            retention_seconds: config.dlq.retention_seconds,
        };
        let alarms_config = &config.alarms;
        let topic = alarms_config.sns_topic.then(|| TopicSpec {
            name: name(TOPIC),
            email: alarms_config.email.clone(),
        });

        let bus = BusSpec {
            name: name(BUS),
            publishers: if config.events.publishers.is_empty() {
                Publishers::DeployingAccount
            } else {
                // Validation refuses what does not parse; leaving it out only narrows the policy.
                Publishers::Listed(
                    config
                        .events
                        .publishers
                        .iter()
                        .filter_map(|p| Principal::parse(p))
                        .collect(),
                )
            },
            sources: sources.clone(),
        };
        // The rules' sources, with no detail-type: an event the rules would not route is still
        // one a fixed rule may want to replay.
        let archive = ArchiveSpec {
            name: name(ARCHIVE),
            retention_days: config.archive.retention_days,
            event_pattern: json!({ "source": sources }),
        };
        let tables = vec![market_data, audit_trail, latest];
        let role = role(name(ROLE), name(ROLE_POLICY));
        let alarms = alarms::alarms(
            alarms_config,
            &alarms::Watched {
                suffix,
                function: &function_name,
                dlq: &dlq.name,
                bus: &bus.name,
                rules: &rules,
                tables: &tables,
                operations: role.table_operations(),
                stream_record_age_seconds: kinesis
                    .as_ref()
                    .map(|k| k.mapping.config.maximum_record_age_seconds),
            },
        );

        let emf = EmfSpec::new(&config.metrics);
        let dashboard = dashboard::dashboard(
            name(DASHBOARD),
            &dashboard::Shown {
                region: &config.region,
                environment: suffix,
                emf: &emf,
                function: &function_name,
                dlq: &dlq.name,
                tables: &tables,
                operations: role.table_operations(),
            },
        );

        Model {
            suffix: suffix.to_string(),
            region: config.region.clone(),
            production: config.is_production(),
            tags: config.tags.clone(),
            bus,
            rules,
            tables,
            table_settings: TableSettings {
                billing_mode: db.billing_mode,
                capacity,
                point_in_time_recovery: db.point_in_time_recovery,
                deletion_protection: db.deletion_protection,
                index_buckets: db.index_buckets,
            },
            role,
            log_group: LogGroupSpec {
                name: format!("{LOG_GROUP_PARENT}{function_name}"),
                retention_days: config.logs.retention_days,
            },
            function: FunctionSpec {
                name: function_name,
                runtime: RUNTIME,
                handler: HANDLER,
                architecture: config.lambda.architecture.as_str(),
                package_path: names::PACKAGE_PATH,
                memory_mb: config.lambda.memory_mb,
                timeout_seconds: config.lambda.timeout_seconds,
                reserved_concurrency: config.lambda.reserved_concurrency,
                env,
            },
            async_invoke: AsyncInvokeSpec {
                max_retry_attempts: config.async_invoke.max_retry_attempts,
                max_event_age_seconds: config.async_invoke.max_event_age_seconds,
            },
            dlq,
            topic,
            alarm_period_seconds: alarms_config.period_seconds,
            alarm_evaluation_periods: alarms_config.evaluation_periods,
            silent_feed_periods: alarms_config.silent_feed_periods,
            alarms,
            kinesis,
            archive,
            emf,
            dashboard,
        }
    }
}

/// The processor's role: only what it calls.
fn role(name: String, policy_name: String) -> RoleSpec {
    RoleSpec {
        name,
        policy_name,
        table_actions: vec![
            vec![
                "dynamodb:DescribeTable",
                "dynamodb:GetItem",
                "dynamodb:PutItem",
            ],
            vec!["dynamodb:DescribeTable", "dynamodb:PutItem"],
            vec!["dynamodb:DescribeTable", "dynamodb:PutItem"],
        ],
        index_actions: vec![IndexGrant {
            table: 0,
            index: names::SYMBOL_INDEX,
            actions: vec!["dynamodb:Query"],
        }],
        log_actions: vec!["logs:CreateLogStream", "logs:PutLogEvents"],
        queue_actions: vec!["sqs:SendMessage"],
    }
}

impl RoleSpec {
    /// Per table, the operations the processor calls while it handles an event, on the table
    /// or one of its indexes: its actions without `DescribeTable`, which runs once at init and
    /// fails it loudly instead. DynamoDB counts an index's throttled or failed requests under
    /// its table's name and the operation, so this is what the per-table alarms sum.
    pub fn table_operations(&self) -> Vec<Vec<&'static str>> {
        self.table_actions
            .iter()
            .enumerate()
            .map(|(table, actions)| {
                let on_indexes = self
                    .index_actions
                    .iter()
                    .filter(|grant| grant.table == table)
                    .flat_map(|grant| grant.actions.iter());
                let mut operations: Vec<&'static str> = actions
                    .iter()
                    .chain(on_indexes)
                    .filter_map(|action| action.strip_prefix("dynamodb:"))
                    .filter(|operation| *operation != "DescribeTable")
                    .collect();
                operations.sort_unstable();
                operations.dedup();
                operations
            })
            .collect()
    }
}

/// A table of the stack from its key schema in `names`, the one definition the
/// processor's writes and queries are built against.
fn table(key: &'static str, name: String, schema: &names::TableSchema) -> TableSpec {
    TableSpec {
        key,
        name,
        prefix: schema.prefix,
        hash_key: schema.hash_key,
        range_key: schema.range_key,
        attributes: schema
            .key_attributes()
            .into_iter()
            .map(|name| AttributeSpec {
                name,
                kind: AttributeType::String,
            })
            .collect(),
        indexes: schema
            .indexes
            .iter()
            .map(|index| IndexSpec {
                name: index.name,
                hash_key: index.hash_key,
                range_key: index.range_key,
                projection: "ALL",
            })
            .collect(),
        ttl_attribute: schema.ttl_attribute,
    }
}

pub fn market_data_table(name: String) -> TableSpec {
    table("marketDataTable", name, &names::MARKET_DATA_SCHEMA)
}

pub fn audit_trail_table(name: String) -> TableSpec {
    table("auditTrailTable", name, &names::AUDIT_TRAIL_SCHEMA)
}

pub fn latest_table(name: String) -> TableSpec {
    table("latestTable", name, &names::LATEST_SCHEMA)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn stack(name: &str) -> StackConfig {
        StackConfig::load(&crate::workspace_root(), name).expect("committed stack is valid")
    }

    /// Every physical name with the AWS limit on its length.
    fn physical_names(model: &Model) -> Vec<(String, usize)> {
        let mut names = vec![(model.bus.name.clone(), 256)];
        names.extend(model.rules.iter().map(|r| (r.name.clone(), 64)));
        names.extend(model.tables.iter().map(|t| (t.name.clone(), 255)));
        names.push((model.dlq.name.clone(), 80));
        names.push((model.archive.name.clone(), 48));
        names.push((model.dashboard.name.clone(), 255));
        names.push((model.role.name.clone(), 64));
        names.push((model.role.policy_name.clone(), 128));
        names.push((model.log_group.name.clone(), 512));
        names.push((model.function.name.clone(), 64));
        names.extend(model.topic.iter().map(|t| (t.name.clone(), 256)));
        names.extend(model.alarms.iter().map(|a| (a.name.clone(), 255)));
        names
    }

    #[test]
    fn the_longest_allowed_suffix_fits_every_name_and_one_more_does_not() {
        let mut config = stack("prod");
        let max = max_suffix_len();
        assert_eq!(max, 28, "the archive name (48) is the tightest");
        config.environment = "a".repeat(max);
        for (name, limit) in physical_names(&Model::from_stack(&config)) {
            assert!(name.len() <= limit, "{name} is longer than {limit}");
            assert!(name.ends_with(&config.environment), "{name}");
        }
        config.environment.push('a');
        let too_long = physical_names(&Model::from_stack(&config));
        assert!(too_long.iter().any(|(name, limit)| name.len() > *limit));
    }

    #[test]
    fn names_keys_and_indexes_come_from_the_processor() {
        let model = Model::from_stack(&stack("dev"));
        let market = &model.tables[0];
        assert_eq!(
            market.name,
            names::suffixed(names::MARKET_DATA_TABLE_PREFIX, "dev")
        );
        assert_eq!(
            (market.hash_key, market.range_key),
            (names::EVENT_ID, names::TIMESTAMP)
        );
        let indexes: Vec<&str> = market.indexes.iter().map(|i| i.name).collect();
        assert_eq!(indexes, [names::EXCHANGE_INDEX, names::SYMBOL_INDEX]);
        let audit = &model.tables[1];
        assert_eq!(audit.name, "audit-trail-dev");
        assert_eq!(
            (audit.hash_key, audit.range_key),
            (names::AUDIT_ID, names::TIMESTAMP)
        );
        assert_eq!(audit.indexes[0].name, names::EVENT_TYPE_INDEX);
        let latest = &model.tables[2];
        assert_eq!(
            latest.name,
            names::suffixed(names::LATEST_TABLE_PREFIX, "dev")
        );
        assert_eq!(
            (latest.hash_key, latest.range_key),
            (names::SYMBOL, names::VIEW)
        );
        assert!(latest.indexes.is_empty(), "read a symbol at a time");
        let prefixes: Vec<&str> = model.tables.iter().map(|t| t.prefix).collect();
        assert_eq!(
            prefixes,
            TABLE_SCHEMAS.map(|s| s.prefix),
            "one list of tables"
        );
        for table in &model.tables {
            assert_eq!(table.ttl_attribute, names::EXPIRES_AT);
            let mut keys: Vec<&str> = vec![table.hash_key, table.range_key];
            keys.extend(table.indexes.iter().flat_map(|i| [i.hash_key, i.range_key]));
            for key in keys {
                assert!(
                    table.attributes.iter().any(|a| a.name == key),
                    "{key} is not an attribute"
                );
            }
            let mut declared: Vec<&str> = table.attributes.iter().map(|a| a.name).collect();
            let count = declared.len();
            declared.dedup();
            assert_eq!(declared.len(), count, "attributes are declared once");
        }
        assert_eq!(model.function.name, "market-processor-dev");
        assert_eq!(model.function.package_path, names::PACKAGE_PATH);
    }

    #[test]
    fn event_patterns_are_computed_once_as_json() {
        let model = Model::from_stack(&stack("dev"));
        assert_eq!(
            model.rules[0].event_pattern_json(),
            r#"{"detail-type":["Trade Execution","Trade Update"],"source":["market.data"]}"#
        );
        assert_eq!(
            model.rules[1].event_pattern_json(),
            r#"{"detail-type":["Market Quote","Price Update"],"source":["market.data"]}"#
        );
    }

    #[test]
    fn the_processor_accepts_the_environment_the_model_gives_it() {
        for name in ["dev", "staging", "prod"] {
            let model = Model::from_stack(&stack(name));
            let vars: HashMap<String, String> = model.function.env.clone().into_iter().collect();
            let settings =
                names::Settings::from_map(&vars).unwrap_or_else(|err| panic!("{name}: {err}"));
            assert_eq!(settings.market_data_table, model.tables[0].name);
            assert_eq!(settings.audit_trail_table, model.tables[1].name);
            assert_eq!(settings.latest_table, model.tables[2].name);
            assert_eq!(settings.environment, model.suffix);
            assert_eq!(settings.accepted_sources, model.rules[0].sources);
            let config = stack(name);
            assert_eq!(settings.ttl_days, config.dynamodb.ttl_days);
            assert_eq!(
                settings.max_event_age_seconds,
                config.events.max_event_age_seconds
            );
            assert_eq!(
                settings.max_future_skew_seconds,
                config.events.max_future_skew_seconds
            );
            assert_eq!(settings.audit_retention_days, config.audit.retention_days);
            assert_eq!(settings.index_buckets, config.dynamodb.index_buckets);
            assert_eq!(settings.metric_exchanges, config.metrics.exchanges);
            assert_eq!(model.table_settings.index_buckets, settings.index_buckets);
        }
    }

    #[test]
    fn the_environment_carries_every_limit_the_stack_sets() {
        // Not the processor's defaults: dev keeps its trail 30 days, not seven years.
        let mut config = stack("dev");
        config.events.max_event_age_seconds = 7200;
        config.events.max_future_skew_seconds = 60;
        config.audit.retention_days = 9;
        let env = Model::from_stack(&config).function.env;
        assert_eq!(env[names::ENV_MAX_EVENT_AGE_SECONDS], "7200");
        assert_eq!(env[names::ENV_MAX_FUTURE_SKEW_SECONDS], "60");
        assert_eq!(env[names::ENV_AUDIT_RETENTION_DAYS], "9");
    }

    #[test]
    fn the_archive_keeps_every_accepted_source_as_long_as_the_stack_says() {
        let mut config = stack("prod");
        config.events.accepted_sources = vec!["market.data".into(), "market.backfill".into()];
        config.archive.retention_days = 21;
        let archive = Model::from_stack(&config).archive;
        assert_eq!(archive.name, "market-data-archive-prod");
        assert_eq!(archive.retention_days, 21);
        assert_eq!(
            archive.event_pattern.to_string(),
            r#"{"source":["market.data","market.backfill"]}"#
        );
    }

    #[test]
    fn the_metric_exchanges_reach_the_processor_only_when_there_are_any() {
        let mut config = stack("prod");
        assert_eq!(
            config.metrics.exchanges,
            ["NASDAQ", "NYSE", "LSE", "XETRA", "TSE", "COINBASE"]
        );
        let model = Model::from_stack(&config);
        assert_eq!(
            model.function.env[names::ENV_METRIC_EXCHANGES],
            "NASDAQ,NYSE,LSE,XETRA,TSE,COINBASE"
        );
        // 5 + (6 exchanges + OTHER) x 3 event types x 4 + 6 reason classes.
        assert_eq!(model.emf.series(), 95);
        config.metrics.exchanges.clear();
        let model = Model::from_stack(&config);
        assert!(!model.function.env.contains_key(names::ENV_METRIC_EXCHANGES));
        assert_eq!(model.emf.exchanges, [names::METRIC_OTHER_EXCHANGE]);
        assert_eq!(model.emf.series(), 5 + 12 + 6);
    }

    #[test]
    fn the_bus_takes_its_publishers_and_sources_from_the_stack() {
        let dev = Model::from_stack(&stack("dev"));
        assert_eq!(dev.bus.publishers, Publishers::DeployingAccount);
        assert_eq!(dev.bus.sources, ["market.data"]);
        let mut config = stack("prod");
        config.events.publishers = vec![
            "123456789012".to_string(),
            "arn:aws:iam::123456789012:role/feed".to_string(),
        ];
        assert_eq!(
            Model::from_stack(&config).bus.publishers,
            Publishers::Listed(vec![
                Principal::Account("123456789012".to_string()),
                Principal::Arn("arn:aws:iam::123456789012:role/feed".to_string()),
            ])
        );
        assert!(Model::from_stack(&config).production);
        assert!(!dev.production);
    }

    #[test]
    fn production_follows_the_environment() {
        let mut config = stack("dev");
        config.environment = "prod".to_string();
        assert!(Model::from_stack(&config).production);
    }

    #[test]
    fn the_role_grants_only_what_the_processor_calls() {
        let model = Model::from_stack(&stack("prod"));
        assert_eq!(
            model.role.table_actions,
            [
                vec![
                    "dynamodb:DescribeTable",
                    "dynamodb:GetItem",
                    "dynamodb:PutItem"
                ],
                vec!["dynamodb:DescribeTable", "dynamodb:PutItem"],
                // The conditional put that keeps the newest event; nothing reads it here.
                vec!["dynamodb:DescribeTable", "dynamodb:PutItem"]
            ]
        );
        // Query reaches one index of market-data and not the table itself.
        assert_eq!(
            model.role.index_actions,
            [IndexGrant {
                table: 0,
                index: names::SYMBOL_INDEX,
                actions: vec!["dynamodb:Query"],
            }]
        );
        assert!(
            model.role.table_actions[0]
                .iter()
                .all(|a| *a != "dynamodb:Query")
        );
        let index = &model.tables[0].indexes;
        assert!(index.iter().any(|i| i.name == names::SYMBOL_INDEX));
        assert_eq!(
            model.role.log_actions,
            ["logs:CreateLogStream", "logs:PutLogEvents"]
        );
        assert_eq!(model.role.queue_actions, ["sqs:SendMessage"]);
    }

    #[test]
    fn optional_resources_follow_the_stack() {
        let dev = Model::from_stack(&stack("dev"));
        assert!(dev.topic.is_none());
        assert!(dev.function.reserved_concurrency.is_none());
        let prod = Model::from_stack(&stack("prod"));
        let topic = prod.topic.expect("prod has an alarm topic");
        assert!(topic.email.is_some());
        assert!(prod.function.reserved_concurrency.is_some());
        let kinds: Vec<AlarmKind> = prod.alarms.iter().map(|a| a.kind).collect();
        assert_eq!(
            kinds,
            [
                AlarmKind::FunctionErrors,
                AlarmKind::FunctionThrottles,
                AlarmKind::FunctionDuration,
                AlarmKind::AsyncEventsDropped,
                AlarmKind::DestinationDeliveryFailures,
                AlarmKind::DeadLetterErrors,
                AlarmKind::DlqMessages,
                AlarmKind::DlqAge,
                AlarmKind::RuleFailedInvocations(0),
                AlarmKind::RuleDlqFailures(0),
                AlarmKind::RuleFailedInvocations(1),
                AlarmKind::RuleDlqFailures(1),
                AlarmKind::TableThrottles(0),
                AlarmKind::TableSystemErrors(0),
                AlarmKind::TableThrottles(1),
                AlarmKind::TableSystemErrors(1),
                AlarmKind::TableThrottles(2),
                AlarmKind::TableSystemErrors(2),
                AlarmKind::SilentFeed,
                AlarmKind::RejectedShare,
                AlarmKind::StreamIteratorAge,
            ]
        );
        // Dev, without a topic or a stream, has the same alarms but the stream's.
        assert_eq!(dev.alarms.len() + 1, prod.alarms.len());
        assert!(dev.kinesis.is_none());
        let kinesis = prod.kinesis.expect("prod has the stream path");
        assert_eq!(kinesis.publish, [crate::stack::EventClass::Quote]);
        assert_eq!(kinesis.mapping.starting_position, "TRIM_HORIZON");
        assert_eq!(
            kinesis.mapping.function_response_types,
            ["ReportBatchItemFailures"]
        );
        assert_eq!(kinesis.stream.shard_count, None);
        let staging = Model::from_stack(&stack("staging"));
        let stream = staging.kinesis.expect("staging has the stream path").stream;
        assert_eq!(stream.shard_count, Some(2));
        assert_eq!(
            staging
                .function
                .env
                .get(names::ENV_BATCH_CONCURRENCY)
                .map(String::as_str),
            Some("16")
        );
        assert!(!dev.function.env.contains_key(names::ENV_BATCH_CONCURRENCY));
    }

    #[test]
    fn loss_counters_alarm_on_one_period_and_only_the_silent_feed_breaches_on_silence() {
        let model = Model::from_stack(&stack("prod"));
        for alarm in &model.alarms {
            let counter = !matches!(
                alarm.kind,
                AlarmKind::FunctionErrors
                    | AlarmKind::FunctionThrottles
                    | AlarmKind::FunctionDuration
                    | AlarmKind::SilentFeed
                    | AlarmKind::RejectedShare
                    | AlarmKind::StreamIteratorAge
            );
            assert_eq!(alarm.breach == Breach::Any, counter, "{}", alarm.key);
            let silent = alarm.kind == AlarmKind::SilentFeed;
            assert_eq!(
                alarm.missing_data == MissingData::Breaching,
                silent,
                "{}",
                alarm.key
            );
        }
    }

    #[test]
    fn table_alarms_watch_the_operations_the_processor_calls() {
        let model = Model::from_stack(&stack("dev"));
        assert_eq!(
            model.role.table_operations(),
            [
                vec!["GetItem", "PutItem", "Query"],
                vec!["PutItem"],
                vec!["PutItem"]
            ]
        );
        let throttles = |index| {
            model
                .alarms
                .iter()
                .find(|a| a.kind == AlarmKind::TableThrottles(index))
                .map(|a| a.metric.clone())
        };
        let Some(AlarmMetric::Expression {
            expression,
            metrics,
            ..
        }) = throttles(0)
        else {
            panic!("market-data sums three operations");
        };
        // Query on SymbolIndex throttles under the table's name, as Query.
        assert_eq!(
            expression,
            "FILL(getitem, 0) + FILL(putitem, 0) + FILL(query, 0)"
        );
        assert_eq!(metrics.len(), 3);
        assert_eq!(metrics[2].1.dimensions["Operation"], "Query");
        assert_eq!(metrics[2].1.dimensions["TableName"], "market-data-dev");
        let Some(AlarmMetric::Metric(metric)) = throttles(1) else {
            panic!("audit-trail has one operation");
        };
        assert_eq!(metric.dimensions["Operation"], "PutItem");
        assert_eq!(metric.dimensions["TableName"], "audit-trail-dev");
        for kind in [
            AlarmKind::TableThrottles(2),
            AlarmKind::TableSystemErrors(2),
        ] {
            let alarm = model.alarms.iter().find(|a| a.kind == kind);
            let Some(AlarmMetric::Metric(metric)) = alarm.map(|a| &a.metric) else {
                panic!("latest-prices has one operation: {kind:?}");
            };
            assert_eq!(metric.dimensions["Operation"], "PutItem");
            assert_eq!(metric.dimensions["TableName"], "latest-prices-dev");
        }
    }
}
