//! What an unauthenticated caller can make the OAuth contract store is bounded:
//! provider flows started per client IP (429 with `Retry-After`), the total of
//! pending flows (429 with `Retry-After`, nothing stored), and the length of
//! callback URLs (403). And cookies split over several `Cookie` fields, as
//! HTTP/2 clients send them, are all read: over HTTP/1.1 and HTTP/2 alike,
//! `get-session` finds the session and `sign-out` really ends it.

mod support;

use serde_json::json;
use support::oidc_provider::{OidcProvider, TestUser};
use support::{
    better_auth_code, browser, get_session, oauth_sign_in, set_cookie_value, start_with_provider,
    TestServer, FRONTEND,
};

async fn start_sign_in(
    server: &TestServer,
    forwarded_for: &str,
    body: serde_json::Value,
) -> reqwest::Response {
    reqwest::Client::new()
        .post(server.url("/api/auth/sign-in/social"))
        .header("origin", FRONTEND)
        .header("x-forwarded-for", forwarded_for)
        .json(&body)
        .send()
        .await
        .unwrap()
}

fn retry_after_secs(response: &reqwest::Response) -> u64 {
    response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starting_flows_is_rate_limited_per_client_ip() {
    let provider = OidcProvider::start().await;
    let mut server = start_with_provider(&provider, |c| {
        c.server.trust_proxy = true;
        c.limits.oauth_starts_per_minute = 3;
        c.limits.oauth_starts_burst = 3;
    })
    .await;
    let engine = server.engine().clone();
    for _ in 0..3 {
        let r = start_sign_in(&server, "198.51.100.7", json!({"provider": "local"})).await;
        assert_eq!(r.status(), 200);
    }
    assert_eq!(engine.pending_authorization_count(), 3);

    let refused = start_sign_in(&server, "198.51.100.7", json!({"provider": "local"})).await;
    assert_eq!(refused.status(), 429);
    assert!((1..=60).contains(&retry_after_secs(&refused)));
    assert!(
        refused.headers().get("set-cookie").is_none(),
        "no state cookie"
    );
    assert_eq!(better_auth_code(refused).await, "TOO_MANY_REQUESTS");
    // The plain-link form spends the same allowance.
    let refused = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(server.url("/api/auth/sign-in/social/local"))
        .header("x-forwarded-for", "198.51.100.7")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 429);
    assert_eq!(
        engine.pending_authorization_count(),
        3,
        "nothing stored when refused"
    );

    // Another client is not held back by the first.
    let other = start_sign_in(&server, "203.0.113.9", json!({"provider": "local"})).await;
    assert_eq!(other.status(), 200);
    assert_eq!(engine.pending_authorization_count(), 4);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_flows_are_capped_in_total_and_the_cap_frees_as_flows_end() {
    let provider = OidcProvider::start().await;
    let mut server = start_with_provider(&provider, |c| {
        c.server.trust_proxy = true;
        c.limits.max_pending_oauth_states = 3;
    })
    .await;
    for i in 0..3 {
        let ip = format!("192.0.2.{i}");
        let r = start_sign_in(&server, &ip, json!({"provider": "local"})).await;
        assert_eq!(r.status(), 200);
    }
    for i in 3..6 {
        let ip = format!("192.0.2.{i}");
        let refused = start_sign_in(&server, &ip, json!({"provider": "local"})).await;
        assert_eq!(refused.status(), 429);
        assert_eq!(retry_after_secs(&refused), 60);
        assert_eq!(better_auth_code(refused).await, "TOO_MANY_REQUESTS");
    }
    assert_eq!(
        server.engine().pending_authorization_count(),
        3,
        "nothing stored past the cap"
    );

    // A restart counts what is stored again: the cap still holds.
    server.restart().await;
    let refused = start_sign_in(&server, "192.0.2.77", json!({"provider": "local"})).await;
    assert_eq!(refused.status(), 429);
    assert_eq!(server.engine().pending_authorization_count(), 3);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_completed_flow_frees_its_pending_slot() {
    let provider = OidcProvider::start().await;
    let mut server = start_with_provider(&provider, |c| {
        c.limits.max_pending_oauth_states = 1;
    })
    .await;
    provider.set_user(TestUser::verified("ada"));
    for _ in 0..3 {
        let b = browser();
        let landed = oauth_sign_in(&server, &b, "local", json!({})).await;
        assert_eq!(landed.status(), 302);
        assert!(!get_session(&server, &b).await.is_null());
    }
    assert_eq!(server.engine().pending_authorization_count(), 0);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlong_callback_urls_are_refused_and_store_nothing() {
    let provider = OidcProvider::start().await;
    let mut server = start_with_provider(&provider, |c| {
        c.server.trust_proxy = true;
        c.limits.max_callback_url_bytes = 256;
    })
    .await;
    let long = format!("/{}", "a".repeat(300));
    for field in ["callbackURL", "errorCallbackURL", "newUserCallbackURL"] {
        let r = start_sign_in(
            &server,
            "192.0.2.1",
            json!({"provider": "local", field: long}),
        )
        .await;
        assert_eq!(r.status(), 403, "{field}");
        assert_eq!(better_auth_code(r).await, "INVALID_CALLBACK_URL");
    }
    assert_eq!(server.engine().pending_authorization_count(), 0);
    let fits = format!("/{}", "a".repeat(200));
    let r = start_sign_in(
        &server,
        "192.0.2.1",
        json!({"provider": "local", "callbackURL": fits}),
    )
    .await;
    assert_eq!(r.status(), 200);
    server.stop().await;
}

/// Signs in through the provider and returns the session cookie's value.
async fn signed_in_token(server: &TestServer, provider: &OidcProvider) -> String {
    provider.set_user(TestUser::verified("split"));
    let b = browser();
    let landed = oauth_sign_in(server, &b, "local", json!({})).await;
    set_cookie_value(&landed, "tachigo.session_token").expect("a session cookie")
}

/// get-session and sign-out with the session cookie in the second of two
/// `Cookie` fields, over the given client.
async fn split_cookies_are_read(server: &TestServer, client: &reqwest::Client, token: &str) {
    let get = || {
        client
            .get(server.url("/api/auth/get-session"))
            .header("cookie", "theme=dark; lang=en")
            .header("cookie", format!("tachigo.session_token={token}"))
    };
    let session: serde_json::Value = get().send().await.unwrap().json().await.unwrap();
    assert!(!session.is_null(), "the second Cookie field was read");

    let out = client
        .post(server.url("/api/auth/sign-out"))
        .header("origin", FRONTEND)
        .header("cookie", "theme=dark")
        .header("cookie", format!("tachigo.session_token={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 200);
    assert_eq!(
        set_cookie_value(&out, "tachigo.session_token").as_deref(),
        Some("")
    );
    let session: serde_json::Value = get().send().await.unwrap().json().await.unwrap();
    assert!(session.is_null(), "sign-out ended the session itself");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cookies_split_over_several_fields_are_read_over_http1_and_http2() {
    let provider = OidcProvider::start().await;
    let mut server = start_with_provider(&provider, |_| {}).await;

    let http1 = reqwest::Client::builder().http1_only().build().unwrap();
    let token = signed_in_token(&server, &provider).await;
    split_cookies_are_read(&server, &http1, &token).await;

    let http2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let probe = http2.get(server.url("/healthz")).send().await.unwrap();
    assert_eq!(probe.version(), reqwest::Version::HTTP_2);
    let token = signed_in_token(&server, &provider).await;
    split_cookies_are_read(&server, &http2, &token).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cookie_field_of_non_ascii_bytes_is_ignored_and_the_callback_still_redirects() {
    let provider = OidcProvider::start().await;
    let mut server = start_with_provider(&provider, |_| {}).await;
    let garbled =
        reqwest::header::HeaderValue::from_bytes(b"tachigo.oauth_state=\xff\xfe").unwrap();
    let landed = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(server.url("/api/auth/callback/local?state=unknown&code=x"))
        .header("cookie", garbled)
        .send()
        .await
        .unwrap();
    assert_eq!(landed.status(), 302);
    assert_eq!(
        support::query_param(&support::location(&landed), "error").as_deref(),
        Some("state_not_found")
    );
    server.stop().await;
}
