//! The web session cookie, `tachigo.session_token=<opaque>; HttpOnly; [Secure];
//! SameSite=Lax; Path=/; Max-Age=<session lifetime>[; Domain=…]`, and finding the
//! caller's session from it. The token is only ever in this cookie, never in a
//! JSON body.

use std::collections::HashSet;

use http::header::{COOKIE, SET_COOKIE};
use http::{HeaderMap, HeaderValue, StatusCode};
use tachigo_engine::Session;
use tachigo_engine::{Engine, EngineError, SessionRead};
use warp::http::Response;

use crate::common::cookies::{self, CookieSettings};
use crate::common::origin_check::require_trusted_origin;
use crate::common::{ApiError, Body};

pub const COOKIE_NAME: &str = "tachigo.session_token";
const COOKIE_PATH: &str = "/";

/// The context of a password session started with `rememberMe: false`: its
/// cookie never carries `Max-Age` (a browser-session cookie).
pub(crate) const BROWSER_SESSION_CONTEXT: &str = "credential (browser session)";

/// `Set-Cookie` for a session's token, living as long as the session's current
/// expiry (`session_ttl` after it was created or last slid, capped by the
/// absolute lifetime), or as long as the browser for a "don't remember me"
/// session.
pub(crate) fn set(settings: &CookieSettings, token: &str, session: &Session) -> HeaderValue {
    let max_age_secs = (session.expires_at - session.updated_at) / 1000;
    let cookie = settings.set(COOKIE_NAME, token, COOKIE_PATH, max_age_secs);
    if session.context.as_deref() == Some(BROWSER_SESSION_CONTEXT) {
        without_max_age(cookie)
    } else {
        cookie
    }
}

/// The same cookie without its lifetime: a browser-session cookie.
fn without_max_age(cookie: HeaderValue) -> HeaderValue {
    let Ok(text) = cookie.to_str() else {
        return cookie;
    };
    let kept: Vec<&str> = text
        .split("; ")
        .filter(|attribute| !attribute.starts_with("Max-Age="))
        .collect();
    HeaderValue::from_str(&kept.join("; ")).unwrap_or(cookie)
}

pub(crate) fn clear(settings: &CookieSettings) -> HeaderValue {
    settings.clear(COOKIE_NAME, COOKIE_PATH)
}

/// The session token the request carries, if any.
pub(crate) fn token(cookie_header: Option<&str>) -> Option<String> {
    cookies::read(cookie_header, COOKIE_NAME)
}

/// [`token`], borrowed from the header.
pub(crate) fn token_borrowed(cookie_header: Option<&str>) -> Option<&str> {
    cookies::read_borrowed(cookie_header, COOKIE_NAME)
}

/// The signed-in caller: the session read and the token that proved it.
pub(crate) struct Caller {
    pub read: SessionRead,
    pub token: String,
}

impl Caller {
    pub(crate) fn user_id(&self) -> &str {
        &self.read.user.id
    }

    pub(crate) fn session_id(&self) -> &str {
        &self.read.session.id
    }

    /// Re-sets the cookie on `response` when this read slid the session's expiry.
    pub(crate) fn refresh_cookie(&self, settings: &CookieSettings, response: &mut Response<Body>) {
        if self.read.renewed {
            response
                .headers_mut()
                .append(SET_COOKIE, set(settings, &self.token, &self.read.session));
        }
    }
}

/// The caller's live session, `Ok(None)` without a cookie or with one that no
/// longer names a live session.
pub(crate) async fn current(
    engine: &Engine,
    cookie_header: Option<&str>,
) -> Result<Option<Caller>, ApiError> {
    lookup(engine, token(cookie_header)).await
}

/// The live session of a presented token, if any.
pub(crate) async fn lookup(
    engine: &Engine,
    token: Option<String>,
) -> Result<Option<Caller>, ApiError> {
    let Some(token) = token else {
        return Ok(None);
    };
    match engine.session_by_token(&token).await {
        Ok(read) => Ok(Some(Caller { read, token })),
        Err(EngineError::SessionInvalid) => Ok(None),
        Err(other) => Err(other.into()),
    }
}

/// The caller's live session, or 401 `UNAUTHORIZED`.
pub(crate) async fn require(
    engine: &Engine,
    cookie_header: Option<&str>,
) -> Result<Caller, ApiError> {
    current(engine, cookie_header).await?.ok_or_else(|| {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "sign in first: no valid session cookie",
        )
    })
}

/// The `Cookie` header of a request, when it is readable text.
pub(crate) fn cookie_header(headers: &HeaderMap) -> Option<&str> {
    headers.get(COOKIE).and_then(|v| v.to_str().ok())
}

/// For a cookie-authenticated change: the CSRF origin check, then the
/// caller's live session (or 401 `UNAUTHORIZED`).
pub(crate) async fn require_for_change(
    engine: &Engine,
    trusted_origins: &HashSet<String>,
    headers: &HeaderMap,
) -> Result<Caller, ApiError> {
    require_trusted_origin(headers, trusted_origins)?;
    require(engine, cookie_header(headers)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_cookie_keeps_every_attribute_but_its_lifetime() {
        let cookie = HeaderValue::from_static(
            "tachigo.session_token=abc; HttpOnly; Secure; SameSite=Lax; Path=/; Max-Age=604800; Domain=.example.com",
        );
        assert_eq!(
            without_max_age(cookie),
            "tachigo.session_token=abc; HttpOnly; Secure; SameSite=Lax; Path=/; Domain=.example.com"
        );
    }
}
