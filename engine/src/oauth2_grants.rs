//! The grants of the OAuth 2.1 server before they become sessions:
//! authorization codes (single use, bound to client, redirect URI, PKCE
//! challenge and user) and device grants (RFC 8628: a device code the client
//! polls with, a short user code the user types on another screen).
//!
//! Grants are stored (so a restart loses none) under the SHA-256 of their
//! code and changed only by compare-and-swap, so of two racing redemptions
//! exactly one makes a session. A code redeemed a second time revokes the
//! session the first redemption made (RFC 6749 §4.1.2, OAuth 2.1 §4.1.3).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rand::Rng;
use sha2::{Digest, Sha256};
use tachigo_storage::{GrantPut, OAuth2GrantKind, OAuth2GrantRecord, OAuth2GrantStatus, TokenHash};

use crate::app_session::AppSessionStart;
use crate::messages::{CreatedSession, RevokeScope};
use crate::model::UnixMillis;
use crate::opaque_token::{self, hash_secret};
use crate::{Engine, EngineError};

/// Why a grant could not be issued, decided or redeemed, in RFC 6749 / 8628 terms.
#[derive(Debug)]
pub enum GrantError {
    /// Unknown, expired, already used, or bound to something else.
    InvalidGrant(&'static str),
    /// Device grant: the user has not decided yet.
    AuthorizationPending,
    /// Device grant: polled sooner than the interval allows (which grew).
    SlowDown,
    /// Device grant: the user said no.
    AccessDenied,
    /// Device grant: its time ran out.
    ExpiredToken,
    /// Too many grants stored at once.
    Full,
    Engine(EngineError),
}

impl From<EngineError> for GrantError {
    fn from(e: EngineError) -> GrantError {
        GrantError::Engine(e)
    }
}

impl From<tachigo_storage::StorageError> for GrantError {
    fn from(e: tachigo_storage::StorageError) -> GrantError {
        GrantError::Engine(e.into())
    }
}

/// What a signed-in user's authorization request asks a code for.
#[derive(Debug, Clone)]
pub struct CodeRequest {
    pub client_id: String,
    pub redirect_uri: String,
    /// The PKCE S256 challenge (43 base64url characters).
    pub code_challenge: String,
    pub scope: String,
    pub nonce: Option<String>,
    pub user_id: String,
    pub auth_time: UnixMillis,
    pub ttl_ms: i64,
}

/// What a redeemed grant granted, beside its session.
#[derive(Debug, Clone)]
pub struct Granted {
    pub session: CreatedSession,
    pub scope: String,
    pub nonce: Option<String>,
    pub auth_time: UnixMillis,
}

/// A started device grant: the codes to hand to the client.
#[derive(Debug, Clone)]
pub struct DeviceGrantStarted {
    pub device_code: String,
    /// As shown to people: `XXXX-XXXX`.
    pub user_code: String,
}

/// A device grant as the approval page shows it.
#[derive(Debug, Clone)]
pub struct DeviceGrantView {
    pub client_id: String,
    pub scope: String,
}

/// The alphabet of user codes: consonants without look-alikes (RFC 8628 §6.1).
const USER_CODE_ALPHABET: &[u8] = b"BCDFGHJKLMNPQRSTVWXZ";
const USER_CODE_LEN: usize = 8;

/// A user code as typed, reduced to its 8 letters; `None` when it cannot be one.
pub fn normalize_user_code(input: &str) -> Option<String> {
    if input.len() > 32 {
        return None;
    }
    let letters: String = input
        .chars()
        .filter(|c| *c != '-' && !c.is_whitespace())
        .map(|c| c.to_ascii_uppercase())
        .collect();
    (letters.len() == USER_CODE_LEN && letters.bytes().all(|b| USER_CODE_ALPHABET.contains(&b)))
        .then_some(letters)
}

fn new_user_code() -> String {
    let mut rng = rand::rng();
    (0..USER_CODE_LEN)
        .map(|_| USER_CODE_ALPHABET[rng.random_range(0..USER_CODE_ALPHABET.len())] as char)
        .collect()
}

fn display_user_code(letters: &str) -> String {
    format!("{}-{}", &letters[..4], &letters[4..])
}

fn user_code_key(letters: &str) -> TokenHash {
    hash_secret(format!("user-code:{letters}").as_bytes())
}

/// Whether `verifier` is a PKCE verifier (RFC 7636 §4.1) whose S256 is `challenge`.
pub fn pkce_matches(verifier: &str, challenge: &str) -> bool {
    let well_formed = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
    if !well_formed {
        return false;
    }
    let digest = Sha256::digest(verifier.as_bytes());
    let computed = URL_SAFE_NO_PAD.encode(digest);
    opaque_token::hashes_equal(
        &hash_secret(computed.as_bytes()),
        &hash_secret(challenge.as_bytes()),
    )
}

impl Engine {
    /// Issues an authorization code for a signed-in user; the code itself is
    /// returned once and only its hash is stored.
    pub async fn issue_authorization_code(
        &self,
        request: CodeRequest,
    ) -> Result<String, GrantError> {
        let now = self.now();
        let code = opaque_token::random_urlsafe_256();
        let record = OAuth2GrantRecord {
            kind: OAuth2GrantKind::AuthorizationCode,
            client_id: request.client_id,
            scope: request.scope,
            redirect_uri: Some(request.redirect_uri),
            code_challenge: Some(request.code_challenge),
            nonce: request.nonce,
            user_id: Some(request.user_id),
            auth_time: Some(request.auth_time),
            status: OAuth2GrantStatus::Pending,
            interval_secs: 0,
            last_polled_at: None,
            created_at: now,
            expires_at: now + request.ttl_ms,
        };
        let max = self.shared.options.max_pending_oauth2_grants;
        let key = hash_secret(code.as_bytes());
        match self
            .shared
            .store
            .put_oauth2_grant(&key, &record, None, max)
            .await?
        {
            GrantPut::Stored => {
                metrics::counter!("tachigo_oauth2_grants_issued_total", "kind" => "code")
                    .increment(1);
                Ok(code)
            }
            GrantPut::Full | GrantPut::UserCodeTaken => Err(GrantError::Full),
        }
    }

