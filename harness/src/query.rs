//! Reading the indexes. Each index partition key is a value with a bucket suffix (`AAPL#03`,
//! see ARCHITECTURE.md, "Index keys"), so one value's items lie under as many keys as the stack
//! has buckets: a query reads every bucket at once, pages through each, and merges them in
//! time order. Everything that reads an index goes through here, and the bucket count comes
//! from the stack's model, never from the caller's memory.
//!
//! Also `cargo xtask query`, the same reading against a deployed stack.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context, Result, bail};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use tokio::task::JoinSet;

use crate::aws::deployed::{self, Source};
use crate::aws::sdk_error;
use infra::model::Model;
use infra::outputs::Outputs;
use infra::stack::StackConfig;

pub type Item = HashMap<String, AttributeValue>;

/// The order of the merged items, by event time (the indexes' sort key).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    OldestFirst,
    NewestFirst,
}

/// A filter applied to every bucket's query. Its placeholders must not be the key condition's
/// own: `#qk`, `:qk`, `#qt`, `:qfrom`, `:qto`.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub expression: String,
    pub names: Vec<(String, String)>,
    pub values: Vec<(String, AttributeValue)>,
}

/// The items of one value of one index, optionally within a time range.
#[derive(Debug, Clone)]
pub struct IndexQuery {
    table: String,
    index: &'static names::IndexSchema,
    value: String,
    buckets: u16,
    from: Option<String>,
    to: Option<String>,
    filter: Option<Filter>,
    order: Order,
    limit: Option<usize>,
}

impl IndexQuery {
    /// Every item of `table` whose `index.bucketed` attribute is `value`, oldest first, over
    /// the stack's `buckets`.
    pub fn new(
        table: &str,
        index: &'static names::IndexSchema,
        value: &str,
        buckets: u16,
    ) -> IndexQuery {
        IndexQuery {
            table: table.to_string(),
            index,
            value: value.to_string(),
            buckets,
            from: None,
            to: None,
            filter: None,
            order: Order::OldestFirst,
            limit: None,
        }
    }

    /// Items whose event time (the index's sort key, RFC 3339 to the millisecond) is at or
    /// after `from`.
    pub fn since(mut self, from: impl Into<String>) -> Self {
        self.from = Some(from.into());
        self
    }

    /// ... and at or before `to`.
    pub fn until(mut self, to: impl Into<String>) -> Self {
        self.to = Some(to.into());
        self
    }

    pub fn filter(mut self, filter: Filter) -> Self {
        self.filter = Some(filter);
        self
    }

    pub fn order(mut self, order: Order) -> Self {
        self.order = order;
        self
    }

