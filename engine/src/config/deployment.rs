//! The deployment check: refuses host and cookie settings that cannot work together,
//! the most common way session cookies silently fail when frontend and backend
//! run on different hosts. On loopback hosts a problem is a warning instead, so
//! local setups still start.

use super::Config;

/// What the check found: errors stop the server, warnings are logged loudly.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub errors: Vec<String>,
    pub warnings: Vec<String>,
}

impl Verdict {
    pub fn is_ok(&self) -> bool {
        self.errors.is_empty()
    }
}

fn is_loopback(host: &str) -> bool {
    matches!(host, "localhost" | "127.0.0.1" | "::1" | "[::1]") || host.ends_with(".localhost")
}

/// True when a cookie with `Domain=domain` is sent to `host` (RFC 6265 domain-match).
fn domain_matches(host: &str, domain: &str) -> bool {
    host == domain || host.ends_with(&format!(".{domain}"))
}

/// Runs every rule of the operators' contract against `config`.
pub fn check(config: &Config) -> Verdict {
    let mut verdict = Verdict::default();
    if config.cluster.is_some() && config.storage.backend != super::StorageBackend::Postgres {
        verdict.errors.push(
            "[cluster] needs storage.backend = \"postgres\": sled is one process's embedded store, which the other nodes cannot share".into(),
        );
    }
    for origin in &config.server.trusted_origins {
        let bare = url::Url::parse(origin)
            .ok()
            .map(|u| u.origin().ascii_serialization());
        if bare.as_deref() != Some(origin.as_str()) {
            verdict.errors.push(format!(
                "server.trusted_origins: `{origin}` is not a bare origin; write it as scheme://host[:port] with no path or trailing slash{}",
                bare.map(|b| format!(" (`{b}`)")).unwrap_or_default()
            ));
        }
    }
    if let Err(problem) = crate::clients::ClientRegistry::from_config(config) {
        verdict.errors.push(problem);
    }
    let (Ok(public), Ok(frontend)) = (
        url::Url::parse(&config.server.public_url),
        url::Url::parse(&config.oauth.frontend_url),
    ) else {
        verdict
            .errors
            .push("server.public_url and oauth.frontend_url must be absolute URLs".into());
        return verdict;
    };
    let public_host = public.host_str().unwrap_or_default().to_ascii_lowercase();
    let frontend_host = frontend.host_str().unwrap_or_default().to_ascii_lowercase();
    if config.email.smtp_url.is_none() {
        let message = "email.smtp_url is not set: mails are only written to the log and to <data_dir>/outbox/, so nobody receives them".to_string();
        if is_loopback(&public_host) {
            verdict.warnings.push(message);
        } else {
            verdict.errors.push(format!(
                "{message}; server.public_url `{}` is not a loopback address",
                config.server.public_url
            ));
        }
    }

    let local = is_loopback(&public_host) || is_loopback(&frontend_host);
    let mut topology_problem = |message: String| {
        if local {
            verdict.warnings.push(format!(
                "{message} (allowed because the host is a loopback address)"
            ));
        } else {
            verdict.errors.push(message);
        }
    };

    if public.scheme() == "https" && !config.cookies.secure {
        topology_problem(format!(
            "cookies.secure must be true because server.public_url `{}` is https; browsers drop or leak cookies otherwise",
            config.server.public_url
        ));
    }
    let cookie_domain = config
        .cookies
        .domain
        .trim_start_matches('.')
        .to_ascii_lowercase();
    if public_host != frontend_host {
        if cookie_domain.is_empty() {
            topology_problem(format!(
                "server.public_url host `{public_host}` and oauth.frontend_url host `{frontend_host}` differ, so cookies.domain must be their shared parent domain (e.g. \".{}\")",
                shared_parent(&public_host, &frontend_host).unwrap_or_else(|| "example.com".into())
            ));
        } else if !domain_matches(&public_host, &cookie_domain)
            || !domain_matches(&frontend_host, &cookie_domain)
            || !cookie_domain.contains('.')
        {
            topology_problem(format!(
                "cookies.domain `{}` must be a parent domain of both `{public_host}` (server.public_url) and `{frontend_host}` (oauth.frontend_url)",
                config.cookies.domain
            ));
        }
    } else if !cookie_domain.is_empty() && !domain_matches(&public_host, &cookie_domain) {
        topology_problem(format!(
            "cookies.domain `{}` does not cover server.public_url host `{public_host}`; browsers would reject the cookie (unset it or use a parent domain)",
            config.cookies.domain
        ));
    }
    let frontend_origin = frontend.origin().ascii_serialization();
    if !config.server.trusted_origins.contains(&frontend_origin) {
        topology_problem(format!(
            "oauth.frontend_url origin `{frontend_origin}` must be listed in server.trusted_origins"
        ));
    }
    verdict
}

