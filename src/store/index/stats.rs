//! `sessions stats`: usage over time, from the per-run rows (`turns.rs`) or the daily rollup.
//!
//! Three ways to answer, with the same results (tests hold them equal):
//! - the rollups (`usage_daily`; `usage_keyed` by tag and directory; the sessions' totals), when
//!   the question is in the rollup's zone, filters only by backend and status (or one key),
//!   groups only by what the rollup keeps and whole periods, and its time range (if any) is made
//!   of whole periods. Distinct sessions come from the "first run of the session in this
//!   period" bits, which add up;
//! - the daily rollup of another zone (`shifted_rollup`), for the same questions of periods
//!   over all time in another zone: the rollup's days, with the runs of the hours that zone
//!   puts in another period moved there, and the sessions of those runs counted again;
//! - the runs themselves (`turns`), for everything else: tags with other filters, working
//!   directories by day, sessions, and arbitrary ranges. Distinct sessions are counted with
//!   `count(DISTINCT)`, or by `sum_runs`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rusqlite::functions::FunctionFlags;
use rusqlite::types::Value as V;
use rusqlite::{params_from_iter, Connection};

use super::blocks;
use super::Index;
use crate::domain::Tokens;
use crate::error::Result;
use crate::store::query::{Filter, TimeRange};
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
    /// The working directory, shown by its name.
    Project,
    Session,
    /// The machine a session was started on ('' when unknown).
    Host,
    Period(Granularity),
    /// 5-hour usage blocks (`blocks`), by their start.
    Block,
}

/// The period among `dims`, if any (a query groups by one at most).
pub fn period_of(dims: &[Dimension]) -> Option<Granularity> {
    dims.iter().find_map(|d| match d {
        Dimension::Period(g) => Some(*g),
        _ => None,
    })
}

impl Dimension {
    /// A stretch of time: a calendar period or a 5-hour block (one at a time; rows in time order).
    pub fn is_time(self) -> bool {
        matches!(self, Dimension::Period(_) | Dimension::Block)
    }

    pub fn name(self) -> &'static str {
        match self {
            Dimension::Backend => "backend",
            Dimension::Model => "model",
            Dimension::Status => "status",
            Dimension::Tag => "tag",
            Dimension::Workdir => "workdir",
            Dimension::Project => "project",
            Dimension::Session => "session",
            Dimension::Host => "host",
            Dimension::Period(g) => g.as_str(),
            Dimension::Block => "block",
        }
    }
}

/// Usage of the selected sessions: their runs in `filter.since..filter.until` (by when each run
/// happened), grouped by `group_by` with periods counted in `zone`.
#[derive(Debug, Clone, PartialEq)]
pub struct StatsQuery {
    pub filter: Filter,
    /// When the runs happened (not when their sessions were last used).
    pub runs: TimeRange,
    pub group_by: Vec<Dimension>,
    pub zone: Zone,
    /// Only the N groups that used the most tokens (their `total`, ties by key), most first;
    /// the totals still cover everything selected.
    pub top: Option<u64>,
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

    /// Take out `o`, which was added before.
    fn take(&mut self, o: &UsageSums) {
        self.runs = self.runs.saturating_sub(o.runs);
        self.tokens = self.tokens.since(&o.tokens);
        self.total = self.total.saturating_sub(o.total);
        self.reported_cost_nusd -= o.reported_cost_nusd;
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
    /// With `--by block`: when its first and last runs happened (Unix ms).
    pub span: Option<(i64, i64)>,
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
    /// In key order (with `top`, the biggest first).
    pub groups: Vec<StatsGroup>,
    /// Over everything selected (with `--by tag`, not the sum of the groups).
    pub totals: StatsGroup,
    /// Whether the daily rollup answered the groups (for tests and benchmarks).
    pub from_rollup: bool,
    /// Whether the daily rollup of another zone answered the groups, with the runs of the hours
    /// that the asked zone puts in other periods (`shifted_rollup`; for tests and benchmarks).
    pub shifted_rollup: bool,
}

/// How a rollup answers a query: which one, the day range to read and the column counting
/// sessions.
#[derive(Debug, Clone, PartialEq, Eq)]
struct RollupPlan {
    table: Rollup,
    days: Option<(i64, i64)>,
    sessions_column: &'static str,
}

/// The rollups (see the migrations).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Rollup {
    /// `usage_daily`: per day, backend, status and model.
    Daily,
    /// `usage_keyed` of this kind (tags, directories), per key and month; `key`: only this one
    /// (a filter by one tag or one directory).
    Keyed { kind: i64, key: Option<String> },
}

/// Which rollup has the sessions' keys a query needs, if one has: at most one tag or one
/// directory, grouped by or filtered by, not both (a session in several groups and filtered
/// by another of its tags is in no rollup).
fn rollup_for(q: &StatsQuery) -> Option<Rollup> {
    let f = &q.filter;
    let by_tag = q.group_by.contains(&Dimension::Tag);
    let by_dir = q
        .group_by
        .iter()
        .any(|d| matches!(d, Dimension::Workdir | Dimension::Project));
    // The rollups know neither origins nor hosts.
    if f.origin.is_some()
        || f.host.is_some()
        || q.group_by
            .iter()
            .any(|d| matches!(d, Dimension::Session | Dimension::Block | Dimension::Host))
    {
        return None;
    }
    let tags = by_tag || !f.tags.is_empty();
    let dirs = by_dir || f.workdir.is_some();
    match (tags, dirs) {
        (false, false) => Some(Rollup::Daily),
        (true, false) if by_tag && f.tags.is_empty() => Some(Rollup::Keyed {
            kind: super::keyed::TAG,
            key: None,
        }),
        (true, false) if !by_tag && f.tags.len() == 1 => Some(Rollup::Keyed {
            kind: super::keyed::TAG,
            key: Some(f.tags[0].clone()),
        }),
        (false, true) => Some(Rollup::Keyed {
            kind: super::keyed::WORKDIR,
            key: f.workdir.clone(),
        }),
        _ => None,
    }
}

