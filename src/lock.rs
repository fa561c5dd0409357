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
        let waited = start.elapsed();
        if waited >= timeout {
            return Err(Error::LockTimeout {
                path: PathBuf::from(path),
                waited,
            });
        }
        std::thread::sleep(pause.min(timeout - waited));
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}
