//! `readyz`: the readiness probe under load, `GET /readyz`, against the real
//! release server holding `--users` users (default 30,000).
//!
//! Setup makes the users through Twitch panel logins (the cheapest way to make
//! many users over HTTP), then every step asks `/readyz`. Readiness is answered
//! from state the engine keeps, so its cost must not depend on the number of
//! users: compare with `baseline` in the same run, and with the same scenario at
//! `--users 1`.

use std::time::Instant;

use futures::{StreamExt, TryStreamExt};
use reqwest::{Client, Url};

use crate::driver::Scenario;
use crate::scenarios::extension::Extension;
use crate::{http, Options};

const DEFAULT_USERS: u64 = 30_000;
/// Logins in flight at once while setting up.
const SETUP_PARALLELISM: usize = 64;

pub struct Readyz {
    client: Client,
    url: Url,
    users: u64,
    setup_s: f64,
    _server: Extension,
}

impl Scenario for Readyz {
    const NAME: &'static str = "readyz";

    async fn setup(options: &Options) -> anyhow::Result<Self> {
        let users = options.users.unwrap_or(DEFAULT_USERS).max(1);
        let panel = Extension::setup(&Options {
            users: Some(users),
            url: options.url.clone(),
            ..*options
        })
        .await?;
        let started = Instant::now();
        eprintln!("making {users} users through panel logins");
        let panel_ref = &panel;
        futures::stream::iter(0..users)
            .map(|viewer| async move {
                panel_ref
                    .login(viewer)
                    .await
                    .map_err(|e| anyhow::anyhow!("login of viewer {viewer}: {e}"))
            })
            .buffer_unordered(SETUP_PARALLELISM)
            .try_collect::<()>()
            .await?;
        Ok(Readyz {
            client: http::client(options.concurrency)?,
            url: panel.base().join("/readyz")?,
            users,
            setup_s: started.elapsed().as_secs_f64(),
            _server: panel,
        })
    }

    async fn step(&self, _worker: usize, _iteration: u64) -> Result<(), String> {
        let body = http::fetch_ok(self.client.get(self.url.clone()), "status").await?;
        if body.as_ref() != br#"{"status":"ready"}"# {
            return Err("not ready".to_string());
        }
        Ok(())
    }

    fn extra(&self) -> Option<serde_json::Value> {
        Some(serde_json::json!({ "users": self.users, "setup_s": self.setup_s }))
    }
}
