//! The local stand-in for an EventBridge archive and StartReplay.
//!
//! moto keeps an archive's events and replays them, but every one of them, to every rule of the
//! bus, under new ids, at once, and reports no progress: a replay's range and `FilterArns`
//! would go untested. So the local stack captures what the archive would (a rule with the
//! archive's pattern and `replay-name` absent, as EventBridge's own archive rule has, into a
//! queue), keeps it in a file, and replays from that: the range by event `time`, minute by
//! minute, only to the plan's rules, with `replay-name` set and new or kept ids.
//! ARCHITECTURE.md's table of what is emulated lists the differences.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow};
use aws_sdk_eventbridge::types::Target;
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use chrono::{DateTime, Utc};
use infra::model::{Model, RuleSpec};
use infra::outputs::Outputs;
use serde_json::Value;

use super::plan::{Ids, Plan};
use crate::aws::sdk_error;
use crate::scenario::Clients;

/// The queue the capture rule fills, named after the bus.
pub fn capture_queue_name(model: &Model) -> String {
    format!("{}-archive", model.bus.name)
}

/// The capture rule: the archive's pattern, and never a replayed event (EventBridge does not
/// archive replays either).
pub fn capture_pattern(model: &Model) -> Value {
    let mut pattern = model.archive.event_pattern.clone();
    pattern[names::REPLAY_NAME] = serde_json::json!([{ "exists": false }]);
    pattern
}

/// Creates the capture queue and rule on the local bus.
pub async fn provision(
    events: &aws_sdk_eventbridge::Client,
    sqs: &aws_sdk_sqs::Client,
    model: &Model,
) -> Result<()> {
    let queue = capture_queue_name(model);
    let url = sqs
        .create_queue()
        .queue_name(&queue)
        .send()
        .await
        .map_err(|e| sdk_error("CreateQueue", e))?
        .queue_url
        .ok_or_else(|| anyhow!("CreateQueue {queue} returned no URL"))?;
    let arn = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| sdk_error("GetQueueAttributes", e))?
        .attributes
        .and_then(|a| {
            a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn)
                .cloned()
        })
        .ok_or_else(|| anyhow!("queue {queue} has no ARN"))?;
    let rule = format!("{queue}-capture");
    events
        .put_rule()
        .name(&rule)
        .event_bus_name(&model.bus.name)
        .event_pattern(capture_pattern(model).to_string())
        .send()
        .await
        .map_err(|e| sdk_error("PutRule", e))?;
    events
        .put_targets()
        .rule(&rule)
        .event_bus_name(&model.bus.name)
        .targets(
            Target::builder()
                .id("archive")
                .arn(arn)
                .build()
                .context("building the capture target")?,
        )
        .send()
        .await
        .map_err(|e| sdk_error("PutTargets", e))?;
    Ok(())
}

fn archive_file(root: &Path, model: &Model) -> PathBuf {
    root.join("target")
        .join("local")
        .join("archive")
        .join(format!("{}.jsonl", model.bus.name))
}

/// Empties the local archive of `model`'s bus, for a freshly provisioned stack.
pub fn forget(root: &Path, model: &Model) -> Result<()> {
    let path = archive_file(root, model);
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(()),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(err) => Err(err).with_context(|| format!("removing {}", path.display())),
    }
}

/// Moves what the capture queue holds into the archive file; returns every archived event.
async fn collect(root: &Path, sqs: &aws_sdk_sqs::Client, model: &Model) -> Result<Vec<Value>> {
    let path = archive_file(root, model);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let url = sqs
        .get_queue_url()
        .queue_name(capture_queue_name(model))
        .send()
        .await
        .map_err(|e| sdk_error("GetQueueUrl", e))
        .context("finding the local archive's capture queue (is the local stack up?)")?
        .queue_url
        .ok_or_else(|| anyhow!("GetQueueUrl returned no URL"))?;
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    loop {
        let messages = sqs
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .visibility_timeout(60)
            .send()
            .await
            .map_err(|e| sdk_error("ReceiveMessage", e))?
            .messages
            .unwrap_or_default();
        if messages.is_empty() {
            break;
        }
        for message in &messages {
            if let Some(body) = message.body() {
                // One event per line; the bus wrote it as one JSON object.
                let line: Value = serde_json::from_str(body).context("an archived event")?;
                writeln!(file, "{line}").context("appending to the archive file")?;
            }
            if let Some(handle) = message.receipt_handle() {
                sqs.delete_message()
                    .queue_url(&url)
                    .receipt_handle(handle)
                    .send()
                    .await
                    .map_err(|e| sdk_error("DeleteMessage", e))?;
            }
        }
    }
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).context("a line of the archive file"))
        .collect()
}