    /// Redeems an authorization code (`grant_type=authorization_code`). Every
    /// binding must match, else [`GrantError::InvalidGrant`] and the code
    /// stays as it was for its rightful holder. A second redemption fails and
    /// ends the session the first one made.
    pub async fn redeem_authorization_code(
        &self,
        code: &str,
        redirect_uri: &str,
        code_verifier: &str,
        mut start: AppSessionStart,
    ) -> Result<Granted, GrantError> {
        let store = &self.shared.store;
        let key = hash_secret(code.as_bytes());
        let Some(grant) = store.oauth2_grant(&key).await? else {
            return Err(GrantError::InvalidGrant("the code is unknown or expired"));
        };
        let now = self.now();
        if grant.kind != OAuth2GrantKind::AuthorizationCode
            || grant.client_id != start.client_id
            || now >= grant.expires_at
        {
            return Err(GrantError::InvalidGrant("the code is unknown or expired"));
        }
        match &grant.status {
            OAuth2GrantStatus::Pending => {}
            _ => return Err(self.replayed_code(&key, grant).await),
        }
        if grant.redirect_uri.as_deref() != Some(redirect_uri) {
            return Err(GrantError::InvalidGrant(
                "redirect_uri differs from the authorization request's",
            ));
        }
        let challenge = grant.code_challenge.as_deref().unwrap_or("");
        if !pkce_matches(code_verifier, challenge) {
            return Err(GrantError::InvalidGrant("the code_verifier does not match"));
        }
        let mut claimed = grant.clone();
        claimed.status = OAuth2GrantStatus::Redeemed { session_id: None };
        if !store.replace_oauth2_grant(&key, &grant, &claimed).await? {
            // Another redemption won the race: this one is the replay.
            let current = store.oauth2_grant(&key).await?;
            return Err(match current {
                Some(current) => self.replayed_code(&key, current).await,
                None => GrantError::InvalidGrant("the code is unknown or expired"),
            });
        }
        let user_id = grant.user_id.clone().unwrap_or_default();
        let scope = grant.scope.clone();
        start.scope = scope.clone();
        let session = self
            .finish_redemption(&key, &claimed, &user_id, start)
            .await?;
        Ok(Granted {
            session,
            scope,
            nonce: grant.nonce,
            auth_time: grant.auth_time.unwrap_or(now),
        })
    }

