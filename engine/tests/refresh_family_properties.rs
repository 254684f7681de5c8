//! Pins the refresh-token family rules against a reference model, over random
//! sequences of rotations, replays of any earlier token, logouts, forged tokens and
//! clock moves (inside and outside the grace window, and past the idle expiry):
//!
//! - at most one token of a family is live: only the model's live token rotates,
//!   and what storage holds (generation, revocation, expiries, when the
//!   predecessor was retired, the session) follows the model after every step;
//! - presenting the current token rotates it; the immediate predecessor within the
//!   grace window is answered with the held successor and changes nothing;
//! - any other reuse (an older token, or the predecessor after the window) revokes
//!   the family, and afterwards every token of the family fails (once revoked for
//!   reuse, every token it ever issued is still recognised as its own);
//! - a forged token (right session id, random secret) changes nothing;
//! - after an engine restart (the successor's plaintext is gone, the actor reloads
//!   from storage) a grace replay still never revokes: it is answered with a
//!   freshly minted successor.
//!
//! Every case runs on a real engine (its own tokio runtime, real actors, a real
//! sled store in a temp directory) with a manual clock.

mod common;

use std::sync::Arc;

use common::{dashboard_login, forged_token, plain_user, restart, rotated, Harness};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::TestCaseError;
use tachigo_engine::clock::ManualClock;
use tachigo_engine::{Engine, EngineError, EngineOptions, Revocation};
use tempfile::TempDir;

const GRACE_MS: i64 = 1_000;
const IDLE_TTL_MS: i64 = 30_000;
const ABSOLUTE_TTL_MS: i64 = 100_000;

fn engine_options() -> EngineOptions {
    let mut o = common::options();
    o.refresh_grace_ms = GRACE_MS;
    o.refresh_idle_ttl_ms = IDLE_TTL_MS;
    o.session_absolute_ttl_ms = ABSOLUTE_TTL_MS;
    o
}

#[derive(Debug, Clone)]
enum Op {
    /// Present the live token.
    Rotate,
    /// Present any token issued so far (the live one included).
    Replay(Index),
    /// Log out with any token issued so far.
    Logout(Index),
    /// Present, then log out with, a token of the right session with a random secret.
    Forge,
    /// Move the clock forward.
    Advance(i64),
    /// Shut the engine down and start a new one on the same store.
    Restart,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        10 => Just(Op::Rotate),
        8 => any::<Index>().prop_map(Op::Replay),
        1 => any::<Index>().prop_map(Op::Logout),
        2 => Just(Op::Forge),
        // Small steps: a replay right after usually lands inside the grace window.
        8 => (1..=GRACE_MS).prop_map(Op::Advance),
        // Steps that leave the grace window.
        6 => (GRACE_MS + 1..=3 * GRACE_MS).prop_map(Op::Advance),
        // Past the idle expiry.
        1 => (IDLE_TTL_MS..=IDLE_TTL_MS + GRACE_MS).prop_map(Op::Advance),
        2 => Just(Op::Restart),
    ]
}

/// What presenting a token must do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// A fresh successor, not a grace answer.
    Rotated,
    /// A grace answer carrying the held successor, the token with this index.
    Grace(usize),
    /// A grace answer with a freshly minted successor (the held one was lost).
    GraceMinted,
    Reused,
    Invalid,
}

/// The reference model of one family.
#[derive(Debug)]
struct Model {
    now: i64,
    /// When the family started (the login).
    started_at: i64,
    /// Every token issued, oldest first.
    tokens: Vec<String>,
    current: usize,
    /// The immediate predecessor and when it was retired.
    previous: Option<(usize, i64)>,
    generation: u32,
    revoked: Option<Revocation>,
    idle_expires_at: i64,
    absolute_expires_at: i64,
    /// Reuse detected by a presentation (each one writes an audit event).
    reuse_detections: usize,
    /// The engine holds the plaintext of the current token (it minted it since
    /// the last restart).
    held: bool,
    /// The user's actor has loaded its state since the last restart.
    loaded: bool,
    /// The actor's state has the session (it drops revoked ones, and does not load
    /// expired ones).
    in_actor: bool,
}

impl Model {
    fn new(now: i64, first: String) -> Model {
        Model {
            now,
            started_at: now,
            tokens: vec![first],
            current: 0,
            previous: None,
            generation: 0,
            revoked: None,
            idle_expires_at: now + IDLE_TTL_MS,
            absolute_expires_at: now + ABSOLUTE_TTL_MS,
            reuse_detections: 0,
            held: false,
            loaded: true,
            in_actor: true,
        }
    }

    fn restarted(&mut self) {
        self.held = false;
        self.loaded = false;
    }

