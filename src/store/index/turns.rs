//! The rows the index keeps for each session's runs (`turns`: one per run, at the time it
//! happened, with its day and "first run of the session in this period" bits), and the daily
//! rollup (`usage_daily`) that triggers keep equal to their sums.

use std::collections::{HashMap, HashSet};

use chrono::DateTime;
use rusqlite::Connection;

use super::Index;
use crate::domain::Status;
use crate::error::Result;
use crate::store::session::{Session, TokenUsage};
use crate::timespec::{day_number, Granularity, Zone};

/// One row of `turns`.
#[derive(Debug, Clone, PartialEq)]
pub struct TurnRow {
    pub seq: i64,
    pub at: i64,
    pub model: String,
    pub runs: i64,
    pub usage: TokenUsage,
    pub cost_nusd: Option<i64>,
    pub day: i64,
    pub firsts: i64,
}

impl TurnRow {
    /// input, output, cached, cache_write, reasoning, total: as the index keeps them (SQLite's
    /// signed 64-bit integers).
    pub fn counts(&self) -> [i64; 6] {
        let u = &self.usage;
        [
            u.input,
            u.output,
            u.cached,
            u.cache_write,
            u.reasoning,
            u.total,
        ]
        .map(|n| n.min(i64::MAX as u64) as i64)
    }
}

const FIRST_DAY: i64 = 1;
const FIRST_WEEK: i64 = 2;
pub(super) const FIRST_MONTH: i64 = 4;
pub(super) const FIRST_EVER: i64 = 8;
/// The same four bits, per model.
pub(super) const PER_MODEL: i64 = 16;

/// Bump when `turn_rows` changes what it derives from a file: the index is then rebuilt.
pub const ROWS_VERSION: &str = "usage-rows-3";

/// Per-run caps, far above any real run, so that a garbage figure in one file cannot overflow
/// the index's 64-bit sums (and with it every command that reads them).
const MAX_TOKENS: u64 = 1 << 40;
const MAX_COST_USD: f64 = 10_000.0;

/// A reported cost in billionths of a dollar; None for no report, or a nonsensical one.
fn nano_usd(cost: f64) -> Option<i64> {
    (0.0..f64::INFINITY)
        .contains(&cost)
        .then(|| (cost.min(MAX_COST_USD) * 1e9).round() as i64)
}

/// The rows the index keeps for `session`: its runs, and what they leave of `token_usage`, with
/// days and "first run" bits in `zone`.
pub fn turn_rows(session: &Session, zone: &Zone) -> Vec<TurnRow> {
    let model_of = |m: &Option<String>| {
        m.as_ref()
            .or(session.model.as_ref())
            .cloned()
            .unwrap_or_default()
    };
    let mut rows: Vec<TurnRow> = Vec::with_capacity(session.turns.len() + 1);
    let mut accounted = TokenUsage::default();
    for (seq, turn) in session.turns.iter().enumerate() {
        if let Some(usage) = &turn.token_usage {
            accounted.add(usage);
        }
        rows.push(TurnRow {
            seq: seq as i64,
            at: turn.at.timestamp_millis(),
            model: model_of(&turn.model),
            // A request read from a transcript is part of a conversation, not a run of clinvk's.
            runs: i64::from(turn.request.is_none()),
            usage: turn
                .token_usage
                .as_ref()
                .map(counts_only)
                .unwrap_or_default(),
            cost_nusd: turn.cost_usd.and_then(nano_usd),
            day: 0,
            firsts: 0,
        });
    }
    let rest = counts_only(&session.token_usage.saturating_sub(&accounted));
    let has_rest = rest != TokenUsage::default();
    // A file without turns that ran (any status but `created`) stands for one run; one that
    // never ran and used nothing has no row, and is not counted at all.
    // (An imported conversation with no request made no run either.)
    let ran_untracked =
        session.turns.is_empty() && session.status != Status::Created && session.origin.is_clinvk();
    if ran_untracked || has_rest {
        rows.push(TurnRow {
            seq: session.turns.len() as i64,
            at: session.last_used_at.timestamp_millis(),
            model: model_of(&None),
            runs: i64::from(ran_untracked),
            usage: rest,
            cost_nusd: None,
            day: 0,
            firsts: 0,
        });
    }
    mark_firsts(&mut rows, zone);
    rows
}

