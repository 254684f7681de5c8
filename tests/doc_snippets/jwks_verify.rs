//! A watch service's check of a tachigo token with nothing but the server's
//! JWKS document (crates: `jsonwebtoken` with `rust_crypto`, `reqwest` with
//! `json`, `serde` with `derive`).

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{decode, decode_header, Algorithm, DecodingKey, Validation};
use serde::Deserialize;

/// What a watch service reads from a tachigo extension token.
#[derive(Debug, Deserialize)]
pub struct TachigoClaims {
    /// The tachigo user id (for a guest, the Twitch opaque id).
    pub sub: String,
    /// The extension session; absent for a guest.
    pub sid: Option<String>,
    pub roles: Vec<String>,
    pub channel_id: String,
    pub twitch_role: String,
    pub opaque_user_id: String,
    pub exp: u64,
}

#[derive(Debug)]
pub enum Rejected {
    /// The token names no key the JWKS holds: fetch the JWKS again (the server
    /// may have rotated its key), and refuse the token if it is still unknown.
    UnknownKey,
    /// Malformed, forged, expired, or for another audience or issuer.
    Invalid(jsonwebtoken::errors::Error),
}

/// The server's public keys, published at `<public_url>/.well-known/jwks.json`.
pub async fn fetch_jwks(http: &reqwest::Client, tachigo_url: &str) -> reqwest::Result<JwkSet> {
    http.get(format!("{tachigo_url}/.well-known/jwks.json"))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await
}

/// Verifies `token` offline: an EdDSA signature by the key its `kid` names,
/// issuer `tachigo_url` (the server's `public_url`), audience `extension`,
/// not expired.
pub fn verify(token: &str, jwks: &JwkSet, tachigo_url: &str) -> Result<TachigoClaims, Rejected> {
    let header = decode_header(token).map_err(Rejected::Invalid)?;
    let jwk = header
        .kid
        .as_deref()
        .and_then(|kid| jwks.find(kid))
        .ok_or(Rejected::UnknownKey)?;
    let key = DecodingKey::from_jwk(jwk).map_err(Rejected::Invalid)?;
    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.set_audience(&["extension"]);
    validation.set_issuer(&[tachigo_url]);
    validation.set_required_spec_claims(&["exp", "aud", "iss", "sub"]);
    validation.leeway = 5; // seconds of clock skew between this host and tachigo
    decode::<TachigoClaims>(token, &key, &validation)
        .map(|data| data.claims)
        .map_err(Rejected::Invalid)
}
