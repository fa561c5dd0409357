//! `clinvk sessions stats`: flags to a typed usage query, the store's sums priced, a budget
//! checked, and the answer as a table or one JSON object.

use std::str::FromStr;

use chrono::{DateTime, SecondsFormat, Utc};
use clap::Args;
use serde_json::{json, Map, Value};
use tabled::builder::Builder;
use tabled::settings::object::Columns;
use tabled::settings::{Alignment, Padding, Style};

use crate::cli::args::{parse_arg, SessionFilterArgs, TimeRangeArgs};
use crate::cli::output::{self, print, print_json, warn_invalid};
use crate::cli::render::thousands;
use crate::cli::Context;
use crate::config::Settings;
use crate::error::{exit, Error, Result};
use crate::store::pages_of_sessions;
use crate::store::{CurrentBlock, Dimension, Filter, StatsGroup, StatsQuery, TimeRange};
use crate::timespec::{Granularity, Zone};
use crate::usage::blocks::{hours_minutes, BlockUse};
use crate::usage::pricing::PriceTable;
use crate::usage::{BudgetLine, BudgetStatus, Cost, Figures, Period, PeriodKind, Pricer};

/// `sessions stats`: which runs to count, how to group them, and an optional budget.
#[derive(Debug, Args)]
#[command(
    after_help = "Runs are counted when they happened, so a session continued next month counts in both months.\n\
    Cost: reported by the backend where it gives one (claude), else estimated from list prices (`pricing:` in config.yaml adds or overrides models).\n\
    Budget exit codes: 0 under 80 %, 10 at 80 % or more (warning), 11 at 100 % or more (exceeded)."
,
    mut_arg("since", |a| a.help("Runs at or after: YYYY-MM-DD, YYYYMMDD, RFC 3339, or an age like 24h, 7d")),
    mut_arg("until", |a| a.help("Runs before the end of: YYYY-MM-DD, YYYYMMDD, RFC 3339, or an age like 7d")))]
pub struct StatsArgs {
    /// Group by backend, model, status, tag, workdir, project (the directory, by its name),
    /// session, host (the machine), day, week, month or block (5-hour usage blocks) (repeat, or
    /// comma-separate, e.g. --by month,backend)
    #[arg(long = "by", value_name = "DIM", value_delimiter = ',', value_parser = parse_arg::<GroupBy>)]
    pub by: Vec<GroupBy>,
    #[command(flatten)]
    pub select: SessionFilterArgs,
    #[command(flatten)]
    pub runs: TimeRangeArgs,
    /// Count days, weeks (Monday to Sunday) and months in UTC
    #[arg(long, conflicts_with = "timezone")]
    pub utc: bool,
    /// Count days, weeks and months in this zone: an IANA name (Europe/Paris), UTC, or +05:30
    /// [default: the local zone]
    #[arg(long, value_name = "TZ", allow_hyphen_values = true)]
    pub timezone: Option<String>,
    /// Check a token budget over the current --period (1000000, 500k, 2M)
    #[arg(long, value_name = "TOKENS", value_parser = parse_tokens, allow_hyphen_values = true)]
    pub budget: Option<u64>,
    /// Check a cost budget in US dollars over the current --period
    #[arg(long, value_name = "USD", value_parser = parse_usd, allow_hyphen_values = true)]
    pub budget_usd: Option<f64>,
    /// The budget period: day, week, month, or block (the 5-hour block under way) [default:
    /// month]. Limits not given as flags come from session.token_budget and
    /// session.cost_budget_usd; --period alone checks those
    #[arg(long, value_name = "PERIOD", value_parser = parse_arg::<PeriodArg>)]
    pub period: Option<PeriodArg>,
    /// Show only the N groups that used the most tokens (with --by; the totals still count
    /// everything), e.g. --by session -n 20
    #[arg(long, short = 'n', value_name = "N", requires = "by")]
    pub limit: Option<u64>,
    /// Print one JSON object (schema_version 1) instead of the table
    #[arg(long)]
    pub json: bool,
}

/// Bumped only when a field changes meaning or disappears; new fields may be added.
pub const SCHEMA_VERSION: u32 = 1;

/// A `--by` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupBy(pub Dimension);

