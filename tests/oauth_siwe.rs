//! Sign-In with Ethereum (`/api/auth/siwe/nonce`, `/api/auth/siwe/verify`):
//! real secp256k1 keys (k256) sign real EIP-4361 messages with EIP-191, over
//! real HTTP. A good signature signs in as the wallet's CAIP-10 account and
//! sets the session cookie; a signed-in caller links the wallet instead; every
//! refusal (wrong domain or URI, replayed, expired, not yet valid, another
//! address's signature, malformed and contract-wallet signatures, a nonce
//! issued for another address or chain) stores nothing and spends the nonce;
//! unauthenticated nonces are bounded.

mod support;

use k256::ecdsa::SigningKey;
use serde_json::{json, Value};
use sha3::{Digest, Keccak256};
use support::{better_auth_code, browser, plain_client, set_cookies, TestServer, FRONTEND};
use tachigo_engine::{NewSession, NewUser, Surface};

const SESSION_COOKIE: &str = "tachigo.session_token";

/// A wallet: a well-known development key and the address everybody knows it by.
struct Wallet {
    key: SigningKey,
    address: &'static str,
}

fn key_of(hex: &str) -> SigningKey {
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    SigningKey::from_slice(&bytes).unwrap()
}

/// Hardhat's and Anvil's development accounts #0 and #1.
fn alice() -> Wallet {
    Wallet {
        key: key_of("ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"),
        address: "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266",
    }
}

