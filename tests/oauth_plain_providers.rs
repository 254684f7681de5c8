//! Plain OAuth 2.0 providers (no id_token) over HTTP against the real server
//! and a real GitHub-shaped provider on 127.0.0.1: the `github` preset (its
//! address list decides which email is verified), the `discord` preset (its
//! avatar URL), a custom `kind = "oauth2"` provider read through a field map
//! (and without PKCE), an unverified email that never joins an existing user,
//! missing / forged / replayed / expired state, token endpoint refusals,
//! userinfo failures, `link-social`, the `form_post` callback (over HTTP: a
//! 303 on to the GET callback, where the Lax state cookie is checked), and
//! the configurations refused at start.

mod support;

use serde_json::{json, Value};
use support::oauth2_provider::{
    PlainOAuth2Provider, PlainUser, TokenFault, CLIENT_ID, CLIENT_SECRET,
};
use support::process::run_cli;
use support::{
    browser, get_session, location, oauth_sign_in, plain_client, query_param, set_cookie_value,
    set_cookies, social_sign_in, TestServer, FRONTEND,
};
use tachigo_engine::config::{FieldPaths, ProviderConfig, ProviderKind, UserinfoFields};

const ERROR_URL: &str = "http://localhost:3000/auth/error";

/// A preset (`github`, `discord`) pointed at the local provider.
fn preset(provider: &PlainOAuth2Provider) -> ProviderConfig {
    ProviderConfig {
        client_id: CLIENT_ID.into(),
        client_secret: CLIENT_SECRET.into(),
        authorization_url: Some(provider.url("/login/oauth/authorize")),
        token_url: Some(provider.url("/login/oauth/access_token")),
        userinfo_url: Some(provider.url("/user")),
        emails_url: Some(provider.url("/user/emails")),
        ..ProviderConfig::default()
    }
}

fn paths(p: &[&str]) -> Option<FieldPaths> {
    Some(FieldPaths::Many(p.iter().map(|s| s.to_string()).collect()))
}

/// A custom provider whose userinfo nests everything under `data`.
fn custom(provider: &PlainOAuth2Provider) -> ProviderConfig {
    ProviderConfig {
        kind: Some(ProviderKind::Oauth2),
        emails_url: None,
        scopes: Some(vec!["profile".into()]),
        pkce: Some(false),
        fields: Some(UserinfoFields {
            subject: Some(FieldPaths::One("data.id".into())),
            email: paths(&["data.mail"]),
            email_verified: paths(&["data.mail_verified"]),
            name: paths(&["data.display_name", "data.username"]),
            picture: paths(&["data.avatar_url"]),
        }),
        ..preset(provider)
    }
}

async fn start_with(name: &str, settings: ProviderConfig) -> TestServer {
    let name = name.to_string();
    TestServer::start_with(move |config| {
        config.oauth.providers.insert(name, settings);
    })
    .await
}

fn octocat(emails: Value) -> PlainUser {
    PlainUser::github(583231, "octocat", None, emails)
}

/// A 302 to the error callback with `?error=code`, clearing the state cookie.
fn assert_failed(response: &reqwest::Response, code: &str) {
    assert_eq!(response.status(), 302);
    let to = location(response);
    assert!(to.starts_with(ERROR_URL), "{to}");
    assert_eq!(query_param(&to, "error").as_deref(), Some(code), "{to}");
    assert!(set_cookies(response, "tachigo.session_token").is_empty());
    assert_eq!(
        set_cookie_value(response, "tachigo.oauth_state").as_deref(),
        Some("")
    );
}

async fn assert_nothing_stored(server: &TestServer) {
    assert_eq!(server.engine().user_count().await.unwrap(), 0);
    assert_eq!(server.engine().pending_authorization_count(), 0);
}

/// Starts a sign-in with `provider_name` and takes the browser to the
/// provider; returns the callback URL it redirects to.
async fn callback_url(server: &TestServer, b: &reqwest::Client, provider_name: &str) -> String {
    let started = social_sign_in(server, b, json!({"provider": provider_name})).await;
    assert_eq!(started.status(), 200);
    let url = started.json::<Value>().await.unwrap()["url"]
        .as_str()
        .unwrap()
        .to_string();
    let at_provider = b.get(&url).send().await.unwrap();
    assert_eq!(at_provider.status(), 302);
    location(&at_provider)
}

