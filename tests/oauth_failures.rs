//! Every way an OAuth callback can fail lands on the error callback with the
//! right `?error=` code — never an intermediate page — and creates no user and
//! no session: provider refusal, spoiled id_tokens (tampered, wrong nonce,
//! audience or issuer, expired, missing, `alg: none`, HMAC with the client
//! secret, unknown key), replayed, missing, foreign and expired state, a missing
//! code, and a provider that is down.

mod support;

use serde_json::{json, Value};
use support::oidc_provider::{IdTokenFault, OidcProvider, TestUser};
use support::{
    better_auth_code, browser, get_session, location, oauth_sign_in, plain_client, query_param,
    set_cookie_value, set_cookies, social_sign_in, start_with_provider, through_provider,
    TestServer, FRONTEND,
};
use tachigo_engine::oauth_providers::PendingAuthorizations;
use tachigo_engine::opaque_token::hash_secret;
use tachigo_engine::PendingAuthorization;

/// Asserts a callback answer is a redirect to `error_page` with `?error=code`
/// that clears the state cookie and sets no session cookie.
fn assert_failed(landed: &reqwest::Response, error_page: &str, code: &str) {
    assert_eq!(landed.status(), 302, "always a redirect");
    let to = location(landed);
    assert!(to.starts_with(&format!("{error_page}?")), "{to}");
    assert_eq!(query_param(&to, "error").as_deref(), Some(code), "{to}");
    assert!(set_cookies(landed, "tachigo.session_token").is_empty());
    assert_eq!(
        set_cookie_value(landed, "tachigo.oauth_state").as_deref(),
        Some("")
    );
}

async fn assert_nothing_created(server: &TestServer) {
    let engine = server.engine();
    assert_eq!(engine.user_count().await.unwrap(), 0, "no user was created");
    assert_eq!(
        engine.pending_authorization_count(),
        0,
        "the state is used up"
    );
}

