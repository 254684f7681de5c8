//! The provider's tokens kept with linked accounts, over real HTTP with the
//! local OpenID provider: `get-access-token` hands back the provider's token
//! and refreshes it at the provider once it has expired (once, however many
//! callers ask at the same moment), `refresh-token` refreshes now,
//! `account-info` asks the provider's userinfo. A refused refresh is a clear
//! error and the account stays linked. Tokens are sealed at rest: no file of
//! the data directory (sled) and no row (PostgreSQL) holds one in clear.
//! Without a key nothing is kept; an old key still opens what it sealed after
//! a rotation, and bad key files stop the server from starting.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use support::oidc_provider::{OidcProvider, TestUser};
use support::{
    add_oidc_provider, better_auth_code, browser, get_session, oauth_sign_in, plain_client,
    start_with_provider, test_store_is_postgres, through_provider, TestServer, FRONTEND,
};
use tachigo_engine::config::token_keys::TokenKey;
use tachigo_engine::config::Config;
use tempfile::TempDir;

// ----- keys -----

/// A fresh random key written (base64) to a file only its owner reads.
fn key_file(dir: &Path, name: &str) -> (PathBuf, TokenKey) {
    let key: [u8; 32] = rand::random();
    let path = dir.join(name);
    use base64::Engine as _;
    std::fs::write(
        &path,
        format!(
            "{}\n",
            base64::engine::general_purpose::STANDARD.encode(key)
        ),
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    (path, TokenKey(key))
}

fn with_key(config: &mut Config, key: &Path) {
    config.oauth.token_encryption_key_file = Some(key.to_path_buf());
}

fn key_id(key: &TokenKey) -> [u8; 8] {
    tachigo_engine::token_cipher::key_id(key)
}

// ----- the provider and the server -----

/// A provider that issues refresh tokens, and a server that keeps tokens
/// sealed with a key from `keys` (a directory outside the data directory).
async fn start(keys: &TempDir) -> (OidcProvider, TestServer, TokenKey) {
    let provider = OidcProvider::start().await;
    provider.set_issue_refresh_tokens(true);
    let (path, key) = key_file(keys.path(), "token.key");
    let server = start_with_provider(&provider, |config| with_key(config, &path)).await;
    (provider, server, key)
}

/// Signs `b` in as `sub` through the provider; returns the user id.
async fn sign_in(
    server: &TestServer,
    provider: &OidcProvider,
    b: &reqwest::Client,
    sub: &str,
) -> String {
    provider.set_user(TestUser::verified(sub));
    let callback = oauth_sign_in(server, b, "local", json!({})).await;
    assert_eq!(callback.status(), 302);
    get_session(server, b).await["user"]["id"]
        .as_str()
        .expect("signed in")
        .to_string()
}

async fn post(
    server: &TestServer,
    b: &reqwest::Client,
    path: &str,
    body: Value,
) -> reqwest::Response {
    b.post(server.url(path))
        .header("origin", FRONTEND)
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// `get-access-token` that must succeed: its JSON.
async fn access_token(server: &TestServer, b: &reqwest::Client, body: Value) -> Value {
    let response = post(server, b, "/api/auth/get-access-token", body).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers().get("cache-control").unwrap(), "no-store");
    response.json().await.unwrap()
}

/// The `(status, code)` of a Better Auth error answer.
async fn refusal(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    (status, better_auth_code(response).await)
}

/// Unix milliseconds of an ISO 8601 UTC time as the server writes them
/// (`2026-01-01T00:00:00.000Z`).
fn millis(iso: &Value) -> i64 {
    let text = iso.as_str().expect("an ISO time");
    let (date, rest) = text.split_once('T').unwrap();
    let mut d = date.split('-').map(|p| p.parse::<i64>().unwrap());
    let (y, m, day) = (d.next().unwrap(), d.next().unwrap(), d.next().unwrap());
    let rest = rest.trim_end_matches('Z');
    let (hms, ms) = rest.split_once('.').unwrap_or((rest, "0"));
    let mut t = hms.split(':').map(|p| p.parse::<i64>().unwrap());
    let (h, mi, s) = (t.next().unwrap(), t.next().unwrap(), t.next().unwrap());
    // Days from civil (Howard Hinnant's algorithm).
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    (days * 86_400 + h * 3600 + mi * 60 + s) * 1000 + ms.parse::<i64>().unwrap()
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

// ----- what storage holds -----

/// Every byte of every file under `dir`.
fn files_under(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(bytes) = std::fs::read(&path) {
                found.push((path, bytes));
            }
        }
    }
    found
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The `record` bytes of every `provider_tokens` row (PostgreSQL runs only).
async fn postgres_token_rows(server: &TestServer) -> Vec<Vec<u8>> {
    let url = server.config.storage.postgres.url.clone().unwrap();
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    let driver = tokio::spawn(connection);
    let rows = client
        .query("SELECT record FROM provider_tokens", &[])
        .await
        .unwrap()
        .iter()
        .map(|row| row.get::<_, Vec<u8>>(0))
        .collect();
    drop(client);
    let _ = driver.await;
    rows
}

/// Asserts no issued token is held in clear by the store, and that the
/// search does see what the store holds (`visible`, e.g. the user's email,
/// is found on sled; PostgreSQL holds `rows` sealed rows).
async fn assert_no_token_in_clear(
    server: &TestServer,
    tokens: &[String],
    visible: &str,
    rows: usize,
) {
    assert!(!tokens.is_empty());
    if test_store_is_postgres() {
        let records = postgres_token_rows(server).await;
        assert_eq!(records.len(), rows);
        for record in &records {
            for token in tokens {
                assert!(
                    !contains(record, token.as_bytes()),
                    "a token in clear in PostgreSQL"
                );
            }
        }
    } else {
        let files = files_under(server.dir.path());
        assert!(
            files
                .iter()
                .any(|(_, bytes)| contains(bytes, visible.as_bytes())),
            "the search sees the store's records"
        );
        for (path, bytes) in &files {
            for token in tokens {
                assert!(
                    !contains(bytes, token.as_bytes()),
                    "{} holds a provider token in clear",
                    path.display()
                );
            }
        }
    }
}

/// Whether the store holds a ciphertext sealed by `key` (its id).
async fn sealed_by(server: &TestServer, key: &TokenKey) -> bool {
    let id = key_id(key);
    if test_store_is_postgres() {
        postgres_token_rows(server)
            .await
            .iter()
            .any(|record| contains(record, &id))
    } else {
        files_under(server.dir.path())
            .iter()
            .any(|(_, bytes)| contains(bytes, &id))
    }
}

// ----- tests -----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_providers_token_is_kept_sealed_and_refreshed_once_when_expired() {
    let keys = TempDir::new().unwrap();
    let (provider, server, _) = start(&keys).await;
    let b = browser();
    sign_in(&server, &provider, &b, "alice").await;
    let issued = provider.issued_tokens();
    assert_eq!(issued.len(), 2, "an access and a refresh token");

    // The provider's own token, however the account is named.
    for selection in [
        json!({"providerId": "local"}),
        json!({"accountId": "local:alice"}),
        json!({"providerId": "local", "accountId": "alice"}),
    ] {
        let got = access_token(&server, &b, selection).await;
        assert_eq!(got["accessToken"], issued[0].as_str());
        assert_eq!(got["scopes"], json!(["openid", "email", "profile"]));
        assert!(got["idToken"]
            .as_str()
            .is_some_and(|t| t.split('.').count() == 3));
        let expires = millis(&got["accessTokenExpiresAt"]);
        assert!((expires - (now_ms() + 3_600_000)).abs() < 60_000, "{got}");
    }
    assert_eq!(
        provider.refresh_grants(),
        0,
        "a live token is not refreshed"
    );

    // A new sign-in brings tokens that expire at once: the next call refreshes.
    provider.set_access_token_lifetime(1);
    sign_in(&server, &provider, &b, "alice").await;
    provider.set_access_token_lifetime(3600);
    let before = provider.issued_tokens().len();
    let calls = (0..5).map(|_| access_token(&server, &b, json!({"providerId": "local"})));
    let answers = futures::future::join_all(calls).await;
    assert_eq!(
        provider.refresh_grants(),
        1,
        "concurrent callers refresh once"
    );
    let issued = provider.issued_tokens();
    assert_eq!(issued.len(), before + 2, "a new access and refresh token");
    let fresh = &issued[issued.len() - 2];
    for answer in &answers {
        assert_eq!(answer["accessToken"], fresh.as_str());
        assert!(millis(&answer["accessTokenExpiresAt"]) > now_ms() + 3_000_000);
        // The sign-in's id_token is kept: the refresh brought none.
        assert!(answer["idToken"].is_string());
    }
    // The new pair is what is kept: no further refresh, and the rotated
    // refresh token is the one the next refresh spends.
    let again = access_token(&server, &b, json!({"providerId": "local"})).await;
    assert_eq!(again["accessToken"], fresh.as_str());
    assert_eq!(provider.refresh_grants(), 1);
    let refreshed = post(
        &server,
        &b,
        "/api/auth/refresh-token",
        json!({"providerId": "local"}),
    )
    .await;
    assert_eq!(
        refreshed.status(),
        200,
        "the kept refresh token is the rotated one"
    );
    assert_eq!(provider.refresh_grants(), 2);

    let mut server = server;
    server.stop().await;
    assert_no_token_in_clear(&server, &provider.issued_tokens(), "alice@example.com", 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_refused_with_status_200_is_a_refusal_not_an_outage() {
    let keys = TempDir::new().unwrap();
    let (provider, server, _) = start(&keys).await;
    provider.set_access_token_lifetime(1);
    let b = browser();
    sign_in(&server, &provider, &b, "carol").await;
    provider.set_refuse_refresh_with_200(true);
    let response = post(
        &server,
        &b,
        "/api/auth/refresh-token",
        json!({"providerId": "local"}),
    )
    .await;
    assert_eq!(response.status(), 400, "not 502: the provider answered");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], "FAILED_TO_REFRESH_ACCESS_TOKEN");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("bad_refresh_token"),
        "{body}"
    );
    assert_eq!(provider.refresh_grants(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_refresh_is_a_clear_error_and_the_account_stays_linked() {
    let keys = TempDir::new().unwrap();
    let (provider, server, _) = start(&keys).await;
    provider.set_access_token_lifetime(1);
    let b = browser();
    let user_id = sign_in(&server, &provider, &b, "bob").await;
    let kept = provider.issued_tokens();
    provider.set_refuse_refresh(true);

    let (status, code) = refusal(
        post(
            &server,
            &b,
            "/api/auth/get-access-token",
            json!({"providerId": "local"}),
        )
        .await,
    )
    .await;
    assert_eq!((status, code.as_str()), (400, "FAILED_TO_GET_ACCESS_TOKEN"));
    let response = post(
        &server,
        &b,
        "/api/auth/refresh-token",
        json!({"providerId": "local"}),
    )
    .await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], "FAILED_TO_REFRESH_ACCESS_TOKEN");
    assert!(
        body["message"].as_str().unwrap().contains("invalid_grant"),
        "{body}"
    );
    let response = b
        .get(server.url("/api/auth/account-info?accountId=local:bob"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        refusal(response).await,
        (400, "FAILED_TO_GET_ACCESS_TOKEN".to_string())
    );
    assert_eq!(provider.refresh_grants(), 3);

    // Still linked, still signed in, tokens as they were.
    assert_eq!(
        get_session(&server, &b).await["user"]["id"],
        user_id.as_str()
    );
    let accounts: Value = b
        .get(server.url("/api/auth/list-accounts"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(accounts[0]["accountId"], "bob");
    assert_eq!(
        server
            .engine()
            .user_id_by_account("local", "bob")
            .await
            .unwrap()
            .as_deref(),
        Some(user_id.as_str())
    );
    assert_eq!(provider.issued_tokens(), kept);

    // Once the provider agrees again, the kept refresh token still works.
    provider.set_refuse_refresh(false);
    provider.set_access_token_lifetime(3600);
    let got = access_token(&server, &b, json!({"providerId": "local"})).await;
    assert_eq!(got["accessToken"], provider.issued_tokens()[2].as_str());
    assert_eq!(provider.refresh_grants(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_token_and_account_info_answer_as_better_auth_does() {
    let keys = TempDir::new().unwrap();
    let (provider, server, _) = start(&keys).await;
    let b = browser();
    sign_in(&server, &provider, &b, "carol").await;
    let first = provider.issued_tokens();

    let response = post(
        &server,
        &b,
        "/api/auth/refresh-token",
        json!({"accountId": "local:carol"}),
    )
    .await;
    assert_eq!(response.status(), 200);
    let refreshed: Value = response.json().await.unwrap();
    let issued = provider.issued_tokens();
    assert_eq!(issued.len(), 4);
    assert_eq!(refreshed["accessToken"], issued[2].as_str());
    assert_eq!(refreshed["refreshToken"], issued[3].as_str());
    assert_ne!(refreshed["accessToken"], first[0].as_str());
    assert_eq!(refreshed["scope"], "openid,email,profile");
    assert_eq!(refreshed["providerId"], "local");
    assert_eq!(refreshed["accountId"], "local:carol");
    assert!(refreshed["idToken"].is_string());
    assert!(refreshed["refreshTokenExpiresAt"].is_null());
    assert!(millis(&refreshed["accessTokenExpiresAt"]) > now_ms());
    // get-access-token now hands out the new one.
    let got = access_token(&server, &b, json!({"providerId": "local"})).await;
    assert_eq!(got["accessToken"], issued[2].as_str());

    let userinfo_before = provider.userinfo_requests();
    let response = b
        .get(server.url("/api/auth/account-info?accountId=local:carol"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let info: Value = response.json().await.unwrap();
    assert_eq!(provider.userinfo_requests(), userinfo_before + 1);
    assert_eq!(
        info["user"],
        json!({
            "id": "carol",
            "name": "User carol",
            "email": "carol@example.com",
            "image": "https://cdn.example.com/carol.png",
            "emailVerified": true,
        })
    );
    assert_eq!(info["data"]["sub"], "carol");
    assert_eq!(info["data"]["email_verified"], true);
    assert_eq!(
        info["account"],
        json!({"id": "local:carol", "providerId": "local", "accountId": "carol"})
    );
    let by_provider = b
        .get(server.url("/api/auth/account-info?providerId=local"))
        .send()
        .await
        .unwrap();
    assert_eq!(by_provider.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_callers_accounts_and_only_well_formed_requests() {
    let keys = TempDir::new().unwrap();
    let (provider, server, _) = start(&keys).await;
    let dave = browser();
    sign_in(&server, &provider, &dave, "dave").await;
    let erin = browser();
    let erin_id = sign_in(&server, &provider, &erin, "erin").await;
    let daves_token = provider.issued_tokens()[0].clone();

    // Someone else's account, an unknown provider, someone else's user id.
    for body in [
        json!({"accountId": "local:erin"}),
        json!({"accountId": "erin"}),
        json!({"providerId": "local", "accountId": "erin"}),
        json!({"providerId": "nope"}),
        json!({"providerId": "local", "userId": erin_id}),
    ] {
        for path in ["/api/auth/get-access-token", "/api/auth/refresh-token"] {
            let answer = refusal(post(&server, &dave, path, body.clone()).await).await;
            assert_eq!(
                answer,
                (400, "ACCOUNT_NOT_FOUND".to_string()),
                "{path} {body}"
            );
        }
    }
    for query in [
        "accountId=local:erin",
        "providerId=nope",
        "providerId=local&userId=x",
    ] {
        let response = dave
            .get(server.url(&format!("/api/auth/account-info?{query}")))
            .send()
            .await
            .unwrap();
        assert_eq!(
            refusal(response).await,
            (400, "ACCOUNT_NOT_FOUND".to_string()),
            "{query}"
        );
    }

    // No session, a forged one, one that ended (replayed after sign-out).
    let anonymous = plain_client()
        .post(server.url("/api/auth/get-access-token"))
        .header("origin", FRONTEND)
        .json(&json!({"providerId": "local"}))
        .send()
        .await
        .unwrap();
    assert_eq!(refusal(anonymous).await, (401, "UNAUTHORIZED".to_string()));
    let forged = plain_client()
        .get(server.url("/api/auth/account-info?providerId=local"))
        .header("cookie", "tachigo.session_token=forged.not-a-session")
        .send()
        .await
        .unwrap();
    assert_eq!(refusal(forged).await, (401, "UNAUTHORIZED".to_string()));
    let quitter = browser();
    sign_in(&server, &provider, &quitter, "frank").await;
    let signed_out = post(&server, &quitter, "/api/auth/sign-out", json!({})).await;
    assert_eq!(signed_out.status(), 200);
    let after = refusal(
        post(
            &server,
            &quitter,
            "/api/auth/get-access-token",
            json!({"providerId": "local"}),
        )
        .await,
    )
    .await;
    assert_eq!(after, (401, "UNAUTHORIZED".to_string()));

    // The CSRF origin check of cookie-authenticated changes.
    let foreign = dave
        .post(server.url("/api/auth/get-access-token"))
        .header("origin", "https://evil.example")
        .json(&json!({"providerId": "local"}))
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status(), 403);

    // Malformed, wrongly shaped, oversized.
    let not_json = dave
        .post(server.url("/api/auth/get-access-token"))
        .header("origin", FRONTEND)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(not_json.status(), 400);
    for body in [
        json!({}),
        json!({"providerId": 5}),
        json!({"accountId": ["local:dave"]}),
        json!({"providerId": ""}),
        json!({"providerId": "x".repeat(600)}),
        json!(["local"]),
    ] {
        let answer =
            refusal(post(&server, &dave, "/api/auth/get-access-token", body.clone()).await).await;
        assert_eq!(answer, (400, "VALIDATION_ERROR".to_string()), "{body}");
    }
    let oversized = post(
        &server,
        &dave,
        "/api/auth/refresh-token",
        json!({"providerId": "local", "padding": "x".repeat(64 * 1024)}),
    )
    .await;
    assert_eq!(oversized.status(), 413);
    for query in ["", "?", "?accountId=", "?providerId=local&providerId=local"] {
        let response = dave
            .get(server.url(&format!("/api/auth/account-info{query}")))
            .send()
            .await
            .unwrap();
        assert_eq!(
            refusal(response).await,
            (400, "VALIDATION_ERROR".to_string()),
            "{query}"
        );
    }

    // None of it changed anything.
    assert_eq!(provider.refresh_grants(), 0);
    let got = access_token(&server, &dave, json!({"providerId": "local"})).await;
    assert_eq!(got["accessToken"], daves_token.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_key_nothing_is_kept_and_the_endpoints_say_so() {
    let provider = OidcProvider::start().await;
    provider.set_issue_refresh_tokens(true);
    let mut server = start_with_provider(&provider, |_| {}).await;
    let b = browser();
    sign_in(&server, &provider, &b, "grace").await;
    let not_kept = (501, "PROVIDER_TOKENS_NOT_KEPT".to_string());
    for path in ["/api/auth/get-access-token", "/api/auth/refresh-token"] {
        let answer = refusal(post(&server, &b, path, json!({"providerId": "local"})).await).await;
        assert_eq!(answer, not_kept, "{path}");
    }
    let response = b
        .get(server.url("/api/auth/account-info?providerId=local"))
        .send()
        .await
        .unwrap();
    assert_eq!(refusal(response).await, not_kept);
    // The session still works; nothing of the provider's was kept.
    assert!(get_session(&server, &b).await["user"].is_object());
    server.stop().await;
    assert_no_token_in_clear(&server, &provider.issued_tokens(), "grace@example.com", 0).await;

    // With a key configured later, the account has nothing kept yet.
    let keys = TempDir::new().unwrap();
    let (path, _) = key_file(keys.path(), "later.key");
    with_key(&mut server.config, &path);
    server.restart().await;
    let answer = refusal(
        post(
            &server,
            &b,
            "/api/auth/get-access-token",
            json!({"providerId": "local"}),
        )
        .await,
    )
    .await;
    assert_eq!(answer, (400, "ACCESS_TOKEN_NOT_FOUND".to_string()));
    assert_eq!(provider.refresh_grants(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_key_rotation_the_old_key_still_opens_and_writes_use_the_new_one() {
    let keys = TempDir::new().unwrap();
    let (provider, mut server, old_key) = start(&keys).await;
    let b = browser();
    sign_in(&server, &provider, &b, "heidi").await;
    let first = provider.issued_tokens();
    assert!(sealed_by(&server, &old_key).await);

    // Rotate: a new current key, the old one kept for opening.
    let (new_path, new_key) = key_file(keys.path(), "new.key");
    server.stop().await;
    let old_path = server
        .config
        .oauth
        .token_encryption_key_file
        .clone()
        .unwrap();
    with_key(&mut server.config, &new_path);
    server.config.oauth.token_encryption_old_key_files = vec![old_path];
    server.restart().await;
    let got = access_token(&server, &b, json!({"providerId": "local"})).await;
    assert_eq!(
        got["accessToken"],
        first[0].as_str(),
        "the old key still opens"
    );
    assert!(
        !sealed_by(&server, &new_key).await,
        "reading does not re-seal"
    );

    // The next write seals with the new key.
    let refreshed = post(
        &server,
        &b,
        "/api/auth/refresh-token",
        json!({"providerId": "local"}),
    )
    .await;
    assert_eq!(refreshed.status(), 200);
    assert!(sealed_by(&server, &new_key).await);
    if test_store_is_postgres() {
        assert!(
            !sealed_by(&server, &old_key).await,
            "nothing is left under the old key"
        );
    }

    // The old key can go now.
    server.stop().await;
    server.config.oauth.token_encryption_old_key_files.clear();
    server.restart().await;
    let got = access_token(&server, &b, json!({"providerId": "local"})).await;
    assert_eq!(got["accessToken"], provider.issued_tokens()[2].as_str());

    // A key that never sealed them opens nothing: a clear answer, nothing breaks.
    let (other_path, _) = key_file(keys.path(), "unrelated.key");
    server.stop().await;
    with_key(&mut server.config, &other_path);
    server.restart().await;
    let answer = refusal(
        post(
            &server,
            &b,
            "/api/auth/get-access-token",
            json!({"providerId": "local"}),
        )
        .await,
    )
    .await;
    assert_eq!(answer, (400, "ACCESS_TOKEN_NOT_FOUND".to_string()));
    assert!(get_session(&server, &b).await["user"].is_object());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unlinking_an_account_removes_its_tokens() {
    let keys = TempDir::new().unwrap();
    let provider = OidcProvider::start().await;
    provider.set_issue_refresh_tokens(true);
    let (path, _) = key_file(keys.path(), "token.key");
    let server = start_with_provider(&provider, |config| {
        with_key(config, &path);
        add_oidc_provider(config, "other", &provider);
    })
    .await;
    let b = browser();
    sign_in(&server, &provider, &b, "ivan").await;
    // A second account, linked with its own tokens.
    provider.set_user(TestUser::verified("ivan-other"));
    let started = post(
        &server,
        &b,
        "/api/auth/link-social",
        json!({"provider": "other"}),
    )
    .await;
    let started: Value = started.json().await.unwrap();
    let linked = through_provider(&b, started["url"].as_str().unwrap()).await;
    assert_eq!(linked.status(), 302);
    let other = access_token(&server, &b, json!({"providerId": "other"})).await;
    assert_eq!(other["accessToken"], provider.issued_tokens()[2].as_str());
    if test_store_is_postgres() {
        assert_eq!(postgres_token_rows(&server).await.len(), 2);
    }

    let unlinked = post(
        &server,
        &b,
        "/api/auth/unlink-account",
        json!({"providerId": "local"}),
    )
    .await;
    assert_eq!(unlinked.status(), 200);
    let answer = refusal(
        post(
            &server,
            &b,
            "/api/auth/get-access-token",
            json!({"providerId": "local"}),
        )
        .await,
    )
    .await;
    assert_eq!(answer, (400, "ACCOUNT_NOT_FOUND".to_string()));
    if test_store_is_postgres() {
        assert_eq!(postgres_token_rows(&server).await.len(), 1);
    }
    // Linked again, it starts from the tokens of that sign-in, not the old ones.
    let started = post(
        &server,
        &b,
        "/api/auth/link-social",
        json!({"provider": "local"}),
    )
    .await;
    let started: Value = started.json().await.unwrap();
    provider.set_user(TestUser::verified("ivan"));
    let relinked = through_provider(&b, started["url"].as_str().unwrap()).await;
    assert_eq!(relinked.status(), 302);
    let again = access_token(&server, &b, json!({"providerId": "local"})).await;
    assert_eq!(again["accessToken"], provider.issued_tokens()[4].as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_key_files_stop_the_server_from_starting() {
    let keys = TempDir::new().unwrap();
    let (good, _) = key_file(keys.path(), "good.key");
    let world_readable = keys.path().join("open.key");
    std::fs::copy(&good, &world_readable).unwrap();
    std::fs::set_permissions(&world_readable, std::fs::Permissions::from_mode(0o644)).unwrap();
    let world_writable = keys.path().join("writable.key");
    std::fs::copy(&good, &world_writable).unwrap();
    std::fs::set_permissions(&world_writable, std::fs::Permissions::from_mode(0o602)).unwrap();
    let short = keys.path().join("short.key");
    std::fs::write(&short, "c2hvcnQta2V5Cg==\n").unwrap();
    std::fs::set_permissions(&short, std::fs::Permissions::from_mode(0o600)).unwrap();
    let garbage = keys.path().join("garbage.key");
    std::fs::write(&garbage, "this is not a key, not hex, not base64!!\n").unwrap();
    std::fs::set_permissions(&garbage, std::fs::Permissions::from_mode(0o600)).unwrap();
    let missing = keys.path().join("missing.key");

    for (current, old) in [
        (world_readable.clone(), None),
        (world_writable.clone(), None),
        (short.clone(), None),
        (garbage.clone(), None),
        (missing.clone(), None),
        (good.clone(), Some(short.clone())),
    ] {
        let dir = TempDir::new().unwrap();
        let mut config = support::test_config(&dir, support::free_port());
        support::use_test_store(&mut config).await;
        config.oauth.token_encryption_key_file = Some(current.clone());
        config.oauth.token_encryption_old_key_files = old.iter().cloned().collect();
        let started = tachigo_auth::server::start(config).await;
        assert!(
            started.is_err(),
            "{} / {old:?} must be refused",
            current.display()
        );

        // The configuration loader names the setting.
        let mut env = vec![(
            "TACHIGO__OAUTH__TOKEN_ENCRYPTION_KEY_FILE".to_string(),
            current.display().to_string(),
        )];
        if let Some(old) = &old {
            env.push((
                "TACHIGO__OAUTH__TOKEN_ENCRYPTION_OLD_KEY_FILES".to_string(),
                format!("[\"{}\"]", old.display()),
            ));
        }
        let refused = tachigo_engine::config::load(None, env)
            .unwrap_err()
            .to_string();
        assert!(refused.contains("oauth.token_encryption_"), "{refused}");
    }
    let loaded = tachigo_engine::config::load(
        None,
        vec![(
            "TACHIGO__OAUTH__TOKEN_ENCRYPTION_KEY_FILE".to_string(),
            good.display().to_string(),
        )],
    )
    .unwrap();
    assert_eq!(
        loaded.oauth.token_encryption_key_file.as_deref(),
        Some(good.as_path())
    );
}
