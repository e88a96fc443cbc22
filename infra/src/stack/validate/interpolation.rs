//! `$` in any string of a stack file. Every string reaches the rendered program or its stack
//! file, and Pulumi YAML reads `${...}` in any string as an interpolation: a tag value `${x}`
//! would become a reference, `$${x}` a different literal. Walking the document rather than the
//! typed config keeps a field added later from slipping past.

use serde_yaml::Value;

use crate::stack::Problem;

/// One problem per key or value of `document` that contains `$`, with its field path.
pub fn interpolation(document: &Value) -> Vec<Problem> {
    let mut problems = Vec::new();
    walk(document, "", &mut problems);
    problems
}

fn walk(value: &Value, path: &str, problems: &mut Vec<Problem>) {
    match value {
        Value::String(text) if text.contains('$') => problems.push(Problem {
            path: path.to_string(),
            message: format!("{text:?} {REASON}"),
        }),
        Value::Sequence(items) => {
            for (i, item) in items.iter().enumerate() {
                walk(item, &format!("{path}[{i}]"), problems);
            }
        }
        Value::Mapping(entries) => {
            for (key, item) in entries {
                let Some(key) = key.as_str() else { continue };
                let item_path = if path.is_empty() {
                    key.to_string()
                } else {
                    format!("{path}.{key}")
                };
                if key.contains('$') {
                    problems.push(Problem {
                        path: item_path.clone(),
                        message: format!("key {key:?} {REASON}"),
                    });
                }
                walk(item, &item_path, problems);
            }
        }
        Value::Tagged(tagged) => walk(&tagged.value, path, problems),
        _ => {}
    }
}

const REASON: &str = "contains '$', which Pulumi reads as the start of an interpolation (${...}); allowed any text without '$'";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_string_with_a_dollar_is_named_by_its_path() {
        let document: Value = serde_yaml::from_str(
            "events: {accepted_sources: [ok, 'a${b}']}\ntags: {'K$': v, Team: '$x'}\nregion: us-east-1",
        )
        .expect("yaml");
        let paths: Vec<String> = interpolation(&document)
            .into_iter()
            .map(|p| p.path)
            .collect();
        assert_eq!(
            paths,
            ["events.accepted_sources[1]", "tags.K$", "tags.Team"]
        );
    }
}
