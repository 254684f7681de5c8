//! `POST /api/v1/auth/logout`: ends the session of the presented refresh token
//! (cookie, or the body fallback) by revoking its refresh family, and clears the
//! cookie. Always 204: without a token, or with an unknown, expired or already
//! revoked one, there is nothing left to end, and the answer must not tell a
//! caller which tokens exist.
//!
//! A cookie logout needs a trusted `Origin`/`Referer` (403 `untrusted_origin`,
//! nothing revoked, cookie kept); a body token while the fallback is off gets
//! 400 `refresh_cookie_required`, as on `/refresh`.

use std::sync::Arc;

use http::header::SET_COOKIE;
use http::{HeaderMap, StatusCode};
use warp::http::Response;
use warp::{Rejection, Reply};

use super::wire::RefreshBody;
use super::Dashboard;
use crate::common::{ApiError, Body, RequestContext};

pub async fn handle(
    dashboard: Arc<Dashboard>,
    context: RequestContext,
    headers: HeaderMap,
    body: Option<RefreshBody>,
) -> Result<Response<Body>, Rejection> {
    logout(&dashboard, &context, &headers, body)
        .await
        .map_err(ApiError::reject)
}

async fn logout(
    dashboard: &Dashboard,
    context: &RequestContext,
    headers: &HeaderMap,
    body: Option<RefreshBody>,
) -> Result<Response<Body>, ApiError> {
    if let Some(presented) = dashboard.presented_token(headers, context, body, "logout")? {
        let ended = dashboard
            .engine
            .logout_refresh_token(&presented.token)
            .await?;
        metrics::counter!("tachigo_dashboard_logouts_total", "ended" => if ended { "true" } else { "false" })
            .increment(1);
    }
    let reply = warp::reply::with_status(warp::reply(), StatusCode::NO_CONTENT);
    Ok(
        warp::reply::with_header(reply, SET_COOKIE, dashboard.cleared_refresh_cookie())
            .into_response(),
    )
}
