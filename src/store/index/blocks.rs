//! 5-hour usage blocks (`sessions stats --by block`, `--period block`, the status line): the
//! windows a subscription's limits are counted in, cut from the runs themselves by ccusage's
//! rule, so that the two tools name the same blocks.
//!
//! The rule: a block starts at the hour (UTC) of a run, and a run belongs to the block before
//! it unless it comes more than 5 hours after that block's start, or more than 5 hours after
//! the run before it; then it starts a new block at its own hour. So a block is cut from the
//! first run after a gap of more than 5 hours onwards, and nothing before such a gap matters:
//! a range is read from the last gap before it (`chain_start`), not from the first run ever.

use chrono::{DateTime, Utc};
use rusqlite::types::Value as V;
use rusqlite::{params_from_iter, Connection};

use crate::error::Result;
use crate::store::query::Filter;
use crate::store::sql::{self, where_clause};

/// A block's length, and the gap after which the next run starts a new one.
pub const BLOCK_MS: i64 = 5 * HOUR_MS;
const HOUR_MS: i64 = 3_600_000;

/// A block's key in `StatsGroup::key`: its start, in RFC 3339 (UTC), which sorts by time.
pub fn label(start_ms: i64) -> String {
    DateTime::from_timestamp_millis(start_ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Cuts runs, fed in time order, into blocks.
#[derive(Debug, Default)]
pub struct Cutter {
    /// The current block's start.
    current: Option<i64>,
}

impl Cutter {
    /// The start (Unix ms) of the block of a run at `at` (Unix ms), the runs fed oldest first.
    pub fn block_of(&mut self, at: i64) -> i64 {
        // (A gap of more than 5 hours after the last run is also more than 5 hours after the
        // block's start, which is never later than its runs.)
        let start = match self.current {
            Some(start) if at - start <= BLOCK_MS => start,
            _ => at.div_euclid(HOUR_MS) * HOUR_MS,
        };
        self.current = Some(start);
        start
    }
}

/// The SQL of the runs (`x`) of the sessions `f` selects, with `at` in `lo..hi`, in `order`
/// of time, giving `cols`.
pub(super) fn runs_sql(
    f: &Filter,
    cols: &str,
    (lo, hi): (Option<i64>, Option<i64>),
    order: &str,
) -> (String, Vec<V>) {
    let mut conds = Vec::new();
    let mut args = Vec::new();
    let mut from = "turns x INDEXED BY turns_by_time".to_string();
    if f.on_session_row() {
        from.push_str(" JOIN sessions s ON s.pk = x.session_pk");
    }
    sql::run_conditions(f, &mut conds, &mut args);
    let at = |ms: Option<i64>| ms.and_then(DateTime::from_timestamp_millis);
    let range = crate::store::query::TimeRange {
        since: at(lo),
        until: at(hi),
    };
    super::stats::run_range_conditions(&range, &mut conds, &mut args);
    let sql = format!(
        "SELECT {cols} FROM {from} {} ORDER BY x.at {order}",
        where_clause(&conds)
    );
    (sql, args)
}

/// Where the runs of `f` that blocks must be cut from begin, for the first of them at or after
/// `since` (before `until`): the first run after the last gap of more than 5 hours before it.
/// None when no run is in the range.
pub(super) fn chain_start(
    conn: &Connection,
    f: &Filter,
    since: i64,
    until: Option<i64>,
) -> rusqlite::Result<Option<i64>> {
    let (first, args) = runs_sql(f, "x.at", (Some(since), until), "ASC LIMIT 1");
    let first: Option<i64> = conn
        .prepare(&first)?
        .query_map(params_from_iter(args.iter()), |r| r.get(0))?
        .next()
        .transpose()?;
    let Some(mut start) = first else {
        return Ok(None);
    };
    let (before, args) = runs_sql(f, "x.at", (None, Some(since)), "DESC");
    let mut stmt = conn.prepare(&before)?;
    let mut rows = stmt.query(params_from_iter(args.iter()))?;
    while let Some(r) = rows.next()? {
        let at: i64 = r.get(0)?;
        if start - at > BLOCK_MS {
            break;
        }
        start = at;
    }
    Ok(Some(start))
}

/// The block a run at `now` would fall in, if one is under way: its start and its last run
/// (Unix ms), from the runs of `f` up to `now`. A block is under way until 5 hours after its
/// start, and while its last run is less than 5 hours old.
pub(super) fn current_block(
    conn: &Connection,
    f: &Filter,
    now: i64,
) -> rusqlite::Result<Option<(i64, i64)>> {
    // Back from now to the last gap, then cut forward.
    let (sql, args) = runs_sql(f, "x.at", (None, Some(now + 1)), "DESC");
    let mut stmt = conn.prepare(&sql)?;
    let mut rows = stmt.query(params_from_iter(args.iter()))?;
    let mut chain: Vec<i64> = Vec::new();
    while let Some(r) = rows.next()? {
        let at: i64 = r.get(0)?;
        match chain.last() {
            None if now - at >= BLOCK_MS => return Ok(None),
            Some(next) if next - at > BLOCK_MS => break,
            _ => chain.push(at),
        }
    }
    let mut cutter = Cutter::default();
    let Some(start) = chain.iter().rev().map(|at| cutter.block_of(*at)).last() else {
        return Ok(None);
    };
    let last = chain[0];
    Ok(under_way(start, last, now).then_some((start, last)))
}

/// Whether the block starting at `start` whose last run was at `last` is under way at `now`
/// (all Unix ms): begun, not past its end, and its last run less than 5 hours old. (A block of
/// runs dated in the future, a clock set wrong, is not.)
pub fn under_way(start: i64, last: i64, now: i64) -> bool {
    start <= now && now < start + BLOCK_MS && now - last < BLOCK_MS
}

/// A block under way (see `current_block`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CurrentBlock {
    pub start: DateTime<Utc>,
    pub last_run: DateTime<Utc>,
}

impl CurrentBlock {
    pub fn end(&self) -> DateTime<Utc> {
        self.start + chrono::Duration::milliseconds(BLOCK_MS)
    }

    /// When its runs can be: from its start to its end, included (a run exactly 5 hours after
    /// the start is still in it).
    pub fn runs(&self) -> crate::store::query::TimeRange {
        crate::store::query::TimeRange {
            since: Some(self.start),
            until: Some(self.end() + chrono::Duration::milliseconds(1)),
        }
    }
}

impl super::Index {
    /// The block under way at `now` among the runs of the sessions `filter` selects, if any.
    pub fn current_block(
        &self,
        filter: &Filter,
        now: DateTime<Utc>,
    ) -> Result<Option<CurrentBlock>> {
        let at = |ms: i64| DateTime::from_timestamp_millis(ms).unwrap_or_default();
        current_block(&self.conn, filter, now.timestamp_millis())
            .map(|b| {
                b.map(|(start, last)| CurrentBlock {
                    start: at(start),
                    last_run: at(last),
                })
            })
            .map_err(|e| self.err(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = HOUR_MS;
    const M: i64 = 60_000;

    fn blocks(runs: &[i64]) -> Vec<i64> {
        let mut cutter = Cutter::default();
        runs.iter().map(|at| cutter.block_of(*at)).collect()
    }

    #[test]
    fn blocks_start_at_the_hour_and_end_after_five_hours_or_a_gap() {
        // 10:17 starts the 10:00 block; 15:00 exactly is still in it (not more than 5 h after
        // its start); 15:00 and a minute is not.
        let base = 1_000 * 24 * H;
        assert_eq!(
            blocks(&[base + 10 * H + 17 * M, base + 15 * H, base + 15 * H + M]),
            [base + 10 * H, base + 10 * H, base + 15 * H]
        );
        // A run more than 5 hours after the block's start begins the next at its own hour,
        // whether it follows a gap or not.
        assert_eq!(
            blocks(&[
                base + 10 * H,
                base + 14 * H + 59 * M,
                base + 19 * H + 58 * M
            ]),
            [base + 10 * H, base + 10 * H, base + 19 * H]
        );
        // Before 1970 too (hours floor down, not towards zero).
        assert_eq!(blocks(&[-30 * M]), [-H]);
    }
}
