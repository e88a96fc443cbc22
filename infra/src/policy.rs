//! Policy rules every rendered program must pass before it is written or run.
//!
//! The schema check says a program is well-formed; these rules say it is acceptable: least
//! privilege, encryption, recoverability, observability, naming and tagging. Each rule has a name
//! (used in messages and in docs/infrastructure.md) and a test that makes it fail.

mod bus;
mod dashboard;
mod loss;
mod stream;

use std::collections::BTreeMap;
use std::fmt;

use serde_yaml::{Mapping, Value};

use crate::schema::Schema;
use crate::schema::expr;

pub const IAM_NO_WILDCARDS: &str = "iam-no-wildcards";
pub const TABLE_ENCRYPTION: &str = "table-encryption";
pub const QUEUE_ENCRYPTION: &str = "queue-encryption";
pub const PROD_POINT_IN_TIME_RECOVERY: &str = "prod-point-in-time-recovery";
pub const LOG_RETENTION: &str = "log-retention";
pub const SUFFIX_IN_NAMES: &str = "suffix-in-names";
pub const TAGS_ON_TAGGABLE: &str = "tags-on-taggable";
pub const TARGET_DLQ_DELIVERY: &str = "target-dlq-delivery";
pub const PROVIDER_VERSION_PINNED: &str = "provider-version-pinned";
pub const BUS_PUBLISHERS: &str = "bus-publishers";
pub const LOSS_PATHS_ALARMED: &str = "loss-paths-alarmed";
pub const STREAM_DELIVERY: &str = "stream-delivery";
pub const DASHBOARD_METRICS: &str = "dashboard-metrics";

/// Every rule with what it demands, in the order they run; docs/infrastructure.md lists them.
#[cfg(test)]
pub const RULES: [(&str, &str); 13] = [
    (
        IAM_NO_WILDCARDS,
        "IAM and resource policies: no action containing `*`, no NotAction/NotResource/NotPrincipal, no `*` principal in an Allow (a Deny for everyone only narrows), no resource `*`; a resource may contain `*` only after the ARN of a resource of this program (e.g. its log streams), and never after a DynamoDB table's (that reaches all its indexes: name each, `<table ARN>/index/<name>`); Lambda permissions name their source ARN",
    ),
    (
        TABLE_ENCRYPTION,
        "every DynamoDB table has serverSideEncryption.enabled: true",
    ),
    (
        QUEUE_ENCRYPTION,
        "every SQS queue has sqsManagedSseEnabled: true or a kmsMasterKeyId",
    ),
    (
        PROD_POINT_IN_TIME_RECOVERY,
        "in the production stack every DynamoDB table has pointInTimeRecovery.enabled: true",
    ),
    (
        LOG_RETENTION,
        "every log group sets retentionInDays, and every Lambda function logs to a log group of this program",
    ),
    (
        SUFFIX_IN_NAMES,
        "every resource type with a `name` input sets it, ending in -<environment suffix>",
    ),
    (
        TAGS_ON_TAGGABLE,
        "every resource type with a `tags` input sets a non-empty tag map",
    ),
    (
        TARGET_DLQ_DELIVERY,
        "a queue used as an EventBridge target's dead-letter queue has a queue policy letting events.amazonaws.com send to it, limited to that target's rule",
    ),
    (
        PROVIDER_VERSION_PINNED,
        "every AWS resource pins the provider version the schema fixture describes",
    ),
    (
        BUS_PUBLISHERS,
        "every event bus has a bus policy that denies events:PutEvents to every principal (`*`) it does not list (a negated aws:PrincipalAccount or aws:PrincipalArn condition) and to every events:source but exactly the sources its rules match; an Allow alone binds no principal of the bus's own account",
    ),
    (
        LOSS_PATHS_ALARMED,
        "every loss path has an alarm: per function AsyncEventsDropped, DestinationDeliveryFailures, DeadLetterErrors; per rule with a target FailedInvocations, InvocationsFailedToBeSentToDlq; per queue ApproximateNumberOfMessagesVisible, ApproximateAgeOfOldestMessage; per table ThrottledRequests, SystemErrors; per function a stream mapping reads into, IteratorAge; the processor's Processed (missing data breaching: a silent feed) and Rejected (a feed the processor no longer understands); a loss counter alarms on one breaching period. In production every alarm has an alarm action; elsewhere none is needed (nobody is on call for dev, and the state and its history still show in CloudWatch)",
    ),
    (
        STREAM_DELIVERY,
        "every Kinesis stream has encryptionType KMS and a kmsKeyId; every event source mapping reading one has functionResponseTypes with ReportBatchItemFailures, an onFailure destinationArn naming a queue of this program, a positive maximumRecordAgeInSeconds, and startingPosition TRIM_HORIZON",
    ),
    (
        DASHBOARD_METRICS,
        "every dashboard body is JSON whose metric rows and SEARCH expressions name only metrics the processor emits (MarketData, under the dimension sets of its EMF directives, this stack's Environment) or AWS publishes (the AWS/Lambda, AWS/SQS and AWS/DynamoDB metrics model::cloudwatch lists, under their dimensions, naming functions, queues and tables of this program); a SEARCH has a {namespace,dimensions} schema and MetricName terms; and it shows ThrottledRequests of every DynamoDB table of the program",
    ),
];

