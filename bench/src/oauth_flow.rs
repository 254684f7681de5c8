//! What the OAuth scenarios share: the local OpenID Connect provider (the very
//! one the end-to-end tests use, compiled in from `tests/support/` rather than
//! copied), a target server configured with it, and one complete browser
//! sign-in — `POST /api/auth/sign-in/social` → the provider's authorization
//! endpoint → `GET /api/auth/callback/local` with the state cookie — yielding
//! the session cookie.
//!
//! Without `--url` the real `tachigo-auth` binary is spawned with the provider
//! configured through `TACHIGO__OAUTH__PROVIDERS__LOCAL__*` and the per-client
//! limit on started sign-ins lifted (all load comes from 127.0.0.1; give a
//! `--url` target `limits.oauth_starts_per_minute` likewise). With `--url`, the
//! provider listens on `TACHIGO_BENCH_OIDC_ADDR` and the target must already
//! have it configured as provider `local` (issuer `http://<that address>`,
//! client id `tachigo-test-client`, secret `tachigo-test-client-secret`).

#[path = "../../tests/support/oidc_provider.rs"]
#[allow(dead_code)] // the tests drive more of the provider than the bench does
pub mod oidc_provider;

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use reqwest::{Client, StatusCode, Url};

use self::oidc_provider::{OidcProvider, CLIENT_ID, CLIENT_SECRET};
use crate::server_process::{default_server_bin, ServerProcess};
use crate::{http, Options};

const OIDC_ADDR_ENV: &str = "TACHIGO_BENCH_OIDC_ADDR";
const STATE_COOKIE: &str = "tachigo.oauth_state";
pub const SESSION_COOKIE: &str = "tachigo.session_token";

/// A server that signs users in through the local provider.
pub struct OAuthTarget {
    pub base: Url,
    client: Client,
    // Dropped after the server, so the server never sees its provider vanish first.
    server: Option<ServerProcess>,
    pub provider: OidcProvider,
}

/// The value `name` is set to by a response's `Set-Cookie` headers.
fn set_cookie_value(response: &reqwest::Response, name: &str) -> Option<String> {
    let prefix = format!("{name}=");
    response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix(&prefix))
        .and_then(|rest| rest.split(';').next())
        .map(str::to_string)
        .filter(|v| !v.is_empty())
}

/// Like a browser that is told where to go: it must not follow redirects itself.
fn browser_client(concurrency: u32) -> anyhow::Result<Client> {
    Ok(Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(concurrency as usize)
        .tcp_nodelay(true)
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(30))
        .build()?)
}

fn location(response: &reqwest::Response) -> Result<String, String> {
    response
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .ok_or_else(|| "no location".to_string())
}

impl OAuthTarget {
    /// The server process this target started, if it started one.
    pub fn server_pid(&self) -> Option<u32> {
        self.server.as_ref().map(ServerProcess::pid)
    }

    pub async fn setup(options: &Options) -> anyhow::Result<OAuthTarget> {
        Self::setup_with(options, &[]).await
    }

    /// As `setup`, with more settings for a spawned server (ignored with `--url`).
    pub async fn setup_with(
        options: &Options,
        server_env: &[(&str, &str)],
    ) -> anyhow::Result<OAuthTarget> {
        let (provider, base, server) = match &options.url {
            Some(url) => {
                let addr: SocketAddr = std::env::var(OIDC_ADDR_ENV)
                    .with_context(|| {
                        format!("with --url, give the address the target expects its `local` provider on in {OIDC_ADDR_ENV}")
                    })?
                    .parse()
                    .context("TACHIGO_BENCH_OIDC_ADDR is not an address")?;
                (OidcProvider::start_on(addr).await, url.clone(), None)
            }
            None => {
                let provider = OidcProvider::start().await;
                let provider_env = Self::server_env(&provider);
                let server = ServerProcess::spawn(
                    &default_server_bin(),
                    &provider_env
                        .iter()
                        .map(|(k, v)| (*k, v.as_str()))
                        .chain(server_env.iter().copied())
                        .collect::<Vec<_>>(),
                )
                .await?;
                let base = Url::parse(&server.base_url)?;
                (provider, base, Some(server))
            }
        };
        Ok(OAuthTarget {
            base,
            client: browser_client(options.concurrency)?,
            server,
            provider,
        })
    }

