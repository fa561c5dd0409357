//! Rebuilding the index while commands go on. The new index is built from the files beside the
//! live one (in `.index-rebuild/`) without the store lock: readers answer from the live
//! index, writers write as always. A watch on the directory names every session file that
//! changed meanwhile; under the exclusive lock, just before the new index takes the live one's
//! place, those are read again (or, if the watch lost count, every file's stamp is compared), so
//! that no write made during the build is missing from it. The lock is held for that catch-up
//! and the swap only: milliseconds, not the minutes a million files take.
//!
//! One rebuild at a time (`.index-rebuild/rebuild.lock`). A command that finds the index unusable
//! while another rebuilds it waits for that rebuild rather than starting its own, or failing.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use super::files::{self, FileStamp};
use super::index::{Index, Unusable};
use super::{watch, Notice, ReindexReport, Store};
use crate::error::Result;
use crate::lock::{self, LockMode};
use crate::timespec::Zone;

/// Where a rebuild builds the new index, and the lock that lets one rebuild run at a time.
/// Inside a directory of its own, so that the new index's files coming and going do not move
/// the sessions directory's mtime (which would send every command to compare every file).
pub const REBUILD_DIR: &str = ".index-rebuild";
const REBUILD_LOCK: &str = "rebuild.lock";
const NEW_INDEX: &str = "index.db";

/// How long a command waits for another's rebuild or import (a million files take about a
/// minute).
const LONG_WAIT: Duration = Duration::from_secs(15 * 60);
/// How often the watch is read during the build, so that its kernel queue never overflows.
const WATCH_POLL: Duration = Duration::from_millis(50);

/// Why an index is rebuilt, which says whether another process's rebuild does instead.
pub(super) enum Rebuild {
    /// `sessions reindex`: always, and stale temp files are removed first.
    Asked,
    /// The index could not be used (`why`); `seen` is the file found then (None: missing). If
    /// another rebuild replaced it meanwhile with a usable one, that one is used.
    Unusable { why: String, seen: Option<i64> },
    /// A question moved the usage rollup to `zone` at `at`; not if it is there already.
    Zone {
        zone: Zone,
        at: DateTime<Utc>,
        why: String,
    },
}

/// Session files the watch saw change during a build (by stem), or that it lost count.
#[derive(Default)]
struct Changed {
    stems: Mutex<HashSet<String>>,
    lost: AtomicBool,
}

impl Changed {
    fn poll(&self, watch: Option<&watch::Watch>) {
        let Some(watch) = watch else {
            self.lost.store(true, Ordering::Relaxed);
            return;
        };
        match watch.seen() {
            watch::Seen::Events(events) => {
                let mut stems = self.stems.lock().unwrap_or_else(|e| e.into_inner());
                for (_, name) in events {
                    let name = name.to_string_lossy();
                    if let Some(stem) = name.strip_suffix(".json").filter(|s| !s.starts_with('.')) {
                        stems.insert(stem.to_string());
                    }
                }
            }
            watch::Seen::Unknown => self.lost.store(true, Ordering::Relaxed),
        }
    }
}

/// A link to the replaced index in the rebuild's directory (see `rebuild_beside`).
const OLD_INDEX: &str = "old-index.db";

/// Removes its file when dropped (after the lock, which is dropped before it).
struct Unlink(std::path::PathBuf);

