//! Verification of Twitch Extension JWTs: HS256 only, keyed with the
//! **base64-decoded** extension secret, as Twitch signs them.
//!
//! Several secrets may be configured at once because Twitch rotates them: a token
//! is accepted when any secret that has not passed its `expires_at` verifies it.
//! `exp` is required and checked with [`EXP_LEEWAY_SECS`] of leeway for clock skew
//! between Twitch and this server. A token is reported as expired only once its
//! signature has verified: an unsigned or forged token learns nothing about time.

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use tachigo_engine::config::ExtensionConfig;

use super::twitch_claims::{RawTwitchClaims, TwitchViewer};

/// Clock skew tolerated on `exp`, in seconds.
pub const EXP_LEEWAY_SECS: u64 = 30;

/// Twitch's tokens are a few hundred bytes; anything far larger is not one.
pub const MAX_TOKEN_BYTES: usize = 4096;

/// Why a token was refused. The reason is for logs only: clients get one code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TwitchJwtError {
    /// Not a valid token for this extension (`invalid_extension_token`).
    Invalid(&'static str),
    /// Signed by a live secret, but past `exp` (`extension_token_expired`).
    Expired,
}

struct ConfiguredSecret {
    key: DecodingKey,
    /// Unix milliseconds after which this secret no longer verifies.
    expires_at_ms: Option<i64>,
}

/// The configured extension secrets, decoded once at start.
pub struct TwitchJwtVerifier {
    secrets: Vec<ConfiguredSecret>,
    validation: Validation,
}

impl TwitchJwtVerifier {
    /// Decodes `extension.secrets`. The loader has already refused bad values; a
    /// configuration built in code that slips one through loses that secret
    /// (logged), never gains a weaker one.
    pub fn from_config(config: &ExtensionConfig) -> TwitchJwtVerifier {
        use base64::Engine as _;
        let mut secrets = Vec::new();
        for (i, secret) in config.secrets.iter().enumerate() {
            let key = match base64::engine::general_purpose::STANDARD.decode(secret.secret.trim()) {
                Ok(bytes) if !bytes.is_empty() => DecodingKey::from_secret(&bytes),
                _ => {
                    tracing::error!(
                        "extension.secrets[{i}].secret is not base64: this secret is ignored"
                    );
                    continue;
                }
            };
            let expires_at_ms = match secret.expires_at_unix_ms() {
                Ok(at) => at,
                Err(e) => {
                    tracing::error!(
                        "extension.secrets[{i}].expires_at {e}: this secret is ignored"
                    );
                    continue;
                }
            };
            secrets.push(ConfiguredSecret { key, expires_at_ms });
        }
        if secrets.is_empty() {
            tracing::warn!("extension.secrets is empty: every extension login will be refused");
        }
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_required_spec_claims(&["exp"]);
        validation.leeway = EXP_LEEWAY_SECS;
        // Twitch's tokens carry no `aud` or `iss`.
        validation.validate_aud = false;
        TwitchJwtVerifier {
            secrets,
            validation,
        }
    }

    /// Verifies `token` with every secret still valid at `now_ms`.
    pub fn verify(&self, token: &str, now_ms: i64) -> Result<TwitchViewer, TwitchJwtError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(TwitchJwtError::Invalid("oversized"));
        }
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| TwitchJwtError::Invalid("malformed header"))?;
        if header.alg != Algorithm::HS256 {
            return Err(TwitchJwtError::Invalid("algorithm other than HS256"));
        }
        let live = self
            .secrets
            .iter()
            .filter(|s| s.expires_at_ms.is_none_or(|at| now_ms < at));
        for secret in live {
            match jsonwebtoken::decode::<RawTwitchClaims>(token, &secret.key, &self.validation) {
                Ok(data) => {
                    return data.claims.into_viewer().map_err(TwitchJwtError::Invalid);
                }
                // Not this secret's signature: try the next one.
                Err(e) if *e.kind() == ErrorKind::InvalidSignature => continue,
                Err(e) if *e.kind() == ErrorKind::ExpiredSignature => {
                    return Err(TwitchJwtError::Expired)
                }
                Err(e) => {
                    return Err(TwitchJwtError::Invalid(match e.kind() {
                        ErrorKind::MissingRequiredClaim(_) => "missing exp",
                        ErrorKind::InvalidClaimFormat(_) => "malformed exp",
                        ErrorKind::Json(_) => "malformed claims",
                        _ => "malformed token",
                    }))
                }
            }
        }
        Err(TwitchJwtError::Invalid(
            "no live secret verifies the signature",
        ))
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;
    use jsonwebtoken::{EncodingKey, Header};
    use tachigo_engine::config::ExtensionSecret;

    use super::*;

    const OLD: &str = "b2xkLXNlY3JldC1vbGQtc2VjcmV0LW9sZA==";
    const NEW: &str = "bmV3LXNlY3JldC1uZXctc2VjcmV0LW5ldw==";
    /// 2030-01-01T00:00:00Z in Unix milliseconds.
    const OLD_EXPIRES_MS: i64 = 1_893_456_000_000;

    fn verifier() -> TwitchJwtVerifier {
        TwitchJwtVerifier::from_config(&ExtensionConfig {
            secrets: vec![
                ExtensionSecret {
                    secret: OLD.into(),
                    expires_at: Some("2030-01-01T00:00:00Z".into()),
                    ..ExtensionSecret::default()
                },
                ExtensionSecret {
                    secret: NEW.into(),
                    ..ExtensionSecret::default()
                },
            ],
            ..ExtensionConfig::default()
        })
    }

    fn token(secret: &str, exp: i64) -> String {
        let key = base64::engine::general_purpose::STANDARD
            .decode(secret)
            .unwrap();
        let claims = serde_json::json!({
            "exp": exp, "opaque_user_id": "U1", "user_id": "1", "channel_id": "2", "role": "viewer",
        });
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(&key),
        )
        .unwrap()
    }

    #[test]
    fn a_secret_verifies_until_its_expiry_and_the_next_one_after() {
        let v = verifier();
        let now_s = jsonwebtoken::get_current_timestamp() as i64;
        let before = OLD_EXPIRES_MS - 1;
        assert!(v.verify(&token(OLD, now_s + 60), before).is_ok());
        assert!(v.verify(&token(NEW, now_s + 60), before).is_ok());
        assert_eq!(
            v.verify(&token(OLD, now_s + 60), OLD_EXPIRES_MS),
            Err(TwitchJwtError::Invalid(
                "no live secret verifies the signature"
            ))
        );
        assert!(v.verify(&token(NEW, now_s + 60), OLD_EXPIRES_MS).is_ok());
    }

    #[test]
    fn expiry_is_reported_only_for_a_verified_signature_and_after_the_leeway() {
        let v = verifier();
        let now_s = jsonwebtoken::get_current_timestamp() as i64;
        let leeway = EXP_LEEWAY_SECS as i64;
        assert!(v.verify(&token(NEW, now_s - leeway + 5), 0).is_ok());
        assert_eq!(
            v.verify(&token(NEW, now_s - leeway - 5), 0),
            Err(TwitchJwtError::Expired)
        );
        let forged = token("Zm9yZ2VkLWZvcmdlZC1mb3JnZWQtZm9yZ2Vk", now_s - 3600);
        assert!(matches!(
            v.verify(&forged, 0),
            Err(TwitchJwtError::Invalid(_))
        ));
        let oversized = "a".repeat(MAX_TOKEN_BYTES + 1);
        assert_eq!(
            v.verify(&oversized, 0),
            Err(TwitchJwtError::Invalid("oversized"))
        );
    }
}
