//! Durable storage for tachigo-auth: sled trees holding users, linked accounts,
//! sessions, refresh families, OAuth states, signing keys and the audit log.
//!
//! Every mutating call returns only once its write is durable (group commit, see
//! [`group_commit`]); every value is a versioned bincode record (see [`codec`]).
//! Nothing above this crate opens a sled tree.

pub mod codec;
mod error;
pub mod group_commit;
pub mod records;
mod store;

pub use error::StorageError;
pub use group_commit::Durability;
pub use records::*;
pub use store::{ReleaseWatch, Store, StoreOptions};

/// Milliseconds since the Unix epoch: the one clock unit stored in records.
pub type UnixMillis = i64;
