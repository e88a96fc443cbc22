//! `cargo xtask replay`: events of a time range replayed from the stack's archive to the
//! processor's rules, with the progress of the replay and, at the end, what was stored new
//! against what was already there.
//!
//! - [`plan`]: what a replay may cover, checked before anything starts;
//! - [`archive`]: the local stand-in for EventBridge's archive and StartReplay (moto replays
//!   every archived event to every rule, under new ids, and reports no progress);
//! - this module: the run against AWS (StartReplay, DescribeReplay) and the tally from the
//!   audit trail, which both share.
//!
//! docs/recovery.md ("Replaying from the archive") is the operator's side of this.

pub mod archive;
pub mod plan;

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_eventbridge::types::{ReplayDestination, ReplayState};
use chrono::{DateTime, Utc};
use infra::model::Model;
use infra::outputs::Outputs;

use crate::aws::deployed::Source;
use crate::aws::sdk_error;
use crate::query::{Filter, IndexQuery, Order};
use crate::scenario::Clients;
pub use plan::{Plan, Request};

/// A point of event time, as the command line gives the range.
pub type Time = DateTime<Utc>;

/// `--from` and `--to`: RFC 3339, any offset.
pub fn parse_time(text: &str) -> std::result::Result<Time, String> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| {
            format!("{text:?} is not an RFC 3339 date-time such as 2026-12-02T14:00:00Z: {e}")
        })
}

/// How often DescribeReplay is asked, and the audit trail counted, while a replay runs.
const POLL: Duration = Duration::from_secs(2);
/// After the replay is complete, how long the tally may stay unchanged before it counts as
/// final: the processor's asynchronous invocations may still be queued or retrying.
pub const DEFAULT_SETTLE_SECONDS: u64 = 60;

/// What became of the replayed events, from the audit entries that name the replay.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Tally {
    /// Stored by this replay: the archive held them and the tables did not.
    pub stored_new: u64,
    /// Already stored: the original, a redriven copy, or an earlier replay.
    pub already_there: u64,
    pub rejected: u64,
    /// Failed for now: Lambda retries them, and sends them to the DLQ when retries are spent.
    pub failed: u64,
    /// The reasons of the rejections, most frequent first, with their counts.
    pub rejections: Vec<(String, u64)>,
}

impl Tally {
    pub fn accounted(&self) -> u64 {
        self.stored_new + self.already_there + self.rejected
    }
}

/// `cargo xtask replay`: against AWS for a deployed stack, against the emulator for a local
/// stack's outputs.
pub async fn run(root: &Path, source: &Source, request: &Request) -> Result<()> {
    let (outputs, _) = crate::aws::deployed::load(root, source).await?;
    let stack = match source {
        Source::Stack(stack) => Some(stack.as_str()),
        Source::File(_) => None,
    };
    let model = crate::query::stack_model(root, stack, &outputs)?;
    let clients = Clients::for_stack(&outputs).await;
    let plan = Plan::new(&model, &outputs, request, Utc::now())?;
    let (replayed, tally) =
        execute(root, &clients, &model, &outputs, &plan, request.settle).await?;
    print_tally(&plan, replayed, &tally);
    if tally.failed > 0 {
        bail!(
            "{} replayed events failed for now; Lambda retries them and sends them to the DLQ \
             if they keep failing: see `cargo xtask dlq`",
            tally.failed
        );
    }
    Ok(())
}

/// Runs `plan` once its DLQ check passes: through the local stand-in for an emulated stack
/// (which knows how many events it delivered), StartReplay otherwise; then counts the outcome
/// until it is complete or has not changed for `settle`.
pub async fn execute(
    root: &Path,
    clients: &Clients,
    model: &Model,
    outputs: &Outputs,
    plan: &Plan,
    settle_for: Duration,
) -> Result<(Option<u64>, Tally)> {
    plan.check_dlq(&clients.sqs, outputs).await?;
    println!("{}", plan.describe());
    let started = Utc::now();
    let replayed = if outputs.endpoint_url.is_some() {
        Some(archive::replay(root, clients, model, outputs, plan).await?)
    } else {
        start_and_follow(&clients.events, plan).await?;
        None
    };
    let tally = settle(
        &clients.dynamodb,
        model,
        outputs,
        plan,
        started,
        replayed,
        settle_for,
    )
    .await?;
    Ok((replayed, tally))
}

