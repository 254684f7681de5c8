//! The extension contract's login (`POST /api/v1/extension/auth/login`): which
//! Twitch Extension JWTs are accepted, which are refused and with what code, secret
//! rotation, the shared Twitch identity, anonymous viewers, and that a refused
//! request leaves storage exactly as it was.

mod support;

use serde_json::{json, Value};
use support::{
    plain_client, twitch_claims, twitch_extension_secret, twitch_jwt, unix_now, TestServer,
};
use tachigo_engine::config::ExtensionSecret;
use tachigo_engine::{Engine, ProviderIdentity, Surface};

const CLIENT_ID: &str = "abc123clientid";

fn secret(value: &str) -> ExtensionSecret {
    ExtensionSecret {
        secret: value.to_string(),
        ..ExtensionSecret::default()
    }
}

async fn start(secrets: Vec<ExtensionSecret>, allow_anonymous: bool) -> TestServer {
    TestServer::start_with(|config| {
        config.extension.client_ids = vec![CLIENT_ID.into()];
        config.extension.secrets = secrets;
        config.extension.allow_anonymous = allow_anonymous;
    })
    .await
}

async fn login(server: &TestServer, twitch_token: &str) -> reqwest::Response {
    plain_client()
        .post(server.url("/api/v1/extension/auth/login"))
        .bearer_auth(twitch_token)
        .header("user-agent", "tachimint-panel/1.0")
        .send()
        .await
        .unwrap()
}

