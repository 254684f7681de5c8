//! Bounded JSON request bodies: over 16 KiB → 413, not JSON → 415, malformed or
//! wrong-typed → 400 `invalid_body` naming the field. A rejected body is never
//! half-applied: handlers only run with a fully parsed value.

use bytes::{Buf, Bytes, BytesMut};
use futures::TryStreamExt;
use http::StatusCode;
use serde::de::DeserializeOwned;
use warp::{Filter, Rejection};

use super::ApiError;

pub const MAX_BODY_BYTES: usize = 16 * 1024;

pub(crate) fn too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "body_too_large",
        "the request body is larger than 16 KiB",
    )
}

pub(crate) fn unsupported_media_type() -> ApiError {
    ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        "send the body as application/json",
    )
}

/// The raw body, at most [`MAX_BODY_BYTES`], whatever the transfer encoding.
fn limited_bytes() -> impl Filter<Extract = (Bytes,), Error = Rejection> + Clone {
    warp::header::optional::<u64>("content-length")
        .and(warp::body::stream())
        .and_then(collect_limited)
}

async fn collect_limited<S, B>(declared: Option<u64>, stream: S) -> Result<Bytes, Rejection>
where
    S: futures::Stream<Item = Result<B, warp::Error>> + Send,
    B: Buf,
{
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return Err(too_large().reject());
    }
    let mut stream = Box::pin(stream);
    let mut collected = BytesMut::new();
    while let Some(mut chunk) = stream.try_next().await.map_err(|_| {
        ApiError::bad_request("invalid_body", "the request body could not be read").reject()
    })? {
        if collected.len() + chunk.remaining() > MAX_BODY_BYTES {
            return Err(too_large().reject());
        }
        while chunk.has_remaining() {
            let piece = chunk.chunk();
            let n = piece.len();
            collected.extend_from_slice(piece);
            chunk.advance(n);
        }
    }
    Ok(collected.freeze())
}

fn is_json(content_type: Option<&str>) -> bool {
    content_type.is_some_and(|ct| {
        let essence = ct
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        essence == "application/json"
            || (essence.starts_with("application/") && essence.ends_with("+json"))
    })
}

/// Parses `bytes` as `T`, naming the offending field on failure.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let message = if path == "." || path.is_empty() {
            format!("the body is not valid: {inner}")
        } else {
            format!("field `{path}`: {inner}")
        };
        ApiError::bad_request("invalid_body", message)
    })?;
    de.end().map_err(|e| {
        ApiError::bad_request("invalid_body", format!("the body is not valid: {e}"))
    })?;
    Ok(value)
}

/// A required JSON body.
pub fn json_body<T: DeserializeOwned + Send>(
) -> impl Filter<Extract = (T,), Error = Rejection> + Clone {
    warp::header::optional::<String>("content-type")
        .and(limited_bytes())
        .and_then(|content_type: Option<String>, bytes: Bytes| async move {
            if !is_json(content_type.as_deref()) {
                return Err(unsupported_media_type().reject());
            }
            parse_json(&bytes).map_err(ApiError::reject)
        })
}

/// A JSON body that may also be absent (an empty body reads as `T::default()`).
pub fn optional_json_body<T: DeserializeOwned + Default + Send>(
) -> impl Filter<Extract = (T,), Error = Rejection> + Clone {
    warp::header::optional::<String>("content-type")
        .and(limited_bytes())
        .and_then(|content_type: Option<String>, bytes: Bytes| async move {
            if bytes.iter().all(u8::is_ascii_whitespace) {
                return Ok(T::default());
            }
            if !is_json(content_type.as_deref()) {
                return Err(unsupported_media_type().reject());
            }
            parse_json(&bytes).map_err(ApiError::reject)
        })
}
