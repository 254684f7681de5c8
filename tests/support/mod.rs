//! The harness every end-to-end test uses: the real server, started in-process
//! on 127.0.0.1 with an OS-chosen port over a fresh temporary data directory,
//! and HTTP clients that behave like the contract's real client.
#![allow(dead_code)]

pub mod process;

use std::sync::Arc;

use tachigo_auth::server::{self, RunningServer};
use tachigo_engine::config::Config;
use tachigo_engine::Engine;
use tempfile::TempDir;

pub struct TestServer {
    /// `http://127.0.0.1:PORT` of the main listener.
    pub base: String,
    pub config: Config,
    pub dir: Arc<TempDir>,
    running: Option<RunningServer>,
}

/// A port that was free a moment ago (so the public URL is known before start).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The configuration tests start from: loopback, plain-http cookies, temp data dir.
pub fn test_config(dir: &TempDir, port: u16) -> Config {
    let mut config = Config::default();
    config.server.listen = format!("127.0.0.1:{port}").parse().unwrap();
    config.server.data_dir = dir.path().to_path_buf();
    config.server.public_url = format!("http://127.0.0.1:{port}");
    config.server.trusted_origins = vec!["http://localhost:3000".into()];
    config.oauth.frontend_url = "http://localhost:3000".into();
    config.cookies.secure = false;
    config
}

impl TestServer {
    pub async fn start() -> TestServer {
        TestServer::start_with(|_| {}).await
    }

    /// Starts with the test configuration changed by `adjust`.
    pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> TestServer {
        let dir = Arc::new(TempDir::new().unwrap());
        let mut config = test_config(&dir, free_port());
        adjust(&mut config);
        let running = server::start(config.clone())
            .await
            .expect("the server starts");
        TestServer {
            base: format!("http://{}", running.addrs.main),
            config,
            dir,
            running: Some(running),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn engine(&self) -> &Engine {
        &self.running.as_ref().expect("the server is running").engine
    }

    pub fn running(&self) -> &RunningServer {
        self.running.as_ref().expect("the server is running")
    }

    /// Graceful stop and start again on the same data directory and port.
    pub async fn restart(&mut self) {
        self.stop().await;
        let running = server::start(self.config.clone())
            .await
            .expect("the server restarts");
        self.base = format!("http://{}", running.addrs.main);
        self.running = Some(running);
    }

    pub async fn stop(&mut self) {
        if let Some(running) = self.running.take() {
            running.shutdown().await.expect("clean shutdown");
        }
    }
}

/// A browser-like client: keeps cookies, does not follow redirects.
pub fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .unwrap()
}

/// A client without a cookie jar (a server-side caller, or a script).
pub fn plain_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .unwrap()
}

/// All `Set-Cookie` values of a response for cookie `name`.
pub fn set_cookies<'a>(response: &'a reqwest::Response, name: &str) -> Vec<&'a str> {
    response
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter(|v| v.starts_with(&format!("{name}=")))
        .collect()
}

// ----- Twitch Extension helpers (tests/extension_*.rs) -----

/// A Twitch Extension secret as the Twitch console shows it: base64 of 32 random bytes.
pub fn twitch_extension_secret() -> String {
    use base64::Engine as _;
    let bytes: [u8; 32] = rand::random();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A Twitch Extension JWT the way Twitch mints one: HS256, keyed with the
/// base64-*decoded* extension secret.
pub fn twitch_jwt(secret_base64: &str, claims: &serde_json::Value) -> String {
    use base64::Engine as _;
    let key = base64::engine::general_purpose::STANDARD
        .decode(secret_base64)
        .unwrap();
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(&key),
    )
    .unwrap()
}

/// Twitch's claims for a viewer of `channel_id` in `role`, valid for 5 minutes;
/// `user_id` only when the viewer shared their identity.
pub fn twitch_claims(user_id: Option<&str>, channel_id: &str, role: &str) -> serde_json::Value {
    let opaque = match user_id {
        Some(id) => format!("U{id}"),
        None => format!("A{channel_id}x{}", rand::random::<u32>()),
    };
    let mut claims = serde_json::json!({
        "exp": unix_now() + 300,
        "opaque_user_id": opaque,
        "channel_id": channel_id,
        "role": role,
        "is_unlinked": false,
        "pubsub_perms": {"listen": ["broadcast", "global"], "send": []},
    });
    if let Some(id) = user_id {
        claims["user_id"] = id.into();
    }
    claims
}
