-- What was said in each session, for `sessions search`: one row per message (a prompt a person
-- typed, an assistant's answer), from the session file (its runs' prompts) and from the CLI's
-- transcript. Like the rest of the index, rebuilt from those files. role: 0 a person, 1 the
-- assistant. at: Unix milliseconds, when known.
CREATE TABLE texts (
    id   INTEGER PRIMARY KEY,
    role INTEGER NOT NULL,
    at   INTEGER,
    body TEXT    NOT NULL
);

-- Whose messages are where: each write of a session's messages takes the next ids in one run,
-- first..=last. source: the file they came from (0: the session file; else a hash of the
-- transcript's path), so that a transcript read again whole replaces its own. Ids are dense,
-- not derived from the session, because the trigram index stores each id as the difference
-- from the one before: sessions' ids spread apart made that index half as large again.
CREATE TABLE text_runs (
    first      INTEGER PRIMARY KEY,
    last       INTEGER NOT NULL,
    session_pk INTEGER NOT NULL,
    source     INTEGER NOT NULL
);
CREATE INDEX text_runs_by_session ON text_runs (session_pk, source);

-- Trigrams of every message: any substring of three or more characters, in any script, is
-- found without reading the text. No positions (detail=none) and no copy of the text (external
-- content): the index is smaller than the text it covers; phrases and words are confirmed
-- against the text of the messages it names. It indexes each message with its runs of white
-- space as one space (`clinvk_flat`, a function of clinvk's: a phrase matches across a line
-- break) and two newlines after it, so that every character starts a trigram: a term of one or
-- two characters (a two-character CJK word) is found through the trigrams that begin with it
-- (`texts_trigrams`).
CREATE VIEW texts_indexed AS SELECT id, clinvk_flat(body) || char(10, 10) AS body FROM texts;
CREATE VIRTUAL TABLE texts_fts USING fts5 (
    body, content = 'texts_indexed', content_rowid = 'id', tokenize = 'trigram',
    detail = 'none', columnsize = 0
);
CREATE VIRTUAL TABLE texts_trigrams USING fts5vocab (texts_fts, 'row');
CREATE TRIGGER texts_fts_insert AFTER INSERT ON texts BEGIN
    INSERT INTO texts_fts (rowid, body) VALUES (new.id, clinvk_flat(new.body) || char(10, 10));
END;
CREATE TRIGGER texts_fts_delete AFTER DELETE ON texts BEGIN
    INSERT INTO texts_fts (texts_fts, rowid, body)
        VALUES ('delete', old.id, clinvk_flat(old.body) || char(10, 10));
END;

-- An index of the previous schema holds no texts: forget its rows and the transcripts it read
-- (a cache), so that the next use reads every file again and fills the text index too.
DELETE FROM sessions;
DELETE FROM invalid_files;
DELETE FROM native_files;
DELETE FROM native_walks;
DELETE FROM store_state WHERE key = 'dir_stamp';
