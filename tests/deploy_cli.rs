//! `cargo xtask preview|deploy|destroy|outputs` against a fake `pulumi` on PATH: the order of
//! the steps, the flags pulumi gets, exit codes, the production confirmation, and the messages
//! for a missing CLI, login or credentials.

use std::io::Write;
use std::process::{Command, Stdio};

use tests::cli::{Scratch, describe, text};

const ARM64: u16 = 0xB7;
const X86_64: u16 = 0x3E;

fn position(haystack: &str, needle: &str) -> usize {
    haystack
        .find(needle)
        .unwrap_or_else(|| panic!("{needle:?} not found in:\n{haystack}"))
}

#[test]
fn deploy_validates_checks_packages_renders_then_runs_pulumi_up() {
    let scratch = Scratch::new("deploy");
    scratch.fake_package(ARM64);
    let output = scratch
        .xtask(&["deploy", "dev", "--no-build"])
        .output()
        .expect("run xtask");
    assert!(output.status.success(), "{}", describe(&output));
    let stdout = text(&output.stdout);
    let steps = [
        "==> validate stacks/dev.yaml",
        "==> check the pulumi CLI, its login and AWS credentials",
        "==> reuse the package (--no-build)",
        "==> render Pulumi.yaml and Pulumi.dev.yaml",
        "==> pulumi up --stack dev --yes",
        "Resources: 22 unchanged",
        "cargo xtask e2e --stack dev --double-deliveries 0",
    ];
    let at: Vec<usize> = steps.iter().map(|s| position(&stdout, s)).collect();
    assert!(
        at.windows(2).all(|w| w[0] < w[1]),
        "out of order:\n{stdout}"
    );
    assert_eq!(
        scratch.argv(),
        ["pulumi whoami", "pulumi up --stack dev --yes"]
    );
    let calls = scratch.calls();
    assert!(
        calls.contains(&format!("cwd={}", scratch.root.display())),
        "pulumi must run in the project directory:\n{calls}"
    );
    assert!(
        calls.contains("AWS_ACCESS_KEY_ID=AKIAFAKEFORTESTS"),
        "{calls}"
    );
    for file in ["Pulumi.yaml", "Pulumi.dev.yaml"] {
        assert!(scratch.root.join(file).is_file(), "{file} not rendered");
    }
    // The transcript, for anyone reading the test output.
    println!("$ cargo xtask deploy dev --no-build\n{stdout}\n--- fake pulumi calls\n{calls}");
}

#[test]
fn preview_asks_for_the_diff() {
    let scratch = Scratch::new("preview");
    scratch.fake_package(ARM64);
    let output = scratch
        .xtask(&["preview", "staging", "--no-build"])
        .output()
        .expect("run xtask");
    assert!(output.status.success(), "{}", describe(&output));
    assert_eq!(
        scratch.argv(),
        ["pulumi whoami", "pulumi preview --stack staging --diff"]
    );
}

#[test]
fn pulumis_exit_code_is_the_commands_exit_code() {
    let scratch = Scratch::new("exit-code");
    scratch.fake_package(ARM64);
    scratch.fake_exit_code(3);
    let output = scratch
        .xtask(&["deploy", "dev", "--no-build"])
        .output()
        .expect("run xtask");
    assert_eq!(output.status.code(), Some(3), "{}", describe(&output));
    assert!(
        text(&output.stderr).contains("`pulumi up --stack dev --yes` exited with code 3"),
        "{}",
        describe(&output)
    );
}

