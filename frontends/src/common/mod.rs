//! The HTTP pieces every contract shares, each rule in exactly one place:
//! errors, the per-request context, CORS, the CSRF origin check, cookies,
//! bounded JSON bodies, the route tables, and the dispatcher that mounts
//! contracts on a listener and serves its connections under bounds.

pub mod bearer;
pub mod body;
pub mod connection;
pub mod cookies;
pub mod cors;
pub mod dispatcher;
pub mod error;
pub mod listed_session;
pub mod log_sampling;
pub mod origin_check;
pub mod rate_limit;
pub mod request_context;
pub mod request_metrics;
pub mod route_table;
pub mod timestamps;
pub mod verified_tokens;

pub use body::{json_body, optional_json_body, MAX_BODY_BYTES};
pub use error::{ApiError, ErrorStyle};
pub use request_context::{request_context, RequestContext, RequestId, RequestScope};

/// Names the body type of an `http::Response`, so that [`Body`] can name warp's.
#[doc(hidden)]
pub trait HasBody {
    type Body;
}

impl<B> HasBody for http::Response<B> {
    type Body = B;
}

/// The body of every response the contracts build: warp 0.4's own body type
/// (`Body::from` bytes or text, `Body::default()` for an empty one). warp
/// exports it only as the body of [`warp::reply::Response`], hence the projection.
pub type Body = <warp::reply::Response as HasBody>::Body;
