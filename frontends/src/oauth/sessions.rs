//! The caller's sessions, for a live session cookie (else 401 `UNAUTHORIZED`):
//!
//! - `GET /list-sessions`: every live session of the user on every surface
//!   (web, dashboard, extension), newest first, in Better Auth's session shape
//!   plus `surface`, `current` and `token`, which is the session's id (a
//!   revocation handle for Better Auth's `revokeSession({token})`, never the
//!   session's secret);
//! - `POST /revoke-session {id}`: ends one of them (`{status: true}`; 404
//!   `SESSION_NOT_FOUND` for an id that is not one of the caller's live
//!   sessions). Better Auth's client sends `{token}`: that field is accepted
//!   too, holding either a listed id or a session token;
//! - `POST /revoke-sessions`: ends all of them, this one included;
//! - `POST /revoke-other-sessions`: ends all but this one.
//!
//! The changes are cookie-authenticated, so they pass the CSRF origin check
//! first. An ended session is gone for `get-session` at once (the user's actor
//! is the only place sessions are read from). Ending the caller's own session
//! also expires its cookie.

use std::sync::Arc;

use http::header::SET_COOKIE;
use http::HeaderMap;
use serde::de::IgnoredAny;
use tachigo_engine::opaque_token::{self, is_session_id};
use tachigo_engine::RevokeScope;
use warp::http::Response;
use warp::{Rejection, Reply};

use super::session_cookie::{self, Caller};
use super::wire::{ListedSession, RevokeSessionBody, StatusJson};
use super::OAuth;
use crate::common::{ApiError, Body};

fn status_reply(oauth: &OAuth, caller: &Caller, ended_own: bool) -> Response<Body> {
    let mut response = warp::reply::json(&StatusJson { status: true }).into_response();
    if ended_own {
        response
            .headers_mut()
            .append(SET_COOKIE, session_cookie::clear(&oauth.cookies));
    } else {
        caller.refresh_cookie(&oauth.cookies, &mut response);
    }
    response
}

pub async fn list(
    oauth: Arc<OAuth>,
    cookie_header: Option<String>,
) -> Result<Response<Body>, Rejection> {
    let caller = session_cookie::require(&oauth.engine, cookie_header.as_deref())
        .await
        .map_err(ApiError::reject)?;
    let sessions = oauth
        .engine
        .list_sessions(caller.user_id())
        .await
        .map_err(|e| ApiError::from(e).reject())?;
    let listed: Vec<ListedSession> = sessions
        .iter()
        .map(|info| ListedSession::new(info, caller.user_id(), caller.session_id()))
        .collect();
    let mut response = warp::reply::json(&listed).into_response();
    caller.refresh_cookie(&oauth.cookies, &mut response);
    Ok(response)
}

/// The session a revoke body names: `id`, or `token` as an id or a session token.
fn target_session_id(body: &RevokeSessionBody) -> Option<String> {
    if let Some(id) = &body.id {
        return Some(id.clone());
    }
    let token = body.token.as_deref()?;
    if is_session_id(token) {
        return Some(token.to_string());
    }
    opaque_token::parse(token).map(|parsed| parsed.session_id.to_string())
}

pub async fn revoke_one(
    oauth: Arc<OAuth>,
    headers: HeaderMap,
    body: RevokeSessionBody,
) -> Result<Response<Body>, Rejection> {
    let caller =
        session_cookie::require_for_change(&oauth.engine, &oauth.trusted_origins, &headers)
            .await
            .map_err(ApiError::reject)?;
    let Some(target) = target_session_id(&body) else {
        return Err(ApiError::bad_request(
            "invalid_body",
            "name the session to end with `id` (or `token`)",
        )
        .reject());
    };
    let ended_own = target == caller.session_id();
    oauth
        .engine
        .revoke_sessions(caller.user_id(), RevokeScope::One(target))
        .await
        .map_err(|e| ApiError::from(e).reject())?;
    Ok(status_reply(&oauth, &caller, ended_own))
}

pub async fn revoke_all(
    oauth: Arc<OAuth>,
    headers: HeaderMap,
    _body: IgnoredAny,
) -> Result<Response<Body>, Rejection> {
    revoke_many(&oauth, &headers, |_| RevokeScope::All, true).await
}

pub async fn revoke_others(
    oauth: Arc<OAuth>,
    headers: HeaderMap,
    _body: IgnoredAny,
) -> Result<Response<Body>, Rejection> {
    revoke_many(
        &oauth,
        &headers,
        |caller| RevokeScope::AllExcept(caller.session_id().to_string()),
        false,
    )
    .await
}

/// Ends the caller's sessions in `scope`; `ends_own` says whether the
/// caller's own session is among them (its cookie is then expired).
async fn revoke_many(
    oauth: &OAuth,
    headers: &HeaderMap,
    scope: impl FnOnce(&Caller) -> RevokeScope,
    ends_own: bool,
) -> Result<Response<Body>, Rejection> {
    let caller = session_cookie::require_for_change(&oauth.engine, &oauth.trusted_origins, headers)
        .await
        .map_err(ApiError::reject)?;
    oauth
        .engine
        .revoke_sessions(caller.user_id(), scope(&caller))
        .await
        .map_err(|e| ApiError::from(e).reject())?;
    Ok(status_reply(oauth, &caller, ends_own))
}