fn event_time(event: &Value) -> Option<DateTime<Utc>> {
    let text = event.get("time")?.as_str()?;
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

fn routed_by(rule: &RuleSpec, event: &Value) -> bool {
    let field = |name: &str| event.get(name).and_then(Value::as_str).unwrap_or("");
    rule.sources.iter().any(|s| s == field("source"))
        && rule.detail_types.iter().any(|t| t == field("detail-type"))
}

/// The events of the plan, in the order EventBridge replays them: minute by minute of event
/// time (within a minute, in archive order), each as the replay delivers it.
pub fn select(archived: &[Value], plan: &Plan) -> Vec<Value> {
    let mut chosen: Vec<(i64, usize, Value)> = archived
        .iter()
        .enumerate()
        .filter_map(|(i, event)| {
            let time = event_time(event)?;
            let in_range = time >= plan.from && time < plan.to;
            let routed = plan.rules.iter().any(|rule| routed_by(rule, event));
            (in_range && routed).then(|| {
                let mut copy = event.clone();
                copy[names::REPLAY_NAME] = Value::String(plan.name.clone());
                if plan.ids == Ids::New {
                    copy["id"] = Value::String(uuid::Uuid::new_v4().to_string());
                }
                (time.timestamp().div_euclid(60), i, copy)
            })
        })
        .collect();
    chosen.sort_by_key(|(minute, i, _)| (*minute, *i));
    chosen.into_iter().map(|(_, _, event)| event).collect()
}

/// Replays the plan from the local archive into the queue the local runner reads in place of
/// Lambda's event queue; returns how many events it delivered.
pub async fn replay(
    root: &Path,
    clients: &Clients,
    model: &Model,
    outputs: &Outputs,
    plan: &Plan,
) -> Result<u64> {
    let archived = collect(root, &clients.sqs, model).await?;
    let events = select(&archived, plan);
    println!(
        "  local archive: {} events, {} in the range for rules {}",
        archived.len(),
        events.len(),
        plan.rule_names.join(", ")
    );
    let queue = outputs
        .delivery_queue_url
        .as_deref()
        .context("outputs have no delivery_queue_url: not a local stack")?;
    let mut last_minute = None;
    for chunk in events.chunks(10) {
        let entries = chunk
            .iter()
            .enumerate()
            .map(|(i, event)| {
                SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(event.to_string())
                    .build()
                    .context("building a replayed message")
            })
            .collect::<Result<Vec<_>>>()?;
        let sent = clients
            .sqs
            .send_message_batch()
            .queue_url(queue)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| sdk_error("SendMessageBatch", e))?;
        if !sent.failed().is_empty() {
            anyhow::bail!("the local replay could not deliver {:?}", sent.failed());
        }
        let minute = chunk.last().and_then(event_time);
        if minute.map(|t| t.timestamp() / 60)
            != last_minute.map(|t: DateTime<Utc>| t.timestamp() / 60)
        {
            println!("{}", plan.progress(minute));
            last_minute = minute;
        }
    }
    println!("{}", plan.progress(Some(plan.to)));
    Ok(events.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(ids: Ids) -> Plan {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let config = infra::stack::StackConfig::load(&root, "dev").expect("dev stack");
        let model = Model::from_stack(&config);
        // Whole seconds, as a range given on the command line is.
        let now = DateTime::<Utc>::from_timestamp(Utc::now().timestamp(), 0).expect("now");
        let json: serde_json::Map<String, Value> = infra::outputs::DEPLOYED_KEYS
            .iter()
            .map(|k| {
                (
                    k.to_string(),
                    Value::String(format!("arn:aws:x:us-east-1:1:{k}")),
                )
            })
            .collect();
        let outputs = Outputs::parse(&Value::Object(json).to_string()).expect("outputs");
        let request = super::super::Request {
            from: now - chrono::Duration::days(3),
            to: now - chrono::Duration::days(2),
            rules: vec!["quote".into()],
            settle: std::time::Duration::from_secs(1),
            inside_retry_windows: false,
            with_dlq_letters: false,
            ids,
        };
        Plan::new(&model, &outputs, &request, now).expect("a plan")
    }

    fn event(id: &str, detail_type: &str, time: DateTime<Utc>) -> Value {
        serde_json::json!({
            "id": id, "source": names::DEFAULT_SOURCE, "detail-type": detail_type,
            "time": processor::event::format_timestamp(time), "detail": {}
        })
    }

    #[test]
    fn a_replay_takes_its_range_and_rules_minute_by_minute() {
        for ids in [Ids::New, Ids::Keep] {
            let plan = plan(ids);
            let at = |minutes: i64| plan.from + chrono::Duration::minutes(minutes);
            let archived = [
                event("late", names::MARKET_QUOTE, at(5)),
                event("trade", names::TRADE_EXECUTION, at(1)),
                event("early", names::PRICE_UPDATE, at(0)),
                event(
                    "before",
                    names::MARKET_QUOTE,
                    plan.from - chrono::Duration::seconds(1),
                ),
                event("end", names::MARKET_QUOTE, plan.to),
                event(
                    "same-minute",
                    names::MARKET_QUOTE,
                    at(5) + chrono::Duration::seconds(1),
                ),
            ];
            let chosen = select(&archived, &plan);
            let times: Vec<&str> = chosen.iter().map(|e| e["time"].as_str().unwrap()).collect();
            assert_eq!(chosen.len(), 3, "{times:?}");
            for event in &chosen {
                assert_eq!(event[names::REPLAY_NAME], plan.name.as_str());
            }
            let ids: Vec<&str> = chosen.iter().map(|e| e["id"].as_str().unwrap()).collect();
            match plan.ids {
                Ids::Keep => assert_eq!(ids, ["early", "late", "same-minute"]),
                Ids::New => assert!(ids.iter().all(|id| id.len() == 36), "{ids:?}"),
            }
        }
    }
}