/// The rollup can answer `q` exactly only in its own zone, and only when every period it sums
/// is whole (a run's day is all it knows of the run's time).
fn rollup_plan(q: &StatsQuery, rollup_zone: &Zone) -> Option<RollupPlan> {
    let granularity = period_of(&q.group_by);
    // Without periods or a range, days do not matter, and neither does their zone.
    let zone_matters = granularity.is_some() || !q.runs.is_open();
    if zone_matters && q.zone != *rollup_zone {
        return None;
    }
    // The rollups know no session beyond its backend and status, and (by month) its tags or
    // its directory.
    let table = rollup_for(q)?;
    let keyed = table != Rollup::Daily;
    // By month, the keyed rollup has no weeks or days.
    let periods: &[Granularity] = if keyed {
        &[Granularity::Month]
    } else {
        &[Granularity::Day, Granularity::Week, Granularity::Month]
    };
    if granularity.is_some_and(|g| !periods.contains(&g)) {
        return None;
    }
    let per_model = q.group_by.contains(&Dimension::Model);
    let aligned = |t: DateTime<Utc>, g: Granularity| {
        let date = q.zone.date_of(t);
        (g.start(date) == date && q.zone.start_of(date) == Some(t)).then(|| day_number(date))
    };
    let bounds = |g: Granularity| -> Option<Option<(i64, i64)>> {
        match (q.runs.since, q.runs.until) {
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
        None => match (q.runs.since, q.runs.until) {
            (None, None) => (None, None),
            // No periods in the output: the range must be exactly one day, week or month.
            (Some(since), Some(until)) => periods.iter().copied().find_map(|g| {
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
        table,
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
    let (groups, from_rollup) = match top_sessions(conn, q)? {
        // The biggest sessions from their totals, then only their runs.
        Some(pks) => {
            let st = raw_statements(q, Some(&pks));
            (run_statements(conn, &st, &q.group_by)?, false)
        }
        None => {
            // Blocks are cut from the runs in time order: always summed here.
            let planned = (!q.group_by.contains(&Dimension::Block))
                .then(|| statements(q, rollup_zone))
                .filter(|(_, from_rollup)| *from_rollup || !runs_alone(q));
            let Some((st, from_rollup)) = planned else {
                let shifted = match rollup_zone {
                    Some(zone) => shifted_rollup(conn, q, zone)?,
                    None => None,
                };
                let shifted_rollup = shifted.is_some();
                let (groups, sessions) = match shifted {
                    Some(answer) => answer,
                    None => sum_runs(conn, q)?,
                };
                let totals = match q.group_by.is_empty() {
                    true => groups.first().cloned(),
                    false => Some(StatsGroup {
                        key: Vec::new(),
                        sessions,
                        parts: merge_parts(&groups),
                        span: None,
                    }),
                };
                let groups = match q.top {
                    Some(n) => biggest(groups, n),
                    None => groups,
                };
                return Ok(StatsResult {
                    groups,
                    totals: totals.unwrap_or_else(no_group),
                    from_rollup: false,
                    shifted_rollup,
                });
            };
            (run_statements(conn, &st, &q.group_by)?, from_rollup)
        }
    };
    let groups = match q.top {
        Some(n) => biggest(groups, n),
        None => groups,
    };
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
                span: None,
            })
        }
        Totals::OnTheirOwn(st) => run_statements(conn, &st, &[])?.into_iter().next(),
    };
    let totals = totals.unwrap_or_else(no_group);
    Ok(StatsResult {
        groups,
        totals,
        from_rollup,
        shifted_rollup: false,
    })
}

fn no_group() -> StatsGroup {
    StatsGroup {
        key: Vec::new(),
        sessions: 0,
        parts: Vec::new(),
        span: None,
    }
}

/// Whether `q` needs nothing but the runs' own columns: no tag, directory or session, and no
/// `top` (whose totals are planned apart).
fn runs_alone(q: &StatsQuery) -> bool {
    let f = &q.filter;
    f.tags.is_empty()
        && f.workdir.is_none()
        && f.origin.is_none()
        && f.host.is_none()
        && q.top.is_none()
        && q.group_by.iter().all(|d| {
            matches!(
                d,
                Dimension::Backend | Dimension::Status | Dimension::Model | Dimension::Period(_)
            )
        })
}

/// The runs, as the statements read them: SQLite would rather read every run in session order
/// (which makes counting distinct sessions cheap) than search a range by time; for a range
/// (without a tag, whose sessions come first), the range is far cheaper.
fn runs_table(q: &StatsQuery) -> &'static str {
    if !q.runs.is_open() && q.filter.tags.is_empty() {
        "turns x INDEXED BY turns_by_time"
    } else {
        "turns x"
    }
}

/// The runs in `runs` (by when they happened), on the runs aliased `x`.
pub(super) fn run_range_conditions(runs: &TimeRange, conds: &mut Vec<String>, args: &mut Vec<V>) {
    if let Some(t) = runs.since {
        conds.push("x.at >= ?".into());
        args.push(V::Integer(t.timestamp_millis()));
    }
    if let Some(t) = runs.until {
        conds.push("x.at < ?".into());
        args.push(V::Integer(t.timestamp_millis()));
    }
}

/// The statement `sum_runs` reads the runs with.
fn runs_statement(q: &StatsQuery) -> (String, Vec<V>) {
    let mut conds = Vec::new();
    let mut args = Vec::new();
    sql::session_conditions(&q.filter, "x", &mut conds, &mut args);
    run_range_conditions(&q.runs, &mut conds, &mut args);
    let from = runs_table(q);
    let sql = format!("SELECT {RUN_COLUMNS} FROM {from} {}", where_clause(&conds));
    (sql, args)
}

/// What `sum_runs` reads of each run.
const RUN_COLUMNS: &str = "x.session_pk, x.at, x.backend, x.status, x.model, \
     x.cost_nusd IS NOT NULL, x.runs, x.input, x.output, x.cached, x.cache_write, x.reasoning, \
     x.total, coalesce(x.cost_nusd, 0)";

/// The period (its first day's number) of an instant (Unix ms) in a zone. Runs of one hour fall
/// in one period in any zone with whole-hour offsets, and in most hours of any other: the
/// period of an hour is worked out once when it can be.
struct PeriodsAt {
    zone: Zone,
    g: Granularity,
    hours: std::collections::HashMap<i64, Option<i64>>,
}

impl PeriodsAt {
    fn new(zone: Zone, g: Granularity) -> PeriodsAt {
        PeriodsAt {
            zone,
            g,
            hours: Default::default(),
        }
    }

    fn of(&self, ms: i64) -> i64 {
        let t = DateTime::from_timestamp_millis(ms).unwrap_or_default();
        day_number(self.g.start(self.zone.date_of(t)))
    }

    fn at(&mut self, ms: i64) -> i64 {
        const HOUR: i64 = 3_600_000;
        let hour = ms.div_euclid(HOUR);
        if let Some(whole) = self.hours.get(&hour) {
            return whole.unwrap_or_else(|| self.of(ms));
        }
        let (first, last) = (self.of(hour * HOUR), self.of(hour * HOUR + HOUR - 1));
        let whole = (first == last).then_some(first);
        self.hours.insert(hour, whole);
        whole.unwrap_or_else(|| self.of(ms))
    }
}

