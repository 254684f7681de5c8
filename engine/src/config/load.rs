//! Loading: TOML file, then `TACHIGO__SECTION__KEY` overrides, then validation.
//!
//! Every refusal names the key at fault, so an operator can fix it without
//! reading code.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use thiserror::Error;

use super::Config;

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid TOML: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error("environment variable {var}: {message}")]
    Env { var: String, message: String },
    #[error("invalid configuration key `{key}`: {message}")]
    Invalid { key: String, message: String },
}

pub(super) fn invalid(key: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        message: message.into(),
    }
}

const ENV_PREFIX: &str = "TACHIGO__";

/// Loads the configuration from an optional file and the given environment
/// (pass `std::env::vars()`), with secret files read and every value checked.
pub fn load(
    file: Option<&Path>,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Config, ConfigError> {
    let mut table = match file {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.to_path_buf(),
                source,
            })?;
            text.parse::<toml::Table>()
                .map_err(|e| ConfigError::Syntax {
                    path: path.to_path_buf(),
                    message: e.to_string(),
                })?
        }
        None => toml::Table::new(),
    };
    let mut overrides: Vec<(String, String)> = env
        .into_iter()
        .filter(|(k, _)| k.starts_with(ENV_PREFIX))
        .collect();
    overrides.sort();
    for (var, value) in overrides {
        apply_env_override(&mut table, &var, &value)?;
    }
    let mut config: Config =
        serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
            let path = e.path().to_string();
            let key = if path == "." {
                "(top level)".to_string()
            } else {
                path
            };
            invalid(key, e.into_inner().to_string())
        })?;
    resolve_secret_files(&mut config)?;
    validate(&config)?;
    Ok(config)
}

/// `TACHIGO__DASHBOARD__ALLOW_SIGNUP=true` sets `dashboard.allow_signup = true`.
/// The value is read as a TOML value when it is one (booleans, numbers, arrays,
/// quoted strings) and as a plain string otherwise (`15m`, `127.0.0.1:8080`).
fn apply_env_override(table: &mut toml::Table, var: &str, raw: &str) -> Result<(), ConfigError> {
    let path: Vec<String> = var[ENV_PREFIX.len()..]
        .split("__")
        .map(|s| s.to_ascii_lowercase())
        .collect();
    if path.iter().any(|p| p.is_empty()) {
        return Err(ConfigError::Env {
            var: var.into(),
            message: "expected TACHIGO__SECTION__KEY".into(),
        });
    }
    let value = match format!("v = {raw}").parse::<toml::Table>() {
        Ok(mut t) => match t.remove("v") {
            Some(toml::Value::Datetime(_)) | None => toml::Value::String(raw.into()),
            Some(v) => v,
        },
        Err(_) => toml::Value::String(raw.into()),
    };
    let (last, parents) = path.split_last().expect("path is not empty");
    let mut cursor = table;
    for (depth, part) in parents.iter().enumerate() {
        let entry = cursor
            .entry(part.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        cursor = entry.as_table_mut().ok_or_else(|| ConfigError::Env {
            var: var.into(),
            message: format!("`{}` is not a section", path[..=depth].join(".")),
        })?;
    }
    cursor.insert(last.clone(), value);
    Ok(())
}

/// The database URL kept in `path`: its first line, trimmed.
pub fn read_postgres_url_file(path: &Path) -> Result<String, ConfigError> {
    let text = read_secret_file("storage.postgres.url_file", path)?;
    Ok(text.lines().next().unwrap_or("").trim().to_string())
}

fn read_secret_file(key: &str, path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path)
        .map(|s| s.trim_end().to_string())
        .map_err(|e| invalid(key, format!("cannot read {}: {e}", path.display())))
}

/// A client secret others on the machine can read is not a secret.
fn check_not_world_readable(key: &str, path: &Path) -> Result<(), ConfigError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(path)
            .map_err(|e| invalid(key, format!("cannot read {}: {e}", path.display())))?;
        if meta.permissions().mode() & 0o004 != 0 {
            return Err(invalid(
                key,
                format!("{} is readable by everyone; chmod o-r it", path.display()),
            ));
        }
    }
    Ok(())
}

