use std::path::{Path, PathBuf};

use super::*;
use crate::workspace_root;

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bad-stacks")
}

/// One file of the bad-stack corpus: `# expect: <line>` comments are the exact messages, in
/// order; `# stack: <name>` is the stack the file is loaded as (default: `dev`, the environment
/// of most cases); the file's own name only labels the messages.
struct Case {
    name: String,
    text: String,
    stack: String,
    expected: Vec<String>,
}

fn corpus() -> Vec<Case> {
    let mut cases: Vec<Case> = std::fs::read_dir(corpus_dir())
        .expect("tests/bad-stacks exists")
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().and_then(|e| e.to_str()) == Some("yaml"))
        .map(|path| {
            let name = path
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or_default()
                .to_string();
            let text = std::fs::read_to_string(&path).expect("readable case");
            let directive = |prefix: &str| -> Vec<String> {
                text.lines()
                    .filter_map(|line| line.strip_prefix(prefix))
                    .map(str::to_string)
                    .collect()
            };
            let stack = directive("# stack: ")
                .pop()
                .unwrap_or_else(|| "dev".to_string());
            let expected = directive("# expect: ");
            Case {
                name,
                text,
                stack,
                expected,
            }
        })
        .collect();
    cases.sort_by(|a, b| a.name.cmp(&b.name));
    cases
}

#[test]
fn the_committed_stacks_are_valid() {
    let root = workspace_root();
    let stacks = list_stacks(&root).expect("stacks/ lists");
    assert_eq!(stacks, ["dev", "prod", "staging"]);
    for stack in &stacks {
        if let Err(err) = StackConfig::load(&root, stack) {
            panic!("{stack}: {err}");
        }
    }
}

#[test]
fn environments_differ_where_they_should() {
    let root = workspace_root();
    let load = |s: &str| StackConfig::load(&root, s).expect("valid stack");
    let (dev, prod) = (load("dev"), load("prod"));
    assert!(prod.dynamodb.point_in_time_recovery && prod.dynamodb.deletion_protection);
    assert!(!dev.dynamodb.point_in_time_recovery && !dev.dynamodb.deletion_protection);
    assert!(prod.logs.retention_days > dev.logs.retention_days);
    assert!(prod.alarms.email.is_some() && dev.alarms.email.is_none());
    assert!(!dev.alarms.sns_topic);
    assert!(prod.audit.retention_days >= 2557 && dev.audit.retention_days < 2557);
    assert!(dev.events.publishers.is_empty() && !prod.events.publishers.is_empty());
}

#[test]
fn the_production_rules_follow_the_environment_not_the_file() {
    let root = workspace_root();
    let load = |s: &str| StackConfig::load(&root, s).expect("valid stack");
    assert!(load("prod").is_production());
    assert!(!load("dev").is_production() && !load("staging").is_production());

    let prod = std::fs::read_to_string(root.join("stacks/prod.yaml")).expect("readable");
    // prod's file under another name, with that name as its environment, is not production:
    // it may drop what only production must keep.
    let eu = prod
        .replace("environment: prod", "environment: prod-eu")
        .replace(
            "point_in_time_recovery: true",
            "point_in_time_recovery: false",
        );
    let config = StackConfig::parse("stacks/prod-eu.yaml", "prod-eu", &eu).expect("valid");
    assert!(!config.is_production());
    // Keeping `environment: prod` there is refused, naming both values.
    let err = StackConfig::parse("stacks/prod-eu.yaml", "prod-eu", &prod)
        .expect_err("environment is not the stack's name")
        .to_string();
    assert_eq!(
        err,
        "stacks/prod-eu.yaml: environment: \"prod\" differs from the stack's name \"prod-eu\" (stacks/prod-eu.yaml); allowed \"prod-eu\", or rename the file to stacks/prod.yaml"
    );
}

#[test]
fn an_unknown_stack_lists_the_stacks_that_exist() {
    let err = StackConfig::load(&workspace_root(), "qa").expect_err("no stacks/qa.yaml");
    assert_eq!(
        err.to_string(),
        "unknown stack `qa`; stacks: dev, prod, staging"
    );
}

#[test]
fn the_bad_stack_corpus_produces_exactly_its_messages() {
    let cases = corpus();
    assert!(
        cases.len() >= 30,
        "the corpus has only {} cases",
        cases.len()
    );
    let mut failures = Vec::new();
    for case in &cases {
        let file = format!("{STACKS_DIR}/{}.yaml", case.name);
        let actual = match StackConfig::parse(&file, &case.stack, &case.text) {
            Ok(_) => vec!["(accepted)".to_string()],
            Err(err) => err.to_string().lines().map(str::to_string).collect(),
        };
        if case.expected.is_empty() || actual != case.expected {
            failures.push(format!(
                "{}:\n  expected:\n    {}\n  actual:\n    {}",
                case.name,
                case.expected.join("\n    "),
                actual.join("\n    ")
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_problem_of_a_file_is_reported_at_once() {
    let case = corpus()
        .into_iter()
        .find(|c| c.name == "many-problems")
        .expect("the corpus has a many-problems case");
    let err = StackConfig::parse("stacks/x.yaml", "x", &case.text).expect_err("invalid");
    assert!(err.to_string().lines().count() >= 3, "{err}");
}

#[test]
fn no_input_makes_the_loader_panic() {
    let inputs = [
        "",
        "~",
        "[]",
        "{}",
        "\"just a string\"",
        "environment: [1, 2]",
        "lambda: {memory_mb: 99999999999999999999}",
        "tags: {a: {b: c}}",
        "&a [*a]",
        "\u{0}\u{1}",
        &"[".repeat(10_000),
    ];
    for input in inputs {
        assert!(
            StackConfig::parse("stacks/x.yaml", "x", input).is_err(),
            "{input:?}"
        );
    }
}

#[test]
fn the_archive_bounds_are_inclusive() {
    let root = workspace_root();
    let text = |stack: &str, archive_days: u32, ttl_days: u32| {
        let text = std::fs::read_to_string(root.join(stack_file(stack))).expect("readable");
        let config = StackConfig::load(&root, stack).expect("valid stack");
        text.replace(
            &format!(
                "archive:\n  retention_days: {}",
                config.archive.retention_days
            ),
            &format!("archive:\n  retention_days: {archive_days}"),
        )
        .replace(
            &format!("ttl_days: {}", config.dynamodb.ttl_days),
            &format!("ttl_days: {ttl_days}"),
        )
    };
    let parse = |stack: &str, text: String| StackConfig::parse(&stack_file(stack), stack, &text);
    let refused = |result: Result<StackConfig, StackErrors>| {
        let err = result.expect_err("refused").to_string();
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(": archive.retention_days: "), "{err}");
    };
    // The TTL less a day, and no more.
    let dev = parse("dev", text("dev", 7, 8)).expect("7 days under an 8-day TTL");
    assert_eq!(dev.archive.retention_days, 7);
    refused(parse("dev", text("dev", 8, 8)));
    // In production the DLQ's 14 days at least, and at most the TTL less a day.
    assert!(parse("prod", text("prod", 14, 365)).is_ok());
    refused(parse("prod", text("prod", 13, 365)));
    assert!(parse("prod", text("prod", 364, 365)).is_ok());
    // Outside production the DLQ does not bound it.
    assert!(parse("staging", text("staging", 1, 30)).is_ok());
}
