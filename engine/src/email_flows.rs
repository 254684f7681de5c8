//! The password life cycle that runs through the mailbox: verification mails
//! and `verify_email`, forgot / reset password, change password, profile
//! updates and account deletion.
//!
//! Every mailed token is 256 random bits (base64url), stored only as its
//! SHA-256, single use, short-lived, and bound to the address it went to (and,
//! for a reset, to the password it replaces). Requests by address answer the
//! same whether or not the address exists, no sooner than `email.answer_floor`.

use tachigo_storage::{EmailTokenPurpose, EmailTokenRecord, UserRecord};

use crate::engine::normalize_email;
use crate::mail::MailKind;
use crate::messages::{RevokeScope, UserChange, UserRequest};
use crate::model::User;
use crate::user_actor::password_stamp;
use crate::{opaque_token, password, Engine, EngineError};

/// Builds the link a mail carries from its token (each contract has its own pages).
pub type MailLink<'a> = &'a (dyn Fn(&str) -> String + Sync);

/// Longest accepted display name and image URL.
const MAX_NAME_CHARS: usize = 256;
const MAX_IMAGE_BYTES: usize = 2048;

/// The bounds of a profile: a name of at most 256 characters (trimmed), a
/// picture that is an http(s) URL of at most 2048 bytes. Sign-up checks them
/// before the user exists, so a refused profile leaves nothing behind.
pub fn check_profile(name: Option<&str>, image: Option<&str>) -> Result<(), EngineError> {
    if name.is_some_and(|n| n.trim().chars().count() > MAX_NAME_CHARS) {
        return Err(EngineError::InvalidProfile {
            field: "name".into(),
            reason: "the name is longer than 256 characters".into(),
        });
    }
    if let Some(image) = image {
        let ok = image.len() <= MAX_IMAGE_BYTES
            && url::Url::parse(image).is_ok_and(|u| matches!(u.scheme(), "https" | "http"));
        if !ok {
            return Err(EngineError::InvalidProfile {
                field: "image".into(),
                reason: "the image must be an http(s) URL of at most 2048 bytes".into(),
            });
        }
    }
    Ok(())
}

fn token_hash(token: &str) -> Option<tachigo_storage::TokenHash> {
    let well_formed = token.len() == 43
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    well_formed.then(|| opaque_token::hash_secret(token.as_bytes()))
}

/// A token whose user was deleted since it was mailed is simply invalid.
fn user_gone_is_invalid_token(e: EngineError) -> EngineError {
    match e {
        EngineError::UserNotFound => EngineError::InvalidToken,
        other => other,
    }
}

impl Engine {
    /// Mails a verification link for the user's (unverified) address.
    pub async fn send_verification_email(
        &self,
        user_id: &str,
        link: MailLink<'_>,
    ) -> Result<(), EngineError> {
        let user = self.user_record(user_id).await?;
        let email = user.email.clone().ok_or(EngineError::NoEmail)?;
        if user.email_verified {
            return Err(EngineError::EmailAlreadyVerified);
        }
        self.mail_token(&user, MailKind::VerifyEmail, &email, link)
            .await
    }

    /// Mails a verification link to `email` if an unverified user has it;
    /// answers the same either way, no sooner than the answer floor.
    pub async fn resend_verification_email(
        &self,
        email: &str,
        link: MailLink<'_>,
    ) -> Result<(), EngineError> {
        self.with_answer_floor(async {
            let Some(user) = self.user_by_address(email).await? else {
                return Ok(());
            };
            match user.email.clone() {
                Some(address) if !user.email_verified => {
                    self.mail_token(&user, MailKind::VerifyEmail, &address, link)
                        .await
                }
                _ => Ok(()),
            }
        })
        .await
    }

    /// Redeems a verification token: the address it was sent to is verified.
    pub async fn verify_email(&self, token: &str) -> Result<User, EngineError> {
        let record = self
            .take_mail_token(token, EmailTokenPurpose::VerifyEmail)
            .await?;
        let user = self
            .update(
                &record.user_id,
                UserChange::MarkEmailVerified {
                    email: record.email.clone(),
                },
            )
            .await
            .map_err(user_gone_is_invalid_token)?;
        self.shared
            .audit("email_verified", Some(&user.id), None, "")
            .await;
        Ok(user)
    }

