//! `dlq --redrive`: publish the dead-lettered events to the bus again, once the cause is fixed.
//!
//! Per letter: decide, publish, then delete. Deciding uses the stack (see [`super::policy`]): a
//! letter whose copy would reach no rule, or be rejected as too old, stays. Each copy carries one
//! `resources` entry [`names::REDRIVE_OF_PREFIX`] + the original envelope id and keeps the
//! original time, source, detail-type and detail text; the processor stores and deduplicates it
//! under the original id. A redrive repeated after a crash between PutEvents and DeleteMessage
//! therefore meets the same record key and ends as a duplicate, with nothing to remember
//! between runs.
//!
//! One run handles the letters that were in the queue when it started. A letter sent during the
//! run (a copy that failed again, or any new failure) is hidden until the run ends and then
//! released for the next one, so a failure that lasts cannot keep a run going. After publishing,
//! the run watches each copy for a bounded time: stored, failed again, or no outcome seen.
//!
//! A stream letter names a batch, not an event: its records are read back from the stream
//! ([`super::stream`]) and each is one part of the letter, decided like a letter of its own
//! (a record already stored, such as one of another partition key that shared the batch, is
//! done). The letter is deleted once every part is published or done; a part kept keeps the
//! whole letter, and the next run reads the batch again. A record whose data holds no event is
//! put back on the stream as it was: the processor rejects and audits it there.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_eventbridge::primitives::{DateTime as SmithyTime, DateTimeFormat};
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use chrono::{DateTime, Utc};

use super::letter::{Event, Letter, decode_message};
use super::policy::{self, Policy, Refusal};
use super::{EMPTY_RECEIVES, receive};
use crate::aws::sdk_error;
use crate::query::{Filter, IndexQuery};
use crate::scenario::Clients;
use infra::outputs::Outputs;

/// How long a run waits for the outcome of its copies unless told otherwise.
pub const DEFAULT_SETTLE_SECONDS: u64 = 30;
/// Time between two looks at the copies' outcomes.
const POLL: Duration = Duration::from_secs(1);
/// The audit trail is read by index, a query over everything audited since the run started;
/// the market-data lookups are cheap key reads and run every poll.
const AUDIT_POLL: Duration = Duration::from_secs(5);
/// Letters stay hidden for the run; past this margin over the settle time a letter whose run
/// died comes back by itself.
const HOLD_MARGIN_SECONDS: u64 = 300;

#[derive(Debug, Clone)]
pub struct Options {
    /// How long to wait after publishing for each copy's outcome.
    pub settle: Duration,
    /// End the run right after PutEvents, before any letter is deleted, with every letter made
    /// visible again: what a crash between the two calls leaves once the visibility timeout
    /// has passed. For tests of what the next run does with it.
    pub stop_after_publish: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            settle: Duration::from_secs(DEFAULT_SETTLE_SECONDS),
            stop_after_publish: false,
        }
    }
}

/// Why a letter stays in the queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hold {
    /// No rule of the stack matches its event.
    NoRule,
    /// Its event is past the processor's age limit.
    TooOld,
    /// No event can be read from it, or none a copy could name.
    Undecodable,
    /// The bus did not accept its event.
    Refused,
    /// A stream letter whose batch cannot be read back: the stream no longer holds it (past
    /// its retention), or reading failed.
    Unreadable,
    /// Its event was published, but deleting the letter failed; the next run finds the event
    /// stored and deletes it then.
    NotDeleted,
}

impl Hold {
    fn label(&self) -> &'static str {
        match self {
            Hold::NoRule => "kept: no rule matches",
            Hold::TooOld => "kept: too old",
            Hold::Undecodable => "kept: undecodable",
            Hold::Refused => "kept: bus refused",
            Hold::Unreadable => "kept: batch unreadable",
            Hold::NotDeleted => "kept: not deleted",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Kept {
    pub message_id: String,
    pub event_id: Option<String>,
    pub hold: Hold,
    pub why: String,
}

/// What became of a published copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Its record and PROCESSED entry are in the tables under the original's key (or, for a
    /// trade another copy had claimed, the audit trail says where).
    Stored,
    /// A new letter carrying its marker arrived, with this error; it waits for the next run.
    FailedAgain(String),
    /// The audit trail has it as DUPLICATE, with this reason.
    Duplicate(String),
    /// The audit trail has it as REJECTED, with this reason.
    Rejected(String),
    /// Nothing seen within the settle time.
    Unseen,
}

/// One event published again.
#[derive(Debug, Clone)]
pub struct Republished {
    /// The original envelope id: the id it is stored under.
    pub record_id: String,
    /// The id PutEvents gave the copy.
    pub delivered_as: String,
    /// Letters of the event the copy stands for.
    pub letters: usize,
    pub outcome: Outcome,
    event: Event,
}

/// What a redrive did.
#[derive(Debug, Clone)]
pub struct Redriven {
    pub dlq_url: String,
    pub bus: String,
    pub audit_table: String,
    pub started: DateTime<Utc>,
    pub settle: Duration,
    /// Letters that were in the queue when the run started, and that it read; a stream letter
    /// counts once per record of its batch.
    pub read: usize,
    /// Records of stream letters that hold no event, put back on the stream.
    pub restreamed: usize,
    pub copies: Vec<Republished>,
    /// Letters deleted: those whose event was published, and those stored already.
    pub deleted: usize,
    /// Letters deleted without publishing: their event's record and PROCESSED entry exist.
    pub already_stored: usize,
    pub kept: Vec<Kept>,
    /// Letters of copies that failed again.
    pub failed_letters: usize,
    /// Other letters that arrived during the run (or were hidden when it read the queue): left
    /// for the next run.
    pub later: usize,
}

impl Redriven {
    fn count(&self, matches: impl Fn(&Outcome) -> bool) -> usize {
        self.copies.iter().filter(|c| matches(&c.outcome)).count()
    }