impl FromStr for GroupBy {
    type Err = Error;
    fn from_str(text: &str) -> Result<Self> {
        let dim = match text.trim() {
            "backend" => Dimension::Backend,
            "model" => Dimension::Model,
            "status" => Dimension::Status,
            "tag" => Dimension::Tag,
            "workdir" => Dimension::Workdir,
            "project" => Dimension::Project,
            "session" => Dimension::Session,
            "host" => Dimension::Host,
            "day" => Dimension::Period(Granularity::Day),
            "week" => Dimension::Period(Granularity::Week),
            "month" => Dimension::Period(Granularity::Month),
            "block" => Dimension::Block,
            other => {
                return Err(Error::usage(format!(
                    "cannot group by '{}': use backend, model, status, tag, workdir, project, session, host, day, week, month or block",
                    other.escape_debug()
                )))
            }
        };
        Ok(GroupBy(dim))
    }
}

/// A `--period` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeriodArg(pub PeriodKind);

impl FromStr for PeriodArg {
    type Err = Error;
    fn from_str(text: &str) -> Result<Self> {
        let calendar = |g| Ok(PeriodArg(PeriodKind::Calendar(g)));
        match text.trim() {
            "day" => calendar(Granularity::Day),
            "week" => calendar(Granularity::Week),
            "month" => calendar(Granularity::Month),
            "block" => Ok(PeriodArg(PeriodKind::Block)),
            other => Err(Error::usage(format!(
                "unknown budget period '{}': use day, week, month or block",
                other.escape_debug()
            ))),
        }
    }
}

/// A token count: `1000000`, `1_000_000`, `500k`, `2M`, `1.5M`; above 0.
pub fn parse_tokens(text: &str) -> std::result::Result<u64, String> {
    let bad = || {
        format!(
            "'{}' is not a number of tokens: use e.g. 1000000, 500k or 2M",
            text.escape_debug()
        )
    };
    let t = text.trim().replace('_', "");
    let (digits, scale) = match t.char_indices().last() {
        Some((i, 'k' | 'K')) => (&t[..i], 1e3),
        Some((i, 'm' | 'M')) => (&t[..i], 1e6),
        Some((i, 'g' | 'G' | 'b' | 'B')) => (&t[..i], 1e9),
        _ => (t.as_str(), 1.0),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Err(bad());
    }
    let n = digits.parse::<f64>().map_err(|_| bad())? * scale;
    if !(1.0..1e18).contains(&n) || n.fract() != 0.0 {
        return Err(bad());
    }
    Ok(n as u64)
}

/// An amount of US dollars above 0: `50`, `12.5`, `$50`.
pub fn parse_usd(text: &str) -> std::result::Result<f64, String> {
    let t = text.trim();
    t.strip_prefix('$')
        .unwrap_or(t)
        .parse::<f64>()
        .ok()
        .filter(|x| x.is_finite() && *x > 0.0)
        .ok_or_else(|| {
            format!(
                "'{}' is not an amount of US dollars: use e.g. 50 or 12.5",
                t.escape_debug()
            )
        })
}

/// The budget a run checks: its limits and the current period.
pub struct BudgetCheck {
    tokens: Option<u64>,
    usd: Option<f64>,
    period: Period,
}

fn budget_check(
    args: &StatsArgs,
    settings: &Settings,
    zone: &Zone,
    now: DateTime<Utc>,
) -> Result<Option<BudgetCheck>> {
    if args.budget.is_none() && args.budget_usd.is_none() && args.period.is_none() {
        return Ok(None);
    }
    if args.runs.is_given() {
        return Err(Error::usage(
            "a budget covers the current --period (day, week, month or block): drop --since/--until",
        ));
    }
    // Each limit not given as a flag comes from config: adding `--budget` in a script must not
    // drop the cost budget set there.
    let tokens = args.budget.or(settings.token_budget);
    let usd = args.budget_usd.or(settings.cost_budget_usd);
    let checked = BudgetCheck::over(tokens, usd, args.period.map(|p| p.0), zone, now)?;
    if checked.is_none() {
        return Err(Error::usage(
            "no budget to check: pass --budget TOKENS or --budget-usd USD, or set \
             session.token_budget or session.cost_budget_usd (`clinvk config set session.token_budget 1000000`)",
        ));
    }
    Ok(checked)
}

impl BudgetCheck {
    /// The limits given (None without any) over the current period of `kind` (default: the
    /// month). A block's is the store's to say: `with_block` sets it.
    pub fn over(
        tokens: Option<u64>,
        usd: Option<f64>,
        kind: Option<PeriodKind>,
        zone: &Zone,
        now: DateTime<Utc>,
    ) -> Result<Option<BudgetCheck>> {
        if tokens.is_none() && usd.is_none() {
            return Ok(None);
        }
        let period = match kind.unwrap_or(PeriodKind::Calendar(Granularity::Month)) {
            PeriodKind::Calendar(g) => Period::current(g, zone, now).ok_or_else(|| {
                Error::usage("the current period is outside the supported range of dates")
            })?,
            PeriodKind::Block => Period::block(None, now),
        };
        Ok(Some(BudgetCheck {
            tokens,
            usd,
            period,
        }))
    }

