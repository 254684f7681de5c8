//! The start-time checks of one `[oauth.providers.NAME]` beyond its client
//! credentials: an OpenID Connect provider needs an `issuer` (unless it is
//! `google` or `twitch`) and takes none of the plain OAuth 2.0 settings; a
//! plain OAuth 2.0 provider takes no `issuer`, needs its three endpoints and
//! a `fields.subject` (the `github` and `discord` presets know theirs), and
//! every endpoint must be https (http only on a loopback host).

use super::load::{check_url, invalid};
use super::plain_oauth2::PLAIN_OAUTH2_PRESETS;
use super::{ConfigError, FieldPaths, ProviderConfig, ProviderKind};
use crate::oauth_providers::acceptable_endpoint;

pub(super) fn check_provider(name: &str, provider: &ProviderConfig) -> Result<(), ConfigError> {
    let key = format!("oauth.providers.{name}");
    match provider.kind_for(name) {
        ProviderKind::Oidc => check_oidc(&key, name, provider),
        ProviderKind::Oauth2 => check_plain(&key, name, provider),
    }
}

fn check_oidc(key: &str, name: &str, provider: &ProviderConfig) -> Result<(), ConfigError> {
    let plain_only = [
        ("authorization_url", provider.authorization_url.is_some()),
        ("token_url", provider.token_url.is_some()),
        ("userinfo_url", provider.userinfo_url.is_some()),
        ("emails_url", provider.emails_url.is_some()),
        ("pkce", provider.pkce.is_some()),
        ("token_auth_method", provider.token_auth_method.is_some()),
        ("fields", provider.fields.is_some()),
    ];
    if let Some((field, _)) = plain_only.iter().find(|(_, set)| *set) {
        return Err(invalid(
            format!("{key}.{field}"),
            "is only for plain OAuth 2.0 providers (kind = \"oauth2\"); an OpenID Connect provider is discovered from its issuer",
        ));
    }
    match (name, &provider.issuer) {
        ("google" | "twitch", _) => Ok(()),
        (_, Some(issuer)) => check_url(&format!("{key}.issuer"), issuer).map(|_| ()),
        (_, None) => Err(invalid(
            format!("{key}.issuer"),
            "is required for a generic OpenID Connect provider (or set kind = \"oauth2\")",
        )),
    }
}

fn check_plain(key: &str, name: &str, provider: &ProviderConfig) -> Result<(), ConfigError> {
    if matches!(name, "google" | "twitch") {
        return Err(invalid(
            format!("{key}.kind"),
            format!("`{name}` is an OpenID Connect provider; it cannot be kind = \"oauth2\""),
        ));
    }
    if provider.issuer.is_some() {
        return Err(invalid(
            format!("{key}.issuer"),
            "is for OpenID Connect providers; a kind = \"oauth2\" provider names authorization_url, token_url and userinfo_url",
        ));
    }
    let preset = PLAIN_OAUTH2_PRESETS.contains(&name);
    for (field, value, required) in [
        ("authorization_url", &provider.authorization_url, !preset),
        ("token_url", &provider.token_url, !preset),
        ("userinfo_url", &provider.userinfo_url, !preset),
        ("emails_url", &provider.emails_url, false),
    ] {
        match value {
            Some(url) if !acceptable_endpoint(url) => {
                return Err(invalid(
                    format!("{key}.{field}"),
                    format!("`{url}` must be an https URL (http only on a loopback host)"),
                ))
            }
            Some(_) => {}
            None if required => {
                return Err(invalid(
                    format!("{key}.{field}"),
                    "is required for a kind = \"oauth2\" provider",
                ))
            }
            None => {}
        }
    }
    if preset {
        // A preset pointed elsewhere (GitHub Enterprise, say) must be pointed
        // there whole: a URL left to the preset would send that host's
        // access tokens to the public service.
        let mut urls = vec![
            ("authorization_url", &provider.authorization_url),
            ("token_url", &provider.token_url),
            ("userinfo_url", &provider.userinfo_url),
        ];
        if name == "github" {
            urls.push(("emails_url", &provider.emails_url));
        }
        if urls.iter().any(|(_, url)| url.is_some()) {
            if let Some((field, _)) = urls.iter().find(|(_, url)| url.is_none()) {
                return Err(invalid(
                    format!("{key}.{field}"),
                    format!("is required once any of the `{name}` preset's URLs is overridden"),
                ));
            }
        }
    }
    let fields = provider.fields.clone().unwrap_or_default();
    for (field, paths) in [
        ("subject", &fields.subject),
        ("email", &fields.email),
        ("email_verified", &fields.email_verified),
        ("name", &fields.name),
        ("picture", &fields.picture),
    ] {
        if paths.as_ref().is_some_and(|p| !well_formed(p)) {
            return Err(invalid(
                format!("{key}.fields.{field}"),
                "must be a dotted path (like `data.id`) or a list of them",
            ));
        }
    }
    if fields.subject.is_none() && !preset {
        return Err(invalid(
            format!("{key}.fields.subject"),
            "is required: which userinfo field holds the user's id",
        ));
    }
    Ok(())
}

fn well_formed(paths: &FieldPaths) -> bool {
    !paths.paths().is_empty()
        && paths
            .paths()
            .iter()
            .all(|p| p.split('.').all(|segment| !segment.trim().is_empty()))
}
