//! What a browser relies on: the refresh cookie's exact attributes in both
//! `cookies.secure` modes and with `cookies.domain`, the CSRF origin check on
//! cookie-authenticated refresh and logout, CORS with credentials for trusted
//! origins only, and the login rate limits (429 with `Retry-After`).

mod support;

use serde_json::{json, Value};
use support::*;
use tachigo_engine::config::ConfigDuration;

const EVIL_ORIGIN: &str = "https://evil.example";

/// Everything after the cookie's value.
fn attributes(set_cookie: &str) -> &str {
    set_cookie.split_once("; ").map_or("", |(_, rest)| rest)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_cookie_attributes_on_a_plain_http_localhost_listener() {
    let mut server = TestServer::start().await;
    create_dashboard_user(&server, "plain@example.com").await;
    let r = dashboard_login(&server, &plain_client(), "plain@example.com").await;
    let set = set_cookies(&r, "tachigo_refresh");
    assert_eq!(set.len(), 1);
    assert_eq!(
        attributes(set[0]),
        "HttpOnly; SameSite=Lax; Path=/api/v1/auth; Max-Age=1209600"
    );
    let token = refresh_cookie_value(&r);

    let r = dashboard_refresh_with(&server, &token).await;
    let set = set_cookies(&r, "tachigo_refresh");
    assert_eq!(
        attributes(set[0]),
        "HttpOnly; SameSite=Lax; Path=/api/v1/auth; Max-Age=1209600"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_cookie_is_secure_and_scoped_to_the_configured_domain() {
    let mut server = TestServer::start_with(|c| {
        c.cookies.secure = true;
        c.cookies.domain = ".tachigo.example".into();
        c.tokens.refresh_idle_ttl = ConfigDuration::from_secs(3600);
    })
    .await;
    create_dashboard_user(&server, "secure@example.com").await;
    let r = dashboard_login(&server, &plain_client(), "secure@example.com").await;
    assert_eq!(r.status(), 200);
    let set = set_cookies(&r, "tachigo_refresh");
    assert_eq!(
        attributes(set[0]),
        "HttpOnly; Secure; SameSite=Lax; Path=/api/v1/auth; Max-Age=3600; Domain=.tachigo.example"
    );
    let token = refresh_cookie_value(&r);

    let r = dashboard_refresh_with(&server, &token).await;
    assert_eq!(r.status(), 200);
    let set = set_cookies(&r, "tachigo_refresh");
    assert_eq!(
        attributes(set[0]),
        "HttpOnly; Secure; SameSite=Lax; Path=/api/v1/auth; Max-Age=3600; Domain=.tachigo.example"
    );
    let successor = refresh_cookie_value(&r);

    // Failure and logout clear it with the same attributes, Max-Age=0.
    let r = dashboard_refresh_with(&server, "garbage").await;
    assert_eq!(r.status(), 401);
    assert_eq!(
        set_cookies(&r, "tachigo_refresh"),
        ["tachigo_refresh=; HttpOnly; Secure; SameSite=Lax; Path=/api/v1/auth; Max-Age=0; Domain=.tachigo.example"]
    );
    let r = plain_client()
        .post(server.url("/api/v1/auth/logout"))
        .header("origin", DASHBOARD_ORIGIN)
        .header("cookie", format!("tachigo_refresh={successor}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(
        set_cookies(&r, "tachigo_refresh"),
        ["tachigo_refresh=; HttpOnly; Secure; SameSite=Lax; Path=/api/v1/auth; Max-Age=0; Domain=.tachigo.example"]
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cookie_refresh_and_logout_need_a_trusted_origin_or_referer() {
    let mut server = TestServer::start().await;
    let user_id = create_dashboard_user(&server, "csrf@example.com").await;
    let r = dashboard_login(&server, &plain_client(), "csrf@example.com").await;
    let token = refresh_cookie_value(&r);
    let session_id = token.split('.').next().unwrap().to_string();
    let family = server
        .engine()
        .stored_refresh_family(&session_id)
        .await
        .unwrap();
    let cookie = format!("tachigo_refresh={token}");

    let attempts = [
        ("refresh", vec![]),
        ("refresh", vec![("origin", EVIL_ORIGIN)]),
        ("refresh", vec![("origin", "null")]),
        ("refresh", vec![("referer", "https://evil.example/page")]),
        (
            "refresh",
            vec![
                ("origin", EVIL_ORIGIN),
                ("referer", "http://localhost:3000/"),
            ],
        ),
        ("logout", vec![]),
        ("logout", vec![("origin", EVIL_ORIGIN)]),
    ];
    for (endpoint, headers) in attempts {
        let mut request = plain_client()
            .post(server.url(&format!("/api/v1/auth/{endpoint}")))
            .header("cookie", &cookie);
        for (name, value) in &headers {
            request = request.header(*name, *value);
        }
        let r = request.send().await.unwrap();
        assert_eq!(r.status(), 403, "{endpoint} {headers:?}");
        assert!(
            set_cookies(&r, "tachigo_refresh").is_empty(),
            "a refused request keeps the cookie"
        );
        assert_eq!(error_code(r).await, "untrusted_origin");
    }
    assert_eq!(
        server
            .engine()
            .stored_refresh_family(&session_id)
            .await
            .unwrap(),
        family,
        "nothing rotated or revoked"
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

    // A trusted Referer stands in for a missing Origin.
    let r = plain_client()
        .post(server.url("/api/v1/auth/refresh"))
        .header("cookie", &cookie)
        .header("referer", "http://localhost:3000/settings?tab=security")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let successor = refresh_cookie_value(&r);

    // Body-token and bearer requests are exempt from the origin check.
    let r = plain_client()
        .post(server.url("/api/v1/auth/refresh"))
        .header("origin", EVIL_ORIGIN)
        .json(&json!({"refresh_token": successor}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    let r = plain_client()
        .get(server.url("/api/v1/auth/sessions"))
        .header("origin", EVIL_ORIGIN)
        .bearer_auth(body["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("access-control-allow-origin").is_none());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_allows_trusted_origins_with_credentials_and_nothing_else() {
    let mut server = TestServer::start().await;
    let client = plain_client();
    // A preflight allows exactly what the path serves, from the route table.
    for (path, served) in [
        ("/api/v1/auth/refresh", "POST, OPTIONS"),
        ("/api/v1/auth/login", "POST, OPTIONS"),
        ("/api/v1/auth/me", "GET, OPTIONS"),
        ("/api/v1/auth/sessions/some-id", "DELETE, OPTIONS"),
    ] {
        let r = client
            .request(reqwest::Method::OPTIONS, server.url(path))
            .header("origin", DASHBOARD_ORIGIN)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "content-type, authorization",
            )
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{path}: {}", r.status());
        let h = r.headers();
        assert_eq!(h["access-control-allow-origin"], DASHBOARD_ORIGIN);
        assert_eq!(h["access-control-allow-credentials"], "true");
        assert_eq!(h["access-control-allow-methods"], served, "{path}");
        let allowed = h["access-control-allow-headers"]
            .to_str()
            .unwrap()
            .to_ascii_lowercase();
        assert!(allowed.contains("authorization") && allowed.contains("content-type"));
        assert!(h.get_all("vary").iter().any(|v| v == "Origin"));

        let r = client
            .request(reqwest::Method::OPTIONS, server.url(path))
            .header("origin", EVIL_ORIGIN)
            .header("access-control-request-method", "POST")
            .send()
            .await
            .unwrap();
        let h = r.headers();
        assert!(h.get("access-control-allow-origin").is_none(), "{path}");
        assert!(h.get("access-control-allow-credentials").is_none());
        assert!(h.get("access-control-allow-methods").is_none());
    }

    // Actual responses, errors included, carry the CORS headers for a trusted origin.
    let r = client
        .post(server.url("/api/v1/auth/refresh"))
        .header("origin", DASHBOARD_ORIGIN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["access-control-allow-origin"], DASHBOARD_ORIGIN);
    assert_eq!(r.headers()["access-control-allow-credentials"], "true");
    let r = client
        .post(server.url("/api/v1/auth/refresh"))
        .header("origin", EVIL_ORIGIN)
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());
    drop(client);
    server.stop().await;
}

async fn login_as(
    server: &TestServer,
    email: &str,
    password: &str,
    ip: Option<&str>,
) -> reqwest::Response {
    let mut request = plain_client()
        .post(server.url("/api/v1/auth/login"))
        .json(&json!({"email": email, "password": password}));
    if let Some(ip) = ip {
        request = request.header("x-forwarded-for", ip);
    }
    request.send().await.unwrap()
}

async fn assert_limited(r: reqwest::Response) {
    assert_eq!(r.status(), 429);
    let retry_after: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    assert_eq!(error_code(r).await, "too_many_attempts");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_attempts_are_limited_per_client_ip() {
    let mut server = TestServer::start().await;
    let user_id = create_dashboard_user(&server, "victim@example.com").await;
    let burst = tachigo_frontends::dashboard::LOGIN_LIMIT_PER_IP.burst;
    // Spread over accounts, so only the per-IP limit can bite.
    for i in 0..burst {
        let r = login_as(
            &server,
            &format!("guess{i}@example.com"),
            "wrong password!",
            None,
        )
        .await;
        assert_eq!(r.status(), 401);
    }
    assert_limited(login_as(&server, "guess-next@example.com", "wrong password!", None).await)
        .await;
    // Even the right password waits: no session is made.
    assert_limited(login_as(&server, "victim@example.com", DASHBOARD_PASSWORD, None).await).await;
    assert!(server
        .engine()
        .stored_sessions(&user_id)
        .await
        .unwrap()
        .is_empty());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_attempts_are_limited_per_account_across_ips() {
    let mut server = TestServer::start_with(|c| c.server.trust_proxy = true).await;
    create_dashboard_user(&server, "target@example.com").await;
    create_dashboard_user(&server, "bystander@example.com").await;
    let burst = tachigo_frontends::dashboard::LOGIN_LIMIT_PER_ACCOUNT.burst;
    for i in 0..burst {
        let ip = format!("198.51.100.{i}");
        let r = login_as(&server, "target@example.com", "wrong password!", Some(&ip)).await;
        assert_eq!(r.status(), 401);
    }
    // A new address, the same account (spelled differently): refused.
    assert_limited(
        login_as(
            &server,
            " TARGET@example.com",
            DASHBOARD_PASSWORD,
            Some("203.0.113.9"),
        )
        .await,
    )
    .await;
    // Another account from that address is unaffected.
    let r = login_as(
        &server,
        "bystander@example.com",
        DASHBOARD_PASSWORD,
        Some("203.0.113.9"),
    )
    .await;
    assert_eq!(r.status(), 200);
    server.stop().await;
}

/// Behind a proxy that adds its own `X-Forwarded-For` field instead of
/// extending the client's, the client IP is the right-most entry of the last
/// field: a forged first field changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_forwarded_field_does_not_escape_the_per_ip_limit() {
    let mut server = TestServer::start_with(|c| c.server.trust_proxy = true).await;
    let burst = tachigo_frontends::dashboard::LOGIN_LIMIT_PER_IP.burst;
    let attempt = |i: u32| {
        plain_client()
            .post(server.url("/api/v1/auth/login"))
            .header("x-forwarded-for", format!("10.9.{}.{}", i / 250, i % 250))
            .header("x-forwarded-for", "203.0.113.50")
            .json(&json!({"email": format!("guess{i}@example.com"), "password": "wrong password!"}))
            .send()
    };
    for i in 0..burst {
        assert_eq!(attempt(i).await.unwrap().status(), 401);
    }
    assert_limited(attempt(burst).await.unwrap()).await;
    server.stop().await;
}