/// What the rules need to know besides the program.
pub struct Context<'a> {
    pub schema: &'a Schema,
    pub suffix: &'a str,
    pub production: bool,
    /// Project config values of the stack, unprefixed (`pointInTimeRecovery: true`).
    pub config: &'a BTreeMap<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub rule: &'static str,
    pub path: String,
    pub message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: [{}] {}", self.path, self.rule, self.message)
    }
}

/// A resource of the program with its type resolved to the full token.
struct Resource<'p> {
    name: &'p str,
    token: String,
    properties: &'p Mapping,
    options: Option<&'p Mapping>,
}

impl Resource<'_> {
    fn path(&self, property: &str) -> String {
        format!("resources.{}.properties.{property}", self.name)
    }

    fn get(&self, property: &str) -> Option<&Value> {
        self.properties.get(property)
    }
}

/// Runs every rule over `program`.
pub fn check(program: &Value, context: &Context) -> Vec<Violation> {
    let resources = resources(program, context.schema);
    let mut checks = Checks {
        context,
        resources: &resources,
        violations: Vec::new(),
    };
    checks.iam_no_wildcards();
    checks.table_encryption();
    checks.queue_encryption();
    checks.prod_point_in_time_recovery();
    checks.log_retention();
    checks.suffix_in_names();
    checks.tags_on_taggable();
    checks.target_dlq_delivery();
    checks.provider_version_pinned();
    checks.bus_publishers();
    checks.loss_paths_alarmed();
    checks.stream_delivery();
    checks.dashboard_metrics();
    checks.violations
}

fn resources<'p>(program: &'p Value, schema: &Schema) -> Vec<Resource<'p>> {
    static EMPTY: std::sync::OnceLock<Mapping> = std::sync::OnceLock::new();
    let empty = EMPTY.get_or_init(Mapping::new);
    let Some(entries) = program.get("resources").and_then(Value::as_mapping) else {
        return Vec::new();
    };
    entries
        .iter()
        .filter_map(|(name, resource)| {
            let token = resource.get("type").and_then(Value::as_str)?;
            let token = schema
                .resource(token)
                .map(|(full, _)| full.to_string())
                .unwrap_or_else(|| token.to_string());
            Some(Resource {
                name: name.as_str()?,
                token,
                properties: resource
                    .get("properties")
                    .and_then(Value::as_mapping)
                    .unwrap_or(empty),
                options: resource.get("options").and_then(Value::as_mapping),
            })
        })
        .collect()
}

const TABLE: &str = "aws:dynamodb/table:Table";
const QUEUE: &str = "aws:sqs/queue:Queue";
const QUEUE_POLICY: &str = "aws:sqs/queuePolicy:QueuePolicy";
const LOG_GROUP: &str = "aws:cloudwatch/logGroup:LogGroup";
const FUNCTION: &str = "aws:lambda/function:Function";
const PERMISSION: &str = "aws:lambda/permission:Permission";
const EVENT_TARGET: &str = "aws:cloudwatch/eventTarget:EventTarget";
const EVENT_BUS: &str = "aws:cloudwatch/eventBus:EventBus";
const EVENT_BUS_POLICY: &str = "aws:cloudwatch/eventBusPolicy:EventBusPolicy";
const EVENT_RULE: &str = "aws:cloudwatch/eventRule:EventRule";
const METRIC_ALARM: &str = "aws:cloudwatch/metricAlarm:MetricAlarm";
/// Properties that hold an IAM or resource policy document.
const POLICY_PROPERTIES: [&str; 2] = ["policy", "assumeRolePolicy"];

struct Checks<'c, 'p> {
    context: &'c Context<'c>,
    resources: &'c [Resource<'p>],
    violations: Vec<Violation>,
}