    /// A target for a server the caller started (and stops) itself, already
    /// configured with `provider` as provider `local`: the `cluster`
    /// scenario's nodes.
    pub fn at(base: Url, provider: OidcProvider, concurrency: u32) -> anyhow::Result<OAuthTarget> {
        Ok(OAuthTarget {
            base,
            client: browser_client(concurrency)?,
            server: None,
            provider,
        })
    }

    /// The settings a spawned server needs for `provider` as its provider
    /// `local`, with the per-client limit on started sign-ins lifted (all
    /// load comes from 127.0.0.1; the pending-flow cap stays).
    pub fn server_env(provider: &OidcProvider) -> Vec<(&'static str, String)> {
        vec![
            (
                "TACHIGO__OAUTH__PROVIDERS__LOCAL__ISSUER",
                provider.issuer.clone(),
            ),
            (
                "TACHIGO__OAUTH__PROVIDERS__LOCAL__CLIENT_ID",
                CLIENT_ID.to_string(),
            ),
            (
                "TACHIGO__OAUTH__PROVIDERS__LOCAL__CLIENT_SECRET",
                CLIENT_SECRET.to_string(),
            ),
            (
                "TACHIGO__LIMITS__OAUTH_STARTS_PER_MINUTE",
                "100000000".to_string(),
            ),
            ("TACHIGO__LIMITS__OAUTH_STARTS_BURST", "100000".to_string()),
        ]
    }

    /// Signs `users` subjects `<prefix><i>` in, 64 at a time; their
    /// `Cookie` header values.
    pub async fn session_cookies(
        &self,
        prefix: &str,
        users: u64,
    ) -> anyhow::Result<Vec<reqwest::header::HeaderValue>> {
        use futures::{StreamExt, TryStreamExt};
        eprintln!("signing {users} users in through the local provider");
        futures::stream::iter(0..users)
            .map(|i| async move {
                let token = self
                    .sign_in(&format!("{prefix}{i}"))
                    .await
                    .map_err(|e| anyhow::anyhow!("signing user {i} in: {e}"))?;
                Ok::<_, anyhow::Error>(reqwest::header::HeaderValue::from_str(&format!(
                    "{SESSION_COOKIE}={token}"
                ))?)
            })
            .buffer_unordered(64)
            .try_collect()
            .await
    }

    /// One complete sign-in of provider subject `subject` (a verified user of
    /// the local provider); returns the session cookie's value.
    pub async fn sign_in(&self, subject: &str) -> Result<String, String> {
        let request = self
            .client
            .post(
                self.base
                    .join("/api/auth/sign-in/social")
                    .map_err(|e| e.to_string())?,
            )
            .json(&serde_json::json!({"provider": "local", "loginHint": subject}));
        let started = http::send_ok(request, "sign-in status").await?;
        let state = set_cookie_value(&started, STATE_COOKIE).ok_or("no state cookie")?;
        let body: serde_json::Value = started.json().await.map_err(|e| http::error_kind(&e))?;
        let authorize = body["url"].as_str().ok_or("no authorization url")?;

        let approved = self
            .client
            .get(authorize)
            .send()
            .await
            .map_err(|e| http::error_kind(&e))?;
        if approved.status() != StatusCode::FOUND {
            return Err(format!("provider status {}", approved.status().as_u16()));
        }
        // The provider redirects to the configured public URL; go to the target itself.
        let back = Url::parse(&location(&approved)?).map_err(|e| e.to_string())?;
        let mut callback = self.base.join(back.path()).map_err(|e| e.to_string())?;
        callback.set_query(back.query());

        let landed = self
            .client
            .get(callback)
            .header(COOKIE, format!("{STATE_COOKIE}={state}"))
            .send()
            .await
            .map_err(|e| http::error_kind(&e))?;
        let to = location(&landed)?;
        if let Some((_, code)) = to.split_once("error=") {
            return Err(format!("callback error {code}"));
        }
        set_cookie_value(&landed, SESSION_COOKIE).ok_or_else(|| "no session cookie".to_string())
    }
}
