//! The Pulumi AWS provider schema the rendered program is checked against, without the Pulumi
//! CLI or the provider plugin.
//!
//! The copy under `infra/schema/pulumi-aws/` is a subset of the provider's
//! package schema for the resource types this project uses; its README says where it came from.
//! It is compiled in, so `cargo xtask render` needs no file besides the stacks.

mod check;
#[cfg(test)]
mod check_tests;
pub mod expr;

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;

pub use check::check_program;

const BUNDLED: &str = include_str!("../../schema/pulumi-aws/schema-subset.json");

/// The parts of a Pulumi package schema a program check needs.
#[derive(Debug, Deserialize)]
pub struct Schema {
    /// Provider version the schema describes; the program pins the provider to it.
    pub version: String,
    resources: BTreeMap<String, ResourceSchema>,
    /// Data sources a program calls with `fn::invoke`.
    #[serde(default)]
    functions: BTreeMap<String, FunctionSchema>,
    types: BTreeMap<String, TypeSchema>,
}

#[derive(Debug, Deserialize)]
pub struct FunctionSchema {
    #[serde(default)]
    inputs: ObjectShape,
    #[serde(default)]
    outputs: ObjectShape,
}

#[derive(Debug, Default, Deserialize)]
struct ObjectShape {
    #[serde(default)]
    properties: BTreeMap<String, PropSpec>,
    #[serde(default)]
    required: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceSchema {
    #[serde(default)]
    input_properties: BTreeMap<String, PropSpec>,
    #[serde(default)]
    required_inputs: Vec<String>,
    /// Outputs. `id` and `urn` exist on every resource without being listed.
    #[serde(default)]
    properties: BTreeMap<String, PropSpec>,
}

impl ResourceSchema {
    pub fn has_input(&self, name: &str) -> bool {
        self.input_properties.contains_key(name)
    }
}

/// A property's type spec: `type`, `items`, `additionalProperties`, `$ref`, `oneOf`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct PropSpec {
    #[serde(rename = "type")]
    ty: Option<String>,
    items: Option<Box<PropSpec>>,
    #[serde(rename = "additionalProperties")]
    additional_properties: Option<Box<PropSpec>>,
    #[serde(rename = "$ref")]
    reference: Option<String>,
    #[serde(rename = "oneOf", default)]
    one_of: Vec<PropSpec>,
    #[serde(rename = "deprecationMessage")]
    deprecation: Option<String>,
    /// The bridge's "string or resource" alternative: the value is a string (ARN or name).
    #[serde(rename = "x-resourceReference", default)]
    resource_reference: bool,
}

/// An object type (`properties`, `required`) or an enum (`type: string` plus `enum`).
#[derive(Debug, Deserialize)]
struct TypeSchema {
    #[serde(rename = "type")]
    ty: Option<String>,
    #[serde(default)]
    properties: BTreeMap<String, PropSpec>,
    #[serde(default)]
    required: Vec<String>,
}

impl Schema {
    /// The schema compiled into this binary.
    pub fn bundled() -> Result<Schema, serde_json::Error> {
        serde_json::from_str(BUNDLED)
    }

    /// Resolves a full token (`aws:lambda/function:Function`) or the short form Pulumi YAML also
    /// accepts (`aws:lambda:Function`, module and type matched case-insensitively).
    pub fn resource(&self, token: &str) -> Option<(&str, &ResourceSchema)> {
        lookup(&self.resources, token)
    }

    /// The same for a function: `aws:index/getCallerIdentity:getCallerIdentity` or
    /// `aws:getCallerIdentity`.
    pub fn function(&self, token: &str) -> Option<(&str, &FunctionSchema)> {
        lookup(&self.functions, token)
    }

    fn object_type(&self, reference: &str) -> Option<&TypeSchema> {
        reference
            .strip_prefix("#/types/")
            .and_then(|token| self.types.get(token))
    }
}

