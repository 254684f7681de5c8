//! Metric labels come from the route tables and fixed sets, so thousands of
//! requests with invented paths and methods add no series. Alone in its test
//! binary: the metrics recorder is per process, and no other test may add
//! series while this one counts them.

mod support;

use futures::StreamExt;
use support::metrics::{label_values, metrics_text, request_series};
use support::{plain_client, TestServer};

/// One request of each shape an attacker can vary: `i` makes its text unique.
fn varied_request(
    client: &reqwest::Client,
    server: &TestServer,
    i: usize,
) -> reqwest::RequestBuilder {
    let part = format!("zz{i:x}");
    let invented = reqwest::Method::from_bytes(format!("ZZ{i}").as_bytes()).unwrap();
    match i % 6 {
        0 => client.get(server.url(&format!("/api/auth/callback/{part}"))),
        1 => client.delete(server.url(&format!("/api/v1/auth/sessions/{part}"))),
        2 => client.get(server.url(&format!("/api/v1/admin/users/{part}"))),
        3 => client.request(invented, server.url("/api/auth/get-session")),
        4 => client.get(server.url(&format!("/{part}/nowhere"))),
        _ => client.put(server.url(&format!("/api/v1/admin/users/{part}/roles"))),
    }
}

async fn send_varied(server: &TestServer, range: std::ops::Range<usize>) {
    let client = plain_client();
    futures::stream::iter(range)
        .for_each_concurrent(32, |i| {
            let request = varied_request(&client, server, i);
            async move {
                let response = request.send().await.unwrap();
                assert!(response.status().as_u16() < 500, "{}", response.status());
            }
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invented_paths_and_methods_add_no_metric_series() {
    let mut server = TestServer::start().await;
    // Every shape once (and /metrics itself), so the series they map to exist.
    send_varied(&server, 0..60).await;
    metrics_text(&server).await;
    let before = request_series(&metrics_text(&server).await);

    send_varied(&server, 60..5_060).await;
    let after = request_series(&metrics_text(&server).await);

    assert_eq!(
        after.difference(&before).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "5,000 requests with invented text made new series"
    );
    assert!(
        after.iter().all(|s| !s.contains("zz") && !s.contains("ZZ")),
        "caller text reached a label"
    );
    let routes = label_values(&after, "route");
    assert!(
        routes.contains("/api/auth/callback/{provider}"),
        "{routes:?}"
    );
    assert!(routes.contains("/api/v1/auth/sessions/{id}"), "{routes:?}");
    assert!(routes.contains("/api/v1/admin/users/{id}"), "{routes:?}");
    assert!(routes.contains("unmatched"), "{routes:?}");
    assert!(label_values(&after, "method").contains("other"));
    server.stop().await;
}
