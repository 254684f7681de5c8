//! `GET /get-session`: the one endpoint the frontend reads auth state from.
//! 200 `{session, user}` in Better Auth's shape for a live session cookie, 200
//! `null` otherwise (and a stale cookie is cleared). Browser (`credentials:
//! "include"`) and server-side callers forwarding the `Cookie` header with no
//! `Origin` get the same answer: it is a read, so no origin check applies.
//!
//! The hot path: one index lookup and one message to the user's actor, no disk
//! write unless the read slid the expiry (older than `oauth.update_age`), in
//! which case the cookie is re-set with the new lifetime.

use std::sync::Arc;

use http::header::SET_COOKIE;
use warp::http::Response;
use warp::{Rejection, Reply};

use super::session_cookie;
use super::wire::{SessionAndUser, SessionJson, UserJson};
use super::OAuth;
use crate::common::{ApiError, Body};

pub async fn handle(
    oauth: Arc<OAuth>,
    cookie_header: Option<String>,
) -> Result<Response<Body>, Rejection> {
    let token = session_cookie::token(cookie_header.as_deref());
    let presented = token.is_some();
    let caller = session_cookie::lookup(&oauth.engine, token)
        .await
        .map_err(ApiError::reject)?;
    let Some(caller) = caller else {
        let mut response = warp::reply::json(&serde_json::Value::Null).into_response();
        if presented {
            response
                .headers_mut()
                .append(SET_COOKIE, session_cookie::clear(&oauth.cookies));
        }
        return Ok(response);
    };
    let body = SessionAndUser {
        session: SessionJson::from_record(&caller.read.session),
        user: UserJson::from_record(&caller.read.user),
    };
    let mut response = warp::reply::json(&body).into_response();
    caller.refresh_cookie(&oauth.cookies, &mut response);
    Ok(response)
}