fn resolve_secret_files(config: &mut Config) -> Result<(), ConfigError> {
    let pg = &mut config.storage.postgres;
    if let Some(path) = &pg.url_file {
        if pg.url.is_some() {
            return Err(invalid(
                "storage.postgres.url_file",
                "set either storage.postgres.url or storage.postgres.url_file, not both",
            ));
        }
        pg.url = Some(read_postgres_url_file(path)?);
    }
    for (i, secret) in config.extension.secrets.iter_mut().enumerate() {
        if let Some(path) = &secret.secret_file {
            secret.secret = read_secret_file(&format!("extension.secrets[{i}].secret_file"), path)?;
        }
    }
    if let Some(path) = &config.email.smtp_password_file {
        config.email.smtp_password = Some(read_secret_file("email.smtp_password_file", path)?);
    }
    for client in config.clients.iter_mut() {
        if let Some(path) = &client.secret_file {
            let key = format!("clients.{}.secret_file", client.id);
            check_not_world_readable(&key, path)?;
            client.secret = Some(read_secret_file(&key, path)?);
        }
    }
    for (name, provider) in config.oauth.providers.iter_mut() {
        if let Some(path) = &provider.client_secret_file {
            provider.client_secret =
                read_secret_file(&format!("oauth.providers.{name}.client_secret_file"), path)?;
        }
    }
    Ok(())
}

pub(super) fn check_url(key: &str, value: &str) -> Result<url::Url, ConfigError> {
    let url = url::Url::parse(value)
        .map_err(|e| invalid(key, format!("`{value}` is not an absolute URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(invalid(
            key,
            format!("`{value}` must be an http(s) URL with a host"),
        ));
    }
    Ok(url)
}

fn check_positive(key: &str, d: super::ConfigDuration) -> Result<(), ConfigError> {
    if d.0.is_zero() {
        return Err(invalid(key, "must be longer than zero"));
    }
    Ok(())
}

/// The JWKS cache lifetime is at least a second (`max-age` counts whole
/// seconds); a rotation schedule is at least twice that lifetime.
fn validate_key_rotation(t: &super::TokenConfig) -> Result<(), ConfigError> {
    if t.jwks_cache_lifetime.0 < std::time::Duration::from_secs(1) {
        return Err(invalid("tokens.jwks_cache_lifetime", "must be at least 1s"));
    }
    if let Some(every) = t.signing_key_rotation {
        if every.0 < t.jwks_cache_lifetime.0 * 2 {
            return Err(invalid(
                "tokens.signing_key_rotation",
                "must be at least twice tokens.jwks_cache_lifetime",
            ));
        }
    }
    Ok(())
}

fn validate_limits(limits: &super::LimitsConfig) -> Result<(), ConfigError> {
    let at_least_one = [
        ("limits.max_connections", limits.max_connections),
        (
            "limits.oauth_starts_per_minute",
            limits.oauth_starts_per_minute as usize,
        ),
        (
            "limits.oauth_starts_burst",
            limits.oauth_starts_burst as usize,
        ),
        (
            "limits.max_pending_oauth_states",
            limits.max_pending_oauth_states,
        ),
    ];
    for (key, value) in at_least_one {
        if value == 0 {
            return Err(invalid(key, "must be at least 1"));
        }
    }
    if limits.max_callback_url_bytes < 64 {
        return Err(invalid(
            "limits.max_callback_url_bytes",
            "must be at least 64 bytes",
        ));
    }
    check_positive("limits.header_read_timeout", limits.header_read_timeout)?;
    check_positive(
        "limits.keep_alive_idle_timeout",
        limits.keep_alive_idle_timeout,
    )?;
    Ok(())
}

