//! The queue in front of password hashing is bounded: a flood of logins from
//! many addresses gets 503 with `Retry-After` past `limits.password_queue`
//! waiting checks, instead of lengthening everyone's wait; a real user logs in
//! as soon as the flood is answered.

mod support;

use futures::StreamExt;
use support::metrics::metrics_text;
use support::{create_dashboard_user, dashboard_login, error_code, plain_client, TestServer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_flood_past_the_queue_bound_is_refused_at_once_with_retry_after() {
    let mut server = TestServer::start_with(|c| {
        c.server.trust_proxy = true;
        c.limits.password_queue = 2;
    })
    .await;
    create_dashboard_user(&server, "real@example.com").await;
    let client = plain_client();
    // 120 wrong passwords at once, each from its own address and account, so
    // the per-IP and per-account limits never apply: only the queue bound can.
    let outcomes: Vec<(u16, Option<String>, String)> = futures::stream::iter(0..120)
        .map(|i| {
            let request = client
                .post(server.url("/api/v1/auth/login"))
                .header(
                    "x-forwarded-for",
                    format!("10.1.{}.{}", i / 200, i % 200 + 1),
                )
                .json(&serde_json::json!({
                    "email": format!("nobody{i}@example.com"),
                    "password": "not the right password",
                }));
            async move {
                let r = request.send().await.unwrap();
                let status = r.status().as_u16();
                let retry = r
                    .headers()
                    .get("retry-after")
                    .map(|v| v.to_str().unwrap().to_string());
                (status, retry, error_code(r).await)
            }
        })
        .buffer_unordered(120)
        .collect()
        .await;
    let refused: Vec<_> = outcomes.iter().filter(|(s, _, _)| *s == 503).collect();
    assert!(
        outcomes.iter().all(|(s, _, _)| *s == 401 || *s == 503),
        "{outcomes:?}"
    );
    assert!(!refused.is_empty(), "the queue bound never applied");
    for (_, retry, code) in &refused {
        assert_eq!(retry.as_deref(), Some("1"));
        assert_eq!(code, "unavailable");
    }
    // Two hashing slots (or as many as cores) plus two waiting: most were refused.
    let checked = outcomes.iter().filter(|(s, _, _)| *s == 401).count();
    assert!(checked < 60, "{checked} checks ran out of 120");

    assert!(metrics_text(&server)
        .await
        .contains("tachigo_password_checks_refused_total"));

    let real = dashboard_login(&server, &client, "real@example.com").await;
    assert_eq!(real.status(), 200);
    server.stop().await;
}
