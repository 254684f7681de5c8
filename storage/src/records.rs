//! The records kept in storage. They are plain data: the engine owns their rules.
//!
//! Times are [`UnixMillis`](crate::UnixMillis). Token material is only ever a
//! SHA-256 digest (`[u8; 32]`) or, for the tokens a provider issued, a
//! ciphertext the engine sealed ([`SealedSecret`]); no plaintext token is
//! stored anywhere.

use serde::{Deserialize, Serialize};

use crate::UnixMillis;

/// A SHA-256 digest of an opaque token's secret part.
pub type TokenHash = [u8; 32];

/// One person, whichever contract they signed in through.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRecord {
    pub id: String,
    /// Lower-cased; unique across users when present (see the email index).
    pub email: Option<String>,
    pub email_verified: bool,
    pub name: Option<String>,
    pub image: Option<String>,
    /// An argon2id PHC string; `None` for users who only sign in through providers.
    pub password_hash: Option<String>,
    pub roles: Vec<String>,
    pub accounts: Vec<LinkedAccount>,
    pub created_at: UnixMillis,
    pub updated_at: UnixMillis,
}

/// A provider identity linked to a user: (provider, subject) is unique across users.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkedAccount {
    pub provider: String,
    pub subject: String,
    pub email: Option<String>,
    pub linked_at: UnixMillis,
}

/// Which client contract a session belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Surface {
    Dashboard,
    Extension,
    Web,
    /// A client of the OAuth 2.1 server (`/oauth2/*`); its context names the client.
    App,
}

impl Surface {
    pub fn as_str(self) -> &'static str {
        match self {
            Surface::Dashboard => "dashboard",
            Surface::Extension => "extension",
            Surface::Web => "web",
            Surface::App => "app",
        }
    }
}

/// A live session. Revoked sessions are deleted; their refresh family stays as a tombstone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRecord {
    pub id: String,
    pub user_id: String,
    pub surface: Surface,
    /// Hash of the session cookie's secret (web sessions); dashboard sessions keep
    /// their refresh tokens in the family, extension sessions have no opaque token.
    pub token_hash: Option<TokenHash>,
    pub created_at: UnixMillis,
    /// When the expiry was last extended (sliding expiry).
    pub updated_at: UnixMillis,
    pub expires_at: UnixMillis,
    pub absolute_expires_at: UnixMillis,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
    /// Free-form context of the surface (e.g. the Twitch channel of an extension session).
    pub context: Option<String>,
}

/// A token retired by rotation, kept for the grace rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetiredToken {
    pub hash: TokenHash,
    pub retired_at: UnixMillis,
}

/// Why a refresh family stopped working.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FamilyRevocation {
    /// A retired token was presented outside the grace rule.
    Reuse,
    /// Logout, a revoke call or an operator revoked the session.
    Revoked,
}

/// The refresh-token family of one dashboard login (keyed by its session id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FamilyRecord {
    pub session_id: String,
    pub user_id: String,
    pub current: TokenHash,
    pub generation: u32,
    pub previous: Option<RetiredToken>,
    pub revoked: Option<FamilyRevocation>,
    pub last_rotated_at: UnixMillis,
    pub idle_expires_at: UnixMillis,
    pub absolute_expires_at: UnixMillis,
}

/// A pending OAuth authorization, kept ten minutes and taken exactly once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OAuthStateRecord {
    pub provider: String,
    pub pkce_verifier: String,
    pub nonce: Option<String>,
    /// Hash of the state cookie's value: the callback must come from the same browser.
    pub binding_hash: TokenHash,
    pub callback_url: String,
    pub error_callback_url: String,
    pub new_user_callback_url: Option<String>,
    /// Set when the flow links a provider to an already signed-in user.
    pub link_user_id: Option<String>,
    /// The session that started the link flow: it must still be live at the
    /// callback. Kept by the store in a tree of its own (`oauth_link_sessions`),
    /// not in this record, so the record's layout is unchanged and a release
    /// without this field still reads it.
    #[serde(skip)]
    pub link_session_id: Option<String>,
    pub created_at: UnixMillis,
    pub expires_at: UnixMillis,
}

/// An Ed25519 signing key for tachigo JWTs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SigningKeyRecord {
    pub kid: String,
    /// PKCS#8 v2 DER of the private key.
    pub private_pkcs8: Vec<u8>,
    /// The raw 32-byte public key.
    pub public_key: Vec<u8>,
    /// When the key starts signing. A rotated-in key is stored ahead of this
    /// time: published, not signing yet (pending).
    pub created_at: UnixMillis,
    /// When a newer key takes (or took) over; the public half stays published
    /// until every token it signed has expired.
    pub retired_at: Option<UnixMillis>,
}

