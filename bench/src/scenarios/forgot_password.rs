//! `forgot-password`: `POST /api/v1/auth/forgot-password` `{email}` against the
//! real release server, half the requests for registered addresses and half for
//! unknown ones, each class timed on its own.
//!
//! The endpoint answers 202 with the same body either way, no sooner than
//! `email.answer_floor` (300 ms by default) after the request arrived, and
//! queues a reset mail (durably) only for a registered address. The figure that
//! matters is not the throughput (a closed loop over a 300 ms floor gives
//! about `concurrency / 0.3` requests/s) but how far apart the two classes'
//! latencies are: `extra` has p50/p90/p99/max per class, the differences of
//! the medians and of the p99s, and the Kolmogorov-Smirnov distance between the
//! two distributions with its 5 % critical value (a distance under it means
//! the two samples are indistinguishable at that level). That critical value
//! assumes independent samples, which a closed loop does not quite give, so
//! `ks_distance_same_class` is the control: the same distance between the
//! even and the odd workers' halves of one class (an A/A comparison in the
//! same run); a between-class distance no larger than those is noise.
//!
//! Setup registers `--users` users (default 1,000) through `/register`, each
//! from its own `X-Forwarded-For` address (registration spends a per-IP
//! password attempt). Each worker then alternates a registered address and an
//! unknown one of the same shape (workers start in opposite phases, so both
//! classes are always in flight); every answer must be 202 with the body of the
//! first answer, whichever class that was.
//!
//! Without `--url` the scenario spawns `tachigo-auth` (next to this binary)
//! with `dashboard.allow_signup`, `server.trust_proxy`, group-commit durability,
//! and the mail brakes lifted: `email.requests_per_minute` 1,000,000 and
//! `email.per_address_interval` 1 ms, so every registered-address request
//! queues a mail (no SMTP server: mails go to `<data_dir>/outbox/`). `extra`
//! also reports the mails queued during the load, read from `/metrics`. With
//! `--url`, the target needs the same settings.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use anyhow::bail;
use bytes::Bytes;
use futures::stream::{self, StreamExt, TryStreamExt};
use hdrhistogram::Histogram;
use reqwest::{Client, StatusCode, Url};
use tokio::time::Instant;

use crate::driver::Scenario;
use crate::server_process::{default_server_bin, ServerProcess};
use crate::{http, Options};

const DEFAULT_USERS: u64 = 1_000;
const PASSWORD: &str = "bench password 0123456789";
/// Registrations in flight at once during setup (each costs an argon2id hash).
const SETUP_PARALLELISM: usize = 16;
/// The answer floor the spawned server keeps (its default, not overridden).
const DEFAULT_ANSWER_FLOOR_MS: u64 = 300;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Class {
    Registered,
    Unknown,
}

/// Mail counters read from the server's `/metrics`.
#[derive(Default, Clone, Copy)]
struct MailCounters {
    reset_enqueued: f64,
    reset_throttled: f64,
    refused: f64,
    delivered: f64,
    queued: f64,
}

pub struct ForgotPassword {
    client: Client,
    url: Url,
    metrics_url: Url,
    run: u64,
    users: u64,
    concurrency: u64,
    /// The body of the first answer; every other answer must be the same bytes.
    reference_body: OnceLock<Bytes>,
    /// Per class and worker parity (`[registered even, registered odd, unknown
    /// even, unknown odd]`), µs, 4 significant figures (a few tens of µs at
    /// 300 ms). A few hundred requests a second never contend on the locks.
    /// The parity halves of one class are the A/A control: how far apart two
    /// samples of the *same* class come out in this run.
    latency_us: [Mutex<Histogram<u64>>; 4],
    /// 202 answers for registered addresses, warmup included (each should
    /// have queued one mail).
    registered_answers: AtomicU64,
    mails_before: Option<MailCounters>,
    measure_from: Instant,
    duration_s: u64,
    setup_s: f64,
    server: Option<ServerProcess>,
}

fn class_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 4).expect("valid histogram bounds")
}

/// A distinct client address per registering user (sent as `X-Forwarded-For`).
fn client_ip(user: u64) -> String {
    format!(
        "10.{}.{}.{}",
        (user >> 16) & 0xff,
        (user >> 8) & 0xff,
        user & 0xff
    )
}

/// Registered addresses are numbered `0..users`, unknown ones from `users` on:
/// both classes have the same shape.
fn address(run: u64, n: u64) -> String {
    format!("bench-{run:x}-{n}@bench.example")
}

async fn register(client: &Client, url: &Url, run: u64, user: u64) -> anyhow::Result<()> {
    let registered = client
        .post(url.clone())
        .header("x-forwarded-for", client_ip(user))
        .json(&serde_json::json!({"email": address(run, user), "password": PASSWORD}))
        .send()
        .await?;
    if registered.status() != StatusCode::CREATED {
        bail!(
            "register answered {} (is dashboard.allow_signup on?): {}",
            registered.status(),
            registered.text().await.unwrap_or_default()
        );
    }
    Ok(())
}