    /// At most `limit` items: the first ones in the query's order over all buckets.
    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = Some(limit);
        self
    }

    /// Queries every bucket concurrently, each through all its pages (or until it alone
    /// holds `limit` items, which is all the merge can take from it), and merges them.
    pub async fn run(&self, client: &Client) -> Result<Vec<Item>> {
        let mut tasks = JoinSet::new();
        for (bucket, key) in names::bucket_keys(&self.value, self.buckets).enumerate() {
            let request = self.request(client, key);
            let limit = self.limit;
            tasks.spawn(async move {
                let mut items = Vec::new();
                let mut pages = request.into_paginator().items().send();
                while let Some(item) = pages.next().await {
                    items.push(item.map_err(|e| sdk_error("Query", e))?);
                    if limit.is_some_and(|limit| items.len() >= limit) {
                        break;
                    }
                }
                anyhow::Ok((bucket, items))
            });
        }
        let mut runs = Vec::with_capacity(usize::from(self.buckets.max(1)));
        while let Some(joined) = tasks.join_next().await {
            runs.push(
                joined
                    .context("an index query task panicked")?
                    .with_context(|| {
                        format!(
                            "querying {} of {} for {:?}",
                            self.index.name, self.table, self.value
                        )
                    })?,
            );
        }
        // Bucket order first, so that items of the same millisecond always come out the same
        // way; the sort is stable, and it merges the sorted runs rather than sorting anew.
        runs.sort_by_key(|(bucket, _)| *bucket);
        let mut items: Vec<Item> = runs.into_iter().flat_map(|(_, items)| items).collect();
        let range_key = self.index.range_key;
        items.sort_by(|a, b| {
            let by_time = text(a, range_key).cmp(&text(b, range_key));
            match self.order {
                Order::OldestFirst => by_time,
                Order::NewestFirst => by_time.reverse(),
            }
        });
        if let Some(limit) = self.limit {
            items.truncate(limit);
        }
        Ok(items)
    }

    fn request(
        &self,
        client: &Client,
        key: String,
    ) -> aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder {
        let mut condition = "#qk = :qk".to_string();
        let mut request = client
            .query()
            .table_name(&self.table)
            .index_name(self.index.name)
            .expression_attribute_names("#qk", self.index.hash_key)
            .expression_attribute_values(":qk", AttributeValue::S(key))
            .scan_index_forward(self.order == Order::OldestFirst);
        if self.from.is_some() || self.to.is_some() {
            request = request.expression_attribute_names("#qt", self.index.range_key);
        }
        match (&self.from, &self.to) {
            (Some(from), Some(to)) => {
                condition.push_str(" AND #qt BETWEEN :qfrom AND :qto");
                request = request
                    .expression_attribute_values(":qfrom", AttributeValue::S(from.clone()))
                    .expression_attribute_values(":qto", AttributeValue::S(to.clone()));
            }
            (Some(from), None) => {
                condition.push_str(" AND #qt >= :qfrom");
                request =
                    request.expression_attribute_values(":qfrom", AttributeValue::S(from.clone()));
            }
            (None, Some(to)) => {
                condition.push_str(" AND #qt <= :qto");
                request =
                    request.expression_attribute_values(":qto", AttributeValue::S(to.clone()));
            }
            (None, None) => {}
        }
        if let Some(filter) = &self.filter {
            request = request.filter_expression(&filter.expression);
            for (name, attribute) in &filter.names {
                request = request.expression_attribute_names(name, attribute);
            }
            for (name, value) in &filter.values {
                request = request.expression_attribute_values(name, value.clone());
            }
        }
        if let Some(limit) = self.limit {
            // Pages the size of what may be kept: a "latest five" must not read a megabyte from
            // every bucket first.
            request = request.limit(i32::try_from(limit.clamp(1, 1000)).unwrap_or(1000));
        }
        request.key_condition_expression(condition)
    }
}

fn text<'a>(item: &'a Item, key: &str) -> Option<&'a str> {
    match item.get(key) {
        Some(AttributeValue::S(value)) => Some(value),
        _ => None,
    }
}

/// The model of the stack `outputs` belong to: `stack` when given, else the stack file whose
/// model names the same market-data table. Queries take the stack's bucket count from it.
pub fn stack_model(root: &Path, stack: Option<&str>, outputs: &Outputs) -> Result<Model> {
    let load = |name: &str| -> Result<Model> {
        let config = StackConfig::load(root, name)
            .map_err(|e| anyhow::anyhow!("{e}"))
            .with_context(|| format!("loading the stack config {name}"))?;
        Ok(Model::from_stack(&config))
    };
    if let Some(stack) = stack {
        return load(stack);
    }
    let stacks = infra::stack::list_stacks(root).map_err(|e| anyhow::anyhow!("{e}"))?;
    for name in &stacks {
        if let Ok(model) = load(name)
            && model.tables[0].name == outputs.market_data_table_name
        {
            return Ok(model);
        }
    }
    bail!(
        "no stack under stacks/ ({}) has the table {}: the index bucket count comes from the \
         stack's config, so name the stack (--stack S)",
        stacks.join(", "),
        outputs.market_data_table_name
    )
}

/// What `cargo xtask query` reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Args {
    pub symbol: Option<String>,
    pub exchange: Option<String>,
    /// RFC 3339 lower bound on the event time.
    pub since: Option<String>,
    pub limit: usize,
    /// The latest view of this symbol instead of its records.
    pub latest: Option<String>,
}

