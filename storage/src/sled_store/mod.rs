//! [`SledStore`]: the embedded backend, one sled tree per concept.
//!
//! Changes that touch several trees run in one sled transaction (or are
//! ordered so that any prefix a crash leaves is unreachable), so a crash never
//! leaves an index pointing at nothing. Every mutating method awaits group
//! commit (see [`group_commit`]) before it returns. Whole-tree scans (sweeps,
//! export) run on a blocking thread, never on an async worker.

pub mod dir_lock;
pub mod group_commit;
pub mod retired_tokens;

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use sled::transaction::{ConflictableTransactionError, TransactionError};
use sled::{Transactional, Tree};

use crate::codec::{decode, encode};
use crate::records::*;
use crate::store::{RotationOutcome, Snapshot, Store};
use crate::{ReleaseWatch, StorageError, UnixMillis};
pub use dir_lock::DirLock;
pub use group_commit::Durability;

/// The handle to every tree. Cheap to clone.
#[derive(Clone)]
pub struct SledStore {
    db: sled::Db,
    durability: Durability,
    /// Whether the last flush succeeded (always true without group commit).
    healthy: Arc<AtomicBool>,
    /// Entries of `oauth_states`, kept here because `Tree::len` is a scan.
    pending_oauth_states: Arc<AtomicUsize>,
    users: Tree,
    emails: Tree,
    accounts: Tree,
    sessions: Tree,
    session_owners: Tree,
    /// Session id → the family, followed by its newest retired token hashes
    /// (see [`retired_tokens`]).
    families: Tree,
    /// `session id \0 sequence` → older retired token hashes of that family.
    retired_chunks: Tree,
    oauth_states: Tree,
    /// State hash → the session that started a link flow (see
    /// [`OAuthStateRecord::link_session_id`]).
    oauth_link_sessions: Tree,
    signing_keys: Tree,
    audit: Tree,
    email_tokens: Tree,
    /// Mail id (which sorts by creation) → [`OutboxMailRecord`].
    outbox: Tree,
    /// Entries of `outbox`, kept here because `Tree::len` is a scan.
    queued_mails: Arc<AtomicUsize>,
    /// Grant key (the SHA-256 of the code or device code) → [`OAuth2GrantRecord`].
    oauth2_grants: Tree,
    /// User-code hash → grant key, for device grants.
    oauth2_user_codes: Tree,
    /// Entries of `oauth2_grants`, kept here because `Tree::len` is a scan.
    stored_oauth2_grants: Arc<AtomicUsize>,
    /// `provider \0 subject` (as `accounts`) → [`ProviderTokensRecord`].
    provider_tokens: Tree,
    /// Shared by every handle and by the flusher thread, which drops it only
    /// after its own database handle: see [`Store::release_watch`]. Declared
    /// last, so a handle lets go of it only after its database and trees.
    handles: Arc<DirLock>,
}

/// What the transaction of [`SledStore::put_oauth2_grant`] found.
enum GrantTx {
    /// Written; `displaced` grants already counted went (an expired holder of
    /// the user code, or an earlier grant under the same key).
    Stored {
        displaced: usize,
    },
    UserCodeTaken,
}

type TxResult<T> = Result<T, TransactionError<StorageError>>;

fn tx_error(e: TransactionError<StorageError>) -> StorageError {
    match e {
        TransactionError::Abort(e) => e,
        TransactionError::Storage(e) => StorageError::Sled(e),
    }
}

fn abort<T>(e: StorageError) -> Result<T, ConflictableTransactionError<StorageError>> {
    Err(ConflictableTransactionError::Abort(e))
}

fn account_key(provider: &str, subject: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(provider.len() + subject.len() + 1);
    key.extend_from_slice(provider.as_bytes());
    key.push(0);
    key.extend_from_slice(subject.as_bytes());
    key
}

fn session_key(user_id: &str, session_id: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(user_id.len() + session_id.len() + 1);
    key.extend_from_slice(user_id.as_bytes());
    key.push(0);
    key.extend_from_slice(session_id.as_bytes());
    key
}

fn user_prefix(user_id: &str) -> Vec<u8> {
    let mut key = user_id.as_bytes().to_vec();
    key.push(0);
    key
}

fn string_of(bytes: &[u8]) -> Result<String, StorageError> {
    String::from_utf8(bytes.to_vec()).map_err(|e| StorageError::Corrupt(e.to_string()))
}

