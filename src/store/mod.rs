//! The session store: JSON files (the truth) in one directory, an SQLite index beside them (a
//! cache that heals itself), and a cross-process lock that orders every change.
//!
//! Protocol: reads take the shared lock and use the index if it is present, of this schema and
//! reconciled with the directory's current mtime; otherwise they take the exclusive lock and
//! bring it up to date first (rebuild, migrate or rescan). Writes take the exclusive lock, write
//! the file atomically, then update the index in one transaction and record the new mtime.

mod check;
pub mod files;
pub mod index;
pub mod native;
pub mod query;
mod rebuild;
pub mod session;
mod sql;
mod sync;
mod watch;

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::error::{Error, Result};
use crate::lock::{self, LockMode};
use files::{DirEntry, DirStamp, FileStamp};
use index::{Index, Unusable};

pub use crate::domain::{Backend, SessionId, Status};
pub use check::{CheckReport, Difference};
pub use index::blocks::{
    label as block_label, under_way as block_under_way, CurrentBlock, BLOCK_MS,
};
pub use index::stats::{
    pages_of_sessions, Dimension, ModelPart, SessionPage, StatsGroup, StatsQuery, StatsResult,
    UsageSums,
};
pub use query::{
    Filter, InvalidFile, ListQuery, SearchHit, SearchQuery, SearchTerms, SessionSummary, Snippet,
    TimeRange,
};
pub use rebuild::new_index_path;
use rebuild::Rebuild;
pub use session::{Session, TokenUsage};
use sync::{load_file, Before, Change, Loaded};

/// The index file, hidden inside `sessions/` so that moving the directory moves the index too.
pub const INDEX_FILE: &str = ".index.db";
pub const LOCK_FILE: &str = ".lock";
/// Held shared by those waiting for `LOCK_FILE` (see `lock::acquire_queued`). In the rebuild's
/// directory: a file made in the sessions directory itself would move its mtime, which makes
/// every command compare every file.
const LOCK_QUEUE: &str = "waiters.lock";
/// How many listed rows are checked against their files (a stat each) before being shown, so that
/// a file edited in place is shown as it is now even when the directory did not change.
const VERIFY_ROWS: usize = 1000;
/// Rows a streamed listing reads at once (`Listing::pages`): a few MB.
const STREAM_PAGE: usize = 2000;

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
    /// The index could not be brought up to date (`why`: a full disk, a read-only store), so the
    /// answer was read from the files.
    AnsweredFromFiles { why: String },
    /// Another clinvk is rebuilding the index; this one waits for it.
    WaitingForRebuild,
    /// Another clinvk is importing the CLIs' transcripts; this import waits for it.
    WaitingForImport,
    /// The sessions directory changed (outside clinvk, or during a rebuild whose watch lost
    /// count): its files are compared with the `files` the index knows (a second or more for
    /// hundreds of thousands).
    Comparing { files: usize },
}

/// What `prepare_existing` found.
enum Prepared {
    Ready(Index),
    /// The index has to be rebuilt from every file (why).
    Rebuild(String),
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
    /// What was at the index's place but not a regular file (a directory, a symbolic link),
    /// moved aside untouched.
    pub moved_aside: Vec<PathBuf>,
}

/// What shell completion asks the store for (`Store::complete`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Completing {
    Sessions,
    Tags,
    Hosts,
}

pub struct Store {
    dir: PathBuf,
    lock_path: PathBuf,
    /// Held shared by those waiting for the lock (`LOCK_QUEUE`).
    queue_path: PathBuf,
    index_path: PathBuf,
    lock_timeout: Duration,
    observer: Box<dyn Observer>,
    /// Answer from the index as it stands: never rebuild or reconcile it (`as_it_stands`).
    as_is: bool,
}

impl Store {
    /// Open the store in `dir` (created private if missing). Nothing is read yet.
    pub fn open(dir: &Path, observer: Box<dyn Observer>) -> Result<Store> {
        files::ensure_private_dir(dir, true)?;
        Ok(Store {
            dir: dir.to_path_buf(),
            lock_path: dir.join(LOCK_FILE),
            queue_path: dir.join(rebuild::REBUILD_DIR).join(LOCK_QUEUE),
            index_path: dir.join(INDEX_FILE),
            lock_timeout: lock::DEFAULT_TIMEOUT,
            observer,
            as_is: false,
        })
    }

    pub fn with_lock_timeout(mut self, timeout: Duration) -> Self {
        self.lock_timeout = timeout;
        self
    }

