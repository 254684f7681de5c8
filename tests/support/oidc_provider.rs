//! A real OpenID Connect provider on 127.0.0.1 for tests and the bench: it
//! serves discovery, a JWKS, an authorization endpoint that approves at once
//! (redirecting with `code` and `state`, or `error=access_denied` when told
//! to), a token endpoint that checks the client secret (Basic or form), the
//! redirect URI and the PKCE S256 verifier and issues RS256-signed id_tokens,
//! and a userinfo endpoint. Tests pick who signs in next (or name them with
//! `login_hint`: a verified user of that subject) and can make it issue
//! id_tokens that are wrong in one precise way. When asked, it also issues
//! refresh tokens (rotated at every `grant_type=refresh_token`), gives access
//! tokens a short lifetime (userinfo refuses them once expired), and refuses
//! refreshes with `invalid_grant`.
//!
//! Shared by `tests/` (declared from `support/mod.rs`) and `bench/` (through
//! `#[path]`), so it depends on nothing else of either.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::traits::PublicKeyParts;
use rsa::RsaPrivateKey;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::sync::oneshot;
use warp::http::{Response, StatusCode};
use warp::Filter;

pub const CLIENT_ID: &str = "tachigo-test-client";
pub const CLIENT_SECRET: &str = "tachigo-test-client-secret";
const KEY_ID: &str = "test-key-1";

/// Who the provider says signed in.
#[derive(Debug, Clone, Default)]
pub struct TestUser {
    pub sub: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub name: Option<String>,
    pub picture: Option<String>,
}

impl TestUser {
    /// A user with a verified email `<sub>@example.com` and a name.
    pub fn verified(sub: &str) -> TestUser {
        TestUser {
            sub: sub.to_string(),
            email: Some(format!("{sub}@example.com")),
            email_verified: true,
            name: Some(format!("User {sub}")),
            picture: Some(format!("https://cdn.example.com/{sub}.png")),
        }
    }
}

/// How the next id_tokens are spoiled.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum IdTokenFault {
    #[default]
    None,
    /// The payload is altered after signing.
    TamperedPayload,
    WrongNonce,
    WrongAudience,
    WrongIssuer,
    Expired,
    /// No id_token in the token response.
    Missing,
    /// `alg: none`, unsigned.
    AlgNone,
    /// HS256 keyed with the client secret (the algorithm-confusion attack).
    HmacWithClientSecret,
    /// Signed by a key the JWKS does not publish.
    UnknownKey,
}

struct IssuedCode {
    client_id: String,
    redirect_uri: String,
    challenge: String,
    nonce: Option<String>,
    user: TestUser,
}

#[derive(Default)]
struct Behaviour {
    user: TestUser,
    deny_next: bool,
    fault: IdTokenFault,
    /// When false, id_tokens carry only `sub` (the rest comes from userinfo).
    profile_in_id_token: bool,
    codes: HashMap<String, IssuedCode>,
    access_tokens: HashMap<String, TestUser>,
    token_requests: u64,
    userinfo_requests: u64,
    /// Whether code exchanges (and refreshes) issue refresh tokens.
    issue_refresh_tokens: bool,
    /// `expires_in` of new access tokens (3600 when unset).
    access_token_lifetime_secs: Option<u64>,
    /// Every refresh is answered `invalid_grant`.
    refuse_refresh: bool,
    /// Every refresh is refused GitHub's way: status 200, `{"error": …}`.
    refuse_refresh_with_200: bool,
    /// Live refresh tokens and whose they are (each works once: rotation).
    refresh_tokens: HashMap<String, TestUser>,
    /// When each access token stops working (Unix seconds).
    access_token_expiry: HashMap<String, i64>,
    /// Every access and refresh token ever issued, in order.
    issued_tokens: Vec<String>,
    refresh_grants: u64,
}

struct Shared {
    /// Known once the listener is bound.
    issuer: OnceLock<String>,
    key: &'static SigningKey,
    behaviour: Mutex<Behaviour>,
}

