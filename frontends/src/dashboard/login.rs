//! `POST /api/v1/auth/login`: email and password in; an access token, the user
//! and the refresh cookie of a new dashboard session (a new refresh family) out.
//!
//! Unknown email, wrong password, a user without a password, an unparseable
//! email: all get the same 401 `invalid_credentials` after the same argon2id
//! work (the engine verifies unknown emails against a dummy hash). Attempts are
//! rate limited per IP and per account before any of that work ([`super::login_limits`]).

use std::sync::Arc;

use http::header::SET_COOKIE;
use tachigo_engine::{EngineError, NewSession, Surface};
use warp::http::Response;
use warp::{Rejection, Reply};

use super::session_tokens::TOKEN_TYPE;
use super::wire::{LoginBody, LoginReply};
use super::Dashboard;
use crate::common::log_sampling::LogSampler;
use crate::common::{ApiError, Body, RequestContext};

fn count(outcome: &'static str) {
    metrics::counter!("tachigo_dashboard_logins_total", "outcome" => outcome).increment(1);
}

pub async fn handle(
    dashboard: Arc<Dashboard>,
    context: RequestContext,
    body: LoginBody,
) -> Result<Response<Body>, Rejection> {
    login(&dashboard, &context, body)
        .await
        .map_err(ApiError::reject)
}

async fn login(
    dashboard: &Dashboard,
    context: &RequestContext,
    body: LoginBody,
) -> Result<Response<Body>, ApiError> {
    dashboard
        .limits
        .admit(context.client_ip, Some(&body.email))
        .inspect_err(|_| count("rate_limited"))?;
    let engine = &dashboard.engine;
    let user = engine
        .verify_password(&body.email, &body.password)
        .await
        .map_err(|e| match e {
            EngineError::InvalidCredentials => {
                count("invalid_credentials");
                static REFUSED_LOG: LogSampler = LogSampler::every_secs(10);
                if let Some(skipped) = REFUSED_LOG.admit() {
                    tracing::info!(client_ip = %context.client_ip, refusals_not_logged = skipped, "dashboard login refused: invalid credentials");
                }
                ApiError::unauthorized("invalid_credentials", "invalid email or password")
            }
            other => other.into(),
        })?;
    let started = engine
        .create_session(
            &user.id,
            NewSession {
                surface: Surface::Dashboard,
                user_agent: context.user_agent(),
                ip: Some(context.client_ip.to_string()),
                context: None,
            },
        )
        .await?;
    let refresh_token = started.token.ok_or_else(|| {
        tracing::error!("the engine made a dashboard session without a refresh token");
        ApiError::internal()
    })?;
    count("success");
    tracing::info!(user_id = %started.user.id, session_id = %started.session.id, "dashboard login");
    let access = dashboard.access_token(&started.user, &started.session);
    let cookie = dashboard.refresh_cookie(
        &refresh_token,
        dashboard.refresh_cookie_max_age(&started.session),
    );
    let reply = LoginReply {
        access_token: access.token,
        token_type: TOKEN_TYPE,
        expires_in: access.expires_in,
        user: started.user.into(),
    };
    Ok(warp::reply::with_header(warp::reply::json(&reply), SET_COOKIE, cookie).into_response())
}
