//! moto server: the AWS-compatible endpoint on loopback that tests and the local pipeline use.
//! Installed into the project's `.venv` from hash-pinned requirements, started on a free port,
//! stopped on drop.

use std::fs::{self, File};
use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};

/// Pinned so that every machine emulates the same AWS behaviour.
pub const MOTO_VERSION: &str = "5.2.5";

/// `moto[server]` at [`MOTO_VERSION`] and everything it pulls in, each at one version with the
/// sha256 of every file PyPI has for it: pip installs exactly these bytes or fails. Compiled in,
/// so a binary installs the set it was built with whatever directory it runs from.
const REQUIREMENTS: &str = include_str!("../moto-requirements.txt");

/// Where [`REQUIREMENTS`] lives in the repository, for messages.
const REQUIREMENTS_PATH: &str = "harness/moto-requirements.txt";

/// The oldest Python that every pin of [`REQUIREMENTS`] supports (several need 3.11). The file
/// is resolved under this Python, and says so in its header; a test keeps the two equal.
const MIN_PYTHON: (u32, u32) = (3, 11);

/// The sha256 of the requirements the venv was last installed from, written once pip succeeded.
const MARKER: &str = "moto-requirements.sha256";

/// How long a starting server may take before we call it broken.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// Path of the `moto_server` executable, installing moto first if it is missing or was
/// installed from other requirements than [`REQUIREMENTS`].
pub fn ensure_installed(root: &Path) -> Result<PathBuf> {
    let venv = root.join(".venv");
    let server = venv.join("bin").join("moto_server");
    if is_current(&venv, REQUIREMENTS) {
        return Ok(server);
    }
    eprintln!(
        "installing moto[server]=={MOTO_VERSION} from {REQUIREMENTS_PATH} into {}",
        venv.display()
    );
    if !venv.join("bin").join("pip").is_file() {
        let python = find_python()?;
        let status = Command::new(&python)
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .with_context(|| format!("running {python} -m venv"))?;
        if !status.success() {
            bail!(
                "could not create the virtualenv {}: `{python} -m venv` failed ({status}). \
                 On Debian/Ubuntu install it with `apt-get install python3-venv`.",
                venv.display()
            );
        }
    }
    // A venv made earlier by an older Python would fail in pip with a "no matching
    // distribution" for some pin; name the cause instead.
    let interpreter = venv_python(root);
    match python_version(interpreter.as_os_str()) {
        Some(version) if version >= MIN_PYTHON => {}
        found => bail!(
            "{} runs Python {}, and the pinned moto requirements ({REQUIREMENTS_PATH}) need \
             {}.{} or newer: remove {} and run again with a newer python3 on PATH",
            interpreter.display(),
            found.map_or(
                "of an unknown version".to_string(),
                |(major, minor)| format!("{major}.{minor}")
            ),
            MIN_PYTHON.0,
            MIN_PYTHON.1,
            venv.display()
        ),
    }
    // Until pip has finished, the venv holds neither the old set nor the new one.
    remove_if_present(&venv.join(MARKER))?;
    let requirements = venv.join("moto-requirements.txt");
    fs::write(&requirements, REQUIREMENTS)
        .with_context(|| format!("writing {}", requirements.display()))?;
    // --force-reinstall: packages already in the venv at a pinned version were not necessarily
    // installed from hash-checked files (an older install, or by hand); pip skips such packages
    // unless told to reinstall them.
    let status = Command::new(venv.join("bin").join("pip"))
        .args([
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--require-hashes",
            "--force-reinstall",
            "-r",
        ])
        .arg(&requirements)
        .status()
        .context("running pip in .venv")?;
    if !status.success() || !server.is_file() {
        bail!(
            "could not install moto[server]=={MOTO_VERSION} from {REQUIREMENTS_PATH} into {} \
             (pip: {status}). Check that the Python package index is reachable. A hash mismatch \
             means a download differs from the pinned file: a proxy or mirror that serves other \
             bytes, or a requirements file edited by hand (regenerate it as its header says). \
             To retry by hand: `{}/bin/pip install --require-hashes -r {REQUIREMENTS_PATH}`.",
            venv.display(),
            venv.display()
        );
    }
    fs::write(venv.join(MARKER), sha256_hex(REQUIREMENTS))
        .with_context(|| format!("writing {}", venv.join(MARKER).display()))?;
    // The version marker of installs before the requirements file; nothing reads it now.
    remove_if_present(&venv.join("moto-version"))?;
    Ok(server)
}

