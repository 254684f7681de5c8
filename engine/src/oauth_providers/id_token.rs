//! id_token verification: the signature with the provider's published key
//! (RS256 or ES256 only; `none`, HMAC and anything else is refused before a
//! key is even looked up), then `iss`, `aud` (and `azp` when present), `exp`
//! (one minute of leeway) and the `nonce` this flow sent.

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};
use serde::Deserialize;
use subtle::ConstantTimeEq;

use super::identity::ProfileClaims;
use super::jwks::JwksCache;
use super::ProviderError;

/// The claims read from a verified id_token.
#[derive(Deserialize)]
struct IdTokenClaims {
    #[serde(flatten)]
    profile: ProfileClaims,
    #[serde(default)]
    nonce: Option<String>,
    #[serde(default)]
    azp: Option<String>,
    /// A string or a list; only its size matters here (`aud` itself is checked
    /// by the validation).
    #[serde(default)]
    aud: serde_json::Value,
}

fn audience_count(aud: &serde_json::Value) -> usize {
    match aud {
        serde_json::Value::Array(list) => list.len(),
        serde_json::Value::Null => 0,
        _ => 1,
    }
}

/// What a valid id_token of this flow must say.
pub(crate) struct Expectations<'a> {
    pub issuers: &'a [String],
    pub client_id: &'a str,
    pub nonce: &'a str,
    pub jwks_uri: &'a str,
}

fn invalid(why: &str) -> ProviderError {
    ProviderError::InvalidIdToken(why.to_string())
}

pub(crate) async fn verify(
    http: &reqwest::Client,
    jwks: &JwksCache,
    token: &str,
    expect: &Expectations<'_>,
) -> Result<ProfileClaims, ProviderError> {
    let header = jsonwebtoken::decode_header(token).map_err(|_| invalid("malformed token"))?;
    if !matches!(header.alg, Algorithm::RS256 | Algorithm::ES256) {
        return Err(invalid("signing algorithm not accepted"));
    }
    let key = jwks
        .key(http, expect.jwks_uri, header.kid.as_deref(), header.alg)
        .await?;
    let mut validation = Validation::new(header.alg);
    validation.set_issuer(expect.issuers);
    validation.set_audience(&[expect.client_id]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    validation.leeway = 60;
    let claims = jsonwebtoken::decode::<IdTokenClaims>(token, &key, &validation)
        .map_err(|e| {
            invalid(match e.kind() {
                ErrorKind::InvalidSignature => "bad signature",
                ErrorKind::ExpiredSignature => "expired",
                ErrorKind::InvalidIssuer => "wrong issuer",
                ErrorKind::InvalidAudience => "wrong audience",
                ErrorKind::MissingRequiredClaim(_) => "a required claim is missing",
                _ => "not a valid token",
            })
        })?
        .claims;
    if audience_count(&claims.aud) > 1 || claims.azp.is_some() {
        // OIDC Core 3.1.3.7: with several audiences, the authorized party must be us.
        if claims.azp.as_deref() != Some(expect.client_id) {
            return Err(invalid("wrong authorized party"));
        }
    }
    let nonce_ok = claims
        .nonce
        .as_deref()
        .is_some_and(|n| bool::from(n.as_bytes().ct_eq(expect.nonce.as_bytes())));
    if !nonce_ok {
        return Err(invalid("nonce mismatch"));
    }
    if claims.profile.sub.is_empty() {
        return Err(invalid("empty subject"));
    }
    Ok(claims.profile)
}
