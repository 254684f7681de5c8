//! Refresh-token rotation as the dashboard sees it over HTTP: concurrent tabs
//! refreshing with one cookie, replays after the grace window or of older
//! tokens (reuse: the family is revoked), and the body fallback on and off.

mod support;

use std::time::Duration;

use serde_json::{json, Value};
use support::metrics::metrics_text;
use support::*;
use tachigo_engine::Revocation;

/// Logs `email` in with a client that has no jar; returns (user id, session id, refresh token).
async fn logged_in(server: &TestServer, email: &str) -> (String, String, String) {
    let user_id = create_dashboard_user(server, email).await;
    let r = dashboard_login(server, &plain_client(), email).await;
    assert_eq!(r.status(), 200);
    let token = refresh_cookie_value(&r);
    let session_id = token.split('.').next().unwrap().to_string();
    (user_id, session_id, token)
}

async fn refresh_ok(server: &TestServer, token: &str) -> (String, String) {
    let r = dashboard_refresh_with(server, token).await;
    assert_eq!(r.status(), 200);
    let successor = refresh_cookie_value(&r);
    let body: Value = r.json().await.unwrap();
    (
        successor,
        body["access_token"].as_str().unwrap().to_string(),
    )
}

async fn body_refresh(server: &TestServer, token: &str) -> reqwest::Response {
    plain_client()
        .post(server.url("/api/v1/auth/refresh"))
        .json(&json!({"refresh_token": token}))
        .send()
        .await
        .unwrap()
}

