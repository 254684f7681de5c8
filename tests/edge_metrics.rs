//! The edge against caller-chosen text: every route table row is really
//! served and labelled by its template (`edge_metric_series.rs` shows that
//! invented paths and methods add no series); a CORS preflight allows exactly the methods a path serves; JSON
//! bodies with invalid UTF-8 or absurd nesting are refused even inside fields
//! nobody reads.

mod support;

use std::collections::BTreeSet;

use support::metrics::{label_values, metrics_text, request_series};
use support::{error_code, plain_client, TestServer, FRONTEND};
use tachigo_frontends::common::route_table::RouteTable;

/// Every row of every route table: served (not the unknown-route 404 nor a
/// 405), and labelled by its template in `/metrics`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_table_row_is_served_and_labelled_by_its_template() {
    let mut server = TestServer::start().await;
    let client = plain_client();
    let tables = [
        tachigo_frontends::dashboard::route_table(),
        tachigo_frontends::extension::route_table(),
        tachigo_frontends::oauth::route_table(),
        tachigo_frontends::oauth2::route_table(),
        tachigo_frontends::admin::route_table(),
        tachigo_frontends::system::route_table(),
    ];
    let mut templates = BTreeSet::new();
    for table in &tables {
        for (method, template) in table.rows() {
            let path = RouteTable::example_path(template, "some-id");
            let response = client
                .request(
                    reqwest::Method::from_bytes(method.as_str().as_bytes()).unwrap(),
                    server.url(&path),
                )
                .header("origin", FRONTEND)
                .header("content-type", "application/json")
                .body("{}")
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            assert_ne!(status, 405, "{method} {path}");
            if status == 404 {
                let body: serde_json::Value = response.json().await.unwrap_or_default();
                let code = body["error"]["code"]
                    .as_str()
                    .or(body["code"].as_str())
                    .unwrap_or_default()
                    .to_ascii_lowercase();
                assert_ne!(code, "not_found", "{method} {path} is not served");
            }
            templates.insert(template.to_string());
        }
    }
    let labelled = label_values(&request_series(&metrics_text(&server).await), "route");
    for template in &templates {
        assert!(labelled.contains(template), "no series for {template}");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_preflight_allows_put_on_roles() {
    let mut server = TestServer::start().await;
    let r = plain_client()
        .request(
            reqwest::Method::OPTIONS,
            server.url("/api/v1/admin/users/some-user/roles"),
        )
        .header("origin", FRONTEND)
        .header("access-control-request-method", "PUT")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(r.headers()["access-control-allow-methods"], "PUT, OPTIONS");
    assert_eq!(r.headers()["access-control-allow-origin"], FRONTEND);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_with_invalid_utf8_or_absurd_nesting_is_refused_and_changes_nothing() {
    let mut server = TestServer::start_with(|c| c.dashboard.allow_signup = true).await;
    let client = plain_client();
    let mut invalid_utf8 = br#"{"email":"a@example.com","password":"correct horse","x":""#.to_vec();
    invalid_utf8.extend_from_slice(&[0xc3, 0x28, 0xff]);
    invalid_utf8.extend_from_slice(br#""}"#);
    let deep = format!(
        r#"{{"email":"a@example.com","password":"correct horse","x":{}1{}}}"#,
        "[".repeat(3000),
        "]".repeat(3000)
    );
    for body in [invalid_utf8, deep.into_bytes()] {
        for path in ["/api/v1/auth/register", "/api/v1/auth/login"] {
            let r = client
                .post(server.url(path))
                .header("content-type", "application/json")
                .body(body.clone())
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 400, "{path}");
            assert_eq!(error_code(r).await, "invalid_body");
        }
        let r = client
            .post(server.url("/api/auth/sign-in/social"))
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
    }
    assert_eq!(server.engine().user_count().await.unwrap(), 0);
    assert_eq!(server.engine().pending_authorization_count(), 0);
    server.stop().await;
}
