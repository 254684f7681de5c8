//! The brake on requests that send mail (`/forgot-password`,
//! `/send-verification-email`): each client IP (IPv6: per /64) gets
//! `email.requests_per_minute` of them per minute, with a burst of as many.
//! Every request counts, whether or not it ends up mailing anything, so the
//! limit reveals nothing about which addresses exist. A refused request is
//! answered at once with 429 `too_many_requests` and `Retry-After`, before any
//! storage or mail work.
//!
//! This bounds what one client can make the server store and send; the engine
//! adds its own bounds behind it (at most one mail of a kind per address per
//! `email.per_address_interval`, at most `email.max_queued` queued mails).

use std::net::IpAddr;
use std::time::Duration;

use http::StatusCode;

use crate::common::rate_limit::{client_key, retry_after, KeyedLimiter, Limit};
use crate::common::ApiError;

pub struct MailLimits {
    per_ip: KeyedLimiter<IpAddr>,
}

fn too_many_requests(wait: Duration) -> ApiError {
    metrics::counter!("tachigo_dashboard_rate_limited_total").increment(1);
    let (name, value) = retry_after(wait);
    ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_requests",
        "too many requests; wait before trying again",
    )
    .with_header(name, value)
}

impl MailLimits {
    /// `per_minute` requests per client IP per minute (at least 1), burst as many.
    pub fn new(per_minute: u32) -> MailLimits {
        let per_minute = per_minute.max(1);
        MailLimits {
            per_ip: KeyedLimiter::new(Limit {
                per_minute,
                burst: per_minute,
            }),
        }
    }

    /// Spends one request of the client's IP.
    pub fn admit(&self, ip: IpAddr) -> Result<(), ApiError> {
        self.per_ip
            .check(&client_key(ip))
            .map_err(too_many_requests)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_gets_its_burst_then_a_429_with_retry_after() {
        let limits = MailLimits::new(2);
        let ip = IpAddr::from([192, 0, 2, 1]);
        assert!(limits.admit(ip).is_ok());
        assert!(limits.admit(ip).is_ok());
        let refused = limits.admit(ip).unwrap_err();
        assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(refused.code, "too_many_requests");
        assert!(refused.headers.iter().any(|(n, _)| n == "retry-after"));
        assert!(limits.admit(IpAddr::from([192, 0, 2, 2])).is_ok());
    }
}