/// A group's values, by dimension: a period's first day, or a name's number in `Names`.
type Key = [i64; 4];

/// Names (backends, statuses, models) numbered as they are first met, so that keys are numbers.
#[derive(Default)]
struct Names {
    names: Vec<String>,
    numbers: std::collections::HashMap<String, i64>,
}

impl Names {
    fn number(&mut self, name: &str) -> i64 {
        if let Some(n) = self.numbers.get(name) {
            return *n;
        }
        self.names.push(name.to_string());
        self.numbers
            .insert(name.to_string(), self.names.len() as i64 - 1);
        self.names.len() as i64 - 1
    }

    fn name(&self, n: i64) -> &str {
        &self.names[n as usize]
    }

    /// `key` as the SQL answers give it: labels, by `dims`.
    fn label(&self, dims: &[Dimension], key: &Key) -> Vec<String> {
        dims.iter()
            .zip(key)
            .map(|(d, v)| match d {
                Dimension::Period(g) => g.label(date_of_day_number(*v)),
                Dimension::Block => blocks::label(*v),
                _ => self.name(*v).to_string(),
            })
            .collect()
    }
}

/// A question of the runs alone (`runs_alone`) that no rollup answers (a range that cuts a
/// period, another zone that `shifted_rollup` leaves): every run in range read once and summed
/// here, with the distinct sessions of each group and of them all. Grouped by SQLite, every run
/// would go through its sorter first, the most of such a question's time.
fn sum_runs(conn: &Connection, q: &StatsQuery) -> rusqlite::Result<(Vec<StatsGroup>, u64)> {
    use std::collections::{HashMap, HashSet};
    let mut names = Names::default();
    let granularity = period_of(&q.group_by);
    let mut periods = PeriodsAt::new(q.zone, granularity.unwrap_or(Granularity::Day));
    let mut period_of_run = |at: i64| periods.at(at);
    let mut parts: HashMap<(Key, i64, bool), UsageSums> = HashMap::new();
    let mut in_group: HashSet<(Key, i64)> = HashSet::new();
    let mut everyone: HashSet<i64> = HashSet::new();
    // Blocks are cut from the runs in time order, from the last gap before the range.
    let by_block = q.group_by.contains(&Dimension::Block);
    let mut cutter = blocks::Cutter::default();
    let mut spans: HashMap<Key, (i64, i64)> = HashMap::new();
    let since = q.runs.since.map(|t| t.timestamp_millis());
    let until = q.runs.until.map(|t| t.timestamp_millis());
    let (sql, args) = match (by_block, since) {
        (false, _) => runs_statement(q),
        (true, None) => blocks::runs_sql(&q.filter, RUN_COLUMNS, (None, until), "ASC"),
        (true, Some(since)) => match blocks::chain_start(conn, &q.filter, since, until)? {
            Some(from) => blocks::runs_sql(&q.filter, RUN_COLUMNS, (Some(from), until), "ASC"),
            None => return Ok((Vec::new(), 0)),
        },
    };
    let mut stmt = conn.prepare(&sql)?;
    let mut rows = stmt.query(params_from_iter(args.iter()))?;
    while let Some(r) = rows.next()? {
        let session: i64 = r.get(0)?;
        let at: i64 = r.get(1)?;
        let block = if by_block { cutter.block_of(at) } else { 0 };
        if since.is_some_and(|since| at < since) {
            continue;
        }
        let text = |i: usize| super::row::text_at(r, i);
        let mut key: Key = [0; 4];
        for (slot, d) in key.iter_mut().zip(&q.group_by) {
            *slot = match d {
                Dimension::Backend => names.number(text(2)?),
                Dimension::Status => names.number(text(3)?),
                Dimension::Model => names.number(text(4)?),
                Dimension::Block => block,
                Dimension::Period(_) => period_of_run(at),
                // (`runs_alone` and the CLI's check of `--by block` keep them out.)
                Dimension::Tag
                | Dimension::Workdir
                | Dimension::Project
                | Dimension::Session
                | Dimension::Host => unreachable!("sum_runs groups by the runs' own columns"),
            };
        }
        if by_block {
            let span = spans.entry(key).or_insert((at, at));
            span.1 = at;
        }
        let model = names.number(text(4)?);
        let sums = sums_at(r, 6)?;
        parts.entry((key, model, r.get(5)?)).or_default().add(&sums);
        in_group.insert((key, session));
        everyone.insert(session);
    }
    // As the SQL answers give them: keys as labels, then `fold`.
    let label = |key: &Key| names.label(&q.group_by, key);
    let mut distinct: BTreeMap<Vec<String>, u64> = BTreeMap::new();
    for (key, _) in &in_group {
        *distinct.entry(label(key)).or_default() += 1;
    }
    let rows: Vec<(Vec<String>, ModelPart, u64)> = parts
        .into_iter()
        .map(|((key, model, reported), sums)| {
            let part = ModelPart {
                model: names.name(model).to_string(),
                reported,
                sums,
            };
            (label(&key), part, 0)
        })
        .collect();
    let mut groups = fold(rows, Some(&distinct));
    if by_block {
        let spans: HashMap<Vec<String>, (i64, i64)> = spans
            .iter()
            .map(|(key, span)| (label(key), *span))
            .collect();
        for g in &mut groups {
            g.span = spans.get(&g.key).copied();
        }
    }
    Ok((groups, everyone.len() as u64))
}