    fn kept_for(&self, hold: &Hold) -> usize {
        self.kept.iter().filter(|k| &k.hold == hold).count()
    }

    /// Copies that failed again.
    pub fn failed_again(&self) -> usize {
        self.count(|o| matches!(o, Outcome::FailedAgain(_)))
    }

    pub fn stored(&self) -> usize {
        self.count(|o| *o == Outcome::Stored)
    }

    /// Letters in the queue after the run, as far as this run knows.
    pub fn remaining(&self) -> usize {
        self.kept.len() + self.failed_letters + self.later
    }

    /// The summary table, then one line per letter or copy that needs a look.
    pub fn report(&self) -> String {
        let mut rows = vec![
            ("letters read", self.read),
            ("published", self.copies.len()),
            ("  stored", self.stored()),
            (
                "  duplicate",
                self.count(|o| matches!(o, Outcome::Duplicate(_))),
            ),
            (
                "  rejected",
                self.count(|o| matches!(o, Outcome::Rejected(_))),
            ),
            ("  failed again", self.failed_again()),
            ("  no outcome seen", self.count(|o| *o == Outcome::Unseen)),
            ("put back on the stream", self.restreamed),
            ("deleted", self.deleted),
            ("  already stored", self.already_stored),
        ];
        for hold in [
            Hold::NoRule,
            Hold::TooOld,
            Hold::Undecodable,
            Hold::Refused,
            Hold::Unreadable,
            Hold::NotDeleted,
        ] {
            rows.push((hold.label(), self.kept_for(&hold)));
        }
        rows.push(("arrived during the run", self.later));
        rows.push(("left in the queue", self.remaining()));
        let mut text = format!(
            "redrive of {} to {} (started {})\n",
            self.dlq_url,
            self.bus,
            self.started
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        );
        for (label, value) in rows {
            text.push_str(&format!("  {label:<26} {value:>6}\n"));
        }
        for kept in &self.kept {
            text.push_str(&format!(
                "  {} {} (event {}): {}\n",
                kept.hold.label(),
                kept.message_id,
                kept.event_id.as_deref().unwrap_or("?"),
                kept.why
            ));
        }
        for copy in &self.copies {
            let line = match &copy.outcome {
                Outcome::Stored => continue,
                Outcome::FailedAgain(error) => format!("failed again: {error}"),
                Outcome::Duplicate(reason) => format!("duplicate: {reason}"),
                Outcome::Rejected(reason) => format!("rejected: {reason}"),
                Outcome::Unseen => format!(
                    "no outcome seen within {} s: look in the audit trail {} for event_id {} \
                     or {} (DUPLICATE or REJECTED, with the reason); a letter that fails later \
                     waits for the next run",
                    self.settle.as_secs(),
                    self.audit_table,
                    copy.record_id,
                    copy.delivered_as
                ),
            };
            text.push_str(&format!(
                "  event {} (copy {}): {line}\n",
                copy.record_id, copy.delivered_as
            ));
        }
        if self.later > 0 {
            text.push_str(&format!(
                "  {} letters arrived during the run and wait for the next\n",
                self.later
            ));
        }
        text
    }
}

/// A letter this run holds hidden, by message id: its latest receipt handle.
type Held = HashMap<String, String>;

/// A stream letter's parts not yet published or done, and whether one of them was kept.
#[derive(Debug, Default)]
struct Parts {
    open: usize,
    kept: bool,
}

struct Run<'a> {
    clients: &'a Clients,
    outputs: &'a Outputs,
    policy: &'a Policy,
    options: &'a Options,
    hold_seconds: i32,
    held: Held,
    /// Stream letters by message id.
    parts: HashMap<String, Parts>,
    /// Every message id this run has received, held or deleted.
    seen: HashSet<String>,
    /// Record id -> index in `report.copies`.
    published: HashMap<String, usize>,
    report: Redriven,
}

/// Redrives the DLQ of the stack `outputs` describes; see the module documentation.
pub async fn redrive(
    clients: &Clients,
    outputs: &Outputs,
    policy: &Policy,
    options: &Options,
) -> Result<Redriven> {
    let hold = options.settle.as_secs() + HOLD_MARGIN_SECONDS;
    let mut run = Run {
        clients,
        outputs,
        policy,
        options,
        hold_seconds: i32::try_from(hold.min(43_200)).unwrap_or(43_200),
        held: Held::new(),
        parts: HashMap::new(),
        seen: HashSet::new(),
        published: HashMap::new(),
        report: Redriven {
            dlq_url: outputs.dlq_url.clone(),
            bus: outputs.event_bus_name.clone(),
            audit_table: outputs.audit_trail_table_name.clone(),
            started: Utc::now(),
            settle: options.settle,
            read: 0,
            restreamed: 0,
            copies: Vec::new(),
            deleted: 0,
            already_stored: 0,
            kept: Vec::new(),
            failed_letters: 0,
            later: 0,
        },
    };
    let result = run.work().await;
    // Whatever happened, nothing this run hid stays hidden past it.
    run.release().await;
    result.map(|()| run.report)
}

