//! `clinvk sessions list`: sessions, most recently used first, as a table or JSON.

use chrono::{DateTime, Utc};
use clap::Args;

use crate::cli::args::{LastUsedArgs, SessionFilterArgs};
use crate::cli::output::{self, json_rows, print, terminal_width, warn_invalid};
use crate::cli::render;
use crate::cli::Context;
use crate::error::{exit, Result};
use crate::store::ListQuery;

#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub select: SessionFilterArgs,
    #[command(flatten)]
    pub last_used: LastUsedArgs,
    /// Only sessions whose prompt contains TEXT (case-insensitive)
    #[arg(long, value_name = "TEXT")]
    pub search: Option<String>,
    /// Show at most N sessions
    #[arg(long, short = 'n', value_name = "N")]
    pub limit: Option<u64>,
    /// Skip the first N sessions
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub offset: u64,
    /// Print a JSON array instead of a table
    #[arg(long, conflicts_with = "ndjson")]
    pub json: bool,
    /// Print one JSON object per line instead of a table
    #[arg(long)]
    pub ndjson: bool,
}

impl ListArgs {
    /// The typed query these flags mean, or a usage error naming the bad value.
    pub fn to_query(&self, now: DateTime<Utc>) -> Result<ListQuery> {
        Ok(ListQuery {
            filter: self.select.to_filter()?,
            last_used: self.last_used.to_range(now)?,
            search: self.search.clone().filter(|s| !s.is_empty()),
            resumable: false,
            limit: self.limit,
            offset: self.offset,
        })
    }
}

pub fn run(ctx: &Context, args: &ListArgs, now: DateTime<Utc>) -> Result<i32> {
    let query = args.to_query(now)?;
    let store = ctx.store()?;
    if args.json || args.ndjson {
        // Streamed: a page of rows at a time, whatever the size of the store. Nothing is
        // printed before the listing has begun (a failure to begin prints nothing on stdout).
        let listing = store.listing(&query)?;
        warn_invalid(listing.invalid_files());
        json_rows(args.ndjson, |emit| {
            listing.pages(|rows| rows.iter().try_for_each(&mut *emit))
        })?;
        return Ok(exit::OK);
    }
    let outcome = store.list(&query)?;
    warn_invalid(&outcome.invalid_files);
    if outcome.sessions.is_empty() {
        output::message("No sessions found.");
    } else {
        print(&render::session_table(
            &outcome.sessions,
            now,
            terminal_width(),
        ))?;
    }
    Ok(exit::OK)
}
