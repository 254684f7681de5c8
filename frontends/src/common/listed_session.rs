//! A session as the dashboard and admin APIs list it: the same fields in both,
//! times as RFC 3339 UTC. No token or token hash is ever part of it.

use serde::Serialize;
use tachigo_engine::messages::SessionInfo;

use super::timestamps::Iso;

#[derive(Debug, Serialize)]
pub struct ListedSession {
    pub id: String,
    /// `dashboard`, `extension`, `web` or `app`.
    pub surface: &'static str,
    pub created_at: Iso,
    pub last_seen_at: Iso,
    pub expires_at: Iso,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
    /// Sessions of OAuth 2.1 clients (surface `app`): `{id, name}` of the client.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client: Option<ClientJson>,
}

/// The client of an `app` session.
#[derive(Debug, Serialize)]
pub struct ClientJson {
    pub id: String,
    pub name: String,
}

impl From<SessionInfo> for ListedSession {
    fn from(info: SessionInfo) -> ListedSession {
        ListedSession {
            id: info.id,
            surface: info.surface.as_str(),
            created_at: Iso(info.created_at),
            last_seen_at: Iso(info.last_seen_at),
            expires_at: Iso(info.expires_at),
            user_agent: info.user_agent,
            ip: info.ip,
            client: info.client.map(|c| ClientJson {
                id: c.id,
                name: c.name,
            }),
        }
    }
}