    pub fn period(&self) -> &Period {
        &self.period
    }

    /// A block budget's period: the block under way (`block`, from the store), or an empty one
    /// at `now`; and when its runs can be.
    pub fn with_block(&mut self, block: Option<CurrentBlock>, now: DateTime<Utc>) -> TimeRange {
        self.period = Period::block(block.map(|b| (b.start, b.end())), now);
        match block {
            Some(block) => block.runs(),
            None => TimeRange {
                since: Some(now),
                until: Some(now),
            },
        }
    }

    /// Each limit against the usage `totals` of the period.
    pub fn lines(&self, totals: &Figures, now: DateTime<Utc>) -> Vec<(Unit, BudgetLine)> {
        let mut lines = Vec::new();
        if let Some(limit) = self.tokens {
            lines.push((
                Unit::Tokens,
                BudgetLine::new(limit as f64, totals.sums.total as f64, &self.period, now),
            ));
        }
        if let Some(limit) = self.usd {
            lines.push((
                Unit::Usd,
                BudgetLine::new(limit, totals.cost.known_usd(), &self.period, now),
            ));
        }
        lines
    }
}

impl StatsArgs {
    fn zone(&self) -> Result<Zone> {
        Ok(match (&self.timezone, self.utc) {
            (_, true) => Zone::UTC,
            (Some(name), false) => Zone::parse(name)?,
            (None, false) => Zone::local(),
        })
    }

    /// The dimensions, each once, with at most one period.
    fn dimensions(&self) -> Result<Vec<Dimension>> {
        let mut dims: Vec<Dimension> = Vec::new();
        for GroupBy(d) in &self.by {
            if !dims.contains(d) {
                dims.push(*d);
            }
        }
        let periods: Vec<&str> = dims
            .iter()
            .filter(|d| d.is_time())
            .map(|d| d.name())
            .collect();
        if periods.len() > 1 {
            return Err(Error::usage(format!(
                "group by one period at a time, not {}",
                periods.join(" and ")
            )));
        }
        if dims.contains(&Dimension::Block) {
            if let Some(other) = dims.iter().find(|d| {
                matches!(
                    d,
                    Dimension::Tag
                        | Dimension::Workdir
                        | Dimension::Project
                        | Dimension::Session
                        | Dimension::Host
                )
            }) {
                return Err(Error::usage(format!(
                    "blocks are cut from all the runs selected: group them by backend, model or \
                     status, not {} (select with --tag, --workdir or --backend instead)",
                    other.name()
                )));
            }
        }
        Ok(dims)
    }

    fn selection(&self, now: DateTime<Utc>, zone: &Zone) -> Result<(Filter, TimeRange)> {
        Ok((self.select.to_filter()?, self.runs.to_range(now, zone)?))
    }
}

/// A priced row of the report.
struct Row {
    key: Vec<String>,
    figures: Figures,
    /// With `--by block`: the block's times, rate and projection.
    block: Option<BlockUse>,
}

/// The question the flags ask, with the budget it checks: everything the flags and config say,
/// checked before the store is opened.
pub fn plan(
    args: &StatsArgs,
    settings: &Settings,
    now: DateTime<Utc>,
) -> Result<(StatsQuery, Option<BudgetCheck>)> {
    let zone = args.zone()?;
    let group_by = args.dimensions()?;
    let budget = budget_check(args, settings, &zone, now)?;
    let (filter, mut runs) = args.selection(now, &zone)?;
    if let Some(b) = &budget {
        runs = TimeRange {
            since: Some(b.period.start),
            until: Some(b.period.end),
        };
    }
    let query = StatsQuery {
        filter,
        runs,
        group_by,
        zone,
        top: args.limit,
        // The local zone is where the user lives: keep the rollup there.
        adopt_zone_at: (args.timezone.is_none() && !args.utc).then_some(now),
    };
    Ok((query, budget))
}

