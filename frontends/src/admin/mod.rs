//! The operators' API, `/api/v1/admin/*` (CONTRACTS.md "Shared endpoints"): find
//! users, set their roles, list and revoke their sessions, rotate the signing
//! key. Only a dashboard access token whose session is live and whose user
//! holds the `admin` role gets in.
//! Bearer-authenticated, so no CSRF origin check; CORS as the dashboard's.

mod handlers;
mod keys;
mod wire;

use std::convert::Infallible;

use tachigo_engine::Engine;
use warp::{Filter, Reply};

use crate::common::cors::CorsPolicy;
use crate::common::dispatcher::Mount;
use crate::common::error::{recover, ErrorStyle};
use crate::common::route_table::RouteTable;
use crate::common::{json_body, optional_json_body};
use crate::AppState;
use http::Method;

pub const PREFIX: &str = "/api/v1/admin/";

/// The role an operator needs.
pub const ADMIN_ROLE: &str = "admin";

fn with_engine(engine: &Engine) -> impl Filter<Extract = (Engine,), Error = Infallible> + Clone {
    let engine = engine.clone();
    warp::any().map(move || engine.clone())
}

/// What this API serves (metric labels, CORS methods).
pub fn route_table() -> RouteTable {
    RouteTable::new(&[
        (Method::GET, "/api/v1/admin/users"),
        (Method::GET, "/api/v1/admin/users/{id}"),
        (Method::PUT, "/api/v1/admin/users/{id}/roles"),
        (Method::GET, "/api/v1/admin/users/{id}/sessions"),
        (Method::DELETE, "/api/v1/admin/users/{id}/sessions"),
        (
            Method::DELETE,
            "/api/v1/admin/users/{id}/sessions/{session_id}",
        ),
        (Method::POST, "/api/v1/admin/keys/rotate"),
    ])
}

pub fn mount(state: &AppState) -> Mount {
    let e = &state.engine;
    let headers = warp::header::headers_cloned;
    let find = warp::path!("api" / "v1" / "admin" / "users")
        .and(warp::get())
        .and(with_engine(e))
        .and(headers())
        .and(warp::query::<wire::FindQuery>())
        .and_then(handlers::find_users);
    let get = warp::path!("api" / "v1" / "admin" / "users" / String)
        .and(warp::get())
        .and(with_engine(e))
        .and(headers())
        .and_then(handlers::get_user);
    let set_roles = warp::path!("api" / "v1" / "admin" / "users" / String / "roles")
        .and(warp::put())
        .and(with_engine(e))
        .and(headers())
        .and(json_body())
        .and_then(handlers::set_roles);
    let sessions = warp::path!("api" / "v1" / "admin" / "users" / String / "sessions")
        .and(warp::get())
        .and(with_engine(e))
        .and(headers())
        .and_then(handlers::list_sessions);
    let revoke_all = warp::path!("api" / "v1" / "admin" / "users" / String / "sessions")
        .and(warp::delete())
        .and(with_engine(e))
        .and(headers())
        .and_then(handlers::revoke_all);
    let revoke_one = warp::path!("api" / "v1" / "admin" / "users" / String / "sessions" / String)
        .and(warp::delete())
        .and(with_engine(e))
        .and(headers())
        .and_then(handlers::revoke_one);
    let rotate_key = warp::path!("api" / "v1" / "admin" / "keys" / "rotate")
        .and(warp::post())
        .and(with_engine(e))
        .and(headers())
        .and(optional_json_body::<keys::RotateBody>())
        .and_then(keys::rotate);
    let routes = find
        .or(get)
        .unify()
        .or(set_roles)
        .unify()
        .or(sessions)
        .unify()
        .or(revoke_all)
        .unify()
        .or(revoke_one)
        .unify()
        .or(rotate_key)
        .unify()
        .map(Reply::into_response)
        .recover(|r| recover(ErrorStyle::V1, r))
        .unify()
        .boxed();
    Mount {
        name: "admin",
        prefix: PREFIX,
        cors: Some(CorsPolicy::with_credentials(
            state.trusted_origins.as_ref().clone(),
        )),
        table: route_table(),
        routes,
        direct: None,
    }
}
