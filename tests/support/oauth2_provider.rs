//! A real plain OAuth 2.0 provider on 127.0.0.1 for tests, shaped like
//! GitHub: `GET /login/oauth/authorize` approves at once (a redirect with
//! `code` and `state`, or `error=access_denied` when told to; with
//! `response_mode=form_post`, an auto-submitting HTML form instead), `POST
//! /login/oauth/access_token` checks the client secret (Basic or form), the
//! redirect URI and the PKCE S256 verifier and answers JSON only when asked
//! for it with `Accept: application/json` (form-encoded otherwise, as GitHub
//! does) — never an id_token — and `GET /user` and `GET /user/emails` answer
//! with the bearer token's user, refusing a request without a `User-Agent`.
//!
//! What `/user` returns is whatever JSON the test sets (GitHub-, Discord- or
//! any other shape), frozen into each access token when its code is issued;
//! tests can also make the token, userinfo or emails endpoint fail.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::sync::oneshot;
use warp::http::{Response, StatusCode};
use warp::Filter;

pub const CLIENT_ID: &str = "tachigo-plain-client";
pub const CLIENT_SECRET: &str = "tachigo-plain-client-secret";

/// What the provider says about who signed in: `/user` and `/user/emails`.
#[derive(Debug, Clone)]
pub struct PlainUser {
    pub userinfo: Value,
    pub emails: Value,
}

impl PlainUser {
    /// A GitHub user: numeric `id`, `login`, `name`, `avatar_url`, the public
    /// `email` (GitHub's may be null) and the address list.
    pub fn github(id: u64, login: &str, public_email: Option<&str>, emails: Value) -> PlainUser {
        PlainUser {
            userinfo: json!({
                "id": id,
                "login": login,
                "name": format!("The {login}"),
                "email": public_email,
                "avatar_url": format!("https://avatars.example.com/u/{id}"),
            }),
            emails,
        }
    }
}

/// How the token endpoint misbehaves.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TokenFault {
    #[default]
    None,
    /// `200 {"error":"bad_verification_code"}`, GitHub's way of refusing.
    RefuseWithOk,
    /// `400 {"error":"invalid_grant"}`.
    Refuse,
    /// A 500 with a non-JSON body.
    ServerError,
}

struct IssuedCode {
    client_id: String,
    redirect_uri: String,
    challenge: Option<String>,
    user: PlainUser,
}

#[derive(Default)]
struct Behaviour {
    user: Option<PlainUser>,
    deny_next: bool,
    token_fault: TokenFault,
    /// Statuses `/user` and `/user/emails` answer with instead of the user.
    userinfo_status: Option<u16>,
    emails_status: Option<u16>,
    codes: HashMap<String, IssuedCode>,
    access_tokens: HashMap<String, PlainUser>,
    token_requests: u64,
    userinfo_requests: u64,
    emails_requests: u64,
    /// `basic` or `post`: how the last token request authenticated.
    last_client_auth: Option<&'static str>,
    /// The query of the last authorization request.
    last_authorize: HashMap<String, String>,
}

type Shared = Arc<Mutex<Behaviour>>;

fn random_token() -> String {
    URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
}

/// A running provider; stops when dropped.
pub struct PlainOAuth2Provider {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    pub addr: SocketAddr,
    shared: Shared,
    shutdown: Option<oneshot::Sender<()>>,
}

