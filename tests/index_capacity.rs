//! The capacity model of the tables and their indexes (ARCHITECTURE.md, "Index keys"): the
//! sample market session's events become the items the processor writes, with its own item
//! builders and index keys, over the ids the session's envelopes carry; every write is charged
//! to the partition key it lands on, in write units by item size; and the session is scaled to
//! each stack's design rate. The hottest partition key of every table and index must stay at or
//! below what one partition takes. No server: this is arithmetic over real items.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use harness::session::{self, Expect};
use infra::model::Model;
use infra::model::indexes::{PARTITION_WRITE_UNITS, WRITE_UNITS_PER_INDEX_ITEM};
use infra::stack::StackConfig;
use processor::event::{self, Rules};
use processor::item::{self, AuditContext, Item, Status};

/// DynamoDB counts a write unit per started kilobyte of the item.
const WRITE_UNIT_BYTES: usize = 1024;
/// What DynamoDB adds to an index entry when it sizes index storage. Its rule for index write
/// units does not mention it; the model counts it anyway.
const INDEX_ENTRY_OVERHEAD_BYTES: usize = 100;

fn end() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-25T21:00:00Z")
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_default()
}

/// An item's size as DynamoDB counts it: each attribute's name plus its value; a number is
/// counted by its text, which is never less than DynamoDB's own count.
fn size(item: &Item) -> usize {
    item.iter()
        .map(|(name, value)| {
            name.len()
                + match value {
                    AttributeValue::S(s) | AttributeValue::N(s) => s.len(),
                    AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
                    other => panic!("the processor writes no {other:?}"),
                }
        })
        .sum()
}

fn units(bytes: usize) -> u64 {
    bytes.div_ceil(WRITE_UNIT_BYTES) as u64
}

fn text<'a>(item: &'a Item, key: &str) -> &'a str {
    match item.get(key) {
        Some(AttributeValue::S(s)) => s,
        other => panic!("{key} is not a string: {other:?}"),
    }
}

/// Write units per partition key, per table and per index, over one session.
#[derive(Default)]
struct Load {
    /// table or index name -> partition key value -> write units.
    keys: HashMap<&'static str, HashMap<String, u64>>,
    /// The largest index entry, in bytes.
    largest_index_entry: usize,
    /// Events that reached the processor.
    events: u64,
}

impl Load {
    fn charge(&mut self, partition: &'static str, key: &str, units: u64) {
        *self
            .keys
            .entry(partition)
            .or_default()
            .entry(key.to_string())
            .or_default() += units;
    }

    /// A put of `item` into the table of `schema`; `indexed` when it lands (a conditional put
    /// that finds its key taken costs the table its units and writes no index).
    fn put(&mut self, schema: &'static names::TableSchema, item: &Item, indexed: bool) {
        let bytes = size(item);
        self.charge(schema.prefix, text(item, schema.hash_key), units(bytes));
        if !indexed {
            return;
        }
        for index in schema.indexes {
            if let Some(AttributeValue::S(key)) = item.get(index.hash_key) {
                let entry = bytes + INDEX_ENTRY_OVERHEAD_BYTES;
                self.largest_index_entry = self.largest_index_entry.max(entry);
                self.charge(index.name, key, units(entry));
            }
        }
    }

    /// The hottest partition key of each table and index at `events_per_second`, in write
    /// units a second: its share of the session's write units, at that many events a second.
    fn hottest(&self, events_per_second: u32) -> Vec<(&'static str, String, f64)> {
        let mut hottest: Vec<_> = self
            .keys
            .iter()
            .filter_map(|(partition, keys)| {
                let (key, units) = keys.iter().max_by_key(|(key, units)| (**units, *key))?;
                let rate = *units as f64 * f64::from(events_per_second) / self.events as f64;
                Some((*partition, key.clone(), rate))
            })
            .collect();
        hottest.sort_by(|a, b| a.0.cmp(b.0));
        hottest
    }
}

