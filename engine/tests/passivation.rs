//! Pins the virtual-actor lifecycle: an idle actor stops and the next message
//! reactivates it with the same state (from storage); the live set stays near
//! `max_live_actors` however many users are touched, and every user still answers
//! correctly; and messages racing a passivation (idle or forced eviction) are
//! redelivered, never lost: every call is answered and rotation chains stay
//! consistent.
//!
//! The only waiting is bounded polling for the background passivation task.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{dashboard_login, new_session, plain_user, wait_until, Harness};
use futures::{stream, StreamExt};
use tachigo_engine::{Engine, NewUser, Surface};

const SETTLE: Duration = Duration::from_secs(20);

async fn wait_for_live_at_most(engine: &Engine, bound: usize) {
    wait_until(&format!("at most {bound} live actors"), SETTLE, || async {
        engine.live_actors() <= bound
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_actor_passivates_and_reactivates_with_the_same_state() {
    let mut options = common::options();
    options.idle_passivation = Duration::from_millis(100);
    let h = Harness::start(options).await;
    let user = plain_user(&h.engine).await;
    let (sid, t0) = dashboard_login(&h.engine, &user.id).await;
    let web = h
        .engine
        .create_session(&user.id, new_session(Surface::Web))
        .await
        .unwrap();
    let cookie = web.token.unwrap();
    assert_eq!(h.engine.live_actors(), 1);
    // The listing's order is not part of the contract (a reactivated actor lists
    // in storage order): compare by id.
    let by_id = |mut sessions: Vec<tachigo_engine::SessionInfo>| {
        sessions.sort_by(|a, b| a.id.cmp(&b.id));
        sessions
    };
    let sessions_before = by_id(h.engine.list_sessions(&user.id).await.unwrap());
    assert_eq!(sessions_before.len(), 2);

    wait_for_live_at_most(&h.engine, 0).await;

    // The next message reactivates the actor from storage, with the same state.
    let sessions_after = by_id(h.engine.list_sessions(&user.id).await.unwrap());
    assert_eq!(sessions_after, sessions_before);
    assert_eq!(h.engine.user(&user.id).await.unwrap(), user);
    let read = h.engine.session_by_token(&cookie).await.unwrap();
    assert_eq!(read.session.id, web.session.id);

    let t1 = h.engine.rotate_refresh_token(&t0).await.unwrap();
    assert!(!t1.grace);
    let family = h.engine.stored_refresh_family(&sid).await.unwrap().unwrap();
    assert_eq!(family.generation, 1);
    assert_eq!(family.revoked, None);

    // Passivated inside the grace window: the successor's plaintext is gone, so a
    // replay of the predecessor is answered with a token that works (never a
    // revocation). The reactivated actor judges it against what storage holds:
    // t0 is the stored predecessor, t1 the stored current token, which the
    // fresh successor retires.
    wait_for_live_at_most(&h.engine, 0).await;
    let replay = h.engine.rotate_refresh_token(&t0).await.unwrap();
    assert!(replay.grace);
    assert_ne!(replay.refresh_token, t1.refresh_token);
    let family = h.engine.stored_refresh_family(&sid).await.unwrap().unwrap();
    assert_eq!(family.revoked, None);
    assert_eq!(family.generation, 2, "the fresh successor is stored");
    // t1 is now the immediate predecessor: its replay is answered with the
    // held replay token.
    let again = h
        .engine
        .rotate_refresh_token(&t1.refresh_token)
        .await
        .unwrap();
    assert!(again.grace);
    assert_eq!(again.refresh_token, replay.refresh_token);
    let next = h
        .engine
        .rotate_refresh_token(&replay.refresh_token)
        .await
        .unwrap();
    assert!(!next.grace);
    let family = h.engine.stored_refresh_family(&sid).await.unwrap().unwrap();
    assert_eq!(family.generation, 3);
    assert_eq!(family.revoked, None);
    // What storage holds is the chain: after another passivation, the newest
    // token still rotates and its predecessor is a grace replay.
    wait_for_live_at_most(&h.engine, 0).await;
    let last = h
        .engine
        .rotate_refresh_token(&next.refresh_token)
        .await
        .unwrap();
    assert!(!last.grace);
    let replay = h
        .engine
        .rotate_refresh_token(&next.refresh_token)
        .await
        .unwrap();
    assert!(replay.grace);
    assert_eq!(replay.refresh_token, last.refresh_token);
    assert_eq!(
        h.engine
            .stored_refresh_family(&sid)
            .await
            .unwrap()
            .unwrap()
            .generation,
        4
    );
    assert_eq!(h.engine.list_sessions(&user.id).await.unwrap().len(), 2);
    h.engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_set_stays_bounded_and_every_user_still_answers() {
    const USERS: usize = 1_000;
    const MAX_LIVE: usize = 100;
    let mut options = common::options();
    options.max_live_actors = MAX_LIVE;
    let h = Harness::start(options).await;

    // `buffered` keeps the order: users[i] has email user{i}@example.com.
    let users: Vec<_> = stream::iter(0..USERS)
        .map(|i| {
            let engine = h.engine.clone();
            async move {
                engine
                    .create_user(NewUser {
                        email: Some(format!("user{i}@example.com")),
                        name: Some(format!("User {i}")),
                        ..NewUser::default()
                    })
                    .await
                    .unwrap()
            }
        })
        .buffered(64)
        .collect()
        .await;
    assert_eq!(h.engine.user_count().await.unwrap(), USERS as u64);
    let (sid, t0) = dashboard_login(&h.engine, &users[0].id).await;

    let touch = |round: &'static str| {
        let engine = h.engine.clone();
        let users = users.clone();
        async move {
            stream::iter(users)
                .map(|expected| {
                    let engine = engine.clone();
                    async move {
                        let got = engine.user(&expected.id).await.unwrap_or_else(|e| {
                            panic!("{round}: user {} did not answer: {e}", expected.id)
                        });
                        assert_eq!(got, expected, "{round}: the actor answers with its user");
                    }
                })
                .buffer_unordered(32)
                .collect::<Vec<()>>()
                .await;
        }
    };

    touch("first touch").await;
    wait_for_live_at_most(&h.engine, MAX_LIVE + MAX_LIVE / 10).await;

    // Every user still answers correctly, including the evicted ones.
    touch("second touch").await;
    wait_for_live_at_most(&h.engine, MAX_LIVE + MAX_LIVE / 10).await;

    // The first user's actor was evicted long ago; its session survived in storage.
    let sessions = h.engine.list_sessions(&users[0].id).await.unwrap();
    assert_eq!(
        sessions.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(),
        vec![sid.as_str()]
    );
    let rotated = h.engine.rotate_refresh_token(&t0).await.unwrap();
    assert!(!rotated.grace);
    assert_eq!(
        h.engine
            .stored_refresh_family(&sid)
            .await
            .unwrap()
            .unwrap()
            .generation,
        1
    );
    for (i, user) in users.iter().enumerate().step_by(97) {
        assert_eq!(
            h.engine
                .user_id_by_email(&format!("user{i}@example.com"))
                .await
                .unwrap(),
            Some(user.id.clone())
        );
    }
    h.engine.shutdown().await.unwrap();
}

/// Runs rotation chains and reads on a few users while their actors are being
/// passivated under them; every call must be answered correctly.
async fn race_passivation(idle: Duration, max_live: usize) {
    const USERS: usize = 4;
    const SESSIONS_PER_USER: usize = 4;
    const ROTATIONS: usize = 40;
    const READERS_PER_USER: usize = 2;
    const READS: usize = 60;

    let mut options = common::options();
    options.idle_passivation = idle;
    options.max_live_actors = max_live;
    let h = Harness::start(options).await;

    let mut logins: HashMap<String, Vec<(String, String)>> = HashMap::new();
    for _ in 0..USERS {
        let user = plain_user(&h.engine).await;
        let mut sessions = Vec::new();
        for _ in 0..SESSIONS_PER_USER {
            sessions.push(dashboard_login(&h.engine, &user.id).await);
        }
        logins.insert(user.id, sessions);
    }

    let min_live = Arc::new(AtomicUsize::new(usize::MAX));
    let done = Arc::new(tokio::sync::Notify::new());
    let sampler = {
        let engine = h.engine.clone();
        let min_live = min_live.clone();
        let done = done.clone();
        tokio::spawn(async move {
            loop {
                min_live.fetch_min(engine.live_actors(), Ordering::Relaxed);
                tokio::select! {
                    _ = done.notified() => return,
                    _ = tokio::time::sleep(Duration::from_millis(2)) => {}
                }
            }
        })
    };

    let mut rotators = Vec::new();
    let mut readers = Vec::new();
    for (user_id, sessions) in &logins {
        for (sid, first) in sessions {
            let engine = h.engine.clone();
            let (sid, first) = (sid.clone(), first.clone());
            rotators.push(tokio::spawn(async move {
                let mut token = first;
                for n in 0..ROTATIONS {
                    let rotated = engine
                        .rotate_refresh_token(&token)
                        .await
                        .unwrap_or_else(|e| panic!("rotation {n} of {sid} failed: {e}"));
                    assert!(!rotated.grace, "rotation {n} of {sid} was a grace answer");
                    assert_eq!(rotated.session.id, sid);
                    assert_ne!(rotated.refresh_token, token);
                    token = rotated.refresh_token;
                    tokio::time::sleep(Duration::from_millis(rand::random_range(0..12))).await;
                }
                (sid, token)
            }));
        }
        let expected: BTreeSet<String> = sessions.iter().map(|(sid, _)| sid.clone()).collect();
        for _ in 0..READERS_PER_USER {
            let engine = h.engine.clone();
            let user_id = user_id.clone();
            let expected = expected.clone();
            readers.push(tokio::spawn(async move {
                for n in 0..READS {
                    if n % 2 == 0 {
                        let listed = engine
                            .list_sessions(&user_id)
                            .await
                            .unwrap_or_else(|e| panic!("list {n} of {user_id} failed: {e}"));
                        let ids: BTreeSet<String> = listed.into_iter().map(|s| s.id).collect();
                        assert_eq!(ids, expected, "list {n} of {user_id}");
                    } else {
                        let user = engine
                            .user(&user_id)
                            .await
                            .unwrap_or_else(|e| panic!("read {n} of {user_id} failed: {e}"));
                        assert_eq!(user.id, user_id);
                    }
                    tokio::time::sleep(Duration::from_millis(rand::random_range(0..12))).await;
                }
            }));
        }
    }

    let mut last_tokens = Vec::new();
    for rotator in rotators {
        last_tokens.push(rotator.await.expect("a rotator finished"));
    }
    for reader in readers {
        reader.await.expect("a reader finished");
    }
    done.notify_one();
    sampler.await.unwrap();
    eprintln!(
        "fewest live actors seen during the race: {} of {USERS}",
        min_live.load(Ordering::Relaxed)
    );

    // Each chain is exactly what storage holds: one generation per rotation, the
    // last token current (it rotates normally, and is then the predecessor the
    // grace rule answers for), nothing revoked.
    for (sid, last) in &last_tokens {
        let family = h.engine.stored_refresh_family(sid).await.unwrap().unwrap();
        assert_eq!(family.generation as usize, ROTATIONS, "generation of {sid}");
        assert_eq!(family.revoked, None);
        let again = h.engine.rotate_refresh_token(last).await.unwrap();
        assert!(!again.grace, "current token of {sid}");
        let replay = h.engine.rotate_refresh_token(last).await.unwrap();
        assert!(replay.grace, "predecessor of {sid}");
        // Idle passivation keeps racing here: the actor may have let the held
        // successor go between the two calls, and then the grace reply is a
        // freshly minted successor (one more generation) instead of the same one.
        let expected_generation = if replay.refresh_token == again.refresh_token {
            ROTATIONS + 1
        } else {
            ROTATIONS + 2
        };
        assert_eq!(
            h.engine
                .stored_refresh_family(sid)
                .await
                .unwrap()
                .unwrap()
                .generation as usize,
            expected_generation,
            "generation of {sid}"
        );
    }
    for (user_id, sessions) in &logins {
        assert_eq!(
            h.engine.stored_sessions(user_id).await.unwrap().len(),
            sessions.len()
        );
    }
    assert!(!h
        .engine
        .recent_audit_events(1_000)
        .await
        .unwrap()
        .iter()
        .any(|e| e.kind == "refresh_reuse_detected"));
    h.engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_racing_idle_passivation_are_never_lost() {
    race_passivation(Duration::from_millis(5), 100_000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_racing_eviction_are_never_lost() {
    race_passivation(Duration::from_secs(600), 2).await;
}
