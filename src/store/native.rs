//! What the import of the CLIs' transcripts (`crate::import`) needs from the store, without the
//! store knowing any transcript: sessions found by the CLI's id for their conversation and
//! merged under one exclusive lock, the transcript files read so far, and the record of deleted
//! conversations that keeps a deleted session deleted.
//!
//! The record is `sessions/.deleted-conversations`: one JSON line per session with a
//! `backend_session_id` that `delete` or `clean` removed (its backend, that id, and its last
//! activity). It is a file, not part of the index, because it is not in any session file: a
//! rebuilt index must still know.

use std::collections::{HashMap, HashSet};
use std::io::Write;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::files::{self, FileStamp};
use super::index::native::{NativeFile, ReadPoint};
use super::index::IndexTx;
use super::session::KEPT_MAX;
use super::sync::Before;
use super::{Session, SessionId, Store};
use crate::domain::Backend;
use crate::error::{Error, Result};

pub const DELETED_CONVERSATIONS: &str = ".deleted-conversations";

/// Present while an import's batches are being written: one that finds it at the start knows an
/// import was stopped half-way (a kill, a crash) and removes the temp files it left.
pub const IMPORT_WRITING: &str = ".import-writing";

/// Conversations in a batch from which it may be loaded in bulk (when the index holds fewer).
const BULK_BATCH: usize = 500;

/// Conversations in a batch from which the search indexes are filled at the batch's end
/// (`IndexTx::defer_search`) rather than row by row.
const DEFER_SEARCH_FROM: usize = 20;

/// The one-import-at-a-time lock, in the rebuild's directory.
const IMPORT_LOCK: &str = "import.lock";

/// The reason a merge gives for a conversation whose files are to be read again (whole) at the
/// next import: they are not recorded as read.
pub const READ_AGAIN: &str = "its session went away during the import";

/// The reason a merge gives for a conversation it leaves for later in the same import (only
/// subagents' files of it were read so far): its files are not recorded as read either, so
/// that an import stopped before the later merge reads them again.
pub const PUT_ASIDE: &str = "its own file is in a later batch";

/// Why a conversation made no session: the merge made none, and none held it.
pub const NOTHING: &str = "nothing to import";

/// A conversation whose session was deleted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Deleted {
    pub backend: Backend,
    pub backend_session_id: String,
    /// The session's last activity when it was deleted: the conversation comes back only with
    /// activity after that.
    #[serde(with = "chrono::serde::ts_milliseconds")]
    pub last_used_at: DateTime<Utc>,
}

impl Deleted {
    /// The deletion of a session that held the CLI's conversation `native_id`, if it held one.
    pub fn of(
        backend: Backend,
        native_id: Option<&str>,
        last_used_at: DateTime<Utc>,
    ) -> Option<Deleted> {
        Some(Deleted {
            backend,
            backend_session_id: native_id?.to_string(),
            last_used_at,
        })
    }
}

/// One conversation for `NativeMerge::merge`: whose it is.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NativeKey {
    pub backend: Backend,
    pub native_id: String,
}

/// A transcript file read by an import, for the index to remember.
#[derive(Debug, Clone)]
pub struct FileRecord {
    pub path: String,
    pub file: NativeFile,
    /// Where the next read of it can start.
    pub point: Option<ReadPoint>,
    /// The conversation it went into, by position in `NativeMerge::merge`'s keys.
    pub conversation: Option<usize>,
    /// What was said in it, for search (None: a file whose words are not the conversation's,
    /// a subagent's).
    pub texts: Option<FileTexts>,
}

/// What a transcript file said: all of it, or what was appended since the last read.
#[derive(Debug, Clone, Default)]
pub struct FileTexts {
    pub whole: bool,
    pub messages: Vec<crate::domain::Message>,
}

/// A transcript gone since the last import, for `NativeMerge::mark_gone`.
#[derive(Debug, Clone)]
pub struct GoneTranscript {
    pub path: String,
    /// The session its conversation went into.
    pub session: String,
    /// Another file of the conversation that is still there.
    pub instead: Option<String>,
}

/// What `NativeMerge::merge` did with one conversation.
#[derive(Debug, Clone, PartialEq)]
pub enum Merged {
    Created(SessionId),
    Updated(SessionId),
    Unchanged(SessionId),
    /// Not merged, and why (an invalid session file holds it, the merge declined, ...).
    Skipped(String),
}

