//! The tachigo-auth engine: one virtual actor per user holding that user's
//! sessions and refresh families, plus the token, password and key machinery the
//! three client contracts share. Frontends talk only to [`Engine`].

pub mod access_token;
pub mod app_session;
pub mod clients;
pub mod clock;
pub mod cluster;
pub mod config;
mod email_flows;
mod engine;
mod error;
pub mod key_rotation;
pub mod keyring;
pub mod mail;
pub mod messages;
pub mod model;
pub mod oauth2_grants;
pub mod oauth_providers;
pub mod opaque_token;
mod owner_cache;
pub mod password;
pub mod password_formats;
mod provider_tokens;
pub mod refresh_family;
mod router;
mod session_views;
pub mod siwe;
pub mod store_admin;
mod store_config;
pub mod token_cipher;
mod user_actor;
pub mod user_import;

pub use email_flows::{check_profile, MailLink};
pub use engine::{normalize_email, valid_role, Engine, EngineOptions, NewUser, ProviderIdentity};
pub use error::EngineError;
pub use messages::{
    AppClient, CreatedSession, NewSession, Rendered, RevokeScope, Rotated, SessionInfo, SessionRead,
};
pub use model::{
    AuditEntry, LinkedAccount, PendingAuthorization, RefreshFamily, Revocation, Session, Surface,
    UnixMillis, User,
};
pub use user_import::{ImportOutcome, ImportRefusal, ImportedAccount, ImportedUser, SkipReason};
