//! Sign-In with Ethereum (EIP-4361): a wallet proves it holds an address by
//! signing a message naming this site, a nonce this server issued and the
//! chain, and the engine turns a verified message into the
//! [`ProviderIdentity`](crate::ProviderIdentity) every sign-in links users by:
//! provider `siwe`, subject `eip155:<chainId>:<checksummed address>` (CAIP-10).
//!
//! One concept per file: `message` (the EIP-4361 text, parsed strictly),
//! `address` (EIP-55 checksums), `signature` (EIP-191 `personal_sign`
//! recovery with secp256k1), `nonces` (issued server-side, bound to the
//! address and chain, kept five minutes and taken once, in the bounded table of
//! pending provider flows), `verifier` (every check in order) and `error`.
//!
//! Only externally owned accounts sign in: a contract wallet's signature
//! (EIP-1271, EIP-6492) needs an Ethereum node to check, which this server does
//! not talk to, and is refused with its own code.

mod address;
mod error;
mod message;
mod nonces;
mod signature;
mod verifier;

pub use address::{checksum_address, parse_address};
pub use error::SiweError;
pub use message::SiweMessage;
pub use nonces::{SiweNonces, SIWE_NONCE_TTL_MS};
pub use signature::{eip191_hash, recover_signer};
pub use verifier::{SiweVerifier, VerifiedWallet, SIWE_PROVIDER};
