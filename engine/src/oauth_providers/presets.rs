//! The plain OAuth 2.0 presets: what `github` and `discord` need besides a
//! client id and secret — their endpoints (each overridable in the
//! configuration), default scopes, where their userinfo keeps each identity
//! field, and how each proves an email: GitHub through its list of the
//! user's addresses (`/user/emails`, since `/user`'s public email says nothing
//! about verification), Discord through `verified`, with its avatar hash
//! turned into a CDN URL.

use serde_json::Value;

use crate::config::{FieldPaths, TokenAuthMethod, UserinfoFields};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Preset {
    GitHub,
    Discord,
}

/// A preset's published endpoints.
pub(crate) struct PresetEndpoints {
    pub authorization_url: &'static str,
    pub token_url: &'static str,
    pub userinfo_url: &'static str,
    pub emails_url: Option<&'static str>,
}

fn one(path: &str) -> Option<FieldPaths> {
    Some(FieldPaths::One(path.into()))
}

fn either(paths: &[&str]) -> Option<FieldPaths> {
    Some(FieldPaths::Many(
        paths.iter().map(|p| p.to_string()).collect(),
    ))
}

impl Preset {
    pub(crate) fn from_name(name: &str) -> Option<Preset> {
        match name {
            "github" => Some(Preset::GitHub),
            "discord" => Some(Preset::Discord),
            _ => None,
        }
    }

    pub(crate) fn endpoints(self) -> PresetEndpoints {
        match self {
            Preset::GitHub => PresetEndpoints {
                authorization_url: "https://github.com/login/oauth/authorize",
                token_url: "https://github.com/login/oauth/access_token",
                userinfo_url: "https://api.github.com/user",
                emails_url: Some("https://api.github.com/user/emails"),
            },
            Preset::Discord => PresetEndpoints {
                authorization_url: "https://discord.com/oauth2/authorize",
                token_url: "https://discord.com/api/oauth2/token",
                userinfo_url: "https://discord.com/api/users/@me",
                emails_url: None,
            },
        }
    }

    pub(crate) fn default_scopes(self) -> &'static [&'static str] {
        match self {
            Preset::GitHub => &["read:user", "user:email"],
            Preset::Discord => &["identify", "email"],
        }
    }

    /// Both take the secret in the form body (their documented way).
    pub(crate) fn token_auth(self) -> TokenAuthMethod {
        TokenAuthMethod::ClientSecretPost
    }

    pub(crate) fn fields(self) -> UserinfoFields {
        match self {
            Preset::GitHub => UserinfoFields {
                subject: one("id"),
                email: one("email"),
                // The address list decides.
                email_verified: None,
                name: either(&["name", "login"]),
                picture: one("avatar_url"),
            },
            Preset::Discord => UserinfoFields {
                subject: one("id"),
                email: one("email"),
                email_verified: one("verified"),
                name: either(&["global_name", "username"]),
                // Built from the avatar hash by [`Preset::picture`].
                picture: None,
            },
        }
    }

    /// A picture URL the preset builds from the userinfo when none is read
    /// from it: Discord's `https://cdn.discordapp.com/avatars/{id}/{hash}.png`.
    pub(crate) fn picture(self, userinfo: &Value, subject: &str) -> Option<String> {
        match self {
            Preset::GitHub => None,
            Preset::Discord => {
                let hash = userinfo.get("avatar")?.as_str()?;
                let plain = |s: &str| {
                    !s.is_empty()
                        && s.len() <= 64
                        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                };
                (plain(hash) && subject.bytes().all(|b| b.is_ascii_digit()))
                    .then(|| format!("https://cdn.discordapp.com/avatars/{subject}/{hash}.png"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn discord_avatars_become_cdn_urls_and_odd_hashes_are_dropped() {
        let d = Preset::Discord;
        assert_eq!(
            d.picture(&json!({"avatar": "a_1f2e3d"}), "80351110224678912")
                .as_deref(),
            Some("https://cdn.discordapp.com/avatars/80351110224678912/a_1f2e3d.png")
        );
        assert_eq!(d.picture(&json!({"avatar": null}), "1"), None);
        assert_eq!(d.picture(&json!({"avatar": "../../x"}), "1"), None);
        assert_eq!(d.picture(&json!({"avatar": "abc"}), "not-digits"), None);
        assert_eq!(Preset::GitHub.picture(&json!({"avatar": "abc"}), "1"), None);
        assert_eq!(Preset::from_name("github"), Some(Preset::GitHub));
        assert_eq!(Preset::from_name("gitlab"), None);
    }
}
