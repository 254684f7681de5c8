//! The brakes on password guessing: every password attempt (`/login`, and
//! `/register`, which also spends an argon2 hash) is counted per client IP, and
//! every `/login` also per account (the email as typed, normalised), whether or
//! not the account exists, so the limit reveals nothing about who is registered.
//!
//! | limit | sustained | burst |
//! |---|---|---|
//! | per client IP (IPv6: per /64) | 10 / minute | 10 |
//! | per account | 5 / minute | 5 |
//!
//! A refused attempt is answered at once with 429 `too_many_attempts` and
//! `Retry-After`, before any password work, so a flood costs the server nothing
//! but a map lookup. The client IP is the socket address, or the right-most
//! `X-Forwarded-For` entry behind a trusted proxy (`server.trust_proxy`).

use std::net::IpAddr;
use std::time::Duration;

use http::StatusCode;

use crate::common::rate_limit::{account_key, client_key, retry_after, KeyedLimiter, Limit};
use crate::common::ApiError;

pub const PER_IP: Limit = Limit {
    per_minute: 10,
    burst: 10,
};
pub const PER_ACCOUNT: Limit = Limit {
    per_minute: 5,
    burst: 5,
};

pub struct LoginLimits {
    per_ip: KeyedLimiter<IpAddr>,
    per_account: KeyedLimiter<String>,
}

fn too_many_attempts(wait: Duration) -> ApiError {
    metrics::counter!("tachigo_dashboard_rate_limited_total").increment(1);
    let (name, value) = retry_after(wait);
    ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_attempts",
        "too many attempts; wait before trying again",
    )
    .with_header(name, value)
}

impl Default for LoginLimits {
    fn default() -> Self {
        LoginLimits {
            per_ip: KeyedLimiter::new(PER_IP),
            per_account: KeyedLimiter::new(PER_ACCOUNT),
        }
    }
}

impl LoginLimits {
    /// Spends one attempt of the client's IP and, for a login, of the account.
    pub fn admit(&self, ip: IpAddr, account: Option<&str>) -> Result<(), ApiError> {
        self.per_ip
            .check(&client_key(ip))
            .map_err(too_many_attempts)?;
        if let Some(email) = account {
            self.per_account
                .check(&account_key(email))
                .map_err(too_many_attempts)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_account_is_limited_across_addresses() {
        let limits = LoginLimits::default();
        for i in 0..PER_ACCOUNT.burst {
            let ip = IpAddr::from([10, 0, 0, i as u8]);
            assert!(limits.admit(ip, Some("a@b.example")).is_ok());
        }
        let refused = limits
            .admit(IpAddr::from([10, 0, 1, 1]), Some("A@B.example"))
            .unwrap_err();
        assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(refused.code, "too_many_attempts");
        assert!(refused.headers.iter().any(|(n, _)| n == "retry-after"));
    }
}
