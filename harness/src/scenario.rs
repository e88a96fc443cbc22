//! The scenario engine: publish events to a stack's bus, then account for every one of them
//! through the stack's tables and DLQ. It reaches the stack only through the SDK and the stack's
//! outputs, so the same code checks the local stack and a deployed one.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use chrono::{DateTime, Utc};
use tokio::task::JoinSet;

use crate::aws::sdk_error;
use crate::query::IndexQuery;
use crate::session::{Expect, SampleEvent};
use infra::outputs::Outputs;

/// EventBridge's PutEvents limit.
pub const BATCH: usize = 10;
const PUBLISHERS: usize = 8;
const PUT_ATTEMPTS: u32 = 5;

pub struct Clients {
    pub events: aws_sdk_eventbridge::Client,
    pub kinesis: aws_sdk_kinesis::Client,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub sqs: aws_sdk_sqs::Client,
}

impl Clients {
    pub async fn for_stack(outputs: &Outputs) -> Clients {
        let config = crate::aws::sdk_config(outputs).await;
        Clients {
            events: aws_sdk_eventbridge::Client::new(&config),
            kinesis: aws_sdk_kinesis::Client::new(&config),
            dynamodb: aws_sdk_dynamodb::Client::new(&config),
            sqs: aws_sdk_sqs::Client::new(&config),
        }
    }
}

/// An event the bus accepted.
#[derive(Debug, Clone)]
pub struct Published {
    pub id: String,
    pub expect: Expect,
    pub group: Option<u64>,
    pub symbol: Option<String>,
    pub put_at: DateTime<Utc>,
}

/// The stack's stream, and the event classes its feed sends there instead of to the bus.
#[derive(Debug, Clone)]
pub struct Route {
    pub stream: String,
    pub classes: Vec<infra::stack::EventClass>,
}

impl Route {
    /// The route of a stack with the stream path; `None` without one.
    pub fn for_stack(model: &infra::model::Model, outputs: &Outputs) -> Option<Route> {
        let kinesis = model.kinesis.as_ref()?;
        Some(Route {
            stream: outputs.kinesis_stream_name.clone()?,
            classes: kinesis.publish.clone(),
        })
    }

    /// Whether the stack sends `event` through its stream.
    pub fn takes(&self, event: &SampleEvent) -> bool {
        infra::stack::EventClass::of_detail_type(&event.detail_type)
            .is_some_and(|class| self.classes.contains(&class))
    }
}

/// [`publish_paced`], sending the events of `route`'s classes through its stream with
/// PutRecords and the rest to the bus. Returns the accepted events in input order.
pub async fn publish_routed(
    clients: &Clients,
    bus: &str,
    route: Option<&Route>,
    events: &[SampleEvent],
    rate: Option<f64>,
    progress: impl Fn(usize) + Send + Sync + 'static,
) -> Result<Vec<Published>> {
    let Some(route) = route else {
        return publish_paced(clients, bus, events, rate, progress).await;
    };
    let (streamed, bussed): (Vec<usize>, Vec<usize>) =
        (0..events.len()).partition(|&i| route.takes(&events[i]));
    let to_bus: Vec<SampleEvent> = bussed.iter().map(|&i| events[i].clone()).collect();
    let progress = Arc::new(progress);
    let on_bus = {
        let progress = progress.clone();
        publish_paced(clients, bus, &to_bus, rate, move |n| progress(n))
    };
    let to_stream: Vec<&SampleEvent> = streamed.iter().map(|&i| &events[i]).collect();
    let (on_bus, on_stream) = tokio::join!(on_bus, publish_stream(clients, route, &to_stream));
    let (on_bus, on_stream) = (on_bus?, on_stream?);
    progress(events.len());
    // Back into input order, so callers see the session as it was written.
    let mut all: Vec<(usize, Published)> = bussed
        .into_iter()
        .zip(on_bus)
        .chain(streamed.into_iter().zip(on_stream))
        .collect();
    all.sort_by_key(|(i, _)| *i);
    Ok(all.into_iter().map(|(_, p)| p).collect())
}

