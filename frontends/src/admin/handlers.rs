//! The admin endpoints. Each authenticates the caller first (401 for a bad or
//! revoked token, 403 `forbidden` without the admin role), then asks the engine.

use http::{HeaderMap, StatusCode};
use tachigo_engine::{Engine, EngineError, RevokeScope};
use warp::http::Response;
use warp::{Rejection, Reply};

use super::wire::{AdminUserView, FindQuery, RolesBody};
use super::ADMIN_ROLE;
use crate::common::listed_session::ListedSession;
use crate::common::{ApiError, Body};
use crate::dashboard::authenticate_bearer;

const MAX_FIND_LIMIT: usize = 100;

fn json(value: &impl serde::Serialize) -> Response<Body> {
    warp::reply::json(value).into_response()
}

fn user_not_found() -> ApiError {
    ApiError::not_found("user_not_found", "no user has that id")
}

/// The calling operator's user id, or the refusal.
pub(super) async fn require_admin(
    engine: &Engine,
    headers: &HeaderMap,
) -> Result<String, Rejection> {
    let caller = authenticate_bearer(engine, headers)
        .await
        .map_err(ApiError::reject)?;
    if !caller.user.roles.iter().any(|r| r == ADMIN_ROLE) {
        return Err(ApiError::forbidden("forbidden", "this needs the admin role").reject());
    }
    Ok(caller.user.id)
}

/// A user id from the path; anything that is not one is simply not found.
fn user_id(raw: &str) -> Result<&str, Rejection> {
    if tachigo_engine::opaque_token::is_session_id(raw) {
        Ok(raw)
    } else {
        Err(user_not_found().reject())
    }
}

fn engine_error(e: EngineError) -> Rejection {
    match e {
        EngineError::UserNotFound => user_not_found(),
        EngineError::InvalidRole => ApiError::bad_request("invalid_role", e.to_string()),
        other => other.into(),
    }
    .reject()
}

pub async fn find_users(
    engine: Engine,
    headers: HeaderMap,
    query: FindQuery,
) -> Result<Response<Body>, Rejection> {
    require_admin(&engine, &headers).await?;
    let limit = query.limit.unwrap_or(20).clamp(1, MAX_FIND_LIMIT);
    let users = engine
        .find_users_by_email(&query.email, limit)
        .await
        .map_err(engine_error)?;
    let users: Vec<AdminUserView> = users.into_iter().map(Into::into).collect();
    Ok(json(&serde_json::json!({ "users": users })))
}

pub async fn get_user(
    id: String,
    engine: Engine,
    headers: HeaderMap,
) -> Result<Response<Body>, Rejection> {
    require_admin(&engine, &headers).await?;
    let user = engine.user(user_id(&id)?).await.map_err(engine_error)?;
    Ok(json(
        &serde_json::json!({ "user": AdminUserView::from(user) }),
    ))
}

pub async fn set_roles(
    id: String,
    engine: Engine,
    headers: HeaderMap,
    body: RolesBody,
) -> Result<Response<Body>, Rejection> {
    let operator = require_admin(&engine, &headers).await?;
    let target = user_id(&id)?;
    let user = engine
        .set_roles(target, body.roles)
        .await
        .map_err(engine_error)?;
    tracing::info!(operator, user_id = target, roles = %user.roles.join(","), "admin set roles");
    Ok(json(
        &serde_json::json!({ "user": AdminUserView::from(user) }),
    ))
}

pub async fn list_sessions(
    id: String,
    engine: Engine,
    headers: HeaderMap,
) -> Result<Response<Body>, Rejection> {
    require_admin(&engine, &headers).await?;
    let sessions = engine
        .list_sessions(user_id(&id)?)
        .await
        .map_err(engine_error)?;
    let sessions: Vec<ListedSession> = sessions.into_iter().map(Into::into).collect();
    Ok(json(&serde_json::json!({ "sessions": sessions })))
}

pub async fn revoke_all(
    id: String,
    engine: Engine,
    headers: HeaderMap,
) -> Result<Response<Body>, Rejection> {
    let operator = require_admin(&engine, &headers).await?;
    let target = user_id(&id)?;
    let ended = engine
        .revoke_sessions(target, RevokeScope::All)
        .await
        .map_err(engine_error)?;
    engine
        .audit(
            "admin_revoked_sessions",
            Some(target),
            None,
            &format!("{} sessions, by {operator}", ended.len()),
        )
        .await;
    Ok(json(&serde_json::json!({ "revoked": ended.len() })))
}

pub async fn revoke_one(
    id: String,
    session_id: String,
    engine: Engine,
    headers: HeaderMap,
) -> Result<Response<Body>, Rejection> {
    let operator = require_admin(&engine, &headers).await?;
    let target = user_id(&id)?;
    engine
        .revoke_sessions(target, RevokeScope::One(session_id.clone()))
        .await
        .map_err(engine_error)?;
    engine
        .audit(
            "admin_revoked_sessions",
            Some(target),
            Some(&session_id),
            &format!("1 session, by {operator}"),
        )
        .await;
    Ok(warp::reply::with_status(warp::reply(), StatusCode::NO_CONTENT).into_response())
}
