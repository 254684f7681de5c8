//! The session endpoints over HTTP: listing the user's live sessions on every
//! surface, ending one, ending all others; a revoked session's access token
//! stops working on these routes at once.

mod support;

use serde_json::Value;
use support::*;
use tachigo_engine::{NewSession, Surface};

/// One signed-in device: its refresh token and access token.
struct Device {
    session_id: String,
    refresh: String,
    access: String,
}

async fn sign_in(server: &TestServer, email: &str, user_agent: &str) -> Device {
    let client = reqwest::Client::builder()
        .user_agent(user_agent)
        .no_proxy()
        .build()
        .unwrap();
    let r = dashboard_login(server, &client, email).await;
    assert_eq!(r.status(), 200);
    let refresh = refresh_cookie_value(&r);
    let body: Value = r.json().await.unwrap();
    Device {
        session_id: refresh.split('.').next().unwrap().to_string(),
        refresh,
        access: body["access_token"].as_str().unwrap().to_string(),
    }
}

async fn list(server: &TestServer, access: &str) -> reqwest::Response {
    plain_client()
        .get(server.url("/api/v1/auth/sessions"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap()
}

async fn revoke(server: &TestServer, access: &str, session_id: &str) -> reqwest::Response {
    plain_client()
        .delete(server.url(&format!("/api/v1/auth/sessions/{session_id}")))
        .bearer_auth(access)
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_lists_every_surface_and_marks_the_current_one() {
    let mut server = TestServer::start().await;
    let user_id = create_dashboard_user(&server, "many@example.com").await;
    let laptop = sign_in(&server, "many@example.com", "laptop-browser/1").await;
    let phone = sign_in(&server, "many@example.com", "phone-browser/2").await;
    let panel = server
        .engine()
        .create_session(
            &user_id,
            NewSession {
                surface: Surface::Extension,
                user_agent: Some("twitch-panel".into()),
                ip: Some("192.0.2.1".into()),
                context: None,
            },
        )
        .await
        .unwrap();

    let r = list(&server, &phone.access).await;
    assert_eq!(r.status(), 200);
    let items: Vec<Value> = r.json().await.unwrap();
    assert_eq!(items.len(), 3, "{items:?}");
    let by_id = |id: &str| {
        items
            .iter()
            .find(|s| s["id"] == id)
            .unwrap_or_else(|| panic!("{id} listed"))
    };
    let phone_item = by_id(&phone.session_id);
    assert_eq!(phone_item["current"], true);
    assert_eq!(phone_item["surface"], "dashboard");
    assert_eq!(phone_item["user_agent"], "phone-browser/2");
    assert_eq!(phone_item["ip"], "127.0.0.1");
    for key in ["created_at", "last_seen_at", "expires_at"] {
        let at = phone_item[key].as_str().unwrap();
        assert!(
            at.len() == 24 && at.ends_with('Z') && at.as_bytes()[10] == b'T',
            "{key}: {at}"
        );
    }
    let laptop_item = by_id(&laptop.session_id);
    assert_eq!(laptop_item["current"], false);
    assert_eq!(laptop_item["user_agent"], "laptop-browser/1");
    let panel_item = by_id(&panel.session.id);
    assert_eq!(panel_item["surface"], "extension");
    assert_eq!(panel_item["current"], false);
    // Newest first.
    let created: Vec<&str> = items
        .iter()
        .map(|s| s["created_at"].as_str().unwrap())
        .collect();
    assert!(created.windows(2).all(|w| w[0] >= w[1]), "{created:?}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_session_ends_it_and_its_tokens_at_once() {
    let mut server = TestServer::start().await;
    let user_id = create_dashboard_user(&server, "two@example.com").await;
    create_dashboard_user(&server, "other@example.com").await;
    let laptop = sign_in(&server, "two@example.com", "laptop").await;
    let phone = sign_in(&server, "two@example.com", "phone").await;
    let stranger = sign_in(&server, "other@example.com", "stranger").await;

    let r = revoke(&server, &laptop.access, &phone.session_id).await;
    assert_eq!(r.status(), 204);
    // The phone's access token and refresh cookie stop working at once.
    let r = plain_client()
        .get(server.url("/api/v1/auth/me"))
        .bearer_auth(&phone.access)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(error_code(r).await, "session_revoked");
    let r = dashboard_refresh_with(&server, &phone.refresh).await;
    assert_eq!(r.status(), 401);
    assert_eq!(error_code(r).await, "invalid_refresh_token");
    let ids: Vec<String> = server
        .engine()
        .stored_sessions(&user_id)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(ids, std::slice::from_ref(&laptop.session_id));

    // Gone already, never existed, or someone else's: 404, and nothing changes.
    for id in [
        phone.session_id.as_str(),
        "5b0c1d2e-3f40-4a5b-8c6d-7e8f9a0b1c2d",
        stranger.session_id.as_str(),
        "x",
    ] {
        let r = revoke(&server, &laptop.access, id).await;
        assert_eq!(r.status(), 404, "{id}");
        assert_eq!(error_code(r).await, "session_not_found");
    }
    assert_eq!(list(&server, &stranger.access).await.status(), 200);

    // Ending the current session is a logout of this device.
    assert_eq!(
        revoke(&server, &laptop.access, &laptop.session_id)
            .await
            .status(),
        204
    );
    let r = list(&server, &laptop.access).await;
    assert_eq!(r.status(), 401);
    assert_eq!(error_code(r).await, "session_revoked");
    assert!(server
        .engine()
        .stored_sessions(&user_id)
        .await
        .unwrap()
        .is_empty());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoke_others_keeps_only_the_current_session() {
    let mut server = TestServer::start().await;
    let user_id = create_dashboard_user(&server, "keep@example.com").await;
    let kept = sign_in(&server, "keep@example.com", "kept").await;
    let others = [
        sign_in(&server, "keep@example.com", "a").await,
        sign_in(&server, "keep@example.com", "b").await,
    ];

    let r = plain_client()
        .post(server.url("/api/v1/auth/sessions/revoke-others"))
        .bearer_auth(&kept.access)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let items: Vec<Value> = list(&server, &kept.access).await.json().await.unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["id"], kept.session_id);
    assert_eq!(items[0]["current"], true);
    for other in &others {
        assert_eq!(list(&server, &other.access).await.status(), 401);
        assert_eq!(
            dashboard_refresh_with(&server, &other.refresh)
                .await
                .status(),
            401
        );
    }
    assert_eq!(
        server
            .engine()
            .stored_sessions(&user_id)
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        dashboard_refresh_with(&server, &kept.refresh)
            .await
            .status(),
        200
    );
    server.stop().await;
}
