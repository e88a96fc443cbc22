//! Hand-computed cases: each number below is worked out in the comment above it.

use super::*;
use crate::cost::Mix;
use crate::stack::KinesisConfig;
use names::Ingest;

fn stack(name: &str) -> StackConfig {
    StackConfig::load(&crate::workspace_root(), name).expect("committed stack")
}

fn load(events_per_second: u64) -> Load {
    Load::new(events_per_second, 0.4, None, None, None).expect("valid load")
}

fn report_of(config: &StackConfig, load: &Load) -> Report {
    report(config, &Model::from_stack(config), load)
}

fn row<'a>(rows: &'a [Row], prefix: &str) -> &'a Row {
    rows.iter()
        .find(|r| r.what.starts_with(prefix))
        .unwrap_or_else(|| panic!("no row {prefix:?} in {rows:#?}"))
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * b.abs().max(1.0)
}

#[test]
fn prod_at_ten_thousand_events_a_second_is_split_as_computed_by_hand() {
    let config = stack("prod");
    let r = report_of(&config, &load(10_000));

    // The bus carries the trades: 10 000 x 0.4 = 4 000 events/s, 10 per PutEvents request.
    let bus = r.path(Path::Bus).expect("bus path");
    assert_eq!(bus.classes, [EventClass::Trade]);
    assert!(close(bus.events_per_second, 4_000.0));
    let put = row(&bus.rows, "PutEvents");
    assert!(close(put.need, 400.0));
    assert!(close(put.need_alone, 1_000.0));
    // 10 000 requests/s x 10 entries = 100 000 events/s on the bus, 250 000 in all at 0.4.
    assert_eq!(put.binds_alone, Some(100_000));
    assert_eq!(put.binds_at, Some(250_000));
    // One target per event; 18 750/s in us-east-1 = 18 750 / 0.4 = 46 875 in all.
    let invocations = row(&bus.rows, "target invocations");
    assert!(close(invocations.need, 4_000.0));
    assert_eq!(invocations.binds_at, Some(46_875));
    // Little's law: 4 000/s x 20 ms = 80 in flight, of prod's 100 reserved; 100 / 0.02 = 5 000
    // events/s on the bus, 12 500 in all.
    let concurrency = row(&bus.rows, "Lambda concurrency");
    assert!(close(concurrency.need, 80.0));
    assert!(close(concurrency.need_alone, 200.0));
    assert_eq!(concurrency.binds_at, Some(12_500));
    assert_eq!(concurrency.binds_alone, Some(5_000));
    // Every bus event is a trade: a record and a guard in market-data (8 000 WRU/s), the
    // record again in each of its two indexes, an audit entry and its index copy.
    assert!(close(
        row(&bus.rows, "market-data-prod WRU/s, table").need,
        8_000.0
    ));
    assert!(close(
        row(&bus.rows, "market-data-prod WRU/s, ExchangeIndex").need,
        4_000.0
    ));
    assert!(close(
        row(&bus.rows, "audit-trail-prod WRU/s, EventTypeIndex").need,
        4_000.0
    ));
    // Each stored event puts its latest-price item once: 4 000 units/s on the bus.
    assert!(close(
        row(&bus.rows, "latest-prices-prod WRU/s, table").need,
        4_000.0
    ));
    // Alone, 40 % trades: 10 000 records + 4 000 guards = 14 000; 40 000 / 1.4 = 28 571.
    let market = row(&bus.rows, "market-data-prod WRU/s, table");
    assert!(close(market.need_alone, 14_000.0));
    assert_eq!(market.binds_alone, Some(28_571));
    // The hottest key over 16 buckets: 4 000 / 16 = 250 units/s; 1 000 x 16 = 16 000 events/s.
    let hottest = row(&bus.rows, "hottest index partition");
    assert!(close(hottest.need, 250.0));
    assert_eq!(hottest.binds_alone, Some(16_000));
    let (first, at) = bus.binds_first().expect("a bus limit binds");
    assert!(first.what.starts_with("Lambda concurrency"), "{first:?}");
    assert_eq!(at, 12_500);

    // The stream carries the quotes: 6 000 records/s of 0.5 KB = 2.93 MB/s; shards: the most
    // of ceil(2.93) = 3 for bytes, 6 000 / 1 000 = 6 for records, and
    // ceil(6 000 x 0.25 s / (500 x 4)) = 1 for the mapping's reading: 6, held 4 at a time.
    let stream = r.path(Path::Stream).expect("stream path");
    assert_eq!(stream.classes, [EventClass::Quote]);
    assert!(close(
        row(&stream.rows, "Kinesis writes, MB/s").need,
        6_000.0 * 512.0 / 1_048_576.0
    ));
    assert!(close(row(&stream.rows, "Kinesis shards needed").need, 6.0));
    assert!(close(row(&stream.rows, "Lambda concurrency").need, 24.0));
    // 24 batchers each gather 6 000 / 24 = 250 records a second: 24 invocations/s.
    assert!(close(row(&stream.rows, "Lambda invocations").need, 24.0));
    // Quotes write no guard: 6 000 records; and, priced at the most, a latest-price put each.
    assert!(close(
        row(&stream.rows, "market-data-prod WRU/s, table").need,
        6_000.0
    ));
    assert!(close(
        row(&stream.rows, "latest-prices-prod WRU/s, table").need,
        6_000.0
    ));

    // One function for both: 80 + 24 = 104 of 100. With 6 shards (up to 10 000 events/s) it
    // fits while 0.4 N x 0.02 + 24 <= 100, so up to N = 9 500.
    let together = row(&r.together, "Lambda concurrency");
    assert!(close(together.need, 104.0));
    assert_eq!(together.binds_at, Some(9_500));
    // Both write market-data: 8 000 + 6 000; the hottest key takes every event: 10 000 / 16.
    assert!(close(
        row(&r.together, "market-data-prod WRU/s, table").need,
        14_000.0
    ));
    // And latest-prices: one put per event, 10 000 of the on-demand table's 40 000.
    let latest = row(&r.together, "latest-prices-prod WRU/s, table");
    assert!(close(latest.need, 10_000.0));
    assert_eq!(latest.binds_at, Some(40_000));
    assert!(close(
        row(&r.together, "hottest index partition").need,
        625.0
    ));
    let (first, at) = r.binds_first().expect("a stack limit binds");
    assert_eq!(first.what, "Lambda concurrency (both paths)");
    assert_eq!(at, 9_500);
}

