//! The EIP-4361 message, parsed strictly by the specification's ABNF:
//!
//! ```text
//! [scheme "://"] domain " wants you to sign in with your Ethereum account:"
//! address                      (EIP-55 checksummed)
//!
//! [statement                   (one line)
//! ]
//! URI: uri
//! Version: 1
//! Chain ID: chain-id
//! Nonce: nonce                 (8 or more letters and digits)
//! Issued At: RFC 3339 time
//! [Expiration Time: RFC 3339 time]
//! [Not Before: RFC 3339 time]
//! [Request ID: text]
//! [Resources:
//! - uri
//! - uri …]
//! ```
//!
//! Lines end in LF, the fields come in this order, nothing follows the last
//! one. Anything else — a missing field, a field out of order, an unknown
//! version, an unchecksummed address, an unparsable time — is not a message.

use crate::model::UnixMillis;

use super::address::is_checksummed;
use super::SiweError;

/// The longest message read: a statement and a handful of resources fit well within.
pub const MAX_MESSAGE_BYTES: usize = 8 * 1024;
const MAX_NONCE_CHARS: usize = 128;
const HEADER_SUFFIX: &str = " wants you to sign in with your Ethereum account:";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiweMessage {
    pub scheme: Option<String>,
    /// The RFC 3986 authority the wallet showed the user: `host[:port]`.
    pub domain: String,
    /// EIP-55 spelling, as signed.
    pub address: String,
    pub statement: Option<String>,
    pub uri: String,
    pub version: String,
    pub chain_id: u64,
    pub nonce: String,
    pub issued_at: UnixMillis,
    pub expiration_time: Option<UnixMillis>,
    pub not_before: Option<UnixMillis>,
    pub request_id: Option<String>,
    pub resources: Vec<String>,
}

fn invalid(why: &'static str) -> SiweError {
    SiweError::InvalidMessage(why)
}

fn is_scheme(s: &str) -> bool {
    let mut bytes = s.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphabetic())
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
}

/// An RFC 3986 authority without user info: printable, no spaces, slashes or `@`.
fn is_authority(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 255
        && s.bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b'/' | b'?' | b'#' | b'@'))
}

fn is_uri(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_graphic()) && url::Url::parse(s).is_ok()
}

fn time(value: &str) -> Result<UnixMillis, SiweError> {
    let parsed = time::OffsetDateTime::parse(value, &time::format_description::well_known::Rfc3339)
        .map_err(|_| invalid("a time is not an RFC 3339 date-time"))?;
    i64::try_from(parsed.unix_timestamp_nanos() / 1_000_000)
        .map_err(|_| invalid("a time is out of range"))
}

/// The lines of a message, read in order.
struct Lines<'a> {
    lines: std::iter::Peekable<std::str::Split<'a, char>>,
}

