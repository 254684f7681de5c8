//! What the server does while its PostgreSQL database is unreachable: requests
//! that need it fail with 503 `unavailable` and change nothing, `/readyz`
//! turns 503, a refresh token whose reuse check cannot read the database is
//! refused (never let through), and once the database answers again readiness
//! comes back by itself and every rule holds as before.

mod support;

use std::time::{Duration, Instant};

use support::*;
use tachigo_engine::config::StorageBackend;

/// Superuser statements on the test server.
async fn admin(sql: &str) {
    let (client, connection) = tokio_postgres::connect(
        &tachigo_testkit::postgres().admin_url(),
        tokio_postgres::NoTls,
    )
    .await
    .expect("connecting as the superuser");
    let driver = tokio::spawn(connection);
    client.batch_execute(sql).await.expect(sql);
    drop(client);
    let _ = driver.await;
}

fn database_name(url: &str) -> String {
    url.rsplit('/')
        .next()
        .unwrap()
        .split('?')
        .next()
        .unwrap()
        .to_string()
}

/// Refuses new connections to the database and ends the open ones.
async fn cut(database: &str) {
    admin(&format!(
        "ALTER DATABASE {database} ALLOW_CONNECTIONS false;
         SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{database}';"
    ))
    .await;
}

async fn restore(database: &str) {
    admin(&format!(
        "ALTER DATABASE {database} ALLOW_CONNECTIONS true;"
    ))
    .await;
}

async fn readyz(server: &TestServer) -> u16 {
    plain_client()
        .get(server.url("/readyz"))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_database_fails_requests_with_503_and_weakens_nothing() {
    let url = tachigo_testkit::postgres().fresh_database().await;
    let database = database_name(&url);
    let server = TestServer::start_with(|c| {
        c.storage.backend = StorageBackend::Postgres;
        c.storage.postgres.url = Some(url.clone());
        c.storage.postgres.connect_timeout = tachigo_engine::config::ConfigDuration::from_secs(1);
        c.dashboard.allow_signup = true;
    })
    .await;
    assert_eq!(server.engine().storage_backend(), "postgres");
    let user_id = create_dashboard_user(&server, "outage@example.com").await;
    let login = dashboard_login(&server, &plain_client(), "outage@example.com").await;
    assert_eq!(login.status(), 200);
    let oldest = refresh_cookie_value(&login);
    let middle = refresh_cookie_value(&dashboard_refresh_with(&server, &oldest).await);
    let current = refresh_cookie_value(&dashboard_refresh_with(&server, &middle).await);
    let session_id = current.split('.').next().unwrap().to_string();
    let family = server
        .engine()
        .stored_refresh_family(&session_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(family.generation, 2);
    assert_eq!(readyz(&server).await, 200);

    cut(&database).await;
    // The current token cannot be rotated durably: 503, and it stays current.
    let refused = dashboard_refresh_with(&server, &current).await;
    assert_eq!(refused.status(), 503);
    assert!(refused.headers().get("retry-after").is_some());
    assert_eq!(error_code(refused).await, "unavailable");
    // A token retired two rotations ago needs the retired-token lookup: with
    // the database gone that is a 503, never "unknown token" (401) and never
    // a pass around reuse detection.
    let refused = dashboard_refresh_with(&server, &oldest).await;
    assert_eq!(refused.status(), 503);
    assert_eq!(error_code(refused).await, "unavailable");
    // Creating a user needs the database too.
    let refused = plain_client()
        .post(server.url("/api/v1/auth/register"))
        .header("origin", DASHBOARD_ORIGIN)
        .json(&serde_json::json!({"email": "new@example.com", "password": DASHBOARD_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 503);
    assert_eq!(error_code(refused).await, "unavailable");
    assert_eq!(readyz(&server).await, 503, "readiness follows the store");

    restore(&database).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while readyz(&server).await != 200 {
        assert!(
            Instant::now() < deadline,
            "readiness did not come back within 20 s of the database"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Nothing changed while the database was gone.
    let family_after = server
        .engine()
        .stored_refresh_family(&session_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(family_after, family);
    assert_eq!(server.engine().user_count().await.unwrap(), 1);
    // The current token still rotates, and the oldest one is reuse.
    let rotated = dashboard_refresh_with(&server, &current).await;
    assert_eq!(rotated.status(), 200);
    let replayed = dashboard_refresh_with(&server, &oldest).await;
    assert_eq!(replayed.status(), 401);
    assert_eq!(error_code(replayed).await, "refresh_token_reused");
    assert_eq!(
        server
            .engine()
            .stored_refresh_family(&session_id)
            .await
            .unwrap()
            .unwrap()
            .revoked,
        Some(tachigo_engine::Revocation::Reuse)
    );
    assert!(server
        .engine()
        .stored_sessions(&user_id)
        .await
        .unwrap()
        .is_empty());
}