impl Run<'_> {
    async fn work(&mut self) -> Result<()> {
        let mut quiet = 0;
        while quiet < EMPTY_RECEIVES {
            let fresh = self.take().await?;
            if fresh.is_empty() {
                quiet += 1;
                continue;
            }
            quiet = 0;
            self.handle(fresh).await?;
        }
        if !self.options.stop_after_publish && !self.report.copies.is_empty() {
            self.settle().await?;
        }
        Ok(())
    }

    /// One receive: the letters this run has not seen before; those sent since it started are
    /// set aside (hidden until the end) rather than returned.
    async fn take(&mut self) -> Result<Vec<Letter>> {
        let messages = receive(&self.clients.sqs, &self.outputs.dlq_url, self.hold_seconds).await?;
        let mut fresh = Vec::new();
        for message in &messages {
            let letter = decode_message(message);
            let Some(handle) = letter.receipt_handle.clone() else {
                continue;
            };
            if !self.seen.insert(letter.message_id.clone()) {
                // Back after its visibility ran out: still held, under its new handle.
                if let Some(old) = self.held.get_mut(&letter.message_id) {
                    *old = handle;
                }
                continue;
            }
            self.held.insert(letter.message_id.clone(), handle);
            // By its own id too: SQS stamps SentTimestamp by its clock, and a copy's letter
            // taken for an old one would be deleted as a second letter of a published event.
            if letter.sent_at.is_some_and(|t| t >= self.report.started) || self.is_copy(&letter) {
                self.arrived(&letter);
                continue;
            }
            fresh.push(letter);
        }
        Ok(fresh)
    }

    /// Whether the letter holds a copy this run published.
    fn is_copy(&self, letter: &Letter) -> bool {
        let Ok(event) = &letter.event else {
            return false;
        };
        letter
            .record_id()
            .and_then(|id| self.published.get(id))
            .is_some_and(|&index| {
                event.id.as_ref() == Some(&self.report.copies[index].delivered_as)
            })
    }

    /// A letter sent during the run: a copy of this run that failed again, or news for the next
    /// run. Either way it stays hidden until the end.
    fn arrived(&mut self, letter: &Letter) {
        let copy = letter
            .record_id()
            .and_then(|id| self.published.get(id))
            .map(|&index| &mut self.report.copies[index]);
        match copy {
            Some(copy) if matches!(copy.outcome, Outcome::Unseen | Outcome::FailedAgain(_)) => {
                copy.outcome = Outcome::FailedAgain(letter.error.clone());
                self.report.failed_letters += 1;
            }
            // A copy stored already and failed on a second delivery: the next run finds it
            // stored and deletes the letter.
            _ => self.report.later += 1,
        }
    }

    fn keep(&mut self, letter: &Letter, hold: Hold, why: String) {
        if let Some(parts) = self.parts.get_mut(&letter.message_id) {
            parts.kept = true;
        }
        self.report.kept.push(Kept {
            message_id: letter.message_id.clone(),
            event_id: letter.record_id().map(String::from),
            hold,
            why,
        });
    }

    /// Each stream letter replaced by its parts, one per record of its batch; other letters as
    /// they are.
    async fn expand(&mut self, letters: Vec<Letter>) -> Vec<Letter> {
        let mut out = Vec::with_capacity(letters.len());
        for letter in letters {
            let Some(batch) = letter.batch.clone() else {
                out.push(letter);
                continue;
            };
            let records = match super::stream::read(&self.clients.kinesis, &batch).await {
                Ok(records) if !records.is_empty() => records,
                Ok(_) => {
                    self.report.read += 1;
                    let why = format!(
                        "no record of {} {}..{} could be read",
                        batch.shard_id, batch.start_sequence_number, batch.end_sequence_number
                    );
                    self.keep(&letter, Hold::Unreadable, why);
                    continue;
                }
                Err(unreadable) => {
                    self.report.read += 1;
                    let why = match unreadable {
                        super::stream::Unreadable::Gone(why) => why,
                        super::stream::Unreadable::Failed(err) => format!("{err:#}"),
                    };
                    self.keep(&letter, Hold::Unreadable, why);
                    continue;
                }
            };
            let (events, raw): (Vec<_>, Vec<_>) =
                records.into_iter().partition(|r| r.event.is_ok());
            let parts = self.parts.entry(letter.message_id.clone()).or_default();
            parts.open += events.len() + usize::from(!raw.is_empty());
            for record in events {
                out.push(Letter {
                    event: record.event,
                    batch: None,
                    ..letter.clone()
                });
            }
            if raw.is_empty() {
                continue;
            }
            self.report.read += raw.len();
            let entries: Vec<crate::stream::Entry> = raw
                .into_iter()
                .map(|r| crate::stream::Entry {
                    partition_key: r.partition_key,
                    data: r.data,
                })
                .collect();
            let stream = super::stream::stream_name(&batch.stream_arn);
            match crate::stream::put_records(&self.clients.kinesis, stream, &entries).await {
                Ok(_) => {
                    self.report.restreamed += entries.len();
                    self.delete(&letter).await;
                }
                Err(err) => self.keep(&letter, Hold::Refused, format!("{err:#}")),
            }
        }
        out
    }

    /// Decide, publish, delete, for one batch of letters from before the run.
    async fn handle(&mut self, letters: Vec<Letter>) -> Result<()> {
        let letters = self.expand(letters).await;
        let now = Utc::now();
        // One PutEvents entry per distinct event of the batch; the letters each stands for.
        let mut groups: Vec<(String, Event, Vec<Letter>)> = Vec::new();
        for letter in letters {
            self.report.read += 1;
            let event = match &letter.event {
                Ok(event) => event.clone(),
                Err(why) => {
                    self.keep(&letter, Hold::Undecodable, why.clone());
                    continue;
                }
            };
            let Some(record_id) = event.record_id().map(String::from) else {
                let why = "the event has no id, so a copy could not name it".to_string();
                self.keep(&letter, Hold::Undecodable, why);
                continue;
            };
            if let Err(refusal) = self.policy.decide(&event, now) {
                let (hold, why) = match refusal {
                    Refusal::NoRule(why) => (Hold::NoRule, why),
                    Refusal::TooOld(why) => (Hold::TooOld, why),
                };
                self.keep(&letter, hold, why);
                continue;
            }
            // Another letter of an event already published in this run (the destination and a
            // dead-letter config may both hold it): its copy stands for this one too.
            if let Some(&index) = self.published.get(&record_id) {
                self.report.copies[index].letters += 1;
                self.delete(&letter).await;
                continue;
            }
            // A store failure after the record landed (its audit write failed, say) leaves a
            // stored event in the DLQ. Record and PROCESSED entry there: nothing left to do.
            // Record without its entry: the copy writes the entry.
            if stored(self.clients, self.outputs, &event).await? {
                self.report.already_stored += 1;
                self.delete(&letter).await;
                continue;
            }
            match groups.iter_mut().find(|(id, _, _)| *id == record_id) {
                Some((_, _, group)) => group.push(letter),
                None => groups.push((record_id, event, vec![letter])),
            }
        }
        if groups.is_empty() {
            return Ok(());
        }
        let bus = &self.outputs.event_bus_name;
        let entries: Vec<PutEventsRequestEntry> = groups
            .iter()
            .map(|(id, event, _)| entry(event, id, bus))
            .collect();
        let answer = self
            .clients
            .events
            .put_events()
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| sdk_error("PutEvents", e))
            .with_context(|| format!("PutEvents to bus {bus}"));
        let answers = match answer {
            Ok(output) => output.entries.unwrap_or_default(),
            Err(err) => {
                // Nothing was accepted: every letter stays for the next attempt.
                for (_, _, group) in &groups {
                    for letter in group {
                        self.keep(letter, Hold::Refused, format!("{err:#}"));
                    }
                }
                return Ok(());
            }
        };
        for (n, (record_id, event, group)) in groups.into_iter().enumerate() {
            let answer = answers.get(n);
            let delivered = answer
                .filter(|a| a.error_code().is_none())
                .and_then(|a| a.event_id());
            let Some(delivered) = delivered else {
                let why = format!(
                    "the bus refused it: {} {}",
                    answer.and_then(|a| a.error_code()).unwrap_or("no event id"),
                    answer.and_then(|a| a.error_message()).unwrap_or_default()
                );
                for letter in &group {
                    self.keep(letter, Hold::Refused, why.clone());
                }
                continue;
            };
            self.published
                .insert(record_id.clone(), self.report.copies.len());
            self.report.copies.push(Republished {
                record_id,
                delivered_as: delivered.to_string(),
                letters: group.len(),
                outcome: Outcome::Unseen,
                event,
            });
            if self.options.stop_after_publish {
                continue;
            }
            for letter in &group {
                self.delete(letter).await;
            }
        }
        Ok(())
    }

    /// Deletes a letter whose event is published or stored. A failed delete leaves it held; the
    /// next run meets its event stored.
    async fn delete(&mut self, letter: &Letter) {
        if let Some(parts) = self.parts.get_mut(&letter.message_id) {
            parts.open = parts.open.saturating_sub(1);
            if parts.open > 0 || parts.kept {
                return;
            }
        }
        let Some(handle) = self.held.get(&letter.message_id).cloned() else {
            return;
        };
        let deleted = self
            .clients
            .sqs
            .delete_message()
            .queue_url(&self.outputs.dlq_url)
            .receipt_handle(handle)
            .send()
            .await
            .map_err(|e| sdk_error("DeleteMessage", e));
        match deleted {
            Ok(_) => {
                self.held.remove(&letter.message_id);
                self.report.deleted += 1;
            }
            Err(err) => self.keep(letter, Hold::NotDeleted, format!("{err:#}")),
        }
    }

    /// Watches the copies until each has an outcome or the settle time is over.
    async fn settle(&mut self) -> Result<()> {
        let deadline = Instant::now() + self.options.settle;
        let mut audited: Option<Instant> = None;
        loop {
            // The receive waits up to a second when the queue is empty: it paces the loop.
            // Letters from before the run that were hidden when it read the queue: the next
            // run's. Copies that failed again are noted by `take` itself.
            self.report.later += self.take().await?.len();
            for index in self.pending() {
                let event = self.report.copies[index].event.clone();
                if stored(self.clients, self.outputs, &event).await? {
                    self.report.copies[index].outcome = Outcome::Stored;
                }
            }
            let over = Instant::now() >= deadline;
            if !self.pending().is_empty()
                && (over || audited.is_none_or(|at| at.elapsed() >= AUDIT_POLL))
            {
                self.audit().await?;
                audited = Some(Instant::now());
            }
            if self.pending().is_empty() || over {
                return Ok(());
            }
            tokio::time::sleep(POLL.min(deadline.saturating_duration_since(Instant::now()))).await;
        }
    }

    fn pending(&self) -> Vec<usize> {
        (0..self.report.copies.len())
            .filter(|&i| self.report.copies[i].outcome == Outcome::Unseen)
            .collect()
    }

    /// The audit entries written since the run started for copies without an outcome. A
    /// copy's entries name it in `delivered_as` (DUPLICATE, and PROCESSED under another copy's
    /// key) or, when it was rejected before its marker was read, in `event_id`.
    async fn audit(&mut self) -> Result<()> {
        let by_delivery: HashMap<String, usize> = self
            .pending()
            .into_iter()
            .map(|i| (self.report.copies[i].delivered_as.clone(), i))
            .collect();
        let since = processor::event::format_timestamp(self.report.started);
        let table = &self.outputs.audit_trail_table_name;
        for event_type in ["trade", "quote", processor::item::UNKNOWN_EVENT_TYPE] {
            let items = IndexQuery::new(
                table,
                &names::EVENT_TYPE_INDEX_SCHEMA,
                event_type,
                self.policy.index_buckets,
            )
            .since(since.clone())
            .filter(Filter {
                expression: "attribute_exists(#d) OR #s = :rejected".into(),
                names: vec![
                    ("#d".into(), names::DELIVERED_AS.into()),
                    ("#s".into(), names::STATUS.into()),
                ],
                values: vec![(":rejected".into(), AttributeValue::S("REJECTED".into()))],
            })
            .run(&self.clients.dynamodb)
            .await
            .with_context(|| format!("reading the audit trail {table}"))?;
            for item in items {
                let status = text(&item, names::STATUS).unwrap_or_default();
                let delivery = match status {
                    "REJECTED" => text(&item, names::EVENT_ID),
                    _ => text(&item, names::DELIVERED_AS),
                };
                let Some(&index) = delivery.and_then(|d| by_delivery.get(d)) else {
                    continue;
                };
                let reason = text(&item, names::REASON).unwrap_or_default().to_string();
                let outcome = match status {
                    "PROCESSED" => Outcome::Stored,
                    "DUPLICATE" => Outcome::Duplicate(reason),
                    "REJECTED" => Outcome::Rejected(reason),
                    _ => continue,
                };
                self.report.copies[index].outcome = outcome;
            }
        }
        Ok(())
    }

    /// Makes every letter this run still holds visible again, so the next run (or `dlq`)
    /// sees it at once.
    async fn release(&mut self) {
        let handles: Vec<String> = self.held.drain().map(|(_, h)| h).collect();
        super::release(&self.clients.sqs, &self.outputs.dlq_url, &handles).await;
    }
}