impl<'c, 'p> Checks<'c, 'p> {
    fn fail(&mut self, rule: &'static str, path: String, message: impl Into<String>) {
        self.violations.push(Violation {
            rule,
            path,
            message: message.into(),
        });
    }

    fn of_type(&self, token: &str) -> Vec<&'c Resource<'p>> {
        self.resources.iter().filter(|r| r.token == token).collect()
    }

    /// A `${key}` naming stack config stands for its value.
    fn resolve<'v>(&'v self, value: &'v Value) -> &'v Value {
        value
            .as_str()
            .and_then(expr::substitution)
            .filter(|r| r.accessors.is_empty())
            .and_then(|r| self.context.config.get(&r.root))
            .unwrap_or(value)
    }

    fn is_true(&self, value: Option<&Value>) -> bool {
        value.map(|v| self.resolve(v)).and_then(Value::as_bool) == Some(true)
    }

    fn iam_no_wildcards(&mut self) {
        let mut found = Vec::new();
        for resource in self.resources {
            for property in POLICY_PROPERTIES {
                let Some(value) = resource.get(property) else {
                    continue;
                };
                let mut path = resource.path(property);
                if value.get("fn::toJSON").is_some() {
                    path.push_str(".fn::toJSON");
                }
                match policy_document(value) {
                    Some(document) => found.extend(self.document_problems(&document, &path)),
                    None => found.push((
                        path,
                        "is not a policy document the rules can read; render it with fn::toJSON"
                            .to_string(),
                    )),
                }
            }
            if resource.token == PERMISSION {
                let principal = resource
                    .get("principal")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                if principal == "*" {
                    found.push((
                        resource.path("principal"),
                        "is `*`: anyone could invoke the function".to_string(),
                    ));
                } else if principal.ends_with(".amazonaws.com")
                    && resource.get("sourceArn").is_none()
                {
                    found.push((
                        resource.path("sourceArn"),
                        format!("missing: any {principal} resource in any account could invoke the function"),
                    ));
                }
            }
        }
        for (path, message) in found {
            self.fail(IAM_NO_WILDCARDS, path, message);
        }
    }