/// The longest common suffix of two hosts with at least two labels, if any.
fn shared_parent(a: &str, b: &str) -> Option<String> {
    let a: Vec<&str> = a.rsplit('.').collect();
    let b: Vec<&str> = b.rsplit('.').collect();
    let common: Vec<&str> = a
        .iter()
        .zip(&b)
        .take_while(|(x, y)| x == y)
        .map(|(x, _)| *x)
        .collect();
    (common.len() >= 2).then(|| common.into_iter().rev().collect::<Vec<_>>().join("."))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(public: &str, frontend: &str, domain: &str, secure: bool) -> Config {
        let mut c = Config::default();
        c.server.public_url = public.into();
        c.oauth.frontend_url = frontend.into();
        c.server.trusted_origins = vec![url::Url::parse(frontend)
            .unwrap()
            .origin()
            .ascii_serialization()];
        c.cookies.domain = domain.into();
        c.cookies.secure = secure;
        c.email.smtp_url = Some("smtps://smtp.tachigo.example".into());
        c
    }

    #[test]
    fn mail_without_smtp_is_refused_off_loopback_and_warned_about_on_it() {
        let mut c = config(
            "https://auth.tachigo.example",
            "https://auth.tachigo.example",
            "",
            true,
        );
        c.email.smtp_url = None;
        let v = check(&c);
        assert!(
            v.errors.iter().any(|e| e.contains("email.smtp_url")),
            "{v:?}"
        );
        let v = check(&Config::default());
        assert!(v.is_ok(), "{v:?}");
        assert!(
            v.warnings.iter().any(|w| w.contains("email.smtp_url")),
            "{v:?}"
        );
    }

    #[test]
    fn the_default_local_setup_passes() {
        let v = check(&Config::default());
        assert!(v.is_ok(), "{v:?}");
    }

    #[test]
    fn split_hosts_need_their_shared_parent_as_cookie_domain() {
        let v = check(&config(
            "https://api.tachigo.example",
            "https://app.tachigo.example",
            "",
            true,
        ));
        assert_eq!(v.errors.len(), 1, "{v:?}");
        assert!(v.errors[0].contains("cookies.domain") && v.errors[0].contains(".tachigo.example"));
        let v = check(&config(
            "https://api.tachigo.example",
            "https://app.tachigo.example",
            ".tachigo.example",
            true,
        ));
        assert!(v.is_ok(), "{v:?}");
        let v = check(&config(
            "https://api.one.example",
            "https://app.two.example",
            ".one.example",
            true,
        ));
        assert!(!v.is_ok());
    }

    #[test]
    fn https_needs_secure_cookies() {
        let v = check(&config(
            "https://auth.tachigo.example",
            "https://auth.tachigo.example",
            "",
            false,
        ));
        assert!(
            v.errors.iter().any(|e| e.contains("cookies.secure")),
            "{v:?}"
        );
    }

    #[test]
    fn trusted_origins_must_be_bare_and_include_the_frontend() {
        let mut c = config(
            "https://auth.tachigo.example",
            "https://auth.tachigo.example",
            "",
            true,
        );
        c.server
            .trusted_origins
            .push("https://x.example/path".into());
        let v = check(&c);
        assert!(
            v.errors.iter().any(|e| e.contains("not a bare origin")),
            "{v:?}"
        );
        c.server.trusted_origins = vec!["https://other.example".into()];
        let v = check(&c);
        assert!(
            v.errors
                .iter()
                .any(|e| e.contains("must be listed in server.trusted_origins")),
            "{v:?}"
        );
    }

    #[test]
    fn loopback_mismatches_are_warnings() {
        let v = check(&config(
            "http://127.0.0.1:8080",
            "http://localhost:3000",
            "",
            false,
        ));
        assert!(v.is_ok(), "{v:?}");
        assert!(!v.warnings.is_empty());
    }
}
