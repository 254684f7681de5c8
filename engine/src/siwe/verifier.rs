//! Every check of a signed EIP-4361 message, in order: it parses; its nonce is
//! taken (single use: whatever follows, it is spent); the message is for the
//! configured frontend (`domain` is its `host[:port]`, a `scheme` its scheme,
//! `uri` on its origin); its address and chain are the ones the nonce was
//! issued for; `Issued At` is not before the nonce nor in the future (a minute
//! of clock skew), `Expiration Time` has not passed and `Not Before` has; and
//! the EIP-191 signature recovers to the message's address.

use crate::ProviderIdentity;

use super::address::checksum_address;
use super::message::SiweMessage;
use super::nonces::{SiweNonces, TakenNonce};
use super::signature::recover_signer;
use super::SiweError;
use crate::{Engine, EngineError};

/// The provider name of wallet accounts.
pub const SIWE_PROVIDER: &str = "siwe";
/// Tolerated difference between a wallet's clock and this server's.
const CLOCK_SKEW_MS: i64 = 60_000;

/// A wallet that proved it signed a message for this site.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedWallet {
    /// EIP-55 spelling.
    pub address: String,
    pub chain_id: u64,
}

/// The CAIP-10 account id of an address on an EIP-155 chain.
fn caip10(chain_id: u64, checksummed: &str) -> String {
    format!("eip155:{chain_id}:{checksummed}")
}

impl VerifiedWallet {
    /// `eip155:<chainId>:<checksummed address>`, the account's subject.
    pub fn account_id(&self) -> String {
        caip10(self.chain_id, &self.address)
    }

    /// The identity users are linked by. An email the caller typed is kept on
    /// the account as unverified, so it never joins or names a user.
    pub fn identity(&self, email: Option<String>) -> ProviderIdentity {
        ProviderIdentity {
            provider: SIWE_PROVIDER.to_string(),
            subject: self.account_id(),
            email,
            email_verified: false,
            name: Some(self.address.clone()),
            image: None,
        }
    }
}

/// Issues nonces and verifies signed messages for one frontend.
#[derive(Clone)]
pub struct SiweVerifier {
    engine: Engine,
    nonces: SiweNonces,
    /// `host[:port]` of the frontend, lower-case.
    domain: String,
    scheme: String,
    /// `scheme://host[:port]` of the frontend.
    origin: String,
}

impl SiweVerifier {
    /// For the frontend at `frontend_url` (`oauth.frontend_url`, checked by
    /// the configuration), with at most `max_pending` nonces waiting at once
    /// (shared with pending provider flows).
    pub fn new(engine: &Engine, frontend_url: &str, max_pending: usize) -> SiweVerifier {
        let url = url::Url::parse(frontend_url).ok();
        let host = url
            .as_ref()
            .and_then(|u| u.host_str())
            .unwrap_or_default()
            .to_ascii_lowercase();
        let domain = match url.as_ref().and_then(|u| u.port()) {
            Some(port) => format!("{host}:{port}"),
            None => host,
        };
        SiweVerifier {
            engine: engine.clone(),
            nonces: SiweNonces::new(engine, max_pending),
            domain,
            scheme: url
                .as_ref()
                .map(|u| u.scheme().to_string())
                .unwrap_or_default(),
            origin: url
                .map(|u| u.origin().ascii_serialization())
                .unwrap_or_default(),
        }
    }

    /// The `domain` a message must name.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// A nonce for `address` on `chain_id`; `Ok(None)` when the bound on
    /// pending nonces and flows is reached (nothing stored).
    pub async fn issue_nonce(
        &self,
        address: &[u8; 20],
        chain_id: u64,
    ) -> Result<Option<String>, EngineError> {
        self.nonces
            .issue(&caip10(chain_id, &checksum_address(address)))
            .await
    }

    /// Nonces and provider flows waiting now.
    pub fn pending(&self) -> usize {
        self.engine.pending_authorization_count()
    }

    pub async fn verify(&self, text: &str, signature: &str) -> Result<VerifiedWallet, SiweError> {
        let message = SiweMessage::parse(text)?;
        let (account, nonce_issued_at) = match self.nonces.take(&message.nonce).await? {
            TakenNonce::Live { account, issued_at } => (account, issued_at),
            TakenNonce::Unknown => return Err(SiweError::InvalidOrExpiredNonce),
        };
        if !message.domain.eq_ignore_ascii_case(&self.domain) {
            return Err(SiweError::Mismatch("the message is for another domain"));
        }
        if message.scheme.as_deref().is_some_and(|s| s != self.scheme) {
            return Err(SiweError::Mismatch("the message is for another scheme"));
        }
        let uri_origin = url::Url::parse(&message.uri)
            .map(|u| u.origin().ascii_serialization())
            .unwrap_or_default();
        if uri_origin != self.origin {
            return Err(SiweError::Mismatch("the message's URI is not on this site"));
        }
        if account != caip10(message.chain_id, &message.address) {
            return Err(SiweError::Mismatch(
                "the nonce was issued for another address or chain",
            ));
        }
        let now = self.engine.now();
        if message.issued_at < nonce_issued_at - CLOCK_SKEW_MS {
            return Err(SiweError::Mismatch(
                "the message was issued before its nonce",
            ));
        }
        if message.issued_at > now + CLOCK_SKEW_MS {
            return Err(SiweError::NotYetValid);
        }
        if message.expiration_time.is_some_and(|at| now >= at) {
            return Err(SiweError::Expired);
        }
        if message.not_before.is_some_and(|at| now < at) {
            return Err(SiweError::NotYetValid);
        }
        let signer = checksum_address(&recover_signer(text.as_bytes(), signature)?);
        if signer != message.address {
            return Err(SiweError::WrongSigner);
        }
        Ok(VerifiedWallet {
            address: message.address,
            chain_id: message.chain_id,
        })
    }
}
