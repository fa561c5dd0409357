//! Keeping the index in step with the directory: rebuilding it from every file, reconciling it
//! with the files that changed (by their stamps), reading files in parallel, and recording a
//! write's own changes without hiding anyone else's (a sync tool, a hand edit) made meanwhile.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::files::{self, DirEntry, DirStamp, FileStamp};
use super::index::{self, Index};
use super::{watch, Notice, ReindexReport, Session, Store};
use crate::error::{Error, Result};
use crate::fsio::Read;
use crate::timespec::Zone;

/// Above this many changed files, the prompt search index is rebuilt in one pass.
pub(super) const BULK_THRESHOLD: usize = 2000;
/// From this many files, comparing them with the index takes long enough to say so.
const BIG_COMPARISON: usize = 100_000;

/// A file read from disk.
pub(super) enum Loaded {
    Valid(Box<Session>, FileStamp),
    Invalid {
        stem: String,
        reason: String,
        stamp: FileStamp,
    },
    Gone(String),
}

/// The directory as it was just before clinvk changed files in it, and a watch over the change.
pub(super) struct Before {
    stamp: DirStamp,
    watch: Option<watch::Watch>,
}

impl Before {
    pub(super) fn take(dir: &Path) -> Result<Before> {
        // The watch starts first, so nothing between it and the stamp goes unseen.
        let watch = watch::Watch::start(dir);
        Ok(Before {
            stamp: DirStamp::of(dir)?,
            watch,
        })
    }

    /// After a write, in its transaction: record the directory's stamp as the index's, when it
    /// was the one recorded before the write (`recorded`) and the directory saw nothing but the
    /// write's own files (`only_these`); otherwise the next command reconciles.
    pub(super) fn record_stamp(
        &self,
        tx: &index::IndexTx<'_>,
        dir: &Path,
        recorded: Option<&str>,
        saved: &HashSet<String>,
        removed: &HashSet<String>,
    ) -> Result<()> {
        // Stamp first, then (after a barrier) what the watch saw: anything that changed the
        // directory before this stat has its event queued by then, and anything after it moves
        // the stamp past the one recorded.
        let after = files::stable_dir_stamp(dir)?;
        if recorded == Some(self.stamp.key().as_str()) && self.only_these(dir, saved, removed) {
            tx.set_dir_stamp(after)?;
        }
        Ok(())
    }

    /// True when the directory saw exactly the entry changes of a write that saved the session
    /// files `saved` and deleted `removed`, and nothing else: for each saved session, its temp
    /// file created and renamed onto `<id>.json`; for each removed one, at most one deletion of
    /// `<id>.json`. Anything more, even on the same name (a sync tool putting back a file we
    /// delete), means someone else changed the directory.
    fn only_these(&self, dir: &Path, saved: &HashSet<String>, removed: &HashSet<String>) -> bool {
        let Some(watch) = &self.watch else {
            // No way to watch here (not Linux, or no inotify left): trust the stamps, as the
            // window is the few milliseconds of one write.
            return !cfg!(target_os = "linux");
        };
        watch::Watch::barrier(dir);
        let watch::Seen::Events(events) = watch.seen() else {
            return false;
        };
        let pid = std::process::id();
        let ours_temp = |name: &str| {
            crate::fsio::temp_file_target(name).is_some_and(|target| {
                saved.contains(target) && name.starts_with(&format!(".{target}.{pid}."))
            })
        };
        let mut moved_to: HashSet<String> = HashSet::new();
        let mut deleted: HashSet<String> = HashSet::new();
        for (kind, name) in &events {
            let name = name.to_string_lossy();
            // The delete journal and the record of deleted conversations are only ever written
            // under the exclusive lock: ours.
            if is_own_name(&name) {
                continue;
            }
            let expected = match kind {
                watch::Kind::Created | watch::Kind::MovedFrom => ours_temp(&name),
                watch::Kind::MovedTo => {
                    saved.contains(name.as_ref()) && moved_to.insert(name.to_string())
                }
                // A write that failed half-way removes its own temp file.
                watch::Kind::Deleted => {
                    (removed.contains(name.as_ref()) && deleted.insert(name.to_string()))
                        || ours_temp(&name)
                }
                // Not asked for by this watch.
                watch::Kind::Written => false,
            };
            if !expected {
                return false;
            }
        }
        true
    }
}

