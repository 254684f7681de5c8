//! What the provider says about an account now: its userinfo endpoint asked
//! with the account's access token (Better Auth's `account-info`), read by the
//! provider's field map for a plain OAuth 2.0 provider. The answer must
//! describe the account's own subject.

use serde_json::{Map, Value};

use super::http::get_json;
use super::identity::ProfileClaims;
use super::{Provider, ProviderError};

/// The provider's userinfo answer: the profile read from it, and the whole document.
#[derive(Debug, Clone)]
pub struct AccountInfo {
    pub subject: String,
    pub name: Option<String>,
    pub email: Option<String>,
    pub email_verified: bool,
    pub image: Option<String>,
    /// Every claim the provider sent.
    pub data: Map<String, Value>,
}

impl Provider {
    /// Asks the userinfo endpoint about the account `subject` with `access_token`.
    pub async fn account_info(
        &self,
        access_token: &str,
        subject: &str,
    ) -> Result<AccountInfo, ProviderError> {
        if let Some(plain) = &self.plain {
            let (identity, userinfo) = plain
                .identity_and_userinfo(&self.http, access_token, &self.name)
                .await?;
            if identity.subject != subject {
                return Err(ProviderError::UserInfo(
                    "userinfo describes a different subject than the account".into(),
                ));
            }
            return Ok(AccountInfo {
                subject: identity.subject,
                name: identity.name,
                email: identity.email,
                email_verified: identity.email_verified,
                image: identity.image,
                data: match userinfo {
                    Value::Object(data) => data,
                    _ => Map::new(),
                },
            });
        }
        let endpoints = self.endpoints.endpoints(&self.http).await?;
        let endpoint = endpoints.userinfo_endpoint.as_deref().ok_or_else(|| {
            ProviderError::UserInfo("the provider publishes no userinfo endpoint".into())
        })?;
        let data: Map<String, Value> =
            get_json(&self.http, "userinfo", endpoint, Some(access_token))
                .await
                .map_err(|e| ProviderError::UserInfo(e.to_string()))?
                .map_err(|status| ProviderError::UserInfo(format!("userinfo: status {status}")))?;
        let claims: ProfileClaims = serde_json::from_value(Value::Object(data.clone()))
            .map_err(|_| ProviderError::UserInfo("userinfo has no usable `sub`".into()))?;
        if claims.sub != subject {
            return Err(ProviderError::UserInfo(
                "userinfo describes a different subject than the account".into(),
            ));
        }
        let identity = claims.into_identity(&self.name);
        Ok(AccountInfo {
            subject: identity.subject,
            name: identity.name,
            email: identity.email,
            email_verified: identity.email_verified,
            image: identity.image,
            data,
        })
    }
}
