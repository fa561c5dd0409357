//! Usage over time: the per-run rows the index keeps for each session (`turns`), and the
//! aggregate queries of `sessions stats` over them.
//!
//! Two ways to answer, with the same results (tests hold them equal):
//! - the daily rollup (`usage_daily`), when the question is in the rollup's zone, filters only by
//!   backend and status, groups only by backend, status, model and whole days, weeks or months,
//!   and its time range (if any) is made of whole periods. Distinct sessions come from the
//!   "first run of the session in this period" bits, which add up;
//! - the runs themselves (`turns`), for everything else: any zone, tags, working directories,
//!   sessions, and arbitrary ranges. Distinct sessions are counted with `count(DISTINCT)`.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Utc};
use rusqlite::functions::FunctionFlags;
use rusqlite::types::Value as V;
use rusqlite::{params_from_iter, Connection};

use crate::domain::{Status, Tokens};
use crate::store::query::Filter;
use crate::store::session::{Session, TokenUsage};
use crate::store::sql::{self, where_clause};
use crate::timespec::{date_of_day_number, day_number, Granularity, Zone};

/// What `sessions stats` can group by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dimension {
    Backend,
    Model,
    Status,
    Tag,
    Workdir,
    Session,
    Period(Granularity),
}

/// The period among `dims`, if any (a query groups by one at most).
pub fn period_of(dims: &[Dimension]) -> Option<Granularity> {
    dims.iter().find_map(|d| match d {
        Dimension::Period(g) => Some(*g),
        _ => None,
    })
}

impl Dimension {
    pub fn name(self) -> &'static str {
        match self {
            Dimension::Backend => "backend",
            Dimension::Model => "model",
            Dimension::Status => "status",
            Dimension::Tag => "tag",
            Dimension::Workdir => "workdir",
            Dimension::Session => "session",
            Dimension::Period(g) => g.as_str(),
        }
    }
}

/// Usage of the selected sessions: their runs in `filter.since..filter.until` (by when each run
/// happened), grouped by `group_by` with periods counted in `zone`.
#[derive(Debug, Clone, PartialEq)]
pub struct StatsQuery {
    /// `search` and `resumable` are not used.
    pub filter: Filter,
    pub group_by: Vec<Dimension>,
    pub zone: Zone,
    /// Move the rollup to `zone` when it is elsewhere and the question is worth it (the local
    /// zone of an interactive user, not a one-off `--timezone`). The time now: a rollup moved by
    /// a question stays put for a day, so that two users of one store in different zones (a
    /// cron job in UTC, say) do not rebuild it back and forth.
    pub adopt_zone_at: Option<DateTime<Utc>>,
}

/// Token counts and reported cost, summed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UsageSums {
    pub runs: u64,
    pub tokens: Tokens,
    /// The sum of the files' `total`s (input + output, unless a file says otherwise).
    pub total: u64,
    /// The backends' own cost reports, in billionths of a US dollar.
    pub reported_cost_nusd: i64,
}

impl UsageSums {
    pub fn add(&mut self, o: &UsageSums) {
        self.runs += o.runs;
        self.tokens = self.tokens.plus(&o.tokens);
        self.total += o.total;
        self.reported_cost_nusd += o.reported_cost_nusd;
    }
}

/// Part of a group's usage: one model, with the cost either reported by the backend for every
/// run in it (`reported`) or for none of them (to be estimated from prices).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelPart {
    /// '' when the model is unknown.
    pub model: String,
    pub reported: bool,
    pub sums: UsageSums,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatsGroup {
    /// One value per dimension of the query, in its order. Periods are labelled
    /// (`Granularity::label`); '' means none (no model, no tag).
    pub key: Vec<String>,
    /// Distinct sessions with a run in this group.
    pub sessions: u64,
    pub parts: Vec<ModelPart>,
}