    /// Makes the session of a claimed grant and records it with the grant;
    /// when a replay marked the grant meanwhile, the session ends again.
    async fn finish_redemption(
        &self,
        key: &TokenHash,
        claimed: &OAuth2GrantRecord,
        user_id: &str,
        start: AppSessionStart,
    ) -> Result<CreatedSession, GrantError> {
        let created = match self.create_app_session(user_id, start).await {
            Ok(created) => created,
            Err(EngineError::UserNotFound) => {
                return Err(GrantError::InvalidGrant("the user no longer exists"))
            }
            Err(e) => return Err(e.into()),
        };
        let mut recorded = claimed.clone();
        recorded.status = OAuth2GrantStatus::Redeemed {
            session_id: Some(created.session.id.clone()),
        };
        let store = &self.shared.store;
        if !store.replace_oauth2_grant(key, claimed, &recorded).await? {
            self.end_replayed_session(user_id, &created.session.id)
                .await;
            return Err(GrantError::InvalidGrant("the code was used twice"));
        }
        let kind = match claimed.kind {
            OAuth2GrantKind::AuthorizationCode => "authorization_code",
            OAuth2GrantKind::Device => "device_code",
        };
        metrics::counter!("tachigo_oauth2_grants_redeemed_total", "grant" => kind).increment(1);
        Ok(created)
    }

    /// A second presentation of a redeemed code: the session the first made
    /// ends (or, while it is being made, the grant is marked so its maker
    /// ends it), and the answer is `invalid_grant`.
    async fn replayed_code(&self, key: &TokenHash, grant: OAuth2GrantRecord) -> GrantError {
        metrics::counter!("tachigo_oauth2_code_replays_total").increment(1);
        let user_id = grant.user_id.clone().unwrap_or_default();
        match &grant.status {
            OAuth2GrantStatus::Redeemed {
                session_id: Some(session_id),
            } => {
                self.end_replayed_session(&user_id, session_id).await;
            }
            OAuth2GrantStatus::Redeemed { session_id: None } => {
                let mut marked = grant.clone();
                marked.status = OAuth2GrantStatus::Replayed;
                if let Ok(false) = self
                    .shared
                    .store
                    .replace_oauth2_grant(key, &grant, &marked)
                    .await
                {
                    // The first redemption recorded its session meanwhile.
                    if let Ok(Some(OAuth2GrantRecord {
                        status:
                            OAuth2GrantStatus::Redeemed {
                                session_id: Some(session_id),
                            },
                        ..
                    })) = self.shared.store.oauth2_grant(key).await
                    {
                        self.end_replayed_session(&user_id, &session_id).await;
                    }
                }
            }
            _ => {}
        }
        GrantError::InvalidGrant("the code was already used")
    }

    async fn end_replayed_session(&self, user_id: &str, session_id: &str) {
        match self
            .revoke_sessions(user_id, RevokeScope::One(session_id.to_string()))
            .await
        {
            Ok(_) | Err(EngineError::SessionNotFound) | Err(EngineError::UserNotFound) => {}
            Err(e) => {
                tracing::warn!(error = %e, session_id, "ending a replayed code's session failed")
            }
        }
        self.audit(
            "oauth2_code_replayed",
            Some(user_id),
            Some(session_id),
            "authorization code presented twice; its session was revoked",
        )
        .await;
    }

