//! The latest-price view against moto: written only by a newer event, whatever the order,
//! the duplicates and the path.

use std::collections::BTreeMap;

use chrono::{Duration, Utc};
use processor::event::format_timestamp;
use proptest::prelude::*;
use tests::tables::{Tables, n, s};

/// One event of the property: symbol, exchange, trade or quote, seconds after a base time, and
/// a price.
#[derive(Debug, Clone)]
struct Spec {
    symbol: &'static str,
    exchange: &'static str,
    trade: bool,
    second: i64,
    price: u32,
}

fn detail(spec: &Spec) -> String {
    if spec.trade {
        format!(
            r#"{{"exchange":"{}","symbol":"{}","price":"{}.5","volume":10}}"#,
            spec.exchange, spec.symbol, spec.price
        )
    } else {
        format!(
            r#"{{"exchange":"{}","symbol":"{}","bid":"{}.25","ask":"{}.75"}}"#,
            spec.exchange, spec.symbol, spec.price, spec.price
        )
    }
}

fn envelope(id: &str, spec: &Spec, base: chrono::DateTime<Utc>) -> String {
    let time = format_timestamp(base + Duration::seconds(spec.second));
    let detail_type = if spec.trade {
        "Trade Execution"
    } else {
        "Market Quote"
    };
    format!(
        r#"{{"version":"0","id":"{id}","detail-type":"{detail_type}","source":"market.data","time":"{time}","resources":[],"detail":{}}}"#,
        detail(spec)
    )
}

/// (symbol, view) -> (event time, event id, the price or bid as stored).
type View = BTreeMap<(String, String), (String, String, String)>;

async fn latest_view(tables: &Tables) -> View {
    tables
        .latest_items()
        .await
        .iter()
        .map(|item| {
            let value = if s(item, names::EVENT_TYPE) == "trade" {
                n(item, names::PRICE)
            } else {
                n(item, names::BID)
            };
            (
                (s(item, names::SYMBOL), s(item, names::VIEW)),
                (
                    s(item, names::LATEST_EVENT_TIME),
                    s(item, names::EVENT_ID),
                    value,
                ),
            )
        })
        .collect()
}

/// The view the newest event per symbol and view gives: newest by event time, ties by id.
fn expected(specs: &[Spec], base: chrono::DateTime<Utc>) -> View {
    let mut view = View::new();
    for (i, spec) in specs.iter().enumerate() {
        let kind = if spec.trade {
            names::VIEW_TRADE
        } else {
            names::VIEW_QUOTE
        };
        let key = (
            spec.symbol.to_string(),
            names::latest_view(kind, spec.exchange),
        );
        let value = (
            format_timestamp(base + Duration::seconds(spec.second)),
            format!("e-{i:03}"),
            if spec.trade {
                format!("{}.5", spec.price)
            } else {
                format!("{}.25", spec.price)
            },
        );
        match view.get(&key) {
            Some(kept) if (&kept.0, &kept.1) >= (&value.0, &value.1) => {}
            _ => {
                view.insert(key, value);
            }
        }
    }
    view
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        prop::sample::select(vec!["AAPL", "IBM"]),
        prop::sample::select(vec!["NASDAQ", "NYSE"]),
        any::<bool>(),
        0i64..6,
        1u32..1000,
    )
        .prop_map(|(symbol, exchange, trade, second, price)| Spec {
            symbol,
            exchange,
            trade,
            second,
            price,
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 10, ..ProptestConfig::default() })]

    /// Any delivery order of a set of events, each delivered one to three times, some of them
    /// concurrently, leaves the view the newest event per symbol and view gives.
    #[test]
    fn any_order_with_duplicates_leaves_the_newest_event_per_view(
        specs in prop::collection::vec(spec(), 1..14),
        copies in prop::collection::vec(1usize..4, 14),
        order in any::<prop::sample::Index>(),
        chunk in 1usize..5,
    ) {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let (got, want) = runtime.block_on(async {
            let tables = Tables::create().await;
            let p = tables.processor();
            let base = Utc::now() - Duration::minutes(5);
            let mut deliveries: Vec<String> = specs
                .iter()
                .enumerate()
                .flat_map(|(i, spec)| {
                    let raw = envelope(&format!("e-{i:03}"), spec, base);
                    std::iter::repeat_n(raw, copies[i])
                })
                .collect();
            // A deterministic shuffle from the drawn index.
            let len = deliveries.len();
            let mut seed = order.index(usize::MAX);
            for i in (1..len).rev() {
                seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                deliveries.swap(i, (seed >> 33) % (i + 1));
            }
            // Every delivery its own invocation, as Lambda gives each a request id.
            let request_ids: Vec<String> = (0..len).map(|i| format!("d-{i}")).collect();
            let deliveries: Vec<(&String, &String)> = deliveries.iter().zip(&request_ids).collect();
            for group in deliveries.chunks(chunk) {
                let outcomes = futures_util::future::join_all(
                    group.iter().map(|(raw, request_id)| p.process(raw, request_id)),
                )
                .await;
                for outcome in outcomes {
                    let outcome = outcome.expect("accounted for");
                    assert!(["PROCESSED", "DUPLICATE"].contains(&outcome.status), "{outcome:?}");
                }
            }
            (latest_view(&tables).await, expected(&specs, base))
        });
        prop_assert_eq!(got, want);
    }
}

