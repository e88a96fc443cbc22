use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use super::fixtures::{rendered, workspace_root};
use super::*;

/// A throwaway workspace holding a copy of the committed stack files.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Scratch {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "xtask-render-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("stacks")).expect("create scratch dir");
        for stack in ["dev", "staging", "prod"] {
            let file = format!("stacks/{stack}.yaml");
            std::fs::copy(workspace_root().join(&file), dir.join(&file)).expect("copy stack");
        }
        Scratch(dir)
    }

    fn root(&self) -> &Path {
        &self.0
    }

    fn edit(&self, file: &str, edit: impl FnOnce(String) -> String) {
        let path = self.0.join(file);
        let text = std::fs::read_to_string(&path).expect("read");
        std::fs::write(&path, edit(text)).expect("write");
    }

    fn check(&self) -> Result<()> {
        run(self.root(), None, true)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn snapshot_project_file() {
    insta::assert_snapshot!("Pulumi.yaml", project_file().expect("renders"));
}

#[test]
fn snapshot_dev() {
    let r = rendered("dev");
    insta::assert_snapshot!("dev.program.yaml", r.program);
    insta::assert_snapshot!("Pulumi.dev.yaml", r.stack_file(None).expect("renders"));
}

#[test]
fn snapshot_staging() {
    let r = rendered("staging");
    insta::assert_snapshot!("staging.program.yaml", r.program);
    insta::assert_snapshot!("Pulumi.staging.yaml", r.stack_file(None).expect("renders"));
}

#[test]
fn snapshot_prod() {
    let r = rendered("prod");
    insta::assert_snapshot!("prod.program.yaml", r.program);
    insta::assert_snapshot!("Pulumi.prod.yaml", r.stack_file(None).expect("renders"));
}

#[test]
fn rendering_is_deterministic() {
    let root = workspace_root();
    let stacks = ["dev".to_string(), "staging".to_string(), "prod".to_string()];
    let first = render_files(&root, &stacks).expect("renders");
    let second = render_files(&root, &stacks).expect("renders");
    assert_eq!(first, second);
}

#[test]
fn the_committed_files_match_a_fresh_render() {
    let root = workspace_root();
    let stacks = stack::list_stacks(&root).expect("stacks");
    let files = render_files(&root, &stacks).expect("renders");
    let stale = stale_files(&root, &files, true).expect("compares");
    assert!(
        stale.is_empty(),
        "run `cargo xtask render`:\n{}",
        stale.join("\n")
    );
}

#[test]
fn every_generated_file_says_what_it_is_generated_from() {
    let r = rendered("prod");
    let stack_file = r.stack_file(None).expect("renders");
    for (text, source) in [
        (project_file().expect("renders"), "stacks/*.yaml"),
        (stack_file, "stacks/prod.yaml"),
        (r.program, "stacks/prod.yaml"),
    ] {
        let header: String = text.lines().take_while(|l| l.starts_with('#')).collect();
        assert!(header.contains("cargo xtask render"), "{header}");
        assert!(header.contains(source), "{header}");
        assert!(header.contains("do not edit"), "{header}");
    }
}

#[test]
fn per_stack_differences_are_unrolled_into_the_program() {
    let dev = rendered("dev").program;
    let prod = rendered("prod").program;
    for absent_in_dev in [
        "alarmTopic:",
        "alarmEmailSubscription:",
        "reservedConcurrentExecutions:",
        "alarmActions:",
    ] {
        assert!(!dev.contains(absent_in_dev), "dev has {absent_in_dev}");
        assert!(prod.contains(absent_in_dev), "prod lacks {absent_in_dev}");
    }
    let staging = rendered("staging").program;
    assert!(staging.contains("alarmTopic:") && !staging.contains("alarmEmailSubscription:"));
    // Dev and staging let the deploying account publish; prod lists its publishers.
    for (program, asks) in [(&dev, true), (&staging, true), (&prod, false)] {
        assert_eq!(program.contains("getCallerIdentity"), asks);
        assert!(program.contains("eventBusPolicy:"));
    }
    assert!(prod.contains("arn:aws:iam::111122223333:role/market-data-feed-publisher"));
}

#[test]
fn pulumi_builds_the_compiler_with_the_committed_lock_file() {
    assert!(COMPILER.starts_with("cargo run --locked "), "{COMPILER}");
    let project = project_file().expect("renders");
    assert!(
        project.contains(&format!("compiler: {COMPILER}")),
        "{project}"
    );
}

#[test]
fn config_is_declared_first_and_outputs_come_last() {
    let program: Value = serde_yaml::from_str(&rendered("dev").program).expect("parses");
    let keys: Vec<&str> = program
        .as_mapping()
        .map(|m| m.keys().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    assert_eq!(
        keys,
        [
            "name",
            "description",
            "runtime",
            "config",
            "variables",
            "resources",
            "outputs"
        ]
    );
    let outputs: Vec<&str> = program["outputs"]
        .as_mapping()
        .map(|m| m.keys().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    // Every stack reports what the operator commands read; prod and staging add the topic.
    assert_eq!(outputs, crate::outputs::DEPLOYED_KEYS);
    for stack in ["prod", "staging"] {
        let program: Value = serde_yaml::from_str(&rendered(stack).program).expect("parses");
        let outputs: Vec<&str> = program["outputs"]
            .as_mapping()
            .map(|m| m.keys().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let mut expected: Vec<&str> = crate::outputs::DEPLOYED_KEYS.to_vec();
        expected.push("alarm_topic_arn");
        expected.extend(crate::outputs::STREAM_KEYS);
        assert_eq!(outputs, expected, "{stack}");
    }
}

#[test]
fn the_stack_file_carries_namespaced_config_and_the_region() {
    let text = rendered("dev").stack_file(None).expect("renders");
    let file: Value = serde_yaml::from_str(&text).expect("parses");
    let config = file["config"].as_mapping().expect("config mapping");
    assert_eq!(
        config.get("aws:region").and_then(Value::as_str),
        Some("us-east-1")
    );
    for key in config.keys().filter_map(Value::as_str) {
        assert!(
            key == "aws:region" || key.starts_with("market-data-pipeline:"),
            "{key}"
        );
    }
    assert_eq!(
        config
            .get("market-data-pipeline:lambdaMemoryMb")
            .and_then(Value::as_u64),
        Some(256)
    );
}

#[test]
fn check_passes_after_render_and_fails_on_drift() {
    let scratch = Scratch::new();
    assert!(scratch.check().is_err(), "nothing rendered yet");
    run(scratch.root(), None, false).expect("renders");
    scratch.check().expect("fresh render passes --check");

    // A hand edit of a generated file.
    scratch.edit("Pulumi.dev.yaml", |t| {
        t.replace("lambdaMemoryMb: 256", "lambdaMemoryMb: 512")
    });
    let err = scratch.check().expect_err("drift detected").to_string();
    assert!(
        err.contains("Pulumi.dev.yaml differs from a fresh render"),
        "{err}"
    );
    run(scratch.root(), None, false).expect("renders");
    scratch.check().expect("re-render fixes it");

    // A stack file changed without rendering.
    scratch.edit("stacks/prod.yaml", |t| {
        t.replace("memory_mb: 1024", "memory_mb: 2048")
    });
    let err = scratch.check().expect_err("drift detected").to_string();
    assert!(
        err.contains("Pulumi.prod.yaml differs from a fresh render"),
        "{err}"
    );
    assert!(err.contains("run `cargo xtask render`"), "{err}");
}

#[test]
fn check_reports_stack_files_of_deleted_stacks() {
    let scratch = Scratch::new();
    run(scratch.root(), None, false).expect("renders");
    std::fs::write(scratch.root().join("Pulumi.qa.yaml"), "config: {}\n").expect("write");
    let err = scratch.check().expect_err("orphan detected").to_string();
    assert!(err.contains("Pulumi.qa.yaml has no stacks/ file"), "{err}");
}

#[test]
fn a_render_keeps_the_keys_pulumi_writes_into_stack_files() {
    let scratch = Scratch::new();
    run(scratch.root(), None, false).expect("renders");
    scratch.edit("Pulumi.dev.yaml", |t| {
        format!("{t}encryptionsalt: v1:abc:def\n")
    });
    scratch.check().expect("Pulumi's own keys are not drift");
    run(scratch.root(), None, false).expect("renders");
    let text = std::fs::read_to_string(scratch.root().join("Pulumi.dev.yaml")).expect("read");
    assert!(text.contains("encryptionsalt: v1:abc:def"), "{text}");
}

#[test]
fn an_invalid_stack_renders_nothing() {
    let scratch = Scratch::new();
    scratch.edit("stacks/dev.yaml", |t| {
        t.replace("memory_mb: 256", "memory_mb: 64")
    });
    let err = run(scratch.root(), None, false).expect_err("invalid stack");
    assert_eq!(
        err.to_string(),
        "stacks/dev.yaml: lambda.memory_mb: 64 is out of range; allowed 128..=10240"
    );
    assert!(!scratch.root().join("Pulumi.yaml").exists());
}

#[test]
fn a_stack_file_carries_its_own_environment() {
    // Two stacks therefore never share a suffix, and prod's rules follow stacks/prod.yaml.
    let scratch = Scratch::new();
    scratch.edit("stacks/staging.yaml", |t| {
        t.replace("environment: staging", "environment: dev")
    });
    let err = run(scratch.root(), None, false)
        .expect_err("environment of another stack")
        .to_string();
    assert_eq!(
        err,
        "stacks/staging.yaml: environment: \"dev\" differs from the stack's name \"staging\" (stacks/staging.yaml); allowed \"staging\", or rename the file to stacks/dev.yaml"
    );
}

#[test]
fn the_compiler_prints_the_selected_stack_and_refuses_stale_config() {
    let scratch = Scratch::new();
    run(scratch.root(), None, false).expect("renders");
    let root = scratch.root();
    let prod =
        program_for(root, None, Some("acme/market-data-pipeline/prod")).expect("prod program");
    assert_eq!(prod, rendered("prod").program);
    assert_eq!(
        program_for(root, Some("dev"), Some("prod")).expect("dev"),
        rendered("dev").program
    );
    // Package discovery runs the compiler without a stack.
    assert_eq!(
        program_for(root, None, None).expect("first stack"),
        rendered("dev").program
    );

    scratch.edit("stacks/dev.yaml", |t| {
        t.replace("logs:\n  retention_days: 7", "logs:\n  retention_days: 14")
    });
    let err = program_for(root, None, Some("dev"))
        .expect_err("stale")
        .to_string();
    assert!(err.contains("refusing to give Pulumi a program"), "{err}");
    let err = program_for(root, None, Some("qa"))
        .expect_err("unknown")
        .to_string();
    assert_eq!(err, "unknown stack `qa`; stacks: dev, prod, staging");
}

#[test]
fn the_archive_is_on_the_stacks_bus_with_the_models_pattern_and_retention() {
    for stack in ["dev", "staging", "prod"] {
        let r = rendered(stack);
        let program: Value = serde_yaml::from_str(&r.program).expect("parses");
        let archive = &program["resources"]["eventArchive"];
        assert_eq!(
            archive["type"].as_str(),
            Some("aws:cloudwatch/eventArchive:EventArchive")
        );
        let properties = &archive["properties"];
        assert_eq!(
            properties["eventSourceArn"].as_str(),
            Some("${eventBus.arn}")
        );
        assert_eq!(
            properties["name"].as_str(),
            Some(r.model.archive.name.as_str())
        );
        // A JSON text, as EventBridge takes it, of the sources the bus accepts.
        let pattern: serde_json::Value =
            serde_json::from_str(properties["eventPattern"].as_str().unwrap_or_default())
                .expect("the pattern is JSON");
        assert_eq!(
            pattern,
            serde_json::json!({ "source": r.model.bus.sources })
        );
        assert_eq!(
            properties["retentionDays"].as_str(),
            Some("${archiveRetentionDays}")
        );
        let stack_file: Value =
            serde_yaml::from_str(&r.stack_file(None).expect("renders")).expect("parses");
        assert_eq!(
            stack_file["config"]["market-data-pipeline:archiveRetentionDays"].as_u64(),
            Some(u64::from(r.model.archive.retention_days))
        );
    }
}