    fn document_problems(&self, document: &Value, path: &str) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        let statements = match document.get("Statement") {
            Some(Value::Sequence(items)) => items.iter().collect::<Vec<_>>(),
            Some(single @ Value::Mapping(_)) => vec![single],
            _ => {
                problems.push((path.to_string(), "has no Statement".to_string()));
                return problems;
            }
        };
        for (i, statement) in statements.iter().enumerate() {
            let at = |field: &str| format!("{path}.Statement[{i}].{field}");
            for negated in ["NotAction", "NotResource", "NotPrincipal"] {
                if statement.get(negated).is_some() {
                    problems.push((
                        at(negated),
                        format!("{negated} grants everything it does not list"),
                    ));
                }
            }
            for action in strings(statement.get("Action")) {
                if action.contains('*') {
                    problems.push((
                        at("Action"),
                        format!("{action:?} is a wildcard action; list the actions used"),
                    ));
                }
            }
            for resource in strings(statement.get("Resource")) {
                if let Some(message) = self.resource_problem(resource) {
                    problems.push((at("Resource"), message));
                }
            }
            // A Deny for everyone takes away; only an Allow for everyone gives too much.
            let deny = statement.get("Effect").and_then(Value::as_str) == Some("Deny");
            if let Some(principal) = statement.get("Principal").filter(|_| !deny) {
                let everyone = strings(Some(principal)).contains(&"*")
                    || principal
                        .as_mapping()
                        .is_some_and(|m| m.values().any(|v| strings(Some(v)).contains(&"*")));
                if everyone {
                    problems.push((
                        at("Principal"),
                        "is `*`: anyone could use this grant".to_string(),
                    ));
                }
            }
        }
        problems
    }

    /// `*` is allowed only after the ARN of a resource of this program, which it narrows, and
    /// not after a table's: `<table ARN>/index/*` grants every index the table has or gets.
    fn resource_problem(&self, resource: &str) -> Option<String> {
        if !resource.contains('*') {
            return None;
        }
        if resource == "*" {
            return Some("is `*`: every resource of the account".to_string());
        }
        let before_star = resource.split('*').next().unwrap_or("");
        let anchor = expr::parse(before_star)
            .ok()
            .and_then(|pieces| match pieces.first() {
                Some(expr::Piece::Ref(r))
                    if r.property() == Some("arn") && r.accessors.len() == 1 =>
                {
                    self.resources.iter().find(|res| res.name == r.root)
                }
                _ => None,
            });
        match anchor {
            None => Some(format!(
                "{resource:?} is a wildcard resource; start it with the ARN of a resource of this program"
            )),
            Some(table) if table.token == TABLE => Some(format!(
                "{resource:?} reaches every index of table `{}`; name each index the role uses (<table ARN>/index/<name>)",
                table.name
            )),
            Some(_) => None,
        }
    }

    fn table_encryption(&mut self) {
        let failing: Vec<String> = self
            .of_type(TABLE)
            .into_iter()
            .filter(|t| !self.is_true(t.get("serverSideEncryption").and_then(|v| v.get("enabled"))))
            .map(|t| t.path("serverSideEncryption.enabled"))
            .collect();
        for path in failing {
            self.fail(
                TABLE_ENCRYPTION,
                path,
                "must be true: tables hold market data at rest",
            );
        }
    }

    fn queue_encryption(&mut self) {
        let failing: Vec<String> = self
            .of_type(QUEUE)
            .into_iter()
            .filter(|q| {
                !self.is_true(q.get("sqsManagedSseEnabled")) && q.get("kmsMasterKeyId").is_none()
            })
            .map(|q| q.path("sqsManagedSseEnabled"))
            .collect();
        for path in failing {
            self.fail(
                QUEUE_ENCRYPTION,
                path,
                "must be true (or set kmsMasterKeyId): failed events are market data too",
            );
        }
    }

    fn prod_point_in_time_recovery(&mut self) {
        if !self.context.production {
            return;
        }
        let failing: Vec<String> = self
            .of_type(TABLE)
            .into_iter()
            .filter(|t| !self.is_true(t.get("pointInTimeRecovery").and_then(|v| v.get("enabled"))))
            .map(|t| t.path("pointInTimeRecovery.enabled"))
            .collect();
        for path in failing {
            self.fail(
                PROD_POINT_IN_TIME_RECOVERY,
                path,
                "must be true in the production stack",
            );
        }
    }

    fn log_retention(&mut self) {
        let mut failing = Vec::new();
        for group in self.of_type(LOG_GROUP) {
            let days = group.get("retentionInDays").map(|v| self.resolve(v));
            if days.and_then(Value::as_u64).unwrap_or(0) == 0 {
                failing.push((
                    group.path("retentionInDays"),
                    "must be set: logs would be kept forever".to_string(),
                ));
            }
        }
        let group_names: Vec<&str> = self
            .of_type(LOG_GROUP)
            .into_iter()
            .map(|g| g.name)
            .collect();
        for function in self.of_type(FUNCTION) {
            let target = function
                .get("loggingConfig")
                .and_then(|c| c.get("logGroup"))
                .and_then(Value::as_str);
            let ours = target.and_then(expr::substitution).is_some_and(|r| {
                r.property() == Some("name") && group_names.contains(&r.root.as_str())
            });
            if !ours {
                failing.push((
                    function.path("loggingConfig.logGroup"),
                    "must be ${<log group of this program>.name}: otherwise Lambda creates a group that never expires".to_string(),
                ));
            }
        }
        for (path, message) in failing {
            self.fail(LOG_RETENTION, path, message);
        }
    }

    fn suffix_in_names(&mut self) {
        let ending = format!("-{}", self.context.suffix);
        let mut failing = Vec::new();
        for resource in self.resources {
            let named = self
                .context
                .schema
                .resource(&resource.token)
                .is_some_and(|(_, schema)| schema.has_input("name"));
            if !named {
                continue;
            }
            match resource
                .get("name")
                .map(|v| self.resolve(v))
                .and_then(Value::as_str)
            {
                Some(name) if name.ends_with(&ending) => {}
                Some(name) => failing.push((
                    resource.path("name"),
                    format!("{name:?} does not end in {ending:?}"),
                )),
                None => failing.push((
                    resource.path("name"),
                    format!("missing: Pulumi would invent a name without {ending:?}"),
                )),
            }
        }
        for (path, message) in failing {
            self.fail(SUFFIX_IN_NAMES, path, message);
        }
    }

    fn tags_on_taggable(&mut self) {
        let mut failing = Vec::new();
        for resource in self.resources {
            let taggable = self
                .context
                .schema
                .resource(&resource.token)
                .is_some_and(|(_, schema)| schema.has_input("tags"));
            let tagged = resource
                .get("tags")
                .map(|v| self.resolve(v))
                .and_then(Value::as_mapping)
                .is_some_and(|tags| !tags.is_empty());
            if taggable && !tagged {
                failing.push(resource.path("tags"));
            }
        }
        for path in failing {
            self.fail(
                TAGS_ON_TAGGABLE,
                path,
                "missing or empty: the resource type is taggable",
            );
        }
    }

    fn target_dlq_delivery(&mut self) {
        let mut failing = Vec::new();
        for target in self.of_type(EVENT_TARGET) {
            let Some(queue) = target
                .get("deadLetterConfig")
                .and_then(|c| c.get("arn"))
                .and_then(Value::as_str)
                .and_then(expr::substitution)
            else {
                continue;
            };
            let rule = target
                .get("rule")
                .and_then(Value::as_str)
                .and_then(expr::substitution);
            let Some(rule) = rule else {
                failing.push((
                    target.path("rule"),
                    "must reference a rule of this program".to_string(),
                ));
                continue;
            };
            let allowed = self.of_type(QUEUE_POLICY).into_iter().any(|policy| {
                let for_queue = policy
                    .get("queueUrl")
                    .and_then(Value::as_str)
                    .and_then(expr::substitution)
                    .is_some_and(|r| r.root == queue.root);
                for_queue
                    && policy
                        .get("policy")
                        .and_then(policy_document)
                        .is_some_and(|doc| lets_rule_send(&doc, &queue.root, &rule.root))
            });
            if !allowed {
                failing.push((
                    target.path("deadLetterConfig.arn"),
                    format!(
                        "no queue policy lets events.amazonaws.com send to `{}` for rule `{}`: EventBridge would drop undeliverable events",
                        queue.root, rule.root
                    ),
                ));
            }
        }
        for (path, message) in failing {
            self.fail(TARGET_DLQ_DELIVERY, path, message);
        }
    }

    fn provider_version_pinned(&mut self) {
        let version = self.context.schema.version.as_str();
        let failing: Vec<(String, String)> = self
            .resources
            .iter()
            .filter(|r| r.token.starts_with("aws:"))
            .filter(|r| {
                r.options
                    .and_then(|o| o.get("version"))
                    .and_then(Value::as_str)
                    != Some(version)
            })
            .map(|r| {
                (
                    format!("resources.{}.options.version", r.name),
                    format!(
                        "must be {version:?}: the schema check is only valid for that provider"
                    ),
                )
            })
            .collect();
        for (path, message) in failing {
            self.fail(PROVIDER_VERSION_PINNED, path, message);
        }
    }
}

