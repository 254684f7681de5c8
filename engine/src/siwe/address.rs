//! Ethereum addresses as EIP-55 spells them: `0x` and forty hex digits whose
//! letters are upper-cased where the Keccak-256 of the lower-case address has a
//! high nibble. A mixed-case address must carry a correct checksum.

use sha3::{Digest, Keccak256};

/// The EIP-55 spelling of a 20-byte address.
pub fn checksum_address(bytes: &[u8; 20]) -> String {
    let lower: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let hash = Keccak256::digest(lower.as_bytes());
    let mut out = String::with_capacity(42);
    out.push_str("0x");
    for (i, c) in lower.chars().enumerate() {
        let nibble = (hash[i / 2] >> (if i % 2 == 0 { 4 } else { 0 })) & 0x0f;
        if c.is_ascii_alphabetic() && nibble >= 8 {
            out.push(c.to_ascii_uppercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// The bytes of `0x` + 40 hex digits. An all-lower or all-upper address is
/// taken as written; a mixed-case one must be its own checksum.
pub fn parse_address(text: &str) -> Option<[u8; 20]> {
    let hex = text.strip_prefix("0x")?;
    if hex.len() != 40 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut bytes = [0u8; 20];
    for (i, byte) in bytes.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
    }
    let has_lower = hex.bytes().any(|b| b.is_ascii_lowercase());
    let has_upper = hex.bytes().any(|b| b.is_ascii_uppercase());
    if has_lower && has_upper && checksum_address(&bytes) != text {
        return None;
    }
    Some(bytes)
}

/// Whether `text` is exactly the EIP-55 spelling of an address (what an
/// EIP-4361 message must carry).
pub(crate) fn is_checksummed(text: &str) -> bool {
    parse_address(text).is_some_and(|bytes| checksum_address(&bytes) == text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eip55_test_vectors() {
        // From EIP-55 itself.
        for expected in [
            "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
            "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
            "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
            "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
        ] {
            let bytes = parse_address(&expected.to_lowercase()).unwrap();
            assert_eq!(checksum_address(&bytes), expected);
            assert!(is_checksummed(expected));
            assert!(!is_checksummed(&expected.to_lowercase()));
        }
        assert!(parse_address("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD").is_none());
        assert!(parse_address("0x5aaeb6053f3e94c9b9a09f33669435e7ef1beae").is_none());
        assert!(parse_address("5aaeb6053f3e94c9b9a09f33669435e7ef1beaed").is_none());
        assert!(parse_address("0xZaaeb6053f3e94c9b9a09f33669435e7ef1beaed").is_none());
    }
}
