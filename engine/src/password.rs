//! Password hashing: argon2id on the blocking pool, bounded by a semaphore so a
//! login storm queues instead of starving the async runtime, and the queue
//! itself bounded: when `queue` checks already wait for a slot, the next one is
//! refused at once ([`EngineError::Overloaded`], a 503 with `Retry-After`), so
//! an attacker's concurrency cannot lengthen everyone's wait without limit.
//!
//! Unknown emails are verified against a dummy hash, so "no such user" and
//! "wrong password" take the same time. Stored hashes may also be in a format
//! imported from another system ([`crate::password_formats`]); the engine
//! rehashes those to argon2id at the next successful login.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use argon2::password_hash::{rand_core::OsRng, PasswordHasher, SaltString};
use argon2::Argon2;
use tokio::sync::Semaphore;

use crate::EngineError;

/// Shortest and longest accepted passwords, in characters / bytes.
pub const MIN_PASSWORD_CHARS: usize = 8;
pub const MAX_PASSWORD_BYTES: usize = 1024;

#[derive(Clone)]
pub struct Passwords {
    permits: Arc<Semaphore>,
    /// Checks waiting for a permit now, and how many may.
    waiting: Arc<AtomicUsize>,
    queue: usize,
    dummy_hash: Arc<String>,
}

/// A place in the queue, given back when dropped (served or abandoned).
struct QueuePlace(Arc<AtomicUsize>);

impl Drop for QueuePlace {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Refuses passwords that are too short, too long or too plain.
pub fn check_policy(password: &str, email: Option<&str>) -> Result<(), EngineError> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(EngineError::WeakPassword(
            "the password must have at least 8 characters".into(),
        ));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(EngineError::WeakPassword(
            "the password must be at most 1024 bytes".into(),
        ));
    }
    let distinct = {
        let mut chars: Vec<char> = password.chars().collect();
        chars.sort_unstable();
        chars.dedup();
        chars.len()
    };
    if distinct < 4 {
        return Err(EngineError::WeakPassword(
            "the password is too repetitive".into(),
        ));
    }
    if email.is_some_and(|e| e.eq_ignore_ascii_case(password)) {
        return Err(EngineError::WeakPassword(
            "the password must not be the email address".into(),
        ));
    }
    Ok(())
}

fn hash_blocking(password: &[u8]) -> String {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password, &salt)
        .expect("argon2 with default parameters cannot fail")
        .to_string()
}

/// Any format [`crate::password_formats`] accepts: the engine's own argon2id,
/// or a hash imported from another system until its first login rehashes it.
fn verify_blocking(password: &[u8], phc: &str) -> bool {
    crate::password_formats::verify(password, phc)
}

impl Passwords {
    /// `concurrency` hashes run at once at most (normally the number of
    /// cores), and at most `queue` more wait for a turn.
    pub fn new(concurrency: usize, queue: usize) -> Passwords {
        Passwords {
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            waiting: Arc::new(AtomicUsize::new(0)),
            queue,
            dummy_hash: Arc::new(hash_blocking(
                crate::opaque_token::random_urlsafe_256().as_bytes(),
            )),
        }
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, EngineError> {
        // The permit moves into the blocking work: a caller that gives up
        // (its client went away) does not free a slot while argon2 still runs.
        let permit = match self.permits.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(tokio::sync::TryAcquireError::Closed) => return Err(EngineError::Unavailable),
            Err(tokio::sync::TryAcquireError::NoPermits) => {
                let queue = self.queue;
                self.waiting
                    .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                        (n < queue).then_some(n + 1)
                    })
                    .map_err(|_| {
                        metrics::counter!("tachigo_password_checks_refused_total").increment(1);
                        EngineError::Overloaded
                    })?;
                let _place = QueuePlace(self.waiting.clone());
                self.permits
                    .clone()
                    .acquire_owned()
                    .await
                    .map_err(|_| EngineError::Unavailable)?
            }
        };
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            work()
        })
        .await
        .map_err(|_| EngineError::Unavailable)
    }

    pub async fn hash(&self, password: &str) -> Result<String, EngineError> {
        let password = password.as_bytes().to_vec();
        self.run(move || hash_blocking(&password)).await
    }

    /// Verifies against `phc`, or against the dummy hash when there is none.
    pub async fn verify(&self, password: &str, phc: Option<&str>) -> Result<bool, EngineError> {
        let password = password.as_bytes().to_vec();
        let (phc, real) = match phc {
            Some(p) => (p.to_string(), true),
            None => (self.dummy_hash.as_ref().clone(), false),
        };
        let matched = self.run(move || verify_blocking(&password, &phc)).await?;
        Ok(real && matched)
    }
}
