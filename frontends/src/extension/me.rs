//! `GET /api/v1/extension/me`: the user and Twitch context of a tachigo extension token.
//!
//! The token's signature, audience and expiry are checked offline; a user token's
//! session must also still be live, so "revoke all sessions" ends it at once
//! (401 `session_revoked`) rather than when the token expires. A guest token has
//! no session; it is honoured only while `extension.allow_anonymous` is on.

use std::sync::Arc;

use http::header::{HeaderValue, WWW_AUTHENTICATE};
use http::HeaderMap;
use tachigo_engine::access_token::AUDIENCE_EXTENSION;
use tachigo_engine::EngineError;
use warp::http::Response;
use warp::{Rejection, Reply};

use super::tachigo_token::TwitchContext;
use super::wire::{MeReply, SessionView, UserView};
use super::Extension;
use crate::common::bearer::{bearer_token, Bearer};
use crate::common::{ApiError, Body};

fn unauthorized(code: &'static str, message: &'static str) -> ApiError {
    ApiError::unauthorized(code, message).with_header(
        WWW_AUTHENTICATE,
        HeaderValue::from_static(r#"Bearer error="invalid_token""#),
    )
}

fn invalid_access_token() -> ApiError {
    unauthorized(
        "invalid_access_token",
        "the access token is missing, invalid or expired",
    )
}

pub async fn handle(
    extension: Arc<Extension>,
    headers: HeaderMap,
) -> Result<Response<Body>, Rejection> {
    me(&extension, &headers)
        .await
        .map(|reply| warp::reply::json(&reply).into_response())
        .map_err(ApiError::reject)
}

async fn me(extension: &Extension, headers: &HeaderMap) -> Result<MeReply, ApiError> {
    let Bearer::Token(token) = bearer_token(headers) else {
        return Err(invalid_access_token());
    };
    let engine = &extension.engine;
    let claims = engine
        .verify_access_token(token, AUDIENCE_EXTENSION)
        .map_err(|_| invalid_access_token())?;
    let twitch = TwitchContext::from_claims(&claims.extra).ok_or_else(invalid_access_token)?;

    let Some(session_id) = &claims.sid else {
        if !extension.allow_anonymous {
            return Err(invalid_access_token());
        }
        return Ok(MeReply {
            user: UserView {
                id: claims.sub,
                roles: claims.roles,
                guest: true,
                name: None,
                image: None,
            },
            twitch,
            session: None,
        });
    };
    let read = engine
        .live_session(&claims.sub, session_id)
        .await
        .map_err(|e| match e {
            EngineError::SessionInvalid => {
                unauthorized("session_revoked", "this session has been signed out")
            }
            other => other.into(),
        })?;
    Ok(MeReply {
        user: UserView {
            id: read.user.id,
            roles: read.user.roles,
            guest: false,
            name: read.user.name,
            image: read.user.image,
        },
        twitch,
        session: Some(SessionView {
            id: read.session.id,
        }),
    })
}
