//! `token-refresh`: refresh-token rotation at the OAuth 2.1 token endpoint,
//! `POST /oauth2/token` with `grant_type=refresh_token` (form-encoded, public
//! native client `bench-cli` sending `client_id`), against the real release
//! server with durable storage (`docs/contracts/oauth2.md`).
//!
//! It is the OAuth 2.1 twin of `dashboard-refresh`: the same engine rotation
//! (retire the token, return its successor, durably) behind another wire
//! format, so the two should cost the same; `refresh-pair` (in `main.rs`) runs
//! both in one command with identical settings and server configuration.
//!
//! Setup gives every worker its own user (one refresh family per worker, as
//! `dashboard-refresh` does, so every refresh is a real durable rotation, never
//! a grace answer or a reuse), each from its own `X-Forwarded-For` address:
//!
//! 1. `POST /api/auth/sign-up/email` `{email, password, name}` with a trusted
//!    `Origin` → the `tachigo.session_token` cookie;
//! 2. `GET /oauth2/authorize?response_type=code&client_id=bench-cli&redirect_uri=http://127.0.0.1:1/callback&scope=openid%20offline_access&state=…&code_challenge=<S256>&code_challenge_method=S256`
//!    with that cookie, redirects not followed → 302 whose `Location` carries
//!    `code` (the loopback redirect matches the registered
//!    `http://127.0.0.1/callback` whatever the port);
//! 3. `POST /oauth2/token` `grant_type=authorization_code` with the code, the
//!    same `redirect_uri`, the PKCE `code_verifier` and `client_id` → the first
//!    `refresh_token`.
//!
//! The scope is `openid offline_access` unless `TACHIGO_BENCH_TOKEN_SCOPE`
//! names another (space-separated): with `openid` every refresh reply also
//! carries an `id_token`, a second EdDSA signature the dashboard's refresh does
//! not make (`extra.id_token_share` says how many replies had one);
//! `TACHIGO_BENCH_TOKEN_SCOPE=offline_access` leaves it out.
//!
//! Each step then posts `grant_type=refresh_token&refresh_token=…&client_id=bench-cli`
//! and keeps the new refresh token, as a native app keeps only the newest.
//! Anything but 200 with a `refresh_token` is an error, counted by status and
//! OAuth `error` code (`token 400 invalid_grant`); there should be none.
//!
//! Without `--url` the scenario spawns `tachigo-auth` (next to this binary)
//! with [`server_config`]: the `dashboard-refresh` settings (sign-up allowed,
//! `server.trust_proxy`, the dashboard origin trusted, group-commit durability)
//! plus the `[[clients]]` entry of `bench-cli`. With `--url`, the target needs
//! the same.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{bail, Context};
use base64::Engine as _;
use bytes::Bytes;
use futures::stream::{self, StreamExt, TryStreamExt};
use reqwest::header::{CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use reqwest::{Client, StatusCode, Url};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::driver::Scenario;
use crate::oauth_flow::SESSION_COOKIE;
use crate::scenarios::dashboard::BENCH_ORIGIN;
use crate::server_process::{default_server_bin, ServerProcess};
use crate::{http, Options};

/// The native client the bench registers.
pub const CLIENT_ID: &str = "bench-cli";
/// What the app asks for; the loopback port does not have to match the registered URI's.
const REDIRECT_URI: &str = "http://127.0.0.1:1/callback";
const DEFAULT_SCOPE: &str = "openid offline_access";
/// Overrides [`DEFAULT_SCOPE`] (space-separated scopes).
const SCOPE_ENV: &str = "TACHIGO_BENCH_TOKEN_SCOPE";
const STATE: &str = "s";
const PASSWORD: &str = "bench password 0123456789";
const FORM: &str = "application/x-www-form-urlencoded";
/// Sign-ups in flight at once during setup (each costs an argon2id hash).
const SETUP_PARALLELISM: usize = 8;
/// Setup addresses start here, so a `refresh-pair` against one `--url` target
/// never spends the dashboard users' per-IP allowances (10.0.0.x).
const IP_OFFSET: usize = 0x8000;

/// The configuration of every server the refresh scenarios spawn: what
/// `dashboard-refresh` sets (sign-up on, `X-Forwarded-For` trusted, the
/// dashboard's origin trusted, group-commit durability on sled) plus the
/// native client `bench-cli`. `refresh-pair` starts both scenarios' servers
/// from this very text.
pub fn server_config() -> String {
    format!(
        r#"[server]
trust_proxy = true
trusted_origins = ["{BENCH_ORIGIN}"]

[dashboard]
allow_signup = true

[storage]
durability = "group_commit"

[[clients]]
id = "{CLIENT_ID}"
name = "bench CLI"
kind = "native"
redirect_uris = ["http://127.0.0.1/callback"]
"#
    )
}

/// Spawns the release server with [`server_config`] (and the `--store` choice).
pub async fn spawn_server() -> anyhow::Result<ServerProcess> {
    ServerProcess::spawn_with_config(&default_server_bin(), Some(&server_config()), &[]).await
}

#[derive(Deserialize)]
struct TokenReply {
    #[allow(dead_code)] // parsed so a reply without one fails, as the dashboard's does
    access_token: String,
    refresh_token: Option<String>,
    id_token: Option<String>,
}

pub struct TokenRefresh {
    client: Client,
    token_url: Url,
    scope: String,
    /// Each worker's newest refresh token; only that worker touches it.
    refresh_tokens: Vec<Mutex<String>>,
    /// Refresh replies (warmup included) that also carried an `id_token`.
    id_tokens: AtomicU64,
    refreshes: AtomicU64,
    setup_s: f64,
    server: Option<ServerProcess>,
}

/// A distinct client address per virtual user (sent as `X-Forwarded-For`).
fn client_ip(user: usize) -> String {
    let n = user + IP_OFFSET;
    format!("10.{}.{}.{}", (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff)
}

/// A PKCE pair: a 43-character verifier and its S256 challenge.
fn pkce() -> (String, String) {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let verifier = b64.encode(rand::random::<[u8; 32]>());
    let challenge = b64.encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

fn form(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

/// The OAuth `error` of an error body, or `"-"`.
fn oauth_error(body: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["error"].as_str().map(str::to_string))
        .unwrap_or_else(|| "-".to_string())
}

/// Signs user `user` up, authorizes `bench-cli` for it and redeems the code:
/// the user's first refresh token.
async fn first_refresh_token(
    client: &Client,
    base: &Url,
    scope: &str,
    run: u64,
    user: usize,
) -> anyhow::Result<String> {
    let ip = client_ip(user);
    let email = format!("bench-oauth2-{run:x}-{user}@bench.example");
    let signed_up = client
        .post(base.join("/api/auth/sign-up/email")?)
        .header("origin", BENCH_ORIGIN)
        .header("x-forwarded-for", &ip)
        .json(&serde_json::json!({"email": email, "password": PASSWORD, "name": format!("bench {user}")}))
        .send()
        .await?;
    if signed_up.status() != StatusCode::OK {
        bail!(
            "sign-up/email answered {}: {}",
            signed_up.status(),
            signed_up.text().await.unwrap_or_default()
        );
    }
    let session = signed_up
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix(SESSION_COOKIE)?.strip_prefix('='))
        .and_then(|v| v.split(';').next())
        .filter(|v| !v.is_empty())
        .map(str::to_string)
        .context("sign-up/email set no session cookie")?;

    let (verifier, challenge) = pkce();
    let mut authorize = base.join("/oauth2/authorize")?;
    authorize
        .query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", CLIENT_ID)
        .append_pair("redirect_uri", REDIRECT_URI)
        .append_pair("scope", scope)
        .append_pair("state", STATE)
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");
    let authorized = client
        .get(authorize)
        .header(COOKIE, format!("{SESSION_COOKIE}={session}"))
        .header("x-forwarded-for", &ip)
        .send()
        .await?;
    if authorized.status() != StatusCode::FOUND {
        bail!(
            "authorize answered {} (is `{CLIENT_ID}` registered?): {}",
            authorized.status(),
            authorized.text().await.unwrap_or_default()
        );
    }
    let to = authorized
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .context("authorize redirected without a Location")?;
    let to = Url::parse(to).with_context(|| format!("authorize redirected to {to}"))?;
    let param = |name: &str| {
        to.query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    };
    if let Some(error) = param("error") {
        bail!("authorize redirected with error {error}: {to}");
    }
    if !to.as_str().starts_with(REDIRECT_URI) || param("state").as_deref() != Some(STATE) {
        bail!("authorize redirected to {to}, not to {REDIRECT_URI} with state {STATE}");
    }
    let code = param("code").with_context(|| format!("no code in {to}"))?;

    let redeemed = client
        .post(base.join("/oauth2/token")?)
        .header(CONTENT_TYPE, FORM)
        .header("x-forwarded-for", &ip)
        .body(form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", &verifier),
            ("client_id", CLIENT_ID),
        ]))
        .send()
        .await?;
    let status = redeemed.status();
    let body = redeemed.bytes().await?;
    if status != StatusCode::OK {
        bail!(
            "redeeming the code answered {status}: {}",
            String::from_utf8_lossy(&body)
        );
    }
    let reply: TokenReply = serde_json::from_slice(&body).context("the code's token reply")?;
    reply
        .refresh_token
        .context("the code's token reply has no refresh_token")
}

