//! Export and import of a whole store (`store copy`), each one transaction:
//! export reads one consistent snapshot in the order sled's keys sort (so two
//! backends holding the same data export equal snapshots); import writes
//! everything or nothing, into a store without users or keys.

use tokio_postgres::IsolationLevel;

use super::errors::classify;
use super::{family_columns, records, PostgresStore};
use crate::codec::encode;
use crate::records::*;
use crate::store::Snapshot;
use crate::StorageError;

pub(super) async fn export(store: &PostgresStore) -> Result<Snapshot, StorageError> {
    let mut client = store.client().await?;
    let tx = client
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await
        .map_err(classify)?;
    let all = |sql: &'static str| {
        let tx = &tx;
        async move { tx.query(sql, &[]).await.map_err(classify) }
    };
    let mut snapshot = Snapshot {
        users: records(&all("SELECT record FROM users ORDER BY id").await?)?,
        sessions: records(&all("SELECT record FROM sessions ORDER BY user_id, id").await?)?,
        families: records(&all("SELECT record FROM families ORDER BY session_id").await?)?,
        signing_keys: records(&all("SELECT record FROM signing_keys ORDER BY kid").await?)?,
        audit: records(&all("SELECT record FROM audit ORDER BY id").await?)?,
        retired_tokens: Vec::new(),
        email_tokens: Vec::new(),
        outbox: records(&all("SELECT record FROM mail_outbox ORDER BY id").await?)?,
        provider_tokens: records(
            &all("SELECT record FROM provider_tokens ORDER BY provider, subject").await?,
        )?,
    };
    for row in all("SELECT hash, session_id FROM retired_refresh_tokens ORDER BY hash").await? {
        let hash: TokenHash = row
            .get::<_, &[u8]>(0)
            .try_into()
            .map_err(|_| StorageError::Corrupt("a retired token hash is not 32 bytes".into()))?;
        snapshot.retired_tokens.push((hash, row.get(1)));
    }
    for row in all("SELECT hash, record FROM email_tokens ORDER BY hash").await? {
        let hash: TokenHash = row
            .get::<_, &[u8]>(0)
            .try_into()
            .map_err(|_| StorageError::Corrupt("a mailed token hash is not 32 bytes".into()))?;
        snapshot.email_tokens.push((hash, super::record(&row, 1)?));
    }
    tx.commit().await.map_err(classify)?;
    Ok(snapshot)
}

