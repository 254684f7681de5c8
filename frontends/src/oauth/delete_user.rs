//! `POST /delete-user {password?, token?, callbackURL?}` (Better Auth's
//! `deleteUser`), for a live session cookie (401 `UNAUTHORIZED`, checked
//! first) from a trusted origin (403 `UNTRUSTED_ORIGIN`).
//!
//! Better Auth ships this disabled (404) unless configured; this product
//! offers it, with Better Auth's re-authentication rules made mandatory:
//!
//! - a user with a password must send it (400 `INVALID_PASSWORD` when missing
//!   or wrong; per-IP password attempts apply);
//! - a user without one (provider sign-in only) needs a fresh session, made
//!   less than a day ago (400 `SESSION_EXPIRED`: sign in again);
//! - a `password` from a user without one is 400 `CREDENTIAL_ACCOUNT_NOT_FOUND`;
//! - Better Auth's mailed deletion tokens are not issued here, so a `token`
//!   is 404 `INVALID_TOKEN`, as Better Auth answers an unknown one.
//!
//! Then every session of the user ends and the user, its address and linked
//! accounts are gone (the address can register again); the cookie is expired;
//! 200 `{success: true, message: "User deleted"}`. `callbackURL` is checked
//! by the callback URL rules but never followed, as in Better Auth.

use std::sync::Arc;

use http::header::SET_COOKIE;
use http::{HeaderMap, StatusCode};
use tachigo_engine::EngineError;
use warp::http::Response;
use warp::{Rejection, Reply};

use super::email_errors::{
    credential_account_not_found, invalid_password, invalid_token, session_expired,
};
use super::session_cookie::{self, Caller};
use super::wire::{DeleteUserBody, SuccessMessageJson};
use super::{password_rules, OAuth};
use crate::common::{ApiError, Body, RequestContext};

/// How recent a session must be to delete a user without a password (Better Auth's `freshAge`).
const FRESH_SESSION_MS: i64 = 24 * 3600 * 1000;

pub async fn handle(
    oauth: Arc<OAuth>,
    context: RequestContext,
    headers: HeaderMap,
    body: DeleteUserBody,
) -> Result<Response<Body>, Rejection> {
    delete(&oauth, &context, &headers, body)
        .await
        .map_err(ApiError::reject)
}

/// Whether the caller proved again who they are, as this user must.
async fn reauthenticate(
    oauth: &OAuth,
    context: &RequestContext,
    caller: &Caller,
    password: Option<&str>,
) -> Result<(), ApiError> {
    let user = &caller.read.user;
    let password_user = user.has_password.then_some(user.email.as_deref()).flatten();
    match (password_user, password) {
        (Some(email), Some(password)) => {
            password_rules::check_presented(password)?;
            oauth
                .email_limits
                .password_attempt("delete_user", context.client_ip, None)?;
            match oauth.engine.verify_password(email, password).await {
                Ok(verified) if verified.id == user.id => Ok(()),
                Ok(_) | Err(EngineError::InvalidCredentials) => Err(invalid_password()),
                Err(other) => Err(other.into()),
            }
        }
        (Some(_), None) => Err(ApiError::bad_request(
            "invalid_password",
            "Invalid password: the current password is required",
        )),
        (None, Some(_)) => Err(credential_account_not_found()),
        (None, None) => {
            let age = oauth.engine.now() - caller.read.session.created_at;
            if age < FRESH_SESSION_MS {
                Ok(())
            } else {
                Err(session_expired())
            }
        }
    }
}

async fn delete(
    oauth: &OAuth,
    context: &RequestContext,
    headers: &HeaderMap,
    body: DeleteUserBody,
) -> Result<Response<Body>, ApiError> {
    let caller =
        session_cookie::require_for_change(&oauth.engine, &oauth.trusted_origins, headers).await?;
    oauth
        .redirects
        .resolve("callbackURL", body.callback_url.as_deref())?;
    reauthenticate(oauth, context, &caller, body.password.as_deref()).await?;
    if body.token.is_some() {
        return Err(invalid_token(StatusCode::NOT_FOUND));
    }
    oauth.engine.delete_user(caller.user_id()).await?;
    tracing::info!(user_id = %caller.user_id(), "user deleted themselves");
    let reply = SuccessMessageJson {
        success: true,
        message: "User deleted",
    };
    Ok(warp::reply::with_header(
        warp::reply::json(&reply),
        SET_COOKIE,
        session_cookie::clear(&oauth.cookies),
    )
    .into_response())
}
