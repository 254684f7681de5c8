//! The harness every end-to-end test uses: the real server, started in-process
//! on 127.0.0.1 with an OS-chosen port over a fresh temporary data directory,
//! and HTTP clients that behave like the contract's real client.
#![allow(dead_code)]

pub mod cluster;
pub mod metrics;
pub mod oauth2;
pub mod oauth2_provider;
pub mod oidc_provider;
pub mod process;
pub mod smtp;
pub mod snippets;

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

/// A port that was free a moment ago (so the public URL is known before
/// start), from below the ephemeral range that outgoing connections use.
pub use tachigo_testkit::free_port;

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
        // Bound here and handed over, so no other socket can take the port
        // between choosing it (the public URL names it) and serving on it.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut config = test_config(&dir, port);
        use_test_store(&mut config).await;
        adjust(&mut config);
        let main = (config.server.listen.port() == port).then_some(listener);
        let running = server::start_on(config.clone(), main)
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

/// Which store the suite runs on: `TACHIGO_TEST_STORE` unset or `sled` (the
/// default), or `postgres`; any other value is a mistake worth stopping for.
pub fn test_store_is_postgres() -> bool {
    match std::env::var("TACHIGO_TEST_STORE") {
        Err(std::env::VarError::NotPresent) => false,
        Ok(v) if v == "sled" => false,
        Ok(v) if v == "postgres" => true,
        Ok(v) => panic!("TACHIGO_TEST_STORE must be unset, `sled` or `postgres`, not {v:?}"),
        Err(e) => panic!("TACHIGO_TEST_STORE must be unset, `sled` or `postgres`: {e}"),
    }
}

/// Points `config` at the store the suite runs on: on PostgreSQL, a fresh
/// database of the test process's server (one per call); on sled, the
/// configuration's data directory as it is.
pub async fn use_test_store(config: &mut Config) {
    if test_store_is_postgres() {
        config.storage.backend = tachigo_engine::config::StorageBackend::Postgres;
        config.storage.postgres.url = Some(tachigo_testkit::postgres().fresh_database().await);
    }
}

/// The environment a child `tachigo-auth serve` process needs to run on the
/// suite's store: on PostgreSQL, a fresh database; on sled, nothing.
pub async fn test_store_env() -> Vec<(String, String)> {
    if test_store_is_postgres() {
        vec![
            ("TACHIGO__STORAGE__BACKEND".into(), "postgres".into()),
            (
                "TACHIGO__STORAGE__POSTGRES__URL".into(),
                tachigo_testkit::postgres().fresh_database().await,
            ),
        ]
    } else {
        Vec::new()
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
/// A client that presents itself as `192.0.2.<i>` (TEST-NET-1; a header
/// only), so each simulated user counts as its own client for the
/// per-address login limits of a server that trusts its proxy.
pub fn client_for(i: usize) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        "x-forwarded-for",
        format!("192.0.2.{}", i % 250 + 1).parse().unwrap(),
    );
    reqwest::Client::builder()
        .default_headers(headers)
        .no_proxy()
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .unwrap()
}

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

// ----- Dashboard helpers (tests/dashboard_*.rs) -----

/// The password of every dashboard test user (passes the engine's policy).
pub const DASHBOARD_PASSWORD: &str = "correct horse battery staple";

/// The origin `test_config` trusts: where the dashboard app is served from.
pub const DASHBOARD_ORIGIN: &str = "http://localhost:3000";

/// Creates a password user through the engine; returns its id.
pub async fn create_dashboard_user(server: &TestServer, email: &str) -> String {
    server
        .engine()
        .create_user(tachigo_engine::NewUser {
            email: Some(email.into()),
            name: Some("Dash Board".into()),
            password: Some(DASHBOARD_PASSWORD.into()),
            roles: vec!["member".into()],
        })
        .await
        .expect("the user is created")
        .id
}

/// `POST /api/v1/auth/login` with `DASHBOARD_PASSWORD`.
pub async fn dashboard_login(
    server: &TestServer,
    client: &reqwest::Client,
    email: &str,
) -> reqwest::Response {
    client
        .post(server.url("/api/v1/auth/login"))
        .json(&serde_json::json!({"email": email, "password": DASHBOARD_PASSWORD}))
        .send()
        .await
        .unwrap()
}

/// `POST /api/v1/auth/refresh` from the dashboard's origin, with the client's cookies.
pub async fn dashboard_refresh(server: &TestServer, client: &reqwest::Client) -> reqwest::Response {
    client
        .post(server.url("/api/v1/auth/refresh"))
        .header("origin", DASHBOARD_ORIGIN)
        .send()
        .await
        .unwrap()
}

/// `POST /api/v1/auth/refresh` presenting `token` in an explicit `Cookie` header.
pub async fn dashboard_refresh_with(server: &TestServer, token: &str) -> reqwest::Response {
    plain_client()
        .post(server.url("/api/v1/auth/refresh"))
        .header("origin", DASHBOARD_ORIGIN)
        .header("cookie", format!("tachigo_refresh={token}"))
        .send()
        .await
        .unwrap()
}

/// What storage holds after a dashboard logout: no session of the user, and
/// the session's refresh family kept as a revoked tombstone (so a replay of
/// any of its tokens is still recognised).
pub async fn assert_logged_out_in_storage(server: &TestServer, user_id: &str, session_id: &str) {
    let engine = server.engine();
    assert!(engine.stored_sessions(user_id).await.unwrap().is_empty());
    assert_eq!(
        engine
            .stored_refresh_family(session_id)
            .await
            .unwrap()
            .unwrap()
            .revoked,
        Some(tachigo_engine::Revocation::Revoked)
    );
}

