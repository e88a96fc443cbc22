use serde_yaml::Value;

use super::*;
use crate::render::fixtures::{config, program, remove, schema, set};

fn violations(
    stack: &str,
    edit: impl FnOnce(&mut Value, &mut BTreeMap<String, Value>),
) -> Vec<Violation> {
    let mut p = program(stack);
    let mut values = config(stack);
    edit(&mut p, &mut values);
    let schema = schema();
    let context = Context {
        schema: &schema,
        suffix: stack,
        production: stack == "prod",
        config: &values,
    };
    check(&p, &context)
}

/// The rules of the violations, each once, in order.
fn rules(found: &[Violation]) -> Vec<&'static str> {
    let mut rules: Vec<&str> = found.iter().map(|v| v.rule).collect();
    rules.dedup();
    rules
}

#[test]
fn every_committed_stack_passes_every_rule() {
    for stack in ["dev", "staging", "prod"] {
        assert_eq!(violations(stack, |_, _| {}), [], "{stack}");
    }
}

#[test]
fn iam_no_wildcards_rejects_wildcard_actions_resources_and_principals() {
    let statement = "resources.processorPolicy.properties.policy.fn::toJSON.Statement.0";
    let found = violations("dev", |p, _| {
        set(p, &format!("{statement}.Action.1"), "dynamodb:*")
    });
    assert_eq!(rules(&found), [IAM_NO_WILDCARDS]);
    assert_eq!(
        found[0].to_string(),
        "resources.processorPolicy.properties.policy.fn::toJSON.Statement[0].Action: [iam-no-wildcards] \"dynamodb:*\" is a wildcard action; list the actions used"
    );

    let found = violations("dev", |p, _| {
        set(p, &format!("{statement}.Resource.0"), "*")
    });
    assert_eq!(rules(&found), [IAM_NO_WILDCARDS]);
    let found = violations("dev", |p, _| {
        set(
            p,
            &format!("{statement}.Resource.0"),
            "arn:aws:dynamodb:*:*:table/*",
        )
    });
    assert_eq!(rules(&found), [IAM_NO_WILDCARDS]);
    let found = violations("dev", |p, _| {
        set(
            p,
            "resources.processorRole.properties.assumeRolePolicy.fn::toJSON.Statement.0.Principal",
            "*",
        )
    });
    assert_eq!(rules(&found), [IAM_NO_WILDCARDS]);
    let found = violations("dev", |p, _| {
        remove(p, "resources.tradeEventsPermission.properties.sourceArn")
    });
    assert_eq!(rules(&found), [IAM_NO_WILDCARDS]);
}

#[test]
fn iam_no_wildcards_holds_every_table_statement() {
    let statements = "resources.processorPolicy.properties.policy.fn::toJSON.Statement";
    let program = program("dev");
    let sids: Vec<&str> = (0..3)
        .map(|i| {
            program["resources"]["processorPolicy"]["properties"]["policy"]["fn::toJSON"]
                ["Statement"][i]["Sid"]
                .as_str()
                .unwrap_or_default()
        })
        .collect();
    assert_eq!(sids, ["MarketDataTable", "AuditTrailTable", "LatestTable"]);
    for i in 0..3 {
        let found = violations("dev", |p, _| {
            set(p, &format!("{statements}.{i}.Action.0"), "dynamodb:*")
        });
        assert_eq!(rules(&found), [IAM_NO_WILDCARDS], "statement {i}");
        let found = violations("dev", |p, _| {
            set(p, &format!("{statements}.{i}.Resource.0"), "*")
        });
        assert_eq!(rules(&found), [IAM_NO_WILDCARDS], "statement {i}");
    }
}

#[test]
fn query_reaches_exactly_the_symbol_index() {
    let program = program("prod");
    let statements = program["resources"]["processorPolicy"]["properties"]["policy"]["fn::toJSON"]
        ["Statement"]
        .as_sequence()
        .cloned()
        .unwrap_or_default();
    let querying: Vec<&Value> = statements
        .iter()
        .filter(|s| strings(s.get("Action")).contains(&"dynamodb:Query"))
        .collect();
    assert_eq!(querying.len(), 1, "one statement grants Query");
    assert_eq!(strings(querying[0].get("Action")), ["dynamodb:Query"]);
    assert_eq!(
        strings(querying[0].get("Resource")),
        ["${marketDataTable.arn}/index/SymbolIndex"]
    );
    // The table statements name their tables' ARNs and nothing under them.
    for statement in statements.iter().take(3) {
        let resources = strings(statement.get("Resource"));
        assert_eq!(resources.len(), 1, "{statement:?}");
        assert!(resources[0].ends_with("Table.arn}"), "{statement:?}");
    }
}

