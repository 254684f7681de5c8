//! The settings a provider adds beyond `client_id` / `client_secret` when it
//! is not OpenID Connect: its [`ProviderKind`], how the browser comes back
//! ([`ResponseMode`]), how the client secret reaches the token endpoint
//! ([`TokenAuthMethod`]), and where its userinfo JSON keeps the identity
//! ([`UserinfoFields`], dotted paths such as `data.user.id`).

use serde::{Deserialize, Serialize};

use super::ProviderConfig;

/// The names that are plain OAuth 2.0 presets rather than OpenID Connect providers.
pub const PLAIN_OAUTH2_PRESETS: &[&str] = &["github", "discord"];

/// What protocol a provider speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    /// OpenID Connect: an id_token proves who signed in.
    Oidc,
    /// Plain OAuth 2.0: no id_token; the userinfo endpoint, read with the
    /// access token, says who signed in.
    Oauth2,
}

/// How the provider returns the browser to the callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResponseMode {
    /// A redirect to `GET /callback/NAME?code=…&state=…` (the default).
    Query,
    /// A form POSTed to `/callback/NAME` (`response_mode=form_post`).
    FormPost,
}

/// How the client secret goes to the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenAuthMethod {
    /// HTTP Basic (RFC 6749 §2.3.1), what every OAuth 2.0 server must accept.
    ClientSecretBasic,
    /// `client_id` and `client_secret` in the form body.
    ClientSecretPost,
}

/// One dotted path into the userinfo JSON, or several tried in order (the
/// first that holds a value wins).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum FieldPaths {
    One(String),
    Many(Vec<String>),
}

impl FieldPaths {
    pub fn paths(&self) -> &[String] {
        match self {
            FieldPaths::One(path) => std::slice::from_ref(path),
            FieldPaths::Many(paths) => paths,
        }
    }
}

/// `[oauth.providers.NAME.fields]`: where the userinfo JSON keeps each part
/// of the identity. A preset fills in what is not set here.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UserinfoFields {
    /// The user's stable id at the provider (a string or a number). Required.
    pub subject: Option<FieldPaths>,
    pub email: Option<FieldPaths>,
    /// A boolean (or `"true"`); without it every email counts as unverified.
    pub email_verified: Option<FieldPaths>,
    pub name: Option<FieldPaths>,
    pub picture: Option<FieldPaths>,
}

impl ProviderConfig {
    /// The provider's kind: as configured, else plain OAuth 2.0 for the
    /// `github` and `discord` presets and OpenID Connect for any other name.
    pub fn kind_for(&self, name: &str) -> ProviderKind {
        self.kind
            .unwrap_or(if PLAIN_OAUTH2_PRESETS.contains(&name) {
                ProviderKind::Oauth2
            } else {
                ProviderKind::Oidc
            })
    }
}