/// The PutEvents entry of a copy: the original's source, detail-type, time and exact detail, and
/// one marker naming the original's id.
fn entry(event: &Event, record_id: &str, bus: &str) -> PutEventsRequestEntry {
    let time = event
        .time
        .as_deref()
        .and_then(|t| SmithyTime::from_str(t, DateTimeFormat::DateTime).ok());
    let mut resources = event.resources.clone();
    resources.push(format!("{}{record_id}", names::REDRIVE_OF_PREFIX));
    PutEventsRequestEntry::builder()
        .event_bus_name(bus)
        .source(&event.source)
        .detail_type(&event.detail_type)
        .detail(&event.detail)
        .set_time(time)
        .set_resources(Some(resources))
        .build()
}

/// Whether the event's record and its PROCESSED entry are in the tables, under the key every
/// copy of it is stored by (its record id and event time). An event the processor would
/// reject has no record.
pub async fn stored(clients: &Clients, outputs: &Outputs, event: &Event) -> Result<bool> {
    let Some(decoded) = policy::as_stored(event) else {
        return Ok(false);
    };
    let table = &outputs.market_data_table_name;
    let record = clients
        .dynamodb
        .get_item()
        .table_name(table)
        .key(
            names::EVENT_ID,
            AttributeValue::S(decoded.record_id.clone()),
        )
        .key(names::TIMESTAMP, AttributeValue::S(decoded.timestamp_key()))
        .consistent_read(true)
        .send()
        .await
        .map_err(|e| sdk_error("GetItem", e))
        .with_context(|| format!("looking up event {} in {table}", decoded.record_id))?;
    let Some(record) = record.item else {
        return Ok(false);
    };
    let Some(received_at) = text(&record, names::RECEIVED_AT) else {
        // Not a record the processor wrote; nothing to find its entry by.
        return Ok(true);
    };
    let audit_id = processor::item::processed_audit_id(
        &decoded.record_id,
        &decoded.timestamp_key(),
        received_at,
    );
    let audit = &outputs.audit_trail_table_name;
    let found = clients
        .dynamodb
        .get_item()
        .table_name(audit)
        .key(names::AUDIT_ID, AttributeValue::S(audit_id))
        .key(names::TIMESTAMP, AttributeValue::S(received_at.to_string()))
        .consistent_read(true)
        .send()
        .await
        .map_err(|e| sdk_error("GetItem", e))
        .with_context(|| {
            format!(
                "looking up the PROCESSED entry of event {} in {audit}",
                decoded.record_id
            )
        })?;
    Ok(found.item.is_some())
}

