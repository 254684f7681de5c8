//! Linked accounts: `list-accounts`, `link-social` (the callback adds the
//! account to the signed-in user), `unlink-account` (never the last way to
//! sign in), and the linking rule of a sign-in (a verified email from a trusted
//! provider joins the user with that verified email; an unverified email never
//! joins anyone).

mod support;

use serde_json::{json, Value};
use support::oidc_provider::{OidcProvider, TestUser};
use support::{
    add_oidc_provider, better_auth_code, browser, create_dashboard_user, dashboard_login,
    dashboard_refresh_with, get_session, location, oauth_sign_in, plain_client, query_param,
    refresh_cookie_value, set_cookies, start_with_provider, through_provider, TestServer, FRONTEND,
};
use tachigo_engine::{NewSession, Surface};

async fn start_two_providers(provider: &OidcProvider, trusted: &[&str]) -> TestServer {
    let trusted: Vec<String> = trusted.iter().map(|s| s.to_string()).collect();
    start_with_provider(provider, |config| {
        add_oidc_provider(config, "other", provider);
        config.oauth.trusted_providers = trusted;
    })
    .await
}

async fn list_accounts(server: &TestServer, b: &reqwest::Client) -> Vec<Value> {
    let response = b
        .get(server.url("/api/auth/list-accounts"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

async fn post(
    server: &TestServer,
    b: &reqwest::Client,
    path: &str,
    body: Value,
) -> reqwest::Response {
    b.post(server.url(path))
        .header("origin", FRONTEND)
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// `POST /link-social` for `provider_name` as the signed-in `b`, then through
/// the provider; returns the callback's answer.
async fn link_social(
    server: &TestServer,
    b: &reqwest::Client,
    provider_name: &str,
) -> reqwest::Response {
    let body = json!({ "provider": provider_name });
    let started = post(server, b, "/api/auth/link-social", body).await;
    assert_eq!(started.status(), 200, "link-social starts");
    let started: Value = started.json().await.unwrap();
    through_provider(b, started["url"].as_str().unwrap()).await
}

async fn signed_in_as(
    server: &TestServer,
    provider: &OidcProvider,
    user: TestUser,
) -> (reqwest::Client, String) {
    provider.set_user(user);
    let b = browser();
    oauth_sign_in(server, &b, "local", json!({})).await;
    let id = get_session(server, &b).await["user"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    (b, id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_accounts_shows_linked_providers_and_passwords() {
    let provider = OidcProvider::start().await;
    let server = start_two_providers(&provider, &[]).await;
    let anonymous = plain_client()
        .get(server.url("/api/auth/list-accounts"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    assert_eq!(better_auth_code(anonymous).await, "UNAUTHORIZED");

    let (b, user_id) = signed_in_as(&server, &provider, TestUser::verified("lister")).await;
    let accounts = list_accounts(&server, &b).await;
    assert_eq!(accounts.len(), 1);
    let a = &accounts[0];
    assert_eq!(a["providerId"], "local");
    assert_eq!(a["accountId"], "lister");
    assert_eq!(a["userId"], user_id.as_str());
    assert_eq!(a["scopes"], json!([]));
    assert!(a["id"].is_string() && a["createdAt"].is_string() && a["updatedAt"].is_string());

    // A dashboard user with a password lists it as Better Auth's `credential`.
    let dash_id = create_dashboard_user(&server, "dash@example.com").await;
    let web = server
        .engine()
        .create_session(
            &dash_id,
            NewSession {
                surface: Surface::Web,
                user_agent: None,
                ip: None,
                context: None,
            },
        )
        .await
        .unwrap();
    let response = plain_client()
        .get(server.url("/api/auth/list-accounts"))
        .header(
            "cookie",
            format!("tachigo.session_token={}", web.token.unwrap()),
        )
        .send()
        .await
        .unwrap();
    let accounts: Vec<Value> = response.json().await.unwrap();
    assert_eq!(accounts.len(), 1);
    assert_eq!(accounts[0]["providerId"], "credential");
    assert_eq!(accounts[0]["accountId"], dash_id.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn link_social_adds_the_account_to_the_signed_in_user() {
    let provider = OidcProvider::start().await;
    let server = start_two_providers(&provider, &[]).await;
    let (b, user_id) = signed_in_as(&server, &provider, TestUser::verified("main")).await;

    // A different identity with a different email: the user asked for it.
    provider.set_user(TestUser::verified("secondary"));
    let started = post(
        &server,
        &b,
        "/api/auth/link-social",
        json!({"provider": "other", "callbackURL": "/settings/accounts"}),
    )
    .await;
    assert_eq!(started.status(), 200);
    assert_eq!(set_cookies(&started, "tachigo.oauth_state").len(), 1);
    let started: Value = started.json().await.unwrap();
    assert_eq!(started["redirect"], true);
    let landed = through_provider(&b, started["url"].as_str().unwrap()).await;
    assert_eq!(location(&landed), format!("{FRONTEND}/settings/accounts"));
    assert!(
        set_cookies(&landed, "tachigo.session_token").is_empty(),
        "the session stays as it was"
    );

    let mut providers: Vec<String> = list_accounts(&server, &b)
        .await
        .iter()
        .map(|a| {
            format!(
                "{}:{}",
                a["providerId"].as_str().unwrap(),
                a["accountId"].as_str().unwrap()
            )
        })
        .collect();
    providers.sort();
    assert_eq!(providers, ["local:main", "other:secondary"]);
    assert_eq!(server.engine().user_count().await.unwrap(), 1);

    // Signing in with the linked account now lands on the same user.
    provider.set_user(TestUser::verified("secondary"));
    let other = browser();
    oauth_sign_in(&server, &other, "other", json!({})).await;
    assert_eq!(
        get_session(&server, &other).await["user"]["id"],
        user_id.as_str()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn linking_an_account_another_user_owns_is_refused() {
    let provider = OidcProvider::start().await;
    let server = start_two_providers(&provider, &[]).await;
    signed_in_as(&server, &provider, TestUser::verified("owner")).await;
    let (b, _) = signed_in_as(&server, &provider, TestUser::verified("thief")).await;

    provider.set_user(TestUser::verified("owner"));
    let landed = link_social(&server, &b, "local").await;
    let to = location(&landed);
    assert!(to.starts_with(&format!("{FRONTEND}/auth/error?")), "{to}");
    assert_eq!(
        query_param(&to, "error").as_deref(),
        Some("account_already_linked_to_different_user")
    );
    assert_eq!(list_accounts(&server, &b).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn link_social_needs_a_session_and_a_trusted_origin() {
    let provider = OidcProvider::start().await;
    let server = start_two_providers(&provider, &[]).await;
    let anonymous = post(
        &server,
        &browser(),
        "/api/auth/link-social",
        json!({"provider": "other"}),
    )
    .await;
    assert_eq!(anonymous.status(), 401);

    let (b, _) = signed_in_as(&server, &provider, TestUser::verified("csrf")).await;
    let forged = b
        .post(server.url("/api/auth/link-social"))
        .header("origin", "https://evil.example")
        .json(&json!({"provider": "other"}))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    assert_eq!(better_auth_code(forged).await, "UNTRUSTED_ORIGIN");
    let no_origin = b
        .post(server.url("/api/auth/link-social"))
        .json(&json!({"provider": "other"}))
        .send()
        .await
        .unwrap();
    assert_eq!(no_origin.status(), 403);
    assert_eq!(server.engine().pending_authorization_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_way_to_sign_in_cannot_be_unlinked() {
    let provider = OidcProvider::start().await;
    let server = start_two_providers(&provider, &[]).await;
    let (b, _) = signed_in_as(&server, &provider, TestUser::verified("solo")).await;

    let refused = post(
        &server,
        &b,
        "/api/auth/unlink-account",
        json!({"providerId": "local"}),
    )
    .await;
    assert_eq!(refused.status(), 400);
    assert_eq!(
        better_auth_code(refused).await,
        "FAILED_TO_UNLINK_LAST_ACCOUNT"
    );
    assert_eq!(list_accounts(&server, &b).await.len(), 1);

    let unknown = post(
        &server,
        &b,
        "/api/auth/unlink-account",
        json!({"providerId": "github"}),
    )
    .await;
    assert_eq!(unknown.status(), 400);
    assert_eq!(better_auth_code(unknown).await, "ACCOUNT_NOT_FOUND");

    provider.set_user(TestUser::verified("solo-second"));
    link_social(&server, &b, "other").await;
    assert_eq!(list_accounts(&server, &b).await.len(), 2);

    let unlinked = post(
        &server,
        &b,
        "/api/auth/unlink-account",
        json!({"providerId": "local", "accountId": "solo"}),
    )
    .await;
    assert_eq!(unlinked.status(), 200);
    assert_eq!(
        unlinked.json::<Value>().await.unwrap(),
        json!({"status": true})
    );
    let left = list_accounts(&server, &b).await;
    assert_eq!(left.len(), 1);
    assert_eq!(left[0]["providerId"], "other");
    let last = post(
        &server,
        &b,
        "/api/auth/unlink-account",
        json!({"providerId": "other"}),
    )
    .await;
    assert_eq!(last.status(), 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_verified_email_from_a_trusted_provider_joins_the_verified_user() {
    let provider = OidcProvider::start().await;
    let server = start_two_providers(&provider, &["other"]).await;
    let (_, user_id) = signed_in_as(&server, &provider, TestUser::verified("joiner")).await;

    provider.set_user(TestUser {
        sub: "joiner-at-other".into(),
        ..TestUser::verified("joiner")
    });
    let b = browser();
    let landed = oauth_sign_in(&server, &b, "other", json!({"newUserCallbackURL": "/new"})).await;
    assert_eq!(
        location(&landed),
        format!("{FRONTEND}/dashboard"),
        "joined, not new"
    );
    assert_eq!(
        get_session(&server, &b).await["user"]["id"],
        user_id.as_str()
    );
    assert_eq!(list_accounts(&server, &b).await.len(), 2);
    assert_eq!(server.engine().user_count().await.unwrap(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unverified_email_never_joins_anyone() {
    let provider = OidcProvider::start().await;
    let server = start_two_providers(&provider, &["local", "other"]).await;
    let (_, user_id) = signed_in_as(&server, &provider, TestUser::verified("target")).await;

    provider.set_user(TestUser {
        sub: "claims-target".into(),
        email_verified: false,
        ..TestUser::verified("target")
    });
    let b = browser();
    oauth_sign_in(&server, &b, "other", json!({})).await;
    let session = get_session(&server, &b).await;
    assert_ne!(session["user"]["id"], user_id.as_str(), "a separate user");
    assert_eq!(
        session["user"]["email"],
        Value::Null,
        "an unverified email is not kept"
    );
    assert_eq!(server.engine().user_count().await.unwrap(), 2);
    let target = server.engine().user(&user_id).await.unwrap();
    assert_eq!(target.accounts.len(), 1, "nothing was linked to the target");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trusted_verified_sign_in_takes_over_an_unverified_address() {
    let provider = OidcProvider::start().await;
    let server = start_two_providers(&provider, &["local"]).await;
    // A dashboard registration never proved its address.
    let squatter = create_dashboard_user(&server, "dash@example.com").await;
    let squatter_login = dashboard_login(&server, &browser(), "dash@example.com").await;
    assert_eq!(squatter_login.status(), 200);
    let refresh = refresh_cookie_value(&squatter_login);
    provider.set_user(TestUser {
        email: Some("dash@example.com".into()),
        ..TestUser::verified("dash-sub")
    });
    let b = browser();
    oauth_sign_in(&server, &b, "local", json!({})).await;
    let session = get_session(&server, &b).await;
    assert_eq!(
        session["user"]["id"],
        squatter.as_str(),
        "the address's user"
    );
    assert_eq!(session["user"]["emailVerified"], true);
    assert_eq!(server.engine().user_count().await.unwrap(), 1);
    // The registered password and its sessions are gone.
    assert_eq!(
        dashboard_login(&server, &browser(), "dash@example.com")
            .await
            .status(),
        401
    );
    assert_eq!(
        dashboard_refresh_with(&server, &refresh).await.status(),
        401
    );
    let kinds: Vec<String> = server
        .engine()
        .recent_audit_events(20)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert!(kinds.contains(&"email_taken_over".to_string()), "{kinds:?}");
}

/// `link-social` started, then the provider step completed after `end` ran:
/// whatever `end` did to the session, nothing may be linked.
async fn link_after(
    end: impl AsyncFnOnce(&TestServer, &reqwest::Client, &str),
) -> (reqwest::Response, TestServer, String) {
    let provider = OidcProvider::start().await;
    let server = start_two_providers(&provider, &[]).await;
    let (b, user_id) = signed_in_as(&server, &provider, TestUser::verified("first")).await;
    let started = post(
        &server,
        &b,
        "/api/auth/link-social",
        json!({"provider": "other"}),
    )
    .await;
    assert_eq!(started.status(), 200);
    let started: Value = started.json().await.unwrap();
    end(&server, &b, &user_id).await;
    // Someone else now completes the provider step in that browser.
    provider.set_user(TestUser::verified("somebody-else"));
    let landed = through_provider(&b, started["url"].as_str().unwrap()).await;
    (landed, server, user_id)
}

async fn linked_accounts(server: &TestServer, user_id: &str) -> Vec<String> {
    server
        .engine()
        .user(user_id)
        .await
        .unwrap()
        .accounts
        .iter()
        .map(|a| format!("{}:{}", a.provider, a.subject))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_flow_ends_with_its_session_when_sessions_are_revoked() {
    let (landed, server, user_id) = link_after(async |server, b, _| {
        let r = post(server, b, "/api/auth/revoke-sessions", json!({})).await;
        assert_eq!(r.status(), 200);
    })
    .await;
    assert_eq!(landed.status(), 302);
    assert_eq!(
        query_param(&location(&landed), "error").as_deref(),
        Some("session_expired")
    );
    assert!(set_cookies(&landed, "tachigo.session_token").is_empty());
    assert_eq!(linked_accounts(&server, &user_id).await, ["local:first"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_out_clears_the_state_cookie_of_a_pending_link() {
    let (landed, server, user_id) = link_after(async |server, b, _| {
        let r = post(server, b, "/api/auth/sign-out", json!({})).await;
        assert_eq!(r.status(), 200);
        assert_eq!(
            set_cookies(&r, "tachigo.oauth_state"),
            ["tachigo.oauth_state=; HttpOnly; SameSite=Lax; Path=/api/auth; Max-Age=0"]
        );
    })
    .await;
    assert_eq!(landed.status(), 302);
    assert_eq!(
        query_param(&location(&landed), "error").as_deref(),
        Some("state_mismatch")
    );
    assert_eq!(linked_accounts(&server, &user_id).await, ["local:first"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_flow_of_a_revoked_session_fails_even_with_its_state_cookie() {
    // The session is ended elsewhere (an operator, another device): the
    // browser still holds the state cookie, and the callback still refuses.
    let (landed, server, user_id) = link_after(async |server, _, user_id| {
        server
            .engine()
            .revoke_sessions(user_id, tachigo_engine::RevokeScope::All)
            .await
            .unwrap();
    })
    .await;
    assert_eq!(
        query_param(&location(&landed), "error").as_deref(),
        Some("session_expired")
    );
    assert_eq!(linked_accounts(&server, &user_id).await, ["local:first"]);
}
