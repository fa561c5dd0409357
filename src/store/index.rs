//! The SQLite index beside the session files. It is a cache: every function here may assume the
//! caller holds the store lock, and anything it finds wrong (missing, garbage, unknown schema) is
//! answered by rebuilding from the files rather than by an error.

use std::collections::HashMap;
use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use chrono::{DateTime, Utc};
use rusqlite::functions::FunctionFlags;
use rusqlite::{
    named_params, params, params_from_iter, Connection, OpenFlags, OptionalExtension, Transaction,
    TransactionBehavior,
};

use crate::domain::SessionId;
use crate::error::{Error, Result};
use crate::store::files::{open_private, remove_if_exists, DirStamp, FileStamp};
use crate::store::query::{InvalidFile, ListQuery, SessionSummary};
use crate::store::session::{Session, TokenUsage};
use crate::store::sql;
use crate::store::usage::{self, StatsQuery, StatsResult};
use crate::timespec::Zone;

mod embedded {
    refinery::embed_migrations!("migrations");
}

/// A hash of every embedded migration's SQL, and of what else decides the rows: how usage rows
/// are derived from a file, and the time zone rules days are counted with. An index whose
/// recorded fingerprint differs was built by migrations that have since changed (which should
/// never happen once shipped, but a development build or a botched edit must not leave a wrong
/// index trusted), or with other rules: rebuild it.
fn schema_fingerprint() -> &'static str {
    static FINGERPRINT: OnceLock<String> = OnceLock::new();
    FINGERPRINT.get_or_init(|| {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325; // FNV-1a
        for m in embedded::migrations::runner().get_migrations() {
            for b in m
                .sql()
                .unwrap_or_default()
                .bytes()
                .chain(m.version().to_le_bytes())
            {
                hash = (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
            }
        }
        for b in usage::ROWS_VERSION
            .bytes()
            .chain(chrono_tz::IANA_TZDB_VERSION.bytes())
        {
            hash = (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        format!("{hash:016x}")
    })
}

/// The schema version this build writes, kept in `PRAGMA user_version` so that opening the index
/// costs one pragma read instead of a migration-history query.
fn latest_version() -> i64 {
    // Building the runner parses every embedded migration: once per process is enough.
    static LATEST: OnceLock<i64> = OnceLock::new();
    *LATEST.get_or_init(|| {
        embedded::migrations::runner()
            .get_migrations()
            .iter()
            .map(|m| i64::from(m.version()))
            .max()
            .unwrap_or(0)
    })
}

const DIR_KEY: &str = "dir_stamp";
const SCHEMA_KEY: &str = "schema_fingerprint";
/// A cache like the rest: if the index is rebuilt, the next new session cleans once more.
const AUTO_CLEAN_KEY: &str = "last_auto_clean";
/// The zone of `turns.day` and the daily rollup, by name (see `Zone::name`).
const ROLLUP_ZONE_KEY: &str = "rollup_zone";
/// When a `sessions stats` question last moved the rollup to its zone (Unix ms).
const ROLLUP_MOVED_KEY: &str = "rollup_zone_moved_at";
/// Up to this many prompt matches, a search fetches and sorts them; beyond, it walks sessions
/// newest first (measured: the crossover at 100k sessions is a few thousand).
const SEARCH_LOOKUP_MAX: i64 = 3000;
/// How many of the newest sessions a one-page search tests directly before using the index.
const SEARCH_WINDOW: i64 = 1000;

pub struct Index {
    conn: Connection,
    path: PathBuf,
    rollup_zone: Zone,
}

/// Why an existing index cannot be used as it is.
pub enum Unusable {
    Missing,
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

impl Index {
    fn err(&self, source: rusqlite::Error) -> Error {
        Error::Index {
            path: self.path.clone(),
            source,
        }
    }

    /// Open an existing index that is ready to answer: present, readable and of this schema.
    pub fn open_existing(path: &Path) -> Result<std::result::Result<Index, Unusable>> {
        if !path.exists() {
            return Ok(Err(Unusable::Missing));
        }
        let conn = match Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
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
        for suffix in ["", "-wal", "-shm", "-journal"] {
            remove_if_exists(&PathBuf::from(format!("{}{suffix}", path.display())))?;
        }
        // Created here, private, so that SQLite's -journal inherits its 0600 mode.
        open_private(path, OpenOptions::new().write(true).create_new(true))
            .map_err(|e| Error::io(path, e))?;
        let conn = Connection::open(path).map_err(|e| Error::Index {
            path: path.to_path_buf(),
            source: e,
        })?;
        let mut index = Index {
            conn,
            path: path.to_path_buf(),
            rollup_zone: zone.unwrap_or_else(rollup_zone_for_new_index),
        };
        index.configure().map_err(|e| index.err(e))?;
        embedded::migrations::runner()
            .run(&mut index.conn)
            .map_err(|e| Error::Migration {
                path: path.to_path_buf(),
                message: e.to_string(),
            })?;
        index.save_rollup_zone()?;
        Ok(index)
    }

    /// The rollup zone of the index at `path` and when a question moved it there, if the file is
    /// a readable index that records one (for a rebuild to keep them).
    pub fn recorded_rollup(path: &Path) -> Option<(Zone, Option<DateTime<Utc>>)> {
        if !path.exists() {
            return None;
        }
        let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY).ok()?;
        let mut old = Index {
            conn,
            path: path.to_path_buf(),
            rollup_zone: Zone::UTC,
        };
        old.load_rollup_zone().ok()?;
        let moved_at = old.rollup_zone_moved_at().ok().flatten();
        Some((old.rollup_zone, moved_at))
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

    /// Usage of the selected sessions' runs, grouped (`sessions stats`).
    pub fn stats(&self, query: &StatsQuery) -> Result<StatsResult> {
        usage::stats(&self.conn, query, Some(&self.rollup_zone)).map_err(|e| self.err(e))
    }

    /// A digest of each session's usage rows, by id (`sessions reindex --check`).
    pub fn usage_digests(&self) -> Result<HashMap<String, usage::UsageDigest>> {
        usage::digests(&self.conn).map_err(|e| self.err(e))
    }

    /// Whether the daily rollup equals the sum of the runs (`sessions reindex --check`).
    pub fn rollup_matches_runs(&self) -> Result<bool> {
        usage::rollup_matches_runs(&self.conn).map_err(|e| self.err(e))
    }

    /// The query plans of `stats` (for tests and benchmarks).
    pub fn explain_stats(&self, query: &StatsQuery) -> Result<Vec<String>> {
        usage::explain(&self.conn, query, Some(&self.rollup_zone)).map_err(|e| self.err(e))
    }

    /// `stats` without the rollup: from the runs themselves (to check one against the other).
    #[cfg(test)]
    pub fn stats_scanning_runs(&self, query: &StatsQuery) -> Result<StatsResult> {
        usage::stats(&self.conn, query, None).map_err(|e| self.err(e))
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
        if !mode.eq_ignore_ascii_case("truncate") {
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

    /// Bring an index of an older schema up to date with the embedded migrations.
    pub fn migrate(mut self) -> Result<Index> {
        embedded::migrations::runner()
            .run(&mut self.conn)
            .map_err(|e| Error::Migration {
                path: self.path.clone(),
                message: e.to_string(),
            })?;
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
            .map_err(|e| Error::Index {
                path: path.clone(),
                source: e,
            })?;
        Ok(IndexTx {
            tx,
            path,
            fresh: false,
            rollup_zone: self.rollup_zone,
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

    pub fn count(&self) -> Result<u64> {
        self.conn
            .query_row("SELECT count(*) FROM sessions", [], |r| r.get::<_, i64>(0))
            .map(|n| n as u64)
            .map_err(|e| self.err(e))
    }

    /// Sessions matching `query`, newest activity first, each with the stamp of the file version
    /// the index read it from.
    pub fn list(&self, query: &ListQuery) -> Result<Vec<(SessionSummary, FileStamp)>> {
        // A prompt search for one page first looks at the newest sessions only, testing the
        // text directly: if that fills the page, it is the answer (every other session is
        // older). Common words answer here in a few ms whatever the store's size; rarer ones
        // go on to the trigram index, whose cost grows with the number of matches.
        if let (Some(_), Some(limit)) = (&query.filter.search, query.limit) {
            let cutoff = self.recent_cutoff()?;
            let rows = self.run_list(query, Some(cutoff.unwrap_or(i64::MIN)))?;
            if cutoff.is_none() || rows.len() as u64 >= limit {
                return Ok(rows);
            }
        }
        self.run_list(query, None)
    }

    /// The last activity of the SEARCH_WINDOW-th newest session (None: fewer sessions).
    fn recent_cutoff(&self) -> Result<Option<i64>> {
        self.conn
            .prepare_cached(
                "SELECT last_used_at FROM sessions ORDER BY last_used_at DESC LIMIT 1 OFFSET ?1",
            )
            .and_then(|mut stmt| stmt.query_row([SEARCH_WINDOW - 1], |r| r.get(0)).optional())
            .map_err(|e| self.err(e))
    }

    fn run_list(
        &self,
        query: &ListQuery,
        window: Option<i64>,
    ) -> Result<Vec<(SessionSummary, FileStamp)>> {
        let Some((sql, args)) = self.list_sql(query, window)? else {
            return Ok(Vec::new());
        };
        let mut stmt = self.conn.prepare(&sql).map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params_from_iter(args.iter()), |r| {
                Ok((summary_from_row(r)?, stamp_at(r, 15)?))
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<_>>()
            .map_err(|e| self.err(e))
    }

    /// The SQL for a query, or None when it cannot match anything (a tag nobody has).
    /// `window`: search only sessions last used at or after this time, by testing the text.
    fn list_sql(
        &self,
        query: &ListQuery,
        window: Option<i64>,
    ) -> Result<Option<(String, Vec<rusqlite::types::Value>)>> {
        use rusqlite::types::Value as V;
        let f = &query.filter;
        let mut conds: Vec<String> = Vec::new();
        let mut args: Vec<V> = Vec::new();
        let (from, order) = if f.tags.is_empty() {
            ("sessions s".to_string(), "s.last_used_at DESC, s.pk DESC")
        } else {
            // Walk the rarest tag's sessions newest first and check the others per session.
            let mut tags: Vec<(&String, i64)> = Vec::new();
            for tag in &f.tags {
                let n: i64 = self
                    .conn
                    .query_row("SELECT n FROM tag_counts WHERE tag = ?1", [tag], |r| {
                        r.get(0)
                    })
                    .optional()
                    .map_err(|e| self.err(e))?
                    .unwrap_or(0);
                if n == 0 {
                    return Ok(None);
                }
                tags.push((tag, n));
            }
            tags.sort_by_key(|(_, n)| *n);
            tags.dedup_by_key(|(t, _)| t.as_str());
            conds.push("t0.tag = ?".into());
            args.push(V::Text(tags[0].0.clone()));
            for (tag, _) in &tags[1..] {
                conds.push("EXISTS (SELECT 1 FROM session_tags tn WHERE tn.tag = ? AND tn.session_pk = s.pk)".into());
                args.push(V::Text((*tag).clone()));
            }
            (
                "session_tags t0 JOIN sessions s ON s.pk = t0.session_pk".to_string(),
                "t0.last_used_at DESC, t0.session_pk DESC",
            )
        };
        let time_col = if f.tags.is_empty() {
            "s.last_used_at"
        } else {
            "t0.last_used_at"
        };
        sql::session_conditions(f, "s", &mut conds, &mut args);
        if f.resumable {
            conds.push("s.backend_session_id IS NOT NULL".into());
        }
        if let Some(w) = &f.workdir {
            conds.push("s.workdir = ?".into());
            args.push(V::Text(w.clone()));
        }
        if let Some(t) = f.since {
            conds.push(format!("{time_col} >= ?"));
            args.push(V::Integer(t.timestamp_millis()));
        }
        if let Some(t) = f.until {
            conds.push(format!("{time_col} < ?"));
            args.push(V::Integer(t.timestamp_millis()));
        }
        if let (Some(text), Some(cutoff)) = (&f.search, window) {
            conds.push(format!("{time_col} >= ?"));
            args.push(V::Integer(cutoff));
            conds.push("clinvk_contains(s.prompt, ?)".into());
            args.push(V::Text(fold_case(text)));
        } else if let Some(text) = &f.search {
            if text.chars().count() >= 3 {
                // A quoted FTS5 phrase over trigrams is a case-insensitive substring match.
                let phrase = format!("\"{}\"", text.replace('"', "\"\""));
                let matches: i64 = self
                    .conn
                    .query_row(
                        "SELECT count(*) FROM prompts_fts WHERE prompts_fts MATCH ?1",
                        [&phrase],
                        |r| r.get(0),
                    )
                    .map_err(|e| self.err(e))?;
                if matches == 0 {
                    return Ok(None);
                }
                // Few matches: fetch them and sort. Many: walk sessions newest first and test
                // each against the match set (`+` keeps SQLite from driving the join by it),
                // stopping as soon as the page is full.
                let test = if matches <= SEARCH_LOOKUP_MAX {
                    "s.pk"
                } else {
                    "+s.pk"
                };
                conds.push(format!(
                    "{test} IN (SELECT rowid FROM prompts_fts WHERE prompts_fts MATCH ?)"
                ));
                args.push(V::Text(phrase));
            } else {
                // Too short for trigrams: test every prompt, reading the table in storage order
                // (far cheaper than one lookup per index entry), then sort the matches.
                conds.push(
                    "s.pk IN (SELECT pk FROM sessions WHERE clinvk_contains(prompt, ?))".into(),
                );
                args.push(V::Text(fold_case(text)));
            }
        }
        let where_clause = sql::where_clause(&conds);
        let limit = query.limit.map_or(-1, |n| n.min(i64::MAX as u64) as i64);
        args.push(V::Integer(limit));
        args.push(V::Integer(query.offset.min(i64::MAX as u64) as i64));
        let sql = format!(
            "SELECT {SUMMARY_COLUMNS} FROM {from} {where_clause} ORDER BY {order} LIMIT ? OFFSET ?"
        );
        Ok(Some((sql, args)))
    }

    /// The query plan SQLite picks for `query`, one line per step (for tests and benchmarks).
    pub fn explain(&self, query: &ListQuery) -> Result<Vec<String>> {
        let Some((sql, args)) = self.list_sql(query, None)? else {
            return Ok(vec!["(no tag match: nothing to run)".into()]);
        };
        sql::explain_plan(&self.conn, &sql, &args).map_err(|e| self.err(e))
    }

    /// After a bulk load: update the planner's statistics.
    pub fn settle_after_bulk(&self) {
        let _ = self.conn.execute_batch("PRAGMA optimize");
    }
}

const SUMMARY_COLUMNS: &str = "s.id, s.backend, s.backend_session_id, s.model, s.status, s.created_at, s.last_used_at, \
     s.workdir, s.prompt, s.input_tokens, s.output_tokens, s.cached_tokens, s.total_tokens, s.tags, s.parent_id, \
     s.file_ino, s.file_size, s.file_mtime_ns";

/// A new index counts days in the local zone, by name so that every process (whatever its `TZ`)
/// keeps the same days; a local zone without a name falls back to UTC.
fn rollup_zone_for_new_index() -> Zone {
    match Zone::local() {
        Zone::Local => Zone::UTC,
        zone => zone,
    }
}

/// Case folding as FTS5's trigram index does it, so that both search paths agree: each
/// character on its own (no context rules: Rust's `to_lowercase` turns a final Σ into ς), and
/// ς as σ.
pub fn fold_case(text: &str) -> String {
    text.chars()
        .flat_map(char::to_lowercase)
        .map(|c| if c == 'ς' { 'σ' } else { c })
        .collect()
}

/// A file stamp from three columns (ino, size, mtime) starting at `at`.
fn stamp_at(r: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<FileStamp> {
    Ok(FileStamp {
        ino: r.get(at)?,
        size: r.get(at + 1)?,
        mtime_ns: r.get(at + 2)?,
    })
}

fn summary_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<SessionSummary> {
    let text_err = |i: usize, e: Error| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e))
    };
    let time = |i: usize| -> rusqlite::Result<DateTime<Utc>> {
        let ms: i64 = r.get(i)?;
        Ok(DateTime::from_timestamp_millis(ms).unwrap_or_default())
    };
    let tags: String = r.get(13)?;
    Ok(SessionSummary {
        id: SessionId::parse(&r.get::<_, String>(0)?).map_err(|e| text_err(0, e))?,
        backend: r.get::<_, String>(1)?.parse().map_err(|e| text_err(1, e))?,
        backend_session_id: r.get(2)?,
        model: r.get(3)?,
        status: r.get::<_, String>(4)?.parse().map_err(|e| text_err(4, e))?,
        created_at: time(5)?,
        last_used_at: time(6)?,
        workdir: r.get(7)?,
        prompt: r.get(8)?,
        token_usage: TokenUsage {
            input: r.get::<_, i64>(9)? as u64,
            output: r.get::<_, i64>(10)? as u64,
            cached: r.get::<_, i64>(11)? as u64,
            total: r.get::<_, i64>(12)? as u64,
            ..TokenUsage::default()
        },
        tags: serde_json::from_str(&tags).unwrap_or_default(),
        parent_id: r
            .get::<_, Option<String>>(14)?
            .and_then(|p| SessionId::parse(&p).ok()),
    })
}

/// Triggers and indexes lifted for a bulk load (see `IndexTx::begin_bulk`).
#[must_use = "end_bulk restores the triggers and indexes"]
pub struct BulkLoad {
    lifted: Vec<String>,
}

/// A write transaction on the index; dropped without `commit`, it rolls back.
pub struct IndexTx<'a> {
    tx: Transaction<'a>,
    path: PathBuf,
    fresh: bool,
    rollup_zone: Zone,
}

/// The INSERT shared by the plain and the upsert paths.
macro_rules! insert_session_sql {
    () => {
        "INSERT INTO sessions (id, backend, backend_session_id, model, status, created_at, last_used_at,
             workdir, prompt, input_tokens, output_tokens, cached_tokens, total_tokens, tags, parent_id,
             file_ino, file_size, file_mtime_ns)
         VALUES (:id, :backend, :bsid, :model, :status, :created, :last_used, :workdir, :prompt,
             :input, :output, :cached, :total, :tags, :parent, :ino, :size, :mtime)"
    };
}

impl IndexTx<'_> {
    fn err(&self, source: rusqlite::Error) -> Error {
        Error::Index {
            path: self.path.clone(),
            source,
        }
    }

    /// Declare the index empty for the rest of this transaction (a fresh rebuild), so that rows
    /// are plainly inserted: no conflict handling, no old tags to delete.
    pub fn assume_empty(&mut self) {
        self.fresh = true;
    }

    pub fn upsert(&self, session: &Session, stamp: FileStamp) -> Result<()> {
        let tags_json = serde_json::to_string(&session.tags).expect("tags serialize");
        let last_used = session.last_used_at.timestamp_millis();
        let clamp = |n: u64| n.min(i64::MAX as u64) as i64;
        let values = named_params! {
            ":id": session.id.as_str(),
            ":backend": session.backend.as_str(),
            ":bsid": session.backend_session_id,
            ":model": session.model,
            ":status": session.status.as_str(),
            ":created": session.created_at.timestamp_millis(),
            ":last_used": last_used,
            ":workdir": session.workdir,
            ":prompt": session.prompt,
            ":input": clamp(session.token_usage.input),
            ":output": clamp(session.token_usage.output),
            ":cached": clamp(session.token_usage.cached),
            ":total": clamp(session.token_usage.total),
            ":tags": tags_json,
            ":parent": session.parent_id.as_ref().map(SessionId::as_str),
            ":ino": stamp.ino,
            ":size": stamp.size,
            ":mtime": stamp.mtime_ns,
        };
        let pk: i64 = if self.fresh {
            self.tx
                .prepare_cached(insert_session_sql!())
                .and_then(|mut stmt| stmt.execute(values))
                .map_err(|e| self.err(e))?;
            self.tx.last_insert_rowid()
        } else {
            let pk = self
                .tx
                .prepare_cached(concat!(
                    insert_session_sql!(),
                    " ON CONFLICT (id) DO UPDATE SET backend = excluded.backend,
                     backend_session_id = excluded.backend_session_id, model = excluded.model,
                     status = excluded.status, created_at = excluded.created_at,
                     last_used_at = excluded.last_used_at, workdir = excluded.workdir,
                     prompt = excluded.prompt, input_tokens = excluded.input_tokens,
                     output_tokens = excluded.output_tokens, cached_tokens = excluded.cached_tokens,
                     total_tokens = excluded.total_tokens, tags = excluded.tags, parent_id = excluded.parent_id,
                     file_ino = excluded.file_ino, file_size = excluded.file_size,
                     file_mtime_ns = excluded.file_mtime_ns
                     RETURNING pk"
                ))
                .and_then(|mut stmt| stmt.query_row(values, |r| r.get(0)))
                .map_err(|e| self.err(e))?;
            for sql in [
                "DELETE FROM session_tags WHERE session_pk = ?1",
                "DELETE FROM turns WHERE session_pk = ?1",
                "DELETE FROM invalid_files WHERE name = (SELECT id FROM sessions WHERE pk = ?1)",
            ] {
                self.tx
                    .prepare_cached(sql)
                    .and_then(|mut s| s.execute([pk]))
                    .map_err(|e| self.err(e))?;
            }
            pk
        };
        let mut insert_tag = self
            .tx
            .prepare_cached("INSERT OR IGNORE INTO session_tags (tag, session_pk, last_used_at) VALUES (?1, ?2, ?3)")
            .map_err(|e| self.err(e))?;
        for tag in &session.tags {
            insert_tag
                .execute(params![tag, pk, last_used])
                .map_err(|e| self.err(e))?;
        }
        let mut insert_turn = self
            .tx
            .prepare_cached(
                "INSERT INTO turns (session_pk, seq, at, backend, status, model, runs, input, output,
                     cached, cache_write, reasoning, total, cost_nusd, day, firsts)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
            )
            .map_err(|e| self.err(e))?;
        for row in usage::turn_rows(session, &self.rollup_zone) {
            let u = &row.usage;
            insert_turn
                .execute(params![
                    pk,
                    row.seq,
                    row.at,
                    session.backend.as_str(),
                    session.status.as_str(),
                    row.model,
                    row.runs,
                    clamp(u.input),
                    clamp(u.output),
                    clamp(u.cached),
                    clamp(u.cache_write),
                    clamp(u.reasoning),
                    clamp(u.total),
                    row.cost_nusd,
                    row.day,
                    row.firsts,
                ])
                .map_err(|e| self.err(e))?;
        }
        Ok(())
    }

    /// Prepare for loading many rows: lift the triggers and secondary indexes and rebuild them
    /// once at the end, from the SQL saved here (the migrations stay their only source).
    /// Row-by-row maintenance is what makes bulk loads slow: FTS5 flushes its pending terms at
    /// every statement savepoint, and each index is a random-order B-tree insert per row.
    pub fn begin_bulk(&self) -> Result<BulkLoad> {
        let lifted: Vec<(String, String, String)> = self
            .tx
            .prepare(
                "SELECT type, name, sql FROM sqlite_master
                 WHERE tbl_name IN ('sessions', 'session_tags', 'turns') AND sql IS NOT NULL
                   AND (type = 'trigger' OR type = 'index')
                   -- the load itself deletes a session's old tags through this one
                   AND name != 'session_tags_by_session'",
            )
            .and_then(|mut stmt| {
                stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                    .collect::<rusqlite::Result<_>>()
            })
            .map_err(|e| self.err(e))?;
        for (kind, name, _) in &lifted {
            let drop = if kind == "index" {
                "DROP INDEX"
            } else {
                "DROP TRIGGER"
            };
            self.tx
                .execute_batch(&format!("{drop} \"{}\"", name.replace('"', "\"\"")))
                .map_err(|e| self.err(e))?;
        }
        Ok(BulkLoad {
            lifted: lifted.into_iter().map(|(_, _, sql)| sql).collect(),
        })
    }

    /// Rebuild what `begin_bulk` lifted: the search index, tag counts, indexes and triggers.
    pub fn end_bulk(&self, bulk: BulkLoad) -> Result<()> {
        self.tx
            .execute_batch(
                "INSERT INTO prompts_fts (prompts_fts, rank) VALUES ('hashsize', 67108864);
                 INSERT INTO prompts_fts (prompts_fts) VALUES ('rebuild');
                 INSERT INTO prompts_fts (prompts_fts, rank) VALUES ('hashsize', 1048576);
                 DELETE FROM tag_counts;
                 INSERT INTO tag_counts (tag, n) SELECT tag, count(*) FROM session_tags GROUP BY tag;",
            )
            .map_err(|e| self.err(e))?;
        self.tx
            .execute_batch(usage::REFILL_ROLLUP)
            .map_err(|e| self.err(e))?;
        for sql in bulk.lifted {
            self.tx.execute_batch(&sql).map_err(|e| self.err(e))?;
        }
        Ok(())
    }

    /// Forget the file `<stem>.json`, valid or not.
    pub fn remove(&self, stem: &str) -> Result<()> {
        for sql in [
            "DELETE FROM sessions WHERE id = ?1",
            "DELETE FROM invalid_files WHERE name = ?1",
        ] {
            self.tx
                .prepare_cached(sql)
                .and_then(|mut s| s.execute([stem]))
                .map_err(|e| self.err(e))?;
        }
        Ok(())
    }

    pub fn mark_invalid(&self, stem: &str, reason: &str, stamp: FileStamp) -> Result<()> {
        if !self.fresh {
            self.tx
                .prepare_cached("DELETE FROM sessions WHERE id = ?1")
                .and_then(|mut s| s.execute([stem]))
                .map_err(|e| self.err(e))?;
        }
        self.tx
            .prepare_cached(
                "INSERT OR REPLACE INTO invalid_files (name, reason, file_ino, file_size, file_mtime_ns)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .and_then(|mut s| s.execute(params![stem, reason, stamp.ino, stamp.size, stamp.mtime_ns]))
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Remember the sessions directory's stamp (None: unknown, rescan next time).
    pub fn set_dir_stamp(&self, stamp: Option<DirStamp>) -> Result<()> {
        self.tx
            .prepare_cached("INSERT OR REPLACE INTO store_state (key, value) VALUES (?1, ?2)")
            .and_then(|mut s| s.execute(params![DIR_KEY, stamp.map(|d| d.key())]))
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    pub fn commit(self) -> Result<()> {
        let path = self.path;
        self.tx
            .commit()
            .map_err(|e| Error::Index { path, source: e })
    }
}
