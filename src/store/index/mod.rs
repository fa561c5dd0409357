//! The SQLite index beside the session files. It is a cache: every function here may assume the
//! caller holds the store lock, and anything it finds wrong (missing, garbage, unknown schema) is
//! answered by rebuilding from the files rather than by an error.
//!
//! - `mod.rs`: opening, creating and migrating the index, and what it remembers of the store
//!   (`store_state`: the directory's stamp, the rollup's zone, the last retention clean);
//! - `schema.rs`: the embedded migrations and the fingerprint that decides a rebuild;
//! - `row.rs`: a session's row, its columns named once;
//! - `list.rs`: the listing (`sessions list`, `-c`, the picker);
//! - `write.rs`: writes, one session at a time or a bulk load;
//! - `turns.rs`: the per-run rows kept for each session, and the daily rollup they feed;
//! - `keyed.rs`: the usage by tag, by working directory and by session, kept by the writes;
//! - `texts.rs`: what was said in each session; `search.rs`: `sessions search` over it;
//! - `native.rs`: what the import of the CLIs' transcripts remembers (files read, by stamp);
//! - `stats.rs`: `sessions stats` over them; `blocks.rs`: their 5-hour blocks.

pub mod blocks;
#[cfg(test)]
mod fixtures;
mod keyed;
mod list;
pub use list::ListKey;
pub mod native;
mod row;
mod schema;
mod search;
pub mod stats;
mod texts;
pub mod turns;
mod write;

use std::collections::HashMap;
use std::fs::OpenOptions;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use rusqlite::functions::FunctionFlags;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, TransactionBehavior};

use crate::error::{Error, Result};
use crate::store::files::{open_private, remove_if_exists, FileStamp};
use crate::store::query::InvalidFile;
use crate::timespec::Zone;
pub use list::{fold_case, fold_char};
use row::stamp_at;
use schema::{embedded, latest_version, schema_fingerprint};
pub use write::{BulkLoad, IndexTx};

/// `text` with every run of white space as one space, and none at either end.
pub fn flatten(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Where a rebuild builds the new index, beside the one it replaces (see `install`).
pub const NEW_INDEX_FILE: &str = ".index.db.new";
const DIR_KEY: &str = "dir_stamp";
const SCHEMA_KEY: &str = "schema_fingerprint";
/// A cache like the rest: if the index is rebuilt, the next new session cleans once more.
const AUTO_CLEAN_KEY: &str = "last_auto_clean";
/// The zone of `turns.day` and the daily rollup, by name (see `Zone::name`).
const ROLLUP_ZONE_KEY: &str = "rollup_zone";
/// When a `sessions stats` question last moved the rollup to its zone (Unix ms).
const ROLLUP_MOVED_KEY: &str = "rollup_zone_moved_at";
/// A random number drawn when the index is created: its rows' pks mean nothing in another one
/// (a streamed listing that fetches its rows by pk tells a rebuilt index by it).
const GENERATION_KEY: &str = "generation";
pub struct Index {
    conn: Connection,
    path: PathBuf,
    rollup_zone: Zone,
}

/// Why an existing index cannot be used as it is.
pub enum Unusable {
    Missing,
    /// The index or its journal is not a regular file (a symbolic link, which could be another
    /// program's database, a directory, a device): never opened, but moved aside by a rebuild.
    NotAFile {
        path: PathBuf,
        what: &'static str,
    },
    /// An older schema of ours: migrate it in place.
    Outdated(Index),
    Corrupt(String),
    UnknownSchema(i64),
    /// Built by migrations whose SQL has since changed.
    SchemaChanged,
}

impl std::fmt::Display for Unusable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unusable::Missing => f.write_str("the index was missing"),
            Unusable::NotAFile { path, what } => {
                write!(f, "{} was a {what}, not a file", path.display())
            }
            Unusable::Outdated(_) => f.write_str("the index had an older schema"),
            Unusable::Corrupt(why) => write!(f, "the index was unreadable ({why})"),
            Unusable::UnknownSchema(v) => write!(f, "the index had an unknown schema version {v}"),
            Unusable::SchemaChanged => f.write_str("the index was built with a different schema"),
        }
    }
}

