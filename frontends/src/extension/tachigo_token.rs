//! What an extension's tachigo token says beyond the common access-token claims:
//! the Twitch context of the login (`channel_id`, `twitch_role`, `opaque_user_id`),
//! so a watch service that verifies the token offline against the JWKS knows the
//! channel and role without asking this server. Guests carry the `guest` role.

use serde::Serialize;
use serde_json::{Map, Value};

use super::twitch_claims::TwitchViewer;

/// The only role of a guest token (an anonymous viewer, no user record).
pub const GUEST_ROLE: &str = "guest";

const CHANNEL_ID: &str = "channel_id";
const TWITCH_ROLE: &str = "twitch_role";
const OPAQUE_USER_ID: &str = "opaque_user_id";

/// The Twitch context of a login; serialised as the contract's `twitch` object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TwitchContext {
    pub channel_id: String,
    pub role: String,
    pub opaque_user_id: String,
}

impl TwitchContext {
    pub fn of(viewer: &TwitchViewer) -> TwitchContext {
        TwitchContext {
            channel_id: viewer.channel_id.clone(),
            role: viewer.role.as_str().to_string(),
            opaque_user_id: viewer.opaque_user_id.clone(),
        }
    }

    /// The extra claims of the tachigo token.
    pub fn to_claims(&self) -> Map<String, Value> {
        let mut extra = Map::with_capacity(3);
        extra.insert(CHANNEL_ID.into(), self.channel_id.clone().into());
        extra.insert(TWITCH_ROLE.into(), self.role.clone().into());
        extra.insert(OPAQUE_USER_ID.into(), self.opaque_user_id.clone().into());
        extra
    }

    /// Reads the context back from a verified token's extra claims.
    pub fn from_claims(extra: &Map<String, Value>) -> Option<TwitchContext> {
        let text = |key: &str| extra.get(key)?.as_str().map(str::to_string);
        Some(TwitchContext {
            channel_id: text(CHANNEL_ID)?,
            role: text(TWITCH_ROLE)?,
            opaque_user_id: text(OPAQUE_USER_ID)?,
        })
    }

    /// The free-form context kept with the extension session (shown in session lists).
    pub fn session_context(&self) -> String {
        serde_json::to_string(self).expect("plain strings serialise")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extension::twitch_claims::TwitchRole;

    #[test]
    fn claims_round_trip() {
        let context = TwitchContext::of(&TwitchViewer {
            opaque_user_id: "U42".into(),
            user_id: Some("42".into()),
            channel_id: "7".into(),
            role: TwitchRole::Moderator,
        });
        let claims = context.to_claims();
        assert_eq!(claims["twitch_role"], "moderator");
        assert_eq!(TwitchContext::from_claims(&claims), Some(context.clone()));
        assert_eq!(
            context.session_context(),
            r#"{"channel_id":"7","role":"moderator","opaque_user_id":"U42"}"#
        );
        assert_eq!(TwitchContext::from_claims(&Map::new()), None);
    }
}
