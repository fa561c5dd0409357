-- The machine each session was started on (`host` in its file), for `--host` and
-- `sessions stats --by host` over a store synced between machines. Files from before hosts were
-- kept have none; a row indexed before this column existed is filled when its file next
-- changes, or by `sessions reindex`.
ALTER TABLE sessions ADD COLUMN host TEXT;
CREATE INDEX sessions_by_host ON sessions (host, last_used_at);
