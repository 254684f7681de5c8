//! The dashboard's password life cycle over real HTTP and a real SMTP server:
//! the verification mail of a registration and `/verify-email`,
//! `/send-verification-email`, `/forgot-password` (enumeration-safe, rate
//! limited) and `/reset-password` (ends every session), `/change-password`
//! (optionally ending the other sessions). Mailed tokens work once, expire,
//! and are bound to the password they replace; refused requests change
//! nothing.

mod support;

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::smtp::{use_smtp, ReceivedMail, SmtpServer};
use support::*;
use tachigo_engine::config::{Config, ConfigDuration};
use tachigo_engine::{NewSession, NewUser, Surface};

const MAIL_WAIT: Duration = Duration::from_secs(15);
const NEW_PASSWORD: &str = "a brand new passphrase";

async fn start(smtp: &SmtpServer, adjust: impl FnOnce(&mut Config)) -> TestServer {
    TestServer::start_with(|c| {
        c.dashboard.allow_signup = true;
        use_smtp(c, smtp);
        adjust(c);
    })
    .await
}

fn url(server: &TestServer, endpoint: &str) -> String {
    server.url(&format!("/api/v1/auth/{endpoint}"))
}

async fn post(server: &TestServer, endpoint: &str, body: Value) -> reqwest::Response {
    plain_client()
        .post(url(server, endpoint))
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn post_bearer(
    server: &TestServer,
    endpoint: &str,
    access: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let mut request = plain_client()
        .post(url(server, endpoint))
        .bearer_auth(access);
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.unwrap()
}

async fn expect_error(response: reqwest::Response, status: u16, code: &str) {
    assert_eq!(response.status(), status, "expected {status} {code}");
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert_eq!(error_code(response).await, code);
}

/// A dashboard login: (refresh token, access token, session id).
struct Login {
    refresh: String,
    access: String,
    session_id: String,
}

async fn login_with(server: &TestServer, email: &str, password: &str) -> reqwest::Response {
    post(
        server,
        "login",
        json!({"email": email, "password": password}),
    )
    .await
}

async fn login(server: &TestServer, email: &str, password: &str) -> Login {
    let r = login_with(server, email, password).await;
    assert_eq!(r.status(), 200, "login of {email}");
    let refresh = refresh_cookie_value(&r);
    let body: Value = r.json().await.unwrap();
    Login {
        session_id: refresh.split('.').next().unwrap().to_string(),
        refresh,
        access: body["access_token"].as_str().unwrap().to_string(),
    }
}

async fn me(server: &TestServer, access: &str) -> reqwest::Response {
    plain_client()
        .get(url(server, "me"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap()
}

async fn email_verified(server: &TestServer, user_id: &str) -> bool {
    server
        .engine()
        .stored_user(user_id)
        .await
        .unwrap()
        .expect("the user exists")
        .email_verified
}

/// Where the default configuration's mails link to.
const VERIFY_PAGE: &str = "http://localhost:3000/verify-email?token=";
const RESET_PAGE: &str = "http://localhost:3000/reset-password?token=";

/// Waits for the mail to `email` whose link starts with `page` (mails that
/// arrive within the same second have no reliable order, so not by position).
async fn wait_for_link(smtp: &SmtpServer, email: &str, page: &str) -> ReceivedMail {
    let deadline = Instant::now() + MAIL_WAIT;
    loop {
        let found = smtp
            .mails_to(email)
            .into_iter()
            .find(|mail| mail.link().starts_with(page));
        if let Some(mail) = found {
            return mail;
        }
        assert!(
            Instant::now() < deadline,
            "no mail to {email} links to {page}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Asks for a reset mail for `email` and returns it.
async fn reset_mail(server: &TestServer, smtp: &SmtpServer, email: &str) -> ReceivedMail {
    let r = post(server, "forgot-password", json!({ "email": email })).await;
    assert_eq!(r.status(), 202);
    wait_for_link(smtp, email, RESET_PAGE).await
}

/// A refresh token the server refuses: 401 with a refresh-token error code.
async fn assert_refresh_refused(server: &TestServer, token: &str) {
    let r = dashboard_refresh_with(server, token).await;
    assert_eq!(r.status(), 401);
    let code = error_code(r).await;
    assert!(
        code == "invalid_refresh_token" || code == "refresh_token_reused",
        "{code}"
    );
}

/// 43 characters of base64url: the shape of a real mailed token.
fn random_token() -> String {
    use base64::Engine as _;
    let bytes: [u8; 32] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

// ----- verification -----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_mails_a_verification_link_that_verifies_once() {
    let smtp = SmtpServer::start().await;
    let mut server = start(&smtp, |_| {}).await;
    let r = post(
        &server,
        "register",
        json!({"email": "New.Comer@Example.com", "password": DASHBOARD_PASSWORD, "name": "Newcomer"}),
    )
    .await;
    assert_eq!(r.status(), 201);
    let user_id = r.json::<Value>().await.unwrap()["user"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(!email_verified(&server, &user_id).await);

    let mail = wait_for_link(&smtp, "new.comer@example.com", VERIFY_PAGE).await;
    let link = mail.link();
    assert!(link.starts_with(VERIFY_PAGE), "{link}");
    let token = mail.token();
    assert_eq!(token.len(), 43, "256 random bits, base64url");
    assert!(
        mail.html.contains(&link),
        "the HTML part carries the same link"
    );

    let r = post(&server, "verify-email", json!({ "token": token })).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body,
        json!({"user": {"id": user_id, "email": "new.comer@example.com", "name": "Newcomer", "roles": []}})
    );
    assert!(email_verified(&server, &user_id).await);

    // A token works once.
    expect_error(
        post(&server, "verify-email", json!({ "token": token })).await,
        400,
        "invalid_token",
    )
    .await;
    // And a verified address gets no new mail.
    let session = login(&server, "new.comer@example.com", DASHBOARD_PASSWORD).await;
    expect_error(
        post_bearer(&server, "send-verification-email", &session.access, None).await,
        409,
        "email_already_verified",
    )
    .await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_in_user_can_ask_for_a_verification_mail() {
    let smtp = SmtpServer::start().await;
    let mut server = start(&smtp, |_| {}).await;
    // Created without the API: no mail yet.
    let user_id = create_dashboard_user(&server, "later@example.com").await;
    let session = login(&server, "later@example.com", DASHBOARD_PASSWORD).await;

    expect_error(
        plain_client()
            .post(url(&server, "send-verification-email"))
            .send()
            .await
            .unwrap(),
        401,
        "invalid_access_token",
    )
    .await;

    let r = post_bearer(&server, "send-verification-email", &session.access, None).await;
    assert_eq!(r.status(), 202);
    assert_eq!(r.json::<Value>().await.unwrap(), json!({}));
    let mail = wait_for_link(&smtp, "later@example.com", VERIFY_PAGE).await;

    // A second request within the per-address interval is answered the same
    // and sends nothing.
    let r = post_bearer(
        &server,
        "send-verification-email",
        &session.access,
        Some(json!({})),
    )
    .await;
    assert_eq!(r.status(), 202);

    let r = post(&server, "verify-email", json!({"token": mail.token()})).await;
    assert_eq!(r.status(), 200);
    assert!(email_verified(&server, &user_id).await);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(smtp.mails_to("later@example.com").len(), 1);

    // A user without an address: 400 no_email.
    let engine = server.engine();
    let anonymous = engine
        .create_user(NewUser {
            email: None,
            name: Some("No Mail".into()),
            password: None,
            roles: Vec::new(),
        })
        .await
        .unwrap();
    let started = engine
        .create_session(
            &anonymous.id,
            NewSession {
                surface: Surface::Dashboard,
                user_agent: None,
                ip: None,
                context: None,
            },
        )
        .await
        .unwrap();
    let (access, _) = engine.mint_access_token(
        &anonymous.id,
        Some(&started.session.id),
        "dashboard",
        &[],
        serde_json::Map::new(),
    );
    expect_error(
        post_bearer(&server, "send-verification-email", &access, None).await,
        400,
        "no_email",
    )
    .await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_malformed_and_foreign_tokens_verify_nothing() {
    let smtp = SmtpServer::start().await;
    let mut server = start(&smtp, |_| {}).await;
    let r = post(
        &server,
        "register",
        json!({"email": "careful@example.com", "password": DASHBOARD_PASSWORD}),
    )
    .await;
    assert_eq!(r.status(), 201);
    let user_id = server
        .engine()
        .user_id_by_email("careful@example.com")
        .await
        .unwrap()
        .unwrap();
    let mail = wait_for_link(&smtp, "careful@example.com", VERIFY_PAGE).await;
    let audit_before = server
        .engine()
        .recent_audit_events(10_000)
        .await
        .unwrap()
        .len();

    let genuine = mail.token();
    let mut flipped = genuine.clone().into_bytes();
    flipped[10] = if flipped[10] == b'A' { b'B' } else { b'A' };
    let refused = [
        random_token(),                      // forged, right shape
        String::from_utf8(flipped).unwrap(), // one character off
        format!("{genuine}A"),               // too long by one
        "A".repeat(4000),                    // far too long
        genuine[..42].to_string(),           // truncated
        "!".repeat(43),                      // wrong alphabet
        format!("{}=", &genuine[..42]),      // base64 padding
        format!("{}+", &genuine[..42]),      // standard base64
        "é".repeat(21) + "a",                // 43 bytes, not ASCII
        String::new(),
    ];
    for token in &refused {
        expect_error(
            post(&server, "verify-email", json!({ "token": token })).await,
            400,
            "invalid_token",
        )
        .await;
    }
    // Malformed bodies never reach the engine.
    for body in [
        json!({}),
        json!({"token": 12}),
        json!({"token": null}),
        json!({"token": genuine, "extra": true}),
    ] {
        expect_error(
            post(&server, "verify-email", body).await,
            400,
            "invalid_body",
        )
        .await;
    }
    // A reset token is no verification token (and is spent by the attempt).
    let reset = reset_mail(&server, &smtp, "careful@example.com").await;

    expect_error(
        post(&server, "verify-email", json!({"token": reset.token()})).await,
        400,
        "invalid_token",
    )
    .await;
    assert!(!email_verified(&server, &user_id).await);
    assert_eq!(
        server
            .engine()
            .recent_audit_events(10_000)
            .await
            .unwrap()
            .len(),
        audit_before + 1,
        "only the reset request was audited"
    );

    // The genuine token survived all of that.
    let r = post(&server, "verify-email", json!({ "token": genuine })).await;
    assert_eq!(r.status(), 200);
    assert!(email_verified(&server, &user_id).await);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_tokens_are_refused() {
    let smtp = SmtpServer::start().await;
    let mut server = start(&smtp, |c| {
        c.email.verification_ttl = ConfigDuration::from_millis(1);
        c.email.reset_ttl = ConfigDuration::from_millis(1);
    })
    .await;
    let r = post(
        &server,
        "register",
        json!({"email": "slow@example.com", "password": DASHBOARD_PASSWORD}),
    )
    .await;
    assert_eq!(r.status(), 201);
    let user_id = server
        .engine()
        .user_id_by_email("slow@example.com")
        .await
        .unwrap()
        .unwrap();
    let verify = wait_for_link(&smtp, "slow@example.com", VERIFY_PAGE).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    expect_error(
        post(&server, "verify-email", json!({"token": verify.token()})).await,
        400,
        "token_expired",
    )
    .await;
    assert!(!email_verified(&server, &user_id).await);

    let reset = reset_mail(&server, &smtp, "slow@example.com").await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    expect_error(
        post(
            &server,
            "reset-password",
            json!({"token": reset.token(), "password": NEW_PASSWORD}),
        )
        .await,
        400,
        "token_expired",
    )
    .await;
    assert_eq!(
        login_with(&server, "slow@example.com", NEW_PASSWORD)
            .await
            .status(),
        401
    );
    assert_eq!(
        login_with(&server, "slow@example.com", DASHBOARD_PASSWORD)
            .await
            .status(),
        200
    );
    server.stop().await;
}

// ----- forgot and reset -----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forgot_password_answers_the_same_for_known_and_unknown_addresses() {
    let smtp = SmtpServer::start().await;
    // Enough mail requests for this test; the limit has its own test.
    let mut server = start(&smtp, |c| c.email.requests_per_minute = 50).await;
    create_dashboard_user(&server, "known@example.com").await;
    let floor = server.config.email.answer_floor.0;

    let mut answers = Vec::new();
    for email in ["nobody@example.com", "  KNOWN@Example.com "] {
        let started = Instant::now();
        let r = post(&server, "forgot-password", json!({ "email": email })).await;
        let took = started.elapsed();
        assert!(
            took >= floor,
            "{email} answered after {took:?}, before the floor"
        );
        let status = r.status();
        let headers: Vec<(String, String)> = r
            .headers()
            .iter()
            .filter(|(name, _)| !matches!(name.as_str(), "date" | "x-request-id"))
            .map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_string()))
            .collect();
        let body = r.text().await.unwrap();
        answers.push((status, headers, body));
    }
    assert_eq!(answers[0], answers[1], "the same answer either way");
    assert_eq!(answers[0].0, 202);
    assert_eq!(answers[0].2, "{}");

    // Only the registered address gets a mail (to its stored spelling).
    wait_for_link(&smtp, "known@example.com", RESET_PAGE).await;

    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(smtp.mails_to("nobody@example.com").is_empty());
    assert_eq!(smtp.mails().len(), 1);

    // An address that is not one is a 400 (which says nothing about who exists).
    for email in ["not an address", "", "a@b", "@example.com"] {
        expect_error(
            post(&server, "forgot-password", json!({ "email": email })).await,
            400,
            "invalid_body",
        )
        .await;
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_password_sets_the_password_and_ends_every_session() {
    let smtp = SmtpServer::start().await;
    let mut server = start(&smtp, |_| {}).await;
    let user_id = create_dashboard_user(&server, "reset@example.com").await;
    let first = login(&server, "reset@example.com", DASHBOARD_PASSWORD).await;
    let second = login(&server, "reset@example.com", DASHBOARD_PASSWORD).await;
    // The second login also rotated once, so it holds a retired and a current token.
    let r = dashboard_refresh_with(&server, &second.refresh).await;
    assert_eq!(r.status(), 200);
    let second_current = refresh_cookie_value(&r);

    let mail = reset_mail(&server, &smtp, "reset@example.com").await;
    let token = mail.token();

    // A refused password leaves the token usable and changes nothing.
    expect_error(
        post(
            &server,
            "reset-password",
            json!({"token": token, "password": "short"}),
        )
        .await,
        400,
        "weak_password",
    )
    .await;
    expect_error(
        post(
            &server,
            "reset-password",
            json!({"token": token, "password": "reset@example.com"}),
        )
        .await,
        400,
        "weak_password",
    )
    .await;
    assert_eq!(me(&server, &first.access).await.status(), 200);

    let r = post(
        &server,
        "reset-password",
        json!({"token": token, "password": NEW_PASSWORD}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["user"]["id"], user_id.as_str());
    assert_eq!(body["user"]["email"], "reset@example.com");
    // Following the link proved the mailbox.
    assert!(email_verified(&server, &user_id).await);

    assert_eq!(
        login_with(&server, "reset@example.com", DASHBOARD_PASSWORD)
            .await
            .status(),
        401
    );
    // Every old refresh token is refused, cookie or body.
    assert_refresh_refused(&server, &first.refresh).await;
    assert_refresh_refused(&server, &second_current).await;
    let r = plain_client()
        .post(url(&server, "refresh"))
        .json(&json!({"refresh_token": second_current}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // Every old access token's session is over.
    for access in [&first.access, &second.access] {
        expect_error(me(&server, access).await, 401, "session_revoked").await;
    }
    assert!(server
        .engine()
        .stored_sessions(&user_id)
        .await
        .unwrap()
        .is_empty());

    // The token works once.
    expect_error(
        post(
            &server,
            "reset-password",
            json!({"token": token, "password": "yet another passphrase"}),
        )
        .await,
        400,
        "invalid_token",
    )
    .await;
    // A forged token does nothing.
    expect_error(
        post(
            &server,
            "reset-password",
            json!({"token": random_token(), "password": "yet another passphrase"}),
        )
        .await,
        400,
        "invalid_token",
    )
    .await;

    let fresh = login(&server, "reset@example.com", NEW_PASSWORD).await;
    assert_eq!(me(&server, &fresh.access).await.status(), 200);
    assert_eq!(
        dashboard_refresh_with(&server, &fresh.refresh)
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
    create_dashboard_user(&server, "stale@example.com").await;
    let mail = reset_mail(&server, &smtp, "stale@example.com").await;

    let session = login(&server, "stale@example.com", DASHBOARD_PASSWORD).await;
    let r = post_bearer(
        &server,
        "change-password",
        &session.access,
        Some(json!({"current_password": DASHBOARD_PASSWORD, "new_password": NEW_PASSWORD})),
    )
    .await;
    assert_eq!(r.status(), 200);

    expect_error(
        post(
            &server,
            "reset-password",
            json!({"token": mail.token(), "password": "attacker chosen words"}),
        )
        .await,
        400,
        "invalid_token",
    )
    .await;
    assert_eq!(
        login_with(&server, "stale@example.com", "attacker chosen words")
            .await
            .status(),
        401
    );
    assert_eq!(
        login_with(&server, "stale@example.com", NEW_PASSWORD)
            .await
            .status(),
        200
    );
    // The change left the caller's session alone.
    assert_eq!(me(&server, &session.access).await.status(), 200);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_requests_are_rate_limited_per_client() {
    let smtp = SmtpServer::start().await;
    let mut server = start(&smtp, |c| {
        c.email.requests_per_minute = 3;
        c.email.answer_floor = ConfigDuration::from_millis(10);
    })
    .await;
    create_dashboard_user(&server, "limited@example.com").await;
    let session = login(&server, "limited@example.com", DASHBOARD_PASSWORD).await;
    for i in 0..3 {
        let email = format!("someone{i}@example.com");
        let r = post(&server, "forgot-password", json!({ "email": email })).await;
        assert_eq!(r.status(), 202);
    }
    let r = post(
        &server,
        "forgot-password",
        json!({"email": "limited@example.com"}),
    )
    .await;
    assert_eq!(r.status(), 429);
    let retry_after: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    assert_eq!(error_code(r).await, "too_many_requests");
    // Verification mails share the client's budget.
    expect_error(
        post_bearer(&server, "send-verification-email", &session.access, None).await,
        429,
        "too_many_requests",
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(smtp.mails().is_empty(), "nothing was mailed");
    server.stop().await;
}

// ----- change -----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn change_password_refusals_change_nothing() {
    let smtp = SmtpServer::start().await;
    let mut server = start(&smtp, |_| {}).await;
    let user_id = create_dashboard_user(&server, "change@example.com").await;
    let caller = login(&server, "change@example.com", DASHBOARD_PASSWORD).await;
    let other = login(&server, "change@example.com", DASHBOARD_PASSWORD).await;
    let before = server.engine().stored_user(&user_id).await.unwrap();

    let change = |body: Value| post_bearer(&server, "change-password", &caller.access, Some(body));
    expect_error(
        change(json!({"current_password": "not my password", "new_password": NEW_PASSWORD, "end_other_sessions": true})).await,
        400,
        "invalid_credentials",
    )
    .await;
    expect_error(
        change(json!({"current_password": DASHBOARD_PASSWORD, "new_password": "short", "end_other_sessions": true})).await,
        400,
        "weak_password",
    )
    .await;
    expect_error(
        change(json!({"current_password": DASHBOARD_PASSWORD, "new_password": NEW_PASSWORD, "endOtherSessions": true})).await,
        400,
        "invalid_body",
    )
    .await;
    expect_error(
        change(json!({"current_password": DASHBOARD_PASSWORD})).await,
        400,
        "invalid_body",
    )
    .await;
    expect_error(
        plain_client()
            .post(url(&server, "change-password"))
            .json(&json!({"current_password": DASHBOARD_PASSWORD, "new_password": NEW_PASSWORD}))
            .send()
            .await
            .unwrap(),
        401,
        "invalid_access_token",
    )
    .await;

    assert_eq!(server.engine().stored_user(&user_id).await.unwrap(), before);
    assert_eq!(
        login_with(&server, "change@example.com", NEW_PASSWORD)
            .await
            .status(),
        401
    );
    assert_eq!(
        dashboard_refresh_with(&server, &other.refresh)
            .await
            .status(),
        200
    );
    assert_eq!(me(&server, &caller.access).await.status(), 200);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn change_password_can_end_every_other_session() {
    let smtp = SmtpServer::start().await;
    let mut server = start(&smtp, |_| {}).await;
    let user_id = create_dashboard_user(&server, "moving@example.com").await;
    let caller = login(&server, "moving@example.com", DASHBOARD_PASSWORD).await;
    let other = login(&server, "moving@example.com", DASHBOARD_PASSWORD).await;

    // Without the flag, other sessions stay.
    let r = post_bearer(
        &server,
        "change-password",
        &caller.access,
        Some(json!({"current_password": DASHBOARD_PASSWORD, "new_password": "an interim passphrase"})),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(me(&server, &other.access).await.status(), 200);

    let r = post_bearer(
        &server,
        "change-password",
        &caller.access,
        Some(json!({
            "current_password": "an interim passphrase",
            "new_password": NEW_PASSWORD,
            "end_other_sessions": true,
        })),
    )
    .await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["user"]["id"], user_id.as_str());

    assert_refresh_refused(&server, &other.refresh).await;
    expect_error(me(&server, &other.access).await, 401, "session_revoked").await;
    // The caller's session stays and still rotates.
    assert_eq!(me(&server, &caller.access).await.status(), 200);
    let r = dashboard_refresh_with(&server, &caller.refresh).await;
    assert_eq!(r.status(), 200);
    let sessions = server.engine().stored_sessions(&user_id).await.unwrap();
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0].id, caller.session_id);

    // (Five password attempts on this account so far: the login limit's burst.)
    assert_eq!(
        login_with(&server, "moving@example.com", NEW_PASSWORD)
            .await
            .status(),
        200
    );
    server.stop().await;
}

// ----- bad input -----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_bodies_are_refused_and_spend_no_token() {
    let smtp = SmtpServer::start().await;
    let mut server = start(&smtp, |_| {}).await;
    let user_id = create_dashboard_user(&server, "bodies@example.com").await;
    let session = login(&server, "bodies@example.com", DASHBOARD_PASSWORD).await;
    let mail = reset_mail(&server, &smtp, "bodies@example.com").await;
    let token = mail.token();
    let user_before = server.engine().stored_user(&user_id).await.unwrap();
    let audit_before = server
        .engine()
        .recent_audit_events(10_000)
        .await
        .unwrap()
        .len();

    let padding = "x".repeat(17 * 1024);
    let client = plain_client();
    for endpoint in [
        "verify-email",
        "forgot-password",
        "reset-password",
        "change-password",
    ] {
        let target = url(&server, endpoint);
        // Over 16 KiB, with a usable token inside.
        let oversized = json!({"token": token, "password": NEW_PASSWORD, "email": "bodies@example.com",
            "current_password": DASHBOARD_PASSWORD, "new_password": NEW_PASSWORD, "pad": padding});
        let r = client
            .post(&target)
            .bearer_auth(&session.access)
            .json(&oversized)
            .send()
            .await
            .unwrap();
        expect_error(r, 413, "body_too_large").await;
        // Not JSON.
        let r = client
            .post(&target)
            .bearer_auth(&session.access)
            .header("content-type", "application/json")
            .body(format!(r#"{{"token": "{token}", "password": "#))
            .send()
            .await
            .unwrap();
        expect_error(r, 400, "invalid_body").await;
        // Not declared as JSON.
        let r = client
            .post(&target)
            .bearer_auth(&session.access)
            .header("content-type", "text/plain")
            .body(format!(
                r#"{{"token": "{token}", "password": "{NEW_PASSWORD}"}}"#
            ))
            .send()
            .await
            .unwrap();
        expect_error(r, 415, "unsupported_media_type").await;
        // Wrong types.
        let r = client
            .post(&target)
            .bearer_auth(&session.access)
            .json(&json!({"token": [token], "password": 1, "email": {}, "current_password": true, "new_password": null}))
            .send()
            .await
            .unwrap();
        expect_error(r, 400, "invalid_body").await;
    }

    assert_eq!(
        server.engine().stored_user(&user_id).await.unwrap(),
        user_before
    );
    assert_eq!(
        server
            .engine()
            .recent_audit_events(10_000)
            .await
            .unwrap()
            .len(),
        audit_before
    );
    assert_eq!(me(&server, &session.access).await.status(), 200);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(smtp.mails_to("bodies@example.com").len(), 1, "no new mail");

    // The token was never spent.
    let r = post(
        &server,
        "reset-password",
        json!({"token": token, "password": NEW_PASSWORD}),
    )
    .await;
    assert_eq!(r.status(), 200);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_new_routes_follow_the_browser_rules() {
    let smtp = SmtpServer::start().await;
    let mut server = start(&smtp, |_| {}).await;
    for endpoint in [
        "verify-email",
        "send-verification-email",
        "forgot-password",
        "reset-password",
        "change-password",
    ] {
        let r = plain_client()
            .request(reqwest::Method::OPTIONS, url(&server, endpoint))
            .header("origin", DASHBOARD_ORIGIN)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "content-type, authorization",
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204, "{endpoint}");
        assert_eq!(r.headers()["access-control-allow-methods"], "POST, OPTIONS");
        assert_eq!(r.headers()["access-control-allow-origin"], DASHBOARD_ORIGIN);

        // Errors, too, carry CORS for a trusted origin; no origin check applies
        // (no cookie credential), so a foreign origin gets an ordinary answer
        // without CORS headers.
        let r = plain_client()
            .post(url(&server, endpoint))
            .header("origin", DASHBOARD_ORIGIN)
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_ne!(r.status(), 403, "{endpoint}");
        assert_eq!(r.headers()["access-control-allow-origin"], DASHBOARD_ORIGIN);
        assert_eq!(r.headers()["access-control-allow-credentials"], "true");
        let r = plain_client()
            .post(url(&server, endpoint))
            .header("origin", "https://evil.example")
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_ne!(r.status(), 403, "{endpoint}");
        assert!(r.headers().get("access-control-allow-origin").is_none());

        // Wrong method: 405 JSON.
        let r = plain_client()
            .get(url(&server, endpoint))
            .send()
            .await
            .unwrap();
        expect_error(r, 405, "method_not_allowed").await;
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mailed_tokens_of_a_deleted_user_are_refused_and_change_nothing() {
    let smtp = SmtpServer::start().await;
    let server = start(&smtp, |c| {
        c.email.per_address_interval = ConfigDuration::from_millis(1);
    })
    .await;
    let user_id = create_dashboard_user(&server, "gone@example.com").await;
    server
        .engine()
        .send_verification_email(&user_id, &|t| format!("http://localhost:3000/v?token={t}"))
        .await
        .unwrap();
    let verify = smtp.wait_for_mail("gone@example.com", MAIL_WAIT).await;
    let r = post(
        &server,
        "forgot-password",
        json!({"email": "gone@example.com"}),
    )
    .await;
    assert_eq!(r.status(), 202);
    let reset = smtp.wait_for_mails("gone@example.com", 2, MAIL_WAIT).await;
    server.engine().delete_user(&user_id).await.unwrap();

    let r = post(&server, "verify-email", json!({"token": verify.token()})).await;
    expect_error(r, 400, "invalid_token").await;
    let r = post(
        &server,
        "reset-password",
        json!({"token": reset.token(), "password": NEW_PASSWORD}),
    )
    .await;
    expect_error(r, 400, "invalid_token").await;
    assert_eq!(server.engine().user_count().await.unwrap(), 0);
    assert_eq!(
        server
            .engine()
            .user_id_by_email("gone@example.com")
            .await
            .unwrap(),
        None
    );
}
