//! The userinfo endpoint, asked with the access token only when the id_token
//! lacks profile claims (Twitch, minimal-claims issuers). Its `sub` must be the
//! id_token's (OIDC Core 5.3.2), or the answer is ignored as someone else's.

use super::http::get_json;
use super::identity::ProfileClaims;
use super::ProviderError;

pub(crate) async fn fetch(
    http: &reqwest::Client,
    endpoint: &str,
    access_token: &str,
    expected_subject: &str,
) -> Result<ProfileClaims, ProviderError> {
    let claims: ProfileClaims = get_json(http, "userinfo", endpoint, Some(access_token))
        .await
        .map_err(|e| ProviderError::UserInfo(e.to_string()))?
        .map_err(|status| ProviderError::UserInfo(format!("userinfo: status {status}")))?;
    if claims.sub != expected_subject {
        return Err(ProviderError::UserInfo(
            "userinfo describes a different subject than the id_token".into(),
        ));
    }
    Ok(claims)
}
