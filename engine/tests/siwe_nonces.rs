//! SIWE nonces and message times on the engine's manual clock: a nonce lives
//! five minutes (a millisecond more is too late, and it is gone afterwards), and a
//! message's `Expiration Time` / `Not Before` are read against the engine's
//! clock, over a real sled store.

mod common;

use common::{options, Harness};
use k256::ecdsa::SigningKey;
use tachigo_engine::siwe::{
    checksum_address, eip191_hash, SiweError, SiweVerifier, SIWE_NONCE_TTL_MS,
};

/// 2023-11-14T22:13:20Z, the manual clock's start.
const T0_ISO: &str = "2023-11-14T22:13:20Z";

fn wallet() -> (SigningKey, [u8; 20]) {
    let key = SigningKey::from_slice(&[7u8; 32]).unwrap();
    let point = key.verifying_key().to_encoded_point(false);
    let hash = <sha3::Keccak256 as sha3::Digest>::digest(&point.as_bytes()[1..]);
    let mut address = [0u8; 20];
    address.copy_from_slice(&hash[12..]);
    (key, address)
}

fn sign(key: &SigningKey, message: &str) -> String {
    let (signature, recovery) = key
        .sign_prehash_recoverable(&eip191_hash(message.as_bytes()))
        .unwrap();
    let mut bytes = signature.to_bytes().to_vec();
    bytes.push(27 + recovery.to_byte());
    format!(
        "0x{}",
        bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
    )
}

fn message(address: &[u8; 20], nonce: &str, extra: &str) -> String {
    format!(
        "localhost:3000 wants you to sign in with your Ethereum account:\n{}\n\n\nURI: http://localhost:3000/\nVersion: 1\nChain ID: 1\nNonce: {nonce}\nIssued At: {T0_ISO}{extra}",
        checksum_address(address)
    )
}

#[tokio::test]
async fn a_nonce_lives_five_minutes() {
    let h = Harness::start(options()).await;
    let siwe = SiweVerifier::new(&h.engine, "http://localhost:3000", 10);
    let (key, address) = wallet();

    let early = siwe.issue_nonce(&address, 1).await.unwrap().unwrap();
    let late = siwe.issue_nonce(&address, 1).await.unwrap().unwrap();
    assert_eq!(siwe.pending(), 2);
    h.clock.advance_ms(SIWE_NONCE_TTL_MS - 1);
    let text = message(&address, &early, "");
    let wallet = siwe.verify(&text, &sign(&key, &text)).await.unwrap();
    assert_eq!(
        wallet.account_id(),
        format!("eip155:1:{}", checksum_address(&address))
    );

    h.clock.advance_ms(1);
    let text = message(&address, &late, "");
    let e = siwe.verify(&text, &sign(&key, &text)).await.unwrap_err();
    assert!(matches!(e, SiweError::InvalidOrExpiredNonce), "{e:?}");
    assert_eq!(siwe.pending(), 0);
}

#[tokio::test]
async fn expiration_and_not_before_are_read_on_the_engine_clock() {
    let h = Harness::start(options()).await;
    let siwe = SiweVerifier::new(&h.engine, "http://localhost:3000", 10);
    let (key, address) = wallet();
    let expiring = "\nExpiration Time: 2023-11-14T22:14:20Z";
    let waiting = "\nNot Before: 2023-11-14T22:14:20Z";

    // A minute later the expiring message is past, the waiting one is due.
    let nonce = siwe.issue_nonce(&address, 1).await.unwrap().unwrap();
    let text = message(&address, &nonce, waiting);
    let e = siwe.verify(&text, &sign(&key, &text)).await.unwrap_err();
    assert!(matches!(e, SiweError::NotYetValid), "{e:?}");
    let nonce = siwe.issue_nonce(&address, 1).await.unwrap().unwrap();
    let text = message(&address, &nonce, expiring);
    assert!(siwe.verify(&text, &sign(&key, &text)).await.is_ok());

    let expiring_nonce = siwe.issue_nonce(&address, 1).await.unwrap().unwrap();
    let waiting_nonce = siwe.issue_nonce(&address, 1).await.unwrap().unwrap();
    h.clock.advance_ms(60_000);
    let text = message(&address, &expiring_nonce, expiring);
    let e = siwe.verify(&text, &sign(&key, &text)).await.unwrap_err();
    assert!(matches!(e, SiweError::Expired), "{e:?}");
    let text = message(&address, &waiting_nonce, waiting);
    assert!(siwe.verify(&text, &sign(&key, &text)).await.is_ok());
}

#[tokio::test]
async fn an_oauth_callback_state_never_reaches_a_nonce() {
    let h = Harness::start(options()).await;
    let siwe = SiweVerifier::new(&h.engine, "http://localhost:3000", 10);
    let pending = tachigo_engine::oauth_providers::PendingAuthorizations::new(&h.engine, 10);
    let (key, address) = wallet();
    let nonce = siwe.issue_nonce(&address, 1).await.unwrap().unwrap();

    // The state a callback would have to present to hit the nonce's key.
    let taken = pending.take(&format!("siwe-nonce:{nonce}")).await.unwrap();
    assert!(matches!(
        taken,
        tachigo_engine::oauth_providers::TakenState::Unknown
    ));
    assert_eq!(siwe.pending(), 1, "the nonce is still there");
    let text = message(&address, &nonce, "");
    siwe.verify(&text, &sign(&key, &text))
        .await
        .expect("and still signs in");
}