async fn me_status(server: &TestServer, access: &str) -> u16 {
    plain_client()
        .get(server.url("/api/v1/auth/me"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_refreshes_with_one_cookie_all_get_the_same_working_successor() {
    let mut server = TestServer::start().await;
    let (_, session_id, token) = logged_in(&server, "tabs@example.com").await;

    let tabs = (0..4).map(|_| dashboard_refresh_with(&server, &token));
    let responses = futures::future::join_all(tabs).await;
    let mut successors = Vec::new();
    for r in responses {
        assert_eq!(r.status(), 200);
        successors.push(refresh_cookie_value(&r));
        let body: Value = r.json().await.unwrap();
        assert_eq!(
            me_status(&server, body["access_token"].as_str().unwrap()).await,
            200
        );
    }
    assert!(
        successors.iter().all(|s| *s == successors[0]),
        "{successors:?}"
    );
    assert_ne!(successors[0], token);
    let family = server
        .engine()
        .stored_refresh_family(&session_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        family.generation, 1,
        "one rotation, the rest were grace answers"
    );
    assert_eq!(family.revoked, None);

    // The shared successor keeps rotating.
    refresh_ok(&server, &successors[0]).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replaying_a_token_after_the_grace_window_revokes_the_family() {
    let mut server = TestServer::start_with(|c| {
        c.tokens.refresh_grace = tachigo_engine::config::ConfigDuration::from_secs(1);
    })
    .await;
    let (user_id, session_id, first) = logged_in(&server, "replay@example.com").await;
    let (second, access) = refresh_ok(&server, &first).await;

    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let r = dashboard_refresh_with(&server, &first).await;
    assert_eq!(r.status(), 401);
    assert_eq!(refresh_cookie_value(&r), "", "the cookie is cleared");
    assert_eq!(error_code(r).await, "refresh_token_reused");

    // The whole family is dead: the legitimate successor too, and its access token.
    let r = dashboard_refresh_with(&server, &second).await;
    assert_eq!(r.status(), 401);
    assert_eq!(refresh_cookie_value(&r), "");
    assert_eq!(error_code(r).await, "refresh_token_reused");
    assert_eq!(me_status(&server, &access).await, 401);
    let engine = server.engine();
    assert!(engine.stored_sessions(&user_id).await.unwrap().is_empty());
    assert_eq!(
        engine
            .stored_refresh_family(&session_id)
            .await
            .unwrap()
            .unwrap()
            .revoked,
        Some(Revocation::Reuse)
    );
    let events = engine.recent_audit_events(20).await.unwrap();
    assert!(events.iter().any(|e| e.kind == "refresh_reuse_detected"
        && e.session_id.as_deref() == Some(session_id.as_str())));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_token_gets_no_grace_and_revokes_the_family() {
    let mut server = TestServer::start().await;
    let (_, session_id, first) = logged_in(&server, "older@example.com").await;
    let (second, _) = refresh_ok(&server, &first).await;
    let (third, _) = refresh_ok(&server, &second).await;

    // `first` is two generations back: reuse, even inside the grace window.
    let r = dashboard_refresh_with(&server, &first).await;
    assert_eq!(r.status(), 401);
    assert_eq!(error_code(r).await, "refresh_token_reused");
    let r = dashboard_refresh_with(&server, &third).await;
    assert_eq!(r.status(), 401);
    assert_eq!(error_code(r).await, "refresh_token_reused");
    // Logging in again starts a new, working family.
    let r = dashboard_login(&server, &plain_client(), "older@example.com").await;
    let fresh = refresh_cookie_value(&r);
    assert_ne!(fresh.split('.').next().unwrap(), session_id);
    refresh_ok(&server, &fresh).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_body_fallback_rotates_counts_and_returns_the_token_only_to_body_callers() {
    let mut server = TestServer::start().await;
    let (user_id, session_id, first) = logged_in(&server, "legacy@example.com").await;

    // A body caller needs no Origin (a body token is not ambient) and gets its token back.
    let r = body_refresh(&server, &first).await;
    assert_eq!(r.status(), 200);
    let cookie = refresh_cookie_value(&r);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["refresh_token"].as_str(), Some(cookie.as_str()));
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(
        me_status(&server, body["access_token"].as_str().unwrap()).await,
        200
    );

    // A cookie caller does not, even if it also sends a body token.
    let r = plain_client()
        .post(server.url("/api/v1/auth/refresh"))
        .header("origin", DASHBOARD_ORIGIN)
        .header("cookie", format!("tachigo_refresh={cookie}"))
        .json(&json!({"refresh_token": "ignored"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let cookie = refresh_cookie_value(&r);
    let body: Value = r.json().await.unwrap();
    assert!(body.get("refresh_token").is_none(), "{body}");

    let metrics = metrics_text(&server).await;
    assert!(
        metrics.lines().any(|l| l
            .starts_with("tachigo_dashboard_refresh_body_fallback_total{endpoint=\"refresh\"}")),
        "{metrics}"
    );

    // Logout through the body ends the session.
    let r = plain_client()
        .post(server.url("/api/v1/auth/logout"))
        .json(&json!({"refresh_token": cookie}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(refresh_cookie_value(&r), "");
    assert_logged_out_in_storage(&server, &user_id, &session_id).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_body_fallback_off_a_body_token_gets_refresh_cookie_required() {
    let mut server = TestServer::start_with(|c| c.dashboard.refresh_body_fallback = false).await;
    let (user_id, session_id, token) = logged_in(&server, "moved@example.com").await;
    let family_before = server
        .engine()
        .stored_refresh_family(&session_id)
        .await
        .unwrap();

    let r = body_refresh(&server, &token).await;
    assert_eq!(r.status(), 400);
    assert_eq!(refresh_cookie_value(&r), "");
    assert_eq!(error_code(r).await, "refresh_cookie_required");
    let r = plain_client()
        .post(server.url("/api/v1/auth/logout"))
        .json(&json!({"refresh_token": token}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(error_code(r).await, "refresh_cookie_required");
    assert_eq!(
        server
            .engine()
            .stored_refresh_family(&session_id)
            .await
            .unwrap(),
        family_before
    );
    assert_eq!(
        server
            .engine()
            .stored_sessions(&user_id)
            .await
            .unwrap()
            .len(),
        1
    );

    // The cookie still works, and its reply never carries the token.
    let r = dashboard_refresh_with(&server, &token).await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert!(body.get("refresh_token").is_none());
    server.stop().await;
}
