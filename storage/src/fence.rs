//! [`Fence`]: the claim a node's actor holds on one user while a cluster shares
//! the store.
//!
//! Ownership of a user carries an epoch recorded in the store. Activating an
//! actor claims the user ([`Store::claim_ownership`](crate::Store::claim_ownership)),
//! which moves the epoch on; every write the actor then makes through its
//! fenced store ([`Store::fenced`](crate::Store::fenced)) commits only while
//! the stored epoch is still its own. An actor on a node that lost the user
//! during a membership change therefore cannot commit anything: its writes
//! fail with [`StorageError::Fenced`](crate::StorageError::Fenced), and it
//! passivates.

/// One actor's claim on its user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fence {
    pub user_id: String,
    /// The epoch the claim returned.
    pub epoch: i64,
}
