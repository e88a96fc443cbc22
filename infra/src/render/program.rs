//! [`Model`] → Pulumi YAML program. Pulumi YAML has no loops or conditionals, so everything a
//! stack may or may not have (rules, indexes, the alarm topic, reserved concurrency) is unrolled
//! here. Tunables come from config declared at the top; outputs come last.

mod alarms;
mod bus;
mod stream;

use serde_yaml::{Mapping, Value};

use crate::model::{AlarmKind, Model, PROJECT, RuleSpec, TableSpec};

/// A project config key: declared in the program, valued in `Pulumi.<stack>.yaml`.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigEntry {
    pub key: &'static str,
    /// Pulumi YAML config type: `string`, `integer` or `boolean`.
    pub ty: &'static str,
    pub description: &'static str,
    pub value: Value,
}

const EVENT_BUS: &str = "eventBus";
const ARCHIVE: &str = "eventArchive";
const DLQ: &str = "deadLetterQueue";
const DLQ_POLICY: &str = "deadLetterQueuePolicy";
const LOG_GROUP: &str = "processorLogGroup";
const ROLE: &str = "processorRole";
const ROLE_POLICY: &str = "processorPolicy";
const FUNCTION: &str = "processorFunction";
const ASYNC_CONFIG: &str = "processorAsyncConfig";
const TOPIC: &str = "alarmTopic";
const EMAIL_SUBSCRIPTION: &str = "alarmEmailSubscription";
const DASHBOARD: &str = "dashboard";

const MEMORY: &str = "lambdaMemoryMb";
const TIMEOUT: &str = "lambdaTimeoutSeconds";
const RESERVED: &str = "lambdaReservedConcurrency";
const LOG_RETENTION: &str = "logRetentionDays";
const BILLING: &str = "dynamodbBillingMode";
const READ_CAPACITY: &str = "dynamodbReadCapacity";
const WRITE_CAPACITY: &str = "dynamodbWriteCapacity";
const PITR: &str = "pointInTimeRecovery";
const DELETION_PROTECTION: &str = "deletionProtection";
const TARGET_RETRIES: &str = "targetMaxRetryAttempts";
const TARGET_AGE: &str = "targetMaxEventAgeSeconds";
const ASYNC_RETRIES: &str = "asyncMaxRetryAttempts";
const ASYNC_AGE: &str = "asyncMaxEventAgeSeconds";
const DLQ_RETENTION: &str = "dlqRetentionSeconds";
const ARCHIVE_RETENTION: &str = "archiveRetentionDays";
const ALARM_PERIOD: &str = "alarmPeriodSeconds";
const ALARM_EVALUATIONS: &str = "alarmEvaluationPeriods";
const ERRORS_THRESHOLD: &str = "errorsAlarmThreshold";
const THROTTLES_THRESHOLD: &str = "throttlesAlarmThreshold";
const DURATION_THRESHOLD: &str = "durationAlarmThresholdMs";
const FAILED_THRESHOLD: &str = "failedInvocationsAlarmThreshold";
const DLQ_AGE_THRESHOLD: &str = "dlqAgeAlarmThresholdSeconds";
const SILENT_FEED_MIN: &str = "silentFeedMinProcessed";
const SILENT_FEED_PERIODS: &str = "silentFeedEvaluationPeriods";
const REJECTED_THRESHOLD: &str = "rejectedPercentAlarmThreshold";
const ALARM_EMAIL: &str = "alarmEmail";

const IAM_VERSION: &str = "2012-10-17";

