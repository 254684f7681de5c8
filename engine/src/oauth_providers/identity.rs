//! From provider claims (id_token, then userinfo for what the token left out)
//! to the [`ProviderIdentity`] the engine links users by: `(provider, sub)`, plus
//! the email only as *verified* as the provider says, and a display name and
//! picture cleaned of anything a frontend should not render.

use serde::{Deserialize, Deserializer};

use crate::ProviderIdentity;

const MAX_NAME_CHARS: usize = 256;
const MAX_IMAGE_URL_BYTES: usize = 2048;

/// The standard OIDC profile claims this server reads.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct ProfileClaims {
    pub sub: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default, deserialize_with = "bool_or_string")]
    pub email_verified: Option<bool>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub preferred_username: Option<String>,
    #[serde(default)]
    pub picture: Option<String>,
}

/// Some providers send `"email_verified": "true"`.
fn bool_or_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Flexible {
        Bool(bool),
        Text(String),
    }
    Ok(match Option::<Flexible>::deserialize(d)? {
        Some(Flexible::Bool(b)) => Some(b),
        Some(Flexible::Text(s)) => Some(s.eq_ignore_ascii_case("true")),
        None => None,
    })
}

impl ProfileClaims {
    /// Whether the userinfo endpoint may add something the id_token lacked.
    pub(crate) fn lacks_profile(&self) -> bool {
        self.email.is_none() || (self.name.is_none() && self.preferred_username.is_none())
    }

    /// Fills what is missing from userinfo claims of the same subject.
    pub(crate) fn complete_with(&mut self, userinfo: ProfileClaims) {
        if self.email.is_none() {
            self.email = userinfo.email;
            self.email_verified = userinfo.email_verified;
        }
        if self.name.is_none() {
            self.name = userinfo.name;
        }
        if self.preferred_username.is_none() {
            self.preferred_username = userinfo.preferred_username;
        }
        if self.picture.is_none() {
            self.picture = userinfo.picture;
        }
    }

    pub(crate) fn into_identity(self, provider: &str) -> ProviderIdentity {
        let email = self
            .email
            .map(|e| e.trim().to_string())
            .filter(|e| !e.is_empty());
        let email_verified = email.is_some() && self.email_verified == Some(true);
        let name = self
            .name
            .or(self.preferred_username)
            .map(|n| {
                n.trim()
                    .chars()
                    .filter(|c| !c.is_control())
                    .take(MAX_NAME_CHARS)
                    .collect::<String>()
            })
            .filter(|n| !n.is_empty());
        let image = self.picture.filter(|p| {
            p.len() <= MAX_IMAGE_URL_BYTES
                && url::Url::parse(p).is_ok_and(|u| matches!(u.scheme(), "https" | "http"))
        });
        ProviderIdentity {
            provider: provider.to_string(),
            subject: self.sub,
            email,
            email_verified,
            name,
            image,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_asserted_verified_email_counts_as_verified() {
        let claims: ProfileClaims = serde_json::from_value(serde_json::json!({
            "sub": "42", "email": "A@Example.com", "email_verified": "true",
            "preferred_username": "twitchy", "picture": "javascript:alert(1)"
        }))
        .unwrap();
        let identity = claims.into_identity("twitch");
        assert_eq!(identity.subject, "42");
        assert!(identity.email_verified);
        assert_eq!(identity.name.as_deref(), Some("twitchy"));
        assert_eq!(identity.image, None);

        let unverified: ProfileClaims =
            serde_json::from_value(serde_json::json!({"sub": "1", "email": "a@b.co"})).unwrap();
        assert!(!unverified.into_identity("x").email_verified);
        let no_email: ProfileClaims =
            serde_json::from_value(serde_json::json!({"sub": "1", "email_verified": true}))
                .unwrap();
        assert!(!no_email.into_identity("x").email_verified);
    }

    #[test]
    fn userinfo_fills_only_the_gaps() {
        let mut claims = ProfileClaims {
            sub: "1".into(),
            name: Some("From Token".into()),
            ..ProfileClaims::default()
        };
        assert!(claims.lacks_profile());
        claims.complete_with(ProfileClaims {
            sub: "1".into(),
            email: Some("u@example.com".into()),
            email_verified: Some(true),
            name: Some("From Userinfo".into()),
            ..ProfileClaims::default()
        });
        assert_eq!(claims.name.as_deref(), Some("From Token"));
        assert_eq!(claims.email.as_deref(), Some("u@example.com"));
        assert!(!claims.lacks_profile());
    }
}