#[test]
fn ctrl_c_lets_pulumi_cancel_and_keeps_its_exit_code() {
    use std::os::unix::process::CommandExt;
    let scratch = Scratch::new("interrupt");
    scratch.fake_package(ARM64);
    scratch.fake_slow_up();
    let child = scratch
        .xtask(&["deploy", "dev", "--no-build"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group, as a terminal gives a foreground job.
        .process_group(0)
        .spawn()
        .expect("run xtask");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !scratch.fake_up_started() {
        assert!(
            std::time::Instant::now() < deadline,
            "pulumi up never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // What Ctrl-C does: SIGINT to every process of the foreground group.
    let group = format!("-{}", child.id());
    let status = Command::new("kill")
        .args(["-INT", "--", &group])
        .status()
        .expect("kill");
    assert!(status.success());
    let output = child.wait_with_output().expect("wait");
    assert_eq!(output.status.code(), Some(255), "{}", describe(&output));
    assert!(
        text(&output.stdout).contains("update cancelled"),
        "{}",
        describe(&output)
    );
    // Had xtask died of the signal, there would be no exit code, let alone pulumi's.
}

#[test]
fn prod_without_yes_and_without_a_terminal_is_refused_before_anything_changes() {
    let scratch = Scratch::new("prod-no-tty");
    scratch.fake_package(ARM64);
    let output = scratch
        .xtask(&["deploy", "prod", "--no-build"])
        .output()
        .expect("run xtask");
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    assert!(
        text(&output.stderr).contains("stdin is not a terminal: pass --yes"),
        "{}",
        describe(&output)
    );
    assert_eq!(scratch.argv(), ["pulumi whoami"]);
    assert!(
        !scratch.root.join("Pulumi.prod.yaml").exists(),
        "nothing after the refusal runs"
    );
}

#[test]
fn prod_with_yes_goes_ahead() {
    let scratch = Scratch::new("prod-yes");
    scratch.fake_package(ARM64);
    let output = scratch
        .xtask(&["deploy", "prod", "--yes", "--no-build"])
        .output()
        .expect("run xtask");
    assert!(output.status.success(), "{}", describe(&output));
    assert_eq!(
        scratch.argv(),
        ["pulumi whoami", "pulumi up --stack prod --yes"]
    );
}

/// Runs xtask on a pseudo-terminal (util-linux `script`), typing `answer` at the prompt.
fn on_a_terminal(scratch: &Scratch, args: &[&str], answer: &str) -> (Option<i32>, String) {
    let script = ["/usr/bin/script", "/bin/script"]
        .into_iter()
        .find(|p| std::path::Path::new(p).is_file())
        .expect("util-linux `script` is needed to give xtask a terminal");
    let xtask = tests::xtask().display().to_string();
    let line = std::iter::once(xtask.as_str())
        .chain(args.iter().copied())
        .map(|a| format!("'{a}'"))
        .collect::<Vec<_>>()
        .join(" ");
    let mut command = Command::new(script);
    command.args(["-q", "-e", "-c", &line, "/dev/null"]);
    scratch.environment(&mut command);
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run script");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(answer.as_bytes())
        .expect("type the answer");
    let output = child.wait_with_output().expect("wait");
    (output.status.code(), text(&output.stdout))
}

#[test]
fn prod_asks_on_a_terminal_and_only_yes_goes_ahead() {
    for (answer, proceeds) in [
        ("n\n", false),
        ("\n", false),
        ("y\n", true),
        ("yes\n", true),
    ] {
        let scratch = Scratch::new("prod-tty");
        scratch.fake_package(ARM64);
        let (code, screen) = on_a_terminal(&scratch, &["deploy", "prod", "--no-build"], answer);
        assert!(
            screen
                .contains("`deploy prod` changes production (prod in us-east-1). Continue? [y/N]"),
            "{screen}"
        );
        if proceeds {
            assert_eq!(code, Some(0), "{answer:?}: {screen}");
            assert_eq!(
                scratch.argv(),
                ["pulumi whoami", "pulumi up --stack prod --yes"]
            );
        } else {
            assert_eq!(code, Some(1), "{answer:?}: {screen}");
            assert!(screen.contains("cancelled"), "{screen}");
            assert_eq!(scratch.argv(), ["pulumi whoami"], "{answer:?}");
        }
    }
}

#[test]
fn destroy_lets_pulumi_ask_unless_yes_and_needs_no_package() {
    let scratch = Scratch::new("destroy");
    let ask = scratch
        .xtask(&["destroy", "dev"])
        .output()
        .expect("run xtask");
    assert!(ask.status.success(), "{}", describe(&ask));
    let yes = scratch
        .xtask(&["destroy", "dev", "--yes"])
        .output()
        .expect("run xtask");
    assert!(yes.status.success(), "{}", describe(&yes));
    assert_eq!(
        scratch.argv(),
        [
            "pulumi whoami",
            "pulumi destroy --stack dev",
            "pulumi whoami",
            "pulumi destroy --stack dev --yes"
        ]
    );
    let refused = scratch
        .xtask(&["destroy", "prod"])
        .output()
        .expect("run xtask");
    assert_eq!(refused.status.code(), Some(1), "{}", describe(&refused));
    assert!(text(&refused.stderr).contains("`destroy prod` changes production"));
}

#[test]
fn outputs_prints_what_pulumi_reports() {
    let scratch = Scratch::new("outputs");
    scratch.fake_outputs(r#"{"event_bus_name":"market-data-bus-dev"}"#);
    let output = scratch
        .xtask(&["outputs", "dev"])
        .output()
        .expect("run xtask");
    assert!(output.status.success(), "{}", describe(&output));
    assert!(text(&output.stdout).contains(r#"{"event_bus_name":"market-data-bus-dev"}"#));
    assert_eq!(
        scratch.argv(),
        ["pulumi whoami", "pulumi stack output --json --stack dev"]
    );
}

#[test]
fn an_unknown_stack_lists_the_stacks_there_are() {
    let scratch = Scratch::new("unknown");
    for args in [
        vec!["deploy", "qa", "--no-build"],
        vec!["preview", "qa"],
        vec!["outputs", "qa"],
        vec!["cost", "--stack", "qa", "--events-per-day", "1"],
    ] {
        let output = scratch.xtask(&args).output().expect("run xtask");
        assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
        assert!(
            text(&output.stderr).contains("unknown stack `qa`; stacks: dev, prod, staging"),
            "{}",
            describe(&output)
        );
    }
    assert!(scratch.argv().is_empty());
}

#[test]
fn a_missing_pulumi_cli_says_where_to_get_it() {
    let scratch = Scratch::new("no-cli");
    scratch.fake_package(ARM64);
    let output = scratch
        .xtask(&["deploy", "dev", "--no-build"])
        .env("PATH", &scratch.empty)
        .output()
        .expect("run xtask");
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("the pulumi CLI is not on PATH"), "{stderr}");
    assert!(
        stderr.contains("https://www.pulumi.com/docs/install/"),
        "{stderr}"
    );
    assert!(
        stderr.contains("curl -fsSL https://get.pulumi.com | sh"),
        "{stderr}"
    );
}

#[test]
fn no_pulumi_login_says_how_to_log_in() {
    let scratch = Scratch::new("no-login");
    scratch.fake_package(ARM64);
    scratch.fake_not_logged_in();
    let output = scratch
        .xtask(&["deploy", "dev", "--no-build"])
        .output()
        .expect("run xtask");
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("pulumi is not logged in"), "{stderr}");
    assert!(
        stderr.contains("PULUMI_ACCESS_TOKEN must be set"),
        "{stderr}"
    );
    assert!(stderr.contains("`pulumi login --local`"), "{stderr}");
    assert_eq!(scratch.argv(), ["pulumi whoami"]);
}

#[test]
fn no_aws_credentials_say_how_to_configure_them() {
    let scratch = Scratch::new("no-aws");
    scratch.fake_package(ARM64);
    let output = scratch
        .xtask(&["deploy", "dev", "--no-build"])
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .output()
        .expect("run xtask");
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("no AWS credentials found"), "{stderr}");
    assert!(stderr.contains("aws configure"), "{stderr}");
    assert!(stderr.contains("AWS_PROFILE"), "{stderr}");
    assert_eq!(scratch.argv(), ["pulumi whoami"]);
}

#[test]
fn no_build_needs_a_package_for_the_stacks_architecture() {
    let scratch = Scratch::new("no-package");
    let missing = scratch
        .xtask(&["deploy", "dev", "--no-build"])
        .output()
        .expect("run xtask");
    assert_eq!(missing.status.code(), Some(1), "{}", describe(&missing));
    assert!(
        text(&missing.stderr).contains("run `cargo xtask build` first"),
        "{}",
        describe(&missing)
    );

    scratch.fake_package(X86_64);
    let wrong = scratch
        .xtask(&["deploy", "dev", "--no-build"])
        .output()
        .expect("run xtask");
    assert_eq!(wrong.status.code(), Some(1), "{}", describe(&wrong));
    assert!(
        text(&wrong.stderr).contains(
            "holds an x86_64 binary, but the stack runs arm64: run `cargo xtask build --arch arm64`"
        ),
        "{}",
        describe(&wrong)
    );
    assert_eq!(scratch.argv(), ["pulumi whoami", "pulumi whoami"]);
}

#[test]
fn e2e_on_a_deployed_stack_refuses_double_deliveries_before_publishing() {
    let scratch = Scratch::new("e2e-double");
    let outputs: serde_json::Value = infra::outputs::DEPLOYED_KEYS
        .into_iter()
        .map(|key| {
            (
                key.to_string(),
                serde_json::Value::from(format!("{key}-dev")),
            )
        })
        .collect::<serde_json::Map<_, _>>()
        .into();
    scratch.fake_outputs(&outputs.to_string());
    let output = scratch
        .xtask(&["e2e", "--stack", "dev"])
        .output()
        .expect("run xtask");
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    assert!(
        text(&output.stderr).contains("pass --double-deliveries 0"),
        "{}",
        describe(&output)
    );
    assert!(
        !text(&output.stdout).contains("publishing"),
        "{}",
        describe(&output)
    );
    assert_eq!(
        scratch.argv(),
        ["pulumi whoami", "pulumi stack output --json --stack dev"]
    );
}
