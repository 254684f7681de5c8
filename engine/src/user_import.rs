//! Moving users in from another system (`tachigo-auth user import`): one user
//! at a time, validated whole, then stored whole or not at all through one
//! `create_user` (which claims the email and every linked account in the same
//! transaction). A user whose email or account already exists is skipped, so
//! running an import again changes nothing. Password hashes stay as the old
//! system made them ([`crate::password_formats`]) until the user's first login
//! rehashes them to argon2id.

use tachigo_storage::{LinkedAccount, StorageError, UserRecord};
use thiserror::Error;

use crate::model::UnixMillis;
use crate::password_formats::{self, HashRefusal};
use crate::{normalize_email, opaque_token, valid_role, Engine, EngineError};

/// Longest accepted name, in characters.
pub const MAX_NAME_CHARS: usize = 256;
/// Longest accepted provider name or subject, in bytes.
pub const MAX_ACCOUNT_FIELD_BYTES: usize = 255;

/// A user as another system kept them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedUser {
    pub email: String,
    pub email_verified: bool,
    pub name: Option<String>,
    pub roles: Vec<String>,
    pub created_at: UnixMillis,
    /// In any format [`password_formats::is_acceptable`] accepts.
    pub password_hash: Option<String>,
    pub accounts: Vec<ImportedAccount>,
}

/// A provider account linked to an imported user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedAccount {
    pub provider: String,
    pub subject: String,
    pub email: Option<String>,
}

/// What became of one imported user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportOutcome {
    /// Stored under this new id.
    Imported { user_id: String },
    /// Valid, and nothing of it exists yet: a dry run would have stored it.
    WouldImport,
    /// Its email or one of its accounts is already someone's: nothing stored.
    Skipped(SkipReason),
    /// Not valid: nothing stored.
    Refused(ImportRefusal),
}

/// Why an imported user was skipped.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SkipReason {
    #[error("a user with this email already exists")]
    EmailExists,
    #[error("the {provider} account {subject} is already linked to a user")]
    AccountLinked { provider: String, subject: String },
}

/// Why an imported user is not valid.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ImportRefusal {
    #[error("the email address is not valid")]
    InvalidEmail,
    #[error("`{0}` is not a valid role: use 1-32 characters of a-z, 0-9, '_' and '-'")]
    InvalidRole(String),
    #[error("the name is longer than {MAX_NAME_CHARS} characters")]
    NameTooLong,
    #[error("created_at is before 1970 or in the future")]
    InvalidCreatedAt,
    #[error("an account needs a provider and a subject of 1-{MAX_ACCOUNT_FIELD_BYTES} bytes without surrounding spaces")]
    InvalidAccount,
    #[error("the email of the {0} account is not valid")]
    InvalidAccountEmail(String),
    #[error("the {provider} account {subject} is listed twice")]
    DuplicateAccount { provider: String, subject: String },
    #[error(transparent)]
    PasswordHash(#[from] HashRefusal),
    #[error("the user has neither a password hash nor a linked account: no way to sign in")]
    NoWayToSignIn,
}

impl Engine {
    /// Imports one user: validates it, skips it when its email or an account
    /// is already taken, and otherwise stores it whole (unless `dry_run`).
    /// `Err` only when storage could not answer: the user may then be stored
    /// or not, and running the import again settles it.
    pub async fn import_user(
        &self,
        user: ImportedUser,
        dry_run: bool,
    ) -> Result<ImportOutcome, EngineError> {
        let now = self.now();
        let record = match record_of(user, now) {
            Ok(record) => record,
            Err(refusal) => return Ok(ImportOutcome::Refused(refusal)),
        };
        let store = self.store_handle();
        if let Some(email) = &record.email {
            if store.user_id_by_email(email).await?.is_some() {
                return Ok(ImportOutcome::Skipped(SkipReason::EmailExists));
            }
        }
        for account in &record.accounts {
            if store
                .user_id_by_account(&account.provider, &account.subject)
                .await?
                .is_some()
            {
                return Ok(ImportOutcome::Skipped(account_linked(account)));
            }
        }
        if dry_run {
            return Ok(ImportOutcome::WouldImport);
        }
        match store.create_user(&record).await {
            Ok(()) => {}
            // Claimed between the look-ups and the write: skipped all the same.
            Err(StorageError::EmailTaken) => {
                return Ok(ImportOutcome::Skipped(SkipReason::EmailExists))
            }
            Err(StorageError::AccountTaken) => {
                let taken = taken_account(self, &record).await?;
                return Ok(ImportOutcome::Skipped(taken));
            }
            Err(e) => return Err(e.into()),
        }
        let scheme = record
            .password_hash
            .as_deref()
            .and_then(|h| password_formats::scheme(h).ok())
            .unwrap_or("none");
        let detail = format!("password: {scheme}; accounts: {}", record.accounts.len());
        self.audit("user_imported", Some(&record.id), None, &detail)
            .await;
        Ok(ImportOutcome::Imported { user_id: record.id })
    }
}

