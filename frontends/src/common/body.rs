//! Bounded JSON request bodies: over 16 KiB → 413, not JSON → 415, malformed or
//! wrong-typed → 400 `invalid_body` naming the field. The whole body must be
//! UTF-8 and nest at most [`MAX_JSON_DEPTH`] arrays/objects deep, unknown
//! fields included (the parser would skip those unchecked). A rejected body is
//! never half-applied: handlers only run with a fully parsed value.

use bytes::{Buf, Bytes, BytesMut};
use futures::TryStreamExt;
use http::StatusCode;
use serde::de::DeserializeOwned;
use warp::{Filter, Rejection};

use super::ApiError;

pub const MAX_BODY_BYTES: usize = 16 * 1024;
/// Time a client has to send a whole body once its head is in: 16 KiB in 10 s
/// is 1.6 KB/s, far below any real client. Past it: 408, connection closed.
pub const BODY_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// Deepest nesting of arrays and objects accepted; no contract needs more than 3.
pub const MAX_JSON_DEPTH: usize = 32;

/// 413, and the connection ends after it (the rest of the body is never
/// read): `Connection: close` tells an HTTP/1.1 client so (the dispatcher
/// removes it on HTTP/2, where it has no meaning).
pub(crate) fn too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "body_too_large",
        "the request body is larger than 16 KiB",
    )
    .with_header(
        http::header::CONNECTION,
        http::HeaderValue::from_static("close"),
    )
}

fn body_too_slow() -> ApiError {
    ApiError::new(
        StatusCode::REQUEST_TIMEOUT,
        "body_timeout",
        "the request body did not arrive in time",
    )
    .with_header(
        http::header::CONNECTION,
        http::HeaderValue::from_static("close"),
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
pub(crate) fn limited_bytes() -> impl Filter<Extract = (Bytes,), Error = Rejection> + Clone {
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
    let deadline = tokio::time::Instant::now() + BODY_READ_TIMEOUT;
    loop {
        let next = tokio::time::timeout_at(deadline, stream.try_next())
            .await
            .map_err(|_| body_too_slow().reject())?
            .map_err(|_| {
                ApiError::bad_request("invalid_body", "the request body could not be read").reject()
            })?;
        let Some(mut chunk) = next else { break };
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

/// Whether `json` nests arrays and objects at most `max` deep (brackets inside
/// strings do not count). Malformed JSON is left for the parser to refuse.
fn nesting_within(json: &[u8], max: usize) -> bool {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &b in json {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return false;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    true
}

/// Parses `bytes` as `T`, naming the offending field on failure.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if std::str::from_utf8(bytes).is_err() {
        return Err(ApiError::bad_request(
            "invalid_body",
            "the body is not valid UTF-8",
        ));
    }
    if !nesting_within(bytes, MAX_JSON_DEPTH) {
        return Err(ApiError::bad_request(
            "invalid_body",
            format!("the body nests arrays or objects deeper than {MAX_JSON_DEPTH} levels"),
        ));
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    struct Login {
        #[allow(dead_code)]
        email: String,
    }

    #[test]
    fn invalid_utf8_is_refused_even_in_an_unknown_field() {
        let mut body = br#"{"email":"a@b.example","extra":""#.to_vec();
        body.extend_from_slice(&[0xff, 0xfe]);
        body.extend_from_slice(br#""}"#);
        let refused = parse_json::<Login>(&body).unwrap_err();
        assert_eq!(refused.code, "invalid_body");
        assert!(refused.message.contains("UTF-8"), "{}", refused.message);
    }

    #[test]
    fn absurd_nesting_is_refused_even_in_an_unknown_field() {
        let deep = format!(
            r#"{{"email":"a@b.example","extra":{}{}}}"#,
            "[".repeat(5000),
            "]".repeat(5000)
        );
        let refused = parse_json::<Login>(deep.as_bytes()).unwrap_err();
        assert_eq!(refused.code, "invalid_body");
        assert!(refused.message.contains("deeper"), "{}", refused.message);
        let shallow = format!(
            r#"{{"email":"a@b.example","extra":{}{}, "s":"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["}}"#,
            "[".repeat(MAX_JSON_DEPTH - 1),
            "]".repeat(MAX_JSON_DEPTH - 1)
        );
        assert!(parse_json::<Login>(shallow.as_bytes()).is_ok());
    }
}
