//! The caller's sessions over `/api/auth`: `list-sessions` (every surface, the
//! current one marked, no credential ever listed: its `token` is a revocation
//! handle that authenticates nothing), `revoke-session` (by `id` or Better
//! Auth's `token` field), `revoke-other-sessions`, `revoke-sessions`
//! and `sign-out` — each revocation visible to `get-session` at once — and the
//! 401 / CSRF rules around them.

mod support;

use serde_json::{json, Value};
use support::oidc_provider::{OidcProvider, TestUser};
use support::{
    better_auth_code, browser, dashboard_refresh_with, error_code, get_session, oauth_sign_in,
    plain_client, set_cookie_value, start_with_provider, TestServer, FRONTEND,
};
use tachigo_engine::{NewSession, Surface};

/// `n` browsers signed in as the same user; their session tokens.
async fn same_user_in(
    server: &TestServer,
    provider: &OidcProvider,
    n: usize,
) -> Vec<(reqwest::Client, String)> {
    provider.set_user(TestUser::verified("multi"));
    let mut browsers = Vec::new();
    for _ in 0..n {
        let b = browser();
        let landed = oauth_sign_in(server, &b, "local", json!({})).await;
        let token = set_cookie_value(&landed, "tachigo.session_token").unwrap();
        browsers.push((b, token));
    }
    browsers
}

