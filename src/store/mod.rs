//! The session store: JSON files (the truth) in one directory, an SQLite index beside them (a
//! cache that heals itself), and a cross-process lock that orders every change.
//!
//! Protocol: reads take the shared lock and use the index if it is present, of this schema and
//! reconciled with the directory's current mtime; otherwise they take the exclusive lock and
//! bring it up to date first (rebuild, migrate or rescan). Writes take the exclusive lock, write
//! the file atomically, then update the index in one transaction and record the new mtime.

pub mod files;
pub mod index;
pub mod lock;
pub mod query;
pub mod session;
mod sql;
pub mod usage;
mod watch;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use crate::error::{Error, Result};
use files::{DirEntry, DirStamp, FileStamp};
use index::{Index, Unusable};
use lock::LockMode;

pub use crate::domain::{Backend, SessionId, Status};
use crate::timespec::Zone;
pub use query::{Filter, InvalidFile, ListQuery, SessionSummary};
pub use session::{Session, TokenUsage};
pub use usage::{Dimension, ModelPart, StatsGroup, StatsQuery, StatsResult, UsageSums};

/// The index file, hidden inside `sessions/` so that moving the directory moves the index too.
pub const INDEX_FILE: &str = ".index.db";
pub const LOCK_FILE: &str = ".lock";
/// How many listed rows are checked against their files (a stat each) before being shown, so that
/// a file edited in place is shown as it is now even when the directory did not change.
const VERIFY_ROWS: usize = 1000;
/// Above this many changed files, the prompt search index is rebuilt in one pass.
const BULK_THRESHOLD: usize = 2000;

/// What the store tells its user while it works; the CLI prints these on stderr.
pub trait Observer {
    fn notice(&self, _notice: &Notice) {}
    /// Progress of reading session files (`done` of `total`).
    fn progress(&self, _done: u64, _total: u64) {}
}

/// An observer that says nothing (tests, benchmarks, libraries).
pub struct Quiet;
impl Observer for Quiet {}

#[derive(Debug, Clone, PartialEq)]
pub enum Notice {
    /// The index was rebuilt from the files without being asked.
    IndexRebuilt {
        why: String,
        sessions: u64,
        invalid: usize,
    },
    /// A file was changed but updating the index failed; the next command catches up.
    IndexLagging { error: String },
}

pub struct ListOutcome {
    pub sessions: Vec<SessionSummary>,
    /// Files that were skipped because they are not valid sessions.
    pub invalid_files: Vec<InvalidFile>,
}

#[derive(Debug)]
pub struct ReindexReport {
    pub sessions: u64,
    pub invalid_files: Vec<InvalidFile>,
    pub elapsed: Duration,
    /// Temp files of interrupted writes that were removed.
    pub removed_temp_files: usize,
}

/// One way in which the index and the files disagree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    pub file_name: String,
    pub problem: String,
}

#[derive(Debug)]
pub struct CheckReport {
    pub sessions: u64,
    pub differences: Vec<Difference>,
    pub invalid_files: Vec<InvalidFile>,
}

pub struct Store {
    dir: PathBuf,
    lock_path: PathBuf,
    index_path: PathBuf,
    lock_timeout: Duration,
    observer: Box<dyn Observer>,
}

/// A file read from disk.
enum Loaded {
    Valid(Box<Session>, FileStamp),
    Invalid {
        stem: String,
        reason: String,
        stamp: FileStamp,
    },
    Gone(String),
}

/// The directory as it was just before clinvk changed files in it, and a watch over the change.
struct Before {
    stamp: DirStamp,
    watch: Option<watch::Watch>,
}

impl Before {
    fn take(dir: &Path) -> Result<Before> {
        // The watch starts first, so nothing between it and the stamp goes unseen.
        let watch = watch::Watch::start(dir);
        Ok(Before {
            stamp: DirStamp::of(dir)?,
            watch,
        })
    }

