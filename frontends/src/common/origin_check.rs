//! The CSRF rule: a state-changing request authenticated by a cookie must come
//! from a trusted origin: its `Origin` header, or without one its `Referer`,
//! must name an origin in `server.trusted_origins`; otherwise 403 `untrusted_origin`.
//! Requests authenticated by a bearer or body token do not need it.

use std::collections::HashSet;

use http::HeaderMap;

use super::ApiError;

fn untrusted(message: &str) -> ApiError {
    ApiError::forbidden("untrusted_origin", message)
}

/// The origin (`scheme://host[:port]`) of a URL, as browsers serialise it.
pub fn origin_of(url: &str) -> Option<String> {
    let parsed = url::Url::parse(url).ok()?;
    match parsed.origin() {
        url::Origin::Tuple(..) => Some(parsed.origin().ascii_serialization()),
        url::Origin::Opaque(_) => None,
    }
}

/// Checks `Origin`, falling back to `Referer`, against the trusted set.
pub fn require_trusted_origin(
    headers: &HeaderMap,
    trusted: &HashSet<String>,
) -> Result<(), ApiError> {
    if let Some(origin) = headers.get(http::header::ORIGIN) {
        let origin = origin
            .to_str()
            .map_err(|_| untrusted("the Origin header is malformed"))?;
        return if trusted.contains(origin) {
            Ok(())
        } else {
            Err(untrusted("requests from this origin are not accepted"))
        };
    }
    if let Some(referer) = headers.get(http::header::REFERER) {
        let origin = referer.to_str().ok().and_then(origin_of);
        return match origin {
            Some(o) if trusted.contains(&o) => Ok(()),
            _ => Err(untrusted("requests from this page are not accepted")),
        };
    }
    Err(untrusted(
        "a cookie-authenticated change needs an Origin or Referer header from a trusted origin",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn origin_then_referer_then_refusal() {
        let trusted: HashSet<String> = ["http://localhost:3000".to_string()].into();
        assert!(
            require_trusted_origin(&headers(&[("origin", "http://localhost:3000")]), &trusted)
                .is_ok()
        );
        assert!(
            require_trusted_origin(&headers(&[("origin", "http://evil.example")]), &trusted)
                .is_err()
        );
        assert!(require_trusted_origin(&headers(&[("origin", "null")]), &trusted).is_err());
        assert!(require_trusted_origin(
            &headers(&[("referer", "http://localhost:3000/app?x=1")]),
            &trusted
        )
        .is_ok());
        assert!(require_trusted_origin(
            &headers(&[("referer", "http://localhost:3000.evil.example/")]),
            &trusted
        )
        .is_err());
        // An untrusted Origin is not rescued by a trusted Referer.
        assert!(require_trusted_origin(
            &headers(&[
                ("origin", "http://evil.example"),
                ("referer", "http://localhost:3000/")
            ]),
            &trusted
        )
        .is_err());
        let e = require_trusted_origin(&HeaderMap::new(), &trusted).unwrap_err();
        assert_eq!(e.code, "untrusted_origin");
        assert_eq!(e.status, 403);
    }
}
