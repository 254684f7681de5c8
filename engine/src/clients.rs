//! The first-party clients of the OAuth 2.1 server (`[[clients]]`), checked
//! once at start: which redirect URIs each may use (exact match, except any
//! port on a loopback redirect, RFC 8252 §7.3), which scopes it may ask for,
//! its token lifetimes and, for service clients, its secret.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use url::Url;

use crate::config::{ClientConfig, ClientKind, Config};
use crate::opaque_token::{hash_secret, hashes_equal};

/// The scopes a client may be registered for.
pub const KNOWN_SCOPES: &[&str] = &["openid", "profile", "email", "offline_access"];

/// A service client's secret must be at least this long.
pub const MIN_SECRET_BYTES: usize = 32;

/// One registered redirect URI.
#[derive(Debug, Clone)]
enum RedirectUri {
    /// `http://127.0.0.1/…` or `http://[::1]/…`: any port matches.
    Loopback {
        host: String,
        path_and_query: String,
    },
    /// Everything else matches byte for byte.
    Exact(String),
}

/// A checked client.
#[derive(Debug, Clone)]
pub struct Client {
    pub id: String,
    pub name: String,
    pub kind: ClientKind,
    pub scopes: Vec<String>,
    pub audience: String,
    pub access_ttl_ms: i64,
    pub refresh_idle_ttl_ms: i64,
    /// Origins that may call the token, revoke and userinfo endpoints (CORS).
    pub allowed_origins: Vec<String>,
    redirect_uris: Vec<RedirectUri>,
    secret_hash: Option<[u8; 32]>,
}

impl Client {
    /// Public clients (native, browser extension) hold no secret.
    pub fn is_confidential(&self) -> bool {
        self.kind == ClientKind::Service
    }

    /// Whether the client may use the device authorization grant.
    pub fn may_use_device_grant(&self) -> bool {
        self.kind != ClientKind::BrowserExtension
    }

    /// Whether `uri` is one of the client's redirect URIs.
    pub fn accepts_redirect(&self, uri: &str) -> bool {
        if uri.len() > 2048 {
            return false;
        }
        self.redirect_uris
            .iter()
            .any(|registered| match registered {
                RedirectUri::Exact(exact) => exact == uri,
                RedirectUri::Loopback {
                    host,
                    path_and_query,
                } => loopback_parts(uri).is_some_and(|(h, p)| &h == host && &p == path_and_query),
            })
    }

    /// Whether `secret` is this client's (constant time); public clients have none.
    pub fn secret_matches(&self, secret: &str) -> bool {
        match &self.secret_hash {
            Some(stored) => hashes_equal(stored, &hash_secret(secret.as_bytes())),
            None => false,
        }
    }

    /// The scopes granted for a request: every registered one when `requested`
    /// is absent or empty; `None` when it names a scope the client may not have.
    pub fn grant_scopes(&self, requested: Option<&str>) -> Option<String> {
        let requested: Vec<&str> = match requested.map(str::trim) {
            None | Some("") => return Some(self.scopes.join(" ")),
            Some(r) => r.split(' ').filter(|s| !s.is_empty()).collect(),
        };
        if requested.len() > KNOWN_SCOPES.len() * 2 {
            return None;
        }
        let mut granted = BTreeSet::new();
        for scope in requested {
            if !self.scopes.iter().any(|s| s == scope) {
                return None;
            }
            granted.insert(scope);
        }
        // In the registered order, so equal requests give equal strings.
        Some(
            self.scopes
                .iter()
                .filter(|s| granted.contains(s.as_str()))
                .cloned()
                .collect::<Vec<_>>()
                .join(" "),
        )
    }
}

/// `(host, path and query)` of a loopback http URL (any port).
fn loopback_parts(uri: &str) -> Option<(String, String)> {
    let url = Url::parse(uri).ok()?;
    if url.scheme() != "http" || url.fragment().is_some() || !url.username().is_empty() {
        return None;
    }
    let host = match url.host()? {
        url::Host::Ipv4(ip) if ip.is_loopback() => ip.to_string(),
        url::Host::Ipv6(ip) if ip.is_loopback() => format!("[{ip}]"),
        _ => return None,
    };
    let mut rest = url.path().to_string();
    if let Some(q) = url.query() {
        rest.push('?');
        rest.push_str(q);
    }
    Some((host, rest))
}

/// Every registered client by id; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct ClientRegistry {
    clients: Arc<HashMap<String, Client>>,
}

