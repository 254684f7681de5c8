//! Helpers of the OAuth 2.1 authorization server tests (`tests/oauth2_*.rs`,
//! `docs/contracts/oauth2.md`): the registered clients, a signed-up user with
//! a web session, PKCE, the authorization request, the token, device,
//! revocation, introspection and userinfo endpoints spoken as raw HTTP, and
//! token verification with nothing but the JWKS document.

use base64::Engine as _;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tachigo_engine::config::{ClientConfig, Config, ConfigDuration};

use super::{browser, dashboard_login, plain_client, query_param, TestServer};
use super::{DASHBOARD_PASSWORD, FRONTEND};

/// A native desktop app: loopback and private-use-scheme redirects, every
/// scope, its own access-token audience.
pub const NATIVE: &str = "tachigo-desktop";
pub const NATIVE_NAME: &str = "tachigo for desktop";
pub const NATIVE_AUDIENCE: &str = "tachigo-desktop-api";
/// Registered without a port: any port matches (RFC 8252 §7.3).
pub const NATIVE_REDIRECT: &str = "http://127.0.0.1/callback";
pub const NATIVE_APP_REDIRECT: &str = "com.tachigo.desktop:/oauth2redirect";

/// A second native app (a phone): one private-use redirect, no `email` scope.
pub const MOBILE: &str = "tachigo-mobile";
pub const MOBILE_NAME: &str = "tachigo for phones";
pub const MOBILE_REDIRECT: &str = "com.tachigo.mobile:/oauth2redirect";

/// A backend service: confidential, may introspect.
pub const SERVICE: &str = "tachigo-watch";
pub const SERVICE_NAME: &str = "tachigo watch service";
pub const SERVICE_SECRET: &str = "watch-service-secret-0123456789-abcdefghijkl";
pub const SERVICE_REDIRECT: &str = "http://127.0.0.1/service-callback";

/// A Chrome extension (`identity.getRedirectURL()`).
pub const EXTENSION: &str = "tachigo-extension";
pub const EXTENSION_NAME: &str = "tachigo for Chrome";
pub const EXTENSION_REDIRECT: &str = "https://abcdefghijklmnopabcdefghijklmnop.chromiumapp.org/";

pub const ALL_SCOPES: &str = "openid profile email offline_access";
pub const SESSION_COOKIE: &str = "tachigo.session_token";
pub const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

fn client(
    id: &str,
    name: &str,
    kind: &str,
    redirect_uris: &[&str],
    scopes: &[&str],
    audience: Option<&str>,
) -> ClientConfig {
    // Through serde, as the configuration file is read: fields added later
    // with defaults keep this compiling.
    let mut entry = json!({
        "id": id,
        "name": name,
        "kind": kind,
        "redirect_uris": redirect_uris,
        "scopes": scopes,
    });
    if let Some(audience) = audience {
        entry["audience"] = audience.into();
    }
    serde_json::from_value(entry).expect("a valid [[clients]] entry")
}

/// The clients every OAuth 2.1 test server knows.
pub fn test_clients() -> Vec<ClientConfig> {
    let all = ["openid", "profile", "email", "offline_access"];
    let mut service = client(
        SERVICE,
        SERVICE_NAME,
        "service",
        &[SERVICE_REDIRECT],
        &all,
        None,
    );
    service.secret = Some(SERVICE_SECRET.into());
    vec![
        client(
            NATIVE,
            NATIVE_NAME,
            "native",
            &[NATIVE_REDIRECT, NATIVE_APP_REDIRECT],
            &all,
            Some(NATIVE_AUDIENCE),
        ),
        client(
            MOBILE,
            MOBILE_NAME,
            "native",
            &[MOBILE_REDIRECT],
            &["openid", "profile", "offline_access"],
            None,
        ),
        service,
        client(
            EXTENSION,
            EXTENSION_NAME,
            "browser_extension",
            &[EXTENSION_REDIRECT],
            &all,
            None,
        ),
    ]
}

