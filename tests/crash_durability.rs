//! Every acknowledged change survives the process being killed: a real server
//! process takes registrations, logins, refresh rotations and logouts, is sent
//! SIGKILL with no chance to flush, and a new process on the same data
//! directory (and, under `TACHIGO_TEST_STORE=postgres`, the same database)
//! finds every acknowledged change.

mod support;

use std::collections::HashMap;

use serde_json::{json, Value};
use support::client_for;
use support::process::ServerChild;

/// Sign-up on, and client addresses taken from `X-Forwarded-For`, so each simulated
/// user counts as its own client for the per-address login limits.
const SERVER_ENV: &[(&str, &str)] = &[
    ("TACHIGO__DASHBOARD__ALLOW_SIGNUP", "true"),
    ("TACHIGO__SERVER__TRUST_PROXY", "true"),
];

async fn post(client: &reqwest::Client, url: String, body: Value) -> reqwest::Response {
    client.post(url).json(&body).send().await.unwrap()
}

/// The refresh token a login set as a cookie.
fn refresh_cookie(response: &reqwest::Response) -> String {
    support::set_cookies(response, "tachigo_refresh")
        .first()
        .and_then(|c| c.strip_prefix("tachigo_refresh="))
        .and_then(|c| c.split(';').next())
        .expect("a refresh cookie")
        .to_string()
}

/// Rotates a refresh token through the body fallback and returns its successor.
async fn rotate(client: &reqwest::Client, base: &str, token: &str) -> String {
    let r = post(
        client,
        format!("{base}/api/v1/auth/refresh"),
        json!({"refresh_token": token}),
    )
    .await;
    assert_eq!(r.status(), 200, "rotation acknowledged");
    let body: Value = r.json().await.unwrap();
    body["refresh_token"]
        .as_str()
        .expect("a body-token caller gets the successor")
        .to_string()
}

/// Registers and logs in user `i`, rotates its token a few times and, for every
/// third user, logs a second session out. Returns what was acknowledged.
async fn acknowledged_changes(base: String, i: usize) -> (String, String, String, Option<String>) {
    let client = client_for(i);
    let email = format!("user{i}@crash.test");
    let password = format!("correct horse {i} battery");
    let credentials = json!({"email": email, "password": password});
    let r = post(
        &client,
        format!("{base}/api/v1/auth/register"),
        credentials.clone(),
    )
    .await;
    assert_eq!(r.status(), 201);
    let r = post(
        &client,
        format!("{base}/api/v1/auth/login"),
        credentials.clone(),
    )
    .await;
    assert_eq!(r.status(), 200);
    let mut token = refresh_cookie(&r);
    for _ in 0..(i % 4 + 1) {
        token = rotate(&client, &base, &token).await;
    }
    let logged_out = if i % 3 == 0 {
        let r = post(&client, format!("{base}/api/v1/auth/login"), credentials).await;
        let second = refresh_cookie(&r);
        let r = post(
            &client,
            format!("{base}/api/v1/auth/logout"),
            json!({"refresh_token": second}),
        )
        .await;
        assert_eq!(r.status(), 204);
        Some(second)
    } else {
        None
    };
    (email, password, token, logged_out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_sigkill() {
    let dir = tempfile::TempDir::new().unwrap();
    let data = dir.path().join("data");
    // Both processes run on the suite's store: the same database on PostgreSQL.
    let store_env = support::test_store_env().await;
    let env: Vec<(&str, &str)> = SERVER_ENV
        .iter()
        .copied()
        .chain(store_env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .collect();
    let server = ServerChild::spawn(&data, &env).await;

    let tasks: Vec<_> = (0..24)
        .map(|i| tokio::spawn(acknowledged_changes(server.base.clone(), i)))
        .collect();
    let mut acknowledged = HashMap::new();
    for (i, t) in tasks.into_iter().enumerate() {
        let (email, password, token, logged_out) = t.await.unwrap();
        acknowledged.insert(email, (i, password, token, logged_out));
    }

    server.kill_hard();
    let server = ServerChild::spawn(&data, &env).await;

    for (email, (i, password, token, logged_out)) in &acknowledged {
        let client = client_for(*i);
        let r = post(
            &client,
            server.url("/api/v1/auth/login"),
            json!({"email": email, "password": password}),
        )
        .await;
        assert_eq!(r.status(), 200, "{email} exists after the crash");
        // The last acknowledged refresh token is the family's current one: it rotates.
        let r = post(
            &client,
            server.url("/api/v1/auth/refresh"),
            json!({"refresh_token": token}),
        )
        .await;
        assert_eq!(
            r.status(),
            200,
            "{email}'s last acknowledged rotation survived"
        );
        if let Some(revoked) = logged_out {
            let r = post(
                &client,
                server.url("/api/v1/auth/refresh"),
                json!({"refresh_token": revoked}),
            )
            .await;
            assert_eq!(r.status(), 401, "{email}'s acknowledged logout survived");
        }
    }
    // A duplicate registration is still refused: the email index survived too.
    let (email, (i, password, _, _)) = acknowledged.iter().next().unwrap();
    let r = post(
        &client_for(*i),
        server.url("/api/v1/auth/register"),
        json!({"email": email, "password": password}),
    )
    .await;
    assert_eq!(r.status(), 409);
    assert_eq!(
        server.terminate().code(),
        Some(0),
        "SIGTERM exits 0 after a graceful drain"
    );
}
