//! Why a Sign-In with Ethereum attempt was refused. Each refusal has a stable
//! code (Better Auth's own where its SIWE plugin has one); the frontend picks
//! the status and spells the code.

use crate::EngineError;

#[derive(Debug, thiserror::Error)]
pub enum SiweError {
    /// The text is not an EIP-4361 message (or names a version other than 1).
    #[error("not an EIP-4361 message: {0}")]
    InvalidMessage(&'static str),
    /// The nonce was never issued, is used up, or is past its five minutes.
    #[error("the nonce is unknown, used or expired")]
    InvalidOrExpiredNonce,
    /// The message is for another site, address or chain than the nonce was issued for.
    #[error("the message does not match: {0}")]
    Mismatch(&'static str),
    /// Past its `Expiration Time`.
    #[error("the message has expired")]
    Expired,
    /// Before its `Not Before`, or issued in the future.
    #[error("the message is not valid yet")]
    NotYetValid,
    /// Not a hex-encoded 65-byte `r ‖ s ‖ v` signature.
    #[error("malformed signature: {0}")]
    MalformedSignature(&'static str),
    /// A signature only a contract wallet (EIP-1271 / EIP-6492) makes: it needs
    /// an Ethereum node to check.
    #[error("contract wallet signatures are not supported")]
    ContractWallet,
    /// A well-formed signature by another key than the message's address.
    #[error("the signature is not the address's")]
    WrongSigner,
    /// The store failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
}

impl SiweError {
    /// A short, stable code.
    pub fn code(&self) -> &'static str {
        match self {
            SiweError::InvalidMessage(_) => "invalid_siwe_message",
            SiweError::InvalidOrExpiredNonce => "unauthorized_invalid_or_expired_nonce",
            SiweError::Mismatch(_) => "unauthorized_siwe_message_mismatch",
            SiweError::Expired => "unauthorized_siwe_message_expired",
            SiweError::NotYetValid => "unauthorized_siwe_message_not_yet_valid",
            SiweError::MalformedSignature(_) => "invalid_siwe_signature_format",
            SiweError::ContractWallet => "siwe_contract_wallet_unsupported",
            SiweError::WrongSigner => "unauthorized_invalid_siwe_signature",
            SiweError::Engine(_) => "internal_server_error",
        }
    }
}
