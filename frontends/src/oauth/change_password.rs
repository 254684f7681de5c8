//! `POST /change-password {newPassword, currentPassword, revokeOtherSessions?}`
//! (Better Auth's `changePassword`), for a live session cookie (401
//! `UNAUTHORIZED`) from a trusted origin (403 `UNTRUSTED_ORIGIN`).
//!
//! In order: the new password's length (400 `PASSWORD_TOO_SHORT` /
//! `PASSWORD_TOO_LONG`), a user without a password (400
//! `CREDENTIAL_ACCOUNT_NOT_FOUND`: a reset sets a first one), the client's
//! allowance (429), a wrong current password (400 `INVALID_PASSWORD`, as
//! Better Auth), the engine's policy (400 `WEAK_PASSWORD`).
//!
//! Without `revokeOtherSessions`: 200 `{token: null, user}`, every session kept.
//! With it, as Better Auth: every other session ends and the caller's own is
//! replaced by a new one — 200 `{token: <new session id>, user}` and a new
//! session cookie — so whatever copied the old cookie is out too.

use std::sync::Arc;

use http::header::SET_COOKIE;
use http::HeaderMap;
use tachigo_engine::{EngineError, RevokeScope};
use warp::http::Response;
use warp::{Rejection, Reply};

use super::email_errors::{credential_account_not_found, from_password_policy, invalid_password};
use super::wire::{ChangePasswordBody, TokenAndUser, UserJson};
use super::{password_rules, session_cookie, web_session, OAuth};
use crate::common::{ApiError, Body, RequestContext};

pub async fn handle(
    oauth: Arc<OAuth>,
    context: RequestContext,
    headers: HeaderMap,
    body: ChangePasswordBody,
) -> Result<Response<Body>, Rejection> {
    change(&oauth, &context, &headers, body)
        .await
        .map_err(ApiError::reject)
}

async fn change(
    oauth: &OAuth,
    context: &RequestContext,
    headers: &HeaderMap,
    body: ChangePasswordBody,
) -> Result<Response<Body>, ApiError> {
    let caller =
        session_cookie::require_for_change(&oauth.engine, &oauth.trusted_origins, headers).await?;
    password_rules::check_new(&body.new_password)?;
    password_rules::check_presented(&body.current_password)?;
    if !caller.read.user.has_password {
        return Err(credential_account_not_found());
    }
    oauth
        .email_limits
        .password_attempt("change_password", context.client_ip, None)?;
    let renew = body.revoke_other_sessions == Some(true);
    let engine = &oauth.engine;
    let user = engine
        .change_password(
            caller.user_id(),
            &body.current_password,
            &body.new_password,
            renew.then(|| caller.session_id()),
        )
        .await
        .map_err(|e| match e {
            EngineError::InvalidCredentials => invalid_password(),
            other => from_password_policy(other),
        })?;
    tracing::info!(user_id = %user.id, revoke_other_sessions = renew, "password changed");
    if !renew {
        let reply = TokenAndUser {
            token: None,
            user: UserJson::from_record(&user),
        };
        let mut response = warp::reply::json(&reply).into_response();
        caller.refresh_cookie(&oauth.cookies, &mut response);
        return Ok(response);
    }
    // The successor first: whatever fails after it, the user stays signed in.
    let started = web_session::start(oauth, &user.id, context, true).await?;
    match engine
        .revoke_sessions(&user.id, RevokeScope::One(caller.session_id().to_string()))
        .await
    {
        // Ended concurrently by another request: the outcome is the same.
        Ok(_) | Err(EngineError::SessionNotFound) => {}
        Err(other) => return Err(other.into()),
    }
    let reply = TokenAndUser {
        token: Some(&started.session.id),
        user: UserJson::from_record(&user),
    };
    Ok(
        warp::reply::with_header(warp::reply::json(&reply), SET_COOKIE, started.cookie)
            .into_response(),
    )
}
