//! The JSON shapes of the contract, spelled as Better Auth spells them
//! (camelCase, ISO 8601 UTC times with milliseconds), so its client SDK and
//! types read them unchanged. Bodies of requests are here too.

use serde::{Deserialize, Serialize};
use tachigo_engine::SessionInfo;
use tachigo_engine::{LinkedAccount, Session, User};

pub(crate) use crate::common::timestamps::Iso;

/// A session as Better Auth shapes it. Borrowed: get-session is the hot path.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SessionJson<'a> {
    pub id: &'a str,
    pub user_id: &'a str,
    pub expires_at: Iso,
    pub created_at: Iso,
    pub updated_at: Iso,
    pub ip_address: Option<&'a str>,
    pub user_agent: Option<&'a str>,
}

impl<'a> SessionJson<'a> {
    pub(crate) fn from_record(s: &'a Session) -> SessionJson<'a> {
        SessionJson {
            id: &s.id,
            user_id: &s.user_id,
            expires_at: Iso(s.expires_at),
            created_at: Iso(s.created_at),
            updated_at: Iso(s.updated_at),
            ip_address: s.ip.as_deref(),
            user_agent: s.user_agent.as_deref(),
        }
    }
}

/// Better Auth types `name` as a string: a user without one gets `""`.
/// `email` is `null` for users no provider gave a verified email.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct UserJson<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub email: Option<&'a str>,
    pub email_verified: bool,
    pub image: Option<&'a str>,
    pub created_at: Iso,
    pub updated_at: Iso,
    pub roles: &'a [String],
}

impl<'a> UserJson<'a> {
    pub(crate) fn from_record(u: &'a User) -> UserJson<'a> {
        UserJson {
            id: &u.id,
            name: u.name.as_deref().unwrap_or_default(),
            email: u.email.as_deref(),
            email_verified: u.email_verified,
            image: u.image.as_deref(),
            created_at: Iso(u.created_at),
            updated_at: Iso(u.updated_at),
            roles: &u.roles,
        }
    }
}

/// `GET /get-session` with a live session.
#[derive(Serialize)]
pub(crate) struct SessionAndUser<'a> {
    pub session: SessionJson<'a>,
    pub user: UserJson<'a>,
}

/// One entry of `GET /list-sessions`: Better Auth's session fields plus which
/// client made it and whether it is the caller's.
#[derive(Serialize)]
pub(crate) struct ListedSession<'a> {
    #[serde(flatten)]
    pub session: SessionJson<'a>,
    /// Better Auth's `token`, here the session's id: a handle that
    /// `revoke-session {token}` accepts and that authenticates nothing (the
    /// session's secret is never listed).
    pub token: &'a str,
    pub surface: &'static str,
    pub current: bool,
    /// Sessions of OAuth 2.1 clients: `{id, name}` of the client.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client: Option<crate::common::listed_session::ClientJson>,
}

impl<'a> ListedSession<'a> {
    pub(crate) fn new(
        info: &'a SessionInfo,
        user_id: &'a str,
        current_id: &str,
    ) -> ListedSession<'a> {
        ListedSession {
            token: &info.id,
            current: info.id == current_id,
            surface: info.surface.as_str(),
            client: info
                .client
                .as_ref()
                .map(|c| crate::common::listed_session::ClientJson {
                    id: c.id.clone(),
                    name: c.name.clone(),
                }),
            session: SessionJson {
                id: &info.id,
                user_id,
                expires_at: Iso(info.expires_at),
                created_at: Iso(info.created_at),
                updated_at: Iso(info.last_seen_at),
                ip_address: info.ip.as_deref(),
                user_agent: info.user_agent.as_deref(),
            },
        }
    }
}

/// The provider id Better Auth gives email-and-password sign-in.
pub(crate) const CREDENTIAL_PROVIDER: &str = "credential";

/// One entry of `GET /list-accounts`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AccountJson {
    /// `<providerId>:<accountId>`: accounts have no id of their own here.
    pub id: String,
    pub provider_id: String,
    pub account_id: String,
    pub user_id: String,
    pub created_at: Iso,
    pub updated_at: Iso,
    pub scopes: Vec<String>,
}

