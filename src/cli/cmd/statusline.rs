//! `clinvk statusline`: one short line for Claude Code's `statusLine` setting. Claude Code runs
//! it after each message with a JSON object on stdin (the session's id, its transcript's path,
//! the model, its own cost figures); clinvk catches up that one transcript and prints the
//! model, this session's tokens and cost, today's cost, the 5-hour block under way and, when
//! one is configured, the budget's state.
//!
//! It runs in someone's status bar: it never fails (a short marker and exit 0 instead), never
//! waits long for a lock, never prints a panic, and is colored unless NO_COLOR is set (Claude
//! Code renders the colors; its stdout is never a terminal).

use std::io::{IsTerminal, Read};
use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};
use clap::Args;
use serde::Deserialize;

use crate::cli::args::parse_arg;
use crate::cli::cmd::stats::{usd, BudgetCheck, PeriodArg};
use crate::cli::output::escape_controls;
use crate::cli::Context;
use crate::domain::Backend;
use crate::error::{exit, Result};
use crate::store::{Filter, Quiet, StatsQuery, Store, TimeRange};
use crate::timespec::{Granularity, Zone};
use crate::usage::blocks::hours_minutes;
use crate::usage::pricing::PriceTable;
use crate::usage::{BudgetStatus, Figures, Period, PeriodKind, Pricer};

#[derive(Debug, Args)]
#[command(after_help = "In ~/.claude/settings.json:\n  \
    \"statusLine\": {\"type\": \"command\", \"command\": \"clinvk statusline\"}\n\
    The budget shown is session.token_budget / session.cost_budget_usd from config.yaml.")]
pub struct StatuslineArgs {
    /// The period of the budget shown: day, week, month or block [default: month]
    #[arg(long, value_name = "PERIOD", value_parser = parse_arg::<PeriodArg>)]
    pub period: Option<PeriodArg>,
}

/// What Claude Code passes on stdin (only what is used; every field may be missing).
#[derive(Debug, Default, Deserialize)]
struct Input {
    session_id: Option<String>,
    transcript_path: Option<PathBuf>,
    model: Option<Model>,
}

#[derive(Debug, Default, Deserialize)]
struct Model {
    id: Option<String>,
    display_name: Option<String>,
}

/// What the status bar shows instead of an error (and its exit code): a marker and a few words.
pub fn marker(e: &crate::error::Error) -> String {
    match e {
        // The first command, or the next, builds it: not the status bar's to wait for.
        crate::error::Error::NotReady { .. } => {
            "clinvk ⚠ index not ready: run `clinvk sessions list`".to_string()
        }
        e => {
            let why: String = e.to_string().chars().take(60).collect();
            format!("clinvk ⚠ {}", escape_controls(&why))
        }
    }
}

/// The most of stdin read: Claude Code's object is a few kilobytes.
const INPUT_MAX: u64 = 1 << 20;
/// The longest wait for the store's lock: a status bar does not wait for an import.
const LOCK_WAIT: Duration = Duration::from_millis(300);

pub fn run(ctx: &Context, args: &StatuslineArgs, now: DateTime<Utc>) -> i32 {
    // Nothing of a panic reaches the status bar: the marker does.
    std::panic::set_hook(Box::new(|_| {}));
    let color = std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let line = std::panic::catch_unwind(|| status(ctx, args, now, color))
        .unwrap_or_else(|_| Err(crate::error::Error::usage("internal error")));
    let line = line.unwrap_or_else(|e| marker(&e));
    // A closed stdout is no one's problem here.
    let _ = crate::cli::output::print(&format!("{line}\n"));
    exit::OK
}

