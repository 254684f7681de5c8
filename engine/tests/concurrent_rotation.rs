//! Pins what the dashboard's concurrent tabs rely on: many refreshes presenting the
//! same token at once all succeed with one and the same successor (one rotation,
//! the rest answered by the grace rule), storage advances the family by exactly
//! one generation, and the successor then rotates normally.

mod common;

use std::collections::HashSet;

use common::{dashboard_login, hash_of, plain_user, Harness};
use tachigo_engine::EngineError;

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

    let family = h.store().family(&sid).unwrap().unwrap();
    assert_eq!(family.generation, 1, "one rotation, however many callers");
    assert_eq!(family.current, hash_of(&successor));
    assert_eq!(family.previous.map(|p| p.hash), Some(hash_of(&first)));
    assert_eq!(family.revoked, None);

    // The successor rotates normally.
    let next = h.engine.rotate_refresh_token(&successor).await.unwrap();
    assert!(!next.grace);
    assert_ne!(next.refresh_token, successor);
    let family = h.store().family(&sid).unwrap().unwrap();
    assert_eq!(family.generation, 2);
    assert_eq!(family.current, hash_of(&next.refresh_token));

    // The first token is now two rotations old: no grace for it.
    assert!(matches!(
        h.engine.rotate_refresh_token(&first).await,
        Err(EngineError::RefreshTokenReused)
    ));
    assert_eq!(
        h.store().family(&sid).unwrap().unwrap().revoked,
        Some(tachigo_engine::storage::FamilyRevocation::Reuse)
    );
    h.engine.shutdown().await.unwrap();
}
