//! [`PostgresStore`]: the shared backend, for several nodes on one database.
//!
//! One table per concept (see `migrations/`): key columns that are indexed,
//! constrained or conditioned on, plus the record as the codec's bytes. Every
//! change that touches several rows is one statement (data-modifying CTEs) or
//! one transaction, and a call returns only after its commit, which is durable
//! (`synchronous_commit` is left on). Hot methods are one prepared, cached
//! statement: one round trip. Uniqueness is the database's: a unique violation
//! on the email or account key is [`StorageError::EmailTaken`] /
//! [`StorageError::AccountTaken`].

mod connect;
mod errors;
mod migrate;
mod redact;
mod snapshot;

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use deadpool_postgres::{Object, Pool};
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

use crate::codec::{decode, encode};
use crate::records::*;
use crate::store::{RotationOutcome, Snapshot, Store};
use crate::{Fence, PostgresConfig, ReleaseWatch, StorageError, UnixMillis};
use errors::{classify, classify_pool, violates_unique, OAUTH2_USER_CODE_UNIQUE};

pub use migrate::{check, SchemaStatus, KNOWN_VERSION};
pub use redact::redacted_url;

/// A handle to the pool and the state kept beside it. Cheap to clone.
#[derive(Clone)]
pub struct PostgresStore {
    pool: Pool,
    /// Shared by every clone: see [`Store::release_watch`].
    handles: Arc<()>,
    /// Whether the latest operation reached the database.
    healthy: Arc<AtomicBool>,
    /// This process's view of `oauth_states`' size: counted at open, kept
    /// through puts and takes, corrected at every sweep (other nodes change it too).
    pending_oauth_states: Arc<AtomicUsize>,
    /// This process's view of `oauth2_grants`' size, kept the same way.
    stored_oauth2_grants: Arc<AtomicUsize>,
    /// Set on a handle made by [`Store::fenced`]: each of its statements runs
    /// in a transaction that first finds the claim still current.
    fence: Option<Arc<Fence>>,
}

type Params<'a> = [&'a (dyn ToSql + Sync)];

impl PostgresStore {
    /// Connects, migrates the schema to this build's version (or refuses a
    /// newer one with [`StorageError::SchemaTooNew`]) and counts pending OAuth
    /// states and stored OAuth 2.1 grants.
    pub async fn open(config: &PostgresConfig) -> Result<PostgresStore, StorageError> {
        let pool = connect::pool(config)?;
        let mut client = pool.get().await.map_err(classify_pool)?;
        migrate::migrate(&mut client).await?;
        let counts = client
            .query_one(
                "SELECT (SELECT count(*) FROM oauth_states), (SELECT count(*) FROM oauth2_grants)",
                &[],
            )
            .await
            .map_err(classify)?;
        let (pending, grants): (i64, i64) = (counts.get(0), counts.get(1));
        drop(client);
        Ok(PostgresStore {
            pool,
            handles: Arc::new(()),
            healthy: Arc::new(AtomicBool::new(true)),
            pending_oauth_states: Arc::new(AtomicUsize::new(pending as usize)),
            stored_oauth2_grants: Arc::new(AtomicUsize::new(grants as usize)),
            fence: None,
        })
    }

    async fn client(&self) -> Result<Object, StorageError> {
        self.pool.get().await.map_err(classify_pool)
    }

    /// Runs `work`, recording from its outcome whether the database works.
    async fn run<T>(
        &self,
        work: impl Future<Output = Result<T, StorageError>>,
    ) -> Result<T, StorageError> {
        let result = work.await;
        match &result {
            Ok(_) => self.healthy.store(true, Ordering::Release),
            Err(StorageError::Unavailable(_)) => self.healthy.store(false, Ordering::Release),
            Err(_) => {}
        }
        result
    }

    /// One cached statement, one round trip: every row. On a fenced handle,
    /// a transaction that checks the fence first (three round trips).
    async fn query(&self, sql: &str, params: &Params<'_>) -> Result<Vec<Row>, StorageError> {
        self.run(async {
            let mut client = self.client().await?;
            let Some(fence) = &self.fence else {
                let statement = client.prepare_cached(sql).await.map_err(classify)?;
                return client.query(&statement, params).await.map_err(classify);
            };
            let tx = client.transaction().await.map_err(classify)?;
            check_fence(&tx, fence).await?;
            let statement = tx.prepare_cached(sql).await.map_err(classify)?;
            let rows = tx.query(&statement, params).await.map_err(classify)?;
            tx.commit().await.map_err(classify)?;
            Ok(rows)
        })
        .await
    }

    /// As [`PostgresStore::query`]: at most one row.
    async fn query_opt(&self, sql: &str, params: &Params<'_>) -> Result<Option<Row>, StorageError> {
        let mut rows = self.query(sql, params).await?;
        if rows.len() > 1 {
            return Err(StorageError::Backend(format!(
                "a query for at most one row returned {}",
                rows.len()
            )));
        }
        Ok(rows.pop())
    }

