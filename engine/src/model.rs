//! The engine's own view of users, sessions and the rest: what replies carry
//! and frontends read. Storage records stay below the engine; these types are
//! converted from them at the edge of every reply, so a record's layout can
//! change without touching a contract. No secret (password hash, token hash,
//! key material) is ever part of them.

use tachigo_storage as storage;

/// Milliseconds since the Unix epoch.
pub type UnixMillis = i64;

/// One person, whichever contract they signed in through.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct User {
    pub id: String,
    /// Lower-cased; unique across users when present.
    pub email: Option<String>,
    pub email_verified: bool,
    pub name: Option<String>,
    pub image: Option<String>,
    /// Whether the user can sign in with a password.
    pub has_password: bool,
    pub roles: Vec<String>,
    pub accounts: Vec<LinkedAccount>,
    pub created_at: UnixMillis,
    pub updated_at: UnixMillis,
}

/// A provider identity linked to a user.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LinkedAccount {
    pub provider: String,
    pub subject: String,
    pub email: Option<String>,
    pub linked_at: UnixMillis,
}

/// Which client contract a session belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Surface {
    Dashboard,
    Extension,
    Web,
    /// A client of the OAuth 2.1 server; the session's context is
    /// `<client id> <scope…>` ([`crate::app_session`]).
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

/// A session as a client sees it (a dashboard session's expiry is its
/// refresh family's).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Session {
    pub id: String,
    pub user_id: String,
    pub surface: Surface,
    pub created_at: UnixMillis,
    /// When the expiry was last extended.
    pub updated_at: UnixMillis,
    pub expires_at: UnixMillis,
    pub absolute_expires_at: UnixMillis,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
    /// Free-form context of the surface (e.g. the Twitch channel).
    pub context: Option<String>,
}

/// Why a refresh family stopped working.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revocation {
    /// A retired token was presented outside the grace rule.
    Reuse,
    /// Logout, a revoke call or an operator.
    Revoked,
}

/// The stored state of a dashboard login's refresh-token family, as an
/// operator (or a test) inspects it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshFamily {
    pub session_id: String,
    pub user_id: String,
    pub generation: u32,
    pub revoked: Option<Revocation>,
    pub last_rotated_at: UnixMillis,
    pub idle_expires_at: UnixMillis,
    pub absolute_expires_at: UnixMillis,
}

/// One entry of the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub at: UnixMillis,
    /// A stable snake_case name such as `refresh_reuse_detected`.
    pub kind: String,
    pub user_id: Option<String>,
    pub session_id: Option<String>,
    pub ip: Option<String>,
    pub detail: String,
}

/// A started provider authorization: what the callback needs to finish it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingAuthorization {
    pub provider: String,
    pub pkce_verifier: String,
    pub nonce: Option<String>,
    /// SHA-256 of the state cookie's value: the callback must come from the same browser.
    pub binding_hash: [u8; 32],
    pub callback_url: String,
    pub error_callback_url: String,
    pub new_user_callback_url: Option<String>,
    /// Set when the flow links a provider to an already signed-in user.
    pub link_user_id: Option<String>,
    /// The session that started a link flow; it must still be live at the callback.
    pub link_session_id: Option<String>,
    pub created_at: UnixMillis,
    pub expires_at: UnixMillis,
}

// ----- conversions at the storage edge (crate-private) -----

impl From<&storage::UserRecord> for User {
    fn from(u: &storage::UserRecord) -> User {
        User {
            id: u.id.clone(),
            email: u.email.clone(),
            email_verified: u.email_verified,
            name: u.name.clone(),
            image: u.image.clone(),
            has_password: u.password_hash.is_some(),
            roles: u.roles.clone(),
            accounts: u.accounts.iter().map(LinkedAccount::from).collect(),
            created_at: u.created_at,
            updated_at: u.updated_at,
        }
    }
}