/// The project config of a stack, in declaration order.
pub fn config_entries(model: &Model) -> Vec<ConfigEntry> {
    let mut entries = Vec::new();
    let mut add = |key, ty, description, value: Value| {
        entries.push(ConfigEntry {
            key,
            ty,
            description,
            value,
        })
    };
    let f = &model.function;
    add(MEMORY, "integer", "Lambda memory in MB", int(f.memory_mb));
    add(
        TIMEOUT,
        "integer",
        "Lambda timeout in seconds",
        int(f.timeout_seconds),
    );
    if let Some(reserved) = f.reserved_concurrency {
        add(
            RESERVED,
            "integer",
            "Concurrency reserved for the processor",
            int(reserved),
        );
    }
    add(
        LOG_RETENTION,
        "integer",
        "Days CloudWatch keeps the processor's logs",
        int(model.log_group.retention_days),
    );
    let t = &model.table_settings;
    add(
        BILLING,
        "string",
        "DynamoDB billing mode of every table",
        string(t.billing_mode.as_str()),
    );
    if let Some(capacity) = t.capacity {
        add(
            READ_CAPACITY,
            "integer",
            "Read capacity units per table and index",
            int(capacity.read),
        );
        add(
            WRITE_CAPACITY,
            "integer",
            "Write capacity units per table and index",
            int(capacity.write),
        );
    }
    add(
        PITR,
        "boolean",
        "Point-in-time recovery on every table",
        Value::Bool(t.point_in_time_recovery),
    );
    add(
        DELETION_PROTECTION,
        "boolean",
        "Deletion protection on every table",
        Value::Bool(t.deletion_protection),
    );
    if let Some(rule) = model.rules.first() {
        add(
            TARGET_RETRIES,
            "integer",
            "EventBridge retries per event before the target DLQ",
            int(rule.target_max_retry_attempts),
        );
        add(
            TARGET_AGE,
            "integer",
            "Seconds EventBridge keeps retrying an event",
            int(rule.target_max_event_age_seconds),
        );
    }
    let a = &model.async_invoke;
    add(
        ASYNC_RETRIES,
        "integer",
        "Lambda retries after a function error",
        int(a.max_retry_attempts),
    );
    add(
        ASYNC_AGE,
        "integer",
        "Seconds Lambda keeps an asynchronous event",
        int(a.max_event_age_seconds),
    );
    add(
        DLQ_RETENTION,
        "integer",
        "Seconds the DLQ keeps a message",
        int(model.dlq.retention_seconds),
    );
    add(
        ARCHIVE_RETENTION,
        "integer",
        "Days the bus's archive keeps an event for replays",
        int(model.archive.retention_days),
    );
    add(
        ALARM_PERIOD,
        "integer",
        "Alarm period in seconds",
        int(model.alarm_period_seconds),
    );
    add(
        ALARM_EVALUATIONS,
        "integer",
        "Periods an alarm evaluates",
        int(model.alarm_evaluation_periods),
    );
    for (kind, key, description) in [
        (
            AlarmKind::FunctionErrors,
            ERRORS_THRESHOLD,
            "Lambda errors per period that alarm",
        ),
        (
            AlarmKind::FunctionThrottles,
            THROTTLES_THRESHOLD,
            "Lambda throttles per period that alarm",
        ),
        (
            AlarmKind::FunctionDuration,
            DURATION_THRESHOLD,
            "Average Lambda duration (ms) that alarms",
        ),
        (
            AlarmKind::RuleFailedInvocations(0),
            FAILED_THRESHOLD,
            "Failed EventBridge invocations per rule and period that alarm",
        ),
        (
            AlarmKind::DlqAge,
            DLQ_AGE_THRESHOLD,
            "Age (s) of the DLQ's oldest message that alarms",
        ),
        (
            AlarmKind::SilentFeed,
            SILENT_FEED_MIN,
            "Fewest events stored per period before the silent-feed alarm counts the period",
        ),
        (
            AlarmKind::RejectedShare,
            REJECTED_THRESHOLD,
            "Share of rejected events (percent of all outcomes) per period that alarms",
        ),
    ] {
        if let Some(alarm) = model.alarms.iter().find(|a| a.kind == kind) {
            add(key, "integer", description, int(alarm.threshold));
            if kind == AlarmKind::SilentFeed {
                add(
                    SILENT_FEED_PERIODS,
                    "integer",
                    "Periods in a row below the floor (or without data) that alarm",
                    int(model.silent_feed_periods),
                );
            }
        }
    }
    if let Some(email) = model.topic.as_ref().and_then(|t| t.email.as_ref()) {
        add(
            ALARM_EMAIL,
            "string",
            "Address subscribed to the alarm topic",
            string(email),
        );
    }
    if let Some(kinesis) = &model.kinesis {
        entries.extend(stream::config_entries(kinesis));
    }
    entries
}