/// One security event in the append-only audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    pub at: UnixMillis,
    /// A stable snake_case name such as `refresh_reuse_detected`.
    pub kind: String,
    pub user_id: Option<String>,
    pub session_id: Option<String>,
    pub ip: Option<String>,
    pub detail: String,
}

/// What a mailed token lets its holder do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EmailTokenPurpose {
    /// Proves the holder reads the mailbox: marks the email verified.
    VerifyEmail,
    /// Sets a new password without the old one.
    ResetPassword,
}

/// A single-use token sent by mail, keyed by the SHA-256 of its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmailTokenRecord {
    pub purpose: EmailTokenPurpose,
    pub user_id: String,
    /// The address the mail went to: the token is void once the user's email differs.
    pub email: String,
    /// A digest of the user's password hash when the token was issued (or of
    /// nothing): a reset token is void once the password changed since.
    pub password_stamp: TokenHash,
    pub created_at: UnixMillis,
    pub expires_at: UnixMillis,
}

/// One mail waiting for delivery. It is written before the request that
/// caused it is answered and removed once the mail server took it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxMailRecord {
    /// Sorts by creation: `<created_at as 16 hex digits>-<random>`.
    pub id: String,
    pub recipient: String,
    pub subject: String,
    pub text_body: String,
    pub html_body: String,
    /// What the mail is for (`verify_email`, `reset_password`), for metrics and logs.
    pub kind: String,
    pub created_at: UnixMillis,
    pub attempts: u32,
    pub next_attempt_at: UnixMillis,
    pub last_error: Option<String>,
}

/// What an OAuth 2.1 grant waiting to be redeemed is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum OAuth2GrantKind {
    /// An authorization code (60 s), issued to a signed-in user.
    AuthorizationCode,
    /// A device authorization (RFC 8628): the user approves it on another screen.
    Device,
}

/// Where an OAuth 2.1 grant stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum OAuth2GrantStatus {
    /// Issued (a code) or waiting for the user's decision (a device grant).
    Pending,
    /// The user approved a device grant; the client's next poll gets tokens.
    Approved,
    /// The user denied a device grant.
    Denied,
    /// Redeemed once: the session that redemption made, once it exists.
    Redeemed { session_id: Option<String> },
    /// Redeemed a second time before the first redemption recorded its
    /// session: that redemption must end the session it makes.
    Replayed,
}

/// An authorization code or a device grant of the OAuth 2.1 server, keyed by
/// the SHA-256 of the code (or device code), kept until it expires.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OAuth2GrantRecord {
    pub kind: OAuth2GrantKind,
    pub client_id: String,
    /// The granted scopes, space-separated.
    pub scope: String,
    /// The exact redirect URI the code was issued for (codes only).
    pub redirect_uri: Option<String>,
    /// The PKCE S256 challenge (codes only).
    pub code_challenge: Option<String>,
    pub nonce: Option<String>,
    /// The user: set when a code is issued, or when a device grant is approved.
    pub user_id: Option<String>,
    /// When the user last proved who they are (for `auth_time`).
    pub auth_time: Option<UnixMillis>,
    pub status: OAuth2GrantStatus,
    /// Device grants: the polling interval the client must keep, in seconds.
    pub interval_secs: u32,
    /// Device grants: when the client last polled.
    pub last_polled_at: Option<UnixMillis>,
    pub created_at: UnixMillis,
    pub expires_at: UnixMillis,
}

/// What storing a new grant found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantPut {
    Stored,
    /// `max_pending` grants are stored already: nothing was written.
    Full,
    /// Another live grant holds this user code: nothing was written.
    UserCodeTaken,
}

/// A secret sealed by the engine (AES-256-GCM): the storage never sees it in clear.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedSecret {
    /// Which key sealed it (a digest of the key, never the key).
    pub key_id: [u8; 8],
    /// The 96-bit nonce, fresh for every seal.
    pub nonce: [u8; 12],
    /// The ciphertext with its 16-byte tag.
    pub ciphertext: Vec<u8>,
}

/// The tokens a provider issued for a linked account, sealed. Kept by the
/// store beside the account (keyed by provider and subject) and removed with
/// it (unlink, user deletion).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderTokensRecord {
    pub user_id: String,
    pub provider: String,
    pub subject: String,
    pub access_token: SealedSecret,
    pub refresh_token: Option<SealedSecret>,
    pub id_token: Option<SealedSecret>,
    pub access_token_expires_at: Option<UnixMillis>,
    pub refresh_token_expires_at: Option<UnixMillis>,
    /// The scopes the provider granted (not secret).
    pub scopes: Vec<String>,
    pub updated_at: UnixMillis,
}
