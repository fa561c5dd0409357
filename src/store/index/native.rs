//! What the import of the CLIs' transcripts keeps in the index: which session holds a
//! conversation (by the CLI's id for it), and which transcript files were read, with their
//! stamps.

use std::collections::HashMap;

use rusqlite::{params, OptionalExtension};

use super::row::stamp_at;
use super::{Index, IndexTx};
use crate::domain::Backend;
use crate::error::Result;
use crate::store::files::FileStamp;

/// A transcript file the index remembers reading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NativeFile {
    pub backend: Backend,
    pub stamp: FileStamp,
    /// The session its conversation went into.
    pub session_id: Option<String>,
}

// The questions an import asks on every catch-up, by file or conversation: each answered from
// an index (`tests` below checks the plans).
const READ_POINT: &str = "SELECT n.read_offset, n.read_tail, n.read_state FROM native_files n
     JOIN sessions s ON s.id = n.session_id
     WHERE n.path = ?1 AND n.read_offset IS NOT NULL
       AND n.read_tail IS NOT NULL AND n.read_state IS NOT NULL";
const WALK: &str = "SELECT fingerprint FROM native_walks WHERE roots = ?1";
const BY_BACKEND_ID: &str = "SELECT id FROM sessions WHERE backend = ?1 AND backend_session_id = ?2
     ORDER BY origin = 'imported', id LIMIT 1";
// For `--include-deleted`: every file read, each looked up by session id.
const WITHOUT_SESSION: &str = "SELECT n.path FROM native_files n
     LEFT JOIN sessions s ON s.id = n.session_id WHERE s.id IS NULL";
// One file's.
const FILE_WITHOUT_SESSION: &str = "SELECT 1 FROM native_files n
     LEFT JOIN sessions s ON s.id = n.session_id WHERE n.path = ?1 AND s.id IS NULL";

/// Where the last read of a growing transcript stopped: the next read goes on from `offset`
/// when the file is still recognised by `tail` (what the reader keeps of the bytes before the
/// offset), with `state` (what the CLI's reader needs to go on). Both opaque to the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadPoint {
    pub offset: u64,
    pub tail: Vec<u8>,
    pub state: Vec<u8>,
}

impl Index {
    /// The read points of the files at `paths` whose conversation's session is still in the
    /// index (a read from a point adds to that session; without it, the file is read whole).
    pub fn read_points(&self, paths: &[&str]) -> Result<HashMap<String, ReadPoint>> {
        let mut stmt = self
            .conn
            .prepare_cached(READ_POINT)
            .map_err(|e| self.err(e))?;
        let mut points = HashMap::new();
        for path in paths {
            let point = stmt
                .query_row([path], |r| {
                    Ok(ReadPoint {
                        offset: r.get::<_, i64>(0)?.max(0) as u64,
                        tail: r.get(1)?,
                        state: r.get(2)?,
                    })
                })
                .optional()
                .map_err(|e| self.err(e))?;
            if let Some(point) = point {
                points.insert(path.to_string(), point);
            }
        }
        Ok(points)
    }

    /// The fingerprint of the last complete look at the directories `roots`.
    pub fn native_walk(&self, roots: &str) -> Result<Option<i64>> {
        self.conn
            .prepare_cached(WALK)
            .and_then(|mut stmt| stmt.query_row([roots], |r| r.get(0)).optional())
            .map_err(|e| self.err(e))
    }

    /// The transcript files read whose conversation has no session now (deleted, or left out
    /// because it had been): all of them, or those `among` these paths.
    pub fn native_files_without_session(
        &self,
        among: Option<&[&str]>,
    ) -> Result<std::collections::HashSet<String>> {
        let Some(paths) = among else {
            let mut stmt = self
                .conn
                .prepare_cached(WITHOUT_SESSION)
                .map_err(|e| self.err(e))?;
            let rows = stmt
                .query_map([], |r| r.get::<_, String>(0))
                .map_err(|e| self.err(e))?;
            return rows
                .collect::<rusqlite::Result<_>>()
                .map_err(|e| self.err(e));
        };
        let mut stmt = self
            .conn
            .prepare_cached(FILE_WITHOUT_SESSION)
            .map_err(|e| self.err(e))?;
        let mut out = std::collections::HashSet::new();
        for path in paths {
            if stmt.exists([path]).map_err(|e| self.err(e))? {
                out.insert(path.to_string());
            }
        }
        Ok(out)
    }

    /// Every session holding a conversation, by backend and the CLI's id for it (what
    /// `IndexTx::session_by_backend_id` answers one at a time, in one pass for many).
    pub fn sessions_by_backend_id(&self) -> Result<HashMap<(Backend, String), String>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT backend, backend_session_id, id FROM sessions
                 WHERE backend_session_id IS NOT NULL ORDER BY origin = 'imported' DESC, id DESC",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                ))
            })
            .map_err(|e| self.err(e))?;
        let mut all = HashMap::new();
        for row in rows {
            let (backend, native, id) = row.map_err(|e| self.err(e))?;
            if let Ok(backend) = backend.parse() {
                // Later rows win: the order puts the one `session_by_backend_id` picks last.
                all.insert((backend, native), id);
            }
        }
        Ok(all)
    }

    /// The transcript files among `paths` read so far, by path.
    pub fn native_files_among(&self, paths: &[&str]) -> Result<HashMap<String, NativeFile>> {
        let mut stmt = self
            .conn
            .prepare_cached(&format!(
                "SELECT path, {FILE_COLUMNS} FROM native_files WHERE path = ?1"
            ))
            .map_err(|e| self.err(e))?;
        let mut files = HashMap::new();
        for path in paths {
            let row = stmt
                .query_row([path], native_file_at)
                .optional()
                .map_err(|e| self.err(e))?;
            if let Some((path, Some(file))) = row {
                files.insert(path, file);
            }
        }
        Ok(files)
    }

    /// Every transcript file read so far, by path.
    pub fn native_files(&self) -> Result<HashMap<String, NativeFile>> {
        let mut stmt = self
            .conn
            .prepare_cached(&format!("SELECT path, {FILE_COLUMNS} FROM native_files"))
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], native_file_at)
            .map_err(|e| self.err(e))?;
        let mut files = HashMap::new();
        for row in rows {
            if let (path, Some(file)) = row.map_err(|e| self.err(e))? {
                files.insert(path, file);
            }
        }
        Ok(files)
    }
}

