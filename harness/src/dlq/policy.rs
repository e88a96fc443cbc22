//! What a redrive may publish, decided before anything is sent: from the stack's rules (would a
//! copy reach the processor at all?) and the processor's event age limit (would it be stored,
//! or rejected as too old?). A letter that fails either stays in the queue with the reason;
//! PutEvents would accept it and it would be gone.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use infra::model::Model;
use processor::event::MarketEvent;

use super::letter::Event;

/// Why a decodable event is not published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No rule of the stack matches it: PutEvents would accept it and no target would get it.
    NoRule(String),
    /// Its event time lies beyond the processor's age limit (or would before a copy arrives):
    /// the copy would be REJECTED, its letter deleted.
    TooOld(String),
}

#[derive(Debug, Clone)]
struct Rule {
    name: String,
    sources: Vec<String>,
    detail_types: Vec<String>,
    pattern: String,
}

/// The stack's rules and age limit, as the model of its config gives them.
#[derive(Debug, Clone)]
pub struct Policy {
    rules: Vec<Rule>,
    /// The processor's `MAX_EVENT_AGE_SECONDS`.
    pub max_event_age: Duration,
    /// How long a copy may take from PutEvents to the processor: the rule target's retry window
    /// and Lambda's asynchronous event age. An event this close to the age limit may cross it
    /// on the way.
    pub transit: Duration,
    /// The stack's `index_buckets`: the redrive finds its copies' audit entries through the
    /// bucketed event-type index.
    pub index_buckets: u16,
}

impl Policy {
    pub fn for_stack(model: &Model) -> Result<Policy> {
        let rules = model
            .rules
            .iter()
            .map(|rule| Rule {
                name: rule.name.clone(),
                sources: rule.sources.clone(),
                detail_types: rule.detail_types.clone(),
                pattern: rule.event_pattern_json(),
            })
            .collect();
        let longest_rule_window = model
            .rules
            .iter()
            .map(|r| r.target_max_event_age_seconds)
            .max()
            .unwrap_or(0);
        Ok(Policy {
            rules,
            max_event_age: Duration::from_secs(u64::from(max_event_age_seconds(model)?)),
            transit: Duration::from_secs(
                u64::from(longest_rule_window)
                    + u64::from(model.async_invoke.max_event_age_seconds),
            ),
            index_buckets: model.table_settings.index_buckets,
        })
    }

    /// `Ok` when a copy of `event` published now would reach the processor and be inside its
    /// time window.
    pub fn decide(&self, event: &Event, now: DateTime<Utc>) -> Result<(), Refusal> {
        self.route(event)?;
        self.age(event, now)
    }

    fn route(&self, event: &Event) -> Result<(), Refusal> {
        let matches = |rule: &Rule| {
            rule.sources.contains(&event.source) && rule.detail_types.contains(&event.detail_type)
        };
        if self.rules.iter().any(matches) {
            return Ok(());
        }
        let patterns = self
            .rules
            .iter()
            .map(|r| format!("{} {}", r.name, r.pattern))
            .collect::<Vec<_>>()
            .join("; ");
        let field = if self.rules.iter().any(|r| r.sources.contains(&event.source)) {
            format!("detail-type {:?}", event.detail_type)
        } else {
            format!("source {:?}", event.source)
        };
        Err(Refusal::NoRule(format!(
            "{field} matches no rule of the stack (rules: {patterns}); published, it would \
             reach no target"
        )))
    }

    fn age(&self, event: &Event, now: DateTime<Utc>) -> Result<(), Refusal> {
        let Some(time) = event_time(event) else {
            // Without a time the processor rejects it whatever its age: nothing to protect.
            return Ok(());
        };
        let age = (now - time).to_std().unwrap_or_default();
        if age + self.transit <= self.max_event_age {
            return Ok(());
        }
        Err(Refusal::TooOld(format!(
            "event time {} is {} old; the processor rejects events older than {} \
             ({} {}), and a copy may take up to {} to arrive; see docs/recovery.md to store it",
            processor::event::format_timestamp(time),
            span(age),
            span(self.max_event_age),
            names::ENV_MAX_EVENT_AGE_SECONDS,
            self.max_event_age.as_secs(),
            span(self.transit),
        )))
    }
}

/// The processor's event age limit on this stack: what its Lambda environment sets, else the
/// processor's default. The one place the redrive learns it.
pub fn max_event_age_seconds(model: &Model) -> Result<u32> {
    let env: HashMap<String, String> = model.function.env.clone().into_iter().collect();
    let settings = names::Settings::from_map(&env).context("the stack's Lambda environment")?;
    Ok(settings.max_event_age_seconds)
}