fn counts_only(u: &TokenUsage) -> TokenUsage {
    let cap = |n: u64| n.min(MAX_TOKENS);
    TokenUsage {
        input: cap(u.input),
        output: cap(u.output),
        cached: cap(u.cached),
        total: cap(u.total),
        cache_write: cap(u.cache_write),
        reasoning: cap(u.reasoning),
        ..TokenUsage::default()
    }
}

/// Fill `day` and the "first run of the session in this day/week/month/ever" bits, overall and
/// per model, taking runs in time order.
fn mark_firsts(rows: &mut [TurnRow], zone: &Zone) {
    let mut order: Vec<usize> = (0..rows.len()).collect();
    order.sort_by_key(|&i| (rows[i].at, rows[i].seq));
    let mut seen: HashSet<(Option<&str>, u8, i64)> = HashSet::new();
    let mut firsts = vec![0i64; rows.len()];
    for &i in &order {
        let at = DateTime::from_timestamp_millis(rows[i].at).unwrap_or_default();
        let date = zone.date_of(at);
        let day = day_number(date);
        rows[i].day = day;
        let periods = [
            (FIRST_DAY, 0u8, day),
            (FIRST_WEEK, 1, day_number(Granularity::Week.start(date))),
            (FIRST_MONTH, 2, day_number(Granularity::Month.start(date))),
            (FIRST_EVER, 3, 0),
        ];
        for (bit, kind, period) in periods {
            if seen.insert((None, kind, period)) {
                firsts[i] |= bit;
            }
            if seen.insert((Some(rows[i].model.as_str()), kind, period)) {
                firsts[i] |= bit * PER_MODEL;
            }
        }
    }
    for (row, f) in rows.iter_mut().zip(firsts) {
        row.firsts = f;
    }
}

/// A fingerprint of a session's rows, for `sessions reindex --check`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UsageDigest {
    pub rows: i64,
    pub runs: i64,
    pub total: i64,
    pub days: i64,
    pub firsts: i64,
    pub cost_nusd: i64,
}

impl UsageDigest {
    pub fn of(rows: &[TurnRow]) -> UsageDigest {
        let mut d = UsageDigest::default();
        for r in rows {
            d.rows += 1;
            d.runs += r.runs;
            d.total += r.usage.total.min(i64::MAX as u64) as i64;
            d.days += r.day;
            d.firsts += r.firsts;
            d.cost_nusd += r.cost_nusd.unwrap_or(0);
        }
        d
    }
}

/// The digest of every indexed session's rows, by session id.
pub fn digests(
    conn: &Connection,
) -> rusqlite::Result<std::collections::HashMap<String, UsageDigest>> {
    let mut stmt = conn.prepare(
        "SELECT s.id, count(*), sum(t.runs), sum(t.total), sum(t.day), sum(t.firsts),
                sum(coalesce(t.cost_nusd, 0))
         FROM turns t JOIN sessions s ON s.pk = t.session_pk GROUP BY s.id",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            UsageDigest {
                rows: r.get(1)?,
                runs: r.get(2)?,
                total: r.get(3)?,
                days: r.get(4)?,
                firsts: r.get(5)?,
                cost_nusd: r.get(6)?,
            },
        ))
    })?;
    rows.collect()
}

/// Whether the rollup holds exactly what `REFILL_ROLLUP` would put in it.
pub fn rollup_matches_runs(conn: &Connection) -> rusqlite::Result<bool> {
    let fresh = rollup_of_turns!();
    let differing: i64 = conn.query_row(
        &format!(
            "SELECT (SELECT count(*) FROM (SELECT * FROM usage_daily EXCEPT {fresh}))
                  + (SELECT count(*) FROM ({fresh} EXCEPT SELECT * FROM usage_daily))"
        ),
        [],
        |r| r.get(0),
    )?;
    Ok(differing == 0)
}

/// The rollup's rows as the runs make them (what the triggers keep `usage_daily` equal to).
macro_rules! rollup_of_turns {
    () => {
        "SELECT day, backend, status, model, cost_nusd IS NOT NULL, count(*), sum(runs), sum(input),
            sum(output), sum(cached), sum(cache_write), sum(reasoning), sum(total),
            sum(coalesce(cost_nusd, 0)),
            sum((firsts & 1) > 0), sum((firsts & 2) > 0), sum((firsts & 4) > 0), sum((firsts & 8) > 0),
            sum((firsts & 16) > 0), sum((firsts & 32) > 0), sum((firsts & 64) > 0),
            sum((firsts & 128) > 0)
        FROM turns GROUP BY day, backend, status, model, cost_nusd IS NOT NULL"
    };
}
use rollup_of_turns;