/// The whole program for one stack, keys in the order Pulumi readers expect.
pub fn program(model: &Model, provider_version: &str) -> Value {
    let entries = config_entries(model);
    let config = obj(entries.iter().map(|e| {
        (
            e.key,
            obj([
                ("type", string(e.ty)),
                ("description", string(e.description)),
            ]),
        )
    }));
    let mut resources = Resources {
        model,
        version: provider_version,
        entries: Mapping::new(),
    };
    resources.all();
    let mut top = vec![
        ("name", string(PROJECT)),
        (
            "description",
            string(
                "Market-data pipeline: EventBridge rules route trades and quotes to a Lambda that stores them in DynamoDB",
            ),
        ),
        ("runtime", string("yaml")),
        ("config", config),
    ];
    let variables = bus::variables(model);
    if !variables.is_empty() {
        top.push(("variables", Value::Mapping(variables)));
    }
    top.push(("resources", Value::Mapping(resources.entries)));
    top.push(("outputs", outputs(model)));
    obj(top)
}

struct Resources<'m> {
    model: &'m Model,
    version: &'m str,
    entries: Mapping,
}

impl Resources<'_> {
    fn add(
        &mut self,
        name: impl Into<String>,
        token: &str,
        properties: Value,
        depends_on: &[&str],
    ) {
        let mut options = vec![("version", string(self.version))];
        if !depends_on.is_empty() {
            options.push((
                "dependsOn",
                seq(depends_on.iter().map(|d| string(format!("${{{d}}}")))),
            ));
        }
        self.entries.insert(
            string(name.into()),
            obj([
                ("type", string(token)),
                ("properties", properties),
                ("options", obj(options)),
            ]),
        );
    }

    fn tags(&self) -> Value {
        obj(self.model.tags.iter().map(|(k, v)| (k.as_str(), string(v))))
    }

    fn all(&mut self) {
        self.bus();
        self.archive();
        self.bus_policy();
        for rule in &self.model.rules {
            self.rule(rule);
        }
        self.dead_letter_queue();
        self.stream();
        for table in &self.model.tables {
            self.table(table);
        }
        self.role();
        self.function();
        for rule in &self.model.rules {
            self.target(rule);
        }
        self.stream_mapping();
        self.alarms();
        self.dashboard();
    }

    /// Dimensions name resources by physical name, as the alarms do: the body is a literal, so
    /// the dashboard needs no other resource to exist first.
    fn dashboard(&mut self) {
        let dashboard = &self.model.dashboard;
        let properties = obj([
            ("dashboardName", string(&dashboard.name)),
            ("dashboardBody", string(dashboard.body_json())),
        ]);
        self.add(
            DASHBOARD,
            "aws:cloudwatch/dashboard:Dashboard",
            properties,
            &[],
        );
    }

    fn bus(&mut self) {
        let properties = obj([
            ("name", string(&self.model.bus.name)),
            ("tags", self.tags()),
        ]);
        self.add(
            EVENT_BUS,
            "aws:cloudwatch/eventBus:EventBus",
            properties,
            &[],
        );
    }

    /// What `cargo xtask replay` replays from. EventBridge does not archive the events it
    /// replays, so a replay does not grow the archive.
    fn archive(&mut self) {
        let archive = &self.model.archive;
        let properties = obj([
            ("name", string(&archive.name)),
            (
                "description",
                string("Every event of an accepted source, for replays to the processor"),
            ),
            ("eventSourceArn", reference(EVENT_BUS, "arn")),
            // The exact JSON the local emulator's archive gets too.
            ("eventPattern", string(archive.event_pattern.to_string())),
            ("retentionDays", config(ARCHIVE_RETENTION)),
        ]);
        self.add(
            ARCHIVE,
            "aws:cloudwatch/eventArchive:EventArchive",
            properties,
            &[],
        );
    }

    fn rule(&mut self, rule: &RuleSpec) {
        let properties = obj([
            ("name", string(&rule.name)),
            ("description", string(&rule.description)),
            ("eventBusName", reference(EVENT_BUS, "name")),
            // The exact JSON the local emulator gets too; see RuleSpec::event_pattern_json.
            ("eventPattern", string(rule.event_pattern_json())),
            ("state", string("ENABLED")),
            ("tags", self.tags()),
        ]);
        self.add(
            rule_name(rule),
            "aws:cloudwatch/eventRule:EventRule",
            properties,
            &[],
        );
    }

    fn dead_letter_queue(&mut self) {
        let properties = obj([
            ("name", string(&self.model.dlq.name)),
            ("messageRetentionSeconds", config(DLQ_RETENTION)),
            ("sqsManagedSseEnabled", Value::Bool(true)),
            ("tags", self.tags()),
        ]);
        self.add(DLQ, "aws:sqs/queue:Queue", properties, &[]);

        // Without this policy EventBridge cannot deliver to the target DLQ and drops the event.
        let rule_arns = seq(self
            .model
            .rules
            .iter()
            .map(|r| reference(&rule_name(r), "arn")));
        let statement = obj([
            ("Sid", string("AllowEventBridgeRuleDeadLetters")),
            ("Effect", string("Allow")),
            (
                "Principal",
                obj([("Service", string("events.amazonaws.com"))]),
            ),
            ("Action", string("sqs:SendMessage")),
            ("Resource", reference(DLQ, "arn")),
            (
                "Condition",
                obj([("ArnEquals", obj([("aws:SourceArn", rule_arns)]))]),
            ),
        ]);
        let properties = obj([
            ("queueUrl", reference(DLQ, "url")),
            ("policy", to_json(policy_document(vec![statement]))),
        ]);
        self.add(
            DLQ_POLICY,
            "aws:sqs/queuePolicy:QueuePolicy",
            properties,
            &[],
        );
    }

    fn table(&mut self, table: &TableSpec) {
        let capacity = self.model.table_settings.capacity.is_some();
        let mut properties = vec![
            ("name", string(&table.name)),
            ("billingMode", config(BILLING)),
        ];
        if capacity {
            properties.push(("readCapacity", config(READ_CAPACITY)));
            properties.push(("writeCapacity", config(WRITE_CAPACITY)));
        }
        properties.extend([
            ("hashKey", string(table.hash_key)),
            ("rangeKey", string(table.range_key)),
            (
                "attributes",
                seq(table
                    .attributes
                    .iter()
                    .map(|a| obj([("name", string(a.name)), ("type", string(a.kind.as_str()))]))),
            ),
            (
                "globalSecondaryIndexes",
                seq(table.indexes.iter().map(|index| {
                    let mut gsi = vec![
                        ("name", string(index.name)),
                        (
                            "keySchemas",
                            seq([
                                obj([
                                    ("attributeName", string(index.hash_key)),
                                    ("keyType", string("HASH")),
                                ]),
                                obj([
                                    ("attributeName", string(index.range_key)),
                                    ("keyType", string("RANGE")),
                                ]),
                            ]),
                        ),
                        ("projectionType", string(index.projection)),
                    ];
                    if capacity {
                        gsi.push(("readCapacity", config(READ_CAPACITY)));
                        gsi.push(("writeCapacity", config(WRITE_CAPACITY)));
                    }
                    obj(gsi)
                })),
            ),
            (
                "ttl",
                obj([
                    ("attributeName", string(table.ttl_attribute)),
                    ("enabled", Value::Bool(true)),
                ]),
            ),
            ("pointInTimeRecovery", obj([("enabled", config(PITR))])),
            (
                "serverSideEncryption",
                obj([("enabled", Value::Bool(true))]),
            ),
            ("deletionProtectionEnabled", config(DELETION_PROTECTION)),
            ("tags", self.tags()),
        ]);
        self.add(table.key, "aws:dynamodb/table:Table", obj(properties), &[]);
    }

    fn role(&mut self) {
        let role = &self.model.role;
        let trust = obj([
            ("Effect", string("Allow")),
            (
                "Principal",
                obj([("Service", string("lambda.amazonaws.com"))]),
            ),
            ("Action", string("sts:AssumeRole")),
        ]);
        let properties = obj([
            ("name", string(&role.name)),
            (
                "description",
                string(format!("Runs {}", self.model.function.name)),
            ),
            ("assumeRolePolicy", to_json(policy_document(vec![trust]))),
            ("tags", self.tags()),
        ]);
        self.add(ROLE, "aws:iam/role:Role", properties, &[]);

        let log_group = &self.model.log_group;
        let properties = obj([
            ("name", string(&log_group.name)),
            ("retentionInDays", config(LOG_RETENTION)),
            ("tags", self.tags()),
        ]);
        self.add(
            LOG_GROUP,
            "aws:cloudwatch/logGroup:LogGroup",
            properties,
            &[],
        );

        let actions = |list: &[&str]| seq(list.iter().map(|a| string(*a)));
        let mut statements: Vec<_> = self
            .model
            .tables
            .iter()
            .zip(&role.table_actions)
            .map(|(table, table_actions)| {
                obj([
                    ("Sid", string(sid(table.key))),
                    ("Effect", string("Allow")),
                    ("Action", actions(table_actions)),
                    ("Resource", seq([reference(table.key, "arn")])),
                ])
            })
            .collect();
        // An index's ARN is its table's plus `/index/<name>`; naming it exactly keeps the grant
        // off the table itself and off the table's other indexes.
        statements.extend(role.index_actions.iter().filter_map(|grant| {
            let table = self.model.tables.get(grant.table)?;
            Some(obj([
                ("Sid", string(format!("{}{}", sid(table.key), grant.index))),
                ("Effect", string("Allow")),
                ("Action", actions(&grant.actions)),
                (
                    "Resource",
                    seq([string(format!(
                        "${{{}.arn}}/index/{}",
                        table.key, grant.index
                    ))]),
                ),
            ]))
        }));
        statements.extend([
            obj([
                ("Sid", string("WriteOwnLogs")),
                ("Effect", string("Allow")),
                ("Action", actions(&role.log_actions)),
                // Log stream ARNs are the group ARN plus `:log-stream:<name>`.
                ("Resource", seq([string(format!("${{{LOG_GROUP}.arn}}:*"))])),
            ]),
            obj([
                ("Sid", string("SendFailedInvocations")),
                ("Effect", string("Allow")),
                ("Action", actions(&role.queue_actions)),
                ("Resource", seq([reference(DLQ, "arn")])),
            ]),
        ]);
        if let Some(kinesis) = &self.model.kinesis {
            statements.push(stream::read_statement(kinesis));
        }
        let properties = obj([
            ("name", string(&role.policy_name)),
            ("role", reference(ROLE, "name")),
            ("policy", to_json(policy_document(statements))),
        ]);
        self.add(
            ROLE_POLICY,
            "aws:iam/rolePolicy:RolePolicy",
            properties,
            &[],
        );
    }

    fn function(&mut self) {
        let f = &self.model.function;
        let mut properties = vec![
            ("name", string(&f.name)),
            (
                "description",
                string("Validates market-data events and stores them with an audit trail"),
            ),
            ("role", reference(ROLE, "arn")),
            ("runtime", string(f.runtime)),
            ("handler", string(f.handler)),
            ("architectures", seq([string(f.architecture)])),
            ("code", obj([("fn::fileArchive", string(f.package_path))])),
            ("memorySize", config(MEMORY)),
            ("timeout", config(TIMEOUT)),
        ];
        if f.reserved_concurrency.is_some() {
            properties.push(("reservedConcurrentExecutions", config(RESERVED)));
        }
        properties.extend([
            (
                "environment",
                obj([(
                    "variables",
                    obj(f.env.iter().map(|(k, v)| (k.as_str(), string(v)))),
                )]),
            ),
            (
                "deadLetterConfig",
                obj([("targetArn", reference(DLQ, "arn"))]),
            ),
            (
                "loggingConfig",
                obj([
                    ("logFormat", string("Text")),
                    ("logGroup", reference(LOG_GROUP, "name")),
                ]),
            ),
            ("tags", self.tags()),
        ]);
        // Lambda checks at creation that the role may write to the DLQ; the group must exist
        // first or Lambda creates one that never expires.
        self.add(
            FUNCTION,
            "aws:lambda/function:Function",
            obj(properties),
            &[LOG_GROUP, ROLE_POLICY],
        );

        let properties = obj([
            ("functionName", reference(FUNCTION, "name")),
            ("maximumRetryAttempts", config(ASYNC_RETRIES)),
            ("maximumEventAgeInSeconds", config(ASYNC_AGE)),
            (
                "destinationConfig",
                obj([("onFailure", obj([("destination", reference(DLQ, "arn"))]))]),
            ),
        ]);
        self.add(
            ASYNC_CONFIG,
            "aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig",
            properties,
            &[ROLE_POLICY],
        );
    }

    fn target(&mut self, rule: &RuleSpec) {
        let permission = format!("{}Permission", rule.key);
        let properties = obj([
            (
                "statementId",
                string(format!("AllowExecutionFrom{}", upper_first(rule.key))),
            ),
            ("action", string("lambda:InvokeFunction")),
            ("function", reference(FUNCTION, "name")),
            ("principal", string("events.amazonaws.com")),
            ("sourceArn", reference(&rule_name(rule), "arn")),
        ]);
        self.add(
            &permission,
            "aws:lambda/permission:Permission",
            properties,
            &[],
        );

        let properties = obj([
            ("rule", reference(&rule_name(rule), "name")),
            ("eventBusName", reference(EVENT_BUS, "name")),
            ("targetId", string(rule.target_id)),
            ("arn", reference(FUNCTION, "arn")),
            (
                "retryPolicy",
                obj([
                    ("maximumRetryAttempts", config(TARGET_RETRIES)),
                    ("maximumEventAgeInSeconds", config(TARGET_AGE)),
                ]),
            ),
            ("deadLetterConfig", obj([("arn", reference(DLQ, "arn"))])),
        ]);
        self.add(
            format!("{}Target", rule.key),
            "aws:cloudwatch/eventTarget:EventTarget",
            properties,
            &[&permission],
        );
    }
}

