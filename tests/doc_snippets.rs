//! The Rust snippet of `docs/contracts/extension.md`, a watch service verifying
//! tachigo tokens with nothing but the JWKS: the block in the doc is byte for
//! byte `tests/doc_snippets/jwks_verify.rs`, which this test compiles and runs
//! against the real server, so the doc cannot drift from code that works.

mod support;

#[path = "doc_snippets/jwks_verify.rs"]
mod jwks_verify;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use jwks_verify::{fetch_jwks, verify, Rejected};
use serde_json::{json, Value};
use support::snippets::doc_snippet;
use support::{
    create_dashboard_user, dashboard_login, plain_client, twitch_claims, twitch_extension_secret,
    twitch_jwt, unix_now, TestServer,
};
use tachigo_engine::config::ExtensionSecret;

#[test]
fn the_docs_rust_watch_service_is_the_file_this_test_compiles() {
    let snippet = doc_snippet("extension.md", "watch-service-rust");
    let file = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/doc_snippets/jwks_verify.rs"
    ))
    .unwrap();
    assert_eq!(snippet.lang, "rust");
    assert!(
        snippet.code == file,
        "docs/contracts/extension.md `watch-service-rust` differs from \
         tests/doc_snippets/jwks_verify.rs: change both together"
    );
}

/// The kind of a `Rejected::Invalid`, or a panic naming what came instead.
fn invalid_kind(result: Result<jwks_verify::TachigoClaims, Rejected>) -> ErrorKind {
    match result {
        Err(Rejected::Invalid(e)) => e.into_kind(),
        other => panic!("expected Rejected::Invalid, got {other:?}"),
    }
}

/// `claims` signed by the server's own key (what only the server can make).
fn server_signed(server: &TestServer, claims: &Value) -> String {
    server.engine().keys().sign(claims)
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_docs_rust_watch_service_accepts_real_tokens_and_refuses_bad_ones() {
    let secret = twitch_extension_secret();
    let configured = secret.clone();
    let mut server = TestServer::start_with(|config| {
        config.extension.secrets = vec![ExtensionSecret {
            secret: configured,
            ..ExtensionSecret::default()
        }];
    })
    .await;
    let issuer = server.config.server.public_url.clone();
    let login: Value = plain_client()
        .post(server.url("/api/v1/extension/auth/login"))
        .bearer_auth(twitch_jwt(
            &secret,
            &twitch_claims(Some("61001"), "7007", "moderator"),
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = login["access_token"].as_str().unwrap();

    // The snippet, with nothing but HTTP and the JWKS.
    let jwks = fetch_jwks(&plain_client(), &issuer).await.unwrap();
    let claims = verify(token, &jwks, &issuer).expect("a token the server issued verifies");
    assert_eq!(claims.sub, login["user"]["id"].as_str().unwrap());
    assert!(claims.sid.is_some(), "a user token names its session");
    assert!(claims.roles.is_empty());
    assert_eq!(claims.channel_id, "7007");
    assert_eq!(claims.twitch_role, "moderator");
    assert_eq!(claims.opaque_user_id, "U61001");
    assert!(claims.exp > unix_now() as u64);

    let payload: Value = {
        use base64::Engine as _;
        let part = token.split('.').nth(1).unwrap();
        serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(part)
                .unwrap(),
        )
        .unwrap()
    };
    let parts: Vec<&str> = token.split('.').collect();

    // The payload edited after signing.
    let mut edited = payload.clone();
    edited["twitch_role"] = json!("broadcaster");
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        b64(edited.to_string().as_bytes()),
        parts[2]
    );
    assert_eq!(
        invalid_kind(verify(&forged, &jwks, &issuer)),
        ErrorKind::InvalidSignature
    );

    // The same claims signed with another Ed25519 key under the server's kid
    // (a PKCS#8 v1 document around a random seed).
    let kid = jsonwebtoken::decode_header(token).unwrap().kid.unwrap();
    let mut der = vec![
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    der.extend(rand::random::<[u8; 32]>());
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(kid.clone());
    let resigned =
        jsonwebtoken::encode(&header, &payload, &EncodingKey::from_ed_der(&der)).unwrap();
    assert_eq!(
        invalid_kind(verify(&resigned, &jwks, &issuer)),
        ErrorKind::InvalidSignature
    );

    // HS256 "signed" with the public key's bytes, the classic key confusion.
    let public_x = jwks.find(&kid).map(|jwk| match &jwk.algorithm {
        jsonwebtoken::jwk::AlgorithmParameters::OctetKeyPair(okp) => okp.x.clone(),
        other => panic!("the server publishes an OKP key, not {other:?}"),
    });
    let mut hs_header = Header::new(Algorithm::HS256);
    hs_header.kid = Some(kid.clone());
    let confused = jsonwebtoken::encode(
        &hs_header,
        &payload,
        &EncodingKey::from_secret(public_x.unwrap().as_bytes()),
    )
    .unwrap();
    assert_eq!(
        invalid_kind(verify(&confused, &jwks, &issuer)),
        ErrorKind::InvalidAlgorithm
    );

    // A kid the JWKS does not hold.
    let unknown_kid = format!(
        "{}.{}.{}",
        b64(json!({"alg": "EdDSA", "kid": "not-a-tachigo-key"})
            .to_string()
            .as_bytes()),
        parts[1],
        parts[2]
    );
    assert!(matches!(
        verify(&unknown_kid, &jwks, &issuer),
        Err(Rejected::UnknownKey)
    ));

    // Signed by the server, but expired (past the snippet's 5 s leeway), for
    // another issuer, or without `exp`.
    let now = unix_now();
    let mut expired = payload.clone();
    expired["iat"] = json!(now - 960);
    expired["exp"] = json!(now - 60);
    assert_eq!(
        invalid_kind(verify(&server_signed(&server, &expired), &jwks, &issuer)),
        ErrorKind::ExpiredSignature
    );
    let mut just_expired = payload.clone();
    just_expired["exp"] = json!(now - 2);
    assert!(
        verify(&server_signed(&server, &just_expired), &jwks, &issuer).is_ok(),
        "two seconds past exp is inside the clock-skew leeway"
    );
    let mut elsewhere = payload.clone();
    elsewhere["iss"] = json!("https://auth.elsewhere.example");
    assert_eq!(
        invalid_kind(verify(&server_signed(&server, &elsewhere), &jwks, &issuer)),
        ErrorKind::InvalidIssuer
    );
    let mut no_exp = payload.clone();
    no_exp.as_object_mut().unwrap().remove("exp");
    // (refused as claims that do not fit `TachigoClaims`, before validation)
    invalid_kind(verify(&server_signed(&server, &no_exp), &jwks, &issuer));

    // A genuine dashboard access token is for another audience.
    create_dashboard_user(&server, "watcher@example.test").await;
    let dashboard: Value = dashboard_login(&server, &plain_client(), "watcher@example.test")
        .await
        .json()
        .await
        .unwrap();
    invalid_kind(verify(
        dashboard["access_token"].as_str().unwrap(),
        &jwks,
        &issuer,
    ));
    // (it lacks the Twitch claims too: the audience alone refuses these)
    let mut for_dashboard = payload.clone();
    for_dashboard["aud"] = json!("dashboard");
    assert_eq!(
        invalid_kind(verify(
            &server_signed(&server, &for_dashboard),
            &jwks,
            &issuer
        )),
        ErrorKind::InvalidAudience
    );
    server.stop().await;
}
