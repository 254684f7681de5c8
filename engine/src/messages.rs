//! The messages a [`UserActor`](crate::user_actor::UserActor) answers, and their
//! replies. Each variant reads as a request; each carries its own reply port.

use ractor::RpcReplyPort;
use tachigo_storage::{LinkedAccount, TokenHash};

use crate::model::{Session, Surface, UnixMillis, User};
use crate::EngineError;

type Reply<T> = RpcReplyPort<Result<T, EngineError>>;

/// Where and how a new session starts.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub surface: Surface,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
    /// Free-form context kept with the session (e.g. a Twitch channel id).
    pub context: Option<String>,
}

/// A session that was just created. `token` is the opaque refresh token
/// (dashboard) or session cookie (web); extension sessions have none.
#[derive(Debug, Clone)]
pub struct CreatedSession {
    pub session: Session,
    pub user: User,
    pub token: Option<String>,
}

/// The result of presenting a refresh token.
#[derive(Debug, Clone)]
pub struct Rotated {
    pub refresh_token: String,
    pub session: Session,
    pub user: User,
    /// True when this answered a grace-window replay instead of rotating.
    pub grace: bool,
}

/// A session found live, with its user.
#[derive(Debug, Clone)]
pub struct SessionRead {
    pub session: Session,
    pub user: User,
    /// True when the read slid the expiry forward (the cookie should be re-set).
    pub renewed: bool,
}

/// A session read answered with its rendering
/// ([`Engine::session_by_token_rendered`](crate::Engine::session_by_token_rendered)).
#[derive(Debug, Clone)]
pub struct Rendered {
    pub body: bytes::Bytes,
    /// The session, when the read slid its expiry.
    pub renewed: Option<Session>,
}

/// A session as listed to its user or an operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    pub id: String,
    pub surface: Surface,
    pub created_at: UnixMillis,
    pub last_seen_at: UnixMillis,
    pub expires_at: UnixMillis,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
    pub context: Option<String>,
    /// For a session of an OAuth 2.1 client: which one.
    pub client: Option<AppClient>,
}

/// The OAuth 2.1 client a session belongs to, as session lists show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppClient {
    pub id: String,
    /// The registered name; the id when the client is no longer registered.
    pub name: String,
}

/// Whose refresh token a presentation claims to be. A token of another
/// surface or client is answered as unknown and changes nothing, so a
/// dashboard token is no good at `/oauth2/token` and one client's token is no
/// good to another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshHolder {
    Dashboard,
    /// A client of the OAuth 2.1 server, with the refresh idle lifetime it keeps.
    App {
        client_id: String,
        idle_ttl_ms: i64,
    },
    /// Any OAuth 2.1 client's (introspection by a service, which never rotates).
    AnyApp,
}

/// Which sessions a revocation ends.
#[derive(Debug, Clone)]
pub enum RevokeScope {
    One(String),
    All,
    AllExcept(String),
}

/// A change to a user's record (serializable, for messages between nodes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum UserChange {
    /// The holder of a mailed token proved they read `email`: verified, if it
    /// is still the user's address ([`EngineError::InvalidToken`] otherwise).
    MarkEmailVerified { email: String },
    /// A new password hash, checked against the stamp the reset token carried:
    /// [`EngineError::InvalidToken`] when the password changed since.
    ResetPassword {
        email: String,
        stamp: TokenHash,
        password_hash: String,
    },
    /// A verified provider sign-in claims an unverified address: the password
    /// (set by whoever registered it) goes, the address is verified.
    TakeOverEmail { email: String },
    /// A legacy or outdated hash replaced by the current scheme at login, only
    /// while the stored hash is still `old` ([`EngineError::InvalidToken`] otherwise).
    Rehash { old: String, password_hash: String },
    /// Profile fields; `None` leaves a field as it is, `Some(None)` clears it.
    SetProfile {
        name: Option<Option<String>>,
        image: Option<Option<String>>,
    },
}

pub(crate) enum UserMsg {
    /// The user's record (the engine converts it to [`User`] for replies;
    /// the password check reads its hash).
    GetUser(RpcReplyPort<tachigo_storage::UserRecord>),
    /// `app_idle_ttl_ms`: set for an OAuth 2.1 client's session (surface
    /// `App`), whose refresh family keeps the client's idle lifetime.
    CreateSession {
        new: NewSession,
        app_idle_ttl_ms: Option<i64>,
        reply: Reply<CreatedSession>,
    },
    Rotate {
        session_id: String,
        presented: TokenHash,
        holder: RefreshHolder,
        reply: Reply<Rotated>,
    },
    /// The session of a refresh token that is its family's current one,
    /// without rotating: for introspection.
    InspectRefresh {
        session_id: String,
        presented: TokenHash,
        holder: RefreshHolder,
        reply: Reply<Option<Session>>,
    },
    /// `token`: the cookie's hash for web sessions; `None` when a signed access
    /// token already proved the caller and only liveness is asked.
    ReadSession {
        session_id: String,
        token: Option<TokenHash>,
        reply: Reply<SessionRead>,
    },
    ListSessions(RpcReplyPort<Vec<SessionInfo>>),
    Revoke {
        scope: RevokeScope,
        reply: Reply<Vec<String>>,
    },
    /// Ends the session a refresh token belongs to; `Ok(false)` when the
    /// token is not one of that family's (nothing changes), and
    /// [`EngineError::InvalidToken`] when it is, but of another holder
    /// (nothing changes either).
    Logout {
        session_id: String,
        presented: TokenHash,
        holder: RefreshHolder,
        reply: Reply<bool>,
    },
    LinkAccount {
        account: LinkedAccount,
        reply: Reply<User>,
    },
    UnlinkAccount {
        provider: String,
        subject: Option<String>,
        reply: Reply<User>,
    },
    /// Stores sealed provider tokens for one of the user's linked accounts;
    /// `Ok(false)` (nothing written) when the user no longer has it.
    KeepProviderTokens {
        record: tachigo_storage::ProviderTokensRecord,
        reply: Reply<bool>,
    },
    SetRoles {
        roles: Vec<String>,
        reply: Reply<User>,
    },
    SetPassword {
        password_hash: String,
        reply: Reply<User>,
    },
    /// A change to the user's record that needs no index.
    Update {
        change: UserChange,
        reply: Reply<User>,
    },
    /// Ends every session, deletes the user (record, email and accounts) and stops.
    Delete {
        reply: Reply<()>,
    },
    /// Sent by the router: stop if still idle (or unconditionally when `force`).
    Passivate {
        force: bool,
    },
}
