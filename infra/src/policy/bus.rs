//! `bus-publishers`: who may put events on a bus, and with which sources.

use std::collections::BTreeSet;

use serde_yaml::Value;

use super::{
    BUS_PUBLISHERS, Checks, EVENT_BUS, EVENT_BUS_POLICY, EVENT_RULE, policy_document, strings,
};
use crate::schema::expr;

/// Operators that hold for a principal *not* among the values.
const NEGATED_OPERATORS: [&str; 4] = [
    "StringNotEquals",
    "StringNotLike",
    "ArnNotEquals",
    "ArnNotLike",
];
const PRINCIPAL_KEYS: [&str; 2] = ["aws:PrincipalAccount", "aws:PrincipalArn"];

impl Checks<'_, '_> {
    pub(super) fn bus_publishers(&mut self) {
        let mut failing = Vec::new();
        for bus in self.of_type(EVENT_BUS) {
            let on_bus = |value: Option<&Value>| {
                value
                    .and_then(Value::as_str)
                    .and_then(expr::substitution)
                    .is_some_and(|r| r.root == bus.name && r.property() == Some("name"))
            };
            let sources: BTreeSet<String> = self
                .of_type(EVENT_RULE)
                .into_iter()
                .filter(|rule| on_bus(rule.get("eventBusName")))
                .flat_map(|rule| pattern_sources(rule.get("eventPattern")))
                .collect();
            let policies: Vec<_> = self
                .of_type(EVENT_BUS_POLICY)
                .into_iter()
                .filter(|policy| on_bus(policy.get("eventBusName")))
                .collect();
            if policies.is_empty() {
                failing.push((
                    format!("resources.{}", bus.name),
                    "no event bus policy names the bus: any principal of the account allowed events:PutEvents could publish any source".to_string(),
                ));
                continue;
            }
            let denies: Vec<Value> = policies
                .iter()
                .filter_map(|policy| policy.get("policy").and_then(policy_document))
                .flat_map(|document| deny_statements(&document, bus.name))
                .collect();
            let path = policies[0].path("policy");
            if !denies.iter().any(denies_unlisted_principals) {
                failing.push((
                    path.clone(),
                    "no Deny of events:PutEvents for every principal it does not list (a negated aws:PrincipalAccount or aws:PrincipalArn condition): the account's own principals could publish".to_string(),
                ));
            }
            let denied_outside: Vec<BTreeSet<String>> =
                denies.iter().filter_map(source_allow_list).collect();
            if !denied_outside.contains(&sources) {
                let found = denied_outside
                    .first()
                    .map(|allowed| format!("{allowed:?}"))
                    .unwrap_or_else(|| "none".to_string());
                failing.push((
                    path,
                    format!(
                        "no Deny of events:PutEvents with an events:source outside exactly the sources the bus's rules match ({sources:?}; found {found}): a publisher could put other sources on the bus"
                    ),
                ));
            }
        }
        for (path, message) in failing {
            self.fail(BUS_PUBLISHERS, path, message);
        }
    }
}

/// The `source` list of an event pattern, rendered as a JSON string.
fn pattern_sources(pattern: Option<&Value>) -> Vec<String> {
    pattern
        .and_then(Value::as_str)
        .and_then(|text| serde_json::from_str::<serde_json::Value>(text).ok())
        .and_then(|json| {
            json.get("source").and_then(|s| s.as_array()).map(|items| {
                items
                    .iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect()
            })
        })
        .unwrap_or_default()
}

/// Statements that deny events:PutEvents on `bus`'s ARN to everyone (`*`).
fn deny_statements(document: &Value, bus: &str) -> Vec<Value> {
    let statements: Vec<&Value> = match document.get("Statement") {
        Some(Value::Sequence(items)) => items.iter().collect(),
        Some(single) => vec![single],
        None => Vec::new(),
    };
    statements
        .into_iter()
        .filter(|statement| {
            let deny = statement.get("Effect").and_then(Value::as_str) == Some("Deny");
            let action = strings(statement.get("Action")).contains(&"events:PutEvents");
            let resource = strings(statement.get("Resource")).iter().any(|r| {
                expr::substitution(r).is_some_and(|r| r.root == bus && r.property() == Some("arn"))
            });
            let principal = statement.get("Principal");
            let everyone = strings(principal).contains(&"*")
                || strings(principal.and_then(|p| p.get("AWS"))).contains(&"*");
            deny && action && resource && everyone
        })
        .cloned()
        .collect()
}

/// A Deny without conditions denies everyone, which restricts publishers too.
fn denies_unlisted_principals(statement: &Value) -> bool {
    let Some(condition) = statement.get("Condition") else {
        return true;
    };
    condition.as_mapping().is_some_and(|operators| {
        operators.iter().any(|(operator, tests)| {
            operator
                .as_str()
                .is_some_and(|o| NEGATED_OPERATORS.contains(&o))
                && PRINCIPAL_KEYS.iter().any(|key| tests.get(key).is_some())
        })
    })
}

/// The sources a `StringNotEquals events:source` Deny leaves allowed.
fn source_allow_list(statement: &Value) -> Option<BTreeSet<String>> {
    let tests = statement.get("Condition")?.get("StringNotEquals")?;
    let sources = strings(tests.get("events:source"));
    (!sources.is_empty()).then(|| sources.into_iter().map(str::to_string).collect())
}
