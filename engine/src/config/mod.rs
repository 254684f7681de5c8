//! The operators' configuration: one TOML file, `TACHIGO__SECTION__KEY` environment
//! overrides, and a default for every key that runs on localhost.
//!
//! The types live here so every crate reads the same settings; [`load`] turns a
//! file and an environment into a validated [`Config`], and [`deployment`] checks
//! that the configured hosts and cookies can actually work together.

mod cluster;
pub mod deployment;
mod duration;
mod load;
mod plain_oauth2;
mod provider_checks;
pub mod token_keys;

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use cluster::{
    read_cluster_secret, valid_node_name, ClusterConfig, ClusterTlsConfig, MIN_CLUSTER_SECRET_BYTES,
};
pub use duration::ConfigDuration;
pub use load::{load, read_postgres_url_file, ConfigError};
pub use plain_oauth2::{FieldPaths, ProviderKind, ResponseMode, TokenAuthMethod, UserinfoFields};

/// Every setting of the server.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub listen: ListenConfig,
    pub cookies: CookieConfig,
    pub tokens: TokenConfig,
    pub dashboard: DashboardConfig,
    pub extension: ExtensionConfig,
    pub oauth: OAuthConfig,
    pub engine: EngineSettings,
    pub storage: StorageConfig,
    pub limits: LimitsConfig,
    pub email: EmailConfig,
    pub oauth2: OAuth2Config,
    /// The first-party clients of the OAuth 2.1 server (`[[clients]]`).
    pub clients: Vec<ClientConfig>,
    /// `[cluster]`: present when this node is one of several.
    pub cluster: Option<ClusterConfig>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub public_url: String,
    pub trusted_origins: Vec<String>,
    pub trust_proxy: bool,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: "127.0.0.1:8080".parse().expect("a valid default address"),
            data_dir: PathBuf::from("./data"),
            public_url: "http://localhost:8080".into(),
            trusted_origins: vec!["http://localhost:3000".into()],
            trust_proxy: false,
        }
    }
}

