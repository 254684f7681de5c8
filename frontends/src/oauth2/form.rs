//! Bounded `application/x-www-form-urlencoded` bodies (RFC 6749 §3.2): at
//! most 16 KiB, another content type is 415, a repeated parameter is
//! `invalid_request` (§3.1: parameters must not be included more than once),
//! and a parameter sent without a value counts as absent.

use std::collections::HashMap;

use bytes::Bytes;
use http::StatusCode;
use warp::{Filter, Rejection};

use crate::common::body::limited_bytes;
use crate::common::ApiError;

/// Parameters of one request, each at most once.
#[derive(Debug, Default)]
pub(crate) struct Form {
    params: HashMap<String, String>,
}

impl Form {
    /// A parameter's value; `None` when absent or empty.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.params
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// A required parameter, or `invalid_request` naming it.
    pub(crate) fn require(&self, name: &str) -> Result<&str, ApiError> {
        self.get(name).ok_or_else(|| {
            ApiError::bad_request("invalid_request", format!("`{name}` is required"))
        })
    }

    /// Parses an urlencoded string keeping the first of repeated parameters
    /// (only to find where to send the error about them).
    pub(crate) fn parse_first(encoded: &[u8]) -> Form {
        let mut params = HashMap::new();
        for (name, value) in url::form_urlencoded::parse(encoded) {
            params
                .entry(name.into_owned())
                .or_insert_with(|| value.into_owned());
        }
        Form { params }
    }

    /// Parses an urlencoded string (a body or a query).
    pub(crate) fn parse(encoded: &[u8]) -> Result<Form, ApiError> {
        let mut params = HashMap::new();
        for (name, value) in url::form_urlencoded::parse(encoded) {
            if params
                .insert(name.to_string(), value.into_owned())
                .is_some()
            {
                return Err(ApiError::bad_request(
                    "invalid_request",
                    format!("`{name}` is repeated"),
                ));
            }
        }
        Ok(Form { params })
    }
}

fn is_form(content_type: Option<&str>) -> bool {
    content_type.is_some_and(|ct| {
        ct.split(';')
            .next()
            .unwrap_or("")
            .trim()
            .eq_ignore_ascii_case("application/x-www-form-urlencoded")
    })
}

/// A required urlencoded body.
pub(crate) fn form_body() -> impl Filter<Extract = (Form,), Error = Rejection> + Clone {
    warp::header::optional::<String>("content-type")
        .and(limited_bytes())
        .and_then(|content_type: Option<String>, bytes: Bytes| async move {
            if !is_form(content_type.as_deref()) {
                return Err(ApiError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "invalid_request",
                    "send the body as application/x-www-form-urlencoded",
                )
                .reject());
            }
            Form::parse(&bytes).map_err(ApiError::reject)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_parameters_are_refused_and_empty_ones_are_absent() {
        assert_eq!(Form::parse(b"a=1&a=2").unwrap_err().code, "invalid_request");
        let form = Form::parse(b"a=&b=x%20y").unwrap();
        assert_eq!(form.get("a"), None);
        assert_eq!(form.get("b"), Some("x y"));
        assert!(form.require("c").is_err());
        assert!(is_form(Some(
            "application/x-www-form-urlencoded; charset=UTF-8"
        )));
        assert!(!is_form(Some("application/json")));
        assert!(!is_form(None));
    }
}
