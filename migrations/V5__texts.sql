-- What was said in each session, for `sessions search`: one row per message (a prompt a person
-- typed, an assistant's answer), from the session file (its runs' prompts) and from the CLI's
-- transcript. Like the rest of the index, rebuilt from those files.
--
-- id is the session's pk * 2^24 + the message's number in the session, so that a search groups
-- its matches by session from the text index alone, and a session's messages are one range.
-- source: the file a message came from (0: the session file; else a hash of the transcript's
-- path), so that a transcript read again whole replaces its own messages. role: 0 a person,
-- 1 the assistant. at: Unix milliseconds, when known.
CREATE TABLE texts (
    id     INTEGER PRIMARY KEY,
    source INTEGER NOT NULL,
    role   INTEGER NOT NULL,
    at     INTEGER,
    body   TEXT    NOT NULL
);

-- Trigrams of every message: any substring of three or more characters, in any script, is
-- found without reading the text. No positions (detail=none) and no copy of the text (external
-- content): the index is smaller than the text it covers; phrases and words are confirmed
-- against the text of the few messages it names.
CREATE VIRTUAL TABLE texts_fts USING fts5 (
    body, content = 'texts', content_rowid = 'id', tokenize = 'trigram', detail = 'none',
    columnsize = 0
);
CREATE TRIGGER texts_fts_insert AFTER INSERT ON texts BEGIN
    INSERT INTO texts_fts (rowid, body) VALUES (new.id, new.body);
END;
CREATE TRIGGER texts_fts_delete AFTER DELETE ON texts BEGIN
    INSERT INTO texts_fts (texts_fts, rowid, body) VALUES ('delete', old.id, old.body);
END;