/// The value the response's `tachigo_refresh` `Set-Cookie` carries (empty when cleared).
pub fn refresh_cookie_value(response: &reqwest::Response) -> String {
    let cookies = set_cookies(response, "tachigo_refresh");
    assert_eq!(cookies.len(), 1, "exactly one refresh cookie: {cookies:?}");
    cookies[0]["tachigo_refresh=".len()..]
        .split(';')
        .next()
        .unwrap()
        .to_string()
}

/// The `error.code` of a JSON error body.
pub async fn error_code(response: reqwest::Response) -> String {
    let body: serde_json::Value = response.json().await.unwrap();
    body["error"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

// ----- OAuth helpers (tests/oauth_*.rs) -----

/// The frontend `test_config` trusts and resolves relative callback URLs on.
pub const FRONTEND: &str = "http://localhost:3000";

/// Configures `provider` as the generic OpenID Connect provider `name`.
pub fn add_oidc_provider(config: &mut Config, name: &str, provider: &oidc_provider::OidcProvider) {
    config.oauth.providers.insert(
        name.to_string(),
        tachigo_engine::config::ProviderConfig {
            client_id: oidc_provider::CLIENT_ID.into(),
            client_secret: oidc_provider::CLIENT_SECRET.into(),
            issuer: Some(provider.issuer.clone()),
            ..Default::default()
        },
    );
}

/// Starts the server with `provider` configured as `local`, then `adjust` applied.
pub async fn start_with_provider(
    provider: &oidc_provider::OidcProvider,
    adjust: impl FnOnce(&mut Config),
) -> TestServer {
    TestServer::start_with(|config| {
        add_oidc_provider(config, "local", provider);
        adjust(config);
    })
    .await
}

/// `POST /api/auth/sign-in/social` with `body`, from the frontend's origin.
pub async fn social_sign_in(
    server: &TestServer,
    client: &reqwest::Client,
    body: serde_json::Value,
) -> reqwest::Response {
    client
        .post(server.url("/api/auth/sign-in/social"))
        .header("origin", FRONTEND)
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// The `Location` of a redirect.
pub fn location(response: &reqwest::Response) -> String {
    response
        .headers()
        .get(reqwest::header::LOCATION)
        .unwrap_or_else(|| panic!("no Location on a {} answer", response.status()))
        .to_str()
        .unwrap()
        .to_string()
}

/// The value of query parameter `name` in `url`.
pub fn query_param(url: &str, name: &str) -> Option<String> {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// Sends the browser to a provider's authorization URL and on to the callback
/// the provider redirects to; returns the callback's answer.
pub async fn through_provider(browser: &reqwest::Client, authorize_url: &str) -> reqwest::Response {
    let at_provider = browser.get(authorize_url).send().await.unwrap();
    assert_eq!(at_provider.status(), 302, "the provider redirects back");
    browser.get(location(&at_provider)).send().await.unwrap()
}

/// A whole social sign-in with `provider_name` (and `extra` body fields) of
/// whoever the provider signs in next; returns the callback's answer.
pub async fn oauth_sign_in(
    server: &TestServer,
    browser: &reqwest::Client,
    provider_name: &str,
    extra: serde_json::Value,
) -> reqwest::Response {
    let mut body = serde_json::json!({ "provider": provider_name });
    if let serde_json::Value::Object(fields) = extra {
        body.as_object_mut().unwrap().extend(fields);
    }
    let started = social_sign_in(server, browser, body).await;
    assert_eq!(started.status(), 200, "sign-in/social starts");
    let started: serde_json::Value = started.json().await.unwrap();
    through_provider(browser, started["url"].as_str().unwrap()).await
}

/// `GET /api/auth/get-session` with the client's cookies: the session JSON or `null`.
pub async fn get_session(server: &TestServer, client: &reqwest::Client) -> serde_json::Value {
    let response = client
        .get(server.url("/api/auth/get-session"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// The value cookie `name` is set to by `response` (`Some("")` when cleared).
pub fn set_cookie_value(response: &reqwest::Response, name: &str) -> Option<String> {
    set_cookies(response, name)
        .first()
        .map(|c| c[name.len() + 1..].split(';').next().unwrap().to_string())
}

/// The `code` of a Better Auth error body.
pub async fn better_auth_code(response: reqwest::Response) -> String {
    let body: serde_json::Value = response.json().await.unwrap();
    body["code"].as_str().unwrap_or_default().to_string()
}

/// A user with `roles`, a live dashboard session and an access token for it.
pub async fn signed_in(
    server: &TestServer,
    email: &str,
    roles: &[&str],
) -> (String, String, String) {
    let engine = server.engine();
    let user = engine
        .create_user(tachigo_engine::NewUser {
            email: Some(email.into()),
            roles: roles.iter().map(|r| r.to_string()).collect(),
            ..tachigo_engine::NewUser::default()
        })
        .await
        .unwrap();
    let created = engine
        .create_session(
            &user.id,
            tachigo_engine::NewSession {
                surface: tachigo_engine::Surface::Dashboard,
                user_agent: None,
                ip: None,
                context: None,
            },
        )
        .await
        .unwrap();
    let (token, _) = engine.mint_access_token(
        &user.id,
        Some(&created.session.id),
        tachigo_engine::access_token::AUDIENCE_DASHBOARD,
        &user.roles,
        Default::default(),
    );
    (user.id, created.session.id, token)
}