/// Events onto the stream. The producer names each event (PutRecords assigns no id); the data
/// is the envelope the bus would have delivered. No rule filters the stream, so an event the
/// bus would not route reaches the processor, which rejects it.
async fn publish_stream(
    clients: &Clients,
    route: &Route,
    events: &[&SampleEvent],
) -> Result<Vec<Published>> {
    let time = processor::event::format_timestamp(Utc::now());
    let ids: Vec<String> = events
        .iter()
        .map(|_| uuid::Uuid::new_v4().to_string())
        .collect();
    let entries: Vec<crate::stream::Entry> = events
        .iter()
        .zip(&ids)
        .map(|(event, id)| crate::stream::Entry {
            partition_key: crate::stream::partition_key(&event.detail, id),
            data: event.envelope(id, &time).into_bytes(),
        })
        .collect();
    let accepted = crate::stream::put_records(&clients.kinesis, &route.stream, &entries).await?;
    Ok(events
        .iter()
        .zip(ids)
        .zip(accepted)
        .map(|((event, id), put_at)| Published {
            id,
            expect: match event.expect {
                Expect::Unrouted => Expect::Rejected,
                other => other,
            },
            group: event.group,
            symbol: symbol_of(&event.detail),
            put_at,
        })
        .collect())
}

/// Publishes `events` in batches of ten, several batches in flight, retrying entries the bus
/// failed. Returns the accepted events in input order.
pub async fn publish(
    clients: &Clients,
    bus: &str,
    events: &[SampleEvent],
    progress: impl Fn(usize) + Send + Sync + 'static,
) -> Result<Vec<Published>> {
    publish_paced(clients, bus, events, None, progress).await
}

/// [`publish`] at no more than `rate` events per second, so that put→stored latency measures
/// the pipeline rather than the backlog of a burst.
pub async fn publish_paced(
    clients: &Clients,
    bus: &str,
    events: &[SampleEvent],
    rate: Option<f64>,
    progress: impl Fn(usize) + Send + Sync + 'static,
) -> Result<Vec<Published>> {
    let start = tokio::time::Instant::now();
    let batch_interval = rate
        .filter(|r| *r > 0.0)
        .map(|r| Duration::from_secs_f64(BATCH as f64 / r));
    let progress = Arc::new(progress);
    let done = Arc::new(AtomicUsize::new(0));
    let batches: Vec<(usize, Vec<SampleEvent>)> = events
        .chunks(BATCH)
        .enumerate()
        .map(|(i, chunk)| (i, chunk.to_vec()))
        .collect();
    let queue = Arc::new(tokio::sync::Mutex::new(batches.into_iter()));
    let mut tasks = JoinSet::new();
    for _ in 0..PUBLISHERS {
        let queue = queue.clone();
        let client = clients.events.clone();
        let bus = bus.to_string();
        let done = done.clone();
        let progress = progress.clone();
        tasks.spawn(async move {
            let mut out = Vec::new();
            loop {
                let next = queue.lock().await.next();
                let Some((index, batch)) = next else {
                    break;
                };
                if let Some(interval) = batch_interval {
                    tokio::time::sleep_until(start + interval * index as u32).await;
                }
                let published = put_batch(&client, &bus, &batch).await?;
                let total = done.fetch_add(batch.len(), Ordering::Relaxed) + batch.len();
                progress(total);
                out.push((index, published));
            }
            anyhow::Ok(out)
        });
    }
    let mut all = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        all.extend(joined.context("publisher panicked")??);
    }
    all.sort_by_key(|(index, _)| *index);
    Ok(all.into_iter().flat_map(|(_, p)| p).collect())
}

