//! The `cluster` scenario's two workloads, each spread over a set of nodes
//! round-robin (a load balancer with no affinity: one counter shared by every
//! worker picks the node of each request):
//!
//! - [`SessionReads`]: `GET /api/auth/get-session` with a live web session
//!   cookie of a user drawn at random, as `get-session` does;
//! - [`Refreshes`]: `POST /api/v1/auth/refresh` with the refresh cookie, one
//!   user per worker, as `dashboard-refresh` does (every refresh a durable
//!   rotation).
//!
//! [`OverNodes`] drives either. Where the owner of a user is known (found by
//! `crate::cluster` before the load), each measured request is also recorded as
//! sent to the owner or to another node (which forwards it), so the two
//! latencies come from the same run. `crate::cluster` builds these, starts the
//! nodes and reports; `setup` is not used.

use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

use anyhow::bail;
use hdrhistogram::Histogram;
use reqwest::header::{HeaderValue, COOKIE};
use reqwest::{Client, Url};
use serde::Serialize;
use tokio::time::Instant;

use crate::driver::Scenario;
use crate::scenarios::dashboard::{refresh_at, VirtualUser};
use crate::{http, report, Options};

/// One kind of request, sendable to any node.
pub trait Workload: Send + Sync + 'static {
    const NAME: &'static str;
    /// How many users the load spreads over.
    fn users(&self) -> usize;
    /// The user of `worker`'s next request.
    fn user(&self, worker: usize) -> usize;
    /// One request for `user` to node `node`; `Err` is the error kind.
    fn send(&self, node: usize, user: usize) -> impl Future<Output = Result<(), String>> + Send;
}

/// get-session reads of live web sessions.
pub struct SessionReads {
    client: Client,
    /// `/api/auth/get-session` of each node.
    urls: Vec<Url>,
    cookies: Vec<HeaderValue>,
}

impl SessionReads {
    pub fn new(nodes: &[Url], cookies: Vec<HeaderValue>, concurrency: u32) -> anyhow::Result<Self> {
        Ok(SessionReads {
            client: http::client(concurrency)?,
            urls: join_all(nodes, "/api/auth/get-session")?,
            cookies,
        })
    }
}

impl Workload for SessionReads {
    const NAME: &'static str = "get-session";

    fn users(&self) -> usize {
        self.cookies.len()
    }

    fn user(&self, _worker: usize) -> usize {
        rand::random_range(0..self.cookies.len())
    }

    async fn send(&self, node: usize, user: usize) -> Result<(), String> {
        let request = self
            .client
            .get(self.urls[node].clone())
            .header(COOKIE, self.cookies[user].clone());
        let body = http::fetch_ok(request, "status").await?;
        if !body.starts_with(br#"{"session":"#) {
            return Err("no session".to_string());
        }
        Ok(())
    }
}

/// Dashboard cookie refreshes, one signed-in user per worker.
pub struct Refreshes {
    client: Client,
    /// `/api/v1/auth/refresh` of each node.
    urls: Vec<Url>,
    /// One per worker; only that worker touches it (outside the load, the
    /// probes of `crate::cluster`, one request at a time).
    users: Vec<Mutex<VirtualUser>>,
}

impl Refreshes {
    pub fn new(nodes: &[Url], users: Vec<VirtualUser>, concurrency: u32) -> anyhow::Result<Self> {
        Ok(Refreshes {
            client: http::client(concurrency)?,
            urls: join_all(nodes, "/api/v1/auth/refresh")?,
            users: users.into_iter().map(Mutex::new).collect(),
        })
    }
}

impl Workload for Refreshes {
    const NAME: &'static str = "dashboard-refresh";

    fn users(&self) -> usize {
        self.users.len()
    }

    fn user(&self, worker: usize) -> usize {
        worker
    }

    async fn send(&self, node: usize, user: usize) -> Result<(), String> {
        refresh_at(&self.client, &self.urls[node], &self.users[user]).await
    }
}

fn join_all(nodes: &[Url], path: &str) -> anyhow::Result<Vec<Url>> {
    Ok(nodes
        .iter()
        .map(|base| base.join(path))
        .collect::<Result<_, _>>()?)
}

/// Latencies (µs) of requests sent to the user's owner and to another node.
pub struct Classes {
    pub owner: Histogram<u64>,
    pub forwarded: Histogram<u64>,
}

impl Default for Classes {
    fn default() -> Classes {
        Classes {
            owner: report::new_histogram(),
            forwarded: report::new_histogram(),
        }
    }
}

