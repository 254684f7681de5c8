//! `extension`: Twitch panel logins, `POST /api/v1/extension/auth/login`, against
//! the real release server.
//!
//! Every step mints a fresh Twitch Extension JWT (HS256 with the base64-decoded
//! secret, as Twitch does) for a viewer drawn at random from `--users` (default
//! 10,000) who shared their identity, so the server verifies the token, finds or
//! (on first sight) creates the user linked to the Twitch account, durably
//! creates an extension session and signs an EdDSA tachigo token. The first pass
//! over the users therefore includes user creation; later logins reuse them.
//!
//! Without `--url` the scenario spawns `tachigo-auth` (next to this binary) with a
//! fresh secret in `TACHIGO__EXTENSION__SECRETS`. With `--url`, the target's secret
//! must be given in `TACHIGO_BENCH_EXTENSION_SECRET`.

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::{Client, Url};

use crate::driver::Scenario;
use crate::server_process::{default_server_bin, ServerProcess};
use crate::{http, Options};

const DEFAULT_USERS: u64 = 10_000;
/// Viewers are spread over this many channels (and roles) for realism only.
const CHANNELS: u64 = 100;
const SECRET_ENV: &str = "TACHIGO_BENCH_EXTENSION_SECRET";

pub struct Extension {
    client: Client,
    url: Url,
    key: EncodingKey,
    header: Header,
    users: u64,
    server: Option<ServerProcess>,
}

impl Scenario for Extension {
    const NAME: &'static str = "extension";

    async fn setup(options: &Options) -> anyhow::Result<Self> {
        let (base, secret, server) = match &options.url {
            Some(url) => {
                let secret = std::env::var(SECRET_ENV).with_context(|| {
                    format!(
                        "with --url, give the target's extension secret (base64) in {SECRET_ENV}"
                    )
                })?;
                (url.clone(), secret, None)
            }
            None => {
                let secret =
                    base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 32]>());
                let secrets = format!(r#"[{{secret = "{secret}"}}]"#);
                let server = ServerProcess::spawn(
                    &default_server_bin(),
                    &[("TACHIGO__EXTENSION__SECRETS", secrets.as_str())],
                )
                .await?;
                (Url::parse(&server.base_url)?, secret, Some(server))
            }
        };
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(secret.trim())
            .context("the extension secret is not base64")?;
        Ok(Extension {
            client: http::client(options.concurrency)?,
            url: base.join("/api/v1/extension/auth/login")?,
            key: EncodingKey::from_secret(&decoded),
            header: Header::new(Algorithm::HS256),
            users: options.users.unwrap_or(DEFAULT_USERS).max(1),
            server,
        })
    }

    async fn step(&self, _worker: usize, _iteration: u64) -> Result<(), String> {
        self.login(rand::random::<u64>() % self.users).await
    }

    fn extra(&self) -> Option<serde_json::Value> {
        Some(serde_json::json!({ "users": self.users }))
    }

    fn server_pid(&self) -> Option<u32> {
        self.server.as_ref().map(ServerProcess::pid)
    }
}

impl Extension {
    /// Where the target server is.
    pub fn base(&self) -> Url {
        self.url.join("/").expect("the server's root")
    }

    /// One panel login of viewer number `viewer` (a user is made on first sight).
    pub async fn login(&self, viewer: u64) -> Result<(), String> {
        let twitch_user_id = 100_000_000 + viewer;
        let channel = viewer % CHANNELS;
        let role = if viewer < CHANNELS {
            "broadcaster"
        } else {
            "viewer"
        };
        let exp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
            + 300;
        let claims = serde_json::json!({
            "exp": exp,
            "opaque_user_id": format!("U{twitch_user_id}"),
            "user_id": twitch_user_id.to_string(),
            "channel_id": (900_000_000 + channel).to_string(),
            "role": role,
            "is_unlinked": false,
            "pubsub_perms": {"listen": ["broadcast", "global"], "send": []},
        });
        let token = jsonwebtoken::encode(&self.header, &claims, &self.key)
            .map_err(|_| "signing".to_string())?;
        let request = self.client.post(self.url.clone()).bearer_auth(token);
        let body = http::fetch_ok(request, "status").await?;
        if !body.starts_with(br#"{"access_token":"#) {
            return Err("body".to_string());
        }
        Ok(())
    }
}
