//! The virtual-actor router: user id → live `UserActor`.
//!
//! An actor is activated by the first message for its user (concurrent first
//! messages share one activation) and passivated when idle or when the live set
//! passes its bound. Passivation is decided by the actor itself, between two
//! messages, by asking the router to let it go: after that, nothing can reach it,
//! and anything already queued in its mailbox is dropped unanswered so the caller
//! retries against the next activation. No message is lost and no two actors of
//! one user ever run at once.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ractor::{Actor, ActorRef};
use tokio::sync::{Notify, OnceCell};

use crate::engine::Shared;
use crate::messages::UserMsg;
use crate::user_actor::UserActor;
use crate::EngineError;

struct Slot {
    actor: OnceCell<ActorRef<UserMsg>>,
    /// Milliseconds since the router started, at the last message routed here.
    last_used: AtomicU64,
    /// A `Passivate` is on its way to the actor: do not send another.
    passivation_requested: AtomicBool,
}

pub(crate) struct Router {
    slots: Mutex<HashMap<Arc<str>, Arc<Slot>>>,
    started: Instant,
    idle_ms: u64,
    max_live: usize,
    /// Wakes the maintenance task: the live set passed its bound, or shutdown began.
    pub(crate) wake_maintenance: Arc<Notify>,
}

impl Router {
    pub(crate) fn new(idle: Duration, max_live: usize) -> Router {
        Router {
            slots: Mutex::new(HashMap::new()),
            started: Instant::now(),
            idle_ms: idle.as_millis() as u64,
            max_live,
            wake_maintenance: Arc::new(Notify::new()),
        }
    }

    fn elapsed_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// How many actors are live or activating.
    pub(crate) fn live_count(&self) -> usize {
        self.slots.lock().expect("router lock").len()
    }