    /// As [`PostgresStore::query`]: how many rows it changed.
    async fn execute(&self, sql: &str, params: &Params<'_>) -> Result<u64, StorageError> {
        self.run(async {
            let mut client = self.client().await?;
            let Some(fence) = &self.fence else {
                let statement = client.prepare_cached(sql).await.map_err(classify)?;
                return client.execute(&statement, params).await.map_err(classify);
            };
            let tx = client.transaction().await.map_err(classify)?;
            check_fence(&tx, fence).await?;
            let statement = tx.prepare_cached(sql).await.map_err(classify)?;
            let changed = tx.execute(&statement, params).await.map_err(classify)?;
            tx.commit().await.map_err(classify)?;
            Ok(changed)
        })
        .await
    }

    /// One transaction over a table of short-lived unauthenticated input
    /// (`key`, `expires_at`, `record` columns): rows expired at `now`, then rows
    /// whose record this build cannot read; returns (removed, remaining).
    async fn sweep_bounded_table<R: serde::de::DeserializeOwned>(
        &self,
        table: &'static str,
        what: &'static str,
        now: UnixMillis,
    ) -> Result<(usize, usize), StorageError> {
        self.run(async {
            let mut client = self.client().await?;
            let tx = client.transaction().await.map_err(classify)?;
            let expired = tx
                .execute(
                    &format!("DELETE FROM {table} WHERE expires_at <= $1"),
                    &[&now],
                )
                .await
                .map_err(classify)?;
            let unreadable: Vec<Vec<u8>> = tx
                .query(&format!("SELECT key, record FROM {table}"), &[])
                .await
                .map_err(classify)?
                .iter()
                .filter(|row| record::<R>(row, 1).is_err())
                .map(|row| row.get::<_, Vec<u8>>(0))
                .collect();
            let unreadable = if unreadable.is_empty() {
                0
            } else {
                tracing::warn!(count = unreadable.len(), "removing unreadable {what}");
                tx.execute(
                    &format!("DELETE FROM {table} WHERE key = ANY($1)"),
                    &[&unreadable],
                )
                .await
                .map_err(classify)?
            };
            let remaining: i64 = tx
                .query_one(&format!("SELECT count(*) FROM {table}"), &[])
                .await
                .map_err(classify)?
                .get(0);
            tx.commit().await.map_err(classify)?;
            Ok(((expired + unreadable) as usize, remaining as usize))
        })
        .await
    }

    fn decrement_pending(&self, by: usize) {
        // Saturating: another node may take a state this one counted, or the reverse.
        saturating_decrement(&self.pending_oauth_states, by);
    }
}

/// Lowers an in-memory count, never below zero.
fn saturating_decrement(count: &AtomicUsize, by: usize) {
    let _ = count.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
        Some(n.saturating_sub(by))
    });
}

/// The record in column `index`.
/// Inside a transaction: the fence's claim is still the user's, and stays so
/// until the transaction ends (a claim by another node waits for the share
/// lock); [`StorageError::Fenced`] otherwise.
async fn check_fence(
    tx: &deadpool_postgres::Transaction<'_>,
    fence: &Fence,
) -> Result<(), StorageError> {
    let statement = tx
        .prepare_cached("SELECT 1 FROM actor_owners WHERE user_id = $1 AND epoch = $2 FOR SHARE")
        .await
        .map_err(classify)?;
    match tx
        .query_opt(&statement, &[&fence.user_id, &fence.epoch])
        .await
        .map_err(classify)?
    {
        Some(_) => Ok(()),
        None => Err(StorageError::Fenced),
    }
}

fn record<T: serde::de::DeserializeOwned>(row: &Row, index: usize) -> Result<T, StorageError> {
    decode(row.get::<_, &[u8]>(index))
}

fn records<T: serde::de::DeserializeOwned>(rows: &[Row]) -> Result<Vec<T>, StorageError> {
    rows.iter().map(|row| record(row, 0)).collect()
}