/// StartReplay for the plan, then DescribeReplay until it ends, printing how far through the
/// range it has got (EventLastReplayedTime: EventBridge replays minute by minute of event time).
async fn start_and_follow(events: &aws_sdk_eventbridge::Client, plan: &Plan) -> Result<()> {
    let destination = ReplayDestination::builder()
        .arn(&plan.bus_arn)
        .set_filter_arns(Some(plan.rule_arns.clone()))
        .build()
        .context("building the replay destination")?;
    events
        .start_replay()
        .replay_name(&plan.name)
        .event_source_arn(&plan.archive_arn)
        .event_start_time(smithy_time(plan.from))
        .event_end_time(smithy_time(plan.to))
        .destination(destination)
        .description(format!(
            "cargo xtask replay, rules {}",
            plan.rule_names.join(", ")
        ))
        .send()
        .await
        .map_err(|e| sdk_error("StartReplay", e))
        .with_context(|| format!("starting replay {} from {}", plan.name, plan.archive_arn))?;
    loop {
        let described = events
            .describe_replay()
            .replay_name(&plan.name)
            .send()
            .await
            .map_err(|e| sdk_error("DescribeReplay", e))?;
        let last = described
            .event_last_replayed_time()
            .and_then(|t| DateTime::<Utc>::from_timestamp(t.secs(), t.subsec_nanos()));
        match described.state() {
            Some(ReplayState::Completed) => {
                println!("{}", plan.progress(Some(plan.to)));
                return Ok(());
            }
            Some(state @ (ReplayState::Failed | ReplayState::Cancelled)) => bail!(
                "replay {} ended {}: {}",
                plan.name,
                state.as_str(),
                described.state_reason().unwrap_or("no reason given")
            ),
            _ => println!("{}", plan.progress(last)),
        }
        tokio::time::sleep(POLL).await;
    }
}

fn smithy_time(t: DateTime<Utc>) -> aws_smithy_types::DateTime {
    aws_smithy_types::DateTime::from_millis(t.timestamp_millis())
}

/// Counts the audit entries of the replay until the count is complete (locally, where the
/// number replayed is known) or has not changed for `settle`.
async fn settle(
    dynamodb: &aws_sdk_dynamodb::Client,
    model: &Model,
    outputs: &Outputs,
    plan: &Plan,
    since: DateTime<Utc>,
    replayed: Option<u64>,
    settle: Duration,
) -> Result<Tally> {
    let mut last = tally(dynamodb, model, outputs, plan, since).await?;
    let mut unchanged_since = Instant::now();
    loop {
        let complete = replayed.is_some_and(|n| last.accounted() >= n);
        if complete || unchanged_since.elapsed() >= settle {
            return Ok(last);
        }
        tokio::time::sleep(POLL).await;
        let now = tally(dynamodb, model, outputs, plan, since).await?;
        if now != last {
            unchanged_since = Instant::now();
            last = now;
        }
    }
}

/// The audit entries written since `since` for events this replay delivered: PROCESSED and
/// DUPLICATE (and FAILED) entries carry `replayed_by`; a REJECTED entry keeps the event as
/// received, `replay-name` included.
pub async fn tally(
    dynamodb: &aws_sdk_dynamodb::Client,
    model: &Model,
    outputs: &Outputs,
    plan: &Plan,
    since: DateTime<Utc>,
) -> Result<Tally> {
    let marker = format!("\"{}\":\"{}\"", names::REPLAY_NAME, plan.name);
    let filter = Filter {
        expression: "#rb = :rb OR contains(#raw, :marker)".to_string(),
        names: vec![
            ("#rb".into(), names::REPLAYED_BY.into()),
            ("#raw".into(), names::RAW_EVENT.into()),
        ],
        values: vec![
            (":rb".into(), AttributeValue::S(plan.name.clone())),
            (":marker".into(), AttributeValue::S(marker)),
        ],
    };
    let since = processor::event::format_timestamp(since - chrono::Duration::seconds(5));
    let mut tally = Tally::default();
    let mut reasons = std::collections::BTreeMap::<String, u64>::new();
    for event_type in ["trade", "quote", processor::item::UNKNOWN_EVENT_TYPE] {
        let entries = IndexQuery::new(
            &outputs.audit_trail_table_name,
            &names::EVENT_TYPE_INDEX_SCHEMA,
            event_type,
            model.table_settings.index_buckets,
        )
        .since(since.clone())
        .filter(filter.clone())
        .order(Order::OldestFirst)
        .run(dynamodb)
        .await
        .context("counting the replay's audit entries")?;
        for entry in entries {
            let text = |key: &str| match entry.get(key) {
                Some(AttributeValue::S(v)) => v.as_str(),
                _ => "",
            };
            match text(names::STATUS) {
                "PROCESSED" => tally.stored_new += 1,
                "DUPLICATE" => tally.already_there += 1,
                "REJECTED" => {
                    tally.rejected += 1;
                    *reasons.entry(text(names::REASON).to_string()).or_default() += 1;
                }
                "FAILED" => tally.failed += 1,
                _ => {}
            }
        }
    }
    let mut rejections: Vec<(String, u64)> = reasons.into_iter().collect();
    rejections.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    tally.rejections = rejections;
    Ok(tally)
}

pub fn print_tally(plan: &Plan, replayed: Option<u64>, tally: &Tally) {
    println!("replay {} done:", plan.name);
    if let Some(replayed) = replayed {
        println!("  replayed            {replayed}");
    }
    println!("  stored new          {}", tally.stored_new);
    println!("  already there       {}", tally.already_there);
    println!("  rejected            {}", tally.rejected);
    for (reason, count) in tally.rejections.iter().take(5) {
        println!("    {count:>6}  {reason}");
    }
    if tally.failed > 0 {
        println!("  failed for now      {}", tally.failed);
    }
    if let Some(replayed) = replayed {
        let seen = tally.accounted() + tally.failed;
        if seen < replayed {
            println!("  no outcome seen     {}", replayed - seen);
        }
    }
}
