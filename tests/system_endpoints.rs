//! The endpoints every listener serves: health, readiness, metrics, JWKS, and the
//! shared behaviour of every response (request id, no-store, JSON 404).

mod support;

use support::{plain_client, TestServer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_readiness_metrics_and_jwks_answer() {
    let mut server = TestServer::start().await;
    let client = plain_client();

    let r = client.get(server.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store");
    assert!(r.headers().contains_key("x-request-id"));

    let r = client.get(server.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 200);

    let jwks: serde_json::Value = client
        .get(server.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = &jwks["keys"][0];
    assert_eq!(key["kty"], "OKP");
    assert_eq!(key["crv"], "Ed25519");
    assert_eq!(key["alg"], "EdDSA");
    assert_eq!(key["kid"], server.engine().keys().active_kid());

    let metrics = client
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("tachigo_http_requests_total"), "{metrics}");

    // The signing key is kept in the data directory: the same kid after a restart.
    let kid = server.engine().keys().active_kid();
    server.restart().await;
    assert_eq!(server.engine().keys().active_kid(), kid);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_routes_get_json_404_and_request_ids_are_echoed_when_sane() {
    let mut server = TestServer::start().await;
    let client = plain_client();
    let r = client
        .get(server.url("/nowhere"))
        .header("x-request-id", "trace-123")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.headers()["x-request-id"], "trace-123");
    assert_eq!(r.headers()["content-type"], "application/json");
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_found");

    let r = client
        .get(server.url("/healthz"))
        .header("x-request-id", "bad id with spaces")
        .send()
        .await
        .unwrap();
    let echoed = r.headers()["x-request-id"].to_str().unwrap().to_string();
    assert_ne!(echoed, "bad id with spaces");
    assert_eq!(echoed.len(), 32);

    let r = client.post(server.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 405);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "method_not_allowed");
    server.stop().await;
}

/// A client that never finishes its request cannot hold the server or its
/// database: shutdown closes the connection after the drain limit, and the
/// same data directory opens again at once (a restart in the same process).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_connection_is_closed_at_shutdown_and_releases_the_database() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let mut server = TestServer::start().await;
    let addr = server.running().addrs.main;
    let mut stalled = tokio::net::TcpStream::connect(addr).await.unwrap();
    stalled
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n")
        .await
        .unwrap();
    // An idle keep-alive connection too, as a browser leaves one.
    let client = plain_client();
    let r = client.get(server.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);

    server.restart().await;

    // The server closed it before the restart returned: reading ends at once.
    let mut rest = Vec::new();
    let ended = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        stalled.read_to_end(&mut rest),
    )
    .await;
    assert!(ended.is_ok(), "the stalled connection is still open");
    assert!(
        !String::from_utf8_lossy(&rest).contains("200 OK"),
        "the unfinished request was never answered: {rest:?}"
    );
    let r = client.get(server.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200, "the restarted server answers");
    server.stop().await;
}

/// Readiness is the engine's own state (not stopping, storage taking durable
/// writes), kept in memory: it never scans storage, so its cost does not grow
/// with the number of users (`bench/`: `readyz` at 1 and 30,000 users).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_follows_the_engine_state() {
    let mut server = TestServer::start().await;
    let client = plain_client();
    let r = client.get(server.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), r#"{"status":"ready"}"#);

    server.engine().shutdown().await.unwrap();
    let r = client.get(server.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(r.text().await.unwrap(), r#"{"status":"not_ready"}"#);
    server.stop().await;
}
