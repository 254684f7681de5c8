//! Verification of Twitch Extension JWTs: HS256 only, keyed with the
//! **base64-decoded** extension secret, as Twitch signs them.
//!
//! Several secrets may be configured at once because Twitch rotates them: a token
//! is accepted when any secret that has not passed its `expires_at` verifies it.
//!
//! The header must not carry `crit` (with any value, even `null`): this verifier
//! understands no header extension, so it may not accept a token that demands one.
//!
//! Time claims are checked against the `now_ms` the caller passes (the engine's
//! clock), not read from the system clock, and only once the signature has
//! verified: an unsigned or forged token learns nothing about time.
//! - `exp` is required, a non-negative number of seconds, at most
//!   [`MAX_EXP_AHEAD_SECS`] ahead of now, and past it by at most [`EXP_LEEWAY_SECS`]
//!   (clock skew between Twitch and this server).
//! - `nbf` is optional; when present it is a non-negative number of seconds, at
//!   most [`EXP_LEEWAY_SECS`] ahead of now.
//!
//! A token is reported as expired only when nothing else is wrong with it: a
//! token that would be refused anyway is refused as invalid.

use std::collections::HashSet;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};
use tachigo_engine::config::ExtensionConfig;

use super::twitch_claims::{RawTwitchClaims, TwitchViewer};

/// Clock skew tolerated on `exp` and `nbf`, in seconds.
pub const EXP_LEEWAY_SECS: u64 = 30;

/// How far ahead of now `exp` may be, in seconds. Twitch's tokens live for
/// hours at most; a token valid for longer was not minted the way Twitch does.
/// No leeway applies to this bound.
pub const MAX_EXP_AHEAD_SECS: i64 = 86_400;

/// Twitch's tokens are a few hundred bytes; anything far larger is not one.
/// Nothing of a token is decoded or parsed before this bound is checked.
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
    /// Signature only: the time claims are checked here, against `now_ms`.
    validation: Validation,
}

