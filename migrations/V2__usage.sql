-- Usage over time, for `clinvk sessions stats`: tokens counted when they were spent (per run),
-- not when the session started. Like everything in the index, rebuilt from the files.

-- One row per run recorded in a session file (`turns[]`, seq = its position), plus one row at
-- last_used_at (seq = the number of turns) for usage the turns do not account for: files written
-- before turns existed, or edited by hand. `runs` is 1 for a recorded run, and for that extra
-- row 1 only when the file has no turns but did run. backend and status are copied from the
-- session so that the rollup below needs no join; model is the run's ('' when unknown).
-- cost_nusd: the cost the backend reported, in billionths of a dollar (integers add exactly);
-- NULL when it reported none.
-- day and firsts are in the index's rollup zone (store_state 'rollup_zone'): the run's local
-- date as days since 1970-01-01, and bits saying whether it is the session's first run of its
-- day (1), week (2), month (4) and ever (8), and the same per model (16, 32, 64, 128). Summed,
-- the bits count distinct sessions per period without looking at sessions one by one.
CREATE TABLE turns (
    session_pk  INTEGER NOT NULL REFERENCES sessions (pk) ON DELETE CASCADE,
    seq         INTEGER NOT NULL,
    at          INTEGER NOT NULL,
    backend     TEXT    NOT NULL,
    status      TEXT    NOT NULL,
    model       TEXT    NOT NULL,
    runs        INTEGER NOT NULL,
    input       INTEGER NOT NULL,
    output      INTEGER NOT NULL,
    cached      INTEGER NOT NULL,
    cache_write INTEGER NOT NULL,
    reasoning   INTEGER NOT NULL,
    total       INTEGER NOT NULL,
    cost_nusd   INTEGER,
    day         INTEGER NOT NULL,
    firsts      INTEGER NOT NULL,
    PRIMARY KEY (session_pk, seq)
) WITHOUT ROWID;
-- Runs in a time range (`--since`, budgets), oldest first.
CREATE INDEX turns_by_time ON turns (at);

-- The turns summed per local day (in the rollup zone) and per backend, status, model and
-- whether the cost was reported: a year of history is a few thousand rows, so that
-- `sessions stats --by month` reads those instead of every run. Kept by the triggers below;
-- a bulk load lifts them and refills the table in one statement.
CREATE TABLE usage_daily (
    day         INTEGER NOT NULL,
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
    first_day   INTEGER NOT NULL,
    first_week  INTEGER NOT NULL,
    first_month INTEGER NOT NULL,
    first_ever  INTEGER NOT NULL,
    model_first_day   INTEGER NOT NULL,
    model_first_week  INTEGER NOT NULL,
    model_first_month INTEGER NOT NULL,
    model_first_ever  INTEGER NOT NULL,
    PRIMARY KEY (day, backend, status, model, reported)
) WITHOUT ROWID;

CREATE TRIGGER turns_rollup_insert AFTER INSERT ON turns BEGIN
    INSERT INTO usage_daily VALUES (
        new.day, new.backend, new.status, new.model, new.cost_nusd IS NOT NULL,
        1, new.runs, new.input, new.output, new.cached, new.cache_write, new.reasoning, new.total,
        coalesce(new.cost_nusd, 0),
        (new.firsts & 1) > 0, (new.firsts & 2) > 0, (new.firsts & 4) > 0, (new.firsts & 8) > 0,
        (new.firsts & 16) > 0, (new.firsts & 32) > 0, (new.firsts & 64) > 0, (new.firsts & 128) > 0)
    ON CONFLICT (day, backend, status, model, reported) DO UPDATE SET
        turn_rows = turn_rows + 1, runs = runs + excluded.runs,
        input = input + excluded.input, output = output + excluded.output,
        cached = cached + excluded.cached, cache_write = cache_write + excluded.cache_write,
        reasoning = reasoning + excluded.reasoning, total = total + excluded.total,
        cost_nusd = cost_nusd + excluded.cost_nusd,
        first_day = first_day + excluded.first_day, first_week = first_week + excluded.first_week,
        first_month = first_month + excluded.first_month, first_ever = first_ever + excluded.first_ever,
        model_first_day = model_first_day + excluded.model_first_day,
        model_first_week = model_first_week + excluded.model_first_week,
        model_first_month = model_first_month + excluded.model_first_month,
        model_first_ever = model_first_ever + excluded.model_first_ever;
END;

CREATE TRIGGER turns_rollup_delete AFTER DELETE ON turns BEGIN
    UPDATE usage_daily SET
        turn_rows = turn_rows - 1, runs = runs - old.runs,
        input = input - old.input, output = output - old.output,
        cached = cached - old.cached, cache_write = cache_write - old.cache_write,
        reasoning = reasoning - old.reasoning, total = total - old.total,
        cost_nusd = cost_nusd - coalesce(old.cost_nusd, 0),
        first_day = first_day - ((old.firsts & 1) > 0),
        first_week = first_week - ((old.firsts & 2) > 0),
        first_month = first_month - ((old.firsts & 4) > 0),
        first_ever = first_ever - ((old.firsts & 8) > 0),
        model_first_day = model_first_day - ((old.firsts & 16) > 0),
        model_first_week = model_first_week - ((old.firsts & 32) > 0),
        model_first_month = model_first_month - ((old.firsts & 64) > 0),
        model_first_ever = model_first_ever - ((old.firsts & 128) > 0)
    WHERE day = old.day AND backend = old.backend AND status = old.status AND model = old.model
      AND reported = (old.cost_nusd IS NOT NULL);
    DELETE FROM usage_daily
    WHERE day = old.day AND backend = old.backend AND status = old.status AND model = old.model
      AND reported = (old.cost_nusd IS NOT NULL) AND turn_rows <= 0;
END;

-- An index of the previous schema has no turns: forget its rows (a cache) and its directory
-- stamp, so that the next use reads every file again and fills both tables.
DELETE FROM sessions;
DELETE FROM invalid_files;
DELETE FROM store_state WHERE key = 'dir_stamp';