/// True for SQLite errors that mean "this file is not a sound database": rebuild it.
pub fn is_corruption(err: &Error) -> bool {
    match err {
        Error::Index { source, .. } => is_corrupt_sqlite(source),
        _ => false,
    }
}

fn is_corrupt_sqlite(err: &rusqlite::Error) -> bool {
    use rusqlite::ErrorCode::*;
    matches!(
        err.sqlite_error_code(),
        Some(DatabaseCorrupt | NotADatabase | CannotOpen | SystemIoFailure)
    ) || matches!(err, rusqlite::Error::SqliteFailure(_, Some(msg))
        // A damaged schema or search index: as good as corrupt, and a rebuild mends it.
        if msg.contains("malformed") || msg.contains("no such table") || msg.contains("no such column")
            || msg.starts_with("fts5"))
}

/// The index at `path` opened read only, for what a rebuild keeps of it; None if it is not a
/// file SQLite can open.
fn open_to_read(path: &Path) -> Option<Connection> {
    if not_openable(path).is_some() {
        return None;
    }
    Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NOFOLLOW,
    )
    .ok()
}

impl Index {
    fn err(&self, source: rusqlite::Error) -> Error {
        Error::index(&self.path, source)
    }

    /// Open an existing index that is ready to answer: present, readable and of this schema.
    pub fn open_existing(path: &Path) -> Result<std::result::Result<Index, Unusable>> {
        if let Some(why) = not_openable(path) {
            return Ok(Err(why));
        }
        let conn = match Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX
                | OpenFlags::SQLITE_OPEN_NOFOLLOW,
        ) {
            Ok(conn) => conn,
            Err(e) => return Ok(Err(Unusable::Corrupt(e.to_string()))),
        };
        let mut index = Index {
            conn,
            path: path.to_path_buf(),
            rollup_zone: Zone::UTC,
        };
        if let Err(e) = index.configure() {
            return Ok(Err(Unusable::Corrupt(e.to_string())));
        }
        match index
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))
        {
            Ok(v) if v == latest_version() => match index.state(SCHEMA_KEY) {
                Ok(Some(f)) if f == schema_fingerprint() => match index.load_rollup_zone() {
                    Ok(()) => Ok(Ok(index)),
                    Err(why) => Ok(Err(Unusable::Corrupt(why))),
                },
                Ok(_) => Ok(Err(Unusable::SchemaChanged)),
                Err(e) => Ok(Err(Unusable::Corrupt(e.to_string()))),
            },
            Ok(0) => Ok(Err(Unusable::Missing)),
            Ok(v) if v < latest_version() => Ok(Err(Unusable::Outdated(index))),
            Ok(v) => Ok(Err(Unusable::UnknownSchema(v))),
            Err(e) => Ok(Err(Unusable::Corrupt(e.to_string()))),
        }
    }

    /// Throw away whatever is at `path` and create an empty index of the current schema, not yet
    /// marked complete (see `finish_fresh_load`).
    /// `zone`: the zone of the usage rollup (None: the local zone).
    pub fn create_fresh(path: &Path, zone: Option<Zone>) -> Result<Index> {
        // A leftover journal (or -wal from older builds) would be replayed into the new file.
        for related in related_paths(path) {
            clear(&related)?;
        }
        // Created here, private, so that SQLite's -journal inherits its 0600 mode.
        open_private(path, OpenOptions::new().write(true).create_new(true))
            .map_err(|e| Error::io(path, e))?;
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX
                | OpenFlags::SQLITE_OPEN_NOFOLLOW,
        )
        .map_err(|e| Error::index(path, e))?;
        Index::set_up(conn, path, zone)
    }

    /// An index in memory, built by the caller from the files: the answer to a read when the
    /// index on disk cannot be brought up to date (a full disk, a read-only store). `path`: the
    /// index on disk, for messages.
    pub fn in_memory(path: &Path) -> Result<Index> {
        let conn = Connection::open_in_memory().map_err(|e| Error::index(path, e))?;
        Index::set_up(conn, path, None)
    }

    /// Configure a new, empty database and give it the current schema.
    fn set_up(conn: Connection, path: &Path, zone: Option<Zone>) -> Result<Index> {
        let mut index = Index {
            conn,
            path: path.to_path_buf(),
            rollup_zone: zone.unwrap_or_else(rollup_zone_for_new_index),
        };
        index.configure().map_err(|e| index.err(e))?;
        embedded::migrations::runner()
            .run(&mut index.conn)
            .map_err(|e| migration_error(path, &e))?;
        index.save_rollup_zone()?;
        let mut draw = [0u8; 8];
        getrandom::fill(&mut draw).expect("the operating system has no random source");
        index.set_state(GENERATION_KEY, &u64::from_le_bytes(draw).to_string())?;
        Ok(index)
    }

    /// Whether this index lives in memory (built from the files for one answer).
    pub fn is_in_memory(&self) -> bool {
        self.conn.path().is_none_or(str::is_empty)
    }

    /// Which build of the index this is (see `GENERATION_KEY`; None: made before it existed).
    pub fn generation(&self) -> Result<Option<String>> {
        self.state(GENERATION_KEY).map_err(|e| self.err(e))
    }

    /// Put the complete index built at `new` in the place of the one at `path` (which may be
    /// anything: missing, garbage, a directory, a symbolic link), closing it first. Anything at
    /// `path` or its journal that is not a regular file is moved aside, untouched, and returned.
    pub fn install(self, path: &Path) -> Result<Vec<PathBuf>> {
        let new = self.path.clone();
        drop(self);
        let mut aside = Vec::new();
        let journal = journal_path(path);
        for old in [path, journal.as_path()] {
            if let Some(moved) = move_aside_unless_file(old)? {
                aside.push(moved);
            }
        }
        for leftover in related_paths(path).into_iter().skip(2) {
            remove_if_exists(&leftover)?;
        }
        // An empty journal first: an old journal left by a crash, replayed into the new file,
        // would corrupt it. Truncated in place rather than removed, so that the next write (which
        // would create it) does not move the directory's mtime.
        open_private(
            &journal,
            OpenOptions::new().write(true).create(true).truncate(true),
        )
        .map_err(|e| Error::io(&journal, e))?;
        remove_if_exists(&journal_path(&new))?;
        std::fs::rename(&new, path).map_err(|e| Error::io(path, e))?;
        if let Some(dir) = path.parent() {
            crate::fsio::sync_dir(dir).map_err(|e| Error::io(dir, e))?;
        }
        Ok(aside)
    }

    /// Remove what a rebuild that failed half-way left at `new` (a best effort: a leftover is
    /// cleared by the next rebuild anyway).
    pub fn discard(new: &Path) {
        for related in related_paths(new) {
            let _ = clear(&related);
        }
    }

    /// The rollup zone of the index at `path` and when a question moved it there, if the file is
    /// a readable index that records one (for a rebuild to keep them).
    pub fn recorded_rollup(path: &Path) -> Option<(Zone, Option<DateTime<Utc>>)> {
        let conn = open_to_read(path)?;
        let mut old = Index {
            conn,
            path: path.to_path_buf(),
            rollup_zone: Zone::UTC,
        };
        old.load_rollup_zone().ok()?;
        let moved_at = old.rollup_zone_moved_at().ok().flatten();
        Some((old.rollup_zone, moved_at))
    }

    /// The sessions of the index at `path` oldest first (by last use), each id with its place,
    /// if the file is a readable index: the order a rebuild inserts the files in, so that the
    /// new table's rows lie in the listing's order and a listing of every session reads each
    /// page once instead of one page a row. Read without the store lock (SQLite's own keeps the
    /// read whole); only a hint, so anything amiss is None.
    pub fn recorded_order(path: &Path) -> Option<HashMap<String, u32>> {
        let conn = open_to_read(path)?;
        let mut stmt = conn
            .prepare("SELECT id FROM sessions ORDER BY last_used_at, id")
            .ok()?;
        let ids = stmt.query_map([], |r| r.get::<_, String>(0)).ok()?;
        let mut order = HashMap::new();
        for (place, id) in ids.enumerate() {
            order.insert(id.ok()?, u32::try_from(place).ok()?);
        }
        Some(order)
    }

    /// Read the rollup zone recorded in the index (Err: missing or unreadable).
    fn load_rollup_zone(&mut self) -> std::result::Result<(), String> {
        let name = self
            .state(ROLLUP_ZONE_KEY)
            .map_err(|e| e.to_string())?
            .ok_or("no rollup zone recorded")?;
        self.rollup_zone = Zone::parse(&name)
            .ok()
            .filter(|z| *z != Zone::Local)
            .ok_or_else(|| format!("unknown rollup zone '{name}'"))?;
        Ok(())
    }

    fn save_rollup_zone(&self) -> Result<()> {
        self.set_state(ROLLUP_ZONE_KEY, &self.rollup_zone.name())
    }

    /// When a question last moved the rollup to its zone (None: it never did).
    pub fn rollup_zone_moved_at(&self) -> Result<Option<DateTime<Utc>>> {
        self.time_state(ROLLUP_MOVED_KEY)
    }

    pub fn set_rollup_zone_moved_at(&self, at: DateTime<Utc>) -> Result<()> {
        self.set_time_state(ROLLUP_MOVED_KEY, at)
    }

    /// The zone the daily rollup counts days in.
    pub fn rollup_zone(&self) -> Zone {
        self.rollup_zone
    }

    /// Pragmas belong at open, never in a migration (SQLite ignores a journal-mode change inside
    /// the transaction refinery runs migrations in).
    ///
    /// Rollback journal in TRUNCATE mode, not WAL: the store lock already keeps writers apart
    /// and readers off a half-done write, so WAL's concurrency buys nothing, while its -wal and
    /// -shm files cost every new process a WAL-index recovery, grow to the largest transaction,
    /// and can replay stale frames into a replaced index. TRUNCATE keeps the -journal file
    /// between transactions (empty), so the sessions directory's mtime, which tells the store
    /// that files were added or removed by hand, only moves when session files do.
    fn configure(&self) -> rusqlite::Result<()> {
        let mode: String = self
            .conn
            .query_row("PRAGMA journal_mode = TRUNCATE", [], |r| r.get(0))?;
        // An index in memory keeps its journal in memory, and that is all it can do.
        let in_memory = self.conn.path().is_none_or(str::is_empty);
        if !mode.eq_ignore_ascii_case("truncate") && !in_memory {
            return Err(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CORRUPT),
                Some(format!("cannot use journal mode TRUNCATE (got {mode})")),
            ));
        }
        self.conn.pragma_update(None, "synchronous", "NORMAL")?;
        self.conn.pragma_update(None, "foreign_keys", "ON")?;
        self.conn.pragma_update(None, "temp_store", "MEMORY")?;
        // 64 MiB at most, and only used as needed: bulk loads and big listings stay in memory.
        self.conn.pragma_update(None, "cache_size", -65536)?;
        self.conn.busy_timeout(std::time::Duration::from_secs(30))?;
        // Case-insensitive substring test for search terms too short for the trigram index,
        // folding case beyond ASCII as the trigram index does (SQL LIKE folds ASCII only).
        // The needle comes in already folded (`fold_case`).
        // `rarray(?)`: a list of values as a table (the search's candidate sessions).
        rusqlite::vtab::array::load_module(&self.conn)?;
        // What the text index sees of a message: its runs of white space as one space, so
        // that a phrase matches across a line break (`texts_indexed`, its triggers).
        self.conn.create_scalar_function(
            "clinvk_flat",
            1,
            FunctionFlags::SQLITE_UTF8
                | FunctionFlags::SQLITE_DETERMINISTIC
                | FunctionFlags::SQLITE_INNOCUOUS,
            |ctx| Ok(flatten(ctx.get_raw(0).as_str().unwrap_or(""))),
        )?;
        self.conn.create_scalar_function(
            "clinvk_contains",
            2,
            FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
            |ctx| {
                let haystack = ctx.get_raw(0).as_str().unwrap_or("");
                let needle = ctx.get_raw(1).as_str().unwrap_or("");
                Ok(fold_case(haystack).contains(needle))
            },
        )?;
        Ok(())
    }

    /// Load a fresh, not yet complete index without fsyncs: if the load fails half-way or the
    /// machine stops, the index is still not marked complete and is simply rebuilt. With them,
    /// every spill of the page cache during a load bigger than the cache would wait for the disk.
    /// (Turning the journal off instead would delete the -journal file, moving the directory's
    /// mtime.) Call `finish_fresh_load` after the load commits.
    pub fn start_fresh_load(&self) -> Result<()> {
        self.conn
            .pragma_update(None, "synchronous", "OFF")
            .map_err(|e| self.err(e))
    }

    /// Restore durability and declare the index complete and of this schema (one page, written
    /// in its own transaction after the load).
    pub fn finish_fresh_load(&self) -> Result<()> {
        self.conn
            .pragma_update(None, "synchronous", "NORMAL")
            .map_err(|e| self.err(e))?;
        self.set_schema_fingerprint()?;
        self.conn
            .pragma_update(None, "user_version", latest_version())
            .map_err(|e| self.err(e))
    }

    /// Hold at most `kib` KiB of the database in memory (a long import, whose memory is
    /// bounded, rather than fast at any cost).
    pub fn limit_cache(&self, kib: i64) -> Result<()> {
        self.conn
            .pragma_update(None, "cache_size", -kib)
            .map_err(|e| self.err(e))
    }

    /// Bring an index of an older schema up to date with the embedded migrations.
    pub fn migrate(mut self) -> Result<Index> {
        embedded::migrations::runner()
            .run(&mut self.conn)
            .map_err(|e| migration_error(&self.path, &e))?;
        if self.load_rollup_zone().is_err() {
            self.rollup_zone = rollup_zone_for_new_index();
            self.save_rollup_zone()?;
        }
        self.set_schema_fingerprint()?;
        self.conn
            .pragma_update(None, "user_version", latest_version())
            .map_err(|e| self.err(e))?;
        Ok(self)
    }

    pub fn transaction(&mut self) -> Result<IndexTx<'_>> {
        let path = self.path.clone();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| Error::index(&path, e))?;
        Ok(IndexTx {
            tx,
            path,
            fresh: false,
            rollup_zone: self.rollup_zone,
            next_text: std::cell::Cell::new(None),
            keyed: Default::default(),
        })
    }

    /// The sessions directory stamp (`DirStamp::key`) the index was last reconciled with.
    pub fn dir_stamp(&self) -> Result<Option<String>> {
        self.state(DIR_KEY).map_err(|e| self.err(e))
    }

    /// When the retention clean of session creation last ran (Unix ms), if it ever did.
    pub fn last_auto_clean(&self) -> Result<Option<DateTime<Utc>>> {
        self.time_state(AUTO_CLEAN_KEY)
    }

    pub fn set_last_auto_clean(&self, at: DateTime<Utc>) -> Result<()> {
        self.set_time_state(AUTO_CLEAN_KEY, at)
    }

    /// An instant kept in `store_state` (as Unix milliseconds).
    fn time_state(&self, key: &str) -> Result<Option<DateTime<Utc>>> {
        Ok(self
            .state(key)
            .map_err(|e| self.err(e))?
            .and_then(|v| v.parse().ok())
            .and_then(DateTime::from_timestamp_millis))
    }

    fn set_time_state(&self, key: &str, at: DateTime<Utc>) -> Result<()> {
        self.set_state(key, &at.timestamp_millis().to_string())
    }

    fn set_state(&self, key: &str, value: &str) -> Result<()> {
        self.conn
            .prepare_cached("INSERT OR REPLACE INTO store_state (key, value) VALUES (?1, ?2)")
            .and_then(|mut stmt| stmt.execute(params![key, value]))
            .map(drop)
            .map_err(|e| self.err(e))
    }

    fn state(&self, key: &str) -> rusqlite::Result<Option<String>> {
        self.conn
            .prepare_cached("SELECT value FROM store_state WHERE key = ?1")?
            .query_row([key], |r| r.get::<_, Option<String>>(0))
            .optional()
            .map(Option::flatten)
    }

    fn set_schema_fingerprint(&self) -> Result<()> {
        self.set_state(SCHEMA_KEY, schema_fingerprint())
    }

    /// File stamps of every file the index knows, valid or not, by file stem.
    pub fn stamps(&self) -> Result<HashMap<String, FileStamp>> {
        let mut all =
            self.named_stamps("SELECT id, file_ino, file_size, file_mtime_ns FROM sessions")?;
        all.extend(self.invalid_stamps()?);
        Ok(all.into_iter().collect())
    }

    /// Stamps of the files known to be invalid sessions, by file stem.
    pub fn invalid_stamps(&self) -> Result<Vec<(String, FileStamp)>> {
        self.named_stamps("SELECT name, file_ino, file_size, file_mtime_ns FROM invalid_files")
    }

    /// Rows of (name, ino, size, mtime) from `sql`.
    fn named_stamps(&self, sql: &str) -> Result<Vec<(String, FileStamp)>> {
        let mut stmt = self.conn.prepare_cached(sql).map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, stamp_at(r, 1)?)))
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<_>>()
            .map_err(|e| self.err(e))
    }

    /// Ids starting with `prefix`, in order; at most `max`.
    pub fn ids_with_prefix(&self, prefix: &str, max: usize) -> Result<Vec<String>> {
        // Ids are ASCII below 0x7f, so [prefix, prefix + DEL) is exactly the prefix range and
        // walks the unique index on id.
        let upper = format!("{prefix}\u{7f}");
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT id FROM sessions WHERE id >= ?1 AND id < ?2 ORDER BY id LIMIT ?3",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![prefix, upper, max as i64], |r| r.get(0))
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<_>>()
            .map_err(|e| self.err(e))
    }

    pub fn invalid_files(&self) -> Result<Vec<InvalidFile>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT name, reason FROM invalid_files ORDER BY name")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok(InvalidFile {
                    file_name: format!("{}.json", r.get::<_, String>(0)?),
                    reason: r.get(1)?,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<_>>()
            .map_err(|e| self.err(e))
    }

    /// Whether fewer than `n` sessions are indexed: a walk of `n` rows at most, where `count`
    /// walks them all.
    pub fn holds_fewer_than(&self, n: u64) -> Result<bool> {
        let n = i64::try_from(n).unwrap_or(i64::MAX);
        self.conn
            .query_row(
                "SELECT count(*) FROM (SELECT 1 FROM sessions LIMIT ?1)",
                [n],
                |r| r.get::<_, i64>(0),
            )
            .map(|held| held < n)
            .map_err(|e| self.err(e))
    }

    pub fn count(&self) -> Result<u64> {
        self.conn
            .query_row("SELECT count(*) FROM sessions", [], |r| r.get::<_, i64>(0))
            .map(|n| n as u64)
            .map_err(|e| self.err(e))
    }

    /// After a bulk load: update the planner's statistics.
    pub fn settle_after_bulk(&self) {
        let _ = self.conn.execute_batch("PRAGMA optimize");
    }
}

