//! The JSON of the admin API. Times are RFC 3339 UTC, as in the dashboard contract.

use serde::{Deserialize, Serialize};
use tachigo_engine::User;

use crate::common::timestamps::Iso;

/// `GET /users?email=<prefix>&limit=<n>`.
#[derive(Debug, Deserialize)]
pub struct FindQuery {
    #[serde(default)]
    pub email: String,
    pub limit: Option<usize>,
}

/// `PUT /users/{id}/roles`.
#[derive(Debug, Deserialize)]
pub struct RolesBody {
    pub roles: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct AccountView {
    pub provider: String,
    pub subject: String,
    pub linked_at: Iso,
}

/// A user as an operator sees it (never the password hash, only whether there is one).
#[derive(Debug, Serialize)]
pub struct AdminUserView {
    pub id: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub name: Option<String>,
    pub roles: Vec<String>,
    pub has_password: bool,
    pub accounts: Vec<AccountView>,
    pub created_at: Iso,
    pub updated_at: Iso,
}

impl From<User> for AdminUserView {
    fn from(u: User) -> AdminUserView {
        AdminUserView {
            has_password: u.has_password,
            accounts: u
                .accounts
                .into_iter()
                .map(|a| AccountView {
                    provider: a.provider,
                    subject: a.subject,
                    linked_at: Iso(a.linked_at),
                })
                .collect(),
            created_at: Iso(u.created_at),
            updated_at: Iso(u.updated_at),
            id: u.id,
            email: u.email,
            email_verified: u.email_verified,
            name: u.name,
            roles: u.roles,
        }
    }
}
