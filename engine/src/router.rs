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
use std::sync::atomic::{AtomicU64, Ordering};
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
}

pub(crate) struct Router {
    slots: Mutex<HashMap<Arc<str>, Arc<Slot>>>,
    started: Instant,
    idle_ms: u64,
    max_live: usize,
    /// Woken when the live set passes its bound.
    pub(crate) over_bound: Notify,
}

impl Router {
    pub(crate) fn new(idle: Duration, max_live: usize) -> Router {
        Router {
            slots: Mutex::new(HashMap::new()),
            started: Instant::now(),
            idle_ms: idle.as_millis() as u64,
            max_live,
            over_bound: Notify::new(),
        }
    }

    fn elapsed_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// How many actors are live or activating.
    pub(crate) fn live_count(&self) -> usize {
        self.slots.lock().expect("router lock").len()
    }

    /// The actor for `user_id`, activating it (once) if needed.
    pub(crate) async fn actor_for(
        &self,
        user_id: &str,
        shared: &Arc<Shared>,
    ) -> Result<ActorRef<UserMsg>, EngineError> {
        let slot = {
            let mut slots = self.slots.lock().expect("router lock");
            match slots.get(user_id) {
                Some(slot) => slot.clone(),
                None => {
                    let slot = Arc::new(Slot {
                        actor: OnceCell::new(),
                        last_used: AtomicU64::new(0),
                    });
                    slots.insert(user_id.into(), slot.clone());
                    metrics::gauge!("tachigo_engine_live_actors").set(slots.len() as f64);
                    if slots.len() > self.max_live {
                        self.over_bound.notify_one();
                    }
                    slot
                }
            }
        };
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
                .map_err(|e| {
                    if e.to_string().contains("no such user") {
                        EngineError::UserNotFound
                    } else {
                        tracing::error!(user_id, error = %e, "actor activation failed");
                        EngineError::Unavailable
                    }
                })?;
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
    /// actor for its user and is idle (or `force`). After `true`, the actor must stop.
    pub(crate) fn release(&self, user_id: &str, actor: &ActorRef<UserMsg>, force: bool) -> bool {
        let now = self.elapsed_ms();
        let released = self.remove_if(user_id, |slot| {
            slot.actor
                .get()
                .is_some_and(|a| a.get_id() == actor.get_id())
                && (force
                    || now.saturating_sub(slot.last_used.load(Ordering::Relaxed)) >= self.idle_ms)
        });
        if released {
            metrics::counter!("tachigo_engine_passivations_total").increment(1);
        }
        released
    }

    /// Forgets an actor that no longer answers (it stopped or failed).
    pub(crate) fn forget(&self, user_id: &str, actor: &ActorRef<UserMsg>) {
        self.remove_if(user_id, |slot| {
            slot.actor
                .get()
                .is_some_and(|a| a.get_id() == actor.get_id())
        });
    }

    /// Asks idle actors to passivate, and the least recently used ones past the bound.
    pub(crate) fn passivate_idle_and_excess(&self) {
        let now = self.elapsed_ms();
        let mut candidates: Vec<(u64, ActorRef<UserMsg>)> = {
            let slots = self.slots.lock().expect("router lock");
            slots
                .values()
                .filter_map(|s| {
                    s.actor
                        .get()
                        .map(|a| (s.last_used.load(Ordering::Relaxed), a.clone()))
                })
                .collect()
        };
        let excess = candidates.len().saturating_sub(self.max_live);
        candidates.sort_unstable_by_key(|(last_used, _)| *last_used);
        for (i, (last_used, actor)) in candidates.into_iter().enumerate() {
            let force = i < excess;
            if force || now.saturating_sub(last_used) >= self.idle_ms {
                let _ = actor.cast(UserMsg::Passivate { force });
            } else {
                break;
            }
        }
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
