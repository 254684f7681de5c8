//! Who is calling a bearer route (`/me`, `/sessions…`): a dashboard access token
//! whose signature, issuer, audience and expiry verify, *and* whose session is
//! still live. The second check is what makes a revocation (logout, "sign out
//! other sessions", reuse detection, an operator) end the session's access
//! tokens at once instead of when they expire.
//!
//! The signature check is memoised per token (`common::verified_tokens`): the
//! dashboard sends the same access token on every API call for its 15 minutes,
//! and Ed25519 verification is most of the cost of such a call. The session
//! check is never memoised.

use std::sync::Arc;

use http::header::{HeaderValue, WWW_AUTHENTICATE};
use http::HeaderMap;
use tachigo_engine::access_token::{AccessClaims, AUDIENCE_DASHBOARD};
use tachigo_engine::{Engine, EngineError};
use tachigo_engine::{Session, User};

use super::Dashboard;
use crate::common::bearer::{bearer_token, Bearer};
use crate::common::ApiError;

/// A verified caller and its live session.
pub struct Caller {
    pub user: User,
    pub session: Session,
}

fn unauthorized(code: &'static str, message: &'static str) -> ApiError {
    ApiError::unauthorized(code, message).with_header(
        WWW_AUTHENTICATE,
        HeaderValue::from_static(r#"Bearer error="invalid_token""#),
    )
}

/// 401 `invalid_access_token`: missing, malformed, forged, expired or for another audience.
pub fn invalid_access_token() -> ApiError {
    unauthorized(
        "invalid_access_token",
        "the access token is missing, invalid or expired",
    )
}

/// 401 `session_revoked`: the token is genuine but its session has ended.
pub fn session_revoked() -> ApiError {
    unauthorized("session_revoked", "this session has been signed out")
}

/// Authenticates the request's bearer token (signature checks memoised per token).
pub async fn authenticate(dashboard: &Dashboard, headers: &HeaderMap) -> Result<Caller, ApiError> {
    let engine = &dashboard.engine;
    authenticate_with(engine, headers, |token| {
        dashboard
            .verified_tokens
            .verify(token, engine.now() / 1000, || {
                engine.verify_access_token(token, AUDIENCE_DASHBOARD)
            })
    })
    .await
}

/// Authenticates a dashboard access token for routes outside this contract that
/// accept one (the admin API), without the memo.
pub async fn authenticate_bearer(engine: &Engine, headers: &HeaderMap) -> Result<Caller, ApiError> {
    authenticate_with(engine, headers, |token| {
        engine
            .verify_access_token(token, AUDIENCE_DASHBOARD)
            .map(Arc::new)
    })
    .await
}

async fn authenticate_with(
    engine: &Engine,
    headers: &HeaderMap,
    verify: impl FnOnce(&str) -> Result<Arc<AccessClaims>, EngineError>,
) -> Result<Caller, ApiError> {
    let Bearer::Token(token) = bearer_token(headers) else {
        return Err(invalid_access_token());
    };
    let claims = verify(token).map_err(|_| invalid_access_token())?;
    let session_id = claims.sid.as_deref().ok_or_else(invalid_access_token)?;
    let read = engine
        .live_session(&claims.sub, session_id)
        .await
        .map_err(|e| match e {
            EngineError::SessionInvalid => session_revoked(),
            other => other.into(),
        })?;
    Ok(Caller {
        user: read.user,
        session: read.session,
    })
}
