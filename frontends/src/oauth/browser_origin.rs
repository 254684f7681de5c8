//! The CSRF rule of the email/password POSTs no session authenticates
//! (`sign-up/email`, `sign-in/email`, `request-password-reset`,
//! `reset-password`, and `send-verification-email` without a session), as
//! Better Auth applies it: a request that shows it comes from a browser — an
//! `Origin`, `Referer` or `Sec-Fetch-Site` header, or any cookie — must come
//! from a trusted origin (403 `UNTRUSTED_ORIGIN`, the module's existing
//! answer), so no other site can sign a visitor in to an account of its
//! choosing (login CSRF). A server-side caller (no cookie, no such header) is
//! not a browser and passes. Cookie-authenticated changes use the stricter
//! [`session_cookie::require_for_change`](super::session_cookie::require_for_change).

use std::collections::HashSet;

use http::header::{COOKIE, ORIGIN, REFERER};
use http::HeaderMap;

use crate::common::origin_check::require_trusted_origin;
use crate::common::ApiError;

pub(crate) fn check(headers: &HeaderMap, trusted: &HashSet<String>) -> Result<(), ApiError> {
    let from_browser = [
        ORIGIN.as_str(),
        REFERER.as_str(),
        COOKIE.as_str(),
        "sec-fetch-site",
    ]
    .iter()
    .any(|name| headers.contains_key(*name));
    if from_browser {
        require_trusted_origin(headers, trusted)
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| (http::HeaderName::from_static(k), v.parse().unwrap()))
            .collect()
    }

    #[test]
    fn browsers_need_a_trusted_origin_and_servers_pass() {
        let trusted: HashSet<String> = ["http://localhost:3000".to_string()].into();
        assert!(check(&HeaderMap::new(), &trusted).is_ok());
        assert!(check(&headers(&[("origin", "http://localhost:3000")]), &trusted).is_ok());
        for refused in [
            headers(&[("origin", "https://evil.example")]),
            headers(&[("origin", "null")]),
            headers(&[("cookie", "a=b")]),
            headers(&[("sec-fetch-site", "cross-site")]),
            headers(&[("referer", "https://evil.example/page")]),
        ] {
            let e = check(&refused, &trusted).unwrap_err();
            assert_eq!((e.status.as_u16(), e.code), (403, "untrusted_origin"));
        }
    }
}
