//! `GET /api/v1/auth/me`: the caller's user and session, for a valid access token
//! whose session is still live (401 `invalid_access_token` / `session_revoked`).

use std::sync::Arc;

use http::HeaderMap;
use warp::http::Response;
use warp::{Rejection, Reply};

use super::access::authenticate;
use super::wire::{MeReply, SessionView};
use super::Dashboard;
use crate::common::{ApiError, Body};

pub async fn handle(
    dashboard: Arc<Dashboard>,
    headers: HeaderMap,
) -> Result<Response<Body>, Rejection> {
    let caller = authenticate(&dashboard, &headers)
        .await
        .map_err(ApiError::reject)?;
    let reply = MeReply {
        session: SessionView::from(&caller.session),
        user: caller.user.into(),
    };
    Ok(warp::reply::json(&reply).into_response())
}