impl PlainOAuth2Provider {
    pub async fn start() -> PlainOAuth2Provider {
        let shared: Shared = Arc::new(Mutex::new(Behaviour::default()));
        let (tx, rx) = oneshot::channel::<()>();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = warp::serve(routes(shared.clone()))
            .incoming(listener)
            .graceful(async {
                let _ = rx.await;
            })
            .run();
        tokio::spawn(server);
        PlainOAuth2Provider {
            base: format!("http://{addr}"),
            addr,
            shared,
            shutdown: Some(tx),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn behaviour(&self) -> std::sync::MutexGuard<'_, Behaviour> {
        self.shared.lock().unwrap()
    }

    /// The user the next authorizations sign in.
    pub fn set_user(&self, user: PlainUser) {
        self.behaviour().user = Some(user);
    }

    pub fn deny_next(&self) {
        self.behaviour().deny_next = true;
    }

    pub fn set_token_fault(&self, fault: TokenFault) {
        self.behaviour().token_fault = fault;
    }

    /// `/user` answers `status` with an error body (None: the user again).
    pub fn set_userinfo_status(&self, status: Option<u16>) {
        self.behaviour().userinfo_status = status;
    }

    /// `/user/emails` answers `status` with an error body (None: the list again).
    pub fn set_emails_status(&self, status: Option<u16>) {
        self.behaviour().emails_status = status;
    }

    pub fn token_requests(&self) -> u64 {
        self.behaviour().token_requests
    }

    pub fn userinfo_requests(&self) -> u64 {
        self.behaviour().userinfo_requests
    }

    pub fn emails_requests(&self) -> u64 {
        self.behaviour().emails_requests
    }

    /// `basic` or `post`, for the last token request.
    pub fn last_client_auth(&self) -> Option<&'static str> {
        self.behaviour().last_client_auth
    }

    /// The query parameters of the last authorization request.
    pub fn last_authorize(&self) -> HashMap<String, String> {
        self.behaviour().last_authorize.clone()
    }
}

impl Drop for PlainOAuth2Provider {
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
    shared: Shared,
) -> impl Filter<Extract = (warp::reply::Response,), Error = warp::Rejection>
       + Clone
       + Send
       + Sync
       + 'static {
    let with = move || {
        let shared = shared.clone();
        warp::any().map(move || shared.clone())
    };
    let authorize = warp::path!("login" / "oauth" / "authorize")
        .and(warp::get())
        .and(with())
        .and(warp::query::<HashMap<String, String>>())
        .map(authorize);
    let token = warp::path!("login" / "oauth" / "access_token")
        .and(warp::post())
        .and(with())
        .and(warp::header::optional::<String>("authorization"))
        .and(warp::header::optional::<String>("accept"))
        .and(warp::body::form::<HashMap<String, String>>())
        .map(token);
    let user = warp::path!("user")
        .and(warp::get())
        .and(with())
        .and(warp::header::headers_cloned())
        .map(|s: Shared, headers| resource(s, headers, Resource::User));
    let emails = warp::path!("user" / "emails")
        .and(warp::get())
        .and(with())
        .and(warp::header::headers_cloned())
        .map(|s: Shared, headers| resource(s, headers, Resource::Emails));
    authorize
        .or(token)
        .unify()
        .or(user)
        .unify()
        .or(emails)
        .unify()
}