/// The journal of a deletion of several sessions (`sessions delete A B`, `clean`): their ids,
/// written before the first file goes, removed after the last. A deletion that did not finish
/// (a crash, a kill, an I/O error) is finished by the next command that prepares the index, so
/// that a deletion is all or nothing. Hidden, like the index, from the guide's `*.json` globs.
pub(super) const DELETE_JOURNAL: &str = ".delete-journal";

/// True when the watch saw no entry of the directory come or go but the index's own (which only
/// ever change under the exclusive lock). Without a watch, nobody can tell: false.
pub(super) fn only_index_files_changed(dir: &Path, watch: Option<&watch::Watch>) -> bool {
    let Some(watch) = watch else { return false };
    watch::Watch::barrier(dir);
    match watch.seen() {
        watch::Seen::Events(events) => events.iter().all(|(_, name)| {
            let name = name.to_string_lossy();
            name.starts_with(super::INDEX_FILE) || name == super::rebuild::REBUILD_DIR
        }),
        watch::Seen::Unknown => false,
    }
}

/// The journal or the temp file it is written through.
fn is_journal_name(name: &str) -> bool {
    name == DELETE_JOURNAL || crate::fsio::temp_file_target(name) == Some(DELETE_JOURNAL)
}

/// The store's own files beside the sessions, only ever written under the exclusive lock: the
/// delete journal, the record of deleted conversations, the mark of an import under way.
fn is_own_name(name: &str) -> bool {
    is_journal_name(name)
        || name == super::native::DELETED_CONVERSATIONS
        || name == super::native::IMPORT_WRITING
}

impl Store {
    /// Finish a deletion the journal says was started (caller holds the exclusive lock).
    pub(super) fn finish_deletion(&self) -> Result<()> {
        let journal = self.dir.join(DELETE_JOURNAL);
        let text = match std::fs::read_to_string(&journal) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(Error::io(&journal, e)),
        };
        for stem in text.lines().filter(|s| crate::domain::is_valid_id(s)) {
            files::remove_if_exists(&files::path_of(&self.dir, stem))?;
        }
        files::remove_if_exists(&journal)?;
        files::sync_dir(&self.dir).map_err(|e| Error::io(&self.dir, e))
    }
}