/// A failed migration, as a full disk or read-only store when SQLite says so underneath.
fn migration_error(path: &Path, e: &refinery::Error) -> Error {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(c) = cause {
        if let Some(sqlite) = c.downcast_ref::<rusqlite::Error>() {
            match sqlite.sqlite_error_code() {
                Some(rusqlite::ErrorCode::DiskFull) => {
                    return Error::DiskFull {
                        path: path.to_path_buf(),
                    }
                }
                Some(rusqlite::ErrorCode::ReadOnly) => {
                    return Error::ReadOnly {
                        path: path.to_path_buf(),
                    }
                }
                _ => {}
            }
        }
        cause = c.source();
    }
    Error::Migration {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

/// The journal SQLite keeps beside the database at `path`.
fn journal_path(path: &Path) -> PathBuf {
    suffixed(path, "-journal")
}

fn suffixed(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// The database, its journal, and the -wal and -shm files of builds that used WAL.
fn related_paths(path: &Path) -> [PathBuf; 4] {
    [
        path.to_path_buf(),
        journal_path(path),
        suffixed(path, "-wal"),
        suffixed(path, "-shm"),
    ]
}

/// What a path is when it is not a regular file: None for a regular file or nothing.
fn not_a_file(path: &Path) -> Option<&'static str> {
    let kind = std::fs::symlink_metadata(path).ok()?.file_type();
    if kind.is_file() {
        None
    } else if kind.is_symlink() {
        Some("symbolic link")
    } else if kind.is_dir() {
        Some("directory")
    } else {
        Some("special file")
    }
}

/// Why the index at `path` cannot be opened as a file, if it cannot: it is missing, or it or its
/// journal is not a regular file.
fn not_openable(path: &Path) -> Option<Unusable> {
    let journal = journal_path(path);
    for p in [path, journal.as_path()] {
        if let Some(what) = not_a_file(p) {
            return Some(Unusable::NotAFile {
                path: p.to_path_buf(),
                what,
            });
        }
    }
    std::fs::symlink_metadata(path)
        .is_err()
        .then_some(Unusable::Missing)
}

/// Rename whatever is at `path`, if it is not a regular file, to a free name beside it
/// (`.index.db.aside-1`, ...), so that nothing clinvk did not make is deleted or written through.
fn move_aside_unless_file(path: &Path) -> Result<Option<PathBuf>> {
    if not_a_file(path).is_none() {
        return Ok(None);
    }
    for n in 1.. {
        let aside = suffixed(path, &format!(".aside-{n}"));
        if std::fs::symlink_metadata(&aside).is_err() {
            std::fs::rename(path, &aside).map_err(|e| Error::io(path, e))?;
            return Ok(Some(aside));
        }
    }
    unreachable!("some name is free")
}

/// Make `path` free: a file or symbolic link is removed, anything else moved aside.
fn clear(path: &Path) -> Result<()> {
    match not_a_file(path) {
        None | Some("symbolic link") => remove_if_exists(path).map(drop),
        Some(_) => move_aside_unless_file(path).map(drop),
    }
}

/// A new index counts days in the local zone, by name so that every process (whatever its `TZ`)
/// keeps the same days; a local zone without a name falls back to UTC.
fn rollup_zone_for_new_index() -> Zone {
    match Zone::local() {
        Zone::Local => Zone::UTC,
        zone => zone,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Backend;
    use crate::store::index::fixtures::session;

    #[test]
    fn fewer_than_n_sessions_is_told_without_counting_them_all() {
        let dir = tempfile::tempdir().unwrap();
        let mut index =
            Index::create_fresh(&dir.path().join("i.db"), Some(crate::timespec::Zone::UTC))
                .unwrap();
        assert!(index.holds_fewer_than(1).unwrap());
        let tx = index.transaction().unwrap();
        for id in ["a1", "a2", "a3"] {
            tx.upsert(
                &session(id, Backend::Claude, Vec::new()),
                FileStamp::default(),
            )
            .unwrap();
        }
        tx.commit().unwrap();
        assert!(index.holds_fewer_than(4).unwrap());
        assert!(!index.holds_fewer_than(3).unwrap());
        assert!(!index.holds_fewer_than(1).unwrap());
    }
}
