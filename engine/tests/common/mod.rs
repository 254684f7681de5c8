//! Helpers shared by the engine's integration tests: an engine over a real sled
//! store in a temp directory, on a manual clock, and small token utilities.

#![allow(dead_code)]

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tachigo_engine::clock::ManualClock;
use tachigo_engine::config::{Config, DurabilityMode};
use tachigo_engine::opaque_token;
use tachigo_engine::{Engine, EngineOptions, NewSession, NewUser, Surface, User};
use tempfile::TempDir;

/// Where every manual clock starts (2023-11-14T22:13:20Z).
pub const T0: i64 = 1_700_000_000_000;

/// The default options, with at most two argon2 computations at once.
pub fn options() -> EngineOptions {
    let mut o = EngineOptions::from_config(&Config::default());
    o.password_concurrency = 2;
    o
}

/// A configuration whose durable sled store lives in `dir` (`<dir>/db`).
pub fn config(dir: &Path) -> Config {
    let mut config = Config::default();
    config.server.data_dir = dir.to_path_buf();
    config.storage.durability = DurabilityMode::GroupCommit;
    config
}

/// Opens an engine over the store in `dir`, on `clock`.
pub async fn open_engine(dir: &Path, options: EngineOptions, clock: Arc<ManualClock>) -> Engine {
    Engine::open_with_clock(&config(dir), options, clock)
        .await
        .expect("opening the engine")
}

/// Shuts `engine` down, waits until storage has let go of the directory (every
/// handle of the engine is dropped here), and opens a new engine on it.
pub async fn restart(
    engine: Engine,
    dir: &Path,
    options: EngineOptions,
    clock: Arc<ManualClock>,
) -> Engine {
    engine.shutdown().await.expect("shutting the engine down");
    let released = engine.storage_release();
    drop(engine);
    assert!(released.await, "storage let go of the data directory");
    open_engine(dir, options, clock).await
}

/// An engine over a fresh temp directory, on a manual clock.
pub struct Harness {
    pub engine: Engine,
    pub clock: Arc<ManualClock>,
    pub dir: TempDir,
}

impl Harness {
    pub async fn start(options: EngineOptions) -> Harness {
        let dir = tempfile::tempdir().expect("a temp dir");
        let clock = Arc::new(ManualClock::new(T0));
        let engine = open_engine(dir.path(), options, clock.clone()).await;
        Harness { engine, clock, dir }
    }
}

/// A user with neither email nor password (no argon2 cost).
pub async fn plain_user(engine: &Engine) -> User {
    engine
        .create_user(NewUser::default())
        .await
        .expect("creating a user")
}

pub fn new_session(surface: Surface) -> NewSession {
    NewSession {
        surface,
        user_agent: Some("tests".into()),
        ip: Some("127.0.0.1".into()),
        context: None,
    }
}

/// Logs `user_id` in on the dashboard: `(session id, first refresh token)`.
pub async fn dashboard_login(engine: &Engine, user_id: &str) -> (String, String) {
    let created = engine
        .create_session(user_id, new_session(Surface::Dashboard))
        .await
        .expect("creating a dashboard session");
    let token = created
        .token
        .expect("a dashboard session has a refresh token");
    (created.session.id, token)
}

/// Rotates `token` (which must be accepted) and returns its successor.
pub async fn rotated(engine: &Engine, token: &str) -> String {
    engine
        .rotate_refresh_token(token)
        .await
        .expect("the token rotates")
        .refresh_token
}

/// A token with the right session id and a random secret: not one the engine minted.
pub fn forged_token(session_id: &str) -> String {
    opaque_token::mint(session_id).token
}

/// Polls `condition` every 10 ms until it holds; panics after `timeout`.
pub async fn wait_until<F, Fut>(what: &str, timeout: Duration, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if condition().await {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
