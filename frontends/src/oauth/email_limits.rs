//! The brakes on the email/password endpoints, per client IP (IPv6: per /64),
//! checked after the request is known to be valid and before any work:
//!
//! | what | limit |
//! |---|---|
//! | password attempts (`sign-in/email`, `sign-up/email`, `change-password`, `delete-user` with a password), per IP | the dashboard login's: 10 / minute, burst 10 |
//! | `sign-in/email` per account (the address as typed, normalised), existing or not | the dashboard login's: 5 / minute, burst 5 |
//! | requests that may mail (`sign-up/email`, `send-verification-email`, `request-password-reset`), per IP | `email.requests_per_minute`, burst the same |
//!
//! A refusal is 429 `TOO_MANY_REQUESTS` with `Retry-After`. The engine adds its
//! own per-address mail throttle (`email.per_address_interval`) behind these.

use std::net::IpAddr;

use super::email_errors::too_many_requests;
use crate::common::rate_limit::{account_key, client_key, KeyedLimiter, Limit};
use crate::common::ApiError;
use crate::dashboard::{LOGIN_LIMIT_PER_ACCOUNT, LOGIN_LIMIT_PER_IP};

pub(crate) struct EmailLimits {
    passwords_per_ip: KeyedLimiter<IpAddr>,
    sign_ins_per_account: KeyedLimiter<String>,
    mails_per_ip: KeyedLimiter<IpAddr>,
}

impl EmailLimits {
    pub(crate) fn new(mails_per_minute: u32) -> EmailLimits {
        EmailLimits {
            passwords_per_ip: KeyedLimiter::new(LOGIN_LIMIT_PER_IP),
            sign_ins_per_account: KeyedLimiter::new(LOGIN_LIMIT_PER_ACCOUNT),
            mails_per_ip: KeyedLimiter::new(Limit {
                per_minute: mails_per_minute,
                burst: mails_per_minute,
            }),
        }
    }

    /// Spends one password attempt of the client (and of the account, for a sign-in).
    pub(crate) fn password_attempt(
        &self,
        route: &'static str,
        ip: IpAddr,
        sign_in_account: Option<&str>,
    ) -> Result<(), ApiError> {
        self.passwords_per_ip
            .check(&client_key(ip))
            .map_err(|wait| too_many_requests(route, wait))?;
        if let Some(email) = sign_in_account {
            self.sign_ins_per_account
                .check(&account_key(email))
                .map_err(|wait| too_many_requests(route, wait))?;
        }
        Ok(())
    }

    /// Spends one mail request of the client.
    pub(crate) fn mail_request(&self, route: &'static str, ip: IpAddr) -> Result<(), ApiError> {
        self.mails_per_ip
            .check(&client_key(ip))
            .map_err(|wait| too_many_requests(route, wait))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mail_requests_follow_the_configured_rate() {
        let limits = EmailLimits::new(2);
        let ip = IpAddr::from([10, 0, 0, 1]);
        assert!(limits.mail_request("test", ip).is_ok());
        assert!(limits.mail_request("test", ip).is_ok());
        let refused = limits.mail_request("test", ip).unwrap_err();
        assert_eq!(refused.status, 429);
        assert!(refused.headers.iter().any(|(n, _)| n == "retry-after"));
        assert!(limits
            .mail_request("test", IpAddr::from([10, 0, 0, 2]))
            .is_ok());
    }

    #[test]
    fn an_account_is_limited_across_addresses_and_spellings() {
        let limits = EmailLimits::new(1);
        for i in 0..LOGIN_LIMIT_PER_ACCOUNT.burst {
            let ip = IpAddr::from([10, 0, 1, i as u8]);
            assert!(limits
                .password_attempt("test", ip, Some("Ada@Example.com"))
                .is_ok());
        }
        let refused = limits
            .password_attempt(
                "test",
                IpAddr::from([10, 0, 2, 1]),
                Some(" ada@example.COM"),
            )
            .unwrap_err();
        assert_eq!(refused.code, "too_many_requests");
    }
}
