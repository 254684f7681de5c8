//! Starting a sign-in: no open redirects (every spelling of a foreign
//! destination in `callbackURL`, `errorCallbackURL` or `newUserCallbackURL` is
//! 403 `INVALID_CALLBACK_URL`, on the POST and the plain-link GET, with nothing
//! stored and no cookie set), unknown providers are 404 `PROVIDER_NOT_FOUND`,
//! and bad bodies get Better Auth-shaped errors.

mod support;

use serde_json::{json, Value};
use support::oidc_provider::OidcProvider;
use support::{
    better_auth_code, browser, plain_client, set_cookies, social_sign_in, start_with_provider,
    FRONTEND,
};

const OPEN_REDIRECTS: &[&str] = &[
    "//evil.example",
    "//evil.example/dashboard",
    "///evil.example",
    "/\\evil.example",
    "\\\\evil.example",
    "/%2F%2Fevil.example",
    "/%2f%2fevil.example",
    "/%5Cevil.example",
    "/%252F%252Fevil.example",
    "%2F%2Fevil.example",
    "/\t/evil.example",
    "https://evil.example",
    "https://evil.example/dashboard",
    "http://localhost:3000.evil.example/",
    "https://trusted.example.evil.example",
    "http://localhost:3000@evil.example/",
    "http://evil.example@localhost:3000/",
    "http://evil.example#@localhost:3000",
    "https://localhost:3000/",
    "javascript:alert(document.cookie)",
    "JAVASCRIPT:alert(1)",
    "data:text/html;base64,PHNjcmlwdD4=",
    "evil.example",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_open_redirect_form_is_refused_on_every_callback_field() {
    let provider = OidcProvider::start().await;
    let server = start_with_provider(&provider, |_| {}).await;
    let b = browser();
    for field in ["callbackURL", "errorCallbackURL", "newUserCallbackURL"] {
        for bad in OPEN_REDIRECTS {
            let response =
                social_sign_in(&server, &b, json!({"provider": "local", field: bad})).await;
            assert_eq!(response.status(), 403, "{field} = {bad:?}");
            assert!(set_cookies(&response, "tachigo.oauth_state").is_empty());
            assert_eq!(
                better_auth_code(response).await,
                "INVALID_CALLBACK_URL",
                "{field} = {bad:?}"
            );
        }
    }
    assert_eq!(
        server.engine().pending_authorization_count(),
        0,
        "nothing was stored"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_plain_link_refuses_open_redirects_too() {
    let provider = OidcProvider::start().await;
    let server = start_with_provider(&provider, |_| {}).await;
    for bad in OPEN_REDIRECTS {
        let mut url = url::Url::parse(&server.url("/api/auth/sign-in/social/local")).unwrap();
        url.query_pairs_mut().append_pair("callbackURL", bad);
        let response = plain_client().get(url).send().await.unwrap();
        assert_eq!(response.status(), 403, "{bad:?}");
        assert_eq!(better_auth_code(response).await, "INVALID_CALLBACK_URL");
    }
    assert_eq!(server.engine().pending_authorization_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relative_paths_and_trusted_origins_are_accepted() {
    let provider = OidcProvider::start().await;
    let server = start_with_provider(&provider, |config| {
        config
            .server
            .trusted_origins
            .push("https://dashboard.tachigo.test".into());
    })
    .await;
    for good in [
        "/dashboard",
        "/watch?v=1&t=2#chat",
        "/next?to=%2Fhome",
        FRONTEND,
        "http://localhost:3000/settings",
        "https://dashboard.tachigo.test/home",
    ] {
        let response = social_sign_in(
            &server,
            &browser(),
            json!({"provider": "local", "callbackURL": good}),
        )
        .await;
        assert_eq!(response.status(), 200, "{good:?}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["redirect"], true);
        assert!(body["url"].as_str().unwrap().starts_with(&provider.issuer));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_providers_are_404() {
    let provider = OidcProvider::start().await;
    let server = start_with_provider(&provider, |_| {}).await;
    let post = social_sign_in(&server, &browser(), json!({"provider": "github"})).await;
    assert_eq!(post.status(), 404);
    assert_eq!(better_auth_code(post).await, "PROVIDER_NOT_FOUND");
    let get = plain_client()
        .get(server.url("/api/auth/sign-in/social/github"))
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), 404);
    assert_eq!(better_auth_code(get).await, "PROVIDER_NOT_FOUND");
    assert_eq!(server.engine().pending_authorization_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disable_redirect_and_unsupported_requests() {
    let provider = OidcProvider::start().await;
    let server = start_with_provider(&provider, |_| {}).await;
    let b = browser();

    let no_redirect = social_sign_in(
        &server,
        &b,
        json!({"provider": "local", "disableRedirect": true}),
    )
    .await;
    assert_eq!(
        no_redirect.json::<Value>().await.unwrap()["redirect"],
        false
    );

    let id_token = social_sign_in(
        &server,
        &b,
        json!({"provider": "local", "idToken": {"token": "x"}}),
    )
    .await;
    assert_eq!(id_token.status(), 400);
    assert_eq!(better_auth_code(id_token).await, "ID_TOKEN_NOT_SUPPORTED");

    let bad_scope = social_sign_in(
        &server,
        &b,
        json!({"provider": "local", "scopes": ["two words"]}),
    )
    .await;
    assert_eq!(bad_scope.status(), 400);
    assert_eq!(better_auth_code(bad_scope).await, "INVALID_SCOPE");

    let extra_scope = social_sign_in(
        &server,
        &b,
        json!({"provider": "local", "scopes": ["offline_access"]}),
    )
    .await;
    let url = extra_scope.json::<Value>().await.unwrap()["url"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        support::query_param(&url, "scope").as_deref(),
        Some("openid email profile offline_access")
    );

    let hinted = social_sign_in(
        &server,
        &b,
        json!({"provider": "local", "loginHint": "viewer@example.com"}),
    )
    .await;
    let url = hinted.json::<Value>().await.unwrap()["url"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        support::query_param(&url, "login_hint").as_deref(),
        Some("viewer@example.com")
    );
    let bad_hint = social_sign_in(
        &server,
        &b,
        json!({"provider": "local", "loginHint": "a\nb"}),
    )
    .await;
    assert_eq!(bad_hint.status(), 400);
    assert_eq!(better_auth_code(bad_hint).await, "INVALID_LOGIN_HINT");

    let malformed = b
        .post(server.url("/api/auth/sign-in/social"))
        .header("content-type", "application/json")
        .body("{\"provider\":")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), 400);
    assert_eq!(better_auth_code(malformed).await, "INVALID_BODY");
    let missing_provider = social_sign_in(&server, &b, json!({"callbackURL": "/x"})).await;
    assert_eq!(missing_provider.status(), 400);
    let not_json = b
        .post(server.url("/api/auth/sign-in/social"))
        .header("content-type", "text/plain")
        .body("provider=local")
        .send()
        .await
        .unwrap();
    assert_eq!(not_json.status(), 415);
    let unknown = plain_client()
        .get(server.url("/api/auth/nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    assert_eq!(better_auth_code(unknown).await, "NOT_FOUND");
}
