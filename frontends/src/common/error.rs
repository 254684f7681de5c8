//! Error replies. A handler rejects with an [`ApiError`]; the contract's recover
//! step renders it in that contract's shape (`/api/v1/*`:
//! `{"error":{"code","message"}}`, `/api/auth/*`: Better Auth's `{"code","message"}`),
//! and warp's own rejections (unknown route, wrong method, bad body) become the
//! same JSON errors. Never an HTML page, never a stack trace.

use std::convert::Infallible;

use http::header::{HeaderName, HeaderValue};
use http::StatusCode;
use warp::http::Response;
use warp::Rejection;

use super::Body;

/// How a contract spells its errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorStyle {
    /// `{"error":{"code":"snake_case","message":"..."}}`
    V1,
    /// `{"code":"UPPER_SNAKE","message":"..."}`
    BetterAuth,
    /// RFC 6749 §5.2: `{"error":"invalid_request","error_description":"..."}`;
    /// a code outside the RFCs' set is spelled `invalid_request`.
    OAuth2,
}

/// The error codes of RFC 6749, 7009, 7662 and 8628 that `/oauth2/*` answers with.
const OAUTH2_ERROR_CODES: &[&str] = &[
    "invalid_request",
    "invalid_client",
    "invalid_grant",
    "unauthorized_client",
    "unsupported_grant_type",
    "invalid_scope",
    "unsupported_token_type",
    "authorization_pending",
    "slow_down",
    "access_denied",
    "expired_token",
    "invalid_token",
    "server_error",
    "temporarily_unavailable",
];

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    /// snake_case; rendered upper-cased in the Better Auth style.
    pub code: &'static str,
    pub message: String,
    /// Extra headers (e.g. `Retry-After`, a cookie-clearing `Set-Cookie`).
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

impl warp::reject::Reject for ApiError {}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            headers: Vec::new(),
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn unauthorized(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, code, message)
    }

    pub fn forbidden(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, code, message)
    }

    pub fn not_found(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, code, message)
    }

    pub fn internal() -> ApiError {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "the server could not complete the request",
        )
    }

    /// 503 with `Retry-After: 1`: a moment later the answer may differ.
    pub fn unavailable() -> ApiError {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the server is busy; try again",
        )
        .with_header(http::header::RETRY_AFTER, HeaderValue::from_static("1"))
    }

    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> ApiError {
        self.headers.push((name, value));
        self
    }

    pub fn reject(self) -> Rejection {
        warp::reject::custom(self)
    }

    /// Renders the error as a JSON response in `style`.
    pub fn into_response(self, style: ErrorStyle) -> Response<Body> {
        let body = match style {
            ErrorStyle::V1 => {
                serde_json::json!({"error": {"code": self.code, "message": self.message}})
            }
            ErrorStyle::BetterAuth => {
                serde_json::json!({"code": self.code.to_ascii_uppercase(), "message": self.message})
            }
            ErrorStyle::OAuth2 => {
                let error = if OAUTH2_ERROR_CODES.contains(&self.code) {
                    self.code
                } else if self.status.is_server_error() {
                    "temporarily_unavailable"
                } else {
                    "invalid_request"
                };
                serde_json::json!({"error": error, "error_description": self.message})
            }
        };
        let mut response = Response::new(Body::from(body.to_string()));
        *response.status_mut() = self.status;
        let headers = response.headers_mut();
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        for (name, value) in self.headers {
            headers.append(name, value);
        }
        response
    }
}

/// Maps an engine failure to its answer: a session id that is not one of the
/// user's live sessions is 404 `session_not_found` on every contract; a
/// failure no contract expects is a 500/503 (logged, never shown).
impl From<tachigo_engine::EngineError> for ApiError {
    fn from(e: tachigo_engine::EngineError) -> ApiError {
        match e {
            tachigo_engine::EngineError::SessionNotFound => ApiError::not_found(
                "session_not_found",
                "no live session of this user has that id",
            ),
            tachigo_engine::EngineError::Unavailable | tachigo_engine::EngineError::Overloaded => {
                ApiError::unavailable()
            }
            tachigo_engine::EngineError::Storage(cause) => {
                tracing::error!(error = %cause, "storage failed a request");
                ApiError::unavailable()
            }
            other => {
                tracing::error!(error = %other, "unexpected engine error");
                ApiError::internal()
            }
        }
    }
}

/// The recover step of a contract: every rejection becomes a JSON error.
pub async fn recover(
    style: ErrorStyle,
    rejection: Rejection,
) -> Result<Response<Body>, Infallible> {
    Ok(rejection_to_error(&rejection).into_response(style))
}

fn rejection_to_error(rejection: &Rejection) -> ApiError {
    if let Some(e) = rejection.find::<ApiError>() {
        return e.clone();
    }
    if rejection.is_not_found() {
        return ApiError::not_found("not_found", "no such route");
    }
    if rejection.find::<warp::reject::MethodNotAllowed>().is_some() {
        return ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "this route does not accept that method",
        );
    }
    if rejection.find::<warp::reject::PayloadTooLarge>().is_some() {
        return body::too_large();
    }
    if rejection
        .find::<warp::reject::UnsupportedMediaType>()
        .is_some()
    {
        return body::unsupported_media_type();
    }
    if let Some(e) = rejection.find::<warp::reject::InvalidHeader>() {
        return ApiError::bad_request(
            "invalid_header",
            format!("header `{}` is malformed", e.name()),
        );
    }
    if let Some(e) = rejection.find::<warp::reject::MissingHeader>() {
        return ApiError::bad_request(
            "missing_header",
            format!("header `{}` is required", e.name()),
        );
    }
    if rejection.find::<warp::reject::InvalidQuery>().is_some() {
        return ApiError::bad_request("invalid_query", "the query string is malformed");
    }
    tracing::error!(?rejection, "unhandled rejection");
    ApiError::internal()
}

use super::body;
