//! `events.accepted_sources` and `events.publishers`: what the bus accepts, and from whom.

use std::ops::RangeInclusive;

use super::Checks;
use crate::stack::principal::Principal;

const SOURCE_CHARS: RangeInclusive<usize> = 1..=256;

impl Checks {
    pub(super) fn sources(&mut self, sources: &[String]) {
        let path = "events.accepted_sources";
        if sources.is_empty() {
            self.push(path, "empty; allowed one or more event sources");
        }
        for (i, source) in sources.iter().enumerate() {
            let item = format!("{path}[{i}]");
            let len = source.chars().count();
            if !SOURCE_CHARS.contains(&len) {
                self.push(
                    &item,
                    format!("{source:?} is {len} characters; allowed 1..=256"),
                );
            } else if source.contains(',') || source.chars().any(char::is_whitespace) {
                // The processor receives the list comma-separated in ACCEPTED_SOURCES.
                self.push(
                    &item,
                    format!("{source:?} contains a comma or whitespace; allowed neither"),
                );
            } else if source.starts_with("aws.") {
                self.push(
                    &item,
                    format!("{source:?} starts with \"aws.\", which only AWS services may send; allowed a custom source"),
                );
            }
            if sources[..i].contains(source) {
                self.push(
                    &item,
                    format!("{source:?} is listed twice; allowed each source once"),
                );
            }
        }
    }

    /// Each entry becomes a Principal of the bus policy and a value its Deny statements compare
    /// with, so it must be exactly an account id or a role or user ARN: no pattern, no root.
    pub(super) fn publishers(&mut self, publishers: &[String]) {
        let path = "events.publishers";
        for (i, publisher) in publishers.iter().enumerate() {
            let item = format!("{path}[{i}]");
            if Principal::parse(publisher).is_none() {
                self.push(
                    &item,
                    format!("{publisher:?} is not an account id or an IAM role or user ARN; allowed 12 digits, or arn:<partition>:iam::<12 digits>:role/[path/]name or :user/[path/]name"),
                );
            }
            if publishers[..i].contains(publisher) {
                self.push(
                    &item,
                    format!("{publisher:?} is listed twice; allowed each publisher once"),
                );
            }
        }
    }
}