/// The document inside `fn::toJSON`, a JSON string, or a plain mapping.
fn policy_document(value: &Value) -> Option<Value> {
    match value {
        Value::Mapping(m) => match m.get("fn::toJSON") {
            Some(document) => Some(document.clone()),
            None => Some(value.clone()),
        },
        Value::String(text) => serde_json::from_str::<serde_json::Value>(text)
            .ok()
            .and_then(|json| serde_yaml::to_value(json).ok()),
        _ => None,
    }
}

/// A string or a list of strings, as IAM allows for Action, Resource and principals.
fn strings(value: Option<&Value>) -> Vec<&str> {
    match value {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Sequence(items)) => items.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

/// Whether `document` allows events.amazonaws.com to `sqs:SendMessage` to `queue`'s ARN with
/// `aws:SourceArn` naming `rule`'s ARN.
fn lets_rule_send(document: &Value, queue: &str, rule: &str) -> bool {
    let statements: Vec<&Value> = match document.get("Statement") {
        Some(Value::Sequence(items)) => items.iter().collect(),
        Some(single) => vec![single],
        None => return false,
    };
    let refers = |text: &str, root: &str| {
        expr::substitution(text).is_some_and(|r| r.root == root && r.property() == Some("arn"))
    };
    statements.iter().any(|statement| {
        let allow = statement.get("Effect").and_then(Value::as_str) == Some("Allow");
        let service = statement
            .get("Principal")
            .and_then(|p| p.get("Service"))
            .is_some_and(|s| strings(Some(s)).contains(&"events.amazonaws.com"));
        let action = strings(statement.get("Action")).contains(&"sqs:SendMessage");
        let resource = strings(statement.get("Resource"))
            .iter()
            .any(|r| refers(r, queue));
        let source = statement
            .get("Condition")
            .and_then(Value::as_mapping)
            .is_some_and(|conditions| {
                conditions.iter().any(|(operator, tests)| {
                    matches!(operator.as_str(), Some("ArnEquals" | "ArnLike"))
                        && strings(tests.get("aws:SourceArn"))
                            .iter()
                            .any(|r| refers(r, rule))
                })
            });
        allow && service && action && resource && source
    })
}

#[cfg(test)]
mod tests;