/// Optional dedicated listeners, one per contract.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ListenConfig {
    pub dashboard: Option<SocketAddr>,
    pub extension: Option<SocketAddr>,
    pub oauth: Option<SocketAddr>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CookieConfig {
    pub secure: bool,
    /// Empty means host-only cookies.
    pub domain: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TokenConfig {
    pub access_ttl: ConfigDuration,
    pub refresh_idle_ttl: ConfigDuration,
    pub session_absolute_ttl: ConfigDuration,
    pub refresh_grace: ConfigDuration,
    /// How long verifiers may cache the JWKS (its `Cache-Control: max-age`);
    /// a rotated-in key is published at least this long before it signs.
    pub jwks_cache_lifetime: ConfigDuration,
    /// Rotate the signing key this often (off when unset).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signing_key_rotation: Option<ConfigDuration>,
}

impl Default for TokenConfig {
    fn default() -> Self {
        TokenConfig {
            access_ttl: ConfigDuration::from_secs(15 * 60),
            refresh_idle_ttl: ConfigDuration::from_secs(14 * 86_400),
            session_absolute_ttl: ConfigDuration::from_secs(90 * 86_400),
            refresh_grace: ConfigDuration::from_secs(10),
            jwks_cache_lifetime: ConfigDuration::from_secs(5 * 60),
            signing_key_rotation: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DashboardConfig {
    pub allow_signup: bool,
    pub refresh_body_fallback: bool,
}

impl Default for DashboardConfig {
    fn default() -> Self {
        DashboardConfig {
            allow_signup: false,
            refresh_body_fallback: true,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExtensionConfig {
    pub client_ids: Vec<String>,
    pub allow_anonymous: bool,
    pub secrets: Vec<ExtensionSecret>,
}

/// One Twitch Extension secret (base64, as the Twitch console shows it).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExtensionSecret {
    pub secret: String,
    /// Read the secret from this file instead (trailing whitespace trimmed).
    pub secret_file: Option<PathBuf>,
    /// RFC 3339; after it the secret no longer verifies.
    pub expires_at: Option<String>,
}

impl ExtensionSecret {
    /// `expires_at` in Unix milliseconds (`Ok(None)`: never expires), read the way
    /// the loader validates it, so the frontend and the loader agree on every value.
    pub fn expires_at_unix_ms(&self) -> Result<Option<i64>, String> {
        let Some(at) = &self.expires_at else {
            return Ok(None);
        };
        let time = humantime::parse_rfc3339_weak(at.trim())
            .map_err(|e| format!("`{at}` is not an RFC 3339 time: {e}"))?;
        let since_epoch = time
            .duration_since(std::time::UNIX_EPOCH)
            .map_err(|_| format!("`{at}` is before 1970"))?;
        Ok(Some(
            i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX),
        ))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OAuthConfig {
    pub frontend_url: String,
    pub default_callback: String,
    pub error_callback: String,
    pub session_ttl: ConfigDuration,
    pub update_age: ConfigDuration,
    pub trusted_providers: Vec<String>,
    pub providers: std::collections::BTreeMap<String, ProviderConfig>,
    /// Whether `POST /api/auth/sign-up/email` makes accounts (sign-in with an
    /// existing password works either way).
    pub allow_email_signup: bool,
    /// The key that seals the tokens providers issue (AES-256-GCM), kept
    /// with each linked account; unset: provider tokens are not kept.
    pub token_encryption_key_file: Option<PathBuf>,
    /// Keys that sealed tokens before a rotation: they still open them
    /// (the current key re-seals at the next write), never seal.
    pub token_encryption_old_key_files: Vec<PathBuf>,
}

impl Default for OAuthConfig {
    fn default() -> Self {
        OAuthConfig {
            frontend_url: "http://localhost:3000".into(),
            default_callback: "/dashboard".into(),
            error_callback: "/auth/error".into(),
            session_ttl: ConfigDuration::from_secs(7 * 86_400),
            update_age: ConfigDuration::from_secs(86_400),
            trusted_providers: Vec::new(),
            providers: Default::default(),
            allow_email_signup: true,
            token_encryption_key_file: None,
            token_encryption_old_key_files: Vec::new(),
        }
    }
}

/// A social provider. `google` and `twitch` know their endpoints; any other name
/// is a generic OpenID Connect provider and needs `issuer` — unless it is
/// `kind = "oauth2"` (or named `github` / `discord`, the plain OAuth 2.0
/// presets): then its endpoints and userinfo fields are configured here.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProviderConfig {
    pub client_id: String,
    pub client_secret: String,
    pub client_secret_file: Option<PathBuf>,
    pub issuer: Option<String>,
    pub scopes: Option<Vec<String>>,
    /// `oidc` (unset: OpenID Connect, or `oauth2` for the `github` and
    /// `discord` presets) or `oauth2`.
    pub kind: Option<ProviderKind>,
    /// `query` (unset) or `form_post`: how the provider sends the browser back.
    pub response_mode: Option<ResponseMode>,
    /// Plain OAuth 2.0 only: the endpoints (presets know theirs; set to override).
    pub authorization_url: Option<String>,
    pub token_url: Option<String>,
    pub userinfo_url: Option<String>,
    /// Plain OAuth 2.0 only: a GitHub-shaped list of the user's addresses
    /// (`[{email, primary, verified}]`) that tells which email is verified.
    pub emails_url: Option<String>,
    /// Plain OAuth 2.0 only: whether to use PKCE S256 (unset: yes).
    pub pkce: Option<bool>,
    /// Plain OAuth 2.0 only: how the client secret goes to the token endpoint.
    pub token_auth_method: Option<TokenAuthMethod>,
    /// Plain OAuth 2.0 only: where the userinfo JSON keeps each identity field.
    pub fields: Option<UserinfoFields>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EngineSettings {
    pub idle_passivation: ConfigDuration,
    pub max_live_actors: usize,
}

impl Default for EngineSettings {
    fn default() -> Self {
        EngineSettings {
            idle_passivation: ConfigDuration::from_secs(600),
            max_live_actors: 100_000,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DurabilityMode {
    GroupCommit,
    None,
}

/// Which store holds the data.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StorageBackend {
    /// Embedded sled in `server.data_dir` (one node; nothing to install).
    #[default]
    Sled,
    /// A shared PostgreSQL database (`storage.postgres`).
    Postgres,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    pub backend: StorageBackend,
    /// sled only: how writes reach the disk.
    pub durability: DurabilityMode,
    pub postgres: PostgresSettings,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            backend: StorageBackend::Sled,
            durability: DurabilityMode::GroupCommit,
            postgres: PostgresSettings::default(),
        }
    }
}

/// `[storage.postgres]`: how to reach the shared database.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PostgresSettings {
    /// `postgres://user:password@host:port/db` (or libpq key=value); may hold
    /// a password, so it is never printed.
    pub url: Option<String>,
    /// A file holding the URL (first line), instead of `url`.
    pub url_file: Option<PathBuf>,
    /// Connections each node keeps open at most.
    pub pool_size: usize,
    /// Longest a statement may run before the server cancels it.
    pub statement_timeout: ConfigDuration,
    /// Longest to wait for a connection.
    pub connect_timeout: ConfigDuration,
}

impl Default for PostgresSettings {
    fn default() -> Self {
        PostgresSettings {
            url: None,
            url_file: None,
            pool_size: 16,
            statement_timeout: ConfigDuration::from_secs(5),
            connect_timeout: ConfigDuration::from_secs(5),
        }
    }
}

impl std::fmt::Debug for PostgresSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresSettings")
            .field("url", &self.url.as_ref().map(|_| "(set, not shown)"))
            .field("url_file", &self.url_file)
            .field("pool_size", &self.pool_size)
            .field("statement_timeout", &self.statement_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .finish()
    }
}

/// The bounds that keep what an unauthenticated caller sends from growing
/// memory, disk, CPU or connections without limit (`docs/operations.md`, "Limits").
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Open client connections per listener; past it, new connections wait in
    /// the kernel's accept queue until one closes.
    pub max_connections: usize,
    /// Time a client has to send a request's head (request line and headers),
    /// counted from the first wait for it.
    pub header_read_timeout: ConfigDuration,
    /// A connection with no request in flight for this long is closed.
    pub keep_alive_idle_timeout: ConfigDuration,
    /// Social sign-ins and link flows started per client IP (IPv6: per /64).
    pub oauth_starts_per_minute: u32,
    pub oauth_starts_burst: u32,
    /// Started provider flows waiting for their callback, in total.
    pub max_pending_oauth_states: usize,
    /// Longest accepted `callbackURL` / `errorCallbackURL` / `newUserCallbackURL`.
    pub max_callback_url_bytes: usize,
    /// Password checks allowed to wait for a hashing slot; past it, 503.
    pub password_queue: usize,
    /// Device flows started per client IP (IPv6: per /64).
    pub device_starts_per_minute: u32,
    /// Authorization codes and device grants stored at once, in total.
    pub max_pending_oauth2_grants: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_connections: 10_000,
            header_read_timeout: ConfigDuration::from_secs(10),
            keep_alive_idle_timeout: ConfigDuration::from_secs(60),
            oauth_starts_per_minute: 20,
            oauth_starts_burst: 20,
            max_pending_oauth_states: 100_000,
            max_callback_url_bytes: 1024,
            password_queue: 32,
            device_starts_per_minute: 10,
            max_pending_oauth2_grants: 100_000,
        }
    }
}

/// `[oauth2]`: the OAuth 2.1 authorization server for first-party clients.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OAuth2Config {
    /// The frontend page that signs a user in and then sends the browser to
    /// its `callbackURL`; empty: `<oauth.frontend_url>/sign-in`.
    pub sign_in_url: String,
    /// How long an authorization code can be redeemed.
    pub code_ttl: ConfigDuration,
    /// How long a device grant waits for the user.
    pub device_code_ttl: ConfigDuration,
    /// The polling interval a device client is told to keep.
    pub device_poll_interval: ConfigDuration,
}

impl Default for OAuth2Config {
    fn default() -> Self {
        OAuth2Config {
            sign_in_url: String::new(),
            code_ttl: ConfigDuration::from_secs(60),
            device_code_ttl: ConfigDuration::from_secs(600),
            device_poll_interval: ConfigDuration::from_secs(5),
        }
    }
}

/// Which kind of first-party client a `[[clients]]` entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientKind {
    /// A desktop or mobile app: public, loopback or private-use-scheme redirects.
    Native,
    /// A Chrome or Firefox extension: public, `identity` API redirects.
    BrowserExtension,
    /// A backend service: confidential (a secret), may introspect tokens.
    Service,
}