/// Whether `venv` has a server installed from exactly `requirements`.
fn is_current(venv: &Path, requirements: &str) -> bool {
    venv.join("bin").join("moto_server").is_file()
        && fs::read_to_string(venv.join(MARKER))
            .is_ok_and(|installed| installed.trim() == sha256_hex(requirements))
}

fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn remove_if_present(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
            Err(err).with_context(|| format!("removing {}", path.display()))
        }
        _ => Ok(()),
    }
}

/// The first Python on PATH recent enough for [`REQUIREMENTS`]; the versioned names come after
/// the plain ones for machines whose `python3` is older than a Python installed beside it.
fn find_python() -> Result<String> {
    let mut too_old = Vec::new();
    for candidate in [
        "python3",
        "python",
        "python3.14",
        "python3.13",
        "python3.12",
        "python3.11",
    ] {
        match python_version(candidate.as_ref()) {
            Some(version) if version >= MIN_PYTHON => return Ok(candidate.to_string()),
            Some((major, minor)) => too_old.push(format!("{candidate} is {major}.{minor}")),
            None => {}
        }
    }
    let (major, minor) = MIN_PYTHON;
    if !too_old.is_empty() {
        bail!(
            "the pinned moto requirements ({REQUIREMENTS_PATH}) need Python {major}.{minor} or \
             newer, and PATH has only older ones ({}). Install a newer one with its venv module, \
             e.g. `apt-get install python3 python3-venv` on a current Debian/Ubuntu.",
            too_old.join(", ")
        );
    }
    bail!(
        "moto needs Python {major}.{minor} or newer and none was found on PATH (tried python3, \
         python, python3.14 to python3.11). Install it with its venv module, e.g. \
         `apt-get install python3 python3-venv`."
    )
}

/// `(major, minor)` of the Python `python`, or `None` if it does not run.
fn python_version(python: &std::ffi::OsStr) -> Option<(u32, u32)> {
    let output = Command::new(python)
        .args(["-c", "import sys; print(*sys.version_info[:2])"])
        .stderr(Stdio::null())
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    parse_version(&String::from_utf8_lossy(&output.stdout))
}

/// `"3 11\n"` (what [`python_version`] prints) to `(3, 11)`.
fn parse_version(text: &str) -> Option<(u32, u32)> {
    let mut parts = text.split_whitespace().map(str::parse::<u32>);
    match (parts.next(), parts.next(), parts.next()) {
        (Some(Ok(major)), Some(Ok(minor)), None) => Some((major, minor)),
        _ => None,
    }
}

/// Runs the server given as its arguments and stops it when its own stdin closes: when the
/// process that started it ends, however it ends. Prints the server's pid first.
const GUARD: &str = r#"
import subprocess, sys
server = subprocess.Popen(sys.argv[1:], stdin=subprocess.DEVNULL, stdout=sys.stderr)
print(server.pid, flush=True)
try:
    sys.stdin.buffer.read()
finally:
    server.terminate()
    try:
        server.wait(10)
    except subprocess.TimeoutExpired:
        server.kill()
"#;

/// Something else listens on the port the server was to use.
#[derive(Debug, thiserror::Error)]
#[error("port {0} on 127.0.0.1 is already in use; stop what listens there or pick another port")]
pub struct PortInUse(pub u16);

/// A running moto server. It stops when the handle is dropped or, for [`Moto::start`], when
/// this process ends, whichever comes first; a detached one ([`Moto::start_detached`]) runs
/// until it is killed.
pub struct Moto {
    child: Child,
    /// The guard's end of the pipe: closing it stops the server.
    lifeline: Option<ChildStdin>,
    server_pid: u32,
    pub port: u16,
    pub endpoint: String,
    pub log: PathBuf,
}

impl Moto {
    /// Installs if needed and starts a server on a free loopback port, for as long as this
    /// process lives at most.
    pub fn start(root: &Path) -> Result<Moto> {
        // Another thread of this process may bind the free port first (a test's Runtime API,
        // say): then take another one.
        let mut attempts = 0;
        loop {
            match Self::start_on(root, free_port()?) {
                Err(err) if err.is::<PortInUse>() && attempts < 5 => attempts += 1,
                started => return started,
            }
        }
    }

