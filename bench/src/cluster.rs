//! `cluster`: three nodes over one PostgreSQL database against one node, in
//! one run, for get-session and dashboard-refresh.
//!
//! First three release `tachigo-auth` nodes are started over one fresh
//! database (this run's `--store postgres` database, which `cluster` implies):
//! each with `[cluster]` from the environment (node name `node-<i>`, a fixed
//! node port from `tachigo_testkit::free_port`, every node's port as seeds, one
//! secret file of mode 0600), a fixed HTTP port, and the same public URL (node
//! 1's), trusted origins and cookie settings. Node 1 starts alone (it makes the
//! signing key; it is ready once its 2 s join timeout passes), then nodes 2
//! and 3; the load starts once all three report `tachigo_cluster_members 3`
//! and `/readyz` 200. Then the baseline: one node without `[cluster]`, on a
//! fresh database of its own, otherwise configured the same, with the same
//! users made the same way (not node 1 of the cluster with the others
//! stopped: that node would serve a database the cluster phase grew and
//! actors it took over mid-run). Each phase runs the same steps:
//!
//! 1. `--users` users (default 5,000) sign in through the local OpenID
//!    Connect provider, and one user per worker registers and logs in on the
//!    dashboard, all through node 1;
//! 2. owners: for a sample of users (the first 300 readers, every dashboard
//!    user), one request is sent to node 1 and the nodes' `/metrics` are read
//!    before and after. Node 1's `tachigo_cluster_forwarded_total` unmoved and
//!    nobody's `tachigo_cluster_forwards_received_total` moved: node 1 owns the
//!    user; node 1 forwarded one and exactly one other node received one: that
//!    node owns it; anything else: unknown (not classified);
//! 3. the idle probe: for 2 s per workload, one request at a time, each sampled
//!    user's request is sent to every node in turn; latencies are kept apart
//!    for the owner and for the nodes that forward;
//! 4. the load: each workload through the closed-loop driver, round-robin over
//!    the nodes with no affinity (`scenarios::cluster`), measured requests to
//!    a sampled user recorded as to-owner or forwarded as well.
//!
//! What a forward adds at p50 is p50(forwarded) − p50(to the owner), of the
//! same users in the same run: once under load, once idle. The share
//! forwarded is the nodes' `tachigo_cluster_forwarded_total` (both outcomes,
//! summed over nodes, read before and after the load) over every request the
//! load sent (warmup included, as the counters are). The mean of
//! `tachigo_cluster_forward_seconds` over the same span (from its `_sum` and
//! `_count`; its quantiles cover a rolling minute that would mix the two
//! workloads) is the forwarding node's wait for the owner's answer, the
//! owner's handling included.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use futures::stream::{self, StreamExt, TryStreamExt};
use reqwest::{Client, Url};
use serde::Serialize;
use tokio::time::{timeout_at, Instant};

use crate::driver;
use crate::oauth_flow::oidc_provider::OidcProvider;
use crate::oauth_flow::OAuthTarget;
use crate::report::Report;
use crate::scenarios::cluster::{Classes, OverNodes, Refreshes, SessionReads, Split, Workload};
use crate::scenarios::dashboard::{sign_up_and_in, VirtualUser, BENCH_ORIGIN};
use crate::server_process::{default_server_bin, stop_all, ServerProcess};
use crate::{print, store_choice, Options};

/// The nodes of the cluster phase.
const NODES: usize = 3;
/// Default `--users` (get-session's own default).
const DEFAULT_READERS: u64 = 5_000;
/// Readers whose owner is looked for (the first ones; every dashboard user is).
const OWNER_SAMPLE: usize = 300;
/// The owner search stops here, whatever it found by then.
const OWNER_SEARCH_LIMIT: Duration = Duration::from_secs(60);
/// How long each workload's idle probe runs.
const IDLE_PROBE: Duration = Duration::from_secs(2);
/// How long the nodes may take to see each other and answer `/readyz` 200.
const FORMING_LIMIT: Duration = Duration::from_secs(30);
/// What a forward may add at p50.
const TARGET_ADDED_P50_MS: f64 = 0.5;
/// Dashboard registrations and logins in flight at once during setup.
const SETUP_PARALLELISM: usize = 8;

/// What one node's `/metrics` says about the cluster.
#[derive(Clone, Copy, Default)]
struct NodeMetrics {
    members: f64,
    answered: f64,
    failed: f64,
    received: f64,
    forward_sum_s: f64,
    forward_count: f64,
}