impl TokenRefresh {
    /// One refresh; the reply's body on 200, `token <status> <error>` otherwise.
    async fn post_refresh(&self, token: &str) -> Result<Bytes, String> {
        let request = self
            .client
            .post(self.token_url.clone())
            .header(CONTENT_TYPE, FORM)
            .body(form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", token),
                ("client_id", CLIENT_ID),
            ]));
        let response = request.send().await.map_err(|e| http::error_kind(&e))?;
        let status = response.status();
        let body = http::body(response).await?;
        if status != StatusCode::OK {
            return Err(format!("token {} {}", status.as_u16(), oauth_error(&body)));
        }
        Ok(body)
    }
}

impl Scenario for TokenRefresh {
    const NAME: &'static str = "token-refresh";

    async fn setup(options: &Options) -> anyhow::Result<Self> {
        if options
            .users
            .is_some_and(|u| u != u64::from(options.concurrency))
        {
            bail!(
                "token-refresh uses one user per worker (as dashboard-refresh): leave out --users"
            );
        }
        let (base, server) = match &options.url {
            Some(url) => (url.clone(), None),
            None => {
                let server = spawn_server().await?;
                (Url::parse(&server.base_url)?, Some(server))
            }
        };
        // A browser and an app during setup: redirects are read, never followed.
        let setup_client = Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(30))
            .build()?;
        let scope = std::env::var(SCOPE_ENV)
            .ok()
            .filter(|s| !s.trim().is_empty())
            .unwrap_or_else(|| DEFAULT_SCOPE.to_string());
        let run: u64 = rand::random::<u32>().into();
        let workers = options.concurrency as usize;
        let started = std::time::Instant::now();
        eprintln!("token-refresh: signing up {workers} users and authorizing {CLIENT_ID} for each");
        let tokens: Vec<String> = stream::iter(0..workers)
            .map(|user| first_refresh_token(&setup_client, &base, &scope, run, user))
            .buffered(SETUP_PARALLELISM)
            .try_collect()
            .await?;
        Ok(TokenRefresh {
            // The very client dashboard-refresh measures with.
            client: http::client(options.concurrency)?,
            token_url: base.join("/oauth2/token")?,
            scope,
            refresh_tokens: tokens.into_iter().map(Mutex::new).collect(),
            id_tokens: AtomicU64::new(0),
            refreshes: AtomicU64::new(0),
            setup_s: started.elapsed().as_secs_f64(),
            server,
        })
    }

    async fn step(&self, worker: usize, _iteration: u64) -> Result<(), String> {
        let token = self.refresh_tokens[worker]
            .lock()
            .expect("token lock")
            .clone();
        let body = self.post_refresh(&token).await?;
        let reply: TokenReply = serde_json::from_slice(&body).map_err(|_| "token body")?;
        let successor = reply.refresh_token.ok_or("no refresh_token")?;
        *self.refresh_tokens[worker].lock().expect("token lock") = successor;
        self.refreshes.fetch_add(1, Ordering::Relaxed);
        if reply.id_token.is_some() {
            self.id_tokens.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    fn extra(&self) -> Option<serde_json::Value> {
        let refreshes = self.refreshes.load(Ordering::Relaxed);
        let id_tokens = self.id_tokens.load(Ordering::Relaxed);
        Some(serde_json::json!({
            "users": self.refresh_tokens.len(),
            "durable": true,
            "client_id": CLIENT_ID,
            "scope": self.scope,
            // Share of refresh replies (warmup included) that carried an id_token:
            // a second EdDSA signature the dashboard's refresh does not make.
            "id_token_share": if refreshes == 0 { 0.0 } else { id_tokens as f64 / refreshes as f64 },
            "setup_s": self.setup_s,
        }))
    }

    fn server_pid(&self) -> Option<u32> {
        self.server.as_ref().map(ServerProcess::pid)
    }
}