    /// Mails a reset link if a user has `email`; answers the same either way
    /// (no enumeration), no sooner than the answer floor (same timing).
    pub async fn request_password_reset(
        &self,
        email: &str,
        link: MailLink<'_>,
    ) -> Result<(), EngineError> {
        self.with_answer_floor(async {
            let Some(user) = self.user_by_address(email).await? else {
                return Ok(());
            };
            let Some(address) = user.email.clone() else {
                return Ok(());
            };
            self.mail_token(&user, MailKind::ResetPassword, &address, link)
                .await?;
            self.shared
                .audit("password_reset_requested", Some(&user.id), None, "")
                .await;
            Ok(())
        })
        .await
    }

    /// Redeems a reset token: sets the new password and ends every session
    /// and refresh family of the user.
    pub async fn reset_password(
        &self,
        token: &str,
        new_password: &str,
    ) -> Result<User, EngineError> {
        // Before the token is spent: a refused password leaves it usable.
        password::check_policy(new_password, None)?;
        let hash = token_hash(token).ok_or(EngineError::InvalidToken)?;
        let record = self
            .take_mail_token(token, EmailTokenPurpose::ResetPassword)
            .await?;
        // A refused password or a busy hashing queue leaves the link usable.
        let password_hash = match password::check_policy(new_password, Some(&record.email)) {
            Ok(()) => self.passwords.hash(new_password).await,
            Err(e) => Err(e),
        };
        let password_hash = match password_hash {
            Ok(hash) => hash,
            Err(e) => {
                self.shared.store.put_email_token(&hash, &record).await?;
                return Err(e);
            }
        };
        let user = self
            .update(
                &record.user_id,
                UserChange::ResetPassword {
                    email: record.email.clone(),
                    stamp: record.password_stamp,
                    password_hash,
                },
            )
            .await
            .map_err(user_gone_is_invalid_token)?;
        let ended = self.revoke_sessions(&user.id, RevokeScope::All).await?;
        self.shared
            .audit(
                "password_reset",
                Some(&user.id),
                None,
                &format!("{} sessions ended", ended.len()),
            )
            .await;
        Ok(user)
    }

    /// Changes a password given the current one; with `keep_session`, every
    /// other session of the user ends.
    pub async fn change_password(
        &self,
        user_id: &str,
        current: &str,
        new_password: &str,
        end_other_sessions_except: Option<&str>,
    ) -> Result<User, EngineError> {
        let user = self.user_record(user_id).await?;
        let Some(phc) = user.password_hash.as_deref() else {
            return Err(EngineError::InvalidCredentials);
        };
        if current.len() > password::MAX_PASSWORD_BYTES
            || !self.passwords.verify(current, Some(phc)).await?
        {
            return Err(EngineError::InvalidCredentials);
        }
        password::check_policy(new_password, user.email.as_deref())?;
        let user = self.set_password(user_id, new_password).await?;
        let mut detail = String::new();
        if let Some(keep) = end_other_sessions_except {
            let ended = self
                .revoke_sessions(user_id, RevokeScope::AllExcept(keep.to_string()))
                .await?;
            detail = format!("{} other sessions ended", ended.len());
        }
        self.shared
            .audit("password_changed", Some(user_id), None, &detail)
            .await;
        Ok(user)
    }

    /// Changes the display name and picture (`None`: unchanged, `Some(None)`: cleared).
    pub async fn update_profile(
        &self,
        user_id: &str,
        name: Option<Option<String>>,
        image: Option<Option<String>>,
    ) -> Result<User, EngineError> {
        let name = name.map(|n| n.map(|n| n.trim().to_string()).filter(|n| !n.is_empty()));
        check_profile(
            name.as_ref().and_then(Option::as_deref),
            image.as_ref().and_then(Option::as_deref),
        )?;
        self.update(user_id, UserChange::SetProfile { name, image })
            .await
    }