fn bob() -> Wallet {
    Wallet {
        key: key_of("59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"),
        address: "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Wallet {
    /// `personal_sign`: secp256k1 over the EIP-191 hash, `0x` ‖ r ‖ s ‖ v (27/28).
    fn sign(&self, message: &str) -> String {
        let mut hasher = Keccak256::new();
        hasher.update(format!("\x19Ethereum Signed Message:\n{}", message.len()).as_bytes());
        hasher.update(message.as_bytes());
        let digest = hasher.finalize();
        let (signature, recovery) = self.key.sign_prehash_recoverable(&digest).unwrap();
        let mut bytes = signature.to_bytes().to_vec();
        bytes.push(27 + recovery.to_byte());
        format!("0x{}", hex(&bytes))
    }
}

/// Milliseconds since the epoch as an RFC 3339 UTC time.
fn iso(ms: i64) -> String {
    let (days, rem) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let (h, m, s, milli) = (
        rem / 3_600_000,
        rem / 60_000 % 60,
        rem / 1000 % 60,
        rem % 1000,
    );
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{milli:03}Z")
}

fn now_ms() -> i64 {
    support::unix_now() * 1000
}

/// An EIP-4361 message, as a wallet library writes one.
#[derive(Clone)]
struct Message {
    domain: String,
    address: String,
    uri: String,
    version: String,
    chain_id: u64,
    nonce: String,
    issued_at: i64,
    expiration_time: Option<i64>,
    not_before: Option<i64>,
    statement: Option<String>,
}

impl Message {
    fn new(wallet: &Wallet, chain_id: u64, nonce: &str) -> Message {
        Message {
            domain: "localhost:3000".into(),
            address: wallet.address.into(),
            uri: format!("{FRONTEND}/sign-in"),
            version: "1".into(),
            chain_id,
            nonce: nonce.into(),
            issued_at: now_ms(),
            expiration_time: Some(now_ms() + 60_000),
            not_before: None,
            statement: Some("Sign in to tachigo.".into()),
        }
    }

    fn text(&self) -> String {
        let statement = self
            .statement
            .as_ref()
            .map(|s| format!("{s}\n"))
            .unwrap_or_default();
        let mut text = format!(
            "{} wants you to sign in with your Ethereum account:\n{}\n\n{statement}\nURI: {}\nVersion: {}\nChain ID: {}\nNonce: {}\nIssued At: {}",
            self.domain, self.address, self.uri, self.version, self.chain_id, self.nonce, iso(self.issued_at)
        );
        if let Some(at) = self.expiration_time {
            text.push_str(&format!("\nExpiration Time: {}", iso(at)));
        }
        if let Some(at) = self.not_before {
            text.push_str(&format!("\nNot Before: {}", iso(at)));
        }
        text.push_str("\nResources:\n- https://localhost:3000/terms");
        text
    }
}

/// A POST from the frontend's page with `client`'s cookies.
async fn post(
    server: &TestServer,
    client: &reqwest::Client,
    path: &str,
    body: Value,
) -> reqwest::Response {
    client
        .post(server.url(&format!("/api/auth/{path}")))
        .header("origin", FRONTEND)
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn nonce_for(
    server: &TestServer,
    client: &reqwest::Client,
    address: &str,
    chain_id: u64,
) -> String {
    let response = post(
        server,
        client,
        "siwe/nonce",
        json!({"walletAddress": address, "chainId": chain_id}),
    )
    .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let nonce = body["nonce"].as_str().unwrap().to_string();
    assert_eq!(body.as_object().unwrap().len(), 1, "{body}");
    assert!(nonce.len() >= 8 && nonce.bytes().all(|b| b.is_ascii_alphanumeric()));
    nonce
}

async fn verify(
    server: &TestServer,
    client: &reqwest::Client,
    message: &str,
    signature: &str,
) -> reqwest::Response {
    post(
        server,
        client,
        "siwe/verify",
        json!({"message": message, "signature": signature}),
    )
    .await
}

async fn start() -> TestServer {
    TestServer::start_with(|c| {
        c.limits.oauth_starts_per_minute = 1000;
        c.limits.oauth_starts_burst = 1000;
    })
    .await
}

async fn list_accounts(server: &TestServer, client: &reqwest::Client) -> Vec<Value> {
    let response = client
        .get(server.url("/api/auth/list-accounts"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

#[tokio::test]
async fn a_signed_message_signs_in_as_the_wallet_account() {
    let server = start().await;
    let wallet = alice();
    let b = browser();
    // A lower-case address in the request: the nonce is bound to its checksummed form.
    let nonce = nonce_for(&server, &b, &wallet.address.to_lowercase(), 1).await;
    let message = Message::new(&wallet, 1, &nonce).text();
    let response = verify(&server, &b, &message, &wallet.sign(&message)).await;
    assert_eq!(response.status(), 200);
    let cookies = set_cookies(&response, SESSION_COOKIE);
    assert_eq!(cookies.len(), 1);
    assert!(
        cookies[0].contains("HttpOnly") && cookies[0].contains("SameSite=Lax"),
        "{}",
        cookies[0]
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["success"], true);
    assert_eq!(body["user"]["walletAddress"], wallet.address);
    assert_eq!(body["user"]["chainId"], 1);
    let user_id = body["user"]["id"].as_str().unwrap().to_string();
    assert!(!body["token"].as_str().unwrap().is_empty());

    // The cookie is a session of that user, and the account is the CAIP-10 id.
    let session: Value = b
        .get(server.url("/api/auth/get-session"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(session["user"]["id"], user_id);
    assert_eq!(session["user"]["name"], wallet.address);
    assert_eq!(session["user"]["email"], Value::Null);
    assert_eq!(session["session"]["id"], body["token"]);
    let subject = format!("eip155:1:{}", wallet.address);
    let accounts = list_accounts(&server, &b).await;
    assert_eq!(accounts.len(), 1);
    assert_eq!(accounts[0]["providerId"], "siwe");
    assert_eq!(accounts[0]["accountId"], subject);
    assert_eq!(
        server
            .engine()
            .user_id_by_account("siwe", &subject)
            .await
            .unwrap()
            .as_deref(),
        Some(user_id.as_str())
    );

    // Again, from another browser: the same user, a new session.
    let other = browser();
    let nonce = nonce_for(&server, &other, wallet.address, 1).await;
    let message = Message::new(&wallet, 1, &nonce).text();
    let response = verify(&server, &other, &message, &wallet.sign(&message)).await;
    assert_eq!(response.status(), 200);
    let again: Value = response.json().await.unwrap();
    assert_eq!(again["user"]["id"], user_id);
    assert_ne!(again["token"], body["token"]);

    // The same address on another chain is another CAIP-10 account: another user.
    let fresh = browser();
    let nonce = nonce_for(&server, &fresh, wallet.address, 137).await;
    let mut on_polygon = Message::new(&wallet, 137, &nonce);
    on_polygon.statement = None;
    let message = on_polygon.text();
    let response = verify(&server, &fresh, &message, &wallet.sign(&message)).await;
    assert_eq!(response.status(), 200);
    let polygon: Value = response.json().await.unwrap();
    assert_eq!(polygon["user"]["chainId"], 137);
    assert_ne!(polygon["user"]["id"], user_id);
    assert_eq!(server.engine().user_count().await.unwrap(), 2);
    assert_eq!(server.engine().pending_authorization_count(), 0);
}

#[tokio::test]
async fn every_refusal_stores_nothing_and_spends_the_nonce() {
    let server = start().await;
    let wallet = alice();
    let b = browser();
    let now = now_ms();

    type Forge = Box<dyn Fn(&mut Message) -> Option<String>>;
    let cases: Vec<(&str, u16, &str, Forge)> = vec![
        (
            "wrong domain",
            401,
            "UNAUTHORIZED_SIWE_MESSAGE_MISMATCH",
            Box::new(|m| {
                m.domain = "evil.example".into();
                None
            }),
        ),
        (
            "domain with another port",
            401,
            "UNAUTHORIZED_SIWE_MESSAGE_MISMATCH",
            Box::new(|m| {
                m.domain = "localhost:3001".into();
                None
            }),
        ),
        (
            "URI on another origin",
            401,
            "UNAUTHORIZED_SIWE_MESSAGE_MISMATCH",
            Box::new(|m| {
                m.uri = "https://evil.example/sign-in".into();
                None
            }),
        ),
        (
            "expired",
            401,
            "UNAUTHORIZED_SIWE_MESSAGE_EXPIRED",
            Box::new(move |m| {
                m.issued_at = now - 1000;
                m.expiration_time = Some(now - 500);
                None
            }),
        ),
        (
            "not before in the future",
            401,
            "UNAUTHORIZED_SIWE_MESSAGE_NOT_YET_VALID",
            Box::new(move |m| {
                m.not_before = Some(now + 600_000);
                None
            }),
        ),
        (
            "issued in the future",
            401,
            "UNAUTHORIZED_SIWE_MESSAGE_NOT_YET_VALID",
            Box::new(move |m| {
                m.issued_at = now + 600_000;
                None
            }),
        ),
        (
            "issued before its nonce",
            401,
            "UNAUTHORIZED_SIWE_MESSAGE_MISMATCH",
            Box::new(move |m| {
                m.issued_at = now - 3_600_000;
                None
            }),
        ),
        (
            "another chain than the nonce's",
            401,
            "UNAUTHORIZED_SIWE_MESSAGE_MISMATCH",
            Box::new(|m| {
                m.chain_id = 10;
                None
            }),
        ),
        (
            "another address than the nonce's",
            401,
            "UNAUTHORIZED_SIWE_MESSAGE_MISMATCH",
            Box::new(|m| {
                m.address = bob().address.into();
                Some(bob().sign(&m.text()))
            }),
        ),
        (
            "another address's signature",
            401,
            "UNAUTHORIZED_INVALID_SIWE_SIGNATURE",
            Box::new(|m| Some(bob().sign(&m.text()))),
        ),
        (
            "not hex",
            400,
            "INVALID_SIWE_SIGNATURE_FORMAT",
            Box::new(|_| Some(format!("0x{}", "zz".repeat(65)))),
        ),
        (
            "64 bytes",
            400,
            "INVALID_SIWE_SIGNATURE_FORMAT",
            Box::new(|m| {
                let signature = alice().sign(&m.text());
                Some(signature[..130].to_string())
            }),
        ),
        (
            "bad v",
            400,
            "INVALID_SIWE_SIGNATURE_FORMAT",
            Box::new(|m| {
                let signature = alice().sign(&m.text());
                Some(format!("{}05", &signature[..130]))
            }),
        ),
        (
            "contract wallet",
            400,
            "SIWE_CONTRACT_WALLET_UNSUPPORTED",
            Box::new(|m| {
                let signature = alice().sign(&m.text());
                Some(format!("{signature}{}", "6492".repeat(16)))
            }),
        ),
    ];
    for (what, status, code, forge) in cases {
        let nonce = nonce_for(&server, &b, wallet.address, 1).await;
        let good = Message::new(&wallet, 1, &nonce);
        let mut forged = good.clone();
        let signature = forge(&mut forged);
        let text = forged.text();
        let signature = signature.unwrap_or_else(|| wallet.sign(&text));
        let response = verify(&server, &b, &text, &signature).await;
        assert_eq!(response.status(), status, "{what}");
        assert!(set_cookies(&response, SESSION_COOKIE).is_empty(), "{what}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["code"], code, "{what}: {body}");
        assert!(!body["message"].as_str().unwrap().is_empty(), "{what}");
        // The nonce is spent: the honest message with it is refused too.
        let honest = good.text();
        let response = verify(&server, &b, &honest, &wallet.sign(&honest)).await;
        assert_eq!(response.status(), 401, "{what}");
        assert_eq!(
            better_auth_code(response).await,
            "UNAUTHORIZED_INVALID_OR_EXPIRED_NONCE",
            "{what}"
        );
    }
    assert_eq!(server.engine().user_count().await.unwrap(), 0);
    assert_eq!(server.engine().pending_authorization_count(), 0);
    assert_eq!(
        server
            .engine()
            .user_id_by_account("siwe", &format!("eip155:1:{}", wallet.address))
            .await
            .unwrap(),
        None
    );
}

#[tokio::test]
async fn a_nonce_works_once_and_only_when_issued() {
    let server = start().await;
    let wallet = alice();
    let b = browser();
    let nonce = nonce_for(&server, &b, wallet.address, 1).await;
    let message = Message::new(&wallet, 1, &nonce).text();
    let signature = wallet.sign(&message);
    assert_eq!(
        verify(&server, &b, &message, &signature).await.status(),
        200
    );
    // Replayed, from a fresh client: refused, and nothing new.
    let replay = verify(&server, &plain_client(), &message, &signature).await;
    assert_eq!(replay.status(), 401);
    assert!(set_cookies(&replay, SESSION_COOKIE).is_empty());
    assert_eq!(
        better_auth_code(replay).await,
        "UNAUTHORIZED_INVALID_OR_EXPIRED_NONCE"
    );
    // A nonce this server never issued.
    let made_up = Message::new(&wallet, 1, "madeUp12345678").text();
    let response = verify(&server, &b, &made_up, &wallet.sign(&made_up)).await;
    assert_eq!(
        better_auth_code(response).await,
        "UNAUTHORIZED_INVALID_OR_EXPIRED_NONCE"
    );
    // Body fields that name another wallet or chain than the message.
    for (address, chain) in [(bob().address, 1), (wallet.address, 5)] {
        let nonce = nonce_for(&server, &b, wallet.address, 1).await;
        let message = Message::new(&wallet, 1, &nonce).text();
        let response = post(
            &server,
            &plain_client(),
            "siwe/verify",
            json!({"message": message, "signature": wallet.sign(&message),
                   "walletAddress": address, "chainId": chain}),
        )
        .await;
        assert_eq!(response.status(), 401);
        assert_eq!(
            better_auth_code(response).await,
            "UNAUTHORIZED_SIWE_MESSAGE_MISMATCH"
        );
    }
    assert_eq!(server.engine().user_count().await.unwrap(), 1);
    assert_eq!(server.engine().pending_authorization_count(), 0);
}

#[tokio::test]
async fn malformed_requests_are_refused_before_anything_is_stored() {
    let server = start().await;
    let wallet = alice();
    let c = plain_client();
    let nonce_cases = [
        (
            json!({"walletAddress": "0x1234", "chainId": 1}),
            400,
            "INVALID_WALLET_ADDRESS",
        ),
        // A mixed-case address with a wrong checksum.
        (
            json!({"walletAddress": "0xF39Fd6e51aad88F6F4ce6aB8827279cffFb92266", "chainId": 1}),
            400,
            "INVALID_WALLET_ADDRESS",
        ),
        (
            json!({"walletAddress": wallet.address, "chainId": 0}),
            400,
            "INVALID_CHAIN_ID",
        ),
        (
            json!({"walletAddress": wallet.address, "chainId": "1"}),
            400,
            "VALIDATION_ERROR",
        ),
        (
            json!({"walletAddress": wallet.address, "chainId": -1}),
            400,
            "VALIDATION_ERROR",
        ),
        (
            json!({"walletAddress": wallet.address}),
            400,
            "VALIDATION_ERROR",
        ),
        (json!({}), 400, "VALIDATION_ERROR"),
        (json!([wallet.address, 1]), 400, "VALIDATION_ERROR"),
    ];
    for (body, status, code) in nonce_cases {
        let response = post(&server, &c, "siwe/nonce", body.clone()).await;
        assert_eq!(response.status(), status, "{body}");
        assert_eq!(better_auth_code(response).await, code, "{body}");
    }
    let verify_cases = [
        (
            json!({"message": "hello", "signature": "0x00"}),
            400,
            "INVALID_SIWE_MESSAGE",
        ),
        (
            json!({"message": "", "signature": ""}),
            400,
            "INVALID_SIWE_MESSAGE",
        ),
        (
            json!({"message": "x".repeat(9000), "signature": "0x"}),
            400,
            "INVALID_SIWE_MESSAGE",
        ),
        (json!({"signature": "0x00"}), 400, "VALIDATION_ERROR"),
        (
            json!({"message": 1, "signature": "0x00"}),
            400,
            "VALIDATION_ERROR",
        ),
        (
            json!({"message": "m", "signature": "0x00", "email": "not an email"}),
            400,
            "INVALID_EMAIL",
        ),
        (
            json!({"message": "m", "signature": "0x00", "walletAddress": "nope"}),
            400,
            "INVALID_WALLET_ADDRESS",
        ),
    ];
    for (body, status, code) in verify_cases {
        let response = post(&server, &c, "siwe/verify", body.clone()).await;
        assert_eq!(response.status(), status, "{body}");
        assert_eq!(better_auth_code(response).await, code, "{body}");
    }
    // A message that does not parse (version 2) names no nonce: it spends none.
    nonce_for(&server, &c, wallet.address, 1).await;
    let text = "localhost:3000 wants you to sign in with your Ethereum account:\n0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266\n\n\nURI: http://localhost:3000\nVersion: 2\nChain ID: 1\nNonce: abcdefgh1234\nIssued At: 2026-01-01T00:00:00Z";
    let response = verify(&server, &c, text, &wallet.sign(text)).await;
    assert_eq!(response.status(), 400);
    assert_eq!(better_auth_code(response).await, "INVALID_SIWE_MESSAGE");
    assert_eq!(server.engine().pending_authorization_count(), 1);
    // Oversized, not JSON, and from a page of another site.
    let huge = json!({"message": "x".repeat(20_000), "signature": "0x"});
    let response = post(&server, &c, "siwe/verify", huge).await;
    assert_eq!(response.status(), 413);
    let response = c
        .post(server.url("/api/auth/siwe/nonce"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    for path in ["siwe/nonce", "siwe/verify"] {
        let response = c
            .post(server.url(&format!("/api/auth/{path}")))
            .header("origin", "https://evil.example")
            .json(&json!({"walletAddress": wallet.address, "chainId": 1, "message": "m", "signature": "0x"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 403, "{path}");
        assert_eq!(better_auth_code(response).await, "UNTRUSTED_ORIGIN");
    }
    assert_eq!(server.engine().pending_authorization_count(), 1);
    assert_eq!(server.engine().user_count().await.unwrap(), 0);
}

#[tokio::test]
async fn unauthenticated_nonces_are_bounded() {
    let server = TestServer::start_with(|c| {
        c.limits.oauth_starts_per_minute = 1000;
        c.limits.oauth_starts_burst = 1000;
        c.limits.max_pending_oauth_states = 3;
    })
    .await;
    let c = plain_client();
    let mut nonces = Vec::new();
    for _ in 0..3 {
        nonces.push(nonce_for(&server, &c, alice().address, 1).await);
    }
    let response = post(
        &server,
        &c,
        "siwe/nonce",
        json!({"walletAddress": alice().address, "chainId": 1}),
    )
    .await;
    assert_eq!(response.status(), 429);
    assert!(response.headers().contains_key("retry-after"));
    assert_eq!(better_auth_code(response).await, "TOO_MANY_REQUESTS");
    assert_eq!(server.engine().pending_authorization_count(), 3);
    // A used nonce frees its slot.
    let message = Message::new(&alice(), 1, &nonces[0]).text();
    let response = verify(&server, &c, &message, &alice().sign(&message)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(server.engine().pending_authorization_count(), 2);
    nonce_for(&server, &c, alice().address, 1).await;
    assert_eq!(server.engine().pending_authorization_count(), 3);

    // And per client IP, with the social sign-ins' allowance.
    let server = TestServer::start_with(|c| {
        c.limits.oauth_starts_per_minute = 1;
        c.limits.oauth_starts_burst = 2;
    })
    .await;
    nonce_for(&server, &c, alice().address, 1).await;
    nonce_for(&server, &c, alice().address, 1).await;
    let response = post(
        &server,
        &c,
        "siwe/nonce",
        json!({"walletAddress": alice().address, "chainId": 1}),
    )
    .await;
    assert_eq!(response.status(), 429);
    assert_eq!(better_auth_code(response).await, "TOO_MANY_REQUESTS");
    assert_eq!(server.engine().pending_authorization_count(), 2);
}

/// A user with a password and a web session; the cookie header that proves it.
async fn signed_in_user(server: &TestServer, email: &str) -> (String, String) {
    let user = server
        .engine()
        .create_user(NewUser {
            email: Some(email.into()),
            name: Some("Ada".into()),
            password: Some("correct horse battery staple".into()),
            roles: Vec::new(),
        })
        .await
        .unwrap();
    let created = server
        .engine()
        .create_session(
            &user.id,
            NewSession {
                surface: Surface::Web,
                user_agent: None,
                ip: None,
                context: None,
            },
        )
        .await
        .unwrap();
    (
        user.id,
        format!("{SESSION_COOKIE}={}", created.token.unwrap()),
    )
}

async fn verify_with_cookie(
    server: &TestServer,
    cookie: &str,
    wallet: &Wallet,
) -> reqwest::Response {
    let c = plain_client();
    let nonce = nonce_for(server, &c, wallet.address, 1).await;
    let message = Message::new(wallet, 1, &nonce).text();
    c.post(server.url("/api/auth/siwe/verify"))
        .header("origin", FRONTEND)
        .header("cookie", cookie)
        .json(&json!({"message": message, "signature": wallet.sign(&message)}))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_signed_in_user_links_the_wallet_to_themselves() {
    let server = start().await;
    let wallet = alice();
    let (ada, cookie) = signed_in_user(&server, "ada@example.com").await;
    let response = verify_with_cookie(&server, &cookie, &wallet).await;
    assert_eq!(response.status(), 200);
    assert!(set_cookies(&response, SESSION_COOKIE).is_empty());
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["user"]["id"], ada);
    assert_eq!(body["success"], true);
    let user = server.engine().user(&ada).await.unwrap();
    let subject = format!("eip155:1:{}", wallet.address);
    assert!(user
        .accounts
        .iter()
        .any(|a| a.provider == "siwe" && a.subject == subject));

    // Signing in with the wallet later is Ada.
    let b = browser();
    let nonce = nonce_for(&server, &b, wallet.address, 1).await;
    let message = Message::new(&wallet, 1, &nonce).text();
    let response = verify(&server, &b, &message, &wallet.sign(&message)).await;
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["user"]["id"], ada);

    // Another signed-in user cannot take it.
    let (grace, grace_cookie) = signed_in_user(&server, "grace@example.com").await;
    let response = verify_with_cookie(&server, &grace_cookie, &wallet).await;
    assert_eq!(response.status(), 400);
    assert_eq!(
        better_auth_code(response).await,
        "ACCOUNT_ALREADY_LINKED_TO_DIFFERENT_USER"
    );
    assert!(server
        .engine()
        .user(&grace)
        .await
        .unwrap()
        .accounts
        .iter()
        .all(|a| a.provider != "siwe"));
    assert_eq!(server.engine().user_count().await.unwrap(), 2);
}

#[tokio::test]
async fn an_email_never_joins_or_names_a_user() {
    let server = start().await;
    let wallet = bob();
    let (ada, _) = signed_in_user(&server, "ada@example.com").await;
    let b = browser();
    let nonce = nonce_for(&server, &b, wallet.address, 1).await;
    let message = Message::new(&wallet, 1, &nonce).text();
    let response = post(
        &server,
        &b,
        "siwe/verify",
        json!({"message": message, "signature": wallet.sign(&message), "email": "Ada@Example.com",
               "walletAddress": wallet.address, "chainId": 1}),
    )
    .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let id = body["user"]["id"].as_str().unwrap();
    assert_ne!(id, ada);
    let user = server.engine().user(id).await.unwrap();
    assert_eq!((user.email.as_deref(), user.email_verified), (None, false));
    assert_eq!(user.accounts.len(), 1);
    assert_eq!(user.accounts[0].email.as_deref(), Some("ada@example.com"));
    let ada_user = server.engine().user(&ada).await.unwrap();
    assert!(ada_user.accounts.iter().all(|a| a.provider != "siwe"));
}