fn status(ctx: &Context, args: &StatuslineArgs, now: DateTime<Utc>, color: bool) -> Result<String> {
    let input = read_input();
    let settings = ctx.settings()?;
    // Never a rebuild or a comparison of the whole directory here: the next command does those.
    let store = Store::open(&ctx.paths.sessions, Box::new(Quiet))?
        .with_lock_timeout(LOCK_WAIT)
        .as_it_stands();
    if settings.import_auto {
        if let Some(path) = &input.transcript_path {
            let roots = crate::import::sources::Roots::new(&settings);
            if let Some(found) = roots.claude_conversation(path) {
                // Not worth a missing line: the figures as they stand.
                let _ = crate::import::catch_up_conversation(
                    &store,
                    &found,
                    &ctx.import_options(),
                    &Quiet,
                );
            }
        }
    }
    let prices = PriceTable::embedded().with_overrides(settings.pricing.iter().cloned());
    let figures = |group: &crate::store::StatsGroup| Figures::of(group, &mut Pricer::new(&prices));
    let zone = Zone::local();
    // Claude's own 5-hour window, cut as ccusage cuts it: from Claude's requests only.
    let claude = Filter {
        backend: Some(Backend::Claude),
        ..Filter::default()
    };
    let over = |filter: &Filter, range: TimeRange| -> Result<Figures> {
        let query = StatsQuery {
            filter: filter.clone(),
            runs: range,
            group_by: Vec::new(),
            zone,
            top: None,
            adopt_zone_at: None,
        };
        Ok(figures(&store.stats(&query)?.0.totals))
    };
    let paint = |code: &str, text: &str| match color {
        true => format!("\x1b[{code}m{text}\x1b[0m"),
        false => text.to_string(),
    };

    let mut parts: Vec<String> = Vec::new();
    let model = input
        .model
        .as_ref()
        .and_then(|m| m.display_name.as_ref().or(m.id.as_ref()));
    if let Some(model) = model {
        parts.push(paint("1", &escape_controls(model)));
    }
    if let Some(id) = &input.session_id {
        if let Some(usage) = store.conversation_usage(Backend::Claude, id)? {
            let f = figures(&usage);
            parts.push(format!(
                "{} tok {}",
                short_count(f.sums.total),
                usd(f.cost.known_usd())
            ));
        }
    }
    let today = Period::current(Granularity::Day, &zone, now)
        .map(|p| over(&Filter::default(), range(&p)))
        .transpose()?;
    if let Some(today) = &today {
        parts.push(format!("today {}", usd(today.cost.known_usd())));
    }
    let block = store.current_block(&claude, now)?;
    // Its usage, once: the line and a block budget both show it.
    let block_used = block.map(|b| over(&claude, b.runs())).transpose()?;
    match (block, &block_used) {
        (Some(b), Some(used)) => parts.push(format!(
            "block {} {} left",
            usd(used.cost.known_usd()),
            hours_minutes(b.end() - now)
        )),
        _ => parts.push("no block".to_string()),
    }
    let budget = BudgetCheck::over(
        settings.token_budget,
        settings.cost_budget_usd,
        args.period.map(|p| p.0),
        &zone,
        now,
    )?;
    if let Some(mut budget) = budget {
        let used = match budget.period().kind {
            PeriodKind::Block => {
                budget.with_block(block, now);
                block_used.unwrap_or_default()
            }
            // Today's, summed above already.
            PeriodKind::Calendar(Granularity::Day) => match today {
                Some(today) => today,
                None => over(&Filter::default(), range(budget.period()))?,
            },
            PeriodKind::Calendar(_) => over(&Filter::default(), range(budget.period()))?,
        };
        let lines = budget.lines(&used, now);
        let (_, worst) = lines
            .iter()
            .max_by(|(_, a), (_, b)| a.percent.total_cmp(&b.percent))
            .expect("a budget has a limit");
        let code = match worst.status {
            BudgetStatus::Ok => "32",
            BudgetStatus::Warning => "33",
            BudgetStatus::Exceeded => "31",
        };
        parts.push(paint(
            code,
            &format!(
                "{} budget {:.0}% {}",
                budget.period().kind.as_str(),
                worst.percent,
                worst.status.as_str()
            ),
        ));
    }
    Ok(parts.join(" │ "))
}

/// Claude Code's object, when there is one: nothing is waited for from a terminal, and what
/// cannot be read counts as nothing said (the line still shows the day and the block).
fn read_input() -> Input {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        return Input::default();
    }
    let mut text = Vec::new();
    if stdin.lock().take(INPUT_MAX).read_to_end(&mut text).is_err() {
        return Input::default();
    }
    serde_json::from_slice(&text).unwrap_or_default()
}

fn range(p: &Period) -> TimeRange {
    TimeRange {
        since: Some(p.start),
        until: Some(p.end),
    }
}

/// `950`, `12.3k`, `4.5M`.
fn short_count(n: u64) -> String {
    match n {
        0..1_000 => n.to_string(),
        1_000..1_000_000 => format!("{:.1}k", n as f64 / 1e3),
        1_000_000..1_000_000_000 => format!("{:.1}M", n as f64 / 1e6),
        _ => format!("{:.1}G", n as f64 / 1e9),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_short() {
        assert_eq!(short_count(950), "950");
        assert_eq!(short_count(12_345), "12.3k");
        assert_eq!(short_count(4_500_000), "4.5M");
    }
}