#[test]
fn reserved_concurrency_binds_first_with_a_slower_function() {
    let config = stack("prod");
    let slow = Load::new(2_000, 0.4, Some(50.0), None, None).expect("valid load");
    let r = report_of(&config, &slow);
    // 800 trades/s x 50 ms = 40, plus 4 x 2 shards (1 200 quotes/s) = 48 of 100. In all it is
    // 0.4 N x 0.05 + 4 x ceil(0.6 N / 1 000): with 3 shards (N up to 5 000) 0.02 N + 12 <= 100
    // holds up to N = 4 400; with 4 it is already 100 + 16 at 5 000.
    let together = row(&r.together, "Lambda concurrency");
    assert!(close(together.need, 48.0));
    assert_eq!(together.binds_at, Some(4_400));
    let (first, at) = r.binds_first().expect("binds");
    assert_eq!(first.what, "Lambda concurrency (both paths)");
    assert_eq!(at, 4_400);
}

#[test]
fn put_events_binds_first_when_each_request_carries_one_event() {
    let config = stack("dev");
    let single = Load::new(1_000, 0.4, None, None, Some(1)).expect("valid load");
    let r = report_of(&config, &single);
    assert!(r.together.is_empty(), "dev has the bus only");
    let bus = r.path(Path::Bus).expect("bus");
    // One entry a request: dev's 10 000 requests/s in us-east-1 are 10 000 events/s.
    let put = row(&bus.rows, "PutEvents");
    assert!(close(put.need, 1_000.0));
    assert_eq!(put.binds_at, Some(10_000));
    // Dev's 4 buckets take 1 000 x 4 = 4 000 events/s on the hottest key, which binds sooner.
    let (first, at) = r.binds_first().expect("binds");
    assert!(
        first.what.starts_with("hottest index partition"),
        "{first:?}"
    );
    assert_eq!(at, 4_000);

    // With 16 buckets the hottest key takes 16 000, the target invocations 18 750, the account's
    // 1 000 concurrency 1 000 / 20 ms = 50 000, market-data 40 000 / 1.4 = 28 571: PutEvents
    // binds first.
    let mut wide = config.clone();
    wide.dynamodb.index_buckets = 16;
    let r = report_of(&wide, &single);
    let (first, at) = r.binds_first().expect("binds");
    assert!(first.what.starts_with("PutEvents"), "{first:?}");
    assert_eq!(at, 10_000);
    // Ten entries a request take 100 000 events/s before PutEvents binds: the hottest key does
    // first.
    let r = report_of(&wide, &load(1_000));
    let (first, at) = r.binds_first().expect("binds");
    assert!(
        first.what.starts_with("hottest index partition"),
        "{first:?}"
    );
    assert_eq!(at, 16_000);
}

