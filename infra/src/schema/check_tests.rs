//! Tests of the program check: the committed stacks pass, and each class of mistake is caught
//! with its path.

use serde_yaml::Value;

use super::check_program;
use crate::render::fixtures::{program, remove, rename, schema, set};

fn findings(program: &Value) -> Vec<String> {
    check_program(&schema(), program)
        .iter()
        .map(ToString::to_string)
        .collect()
}

/// Breaks the dev program with `edit` and returns what the check says about it.
fn broken(edit: impl FnOnce(&mut Value)) -> Vec<String> {
    let mut p = program("dev");
    edit(&mut p);
    findings(&p)
}

#[test]
fn every_committed_stack_renders_a_program_the_schema_accepts() {
    for stack in ["dev", "staging", "prod"] {
        assert_eq!(findings(&program(stack)), Vec::<String>::new(), "{stack}");
    }
}

#[test]
fn rejects_a_snake_case_property_in_a_retry_policy() {
    // The mistake that blocked every deploy of the system this replaces.
    let found = broken(|p| {
        rename(
            p,
            "resources.tradeEventsTarget.properties.retryPolicy.maximumEventAgeInSeconds",
            "maximum_event_age",
        )
    });
    assert_eq!(
        found,
        [
            "resources.tradeEventsTarget.properties.retryPolicy.maximum_event_age: unknown property; known: maximumEventAgeInSeconds, maximumRetryAttempts"
        ]
    );
}

#[test]
fn rejects_unknown_top_level_properties_with_a_suggestion() {
    let found = broken(|p| {
        rename(
            p,
            "resources.processorFunction.properties.memorySize",
            "memory_size",
        )
    });
    assert_eq!(
        found,
        [
            "resources.processorFunction.properties.memory_size: unknown property of aws:lambda/function:Function; did you mean memorySize? (41 known)"
        ]
    );
}

#[test]
fn rejects_a_string_where_an_integer_belongs() {
    let found = broken(|p| {
        set(
            p,
            "resources.processorFunction.properties.memorySize",
            "256",
        )
    });
    assert_eq!(
        found,
        [
            r#"resources.processorFunction.properties.memorySize: expected integer, found string "256""#
        ]
    );
    let found = broken(|p| {
        set(
            p,
            "resources.processorFunction.properties.timeout",
            "${dynamodbBillingMode}",
        )
    });
    assert_eq!(
        found,
        [
            "resources.processorFunction.properties.timeout: expected integer, found ${dynamodbBillingMode} (a string)"
        ]
    );
}

#[test]
fn rejects_a_missing_required_input() {
    let found = broken(|p| remove(p, "resources.tradeEventsTarget.properties.arn"));
    assert_eq!(
        found,
        [
            "resources.tradeEventsTarget.properties: missing required input `arn` of aws:cloudwatch/eventTarget:EventTarget"
        ]
    );
}

#[test]
fn rejects_references_to_outputs_that_do_not_exist() {
    let found = broken(|p| {
        set(
            p,
            "outputs.lambda_function_arn",
            "${processorFunction.functionArn}",
        )
    });
    assert_eq!(found.len(), 1);
    assert!(
        found[0].starts_with("outputs.lambda_function_arn: ${processorFunction.functionArn}: aws:lambda/function:Function has no output `functionArn`; did you mean"),
        "{found:?}"
    );
    let found = broken(|p| set(p, "outputs.dlq_url", "${deadLetterQueue.url_}"));
    assert!(
        found[0].contains("has no output `url_`; did you mean url, urn?"),
        "{found:?}"
    );
}