/// A `LIKE` pattern matching strings that start with `prefix` (escape `\`).
fn like_prefix(prefix: &str) -> String {
    let mut pattern = String::with_capacity(prefix.len() + 1);
    for c in prefix.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

fn limit(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

const UPSERT_USER_RECORD: &str = "INSERT INTO users (id, record) VALUES ($1::text, $2::bytea)
    ON CONFLICT (id) DO UPDATE SET record = EXCLUDED.record";

const UPSERT_SESSION: &str =
    "INSERT INTO sessions (id, user_id, expires_at, absolute_expires_at, record)
    VALUES ($1, $2, $3, $4, $5)
    ON CONFLICT (id) DO UPDATE SET user_id = EXCLUDED.user_id, expires_at = EXCLUDED.expires_at,
        absolute_expires_at = EXCLUDED.absolute_expires_at, record = EXCLUDED.record";

const UPSERT_FAMILY: &str = "INSERT INTO families
        (session_id, user_id, generation, revoked, idle_expires_at, absolute_expires_at, record)
    VALUES ($1, $2, $3, $4, $5, $6, $7)
    ON CONFLICT (session_id) DO UPDATE SET user_id = EXCLUDED.user_id,
        generation = EXCLUDED.generation, revoked = EXCLUDED.revoked,
        idle_expires_at = EXCLUDED.idle_expires_at,
        absolute_expires_at = EXCLUDED.absolute_expires_at, record = EXCLUDED.record";

/// The session and its family in one statement (the family's parameters first).
const UPSERT_SESSION_WITH_FAMILY: &str = "WITH family AS (
    INSERT INTO families
        (session_id, user_id, generation, revoked, idle_expires_at, absolute_expires_at, record)
    VALUES ($1::text, $2::text, $3::bigint, $4::boolean, $5::bigint, $6::bigint, $7::bytea)
    ON CONFLICT (session_id) DO UPDATE SET user_id = EXCLUDED.user_id,
        generation = EXCLUDED.generation, revoked = EXCLUDED.revoked,
        idle_expires_at = EXCLUDED.idle_expires_at,
        absolute_expires_at = EXCLUDED.absolute_expires_at, record = EXCLUDED.record
)
INSERT INTO sessions (id, user_id, expires_at, absolute_expires_at, record)
    VALUES ($8, $9, $10, $11, $12)
    ON CONFLICT (id) DO UPDATE SET user_id = EXCLUDED.user_id, expires_at = EXCLUDED.expires_at,
        absolute_expires_at = EXCLUDED.absolute_expires_at, record = EXCLUDED.record";

/// The family's columns besides its key: (generation, revoked, record).
fn family_columns(family: &FamilyRecord) -> (i64, bool, Vec<u8>) {
    (
        i64::from(family.generation),
        family.revoked.is_some(),
        encode(family),
    )
}

#[async_trait]
impl Store for PostgresStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    /// The latest operation reached the database. O(1), no I/O.
    fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Acquire)
    }

    /// `SELECT 1` on a pooled connection, and records the answer.
    async fn recheck_health(&self) -> bool {
        let probe = async {
            let client = self.client().await?;
            client.simple_query("SELECT 1").await.map_err(classify)?;
            Ok::<_, StorageError>(())
        };
        let ok = probe.await.is_ok();
        self.healthy.store(ok, Ordering::Release);
        ok
    }

    /// Nothing to do: every acknowledged change was a durable commit.
    async fn flush(&self) -> Result<(), StorageError> {
        Ok(())
    }

    /// Released once every clone (and so the pool and its connections) is gone.
    fn release_watch(&self) -> ReleaseWatch {
        ReleaseWatch::new(&self.handles)
    }

    // ----- users and their indexes -----

    /// One statement: the user row (its email is unique) and one account row
    /// per linked account (the key is unique). Any violation undoes all of it.
    async fn create_user(&self, user: &UserRecord) -> Result<(), StorageError> {
        let providers: Vec<&str> = user.accounts.iter().map(|a| a.provider.as_str()).collect();
        let subjects: Vec<&str> = user.accounts.iter().map(|a| a.subject.as_str()).collect();
        self.execute(
            "WITH new_user AS (
                INSERT INTO users (id, email, record) VALUES ($1::text, $2::text, $3::bytea)
                RETURNING id
            )
            INSERT INTO accounts (provider, subject, user_id)
            SELECT a.provider, a.subject, new_user.id
              FROM new_user, unnest($4::text[], $5::text[]) AS a(provider, subject)",
            &[&user.id, &user.email, &encode(user), &providers, &subjects],
        )
        .await?;
        Ok(())
    }

    /// One statement: the user row (which holds the email index) and its accounts.
    async fn delete_user(&self, user_id: &str) -> Result<bool, StorageError> {
        let row = self
            .query_opt(
                "WITH gone AS (DELETE FROM users WHERE id = $1 RETURNING id),
                      released AS (DELETE FROM accounts WHERE user_id IN (SELECT id FROM gone))
                 SELECT count(*) FROM gone",
                &[&user_id],
            )
            .await?;
        Ok(row.is_some_and(|row| row.get::<_, i64>(0) > 0))
    }

    /// Replaces the record; the email column (the index) is left as it was.
    async fn put_user(&self, user: &UserRecord) -> Result<(), StorageError> {
        self.execute(UPSERT_USER_RECORD, &[&user.id, &encode(user)])
            .await?;
        Ok(())
    }

    /// One statement: claims the account unless another user holds it, and
    /// stores the user only if the claim succeeded.
    async fn link_account(
        &self,
        user: &UserRecord,
        account: &LinkedAccount,
    ) -> Result<(), StorageError> {
        let row = self
            .query_opt(
                "WITH claimed AS (
                    INSERT INTO accounts (provider, subject, user_id)
                    VALUES ($1::text, $2::text, $3::text)
                    ON CONFLICT (provider, subject) DO UPDATE SET user_id = EXCLUDED.user_id
                        WHERE accounts.user_id = EXCLUDED.user_id
                    RETURNING 1
                ), stored AS (
                    INSERT INTO users (id, record) SELECT $3::text, $4::bytea FROM claimed
                    ON CONFLICT (id) DO UPDATE SET record = EXCLUDED.record
                    RETURNING 1
                )
                SELECT count(*) FROM stored",
                &[&account.provider, &account.subject, &user.id, &encode(user)],
            )
            .await?;
        match row.map(|r| r.get::<_, i64>(0)) {
            Some(1) => Ok(()),
            _ => Err(StorageError::AccountTaken),
        }
    }

    /// One statement: releases the account if this user holds it, stores the user.
    async fn unlink_account(
        &self,
        user: &UserRecord,
        provider: &str,
        subject: &str,
    ) -> Result<(), StorageError> {
        self.execute(
            "WITH released AS (
                DELETE FROM accounts
                 WHERE provider = $3::text AND subject = $4::text AND user_id = $1::text
            )
            INSERT INTO users (id, record) VALUES ($1::text, $2::bytea)
            ON CONFLICT (id) DO UPDATE SET record = EXCLUDED.record",
            &[&user.id, &encode(user), &provider, &subject],
        )
        .await?;
        Ok(())
    }

    async fn user(&self, id: &str) -> Result<Option<UserRecord>, StorageError> {
        self.query_opt("SELECT record FROM users WHERE id = $1", &[&id])
            .await?
            .map(|row| record(&row, 0))
            .transpose()
    }

    async fn user_id_by_email(&self, email: &str) -> Result<Option<String>, StorageError> {
        Ok(self
            .query_opt("SELECT id FROM users WHERE email = $1", &[&email])
            .await?
            .map(|row| row.get(0)))
    }

    async fn user_id_by_account(
        &self,
        provider: &str,
        subject: &str,
    ) -> Result<Option<String>, StorageError> {
        Ok(self
            .query_opt(
                "SELECT user_id FROM accounts WHERE provider = $1 AND subject = $2",
                &[&provider, &subject],
            )
            .await?
            .map(|row| row.get(0)))
    }

    /// A prefix `LIKE` on the byte-ordered email column, which its unique index serves.
    async fn find_users_by_email(
        &self,
        email_prefix: &str,
        limit_to: usize,
    ) -> Result<Vec<UserRecord>, StorageError> {
        let rows = self
            .query(
                "SELECT record FROM users WHERE email LIKE $1 ESCAPE '\\' ORDER BY email LIMIT $2",
                &[&like_prefix(email_prefix), &limit(limit_to)],
            )
            .await?;
        records(&rows)
    }

    async fn user_count(&self) -> Result<u64, StorageError> {
        let rows = self.query("SELECT count(*) FROM users", &[]).await?;
        Ok(rows.first().map_or(0, |row| row.get::<_, i64>(0) as u64))
    }

    // ----- sessions and refresh families -----

    /// One statement: the session (its owner is its `user_id`) and its family.
    async fn put_session(
        &self,
        session: &SessionRecord,
        family: Option<&FamilyRecord>,
    ) -> Result<(), StorageError> {
        let encoded = encode(session);
        match family {
            None => {
                self.execute(
                    UPSERT_SESSION,
                    &[
                        &session.id,
                        &session.user_id,
                        &session.expires_at,
                        &session.absolute_expires_at,
                        &encoded,
                    ],
                )
                .await?
            }
            Some(f) => {
                let (generation, revoked, family_record) = family_columns(f);
                self.execute(
                    UPSERT_SESSION_WITH_FAMILY,
                    &[
                        // Keyed by the session, as the family belongs to it.
                        &session.id,
                        &f.user_id,
                        &generation,
                        &revoked,
                        &f.idle_expires_at,
                        &f.absolute_expires_at,
                        &family_record,
                        &session.id,
                        &session.user_id,
                        &session.expires_at,
                        &session.absolute_expires_at,
                        &encoded,
                    ],
                )
                .await?
            }
        };
        Ok(())
    }

    async fn put_family(&self, family: &FamilyRecord) -> Result<(), StorageError> {
        let (generation, revoked, encoded) = family_columns(family);
        self.execute(
            UPSERT_FAMILY,
            &[
                &family.session_id,
                &family.user_id,
                &generation,
                &revoked,
                &family.idle_expires_at,
                &family.absolute_expires_at,
                &encoded,
            ],
        )
        .await?;
        Ok(())
    }

    /// One statement, one round trip: the update is conditional on the stored
    /// generation and on the family not being revoked, and the retired token
    /// is recorded only by a rotation that committed. Of two concurrent
    /// rotations the second waits for the first's row lock, then finds the
    /// generation moved and updates nothing.
    async fn rotate_family(
        &self,
        previous: &FamilyRecord,
        next: &FamilyRecord,
        retired: &TokenHash,
    ) -> Result<RotationOutcome, StorageError> {
        let (generation, revoked, encoded) = family_columns(next);
        let row = self
            .query_opt(
                "WITH rotated AS (
                    UPDATE families
                       SET generation = $3::bigint, revoked = $4::boolean,
                           idle_expires_at = $5::bigint, absolute_expires_at = $6::bigint,
                           record = $7::bytea
                     WHERE session_id = $1::text AND generation = $2::bigint AND NOT revoked
                    RETURNING session_id
                ), retired AS (
                    INSERT INTO retired_refresh_tokens (hash, session_id)
                    SELECT $8::bytea, session_id FROM rotated
                    ON CONFLICT (hash) DO NOTHING
                )
                SELECT count(*) FROM rotated",
                &[
                    &next.session_id,
                    &i64::from(previous.generation),
                    &generation,
                    &revoked,
                    &next.idle_expires_at,
                    &next.absolute_expires_at,
                    &encoded,
                    &&retired[..],
                ],
            )
            .await?;
        Ok(match row.map(|r| r.get::<_, i64>(0)) {
            Some(1) => RotationOutcome::Committed,
            _ => RotationOutcome::Conflict,
        })
    }

    async fn was_retired_by(
        &self,
        session_id: &str,
        hash: &TokenHash,
    ) -> Result<bool, StorageError> {
        Ok(self
            .query_opt(
                "SELECT 1 FROM retired_refresh_tokens WHERE hash = $1 AND session_id = $2",
                &[&&hash[..], &session_id],
            )
            .await?
            .is_some())
    }

    /// One transaction: the families are locked and read, the sessions
    /// deleted, and each family not yet revoked is stored revoked.
    async fn remove_sessions(
        &self,
        user_id: &str,
        session_ids: &[String],
        revocation: FamilyRevocation,
    ) -> Result<(), StorageError> {
        if session_ids.is_empty() {
            return Ok(());
        }
        self.run(async {
            let mut client = self.client().await?;
            let tx = client.transaction().await.map_err(classify)?;
            if let Some(fence) = &self.fence {
                check_fence(&tx, fence).await?;
            }
            let lock = tx
                .prepare_cached(
                    "SELECT record FROM families WHERE session_id = ANY($1) ORDER BY session_id
                     FOR UPDATE",
                )
                .await
                .map_err(classify)?;
            let mut revoked_ids = Vec::new();
            let mut revoked_records = Vec::new();
            for row in tx.query(&lock, &[&session_ids]).await.map_err(classify)? {
                let mut family: FamilyRecord = record(&row, 0)?;
                if family.revoked.is_none() {
                    family.revoked = Some(revocation);
                    revoked_records.push(encode(&family));
                    revoked_ids.push(family.session_id);
                }
            }
            let delete = tx
                .prepare_cached("DELETE FROM sessions WHERE user_id = $1 AND id = ANY($2)")
                .await
                .map_err(classify)?;
            tx.execute(&delete, &[&user_id, &session_ids])
                .await
                .map_err(classify)?;
            if !revoked_ids.is_empty() {
                let revoke = tx
                    .prepare_cached(
                        "UPDATE families AS f SET revoked = true, record = v.record
                           FROM unnest($1::text[], $2::bytea[]) AS v(session_id, record)
                          WHERE f.session_id = v.session_id",
                    )
                    .await
                    .map_err(classify)?;
                tx.execute(&revoke, &[&revoked_ids, &revoked_records])
                    .await
                    .map_err(classify)?;
            }
            tx.commit().await.map_err(classify)
        })
        .await
    }

    async fn sessions_of(&self, user_id: &str) -> Result<Vec<SessionRecord>, StorageError> {
        let rows = self
            .query(
                "SELECT record FROM sessions WHERE user_id = $1 ORDER BY id",
                &[&user_id],
            )
            .await?;
        records(&rows)
    }

    async fn family(&self, session_id: &str) -> Result<Option<FamilyRecord>, StorageError> {
        self.query_opt(
            "SELECT record FROM families WHERE session_id = $1",
            &[&session_id],
        )
        .await?
        .map(|row| record(&row, 0))
        .transpose()
    }

    /// The live session's user, else its family's (a revoked tombstone's).
    async fn session_owner(&self, session_id: &str) -> Result<Option<String>, StorageError> {
        Ok(self
            .query_opt(
                "SELECT user_id FROM (
                    SELECT user_id, 0 AS rank FROM sessions WHERE id = $1
                    UNION ALL
                    SELECT user_id, 1 AS rank FROM families WHERE session_id = $1
                 ) AS owners ORDER BY rank LIMIT 1",
                &[&session_id],
            )
            .await?
            .map(|row| row.get(0)))
    }

    /// One transaction: sessions past their own (or their family's) expiry,
    /// then finished families without a session, then retired tokens whose
    /// family is gone.
    async fn sweep_expired_sessions(&self, now: UnixMillis) -> Result<usize, StorageError> {
        self.run(async {
            let mut client = self.client().await?;
            let tx = client.transaction().await.map_err(classify)?;
            let sessions = tx
                .execute(
                    "DELETE FROM sessions WHERE id IN (
                        SELECT s.id FROM sessions AS s
                          LEFT JOIN families AS f ON f.session_id = s.id
                         WHERE CASE WHEN f.session_id IS NULL
                                    THEN s.expires_at <= $1 OR s.absolute_expires_at <= $1
                                    ELSE f.idle_expires_at <= $1 OR f.absolute_expires_at <= $1
                               END)",
                    &[&now],
                )
                .await
                .map_err(classify)?;
            let families = tx
                .execute(
                    "DELETE FROM families AS f
                      WHERE (f.absolute_expires_at <= $1
                             OR (NOT f.revoked AND f.idle_expires_at <= $1))
                        AND NOT EXISTS (SELECT 1 FROM sessions AS s
                                         WHERE s.id = f.session_id AND s.user_id = f.user_id)",
                    &[&now],
                )
                .await
                .map_err(classify)?;
            tx.execute(
                "DELETE FROM retired_refresh_tokens AS r
                  WHERE NOT EXISTS (SELECT 1 FROM families AS f WHERE f.session_id = r.session_id)",
                &[],
            )
            .await
            .map_err(classify)?;
            tx.commit().await.map_err(classify)?;
            Ok((sessions + families) as usize)
        })
        .await
    }

    // ----- OAuth states -----

    /// Reserves a slot in the in-memory count first, so concurrent puts in
    /// this process never pass `max_pending`; a failed or duplicate insert gives it back.
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
        let inserted = self
            .query_opt(
                "INSERT INTO oauth_states (key, expires_at, link_session_id, record)
                 VALUES ($1, $2, $3, $4)
                 ON CONFLICT (key) DO UPDATE SET expires_at = EXCLUDED.expires_at,
                     link_session_id = EXCLUDED.link_session_id, record = EXCLUDED.record
                 RETURNING (xmax = 0)",
                &[
                    &&key[..],
                    &state.expires_at,
                    &state.link_session_id,
                    &encode(state),
                ],
            )
            .await;
        match inserted {
            Ok(Some(row)) if row.get::<_, bool>(0) => Ok(true),
            // The same key twice (never, with 256 random bits): still one entry.
            Ok(_) => {
                self.decrement_pending(1);
                Ok(true)
            }
            Err(e) => {
                self.decrement_pending(1);
                Err(e)
            }
        }
    }

    /// `DELETE ... RETURNING`: of two takes of one key, one gets the row.
    async fn take_oauth_state(
        &self,
        key: &TokenHash,
    ) -> Result<Option<OAuthStateRecord>, StorageError> {
        let Some(row) = self
            .query_opt(
                "DELETE FROM oauth_states WHERE key = $1 RETURNING record, link_session_id",
                &[&&key[..]],
            )
            .await?
        else {
            return Ok(None);
        };
        self.decrement_pending(1);
        let mut state: OAuthStateRecord = record(&row, 0)?;
        state.link_session_id = row.get(1);
        Ok(Some(state))
    }

    /// Expired states, then any this build cannot read (which could never be
    /// taken); the count is then set to what is stored.
    async fn sweep_oauth_states(&self, now: UnixMillis) -> Result<usize, StorageError> {
        let (removed, remaining) = self
            .sweep_bounded_table::<OAuthStateRecord>("oauth_states", "OAuth states", now)
            .await?;
        self.pending_oauth_states
            .store(remaining, Ordering::Release);
        Ok(removed)
    }

    fn oauth_state_count(&self) -> usize {
        self.pending_oauth_states.load(Ordering::Acquire)
    }

    // ----- OAuth 2.1 grants -----

    /// Reserves a slot in the in-memory count first (as `put_oauth_state`
    /// does), then one transaction: an expired holder of the user code (expired
    /// at the new grant's `created_at`, the engine's clock) is deleted, and the
    /// grant inserted; the unique user code refuses a live holder, which rolls
    /// everything back.
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
        let user_code = user_code.map(|code| &code[..]);
        // Some(grants already counted that went), or None when the code is taken.
        let outcome = self
            .run(async {
                let mut client = self.client().await?;
                let tx = client.transaction().await.map_err(classify)?;
                let mut displaced = 0;
                if let Some(code) = user_code {
                    let release = tx
                        .prepare_cached(
                            "DELETE FROM oauth2_grants
                              WHERE user_code = $1 AND key <> $2 AND expires_at <= $3",
                        )
                        .await
                        .map_err(classify)?;
                    displaced += tx
                        .execute(&release, &[&code, &&key[..], &grant.created_at])
                        .await
                        .map_err(classify)? as usize;
                }
                let insert = tx
                    .prepare_cached(
                        "INSERT INTO oauth2_grants (key, expires_at, user_code, record)
                         VALUES ($1, $2, $3, $4)
                         ON CONFLICT (key) DO UPDATE SET expires_at = EXCLUDED.expires_at,
                             user_code = EXCLUDED.user_code, record = EXCLUDED.record
                         RETURNING (xmax = 0)",
                    )
                    .await
                    .map_err(classify)?;
                let row = match tx
                    .query_one(
                        &insert,
                        &[&&key[..], &grant.expires_at, &user_code, &encoded],
                    )
                    .await
                {
                    Ok(row) => row,
                    // Dropping the transaction rolls back the release above too.
                    Err(e) if violates_unique(&e, OAUTH2_USER_CODE_UNIQUE) => return Ok(None),
                    Err(e) => return Err(classify(e)),
                };
                // The same key twice (never, with 256 random bits): still one row.
                if !row.get::<_, bool>(0) {
                    displaced += 1;
                }
                tx.commit().await.map_err(classify)?;
                Ok(Some(displaced))
            })
            .await;
        match outcome {
            Ok(Some(displaced)) => {
                saturating_decrement(&self.stored_oauth2_grants, displaced);
                Ok(GrantPut::Stored)
            }
            Ok(None) => {
                saturating_decrement(&self.stored_oauth2_grants, 1);
                Ok(GrantPut::UserCodeTaken)
            }
            Err(e) => {
                saturating_decrement(&self.stored_oauth2_grants, 1);
                Err(e)
            }
        }
    }

    async fn oauth2_grant(
        &self,
        key: &TokenHash,
    ) -> Result<Option<OAuth2GrantRecord>, StorageError> {
        self.query_opt(
            "SELECT record FROM oauth2_grants WHERE key = $1",
            &[&&key[..]],
        )
        .await?
        .map(|row| record(&row, 0))
        .transpose()
    }

    async fn oauth2_grant_by_user_code(
        &self,
        user_code: &TokenHash,
    ) -> Result<Option<(TokenHash, OAuth2GrantRecord)>, StorageError> {
        let Some(row) = self
            .query_opt(
                "SELECT key, record FROM oauth2_grants WHERE user_code = $1",
                &[&&user_code[..]],
            )
            .await?
        else {
            return Ok(None);
        };
        let key: TokenHash = row
            .get::<_, &[u8]>(0)
            .try_into()
            .map_err(|_| StorageError::Corrupt("a grant key is not 32 bytes".into()))?;
        Ok(Some((key, record(&row, 1)?)))
    }

    /// One conditional `UPDATE` on the stored bytes: of two racing updates,
    /// the second re-reads the row the first committed and matches nothing.
    async fn replace_oauth2_grant(
        &self,
        key: &TokenHash,
        expected: &OAuth2GrantRecord,
        next: &OAuth2GrantRecord,
    ) -> Result<bool, StorageError> {
        let updated = self
            .execute(
                "UPDATE oauth2_grants SET expires_at = $3, record = $4
                  WHERE key = $1 AND record = $2",
                &[
                    &&key[..],
                    &encode(expected),
                    &next.expires_at,
                    &encode(next),
                ],
            )
            .await?;
        Ok(updated == 1)
    }

    /// Expired grants, then any this build cannot read (their user codes are
    /// columns of the same rows); the count is then set to what is stored.
    async fn sweep_oauth2_grants(&self, now: UnixMillis) -> Result<usize, StorageError> {
        let (removed, remaining) = self
            .sweep_bounded_table::<OAuth2GrantRecord>("oauth2_grants", "OAuth 2.1 grants", now)
            .await?;
        self.stored_oauth2_grants
            .store(remaining, Ordering::Release);
        Ok(removed)
    }

    fn oauth2_grant_count(&self) -> usize {
        self.stored_oauth2_grants.load(Ordering::Acquire)
    }

    // ----- mailed tokens -----

    async fn put_email_token(
        &self,
        hash: &TokenHash,
        token: &EmailTokenRecord,
    ) -> Result<(), StorageError> {
        self.execute(
            "INSERT INTO email_tokens (hash, expires_at, record) VALUES ($1, $2, $3)
             ON CONFLICT (hash) DO UPDATE SET expires_at = EXCLUDED.expires_at,
                 record = EXCLUDED.record",
            &[&&hash[..], &token.expires_at, &encode(token)],
        )
        .await?;
        Ok(())
    }

    /// `DELETE ... RETURNING`: of two takes of one hash, one gets the row.
    async fn take_email_token(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<EmailTokenRecord>, StorageError> {
        self.query_opt(
            "DELETE FROM email_tokens WHERE hash = $1 RETURNING record",
            &[&&hash[..]],
        )
        .await?
        .map(|row| record(&row, 0))
        .transpose()
    }

    async fn sweep_email_tokens(&self, now: UnixMillis) -> Result<usize, StorageError> {
        let expired = self
            .execute("DELETE FROM email_tokens WHERE expires_at <= $1", &[&now])
            .await?;
        Ok(expired as usize)
    }

    // ----- the mail outbox -----

    /// The bound is checked in the same statement; nodes inserting at the
    /// same moment may pass it by a few mails, never by more.
    async fn enqueue_mail(
        &self,
        mail: &OutboxMailRecord,
        max_queued: usize,
    ) -> Result<bool, StorageError> {
        let inserted = self
            .execute(
                "INSERT INTO mail_outbox (id, next_attempt_at, record)
                 SELECT $1, $2, $3 WHERE (SELECT count(*) FROM mail_outbox) < $4
                 ON CONFLICT (id) DO NOTHING",
                &[
                    &mail.id,
                    &mail.next_attempt_at,
                    &encode(mail),
                    &limit(max_queued),
                ],
            )
            .await?;
        Ok(inserted == 1)
    }

    async fn due_mails(
        &self,
        now: UnixMillis,
        limit_to: usize,
    ) -> Result<Vec<OutboxMailRecord>, StorageError> {
        let rows = self
            .query(
                "SELECT record FROM mail_outbox WHERE next_attempt_at <= $1 ORDER BY id LIMIT $2",
                &[&now, &limit(limit_to)],
            )
            .await?;
        records(&rows)
    }

    async fn reschedule_mail(&self, mail: &OutboxMailRecord) -> Result<(), StorageError> {
        self.execute(
            "UPDATE mail_outbox SET next_attempt_at = $2, record = $3 WHERE id = $1",
            &[&mail.id, &mail.next_attempt_at, &encode(mail)],
        )
        .await?;
        Ok(())
    }

    async fn remove_mail(&self, id: &str) -> Result<(), StorageError> {
        self.execute("DELETE FROM mail_outbox WHERE id = $1", &[&id])
            .await?;
        Ok(())
    }

    async fn queued_mail_count(&self) -> Result<u64, StorageError> {
        let rows = self.query("SELECT count(*) FROM mail_outbox", &[]).await?;
        let count: i64 = rows.first().map_or(0, |row| row.get(0));
        Ok(count as u64)
    }

    // ----- signing keys -----

    async fn signing_keys(&self) -> Result<Vec<SigningKeyRecord>, StorageError> {
        let rows = self
            .query("SELECT record FROM signing_keys ORDER BY kid", &[])
            .await?;
        records(&rows)
    }

    async fn put_signing_key(&self, key: &SigningKeyRecord) -> Result<(), StorageError> {
        self.execute(
            "INSERT INTO signing_keys (kid, record) VALUES ($1, $2)
             ON CONFLICT (kid) DO UPDATE SET record = EXCLUDED.record",
            &[&key.kid, &encode(key)],
        )
        .await?;
        Ok(())
    }

    // ----- audit log -----

    async fn audit(&self, event: &AuditEvent) -> Result<(), StorageError> {
        self.execute(
            "INSERT INTO audit (at, record) VALUES ($1, $2)",
            &[&event.at, &encode(event)],
        )
        .await?;
        Ok(())
    }

    async fn recent_audit_events(&self, limit_to: usize) -> Result<Vec<AuditEvent>, StorageError> {
        let rows = self
            .query(
                "SELECT record FROM audit ORDER BY id DESC LIMIT $1",
                &[&limit(limit_to)],
            )
            .await?;
        records(&rows)
    }

    // ----- provider tokens -----

    /// One statement: written only while the account row names the user (the
    /// row's foreign key then removes it with the account).
    async fn put_provider_tokens(
        &self,
        tokens: &ProviderTokensRecord,
    ) -> Result<bool, StorageError> {
        let written = self
            .execute(
                "INSERT INTO provider_tokens (provider, subject, user_id, record)
                 SELECT $1::text, $2::text, $3::text, $4::bytea
                  WHERE EXISTS (SELECT 1 FROM accounts
                                 WHERE provider = $1 AND subject = $2 AND user_id = $3)
                 ON CONFLICT (provider, subject) DO UPDATE
                     SET user_id = EXCLUDED.user_id, record = EXCLUDED.record",
                &[
                    &tokens.provider,
                    &tokens.subject,
                    &tokens.user_id,
                    &encode(tokens),
                ],
            )
            .await?;
        Ok(written == 1)
    }

    async fn provider_tokens(
        &self,
        provider: &str,
        subject: &str,
    ) -> Result<Option<ProviderTokensRecord>, StorageError> {
        self.query_opt(
            "SELECT record FROM provider_tokens WHERE provider = $1 AND subject = $2",
            &[&provider, &subject],
        )
        .await?
        .map(|row| record(&row, 0))
        .transpose()
    }

    // ----- ownership in a cluster -----

    /// One statement: a first claim starts at epoch 1; a later one moves the
    /// epoch on, waiting for the share lock of any fenced write in flight.
    async fn claim_ownership(
        &self,
        user_id: &str,
        node: &str,
    ) -> Result<Option<i64>, StorageError> {
        let row = self
            .query_opt(
                "INSERT INTO actor_owners (user_id, node, epoch)
                 SELECT $1::text, $2::text, 1 WHERE EXISTS (SELECT 1 FROM users WHERE id = $1)
                 ON CONFLICT (user_id) DO UPDATE
                     SET epoch = actor_owners.epoch + 1, node = EXCLUDED.node, claimed_at = now()
                 RETURNING epoch",
                &[&user_id, &node],
            )
            .await?;
        Ok(row.map(|r| r.get::<_, i64>(0)))
    }

    async fn holds_ownership(&self, fence: &Fence) -> Result<bool, StorageError> {
        Ok(self
            .query_opt(
                "SELECT 1 FROM actor_owners WHERE user_id = $1 AND epoch = $2",
                &[&fence.user_id, &fence.epoch],
            )
            .await?
            .is_some())
    }

    fn fenced(&self, fence: Fence) -> Arc<dyn Store> {
        Arc::new(PostgresStore {
            fence: Some(Arc::new(fence)),
            ..self.clone()
        })
    }

    // ----- moving a deployment -----

    async fn export(&self) -> Result<Snapshot, StorageError> {
        self.run(snapshot::export(self)).await
    }

    async fn import(&self, snapshot: &Snapshot) -> Result<(), StorageError> {
        self.run(snapshot::import(self, snapshot)).await
    }
}