    /// True when the directory saw exactly the entry changes `changes` make and nothing else:
    /// for each saved session, its temp file created and renamed onto `<id>.json`; for each
    /// removed one, at most one deletion of `<id>.json`. Anything more, even on the same name
    /// (a sync tool putting back a file we delete), means someone else changed the directory.
    fn only_ours(&self, dir: &Path, changes: &[Change<'_>]) -> bool {
        let Some(watch) = &self.watch else {
            // No way to watch here (not Linux, or no inotify left): trust the stamps, as the
            // window is the few milliseconds of one write.
            return !cfg!(target_os = "linux");
        };
        watch::Watch::barrier(dir);
        let watch::Seen::Events(events) = watch.seen() else {
            return false;
        };
        let mut saved: Vec<String> = Vec::new();
        let mut removed: Vec<String> = Vec::new();
        for change in changes {
            match change {
                Change::Upsert(session, _) => saved.push(session.id.file_name()),
                Change::Remove(stem) => removed.push(format!("{stem}.json")),
            }
        }
        let ours_temp = |name: &str| {
            saved
                .iter()
                .any(|f| name.starts_with(&format!(".{f}.{}.", std::process::id())))
                && name.ends_with(".tmp")
        };
        let mut moved_to: Vec<&String> = Vec::new();
        let mut deleted: Vec<&String> = Vec::new();
        for (kind, name) in &events {
            let name = name.to_string_lossy();
            let expected = match kind {
                watch::Kind::Created | watch::Kind::MovedFrom => ours_temp(&name),
                watch::Kind::MovedTo => match saved.iter().find(|f| **f == name) {
                    Some(f) if !moved_to.contains(&f) => {
                        moved_to.push(f);
                        true
                    }
                    _ => false,
                },
                watch::Kind::Deleted => match removed.iter().find(|f| **f == name) {
                    Some(f) if !deleted.contains(&f) => {
                        deleted.push(f);
                        true
                    }
                    // A write that failed half-way removes its own temp file.
                    _ => ours_temp(&name),
                },
            };
            if !expected {
                return false;
            }
        }
        true
    }
}

/// One change to apply to the index after the files changed.
enum Change<'a> {
    Upsert(&'a Session, FileStamp),
    Remove(&'a str),
}

impl Store {
    /// Open the store in `dir` (created private if missing). Nothing is read yet.
    pub fn open(dir: &Path, observer: Box<dyn Observer>) -> Result<Store> {
        files::ensure_private_dir(dir, true)?;
        Ok(Store {
            dir: dir.to_path_buf(),
            lock_path: dir.join(LOCK_FILE),
            index_path: dir.join(INDEX_FILE),
            lock_timeout: lock::DEFAULT_TIMEOUT,
            observer,
        })
    }

    pub fn with_lock_timeout(mut self, timeout: Duration) -> Self {
        self.lock_timeout = timeout;
        self
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn lock(&self, mode: LockMode) -> Result<lock::LockGuard> {
        lock::acquire(&self.lock_path, mode, self.lock_timeout)
    }

    fn session_path(&self, id: &SessionId) -> PathBuf {
        self.dir.join(id.file_name())
    }

    // ----- reading -----------------------------------------------------------------------

    /// Run `f` on an up-to-date index: under the shared lock when it already is, else under the
    /// exclusive lock after bringing it up to date. A corrupt index is rebuilt and `f` retried.
    fn read<T>(&self, mut f: impl FnMut(&Store, &mut Index) -> Result<T>) -> Result<T> {
        {
            let _shared = self.lock(LockMode::Shared)?;
            if let Some(mut index) = self.open_fresh()? {
                match f(self, &mut index) {
                    Err(e) if index::is_corruption(&e) => {}
                    other => return other,
                }
            }
        }
        let _exclusive = self.lock(LockMode::Exclusive)?;
        self.with_prepared(f)
    }

    /// Run `f` under the exclusive lock on an up-to-date index.
    fn write<T>(&self, f: impl FnMut(&Store, &mut Index) -> Result<T>) -> Result<T> {
        let _exclusive = self.lock(LockMode::Exclusive)?;
        self.with_prepared(f)
    }

    /// Caller holds the exclusive lock.
    fn with_prepared<T>(&self, mut f: impl FnMut(&Store, &mut Index) -> Result<T>) -> Result<T> {
        let mut index = self.prepare()?;
        match f(self, &mut index) {
            Err(e) if index::is_corruption(&e) => {
                drop(index);
                let mut index =
                    self.rebuild_announced(format!("the index was unreadable ({e})"))?;
                f(self, &mut index)
            }
            other => other,
        }
    }

    /// The index, if it can answer as it is (caller holds a lock).
    fn open_fresh(&self) -> Result<Option<Index>> {
        let Ok(index) = Index::open_existing(&self.index_path)? else {
            return Ok(None);
        };
        let current = DirStamp::of(&self.dir)?.key();
        match index.dir_stamp() {
            Ok(Some(recorded)) if recorded == current => Ok(Some(index)),
            Ok(_) => Ok(None),
            Err(e) if index::is_corruption(&e) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Bring the index up to date: rebuild it if missing, unreadable or of an unknown schema,
    /// migrate it if older, and reconcile it with the files if the directory changed.
    /// Caller holds the exclusive lock.
    fn prepare(&self) -> Result<Index> {
        match self.prepare_existing() {
            Err(e) if index::is_corruption(&e) => {
                self.rebuild_announced(format!("the index was unreadable ({e})"))
            }
            other => other,
        }
    }

    /// `prepare`, leaving the answer to corruption found on the way to the caller.
    fn prepare_existing(&self) -> Result<Index> {
        let mut index = match Index::open_existing(&self.index_path)? {
            Ok(index) => index,
            Err(Unusable::Outdated(old)) => match old.migrate() {
                Ok(index) => index,
                Err(e) => {
                    return self.rebuild_announced(format!("the index could not be migrated ({e})"))
                }
            },
            Err(why) => return self.rebuild_announced(why.to_string()),
        };
        let current = DirStamp::of(&self.dir)?.key();
        if index.dir_stamp()?.as_deref() != Some(current.as_str()) {
            self.reconcile(&mut index, false)?;
        }
        Ok(index)
    }

    /// Rebuild from the files, and say so if there was anything to rebuild.
    fn rebuild_announced(&self, why: String) -> Result<Index> {
        self.rebuild_announced_in(why, None)
    }

    /// `rebuild_announced`, with the usage rollup in `zone` (None: the local zone).
    fn rebuild_announced_in(&self, why: String, zone: Option<Zone>) -> Result<Index> {
        let (index, report) = self.rebuild(zone)?;
        if report.sessions > 0 || !report.invalid_files.is_empty() {
            self.observer.notice(&Notice::IndexRebuilt {
                why,
                sessions: report.sessions,
                invalid: report.invalid_files.len(),
            });
        }
        Ok(index)
    }

    /// `zone`: the usage rollup's; None keeps the old index's (and when it moved there), so that
    /// a `reindex` in a cron job's `TZ` does not undo the user's, else the local zone.
    fn rebuild(&self, zone: Option<Zone>) -> Result<(Index, ReindexReport)> {
        let start = Instant::now();
        let (zone, moved_at) = match zone {
            Some(zone) => (Some(zone), None),
            None => Index::recorded_rollup(&self.index_path)
                .map_or((None, None), |(zone, at)| (Some(zone), at)),
        };
        let mut index = Index::create_fresh(&self.index_path, zone)?;
        if let Some(at) = moved_at {
            index.set_rollup_zone_moved_at(at)?;
        }
        self.reconcile(&mut index, true)?;
        let report = ReindexReport {
            sessions: index.count()?,
            invalid_files: index.invalid_files()?,
            elapsed: start.elapsed(),
            removed_temp_files: 0,
        };
        Ok((index, report))
    }

    /// Make the index agree with the directory: read files whose stamp changed, forget files
    /// that are gone. `full`: the index is empty and this completes it. Caller holds the
    /// exclusive lock.
    fn reconcile(&self, index: &mut Index, full: bool) -> Result<()> {
        // The mtime is taken before the scan: anything changed during the scan moves it again.
        let dir_stamp = files::stable_dir_stamp(&self.dir)?;
        // A full load reads every file anyway (and stamps it from the open handle): skip the stat.
        let entries = files::scan_dir(&self.dir, !full)?;
        let mut known = if full {
            HashMap::new()
        } else {
            index.stamps()?
        };
        let changed: Vec<DirEntry> = entries
            .into_iter()
            .filter(|e| known.remove(&e.id) != Some(e.stamp))
            .collect();
        if full {
            index.start_fresh_load()?;
        }
        let mut tx = index.transaction()?;
        if full {
            tx.assume_empty();
        }
        let bulky = full || changed.len() > BULK_THRESHOLD;
        let bulk = if bulky { Some(tx.begin_bulk()?) } else { None };
        self.load_streaming(&changed, |batch| apply_loaded(&tx, batch))?;
        for stem in known.keys() {
            tx.remove(stem)?;
        }
        if let Some(bulk) = bulk {
            tx.end_bulk(bulk)?;
        }
        tx.set_dir_stamp(dir_stamp)?;
        tx.commit()?;
        if full {
            index.finish_fresh_load()?;
        }
        if bulky {
            index.settle_after_bulk();
        }
        Ok(())
    }

    /// Read and parse files, handing them to `sink` in batches as they come. With many files,
    /// worker threads read while the caller (typically inserting into the index) consumes, so
    /// parsing and SQLite overlap. Batches arrive in no particular order.
    fn load_streaming(
        &self,
        entries: &[DirEntry],
        mut sink: impl FnMut(&[Loaded]) -> Result<()>,
    ) -> Result<()> {
        const BATCH: usize = 256;
        let total = entries.len() as u64;
        if entries.len() <= BATCH {
            let loaded: Vec<Loaded> = entries.iter().map(load_file).collect();
            return sink(&loaded);
        }
        let threads = std::thread::available_parallelism()
            .map_or(2, |n| n.get())
            .min(8);
        let next = AtomicUsize::new(0);
        std::thread::scope(|scope| {
            let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<Loaded>>(threads * 2);
            for _ in 0..threads {
                let tx = tx.clone();
                let next = &next;
                scope.spawn(move || loop {
                    let start = next.fetch_add(BATCH, Ordering::Relaxed);
                    if start >= entries.len() {
                        break;
                    }
                    let batch = entries[start..(start + BATCH).min(entries.len())]
                        .iter()
                        .map(load_file)
                        .collect();
                    // The receiver is gone only when the sink failed: stop.
                    if tx.send(batch).is_err() {
                        break;
                    }
                });
            }
            drop(tx);
            let mut done = 0u64;
            for batch in rx {
                sink(&batch)?;
                done += batch.len() as u64;
                self.observer.progress(done, total);
            }
            Ok(())
        })
    }

    /// Record changes this process made to the files (caller holds the exclusive lock, and the
    /// index was reconciled before). `before` is the directory's stamp taken just before the
    /// files were changed: if it is still the one the index recorded, nothing else touched the
    /// directory meanwhile and the stamp after our change can be recorded. Otherwise someone
    /// (a sync tool, a hand) changed it too, and the recorded stamp is left as it was, so that
    /// the next command reconciles and sees their change. The files are already safe; if the
    /// index update fails, the next command reconciles, so this only warns.
    fn index_changes(
        &self,
        index: &mut Index,
        before: Before,
        changes: &[Change<'_>],
    ) -> Result<()> {
        let result = (|| {
            // Stamp first, then (after a barrier) what the watch saw: anything that changed the
            // directory before this stat has its event queued by then, and anything after it
            // moves the stamp past the one recorded.
            let after = files::stable_dir_stamp(&self.dir)?;
            let untouched = index.dir_stamp()?.as_deref() == Some(before.stamp.key().as_str())
                && before.only_ours(&self.dir, changes);
            let tx = index.transaction()?;
            for change in changes {
                match change {
                    Change::Upsert(session, stamp) => tx.upsert(session, *stamp)?,
                    Change::Remove(stem) => tx.remove(stem)?,
                }
            }
            if untouched {
                tx.set_dir_stamp(after)?;
            }
            tx.commit()
        })();
        match result {
            Ok(()) => Ok(()),
            Err(e) if index::is_corruption(&e) => self
                .rebuild_announced(format!("the index was unreadable ({e})"))
                .map(drop),
            Err(e @ Error::LockTimeout { .. }) => Err(e),
            Err(e) => {
                self.observer.notice(&Notice::IndexLagging {
                    error: e.to_string(),
                });
                Ok(())
            }
        }
    }

    // ----- ids ---------------------------------------------------------------------------

    /// The session `key` names: an exact id, or a unique prefix of at least 4 characters.
    fn resolve(&self, index: &Index, key: &str) -> Result<SessionId> {
        let id = SessionId::parse(key)?;
        // Regular files only, as everywhere in the store (a symlink is not a session).
        if std::fs::symlink_metadata(self.session_path(&id)).is_ok_and(|m| m.is_file()) {
            return Ok(id);
        }
        if key.len() < crate::domain::MIN_PREFIX_LEN {
            return Err(Error::PrefixTooShort {
                prefix: key.to_string(),
                min: crate::domain::MIN_PREFIX_LEN,
            });
        }
        let mut candidates = index.ids_with_prefix(key, 11)?;
        match candidates.len() {
            0 => Err(Error::NotFound {
                id: key.to_string(),
            }),
            1 => SessionId::parse(&candidates.remove(0)),
            n => {
                if n > 10 {
                    candidates.truncate(10);
                    candidates.push("…".into());
                }
                Err(Error::Ambiguous {
                    prefix: key.to_string(),
                    candidates,
                })
            }
        }
    }

    fn read_session(&self, id: &SessionId) -> Result<(Session, FileStamp)> {
        match load_file(&DirEntry {
            id: id.to_string(),
            path: self.session_path(id),
            stamp: FileStamp::default(),
        }) {
            Loaded::Valid(session, stamp) => Ok((*session, stamp)),
            Loaded::Invalid { reason, .. } => Err(Error::InvalidSession {
                path: self.session_path(id),
                reason,
            }),
            Loaded::Gone(_) => Err(Error::NotFound { id: id.to_string() }),
        }
    }

    // ----- operations --------------------------------------------------------------------

    /// The full session (read from its file) for an id or unique prefix.
    pub fn get(&self, key: &str) -> Result<Session> {
        SessionId::parse(key)?;
        self.read(|store, index| {
            let id = store.resolve(index, key)?;
            store.read_session(&id).map(|(s, _)| s)
        })
    }

    pub fn list(&self, query: &ListQuery) -> Result<ListOutcome> {
        let fresh = self.read(|store, index| {
            let rows = index.list(query)?;
            if store.stale(index, &rows, VERIFY_ROWS)?.is_empty() {
                Ok(Some(ListOutcome {
                    sessions: summaries(rows),
                    invalid_files: index.invalid_files()?,
                }))
            } else {
                Ok(None)
            }
        })?;
        if let Some(outcome) = fresh {
            return Ok(outcome);
        }
        // Some files were edited in place: re-read them (under the exclusive lock), then answer.
        self.write(|store, index| {
            Ok(ListOutcome {
                sessions: store.query_verified(index, query, VERIFY_ROWS)?.0,
                invalid_files: index.invalid_files()?,
            })
        })
    }

    /// Run `query`, re-reading first any of the first `verify` rows, or any known-invalid file,
    /// whose file changed in place since the index read it. Also returns the files still
    /// changing after a few rounds of that. Caller holds the exclusive lock.
    fn query_verified(
        &self,
        index: &mut Index,
        query: &ListQuery,
        verify: usize,
    ) -> Result<(Vec<SessionSummary>, Vec<String>)> {
        let mut rounds = 0;
        loop {
            let rows = index.list(query)?;
            let stale = self.stale(index, &rows, verify)?;
            if stale.is_empty() || rounds == 5 {
                return Ok((summaries(rows), stale));
            }
            rounds += 1;
            let entries: Vec<DirEntry> = stale
                .into_iter()
                .map(|stem| DirEntry {
                    path: self.dir.join(format!("{stem}.json")),
                    id: stem,
                    stamp: FileStamp::default(),
                })
                .collect();
            let tx = index.transaction()?;
            self.load_streaming(&entries, |batch| apply_loaded(&tx, batch))?;
            tx.commit()?;
        }
    }

    /// File stems, among the first `verify` rows and the known-invalid files (there are few),
    /// whose file is no longer the version the index read: edited in place, or gone.
    fn stale(
        &self,
        index: &Index,
        rows: &[(SessionSummary, FileStamp)],
        verify: usize,
    ) -> Result<Vec<String>> {
        let on_disk = |stem: &str| {
            std::fs::symlink_metadata(self.dir.join(format!("{stem}.json")))
                .ok()
                .map(|m| FileStamp::of(&m))
        };
        let mut stale = Vec::new();
        for (row, stamp) in rows.iter().take(verify) {
            if on_disk(row.id.as_str()) != Some(*stamp) {
                stale.push(row.id.to_string());
            }
        }
        for (stem, stamp) in index.invalid_stamps()? {
            if on_disk(&stem) != Some(stamp) {
                stale.push(stem);
            }
        }
        Ok(stale)
    }

    /// Save a new session under a fresh unique id (the id in `session` is replaced).
    pub fn create(&self, mut session: Session) -> Result<Session> {
        self.write(|store, index| {
            let mut id = SessionId::generate();
            while store.session_path(&id).exists() {
                id = SessionId::generate();
            }
            session.id = id;
            let before = Before::take(&store.dir)?;
            let stamp =
                files::write_atomic(&store.session_path(&session.id), &session.to_file_bytes())?;
            store.index_changes(index, before, &[Change::Upsert(&session, stamp)])?;
            Ok(session.clone())
        })
    }

    /// Read-modify-write one session under the exclusive lock, so concurrent updates never lose
    /// each other's changes. `change` says whether to write the file (false leaves it
    /// untouched) and what to hand back with the session. It may be called more than once (after
    /// the index healed), each time on the session as its file is: the last call's answer counts.
    pub fn update<T>(
        &self,
        key: &str,
        mut change: impl FnMut(&mut Session) -> Result<(bool, T)>,
    ) -> Result<(Session, T)> {
        SessionId::parse(key)?;
        self.write(|store, index| {
            let id = store.resolve(index, key)?;
            let (mut session, _) = store.read_session(&id)?;
            let (write, value) = change(&mut session)?;
            if write {
                let before = Before::take(&store.dir)?;
                let stamp =
                    files::write_atomic(&store.session_path(&id), &session.to_file_bytes())?;
                store.index_changes(index, before, &[Change::Upsert(&session, stamp)])?;
            }
            Ok((session, value))
        })
    }

    /// Delete sessions by id or prefix. Every key is resolved first: if one fails, nothing is
    /// deleted.
    pub fn delete(&self, keys: &[String]) -> Result<Vec<SessionId>> {
        for key in keys {
            SessionId::parse(key)?;
        }
        self.write(|store, index| {
            let mut ids = Vec::new();
            for key in keys {
                let id = store.resolve(index, key)?;
                if !ids.contains(&id) {
                    ids.push(id);
                }
            }
            store.remove_files(index, &ids)?;
            Ok(ids.clone())
        })
    }

    fn remove_files(&self, index: &mut Index, ids: &[SessionId]) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let before = Before::take(&self.dir)?;
        for id in ids {
            files::remove_if_exists(&self.session_path(id))?;
        }
        files::sync_dir(&self.dir).map_err(|e| Error::io(&self.dir, e))?;
        let changes: Vec<Change<'_>> = ids.iter().map(|id| Change::Remove(id.as_str())).collect();
        self.index_changes(index, before, &changes)
    }

    /// Sessions last used before `cutoff`: deleted, or only listed with `dry_run`.
    pub fn clean(&self, cutoff: DateTime<Utc>, dry_run: bool) -> Result<Vec<SessionSummary>> {
        self.write(|store, index| store.clean_locked(index, cutoff, dry_run))
    }

    /// The retention clean that comes with session creation (the guide's "periodic check"):
    /// like `clean`, but only if the last one was at least `every` ago. None when not due.
    pub fn clean_if_due(
        &self,
        cutoff: DateTime<Utc>,
        now: DateTime<Utc>,
        every: chrono::Duration,
    ) -> Result<Option<Vec<SessionSummary>>> {
        self.write(|store, index| {
            let recent = (now - every)..=now;
            // A last clean "in the future" (a clock set back) does not block cleaning forever.
            if index
                .last_auto_clean()?
                .is_some_and(|at| recent.contains(&at))
            {
                return Ok(None);
            }
            let removed = store.clean_locked(index, cutoff, false)?;
            index.set_last_auto_clean(now)?;
            Ok(Some(removed))
        })
    }

    fn clean_locked(
        &self,
        index: &mut Index,
        cutoff: DateTime<Utc>,
        dry_run: bool,
    ) -> Result<Vec<SessionSummary>> {
        let query = ListQuery {
            filter: Filter {
                until: Some(cutoff),
                ..Filter::default()
            },
            ..ListQuery::default()
        };
        // Deleting is the one thing that cannot be undone: every candidate's file is checked
        // (a stat each), so a session edited in place to be recent is re-read, not deleted.
        // A dry run takes the same path so that it lists exactly what a real run would delete.
        let (mut doomed, unsettled) = self.query_verified(index, &query, usize::MAX)?;
        // A file still changing after every re-read is left for another day.
        doomed.retain(|s| !unsettled.iter().any(|stem| stem == s.id.as_str()));
        if !dry_run {
            let ids: Vec<SessionId> = doomed.iter().map(|s| s.id.clone()).collect();
            self.remove_files(index, &ids)?;
        }
        Ok(doomed)
    }

    /// Rebuild the index from the files, and remove temp files left by interrupted writes.
    pub fn reindex(&self) -> Result<ReindexReport> {
        let _exclusive = self.lock(LockMode::Exclusive)?;
        // Every write holds this lock while its temp file exists, so none is in use now.
        let removed_temp_files = files::remove_temp_files(&self.dir)?;
        let (_, report) = self.rebuild(None)?;
        Ok(ReindexReport {
            removed_temp_files,
            ..report
        })
    }

    /// Compare the index with the files, changing nothing.
    pub fn check(&self) -> Result<CheckReport> {
        let _shared = self.lock(LockMode::Shared)?;
        // Every file is read anyway (and stamped from its open handle): skip the stat.
        let entries = files::scan_dir(&self.dir, false)?;
        let mut differences = Vec::new();
        let mut invalid_files = Vec::new();
        let mut sessions = 0;
        let index = match Index::open_existing(&self.index_path)? {
            Ok(index) => Some(index),
            Err(why) => {
                differences.push(Difference {
                    file_name: INDEX_FILE.into(),
                    problem: why.to_string(),
                });
                None
            }
        };
        let (mut usage_rows, rollup_zone) = match &index {
            Some(index) => (index.usage_digests()?, Some(index.rollup_zone())),
            None => Default::default(),
        };
        if let Some(index) = &index {
            if !index.rollup_matches_runs()? {
                differences.push(Difference {
                    file_name: INDEX_FILE.into(),
                    problem: "the daily usage rollup differs from the runs it sums".into(),
                });
            }
        }
        let (mut indexed, indexed_invalid): (HashMap<String, SessionSummary>, HashSet<String>) =
            match &index {
                Some(index) => (
                    index
                        .list(&ListQuery::default())?
                        .into_iter()
                        .map(|(s, _)| (s.id.to_string(), s))
                        .collect(),
                    index
                        .invalid_files()?
                        .into_iter()
                        .map(|f| f.file_name)
                        .collect(),
                ),
                None => Default::default(),
            };
        let mut differ = |file_name: String, problem: &str| {
            if index.is_some() {
                differences.push(Difference {
                    file_name,
                    problem: problem.to_string(),
                })
            }
        };
        self.load_streaming(&entries, |batch| {
            for item in batch {
                match item {
                    Loaded::Valid(session, _) => {
                        sessions += 1;
                        let name = session.id.file_name();
                        match indexed.remove(session.id.as_str()) {
                            None => differ(name, "not in the index"),
                            Some(row) if row != SessionSummary::from(&**session) => {
                                differ(name, "the index holds an older version of this file")
                            }
                            Some(_) => {
                                if let Some(zone) = rollup_zone {
                                    let expected =
                                        usage::UsageDigest::of(&usage::turn_rows(session, &zone));
                                    let held =
                                        usage_rows.remove(session.id.as_str()).unwrap_or_default();
                                    if held != expected {
                                        differ(name, "the index holds other runs for this file")
                                    }
                                }
                            }
                        }
                    }
                    Loaded::Invalid { stem, reason, .. } => {
                        let file_name = format!("{stem}.json");
                        if indexed.remove(stem).is_some() {
                            differ(
                                file_name.clone(),
                                "invalid now, but the index lists it as a session",
                            );
                        } else if !indexed_invalid.contains(&file_name) {
                            differ(file_name.clone(), "invalid, and not yet known to the index");
                        }
                        invalid_files.push(InvalidFile {
                            file_name,
                            reason: reason.clone(),
                        });
                    }
                    Loaded::Gone(_) => {}
                }
            }
            Ok(())
        })?;
        let mut gone: Vec<String> = indexed.into_keys().collect();
        gone.sort();
        for stem in gone {
            differ(format!("{stem}.json"), "in the index, but the file is gone");
        }
        invalid_files.sort_by(|a, b| a.file_name.cmp(&b.file_name));
        differences.sort_by(|a, b| a.file_name.cmp(&b.file_name));
        Ok(CheckReport {
            sessions,
            differences,
            invalid_files,
        })
    }

    /// Usage of the selected sessions' runs, grouped and summed in the index (`sessions stats`).
    /// Like a listing beyond its first rows, it trusts the index for files edited in place
    /// without the directory changing (`sessions reindex` picks those up).
    ///
    /// With `query.adopt_zone_at`, a question over periods in a zone other than the rollup's
    /// first rebuilds the index with its rollup in that zone (once: later ones are fast), unless
    /// another question moved it there less than a day ago.
    pub fn stats(&self, query: &StatsQuery) -> Result<(StatsResult, Vec<InvalidFile>)> {
        let answer = |index: &mut Index| Ok((index.stats(query)?, index.invalid_files()?));
        let wants_zone = |index: &Index| -> Result<bool> {
            let Some(now) = query.adopt_zone_at else {
                return Ok(false);
            };
            if index.rollup_zone() == query.zone || !usage::worth_a_rollup(query) {
                return Ok(false);
            }
            Ok(index
                .rollup_zone_moved_at()?
                .is_none_or(|at| now - at >= chrono::Duration::days(1)))
        };
        let done = self.read(|_, index| {
            if wants_zone(index)? {
                Ok(None)
            } else {
                answer(index).map(Some)
            }
        })?;
        if let Some(done) = done {
            return Ok(done);
        }
        let _exclusive = self.lock(LockMode::Exclusive)?;
        // Decide on the index as it is: a move rebuilds it anyway, so bringing it up to date
        // first would read changed files twice. (An unusable one is rebuilt by `prepare`, in
        // the local zone, which is the zone a question asks to move to.)
        let old_zone = match Index::open_existing(&self.index_path)? {
            Ok(index) => wants_zone(&index)?.then(|| index.rollup_zone()),
            Err(_) => None,
        };
        let mut index = match (old_zone, query.adopt_zone_at) {
            (Some(old), Some(now)) => {
                let why = format!(
                    "the index's usage rollup counted days in {}, not {}",
                    old.name(),
                    query.zone.name()
                );
                let index = self.rebuild_announced_in(why, Some(query.zone))?;
                index.set_rollup_zone_moved_at(now)?;
                index
            }
            _ => self.prepare()?,
        };
        answer(&mut index)
    }

    /// The query plans of `stats` for `query` (`EXPLAIN QUERY PLAN`, for tests and benches).
    pub fn explain_stats(&self, query: &StatsQuery) -> Result<Vec<String>> {
        self.read(|_, index| index.explain_stats(query))
    }

    /// The query plan for a listing (for `EXPLAIN QUERY PLAN` checks in tests and benches).
    pub fn explain(&self, query: &ListQuery) -> Result<Vec<String>> {
        self.read(|_, index| index.explain(query))
    }
}

fn apply_loaded(tx: &index::IndexTx<'_>, loaded: &[Loaded]) -> Result<()> {
    for item in loaded {
        match item {
            Loaded::Valid(session, stamp) => tx.upsert(session, *stamp)?,
            Loaded::Invalid {
                stem,
                reason,
                stamp,
            } => tx.mark_invalid(stem, reason, *stamp)?,
            Loaded::Gone(stem) => tx.remove(stem)?,
        }
    }
    Ok(())
}

fn summaries(rows: Vec<(SessionSummary, FileStamp)>) -> Vec<SessionSummary> {
    rows.into_iter().map(|(summary, _)| summary).collect()
}

/// Read one session file. The stamp comes from the open handle, so it is the stamp of exactly the
/// bytes that were parsed.
fn load_file(entry: &DirEntry) -> Loaded {
    let stem = entry.id.clone();
    let (meta, bytes) = match files::read_regular_file(&entry.path) {
        Ok(Some(read)) => read,
        Ok(None) => return Loaded::Gone(stem),
        Err(e) => {
            return Loaded::Invalid {
                stem,
                reason: format!("cannot be read ({e})"),
                stamp: entry.stamp,
            }
        }
    };
    let stamp = FileStamp::of(&meta);
    if !crate::domain::is_valid_id(&stem) {
        return Loaded::Invalid {
            stem,
            reason: "the file name is not a valid session id (letters, digits, '-' and '_')".into(),
            stamp,
        };
    }
    match Session::from_file_bytes(&bytes, &stem, files::modified_utc(&meta)) {
        Ok(session) => Loaded::Valid(Box::new(session), stamp),
        Err(reason) => Loaded::Invalid {
            stem,
            reason,
            stamp,
        },
    }
}
