//! Pins what the dashboard's concurrent tabs rely on: many refreshes presenting the
//! same token at once all succeed with one and the same successor (one rotation,
//! the rest answered by the grace rule), storage advances the family by exactly
//! one generation, and the successor then rotates normally.

mod common;

use std::collections::HashSet;

use common::{dashboard_login, plain_user, Harness};
use tachigo_engine::{EngineError, Revocation};

const CALLERS: usize = 1_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_refreshes_of_one_token_share_one_successor() {
    let h = Harness::start(common::options()).await;
    let user = plain_user(&h.engine).await;
    let (sid, first) = dashboard_login(&h.engine, &user.id).await;

    let tasks: Vec<_> = (0..CALLERS)
        .map(|_| {
            let engine = h.engine.clone();
            let token = first.clone();
            tokio::spawn(async move { engine.rotate_refresh_token(&token).await })
        })
        .collect();
    let mut successors = HashSet::new();
    let mut fresh_rotations = 0;
    for task in tasks {
        let rotated = task
            .await
            .expect("the task ran")
            .expect("every concurrent refresh succeeds");
        if !rotated.grace {
            fresh_rotations += 1;
        }
        assert_eq!(rotated.session.id, sid);
        successors.insert(rotated.refresh_token);
    }
    assert_eq!(
        successors.len(),
        1,
        "exactly one successor among the replies"
    );
    assert_eq!(
        fresh_rotations, 1,
        "exactly one reply was the rotation itself"
    );
    let successor = successors.into_iter().next().unwrap();
    assert_ne!(successor, first);

    let family = h.engine.stored_refresh_family(&sid).await.unwrap().unwrap();
    assert_eq!(family.generation, 1, "one rotation, however many callers");
    assert_eq!(family.revoked, None);
    // The first token is the stored predecessor and the successor the token it
    // is answered with: a replay inside the window is a grace answer carrying
    // the successor, and changes nothing.
    let replay = h.engine.rotate_refresh_token(&first).await.unwrap();
    assert!(replay.grace);
    assert_eq!(replay.refresh_token, successor);
    assert_eq!(
        h.engine.stored_refresh_family(&sid).await.unwrap().unwrap(),
        family,
        "a grace replay changes nothing"
    );

    // The successor is the current token: it rotates normally.
    let next = h.engine.rotate_refresh_token(&successor).await.unwrap();
    assert!(!next.grace);
    assert_ne!(next.refresh_token, successor);
    let family = h.engine.stored_refresh_family(&sid).await.unwrap().unwrap();
    assert_eq!(family.generation, 2);
    assert_eq!(family.revoked, None);
    assert_eq!(family.last_rotated_at, h.engine.now());
    // ... and is now the predecessor of the new current token.
    let replay = h.engine.rotate_refresh_token(&successor).await.unwrap();
    assert!(replay.grace);
    assert_eq!(replay.refresh_token, next.refresh_token);

    // The first token is now two rotations old: no grace for it.
    assert!(matches!(
        h.engine.rotate_refresh_token(&first).await,
        Err(EngineError::RefreshTokenReused)
    ));
    assert_eq!(
        h.engine
            .stored_refresh_family(&sid)
            .await
            .unwrap()
            .unwrap()
            .revoked,
        Some(Revocation::Reuse)
    );
    // Every token of the family is recognised as the family's (a revoked
    // family's token is reuse; a token it never issued is merely invalid).
    for token in [&first, &successor, &next.refresh_token] {
        assert!(matches!(
            h.engine.rotate_refresh_token(token).await,
            Err(EngineError::RefreshTokenReused)
        ));
    }
    assert!(matches!(
        h.engine
            .rotate_refresh_token(&common::forged_token(&sid))
            .await,
        Err(EngineError::InvalidRefreshToken)
    ));
    h.engine.shutdown().await.unwrap();
}