async fn user_of(server: &TestServer, b: &reqwest::Client) -> tachigo_engine::User {
    let session = get_session(server, b).await;
    let id = session["user"]["id"].as_str().expect("signed in");
    server.engine().user(id).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_github_preset_signs_in_without_an_id_token_and_finds_the_verified_email() {
    let provider = PlainOAuth2Provider::start().await;
    let server = start_with("github", preset(&provider)).await;
    provider.set_user(octocat(json!([
        {"email": "old@example.com", "primary": false, "verified": false},
        {"email": "octo@example.com", "primary": true, "verified": true},
    ])));
    let b = browser();

    let landed = oauth_sign_in(&server, &b, "github", json!({"callbackURL": "/welcome"})).await;
    assert_eq!(landed.status(), 302);
    assert_eq!(location(&landed), format!("{FRONTEND}/welcome"));
    assert!(set_cookie_value(&landed, "tachigo.session_token").is_some_and(|t| !t.is_empty()));

    let asked = provider.last_authorize();
    assert_eq!(asked["client_id"], CLIENT_ID);
    assert_eq!(asked["scope"], "read:user user:email", "no openid scope");
    assert_eq!(asked["code_challenge_method"], "S256");
    assert_eq!(
        asked["redirect_uri"],
        format!("{}/api/auth/callback/github", server.base)
    );
    assert!(!asked.contains_key("nonce"), "no OIDC nonce");
    assert_eq!(provider.last_client_auth(), Some("post"));
    assert_eq!(
        (
            provider.token_requests(),
            provider.userinfo_requests(),
            provider.emails_requests()
        ),
        (1, 1, 1)
    );

    let session = get_session(&server, &b).await;
    let user = &session["user"];
    assert_eq!(user["email"], "octo@example.com");
    assert_eq!(user["emailVerified"], true);
    assert_eq!(user["name"], "The octocat");
    assert_eq!(user["image"], "https://avatars.example.com/u/583231");
    let stored = user_of(&server, &b).await;
    assert_eq!(stored.accounts.len(), 1);
    assert_eq!(stored.accounts[0].provider, "github");
    assert_eq!(
        stored.accounts[0].subject, "583231",
        "the numeric id as text"
    );

    // The same GitHub user again: the same user, signed in.
    let again = browser();
    let landed = oauth_sign_in(&server, &again, "github", json!({})).await;
    assert_eq!(location(&landed), format!("{FRONTEND}/dashboard"));
    assert_eq!(user_of(&server, &again).await.id, stored.id);
    assert_eq!(server.engine().user_count().await.unwrap(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_custom_oauth2_provider_reads_its_field_map_without_pkce() {
    let provider = PlainOAuth2Provider::start().await;
    let server = start_with("corp", custom(&provider)).await;
    provider.set_user(PlainUser {
        userinfo: json!({"data": {
            "id": "u-77", "mail": "Corp.User@Example.com", "mail_verified": "true",
            "display_name": null, "username": "corpy",
            "avatar_url": "https://img.example.com/77.png"
        }}),
        emails: json!([]),
    });
    let b = browser();
    let landed = oauth_sign_in(&server, &b, "corp", json!({})).await;
    assert_eq!(location(&landed), format!("{FRONTEND}/dashboard"));

    let asked = provider.last_authorize();
    assert_eq!(asked["scope"], "profile");
    assert!(!asked.contains_key("code_challenge"), "pkce = false");
    assert!(!asked.contains_key("nonce"));
    assert_eq!(provider.last_client_auth(), Some("basic"), "the default");
    assert_eq!(provider.emails_requests(), 0, "no address list configured");

    let session = get_session(&server, &b).await;
    assert_eq!(session["user"]["email"], "corp.user@example.com");
    assert_eq!(session["user"]["emailVerified"], true);
    assert_eq!(session["user"]["name"], "corpy", "the second name path");
    assert_eq!(session["user"]["image"], "https://img.example.com/77.png");
    let stored = user_of(&server, &b).await;
    assert_eq!(stored.accounts[0].provider, "corp");
    assert_eq!(stored.accounts[0].subject, "u-77");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_discord_preset_builds_the_avatar_url_and_believes_only_verified() {
    let provider = PlainOAuth2Provider::start().await;
    let server = start_with(
        "discord",
        ProviderConfig {
            emails_url: None,
            ..preset(&provider)
        },
    )
    .await;
    provider.set_user(PlainUser {
        userinfo: json!({
            "id": "80351110224678912", "username": "nelly", "global_name": "Nelly",
            "email": "nelly@example.com", "verified": false,
            "avatar": "8342729096ea3675442027381ff50dfe"
        }),
        emails: json!([]),
    });
    let b = browser();
    let landed = oauth_sign_in(&server, &b, "discord", json!({})).await;
    assert_eq!(landed.status(), 302);
    assert_eq!(provider.last_authorize()["scope"], "identify email");
    assert_eq!(provider.last_client_auth(), Some("post"));
    let session = get_session(&server, &b).await;
    let user = &session["user"];
    assert_eq!(user["name"], "Nelly");
    assert_eq!(
        user["image"],
        "https://cdn.discordapp.com/avatars/80351110224678912/8342729096ea3675442027381ff50dfe.png"
    );
    assert_eq!(
        user["email"],
        Value::Null,
        "an unverified email is not the user's"
    );
    assert_eq!(user["emailVerified"], false);
    let stored = user_of(&server, &b).await;
    assert_eq!(stored.accounts[0].subject, "80351110224678912");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unverified_email_never_joins_an_existing_user_and_a_verified_one_does() {
    let provider = PlainOAuth2Provider::start().await;
    let server = TestServer::start_with(|config| {
        config
            .oauth
            .providers
            .insert("github".into(), preset(&provider));
        config.oauth.trusted_providers = vec!["github".into()];
    })
    .await;
    let existing = support::create_dashboard_user(&server, "shared@example.com").await;

    // /user shows the address publicly, but GitHub's list says it is unproven.
    provider.set_user(PlainUser::github(
        1,
        "squatter",
        Some("shared@example.com"),
        json!([{"email": "shared@example.com", "primary": true, "verified": false}]),
    ));
    let b = browser();
    let landed = oauth_sign_in(&server, &b, "github", json!({})).await;
    assert_eq!(landed.status(), 302);
    assert_eq!(location(&landed), format!("{FRONTEND}/dashboard"));
    let newcomer = user_of(&server, &b).await;
    assert_ne!(newcomer.id, existing, "a user of its own");
    assert_eq!(newcomer.email, None);
    assert_eq!(server.engine().user_count().await.unwrap(), 2);
    let untouched = server.engine().user(&existing).await.unwrap();
    assert!(untouched.accounts.is_empty());
    assert_eq!(untouched.email.as_deref(), Some("shared@example.com"));

    // The address's verified owner joins the existing user.
    provider.set_user(PlainUser::github(
        2,
        "owner",
        None,
        json!([{"email": "shared@example.com", "primary": true, "verified": true}]),
    ));
    let owner = browser();
    oauth_sign_in(&server, &owner, "github", json!({})).await;
    assert_eq!(user_of(&server, &owner).await.id, existing);
    assert_eq!(server.engine().user_count().await.unwrap(), 2);
    let joined = server.engine().user(&existing).await.unwrap();
    assert_eq!(joined.accounts.len(), 1);
    assert_eq!(joined.accounts[0].subject, "2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_forged_replayed_and_unbound_state_is_refused() {
    let provider = PlainOAuth2Provider::start().await;
    let server = start_with("github", preset(&provider)).await;
    provider.set_user(octocat(
        json!([{"email": "octo@example.com", "primary": true, "verified": true}]),
    ));
    let b = browser();

    let genuine = callback_url(&server, &b, "github").await;
    let mut forged = url::Url::parse(&genuine).unwrap();
    let code = query_param(&genuine, "code").unwrap();
    forged
        .query_pairs_mut()
        .clear()
        .append_pair("code", &code)
        .append_pair("state", "forged-state-never-issued");
    assert_failed(
        &b.get(forged.as_str()).send().await.unwrap(),
        "state_not_found",
    );
    let mut stateless = forged.clone();
    stateless
        .query_pairs_mut()
        .clear()
        .append_pair("code", &code);
    assert_failed(
        &b.get(stateless.as_str()).send().await.unwrap(),
        "state_not_found",
    );

    // Another browser (no state cookie) presenting the genuine callback burns it.
    assert_failed(
        &plain_client().get(&genuine).send().await.unwrap(),
        "state_mismatch",
    );
    assert_failed(&b.get(&genuine).send().await.unwrap(), "state_not_found");
    assert_eq!(provider.token_requests(), 0, "no code was ever exchanged");
    assert_nothing_stored(&server).await;

    // A completed callback replayed finds nothing.
    let genuine = callback_url(&server, &b, "github").await;
    assert_eq!(b.get(&genuine).send().await.unwrap().status(), 302);
    assert_eq!(server.engine().user_count().await.unwrap(), 1);
    let user_id = user_of(&server, &b).await.id;
    let replayed = b.get(&genuine).send().await.unwrap();
    assert_failed(&replayed, "state_not_found");
    assert_eq!(
        server
            .engine()
            .stored_sessions(&user_id)
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(provider.token_requests(), 1);

    // The user said no at the provider.
    provider.deny_next();
    let denied = callback_url(&server, &b, "github").await;
    assert_failed(&b.get(&denied).send().await.unwrap(), "access_denied");
    assert_eq!(provider.token_requests(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_endpoint_refusals_and_failures_store_nothing() {
    let provider = PlainOAuth2Provider::start().await;
    let server = start_with("github", preset(&provider)).await;
    provider.set_user(octocat(json!([])));
    for (fault, code) in [
        (TokenFault::RefuseWithOk, "invalid_code"),
        (TokenFault::Refuse, "invalid_code"),
        (TokenFault::ServerError, "provider_unavailable"),
    ] {
        provider.set_token_fault(fault);
        let landed = oauth_sign_in(&server, &browser(), "github", json!({})).await;
        assert_failed(&landed, code);
        assert_nothing_stored(&server).await;
    }
    assert_eq!(provider.token_requests(), 3);
    assert_eq!(provider.userinfo_requests(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn userinfo_failures_and_a_missing_subject_store_nothing() {
    let provider = PlainOAuth2Provider::start().await;
    let server = start_with("github", preset(&provider)).await;
    let listed = json!([{"email": "octo@example.com", "primary": true, "verified": true}]);

    provider.set_user(octocat(listed.clone()));
    provider.set_userinfo_status(Some(500));
    assert_failed(
        &oauth_sign_in(&server, &browser(), "github", json!({})).await,
        "unable_to_get_user_info",
    );
    provider.set_userinfo_status(Some(401));
    assert_failed(
        &oauth_sign_in(&server, &browser(), "github", json!({})).await,
        "unable_to_get_user_info",
    );
    provider.set_userinfo_status(None);

    // The address list cannot be read (a token without `user:email`).
    provider.set_emails_status(Some(403));
    assert_failed(
        &oauth_sign_in(&server, &browser(), "github", json!({})).await,
        "unable_to_get_user_info",
    );
    provider.set_emails_status(None);

    for userinfo in [
        json!({"login": "no-id"}),
        json!({"id": null, "login": "null-id"}),
        json!({"id": 1.5}),
        json!({"id": ""}),
        json!(["not", "an", "object"]),
    ] {
        provider.set_user(PlainUser {
            userinfo,
            emails: listed.clone(),
        });
        assert_failed(
            &oauth_sign_in(&server, &browser(), "github", json!({})).await,
            "unable_to_get_user_info",
        );
    }
    assert_nothing_stored(&server).await;

    // Nothing lingers: a sound answer signs in afterwards.
    provider.set_user(octocat(listed));
    let landed = oauth_sign_in(&server, &browser(), "github", json!({})).await;
    assert_eq!(location(&landed), format!("{FRONTEND}/dashboard"));
    assert_eq!(server.engine().user_count().await.unwrap(), 1);
}

/// The hidden inputs and the action of a provider's form_post page.
fn form_post_page(html: &str) -> (String, Vec<(String, String)>) {
    let attribute = |tag: &str, name: &str| {
        let start = tag.find(&format!("{name}=\""))? + name.len() + 2;
        Some(tag[start..start + tag[start..].find('"')?].to_string())
    };
    let action = attribute(html.split("<form").nth(1).unwrap(), "action").unwrap();
    let fields = html
        .split("<input")
        .skip(1)
        .map(|tag| {
            (
                attribute(tag, "name").unwrap(),
                attribute(tag, "value").unwrap(),
            )
        })
        .collect();
    (action, fields)
}

fn form_body(fields: &[(String, String)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish()
}

/// The provider's form, POSTed cross-site: the browser sends no Lax cookie.
async fn cross_site_post(
    provider: &PlainOAuth2Provider,
    action: &str,
    body: String,
) -> reqwest::Response {
    plain_client()
        .post(action)
        .header("origin", &provider.base)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_form_post_callback_goes_on_to_the_get_callback_where_the_lax_state_cookie_is_sent() {
    let provider = PlainOAuth2Provider::start().await;
    let server = start_with(
        "corp",
        ProviderConfig {
            response_mode: Some(tachigo_engine::config::ResponseMode::FormPost),
            ..custom(&provider)
        },
    )
    .await;
    provider.set_user(PlainUser {
        userinfo: json!({"data": {"id": 9, "mail": "form@example.com", "mail_verified": true, "username": "former"}}),
        emails: json!([]),
    });
    let b = browser();
    let started = social_sign_in(
        &server,
        &b,
        json!({"provider": "corp", "callbackURL": "/posted"}),
    )
    .await;
    let state_cookie = set_cookies(&started, "tachigo.oauth_state")[0].to_string();
    assert!(
        state_cookie.contains("SameSite=Lax"),
        "the state cookie stays Lax: {state_cookie}"
    );
    let url = started.json::<Value>().await.unwrap()["url"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        query_param(&url, "response_mode").as_deref(),
        Some("form_post")
    );
    let page = b.get(&url).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let (action, fields) = form_post_page(&page.text().await.unwrap());
    assert_eq!(action, server.url("/api/auth/callback/corp"));

    let posted = cross_site_post(&provider, &action, form_body(&fields)).await;
    assert_eq!(posted.status(), 303);
    assert_eq!(posted.headers()["cache-control"], "no-store");
    assert!(
        posted.headers().get("set-cookie").is_none(),
        "no cookie is touched"
    );
    let next = location(&posted);
    assert!(next.starts_with(&format!("{action}?")), "{next}");
    let field = |name: &str| fields.iter().find(|(k, _)| k == name).unwrap().1.clone();
    assert_eq!(query_param(&next, "code"), Some(field("code")));
    assert_eq!(query_param(&next, "state"), Some(field("state")));
    assert_eq!(
        server.engine().pending_authorization_count(),
        1,
        "nothing taken yet"
    );
    assert_eq!(provider.token_requests(), 0);

    // The browser follows the 303 as a same-site top-level GET, cookie and all.
    let landed = b.get(&next).send().await.unwrap();
    assert_eq!(landed.status(), 302);
    assert_eq!(location(&landed), format!("{FRONTEND}/posted"));
    assert!(set_cookie_value(&landed, "tachigo.session_token").is_some_and(|t| !t.is_empty()));
    assert_eq!(
        get_session(&server, &b).await["user"]["email"],
        "form@example.com"
    );

    // The same form posted again: passed on, and refused where the state is checked.
    let replayed = cross_site_post(&provider, &action, form_body(&fields)).await;
    assert_eq!(replayed.status(), 303);
    assert_failed(
        &b.get(location(&replayed)).send().await.unwrap(),
        "state_not_found",
    );

    // A forged state, with the extra fields Apple adds, which are not passed on.
    let forged = cross_site_post(
        &provider,
        &action,
        "code=made-up&state=forged&user=%7B%22name%22%3A%7B%7D%7D&id_token=x.y.z".into(),
    )
    .await;
    let next = location(&forged);
    assert_eq!(next, format!("{action}?code=made-up&state=forged"));
    assert_failed(&b.get(&next).send().await.unwrap(), "state_not_found");

    // A refusal at the provider arrives by form too.
    provider.deny_next();
    let started = social_sign_in(&server, &b, json!({"provider": "corp"})).await;
    let url = started.json::<Value>().await.unwrap()["url"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, fields) = form_post_page(&b.get(&url).send().await.unwrap().text().await.unwrap());
    let denied = cross_site_post(&provider, &action, form_body(&fields)).await;
    assert_failed(
        &b.get(location(&denied)).send().await.unwrap(),
        "access_denied",
    );
    assert_eq!(provider.token_requests(), 1);
    assert_eq!(server.engine().user_count().await.unwrap(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_form_post_callback_refuses_oversized_and_non_form_bodies_and_unknown_providers() {
    let provider = PlainOAuth2Provider::start().await;
    let server = start_with("corp", custom(&provider)).await;
    provider.set_user(PlainUser {
        userinfo: json!({"data": {"id": 1}}),
        emails: json!([]),
    });
    let b = browser();
    // A flow waits: none of the refusals below may touch it.
    let genuine = callback_url(&server, &b, "corp").await;
    let action = server.url("/api/auth/callback/corp");

    let oversized = format!("state=x&code={}", "a".repeat(17 * 1024));
    let response = cross_site_post(&provider, &action, oversized).await;
    assert_eq!(response.status(), 413);
    assert_eq!(support::better_auth_code(response).await, "BODY_TOO_LARGE");

    let response = plain_client()
        .post(&action)
        .header("content-type", "application/json")
        .body(r#"{"code":"c","state":"s"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 415);
    assert_eq!(
        support::better_auth_code(response).await,
        "UNSUPPORTED_MEDIA_TYPE"
    );
    let response = plain_client()
        .post(&action)
        .body("code=c&state=s")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 415, "no content type");

    let unknown = cross_site_post(
        &provider,
        &server.url("/api/auth/callback/nobody"),
        "code=c&state=s".into(),
    )
    .await;
    assert_eq!(unknown.status(), 302);
    assert_eq!(
        location(&unknown),
        format!("{ERROR_URL}?error=oauth_provider_not_found")
    );

    assert_eq!(server.engine().pending_authorization_count(), 1);
    assert_eq!(provider.token_requests(), 0);
    assert_eq!(server.engine().user_count().await.unwrap(), 0);
    // The waiting flow still completes.
    let landed = b.get(&genuine).send().await.unwrap();
    assert_eq!(location(&landed), format!("{FRONTEND}/dashboard"));
}

fn refused(toml: &str, key: &str) {
    let dir = tempfile::TempDir::new().unwrap();
    let file = dir.path().join("config.toml");
    std::fs::write(&file, toml).unwrap();
    let out = run_cli(
        &dir.path().join("data"),
        &["check", "--config", file.to_str().unwrap()],
        "",
        &[],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{toml} was accepted");
    assert!(
        err.contains(key),
        "{toml}: stderr should name `{key}`: {err}"
    );
}

#[test]
fn plain_provider_configurations_that_cannot_work_are_refused_at_start() {
    let creds = "client_id = \"a\"\nclient_secret = \"b\"\n";
    let custom = |extra: &str| {
        format!(
            "[oauth.providers.corp]\n{creds}kind = \"oauth2\"\n{extra}\n[oauth.providers.corp.fields]\nsubject = \"id\"\n"
        )
    };
    let urls = "authorization_url = \"https://idp.example/authorize\"\ntoken_url = \"https://idp.example/token\"\nuserinfo_url = \"https://idp.example/user\"\n";
    refused(
        &custom("token_url = \"https://idp.example/token\"\nuserinfo_url = \"https://idp.example/user\""),
        "oauth.providers.corp.authorization_url",
    );
    refused(
        &custom(&urls.replace("https://idp.example/token", "http://idp.example/token")),
        "oauth.providers.corp.token_url",
    );
    refused(
        &format!("[oauth.providers.corp]\n{creds}kind = \"oauth2\"\n{urls}"),
        "oauth.providers.corp.fields.subject",
    );
    refused(
        &format!("[oauth.providers.corp]\n{creds}kind = \"oauth2\"\n{urls}[oauth.providers.corp.fields]\nsubject = \"data..id\"\n"),
        "oauth.providers.corp.fields.subject",
    );
    refused(
        &custom(&format!("{urls}issuer = \"https://idp.example\"")),
        "oauth.providers.corp.issuer",
    );
    refused(
        &format!("[oauth.providers.github]\n{creds}userinfo_url = \"http://api.example/user\"\n"),
        "oauth.providers.github.userinfo_url",
    );
    refused(
        &format!("[oauth.providers.github]\n{creds}emails_url = \"ftp://127.0.0.1/emails\"\n"),
        "oauth.providers.github.emails_url",
    );
    refused(
        &format!("[oauth.providers.google]\n{creds}kind = \"oauth2\"\n"),
        "oauth.providers.google.kind",
    );
    // A preset pointed elsewhere is pointed there whole (its tokens would
    // otherwise reach the public service's URL left in place).
    refused(
        &format!(
            "[oauth.providers.github]\n{creds}{}",
            urls.replace("idp.example", "github.corp.example")
        ),
        "oauth.providers.github.emails_url",
    );
    refused(
        &format!("[oauth.providers.discord]\n{creds}authorization_url = \"https://discord.corp.example/authorize\"\n"),
        "oauth.providers.discord.token_url",
    );
    refused(
        &format!("[oauth.providers.corp]\n{creds}issuer = \"https://idp.example\"\nauthorization_url = \"https://idp.example/a\"\n"),
        "oauth.providers.corp.authorization_url",
    );
    refused(
        &format!("[oauth.providers.corp]\n{creds}kind = \"oauth3\"\n"),
        "kind",
    );
    refused(
        &format!("[oauth.providers.github]\n{creds}response_mode = \"fragment\"\n"),
        "response_mode",
    );
    refused(
        &format!(
            "[oauth.providers.github]\n{creds}[oauth.providers.github.fields]\nsubjet = \"id\"\n"
        ),
        "subjet",
    );
}

#[test]
fn presets_need_only_credentials_and_custom_providers_load_with_a_field_map() {
    let dir = tempfile::TempDir::new().unwrap();
    let file = dir.path().join("config.toml");
    std::fs::write(
        &file,
        "[oauth.providers.github]\nclient_id = \"a\"\nclient_secret = \"b\"\n\
         [oauth.providers.discord]\nclient_id = \"a\"\nclient_secret = \"b\"\n\
         [oauth.providers.corp]\nclient_id = \"a\"\nclient_secret = \"b\"\nkind = \"oauth2\"\n\
         authorization_url = \"https://idp.example/authorize\"\ntoken_url = \"http://127.0.0.1:9/token\"\n\
         userinfo_url = \"https://idp.example/user\"\npkce = false\nresponse_mode = \"form_post\"\n\
         token_auth_method = \"client_secret_post\"\n\
         [oauth.providers.corp.fields]\nsubject = \"data.id\"\nname = [\"data.name\", \"data.login\"]\n",
    )
    .unwrap();
    let config = tachigo_engine::config::load(Some(&file), Vec::new()).unwrap();
    let providers = &config.oauth.providers;
    assert_eq!(providers["github"].kind_for("github"), ProviderKind::Oauth2);
    assert_eq!(
        providers["discord"].kind_for("discord"),
        ProviderKind::Oauth2
    );
    let corp = &providers["corp"];
    assert_eq!(corp.kind_for("corp"), ProviderKind::Oauth2);
    assert_eq!(corp.pkce, Some(false));
    assert_eq!(
        corp.fields.as_ref().unwrap().name,
        paths(&["data.name", "data.login"])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_state_posted_by_form_is_refused_where_it_is_checked() {
    use tachigo_engine::oauth_providers::PendingAuthorizations;
    use tachigo_engine::opaque_token::hash_secret;
    let provider = PlainOAuth2Provider::start().await;
    let server = start_with("corp", custom(&provider)).await;
    let cookie = "a-browser-binding-secret";
    let now = server.engine().now();
    let record = tachigo_engine::PendingAuthorization {
        provider: "corp".into(),
        pkce_verifier: String::new(),
        nonce: None,
        binding_hash: hash_secret(cookie.as_bytes()),
        callback_url: format!("{FRONTEND}/dashboard"),
        error_callback_url: format!("{FRONTEND}/expired-here"),
        new_user_callback_url: None,
        link_user_id: None,
        link_session_id: None,
        created_at: now - 11 * 60 * 1000,
        expires_at: now - 60 * 1000,
    };
    assert!(PendingAuthorizations::new(server.engine(), 10)
        .save("an-old-state", &record)
        .await
        .unwrap());
    let posted = cross_site_post(
        &provider,
        &server.url("/api/auth/callback/corp"),
        "code=whatever&state=an-old-state".into(),
    )
    .await;
    assert_eq!(posted.status(), 303);
    assert_eq!(server.engine().pending_authorization_count(), 1);
    let landed = plain_client()
        .get(location(&posted))
        .header("cookie", format!("tachigo.oauth_state={cookie}"))
        .send()
        .await
        .unwrap();
    assert_eq!(landed.status(), 302);
    assert_eq!(
        location(&landed),
        format!("{FRONTEND}/expired-here?error=state_expired")
    );
    assert_nothing_stored(&server).await;
    assert_eq!(provider.token_requests(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn link_social_adds_a_plain_provider_account_to_the_signed_in_user() {
    let provider = PlainOAuth2Provider::start().await;
    let server = TestServer::start_with(|config| {
        config
            .oauth
            .providers
            .insert("github".into(), preset(&provider));
        config
            .oauth
            .providers
            .insert("corp".into(), custom(&provider));
    })
    .await;
    provider.set_user(PlainUser {
        userinfo: json!({"data": {"id": "c-1", "mail": "linker@example.com", "mail_verified": true}}),
        emails: json!([]),
    });
    let b = browser();
    oauth_sign_in(&server, &b, "corp", json!({})).await;
    let user_id = user_of(&server, &b).await.id;

    provider.set_user(PlainUser::github(
        4242,
        "linker",
        None,
        json!([{"email": "elsewhere@example.com", "primary": true, "verified": true}]),
    ));
    let started = b
        .post(server.url("/api/auth/link-social"))
        .header("origin", FRONTEND)
        .json(&json!({"provider": "github", "callbackURL": "/settings"}))
        .send()
        .await
        .unwrap();
    assert_eq!(started.status(), 200);
    let url = started.json::<Value>().await.unwrap()["url"]
        .as_str()
        .unwrap()
        .to_string();
    let landed = support::through_provider(&b, &url).await;
    assert_eq!(location(&landed), format!("{FRONTEND}/settings"));
    let user = server.engine().user(&user_id).await.unwrap();
    let mut linked: Vec<(String, String)> = user
        .accounts
        .iter()
        .map(|a| (a.provider.clone(), a.subject.clone()))
        .collect();
    linked.sort();
    assert_eq!(
        linked,
        [
            ("corp".into(), "c-1".into()),
            ("github".into(), "4242".into())
        ]
    );
    assert_eq!(server.engine().user_count().await.unwrap(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_providers_tokens_are_kept_and_account_info_reads_its_field_map() {
    use std::os::unix::fs::PermissionsExt;
    let keys = tempfile::TempDir::new().unwrap();
    let key_path = keys.path().join("token.key");
    std::fs::write(&key_path, format!("{}\n", "ab".repeat(32))).unwrap();
    std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let provider = PlainOAuth2Provider::start().await;
    let settings = preset(&provider);
    let server = TestServer::start_with(move |config| {
        config.oauth.providers.insert("github".into(), settings);
        config.oauth.token_encryption_key_file = Some(key_path);
    })
    .await;
    provider.set_user(octocat(json!([
        {"email": "octo@example.com", "primary": true, "verified": true},
    ])));
    let b = browser();
    oauth_sign_in(&server, &b, "github", json!({})).await;

    let kept: Value = b
        .post(server.url("/api/auth/get-access-token"))
        .header("origin", FRONTEND)
        .json(&json!({"providerId": "github"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let access_token = kept["accessToken"].as_str().expect("the kept token");
    // GitHub's comma-separated grant, read as two scopes.
    assert_eq!(kept["scopes"], json!(["read:user", "user:email"]), "{kept}");
    // It is the provider's own token: its API takes it.
    let me = plain_client()
        .get(provider.url("/user"))
        .header("user-agent", "tachigo-test")
        .bearer_auth(access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);

    let info = b
        .get(server.url("/api/auth/account-info?accountId=583231"))
        .send()
        .await
        .unwrap();
    assert_eq!(info.status(), 200);
    let info: Value = info.json().await.unwrap();
    assert_eq!(info["user"]["id"], "583231", "{info}");
    assert_eq!(info["user"]["name"], "The octocat");
    assert_eq!(info["user"]["email"], "octo@example.com");
    assert_eq!(info["user"]["emailVerified"], true);
    assert_eq!(
        info["data"]["login"], "octocat",
        "the whole userinfo document"
    );

    // The provider no longer honours the token: a clear error, still linked.
    provider.set_userinfo_status(Some(401));
    let refused = b
        .get(server.url("/api/auth/account-info?accountId=583231"))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 502);
    assert_eq!(
        refused.json::<Value>().await.unwrap()["code"],
        "FAILED_TO_GET_USER_INFO"
    );
    assert_eq!(user_of(&server, &b).await.accounts.len(), 1);
}
