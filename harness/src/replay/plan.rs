//! What a replay may cover, decided before it starts: every refusal names the reason and the
//! way out.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use aws_sdk_sqs::types::QueueAttributeName;
use chrono::{DateTime, Utc};
use infra::model::{Model, RuleSpec};
use infra::outputs::Outputs;

use crate::aws::sdk_error;

/// Whether the local stand-in gives replayed events new envelope ids (as moto does) or keeps
/// them. EventBridge does not document which it does; the processor is built for both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Ids {
    #[default]
    New,
    Keep,
}

/// What the command line asks for.
#[derive(Debug, Clone)]
pub struct Request {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// Short rule names (`trade`, `quote`); empty: every processor rule.
    pub rules: Vec<String>,
    pub settle: Duration,
    /// Replay a range whose events may still be in the retry windows.
    pub inside_retry_windows: bool,
    /// Replay although the DLQ holds letters.
    pub with_dlq_letters: bool,
    /// Local stand-in only.
    pub ids: Ids,
}

/// A checked replay: name, source, destination and range.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// 1-64 of A-Z a-z 0-9 . - _, unique per run; the processor records it on what it writes.
    pub name: String,
    pub archive_arn: String,
    pub bus_arn: String,
    pub rule_names: Vec<String>,
    pub rule_arns: Vec<String>,
    /// The model's rules the plan delivers to, for the local stand-in.
    pub rules: Vec<RuleSpec>,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub ids: Ids,
    with_dlq_letters: bool,
}

/// The short name of a processor rule: its key without `Events` (`tradeEvents` is `trade`).
pub fn short_name(rule: &RuleSpec) -> &str {
    rule.key.strip_suffix("Events").unwrap_or(rule.key)
}

impl Plan {
    pub fn new(
        model: &Model,
        outputs: &Outputs,
        request: &Request,
        now: DateTime<Utc>,
    ) -> Result<Plan> {
        let (from, to) = (request.from, request.to);
        if from >= to {
            bail!("--from {from} must be before --to {to}");
        }
        if to > now {
            bail!("--to {to} is in the future; a replay covers events already archived");
        }
        let ttl_days: i64 = model
            .function
            .env
            .get(names::ENV_TTL_DAYS)
            .and_then(|v| v.parse().ok())
            .unwrap_or(i64::from(names::Settings::DEFAULT_TTL_DAYS));
        // The processor's own limit for replayed events (their records' TTL less a day).
        let oldest = now - chrono::Duration::days(ttl_days - 1);
        if from < oldest {
            bail!(
                "--from {from} is older than the processor accepts a replayed event: \
                 dynamodb.ttl_days is {ttl_days}, so events before {oldest} would be stored \
                 already expiring; start the range at {oldest} or later"
            );
        }
        let retry_seconds = model
            .rules
            .iter()
            .map(|r| r.target_max_event_age_seconds)
            .max()
            .unwrap_or(0)
            + model.async_invoke.max_event_age_seconds;
        let settled = now - chrono::Duration::seconds(i64::from(retry_seconds));
        if to > settled && !request.inside_retry_windows {
            bail!(
                "--to {to} is inside the retry windows: events up to {settled} may still be \
                 retried by EventBridge and Lambda ({retry_seconds} s together), and a copy \
                 replayed under a new id before its original lands would be stored twice; end \
                 the range at {settled} or earlier, or pass --inside-retry-windows once you have \
                 checked that nothing of the range is failing (the FAILED entries of the audit \
                 trail, the Errors alarm)"
            );
        }
        let mut rules = Vec::new();
        for rule in &model.rules {
            if request.rules.is_empty() || request.rules.iter().any(|r| r == short_name(rule)) {
                rules.push(rule.clone());
            }
        }
        for wanted in &request.rules {
            if !model.rules.iter().any(|r| short_name(r) == wanted) {
                let known: Vec<&str> = model.rules.iter().map(short_name).collect();
                bail!(
                    "--rules names {wanted:?}, which is not a processor rule; the stack has {}",
                    known.join(", ")
                );
            }
        }
        let rule_arns = rules
            .iter()
            .map(|rule| match short_name(rule) {
                "trade" => Ok(outputs.trade_events_rule_arn.clone()),
                "quote" => Ok(outputs.quote_events_rule_arn.clone()),
                other => bail!("the outputs name no ARN for rule {other}"),
            })
            .collect::<Result<Vec<_>>>()?;
        let suffix = uuid::Uuid::new_v4().simple().to_string();
        let name = format!(
            "{}-{}-{}",
            model.suffix,
            from.format("%Y%m%dT%H%M"),
            &suffix[..8]
        );
        Ok(Plan {
            name,
            archive_arn: outputs.archive_arn.clone(),
            bus_arn: outputs.event_bus_arn.clone(),
            rule_names: rules.iter().map(|r| short_name(r).to_string()).collect(),
            rule_arns,
            rules,
            from,
            to,
            ids: request.ids,
            with_dlq_letters: request.with_dlq_letters,
        })
    }

    /// Refuses while the DLQ holds letters: a letter's event redriven after a replay stored it
    /// under a new id would be stored again under its own.
    pub async fn check_dlq(&self, sqs: &aws_sdk_sqs::Client, outputs: &Outputs) -> Result<()> {
        if self.with_dlq_letters {
            return Ok(());
        }
        let attributes = sqs
            .get_queue_attributes()
            .queue_url(&outputs.dlq_url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .map_err(|e| sdk_error("GetQueueAttributes", e))
            .context("counting the DLQ's letters")?;
        let count: u64 = attributes
            .attributes()
            .map(|a| a.values().filter_map(|v| v.parse::<u64>().ok()).sum())
            .unwrap_or(0);
        if count > 0 {
            bail!(
                "the DLQ holds {count} letters: redrive them first (`cargo xtask dlq --redrive`), \
                 so that no event is both redriven and replayed, or pass --with-dlq-letters if \
                 none of them is from the range"
            );
        }
        Ok(())
    }

    pub fn describe(&self) -> String {
        format!(
            "replay {}: {} to {} from {} to rules {}",
            self.name,
            self.from.to_rfc3339(),
            self.to.to_rfc3339(),
            self.archive_arn,
            self.rule_names.join(", ")
        )
    }

    /// A progress line: how far `last` (the event time replayed up to) is through the range.
    pub fn progress(&self, last: Option<DateTime<Utc>>) -> String {
        let total = (self.to - self.from).num_seconds().max(1);
        let done = last
            .map(|t| (t.min(self.to) - self.from).num_seconds().clamp(0, total))
            .unwrap_or(0);
        let width = 30;
        let filled = usize::try_from(done * width / total).unwrap_or(0);
        format!(
            "  [{}{}] {:>3}%  replayed up to {}",
            "#".repeat(filled),
            " ".repeat(usize::try_from(width).unwrap_or(30) - filled.min(30)),
            done * 100 / total,
            last.map_or("-".to_string(), |t| t.to_rfc3339())
        )
    }
}