#[test]
fn iam_no_wildcards_refuses_a_wildcard_over_a_tables_indexes() {
    let query = "resources.processorPolicy.properties.policy.fn::toJSON.Statement.3";
    for wider in [
        "${marketDataTable.arn}/index/*",
        "${marketDataTable.arn}/*",
        "${marketDataTable.arn}*",
    ] {
        let found = violations("dev", |p, _| set(p, &format!("{query}.Resource.0"), wider));
        assert_eq!(rules(&found), [IAM_NO_WILDCARDS], "{wider}");
        assert!(
            found[0]
                .message
                .contains("every index of table `marketDataTable`"),
            "{}",
            found[0]
        );
    }
    // A wildcard after another resource's ARN narrows it: the log group's streams.
    let logs = "resources.processorPolicy.properties.policy.fn::toJSON.Statement.4";
    let program = program("dev");
    assert_eq!(
        program["resources"]["processorPolicy"]["properties"]["policy"]["fn::toJSON"]["Statement"]
            [4]["Resource"][0]
            .as_str(),
        Some("${processorLogGroup.arn}:*")
    );
    assert_eq!(
        violations("dev", |p, _| set(
            p,
            &format!("{logs}.Resource.0"),
            "${processorLogGroup.arn}:log-stream:*"
        )),
        []
    );
}

#[test]
fn table_encryption_can_fail() {
    let found = violations("dev", |p, _| {
        set(
            p,
            "resources.auditTrailTable.properties.serverSideEncryption.enabled",
            false,
        )
    });
    assert_eq!(rules(&found), [TABLE_ENCRYPTION]);
    assert_eq!(
        found[0].path,
        "resources.auditTrailTable.properties.serverSideEncryption.enabled"
    );
}

#[test]
fn queue_encryption_can_fail() {
    let found = violations("dev", |p, _| {
        remove(
            p,
            "resources.deadLetterQueue.properties.sqsManagedSseEnabled",
        )
    });
    assert_eq!(rules(&found), [QUEUE_ENCRYPTION]);
}

#[test]
fn prod_point_in_time_recovery_can_fail_and_only_in_prod() {
    let found = violations("prod", |_, config| {
        config.insert("pointInTimeRecovery".to_string(), Value::Bool(false));
    });
    assert_eq!(rules(&found), [PROD_POINT_IN_TIME_RECOVERY]);
    assert_eq!(found.len(), 3, "every table");
    assert_eq!(violations("dev", |_, _| {}), []);
}

#[test]
fn log_retention_can_fail() {
    let found = violations("dev", |p, _| {
        remove(p, "resources.processorLogGroup.properties.retentionInDays")
    });
    assert_eq!(rules(&found), [LOG_RETENTION]);
    let found = violations("dev", |p, _| {
        remove(p, "resources.processorFunction.properties.loggingConfig")
    });
    assert_eq!(rules(&found), [LOG_RETENTION]);
}

#[test]
fn suffix_in_names_can_fail() {
    let found = violations("dev", |p, _| {
        set(
            p,
            "resources.processorRole.properties.name",
            "market-processor-role",
        )
    });
    assert_eq!(rules(&found), [SUFFIX_IN_NAMES]);
    assert_eq!(
        found[0].message,
        "\"market-processor-role\" does not end in \"-dev\""
    );
    let found = violations("dev", |p, _| {
        remove(p, "resources.eventArchive.properties.name")
    });
    assert_eq!(rules(&found), [SUFFIX_IN_NAMES]);
}

#[test]
fn tags_on_taggable_can_fail() {
    let found = violations("dev", |p, _| {
        remove(p, "resources.processorFunction.properties.tags")
    });
    assert_eq!(rules(&found), [TAGS_ON_TAGGABLE]);
    assert_eq!(found[0].path, "resources.processorFunction.properties.tags");
}