async fn put_batch(
    client: &aws_sdk_eventbridge::Client,
    bus: &str,
    batch: &[SampleEvent],
) -> Result<Vec<Published>> {
    let mut pending: Vec<&SampleEvent> = batch.iter().collect();
    let mut published = Vec::with_capacity(batch.len());
    for attempt in 1..=PUT_ATTEMPTS {
        let entries = pending
            .iter()
            .map(|e| {
                PutEventsRequestEntry::builder()
                    .event_bus_name(bus)
                    .source(&e.source)
                    .detail_type(&e.detail_type)
                    .detail(&e.detail)
                    .build()
            })
            .collect();
        let put_at = Utc::now();
        let output = client
            .put_events()
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| sdk_error("PutEvents", e))
            .with_context(|| format!("PutEvents to bus {bus}"))?;
        let mut retry = Vec::new();
        for (event, entry) in pending.iter().zip(output.entries()) {
            match entry.event_id() {
                Some(id) if entry.error_code().is_none() => published.push(Published {
                    id: id.to_string(),
                    expect: event.expect,
                    group: event.group,
                    symbol: symbol_of(&event.detail),
                    put_at,
                }),
                _ => retry.push(*event),
            }
        }
        if retry.is_empty() {
            return Ok(published);
        }
        if attempt == PUT_ATTEMPTS {
            bail!(
                "{} events were refused by bus {bus} after {PUT_ATTEMPTS} attempts",
                retry.len()
            );
        }
        pending = retry;
        tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
    }
    Ok(published)
}

fn symbol_of(detail: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(detail).ok()?;
    value.get("symbol")?.as_str().map(String::from)
}

/// Where each published event ended.
#[derive(Debug, Default, Clone)]
pub struct Report {
    pub published: usize,
    pub routed: usize,
    pub stored: usize,
    pub duplicates: usize,
    pub rejected: usize,
    pub dead_lettered: usize,
    pub unrouted: usize,
    pub lost: usize,
    /// The first lost events, each with what the stack holds of it, to tell a slow tail from a
    /// real loss.
    pub lost_examples: Vec<String>,
    pub stored_twice: usize,
    /// DUPLICATE audits of events that were stored: second deliveries the processor absorbed.
    pub redeliveries_absorbed: usize,
    /// Stored events whose record has no PROCESSED entry (yet): its write failed and the event
    /// is in the DLQ, until a redrive's copy writes it.
    pub missing_processed: usize,
    /// Events whose fate differs from what the scenario expected (e.g. stored but expected rejected).
    pub unexpected: Vec<String>,
    /// put → stored, in milliseconds: p50, p90, p99, max.
    pub latency_ms: Option<[f64; 4]>,
    pub elapsed: Duration,
}

impl Report {
    pub fn ok(&self) -> bool {
        self.lost == 0 && self.stored_twice == 0 && self.unexpected.is_empty()
    }

    pub fn table(&self) -> String {
        let mut rows = vec![
            ("published", self.published),
            ("routed to the processor", self.routed),
            ("stored", self.stored),
            ("duplicates (re-published)", self.duplicates),
            ("redeliveries absorbed", self.redeliveries_absorbed),
            ("records without PROCESSED", self.missing_processed),
            ("rejected (with reason)", self.rejected),
            ("failed -> DLQ", self.dead_lettered),
            ("unrouted (no rule matches)", self.unrouted),
            ("lost", self.lost),
            ("stored twice", self.stored_twice),
        ];
        rows.push(("unexpected outcome", self.unexpected.len()));
        let mut text = String::new();
        for (label, value) in rows {
            text.push_str(&format!("  {label:<28} {value:>8}\n"));
        }
        if let Some([p50, p90, p99, max]) = self.latency_ms {
            text.push_str(&format!(
                "  put -> stored latency        p50 {p50:.0} ms, p90 {p90:.0} ms, p99 {p99:.0} ms, max {max:.0} ms\n"
            ));
        }
        text.push_str(&format!(
            "  accounted in                 {:.1} s\n",
            self.elapsed.as_secs_f64()
        ));
        for line in &self.lost_examples {
            text.push_str(&format!("  lost: {line}\n"));
        }
        for line in self.unexpected.iter().take(10) {
            text.push_str(&format!("  ! {line}\n"));
        }
        text
    }
}

