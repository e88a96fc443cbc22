//! moto server: the AWS-compatible endpoint on loopback that tests and the local pipeline use.
//! Installed into the project's `.venv` at a pinned version, started on a free port, stopped on drop.

use std::fs::{self, File};
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
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

/// A running moto server; dropping it stops the server.
pub struct Moto {
    child: Child,
    pub port: u16,
    pub endpoint: String,
    pub log: PathBuf,
}

impl Moto {
    /// Installs if needed and starts a server on a free loopback port.
    pub fn start(root: &Path) -> Result<Moto> {
        let port = free_port()?;
        Self::start_on(root, port)
    }

    /// Starts a server on `port`; an occupied port is an error, never a shared server.
    pub fn start_on(root: &Path, port: u16) -> Result<Moto> {
        let server = ensure_installed(root)?;
        if TcpStream::connect(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port)).is_ok() {
            bail!(
                "port {port} on 127.0.0.1 is already in use; stop what listens there or pick another port"
            );
        }
        let log_dir = root.join("target").join("moto");
        fs::create_dir_all(&log_dir).context("creating target/moto")?;
        let log = log_dir.join(format!("moto-{port}.log"));
        let log_file = File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let child = Command::new(&server)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().context("log file")?)
            .stderr(log_file)
            .spawn()
            .with_context(|| format!("starting {}", server.display()))?;
        let mut moto = Moto {
            child,
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

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Variables that point every AWS SDK (ours, boto3, the CLI) at this server.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        sdk_env(&self.endpoint)
    }
}

/// Endpoint, region and dummy credentials for an emulator: no call can reach real AWS.
pub fn sdk_env(endpoint: &str) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ENDPOINT_URL", endpoint.to_string()),
        ("AWS_REGION", "us-east-1".to_string()),
        ("AWS_DEFAULT_REGION", "us-east-1".to_string()),
        ("AWS_ACCESS_KEY_ID", "test".to_string()),
        ("AWS_SECRET_ACCESS_KEY", "test".to_string()),
        ("AWS_EC2_METADATA_DISABLED", "true".to_string()),
    ]
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
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
