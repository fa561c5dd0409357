-- Usage by tag and by working directory, for `sessions stats --by tag|workdir|project` (and a
-- filter by one tag or one directory), without joining every run to its session: the runs
-- summed per key, local month (in the rollup zone, as `turns.day`), backend, status, model and
-- whether the cost was reported. kind 0: a tag (key '' for a session without tags; a session
-- with two tags is in both), kind 1: a working directory. Months rather than days keep it
-- small (a few rows per key and month), so that it answers all-time and per-month questions;
-- other ranges read the runs. Kept by the index's writes themselves (each session's old rows
-- taken out, its new ones put in), not by triggers: a session's tags and runs change together.
CREATE TABLE usage_keyed (
    kind        INTEGER NOT NULL,
    key         TEXT    NOT NULL,
    month       INTEGER NOT NULL,
    backend     TEXT    NOT NULL,
    status      TEXT    NOT NULL,
    model       TEXT    NOT NULL,
    reported    INTEGER NOT NULL,
    turn_rows   INTEGER NOT NULL,
    runs        INTEGER NOT NULL,
    input       INTEGER NOT NULL,
    output      INTEGER NOT NULL,
    cached      INTEGER NOT NULL,
    cache_write INTEGER NOT NULL,
    reasoning   INTEGER NOT NULL,
    total       INTEGER NOT NULL,
    cost_nusd   INTEGER NOT NULL,
    first_month INTEGER NOT NULL,
    first_ever  INTEGER NOT NULL,
    model_first_month INTEGER NOT NULL,
    model_first_ever  INTEGER NOT NULL,
    PRIMARY KEY (kind, key, month, backend, status, model, reported)
) WITHOUT ROWID;

-- Each session's total over all its runs, for `sessions stats --by session -n N` (the sessions
-- that used the most, without summing every run).
CREATE TABLE session_totals (
    session_pk INTEGER PRIMARY KEY REFERENCES sessions (pk) ON DELETE CASCADE,
    total      INTEGER NOT NULL
);
CREATE INDEX session_totals_by_total ON session_totals (total);

-- Filled from the runs an index of the previous schema already has.
INSERT INTO usage_keyed
SELECT k.kind, k.key,
       CAST(julianday(date(x.day * 86400, 'unixepoch', 'start of month')) - 2440587.5 AS INTEGER),
       x.backend, x.status, x.model, x.cost_nusd IS NOT NULL, count(*), sum(x.runs), sum(x.input),
       sum(x.output), sum(x.cached), sum(x.cache_write), sum(x.reasoning), sum(x.total),
       sum(coalesce(x.cost_nusd, 0)), sum((x.firsts & 4) > 0), sum((x.firsts & 8) > 0),
       sum((x.firsts & 64) > 0), sum((x.firsts & 128) > 0)
FROM turns x
JOIN (SELECT 0 AS kind, g.tag AS key, g.session_pk FROM session_tags g
      UNION ALL
      SELECT 0, '', s.pk FROM sessions s
      WHERE NOT EXISTS (SELECT 1 FROM session_tags g WHERE g.session_pk = s.pk)
      UNION ALL
      SELECT 1, s.workdir, s.pk FROM sessions s) k ON k.session_pk = x.session_pk
GROUP BY 1, 2, 3, 4, 5, 6, 7;
INSERT INTO session_totals SELECT session_pk, sum(total) FROM turns GROUP BY session_pk;
