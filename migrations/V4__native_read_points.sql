-- Where the last read of a growing transcript stopped, so that the next one reads only what was
-- appended: the offset just past its last whole line, the bytes just before that offset (a file
-- rewritten in place no longer has them there), and what the CLI's reader needs to go on (its
-- dedupe state, the conversation's id). NULL: read the file whole next time (a compressed
-- rollout, a legacy record, a read that broke off).
ALTER TABLE native_files ADD COLUMN read_offset INTEGER;
ALTER TABLE native_files ADD COLUMN read_tail BLOB;
ALTER TABLE native_files ADD COLUMN read_state BLOB;