#[test]
fn a_provisioned_stream_with_too_few_shards_binds_on_its_records() {
    let config = stack("staging");
    let r = report_of(&config, &load(5_000));
    let stream = r.path(Path::Stream).expect("stream");
    // Staging's 2 provisioned shards write 2 000 records/s; 5 000 x 0.6 = 3 000 quotes/s need
    // 3 shards. The records bind at 2 000 / 0.6 = 3 333 events/s in all.
    let records = row(&stream.rows, "Kinesis writes, records/s");
    assert!(close(records.need, 3_000.0));
    assert!(close(records.limit.as_ref().expect("limit").value, 2_000.0));
    assert_eq!(records.binds_at, Some(3_333));
    let shards = row(&stream.rows, "Kinesis shards needed");
    assert!(close(shards.need, 3.0));
    assert_eq!(shards.binds_at, Some(3_333));
    // The bytes: 2 MB/s at 512 bytes a record = 4 096 records/s, 6 826 in all.
    assert_eq!(
        row(&stream.rows, "Kinesis writes, MB/s").binds_at,
        Some(6_826)
    );
    // The mapping holds 2 shards x 2 batches whatever the rate.
    assert!(close(row(&stream.rows, "Lambda concurrency").need, 4.0));
    let (first, at) = r.binds_first().expect("binds");
    assert_eq!(first.what, "Kinesis writes, records/s");
    assert_eq!(at, 3_333);
}

#[test]
fn an_on_demand_stream_scales_to_its_regional_ceiling() {
    let mut config = stack("prod");
    config.region = "eu-central-1".into();
    let r = report_of(&config, &load(1_000));
    let stream = r.path(Path::Stream).expect("stream");
    // 200 MB/s outside the three large regions: 200 shards of 1 000 records/s, so 200 000 quotes
    // on the stream alone.
    let shards = row(&stream.rows, "Kinesis shards needed");
    assert!(close(shards.limit.as_ref().expect("limit").value, 200.0));
    assert_eq!(shards.binds_alone, Some(200_000));
    // An unlisted region gets the lowest PutEvents default, a listed one its own.
    assert_eq!(
        quotas::PUT_EVENTS_REQUESTS.in_region("ap-south-1").value,
        400.0
    );
    assert_eq!(
        quotas::PUT_EVENTS_REQUESTS.in_region("eu-west-1").value,
        10_000.0
    );
    assert_eq!(
        quotas::TARGET_INVOCATIONS.in_region("eu-central-1").value,
        4_500.0
    );
}