/// The header's JSON object, from the first of exactly three segments. Called only
/// once the token is known to be at most [`MAX_TOKEN_BYTES`], which bounds what is
/// decoded and parsed here.
fn header_object(token: &str) -> Option<Map<String, Value>> {
    use base64::Engine as _;
    let mut segments = token.split('.');
    let (Some(header), Some(_), Some(_), None) = (
        segments.next(),
        segments.next(),
        segments.next(),
        segments.next(),
    ) else {
        return None;
    };
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header)
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// A JWT NumericDate (seconds since the epoch) in Unix milliseconds: a
/// non-negative JSON number; fractions are rounded, huge values saturate.
fn numeric_date_ms(value: &Value) -> Option<i64> {
    let Value::Number(n) = value else {
        return None;
    };
    let seconds = if let Some(s) = n.as_u64() {
        i64::try_from(s).unwrap_or(i64::MAX)
    } else {
        let s = n.as_f64()?;
        if !s.is_finite() || s < 0.0 {
            return None;
        }
        // `as` saturates at i64::MAX.
        s.round() as i64
    };
    Some(seconds.saturating_mul(1000))
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
        // `exp` and `nbf` are checked by `check_times`, against the caller's clock.
        validation.required_spec_claims = HashSet::new();
        validation.validate_exp = false;
        validation.validate_nbf = false;
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
        let header = header_object(token).ok_or(TwitchJwtError::Invalid("malformed header"))?;
        if header.contains_key("crit") {
            return Err(TwitchJwtError::Invalid("crit header"));
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
            match jsonwebtoken::decode::<Map<String, Value>>(token, &secret.key, &self.validation) {
                Ok(data) => return verified(data.claims, now_ms),
                // Not this secret's signature: try the next one.
                Err(e) if *e.kind() == ErrorKind::InvalidSignature => continue,
                Err(e) => {
                    return Err(TwitchJwtError::Invalid(match e.kind() {
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

/// The checks on a payload whose signature has verified.
fn verified(mut payload: Map<String, Value>, now_ms: i64) -> Result<TwitchViewer, TwitchJwtError> {
    let exp_ms = match payload.remove("exp") {
        None => return Err(TwitchJwtError::Invalid("missing exp")),
        Some(exp) => numeric_date_ms(&exp).ok_or(TwitchJwtError::Invalid("malformed exp"))?,
    };
    let nbf_ms = match payload.remove("nbf") {
        None => None,
        Some(nbf) => Some(numeric_date_ms(&nbf).ok_or(TwitchJwtError::Invalid("malformed nbf"))?),
    };
    let claims: RawTwitchClaims = serde_json::from_value(Value::Object(payload))
        .map_err(|_| TwitchJwtError::Invalid("malformed claims"))?;
    let viewer = claims.into_viewer().map_err(TwitchJwtError::Invalid)?;

    let leeway_ms = EXP_LEEWAY_SECS as i64 * 1000;
    if nbf_ms.is_some_and(|nbf| nbf > now_ms.saturating_add(leeway_ms)) {
        return Err(TwitchJwtError::Invalid("nbf in the future"));
    }
    if exp_ms > now_ms.saturating_add(MAX_EXP_AHEAD_SECS * 1000) {
        return Err(TwitchJwtError::Invalid("exp too far ahead"));
    }
    if exp_ms.saturating_add(leeway_ms) < now_ms {
        return Err(TwitchJwtError::Expired);
    }
    Ok(viewer)
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;
    use jsonwebtoken::{EncodingKey, Header};
    use serde_json::json;
    use tachigo_engine::config::ExtensionSecret;

    use super::*;

    const OLD: &str = "b2xkLXNlY3JldC1vbGQtc2VjcmV0LW9sZA==";
    const NEW: &str = "bmV3LXNlY3JldC1uZXctc2VjcmV0LW5ldw==";
    /// 2030-01-01T00:00:00Z in Unix milliseconds.
    const OLD_EXPIRES_MS: i64 = 1_893_456_000_000;
    /// A fixed "now" for the time checks: 2027-01-01T00:00:00Z.
    const NOW_MS: i64 = 1_798_761_600_000;
    const NOW_S: i64 = NOW_MS / 1000;

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

    fn key(secret: &str) -> Vec<u8> {
        base64::engine::general_purpose::STANDARD
            .decode(secret)
            .unwrap()
    }

    fn claims(exp: i64) -> Value {
        json!({
            "exp": exp, "opaque_user_id": "U1", "user_id": "1", "channel_id": "2", "role": "viewer",
        })
    }

    fn signed(secret: &str, claims: &Value) -> String {
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            claims,
            &EncodingKey::from_secret(&key(secret)),
        )
        .unwrap()
    }

    fn token(secret: &str, exp: i64) -> String {
        signed(secret, &claims(exp))
    }

    /// A token with a header `jsonwebtoken::encode` would not write, HS256-signed.
    fn hand_signed(secret: &str, header: &Value, claims: &Value) -> String {
        let b64 = |v: &Value| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string().as_bytes())
        };
        let message = format!("{}.{}", b64(header), b64(claims));
        let signature = jsonwebtoken::crypto::sign(
            message.as_bytes(),
            &EncodingKey::from_secret(&key(secret)),
            Algorithm::HS256,
        )
        .unwrap();
        format!("{message}.{signature}")
    }

    #[test]
    fn a_secret_verifies_until_its_expiry_and_the_next_one_after() {
        let v = verifier();
        let before = OLD_EXPIRES_MS - 1;
        let exp = OLD_EXPIRES_MS / 1000 + 60;
        assert!(v.verify(&token(OLD, exp), before).is_ok());
        assert!(v.verify(&token(NEW, exp), before).is_ok());
        assert_eq!(
            v.verify(&token(OLD, exp), OLD_EXPIRES_MS),
            Err(TwitchJwtError::Invalid(
                "no live secret verifies the signature"
            ))
        );
        assert!(v.verify(&token(NEW, exp), OLD_EXPIRES_MS).is_ok());
    }

    #[test]
    fn expiry_is_reported_only_for_a_verified_signature_and_after_the_leeway() {
        let v = verifier();
        let leeway = EXP_LEEWAY_SECS as i64;
        assert!(v.verify(&token(NEW, NOW_S - leeway + 5), NOW_MS).is_ok());
        assert_eq!(
            v.verify(&token(NEW, NOW_S - leeway - 5), NOW_MS),
            Err(TwitchJwtError::Expired)
        );
        let forged = token("Zm9yZ2VkLWZvcmdlZC1mb3JnZWQtZm9yZ2Vk", NOW_S - 3600);
        assert!(matches!(
            v.verify(&forged, NOW_MS),
            Err(TwitchJwtError::Invalid(_))
        ));
        // Expired but otherwise refused anyway: invalid, not "expired".
        let mut bad = claims(NOW_S - 3600);
        bad["channel_id"] = json!("042");
        assert_eq!(
            v.verify(&signed(NEW, &bad), NOW_MS),
            Err(TwitchJwtError::Invalid("channel_id"))
        );
        let oversized = "a".repeat(MAX_TOKEN_BYTES + 1);
        assert_eq!(
            v.verify(&oversized, NOW_MS),
            Err(TwitchJwtError::Invalid("oversized"))
        );
    }

    #[test]
    fn a_crit_header_is_refused_whatever_its_value() {
        let v = verifier();
        let c = claims(NOW_S + 60);
        for crit in [
            json!(["exp"]),
            json!([]),
            json!(null),
            json!("b64"),
            json!({}),
        ] {
            let t = hand_signed(
                NEW,
                &json!({"alg": "HS256", "typ": "JWT", "crit": crit}),
                &c,
            );
            assert_eq!(
                v.verify(&t, NOW_MS),
                Err(TwitchJwtError::Invalid("crit header")),
                "{crit}"
            );
        }
        // The key spelled with a JSON escape is still `crit`.
        let message = {
            let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
            format!(
                "{}.{}",
                b64(r#"{"alg":"HS256","cr\u0069t":["exp"]}"#),
                b64(&c.to_string())
            )
        };
        let signature = jsonwebtoken::crypto::sign(
            message.as_bytes(),
            &EncodingKey::from_secret(&key(NEW)),
            Algorithm::HS256,
        )
        .unwrap();
        assert_eq!(
            v.verify(&format!("{message}.{signature}"), NOW_MS),
            Err(TwitchJwtError::Invalid("crit header"))
        );
        // The same header without `crit` verifies.
        let plain = hand_signed(NEW, &json!({"alg": "HS256", "typ": "JWT"}), &c);
        assert!(v.verify(&plain, NOW_MS).is_ok());
    }

    #[test]
    fn nbf_is_honoured_with_the_leeway_and_must_be_a_number() {
        let v = verifier();
        let leeway = EXP_LEEWAY_SECS as i64;
        let with_nbf = |nbf: Value| {
            let mut c = claims(NOW_S + 600);
            c["nbf"] = nbf;
            v.verify(&signed(NEW, &c), NOW_MS)
        };
        assert!(with_nbf(json!(NOW_S - 60)).is_ok());
        assert!(with_nbf(json!(NOW_S + leeway - 5)).is_ok());
        assert!(with_nbf(json!((NOW_S - 60) as f64 + 0.5)).is_ok());
        assert_eq!(
            with_nbf(json!(NOW_S + leeway + 5)),
            Err(TwitchJwtError::Invalid("nbf in the future"))
        );
        for malformed in [json!("0"), json!(null), json!(-1), json!(true)] {
            assert_eq!(
                with_nbf(malformed.clone()),
                Err(TwitchJwtError::Invalid("malformed nbf")),
                "{malformed}"
            );
        }
        // jsonwebtoken's own claim pass already trips over an array here.
        assert!(matches!(
            with_nbf(json!([1])),
            Err(TwitchJwtError::Invalid(_))
        ));
        // A forged token with a future nbf learns nothing either.
        let mut c = claims(NOW_S + 600);
        c["nbf"] = json!(NOW_S + 3600);
        assert_eq!(
            v.verify(&signed("Zm9yZ2VkLWZvcmdlZC1mb3JnZWQtZm9yZ2Vk", &c), NOW_MS),
            Err(TwitchJwtError::Invalid(
                "no live secret verifies the signature"
            ))
        );
    }

    #[test]
    fn exp_must_be_a_number_at_most_a_day_ahead() {
        let v = verifier();
        assert!(v.verify(&token(NEW, NOW_S + 3600), NOW_MS).is_ok());
        assert!(v
            .verify(&token(NEW, NOW_S + MAX_EXP_AHEAD_SECS), NOW_MS)
            .is_ok());
        for too_far in [NOW_S + MAX_EXP_AHEAD_SECS + 1, NOW_S + 2 * 86_400, i64::MAX] {
            assert_eq!(
                v.verify(&token(NEW, too_far), NOW_MS),
                Err(TwitchJwtError::Invalid("exp too far ahead")),
                "{too_far}"
            );
        }
        let mut c = claims(0);
        c["exp"] = json!(u64::MAX);
        assert_eq!(
            v.verify(&signed(NEW, &c), NOW_MS),
            Err(TwitchJwtError::Invalid("exp too far ahead"))
        );
        c["exp"] = json!(1e300);
        assert_eq!(
            v.verify(&signed(NEW, &c), NOW_MS),
            Err(TwitchJwtError::Invalid("exp too far ahead"))
        );
        for malformed in [json!("tomorrow"), json!(null), json!(-5), json!({})] {
            c["exp"] = malformed.clone();
            assert_eq!(
                v.verify(&signed(NEW, &c), NOW_MS),
                Err(TwitchJwtError::Invalid("malformed exp")),
                "{malformed}"
            );
        }
        c.as_object_mut().unwrap().remove("exp");
        assert_eq!(
            v.verify(&signed(NEW, &c), NOW_MS),
            Err(TwitchJwtError::Invalid("missing exp"))
        );
    }
}
