//! The dashboard scenarios: `POST /api/v1/auth/refresh` (cookie) and
//! `GET /api/v1/auth/me` (bearer) against the real release server, durable storage.
//!
//! Setup registers one user per worker (so no two workers ever share a refresh
//! family: every refresh is a real durable rotation, never a grace answer or a
//! reuse) and logs each in once, keeping its refresh cookie and access token as
//! the dashboard would. Then each worker loops:
//!
//! - `dashboard`: refresh and `/me` alternately (a silent refresh, then an API
//!   call with the new token), with per-operation rates and latencies in `extra`;
//! - `dashboard-refresh`: refreshes only (the durable-rotation figure);
//! - `dashboard-me`: `/me` only (token verification plus the session liveness
//!   check), the figure to compare with the baseline.
//!
//! Without `--url` the scenario spawns `tachigo-auth` (next to this binary) with
//! `dashboard.allow_signup` and `server.trust_proxy` on and group-commit
//! durability. Each virtual user sends its own `X-Forwarded-For` address, so the
//! per-IP login limit (10/min) sees 64 clients, not one. With `--url`, the target
//! needs the same two settings and must trust the origin `BENCH_ORIGIN`.

use std::marker::PhantomData;
use std::sync::Mutex;

use anyhow::{bail, Context};
use futures::stream::{self, StreamExt, TryStreamExt};
use hdrhistogram::Histogram;
use reqwest::header::{COOKIE, SET_COOKIE};
use reqwest::{Client, Response, StatusCode, Url};
use serde::Deserialize;
use tokio::time::Instant;

use crate::driver::Scenario;
use crate::raw_http::{self, RawConnection};
use crate::report;
use crate::server_process::{default_server_bin, ServerProcess};
use crate::{http, ClientKind, Options};

/// The dashboard's origin as the spawned server is told to trust it.
pub(crate) const BENCH_ORIGIN: &str = "http://localhost:3000";
const PASSWORD: &str = "bench password 0123456789";
pub(crate) const REFRESH_COOKIE: &str = "tachigo_refresh";
/// Registrations and logins in flight at once during setup (each costs an argon2id hash).
const SETUP_PARALLELISM: usize = 8;

/// Which operations a worker loops over.
pub trait Loop: Send + Sync + 'static {
    const NAME: &'static str;
    fn op(iteration: u64) -> Op;
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Refresh,
    Me,
}

pub struct Mixed;
pub struct RefreshOnly;
pub struct MeOnly;

impl Loop for Mixed {
    const NAME: &'static str = "dashboard";
    fn op(iteration: u64) -> Op {
        if iteration % 2 == 1 {
            Op::Me
        } else {
            Op::Refresh
        }
    }
}

impl Loop for RefreshOnly {
    const NAME: &'static str = "dashboard-refresh";
    fn op(_: u64) -> Op {
        Op::Refresh
    }
}

impl Loop for MeOnly {
    const NAME: &'static str = "dashboard-me";
    fn op(_: u64) -> Op {
        Op::Me
    }
}

/// One signed-in dashboard: its cookie and in-memory access token.
pub(crate) struct VirtualUser {
    pub(crate) refresh_token: String,
    pub(crate) access_token: String,
}

/// Per-operation latencies (µs) recorded inside the measured window.
struct OpStats {
    refresh: Histogram<u64>,
    me: Histogram<u64>,
}

pub struct Dashboard<L: Loop> {
    client: Client,
    refresh_url: Url,
    me_url: Url,
    /// One per worker; only that worker touches it (the lock is never contended).
    users: Vec<Mutex<VirtualUser>>,
    /// With `--client raw`: one connection per worker, for the measured loop.
    raw: Option<Vec<tokio::sync::Mutex<RawConnection>>>,
    stats: Vec<Mutex<OpStats>>,
    measure_from: Instant,
    duration_s: u64,
    server: Option<ServerProcess>,
    _loop: PhantomData<L>,
}

#[derive(Deserialize)]
struct TokenReply {
    access_token: String,
}

/// The value of the response's refresh `Set-Cookie`.
fn refresh_cookie(response: &Response) -> Option<String> {
    response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix(REFRESH_COOKIE)?.strip_prefix('='))
        .and_then(|v| v.split(';').next())
        .filter(|v| !v.is_empty())
        .map(str::to_string)
}

/// A distinct client address per virtual user (sent as `X-Forwarded-For`).
fn client_ip(user: usize) -> String {
    format!(
        "10.{}.{}.{}",
        (user >> 16) & 0xff,
        (user >> 8) & 0xff,
        user & 0xff
    )
}

