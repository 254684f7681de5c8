//! Reading `Authorization: Bearer <token>`. The scheme is matched without regard
//! to case (RFC 9110); a header that is present but not a usable bearer token is
//! reported as such, so a handler never silently falls back to another source.

use http::header::AUTHORIZATION;
use http::HeaderMap;

/// What the `Authorization` header holds.
#[derive(Debug, PartialEq, Eq)]
pub enum Bearer<'a> {
    Absent,
    Token(&'a str),
    /// Another scheme, an empty token, or bytes that are not visible ASCII.
    Malformed,
}

pub fn bearer_token(headers: &HeaderMap) -> Bearer<'_> {
    let Some(value) = headers.get(AUTHORIZATION) else {
        return Bearer::Absent;
    };
    let Ok(value) = value.to_str() else {
        return Bearer::Malformed;
    };
    match value.trim().split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => {
            let token = token.trim();
            if token.is_empty() || token.contains(' ') {
                Bearer::Malformed
            } else {
                Bearer::Token(token)
            }
        }
        _ => Bearer::Malformed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(value: &'static str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, value.parse().unwrap());
        headers
    }

    #[test]
    fn reads_bearer_tokens_only() {
        assert_eq!(bearer_token(&HeaderMap::new()), Bearer::Absent);
        assert_eq!(bearer_token(&with("Bearer a.b.c")), Bearer::Token("a.b.c"));
        assert_eq!(
            bearer_token(&with("bearer  a.b.c ")),
            Bearer::Token("a.b.c")
        );
        assert_eq!(bearer_token(&with("Basic dXNlcjpwYXNz")), Bearer::Malformed);
        assert_eq!(bearer_token(&with("Bearer")), Bearer::Malformed);
        assert_eq!(bearer_token(&with("Bearer a b")), Bearer::Malformed);
    }
}
