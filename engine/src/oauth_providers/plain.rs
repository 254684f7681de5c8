//! Who signed in at a plain OAuth 2.0 provider (`kind = "oauth2"`, `github`,
//! `discord`): no id_token exists, so the userinfo endpoint, asked with the
//! access token the code exchange returned, is the word of the provider; the
//! configured [`FieldMap`] reads the identity out of it, a preset may build a
//! picture, and a GitHub-shaped address list, when configured, decides which
//! email is verified. An email nothing marks verified stays unverified.

use std::sync::Arc;

use serde_json::Value;

use super::discovery::{EndpointSource, Endpoints};
use super::field_map::FieldMap;
use super::http::{check_endpoint, get_json};
use super::jwks::JwksCache;
use super::presets::Preset;
use super::registry::response_mode;
use super::{verified_emails, Flavor, Provider, ProviderError};
use crate::config::{ProviderConfig, TokenAuthMethod};
use crate::ProviderIdentity;

/// Builds the plain OAuth 2.0 provider `name`: the configured endpoints over
/// the preset's (the loader refuses a custom provider without them; a
/// hand-built config gets endpoints that report themselves misconfigured).
pub(crate) fn provider(
    name: &str,
    settings: &ProviderConfig,
    redirect_uri: String,
    http: reqwest::Client,
) -> Provider {
    let preset = Preset::from_name(name);
    let known = preset.map(Preset::endpoints);
    let url = |configured: &Option<String>, known: Option<&'static str>| {
        configured
            .clone()
            .or_else(|| known.map(str::to_string))
            .unwrap_or_default()
    };
    let token_auth = settings
        .token_auth_method
        .or(preset.map(Preset::token_auth))
        .unwrap_or(TokenAuthMethod::ClientSecretBasic);
    let endpoints = Endpoints {
        issuer: String::new(),
        authorization_endpoint: url(
            &settings.authorization_url,
            known.as_ref().map(|k| k.authorization_url),
        ),
        token_endpoint: url(&settings.token_url, known.as_ref().map(|k| k.token_url)),
        userinfo_endpoint: None,
        jwks_uri: String::new(),
        // A generic flavor authenticates the way this list allows.
        token_endpoint_auth_methods_supported: Some(vec![match token_auth {
            TokenAuthMethod::ClientSecretBasic => "client_secret_basic".into(),
            TokenAuthMethod::ClientSecretPost => "client_secret_post".into(),
        }]),
    };
    let plain = PlainOAuth2 {
        userinfo_url: url(
            &settings.userinfo_url,
            known.as_ref().map(|k| k.userinfo_url),
        ),
        emails_url: settings.emails_url.clone().or_else(|| {
            known
                .as_ref()
                .and_then(|k| k.emails_url.map(str::to_string))
        }),
        fields: FieldMap::new(
            settings.fields.as_ref(),
            &preset.map(Preset::fields).unwrap_or_default(),
        ),
        preset,
    };
    let scopes = settings.scopes.clone().unwrap_or_else(|| {
        preset
            .map(|p| p.default_scopes().iter().map(|s| s.to_string()).collect())
            .unwrap_or_default()
    });
    Provider {
        name: name.to_string(),
        flavor: Flavor::Generic,
        client_id: settings.client_id.clone(),
        client_secret: settings.client_secret.clone(),
        redirect_uri,
        scopes,
        endpoints: EndpointSource::Fixed(Arc::new(endpoints)),
        jwks: JwksCache::default(),
        http,
        plain: Some(plain),
        pkce: settings.pkce.unwrap_or(true),
        response_mode: response_mode(settings.response_mode),
    }
}

#[derive(Debug)]
pub(crate) struct PlainOAuth2 {
    pub userinfo_url: String,
    pub emails_url: Option<String>,
    pub fields: FieldMap,
    pub preset: Option<Preset>,
}

impl PlainOAuth2 {
    pub(crate) async fn identity(
        &self,
        http: &reqwest::Client,
        access_token: &str,
        provider: &str,
    ) -> Result<ProviderIdentity, ProviderError> {
        Ok(self
            .identity_and_userinfo(http, access_token, provider)
            .await?
            .0)
    }

    /// Who the access token belongs to, and the userinfo document it was read from.
    pub(crate) async fn identity_and_userinfo(
        &self,
        http: &reqwest::Client,
        access_token: &str,
        provider: &str,
    ) -> Result<(ProviderIdentity, Value), ProviderError> {
        check_endpoint("userinfo endpoint", &self.userinfo_url)?;
        let userinfo: Value = get_json(http, "userinfo", &self.userinfo_url, Some(access_token))
            .await
            .map_err(|e| ProviderError::UserInfo(e.to_string()))?
            .map_err(|status| ProviderError::UserInfo(format!("userinfo: status {status}")))?;
        let mut claims = self.fields.read(&userinfo)?;
        if claims.picture.is_none() && !self.fields.has_picture() {
            claims.picture = self.preset.and_then(|p| p.picture(&userinfo, &claims.sub));
        }
        if let Some(url) = &self.emails_url {
            check_endpoint("email list endpoint", url)?;
            verified_emails::settle(http, url, access_token, &mut claims).await?;
        }
        Ok((claims.into_identity(provider), userinfo))
    }
}
