//! [`Store`]: the one seam between the engine and durable storage, one method
//! per kind of change. Two backends implement it: embedded sled
//! ([`crate::sled_store`]) and shared PostgreSQL ([`crate::postgres`]).
//!
//! Every mutating method returns only once its change is durable, and a change
//! that touches several records is all-or-nothing. Reads never turn a failure
//! into "not found": an `Err` is a failed read, `Ok(None)` is a real absence.

use async_trait::async_trait;

use crate::records::*;
use crate::Fence;
use crate::{StorageError, UnixMillis};

/// What a conditional family write found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RotationOutcome {
    /// The successor is stored: the family was still at the expected generation.
    Committed,
    /// Someone else changed the family first (another rotation or a revocation):
    /// nothing was written; read the family again.
    Conflict,
}

/// The storage seam. Implementations are cheap to share behind an `Arc`.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// `"sled"` or `"postgres"`, for logs and `check`.
    fn backend(&self) -> &'static str;

    /// Whether the store takes durable writes, from state it keeps: O(1), no I/O.
    fn is_healthy(&self) -> bool;

    /// After a failure: tries the store now and records whether it works.
    async fn recheck_health(&self) -> bool;

    /// Makes everything acknowledged so far durable; used at shutdown.
    async fn flush(&self) -> Result<(), StorageError>;

    /// Whether every resource this store holds (a directory lock, connections)
    /// has been released; true once the last handle is dropped.
    fn release_watch(&self) -> crate::ReleaseWatch;

    // ----- users and their indexes -----

    /// Inserts a new user and claims its email and linked accounts, all or
    /// nothing: [`StorageError::EmailTaken`] / [`StorageError::AccountTaken`].
    async fn create_user(&self, user: &UserRecord) -> Result<(), StorageError>;

    /// Replaces a user's record (profile, roles, password); indexes are unchanged.
    async fn put_user(&self, user: &UserRecord) -> Result<(), StorageError>;

    /// Claims (provider, subject) for `user` and stores `user`, which already
    /// lists it; [`StorageError::AccountTaken`] when another user holds it.
    async fn link_account(
        &self,
        user: &UserRecord,
        account: &LinkedAccount,
    ) -> Result<(), StorageError>;

    /// Removes a user's record and releases its email and linked accounts, all
    /// or nothing; `Ok(false)` when there was no such user. Sessions and
    /// families are the caller's to end first.
    async fn delete_user(&self, user_id: &str) -> Result<bool, StorageError>;

    /// Releases (provider, subject) and stores `user`, which no longer lists it.
    async fn unlink_account(
        &self,
        user: &UserRecord,
        provider: &str,
        subject: &str,
    ) -> Result<(), StorageError>;

    async fn user(&self, id: &str) -> Result<Option<UserRecord>, StorageError>;

    async fn user_id_by_email(&self, email: &str) -> Result<Option<String>, StorageError>;

    async fn user_id_by_account(
        &self,
        provider: &str,
        subject: &str,
    ) -> Result<Option<String>, StorageError>;

    /// Users whose email starts with `email_prefix`, in email order, at most `limit`.
    async fn find_users_by_email(
        &self,
        email_prefix: &str,
        limit: usize,
    ) -> Result<Vec<UserRecord>, StorageError>;

    /// How many users exist (a scan on sled: for operators and tests, not probes).
    async fn user_count(&self) -> Result<u64, StorageError>;

    // ----- sessions and refresh families -----

    /// Stores a new or changed session, its owner index and (for dashboard
    /// logins) its family, all or nothing.
    async fn put_session(
        &self,
        session: &SessionRecord,
        family: Option<&FamilyRecord>,
    ) -> Result<(), StorageError>;

    /// Stores a family after a revocation.
    async fn put_family(&self, family: &FamilyRecord) -> Result<(), StorageError>;

    /// Stores `next`, the rotation of the family whose stored state is
    /// `previous`, and remembers the token `next` retired, so a later replay of
    /// it is recognised as reuse. Conditional: it commits only while the stored
    /// family is exactly `previous` (same generation, not revoked), so of two
    /// processes rotating one family at once exactly one commits.
    async fn rotate_family(
        &self,
        previous: &FamilyRecord,
        next: &FamilyRecord,
        retired: &TokenHash,
    ) -> Result<RotationOutcome, StorageError>;

    /// Whether the family of `session_id` retired this token hash (a presented
    /// refresh token names its session, so the question is always this narrow).
    async fn was_retired_by(
        &self,
        session_id: &str,
        hash: &TokenHash,
    ) -> Result<bool, StorageError>;

    /// Deletes sessions of one user, all or nothing. A session with a refresh
    /// family keeps the family as a revoked tombstone (so a later replay is
    /// still recognised) and its owner index; the others lose their owner index.
    async fn remove_sessions(
        &self,
        user_id: &str,
        session_ids: &[String],
        revocation: FamilyRevocation,
    ) -> Result<(), StorageError>;

    /// Every stored session of a user (expired ones included; the engine filters).
    async fn sessions_of(&self, user_id: &str) -> Result<Vec<SessionRecord>, StorageError>;

    async fn family(&self, session_id: &str) -> Result<Option<FamilyRecord>, StorageError>;

    /// The user a session (or a revoked family tombstone) belongs to.
    async fn session_owner(&self, session_id: &str) -> Result<Option<String>, StorageError>;

    /// Deletes sessions past their expiry and family tombstones past their
    /// absolute expiry, with their indexes and retired tokens. Returns how many
    /// sessions and families went.
    async fn sweep_expired_sessions(&self, now: UnixMillis) -> Result<usize, StorageError>;

    // ----- OAuth states -----

    /// Stores a started flow, unless `max_pending` flows are pending already:
    /// then nothing is written and the answer is `Ok(false)`.
    async fn put_oauth_state(
        &self,
        key: &TokenHash,
        state: &OAuthStateRecord,
        max_pending: usize,
    ) -> Result<bool, StorageError>;

    /// Removes and returns a state: of two takes of one key, one finds it.
    async fn take_oauth_state(
        &self,
        key: &TokenHash,
    ) -> Result<Option<OAuthStateRecord>, StorageError>;

    /// Deletes states past their expiry (and unreadable ones); returns how many went.
    async fn sweep_oauth_states(&self, now: UnixMillis) -> Result<usize, StorageError>;

    /// Started flows waiting for their callback, from a count kept in memory
    /// (O(1)); on a shared database it is corrected at every sweep.
    fn oauth_state_count(&self) -> usize;

    // ----- OAuth 2.1 grants (authorization codes, device grants) -----

    /// Stores a new grant under `key` (the SHA-256 of its code), and for a
    /// device grant the index `user_code` (the SHA-256 of its normalized user
    /// code) → `key`, all or nothing. Nothing is written when `max_pending`
    /// grants are stored already ([`GrantPut::Full`]) or when a stored grant
    /// holds the same user code ([`GrantPut::UserCodeTaken`]). A grant holds
    /// its user code until it expires: one whose `expires_at` is at or before
    /// the new grant's `created_at` (the caller's clock) gives the code up and
    /// is deleted with it.
    async fn put_oauth2_grant(
        &self,
        key: &TokenHash,
        grant: &OAuth2GrantRecord,
        user_code: Option<&TokenHash>,
        max_pending: usize,
    ) -> Result<GrantPut, StorageError>;

    async fn oauth2_grant(
        &self,
        key: &TokenHash,
    ) -> Result<Option<OAuth2GrantRecord>, StorageError>;

    /// The grant a user code names: its key and record.
    async fn oauth2_grant_by_user_code(
        &self,
        user_code: &TokenHash,
    ) -> Result<Option<(TokenHash, OAuth2GrantRecord)>, StorageError>;

    /// Replaces the grant at `key` with `next` only while it is exactly
    /// `expected`: of two racing changes of one grant, one commits (`Ok(true)`),
    /// the other finds the grant changed (or gone) and writes nothing (`Ok(false)`).
    async fn replace_oauth2_grant(
        &self,
        key: &TokenHash,
        expected: &OAuth2GrantRecord,
        next: &OAuth2GrantRecord,
    ) -> Result<bool, StorageError>;

    /// Deletes grants past their expiry (and unreadable ones) with their user
    /// codes; returns how many went.
    async fn sweep_oauth2_grants(&self, now: UnixMillis) -> Result<usize, StorageError>;

    /// Stored grants, from a count kept in memory (O(1)); on a shared database
    /// it is corrected at every sweep.
    fn oauth2_grant_count(&self) -> usize;

    // ----- mailed tokens -----

    /// Stores a token for a mail (verification, password reset).
    async fn put_email_token(
        &self,
        hash: &TokenHash,
        token: &EmailTokenRecord,
    ) -> Result<(), StorageError>;

    /// Removes and returns a token: of two takes of one hash, one finds it.
    async fn take_email_token(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<EmailTokenRecord>, StorageError>;

    /// Deletes tokens past their expiry (and unreadable ones); returns how many went.
    async fn sweep_email_tokens(&self, now: UnixMillis) -> Result<usize, StorageError>;

    // ----- the mail outbox -----

    /// Queues a mail, unless `max_queued` mails wait already: then nothing is
    /// written and the answer is `Ok(false)`.
    async fn enqueue_mail(
        &self,
        mail: &OutboxMailRecord,
        max_queued: usize,
    ) -> Result<bool, StorageError>;

    /// Up to `limit` queued mails whose next attempt is due at `now`, oldest first.
    async fn due_mails(
        &self,
        now: UnixMillis,
        limit: usize,
    ) -> Result<Vec<OutboxMailRecord>, StorageError>;

    /// Replaces a queued mail (its attempt count and next attempt); a mail no
    /// longer queued stays gone.
    async fn reschedule_mail(&self, mail: &OutboxMailRecord) -> Result<(), StorageError>;

    /// Removes a delivered (or abandoned) mail.
    async fn remove_mail(&self, id: &str) -> Result<(), StorageError>;

    /// How many mails wait.
    async fn queued_mail_count(&self) -> Result<u64, StorageError>;

    // ----- signing keys -----

    async fn signing_keys(&self) -> Result<Vec<SigningKeyRecord>, StorageError>;

    async fn put_signing_key(&self, key: &SigningKeyRecord) -> Result<(), StorageError>;

    // ----- audit log -----

    /// Appends a security event; it is durable when this returns.
    async fn audit(&self, event: &AuditEvent) -> Result<(), StorageError>;

    /// The newest `limit` audit events, newest first.
    async fn recent_audit_events(&self, limit: usize) -> Result<Vec<AuditEvent>, StorageError>;

    // ----- provider tokens -----

    /// Stores the sealed provider tokens of a linked account, replacing any,
    /// only while (provider, subject) is linked to `tokens.user_id`:
    /// `Ok(false)` (nothing written) otherwise. Unlinking the account or
    /// deleting the user removes them in the same change.
    async fn put_provider_tokens(
        &self,
        tokens: &ProviderTokensRecord,
    ) -> Result<bool, StorageError>;

    /// The provider tokens kept for (provider, subject), if any.
    async fn provider_tokens(
        &self,
        provider: &str,
        subject: &str,
    ) -> Result<Option<ProviderTokensRecord>, StorageError>;

    // ----- ownership in a cluster (see [`crate::Fence`]) -----

    /// Claims `user_id` for `node`: the stored epoch moves on by one (from 1
    /// on a first claim) and is returned; `None` when there is no such user.
    /// A claim waits for any write still committing under the previous
    /// epoch, so once it returns, no write of the previous owner can commit.
    async fn claim_ownership(&self, user_id: &str, node: &str)
        -> Result<Option<i64>, StorageError>;

    /// Whether `fence` is still the user's current claim.
    async fn holds_ownership(&self, fence: &Fence) -> Result<bool, StorageError>;

    /// A handle to this store whose every statement commits only while
    /// `fence` holds, and fails with [`StorageError::Fenced`] otherwise. Meant
    /// for the writes of one user's actor (which reads through the plain one).
    fn fenced(&self, fence: Fence) -> std::sync::Arc<dyn Store>;

    // ----- moving a deployment -----

    /// Everything durable, for `store copy`: users, sessions, families,
    /// retired tokens, signing keys, the audit log (oldest first), mailed
    /// tokens, the mail outbox and sealed provider tokens. Pending OAuth states and OAuth 2.1 grants
    /// (codes and device grants, which live ten minutes at most) are not
    /// carried: flows in progress during a copy start again.
    async fn export(&self) -> Result<Snapshot, StorageError>;

    /// Writes a whole [`Snapshot`] into an empty store, in one transaction;
    /// [`StorageError::NotEmpty`] when the store holds any user or key.
    async fn import(&self, snapshot: &Snapshot) -> Result<(), StorageError>;
}

/// The whole durable content of a store, as `export` reads it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub users: Vec<UserRecord>,
    pub sessions: Vec<SessionRecord>,
    pub families: Vec<FamilyRecord>,
    /// (retired token hash, the family's session id).
    pub retired_tokens: Vec<(TokenHash, String)>,
    pub signing_keys: Vec<SigningKeyRecord>,
    pub audit: Vec<AuditEvent>,
    /// (token hash, token): mailed tokens not yet used.
    pub email_tokens: Vec<(TokenHash, EmailTokenRecord)>,
    /// Mails not yet delivered, oldest first.
    pub outbox: Vec<OutboxMailRecord>,
    /// Sealed provider tokens of linked accounts, in (provider, subject) order;
    /// they open only with the engine's token keys, which travel separately.
    pub provider_tokens: Vec<ProviderTokensRecord>,
}
