//! At most one mail of a kind per address per interval, remembered in a
//! bounded map: a caller who repeats "forgot password" for someone else's
//! address cannot fill that mailbox, nor this process's memory.

use std::collections::HashMap;
use std::sync::Mutex;

use sha2::{Digest, Sha256};

use super::MailKind;
use crate::model::UnixMillis;

/// Addresses remembered at most; when full and nothing has aged out, new
/// addresses are refused a mail until entries expire (fail closed).
const CAPACITY: usize = 100_000;

/// A fixed-size key per (kind, address): a long address costs no more memory.
fn key(kind: MailKind, address: &str) -> [u8; 32] {
    Sha256::new()
        .chain_update(kind.name().as_bytes())
        .chain_update([0])
        .chain_update(address.as_bytes())
        .finalize()
        .into()
}

pub(crate) struct RecipientThrottle {
    interval_ms: i64,
    last_sent: Mutex<HashMap<[u8; 32], UnixMillis>>,
}

impl RecipientThrottle {
    pub(crate) fn new(interval_ms: i64) -> RecipientThrottle {
        RecipientThrottle {
            interval_ms,
            last_sent: Mutex::new(HashMap::new()),
        }
    }

    /// Records a mail of `kind` to `address` at `now` and returns true, unless
    /// one went out less than the interval ago (then false, nothing changes).
    pub(crate) fn admit(&self, kind: MailKind, address: &str, now: UnixMillis) -> bool {
        let key = key(kind, address);
        let mut map = self.last_sent.lock().expect("the throttle lock");
        if let Some(at) = map.get(&key) {
            if now - at < self.interval_ms {
                return false;
            }
        }
        if map.len() >= CAPACITY && !map.contains_key(&key) {
            let interval = self.interval_ms;
            map.retain(|_, at| now - *at < interval);
            if map.len() >= CAPACITY {
                return false;
            }
        }
        map.insert(key, now);
        true
    }

    /// Forgets a recorded mail (it could not be queued), so a retry may send.
    pub(crate) fn forget(&self, kind: MailKind, address: &str) {
        self.last_sent
            .lock()
            .expect("the throttle lock")
            .remove(&key(kind, address));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_mail_per_kind_and_address_per_interval() {
        let t = RecipientThrottle::new(60_000);
        assert!(t.admit(MailKind::ResetPassword, "a@example.com", 0));
        assert!(!t.admit(MailKind::ResetPassword, "a@example.com", 59_999));
        assert!(t.admit(MailKind::VerifyEmail, "a@example.com", 1));
        assert!(t.admit(MailKind::ResetPassword, "b@example.com", 1));
        assert!(t.admit(MailKind::ResetPassword, "a@example.com", 60_000));
        t.forget(MailKind::VerifyEmail, "a@example.com");
        assert!(t.admit(MailKind::VerifyEmail, "a@example.com", 2));
    }
}
