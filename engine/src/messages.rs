//! The requests a [`UserActor`](crate::user_actor::UserActor) answers, and their
//! replies. Both are plain data (serde), so the same request reaches the
//! user's actor on this node or, in a cluster, on the node that owns the user
//! ([`crate::cluster`]); [`UserMsg`] wraps one with its reply port.

use ractor::RpcReplyPort;
use tachigo_storage::{LinkedAccount, ProviderTokensRecord, TokenHash, UserRecord};

use crate::model::{Session, Surface, UnixMillis, User};
use crate::EngineError;

/// Where and how a new session starts.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct NewSession {
    pub surface: Surface,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
    /// Free-form context kept with the session (e.g. a Twitch channel id).
    pub context: Option<String>,
}

/// A session that was just created. `token` is the opaque refresh token
/// (dashboard) or session cookie (web); extension sessions have none.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct CreatedSession {
    pub session: Session,
    pub user: User,
    pub token: Option<String>,
}

/// The result of presenting a refresh token.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Rotated {
    pub refresh_token: String,
    pub session: Session,
    pub user: User,
    /// True when this answered a grace-window replay instead of rotating.
    pub grace: bool,
}

/// A session found live, with its user.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AppClient {
    pub id: String,
    /// The registered name; the id when the client is no longer registered.
    pub name: String,
}

/// Whose refresh token a presentation claims to be. A token of another
/// surface or client is answered as unknown and changes nothing, so a
/// dashboard token is no good at `/oauth2/token` and one client's token is no
/// good to another.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub enum RevokeScope {
    One(String),
    All,
    AllExcept(String),
}

/// A change to a user's record (serializable, for messages between nodes).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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

/// What an actor is asked. Each variant reads as a request.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) enum UserRequest {
    /// The user's record (the engine converts it to [`User`] for replies;
    /// the password check reads its hash).
    GetUser,
    /// `app_idle_ttl_ms`: set for an OAuth 2.1 client's session (surface
    /// `App`), whose refresh family keeps the client's idle lifetime.
    CreateSession {
        new: NewSession,
        app_idle_ttl_ms: Option<i64>,
    },
    Rotate {
        session_id: String,
        presented: TokenHash,
        holder: RefreshHolder,
    },
    /// The session of a refresh token that is its family's current one,
    /// without rotating: for introspection.
    InspectRefresh {
        session_id: String,
        presented: TokenHash,
        holder: RefreshHolder,
    },
    /// `token`: the cookie's hash for web sessions; `None` when a signed access
    /// token already proved the caller and only liveness is asked.
    ReadSession {
        session_id: String,
        token: Option<TokenHash>,
    },
    ListSessions,
    Revoke {
        scope: RevokeScope,
    },
    /// Ends the session a refresh token belongs to; `Ok(false)` when the
    /// token is not one of that family's (nothing changes), and
    /// [`EngineError::InvalidToken`] when it is, but of another holder
    /// (nothing changes either).
    Logout {
        session_id: String,
        presented: TokenHash,
        holder: RefreshHolder,
    },
    LinkAccount {
        account: LinkedAccount,
    },
    UnlinkAccount {
        provider: String,
        subject: Option<String>,
    },
    /// Stores sealed provider tokens for one of the user's linked accounts;
    /// `Ok(false)` (nothing written) when the user no longer has it.
    KeepProviderTokens {
        record: ProviderTokensRecord,
    },
    SetRoles {
        roles: Vec<String>,
    },
    SetPassword {
        password_hash: String,
    },
    /// A change to the user's record that needs no index.
    Update {
        change: UserChange,
    },
    /// Ends every session, deletes the user (record, email and accounts) and stops.
    Delete,
}

impl UserRequest {
    /// Whether answering changes nothing: such a request may be answered
    /// from memory, within the stale-read bound of a fenced actor.
    pub(crate) fn is_read(&self) -> bool {
        matches!(
            self,
            UserRequest::GetUser
                | UserRequest::InspectRefresh { .. }
                | UserRequest::ReadSession { .. }
                | UserRequest::ListSessions
        )
    }
}

/// An actor's answer, one variant per reply type.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub(crate) enum UserReply {
    User(UserRecord),
    Created(Result<CreatedSession, EngineError>),
    Rotated(Result<Rotated, EngineError>),
    Inspected(Result<Option<Session>, EngineError>),
    Read(Result<SessionRead, EngineError>),
    Sessions(Vec<SessionInfo>),
    SessionIds(Result<Vec<String>, EngineError>),
    Flag(Result<bool, EngineError>),
    Changed(Result<User, EngineError>),
    Done(Result<(), EngineError>),
}

impl UserReply {
    /// Whether the answer is that another node claimed the user: the actor
    /// that produced it passivates and the request is routed again.
    pub(crate) fn is_fenced(&self) -> bool {
        fn fenced<T>(r: &Result<T, EngineError>) -> bool {
            matches!(r, Err(EngineError::Fenced))
        }
        match self {
            UserReply::User(_) | UserReply::Sessions(_) => false,
            UserReply::Created(r) => fenced(r),
            UserReply::Rotated(r) => fenced(r),
            UserReply::Inspected(r) => fenced(r),
            UserReply::Read(r) => fenced(r),
            UserReply::SessionIds(r) => fenced(r),
            UserReply::Flag(r) => fenced(r),
            UserReply::Changed(r) => fenced(r),
            UserReply::Done(r) => fenced(r),
        }
    }
}

/// A reply type that one [`UserReply`] variant carries.
pub(crate) trait FromReply: Sized {
    fn from_reply(reply: UserReply) -> Option<Self>;
}

macro_rules! from_reply {
    ($($variant:ident => $ty:ty),* $(,)?) => {$(
        impl FromReply for $ty {
            fn from_reply(reply: UserReply) -> Option<Self> {
                match reply {
                    UserReply::$variant(value) => Some(value),
                    _ => None,
                }
            }
        }
    )*};
}

from_reply! {
    User => UserRecord,
    Created => Result<CreatedSession, EngineError>,
    Rotated => Result<Rotated, EngineError>,
    Inspected => Result<Option<Session>, EngineError>,
    Read => Result<SessionRead, EngineError>,
    Sessions => Vec<SessionInfo>,
    SessionIds => Result<Vec<String>, EngineError>,
    Flag => Result<bool, EngineError>,
    Changed => Result<User, EngineError>,
    Done => Result<(), EngineError>,
}

/// Every request is an `Ask`; boxing it would cost an allocation per
/// request to shrink the rare `Passivate`.
#[allow(clippy::large_enum_variant)]
pub(crate) enum UserMsg {
    /// A request and where its answer goes.
    Ask {
        request: UserRequest,
        reply: RpcReplyPort<UserReply>,
    },
    /// Sent by the router: stop if still idle (or unconditionally when `force`).
    Passivate { force: bool },
}

/// Local only: a [`UserMsg`] never crosses nodes (forwarded requests travel
/// as [`UserRequest`] inside the cluster's own envelope).
impl ractor::Message for UserMsg {}