impl Drop for Unlink {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Hand the memory freed so far back to the system (glibc keeps freed blocks to reuse, and
/// sorts them all out at the next big allocation).
fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only reorganises the allocator's own free lists.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// The inode of the index file at `path`, if there is one (to tell a replaced index apart).
pub(super) fn index_inode(path: &Path) -> Option<i64> {
    std::fs::symlink_metadata(path)
        .ok()
        .map(|m| FileStamp::of(&m).ino)
}

impl Store {
    /// Rebuild the index from the files beside the live one (see the module's comment). None
    /// when another process's rebuild made this one unnecessary.
    pub(super) fn rebuild_beside(&self, why: Rebuild) -> Result<Option<ReindexReport>> {
        let start = Instant::now();
        let work = self.dir.join(REBUILD_DIR);
        let _one = self
            .one_at_a_time(REBUILD_LOCK, Some(Notice::WaitingForRebuild))?
            .expect("waited for");
        // A copy of an old index that a rebuild killed during its swap left (see below).
        let _ = std::fs::remove_file(work.join(OLD_INDEX));
        if self.rebuilt_meanwhile(&why)? {
            return Ok(None);
        }
        // What only the exclusive lock allows: no write is under way, so temp files are stale
        // and a deletion the journal lists is left half done. The temp files are looked for
        // before it (reading a big directory takes a while): writes make them under that lock,
        // so one there now is stale or gone by the time this one has the lock (one made after
        // the look, by a write that then failed, waits for the next rebuild).
        let stale = match why {
            Rebuild::Asked => files::temp_files(&self.dir)?,
            _ => Vec::new(),
        };
        let (removed_temp_files, zone, moved_at) = {
            let _exclusive = self.lock(LockMode::Exclusive)?;
            self.finish_deletion()?;
            let removed = crate::fsio::remove_all(&stale)?;
            let (zone, moved_at) = match &why {
                Rebuild::Zone { zone, at, .. } => (Some(*zone), Some(*at)),
                _ => self.kept_rollup(),
            };
            (removed, zone, moved_at)
        };

        let new_path = work.join(NEW_INDEX);
        let watch = watch::Watch::start_with_writes(&self.dir);
        let changed = Changed::default();
        let done = AtomicBool::new(false);
        let built = std::thread::scope(|scope| {
            let (watch, changed, done_ref) = (watch.as_ref(), &changed, &done);
            scope.spawn(move || {
                while !done_ref.load(Ordering::Relaxed) {
                    changed.poll(watch);
                    std::thread::sleep(WATCH_POLL);
                }
            });
            // Stops the poller however the build ends, a panic included (the scope waits for
            // it before letting the panic go on).
            struct Done<'a>(&'a AtomicBool);
            impl Drop for Done<'_> {
                fn drop(&mut self) {
                    self.0.store(true, Ordering::Relaxed);
                }
            }
            let _done = Done(&done);
            self.build_fresh(&new_path, zone, moved_at)
        });
        let mut index = built?;

        // What holds the lock below must be quick at any size (at 1M sessions it took a second
        // before these two): the old index's file is linked aside, so that renaming the new one
        // over it does not free its blocks (a 1.5 GB file's take half a second) until the link
        // goes, after the lock; and the memory the build freed is handed back now, or the next
        // big allocation under the lock would first sort through millions of freed blocks.
        // (Linked under the lock, a matter of microseconds: the index it finds there is the
        // one the swap replaces, even if another clinvk replaced it meanwhile.)
        let _old = Unlink(work.join(OLD_INDEX));
        release_freed_memory();
        let _exclusive = self.lock(LockMode::Exclusive)?;
        let _ = std::fs::hard_link(&self.index_path, &_old.0);
        // From here on only the index's own files should come and go (see `install_rebuilt`).
        let swap_watch = watch::Watch::start(&self.dir);
        let caught_up = (|| {
            self.finish_deletion()?;
            self.catch_up(&mut index, watch.as_ref(), &changed)
        })();
        caught_up.inspect_err(|_| Index::discard(&new_path))?;
        let (_, mut report) = self.install_rebuilt(index, swap_watch.as_ref())?;
        report.removed_temp_files = removed_temp_files;
        report.elapsed = start.elapsed();
        self.announce(&why, &report);
        Ok(Some(report))
    }

    /// Read again what changed during the build (caller holds the exclusive lock).
    fn catch_up(
        &self,
        index: &mut Index,
        watch: Option<&watch::Watch>,
        changed: &Changed,
    ) -> Result<()> {
        // The stamp first: a change after it moves the directory past it, and the next command
        // compares the files; a change before it is in the watch's queue after the barrier.
        let stamp = files::stable_dir_stamp(&self.dir)?;
        watch::Watch::barrier(&self.dir);
        changed.poll(watch);
        if changed.lost.load(Ordering::Relaxed) {
            return self.reconcile(index, false);
        }
        let stems = std::mem::take(&mut *changed.stems.lock().unwrap_or_else(|e| e.into_inner()));
        let tx = index.transaction()?;
        self.reload(&tx, stems)?;
        tx.set_dir_stamp(stamp)?;
        tx.commit()
    }