#[test]
fn a_stream_that_takes_every_class_leaves_the_bus_idle() {
    let mut config = stack("prod");
    let kinesis: &mut KinesisConfig = config.kinesis.as_mut().expect("prod has a stream");
    kinesis.publish = vec![EventClass::Trade, EventClass::Quote];
    let r = report_of(&config, &load(10_000));
    let bus = r.path(Path::Bus).expect("bus");
    assert!(bus.classes.is_empty());
    assert_eq!(bus.events_per_second, 0.0);
    assert!(bus.binds_first().is_none(), "an idle path binds nothing");
    assert!(bus.binds_first_alone().is_some());
    let stream = r.path(Path::Stream).expect("stream");
    // All 10 000, 40 % trades: 10 000 records + 4 000 guards.
    assert!(close(
        row(&stream.rows, "market-data-prod WRU/s, table").need,
        14_000.0
    ));
    assert!(close(row(&stream.rows, "Kinesis shards needed").need, 10.0));
}

#[test]
fn costs_per_event_are_the_unit_prices_times_what_an_event_uses() {
    let config = stack("prod");
    let r = report_of(&config, &load(10_000));
    // A trade on the bus: $1.00 EventBridge + $0.20 Lambda requests + 1 GB x 20 ms at
    // $0.0000133334 per GB-s (0.266668 per million) + 7 WRU at $0.625 (4.375), per million.
    let bus = r.path(Path::Bus).expect("bus");
    assert!(close(bus.cost.per_million, 1.00 + 0.20 + 0.266_668 + 4.375));
    let month_seconds = 730.0 * 3600.0;
    assert!(close(
        bus.cost.per_month,
        bus.cost.per_million * 4_000.0 * month_seconds / 1e6
    ));
    // A quote on the on-demand stream, per million: 1 KB billed per record in and out
    // (1e6 KB = 0.953674 GB at $0.08 + $0.04), a 250-record batch per $0.20 request, 125 ms per
    // batch at 1 GB, 4 WRU at $0.625 (the record, its SymbolIndex copy, the PROCESSED entry,
    // the latest-price put); plus the stream's 730 h at $0.04 over the month.
    let stream = r.path(Path::Stream).expect("stream");
    let gb = 1e6 / (1024.0 * 1024.0);
    let variable = gb * 0.12 + 0.20 / 250.0 + 1e6 / 250.0 * 0.125 * 0.000_013_333_4 + 4.0 * 0.625;
    let events = 6_000.0 * month_seconds;
    let month = variable * events / 1e6 + 730.0 * 0.04;
    assert!(close(stream.cost.per_month, month));
    assert!(close(stream.cost.per_million, month / events * 1e6));
    assert!(close(
        r.cost.per_month,
        bus.cost.per_month + stream.cost.per_month
    ));
}