    // ----- device grants -----

    /// Starts a device grant for `client_id`.
    pub async fn start_device_grant(
        &self,
        client_id: &str,
        scope: &str,
        ttl_ms: i64,
        interval_secs: u32,
    ) -> Result<DeviceGrantStarted, GrantError> {
        let now = self.now();
        let device_code = opaque_token::random_urlsafe_256();
        let key = hash_secret(device_code.as_bytes());
        let record = OAuth2GrantRecord {
            kind: OAuth2GrantKind::Device,
            client_id: client_id.to_string(),
            scope: scope.to_string(),
            redirect_uri: None,
            code_challenge: None,
            nonce: None,
            user_id: None,
            auth_time: None,
            status: OAuth2GrantStatus::Pending,
            interval_secs,
            last_polled_at: None,
            created_at: now,
            expires_at: now + ttl_ms,
        };
        let max = self.shared.options.max_pending_oauth2_grants;
        // 20^8 codes: a collision with a live one is rare; draw again if so.
        for _ in 0..8 {
            let letters = new_user_code();
            match self
                .shared
                .store
                .put_oauth2_grant(&key, &record, Some(&user_code_key(&letters)), max)
                .await?
            {
                GrantPut::Stored => {
                    metrics::counter!("tachigo_oauth2_grants_issued_total", "kind" => "device")
                        .increment(1);
                    return Ok(DeviceGrantStarted {
                        device_code,
                        user_code: display_user_code(&letters),
                    });
                }
                GrantPut::UserCodeTaken => continue,
                GrantPut::Full => return Err(GrantError::Full),
            }
        }
        Err(GrantError::Full)
    }

    /// The pending device grant a user code names, for the approval page;
    /// `None` when it is unknown, expired or already decided.
    pub async fn pending_device_grant(
        &self,
        user_code: &str,
    ) -> Result<Option<DeviceGrantView>, EngineError> {
        let Some(letters) = normalize_user_code(user_code) else {
            return Ok(None);
        };
        let found = self
            .shared
            .store
            .oauth2_grant_by_user_code(&user_code_key(&letters))
            .await?;
        Ok(found
            .filter(|(_, g)| {
                g.kind == OAuth2GrantKind::Device
                    && g.status == OAuth2GrantStatus::Pending
                    && self.now() < g.expires_at
            })
            .map(|(_, g)| DeviceGrantView {
                client_id: g.client_id,
                scope: g.scope,
            }))
    }

    /// The signed-in user's decision on a pending device grant.
    /// [`GrantError::InvalidGrant`] when the code names no pending grant.
    pub async fn decide_device_grant(
        &self,
        user_code: &str,
        user_id: &str,
        approve: bool,
    ) -> Result<DeviceGrantView, GrantError> {
        let unknown = GrantError::InvalidGrant("the code is unknown, expired or already used");
        let Some(letters) = normalize_user_code(user_code) else {
            return Err(unknown);
        };
        let store = &self.shared.store;
        let Some((key, grant)) = store
            .oauth2_grant_by_user_code(&user_code_key(&letters))
            .await?
        else {
            return Err(unknown);
        };
        let now = self.now();
        if grant.kind != OAuth2GrantKind::Device
            || grant.status != OAuth2GrantStatus::Pending
            || now >= grant.expires_at
        {
            return Err(unknown);
        }
        let mut decided = grant.clone();
        decided.user_id = Some(user_id.to_string());
        decided.auth_time = Some(now);
        decided.status = if approve {
            OAuth2GrantStatus::Approved
        } else {
            OAuth2GrantStatus::Denied
        };
        if !store.replace_oauth2_grant(&key, &grant, &decided).await? {
            return Err(unknown);
        }
        let outcome = if approve { "approved" } else { "denied" };
        metrics::counter!("tachigo_oauth2_device_decisions_total", "outcome" => outcome)
            .increment(1);
        self.audit(
            if approve {
                "oauth2_device_approved"
            } else {
                "oauth2_device_denied"
            },
            Some(user_id),
            None,
            &format!("client {}", grant.client_id),
        )
        .await;
        Ok(DeviceGrantView {
            client_id: grant.client_id,
            scope: grant.scope,
        })
    }