fn authorize(s: Shared, q: HashMap<String, String>) -> warp::reply::Response {
    let get = |k: &str| q.get(k).cloned().unwrap_or_default();
    let mut b = s.lock().unwrap();
    b.last_authorize = q.clone();
    let redirect_uri = get("redirect_uri");
    let Ok(mut target) = url::Url::parse(&redirect_uri) else {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request");
    };
    let challenge = q.get("code_challenge").cloned();
    if get("client_id") != CLIENT_ID
        || get("response_type") != "code"
        || (challenge.is_some() && get("code_challenge_method") != "S256")
    {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request");
    }
    let mut fields: Vec<(&str, String)> = Vec::new();
    if std::mem::take(&mut b.deny_next) {
        fields.push(("error", "access_denied".into()));
    } else {
        let Some(user) = b.user.clone() else {
            return oauth_error(StatusCode::BAD_REQUEST, "no_user_set");
        };
        let code = random_token();
        b.codes.insert(
            code.clone(),
            IssuedCode {
                client_id: get("client_id"),
                redirect_uri: redirect_uri.clone(),
                challenge,
                user,
            },
        );
        fields.push(("code", code));
    }
    if let Some(state) = q.get("state") {
        fields.push(("state", state.clone()));
    }
    if get("response_mode") == "form_post" {
        // Every value here is base64url or a fixed word: nothing to escape.
        let inputs: String = fields
            .iter()
            .map(|(k, v)| format!(r#"<input type="hidden" name="{k}" value="{v}">"#))
            .collect();
        let page = format!(
            r#"<!doctype html><html><body onload="document.forms[0].submit()"><form method="post" action="{redirect_uri}">{inputs}</form></body></html>"#
        );
        return Response::builder()
            .status(StatusCode::OK)
            .header("content-type", "text/html; charset=utf-8")
            .body(page.into())
            .unwrap();
    }
    {
        let mut pairs = target.query_pairs_mut();
        for (k, v) in &fields {
            pairs.append_pair(k, v);
        }
    }
    Response::builder()
        .status(StatusCode::FOUND)
        .header("location", target.to_string())
        .body(Default::default())
        .unwrap()
}

/// Client credentials from HTTP Basic (form-urlencoded parts) or the form.
fn client_credentials(
    authorization: Option<&str>,
    form: &HashMap<String, String>,
) -> (String, String, &'static str) {
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
        return (unescape(id), unescape(secret), "basic");
    }
    let get = |k: &str| form.get(k).cloned().unwrap_or_default();
    (get("client_id"), get("client_secret"), "post")
}

fn token(
    s: Shared,
    authorization: Option<String>,
    accept: Option<String>,
    form: HashMap<String, String>,
) -> warp::reply::Response {
    let mut b = s.lock().unwrap();
    b.token_requests += 1;
    match b.token_fault {
        TokenFault::None => {}
        TokenFault::RefuseWithOk => {
            return oauth_error(StatusCode::OK, "bad_verification_code");
        }
        TokenFault::Refuse => return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant"),
        TokenFault::ServerError => {
            return Response::builder()
                .status(StatusCode::INTERNAL_SERVER_ERROR)
                .body("upstream exploded".into())
                .unwrap()
        }
    }
    let (client_id, client_secret, how) = client_credentials(authorization.as_deref(), &form);
    b.last_client_auth = Some(how);
    if client_id != CLIENT_ID || client_secret != CLIENT_SECRET {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client");
    }
    if form.get("grant_type").map(String::as_str) != Some("authorization_code") {
        return oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type");
    }
    let Some(issued) = form.get("code").and_then(|c| b.codes.remove(c)) else {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant");
    };
    let pkce_ok = match (&issued.challenge, form.get("code_verifier")) {
        (Some(challenge), Some(verifier)) => {
            &URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())) == challenge
        }
        (None, None) => true,
        _ => false,
    };
    if issued.client_id != client_id
        || form.get("redirect_uri") != Some(&issued.redirect_uri)
        || !pkce_ok
    {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant");
    }
    let access_token = random_token();
    b.access_tokens.insert(access_token.clone(), issued.user);
    let scope = "read:user,user:email";
    if !accept.is_some_and(|a| a.contains("application/json")) {
        // GitHub's default answer.
        let body = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("access_token", &access_token)
            .append_pair("scope", scope)
            .append_pair("token_type", "bearer")
            .finish();
        return Response::builder()
            .status(StatusCode::OK)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.into())
            .unwrap();
    }
    json_response(
        StatusCode::OK,
        json!({ "access_token": access_token, "token_type": "bearer", "scope": scope }),
    )
}

#[derive(Clone, Copy)]
enum Resource {
    User,
    Emails,
}

fn resource(s: Shared, headers: warp::http::HeaderMap, which: Resource) -> warp::reply::Response {
    let mut b = s.lock().unwrap();
    let failing = match which {
        Resource::User => {
            b.userinfo_requests += 1;
            b.userinfo_status
        }
        Resource::Emails => {
            b.emails_requests += 1;
            b.emails_status
        }
    };
    if !headers.contains_key("user-agent") {
        return json_response(
            StatusCode::FORBIDDEN,
            json!({"message": "Request forbidden by administrative rules. Please make sure your request has a User-Agent header"}),
        );
    }
    let user = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "))
        .and_then(|t| b.access_tokens.get(t));
    let Some(user) = user else {
        return json_response(
            StatusCode::UNAUTHORIZED,
            json!({"message": "Bad credentials"}),
        );
    };
    if let Some(status) = failing {
        return json_response(
            StatusCode::from_u16(status).unwrap(),
            json!({"message": "failing as told"}),
        );
    }
    json_response(
        StatusCode::OK,
        match which {
            Resource::User => user.userinfo.clone(),
            Resource::Emails => user.emails.clone(),
        },
    )
}