fn text<'a>(item: &'a HashMap<String, AttributeValue>, key: &str) -> Option<&'a str> {
    match item.get(key) {
        Some(AttributeValue::S(s)) => Some(s),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::local_sdk_config;
    use crate::local::provision;
    use aws_sdk_sqs::types::MessageAttributeValue;
    use infra::model::Model;
    use infra::stack::StackConfig;

    /// The dev stack's resources under a fresh suffix, so parallel tests never share a queue.
    async fn stack() -> (Outputs, Clients, Policy) {
        let mut config = StackConfig::load(&infra::workspace_root(), "dev").expect("dev stack");
        config.environment = format!("dlq{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
        let endpoint = crate::moto::shared().endpoint.clone();
        let sdk = local_sdk_config(&endpoint).await;
        let model = Model::from_stack(&config);
        let outputs = provision::provision(&sdk, &model, &endpoint)
            .await
            .expect("provision");
        let clients = Clients::for_stack(&outputs).await;
        (outputs, clients, Policy::for_stack(&model).expect("policy"))
    }

    /// An hour ago, to the second, as EventBridge writes `time`.
    fn recent() -> String {
        (Utc::now() - chrono::Duration::hours(1)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    }

    fn trade(id: &str, symbol: &str, time: &str) -> String {
        format!(
            r#"{{"version":"0","id":"{id}","detail-type":"Trade Execution","source":"market.data","account":"123456789012","time":"{time}","region":"us-east-1","resources":[],"detail":{{"exchange":"NASDAQ","symbol":"{symbol}","price":150.250000000000000001,"volume":100}}}}"#
        )
    }

    async fn put(clients: &Clients, url: &str, body: &str, attrs: &[(&str, &str)]) {
        let mut request = clients.sqs.send_message().queue_url(url).message_body(body);
        for (name, value) in attrs {
            request = request.message_attributes(
                *name,
                MessageAttributeValue::builder()
                    .data_type("String")
                    .string_value(*value)
                    .build()
                    .expect("attribute"),
            );
        }
        request.send().await.expect("send to DLQ");
    }

    fn destination_record(event: &str) -> String {
        format!(
            r#"{{"requestContext":{{"condition":"RetriesExhausted","approximateInvokeCount":1}},"requestPayload":{event},"responsePayload":{{"errorType":"StoreUnavailable","errorMessage":"throttled"}}}}"#
        )
    }

    /// Everything the rules delivered to the local stack's delivery queue.
    async fn delivered(clients: &Clients, url: &str) -> Vec<serde_json::Value> {
        let mut out = Vec::new();
        for _ in 0..3 {
            for message in receive(&clients.sqs, url, 60).await.expect("receive") {
                out.push(serde_json::from_str(message.body().unwrap_or_default()).expect("json"));
            }
        }
        out
    }

    fn quick() -> Options {
        Options {
            settle: Duration::from_secs(1),
            stop_after_publish: false,
        }
    }

    #[tokio::test]
    async fn each_event_is_published_once_marked_with_its_id_and_what_cannot_be_is_kept() {
        let (outputs, clients, policy) = stack().await;
        let dlq = &outputs.dlq_url;
        let time = recent();
        // The same failed trade from the destination and from the function's DLQ config.
        put(
            &clients,
            dlq,
            &destination_record(&trade("ev-1", "AAPL", &time)),
            &[],
        )
        .await;
        put(
            &clients,
            dlq,
            &trade("ev-1", "AAPL", &time),
            &[("ErrorCode", "200"), ("ErrorMessage", "Unhandled")],
        )
        .await;
        put(
            &clients,
            dlq,
            &trade("ev-2", "MSFT", &time),
            &[("ERROR_CODE", "SDK_CLIENT_ERROR"), ("ERROR_MESSAGE", "x")],
        )
        .await;
        put(&clients, dlq, "not an event", &[]).await;
        assert_eq!(
            super::super::list(&clients.sqs, dlq)
                .await
                .expect("list")
                .len(),
            4
        );

        let done = redrive(&clients, &outputs, &policy, &quick())
            .await
            .expect("redrive");
        assert_eq!(done.read, 4, "{}", done.report());
        assert_eq!(done.copies.len(), 2, "{}", done.report());
        assert_eq!(done.deleted, 3, "{}", done.report());
        assert_eq!(done.kept.len(), 1, "{}", done.report());
        assert_eq!(done.kept[0].hold, Hold::Undecodable);
        // Nothing runs the processor here: no copy has an outcome.
        assert!(done.copies.iter().all(|c| c.outcome == Outcome::Unseen));
        assert!(
            done.report().contains("no outcome seen within 1 s"),
            "{}",
            done.report()
        );

        let left = super::super::list(&clients.sqs, dlq).await.expect("list");
        assert_eq!(left.len(), 1);
        assert!(left[0].event.is_err());

        let delivery = outputs.delivery_queue_url.as_deref().expect("local stack");
        let mut got = delivered(&clients, delivery).await;
        got.sort_by_key(|e| e["detail"]["symbol"].to_string());
        assert_eq!(got.len(), 2, "{got:#?}");
        for (event, (symbol, original)) in got.iter().zip([("AAPL", "ev-1"), ("MSFT", "ev-2")]) {
            assert_eq!(event["detail"]["symbol"], symbol);
            assert_eq!(
                event["resources"],
                serde_json::json!([format!("{}{original}", names::REDRIVE_OF_PREFIX)])
            );
            assert_ne!(event["id"], original, "PutEvents gives a copy its own id");
            assert_eq!(event["source"], "market.data");
            assert_eq!(event["detail-type"], "Trade Execution");
            assert_eq!(event["time"], time.as_str());
            assert_eq!(event["detail"]["volume"], 100);
        }
    }

    /// The staging stack's resources, stream included, under a fresh suffix.
    async fn stream_stack() -> (Outputs, Clients, Policy) {
        let mut config =
            StackConfig::load(&infra::workspace_root(), "staging").expect("staging stack");
        config.environment = format!("dlqs{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
        let endpoint = crate::moto::shared().endpoint.clone();
        let sdk = local_sdk_config(&endpoint).await;
        let model = Model::from_stack(&config);
        let outputs = provision::provision(&sdk, &model, &endpoint)
            .await
            .expect("provision");
        let clients = Clients::for_stack(&outputs).await;
        (outputs, clients, Policy::for_stack(&model).expect("policy"))
    }

    fn quote(id: &str, symbol: &str, time: &str) -> String {
        format!(
            r#"{{"version":"0","id":"{id}","detail-type":"Market Quote","source":"market.data","account":"123456789012","time":"{time}","region":"us-east-1","resources":[],"detail":{{"exchange":"NYSE","symbol":"{symbol}","bid":"10.10","ask":"10.20","bid_size":5,"ask_size":7}}}}"#
        )
    }

    /// Puts one record and answers its shard and sequence number.
    async fn put_record(
        clients: &Clients,
        stream: &str,
        key: &str,
        data: &[u8],
    ) -> (String, String) {
        let out = clients
            .kinesis
            .put_record()
            .stream_name(stream)
            .partition_key(key)
            .data(aws_sdk_kinesis::primitives::Blob::new(data.to_vec()))
            .send()
            .await
            .expect("put record");
        (
            out.shard_id().to_string(),
            out.sequence_number().to_string(),
        )
    }

    fn stream_letter(shard: &str, first: &str, last: &str, size: usize, arn: &str) -> String {
        serde_json::json!({
            "requestContext": {"requestId": "r", "condition": "RetryAttemptsExhausted", "approximateInvokeCount": 3},
            "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
            "version": "1.0",
            "KinesisBatchInfo": {
                "shardId": shard, "startSequenceNumber": first, "endSequenceNumber": last,
                "batchSize": size, "streamArn": arn,
            }
        })
        .to_string()
    }

    /// A stream letter's batch is read back: its events are published like any letter's, its
    /// record without an event goes back on the stream, and the letter goes once all are done.
    /// A batch the stream no longer holds keeps its letter.
    #[tokio::test]
    async fn a_stream_letter_is_read_back_published_record_by_record_and_then_deleted() {
        let (outputs, clients, policy) = stream_stack().await;
        let stream = outputs
            .kinesis_stream_name
            .clone()
            .expect("staging has a stream");
        let arn = outputs.kinesis_stream_arn.clone().expect("stream arn");
        let time = recent();
        // One key, so one shard holds all three, in this order.
        let key = "NYSE#IBM";
        let (shard, first) = put_record(
            &clients,
            &stream,
            key,
            quote("q-1", "IBM", &time).as_bytes(),
        )
        .await;
        put_record(&clients, &stream, key, &[0xff, 0xfe, b'{']).await;
        let (_, last) = put_record(
            &clients,
            &stream,
            key,
            quote("q-2", "IBM", &time).as_bytes(),
        )
        .await;
        // A record after the range stays out of it.
        put_record(
            &clients,
            &stream,
            key,
            quote("q-3", "IBM", &time).as_bytes(),
        )
        .await;
        let dlq = &outputs.dlq_url;
        put(
            &clients,
            dlq,
            &stream_letter(&shard, &first, &last, 3, &arn),
            &[],
        )
        .await;
        let peeked = crate::scenario::peek_dlq(&clients, dlq)
            .await
            .expect("peek");
        let ids: Vec<Option<&str>> = peeked.iter().map(|l| l.event_id.as_deref()).collect();
        assert_eq!(ids, [Some("q-1"), None, Some("q-2")], "{peeked:?}");
        assert!(
            peeked[0].error.contains("RetryAttemptsExhausted"),
            "{peeked:?}"
        );

        let done = redrive(&clients, &outputs, &policy, &quick())
            .await
            .expect("redrive");
        assert_eq!(
            (
                done.read,
                done.copies.len(),
                done.restreamed,
                done.deleted,
                done.kept.len()
            ),
            (3, 2, 1, 1, 0),
            "{}",
            done.report()
        );
        let ids: Vec<&str> = done.copies.iter().map(|c| c.record_id.as_str()).collect();
        assert_eq!(ids, ["q-1", "q-2"]);
        assert!(
            super::super::list(&clients.sqs, dlq)
                .await
                .expect("list")
                .is_empty()
        );
        let delivery = outputs.delivery_queue_url.as_deref().expect("local stack");
        let got = delivered(&clients, delivery).await;
        assert_eq!(got.len(), 2, "{got:#?}");
        for event in &got {
            assert_eq!(event["detail-type"], "Market Quote");
            assert_eq!(event["time"], time.as_str());
        }
        // The garbage went back on the stream, after q-3.
        let (_, after) = put_record(&clients, &stream, key, b"marker").await;
        let batch = super::super::letter::StreamBatch {
            shard_id: shard.clone(),
            start_sequence_number: first.clone(),
            end_sequence_number: after,
            batch_size: 6,
            stream_arn: arn.clone(),
        };
        let all = super::super::stream::read(&clients.kinesis, &batch)
            .await
            .expect("read");
        let data: Vec<&[u8]> = all.iter().map(|r| r.data.as_slice()).collect();
        assert_eq!(data.len(), 6);
        assert_eq!(data[4], [0xff, 0xfe, b'{']);

        // A batch of a stream that is gone: the letter stays, and says why.
        put(
            &clients,
            dlq,
            &stream_letter(
                &shard,
                &first,
                &last,
                3,
                &arn.replace(&stream, "no-such-stream"),
            ),
            &[],
        )
        .await;
        let done = redrive(&clients, &outputs, &policy, &quick())
            .await
            .expect("redrive");
        assert_eq!(done.kept.len(), 1, "{}", done.report());
        assert_eq!(done.kept[0].hold, Hold::Unreadable);
        assert!(done.copies.is_empty());
        assert_eq!(
            super::super::list(&clients.sqs, dlq)
                .await
                .expect("list")
                .len(),
            1
        );
    }

    #[tokio::test]
    async fn nothing_is_deleted_when_the_bus_refuses() {
        let (mut outputs, clients, policy) = stack().await;
        put(
            &clients,
            &outputs.dlq_url,
            &destination_record(&trade("ev-9", "IBM", &recent())),
            &[],
        )
        .await;
        outputs.event_bus_name = "no-such-bus".into();
        let done = redrive(&clients, &outputs, &policy, &quick())
            .await
            .expect("redrive");
        assert!(done.copies.is_empty(), "{}", done.report());
        assert_eq!(done.kept.len(), 1, "{}", done.report());
        assert_eq!(done.kept[0].hold, Hold::Refused);
        let left = super::super::list(&clients.sqs, &outputs.dlq_url)
            .await
            .expect("list");
        assert_eq!(
            left.len(),
            1,
            "the letter must stay until the bus accepts it"
        );
    }

    /// An event whose record and PROCESSED entry landed before its invocation failed is done:
    /// its letter goes without a copy. A record without its entry is published, so that the
    /// copy writes the entry.
    #[tokio::test]
    async fn events_stored_already_are_not_published_unless_their_entry_is_missing() {
        let (outputs, clients, policy) = stack().await;
        let dlq = &outputs.dlq_url;
        let time = recent();
        let done_body = destination_record(&trade("ev-done", "AAPL", &time));
        let half_body = destination_record(&trade("ev-half", "MSFT", &time));
        let event_of = |body: &str| {
            super::super::decode("m", None, body, &Default::default())
                .event
                .expect("decodable")
        };
        let (done_event, half_event) = (event_of(&done_body), event_of(&half_body));
        assert!(
            !stored(&clients, &outputs, &done_event)
                .await
                .expect("lookup")
        );
        for (event, with_entry) in [(&done_event, true), (&half_event, false)] {
            let decoded = policy::as_stored(event).expect("valid");
            let received_at = Utc::now();
            let record = processor::item::record(&decoded, None, received_at, "req", 30);
            clients
                .dynamodb
                .put_item()
                .table_name(&outputs.market_data_table_name)
                .set_item(Some(record))
                .send()
                .await
                .expect("record");
            if with_entry {
                let context = processor::item::AuditContext {
                    request_id: "req",
                    environment: "test",
                    processing_ms: 1.0,
                    retention_days: 30,
                };
                let entry = processor::item::processed_audit(
                    &decoded,
                    &processor::event::format_timestamp(received_at),
                    &context,
                );
                clients
                    .dynamodb
                    .put_item()
                    .table_name(&outputs.audit_trail_table_name)
                    .set_item(Some(entry))
                    .send()
                    .await
                    .expect("audit entry");
            }
        }
        assert!(
            stored(&clients, &outputs, &done_event)
                .await
                .expect("lookup")
        );
        assert!(
            !stored(&clients, &outputs, &half_event)
                .await
                .expect("lookup")
        );
        put(&clients, dlq, &done_body, &[]).await;
        put(&clients, dlq, &half_body, &[]).await;

        let done = redrive(&clients, &outputs, &policy, &quick())
            .await
            .expect("redrive");
        assert_eq!(
            (done.copies.len(), done.already_stored, done.deleted),
            (1, 1, 2),
            "{}",
            done.report()
        );
        assert_eq!(done.copies[0].record_id, "ev-half");
        assert!(
            super::super::list(&clients.sqs, dlq)
                .await
                .expect("list")
                .is_empty()
        );
    }
}