/// A question of periods in another zone than the rollup's (`--timezone`, `--utc`) of the runs'
/// own columns over all time (`runs_alone`), from the daily rollup. Most of the rollup's days
/// lie whole in one period of the asked zone, the one they lie in in the rollup's zone: those
/// are summed as they are. A day that a period boundary of the asked zone cuts is summed as a
/// whole too, then the runs of the part of it that lies in another period (a few hours) are
/// read and moved there. The rollup's bits count a session once per period of the rollup's
/// zone; only the sessions with a run moved can be in other periods in the asked zone, so
/// their runs are read and each counted out of its periods in the rollup's zone and into those
/// of the asked one. None when that does not apply, or when reading every run would be about
/// as fast: more than an eighth of the hours move (by day, any zone more than three hours from
/// the rollup's), or more than a quarter of the sessions have a run moved. `rollup_zone`: the
/// zone of `turns.day`. Gives what `sum_runs` gives (tests hold them equal).
fn shifted_rollup(
    conn: &Connection,
    q: &StatsQuery,
    rollup_zone: &Zone,
) -> rusqlite::Result<Option<(Vec<StatsGroup>, u64)>> {
    use std::collections::{HashMap, HashSet};
    let Some(g) = shifted_period(q, rollup_zone) else {
        return Ok(None);
    };
    let period_of_date = |date: chrono::NaiveDate| day_number(g.start(date));
    let mut periods = PeriodsAt::new(q.zone, g);
    // A rollup day's instants (Unix ms) that lie in another period of the asked zone than the
    // day's own period in the rollup's zone, as ranges; None if the day's start is unknown.
    let elsewhere = |day: i64| -> Option<Vec<(i64, i64)>> {
        let date = date_of_day_number(day);
        let start = rollup_zone.start_of(date)?.timestamp_millis();
        let end = rollup_zone.start_of(date.succ_opt()?)?.timestamp_millis();
        let own = period_of_date(date);
        let at = |ms: i64| DateTime::from_timestamp_millis(ms).unwrap_or_default();
        // The day cut where periods of the asked zone start, each piece in one period.
        let mut cuts = vec![start, end];
        let mut local = q.zone.date_of(at(start));
        while local <= q.zone.date_of(at(end - 1)) {
            if g.start(local) == local {
                let t = q.zone.start_of(local)?.timestamp_millis();
                if start < t && t < end {
                    cuts.push(t);
                }
            }
            local = local.succ_opt()?;
        }
        cuts.sort_unstable();
        let pieces = PeriodsAt::new(q.zone, g);
        Some(
            cuts.windows(2)
                .map(|w| (w[0], w[1]))
                .filter(|(from, _)| pieces.of(*from) != own)
                .collect(),
        )
    };
    let mut names = Names::default();
    let mut key_of = |backend: &str, status: &str, model: &str, period: i64| -> Key {
        let mut key: Key = [0; 4];
        for (slot, d) in key.iter_mut().zip(&q.group_by) {
            *slot = match d {
                Dimension::Backend => names.number(backend),
                Dimension::Status => names.number(status),
                Dimension::Model => names.number(model),
                _ => period,
            };
        }
        key
    };
    let text = |r: &rusqlite::Row<'_>, i: usize| -> rusqlite::Result<String> { r.get(i) };
    let (sql, args) = shifted_days_sql(q, g);

    // Parts by (key, model, reported): their sums and how many rows of runs made them (a part
    // exists if any run is in it, whatever its sums).
    let mut parts: HashMap<(Key, String, bool), (UsageSums, i64)> = HashMap::new();
    // Sessions by key, in the rollup's periods, then corrected.
    let mut sessions: HashMap<Key, i64> = HashMap::new();
    let mut everyone = 0u64;
    let mut days: HashMap<i64, Vec<(i64, i64)>> = HashMap::new();
    let mut stmt = conn.prepare(&sql)?;
    let mut rows = stmt.query(params_from_iter(args.iter()))?;
    while let Some(r) = rows.next()? {
        let day: i64 = r.get(0)?;
        if let std::collections::hash_map::Entry::Vacant(entry) = days.entry(day) {
            let Some(moved) = elsewhere(day) else {
                return Ok(None);
            };
            entry.insert(moved);
        }
        let (backend, status, model) = (text(r, 1)?, text(r, 2)?, text(r, 3)?);
        let key = key_of(
            &backend,
            &status,
            &model,
            period_of_date(date_of_day_number(day)),
        );
        *sessions.entry(key).or_default() += r.get::<_, i64>(14)?;
        everyone += r.get::<_, i64>(15)?.max(0) as u64;
        let part = parts.entry((key, model, r.get(4)?)).or_default();
        part.0.add(&sums_at(r, 6)?);
        part.1 += r.get::<_, i64>(5)?;
    }
    drop(rows);
    let cut: Vec<(i64, i64)> = days.values().flatten().copied().collect();
    let hours: i64 = cut.iter().map(|(from, to)| to - from).sum::<i64>() / 3_600_000;
    if hours > 24 * days.len() as i64 / 8 {
        return Ok(None);
    }

    // The runs that lie elsewhere, moved from their period in the rollup's zone to theirs in
    // the asked one; their sessions.
    let mut moved: HashSet<i64> = HashSet::new();
    let mut rollup_periods = PeriodsAt::new(*rollup_zone, g);
    for (start, end) in cut {
        let (sql, args) = shifted_cut_day_sql(q, start, end);
        let mut stmt = conn.prepare_cached(&sql)?;
        let mut rows = stmt.query(params_from_iter(args.iter()))?;
        while let Some(r) = rows.next()? {
            let at: i64 = r.get(1)?;
            let (backend, status, model) = (text(r, 2)?, text(r, 3)?, text(r, 4)?);
            let reported: bool = r.get(5)?;
            let sums = sums_at(r, 6)?;
            let from = key_of(&backend, &status, &model, rollup_periods.at(at));
            let to = key_of(&backend, &status, &model, periods.at(at));
            let part = parts.entry((from, model.clone(), reported)).or_default();
            part.0.take(&sums);
            part.1 -= 1;
            let part = parts.entry((to, model, reported)).or_default();
            part.0.add(&sums);
            part.1 += 1;
            moved.insert(r.get(0)?);
        }
    }

    // Most sessions have a run moved (long ones, by week): reading every run is no slower.
    if moved.len() as u64 * 4 > everyone {
        return Ok(None);
    }
    // Those sessions' groups in either zone, from all their runs (a session's runs all pass
    // the filter or none: backend and status are the session's).
    let mut in_rollup: HashSet<(Key, i64)> = HashSet::new();
    let mut in_zone: HashSet<(Key, i64)> = HashSet::new();
    // In the table's order: the runs of neighbouring sessions lie on the same pages.
    let mut pks: Vec<i64> = moved.into_iter().collect();
    pks.sort_unstable();
    let pks: Vec<V> = pks.into_iter().map(V::Integer).collect();
    let mut stmt = conn.prepare(SHIFTED_SESSIONS_SQL)?;
    let mut rows = stmt.query([std::rc::Rc::new(pks)])?;
    while let Some(r) = rows.next()? {
        let pk: i64 = r.get(0)?;
        let (backend, status, model) = (text(r, 3)?, text(r, 4)?, text(r, 5)?);
        let own = period_of_date(date_of_day_number(r.get(2)?));
        in_rollup.insert((key_of(&backend, &status, &model, own), pk));
        in_zone.insert((key_of(&backend, &status, &model, periods.at(r.get(1)?)), pk));
    }
    for (key, _) in &in_rollup {
        *sessions.entry(*key).or_default() -= 1;
    }
    for (key, _) in &in_zone {
        *sessions.entry(*key).or_default() += 1;
    }

    let label = |key: &Key| names.label(&q.group_by, key);
    let distinct: BTreeMap<Vec<String>, u64> = sessions
        .iter()
        .map(|(key, n)| (label(key), (*n).max(0) as u64))
        .collect();
    let rows: Vec<(Vec<String>, ModelPart, u64)> = parts
        .into_iter()
        .filter(|(_, (_, runs))| *runs > 0)
        .map(|((key, model, reported), (sums, _))| {
            (
                label(&key),
                ModelPart {
                    model,
                    reported,
                    sums,
                },
                0,
            )
        })
        .collect();
    Ok(Some((fold(rows, Some(&distinct)), everyone)))
}