/// Refill the rollup from `turns` (after a bulk load, whose inserts skip the triggers).
pub const REFILL_ROLLUP: &str = concat!(
    "DELETE FROM usage_daily; INSERT INTO usage_daily ",
    rollup_of_turns!(),
    ";"
);

impl Index {
    /// A digest of each session's usage rows, by id (`sessions reindex --check`).
    pub fn usage_digests(&self) -> Result<HashMap<String, UsageDigest>> {
        digests(&self.conn).map_err(|e| self.err(e))
    }
    /// Whether the daily rollup equals the sum of the runs (`sessions reindex --check`).
    pub fn rollup_matches_runs(&self) -> Result<bool> {
        rollup_matches_runs(&self.conn).map_err(|e| self.err(e))
    }
    /// Whether the usage by tag, directory and session equals the runs (`reindex --check`).
    pub fn keyed_match_runs(&self) -> Result<bool> {
        super::keyed::keyed_match_runs(&self.conn).map_err(|e| self.err(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Backend;
    use crate::store::index::fixtures::{session, t, turn, usage, utc};

    #[test]
    fn rows_follow_turns_and_keep_what_they_leave_out() {
        let mut s = session(
            "a",
            Backend::Claude,
            vec![
                turn("2025-01-31T23:30:00Z", Some("m1"), 100, 10, Some(0.25)),
                turn("2025-02-01T00:30:00Z", None, 200, 20, None),
                turn("2025-02-01T01:00:00Z", Some("m1"), 1, 1, None),
            ],
        );
        // Usage the turns do not account for (a hand edit) counts at last_used_at.
        s.token_usage.input += 5;
        s.token_usage.total += 5;
        let rows = turn_rows(&s, &utc());
        assert_eq!(rows.len(), 4);
        assert_eq!(rows[0].cost_nusd, Some(250_000_000));
        assert_eq!(
            rows[1].model, "m-session",
            "a turn without a model has the session's"
        );
        assert_eq!(
            (rows[3].runs, rows[3].usage.input, rows[3].usage.total),
            (0, 5, 5)
        );
        let jan31 = day_number(chrono::NaiveDate::from_ymd_opt(2025, 1, 31).unwrap());
        assert_eq!(rows[0].day, jan31);
        assert_eq!(rows[1].day, jan31 + 1);
        // First of day, week, month, ever (and per model) for the first run; the second is the
        // first of February (day, month) in the same week; the third is first for model m1 on
        // that day and month only.
        assert_eq!(rows[0].firsts, 0b1111_1111);
        assert_eq!(
            rows[1].firsts,
            FIRST_DAY
                | FIRST_MONTH
                | ((FIRST_DAY | FIRST_WEEK | FIRST_MONTH | FIRST_EVER) * PER_MODEL)
        );
        assert_eq!(rows[2].firsts, (FIRST_DAY | FIRST_MONTH) * PER_MODEL);
        assert_eq!(rows[3].firsts, 0);
        // In Paris (UTC+1) all runs are on 1 February.
        let paris = turn_rows(&s, &Zone::parse("Europe/Paris").unwrap());
        assert!(paris.iter().all(|r| r.day == jan31 + 1));
    }

    #[test]
    fn a_file_without_turns_is_one_run_at_its_last_use_and_nothing_if_it_never_ran() {
        let mut s = session("b", Backend::Codex, Vec::new());
        s.token_usage = usage(1234, 5678);
        s.last_used_at = t("2025-01-27T11:30:00Z");
        let rows = turn_rows(&s, &utc());
        assert_eq!(rows.len(), 1);
        assert_eq!((rows[0].runs, rows[0].usage.total), (1, 6912));
        assert_eq!(rows[0].at, s.last_used_at.timestamp_millis());
        s.status = Status::Created;
        assert_eq!(turn_rows(&s, &utc())[0].runs, 0, "usage, but no run");
        s.token_usage = TokenUsage::default();
        assert!(turn_rows(&s, &utc()).is_empty());
    }
}
