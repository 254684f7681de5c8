//! The backend-first OAuth sign-in over HTTP against the real server and a real
//! OIDC provider on 127.0.0.1: sign-in → provider → callback → session cookie
//! (attributes asserted) → get-session → sign-out → get-session is null; new
//! versus returning users; the plain-link variant; server-side get-session;
//! sliding expiry; userinfo for minimal id_tokens; Twitch sign-in and the
//! extension landing on one user.

mod support;

use std::time::Duration;

use serde_json::{json, Value};
use support::oidc_provider::{OidcProvider, TestUser};
use support::{
    add_oidc_provider, browser, get_session, location, oauth_sign_in, plain_client,
    set_cookie_value, set_cookies, start_with_provider, through_provider, twitch_claims,
    twitch_extension_secret, twitch_jwt, TestServer, FRONTEND,
};
use tachigo_engine::config::{ConfigDuration, ExtensionSecret};

fn keys(value: &Value) -> Vec<String> {
    let mut keys: Vec<String> = value.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    keys
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_sets_the_cookie_get_session_reads_it_and_sign_out_ends_it() {
    let provider = OidcProvider::start().await;
    let server = start_with_provider(&provider, |_| {}).await;
    provider.set_user(TestUser::verified("alice"));
    let b = browser();

    let landed = oauth_sign_in(
        &server,
        &b,
        "local",
        json!({"callbackURL": "/welcome", "newUserCallbackURL": "/onboarding"}),
    )
    .await;
    assert_eq!(landed.status(), 302);
    assert_eq!(
        location(&landed),
        format!("{FRONTEND}/onboarding"),
        "a new user goes to newUserCallbackURL"
    );
    let session_cookie = set_cookies(&landed, "tachigo.session_token");
    assert_eq!(session_cookie.len(), 1);
    let token = set_cookie_value(&landed, "tachigo.session_token").unwrap();
    assert_eq!(
        session_cookie[0],
        format!("tachigo.session_token={token}; HttpOnly; SameSite=Lax; Path=/; Max-Age=604800")
    );
    assert_eq!(
        set_cookies(&landed, "tachigo.oauth_state"),
        ["tachigo.oauth_state=; HttpOnly; SameSite=Lax; Path=/api/auth; Max-Age=0"],
        "the state cookie is cleared"
    );
    assert_eq!(
        server.engine().pending_authorization_count(),
        0,
        "the state was used up"
    );

    let response = b
        .get(server.url("/api/auth/get-session"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert!(
        set_cookies(&response, "tachigo.session_token").is_empty(),
        "nothing slid"
    );
    let text = response.text().await.unwrap();
    assert!(!text.contains(&token), "the token never appears in JSON");
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        keys(&body["session"]),
        [
            "createdAt",
            "expiresAt",
            "id",
            "ipAddress",
            "updatedAt",
            "userAgent",
            "userId"
        ]
    );
    assert_eq!(
        keys(&body["user"]),
        [
            "createdAt",
            "email",
            "emailVerified",
            "id",
            "image",
            "name",
            "roles",
            "updatedAt"
        ]
    );
    let user = &body["user"];
    assert_eq!(user["email"], "alice@example.com");
    assert_eq!(user["emailVerified"], true);
    assert_eq!(user["name"], "User alice");
    assert_eq!(user["image"], "https://cdn.example.com/alice.png");
    assert_eq!(user["roles"], json!([]));
    assert_eq!(body["session"]["userId"], user["id"]);
    assert_eq!(body["session"]["ipAddress"], "127.0.0.1");
    let expires = body["session"]["expiresAt"].as_str().unwrap();
    assert!(
        expires.ends_with('Z') && expires.len() == 24,
        "ISO 8601 with milliseconds: {expires}"
    );

    let user_id = user["id"].as_str().unwrap();
    let engine = server.engine();
    assert_eq!(engine.user_count().await.unwrap(), 1);
    assert_eq!(engine.stored_sessions(user_id).await.unwrap().len(), 1);

    let signed_out = b
        .post(server.url("/api/auth/sign-out"))
        .header("origin", FRONTEND)
        .send()
        .await
        .unwrap();
    assert_eq!(signed_out.status(), 200);
    assert_eq!(
        set_cookies(&signed_out, "tachigo.session_token"),
        ["tachigo.session_token=; HttpOnly; SameSite=Lax; Path=/; Max-Age=0"]
    );
    assert_eq!(
        signed_out.json::<Value>().await.unwrap(),
        json!({"success": true})
    );
    assert!(
        engine.stored_sessions(user_id).await.unwrap().is_empty(),
        "the session is revoked"
    );

    // Even presenting the old token explicitly finds nothing now.
    let replayed = plain_client()
        .get(server.url("/api/auth/get-session"))
        .header("cookie", format!("tachigo.session_token={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(replayed.json::<Value>().await.unwrap(), Value::Null);
    assert_eq!(get_session(&server, &b).await, Value::Null);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_returning_user_goes_to_callback_url_and_defaults_land_on_the_dashboard() {
    let provider = OidcProvider::start().await;
    let server = start_with_provider(&provider, |_| {}).await;
    provider.set_user(TestUser::verified("bob"));

    let first = oauth_sign_in(&server, &browser(), "local", json!({})).await;
    assert_eq!(
        location(&first),
        format!("{FRONTEND}/dashboard"),
        "default callback"
    );

    let again = oauth_sign_in(
        &server,
        &browser(),
        "local",
        json!({"callbackURL": "/watch?v=42", "newUserCallbackURL": "/onboarding"}),
    )
    .await;
    assert_eq!(
        location(&again),
        format!("{FRONTEND}/watch?v=42"),
        "not a new user any more"
    );
    assert_eq!(
        server.engine().user_count().await.unwrap(),
        1,
        "the same user signed in twice"
    );

    let absolute = oauth_sign_in(
        &server,
        &browser(),
        "local",
        json!({"callbackURL": format!("{FRONTEND}/from/absolute")}),
    )
    .await;
    assert_eq!(location(&absolute), format!("{FRONTEND}/from/absolute"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_plain_link_redirects_straight_to_the_provider() {
    let provider = OidcProvider::start().await;
    let server = start_with_provider(&provider, |_| {}).await;
    let b = browser();

    let started = b
        .get(server.url("/api/auth/sign-in/social/local?callbackURL=%2Fafter-link"))
        .send()
        .await
        .unwrap();
    assert_eq!(started.status(), 302);
    let to_provider = location(&started);
    assert!(to_provider.starts_with(&format!("{}/authorize?", provider.issuer)));
    assert_eq!(set_cookies(&started, "tachigo.oauth_state").len(), 1);

    let landed = through_provider(&b, &to_provider).await;
    assert_eq!(location(&landed), format!("{FRONTEND}/after-link"));
    assert!(get_session(&server, &b).await["user"]["id"].is_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_session_answers_server_side_callers_and_browsers_alike() {
    let provider = OidcProvider::start().await;
    let server = start_with_provider(&provider, |_| {}).await;
    let b = browser();
    let landed = oauth_sign_in(&server, &b, "local", json!({})).await;
    let token = set_cookie_value(&landed, "tachigo.session_token").unwrap();
    let cookie = format!("theme=dark; tachigo.session_token={token}; other=1");

    // Next.js middleware: the browser's Cookie header forwarded, no Origin.
    let server_side = plain_client()
        .get(server.url("/api/auth/get-session"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(server_side.status(), 200);
    assert!(server_side
        .headers()
        .get("access-control-allow-origin")
        .is_none());
    let server_side: Value = server_side.json().await.unwrap();
    assert_eq!(server_side, get_session(&server, &b).await);

    // The browser's own cross-origin fetch with credentials.
    let from_frontend = plain_client()
        .get(server.url("/api/auth/get-session"))
        .header("cookie", &cookie)
        .header("origin", FRONTEND)
        .send()
        .await
        .unwrap();
    assert_eq!(
        from_frontend.headers()["access-control-allow-origin"],
        FRONTEND
    );
    assert_eq!(
        from_frontend.headers()["access-control-allow-credentials"],
        "true"
    );
    let untrusted = plain_client()
        .get(server.url("/api/auth/get-session"))
        .header("cookie", &cookie)
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert!(untrusted
        .headers()
        .get("access-control-allow-origin")
        .is_none());

    let preflight = plain_client()
        .request(
            reqwest::Method::OPTIONS,
            server.url("/api/auth/get-session"),
        )
        .header("origin", FRONTEND)
        .header("access-control-request-method", "GET")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), 204);
    assert_eq!(
        preflight.headers()["access-control-allow-credentials"],
        "true"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_valid_cookie_get_session_is_null_and_a_stale_cookie_is_cleared() {
    let server = TestServer::start().await;
    let none = plain_client()
        .get(server.url("/api/auth/get-session"))
        .send()
        .await
        .unwrap();
    assert_eq!(none.status(), 200);
    assert!(set_cookies(&none, "tachigo.session_token").is_empty());
    assert_eq!(none.json::<Value>().await.unwrap(), Value::Null);

    for bogus in [
        "garbage".to_string(),
        format!(
            "{}.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            uuid_like()
        ),
    ] {
        let stale = plain_client()
            .get(server.url("/api/auth/get-session"))
            .header("cookie", format!("tachigo.session_token={bogus}"))
            .send()
            .await
            .unwrap();
        assert_eq!(
            set_cookie_value(&stale, "tachigo.session_token").as_deref(),
            Some("")
        );
        assert_eq!(stale.json::<Value>().await.unwrap(), Value::Null);
    }
}

fn uuid_like() -> &'static str {
    "3f2c9a4e-0000-4000-8000-000000000000"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secure_and_domain_attributes_follow_the_cookie_settings() {
    let provider = OidcProvider::start().await;
    let server = start_with_provider(&provider, |config| {
        config.cookies.secure = true;
        config.cookies.domain = ".tachigo.test".into();
    })
    .await;
    // A cookie jar would not send Secure cookies over http: carry them by hand.
    let client = plain_client();
    let started = client
        .get(server.url("/api/auth/sign-in/social/local"))
        .send()
        .await
        .unwrap();
    let state_cookie = set_cookies(&started, "tachigo.oauth_state")[0].to_string();
    assert!(state_cookie.ends_with(
        "; HttpOnly; Secure; SameSite=Lax; Path=/api/auth; Max-Age=600; Domain=.tachigo.test"
    ));
    let state_value = set_cookie_value(&started, "tachigo.oauth_state").unwrap();
    let at_provider = client.get(location(&started)).send().await.unwrap();
    let landed = client
        .get(location(&at_provider))
        .header("cookie", format!("tachigo.oauth_state={state_value}"))
        .send()
        .await
        .unwrap();
    assert_eq!(location(&landed), format!("{FRONTEND}/dashboard"));
    let token = set_cookie_value(&landed, "tachigo.session_token").unwrap();
    assert_eq!(
        set_cookies(&landed, "tachigo.session_token"),
        [format!(
            "tachigo.session_token={token}; HttpOnly; Secure; SameSite=Lax; Path=/; Max-Age=604800; Domain=.tachigo.test"
        )]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_older_than_update_age_slides_and_the_cookie_is_re_set() {
    let provider = OidcProvider::start().await;
    let server = start_with_provider(&provider, |config| {
        config.oauth.update_age = ConfigDuration(Duration::ZERO);
        config.oauth.session_ttl = ConfigDuration::from_secs(3600);
    })
    .await;
    let b = browser();
    let landed = oauth_sign_in(&server, &b, "local", json!({})).await;
    let token = set_cookie_value(&landed, "tachigo.session_token").unwrap();
    assert!(set_cookies(&landed, "tachigo.session_token")[0].contains("Max-Age=3600"));

    let read = b
        .get(server.url("/api/auth/get-session"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        set_cookies(&read, "tachigo.session_token"),
        [format!(
            "tachigo.session_token={token}; HttpOnly; SameSite=Lax; Path=/; Max-Age=3600"
        )],
        "the same token, its lifetime started again"
    );
    let body: Value = read.json().await.unwrap();
    assert!(
        body["session"]["id"].is_string(),
        "the read itself still answers the session"
    );
    let again = b
        .get(server.url("/api/auth/get-session"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        set_cookies(&again, "tachigo.session_token").len(),
        1,
        "every read past update_age slides"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_within_update_age_writes_nothing_and_sets_no_cookie() {
    let provider = OidcProvider::start().await;
    let server = start_with_provider(&provider, |_| {}).await;
    let b = browser();
    oauth_sign_in(&server, &b, "local", json!({})).await;
    let first = get_session(&server, &b).await;
    let user_id = first["user"]["id"].as_str().unwrap();
    let before = server.engine().stored_sessions(user_id).await.unwrap();
    for _ in 0..5 {
        let read = b
            .get(server.url("/api/auth/get-session"))
            .send()
            .await
            .unwrap();
        assert!(set_cookies(&read, "tachigo.session_token").is_empty());
        assert_eq!(read.json::<Value>().await.unwrap(), first);
    }
    assert_eq!(
        server.engine().stored_sessions(user_id).await.unwrap(),
        before
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn userinfo_completes_an_id_token_that_only_names_the_subject() {
    let provider = OidcProvider::start().await;
    let server = start_with_provider(&provider, |_| {}).await;
    provider.set_profile_in_id_token(false);
    provider.set_user(TestUser::verified("minimal"));
    let b = browser();
    oauth_sign_in(&server, &b, "local", json!({})).await;
    assert_eq!(provider.userinfo_requests(), 1);
    let user = get_session(&server, &b).await["user"].clone();
    assert_eq!(user["email"], "minimal@example.com");
    assert_eq!(user["emailVerified"], true);
    assert_eq!(user["name"], "User minimal");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twitch_sign_in_and_the_extension_land_on_the_same_user() {
    let provider = OidcProvider::start().await;
    let secret = twitch_extension_secret();
    let server = TestServer::start_with(|config| {
        // Twitch's quirks (claims parameter, secret in the form body), with its
        // endpoints discovered from the local issuer instead of id.twitch.tv.
        add_oidc_provider(config, "twitch", &provider);
        config.extension.client_ids = vec!["ext-client".into()];
        config.extension.secrets = vec![ExtensionSecret {
            secret: secret.clone(),
            ..ExtensionSecret::default()
        }];
    })
    .await;

    // The viewer first meets tachigo in the Twitch panel…
    let jwt = twitch_jwt(&secret, &twitch_claims(Some("98765"), "777", "viewer"));
    let extension = plain_client()
        .post(server.url("/api/v1/extension/auth/login"))
        .bearer_auth(jwt)
        .send()
        .await
        .unwrap();
    assert_eq!(extension.status(), 200);
    let extension: Value = extension.json().await.unwrap();
    let extension_user = extension["user"]["id"].as_str().unwrap().to_string();

    // …then signs in on the website with Twitch: the same Twitch user id.
    provider.set_user(TestUser {
        name: Some("twitchviewer".into()),
        ..TestUser::verified("98765")
    });
    let b = browser();
    let landed = oauth_sign_in(
        &server,
        &b,
        "twitch",
        json!({"newUserCallbackURL": "/welcome-new"}),
    )
    .await;
    assert_eq!(
        location(&landed),
        format!("{FRONTEND}/dashboard"),
        "not a new user"
    );
    assert_eq!(
        get_session(&server, &b).await["user"]["id"],
        extension_user.as_str()
    );
    assert_eq!(server.engine().user_count().await.unwrap(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn google_signs_in_through_an_overridden_issuer() {
    let provider = OidcProvider::start().await;
    let server =
        TestServer::start_with(|config| add_oidc_provider(config, "google", &provider)).await;
    provider.set_user(TestUser::verified("g-123"));
    let b = browser();
    let landed = oauth_sign_in(&server, &b, "google", json!({})).await;
    assert_eq!(location(&landed), format!("{FRONTEND}/dashboard"));
    let user_id = get_session(&server, &b).await["user"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let user = server.engine().user(&user_id).await.unwrap();
    assert_eq!(user.accounts[0].provider, "google");
    assert_eq!(user.accounts[0].subject, "g-123");
}
