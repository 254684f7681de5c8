//! The refresh token a request presents, and the cookie the backend keeps it in.
//!
//! `tachigo_refresh=<opaque>; HttpOnly; [Secure]; SameSite=Lax; Path=/api/v1/auth;
//! Max-Age=<refresh idle ttl>[; Domain=<cookies.domain>]`: the browser sends it
//! only to this contract's routes and scripts never see it.
//!
//! `/refresh` and `/logout` take the token from the cookie when there is one.
//! A cookie is sent by the browser on its own, so a cookie-authenticated call
//! must come from a trusted `Origin`/`Referer` (CSRF). Without a cookie, the body
//! `{refresh_token}` is the transition fallback for clients not yet on cookies:
//! accepted only while `dashboard.refresh_body_fallback` is on, and every use is
//! counted (`tachigo_dashboard_refresh_body_fallback_total{endpoint}`) and logged
//! at info with the user agent (at most one line per 10 s, with the number of
//! uses in between, as anyone can send a body), so operators can see when the
//! last such client is gone. A body token is not ambient, so it needs no origin check.

use http::header::HeaderValue;
use http::{HeaderMap, StatusCode};

use super::wire::RefreshBody;
use super::Dashboard;
use crate::common::cookies;
use crate::common::log_sampling::LogSampler;
use crate::common::origin_check::require_trusted_origin;
use crate::common::{ApiError, RequestContext};

pub const COOKIE_NAME: &str = "tachigo_refresh";
pub const COOKIE_PATH: &str = "/api/v1/auth";

/// Where a presented refresh token came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Cookie,
    Body,
}

/// A refresh token as presented, not yet judged.
pub struct PresentedToken {
    pub token: String,
    pub source: Source,
}

/// 400 `refresh_cookie_required`: a body token while the fallback is off.
fn refresh_cookie_required() -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "refresh_cookie_required",
        "the refresh token must be sent in its cookie; the body fallback is turned off",
    )
}

/// The refresh cookie's value (the dispatcher has joined every `Cookie` field).
fn cookie_token(headers: &HeaderMap) -> Option<String> {
    cookies::from_headers(headers, COOKIE_NAME)
}

impl Dashboard {
    /// `Set-Cookie` holding `token`, living `max_age_secs`.
    pub fn refresh_cookie(&self, token: &str, max_age_secs: i64) -> HeaderValue {
        self.cookies
            .set(COOKIE_NAME, token, COOKIE_PATH, max_age_secs)
    }

    /// `Set-Cookie` that drops the refresh cookie (`Max-Age=0`).
    pub fn cleared_refresh_cookie(&self) -> HeaderValue {
        self.cookies.clear(COOKIE_NAME, COOKIE_PATH)
    }

    /// The request's refresh token: the cookie (after the CSRF check), else the
    /// body fallback (when enabled; counted and logged). `Ok(None)`: neither.
    pub fn presented_token(
        &self,
        headers: &HeaderMap,
        context: &RequestContext,
        body: Option<RefreshBody>,
        endpoint: &'static str,
    ) -> Result<Option<PresentedToken>, ApiError> {
        if let Some(token) = cookie_token(headers) {
            require_trusted_origin(headers, &self.trusted_origins)?;
            return Ok(Some(PresentedToken {
                token,
                source: Source::Cookie,
            }));
        }
        let Some(token) = body
            .and_then(|b| b.refresh_token)
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
        else {
            return Ok(None);
        };
        if !self.refresh_body_fallback {
            return Err(refresh_cookie_required());
        }
        metrics::counter!("tachigo_dashboard_refresh_body_fallback_total", "endpoint" => endpoint)
            .increment(1);
        static FALLBACK_LOG: LogSampler = LogSampler::every_secs(10);
        if let Some(skipped) = FALLBACK_LOG.admit() {
            tracing::info!(
                endpoint,
                user_agent = context.user_agent().as_deref().unwrap_or("-"),
                client_ip = %context.client_ip,
                uses_not_logged = skipped,
                "refresh token sent in the request body (transition fallback)"
            );
        }
        Ok(Some(PresentedToken {
            token,
            source: Source::Body,
        }))
    }
}
