//! The built-in providers build their authorization requests against their
//! published endpoints without any network access: Google and Twitch URLs with
//! PKCE S256, a 256-bit `state`, a `nonce`, this server's redirect URI, their
//! default (or configured) scopes, and Twitch's `claims` request; the state is
//! kept server-side and bound to an HttpOnly state cookie.

mod support;

use serde_json::{json, Value};
use support::{plain_client, query_param, set_cookies, social_sign_in, TestServer};
use tachigo_engine::config::ProviderConfig;

fn built_in(client_id: &str, scopes: Option<Vec<String>>) -> ProviderConfig {
    ProviderConfig {
        client_id: client_id.into(),
        client_secret: "a-secret-that-never-leaves-the-server".into(),
        scopes,
        ..ProviderConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn google_and_twitch_authorize_against_their_published_endpoints() {
    let server = TestServer::start_with(|config| {
        config
            .oauth
            .providers
            .insert("google".into(), built_in("g-client", None));
        config
            .oauth
            .providers
            .insert("twitch".into(), built_in("t-client", None));
    })
    .await;
    let public = server.config.server.public_url.clone();

    for (name, endpoint, client, scope) in [
        (
            "google",
            "https://accounts.google.com/o/oauth2/v2/auth?",
            "g-client",
            "openid email profile",
        ),
        (
            "twitch",
            "https://id.twitch.tv/oauth2/authorize?",
            "t-client",
            "openid user:read:email",
        ),
    ] {
        let response = social_sign_in(&server, &plain_client(), json!({"provider": name})).await;
        assert_eq!(response.status(), 200, "{name}");
        let state_cookie = set_cookies(&response, "tachigo.oauth_state")[0].to_string();
        assert!(
            state_cookie.ends_with("; HttpOnly; SameSite=Lax; Path=/api/auth; Max-Age=600"),
            "{state_cookie}"
        );
        let body: Value = response.json().await.unwrap();
        let url = body["url"].as_str().unwrap();
        assert!(url.starts_with(endpoint), "{url}");
        let q = |k| query_param(url, k).unwrap_or_default();
        assert_eq!(q("response_type"), "code");
        assert_eq!(q("client_id"), client);
        assert_eq!(
            q("redirect_uri"),
            format!("{public}/api/auth/callback/{name}")
        );
        assert_eq!(q("scope"), scope);
        assert_eq!(q("code_challenge_method"), "S256");
        assert_eq!(q("code_challenge").len(), 43, "base64url SHA-256");
        assert_eq!(q("state").len(), 43, "256 random bits");
        assert!(q("nonce").len() >= 43);
        assert!(!url.contains("a-secret-that-never-leaves-the-server"));
        if name == "twitch" {
            let claims: Value = serde_json::from_str(&q("claims")).unwrap();
            assert!(claims["id_token"].get("email_verified").is_some());
            assert!(claims["userinfo"].get("email").is_some());
        } else {
            assert!(query_param(url, "claims").is_none());
        }
    }
    assert_eq!(
        server.engine().pending_authorization_count(),
        2,
        "both states are kept server-side"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configured_scopes_replace_the_defaults_and_openid_is_always_asked_for() {
    let server = TestServer::start_with(|config| {
        config.oauth.providers.insert(
            "google".into(),
            built_in("g-client", Some(vec!["email".into()])),
        );
    })
    .await;
    let response = social_sign_in(&server, &plain_client(), json!({"provider": "google"})).await;
    let url = response.json::<Value>().await.unwrap()["url"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(query_param(&url, "scope").as_deref(), Some("openid email"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_authorization_gets_its_own_state_nonce_and_challenge() {
    let server = TestServer::start_with(|config| {
        config
            .oauth
            .providers
            .insert("google".into(), built_in("g-client", None));
    })
    .await;
    let mut seen = std::collections::HashSet::new();
    for _ in 0..5 {
        let response =
            social_sign_in(&server, &plain_client(), json!({"provider": "google"})).await;
        let url = response.json::<Value>().await.unwrap()["url"]
            .as_str()
            .unwrap()
            .to_string();
        for k in ["state", "nonce", "code_challenge"] {
            assert!(seen.insert(query_param(&url, k).unwrap()), "{k} repeated");
        }
    }
}