async fn error_code(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    (
        status,
        body["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    )
}

fn twitch_identity(user_id: &str) -> ProviderIdentity {
    ProviderIdentity {
        provider: "twitch".into(),
        subject: user_id.into(),
        ..ProviderIdentity::default()
    }
}

/// What a refused request must not change: users, audit trail, a user's sessions.
async fn storage_state(engine: &Engine, user_id: &str) -> (u64, usize, usize) {
    (
        engine.user_count().await.unwrap(),
        engine.recent_audit_events(10_000).await.unwrap().len(),
        engine.stored_sessions(user_id).await.unwrap().len(),
    )
}

fn b64url(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    use hmac::Mac;
    let mut mac =
        hmac::Hmac::<sha2::Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

/// A token with an arbitrary header, HMAC-SHA256-signed with `key` (for headers
/// `jsonwebtoken` would refuse to produce, such as `alg: RS256` over an HMAC).
fn hand_signed(header: &Value, claims: &Value, key: &[u8]) -> String {
    let message = format!(
        "{}.{}",
        b64url(header.to_string().as_bytes()),
        b64url(claims.to_string().as_bytes())
    );
    format!(
        "{message}.{}",
        b64url(&hmac_sha256(key, message.as_bytes()))
    )
}

fn decoded(secret: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(secret)
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_identity_login_returns_a_tachigo_token_and_creates_the_user_once() {
    let key = twitch_extension_secret();
    let mut server = start(vec![secret(&key)], false).await;
    let users_before = server.engine().user_count().await.unwrap();

    let r = login(
        &server,
        &twitch_jwt(&key, &twitch_claims(Some("5551001"), "777", "viewer")),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 900);
    assert!(body["access_token"].as_str().unwrap().split('.').count() == 3);
    assert_eq!(body["user"]["roles"], json!([]));
    assert_eq!(body["user"]["guest"], false);
    assert_eq!(
        body["twitch"],
        json!({"channel_id": "777", "role": "viewer", "opaque_user_id": "U5551001"})
    );
    let user_id = body["user"]["id"].as_str().unwrap().to_string();
    assert_eq!(
        server.engine().user_count().await.unwrap(),
        users_before + 1
    );
    let stored = server
        .engine()
        .stored_user(&user_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.accounts.len(), 1);
    assert_eq!(
        (
            stored.accounts[0].provider.as_str(),
            stored.accounts[0].subject.as_str()
        ),
        ("twitch", "5551001")
    );

    // Another login of the same Twitch user, in another channel and role: same user.
    let r = login(
        &server,
        &twitch_jwt(&key, &twitch_claims(Some("5551001"), "888", "broadcaster")),
    )
    .await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["user"]["id"], user_id.as_str());
    assert_eq!(body["twitch"]["role"], "broadcaster");
    assert_eq!(
        server.engine().user_count().await.unwrap(),
        users_before + 1
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prelinked_twitch_account_is_the_user_the_extension_lands_on() {
    let key = twitch_extension_secret();
    let mut server = start(vec![secret(&key)], false).await;
    // As the OAuth contract would have made it for this Twitch account.
    let (existing, created) = server
        .engine()
        .find_or_create_by_account(&twitch_identity("424242"), false)
        .await
        .unwrap();
    assert!(created);
    server
        .engine()
        .set_roles(&existing.id, vec!["streamer".into()])
        .await
        .unwrap();
    let users = server.engine().user_count().await.unwrap();

    let r = login(
        &server,
        &twitch_jwt(&key, &twitch_claims(Some("424242"), "1", "moderator")),
    )
    .await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["user"]["id"], existing.id.as_str());
    assert_eq!(body["user"]["roles"], json!(["streamer"]));
    assert_eq!(server.engine().user_count().await.unwrap(), users);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_may_come_in_the_body_instead_of_the_header() {
    let key = twitch_extension_secret();
    let mut server = start(vec![secret(&key)], false).await;
    let token = twitch_jwt(&key, &twitch_claims(Some("31337"), "9", "viewer"));
    let r = plain_client()
        .post(server.url("/api/v1/extension/auth/login"))
        .json(&json!({"token": token}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["twitch"]["opaque_user_id"], "U31337");

    let r = plain_client()
        .post(server.url("/api/v1/extension/auth/login"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(r).await, (401, "invalid_extension_token".into()));
    let r = plain_client()
        .post(server.url("/api/v1/extension/auth/login"))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(r).await, (401, "invalid_extension_token".into()));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_malformed_and_foreign_tokens_are_invalid_and_change_nothing() {
    let key = twitch_extension_secret();
    let mut server = start(vec![secret(&key)], false).await;
    let (victim, _) = server
        .engine()
        .find_or_create_by_account(&twitch_identity("1001"), false)
        .await
        .unwrap();
    let before = storage_state(server.engine(), &victim.id).await;

    let good_claims = twitch_claims(Some("1001"), "55", "viewer");
    let good = twitch_jwt(&key, &good_claims);
    let with = |patch: Value| {
        let mut claims = good_claims.clone();
        for (k, v) in patch.as_object().unwrap() {
            if v.is_null() {
                claims.as_object_mut().unwrap().remove(k);
            } else {
                claims[k] = v.clone();
            }
        }
        twitch_jwt(&key, &claims)
    };
    let (head, payload) = {
        let mut parts = good.split('.');
        (
            parts.next().unwrap().to_string(),
            parts.next().unwrap().to_string(),
        )
    };
    let signature = good.rsplit('.').next().unwrap().to_string();
    let other_user_payload = b64url(
        twitch_claims(Some("2002"), "55", "viewer")
            .to_string()
            .as_bytes(),
    );
    let hs512 = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS512),
        &good_claims,
        &jsonwebtoken::EncodingKey::from_secret(&decoded(&key)),
    )
    .unwrap();
    let raw_secret_signed = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &good_claims,
        &jsonwebtoken::EncodingKey::from_secret(key.as_bytes()),
    )
    .unwrap();
    let huge_header = hand_signed(
        &json!({"alg": "HS256", "typ": "JWT", "pad": "x".repeat(6000)}),
        &good_claims,
        &decoded(&key),
    );

    let cases: Vec<(&str, String)> = vec![
        (
            "alg none",
            format!("{}.{payload}.", b64url(br#"{"alg":"none","typ":"JWT"}"#)),
        ),
        (
            "alg none, signature kept",
            format!("{}.{payload}.{signature}", b64url(br#"{"alg":"none"}"#)),
        ),
        ("HS512", hs512),
        (
            "RS256 header over an HMAC",
            hand_signed(
                &json!({"alg": "RS256", "typ": "JWT"}),
                &good_claims,
                &decoded(&key),
            ),
        ),
        ("signed with the raw secret", raw_secret_signed),
        (
            "signed with another secret",
            twitch_jwt(&twitch_extension_secret(), &good_claims),
        ),
        (
            "payload edited after signing",
            format!("{head}.{other_user_payload}.{signature}"),
        ),
        ("truncated", good[..good.len() - 5].to_string()),
        ("signature missing", format!("{head}.{payload}")),
        ("garbage", "not-a-jwt".into()),
        ("garbage segments", "a.b.c".into()),
        ("oversized header", huge_header),
        ("missing exp", with(json!({"exp": null}))),
        ("exp not a number", with(json!({"exp": "tomorrow"}))),
        ("missing role", with(json!({"role": null}))),
        ("unknown role", with(json!({"role": "admin"}))),
        ("missing channel_id", with(json!({"channel_id": null}))),
        (
            "channel_id not digits",
            with(json!({"channel_id": "chan-55"})),
        ),
        ("channel_id a number", with(json!({"channel_id": 55}))),
        (
            "missing opaque_user_id",
            with(json!({"opaque_user_id": null})),
        ),
        (
            "opaque_user_id without U/A",
            with(json!({"opaque_user_id": "X1001"})),
        ),
        ("user_id not digits", with(json!({"user_id": "1001; drop"}))),
        (
            "user_id with an anonymous opaque id",
            with(json!({"opaque_user_id": "A1001"})),
        ),
        (
            "expired and forged",
            twitch_jwt(
                &twitch_extension_secret(),
                &json!({"exp": unix_now() - 3600, "opaque_user_id": "U1001", "user_id": "1001", "channel_id": "55", "role": "viewer"}),
            ),
        ),
        ("a tachigo token instead of Twitch's", {
            let (token, _) = server.engine().mint_access_token(
                &victim.id,
                None,
                "extension",
                &[],
                Default::default(),
            );
            token
        }),
    ];
    for (name, token) in cases {
        let r = login(&server, &token).await;
        assert_eq!(
            error_code(r).await,
            (401, "invalid_extension_token".into()),
            "{name}"
        );
    }

    // Not a bearer scheme at all.
    let r = plain_client()
        .post(server.url("/api/v1/extension/auth/login"))
        .header("authorization", format!("Basic {good}"))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(r).await, (401, "invalid_extension_token".into()));

    assert_eq!(storage_state(server.engine(), &victim.id).await, before);
    // The genuine token still works afterwards.
    assert_eq!(login(&server, &good).await.status(), 200);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_twitch_token_is_refused_as_expired_after_the_leeway() {
    let key = twitch_extension_secret();
    let mut server = start(vec![secret(&key)], false).await;
    let users = server.engine().user_count().await.unwrap();
    let mut claims = twitch_claims(Some("600"), "60", "viewer");
    claims["exp"] = json!(unix_now() - 120);
    let r = login(&server, &twitch_jwt(&key, &claims)).await;
    assert_eq!(error_code(r).await, (401, "extension_token_expired".into()));
    assert_eq!(server.engine().user_count().await.unwrap(), users);

    // Within the documented 30 s leeway for clock skew: still accepted.
    claims["exp"] = json!(unix_now() - 5);
    assert_eq!(
        login(&server, &twitch_jwt(&key, &claims)).await.status(),
        200
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_shared_identity_the_login_is_refused_and_no_user_is_made() {
    let key = twitch_extension_secret();
    let mut server = start(vec![secret(&key)], false).await;
    let users = server.engine().user_count().await.unwrap();
    for claims in [
        twitch_claims(None, "70", "viewer"),
        // Logged in to Twitch (U…) but identity not shared: no user_id either.
        json!({"exp": unix_now() + 60, "opaque_user_id": "U8675309", "channel_id": "70", "role": "viewer"}),
    ] {
        let r = login(&server, &twitch_jwt(&key, &claims)).await;
        assert_eq!(error_code(r).await, (403, "identity_share_required".into()));
    }
    assert_eq!(server.engine().user_count().await.unwrap(), users);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_viewers_get_a_guest_token_without_a_user_record_when_allowed() {
    let key = twitch_extension_secret();
    let mut server = start(vec![secret(&key)], true).await;
    let users = server.engine().user_count().await.unwrap();
    let audit = server
        .engine()
        .recent_audit_events(10_000)
        .await
        .unwrap()
        .len();
    let claims = twitch_claims(None, "80", "viewer");
    let opaque = claims["opaque_user_id"].as_str().unwrap().to_string();

    let r = login(&server, &twitch_jwt(&key, &claims)).await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body["user"],
        json!({"id": opaque, "roles": ["guest"], "guest": true})
    );
    assert_eq!(body["twitch"]["opaque_user_id"], opaque.as_str());
    let token = body["access_token"].as_str().unwrap();
    let claims = server
        .engine()
        .verify_access_token(token, "extension")
        .unwrap();
    assert_eq!(claims.sub, opaque);
    assert_eq!(claims.sid, None);
    assert_eq!(claims.roles, vec!["guest".to_string()]);

    let r = plain_client()
        .get(server.url("/api/v1/extension/me"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let me: Value = r.json().await.unwrap();
    assert_eq!(me["user"]["guest"], true);
    assert_eq!(me["user"]["id"], opaque.as_str());
    assert_eq!(me["session"], Value::Null);
    assert_eq!(me["twitch"]["channel_id"], "80");

    assert_eq!(server.engine().user_count().await.unwrap(), users);
    assert_eq!(
        server
            .engine()
            .recent_audit_events(10_000)
            .await
            .unwrap()
            .len(),
        audit
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotated_secrets_both_verify_during_the_overlap_and_an_expired_one_stops() {
    let old = twitch_extension_secret();
    let new = twitch_extension_secret();
    let in_an_hour = ExtensionSecret {
        secret: old.clone(),
        expires_at: Some(rfc3339(unix_now() + 3600)),
        ..ExtensionSecret::default()
    };
    let mut server = start(vec![in_an_hour, secret(&new)], false).await;
    for (n, key) in [&old, &new].into_iter().enumerate() {
        let r = login(
            &server,
            &twitch_jwt(key, &twitch_claims(Some(&format!("90{n}")), "90", "viewer")),
        )
        .await;
        assert_eq!(r.status(), 200, "secret #{n} during the overlap");
    }
    server.stop().await;

    let an_hour_ago = ExtensionSecret {
        secret: old.clone(),
        expires_at: Some(rfc3339(unix_now() - 3600)),
        ..ExtensionSecret::default()
    };
    let mut server = start(vec![an_hour_ago, secret(&new)], false).await;
    let users = server.engine().user_count().await.unwrap();
    let r = login(
        &server,
        &twitch_jwt(&old, &twitch_claims(Some("900"), "90", "viewer")),
    )
    .await;
    assert_eq!(error_code(r).await, (401, "invalid_extension_token".into()));
    // Not even "expired": an expired secret proves nothing about the token.
    let mut stale = twitch_claims(Some("900"), "90", "viewer");
    stale["exp"] = json!(unix_now() - 600);
    let r = login(&server, &twitch_jwt(&old, &stale)).await;
    assert_eq!(error_code(r).await, (401, "invalid_extension_token".into()));
    assert_eq!(server.engine().user_count().await.unwrap(), users);
    let r = login(
        &server,
        &twitch_jwt(&new, &twitch_claims(Some("900"), "90", "viewer")),
    )
    .await;
    assert_eq!(r.status(), 200);
    server.stop().await;
}

/// An RFC 3339 time for a Unix time in seconds, as an operator writes `expires_at`.
fn rfc3339(unix: i64) -> String {
    tachigo_frontends::common::timestamps::rfc3339(unix * 1000)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panel_logging_in_again_reuses_its_live_session_per_channel() {
    let key = twitch_extension_secret();
    let mut server = start(vec![secret(&key)], false).await;
    let token = twitch_jwt(&key, &twitch_claims(Some("1234"), "12", "viewer"));
    let first: Value = login(&server, &token).await.json().await.unwrap();
    // The same Twitch token again (a panel reload within its exp) is accepted...
    let second: Value = login(&server, &token).await.json().await.unwrap();
    assert_eq!(first["user"]["id"], second["user"]["id"]);
    assert_ne!(first["access_token"], second["access_token"]);
    let user_id = first["user"]["id"].as_str().unwrap();
    // ...and lands on the same live session instead of piling up a new one.
    let sessions = server.engine().list_sessions(user_id).await.unwrap();
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0].surface, Surface::Extension);
    let me = |token: &Value| {
        let client = plain_client();
        let url = server.url("/api/v1/extension/me");
        let bearer = token["access_token"].as_str().unwrap().to_string();
        async move {
            client
                .get(url)
                .bearer_auth(bearer)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(me(&first).await, 200);
    assert_eq!(me(&second).await, 200);
    // The same viewer in another channel's panel is another session.
    let elsewhere = twitch_jwt(&key, &twitch_claims(Some("1234"), "99", "viewer"));
    assert_eq!(login(&server, &elsewhere).await.status(), 200);
    assert_eq!(
        server.engine().list_sessions(user_id).await.unwrap().len(),
        2
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_request_bodies_and_methods_get_json_errors_and_change_nothing() {
    let key = twitch_extension_secret();
    let mut server = start(vec![secret(&key)], false).await;
    let url = server.url("/api/v1/extension/auth/login");
    let users = server.engine().user_count().await.unwrap();
    let client = plain_client();

    let r = client
        .post(&url)
        .header("content-type", "application/json")
        .body("{\"token\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(r).await, (400, "invalid_body".into()));
    let r = client
        .post(&url)
        .json(&json!({"token": 42}))
        .send()
        .await
        .unwrap();
    let (status, code) = error_code(r).await;
    assert_eq!((status, code.as_str()), (400, "invalid_body"));
    let r = client
        .post(&url)
        .header("content-type", "application/json")
        .body(format!("{{\"token\":\"{}\"}}", "a".repeat(20_000)))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(r).await, (413, "body_too_large".into()));
    let r = client
        .post(&url)
        .header("content-type", "text/plain")
        .body("token")
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(r).await, (415, "unsupported_media_type".into()));
    let r = client.get(&url).send().await.unwrap();
    assert_eq!(error_code(r).await, (405, "method_not_allowed".into()));
    let r = client
        .get(server.url("/api/v1/extension/nowhere"))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(r).await, (404, "not_found".into()));

    assert_eq!(server.engine().user_count().await.unwrap(), users);
    server.stop().await;
}