#[test]
fn rejects_references_to_names_that_do_not_exist() {
    let found = broken(|p| {
        set(
            p,
            "resources.processorFunction.properties.memorySize",
            "${lambdaMemory}",
        )
    });
    assert_eq!(found.len(), 1);
    assert!(
        found[0].starts_with("resources.processorFunction.properties.memorySize: ${lambdaMemory}: `lambdaMemory` is not a config key, variable, resource or built-in of this program"),
        "{found:?}"
    );
    let found = broken(|p| set(p, "outputs.event_bus_name", "bus ${pulumi.stak}"));
    assert!(found[0].contains("unknown built-in"), "{found:?}");
    assert!(
        broken(|p| set(
            p,
            "outputs.event_bus_name",
            "${pulumi.stack}-${eventBus.name}"
        ))
        .is_empty()
    );
}

#[test]
fn checks_references_inside_policy_documents() {
    let found = broken(|p| {
        set(
            p,
            "resources.processorPolicy.properties.policy.fn::toJSON.Statement.0.Resource.0",
            "${marketDataTable.tableArn}",
        )
    });
    assert_eq!(found.len(), 1);
    assert!(found[0].starts_with("resources.processorPolicy.properties.policy.fn::toJSON.Statement[0].Resource[0]: ${marketDataTable.tableArn}"), "{found:?}");
}

#[test]
fn checks_object_types_inside_arrays() {
    let found = broken(|p| {
        rename(
            p,
            "resources.marketDataTable.properties.globalSecondaryIndexes.0.projectionType",
            "projection",
        )
    });
    assert_eq!(
        found,
        [
            "resources.marketDataTable.properties.globalSecondaryIndexes[0].projection: unknown property; known: hashKey, keySchemas, name, nonKeyAttributes, onDemandThroughput, projectionType, rangeKey, readCapacity, warmThroughput, writeCapacity",
            "resources.marketDataTable.properties.globalSecondaryIndexes[0]: missing required property `projectionType` of TableGlobalSecondaryIndex",
        ]
    );
}

#[test]
fn flags_deprecated_properties() {
    let found = broken(|p| {
        set(
            p,
            "resources.marketDataTable.properties.globalSecondaryIndexes.0.hashKey",
            "exchange",
        )
    });
    assert_eq!(
        found,
        [
            "resources.marketDataTable.properties.globalSecondaryIndexes[0].hashKey: deprecated: hash_key is deprecated."
        ]
    );
}

#[test]
fn lambda_code_must_be_an_archive() {
    let found = broken(|p| {
        set(
            p,
            "resources.processorFunction.properties.code",
            "target/lambda/market-processor/bootstrap.zip",
        )
    });
    assert_eq!(
        found,
        [
            r#"resources.processorFunction.properties.code: expected an archive such as {fn::fileArchive: path}, found string "target/lambda/market-processor/bootstrap.zip""#
        ]
    );
}

#[test]
fn rejects_unknown_resource_types_and_functions() {
    let found = broken(|p| {
        set(
            p,
            "resources.processorFunction.type",
            "aws:lambda/functon:Function",
        )
    });
    assert!(
        found.contains(&"resources.processorFunction.type: unknown resource type `aws:lambda/functon:Function` (not in the AWS provider schema)".to_string()),
        "{found:?}"
    );
    let found = broken(|p| {
        let policy = crate::render::fixtures::at(p, "resources.processorPolicy.properties.policy");
        rename(policy, "fn::toJSON", "fn::toJson")
    });
    assert!(found[0].starts_with("resources.processorPolicy.properties.policy.fn::toJson: unknown or unsupported function"), "{found:?}");
}

#[test]
fn config_variables_and_resources_share_one_namespace() {
    let found = broken(|p| {
        set(
            p,
            "config.eventBus",
            Value::Mapping(serde_yaml::Mapping::from_iter([(
                "type".into(),
                "string".into(),
            )])),
        )
    });
    // Every `${eventBus.…}` now resolves to the config key, so more findings follow.
    assert_eq!(
        found[0],
        "resources.eventBus: `eventBus` is already declared in config; config, variables and resources share one namespace"
    );
}

#[test]
fn depends_on_takes_resources_only() {
    let found = broken(|p| {
        set(
            p,
            "resources.processorFunction.options.dependsOn.0",
            "${lambdaMemoryMb}",
        )
    });
    assert_eq!(
        found,
        [
            r#"resources.processorFunction.options.dependsOn[0]: "${lambdaMemoryMb}" is not a reference to a resource of this program such as ${name}"#
        ]
    );
}