impl From<&storage::LinkedAccount> for LinkedAccount {
    fn from(a: &storage::LinkedAccount) -> LinkedAccount {
        LinkedAccount {
            provider: a.provider.clone(),
            subject: a.subject.clone(),
            email: a.email.clone(),
            linked_at: a.linked_at,
        }
    }
}

impl From<storage::Surface> for Surface {
    fn from(s: storage::Surface) -> Surface {
        match s {
            storage::Surface::Dashboard => Surface::Dashboard,
            storage::Surface::Extension => Surface::Extension,
            storage::Surface::Web => Surface::Web,
            storage::Surface::App => Surface::App,
        }
    }
}

impl From<Surface> for storage::Surface {
    fn from(s: Surface) -> storage::Surface {
        match s {
            Surface::Dashboard => storage::Surface::Dashboard,
            Surface::Extension => storage::Surface::Extension,
            Surface::Web => storage::Surface::Web,
            Surface::App => storage::Surface::App,
        }
    }
}

impl From<&storage::SessionRecord> for Session {
    fn from(s: &storage::SessionRecord) -> Session {
        Session {
            id: s.id.clone(),
            user_id: s.user_id.clone(),
            surface: s.surface.into(),
            created_at: s.created_at,
            updated_at: s.updated_at,
            expires_at: s.expires_at,
            absolute_expires_at: s.absolute_expires_at,
            user_agent: s.user_agent.clone(),
            ip: s.ip.clone(),
            context: s.context.clone(),
        }
    }
}

impl From<storage::FamilyRevocation> for Revocation {
    fn from(r: storage::FamilyRevocation) -> Revocation {
        match r {
            storage::FamilyRevocation::Reuse => Revocation::Reuse,
            storage::FamilyRevocation::Revoked => Revocation::Revoked,
        }
    }
}

impl From<&storage::FamilyRecord> for RefreshFamily {
    fn from(f: &storage::FamilyRecord) -> RefreshFamily {
        RefreshFamily {
            session_id: f.session_id.clone(),
            user_id: f.user_id.clone(),
            generation: f.generation,
            revoked: f.revoked.map(Into::into),
            last_rotated_at: f.last_rotated_at,
            idle_expires_at: f.idle_expires_at,
            absolute_expires_at: f.absolute_expires_at,
        }
    }
}

impl From<storage::AuditEvent> for AuditEntry {
    fn from(e: storage::AuditEvent) -> AuditEntry {
        AuditEntry {
            at: e.at,
            kind: e.kind,
            user_id: e.user_id,
            session_id: e.session_id,
            ip: e.ip,
            detail: e.detail,
        }
    }
}

impl From<storage::OAuthStateRecord> for PendingAuthorization {
    fn from(r: storage::OAuthStateRecord) -> PendingAuthorization {
        PendingAuthorization {
            provider: r.provider,
            pkce_verifier: r.pkce_verifier,
            nonce: r.nonce,
            binding_hash: r.binding_hash,
            callback_url: r.callback_url,
            error_callback_url: r.error_callback_url,
            new_user_callback_url: r.new_user_callback_url,
            link_user_id: r.link_user_id,
            link_session_id: r.link_session_id,
            created_at: r.created_at,
            expires_at: r.expires_at,
        }
    }
}

impl From<&PendingAuthorization> for storage::OAuthStateRecord {
    fn from(p: &PendingAuthorization) -> storage::OAuthStateRecord {
        storage::OAuthStateRecord {
            provider: p.provider.clone(),
            pkce_verifier: p.pkce_verifier.clone(),
            nonce: p.nonce.clone(),
            binding_hash: p.binding_hash,
            callback_url: p.callback_url.clone(),
            error_callback_url: p.error_callback_url.clone(),
            new_user_callback_url: p.new_user_callback_url.clone(),
            link_user_id: p.link_user_id.clone(),
            link_session_id: p.link_session_id.clone(),
            created_at: p.created_at,
            expires_at: p.expires_at,
        }
    }
}