/// Registers user `user` of run `run` and logs it in once.
pub(crate) async fn sign_up_and_in(
    client: &Client,
    base: &Url,
    run: u64,
    user: usize,
) -> anyhow::Result<VirtualUser> {
    let email = format!("bench-{run:x}-{user}@bench.example");
    let ip = client_ip(user);
    let credentials = serde_json::json!({"email": email, "password": PASSWORD});
    let registered = client
        .post(base.join("/api/v1/auth/register")?)
        .header("x-forwarded-for", &ip)
        .json(&credentials)
        .send()
        .await?;
    if registered.status() != StatusCode::CREATED {
        bail!(
            "register answered {} (is dashboard.allow_signup on?): {}",
            registered.status(),
            registered.text().await.unwrap_or_default()
        );
    }
    let login = client
        .post(base.join("/api/v1/auth/login")?)
        .header("x-forwarded-for", &ip)
        .json(&credentials)
        .send()
        .await?;
    if login.status() != StatusCode::OK {
        bail!("login answered {}", login.status());
    }
    let refresh_token = refresh_cookie(&login).context("login set no refresh cookie")?;
    let reply: TokenReply = login.json().await?;
    Ok(VirtualUser {
        refresh_token,
        access_token: reply.access_token,
    })
}

/// One cookie refresh of `user` at `refresh_url` over reqwest, as the
/// dashboard's silent refresh: `user` takes the successor cookie and the new
/// access token. `Err` is the error kind.
pub(crate) async fn refresh_at(
    client: &Client,
    refresh_url: &Url,
    user: &Mutex<VirtualUser>,
) -> Result<(), String> {
    let token = user.lock().expect("user lock").refresh_token.clone();
    let request = client
        .post(refresh_url.clone())
        .header("origin", BENCH_ORIGIN)
        .header(COOKIE, format!("{REFRESH_COOKIE}={token}"));
    let response = http::send_ok(request, "refresh status").await?;
    let successor = refresh_cookie(&response).ok_or("refresh cookie")?;
    let body = http::body(response).await?;
    let reply: TokenReply = serde_json::from_slice(&body).map_err(|_| "refresh body")?;
    let mut user = user.lock().expect("user lock");
    user.refresh_token = successor;
    user.access_token = reply.access_token;
    Ok(())
}

fn latency(histogram: &Histogram<u64>) -> serde_json::Value {
    let ms = |us: u64| us as f64 / 1000.0;
    serde_json::json!({
        "p50": ms(histogram.value_at_quantile(0.50)),
        "p99": ms(histogram.value_at_quantile(0.99)),
        "p999": ms(histogram.value_at_quantile(0.999)),
        "max": ms(histogram.max()),
    })
}

impl<L: Loop> Dashboard<L> {
    /// The refresh over the lean client: the same request, the same checks.
    async fn refresh_raw(
        &self,
        raw: &tokio::sync::Mutex<RawConnection>,
        worker: usize,
    ) -> Result<(), String> {
        let cookie = format!(
            "{REFRESH_COOKIE}={}",
            self.users[worker].lock().expect("user lock").refresh_token
        );
        let response = raw
            .lock()
            .await
            .send(
                "POST",
                self.refresh_url.path(),
                &[("origin", BENCH_ORIGIN), ("cookie", &cookie)],
                b"",
            )
            .await?;
        if response.status != 200 {
            return Err(format!("refresh status {}", response.status));
        }
        let successor = raw_http::cookie_value(&response.set_cookies, REFRESH_COOKIE)
            .filter(|v| !v.is_empty())
            .ok_or("refresh cookie")?
            .to_string();
        let reply: TokenReply =
            serde_json::from_slice(&response.body).map_err(|_| "refresh body")?;
        let mut user = self.users[worker].lock().expect("user lock");
        user.refresh_token = successor;
        user.access_token = reply.access_token;
        Ok(())
    }

    async fn me_raw(
        &self,
        raw: &tokio::sync::Mutex<RawConnection>,
        worker: usize,
    ) -> Result<(), String> {
        let bearer = format!(
            "Bearer {}",
            self.users[worker].lock().expect("user lock").access_token
        );
        let response = raw
            .lock()
            .await
            .send(
                "GET",
                self.me_url.path(),
                &[("authorization", &bearer)],
                b"",
            )
            .await?;
        if response.status != 200 {
            return Err(format!("me status {}", response.status));
        }
        if !response.body.starts_with(br#"{"user":"#) {
            return Err("me body".to_string());
        }
        Ok(())
    }