/// What the stack holds for the events of one run.
#[derive(Default)]
struct Observed {
    /// event_id → (count, received_at) of market-data records.
    records: HashMap<String, (usize, Option<DateTime<Utc>>)>,
    dedupe_keys: HashMap<String, usize>,
    /// Events whose delivery wrote the record of another copy of the same trade (the copy that
    /// had claimed its guard and failed): id -> the record's event id.
    absorbed: HashMap<String, String>,
    /// event_id → statuses of its audit entries.
    audits: HashMap<String, Vec<String>>,
    dead_lettered: HashSet<String>,
}

/// Polls the stack until every routed event is accounted for or `timeout` passes. The indexes
/// are read over `buckets`, the stack's `index_buckets`.
#[allow(clippy::too_many_arguments)]
pub async fn account(
    clients: &Clients,
    outputs: &Outputs,
    buckets: u16,
    published: &[Published],
    since: DateTime<Utc>,
    window: (DateTime<Utc>, DateTime<Utc>),
    timeout: Duration,
    progress: impl Fn(usize, usize),
) -> Result<Report> {
    let none = HashMap::new();
    account_with(
        clients, outputs, buckets, published, since, window, timeout, &none, progress,
    )
    .await
}

/// Every market-data record of the stack (guards excluded): a scan, for the local stack's checks.
pub async fn count_records(clients: &Clients, outputs: &Outputs) -> Result<u64> {
    let mut count = 0;
    let mut pages = clients
        .dynamodb
        .scan()
        .table_name(&outputs.market_data_table_name)
        .projection_expression("#s")
        .expression_attribute_names("#s", names::SYMBOL)
        .into_paginator()
        .items()
        .send();
    while let Some(item) = pages.next().await {
        let item = item.map_err(|e| crate::aws::sdk_error("Scan", e))?;
        if item.contains_key(names::SYMBOL) {
            count += 1;
        }
    }
    Ok(count)
}

