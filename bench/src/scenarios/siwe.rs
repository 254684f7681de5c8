//! `siwe`: whole Sign-In with Ethereum sign-ins per second against the real
//! release server. One step is what a wallet page does: `POST
//! /api/auth/siwe/nonce` (the nonce stored durably in the bounded table of
//! pending flows), an EIP-4361 message signed with EIP-191 by a secp256k1
//! key, and `POST /api/auth/siwe/verify` (message parsed and checked, the
//! signer recovered, the nonce taken, the wallet's user found or created, a
//! web session created durably, the session cookie set).
//!
//! Wallets are drawn at random from `--users` (default 1,000) keys made at
//! setup, so the first pass creates users and later sign-ins find them. The
//! wallet's signature is made in this process (about one secp256k1 signing per
//! step), so it shares the CPU with the load generator: read the figure as the
//! flow's, not the server's alone. Without `--url` the server is spawned with
//! the per-client limit on started flows lifted (all load is from 127.0.0.1).

use k256::ecdsa::SigningKey;
use reqwest::{Client, Url};
use serde_json::json;
use sha3::{Digest, Keccak256};
use time::format_description::well_known::Rfc3339;

use crate::driver::Scenario;
use crate::server_process::{default_server_bin, ServerProcess};
use crate::{http, Options};

const DEFAULT_USERS: u64 = 1_000;
/// The server's default `oauth.frontend_url`, which messages must name.
const FRONTEND: &str = "http://localhost:3000";
const DOMAIN: &str = "localhost:3000";
const CHAIN_ID: u64 = 1;

struct Wallet {
    key: SigningKey,
    address: String,
}

impl Wallet {
    fn random() -> Wallet {
        let key = SigningKey::from_bytes(&rand::random::<[u8; 32]>().into())
            .expect("a random scalar is a key");
        let point = key.verifying_key().to_encoded_point(false);
        let hash = Keccak256::digest(&point.as_bytes()[1..]);
        let bytes: [u8; 20] = hash[12..].try_into().expect("20 bytes");
        Wallet {
            key,
            address: tachigo_engine::siwe::checksum_address(&bytes),
        }
    }

    /// `personal_sign`: `0x` ‖ r ‖ s ‖ v (27/28) over the EIP-191 hash.
    fn sign(&self, message: &str) -> String {
        let digest = tachigo_engine::siwe::eip191_hash(message.as_bytes());
        let (signature, recovery) = self
            .key
            .sign_prehash_recoverable(&digest)
            .expect("signing a digest");
        let mut bytes = signature.to_bytes().to_vec();
        bytes.push(27 + recovery.to_byte());
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        format!("0x{hex}")
    }
}

/// The message a wallet library writes for `nonce`, valid for five minutes.
fn message(address: &str, nonce: &str) -> String {
    let now = time::OffsetDateTime::now_utc();
    let issued_at = now.format(&Rfc3339).expect("a time formats");
    let expires = (now + time::Duration::minutes(5))
        .format(&Rfc3339)
        .expect("a time formats");
    format!(
        "{DOMAIN} wants you to sign in with your Ethereum account:\n{address}\n\n\
         Sign in to tachigo.\n\nURI: {FRONTEND}/sign-in\nVersion: 1\nChain ID: {CHAIN_ID}\n\
         Nonce: {nonce}\nIssued At: {issued_at}\nExpiration Time: {expires}"
    )
}

pub struct Siwe {
    client: Client,
    nonce_url: Url,
    verify_url: Url,
    wallets: Vec<Wallet>,
    server: Option<ServerProcess>,
}

impl Scenario for Siwe {
    const NAME: &'static str = "siwe";

    async fn setup(options: &Options) -> anyhow::Result<Self> {
        let (base, server) = match &options.url {
            Some(url) => (url.clone(), None),
            None => {
                let server = ServerProcess::spawn(
                    &default_server_bin(),
                    &[
                        ("TACHIGO__LIMITS__OAUTH_STARTS_PER_MINUTE", "100000000"),
                        ("TACHIGO__LIMITS__OAUTH_STARTS_BURST", "100000"),
                    ],
                )
                .await?;
                (Url::parse(&server.base_url)?, Some(server))
            }
        };
        let users = options.users.unwrap_or(DEFAULT_USERS).max(1);
        Ok(Siwe {
            client: http::client(options.concurrency)?,
            nonce_url: base.join("/api/auth/siwe/nonce")?,
            verify_url: base.join("/api/auth/siwe/verify")?,
            wallets: (0..users).map(|_| Wallet::random()).collect(),
            server,
        })
    }

    async fn step(&self, _worker: usize, _iteration: u64) -> Result<(), String> {
        let wallet = &self.wallets[rand::random_range(0..self.wallets.len())];
        let request = self
            .client
            .post(self.nonce_url.clone())
            .header("origin", FRONTEND)
            .json(&json!({"walletAddress": wallet.address, "chainId": CHAIN_ID}));
        let issued: serde_json::Value =
            serde_json::from_slice(&http::fetch_ok(request, "nonce status").await?)
                .map_err(|_| "nonce: not JSON".to_string())?;
        let nonce = issued["nonce"].as_str().ok_or("no nonce")?;
        let text = message(&wallet.address, nonce);
        let signature = wallet.sign(&text);
        let request = self
            .client
            .post(self.verify_url.clone())
            .header("origin", FRONTEND)
            .json(&json!({
                "message": text,
                "signature": signature,
                "walletAddress": wallet.address,
                "chainId": CHAIN_ID,
            }));
        let body = http::fetch_ok(request, "verify status").await?;
        if !body.windows(14).any(|w| w == br#""success":true"#) {
            return Err("verify: no success".to_string());
        }
        Ok(())
    }

    fn extra(&self) -> Option<serde_json::Value> {
        Some(serde_json::json!({ "users": self.wallets.len() }))
    }

    fn server_pid(&self) -> Option<u32> {
        self.server.as_ref().map(ServerProcess::pid)
    }
}
