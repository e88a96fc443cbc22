//! A user's feed file onto a stack: one event per JSON line, each through the path its stack
//! routes its class by (the stream's PutRecords for the classes of `kinesis.publish`, the bus
//! otherwise).

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result, bail};
use infra::outputs::Outputs;

use crate::scenario::{self, Clients};
use crate::session::{Expect, SampleEvent};

/// One EventBridge entry from a user's feed file.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct FeedEntry {
    #[serde(alias = "Source")]
    source: String,
    #[serde(rename = "detail-type", alias = "DetailType", alias = "detail_type")]
    detail_type: String,
    #[serde(alias = "Detail")]
    detail: serde_json::Value,
    #[serde(default, alias = "EventBusName", alias = "event_bus_name")]
    event_bus_name: Option<String>,
}

/// `cargo xtask send --stack S FILE` (or `--outputs`): a feed file onto a deployed stack's bus.
pub async fn send_to(
    root: &Path,
    source: &crate::aws::deployed::Source,
    file: &Path,
) -> Result<()> {
    let (outputs, _) = crate::aws::deployed::load(root, source).await?;
    send(root, source, &outputs, file).await
}

/// How the stack routes its events: from its config, found as `dlq` finds it. Outputs without a
/// stream need none.
fn route_of(
    root: &Path,
    source: &crate::aws::deployed::Source,
    outputs: &Outputs,
) -> Result<Option<scenario::Route>> {
    if outputs.kinesis_stream_name.is_none() {
        return Ok(None);
    }
    let model = crate::dlq::stack_model(root, source, outputs, None)
        .context("the outputs name a stream: its stack config says which events it carries")?;
    Ok(scenario::Route::for_stack(&model, outputs))
}

/// Reads a JSON Lines feed: good entries, and one message per bad line with its number.
pub fn read_feed(text: &str) -> (Vec<SampleEvent>, Vec<String>) {
    let mut events = Vec::new();
    let mut errors = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line_no = index + 1;
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<FeedEntry>(line) {
            Ok(entry) => {
                let detail = match entry.detail {
                    serde_json::Value::String(text) => text,
                    serde_json::Value::Object(map) => serde_json::Value::Object(map).to_string(),
                    other => {
                        errors.push(format!(
                            "line {line_no}: detail must be a JSON object or a JSON string, found {other}"
                        ));
                        continue;
                    }
                };
                let _ = entry.event_bus_name;
                events.push(SampleEvent {
                    source: entry.source,
                    detail_type: entry.detail_type,
                    detail,
                    expect: Expect::Stored,
                    group: None,
                });
            }
            Err(err) => errors.push(format!("line {line_no}: {err}")),
        }
    }
    (events, errors)
}

/// Publishes a feed file to the stack's bus (`cargo xtask send`, `cargo xtask local send`):
/// every good line, in batches, with failed entries retried; bad lines are named and fail the
/// command after the rest went out.
pub async fn send(
    root: &Path,
    source: &crate::aws::deployed::Source,
    outputs: &Outputs,
    file: &Path,
) -> Result<()> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let (events, errors) = read_feed(&text);
    for error in &errors {
        eprintln!("{}: {error}", file.display());
    }
    let route = route_of(root, source, outputs)?;
    let clients = Clients::for_stack(outputs).await;
    let total = events.len();
    let published = scenario::publish_routed(
        &clients,
        &outputs.event_bus_name,
        route.as_ref(),
        &events,
        None,
        move |n| {
            print!("\r  published {n}/{total}");
            let _ = std::io::stdout().flush();
        },
    )
    .await?;
    println!();
    let streamed = route
        .as_ref()
        .map_or(0, |route| events.iter().filter(|e| route.takes(e)).count());
    let paths = match &route {
        Some(route) if streamed > 0 => format!(
            "{} to bus {} and {streamed} to stream {} ({})",
            published.len() - streamed,
            outputs.event_bus_name,
            route.stream,
            route
                .classes
                .iter()
                .map(|c| c.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        _ => format!("to bus {}", outputs.event_bus_name),
    };
    println!(
        "published {} events {paths}; {} lines skipped",
        published.len(),
        errors.len()
    );
    if !errors.is_empty() {
        bail!("{} malformed lines in {}", errors.len(), file.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_malformed_feed_line_is_named_and_the_rest_goes() {
        let text = [
            r#"{"source":"market.data","detail-type":"Trade Execution","detail":{"symbol":"AAPL"}}"#,
            r#"{"source":"market.data","detail-type":"Trade Execution""#,
            "",
            r#"{"Source":"market.data","DetailType":"Market Quote","Detail":"{\"bid\":1}"}"#,
            r#"{"source":"market.data","detail-type":"Market Quote","detail":[1]}"#,
            r#"{"source":"market.data","detail":{}}"#,
        ]
        .join("\n");
        let (events, errors) = read_feed(&text);
        assert_eq!(events.len(), 2);
        assert_eq!(events[1].detail, r#"{"bid":1}"#);
        assert_eq!(errors.len(), 3, "{errors:?}");
        assert!(errors[0].starts_with("line 2: "), "{}", errors[0]);
        assert!(
            errors[1].starts_with("line 5: detail must be"),
            "{}",
            errors[1]
        );
        assert!(
            errors[2].contains("line 6") && errors[2].contains("detail-type"),
            "{}",
            errors[2]
        );
    }
}
