//! The in-process engine scenarios: no HTTP, just the engine over a real,
//! durable store: sled in a temporary directory, or PostgreSQL (`--store`).
//!
//! - `engine-rotate`: durable refresh-token rotations per second. Each worker owns
//!   its users (a user is never rotated by two workers at once, so every step is a
//!   real rotation, not a grace replay) and each rotation is acknowledged only
//!   after the group-commit flush.
//! - `engine-read`: session reads per second (the liveness check behind every
//!   bearer request), spread over all users.
//! - `engine-sign`: access tokens signed per second (EdDSA, the claims of a
//!   dashboard token): the one piece of CPU every refresh and login pays that
//!   no change here can remove, measured alone.
//! - `engine-actors`: RSS per live actor (all users activated at once), then a
//!   loop touching users at random with `max_live_actors` at a tenth of them,
//!   sampling RSS: it stays flat while passivation holds the live set at its bound.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tachigo_engine::config::{Config, DurabilityMode};
use tachigo_engine::{Engine, EngineOptions, NewSession, NewUser, Surface};
use tempfile::TempDir;

use crate::driver::Scenario;
use crate::Options;

/// Resident set size of this process, in bytes.
fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

/// An engine over the database in `dir`.
async fn engine_in(dir: &TempDir, durable: bool, max_live_actors: usize) -> anyhow::Result<Engine> {
    let mut config = Config::default();
    config.server.data_dir = dir.path().to_path_buf();
    if !durable {
        config.storage.durability = DurabilityMode::None;
    }
    crate::store_choice::configure(&mut config);
    let mut options = EngineOptions::from_config(&config);
    options.max_live_actors = max_live_actors;
    Ok(Engine::open_with(&config, options).await?)
}

/// An engine over a fresh temporary database.
async fn engine(durable: bool, max_live_actors: usize) -> anyhow::Result<(Engine, TempDir)> {
    let dir = TempDir::new()?;
    Ok((engine_in(&dir, durable, max_live_actors).await?, dir))
}

/// Hands freed heap back to the OS so RSS deltas measure what is live.
/// Returns the free memory of both allocators to the system (the bench runs
/// on mimalloc, as the server does; glibc's heap still serves C code).
fn trim_heap() {
    // SAFETY: both only release free memory of the process's own heaps.
    unsafe {
        libc::malloc_trim(0);
        libmimalloc_sys::mi_collect(true);
    }
}

/// A user with one dashboard session, as the bench sees it.
struct BenchUser {
    id: String,
    session_id: String,
    refresh_token: Mutex<String>,
}

/// Creates `count` users (no password: argon2 is not what is measured) with one
/// dashboard session each, `parallel` at a time.
async fn create_users(engine: &Engine, count: usize) -> anyhow::Result<Vec<BenchUser>> {
    let mut users = Vec::with_capacity(count);
    for chunk in (0..count).collect::<Vec<_>>().chunks(256) {
        let created = futures::future::try_join_all(chunk.iter().map(|i| async move {
            let user = engine
                .create_user(NewUser {
                    email: Some(format!("bench{i}@bench.test")),
                    ..NewUser::default()
                })
                .await?;
            let session = engine
                .create_session(
                    &user.id,
                    NewSession {
                        surface: Surface::Dashboard,
                        user_agent: None,
                        ip: None,
                        context: None,
                    },
                )
                .await?;
            Ok::<_, anyhow::Error>(BenchUser {
                id: user.id,
                session_id: session.session.id,
                refresh_token: Mutex::new(
                    session
                        .token
                        .expect("dashboard sessions have a refresh token"),
                ),
            })
        }))
        .await?;
        users.extend(created);
    }
    Ok(users)
}

pub struct EngineRotate {
    engine: Engine,
    users: Vec<BenchUser>,
    concurrency: usize,
    _dir: TempDir,
}

impl Scenario for EngineRotate {
    const NAME: &'static str = "engine-rotate";

    async fn setup(options: &Options) -> anyhow::Result<Self> {
        let concurrency = options.concurrency as usize;
        let count = (options.users.unwrap_or(concurrency as u64) as usize).max(concurrency);
        let (engine, dir) = engine(true, 1_000_000).await?;
        let users = create_users(&engine, count).await?;
        Ok(EngineRotate {
            engine,
            users,
            concurrency,
            _dir: dir,
        })
    }

    async fn step(&self, worker: usize, iteration: u64) -> Result<(), String> {
        let owned = self.users.len() / self.concurrency;
        let user = &self.users[worker + (iteration as usize % owned) * self.concurrency];
        let token = user.refresh_token.lock().expect("token lock").clone();
        let rotated = self
            .engine
            .rotate_refresh_token(&token)
            .await
            .map_err(|e| e.to_string())?;
        if rotated.grace {
            return Err("grace replay instead of a rotation".into());
        }
        *user.refresh_token.lock().expect("token lock") = rotated.refresh_token;
        Ok(())
    }

    fn extra(&self) -> Option<serde_json::Value> {
        Some(serde_json::json!({ "users": self.users.len(), "durability": "group_commit" }))
    }
}

pub struct EngineSign {
    engine: Engine,
    roles: Vec<String>,
    _dir: TempDir,
}

impl Scenario for EngineSign {
    const NAME: &'static str = "engine-sign";

