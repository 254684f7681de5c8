//! `POST /callback/{provider}`: where a `response_mode=form_post` provider
//! (Apple and its like) sends the browser back, with `code` and `state` (or
//! `error`) in an `application/x-www-form-urlencoded` body (at most 16 KiB:
//! 413; any other content type: 415).
//!
//! The provider's page submits that form cross-site, so the `SameSite=Lax`
//! state cookie does not come with it, and the callback must not loosen it to
//! `SameSite=None` (a state cookie sent on every cross-site request would
//! make login CSRF easier). Instead, as Better Auth does, the answer is a 303
//! to `GET /callback/{provider}` carrying the same `code`, `state` and
//! `error`: that is a top-level navigation, the browser sends the Lax cookie
//! with it, and the GET callback checks everything as for any other provider
//! (state taken once, bound to the cookie, for this provider). Nothing is
//! read, taken or stored here; a forged or replayed `state` fails there.
//! Only those three fields are passed on, each at most once and at most
//! 2 KiB long.

use std::sync::Arc;

use bytes::Bytes;
use http::header::{CACHE_CONTROL, LOCATION};
use http::{HeaderValue, StatusCode};
use warp::http::Response;
use warp::Rejection;

use super::callback_urls::{redirect_to, with_error};
use super::OAuth;
use crate::common::{ApiError, Body};

/// The callback parameters a form post may carry on to the GET callback.
const PASSED_ON: [&str; 3] = ["code", "state", "error"];

fn is_form(content_type: Option<&str>) -> bool {
    content_type.is_some_and(|ct| {
        ct.split(';')
            .next()
            .unwrap_or("")
            .trim()
            .eq_ignore_ascii_case("application/x-www-form-urlencoded")
    })
}

/// The longest value passed on: codes and states are far shorter, and the
/// redirect's URL stays small (a longer value is dropped, so the GET callback
/// finds it missing and fails as for any bad callback).
const MAX_PASSED_ON_VALUE: usize = 2048;

/// The GET callback's query for a form body: `code`, `state` and `error`,
/// the first of each.
fn callback_query(body: &[u8]) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    for name in PASSED_ON {
        if let Some((_, value)) = url::form_urlencoded::parse(body).find(|(k, _)| k == name) {
            if value.len() <= MAX_PASSED_ON_VALUE {
                query.append_pair(name, &value);
            }
        }
    }
    query.finish()
}

pub async fn handle(
    provider: String,
    oauth: Arc<OAuth>,
    content_type: Option<String>,
    body: Bytes,
) -> Result<Response<Body>, Rejection> {
    if !is_form(content_type.as_deref()) {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the callback as application/x-www-form-urlencoded",
        )
        .reject());
    }
    let Some(provider) = oauth.providers.get(&provider) else {
        metrics::counter!("tachigo_oauth_callbacks_total", "provider" => "unknown", "outcome" => "error")
            .increment(1);
        return Ok(redirect_to(
            &with_error(oauth.redirects.default_error(), "oauth_provider_not_found"),
            Vec::new(),
        ));
    };
    let query = callback_query(&body);
    let location = if query.is_empty() {
        provider.redirect_uri().to_string()
    } else {
        format!("{}?{query}", provider.redirect_uri())
    };
    let mut response = redirect_to(&location, Vec::new());
    if response.status() == StatusCode::FOUND {
        // 303: the browser follows with a GET whatever it posted.
        *response.status_mut() = StatusCode::SEE_OTHER;
    }
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    debug_assert!(response.headers().contains_key(LOCATION));
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_callback_fields_are_passed_on_once_each() {
        assert_eq!(
            callback_query(b"state=s%2B1&code=c&user=%7B%22name%22%7D&code=second&id_token=x.y.z"),
            "code=c&state=s%2B1"
        );
        assert_eq!(
            callback_query(b"error=access_denied&state=abc"),
            "state=abc&error=access_denied"
        );
        assert_eq!(callback_query(b""), "");
        assert!(is_form(Some(
            "application/x-www-form-urlencoded; charset=UTF-8"
        )));
        assert!(!is_form(Some("application/json")));
        assert!(!is_form(None));
    }

    #[test]
    fn only_the_first_short_callback_fields_are_passed_on() {
        let long = "a".repeat(MAX_PASSED_ON_VALUE + 1);
        let body = format!("state=s1&code={long}&state=s2&extra=x&error=access_denied");
        assert_eq!(
            callback_query(body.as_bytes()),
            "state=s1&error=access_denied"
        );
        assert_eq!(callback_query(b"code=c&state=s"), "code=c&state=s");
    }
}