pub fn run(ctx: &Context, args: &StatsArgs, now: DateTime<Utc>) -> Result<i32> {
    let settings = ctx.settings()?;
    let (mut query, mut budget) = plan(args, &settings, now)?;
    let dims = query.group_by.clone();
    let store = ctx.store()?;
    if let Some(b) = budget
        .as_mut()
        .filter(|b| b.period.kind == PeriodKind::Block)
    {
        query.runs = b.with_block(store.current_block(&query.filter, now)?, now);
    }
    let prices = PriceTable::embedded().with_overrides(settings.pricing.iter().cloned());
    if args.json && budget.is_none() && pages_of_sessions(&query) {
        return stream_sessions(&store, &query, &prices, &ctx.paths.config);
    }
    let (result, invalid) = store.stats(&query)?;
    warn_invalid(&invalid);

    // The totals' pricer names the unpriced models (each once); the rows' would repeat them.
    let mut pricer = Pricer::new(&prices);
    let totals = Figures::of(&result.totals, &mut pricer);
    let mut row_pricer = Pricer::new(&prices);
    let mut rows: Vec<Row> = if dims.is_empty() {
        Vec::new()
    } else {
        result
            .groups
            .iter()
            .map(|g| {
                let figures = Figures::of(g, &mut row_pricer);
                let block = block_of(&dims, g, &figures, now);
                Row {
                    key: g.key.clone(),
                    figures,
                    block,
                }
            })
            .collect()
    };
    if !dims.iter().any(|d| d.is_time()) {
        // Without periods, the biggest first.
        rows.sort_by_key(|r| std::cmp::Reverse(r.figures.sums.total));
    }
    warn_unpriced(&pricer, &ctx.paths.config);
    let lines = budget.as_ref().map(|b| b.lines(&totals, now));
    let status = lines
        .iter()
        .flatten()
        .map(|(_, l)| l.status)
        .max()
        .unwrap_or(BudgetStatus::Ok);

    if args.json {
        print_json(&report_json(
            &query,
            &rows,
            &totals,
            &pricer,
            budget.as_ref().zip(lines.as_deref()),
            status,
        ))?;
    } else {
        let mut text = String::new();
        if rows.is_empty() && totals.sums.runs == 0 && totals.sessions == 0 {
            output::message("No runs found.");
        } else {
            text.push_str(&table(&dims, &rows, &totals, &query.zone));
            text.push_str(&legend(&rows, &totals));
            text.push_str(&active_block_text(&rows, &query.zone, now));
        }
        if let (Some(b), Some(lines)) = (&budget, &lines) {
            text.push_str(&budget_text(b, lines, &query.zone, now));
            if b.usd.is_some() && totals.cost.unpriced_tokens > 0 {
                text.push_str(
                    "  (the cost leaves out models with no known price: see the warnings)\n",
                );
            }
        }
        print(&text)?;
    }
    Ok(match status {
        BudgetStatus::Ok => exit::OK,
        BudgetStatus::Warning => exit::BUDGET_WARNING,
        BudgetStatus::Exceeded => exit::BUDGET_EXCEEDED,
    })
}

/// A block's times, rate and projection, for a row of `--by block`.
fn block_of(
    dims: &[Dimension],
    g: &StatsGroup,
    f: &Figures,
    now: DateTime<Utc>,
) -> Option<BlockUse> {
    let at = dims.iter().position(|d| *d == Dimension::Block)?;
    let start: DateTime<Utc> = g.key[at].parse().ok()?;
    Some(BlockUse::new(
        start,
        g.span?,
        f.sums.total,
        f.cost.known_usd(),
        now,
    ))
}

/// Sessions read and written at a time by `stream_sessions`.
const SESSION_PAGE: u64 = 2000;

