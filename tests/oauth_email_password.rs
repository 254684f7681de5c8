//! Email and password on `/api/auth/*`, as Better Auth's client SDK speaks
//! it, over real HTTP with a real SMTP server: sign-up (a session at once, a
//! verification mail), sign-in, verification links, forgot/reset password
//! (ends every session), change password, profile updates and account
//! deletion; the shapes, cookies and codes Better Auth's client reads, the
//! refusals (bodies, origins, tokens forged, replayed or expired), answers
//! that reveal nothing about who is registered, and the rate limits. Also
//! how password accounts meet provider sign-ins: a verified provider email
//! takes over an address nobody proved, and joins one that was proven.

mod support;

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::oidc_provider::{OidcProvider, TestUser};
use support::smtp::{use_smtp, ReceivedMail, SmtpServer};
use support::*;
use tachigo_engine::config::{Config, ConfigDuration};
use tachigo_engine::{NewSession, NewUser, ProviderIdentity, Surface};

const MAIL_WAIT: Duration = Duration::from_secs(15);
const PASSWORD: &str = "correct horse battery staple";
const NEW_PASSWORD: &str = "a brand new passphrase";
const SESSION_COOKIE: &str = "tachigo.session_token";

/// A server mailing through `smtp`, with room for every request a test makes
/// (the limits have their own test) and no per-address mail throttle.
async fn start(smtp: &SmtpServer, adjust: impl FnOnce(&mut Config)) -> TestServer {
    TestServer::start_with(|c| {
        use_smtp(c, smtp);
        c.email.requests_per_minute = 1000;
        c.email.per_address_interval = ConfigDuration::from_millis(1);
        adjust(c);
    })
    .await
}

fn auth_url(server: &TestServer, endpoint: &str) -> String {
    server.url(&format!("/api/auth/{endpoint}"))
}

/// A POST from the frontend's page, with `client`'s cookies.
async fn post(
    server: &TestServer,
    client: &reqwest::Client,
    endpoint: &str,
    body: Value,
) -> reqwest::Response {
    client
        .post(auth_url(server, endpoint))
        .header("origin", FRONTEND)
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn sign_up(server: &TestServer, client: &reqwest::Client, email: &str) -> reqwest::Response {
    post(
        server,
        client,
        "sign-up/email",
        json!({"name": "Ada Lovelace", "email": email, "password": PASSWORD}),
    )
    .await
}

/// A user just signed up in a fresh browser.
struct SignedUp {
    browser: reqwest::Client,
    user_id: String,
    /// The session cookie's value the sign-up set.
    cookie: String,
}

async fn signed_up(server: &TestServer, email: &str) -> SignedUp {
    let browser = browser();
    let r = sign_up(server, &browser, email).await;
    assert_eq!(r.status(), 200, "sign-up");
    let (cookie, _) = session_cookie(&r);
    let body: Value = r.json().await.unwrap();
    SignedUp {
        browser,
        user_id: body["user"]["id"].as_str().unwrap().to_string(),
        cookie,
    }
}

async fn sign_in(
    server: &TestServer,
    client: &reqwest::Client,
    email: &str,
    password: &str,
) -> reqwest::Response {
    post(
        server,
        client,
        "sign-in/email",
        json!({"email": email, "password": password}),
    )
    .await
}

/// A Better Auth error: status, code, `Cache-Control: no-store`, and a message.
async fn expect_error(response: reqwest::Response, status: u16, code: &str) {
    assert_eq!(response.status(), status, "expected {status} {code}");
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], code, "{body}");
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
}

/// The session cookie a response sets: (value, the whole `Set-Cookie`).
fn session_cookie(response: &reqwest::Response) -> (String, String) {
    let cookies = set_cookies(response, SESSION_COOKIE);
    assert_eq!(cookies.len(), 1, "one session cookie: {cookies:?}");
    let value = set_cookie_value(response, SESSION_COOKIE).unwrap();
    (value, cookies[0].to_string())
}

