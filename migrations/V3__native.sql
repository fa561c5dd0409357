-- Conversations imported from the CLIs' own transcripts (`sessions import`).

-- Where a session came from: 'clinvk' (run through clinvk) or 'imported'.
ALTER TABLE sessions ADD COLUMN origin TEXT NOT NULL DEFAULT 'clinvk';

-- The import finds a conversation's session by the CLI's id for it.
CREATE INDEX sessions_by_backend_id ON sessions (backend, backend_session_id)
    WHERE backend_session_id IS NOT NULL;

-- The transcript files already read, by path, with the stamp (inode, size, mtime) they had and
-- the session they went into: an unchanged file is not read again, and one that is gone marks
-- its session's transcript gone. Like the rest of the index a cache: without it every
-- transcript is read again, and what it holds is already in the session files.
CREATE TABLE native_files (
    path          TEXT    PRIMARY KEY,
    backend       TEXT    NOT NULL,
    session_id    TEXT,
    file_ino      INTEGER NOT NULL,
    file_size     INTEGER NOT NULL,
    file_mtime_ns INTEGER NOT NULL
) WITHOUT ROWID;
