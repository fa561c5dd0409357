-- A streamed listing (`sessions list --json`) first reads the pks of every session it lists, in
-- its order (last used, then id): with the id in the index, that is a walk of the index alone,
-- not one lookup in the table per session.
DROP INDEX sessions_by_last_used;
CREATE INDEX sessions_by_last_used ON sessions (last_used_at, id);

-- Which build of the index this is (see `GENERATION_KEY`): an index built before had none.
INSERT OR REPLACE INTO store_state (key, value) VALUES ('generation', CAST(random() AS TEXT));
