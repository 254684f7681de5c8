//! The token endpoint's answer as the `oauth2` crate parses it. The crate's
//! standard response assumes a space-delimited `scope` string; Twitch sends a
//! JSON array, so this type accepts both, and it keeps the OIDC `id_token`.

use std::time::Duration;

use oauth2::basic::BasicTokenType;
use oauth2::{AccessToken, RefreshToken, Scope, TokenResponse};
use serde::{Deserialize, Deserializer, Serialize};

#[derive(Serialize, Deserialize)]
pub(crate) struct ProviderTokenResponse {
    access_token: AccessToken,
    #[serde(deserialize_with = "oauth2::helpers::deserialize_untagged_enum_case_insensitive")]
    token_type: BasicTokenType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expires_in: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    refresh_token: Option<RefreshToken>,
    #[serde(
        rename = "scope",
        default,
        deserialize_with = "scope_string_or_list",
        skip_serializing
    )]
    scopes: Option<Vec<Scope>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    id_token: Option<String>,
}

impl ProviderTokenResponse {
    pub(crate) fn id_token(&self) -> Option<&str> {
        self.id_token.as_deref()
    }
}

/// Never prints a token.
impl std::fmt::Debug for ProviderTokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderTokenResponse")
            .field("token_type", &self.token_type)
            .field("expires_in", &self.expires_in)
            .field("has_refresh_token", &self.refresh_token.is_some())
            .field("has_id_token", &self.id_token.is_some())
            .finish()
    }
}

fn scope_string_or_list<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Vec<Scope>>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Scopes {
        Delimited(String),
        List(Vec<String>),
    }
    Ok(Option::<Scopes>::deserialize(deserializer)?.map(|scopes| {
        let list = match scopes {
            Scopes::Delimited(s) => s.split_whitespace().map(str::to_string).collect(),
            Scopes::List(l) => l,
        };
        list.into_iter().map(Scope::new).collect()
    }))
}

impl TokenResponse for ProviderTokenResponse {
    type TokenType = BasicTokenType;

    fn access_token(&self) -> &AccessToken {
        &self.access_token
    }

    fn token_type(&self) -> &BasicTokenType {
        &self.token_type
    }

    fn expires_in(&self) -> Option<Duration> {
        self.expires_in.map(Duration::from_secs)
    }

    fn refresh_token(&self) -> Option<&RefreshToken> {
        self.refresh_token.as_ref()
    }

    fn scopes(&self) -> Option<&Vec<Scope>> {
        self.scopes.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twitch_scope_arrays_and_standard_strings_both_parse() {
        let twitch: ProviderTokenResponse = serde_json::from_str(
            r#"{"access_token":"a","token_type":"bearer","expires_in":3600,"scope":["openid","user:read:email"],"id_token":"x.y.z"}"#,
        )
        .unwrap();
        assert_eq!(twitch.scopes().unwrap().len(), 2);
        assert_eq!(twitch.id_token(), Some("x.y.z"));
        let standard: ProviderTokenResponse = serde_json::from_str(
            r#"{"access_token":"a","token_type":"Bearer","scope":"openid email"}"#,
        )
        .unwrap();
        assert_eq!(standard.scopes().unwrap().len(), 2);
        assert!(standard.id_token().is_none());
        assert!(!format!("{standard:?}").contains("\"a\""));
    }
}