    /// A store that answers from its index as it stands, for what must answer at once (a
    /// status bar): an index that would have to be built, rebuilt or migrated first is
    /// `Error::NotReady` instead, and files changed outside clinvk since it last looked are
    /// left for the next command to compare (its answers may be a moment behind them).
    pub fn as_it_stands(mut self) -> Self {
        self.as_is = true;
        self
    }

    /// The index as it stands, in the `as_it_stands` mode (caller holds a lock).
    fn index_as_is(&self) -> Result<Index> {
        let not_ready = |why: String| Error::NotReady {
            path: self.index_path.clone(),
            why,
        };
        Index::open_existing(&self.index_path)?.map_err(|why| not_ready(why.to_string()))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn lock(&self, mode: LockMode) -> Result<lock::LockGuard> {
        lock::acquire_queued(
            &self.lock_path,
            mode,
            self.lock_timeout,
            Some(&self.queue_path),
        )
    }

    /// Between two holds of the exclusive lock (an import's batches): wait until the commands
    /// waiting for it, if any, have had it (at most a moment), so that a long import holds
    /// nobody up for longer than one batch.
    pub fn let_waiters_in(&self) {
        let start = std::time::Instant::now();
        // Every waiter tries at least once in a gap this long; one that got in leaves the queue.
        while lock::someone_waits(&self.queue_path) && start.elapsed() < 4 * lock::LONGEST_PAUSE {
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    fn session_path(&self, id: &SessionId) -> PathBuf {
        self.dir.join(id.file_name())
    }

    // ----- reading -----------------------------------------------------------------------

    /// Run `f` on an up-to-date index: under the shared lock when it already is, else under the
    /// exclusive lock after bringing it up to date. A corrupt index is rebuilt and `f` retried.
    ///
    /// When the index cannot be brought up to date because nothing can be written (a full disk,
    /// a read-only store), `f` runs on an index built in memory from the files instead.
    fn read<T>(&self, mut f: impl FnMut(&Store, &mut Index) -> Result<T>) -> Result<T> {
        if self.as_is {
            let _shared = self.lock(LockMode::Shared)?;
            return f(self, &mut self.index_as_is()?);
        }
        match self.lock(LockMode::Shared) {
            Ok(_shared) => {
                if let Some(mut index) = self.open_fresh()? {
                    match f(self, &mut index) {
                        Err(e) if index::is_corruption(&e) => {}
                        other => return other,
                    }
                }
            }
            // No lock file, and none can be made: nor can anyone write.
            Err(e) if e.is_unwritable() => return self.answer_from_files(&e, f),
            Err(e) => return Err(e),
        }
        let (exclusive, mut index) = match self.exclusive_prepared() {
            Ok(prepared) => prepared,
            Err(e) if e.is_unwritable() => return self.answer_from_files(&e, f),
            Err(e) => return Err(e),
        };
        match f(self, &mut index) {
            Err(e) if index::is_corruption(&e) => {
                let seen = rebuild::index_inode(&self.index_path);
                drop((index, exclusive));
                match self.rebuild_damaged(&e, seen) {
                    Ok((_exclusive, mut index)) => f(self, &mut index),
                    Err(e) if e.is_unwritable() => self.answer_from_files(&e, f),
                    Err(e) => Err(e),
                }
            }
            other => other,
        }
    }

    /// `read`, but with no answer from the files: an index that cannot be brought up to date is
    /// an error (for what only the index on disk knows, such as the transcripts imported).
    fn read_index<T>(&self, mut f: impl FnMut(&Store, &mut Index) -> Result<T>) -> Result<T> {
        if self.as_is {
            return self.read(f);
        }
        {
            let _shared = self.lock(LockMode::Shared)?;
            if let Some(mut index) = self.open_fresh()? {
                match f(self, &mut index) {
                    Err(e) if index::is_corruption(&e) => {}
                    other => return other,
                }
            }
        }
        self.write(f)
    }

    /// Answer a read from the files alone, through an index in memory, because the one on disk
    /// cannot be brought up to date (`why`). Slower (every file is read), but a full disk or a
    /// read-only store still lists, shows and sums. The caller holds a lock if one can be had.
    fn answer_from_files<T>(
        &self,
        why: &Error,
        mut f: impl FnMut(&Store, &mut Index) -> Result<T>,
    ) -> Result<T> {
        let mut index = Index::in_memory(&self.index_path)?;
        self.reconcile(&mut index, true)?;
        self.observer.notice(&Notice::AnsweredFromFiles {
            why: why.to_string(),
        });
        f(self, &mut index)
    }

    /// Run `f` under the exclusive lock on an up-to-date index.
    fn write<T>(&self, mut f: impl FnMut(&Store, &mut Index) -> Result<T>) -> Result<T> {
        if self.as_is {
            let _exclusive = self.lock(LockMode::Exclusive)?;
            return f(self, &mut self.index_as_is()?);
        }
        let (exclusive, mut index) = self.exclusive_prepared()?;
        match f(self, &mut index) {
            Err(e) if index::is_corruption(&e) => {
                let seen = rebuild::index_inode(&self.index_path);
                drop((index, exclusive));
                let (_exclusive, mut index) = self.rebuild_damaged(&e, seen)?;
                f(self, &mut index)
            }
            other => other,
        }
    }

    /// The exclusive lock and an up-to-date index. An index that has to be rebuilt from every
    /// file is rebuilt beside the live one without the lock (`rebuild_beside`), so that other
    /// commands are not held up by it, then brought up to date under the lock.
    fn exclusive_prepared(&self) -> Result<(lock::LockGuard, Index)> {
        let exclusive = self.lock(LockMode::Exclusive)?;
        let why = match self.prepare_existing() {
            Ok(Prepared::Ready(index)) => return Ok((exclusive, index)),
            Ok(Prepared::Rebuild(why)) => why,
            Err(e) if index::is_corruption(&e) => format!("the index was unreadable ({e})"),
            Err(e) => return Err(e),
        };
        let seen = rebuild::index_inode(&self.index_path);
        drop(exclusive);
        self.rebuild_beside(Rebuild::Unusable { why, seen })?;
        let exclusive = self.lock(LockMode::Exclusive)?;
        Ok((exclusive, self.prepare()?))
    }

    /// After a command met damage in the index (`e`, in the file of inode `seen`): rebuild it
    /// beside, then the exclusive lock and the index brought up to date.
    fn rebuild_damaged(&self, e: &Error, seen: Option<i64>) -> Result<(lock::LockGuard, Index)> {
        self.rebuild_beside(Rebuild::Unusable {
            why: format!("the index was unreadable ({e})"),
            seen,
        })?;
        let exclusive = self.lock(LockMode::Exclusive)?;
        Ok((exclusive, self.prepare()?))
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
    /// Caller holds the exclusive lock (and keeps it through a rebuild: `exclusive_prepared`
    /// rebuilds without it).
    fn prepare(&self) -> Result<Index> {
        match self.prepare_existing() {
            Ok(Prepared::Ready(index)) => Ok(index),
            Ok(Prepared::Rebuild(why)) => self.rebuild_announced(why),
            Err(e) if index::is_corruption(&e) => {
                self.rebuild_announced(format!("the index was unreadable ({e})"))
            }
            Err(e) => Err(e),
        }
    }

    /// `prepare`, leaving a rebuild, and the answer to corruption found on the way, to the
    /// caller.
    fn prepare_existing(&self) -> Result<Prepared> {
        self.finish_deletion()?;
        let mut index = match Index::open_existing(&self.index_path)? {
            Ok(index) => index,
            Err(Unusable::Outdated(old)) => match old.migrate() {
                Ok(index) => index,
                Err(e) => {
                    return Ok(Prepared::Rebuild(format!(
                        "the index could not be migrated ({e})"
                    )))
                }
            },
            Err(why) => return Ok(Prepared::Rebuild(why.to_string())),
        };
        let current = DirStamp::of(&self.dir)?.key();
        if index.dir_stamp()?.as_deref() != Some(current.as_str()) {
            self.reconcile(&mut index, false)?;
        }
        Ok(Prepared::Ready(index))
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
        let (sessions, invalid_files) = self.verified_read(|index| index.list(query))?;
        Ok(ListOutcome {
            sessions,
            invalid_files,
        })
    }

    /// `list`, a page of rows at a time (`Listing::pages`): in bounded memory (16 bytes a
    /// session, and one page), and without holding the lock between pages, so that a slow
    /// reader at the other end of a pipe holds nobody up. The listing is the one the index
    /// gives now: a session changed since is shown as it is when its page is read, one deleted
    /// since is left out, one created since is not in it. If the index is rebuilt meanwhile
    /// (its rows numbered anew), the listing goes on in the new one after the place the last
    /// row shown had when it began (a session used again meanwhile then may be left out).
    pub fn listing(&self, query: &ListQuery) -> Result<Listing<'_>> {
        /// What the first look found.
        enum Found {
            /// The listing's keys, of this index, and the invalid files.
            Keys(Vec<index::ListKey>, Option<String>, Vec<InvalidFile>),
            /// Rows edited in place among the first: read them again first.
            Stale,
            /// Every row, from an index built in memory for this one answer (nothing can be
            /// written): all of it now, as every later read would build it again.
            All(Vec<SessionSummary>, Vec<InvalidFile>),
        }
        // The first rows are checked against their files first, as `list` checks them, so that
        // a file edited in place shows as it is now (or, now invalid, among the warnings).
        let head = |index: &Index| -> Result<Vec<(SessionSummary, FileStamp)>> {
            let keys = index.list_keys(query, Some(VERIFY_ROWS as u64), None)?;
            let pks: Vec<i64> = keys.iter().map(index::ListKey::pk).collect();
            Ok(index
                .rows_by_pk(&pks)?
                .into_iter()
                .map(|(_, row, stamp)| (row, stamp))
                .collect())
        };
        let keys = |index: &Index| -> Result<Found> {
            // The walk of every key fills SQLite's page cache; what the pages need is little.
            index.limit_cache(8 << 10)?;
            Ok(Found::Keys(
                index.list_keys(query, None, None)?,
                index.generation()?,
                index.invalid_files()?,
            ))
        };
        let found = self.read(|store, index| {
            if index.is_in_memory() {
                return Ok(Found::All(
                    index.list_after(query, None)?,
                    index.invalid_files()?,
                ));
            }
            if !store.stale(index, &head(index)?, VERIFY_ROWS)?.is_empty() {
                return Ok(Found::Stale);
            }
            keys(index)
        })?;
        let found = match found {
            Found::Stale => match self.write(|store, index| {
                store.rows_verified(index, head, VERIFY_ROWS)?;
                keys(index)
            }) {
                Err(e) if e.is_unwritable() => self.read(|_, index| keys(index))?,
                other => other?,
            },
            found => found,
        };
        let (keys, generation, read, invalid_files) = match found {
            Found::Keys(keys, generation, invalid) => (keys, generation, None, invalid),
            Found::All(rows, invalid) => (Vec::new(), None, Some(rows), invalid),
            Found::Stale => unreachable!("read again above"),
        };
        Ok(Listing {
            store: self,
            query: query.clone(),
            keys,
            generation,
            read,
            invalid_files,
        })
    }

    /// The sessions of `pks` (a page of a streamed listing), with their pks; None if the index
    /// is no longer of `generation`.
    fn page_of(
        &self,
        pks: &[i64],
        generation: Option<&str>,
    ) -> Result<Option<Vec<(i64, SessionSummary)>>> {
        self.read(|_, index| {
            if index.generation()?.as_deref() != generation {
                return Ok(None);
            }
            let rows = index.rows_by_pk(pks)?;
            Ok(Some(
                rows.into_iter().map(|(pk, row, _)| (pk, row)).collect(),
            ))
        })
    }

    /// `sessions search`: the sessions in which everything in `query.terms` was said, the
    /// most relevant first.
    pub fn search(&self, query: &SearchQuery) -> Result<Vec<SearchHit>> {
        Ok(self.verified_read(|index| index.search(query))?.0)
    }

    /// What was said in session `id` (for a preview): the messages that say any of `terms`, or
    /// without terms the last ones; at most `max`, oldest first. A session's own prompts are
    /// left out when its transcript says them (only a session without one shows them).
    pub fn said_in(&self, id: &SessionId, terms: &[String], max: usize) -> Result<Vec<Snippet>> {
        self.read(|_, index| index.said_in(id.as_str(), terms, max))
    }

    /// Rows from `run`, checked against the files they were read from (a file edited in
    /// place is read again, under the exclusive lock, and `run` asked again), and the invalid
    /// files.
    fn verified_read<R: OfSession>(
        &self,
        run: impl Fn(&Index) -> Result<Vec<(R, FileStamp)>>,
    ) -> Result<(Vec<R>, Vec<InvalidFile>)> {
        let fresh = self.read(|store, index| {
            let rows = run(index)?;
            if store.stale(index, &rows, VERIFY_ROWS)?.is_empty() {
                Ok(Some((unstamped(rows), index.invalid_files()?)))
            } else {
                Ok(None)
            }
        })?;
        if let Some(outcome) = fresh {
            return Ok(outcome);
        }
        // Some files were edited in place: re-read them (under the exclusive lock), then answer.
        let verified = self.write(|store, index| {
            let rows = store.rows_verified(index, &run, VERIFY_ROWS)?.0;
            Ok((rows, index.invalid_files()?))
        });
        match verified {
            Err(e) if e.is_unwritable() => self.answer_from_files(&e, |_, index| {
                Ok((unstamped(run(index)?), index.invalid_files()?))
            }),
            other => other,
        }
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
        self.rows_verified(index, |index| index.list(query), verify)
    }

    /// `query_verified` for any rows of sessions.
    fn rows_verified<R: OfSession>(
        &self,
        index: &mut Index,
        run: impl Fn(&Index) -> Result<Vec<(R, FileStamp)>>,
        verify: usize,
    ) -> Result<(Vec<R>, Vec<String>)> {
        let mut rounds = 0;
        loop {
            let rows = run(index)?;
            let stale = self.stale(index, &rows, verify)?;
            if stale.is_empty() || rounds == 5 {
                return Ok((unstamped(rows), stale));
            }
            rounds += 1;
            let tx = index.transaction()?;
            self.reload(&tx, stale)?;
            tx.commit()?;
        }
    }

    /// File stems, among the first `verify` rows and the known-invalid files (there are few),
    /// whose file is no longer the version the index read: edited in place, or gone.
    fn stale<R: OfSession>(
        &self,
        index: &Index,
        rows: &[(R, FileStamp)],
        verify: usize,
    ) -> Result<Vec<String>> {
        let on_disk = |stem: &str| {
            std::fs::symlink_metadata(files::path_of(&self.dir, stem))
                .ok()
                .map(|m| FileStamp::of(&m))
        };
        let mut stale = Vec::new();
        for (row, stamp) in rows.iter().take(verify) {
            let id = row.session_id();
            if on_disk(id.as_str()) != Some(*stamp) {
                stale.push(id.to_string());
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

    /// Delete sessions by id or prefix. Every key is resolved first, and every file read: if one
    /// is not found, or (without `force`) is not a valid session, nothing is deleted. README
    /// promises that clinvk never deletes a file it cannot read as a session unless told to.
    pub fn delete(&self, keys: &[String], force: bool) -> Result<Vec<SessionId>> {
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
            // Each file read once: checked (unless forced), and what conversation it held.
            let mut conversations = Vec::new();
            for id in &ids {
                match store.read_session(id) {
                    Ok((session, _)) => conversations.extend(native::Deleted::of(
                        session.backend,
                        session.backend_session_id.as_deref(),
                        session.last_used_at,
                    )),
                    Err(Error::InvalidSession { path, reason }) if !force => {
                        return Err(Error::InvalidNotDeleted {
                            id: id.to_string(),
                            path,
                            reason,
                        });
                    }
                    Err(_) => {}
                }
            }
            store.remove_files(index, &ids, &conversations)?;
            Ok(ids.clone())
        })
    }

    /// Delete the files of `ids`, which held the CLIs' `conversations`.
    fn remove_files(
        &self,
        index: &mut Index,
        ids: &[SessionId],
        conversations: &[native::Deleted],
    ) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        // Their conversations stay deleted: an import must not bring them back.
        self.append_deletions(conversations)?;
        let before = Before::take(&self.dir)?;
        // Several files go all or none, even across a crash: the journal lists them first.
        let journal = (ids.len() > 1).then(|| self.dir.join(sync::DELETE_JOURNAL));
        if let Some(journal) = &journal {
            let list: String = ids.iter().map(|id| format!("{id}\n")).collect();
            crate::fsio::write_atomic(journal, list.as_bytes())?;
        }
        for (n, id) in ids.iter().enumerate() {
            if let Err(e) = files::remove_if_exists(&self.session_path(id)) {
                return Err(Error::DeletionUnfinished {
                    deleted: ids[..n].iter().map(SessionId::to_string).collect(),
                    left: ids[n..].iter().map(SessionId::to_string).collect(),
                    journal: journal.is_some(),
                    source: Box::new(e),
                });
            }
        }
        if let Some(journal) = &journal {
            files::remove_if_exists(journal)?;
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
            last_used: TimeRange {
                since: None,
                until: Some(cutoff),
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
            let conversations: Vec<native::Deleted> = doomed
                .iter()
                .filter_map(|s| {
                    native::Deleted::of(s.backend, s.backend_session_id.as_deref(), s.last_used_at)
                })
                .collect();
            self.remove_files(index, &ids, &conversations)?;
        }
        Ok(doomed)
    }

    /// Rebuild the index from the files, and remove temp files left by interrupted writes.
    /// Other commands go on meanwhile, answered from the live index (see `rebuild.rs`).
    pub fn reindex(&self) -> Result<ReindexReport> {
        let report = self.rebuild_beside(Rebuild::Asked)?;
        Ok(report.expect("an asked-for rebuild always runs"))
    }

    /// Candidates for shell completion (`what`, starting with `prefix`): (value, what it is).
    /// From the index as it stands, never rebuilt or caught up, and nothing rather than a wait
    /// when another clinvk holds the lock: a shell waits for this on every tab.
    pub fn complete(&self, what: Completing, prefix: &str) -> Vec<(String, String)> {
        const AT_MOST: u32 = 200;
        let counted = |values: Vec<(String, u64)>| -> Vec<(String, String)> {
            values
                .into_iter()
                .map(|(v, n)| (v, format!("{n} session{}", if n == 1 { "" } else { "s" })))
                .collect()
        };
        let answer = || -> Result<Vec<(String, String)>> {
            let _shared = lock::acquire(
                &self.lock_path,
                LockMode::Shared,
                Duration::from_millis(100),
            )?;
            let index = self.index_as_is()?;
            Ok(match what {
                Completing::Sessions => index
                    .ids_starting(prefix, AT_MOST)?
                    .into_iter()
                    .map(|(id, prompt)| (id, prompt.unwrap_or_default()))
                    .collect(),
                Completing::Tags => counted(index.tags_starting(prefix, AT_MOST)?),
                Completing::Hosts => counted(index.hosts_starting(prefix, AT_MOST)?),
            })
        };
        answer().unwrap_or_default()
    }

    /// A page of a `--by session` answer over all time (see `index::stats::pages_of_sessions`),
    /// read under the shared lock: its caller writes it out without the lock held.
    pub fn session_page(
        &self,
        query: &StatsQuery,
        after: Option<(u64, &str)>,
        n: u64,
    ) -> Result<SessionPage> {
        self.read(|_, index| index.session_page(query, after, n))
    }

    /// The usage of the session holding `backend`'s conversation `native_id` (see
    /// `Index::conversation_usage`).
    pub fn conversation_usage(
        &self,
        backend: Backend,
        native_id: &str,
    ) -> Result<Option<StatsGroup>> {
        self.read(|_, index| index.conversation_usage(backend, native_id))
    }

    /// The 5-hour block under way at `now` among the runs of the sessions `filter` selects.
    pub fn current_block(
        &self,
        filter: &Filter,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Option<index::blocks::CurrentBlock>> {
        self.read(|_, index| index.current_block(filter, now))
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
            if index.rollup_zone() == query.zone || !index::stats::worth_a_rollup(query) {
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
        match self.stats_in_zone(query, &wants_zone) {
            // The index as it is answers just as well, in its own zone's rollup.
            Err(e) if e.is_unwritable() => self.read(|_, index| answer(index)),
            other => other,
        }
    }

    /// `stats` when the question would move the rollup to its zone: the index is rebuilt with
    /// its rollup there (beside the live one, which answers meanwhile), then asked.
    fn stats_in_zone(
        &self,
        query: &StatsQuery,
        wants_zone: &dyn Fn(&Index) -> Result<bool>,
    ) -> Result<(StatsResult, Vec<InvalidFile>)> {
        let answer = |index: &mut Index| Ok((index.stats(query)?, index.invalid_files()?));
        // Decide on the index as it is: a move rebuilds it anyway, so bringing it up to date
        // first would read changed files twice. (An unusable one is rebuilt by `read`, in the
        // local zone, which is the zone a question asks to move to.)
        let old_zone = match Index::open_existing(&self.index_path)? {
            Ok(index) => wants_zone(&index)?.then(|| index.rollup_zone()),
            Err(_) => None,
        };
        if let (Some(old), Some(at)) = (old_zone, query.adopt_zone_at) {
            let why = format!(
                "the index's usage rollup counted days in {}, not {}",
                old.name(),
                query.zone.name()
            );
            self.rebuild_beside(Rebuild::Zone {
                zone: query.zone,
                at,
                why,
            })?;
        }
        self.read(|_, index| answer(index))
    }

    /// The query plans of `stats` for `query` (`EXPLAIN QUERY PLAN`, for tests and benches).
    pub fn explain_stats(&self, query: &StatsQuery) -> Result<Vec<String>> {
        self.read(|_, index| index.explain_stats(query))
    }

    /// The query plans of a search's statements (for `EXPLAIN QUERY PLAN` checks).
    pub fn explain_search(&self, query: &SearchQuery) -> Result<Vec<String>> {
        self.read(|_, index| index.explain_search(query))
    }

    /// The query plan for a listing (for `EXPLAIN QUERY PLAN` checks in tests and benches).
    pub fn explain(&self, query: &ListQuery) -> Result<Vec<String>> {
        self.read(|_, index| index.explain(query))
    }
}

/// A listing under way (`Store::listing`).
pub struct Listing<'a> {
    store: &'a Store,
    query: ListQuery,
    /// Its sessions' keys in the index of `generation`, in order.
    keys: Vec<index::ListKey>,
    generation: Option<String>,
    /// Every row, read at once (an index built in memory, when the store cannot be written).
    read: Option<Vec<SessionSummary>>,
    invalid_files: Vec<InvalidFile>,
}

impl Listing<'_> {
    /// Files skipped because they are not valid sessions.
    pub fn invalid_files(&self) -> &[InvalidFile] {
        &self.invalid_files
    }

    /// Hand the rows to `page`, a page at a time, in order.
    pub fn pages(mut self, mut page: impl FnMut(Vec<SessionSummary>) -> Result<()>) -> Result<()> {
        if let Some(rows) = self.read.take() {
            return page(rows);
        }
        let store = self.store;
        // Keys handed over so far (shown, or gone when their page was read), and the place of
        // the last row shown: its last use when the keys were taken, and its id.
        let mut consumed: u64 = 0;
        let mut last: Option<(i64, String)> = None;
        let mut at = 0;
        while at < self.keys.len() {
            let keys = &self.keys[at..(at + STREAM_PAGE).min(self.keys.len())];
            let pks: Vec<i64> = keys.iter().map(index::ListKey::pk).collect();
            if let Some(rows) = store.page_of(&pks, self.generation.as_deref())? {
                at += keys.len();
                consumed += keys.len() as u64;
                // Rows come in the keys' order, some gone: each matched to its key, and left
                // out if its pk went to a session created since.
                let mut keyed = keys.iter();
                let rows: Vec<(SessionSummary, i64)> = rows
                    .into_iter()
                    .filter_map(|(pk, row)| {
                        let key = keyed.find(|k| k.pk() == pk)?;
                        key.may_be(row.id.as_str())
                            .then_some((row, key.last_used_ms))
                    })
                    .collect();
                if let Some((row, when)) = rows.last() {
                    last = Some((*when, row.id.to_string()));
                }
                page(rows.into_iter().map(|(row, _)| row).collect())?;
                continue;
            }
            // Rebuilt (its rows numbered anew): the rest from the new index, after the place of
            // the last row shown.
            let rest = ListQuery {
                limit: self.query.limit.map(|n| n.saturating_sub(consumed)),
                // Nothing shown yet (the keys so far all deleted): from the top, as asked.
                offset: if last.is_none() { self.query.offset } else { 0 },
                ..self.query.clone()
            };
            let after = last.as_ref().map(|(t, id)| (*t, id.as_str()));
            let rekeyed = store.read(|_, index| {
                if index.is_in_memory() {
                    // Built from the files for this one read (nothing can be written now): as
                    // every later read would build another, the rest in one go.
                    return Ok(Err(index.list_after(&rest, after)?));
                }
                Ok(Ok((
                    index.list_keys(&rest, None, after)?,
                    index.generation()?,
                )))
            })?;
            match rekeyed {
                Ok((keys, generation)) => (self.keys, self.generation) = (keys, generation),
                Err(rest) => return page(rest),
            }
            at = 0;
        }
        Ok(())
    }
}

fn unstamped<R>(rows: Vec<(R, FileStamp)>) -> Vec<R> {
    rows.into_iter().map(|(row, _)| row).collect()
}

/// A row about one session (checked against its file by `stale`).
trait OfSession {
    fn session_id(&self) -> &SessionId;
}

impl OfSession for SessionSummary {
    fn session_id(&self) -> &SessionId {
        &self.id
    }
}

impl OfSession for SearchHit {
    fn session_id(&self) -> &SessionId {
        &self.session.id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(id: &str, last_used: &str) -> Session {
        let at: DateTime<Utc> = last_used.parse().unwrap();
        Session::new(
            SessionId::parse(id).unwrap(),
            Backend::Claude,
            "/w".into(),
            "p".into(),
            at,
        )
    }

    /// A rebuild inserts the sessions in the old index's order of last use, so that the table's
    /// rows lie as a listing of every session reads them (a page read once, not once a row),
    /// and keeps that order through the parallel reading of the files.
    #[test]
    fn a_rebuild_lays_the_rows_out_in_the_order_of_last_use() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), Box::new(Quiet)).unwrap();
        // Written straight to disk in an order unrelated to their last use, more than one
        // reader's batch of them.
        let n = 3000u32;
        let base: DateTime<Utc> = "2025-01-01T00:00:00Z".parse().unwrap();
        for i in 0..n {
            let minutes = i64::from((i * 7919) % n);
            let mut s = session(
                &format!("s{:05}", (i * 104_729) % 100_000),
                "2025-01-01T00:00:00Z",
            );
            s.last_used_at = base + chrono::Duration::minutes(minutes);
            std::fs::write(store.session_path(&s.id), s.to_file_bytes()).unwrap();
        }
        let by_pk = || -> Vec<String> {
            let conn = rusqlite::Connection::open(dir.path().join(INDEX_FILE)).unwrap();
            let mut stmt = conn.prepare("SELECT id FROM sessions ORDER BY pk").unwrap();
            let ids = stmt.query_map([], |r| r.get(0)).unwrap();
            ids.map(Result::unwrap).collect()
        };
        // The first build has no order to follow; the rebuild follows the first's.
        store.reindex().unwrap();
        store.reindex().unwrap();
        let mut listed: Vec<String> = store
            .list(&ListQuery::default())
            .unwrap()
            .sessions
            .iter()
            .map(|s| s.id.to_string())
            .collect();
        listed.reverse();
        assert_eq!(listed.len(), n as usize);
        assert_eq!(by_pk(), listed);
    }

    /// Deleting several sessions goes through the journal, and still records the directory's
    /// new stamp (the journal's comings and goings are its own), so the next command does not
    /// rescan the directory.
    #[test]
    fn a_deletion_through_the_journal_leaves_the_index_current() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), Box::new(Quiet)).unwrap();
        for id in ["aaaa1", "bbbb2", "cccc3"] {
            store.create(session(id, "2025-01-01T00:00:00Z")).unwrap();
        }
        let ids: Vec<String> = store
            .list(&ListQuery::default())
            .unwrap()
            .sessions
            .iter()
            .map(|s| s.id.to_string())
            .take(2)
            .collect();
        store.delete(&ids, false).unwrap();
        assert!(!dir.path().join(sync::DELETE_JOURNAL).exists());
        let Ok(index) = Index::open_existing(&dir.path().join(INDEX_FILE)).unwrap() else {
            panic!("the index is usable");
        };
        let current = DirStamp::of(dir.path()).unwrap().key();
        if cfg!(target_os = "linux") {
            assert_eq!(
                index.dir_stamp().unwrap().as_deref(),
                Some(current.as_str())
            );
        }
        assert_eq!(store.list(&ListQuery::default()).unwrap().sessions.len(), 1);
    }

    /// A write that finds the index damaged rebuilds it, and what the caller writes next goes
    /// into the rebuilt index, not the old one's deleted file.
    #[test]
    fn the_retention_clean_records_itself_in_the_index_it_rebuilt() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), Box::new(Quiet)).unwrap();
        for (id, at) in [
            ("old1", "2025-01-01T00:00:00Z"),
            ("new1", "2025-06-01T00:00:00Z"),
        ] {
            let s = session(id, at);
            let path = dir.path().join(s.id.file_name());
            files::write_atomic(&path, &s.to_file_bytes()).unwrap();
        }
        store.list(&ListQuery::default()).unwrap();
        // Damage that only a delete meets: the tag counts its trigger keeps.
        rusqlite::Connection::open(dir.path().join(INDEX_FILE))
            .unwrap()
            .execute_batch("DROP TABLE tag_counts")
            .unwrap();
        let now: DateTime<Utc> = "2025-06-02T00:00:00Z".parse().unwrap();
        let cutoff: DateTime<Utc> = "2025-03-01T00:00:00Z".parse().unwrap();
        let removed = store
            .clean_if_due(cutoff, now, chrono::Duration::days(1))
            .unwrap()
            .unwrap();
        assert_eq!(removed.len(), 1);
        let index = match Index::open_existing(&dir.path().join(INDEX_FILE)).unwrap() {
            Ok(index) => index,
            Err(why) => panic!("the rebuilt index is usable: {why}"),
        };
        assert_eq!(index.last_auto_clean().unwrap(), Some(now));
        // So the next one is not due.
        assert_eq!(
            store
                .clean_if_due(cutoff, now, chrono::Duration::days(1))
                .unwrap(),
            None
        );
    }
}