impl StatsGroup {
    pub fn sums(&self) -> UsageSums {
        let mut all = UsageSums::default();
        for p in &self.parts {
            all.add(&p.sums);
        }
        all
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatsResult {
    /// In key order.
    pub groups: Vec<StatsGroup>,
    /// Over everything selected (with `--by tag`, not the sum of the groups).
    pub totals: StatsGroup,
    /// Whether the daily rollup answered the groups (for tests and benchmarks).
    pub from_rollup: bool,
}

// ----- rows kept per session ---------------------------------------------------------------

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

const FIRST_DAY: i64 = 1;
const FIRST_WEEK: i64 = 2;
const FIRST_MONTH: i64 = 4;
const FIRST_EVER: i64 = 8;
/// The same four bits, per model.
const PER_MODEL: i64 = 16;

/// Bump when `turn_rows` changes what it derives from a file: the index is then rebuilt.
pub const ROWS_VERSION: &str = "usage-rows-2";

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
            runs: 1,
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
    let ran_untracked = session.turns.is_empty() && session.status != Status::Created;
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

// ----- queries -------------------------------------------------------------------------------

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

/// How the rollup answers a query: the day range to read and the column counting sessions.
#[derive(Debug, Clone, PartialEq, Eq)]
struct RollupPlan {
    days: Option<(i64, i64)>,
    sessions_column: &'static str,
}

/// The rollup can answer `q` exactly only in its own zone, and only when every period it sums
/// is whole (a run's day is all it knows of the run's time).
fn rollup_plan(q: &StatsQuery, rollup_zone: &Zone) -> Option<RollupPlan> {
    let f = &q.filter;
    let granularity = period_of(&q.group_by);
    // Without periods or a range, days do not matter, and neither does their zone.
    let zone_matters = granularity.is_some() || f.since.is_some() || f.until.is_some();
    if (zone_matters && q.zone != *rollup_zone) || !f.tags.is_empty() || f.workdir.is_some() {
        return None;
    }
    let in_rollup = |d: &Dimension| {
        matches!(
            d,
            Dimension::Backend | Dimension::Status | Dimension::Model | Dimension::Period(_)
        )
    };
    if !q.group_by.iter().all(in_rollup) {
        return None;
    }
    let per_model = q.group_by.contains(&Dimension::Model);
    let aligned = |t: DateTime<Utc>, g: Granularity| {
        let date = q.zone.date_of(t);
        (g.start(date) == date && q.zone.start_of(date) == Some(t)).then(|| day_number(date))
    };
    let bounds = |g: Granularity| -> Option<Option<(i64, i64)>> {
        match (f.since, f.until) {
            (None, None) => Some(None),
            (since, until) => {
                let lo = match since {
                    Some(t) => aligned(t, g)?,
                    None => i64::MIN,
                };
                let hi = match until {
                    Some(t) => aligned(t, g)?,
                    None => i64::MAX,
                };
                Some(Some((lo, hi)))
            }
        }
    };
    let (days, g) = match granularity {
        Some(g) => (bounds(g)?, Some(g)),
        None => match (f.since, f.until) {
            (None, None) => (None, None),
            // No periods in the output: the range must be exactly one day, week or month.
            (Some(since), Some(until)) => [Granularity::Day, Granularity::Week, Granularity::Month]
                .into_iter()
                .find_map(|g| {
                    let lo = aligned(since, g)?;
                    let next = g.next(date_of_day_number(lo));
                    (q.zone.start_of(next) == Some(until))
                        .then(|| (Some((lo, day_number(next))), Some(g)))
                })?,
            _ => return None,
        },
    };
    let sessions_column = match (g, per_model) {
        (None, false) => "first_ever",
        (None, true) => "model_first_ever",
        (Some(Granularity::Day), false) => "first_day",
        (Some(Granularity::Day), true) => "model_first_day",
        (Some(Granularity::Week), false) => "first_week",
        (Some(Granularity::Week), true) => "model_first_week",
        (Some(Granularity::Month), false) => "first_month",
        (Some(Granularity::Month), true) => "model_first_month",
    };
    Some(RollupPlan {
        days,
        sessions_column,
    })
}

/// Whether moving the rollup to `q`'s zone would help: `q` groups by periods (a question with
/// no periods and no range is answered in any zone; one budget period is read quickly from the
/// runs' time index) and a rollup in its zone would answer it.
pub fn worth_a_rollup(q: &StatsQuery) -> bool {
    matches!(q.zone, Zone::Named(_))
        && period_of(&q.group_by).is_some()
        && rollup_plan(q, &q.zone).is_some()
}

/// Run `q` against the index's connection; `rollup_zone` is the zone of `turns.day` (None: do
/// not use the rollup).
pub fn stats(
    conn: &Connection,
    q: &StatsQuery,
    rollup_zone: Option<&Zone>,
) -> rusqlite::Result<StatsResult> {
    register_period_functions(conn, q)?;
    let (st, from_rollup) = statements(q, rollup_zone);
    let groups = run_statements(conn, &st, &q.group_by)?;
    let totals = match totals(q, rollup_zone) {
        Totals::TheGroup => groups.first().cloned(),
        Totals::FromGroups(st) => {
            let sessions: Option<i64> =
                conn.query_row(&st.sessions_only, params_from_iter(st.args.iter()), |r| {
                    r.get(0)
                })?;
            Some(StatsGroup {
                key: Vec::new(),
                sessions: sessions.unwrap_or(0).max(0) as u64,
                parts: merge_parts(&groups),
            })
        }
        Totals::OnTheirOwn(st) => run_statements(conn, &st, &[])?.into_iter().next(),
    };
    let totals = totals.unwrap_or(StatsGroup {
        key: Vec::new(),
        sessions: 0,
        parts: Vec::new(),
    });
    Ok(StatsResult {
        groups,
        totals,
        from_rollup,
    })
}

/// The parts of `groups` added up per model and cost source.
fn merge_parts(groups: &[StatsGroup]) -> Vec<ModelPart> {
    let mut merged: BTreeMap<(&str, bool), UsageSums> = BTreeMap::new();
    for part in groups.iter().flat_map(|g| &g.parts) {
        merged
            .entry((part.model.as_str(), part.reported))
            .or_default()
            .add(&part.sums);
    }
    merged
        .into_iter()
        .map(|((model, reported), sums)| ModelPart {
            model: model.to_string(),
            reported,
            sums,
        })
        .collect()
}

/// `clinvk_period(at_ms)` and `clinvk_period_of_day(day)`: the day number of the first day of
/// the query's period (in its zone) containing a run.
fn register_period_functions(conn: &Connection, q: &StatsQuery) -> rusqlite::Result<()> {
    let Some(g) = period_of(&q.group_by) else {
        return Ok(());
    };
    let zone = q.zone;
    let flags = FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC;
    conn.create_scalar_function("clinvk_period", 1, flags, move |ctx| {
        let at = DateTime::from_timestamp_millis(ctx.get::<i64>(0)?).unwrap_or_default();
        Ok(day_number(g.start(zone.date_of(at))))
    })?;
    conn.create_scalar_function("clinvk_period_of_day", 1, flags, move |ctx| {
        Ok(day_number(g.start(date_of_day_number(ctx.get::<i64>(0)?))))
    })
}

const SUMS: &str = "sum(x.runs), sum(x.input), sum(x.output), sum(x.cached), sum(x.cache_write), \
                    sum(x.reasoning), sum(x.total), sum(coalesce(x.cost_nusd, 0))";

/// The SQL that answers one grouping: per-model sums (with the sessions column when counted from
/// the rollup's bits), and a `count(DISTINCT)` of sessions when counted from the runs.
struct Statements {
    sums: String,
    distinct: Option<String>,
    /// The distinct sessions of everything selected, ungrouped.
    sessions_only: String,
    args: Vec<V>,
}

fn rollup_statements(q: &StatsQuery, plan: &RollupPlan) -> Statements {
    let cols: Vec<&str> = q
        .group_by
        .iter()
        .map(|d| match d {
            Dimension::Backend => "x.backend",
            Dimension::Status => "x.status",
            Dimension::Model => "x.model",
            Dimension::Period(_) => "clinvk_period_of_day(x.day)",
            // rollup_plan accepts no other dimension.
            _ => unreachable!("not in the rollup"),
        })
        .collect();
    let mut conds = Vec::new();
    let mut args = Vec::new();
    // Backend and status are copied into both usage tables (`x`).
    sql::session_conditions(&q.filter, "x", &mut conds, &mut args);
    if let Some((lo, hi)) = plan.days {
        conds.push("x.day >= ? AND x.day < ?".to_string());
        args.push(V::Integer(lo));
        args.push(V::Integer(hi));
    }
    let keys = key_list(&cols);
    let where_ = where_clause(&conds);
    let sessions = plan.sessions_column;
    Statements {
        sums: format!(
            "SELECT {keys}x.model, x.reported, {SUMS}, sum(x.{sessions}) FROM usage_daily x {where_} \
             GROUP BY {keys}x.model, x.reported",
        ),
        distinct: None,
        sessions_only: format!("SELECT sum(x.{sessions}) FROM usage_daily x {where_}"),
        args,
    }
}

fn raw_statements(q: &StatsQuery) -> Statements {
    let f = &q.filter;
    let mut join_session = f.workdir.is_some();
    let mut join_tags = false;
    let cols: Vec<&str> = q
        .group_by
        .iter()
        .map(|d| match d {
            Dimension::Backend => "x.backend",
            Dimension::Status => "x.status",
            Dimension::Model => "x.model",
            Dimension::Period(_) => "clinvk_period(x.at)",
            Dimension::Workdir => {
                join_session = true;
                "s.workdir"
            }
            Dimension::Session => {
                join_session = true;
                "s.id"
            }
            Dimension::Tag => {
                join_tags = true;
                "coalesce(g.tag, '')"
            }
        })
        .collect();
    // SQLite would rather read every run in session order (which makes counting distinct
    // sessions cheap) than search a range by time: for a range, the range is far cheaper.
    let mut from = if (f.since.is_some() || f.until.is_some()) && f.tags.is_empty() {
        "turns x INDEXED BY turns_by_time".to_string()
    } else {
        "turns x".to_string()
    };
    if join_session {
        from.push_str(" JOIN sessions s ON s.pk = x.session_pk");
    }
    if join_tags {
        from.push_str(" LEFT JOIN session_tags g ON g.session_pk = x.session_pk");
    }
    let mut conds = Vec::new();
    let mut args = Vec::new();
    sql::session_conditions(f, "x", &mut conds, &mut args);
    if let Some(w) = &f.workdir {
        conds.push("s.workdir = ?".into());
        args.push(V::Text(w.clone()));
    }
    for tag in &f.tags {
        conds.push("x.session_pk IN (SELECT session_pk FROM session_tags WHERE tag = ?)".into());
        args.push(V::Text(tag.clone()));
    }
    if let Some(t) = f.since {
        conds.push("x.at >= ?".into());
        args.push(V::Integer(t.timestamp_millis()));
    }
    if let Some(t) = f.until {
        conds.push("x.at < ?".into());
        args.push(V::Integer(t.timestamp_millis()));
    }
    let keys = key_list(&cols);
    let where_ = where_clause(&conds);
    let group = if cols.is_empty() {
        String::new()
    } else {
        format!("GROUP BY {}", cols.join(", "))
    };
    Statements {
        sums: format!(
            "SELECT {keys}x.model, x.cost_nusd IS NOT NULL, {SUMS} FROM {from} {where_} \
             GROUP BY {keys}x.model, x.cost_nusd IS NOT NULL"
        ),
        distinct: Some(format!(
            "SELECT {keys}count(DISTINCT x.session_pk) FROM {from} {where_} {group}"
        )),
        sessions_only: format!("SELECT count(DISTINCT x.session_pk) FROM {from} {where_}"),
        args,
    }
}

/// The statements for `q`'s groups, from the rollup when it can answer exactly.
fn statements(q: &StatsQuery, rollup_zone: Option<&Zone>) -> (Statements, bool) {
    match rollup_zone.and_then(|zone| rollup_plan(q, zone)) {
        Some(plan) => (rollup_statements(q, &plan), true),
        None => (raw_statements(q), false),
    }
}

/// How the totals of `q` are answered.
enum Totals {
    /// Without groups, the one group is the totals.
    TheGroup,
    /// The groups split the runs: their sums add up, and only the distinct sessions need
    /// counting again (this statement's `sessions_only`).
    FromGroups(Statements),
    /// With `--by tag` a run is in several groups: the whole totals, on their own.
    OnTheirOwn(Statements),
}

/// The totals are planned on their own: sessions counted per month do not add up to the
/// sessions of a year.
fn totals(q: &StatsQuery, rollup_zone: Option<&Zone>) -> Totals {
    let overall = StatsQuery {
        group_by: Vec::new(),
        ..q.clone()
    };
    if q.group_by.is_empty() {
        Totals::TheGroup
    } else if q.group_by.contains(&Dimension::Tag) {
        Totals::OnTheirOwn(statements(&overall, rollup_zone).0)
    } else {
        Totals::FromGroups(statements(&overall, rollup_zone).0)
    }
}

fn run_statements(
    conn: &Connection,
    st: &Statements,
    dims: &[Dimension],
) -> rusqlite::Result<Vec<StatsGroup>> {
    let parts = query_parts(conn, &st.sums, &st.args, dims, st.distinct.is_none())?;
    let Some(distinct) = &st.distinct else {
        return Ok(fold(parts, None));
    };
    let mut sessions: BTreeMap<Vec<String>, u64> = BTreeMap::new();
    let mut stmt = conn.prepare(distinct)?;
    let mut rows = stmt.query(params_from_iter(st.args.iter()))?;
    while let Some(r) = rows.next()? {
        let key = read_key(r, dims)?;
        sessions.insert(key, r.get::<_, i64>(dims.len())? as u64);
    }
    Ok(fold(parts, Some(&sessions)))
}

/// The query plans SQLite picks for `q` (groups, then totals), one line per step, for tests
/// and benchmarks.
pub fn explain(
    conn: &Connection,
    q: &StatsQuery,
    rollup_zone: Option<&Zone>,
) -> rusqlite::Result<Vec<String>> {
    register_period_functions(conn, q)?;
    let mut lines = Vec::new();
    let mut explain = |sql: &str, args: &[V]| -> rusqlite::Result<()> {
        lines.extend(sql::explain_plan(conn, sql, args)?);
        Ok(())
    };
    // What `stats` runs: the groups, then the totals as `totals` plans them.
    let (st, _) = statements(q, rollup_zone);
    for sql in std::iter::once(&st.sums).chain(st.distinct.as_ref()) {
        explain(sql, &st.args)?;
    }
    match totals(q, rollup_zone) {
        Totals::TheGroup => {}
        Totals::FromGroups(st) => explain(&st.sessions_only, &st.args)?,
        Totals::OnTheirOwn(st) => {
            for sql in std::iter::once(&st.sums).chain(st.distinct.as_ref()) {
                explain(sql, &st.args)?;
            }
        }
    }
    Ok(lines)
}

fn key_list(cols: &[&str]) -> String {
    cols.iter().map(|c| format!("{c}, ")).collect()
}

/// The group key of a row: its first `dims.len()` columns, periods turned into labels.
fn read_key(r: &rusqlite::Row<'_>, dims: &[Dimension]) -> rusqlite::Result<Vec<String>> {
    dims.iter()
        .enumerate()
        .map(|(i, d)| match d {
            Dimension::Period(g) => Ok(g.label(date_of_day_number(r.get::<_, i64>(i)?))),
            _ => Ok(r.get::<_, Option<String>>(i)?.unwrap_or_default()),
        })
        .collect()
}

/// Rows of (key..., model, reported, sums..., [sessions]).
fn query_parts(
    conn: &Connection,
    sql: &str,
    args: &[V],
    dims: &[Dimension],
    with_sessions: bool,
) -> rusqlite::Result<Vec<(Vec<String>, ModelPart, u64)>> {
    let mut stmt = conn.prepare(sql)?;
    let mut rows = stmt.query(params_from_iter(args.iter()))?;
    let mut out = Vec::new();
    let n = dims.len();
    while let Some(r) = rows.next()? {
        let count =
            |i: usize| -> rusqlite::Result<u64> { Ok(r.get::<_, i64>(n + i)?.max(0) as u64) };
        let part = ModelPart {
            model: r.get(n)?,
            reported: r.get(n + 1)?,
            sums: UsageSums {
                runs: count(2)?,
                tokens: Tokens {
                    input: count(3)?,
                    output: count(4)?,
                    cached: count(5)?,
                    cache_write: count(6)?,
                    reasoning: count(7)?,
                },
                total: count(8)?,
                reported_cost_nusd: r.get(n + 9)?,
            },
        };
        let sessions = if with_sessions { count(10)? } else { 0 };
        out.push((read_key(r, dims)?, part, sessions));
    }
    Ok(out)
}

/// Gather parts into groups by key (in key order). Sessions come from `distinct` when given,
/// else from the parts' summed "first run" bits.
fn fold(
    rows: Vec<(Vec<String>, ModelPart, u64)>,
    distinct: Option<&BTreeMap<Vec<String>, u64>>,
) -> Vec<StatsGroup> {
    let mut groups: BTreeMap<Vec<String>, StatsGroup> = BTreeMap::new();
    for (key, part, sessions) in rows {
        let group = groups.entry(key.clone()).or_insert_with(|| StatsGroup {
            key,
            sessions: 0,
            parts: Vec::new(),
        });
        group.sessions += sessions;
        group.parts.push(part);
    }
    let mut out: Vec<StatsGroup> = groups.into_values().collect();
    for g in &mut out {
        if let Some(d) = distinct {
            g.sessions = d.get(&g.key).copied().unwrap_or(0);
        }
        g.parts
            .sort_by(|a, b| (&a.model, a.reported).cmp(&(&b.model, b.reported)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Backend, SessionId};
    use crate::store::session::Turn;
    use crate::store::{Quiet, Store};

    fn t(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    fn usage(input: u64, output: u64) -> TokenUsage {
        TokenUsage {
            input,
            output,
            total: input + output,
            ..TokenUsage::default()
        }
    }

    fn turn(at: &str, model: Option<&str>, input: u64, output: u64, cost: Option<f64>) -> Turn {
        Turn {
            at: t(at),
            prompt: "p".into(),
            model: model.map(String::from),
            exit_code: Some(0),
            duration_seconds: None,
            token_usage: Some(usage(input, output)),
            cost_usd: cost,
            error: None,
            extra: Default::default(),
        }
    }

    fn session(id: &str, backend: Backend, turns: Vec<Turn>) -> Session {
        let mut s = Session::new(
            SessionId::parse(id).unwrap(),
            backend,
            "/w".into(),
            "p".into(),
            turns.first().map_or(t("2025-01-01T00:00:00Z"), |x| x.at),
        );
        s.status = Status::Completed;
        s.model = Some("m-session".into());
        for x in &turns {
            s.token_usage.add(x.token_usage.as_ref().unwrap());
            s.last_used_at = x.at;
        }
        s.turns = turns;
        s
    }

    fn utc() -> Zone {
        Zone::parse("UTC").unwrap()
    }

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

    fn query(dims: &[Dimension], zone: &Zone) -> StatsQuery {
        StatsQuery {
            filter: Filter::default(),
            group_by: dims.to_vec(),
            zone: *zone,
            adopt_zone_at: None,
        }
    }

    #[test]
    fn the_rollup_answers_only_what_it_can_answer_exactly() {
        let paris = Zone::parse("Europe/Paris").unwrap();
        let month = Dimension::Period(Granularity::Month);
        let plan = |q: &StatsQuery| rollup_plan(q, &paris).map(|p| p.sessions_column);
        assert_eq!(
            plan(&query(&[month, Dimension::Backend], &paris)),
            Some("first_month")
        );
        assert_eq!(
            plan(&query(&[Dimension::Model], &paris)),
            Some("model_first_ever")
        );
        assert_eq!(plan(&query(&[month], &utc())), None, "another zone");
        assert_eq!(plan(&query(&[Dimension::Tag], &paris)), None);
        let mut q = query(&[month], &paris);
        q.filter.since = paris.start_of(chrono::NaiveDate::from_ymd_opt(2025, 2, 1).unwrap());
        assert_eq!(plan(&q), Some("first_month"), "a whole month");
        q.filter.since = paris.start_of(chrono::NaiveDate::from_ymd_opt(2025, 2, 2).unwrap());
        assert_eq!(plan(&q), None, "half a month");
        // No periods: one whole week is fine, any other range is not.
        let mut q = query(&[], &paris);
        let monday = chrono::NaiveDate::from_ymd_opt(2025, 1, 27).unwrap();
        q.filter.since = paris.start_of(monday);
        q.filter.until = paris.start_of(monday + chrono::Duration::days(7));
        assert_eq!(plan(&q), Some("first_week"));
        q.filter.until = paris.start_of(monday + chrono::Duration::days(8));
        assert_eq!(plan(&q), None);
    }

    /// A real store: every rollup-eligible query gives what the runs give, before and after
    /// updates and deletions (the triggers keep the rollup).
    #[test]
    fn rollup_and_runs_agree_on_a_real_store() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("sessions"), Box::new(Quiet)).unwrap();
        let backends = [Backend::Claude, Backend::Codex, Backend::Gemini];
        let models = [Some("m1"), Some("m2"), None];
        let mut ids = Vec::new();
        for i in 0..40u64 {
            let start = t("2025-01-20T22:00:00Z") + chrono::Duration::hours(7 * i as i64);
            let turns = (0..(i % 4) + 1)
                .map(|k| {
                    let at = start + chrono::Duration::hours(13 * k as i64 * (i as i64 % 3 + 1));
                    let cost = (i % 3 == 0).then_some(0.01 * k as f64);
                    turn(
                        &at.to_rfc3339(),
                        models[((i + k) % 3) as usize],
                        100 * i + k,
                        7 * k,
                        cost,
                    )
                })
                .collect();
            let mut s = session("x", backends[(i % 3) as usize], turns);
            if i % 5 == 0 {
                s.status = Status::Error;
            }
            ids.push(store.create(s).unwrap().id);
        }
        let index_zone = crate::store::index::Index::open_existing(
            &dir.path().join("sessions").join(crate::store::INDEX_FILE),
        )
        .unwrap()
        .ok()
        .unwrap()
        .rollup_zone();
        let check = |store: &Store| {
            for dims in [
                vec![],
                vec![Dimension::Period(Granularity::Month), Dimension::Backend],
                vec![Dimension::Period(Granularity::Week), Dimension::Model],
                vec![Dimension::Period(Granularity::Day), Dimension::Status],
                vec![Dimension::Model, Dimension::Backend],
            ] {
                for (backend, status, month) in [
                    (None, None, None),
                    (Some(Backend::Codex), None, None),
                    (None, Some(Status::Error), Some(2)),
                    (Some(Backend::Claude), None, Some(1)),
                ] {
                    let mut q = query(&dims, &index_zone);
                    q.filter.backend = backend;
                    q.filter.status = status;
                    if let Some(m) = month {
                        // Exactly one month: whole periods for months, weeks (no) and days.
                        let first = chrono::NaiveDate::from_ymd_opt(2025, m, 1).unwrap();
                        q.filter.since = index_zone.start_of(first);
                        q.filter.until = index_zone.start_of(Granularity::Month.next(first));
                        if dims.contains(&Dimension::Period(Granularity::Week)) {
                            continue;
                        }
                    }
                    let (fast, _) = store.stats(&q).unwrap();
                    assert!(fast.from_rollup, "{dims:?}");
                    let dir = store.dir().to_path_buf();
                    let index = crate::store::index::Index::open_existing(
                        &dir.join(crate::store::INDEX_FILE),
                    )
                    .unwrap()
                    .ok()
                    .unwrap();
                    // Any other zone name forces the runs; the same offsets keep the answer equal.
                    let slow = index.stats_scanning_runs(&q).unwrap();
                    assert!(!slow.from_rollup);
                    assert_eq!(
                        fast.groups, slow.groups,
                        "{dims:?} {backend:?} {status:?} {month:?}"
                    );
                    assert_eq!(
                        fast.totals, slow.totals,
                        "{dims:?} {backend:?} {status:?} {month:?}"
                    );
                }
            }
        };
        check(&store);
        store
            .update(ids[3].as_str(), |s| {
                s.status = Status::Active;
                s.turns
                    .push(turn("2025-03-01T10:00:00Z", Some("m2"), 5, 5, None));
                s.token_usage.add(&usage(5, 5));
                Ok((true, ()))
            })
            .unwrap();
        store
            .delete(&[ids[4].to_string(), ids[7].to_string()])
            .unwrap();
        check(&store);

        // `sessions reindex --check` sees a rollup or a run that no longer matches.
        assert!(store.check().unwrap().differences.is_empty());
        let db = rusqlite::Connection::open(store.dir().join(crate::store::INDEX_FILE)).unwrap();
        let problems = || -> Vec<String> {
            store
                .check()
                .unwrap()
                .differences
                .into_iter()
                .map(|d| d.problem)
                .collect()
        };
        db.execute_batch(
            "UPDATE usage_daily SET total = total + 1 WHERE day = (SELECT min(day) FROM usage_daily)",
        )
        .unwrap();
        assert_eq!(
            problems(),
            ["the daily usage rollup differs from the runs it sums"]
        );
        db.execute_batch(
            "UPDATE usage_daily SET total = total - 1 WHERE day = (SELECT min(day) FROM usage_daily);
             UPDATE turns SET runs = runs + 1 WHERE session_pk = (SELECT min(session_pk) FROM turns)",
        )
        .unwrap();
        assert_eq!(
            problems(),
            [
                "the daily usage rollup differs from the runs it sums",
                "the index holds other runs for this file"
            ]
        );
    }

    #[test]
    fn the_rollup_moves_to_the_users_zone_once_and_not_for_a_budget() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("sessions"), Box::new(Quiet)).unwrap();
        for i in 0..5 {
            let at = t("2025-01-31T22:30:00Z") + chrono::Duration::hours(i);
            let s = session(
                "x",
                Backend::Claude,
                vec![turn(&at.to_rfc3339(), None, 10, 1, None)],
            );
            store.create(s).unwrap();
        }
        let rollup_zone = |store: &Store| {
            crate::store::index::Index::open_existing(&store.dir().join(crate::store::INDEX_FILE))
                .unwrap()
                .ok()
                .unwrap()
                .rollup_zone()
        };
        let before = rollup_zone(&store);
        // A zone that is surely not the index's: Kathmandu (UTC+5:45).
        let ktm = Zone::parse("Asia/Kathmandu").unwrap();
        assert_ne!(before, ktm);
        let month = Granularity::Month;
        let mut budget = query(&[], &ktm);
        budget.adopt_zone_at = Some(t("2025-02-02T00:00:00Z"));
        let first = chrono::NaiveDate::from_ymd_opt(2025, 2, 1).unwrap();
        budget.filter.since = ktm.start_of(first);
        budget.filter.until = ktm.start_of(month.next(first));
        let (answer, _) = store.stats(&budget).unwrap();
        assert_eq!((answer.totals.sessions, answer.from_rollup), (5, false));
        assert_eq!(rollup_zone(&store), before, "one period: the runs answer");

        let mut by_month = query(&[Dimension::Period(month)], &ktm);
        by_month.adopt_zone_at = Some(t("2025-02-02T00:00:00Z"));
        let (answer, _) = store.stats(&by_month).unwrap();
        assert!(answer.from_rollup);
        assert_eq!(rollup_zone(&store), ktm);
        let keys: Vec<&str> = answer.groups.iter().map(|g| g.key[0].as_str()).collect();
        assert_eq!(
            keys,
            ["2025-02"],
            "22:30 UTC on 31 January is February in Kathmandu"
        );

        // Another user's zone within the day reads the runs and leaves the rollup be; a day
        // later it moves.
        let tokyo = Zone::parse("Asia/Tokyo").unwrap();
        let mut theirs = query(&[Dimension::Period(month)], &tokyo);
        theirs.adopt_zone_at = Some(t("2025-02-02T20:00:00Z"));
        let (answer, _) = store.stats(&theirs).unwrap();
        assert!(!answer.from_rollup);
        assert_eq!(rollup_zone(&store), ktm);
        theirs.adopt_zone_at = Some(t("2025-02-03T00:00:00Z"));
        assert!(store.stats(&theirs).unwrap().0.from_rollup);
        assert_eq!(rollup_zone(&store), tokyo);
        // Without periods or a range the zone does not matter: no move, and the rollup answers.
        let mut totals = query(&[Dimension::Model], &ktm);
        totals.adopt_zone_at = Some(t("2025-03-01T00:00:00Z"));
        assert!(store.stats(&totals).unwrap().0.from_rollup);
        assert_eq!(rollup_zone(&store), tokyo);
        // A rebuild (a cron job's `reindex`, in whatever zone) keeps it there.
        store.reindex().unwrap();
        assert_eq!(rollup_zone(&store), tokyo);
        theirs.zone = ktm;
        theirs.adopt_zone_at = Some(t("2025-02-03T12:00:00Z"));
        assert!(
            !store.stats(&theirs).unwrap().0.from_rollup,
            "moved less than a day ago"
        );
    }
}
