//! The bus policy: only the stack's publishers may put events on the market-data bus, and only
//! with the accepted sources.
//!
//! An Allow in a bus policy is what lets another account publish, but a principal of the bus's
//! own account publishes with nothing more than `events:PutEvents` in its identity policy. Only
//! an explicit Deny binds those, so the policy denies every principal it does not list and every
//! source it does not accept.

use serde_yaml::{Mapping, Value};

use super::{EVENT_BUS, Resources, obj, policy_document, reference, seq, string, to_json};
use crate::model::{Model, Publishers};
use crate::stack::principal::Principal;

const BUS_POLICY: &str = "eventBusPolicy";
/// The account Pulumi deploys into, read from the credentials it runs with.
const DEPLOYING_ACCOUNT: &str = "deployingAccountId";
const PUT_EVENTS: &str = "events:PutEvents";

/// The program's `variables`: the deploying account, when it is the publisher.
pub(super) fn variables(model: &Model) -> Mapping {
    let mut variables = Mapping::new();
    if model.bus.publishers == Publishers::DeployingAccount {
        variables.insert(
            string(DEPLOYING_ACCOUNT),
            obj([(
                "fn::invoke",
                obj([
                    (
                        "function",
                        string("aws:index/getCallerIdentity:getCallerIdentity"),
                    ),
                    ("return", string("accountId")),
                ]),
            )]),
        );
    }
    variables
}

impl Resources<'_> {
    pub(super) fn bus_policy(&mut self) {
        let bus = &self.model.bus;
        let (accounts, arns): (Vec<Value>, Vec<Value>) = match &bus.publishers {
            Publishers::DeployingAccount => {
                (vec![string(format!("${{{DEPLOYING_ACCOUNT}}}"))], vec![])
            }
            Publishers::Listed(principals) => {
                let mut accounts = Vec::new();
                let mut arns = Vec::new();
                for principal in principals {
                    match principal {
                        Principal::Account(id) => accounts.push(string(id)),
                        Principal::Arn(arn) => arns.push(string(arn)),
                    }
                }
                (accounts, arns)
            }
        };
        let sources = || seq(bus.sources.iter().map(string));
        let statement = |sid: &str, effect: &str, principal: Value, condition: Mapping| {
            let mut entries = vec![
                ("Sid", string(sid)),
                ("Effect", string(effect)),
                ("Principal", principal),
                ("Action", string(PUT_EVENTS)),
                ("Resource", reference(EVENT_BUS, "arn")),
            ];
            // Without a condition the Deny below denies every principal: the safe end of a
            // publisher list with nothing in it.
            if !condition.is_empty() {
                entries.push(("Condition", Value::Mapping(condition)));
            }
            obj(entries)
        };
        let mut statements = Vec::new();
        let listed: Vec<Value> = accounts.iter().chain(&arns).cloned().collect();
        if !listed.is_empty() {
            statements.push(statement(
                "AllowPublishers",
                "Allow",
                obj([("AWS", Value::Sequence(listed))]),
                condition([("StringEquals", "events:source", sources())]),
            ));
        }
        let mut unlisted = Mapping::new();
        // Both tests hold for a principal neither listed by account nor by ARN; aws:PrincipalArn
        // is a role's ARN even for its sessions.
        if !accounts.is_empty() {
            unlisted.extend(condition([(
                "StringNotEquals",
                "aws:PrincipalAccount",
                Value::Sequence(accounts),
            )]));
        }
        if !arns.is_empty() {
            unlisted.extend(condition([(
                "ArnNotEquals",
                "aws:PrincipalArn",
                Value::Sequence(arns),
            )]));
        }
        statements.push(statement(
            "DenyUnlistedPublishers",
            "Deny",
            string("*"),
            unlisted,
        ));
        statements.push(statement(
            "DenyUnacceptedSources",
            "Deny",
            string("*"),
            condition([("StringNotEquals", "events:source", sources())]),
        ));
        let properties = obj([
            ("eventBusName", reference(EVENT_BUS, "name")),
            ("policy", to_json(policy_document(statements))),
        ]);
        self.add(
            BUS_POLICY,
            "aws:cloudwatch/eventBusPolicy:EventBusPolicy",
            properties,
            &[],
        );
    }
}

/// `{operator: {key: values}}` for each entry.
fn condition<const N: usize>(tests: [(&str, &str, Value); N]) -> Mapping {
    tests
        .into_iter()
        .map(|(operator, key, values)| (string(operator), obj([(key, values)])))
        .collect()
}