/// The newest records of a symbol (through SymbolIndex) or an exchange (ExchangeIndex),
/// `limit` at most; with both, the symbol's records on that exchange.
pub async fn records(
    client: &Client,
    outputs: &Outputs,
    buckets: u16,
    args: &Args,
    event_type: Option<&str>,
) -> Result<Vec<Item>> {
    let (index, value) = match (&args.symbol, &args.exchange) {
        (Some(symbol), _) => (&names::SYMBOL_INDEX_SCHEMA, symbol),
        (None, Some(exchange)) => (&names::EXCHANGE_INDEX_SCHEMA, exchange),
        (None, None) => bail!("give --symbol or --exchange"),
    };
    let mut query = IndexQuery::new(&outputs.market_data_table_name, index, value, buckets)
        .order(Order::NewestFirst)
        .limit(args.limit.max(1));
    if let Some(since) = &args.since {
        let since = chrono::DateTime::parse_from_rfc3339(since).with_context(|| {
            format!("--since {since:?} is not an RFC 3339 date-time such as 2026-11-25T14:00:00Z")
        })?;
        query = query.since(processor::event::format_timestamp(
            since.with_timezone(&chrono::Utc),
        ));
    }
    let mut filter = Filter::default();
    let mut terms = Vec::new();
    if let (Some(_), Some(exchange)) = (&args.symbol, &args.exchange) {
        terms.push("#x = :x");
        filter.names.push(("#x".into(), names::EXCHANGE.into()));
        filter
            .values
            .push((":x".into(), AttributeValue::S(exchange.clone())));
    }
    if let Some(event_type) = event_type {
        terms.push("#e = :e");
        filter.names.push(("#e".into(), names::EVENT_TYPE.into()));
        filter
            .values
            .push((":e".into(), AttributeValue::S(event_type.to_string())));
    }
    if !terms.is_empty() {
        filter.expression = terms.join(" AND ");
        query = query.filter(filter);
    }
    query.run(client).await
}

/// The latest view of `symbol`: its items in the latest-price table, one per exchange and view
/// (`trade#NASDAQ`, `quote#NASDAQ`), in view order.
pub async fn latest(client: &Client, table: &str, symbol: &str) -> Result<Vec<Item>> {
    let mut items = Vec::new();
    let mut pages = client
        .query()
        .table_name(table)
        .key_condition_expression("#s = :s")
        .expression_attribute_names("#s", names::LATEST_SCHEMA.hash_key)
        .expression_attribute_values(":s", AttributeValue::S(symbol.to_string()))
        .into_paginator()
        .items()
        .send();
    while let Some(item) = pages.next().await {
        items.push(item.map_err(|e| sdk_error("Query", e))?);
    }
    Ok(items)
}

/// A price as stored, and the exchange that quotes it.
pub type Quoted = Option<(String, String)>;

/// The best bid and ask over a symbol's exchanges: the highest bid and the lowest ask, each with
/// its exchange, compared as exact decimals.
pub fn best_quote(items: &[Item]) -> (Quoted, Quoted) {
    let decimal = |item: &Item, key: &str| match item.get(key) {
        Some(AttributeValue::N(n)) => n
            .parse::<rust_decimal::Decimal>()
            .ok()
            .map(|d| (d, n.clone())),
        _ => None,
    };
    let mut bid: Option<(rust_decimal::Decimal, String, String)> = None;
    let mut ask: Option<(rust_decimal::Decimal, String, String)> = None;
    for item in items {
        if text(item, names::EVENT_TYPE) != Some("quote") {
            continue;
        }
        let exchange = text(item, names::EXCHANGE).unwrap_or_default().to_string();
        if let Some((d, shown)) = decimal(item, names::BID)
            && bid.as_ref().is_none_or(|(best, _, _)| d > *best)
        {
            bid = Some((d, shown, exchange.clone()));
        }
        if let Some((d, shown)) = decimal(item, names::ASK)
            && ask.as_ref().is_none_or(|(best, _, _)| d < *best)
        {
            ask = Some((d, shown, exchange));
        }
    }
    (
        bid.map(|(_, shown, exchange)| (shown, exchange)),
        ask.map(|(_, shown, exchange)| (shown, exchange)),
    )
}

