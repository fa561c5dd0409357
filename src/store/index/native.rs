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

impl Index {
    /// The session holding the conversation `native_id` of `backend`, if any.
    pub fn session_by_backend_id(
        &self,
        backend: Backend,
        native_id: &str,
    ) -> Result<Option<String>> {
        self.conn
            .prepare_cached(
                "SELECT id FROM sessions WHERE backend = ?1 AND backend_session_id = ?2
                 ORDER BY origin = 'imported', id LIMIT 1",
            )
            .and_then(|mut stmt| {
                stmt.query_row(params![backend.as_str(), native_id], |r| r.get(0))
                    .optional()
            })
            .map_err(|e| self.err(e))
    }

    /// Every session holding a conversation, by backend and the CLI's id for it (what
    /// `session_by_backend_id` answers one at a time, in one pass for many).
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

    /// Every transcript file read so far, by path.
    pub fn native_files(&self) -> Result<HashMap<String, NativeFile>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT path, backend, file_ino, file_size, file_mtime_ns, session_id FROM native_files",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| {
                let backend: String = r.get(1)?;
                Ok((
                    r.get::<_, String>(0)?,
                    backend,
                    stamp_at(r, 2)?,
                    r.get::<_, Option<String>>(5)?,
                ))
            })
            .map_err(|e| self.err(e))?;
        let mut files = HashMap::new();
        for row in rows {
            let (path, backend, stamp, session_id) = row.map_err(|e| self.err(e))?;
            // A backend this build does not know: as if never read.
            if let Ok(backend) = backend.parse() {
                files.insert(
                    path,
                    NativeFile {
                        backend,
                        stamp,
                        session_id,
                    },
                );
            }
        }
        Ok(files)
    }
}

impl IndexTx<'_> {
    pub fn record_native_file(&self, path: &str, file: &NativeFile) -> Result<()> {
        self.tx
            .prepare_cached(
                "INSERT OR REPLACE INTO native_files
                 (path, backend, session_id, file_ino, file_size, file_mtime_ns)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .and_then(|mut stmt| {
                stmt.execute(params![
                    path,
                    file.backend.as_str(),
                    file.session_id,
                    file.stamp.ino,
                    file.stamp.size,
                    file.stamp.mtime_ns
                ])
            })
            .map(drop)
            .map_err(|e| self.err(e))
    }

    pub fn forget_native_file(&self, path: &str) -> Result<()> {
        self.tx
            .prepare_cached("DELETE FROM native_files WHERE path = ?1")
            .and_then(|mut stmt| stmt.execute([path]))
            .map(drop)
            .map_err(|e| self.err(e))
    }
}
