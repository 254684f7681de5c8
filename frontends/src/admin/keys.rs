//! `POST /api/v1/admin/keys/rotate`: starts an online signing-key rotation. The
//! new key is in the JWKS at once and signs from its activation time; while a
//! rotated-in key is still pending the request is refused (409) and changes nothing.

use http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};
use tachigo_engine::keyring::Rotation;
use tachigo_engine::Engine;
use warp::http::Response;
use warp::{Rejection, Reply};

use super::handlers::require_admin;
use crate::common::timestamps::Iso;
use crate::common::{ApiError, Body};

/// The request body: absent, or an empty JSON object (nothing to choose yet).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RotateBody {}

/// The rotation just started.
#[derive(Debug, Serialize)]
struct RotationStarted {
    /// The new key's `kid`, already in the JWKS.
    kid: String,
    /// When it starts signing (and the current key is retired).
    activates_at: Iso,
    /// The key that signs until then.
    active_kid: String,
}

pub async fn rotate(
    engine: Engine,
    headers: HeaderMap,
    _body: RotateBody,
) -> Result<Response<Body>, Rejection> {
    let operator = require_admin(&engine, &headers).await?;
    let rotation = engine
        .rotate_signing_key(&format!("admin {operator}"))
        .await
        .map_err(|e| ApiError::from(e).reject())?;
    match rotation {
        Rotation::Started(key) => {
            let body = RotationStarted {
                kid: key.kid,
                activates_at: Iso(key.activates_at),
                active_kid: engine.keys().active_kid(),
            };
            Ok(
                warp::reply::with_status(warp::reply::json(&body), StatusCode::ACCEPTED)
                    .into_response(),
            )
        }
        Rotation::AlreadyPending(key) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "key_rotation_pending",
            format!(
                "a rotation is under way: key {} signs from {}",
                key.kid,
                Iso(key.activates_at)
            ),
        )
        .reject()),
    }
}
