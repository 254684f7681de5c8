//! Group commit: one thread calls `sled::Db::flush()` and wakes every writer
//! whose write happened before that flush began.
//!
//! A writer first applies its change to sled (in memory), then calls
//! [`Durability::wait_durable`]. The request reaches the flusher after the write, so
//! the next flush covers it. Many writers share one flush, which is how this
//! reaches tens of thousands of durable writes per second where one `fsync` per
//! request would not; and it never calls `flush_async`, which hangs under
//! concurrency in sled 0.34.7.
//!
//! A flush costs more than its `fsync`: sled seals a buffer and hands its write
//! to its IO pool, which wakes all of its waiting threads at once. So when the
//! last flush served more than one writer (writes are arriving together), the
//! flusher first waits [`COMMIT_WINDOW`] for more writers to join, as
//! PostgreSQL's `commit_delay` does when other transactions are active. A lone
//! writer is never delayed: its flush starts as soon as it asks.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use crate::StorageError;

type Waiter = oneshot::Sender<Result<(), String>>;

/// How long a flush under concurrent writes waits for more writers to join it.
/// Measured in `bench/` (dashboard-refresh, 64 users): a third as many flushes,
/// and the server's CPU per durable refresh from 101–119 µs to 69–77 µs
/// (together with sleeping through it, see [`gather`]), for at most this much
/// added latency.
pub const COMMIT_WINDOW: Duration = Duration::from_micros(300);

/// The most waiters one flush serves; more wait for the next.
const MAX_BATCH: usize = 1024;

/// How mutating calls wait for their writes.
#[derive(Clone)]
pub enum Durability {
    /// Every acknowledged write has been flushed to disk.
    GroupCommit(mpsc::Sender<Waiter>),
    /// Writes reach disk whenever sled decides: for throw-away benchmarks only.
    None,
}

impl Durability {
    /// Starts the flusher thread for `db`. It stops when every handle is
    /// dropped, then drops `db` and, last, `store_handle`. `healthy` tells
    /// whether the last flush succeeded.
    pub fn start_group_commit(
        db: sled::Db,
        store_handle: Arc<super::DirLock>,
        healthy: Arc<AtomicBool>,
    ) -> Durability {
        let (tx, rx) = mpsc::channel::<Waiter>();
        thread::Builder::new()
            .name("tachigo-flusher".into())
            .spawn(move || {
                flusher_loop(db, rx, &healthy);
                drop(store_handle);
            })
            .expect("spawning the flusher thread");
        Durability::GroupCommit(tx)
    }

    /// Resolves once everything written before this call is on disk.
    pub async fn wait_durable(&self) -> Result<(), StorageError> {
        match self {
            Durability::None => Ok(()),
            Durability::GroupCommit(tx) => {
                let (done, wait) = oneshot::channel();
                tx.send(done).map_err(|_| StorageError::FlusherStopped)?;
                match wait.await {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(e)) => Err(StorageError::Corrupt(format!("flush failed: {e}"))),
                    Err(_) => Err(StorageError::FlusherStopped),
                }
            }
        }
    }
}

/// Adds the waiters that arrive within [`COMMIT_WINDOW`] to `batch`. The
/// flusher sleeps through the window rather than waiting on the channel: a
/// writer's send to a sleeping flusher is a queue push, where one to a flusher
/// blocked in `recv` would wake it (a system call and a context switch) for
/// every writer that joins.
fn gather(rx: &mpsc::Receiver<Waiter>, batch: &mut Vec<Waiter>) {
    thread::sleep(COMMIT_WINDOW);
    let room = MAX_BATCH.saturating_sub(batch.len());
    batch.extend(rx.try_iter().take(room));
}

fn flusher_loop(db: sled::Db, rx: mpsc::Receiver<Waiter>, healthy: &AtomicBool) {
    let mut batch: Vec<Waiter> = Vec::with_capacity(256);
    let mut last_batch = 0;
    while let Ok(first) = rx.recv() {
        batch.push(first);
        batch.extend(rx.try_iter().take(MAX_BATCH - 1));
        if last_batch > 1 {
            gather(&rx, &mut batch);
        }
        last_batch = batch.len();
        let started = Instant::now();
        let outcome = db.flush().map(|_| ()).map_err(|e| e.to_string());
        metrics::histogram!("tachigo_storage_flush_seconds")
            .record(started.elapsed().as_secs_f64());
        metrics::histogram!("tachigo_storage_flush_batch_size").record(batch.len() as f64);
        if let Err(e) = &outcome {
            tracing::error!(error = %e, "storage flush failed");
        }
        healthy.store(outcome.is_ok(), Ordering::Release);
        for waiter in batch.drain(..) {
            let _ = waiter.send(outcome.clone());
        }
    }
}
