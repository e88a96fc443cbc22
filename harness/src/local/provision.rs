//! Creates a stack's tables, bus, rules and queues in the emulator, from the same [`Model`] the
//! Pulumi program is rendered from: same names, keys, indexes, TTL and event patterns.

use anyhow::{Context, Result, anyhow};
use aws_config::SdkConfig;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, TimeToLiveSpecification,
};
use aws_sdk_eventbridge::types::{DeadLetterConfig, RetryPolicy, Target};
use aws_sdk_sqs::types::QueueAttributeName;

use infra::model::{Model, TableSpec};
use infra::outputs::Outputs;

/// The account id the emulator uses; it appears in every ARN it returns.
const EMULATOR_ACCOUNT: &str = "123456789012";

/// Provisions every resource the local pipeline needs and returns the stack's outputs.
pub async fn provision(config: &SdkConfig, model: &Model, endpoint: &str) -> Result<Outputs> {
    let dynamodb = aws_sdk_dynamodb::Client::new(config);
    let events = aws_sdk_eventbridge::Client::new(config);
    let sqs = aws_sdk_sqs::Client::new(config);
    let region = config
        .region()
        .map(|r| r.to_string())
        .unwrap_or_else(|| model.region.clone());

    let mut table_arns = Vec::new();
    for table in &model.tables {
        table_arns.push(create_table(&dynamodb, table).await?);
    }

    let (dlq_url, dlq_arn) =
        create_queue(&sqs, &model.dlq.name, model.dlq.retention_seconds).await?;
    // The rules' target: the local runner reads it in place of Lambda's event queue.
    let delivery_name = format!("{}-invocations", model.function.name);
    let (delivery_url, delivery_arn) = create_queue(&sqs, &delivery_name, 345_600).await?;
    let bus_arn = events
        .create_event_bus()
        .name(&model.bus.name)
        .send()
        .await
        .map_err(|e| crate::aws::sdk_error("CreateEventBus", e))?
        .event_bus_arn
        .ok_or_else(|| anyhow!("CreateEventBus returned no ARN"))?;

    let mut rule_arns = Vec::new();
    for rule in &model.rules {
        let arn = events
            .put_rule()
            .name(&rule.name)
            .event_bus_name(&model.bus.name)
            .event_pattern(rule.event_pattern_json())
            .description(&rule.description)
            .send()
            .await
            .map_err(|e| crate::aws::sdk_error("PutRule", e))?
            .rule_arn
            .ok_or_else(|| anyhow!("PutRule {} returned no ARN", rule.name))?;
        let target = Target::builder()
            .id(rule.target_id)
            .arn(&delivery_arn)
            .retry_policy(
                RetryPolicy::builder()
                    .maximum_retry_attempts(to_i32(rule.target_max_retry_attempts))
                    .maximum_event_age_in_seconds(to_i32(rule.target_max_event_age_seconds))
                    .build(),
            )
            .dead_letter_config(DeadLetterConfig::builder().arn(&dlq_arn).build())
            .build()
            .context("building the rule target")?;
        let put = events
            .put_targets()
            .rule(&rule.name)
            .event_bus_name(&model.bus.name)
            .targets(target)
            .send()
            .await
            .map_err(|e| crate::aws::sdk_error("PutTargets", e))?;
        if put.failed_entry_count > 0 {
            anyhow::bail!(
                "PutTargets for rule {} failed: {:?}",
                rule.name,
                put.failed_entries()
            );
        }
        rule_arns.push(arn);
    }

    let stream = match &model.kinesis {
        Some(kinesis) => Some(
            create_stream(&aws_sdk_kinesis::Client::new(config), &kinesis.stream)
                .await
                .with_context(|| format!("creating stream {}", kinesis.stream.name))?,
        ),
        None => None,
    };

    // The archive as EventBridge holds it (moto keeps one too, which gives its ARN), and the
    // capture the local replay reads (replay::archive says why moto's own replay is not used).
    let archive_name = model.archive.name.clone();
    let archive_arn = events
        .create_archive()
        .archive_name(&archive_name)
        .event_source_arn(&bus_arn)
        .event_pattern(model.archive.event_pattern.to_string())
        .retention_days(i32::try_from(model.archive.retention_days).unwrap_or(i32::MAX))
        .send()
        .await
        .map_err(|e| crate::aws::sdk_error("CreateArchive", e))?
        .archive_arn
        .ok_or_else(|| anyhow!("CreateArchive returned no ARN"))?;
    crate::replay::archive::provision(&events, &sqs, model).await?;
    let table_named = |prefix: &str| {
        model
            .tables
            .iter()
            .position(|t| t.prefix == prefix)
            .ok_or_else(|| anyhow!("the model has no {prefix} table"))
    };
    let latest = table_named(names::LATEST_TABLE_PREFIX)?;

    let function_arn = format!(
        "arn:aws:lambda:{region}:{EMULATOR_ACCOUNT}:function:{}",
        model.function.name
    );
    Ok(Outputs {
        event_bus_name: model.bus.name.clone(),
        event_bus_arn: bus_arn,
        lambda_function_name: model.function.name.clone(),
        lambda_function_arn: function_arn,
        market_data_table_name: model.tables[0].name.clone(),
        market_data_table_arn: table_arns[0].clone(),
        audit_trail_table_name: model.tables[1].name.clone(),
        audit_trail_table_arn: table_arns[1].clone(),
        latest_table_name: model.tables[latest].name.clone(),
        latest_table_arn: table_arns[latest].clone(),
        archive_name,
        archive_arn,
        dlq_url,
        dlq_arn,
        log_group_name: model.log_group.name.clone(),
        trade_events_rule_arn: rule_arns[0].clone(),
        quote_events_rule_arn: rule_arns[1].clone(),
        kinesis_stream_name: stream.as_ref().map(|(name, _)| name.clone()),
        kinesis_stream_arn: stream.map(|(_, arn)| arn),
        endpoint_url: Some(endpoint.to_string()),
        region: Some(region),
        delivery_queue_url: Some(delivery_url),
    })
}

