//! Keyed rate limits (per client IP, per account…) on `governor`'s GCRA.
//!
//! A check is a few atomic operations on a sharded map and never waits, so a
//! refused caller is answered at once with how long it must wait (for a
//! `Retry-After` header) and the async runtime is never blocked. Keys whose state
//! has returned to "fresh" are forgotten every [`PRUNE_EVERY`] checks, so a spray
//! of distinct keys cannot grow memory without bound.

use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use http::header::{HeaderName, HeaderValue, RETRY_AFTER};

/// Checks between two sweeps of idle keys.
pub const PRUNE_EVERY: u64 = 4096;

/// A sustained rate with a burst allowance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// Attempts replenished per minute (one every `60 / per_minute` seconds).
    pub per_minute: u32,
    /// Attempts allowed back to back from a fresh state.
    pub burst: u32,
}

/// One rate limit applied separately to each key.
pub struct KeyedLimiter<K: Hash + Eq + Clone> {
    limiter: DefaultKeyedRateLimiter<K>,
    clock: DefaultClock,
    checks: AtomicU64,
}

impl<K: Hash + Eq + Clone> KeyedLimiter<K> {
    pub fn new(limit: Limit) -> KeyedLimiter<K> {
        let nonzero = |n: u32| NonZeroU32::new(n.max(1)).expect("at least 1");
        let quota = Quota::per_minute(nonzero(limit.per_minute)).allow_burst(nonzero(limit.burst));
        KeyedLimiter {
            limiter: DefaultKeyedRateLimiter::keyed(quota),
            clock: DefaultClock::default(),
            checks: AtomicU64::new(0),
        }
    }

    /// Spends one attempt of `key`: `Err(wait)` when none is left.
    pub fn check(&self, key: &K) -> Result<(), Duration> {
        if self.checks.fetch_add(1, Ordering::Relaxed) % PRUNE_EVERY == PRUNE_EVERY - 1 {
            self.limiter.retain_recent();
            self.limiter.shrink_to_fit();
        }
        self.limiter
            .check_key(key)
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }

    /// Keys currently tracked (approximate under concurrency).
    pub fn tracked_keys(&self) -> usize {
        self.limiter.len()
    }
}

/// `Retry-After` in whole seconds, rounded up and never 0.
pub fn retry_after(wait: Duration) -> (HeaderName, HeaderValue) {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    (RETRY_AFTER, HeaderValue::from(secs.max(1)))
}

/// The key for per-client limits: an IPv4 address as is, an IPv6 address by its
/// /64 network (one subscriber usually holds a whole /64), an IPv4-mapped IPv6
/// address as the IPv4 address it is.
/// Longest per-account limiter key, in bytes (the longest valid address).
pub const MAX_ACCOUNT_KEY: usize = 320;

/// The per-account limiter key of an address as typed: trimmed, lower-cased
/// (what `normalize_email` makes of a valid one) and bounded, so any input
/// costs one bounded entry.
pub fn account_key(email: &str) -> String {
    let mut key = email.trim().to_ascii_lowercase();
    if key.len() > MAX_ACCOUNT_KEY {
        let mut end = MAX_ACCOUNT_KEY;
        while !key.is_char_boundary(end) {
            end -= 1;
        }
        key.truncate(end);
    }
    key
}

pub fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let network = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(network.into())
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_account_key_ignores_case_and_spaces_and_is_bounded() {
        assert_eq!(account_key("  Ada@Example.COM "), "ada@example.com");
        assert_eq!(account_key(&"é".repeat(400)).len(), MAX_ACCOUNT_KEY);
    }

    #[test]
    fn burst_then_refusal_with_a_wait() {
        let limiter = KeyedLimiter::new(Limit {
            per_minute: 6,
            burst: 3,
        });
        for _ in 0..3 {
            assert!(limiter.check(&"a").is_ok());
        }
        let wait = limiter.check(&"a").unwrap_err();
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_secs(10),
            "{wait:?}"
        );
        // Keys are independent.
        assert!(limiter.check(&"b").is_ok());
        assert_eq!(limiter.tracked_keys(), 2);
    }

    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(retry_after(Duration::from_millis(1)).1, "1");
        assert_eq!(retry_after(Duration::from_millis(5_001)).1, "6");
        assert_eq!(retry_after(Duration::from_secs(12)).1, "12");
        assert_eq!(retry_after(Duration::ZERO).1, "1");
    }

    #[test]
    fn ipv6_clients_are_keyed_by_their_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(client_key(a), client_key(b));
        assert_ne!(client_key(a), client_key(c));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(client_key(mapped), "192.0.2.7".parse::<IpAddr>().unwrap());
        let v4: IpAddr = "192.0.2.7".parse().unwrap();
        assert_eq!(client_key(v4), v4);
    }
}