    /// A message reaches the actor: a restarted one loads its state first.
    fn touch_actor(&mut self) {
        if !self.loaded {
            self.loaded = true;
            self.in_actor = self.revoked.is_none() && !self.expired();
        }
    }

    fn revoke(&mut self, why: Revocation) {
        self.revoked = Some(why);
        self.in_actor = false;
    }

    fn expired(&self) -> bool {
        self.now >= self.idle_expires_at || self.now >= self.absolute_expires_at
    }

    fn within_grace(&self, i: usize) -> bool {
        matches!(self.previous, Some((p, at)) if p == i && self.now - at <= GRACE_MS)
    }

    fn expect_present(&self, i: usize) -> Expect {
        match self.revoked {
            Some(Revocation::Reuse) => Expect::Reused,
            Some(Revocation::Revoked) => Expect::Invalid,
            None if self.expired() => Expect::Invalid,
            None if i == self.current => Expect::Rotated,
            None if self.within_grace(i) && self.held => Expect::Grace(self.current),
            None if self.within_grace(i) => Expect::GraceMinted,
            None => Expect::Reused,
        }
    }

    /// What logging out with token `i` must do: `None` when nothing changes,
    /// else the revocation it records. A retired token outside the grace rule is
    /// reuse even when it comes with a logout; a session the actor did not load
    /// (it had expired when the actor reloaded) is already gone.
    fn expect_logout(&self, i: usize) -> Option<Revocation> {
        if self.revoked.is_some() || !self.in_actor {
            None
        } else if self.expired() || i == self.current || self.within_grace(i) {
            Some(Revocation::Revoked)
        } else {
            Some(Revocation::Reuse)
        }
    }

    fn rotated(&mut self, successor: String) {
        self.previous = Some((self.current, self.now));
        self.tokens.push(successor);
        self.current = self.tokens.len() - 1;
        self.generation += 1;
        self.idle_expires_at = (self.now + IDLE_TTL_MS).min(self.absolute_expires_at);
        self.held = true;
    }
}

struct Case {
    /// `None` only while restarting.
    engine: Option<Engine>,
    clock: Arc<ManualClock>,
    dir: TempDir,
    user_id: String,
    session_id: String,
    model: Model,
}

impl Case {
    fn engine(&self) -> &Engine {
        self.engine.as_ref().expect("an engine")
    }

    async fn present(&mut self, i: usize) -> Result<(), TestCaseError> {
        self.model.touch_actor();
        let expected = self.model.expect_present(i);
        let token = self.model.tokens[i].clone();
        let got = self.engine().rotate_refresh_token(&token).await;
        let model = &mut self.model;
        match (expected, got) {
            (Expect::Rotated, Ok(r)) => {
                prop_assert!(
                    !r.grace,
                    "a rotation of the live token is not a grace answer"
                );
                prop_assert!(
                    !model.tokens.contains(&r.refresh_token),
                    "a successor is a new token"
                );
                model.rotated(r.refresh_token);
                prop_assert_eq!(r.session.expires_at, model.idle_expires_at);
            }
            (Expect::Grace(c), Ok(r)) => {
                prop_assert!(r.grace, "a replay of the predecessor is a grace answer");
                prop_assert_eq!(
                    &r.refresh_token,
                    &model.tokens[c],
                    "grace answers with the held successor"
                );
            }
            (Expect::GraceMinted, Ok(r)) => {
                prop_assert!(r.grace, "a replay of the predecessor is a grace answer");
                prop_assert!(
                    !model.tokens.contains(&r.refresh_token),
                    "without the held successor, grace mints a new one"
                );
                model.rotated(r.refresh_token);
            }
            (Expect::Reused, Err(EngineError::RefreshTokenReused)) => {
                if model.revoked.is_none() {
                    model.revoke(Revocation::Reuse);
                    model.reuse_detections += 1;
                }
            }
            (Expect::Invalid, Err(EngineError::InvalidRefreshToken)) => {}
            (expected, got) => {
                return Err(TestCaseError::fail(format!(
                    "presenting token #{i}: expected {expected:?}, got {:?} (model: {model:?})",
                    got.map(|r| (r.grace, r.refresh_token))
                )))
            }
        }
        Ok(())
    }

    async fn logout(&mut self, i: usize) -> Result<(), TestCaseError> {
        self.model.touch_actor();
        let expected = self.model.expect_logout(i);
        let token = self.model.tokens[i].clone();
        let got = self.engine().logout_refresh_token(&token).await;
        match (expected, got) {
            (None, Ok(false)) => {}
            (Some(why), Ok(true)) => {
                // A retired token at logout is reuse too, and is audited as such.
                if why == Revocation::Reuse {
                    self.model.reuse_detections += 1;
                }
                self.model.revoke(why)
            }
            (expected, got) => {
                return Err(TestCaseError::fail(format!(
                    "logging out with token #{i}: expected {expected:?}, got {got:?} (model: {:?})",
                    self.model
                )))
            }
        }
        Ok(())
    }

