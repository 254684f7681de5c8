//! [`ReleaseWatch`]: tells when every handle to a store is gone, so what it
//! held (sled's directory lock, a pool's connections) is free for the next opener.

use std::sync::Arc;

/// See [`crate::Store::release_watch`].
pub struct ReleaseWatch(Box<dyn Fn() -> bool + Send + Sync>);

impl ReleaseWatch {
    /// Watches `handles`: released once every strong reference is dropped.
    pub fn new<T: Send + Sync + 'static>(handles: &Arc<T>) -> ReleaseWatch {
        let weak = Arc::downgrade(handles);
        ReleaseWatch(Box::new(move || weak.strong_count() == 0))
    }

    pub fn is_released(&self) -> bool {
        (self.0)()
    }

    /// Waits until the store is released or `limit` passes; true if released.
    pub async fn wait(&self, limit: std::time::Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        while !self.is_released() {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        true
    }
}