/// A string or number attribute as text; empty when absent.
pub fn shown(item: &Item, key: &str) -> String {
    match item.get(key) {
        Some(AttributeValue::S(s)) | Some(AttributeValue::N(s)) => s.clone(),
        _ => String::new(),
    }
}

/// The latest view as the commands print it.
pub fn print_latest(symbol: &str, items: &[Item]) {
    let get = shown;
    println!("latest for {symbol}:");
    println!(
        "  {:<16} {:<25} {:>14} {:>8} {:>14} {:>14}  event",
        "view", "event time", "price", "volume", "bid", "ask"
    );
    for item in items {
        println!(
            "  {:<16} {:<25} {:>14} {:>8} {:>14} {:>14}  {}",
            get(item, names::VIEW),
            get(item, names::LATEST_EVENT_TIME),
            get(item, names::PRICE),
            get(item, names::VOLUME),
            get(item, names::BID),
            get(item, names::ASK),
            get(item, names::EVENT_ID),
        );
    }
    if items.is_empty() {
        println!("  (nothing stored for {symbol})");
        return;
    }
    if let (Some((bid, bid_at)), Some((ask, ask_at))) = best_quote(items) {
        println!("  best bid {bid} ({bid_at}), best ask {ask} ({ask_at})");
    }
}

/// What a query by exchange cannot show on `model`'s stack: the records its stream path
/// stored, which are in SymbolIndex only (`names::Ingest`). `None` when it misses nothing.
pub fn exchange_note(model: &Model, args: &Args) -> Option<String> {
    let kinesis = model.kinesis.as_ref()?;
    if args.symbol.is_some() || args.exchange.is_none() || kinesis.publish.is_empty() {
        return None;
    }
    let classes: Vec<&str> = kinesis.publish.iter().map(|c| c.as_str()).collect();
    Some(format!(
        "note: this stack streams {}; records that came by the stream are in {} only, so a \
         query by exchange lists the bus path's records (query those by --symbol, with \
         --exchange to filter)",
        classes.join(" and "),
        names::SYMBOL_INDEX
    ))
}

