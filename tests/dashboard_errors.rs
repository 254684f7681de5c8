//! Every error of the dashboard contract answers with its status and code, and
//! a rejected request — malformed, oversized, wrong-typed or wrong-content-type
//! bodies; forged, expired, truncated or foreign tokens — changes nothing in
//! storage.

mod support;

use serde_json::{json, Value};
use support::*;
use tachigo_engine::access_token::AccessClaims;
use tachigo_engine::{RefreshFamily, Session};

/// What storage holds for one user and one session.
#[derive(Debug, PartialEq)]
struct Snapshot {
    users: u64,
    sessions: Vec<Session>,
    family: Option<RefreshFamily>,
    audit_events: usize,
}

async fn snapshot(server: &TestServer, user_id: &str, session_id: &str) -> Snapshot {
    let engine = server.engine();
    Snapshot {
        users: engine.user_count().await.unwrap(),
        sessions: engine.stored_sessions(user_id).await.unwrap(),
        family: engine.stored_refresh_family(session_id).await.unwrap(),
        audit_events: engine.recent_audit_events(10_000).await.unwrap().len(),
    }
}

/// Logs in; returns (user id, session id, refresh token, access token).
async fn logged_in(server: &TestServer, email: &str) -> (String, String, String, String) {
    let user_id = create_dashboard_user(server, email).await;
    let r = dashboard_login(server, &plain_client(), email).await;
    assert_eq!(r.status(), 200);
    let refresh = refresh_cookie_value(&r);
    let body: Value = r.json().await.unwrap();
    let session_id = refresh.split('.').next().unwrap().to_string();
    (
        user_id,
        session_id,
        refresh,
        body["access_token"].as_str().unwrap().to_string(),
    )
}

/// Signs `claims` with the server's own key (what only the server can do).
fn signed(server: &TestServer, claims: &AccessClaims) -> String {
    server.engine().keys().sign(claims)
}

fn claims_of(server: &TestServer, access: &str) -> AccessClaims {
    server
        .engine()
        .verify_access_token(access, "dashboard")
        .unwrap()
}