    async fn forge(&mut self) -> Result<(), TestCaseError> {
        self.model.touch_actor();
        let forged = forged_token(&self.session_id);
        let rotated = self.engine().rotate_refresh_token(&forged).await;
        prop_assert!(
            matches!(rotated, Err(EngineError::InvalidRefreshToken)),
            "a forged token is invalid, got {:?}",
            rotated.map(|r| r.refresh_token)
        );
        let logged_out = self.engine().logout_refresh_token(&forged).await;
        prop_assert!(
            matches!(logged_out, Ok(false)),
            "logging out with a forged token does nothing, got {logged_out:?}"
        );
        Ok(())
    }

    async fn apply(&mut self, op: &Op) -> Result<(), TestCaseError> {
        match op {
            Op::Rotate => self.present(self.model.current).await,
            Op::Replay(ix) => self.present(ix.index(self.model.tokens.len())).await,
            Op::Logout(ix) => self.logout(ix.index(self.model.tokens.len())).await,
            Op::Forge => self.forge().await,
            Op::Advance(ms) => {
                self.clock.advance_ms(*ms);
                self.model.now += ms;
                Ok(())
            }
            Op::Restart => {
                let engine = self.engine.take().expect("an engine");
                self.engine = Some(
                    restart(
                        engine,
                        self.dir.path(),
                        engine_options(),
                        self.clock.clone(),
                    )
                    .await,
                );
                self.model.restarted();
                Ok(())
            }
        }
    }

    /// Compares what storage holds with the model.
    async fn check_storage(&mut self, after: &str) -> Result<(), TestCaseError> {
        let engine = self.engine();
        let m = &self.model;
        let family = engine
            .stored_refresh_family(&self.session_id)
            .await
            .expect("reading the family")
            .expect("a family outlives its session as a tombstone");
        prop_assert_eq!(&family.session_id, &self.session_id);
        prop_assert_eq!(&family.user_id, &self.user_id);

        // At most one live token (which one storage holds as current is pinned by
        // every presentation: only the model's current token rotates).
        let live: Vec<usize> = (0..m.tokens.len())
            .filter(|&j| m.expect_present(j) == Expect::Rotated)
            .collect();
        prop_assert!(live.len() <= 1, "more than one live token: {:?}", live);
        if family.revoked.is_some() || m.expired() {
            prop_assert!(live.is_empty(), "a token is live in a dead family");
        }

        prop_assert_eq!(
            family.generation,
            m.generation,
            "generation after {}",
            after
        );
        prop_assert_eq!(family.revoked, m.revoked, "revocation after {}", after);
        // The predecessor was retired by the last rotation (the grace window is
        // measured from it); before any rotation, the family is as it started.
        prop_assert_eq!(
            family.last_rotated_at,
            m.previous.map_or(m.started_at, |(_, at)| at),
            "when the predecessor was retired, after {}",
            after
        );
        prop_assert_eq!(family.idle_expires_at, m.idle_expires_at);
        prop_assert_eq!(family.absolute_expires_at, m.absolute_expires_at);

        // A revoked session is deleted.
        let sessions = engine
            .stored_sessions(&self.user_id)
            .await
            .expect("reading sessions");
        let ids: Vec<&str> = sessions.iter().map(|s| s.id.as_str()).collect();
        if m.revoked.is_some() {
            prop_assert!(ids.is_empty(), "a revoked session is still stored");
        } else {
            prop_assert_eq!(ids, vec![self.session_id.as_str()]);
        }

        // A revoked family answers without changing: present every token it
        // issued. Once revoked for reuse, each must be recognised as the
        // family's (the tombstone, its owner and every retired token are still
        // recorded), where a forged one is merely invalid.
        if m.revoked.is_some() {
            for j in 0..self.model.tokens.len() {
                self.present(j).await?;
            }
            let forged = forged_token(&self.session_id);
            let got = self.engine().rotate_refresh_token(&forged).await;
            prop_assert!(
                matches!(got, Err(EngineError::InvalidRefreshToken)),
                "a forged token of a revoked family is invalid, got {:?}",
                got.map(|r| r.refresh_token)
            );
        }
        Ok(())
    }
}