#[tokio::test]
async fn an_older_event_never_overwrites_a_newer_one_and_a_price_update_without_a_quote_leaves_it()
{
    let tables = Tables::create().await;
    let p = tables.processor();
    let base = Utc::now() - Duration::minutes(1);
    let newer = Spec {
        symbol: "MSFT",
        exchange: "NASDAQ",
        trade: true,
        second: 30,
        price: 410,
    };
    let older = Spec {
        second: 10,
        price: 409,
        ..newer.clone()
    };
    for (id, spec) in [("new", &newer), ("old", &older)] {
        let outcome = p.process(&envelope(id, spec, base), id).await.unwrap();
        assert_eq!(outcome.status, "PROCESSED");
    }
    let price_only = format!(
        r#"{{"version":"0","id":"pu","detail-type":"Price Update","source":"market.data","time":"{}","resources":[],"detail":{{"exchange":"NASDAQ","symbol":"MSFT","price":"411"}}}}"#,
        format_timestamp(base + Duration::seconds(40))
    );
    assert_eq!(
        p.process(&price_only, "pu").await.unwrap().status,
        "PROCESSED"
    );
    let view = latest_view(&tables).await;
    assert_eq!(view.len(), 1, "{view:?}");
    let (time, id, price) = &view[&("MSFT".to_string(), "trade#NASDAQ".to_string())];
    assert_eq!((id.as_str(), price.as_str()), ("new", "410.5"));
    assert_eq!(time, &format_timestamp(base + Duration::seconds(30)));
}

#[tokio::test]
async fn a_batch_writes_the_newest_of_each_key_and_view() {
    let tables = Tables::create().await;
    let p = tables.processor();
    let base = Utc::now() - Duration::minutes(2);
    // One key's quotes out of time order, and a trade of the same key in between.
    let seconds = [5i64, 9, 2, 7, 9, 1];
    let mut records = Vec::new();
    for (i, second) in seconds.iter().enumerate() {
        let spec = Spec {
            symbol: "IBM",
            exchange: "NYSE",
            trade: i == 3,
            second: *second,
            price: 200 + i as u32,
        };
        let data = envelope(&format!("e-{i:03}"), &spec, base);
        records.push(
            harness::stream::record(
                "shardId-000000000000",
                &format!("{i:056}"),
                "NYSE#IBM",
                data.as_bytes(),
                "arn:aws:kinesis:us-east-1:123456789012:stream/s",
                Utc::now(),
            )
            .unwrap(),
        );
    }
    let batch = harness::stream::batch(records);
    let (response, _) = p.process_batch(&batch, "inv", None).await;
    assert!(response.batch_item_failures.is_empty());
    let view = latest_view(&tables).await;
    let quote = &view[&("IBM".to_string(), "quote#NYSE".to_string())];
    // Seconds 9 tie between e-001 and e-004: the larger id wins.
    assert_eq!((quote.1.as_str(), quote.2.as_str()), ("e-004", "204.25"));
    let trade = &view[&("IBM".to_string(), "trade#NYSE".to_string())];
    assert_eq!((trade.1.as_str(), trade.2.as_str()), ("e-003", "203.5"));
    // The same batch again (a redelivery) changes nothing.
    let (response, _) = p.process_batch(&batch, "inv-2", None).await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(latest_view(&tables).await, view);
}