    /// The slot of `user_id`, creating it if needed. Creating one past the bound
    /// plus 10 % waits (at most about a second) for eviction to catch up, so the
    /// live set stays bounded even when activations outpace passivation.
    async fn slot_for(&self, user_id: &str) -> Arc<Slot> {
        let ceiling = self.max_live + (self.max_live / 10).max(1);
        for attempt in 0.. {
            {
                let mut slots = self.slots.lock().expect("router lock");
                if let Some(slot) = slots.get(user_id) {
                    return slot.clone();
                }
                if slots.len() < ceiling || attempt >= 1_000 {
                    let slot = Arc::new(Slot {
                        actor: OnceCell::new(),
                        last_used: AtomicU64::new(0),
                        passivation_requested: AtomicBool::new(false),
                    });
                    slots.insert(user_id.into(), slot.clone());
                    metrics::gauge!("tachigo_engine_live_actors").set(slots.len() as f64);
                    if slots.len() > self.max_live {
                        self.wake_maintenance.notify_one();
                    }
                    return slot;
                }
            }
            self.wake_maintenance.notify_one();
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        unreachable!("the loop returns by its 1,000th attempt")
    }

    /// The actor for `user_id`, activating it (once) if needed.
    pub(crate) async fn actor_for(
        &self,
        user_id: &str,
        shared: &Arc<Shared>,
    ) -> Result<ActorRef<UserMsg>, EngineError> {
        let slot = self.slot_for(user_id).await;
        slot.last_used.store(self.elapsed_ms(), Ordering::Relaxed);
        let activated = slot
            .actor
            .get_or_try_init(|| async {
                let (actor, _) = Actor::spawn(
                    None,
                    UserActor {
                        shared: shared.clone(),
                    },
                    user_id.to_string(),
                )
                .await
                .map_err(|e| activation_error(user_id, e))?;
                metrics::counter!("tachigo_engine_activations_total").increment(1);
                Ok::<_, EngineError>(actor)
            })
            .await;
        match activated {
            Ok(actor) => Ok(actor.clone()),
            Err(e) => {
                self.remove_if(user_id, |s| Arc::ptr_eq(s, &slot));
                Err(e)
            }
        }
    }

    fn remove_if(&self, user_id: &str, pred: impl FnOnce(&Arc<Slot>) -> bool) -> bool {
        let mut slots = self.slots.lock().expect("router lock");
        let remove = slots.get(user_id).is_some_and(pred);
        if remove {
            slots.remove(user_id);
            metrics::gauge!("tachigo_engine_live_actors").set(slots.len() as f64);
        }
        remove
    }

    /// Called by an actor between messages: lets it go if it is still the routed
    /// actor for its user and is idle (or `force`). After `true`, the actor must stop;
    /// after `false` (it became busy again), a later pass may ask again.
    pub(crate) fn release(&self, user_id: &str, actor: &ActorRef<UserMsg>, force: bool) -> bool {
        let now = self.elapsed_ms();
        let mut slots = self.slots.lock().expect("router lock");
        let Some(slot) = slots.get(user_id) else {
            return false;
        };
        if slot
            .actor
            .get()
            .is_none_or(|a| a.get_id() != actor.get_id())
        {
            return false;
        }
        let idle = now.saturating_sub(slot.last_used.load(Ordering::Relaxed)) >= self.idle_ms;
        if !(force || idle) {
            slot.passivation_requested.store(false, Ordering::Relaxed);
            return false;
        }
        slots.remove(user_id);
        metrics::gauge!("tachigo_engine_live_actors").set(slots.len() as f64);
        metrics::counter!("tachigo_engine_passivations_total").increment(1);
        true
    }

    /// Forgets an actor that no longer answers (it stopped or failed).
    pub(crate) fn forget(&self, user_id: &str, actor: &ActorRef<UserMsg>) {
        self.remove_if(user_id, |slot| {
            slot.actor
                .get()
                .is_some_and(|a| a.get_id() == actor.get_id())
        });
    }

    /// Asks idle actors to passivate, and the least recently used ones past the
    /// bound (with 5 % headroom, so a busy engine does not evict one at a time).
    /// An actor already asked is not asked again until it answers.
    pub(crate) fn passivate_idle_and_excess(&self) {
        let now = self.elapsed_ms();
        let (mut candidates, live) = {
            let slots = self.slots.lock().expect("router lock");
            let candidates: Vec<(u64, Arc<Slot>)> = slots
                .values()
                .filter(|s| s.actor.get().is_some())
                .map(|s| (s.last_used.load(Ordering::Relaxed), s.clone()))
                .collect();
            (candidates, slots.len())
        };
        let excess = if live > self.max_live {
            live - self.max_live + self.max_live / 20
        } else {
            0
        };
        candidates.sort_unstable_by_key(|(last_used, _)| *last_used);
        for (i, (last_used, slot)) in candidates.into_iter().enumerate() {
            let force = i < excess;
            if !force && now.saturating_sub(last_used) < self.idle_ms {
                break;
            }
            if slot.passivation_requested.swap(true, Ordering::Relaxed) {
                continue;
            }
            if let Some(actor) = slot.actor.get() {
                let _ = actor.cast(UserMsg::Passivate { force });
            }
        }
    }

    /// Asks the live actors of the users `moved` picks to passivate now (in a
    /// cluster: users another node owns after a membership change); how many.
    pub(crate) fn passivate_where(&self, moved: impl Fn(&str) -> bool) -> usize {
        let actors: Vec<ActorRef<UserMsg>> = {
            let slots = self.slots.lock().expect("router lock");
            slots
                .iter()
                .filter(|(user_id, _)| moved(user_id))
                .filter_map(|(_, s)| s.actor.get().cloned())
                .collect()
        };
        for actor in &actors {
            let _ = actor.cast(UserMsg::Passivate { force: true });
        }
        actors.len()
    }

    /// Stops every actor (shutdown).
    pub(crate) fn stop_all(&self) {
        let actors: Vec<ActorRef<UserMsg>> = {
            let slots = self.slots.lock().expect("router lock");
            slots
                .values()
                .filter_map(|s| s.actor.get().cloned())
                .collect()
        };
        for actor in actors {
            let _ = actor.cast(UserMsg::Passivate { force: true });
        }
    }

    /// How often to look for idle actors.
    pub(crate) fn sweep_interval(&self) -> Duration {
        Duration::from_millis((self.idle_ms / 4).clamp(20, 30_000))
    }
}

/// What a failed activation means: the engine error `pre_start` returned
/// (found by type, never by message text), or a failure to log and report as
/// unavailable.
fn activation_error(user_id: &str, e: ractor::SpawnErr) -> EngineError {
    if let ractor::SpawnErr::StartupFailed(cause) = &e {
        if let Some(engine_error) = cause.downcast_ref::<EngineError>() {
            return match engine_error {
                EngineError::UserNotFound => EngineError::UserNotFound,
                EngineError::Storage(reason) => EngineError::Storage(reason.clone()),
                other => {
                    tracing::error!(user_id, error = %other, "actor activation failed");
                    EngineError::Unavailable
                }
            };
        }
    }
    tracing::error!(user_id, error = %e, "actor activation failed");
    EngineError::Unavailable
}