fn outputs(model: &Model) -> Value {
    let mut outputs: Vec<(String, Value)> = vec![
        ("event_bus_name".into(), reference(EVENT_BUS, "name")),
        ("event_bus_arn".into(), reference(EVENT_BUS, "arn")),
        ("lambda_function_name".into(), reference(FUNCTION, "name")),
        ("lambda_function_arn".into(), reference(FUNCTION, "arn")),
    ];
    for table in &model.tables {
        let stem = snake(table.key);
        outputs.push((format!("{stem}_name"), reference(table.key, "name")));
        outputs.push((format!("{stem}_arn"), reference(table.key, "arn")));
    }
    outputs.extend([
        ("archive_name".into(), reference(ARCHIVE, "name")),
        ("archive_arn".into(), reference(ARCHIVE, "arn")),
        ("dlq_url".into(), reference(DLQ, "url")),
        ("dlq_arn".into(), reference(DLQ, "arn")),
        ("log_group_name".into(), reference(LOG_GROUP, "name")),
    ]);
    for rule in &model.rules {
        outputs.push((
            format!("{}_arn", snake(&rule_name(rule))),
            reference(&rule_name(rule), "arn"),
        ));
    }
    if model.topic.is_some() {
        outputs.push(("alarm_topic_arn".into(), reference(TOPIC, "arn")));
    }
    outputs.extend(stream::outputs(model));
    Value::Mapping(
        outputs
            .into_iter()
            .map(|(k, v)| (Value::String(k), v))
            .collect(),
    )
}

