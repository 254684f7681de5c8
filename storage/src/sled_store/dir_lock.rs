//! [`DirLock`]: the data directory's own exclusive lock, taken before sled
//! opens it. sled 0.34 reports its lock failure only as message text; this
//! lock fails with the operating system's `EWOULDBLOCK`, so "another process
//! holds the directory" is recognised by its error code, never by a message.

use std::fs::{File, OpenOptions};
use std::os::unix::io::AsRawFd;
use std::path::Path;
use std::time::Duration;

use crate::StorageError;

/// Held for as long as the database is open; dropping it releases the lock.
pub struct DirLock {
    _file: File,
}

impl DirLock {
    /// Takes `dir/tachigo.lock`. A lock held by a process that is just
    /// exiting is waited for (up to two seconds); one still held after that
    /// is [`StorageError::Locked`].
    pub fn acquire(dir: &Path) -> Result<DirLock, StorageError> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join("tachigo.lock"))
            .map_err(|e| StorageError::Sled(e.into()))?;
        for _ in 0..20 {
            // SAFETY: flock on a descriptor this function owns.
            if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
                return Ok(DirLock { _file: file });
            }
            let error = std::io::Error::last_os_error();
            if error.raw_os_error() != Some(libc::EWOULDBLOCK) {
                return Err(StorageError::Sled(error.into()));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(StorageError::Locked {
            dir: dir.display().to_string(),
        })
    }
}
