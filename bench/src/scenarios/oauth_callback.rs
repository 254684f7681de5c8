//! `oauth-callback`: complete social sign-ins per second against the real
//! release server and the local OpenID Connect provider. One step is the whole
//! browser flow: `POST /api/auth/sign-in/social` (state saved durably, state
//! cookie), the provider's authorization endpoint, and
//! `GET /api/auth/callback/local` (state taken, code exchanged with PKCE,
//! RS256 id_token verified against the cached JWKS, user found or created,
//! web session created durably, 302 with the session cookie).
//!
//! Subjects are drawn at random from `--users` (default 1,000), so the first
//! pass creates users and later sign-ins find them. The provider runs inside
//! this process and signs one RS256 id_token per step, so it shares the CPU
//! with the load generator: read the figure as the flow's, not the server's alone.

use crate::driver::Scenario;
use crate::oauth_flow::OAuthTarget;
use crate::Options;

const DEFAULT_USERS: u64 = 1_000;

pub struct OAuthCallback {
    target: OAuthTarget,
    users: u64,
}

impl Scenario for OAuthCallback {
    const NAME: &'static str = "oauth-callback";

    async fn setup(options: &Options) -> anyhow::Result<Self> {
        Ok(OAuthCallback {
            target: OAuthTarget::setup(options).await?,
            users: options.users.unwrap_or(DEFAULT_USERS).max(1),
        })
    }

    async fn step(&self, _worker: usize, _iteration: u64) -> Result<(), String> {
        let subject = format!("bench-signer-{}", rand::random_range(0..self.users));
        self.target.sign_in(&subject).await.map(|_| ())
    }

    fn extra(&self) -> Option<serde_json::Value> {
        Some(serde_json::json!({ "users": self.users }))
    }

    fn server_pid(&self) -> Option<u32> {
        self.target.server_pid()
    }
}