#[test]
fn accepts_the_short_token_form() {
    assert!(
        broken(|p| set(p, "resources.processorFunction.type", "aws:lambda:Function")).is_empty()
    );
}

#[test]
fn checks_invoked_functions_their_inputs_and_the_output_returned() {
    let invoke = "variables.deployingAccountId.fn::invoke";
    assert_eq!(
        broken(|p| set(p, &format!("{invoke}.function"), "aws:getCallerIdentity")),
        Vec::<String>::new(),
        "the short form resolves"
    );
    assert_eq!(
        broken(|p| set(
            p,
            &format!("{invoke}.function"),
            "aws:index/getCallerIdentiy:getCallerIdentiy"
        )),
        [format!(
            "{invoke}.function: unknown function `aws:index/getCallerIdentiy:getCallerIdentiy` (not in the AWS provider schema)"
        )]
    );
    assert_eq!(
        broken(|p| set(p, &format!("{invoke}.return"), "account_id")),
        [format!(
            "{invoke}.return: \"account_id\" is not an output of aws:index/getCallerIdentity:getCallerIdentity; known: accountId, arn, id, userId"
        )]
    );
    let found = broken(|p| {
        let arguments: Value = serde_yaml::from_str("{accountId: x}").expect("yaml");
        set(p, &format!("{invoke}.arguments"), arguments)
    });
    assert_eq!(
        found,
        [format!(
            "{invoke}.arguments.accountId: unknown input of aws:index/getCallerIdentity:getCallerIdentity; known: id"
        )]
    );
    let found = broken(|p| set(p, &format!("{invoke}.returns"), "accountId"));
    assert!(
        found[0].starts_with(&format!("{invoke}.returns: unknown fn::invoke field")),
        "{found:?}"
    );
}

#[test]
fn checks_metric_queries_of_an_alarm_on_metric_math() {
    let found = broken(|p| {
        rename(
            p,
            "resources.rejectedShareAlarm.properties.metricQueries.0.metric.stat",
            "statistic",
        )
    });
    assert_eq!(
        found,
        [
            "resources.rejectedShareAlarm.properties.metricQueries[0].metric.statistic: unknown property; known: dimensions, metricName, namespace, period, stat, unit",
            "resources.rejectedShareAlarm.properties.metricQueries[0].metric: missing required property `stat` of MetricAlarmMetricQueryMetric",
        ]
    );
}

#[test]
fn checks_the_dashboard_and_the_archive_against_their_types() {
    let found = broken(|p| remove(p, "resources.dashboard.properties.dashboardBody"));
    assert_eq!(
        found,
        [
            "resources.dashboard.properties: missing required input `dashboardBody` of aws:cloudwatch/dashboard:Dashboard"
        ]
    );
    // The body is JSON text, not a YAML mapping of it.
    let found = broken(|p| {
        let body: Value = serde_yaml::from_str("{widgets: []}").expect("yaml");
        set(p, "resources.dashboard.properties.dashboardBody", body)
    });
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].starts_with("resources.dashboard.properties.dashboardBody:"),
        "{found:?}"
    );
    let found = broken(|p| rename(p, "resources.dashboard.properties.dashboardName", "name"));
    assert!(
        found.iter().any(|f| f.contains("unknown property")),
        "{found:?}"
    );
    let found = broken(|p| remove(p, "resources.eventArchive.properties.eventSourceArn"));
    assert_eq!(
        found,
        [
            "resources.eventArchive.properties: missing required input `eventSourceArn` of aws:cloudwatch/eventArchive:EventArchive"
        ]
    );
    let found = broken(|p| {
        set(
            p,
            "resources.eventArchive.properties.retentionDays",
            "seven",
        )
    });
    assert_eq!(found.len(), 1, "{found:?}");
}
