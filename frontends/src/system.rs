//! Endpoints that belong to no contract: liveness, readiness, Prometheus metrics
//! and the JWKS that lets other services verify tachigo JWTs offline.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use http::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use http::StatusCode;
use warp::http::Response;
use warp::{Filter, Reply};

use crate::common::dispatcher::Mount;
use crate::common::error::{recover, ErrorStyle};
use crate::common::route_table::RouteTable;
use crate::common::Body;
use crate::AppState;
use http::Method;

/// Renders the Prometheus exposition text.
pub type MetricsRenderer = Arc<dyn Fn() -> String + Send + Sync>;

fn json(status: StatusCode, body: &'static str) -> Response<Body> {
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

/// What the system mount serves (metric labels).
pub fn route_table() -> RouteTable {
    RouteTable::new(&[
        (Method::GET, "/healthz"),
        (Method::GET, "/readyz"),
        (Method::GET, "/metrics"),
        (Method::GET, "/.well-known/jwks.json"),
    ])
}

/// The system endpoints, served on every listener. `ready` turns false when the
/// server starts draining, so load balancers stop sending traffic first.
pub fn mount(state: &AppState, ready: Arc<AtomicBool>, metrics: MetricsRenderer) -> Mount {
    let healthz = warp::path!("healthz")
        .and(warp::get())
        .map(|| json(StatusCode::OK, r#"{"status":"ok"}"#));
    let engine = state.engine.clone();
    let readyz = warp::path!("readyz").and(warp::get()).map(move || {
        if ready.load(Ordering::Acquire) && engine.is_ready() {
            json(StatusCode::OK, r#"{"status":"ready"}"#)
        } else {
            json(StatusCode::SERVICE_UNAVAILABLE, r#"{"status":"not_ready"}"#)
        }
    });
    let metrics = warp::path!("metrics").and(warp::get()).map(move || {
        let mut r = Response::new(Body::from(metrics()));
        r.headers_mut().insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4"),
        );
        r
    });
    let keys = state.engine.keys().clone();
    let jwks = warp::path!(".well-known" / "jwks.json")
        .and(warp::get())
        .map(move || {
            let mut r = Response::new(Body::from(keys.jwks_json().to_string()));
            let h = r.headers_mut();
            h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            h.insert(
                CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=300"),
            );
            r
        });
    let routes = healthz
        .or(readyz)
        .unify()
        .or(metrics)
        .unify()
        .or(jwks)
        .unify()
        .map(Reply::into_response)
        .recover(|r| recover(ErrorStyle::V1, r))
        .unify()
        .boxed();
    Mount {
        name: "system",
        prefix: "",
        cors: None,
        table: route_table(),
        routes,
    }
}