impl AccountJson {
    pub(crate) fn linked(a: &LinkedAccount, user_id: &str) -> AccountJson {
        AccountJson {
            id: format!("{}:{}", a.provider, a.subject),
            provider_id: a.provider.clone(),
            account_id: a.subject.clone(),
            user_id: user_id.to_string(),
            created_at: Iso(a.linked_at),
            updated_at: Iso(a.linked_at),
            scopes: Vec::new(),
        }
    }

    /// The password of a dashboard user, listed the way Better Auth lists it.
    pub(crate) fn credential(u: &User) -> AccountJson {
        AccountJson {
            id: format!("{CREDENTIAL_PROVIDER}:{}", u.id),
            provider_id: CREDENTIAL_PROVIDER.into(),
            account_id: u.id.clone(),
            user_id: u.id.clone(),
            created_at: Iso(u.created_at),
            updated_at: Iso(u.updated_at),
            scopes: Vec::new(),
        }
    }
}

/// `{url, redirect}` of `sign-in/social` and `link-social`.
#[derive(Serialize)]
pub(crate) struct RedirectJson {
    pub url: String,
    pub redirect: bool,
}

/// `{status: true}`, Better Auth's answer to a done change.
#[derive(Serialize)]
pub(crate) struct StatusJson {
    pub status: bool,
}

/// `POST /sign-in/social`. Unknown fields the Better Auth client may add are ignored.
#[derive(Deserialize, Default)]
pub(crate) struct SocialSignInBody {
    pub provider: String,
    #[serde(rename = "callbackURL", default)]
    pub callback_url: Option<String>,
    #[serde(rename = "errorCallbackURL", default)]
    pub error_callback_url: Option<String>,
    #[serde(rename = "newUserCallbackURL", default)]
    pub new_user_callback_url: Option<String>,
    #[serde(rename = "disableRedirect", default)]
    pub disable_redirect: Option<bool>,
    #[serde(default)]
    pub scopes: Option<Vec<String>>,
    /// Passed to the provider as OIDC `login_hint`.
    #[serde(rename = "loginHint", default)]
    pub login_hint: Option<String>,
    /// Sign-in with a client-obtained id_token: not supported by this server.
    #[serde(rename = "idToken", default)]
    pub id_token: Option<serde_json::Value>,
}

/// The query of `GET /sign-in/social/{provider}`.
#[derive(Deserialize, Default)]
pub(crate) struct SocialSignInQuery {
    #[serde(rename = "callbackURL", default)]
    pub callback_url: Option<String>,
    #[serde(rename = "errorCallbackURL", default)]
    pub error_callback_url: Option<String>,
    #[serde(rename = "newUserCallbackURL", default)]
    pub new_user_callback_url: Option<String>,
}

/// `POST /link-social`.
#[derive(Deserialize, Default)]
pub(crate) struct LinkSocialBody {
    pub provider: String,
    #[serde(rename = "callbackURL", default)]
    pub callback_url: Option<String>,
    #[serde(rename = "errorCallbackURL", default)]
    pub error_callback_url: Option<String>,
    #[serde(rename = "disableRedirect", default)]
    pub disable_redirect: Option<bool>,
    #[serde(default)]
    pub scopes: Option<Vec<String>>,
}

/// `POST /unlink-account`.
#[derive(Deserialize, Default)]
pub(crate) struct UnlinkAccountBody {
    #[serde(rename = "providerId")]
    pub provider_id: String,
    #[serde(rename = "accountId", default)]
    pub account_id: Option<String>,
}

/// `POST /revoke-session`: the session's `id` (as listed), or Better Auth's
/// `token` field carrying either a listed id or a session token.
#[derive(Deserialize, Default)]
pub(crate) struct RevokeSessionBody {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub token: Option<String>,
}

// ----- email and password (Better Auth's `emailAndPassword`) -----