/// `--by session --json` over all time: the rows written as they are read, a page of sessions
/// at a time (the biggest first, walked in the order of their totals), each page read under the
/// shared lock and written without it; then the totals. The output is byte for byte what the
/// collected report prints.
fn stream_sessions(
    store: &crate::store::Store,
    query: &StatsQuery,
    prices: &PriceTable,
    config: &std::path::Path,
) -> Result<i32> {
    use std::io::Write;
    let stdout_err = |e: std::io::Error| Error::io("<stdout>", e);
    let mut out = std::io::BufWriter::with_capacity(64 << 10, std::io::stdout().lock());
    // The report around its rows, as `print_json` writes it: split where its (empty) rows go.
    let around = |totals: &Figures, pricer: &Pricer<'_>| -> (String, String) {
        let text = serde_json::to_string_pretty(&report_json(
            query,
            &[],
            totals,
            pricer,
            None,
            BudgetStatus::Ok,
        ))
        .expect("a report serializes");
        let (head, tail) = text
            .split_once("\"rows\": []")
            .expect("the report has rows");
        (format!("{head}\"rows\": "), format!("{tail}\n"))
    };
    let (head, _) = around(&Figures::default(), &Pricer::new(prices));
    out.write_all(head.as_bytes()).map_err(stdout_err)?;
    let mut row_pricer = Pricer::new(prices);
    let mut rows = 0u64;
    let mut after: Option<(u64, String)> = None;
    loop {
        let page = store.session_page(
            query,
            after.as_ref().map(|(t, id)| (*t, id.as_str())),
            SESSION_PAGE,
        )?;
        for g in &page.groups {
            let row = Row {
                key: g.key.clone(),
                figures: Figures::of(g, &mut row_pricer),
                block: None,
            };
            out.write_all(if rows == 0 { b"[\n    " } else { b",\n    " })
                .map_err(stdout_err)?;
            // Each row as `print_json` lays it out inside the report's "rows".
            crate::cli::output::write_pretty_in(&mut out, &row_json(query, &row), 2)
                .map_err(|e| stdout_err(e.into()))?;
            rows += 1;
        }
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    out.write_all(if rows == 0 { b"[]" } else { b"\n  ]" })
        .map_err(stdout_err)?;
    let whole = StatsQuery {
        group_by: Vec::new(),
        ..query.clone()
    };
    let (result, invalid) = store.stats(&whole)?;
    warn_invalid(&invalid);
    let mut pricer = Pricer::new(prices);
    let totals = Figures::of(&result.totals, &mut pricer);
    warn_unpriced(&pricer, config);
    let (_, tail) = around(&totals, &pricer);
    out.write_all(tail.as_bytes())
        .and_then(|()| out.flush())
        .map_err(stdout_err)?;
    Ok(exit::OK)
}

