//! The claims of every tachigo JWT (dashboard access tokens and extension tokens).

use serde::{Deserialize, Serialize};

/// The audience of a dashboard access token.
pub const AUDIENCE_DASHBOARD: &str = "dashboard";
/// The audience of an extension (Twitch panel) token.
pub const AUDIENCE_EXTENSION: &str = "extension";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    /// The user id (or, for an anonymous extension guest, the opaque Twitch id).
    pub sub: String,
    pub aud: String,
    pub iat: i64,
    pub exp: i64,
    /// Unique per token.
    pub jti: String,
    /// The session the token belongs to; absent for anonymous guests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    #[serde(default)]
    pub roles: Vec<String>,
    /// Contract-specific claims (e.g. the Twitch channel and role of an extension token).
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}