impl NodeMetrics {
    fn forwarded(&self) -> f64 {
        self.answered + self.failed
    }
}

/// The sum of the samples of metric `name` whose labels contain `label`.
fn metric(text: &str, name: &str, label: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{'))
        })
        .filter(|l| l.contains(label))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>()
        // An empty sum is -0.0.
        + 0.0
}

/// The nodes of one phase (one, or a cluster) and the provider they sign in with.
struct Deployment {
    servers: Vec<ServerProcess>,
    /// The HTTP base URL of each node.
    urls: Vec<Url>,
    /// Node 1's, for sign-ins; holds the provider, dropped after the servers.
    oauth: OAuthTarget,
    metrics: Client,
    _dir: tempfile::TempDir,
}

impl Drop for Deployment {
    fn drop(&mut self) {
        stop_all(std::mem::take(&mut self.servers));
    }
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}

fn write_secret(path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let secret: String = (0..32)
        .map(|_| format!("{:02x}", rand::random::<u8>()))
        .collect();
    std::fs::write(path, secret).with_context(|| format!("writing {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(())
}

impl Deployment {
    /// Starts `nodes` nodes over `database` (a cluster when more than one)
    /// and waits until each sees all of them and answers `/readyz` 200.
    async fn start(nodes: usize, database: &str, options: &Options) -> anyhow::Result<Deployment> {
        let dir = tempfile::TempDir::new()?;
        let secret_file = dir.path().join("cluster.secret");
        write_secret(&secret_file)?;
        let http_ports: Vec<u16> = (0..nodes).map(|_| tachigo_testkit::free_port()).collect();
        let node_ports: Vec<u16> = (0..nodes).map(|_| tachigo_testkit::free_port()).collect();
        let seeds = format!(
            "[{}]",
            node_ports
                .iter()
                .map(|p| format!("\"{}\"", loopback(*p)))
                .collect::<Vec<_>>()
                .join(",")
        );
        // Node 1's address, under the name the frontend's origin uses.
        let public_url = format!("http://localhost:{}", http_ports[0]);
        let origins = format!(r#"["{BENCH_ORIGIN}"]"#);
        let provider = OidcProvider::start().await;
        let mut shared: Vec<(&str, String)> = OAuthTarget::server_env(&provider);
        shared.extend([
            ("TACHIGO__STORAGE__BACKEND", "postgres".to_string()),
            ("TACHIGO__STORAGE__POSTGRES__URL", database.to_string()),
            ("TACHIGO__STORAGE__DURABILITY", "group_commit".to_string()),
            ("TACHIGO__SERVER__PUBLIC_URL", public_url),
            ("TACHIGO__SERVER__TRUSTED_ORIGINS", origins),
            ("TACHIGO__SERVER__TRUST_PROXY", "true".to_string()),
            ("TACHIGO__DASHBOARD__ALLOW_SIGNUP", "true".to_string()),
            // The server's own default filter for ractor_cluster (its every
            // closed node session is a warning), at this bench's `warn`.
            ("RUST_LOG", "warn,ractor_cluster=error".to_string()),
        ]);
        let env_of = |i: usize| {
            let mut env = shared.clone();
            if nodes > 1 {
                env.extend([
                    ("TACHIGO__CLUSTER__NODE_NAME", format!("node-{}", i + 1)),
                    (
                        "TACHIGO__CLUSTER__LISTEN",
                        loopback(node_ports[i]).to_string(),
                    ),
                    ("TACHIGO__CLUSTER__SEEDS", seeds.clone()),
                    (
                        "TACHIGO__CLUSTER__SECRET_FILE",
                        secret_file.display().to_string(),
                    ),
                    ("TACHIGO__CLUSTER__JOIN_TIMEOUT", "\"2s\"".to_string()),
                ]);
            }
            env
        };
        let spawn = |i: usize| {
            let env = env_of(i);
            let listen = loopback(http_ports[i]);
            async move {
                let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
                ServerProcess::spawn_on(&default_server_bin(), listen, &env)
                    .await
                    .with_context(|| format!("starting node {}", i + 1))
            }
        };
        eprintln!("cluster: starting {nodes} node(s) over one PostgreSQL database");
        // Node 1 alone first: it makes the signing key the others then read.
        let mut servers = vec![spawn(0).await?];
        servers.extend(futures::future::try_join_all((1..nodes).map(spawn)).await?);
        let urls = servers
            .iter()
            .map(|s| Url::parse(&s.base_url))
            .collect::<Result<Vec<_>, _>>()?;
        let deployment = Deployment {
            oauth: OAuthTarget::at(urls[0].clone(), provider, options.concurrency)?,
            servers,
            urls,
            metrics: Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(5))
                .build()?,
            _dir: dir,
        };
        if nodes > 1 {
            deployment.wait_formed().await?;
        }
        Ok(deployment)
    }

    fn nodes(&self) -> usize {
        self.urls.len()
    }

    fn pids(&self) -> Vec<u32> {
        self.servers.iter().map(ServerProcess::pid).collect()
    }

    async fn scrape(&self, node: usize) -> anyhow::Result<NodeMetrics> {
        let text = self
            .metrics
            .get(self.urls[node].join("/metrics")?)
            .send()
            .await?
            .error_for_status()?
            .text()
            .await?;
        Ok(NodeMetrics {
            members: metric(&text, "tachigo_cluster_members", ""),
            answered: metric(
                &text,
                "tachigo_cluster_forwarded_total",
                r#"outcome="answered""#,
            ),
            failed: metric(
                &text,
                "tachigo_cluster_forwarded_total",
                r#"outcome="failed""#,
            ),
            received: metric(&text, "tachigo_cluster_forwards_received_total", ""),
            forward_sum_s: metric(&text, "tachigo_cluster_forward_seconds_sum", ""),
            forward_count: metric(&text, "tachigo_cluster_forward_seconds_count", ""),
        })
    }

    async fn scrape_all(&self) -> anyhow::Result<Vec<NodeMetrics>> {
        let mut all = Vec::with_capacity(self.nodes());
        for node in 0..self.nodes() {
            all.push(self.scrape(node).await?);
        }
        Ok(all)
    }

    async fn is_ready(&self, node: usize) -> bool {
        let Ok(url) = self.urls[node].join("/readyz") else {
            return false;
        };
        self.metrics
            .get(url)
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
    }

    /// Waits until every node counts all members and answers `/readyz` 200.
    async fn wait_formed(&self) -> anyhow::Result<()> {
        let deadline = Instant::now() + FORMING_LIMIT;
        let want = self.nodes() as f64;
        loop {
            let mut seen = Vec::with_capacity(self.nodes());
            for node in 0..self.nodes() {
                let members = self.scrape(node).await.map_or(0.0, |m| m.members);
                seen.push((members, self.is_ready(node).await));
            }
            if seen
                .iter()
                .all(|&(members, ready)| members == want && ready)
            {
                eprintln!("cluster: {} nodes joined", self.nodes());
                return Ok(());
            }
            if Instant::now() > deadline {
                let state: Vec<String> = seen
                    .iter()
                    .enumerate()
                    .map(|(i, (m, r))| format!("node-{}: {m} members, ready {r}", i + 1))
                    .collect();
                bail!(
                    "the nodes did not all see {want} members and answer /readyz 200 within {} s ({})",
                    FORMING_LIMIT.as_secs(),
                    state.join("; ")
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// The owner of the user whose one request went to node 1, from the nodes'
/// counters before and after it; `None` when they do not say it clearly.
fn owner_from(before: &[NodeMetrics], after: &[NodeMetrics]) -> Option<usize> {
    let forwarded: Vec<f64> = (0..before.len())
        .map(|i| after[i].forwarded() - before[i].forwarded())
        .collect();
    let received: Vec<f64> = (0..before.len())
        .map(|i| after[i].received - before[i].received)
        .collect();
    if forwarded[1..].iter().any(|&f| f != 0.0) || received[0] != 0.0 {
        return None;
    }
    let receivers: Vec<usize> = (1..before.len()).filter(|&i| received[i] != 0.0).collect();
    if forwarded[0] == 0.0 && receivers.is_empty() {
        Some(0)
    } else if forwarded[0] == 1.0 && receivers.len() == 1 && received[receivers[0]] == 1.0 {
        Some(receivers[0])
    } else {
        None
    }
}

/// The owners of the first `sample` users of `workload` (every user's, on
/// one node: itself).
async fn find_owners<W: Workload>(
    deployment: &Deployment,
    workload: &W,
    sample: usize,
) -> anyhow::Result<Vec<Option<usize>>> {
    let users = workload.users();
    if deployment.nodes() == 1 {
        return Ok(vec![Some(0); users]);
    }
    let mut owners = vec![None; users];
    let deadline = Instant::now() + OWNER_SEARCH_LIMIT;
    let mut before = deployment.scrape_all().await?;
    for (user, owner) in owners.iter_mut().enumerate().take(sample) {
        if Instant::now() >= deadline {
            break;
        }
        let Ok(sent) = timeout_at(deadline, workload.send(0, user)).await else {
            break;
        };
        let after = deployment.scrape_all().await?;
        if sent.is_ok() {
            *owner = owner_from(&before, &after);
        }
        before = after;
    }
    let mut per_node = vec![0usize; deployment.nodes()];
    for owner in owners.iter().flatten() {
        per_node[*owner] += 1;
    }
    eprintln!(
        "cluster: {}: owners of {} sampled users found, per node {per_node:?}",
        W::NAME,
        per_node.iter().sum::<usize>()
    );
    Ok(owners)
}

/// For `IDLE_PROBE`, one request at a time: every known user's request to
/// every node in turn (starting one node further each pass).
async fn idle_probe<W: Workload>(
    workload: &W,
    owners: &[Option<usize>],
    nodes: usize,
) -> (Classes, u64) {
    let known: Vec<(usize, usize)> = owners
        .iter()
        .enumerate()
        .filter_map(|(user, owner)| Some((user, (*owner)?)))
        .collect();
    let mut classes = Classes::default();
    let mut errors = 0;
    if known.is_empty() {
        return (classes, errors);
    }
    let deadline = Instant::now() + IDLE_PROBE;
    'passes: for pass in 0.. {
        for &(user, owner) in &known {
            for k in 0..nodes {
                if Instant::now() >= deadline {
                    break 'passes;
                }
                let node = (user + pass + k) % nodes;
                let started = Instant::now();
                match timeout_at(deadline, workload.send(node, user)).await {
                    Ok(Ok(())) => {
                        classes.record(node, owner, started.elapsed().as_micros() as u64);
                    }
                    Ok(Err(_)) => errors += 1,
                    Err(_) => break 'passes,
                }
            }
        }
    }
    (classes, errors)
}

/// One workload on one deployment.
#[derive(Serialize)]
struct Row {
    workload: &'static str,
    nodes: usize,
    throughput_per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
    errors: u64,
    server_cpu_us_per_op: Option<f64>,
    load_generator_cpu_us_per_op: Option<f64>,
    requests_sent: u64,
    forwarded: u64,
    forward_failed: u64,
    /// forwarded / requests_sent.
    share_forwarded: f64,
    /// Mean of `tachigo_cluster_forward_seconds` over the load, in ms.
    server_forward_mean_ms: Option<f64>,
    under_load: Split,
    idle: Split,
    idle_errors: u64,
}

fn title(workload: &str, nodes: usize) -> &'static str {
    match (workload, nodes > 1) {
        ("get-session", true) => "cluster: get-session, 3 nodes",
        ("get-session", false) => "cluster: get-session, 1 node",
        (_, true) => "cluster: dashboard-refresh, 3 nodes",
        (_, false) => "cluster: dashboard-refresh, 1 node",
    }
}

/// Finds owners, probes idle, then drives `workload` over every node.
async fn measure<W: Workload>(
    deployment: &Deployment,
    workload: W,
    sample: usize,
    options: &Options,
    json: bool,
) -> anyhow::Result<Row> {
    let nodes = deployment.nodes();
    let owners = find_owners(deployment, &workload, sample).await?;
    let (idle, idle_errors) = idle_probe(&workload, &owners, nodes).await;
    let before = deployment.scrape_all().await?;
    let scenario = Arc::new(OverNodes::new(
        workload,
        nodes,
        owners,
        deployment.pids(),
        options,
    ));
    let mut report: Report = driver::run_built(Arc::clone(&scenario), options).await?;
    // Requests cancelled at the deadline may still be finishing on the nodes.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let after = deployment.scrape_all().await?;
    let delta = |f: fn(&NodeMetrics) -> f64| -> f64 {
        before.iter().zip(&after).map(|(b, a)| f(a) - f(b)).sum()
    };
    let forwarded = delta(NodeMetrics::forwarded);
    let forward_count = delta(|m| m.forward_count);
    let sent = scenario.sent();
    let under_load = scenario.classes().split();
    let idle = idle.split();
    let row = Row {
        workload: W::NAME,
        nodes,
        throughput_per_s: report.throughput_per_s,
        p50_ms: report.latency_ms.p50,
        p99_ms: report.latency_ms.p99,
        errors: report.errors.count,
        server_cpu_us_per_op: report.cpu_us_per_op.as_ref().and_then(|c| c.server),
        load_generator_cpu_us_per_op: report.cpu_us_per_op.as_ref().map(|c| c.load_generator),
        requests_sent: sent,
        forwarded: forwarded as u64,
        forward_failed: delta(|m| m.failed) as u64,
        share_forwarded: if sent == 0 {
            0.0
        } else {
            forwarded / sent as f64
        },
        server_forward_mean_ms: (forward_count > 0.0)
            .then(|| delta(|m| m.forward_sum_s) / forward_count * 1000.0),
        under_load,
        idle,
        idle_errors,
    };
    report.scenario = title(W::NAME, nodes);
    report.store = Some("postgres");
    if let Some(extra) = report.extra.as_mut() {
        extra["requests_sent"] = sent.into();
        extra["forwarded"] = row.forwarded.into();
        extra["forward_failed"] = row.forward_failed.into();
        extra["forwards_received"] = (delta(|m| m.received) as u64).into();
        extra["share_forwarded"] = row.share_forwarded.into();
        extra["server_forward_mean_ms"] = row.server_forward_mean_ms.into();
        if nodes > 1 {
            extra["members_after"] = after.iter().map(|m| m.members).collect::<Vec<_>>().into();
        }
        extra["idle"] = serde_json::to_value(idle)?;
        extra["idle_errors"] = idle_errors.into();
    }
    print(&report, json)?;
    Ok(row)
}

/// Both workloads on `nodes` nodes over `database`.
async fn phase(
    nodes: usize,
    database: &str,
    readers: u64,
    options: &Options,
    json: bool,
) -> anyhow::Result<Vec<Row>> {
    let deployment = Deployment::start(nodes, database, options).await?;
    let cookies = deployment
        .oauth
        .session_cookies("bench-cluster-reader-", readers)
        .await?;
    let client = crate::http::client(options.concurrency)?;
    let run: u64 = rand::random::<u32>().into();
    let workers = options.concurrency as usize;
    eprintln!("cluster: registering and signing in {workers} dashboard users");
    let users: Vec<VirtualUser> = stream::iter(0..workers)
        .map(|user| sign_up_and_in(&client, &deployment.urls[0], run, user))
        .buffered(SETUP_PARALLELISM)
        .try_collect()
        .await?;
    let reads = SessionReads::new(&deployment.urls, cookies, options.concurrency)?;
    let refreshes = Refreshes::new(&deployment.urls, users, options.concurrency)?;
    let mut rows = vec![measure(&deployment, reads, OWNER_SAMPLE, options, json).await?];
    rows.push(measure(&deployment, refreshes, workers, options, json).await?);
    drop(deployment);
    Ok(rows)
}

/// Three nodes against one for one workload.
#[derive(Serialize)]
struct Comparison {
    workload: &'static str,
    /// Three nodes' throughput over one node's.
    throughput_ratio: f64,
    p99_ms_three_nodes: f64,
    p99_ms_one_node: f64,
    share_forwarded: f64,
    forward_adds_p50_ms_under_load: Option<f64>,
    forward_adds_p50_ms_idle: Option<f64>,
    /// Against `TARGET_ADDED_P50_MS`, under load and idle.
    target_met_under_load: Option<bool>,
    target_met_idle: Option<bool>,
}

#[derive(Serialize)]
struct Summary {
    scenario: &'static str,
    store: &'static str,
    cpus: usize,
    concurrency: u32,
    warmup_s: u64,
    duration_s: u64,
    session_users: u64,
    dashboard_users: u32,
    target_forward_adds_p50_ms: f64,
    runs: Vec<Row>,
    comparisons: Vec<Comparison>,
}

pub async fn run(options: &Options, json: bool) -> anyhow::Result<()> {
    let database = store_choice::postgres_url()
        .context("the cluster scenario runs over PostgreSQL (run with --store postgres)")?
        .to_string();
    let readers = options.users.unwrap_or(DEFAULT_READERS).max(1);
    let mut runs = phase(NODES, &database, readers, options, json).await?;
    // The single node gets a database of its own, as fresh as the cluster's was.
    let single = tachigo_testkit::postgres().fresh_database().await;
    runs.extend(phase(1, &single, readers, options, json).await?);
    let comparisons = ["get-session", "dashboard-refresh"]
        .into_iter()
        .filter_map(|workload| {
            let three = runs
                .iter()
                .find(|r| r.workload == workload && r.nodes > 1)?;
            let one = runs
                .iter()
                .find(|r| r.workload == workload && r.nodes == 1)?;
            let added = three.under_load.forward_adds_p50_ms;
            let added_idle = three.idle.forward_adds_p50_ms;
            Some(Comparison {
                workload: three.workload,
                throughput_ratio: three.throughput_per_s / one.throughput_per_s,
                p99_ms_three_nodes: three.p99_ms,
                p99_ms_one_node: one.p99_ms,
                share_forwarded: three.share_forwarded,
                forward_adds_p50_ms_under_load: added,
                forward_adds_p50_ms_idle: added_idle,
                target_met_under_load: added.map(|a| a <= TARGET_ADDED_P50_MS),
                target_met_idle: added_idle.map(|a| a <= TARGET_ADDED_P50_MS),
            })
        })
        .collect();
    let summary = Summary {
        scenario: "cluster",
        store: "postgres",
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        concurrency: options.concurrency,
        warmup_s: options.warmup,
        duration_s: options.duration,
        session_users: readers,
        dashboard_users: options.concurrency,
        target_forward_adds_p50_ms: TARGET_ADDED_P50_MS,
        runs,
        comparisons,
    };
    if json {
        println!("{}", serde_json::to_string(&summary)?);
    } else {
        print_table(&summary);
    }
    Ok(())
}

fn ms(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_string(), |v| format!("{v:.3}"))
}

fn signed_ms(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_string(), |v| format!("{v:+.3}"))
}

fn print_table(s: &Summary) {
    println!(
        "== cluster | {} CPUs | concurrency {} | {}s measured after {}s warmup | store {} | {} session users, {} dashboard users",
        s.cpus, s.concurrency, s.duration_s, s.warmup_s, s.store, s.session_users, s.dashboard_users
    );
    println!(
        "  {:<18} {:>5} {:>10} {:>8} {:>8} {:>7} {:>10} {:>11}",
        "workload", "nodes", "req/s", "p50 ms", "p99 ms", "errors", "forwarded", "server us/op"
    );
    for r in &s.runs {
        println!(
            "  {:<18} {:>5} {:>10.1} {:>8.3} {:>8.3} {:>7} {:>9.1}% {:>11}",
            r.workload,
            r.nodes,
            r.throughput_per_s,
            r.p50_ms,
            r.p99_ms,
            r.errors,
            r.share_forwarded * 100.0,
            r.server_cpu_us_per_op
                .map_or_else(|| "-".to_string(), |c| format!("{c:.1}"))
        );
    }
    println!("  p50 ms, to the owner / forwarded / added, the same users (3 nodes):");
    println!(
        "  {:<18} {:>28} {:>28} {:>14}",
        "workload", "under load", "idle (one at a time)", "server mean"
    );
    for r in s.runs.iter().filter(|r| r.nodes > 1) {
        let split = |x: &Split| {
            format!(
                "{} / {} / {}",
                ms(x.owner_p50_ms),
                ms(x.forwarded_p50_ms),
                signed_ms(x.forward_adds_p50_ms)
            )
        };
        println!(
            "  {:<18} {:>28} {:>28} {:>14}",
            r.workload,
            split(&r.under_load),
            split(&r.idle),
            ms(r.server_forward_mean_ms)
        );
    }
    let verdict = |met: Option<bool>| match met {
        Some(true) => "met",
        Some(false) => "missed",
        None => "no figure",
    };
    for c in &s.comparisons {
        println!(
            "  {}: 3 nodes / 1 node {:.3} x throughput, p99 {:.3} vs {:.3} ms; {:.1}% forwarded",
            c.workload,
            c.throughput_ratio,
            c.p99_ms_three_nodes,
            c.p99_ms_one_node,
            c.share_forwarded * 100.0,
        );
        println!(
            "    a forward adds {} ms at p50 under load ({}), {} ms idle ({}); target <= {} ms",
            signed_ms(c.forward_adds_p50_ms_under_load),
            verdict(c.target_met_under_load),
            signed_ms(c.forward_adds_p50_ms_idle),
            verdict(c.target_met_idle),
            s.target_forward_adds_p50_ms,
        );
    }
}