/// One warning per model whose runs' cost is left out.
fn warn_unpriced(pricer: &Pricer<'_>, config: &std::path::Path) {
    for (model, tokens) in &pricer.unpriced {
        output::warning(&if model.is_empty() {
            format!(
                "{} tokens come from runs with no recorded model (codex reports none unless run with -m): their cost is left out",
                thousands(*tokens)
            )
        } else {
            format!(
                "no price for model '{model}' ({} tokens): its cost is left out; add it under `pricing:` in {}",
                thousands(*tokens),
                config.display()
            )
        });
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Unit {
    Tokens,
    Usd,
}

// ----- human output --------------------------------------------------------------------------

/// `$1,369.06`; below a cent, `$0.0012`.
pub fn usd(x: f64) -> String {
    if x > 0.0 && x < 0.01 {
        format!("${x:.4}")
    } else {
        let cents = (x * 100.0).round() as u64;
        format!("${}.{:02}", thousands(cents / 100), cents % 100)
    }
}

/// `$1.23` all reported, `~$1.23` partly estimated, `>$1.23` part unknown, `?` all unknown.
fn cost_cell(c: &Cost) -> String {
    if c.unpriced_tokens > 0 {
        if c.known_usd() > 0.0 {
            format!(">{}", usd(c.known_usd()))
        } else {
            "?".into()
        }
    } else if c.estimated_usd > 0.0 {
        format!("~{}", usd(c.known_usd()))
    } else {
        usd(c.known_usd())
    }
}

const BAR_WIDTH: usize = 24;

/// A horizontal bar of `value / max`, in eighths of a character.
fn bar(value: u64, max: u64) -> String {
    if max == 0 {
        return String::new();
    }
    let eighths = (value as f64 / max as f64 * (BAR_WIDTH * 8) as f64).round() as usize;
    // Some usage always shows.
    let eighths = if value > 0 { eighths.max(1) } else { 0 };
    let mut out = "█".repeat(eighths / 8);
    if eighths % 8 > 0 {
        out.push(['▏', '▎', '▍', '▌', '▋', '▊', '▉'][eighths % 8 - 1]);
    }
    out
}

/// A project's name: the last component of its directory.
fn project_name(dir: &str) -> &str {
    dir.trim_end_matches('/')
        .rsplit('/')
        .next()
        .filter(|n| !n.is_empty())
        .unwrap_or(dir)
}

fn key_cell(dim: Dimension, value: &str) -> String {
    match (dim, value) {
        (Dimension::Model, "") => "(unknown)".into(),
        (Dimension::Tag, "") => "(untagged)".into(),
        (Dimension::Host, "") => "(unknown)".into(),
        (Dimension::Workdir | Dimension::Project, "") => "-".into(),
        (Dimension::Project, dir) => output::escape_controls(project_name(dir)),
        // Models, tags and directories come from session files: no terminal escapes.
        _ => output::escape_controls(value),
    }
}

fn table(dims: &[Dimension], rows: &[Row], totals: &Figures, zone: &Zone) -> String {
    let has_period = dims.iter().any(|d| d.is_time());
    let mut builder = Builder::default();
    let mut header: Vec<String> = dims.iter().map(|d| d.name().to_uppercase()).collect();
    header.extend(
        [
            "SESSIONS", "RUNS", "INPUT", "OUTPUT", "CACHED", "TOTAL", "COST",
        ]
        .map(String::from),
    );
    builder.push_record(header);
    let figures = |f: &Figures| {
        vec![
            thousands(f.sessions),
            thousands(f.sums.runs),
            thousands(f.sums.tokens.input),
            thousands(f.sums.tokens.output),
            thousands(f.sums.tokens.cached),
            thousands(f.sums.total),
            cost_cell(&f.cost),
        ]
    };
    let max = rows.iter().map(|r| r.figures.sums.total).max().unwrap_or(0);
    for row in rows {
        let mut record: Vec<String> = dims
            .iter()
            .zip(&row.key)
            .map(|(d, v)| match (d, &row.block) {
                (Dimension::Block, Some(b)) => block_cell(b, zone),
                _ => key_cell(*d, v),
            })
            .collect();
        record.extend(figures(&row.figures));
        if has_period {
            record.push(bar(row.figures.sums.total, max));
        }
        builder.push_record(record);
    }
    if !dims.is_empty() {
        let mut record = vec![String::new(); dims.len()];
        record[0] = "TOTAL".into();
        record.extend(figures(totals));
        builder.push_record(record);
    } else {
        // No groups: the totals are the only row.
        builder.push_record(figures(totals));
    }
    let mut table = builder.build();
    let n = dims.len();
    table
        .with(Style::blank())
        .with(Padding::new(0, 1, 0, 0))
        .modify(Columns::new(n..n + 7), Alignment::right());
    let mut out = String::new();
    for line in table.to_string().lines() {
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// A block by its start in `zone`, `2026-12-01 10:00`, marked when under way.
fn block_cell(b: &BlockUse, zone: &Zone) -> String {
    let start = zone.local_time(b.start).format("%Y-%m-%d %H:%M");
    if b.active {
        format!("{start} (active)")
    } else {
        start.to_string()
    }
}

/// The block under way, if the rows hold it: time left, burn rate and projection, of the whole
/// block (its rows added up, when it is split by backend, model or status).
fn active_block_text(rows: &[Row], zone: &Zone, now: DateTime<Utc>) -> String {
    let active: Vec<(&BlockUse, &Figures)> = rows
        .iter()
        .filter_map(|r| {
            r.block
                .as_ref()
                .filter(|b| b.active)
                .map(|b| (b, &r.figures))
        })
        .collect();
    let Some((first, _)) = active.first() else {
        return String::new();
    };
    let ms = |t: DateTime<Utc>| t.timestamp_millis();
    let span = active
        .iter()
        .fold((i64::MAX, i64::MIN), |(lo, hi), (b, _)| {
            (lo.min(ms(b.first_run)), hi.max(ms(b.last_run)))
        });
    let tokens = active.iter().map(|(_, f)| f.sums.total).sum();
    let cost = active.iter().map(|(_, f)| f.cost.known_usd()).sum();
    let b = &BlockUse::new(first.start, span, tokens, cost, now);
    let hm = |t: DateTime<Utc>| zone.local_time(t).format("%H:%M").to_string();
    let mut out = format!(
        "\nActive block {}-{} ({}): {} left",
        hm(b.start),
        hm(b.end),
        zone.name(),
        hours_minutes(b.end - now)
    );
    if let (Some(burn), Some(p)) = (b.burn, b.projection) {
        out.push_str(&format!(
            "; burn rate {} tokens/min, {}/h; projected {} tokens, {} by {}",
            thousands(burn.tokens_per_minute.round() as u64),
            usd(burn.usd_per_hour),
            thousands(p.tokens),
            usd(p.usd),
            hm(b.end)
        ));
    }
    out.push('\n');
    out
}

fn legend(rows: &[Row], totals: &Figures) -> String {
    let all = rows.iter().map(|r| &r.figures.cost).chain([&totals.cost]);
    let (mut estimated, mut unknown, mut reported) = (false, false, false);
    for c in all {
        estimated |= c.estimated_usd > 0.0;
        unknown |= c.unpriced_tokens > 0;
        reported |= c.reported_usd > 0.0;
    }
    let mut parts = Vec::new();
    if reported {
        parts.push("$ as reported by the backend".to_string());
    }
    if estimated {
        parts.push(format!(
            "~ partly estimated from list prices (checked {})",
            PriceTable::CHECKED
        ));
    }
    if unknown {
        parts.push("> or ? leaves out models with no known price".to_string());
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("\nCost: {}.\n", parts.join("; "))
    }
}

fn budget_text(
    b: &BudgetCheck,
    lines: &[(Unit, BudgetLine)],
    zone: &Zone,
    now: DateTime<Utc>,
) -> String {
    let mut out = match b.period.kind {
        PeriodKind::Block if b.period.start == b.period.end => {
            "\nBudget for the 5-hour block: none under way (the next run starts one)\n".to_string()
        }
        PeriodKind::Block => {
            let hm = |t: DateTime<Utc>| zone.local_time(t).format("%Y-%m-%d %H:%M").to_string();
            format!(
                "\nBudget for the block {} ({}), through {}: {} left\n",
                hm(b.period.start),
                zone.name(),
                zone.local_time(b.period.end).format("%H:%M"),
                hours_minutes(b.period.end - now)
            )
        }
        PeriodKind::Calendar(_) => {
            let last_day = zone.date_of(b.period.end - chrono::Duration::milliseconds(1));
            let days_left = (b.period.end - now).num_hours().max(0) as f64 / 24.0;
            format!(
                "\nBudget for {} {} ({}), through {}: {:.1} days left\n",
                b.period.kind.as_str(),
                b.period.label,
                zone.name(),
                last_day,
                days_left
            )
        }
    };
    let mut builder = Builder::default();
    for (unit, l) in lines {
        let amount = |x: f64| match unit {
            Unit::Tokens => thousands(x.round() as u64),
            Unit::Usd => usd(x),
        };
        builder.push_record([
            match unit {
                Unit::Tokens => "tokens".to_string(),
                Unit::Usd => "cost".to_string(),
            },
            format!("{} of {}", amount(l.used), amount(l.limit)),
            format!("{:.1}%", l.percent),
            format!("remaining {}", amount(l.remaining)),
            format!("projected {}", amount(l.projected)),
            l.status.as_str().to_uppercase(),
        ]);
    }
    let mut table = builder.build();
    table.with(Style::blank()).with(Padding::new(2, 1, 0, 0));
    for line in table.to_string().lines() {
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

// ----- JSON ----------------------------------------------------------------------------------

fn round6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

fn figures_json(f: &Figures) -> Map<String, Value> {
    let s = &f.sums;
    let mut m = Map::new();
    m.insert("sessions".into(), json!(f.sessions));
    m.insert("runs".into(), json!(s.runs));
    m.insert("input".into(), json!(s.tokens.input));
    m.insert("output".into(), json!(s.tokens.output));
    m.insert("cached".into(), json!(s.tokens.cached));
    m.insert("cache_write".into(), json!(s.tokens.cache_write));
    m.insert("reasoning".into(), json!(s.tokens.reasoning));
    m.insert("total".into(), json!(s.total));
    m.insert("cost_usd".into(), json!(f.cost.total_usd().map(round6)));
    m.insert(
        "reported_cost_usd".into(),
        json!(round6(f.cost.reported_usd)),
    );
    m.insert(
        "estimated_cost_usd".into(),
        json!(round6(f.cost.estimated_usd)),
    );
    m.insert("unpriced_tokens".into(), json!(f.cost.unpriced_tokens));
    m
}

/// One row of the report: its group values under the dimensions' names, then its figures.
fn row_json(q: &StatsQuery, r: &Row) -> Value {
    let mut m = Map::new();
    for (d, v) in q.group_by.iter().zip(&r.key) {
        // A project is named by its directory's name; its directory goes along.
        if *d == Dimension::Project {
            m.insert("project".into(), json!(project_name(v)));
            m.insert("workdir".into(), json!(v));
            continue;
        }
        let empty_is_null = matches!(d, Dimension::Model | Dimension::Tag | Dimension::Host);
        m.insert(
            d.name().into(),
            if v.is_empty() && empty_is_null {
                Value::Null
            } else {
                json!(v)
            },
        );
    }
    m.extend(figures_json(&r.figures));
    if let Some(b) = &r.block {
        m.extend(block_json(b));
    }
    Value::Object(m)
}

/// A block's times, and for the one under way its burn rate and projection (ccusage's).
fn block_json(b: &BlockUse) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("block_end".into(), time_json(Some(b.end)));
    m.insert("first_run_at".into(), time_json(Some(b.first_run)));
    m.insert("last_run_at".into(), time_json(Some(b.last_run)));
    m.insert("active".into(), json!(b.active));
    m.insert(
        "burn_rate".into(),
        json!(b.burn.map(|r| json!({
            "tokens_per_minute": (r.tokens_per_minute * 10.0).round() / 10.0,
            "cost_usd_per_hour": round6(r.usd_per_hour),
        }))),
    );
    m.insert(
        "projection".into(),
        json!(b.projection.map(|p| json!({
            "total": p.tokens,
            "cost_usd": round6(p.usd),
            "minutes_left": p.minutes_left,
        }))),
    );
    m
}

fn time_json(t: Option<DateTime<Utc>>) -> Value {
    json!(t.map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true)))
}

fn report_json(
    q: &StatsQuery,
    rows: &[Row],
    totals: &Figures,
    pricer: &Pricer<'_>,
    budget: Option<(&BudgetCheck, &[(Unit, BudgetLine)])>,
    status: BudgetStatus,
) -> Value {
    let rows: Vec<Value> = rows.iter().map(|r| row_json(q, r)).collect();
    let budget = budget.map(|(b, lines)| {
        let mut m = Map::new();
        m.insert("period".into(), json!(b.period.kind.as_str()));
        m.insert("label".into(), json!(b.period.label));
        m.insert("start".into(), time_json(Some(b.period.start)));
        m.insert("end".into(), time_json(Some(b.period.end)));
        m.insert("status".into(), json!(status.as_str()));
        for (unit, l) in lines {
            let (name, round): (&str, fn(f64) -> Value) = match unit {
                Unit::Tokens => ("tokens", |x| json!(x.round() as u64)),
                Unit::Usd => ("cost_usd", |x| json!(round6(x))),
            };
            let mut line = json!({
                "limit": round(l.limit),
                "used": round(l.used),
                "remaining": round(l.remaining),
                "percent": (l.percent * 10.0).round() / 10.0,
                "projected": round(l.projected),
                "status": l.status.as_str(),
            });
            if *unit == Unit::Usd {
                // False when models without a price are left out: `used` is then a lower bound.
                line["complete"] = json!(totals.cost.unpriced_tokens == 0);
            }
            m.insert(name.into(), line);
        }
        Value::Object(m)
    });
    json!({
        "schema_version": SCHEMA_VERSION,
        "timezone": q.zone.name(),
        "since": time_json(q.runs.since),
        "until": time_json(q.runs.until),
        "group_by": q.group_by.iter().map(|d| d.name()).collect::<Vec<_>>(),
        "rows": rows,
        "totals": Value::Object(figures_json(totals)),
        "unpriced_models": pricer.unpriced.keys().map(|m| if m.is_empty() { Value::Null } else { json!(m) }).collect::<Vec<_>>(),
        "budget": budget,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_counts() {
        assert_eq!(parse_tokens("1000000"), Ok(1_000_000));
        assert_eq!(parse_tokens("1_000_000"), Ok(1_000_000));
        assert_eq!(parse_tokens("500k"), Ok(500_000));
        assert_eq!(parse_tokens("1.5M"), Ok(1_500_000));
        for bad in ["", "0", "-5", "1.5", "ten", "5x", "1e6", "k"] {
            assert!(parse_tokens(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn dollars() {
        assert_eq!(parse_usd("50"), Ok(50.0));
        assert_eq!(parse_usd("$12.5"), Ok(12.5));
        for bad in ["0", "-1", "NaN", "inf", "fifty", ""] {
            assert!(parse_usd(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cost_cells_say_where_the_figure_comes_from() {
        let c = |r: f64, e: f64, u: u64| Cost {
            reported_usd: r,
            estimated_usd: e,
            unpriced_tokens: u,
        };
        assert_eq!(cost_cell(&c(1.5, 0.0, 0)), "$1.50");
        assert_eq!(cost_cell(&c(1.5, 1.0, 0)), "~$2.50");
        assert_eq!(cost_cell(&c(1.5, 0.0, 10)), ">$1.50");
        assert_eq!(cost_cell(&c(0.0, 0.0, 10)), "?");
        assert_eq!(cost_cell(&c(0.0, 0.0, 0)), "$0.00");
        assert_eq!(cost_cell(&c(0.0012, 0.0, 0)), "$0.0012");
        assert_eq!(cost_cell(&c(1369.055, 0.0, 0)), "$1,369.06");
    }

    #[test]
    fn bars_scale_to_the_largest_row() {
        assert_eq!(bar(10, 10).chars().count(), BAR_WIDTH);
        assert_eq!(bar(5, 10).chars().count(), BAR_WIDTH / 2);
        assert_eq!(bar(0, 10), "");
        assert_eq!(bar(1, 1000), "▏");
    }
}