/// `cargo xtask query --stack S`: a deployed stack's newest records of a symbol or exchange,
/// read over the buckets of the stack's config.
pub async fn run(root: &Path, stack: &str, args: &Args) -> Result<()> {
    let (outputs, _) = deployed::load(root, &Source::Stack(stack.to_string())).await?;
    let model = stack_model(root, Some(stack), &outputs)?;
    let config = crate::aws::sdk_config(&outputs).await;
    let client = Client::new(&config);
    if let Some(symbol) = &args.latest {
        let items = latest(&client, &outputs.latest_table_name, symbol).await?;
        print_latest(symbol, &items);
        return Ok(());
    }
    let rows = records(
        &client,
        &outputs,
        model.table_settings.index_buckets,
        args,
        None,
    )
    .await?;
    if let Some(note) = exchange_note(&model, args) {
        eprintln!("{note}");
    }
    crate::local::print_rows(&rows);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(timestamp: &str, id: &str) -> Item {
        HashMap::from([
            (
                names::TIMESTAMP.to_string(),
                AttributeValue::S(timestamp.into()),
            ),
            (names::EVENT_ID.to_string(), AttributeValue::S(id.into())),
        ])
    }

    fn ids(items: &[Item]) -> Vec<&str> {
        items
            .iter()
            .filter_map(|i| text(i, names::EVENT_ID))
            .collect()
    }

    /// Against moto: items spread over the buckets come back merged, in either order, with the
    /// limit applied to the merge and a time range and filter applied to every bucket.
    #[tokio::test]
    async fn every_bucket_is_read_and_merged_in_time_order() {
        let moto = crate::moto::shared();
        let sdk = crate::aws::local_sdk_config(&moto.endpoint).await;
        let client = Client::new(&sdk);
        let table = format!("market-data-q{}", uuid::Uuid::new_v4().simple());
        crate::local::provision::create_table(
            &client,
            &infra::model::market_data_table(table.clone()),
        )
        .await
        .expect("table");
        let buckets = 4;
        let mut written = Vec::new();
        for n in 0..40 {
            let id = format!("ev-{n:02}");
            let timestamp = format!("2026-11-25T14:00:{:02}.000Z", 59 - n);
            let mut record = item(&timestamp, &id);
            record.insert(names::SYMBOL.into(), AttributeValue::S("AAPL".into()));
            record.insert(
                names::EXCHANGE.into(),
                AttributeValue::S(if n % 2 == 0 { "NASDAQ" } else { "BATS" }.into()),
            );
            processor::item::add_index_keys(
                &mut record,
                &names::MARKET_DATA_SCHEMA,
                names::MARKET_DATA_SCHEMA.indexes,
                buckets,
            );
            client
                .put_item()
                .table_name(&table)
                .set_item(Some(record.clone()))
                .send()
                .await
                .expect("put");
            written.push(record);
        }
        let used: std::collections::BTreeSet<_> = written
            .iter()
            .filter_map(|r| text(r, names::SYMBOL_BUCKET))
            .collect();
        assert_eq!(used.len(), usize::from(buckets), "{used:?}");

        let query = IndexQuery::new(&table, &names::SYMBOL_INDEX_SCHEMA, "AAPL", buckets);
        let all = query.clone().run(&client).await.expect("query");
        let expected: Vec<String> = (0..40).rev().map(|n| format!("ev-{n:02}")).collect();
        assert_eq!(ids(&all), expected);

        let newest = query
            .clone()
            .order(Order::NewestFirst)
            .limit(5)
            .run(&client)
            .await
            .expect("query");
        assert_eq!(ids(&newest), ["ev-00", "ev-01", "ev-02", "ev-03", "ev-04"]);

        let ranged = query
            .clone()
            .since("2026-11-25T14:00:30.000Z")
            .until("2026-11-25T14:00:33.000Z")
            .filter(Filter {
                expression: "#x = :x".into(),
                names: vec![("#x".into(), names::EXCHANGE.into())],
                values: vec![(":x".into(), AttributeValue::S("NASDAQ".into()))],
            })
            .run(&client)
            .await
            .expect("query");
        assert_eq!(ids(&ranged), ["ev-28", "ev-26"]);

        // One bucket fewer than the items were written with misses some of them: why the count
        // may never shrink.
        let fewer = IndexQuery::new(&table, &names::SYMBOL_INDEX_SCHEMA, "AAPL", buckets - 1)
            .run(&client)
            .await
            .expect("query");
        assert!(fewer.len() < all.len());

        let by_exchange = IndexQuery::new(&table, &names::EXCHANGE_INDEX_SCHEMA, "BATS", buckets)
            .order(Order::NewestFirst)
            .run(&client)
            .await
            .expect("query");
        assert_eq!(by_exchange.len(), 20);
        assert_eq!(ids(&by_exchange)[..2], ["ev-01", "ev-03"]);
    }

    #[test]
    fn a_query_by_exchange_says_what_the_stream_left_out_of_its_index() {
        let root = infra::workspace_root();
        let model = |stack: &str| {
            let config = StackConfig::load(&root, stack).expect("a shipped stack");
            Model::from_stack(&config)
        };
        let args = |symbol: Option<&str>, exchange: Option<&str>| Args {
            symbol: symbol.map(String::from),
            exchange: exchange.map(String::from),
            since: None,
            limit: 5,
            latest: None,
        };
        let note = exchange_note(&model("prod"), &args(None, Some("NASDAQ"))).expect("a note");
        assert!(note.contains("streams quote"), "{note}");
        assert!(note.contains(names::SYMBOL_INDEX), "{note}");
        // By symbol nothing is missing; and dev has no stream.
        assert_eq!(
            exchange_note(&model("prod"), &args(Some("AAPL"), Some("NASDAQ"))),
            None
        );
        assert_eq!(
            exchange_note(&model("dev"), &args(None, Some("NASDAQ"))),
            None
        );
    }
}
