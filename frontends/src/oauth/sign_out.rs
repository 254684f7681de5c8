//! `POST /sign-out` (empty body or `{}`, as the Better Auth client sends):
//! ends the session of the cookie and expires the cookie, and the state cookie
//! of any provider flow this browser left pending (its `link-social` callback
//! would fail anyway, as its session is gone); 200 `{success: true}`, also when
//! there was no live session (nothing left to end). It is a cookie-authenticated change, so it needs a trusted
//! `Origin`/`Referer` (403 `UNTRUSTED_ORIGIN`, nothing ended).

use std::sync::Arc;

use http::header::SET_COOKIE;
use http::HeaderMap;
use serde::de::IgnoredAny;
use tachigo_engine::{EngineError, RevokeScope};
use warp::http::Response;
use warp::{Rejection, Reply};

use super::{session_cookie, state_cookie, OAuth};
use crate::common::origin_check::require_trusted_origin;
use crate::common::{ApiError, Body};

pub async fn handle(
    oauth: Arc<OAuth>,
    headers: HeaderMap,
    _body: IgnoredAny,
) -> Result<Response<Body>, Rejection> {
    sign_out(&oauth, &headers).await.map_err(ApiError::reject)
}

async fn sign_out(oauth: &OAuth, headers: &HeaderMap) -> Result<Response<Body>, ApiError> {
    require_trusted_origin(headers, &oauth.trusted_origins)?;
    let cookie_header = session_cookie::cookie_header(headers);
    if let Some(caller) = session_cookie::current(&oauth.engine, cookie_header).await? {
        let revoked = oauth
            .engine
            .revoke_sessions(
                caller.user_id(),
                RevokeScope::One(caller.session_id().to_string()),
            )
            .await;
        match revoked {
            // Ended concurrently by another request: the outcome is the same.
            Ok(_) | Err(EngineError::SessionNotFound) => {}
            Err(other) => return Err(other.into()),
        }
    }
    let mut response = warp::reply::json(&serde_json::json!({"success": true})).into_response();
    let headers = response.headers_mut();
    headers.append(SET_COOKIE, session_cookie::clear(&oauth.cookies));
    headers.append(SET_COOKIE, state_cookie::clear(&oauth.cookies));
    Ok(response)
}
