//! The dashboard contract, `/api/v1/auth/*` (CONTRACTS.md §1).

use warp::{Filter, Reply};

use crate::common::cors::CorsPolicy;
use crate::common::dispatcher::Mount;
use crate::common::error::{recover, ErrorStyle};
use crate::AppState;

pub const PREFIX: &str = "/api/v1/auth/";

pub fn mount(state: &AppState) -> Mount {
    let routes = warp::path!("api" / "v1" / "auth" / "healthz")
        .map(|| warp::reply().into_response())
        .recover(|r| recover(ErrorStyle::V1, r))
        .unify()
        .boxed();
    Mount {
        name: "dashboard",
        prefix: PREFIX,
        cors: Some(CorsPolicy::with_credentials(
            state.trusted_origins.as_ref().clone(),
        )),
        routes,
    }
}