    async fn setup(_options: &Options) -> anyhow::Result<Self> {
        let (engine, dir) = engine(false, 1_000).await?;
        Ok(EngineSign {
            engine,
            roles: vec!["user".to_string()],
            _dir: dir,
        })
    }

    async fn step(&self, worker: usize, iteration: u64) -> Result<(), String> {
        let subject = format!("user-{worker}-{iteration}");
        let (token, _) = self.engine.mint_access_token(
            &subject,
            Some("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"),
            tachigo_engine::access_token::AUDIENCE_DASHBOARD,
            &self.roles,
            serde_json::Map::new(),
        );
        if token.split('.').count() != 3 {
            return Err("not a compact JWS".into());
        }
        Ok(())
    }
}

pub struct EngineRead {
    engine: Engine,
    users: Vec<BenchUser>,
    _dir: TempDir,
}

impl Scenario for EngineRead {
    const NAME: &'static str = "engine-read";

    async fn setup(options: &Options) -> anyhow::Result<Self> {
        let count = options.users.unwrap_or(1_000) as usize;
        let (engine, dir) = engine(true, 1_000_000).await?;
        let users = create_users(&engine, count).await?;
        Ok(EngineRead {
            engine,
            users,
            _dir: dir,
        })
    }

    async fn step(&self, worker: usize, iteration: u64) -> Result<(), String> {
        let user = &self.users[(worker * 7919 + iteration as usize) % self.users.len()];
        self.engine
            .live_session(&user.id, &user.session_id)
            .await
            .map_err(|e| e.to_string())?;
        Ok(())
    }

    fn extra(&self) -> Option<serde_json::Value> {
        Some(serde_json::json!({ "users": self.users.len() }))
    }
}

pub struct EngineActors {
    engine: Engine,
    users: Vec<BenchUser>,
    bound: usize,
    rss_per_actor_bytes: f64,
    samples: Arc<Mutex<Vec<(u64, usize)>>>,
    touched: AtomicU64,
    _dir: TempDir,
}

impl Scenario for EngineActors {
    const NAME: &'static str = "engine-actors";

    async fn setup(options: &Options) -> anyhow::Result<Self> {
        let count = options.users.unwrap_or(20_000) as usize;
        let bound = (count / 10).max(1);
        // Part 1: RSS per live actor. The users are made by one engine, which is then
        // dropped; a fresh engine over the same database activates them all at once.
        let rss_per_actor_bytes = {
            let dir = TempDir::new()?;
            let maker = engine_in(&dir, false, count * 2).await?;
            let users = create_users(&maker, count).await?;
            maker.shutdown().await?;
            drop(maker);
            tokio::time::sleep(Duration::from_millis(300)).await;
            let engine = engine_in(&dir, false, count * 2).await?;
            trim_heap();
            let before = rss_bytes();
            for chunk in users.chunks(512) {
                futures::future::try_join_all(
                    chunk
                        .iter()
                        .map(|u| engine.live_session(&u.id, &u.session_id)),
                )
                .await?;
            }
            let after = rss_bytes();
            anyhow::ensure!(
                engine.live_actors() == count,
                "expected {count} live actors, found {}",
                engine.live_actors()
            );
            engine.shutdown().await?;
            after.saturating_sub(before) as f64 / count as f64
        };
        // Part 2: the bounded live set, sampled while the driver touches users at random.
        let (engine, dir) = engine(false, bound).await?;
        let users = create_users(&engine, count).await?;
        let samples = Arc::new(Mutex::new(Vec::new()));
        let sampler = (samples.clone(), engine.clone());
        tokio::spawn(async move {
            let (samples, engine) = sampler;
            for _ in 0..10_000 {
                tokio::time::sleep(Duration::from_millis(250)).await;
                if Arc::strong_count(&samples) == 1 {
                    break;
                }
                samples
                    .lock()
                    .expect("samples lock")
                    .push((rss_bytes(), engine.live_actors()));
            }
        });
        Ok(EngineActors {
            engine,
            users,
            bound,
            rss_per_actor_bytes,
            samples,
            touched: AtomicU64::new(0),
            _dir: dir,
        })
    }

    async fn step(&self, worker: usize, iteration: u64) -> Result<(), String> {
        let i = (worker as u64 * 2_654_435_761 + iteration * 40_503) as usize % self.users.len();
        let user = &self.users[i];
        self.engine
            .live_session(&user.id, &user.session_id)
            .await
            .map_err(|e| e.to_string())?;
        self.touched.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn extra(&self) -> Option<serde_json::Value> {
        let samples = self.samples.lock().expect("samples lock");
        // Skip the first quarter: the live set is still filling up to its bound.
        let steady = &samples[samples.len() / 4..];
        let rss: Vec<u64> = steady.iter().map(|s| s.0).collect();
        let live: Vec<usize> = steady.iter().map(|s| s.1).collect();
        let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
        Some(serde_json::json!({
            "users": self.users.len(),
            "rss_per_live_actor_kib": self.rss_per_actor_bytes / 1024.0,
            "bound_max_live_actors": self.bound,
            "steady_live_actors_max": live.iter().max(),
            "steady_rss_mib_min": rss.iter().min().map(|b| mib(*b)),
            "steady_rss_mib_max": rss.iter().max().map(|b| mib(*b)),
            "steady_rss_mib_first": rss.first().map(|b| mib(*b)),
            "steady_rss_mib_last": rss.last().map(|b| mib(*b)),
            "samples": steady.len(),
        }))
    }
}
