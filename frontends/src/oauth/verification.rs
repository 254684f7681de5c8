//! Proving an address (Better Auth's email verification):
//!
//! - the mail's link, `{public_url}/api/auth/verify-email?token=…&callbackURL=…`
//!   (`callbackURL` as the app gave it, `/` when it gave none);
//! - `POST /send-verification-email {email, callbackURL?}` → `{status: true}`.
//!   Without a session it answers the same whether or not an unverified user
//!   has the address (the engine mails only then, no sooner than its answer
//!   floor); with a session cookie it is that user's change (CSRF origin
//!   check) for that user's own address: 400 `EMAIL_MISMATCH` for another,
//!   400 `EMAIL_ALREADY_VERIFIED` when done already;
//! - `GET /verify-email?token=…&callbackURL=…`: the link itself. The token is
//!   single use. Success: 302 to `callbackURL`, or 200 `{status: true, user:
//!   null}` without one; failure: 302 to `callbackURL?error=INVALID_TOKEN`
//!   (or `TOKEN_EXPIRED`, `USER_NOT_FOUND`), or that error as JSON (401)
//!   without one. An untrusted `callbackURL` is a JSON 403
//!   `INVALID_CALLBACK_URL`, never a redirect. No session is started.

use std::collections::HashMap;
use std::sync::Arc;

use http::{HeaderMap, StatusCode};
use tachigo_engine::{normalize_email, EngineError};
use warp::http::Response;
use warp::{Rejection, Reply};

use super::callback_urls::{redirect_to, with_error};
use super::email_errors::{
    email_already_verified, email_mismatch, invalid_email_address, invalid_token, token_expired,
    user_not_found,
};
use super::wire::{SendVerificationBody, StatusJson, VerifiedJson};
use super::{browser_origin, session_cookie, OAuth};
use crate::common::origin_check::require_trusted_origin;
use crate::common::{ApiError, Body, RequestContext};

/// The verification link for a mailed token; `callback` as the app gave it.
pub(crate) fn mail_link<'a>(
    oauth: &'a OAuth,
    callback: &'a str,
) -> impl Fn(&str) -> String + Sync + 'a {
    move |token: &str| {
        let callback = if callback.is_empty() { "/" } else { callback };
        let query: String = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("token", token)
            .append_pair("callbackURL", callback)
            .finish();
        format!("{}/verify-email?{query}", oauth.auth_base)
    }
}

pub async fn send(
    oauth: Arc<OAuth>,
    context: RequestContext,
    headers: HeaderMap,
    body: SendVerificationBody,
) -> Result<Response<Body>, Rejection> {
    send_mail(&oauth, &context, &headers, body)
        .await
        .map_err(ApiError::reject)
}

async fn send_mail(
    oauth: &OAuth,
    context: &RequestContext,
    headers: &HeaderMap,
    body: SendVerificationBody,
) -> Result<Response<Body>, ApiError> {
    oauth
        .redirects
        .resolve("callbackURL", body.callback_url.as_deref())?;
    let email = normalize_email(&body.email).map_err(|_| invalid_email_address())?;
    let callback = body.callback_url.as_deref().unwrap_or_default();
    let link = mail_link(oauth, callback);
    let caller =
        session_cookie::current(&oauth.engine, session_cookie::cookie_header(headers)).await?;
    match caller {
        Some(caller) => {
            require_trusted_origin(headers, &oauth.trusted_origins)?;
            let user = &caller.read.user;
            if user.email.as_deref() != Some(email.as_str()) {
                return Err(email_mismatch());
            }
            if user.email_verified {
                return Err(email_already_verified());
            }
            oauth
                .email_limits
                .mail_request("send_verification_email", context.client_ip)?;
            oauth
                .engine
                .send_verification_email(&user.id, &link)
                .await
                .map_err(|e| match e {
                    EngineError::EmailAlreadyVerified => email_already_verified(),
                    EngineError::NoEmail => email_mismatch(),
                    other => other.into(),
                })?;
        }
        None => {
            browser_origin::check(headers, &oauth.trusted_origins)?;
            oauth
                .email_limits
                .mail_request("send_verification_email", context.client_ip)?;
            oauth
                .engine
                .resend_verification_email(&email, &link)
                .await?;
        }
    }
    Ok(warp::reply::json(&StatusJson { status: true }).into_response())
}

pub async fn verify(oauth: Arc<OAuth>, raw_query: String) -> Result<Response<Body>, Rejection> {
    verify_link(&oauth, &raw_query)
        .await
        .map_err(ApiError::reject)
}

async fn verify_link(oauth: &OAuth, raw_query: &str) -> Result<Response<Body>, ApiError> {
    let params: HashMap<String, String> = url::form_urlencoded::parse(raw_query.as_bytes())
        .into_owned()
        .collect();
    let callback = oauth
        .redirects
        .resolve("callbackURL", params.get("callbackURL").map(String::as_str))?;
    let token = params.get("token").map(String::as_str).unwrap_or_default();
    let refused = match oauth.engine.verify_email(token).await {
        Ok(user) => {
            tracing::info!(user_id = %user.id, "email address verified");
            return Ok(match callback {
                Some(callback) => redirect_to(&callback, Vec::new()),
                None => warp::reply::json(&VerifiedJson {
                    status: true,
                    user: None,
                })
                .into_response(),
            });
        }
        Err(EngineError::InvalidToken) => invalid_token(StatusCode::UNAUTHORIZED),
        Err(EngineError::TokenExpired) => token_expired(StatusCode::UNAUTHORIZED),
        Err(EngineError::UserNotFound) => user_not_found(StatusCode::UNAUTHORIZED),
        Err(other) => return Err(other.into()),
    };
    match callback {
        Some(callback) => Ok(redirect_to(
            &with_error(&callback, &refused.code.to_ascii_uppercase()),
            Vec::new(),
        )),
        None => Err(refused),
    }
}
