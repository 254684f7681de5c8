//! The claims of a Twitch Extension JWT, and the checks that turn them into a
//! [`TwitchViewer`]: who is looking at the panel, in which channel, in which role.
//!
//! Twitch signs what it sends, but a token signed with our secret could also come
//! from any holder of that secret (e.g. an extension backend minting `external`
//! tokens), so every field is checked for shape before it names a user or a channel.

use serde::Deserialize;

/// The payload as Twitch sends it. `exp` is checked by the JWT layer; unknown
/// claims (and `is_unlinked`, `pubsub_perms`, which this server does not use)
/// are ignored.
#[derive(Debug, Deserialize)]
pub struct RawTwitchClaims {
    #[serde(default)]
    opaque_user_id: Option<String>,
    #[serde(default)]
    user_id: Option<String>,
    #[serde(default)]
    channel_id: Option<String>,
    #[serde(default)]
    role: Option<String>,
}

/// The viewer's role in the channel, as Twitch asserts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TwitchRole {
    Broadcaster,
    Moderator,
    Viewer,
    External,
}

impl TwitchRole {
    pub fn parse(role: &str) -> Option<TwitchRole> {
        Some(match role {
            "broadcaster" => TwitchRole::Broadcaster,
            "moderator" => TwitchRole::Moderator,
            "viewer" => TwitchRole::Viewer,
            "external" => TwitchRole::External,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            TwitchRole::Broadcaster => "broadcaster",
            TwitchRole::Moderator => "moderator",
            TwitchRole::Viewer => "viewer",
            TwitchRole::External => "external",
        }
    }
}

/// A verified and well-formed Twitch Extension JWT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TwitchViewer {
    /// `U…` for a logged-in viewer, `A…` for a logged-out one.
    pub opaque_user_id: String,
    /// The Twitch user id: present only when the viewer shared their identity.
    pub user_id: Option<String>,
    pub channel_id: String,
    pub role: TwitchRole,
}

/// Twitch ids are positive decimal numbers, accepted only in canonical form:
/// 1–20 ASCII digits (20 hold any `u64`), the first not `0`. So `"0"`, `"04242"`,
/// `"+4242"`, `" 4242"` and non-ASCII digits are refused: an id has exactly one spelling,
/// and one Twitch account can never become two accounts (`twitch`, id) here.
fn is_twitch_id(value: &str) -> bool {
    let bytes = value.as_bytes();
    (1..=20).contains(&bytes.len()) && bytes[0] != b'0' && bytes.iter().all(|b| b.is_ascii_digit())
}

/// `U` or `A` followed by Twitch's opaque characters.
fn is_opaque_user_id(value: &str) -> bool {
    (2..=128).contains(&value.len())
        && matches!(value.as_bytes()[0], b'U' | b'A')
        && value[1..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

impl RawTwitchClaims {
    /// Checks every claim the contract relies on; the error names the claim.
    pub fn into_viewer(self) -> Result<TwitchViewer, &'static str> {
        let opaque_user_id = self
            .opaque_user_id
            .filter(|v| is_opaque_user_id(v))
            .ok_or("opaque_user_id")?;
        let channel_id = self
            .channel_id
            .filter(|v| is_twitch_id(v))
            .ok_or("channel_id")?;
        let role = self
            .role
            .as_deref()
            .and_then(TwitchRole::parse)
            .ok_or("role")?;
        let user_id = match self.user_id {
            None => None,
            // A viewer who shared their identity is logged in: the opaque id says so too.
            Some(id) if is_twitch_id(&id) && opaque_user_id.starts_with('U') => Some(id),
            Some(_) => return Err("user_id"),
        };
        Ok(TwitchViewer {
            opaque_user_id,
            user_id,
            channel_id,
            role,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(opaque: &str, user: Option<&str>, channel: &str, role: &str) -> RawTwitchClaims {
        RawTwitchClaims {
            opaque_user_id: Some(opaque.into()),
            user_id: user.map(Into::into),
            channel_id: Some(channel.into()),
            role: Some(role.into()),
        }
    }

    #[test]
    fn well_formed_claims_become_a_viewer() {
        let viewer = raw("U123abc", Some("123"), "456", "viewer")
            .into_viewer()
            .unwrap();
        assert_eq!(viewer.user_id.as_deref(), Some("123"));
        assert_eq!(viewer.role, TwitchRole::Viewer);
        let anonymous = raw("AxYz_9-", None, "456", "broadcaster")
            .into_viewer()
            .unwrap();
        assert_eq!(anonymous.user_id, None);
    }

    #[test]
    fn twitch_ids_are_accepted_only_in_canonical_decimal_form() {
        for good in ["1", "4242", "10", "12345678901234567890"] {
            assert!(is_twitch_id(good), "{good}");
        }
        for bad in [
            "",
            "0",
            "00",
            "04242",
            "+4242",
            "-4242",
            " 4242",
            "4242 ",
            "42 42",
            "4242\n",
            "0x4242",
            "4e3",
            "42.0",
            "\u{ff14}\u{ff12}",
            "123456789012345678901",
        ] {
            assert!(!is_twitch_id(bad), "{bad:?}");
        }
        let bad = |r: RawTwitchClaims| r.into_viewer().unwrap_err();
        assert_eq!(bad(raw("U4242", Some("04242"), "1", "viewer")), "user_id");
        assert_eq!(bad(raw("U4242", Some("0"), "1", "viewer")), "user_id");
        assert_eq!(bad(raw("U1", None, "0314", "viewer")), "channel_id");
        assert_eq!(bad(raw("U1", None, "0", "viewer")), "channel_id");
    }

    #[test]
    fn each_malformed_claim_is_named() {
        let bad = |r: RawTwitchClaims| r.into_viewer().unwrap_err();
        assert_eq!(bad(raw("X123", None, "1", "viewer")), "opaque_user_id");
        assert_eq!(bad(raw("U", None, "1", "viewer")), "opaque_user_id");
        assert_eq!(bad(raw("U1 2", None, "1", "viewer")), "opaque_user_id");
        assert_eq!(bad(raw("U1", None, "12a", "viewer")), "channel_id");
        assert_eq!(bad(raw("U1", None, "", "viewer")), "channel_id");
        assert_eq!(bad(raw("U1", None, "1", "admin")), "role");
        assert_eq!(bad(raw("U1", None, "1", "Viewer")), "role");
        assert_eq!(bad(raw("U1", Some("abc"), "1", "viewer")), "user_id");
        assert_eq!(bad(raw("A1", Some("123"), "1", "viewer")), "user_id");
        let missing = RawTwitchClaims {
            opaque_user_id: Some("U1".into()),
            user_id: None,
            channel_id: Some("1".into()),
            role: None,
        };
        assert_eq!(bad(missing), "role");
    }
}
