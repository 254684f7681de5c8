//! Where the callback may send the browser: `callbackURL`, `errorCallbackURL`
//! and `newUserCallbackURL` are either a path on the frontend (`/dashboard`,
//! resolved on `oauth.frontend_url`) or an absolute http(s) URL whose origin is
//! in `server.trusted_origins`. Anything else is 403 `INVALID_CALLBACK_URL`:
//! no open redirects, whatever the spelling (`//evil.example`, `/\evil.example`,
//! `https://trusted.example.evil.example`, userinfo tricks, backslashes,
//! whitespace and control characters that URL parsers silently drop,
//! percent-encoded slashes, `javascript:` and other schemes), and any longer
//! than `limits.max_callback_url_bytes` (default 1 KiB). Also the one
//! way this contract redirects: a bare 302.

use std::collections::HashSet;
use std::sync::Arc;

use http::header::{LOCATION, SET_COOKIE};
use http::{HeaderValue, StatusCode};
use tachigo_engine::config::OAuthConfig;
use url::Url;
use warp::http::Response;

use crate::common::{ApiError, Body};

/// The redirect rules of one server, built once from the configuration.
#[derive(Debug, Clone)]
pub(crate) struct RedirectPolicy {
    frontend: Url,
    trusted_origins: Arc<HashSet<String>>,
    default_callback: String,
    default_error: String,
    max_url_bytes: usize,
}

fn invalid(field: &str) -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "invalid_callback_url",
        format!("{field} must be a relative path or an absolute URL on a trusted origin"),
    )
}

/// Decodes `%XX` escapes once; malformed escapes are kept as they are.
fn percent_decode(s: &str) -> Vec<u8> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

/// Whether a path, decoded up to three times, could be read as another host:
/// a leading `//`, any backslash, or control characters.
fn path_is_suspicious(path: &str) -> bool {
    let mut current = path.to_string();
    for _ in 0..3 {
        let decoded = percent_decode(&current);
        if decoded.starts_with(b"//")
            || decoded.contains(&b'\\')
            || decoded.iter().any(|b| b.is_ascii_control())
        {
            return true;
        }
        let decoded = String::from_utf8_lossy(&decoded).into_owned();
        if decoded == current {
            return false;
        }
        current = decoded;
    }
    // Still changing after three rounds: nobody needs that, refuse it.
    true
}

impl RedirectPolicy {
    pub(crate) fn from_config(
        config: &OAuthConfig,
        trusted_origins: Arc<HashSet<String>>,
        max_url_bytes: usize,
    ) -> Self {
        let frontend = Url::parse(&config.frontend_url)
            .unwrap_or_else(|_| Url::parse("http://localhost:3000").expect("a valid URL"));
        let mut policy = RedirectPolicy {
            frontend,
            trusted_origins,
            default_callback: String::new(),
            default_error: String::new(),
            max_url_bytes,
        };
        // Operator-configured, so trusted as written (the loader checked their form).
        policy.default_callback = policy.resolve_configured(&config.default_callback);
        policy.default_error = policy.resolve_configured(&config.error_callback);
        policy
    }

    fn resolve_configured(&self, value: &str) -> String {
        let resolved = if value.starts_with('/') && !value.starts_with("//") {
            self.frontend.join(value).ok()
        } else {
            Url::parse(value).ok()
        };
        resolved
            .unwrap_or_else(|| self.frontend.clone())
            .to_string()
    }

    /// Where a successful sign-in goes when the caller named nothing.
    pub(crate) fn default_callback(&self) -> &str {
        &self.default_callback
    }

    /// Where a failed sign-in goes when the caller named nothing.
    pub(crate) fn default_error(&self) -> &str {
        &self.default_error
    }

    /// Checks a caller-supplied URL named `field` and resolves it to an absolute
    /// URL; `Ok(None)` when absent or empty.
    pub(crate) fn resolve(
        &self,
        field: &str,
        raw: Option<&str>,
    ) -> Result<Option<String>, ApiError> {
        let Some(raw) = raw.filter(|r| !r.is_empty()) else {
            return Ok(None);
        };
        self.check(raw).map(Some).ok_or_else(|| invalid(field))
    }

    fn check(&self, raw: &str) -> Option<String> {
        if raw.len() > self.max_url_bytes
            || raw
                .chars()
                .any(|c| c.is_control() || c.is_whitespace() || c == '\\')
        {
            return None;
        }
        let url = if raw.starts_with('/') {
            if raw.starts_with("//") {
                return None;
            }
            let url = self.frontend.join(raw).ok()?;
            // Belt and braces: a joined path can never change the origin.
            (url.origin() == self.frontend.origin()).then_some(url)?
        } else {
            let url = Url::parse(raw).ok()?;
            let origin_trusted = matches!(url.scheme(), "http" | "https")
                && url.username().is_empty()
                && url.password().is_none()
                && self
                    .trusted_origins
                    .contains(&url.origin().ascii_serialization());
            origin_trusted.then_some(url)?
        };
        (!path_is_suspicious(url.path())).then(|| url.to_string())
    }
}

