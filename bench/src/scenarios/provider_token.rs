//! `provider-token`: `POST /api/auth/get-access-token` against the real
//! release server, the call a Next.js backend makes before calling a
//! provider's API for a user. Each step is one live web session asking for its
//! provider's access token: session cookie checked, the CSRF origin rule, the
//! account's sealed tokens read through the user's actor and opened
//! (AES-256-GCM), Better Auth's JSON. The tokens are fresh (an hour), so no
//! step refreshes at the provider: this is the read path.
//!
//! Setup writes a token key (mode 0600) to a temporary directory, spawns the
//! server with `oauth.token_encryption_key_file` pointing at it, and signs
//! `--users` users (default 1,000) in through the local OpenID Connect
//! provider, which issues refresh tokens so that a whole pair is kept.

use std::os::unix::fs::PermissionsExt;
use std::time::Instant;

use anyhow::Context;
use reqwest::header::{HeaderValue, COOKIE};
use reqwest::{Client, Url};

use crate::driver::Scenario;
use crate::oauth_flow::OAuthTarget;
use crate::{http, Options};

const DEFAULT_USERS: u64 = 1_000;
/// The server's default trusted origin (the POST is cookie-authenticated).
const FRONTEND: &str = "http://localhost:3000";

pub struct ProviderToken {
    client: Client,
    url: Url,
    cookies: Vec<HeaderValue>,
    setup_s: f64,
    target: OAuthTarget,
    _keys: tempfile::TempDir,
}

impl Scenario for ProviderToken {
    const NAME: &'static str = "provider-token";

    async fn setup(options: &Options) -> anyhow::Result<Self> {
        if options.url.is_some() {
            anyhow::bail!(
                "provider-token spawns its server with a token key of its own: leave out --url"
            );
        }
        let keys = tempfile::TempDir::new()?;
        let key_path = keys.path().join("token.key");
        let key: String = rand::random::<[u8; 32]>()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        std::fs::write(&key_path, key).context("writing the token key")?;
        std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o600))?;
        let key_setting = key_path.to_str().context("a UTF-8 temporary path")?;
        let target = OAuthTarget::setup_with(
            options,
            &[("TACHIGO__OAUTH__TOKEN_ENCRYPTION_KEY_FILE", key_setting)],
        )
        .await?;
        target.provider.set_issue_refresh_tokens(true);
        let users = options.users.unwrap_or(DEFAULT_USERS).max(1);
        let started = Instant::now();
        let cookies = target.session_cookies("bench-token-holder-", users).await?;
        Ok(ProviderToken {
            client: http::client(options.concurrency)?,
            url: target.base.join("/api/auth/get-access-token")?,
            cookies,
            setup_s: started.elapsed().as_secs_f64(),
            target,
            _keys: keys,
        })
    }

    async fn step(&self, _worker: usize, _iteration: u64) -> Result<(), String> {
        let cookie = &self.cookies[rand::random_range(0..self.cookies.len())];
        let request = self
            .client
            .post(self.url.clone())
            .header(COOKIE, cookie.clone())
            .header("origin", FRONTEND)
            .header("content-type", "application/json")
            .body(r#"{"providerId":"local"}"#);
        let body = http::fetch_ok(request, "status").await?;
        if !body.starts_with(br#"{"accessToken":"#) {
            return Err("no access token".to_string());
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
