//! The JSON bodies of the dashboard contract, as the dashboard's axios client
//! sends and reads them. A field of the wrong type is a 400 `invalid_body`
//! naming it (see `common::body`). Unknown request fields are ignored, except
//! on the password life cycle's bodies (`verify-email`, `forgot-password`,
//! `reset-password`, `change-password`), which refuse them: a misspelt
//! optional field there (`endOtherSessions`) would otherwise silently do less
//! than the caller asked. Bodies that carry a password or a mailed token do
//! not implement `Debug`, so they cannot end up in a log line.
//!
//! Times are RFC 3339 strings in UTC with milliseconds
//! (`2025-01-31T12:00:00.000Z`); `expires_in` is whole seconds.

use serde::{Deserialize, Serialize};
use tachigo_engine::messages::SessionInfo;
use tachigo_engine::{Session, User};

use crate::common::listed_session::ListedSession;
use crate::common::timestamps::Iso;

/// `POST /register`.
#[derive(Debug, Deserialize)]
pub struct RegisterBody {
    pub email: String,
    pub password: String,
    #[serde(default)]
    pub name: Option<String>,
}

/// `POST /login`.
#[derive(Debug, Deserialize)]
pub struct LoginBody {
    pub email: String,
    pub password: String,
}

/// The optional body of `POST /refresh` and `POST /logout` (the transition fallback).
#[derive(Debug, Default, Deserialize)]
pub struct RefreshBody {
    #[serde(default)]
    pub refresh_token: Option<String>,
}

/// `POST /verify-email`: the token of a verification mail's link.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifyEmailBody {
    pub token: String,
}

/// `POST /forgot-password`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForgotPasswordBody {
    pub email: String,
}

/// `POST /reset-password`: the token of a reset mail's link and the new password.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResetPasswordBody {
    pub token: String,
    pub password: String,
}

/// `POST /change-password`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangePasswordBody {
    pub current_password: String,
    pub new_password: String,
    /// End every other session of the user (the caller's stays).
    #[serde(default)]
    pub end_other_sessions: bool,
}

/// The user as the dashboard sees it.
#[derive(Debug, Serialize)]
pub struct UserView {
    pub id: String,
    pub email: Option<String>,
    pub name: Option<String>,
    pub roles: Vec<String>,
}

impl From<User> for UserView {
    fn from(user: User) -> UserView {
        UserView {
            id: user.id,
            email: user.email,
            name: user.name,
            roles: user.roles,
        }
    }
}

/// 201 of `POST /register`.
#[derive(Debug, Serialize)]
pub struct RegisterReply {
    pub user: UserView,
}

/// 200 of `POST /verify-email`, `/reset-password` and `/change-password`.
#[derive(Debug, Serialize)]
pub struct UserReply {
    pub user: UserView,
}

/// 202 of `POST /forgot-password` and `/send-verification-email`: `{}`, the
/// same whatever happened behind it.
#[derive(Debug, Serialize)]
pub struct AcceptedReply {}

impl AcceptedReply {
    /// The whole 202 response.
    pub fn response() -> warp::reply::Response {
        use warp::Reply;
        warp::reply::with_status(
            warp::reply::json(&AcceptedReply {}),
            warp::http::StatusCode::ACCEPTED,
        )
        .into_response()
    }
}

/// 200 of `POST /login`.
#[derive(Debug, Serialize)]
pub struct LoginReply {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    pub user: UserView,
}

/// 200 of `POST /refresh`. `refresh_token` only for a caller that sent its token
/// in the body: a cookie caller's token never appears in a body.
#[derive(Debug, Serialize)]
pub struct RefreshReply {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
}

/// The session of `GET /me`.
#[derive(Debug, Serialize)]
pub struct SessionView {
    pub id: String,
    pub created_at: Iso,
    pub expires_at: Iso,
}

impl From<&Session> for SessionView {
    fn from(session: &Session) -> SessionView {
        SessionView {
            id: session.id.clone(),
            created_at: Iso(session.created_at),
            expires_at: Iso(session.expires_at),
        }
    }
}

/// 200 of `GET /me`.
#[derive(Debug, Serialize)]
pub struct MeReply {
    pub user: UserView,
    pub session: SessionView,
}

/// One item of `GET /sessions`.
#[derive(Debug, Serialize)]
pub struct SessionItem {
    #[serde(flatten)]
    pub session: ListedSession,
    /// True for the session of the access token that asked.
    pub current: bool,
}

impl SessionItem {
    pub fn new(info: SessionInfo, current_session_id: &str) -> SessionItem {
        SessionItem {
            current: info.id == current_session_id,
            session: info.into(),
        }
    }
}
