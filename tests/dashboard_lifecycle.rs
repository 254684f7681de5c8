//! The dashboard's life cycle over HTTP, as the web app lives it: register, log
//! in, call `/me`, refresh silently, restore the session on a page reload (a new
//! client that has nothing but the browser's cookie jar), log out; and a server
//! restart in the middle of a session.

mod support;

use std::sync::Arc;

use reqwest::cookie::Jar;
use serde_json::{json, Value};
use support::*;

/// A browser tab over a shared cookie jar: what survives a page reload.
fn tab(jar: &Arc<Jar>) -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_provider(jar.clone())
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .unwrap()
}

async fn me(server: &TestServer, access_token: &str) -> reqwest::Response {
    plain_client()
        .get(server.url("/api/v1/auth/me"))
        .bearer_auth(access_token)
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_me_refresh_reload_logout_then_refresh_fails() {
    let mut server = TestServer::start().await;
    let user_id = create_dashboard_user(&server, "ada@example.com").await;
    let jar = Arc::new(Jar::default());
    let first_tab = tab(&jar);

    // Login: access token in the body, refresh token only in the cookie.
    let r = first_tab
        .post(server.url("/api/v1/auth/login"))
        .header("user-agent", "dashboard-test/1.0")
        .json(&json!({"email": "Ada@Example.com", "password": DASHBOARD_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let login_cookie = refresh_cookie_value(&r);
    let login: Value = r.json().await.unwrap();
    assert_eq!(login["token_type"], "Bearer");
    assert_eq!(login["expires_in"], 900);
    assert_eq!(
        login["user"],
        json!({"id": user_id, "email": "ada@example.com", "name": "Dash Board", "roles": ["member"]})
    );
    assert!(login.get("refresh_token").is_none(), "{login}");
    assert!(!login.to_string().contains(&login_cookie));
    let access = login["access_token"].as_str().unwrap().to_string();

    // /me: the user and the session behind the token.
    let r = me(&server, &access).await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["user"]["id"], user_id);
    assert_eq!(body["user"]["email"], "ada@example.com");
    let session_id = body["session"]["id"].as_str().unwrap().to_string();
    assert!(body["session"]["created_at"]
        .as_str()
        .unwrap()
        .ends_with('Z'));
    assert!(
        body["session"]["expires_at"].as_str().unwrap()
            > body["session"]["created_at"].as_str().unwrap()
    );
    let sessions = server.engine().stored_sessions(&user_id).await.unwrap();
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0].id, session_id);
    assert_eq!(
        sessions[0].user_agent.as_deref(),
        Some("dashboard-test/1.0")
    );
    assert_eq!(sessions[0].ip.as_deref(), Some("127.0.0.1"));

    // A silent refresh rotates the cookie and gives a working access token.
    let r = dashboard_refresh(&server, &first_tab).await;
    assert_eq!(r.status(), 200);
    let rotated_cookie = refresh_cookie_value(&r);
    assert_ne!(rotated_cookie, login_cookie);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 900);
    assert!(
        body.get("refresh_token").is_none(),
        "a cookie caller never gets its token in a body"
    );
    let refreshed_access = body["access_token"].as_str().unwrap().to_string();
    assert_eq!(me(&server, &refreshed_access).await.status(), 200);
    assert_eq!(
        server
            .engine()
            .stored_refresh_family(&session_id)
            .await
            .unwrap()
            .unwrap()
            .generation,
        1
    );

    // Page reload: a new client with only the cookie jar restores the session.
    let reloaded = tab(&jar);
    let r = dashboard_refresh(&server, &reloaded).await;
    assert_eq!(r.status(), 200);
    let restored_cookie = refresh_cookie_value(&r);
    let body: Value = r.json().await.unwrap();
    let restored_access = body["access_token"].as_str().unwrap().to_string();
    let body: Value = me(&server, &restored_access).await.json().await.unwrap();
    assert_eq!(body["session"]["id"], session_id);

    // Logout: 204, cookie cleared, family revoked, the session's tokens dead.
    let r = reloaded
        .post(server.url("/api/v1/auth/logout"))
        .header("origin", DASHBOARD_ORIGIN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let cleared = set_cookies(&r, "tachigo_refresh");
    assert_eq!(
        cleared,
        ["tachigo_refresh=; HttpOnly; SameSite=Lax; Path=/api/v1/auth; Max-Age=0"]
    );
    assert_logged_out_in_storage(&server, &user_id, &session_id).await;

    // The jar dropped the cookie: nothing to refresh with.
    let r = dashboard_refresh(&server, &reloaded).await;
    assert_eq!(r.status(), 401);
    assert_eq!(error_code(r).await, "no_refresh_token");
    // The last cookie, replayed by hand, is dead; so is the access token.
    let r = dashboard_refresh_with(&server, &restored_cookie).await;
    assert_eq!(r.status(), 401);
    assert_eq!(refresh_cookie_value(&r), "");
    assert_eq!(error_code(r).await, "invalid_refresh_token");
    let r = me(&server, &restored_access).await;
    assert_eq!(r.status(), 401);
    assert_eq!(error_code(r).await, "session_revoked");

    // Logout is idempotent.
    let r = reloaded
        .post(server.url("/api/v1/auth/logout"))
        .header("origin", DASHBOARD_ORIGIN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    drop((first_tab, reloaded));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_cookie_issued_before_a_restart_still_rotates_after_it() {
    let mut server = TestServer::start().await;
    let user_id = create_dashboard_user(&server, "restart@example.com").await;
    let jar = Arc::new(Jar::default());
    let browser = tab(&jar);
    let r = dashboard_login(&server, &browser, "restart@example.com").await;
    assert_eq!(r.status(), 200);
    let r = dashboard_refresh(&server, &browser).await;
    assert_eq!(r.status(), 200);
    let before_restart = refresh_cookie_value(&r);
    let body: Value = r.json().await.unwrap();
    let access = body["access_token"].as_str().unwrap().to_string();

    // The browser is closed across the restart; its cookie jar survives.
    drop(browser);
    server.restart().await;
    let browser = tab(&jar);

    // The access token still verifies (same signing key) and its session is live.
    assert_eq!(me(&server, &access).await.status(), 200);
    let r = dashboard_refresh(&server, &browser).await;
    assert_eq!(r.status(), 200);
    let after_restart = refresh_cookie_value(&r);
    assert_ne!(after_restart, before_restart);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        me(&server, body["access_token"].as_str().unwrap())
            .await
            .status(),
        200
    );
    let sessions = server.engine().stored_sessions(&user_id).await.unwrap();
    assert_eq!(sessions.len(), 1);
    assert_eq!(
        server
            .engine()
            .stored_refresh_family(&sessions[0].id)
            .await
            .unwrap()
            .unwrap()
            .generation,
        2
    );
    // And rotation keeps working from there.
    assert_eq!(dashboard_refresh(&server, &browser).await.status(), 200);
    drop(browser);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_when_signup_is_allowed_then_login() {
    let mut server = TestServer::start_with(|c| c.dashboard.allow_signup = true).await;
    let client = plain_client();
    let register = |body: Value| {
        client
            .post(server.url("/api/v1/auth/register"))
            .json(&body)
            .send()
    };

    let r = register(
        json!({"email": "New@Example.com", "password": DASHBOARD_PASSWORD, "name": " Newt "}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 201);
    assert!(
        set_cookies(&r, "tachigo_refresh").is_empty(),
        "registration does not sign in"
    );
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["user"]["email"], "new@example.com");
    assert_eq!(body["user"]["name"], "Newt");
    assert_eq!(body["user"]["roles"], json!([]));
    let id = body["user"]["id"].as_str().unwrap();
    assert_eq!(
        server
            .engine()
            .user_id_by_email("new@example.com")
            .await
            .unwrap()
            .as_deref(),
        Some(id)
    );

    let r = register(json!({"email": "new@example.com", "password": DASHBOARD_PASSWORD}))
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    assert_eq!(error_code(r).await, "email_taken");

    let r = register(json!({"email": "weak@example.com", "password": "short"}))
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(error_code(r).await, "weak_password");
    let r = register(json!({"email": "weak@example.com", "password": "aaaaaaaaaaaa"}))
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(error_code(r).await, "weak_password");

    let r = register(json!({"email": "not-an-email", "password": DASHBOARD_PASSWORD}))
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid_body");
    assert!(body["error"]["message"].as_str().unwrap().contains("email"));
    assert_eq!(server.engine().user_count().await.unwrap(), 1);

    let r = client
        .post(server.url("/api/v1/auth/login"))
        .json(&json!({"email": "new@example.com", "password": DASHBOARD_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["user"]["id"], id);
    drop(client);
    server.stop().await;
}
