//! Pending OAuth states in storage: the O(1) count behind the pending bound
//! (kept through puts, takes, sweeps and a reopen), the bound itself (nothing
//! written past it), and the session of a link flow, kept beside the state and
//! found again when the state is taken.

use std::path::Path;

use tachigo_storage::sled_store::SledStore;
use tachigo_storage::{OAuthStateRecord, Store};

fn open(path: &Path) -> SledStore {
    SledStore::open(path, true).expect("opening the store")
}

fn state(expires_at: i64, link_session: Option<&str>) -> OAuthStateRecord {
    OAuthStateRecord {
        provider: "local".into(),
        pkce_verifier: "v".repeat(43),
        nonce: Some("n".into()),
        binding_hash: [1; 32],
        callback_url: "https://app.example/done".into(),
        error_callback_url: "https://app.example/error".into(),
        new_user_callback_url: None,
        link_user_id: link_session.map(|_| "user-1".to_string()),
        link_session_id: link_session.map(str::to_string),
        created_at: 0,
        expires_at,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_states_are_counted_bounded_and_keep_their_link_session() {
    let dir = tempfile::TempDir::new().unwrap();
    let store = open(dir.path());
    assert!(store
        .put_oauth_state(&[1; 32], &state(1_000, Some("session-a")), 3)
        .await
        .unwrap());
    assert!(store
        .put_oauth_state(&[2; 32], &state(1_000, None), 3)
        .await
        .unwrap());
    assert!(store
        .put_oauth_state(&[3; 32], &state(5_000, Some("session-c")), 3)
        .await
        .unwrap());
    // At the bound: refused, nothing written.
    assert!(!store
        .put_oauth_state(&[4; 32], &state(5_000, None), 3)
        .await
        .unwrap());
    assert_eq!(store.oauth_state_count(), 3);
    assert_eq!(store.take_oauth_state(&[4; 32]).await.unwrap(), None);

    let taken = store.take_oauth_state(&[1; 32]).await.unwrap().unwrap();
    assert_eq!(taken.link_session_id.as_deref(), Some("session-a"));
    assert_eq!(store.take_oauth_state(&[1; 32]).await.unwrap(), None);
    assert_eq!(store.oauth_state_count(), 2);

    // The sweep removes the expired one; the count follows.
    assert_eq!(store.sweep_oauth_states(2_000).await.unwrap(), 1);
    assert_eq!(store.oauth_state_count(), 1);

    // A reopen counts what is stored, and the link session is still there.
    drop(store);
    let store = open(dir.path());
    assert_eq!(store.oauth_state_count(), 1);
    let taken = store.take_oauth_state(&[3; 32]).await.unwrap().unwrap();
    assert_eq!(taken.link_session_id.as_deref(), Some("session-c"));
    assert_eq!(taken.link_user_id.as_deref(), Some("user-1"));
    assert_eq!(store.oauth_state_count(), 0);
}