/// `url` with `?error=<code>` appended to its query.
pub(crate) fn with_error(url: &str, code: &str) -> String {
    match Url::parse(url) {
        Ok(mut parsed) => {
            parsed.query_pairs_mut().append_pair("error", code);
            parsed.to_string()
        }
        Err(_) => format!("{url}?error={code}"),
    }
}

/// A 302 to `location` setting `cookies`, with no body.
pub(crate) fn redirect_to(location: &str, cookies: Vec<HeaderValue>) -> Response<Body> {
    let mut response = Response::new(Body::default());
    // Every location was built by `url::Url`, which never yields bytes a header refuses.
    match HeaderValue::from_str(location) {
        Ok(value) => {
            *response.status_mut() = StatusCode::FOUND;
            response.headers_mut().insert(LOCATION, value);
        }
        Err(_) => *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR,
    }
    for cookie in cookies {
        response.headers_mut().append(SET_COOKIE, cookie);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RedirectPolicy {
        let config = OAuthConfig {
            frontend_url: "https://app.tachigo.example".into(),
            ..OAuthConfig::default()
        };
        let trusted = Arc::new(
            [
                "https://app.tachigo.example",
                "https://dash.tachigo.example",
            ]
            .map(String::from)
            .into_iter()
            .collect(),
        );
        RedirectPolicy::from_config(&config, trusted, 1024)
    }

    #[test]
    fn relative_paths_and_trusted_origins_resolve() {
        let p = policy();
        assert_eq!(
            p.resolve("callbackURL", Some("/watch?v=1#t"))
                .unwrap()
                .as_deref(),
            Some("https://app.tachigo.example/watch?v=1#t")
        );
        assert_eq!(
            p.resolve("callbackURL", Some("https://dash.tachigo.example/home"))
                .unwrap()
                .as_deref(),
            Some("https://dash.tachigo.example/home")
        );
        assert_eq!(
            p.resolve("callbackURL", Some("/next?to=%2Fhome"))
                .unwrap()
                .as_deref(),
            Some("https://app.tachigo.example/next?to=%2Fhome")
        );
        assert_eq!(p.resolve("callbackURL", None).unwrap(), None);
        assert_eq!(p.resolve("callbackURL", Some("")).unwrap(), None);
        assert_eq!(
            p.default_callback(),
            "https://app.tachigo.example/dashboard"
        );
        assert_eq!(p.default_error(), "https://app.tachigo.example/auth/error");
    }

    #[test]
    fn callback_urls_past_the_length_bound_are_refused() {
        let p = policy();
        let at_bound = format!(
            "/{}",
            "a".repeat(1024 - "https://app.tachigo.example/".len())
        );
        assert!(p.resolve("callbackURL", Some(&at_bound)).is_ok());
        let over = format!("/{}", "a".repeat(1024));
        let refused = p.resolve("callbackURL", Some(&over)).unwrap_err();
        assert_eq!(refused.code, "invalid_callback_url");
    }

    #[test]
    fn open_redirect_spellings_are_refused() {
        let p = policy();
        for bad in [
            "//evil.example",
            "///evil.example",
            "/\\evil.example",
            "\\\\evil.example",
            "/%2F%2Fevil.example",
            "/%2f/evil.example",
            "/%5Cevil.example",
            "/%252F%252Fevil.example",
            "%2F%2Fevil.example",
            "/\t/evil.example",
            "/\n/evil.example",
            " /dashboard",
            "https://evil.example/",
            "https://app.tachigo.example.evil.example/",
            "https://app.tachigo.example@evil.example/",
            "https://evil.example@app.tachigo.example/",
            "https://evil.example#@app.tachigo.example",
            "http://app.tachigo.example/",
            "javascript:alert(1)",
            "JaVaScRiPt:alert(1)",
            "data:text/html,hi",
            "https:evil.example",
            "dashboard",
            "https://app.tachigo.example/%2F%2Fevil.example",
        ] {
            let e = p.resolve("callbackURL", Some(bad)).unwrap_err();
            assert_eq!(
                (e.status.as_u16(), e.code),
                (403, "invalid_callback_url"),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn errors_are_appended_to_the_query() {
        assert_eq!(
            with_error(
                "https://app.tachigo.example/auth/error?from=x",
                "state_mismatch"
            ),
            "https://app.tachigo.example/auth/error?from=x&error=state_mismatch"
        );
    }
}