impl Merged {
    pub fn session_id(&self) -> Option<&SessionId> {
        match self {
            Merged::Created(id) | Merged::Updated(id) | Merged::Unchanged(id) => Some(id),
            Merged::Skipped(_) => None,
        }
    }
}

/// What the merge closure is handed for one conversation.
pub struct MergeInput<'a> {
    /// The session holding the conversation already, if one does.
    pub existing: Option<Session>,
    /// The conversation's last deletion, if its session was ever deleted.
    pub deleted: Option<&'a Deleted>,
}

/// An import's merge in progress (see `Store::merge_native_batches`).
pub struct NativeMerge<'s, 't> {
    store: &'s Store,
    tx: &'s IndexTx<'t>,
    deleted: HashMap<NativeKey, Deleted>,
    /// Sessions by the CLI's id, when the index for it is lifted (a bulk load), kept up to date
    /// with the sessions made.
    known: Option<HashMap<(Backend, String), String>>,
    /// Ids given to new sessions so far.
    taken: HashSet<SessionId>,
    /// The session files written, for the directory's watch.
    saved: HashSet<String>,
    dry_run: bool,
    /// `IMPORT_WRITING` is there (session files have been written).
    marked: bool,
}

impl NativeMerge<'_, '_> {
    /// For each of `keys`, `merge(i, input)` gets the session holding it (if any, made by an
    /// earlier batch included) and says what it should be now (`Ok(None)`: leave it, or create
    /// nothing; `Err(why)`: skip it). New sessions take the conversation's own id when that is
    /// a free session id. Their files are written and flushed; the index records them and
    /// `files` (each with the conversation it went into, by position in `keys`, if any).
    /// With `dry_run`, nothing is written and the outcome is what would happen.
    pub fn merge(
        &mut self,
        keys: &[NativeKey],
        mut merge: impl FnMut(usize, MergeInput<'_>) -> std::result::Result<Option<Session>, String>,
        files: &[FileRecord],
    ) -> Result<Vec<Merged>> {
        let mut outcomes = Vec::with_capacity(keys.len());
        let mut written: Vec<Session> = Vec::new();
        for (i, key) in keys.iter().enumerate() {
            let (outcome, session) = self.decide(key, |input| merge(i, input))?;
            written.extend(session.filter(|_| !self.dry_run));
            outcomes.push(outcome);
        }
        if !self.dry_run {
            self.write(&written, files, &outcomes)?;
        }
        Ok(outcomes)
    }

    /// What becomes of one conversation: the outcome, and the session to write if any.
    fn decide(
        &mut self,
        key: &NativeKey,
        merge: impl FnOnce(MergeInput<'_>) -> std::result::Result<Option<Session>, String>,
    ) -> Result<(Merged, Option<Session>)> {
        let existing = match self.existing(key)? {
            Ok(existing) => existing,
            // Its file cannot be read (invalid, say): left as it is.
            Err(e) => return Ok((Merged::Skipped(e.to_string()), None)),
        };
        let was = existing.clone();
        let input = MergeInput {
            existing,
            deleted: self.deleted.get(key),
        };
        let mut session = match merge(input) {
            Err(why) => return Ok((Merged::Skipped(why), None)),
            Ok(None) => {
                let outcome = match was {
                    Some(s) => Merged::Unchanged(s.id),
                    None => Merged::Skipped(NOTHING.into()),
                };
                return Ok((outcome, None));
            }
            Ok(Some(session)) => session,
        };
        let outcome = match &was {
            Some(old) if *old == session => return Ok((Merged::Unchanged(old.id.clone()), None)),
            Some(old) => {
                session.id = old.id.clone();
                Merged::Updated(old.id.clone())
            }
            None => {
                session.id = self.store.free_id(&key.native_id, &self.taken);
                if let Some(known) = &mut self.known {
                    known.insert((key.backend, key.native_id.clone()), session.id.to_string());
                }
                Merged::Created(session.id.clone())
            }
        };
        self.taken.insert(session.id.clone());
        Ok((outcome, Some(session)))
    }

    /// The sessions' files with one flush to disk, then the index records them, and `files`
    /// with the sessions their conversations went into (`outcomes`, by position).
    fn write(
        &mut self,
        written: &[Session],
        files: &[FileRecord],
        outcomes: &[Merged],
    ) -> Result<()> {
        let store = self.store;
        if !written.is_empty() && !self.marked {
            let mark = store.dir.join(IMPORT_WRITING);
            super::files::open_private(&mark, std::fs::OpenOptions::new().write(true).create(true))
                .map_err(|e| Error::io(&mark, e))?;
            self.marked = true;
        }
        let paths: Vec<std::path::PathBuf> =
            written.iter().map(|s| store.session_path(&s.id)).collect();
        let metas =
            crate::fsio::write_atomic_batch(&store.dir, &paths, |i| written[i].to_file_bytes())?;
        let mut pks: HashMap<&str, i64> = HashMap::with_capacity(written.len());
        for (session, meta) in written.iter().zip(&metas) {
            self.saved.insert(session.id.file_name());
            let pk = self.tx.upsert(session, FileStamp::of(meta))?;
            pks.insert(session.id.as_str(), pk);
        }
        for f in files {
            let outcome = f.conversation.and_then(|at| outcomes.get(at));
            if matches!(outcome, Some(Merged::Skipped(why)) if why == READ_AGAIN || why == PUT_ASIDE)
            {
                continue;
            }
            let session_id = outcome
                .and_then(Merged::session_id)
                .map(SessionId::to_string);
            let file = NativeFile {
                session_id,
                ..f.file.clone()
            };
            self.tx
                .record_native_file(&f.path, &file, f.point.as_ref())?;
            if let (Some(texts), Some(session)) = (&f.texts, &file.session_id) {
                let pk = pks.get(session.as_str()).copied();
                self.tx
                    .record_texts(session, pk, &f.path, texts.whole, &texts.messages)?;
            }
        }
        Ok(())
    }

    /// Mark the sessions whose transcript is gone: `native.gone`, or the other file of the
    /// conversation still there (`instead`), unless the session has moved on to another
    /// transcript already (a rollout archived or compressed, read in this import). How many were
    /// marked gone.
    pub fn mark_gone(&mut self, gone: &[GoneTranscript]) -> Result<usize> {
        let mut changed = Vec::new();
        let mut marked = 0;
        for g in gone {
            let Ok(id) = SessionId::parse(&g.session) else {
                continue;
            };
            let Ok((mut session, _)) = self.store.read_session(&id) else {
                continue;
            };
            let Some(native) = session
                .native
                .as_mut()
                .filter(|n| n.path == g.path && !n.gone)
            else {
                continue;
            };
            match &g.instead {
                Some(path) => native.path = path.clone(),
                // What it said stays searchable: kept in the session file.
                None => {
                    native.gone = true;
                    native.messages = self.tx.texts_of(&g.session, &g.path, KEPT_MAX)?;
                    marked += 1;
                }
            }
            changed.push(session);
        }
        if !self.dry_run && !changed.is_empty() {
            self.write(&changed, &[], &[])?;
        }
        Ok(marked)
    }

    /// The session holding `key`'s conversation, if any; Err inside: its file cannot be read.
    fn existing(&self, key: &NativeKey) -> Result<Result<Option<Session>>> {
        let id = match &self.known {
            Some(known) => known.get(&(key.backend, key.native_id.clone())).cloned(),
            None => self.tx.session_by_backend_id(key.backend, &key.native_id)?,
        };
        let Some(id) = id else { return Ok(Ok(None)) };
        Ok(match self.store.read_session(&SessionId::parse(&id)?) {
            Ok((session, _)) => Ok(Some(session)),
            Err(Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        })
    }
}

/// Whose turn it is to import (see `Store::import_turn`).
pub enum ImportTurn {
    /// This import's: it runs while the guard is held (None: the store cannot take the lock,
    /// read-only, say, where the import writes nothing anyway).
    Yours(Option<crate::lock::LockGuard>),
    /// Another clinvk is importing.
    Taken,
}

impl Store {
    /// One import at a time. `wait`: wait for another clinvk's import to end (saying so);
    /// else `Taken` while one runs (a catch-up before a command then leaves it to that one).
    /// While it runs, its batches let other commands in between them (`let_waiters_in`), and
    /// those commands' catch-ups would otherwise read the same files again.
    pub fn import_turn(&self, wait: bool) -> Result<ImportTurn> {
        let waiting = wait.then_some(super::Notice::WaitingForImport);
        match self.one_at_a_time(IMPORT_LOCK, waiting) {
            Ok(Some(guard)) => Ok(ImportTurn::Yours(Some(guard))),
            Ok(None) => Ok(ImportTurn::Taken),
            Err(e) if e.is_unwritable() => Ok(ImportTurn::Yours(None)),
            Err(e) => Err(e),
        }
    }

    /// The transcript files the index remembers having read, by path. An index that cannot be
    /// brought up to date (a full disk, a read-only store) is an error: nothing could be
    /// imported anyway.
    pub fn native_files(&self) -> Result<HashMap<String, NativeFile>> {
        self.read_index(|_, index| index.native_files())
    }

    /// The transcript files among `paths` read so far, by path.
    pub fn native_files_among(&self, paths: &[&str]) -> Result<HashMap<String, NativeFile>> {
        self.read_index(|_, index| index.native_files_among(paths))
    }

    /// The transcript files read whose conversation has no session now (all, or `among`).
    pub fn native_files_without_session(
        &self,
        among: Option<&[&str]>,
    ) -> Result<std::collections::HashSet<String>> {
        self.read_index(|_, index| index.native_files_without_session(among))
    }

    /// The fingerprint of the last complete look at the CLIs' directories `roots` (see
    /// `native_walks` in the migrations), and which build of the index said so (its
    /// generation: see `merge_native_batch`).
    pub fn native_walk(&self, roots: &str) -> Result<(Option<i64>, Option<String>)> {
        self.read_index(|_, index| Ok((index.native_walk(roots)?, index.generation()?)))
    }

    /// Remember the fingerprint of a complete look at the directories `roots`.
    pub fn record_native_walk(
        &self,
        roots: &str,
        fingerprint: i64,
        built: &Option<String>,
    ) -> Result<()> {
        self.write(|_, index| {
            // Into the index the look was made against only: one rebuilt since knows none of
            // the files, and the next look must compare every one.
            if index.generation()? != *built {
                return Ok(());
            }
            let tx = index.transaction()?;
            tx.record_native_walk(roots, fingerprint)?;
            tx.commit()
        })
    }

    /// Where the last reads of the files at `paths` stopped, for those that can go on from
    /// there (see `Index::read_points`).
    pub fn read_points(&self, paths: &[&str]) -> Result<HashMap<String, ReadPoint>> {
        if paths.is_empty() {
            return Ok(HashMap::new());
        }
        self.read_index(|_, index| index.read_points(paths))
    }

    /// One batch of an import's merges, under the exclusive lock and in one index transaction:
    /// `fill` hands the batch to `NativeMerge::merge` (and `mark_gone`), whose session files are
    /// written and flushed to disk; the index records them, and forgets the files `gone`, in
    /// one commit. The lock is released after each batch, so that other commands are answered
    /// between them (see `let_waiters_in`). `expected`: how many conversations may come (many,
    /// into an index that holds fewer: its secondary indexes are rebuilt once at the end
    /// instead of updated row by row). `fill` may be called again (with the index rebuilt) if
    /// the index proves corrupt.
    ///
    /// `built`: the index the import looked at and merged its earlier batches into (its
    /// generation; None: this batch's, the first). Another index in its place since (another
    /// clinvk rebuilt it, which knows none of the files read so far) merges nothing: None, and
    /// the import stops there, to be done again whole by the next.
    pub fn merge_native_batch<T>(
        &self,
        expected: usize,
        gone: &[String],
        dry_run: bool,
        built: &mut Option<Option<String>>,
        mut fill: impl FnMut(&mut NativeMerge<'_, '_>) -> Result<T>,
    ) -> Result<Option<T>> {
        self.write(|store, index| {
            let generation = index.generation()?;
            match built {
                Some(earlier) if *earlier != generation => return Ok(None),
                _ => *built = Some(generation),
            }
            let mark = store.dir.join(IMPORT_WRITING);
            if !dry_run && std::fs::symlink_metadata(&mark).is_ok() {
                // Under the exclusive lock no write is under way: every temp file is stale.
                super::files::remove_temp_files(&store.dir)?;
                std::fs::remove_file(&mark).map_err(|e| Error::io(&mark, e))?;
            }
            let deleted = store.deleted_conversations()?;
            let before = Before::take(&store.dir)?;
            let recorded = index.dir_stamp()?;
            // Lifting the indexes costs a pass over every row at the end: worth it only when
            // the batch is the bigger part.
            let bulky = expected > BULK_BATCH && index.holds_fewer_than(expected as u64 + 1)?;
            // In bulk, the index by the CLI's id is lifted: one pass over it first instead.
            let known = if bulky {
                index.limit_cache(32 << 10)?;
                Some(index.sessions_by_backend_id()?)
            } else {
                None
            };
            let tx = index.transaction()?;
            let bulk = if bulky && !dry_run {
                Some(tx.begin_bulk(true)?)
            } else {
                None
            };
            let deferred = if bulk.is_none() && !dry_run && expected > DEFER_SEARCH_FROM {
                Some(tx.defer_search()?)
            } else {
                None
            };
            let mut batches = NativeMerge {
                store,
                tx: &tx,
                deleted,
                known,
                taken: Default::default(),
                saved: Default::default(),
                dry_run,
                marked: false,
            };
            let result = fill(&mut batches)?;
            if dry_run {
                return Ok(Some(result));
            }
            let saved = std::mem::take(&mut batches.saved);
            let marked = batches.marked;
            drop(batches);
            if marked {
                std::fs::remove_file(&mark).map_err(|e| Error::io(&mark, e))?;
            }
            for path in gone {
                tx.forget_native_file(path)?;
            }
            if let Some(bulk) = bulk {
                tx.end_bulk(bulk)?;
            }
            if let Some(deferred) = deferred {
                tx.end_deferred_search(deferred)?;
            }
            before.record_stamp(
                &tx,
                &store.dir,
                recorded.as_deref(),
                &saved,
                &Default::default(),
            )?;
            tx.commit()?;
            Ok(Some(result))
        })
    }

    /// A session id for a new conversation: its own id when that is a valid, unused session
    /// id, else a fresh one.
    fn free_id(&self, native_id: &str, taken: &std::collections::HashSet<SessionId>) -> SessionId {
        let free = |id: &SessionId| {
            !taken.contains(id) && std::fs::symlink_metadata(self.session_path(id)).is_err()
        };
        if let Ok(id) = SessionId::parse(native_id) {
            if free(&id) {
                return id;
            }
        }
        loop {
            let id = SessionId::generate();
            if free(&id) {
                return id;
            }
        }
    }

    /// The last deletion of each conversation whose session was deleted.
    pub(super) fn deleted_conversations(&self) -> Result<HashMap<NativeKey, Deleted>> {
        let path = self.dir.join(DELETED_CONVERSATIONS);
        let text = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(HashMap::new()),
            Err(e) => return Err(Error::io(&path, e)),
        };
        let mut all: HashMap<NativeKey, Deleted> = HashMap::new();
        // A torn last line (a crash while appending) is skipped: that deletion is forgotten.
        for line in text.split(|b| *b == b'\n') {
            let Ok(d) = serde_json::from_slice::<Deleted>(line) else {
                continue;
            };
            let key = NativeKey {
                backend: d.backend,
                native_id: d.backend_session_id.clone(),
            };
            match all.get(&key) {
                Some(known) if known.last_used_at >= d.last_used_at => {}
                _ => {
                    all.insert(key, d);
                }
            }
        }
        Ok(all)
    }

    /// Record conversation `native_id` of `backend` as not to be imported (an ephemeral run
    /// whose CLI kept it anyway), up to its activity at `last_used_at`.
    pub fn forget_conversation(
        &self,
        backend: Backend,
        native_id: &str,
        last_used_at: DateTime<Utc>,
    ) -> Result<()> {
        let _exclusive = self.lock(crate::lock::LockMode::Exclusive)?;
        self.append_deletions(&[Deleted {
            backend,
            backend_session_id: native_id.to_string(),
            last_used_at,
        }])
    }

    /// Append to the record of deleted conversations, durably. Caller holds the exclusive lock.
    pub(super) fn append_deletions(&self, deleted: &[Deleted]) -> Result<()> {
        if deleted.is_empty() {
            return Ok(());
        }
        let mut lines = Vec::new();
        for d in deleted {
            lines.extend(serde_json::to_vec(d).expect("a deletion serializes"));
            lines.push(b'\n');
        }
        // After a line torn by a crash, start afresh on a line of its own.
        lines.insert(0, b'\n');
        let path = self.dir.join(DELETED_CONVERSATIONS);
        let mut file =
            files::open_private(&path, std::fs::OpenOptions::new().create(true).append(true))
                .map_err(|e| Error::io(&path, e))?;
        file.write_all(&lines)
            .and_then(|()| file.sync_all())
            .map_err(|e| Error::io(&path, e))
    }
}