/// [`account`], knowing that the events in `copies` (copy id -> original id) were published
/// again by a redrive: a record one of them wrote counts for its original.
#[allow(clippy::too_many_arguments)]
pub async fn account_with(
    clients: &Clients,
    outputs: &Outputs,
    buckets: u16,
    published: &[Published],
    since: DateTime<Utc>,
    window: (DateTime<Utc>, DateTime<Utc>),
    timeout: Duration,
    copies: &HashMap<String, String>,
    progress: impl Fn(usize, usize),
) -> Result<Report> {
    let started = Instant::now();
    let routed: Vec<&Published> = published
        .iter()
        .filter(|p| p.expect != Expect::Unrouted)
        .collect();
    let symbols: Vec<String> = published
        .iter()
        .filter_map(|p| p.symbol.clone())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut delay = Duration::from_millis(500);
    let mut seen_dlq = HashSet::new();
    loop {
        let mut observed =
            observe(clients, outputs, buckets, &symbols, since, window, copies).await?;
        seen_dlq.extend(observed.dead_lettered.drain());
        observed.dead_lettered = seen_dlq.clone();
        let settled = routed
            .iter()
            .filter(|p| fate(&observed, &p.id).is_some())
            .count();
        progress(settled, routed.len());
        if settled == routed.len() || started.elapsed() > timeout {
            return Ok(summarize(published, &observed, started.elapsed()));
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    Stored,
    Duplicate,
    Rejected,
    DeadLettered,
}

fn fate(observed: &Observed, id: &str) -> Option<Fate> {
    if observed.records.contains_key(id) {
        return Some(Fate::Stored);
    }
    // One record for the two copies, under the other's key: this one counts as its duplicate.
    if observed.absorbed.contains_key(id) {
        return Some(Fate::Duplicate);
    }
    if observed.dead_lettered.contains(id) {
        return Some(Fate::DeadLettered);
    }
    let statuses = observed.audits.get(id)?;
    if statuses.iter().any(|s| s == "REJECTED") {
        Some(Fate::Rejected)
    } else if statuses.iter().any(|s| s == "DUPLICATE") {
        Some(Fate::Duplicate)
    } else {
        None
    }
}

fn summarize(published: &[Published], observed: &Observed, elapsed: Duration) -> Report {
    let mut report = Report {
        published: published.len(),
        elapsed,
        ..Report::default()
    };
    let mut latencies = Vec::new();
    let mut groups: BTreeMap<u64, Vec<(&str, Option<Fate>)>> = BTreeMap::new();
    for p in published {
        if p.expect == Expect::Unrouted {
            report.unrouted += 1;
            if observed.records.contains_key(&p.id) || observed.audits.contains_key(&p.id) {
                report.unexpected.push(format!(
                    "{}: matches no rule but reached the processor",
                    p.id
                ));
            }
            continue;
        }
        report.routed += 1;
        let fate = fate(observed, &p.id);
        match fate {
            Some(Fate::Stored) => {
                report.stored += 1;
                if let Some((count, received_at)) = observed.records.get(&p.id) {
                    if *count > 1 {
                        report.stored_twice += 1;
                    }
                    if let Some(at) = received_at {
                        latencies
                            .push((*at - p.put_at).num_microseconds().unwrap_or(0) as f64 / 1000.0);
                    }
                }
                let duplicates = observed
                    .audits
                    .get(&p.id)
                    .map_or(0, |s| s.iter().filter(|s| *s == "DUPLICATE").count());
                report.redeliveries_absorbed += duplicates;
                let processed = observed
                    .audits
                    .get(&p.id)
                    .is_some_and(|s| s.iter().any(|s| s == "PROCESSED"));
                if !processed {
                    report.missing_processed += 1;
                }
            }
            Some(Fate::Duplicate) => report.duplicates += 1,
            Some(Fate::Rejected) => report.rejected += 1,
            Some(Fate::DeadLettered) => report.dead_lettered += 1,
            None => {
                report.lost += 1;
                if report.lost_examples.len() < 10 {
                    let audits = observed.audits.get(&p.id).cloned().unwrap_or_default();
                    report.lost_examples.push(format!(
                        "{} (expected {:?}{}): audit statuses {audits:?}, no record, no letter",
                        p.id,
                        p.expect,
                        p.group
                            .map(|g| format!(", trade group {g}"))
                            .unwrap_or_default()
                    ));
                }
            }
        }
        if let Some(group) = p.group {
            groups.entry(group).or_default().push((p.id.as_str(), fate));
            continue;
        }
        let expected = match p.expect {
            Expect::Stored => Some(Fate::Stored),
            Expect::Duplicate => Some(Fate::Duplicate),
            Expect::Rejected => Some(Fate::Rejected),
            Expect::Unrouted => None,
        };
        if let Some(fate) = fate
            && fate != Fate::DeadLettered
            && Some(fate) != expected
        {
            report
                .unexpected
                .push(format!("{}: expected {:?}, found {fate:?}", p.id, p.expect));
        }
    }
    for (group, copies) in groups {
        let stored = copies
            .iter()
            .filter(|(_, f)| *f == Some(Fate::Stored))
            .count();
        let other = copies
            .iter()
            .filter(|(_, f)| {
                !matches!(
                    f,
                    Some(Fate::Stored | Fate::Duplicate | Fate::DeadLettered) | None
                )
            })
            .count();
        if stored > 1 {
            report.stored_twice += stored - 1;
        }
        if other > 0 || (stored == 0 && copies.iter().all(|(_, f)| *f == Some(Fate::Duplicate))) {
            report.unexpected.push(format!(
                "trade group {group}: copies ended {:?}; expected one stored and the rest duplicates",
                copies.iter().map(|(_, f)| *f).collect::<Vec<_>>()
            ));
        }
    }
    report.stored_twice += observed.dedupe_keys.values().filter(|n| **n > 1).count();
    latencies.sort_by(f64::total_cmp);
    if !latencies.is_empty() {
        let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize];
        report.latency_ms = Some([at(0.5), at(0.9), at(0.99), at(1.0)]);
    }
    report
}

async fn observe(
    clients: &Clients,
    outputs: &Outputs,
    buckets: u16,
    symbols: &[String],
    since: DateTime<Utc>,
    window: (DateTime<Utc>, DateTime<Utc>),
    copies: &HashMap<String, String>,
) -> Result<Observed> {
    let mut observed = Observed::default();
    // (event_id, timestamp, received_at) of every record: the key of its PROCESSED entry.
    let mut stored: Vec<(String, String, String)> = Vec::new();
    let from = processor::event::format_timestamp(window.0);
    let to = processor::event::format_timestamp(window.1);
    for symbol in symbols {
        let items = IndexQuery::new(
            &outputs.market_data_table_name,
            &names::SYMBOL_INDEX_SCHEMA,
            symbol,
            buckets,
        )
        .since(from.clone())
        .until(to.clone())
        .run(&clients.dynamodb)
        .await
        .with_context(|| format!("querying {} by symbol", outputs.market_data_table_name))?;
        for item in items {
            let Some(id) = text(&item, names::EVENT_ID) else {
                continue;
            };
            let received_at = text(&item, names::RECEIVED_AT)
                .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
                .map(|t| t.with_timezone(&Utc));
            if let Some(delivery) = text(&item, names::DELIVERED_AS) {
                let event = copies.get(&delivery).cloned().unwrap_or(delivery);
                if event != id {
                    observed.absorbed.insert(event, id.clone());
                }
            }
            if let (Some(timestamp), Some(stored_at)) = (
                text(&item, names::TIMESTAMP),
                text(&item, names::RECEIVED_AT),
            ) {
                stored.push((id.clone(), timestamp, stored_at));
            }
            let entry = observed.records.entry(id).or_insert((0, received_at));
            entry.0 += 1;
            if let Some(key) = text(&item, names::DEDUPE_KEY) {
                *observed.dedupe_keys.entry(key).or_default() += 1;
            }
        }
    }
    let since = processor::event::format_timestamp(since);
    for event_type in ["trade", "quote", processor::item::UNKNOWN_EVENT_TYPE] {
        let items = IndexQuery::new(
            &outputs.audit_trail_table_name,
            &names::EVENT_TYPE_INDEX_SCHEMA,
            event_type,
            buckets,
        )
        .since(since.clone())
        .run(&clients.dynamodb)
        .await
        .with_context(|| format!("querying {} by event type", outputs.audit_trail_table_name))?;
        for item in items {
            if let (Some(id), Some(status)) =
                (text(&item, names::EVENT_ID), text(&item, names::STATUS))
            {
                observed.audits.entry(id).or_default().push(status);
            }
        }
    }
    stored.retain(|(id, _, _)| {
        !observed
            .audits
            .get(id)
            .is_some_and(|s| s.iter().any(|s| s == "PROCESSED"))
    });
    for id in processed_by_key(clients, &outputs.audit_trail_table_name, &stored).await? {
        observed
            .audits
            .entry(id)
            .or_default()
            .push("PROCESSED".into());
    }
    observed.dead_lettered = dlq_event_ids(clients, &outputs.dlq_url).await?;
    Ok(observed)
}

/// The event ids among `records` (event_id, timestamp, received_at) whose PROCESSED entry
/// exists, read by the key each record gives: a streamed entry is in no index
/// ([`names::Ingest`]).
async fn processed_by_key(
    clients: &Clients,
    table: &str,
    records: &[(String, String, String)],
) -> Result<Vec<String>> {
    // BatchGetItem's most keys per request.
    const KEYS_PER_REQUEST: usize = 100;
    let mut found = Vec::new();
    for chunk in records.chunks(KEYS_PER_REQUEST) {
        let mut keys: Vec<HashMap<String, AttributeValue>> = chunk
            .iter()
            .map(|(id, timestamp, received_at)| {
                HashMap::from([
                    (
                        names::AUDIT_ID.to_string(),
                        AttributeValue::S(processor::item::processed_audit_id(
                            id,
                            timestamp,
                            received_at,
                        )),
                    ),
                    (
                        names::TIMESTAMP.to_string(),
                        AttributeValue::S(received_at.clone()),
                    ),
                ])
            })
            .collect();
        // Keys DynamoDB leaves unprocessed (throttled) are asked again, a few times.
        for round in 0.. {
            if keys.is_empty() {
                break;
            }
            if round == 8 {
                bail!(
                    "{table} left {} keys unread after {round} BatchGetItem rounds",
                    keys.len()
                );
            }
            if round > 0 {
                tokio::time::sleep(Duration::from_millis(50 << round)).await;
            }
            let request = aws_sdk_dynamodb::types::KeysAndAttributes::builder()
                .set_keys(Some(std::mem::take(&mut keys)))
                .projection_expression("#e, #s")
                .expression_attribute_names("#e", names::EVENT_ID)
                .expression_attribute_names("#s", names::STATUS)
                .build()
                .context("building a BatchGetItem request")?;
            let reply = clients
                .dynamodb
                .batch_get_item()
                .request_items(table, request)
                .send()
                .await
                .map_err(|e| sdk_error("BatchGetItem", e))
                .with_context(|| format!("reading PROCESSED entries from {table}"))?;
            for item in reply
                .responses()
                .and_then(|r| r.get(table))
                .into_iter()
                .flatten()
            {
                if let (Some(id), Some("PROCESSED")) = (
                    text(item, names::EVENT_ID),
                    text(item, names::STATUS).as_deref(),
                ) {
                    found.push(id);
                }
            }
            if let Some(rest) = reply.unprocessed_keys().and_then(|u| u.get(table)) {
                keys = rest.keys().to_vec();
            }
        }
    }
    Ok(found)
}

/// Event ids in the DLQ, read without consuming the messages.
pub async fn dlq_event_ids(clients: &Clients, dlq_url: &str) -> Result<HashSet<String>> {
    let mut ids = HashSet::new();
    for message in peek_dlq(clients, dlq_url).await? {
        if let Some(id) = message.event_id {
            ids.insert(id);
        }
    }
    Ok(ids)
}

/// A DLQ message: the event it holds, and the error that put it there.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    pub event_id: Option<String>,
    pub error: String,
}

