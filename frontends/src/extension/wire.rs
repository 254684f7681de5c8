//! The JSON bodies of the extension contract, as the Twitch panel reads them.

use serde::{Deserialize, Serialize};

use super::tachigo_token::TwitchContext;

/// `POST /auth/login` may carry the Twitch JWT in the body instead of the header.
#[derive(Debug, Default, Deserialize)]
pub struct LoginBody {
    #[serde(default)]
    pub token: Option<String>,
}

/// The user as the panel sees it. `guest` is true for an anonymous viewer's
/// token, whose `id` is the Twitch opaque id and which has no user record.
#[derive(Debug, Serialize)]
pub struct UserView {
    pub id: String,
    pub roles: Vec<String>,
    pub guest: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
}

/// 200 of `POST /auth/login`.
#[derive(Debug, Serialize)]
pub struct LoginReply {
    pub access_token: String,
    pub token_type: &'static str,
    /// Seconds until the tachigo token (and its session) expire.
    pub expires_in: i64,
    pub user: UserView,
    pub twitch: TwitchContext,
}

/// The session a tachigo token belongs to (absent for guests).
#[derive(Debug, Serialize)]
pub struct SessionView {
    pub id: String,
}

/// 200 of `GET /me`.
#[derive(Debug, Serialize)]
pub struct MeReply {
    pub user: UserView,
    pub twitch: TwitchContext,
    pub session: Option<SessionView>,
}
