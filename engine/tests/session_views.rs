//! Session reads served without a message to the user's actor: they must say
//! exactly what the actor would. A revocation, a changed user or an expiry is
//! what the very next read sees; reads still count as the session being seen;
//! and views go away with their actors, so memory stays bounded.

mod common;

use std::time::Duration;

use common::{dashboard_login, new_session, plain_user, wait_until, Harness, T0};
use tachigo_engine::{EngineError, RevokeScope, Surface};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_session_is_refused_by_the_very_next_read() {
    let h = Harness::start(common::options()).await;
    let user = plain_user(&h.engine).await;
    let web = h
        .engine
        .create_session(&user.id, new_session(Surface::Web))
        .await
        .unwrap();
    let cookie = web.token.unwrap();
    let (dashboard_session, _) = dashboard_login(&h.engine, &user.id).await;
    for _ in 0..3 {
        h.engine.session_by_token(&cookie).await.unwrap();
        h.engine
            .live_session(&user.id, &dashboard_session)
            .await
            .unwrap();
    }

    h.engine
        .revoke_sessions(&user.id, RevokeScope::One(web.session.id.clone()))
        .await
        .unwrap();
    assert!(matches!(
        h.engine.session_by_token(&cookie).await,
        Err(EngineError::SessionInvalid)
    ));
    h.engine
        .live_session(&user.id, &dashboard_session)
        .await
        .expect("the other session is untouched");

    h.engine
        .revoke_sessions(&user.id, RevokeScope::All)
        .await
        .unwrap();
    assert!(matches!(
        h.engine.live_session(&user.id, &dashboard_session).await,
        Err(EngineError::SessionInvalid)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_read_that_starts_after_a_revocation_succeeds() {
    let h = Harness::start(common::options()).await;
    let user = plain_user(&h.engine).await;
    let web = h
        .engine
        .create_session(&user.id, new_session(Surface::Web))
        .await
        .unwrap();
    let cookie = web.token.unwrap();
    let readers: Vec<_> = (0..4)
        .map(|_| {
            let engine = h.engine.clone();
            let cookie = cookie.clone();
            tokio::spawn(async move {
                let mut successes_after_revocation = 0;
                let mut revoked_seen = false;
                // Until the revocation is seen (bounded: it happens within
                // milliseconds of the start).
                for _ in 0..10_000_000 {
                    let revoked_before = REVOKED.load(std::sync::atomic::Ordering::Acquire);
                    match engine.session_by_token(&cookie).await {
                        Ok(_) if revoked_before => successes_after_revocation += 1,
                        Ok(_) => {}
                        Err(EngineError::SessionInvalid) => {
                            revoked_seen = true;
                            break;
                        }
                        Err(e) => panic!("unexpected {e:?}"),
                    }
                    tokio::task::yield_now().await;
                }
                (successes_after_revocation, revoked_seen)
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(20)).await;
    h.engine
        .revoke_sessions(&user.id, RevokeScope::All)
        .await
        .unwrap();
    REVOKED.store(true, std::sync::atomic::Ordering::Release);
    for reader in readers {
        let (after, seen) = reader.await.unwrap();
        assert_eq!(
            after, 0,
            "a read begun after the revocation returned succeeded"
        );
        assert!(seen, "each reader saw the revocation");
    }
}

static REVOKED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_user_is_what_the_next_read_shows() {
    let h = Harness::start(common::options()).await;
    let user = plain_user(&h.engine).await;
    let web = h
        .engine
        .create_session(&user.id, new_session(Surface::Web))
        .await
        .unwrap();
    let cookie = web.token.unwrap();
    assert!(h
        .engine
        .session_by_token(&cookie)
        .await
        .unwrap()
        .user
        .roles
        .is_empty());

    h.engine
        .set_roles(&user.id, vec!["admin".into()])
        .await
        .unwrap();
    let read = h.engine.session_by_token(&cookie).await.unwrap();
    assert_eq!(read.user.roles, vec!["admin".to_string()]);
    let read = h
        .engine
        .live_session(&user.id, &web.session.id)
        .await
        .unwrap();
    assert_eq!(read.user.roles, vec!["admin".to_string()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_without_a_message_still_mark_the_session_seen() {
    let h = Harness::start(common::options()).await;
    let user = plain_user(&h.engine).await;
    let (session_id, _) = dashboard_login(&h.engine, &user.id).await;
    h.clock.advance_ms(5_000);
    h.engine.live_session(&user.id, &session_id).await.unwrap();
    let listed = h.engine.list_sessions(&user.id).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].last_seen_at, T0 + 5_000);
    assert_eq!(listed[0].created_at, T0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_access_token_of_another_user_or_an_expired_session_reads_nothing() {
    let h = Harness::start(common::options()).await;
    let user = plain_user(&h.engine).await;
    let other = plain_user(&h.engine).await;
    let (session_id, _) = dashboard_login(&h.engine, &user.id).await;
    h.engine.live_session(&user.id, &session_id).await.unwrap();
    assert!(matches!(
        h.engine.live_session(&other.id, &session_id).await,
        Err(EngineError::SessionInvalid)
    ));
    h.clock.advance_ms(h.engine.options().refresh_idle_ttl_ms);
    assert!(matches!(
        h.engine.live_session(&user.id, &session_id).await,
        Err(EngineError::SessionInvalid)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn views_go_away_with_their_actors_and_come_back_with_them() {
    let mut options = common::options();
    options.idle_passivation = Duration::from_millis(100);
    let h = Harness::start(options).await;
    let mut cookies = Vec::new();
    for _ in 0..20 {
        let user = plain_user(&h.engine).await;
        let web = h
            .engine
            .create_session(&user.id, new_session(Surface::Web))
            .await
            .unwrap();
        dashboard_login(&h.engine, &user.id).await;
        cookies.push(web.token.unwrap());
    }
    assert_eq!(h.engine.published_session_views(), 40);
    wait_until(
        "every actor passivated",
        Duration::from_secs(10),
        || async { h.engine.live_actors() == 0 },
    )
    .await;
    assert_eq!(h.engine.published_session_views(), 0);

    // The next read activates the user again, and with it both of its views.
    h.engine.session_by_token(&cookies[0]).await.unwrap();
    assert_eq!(h.engine.published_session_views(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_user_leaves_no_view_behind() {
    let h = Harness::start(common::options()).await;
    let user = plain_user(&h.engine).await;
    let web = h
        .engine
        .create_session(&user.id, new_session(Surface::Web))
        .await
        .unwrap();
    let cookie = web.token.unwrap();
    h.engine.session_by_token(&cookie).await.unwrap();
    h.engine.delete_user(&user.id).await.unwrap();
    assert_eq!(h.engine.published_session_views(), 0);
    assert!(matches!(
        h.engine.session_by_token(&cookie).await,
        Err(EngineError::SessionInvalid)
    ));
}
