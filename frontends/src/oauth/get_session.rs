//! `GET /get-session`: the one endpoint the frontend reads auth state from.
//! 200 `{session, user}` in Better Auth's shape for a live session cookie, 200
//! `null` otherwise (and a stale cookie is cleared). Browser (`credentials:
//! "include"`) and server-side callers forwarding the `Cookie` header with no
//! `Origin` get the same answer: it is a read, so no origin check applies.
//!
//! The hot path: the session's published view in the engine answers without a
//! message to the user's actor, and keeps this endpoint's JSON for the
//! session's current state, so an unchanged session is not serialised again.
//! The dispatcher calls [`answer_now`] for it directly, before any filter;
//! whatever that cannot answer at once comes to [`handle`] through them.
//! Nothing is written unless the read slid the expiry (older than
//! `oauth.update_age`), in which case the cookie is re-set with the new lifetime.

use std::sync::Arc;

use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_TYPE, COOKIE, SET_COOKIE};
use tachigo_engine::{EngineError, Session, User};
use warp::http::Response;
use warp::Rejection;

use super::session_cookie;
use super::wire::{SessionAndUser, SessionJson, UserJson};
use super::OAuth;
use crate::common::{ApiError, Body};

/// The body for a live session.
fn render(session: &Session, user: &User) -> Bytes {
    let body = SessionAndUser {
        session: SessionJson::from_record(session),
        user: UserJson::from_record(user),
    };
    Bytes::from(serde_json::to_vec(&body).expect("the session serialises"))
}

fn json(body: Bytes) -> Response<Body> {
    let mut response = Response::new(Body::from(body));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// The answer when it needs no waiting (the dispatcher's direct route):
/// `null` without a session cookie, the body from the session's published
/// view; `None` sends the request to [`handle`] (a stale cookie to clear, a
/// renewal to write, a session only the actor can tell about).
pub fn answer_now(oauth: &OAuth, headers: &http::HeaderMap) -> Option<Response<Body>> {
    let header = headers.get(COOKIE).and_then(|v| v.to_str().ok());
    match session_cookie::token_borrowed(header) {
        None => Some(json(Bytes::from_static(b"null"))),
        Some(token) => oauth
            .engine
            .published_session_rendered(token, render)
            .map(json),
    }
}

pub async fn handle(
    oauth: Arc<OAuth>,
    cookie_header: Option<String>,
) -> Result<Response<Body>, Rejection> {
    let Some(token) = session_cookie::token(cookie_header.as_deref()) else {
        return Ok(json(Bytes::from_static(b"null")));
    };
    match oauth.engine.session_by_token_rendered(&token, render).await {
        Ok(rendered) => {
            let mut response = json(rendered.body);
            if let Some(session) = rendered.renewed {
                response.headers_mut().append(
                    SET_COOKIE,
                    session_cookie::set(&oauth.cookies, &token, &session),
                );
            }
            Ok(response)
        }
        Err(EngineError::SessionInvalid) => {
            let mut response = json(Bytes::from_static(b"null"));
            response
                .headers_mut()
                .append(SET_COOKIE, session_cookie::clear(&oauth.cookies));
            Ok(response)
        }
        Err(other) => Err(ApiError::from(other).reject()),
    }
}