async fn expect(r: reqwest::Response, status: u16, code: &str) {
    assert_eq!(r.status(), status, "expected {code}");
    assert_eq!(r.headers()["content-type"], "application/json");
    assert_eq!(r.headers()["cache-control"], "no-store");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(!body["error"]["message"].as_str().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_error_in_the_contract_table_answers_with_its_code() {
    let mut server = TestServer::start().await;
    let (user_id, session_id, refresh, access) = logged_in(&server, "codes@example.com").await;
    let c = plain_client();
    let url = |p: &str| server.url(&format!("/api/v1/auth/{p}"));

    // register
    let r = c
        .post(url("register"))
        .json(&json!({"email": "x@example.com", "password": DASHBOARD_PASSWORD}))
        .send()
        .await
        .unwrap();
    expect(r, 403, "signup_disabled").await;
    // login: unknown email and wrong password are indistinguishable
    let unknown = c
        .post(url("login"))
        .json(&json!({"email": "nobody@example.com", "password": DASHBOARD_PASSWORD}))
        .send()
        .await
        .unwrap();
    let wrong = c
        .post(url("login"))
        .json(&json!({"email": "codes@example.com", "password": "not the password"}))
        .send()
        .await
        .unwrap();
    let malformed = c
        .post(url("login"))
        .json(&json!({"email": "not an email", "password": "x"}))
        .send()
        .await
        .unwrap();
    let mut bodies = Vec::new();
    for r in [unknown, wrong, malformed] {
        assert_eq!(r.status(), 401);
        assert!(set_cookies(&r, "tachigo_refresh").is_empty());
        bodies.push(r.text().await.unwrap());
    }
    assert_eq!(bodies[0], bodies[1]);
    assert_eq!(bodies[0], bodies[2]);
    let body: Value = serde_json::from_str(&bodies[0]).unwrap();
    assert_eq!(body["error"]["code"], "invalid_credentials");
    // refresh
    expect(
        c.post(url("refresh"))
            .header("origin", DASHBOARD_ORIGIN)
            .send()
            .await
            .unwrap(),
        401,
        "no_refresh_token",
    )
    .await;
    expect(
        dashboard_refresh_with(&server, "not-a-token").await,
        401,
        "invalid_refresh_token",
    )
    .await;
    let r = c
        .post(url("refresh"))
        .header("cookie", format!("tachigo_refresh={refresh}"))
        .send()
        .await
        .unwrap();
    expect(r, 403, "untrusted_origin").await;
    // bearer routes
    for (method, path) in [
        ("GET", "me"),
        ("GET", "sessions"),
        ("POST", "sessions/revoke-others"),
        ("DELETE", &format!("sessions/{session_id}")),
    ] {
        let method: reqwest::Method = method.parse().unwrap();
        let r = c.request(method.clone(), url(path)).send().await.unwrap();
        assert_eq!(
            r.headers()["www-authenticate"],
            "Bearer error=\"invalid_token\""
        );
        expect(r, 401, "invalid_access_token").await;
        let r = c
            .request(method, url(path))
            .header("authorization", "Basic dXNlcjpwYXNz")
            .send()
            .await
            .unwrap();
        expect(r, 401, "invalid_access_token").await;
    }
    let r = c
        .delete(url("sessions/00000000-0000-4000-8000-000000000000"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    expect(r, 404, "session_not_found").await;
    let r = c
        .delete(url("sessions/revoke-others"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    expect(r, 404, "session_not_found").await;
    // shared rules
    expect(
        c.get(url("nowhere")).send().await.unwrap(),
        404,
        "not_found",
    )
    .await;
    expect(
        c.get(url("login")).send().await.unwrap(),
        405,
        "method_not_allowed",
    )
    .await;
    expect(
        c.post(url("me")).send().await.unwrap(),
        405,
        "method_not_allowed",
    )
    .await;
    let r = c
        .post(url("login"))
        .header("content-type", "application/json")
        .body("{\"email\":")
        .send()
        .await
        .unwrap();
    expect(r, 400, "invalid_body").await;
    let r = c
        .post(url("login"))
        .header("content-type", "text/plain")
        .body("email=a")
        .send()
        .await
        .unwrap();
    expect(r, 415, "unsupported_media_type").await;
    let r = c
        .post(url("login"))
        .header("content-type", "application/json")
        .body(vec![b' '; 17 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["connection"], "close");
    expect(r, 413, "body_too_large").await;
    // session_revoked: a genuine token whose session has ended
    let r = c
        .post(url("logout"))
        .header("origin", DASHBOARD_ORIGIN)
        .header("cookie", format!("tachigo_refresh={refresh}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    expect(
        c.get(url("me")).bearer_auth(&access).send().await.unwrap(),
        401,
        "session_revoked",
    )
    .await;
    expect(
        c.get(url("sessions"))
            .bearer_auth(&access)
            .send()
            .await
            .unwrap(),
        401,
        "session_revoked",
    )
    .await;
    assert!(server
        .engine()
        .stored_sessions(&user_id)
        .await
        .unwrap()
        .is_empty());
    drop(c);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_oversized_and_mistyped_bodies_change_nothing() {
    let mut server = TestServer::start_with(|c| c.dashboard.allow_signup = true).await;
    let (user_id, session_id, refresh, _) = logged_in(&server, "bodies@example.com").await;
    let before = snapshot(&server, &user_id, &session_id).await;
    let c = plain_client();
    let cookie = format!("tachigo_refresh={refresh}");
    let huge = json!({"email": "big@example.com", "password": "p".repeat(20 * 1024)}).to_string();

    for path in ["register", "login", "refresh", "logout"] {
        let url = server.url(&format!("/api/v1/auth/{path}"));
        let post = || {
            c.post(&url)
                .header("origin", DASHBOARD_ORIGIN)
                .header("cookie", &cookie)
        };
        let cases: Vec<(reqwest::RequestBuilder, u16, &str)> = vec![
            (
                post()
                    .header("content-type", "application/json")
                    .body("{not json"),
                400,
                "invalid_body",
            ),
            (
                post()
                    .header("content-type", "application/json")
                    .body("[1,2]"),
                400,
                "invalid_body",
            ),
            (
                post().json(&json!({"email": 5, "password": true, "refresh_token": 7})),
                400,
                "invalid_body",
            ),
            (
                post()
                    .header("content-type", "text/plain")
                    .body("{\"refresh_token\":\"x\"}"),
                415,
                "unsupported_media_type",
            ),
            (
                post()
                    .header("content-type", "application/json")
                    .body(huge.clone()),
                413,
                "body_too_large",
            ),
        ];
        for (request, status, code) in cases {
            let r = request.send().await.unwrap();
            assert_eq!(r.status(), status, "{path} {code}");
            assert!(
                set_cookies(&r, "tachigo_refresh").is_empty(),
                "{path} {code}: the cookie is kept"
            );
            let body: Value = r.json().await.unwrap();
            assert_eq!(body["error"]["code"], code, "{path}: {body}");
        }
    }
    // A mistyped field is named.
    let r = c
        .post(server.url("/api/v1/auth/login"))
        .json(&json!({"email": 5, "password": "x"}))
        .send()
        .await
        .unwrap();
    let body: Value = r.json().await.unwrap();
    assert!(
        body["error"]["message"].as_str().unwrap().contains("email"),
        "{body}"
    );
    let r = c
        .post(server.url("/api/v1/auth/login"))
        .json(&json!({"email": "a@b.example"}))
        .send()
        .await
        .unwrap();
    let body: Value = r.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("password"),
        "{body}"
    );

    assert_eq!(snapshot(&server, &user_id, &session_id).await, before);
    // The untouched cookie still rotates.
    assert_eq!(
        dashboard_refresh_with(&server, &refresh).await.status(),
        200
    );
    drop(c);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_expired_and_truncated_tokens_change_nothing() {
    use base64::Engine as _;
    let mut server = TestServer::start().await;
    let (user_id, session_id, refresh, access) = logged_in(&server, "tokens@example.com").await;
    // A second session the bearer routes could revoke if they were fooled.
    let r = dashboard_login(&server, &plain_client(), "tokens@example.com").await;
    assert_eq!(r.status(), 200);
    let before = snapshot(&server, &user_id, &session_id).await;

    // Refresh tokens: wrong secret for a real session, truncated, unknown session, oversized.
    let random_secret =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
    let forged_refresh = [
        format!("{session_id}.{random_secret}"),
        refresh[..refresh.len() - 5].to_string(),
        format!("{}.{random_secret}", uuid_like()),
        format!("{refresh}{}", "A".repeat(200)),
        refresh.replace('.', ""),
    ];
    for token in &forged_refresh {
        let r = dashboard_refresh_with(&server, token).await;
        assert_eq!(r.status(), 401, "{token}");
        assert_eq!(refresh_cookie_value(&r), "");
        assert_eq!(error_code(r).await, "invalid_refresh_token");
        let r = plain_client()
            .post(server.url("/api/v1/auth/logout"))
            .header("origin", DASHBOARD_ORIGIN)
            .header("cookie", format!("tachigo_refresh={token}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204, "logout answers the same for any token");
    }

    // Access tokens: bad signature, truncated, expired, other audience, no session, alg none.
    let mut claims = claims_of(&server, &access);
    let mut forged_access = Vec::new();
    let (head, sig) = access.rsplit_once('.').unwrap();
    let flipped = if sig.starts_with('A') { 'B' } else { 'A' };
    forged_access.push(format!("{head}.{flipped}{}", &sig[1..]));
    forged_access.push(access[..access.len() - 10].to_string());
    forged_access.push(head.to_string());
    claims.exp = claims.iat - 1;
    claims.iat -= 1000;
    forged_access.push(signed(&server, &claims));
    let mut claims = claims_of(&server, &access);
    claims.aud = "extension".into();
    forged_access.push(signed(&server, &claims));
    let mut claims = claims_of(&server, &access);
    claims.sid = None;
    forged_access.push(signed(&server, &claims));
    let mut claims = claims_of(&server, &access);
    claims.iss = "https://someone-else.example".into();
    forged_access.push(signed(&server, &claims));
    let none_header =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let payload = head.split_once('.').unwrap().1;
    forged_access.push(format!("{none_header}.{payload}."));

    let c = plain_client();
    for token in &forged_access {
        for (method, path) in [
            (reqwest::Method::GET, "me".to_string()),
            (reqwest::Method::GET, "sessions".to_string()),
            (reqwest::Method::POST, "sessions/revoke-others".to_string()),
            (reqwest::Method::DELETE, format!("sessions/{session_id}")),
        ] {
            let r = c
                .request(method, server.url(&format!("/api/v1/auth/{path}")))
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 401, "{path} {token}");
            assert_eq!(error_code(r).await, "invalid_access_token");
        }
    }

    assert_eq!(snapshot(&server, &user_id, &session_id).await, before);
    assert_eq!(
        server
            .engine()
            .stored_sessions(&user_id)
            .await
            .unwrap()
            .len(),
        2
    );
    // The genuine tokens still work.
    assert_eq!(
        c.get(server.url("/api/v1/auth/me"))
            .bearer_auth(&access)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        dashboard_refresh_with(&server, &refresh).await.status(),
        200
    );
    drop(c);
    server.stop().await;
}

/// A well-formed session id that names no session.
fn uuid_like() -> String {
    "3f2c9a4e-1b2c-4d5e-8f90-0123456789ab".to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_access_token_stops_working_when_it_expires_even_after_use() {
    let mut server = TestServer::start_with(|c| {
        c.tokens.access_ttl = tachigo_engine::config::ConfigDuration::from_secs(1);
    })
    .await;
    let (_, _, refresh, access) = logged_in(&server, "expiry@example.com").await;
    let c = plain_client();
    let me = || {
        c.get(server.url("/api/v1/auth/me"))
            .bearer_auth(&access)
            .send()
    };
    assert_eq!(me().await.unwrap().status(), 200);
    assert_eq!(me().await.unwrap().status(), 200);
    tokio::time::sleep(std::time::Duration::from_millis(2_100)).await;
    expect(me().await.unwrap(), 401, "invalid_access_token").await;
    // A refresh gives a working one again.
    let r = dashboard_refresh_with(&server, &refresh).await;
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["expires_in"], 1);
    let r = c
        .get(server.url("/api/v1/auth/me"))
        .bearer_auth(body["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    drop(c);
    server.stop().await;
}
