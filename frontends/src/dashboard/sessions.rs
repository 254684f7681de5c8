//! The caller's sessions on every surface (dashboard, extension, web), for a
//! valid access token whose session is live:
//!
//! - `GET /sessions`: a JSON array of live sessions, newest first, the caller's
//!   own marked `current: true`;
//! - `DELETE /sessions/{id}`: ends one of them (204; 404 `session_not_found` for
//!   an id that is not one of the caller's live sessions). Ending the current
//!   session is allowed and is a logout of this device;
//! - `POST /sessions/revoke-others`: ends all but the current one (204).
//!
//! These are bearer-authenticated, so they need no origin check; ending a
//! session revokes its refresh family and its access tokens stop working here
//! at once.

use std::sync::Arc;

use http::{HeaderMap, StatusCode};
use tachigo_engine::RevokeScope;
use warp::http::Response;
use warp::{Rejection, Reply};

use super::access::authenticate;
use super::wire::SessionItem;
use super::Dashboard;
use crate::common::{ApiError, Body};

fn no_content() -> Response<Body> {
    warp::reply::with_status(warp::reply(), StatusCode::NO_CONTENT).into_response()
}

pub async fn list(
    dashboard: Arc<Dashboard>,
    headers: HeaderMap,
) -> Result<Response<Body>, Rejection> {
    let caller = authenticate(&dashboard, &headers)
        .await
        .map_err(ApiError::reject)?;
    let sessions = dashboard
        .engine
        .list_sessions(&caller.user.id)
        .await
        .map_err(|e| ApiError::from(e).reject())?;
    let items: Vec<SessionItem> = sessions
        .into_iter()
        .map(|info| SessionItem::new(info, &caller.session.id))
        .collect();
    Ok(warp::reply::json(&items).into_response())
}

pub async fn revoke_one(
    session_id: String,
    dashboard: Arc<Dashboard>,
    headers: HeaderMap,
) -> Result<Response<Body>, Rejection> {
    let caller = authenticate(&dashboard, &headers)
        .await
        .map_err(ApiError::reject)?;
    dashboard
        .engine
        .revoke_sessions(&caller.user.id, RevokeScope::One(session_id))
        .await
        .map_err(|e| ApiError::from(e).reject())?;
    Ok(no_content())
}

pub async fn revoke_others(
    dashboard: Arc<Dashboard>,
    headers: HeaderMap,
) -> Result<Response<Body>, Rejection> {
    let caller = authenticate(&dashboard, &headers)
        .await
        .map_err(ApiError::reject)?;
    dashboard
        .engine
        .revoke_sessions(&caller.user.id, RevokeScope::AllExcept(caller.session.id))
        .await
        .map_err(|e| ApiError::from(e).reject())?;
    Ok(no_content())
}