#[test]
fn target_dlq_delivery_can_fail() {
    let found = violations("dev", |p, _| remove(p, "resources.deadLetterQueuePolicy"));
    assert_eq!(rules(&found), [TARGET_DLQ_DELIVERY]);
    assert_eq!(found.len(), 2, "both targets");
    // A policy that leaves one rule out fails for that rule only.
    let found = violations("dev", |p, _| {
        remove(
            p,
            "resources.deadLetterQueuePolicy.properties.policy.fn::toJSON.Statement.0.Condition.ArnEquals.aws:SourceArn.1",
        )
    });
    assert_eq!(found.len(), 1);
    assert!(found[0].message.contains("quoteEventsRule"), "{}", found[0]);
}

#[test]
fn provider_version_pinned_can_fail() {
    let found = violations("dev", |p, _| {
        remove(p, "resources.eventBus.options.version")
    });
    assert_eq!(rules(&found), [PROVIDER_VERSION_PINNED]);
}

#[test]
fn iam_no_wildcards_lets_a_deny_name_everyone_but_not_an_allow() {
    let bus_statement = "resources.eventBusPolicy.properties.policy.fn::toJSON.Statement";
    assert_eq!(
        violations("dev", |p, _| set(
            p,
            &format!("{bus_statement}.1.Effect"),
            "Deny"
        )),
        []
    );
    let found = violations("dev", |p, _| {
        set(p, &format!("{bus_statement}.0.Principal"), "*")
    });
    assert_eq!(rules(&found), [IAM_NO_WILDCARDS]);
    let found = violations("prod", |p, _| {
        set(p, &format!("{bus_statement}.1.Effect"), "Allow")
    });
    assert_eq!(rules(&found), [IAM_NO_WILDCARDS, BUS_PUBLISHERS]);
}

#[test]
fn bus_publishers_can_fail() {
    let statements = "resources.eventBusPolicy.properties.policy.fn::toJSON.Statement";
    let found = violations("dev", |p, _| remove(p, "resources.eventBusPolicy"));
    assert_eq!(rules(&found), [BUS_PUBLISHERS]);
    assert_eq!(found[0].path, "resources.eventBus");

    for stack in ["dev", "prod"] {
        // Without the Deny for unlisted principals an Allow binds no one of the account.
        let found = violations(stack, |p, _| remove(p, &format!("{statements}.1")));
        assert_eq!(rules(&found), [BUS_PUBLISHERS], "{stack}");
        assert!(found[0].message.contains("every principal"), "{}", found[0]);
    }
    let found = violations("prod", |p, _| {
        remove(p, &format!("{statements}.1.Condition"));
        set(p, &format!("{statements}.1.Principal"), "*");
    });
    assert_eq!(found, [], "a Deny without condition denies every principal");

    let found = violations("dev", |p, _| remove(p, &format!("{statements}.2")));
    assert_eq!(rules(&found), [BUS_PUBLISHERS]);
    assert!(found[0].message.contains("events:source"), "{}", found[0]);
    // A source the rules do not match, allowed onto the bus.
    let found = violations("dev", |p, _| {
        let sources: Value = serde_yaml::from_str("[market.data, other.feed]").expect("yaml");
        set(
            p,
            &format!("{statements}.2.Condition.StringNotEquals.events:source"),
            sources,
        )
    });
    assert_eq!(rules(&found), [BUS_PUBLISHERS]);
    assert_eq!(
        found[0].message,
        "no Deny of events:PutEvents with an events:source outside exactly the sources the bus's rules match ({\"market.data\"}; found {\"market.data\", \"other.feed\"}): a publisher could put other sources on the bus"
    );
}

