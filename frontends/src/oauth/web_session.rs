//! Starting a web session for a user who just proved who they are with a
//! password (`sign-up/email`, `sign-in/email`, `change-password` with
//! `revokeOtherSessions`): the same web session and `tachigo.session_token`
//! cookie a social sign-in's callback makes ([`session_cookie::set`]).
//!
//! `rememberMe: false` (Better Auth's "don't remember me") makes the cookie a
//! browser-session cookie: the same attributes without `Max-Age`, so it is gone
//! when the browser closes. The session itself lives as any other; its context
//! says so ([`session_cookie::BROWSER_SESSION_CONTEXT`]), so a renewal of the
//! cookie keeps it without `Max-Age` too.

use http::HeaderValue;
use tachigo_engine::{NewSession, Session, Surface};

use super::session_cookie;
use super::wire::CREDENTIAL_PROVIDER;
use super::OAuth;
use crate::common::{ApiError, RequestContext};

/// A session just made: its record (the id is what JSON bodies name) and the
/// `Set-Cookie` carrying its token.
pub(crate) struct StartedSession {
    pub session: Session,
    pub cookie: HeaderValue,
}

pub(crate) async fn start(
    oauth: &OAuth,
    user_id: &str,
    context: &RequestContext,
    remember: bool,
) -> Result<StartedSession, ApiError> {
    let created = oauth
        .engine
        .create_session(
            user_id,
            NewSession {
                surface: Surface::Web,
                user_agent: context.user_agent(),
                ip: Some(context.client_ip.to_string()),
                context: Some(if remember {
                    CREDENTIAL_PROVIDER.to_string()
                } else {
                    session_cookie::BROWSER_SESSION_CONTEXT.to_string()
                }),
            },
        )
        .await?;
    let Some(token) = created.token.as_deref() else {
        tracing::error!("a web session was created without a cookie token");
        return Err(ApiError::internal());
    };
    let cookie = session_cookie::set(&oauth.cookies, token, &created.session);
    Ok(StartedSession {
        session: created.session,
        cookie,
    })
}