impl Classes {
    /// Records `us` for a request to `node` for a user owned by `owner`.
    pub fn record(&mut self, node: usize, owner: usize, us: u64) {
        let histogram = if node == owner {
            &mut self.owner
        } else {
            &mut self.forwarded
        };
        histogram.saturating_record(us.max(1));
    }

    pub fn add(&mut self, other: &Classes) {
        // Same bounds on both sides: adding cannot fail.
        let _ = self.owner.add(&other.owner);
        let _ = self.forwarded.add(&other.forwarded);
    }

    /// p50 of each class and their difference.
    pub fn split(&self) -> Split {
        let p50 =
            |h: &Histogram<u64>| (!h.is_empty()).then(|| h.value_at_quantile(0.5) as f64 / 1000.0);
        let (owner, forwarded) = (p50(&self.owner), p50(&self.forwarded));
        Split {
            owner_p50_ms: owner,
            forwarded_p50_ms: forwarded,
            forward_adds_p50_ms: owner.zip(forwarded).map(|(o, f)| f - o),
            owner_requests: self.owner.len(),
            forwarded_requests: self.forwarded.len(),
        }
    }
}

/// The p50 latency of requests to the owner and of forwarded ones, and what
/// the forward adds (their difference), in ms; `None` for an empty class.
#[derive(Serialize, Clone, Copy, Default)]
pub struct Split {
    pub owner_p50_ms: Option<f64>,
    pub forwarded_p50_ms: Option<f64>,
    pub forward_adds_p50_ms: Option<f64>,
    pub owner_requests: u64,
    pub forwarded_requests: u64,
}

/// A workload driven round-robin over `nodes` nodes.
pub struct OverNodes<W: Workload> {
    pub workload: W,
    nodes: usize,
    /// The owner of each user, where known.
    owners: Vec<Option<usize>>,
    next_node: AtomicUsize,
    /// Every request sent, warmup and cancelled ones included: what the
    /// nodes' forward counters are divided by.
    sent: AtomicU64,
    /// One per worker, for the measured window.
    classes: Vec<Mutex<Classes>>,
    measure_from: Instant,
    pids: Vec<u32>,
}

impl<W: Workload> OverNodes<W> {
    /// Built right before the driver runs it (its measured window starts
    /// `--warmup` seconds from now, as the driver's does).
    pub fn new(
        workload: W,
        nodes: usize,
        owners: Vec<Option<usize>>,
        pids: Vec<u32>,
        options: &Options,
    ) -> Self {
        OverNodes {
            workload,
            nodes,
            owners,
            next_node: AtomicUsize::new(0),
            sent: AtomicU64::new(0),
            classes: (0..options.concurrency)
                .map(|_| Mutex::new(Classes::default()))
                .collect(),
            measure_from: Instant::now() + options.warmup(),
            pids,
        }
    }

    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    /// The measured window's requests by class, all workers together.
    pub fn classes(&self) -> Classes {
        let mut all = Classes::default();
        for classes in &self.classes {
            all.add(&classes.lock().expect("classes lock"));
        }
        all
    }
}

impl<W: Workload> Scenario for OverNodes<W> {
    const NAME: &'static str = W::NAME;

    async fn setup(_options: &Options) -> anyhow::Result<Self> {
        bail!("built by the cluster scenario, which starts its nodes first")
    }

    async fn step(&self, worker: usize, _iteration: u64) -> Result<(), String> {
        let node = self.next_node.fetch_add(1, Ordering::Relaxed) % self.nodes;
        let user = self.workload.user(worker);
        self.sent.fetch_add(1, Ordering::Relaxed);
        let started = Instant::now();
        self.workload.send(node, user).await?;
        if started >= self.measure_from {
            if let Some(owner) = self.owners[user] {
                let us = started.elapsed().as_micros() as u64;
                self.classes[worker]
                    .lock()
                    .expect("classes lock")
                    .record(node, owner, us);
            }
        }
        Ok(())
    }

    fn extra(&self) -> Option<serde_json::Value> {
        let mut figures = serde_json::json!({
            "nodes": self.nodes,
            "users": self.workload.users(),
            "owners_known": self.owners.iter().filter(|o| o.is_some()).count(),
        });
        figures["under_load"] = serde_json::to_value(self.classes().split()).ok()?;
        Some(figures)
    }

    fn server_pids(&self) -> Vec<u32> {
        self.pids.clone()
    }
}
