//! CORS: a trusted `Origin` is echoed (with `Access-Control-Allow-Credentials:
//! true` where the contract uses cookies) and `Vary: Origin` is always set; a
//! preflight is answered; an untrusted origin simply gets no CORS headers.

use std::collections::HashSet;
use std::sync::Arc;

use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, StatusCode};
use warp::http::Response;

use super::Body;

#[derive(Debug, Clone)]
pub struct CorsPolicy {
    allowed: Arc<HashSet<String>>,
    credentials: bool,
}

const ALLOW_HEADERS: &str = "authorization, content-type, x-request-id";

impl CorsPolicy {
    /// Browsers send cookies and read responses from `allowed` origins.
    pub fn with_credentials(allowed: HashSet<String>) -> CorsPolicy {
        CorsPolicy {
            allowed: Arc::new(allowed),
            credentials: true,
        }
    }

    /// Bearer-only contracts: responses readable, cookies never involved.
    pub fn without_credentials(allowed: HashSet<String>) -> CorsPolicy {
        CorsPolicy {
            allowed: Arc::new(allowed),
            credentials: false,
        }
    }

    fn trusted<'a>(&self, origin: Option<&'a HeaderValue>) -> Option<&'a HeaderValue> {
        origin.filter(|o| o.to_str().is_ok_and(|o| self.allowed.contains(o)))
    }

    /// Whether a request is a CORS preflight.
    pub fn is_preflight(method: &Method, headers: &HeaderMap) -> bool {
        method == Method::OPTIONS && headers.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
    }

    /// Adds the CORS response headers for the request's `Origin`.
    pub fn decorate(&self, origin: Option<&HeaderValue>, response_headers: &mut HeaderMap) {
        response_headers.append(header::VARY, HeaderValue::from_static("Origin"));
        if let Some(origin) = self.trusted(origin) {
            response_headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
            if self.credentials {
                response_headers.insert(
                    header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                    HeaderValue::from_static("true"),
                );
            }
            response_headers.insert(
                header::ACCESS_CONTROL_EXPOSE_HEADERS,
                HeaderValue::from_static("x-request-id, retry-after"),
            );
        }
    }

    /// The answer to a preflight: 204, with the allowances only for a trusted
    /// origin; `allowed_methods` are those the route table serves on the path.
    pub fn preflight(&self, request_headers: &HeaderMap, allowed_methods: &str) -> Response<Body> {
        let mut response = Response::new(Body::default());
        *response.status_mut() = StatusCode::NO_CONTENT;
        let headers = response.headers_mut();
        let origin = request_headers.get(header::ORIGIN);
        self.decorate(origin, headers);
        if self.trusted(origin).is_some() {
            if let Ok(methods) = HeaderValue::from_str(allowed_methods) {
                headers.insert(header::ACCESS_CONTROL_ALLOW_METHODS, methods);
            }
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                HeaderValue::from_static(ALLOW_HEADERS),
            );
            headers.insert(
                header::ACCESS_CONTROL_MAX_AGE,
                HeaderValue::from_static("600"),
            );
        }
        response
    }
}