/// Creates the stream as the program does (mode, shards, retention, KMS encryption) and waits
/// until it is active; returns its name and ARN.
async fn create_stream(
    kinesis: &aws_sdk_kinesis::Client,
    spec: &infra::model::StreamSpec,
) -> Result<(String, String)> {
    use aws_sdk_kinesis::types::{EncryptionType, StreamMode, StreamModeDetails, StreamStatus};
    let mode = match spec.mode {
        infra::stack::StreamMode::OnDemand => StreamMode::OnDemand,
        infra::stack::StreamMode::Provisioned => StreamMode::Provisioned,
    };
    let mut create = kinesis
        .create_stream()
        .stream_name(&spec.name)
        .stream_mode_details(StreamModeDetails::builder().stream_mode(mode).build()?);
    if let Some(shards) = spec.shard_count {
        create = create.shard_count(i32::try_from(shards).unwrap_or(i32::MAX));
    }
    create
        .send()
        .await
        .map_err(|e| crate::aws::sdk_error("CreateStream", e))?;
    let arn = loop {
        let summary = kinesis
            .describe_stream_summary()
            .stream_name(&spec.name)
            .send()
            .await
            .map_err(|e| crate::aws::sdk_error("DescribeStreamSummary", e))?
            .stream_description_summary
            .ok_or_else(|| anyhow!("DescribeStreamSummary returned no summary"))?;
        if summary.stream_status == StreamStatus::Active {
            break summary.stream_arn;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    let hours = i32::try_from(spec.retention_hours).unwrap_or(i32::MAX);
    if hours > 24 {
        kinesis
            .increase_stream_retention_period()
            .stream_name(&spec.name)
            .retention_period_hours(hours)
            .send()
            .await
            .map_err(|e| crate::aws::sdk_error("IncreaseStreamRetentionPeriod", e))?;
    }
    kinesis
        .start_stream_encryption()
        .stream_name(&spec.name)
        .encryption_type(EncryptionType::Kms)
        .key_id(spec.kms_key)
        .send()
        .await
        .map_err(|e| crate::aws::sdk_error("StartStreamEncryption", e))?;
    Ok((spec.name.clone(), arn))
}

/// Creates `table` with its indexes and TTL; returns its ARN.
pub async fn create_table(client: &aws_sdk_dynamodb::Client, table: &TableSpec) -> Result<String> {
    let key = |attr: &str, kind: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(attr)
            .key_type(kind)
            .build()
            .context("key schema")
    };
    let mut request = client
        .create_table()
        .table_name(&table.name)
        // The emulator has no capacity to plan; on-demand keeps it out of the way.
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key(table.hash_key, KeyType::Hash)?)
        .key_schema(key(table.range_key, KeyType::Range)?);
    for attribute in &table.attributes {
        request = request.attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(attribute.name)
                .attribute_type(ScalarAttributeType::from(attribute.kind.as_str()))
                .build()
                .context("attribute definition")?,
        );
    }
    for index in &table.indexes {
        request = request.global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(index.name)
                .key_schema(key(index.hash_key, KeyType::Hash)?)
                .key_schema(key(index.range_key, KeyType::Range)?)
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::from(index.projection))
                        .build(),
                )
                .build()
                .context("index")?,
        );
    }
    let arn = request
        .send()
        .await
        .map_err(|e| crate::aws::sdk_error("CreateTable", e))
        .with_context(|| format!("creating table {}", table.name))?
        .table_description
        .and_then(|d| d.table_arn)
        .ok_or_else(|| anyhow!("CreateTable {} returned no ARN", table.name))?;
    client
        .update_time_to_live()
        .table_name(&table.name)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .enabled(true)
                .attribute_name(table.ttl_attribute)
                .build()
                .context("TTL specification")?,
        )
        .send()
        .await
        .map_err(|e| crate::aws::sdk_error("UpdateTimeToLive", e))?;
    Ok(arn)
}

async fn create_queue(
    client: &aws_sdk_sqs::Client,
    name: &str,
    retention_seconds: u32,
) -> Result<(String, String)> {
    let url = client
        .create_queue()
        .queue_name(name)
        .attributes(
            QueueAttributeName::MessageRetentionPeriod,
            retention_seconds.to_string(),
        )
        .send()
        .await
        .map_err(|e| crate::aws::sdk_error("CreateQueue", e))
        .with_context(|| format!("creating queue {name}"))?
        .queue_url
        .ok_or_else(|| anyhow!("CreateQueue {name} returned no URL"))?;
    let arn = client
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| crate::aws::sdk_error("GetQueueAttributes", e))?
        .attributes
        .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn))
        .ok_or_else(|| anyhow!("queue {name} has no ARN"))?;
    Ok((url, arn))
}

fn to_i32(value: u32) -> i32 {
    i32::try_from(value).unwrap_or(i32::MAX)
}