/// The mail counters of `/metrics`, or `None` if the target does not serve them.
async fn mail_counters(client: &Client, url: &Url) -> Option<MailCounters> {
    let response = client
        .get(url.clone())
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .ok()?;
    if response.status() != StatusCode::OK {
        return None;
    }
    let text = response.text().await.ok()?;
    let mut counters = MailCounters::default();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let Ok(value) = value.trim().parse::<f64>() else {
            continue;
        };
        let slot = match series.trim() {
            r#"tachigo_mail_enqueued_total{kind="reset_password"}"# => &mut counters.reset_enqueued,
            r#"tachigo_mail_throttled_total{kind="reset_password"}"# => {
                &mut counters.reset_throttled
            }
            "tachigo_mail_refused_total" => &mut counters.refused,
            r#"tachigo_mail_deliveries_total{outcome="sent"}"# => &mut counters.delivered,
            "tachigo_mail_queued" => &mut counters.queued,
            _ => continue,
        };
        *slot = value;
    }
    Some(counters)
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

fn latency(histogram: &Histogram<u64>, duration_s: u64) -> serde_json::Value {
    serde_json::json!({
        "requests": histogram.len(),
        "per_s": histogram.len() as f64 / duration_s as f64,
        "min": ms(histogram.min()),
        "mean": histogram.mean() / 1000.0,
        "p50": ms(histogram.value_at_quantile(0.50)),
        "p90": ms(histogram.value_at_quantile(0.90)),
        "p99": ms(histogram.value_at_quantile(0.99)),
        "max": ms(histogram.max()),
    })
}

/// The two-sample Kolmogorov-Smirnov distance (the largest gap between the two
/// empirical CDFs) and its critical value at the 5 % level.
fn kolmogorov_smirnov(a: &Histogram<u64>, b: &Histogram<u64>) -> (f64, f64) {
    let mut counts: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
    for v in a.iter_recorded() {
        counts.entry(v.value_iterated_to()).or_default().0 += v.count_at_value();
    }
    for v in b.iter_recorded() {
        counts.entry(v.value_iterated_to()).or_default().1 += v.count_at_value();
    }
    let (n, m) = (a.len() as f64, b.len() as f64);
    let (mut seen_a, mut seen_b, mut distance) = (0u64, 0u64, 0f64);
    for (count_a, count_b) in counts.values() {
        seen_a += count_a;
        seen_b += count_b;
        distance = distance.max((seen_a as f64 / n - seen_b as f64 / m).abs());
    }
    (distance, 1.358 * ((n + m) / (n * m)).sqrt())
}

impl ForgotPassword {
    /// The address a step asks about: registered ones walk `0..users` with the
    /// workers side by side, unknown ones are never reused.
    fn address_for(&self, class: Class, worker: usize, iteration: u64) -> String {
        let n = (iteration / 2) * self.concurrency + worker as u64;
        match class {
            Class::Registered => address(self.run, n % self.users),
            Class::Unknown => address(self.run, self.users + n),
        }
    }
}

impl Scenario for ForgotPassword {
    const NAME: &'static str = "forgot-password";

    async fn setup(options: &Options) -> anyhow::Result<Self> {
        let users = options.users.unwrap_or(DEFAULT_USERS).max(1);
        let (base, server) = match &options.url {
            Some(url) => (url.clone(), None),
            None => {
                let server = ServerProcess::spawn(
                    &default_server_bin(),
                    &[
                        ("TACHIGO__DASHBOARD__ALLOW_SIGNUP", "true"),
                        ("TACHIGO__SERVER__TRUST_PROXY", "true"),
                        ("TACHIGO__STORAGE__DURABILITY", "group_commit"),
                        ("TACHIGO__EMAIL__REQUESTS_PER_MINUTE", "1000000"),
                        ("TACHIGO__EMAIL__PER_ADDRESS_INTERVAL", "1ms"),
                    ],
                )
                .await?;
                (Url::parse(&server.base_url)?, Some(server))
            }
        };
        let client = http::client(options.concurrency)?;
        let run: u64 = rand::random::<u32>().into();
        let started = std::time::Instant::now();
        eprintln!("forgot-password: registering {users} users");
        let register_url = base.join("/api/v1/auth/register")?;
        stream::iter(0..users)
            .map(|user| register(&client, &register_url, run, user))
            .buffer_unordered(SETUP_PARALLELISM)
            .try_collect::<()>()
            .await?;
        let setup_s = started.elapsed().as_secs_f64();
        let metrics_url = base.join("/metrics")?;
        let mails_before = mail_counters(&client, &metrics_url).await;
        Ok(ForgotPassword {
            url: base.join("/api/v1/auth/forgot-password")?,
            metrics_url,
            client,
            run,
            users,
            concurrency: options.concurrency.into(),
            reference_body: OnceLock::new(),
            latency_us: std::array::from_fn(|_| Mutex::new(class_histogram())),
            registered_answers: AtomicU64::new(0),
            mails_before,
            // The driver starts its clock right after setup returns.
            measure_from: Instant::now() + options.warmup(),
            duration_s: options.duration,
            setup_s,
            server,
        })
    }

