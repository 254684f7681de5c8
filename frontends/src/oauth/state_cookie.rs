//! The state cookie binds a pending authorization to the browser that started
//! it: sign-in sets `tachigo.oauth_state=<256 random bits>` (HttpOnly,
//! `SameSite=Lax` so it rides along on the provider's top-level redirect back,
//! `Path=/api/auth`, ten minutes) and stores only its SHA-256 in the state
//! record; the callback accepts the `state` only from a browser presenting the
//! matching cookie, and clears the cookie whatever the outcome.

use http::HeaderValue;
use tachigo_engine::opaque_token::{hash_secret, hashes_equal, random_urlsafe_256};

use crate::common::cookies::{self, CookieSettings};

/// A SHA-256 digest.
type TokenHash = [u8; 32];

pub const COOKIE_NAME: &str = "tachigo.oauth_state";
pub const COOKIE_PATH: &str = "/api/auth";
/// How long a started authorization may take (state record and cookie alike).
pub const STATE_TTL_SECS: i64 = tachigo_engine::oauth_providers::STATE_TTL_MS / 1000;

/// A fresh binding: the cookie value for the browser, its hash for the record.
pub(crate) struct Binding {
    pub cookie_value: String,
    pub hash: TokenHash,
}

pub(crate) fn new_binding() -> Binding {
    let cookie_value = random_urlsafe_256();
    let hash = hash_secret(cookie_value.as_bytes());
    Binding { cookie_value, hash }
}

pub(crate) fn set(settings: &CookieSettings, binding: &Binding) -> HeaderValue {
    settings.set(
        COOKIE_NAME,
        &binding.cookie_value,
        COOKIE_PATH,
        STATE_TTL_SECS,
    )
}

pub(crate) fn clear(settings: &CookieSettings) -> HeaderValue {
    settings.clear(COOKIE_NAME, COOKIE_PATH)
}

/// Whether the request's state cookie is the one `expected` was made from.
pub(crate) fn presented_matches(cookie_header: Option<&str>, expected: &TokenHash) -> bool {
    cookies::read(cookie_header, COOKIE_NAME)
        .is_some_and(|value| hashes_equal(&hash_secret(value.as_bytes()), expected))
}