fn run_case(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(async {
        let Harness { engine, clock, dir } = Harness::start(engine_options()).await;
        let user = plain_user(&engine).await;
        let (session_id, first) = dashboard_login(&engine, &user.id).await;
        let mut case = Case {
            engine: Some(engine),
            clock,
            dir,
            user_id: user.id.clone(),
            session_id,
            model: Model::new(common::T0, first),
        };
        case.check_storage("login").await?;
        for (n, op) in ops.iter().enumerate() {
            case.apply(op).await?;
            case.check_storage(&format!("op {n} ({op:?})")).await?;
        }
        // Finally present every token ever issued, oldest first: whatever state the
        // family is in, each answer must still follow the rules.
        for i in 0..case.model.tokens.len() {
            case.present(i).await?;
            case.check_storage(&format!("final presentation of #{i}"))
                .await?;
        }
        // Once revoked (the sweep above revokes any live family that issued more
        // than one token), nothing works any more.
        if case.model.revoked.is_some() {
            for i in 0..case.model.tokens.len() {
                let got = case
                    .engine()
                    .rotate_refresh_token(&case.model.tokens[i])
                    .await;
                prop_assert!(got.is_err(), "token #{} works after revocation", i);
            }
            prop_assert!(case
                .engine()
                .list_sessions(&user.id)
                .await
                .unwrap()
                .is_empty());
        }
        let detections = case
            .engine()
            .recent_audit_events(10_000)
            .await
            .unwrap()
            .into_iter()
            .filter(|e| {
                e.kind == "refresh_reuse_detected"
                    && e.session_id.as_deref() == Some(case.session_id.as_str())
            })
            .count();
        prop_assert_eq!(
            detections,
            case.model.reuse_detections,
            "audited reuse detections"
        );
        case.engine().shutdown().await.expect("shutting down");
        drop(case);
        Ok(())
    })
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 64,
        ..ProptestConfig::default()
    })]

    #[test]
    fn refresh_families_follow_the_rotation_and_grace_rules(ops in prop::collection::vec(op(), 1..32)) {
        run_case(ops)?;
    }
}

/// The grace rule covers the immediate predecessor only: a token two rotations
/// old is reuse even inside the window, and revokes the whole family.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grace_never_reaches_back_past_the_immediate_predecessor() {
    let h = Harness::start(engine_options()).await;
    let user = plain_user(&h.engine).await;
    let (sid, t0) = dashboard_login(&h.engine, &user.id).await;
    let t1 = rotated(&h.engine, &t0).await;
    let t2 = rotated(&h.engine, &t1).await;

    let replay = h.engine.rotate_refresh_token(&t1).await.unwrap();
    assert!(replay.grace);
    assert_eq!(replay.refresh_token, t2);

    assert!(matches!(
        h.engine.rotate_refresh_token(&t0).await,
        Err(EngineError::RefreshTokenReused)
    ));
    let family = h.engine.stored_refresh_family(&sid).await.unwrap().unwrap();
    assert_eq!(family.revoked, Some(Revocation::Reuse));
    assert_eq!(family.generation, 2);
    assert!(h.engine.stored_sessions(&user.id).await.unwrap().is_empty());
    for token in [&t2, &t1, &t0] {
        assert!(matches!(
            h.engine.rotate_refresh_token(token).await,
            Err(EngineError::RefreshTokenReused)
        ));
    }
    let audited = h.engine.recent_audit_events(10).await.unwrap();
    assert!(audited
        .iter()
        .any(|e| e.kind == "refresh_reuse_detected" && e.session_id.as_deref() == Some(&sid)));
}

/// The predecessor presented after the grace window is reuse.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_predecessor_after_the_grace_window_is_reuse() {
    let h = Harness::start(engine_options()).await;
    let user = plain_user(&h.engine).await;
    let (sid, t0) = dashboard_login(&h.engine, &user.id).await;
    let t1 = rotated(&h.engine, &t0).await;
    h.clock.advance_ms(GRACE_MS);
    let inside = h.engine.rotate_refresh_token(&t0).await.unwrap();
    assert!(inside.grace);
    assert_eq!(inside.refresh_token, t1);
    h.clock.advance_ms(1);
    assert!(matches!(
        h.engine.rotate_refresh_token(&t0).await,
        Err(EngineError::RefreshTokenReused)
    ));
    assert!(matches!(
        h.engine.rotate_refresh_token(&t1).await,
        Err(EngineError::RefreshTokenReused)
    ));
    let family = h.engine.stored_refresh_family(&sid).await.unwrap().unwrap();
    assert_eq!(family.revoked, Some(Revocation::Reuse));
    // The replay inside the window changed nothing: t1 stayed the current token.
    assert_eq!(family.generation, 1);
    assert_eq!(family.last_rotated_at, common::T0);
    // Both tokens are the family's (reuse, above); a token it never issued is not.
    assert!(matches!(
        h.engine.rotate_refresh_token(&forged_token(&sid)).await,
        Err(EngineError::InvalidRefreshToken)
    ));
}
