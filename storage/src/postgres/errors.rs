//! Turning driver and pool errors into [`StorageError`]s, by SQLSTATE and
//! constraint name, never by message text. Messages never carry the URL.

use deadpool_postgres::PoolError;
use tokio_postgres::error::SqlState;

use crate::StorageError;

/// The constraint that makes an email unique across users.
pub(crate) const EMAIL_UNIQUE: &str = "users_email_key";
/// The key that makes a provider account unique across users.
pub(crate) const ACCOUNT_UNIQUE: &str = "accounts_pkey";

/// The constraint that makes a device grant's user code unique across grants.
pub(crate) const OAUTH2_USER_CODE_UNIQUE: &str = "oauth2_grants_user_code_key";

/// Whether `e` is a unique violation of `constraint`, for a caller that
/// answers that conflict itself rather than as an error.
pub(crate) fn violates_unique(e: &tokio_postgres::Error, constraint: &str) -> bool {
    e.as_db_error().is_some_and(|db| {
        *db.code() == SqlState::UNIQUE_VIOLATION && db.constraint() == Some(constraint)
    })
}

/// A statement's error: a unique violation on the email or account key is the
/// caller's conflict; a lost connection, a cancelled statement or a server
/// that is shutting down is [`StorageError::Unavailable`]; the rest is
/// [`StorageError::Backend`].
pub(crate) fn classify(e: tokio_postgres::Error) -> StorageError {
    if let Some(db) = e.as_db_error() {
        let code = db.code();
        if *code == SqlState::UNIQUE_VIOLATION {
            match db.constraint() {
                Some(EMAIL_UNIQUE) => return StorageError::EmailTaken,
                Some(ACCOUNT_UNIQUE) => return StorageError::AccountTaken,
                _ => {}
            }
        }
        let message = format!("{} (SQLSTATE {})", db.message(), code.code());
        return if is_unavailable(code) {
            StorageError::Unavailable(message)
        } else {
            StorageError::Backend(message)
        };
    }
    // Without a server answer it is the connection: closed, refused, timed out.
    if e.is_closed() || io_cause(&e) {
        StorageError::Unavailable(e.to_string())
    } else {
        StorageError::Backend(e.to_string())
    }
}

/// Waiting for or opening a pooled connection.
pub(crate) fn classify_pool(e: PoolError) -> StorageError {
    match e {
        PoolError::Backend(e) => match classify(e) {
            // A connection that could not be opened means no database, whatever the cause.
            StorageError::Backend(message) => StorageError::Unavailable(message),
            other => other,
        },
        PoolError::Timeout(_) => {
            StorageError::Unavailable("no database connection within the connect timeout".into())
        }
        PoolError::Closed => StorageError::Unavailable("the connection pool is closed".into()),
        other => StorageError::Unavailable(other.to_string()),
    }
}

/// Connection exceptions (class 08), operator intervention (57: shutdown,
/// cancelled statement, including a statement timeout) and insufficient
/// resources (53, e.g. too many connections).
fn is_unavailable(code: &SqlState) -> bool {
    let code = code.code();
    code.starts_with("08") || code.starts_with("57") || code.starts_with("53")
}

fn io_cause(e: &tokio_postgres::Error) -> bool {
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        if c.is::<std::io::Error>() {
            return true;
        }
        cause = c.source();
    }
    false
}