    async fn step(&self, worker: usize, iteration: u64) -> Result<(), String> {
        let class = if (worker as u64 + iteration).is_multiple_of(2) {
            Class::Registered
        } else {
            Class::Unknown
        };
        let email = self.address_for(class, worker, iteration);
        let request = self
            .client
            .post(self.url.clone())
            .header("x-forwarded-for", client_ip(worker as u64))
            .json(&serde_json::json!({ "email": email }));
        let started = Instant::now();
        let response = request.send().await.map_err(|e| http::error_kind(&e))?;
        let status = response.status();
        let body = http::body(response).await?;
        let elapsed = started.elapsed();
        if status != StatusCode::ACCEPTED {
            return Err(format!("status {}", status.as_u16()));
        }
        if *self.reference_body.get_or_init(|| body.clone()) != body {
            return Err("body differs".to_string());
        }
        if class == Class::Registered {
            self.registered_answers.fetch_add(1, Ordering::Relaxed);
        }
        if started >= self.measure_from {
            let us = u64::try_from(elapsed.as_micros())
                .unwrap_or(u64::MAX)
                .max(1);
            let slot = match class {
                Class::Registered => 0,
                Class::Unknown => 2,
            } + worker % 2;
            self.latency_us[slot]
                .lock()
                .expect("histogram lock")
                .saturating_record(us);
        }
        Ok(())
    }

    fn extra(&self) -> Option<serde_json::Value> {
        let halves: Vec<Histogram<u64>> = self
            .latency_us
            .iter()
            .map(|h| h.lock().expect("histogram lock").clone())
            .collect();
        let mut registered = halves[0].clone();
        registered.add(&halves[1]).ok()?;
        let mut unknown = halves[2].clone();
        unknown.add(&halves[3]).ok()?;
        let mut figures = serde_json::json!({
            "users": self.users,
            "setup_s": self.setup_s,
            "answer_floor_ms": DEFAULT_ANSWER_FLOOR_MS,
            "body": self
                .reference_body
                .get()
                .map(|b| String::from_utf8_lossy(b).into_owned()),
        });
        if !registered.is_empty() {
            figures["registered_ms"] = latency(&registered, self.duration_s);
        }
        if !unknown.is_empty() {
            figures["unknown_ms"] = latency(&unknown, self.duration_s);
        }
        if !registered.is_empty() && !unknown.is_empty() {
            let diff =
                |q: f64| ms(registered.value_at_quantile(q)) - ms(unknown.value_at_quantile(q));
            let (distance, critical) = kolmogorov_smirnov(&registered, &unknown);
            figures["registered_minus_unknown_ms"] = serde_json::json!({
                "p50": diff(0.50),
                "p99": diff(0.99),
                "mean": (registered.mean() - unknown.mean()) / 1000.0,
            });
            figures["ks_distance"] = distance.into();
            figures["ks_critical_5pct"] = critical.into();
            if halves.iter().all(|h| !h.is_empty()) {
                figures["ks_distance_same_class"] = serde_json::json!({
                    "registered": kolmogorov_smirnov(&halves[0], &halves[1]).0,
                    "unknown": kolmogorov_smirnov(&halves[2], &halves[3]).0,
                });
            }
        }
        // The mail counters after the load (a blocking read on this
        // multi-thread runtime; extra() is called once, after the run).
        let after = tokio::task::block_in_place(|| {
            tokio::runtime::Handle::current()
                .block_on(mail_counters(&self.client, &self.metrics_url))
        });
        if let (Some(before), Some(after)) = (self.mails_before, after) {
            figures["mail"] = serde_json::json!({
                "registered_answers": self.registered_answers.load(Ordering::Relaxed),
                "reset_mails_queued": after.reset_enqueued - before.reset_enqueued,
                "reset_mails_throttled": after.reset_throttled - before.reset_throttled,
                "refused_queue_full": after.refused - before.refused,
                "delivered_all_kinds": after.delivered - before.delivered,
                "still_queued": after.queued,
            });
        }
        Some(figures)
    }

    fn server_pid(&self) -> Option<u32> {
        self.server.as_ref().map(ServerProcess::pid)
    }
}