/// The record to store, or why there is none.
fn record_of(user: ImportedUser, now: UnixMillis) -> Result<UserRecord, ImportRefusal> {
    let email = normalize_email(&user.email).map_err(|_| ImportRefusal::InvalidEmail)?;
    let mut roles = user.roles;
    if let Some(bad) = roles.iter().find(|r| !valid_role(r)) {
        return Err(ImportRefusal::InvalidRole(bad.clone()));
    }
    roles.sort();
    roles.dedup();
    let name = user
        .name
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty());
    if name
        .as_ref()
        .is_some_and(|n| n.chars().count() > MAX_NAME_CHARS)
    {
        return Err(ImportRefusal::NameTooLong);
    }
    if !(0..=now).contains(&user.created_at) {
        return Err(ImportRefusal::InvalidCreatedAt);
    }
    let mut accounts: Vec<LinkedAccount> = Vec::with_capacity(user.accounts.len());
    for account in user.accounts {
        if !valid_account_field(&account.provider) || !valid_account_field(&account.subject) {
            return Err(ImportRefusal::InvalidAccount);
        }
        let email = account
            .email
            .as_deref()
            .map(normalize_email)
            .transpose()
            .map_err(|_| ImportRefusal::InvalidAccountEmail(account.provider.clone()))?;
        if accounts
            .iter()
            .any(|a| a.provider == account.provider && a.subject == account.subject)
        {
            return Err(ImportRefusal::DuplicateAccount {
                provider: account.provider,
                subject: account.subject,
            });
        }
        accounts.push(LinkedAccount {
            provider: account.provider,
            subject: account.subject,
            email,
            linked_at: user.created_at,
        });
    }
    if let Some(hash) = &user.password_hash {
        password_formats::scheme(hash)?;
    }
    if user.password_hash.is_none() && accounts.is_empty() {
        return Err(ImportRefusal::NoWayToSignIn);
    }
    Ok(UserRecord {
        id: opaque_token::new_id(),
        email: Some(email),
        email_verified: user.email_verified,
        name,
        image: None,
        password_hash: user.password_hash,
        roles,
        accounts,
        created_at: user.created_at,
        updated_at: now,
    })
}

fn valid_account_field(value: &str) -> bool {
    (1..=MAX_ACCOUNT_FIELD_BYTES).contains(&value.len())
        && value.trim() == value
        && !value.chars().any(char::is_control)
}

fn account_linked(account: &LinkedAccount) -> SkipReason {
    SkipReason::AccountLinked {
        provider: account.provider.clone(),
        subject: account.subject.clone(),
    }
}

/// Which of the record's accounts another user took first (the store only
/// says that one was).
async fn taken_account(engine: &Engine, record: &UserRecord) -> Result<SkipReason, EngineError> {
    let store = engine.store_handle();
    for account in &record.accounts {
        if store
            .user_id_by_account(&account.provider, &account.subject)
            .await?
            .is_some()
        {
            return Ok(account_linked(account));
        }
    }
    // Taken and let go again since: name the first.
    Ok(record
        .accounts
        .first()
        .map(account_linked)
        .unwrap_or(SkipReason::EmailExists))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: UnixMillis = 1_700_000_000_000;

    fn user() -> ImportedUser {
        ImportedUser {
            email: " Someone@Example.COM ".into(),
            email_verified: true,
            name: Some("  Some One ".into()),
            roles: vec!["member".into(), "admin".into(), "member".into()],
            created_at: 1_500_000_000_000,
            password_hash: Some(
                "$2b$04$QW8zP.u14nUwHVOgAgVIWu/6xRpghzS/QEiyP140Nuoy6SmSR4FkC".into(),
            ),
            accounts: vec![ImportedAccount {
                provider: "github".into(),
                subject: "42".into(),
                email: Some("Octo@Example.com".into()),
            }],
        }
    }

    #[test]
    fn a_valid_user_becomes_one_whole_record() {
        let record = record_of(user(), NOW).unwrap();
        assert_eq!(record.email.as_deref(), Some("someone@example.com"));
        assert_eq!(record.name.as_deref(), Some("Some One"));
        assert_eq!(record.roles, ["admin", "member"]);
        assert_eq!(record.created_at, 1_500_000_000_000);
        assert_eq!(record.updated_at, NOW);
        assert_eq!(record.accounts.len(), 1);
        assert_eq!(
            record.accounts[0].email.as_deref(),
            Some("octo@example.com")
        );
        assert_eq!(record.accounts[0].linked_at, 1_500_000_000_000);
        assert!(record.email_verified);
    }

    #[test]
    fn each_invalid_part_refuses_the_whole_user() {
        type Change = Box<dyn Fn(&mut ImportedUser)>;
        let cases: Vec<(Change, ImportRefusal)> = vec![
            (
                Box::new(|u| u.email = "nope".into()),
                ImportRefusal::InvalidEmail,
            ),
            (
                Box::new(|u| u.roles = vec!["Admin".into()]),
                ImportRefusal::InvalidRole("Admin".into()),
            ),
            (
                Box::new(|u| u.created_at = -1),
                ImportRefusal::InvalidCreatedAt,
            ),
            (
                Box::new(|u| u.created_at = NOW + 1),
                ImportRefusal::InvalidCreatedAt,
            ),
            (
                Box::new(|u| u.name = Some("x".repeat(257))),
                ImportRefusal::NameTooLong,
            ),
            (
                Box::new(|u| u.accounts[0].subject = String::new()),
                ImportRefusal::InvalidAccount,
            ),
            (
                Box::new(|u| u.accounts[0].provider = " github".into()),
                ImportRefusal::InvalidAccount,
            ),
            (
                Box::new(|u| u.accounts[0].email = Some("bad".into())),
                ImportRefusal::InvalidAccountEmail("github".into()),
            ),
            (
                Box::new(|u| u.accounts.push(u.accounts[0].clone())),
                ImportRefusal::DuplicateAccount {
                    provider: "github".into(),
                    subject: "42".into(),
                },
            ),
            (
                Box::new(|u| u.password_hash = Some("plaintext".into())),
                ImportRefusal::PasswordHash(HashRefusal::UnknownFormat),
            ),
            (
                Box::new(|u| {
                    u.password_hash = None;
                    u.accounts.clear();
                }),
                ImportRefusal::NoWayToSignIn,
            ),
        ];
        for (change, refusal) in cases {
            let mut bad = user();
            change(&mut bad);
            assert_eq!(record_of(bad, NOW).unwrap_err(), refusal);
        }
    }
}
