//! Who may publish on the bus: `events.publishers` entries, parsed once for validation and for
//! the bus policy the model builds from them.

use std::fmt;

/// The partitions an IAM ARN may name.
const PARTITIONS: [&str; 7] = [
    "aws",
    "aws-cn",
    "aws-us-gov",
    "aws-iso",
    "aws-iso-b",
    "aws-iso-e",
    "aws-iso-f",
];
/// IAM's limits on a role or user name, and on the path before it (`/` included).
const NAME_CHARS: usize = 64;
const PATH_CHARS: usize = 512;

/// One publisher of a stack file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// Every principal of this account (its identity policies decide which ones).
    Account(String),
    /// One IAM role or user, e.g. `arn:aws:iam::123456789012:role/feed/market-data-publisher`.
    Arn(String),
}

impl Principal {
    /// Reads `text` as a 12-digit account id or an IAM role or user ARN.
    pub fn parse(text: &str) -> Option<Principal> {
        if is_account_id(text) {
            return Some(Principal::Account(text.to_string()));
        }
        let mut parts = text.splitn(6, ':');
        let (Some("arn"), Some(partition), Some("iam"), Some(""), Some(account), Some(resource)) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return None;
        };
        let kind_ok = ["role/", "user/"]
            .iter()
            .any(|kind| resource.strip_prefix(kind).is_some_and(is_path_and_name));
        (PARTITIONS.contains(&partition) && is_account_id(account) && kind_ok)
            .then(|| Principal::Arn(text.to_string()))
    }
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Principal::Account(id) | Principal::Arn(id) => f.write_str(id),
        }
    }
}

fn is_account_id(text: &str) -> bool {
    text.len() == 12 && text.chars().all(|c| c.is_ascii_digit())
}

/// `[path/]name` after `role/` or `user/`. A `*` would make the principal a pattern, which a
/// resource policy's Principal does not accept and a publisher list must not mean.
fn is_path_and_name(rest: &str) -> bool {
    let (path, name) = rest.rsplit_once('/').unwrap_or(("", rest));
    let path_ok = path.is_empty()
        || (path.chars().count() < PATH_CHARS && path.split('/').all(is_name_chars));
    path_ok && name.chars().count() <= NAME_CHARS && is_name_chars(name)
}

/// One segment of a path, or the name: IAM's `[\w+=,.@-]+`.
fn is_name_chars(segment: &str) -> bool {
    !segment.is_empty()
        && segment
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounts_and_role_or_user_arns_parse() {
        assert_eq!(
            Principal::parse("123456789012"),
            Some(Principal::Account("123456789012".into()))
        );
        for arn in [
            "arn:aws:iam::123456789012:role/market-data-publisher",
            "arn:aws:iam::123456789012:role/feeds/nyse/publisher",
            "arn:aws-us-gov:iam::123456789012:user/feed@example.com",
        ] {
            assert_eq!(
                Principal::parse(arn),
                Some(Principal::Arn(arn.into())),
                "{arn}"
            );
        }
    }

    #[test]
    fn anything_else_does_not() {
        for text in [
            "",
            "12345678901",
            "1234567890123",
            "12345678901a",
            "arn:aws:iam::123456789012:root",
            "arn:aws:iam::123456789012:group/feeds",
            "arn:aws:iam::123456789012:role/",
            "arn:aws:iam::123456789012:role/feeds//publisher",
            "arn:aws:iam::123456789012:role/*",
            "arn:aws:iam::12345678901:role/publisher",
            "arn:aws:sts::123456789012:assumed-role/publisher/session",
            "arn:aws:iam:us-east-1:123456789012:role/publisher",
            "arn:mars:iam::123456789012:role/publisher",
            "arn:aws:iam::123456789012:role/has space",
        ] {
            assert_eq!(Principal::parse(text), None, "{text:?}");
        }
        let long = format!("arn:aws:iam::123456789012:role/{}", "a".repeat(65));
        assert_eq!(Principal::parse(&long), None);
    }
}
