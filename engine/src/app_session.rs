//! Sessions of OAuth 2.1 clients (surface `App`): a refresh family like a
//! dashboard login's, whose context names the client and the granted scope
//! (`"<client id> <scope> <scope>…"`), so that every session list can say
//! which client holds it and a token of one client is refused to another.

use crate::messages::{CreatedSession, NewSession, RefreshHolder, Rotated, UserRequest};
use crate::model::{Session, Surface};
use crate::opaque_token;
use crate::{Engine, EngineError};

/// The context an app session keeps: the client id, then the scopes.
pub fn context(client_id: &str, scope: &str) -> String {
    if scope.is_empty() {
        client_id.to_string()
    } else {
        format!("{client_id} {scope}")
    }
}

/// The client an app session's context names.
pub fn client_of(context: Option<&str>) -> Option<&str> {
    context?.split(' ').next().filter(|c| !c.is_empty())
}

/// The scopes an app session's context grants, space-separated.
pub fn scope_of(context: Option<&str>) -> &str {
    context
        .and_then(|c| c.split_once(' '))
        .map_or("", |(_, scope)| scope)
}

/// Where an app session starts.
#[derive(Debug, Clone)]
pub struct AppSessionStart {
    pub client_id: String,
    pub scope: String,
    pub refresh_idle_ttl_ms: i64,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
}

impl Engine {
    /// Starts a session of an OAuth 2.1 client for `user_id`, with the first
    /// refresh token of its family.
    pub async fn create_app_session(
        &self,
        user_id: &str,
        start: AppSessionStart,
    ) -> Result<CreatedSession, EngineError> {
        let new = NewSession {
            surface: Surface::App,
            user_agent: start.user_agent.clone(),
            ip: start.ip.clone(),
            context: Some(context(&start.client_id, &start.scope)),
        };
        let created = self
            .call::<Result<CreatedSession, EngineError>>(
                user_id,
                UserRequest::CreateSession {
                    new: new.clone(),
                    app_idle_ttl_ms: Some(start.refresh_idle_ttl_ms),
                },
            )
            .await??;
        self.shared
            .owners
            .insert(&created.session.id, &created.session.user_id);
        Ok(created)
    }

    /// Presents an OAuth 2.1 client's refresh token: rotation, grace replay or
    /// reuse detection exactly as on the dashboard. A token of another client
    /// (or of the dashboard) is [`EngineError::InvalidRefreshToken`] and
    /// changes nothing.
    pub async fn rotate_app_refresh_token(
        &self,
        token: &str,
        client_id: &str,
        refresh_idle_ttl_ms: i64,
    ) -> Result<Rotated, EngineError> {
        let parsed = opaque_token::parse(token).ok_or(EngineError::InvalidRefreshToken)?;
        let user_id = self
            .owner_of(parsed.session_id)
            .await?
            .ok_or(EngineError::InvalidRefreshToken)?;
        let holder = RefreshHolder::App {
            client_id: client_id.to_string(),
            idle_ttl_ms: refresh_idle_ttl_ms,
        };
        let rotated = self
            .call(
                &user_id,
                UserRequest::Rotate {
                    session_id: parsed.session_id.to_string(),
                    presented: parsed.hash,
                    holder: holder.clone(),
                },
            )
            .await?;
        match rotated {
            Err(EngineError::UserNotFound) => Err(EngineError::InvalidRefreshToken),
            other => other,
        }
    }

    /// Ends the session of a client's refresh token (RFC 7009). `Ok(false)`:
    /// not a live token of any session; [`EngineError::InvalidToken`]: a token
    /// of another client (nothing ends).
    pub async fn revoke_app_refresh_token(
        &self,
        token: &str,
        client_id: &str,
    ) -> Result<bool, EngineError> {
        let Some(parsed) = opaque_token::parse(token) else {
            return Ok(false);
        };
        let Some(user_id) = self.owner_of(parsed.session_id).await? else {
            return Ok(false);
        };
        let holder = RefreshHolder::App {
            client_id: client_id.to_string(),
            idle_ttl_ms: 0,
        };
        let ended = self
            .call(
                &user_id,
                UserRequest::Logout {
                    session_id: parsed.session_id.to_string(),
                    presented: parsed.hash,
                    holder: holder.clone(),
                },
            )
            .await?;
        match ended {
            Err(EngineError::UserNotFound) => Ok(false),
            other => other,
        }
    }

    /// The live session of any client's refresh token that is its family's
    /// current one, without rotating it (introspection); `None` for anything else.
    pub async fn inspect_app_refresh_token(
        &self,
        token: &str,
    ) -> Result<Option<Session>, EngineError> {
        let Some(parsed) = opaque_token::parse(token) else {
            return Ok(None);
        };
        let Some(user_id) = self.owner_of(parsed.session_id).await? else {
            return Ok(None);
        };
        let holder = RefreshHolder::AnyApp;
        let inspected = self
            .call(
                &user_id,
                UserRequest::InspectRefresh {
                    session_id: parsed.session_id.to_string(),
                    presented: parsed.hash,
                    holder: holder.clone(),
                },
            )
            .await?;
        match inspected {
            Err(EngineError::UserNotFound) => Ok(None),
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_names_the_client_and_the_scope() {
        let c = context("cli", "openid email");
        assert_eq!(client_of(Some(&c)), Some("cli"));
        assert_eq!(scope_of(Some(&c)), "openid email");
        let bare = context("cli", "");
        assert_eq!(client_of(Some(&bare)), Some("cli"));
        assert_eq!(scope_of(Some(&bare)), "");
        assert_eq!(client_of(None), None);
        assert_eq!(client_of(Some("")), None);
    }
}
