//! moto server: the AWS-compatible endpoint on loopback that tests and the local pipeline use.
//! Installed into the project's `.venv` at a pinned version, started on a free port, stopped on drop.

use std::fs::{self, File};
use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// Pinned so that every machine emulates the same AWS behaviour.
pub const MOTO_VERSION: &str = "5.2.5";

/// How long a starting server may take before we call it broken.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// Path of the `moto_server` executable, installing moto first if it is missing or outdated.
pub fn ensure_installed(root: &Path) -> Result<PathBuf> {
    let venv = root.join(".venv");
    let server = venv.join("bin").join("moto_server");
    let marker = venv.join("moto-version");
    if server.is_file() && fs::read_to_string(&marker).is_ok_and(|v| v.trim() == MOTO_VERSION) {
        return Ok(server);
    }
    let python = find_python()?;
    eprintln!(
        "installing moto[server]=={MOTO_VERSION} into {}",
        venv.display()
    );
    if !venv.join("bin").join("pip").is_file() {
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
    let status = Command::new(venv.join("bin").join("pip"))
        .args([
            "install",
            "--quiet",
            "--disable-pip-version-check",
            &format!("moto[server]=={MOTO_VERSION}"),
        ])
        .status()
        .context("running pip in .venv")?;
    if !status.success() || !server.is_file() {
        bail!(
            "could not install moto[server]=={MOTO_VERSION} into {} (pip: {status}). \
             Check that the Python package index is reachable, or install it by hand with \
             `{}/bin/pip install 'moto[server]=={MOTO_VERSION}'`.",
            venv.display(),
            venv.display()
        );
    }
    fs::write(&marker, MOTO_VERSION).context("writing .venv/moto-version")?;
    Ok(server)
}

fn find_python() -> Result<String> {
    for candidate in ["python3", "python"] {
        if Command::new(candidate)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
        {
            return Ok(candidate.to_string());
        }
    }
    bail!(
        "moto needs Python 3 and none was found on PATH (tried python3, python). \
         Install Python 3.9 or newer, e.g. `apt-get install python3 python3-venv`."
    )
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
