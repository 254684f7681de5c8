//! `get-session`: the frontend's hot path, `GET /api/auth/get-session` with a
//! session cookie, against the real release server.
//!
//! Setup signs `--users` users (default 5,000) in through the local OpenID
//! Connect provider, each with one live web session; every step then reads the
//! session of a user drawn at random, as a Next.js server component forwarding
//! the browser's `Cookie` header would. The sessions are fresh, so no read
//! slides an expiry: this measures the read path (index lookup, actor message,
//! JSON), which writes nothing.

use std::time::Instant;

use reqwest::header::{HeaderValue, COOKIE};
use reqwest::{Client, Url};

use crate::driver::Scenario;
use crate::oauth_flow::OAuthTarget;
use crate::{http, Options};

const DEFAULT_USERS: u64 = 5_000;

pub struct GetSession {
    client: Client,
    url: Url,
    cookies: Vec<HeaderValue>,
    setup_s: f64,
    target: OAuthTarget,
}

impl Scenario for GetSession {
    const NAME: &'static str = "get-session";

    async fn setup(options: &Options) -> anyhow::Result<Self> {
        let target = OAuthTarget::setup(options).await?;
        let users = options.users.unwrap_or(DEFAULT_USERS).max(1);
        let started = Instant::now();
        let cookies = target.session_cookies("bench-reader-", users).await?;
        Ok(GetSession {
            client: http::client(options.concurrency)?,
            url: target.base.join("/api/auth/get-session")?,
            cookies,
            setup_s: started.elapsed().as_secs_f64(),
            target,
        })
    }

    async fn step(&self, _worker: usize, _iteration: u64) -> Result<(), String> {
        let cookie = &self.cookies[rand::random_range(0..self.cookies.len())];
        let request = self
            .client
            .get(self.url.clone())
            .header(COOKIE, cookie.clone());
        let body = http::fetch_ok(request, "status").await?;
        if !body.starts_with(br#"{"session":"#) {
            return Err("no session".to_string());
        }
        Ok(())
    }

    fn extra(&self) -> Option<serde_json::Value> {
        Some(serde_json::json!({ "users": self.cookies.len(), "setup_s": self.setup_s }))
    }

    fn server_pid(&self) -> Option<u32> {
        self.target.server_pid()
    }
}