fn rule_name(rule: &RuleSpec) -> String {
    format!("{}Rule", rule.key)
}

fn policy_document(statements: Vec<Value>) -> Value {
    obj([
        ("Version", string(IAM_VERSION)),
        ("Statement", Value::Sequence(statements)),
    ])
}

fn obj<K: Into<String>>(entries: impl IntoIterator<Item = (K, Value)>) -> Value {
    Value::Mapping(
        entries
            .into_iter()
            .map(|(k, v)| (Value::String(k.into()), v))
            .collect(),
    )
}

fn seq(items: impl IntoIterator<Item = Value>) -> Value {
    Value::Sequence(items.into_iter().collect())
}

fn string(text: impl Into<String>) -> Value {
    Value::String(text.into())
}

fn int(n: u32) -> Value {
    Value::Number(n.into())
}

fn reference(resource: &str, output: &str) -> Value {
    string(format!("${{{resource}.{output}}}"))
}

fn config(key: &str) -> Value {
    string(format!("${{{key}}}"))
}

fn to_json(value: Value) -> Value {
    obj([("fn::toJSON", value)])
}

fn upper_first(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// `marketDataTable` → `market_data_table`.
fn snake(camel: &str) -> String {
    let mut out = String::new();
    for c in camel.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// An IAM statement id from a logical name: `marketDataTable` → `MarketDataTable`.
fn sid(key: &str) -> String {
    let mut chars = key.chars();
    chars
        .next()
        .map(|first| first.to_ascii_uppercase().to_string() + chars.as_str())
        .unwrap_or_default()
}
