//! Any bytes into the event decoder and validator, and every accepted event into its items.
//! Nothing may panic, and an accepted price must survive as the same exact decimal.
#![no_main]

use libfuzzer_sys::fuzz_target;
use processor::event::{Body, Rules, decode};
use processor::item;

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    let rules = Rules {
        accepted_sources: vec!["market.data".into()],
        max_future_skew_seconds: 300,
        max_event_age_seconds: 7 * 86_400,
        // The bus's rules, so that `replay-name` and its age rule are reached too.
        replay_max_age_seconds: Some(29 * 86_400),
    };
    let now = chrono::DateTime::from_timestamp(1_764_072_000, 0).unwrap_or_default();
    match decode(raw, &rules, now) {
        Ok(event) => {
            let key = item::dedupe_key(&event);
            let record = item::record(&event, key.as_deref(), now, "fuzz", 30);
            let _ = item::replay_key(&event);
            let _ = item::latest(&event, 30);
            if let Body::Trade(trade) = &event.body {
                let stored = match record.get("price") {
                    Some(aws_sdk_dynamodb::types::AttributeValue::N(text)) => text.clone(),
                    other => panic!("price stored as {other:?}"),
                };
                assert_eq!(stored.parse::<rust_decimal::Decimal>().ok(), Some(trade.price));
            }
        }
        Err(rejection) => {
            assert!(!rejection.violations.is_empty());
            let _ = item::audit_for_rejection(
                &rejection,
                raw,
                &item::AuditContext {
                    request_id: "fuzz",
                    environment: "fuzz",
                    processing_ms: 0.0,
                    retention_days: 30,
                },
            );
        }
    }
});
