//! `tachigo-auth store copy` and `check` against a real PostgreSQL server: a
//! single-node (sled) deployment moves into PostgreSQL with nothing lost. A
//! refresh cookie, an access token and a web session issued before the copy
//! work after it, a refresh token retired before the copy is still detected as
//! reuse, a non-empty target is refused with nothing written, and the URL's
//! password never shows in what the commands print.

mod support;

use std::process::{Command, Output, Stdio};

use serde_json::Value;
use support::process::binary;
use support::*;
use tachigo_engine::config::StorageBackend;
use tachigo_engine::{NewSession, Surface};

fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(binary())
        .args(args)
        .envs(env.iter().copied())
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .expect("running the binary")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

async fn me(server: &TestServer, access: &str) -> reqwest::Response {
    plain_client()
        .get(server.url("/api/v1/auth/me"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap()
}

async fn web_session(server: &TestServer, token: &str) -> reqwest::Response {
    plain_client()
        .get(server.url("/api/auth/get-session"))
        .header("cookie", format!("tachigo.session_token={token}"))
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sled_deployment_moves_into_postgres_with_nothing_lost() {
    // The single node, on sled whatever store the suite runs on.
    let mut sled_server =
        TestServer::start_with(|c| c.storage.backend = StorageBackend::Sled).await;
    assert_eq!(sled_server.engine().storage_backend(), "sled");
    let user_id = create_dashboard_user(&sled_server, "mover@example.com").await;
    let login = dashboard_login(&sled_server, &plain_client(), "mover@example.com").await;
    assert_eq!(login.status(), 200);
    let first = refresh_cookie_value(&login);
    let access: String = login.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let rotated = dashboard_refresh_with(&sled_server, &first).await;
    assert_eq!(rotated.status(), 200);
    let second = refresh_cookie_value(&rotated);
    let rotated = dashboard_refresh_with(&sled_server, &second).await;
    assert_eq!(rotated.status(), 200);
    let current = refresh_cookie_value(&rotated);
    let web = sled_server
        .engine()
        .create_session(
            &user_id,
            NewSession {
                surface: Surface::Web,
                user_agent: Some("browser".into()),
                ip: None,
                context: None,
            },
        )
        .await
        .unwrap();
    let web_token = web.token.clone().unwrap();
    let audit_before = sled_server
        .engine()
        .recent_audit_events(1000)
        .await
        .unwrap();
    let sessions_before = sled_server
        .engine()
        .stored_sessions(&user_id)
        .await
        .unwrap();
    sled_server.stop().await;

    let postgres = tachigo_testkit::postgres();
    let url = postgres.fresh_database().await;
    let data_dir = sled_server.dir.path().to_str().unwrap().to_string();
    let copied = run(
        &["store", "copy", "--from-data", &data_dir],
        &[("TACHIGO_COPY_POSTGRES_URL", &url)],
    );
    assert!(copied.status.success(), "copy failed: {}", text(&copied));
    let said = text(&copied);
    assert!(
        said.contains("copied 1 users, 2 sessions, 1 refresh families, 2 retired refresh tokens"),
        "{said}"
    );

    // The same deployment, now on PostgreSQL (same public URL: same issuer).
    let mut config = sled_server.config.clone();
    config.storage.backend = StorageBackend::Postgres;
    config.storage.postgres.url = Some(url.clone());
    let pg_server = TestServer::start_with(|c| *c = config).await;
    assert_eq!(pg_server.engine().storage_backend(), "postgres");

    // Everything the sled node had, the PostgreSQL node has.
    assert_eq!(pg_server.engine().user_count().await.unwrap(), 1);
    assert_eq!(
        pg_server.engine().stored_sessions(&user_id).await.unwrap(),
        sessions_before
    );
    assert_eq!(
        pg_server.engine().recent_audit_events(1000).await.unwrap(),
        audit_before
    );
    // An access token signed before the copy verifies (same keys, same session).
    assert_eq!(me(&pg_server, &access).await.status(), 200);
    // The web session cookie still signs the browser in.
    let read = web_session(&pg_server, &web_token).await;
    assert_eq!(read.status(), 200);
    assert_eq!(
        read.json::<Value>().await.unwrap()["user"]["id"],
        user_id.as_str()
    );
    // The current refresh cookie rotates.
    let after = dashboard_refresh_with(&pg_server, &current).await;
    assert_eq!(after.status(), 200);
    let newest = refresh_cookie_value(&after);
    // A token retired before the copy is reuse: the family is revoked.
    let replayed = dashboard_refresh_with(&pg_server, &first).await;
    assert_eq!(replayed.status(), 401);
    assert_eq!(error_code(replayed).await, "refresh_token_reused");
    let revoked = dashboard_refresh_with(&pg_server, &newest).await;
    assert_eq!(revoked.status(), 401);

    // A second copy into the now non-empty database is refused, nothing written.
    let users = pg_server.engine().user_count().await.unwrap();
    let events = pg_server
        .engine()
        .recent_audit_events(1000)
        .await
        .unwrap()
        .len();
    let again = run(
        &["store", "copy", "--from-data", &data_dir],
        &[("TACHIGO_COPY_POSTGRES_URL", &url)],
    );
    assert!(!again.status.success());
    assert!(text(&again).contains("not empty"), "{}", text(&again));
    assert_eq!(pg_server.engine().user_count().await.unwrap(), users);
    assert_eq!(
        pg_server
            .engine()
            .recent_audit_events(1000)
            .await
            .unwrap()
            .len(),
        events
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_and_check_refuse_clearly_and_never_print_the_password() {
    let postgres = tachigo_testkit::postgres();
    // No database in the directory.
    let empty = tempfile::TempDir::new().unwrap();
    let url = postgres.fresh_database().await;
    let refused = run(
        &[
            "store",
            "copy",
            "--from-data",
            empty.path().to_str().unwrap(),
        ],
        &[("TACHIGO_COPY_POSTGRES_URL", &url)],
    );
    assert!(!refused.status.success());
    assert!(text(&refused).contains("no database"), "{}", text(&refused));

    // A server that does not answer: the error says so, never the password.
    let closed_port = free_port();
    let wrong =
        format!("postgres://tachigo:wrong-pass-never-shown@127.0.0.1:{closed_port}/tachigo");
    let mut server = TestServer::start_with(|c| c.storage.backend = StorageBackend::Sled).await;
    server.stop().await;
    let data_dir = server.dir.path().to_str().unwrap().to_string();
    let denied = run(
        &["store", "copy", "--from-data", &data_dir],
        &[("TACHIGO_COPY_POSTGRES_URL", &wrong)],
    );
    assert!(!denied.status.success());
    let said = text(&denied);
    assert!(!said.contains("wrong-pass-never-shown"), "{said}");
    assert!(said.contains("unavailable"), "{said}");

    // `check` on PostgreSQL: reachable, schema created at first start; an
    // unreachable server is an error that does not show the password.
    let fresh = postgres.fresh_database().await;
    let checked = run(
        &["check"],
        &[
            ("TACHIGO__STORAGE__BACKEND", "postgres"),
            ("TACHIGO__STORAGE__POSTGRES__URL", &fresh),
        ],
    );
    assert!(checked.status.success(), "{}", text(&checked));
    assert!(text(&checked).contains("reachable"), "{}", text(&checked));
    let checked = run(
        &["check"],
        &[
            ("TACHIGO__STORAGE__BACKEND", "postgres"),
            ("TACHIGO__STORAGE__POSTGRES__URL", &wrong),
        ],
    );
    assert!(!checked.status.success());
    assert!(
        !text(&checked).contains("wrong-pass-never-shown"),
        "{}",
        text(&checked)
    );
}