/// One change to apply to the index after the files changed.
pub(super) enum Change<'a> {
    Upsert(&'a Session, FileStamp),
    Remove(&'a str),
}

impl Store {
    /// Rebuild from the files, and say so if there was anything to rebuild. Caller holds the
    /// exclusive lock (a damaged index found half-way through a command; elsewhere
    /// `rebuild_beside` does it without holding everyone up).
    pub(super) fn rebuild_announced(&self, why: String) -> Result<Index> {
        let (index, report) = self.rebuild(None)?;
        self.announce_rebuilt(why, &report);
        Ok(index)
    }

    /// Tell the observer about a rebuild it did not ask for, if there was anything to rebuild.
    pub(super) fn announce_rebuilt(&self, why: String, report: &ReindexReport) {
        let why = match report.moved_aside.as_slice() {
            [] => why,
            moved => format!(
                "{why} (moved aside, untouched: {})",
                moved
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        if report.sessions > 0 || !report.invalid_files.is_empty() || !report.moved_aside.is_empty()
        {
            self.observer.notice(&Notice::IndexRebuilt {
                why,
                sessions: report.sessions,
                invalid: report.invalid_files.len(),
            });
        }
    }

    /// `zone`: the usage rollup's; None keeps the old index's (and when it moved there), so that
    /// a `reindex` in a cron job's `TZ` does not undo the user's, else the local zone.
    ///
    /// The new index is built beside the old one and swapped in only once complete, so that a
    /// rebuild that fails (a full disk, a kill) leaves the old index as it was, still answering.
    /// Caller holds the exclusive lock.
    pub(super) fn rebuild(&self, zone: Option<Zone>) -> Result<(Index, ReindexReport)> {
        let start = Instant::now();
        let (zone, moved_at) = match zone {
            Some(zone) => (Some(zone), None),
            None => self.kept_rollup(),
        };
        // Spans the whole rebuild: only then can the swap's own change to the directory be told
        // from anyone else's.
        let watch = watch::Watch::start(&self.dir);
        let index = self.build_fresh(&self.dir.join(index::NEW_INDEX_FILE), zone, moved_at)?;
        let (index, mut report) = self.install_rebuilt(index, watch.as_ref())?;
        report.elapsed = start.elapsed();
        Ok((index, report))
    }

    /// The live index's rollup zone and when a question moved it there, for a rebuild to keep
    /// (None: a new index's, the local zone).
    pub(super) fn kept_rollup(&self) -> (Option<Zone>, Option<chrono::DateTime<chrono::Utc>>) {
        Index::recorded_rollup(&self.index_path).map_or((None, None), |(zone, at)| (Some(zone), at))
    }

    /// Put a complete new index in the live one's place (caller holds the exclusive lock), and
    /// open it there. `watch`: started before the directory stamp the index recorded was taken.
    pub(super) fn install_rebuilt(
        &self,
        index: Index,
        watch: Option<&watch::Watch>,
    ) -> Result<(Index, ReindexReport)> {
        let mut report = ReindexReport {
            sessions: index.count()?,
            invalid_files: index.invalid_files()?,
            elapsed: Duration::ZERO,
            removed_temp_files: 0,
            moved_aside: Vec::new(),
        };
        // The swap moves the directory's mtime past the stamp the index recorded. If nothing but
        // the index's own files came or went meanwhile, the stamp after it can be recorded, and
        // the next command need not compare the files.
        report.moved_aside = index.install(&self.index_path)?;
        let mut index = match Index::open_existing(&self.index_path)? {
            Ok(index) => index,
            Err(why) => {
                return Err(Error::Migration {
                    path: self.index_path.clone(),
                    message: format!("the rebuilt index cannot be opened ({why})"),
                })
            }
        };
        if only_index_files_changed(&self.dir, watch) {
            let tx = index.transaction()?;
            tx.set_dir_stamp(files::stable_dir_stamp(&self.dir)?)?;
            tx.commit()?;
        }
        Ok((index, report))
    }
    /// Make the index agree with the directory: read files whose stamp changed, forget files
    /// that are gone. `full`: the index is empty and this completes it. Caller holds the
    /// exclusive lock.
    pub(super) fn reconcile(&self, index: &mut Index, full: bool) -> Result<()> {
        self.reconcile_in_order(index, full, None)
    }

    /// `reconcile`; a full load inserts the files in `order` (see `Index::recorded_order`),
    /// those it does not know last.
    fn reconcile_in_order(
        &self,
        index: &mut Index,
        full: bool,
        order: Option<HashMap<String, u32>>,
    ) -> Result<()> {
        // The mtime is taken before the scan: anything changed during the scan moves it again.
        let dir_stamp = files::stable_dir_stamp(&self.dir)?;
        // A full load reads every file anyway (and stamps it from the open handle): skip the stat.
        // Otherwise the directory is read and stamped while the index's stamps are read.
        let (entries, mut known) = if full {
            let mut entries = files::scan_dir(&self.dir, false)?;
            // (The order is let go of here: every id of the store.)
            if let Some(order) = order {
                entries.sort_by_cached_key(|e| order.get(&e.id).copied().unwrap_or(u32::MAX));
            }
            (entries, HashMap::new())
        } else {
            let dir = &self.dir;
            let (entries, known) = std::thread::scope(|scope| {
                let scan = scope.spawn(|| files::scan_dir(dir, true));
                let known = index.stamps();
                // Said while the files are still being looked at: it takes a while.
                if let Ok(known) = &known {
                    if known.len() >= BIG_COMPARISON {
                        self.observer
                            .notice(&Notice::Comparing { files: known.len() });
                    }
                }
                let entries = scan.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
                (entries, known)
            });
            (entries?, known?)
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
        let bulk = if bulky {
            Some(tx.begin_bulk(full)?)
        } else {
            None
        };
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
    /// Read and parse files, handing them to `sink` in batches, in `entries`' order. With many
    /// files, worker threads read while the caller (typically inserting into the index)
    /// consumes, so parsing and SQLite overlap; a batch read early waits for those before it.
    pub(super) fn load_streaming(
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
        // Batches taken, and handed to the sink: no batch is taken more than AHEAD batches past
        // the sink's, so that one slow file cannot make the others pile up in memory.
        const AHEAD: usize = 32;
        let next = AtomicUsize::new(0);
        let consumed = AtomicUsize::new(0);
        // Set when the sink is done (finished, failed or panicked) or a reader panicked: the
        // others stop instead of waiting for a batch that will not come or reading for nobody.
        let stop = AtomicBool::new(false);
        /// Sets `stop` when dropped: always (the sink's side), or only in a panic (a reader's).
        struct Stop<'a>(&'a AtomicBool, bool);
        impl Drop for Stop<'_> {
            fn drop(&mut self) {
                if self.1 || std::thread::panicking() {
                    self.0.store(true, Ordering::Release);
                }
            }
        }
        std::thread::scope(|scope| {
            let (tx, rx) = std::sync::mpsc::sync_channel::<(usize, Vec<Loaded>)>(threads * 2);
            for _ in 0..threads {
                let tx = tx.clone();
                let (next, consumed, stop) = (&next, &consumed, &stop);
                scope.spawn(move || {
                    let _panicking = Stop(stop, false);
                    loop {
                        let n = next.fetch_add(1, Ordering::Relaxed);
                        let start = n * BATCH;
                        if start >= entries.len() {
                            break;
                        }
                        // Every batch before n is taken, so the one the sink waits for is under
                        // way: this wait ends, unless that reader panicked (then `stop`).
                        while n > consumed.load(Ordering::Acquire).saturating_add(AHEAD) {
                            if stop.load(Ordering::Acquire) {
                                return;
                            }
                            std::thread::sleep(Duration::from_millis(1));
                        }
                        if stop.load(Ordering::Acquire) {
                            return;
                        }
                        let batch = entries[start..(start + BATCH).min(entries.len())]
                            .iter()
                            .map(load_file)
                            .collect();
                        // The receiver is gone only when the sink is done: stop.
                        if tx.send((n, batch)).is_err() {
                            return;
                        }
                    }
                });
            }
            drop(tx);
            let _done = Stop(&stop, true);
            let mut early: std::collections::BTreeMap<usize, Vec<Loaded>> = Default::default();
            let mut done = 0u64;
            for (n, batch) in &rx {
                early.insert(n, batch);
                while let Some(batch) = early.remove(&consumed.load(Ordering::Relaxed)) {
                    sink(&batch)?;
                    consumed.fetch_add(1, Ordering::Release);
                    done += batch.len() as u64;
                    self.observer.progress(done, total);
                }
            }
            // Every reader gone before every batch came: one panicked, and the scope says so
            // when it joins them.
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
    pub(super) fn index_changes(
        &self,
        index: &mut Index,
        before: Before,
        changes: &[Change<'_>],
    ) -> Result<()> {
        self.index_changes_and(index, before, changes, |_| Ok(()))
    }

    /// `index_changes`, with `more` written in the same transaction.
    pub(super) fn index_changes_and(
        &self,
        index: &mut Index,
        before: Before,
        changes: &[Change<'_>],
        more: impl FnOnce(&index::IndexTx<'_>) -> Result<()>,
    ) -> Result<()> {
        let result = (|| {
            let recorded = index.dir_stamp()?;
            let tx = index.transaction()?;
            // Thousands of sessions at once (an import): the search index and the secondary
            // indexes are rebuilt once at the end instead of updated row by row.
            let bulk = if changes.len() > BULK_THRESHOLD {
                Some(tx.begin_bulk(false)?)
            } else {
                None
            };
            for change in changes {
                match change {
                    Change::Upsert(session, stamp) => {
                        tx.upsert(session, *stamp)?;
                    }
                    Change::Remove(stem) => tx.remove(stem)?,
                }
            }
            if let Some(bulk) = bulk {
                tx.end_bulk(bulk)?;
            }
            // Sets: an import saves thousands of files in one write.
            let mut saved: HashSet<String> = HashSet::new();
            let mut removed: HashSet<String> = HashSet::new();
            for change in changes {
                match change {
                    Change::Upsert(session, _) => saved.insert(session.id.file_name()),
                    Change::Remove(stem) => removed.insert(format!("{stem}.json")),
                };
            }
            before.record_stamp(&tx, &self.dir, recorded.as_deref(), &saved, &removed)?;
            more(&tx)?;
            tx.commit()
        })();
        match result {
            Ok(()) => Ok(()),
            // The rebuilt index is the one the caller goes on with (it may write more, such as
            // the time of the retention clean): the old one's file is gone.
            Err(e) if index::is_corruption(&e) => {
                *index = self.rebuild_announced(format!("the index was unreadable ({e})"))?;
                Ok(())
            }
            Err(e) => {
                self.observer.notice(&Notice::IndexLagging {
                    error: e.to_string(),
                });
                Ok(())
            }
        }
    }
}

impl Store {
    /// Read the files `<stem>.json` of `stems` again into the index (gone ones forgotten).
    pub(super) fn reload(
        &self,
        tx: &index::IndexTx<'_>,
        stems: impl IntoIterator<Item = String>,
    ) -> Result<()> {
        let entries: Vec<DirEntry> = stems
            .into_iter()
            .map(|stem| DirEntry {
                path: files::path_of(&self.dir, &stem),
                id: stem,
                stamp: FileStamp::default(),
            })
            .collect();
        self.load_streaming(&entries, |batch| apply_loaded(tx, batch))
    }

    /// A new index at `path` (the usage rollup in `zone`, moved there at `moved_at`) holding
    /// every file; nothing left at `path` if it fails.
    pub(super) fn build_fresh(
        &self,
        path: &Path,
        zone: Option<Zone>,
        moved_at: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<Index> {
        // Taken before the new index is made: in-lock rebuilds make it where the old one is
        // about to be replaced.
        let mut order = Index::recorded_order(&self.index_path);
        let built = (|| {
            let mut index = Index::create_fresh(path, zone)?;
            if let Some(at) = moved_at {
                index.set_rollup_zone_moved_at(at)?;
            }
            self.reconcile_in_order(&mut index, true, order.take())?;
            Ok(index)
        })();
        built.inspect_err(|_| Index::discard(path))
    }
}

pub(super) fn apply_loaded(tx: &index::IndexTx<'_>, loaded: &[Loaded]) -> Result<()> {
    for item in loaded {
        match item {
            Loaded::Valid(session, stamp) => {
                tx.upsert(session, *stamp)?;
            }
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

/// A session file bigger than this is reported invalid rather than read: parsing one costs
/// several times its size in memory, in every command that reads it. Real sessions are far
/// smaller (their prompts are cut at 2,000 characters).
pub const MAX_SESSION_FILE_BYTES: u64 = 32 << 20;

/// Read one session file. The stamp comes from the open handle, so it is the stamp of exactly the
/// bytes that were parsed.
pub(super) fn load_file(entry: &DirEntry) -> Loaded {
    let stem = entry.id.clone();
    let (meta, bytes) = match files::read_regular_file(&entry.path, MAX_SESSION_FILE_BYTES) {
        Ok(Read::Bytes(meta, bytes)) => (meta, bytes),
        Ok(Read::NotAFile) => return Loaded::Gone(stem),
        Ok(Read::TooBig(meta)) => {
            return Loaded::Invalid {
                stem,
                reason: format!(
                    "it is {} MiB, more than a session file may be ({} MiB): move it aside",
                    meta.len() >> 20,
                    MAX_SESSION_FILE_BYTES >> 20
                ),
                stamp: FileStamp::of(&meta),
            }
        }
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
