//! Endpoints that belong to no contract: liveness, readiness, Prometheus metrics
//! and the JWKS that lets other services verify tachigo JWTs offline.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use http::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use http::StatusCode;
use warp::http::Response;
use warp::{Filter, Reply};

use crate::common::dispatcher::{DirectRoutes, Mount};
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

/// The system endpoints' answers, one per row of [`route_table`]. None of
/// them reads anything of the request, so the dispatcher calls them directly
/// (no filter tree: probes are the most frequent requests a server gets); the
/// filters below serve the same answers and render every error.
struct SystemAnswers {
    ready: Arc<AtomicBool>,
    engine: tachigo_engine::Engine,
    metrics: MetricsRenderer,
    /// `public, max-age=<tokens.jwks_cache_lifetime in whole seconds>`.
    jwks_cache_control: HeaderValue,
}

const HEALTHZ: usize = 0;
const READYZ: usize = 1;
const METRICS: usize = 2;
const JWKS: usize = 3;

impl SystemAnswers {
    fn answer(&self, row: usize) -> Option<Response<Body>> {
        Some(match row {
            HEALTHZ => json(StatusCode::OK, r#"{"status":"ok"}"#),
            READYZ => {
                if self.ready.load(Ordering::Acquire) && self.engine.is_ready() {
                    json(StatusCode::OK, r#"{"status":"ready"}"#)
                } else {
                    json(StatusCode::SERVICE_UNAVAILABLE, r#"{"status":"not_ready"}"#)
                }
            }
            METRICS => {
                let mut r = Response::new(Body::from((self.metrics)()));
                r.headers_mut().insert(
                    CONTENT_TYPE,
                    HeaderValue::from_static("text/plain; version=0.0.4"),
                );
                r
            }
            JWKS => {
                let mut r = Response::new(Body::from(self.engine.keys().jwks_json().to_string()));
                let h = r.headers_mut();
                h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                h.insert(CACHE_CONTROL, self.jwks_cache_control.clone());
                r
            }
            _ => return None,
        })
    }
}

/// The system endpoints, served on every listener. `ready` turns false when the
/// server starts draining, so load balancers stop sending traffic first.
pub fn mount(state: &AppState, ready: Arc<AtomicBool>, metrics: MetricsRenderer) -> Mount {
    let answers = Arc::new(SystemAnswers {
        ready,
        engine: state.engine.clone(),
        metrics,
        jwks_cache_control: HeaderValue::from_str(&format!(
            "public, max-age={}",
            state.engine.options().jwks_cache_lifetime_ms / 1000
        ))
        .expect("a header value"),
    });
    let row = |path: warp::filters::BoxedFilter<()>, row: usize| {
        let answers = answers.clone();
        path.and(warp::get())
            .map(move || answers.answer(row).expect("a row of the table"))
    };
    let routes = row(warp::path!("healthz").boxed(), HEALTHZ)
        .or(row(warp::path!("readyz").boxed(), READYZ))
        .unify()
        .or(row(warp::path!("metrics").boxed(), METRICS))
        .unify()
        .or(row(warp::path!(".well-known" / "jwks.json").boxed(), JWKS))
        .unify()
        .map(Reply::into_response)
        .recover(|r| recover(ErrorStyle::V1, r))
        .unify()
        .boxed();
    let direct: DirectRoutes = Arc::new(move |row, _| answers.answer(row));
    Mount {
        name: "system",
        prefix: "",
        cors: None,
        table: route_table(),
        routes,
        direct: Some(direct),
    }
}