    /// Whether the rebuild `why` asks for was done by someone else while this one waited.
    fn rebuilt_meanwhile(&self, why: &Rebuild) -> Result<bool> {
        match why {
            Rebuild::Asked => Ok(false),
            Rebuild::Unusable { seen, .. } => {
                // A rebuild puts a new file there (a new inode); a write to the damaged one
                // only changes its size and times.
                if index_inode(&self.index_path) == *seen {
                    return Ok(false);
                }
                Ok(matches!(
                    Index::open_existing(&self.index_path)?,
                    Ok(_) | Err(Unusable::Outdated(_))
                ))
            }
            Rebuild::Zone { zone, .. } => Ok(match Index::open_existing(&self.index_path)? {
                Ok(index) => index.rollup_zone() == *zone,
                Err(_) => false,
            }),
        }
    }

    /// One of the locks that let one long job of a kind run at a time (`name`, in the rebuild's
    /// directory, which is made if need be). With `waiting`, waited for (at most 15 min, saying
    /// so with that notice if another process holds it); without, None while another holds it.
    pub(super) fn one_at_a_time(
        &self,
        name: &str,
        waiting: Option<Notice>,
    ) -> Result<Option<lock::LockGuard>> {
        let work = self.dir.join(REBUILD_DIR);
        self.make_rebuild_dir(&work)?;
        let path = work.join(name);
        match lock::acquire(&path, LockMode::Exclusive, Duration::ZERO) {
            Ok(guard) => Ok(Some(guard)),
            Err(crate::error::Error::LockTimeout { .. }) => match waiting {
                Some(notice) => {
                    self.observer.notice(&notice);
                    lock::acquire(&path, LockMode::Exclusive, LONG_WAIT).map(Some)
                }
                None => Ok(None),
            },
            Err(e) => Err(e),
        }
    }

    /// The rebuild's directory, made once. Under the exclusive lock, so that making it (which
    /// moves the sessions directory's mtime) does not make the live index look out of date.
    /// Anything else at its place (a file, a symbolic link, which could lead anywhere) is moved
    /// aside untouched, as for the index itself.
    fn make_rebuild_dir(&self, work: &Path) -> Result<()> {
        let is_dir = |p: &Path| std::fs::symlink_metadata(p).is_ok_and(|m| m.is_dir());
        if is_dir(work) {
            return Ok(());
        }
        let _exclusive = self.lock(LockMode::Exclusive)?;
        if std::fs::symlink_metadata(work).is_ok() && !is_dir(work) {
            move_aside(work)?;
        }
        // The watch first: a change after it is seen, one before it is in the stamp compared.
        let watch = watch::Watch::start(&self.dir);
        let current = files::DirStamp::of(&self.dir)?.key();
        // A damaged index is no reason not to make the directory its rebuild needs.
        let fresh = Index::open_existing(&self.index_path)
            .ok()
            .and_then(Result::ok)
            .filter(|index| matches!(index.dir_stamp(), Ok(Some(s)) if s == current));
        crate::fsio::ensure_private_dir(work, true)?;
        if let Some(mut index) = fresh {
            if super::sync::only_index_files_changed(&self.dir, watch.as_ref()) {
                let tx = index.transaction()?;
                tx.set_dir_stamp(files::stable_dir_stamp(&self.dir)?)?;
                tx.commit()?;
            }
        }
        Ok(())
    }

    /// Say what was rebuilt and why, unless it was asked for (`reindex` reports it itself).
    fn announce(&self, why: &Rebuild, report: &ReindexReport) {
        let why = match why {
            Rebuild::Asked => return,
            Rebuild::Unusable { why, .. } | Rebuild::Zone { why, .. } => why.clone(),
        };
        self.announce_rebuilt(why, report);
    }
}

/// Move `path` to the first free `<path>.aside-N`.
fn move_aside(path: &Path) -> Result<PathBuf> {
    for n in 1.. {
        let mut name = path.as_os_str().to_os_string();
        name.push(format!(".aside-{n}"));
        let aside = PathBuf::from(name);
        if std::fs::symlink_metadata(&aside).is_err() {
            std::fs::rename(path, &aside).map_err(|e| crate::error::Error::io(path, e))?;
            return Ok(aside);
        }
    }
    unreachable!("some name is free")
}

/// The new index's place (for tests that stop a rebuild half-way).
pub fn new_index_path(sessions: &Path) -> PathBuf {
    sessions.join(REBUILD_DIR).join(NEW_INDEX)
}