fn validate_storage(storage: &super::StorageConfig) -> Result<(), ConfigError> {
    let pg = &storage.postgres;
    if storage.backend == super::StorageBackend::Postgres
        && pg.url.as_deref().is_none_or(str::is_empty)
    {
        return Err(invalid(
            "storage.postgres.url",
            "storage.backend = \"postgres\" needs storage.postgres.url or storage.postgres.url_file",
        ));
    }
    if pg.pool_size == 0 || pg.pool_size > 1024 {
        return Err(invalid("storage.postgres.pool_size", "must be 1 to 1024"));
    }
    check_positive("storage.postgres.statement_timeout", pg.statement_timeout)?;
    check_positive("storage.postgres.connect_timeout", pg.connect_timeout)?;
    Ok(())
}

fn validate_email(email: &super::EmailConfig) -> Result<(), ConfigError> {
    email
        .from
        .parse::<lettre::message::Mailbox>()
        .map_err(|e| {
            invalid(
                "email.from",
                format!("`{}` is not a mailbox: {e}", email.from),
            )
        })?;
    if let Some(url) = &email.smtp_url {
        let parsed = url::Url::parse(url)
            .map_err(|e| invalid("email.smtp_url", format!("is not a URL: {e}")))?;
        if !matches!(parsed.scheme(), "smtp" | "smtps") || parsed.host_str().is_none() {
            return Err(invalid(
                "email.smtp_url",
                "must be smtp://host[:port] or smtps://host[:port]",
            ));
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(invalid(
                "email.smtp_url",
                "must not carry credentials; use email.smtp_username and email.smtp_password_file",
            ));
        }
        if let Some((_, tls)) = parsed.query_pairs().find(|(k, _)| k == "tls") {
            if !matches!(tls.as_ref(), "none" | "required" | "opportunistic") {
                return Err(invalid(
                    "email.smtp_url",
                    "tls= must be none, required or opportunistic",
                ));
            }
            let loopback = match parsed.host() {
                // `smtp://` is not a special scheme: an IP address stays a "domain".
                Some(url::Host::Domain(d)) => {
                    d.eq_ignore_ascii_case("localhost")
                        || d.trim_matches(['[', ']'])
                            .parse::<std::net::IpAddr>()
                            .is_ok_and(|ip| ip.is_loopback())
                }
                Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
                Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
                None => false,
            };
            if tls == "none" && !loopback {
                return Err(invalid(
                    "email.smtp_url",
                    "tls=none (no encryption) is only allowed for a loopback SMTP server",
                ));
            }
        }
    }
    if email.smtp_password.is_some() != email.smtp_username.is_some() {
        return Err(invalid(
            "email.smtp_username",
            "set email.smtp_username and email.smtp_password_file together",
        ));
    }
    check_url("email.dashboard_verify_url", &email.dashboard_verify_url)?;
    check_url("email.dashboard_reset_url", &email.dashboard_reset_url)?;
    check_positive("email.verification_ttl", email.verification_ttl)?;
    check_positive("email.reset_ttl", email.reset_ttl)?;
    check_positive("email.retry_base", email.retry_base)?;
    if email.max_queued == 0 {
        return Err(invalid("email.max_queued", "must be at least 1"));
    }
    if email.max_attempts == 0 {
        return Err(invalid("email.max_attempts", "must be at least 1"));
    }
    if email.requests_per_minute == 0 {
        return Err(invalid("email.requests_per_minute", "must be at least 1"));
    }
    if email.answer_floor.0 > std::time::Duration::from_secs(5) {
        return Err(invalid("email.answer_floor", "must be at most 5s"));
    }
    Ok(())
}