async fn session_id(server: &TestServer, b: &reqwest::Client) -> String {
    get_session(server, b).await["session"]["id"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn post(
    server: &TestServer,
    b: &reqwest::Client,
    path: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let request = b.post(server.url(path)).header("origin", FRONTEND);
    match body {
        Some(body) => request.json(&body),
        None => request,
    }
    .send()
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_sessions_shows_every_surface_and_marks_the_current_one() {
    let provider = OidcProvider::start().await;
    let server = start_with_provider(&provider, |_| {}).await;
    let browsers = same_user_in(&server, &provider, 2).await;
    let (a, _) = &browsers[0];
    let user_id = get_session(&server, a).await["user"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let dashboard = server
        .engine()
        .create_session(
            &user_id,
            NewSession {
                surface: Surface::Dashboard,
                user_agent: Some("dashboard".into()),
                ip: None,
                context: None,
            },
        )
        .await
        .unwrap();

    let response = a
        .get(server.url("/api/auth/list-sessions"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    for (_, token) in &browsers {
        assert!(!text.contains(token.as_str()), "no token is listed");
    }
    assert!(!text.contains(dashboard.token.as_deref().unwrap()));
    let listed: Vec<Value> = serde_json::from_str(&text).unwrap();
    assert_eq!(listed.len(), 3);
    let current: Vec<&Value> = listed.iter().filter(|s| s["current"] == true).collect();
    assert_eq!(current.len(), 1);
    assert_eq!(current[0]["id"], session_id(&server, a).await.as_str());
    let mut surfaces: Vec<&str> = listed
        .iter()
        .map(|s| s["surface"].as_str().unwrap())
        .collect();
    surfaces.sort();
    assert_eq!(surfaces, ["dashboard", "web", "web"]);
    for s in &listed {
        assert_eq!(s["userId"], user_id.as_str());
        for key in ["id", "expiresAt", "createdAt", "updatedAt"] {
            assert!(s[key].is_string(), "{key}");
        }
    }
}

/// `GET /api/auth/get-session` presenting `value` as the session cookie.
async fn get_session_with_cookie(server: &TestServer, value: &str) -> Value {
    let response = plain_client()
        .get(server.url("/api/auth/get-session"))
        .header("cookie", format!("tachigo.session_token={value}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_listed_token_revokes_a_session_and_authenticates_nothing() {
    let provider = OidcProvider::start().await;
    let server = start_with_provider(&provider, |_| {}).await;
    let browsers = same_user_in(&server, &provider, 2).await;
    let (a, _) = &browsers[0];
    let (b, b_token) = &browsers[1];
    let b_id = session_id(&server, b).await;

    let listed: Vec<Value> = a
        .get(server.url("/api/auth/list-sessions"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let other = listed.iter().find(|s| s["current"] == false).unwrap();
    let handle = other["token"]
        .as_str()
        .expect("a `token` per listed session");
    assert_eq!(handle, b_id, "the handle is the session's id");
    assert_ne!(handle, b_token.as_str(), "never the session's credential");
    for s in &listed {
        assert_eq!(s["token"], s["id"]);
    }

    // The handle is no credential anywhere: cookie, bearer, refresh cookie.
    assert_eq!(get_session_with_cookie(&server, handle).await, Value::Null);
    for path in ["/api/v1/auth/me", "/api/v1/extension/me"] {
        let response = plain_client()
            .get(server.url(path))
            .bearer_auth(handle)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401, "{path}");
    }
    let refresh = dashboard_refresh_with(&server, handle).await;
    assert_eq!(refresh.status(), 401);
    assert_eq!(error_code(refresh).await, "invalid_refresh_token");
    assert!(
        get_session(&server, b).await.is_object(),
        "b is untouched so far"
    );

    // It is what `authClient.revokeSession({ token })` sends.
    let revoked = post(
        &server,
        a,
        "/api/auth/revoke-session",
        Some(json!({"token": handle})),
    )
    .await;
    assert_eq!(revoked.status(), 200);
    assert_eq!(get_session(&server, b).await, Value::Null);
    assert!(get_session(&server, a).await.is_object());

    // Replayed: the session is gone.
    let again = post(
        &server,
        a,
        "/api/auth/revoke-session",
        Some(json!({"token": handle})),
    )
    .await;
    assert_eq!(again.status(), 404);
    assert_eq!(better_auth_code(again).await, "SESSION_NOT_FOUND");

    // Another user's handle ends nothing.
    provider.set_user(TestUser::verified("someone-else"));
    let stranger = browser();
    oauth_sign_in(&server, &stranger, "local", json!({})).await;
    let stranger_id = session_id(&server, &stranger).await;
    let foreign = post(
        &server,
        a,
        "/api/auth/revoke-session",
        Some(json!({"token": stranger_id})),
    )
    .await;
    assert_eq!(foreign.status(), 404);
    assert!(get_session(&server, &stranger).await.is_object());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_session_is_gone_for_get_session_at_once() {
    let provider = OidcProvider::start().await;
    let server = start_with_provider(&provider, |_| {}).await;
    let browsers = same_user_in(&server, &provider, 3).await;
    let (a, _) = &browsers[0];
    let (b, _) = &browsers[1];
    let (c, c_token) = &browsers[2];

    let revoked = post(
        &server,
        a,
        "/api/auth/revoke-session",
        Some(json!({"id": session_id(&server, b).await})),
    )
    .await;
    assert_eq!(revoked.status(), 200);
    assert_eq!(
        revoked.json::<Value>().await.unwrap(),
        json!({"status": true})
    );
    assert_eq!(get_session(&server, b).await, Value::Null);
    assert!(
        get_session(&server, a).await.is_object(),
        "the caller's own session lives on"
    );

    // Better Auth's client sends `{token}`: a session token works as well.
    let by_token = post(
        &server,
        a,
        "/api/auth/revoke-session",
        Some(json!({"token": c_token})),
    )
    .await;
    assert_eq!(by_token.status(), 200);
    assert_eq!(get_session(&server, c).await, Value::Null);

    let unknown = post(
        &server,
        a,
        "/api/auth/revoke-session",
        Some(json!({"id": "3f2c9a4e-0000-4000-8000-000000000000"})),
    )
    .await;
    assert_eq!(unknown.status(), 404);
    assert_eq!(better_auth_code(unknown).await, "SESSION_NOT_FOUND");
    let nothing = post(&server, a, "/api/auth/revoke-session", Some(json!({}))).await;
    assert_eq!(nothing.status(), 400);

    // Ending one's own session also expires one's cookie.
    let own = session_id(&server, a).await;
    let ended = post(
        &server,
        a,
        "/api/auth/revoke-session",
        Some(json!({"token": own})),
    )
    .await;
    assert_eq!(
        set_cookie_value(&ended, "tachigo.session_token").as_deref(),
        Some("")
    );
    assert_eq!(get_session(&server, a).await, Value::Null);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoke_other_sessions_keeps_only_the_callers() {
    let provider = OidcProvider::start().await;
    let server = start_with_provider(&provider, |_| {}).await;
    let browsers = same_user_in(&server, &provider, 3).await;
    let response = post(
        &server,
        &browsers[0].0,
        "/api/auth/revoke-other-sessions",
        None,
    )
    .await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"status": true})
    );
    assert!(get_session(&server, &browsers[0].0).await.is_object());
    assert_eq!(get_session(&server, &browsers[1].0).await, Value::Null);
    assert_eq!(get_session(&server, &browsers[2].0).await, Value::Null);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoke_sessions_ends_every_session_including_the_callers() {
    let provider = OidcProvider::start().await;
    let server = start_with_provider(&provider, |_| {}).await;
    let browsers = same_user_in(&server, &provider, 2).await;
    let response = post(
        &server,
        &browsers[0].0,
        "/api/auth/revoke-sessions",
        Some(json!({})),
    )
    .await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        set_cookie_value(&response, "tachigo.session_token").as_deref(),
        Some("")
    );
    for (b, _) in &browsers {
        assert_eq!(get_session(&server, b).await, Value::Null);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_endpoints_need_a_session_and_changes_a_trusted_origin() {
    let provider = OidcProvider::start().await;
    let server = start_with_provider(&provider, |_| {}).await;
    for path in ["/api/auth/list-sessions", "/api/auth/list-accounts"] {
        let response = plain_client().get(server.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 401, "{path}");
        assert_eq!(better_auth_code(response).await, "UNAUTHORIZED");
    }
    for path in [
        "/api/auth/revoke-sessions",
        "/api/auth/revoke-other-sessions",
    ] {
        let response = post(&server, &plain_client(), path, None).await;
        assert_eq!(response.status(), 401, "{path}");
    }

    let browsers = same_user_in(&server, &provider, 2).await;
    let (a, _) = &browsers[0];
    let target = session_id(&server, &browsers[1].0).await;
    for origin in [Some("https://evil.example"), None] {
        let mut request = a
            .post(server.url("/api/auth/revoke-session"))
            .json(&json!({"id": target}));
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 403);
        assert_eq!(better_auth_code(response).await, "UNTRUSTED_ORIGIN");
    }
    assert!(
        get_session(&server, &browsers[1].0).await.is_object(),
        "nothing was revoked"
    );

    // A trusted Referer stands in for a missing Origin.
    let with_referer = a
        .post(server.url("/api/auth/revoke-session"))
        .header("referer", format!("{FRONTEND}/settings/sessions"))
        .json(&json!({"id": target}))
        .send()
        .await
        .unwrap();
    assert_eq!(with_referer.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_out_is_csrf_checked_accepts_empty_bodies_and_is_idempotent() {
    let provider = OidcProvider::start().await;
    let server = start_with_provider(&provider, |_| {}).await;
    let browsers = same_user_in(&server, &provider, 2).await;

    let forged = browsers[0]
        .0
        .post(server.url("/api/auth/sign-out"))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    assert_eq!(better_auth_code(forged).await, "UNTRUSTED_ORIGIN");
    assert!(
        get_session(&server, &browsers[0].0).await.is_object(),
        "still signed in"
    );

    let with_empty_object = post(
        &server,
        &browsers[0].0,
        "/api/auth/sign-out",
        Some(json!({})),
    )
    .await;
    assert_eq!(
        with_empty_object.json::<Value>().await.unwrap(),
        json!({"success": true})
    );
    assert_eq!(get_session(&server, &browsers[0].0).await, Value::Null);
    assert!(
        get_session(&server, &browsers[1].0).await.is_object(),
        "only that session ended"
    );

    let again = post(&server, &plain_client(), "/api/auth/sign-out", None).await;
    assert_eq!(again.status(), 200);
    assert_eq!(
        again.json::<Value>().await.unwrap(),
        json!({"success": true})
    );
}

/// get-session answers most reads before any filter runs (from the session's
/// published view); those answers carry everything the filters' do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_session_answers_browsers_alike_on_every_path() {
    let provider = OidcProvider::start().await;
    let server = start_with_provider(&provider, |_| {}).await;
    let browsers = same_user_in(&server, &provider, 1).await;
    let (_, token) = &browsers[0];
    let client = plain_client();
    let read = |cookie: Option<String>, origin: Option<&'static str>| {
        let mut request = client.get(server.url("/api/auth/get-session"));
        if let Some(cookie) = cookie {
            request = request.header("cookie", cookie);
        }
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        request.send()
    };
    let cookie = format!("tachigo.session_token={token}");

    let mut bodies = Vec::new();
    for _ in 0..3 {
        let r = read(Some(cookie.clone()), Some(FRONTEND)).await.unwrap();
        assert_eq!(r.status(), 200);
        let h = r.headers().clone();
        assert_eq!(h["access-control-allow-origin"], FRONTEND);
        assert_eq!(h["access-control-allow-credentials"], "true");
        assert_eq!(h["cache-control"], "no-store");
        assert_eq!(h["content-type"], "application/json");
        assert_eq!(h["x-request-id"].len(), 32);
        assert!(
            h.get("set-cookie").is_none(),
            "a fresh session is not re-set"
        );
        bodies.push(r.json::<Value>().await.unwrap());
    }
    assert_eq!(bodies[0]["user"]["email"], "multi@example.com");
    assert!(bodies.iter().all(|b| *b == bodies[0]), "{bodies:?}");

    // Another origin gets the answer but no CORS grant.
    let r = read(Some(cookie.clone()), Some("https://evil.example"))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("access-control-allow-origin").is_none());

    // No cookie: null, with the CORS grant.
    let r = read(None, Some(FRONTEND)).await.unwrap();
    assert_eq!(r.headers()["access-control-allow-origin"], FRONTEND);
    assert_eq!(r.json::<Value>().await.unwrap(), Value::Null);

    // A forged token (right shape, wrong secret) and garbage: null, cookie cleared.
    let (session_part, _) = token.split_once('.').unwrap_or((token.as_str(), ""));
    for forged in [
        format!("{session_part}.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
        "garbage".to_string(),
    ] {
        let r = read(
            Some(format!("tachigo.session_token={forged}")),
            Some(FRONTEND),
        )
        .await
        .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(
            set_cookie_value(&r, "tachigo.session_token").as_deref(),
            Some(""),
            "{forged}"
        );
        assert_eq!(r.json::<Value>().await.unwrap(), Value::Null);
    }
    // The real session is untouched by the forgeries.
    let r = read(Some(cookie.clone()), None).await.unwrap();
    assert_eq!(r.json::<Value>().await.unwrap(), bodies[0]);

    // Another method on the path is the contract's error, not a session.
    let r = client
        .post(server.url("/api/auth/get-session"))
        .header("cookie", cookie.clone())
        .header("origin", FRONTEND)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let body = r.text().await.unwrap();
    assert!(matches!(status, 404 | 405), "{status} {body}");
    assert!(!body.contains("multi@example.com"), "{body}");
}
