//! Real cluster nodes for tests: `tachigo-auth serve` processes on 127.0.0.1
//! over one fresh PostgreSQL database, joined with ractor_cluster through
//! fixed node ports and a shared secret file. Each node logs to a file the
//! test can read.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// The public URL every node shares (the nodes compare it when they meet).
pub const PUBLIC_URL: &str = "http://127.0.0.1:8080";

pub struct Node {
    pub name: String,
    pub base: String,
    pub log: PathBuf,
    child: Child,
}

impl Node {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// SIGKILL: nothing of the node's shutdown runs.
    pub fn kill_hard(mut self) {
        super::process::kill_hard(&mut self.child);
    }

    /// SIGTERM, and the exit status once the process has ended.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        super::process::terminate(&mut self.child)
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The exit status, if the process has ended.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().unwrap()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What the nodes of one test share: a database, a secret, node ports.
pub struct ClusterSetup {
    pub dir: TempDir,
    pub database_url: String,
    pub secret_file: PathBuf,
    /// Node-to-node ports, one per node this setup can start.
    pub node_ports: Vec<u16>,
}

impl ClusterSetup {
    /// Room for `nodes` nodes on a fresh database.
    pub async fn new(nodes: usize) -> ClusterSetup {
        let dir = tempfile::tempdir().unwrap();
        let secret_file = dir.path().join("cluster.secret");
        write_secret(&secret_file, &"s3cr3t-".repeat(8));
        ClusterSetup {
            database_url: tachigo_testkit::postgres().fresh_database().await,
            secret_file,
            node_ports: (0..nodes).map(|_| tachigo_testkit::free_port()).collect(),
            dir,
        }
    }

    pub fn seeds(&self) -> String {
        let seeds: Vec<String> = self
            .node_ports
            .iter()
            .map(|p| format!("\"127.0.0.1:{p}\""))
            .collect();
        format!("[{}]", seeds.join(","))
    }

    /// The environment of node `i`: its name and node port, the shared
    /// database, secret and seeds, sign-up on, and client addresses taken
    /// from `X-Forwarded-For` (each simulated user is its own client).
    pub fn env(&self, i: usize) -> Vec<(String, String)> {
        [
            ("TACHIGO__SERVER__PUBLIC_URL", PUBLIC_URL.to_string()),
            ("TACHIGO__SERVER__TRUST_PROXY", "true".into()),
            ("TACHIGO__DASHBOARD__ALLOW_SIGNUP", "true".into()),
            ("TACHIGO__OAUTH__ALLOW_EMAIL_SIGNUP", "true".into()),
            ("TACHIGO__STORAGE__BACKEND", "postgres".into()),
            ("TACHIGO__STORAGE__POSTGRES__URL", self.database_url.clone()),
            ("TACHIGO__CLUSTER__NODE_NAME", format!("node-{}", i + 1)),
            (
                "TACHIGO__CLUSTER__LISTEN",
                format!("127.0.0.1:{}", self.node_ports[i]),
            ),
            ("TACHIGO__CLUSTER__SEEDS", self.seeds()),
            (
                "TACHIGO__CLUSTER__SECRET_FILE",
                self.secret_file.display().to_string(),
            ),
            ("TACHIGO__CLUSTER__JOIN_TIMEOUT", "\"3s\"".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    /// Starts node `i` with `extra` environment on top; returns once it
    /// serves HTTP (not necessarily joined: see [`wait_ready`]).
    pub async fn spawn(&self, i: usize, extra: &[(&str, &str)]) -> Node {
        let data = self.dir.path().join(format!("node-{}", i + 1));
        let addr_file = data.with_extension("addr");
        let log = data.with_extension("log");
        let _ = std::fs::remove_file(&addr_file);
        let child = Command::new(super::process::binary())
            .args(["serve", "--listen", "127.0.0.1:0", "--data"])
            .arg(&data)
            .arg("--addr-file")
            .arg(&addr_file)
            .envs(self.env(i))
            .envs(extra.iter().copied())
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("spawning a node");
        let mut node = Node {
            name: format!("node-{}", i + 1),
            base: String::new(),
            log,
            child,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(a) = std::fs::read_to_string(&addr_file) {
                if !a.is_empty() {
                    node.base = format!("http://{a}");
                    return node;
                }
            }
            if let Some(status) = node.exited() {
                panic!("{} exited ({status}):\n{}", node.name, node.log_text());
            }
            assert!(Instant::now() < deadline, "{} did not start", node.name);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Starts `n` nodes (the first alone, so it makes the signing key) and
    /// waits until every one is ready and sees all `n`.
    pub async fn start(&self, n: usize) -> Vec<Node> {
        let first = self.spawn(0, &[]).await;
        wait_ready(&first).await;
        let mut nodes = vec![first];
        for i in 1..n {
            nodes.push(self.spawn(i, &[]).await);
        }
        for node in &nodes {
            wait_members(node, n).await;
            wait_ready(node).await;
        }
        nodes
    }
}

pub fn write_secret(path: &Path, secret: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, secret).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

pub async fn is_ready(node: &Node) -> bool {
    client()
        .get(node.url("/readyz"))
        .send()
        .await
        .is_ok_and(|r| r.status() == 200)
}

pub async fn wait_ready(node: &Node) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !is_ready(node).await {
        assert!(
            Instant::now() < deadline,
            "{} never became ready:\n{}",
            node.name,
            node.log_text()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The sum of every series of metric `name` (labelled or not) on `node`.
pub async fn metric(node: &Node, name: &str) -> f64 {
    let text = client()
        .get(node.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    metric_in(&text, name)
}

pub fn metric_in(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{'))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

pub async fn wait_members(node: &Node, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while metric(node, "tachigo_cluster_members").await != n as f64 {
        assert!(
            Instant::now() < deadline,
            "{} never saw {n} members:\n{}",
            node.name,
            node.log_text()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