/// The period `shifted_rollup` would group `q` by, if it applies to `q`.
fn shifted_period(q: &StatsQuery, rollup_zone: &Zone) -> Option<Granularity> {
    let g = period_of(&q.group_by)?;
    (q.zone != *rollup_zone
        && q.runs.is_open()
        && runs_alone(q)
        && rollup_for(q) == Some(Rollup::Daily))
    .then_some(g)
}

/// What `shifted_rollup` reads of the rollup: every day of the selected sessions, with the
/// bits that count sessions by `g` (per model when grouped by model) and over all time.
fn shifted_days_sql(q: &StatsQuery, g: Granularity) -> (String, Vec<V>) {
    let bits = match (g, q.group_by.contains(&Dimension::Model)) {
        (Granularity::Day, false) => "first_day",
        (Granularity::Day, true) => "model_first_day",
        (Granularity::Week, false) => "first_week",
        (Granularity::Week, true) => "model_first_week",
        (Granularity::Month, false) => "first_month",
        (Granularity::Month, true) => "model_first_month",
    };
    let mut conds = Vec::new();
    let mut args = Vec::new();
    sql::session_conditions(&q.filter, "x", &mut conds, &mut args);
    let sql = format!(
        "SELECT x.day, x.backend, x.status, x.model, x.reported, x.turn_rows, \
         x.runs, x.input, x.output, x.cached, x.cache_write, x.reasoning, x.total, x.cost_nusd, \
         x.{bits}, x.first_ever FROM usage_daily x {}",
        where_clause(&conds)
    );
    (sql, args)
}

/// The runs of one cut day (`start..end`, Unix ms) of the sessions `q` selects, as `sum_runs`
/// reads them.
fn shifted_cut_day_sql(q: &StatsQuery, start: i64, end: i64) -> (String, Vec<V>) {
    runs_statement(&StatsQuery {
        runs: TimeRange {
            since: DateTime::from_timestamp_millis(start),
            until: DateTime::from_timestamp_millis(end),
        },
        ..q.clone()
    })
}

/// Every run of the sessions in `rarray(?1)`, by their key.
const SHIFTED_SESSIONS_SQL: &str = "SELECT x.session_pk, x.at, x.day, x.backend, x.status, \
     x.model FROM turns x WHERE x.session_pk IN rarray(?1)";

/// The `n` groups with the biggest totals, biggest first (ties by key).
fn biggest(mut groups: Vec<StatsGroup>, n: u64) -> Vec<StatsGroup> {
    biggest_first(&mut groups);
    groups.truncate(usize::try_from(n).unwrap_or(usize::MAX));
    groups
}

/// The biggest totals first, ties by key.
fn biggest_first(groups: &mut [StatsGroup]) {
    groups.sort_by(|a, b| {
        b.sums()
            .total
            .cmp(&a.sums().total)
            .then_with(|| a.key.cmp(&b.key))
    });
}

/// For `--by session -n N` over all time: the pks of the N sessions that used the most, from
/// their totals (`session_totals`, walked biggest first) instead of summing every run. None
/// when the question is another.
fn top_sessions(conn: &Connection, q: &StatsQuery) -> rusqlite::Result<Option<Vec<i64>>> {
    let Some(n) = q.top else { return Ok(None) };
    if q.group_by != [Dimension::Session] || !q.runs.is_open() || q.filter.origin.is_some() {
        return Ok(None);
    }
    let (sql, args) = top_sessions_sql(q, n);
    let mut stmt = conn.prepare(&sql)?;
    let pks = stmt
        .query_map(params_from_iter(args.iter()), |r| r.get(0))?
        .collect::<rusqlite::Result<Vec<i64>>>()?;
    Ok(Some(pks))
}

fn top_sessions_sql(q: &StatsQuery, n: u64) -> (String, Vec<V>) {
    totals_walk_sql(q, "st.session_pk", None, n)
}

/// `cols` of the sessions `q` selects (`st`: their totals, `s`: their rows), the biggest (by
/// their totals over all time) first and ties by id, from after `after` (a session's total and
/// id), at most `n`.
fn totals_walk_sql(
    q: &StatsQuery,
    cols: &str,
    after: Option<(u64, &str)>,
    n: u64,
) -> (String, Vec<V>) {
    let f = &q.filter;
    let mut conds = Vec::new();
    let mut args = Vec::new();
    sql::session_conditions(f, "s", &mut conds, &mut args);
    sql::row_conditions(f, "s", &mut conds, &mut args);
    for tag in &f.tags {
        // Tested per session as the walk goes (it stops at the limit), not gathered first.
        conds.push(
            "EXISTS (SELECT 1 FROM session_tags g WHERE g.tag = ? AND g.session_pk = s.pk)".into(),
        );
        args.push(V::Text(tag.clone()));
    }
    if let Some((total, id)) = after {
        let total = i64::try_from(total).unwrap_or(i64::MAX);
        conds.push("st.total <= ? AND (st.total < ? OR s.id > ?)".into());
        args.extend([
            V::Integer(total),
            V::Integer(total),
            V::Text(id.to_string()),
        ]);
    }
    // The totals first (CROSS JOIN keeps that order): left to itself, SQLite sorts every
    // session rather than walk the totals' index and stop at the limit.
    let sql = format!(
        "SELECT {cols} FROM session_totals st CROSS JOIN sessions s \
         ON s.pk = st.session_pk {} ORDER BY st.total DESC, s.id LIMIT {}",
        where_clause(&conds),
        i64::try_from(n).unwrap_or(i64::MAX)
    );
    (sql, args)
}

/// Whether `q` can be answered a page of sessions at a time (`session_page`): by session alone,
/// over all time, all of them, the biggest first.
pub fn pages_of_sessions(q: &StatsQuery) -> bool {
    q.group_by == [Dimension::Session] && q.runs.is_open() && q.top.is_none()
}

/// A page of session groups (`session_page`), and where the next one starts (None: this was
/// the last).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionPage {
    pub groups: Vec<StatsGroup>,
    /// The last session walked: its total and id.
    pub next: Option<(u64, String)>,
}

