//! `POST /api/v1/extension/auth/login`: a Twitch Extension JWT in, a tachigo token out.
//!
//! A viewer who shared their identity (`user_id` present) lands on the user linked
//! to the account (`twitch`, user id), the same user the OAuth contract finds for
//! that Twitch account (created on first sight), and gets a session on the
//! `extension` surface. Without `user_id` the answer is 403
//! `identity_share_required`, or a guest token when `extension.allow_anonymous`.
//!
//! Nothing is written before the token has verified and its claims are well-formed.
//! A Twitch JWT may be presented again until its `exp` (as Twitch itself allows);
//! each presentation is a new login with its own session.

use std::sync::Arc;

use http::HeaderMap;
use tachigo_engine::access_token::AUDIENCE_EXTENSION;
use tachigo_engine::{NewSession, ProviderIdentity, Surface};
use warp::http::Response;
use warp::{Rejection, Reply};

use super::tachigo_token::{TwitchContext, GUEST_ROLE};
use super::twitch_jwt::TwitchJwtError;
use super::wire::{LoginBody, LoginReply, UserView};
use super::Extension;
use crate::common::bearer::{bearer_token, Bearer};
use crate::common::{ApiError, Body, RequestContext};

/// The provider name under which Twitch accounts are linked, shared with OAuth.
pub const TWITCH_PROVIDER: &str = "twitch";

fn invalid_token() -> ApiError {
    ApiError::unauthorized(
        "invalid_extension_token",
        "the Twitch Extension token is missing or not valid",
    )
}

fn count(outcome: &'static str) {
    metrics::counter!("tachigo_extension_logins_total", "outcome" => outcome).increment(1);
}

/// The Twitch JWT: the bearer header when present, else the body's `token`.
fn presented_token(headers: &HeaderMap, body: LoginBody) -> Result<String, ApiError> {
    match bearer_token(headers) {
        Bearer::Token(token) => Ok(token.to_string()),
        Bearer::Malformed => Err(invalid_token()),
        Bearer::Absent => body
            .token
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
            .ok_or_else(invalid_token),
    }
}

pub async fn handle(
    extension: Arc<Extension>,
    context: RequestContext,
    headers: HeaderMap,
    body: LoginBody,
) -> Result<Response<Body>, Rejection> {
    login(&extension, &context, &headers, body)
        .await
        .map(|reply| warp::reply::json(&reply).into_response())
        .map_err(ApiError::reject)
}

async fn login(
    extension: &Extension,
    context: &RequestContext,
    headers: &HeaderMap,
    body: LoginBody,
) -> Result<LoginReply, ApiError> {
    let token = presented_token(headers, body).inspect_err(|_| count("invalid_token"))?;
    let engine = &extension.engine;
    let viewer = match extension.verifier.verify(&token, engine.now()) {
        Ok(viewer) => viewer,
        Err(TwitchJwtError::Invalid(reason)) => {
            count("invalid_token");
            tracing::debug!(reason, "extension token refused");
            return Err(invalid_token());
        }
        Err(TwitchJwtError::Expired) => {
            count("expired_token");
            return Err(ApiError::unauthorized(
                "extension_token_expired",
                "the Twitch Extension token has expired; use the one Twitch issued last",
            ));
        }
    };
    let twitch = TwitchContext::of(&viewer);

    let Some(twitch_user_id) = &viewer.user_id else {
        if !extension.allow_anonymous {
            count("identity_share_required");
            return Err(ApiError::forbidden(
                "identity_share_required",
                "share your Twitch identity with the extension to sign in",
            ));
        }
        count("guest");
        let roles = vec![GUEST_ROLE.to_string()];
        let (access_token, claims) = engine.mint_access_token(
            &viewer.opaque_user_id,
            None,
            AUDIENCE_EXTENSION,
            &roles,
            twitch.to_claims(),
        );
        return Ok(LoginReply {
            access_token,
            token_type: "Bearer",
            expires_in: claims.exp - claims.iat,
            user: UserView {
                id: viewer.opaque_user_id.clone(),
                roles,
                guest: true,
                name: None,
                image: None,
            },
            twitch,
        });
    };

    let identity = ProviderIdentity {
        provider: TWITCH_PROVIDER.to_string(),
        subject: twitch_user_id.clone(),
        ..ProviderIdentity::default()
    };
    let (user_id, created) = engine.user_id_for_account(&identity).await?;
    let started = engine
        .create_session(
            &user_id,
            NewSession {
                surface: Surface::Extension,
                user_agent: context.user_agent(),
                ip: Some(context.client_ip.to_string()),
                context: Some(twitch.session_context()),
            },
        )
        .await?;
    count("user");
    tracing::debug!(user_id = %user_id, created, channel_id = %twitch.channel_id, "extension login");
    let user = started.user;
    // A reused panel session may end before a fresh token would: the token never outlives it.
    let (access_token, claims) = engine.mint_session_access_token(
        &user.id,
        &started.session,
        AUDIENCE_EXTENSION,
        &user.roles,
        twitch.to_claims(),
    );
    Ok(LoginReply {
        access_token,
        token_type: "Bearer",
        expires_in: claims.exp - claims.iat,
        user: UserView {
            id: user.id,
            roles: user.roles,
            guest: false,
            name: None,
            image: None,
        },
        twitch,
    })
}