/// One `[[clients]]` entry (`docs/contracts/oauth2.md`).
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    pub id: String,
    pub name: String,
    pub kind: ClientKind,
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    #[serde(default = "default_client_scopes")]
    pub scopes: Vec<String>,
    /// `aud` of the client's access tokens; default: the client id.
    #[serde(default)]
    pub audience: Option<String>,
    #[serde(default)]
    pub access_ttl: Option<ConfigDuration>,
    #[serde(default)]
    pub refresh_idle_ttl: Option<ConfigDuration>,
    /// CORS origins allowed to call the token, revoke and userinfo endpoints.
    #[serde(default)]
    pub allowed_origins: Vec<String>,
    /// Service clients: a file holding the client secret.
    #[serde(default)]
    pub secret_file: Option<PathBuf>,
    /// Read from `secret_file` at load; never written in the file itself.
    #[serde(skip)]
    pub secret: Option<String>,
}

fn default_client_scopes() -> Vec<String> {
    ["openid", "profile", "email", "offline_access"]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

impl std::fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientConfig")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("redirect_uris", &self.redirect_uris)
            .field("scopes", &self.scopes)
            .field("secret", &self.secret.as_ref().map(|_| "(set, not shown)"))
            .finish_non_exhaustive()
    }
}

/// `[email]`: how mails leave (SMTP, or the local outbox directory when no
/// SMTP server is configured), what they say and how long their links work.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmailConfig {
    /// The `From` mailbox, e.g. `tachigo <no-reply@example.com>`.
    pub from: String,
    /// The product name the templates show.
    pub product_name: String,
    /// `smtp://host:587` (STARTTLS required), `smtps://host:465` (implicit TLS),
    /// `smtp://host:25?tls=none` (plain, loopback only). Unset: mails go to
    /// `<data_dir>/outbox/` and the log instead.
    pub smtp_url: Option<String>,
    pub smtp_username: Option<String>,
    pub smtp_password_file: Option<PathBuf>,
    /// Read from `smtp_password_file` at load; never written in the file itself.
    #[serde(skip)]
    pub smtp_password: Option<String>,
    /// A directory of template overrides (`verify_email.subject`, `.txt`, `.html`,
    /// the same for `reset_password`); missing files keep the built-in text.
    pub template_dir: Option<PathBuf>,
    /// How long a verification link works.
    pub verification_ttl: ConfigDuration,
    /// How long a password-reset link works.
    pub reset_ttl: ConfigDuration,
    /// The dashboard page that receives `?token=` from a verification mail.
    pub dashboard_verify_url: String,
    /// The dashboard page that receives `?token=` from a reset mail.
    pub dashboard_reset_url: String,
    /// Mails waiting for delivery, at most; past it, requests that would mail get 503.
    pub max_queued: usize,
    /// Delivery attempts per mail before it is given up (and logged).
    pub max_attempts: u32,
    /// The wait before the first retry; each later retry waits twice as long (at most an hour).
    pub retry_base: ConfigDuration,
    /// At most one mail of a kind per address in this interval; more requests
    /// are answered the same and send nothing.
    pub per_address_interval: ConfigDuration,
    /// Requests that may mail (forgot password, resend verification) per client IP.
    pub requests_per_minute: u32,
    /// A forgot-password request is answered no sooner than this after it
    /// arrived, whether or not the address exists (same timing either way).
    pub answer_floor: ConfigDuration,
}