struct SigningKey {
    encoding: EncodingKey,
    jwk: Value,
}

impl Shared {
    fn issuer(&self) -> &str {
        self.issuer.get().map_or("", String::as_str)
    }
}

fn rsa_key(kid: &str) -> SigningKey {
    let private = RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).expect("RSA key generation");
    let der = private.to_pkcs1_der().expect("PKCS#1 encoding");
    let public = private.to_public_key();
    SigningKey {
        encoding: EncodingKey::from_rsa_der(der.as_bytes()),
        jwk: json!({
            "kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid,
            "n": URL_SAFE_NO_PAD.encode(public.n().to_bytes_be()),
            "e": URL_SAFE_NO_PAD.encode(public.e().to_bytes_be()),
        }),
    }
}

/// RSA key generation is slow in debug builds: one key per process is enough.
fn published_key() -> &'static SigningKey {
    static KEY: OnceLock<SigningKey> = OnceLock::new();
    KEY.get_or_init(|| rsa_key(KEY_ID))
}

fn rogue_key() -> &'static SigningKey {
    static KEY: OnceLock<SigningKey> = OnceLock::new();
    KEY.get_or_init(|| rsa_key("rogue-key"))
}

fn random_token() -> String {
    URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A running provider; stops when dropped (or with [`OidcProvider::stop`]).
pub struct OidcProvider {
    /// `http://127.0.0.1:PORT`, also the `iss` of its id_tokens.
    pub issuer: String,
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl OidcProvider {
    /// Starts a provider on an ephemeral loopback port.
    pub async fn start() -> OidcProvider {
        OidcProvider::start_on(([127, 0, 0, 1], 0).into()).await
    }

    /// Starts a provider on `addr` (port 0: any free port).
    pub async fn start_on(addr: SocketAddr) -> OidcProvider {
        let key = tokio::task::spawn_blocking(published_key).await.unwrap();
        let shared = Arc::new(Shared {
            issuer: OnceLock::new(),
            key,
            behaviour: Mutex::new(Behaviour {
                user: TestUser::verified("default-user"),
                profile_in_id_token: true,
                ..Behaviour::default()
            }),
        });
        let (tx, rx) = oneshot::channel::<()>();
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = warp::serve(routes(shared.clone()))
            .incoming(listener)
            .graceful(async {
                let _ = rx.await;
            })
            .run();
        let issuer = format!("http://{addr}");
        shared.issuer.set(issuer.clone()).expect("set once");
        let task = tokio::spawn(server);
        OidcProvider {
            issuer,
            addr,
            shared,
            shutdown: Some(tx),
            task: Some(task),
        }
    }

    fn behaviour(&self) -> std::sync::MutexGuard<'_, Behaviour> {
        self.shared.behaviour.lock().unwrap()
    }

    /// The user the next authorization signs in.
    pub fn set_user(&self, user: TestUser) {
        self.behaviour().user = user;
    }

    /// The next authorization is refused with `error=access_denied`.
    pub fn deny_next(&self) {
        self.behaviour().deny_next = true;
    }

    /// Spoils every id_token issued from now on (`IdTokenFault::None` to stop).
    pub fn set_fault(&self, fault: IdTokenFault) {
        self.behaviour().fault = fault;
    }

    /// Whether id_tokens carry email, name and picture, or only `sub`.
    pub fn set_profile_in_id_token(&self, included: bool) {
        self.behaviour().profile_in_id_token = included;
    }

    pub fn token_requests(&self) -> u64 {
        self.behaviour().token_requests
    }

    pub fn userinfo_requests(&self) -> u64 {
        self.behaviour().userinfo_requests
    }

    /// Whether code exchanges (and refreshes) issue refresh tokens.
    pub fn set_issue_refresh_tokens(&self, issued: bool) {
        self.behaviour().issue_refresh_tokens = issued;
    }

    /// The lifetime (`expires_in`) of access tokens issued from now on.
    pub fn set_access_token_lifetime(&self, secs: u64) {
        self.behaviour().access_token_lifetime_secs = Some(secs);
    }

    /// Whether every refresh from now on is refused with status 200 and
    /// `{"error": "bad_refresh_token"}`, as GitHub refuses.
    pub fn set_refuse_refresh_with_200(&self, refused: bool) {
        self.behaviour().refuse_refresh_with_200 = refused;
    }

    /// Whether every refresh from now on is refused with `invalid_grant`.
    pub fn set_refuse_refresh(&self, refused: bool) {
        self.behaviour().refuse_refresh = refused;
    }

    /// `grant_type=refresh_token` requests received (refused ones included).
    pub fn refresh_grants(&self) -> u64 {
        self.behaviour().refresh_grants
    }

    /// Every access and refresh token issued so far, oldest first.
    pub fn issued_tokens(&self) -> Vec<String> {
        self.behaviour().issued_tokens.clone()
    }

    /// Stops serving: connections to its port are refused from now on.
    pub async fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

fn json_response(status: StatusCode, body: Value) -> warp::reply::Response {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .header("cache-control", "no-store")
        .body(body.to_string().into())
        .unwrap()
}

fn oauth_error(status: StatusCode, error: &str) -> warp::reply::Response {
    json_response(status, json!({ "error": error }))
}

fn routes(
    shared: Arc<Shared>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = warp::Rejection>
       + Clone
       + Send
       + Sync
       + 'static {
    let with = move || {
        let shared = shared.clone();
        warp::any().map(move || shared.clone())
    };
    let discovery = warp::path!(".well-known" / "openid-configuration")
        .and(warp::get())
        .and(with())
        .map(|s: Arc<Shared>| {
            let i = s.issuer();
            json_response(
                StatusCode::OK,
                json!({
                    "issuer": i,
                    "authorization_endpoint": format!("{i}/authorize"),
                    "token_endpoint": format!("{i}/token"),
                    "userinfo_endpoint": format!("{i}/userinfo"),
                    "jwks_uri": format!("{i}/jwks"),
                    "response_types_supported": ["code"],
                    "subject_types_supported": ["public"],
                    "id_token_signing_alg_values_supported": ["RS256"],
                    "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
                    "code_challenge_methods_supported": ["S256"],
                    "scopes_supported": ["openid", "email", "profile"],
                }),
            )
        });
    let jwks = warp::path!("jwks")
        .and(warp::get())
        .and(with())
        .map(|s: Arc<Shared>| {
            json_response(StatusCode::OK, json!({ "keys": [s.key.jwk.clone()] }))
        });
    let authorize = warp::path!("authorize")
        .and(warp::get())
        .and(with())
        .and(warp::query::<HashMap<String, String>>())
        .map(authorize);
    let token = warp::path!("token")
        .and(warp::post())
        .and(with())
        .and(warp::header::optional::<String>("authorization"))
        .and(warp::body::form::<HashMap<String, String>>())
        .map(token);
    let userinfo = warp::path!("userinfo")
        .and(warp::get())
        .and(with())
        .and(warp::header::optional::<String>("authorization"))
        .map(userinfo);
    discovery
        .or(jwks)
        .unify()
        .or(authorize)
        .unify()
        .or(token)
        .unify()
        .or(userinfo)
        .unify()
}

fn authorize(s: Arc<Shared>, q: HashMap<String, String>) -> warp::reply::Response {
    let get = |k: &str| q.get(k).cloned().unwrap_or_default();
    let redirect_uri = get("redirect_uri");
    let Ok(mut target) = url::Url::parse(&redirect_uri) else {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request");
    };
    if get("client_id") != CLIENT_ID
        || get("response_type") != "code"
        || get("code_challenge_method") != "S256"
        || get("code_challenge").is_empty()
        || !get("scope").split(' ').any(|s| s == "openid")
    {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request");
    }
    let mut b = s.behaviour.lock().unwrap();
    {
        let mut pairs = target.query_pairs_mut();
        if std::mem::take(&mut b.deny_next) {
            pairs.append_pair("error", "access_denied");
            pairs.append_pair("error_description", "The user denied the request");
        } else {
            let code = random_token();
            let user = match q.get("login_hint") {
                Some(hint) => TestUser::verified(hint),
                None => b.user.clone(),
            };
            b.codes.insert(
                code.clone(),
                IssuedCode {
                    client_id: get("client_id"),
                    redirect_uri: redirect_uri.clone(),
                    challenge: get("code_challenge"),
                    nonce: q.get("nonce").cloned(),
                    user,
                },
            );
            pairs.append_pair("code", &code);
        }
        if let Some(state) = q.get("state") {
            pairs.append_pair("state", state);
        }
    }
    Response::builder()
        .status(StatusCode::FOUND)
        .header("location", target.to_string())
        .body(Default::default())
        .unwrap()
}

/// Client credentials from HTTP Basic (form-urlencoded parts, RFC 6749 §2.3.1) or the form.
fn client_credentials(
    authorization: Option<&str>,
    form: &HashMap<String, String>,
) -> (String, String) {
    let decoded = authorization
        .and_then(|h| h.strip_prefix("Basic "))
        .and_then(|b| STANDARD.decode(b).ok())
        .and_then(|b| String::from_utf8(b).ok());
    if let Some((id, secret)) = decoded.as_deref().and_then(|d| d.split_once(':')) {
        let unescape = |s: &str| {
            url::form_urlencoded::parse(format!("v={s}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        };
        return (unescape(id), unescape(secret));
    }
    let get = |k: &str| form.get(k).cloned().unwrap_or_default();
    (get("client_id"), get("client_secret"))
}

fn token(
    s: Arc<Shared>,
    authorization: Option<String>,
    form: HashMap<String, String>,
) -> warp::reply::Response {
    let mut b = s.behaviour.lock().unwrap();
    b.token_requests += 1;
    let (client_id, client_secret) = client_credentials(authorization.as_deref(), &form);
    if client_id != CLIENT_ID || client_secret != CLIENT_SECRET {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client");
    }
    if form.get("grant_type").map(String::as_str) == Some("refresh_token") {
        return refresh(&mut b, &form);
    }
    if form.get("grant_type").map(String::as_str) != Some("authorization_code") {
        return oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type");
    }
    let Some(issued) = form.get("code").and_then(|c| b.codes.remove(c)) else {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant");
    };
    let verifier = form.get("code_verifier").cloned().unwrap_or_default();
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    if issued.client_id != client_id
        || form.get("redirect_uri") != Some(&issued.redirect_uri)
        || challenge != issued.challenge
    {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant");
    }
    let mut body = issue_tokens(&mut b, &issued.user);
    if b.fault != IdTokenFault::Missing {
        body["id_token"] = id_token(&s, &issued, b.fault, b.profile_in_id_token).into();
    }
    json_response(StatusCode::OK, body)
}

/// A new access token for `user` (and a refresh token when they are issued).
fn issue_tokens(b: &mut Behaviour, user: &TestUser) -> Value {
    let access_token = random_token();
    let lifetime = b.access_token_lifetime_secs.unwrap_or(3600);
    b.access_tokens.insert(access_token.clone(), user.clone());
    b.access_token_expiry
        .insert(access_token.clone(), unix_now() + lifetime as i64);
    b.issued_tokens.push(access_token.clone());
    let mut body = json!({
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": lifetime,
        "scope": "openid email profile",
    });
    if b.issue_refresh_tokens {
        let refresh_token = random_token();
        b.refresh_tokens.insert(refresh_token.clone(), user.clone());
        b.issued_tokens.push(refresh_token.clone());
        body["refresh_token"] = refresh_token.into();
    }
    body
}

/// `grant_type=refresh_token` (client already authenticated): a live refresh
/// token is spent and replaced, unless refreshes are refused.
fn refresh(b: &mut Behaviour, form: &HashMap<String, String>) -> warp::reply::Response {
    b.refresh_grants += 1;
    if b.refuse_refresh {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant");
    }
    if b.refuse_refresh_with_200 {
        return oauth_error(StatusCode::OK, "bad_refresh_token");
    }
    let Some(user) = form
        .get("refresh_token")
        .and_then(|t| b.refresh_tokens.remove(t))
    else {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant");
    };
    json_response(StatusCode::OK, issue_tokens(b, &user))
}

fn id_token(s: &Shared, issued: &IssuedCode, fault: IdTokenFault, with_profile: bool) -> String {
    let now = unix_now();
    let mut claims = json!({
        "iss": s.issuer(),
        "sub": issued.user.sub,
        "aud": issued.client_id,
        "iat": now,
        "exp": now + 300,
    });
    if let Some(nonce) = &issued.nonce {
        claims["nonce"] = nonce.clone().into();
    }
    if with_profile {
        let u = &issued.user;
        if let Some(email) = &u.email {
            claims["email"] = email.clone().into();
            claims["email_verified"] = u.email_verified.into();
        }
        if let Some(name) = &u.name {
            claims["name"] = name.clone().into();
        }
        if let Some(picture) = &u.picture {
            claims["picture"] = picture.clone().into();
        }
    }
    match fault {
        IdTokenFault::WrongNonce => claims["nonce"] = "not-the-nonce-that-was-sent".into(),
        IdTokenFault::WrongAudience => claims["aud"] = "some-other-client".into(),
        IdTokenFault::WrongIssuer => claims["iss"] = "https://evil.example".into(),
        IdTokenFault::Expired => {
            claims["iat"] = (now - 7200).into();
            claims["exp"] = (now - 3600).into();
        }
        _ => {}
    }
    let rs256 = |key: &SigningKey, kid: &str, claims: &Value| {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(kid.to_string());
        jsonwebtoken::encode(&header, claims, &key.encoding).unwrap()
    };
    match fault {
        IdTokenFault::TamperedPayload => {
            let signed = rs256(s.key, KEY_ID, &claims);
            let mut parts = signed.split('.');
            let (header, _, signature) =
                (parts.next().unwrap(), parts.next(), parts.next().unwrap());
            claims["sub"] = "someone-else".into();
            let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
            format!("{header}.{payload}.{signature}")
        }
        IdTokenFault::AlgNone => {
            let header = URL_SAFE_NO_PAD.encode(json!({"alg": "none", "typ": "JWT"}).to_string());
            format!("{header}.{}.", URL_SAFE_NO_PAD.encode(claims.to_string()))
        }
        IdTokenFault::HmacWithClientSecret => {
            let mut header = Header::new(Algorithm::HS256);
            header.kid = Some(KEY_ID.into());
            jsonwebtoken::encode(
                &header,
                &claims,
                &EncodingKey::from_secret(CLIENT_SECRET.as_bytes()),
            )
            .unwrap()
        }
        IdTokenFault::UnknownKey => rs256(rogue_key(), "rogue-key", &claims),
        _ => rs256(s.key, KEY_ID, &claims),
    }
}

fn userinfo(s: Arc<Shared>, authorization: Option<String>) -> warp::reply::Response {
    let mut b = s.behaviour.lock().unwrap();
    b.userinfo_requests += 1;
    let user = authorization
        .as_deref()
        .and_then(|h| h.strip_prefix("Bearer "))
        .and_then(|t| b.access_tokens.get(t));
    let Some(u) = user else {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_token");
    };
    let expired = authorization
        .as_deref()
        .and_then(|h| h.strip_prefix("Bearer "))
        .and_then(|t| b.access_token_expiry.get(t))
        .is_some_and(|at| unix_now() >= *at);
    if expired {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_token");
    }
    json_response(
        StatusCode::OK,
        json!({
            "sub": u.sub,
            "email": u.email,
            "email_verified": u.email_verified,
            "name": u.name,
            "picture": u.picture,
        }),
    )
}
