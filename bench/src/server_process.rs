//! The real `tachigo-auth` binary, spawned on 127.0.0.1 with an OS-chosen port
//! and a temporary data directory, for HTTP scenarios that do not get `--url`.
//! Configuration is passed as `TACHIGO__SECTION__KEY` environment variables
//! and, where a scenario needs what the environment cannot say well (such as
//! `[[clients]]`), a TOML file given with `--config`, exactly as an operator
//! would. A scenario's own variables win over the store's
//! (`store_choice::server_env`), so one can point a server at a database of its
//! own. [`ServerProcess::spawn_on`] listens on a port chosen beforehand, for
//! servers whose address must be known before they start (cluster nodes share
//! one `server.public_url`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

pub struct ServerProcess {
    child: Child,
    pub base_url: String,
    _data_dir: tempfile::TempDir,
}

/// `tachigo-auth` next to this benchmark binary (both live in `target/<profile>/`).
pub fn default_server_bin() -> PathBuf {
    let me = std::env::current_exe().expect("the path of the running benchmark");
    me.with_file_name("tachigo-auth")
}

impl ServerProcess {
    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Starts the server and waits until `/readyz` answers 200.
    pub async fn spawn(bin: &Path, env: &[(&str, &str)]) -> anyhow::Result<ServerProcess> {
        Self::spawn_with_config(bin, None, env).await
    }

    /// [`spawn`](Self::spawn), with `config` (TOML) written to the data
    /// directory and passed as `--config`; `env` still wins over it.
    pub async fn spawn_with_config(
        bin: &Path,
        config: Option<&str>,
        env: &[(&str, &str)],
    ) -> anyhow::Result<ServerProcess> {
        Self::start(bin, None, config, env).await
    }

    /// [`spawn`](Self::spawn) on `listen` (a loopback address with a port
    /// taken from `tachigo_testkit::free_port`) instead of a port the OS picks.
    pub async fn spawn_on(
        bin: &Path,
        listen: SocketAddr,
        env: &[(&str, &str)],
    ) -> anyhow::Result<ServerProcess> {
        Self::start(bin, Some(listen), None, env).await
    }

    async fn start(
        bin: &Path,
        listen: Option<SocketAddr>,
        config: Option<&str>,
        env: &[(&str, &str)],
    ) -> anyhow::Result<ServerProcess> {
        if !bin.exists() {
            bail!(
                "{} not found: build it first with `cargo build --release` (or pass --server-bin)",
                bin.display()
            );
        }
        let data_dir = tempfile::TempDir::new()?;
        let addr_file = data_dir.path().join("addr");
        let listen = listen.map_or_else(|| "127.0.0.1:0".to_string(), |a| a.to_string());
        let mut command = Command::new(bin);
        command
            .args(["serve", "--listen", &listen, "--data"])
            .arg(data_dir.path().join("data"))
            .arg("--addr-file")
            .arg(&addr_file);
        if let Some(config) = config {
            let config_file = data_dir.path().join("config.toml");
            std::fs::write(&config_file, config)
                .with_context(|| format!("writing {}", config_file.display()))?;
            command.arg("--config").arg(config_file);
        }
        command
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        for (key, value) in crate::store_choice::server_env() {
            command.env(key, value);
        }
        for (key, value) in env {
            command.env(key, value);
        }
        let child = command
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let mut server = ServerProcess {
            child,
            base_url: String::new(),
            _data_dir: data_dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        let addr = loop {
            if let Ok(addr) = std::fs::read_to_string(&addr_file) {
                if !addr.is_empty() {
                    break addr;
                }
            }
            if let Some(status) = server.child.try_wait()? {
                bail!("the server exited during start-up: {status}");
            }
            if Instant::now() > deadline {
                bail!("the server did not start within 30 s");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        server.base_url = format!("http://{addr}");
        let client = reqwest::Client::builder().no_proxy().build()?;
        loop {
            let ready = client
                .get(format!("{}/readyz", server.base_url))
                .send()
                .await;
            if ready.is_ok_and(|r| r.status().is_success()) {
                return Ok(server);
            }
            if Instant::now() > deadline {
                bail!("the server did not become ready within 30 s");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Stops every server: SIGTERM to all of them first (so they shut down
/// side by side), then each is waited for and killed if it outlasts its grace.
pub fn stop_all(servers: Vec<ServerProcess>) {
    for server in &servers {
        // SAFETY: a signal to a child this process started and has not reaped.
        unsafe {
            libc::kill(server.child.id() as i32, libc::SIGTERM);
        }
    }
    drop(servers);
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        // SIGTERM for a graceful stop, then make sure it is gone.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
