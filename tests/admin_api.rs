//! The operators' API over HTTP: only a live admin session gets in; finding users,
//! setting roles, listing and revoking sessions change exactly what they say, and
//! a revoked session's access tokens stop working at once.

mod support;

use serde_json::{json, Value};
use support::{plain_client, signed_in, TestServer};
use tachigo_engine::access_token::AUDIENCE_DASHBOARD;
use tachigo_engine::RevokeScope;

async fn error_code(r: reqwest::Response) -> String {
    let body: Value = r.json().await.unwrap();
    body["error"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_a_live_admin_session_gets_in() {
    let mut server = TestServer::start().await;
    let client = plain_client();
    let (_, _, member) = signed_in(&server, "member@example.com", &[]).await;
    let (admin_id, admin_session, admin) =
        signed_in(&server, "admin@example.com", &["admin"]).await;
    let url = server.url("/api/v1/admin/users");

    let r = client.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(error_code(r).await, "invalid_access_token");
    let r = client.get(&url).bearer_auth(&member).send().await.unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(error_code(r).await, "forbidden");
    let mut forged = admin.clone();
    forged.pop();
    forged.push(if admin.ends_with('A') { 'B' } else { 'A' });
    let r = client.get(&url).bearer_auth(&forged).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = client.get(&url).bearer_auth(&admin).send().await.unwrap();
    assert_eq!(r.status(), 200);

    server
        .engine()
        .revoke_sessions(&admin_id, RevokeScope::One(admin_session))
        .await
        .unwrap();
    let r = client.get(&url).bearer_auth(&admin).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(error_code(r).await, "session_revoked");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_find_users_and_set_roles() {
    let mut server = TestServer::start().await;
    let client = plain_client();
    let (_, _, admin) = signed_in(&server, "root@example.com", &["admin"]).await;
    let (alice, _, _) = signed_in(&server, "alice@example.com", &[]).await;
    signed_in(&server, "alfred@example.com", &[]).await;

    let found: Value = client
        .get(server.url("/api/v1/admin/users?email=al"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let emails: Vec<&str> = found["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["email"].as_str().unwrap())
        .collect();
    assert_eq!(emails, ["alfred@example.com", "alice@example.com"]);
    assert!(found["users"][0].get("password_hash").is_none());

    let r = client
        .get(server.url(&format!("/api/v1/admin/users/{alice}")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["user"]["email"], "alice@example.com");
    for missing in ["6f1c8e1e-2f7e-4c0a-9a47-3d2b1c0e9f00", "not-an-id"] {
        let r = client
            .get(server.url(&format!("/api/v1/admin/users/{missing}")))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404);
        assert_eq!(error_code(r).await, "user_not_found");
    }

    let roles_url = server.url(&format!("/api/v1/admin/users/{alice}/roles"));
    let r = client
        .put(&roles_url)
        .bearer_auth(&admin)
        .json(&json!({"roles": ["support", "beta"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        server.engine().user(&alice).await.unwrap().roles,
        ["beta", "support"]
    );

    // Bad input is refused and changes nothing.
    let r = client
        .put(&roles_url)
        .bearer_auth(&admin)
        .json(&json!({"roles": ["Not A Role"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(error_code(r).await, "invalid_role");
    let r = client
        .put(&roles_url)
        .bearer_auth(&admin)
        .json(&json!({"roles": "admin"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(error_code(r).await, "invalid_body");
    let r = client
        .put(&roles_url)
        .bearer_auth(&admin)
        .header("content-type", "text/plain")
        .body("roles=admin")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
    let r = client
        .put(&roles_url)
        .bearer_auth(&admin)
        .header("content-type", "application/json")
        .body(vec![b' '; 20_000])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    assert_eq!(
        server.engine().user(&alice).await.unwrap().roles,
        ["beta", "support"]
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_list_and_revoke_sessions() {
    let mut server = TestServer::start().await;
    let client = plain_client();
    let (_, _, admin) = signed_in(&server, "root@example.com", &["admin"]).await;
    let (bob, bob_session, bob_token) = signed_in(&server, "bob@example.com", &[]).await;
    let sessions_url = server.url(&format!("/api/v1/admin/users/{bob}/sessions"));

    let listed: Value = client
        .get(&sessions_url)
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["sessions"][0]["id"], bob_session.as_str());
    assert_eq!(listed["sessions"][0]["surface"], "dashboard");

    let r = client
        .delete(format!(
            "{sessions_url}/6f1c8e1e-2f7e-4c0a-9a47-3d2b1c0e9f00"
        ))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(error_code(r).await, "session_not_found");

    let r = client
        .delete(format!("{sessions_url}/{bob_session}"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    // Bob's access token stops working at once.
    let r = client
        .get(server.url("/api/v1/auth/me"))
        .bearer_auth(&bob_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(error_code(r).await, "session_revoked");
    assert!(server
        .engine()
        .list_sessions(&bob)
        .await
        .unwrap()
        .is_empty());

    let r = client
        .delete(&sessions_url)
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["revoked"], 0);
    let audit = server.engine().recent_audit_events(10).await.unwrap();
    assert!(audit
        .iter()
        .any(|e| e.kind == "admin_revoked_sessions" && e.user_id.as_deref() == Some(&bob)));
    server.stop().await;
}

/// A token with a genuine signature whose user does not exist (a user removed
/// from storage, or a token minted by a key shared elsewhere) is a dead
/// session on every bearer route, never a server error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_token_for_a_user_that_does_not_exist_is_refused_not_an_error() {
    let mut server = TestServer::start().await;
    let (token, _) = server.engine().mint_access_token(
        "0b9d7c6a-1f2e-4d3c-8b7a-6f5e4d3c2b1a",
        Some("3f2c9a4e-0000-4000-8000-000000000000"),
        AUDIENCE_DASHBOARD,
        &["admin".to_string()],
        Default::default(),
    );
    for path in ["/api/v1/admin/users?email=a", "/api/v1/auth/me"] {
        let r = plain_client()
            .get(server.url(path))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{path}");
        assert_eq!(error_code(r).await, "session_revoked", "{path}");
    }
    server.stop().await;
}
