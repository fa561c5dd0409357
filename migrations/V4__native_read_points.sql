-- Where the last read of a growing transcript stopped, so that the next one reads only what was
-- appended: the offset just past its last whole line, the bytes just before that offset (a file
-- rewritten in place no longer has them there), and what the CLI's reader needs to go on (its
-- dedupe state, the conversation's id). NULL: read the file whole next time (a compressed
-- rollout, a legacy record, a read that broke off).
ALTER TABLE native_files ADD COLUMN read_offset INTEGER;
ALTER TABLE native_files ADD COLUMN read_tail BLOB;
ALTER TABLE native_files ADD COLUMN read_state BLOB;

-- The last complete look at the CLIs' directories, per set of directories looked in: a
-- fingerprint of every transcript file found there with its stamp. The same fingerprint at the
-- next look means that nothing changed, and the files need not be compared one by one.
CREATE TABLE native_walks (
    roots       TEXT    PRIMARY KEY,
    fingerprint INTEGER NOT NULL
) WITHOUT ROWID;