/// `get-session` for an explicit session cookie (`null` when it is dead).
async fn session_for(server: &TestServer, cookie_value: &str) -> Value {
    let r = plain_client()
        .get(auth_url(server, "get-session"))
        .header("cookie", format!("{SESSION_COOKIE}={cookie_value}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

/// A web session made by the engine (no password needed), as a cookie value.
async fn engine_web_session(server: &TestServer, user_id: &str) -> String {
    server
        .engine()
        .create_session(
            user_id,
            NewSession {
                surface: Surface::Web,
                user_agent: None,
                ip: None,
                context: None,
            },
        )
        .await
        .unwrap()
        .token
        .unwrap()
}

/// A client holding just `cookie_value` as its session cookie.
fn client_with(server: &TestServer, cookie_value: &str) -> reqwest::Client {
    let jar = reqwest::cookie::Jar::default();
    jar.add_cookie_str(
        &format!("{SESSION_COOKIE}={cookie_value}; Path=/"),
        &server.base.parse().unwrap(),
    );
    reqwest::Client::builder()
        .cookie_provider(std::sync::Arc::new(jar))
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .unwrap()
}

async fn email_verified(server: &TestServer, user_id: &str) -> bool {
    server.engine().user(user_id).await.unwrap().email_verified
}

/// Opens a mailed link as a browser navigation would (no redirect followed).
async fn open(link: &str) -> reqwest::Response {
    plain_client().get(link).send().await.unwrap()
}

async fn request_reset(
    server: &TestServer,
    smtp: &SmtpServer,
    email: &str,
    n: usize,
) -> ReceivedMail {
    let r = post(
        server,
        &plain_client(),
        "request-password-reset",
        json!({"email": email, "redirectTo": "/reset"}),
    )
    .await;
    assert_eq!(r.status(), 200);
    smtp.wait_for_mails(email, n, MAIL_WAIT).await
}

/// 43 characters of base64url: the shape of a real mailed token.
fn random_token() -> String {
    use base64::Engine as _;
    let bytes: [u8; 32] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

async fn audit_kinds(server: &TestServer) -> Vec<String> {
    server
        .engine()
        .recent_audit_events(10_000)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect()
}

// ----- sign-up and verification -----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_up_signs_in_at_once_and_mails_a_link_that_verifies_once() {
    let smtp = SmtpServer::start().await;
    let mut server = start(&smtp, |_| {}).await;
    let b = browser();
    let r = post(
        &server,
        &b,
        "sign-up/email",
        json!({"name": "Ada Lovelace", "email": "Ada@Example.com", "password": PASSWORD,
               "image": "https://cdn.example.com/ada.png", "callbackURL": "/welcome?from=mail",
               "unknownField": [1, 2]}),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let (cookie, set_cookie) = session_cookie(&r);
    assert_eq!(
        set_cookie,
        format!("{SESSION_COOKIE}={cookie}; HttpOnly; SameSite=Lax; Path=/; Max-Age=604800")
    );
    let body: Value = r.json().await.unwrap();
    let user = &body["user"];
    assert_eq!(user["email"], "ada@example.com", "lower-cased");
    assert_eq!(user["emailVerified"], false);
    assert_eq!(user["name"], "Ada Lovelace");
    assert_eq!(user["image"], "https://cdn.example.com/ada.png");
    assert!(user["createdAt"].as_str().unwrap().ends_with('Z'));
    assert!(user["updatedAt"].is_string());

    // Signed in at once; `token` names the session, it is not its secret.
    let session = get_session(&server, &b).await;
    assert_eq!(session["user"]["id"], user["id"]);
    assert_eq!(body["token"], session["session"]["id"]);
    assert!(!body.to_string().contains(&cookie), "no secret in the body");
    let user_id = user["id"].as_str().unwrap().to_string();
    assert!(server.engine().user(&user_id).await.unwrap().has_password);

    // The verification mail, pointing at this server's verify-email.
    let mail = smtp.wait_for_mail("ada@example.com", MAIL_WAIT).await;
    let link = mail.link();
    assert!(
        link.starts_with(&format!("{}/api/auth/verify-email?token=", server.base)),
        "{link}"
    );
    assert_eq!(
        query_param(&link, "callbackURL").as_deref(),
        Some("/welcome?from=mail")
    );
    assert!(mail.html.contains("verify-email?token="));

    let landed = open(&link).await;
    assert_eq!(landed.status(), 302);
    assert_eq!(location(&landed), format!("{FRONTEND}/welcome?from=mail"));
    assert!(
        set_cookies(&landed, SESSION_COOKIE).is_empty(),
        "no session"
    );
    assert!(email_verified(&server, &user_id).await);
    assert_eq!(
        get_session(&server, &b).await["user"]["emailVerified"],
        true
    );
    assert!(audit_kinds(&server)
        .await
        .contains(&"email_verified".to_string()));

    // Single use: the same link again is an error for the app's page.
    let replay = open(&link).await;
    assert_eq!(replay.status(), 302);
    assert_eq!(
        location(&replay),
        format!("{FRONTEND}/welcome?from=mail&error=INVALID_TOKEN")
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_email_answers_json_without_a_callback_and_refuses_bad_tokens() {
    let smtp = SmtpServer::start().await;
    let mut server = start(&smtp, |_| {}).await;
    let SignedUp { user_id, .. } = signed_up(&server, "json@example.com").await;
    let mail = smtp.wait_for_mail("json@example.com", MAIL_WAIT).await;
    assert_eq!(
        query_param(&mail.link(), "callbackURL").as_deref(),
        Some("/")
    );
    let token = mail.token();
    let verify = |query: String| {
        let url = format!("{}?{query}", auth_url(&server, "verify-email"));
        async move { plain_client().get(url).send().await.unwrap() }
    };

    // Forged, malformed, missing: nothing verified.
    for query in [
        format!("token={}", random_token()),
        "token=short".to_string(),
        "token=".to_string(),
        String::new(),
        format!("token={token}x"),
    ] {
        expect_error(verify(query).await, 401, "INVALID_TOKEN").await;
    }
    let r = verify(format!("token={}&callbackURL=%2Fdone", random_token())).await;
    assert_eq!(location(&r), format!("{FRONTEND}/done?error=INVALID_TOKEN"));
    // A callback on another site is refused as JSON, before the token is spent.
    for evil in [
        "https://evil.example/",
        "//evil.example",
        "/%2F%2Fevil.example",
    ] {
        let q: String = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("token", &token)
            .append_pair("callbackURL", evil)
            .finish();
        expect_error(verify(q).await, 403, "INVALID_CALLBACK_URL").await;
    }
    assert!(!email_verified(&server, &user_id).await);

    let r = verify(format!("token={token}")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"status": true, "user": null})
    );
    assert!(email_verified(&server, &user_id).await);
    expect_error(verify(format!("token={token}")).await, 401, "INVALID_TOKEN").await;

    // A reset token is not a verification token.
    let reset = request_reset(&server, &smtp, "json@example.com", 2).await;
    expect_error(
        verify(format!("token={}", reset.token())).await,
        401,
        "INVALID_TOKEN",
    )
    .await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_up_refusals_store_nothing_and_mail_nothing() {
    let smtp = SmtpServer::start().await;
    let mut server = start(&smtp, |_| {}).await;
    signed_up(&server, "taken@example.com").await;
    smtp.wait_for_mail("taken@example.com", MAIL_WAIT).await;
    let client = plain_client();
    let base = json!({"name": "N", "email": "new@example.com", "password": PASSWORD});
    let with = |patch: Value| {
        let mut body = base.clone();
        for (k, v) in patch.as_object().unwrap() {
            if v.is_null() {
                body.as_object_mut().unwrap().remove(k);
            } else {
                body[k] = v.clone();
            }
        }
        body
    };
    for (body, status, code) in [
        (
            with(json!({"email": "TAKEN@example.com"})),
            422,
            "USER_ALREADY_EXISTS_USE_ANOTHER_EMAIL",
        ),
        (
            with(json!({"password": "short"})),
            400,
            "PASSWORD_TOO_SHORT",
        ),
        (
            with(json!({"password": "p".repeat(129)})),
            400,
            "PASSWORD_TOO_LONG",
        ),
        (
            with(json!({"password": "abababababab"})),
            400,
            "WEAK_PASSWORD",
        ),
        (
            with(json!({"password": "new@example.com"})),
            400,
            "WEAK_PASSWORD",
        ),
        (
            with(json!({"email": "not-an-address"})),
            400,
            "VALIDATION_ERROR",
        ),
        (with(json!({"email": null})), 400, "VALIDATION_ERROR"),
        (with(json!({"name": null})), 400, "VALIDATION_ERROR"),
        (with(json!({"name": 7})), 400, "VALIDATION_ERROR"),
        (
            with(json!({"name": "n".repeat(257)})),
            400,
            "VALIDATION_ERROR",
        ),
        (with(json!({"rememberMe": "yes"})), 400, "VALIDATION_ERROR"),
        (
            with(json!({"image": "javascript:alert(1)"})),
            400,
            "VALIDATION_ERROR",
        ),
        (
            with(json!({"callbackURL": "https://evil.example/"})),
            403,
            "INVALID_CALLBACK_URL",
        ),
        (
            json!(["new@example.com", PASSWORD]),
            400,
            "VALIDATION_ERROR",
        ),
    ] {
        let r = post(&server, &client, "sign-up/email", body.clone()).await;
        assert_eq!(r.status(), status, "{body}");
        expect_error(r, status, code).await;
    }
    let r = client
        .post(auth_url(&server, "sign-up/email"))
        .header("origin", "https://evil.example")
        .json(&base)
        .send()
        .await
        .unwrap();
    expect_error(r, 403, "UNTRUSTED_ORIGIN").await;
    assert_eq!(server.engine().user_count().await.unwrap(), 1);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(smtp.mails_to("new@example.com").is_empty());
    assert_eq!(smtp.mails().len(), 1);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_oversized_bodies_are_refused_on_every_email_route() {
    let smtp = SmtpServer::start().await;
    let mut server = start(&smtp, |_| {}).await;
    let SignedUp {
        browser: b,
        user_id,
        ..
    } = signed_up(&server, "bodies@example.com").await;
    let before = server.engine().user(&user_id).await.unwrap();
    let padding = "x".repeat(17 * 1024);
    for endpoint in [
        "sign-up/email",
        "sign-in/email",
        "send-verification-email",
        "request-password-reset",
        "reset-password",
        "change-password",
        "update-user",
        "delete-user",
    ] {
        let target = auth_url(&server, endpoint);
        let oversized = json!({"email": "bodies@example.com", "password": PASSWORD,
            "name": "x", "newPassword": NEW_PASSWORD, "currentPassword": PASSWORD, "pad": padding});
        let r = b
            .post(&target)
            .header("origin", FRONTEND)
            .json(&oversized)
            .send()
            .await
            .unwrap();
        expect_error(r, 413, "BODY_TOO_LARGE").await;
        let r = b
            .post(&target)
            .header("origin", FRONTEND)
            .header("content-type", "application/json")
            .body(r#"{"email": "bodies@example.com", "password": "#)
            .send()
            .await
            .unwrap();
        expect_error(r, 400, "INVALID_BODY").await;
        let r = b
            .post(&target)
            .header("origin", FRONTEND)
            .header("content-type", "text/plain")
            .body(format!(
                r#"{{"email":"bodies@example.com","password":"{PASSWORD}"}}"#
            ))
            .send()
            .await
            .unwrap();
        expect_error(r, 415, "UNSUPPORTED_MEDIA_TYPE").await;
        // update-user reads any object; a wrong `name` is its wrong shape.
        let wrong_types = if endpoint == "update-user" {
            json!({"name": {}, "image": 3})
        } else {
            json!({"email": ["x"], "password": 1, "name": {}, "newPassword": true,
                   "currentPassword": null, "token": 5, "image": 3})
        };
        let r = b
            .post(&target)
            .header("origin", FRONTEND)
            .json(&wrong_types)
            .send()
            .await
            .unwrap();
        expect_error(r, 400, "VALIDATION_ERROR").await;
        let r = b.get(&target).send().await.unwrap();
        expect_error(r, 405, "METHOD_NOT_ALLOWED").await;
    }
    assert_eq!(server.engine().user(&user_id).await.unwrap(), before);
    assert_eq!(server.engine().user_count().await.unwrap(), 1);
    assert_eq!(
        get_session(&server, &b).await["user"]["id"],
        user_id.as_str()
    );
    server.stop().await;
}

// ----- sign-in -----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_answers_better_auths_shape_with_the_session_cookie() {
    let smtp = SmtpServer::start().await;
    let mut server = start(&smtp, |_| {}).await;
    let SignedUp { user_id, .. } = signed_up(&server, "signin@example.com").await;

    let b = browser();
    let r = sign_in(&server, &b, "  SignIn@Example.COM ", PASSWORD).await;
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("location").is_none());
    let (cookie, set_cookie) = session_cookie(&r);
    assert!(set_cookie.ends_with("; HttpOnly; SameSite=Lax; Path=/; Max-Age=604800"));
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["redirect"], false);
    assert!(body.get("url").is_none(), "no url without a callbackURL");
    assert_eq!(body["user"]["id"], user_id.as_str());
    assert_eq!(body["user"]["email"], "signin@example.com");
    let session = get_session(&server, &b).await;
    assert_eq!(body["token"], session["session"]["id"]);
    assert!(!body.to_string().contains(&cookie));
    assert_eq!(
        session_for(&server, &cookie).await["user"]["id"],
        user_id.as_str()
    );

    // rememberMe: false → a browser-session cookie; callbackURL → redirect, url, Location.
    let r = post(
        &server,
        &browser(),
        "sign-in/email",
        json!({"email": "signin@example.com", "password": PASSWORD,
               "rememberMe": false, "callbackURL": "/dashboard?tab=1"}),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(location(&r), format!("{FRONTEND}/dashboard?tab=1"));
    let (cookie, set_cookie) = session_cookie(&r);
    assert_eq!(
        set_cookie,
        format!("{SESSION_COOKIE}={cookie}; HttpOnly; SameSite=Lax; Path=/")
    );
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["redirect"], true);
    assert_eq!(body["url"], format!("{FRONTEND}/dashboard?tab=1"));
    assert!(session_for(&server, &cookie).await["session"].is_object());

    // A server-side caller (no Origin, no cookie) may sign in too.
    let r = plain_client()
        .post(auth_url(&server, "sign-in/email"))
        .json(&json!({"email": "signin@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        server.engine().list_sessions(&user_id).await.unwrap().len(),
        4
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_refusals_say_nothing_about_who_is_registered() {
    let smtp = SmtpServer::start().await;
    let mut server = start(&smtp, |_| {}).await;
    let SignedUp { user_id, .. } = signed_up(&server, "known@example.com").await;
    // A provider-only user has no password to guess.
    let social = server
        .engine()
        .create_user(NewUser {
            email: Some("social@example.com".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let client = plain_client();
    let mut bodies = Vec::new();
    for (email, password) in [
        ("known@example.com", "wrong password!"),
        ("nobody@example.com", PASSWORD),
        ("social@example.com", PASSWORD),
    ] {
        let r = sign_in(&server, &client, email, password).await;
        assert_eq!(r.status(), 401, "{email}");
        assert!(set_cookies(&r, SESSION_COOKIE).is_empty());
        bodies.push(r.text().await.unwrap());
    }
    assert!(bodies.iter().all(|b| b == &bodies[0]), "{bodies:?}");
    let body: Value = serde_json::from_str(&bodies[0]).unwrap();
    assert_eq!(
        body,
        json!({"code": "INVALID_EMAIL_OR_PASSWORD", "message": "Invalid email or password"})
    );
    expect_error(
        sign_in(&server, &client, "not-an-address", PASSWORD).await,
        400,
        "INVALID_EMAIL",
    )
    .await;
    expect_error(
        sign_in(&server, &client, "known@example.com", &"p".repeat(1025)).await,
        400,
        "PASSWORD_TOO_LONG",
    )
    .await;
    // Cross-site: another site cannot sign a visitor in (login CSRF).
    let r = client
        .post(auth_url(&server, "sign-in/email"))
        .header("origin", "https://evil.example")
        .json(&json!({"email": "known@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    expect_error(r, 403, "UNTRUSTED_ORIGIN").await;
    let r = client
        .post(auth_url(&server, "sign-in/email"))
        .header("cookie", "theme=dark")
        .json(&json!({"email": "known@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    expect_error(r, 403, "UNTRUSTED_ORIGIN").await;
    expect_error(
        post(
            &server,
            &client,
            "sign-in/email",
            json!({"email": "known@example.com", "password": PASSWORD, "callbackURL": "https://evil.example"}),
        )
        .await,
        403,
        "INVALID_CALLBACK_URL",
    )
    .await;
    // Only the signed-up session exists.
    assert_eq!(
        server.engine().list_sessions(&user_id).await.unwrap().len(),
        1
    );
    assert!(server
        .engine()
        .list_sessions(&social.id)
        .await
        .unwrap()
        .is_empty());
    server.stop().await;
}

// ----- send-verification-email -----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_verification_email_answers_the_same_for_anyone() {
    let smtp = SmtpServer::start().await;
    let mut server = start(&smtp, |_| {}).await;
    let SignedUp {
        browser: b,
        user_id,
        ..
    } = signed_up(&server, "unverified@example.com").await;
    smtp.wait_for_mail("unverified@example.com", MAIL_WAIT)
        .await;
    let floor = server.config.email.answer_floor.0;
    let client = plain_client();

    let mut answers = Vec::new();
    for email in ["nobody@example.com", "UNVERIFIED@example.com"] {
        let started = Instant::now();
        let r = post(
            &server,
            &client,
            "send-verification-email",
            json!({"email": email, "callbackURL": "/verified"}),
        )
        .await;
        assert!(started.elapsed() >= floor, "answered before the floor");
        assert_eq!(r.status(), 200);
        answers.push(r.text().await.unwrap());
    }
    assert_eq!(answers[0], answers[1]);
    assert_eq!(
        serde_json::from_str::<Value>(&answers[0]).unwrap(),
        json!({"status": true})
    );
    let mail = smtp
        .wait_for_mails("unverified@example.com", 2, MAIL_WAIT)
        .await;
    assert_eq!(
        query_param(&mail.link(), "callbackURL").as_deref(),
        Some("/verified")
    );
    assert!(smtp.mails_to("nobody@example.com").is_empty());

    // Signed in: only one's own address, from a trusted origin.
    expect_error(
        post(
            &server,
            &b,
            "send-verification-email",
            json!({"email": "other@example.com"}),
        )
        .await,
        400,
        "EMAIL_MISMATCH",
    )
    .await;
    let r = b
        .post(auth_url(&server, "send-verification-email"))
        .json(&json!({"email": "unverified@example.com"}))
        .send()
        .await
        .unwrap();
    expect_error(r, 403, "UNTRUSTED_ORIGIN").await;
    let r = post(
        &server,
        &b,
        "send-verification-email",
        json!({"email": "unverified@example.com"}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let third = smtp
        .wait_for_mails("unverified@example.com", 3, MAIL_WAIT)
        .await;
    assert_eq!(open(&third.link()).await.status(), 302);
    assert!(email_verified(&server, &user_id).await);
    expect_error(
        post(
            &server,
            &b,
            "send-verification-email",
            json!({"email": "unverified@example.com"}),
        )
        .await,
        400,
        "EMAIL_ALREADY_VERIFIED",
    )
    .await;
    // Anonymous, for a verified address: the same answer, no mail.
    let r = post(
        &server,
        &client,
        "send-verification-email",
        json!({"email": "unverified@example.com"}),
    )
    .await;
    assert_eq!(r.text().await.unwrap(), answers[0]);
    expect_error(
        post(
            &server,
            &client,
            "send-verification-email",
            json!({"email": "unverified@example.com", "callbackURL": "https://evil.example/x"}),
        )
        .await,
        403,
        "INVALID_CALLBACK_URL",
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(smtp.mails_to("unverified@example.com").len(), 3);
    server.stop().await;
}

// ----- forgot and reset password -----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_reset_round_trip_ends_every_session() {
    let smtp = SmtpServer::start().await;
    let mut server = start(&smtp, |_| {}).await;
    let SignedUp {
        browser: first,
        user_id,
        ..
    } = signed_up(&server, "reset@example.com").await;
    let second = browser();
    assert_eq!(
        sign_in(&server, &second, "reset@example.com", PASSWORD)
            .await
            .status(),
        200
    );
    let floor = server.config.email.answer_floor.0;

    // Known and unknown addresses: the same answer, no sooner than the floor.
    let mut answers = Vec::new();
    for email in ["reset@example.com", "nobody@example.com"] {
        let started = Instant::now();
        let r = post(
            &server,
            &plain_client(),
            "request-password-reset",
            json!({"email": email, "redirectTo": "/reset"}),
        )
        .await;
        assert!(started.elapsed() >= floor);
        assert_eq!(r.status(), 200);
        answers.push(r.text().await.unwrap());
    }
    assert_eq!(answers[0], answers[1]);
    assert_eq!(
        serde_json::from_str::<Value>(&answers[0]).unwrap(),
        json!({"status": true, "message": "If this email exists in our system, check your email for the reset link"})
    );
    assert!(smtp.mails_to("nobody@example.com").is_empty());

    // The first mail is the sign-up's verification; the second the reset.
    let mail = smtp.wait_for_mails("reset@example.com", 2, MAIL_WAIT).await;
    let token = mail.token();
    assert_eq!(
        mail.link(),
        format!(
            "{}/api/auth/reset-password/{token}?callbackURL=%2Freset",
            server.base
        )
    );
    // Opening the link hands the token to the app's page without spending it.
    for _ in 0..2 {
        let r = open(&mail.link()).await;
        assert_eq!(r.status(), 302);
        assert_eq!(location(&r), format!("{FRONTEND}/reset?token={token}"));
    }
    let malformed = open(&format!(
        "{}/api/auth/reset-password/not-a-token?callbackURL=%2Freset",
        server.base
    ))
    .await;
    assert_eq!(
        location(&malformed),
        format!("{FRONTEND}/reset?error=INVALID_TOKEN")
    );
    let no_callback = open(&format!("{}/api/auth/reset-password/{token}", server.base)).await;
    assert_eq!(
        location(&no_callback),
        format!("{FRONTEND}/auth/error?error=INVALID_TOKEN")
    );
    let evil = open(&format!(
        "{}/api/auth/reset-password/{token}?callbackURL=https%3A%2F%2Fevil.example%2F",
        server.base
    ))
    .await;
    expect_error(evil, 403, "INVALID_CALLBACK_URL").await;

    // Refusals spend nothing.
    let client = plain_client();
    for (body, code) in [
        (
            json!({"newPassword": NEW_PASSWORD, "token": random_token()}),
            "INVALID_TOKEN",
        ),
        (json!({"newPassword": NEW_PASSWORD}), "INVALID_TOKEN"),
        (
            json!({"newPassword": "short", "token": token}),
            "PASSWORD_TOO_SHORT",
        ),
        (
            json!({"newPassword": "p".repeat(129), "token": token}),
            "PASSWORD_TOO_LONG",
        ),
        (
            json!({"newPassword": "abababababab", "token": token}),
            "WEAK_PASSWORD",
        ),
    ] {
        expect_error(
            post(&server, &client, "reset-password", body).await,
            400,
            code,
        )
        .await;
    }
    assert_eq!(
        get_session(&server, &first).await["user"]["id"],
        user_id.as_str()
    );

    // The token as `?token=`, as Better Auth also accepts it.
    let r = client
        .post(format!(
            "{}?token={token}",
            auth_url(&server, "reset-password")
        ))
        .json(&json!({"newPassword": NEW_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(set_cookies(&r, SESSION_COOKIE).is_empty(), "no sign-in");
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"status": true}));

    // Every session ended; only the new password works; the token is spent.
    assert_eq!(get_session(&server, &first).await, Value::Null);
    assert_eq!(get_session(&server, &second).await, Value::Null);
    assert!(server
        .engine()
        .list_sessions(&user_id)
        .await
        .unwrap()
        .is_empty());
    expect_error(
        sign_in(&server, &client, "reset@example.com", PASSWORD).await,
        401,
        "INVALID_EMAIL_OR_PASSWORD",
    )
    .await;
    assert_eq!(
        sign_in(&server, &client, "reset@example.com", NEW_PASSWORD)
            .await
            .status(),
        200
    );
    expect_error(
        post(
            &server,
            &client,
            "reset-password",
            json!({"newPassword": "yet another passphrase", "token": token}),
        )
        .await,
        400,
        "INVALID_TOKEN",
    )
    .await;
    // Following the mailed link proved the mailbox.
    assert!(email_verified(&server, &user_id).await);
    assert!(audit_kinds(&server)
        .await
        .contains(&"password_reset".to_string()));

    expect_error(
        post(
            &server,
            &client,
            "request-password-reset",
            json!({"email": "reset@example.com", "redirectTo": "https://evil.example/reset"}),
        )
        .await,
        403,
        "INVALID_REDIRECT_URL",
    )
    .await;
    expect_error(
        post(
            &server,
            &client,
            "request-password-reset",
            json!({"email": "nope"}),
        )
        .await,
        400,
        "VALIDATION_ERROR",
    )
    .await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_and_superseded_tokens_are_refused() {
    let smtp = SmtpServer::start().await;
    let mut server = start(&smtp, |c| {
        c.email.verification_ttl = ConfigDuration::from_millis(1);
        c.email.reset_ttl = ConfigDuration::from_millis(1);
    })
    .await;
    let SignedUp { user_id, .. } = signed_up(&server, "slow@example.com").await;
    let verify = smtp.wait_for_mail("slow@example.com", MAIL_WAIT).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let r = open(&verify.link()).await;
    assert_eq!(location(&r), format!("{FRONTEND}/?error=TOKEN_EXPIRED"));
    let r = open(&format!(
        "{}/api/auth/verify-email?token={}",
        server.base,
        verify.token()
    ))
    .await;
    assert_eq!(r.status(), 401);
    assert!(!email_verified(&server, &user_id).await);

    let reset = request_reset(&server, &smtp, "slow@example.com", 2).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    expect_error(
        post(
            &server,
            &plain_client(),
            "reset-password",
            json!({"newPassword": NEW_PASSWORD, "token": reset.token()}),
        )
        .await,
        400,
        "INVALID_TOKEN",
    )
    .await;
    assert_eq!(
        sign_in(&server, &plain_client(), "slow@example.com", PASSWORD)
            .await
            .status(),
        200
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_link_from_before_a_password_change_is_refused() {
    let smtp = SmtpServer::start().await;
    let mut server = start(&smtp, |_| {}).await;
    let SignedUp { browser: b, .. } = signed_up(&server, "stale@example.com").await;
    let reset = request_reset(&server, &smtp, "stale@example.com", 2).await;
    let r = post(
        &server,
        &b,
        "change-password",
        json!({"currentPassword": PASSWORD, "newPassword": NEW_PASSWORD}),
    )
    .await;
    assert_eq!(r.status(), 200);
    expect_error(
        post(
            &server,
            &plain_client(),
            "reset-password",
            json!({"newPassword": "yet another passphrase", "token": reset.token()}),
        )
        .await,
        400,
        "INVALID_TOKEN",
    )
    .await;
    assert_eq!(
        sign_in(&server, &plain_client(), "stale@example.com", NEW_PASSWORD)
            .await
            .status(),
        200
    );
    server.stop().await;
}

// ----- change password, update user -----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn change_password_keeps_sessions_unless_asked_to_revoke_them() {
    let smtp = SmtpServer::start().await;
    let mut server = start(&smtp, |_| {}).await;
    let SignedUp {
        browser: first,
        user_id,
        cookie: old_cookie,
    } = signed_up(&server, "change@example.com").await;
    let second = browser();
    assert_eq!(
        sign_in(&server, &second, "change@example.com", PASSWORD)
            .await
            .status(),
        200
    );

    for (body, status, code) in [
        (
            json!({"currentPassword": "wrong password!", "newPassword": NEW_PASSWORD}),
            400,
            "INVALID_PASSWORD",
        ),
        (
            json!({"currentPassword": PASSWORD, "newPassword": "short"}),
            400,
            "PASSWORD_TOO_SHORT",
        ),
        (
            json!({"currentPassword": PASSWORD, "newPassword": "p".repeat(129)}),
            400,
            "PASSWORD_TOO_LONG",
        ),
        (
            json!({"currentPassword": PASSWORD, "newPassword": "change@example.com"}),
            400,
            "WEAK_PASSWORD",
        ),
        (
            json!({"currentPassword": PASSWORD}),
            400,
            "VALIDATION_ERROR",
        ),
    ] {
        expect_error(
            post(&server, &first, "change-password", body).await,
            status,
            code,
        )
        .await;
    }
    let body = json!({"currentPassword": PASSWORD, "newPassword": NEW_PASSWORD});
    expect_error(
        post(&server, &plain_client(), "change-password", body.clone()).await,
        401,
        "UNAUTHORIZED",
    )
    .await;
    let forged = first
        .post(auth_url(&server, "change-password"))
        .header("origin", "https://evil.example")
        .json(&body)
        .send()
        .await
        .unwrap();
    expect_error(forged, 403, "UNTRUSTED_ORIGIN").await;
    assert_eq!(
        sign_in(&server, &plain_client(), "change@example.com", PASSWORD)
            .await
            .status(),
        200
    );

    // Plain change: {token: null, user}, every session kept.
    let r = post(&server, &first, "change-password", body).await;
    assert_eq!(r.status(), 200);
    assert!(set_cookies(&r, SESSION_COOKIE).is_empty());
    let reply: Value = r.json().await.unwrap();
    assert_eq!(reply["token"], Value::Null);
    assert_eq!(reply["user"]["id"], user_id.as_str());
    assert_eq!(
        get_session(&server, &second).await["user"]["id"],
        user_id.as_str()
    );
    expect_error(
        sign_in(&server, &plain_client(), "change@example.com", PASSWORD).await,
        401,
        "INVALID_EMAIL_OR_PASSWORD",
    )
    .await;

    // revokeOtherSessions: the others end, and the caller's own session is replaced.
    let r = post(
        &server,
        &first,
        "change-password",
        json!({"currentPassword": NEW_PASSWORD, "newPassword": PASSWORD, "revokeOtherSessions": true}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let (new_cookie, set_cookie) = session_cookie(&r);
    assert!(set_cookie.ends_with("; HttpOnly; SameSite=Lax; Path=/; Max-Age=604800"));
    let reply: Value = r.json().await.unwrap();
    assert_eq!(session_for(&server, &old_cookie).await, Value::Null);
    assert_eq!(get_session(&server, &second).await, Value::Null);
    let now = session_for(&server, &new_cookie).await;
    assert_eq!(reply["token"], now["session"]["id"]);
    assert_eq!(
        get_session(&server, &first).await["session"]["id"],
        now["session"]["id"]
    );
    assert_eq!(
        server.engine().list_sessions(&user_id).await.unwrap().len(),
        1
    );
    assert_eq!(
        sign_in(&server, &plain_client(), "change@example.com", PASSWORD)
            .await
            .status(),
        200
    );

    // A provider-only user has no password to change.
    let social = server
        .engine()
        .create_user(NewUser {
            email: Some("social@example.com".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let cookie = engine_web_session(&server, &social.id).await;
    expect_error(
        post(
            &server,
            &client_with(&server, &cookie),
            "change-password",
            json!({"currentPassword": PASSWORD, "newPassword": NEW_PASSWORD}),
        )
        .await,
        400,
        "CREDENTIAL_ACCOUNT_NOT_FOUND",
    )
    .await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_user_changes_name_and_image_but_never_the_email() {
    let smtp = SmtpServer::start().await;
    let mut server = start(&smtp, |_| {}).await;
    let SignedUp {
        browser: b,
        user_id,
        ..
    } = signed_up(&server, "profile@example.com").await;
    let r = post(
        &server,
        &b,
        "update-user",
        json!({"name": "Grace Hopper", "image": "https://cdn.example.com/g.png", "roles": ["admin"], "emailVerified": true}),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"status": true}));
    let user = get_session(&server, &b).await["user"].clone();
    assert_eq!(user["name"], "Grace Hopper");
    assert_eq!(user["image"], "https://cdn.example.com/g.png");
    assert_eq!(user["emailVerified"], false, "ignored");
    assert_eq!(user["roles"], json!([]), "ignored");

    assert_eq!(
        post(&server, &b, "update-user", json!({"image": null}))
            .await
            .status(),
        200
    );
    assert_eq!(get_session(&server, &b).await["user"]["image"], Value::Null);

    for (body, code) in [
        (
            json!({"email": "new@example.com"}),
            "EMAIL_CAN_NOT_BE_UPDATED",
        ),
        (
            json!({"email": "new@example.com", "name": "X"}),
            "EMAIL_CAN_NOT_BE_UPDATED",
        ),
        (json!({"emailVerified": true}), "NO_FIELDS_TO_UPDATE"),
        (json!({}), "NO_FIELDS_TO_UPDATE"),
        (json!({"name": 5}), "VALIDATION_ERROR"),
        (json!({"name": "n".repeat(257)}), "VALIDATION_ERROR"),
        (
            json!({"image": "ftp://example.com/x.png"}),
            "VALIDATION_ERROR",
        ),
    ] {
        expect_error(post(&server, &b, "update-user", body).await, 400, code).await;
    }
    expect_error(
        post(
            &server,
            &plain_client(),
            "update-user",
            json!({"name": "X"}),
        )
        .await,
        401,
        "UNAUTHORIZED",
    )
    .await;
    let user = server.engine().user(&user_id).await.unwrap();
    assert_eq!(user.email.as_deref(), Some("profile@example.com"));
    assert_eq!(user.name.as_deref(), Some("Grace Hopper"));
    server.stop().await;
}

// ----- delete user -----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_user_needs_the_password_and_frees_the_address() {
    let smtp = SmtpServer::start().await;
    let mut server = start(&smtp, |_| {}).await;
    let SignedUp {
        browser: b,
        user_id,
        ..
    } = signed_up(&server, "leaving@example.com").await;
    let other = browser();
    assert_eq!(
        sign_in(&server, &other, "leaving@example.com", PASSWORD)
            .await
            .status(),
        200
    );

    expect_error(
        post(&server, &plain_client(), "delete-user", json!({})).await,
        401,
        "UNAUTHORIZED",
    )
    .await;
    for (body, status, code) in [
        (json!({}), 400, "INVALID_PASSWORD"),
        (
            json!({"password": "wrong password!"}),
            400,
            "INVALID_PASSWORD",
        ),
        (
            json!({"password": PASSWORD, "callbackURL": "https://evil.example/"}),
            403,
            "INVALID_CALLBACK_URL",
        ),
        (
            json!({"password": PASSWORD, "token": "abc"}),
            404,
            "INVALID_TOKEN",
        ),
    ] {
        expect_error(post(&server, &b, "delete-user", body).await, status, code).await;
    }
    let forged = b
        .post(auth_url(&server, "delete-user"))
        .header("origin", "https://evil.example")
        .json(&json!({"password": PASSWORD}))
        .send()
        .await
        .unwrap();
    expect_error(forged, 403, "UNTRUSTED_ORIGIN").await;
    assert_eq!(server.engine().user_count().await.unwrap(), 1);

    let r = post(
        &server,
        &b,
        "delete-user",
        json!({"password": PASSWORD, "callbackURL": "/bye"}),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        set_cookies(&r, SESSION_COOKIE),
        [format!(
            "{SESSION_COOKIE}=; HttpOnly; SameSite=Lax; Path=/; Max-Age=0"
        )]
    );
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"success": true, "message": "User deleted"})
    );
    assert_eq!(get_session(&server, &b).await, Value::Null);
    assert_eq!(server.engine().user_count().await.unwrap(), 0);
    assert!(server
        .engine()
        .stored_user(&user_id)
        .await
        .unwrap()
        .is_none());
    expect_error(
        sign_in(&server, &plain_client(), "leaving@example.com", PASSWORD).await,
        401,
        "INVALID_EMAIL_OR_PASSWORD",
    )
    .await;

    // The address can register again, as a new user.
    let SignedUp { user_id: again, .. } = signed_up(&server, "leaving@example.com").await;
    assert_ne!(again, user_id);

    // Every other session of the deleted user is dead too: its cookie reads as
    // signed out (not an error).
    assert_eq!(get_session(&server, &other).await, Value::Null);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_without_a_password_deletes_with_a_fresh_session() {
    let smtp = SmtpServer::start().await;
    let mut server = start(&smtp, |_| {}).await;
    let social = server
        .engine()
        .create_user(NewUser {
            email: Some("social@example.com".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let b = client_with(&server, &engine_web_session(&server, &social.id).await);
    expect_error(
        post(&server, &b, "delete-user", json!({"password": PASSWORD})).await,
        400,
        "CREDENTIAL_ACCOUNT_NOT_FOUND",
    )
    .await;
    let r = post(&server, &b, "delete-user", json!({})).await;
    assert_eq!(r.status(), 200);
    assert_eq!(server.engine().user_count().await.unwrap(), 0);
    assert!(audit_kinds(&server)
        .await
        .contains(&"user_deleted".to_string()));
    server.stop().await;
}

// ----- limits -----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_requests_and_password_attempts_are_rate_limited() {
    let smtp = SmtpServer::start().await;
    let mut server = start(&smtp, |c| c.email.requests_per_minute = 3).await;
    signed_up(&server, "limited@example.com").await;
    let client = plain_client();
    for _ in 0..2 {
        let r = post(
            &server,
            &client,
            "request-password-reset",
            json!({"email": "limited@example.com"}),
        )
        .await;
        assert_eq!(r.status(), 200);
    }
    for endpoint in [
        "request-password-reset",
        "send-verification-email",
        "sign-up/email",
    ] {
        let r = post(
            &server,
            &client,
            endpoint,
            json!({"email": "someone@example.com", "name": "x", "password": PASSWORD}),
        )
        .await;
        assert!(
            r.headers()["retry-after"]
                .to_str()
                .unwrap()
                .parse::<u64>()
                .unwrap()
                >= 1
        );
        expect_error(r, 429, "TOO_MANY_REQUESTS").await;
    }
    assert_eq!(server.engine().user_count().await.unwrap(), 1);

    // Sign-in: five attempts an account a minute, right password or not.
    for _ in 0..4 {
        expect_error(
            sign_in(&server, &client, "limited@example.com", "wrong password!").await,
            401,
            "INVALID_EMAIL_OR_PASSWORD",
        )
        .await;
    }
    expect_error(
        sign_in(&server, &client, "Limited@example.com", "wrong password!").await,
        401,
        "INVALID_EMAIL_OR_PASSWORD",
    )
    .await;
    let r = sign_in(&server, &client, "limited@example.com", PASSWORD).await;
    assert!(r.headers().contains_key("retry-after"));
    expect_error(r, 429, "TOO_MANY_REQUESTS").await;
    server.stop().await;
}

// ----- password accounts meet provider sign-ins -----

async fn start_with_trusted_provider(smtp: &SmtpServer, provider: &OidcProvider) -> TestServer {
    start(smtp, |c| {
        add_oidc_provider(c, "local", provider);
        c.oauth.trusted_providers = vec!["local".into()];
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_verified_provider_sign_in_takes_over_an_unproven_address() {
    let smtp = SmtpServer::start().await;
    let provider = OidcProvider::start().await;
    let mut server = start_with_trusted_provider(&smtp, &provider).await;
    // Someone registers the address without owning the mailbox.
    let SignedUp {
        browser: squatter,
        user_id,
        cookie: squatter_cookie,
    } = signed_up(&server, "victim@example.com").await;
    assert!(!email_verified(&server, &user_id).await);
    // ... and links a sign-in of their own to it (a wallet, say).
    let squatters_wallet = ProviderIdentity {
        provider: "siwe".into(),
        subject: "eip155:1:0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266".into(),
        ..ProviderIdentity::default()
    };
    server
        .engine()
        .link_account(&user_id, &squatters_wallet)
        .await
        .unwrap();

    // Its owner signs in with a provider that verified it.
    provider.set_user(TestUser::verified("victim"));
    let owner = browser();
    let landed = oauth_sign_in(&server, &owner, "local", json!({})).await;
    assert_eq!(location(&landed), format!("{FRONTEND}/dashboard"));
    let session = get_session(&server, &owner).await;
    assert_eq!(session["user"]["id"], user_id.as_str(), "the same user");
    assert_eq!(session["user"]["emailVerified"], true);
    assert_eq!(server.engine().user_count().await.unwrap(), 1);

    // The squatter is out: the password is gone and so is the session.
    expect_error(
        sign_in(&server, &plain_client(), "victim@example.com", PASSWORD).await,
        401,
        "INVALID_EMAIL_OR_PASSWORD",
    )
    .await;
    assert_eq!(get_session(&server, &squatter).await, Value::Null);
    assert_eq!(session_for(&server, &squatter_cookie).await, Value::Null);
    assert_eq!(
        server.engine().list_sessions(&user_id).await.unwrap().len(),
        1
    );
    let user = server.engine().user(&user_id).await.unwrap();
    assert!(!user.has_password);
    assert_eq!(user.accounts.len(), 1);
    assert_eq!(user.accounts[0].provider, "local");
    let audit = server.engine().recent_audit_events(10_000).await.unwrap();
    let takeover = audit
        .iter()
        .find(|e| e.kind == "email_taken_over")
        .expect("an email_taken_over audit event");
    assert_eq!(takeover.user_id.as_deref(), Some(user_id.as_str()));
    // The squatter's wallet went with the password: it signs in as nobody
    // the owner knows (a new user), never into the owner's account again.
    let (wallet_user, created) = server
        .engine()
        .user_id_for_account(&squatters_wallet)
        .await
        .unwrap();
    assert!(created, "the wallet no longer leads to the owner's user");
    assert_ne!(wallet_user, user_id);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_verified_provider_sign_in_joins_a_proven_address_without_takeover() {
    let smtp = SmtpServer::start().await;
    let provider = OidcProvider::start().await;
    let mut server = start_with_trusted_provider(&smtp, &provider).await;
    let SignedUp {
        browser: b,
        user_id,
        ..
    } = signed_up(&server, "owner@example.com").await;
    let mail = smtp.wait_for_mail("owner@example.com", MAIL_WAIT).await;
    assert_eq!(open(&mail.link()).await.status(), 302);
    assert!(email_verified(&server, &user_id).await);

    provider.set_user(TestUser::verified("owner"));
    let other = browser();
    oauth_sign_in(&server, &other, "local", json!({})).await;
    assert_eq!(
        get_session(&server, &other).await["user"]["id"],
        user_id.as_str()
    );

    // Joined: the password and the first session stay, both accounts listed.
    assert_eq!(
        get_session(&server, &b).await["user"]["id"],
        user_id.as_str()
    );
    assert_eq!(
        sign_in(&server, &plain_client(), "owner@example.com", PASSWORD)
            .await
            .status(),
        200
    );
    let accounts: Vec<Value> = b
        .get(auth_url(&server, "list-accounts"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut providers: Vec<&str> = accounts
        .iter()
        .map(|a| a["providerId"].as_str().unwrap())
        .collect();
    providers.sort();
    assert_eq!(providers, ["credential", "local"]);
    assert!(!audit_kinds(&server)
        .await
        .contains(&"email_taken_over".to_string()));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_up_can_be_switched_off_while_sign_in_keeps_working() {
    let smtp = SmtpServer::start().await;
    let server = start(&smtp, |c| c.oauth.allow_email_signup = false).await;
    let refused = sign_up(&server, &browser(), "closed@example.com").await;
    expect_error(refused, 400, "EMAIL_PASSWORD_SIGN_UP_DISABLED").await;
    assert_eq!(server.engine().user_count().await.unwrap(), 0);
    assert!(smtp.mails().is_empty());
    // A user made another way still signs in with email and password.
    create_dashboard_user(&server, "existing@example.com").await;
    let r = sign_in(
        &server,
        &browser(),
        "existing@example.com",
        DASHBOARD_PASSWORD,
    )
    .await;
    assert_eq!(r.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dont_remember_me_cookie_stays_a_browser_session_cookie_when_renewed() {
    let smtp = SmtpServer::start().await;
    let server = start(&smtp, |c| c.oauth.update_age = ConfigDuration::from_secs(1)).await;
    signed_up(&server, "renew@example.com").await;
    let mut cookies = Vec::new();
    for remember in [false, true] {
        let r = post(
            &server,
            &browser(),
            "sign-in/email",
            json!({"email": "renew@example.com", "password": PASSWORD, "rememberMe": remember}),
        )
        .await;
        assert_eq!(r.status(), 200);
        cookies.push((remember, session_cookie(&r).0));
    }
    // Past `update_age`, get-session slides the session and sets the cookie again.
    tokio::time::sleep(Duration::from_millis(1_300)).await;
    for (remember, cookie) in cookies {
        let r = plain_client()
            .get(auth_url(&server, "get-session"))
            .header("cookie", format!("{SESSION_COOKIE}={cookie}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let renewed = set_cookies(&r, SESSION_COOKIE);
        assert_eq!(renewed.len(), 1, "the slide re-sets the cookie");
        assert_eq!(
            renewed[0].contains("Max-Age="),
            remember,
            "rememberMe {remember}: {}",
            renewed[0]
        );
    }
}