/// What `native_file_at` reads of a `native_files` row, after its path.
const FILE_COLUMNS: &str = "backend, file_ino, file_size, file_mtime_ns, session_id";

/// A `native_files` row (`path, FILE_COLUMNS`): its path, and the file as read (None for a
/// backend this build does not know: as if never read).
fn native_file_at(r: &rusqlite::Row<'_>) -> rusqlite::Result<(String, Option<NativeFile>)> {
    let backend = r.get_ref(1)?.as_str().ok().and_then(|b| b.parse().ok());
    let (stamp, session_id) = (stamp_at(r, 2)?, r.get::<_, Option<String>>(5)?);
    Ok((
        r.get(0)?,
        backend.map(|backend| NativeFile {
            backend,
            stamp,
            session_id,
        }),
    ))
}

/// A session holding the conversation: the one run through clinvk if there are several.
pub(super) fn session_by_backend_id(
    conn: &rusqlite::Connection,
    backend: Backend,
    native_id: &str,
) -> rusqlite::Result<Option<String>> {
    conn.prepare_cached(BY_BACKEND_ID).and_then(|mut stmt| {
        stmt.query_row(params![backend.as_str(), native_id], |r| r.get(0))
            .optional()
    })
}

impl IndexTx<'_> {
    /// The session holding the conversation `native_id` of `backend`, if any, seeing what this
    /// transaction wrote.
    pub fn session_by_backend_id(
        &self,
        backend: Backend,
        native_id: &str,
    ) -> Result<Option<String>> {
        session_by_backend_id(&self.tx, backend, native_id).map_err(|e| self.err(e))
    }

    pub fn record_native_file(
        &self,
        path: &str,
        file: &NativeFile,
        point: Option<&ReadPoint>,
    ) -> Result<()> {
        self.tx
            .prepare_cached(
                "INSERT OR REPLACE INTO native_files
                 (path, backend, session_id, file_ino, file_size, file_mtime_ns,
                  read_offset, read_tail, read_state)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )
            .and_then(|mut stmt| {
                stmt.execute(params![
                    path,
                    file.backend.as_str(),
                    file.session_id,
                    file.stamp.ino,
                    file.stamp.size,
                    file.stamp.mtime_ns,
                    point.map(|p| p.offset.min(i64::MAX as u64) as i64),
                    point.map(|p| &p.tail),
                    point.map(|p| &p.state),
                ])
            })
            .map(drop)
            .map_err(|e| self.err(e))
    }

    pub fn record_native_walk(&self, roots: &str, fingerprint: i64) -> Result<()> {
        self.tx
            .prepare_cached(
                "INSERT OR REPLACE INTO native_walks (roots, fingerprint) VALUES (?1, ?2)",
            )
            .and_then(|mut stmt| stmt.execute(params![roots, fingerprint]))
            .map(drop)
            .map_err(|e| self.err(e))
    }

    /// Forget a transcript file, and what it said in its session's texts (a session whose
    /// transcript the CLI deleted has those in its file by now: `NativeMerge::mark_gone`; one
    /// whose conversation moved to another file has them from that file).
    pub fn forget_native_file(&self, path: &str) -> Result<()> {
        let session: Option<String> = self
            .tx
            .prepare_cached("SELECT session_id FROM native_files WHERE path = ?1")
            .and_then(|mut stmt| stmt.query_row([path], |r| r.get(0)).optional())
            .map_err(|e| self.err(e))?
            .flatten();
        if let Some(session) = session {
            self.forget_texts(&session, path)?;
        }
        self.tx
            .prepare_cached("DELETE FROM native_files WHERE path = ?1")
            .and_then(|mut stmt| stmt.execute([path]))
            .map(drop)
            .map_err(|e| self.err(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(index: &Index, sql: &str) -> String {
        let mut stmt = index
            .conn
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .unwrap();
        // Unbound parameters are NULL: the plan is the same.
        let mut rows = stmt.raw_query();
        let mut lines = Vec::new();
        while let Some(row) = rows.next().unwrap() {
            lines.push(row.get::<_, String>(3).unwrap());
        }
        lines.join("\n")
    }

    #[test]
    fn the_import_questions_are_answered_from_indexes() {
        let index = Index::in_memory(std::path::Path::new("plans")).unwrap();
        for (sql, uses) in [
            (READ_POINT, "PRIMARY KEY (path=?)"),
            (FILE_WITHOUT_SESSION, "PRIMARY KEY (path=?)"),
            (WALK, "PRIMARY KEY (roots=?)"),
            (BY_BACKEND_ID, "sessions_by_backend_id"),
        ] {
            let plan = plan(&index, sql);
            assert!(!plan.contains("SCAN"), "a scan:\n{plan}\n{sql}");
            assert!(plan.contains(uses), "{uses}:\n{plan}");
        }
        // `--include-deleted` reads every file record once, each session by its key.
        let plan = plan(&index, WITHOUT_SESSION);
        assert!(!plan.contains("SCAN s"), "{plan}");
    }
}