    /// [`Moto::start`] on `port`; an occupied port is an error, never a shared server.
    pub fn start_on(root: &Path, port: u16) -> Result<Moto> {
        Self::spawn(root, port, true)
    }

    /// A server that outlives this process (`local up`): stop it by its [`Moto::pid`].
    pub fn start_detached(root: &Path, port: Option<u16>) -> Result<Moto> {
        let port = match port {
            Some(port) => port,
            None => free_port()?,
        };
        Self::spawn(root, port, false)
    }

    fn spawn(root: &Path, port: u16, guarded: bool) -> Result<Moto> {
        let server = ensure_installed(root)?;
        if TcpStream::connect(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port)).is_ok() {
            return Err(PortInUse(port).into());
        }
        let log_dir = root.join("target").join("moto");
        fs::create_dir_all(&log_dir).context("creating target/moto")?;
        let log = log_dir.join(format!("moto-{port}.log"));
        let log_file = File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let args = [
            "-H".to_string(),
            "127.0.0.1".to_string(),
            "-p".to_string(),
            port.to_string(),
        ];
        let mut command = if guarded {
            let mut command = Command::new(venv_python(root));
            command
                .args(["-c", GUARD])
                .arg(&server)
                .args(&args)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped());
            command
        } else {
            let mut command = Command::new(&server);
            command
                .args(&args)
                .stdin(Stdio::null())
                .stdout(log_file.try_clone().context("log file")?);
            command
        };
        let mut child = command
            .stderr(log_file)
            .spawn()
            .with_context(|| format!("starting {}", server.display()))?;
        let (lifeline, server_pid) = if guarded {
            let mut pid = String::new();
            if let Some(stdout) = child.stdout.take() {
                BufReader::new(stdout)
                    .read_line(&mut pid)
                    .context("reading the moto server's pid from its guard")?;
            }
            let pid = pid.trim().parse().with_context(|| {
                format!(
                    "the moto server's guard did not start it; its log {} ends with:\n{}",
                    log.display(),
                    tail(&log)
                )
            })?;
            (child.stdin.take(), pid)
        } else {
            (None, child.id())
        };
        let mut moto = Moto {
            child,
            lifeline,
            server_pid,
            port,
            endpoint: format!("http://127.0.0.1:{port}"),
            log,
        };
        moto.wait_ready()?;
        Ok(moto)
    }

    fn wait_ready(&mut self) -> Result<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        let addr = SocketAddrV4::new(Ipv4Addr::LOCALHOST, self.port);
        loop {
            if let Some(status) = self.child.try_wait().context("checking moto server")? {
                bail!(
                    "moto server exited at start ({status}); its log {} ends with:\n{}",
                    self.log.display(),
                    tail(&self.log)
                );
            }
            if TcpStream::connect_timeout(&addr.into(), Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "moto server did not listen on {} within {} s; log: {}",
                    self.endpoint,
                    START_TIMEOUT.as_secs(),
                    self.log.display()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The server process itself (its CPU time is what the benchmark reads).
    pub fn pid(&self) -> u32 {
        self.server_pid
    }

    /// Variables that point every AWS SDK (ours, boto3, the CLI) at this server.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        crate::aws::emulated_env(&self.endpoint)
    }

    /// Leaves a detached server running after this handle is gone; returns its pid.
    pub fn detach(self) -> u32 {
        let pid = self.server_pid;
        std::mem::forget(self);
        pid
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        match self.lifeline.take() {
            // The guard stops the server when its stdin closes, then exits.
            Some(lifeline) => drop(lifeline),
            None => {
                let _ = self.child.kill();
            }
        }
        let _ = self.child.wait();
    }
}

/// The one server of this test binary: started (and installed) by the first test that asks,
/// stopped when the binary exits. A machine without Python or venv fails the test with what
/// to install.
pub fn shared() -> &'static Moto {
    static SHARED: OnceLock<std::result::Result<Moto, String>> = OnceLock::new();
    let started = SHARED
        .get_or_init(|| Moto::start(&infra::workspace_root()).map_err(|err| format!("{err:#}")));
    match started {
        Ok(moto) => moto,
        Err(err) => panic!("this test needs a moto server, and it could not start: {err}"),
    }
}

