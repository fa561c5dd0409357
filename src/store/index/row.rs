//! A session's row in the index: the `sessions` columns that mirror its file, named once here
//! for the INSERT, the upsert and the reader (the migrations create them; a test holds the two
//! to each other), and read back by name.

use chrono::{DateTime, Utc};
use std::sync::LazyLock;

use crate::domain::SessionId;
use crate::error::Error;
use crate::store::files::FileStamp;
use crate::store::query::SessionSummary;
use crate::store::session::TokenUsage;

/// The columns of a session's row, in the order the migrations make them.
pub(super) const SESSION_COLUMNS: [&str; 19] = [
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

/// A file stamp from the row's `file_ino`, `file_size` and `file_mtime_ns`.
pub(super) fn stamp_of(r: &rusqlite::Row<'_>) -> rusqlite::Result<FileStamp> {
    Ok(FileStamp {
        ino: r.get("file_ino")?,
        size: r.get("file_size")?,
        mtime_ns: r.get("file_mtime_ns")?,
    })
}

/// A file stamp from three columns (ino, size, mtime) starting at `at`.
pub(super) fn stamp_at(r: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<FileStamp> {
    Ok(FileStamp {
        ino: r.get(at)?,
        size: r.get(at + 1)?,
        mtime_ns: r.get(at + 2)?,
    })
}

/// A listing row as a summary.
pub(super) fn summary_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<SessionSummary> {
    let text_err = |column: &str, e: Error| {
        let at = SESSION_COLUMNS
            .iter()
            .position(|c| *c == column)
            .unwrap_or(0);
        rusqlite::Error::FromSqlConversionFailure(at, rusqlite::types::Type::Text, Box::new(e))
    };
    let time = |column: &str| -> rusqlite::Result<DateTime<Utc>> {
        let ms: i64 = r.get(column)?;
        Ok(DateTime::from_timestamp_millis(ms).unwrap_or_default())
    };
    let tags: String = r.get("tags")?;
    Ok(SessionSummary {
        id: SessionId::parse(&r.get::<_, String>("id")?).map_err(|e| text_err("id", e))?,
        backend: r
            .get::<_, String>("backend")?
            .parse()
            .map_err(|e| text_err("backend", e))?,
        backend_session_id: r.get("backend_session_id")?,
        model: r.get("model")?,
        status: r
            .get::<_, String>("status")?
            .parse()
            .map_err(|e| text_err("status", e))?,
        created_at: time("created_at")?,
        last_used_at: time("last_used_at")?,
        workdir: r.get("workdir")?,
        prompt: r.get("prompt")?,
        token_usage: TokenUsage {
            input: r.get::<_, i64>("input_tokens")? as u64,
            output: r.get::<_, i64>("output_tokens")? as u64,
            cached: r.get::<_, i64>("cached_tokens")? as u64,
            total: r.get::<_, i64>("total_tokens")? as u64,
            ..TokenUsage::default()
        },
        tags: serde_json::from_str(&tags).unwrap_or_default(),
        parent_id: r
            .get::<_, Option<String>>("parent_id")?
            .and_then(|p| SessionId::parse(&p).ok()),
        origin: r
            .get::<_, String>("origin")?
            .parse()
            .map_err(|e| text_err("origin", e))?,
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
