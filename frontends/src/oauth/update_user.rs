//! `POST /update-user {name?, image?}` (Better Auth's `updateUser`), for a
//! live session cookie (401 `UNAUTHORIZED`) from a trusted origin (403
//! `UNTRUSTED_ORIGIN`): 200 `{status: true}`; the client then reads
//! `get-session` again. `image: null` clears the picture.
//!
//! As Better Auth: a truthy `email` is 400 `EMAIL_CAN_NOT_BE_UPDATED`; every
//! other field (`emailVerified`, `id`, `roles`, unknown ones) is ignored, so a
//! body with neither `name` nor `image` is 400 `NO_FIELDS_TO_UPDATE`. A name
//! over 256 characters or an image that is not an http(s) URL of at most
//! 2048 bytes is 400 `VALIDATION_ERROR` (the engine's profile rules).

use std::sync::Arc;

use http::HeaderMap;
use serde_json::{Map, Value};
use tachigo_engine::EngineError;
use warp::http::Response;
use warp::{Rejection, Reply};

use super::email_errors::{email_can_not_be_updated, no_fields_to_update, validation_error};
use super::wire::StatusJson;
use super::{session_cookie, OAuth};
use crate::common::{ApiError, Body};

/// The change a body asks for: `None` unchanged, `Some(None)` cleared.
#[derive(Debug, PartialEq)]
struct ProfileChange {
    name: Option<Option<String>>,
    image: Option<Option<String>>,
}

/// JavaScript's truthiness, which Better Auth's `if (body.email)` applies.
fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}

fn profile_change(body: Value) -> Result<ProfileChange, ApiError> {
    let Value::Object(fields) = body else {
        return Err(validation_error("", "expected an object"));
    };
    if fields.get("email").is_some_and(truthy) {
        return Err(email_can_not_be_updated());
    }
    let name = match fields.get("name") {
        None => None,
        Some(Value::String(name)) => Some(Some(name.clone())),
        Some(_) => return Err(validation_error("name", "expected a string")),
    };
    let image = optional_string(&fields, "image")?;
    if name.is_none() && image.is_none() {
        return Err(no_fields_to_update());
    }
    Ok(ProfileChange { name, image })
}

/// A field that may be a string, `null` (clear it) or absent (leave it).
fn optional_string(
    fields: &Map<String, Value>,
    key: &str,
) -> Result<Option<Option<String>>, ApiError> {
    match fields.get(key) {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(None)),
        Some(Value::String(s)) if s.is_empty() => Ok(Some(None)),
        Some(Value::String(s)) => Ok(Some(Some(s.clone()))),
        Some(_) => Err(validation_error(key, "expected a string or null")),
    }
}

pub async fn handle(
    oauth: Arc<OAuth>,
    headers: HeaderMap,
    body: Value,
) -> Result<Response<Body>, Rejection> {
    update(&oauth, &headers, body)
        .await
        .map_err(ApiError::reject)
}

async fn update(
    oauth: &OAuth,
    headers: &HeaderMap,
    body: Value,
) -> Result<Response<Body>, ApiError> {
    let caller =
        session_cookie::require_for_change(&oauth.engine, &oauth.trusted_origins, headers).await?;
    let change = profile_change(body)?;
    oauth
        .engine
        .update_profile(caller.user_id(), change.name, change.image)
        .await
        .map_err(|e| match e {
            EngineError::InvalidProfile { reason, .. } => validation_error("", reason),
            other => other.into(),
        })?;
    let mut response = warp::reply::json(&StatusJson { status: true }).into_response();
    caller.refresh_cookie(&oauth.cookies, &mut response);
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_name_and_image_change_and_email_never() {
        assert_eq!(
            profile_change(json!({"name": "Ada", "emailVerified": true})).unwrap(),
            ProfileChange {
                name: Some(Some("Ada".into())),
                image: None
            }
        );
        assert_eq!(
            profile_change(json!({"image": null})).unwrap(),
            ProfileChange {
                name: None,
                image: Some(None)
            }
        );
        for (body, code) in [
            (
                json!({"email": "b@example.com", "name": "x"}),
                "email_can_not_be_updated",
            ),
            (
                json!({"emailVerified": true, "roles": ["admin"]}),
                "no_fields_to_update",
            ),
            (json!({"email": ""}), "no_fields_to_update"),
            (json!({"name": 3}), "validation_error"),
            (json!({"image": ["x"]}), "validation_error"),
            (json!("name"), "validation_error"),
        ] {
            assert_eq!(
                profile_change(body.clone()).unwrap_err().code,
                code,
                "{body}"
            );
        }
    }
}
