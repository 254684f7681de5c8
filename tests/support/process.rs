//! The real `tachigo-auth` binary as a child process, for tests about what the
//! process does: crash durability, signals, the command line.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_tachigo-auth"))
}

/// Runs a CLI command on `data_dir` with `stdin`, returning its output.
pub fn run_cli(data_dir: &Path, args: &[&str], stdin: &str, env: &[(&str, &str)]) -> Output {
    use std::io::Write;
    let mut child = Command::new(binary())
        .args(args)
        .arg("--data")
        .arg(data_dir)
        .envs(env.iter().copied())
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning the binary");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

pub struct ServerChild {
    pub child: Child,
    pub base: String,
}

impl ServerChild {
    /// `serve` on 127.0.0.1 (OS-chosen port) over `data_dir`, ready when this returns.
    /// It runs on sled in `data_dir` unless `env` names another store: a test
    /// about HTTP behaviour passes [`crate::support::test_store_env`] so it runs
    /// on the suite's store; one about the sled directory itself passes nothing.
    pub async fn spawn(data_dir: &Path, env: &[(&str, &str)]) -> ServerChild {
        let addr_file = data_dir.with_extension("addr");
        let _ = std::fs::remove_file(&addr_file);
        let child = Command::new(binary())
            .args(["serve", "--listen", "127.0.0.1:0", "--data"])
            .arg(data_dir)
            .arg("--addr-file")
            .arg(&addr_file)
            .envs(env.iter().copied())
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawning the server");
        let deadline = Instant::now() + Duration::from_secs(30);
        let addr = loop {
            if let Ok(a) = std::fs::read_to_string(&addr_file) {
                if !a.is_empty() {
                    break a;
                }
            }
            assert!(Instant::now() < deadline, "the server did not start");
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        ServerChild {
            child,
            base: format!("http://{addr}"),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// SIGKILL: no shutdown code runs.
    pub fn kill_hard(mut self) {
        kill_hard(&mut self.child);
    }

    /// SIGTERM, and the exit status once the process has ended.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        terminate(&mut self.child)
    }
}

/// SIGKILL, and waits for the process to end.
pub fn kill_hard(child: &mut Child) {
    child.kill().unwrap();
    child.wait().unwrap();
}

/// SIGTERM, and the exit status once the process has ended.
pub fn terminate(child: &mut Child) -> std::process::ExitStatus {
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    child.wait().unwrap()
}
