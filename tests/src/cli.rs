//! For the command-line tests: a scratch copy of the workspace, a fake `pulumi` on PATH that
//! records every call and answers with canned output, and the built xtask binary run against
//! them with a clean environment.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

/// Records argv, the working directory and the AWS key id per call, then answers: `whoami` fails
/// when the `not-logged-in` file exists; `stack output` prints `outputs.json`; every call exits
/// with the code in `exit-code` (0 without it); `up` waits for SIGINT when `slow-up` exists.
const FAKE_PULUMI: &str = r#"#!/bin/sh
log="$FAKE_PULUMI_DIR/calls.log"
printf 'pulumi' >> "$log"
for arg in "$@"; do printf ' %s' "$arg" >> "$log"; done
printf '\n    cwd=%s AWS_ACCESS_KEY_ID=%s\n' "$(pwd)" "${AWS_ACCESS_KEY_ID:-}" >> "$log"
code=0
if [ -f "$FAKE_PULUMI_DIR/exit-code" ]; then read -r code < "$FAKE_PULUMI_DIR/exit-code"; fi
case "$1" in
  whoami)
    if [ -f "$FAKE_PULUMI_DIR/not-logged-in" ]; then
      echo "error: PULUMI_ACCESS_TOKEN must be set for login during non-interactive CLI sessions" >&2
      exit 255
    fi
    echo "fake-user"
    exit 0 ;;
  stack)
    if [ -f "$FAKE_PULUMI_DIR/outputs.json" ]; then /bin/cat "$FAKE_PULUMI_DIR/outputs.json"; fi ;;
  up)
    if [ -f "$FAKE_PULUMI_DIR/slow-up" ]; then
      trap 'echo "update cancelled"; exit 255' INT
      echo "updating slowly" > "$FAKE_PULUMI_DIR/started"
      while :; do sleep 0.1; done
    fi
    echo "Updating (dev): fake pulumi, nothing deployed"; echo "Resources: 22 unchanged" ;;
  preview) echo "Previewing update (dev): fake pulumi"; echo "Resources: 22 unchanged" ;;
  destroy) echo "Destroying (dev): fake pulumi" ;;
esac
exit "$code"
"#;

pub struct Scratch {
    pub root: PathBuf,
    /// Holds the fake `pulumi` and what it records.
    pub fake: PathBuf,
    /// An empty directory: a PATH without pulumi.
    pub empty: PathBuf,
}

impl Scratch {
    /// A workspace with the committed stack files and nothing else.
    pub fn new(name: &str) -> Scratch {
        let base = std::env::temp_dir().join(format!(
            "xtask-cli-{name}-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        let root = base.join("workspace");
        let fake = base.join("fake-bin");
        let empty = base.join("empty-bin");
        for dir in [&root.join("stacks"), &fake, &empty] {
            std::fs::create_dir_all(dir).expect("scratch dirs");
        }
        for entry in std::fs::read_dir(crate::workspace_root().join("stacks")).expect("stacks/") {
            let path = entry.expect("entry").path();
            if path.extension().is_some_and(|e| e == "yaml")
                && let Some(name) = path.file_name()
            {
                std::fs::copy(&path, root.join("stacks").join(name)).expect("copy stack");
            }
        }
        let pulumi = fake.join("pulumi");
        std::fs::write(&pulumi, FAKE_PULUMI).expect("fake pulumi");
        std::fs::set_permissions(&pulumi, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        Scratch { root, fake, empty }
    }

    /// The xtask binary on this workspace, with the fake pulumi first on PATH, fake AWS keys and
    /// nothing else from the caller's environment.
    pub fn xtask(&self, args: &[&str]) -> Command {
        let mut command = Command::new(crate::xtask());
        command.args(args);
        self.environment(&mut command);
        command.stdin(Stdio::null());
        command
    }

    pub fn environment(&self, command: &mut Command) {
        command
            .env_clear()
            .env("PATH", format!("{}:/usr/bin:/bin", self.fake.display()))
            .env("HOME", &self.root)
            .env("XTASK_WORKSPACE_ROOT", &self.root)
            .env("FAKE_PULUMI_DIR", &self.fake)
            .env("AWS_ACCESS_KEY_ID", "AKIAFAKEFORTESTS")
            .env("AWS_SECRET_ACCESS_KEY", "fake")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_CONFIG_FILE", self.root.join("no-aws-config"))
            .env(
                "AWS_SHARED_CREDENTIALS_FILE",
                self.root.join("no-aws-credentials"),
            )
            .current_dir(&self.root);
    }

    /// What the fake pulumi recorded, one call per `pulumi ...` line.
    pub fn calls(&self) -> String {
        std::fs::read_to_string(self.fake.join("calls.log")).unwrap_or_default()
    }

    /// Just the argv lines of the calls.
    pub fn argv(&self) -> Vec<String> {
        self.calls()
            .lines()
            .filter(|l| l.starts_with("pulumi"))
            .map(String::from)
            .collect()
    }

    pub fn fake_exit_code(&self, code: i32) {
        std::fs::write(self.fake.join("exit-code"), format!("{code}\n")).expect("exit code");
    }

    pub fn fake_not_logged_in(&self) {
        std::fs::write(self.fake.join("not-logged-in"), "").expect("marker");
    }

    pub fn fake_slow_up(&self) {
        std::fs::write(self.fake.join("slow-up"), "").expect("marker");
    }

    pub fn fake_up_started(&self) -> bool {
        self.fake.join("started").exists()
    }

    pub fn fake_outputs(&self, json: &str) {
        std::fs::write(self.fake.join("outputs.json"), json).expect("outputs");
    }

    /// A package whose `bootstrap` only has the ELF header of `machine` (0xB7 arm64, 0x3E
    /// x86_64): enough for the checks before pulumi, without a multi-minute build.
    pub fn fake_package(&self, machine: u16) {
        let mut elf = b"\x7fELF\x02\x01\x01".to_vec();
        elf.resize(18, 0);
        elf.extend_from_slice(&machine.to_le_bytes());
        elf.extend_from_slice(b"\0GLIBC_2.34\0");
        let path = self.root.join(names::PACKAGE_PATH);
        std::fs::create_dir_all(path.parent().expect("package dir")).expect("package dir");
        let mut writer = zip::ZipWriter::new(std::fs::File::create(&path).expect("package"));
        writer
            .start_file(
                "bootstrap",
                zip::write::SimpleFileOptions::default().unix_permissions(0o755),
            )
            .expect("entry");
        writer.write_all(&elf).expect("write");
        writer.finish().expect("finish");
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Some(base) = self.root.parent() {
            let _ = std::fs::remove_dir_all(base);
        }
    }
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Fails with everything the command printed, so a failing test shows the whole story.
pub fn describe(output: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        output.status.code(),
        text(&output.stdout),
        text(&output.stderr)
    )
}
