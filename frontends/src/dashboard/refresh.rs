//! `POST /api/v1/auth/refresh`: the refresh token (cookie, or the body fallback)
//! in; a new access token and the successor refresh token out. This is also how
//! the dashboard restores its session on a page reload.
//!
//! Rotation, the grace rule and reuse detection are the engine's (one actor per
//! user serialises them): the current token rotates; its immediate predecessor
//! presented again within `tokens.refresh_grace` gets the same successor (two
//! tabs, a lost response); any other retired token revokes the whole family.
//!
//! Every 4xx this handler decides (401 `no_refresh_token`,
//! 401 `invalid_refresh_token`, 401 `refresh_token_reused`,
//! 400 `refresh_cookie_required`) also clears the cookie, so a dead cookie is not
//! sent again. Two failures leave it alone: 403 `untrusted_origin` (a cross-site
//! request must not be able to sign the user out) and a 5xx (the token may
//! still be good; the client should retry).

use std::sync::Arc;

use http::header::SET_COOKIE;
use http::HeaderMap;
use tachigo_engine::EngineError;
use warp::http::Response;
use warp::{Rejection, Reply};

use super::refresh_cookie::Source;
use super::session_tokens::TOKEN_TYPE;
use super::wire::{RefreshBody, RefreshReply};
use super::Dashboard;
use crate::common::{ApiError, Body, RequestContext};

fn count(outcome: &'static str) {
    metrics::counter!("tachigo_dashboard_refreshes_total", "outcome" => outcome).increment(1);
}

fn no_refresh_token() -> ApiError {
    ApiError::unauthorized("no_refresh_token", "no refresh token was presented")
}

fn invalid_refresh_token() -> ApiError {
    ApiError::unauthorized(
        "invalid_refresh_token",
        "the refresh token is unknown, expired or revoked; sign in again",
    )
}

fn refresh_token_reused() -> ApiError {
    ApiError::unauthorized(
        "refresh_token_reused",
        "the refresh token was already used; the session has been revoked, sign in again",
    )
}

pub async fn handle(
    dashboard: Arc<Dashboard>,
    context: RequestContext,
    headers: HeaderMap,
    body: Option<RefreshBody>,
) -> Result<Response<Body>, Rejection> {
    refresh(&dashboard, &context, &headers, body)
        .await
        .map_err(|e| {
            let e = if e.status.is_client_error() && e.code != "untrusted_origin" {
                e.with_header(SET_COOKIE, dashboard.cleared_refresh_cookie())
            } else {
                e
            };
            e.reject()
        })
}

async fn refresh(
    dashboard: &Dashboard,
    context: &RequestContext,
    headers: &HeaderMap,
    body: Option<RefreshBody>,
) -> Result<Response<Body>, ApiError> {
    let presented = dashboard
        .presented_token(headers, context, body, "refresh")?
        .ok_or_else(|| {
            count("no_token");
            no_refresh_token()
        })?;
    let rotated = dashboard
        .engine
        .rotate_refresh_token(&presented.token)
        .await
        .map_err(|e| match e {
            EngineError::InvalidRefreshToken => {
                count("invalid");
                invalid_refresh_token()
            }
            EngineError::RefreshTokenReused => {
                count("reused");
                refresh_token_reused()
            }
            other => other.into(),
        })?;
    count(if rotated.grace { "grace" } else { "rotated" });
    let access = dashboard.access_token(&rotated.user, &rotated.session);
    let cookie = dashboard.refresh_cookie(
        &rotated.refresh_token,
        dashboard.refresh_cookie_max_age(&rotated.session),
    );
    let reply = RefreshReply {
        access_token: access.token,
        token_type: TOKEN_TYPE,
        expires_in: access.expires_in,
        refresh_token: (presented.source == Source::Body).then_some(rotated.refresh_token),
    };
    Ok(warp::reply::with_header(warp::reply::json(&reply), SET_COOKIE, cookie).into_response())
}
