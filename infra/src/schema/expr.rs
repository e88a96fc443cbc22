//! Pulumi YAML interpolation: `${res.prop}`, `${res.list[0]}`, `${res["key"]}`, and `$${` for a
//! literal `${`. Only property access is allowed inside `${…}`, which is all this parses.

use std::fmt;

/// One step after the root name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Accessor {
    Property(String),
    Index(usize),
}

/// `root.accessors…` as written inside `${…}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    pub root: String,
    pub accessors: Vec<Accessor>,
}

impl Reference {
    /// The first property after the root, e.g. `arn` in `${table.arn}`.
    pub fn property(&self) -> Option<&str> {
        match self.accessors.first() {
            Some(Accessor::Property(name)) => Some(name),
            _ => None,
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "${{{}", self.root)?;
        for accessor in &self.accessors {
            match accessor {
                Accessor::Property(name) if is_plain(name) => write!(f, ".{name}")?,
                Accessor::Property(name) => write!(f, "[{name:?}]")?,
                Accessor::Index(i) => write!(f, "[{i}]")?,
            }
        }
        write!(f, "}}")
    }
}

/// A string split into literal text and references.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    Text(String),
    Ref(Reference),
}

/// Splits `text` into pieces. A string that is exactly one `${…}` yields a single [`Piece::Ref`].
pub fn parse(text: &str) -> Result<Vec<Piece>, String> {
    let mut pieces = Vec::new();
    let mut literal = String::new();
    let mut rest = text;
    while let Some(start) = rest.find('$') {
        literal.push_str(&rest[..start]);
        let after = &rest[start..];
        if let Some(tail) = after.strip_prefix("$${") {
            literal.push_str("${");
            rest = tail;
        } else if let Some(tail) = after.strip_prefix("${") {
            let end = tail
                .find('}')
                .ok_or_else(|| format!("unterminated `${{` in {text:?}"))?;
            if !literal.is_empty() {
                pieces.push(Piece::Text(std::mem::take(&mut literal)));
            }
            pieces.push(Piece::Ref(reference(&tail[..end])?));
            rest = &tail[end + 1..];
        } else {
            literal.push('$');
            rest = &after[1..];
        }
    }
    literal.push_str(rest);
    if !literal.is_empty() {
        pieces.push(Piece::Text(literal));
    }
    Ok(pieces)
}

/// The reference when `text` is exactly one `${…}` (a substitution that keeps the value's type).
pub fn substitution(text: &str) -> Option<Reference> {
    match parse(text) {
        Ok(mut pieces) if pieces.len() == 1 => match pieces.pop() {
            Some(Piece::Ref(r)) => Some(r),
            _ => None,
        },
        _ => None,
    }
}

fn reference(inner: &str) -> Result<Reference, String> {
    let bad = |why: &str| format!("`${{{inner}}}`: {why}");
    let root_end = inner.find(['.', '[']).unwrap_or(inner.len());
    let root = &inner[..root_end];
    if root.is_empty() || root.chars().any(char::is_whitespace) {
        return Err(bad(
            "expected a name after `${`, and only property access after it",
        ));
    }
    let mut accessors = Vec::new();
    let mut rest = &inner[root_end..];
    while !rest.is_empty() {
        if let Some(tail) = rest.strip_prefix('.') {
            let end = tail.find(['.', '[']).unwrap_or(tail.len());
            let name = &tail[..end];
            if name.is_empty() {
                return Err(bad("empty property name"));
            }
            accessors.push(Accessor::Property(name.to_string()));
            rest = &tail[end..];
        } else if let Some(tail) = rest.strip_prefix('[') {
            let end = tail.find(']').ok_or_else(|| bad("unterminated `[`"))?;
            let key = &tail[..end];
            if let Some(quoted) = key.strip_prefix('"').and_then(|k| k.strip_suffix('"')) {
                accessors.push(Accessor::Property(quoted.to_string()));
            } else {
                let index = key
                    .parse::<usize>()
                    .map_err(|_| bad("expected a number or a quoted key inside `[]`"))?;
                accessors.push(Accessor::Index(index));
            }
            rest = &tail[end + 1..];
        } else {
            return Err(bad("only property access is allowed inside `${}`"));
        }
    }
    Ok(Reference {
        root: root.to_string(),
        accessors,
    })
}

fn is_plain(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prop(name: &str) -> Accessor {
        Accessor::Property(name.to_string())
    }

    #[test]
    fn a_lone_reference_is_a_substitution() {
        let r = substitution("${table.arn}").expect("substitution");
        assert_eq!(r.root, "table");
        assert_eq!(r.accessors, vec![prop("arn")]);
        assert!(substitution("${table.arn}/index/*").is_none());
        assert!(substitution("plain").is_none());
    }

    #[test]
    fn parses_indexes_quoted_keys_and_hyphenated_roots() {
        let r = substitution(r#"${my-queue.list[0]["a.b"]}"#).expect("substitution");
        assert_eq!(r.root, "my-queue");
        assert_eq!(
            r.accessors,
            vec![prop("list"), Accessor::Index(0), prop("a.b")]
        );
        assert_eq!(r.to_string(), r#"${my-queue.list[0]["a.b"]}"#);
    }

    #[test]
    fn double_dollar_is_a_literal() {
        let pieces = parse("cost $5 and $${not.a.ref} ${x}").expect("parse");
        assert_eq!(
            pieces,
            vec![
                Piece::Text("cost $5 and ${not.a.ref} ".to_string()),
                Piece::Ref(Reference {
                    root: "x".to_string(),
                    accessors: vec![]
                })
            ]
        );
    }

    #[test]
    fn rejects_malformed_references() {
        assert!(parse("${open").is_err());
        assert!(parse("${}").is_err());
        assert!(parse("${a.}").is_err());
        assert!(parse("${a[x]}").is_err());
        assert!(parse("${a + b}").is_err());
    }
}