impl Default for EmailConfig {
    fn default() -> Self {
        EmailConfig {
            from: "tachigo <no-reply@localhost>".into(),
            product_name: "tachigo".into(),
            smtp_url: None,
            smtp_username: None,
            smtp_password_file: None,
            smtp_password: None,
            template_dir: None,
            verification_ttl: ConfigDuration::from_secs(24 * 3600),
            reset_ttl: ConfigDuration::from_secs(3600),
            dashboard_verify_url: "http://localhost:3000/verify-email".into(),
            dashboard_reset_url: "http://localhost:3000/reset-password".into(),
            max_queued: 10_000,
            max_attempts: 12,
            retry_base: ConfigDuration::from_secs(10),
            per_address_interval: ConfigDuration::from_secs(60),
            requests_per_minute: 5,
            answer_floor: ConfigDuration::from_millis(300),
        }
    }
}

impl std::fmt::Debug for EmailConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmailConfig")
            .field("from", &self.from)
            .field(
                "smtp_url",
                &self.smtp_url.as_ref().map(|_| "(set, not shown)"),
            )
            .field("smtp_username", &self.smtp_username)
            .field("smtp_password_file", &self.smtp_password_file)
            .field("template_dir", &self.template_dir)
            .field("verification_ttl", &self.verification_ttl)
            .field("reset_ttl", &self.reset_ttl)
            .field("max_queued", &self.max_queued)
            .finish_non_exhaustive()
    }
}

impl Config {
    /// Where the sled database lives inside the data directory.
    pub fn database_path(&self) -> PathBuf {
        self.server.data_dir.join("db")
    }

    /// Where mails go when no SMTP server is configured.
    pub fn outbox_dir(&self) -> PathBuf {
        self.server.data_dir.join("outbox")
    }
}