/// Starts a sign-in and returns the provider's authorization URL.
async fn start(server: &TestServer, b: &reqwest::Client, extra: Value) -> String {
    let mut body = json!({"provider": "local"});
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    let started = social_sign_in(server, b, body).await;
    assert_eq!(started.status(), 200);
    started.json::<Value>().await.unwrap()["url"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Starts a sign-in and lets the provider approve it; returns the callback URL
/// the browser would be sent to (not yet visited).
async fn approved_callback(server: &TestServer, b: &reqwest::Client) -> String {
    let authorize = start(server, b, json!({})).await;
    let at_provider = b.get(authorize).send().await.unwrap();
    location(&at_provider)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_at_the_provider_reaches_the_error_callback() {
    let provider = OidcProvider::start().await;
    let server = start_with_provider(&provider, |_| {}).await;
    provider.deny_next();
    let landed = oauth_sign_in(&server, &browser(), "local", json!({})).await;
    assert_failed(&landed, &format!("{FRONTEND}/auth/error"), "access_denied");
    assert_nothing_created(&server).await;
    assert_eq!(provider.token_requests(), 0, "no code was exchanged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_caller_chosen_error_callback_is_used() {
    let provider = OidcProvider::start().await;
    let server = start_with_provider(&provider, |_| {}).await;
    provider.deny_next();
    let landed = oauth_sign_in(
        &server,
        &browser(),
        "local",
        json!({"errorCallbackURL": "/sign-in?tab=social"}),
    )
    .await;
    assert_failed(&landed, &format!("{FRONTEND}/sign-in"), "access_denied");
    assert_eq!(
        query_param(&location(&landed), "tab").as_deref(),
        Some("social")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_spoiled_id_token_is_refused() {
    let provider = OidcProvider::start().await;
    let server = start_with_provider(&provider, |_| {}).await;
    for fault in [
        IdTokenFault::TamperedPayload,
        IdTokenFault::WrongNonce,
        IdTokenFault::WrongAudience,
        IdTokenFault::WrongIssuer,
        IdTokenFault::Expired,
        IdTokenFault::Missing,
        IdTokenFault::AlgNone,
        IdTokenFault::HmacWithClientSecret,
        IdTokenFault::UnknownKey,
    ] {
        provider.set_fault(fault);
        let b = browser();
        let landed = oauth_sign_in(&server, &b, "local", json!({})).await;
        assert_failed(
            &landed,
            &format!("{FRONTEND}/auth/error"),
            "invalid_id_token",
        );
        assert_nothing_created(&server).await;
        assert_eq!(get_session(&server, &b).await, Value::Null, "{fault:?}");
    }
    // The same provider, unspoiled, works: the refusals were about the tokens.
    provider.set_fault(IdTokenFault::None);
    let landed = oauth_sign_in(&server, &browser(), "local", json!({})).await;
    assert_eq!(location(&landed), format!("{FRONTEND}/dashboard"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_callback_finds_its_state_gone() {
    let provider = OidcProvider::start().await;
    let server = start_with_provider(&provider, |_| {}).await;
    let b = browser();
    let callback = approved_callback(&server, &b).await;
    let first = b.get(&callback).send().await.unwrap();
    assert_eq!(location(&first), format!("{FRONTEND}/dashboard"));
    let user_id = get_session(&server, &b).await["user"]["id"]
        .as_str()
        .unwrap()
        .to_string();

    // The same callback URL again, even with the state cookie of a fresh start.
    start(&server, &b, json!({})).await;
    let replayed = b.get(&callback).send().await.unwrap();
    assert_failed(
        &replayed,
        &format!("{FRONTEND}/auth/error"),
        "state_not_found",
    );
    let engine = server.engine();
    assert_eq!(engine.user_count().await.unwrap(), 1);
    assert_eq!(
        engine.stored_sessions(&user_id).await.unwrap().len(),
        1,
        "no second session"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callback_without_the_state_cookie_is_refused_and_burns_the_state() {
    let provider = OidcProvider::start().await;
    let server = start_with_provider(&provider, |_| {}).await;
    let b = browser();
    let callback = approved_callback(&server, &b).await;

    // Someone else's browser (no state cookie) presents the callback.
    let stolen = plain_client().get(&callback).send().await.unwrap();
    assert_failed(&stolen, &format!("{FRONTEND}/auth/error"), "state_mismatch");
    assert_nothing_created(&server).await;
    assert_eq!(provider.token_requests(), 0, "the code was never exchanged");

    // The rightful browser cannot complete it afterwards either.
    let late = b.get(&callback).send().await.unwrap();
    assert_failed(&late, &format!("{FRONTEND}/auth/error"), "state_not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callback_with_another_flows_state_cookie_is_refused() {
    let provider = OidcProvider::start().await;
    let server = start_with_provider(&provider, |_| {}).await;
    let victim = browser();
    let attacker = browser();
    let attackers_callback = approved_callback(&server, &attacker).await;
    start(&server, &victim, json!({})).await;
    // Login CSRF: the victim's browser is made to visit the attacker's callback.
    let landed = victim.get(&attackers_callback).send().await.unwrap();
    assert_failed(&landed, &format!("{FRONTEND}/auth/error"), "state_mismatch");
    assert_eq!(server.engine().user_count().await.unwrap(), 0);
    assert_eq!(get_session(&server, &victim).await, Value::Null);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callback_for_another_provider_is_refused() {
    let provider = OidcProvider::start().await;
    let server = start_with_provider(&provider, |config| {
        support::add_oidc_provider(config, "other", &provider);
    })
    .await;
    let b = browser();
    let callback = approved_callback(&server, &b).await;
    let other = callback.replace("/callback/local?", "/callback/other?");
    let landed = b.get(&other).send().await.unwrap();
    assert_failed(&landed, &format!("{FRONTEND}/auth/error"), "state_mismatch");
    assert_nothing_created(&server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_state_is_refused() {
    let provider = OidcProvider::start().await;
    let server = start_with_provider(&provider, |_| {}).await;
    let cookie = "a-browser-binding-secret";
    let now = server.engine().now();
    let record = PendingAuthorization {
        provider: "local".into(),
        pkce_verifier: "v".repeat(43),
        nonce: Some("n".into()),
        binding_hash: hash_secret(cookie.as_bytes()),
        callback_url: format!("{FRONTEND}/dashboard"),
        error_callback_url: format!("{FRONTEND}/expired-here"),
        new_user_callback_url: None,
        link_user_id: None,
        link_session_id: None,
        created_at: now - 11 * 60 * 1000,
        expires_at: now - 60 * 1000,
    };
    let saved = PendingAuthorizations::new(server.engine(), 10)
        .save("an-old-state", &record)
        .await
        .unwrap();
    assert!(saved);
    let landed = plain_client()
        .get(server.url("/api/auth/callback/local?code=whatever&state=an-old-state"))
        .header("cookie", format!("tachigo.oauth_state={cookie}"))
        .send()
        .await
        .unwrap();
    assert_failed(
        &landed,
        &format!("{FRONTEND}/expired-here"),
        "state_expired",
    );
    assert_nothing_created(&server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callback_without_state_or_code_is_refused() {
    let provider = OidcProvider::start().await;
    let server = start_with_provider(&provider, |_| {}).await;
    let b = browser();

    let no_state = b
        .get(server.url("/api/auth/callback/local?code=abc"))
        .send()
        .await
        .unwrap();
    assert_failed(
        &no_state,
        &format!("{FRONTEND}/auth/error"),
        "state_not_found",
    );

    let unknown = b
        .get(server.url("/api/auth/callback/nope?code=abc&state=made-up"))
        .send()
        .await
        .unwrap();
    assert_failed(
        &unknown,
        &format!("{FRONTEND}/auth/error"),
        "state_not_found",
    );

    let callback = approved_callback(&server, &b).await;
    let mut without_code = url::Url::parse(&callback).unwrap();
    let state = query_param(&callback, "state").unwrap();
    without_code
        .query_pairs_mut()
        .clear()
        .append_pair("state", &state);
    let landed = b.get(without_code).send().await.unwrap();
    assert_failed(&landed, &format!("{FRONTEND}/auth/error"), "no_code");
    assert_nothing_created(&server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_that_went_down_mid_flow_is_reported_as_unavailable() {
    let mut provider = OidcProvider::start().await;
    let server = start_with_provider(&provider, |_| {}).await;
    let b = browser();
    let callback = approved_callback(&server, &b).await;
    provider.stop().await;
    let landed = b.get(&callback).send().await.unwrap();
    assert_failed(
        &landed,
        &format!("{FRONTEND}/auth/error"),
        "provider_unavailable",
    );
    assert_nothing_created(&server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_down_before_sign_in_is_a_502() {
    let mut provider = OidcProvider::start().await;
    let server = start_with_provider(&provider, |_| {}).await;
    provider.stop().await;
    let response = social_sign_in(&server, &browser(), json!({"provider": "local"})).await;
    assert_eq!(response.status(), 502);
    assert!(set_cookies(&response, "tachigo.oauth_state").is_empty());
    assert_eq!(better_auth_code(response).await, "PROVIDER_UNAVAILABLE");
    assert_eq!(server.engine().pending_authorization_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_the_provider_refuses_is_an_invalid_code() {
    let provider = OidcProvider::start().await;
    let server = start_with_provider(&provider, |_| {}).await;
    let b = browser();
    let callback = approved_callback(&server, &b).await;
    let mut forged = url::Url::parse(&callback).unwrap();
    let state = query_param(&callback, "state").unwrap();
    forged
        .query_pairs_mut()
        .clear()
        .append_pair("code", "a-code-the-provider-never-issued")
        .append_pair("state", &state);
    let landed = b.get(forged).send().await.unwrap();
    assert_failed(&landed, &format!("{FRONTEND}/auth/error"), "invalid_code");
    assert_nothing_created(&server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_email_owned_by_another_user_is_not_joined_without_the_linking_rule() {
    let provider = OidcProvider::start().await;
    let server = start_with_provider(&provider, |config| {
        support::add_oidc_provider(config, "other", &provider);
    })
    .await;
    provider.set_user(TestUser::verified("first"));
    oauth_sign_in(&server, &browser(), "local", json!({})).await;

    // Same verified email, another provider that is not trusted.
    provider.set_user(TestUser {
        sub: "second".into(),
        ..TestUser::verified("first")
    });
    let b = browser();
    let authorize = {
        let started = social_sign_in(&server, &b, json!({"provider": "other"})).await;
        started.json::<Value>().await.unwrap()["url"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let landed = through_provider(&b, &authorize).await;
    assert_failed(
        &landed,
        &format!("{FRONTEND}/auth/error"),
        "account_not_linked",
    );
    assert_eq!(server.engine().user_count().await.unwrap(), 1);
}