/// Pulumi YAML's token resolution (`packages.go`): a full token as is; `pkg:module:Name` as
/// `pkg:module/name:Name` matched case-insensitively; `pkg:Name` as `pkg:index:Name`.
fn lookup<'m, T>(map: &'m BTreeMap<String, T>, token: &str) -> Option<(&'m str, &'m T)> {
    if let Some((key, item)) = map.get_key_value(token) {
        return Some((key.as_str(), item));
    }
    let parts: Vec<&str> = token.split(':').collect();
    let (package, module, name) = match parts.as_slice() {
        [package, module, name] if !module.contains('/') => (*package, *module, *name),
        [package, name] => (*package, "index", *name),
        _ => return None,
    };
    map.iter().find_map(|(key, item)| {
        let mut full = key.split(':');
        let (Some(p), Some(m), Some(n)) = (full.next(), full.next(), full.next()) else {
            return None;
        };
        let (m_module, m_type) = m.split_once('/').unwrap_or((m, ""));
        let matches = p == package
            && m_module.eq_ignore_ascii_case(module)
            && m_type.eq_ignore_ascii_case(name)
            && n.eq_ignore_ascii_case(name);
        matches.then_some((key.as_str(), item))
    })
}

/// A problem in a rendered program, at a dotted path such as
/// `resources.tradeEventsTarget.properties.retryPolicy.maximum_event_age`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub path: String,
    pub message: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// "known: a, b" for short lists, otherwise the closest names, so a typo points at its fix.
pub(crate) fn suggest<'a>(wrong: &str, known: impl IntoIterator<Item = &'a str>) -> String {
    const LIST_ALL_UP_TO: usize = 15;
    let mut known: Vec<&str> = known.into_iter().collect();
    known.sort_unstable();
    if known.len() <= LIST_ALL_UP_TO {
        return format!("known: {}", known.join(", "));
    }
    let target = normalise(wrong);
    let mut scored: Vec<(usize, &str)> = known
        .iter()
        .map(|k| {
            let candidate = normalise(k);
            // One name inside the other (`functionArn` for `arn`) is as good as a typo.
            let contained = !candidate.is_empty()
                && (candidate.contains(&target) || target.contains(&candidate));
            let score = if contained {
                1.min(distance(&target, &candidate))
            } else {
                distance(&target, &candidate)
            };
            (score, *k)
        })
        .collect();
    scored.sort();
    let close: Vec<&str> = scored
        .iter()
        .filter(|(score, _)| *score <= target.len() / 2)
        .take(3)
        .map(|(_, k)| *k)
        .collect();
    if close.is_empty() {
        format!("{} known, none close", known.len())
    } else {
        format!("did you mean {}? ({} known)", close.join(", "), known.len())
    }
}

fn normalise(name: &str) -> String {
    name.chars()
        .filter(|c| *c != '_' && *c != '-')
        .flat_map(char::to_lowercase)
        .collect()
}

/// Levenshtein distance.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitute = previous[j] + usize::from(ca != *cb);
            current.push(substitute.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous.last().copied().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundled_schema_loads_and_resolves_short_tokens() {
        let schema = Schema::bundled().expect("bundled schema parses");
        assert_eq!(schema.version, "7.48.0");
        let (full, _) = schema.resource("aws:lambda:Function").expect("short form");
        assert_eq!(full, "aws:lambda/function:Function");
        let (full, _) = schema
            .resource("aws:cloudwatch:EventTarget")
            .expect("short form");
        assert_eq!(full, "aws:cloudwatch/eventTarget:EventTarget");
        assert!(schema.resource("aws:lambda:Functions").is_none());
        let (full, _) = schema
            .function("aws:getCallerIdentity")
            .expect("short form");
        assert_eq!(full, "aws:index/getCallerIdentity:getCallerIdentity");
        assert!(schema.function("aws:getCallerIdentities").is_none());
        assert!(schema.resource("aws:s3/bucket:Bucket").is_none());
    }

    #[test]
    fn suggestions_list_short_sets_and_rank_long_ones() {
        assert_eq!(
            suggest(
                "maximum_event_age",
                ["maximumRetryAttempts", "maximumEventAgeInSeconds"]
            ),
            "known: maximumEventAgeInSeconds, maximumRetryAttempts"
        );
        let many: Vec<String> = (0..20).map(|i| format!("property{i:02}")).collect();
        let mut known: Vec<&str> = many.iter().map(String::as_str).collect();
        known.push("memorySize");
        assert_eq!(
            suggest("memory_size", known.clone()),
            "did you mean memorySize? (21 known)"
        );
        assert_eq!(suggest("zzzzzzzzzzzz", known), "21 known, none close");
    }
}