    /// Deletes a user: every session ends, then the record, its email and its
    /// linked accounts go (the address and accounts can be used again). Audited.
    pub async fn delete_user(&self, user_id: &str) -> Result<(), EngineError> {
        self.call::<Result<(), EngineError>>(user_id, UserRequest::Delete)
            .await??;
        self.shared
            .audit("user_deleted", Some(user_id), None, "")
            .await;
        Ok(())
    }

    // ----- helpers -----

    async fn update(&self, user_id: &str, change: UserChange) -> Result<User, EngineError> {
        self.call(
            user_id,
            UserRequest::Update {
                change: change.clone(),
            },
        )
        .await?
    }

    async fn user_record(&self, user_id: &str) -> Result<UserRecord, EngineError> {
        self.call(user_id, UserRequest::GetUser).await
    }

    async fn user_by_address(&self, email: &str) -> Result<Option<UserRecord>, EngineError> {
        let Ok(email) = normalize_email(email) else {
            return Ok(None);
        };
        match self.shared.store.user_id_by_email(&email).await? {
            Some(id) => match self.user_record(&id).await {
                Ok(user) => Ok(Some(user)),
                Err(EngineError::UserNotFound) => Ok(None),
                Err(e) => Err(e),
            },
            None => Ok(None),
        }
    }

    /// Stores a token and queues its mail, at most one per kind and address per
    /// interval (a throttled request sends nothing and still succeeds).
    async fn mail_token(
        &self,
        user: &UserRecord,
        kind: MailKind,
        email: &str,
        link: MailLink<'_>,
    ) -> Result<(), EngineError> {
        let mail = &self.shared.mail;
        let now = self.now();
        if !mail.throttle.admit(kind, email, now) {
            metrics::counter!("tachigo_mail_throttled_total", "kind" => kind.name()).increment(1);
            return Ok(());
        }
        let (purpose, ttl_ms) = match kind {
            MailKind::VerifyEmail => (
                EmailTokenPurpose::VerifyEmail,
                mail.options.verification_ttl_ms,
            ),
            MailKind::ResetPassword => {
                (EmailTokenPurpose::ResetPassword, mail.options.reset_ttl_ms)
            }
        };
        let token = opaque_token::random_urlsafe_256();
        let hash = opaque_token::hash_secret(token.as_bytes());
        let record = EmailTokenRecord {
            purpose,
            user_id: user.id.clone(),
            email: email.to_string(),
            password_stamp: password_stamp(user),
            created_at: now,
            expires_at: now.saturating_add(ttl_ms),
        };
        let queued = async {
            self.shared.store.put_email_token(&hash, &record).await?;
            mail.queue(&self.shared, kind, email, &link(&token), ttl_ms)
                .await
        }
        .await;
        if queued.is_err() {
            mail.throttle.forget(kind, email);
        }
        queued
    }

    /// Takes a token (single use) and checks what it is for and its expiry.
    async fn take_mail_token(
        &self,
        token: &str,
        purpose: EmailTokenPurpose,
    ) -> Result<EmailTokenRecord, EngineError> {
        let hash = token_hash(token).ok_or(EngineError::InvalidToken)?;
        let record = self
            .shared
            .store
            .take_email_token(&hash)
            .await?
            .ok_or(EngineError::InvalidToken)?;
        if record.purpose != purpose {
            // Presented at the wrong endpoint: not spent.
            self.shared.store.put_email_token(&hash, &record).await?;
            return Err(EngineError::InvalidToken);
        }
        if record.expires_at <= self.now() {
            return Err(EngineError::TokenExpired);
        }
        Ok(record)
    }

    /// Runs `work`, then waits out the rest of the answer floor. Only a
    /// failure that is the server's (storage, a full queue) is reported.
    async fn with_answer_floor(
        &self,
        work: impl std::future::Future<Output = Result<(), EngineError>>,
    ) -> Result<(), EngineError> {
        let deadline = tokio::time::Instant::now() + self.shared.mail.options.answer_floor;
        let result = work.await;
        tokio::time::sleep_until(deadline).await;
        match result {
            Err(
                e @ (EngineError::Storage(_) | EngineError::Overloaded | EngineError::Unavailable),
            ) => Err(e),
            _ => Ok(()),
        }
    }
}
