//! The OAuth 2.1 authorization server (`/oauth2/*`, `docs/contracts/oauth2.md`)
//! against callers that break the rules, as raw HTTP: PKCE left out or
//! downgraded, wrong verifiers, unknown clients and unregistered redirect
//! URIs (never redirected to), sign-in redirects, replayed and stolen codes,
//! refresh tokens of another client or of the dashboard, device polling too
//! fast, denied and forged device approvals, introspection without the
//! service's secret, bodies that are too big, garbled or of the wrong type,
//! grants the server does not have, expired codes and the start limits. Each
//! refusal is checked for its status and `error`, and for leaving alone what
//! the contract says it leaves alone.

mod support;

use std::time::Duration;

use serde_json::Value;
use support::oauth2::*;
use support::{
    browser, dashboard_login, dashboard_refresh_with, plain_client, query_param,
    refresh_cookie_value, FRONTEND,
};
use tachigo_engine::config::ConfigDuration;

/// The 400 page of a request that must not be redirected anywhere.
async fn assert_error_page(response: reqwest::Response, code: &str, what: &str) {
    assert_eq!(response.status(), 400, "{what}");
    assert!(
        location_of(&response).is_none(),
        "{what}: never redirected, got Location {:?}",
        location_of(&response)
    );
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    assert!(
        content_type.starts_with("text/html"),
        "{what}: {content_type}"
    );
    let html = response.text().await.unwrap();
    assert!(html.contains(code), "{what}: the page names {code}: {html}");
}

