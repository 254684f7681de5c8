//! The backend-first OAuth contract, `/api/auth/*`, Better Auth wire-compatible (CONTRACTS.md §3).

use warp::{Filter, Reply};

use crate::common::cors::CorsPolicy;
use crate::common::dispatcher::Mount;
use crate::common::error::{recover, ErrorStyle};
use crate::AppState;

pub const PREFIX: &str = "/api/auth/";

pub fn mount(state: &AppState) -> Mount {
    let routes = warp::path!("api" / "auth" / "ok")
        .map(|| warp::reply().into_response())
        .recover(|r| recover(ErrorStyle::BetterAuth, r))
        .unify()
        .boxed();
    Mount {
        name: "oauth",
        prefix: PREFIX,
        cors: Some(CorsPolicy::with_credentials(
            state.trusted_origins.as_ref().clone(),
        )),
        routes,
    }
}