/// `q`'s session groups (see `pages_of_sessions`) among the next `n` sessions walked from after
/// `after` (a total and an id), the biggest first: what `stats` gives them, a page at a time.
/// (A session that ran nothing in the selection walks by without a group.)
fn session_page(
    conn: &Connection,
    q: &StatsQuery,
    after: Option<(u64, &str)>,
    n: u64,
) -> rusqlite::Result<SessionPage> {
    let (sql, args) = totals_walk_sql(q, "st.session_pk, st.total, s.id", after, n);
    let walked: Vec<(i64, i64, String)> = conn
        .prepare(&sql)?
        .query_map(params_from_iter(args.iter()), |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?
        .collect::<rusqlite::Result<_>>()?;
    let next = match walked.last() {
        Some((_, total, id)) if walked.len() as u64 == n => {
            Some((*total.max(&0) as u64, id.clone()))
        }
        _ => None,
    };
    if walked.is_empty() {
        return Ok(SessionPage {
            groups: Vec::new(),
            next,
        });
    }
    let pks: Vec<i64> = walked.iter().map(|(pk, _, _)| *pk).collect();
    let st = raw_statements(q, Some(&pks));
    // A session's group has one session: no count of distinct ones to make.
    let mut groups = fold(
        query_parts(conn, &st.sums, &st.args, &q.group_by, false)?,
        None,
    );
    for g in &mut groups {
        g.sessions = 1;
    }
    biggest_first(&mut groups);
    Ok(SessionPage { groups, next })
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

/// The column of a dimension that both usage tables (`x`: the runs, or the rollup) carry:
/// backend, status, model, and the period, which is `period` in the table at hand.
fn usage_column(d: &Dimension, period: &'static str) -> Option<&'static str> {
    match d {
        Dimension::Backend => Some("x.backend"),
        Dimension::Status => Some("x.status"),
        Dimension::Model => Some("x.model"),
        Dimension::Period(_) => Some(period),
        _ => None,
    }
}

fn rollup_statements(q: &StatsQuery, plan: &RollupPlan) -> Statements {
    let (table, day, period) = match plan.table {
        Rollup::Daily => ("usage_daily", "x.day", "clinvk_period_of_day(x.day)"),
        Rollup::Keyed { .. } => ("usage_keyed", "x.month", "clinvk_period_of_day(x.month)"),
    };
    let cols: Vec<&str> = q
        .group_by
        .iter()
        .map(|d| match d {
            // rollup_for allows these only with the keyed rollup of their kind.
            Dimension::Tag | Dimension::Workdir | Dimension::Project => "x.key",
            _ => usage_column(d, period).expect("a dimension of the rollup"),
        })
        .collect();
    let mut conds = Vec::new();
    let mut args = Vec::new();
    // Backend and status are copied into both usage tables (`x`).
    sql::session_conditions(&q.filter, "x", &mut conds, &mut args);
    if let Rollup::Keyed { kind, key } = &plan.table {
        conds.push("x.kind = ?".to_string());
        args.push(V::Integer(*kind));
        if let Some(key) = key {
            conds.push("x.key = ?".to_string());
            args.push(V::Text(key.clone()));
        }
    }
    if let Some((lo, hi)) = plan.days {
        conds.push(format!("{day} >= ? AND {day} < ?"));
        args.push(V::Integer(lo));
        args.push(V::Integer(hi));
    }
    let keys = key_list(&cols);
    let where_ = where_clause(&conds);
    let sessions = plan.sessions_column;
    Statements {
        sums: format!(
            "SELECT {keys}x.model, x.reported, {SUMS}, sum(x.{sessions}) FROM {table} x {where_} \
             GROUP BY {keys}x.model, x.reported",
        ),
        distinct: None,
        sessions_only: format!("SELECT sum(x.{sessions}) FROM {table} x {where_}"),
        args,
    }
}

/// `only`: the runs of these sessions only.
fn raw_statements(q: &StatsQuery, only: Option<&[i64]>) -> Statements {
    let f = &q.filter;
    let mut join_session = f.on_session_row();
    let mut join_tags = false;
    let cols: Vec<&str> = q
        .group_by
        .iter()
        .map(|d| match d {
            Dimension::Backend | Dimension::Status | Dimension::Model | Dimension::Period(_) => {
                usage_column(d, "clinvk_period(x.at)").expect("a column of both usage tables")
            }
            Dimension::Workdir | Dimension::Project => {
                join_session = true;
                "s.workdir"
            }
            Dimension::Session => {
                join_session = true;
                "s.id"
            }
            Dimension::Host => {
                join_session = true;
                "coalesce(s.host, '')"
            }
            Dimension::Tag => {
                join_tags = true;
                "coalesce(g.tag, '')"
            }
            Dimension::Block => unreachable!("blocks are cut by sum_runs"),
        })
        .collect();
    let mut from = runs_table(q).to_string();
    if join_session {
        from.push_str(" JOIN sessions s ON s.pk = x.session_pk");
    }
    if join_tags {
        from.push_str(" LEFT JOIN session_tags g ON g.session_pk = x.session_pk");
    }
    let mut conds = Vec::new();
    let mut args = Vec::new();
    sql::run_conditions(f, &mut conds, &mut args);
    if let Some(pks) = only {
        // Integers, written out: a few at most.
        let list: Vec<String> = pks.iter().map(i64::to_string).collect();
        conds.push(format!("x.session_pk IN ({})", list.join(", ")));
        if join_session {
            // Said of the session too, or SQLite walks every session to find their runs.
            conds.push(format!("s.pk IN ({})", list.join(", ")));
        }
    }
    run_range_conditions(&q.runs, &mut conds, &mut args);
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
        None => (raw_statements(q, None), false),
    }
}

/// How the totals of `q` are answered.
enum Totals {
    /// Without groups, the one group is the totals.
    TheGroup,
    /// The groups split the runs: their sums add up, and only the distinct sessions need
    /// counting again (this statement's `sessions_only`).
    FromGroups(Statements),
    /// With `--by tag` a run is in several groups, with `top` some groups are left out: the
    /// whole totals, on their own.
    OnTheirOwn(Statements),
}

/// The totals are planned on their own: sessions counted per month do not add up to the
/// sessions of a year.
fn totals(q: &StatsQuery, rollup_zone: Option<&Zone>) -> Totals {
    let overall = StatsQuery {
        group_by: Vec::new(),
        top: None,
        ..q.clone()
    };
    if q.group_by.is_empty() {
        Totals::TheGroup
    } else if q.group_by.contains(&Dimension::Tag) || q.top.is_some() {
        // A run in several groups, or groups left out: the groups do not add up to the totals.
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
    let st = match top_sessions(conn, q)? {
        Some(pks) => {
            let (sql, args) = top_sessions_sql(q, q.top.unwrap_or(0));
            explain(&sql, &args)?;
            raw_statements(q, Some(&pks))
        }
        None => {
            if q.group_by.contains(&Dimension::Block) {
                let until = q.runs.until.map(|t| t.timestamp_millis());
                let (sql, args) = blocks::runs_sql(&q.filter, RUN_COLUMNS, (None, until), "ASC");
                explain(&sql, &args)?;
                return Ok(lines);
            }
            let (st, from_rollup) = statements(q, rollup_zone);
            let shifted = rollup_zone.and_then(|zone| shifted_period(q, zone));
            if let (false, Some(g)) = (from_rollup, shifted) {
                // (`stats` may still read every run instead, if most days are cut.)
                let (sql, args) = shifted_days_sql(q, g);
                explain(&sql, &args)?;
                let (sql, args) = shifted_cut_day_sql(q, 0, 86_400_000);
                explain(&sql, &args)?;
                // (Its list of sessions is bound when it runs; a plan needs none.)
                explain(SHIFTED_SESSIONS_SQL, &[V::Null])?;
                return Ok(lines);
            }
            if !from_rollup && runs_alone(q) {
                let (sql, args) = runs_statement(q);
                explain(&sql, &args)?;
                return Ok(lines);
            }
            st
        }
    };
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
        let part = ModelPart {
            model: r.get(n)?,
            reported: r.get(n + 1)?,
            sums: sums_at(r, n + 2)?,
        };
        let sessions = if with_sessions {
            r.get::<_, i64>(n + 10)?.max(0) as u64
        } else {
            0
        };
        out.push((read_key(r, dims)?, part, sessions));
    }
    Ok(out)
}

/// The sums of a row from column `at` on: runs, input, output, cached, cache_write, reasoning,
/// total, then the reported cost (as `SUMS` and `sum_runs` select them).
fn sums_at(r: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<UsageSums> {
    let count = |i: usize| -> rusqlite::Result<u64> { Ok(r.get::<_, i64>(at + i)?.max(0) as u64) };
    Ok(UsageSums {
        runs: count(0)?,
        tokens: Tokens {
            input: count(1)?,
            output: count(2)?,
            cached: count(3)?,
            cache_write: count(4)?,
            reasoning: count(5)?,
        },
        total: count(6)?,
        reported_cost_nusd: r.get(at + 7)?,
    })
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
            span: None,
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

impl Index {
    /// A page of `query`'s session groups (see `pages_of_sessions`): those of the next `n`
    /// sessions from after the one of total `after.0` and id `after.1`.
    pub fn session_page(
        &self,
        query: &StatsQuery,
        after: Option<(u64, &str)>,
        n: u64,
    ) -> Result<SessionPage> {
        session_page(&self.conn, query, after, n).map_err(|e| self.err(e))
    }

    /// The usage of the session holding `backend`'s conversation `native_id`, if one does (the
    /// one the import merges into: `native::session_by_backend_id`): its runs summed by model,
    /// as a group of `stats` gives them.
    pub fn conversation_usage(
        &self,
        backend: crate::domain::Backend,
        native_id: &str,
    ) -> Result<Option<StatsGroup>> {
        let answer = || -> rusqlite::Result<Option<StatsGroup>> {
            let Some(id) = super::native::session_by_backend_id(&self.conn, backend, native_id)?
            else {
                return Ok(None);
            };
            let sql = format!(
                "SELECT x.model, x.cost_nusd IS NOT NULL, {SUMS} FROM sessions s
                 JOIN turns x ON x.session_pk = s.pk WHERE s.id = ?1
                 GROUP BY x.model, x.cost_nusd IS NOT NULL"
            );
            let mut stmt = self.conn.prepare(&sql)?;
            let parts = stmt
                .query_map([id], |r| {
                    Ok(ModelPart {
                        model: r.get(0)?,
                        reported: r.get(1)?,
                        sums: sums_at(r, 2)?,
                    })
                })?
                .collect::<rusqlite::Result<_>>()?;
            Ok(Some(StatsGroup {
                key: Vec::new(),
                sessions: 1,
                parts,
                span: None,
            }))
        };
        answer().map_err(|e| self.err(e))
    }

    /// Usage of the selected sessions' runs, grouped (`sessions stats`).
    pub fn stats(&self, query: &StatsQuery) -> Result<StatsResult> {
        stats(&self.conn, query, Some(&self.rollup_zone)).map_err(|e| self.err(e))
    }
    /// The query plans of `stats` (for tests and benchmarks).
    pub fn explain_stats(&self, query: &StatsQuery) -> Result<Vec<String>> {
        explain(&self.conn, query, Some(&self.rollup_zone)).map_err(|e| self.err(e))
    }
    /// `stats` without the rollup: from the runs themselves (to check one against the other).
    #[cfg(test)]
    pub fn stats_scanning_runs(&self, query: &StatsQuery) -> Result<StatsResult> {
        stats(&self.conn, query, None).map_err(|e| self.err(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Backend, Status};
    use crate::store::index::fixtures::{session, t, turn, usage, utc};
    use crate::store::{Quiet, Store};

    fn query(dims: &[Dimension], zone: &Zone) -> StatsQuery {
        StatsQuery {
            filter: Filter::default(),
            runs: TimeRange::default(),
            group_by: dims.to_vec(),
            zone: *zone,
            top: None,
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
        // By tag: the rollup by key, by months at most.
        assert_eq!(plan(&query(&[Dimension::Tag], &paris)), Some("first_ever"));
        assert_eq!(
            plan(&query(&[month, Dimension::Tag], &paris)),
            Some("first_month")
        );
        let day = Dimension::Period(Granularity::Day);
        assert_eq!(plan(&query(&[day, Dimension::Tag], &paris)), None);
        assert_eq!(
            plan(&query(&[Dimension::Tag, Dimension::Workdir], &paris)),
            None
        );
        let mut two_tags = query(&[Dimension::Backend], &paris);
        two_tags.filter.tags = vec!["a".into(), "b".into()];
        assert_eq!(plan(&two_tags), None, "two tags: only the runs know");
        let mut by_tag_of_tagged = query(&[Dimension::Tag], &paris);
        by_tag_of_tagged.filter.tags = vec!["a".into()];
        assert_eq!(plan(&by_tag_of_tagged), None);
        let mut q = query(&[month], &paris);
        q.runs.since = paris.start_of(chrono::NaiveDate::from_ymd_opt(2025, 2, 1).unwrap());
        assert_eq!(plan(&q), Some("first_month"), "a whole month");
        q.runs.since = paris.start_of(chrono::NaiveDate::from_ymd_opt(2025, 2, 2).unwrap());
        assert_eq!(plan(&q), None, "half a month");
        // No periods: one whole week is fine, any other range is not.
        let mut q = query(&[], &paris);
        let monday = chrono::NaiveDate::from_ymd_opt(2025, 1, 27).unwrap();
        q.runs.since = paris.start_of(monday);
        q.runs.until = paris.start_of(monday + chrono::Duration::days(7));
        assert_eq!(plan(&q), Some("first_week"));
        q.runs.until = paris.start_of(monday + chrono::Duration::days(8));
        assert_eq!(plan(&q), None);
    }

    /// Periods in another zone than the rollup's, from the rollup and the runs on the days that
    /// zone's boundaries cut: what the runs alone give, for rollups and asked zones east and
    /// west of each other, with summer time, half-hour offsets and a day apart; by day, week and
    /// month, with and without models; sessions whose runs cross a boundary, and filters.
    #[test]
    fn another_zones_periods_from_the_rollup_are_the_runs_own() {
        let backends = [Backend::Claude, Backend::Codex, Backend::Gemini];
        let models = [Some("m1"), Some("m2"), None];
        // (Kiritimati and -11:00: more than a day apart.)
        for rollup in ["UTC", "America/New_York", "+05:30", "Pacific/Kiritimati"] {
            let rollup = Zone::parse(rollup).unwrap();
            let dir = tempfile::tempdir().unwrap();
            let mut index = Index::create_fresh(&dir.path().join("i.db"), Some(rollup)).unwrap();
            let tx = index.transaction().unwrap();
            // Runs every 5 h 17 min from late February to May (two summer-time changes, three
            // month ends), sessions of one to four runs, some a week long.
            let start = t("2025-02-20T00:00:00Z");
            let mut at = start;
            for i in 0..160u64 {
                let turns = (0..(i % 4) + 1)
                    .map(|k| {
                        at += chrono::Duration::minutes(
                            317 + 1440 * (i as i64 % 5 == 0) as i64 * k as i64,
                        );
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
                let mut s = session(&format!("s{i:04}"), backends[(i % 3) as usize], turns);
                if i % 5 == 0 {
                    s.status = Status::Error;
                }
                tx.upsert(&s, Default::default()).unwrap();
            }
            tx.commit().unwrap();
            assert!(at > t("2025-05-02T00:00:00Z"), "{at}");
            let (day, week, month) = (
                Dimension::Period(Granularity::Day),
                Dimension::Period(Granularity::Week),
                Dimension::Period(Granularity::Month),
            );
            for zone in [
                "UTC",
                "America/New_York",
                "+05:30",
                "Pacific/Kiritimati",
                "-11:00",
                "Europe/London",
            ] {
                let zone = Zone::parse(zone).unwrap();
                for dims in [
                    vec![month],
                    vec![month, Dimension::Backend],
                    vec![Dimension::Model, week],
                    vec![month, Dimension::Status, Dimension::Model],
                    vec![day],
                    vec![day, Dimension::Model],
                ] {
                    for (backend, status) in [
                        (None, None),
                        (Some(Backend::Codex), None),
                        (None, Some(Status::Error)),
                    ] {
                        let mut q = query(&dims, &zone);
                        q.filter.backend = backend;
                        q.filter.status = status;
                        let slow = index.stats_scanning_runs(&q).unwrap();
                        let fast = stats(&index.conn, &q, Some(&rollup)).unwrap();
                        let what = format!("{rollup:?} {zone:?} {dims:?} {backend:?} {status:?}");
                        assert!(!slow.groups.is_empty(), "{what}");
                        assert_eq!(fast.groups, slow.groups, "{what}");
                        assert_eq!(fast.totals, slow.totals, "{what}");
                        // Months and weeks five hours apart: a few hours of a few days are read
                        // run by run.
                        let (utc, ny) = (Zone::UTC, Zone::parse("America/New_York").unwrap());
                        if (rollup, zone) == (utc, ny) && !dims.contains(&day) {
                            assert!(fast.shifted_rollup, "{what}");
                        }
                    }
                }
            }
        }
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
            // Sessions with no tag, one, or two; in one of three directories.
            s.tags = [vec![], vec!["a".to_string()], vec!["a".into(), "b".into()]]
                [(i % 3) as usize]
                .clone();
            s.workdir = format!("/w{}", i % 4);
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
            let month = Dimension::Period(Granularity::Month);
            for (dims, tag, workdir) in [
                (vec![], None, None),
                (vec![month, Dimension::Backend], None, None),
                (
                    vec![Dimension::Period(Granularity::Week), Dimension::Model],
                    None,
                    None,
                ),
                (
                    vec![Dimension::Period(Granularity::Day), Dimension::Status],
                    None,
                    None,
                ),
                (vec![Dimension::Model, Dimension::Backend], None, None),
                // The keyed rollup: by tag, by directory, by month, or filtered by one key.
                (vec![Dimension::Tag], None, None),
                (vec![month, Dimension::Tag, Dimension::Model], None, None),
                (vec![Dimension::Workdir, Dimension::Backend], None, None),
                (vec![month, Dimension::Project], None, None),
                (vec![month], Some("b"), None),
                (vec![Dimension::Model], None, Some("/w1")),
                (vec![Dimension::Workdir], None, Some("/w2")),
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
                    q.filter.tags = tag.into_iter().map(String::from).collect();
                    q.filter.workdir = workdir.map(String::from);
                    if let Some(m) = month {
                        // Exactly one month: whole periods for months, weeks (no) and days.
                        let first = chrono::NaiveDate::from_ymd_opt(2025, m, 1).unwrap();
                        q.runs.since = index_zone.start_of(first);
                        q.runs.until = index_zone.start_of(Granularity::Month.next(first));
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
        // A session's tags and directory change: it moves from one key to another.
        for (i, tags, workdir) in [
            (5, vec![], "/w9"),
            (6, vec!["b", "c"], "/w1"),
            (9, vec!["a"], "/w0"),
        ] {
            store
                .update(ids[i].as_str(), |s| {
                    s.tags = tags.iter().map(|t| t.to_string()).collect();
                    s.workdir = workdir.into();
                    Ok((true, ()))
                })
                .unwrap();
        }
        store
            .delete(&[ids[4].to_string(), ids[7].to_string()], false)
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
                "the usage by tag, directory or session differs from the runs it sums",
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
        budget.runs.since = ktm.start_of(first);
        budget.runs.until = ktm.start_of(month.next(first));
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