/// A change to an authorization request's query.
type ParamChange = dyn Fn(&mut Params);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pkce_is_required_and_only_s256_is_accepted() {
    let mut server = start().await;
    let user = sign_up(&server, "pkce@example.com").await;
    let redirect = loopback(random_port());
    let pkce = Pkce::new();
    let sessions_before = stored_session_ids(&server, &user.id).await;

    let cases: Vec<(&str, Box<ParamChange>)> = vec![
        (
            "no code_challenge",
            Box::new(|p| remove_param(p, "code_challenge")),
        ),
        (
            "no code_challenge_method",
            Box::new(|p| remove_param(p, "code_challenge_method")),
        ),
        (
            "method plain",
            Box::new(|p| set_param(p, "code_challenge_method", "plain")),
        ),
        (
            "method s256 in lower case",
            Box::new(|p| set_param(p, "code_challenge_method", "s256")),
        ),
        (
            "a short challenge",
            Box::new(|p| set_param(p, "code_challenge", "abc")),
        ),
        (
            "a 44-character challenge",
            Box::new(|p| set_param(p, "code_challenge", &"A".repeat(44))),
        ),
        (
            "a challenge outside base64url",
            Box::new(|p| set_param(p, "code_challenge", &format!("{}+", "A".repeat(42)))),
        ),
        (
            "a repeated parameter",
            Box::new(|p| {
                p.push(("scope".into(), "openid".into()));
                p.push(("scope".into(), "email".into()));
            }),
        ),
        (
            "a nonce over 512 bytes",
            Box::new(|p| set_param(p, "nonce", &"n".repeat(513))),
        ),
    ];
    for (what, change) in cases {
        let state = random_string();
        let mut params = authorize_params(NATIVE, &redirect, &pkce, &state);
        change(&mut params);
        let r = authorize(&server, &user.browser, &params).await;
        let error = redirect_error(&server, &r, &redirect, &state);
        assert_eq!(error, "invalid_request", "{what}");
    }

    // A state over 512 bytes: refused too (whether or not it is echoed).
    let long_state = "s".repeat(513);
    let params = authorize_params(NATIVE, &redirect, &pkce, &long_state);
    let r = authorize(&server, &user.browser, &params).await;
    assert_eq!(r.status(), 302);
    let to = location_of(&r).unwrap();
    assert!(to.starts_with(&format!("{redirect}?")), "{to}");
    assert_eq!(
        query_param(&to, "error").as_deref(),
        Some("invalid_request")
    );
    assert_eq!(query_param(&to, "code"), None);

    assert_eq!(stored_session_ids(&server, &user.id).await, sessions_before);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_verifier_is_refused_and_the_right_one_still_redeems_the_code_once() {
    let mut server = start().await;
    let user = sign_up(&server, "verifier@example.com").await;
    let port = random_port();
    let redirect = loopback(port);
    let pkce = Pkce::new();
    let code = code_for(&server, &user, NATIVE, &redirect, &pkce, None).await;
    let sessions_before = stored_session_ids(&server, &user.id).await;

    let wrong = Pkce::new().verifier;
    let r = redeem(&server, NATIVE, &code, &redirect, &wrong).await;
    assert_eq!(
        oauth_error(r, 400).await,
        "invalid_grant",
        "a wrong verifier"
    );
    // The challenge itself is not the verifier.
    let r = redeem(&server, NATIVE, &code, &redirect, &pkce.challenge).await;
    assert_eq!(
        oauth_error(r, 400).await,
        "invalid_grant",
        "the challenge as verifier"
    );
    // Another redirect URI: another path, another port.
    let r = redeem(&server, NATIVE, &code, NATIVE_APP_REDIRECT, &pkce.verifier).await;
    assert_eq!(
        oauth_error(r, 400).await,
        "invalid_grant",
        "another redirect URI"
    );
    let r = redeem(&server, NATIVE, &code, &loopback(port + 1), &pkce.verifier).await;
    assert_eq!(
        oauth_error(r, 400).await,
        "invalid_grant",
        "another loopback port"
    );
    let r = redeem(&server, NATIVE, "not-a-code", &redirect, &pkce.verifier).await;
    assert_eq!(
        oauth_error(r, 400).await,
        "invalid_grant",
        "an unknown code"
    );
    assert_eq!(stored_session_ids(&server, &user.id).await, sessions_before);

    let t = tokens(redeem(&server, NATIVE, &code, &redirect, &pkce.verifier).await).await;
    assert_eq!(userinfo(&server, &t.access).await.status(), 200);

    // Leaving the verifier out is no way around PKCE.
    let pkce = Pkce::new();
    let code = code_for(&server, &user, NATIVE, &redirect, &pkce, None).await;
    let r = token_as(
        &server,
        NATIVE,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", &redirect),
        ],
    )
    .await;
    let error = oauth_error(r, 400).await;
    assert!(
        error == "invalid_request" || error == "invalid_grant",
        "no verifier: {error}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_clients_and_unregistered_redirects_get_a_page_and_no_redirect() {
    let mut server = start().await;
    let user = sign_up(&server, "redirects@example.com").await;
    let pkce = Pkce::new();
    let port = random_port();
    let good = loopback(port);
    let sessions_before = stored_session_ids(&server, &user.id).await;

    let mut cases: Vec<(String, Params, &str)> = Vec::new();
    let mut add =
        |what: &str, client_id: Option<&str>, redirect: Option<&str>, code: &'static str| {
            let mut params =
                authorize_params(client_id.unwrap_or(""), redirect.unwrap_or(""), &pkce, "st");
            if client_id.is_none() {
                remove_param(&mut params, "client_id");
            }
            if redirect.is_none() {
                remove_param(&mut params, "redirect_uri");
            }
            cases.push((what.to_string(), params, code));
        };
    add(
        "an unknown client",
        Some("unknown-app"),
        Some(&good),
        "invalid_client",
    );
    add("no client_id", None, Some(&good), "invalid_client");
    add(
        "an empty client_id",
        Some(""),
        Some(&good),
        "invalid_client",
    );
    add(
        "no redirect_uri",
        Some(NATIVE),
        None,
        "invalid_redirect_uri",
    );
    add(
        "no redirect_uri, one registered",
        Some(MOBILE),
        None,
        "invalid_redirect_uri",
    );
    let other_path = format!("http://127.0.0.1:{port}/other");
    add(
        "another loopback path",
        Some(NATIVE),
        Some(&other_path),
        "invalid_redirect_uri",
    );
    let localhost = format!("http://localhost:{port}/callback");
    add(
        "localhost",
        Some(NATIVE),
        Some(&localhost),
        "invalid_redirect_uri",
    );
    let v6 = format!("http://[::1]:{port}/callback");
    add(
        "an unregistered loopback host",
        Some(NATIVE),
        Some(&v6),
        "invalid_redirect_uri",
    );
    let with_query = format!("{good}?next=1");
    add(
        "an added query",
        Some(NATIVE),
        Some(&with_query),
        "invalid_redirect_uri",
    );
    let with_fragment = format!("{good}#x");
    add(
        "a fragment",
        Some(NATIVE),
        Some(&with_fragment),
        "invalid_redirect_uri",
    );
    add(
        "another host",
        Some(NATIVE),
        Some("https://evil.example/callback"),
        "invalid_redirect_uri",
    );
    add(
        "https loopback",
        Some(NATIVE),
        Some(&format!("https://127.0.0.1:{port}/callback")),
        "invalid_redirect_uri",
    );
    add(
        "a longer private-use path",
        Some(NATIVE),
        Some("com.tachigo.desktop:/oauth2redirect/more"),
        "invalid_redirect_uri",
    );
    add(
        "not a URI",
        Some(NATIVE),
        Some("::::"),
        "invalid_redirect_uri",
    );
    add(
        "a redirect of another client",
        Some(NATIVE),
        Some(MOBILE_REDIRECT),
        "invalid_redirect_uri",
    );
    add(
        "a loopback of another client",
        Some(MOBILE),
        Some(&good),
        "invalid_redirect_uri",
    );
    add(
        "the extension's redirect for the service",
        Some(SERVICE),
        Some(EXTENSION_REDIRECT),
        "invalid_redirect_uri",
    );
    // The client and redirect checks come before every other one.
    let mut token_type = authorize_params("unknown-app", &good, &pkce, "st");
    set_param(&mut token_type, "response_type", "token");
    cases.push((
        "an unknown client asking for a token".into(),
        token_type,
        "invalid_client",
    ));
    let mut no_pkce = authorize_params(NATIVE, "https://evil.example/cb", &pkce, "st");
    remove_param(&mut no_pkce, "code_challenge");
    cases.push((
        "no PKCE and a foreign redirect".into(),
        no_pkce,
        "invalid_redirect_uri",
    ));

    for (what, params, code) in &cases {
        let r = authorize(&server, &user.browser, params).await;
        assert_error_page(r, code, what).await;
    }
    // Without a session it is the same page (no detour through sign-in).
    let r = authorize(&server, &browser(), &cases[0].1).await;
    assert_error_page(r, "invalid_client", "unknown client, no session").await;
    let r = authorize(&server, &browser(), &cases[3].1).await;
    assert_error_page(r, "invalid_redirect_uri", "no redirect_uri, no session").await;

    assert_eq!(stored_session_ids(&server, &user.id).await, sessions_before);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_problems_are_redirected_back_with_the_error() {
    let mut server = start().await;
    let user = sign_up(&server, "redirected@example.com").await;
    let redirect = loopback(random_port());
    let pkce = Pkce::new();

    let state = random_string();
    let mut params = authorize_params(NATIVE, &redirect, &pkce, &state);
    set_param(&mut params, "response_type", "token");
    let r = authorize(&server, &user.browser, &params).await;
    assert_eq!(
        redirect_error(&server, &r, &redirect, &state),
        "unsupported_response_type"
    );
    let to = location_of(&r).unwrap();
    assert!(!to.contains('#') && !to.contains("access_token"), "{to}");

    for (client, redirect_uri, scope) in [
        (NATIVE, redirect.as_str(), "openid admin"),
        (
            NATIVE,
            redirect.as_str(),
            "openid profile email offline_access address",
        ),
        (MOBILE, MOBILE_REDIRECT, "openid email"),
    ] {
        let state = random_string();
        let mut params = authorize_params(client, redirect_uri, &pkce, &state);
        set_param(&mut params, "scope", scope);
        let r = authorize(&server, &user.browser, &params).await;
        assert_eq!(
            redirect_error(&server, &r, redirect_uri, &state),
            "invalid_scope",
            "{client} asking for {scope}"
        );
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prompt_none_without_a_session_is_login_required() {
    let mut server = start().await;
    let redirect = loopback(random_port());
    let pkce = Pkce::new();
    let state = random_string();
    let mut params = authorize_params(NATIVE, &redirect, &pkce, &state);
    set_param(&mut params, "prompt", "none");
    let r = authorize(&server, &browser(), &params).await;
    assert_eq!(
        redirect_error(&server, &r, &redirect, &state),
        "login_required"
    );

    // With a session, prompt=none is simply a code.
    let user = sign_up(&server, "silent@example.com").await;
    let r = authorize(&server, &user.browser, &params).await;
    let code = code_from(&server, &r, &redirect, &state);
    tokens(redeem(&server, NATIVE, &code, &redirect, &pkce.verifier).await).await;
    server.stop().await;
}

/// The sign-in redirect: returns the `callbackURL`.
fn sign_in_redirect(response: &reqwest::Response, sign_in_url: &str) -> String {
    assert_eq!(response.status(), 302, "to the sign-in page");
    let to = location_of(response).unwrap();
    assert!(
        to.starts_with(&format!("{sign_in_url}?")),
        "to {sign_in_url}, got {to}"
    );
    query_param(&to, "callbackURL").unwrap_or_else(|| panic!("a callbackURL in {to}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_session_the_browser_signs_in_and_comes_back() {
    let mut server = start().await;
    let iss = issuer(&server);
    let redirect = loopback(random_port());
    let pkce = Pkce::new();
    let state = random_string();
    let mut params = authorize_params(NATIVE, &redirect, &pkce, &state);
    set_param(&mut params, "scope", "openid email");
    set_param(&mut params, "nonce", "n-0S6_WzA2Mj");

    let visitor = browser();
    let r = authorize(&server, &visitor, &params).await;
    let callback = sign_in_redirect(&r, &format!("{FRONTEND}/sign-in"));
    assert!(
        callback.starts_with(&format!("{iss}/oauth2/authorize?")),
        "back to authorize: {callback}"
    );
    for (key, value) in &params {
        assert_eq!(
            query_param(&callback, key).as_deref(),
            Some(value.as_str()),
            "{key} in {callback}"
        );
    }
    // A session cookie that is no session is no session.
    let r = plain_client()
        .get(authorize_url(&server, &params))
        .header("cookie", format!("{SESSION_COOKIE}=garbage.value"))
        .send()
        .await
        .unwrap();
    sign_in_redirect(&r, &format!("{FRONTEND}/sign-in"));

    // The visitor signs up in that browser and the frontend sends them back.
    let r = visitor
        .post(server.url("/api/auth/sign-up/email"))
        .header("origin", FRONTEND)
        .json(&serde_json::json!({
            "name": USER_NAME, "email": "back@example.com", "password": support::DASHBOARD_PASSWORD
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = visitor.get(&callback).send().await.unwrap();
    let code = code_from(&server, &r, &redirect, &state);
    let t = tokens(redeem(&server, NATIVE, &code, &redirect, &pkce.verifier).await).await;
    let id = verify_with_jwks(&server, t.id_token.as_deref().unwrap(), NATIVE).await;
    assert_eq!(id["nonce"], "n-0S6_WzA2Mj");
    assert_eq!(id["email"], "back@example.com");

    // prompt=login sends even a signed-in browser to sign in, and the way
    // back no longer asks for it.
    let state = random_string();
    let mut params = authorize_params(NATIVE, &redirect, &pkce, &state);
    set_param(&mut params, "prompt", "login");
    let r = authorize(&server, &visitor, &params).await;
    let callback = sign_in_redirect(&r, &format!("{FRONTEND}/sign-in"));
    assert_eq!(query_param(&callback, "prompt"), None, "{callback}");
    let r = visitor.get(&callback).send().await.unwrap();
    code_from(&server, &r, &redirect, &state);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sign_in_page_is_configurable() {
    let sign_in = "http://localhost:3000/auth/login";
    let mut server = start_with(|c| c.oauth2.sign_in_url = sign_in.into()).await;
    let redirect = loopback(random_port());
    let params = authorize_params(NATIVE, &redirect, &Pkce::new(), "st");
    let r = authorize(&server, &browser(), &params).await;
    let callback = sign_in_redirect(&r, sign_in);
    assert!(callback.starts_with(&format!("{}/oauth2/authorize?", issuer(&server))));

    // The device page sends a visitor there too, with the code kept.
    let r = device_page(&server, &browser(), "BCDF-GHJK").await;
    let callback = sign_in_redirect(&r, sign_in);
    assert!(
        callback.starts_with(&format!("{}/oauth2/device?", issuer(&server))),
        "{callback}"
    );
    assert_eq!(
        query_param(&callback, "user_code").as_deref(),
        Some("BCDF-GHJK")
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_code_is_refused_and_revokes_what_the_first_redemption_made() {
    let mut server = start().await;
    let user = sign_up(&server, "replay@example.com").await;
    let redirect = loopback(random_port());
    let pkce = Pkce::new();
    let code = code_for(&server, &user, NATIVE, &redirect, &pkce, None).await;
    let first = tokens(redeem(&server, NATIVE, &code, &redirect, &pkce.verifier).await).await;
    assert!(stored_session_ids(&server, &user.id)
        .await
        .contains(&first.sid));

    let r = redeem(&server, NATIVE, &code, &redirect, &pkce.verifier).await;
    assert_eq!(
        oauth_error(r, 400).await,
        "invalid_grant",
        "the second redemption"
    );

    let r = refresh(&server, NATIVE, &first.refresh).await;
    assert_eq!(
        oauth_error(r, 400).await,
        "invalid_grant",
        "the first refresh token"
    );
    assert_invalid_token(&userinfo(&server, &first.access).await);
    assert_eq!(introspect(&server, &first.access).await["active"], false);
    assert!(
        !stored_session_ids(&server, &user.id)
            .await
            .contains(&first.sid),
        "the session is gone"
    );
    if let Some((_, revoked)) = family_generation(&server, &first.sid).await {
        assert!(revoked, "the family is kept revoked");
    }
    // A third try changes nothing either.
    let r = redeem(&server, NATIVE, &code, &redirect, &pkce.verifier).await;
    assert_eq!(oauth_error(r, 400).await, "invalid_grant");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_redeemed_by_another_client_is_refused_and_stays_usable() {
    let mut server = start().await;
    let user = sign_up(&server, "stolen@example.com").await;
    let redirect = loopback(random_port());
    let pkce = Pkce::new();
    let code = code_for(&server, &user, NATIVE, &redirect, &pkce, None).await;
    let sessions_before = stored_session_ids(&server, &user.id).await;

    for thief in [MOBILE, SERVICE] {
        let r = redeem(&server, thief, &code, &redirect, &pkce.verifier).await;
        assert_eq!(
            oauth_error(r, 400).await,
            "invalid_grant",
            "redeemed by {thief}"
        );
    }
    let r = post_form(
        &server,
        "/oauth2/token",
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", &redirect),
            ("code_verifier", &pkce.verifier),
            ("client_id", "nobody-at-all"),
        ],
    )
    .await;
    let status = r.status().as_u16();
    assert!(
        status == 400 || status == 401,
        "an unknown client: {status}"
    );
    assert_eq!(oauth_error(r, status).await, "invalid_client");
    // No client at all.
    let r = post_form(
        &server,
        "/oauth2/token",
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", &redirect),
            ("code_verifier", &pkce.verifier),
        ],
    )
    .await;
    let status = r.status().as_u16();
    assert!(status == 400 || status == 401, "no client: {status}");
    let error = oauth_error(r, status).await;
    assert!(
        error == "invalid_client" || error == "invalid_request",
        "no client: {error}"
    );
    assert_eq!(stored_session_ids(&server, &user.id).await, sessions_before);

    let t = tokens(redeem(&server, NATIVE, &code, &redirect, &pkce.verifier).await).await;
    assert_eq!(jwt_claims(&t.access)["client_id"], NATIVE);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_token_of_another_client_is_refused_and_changes_nothing() {
    let mut server = start().await;
    let user = sign_up(&server, "crossed@example.com").await;
    let a = sign_in_app(&server, &user, NATIVE, &loopback(random_port()), None).await;
    let before = family_generation(&server, &a.sid).await;
    assert_eq!(before.map(|(_, revoked)| revoked), Some(false));

    for other in [MOBILE, SERVICE] {
        let r = refresh(&server, other, &a.refresh).await;
        assert_eq!(
            oauth_error(r, 400).await,
            "invalid_grant",
            "presented by {other}"
        );
        assert_eq!(
            family_generation(&server, &a.sid).await,
            before,
            "after {other}"
        );
    }
    // Nor at the dashboard.
    let r = dashboard_refresh_with(&server, &a.refresh).await;
    assert_eq!(r.status(), 401, "an app token at the dashboard");
    assert_eq!(family_generation(&server, &a.sid).await, before);

    let next = tokens(refresh(&server, NATIVE, &a.refresh).await).await;
    assert_ne!(next.refresh, a.refresh);
    assert_eq!(
        family_generation(&server, &a.sid).await,
        before.map(|(generation, _)| (generation + 1, false))
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dashboard_refresh_token_is_no_good_at_the_token_endpoint() {
    let mut server = start().await;
    let user = sign_up(&server, "dash@example.com").await;
    let r = dashboard_login(&server, &plain_client(), &user.email).await;
    assert_eq!(r.status(), 200);
    let dashboard_refresh = refresh_cookie_value(&r);
    let session = dashboard_refresh.split('.').next().unwrap().to_string();
    let before = family_generation(&server, &session).await;
    assert!(before.is_some());

    for client in [NATIVE, SERVICE] {
        let r = refresh(&server, client, &dashboard_refresh).await;
        assert_eq!(
            oauth_error(r, 400).await,
            "invalid_grant",
            "presented by {client}"
        );
        assert_eq!(family_generation(&server, &session).await, before);
    }
    let r = dashboard_refresh_with(&server, &dashboard_refresh).await;
    assert_eq!(r.status(), 200, "the dashboard session still refreshes");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polling_faster_than_the_interval_is_slow_down() {
    let mut server = start().await;
    let started = device_started(&server, NATIVE).await;
    assert_eq!(started["interval"], 1);
    let device_code = started["device_code"].as_str().unwrap();

    let r = device_poll(&server, NATIVE, device_code).await;
    assert_eq!(oauth_error(r, 400).await, "authorization_pending");
    let r = device_poll(&server, NATIVE, device_code).await;
    assert_eq!(
        oauth_error(r, 400).await,
        "slow_down",
        "at once after a poll"
    );
    // The interval grew by 5 s: a second later is still too soon.
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let r = device_poll(&server, NATIVE, device_code).await;
    assert_eq!(
        oauth_error(r, 400).await,
        "slow_down",
        "1.3 s later, interval 6 s"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_denied_device_request_is_access_denied() {
    let mut server = start().await;
    let user = sign_up(&server, "denies@example.com").await;
    let started = device_started(&server, NATIVE).await;
    let device_code = started["device_code"].as_str().unwrap();
    let user_code = started["user_code"].as_str().unwrap();
    let sessions_before = stored_session_ids(&server, &user.id).await;

    device_decision(&server, &user, user_code, "deny").await;
    let r = device_poll(&server, NATIVE, device_code).await;
    assert_eq!(oauth_error(r, 400).await, "access_denied");
    // The decision is final.
    let r = device_page(&server, &user.browser, user_code).await;
    assert_eq!(r.status(), 400, "a decided code is not offered again");
    assert_eq!(
        stored_session_ids(&server, &user.id).await,
        sessions_before,
        "no app session"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_device_page_refuses_forged_approvals() {
    let mut server = start().await;
    let iss = issuer(&server);
    let user = sign_up(&server, "owner@example.com").await;
    let other = sign_up(&server, "other@example.com").await;
    let started = device_started(&server, NATIVE).await;
    let device_code = started["device_code"].as_str().unwrap();
    let user_code = started["user_code"].as_str().unwrap();
    let sessions_before = stored_session_ids(&server, &user.id).await;

    // A visitor without a session is sent to sign in, and back here.
    let r = device_page(&server, &browser(), user_code).await;
    let callback = sign_in_redirect(&r, &format!("{FRONTEND}/sign-in"));
    assert!(
        callback.starts_with(&format!("{iss}/oauth2/device")),
        "{callback}"
    );
    assert_eq!(
        query_param(&callback, "user_code").as_deref(),
        Some(user_code)
    );

    let csrf = device_csrf(&server, &user, user_code).await;
    let others_csrf = device_csrf(&server, &other, user_code).await;
    let refused: Vec<(&str, &reqwest::Client, Option<&str>, Option<&str>)> = vec![
        ("no csrf", &user.browser, None, Some(iss.as_str())),
        (
            "a made-up csrf",
            &user.browser,
            Some("forged-token"),
            Some(iss.as_str()),
        ),
        (
            "another session's csrf",
            &user.browser,
            Some(others_csrf.as_str()),
            Some(iss.as_str()),
        ),
        (
            "a foreign origin",
            &user.browser,
            Some(csrf.as_str()),
            Some("https://evil.example"),
        ),
        (
            "a null origin",
            &user.browser,
            Some(csrf.as_str()),
            Some("null"),
        ),
        (
            "no origin nor referer",
            &user.browser,
            Some(csrf.as_str()),
            None,
        ),
    ];
    for (what, client, token, origin) in refused {
        let r = device_decide(&server, client, user_code, token, "approve", origin).await;
        assert!(r.status().is_client_error(), "{what}: {}", r.status());
    }
    // The csrf without the session it belongs to.
    let r = device_decide(
        &server,
        &browser(),
        user_code,
        Some(&csrf),
        "approve",
        Some(&iss),
    )
    .await;
    assert!(!r.status().is_success(), "no session: {}", r.status());

    let r = device_poll(&server, NATIVE, device_code).await;
    assert_eq!(
        oauth_error(r, 400).await,
        "authorization_pending",
        "nothing was approved"
    );
    assert_eq!(stored_session_ids(&server, &user.id).await, sessions_before);

    // A Referer on the server's own origin will do instead of an Origin.
    let r = user
        .browser
        .post(server.url("/oauth2/device"))
        .header(
            "referer",
            format!("{iss}/oauth2/device?user_code={user_code}"),
        )
        .form(&[
            ("user_code", user_code),
            ("csrf", csrf.as_str()),
            ("action", "approve"),
        ])
        .send()
        .await
        .unwrap();
    assert!(
        r.status().is_success() || r.status().is_redirection(),
        "approved with a Referer: {}",
        r.status()
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let t = tokens(device_poll(&server, NATIVE, device_code).await).await;
    assert_eq!(
        jwt_claims(&t.access)["sub"],
        user.id,
        "the owner's approval"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_device_grant_is_not_for_browser_extensions_or_strangers() {
    let mut server = start().await;
    let r = device_start(&server, EXTENSION).await;
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"],
        "unauthorized_client"
    );
    let r = device_start(&server, "nobody-at-all").await;
    assert!(
        r.status() == 400 || r.status() == 401,
        "an unknown client: {}",
        r.status()
    );
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_client");
    // A device code of one client is not another's.
    let started = device_started(&server, NATIVE).await;
    let r = device_poll(&server, MOBILE, started["device_code"].as_str().unwrap()).await;
    assert_eq!(oauth_error(r, 400).await, "invalid_grant");
    let r = device_poll(&server, NATIVE, "made-up-device-code").await;
    assert_eq!(oauth_error(r, 400).await, "invalid_grant");
    server.stop().await;
}

async fn introspect_with(request: reqwest::RequestBuilder, what: &str) {
    let r = request.send().await.unwrap();
    assert_eq!(r.status(), 401, "{what}");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client", "{what}: {body}");
    assert!(
        body.get("active").is_none(),
        "{what}: nothing about the token"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn introspection_needs_the_service_and_its_secret() {
    let mut server = start().await;
    let user = sign_up(&server, "intro@example.com").await;
    let t = sign_in_app(&server, &user, NATIVE, &loopback(random_port()), None).await;
    let url = server.url("/oauth2/introspect");
    let client = plain_client();
    let token = [("token", t.access.as_str())];

    introspect_with(client.post(&url).form(&token), "no authentication").await;
    introspect_with(
        client
            .post(&url)
            .basic_auth(SERVICE, Some("wrong-secret-wrong-secret-wrong-secret"))
            .form(&token),
        "a wrong secret",
    )
    .await;
    introspect_with(
        client
            .post(&url)
            .basic_auth(SERVICE, None::<&str>)
            .form(&token),
        "no secret",
    )
    .await;
    introspect_with(
        client.post(&url).form(&[
            ("token", t.access.as_str()),
            ("client_id", SERVICE),
            ("client_secret", "wrong"),
        ]),
        "a wrong client_secret",
    )
    .await;
    introspect_with(
        client
            .post(&url)
            .form(&[("token", t.access.as_str()), ("client_id", NATIVE)]),
        "a public client",
    )
    .await;
    introspect_with(
        client
            .post(&url)
            .basic_auth(NATIVE, Some(SERVICE_SECRET))
            .form(&token),
        "a public client with the service's secret",
    )
    .await;
    introspect_with(
        client
            .post(&url)
            .basic_auth("nobody-at-all", Some(SERVICE_SECRET))
            .form(&token),
        "an unknown client",
    )
    .await;
    assert_eq!(introspect(&server, &t.access).await["active"], true);

    // The token endpoint says the same, with the Basic challenge.
    let r = plain_client()
        .post(server.url("/oauth2/token"))
        .basic_auth(SERVICE, Some("wrong-secret-wrong-secret-wrong-secret"))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", "x")])
        .send()
        .await
        .unwrap();
    let challenge = r
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_string());
    assert_eq!(oauth_error(r, 401).await, "invalid_client");
    assert_eq!(challenge.as_deref(), Some("Basic realm=\"tachigo\""));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_another_clients_token_is_refused_and_changes_nothing() {
    let mut server = start().await;
    let user = sign_up(&server, "revokes@example.com").await;
    let t = sign_in_app(&server, &user, NATIVE, &loopback(random_port()), None).await;
    let before = family_generation(&server, &t.sid).await;
    for other in [MOBILE, SERVICE] {
        for token in [&t.refresh, &t.access] {
            let r = revoke(&server, other, token).await;
            assert_eq!(r.status(), 400, "{other}");
            assert_eq!(
                r.json::<Value>().await.unwrap()["error"],
                "unauthorized_client"
            );
        }
    }
    assert_eq!(family_generation(&server, &t.sid).await, before);
    assert_eq!(userinfo(&server, &t.access).await.status(), 200);
    tokens(refresh(&server, NATIVE, &t.refresh).await).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn userinfo_refuses_missing_forged_and_foreign_tokens() {
    let mut server = start().await;
    let user = sign_up(&server, "info@example.com").await;
    let t = sign_in_app(&server, &user, NATIVE, &loopback(random_port()), None).await;

    let r = plain_client()
        .get(server.url("/oauth2/userinfo"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "no token");
    let mut forged = t.access.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == 'A' { 'B' } else { 'A' });
    assert_invalid_token(&userinfo(&server, &forged).await);
    // A token whose payload was changed (another user) with the old signature.
    let mut parts: Vec<String> = t.access.split('.').map(str::to_string).collect();
    let mut claims = jwt_claims(&t.access);
    claims["sub"] = "someone-else".into();
    parts[1] = b64url(claims.to_string().as_bytes());
    assert_invalid_token(&userinfo(&server, &parts.join(".")).await);
    // A dashboard access token is not a client's.
    let dashboard = dashboard_access(&server, &user.email).await;
    assert_invalid_token(&userinfo(&server, &dashboard).await);
    assert_invalid_token(&userinfo(&server, &t.refresh).await);
    assert_eq!(userinfo(&server, &t.access).await.status(), 200);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_endpoint_takes_only_a_small_form() {
    let mut server = start().await;
    let user = sign_up(&server, "bodies@example.com").await;
    let redirect = loopback(random_port());
    let pkce = Pkce::new();
    let code = code_for(&server, &user, NATIVE, &redirect, &pkce, None).await;
    let sessions_before = stored_session_ids(&server, &user.id).await;
    let url = server.url("/oauth2/token");
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", redirect.as_str()),
        ("code_verifier", pkce.verifier.as_str()),
        ("client_id", NATIVE),
    ];
    let encoded = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();

    // Over 16 KiB, though a valid grant: refused, nothing redeemed.
    let big = format!("{encoded}&pad={}", "a".repeat(17 * 1024));
    let r = plain_client()
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(big)
        .send()
        .await
        .expect("an answer, not a dropped connection");
    let status = r.status().as_u16();
    assert!(status == 413 || status == 400, "oversized: {status}");
    if status == 400 {
        assert_eq!(oauth_error(r, 400).await, "invalid_request");
    }

    // Garbage of the right type.
    let mut garbage: Vec<u8> = (0..512).map(|_| rand::random::<u8>()).collect();
    garbage.extend_from_slice(b"&%ZZ&=&&code=%");
    let r = plain_client()
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(garbage)
        .send()
        .await
        .unwrap();
    assert_eq!(oauth_error(r, 400).await, "invalid_request", "garbage");

    // The grant as JSON, or as text: 415.
    let json_body: serde_json::Map<String, Value> = form
        .iter()
        .map(|(k, v)| (k.to_string(), Value::from(*v)))
        .collect();
    let r = plain_client()
        .post(&url)
        .json(&json_body)
        .send()
        .await
        .unwrap();
    assert_eq!(oauth_error(r, 415).await, "invalid_request", "JSON");
    let r = plain_client()
        .post(&url)
        .header("content-type", "text/plain")
        .body(encoded.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(oauth_error(r, 415).await, "invalid_request", "text/plain");
    let r = plain_client()
        .post(&url)
        .header("content-type", "multipart/form-data; boundary=x")
        .body("--x\r\nContent-Disposition: form-data; name=\"grant_type\"\r\n\r\nauthorization_code\r\n--x--\r\n")
        .send()
        .await
        .unwrap();
    assert_eq!(oauth_error(r, 415).await, "invalid_request", "multipart");

    assert_eq!(stored_session_ids(&server, &user.id).await, sessions_before);
    // The code was never consumed.
    let r = plain_client()
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(encoded)
        .send()
        .await
        .unwrap();
    tokens(r).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grants_the_server_does_not_have_are_refused() {
    let mut server = start().await;
    let user = sign_up(&server, "grants@example.com").await;
    let sessions_before = stored_session_ids(&server, &user.id).await;

    let r = token_as(&server, NATIVE, &[("grant_type", "urn:example:magic")]).await;
    assert_eq!(oauth_error(r, 400).await, "unsupported_grant_type");
    let r = token_as(&server, NATIVE, &[("grant_type", "implicit")]).await;
    assert_eq!(oauth_error(r, 400).await, "unsupported_grant_type");
    let r = token_as(&server, NATIVE, &[]).await;
    assert_eq!(
        oauth_error(r, 400).await,
        "invalid_request",
        "no grant_type"
    );

    for client in [NATIVE, SERVICE] {
        let r = token_as(
            &server,
            client,
            &[
                ("grant_type", "password"),
                ("username", &user.email),
                ("password", support::DASHBOARD_PASSWORD),
                ("scope", "openid"),
            ],
        )
        .await;
        let error = oauth_error(r, 400).await;
        assert!(
            error == "unsupported_grant_type" || error == "unauthorized_client",
            "password by {client}: {error}"
        );
        let r = token_as(&server, client, &[("grant_type", "client_credentials")]).await;
        let error = oauth_error(r, 400).await;
        assert!(
            error == "unsupported_grant_type" || error == "unauthorized_client",
            "client_credentials by {client}: {error}"
        );
    }
    assert_eq!(stored_session_ids(&server, &user.id).await, sessions_before);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_code_is_invalid_grant() {
    let mut server = start_with(|c| c.oauth2.code_ttl = ConfigDuration::from_secs(1)).await;
    let user = sign_up(&server, "late@example.com").await;
    let redirect = loopback(random_port());
    let pkce = Pkce::new();
    let code = code_for(&server, &user, NATIVE, &redirect, &pkce, None).await;
    let sessions_before = stored_session_ids(&server, &user.id).await;
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let r = redeem(&server, NATIVE, &code, &redirect, &pkce.verifier).await;
    assert_eq!(oauth_error(r, 400).await, "invalid_grant");
    assert_eq!(stored_session_ids(&server, &user.id).await, sessions_before);

    // A fresh one, redeemed in time, works.
    let code = code_for(&server, &user, NATIVE, &redirect, &pkce, None).await;
    tokens(redeem(&server, NATIVE, &code, &redirect, &pkce.verifier).await).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_device_code_is_expired_token() {
    let mut server = start_with(|c| c.oauth2.device_code_ttl = ConfigDuration::from_secs(1)).await;
    let user = sign_up(&server, "slow-tv@example.com").await;
    let started = device_started(&server, NATIVE).await;
    assert_eq!(started["expires_in"], 1);
    let device_code = started["device_code"].as_str().unwrap();
    let user_code = started["user_code"].as_str().unwrap();
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let r = device_page(&server, &user.browser, user_code).await;
    assert_eq!(r.status(), 400, "an expired code shows the form again");
    let r = device_poll(&server, NATIVE, device_code).await;
    assert_eq!(oauth_error(r, 400).await, "expired_token");
    server.stop().await;
}

async fn assert_too_many_starts(response: reqwest::Response, what: &str) {
    assert_eq!(response.status(), 429, "{what}");
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    assert!(
        retry_after
            .as_deref()
            .is_some_and(|s| s.parse::<u64>().is_ok()),
        "{what}: Retry-After {retry_after:?}"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "slow_down", "{what}: {body}");
    assert!(body.get("device_code").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_starts_are_limited_per_client_ip() {
    let mut server = start_with(|c| c.limits.device_starts_per_minute = 3).await;
    for _ in 0..3 {
        device_started(&server, NATIVE).await;
    }
    assert_too_many_starts(device_start(&server, NATIVE).await, "the 4th start").await;
    // Per IP, not per client.
    assert_too_many_starts(device_start(&server, SERVICE).await, "another client").await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_grants_are_bounded_in_total() {
    let mut server = start_with(|c| c.limits.max_pending_oauth2_grants = 2).await;
    device_started(&server, NATIVE).await;
    device_started(&server, MOBILE).await;
    assert_too_many_starts(device_start(&server, NATIVE).await, "a 3rd pending grant").await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_admits_configured_origins_only_without_credentials() {
    let mut server = start_with(|c| {
        for client in &mut c.clients {
            if client.id == NATIVE {
                client.allowed_origins = vec!["https://desktop.example".into()];
            }
        }
    })
    .await;
    let url = server.url("/oauth2/token");
    let preflight = |origin: &'static str| {
        plain_client()
            .request(reqwest::Method::OPTIONS, &url)
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .send()
    };
    for origin in [
        "https://desktop.example",
        FRONTEND,
        "chrome-extension://abcdefghijklmnopabcdefghijklmnop",
    ] {
        let r = preflight(origin).await.unwrap();
        assert!(r.status().is_success(), "{origin}: {}", r.status());
        assert_eq!(
            r.headers()
                .get("access-control-allow-origin")
                .map(|v| v.to_str().unwrap()),
            Some(origin),
            "{origin}"
        );
        assert!(
            r.headers()
                .get("access-control-allow-credentials")
                .is_none(),
            "{origin}: no credentials"
        );
    }
    let r = preflight("https://evil.example").await.unwrap();
    assert!(
        r.headers().get("access-control-allow-origin").is_none(),
        "a foreign origin gets no CORS grant"
    );
    server.stop().await;
}
