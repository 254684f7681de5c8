//! Cookies the backend owns: one place that writes their attributes
//! (`HttpOnly`, `Secure` unless `cookies.secure = false`, `SameSite=Lax`, `Path`,
//! `Max-Age`, `Domain` only when configured) and one that reads them back.
//! A request may carry its cookies in several `Cookie` fields (HTTP/2 clients
//! split them, RFC 9113 §8.2.3): the dispatcher joins them into one with
//! [`join_cookie_fields`] before any contract reads a cookie, so every reader
//! sees them all.

use http::header::COOKIE;
use http::{HeaderMap, HeaderValue};

/// The attributes shared by every cookie, from `[cookies]`.
#[derive(Debug, Clone)]
pub struct CookieSettings {
    pub secure: bool,
    pub domain: Option<String>,
}

impl CookieSettings {
    pub fn from_config(config: &tachigo_engine::config::CookieConfig) -> CookieSettings {
        CookieSettings {
            secure: config.secure,
            domain: Some(config.domain.trim().to_string()).filter(|d| !d.is_empty()),
        }
    }

    /// `Set-Cookie` for `name=value` at `path`, living `max_age_secs`.
    pub fn set(&self, name: &str, value: &str, path: &str, max_age_secs: i64) -> HeaderValue {
        let mut cookie = format!("{name}={value}; HttpOnly");
        if self.secure {
            cookie.push_str("; Secure");
        }
        cookie.push_str(&format!(
            "; SameSite=Lax; Path={path}; Max-Age={}",
            max_age_secs.max(0)
        ));
        if let Some(domain) = &self.domain {
            cookie.push_str(&format!("; Domain={domain}"));
        }
        HeaderValue::from_str(&cookie).expect("cookie names and values are plain ASCII")
    }

    /// `Set-Cookie` that makes the browser drop the cookie at once.
    pub fn clear(&self, name: &str, path: &str) -> HeaderValue {
        self.set(name, "", path, 0)
    }
}

/// Whether a `name=value` pair is visible ASCII (spaces allowed), as every
/// cookie this server sets is.
fn plain_pair(pair: &[u8]) -> bool {
    !pair.is_empty() && pair.iter().all(|b| (0x20..0x7f).contains(b))
}

/// Joins every `Cookie` field of a request into one, `; `-separated, in order
/// (RFC 9113 §8.2.3; RFC 6265 §5.4 allows only one on HTTP/1.1, but clients
/// send several). A pair that is not visible ASCII (another application's
/// UTF-8 cookie on a shared parent domain) is dropped alone: no cookie of this
/// server can be in it, and the others are kept.
pub fn join_cookie_fields(headers: &mut HeaderMap) {
    let mut fields = headers.get_all(COOKIE).iter();
    match (fields.next(), fields.next()) {
        (None, _) => return,
        (Some(only), None) if only.to_str().is_ok() => return,
        _ => {}
    }
    let joined = headers
        .get_all(COOKIE)
        .iter()
        .flat_map(|v| v.as_bytes().split(|b| *b == b';'))
        .map(|pair| pair.trim_ascii())
        .filter(|pair| plain_pair(pair))
        .filter_map(|pair| std::str::from_utf8(pair).ok())
        .collect::<Vec<_>>()
        .join("; ");
    headers.remove(COOKIE);
    if joined.is_empty() {
        return;
    }
    if let Ok(value) = HeaderValue::from_str(&joined) {
        headers.insert(COOKIE, value);
    }
}

/// The value of cookie `name` in a request's (joined) `Cookie` header.
pub fn from_headers(headers: &HeaderMap, name: &str) -> Option<String> {
    read(headers.get(COOKIE).and_then(|v| v.to_str().ok()), name)
}

/// The value of cookie `name` in a `Cookie` header, if present and non-empty.
pub fn read(cookie_header: Option<&str>, name: &str) -> Option<String> {
    read_borrowed(cookie_header, name).map(str::to_string)
}

/// [`read`], borrowing the value from the header.
pub fn read_borrowed<'a>(cookie_header: Option<&'a str>, name: &str) -> Option<&'a str> {
    cookie_header?
        .split(';')
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim().trim_matches('"'))
        .filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_follow_the_settings() {
        let plain = CookieSettings {
            secure: false,
            domain: None,
        };
        assert_eq!(
            plain
                .set("tachigo_refresh", "abc", "/api/v1/auth", 60)
                .to_str()
                .unwrap(),
            "tachigo_refresh=abc; HttpOnly; SameSite=Lax; Path=/api/v1/auth; Max-Age=60"
        );
        let prod = CookieSettings {
            secure: true,
            domain: Some(".tachigo.example".into()),
        };
        assert_eq!(
            prod.clear("tachigo.session_token", "/").to_str().unwrap(),
            "tachigo.session_token=; HttpOnly; Secure; SameSite=Lax; Path=/; Max-Age=0; Domain=.tachigo.example"
        );
    }

    #[test]
    fn every_cookie_field_is_read() {
        let mut headers = HeaderMap::new();
        headers.append(COOKIE, HeaderValue::from_static("a=1"));
        headers.append(
            COOKIE,
            HeaderValue::from_static("tachigo.session_token=tok; b=2"),
        );
        join_cookie_fields(&mut headers);
        assert_eq!(headers.get_all(COOKIE).iter().count(), 1);
        assert_eq!(
            headers.get(COOKIE).unwrap(),
            "a=1; tachigo.session_token=tok; b=2"
        );
        assert_eq!(
            from_headers(&headers, "tachigo.session_token").as_deref(),
            Some("tok")
        );
        let mut single = HeaderMap::new();
        single.append(COOKIE, HeaderValue::from_static("a=1"));
        join_cookie_fields(&mut single);
        assert_eq!(single.get(COOKIE).unwrap(), "a=1");

        let mut garbled = HeaderMap::new();
        garbled.append(COOKIE, HeaderValue::from_bytes(b"a=\xff\xfe").unwrap());
        join_cookie_fields(&mut garbled);
        assert!(garbled.get(COOKIE).is_none());
        garbled.append(COOKIE, HeaderValue::from_bytes(b"a=\xff").unwrap());
        garbled.append(COOKIE, HeaderValue::from_static("b=2"));
        join_cookie_fields(&mut garbled);
        assert_eq!(garbled.get(COOKIE).unwrap(), "b=2");

        // One field, one foreign UTF-8 pair: the session cookie beside it survives.
        let mut shared_domain = HeaderMap::new();
        shared_domain.append(
            COOKIE,
            HeaderValue::from_bytes("theme=bleu clair é; tachigo.session_token=tok".as_bytes())
                .unwrap(),
        );
        join_cookie_fields(&mut shared_domain);
        assert_eq!(
            from_headers(&shared_domain, "tachigo.session_token").as_deref(),
            Some("tok")
        );
    }

    #[test]
    fn reads_the_named_cookie_only() {
        let header = Some("a=1; tachigo_refresh=tok.en; b=2");
        assert_eq!(read(header, "tachigo_refresh").as_deref(), Some("tok.en"));
        assert_eq!(read(header, "tachigo"), None);
        assert_eq!(read(Some("tachigo_refresh="), "tachigo_refresh"), None);
        assert_eq!(read(None, "a"), None);
    }
}