fn validate(config: &Config) -> Result<(), ConfigError> {
    check_url("server.public_url", &config.server.public_url)?;
    check_url("oauth.frontend_url", &config.oauth.frontend_url)?;
    for (i, origin) in config.server.trusted_origins.iter().enumerate() {
        check_url(&format!("server.trusted_origins[{i}]"), origin)?;
    }
    for (key, value) in [
        ("oauth.default_callback", &config.oauth.default_callback),
        ("oauth.error_callback", &config.oauth.error_callback),
    ] {
        if !value.starts_with('/') || value.starts_with("//") {
            check_url(key, value)?;
        }
    }
    let t = &config.tokens;
    check_positive("tokens.access_ttl", t.access_ttl)?;
    check_positive("tokens.refresh_idle_ttl", t.refresh_idle_ttl)?;
    check_positive("tokens.session_absolute_ttl", t.session_absolute_ttl)?;
    check_positive("oauth.session_ttl", config.oauth.session_ttl)?;
    check_positive("engine.idle_passivation", config.engine.idle_passivation)?;
    if t.refresh_grace >= t.refresh_idle_ttl {
        return Err(invalid(
            "tokens.refresh_grace",
            "must be shorter than tokens.refresh_idle_ttl",
        ));
    }
    if config.engine.max_live_actors == 0 {
        return Err(invalid("engine.max_live_actors", "must be at least 1"));
    }
    validate_key_rotation(t)?;
    validate_limits(&config.limits)?;
    validate_storage(&config.storage)?;
    if let Some(cluster) = &config.cluster {
        super::cluster::validate(cluster).map_err(|(key, problem)| invalid(key, problem))?;
    }
    crate::clients::ClientRegistry::from_config(config)
        .map_err(|problem| invalid("clients", problem))?;
    if !config.oauth2.sign_in_url.is_empty() {
        check_url("oauth2.sign_in_url", &config.oauth2.sign_in_url)?;
    }
    check_positive("oauth2.code_ttl", config.oauth2.code_ttl)?;
    check_positive("oauth2.device_code_ttl", config.oauth2.device_code_ttl)?;
    check_positive(
        "oauth2.device_poll_interval",
        config.oauth2.device_poll_interval,
    )?;
    validate_email(&config.email)?;
    for (i, id) in config.extension.client_ids.iter().enumerate() {
        if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(invalid(
                format!("extension.client_ids[{i}]"),
                format!("`{id}` is not a Twitch client id (letters and digits only)"),
            ));
        }
    }
    for (i, secret) in config.extension.secrets.iter().enumerate() {
        let key = format!("extension.secrets[{i}]");
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(secret.secret.trim())
            .map_err(|e| invalid(format!("{key}.secret"), format!("is not base64: {e}")))?;
        if decoded.len() < 16 {
            return Err(invalid(
                format!("{key}.secret"),
                "is shorter than 16 bytes once decoded",
            ));
        }
        if let Some(at) = &secret.expires_at {
            humantime::parse_rfc3339_weak(at).map_err(|e| {
                invalid(
                    format!("{key}.expires_at"),
                    format!("`{at}` is not an RFC 3339 time: {e}"),
                )
            })?;
        }
    }
    for (name, provider) in &config.oauth.providers {
        let key = format!("oauth.providers.{name}");
        if name == crate::siwe::SIWE_PROVIDER {
            return Err(invalid(
                key,
                "is the name of Sign-In with Ethereum's accounts; pick another name",
            ));
        }
        if provider.client_id.is_empty() {
            return Err(invalid(format!("{key}.client_id"), "is required"));
        }
        if provider.client_secret.is_empty() {
            return Err(invalid(
                format!("{key}.client_secret"),
                "is required (or client_secret_file)",
            ));
        }
        super::provider_checks::check_provider(name, provider)?;
    }
    super::token_keys::read_token_keys(&config.oauth)?;
    for (i, p) in config.oauth.trusted_providers.iter().enumerate() {
        if !config.oauth.providers.contains_key(p) {
            return Err(invalid(
                format!("oauth.trusted_providers[{i}]"),
                format!("`{p}` is not a configured provider"),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn file(text: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(text.as_bytes()).unwrap();
        f
    }

    #[test]
    fn email_settings_are_checked_naming_the_key() {
        let refuse = |vars: &[(&str, &str)]| load(None, env(vars)).unwrap_err().to_string();
        let e = refuse(&[("TACHIGO__EMAIL__SMTP_URL", "http://mail.example")]);
        assert!(e.contains("email.smtp_url"), "{e}");
        let e = refuse(&[("TACHIGO__EMAIL__SMTP_URL", "smtp://user:pw@mail.example")]);
        assert!(
            e.contains("email.smtp_url") && e.contains("credentials"),
            "{e}"
        );
        let e = refuse(&[("TACHIGO__EMAIL__SMTP_URL", "smtp://mail.example?tls=maybe")]);
        assert!(e.contains("tls="), "{e}");
        let e = refuse(&[("TACHIGO__EMAIL__SMTP_URL", "smtp://mail.example?tls=none")]);
        assert!(e.contains("loopback"), "{e}");
        let e = refuse(&[("TACHIGO__EMAIL__SMTP_URL", "smtp://10.0.0.1:25?tls=none")]);
        assert!(e.contains("loopback"), "{e}");
        for local in [
            "smtp://127.0.0.1:2525?tls=none",
            "smtp://[::1]:2525?tls=none",
        ] {
            let c = load(None, env(&[("TACHIGO__EMAIL__SMTP_URL", local)])).unwrap();
            assert_eq!(c.email.smtp_url.as_deref(), Some(local));
        }
        let e = refuse(&[("TACHIGO__EMAIL__FROM", "not a mailbox")]);
        assert!(e.contains("email.from"), "{e}");
        let e = refuse(&[("TACHIGO__EMAIL__SMTP_USERNAME", "someone")]);
        assert!(e.contains("email.smtp_username"), "{e}");
        let e = refuse(&[("TACHIGO__EMAIL__MAX_QUEUED", "0")]);
        assert!(e.contains("email.max_queued"), "{e}");

        let password = file("s3cret\n");
        let c = load(
            None,
            env(&[
                ("TACHIGO__EMAIL__SMTP_URL", "smtps://mail.example:465"),
                ("TACHIGO__EMAIL__SMTP_USERNAME", "mailer"),
                (
                    "TACHIGO__EMAIL__SMTP_PASSWORD_FILE",
                    password.path().to_str().unwrap(),
                ),
            ]),
        )
        .unwrap();
        assert_eq!(c.email.smtp_password.as_deref(), Some("s3cret"));
        assert!(!format!("{:?}", c.email).contains("s3cret"));
    }

    #[test]
    fn defaults_run_without_a_file() {
        let c = load(None, env(&[])).unwrap();
        assert_eq!(c.server.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.tokens.access_ttl.as_secs(), 900);
        assert_eq!(c.tokens.refresh_idle_ttl.as_secs(), 14 * 86_400);
        assert!(c.dashboard.refresh_body_fallback);
        assert!(!c.dashboard.allow_signup);
    }

    #[test]
    fn file_values_and_env_overrides_apply_in_that_order() {
        let f = file("[dashboard]\nallow_signup = false\n[tokens]\naccess_ttl = \"5m\"\n");
        let c = load(
            Some(f.path()),
            env(&[
                ("TACHIGO__DASHBOARD__ALLOW_SIGNUP", "true"),
                ("TACHIGO__SERVER__LISTEN", "127.0.0.1:9999"),
                ("TACHIGO__ENGINE__MAX_LIVE_ACTORS", "42"),
                (
                    "TACHIGO__SERVER__TRUSTED_ORIGINS",
                    "[\"http://a.test\", \"http://b.test\"]",
                ),
                ("UNRELATED", "x"),
            ]),
        )
        .unwrap();
        assert!(c.dashboard.allow_signup);
        assert_eq!(c.tokens.access_ttl.as_secs(), 300);
        assert_eq!(c.server.listen.port(), 9999);
        assert_eq!(c.engine.max_live_actors, 42);
        assert_eq!(
            c.server.trusted_origins,
            vec!["http://a.test", "http://b.test"]
        );
    }

    fn refusal(text: &str, vars: &[(&str, &str)]) -> String {
        let f = file(text);
        load(Some(f.path()), env(vars)).unwrap_err().to_string()
    }

    #[test]
    fn key_rotation_timing_is_read_and_a_too_short_schedule_refused() {
        let c = load(
            Some(
                file("[tokens]\njwks_cache_lifetime = \"2m\"\nsigning_key_rotation = \"30d\"\n")
                    .path(),
            ),
            env(&[]),
        )
        .unwrap();
        assert_eq!(c.tokens.jwks_cache_lifetime.as_secs(), 120);
        assert_eq!(
            c.tokens.signing_key_rotation.unwrap().as_secs(),
            30 * 86_400
        );
        let defaults = load(Some(file("").path()), env(&[])).unwrap();
        assert_eq!(defaults.tokens.jwks_cache_lifetime.as_secs(), 300);
        assert!(defaults.tokens.signing_key_rotation.is_none());
        let e = refusal("[tokens]\njwks_cache_lifetime = \"500ms\"\n", &[]);
        assert!(e.contains("tokens.jwks_cache_lifetime"), "{e}");
        let e = refusal(
            "[tokens]\njwks_cache_lifetime = \"5m\"\nsigning_key_rotation = \"9m\"\n",
            &[],
        );
        assert!(e.contains("tokens.signing_key_rotation"), "{e}");
        let e = refusal("[tokens]\nsigning_key_rotation = \"soon\"\n", &[]);
        assert!(e.contains("tokens.signing_key_rotation"), "{e}");
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused_naming_the_key() {
        let e = refusal("[dashboard]\nalow_signup = true\n", &[]);
        assert!(e.contains("dashboard") && e.contains("alow_signup"), "{e}");
        let e = refusal("[bogus]\nx = 1\n", &[]);
        assert!(e.contains("bogus"), "{e}");
        let e = refusal("[tokens]\naccess_ttl = \"fifteen\"\n", &[]);
        assert!(e.contains("tokens.access_ttl"), "{e}");
        let e = refusal("[server]\nlisten = \"nope\"\n", &[]);
        assert!(e.contains("server.listen"), "{e}");
        let e = refusal("", &[("TACHIGO__DASHBOARD__ALLOW_SIGNUP", "maybe")]);
        assert!(e.contains("dashboard.allow_signup"), "{e}");
        let e = refusal("", &[("TACHIGO__NOPE__X", "1")]);
        assert!(e.contains("nope"), "{e}");
        let e = refusal("[engine]\nmax_live_actors = 0\n", &[]);
        assert!(e.contains("engine.max_live_actors"), "{e}");
        let e = refusal("[limits]\nmax_connections = 0\n", &[]);
        assert!(e.contains("limits.max_connections"), "{e}");
        let e = refusal("", &[("TACHIGO__LIMITS__HEADER_READ_TIMEOUT", "0s")]);
        assert!(e.contains("limits.header_read_timeout"), "{e}");
        let e = refusal("[[extension.secrets]]\nsecret = \"%%%\"\n", &[]);
        assert!(e.contains("extension.secrets[0].secret"), "{e}");
        let e = refusal("[storage]\ndurability = \"sometimes\"\n", &[]);
        assert!(e.contains("storage.durability"), "{e}");
        let e = refusal(
            "[oauth.providers.corp]\nclient_id = \"a\"\nclient_secret = \"b\"\n",
            &[],
        );
        assert!(e.contains("oauth.providers.corp.issuer"), "{e}");
        let e = refusal(
            "[oauth.providers.siwe]\nclient_id = \"a\"\nclient_secret = \"b\"\nissuer = \"https://id.example\"\n",
            &[],
        );
        assert!(e.contains("oauth.providers.siwe"), "{e}");
        let e = refusal("[server]\npublic_url = \"localhost\"\n", &[]);
        assert!(e.contains("server.public_url"), "{e}");
        let e = refusal("not toml = = =", &[]);
        assert!(e.contains("not valid TOML"), "{e}");
    }

    #[test]
    fn secrets_can_come_from_files() {
        let secret = file("c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0\n");
        let f = file(&format!(
            "[[extension.secrets]]\nsecret_file = \"{}\"\n",
            secret.path().display()
        ));
        let c = load(Some(f.path()), env(&[])).unwrap();
        assert_eq!(
            c.extension.secrets[0].secret,
            "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0"
        );
        let e = refusal(
            "[[extension.secrets]]\nsecret_file = \"/nonexistent/secret\"\n",
            &[],
        );
        assert!(e.contains("extension.secrets[0].secret_file"), "{e}");
    }
}