/// The session as the processor of a stack with `buckets` index buckets would write it.
fn load(buckets: u16) -> Load {
    let events = session::routed(
        harness::local::SESSION_EVENTS,
        harness::local::SESSION_SEED,
        end(),
    );
    let envelopes = session::envelopes(&events, end());
    let rules = Rules {
        accepted_sources: vec![names::DEFAULT_SOURCE.into()],
        max_future_skew_seconds: 300,
        max_event_age_seconds: 7 * 86_400,
        replay_max_age_seconds: None,
    };
    let received_at = end();
    let received = event::format_timestamp(received_at);
    let mut load = Load::default();
    // dedupe key -> the record key its first copy was stored under.
    let mut owners: HashMap<String, event::MarketEvent> = HashMap::new();
    for (n, (sample, raw)) in events.iter().zip(&envelopes).enumerate() {
        load.events += 1;
        let request_id = format!("req-{n}");
        let ctx = AuditContext {
            request_id: &request_id,
            environment: "model",
            processing_ms: 1.0,
            retention_days: 2557,
        };
        // Indexed as the bus path indexes them: the stream path writes a subset of these
        // copies (names::Ingest), so the bus is the load to size for.
        let with_keys = |mut item: Item, schema: &names::TableSchema| {
            item::add_index_keys(&mut item, schema, schema.indexes, buckets);
            item
        };
        let market = &names::MARKET_DATA_SCHEMA;
        let audit = &names::AUDIT_TRAIL_SCHEMA;
        match event::decode(raw, &rules, end()) {
            Err(rejection) => {
                assert_eq!(sample.expect, Expect::Rejected, "{raw}");
                let entry = item::audit_for_rejection(&rejection, raw, &ctx);
                load.put(audit, &with_keys(entry, audit), true);
            }
            Ok(decoded) => {
                let key = item::dedupe_key(&decoded);
                if let Some(key) = &key {
                    let guard = with_keys(item::guard(&decoded, key, 365), market);
                    let owner = owners.get(key).cloned();
                    load.put(market, &guard, owner.is_none());
                    if let Some(owner) = owner {
                        // A copy of a stored trade: its record and PROCESSED backfill meet
                        // the owner's keys, and only its DUPLICATE entry is new.
                        assert_eq!(sample.expect, Expect::Duplicate, "{raw}");
                        let record = item::record(&owner, Some(key), received_at, "r", 365);
                        load.put(market, &with_keys(record, market), false);
                        let processed = item::processed_audit(&owner, &received, &ctx);
                        load.put(audit, &with_keys(processed, audit), false);
                        let duplicate =
                            item::audit_for_event(&decoded, Status::Duplicate, "again", &ctx);
                        load.put(audit, &with_keys(duplicate, audit), true);
                        continue;
                    }
                    owners.insert(key.clone(), decoded.clone());
                }
                assert_eq!(sample.expect, Expect::Stored, "{raw}");
                let record = item::record(&decoded, key.as_deref(), received_at, &request_id, 365);
                load.put(market, &with_keys(record, market), true);
                let processed = item::processed_audit(&decoded, &received, &ctx);
                load.put(audit, &with_keys(processed, audit), true);
            }
        }
    }
    load
}

fn stacks() -> Vec<(String, StackConfig)> {
    let root = infra::workspace_root();
    infra::stack::list_stacks(&root)
        .expect("stacks/")
        .into_iter()
        .map(|name| {
            let config = StackConfig::load(&root, &name).expect("a valid stack");
            (name, config)
        })
        .collect()
}

/// Every partition the processor writes: both tables and the three indexes.
const PARTITIONS: [&str; 5] = [
    names::EVENT_TYPE_INDEX,
    names::EXCHANGE_INDEX,
    names::SYMBOL_INDEX,
    names::AUDIT_TRAIL_TABLE_PREFIX,
    names::MARKET_DATA_TABLE_PREFIX,
];