#[test]
fn write_units_are_the_ones_cost_charges() {
    let mix = |trade_share, rejected_share| Mix {
        trade_share,
        rejected_share,
    };
    let trade = cost::write_units_per_event(mix(1.0, 0.0), Ingest::Bus);
    // Record + 2 index copies + guard; audit entry + 1 index copy.
    assert_eq!(trade.market(), 4.0);
    assert_eq!(trade.market_table(), 2.0);
    assert_eq!(trade.index(names::EXCHANGE_INDEX), 1.0);
    assert_eq!(trade.index(names::SYMBOL_INDEX), 1.0);
    assert_eq!(trade.audit(), 2.0);
    assert_eq!(trade.audit_table(), 1.0);
    assert_eq!(trade.index(names::EVENT_TYPE_INDEX), 1.0);
    // The latest-price put: one unit, in a table without indexes.
    assert_eq!(trade.latest, 1.0);
    assert_eq!(trade.total(), 7.0);
    let rejected = cost::write_units_per_event(mix(1.0, 1.0), Ingest::Bus);
    assert_eq!(rejected.market(), 0.0);
    assert_eq!(rejected.audit(), 2.0);
    assert_eq!(rejected.latest, 0.0, "a rejected event updates no view");

    // The stream path: a record in SymbolIndex only, its PROCESSED entry in no index.
    let quote = cost::write_units_per_event(mix(0.0, 0.0), Ingest::Stream);
    assert_eq!(
        (quote.market(), quote.audit(), quote.latest, quote.total()),
        (2.0, 1.0, 1.0, 4.0)
    );
    assert_eq!(quote.index(names::EXCHANGE_INDEX), 0.0);
    assert_eq!(quote.index(names::SYMBOL_INDEX), 1.0);
    assert_eq!(quote.index(names::EVENT_TYPE_INDEX), 0.0);
    let trade = cost::write_units_per_event(mix(1.0, 0.0), Ingest::Stream);
    assert_eq!(trade.total(), 5.0);
    // A rejected record is audited, and indexed, the same on either path.
    let rejected = cost::write_units_per_event(mix(0.0, 1.0), Ingest::Stream);
    assert_eq!(
        (rejected.total(), rejected.index(names::EVENT_TYPE_INDEX)),
        (2.0, 1.0)
    );
    // The session's mix (40 % trades): 6.4 units an event by the bus, 4.4 by the stream.
    let session = |ingest| cost::write_units_per_event(mix(0.4, 0.0), ingest).total();
    assert!((session(Ingest::Bus) - 6.4).abs() < 1e-9);
    assert!((session(Ingest::Stream) - 4.4).abs() < 1e-9);
}

#[test]
fn bad_arguments_name_their_flag() {
    let error = |result: anyhow::Result<Load>| format!("{:#}", result.expect_err("refused"));
    assert!(error(Load::new(0, 0.4, None, None, None)).contains("--events-per-second"));
    assert!(error(Load::new(1, 1.5, None, None, None)).contains("--trade-share"));
    assert!(error(Load::new(1, -0.1, None, None, None)).contains("--trade-share"));
    assert!(error(Load::new(1, 0.4, Some(0.0), None, None)).contains("--duration-ms"));
    assert!(error(Load::new(1, 0.4, None, Some(1e9), None)).contains("--batch-duration-ms"));
    assert!(error(Load::new(1, 0.4, None, None, Some(11))).contains("--entries-per-request"));
    assert!(error(Load::new(1, 0.4, None, None, Some(0))).contains("--entries-per-request"));
    let unknown = run(&crate::workspace_root(), "nope", &load(1)).expect_err("unknown stack");
    let text = format!("{unknown:#}");
    assert!(
        text.contains("--stack nope") && text.contains("unknown stack"),
        "{text}"
    );
}

#[test]
fn the_search_lands_on_the_limit() {
    assert_eq!(highest_within(10.0, |r| r), Some(10));
    assert_eq!(highest_within(10.0, |r| r * 0.4), Some(25));
    assert_eq!(highest_within(1.0, |r| (r / 1_000.0).ceil()), Some(1_000));
    assert_eq!(highest_within(1.0, |_| 2.0), Some(0));
    assert_eq!(highest_within(1.0, |_| 0.0), None);
}

#[test]
fn every_quota_names_its_page() {
    for quota in quotas::all("us-east-1") {
        assert!(
            quota.page.starts_with("https://docs.aws.amazon.com/"),
            "{quota:?}"
        );
        assert!(quota.value > 0.0, "{quota:?}");
    }
    assert_eq!(
        quotas::DYNAMODB_PARTITION_WRITES.value,
        f64::from(indexes::PARTITION_WRITE_UNITS)
    );
    for price in [
        cost::KINESIS_ON_DEMAND_STREAM_HOUR,
        cost::KINESIS_ON_DEMAND_INGESTED,
        cost::KINESIS_ON_DEMAND_RETRIEVED,
        cost::KINESIS_SHARD_HOUR,
        cost::KINESIS_PUT_PAYLOAD_UNITS,
    ] {
        assert_eq!(
            price.page,
            "https://aws.amazon.com/kinesis/data-streams/pricing/"
        );
    }
}
