//! Log volume is not the caller's to choose: a flood of failed callbacks, bad
//! logins and body-token refreshes writes a handful of lines at INFO (the
//! counters in `/metrics` are the record), measured on the real binary's log.

mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use futures::StreamExt;
use support::plain_client;
use support::process::binary;

/// The real binary at RUST_LOG=info with its log in a file: (process, base URL, log path).
async fn logging_server(
    dir: &tempfile::TempDir,
    extra_args: &[&str],
) -> (std::process::Child, String, std::path::PathBuf) {
    let data = dir.path().join("data");
    let log_path = dir.path().join("server.log");
    let addr_file = dir.path().join("addr");
    let store_env = support::test_store_env().await;
    let child = Command::new(binary())
        .args(extra_args)
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(&data)
        .arg("--addr-file")
        .arg(&addr_file)
        .envs(store_env.iter().map(|(k, v)| (k, v)))
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let base = loop {
        if let Ok(a) = std::fs::read_to_string(&addr_file) {
            if !a.is_empty() {
                break format!("http://{a}");
            }
        }
        assert!(Instant::now() < deadline, "the server did not start");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    (child, base, log_path)
}

fn stop(mut child: std::process::Child) {
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    assert!(child.wait().unwrap().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_client_errors_writes_a_bounded_log() {
    let dir = tempfile::TempDir::new().unwrap();
    let (child, base, log_path) = logging_server(&dir, &[]).await;
    let lines_at_start = std::fs::read_to_string(&log_path).unwrap().lines().count();

    let client = plain_client();
    let base = &base;
    let client = &client;
    futures::stream::iter(0..900)
        .for_each_concurrent(16, |i| async move {
            let r = match i % 3 {
                0 => client
                    .get(format!("{base}/api/auth/callback/local?state=forged{i}&code=x"))
                    .send()
                    .await
                    .unwrap(),
                1 => client
                    .post(format!("{base}/api/v1/auth/login"))
                    .json(&serde_json::json!({"email": format!("x{i}@example.com"), "password": "wrong password!"}))
                    .send()
                    .await
                    .unwrap(),
                _ => client
                    .post(format!("{base}/api/v1/auth/refresh"))
                    .json(&serde_json::json!({"refresh_token": format!("forged{i}.token")}))
                    .send()
                    .await
                    .unwrap(),
            };
            assert!(r.status().is_redirection() || r.status().is_client_error());
        })
        .await;
    stop(child);

    let log = std::fs::read_to_string(&log_path).unwrap();
    let flood_lines = log.lines().count() - lines_at_start;
    // Start-up aside: at most a sampled line or two per kind, and the shutdown.
    assert!(
        flood_lines <= 12,
        "{flood_lines} lines for 900 client errors:\n{log}"
    );
    assert!(
        log.lines().filter(|l| l.contains("callback")).count() <= 2,
        "{log}"
    );
}

/// A line a request logs (the body fallback is logged at INFO) names that
/// request: its id (the caller's, when sane), method, route and contract, in
/// text and in JSON; lines outside any request carry no request id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_line_a_request_logs_names_the_request() {
    for json in [false, true] {
        let dir = tempfile::TempDir::new().unwrap();
        let args: &[&str] = if json { &["--log-format", "json"] } else { &[] };
        let (child, base, log_path) = logging_server(&dir, args).await;
        let r = plain_client()
            .post(format!("{base}/api/v1/auth/refresh"))
            .header("x-request-id", "trace-me-0042")
            .json(&serde_json::json!({"refresh_token": "forged.token"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
        assert_eq!(r.headers()["x-request-id"], "trace-me-0042");
        stop(child);

        let log = std::fs::read_to_string(&log_path).unwrap();
        let line = log
            .lines()
            .find(|l| l.contains("transition fallback"))
            .unwrap_or_else(|| panic!("no body-fallback line:\n{log}"));
        if json {
            let value: serde_json::Value = serde_json::from_str(line).unwrap();
            assert_eq!(value["request_id"], "trace-me-0042", "{line}");
            assert_eq!(value["method"], "POST", "{line}");
            assert_eq!(value["route"], "/api/v1/auth/refresh", "{line}");
            assert_eq!(value["contract"], "dashboard", "{line}");
            assert_eq!(value["level"], "INFO", "{line}");
        } else {
            assert!(
                line.contains("request{request_id=trace-me-0042 method=POST route=/api/v1/auth/refresh contract=dashboard}: "),
                "{line}"
            );
        }
        let serving = log
            .lines()
            .find(|l| l.contains("is serving"))
            .expect("the start-up line");
        assert!(!serving.contains("request_id"), "{serving}");
    }
}
