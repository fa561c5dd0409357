-- The session index: a cache over the JSON files in this directory. Every row can be rebuilt from
-- the files (`clinvk sessions reindex`), so a schema change may also simply drop and rebuild.

-- One row per valid session file. Times are Unix milliseconds (UTC); `tags` is the file's JSON
-- array, kept for output; file_* identify the file version the row was read from.
CREATE TABLE sessions (
    pk                 INTEGER PRIMARY KEY,
    id                 TEXT    NOT NULL UNIQUE,
    backend            TEXT    NOT NULL,
    backend_session_id TEXT,
    model              TEXT,
    status             TEXT    NOT NULL,
    created_at         INTEGER NOT NULL,
    last_used_at       INTEGER NOT NULL,
    workdir            TEXT    NOT NULL,
    prompt             TEXT    NOT NULL,
    input_tokens       INTEGER NOT NULL,
    output_tokens      INTEGER NOT NULL,
    cached_tokens      INTEGER NOT NULL,
    total_tokens       INTEGER NOT NULL,
    tags               TEXT    NOT NULL,
    parent_id          TEXT,
    file_ino           INTEGER NOT NULL,
    file_size          INTEGER NOT NULL,
    file_mtime_ns      INTEGER NOT NULL
);

-- One index per filter shape of `sessions list`, each ending in last_used_at so that
-- "newest first, LIMIT n" reads n entries instead of sorting.
CREATE INDEX sessions_by_last_used ON sessions (last_used_at);
CREATE INDEX sessions_by_backend   ON sessions (backend, last_used_at);
CREATE INDEX sessions_by_status    ON sessions (status, last_used_at);
CREATE INDEX sessions_by_workdir   ON sessions (workdir, last_used_at);

-- Tags, one row per (tag, session), with last_used_at copied in so that a tag filter walks
-- the tag's sessions newest first.
CREATE TABLE session_tags (
    tag          TEXT    NOT NULL,
    session_pk   INTEGER NOT NULL REFERENCES sessions (pk) ON DELETE CASCADE,
    last_used_at INTEGER NOT NULL,
    PRIMARY KEY (tag, session_pk)
) WITHOUT ROWID;
CREATE INDEX session_tags_by_recent  ON session_tags (tag, last_used_at);
CREATE INDEX session_tags_by_session ON session_tags (session_pk);

-- How many sessions carry each tag, so that an AND of tags starts from the rarest one.
CREATE TABLE tag_counts (
    tag TEXT PRIMARY KEY,
    n   INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TRIGGER session_tags_count_insert AFTER INSERT ON session_tags BEGIN
    INSERT INTO tag_counts (tag, n) VALUES (new.tag, 1)
        ON CONFLICT (tag) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER session_tags_count_delete AFTER DELETE ON session_tags BEGIN
    UPDATE tag_counts SET n = n - 1 WHERE tag = old.tag;
    DELETE FROM tag_counts WHERE tag = old.tag AND n <= 0;
END;

-- Substring search over prompts (`--search`): a quoted phrase of trigrams matches any text of
-- three or more characters without reading every prompt. Positions are needed for phrases
-- (detail=full); column sizes, used only for ranking, are not kept.
CREATE VIRTUAL TABLE prompts_fts USING fts5 (
    prompt, content = 'sessions', content_rowid = 'pk', tokenize = 'trigram', columnsize = 0
);
CREATE TRIGGER sessions_fts_insert AFTER INSERT ON sessions BEGIN
    INSERT INTO prompts_fts (rowid, prompt) VALUES (new.pk, new.prompt);
END;
CREATE TRIGGER sessions_fts_delete AFTER DELETE ON sessions BEGIN
    INSERT INTO prompts_fts (prompts_fts, rowid, prompt) VALUES ('delete', old.pk, old.prompt);
END;
CREATE TRIGGER sessions_fts_update AFTER UPDATE OF prompt ON sessions BEGIN
    INSERT INTO prompts_fts (prompts_fts, rowid, prompt) VALUES ('delete', old.pk, old.prompt);
    INSERT INTO prompts_fts (rowid, prompt) VALUES (new.pk, new.prompt);
END;

-- Files that are not valid sessions: remembered (with their stamp) so that they are reported
-- on every listing without being parsed again, and never deleted.
CREATE TABLE invalid_files (
    name          TEXT    PRIMARY KEY,
    reason        TEXT    NOT NULL,
    file_ino      INTEGER NOT NULL,
    file_size     INTEGER NOT NULL,
    file_mtime_ns INTEGER NOT NULL
) WITHOUT ROWID;

-- Small facts about the index itself, e.g. the directory mtime it was last reconciled with.
CREATE TABLE store_state (
    key   TEXT PRIMARY KEY,
    value
) WITHOUT ROWID;
