//! Times on the wire: RFC 3339 / ISO 8601 in UTC with milliseconds
//! (`2025-01-31T12:00:00.000Z`), the one form every contract uses, since
//! JavaScript's `Date` parses it and people can read it in a network panel.

use std::fmt;
use std::time::{Duration, UNIX_EPOCH};

use tachigo_engine::UnixMillis;

/// A time that formats (and serialises) itself without an intermediate `String`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Iso(pub UnixMillis);

impl fmt::Display for Iso {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = UNIX_EPOCH + Duration::from_millis(self.0.max(0) as u64);
        humantime::format_rfc3339_millis(at).fmt(f)
    }
}

impl serde::Serialize for Iso {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// `unix_ms` as an RFC 3339 string.
pub fn rfc3339(unix_ms: UnixMillis) -> String {
    Iso(unix_ms).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_utc_with_milliseconds() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_795_392_000_123), "2026-11-23T00:00:00.123Z");
        assert_eq!(
            serde_json::to_string(&Iso(1_000)).unwrap(),
            "\"1970-01-01T00:00:01.000Z\""
        );
    }
}
