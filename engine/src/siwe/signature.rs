//! EIP-191 `personal_sign` signatures: the wallet signs the Keccak-256 of
//! `"\x19Ethereum Signed Message:\n" ‖ len(message) ‖ message` with its
//! secp256k1 key and returns `0x` ‖ hex(r ‖ s ‖ v), 65 bytes, `v` ∈ {27, 28}
//! (or {0, 1}). Recovering the public key from it gives the signer's address:
//! the last 20 bytes of the Keccak-256 of the uncompressed point.
//!
//! What is not such a signature is refused before any curve arithmetic: not
//! hex, or 64 bytes (the EIP-2098 compact form), or 65 bytes with another `v`,
//! or `r`/`s` outside the curve's range, is malformed; any other length is what
//! only a contract wallet (EIP-1271, EIP-6492) sends.

use k256::ecdsa::{RecoveryId, Signature, VerifyingKey};
use sha3::{Digest, Keccak256};

use super::SiweError;

/// The EIP-191 (version 0x45) hash a wallet's `personal_sign` signs.
pub fn eip191_hash(message: &[u8]) -> [u8; 32] {
    let mut hasher = Keccak256::new();
    hasher.update(b"\x19Ethereum Signed Message:\n");
    hasher.update(message.len().to_string().as_bytes());
    hasher.update(message);
    hasher.finalize().into()
}

fn malformed(why: &'static str) -> SiweError {
    SiweError::MalformedSignature(why)
}

/// The bytes of a `0x`-prefixed hex string.
fn hex_bytes(text: &str) -> Result<Vec<u8>, SiweError> {
    let hex = text
        .strip_prefix("0x")
        .ok_or(malformed("the signature does not start with 0x"))?;
    if hex.len() % 2 != 0 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(malformed("the signature is not hex"));
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).map_err(|_| malformed("not hex")))
        .collect()
}

/// The signature and recovery id of a 65-byte `r ‖ s ‖ v`.
fn parse(signature: &str) -> Result<(Signature, RecoveryId), SiweError> {
    let bytes = hex_bytes(signature)?;
    match bytes.len() {
        65 => {}
        0 => return Err(malformed("the signature is empty")),
        64 => {
            return Err(malformed(
                "a 64-byte compact signature is not accepted: send the 65-byte r, s, v form",
            ))
        }
        _ => return Err(SiweError::ContractWallet),
    }
    let v = match bytes[64] {
        0 | 27 => 0,
        1 | 28 => 1,
        _ => return Err(malformed("v is not 27 or 28")),
    };
    let signature = Signature::from_slice(&bytes[..64])
        .map_err(|_| malformed("r or s is not a secp256k1 scalar"))?;
    let recovery = RecoveryId::from_byte(v).ok_or(malformed("v is not 27 or 28"))?;
    // A high-s signature names the same key with the other parity.
    Ok(match signature.normalize_s() {
        Some(low) => (
            low,
            RecoveryId::new(!recovery.is_y_odd(), recovery.is_x_reduced()),
        ),
        None => (signature, recovery),
    })
}

/// The address whose key made `signature` over `message`'s EIP-191 hash.
pub fn recover_signer(message: &[u8], signature: &str) -> Result<[u8; 20], SiweError> {
    let (signature, recovery) = parse(signature)?;
    let key = VerifyingKey::recover_from_prehash(&eip191_hash(message), &signature, recovery)
        .map_err(|_| SiweError::WrongSigner)?;
    let point = key.to_encoded_point(false);
    let hash = Keccak256::digest(&point.as_bytes()[1..]);
    let mut address = [0u8; 20];
    address.copy_from_slice(&hash[12..]);
    Ok(address)
}

#[cfg(test)]
mod tests {
    use super::super::address::checksum_address;
    use super::*;
    use k256::ecdsa::SigningKey;

    fn sign(key: &SigningKey, message: &[u8]) -> String {
        let (signature, recovery) = key.sign_prehash_recoverable(&eip191_hash(message)).unwrap();
        let mut bytes = signature.to_bytes().to_vec();
        bytes.push(27 + recovery.to_byte());
        format!(
            "0x{}",
            bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
        )
    }

    #[test]
    fn a_known_key_recovers_to_its_address() {
        // Hardhat's first development account: a well-known private key and address.
        let secret: [u8; 32] = core::array::from_fn(|i| {
            u8::from_str_radix(
                &"ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
                    [2 * i..2 * i + 2],
                16,
            )
            .unwrap()
        });
        let key = SigningKey::from_slice(&secret).unwrap();
        let signature = sign(&key, b"hello");
        let signer = recover_signer(b"hello", &signature).unwrap();
        assert_eq!(
            checksum_address(&signer),
            "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
        );
        // Another message: another (valid) key, not this one.
        let other = recover_signer(b"hellO", &signature).unwrap();
        assert_ne!(other, signer);
    }

    #[test]
    fn malformed_and_contract_signatures_are_told_apart() {
        let good = format!("0x{}1b", "11".repeat(64));
        assert!(parse(&good).is_ok());
        for malformed in [
            "",
            "0x",
            &"11".repeat(65),
            &format!("0x{}1b", "zz".repeat(64)),
            &format!("0x{}1", "11".repeat(64)),
            &format!("0x{}", "11".repeat(64)),
            &format!("0x{}1d", "11".repeat(64)),
            &format!("0x{}1b", "00".repeat(64)),
            &format!("0x{}1b", "ff".repeat(64)),
        ] {
            assert!(
                matches!(parse(malformed), Err(SiweError::MalformedSignature(_))),
                "{malformed}"
            );
        }
        for contract in [
            format!("0x{}", "11".repeat(66)),
            format!("0x{}", "ab".repeat(300)),
        ] {
            assert!(matches!(parse(&contract), Err(SiweError::ContractWallet)));
        }
    }
}