/// Opens sled in `path`, whose [`DirLock`] the caller holds. So whoever still
/// holds sled's own lock is a handle of this process that is letting go (a
/// sled IO thread finishing its last write), and a failure is retried briefly.
fn open_sled(path: &Path) -> Result<sled::Db, StorageError> {
    let config = sled::Config::new()
        .path(path)
        .mode(sled::Mode::HighThroughput)
        // The flusher below owns durability; sled's own timer would only add fsyncs.
        .flush_every_ms(None);
    let mut attempts = 0;
    loop {
        match config.open() {
            Ok(db) => return Ok(db),
            Err(sled::Error::Io(_)) if attempts < 20 => {
                attempts += 1;
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

impl SledStore {
    /// Opens (or creates) the database in `path` (blocking). A lock held by a
    /// process that is just exiting is waited for briefly; one still held after
    /// that is [`StorageError::Locked`]. `durable = false` only for throw-away
    /// benchmarks.
    pub fn open(path: &Path, durable: bool) -> Result<SledStore, StorageError> {
        std::fs::create_dir_all(path).map_err(|e| StorageError::Sled(e.into()))?;
        // Ours first: only its holder ever asks sled for sled's own lock.
        let lock = DirLock::acquire(path)?;
        let db = open_sled(path)?;
        let handles = Arc::new(lock);
        let healthy = Arc::new(AtomicBool::new(true));
        let durability = if durable {
            Durability::start_group_commit(db.clone(), handles.clone(), healthy.clone())
        } else {
            Durability::None
        };
        let oauth_states = db.open_tree("oauth_states")?;
        // One scan at open; the count is kept from here on.
        let pending_oauth_states = Arc::new(AtomicUsize::new(oauth_states.len()));
        let outbox = db.open_tree("mail_outbox")?;
        let queued_mails = Arc::new(AtomicUsize::new(outbox.len()));
        let oauth2_grants = db.open_tree("oauth2_grants")?;
        let retired_chunks = db.open_tree("retired_refresh_chunks")?;
        let migrated = retired_tokens::migrate_legacy_index(&db, &retired_chunks)?;
        if migrated > 0 {
            tracing::info!(
                migrated,
                "retired refresh tokens moved from the old index into their families' chunks"
            );
        }
        let stored_oauth2_grants = Arc::new(AtomicUsize::new(oauth2_grants.len()));
        Ok(SledStore {
            healthy,
            pending_oauth_states,
            users: db.open_tree("users")?,
            emails: db.open_tree("email_index")?,
            accounts: db.open_tree("accounts")?,
            sessions: db.open_tree("sessions")?,
            session_owners: db.open_tree("session_owners")?,
            families: db.open_tree("refresh_families")?,
            retired_chunks,
            oauth_states,
            oauth_link_sessions: db.open_tree("oauth_link_sessions")?,
            signing_keys: db.open_tree("signing_keys")?,
            audit: db.open_tree("audit")?,
            email_tokens: db.open_tree("email_tokens")?,
            outbox,
            queued_mails,
            oauth2_grants,
            oauth2_user_codes: db.open_tree("oauth2_user_codes")?,
            stored_oauth2_grants,
            provider_tokens: db.open_tree("provider_tokens")?,
            durability,
            handles,
            db,
        })
    }

    async fn durable(&self) -> Result<(), StorageError> {
        self.durability.wait_durable().await
    }

    fn read_user(&self, id: &str) -> Result<Option<UserRecord>, StorageError> {
        self.users
            .get(id.as_bytes())?
            .map(|v| decode(&v))
            .transpose()
    }

    /// Stores `family`, keeping the retired hashes its stored value holds.
    fn write_family(&self, family: &FamilyRecord) -> Result<(), StorageError> {
        let key = family.session_id.as_bytes();
        loop {
            let old = self.families.get(key)?;
            let value = match &old {
                Some(v) => retired_tokens::compose(family, retired_tokens::split(v)?.1),
                None => encode(family),
            };
            if self
                .families
                .compare_and_swap(key, old, Some(value))?
                .is_ok()
            {
                return Ok(());
            }
        }
    }

    fn read_family(&self, session_id: &str) -> Result<Option<FamilyRecord>, StorageError> {
        self.families
            .get(session_id.as_bytes())?
            .map(|v| decode(&v))
            .transpose()
    }

    fn sweep_expired_sessions_blocking(&self, now: UnixMillis) -> Result<usize, StorageError> {
        let mut removed = 0;
        for entry in self.sessions.iter() {
            let (key, value) = entry?;
            let session: SessionRecord = decode(&value)?;
            let family: Option<FamilyRecord> = self.read_family(&session.id)?;
            let (expires_at, absolute) = match &family {
                Some(f) => (f.idle_expires_at, f.absolute_expires_at),
                None => (session.expires_at, session.absolute_expires_at),
            };
            if expires_at <= now || absolute <= now {
                self.sessions.remove(key)?;
                if family.is_none() {
                    self.session_owners.remove(session.id.as_bytes())?;
                }
                removed += 1;
            }
        }
        for entry in self.families.iter() {
            let (key, value) = entry?;
            let family: FamilyRecord = decode(&value)?;
            let finished = family.absolute_expires_at <= now
                || (family.revoked.is_none() && family.idle_expires_at <= now);
            if finished
                && self
                    .sessions
                    .get(session_key(&family.user_id, &family.session_id))?
                    .is_none()
            {
                self.families.remove(&key)?;
                self.session_owners.remove(&key)?;
                removed += 1;
            }
        }
        for entry in self.retired_chunks.iter() {
            let (key, _) = entry?;
            let session_id = retired_tokens::session_of(&key)?;
            if self.families.get(session_id.as_bytes())?.is_none() {
                self.retired_chunks.remove(&key)?;
            }
        }
        Ok(removed)
    }

    fn sweep_oauth_states_blocking(&self, now: UnixMillis) -> Result<usize, StorageError> {
        let mut removed = 0;
        for entry in self.oauth_states.iter() {
            let (key, value) = entry?;
            // A record this build cannot read (a newer build's, or damaged) can
            // never be taken: it goes too, or it would hold a pending slot forever.
            let expired = match decode::<OAuthStateRecord>(&value) {
                Ok(state) => state.expires_at <= now,
                Err(e) => {
                    tracing::warn!(error = %e, "removing an unreadable OAuth state");
                    true
                }
            };
            if expired && self.oauth_states.remove(&key)?.is_some() {
                self.pending_oauth_states.fetch_sub(1, Ordering::AcqRel);
                removed += 1;
            }
        }
        // Link sessions whose state is gone (swept above, or taken by a release
        // that does not know this tree). One written a moment before its state
        // may go too: that flow's callback then finds no session and links
        // nothing (`session_expired`), the safe side.
        for entry in self.oauth_link_sessions.iter() {
            let (key, _) = entry?;
            if !self.oauth_states.contains_key(&key)? {
                self.oauth_link_sessions.remove(key)?;
            }
        }
        Ok(removed)
    }

    /// How many grants went, and whether anything (a grant or a user code) went.
    fn sweep_oauth2_grants_blocking(&self, now: UnixMillis) -> Result<(usize, bool), StorageError> {
        let mut removed = 0;
        let mut codes_removed = false;
        for entry in self.oauth2_grants.iter() {
            let (key, value) = entry?;
            // A record this build cannot read can never be redeemed: it goes
            // too, or it would hold a pending slot (and its user code) forever.
            let expired = match decode::<OAuth2GrantRecord>(&value) {
                Ok(grant) => grant.expires_at <= now,
                Err(e) => {
                    tracing::warn!(error = %e, "removing an unreadable OAuth 2.1 grant");
                    true
                }
            };
            // Only the value read: a grant changed meanwhile waits for the next sweep.
            if expired
                && self
                    .oauth2_grants
                    .compare_and_swap(&key, Some(&value), None as Option<&[u8]>)?
                    .is_ok()
            {
                self.stored_oauth2_grants.fetch_sub(1, Ordering::AcqRel);
                removed += 1;
            }
        }
        // User codes whose grant is gone (swept above, or displaced). Only
        // while the entry still names that grant: a put may have just claimed
        // the code for a new one.
        for entry in self.oauth2_user_codes.iter() {
            let (code, key) = entry?;
            if !self.oauth2_grants.contains_key(&key)?
                && self
                    .oauth2_user_codes
                    .compare_and_swap(&code, Some(&key), None as Option<&[u8]>)?
                    .is_ok()
            {
                codes_removed = true;
            }
        }
        Ok((removed, removed > 0 || codes_removed))
    }

    fn sweep_email_tokens_blocking(&self, now: UnixMillis) -> Result<usize, StorageError> {
        let mut removed = 0;
        for entry in self.email_tokens.iter() {
            let (key, value) = entry?;
            let expired = match decode::<EmailTokenRecord>(&value) {
                Ok(token) => token.expires_at <= now,
                Err(e) => {
                    tracing::warn!(error = %e, "removing an unreadable mailed token");
                    true
                }
            };
            if expired && self.email_tokens.remove(&key)?.is_some() {
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Runs a whole-tree scan on a blocking thread.
    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&SledStore) -> Result<T, StorageError> + Send + 'static,
    ) -> Result<T, StorageError> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || work(&this))
            .await
            .map_err(|e| StorageError::Backend(format!("a storage scan stopped: {e}")))?
    }
}

#[async_trait]
impl Store for SledStore {
    fn backend(&self) -> &'static str {
        "sled"
    }

    /// The last flush succeeded. O(1), no disk access.
    fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Acquire)
    }

    /// Flushes now (on a blocking thread) and records whether it worked, so
    /// readiness comes back without waiting for a write.
    async fn recheck_health(&self) -> bool {
        let ok = self
            .blocking(|s| Ok(s.db.flush().is_ok()))
            .await
            .unwrap_or(false);
        self.healthy.store(ok, Ordering::Release);
        ok
    }

    async fn flush(&self) -> Result<(), StorageError> {
        self.blocking(|s| {
            s.db.flush()?;
            Ok(())
        })
        .await
    }

    /// Released once every clone and the flusher thread are gone, so the
    /// directory lock is free.
    fn release_watch(&self) -> ReleaseWatch {
        ReleaseWatch::new(&self.handles)
    }

    // ----- users and their indexes -----

    /// One transaction over the record and both indexes; an index entry is
    /// released only while it still names this user.
    async fn delete_user(&self, user_id: &str) -> Result<bool, StorageError> {
        let result: TxResult<bool> = (
            &self.users,
            &self.emails,
            &self.accounts,
            &self.provider_tokens,
        )
            .transaction(|(users, emails, accounts, provider_tokens)| {
                let Some(bytes) = users.remove(user_id.as_bytes())? else {
                    return Ok(false);
                };
                let user: UserRecord = match decode(&bytes) {
                    Ok(user) => user,
                    Err(e) => return abort(e),
                };
                if let Some(email) = &user.email {
                    if emails.get(email.as_bytes())?.as_deref() == Some(user_id.as_bytes()) {
                        emails.remove(email.as_bytes())?;
                    }
                }
                for account in &user.accounts {
                    let key = account_key(&account.provider, &account.subject);
                    if accounts.get(&key)?.as_deref() == Some(user_id.as_bytes()) {
                        provider_tokens.remove(key.as_slice())?;
                        accounts.remove(key)?;
                    }
                }
                Ok(true)
            });
        let deleted = result.map_err(tx_error)?;
        if deleted {
            self.durable().await?;
        }
        Ok(deleted)
    }

    /// Inserts a new user and claims its email and linked accounts in one transaction.
    async fn create_user(&self, user: &UserRecord) -> Result<(), StorageError> {
        let encoded = encode(user);
        let result: TxResult<()> =
            (&self.users, &self.emails, &self.accounts).transaction(|(users, emails, accounts)| {
                if let Some(email) = &user.email {
                    if emails.get(email.as_bytes())?.is_some() {
                        return abort(StorageError::EmailTaken);
                    }
                    emails.insert(email.as_bytes(), user.id.as_bytes())?;
                }
                for account in &user.accounts {
                    let key = account_key(&account.provider, &account.subject);
                    if accounts.get(&key)?.is_some() {
                        return abort(StorageError::AccountTaken);
                    }
                    accounts.insert(key, user.id.as_bytes())?;
                }
                users.insert(user.id.as_bytes(), encoded.as_slice())?;
                Ok(())
            });
        result.map_err(tx_error)?;
        self.durable().await
    }

    /// Replaces a user's record (profile, roles, password); indexes are unchanged.
    async fn put_user(&self, user: &UserRecord) -> Result<(), StorageError> {
        self.users.insert(user.id.as_bytes(), encode(user))?;
        self.durable().await
    }

    /// Claims (provider, subject) for `user` and stores `user`, which already lists it.
    async fn link_account(
        &self,
        user: &UserRecord,
        account: &LinkedAccount,
    ) -> Result<(), StorageError> {
        let encoded = encode(user);
        let key = account_key(&account.provider, &account.subject);
        let result: TxResult<()> =
            (&self.users, &self.accounts).transaction(|(users, accounts)| {
                match accounts.get(&key)? {
                    Some(owner) if owner.as_ref() != user.id.as_bytes() => {
                        return abort(StorageError::AccountTaken)
                    }
                    _ => {}
                }
                accounts.insert(key.as_slice(), user.id.as_bytes())?;
                users.insert(user.id.as_bytes(), encoded.as_slice())?;
                Ok(())
            });
        result.map_err(tx_error)?;
        self.durable().await
    }

    /// Releases (provider, subject) and stores `user`, which no longer lists it.
    async fn unlink_account(
        &self,
        user: &UserRecord,
        provider: &str,
        subject: &str,
    ) -> Result<(), StorageError> {
        let encoded = encode(user);
        let key = account_key(provider, subject);
        let result: TxResult<()> = (&self.users, &self.accounts, &self.provider_tokens)
            .transaction(|(users, accounts, provider_tokens)| {
                if let Some(owner) = accounts.get(&key)? {
                    if owner.as_ref() == user.id.as_bytes() {
                        accounts.remove(key.as_slice())?;
                        provider_tokens.remove(key.as_slice())?;
                    }
                }
                users.insert(user.id.as_bytes(), encoded.as_slice())?;
                Ok(())
            });
        result.map_err(tx_error)?;
        self.durable().await
    }

    async fn user(&self, id: &str) -> Result<Option<UserRecord>, StorageError> {
        self.read_user(id)
    }

    async fn user_id_by_email(&self, email: &str) -> Result<Option<String>, StorageError> {
        self.emails
            .get(email.as_bytes())?
            .map(|v| string_of(&v))
            .transpose()
    }

    async fn user_id_by_account(
        &self,
        provider: &str,
        subject: &str,
    ) -> Result<Option<String>, StorageError> {
        self.accounts
            .get(account_key(provider, subject))?
            .map(|v| string_of(&v))
            .transpose()
    }

    /// Users whose email starts with `email_prefix`, in email order, at most `limit`.
    async fn find_users_by_email(
        &self,
        email_prefix: &str,
        limit: usize,
    ) -> Result<Vec<UserRecord>, StorageError> {
        let mut found = Vec::new();
        for entry in self.emails.scan_prefix(email_prefix.as_bytes()).take(limit) {
            let (_, id) = entry?;
            if let Some(user) = self.read_user(&string_of(&id)?)? {
                found.push(user);
            }
        }
        Ok(found)
    }

    async fn user_count(&self) -> Result<u64, StorageError> {
        self.blocking(|s| Ok(s.users.len() as u64)).await
    }

    // ----- sessions and refresh families -----

    /// Stores a new or changed session, its owner index, and (for dashboard logins)
    /// its family. No transaction: the session record is written last and is what
    /// makes the others reachable, so any subset a crash could leave before the
    /// flush is unreachable, and nothing is acknowledged before the flush.
    async fn put_session(
        &self,
        session: &SessionRecord,
        family: Option<&FamilyRecord>,
    ) -> Result<(), StorageError> {
        self.session_owners
            .insert(session.id.as_bytes(), session.user_id.as_bytes())?;
        if let Some(f) = family {
            self.write_family(f)?;
        }
        self.sessions
            .insert(session_key(&session.user_id, &session.id), encode(session))?;
        self.durable().await
    }

    /// Stores a family after a revocation.
    async fn put_family(&self, family: &FamilyRecord) -> Result<(), StorageError> {
        self.write_family(family)?;
        self.durable().await
    }

    /// One write: `retired` joins the tail of the family's value in the same
    /// compare-and-swap that stores `next`, conditional on the stored record
    /// being exactly `previous`. A full tail is written as a chunk first (see
    /// [`retired_tokens`]), so the family never drops a hash unrecorded; a lost
    /// swap leaves at most that chunk, whose hashes the family retired anyway.
    async fn rotate_family(
        &self,
        previous: &FamilyRecord,
        next: &FamilyRecord,
        retired: &TokenHash,
    ) -> Result<RotationOutcome, StorageError> {
        let key = next.session_id.as_bytes();
        let Some(stored) = self.families.get(key)? else {
            return Ok(RotationOutcome::Conflict);
        };
        let expected = encode(previous);
        if !stored.starts_with(&expected) {
            return Ok(RotationOutcome::Conflict);
        }
        let tail = retired_tokens::tail_after(&stored, expected.len())?;
        let mut value = encode(next);
        if retired_tokens::is_full(tail) {
            self.retired_chunks.insert(
                retired_tokens::chunk_key(&next.session_id, u64::from(previous.generation)),
                tail,
            )?;
        } else {
            value.extend_from_slice(tail);
        }
        value.extend_from_slice(retired);
        let swapped = self
            .families
            .compare_and_swap(key, Some(stored), Some(value))?;
        if swapped.is_err() {
            return Ok(RotationOutcome::Conflict);
        }
        self.durable().await?;
        Ok(RotationOutcome::Committed)
    }

    /// The family's tail first (where a recent token is), then its chunks.
    async fn was_retired_by(
        &self,
        session_id: &str,
        hash: &TokenHash,
    ) -> Result<bool, StorageError> {
        if let Some(value) = self.families.get(session_id.as_bytes())? {
            if retired_tokens::holds(retired_tokens::split(&value)?.1, hash) {
                return Ok(true);
            }
        }
        for chunk in self
            .retired_chunks
            .scan_prefix(retired_tokens::chunk_prefix(session_id))
        {
            if retired_tokens::holds(&chunk?.1, hash) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Deletes sessions of one user. A session with a refresh family keeps the family
    /// as a revoked tombstone (so a later replay is still recognised) and its owner
    /// index; the others lose their owner index too.
    async fn remove_sessions(
        &self,
        user_id: &str,
        session_ids: &[String],
        revocation: FamilyRevocation,
    ) -> Result<(), StorageError> {
        if session_ids.is_empty() {
            return Ok(());
        }
        let result: TxResult<()> = (&self.sessions, &self.session_owners, &self.families)
            .transaction(|(sessions, owners, families)| {
                for id in session_ids {
                    sessions.remove(session_key(user_id, id))?;
                    match families.get(id.as_bytes())? {
                        Some(bytes) => {
                            let (mut family, tail) = retired_tokens::split(&bytes)
                                .map_err(ConflictableTransactionError::Abort)?;
                            if family.revoked.is_none() {
                                family.revoked = Some(revocation);
                            }
                            families
                                .insert(id.as_bytes(), retired_tokens::compose(&family, tail))?;
                        }
                        None => {
                            owners.remove(id.as_bytes())?;
                        }
                    }
                }
                Ok(())
            });
        result.map_err(tx_error)?;
        self.durable().await
    }

    /// Every stored session of a user (expired ones included; the engine filters).
    async fn sessions_of(&self, user_id: &str) -> Result<Vec<SessionRecord>, StorageError> {
        self.sessions
            .scan_prefix(user_prefix(user_id))
            .map(|entry| decode(&entry?.1))
            .collect()
    }

    async fn family(&self, session_id: &str) -> Result<Option<FamilyRecord>, StorageError> {
        self.read_family(session_id)
    }

    /// The user a session (or a revoked family tombstone) belongs to.
    async fn session_owner(&self, session_id: &str) -> Result<Option<String>, StorageError> {
        self.session_owners
            .get(session_id.as_bytes())?
            .map(|v| string_of(&v))
            .transpose()
    }

    /// Deletes sessions past their expiry and family tombstones past their absolute
    /// expiry, with their owner index entries. Returns how many records went.
    async fn sweep_expired_sessions(&self, now: UnixMillis) -> Result<usize, StorageError> {
        let removed = self
            .blocking(move |s| s.sweep_expired_sessions_blocking(now))
            .await?;
        if removed > 0 {
            self.durable().await?;
        }
        Ok(removed)
    }

    // ----- OAuth states -----

    /// Stores a started flow, unless `max_pending` flows are pending already:
    /// then nothing is written and the answer is `Ok(false)`.
    async fn put_oauth_state(
        &self,
        key: &TokenHash,
        state: &OAuthStateRecord,
        max_pending: usize,
    ) -> Result<bool, StorageError> {
        let reserved =
            self.pending_oauth_states
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                    (n < max_pending).then_some(n + 1)
                });
        if reserved.is_err() {
            return Ok(false);
        }
        if let Some(session_id) = &state.link_session_id {
            // Before the state: a state is only ever found with its session.
            if let Err(e) = self.oauth_link_sessions.insert(key, session_id.as_bytes()) {
                self.pending_oauth_states.fetch_sub(1, Ordering::AcqRel);
                return Err(e.into());
            }
        }
        match self.oauth_states.insert(key, encode(state)) {
            Ok(None) => {}
            // The same state twice (never, with 256 random bits): still one entry.
            Ok(Some(_)) => {
                self.pending_oauth_states.fetch_sub(1, Ordering::AcqRel);
            }
            Err(e) => {
                self.pending_oauth_states.fetch_sub(1, Ordering::AcqRel);
                return Err(e.into());
            }
        }
        self.durable().await?;
        Ok(true)
    }

    /// Removes and returns a state: a second take of the same key finds nothing.
    async fn take_oauth_state(
        &self,
        key: &TokenHash,
    ) -> Result<Option<OAuthStateRecord>, StorageError> {
        // The state first: only the one take that removed it goes on to take its
        // link session (written before the state), so a racing loser cannot strip
        // the winner's session.
        let taken = self.oauth_states.remove(key)?;
        match taken {
            Some(bytes) => {
                let link_session = self.oauth_link_sessions.remove(key)?;
                self.pending_oauth_states.fetch_sub(1, Ordering::AcqRel);
                self.durable().await?;
                let mut state: OAuthStateRecord = decode(&bytes)?;
                state.link_session_id = link_session.map(|s| string_of(&s)).transpose()?;
                Ok(Some(state))
            }
            None => Ok(None),
        }
    }

    /// Deletes states past their expiry; returns how many went.
    async fn sweep_oauth_states(&self, now: UnixMillis) -> Result<usize, StorageError> {
        let removed = self
            .blocking(move |s| s.sweep_oauth_states_blocking(now))
            .await?;
        if removed > 0 {
            self.durable().await?;
        }
        Ok(removed)
    }

    /// Started flows waiting for their callback (O(1)).
    fn oauth_state_count(&self) -> usize {
        self.pending_oauth_states.load(Ordering::Acquire)
    }

    // ----- OAuth 2.1 grants -----

    /// Reserves a slot in the count first (as [`Store::put_oauth_state`]
    /// does), then writes the grant and its user code in one transaction. A
    /// user code is taken while its grant is stored and unexpired at the new
    /// grant's `created_at` (the engine's clock); the grant of an expired or
    /// unreadable holder goes, and an entry whose grant is gone is overwritten.
    async fn put_oauth2_grant(
        &self,
        key: &TokenHash,
        grant: &OAuth2GrantRecord,
        user_code: Option<&TokenHash>,
        max_pending: usize,
    ) -> Result<GrantPut, StorageError> {
        let reserved =
            self.stored_oauth2_grants
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                    (n < max_pending).then_some(n + 1)
                });
        if reserved.is_err() {
            return Ok(GrantPut::Full);
        }
        let encoded = encode(grant);
        // Grants first: a transaction applies its trees in this order.
        let result: TxResult<GrantTx> =
            (&self.oauth2_grants, &self.oauth2_user_codes).transaction(|(grants, user_codes)| {
                let mut displaced = 0;
                if let Some(code) = user_code {
                    if let Some(holder) = user_codes.get(code)? {
                        // The same key is replaced below, not displaced.
                        if holder.as_ref() != key.as_slice() {
                            if let Some(bytes) = grants.get(&holder)? {
                                let live = decode::<OAuth2GrantRecord>(&bytes)
                                    .is_ok_and(|held| held.expires_at > grant.created_at);
                                if live {
                                    return Ok(GrantTx::UserCodeTaken);
                                }
                                grants.remove(&holder)?;
                                displaced += 1;
                            }
                        }
                    }
                    user_codes.insert(code.as_slice(), key.as_slice())?;
                }
                // The same key twice (never, with 256 random bits): still one entry.
                if grants.insert(key.as_slice(), encoded.as_slice())?.is_some() {
                    displaced += 1;
                }
                Ok(GrantTx::Stored { displaced })
            });
        match result.map_err(tx_error) {
            Ok(GrantTx::Stored { displaced }) => {
                if displaced > 0 {
                    self.stored_oauth2_grants
                        .fetch_sub(displaced, Ordering::AcqRel);
                }
                self.durable().await?;
                Ok(GrantPut::Stored)
            }
            Ok(GrantTx::UserCodeTaken) => {
                self.stored_oauth2_grants.fetch_sub(1, Ordering::AcqRel);
                Ok(GrantPut::UserCodeTaken)
            }
            Err(e) => {
                self.stored_oauth2_grants.fetch_sub(1, Ordering::AcqRel);
                Err(e)
            }
        }
    }

    async fn oauth2_grant(
        &self,
        key: &TokenHash,
    ) -> Result<Option<OAuth2GrantRecord>, StorageError> {
        self.oauth2_grants.get(key)?.map(|v| decode(&v)).transpose()
    }

    /// The index, then the grant it names; an entry whose grant is gone is absence.
    async fn oauth2_grant_by_user_code(
        &self,
        user_code: &TokenHash,
    ) -> Result<Option<(TokenHash, OAuth2GrantRecord)>, StorageError> {
        let Some(key) = self.oauth2_user_codes.get(user_code)? else {
            return Ok(None);
        };
        let key: TokenHash = key
            .as_ref()
            .try_into()
            .map_err(|_| StorageError::Corrupt("a grant key is not 32 bytes".into()))?;
        match self.oauth2_grants.get(key)? {
            Some(bytes) => Ok(Some((key, decode(&bytes)?))),
            None => Ok(None),
        }
    }

    /// A compare-and-swap on the encoded record.
    async fn replace_oauth2_grant(
        &self,
        key: &TokenHash,
        expected: &OAuth2GrantRecord,
        next: &OAuth2GrantRecord,
    ) -> Result<bool, StorageError> {
        let swapped =
            self.oauth2_grants
                .compare_and_swap(key, Some(encode(expected)), Some(encode(next)))?;
        if swapped.is_err() {
            return Ok(false);
        }
        self.durable().await?;
        Ok(true)
    }

    /// Deletes grants past their expiry (and unreadable ones) and user codes
    /// whose grant is gone; returns how many grants went.
    async fn sweep_oauth2_grants(&self, now: UnixMillis) -> Result<usize, StorageError> {
        let (removed, changed) = self
            .blocking(move |s| s.sweep_oauth2_grants_blocking(now))
            .await?;
        if changed {
            self.durable().await?;
        }
        Ok(removed)
    }

    /// Stored grants (O(1)).
    fn oauth2_grant_count(&self) -> usize {
        self.stored_oauth2_grants.load(Ordering::Acquire)
    }

    // ----- mailed tokens -----

    async fn put_email_token(
        &self,
        hash: &TokenHash,
        token: &EmailTokenRecord,
    ) -> Result<(), StorageError> {
        self.email_tokens.insert(hash, encode(token))?;
        self.durable().await
    }

    async fn take_email_token(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<EmailTokenRecord>, StorageError> {
        match self.email_tokens.remove(hash)? {
            Some(bytes) => {
                self.durable().await?;
                Ok(Some(decode(&bytes)?))
            }
            None => Ok(None),
        }
    }

    async fn sweep_email_tokens(&self, now: UnixMillis) -> Result<usize, StorageError> {
        let removed = self
            .blocking(move |s| s.sweep_email_tokens_blocking(now))
            .await?;
        if removed > 0 {
            self.durable().await?;
        }
        Ok(removed)
    }

    // ----- the mail outbox -----

    async fn enqueue_mail(
        &self,
        mail: &OutboxMailRecord,
        max_queued: usize,
    ) -> Result<bool, StorageError> {
        let reserved = self
            .queued_mails
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max_queued).then_some(n + 1)
            });
        if reserved.is_err() {
            return Ok(false);
        }
        match self.outbox.insert(mail.id.as_bytes(), encode(mail)) {
            Ok(None) => {}
            Ok(Some(_)) => {
                self.queued_mails.fetch_sub(1, Ordering::AcqRel);
            }
            Err(e) => {
                self.queued_mails.fetch_sub(1, Ordering::AcqRel);
                return Err(e.into());
            }
        }
        self.durable().await?;
        Ok(true)
    }

    async fn due_mails(
        &self,
        now: UnixMillis,
        limit: usize,
    ) -> Result<Vec<OutboxMailRecord>, StorageError> {
        self.blocking(move |s| {
            let mut due = Vec::new();
            for entry in s.outbox.iter() {
                let mail: OutboxMailRecord = decode(&entry?.1)?;
                if mail.next_attempt_at <= now {
                    due.push(mail);
                    if due.len() >= limit {
                        break;
                    }
                }
            }
            Ok(due)
        })
        .await
    }

    async fn reschedule_mail(&self, mail: &OutboxMailRecord) -> Result<(), StorageError> {
        let key = mail.id.as_bytes();
        let new = encode(mail);
        // Only while it is still queued: compare-and-swap against what is there.
        loop {
            let Some(current) = self.outbox.get(key)? else {
                return Ok(());
            };
            match self
                .outbox
                .compare_and_swap(key, Some(current), Some(new.clone()))?
            {
                Ok(()) => break,
                Err(_) => continue,
            }
        }
        self.durable().await
    }

    async fn remove_mail(&self, id: &str) -> Result<(), StorageError> {
        if self.outbox.remove(id.as_bytes())?.is_some() {
            self.queued_mails.fetch_sub(1, Ordering::AcqRel);
            self.durable().await?;
        }
        Ok(())
    }

    async fn queued_mail_count(&self) -> Result<u64, StorageError> {
        Ok(self.queued_mails.load(Ordering::Acquire) as u64)
    }

    // ----- signing keys -----

    async fn signing_keys(&self) -> Result<Vec<SigningKeyRecord>, StorageError> {
        self.signing_keys
            .iter()
            .map(|entry| decode(&entry?.1))
            .collect()
    }

    async fn put_signing_key(&self, key: &SigningKeyRecord) -> Result<(), StorageError> {
        self.signing_keys.insert(key.kid.as_bytes(), encode(key))?;
        self.durable().await
    }

    // ----- audit log -----

    /// Appends a security event; it is durable when this returns.
    async fn audit(&self, event: &AuditEvent) -> Result<(), StorageError> {
        let id = self.db.generate_id()?;
        self.audit.insert(id.to_be_bytes(), encode(event))?;
        self.durable().await
    }

    /// The newest `limit` audit events, newest first.
    async fn recent_audit_events(&self, limit: usize) -> Result<Vec<AuditEvent>, StorageError> {
        self.audit
            .iter()
            .rev()
            .take(limit)
            .map(|entry| decode(&entry?.1))
            .collect()
    }

    // ----- ownership in a cluster -----
    //
    // A sled directory is opened by one process only (its lock), and a
    // cluster on sled is refused by the deployment check: every claim is this
    // process's, so no epochs are kept and a fenced handle is the store itself.

    async fn claim_ownership(
        &self,
        user_id: &str,
        _node: &str,
    ) -> Result<Option<i64>, StorageError> {
        Ok(self.users.contains_key(user_id)?.then_some(1))
    }

    async fn holds_ownership(&self, _fence: &crate::Fence) -> Result<bool, StorageError> {
        Ok(true)
    }

    fn fenced(&self, _fence: crate::Fence) -> Arc<dyn Store> {
        Arc::new(self.clone())
    }

    // ----- moving a deployment -----

    // ----- provider tokens -----

    /// One transaction: written only while the account index names the user.
    async fn put_provider_tokens(
        &self,
        tokens: &ProviderTokensRecord,
    ) -> Result<bool, StorageError> {
        let encoded = encode(tokens);
        let key = account_key(&tokens.provider, &tokens.subject);
        let result: TxResult<bool> =
            (&self.accounts, &self.provider_tokens).transaction(|(accounts, provider_tokens)| {
                if accounts.get(&key)?.as_deref() != Some(tokens.user_id.as_bytes()) {
                    return Ok(false);
                }
                provider_tokens.insert(key.as_slice(), encoded.as_slice())?;
                Ok(true)
            });
        let stored = result.map_err(tx_error)?;
        if stored {
            self.durable().await?;
        }
        Ok(stored)
    }

    async fn provider_tokens(
        &self,
        provider: &str,
        subject: &str,
    ) -> Result<Option<ProviderTokensRecord>, StorageError> {
        self.provider_tokens
            .get(account_key(provider, subject))?
            .map(|v| decode(&v))
            .transpose()
    }

    async fn export(&self) -> Result<Snapshot, StorageError> {
        self.blocking(|s| {
            let mut snapshot = Snapshot::default();
            for entry in s.users.iter() {
                snapshot.users.push(decode(&entry?.1)?);
            }
            for entry in s.sessions.iter() {
                snapshot.sessions.push(decode(&entry?.1)?);
            }
            // A hash can be in a chunk and a tail at once (a swap lost after a spill).
            let mut retired = std::collections::BTreeSet::new();
            for entry in s.families.iter() {
                let (_, value) = entry?;
                let (family, tail) = retired_tokens::split(&value)?;
                for hash in retired_tokens::hashes(tail) {
                    retired.insert((hash, family.session_id.clone()));
                }
                snapshot.families.push(family);
            }
            for entry in s.retired_chunks.iter() {
                let (key, chunk) = entry?;
                let session_id = retired_tokens::session_of(&key)?;
                for hash in retired_tokens::hashes(&chunk) {
                    retired.insert((hash, session_id.to_string()));
                }
            }
            // In hash order, as every backend exports them.
            snapshot.retired_tokens = retired.into_iter().collect();
            for entry in s.signing_keys.iter() {
                snapshot.signing_keys.push(decode(&entry?.1)?);
            }
            for entry in s.audit.iter() {
                snapshot.audit.push(decode(&entry?.1)?);
            }
            for entry in s.email_tokens.iter() {
                let (hash, value) = entry?;
                let hash: TokenHash = hash.as_ref().try_into().map_err(|_| {
                    StorageError::Corrupt("a mailed token key is not 32 bytes".into())
                })?;
                snapshot.email_tokens.push((hash, decode(&value)?));
            }
            for entry in s.outbox.iter() {
                snapshot.outbox.push(decode(&entry?.1)?);
            }
            for entry in s.provider_tokens.iter() {
                snapshot.provider_tokens.push(decode(&entry?.1)?);
            }
            Ok(snapshot)
        })
        .await
    }

    async fn import(&self, snapshot: &Snapshot) -> Result<(), StorageError> {
        if !self.users.is_empty() || !self.signing_keys.is_empty() {
            return Err(StorageError::NotEmpty("users or signing keys".into()));
        }
        let snapshot = snapshot.clone();
        self.blocking(move |s| {
            for user in &snapshot.users {
                s.users.insert(user.id.as_bytes(), encode(user))?;
                if let Some(email) = &user.email {
                    s.emails.insert(email.as_bytes(), user.id.as_bytes())?;
                }
                for account in &user.accounts {
                    s.accounts.insert(
                        account_key(&account.provider, &account.subject),
                        user.id.as_bytes(),
                    )?;
                }
            }
            for family in &snapshot.families {
                s.families
                    .insert(family.session_id.as_bytes(), encode(family))?;
                s.session_owners
                    .insert(family.session_id.as_bytes(), family.user_id.as_bytes())?;
            }
            for session in &snapshot.sessions {
                s.session_owners
                    .insert(session.id.as_bytes(), session.user_id.as_bytes())?;
                s.sessions
                    .insert(session_key(&session.user_id, &session.id), encode(session))?;
            }
            retired_tokens::merge_retired(
                &s.retired_chunks,
                snapshot
                    .retired_tokens
                    .iter()
                    .map(|(hash, session_id)| (*hash, session_id.as_str())),
            )?;
            for key in &snapshot.signing_keys {
                s.signing_keys.insert(key.kid.as_bytes(), encode(key))?;
            }
            for event in &snapshot.audit {
                let id = s.db.generate_id()?;
                s.audit.insert(id.to_be_bytes(), encode(event))?;
            }
            for (hash, token) in &snapshot.email_tokens {
                s.email_tokens.insert(hash, encode(token))?;
            }
            for mail in &snapshot.outbox {
                if s.outbox.insert(mail.id.as_bytes(), encode(mail))?.is_none() {
                    s.queued_mails.fetch_add(1, Ordering::AcqRel);
                }
            }
            for tokens in &snapshot.provider_tokens {
                s.provider_tokens.insert(
                    account_key(&tokens.provider, &tokens.subject),
                    encode(tokens),
                )?;
            }
            s.db.flush()?;
            Ok(())
        })
        .await
    }
}