    async fn refresh(&self, worker: usize) -> Result<(), String> {
        if let Some(raw) = &self.raw {
            return self.refresh_raw(&raw[worker], worker).await;
        }
        refresh_at(&self.client, &self.refresh_url, &self.users[worker]).await
    }

    async fn me(&self, worker: usize) -> Result<(), String> {
        if let Some(raw) = &self.raw {
            return self.me_raw(&raw[worker], worker).await;
        }
        let token = self.users[worker]
            .lock()
            .expect("user lock")
            .access_token
            .clone();
        let request = self.client.get(self.me_url.clone()).bearer_auth(token);
        let body = http::fetch_ok(request, "me status").await?;
        if !body.starts_with(br#"{"user":"#) {
            return Err("me body".to_string());
        }
        Ok(())
    }
}

impl<L: Loop> Scenario for Dashboard<L> {
    const NAME: &'static str = L::NAME;

    async fn setup(options: &Options) -> anyhow::Result<Self> {
        if options
            .users
            .is_some_and(|u| u != u64::from(options.concurrency))
        {
            bail!("dashboard scenarios use one user per worker: leave out --users");
        }
        let (base, server) = match &options.url {
            Some(url) => (url.clone(), None),
            None => {
                let origins = format!(r#"["{BENCH_ORIGIN}"]"#);
                let server = ServerProcess::spawn(
                    &default_server_bin(),
                    &[
                        ("TACHIGO__DASHBOARD__ALLOW_SIGNUP", "true"),
                        ("TACHIGO__SERVER__TRUST_PROXY", "true"),
                        ("TACHIGO__SERVER__TRUSTED_ORIGINS", origins.as_str()),
                        ("TACHIGO__STORAGE__DURABILITY", "group_commit"),
                    ],
                )
                .await?;
                (Url::parse(&server.base_url)?, Some(server))
            }
        };
        let client = http::client(options.concurrency)?;
        let run: u64 = rand::random::<u32>().into();
        let workers = options.concurrency as usize;
        eprintln!("dashboard: registering and signing in {workers} users");
        let users: Vec<VirtualUser> = stream::iter(0..workers)
            .map(|user| sign_up_and_in(&client, &base, run, user))
            .buffered(SETUP_PARALLELISM)
            .try_collect()
            .await?;
        let stats = (0..workers)
            .map(|_| {
                Mutex::new(OpStats {
                    refresh: report::new_histogram(),
                    me: report::new_histogram(),
                })
            })
            .collect();
        let raw = match options.client {
            ClientKind::Raw => Some(raw_http::per_worker(raw_http::address_of(&base)?, options)),
            ClientKind::Reqwest => None,
        };
        Ok(Dashboard {
            raw,
            refresh_url: base.join("/api/v1/auth/refresh")?,
            me_url: base.join("/api/v1/auth/me")?,
            client,
            users: users.into_iter().map(Mutex::new).collect(),
            stats,
            // The driver starts its clock right after setup returns.
            measure_from: Instant::now() + options.warmup(),
            duration_s: options.duration,
            server,
            _loop: PhantomData,
        })
    }

    async fn step(&self, worker: usize, iteration: u64) -> Result<(), String> {
        let op = L::op(iteration);
        let started = Instant::now();
        match op {
            Op::Refresh => self.refresh(worker).await?,
            Op::Me => self.me(worker).await?,
        }
        if started >= self.measure_from {
            let us = started.elapsed().as_micros().max(1) as u64;
            let mut stats = self.stats[worker].lock().expect("stats lock");
            let histogram = match op {
                Op::Refresh => &mut stats.refresh,
                Op::Me => &mut stats.me,
            };
            histogram.saturating_record(us);
        }
        Ok(())
    }

    fn extra(&self) -> Option<serde_json::Value> {
        let mut refresh = report::new_histogram();
        let mut me = report::new_histogram();
        for stats in &self.stats {
            let stats = stats.lock().expect("stats lock");
            refresh.add(&stats.refresh).ok()?;
            me.add(&stats.me).ok()?;
        }
        let per_s = |h: &Histogram<u64>| h.len() as f64 / self.duration_s as f64;
        let mut figures = serde_json::json!({
            "users": self.users.len(),
            "durable": true,
        });
        if !refresh.is_empty() {
            figures["refreshes_per_s"] = per_s(&refresh).into();
            figures["refresh_latency_ms"] = latency(&refresh);
        }
        if !me.is_empty() {
            figures["me_per_s"] = per_s(&me).into();
            figures["me_latency_ms"] = latency(&me);
        }
        Some(figures)
    }

    fn server_pid(&self) -> Option<u32> {
        self.server.as_ref().map(ServerProcess::pid)
    }
}