fn venv_python(root: &Path) -> PathBuf {
    root.join(".venv").join("bin").join("python")
}

pub fn free_port() -> Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("finding a free port")?;
    Ok(listener
        .local_addr()
        .context("reading the free port")?
        .port())
}

fn tail(path: &Path) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The requirements as pip reads them: one entry per logical line, continuations joined,
    /// comments left out.
    fn entries(requirements: &str) -> Vec<String> {
        requirements
            .replace("\\\n", " ")
            .lines()
            .map(|line| line.split(" #").next().unwrap_or(line).trim().to_string())
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .collect()
    }

    #[test]
    fn every_requirement_is_pinned_with_hashes_and_moto_is_the_pinned_version() {
        let entries = entries(REQUIREMENTS);
        assert!(
            entries.len() > 1,
            "{REQUIREMENTS_PATH} lists no dependencies"
        );
        for entry in &entries {
            let pin = entry.split_whitespace().next().unwrap_or_default();
            assert!(pin.contains("=="), "{REQUIREMENTS_PATH}: not pinned: {pin}");
            assert!(
                entry.contains(" --hash=sha256:"),
                "{REQUIREMENTS_PATH}: {pin} has no hash"
            );
        }
        let moto = format!("moto=={MOTO_VERSION}");
        assert!(
            entries
                .iter()
                .any(|e| e.split_whitespace().next() == Some(moto.as_str())),
            "{REQUIREMENTS_PATH} does not pin {moto}: regenerate it as its header says"
        );
        assert!(
            REQUIREMENTS.contains(&format!("echo 'moto[server]=={MOTO_VERSION}' |")),
            "the regeneration command in {REQUIREMENTS_PATH} names another moto version"
        );
    }

    #[test]
    fn the_requirements_were_resolved_under_the_oldest_python_accepted() {
        let (major, minor) = MIN_PYTHON;
        assert!(
            REQUIREMENTS.contains(&format!(
                "autogenerated by pip-compile with Python {major}.{minor}\n"
            )),
            "{REQUIREMENTS_PATH} was resolved under another Python than MIN_PYTHON {major}.{minor}"
        );
    }

    fn scratch_venv(server: bool, marker: Option<&str>) -> PathBuf {
        let venv = std::env::temp_dir().join(format!("moto-venv-{}", uuid::Uuid::new_v4()));
        fs::create_dir_all(venv.join("bin")).expect("creating the scratch venv");
        if server {
            fs::write(venv.join("bin").join("moto_server"), "").expect("writing moto_server");
        }
        if let Some(marker) = marker {
            fs::write(venv.join(MARKER), marker).expect("writing the marker");
        }
        venv
    }

    #[test]
    fn a_venv_is_current_only_for_the_requirements_it_was_installed_from() {
        let installed = "moto==1 --hash=sha256:aa\n";
        let venv = scratch_venv(true, Some(&format!("{}\n", sha256_hex(installed))));
        assert!(is_current(&venv, installed));
        assert!(!is_current(&venv, "moto==1 --hash=sha256:bb\n"));
        let _ = fs::remove_dir_all(&venv);
    }

    #[test]
    fn a_venv_without_the_server_or_the_marker_is_stale() {
        let requirements = "moto==1 --hash=sha256:aa\n";
        let no_server = scratch_venv(false, Some(&sha256_hex(requirements)));
        assert!(!is_current(&no_server, requirements));
        let no_marker = scratch_venv(true, None);
        assert!(!is_current(&no_marker, requirements));
        // What installs before the requirements file left: a version, no hash.
        fs::write(no_marker.join("moto-version"), MOTO_VERSION).expect("writing moto-version");
        assert!(!is_current(&no_marker, requirements));
        for venv in [no_server, no_marker] {
            let _ = fs::remove_dir_all(&venv);
        }
    }

    #[test]
    fn python_versions_parse_from_what_the_interpreter_prints() {
        assert_eq!(parse_version("3 11\n"), Some((3, 11)));
        assert_eq!(parse_version("3 9"), Some((3, 9)));
        assert!(parse_version("3 9") < Some(MIN_PYTHON));
        assert!(parse_version("3 13") >= Some(MIN_PYTHON));
        for bad in ["", "3", "3.11", "3 11 2", "Python 3 11"] {
            assert_eq!(parse_version(bad), None, "{bad:?}");
        }
    }
}
