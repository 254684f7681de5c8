//! Log lines that any caller can trigger (a refused login, a failed callback, a
//! body-token refresh) go through a [`LogSampler`]: at most one line per period
//! per call site, carrying how many were skipped since the last one, so a flood
//! of bad requests cannot grow the log without bound. The counter in `/metrics`
//! beside each such line counts every event.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Instant;

/// Milliseconds since the first sample taken in this process.
fn now_ms() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_millis() as u64
}

/// One call site's budget: one line per `period_ms`.
pub struct LogSampler {
    period_ms: u64,
    next_ms: AtomicU64,
    skipped: AtomicU64,
}

impl LogSampler {
    pub const fn every_secs(secs: u64) -> LogSampler {
        LogSampler {
            period_ms: secs * 1000,
            next_ms: AtomicU64::new(0),
            skipped: AtomicU64::new(0),
        }
    }

    /// `Some(events skipped since the last line)` when this event may be
    /// logged; `None` (and one more skipped) otherwise.
    pub fn admit(&self) -> Option<u64> {
        let now = now_ms();
        let next = self.next_ms.load(Ordering::Acquire);
        if now >= next
            && self
                .next_ms
                .compare_exchange(
                    next,
                    now + self.period_ms,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                )
                .is_ok()
        {
            return Some(self.skipped.swap(0, Ordering::AcqRel));
        }
        self.skipped.fetch_add(1, Ordering::AcqRel);
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_period_with_the_skipped_count() {
        let sampler = LogSampler::every_secs(3600);
        assert_eq!(sampler.admit(), Some(0));
        for _ in 0..1000 {
            assert_eq!(sampler.admit(), None);
        }
        // A period later the next line reports the thousand skipped.
        sampler.next_ms.store(0, Ordering::Release);
        assert_eq!(sampler.admit(), Some(1000));
    }
}