    /// A client's poll with its device code: tokens once approved, else what
    /// RFC 8628 §3.5 says to answer. Polling sooner than the interval after
    /// the previous poll is `slow_down` and adds 5 s to the interval.
    pub async fn poll_device_grant(
        &self,
        device_code: &str,
        mut start: AppSessionStart,
    ) -> Result<Granted, GrantError> {
        let store = &self.shared.store;
        let key = hash_secret(device_code.as_bytes());
        for _ in 0..4 {
            let Some(grant) = store.oauth2_grant(&key).await? else {
                return Err(GrantError::InvalidGrant(
                    "the device code is unknown or expired",
                ));
            };
            if grant.kind != OAuth2GrantKind::Device || grant.client_id != start.client_id {
                return Err(GrantError::InvalidGrant(
                    "the device code is unknown or expired",
                ));
            }
            let now = self.now();
            if now >= grant.expires_at {
                return Err(GrantError::ExpiredToken);
            }
            let too_soon = grant
                .last_polled_at
                .is_some_and(|at| now - at < i64::from(grant.interval_secs) * 1000);
            let mut next = grant.clone();
            next.last_polled_at = Some(now);
            if too_soon {
                next.interval_secs = grant.interval_secs.saturating_add(5).min(60);
            }
            match &grant.status {
                OAuth2GrantStatus::Pending | OAuth2GrantStatus::Denied => {
                    if !store.replace_oauth2_grant(&key, &grant, &next).await? {
                        continue;
                    }
                    return Err(if too_soon {
                        GrantError::SlowDown
                    } else if grant.status == OAuth2GrantStatus::Denied {
                        GrantError::AccessDenied
                    } else {
                        GrantError::AuthorizationPending
                    });
                }
                OAuth2GrantStatus::Approved => {
                    next.status = OAuth2GrantStatus::Redeemed { session_id: None };
                    if !store.replace_oauth2_grant(&key, &grant, &next).await? {
                        continue;
                    }
                    let user_id = grant.user_id.clone().unwrap_or_default();
                    let scope = grant.scope.clone();
                    start.scope = scope.clone();
                    let session = self.finish_redemption(&key, &next, &user_id, start).await?;
                    return Ok(Granted {
                        session,
                        scope,
                        nonce: None,
                        auth_time: grant.auth_time.unwrap_or(now),
                    });
                }
                OAuth2GrantStatus::Redeemed { .. } | OAuth2GrantStatus::Replayed => {
                    return Err(GrantError::InvalidGrant("the device code was already used"));
                }
            }
        }
        Err(GrantError::Engine(EngineError::Unavailable))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_codes_normalize_and_refuse_what_cannot_be_one() {
        assert_eq!(
            normalize_user_code("wdjb-mjht").as_deref(),
            Some("WDJBMJHT")
        );
        assert_eq!(
            normalize_user_code(" WDJB MJHT ").as_deref(),
            Some("WDJBMJHT")
        );
        assert_eq!(normalize_user_code("WDJB-MJH"), None);
        assert_eq!(normalize_user_code("AEIO-UAEI"), None);
        assert_eq!(normalize_user_code(&"B".repeat(40)), None);
        let code = new_user_code();
        assert_eq!(normalize_user_code(&display_user_code(&code)), Some(code));
    }

    #[test]
    fn pkce_s256_matches_rfc_7636_appendix_b() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(pkce_matches(verifier, challenge));
        assert!(!pkce_matches(
            verifier,
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cN"
        ));
        assert!(!pkce_matches("short", challenge));
        assert!(!pkce_matches(&format!("{verifier}!"), challenge));
    }
}
