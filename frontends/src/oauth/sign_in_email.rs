//! `POST /sign-in/email {email, password, callbackURL?, rememberMe?}` (Better
//! Auth's `signIn.email`): a web session for the right password, 200
//! `{redirect, token, url?, user}` with the session cookie. With a
//! `callbackURL` (checked by the callback URL rules, resolved to an absolute
//! URL) the answer also carries `Location` — still a 200, as Better Auth —
//! and `redirect: true, url`, which the client's redirect plugin follows.
//!
//! Unknown address, wrong password, a user without a password: the same 401
//! `INVALID_EMAIL_OR_PASSWORD` after the same argon2 work. A malformed address
//! is 400 `INVALID_EMAIL`. Attempts are limited per IP and per account
//! ([`super::email_limits`]) before any hashing. An unverified address may
//! sign in (Better Auth's default: verification is not required).

use std::sync::Arc;

use http::header::{LOCATION, SET_COOKIE};
use http::{HeaderMap, HeaderValue};
use tachigo_engine::{normalize_email, EngineError};
use warp::http::Response;
use warp::{Rejection, Reply};

use super::email_errors::{invalid_email, invalid_email_or_password};
use super::wire::{SignInEmailBody, SignInEmailReply, UserJson};
use super::{browser_origin, password_rules, web_session, OAuth};
use crate::common::log_sampling::LogSampler;
use crate::common::{ApiError, Body, RequestContext};

fn count(outcome: &'static str) {
    metrics::counter!("tachigo_oauth_email_sign_ins_total", "outcome" => outcome).increment(1);
}

pub async fn handle(
    oauth: Arc<OAuth>,
    context: RequestContext,
    headers: HeaderMap,
    body: SignInEmailBody,
) -> Result<Response<Body>, Rejection> {
    sign_in(&oauth, &context, &headers, body)
        .await
        .map_err(ApiError::reject)
}

async fn sign_in(
    oauth: &OAuth,
    context: &RequestContext,
    headers: &HeaderMap,
    body: SignInEmailBody,
) -> Result<Response<Body>, ApiError> {
    browser_origin::check(headers, &oauth.trusted_origins)?;
    let callback = oauth
        .redirects
        .resolve("callbackURL", body.callback_url.as_deref())?;
    normalize_email(&body.email).map_err(|_| invalid_email())?;
    password_rules::check_presented(&body.password)?;
    oauth
        .email_limits
        .password_attempt("sign_in", context.client_ip, Some(&body.email))
        .inspect_err(|_| count("rate_limited"))?;
    let user = oauth
        .engine
        .verify_password(&body.email, &body.password)
        .await
        .map_err(|e| match e {
            EngineError::InvalidCredentials => {
                count("invalid_credentials");
                static REFUSED_LOG: LogSampler = LogSampler::every_secs(10);
                if let Some(skipped) = REFUSED_LOG.admit() {
                    tracing::info!(client_ip = %context.client_ip, refusals_not_logged = skipped, "email sign-in refused: invalid credentials");
                }
                invalid_email_or_password()
            }
            other => other.into(),
        })?;
    let started =
        web_session::start(oauth, &user.id, context, body.remember_me != Some(false)).await?;
    count("success");
    tracing::info!(user_id = %user.id, session_id = %started.session.id, "signed in with email and password");
    let reply = SignInEmailReply {
        redirect: callback.is_some(),
        token: &started.session.id,
        url: callback.as_deref(),
        user: UserJson::from_record(&user),
    };
    let mut response = warp::reply::json(&reply).into_response();
    let headers = response.headers_mut();
    headers.append(SET_COOKIE, started.cookie);
    if let Some(location) = callback
        .as_deref()
        .and_then(|c| HeaderValue::from_str(c).ok())
    {
        headers.insert(LOCATION, location);
    }
    Ok(response)
}