/// The event as the processor would store it, whatever its source or age: `None` when the
/// processor would reject it anyway.
pub fn as_stored(event: &Event) -> Option<MarketEvent> {
    let id = event.record_id()?;
    let detail: serde_json::Value = serde_json::from_str(&event.detail).ok()?;
    let envelope = serde_json::json!({
        "id": id,
        "source": event.source,
        "detail-type": event.detail_type,
        "time": event.time,
        "detail": detail,
    })
    .to_string();
    let rules = processor::event::Rules {
        accepted_sources: vec![event.source.clone()],
        max_future_skew_seconds: u32::MAX,
        max_event_age_seconds: u32::MAX,
        replay_max_age_seconds: None,
    };
    processor::event::decode(&envelope, &rules, Utc::now()).ok()
}

/// The time the processor judges the event by: the detail's `timestamp`, else the envelope's.
fn event_time(event: &Event) -> Option<DateTime<Utc>> {
    if let Some(stored) = as_stored(event) {
        return Some(stored.event_time);
    }
    let parse = |text: &str| {
        DateTime::parse_from_rfc3339(text)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    };
    serde_json::from_str::<serde_json::Value>(&event.detail)
        .ok()
        .and_then(|d| d.get("timestamp").and_then(|t| t.as_str()).and_then(parse))
        .or_else(|| event.time.as_deref().and_then(parse))
}

/// `8d 2h`, `45m`, `30s`: an age at the precision an operator reads it.
fn span(duration: Duration) -> String {
    let seconds = duration.as_secs();
    let (days, hours, minutes) = (
        seconds / 86_400,
        seconds % 86_400 / 3600,
        seconds % 3600 / 60,
    );
    match (days, hours, minutes) {
        (0, 0, 0) => format!("{seconds}s"),
        (0, 0, m) => format!("{m}m"),
        (0, h, m) => format!("{h}h {m}m"),
        (d, h, _) => format!("{d}d {h}h"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use infra::stack::StackConfig;

    fn dev() -> Policy {
        let config = StackConfig::load(&infra::workspace_root(), "dev").expect("dev stack");
        Policy::for_stack(&Model::from_stack(&config)).expect("policy")
    }

    fn event(source: &str, detail_type: &str, time: DateTime<Utc>) -> Event {
        Event {
            id: Some("ev".into()),
            redrive_of: None,
            resources: Vec::new(),
            source: source.into(),
            detail_type: detail_type.into(),
            time: Some(time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
            detail: r#"{"exchange":"NYSE","symbol":"IBM","bid":"1.5","ask":"1.6"}"#.into(),
        }
    }

    #[test]
    fn an_event_no_rule_matches_is_refused_naming_the_field_and_the_patterns() {
        let now = Utc::now();
        let policy = dev();
        assert_eq!(
            policy.decide(&event("market.data", "Market Quote", now), now),
            Ok(())
        );
        let Err(Refusal::NoRule(why)) =
            policy.decide(&event("legacy.feed", "Market Quote", now), now)
        else {
            panic!("an unknown source must be refused");
        };
        assert!(
            why.starts_with(r#"source "legacy.feed" matches no rule"#),
            "{why}"
        );
        assert!(why.contains(r#""source":["market.data"]"#), "{why}");
        assert!(why.contains("trade-events-dev"), "{why}");
        let Err(Refusal::NoRule(why)) =
            policy.decide(&event("market.data", "Order Book", now), now)
        else {
            panic!("an unknown detail-type must be refused");
        };
        assert!(why.starts_with(r#"detail-type "Order Book""#), "{why}");
    }

    #[test]
    fn an_event_beyond_the_age_limit_or_close_to_it_is_refused() {
        let now = Utc::now();
        let policy = dev();
        assert_eq!(
            policy.max_event_age,
            Duration::from_secs(u64::from(names::Settings::DEFAULT_MAX_EVENT_AGE_SECONDS))
        );
        let day = chrono::Duration::days(1);
        assert_eq!(
            policy.decide(&event("market.data", "Market Quote", now - day), now),
            Ok(())
        );
        let Err(Refusal::TooOld(why)) =
            policy.decide(&event("market.data", "Market Quote", now - day * 8), now)
        else {
            panic!("an event of 8 days must be refused");
        };
        assert!(why.contains("is 8d 0h old"), "{why}");
        assert!(why.contains("MAX_EVENT_AGE_SECONDS 604800"), "{why}");
        assert!(why.contains("docs/recovery.md"), "{why}");
        // Inside the limit now, past it by the time Lambda's retries of a copy are over.
        let close = now - day * 7 + chrono::Duration::minutes(30);
        assert!(matches!(
            policy.decide(&event("market.data", "Market Quote", close), now),
            Err(Refusal::TooOld(_))
        ));
    }

    #[test]
    fn the_detail_timestamp_is_the_event_time() {
        let now = Utc::now();
        let mut old = event("market.data", "Market Quote", now);
        old.detail = format!(
            r#"{{"exchange":"NYSE","symbol":"IBM","bid":"1.5","ask":"1.6","timestamp":"{}"}}"#,
            (now - chrono::Duration::days(9)).to_rfc3339()
        );
        assert!(matches!(dev().decide(&old, now), Err(Refusal::TooOld(_))));
    }
}
