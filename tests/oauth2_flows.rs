//! The OAuth 2.1 authorization server (`/oauth2/*`, `docs/contracts/oauth2.md`)
//! driven by a real client library, the Rust `oauth2` crate, the way the
//! first-party apps use it: discovery, authorization code + PKCE over a
//! loopback redirect on any port, the token response and its JWTs verified
//! with nothing but the JWKS, userinfo by scope, refresh rotation with grace
//! and reuse detection, the device grant approved on the device page, app
//! sessions in the session lists (and revoked there), RFC 7009 revocation,
//! RFC 7662 introspection by a service, and sessions that outlive a restart.

mod support;

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::time::Duration;

use ::oauth2::basic::{
    BasicErrorResponse, BasicErrorResponseType, BasicRevocationErrorResponse,
    BasicTokenIntrospectionResponse, BasicTokenType,
};
use ::oauth2::{
    AccessToken, AuthType, AuthUrl, AuthorizationCode, Client, ClientId, ClientSecret, CsrfToken,
    DeviceAuthorizationUrl, EndpointSet, ExtraTokenFields, IntrospectionUrl, PkceCodeChallenge,
    RedirectUrl, RefreshToken, RequestTokenError, RevocationUrl, Scope,
    StandardDeviceAuthorizationResponse, StandardRevocableToken, StandardTokenResponse,
    TokenIntrospectionResponse, TokenResponse, TokenUrl,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use support::oauth2::*;
use support::{plain_client, TestServer, FRONTEND};

/// The OpenID Connect field of a token response the `oauth2` crate leaves out.
#[derive(Clone, Debug, Deserialize, Serialize)]
struct IdTokenField {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    id_token: Option<String>,
}
impl ExtraTokenFields for IdTokenField {}

type Tokens = StandardTokenResponse<IdTokenField, BasicTokenType>;

type AppClient = Client<
    BasicErrorResponse,
    Tokens,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointSet,
    EndpointSet,
    EndpointSet,
    EndpointSet,
    EndpointSet,
>;

/// The HTTP client the library uses: no redirects followed (oauth2 5 requires it).
fn http() -> ::oauth2::reqwest::Client {
    ::oauth2::reqwest::ClientBuilder::new()
        .redirect(::oauth2::reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .unwrap()
}

/// `client_id` configured as the app would: the documented endpoints, the
/// secret and HTTP Basic for the service, `client_id` in the body otherwise.
fn app_client(server: &TestServer, client_id: &str) -> AppClient {
    let iss = issuer(server);
    let client = Client::new(ClientId::new(client_id.into()))
        .set_auth_uri(AuthUrl::new(format!("{iss}/oauth2/authorize")).unwrap())
        .set_token_uri(TokenUrl::new(format!("{iss}/oauth2/token")).unwrap())
        .set_device_authorization_url(
            DeviceAuthorizationUrl::new(format!("{iss}/oauth2/device_authorization")).unwrap(),
        )
        .set_revocation_url(RevocationUrl::new(format!("{iss}/oauth2/revoke")).unwrap())
        .set_introspection_url(IntrospectionUrl::new(format!("{iss}/oauth2/introspect")).unwrap());
    if client_id == SERVICE {
        client
            .set_client_secret(ClientSecret::new(SERVICE_SECRET.into()))
            .set_auth_type(AuthType::BasicAuth)
    } else {
        client.set_auth_type(AuthType::RequestBody)
    }
}

fn scopes(list: &str) -> Vec<Scope> {
    list.split_whitespace()
        .map(|s| Scope::new(s.to_string()))
        .collect()
}

fn scope_set(scope: &str) -> BTreeSet<String> {
    scope.split_whitespace().map(str::to_string).collect()
}

fn token_scope(tokens: &Tokens) -> BTreeSet<String> {
    tokens
        .scopes()
        .expect("the response names its scope")
        .iter()
        .map(|s| s.to_string())
        .collect()
}

/// The `error` of a refused token request.
fn token_error<T, E: std::error::Error + 'static>(
    result: Result<T, RequestTokenError<E, BasicErrorResponse>>,
) -> (BasicErrorResponseType, Option<String>) {
    match result {
        Ok(_) => panic!("the request succeeded, expected a refusal"),
        Err(RequestTokenError::ServerResponse(r)) => {
            (r.error().clone(), r.error_description().cloned())
        }
        Err(other) => panic!("expected an OAuth error response, got {other:?}"),
    }
}

/// A whole code flow with the library for `user` on a loopback port; the
/// token response and the session id.
async fn library_sign_in(
    server: &TestServer,
    user: &WebUser,
    client: &AppClient,
    scope: &str,
    nonce: Option<&str>,
) -> Tokens {
    let redirect = RedirectUrl::new(loopback(random_port())).unwrap();
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut request = client
        .authorize_url(CsrfToken::new_random)
        .set_redirect_uri(Cow::Borrowed(&redirect))
        .add_scopes(scopes(scope))
        .set_pkce_challenge(challenge);
    if let Some(nonce) = nonce {
        request = request.add_extra_param("nonce", nonce);
    }
    let (url, state) = request.url();
    let r = user.browser.get(url.as_str()).send().await.unwrap();
    let code = code_from(server, &r, redirect.as_str(), state.secret());
    client
        .exchange_code(AuthorizationCode::new(code))
        .set_redirect_uri(Cow::Borrowed(&redirect))
        .set_pkce_verifier(verifier)
        .request_async(&http())
        .await
        .expect("the code is redeemed")
}

fn sid(tokens: &Tokens) -> String {
    jwt_claims(tokens.access_token().secret())["sid"]
        .as_str()
        .expect("a sid")
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_documents_name_the_issuer_and_every_endpoint() {
    let mut server = start().await;
    let iss = issuer(&server);
    assert!(!iss.ends_with('/'));
    let mut documents = Vec::new();
    for path in [
        "/.well-known/oauth-authorization-server",
        "/.well-known/openid-configuration",
    ] {
        let r = plain_client().get(server.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        let doc: Value = r.json().await.unwrap();
        assert_eq!(doc["issuer"], iss, "{path}: {doc}");
        for (key, endpoint) in [
            ("authorization_endpoint", "/oauth2/authorize"),
            ("token_endpoint", "/oauth2/token"),
            (
                "device_authorization_endpoint",
                "/oauth2/device_authorization",
            ),
            ("revocation_endpoint", "/oauth2/revoke"),
            ("introspection_endpoint", "/oauth2/introspect"),
            ("userinfo_endpoint", "/oauth2/userinfo"),
            ("jwks_uri", "/.well-known/jwks.json"),
        ] {
            assert_eq!(doc[key], format!("{iss}{endpoint}"), "{path}: {key}");
        }
        assert_eq!(
            doc["code_challenge_methods_supported"],
            json!(["S256"]),
            "{path}"
        );
        assert_eq!(doc["response_types_supported"], json!(["code"]), "{path}");
        let grants: BTreeSet<&str> = doc["grant_types_supported"]
            .as_array()
            .unwrap_or_else(|| panic!("{path}: grant_types_supported in {doc}"))
            .iter()
            .map(|g| g.as_str().unwrap())
            .collect();
        assert_eq!(
            grants,
            BTreeSet::from(["authorization_code", "refresh_token", DEVICE_GRANT]),
            "{path}"
        );
        let supported: BTreeSet<&str> = doc["scopes_supported"]
            .as_array()
            .map(|s| s.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        for scope in ["openid", "profile", "email", "offline_access"] {
            assert!(supported.contains(scope), "{path}: scope {scope} in {doc}");
        }
        documents.push(doc);
    }
    assert_eq!(
        documents[0], documents[1],
        "both paths serve the same document"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_native_app_signs_in_with_code_and_pkce_on_any_loopback_port() {
    let mut server = start().await;
    let user = sign_up(&server, "ada@example.com").await;
    let client = app_client(&server, NATIVE);
    let iss = issuer(&server);

    // The authorization request as the library builds it, on a port the
    // registration (`http://127.0.0.1/callback`) does not name.
    let port = random_port();
    let redirect = RedirectUrl::new(loopback(port)).unwrap();
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let nonce = random_string();
    let (url, state) = client
        .authorize_url(CsrfToken::new_random)
        .set_redirect_uri(Cow::Borrowed(&redirect))
        .add_scopes(scopes("openid profile email"))
        .add_extra_param("nonce", &nonce)
        .set_pkce_challenge(challenge)
        .url();
    let r = user.browser.get(url.as_str()).send().await.unwrap();
    assert_eq!(r.status(), 302);
    let to = location_of(&r).unwrap();
    assert!(
        to.starts_with(&format!("http://127.0.0.1:{port}/callback?")),
        "back on the app's own port: {to}"
    );
    let code = code_from(&server, &r, redirect.as_str(), state.secret());
    assert!(code.len() >= 43, "256 random bits: {code}");

    let tokens = client
        .exchange_code(AuthorizationCode::new(code))
        .set_redirect_uri(Cow::Borrowed(&redirect))
        .set_pkce_verifier(verifier)
        .request_async(&http())
        .await
        .expect("the code is redeemed");
    assert_eq!(*tokens.token_type(), BasicTokenType::Bearer);
    assert_eq!(tokens.expires_in(), Some(Duration::from_secs(900)));
    assert_eq!(token_scope(&tokens), scope_set("openid profile email"));
    assert!(tokens.refresh_token().is_some(), "a refresh token");

    // The access token, checked as a resource server would: JWKS only.
    let access = tokens.access_token().secret();
    let claims = verify_with_jwks(&server, access, NATIVE_AUDIENCE).await;
    assert_eq!(claims["iss"], iss);
    assert_eq!(claims["sub"], user.id);
    assert_eq!(claims["aud"], NATIVE_AUDIENCE);
    assert_eq!(claims["client_id"], NATIVE);
    assert_eq!(
        scope_set(claims["scope"].as_str().unwrap()),
        scope_set("openid profile email")
    );
    let sid = claims["sid"].as_str().expect("a sid").to_string();
    assert!(claims["jti"].is_string());
    assert!(claims["roles"].is_array());
    let iat = claims["iat"].as_i64().unwrap();
    assert_eq!(claims["exp"].as_i64().unwrap() - iat, 900);
    assert!((iat - support::unix_now()).abs() < 60);
    // The engine agrees, and only for the client's audience.
    let verified = server
        .engine()
        .verify_access_token(access, NATIVE_AUDIENCE)
        .expect("the engine verifies it");
    assert_eq!(verified.sid.as_deref(), Some(sid.as_str()));
    assert!(server.engine().verify_access_token(access, NATIVE).is_err());
    assert!(server
        .engine()
        .verify_access_token(access, "dashboard")
        .is_err());

    // The ID token: for the client id, with the nonce and the profile.
    let id_token = tokens
        .extra_fields()
        .id_token
        .as_deref()
        .expect("an id_token with openid");
    let id = verify_with_jwks(&server, id_token, NATIVE).await;
    assert_eq!(id["iss"], iss);
    assert_eq!(id["sub"], user.id);
    assert_eq!(id["aud"], NATIVE);
    assert_eq!(id["nonce"], nonce.as_str());
    assert_eq!(id["sid"], sid.as_str());
    assert!(id["auth_time"].is_i64(), "{id}");
    assert!(id["iat"].is_i64() && id["exp"].is_i64());
    assert_eq!(id["email"], user.email.as_str());
    assert_eq!(id["email_verified"], false);
    assert_eq!(id["name"], USER_NAME);

    // Userinfo with the access token.
    let r = userinfo(&server, access).await;
    assert_eq!(r.status(), 200);
    let info: Value = r.json().await.unwrap();
    assert_eq!(info["sub"], user.id);
    assert_eq!(info["email"], user.email.as_str());
    assert_eq!(info["email_verified"], false);
    assert_eq!(info["name"], USER_NAME);
    // POST works too.
    let r = plain_client()
        .post(server.url("/oauth2/userinfo"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // The private-use scheme redirect works as well (byte for byte).
    let pkce = Pkce::new();
    let code = code_for(&server, &user, NATIVE, NATIVE_APP_REDIRECT, &pkce, None).await;
    let app =
        tokens_of(redeem(&server, NATIVE, &code, NATIVE_APP_REDIRECT, &pkce.verifier).await).await;
    assert_ne!(app.sid, sid, "every code makes its own session");
    server.stop().await;
}

async fn tokens_of(r: reqwest::Response) -> AppTokens {
    support::oauth2::tokens(r).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_response_is_the_documented_json() {
    let mut server = start().await;
    let user = sign_up(&server, "json@example.com").await;
    let pkce = Pkce::new();
    let redirect = loopback(random_port());
    let code = code_for(
        &server,
        &user,
        NATIVE,
        &redirect,
        &pkce,
        Some("openid email"),
    )
    .await;
    let r = redeem(&server, NATIVE, &code, &redirect, &pkce.verifier).await;
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    let t = tokens_of(r).await;
    let body = t.body.as_object().unwrap();
    let keys: BTreeSet<&str> = body.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        BTreeSet::from([
            "access_token",
            "token_type",
            "expires_in",
            "refresh_token",
            "scope",
            "id_token"
        ])
    );
    assert_eq!(t.body["expires_in"], 900);
    assert_eq!(scope_set(&t.scope), scope_set("openid email"));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scopes_decide_what_the_tokens_and_userinfo_carry() {
    let mut server = start().await;
    let user = sign_up(&server, "scopes@example.com").await;
    let redirect = loopback(random_port());

    // No scope: every scope the client is registered for.
    let all = sign_in_app(&server, &user, NATIVE, &redirect, None).await;
    assert_eq!(scope_set(&all.scope), scope_set(ALL_SCOPES));
    assert!(all.id_token.is_some());

    // openid alone: the subject and nothing else.
    let bare = sign_in_app(&server, &user, NATIVE, &redirect, Some("openid")).await;
    assert_eq!(bare.scope, "openid");
    let info: Value = userinfo(&server, &bare.access).await.json().await.unwrap();
    assert_eq!(info["sub"], user.id);
    for absent in ["email", "email_verified", "name", "picture"] {
        assert!(info[absent].is_null(), "{absent} without its scope: {info}");
    }
    let id = verify_with_jwks(&server, bare.id_token.as_deref().unwrap(), NATIVE).await;
    assert!(id["email"].is_null() && id["name"].is_null(), "{id}");
    assert!(id.get("nonce").is_none(), "no nonce was asked for: {id}");

    // openid email: the address, not the profile.
    let mail = sign_in_app(&server, &user, NATIVE, &redirect, Some("openid email")).await;
    let info: Value = userinfo(&server, &mail.access).await.json().await.unwrap();
    assert_eq!(info["email"], user.email.as_str());
    assert_eq!(info["email_verified"], false);
    assert!(info["name"].is_null(), "{info}");

    // openid profile: the name, not the address.
    let profile = sign_in_app(&server, &user, NATIVE, &redirect, Some("openid profile")).await;
    let info: Value = userinfo(&server, &profile.access)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(info["name"], USER_NAME);
    assert!(info["email"].is_null(), "{info}");

    // Without openid: no ID token, and userinfo is not for this token.
    let no_oidc = sign_in_app(&server, &user, NATIVE, &redirect, Some("profile email")).await;
    assert!(no_oidc.id_token.is_none(), "{}", no_oidc.body);
    let r = userinfo(&server, &no_oidc.access).await;
    assert!(
        r.status() == 401 || r.status() == 403,
        "userinfo without openid: {}",
        r.status()
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_rotates_with_grace_and_a_reused_token_ends_the_family() {
    let mut server = start().await;
    let user = sign_up(&server, "rotate@example.com").await;
    let client = app_client(&server, NATIVE);
    let http = http();
    let first = library_sign_in(&server, &user, &client, "openid profile", None).await;
    let session = sid(&first);
    let r0 = first.refresh_token().unwrap().clone();

    let second = client
        .exchange_refresh_token(&r0)
        .request_async(&http)
        .await
        .expect("the first refresh");
    let r1 = second.refresh_token().expect("a successor").clone();
    assert_ne!(r1.secret(), r0.secret(), "rotation");
    assert_ne!(
        second.access_token().secret(),
        first.access_token().secret()
    );
    assert_eq!(sid(&second), session, "the same session");
    assert_eq!(token_scope(&second), scope_set("openid profile"));
    let claims = verify_with_jwks(&server, second.access_token().secret(), NATIVE_AUDIENCE).await;
    assert_eq!(claims["client_id"], NATIVE);

    // The immediate predecessor again, within the grace: the same successor.
    let retried = client
        .exchange_refresh_token(&r0)
        .request_async(&http)
        .await
        .expect("a retry within the grace");
    assert_eq!(
        retried.refresh_token().unwrap().secret(),
        r1.secret(),
        "the current successor"
    );

    let third = client
        .exchange_refresh_token(&r1)
        .request_async(&http)
        .await
        .expect("the second refresh");
    let r2 = third.refresh_token().unwrap().clone();
    assert_ne!(r2.secret(), r1.secret());
    assert_eq!(
        userinfo(&server, third.access_token().secret())
            .await
            .status(),
        200
    );

    // r0 is two generations old now: reuse, and the family ends.
    let (error, description) = token_error(
        client
            .exchange_refresh_token(&r0)
            .request_async(&http)
            .await,
    );
    assert_eq!(error, BasicErrorResponseType::InvalidGrant);
    // The contract words it "refresh token reused"; the description is for
    // humans, so only its presence is checked.
    assert!(
        description.as_deref().is_some_and(|d| !d.is_empty()),
        "{description:?}"
    );
    let (error, _) = token_error(
        client
            .exchange_refresh_token(&r2)
            .request_async(&http)
            .await,
    );
    assert_eq!(
        error,
        BasicErrorResponseType::InvalidGrant,
        "the newest token is dead too"
    );
    assert_eq!(
        family_generation(&server, &session)
            .await
            .map(|(_, revoked)| revoked),
        Some(true),
        "the family is kept revoked"
    );
    assert_invalid_token(&userinfo(&server, third.access_token().secret()).await);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_may_narrow_the_scope_but_not_widen_it() {
    let mut server = start().await;
    let user = sign_up(&server, "narrow@example.com").await;
    let redirect = loopback(random_port());
    let t = sign_in_app(&server, &user, NATIVE, &redirect, Some("openid profile")).await;

    let narrowed = tokens_of(
        token_as(
            &server,
            NATIVE,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &t.refresh),
                ("scope", "openid"),
            ],
        )
        .await,
    )
    .await;
    assert_eq!(narrowed.scope, "openid");
    assert_eq!(jwt_claims(&narrowed.access)["scope"], "openid");
    assert_eq!(narrowed.sid, t.sid);

    // A scope the client is not registered for.
    let r = token_as(
        &server,
        NATIVE,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &narrowed.refresh),
            ("scope", "openid admin"),
        ],
    )
    .await;
    assert_eq!(oauth_error(r, 400).await, "invalid_scope");

    // A scope the client may have but the session was not granted: not a
    // subset of the session's (RFC 6749 §6).
    let generation = family_generation(&server, &t.sid).await;
    let r = token_as(
        &server,
        NATIVE,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &narrowed.refresh),
            ("scope", "openid profile email"),
        ],
    )
    .await;
    assert_eq!(
        oauth_error(r, 400).await,
        "invalid_scope",
        "widening the session's scope at a refresh"
    );
    assert_eq!(
        family_generation(&server, &t.sid).await,
        generation,
        "a refused refresh spends nothing"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_is_signed_in_once_the_user_approves_on_the_device_page() {
    let mut server = start().await;
    let user = sign_up(&server, "tv@example.com").await;
    let client = app_client(&server, NATIVE);
    let http = http();
    let iss = issuer(&server);

    let details: StandardDeviceAuthorizationResponse = client
        .exchange_device_code()
        .add_scopes(scopes("openid profile"))
        .request_async(&http)
        .await
        .expect("device authorization");
    let user_code = details.user_code().secret().clone();
    let alphabet = "BCDFGHJKLMNPQRSTVWXZ";
    assert_eq!(user_code.len(), 9, "{user_code}");
    for (i, c) in user_code.chars().enumerate() {
        if i == 4 {
            assert_eq!(c, '-', "{user_code}");
        } else {
            assert!(alphabet.contains(c), "{user_code}");
        }
    }
    assert_eq!(
        details.verification_uri().as_str(),
        format!("{iss}/oauth2/device")
    );
    assert_eq!(
        details
            .verification_uri_complete()
            .expect("verification_uri_complete")
            .secret(),
        &format!("{iss}/oauth2/device?user_code={user_code}")
    );
    assert_eq!(details.expires_in(), Duration::from_secs(600));
    assert_eq!(details.interval(), Duration::from_secs(1));
    let device_code = details.device_code().secret().clone();
    assert!(device_code.len() >= 43, "256 bits: {device_code}");

    // The device polls before the user has decided.
    let r = device_poll(&server, NATIVE, &device_code).await;
    assert_eq!(oauth_error(r, 400).await, "authorization_pending");
    tokio::time::sleep(Duration::from_millis(1100)).await;

    // The library polls while the user approves in their browser.
    let approve = async {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        // Typed in lower case without the dash: the same code.
        let typed = user_code.replace('-', "").to_lowercase();
        let r = device_page(&server, &user.browser, &typed).await;
        assert_eq!(r.status(), 200, "the device page");
        let html = r.text().await.unwrap();
        assert!(
            html.contains(NATIVE_NAME),
            "the page names the client: {html}"
        );
        assert!(!html.contains("<script"), "no scripts: {html}");
        let csrf = hidden_input(&html, "csrf").expect("a csrf input");
        let r = device_decide(
            &server,
            &user.browser,
            &user_code,
            Some(&csrf),
            "approve",
            Some(&iss),
        )
        .await;
        assert!(
            r.status().is_success() || r.status().is_redirection(),
            "approved: {}",
            r.status()
        );
    };
    let poll = client.exchange_device_access_token(&details).request_async(
        &http,
        tokio::time::sleep,
        Some(Duration::from_secs(30)),
    );
    let ((), polled) = tokio::join!(approve, poll);
    let tokens = polled.expect("the device gets its tokens");
    assert_eq!(token_scope(&tokens), scope_set("openid profile"));
    assert!(tokens.refresh_token().is_some());
    let claims = verify_with_jwks(&server, tokens.access_token().secret(), NATIVE_AUDIENCE).await;
    assert_eq!(claims["sub"], user.id);
    assert_eq!(claims["client_id"], NATIVE);
    let id_token = tokens
        .extra_fields()
        .id_token
        .as_deref()
        .expect("an id_token");
    assert_eq!(
        verify_with_jwks(&server, id_token, NATIVE).await["sub"],
        user.id
    );
    let info: Value = userinfo(&server, tokens.access_token().secret())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(info["name"], USER_NAME);

    // The device code is spent; the page no longer knows the user code.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let r = device_poll(&server, NATIVE, &device_code).await;
    assert_eq!(oauth_error(r, 400).await, "invalid_grant");
    let r = device_page(&server, &user.browser, &user_code).await;
    assert_eq!(r.status(), 400, "a used code shows the form again");

    // And the session refreshes like any other.
    let refreshed = client
        .exchange_refresh_token(tokens.refresh_token().unwrap())
        .request_async(&http)
        .await
        .expect("a device session refreshes");
    assert_eq!(sid(&refreshed), sid(&tokens));
    server.stop().await;
}

/// The entry of session `sid` names the app surface, the client's id and name.
fn assert_app_entry(where_: &str, sessions: &[Value], sid: &str, client_id: &str, name: &str) {
    let entry =
        listed(sessions, sid).unwrap_or_else(|| panic!("{where_}: {sid} listed in {sessions:?}"));
    assert_eq!(entry["surface"], "app", "{where_}: {entry}");
    let text = entry.to_string();
    assert!(
        text.contains(client_id),
        "{where_}: the client id in {entry}"
    );
    assert!(text.contains(name), "{where_}: the client name in {entry}");
}

async fn assert_session_ended(server: &TestServer, t: &AppTokens, client_id: &str) {
    let r = refresh(server, client_id, &t.refresh).await;
    assert_eq!(oauth_error(r, 400).await, "invalid_grant");
    assert_invalid_token(&userinfo(server, &t.access).await);
    assert_eq!(
        introspect(server, &t.access).await,
        json!({"active": false})
    );
    assert_eq!(
        introspect(server, &t.refresh).await,
        json!({"active": false})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_sessions_are_listed_everywhere_and_revoking_them_there_ends_them() {
    let mut server = start().await;
    let user = sign_up(&server, "lists@example.com").await;
    let desktop = sign_in_app(&server, &user, NATIVE, &loopback(random_port()), None).await;
    let phone = sign_in_app(&server, &user, MOBILE, MOBILE_REDIRECT, None).await;
    let second_desktop =
        sign_in_app(&server, &user, NATIVE, NATIVE_APP_REDIRECT, Some("openid")).await;

    let dashboard = dashboard_access(&server, &user.email).await;
    let items = dashboard_sessions(&server, &dashboard).await;
    assert_app_entry("dashboard", &items, &desktop.sid, NATIVE, NATIVE_NAME);
    assert_app_entry("dashboard", &items, &phone.sid, MOBILE, MOBILE_NAME);
    assert_app_entry(
        "dashboard",
        &items,
        &second_desktop.sid,
        NATIVE,
        NATIVE_NAME,
    );
    let items = better_auth_sessions(&server, &user).await;
    assert_app_entry("list-sessions", &items, &desktop.sid, NATIVE, NATIVE_NAME);
    assert_app_entry("list-sessions", &items, &phone.sid, MOBILE, MOBILE_NAME);
    let admin = admin_access(&server).await;
    let r = plain_client()
        .get(server.url(&format!("/api/v1/admin/users/{}/sessions", user.id)))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    let items = body["sessions"].as_array().unwrap().clone();
    assert_app_entry("admin", &items, &desktop.sid, NATIVE, NATIVE_NAME);
    assert_app_entry("admin", &items, &phone.sid, MOBILE, MOBILE_NAME);
    assert_eq!(introspect(&server, &desktop.access).await["active"], true);

    // Ended on the dashboard.
    let r = plain_client()
        .delete(server.url(&format!("/api/v1/auth/sessions/{}", desktop.sid)))
        .bearer_auth(&dashboard)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_session_ended(&server, &desktop, NATIVE).await;
    assert!(listed(&dashboard_sessions(&server, &dashboard).await, &desktop.sid).is_none());

    // Ended through Better Auth's revoke-session.
    let r = user
        .browser
        .post(server.url("/api/auth/revoke-session"))
        .header("origin", FRONTEND)
        .json(&json!({"id": phone.sid}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_session_ended(&server, &phone, MOBILE).await;

    // Ended by an operator.
    let r = plain_client()
        .delete(server.url(&format!(
            "/api/v1/admin/users/{}/sessions/{}",
            user.id, second_desktop.sid
        )))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_session_ended(&server, &second_desktop, NATIVE).await;

    // The web session the user approved from is untouched.
    let items = better_auth_sessions(&server, &user).await;
    assert!(items.iter().all(|s| s["surface"] != "app"), "{items:?}");
    server.stop().await;
}

/// `POST /oauth2/revoke` as the native app, with a `token_type_hint`.
async fn revoke_hinted(server: &TestServer, token: &str, hint: &str) -> reqwest::Response {
    plain_client()
        .post(server.url("/oauth2/revoke"))
        .form(&[
            ("token", token),
            ("token_type_hint", hint),
            ("client_id", NATIVE),
        ])
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_ends_the_session_of_a_refresh_or_an_access_token() {
    let mut server = start().await;
    let user = sign_up(&server, "revoke@example.com").await;
    let client = app_client(&server, NATIVE);
    let http = http();

    let by_refresh = library_sign_in(&server, &user, &client, "openid", None).await;
    // The oauth2 crate refuses a revocation endpoint without TLS
    // (`ConfigurationError::InsecureUrl`), so revocation is raw HTTP here.
    let r = revoke_hinted(
        &server,
        by_refresh.refresh_token().unwrap().secret(),
        "refresh_token",
    )
    .await;
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().is_empty(), "an empty body");
    let (error, _) = token_error(
        client
            .exchange_refresh_token(by_refresh.refresh_token().unwrap())
            .request_async(&http)
            .await,
    );
    assert_eq!(error, BasicErrorResponseType::InvalidGrant);
    assert_invalid_token(&userinfo(&server, by_refresh.access_token().secret()).await);
    assert!(!stored_session_ids(&server, &user.id)
        .await
        .contains(&sid(&by_refresh)));

    let by_access = library_sign_in(&server, &user, &client, "openid", None).await;
    let r = revoke(&server, NATIVE, by_access.access_token().secret()).await;
    assert_eq!(r.status(), 200);
    let (error, _) = token_error(
        client
            .exchange_refresh_token(by_access.refresh_token().unwrap())
            .request_async(&http)
            .await,
    );
    assert_eq!(error, BasicErrorResponseType::InvalidGrant);
    assert_invalid_token(&userinfo(&server, by_access.access_token().secret()).await);

    // Unknown, malformed or already revoked: 200 with an empty body all the same.
    for token in [
        "not-a-token",
        "a.b.c",
        "00000000-0000-4000-8000-000000000000.AAAA",
        by_refresh.refresh_token().unwrap().secret().as_str(),
        by_access.access_token().secret().as_str(),
    ] {
        let r = revoke(&server, NATIVE, token).await;
        assert_eq!(r.status(), 200, "{token:?}");
        assert!(r.text().await.unwrap().is_empty());
    }
    // No token at all (an empty one is none) is a malformed request (RFC 7009 §2.1).
    let r = revoke(&server, NATIVE, "").await;
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_request");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_introspects_access_and_refresh_tokens() {
    let mut server = start().await;
    let user = sign_up(&server, "watched@example.com").await;
    let app = sign_in_app(
        &server,
        &user,
        NATIVE,
        &loopback(random_port()),
        Some("openid email"),
    )
    .await;
    let iss = issuer(&server);

    // With the library (HTTP Basic with the secret).
    let service = app_client(&server, SERVICE);
    let http = http();
    let seen = service
        .introspect(&AccessToken::new(app.access.clone()))
        .request_async(&http)
        .await
        .expect("introspection");
    assert!(seen.active());
    assert_eq!(seen.client_id().map(|c| c.as_str()), Some(NATIVE));
    assert_eq!(seen.sub(), Some(user.id.as_str()));

    // Every documented field, raw.
    let claims = jwt_claims(&app.access);
    let active = introspect(&server, &app.access).await;
    assert_eq!(active["active"], true);
    assert_eq!(active["token_type"], "access_token");
    assert_eq!(active["client_id"], NATIVE);
    assert_eq!(active["sub"], user.id);
    assert_eq!(
        scope_set(active["scope"].as_str().unwrap()),
        scope_set("openid email")
    );
    assert_eq!(active["sid"], app.sid);
    assert_eq!(active["iss"], iss);
    assert!(
        active["aud"] == NATIVE_AUDIENCE || active["aud"] == json!([NATIVE_AUDIENCE]),
        "{active}"
    );
    assert_eq!(active["iat"], claims["iat"]);
    assert_eq!(active["exp"], claims["exp"]);

    let refresh_seen = introspect(&server, &app.refresh).await;
    assert_eq!(refresh_seen["active"], true, "{refresh_seen}");
    assert_eq!(refresh_seen["token_type"], "refresh_token");
    assert_eq!(refresh_seen["client_id"], NATIVE);
    assert_eq!(refresh_seen["sub"], user.id);
    assert_eq!(refresh_seen["sid"], app.sid);

    // Rotated: the successor is active (the predecessor: see
    // `a_rotated_refresh_token_is_no_longer_active`).
    let next = tokens_of(refresh(&server, NATIVE, &app.refresh).await).await;
    assert_eq!(introspect(&server, &next.refresh).await["active"], true);
    // Introspecting did not count as a reuse.
    assert_eq!(userinfo(&server, &next.access).await.status(), 200);

    // client_secret_post works as well.
    let r = plain_client()
        .post(server.url("/oauth2/introspect"))
        .form(&[
            ("token", next.access.as_str()),
            ("client_id", SERVICE),
            ("client_secret", SERVICE_SECRET),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["active"], true);

    // Revoked: inactive at once, though the JWT has not expired.
    assert_eq!(revoke(&server, NATIVE, &next.refresh).await.status(), 200);
    assert_eq!(
        introspect(&server, &next.access).await,
        json!({"active": false})
    );
    assert_eq!(
        introspect(&server, &next.refresh).await,
        json!({"active": false})
    );
    for junk in ["garbage", "a.b.c"] {
        assert_eq!(introspect(&server, junk).await, json!({"active": false}));
    }
    // Last, as it is the least of it: an active refresh token carries every
    // documented field too (`iss`, `aud`, `iat`, `exp` as well).
    assert_eq!(refresh_seen["iss"], iss, "{refresh_seen}");
    assert!(
        refresh_seen["iat"].is_i64() && refresh_seen["exp"].is_i64(),
        "{refresh_seen}"
    );
    assert!(
        refresh_seen["aud"] == NATIVE_AUDIENCE || refresh_seen["aud"] == json!([NATIVE_AUDIENCE]),
        "aud of an active refresh token: {refresh_seen}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_refresh_token_is_no_longer_active() {
    // "a refresh token [is active] while it is the current token of a live family"
    let mut server = start().await;
    let user = sign_up(&server, "rotated@example.com").await;
    let app = sign_in_app(&server, &user, NATIVE, &loopback(random_port()), None).await;
    let next = tokens_of(refresh(&server, NATIVE, &app.refresh).await).await;
    assert_eq!(introspect(&server, &next.refresh).await["active"], true);
    assert_eq!(
        introspect(&server, &app.refresh).await,
        json!({"active": false}),
        "the retired predecessor, introspected right after the rotation"
    );
    // Asking did not end anything.
    assert_eq!(userinfo(&server, &next.access).await.status(), 200);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_client_runs_the_code_flow_with_its_secret() {
    let mut server = start().await;
    let user = sign_up(&server, "svc@example.com").await;
    let service = app_client(&server, SERVICE);
    let http = http();
    let redirect =
        RedirectUrl::new(SERVICE_REDIRECT.replace("127.0.0.1", "127.0.0.1:8123")).unwrap();
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, state) = service
        .authorize_url(CsrfToken::new_random)
        .set_redirect_uri(Cow::Borrowed(&redirect))
        .add_scopes(scopes("openid"))
        .set_pkce_challenge(challenge)
        .url();
    let r = user.browser.get(url.as_str()).send().await.unwrap();
    let code = code_from(&server, &r, redirect.as_str(), state.secret());
    let tokens = service
        .exchange_code(AuthorizationCode::new(code))
        .set_redirect_uri(Cow::Borrowed(&redirect))
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .expect("a confidential client redeems with HTTP Basic");
    let claims = verify_with_jwks(&server, tokens.access_token().secret(), SERVICE).await;
    assert_eq!(claims["client_id"], SERVICE);
    let refreshed = service
        .exchange_refresh_token(tokens.refresh_token().unwrap())
        .request_async(&http)
        .await
        .expect("and refreshes with it");
    assert_eq!(sid(&refreshed), sid(&tokens));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_session_survives_a_restart() {
    let mut server = start().await;
    let user = sign_up(&server, "restart@example.com").await;
    let client = app_client(&server, NATIVE);
    let before = library_sign_in(&server, &user, &client, "openid profile", None).await;

    server.restart().await;
    let client = app_client(&server, NATIVE);
    let http = http();
    // The old access token still verifies (the keys are kept) and its session is live.
    assert_eq!(
        userinfo(&server, before.access_token().secret())
            .await
            .status(),
        200
    );
    let after = client
        .exchange_refresh_token(before.refresh_token().unwrap())
        .request_async(&http)
        .await
        .expect("refresh after a restart");
    assert_eq!(sid(&after), sid(&before));
    let claims = verify_with_jwks(&server, after.access_token().secret(), NATIVE_AUDIENCE).await;
    assert_eq!(claims["sub"], user.id);
    let dashboard = dashboard_access(&server, &user.email).await;
    assert_app_entry(
        "dashboard after restart",
        &dashboard_sessions(&server, &dashboard).await,
        &sid(&after),
        NATIVE,
        NATIVE_NAME,
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_token_alone_is_enough_for_the_library() {
    // An app that kept only the newest refresh token across launches.
    let mut server = start().await;
    let user = sign_up(&server, "keeps@example.com").await;
    let client = app_client(&server, NATIVE);
    let http = http();
    let first = library_sign_in(&server, &user, &client, "openid", None).await;
    let mut current: RefreshToken = first.refresh_token().unwrap().clone();
    for _ in 0..3 {
        let next = client
            .exchange_refresh_token(&current)
            .request_async(&http)
            .await
            .expect("refresh");
        assert_eq!(sid(&next), sid(&first));
        current = next.refresh_token().unwrap().clone();
    }
    assert_eq!(
        family_generation(&server, &sid(&first))
            .await
            .map(|(_, revoked)| revoked),
        Some(false)
    );
    server.stop().await;
}