pub(super) async fn import(store: &PostgresStore, snapshot: &Snapshot) -> Result<(), StorageError> {
    let mut client = store.client().await?;
    let tx = client.transaction().await.map_err(classify)?;
    // No user or key may appear between the emptiness check and the inserts.
    tx.batch_execute("LOCK TABLE users, signing_keys IN EXCLUSIVE MODE")
        .await
        .map_err(classify)?;
    let occupied: bool = tx
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM users) OR EXISTS (SELECT 1 FROM signing_keys)",
            &[],
        )
        .await
        .map_err(classify)?
        .get(0);
    if occupied {
        return Err(StorageError::NotEmpty("users or signing keys".into()));
    }

    let users = &snapshot.users;
    tx.execute(
        "INSERT INTO users (id, email, record)
         SELECT * FROM unnest($1::text[], $2::text[], $3::bytea[])",
        &[
            &users.iter().map(|u| u.id.as_str()).collect::<Vec<_>>(),
            &users.iter().map(|u| u.email.as_deref()).collect::<Vec<_>>(),
            &users.iter().map(encode).collect::<Vec<_>>(),
        ],
    )
    .await
    .map_err(classify)?;

    let accounts: Vec<(&str, &LinkedAccount)> = users
        .iter()
        .flat_map(|u| u.accounts.iter().map(move |a| (u.id.as_str(), a)))
        .collect();
    tx.execute(
        "INSERT INTO accounts (provider, subject, user_id)
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[])",
        &[
            &accounts
                .iter()
                .map(|(_, a)| a.provider.as_str())
                .collect::<Vec<_>>(),
            &accounts
                .iter()
                .map(|(_, a)| a.subject.as_str())
                .collect::<Vec<_>>(),
            &accounts.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
        ],
    )
    .await
    .map_err(classify)?;

    let families = &snapshot.families;
    let columns: Vec<(i64, bool, Vec<u8>)> = families.iter().map(family_columns).collect();
    tx.execute(
        "INSERT INTO families
             (session_id, user_id, generation, revoked, idle_expires_at, absolute_expires_at, record)
         SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::boolean[],
                              $5::bigint[], $6::bigint[], $7::bytea[])",
        &[
            &families.iter().map(|f| f.session_id.as_str()).collect::<Vec<_>>(),
            &families.iter().map(|f| f.user_id.as_str()).collect::<Vec<_>>(),
            &columns.iter().map(|c| c.0).collect::<Vec<_>>(),
            &columns.iter().map(|c| c.1).collect::<Vec<_>>(),
            &families.iter().map(|f| f.idle_expires_at).collect::<Vec<_>>(),
            &families.iter().map(|f| f.absolute_expires_at).collect::<Vec<_>>(),
            &columns.iter().map(|c| c.2.as_slice()).collect::<Vec<_>>(),
        ],
    )
    .await
    .map_err(classify)?;

    let sessions = &snapshot.sessions;
    tx.execute(
        "INSERT INTO sessions (id, user_id, expires_at, absolute_expires_at, record)
         SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::bytea[])",
        &[
            &sessions.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(),
            &sessions
                .iter()
                .map(|s| s.user_id.as_str())
                .collect::<Vec<_>>(),
            &sessions.iter().map(|s| s.expires_at).collect::<Vec<_>>(),
            &sessions
                .iter()
                .map(|s| s.absolute_expires_at)
                .collect::<Vec<_>>(),
            &sessions.iter().map(encode).collect::<Vec<_>>(),
        ],
    )
    .await
    .map_err(classify)?;

    let retired = &snapshot.retired_tokens;
    tx.execute(
        "INSERT INTO retired_refresh_tokens (hash, session_id)
         SELECT * FROM unnest($1::bytea[], $2::text[])",
        &[
            &retired.iter().map(|(h, _)| &h[..]).collect::<Vec<_>>(),
            &retired.iter().map(|(_, s)| s.as_str()).collect::<Vec<_>>(),
        ],
    )
    .await
    .map_err(classify)?;

    let keys = &snapshot.signing_keys;
    tx.execute(
        "INSERT INTO signing_keys (kid, record) SELECT * FROM unnest($1::text[], $2::bytea[])",
        &[
            &keys.iter().map(|k| k.kid.as_str()).collect::<Vec<_>>(),
            &keys.iter().map(encode).collect::<Vec<_>>(),
        ],
    )
    .await
    .map_err(classify)?;

    // Ids follow the snapshot's order (oldest first), so the log reads the same.
    let audit = &snapshot.audit;
    tx.execute(
        "INSERT INTO audit (at, record)
         SELECT at, record FROM unnest($1::bigint[], $2::bytea[]) WITH ORDINALITY AS e(at, record, n)
          ORDER BY n",
        &[
            &audit.iter().map(|e| e.at).collect::<Vec<_>>(),
            &audit.iter().map(encode).collect::<Vec<_>>(),
        ],
    )
    .await
    .map_err(classify)?;

    let tokens = &snapshot.email_tokens;
    tx.execute(
        "INSERT INTO email_tokens (hash, expires_at, record)
         SELECT * FROM unnest($1::bytea[], $2::bigint[], $3::bytea[])",
        &[
            &tokens.iter().map(|(h, _)| &h[..]).collect::<Vec<_>>(),
            &tokens.iter().map(|(_, t)| t.expires_at).collect::<Vec<_>>(),
            &tokens.iter().map(|(_, t)| encode(t)).collect::<Vec<_>>(),
        ],
    )
    .await
    .map_err(classify)?;

    let outbox = &snapshot.outbox;
    tx.execute(
        "INSERT INTO mail_outbox (id, next_attempt_at, record)
         SELECT * FROM unnest($1::text[], $2::bigint[], $3::bytea[])",
        &[
            &outbox.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(),
            &outbox.iter().map(|m| m.next_attempt_at).collect::<Vec<_>>(),
            &outbox.iter().map(encode).collect::<Vec<_>>(),
        ],
    )
    .await
    .map_err(classify)?;

    // After the accounts they belong to (the foreign key).
    let provider_tokens = &snapshot.provider_tokens;
    tx.execute(
        "INSERT INTO provider_tokens (provider, subject, user_id, record)
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bytea[])",
        &[
            &provider_tokens
                .iter()
                .map(|t| t.provider.as_str())
                .collect::<Vec<_>>(),
            &provider_tokens
                .iter()
                .map(|t| t.subject.as_str())
                .collect::<Vec<_>>(),
            &provider_tokens
                .iter()
                .map(|t| t.user_id.as_str())
                .collect::<Vec<_>>(),
            &provider_tokens.iter().map(encode).collect::<Vec<_>>(),
        ],
    )
    .await
    .map_err(classify)?;

    tx.commit().await.map_err(classify)
}
