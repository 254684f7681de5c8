//! Reading an access token the OAuth 2.1 server issued: the client named in
//! its (still unverified) payload says which audience to verify it for;
//! then signature, issuer, audience and expiry, and that it really is that
//! client's token. Whether its session is still live is the caller's check.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use tachigo_engine::access_token::AccessClaims;
use tachigo_engine::clients::Client;

use super::OAuth2;

/// A verified client access token and the client it belongs to.
pub(crate) struct ClientAccessToken<'a> {
    pub claims: AccessClaims,
    pub client: &'a Client,
}

impl ClientAccessToken<'_> {
    pub(crate) fn scope(&self) -> &str {
        self.claims
            .extra
            .get("scope")
            .and_then(|s| s.as_str())
            .unwrap_or("")
    }
}

/// Whether `token` has the shape of a JWT (three dot-separated parts).
pub(crate) fn looks_like_jwt(token: &str) -> bool {
    token.split('.').count() == 3
}

fn claimed_client(token: &str) -> Option<String> {
    if token.len() > 4096 {
        return None;
    }
    let payload = token.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload).ok()?;
    let value: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    value.get("client_id")?.as_str().map(str::to_string)
}

/// The verified claims of a live-signed, unexpired access token of a
/// registered client; `None` for anything else.
pub(crate) fn verify<'a>(oauth2: &'a OAuth2, token: &str) -> Option<ClientAccessToken<'a>> {
    let client = oauth2.clients.get(&claimed_client(token)?)?;
    let claims = oauth2
        .engine
        .verify_access_token(token, &client.audience)
        .ok()?;
    let same_client = claims.extra.get("client_id").and_then(|c| c.as_str()) == Some(&client.id);
    (same_client && claims.sid.is_some()).then_some(ClientAccessToken { claims, client })
}
