//! Who is calling a back-channel endpoint (RFC 6749 §2.3): a service client
//! by its secret, in an HTTP Basic header (`client_secret_basic`, id and
//! secret form-urlencoded first) or in the body (`client_secret_post`); a
//! public client by its `client_id` alone. Any failure is 401
//! `invalid_client` with `WWW-Authenticate: Basic`.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use http::header::{HeaderMap, HeaderValue, AUTHORIZATION, WWW_AUTHENTICATE};
use http::StatusCode;
use tachigo_engine::clients::Client;

use super::form::Form;
use super::OAuth2;
use crate::common::ApiError;

fn invalid_client(message: &str) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "invalid_client", message).with_header(
        WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"tachigo\""),
    )
}

/// `(client_id, secret)` of an HTTP Basic header; `Err` when one is present but malformed.
fn basic_credentials(headers: &HeaderMap) -> Result<Option<(String, String)>, ApiError> {
    let Some(value) = headers.get(AUTHORIZATION) else {
        return Ok(None);
    };
    let malformed =
        || invalid_client("the Authorization header is not HTTP Basic client credentials");
    let value = value.to_str().map_err(|_| malformed())?;
    let (scheme, encoded) = value.split_once(' ').ok_or_else(malformed)?;
    if !scheme.eq_ignore_ascii_case("basic") || encoded.len() > 1024 {
        return Err(malformed());
    }
    let decoded = STANDARD.decode(encoded.trim()).map_err(|_| malformed())?;
    let decoded = String::from_utf8(decoded).map_err(|_| malformed())?;
    let (id, secret) = decoded.split_once(':').ok_or_else(malformed)?;
    let unescape = |s: &str| {
        url::form_urlencoded::parse(format!("v={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    Ok(Some((unescape(id), unescape(secret))))
}

/// The calling client, authenticated as its kind requires.
pub(crate) fn authenticate<'a>(
    oauth2: &'a OAuth2,
    headers: &HeaderMap,
    form: &Form,
) -> Result<&'a Client, ApiError> {
    let basic = basic_credentials(headers)?;
    let (client_id, secret) = match (&basic, form.get("client_secret")) {
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request(
                "invalid_request",
                "use one client authentication method, not two",
            ))
        }
        (Some((id, secret)), None) => {
            if form.get("client_id").is_some_and(|body_id| body_id != id) {
                return Err(invalid_client(
                    "client_id differs from the Basic credentials",
                ));
            }
            (id.as_str(), Some(secret.as_str()))
        }
        (None, secret) => (
            form.get("client_id")
                .ok_or_else(|| invalid_client("client authentication is required"))?,
            secret,
        ),
    };
    let client = oauth2
        .clients
        .get(client_id)
        .ok_or_else(|| invalid_client("unknown client"))?;
    match (client.is_confidential(), secret) {
        (true, Some(secret)) if client.secret_matches(secret) => Ok(client),
        (true, _) => Err(invalid_client("the client secret is missing or wrong")),
        (false, None) => Ok(client),
        (false, Some(_)) => Err(invalid_client("a public client has no secret")),
    }
}