#[test]
fn loss_paths_alarmed_fails_for_each_loss_path_without_an_alarm() {
    for (alarm, resource, metric) in [
        (
            "processorAsyncEventsDroppedAlarm",
            "processorFunction",
            "AsyncEventsDropped",
        ),
        (
            "processorDestinationFailuresAlarm",
            "processorFunction",
            "DestinationDeliveryFailures",
        ),
        (
            "processorDeadLetterErrorsAlarm",
            "processorFunction",
            "DeadLetterErrors",
        ),
        (
            "deadLetterQueueAlarm",
            "deadLetterQueue",
            "ApproximateNumberOfMessagesVisible",
        ),
        (
            "deadLetterQueueAgeAlarm",
            "deadLetterQueue",
            "ApproximateAgeOfOldestMessage",
        ),
        (
            "tradeEventsFailedAlarm",
            "tradeEventsRule",
            "FailedInvocations",
        ),
        (
            "quoteEventsDlqFailedAlarm",
            "quoteEventsRule",
            "InvocationsFailedToBeSentToDlq",
        ),
        (
            "marketDataTableThrottlesAlarm",
            "marketDataTable",
            "ThrottledRequests",
        ),
        (
            "auditTrailTableSystemErrorsAlarm",
            "auditTrailTable",
            "SystemErrors",
        ),
        (
            "latestTableThrottlesAlarm",
            "latestTable",
            "ThrottledRequests",
        ),
        (
            "latestTableSystemErrorsAlarm",
            "latestTable",
            "SystemErrors",
        ),
        ("silentFeedAlarm", "processorFunction", "Processed"),
        ("rejectedShareAlarm", "processorFunction", "Rejected"),
    ] {
        let found = violations("dev", |p, _| remove(p, &format!("resources.{alarm}")));
        assert_eq!(rules(&found), [LOSS_PATHS_ALARMED], "{alarm}");
        assert_eq!(found.len(), 1, "{alarm}: {found:?}");
        assert_eq!(found[0].path, format!("resources.{resource}"), "{alarm}");
        assert!(
            found[0].message.starts_with("no alarm on ") && found[0].message.contains(metric),
            "{alarm}: {}",
            found[0]
        );
    }
}

#[test]
fn loss_paths_alarmed_demands_one_period_for_losses_and_breaching_for_silence() {
    // Prod evaluates 5 periods: without datapointsToAlarm one drop would never alarm.
    let found = violations("prod", |p, _| {
        remove(
            p,
            "resources.processorAsyncEventsDroppedAlarm.properties.datapointsToAlarm",
        )
    });
    assert_eq!(rules(&found), [LOSS_PATHS_ALARMED]);
    assert_eq!(
        found[0].path,
        "resources.processorAsyncEventsDroppedAlarm.properties.datapointsToAlarm"
    );
    // Dev evaluates one period, which is the same.
    assert_eq!(
        violations("dev", |p, _| {
            remove(
                p,
                "resources.processorAsyncEventsDroppedAlarm.properties.datapointsToAlarm",
            )
        }),
        []
    );
    let found = violations("dev", |p, _| {
        set(
            p,
            "resources.silentFeedAlarm.properties.treatMissingData",
            "notBreaching",
        )
    });
    assert_eq!(rules(&found), [LOSS_PATHS_ALARMED]);
    assert_eq!(
        found[0].path,
        "resources.silentFeedAlarm.properties.treatMissingData"
    );
}

#[test]
fn loss_paths_alarmed_demands_actions_in_production_only() {
    let found = violations("prod", |p, _| {
        remove(p, "resources.rejectedShareAlarm.properties.alarmActions")
    });
    assert_eq!(rules(&found), [LOSS_PATHS_ALARMED]);
    assert_eq!(
        found[0].path,
        "resources.rejectedShareAlarm.properties.alarmActions"
    );
    // Dev renders no topic and no actions at all, and passes.
    let dev = program("dev");
    assert!(
        dev["resources"]["silentFeedAlarm"]["properties"]
            .get("alarmActions")
            .is_none()
    );
    assert_eq!(violations("dev", |_, _| {}), []);
}

#[test]
fn docs_list_every_rule() {
    // The rules are documented in docs/ or ARCHITECTURE.md, wherever the table lives.
    let root = crate::render::fixtures::workspace_root();
    let mut pages = vec![root.join("ARCHITECTURE.md")];
    if let Ok(entries) = std::fs::read_dir(root.join("docs")) {
        pages.extend(entries.filter_map(Result::ok).map(|e| e.path()));
    }
    let docs: String = pages
        .iter()
        .filter(|p| p.extension().and_then(|e| e.to_str()) == Some("md"))
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .collect();
    for (rule, description) in RULES {
        let row = format!("| `{rule}` | {description} |");
        assert!(docs.contains(&row), "no documentation row: {row}");
    }
}

