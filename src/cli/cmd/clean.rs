//! `clinvk sessions clean`: delete sessions not used for a while.

use chrono::{DateTime, Utc};
use clap::Args;

use crate::cli::output::{self, print, print_json, terminal_width};
use crate::cli::render::{self, JsonRow};
use crate::cli::Context;
use crate::error::{exit, Error, Result};
use crate::timespec::parse_duration;

#[derive(Debug, Args)]
pub struct CleanArgs {
    /// Age since last use, e.g. 30d, 7d, 12h
    #[arg(long, value_name = "AGE")]
    pub older_than: Option<String>,
    /// Only list what would be deleted
    #[arg(long)]
    pub dry_run: bool,
    /// Print the deleted (or, with --dry-run, doomed) sessions as a JSON array
    #[arg(long)]
    pub json: bool,
}

pub fn run(ctx: &Context, args: &CleanArgs, now: DateTime<Utc>) -> Result<i32> {
    let (older_than, dry_run, json) = (args.older_than.as_deref(), args.dry_run, args.json);
    let (age, source) = match older_than {
        Some(text) => (parse_duration(text)?, format!("--older-than {text}")),
        None => {
            let settings = ctx.settings()?;
            if settings.retention_days == 0 {
                output::message(
                    "session.retention_days is 0 (keep forever): nothing to clean. Pass --older-than to clean anyway.",
                );
                if json {
                    print_json(&Vec::<JsonRow>::new())?;
                }
                return Ok(exit::OK);
            }
            let days = i64::try_from(settings.retention_days).unwrap_or(i64::MAX);
            let age = chrono::Duration::try_days(days)
                .ok_or_else(|| Error::usage("session.retention_days is too large"))?;
            (age, format!("session.retention_days = {days}"))
        }
    };
    let cutoff = now
        .checked_sub_signed(age)
        .unwrap_or(DateTime::<Utc>::MIN_UTC);
    let sessions = ctx.store()?.clean(cutoff, dry_run)?;
    let verb = if dry_run { "Would delete" } else { "Deleted" };
    output::message(&format!(
        "{verb} {} session(s) not used since {} ({source})",
        sessions.len(),
        crate::store::session::format_time(&cutoff)
    ));
    if json {
        let rows: Vec<JsonRow> = sessions.iter().map(JsonRow).collect();
        print_json(&rows)?;
    } else if dry_run && !sessions.is_empty() {
        print(&render::session_table(&sessions, now, terminal_width()))?;
    }
    Ok(exit::OK)
}