fn valid_client_id(id: &str) -> bool {
    (3..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

/// Why a redirect URI cannot be registered for a client of `kind`; `None` when it can.
fn redirect_problem(uri: &str, kind: ClientKind) -> Option<&'static str> {
    let Ok(url) = Url::parse(uri) else {
        return Some("is not an absolute URL");
    };
    if url.fragment().is_some() || uri.contains('#') {
        return Some("must not have a fragment");
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Some("must not carry credentials");
    }
    if loopback_parts(uri).is_some() {
        return None;
    }
    match url.scheme() {
        "http" => Some("http is allowed only for loopback IP literals (127.0.0.1, [::1]); localhost is not (RFC 8252 §8.3)"),
        "https" => {
            let host = url.host_str().unwrap_or("");
            if kind == ClientKind::BrowserExtension
                && !(chromium_extension_id(&url).is_some()
                    || host.ends_with(".extensions.allizom.org"))
            {
                return Some("a browser extension redirects to https://<id>.chromiumapp.org/ or https://<id>.extensions.allizom.org/");
            }
            None
        }
        "javascript" | "data" | "file" | "vbscript" | "blob" => Some("uses a forbidden scheme"),
        scheme => {
            if kind == ClientKind::BrowserExtension {
                return Some("a browser extension redirects over https");
            }
            // RFC 8252 §7.1: a private-use scheme is a reverse domain name.
            if scheme.contains('.') {
                None
            } else {
                Some("a private-use scheme must be a reverse domain name such as com.example.app")
            }
        }
    }
}

/// The extension id of a Chrome `identity` redirect (`https://<id>.chromiumapp.org/`).
fn chromium_extension_id(url: &Url) -> Option<String> {
    let host = url.host_str()?;
    let id = host.strip_suffix(".chromiumapp.org")?;
    (id.len() == 32 && id.bytes().all(|b| (b'a'..=b'p').contains(&b))).then(|| id.to_string())
}

impl ClientRegistry {
    /// Checks every `[[clients]]` entry; the error names the client and the problem.
    pub fn from_config(config: &Config) -> Result<ClientRegistry, String> {
        let mut clients = HashMap::new();
        for c in &config.clients {
            let client = check_client(c, config)
                .map_err(|problem| format!("clients: client `{}`: {problem}", c.id))?;
            if clients.insert(client.id.clone(), client).is_some() {
                return Err(format!("clients: client id `{}` is registered twice", c.id));
            }
        }
        Ok(ClientRegistry {
            clients: Arc::new(clients),
        })
    }

    pub fn get(&self, id: &str) -> Option<&Client> {
        self.clients.get(id)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Client> {
        self.clients.values()
    }

    pub fn is_empty(&self) -> bool {
        self.clients.is_empty()
    }

    /// Every client's CORS origins (its `allowed_origins`, and
    /// `chrome-extension://<id>` for a Chrome `identity` redirect).
    pub fn cors_origins(&self) -> Vec<String> {
        let mut origins = Vec::new();
        for client in self.clients.values() {
            origins.extend(client.allowed_origins.iter().cloned());
        }
        origins
    }
}

fn check_client(c: &ClientConfig, config: &Config) -> Result<Client, String> {
    if !valid_client_id(&c.id) {
        return Err("id must be 3-64 characters of A-Z, a-z, 0-9, '.', '_' and '-'".into());
    }
    if c.name.trim().is_empty() || c.name.len() > 128 {
        return Err("name must be 1-128 characters".into());
    }
    let mut redirect_uris = Vec::new();
    let mut allowed_origins = c.allowed_origins.clone();
    for uri in &c.redirect_uris {
        if let Some(problem) = redirect_problem(uri, c.kind) {
            return Err(format!("redirect URI `{uri}` {problem}"));
        }
        let url = Url::parse(uri).expect("checked above");
        if let Some(id) = chromium_extension_id(&url) {
            allowed_origins.push(format!("chrome-extension://{id}"));
        }
        redirect_uris.push(match loopback_parts(uri) {
            Some((host, path_and_query)) => RedirectUri::Loopback {
                host,
                path_and_query,
            },
            None => RedirectUri::Exact(uri.clone()),
        });
    }
    if redirect_uris.is_empty() && c.kind != ClientKind::Service {
        return Err("needs at least one redirect URI".into());
    }
    for origin in &c.allowed_origins {
        let parsed =
            Url::parse(origin).map_err(|_| format!("allowed origin `{origin}` is not a URL"))?;
        if parsed.origin().ascii_serialization() != *origin
            && !origin.starts_with("chrome-extension://")
            && !origin.starts_with("moz-extension://")
        {
            return Err(format!(
                "allowed origin `{origin}` must be an origin (scheme://host[:port], no path)"
            ));
        }
    }
    if c.scopes.is_empty() {
        return Err("needs at least one scope".into());
    }
    for scope in &c.scopes {
        if !KNOWN_SCOPES.contains(&scope.as_str()) {
            return Err(format!(
                "unknown scope `{scope}` (known: {})",
                KNOWN_SCOPES.join(", ")
            ));
        }
    }
    let secret_hash = match (c.kind, &c.secret) {
        (ClientKind::Service, Some(secret)) if secret.len() >= MIN_SECRET_BYTES => {
            Some(hash_secret(secret.as_bytes()))
        }
        (ClientKind::Service, Some(_)) => {
            return Err(format!(
                "the secret must be at least {MIN_SECRET_BYTES} bytes"
            ))
        }
        (ClientKind::Service, None) => {
            return Err("a service client needs secret_file".into());
        }
        (_, Some(_)) => {
            return Err("only service clients have a secret (public clients use PKCE)".into())
        }
        (_, None) => None,
    };
    let audience = c.audience.clone().unwrap_or_else(|| c.id.clone());
    if audience.is_empty() || audience.len() > 128 {
        return Err("audience must be 1-128 characters".into());
    }
    let positive = |d: Option<crate::config::ConfigDuration>, default: i64, what: &str| {
        let ms = d.map_or(default, |d| d.as_millis_i64());
        if ms < 1000 {
            Err(format!("{what} must be at least one second"))
        } else {
            Ok(ms)
        }
    };
    Ok(Client {
        id: c.id.clone(),
        name: c.name.trim().to_string(),
        kind: c.kind,
        scopes: c.scopes.clone(),
        audience,
        access_ttl_ms: positive(
            c.access_ttl,
            config.tokens.access_ttl.as_millis_i64(),
            "access_ttl",
        )?,
        refresh_idle_ttl_ms: positive(
            c.refresh_idle_ttl,
            config.tokens.refresh_idle_ttl.as_millis_i64(),
            "refresh_idle_ttl",
        )?,
        allowed_origins,
        redirect_uris,
        secret_hash,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(kind: ClientKind, uris: &[&str]) -> ClientConfig {
        ClientConfig {
            id: "test-client".into(),
            name: "Test".into(),
            kind,
            redirect_uris: uris.iter().map(|s| s.to_string()).collect(),
            scopes: vec!["openid".into(), "email".into()],
            audience: None,
            access_ttl: None,
            refresh_idle_ttl: None,
            allowed_origins: vec![],
            secret_file: None,
            secret: (kind == ClientKind::Service).then(|| "s".repeat(40)),
        }
    }

    fn registry(c: ClientConfig) -> Result<ClientRegistry, String> {
        let config = Config {
            clients: vec![c],
            ..Config::default()
        };
        ClientRegistry::from_config(&config)
    }

    #[test]
    fn loopback_redirects_match_any_port_and_nothing_else() {
        let r = registry(client(
            ClientKind::Native,
            &[
                "http://127.0.0.1/callback",
                "http://[::1]/cb?x=1",
                "com.example.app:/oauth",
            ],
        ))
        .unwrap();
        let c = r.get("test-client").unwrap();
        assert!(c.accepts_redirect("http://127.0.0.1:53123/callback"));
        assert!(c.accepts_redirect("http://127.0.0.1/callback"));
        assert!(c.accepts_redirect("http://[::1]:8000/cb?x=1"));
        assert!(!c.accepts_redirect("http://127.0.0.1:53123/callback/other"));
        assert!(!c.accepts_redirect("http://127.0.0.2:53123/callback"));
        assert!(!c.accepts_redirect("http://localhost:53123/callback"));
        assert!(!c.accepts_redirect("https://127.0.0.1:53123/callback"));
        assert!(!c.accepts_redirect("http://127.0.0.1:1/callback#frag"));
        assert!(!c.accepts_redirect("http://user@127.0.0.1:1/callback"));
        assert!(c.accepts_redirect("com.example.app:/oauth"));
        assert!(!c.accepts_redirect("com.example.app:/oauth2"));
    }

    #[test]
    fn malformed_clients_are_refused_by_name() {
        for (kind, uri) in [
            (ClientKind::Native, "http://localhost/cb"),
            (ClientKind::Native, "myapp:/cb"),
            (ClientKind::Native, "https://app.example/cb#x"),
            (ClientKind::Native, "javascript:alert(1)"),
            (ClientKind::Native, "not a url"),
            (ClientKind::BrowserExtension, "https://evil.example/cb"),
            (ClientKind::BrowserExtension, "com.example.app:/cb"),
        ] {
            let e = registry(client(kind, &[uri])).unwrap_err();
            assert!(e.contains("test-client"), "{e}");
        }
        let mut no_uri = client(ClientKind::Native, &[]);
        assert!(registry(no_uri.clone()).is_err());
        no_uri.kind = ClientKind::Service;
        no_uri.secret = Some("short".into());
        assert!(registry(no_uri).unwrap_err().contains("at least 32"));
        let mut bad_scope = client(ClientKind::Native, &["http://127.0.0.1/cb"]);
        bad_scope.scopes.push("admin".into());
        assert!(registry(bad_scope).unwrap_err().contains("unknown scope"));
    }

    #[test]
    fn chrome_identity_redirects_allow_their_extension_origin() {
        let id = "abcdefghijklmnopabcdefghijklmnop";
        let r = registry(client(
            ClientKind::BrowserExtension,
            &[&format!("https://{id}.chromiumapp.org/")],
        ))
        .unwrap();
        assert_eq!(r.cors_origins(), vec![format!("chrome-extension://{id}")]);
    }

    #[test]
    fn scopes_are_granted_within_the_registration() {
        let r = registry(client(ClientKind::Native, &["http://127.0.0.1/cb"])).unwrap();
        let c = r.get("test-client").unwrap();
        assert_eq!(c.grant_scopes(None).as_deref(), Some("openid email"));
        assert_eq!(
            c.grant_scopes(Some("email openid")).as_deref(),
            Some("openid email")
        );
        assert_eq!(c.grant_scopes(Some("email")).as_deref(), Some("email"));
        assert_eq!(c.grant_scopes(Some("openid profile")), None);
    }
}