/// Parses the dev dashboard's body, lets `edit` change it and puts it back.
fn edited_dashboard(edit: impl FnOnce(&mut serde_json::Value)) -> Vec<Violation> {
    violations("dev", |p, _| {
        let path = "resources.dashboard.properties.dashboardBody";
        let text = crate::render::fixtures::at(p, path)
            .as_str()
            .unwrap_or_default()
            .to_string();
        let mut body: serde_json::Value = serde_json::from_str(&text).expect("the body is JSON");
        edit(&mut body);
        set(p, path, body.to_string());
    })
}

/// The metric rows of widget `widget` of a dashboard body.
fn rows(body: &mut serde_json::Value, widget: usize) -> &mut Vec<serde_json::Value> {
    body["widgets"][widget]["properties"]["metrics"]
        .as_array_mut()
        .expect("a metric widget")
}

#[test]
fn dashboard_metrics_refuses_a_metric_nobody_publishes() {
    // A misspelt processor metric, and a real one under dimensions it is not emitted with.
    let found = edited_dashboard(|b| rows(b, 1)[0][1] = "Processd".into());
    assert_eq!(rules(&found), [DASHBOARD_METRICS]);
    assert_eq!(
        found[0].path,
        "resources.dashboard.properties.dashboardBody.widgets[1].properties.metrics[0]"
    );
    assert!(
        found[0].message.contains("emits no such metric"),
        "{}",
        found[0]
    );
    let found = edited_dashboard(|b| rows(b, 1)[0][1] = names::METRIC_LAG.into());
    assert_eq!(rules(&found), [DASHBOARD_METRICS]);
    // Another stack's environment, and a reason class the processor does not use.
    let found = edited_dashboard(|b| rows(b, 1)[0][3] = "prod".into());
    assert!(
        found[0].message.contains("another environment's"),
        "{}",
        found[0]
    );
    let found = edited_dashboard(|b| rows(b, 4)[0][5] = "typo".into());
    assert!(
        found[0].message.contains("not a reason class"),
        "{}",
        found[0]
    );
    // An AWS metric the rule does not know, and a known one of a queue that is not the stack's.
    let found = edited_dashboard(|b| rows(b, 5)[0][1] = "NumberOfMessagesVisible".into());
    assert_eq!(rules(&found), [DASHBOARD_METRICS]);
    let found = edited_dashboard(|b| rows(b, 5)[0][3] = "market-processor-dlq-prod".into());
    assert!(
        found[0].message.contains("no resource of this program"),
        "{}",
        found[0]
    );
    // The shorthand CloudWatch's editor writes says nothing the rule can check.
    let found = edited_dashboard(|b| rows(b, 1)[1] = serde_json::json!(["...", "Failed"]));
    assert_eq!(rules(&found), [DASHBOARD_METRICS]);
}

#[test]
fn dashboard_metrics_reads_search_expressions() {
    let lag = |b: &mut serde_json::Value| -> String {
        rows(b, 2)[0][0]["expression"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    for (from, to, says) in [
        (
            "MetricName=\"Lag\"",
            "MetricName=\"Lagg\"",
            "not a metric the processor emits",
        ),
        ("MetricName=\"Lag\"", "", "names no MetricName"),
        (
            "{MarketData,Environment,Exchange,EventType} ",
            "",
            "has no {namespace",
        ),
        ("Environment=\"dev\" ", "", "every environment"),
    ] {
        let found = edited_dashboard(|b| {
            let edited = lag(b).replace(from, to);
            rows(b, 2)[0][0]["expression"] = edited.into();
        });
        assert_eq!(rules(&found), [DASHBOARD_METRICS], "{to:?}");
        assert!(found[0].message.contains(says), "{}", found[0]);
    }
}

#[test]
fn dashboard_metrics_demands_every_table_and_a_readable_body() {
    // The latest-prices table's throttles: the operation's row and the sum over it.
    let found = edited_dashboard(|b| {
        let throttles = rows(b, 7);
        let kept = throttles.len() - 2;
        throttles.truncate(kept);
    });
    assert_eq!(rules(&found), [DASHBOARD_METRICS]);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].message.contains("\"latest-prices-dev\""),
        "{}",
        found[0]
    );
    let found = violations("dev", |p, _| {
        set(
            p,
            "resources.dashboard.properties.dashboardBody",
            "{widgets",
        )
    });
    assert_eq!(rules(&found), [DASHBOARD_METRICS]);
}
