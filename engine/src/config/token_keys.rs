//! The key files that seal provider tokens at rest
//! (`oauth.token_encryption_key_file`, `oauth.token_encryption_old_key_files`).
//!
//! A key file holds exactly 32 bytes of key: either the raw bytes (a file of
//! exactly 32 bytes, e.g. `openssl rand -out key 32`), or text: 64 hex digits
//! or base64 (standard or URL-safe alphabet, padded or not) that decodes to 32
//! bytes, with trailing whitespace ignored (e.g. `openssl rand -base64 32 > key`).
//! A file anyone on the machine can read, a shorter or longer key, or text in
//! neither form is refused at start, naming the setting.

use std::path::Path;

use base64::Engine as _;

use super::{ConfigError, OAuthConfig};

/// The length of a token key, in bytes (AES-256).
pub const TOKEN_KEY_BYTES: usize = 32;

/// A token key as read from its file. Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenKey(pub [u8; TOKEN_KEY_BYTES]);

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKey(not shown)")
    }
}

fn refused(key: &str, message: String) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_string(),
        message,
    }
}

/// The key in `bytes`, read as described in the module documentation.
pub fn parse_token_key(bytes: &[u8]) -> Result<TokenKey, String> {
    if bytes.len() == TOKEN_KEY_BYTES {
        let mut key = [0u8; TOKEN_KEY_BYTES];
        key.copy_from_slice(bytes);
        return Ok(TokenKey(key));
    }
    let text = std::str::from_utf8(bytes)
        .map_err(|_| {
            format!(
                "holds {} bytes: a key file is {TOKEN_KEY_BYTES} raw bytes, or 64 hex digits or base64 of {TOKEN_KEY_BYTES} bytes",
                bytes.len()
            )
        })?
        .trim_end();
    let decoded =
        if text.len() == 2 * TOKEN_KEY_BYTES && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            (0..TOKEN_KEY_BYTES)
                .map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16).expect("hex digits"))
                .collect::<Vec<u8>>()
        } else {
            let unpadded = text.trim_end_matches('=');
            base64::engine::general_purpose::STANDARD_NO_PAD
                .decode(unpadded)
                .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(unpadded))
                .map_err(|_| {
                    "is neither 32 raw bytes, nor 64 hex digits, nor base64 text".to_string()
                })?
        };
    let key: [u8; TOKEN_KEY_BYTES] = decoded.as_slice().try_into().map_err(|_| {
        format!(
            "decodes to {} bytes; a token key is exactly {TOKEN_KEY_BYTES} bytes",
            decoded.len()
        )
    })?;
    Ok(TokenKey(key))
}

/// Reads and checks the key file of setting `key`.
pub fn read_token_key_file(key: &str, path: &Path) -> Result<TokenKey, ConfigError> {
    let cannot_read =
        |e: std::io::Error| refused(key, format!("cannot read {}: {e}", path.display()));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(path).map_err(cannot_read)?;
        if meta.permissions().mode() & 0o006 != 0 {
            return Err(refused(
                key,
                format!(
                    "{} is readable or writable by everyone; chmod o-rw it",
                    path.display()
                ),
            ));
        }
    }
    let bytes = std::fs::read(path).map_err(cannot_read)?;
    parse_token_key(&bytes).map_err(|why| refused(key, format!("{} {why}", path.display())))
}

/// The configured keys: the current one (which seals) and the old ones (which
/// only open), or `None` when no key is configured (tokens are not kept).
pub fn read_token_keys(
    oauth: &OAuthConfig,
) -> Result<Option<(TokenKey, Vec<TokenKey>)>, ConfigError> {
    let Some(path) = &oauth.token_encryption_key_file else {
        if !oauth.token_encryption_old_key_files.is_empty() {
            return Err(refused(
                "oauth.token_encryption_old_key_files",
                "old keys only open what they sealed: set oauth.token_encryption_key_file too"
                    .into(),
            ));
        }
        return Ok(None);
    };
    let current = read_token_key_file("oauth.token_encryption_key_file", path)?;
    let mut old = Vec::new();
    for (i, path) in oauth.token_encryption_old_key_files.iter().enumerate() {
        let key = read_token_key_file(&format!("oauth.token_encryption_old_key_files[{i}]"), path)?;
        if key != current && !old.contains(&key) {
            old.push(key);
        }
    }
    Ok(Some((current, old)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_hex_and_base64_keys_are_read_and_anything_else_refused() {
        let raw = [7u8; 32];
        assert_eq!(parse_token_key(&raw).unwrap().0, raw);
        let hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            parse_token_key(format!("{hex}\n").as_bytes()).unwrap().0,
            raw
        );
        let b64 = base64::engine::general_purpose::STANDARD.encode(raw);
        assert_eq!(
            parse_token_key(format!("{b64}\n").as_bytes()).unwrap().0,
            raw
        );
        let url = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode([0xfbu8; 32]);
        assert_eq!(parse_token_key(url.as_bytes()).unwrap().0, [0xfb; 32]);

        let short = base64::engine::general_purpose::STANDARD.encode([1u8; 16]);
        assert!(parse_token_key(short.as_bytes())
            .unwrap_err()
            .contains("16 bytes"));
        assert!(parse_token_key(b"not a key at all!").is_err());
        assert!(parse_token_key(&[0xff; 31]).is_err());
        assert!(parse_token_key(b"").is_err());
        assert!(!format!("{:?}", parse_token_key(&raw).unwrap()).contains('7'));
    }
}
