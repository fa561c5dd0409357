//! A session's row in the index: the `sessions` columns that mirror its file, named once here
//! for the INSERT, the upsert and the reader (the migrations create them; a test holds the two
//! to each other), and read back by position.

use chrono::{DateTime, Utc};
use std::sync::LazyLock;

use crate::domain::SessionId;
use crate::error::Error;
use crate::store::files::FileStamp;
use crate::store::query::SessionSummary;
use crate::store::session::TokenUsage;

/// The columns of a session's row, in the order the migrations make them.
pub(super) const SESSION_COLUMNS: [&str; 20] = [
    "id",
    "backend",
    "backend_session_id",
    "model",
    "status",
    "created_at",
    "last_used_at",
    "workdir",
    "prompt",
    "input_tokens",
    "output_tokens",
    "cached_tokens",
    "total_tokens",
    "tags",
    "parent_id",
    "file_ino",
    "file_size",
    "file_mtime_ns",
    "origin",
    "host",
];

/// `s.id, s.backend, ...`: the columns as the listing selects them (table alias `s`).
pub(super) static SELECT_SESSION: LazyLock<String> = LazyLock::new(|| {
    SESSION_COLUMNS
        .iter()
        .map(|c| format!("s.{c}"))
        .collect::<Vec<_>>()
        .join(", ")
});

/// `INSERT INTO sessions (id, ...) VALUES (:id, ...)`: each value bound by its column's name.
pub(super) static INSERT_SESSION: LazyLock<String> = LazyLock::new(|| {
    let params: Vec<String> = SESSION_COLUMNS.iter().map(|c| format!(":{c}")).collect();
    format!(
        "INSERT INTO sessions ({}) VALUES ({})",
        SESSION_COLUMNS.join(", "),
        params.join(", ")
    )
});

/// The INSERT that updates a row already there (same id) instead, and returns its key.
pub(super) static UPSERT_SESSION: LazyLock<String> = LazyLock::new(|| {
    let set: Vec<String> = SESSION_COLUMNS[1..]
        .iter()
        .map(|c| format!("{c} = excluded.{c}"))
        .collect();
    format!(
        "{} ON CONFLICT (id) DO UPDATE SET {} RETURNING pk",
        *INSERT_SESSION,
        set.join(", ")
    )
});

/// Where a column of `SESSION_COLUMNS` is in a row that starts with `SELECT_SESSION`. Rows are
/// read by position, not by name: finding a column by its name costs more than reading it, and
/// a listing reads millions.
const fn at(column: &str) -> usize {
    let mut i = 0;
    while i < SESSION_COLUMNS.len() {
        if const_eq(SESSION_COLUMNS[i], column) {
            return i;
        }
        i += 1;
    }
    panic!("not a session column");
}

const fn const_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// The file stamp of a row that starts with `SELECT_SESSION`.
pub(super) fn stamp_of(r: &rusqlite::Row<'_>) -> rusqlite::Result<FileStamp> {
    stamp_at(r, const { at("file_ino") })
}

/// A file stamp from three columns (ino, size, mtime) starting at `at`.
pub(super) fn stamp_at(r: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<FileStamp> {
    Ok(FileStamp {
        ino: r.get(at)?,
        size: r.get(at + 1)?,
        mtime_ns: r.get(at + 2)?,
    })
}

/// Column `column` of `r` as text, where SQLite holds it (no copy).
pub(super) fn text_at<'r>(r: &'r rusqlite::Row<'_>, column: usize) -> rusqlite::Result<&'r str> {
    r.get_ref(column)?.as_str().map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(column, rusqlite::types::Type::Text, Box::new(e))
    })
}

/// A listing row (one that starts with `SELECT_SESSION`) as a summary.
pub(super) fn summary_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<SessionSummary> {
    // Positions worked out at compile time; texts parsed where SQLite holds them.
    macro_rules! col {
        ($name:literal) => {
            const { at($name) }
        };
    }
    let text_err = |column: usize, e: Error| {
        rusqlite::Error::FromSqlConversionFailure(column, rusqlite::types::Type::Text, Box::new(e))
    };
    let text = |column: usize| text_at(r, column);
    let time = |column: usize| -> rusqlite::Result<DateTime<Utc>> {
        let ms: i64 = r.get(column)?;
        Ok(DateTime::from_timestamp_millis(ms).unwrap_or_default())
    };
    let count = |column: usize| -> rusqlite::Result<u64> { Ok(r.get::<_, i64>(column)? as u64) };
    let tags = match text(col!("tags"))? {
        "[]" => Vec::new(),
        tags => serde_json::from_str(tags).unwrap_or_default(),
    };
    let (id, backend, status, origin) =
        (col!("id"), col!("backend"), col!("status"), col!("origin"));
    Ok(SessionSummary {
        id: SessionId::parse(text(id)?).map_err(|e| text_err(id, e))?,
        backend: text(backend)?.parse().map_err(|e| text_err(backend, e))?,
        backend_session_id: r.get(col!("backend_session_id"))?,
        model: r.get(col!("model"))?,
        status: text(status)?.parse().map_err(|e| text_err(status, e))?,
        created_at: time(col!("created_at"))?,
        last_used_at: time(col!("last_used_at"))?,
        workdir: r.get(col!("workdir"))?,
        prompt: r.get(col!("prompt"))?,
        token_usage: TokenUsage {
            input: count(col!("input_tokens"))?,
            output: count(col!("output_tokens"))?,
            cached: count(col!("cached_tokens"))?,
            total: count(col!("total_tokens"))?,
            ..TokenUsage::default()
        },
        tags,
        parent_id: r
            .get_ref(col!("parent_id"))?
            .as_str_or_null()
            .ok()
            .flatten()
            .and_then(|p| SessionId::parse(p).ok()),
        origin: text(origin)?.parse().map_err(|e| text_err(origin, e))?,
        host: r.get(col!("host"))?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::index::Index;
    use crate::timespec::Zone;

    /// The column list written here is the table the migrations make (bar its key `pk`).
    #[test]
    fn the_columns_are_the_tables() {
        let dir = tempfile::tempdir().unwrap();
        let index = Index::create_fresh(&dir.path().join("i.db"), Some(Zone::UTC)).unwrap();
        let mut stmt = index.conn.prepare("PRAGMA table_info(sessions)").unwrap();
        let columns: Vec<String> = stmt
            .query_map([], |r| r.get::<_, String>(1))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        let mut want = vec!["pk".to_string()];
        want.extend(SESSION_COLUMNS.iter().map(|c| c.to_string()));
        assert_eq!(columns, want);
        assert!(UPSERT_SESSION.contains("file_mtime_ns = excluded.file_mtime_ns"));
        assert!(!UPSERT_SESSION.contains("id = excluded.id,"));
    }
}