#[test]
fn at_its_design_rate_no_partition_of_a_stack_takes_more_writes_than_it_can() {
    let mut checked = Vec::new();
    for (name, config) in stacks() {
        let rate = config
            .dynamodb
            .design_events_per_second
            .unwrap_or_else(|| panic!("stacks/{name}.yaml states no design rate"));
        let buckets = Model::from_stack(&config).table_settings.index_buckets;
        let load = load(buckets);
        let hottest = load.hottest(rate);
        let partitions: Vec<&str> = hottest.iter().map(|(p, _, _)| *p).collect();
        assert_eq!(
            partitions, PARTITIONS,
            "{name}: every table and index is written"
        );
        for (partition, key, units) in &hottest {
            println!(
                "{name}: {rate} events/s, {buckets} buckets: hottest key of {partition} is \
                 {key:?} at {units:.0} write units/s"
            );
            assert!(
                *units <= f64::from(PARTITION_WRITE_UNITS),
                "{name}: {partition} key {key:?} takes {units:.0} write units/s at {rate} \
                 events/s; a partition takes {PARTITION_WRITE_UNITS}"
            );
        }
        println!(
            "{name}: largest index entry {} bytes",
            load.largest_index_entry
        );
        // The arithmetic counts one write unit per index copy.
        assert!(
            units(load.largest_index_entry) <= u64::from(WRITE_UNITS_PER_INDEX_ITEM),
            "{name}: an index entry of {} bytes",
            load.largest_index_entry
        );
        checked.push(name);
    }
    assert!(checked.iter().any(|s| s == "prod"), "{checked:?}");
}

/// A feed decides its own mix: a stream path carrying only quotes puts every audit entry on
/// one event type. Even one key carrying the whole design rate stays under the limit, which is
/// what the bucket counts are planned for.
#[test]
fn one_key_carrying_the_whole_design_rate_still_fits() {
    let events = session::routed(
        harness::local::SESSION_EVENTS,
        harness::local::SESSION_SEED,
        end(),
    );
    let ids: Vec<String> = (0..events.len())
        .map(|n| session::envelope_id(&format!("{n:08x}")))
        .collect();
    for (name, config) in stacks() {
        let Some(rate) = config.dynamodb.design_events_per_second else {
            continue;
        };
        let buckets = config.dynamodb.index_buckets;
        let mut per_bucket = vec![0_u64; usize::from(buckets)];
        for id in &ids {
            per_bucket[usize::from(names::bucket_of(id, buckets))] += 1;
        }
        let hottest = per_bucket.iter().max().copied().unwrap_or(0);
        let units = hottest as f64 * f64::from(rate) / ids.len() as f64
            * f64::from(WRITE_UNITS_PER_INDEX_ITEM);
        println!("{name}: one key at {rate} events/s over {buckets} buckets: {units:.0} units/s");
        assert!(
            units <= f64::from(PARTITION_WRITE_UNITS),
            "{name}: {units:.0} write units/s on one bucket"
        );
    }
}

/// The same check on indexes keyed on the plain values, as they were: at prod's rate the
/// busiest exchange and event type each take several partitions' worth of writes. This is the
/// failure the buckets exist for, and it shows the check can fail.
#[test]
fn unbucketed_indexes_would_throttle_prod() {
    let root = infra::workspace_root();
    let prod = StackConfig::load(&root, "prod").expect("stacks/prod.yaml");
    let rate = prod
        .dynamodb
        .design_events_per_second
        .expect("a design rate");
    let hottest = load(1).hottest(rate);
    let over: Vec<(&str, &str)> = hottest
        .iter()
        .filter(|(_, _, units)| *units > f64::from(PARTITION_WRITE_UNITS))
        .map(|(partition, key, _)| (*partition, key.as_str()))
        .collect();
    assert_eq!(
        over,
        [
            (names::EVENT_TYPE_INDEX, "quote#00"),
            (names::EXCHANGE_INDEX, "NASDAQ#00")
        ],
        "{hottest:?}"
    );
    // The sample's shares behind that: NASDAQ has six of the twenty instruments.
    let nasdaq = hottest
        .iter()
        .find(|(partition, _, _)| *partition == names::EXCHANGE_INDEX)
        .map(|(_, _, units)| *units)
        .unwrap_or_default();
    assert!((2_500.0..3_500.0).contains(&nasdaq), "{nasdaq}");
}
