//! Rendered programs of the committed stacks, and ways to break them, for tests of the renderer,
//! the schema check and the policy rules.

use std::collections::BTreeMap;

use serde_yaml::Value;

use super::{Rendered, config_entries, render_stack};
use crate::schema::Schema;
pub use crate::workspace_root;

pub fn schema() -> Schema {
    Schema::bundled().expect("bundled schema parses")
}

pub fn rendered(stack: &str) -> Rendered {
    render_stack(&workspace_root(), stack, &schema())
        .unwrap_or_else(|err| panic!("{stack}: {err:#}"))
}

/// The program of `stack`, parsed back from the text Pulumi receives.
pub fn program(stack: &str) -> Value {
    serde_yaml::from_str(&rendered(stack).program).expect("rendered program parses")
}

/// The stack's project config values, unprefixed.
pub fn config(stack: &str) -> BTreeMap<String, Value> {
    config_entries(&rendered(stack).model)
        .into_iter()
        .map(|e| (e.key.to_string(), e.value))
        .collect()
}

/// The value at a dotted path (`resources.x.properties.list.0.name`).
pub fn at<'v>(program: &'v mut Value, path: &str) -> &'v mut Value {
    let mut current = program;
    for segment in path.split('.').filter(|s| !s.is_empty()) {
        current = match (segment.parse::<usize>(), current) {
            (Ok(index), Value::Sequence(items)) => items
                .get_mut(index)
                .unwrap_or_else(|| panic!("no [{index}] in {path}")),
            (_, Value::Mapping(entries)) => entries
                .get_mut(segment)
                .unwrap_or_else(|| panic!("no {segment} in {path}")),
            (_, other) => panic!("{segment} of {path}: not a container: {other:?}"),
        };
    }
    current
}

/// Sets the value at `path`, adding the last key to its mapping if needed.
pub fn set(program: &mut Value, path: &str, value: impl Into<Value>) {
    let (parent, key) = path.rsplit_once('.').unwrap_or(("", path));
    match at(program, parent) {
        Value::Mapping(entries) => {
            entries.insert(Value::from(key), value.into());
        }
        other => *at(other, key) = value.into(),
    }
}

/// Removes the last segment of `path` from its mapping.
pub fn remove(program: &mut Value, path: &str) {
    let (parent, key) = path.rsplit_once('.').unwrap_or(("", path));
    let removed = match (at(program, parent), key.parse::<usize>()) {
        (Value::Sequence(items), Ok(index)) if index < items.len() => Some(items.remove(index)),
        (Value::Mapping(entries), _) => entries.remove(key),
        _ => None,
    };
    assert!(removed.is_some(), "nothing to remove at {path}");
}

/// Renames the key at `path`, keeping its value.
pub fn rename(program: &mut Value, path: &str, new_key: &str) {
    let (parent, key) = path.rsplit_once('.').unwrap_or(("", path));
    let mapping = at(program, parent).as_mapping_mut().expect("a mapping");
    let value = mapping
        .remove(key)
        .unwrap_or_else(|| panic!("no {key} at {path}"));
    mapping.insert(Value::from(new_key), value);
}
