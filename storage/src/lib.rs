//! Durable storage for tachigo-auth behind one seam, the [`Store`] trait:
//! users, linked accounts, sessions, refresh families, OAuth states, OAuth 2.1
//! grants, signing keys and the audit log.
//!
//! Two backends implement it: embedded sled ([`sled_store`], the default, one
//! node) and shared PostgreSQL ([`postgres`], several nodes). [`open`] picks one
//! from a [`StoreConfig`]. Every mutating call returns only once its change is
//! durable; every value is a versioned bincode record (see [`codec`]). Nothing
//! above this crate names a backend.

pub mod codec;
mod error;
mod fence;
mod open;
pub mod postgres;
pub mod records;
mod release;
pub mod sled_store;
mod store;

pub use error::StorageError;
pub use fence::Fence;
pub use open::{open, PostgresConfig, StoreConfig};
pub use postgres::{check, redacted_url, PostgresStore, SchemaStatus};
pub use records::*;
pub use release::ReleaseWatch;
pub use store::{RotationOutcome, Snapshot, Store};

/// Milliseconds since the Unix epoch: the one clock unit stored in records.
pub type UnixMillis = i64;