/// `POST /sign-up/email`. Unknown fields are ignored, as Better Auth drops them.
#[derive(Deserialize)]
pub(crate) struct SignUpBody {
    pub name: String,
    pub email: String,
    pub password: String,
    #[serde(default)]
    pub image: Option<String>,
    /// Where the verification mail's link finally lands.
    #[serde(rename = "callbackURL", default)]
    pub callback_url: Option<String>,
    #[serde(rename = "rememberMe", default)]
    pub remember_me: Option<bool>,
}

/// `POST /sign-in/email`.
#[derive(Deserialize)]
pub(crate) struct SignInEmailBody {
    pub email: String,
    pub password: String,
    #[serde(rename = "callbackURL", default)]
    pub callback_url: Option<String>,
    #[serde(rename = "rememberMe", default)]
    pub remember_me: Option<bool>,
}

/// `POST /send-verification-email`.
#[derive(Deserialize)]
pub(crate) struct SendVerificationBody {
    pub email: String,
    #[serde(rename = "callbackURL", default)]
    pub callback_url: Option<String>,
}

/// `POST /request-password-reset`.
#[derive(Deserialize)]
pub(crate) struct RequestPasswordResetBody {
    pub email: String,
    /// The app's page that receives `?token=` (or `?error=`) from the mailed link.
    #[serde(rename = "redirectTo", default)]
    pub redirect_to: Option<String>,
}

/// `POST /reset-password`; the token may also come as `?token=`.
#[derive(Deserialize)]
pub(crate) struct ResetPasswordBody {
    #[serde(rename = "newPassword")]
    pub new_password: String,
    #[serde(default)]
    pub token: Option<String>,
}

/// `POST /change-password`.
#[derive(Deserialize)]
pub(crate) struct ChangePasswordBody {
    #[serde(rename = "newPassword")]
    pub new_password: String,
    #[serde(rename = "currentPassword")]
    pub current_password: String,
    #[serde(rename = "revokeOtherSessions", default)]
    pub revoke_other_sessions: Option<bool>,
}

/// `POST /delete-user` (the client sends `{}` at least).
#[derive(Deserialize)]
pub(crate) struct DeleteUserBody {
    #[serde(default)]
    pub password: Option<String>,
    /// Better Auth's mailed deletion token: not issued here, so never valid.
    #[serde(default)]
    pub token: Option<String>,
    #[serde(rename = "callbackURL", default)]
    pub callback_url: Option<String>,
}

/// `{token, user}` of `sign-up/email` and `change-password`. `token` is the
/// session's id, never its secret: the secret only travels in the HttpOnly
/// cookie (CONTRACTS.md §3); `revoke-session` accepts the id as `token`.
#[derive(Serialize)]
pub(crate) struct TokenAndUser<'a> {
    pub token: Option<&'a str>,
    pub user: UserJson<'a>,
}

/// `POST /sign-in/email`: Better Auth's `{redirect, token, url?, user}`; `url`
/// is left out when no `callbackURL` was given, as Better Auth leaves it out.
#[derive(Serialize)]
pub(crate) struct SignInEmailReply<'a> {
    pub redirect: bool,
    pub token: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<&'a str>,
    pub user: UserJson<'a>,
}

/// `{status: true, message}` of `request-password-reset`.
#[derive(Serialize)]
pub(crate) struct StatusMessageJson {
    pub status: bool,
    pub message: &'static str,
}

/// `{status: true, user: null}` of `verify-email` without a `callbackURL`.
#[derive(Serialize)]
pub(crate) struct VerifiedJson {
    pub status: bool,
    pub user: Option<()>,
}

/// `{success: true, message}` of `delete-user`.
#[derive(Serialize)]
pub(crate) struct SuccessMessageJson {
    pub success: bool,
    pub message: &'static str,
}

#[cfg(test)]
mod tests {
    use super::Iso;

    #[test]
    fn times_are_iso_8601_with_milliseconds() {
        assert_eq!(
            serde_json::to_string(&Iso(0)).unwrap(),
            "\"1970-01-01T00:00:00.000Z\""
        );
        assert_eq!(
            Iso(1_700_000_000_123).to_string(),
            "2023-11-14T22:13:20.123Z"
        );
    }
}
