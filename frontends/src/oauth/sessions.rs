//! The caller's sessions, for a live session cookie (else 401 `UNAUTHORIZED`):
//!
//! - `GET /list-sessions`: every live session of the user on every surface
//!   (web, dashboard, extension), newest first, in Better Auth's session shape
//!   plus `surface` and `current`; no token is ever listed;
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

use http::header::{COOKIE, SET_COOKIE};
use http::HeaderMap;
use serde::de::IgnoredAny;
use tachigo_engine::opaque_token::{self, is_session_id};
use tachigo_engine::{EngineError, RevokeScope};
use warp::http::Response;
use warp::hyper::Body;
use warp::{Rejection, Reply};

use super::session_cookie::{self, Caller};
use super::wire::{ListedSession, RevokeSessionBody, StatusJson};
use super::OAuth;
use crate::common::origin_check::require_trusted_origin;
use crate::common::ApiError;

fn cookie_of(headers: &HeaderMap) -> Option<&str> {
    headers.get(COOKIE).and_then(|v| v.to_str().ok())
}

/// The origin check, then the caller's session.
async fn changing_caller(oauth: &OAuth, headers: &HeaderMap) -> Result<Caller, ApiError> {
    require_trusted_origin(headers, &oauth.trusted_origins)?;
    session_cookie::require(&oauth.engine, cookie_of(headers)).await
}

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
    let mut sessions = oauth
        .engine
        .list_sessions(caller.user_id())
        .await
        .map_err(|e| ApiError::from(e).reject())?;
    sessions.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(a.id.cmp(&b.id)));
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
    opaque_token::parse(token).map(|parsed| parsed.session_id)
}

pub async fn revoke_one(
    oauth: Arc<OAuth>,
    headers: HeaderMap,
    body: RevokeSessionBody,
) -> Result<Response<Body>, Rejection> {
    let caller = changing_caller(&oauth, &headers)
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
        .map_err(|e| match e {
            EngineError::SessionNotFound => {
                ApiError::not_found("session_not_found", "no such session")
            }
            other => other.into(),
        })
        .map_err(ApiError::reject)?;
    Ok(status_reply(&oauth, &caller, ended_own))
}

pub async fn revoke_all(
    oauth: Arc<OAuth>,
    headers: HeaderMap,
    _body: IgnoredAny,
) -> Result<Response<Body>, Rejection> {
    let caller = changing_caller(&oauth, &headers)
        .await
        .map_err(ApiError::reject)?;
    oauth
        .engine
        .revoke_sessions(caller.user_id(), RevokeScope::All)
        .await
        .map_err(|e| ApiError::from(e).reject())?;
    Ok(status_reply(&oauth, &caller, true))
}

pub async fn revoke_others(
    oauth: Arc<OAuth>,
    headers: HeaderMap,
    _body: IgnoredAny,
) -> Result<Response<Body>, Rejection> {
    let caller = changing_caller(&oauth, &headers)
        .await
        .map_err(ApiError::reject)?;
    oauth
        .engine
        .revoke_sessions(
            caller.user_id(),
            RevokeScope::AllExcept(caller.session_id().to_string()),
        )
        .await
        .map_err(|e| ApiError::from(e).reject())?;
    Ok(status_reply(&oauth, &caller, false))
}
