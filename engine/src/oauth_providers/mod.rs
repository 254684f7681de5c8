//! OAuth 2.0 / OpenID Connect provider clients for the backend-first sign-in
//! (CONTRACTS.md §3): `google`, `twitch`, and any issuer configured by name;
//! plain OAuth 2.0 providers (`kind = "oauth2"`, the `github` and `discord`
//! presets), whose identity comes from their userinfo endpoint.
//!
//! The frontend asks a [`Provider`] for an authorization URL ([`Provider::start`],
//! PKCE S256 + `state` + OIDC `nonce`) and, when the browser comes back with a
//! code, to turn it into a verified [`ProviderIdentity`](crate::ProviderIdentity)
//! ([`Provider::finish`]: code exchange, `id_token` signature/`iss`/`aud`/`exp`/
//! `nonce` checks, userinfo when the token lacks profile claims), and
//! [`PendingAuthorizations`] keeps the server-side half of each `state`.
//! Cookies and redirects are the frontend's job.
//!
//! One concept per file: `registry` (providers built from `[oauth.providers]`),
//! `provider` (one provider's flow), `flavor` (what google and twitch do
//! differently, and their well-known endpoints), `discovery` and `jwks` (fetched
//! and cached), `authorize`, `exchange` (with `token_response`), `id_token`,
//! `userinfo`, `identity` (claims → identity), `plain` (a plain OAuth 2.0
//! provider's identity, with `field_map`, `presets` and `verified_emails`),
//! `pending` (the server-side half
//! of `state`, kept ten minutes and taken once), `http` (the shared client) and
//! `error`. The tokens a sign-in brings (`tokens`) are refreshed with
//! `refresh` and used for `account_info`.

mod account_info;
mod authorize;
mod discovery;
mod error;
mod exchange;
mod field_map;
mod flavor;
mod http;
mod id_token;
mod identity;
mod jwks;
mod pending;
mod plain;
mod presets;
mod provider;
mod refresh;
mod registry;
mod token_response;
mod tokens;
mod userinfo;
mod verified_emails;

pub use account_info::AccountInfo;
pub use authorize::AuthorizationStart;
pub use error::ProviderError;
pub use flavor::Flavor;
pub(crate) use http::acceptable_endpoint;
pub use pending::{PendingAuthorizations, TakenState, STATE_TTL_MS};
pub use provider::{valid_login_hint, valid_scope, Provider};
pub use refresh::RefreshError;
pub use registry::Providers;
pub use tokens::{ProviderTokens, SignedIn};