/// The test clients, a 1 s device polling interval, and room for sign-ups.
pub fn configure(config: &mut Config) {
    config.clients = test_clients();
    config.oauth2.device_poll_interval = ConfigDuration::from_secs(1);
    config.email.requests_per_minute = 1000;
}

pub async fn start() -> TestServer {
    start_with(|_| {}).await
}

pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> TestServer {
    TestServer::start_with(|config| {
        configure(config);
        adjust(config);
    })
    .await
}

/// The issuer: `server.public_url` without a trailing slash.
pub fn issuer(server: &TestServer) -> String {
    server
        .config
        .server
        .public_url
        .trim_end_matches('/')
        .to_string()
}

// ----- users -----

/// A user signed up with email and password through Better Auth's
/// `/api/auth/sign-up/email`, in a browser holding the session cookie.
pub struct WebUser {
    pub browser: reqwest::Client,
    pub id: String,
    pub email: String,
    pub cookie: String,
}

pub const USER_NAME: &str = "Ada Lovelace";

pub async fn sign_up(server: &TestServer, email: &str) -> WebUser {
    let browser = browser();
    let r = browser
        .post(server.url("/api/auth/sign-up/email"))
        .header("origin", FRONTEND)
        .json(&json!({"name": USER_NAME, "email": email, "password": DASHBOARD_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "sign-up of {email}");
    let cookie = super::set_cookie_value(&r, SESSION_COOKIE).expect("a session cookie");
    assert!(!cookie.is_empty());
    let body: Value = r.json().await.unwrap();
    WebUser {
        browser,
        id: body["user"]["id"].as_str().unwrap().to_string(),
        email: email.to_string(),
        cookie,
    }
}

/// A dashboard access token of the user (a dashboard login with the password).
pub async fn dashboard_access(server: &TestServer, email: &str) -> String {
    let r = dashboard_login(server, &plain_client(), email).await;
    assert_eq!(r.status(), 200, "dashboard login");
    let body: Value = r.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_string()
}

/// `GET /api/v1/auth/sessions` with a dashboard access token.
pub async fn dashboard_sessions(server: &TestServer, access: &str) -> Vec<Value> {
    let r = plain_client()
        .get(server.url("/api/v1/auth/sessions"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "dashboard session list");
    r.json().await.unwrap()
}

/// `GET /api/auth/list-sessions` with the user's session cookie.
pub async fn better_auth_sessions(server: &TestServer, user: &WebUser) -> Vec<Value> {
    let r = user
        .browser
        .get(server.url("/api/auth/list-sessions"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "list-sessions");
    r.json().await.unwrap()
}

/// An admin user and a dashboard access token of a live session of theirs.
pub async fn admin_access(server: &TestServer) -> String {
    let engine = server.engine();
    let admin = engine
        .create_user(tachigo_engine::NewUser {
            email: Some("root@example.com".into()),
            roles: vec!["admin".into()],
            ..tachigo_engine::NewUser::default()
        })
        .await
        .unwrap();
    let created = engine
        .create_session(
            &admin.id,
            tachigo_engine::NewSession {
                surface: tachigo_engine::Surface::Dashboard,
                user_agent: None,
                ip: None,
                context: None,
            },
        )
        .await
        .unwrap();
    engine
        .mint_access_token(
            &admin.id,
            Some(&created.session.id),
            tachigo_engine::access_token::AUDIENCE_DASHBOARD,
            &admin.roles,
            Default::default(),
        )
        .0
}

/// The listed session with `id`, if any.
pub fn listed<'a>(sessions: &'a [Value], id: &str) -> Option<&'a Value> {
    sessions.iter().find(|s| s["id"] == id)
}

// ----- PKCE and the authorization request -----

pub fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

pub fn random_string() -> String {
    b64url(&rand::random::<[u8; 16]>())
}

/// A PKCE pair: a 43-character verifier and its S256 challenge.
#[derive(Clone, Debug)]
pub struct Pkce {
    pub verifier: String,
    pub challenge: String,
}

impl Pkce {
    pub fn new() -> Pkce {
        let verifier = b64url(&rand::random::<[u8; 32]>());
        let challenge = b64url(&Sha256::digest(verifier.as_bytes()));
        Pkce {
            verifier,
            challenge,
        }
    }
}

impl Default for Pkce {
    fn default() -> Self {
        Pkce::new()
    }
}

/// A loopback redirect on `port`, matching the registered `NATIVE_REDIRECT`.
pub fn loopback(port: u16) -> String {
    format!("http://127.0.0.1:{port}/callback")
}

pub fn random_port() -> u16 {
    49152 + rand::random::<u16>() % 16000
}

pub type Params = Vec<(String, String)>;

/// A well-formed authorization request's query.
pub fn authorize_params(client_id: &str, redirect_uri: &str, pkce: &Pkce, state: &str) -> Params {
    [
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", redirect_uri),
        ("state", state),
        ("code_challenge", pkce.challenge.as_str()),
        ("code_challenge_method", "S256"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// Replaces (or adds) parameter `name`.
pub fn set_param(params: &mut Params, name: &str, value: &str) {
    remove_param(params, name);
    params.push((name.to_string(), value.to_string()));
}

pub fn remove_param(params: &mut Params, name: &str) {
    params.retain(|(k, _)| k != name);
}

pub fn authorize_url(server: &TestServer, params: &Params) -> String {
    url::Url::parse_with_params(&server.url("/oauth2/authorize"), params)
        .unwrap()
        .to_string()
}

/// `GET /oauth2/authorize` as a navigation of `client` (redirects not followed).
pub async fn authorize(
    server: &TestServer,
    client: &reqwest::Client,
    params: &Params,
) -> reqwest::Response {
    client
        .get(authorize_url(server, params))
        .send()
        .await
        .unwrap()
}

/// The `Location` of a 302, or `None`.
pub fn location_of(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get(reqwest::header::LOCATION)
        .map(|v| v.to_str().unwrap().to_string())
}

/// A redirect back to `redirect_uri` carrying a code: checks `state` and
/// `iss`, returns the code.
pub fn code_from(
    server: &TestServer,
    response: &reqwest::Response,
    redirect_uri: &str,
    state: &str,
) -> String {
    assert_eq!(response.status(), 302, "authorize redirects back");
    let to = location_of(response).unwrap();
    assert!(
        to.starts_with(&format!("{redirect_uri}?")),
        "redirected to {to}, expected {redirect_uri}?…"
    );
    assert_eq!(query_param(&to, "state").as_deref(), Some(state), "{to}");
    assert_eq!(query_param(&to, "iss"), Some(issuer(server)), "{to}");
    assert_eq!(query_param(&to, "error"), None, "{to}");
    query_param(&to, "code").unwrap_or_else(|| panic!("no code in {to}"))
}

/// An error redirect back to `redirect_uri` (with `state`, `iss` and no
/// code); returns the `error`.
pub fn redirect_error(
    server: &TestServer,
    response: &reqwest::Response,
    redirect_uri: &str,
    state: &str,
) -> String {
    assert_eq!(response.status(), 302, "the error is redirected back");
    let to = location_of(response).unwrap();
    assert!(
        to.starts_with(&format!("{redirect_uri}?")),
        "redirected to {to}, expected {redirect_uri}?…"
    );
    assert_eq!(query_param(&to, "state").as_deref(), Some(state), "{to}");
    assert_eq!(query_param(&to, "iss"), Some(issuer(server)), "{to}");
    assert_eq!(
        query_param(&to, "code"),
        None,
        "no code with an error: {to}"
    );
    assert!(
        query_param(&to, "error_description").is_some_and(|d| !d.is_empty()),
        "an error_description: {to}"
    );
    query_param(&to, "error").unwrap_or_else(|| panic!("no error in {to}"))
}

/// A code for `user` and `client_id` (with `scope`, or the client's default).
pub async fn code_for(
    server: &TestServer,
    user: &WebUser,
    client_id: &str,
    redirect_uri: &str,
    pkce: &Pkce,
    scope: Option<&str>,
) -> String {
    let state = random_string();
    let mut params = authorize_params(client_id, redirect_uri, pkce, &state);
    if let Some(scope) = scope {
        set_param(&mut params, "scope", scope);
    }
    let r = authorize(server, &user.browser, &params).await;
    code_from(server, &r, redirect_uri, &state)
}

// ----- the token endpoint and friends -----

/// A form POST to `path` with no client authentication.
pub async fn post_form(
    server: &TestServer,
    path: &str,
    form: &[(&str, &str)],
) -> reqwest::Response {
    plain_client()
        .post(server.url(path))
        .form(form)
        .send()
        .await
        .unwrap()
}

/// A form POST to `path` as `client_id`: the service client with HTTP Basic
/// and its secret, public clients with `client_id` in the body.
pub async fn post_as(
    server: &TestServer,
    client_id: &str,
    path: &str,
    form: &[(&str, &str)],
) -> reqwest::Response {
    let request = plain_client().post(server.url(path));
    if client_id == SERVICE {
        request
            .basic_auth(SERVICE, Some(SERVICE_SECRET))
            .form(form)
            .send()
            .await
            .unwrap()
    } else {
        let mut form = form.to_vec();
        form.push(("client_id", client_id));
        request.form(&form).send().await.unwrap()
    }
}

pub async fn token_as(
    server: &TestServer,
    client_id: &str,
    form: &[(&str, &str)],
) -> reqwest::Response {
    post_as(server, client_id, "/oauth2/token", form).await
}

pub async fn redeem(
    server: &TestServer,
    client_id: &str,
    code: &str,
    redirect_uri: &str,
    verifier: &str,
) -> reqwest::Response {
    token_as(
        server,
        client_id,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("code_verifier", verifier),
        ],
    )
    .await
}

pub async fn refresh(
    server: &TestServer,
    client_id: &str,
    refresh_token: &str,
) -> reqwest::Response {
    token_as(
        server,
        client_id,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ],
    )
    .await
}

/// An RFC 6749 §5.2 error: `status`, JSON with `error` (returned), no caching
/// when `no_store`.
pub async fn oauth_error(response: reqwest::Response, status: u16) -> String {
    let got = response.status();
    let cache = response
        .headers()
        .get("cache-control")
        .map(|v| v.to_str().unwrap().to_string());
    let text = response.text().await.unwrap();
    assert_eq!(got, status, "expected {status}, body {text}");
    assert_eq!(
        cache.as_deref(),
        Some("no-store"),
        "Cache-Control of {text}"
    );
    let body: Value =
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("a JSON error body, got {text}"));
    body["error"]
        .as_str()
        .unwrap_or_else(|| panic!("an error field in {body}"))
        .to_string()
}

/// What a successful token response carries.
#[derive(Clone, Debug)]
pub struct AppTokens {
    pub access: String,
    pub refresh: String,
    pub id_token: Option<String>,
    pub scope: String,
    /// The session (`sid` of the access token).
    pub sid: String,
    pub body: Value,
}

/// A 200 token response (checked for `Cache-Control: no-store` and `Bearer`).
pub async fn tokens(response: reqwest::Response) -> AppTokens {
    let status = response.status();
    let cache = response
        .headers()
        .get("cache-control")
        .map(|v| v.to_str().unwrap().to_string());
    let text = response.text().await.unwrap();
    assert_eq!(status, 200, "a token response, got {text}");
    assert_eq!(cache.as_deref(), Some("no-store"));
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["token_type"], "Bearer", "{body}");
    let access = body["access_token"]
        .as_str()
        .expect("access_token")
        .to_string();
    let sid = jwt_claims(&access)["sid"]
        .as_str()
        .expect("a sid claim")
        .to_string();
    AppTokens {
        refresh: body["refresh_token"]
            .as_str()
            .expect("refresh_token")
            .to_string(),
        id_token: body["id_token"].as_str().map(str::to_string),
        scope: body["scope"].as_str().unwrap_or_default().to_string(),
        access,
        sid,
        body,
    }
}

/// A whole code flow of `user` with `client_id` (a fresh PKCE pair).
pub async fn sign_in_app(
    server: &TestServer,
    user: &WebUser,
    client_id: &str,
    redirect_uri: &str,
    scope: Option<&str>,
) -> AppTokens {
    let pkce = Pkce::new();
    let code = code_for(server, user, client_id, redirect_uri, &pkce, scope).await;
    tokens(redeem(server, client_id, &code, redirect_uri, &pkce.verifier).await).await
}

/// `GET /oauth2/userinfo` with a bearer token.
pub async fn userinfo(server: &TestServer, access: &str) -> reqwest::Response {
    plain_client()
        .get(server.url("/oauth2/userinfo"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap()
}

/// A userinfo answer refusing the token: 401 and `WWW-Authenticate: Bearer error="invalid_token"`.
pub fn assert_invalid_token(response: &reqwest::Response) {
    assert_eq!(response.status(), 401, "userinfo refuses the token");
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    assert!(
        challenge.starts_with("Bearer") && challenge.contains("error=\"invalid_token\""),
        "WWW-Authenticate: {challenge:?}"
    );
}

/// `POST /oauth2/introspect` by the service client; the JSON answer.
pub async fn introspect(server: &TestServer, token: &str) -> Value {
    let r = post_as(server, SERVICE, "/oauth2/introspect", &[("token", token)]).await;
    assert_eq!(r.status(), 200, "introspection by the service client");
    r.json().await.unwrap()
}

/// `POST /oauth2/revoke` as `client_id`.
pub async fn revoke(server: &TestServer, client_id: &str, token: &str) -> reqwest::Response {
    post_as(server, client_id, "/oauth2/revoke", &[("token", token)]).await
}

// ----- tokens -----

/// The payload of a JWT, unverified.
pub fn jwt_claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("a JWT");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url payload");
    serde_json::from_slice(&bytes).expect("JSON claims")
}

/// Verifies `token` as another service would: only the JWKS document, EdDSA,
/// the issuer and `audience`. Returns the claims.
pub async fn verify_with_jwks(server: &TestServer, token: &str, audience: &str) -> Value {
    let jwks: jsonwebtoken::jwk::JwkSet = plain_client()
        .get(server.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let header = jsonwebtoken::decode_header(token).unwrap();
    assert_eq!(header.alg, jsonwebtoken::Algorithm::EdDSA);
    let jwk = jwks
        .find(header.kid.as_deref().expect("a kid"))
        .expect("the token's kid is published");
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
    validation.set_audience(&[audience]);
    let issuer = issuer(server);
    validation.set_issuer(&[issuer.as_str()]);
    validation.set_required_spec_claims(&["exp", "aud", "iss", "sub"]);
    jsonwebtoken::decode::<Value>(token, &key, &validation)
        .unwrap_or_else(|e| panic!("{token} verifies for {audience}: {e}"))
        .claims
}

// ----- the device grant -----

pub async fn device_start(server: &TestServer, client_id: &str) -> reqwest::Response {
    post_as(server, client_id, "/oauth2/device_authorization", &[]).await
}

/// A started device flow: the 200 answer's JSON.
pub async fn device_started(server: &TestServer, client_id: &str) -> Value {
    let r = device_start(server, client_id).await;
    assert_eq!(r.status(), 200, "device authorization");
    r.json().await.unwrap()
}

pub async fn device_poll(
    server: &TestServer,
    client_id: &str,
    device_code: &str,
) -> reqwest::Response {
    token_as(
        server,
        client_id,
        &[("grant_type", DEVICE_GRANT), ("device_code", device_code)],
    )
    .await
}

/// `GET /oauth2/device?user_code=…` in `client`.
pub async fn device_page(
    server: &TestServer,
    client: &reqwest::Client,
    user_code: &str,
) -> reqwest::Response {
    let url =
        url::Url::parse_with_params(&server.url("/oauth2/device"), [("user_code", user_code)])
            .unwrap();
    client.get(url.as_str()).send().await.unwrap()
}

/// The CSRF token of the device page shown to `user` for `user_code`.
pub async fn device_csrf(server: &TestServer, user: &WebUser, user_code: &str) -> String {
    let r = device_page(server, &user.browser, user_code).await;
    assert_eq!(r.status(), 200, "the device page");
    let html = r.text().await.unwrap();
    hidden_input(&html, "csrf").unwrap_or_else(|| panic!("a csrf input in {html}"))
}

/// `POST /oauth2/device` from `client`: the code, `action`, the CSRF token
/// and `Origin` when given.
pub async fn device_decide(
    server: &TestServer,
    client: &reqwest::Client,
    user_code: &str,
    csrf: Option<&str>,
    action: &str,
    origin: Option<&str>,
) -> reqwest::Response {
    let mut form = vec![("user_code", user_code), ("action", action)];
    if let Some(csrf) = csrf {
        form.push(("csrf", csrf));
    }
    let mut request = client.post(server.url("/oauth2/device")).form(&form);
    if let Some(origin) = origin {
        request = request.header("origin", origin);
    }
    request.send().await.unwrap()
}

/// The user approves (or denies) `user_code` on the device page, as a browser would.
pub async fn device_decision(server: &TestServer, user: &WebUser, user_code: &str, action: &str) {
    let csrf = device_csrf(server, user, user_code).await;
    let origin = issuer(server);
    let r = device_decide(
        server,
        &user.browser,
        user_code,
        Some(&csrf),
        action,
        Some(&origin),
    )
    .await;
    let status = r.status();
    let text = r.text().await.unwrap();
    assert!(
        status.is_success() || status.is_redirection(),
        "the {action} is accepted: {status} {text}"
    );
}

/// The `value` of the `<input>` named `name` in `html`.
pub fn hidden_input(html: &str, name: &str) -> Option<String> {
    let mut rest = html;
    while let Some(at) = rest.find("<input") {
        let tag_end = rest[at..].find('>').map(|e| at + e).unwrap_or(rest.len());
        let tag = &rest[at + "<input".len()..tag_end];
        let attrs = attributes(tag);
        if attrs.iter().any(|(k, v)| k == "name" && v == name) {
            return attrs
                .into_iter()
                .find(|(k, _)| k == "value")
                .map(|(_, v)| v);
        }
        rest = &rest[tag_end..];
    }
    None
}

fn attributes(tag: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let bytes = tag.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        while i < bytes.len() && (bytes[i].is_ascii_whitespace() || bytes[i] == b'/') {
            i += 1;
        }
        let start = i;
        while i < bytes.len()
            && !bytes[i].is_ascii_whitespace()
            && bytes[i] != b'='
            && bytes[i] != b'/'
        {
            i += 1;
        }
        let key = tag[start..i].to_ascii_lowercase();
        if key.is_empty() {
            i += 1;
            continue;
        }
        let mut value = String::new();
        if i < bytes.len() && bytes[i] == b'=' {
            i += 1;
            if i < bytes.len() && (bytes[i] == b'"' || bytes[i] == b'\'') {
                let quote = bytes[i];
                i += 1;
                let v_start = i;
                while i < bytes.len() && bytes[i] != quote {
                    i += 1;
                }
                value = tag[v_start..i].to_string();
                i += 1;
            } else {
                let v_start = i;
                while i < bytes.len() && !bytes[i].is_ascii_whitespace() {
                    i += 1;
                }
                value = tag[v_start..i].to_string();
            }
        }
        out.push((key, unescape_html(&value)));
    }
    out
}

fn unescape_html(value: &str) -> String {
    value
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&#x2F;", "/")
        .replace("&#47;", "/")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The refresh family's generation of session `sid` as stored (`None`: no family).
pub async fn family_generation(server: &TestServer, sid: &str) -> Option<(u32, bool)> {
    server
        .engine()
        .stored_refresh_family(sid)
        .await
        .unwrap()
        .map(|f| (f.generation, f.revoked.is_some()))
}

/// Ids of the user's stored sessions.
pub async fn stored_session_ids(server: &TestServer, user_id: &str) -> Vec<String> {
    let mut ids: Vec<String> = server
        .engine()
        .stored_sessions(user_id)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    ids.sort();
    ids
}
