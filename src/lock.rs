//! Cross-process locks: the session store's `sessions/.lock` (shared for reads, exclusive for
//! writes) and the config's (`config set` reads, edits and writes the file under it), with a
//! timeout. These are advisory locks (flock on Unix, LockFileEx on Windows, both through fs2), so
//! they die with their process: a crashed clinvk never blocks anyone, and the lock file itself is
//! never deleted (deleting it while held would let two writers in).

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use fs2::FileExt;

use crate::error::{Error, Result};
use crate::fsio::open_private;

pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockMode {
    Shared,
    Exclusive,
}

/// A held lock; released when dropped.
#[derive(Debug)]
pub struct LockGuard {
    file: File,
    pub mode: LockMode,
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        let _ = FileExt::unlock(&self.file);
    }
}

pub fn acquire(path: &Path, mode: LockMode, timeout: Duration) -> Result<LockGuard> {
    acquire_queued(path, mode, timeout, None)
}

/// `acquire`, and while it waits, a shared lock on `queue` (when that file can be opened), so
/// that a writer that holds the lock for long stretches, one after another (an import's
/// batches), can tell that someone waits between two of them (`someone_waits`) and let them in.
pub fn acquire_queued(
    path: &Path,
    mode: LockMode,
    timeout: Duration,
    queue: Option<&Path>,
) -> Result<LockGuard> {
    let file = open_private(
        path,
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false),
    )
    .or_else(|e| match e.kind() {
        // A read-only store (a read-only mount, a backup): flock needs no write access, so the
        // lock still keeps readers and writers apart where writing is possible at all.
        std::io::ErrorKind::ReadOnlyFilesystem | std::io::ErrorKind::PermissionDenied => {
            File::open(path).map_err(|_| e)
        }
        _ => Err(e),
    })
    .map_err(|e| Error::io(path, e))?;
    let start = Instant::now();
    let mut pause = Duration::from_millis(1);
    // Held while waiting, dropped with the wait.
    let mut waiting: Option<File> = None;
    loop {
        let attempt = match mode {
            LockMode::Shared => FileExt::try_lock_shared(&file),
            LockMode::Exclusive => FileExt::try_lock_exclusive(&file),
        };
        match attempt {
            Ok(()) => return Ok(LockGuard { file, mode }),
            Err(e)
                if e.kind() == fs2::lock_contended_error().kind()
                    || e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(Error::io(path, e)),
        }
        if waiting.is_none() {
            waiting = queue.and_then(join_queue);
        }
        let waited = start.elapsed();
        if waited >= timeout {
            return Err(Error::LockTimeout {
                path: PathBuf::from(path),
                waited,
            });
        }
        std::thread::sleep(pause.min(timeout - waited));
        pause = (pause * 2).min(LONGEST_PAUSE);
    }
}

/// The longest pause between two tries of `acquire`: a writer that leaves the lock free this
/// long lets every waiter try once.
pub const LONGEST_PAUSE: Duration = Duration::from_millis(50);

/// A shared lock on `queue`: this process waits. None if the file cannot be opened (its
/// directory is not there yet, a read-only store) or is being probed at this instant.
fn join_queue(queue: &Path) -> Option<File> {
    let file = open_private(
        queue,
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false),
    )
    .ok()?;
    FileExt::try_lock_shared(&file).ok()?;
    Some(file)
}

/// Whether some process waits for the lock whose queue is `queue` (see `acquire_queued`).
pub fn someone_waits(queue: &Path) -> bool {
    let Ok(file) = File::open(queue) else {
        return false;
    };
    match FileExt::try_lock_exclusive(&file) {
        Ok(()) => {
            let _ = FileExt::unlock(&file);
            false
        }
        Err(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_waiter_is_seen_until_it_has_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let (lock, queue) = (dir.path().join(".lock"), dir.path().join("waiters.lock"));
        let held = acquire(&lock, LockMode::Exclusive, Duration::ZERO).unwrap();
        assert!(!someone_waits(&queue), "nobody waits yet");
        let (release, released) = std::sync::mpsc::channel::<()>();
        let waiter = {
            let (lock, queue) = (lock.clone(), queue.clone());
            std::thread::spawn(move || {
                let guard = acquire_queued(
                    &lock,
                    LockMode::Shared,
                    Duration::from_secs(10),
                    Some(&queue),
                )
                .unwrap();
                // Held until the test has seen it held.
                released.recv().unwrap();
                drop(guard);
            })
        };
        let start = Instant::now();
        while !someone_waits(&queue) {
            assert!(
                start.elapsed() < Duration::from_secs(5),
                "the waiter is never seen"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        drop(held);
        // It leaves the queue as it takes the lock, and holds it.
        let start = Instant::now();
        while someone_waits(&queue) {
            assert!(
                start.elapsed() < Duration::from_secs(5),
                "the waiter never got in"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(acquire(&lock, LockMode::Exclusive, Duration::ZERO).is_err());
        release.send(()).unwrap();
        waiter.join().unwrap();
        acquire(&lock, LockMode::Exclusive, Duration::ZERO).unwrap();
    }
}