/// The DLQ's messages, read without consuming them; a stream letter as one per event of its
/// batch, read back from the stream.
pub async fn peek_dlq(clients: &Clients, dlq_url: &str) -> Result<Vec<DeadLetter>> {
    let mut out = Vec::new();
    for letter in crate::dlq::list(&clients.sqs, dlq_url).await? {
        let Some(batch) = &letter.batch else {
            out.push(DeadLetter {
                // A copy that failed again counts for the event it copies.
                event_id: letter.record_id().map(String::from),
                error: letter.error,
            });
            continue;
        };
        match crate::dlq::stream::read(&clients.kinesis, batch).await {
            Ok(records) => out.extend(records.into_iter().map(|record| {
                DeadLetter {
                    event_id: record
                        .event
                        .ok()
                        .and_then(|e| e.record_id().map(String::from)),
                    error: letter.error.clone(),
                }
            })),
            Err(_) => out.push(DeadLetter {
                event_id: None,
                error: format!("{} (its batch can no longer be read)", letter.error),
            }),
        }
    }
    Ok(out)
}

fn text(item: &HashMap<String, AttributeValue>, key: &str) -> Option<String> {
    match item.get(key) {
        Some(AttributeValue::S(s)) => Some(s.clone()),
        _ => None,
    }
}