impl<'a> Lines<'a> {
    fn next(&mut self, missing: &'static str) -> Result<&'a str, SiweError> {
        self.lines.next().ok_or(invalid(missing))
    }

    /// The value of the required field `tag`.
    fn field(&mut self, tag: &str, missing: &'static str) -> Result<&'a str, SiweError> {
        self.optional(tag).ok_or(invalid(missing))
    }

    /// The value of `tag` when the next line is that field.
    fn optional(&mut self, tag: &str) -> Option<&'a str> {
        let value = self.lines.peek()?.strip_prefix(tag)?;
        self.lines.next();
        Some(value)
    }
}

impl SiweMessage {
    pub fn parse(text: &str) -> Result<SiweMessage, SiweError> {
        if text.len() > MAX_MESSAGE_BYTES {
            return Err(invalid("the message is longer than 8 KiB"));
        }
        let mut lines = Lines {
            lines: text.split('\n').peekable(),
        };
        let header = lines
            .next("no header")?
            .strip_suffix(HEADER_SUFFIX)
            .ok_or(invalid("the first line is not an EIP-4361 header"))?;
        let (scheme, domain) = match header.split_once("://") {
            Some((scheme, domain)) if is_scheme(scheme) => (Some(scheme.to_string()), domain),
            Some(_) => return Err(invalid("the scheme is not an RFC 3986 scheme")),
            None => (None, header),
        };
        if !is_authority(domain) {
            return Err(invalid("the domain is not an RFC 3986 authority"));
        }
        let address = lines.next("no address")?;
        if !is_checksummed(address) {
            return Err(invalid("the address is not an EIP-55 checksummed address"));
        }
        if !lines.next("no blank line after the address")?.is_empty() {
            return Err(invalid("no blank line after the address"));
        }
        let statement = match lines.next("no URI")? {
            "" => None,
            statement => {
                if statement.chars().any(char::is_control) {
                    return Err(invalid("the statement has control characters"));
                }
                if !lines.next("no blank line after the statement")?.is_empty() {
                    return Err(invalid("no blank line after the statement"));
                }
                Some(statement.to_string())
            }
        };
        let uri = lines.field("URI: ", "no URI")?;
        if !is_uri(uri) {
            return Err(invalid("the URI is not an RFC 3986 URI"));
        }
        let version = lines.field("Version: ", "no version")?;
        if version != "1" {
            return Err(invalid("the version is not 1"));
        }
        let chain_id = lines.field("Chain ID: ", "no chain ID")?;
        let chain_id = chain_id
            .bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| chain_id.parse::<u64>().ok())
            .flatten()
            .filter(|id| *id > 0)
            .ok_or(invalid("the chain ID is not an EIP-155 chain ID"))?;
        let nonce = lines.field("Nonce: ", "no nonce")?;
        if !(8..=MAX_NONCE_CHARS).contains(&nonce.len())
            || !nonce.bytes().all(|b| b.is_ascii_alphanumeric())
        {
            return Err(invalid("the nonce is not 8-128 letters and digits"));
        }
        let issued_at = time(lines.field("Issued At: ", "no issued-at time")?)?;
        let expiration_time = lines.optional("Expiration Time: ").map(time).transpose()?;
        let not_before = lines.optional("Not Before: ").map(time).transpose()?;
        let request_id = lines.optional("Request ID: ").map(str::to_string);
        if request_id
            .as_deref()
            .is_some_and(|r| r.chars().any(char::is_control))
        {
            return Err(invalid("the request ID has control characters"));
        }
        let mut resources = Vec::new();
        if let Some(rest) = lines.optional("Resources:") {
            if !rest.is_empty() {
                return Err(invalid("text after `Resources:`"));
            }
            while let Some(resource) = lines.optional("- ") {
                if !is_uri(resource) {
                    return Err(invalid("a resource is not an RFC 3986 URI"));
                }
                resources.push(resource.to_string());
            }
        }
        if lines.lines.next().is_some() {
            return Err(invalid("unexpected text after the last field"));
        }
        Ok(SiweMessage {
            scheme,
            domain: domain.to_string(),
            address: address.to_string(),
            statement,
            uri: uri.to_string(),
            version: version.to_string(),
            chain_id,
            nonce: nonce.to_string(),
            issued_at,
            expiration_time,
            not_before,
            request_id,
            resources,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ADDRESS: &str = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed";

    fn full() -> String {
        format!(
            "https://app.example.com wants you to sign in with your Ethereum account:\n{ADDRESS}\n\n\
             Sign in to the app.\n\nURI: https://app.example.com/login\nVersion: 1\nChain ID: 137\n\
             Nonce: abcdEFGH1234\nIssued At: 2026-01-01T00:00:00.000Z\n\
             Expiration Time: 2026-01-01T00:05:00Z\nNot Before: 2025-12-31T23:59:00+01:00\n\
             Request ID: req-1\nResources:\n- https://app.example.com/a\n- ipfs://bafy"
        )
    }

    #[test]
    fn text_after_the_resources_tag_is_refused() {
        let text = full().replace("Resources:\n", "Resources:junk\n");
        assert!(SiweMessage::parse(&text).is_err());
    }

    #[test]
    fn every_field_parses() {
        let m = SiweMessage::parse(&full()).unwrap();
        assert_eq!(m.scheme.as_deref(), Some("https"));
        assert_eq!(m.domain, "app.example.com");
        assert_eq!(m.address, ADDRESS);
        assert_eq!(m.statement.as_deref(), Some("Sign in to the app."));
        assert_eq!(m.chain_id, 137);
        assert_eq!(m.nonce, "abcdEFGH1234");
        assert_eq!(m.issued_at, 1_767_225_600_000);
        assert_eq!(m.expiration_time, Some(1_767_225_900_000));
        assert_eq!(m.not_before, Some(1_767_225_600_000 - 3_600_000 - 60_000));
        assert_eq!(m.request_id.as_deref(), Some("req-1"));
        assert_eq!(m.resources, ["https://app.example.com/a", "ipfs://bafy"]);
    }

    #[test]
    fn the_minimal_message_parses() {
        // No scheme, no statement (two blank lines), no optional field: what
        // viem's createSiweMessage writes without a statement.
        let text = format!(
            "localhost:3000 wants you to sign in with your Ethereum account:\n{ADDRESS}\n\n\n\
             URI: http://localhost:3000\nVersion: 1\nChain ID: 1\nNonce: 12345678\n\
             Issued At: 2026-01-01T00:00:00Z"
        );
        let m = SiweMessage::parse(&text).unwrap();
        assert_eq!((m.scheme, m.statement), (None, None));
        assert_eq!(m.domain, "localhost:3000");
        assert!(m.resources.is_empty());
    }

    #[test]
    fn anything_off_is_refused() {
        let good = full();
        for (from, to) in [
            ("Version: 1", "Version: 2"),
            (ADDRESS, &ADDRESS.to_lowercase()),
            ("Chain ID: 137", "Chain ID: 0"),
            ("Chain ID: 137", "Chain ID: -1"),
            ("Chain ID: 137", "Chain ID: 99999999999999999999999"),
            ("Nonce: abcdEFGH1234", "Nonce: short"),
            ("Nonce: abcdEFGH1234", "Nonce: abcd-EFGH-1234"),
            ("2026-01-01T00:00:00.000Z", "yesterday"),
            ("2026-01-01T00:00:00.000Z", "2026-01-01 00:00:00"),
            ("URI: https://app.example.com/login", "URI: not a uri"),
            (" wants you to", " would like you to"),
            ("https://app", "ht tp://app"),
            ("Sign in to the app.\n\n", "Sign in to the app.\n"),
            ("\nVersion: 1", ""),
            ("- ipfs://bafy", "- ipfs://bafy\nextra"),
        ] {
            let bad = good.replacen(from, to, 1);
            assert_ne!(bad, good, "{from}");
            let e = SiweMessage::parse(&bad);
            assert!(
                matches!(e, Err(SiweError::InvalidMessage(_))),
                "{from} -> {to}: {e:?}"
            );
        }
        // Fields out of order.
        let swapped = good.replacen("Version: 1\nChain ID: 137", "Chain ID: 137\nVersion: 1", 1);
        assert!(SiweMessage::parse(&swapped).is_err());
        assert!(SiweMessage::parse(&good.replace('\n', "\r\n")).is_err());
        assert!(SiweMessage::parse(&"a".repeat(MAX_MESSAGE_BYTES + 1)).is_err());
        assert!(SiweMessage::parse("").is_err());
    }
}
