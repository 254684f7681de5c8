//! How long a password may be, checked before any hashing work, in Better
//! Auth's terms: a new password (sign-up, reset, change) has 8 to 128
//! characters (`PASSWORD_TOO_SHORT` / `PASSWORD_TOO_LONG`); the engine's policy
//! then also refuses repetitive ones and the address itself (`WEAK_PASSWORD`).
//!
//! A presented password (sign-in, the current one of change-password and
//! delete-user) is refused as too long only past what any stored password can
//! be (the engine's 1024 bytes): users made through the dashboard or the CLI
//! may hold passwords longer than 128 characters, and must still sign in here.

use tachigo_engine::password::{MAX_PASSWORD_BYTES, MIN_PASSWORD_CHARS};

use super::email_errors::{password_too_long, password_too_short};
use crate::common::ApiError;

/// Longest new password, in characters (Better Auth's `maxPasswordLength`).
pub(crate) const MAX_NEW_PASSWORD_CHARS: usize = 128;

pub(crate) fn check_new(password: &str) -> Result<(), ApiError> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        return Err(password_too_short());
    }
    if chars > MAX_NEW_PASSWORD_CHARS {
        return Err(password_too_long());
    }
    Ok(())
}

pub(crate) fn check_presented(password: &str) -> Result<(), ApiError> {
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(password_too_long());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_passwords_have_8_to_128_characters() {
        assert_eq!(check_new("1234567").unwrap_err().code, "password_too_short");
        assert!(check_new("12345678").is_ok());
        assert!(check_new(&"é".repeat(128)).is_ok(), "characters, not bytes");
        assert_eq!(
            check_new(&"a".repeat(129)).unwrap_err().code,
            "password_too_long"
        );
        assert!(check_presented(&"a".repeat(200)).is_ok());
        assert_eq!(
            check_presented(&"a".repeat(1025)).unwrap_err().code,
            "password_too_long"
        );
    }
}
