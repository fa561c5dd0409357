//! `clinvk sessions pick`: choose a session in the picker and print its id, for scripts:
//! `clinvk sessions show $(clinvk sessions pick)`.

use chrono::{DateTime, Utc};
use clap::Args;

use crate::cli::args::{LastUsedArgs, SessionFilterArgs};
use crate::cli::output::{self, print};
use crate::cli::picker::{pick, Purpose};
use crate::cli::Context;
use crate::error::{exit, Error, Result};
use crate::store::ListQuery;

#[derive(Debug, Args)]
pub struct PickArgs {
    #[command(flatten)]
    pub select: SessionFilterArgs,
    #[command(flatten)]
    pub last_used: LastUsedArgs,
}

pub fn run(ctx: &Context, args: &PickArgs, now: DateTime<Utc>) -> Result<i32> {
    let query = ListQuery {
        filter: args.select.to_filter()?,
        last_used: args.last_used.to_range(now)?,
        ..ListQuery::default()
    };
    crate::cli::picker::require_terminal(
        "`clinvk sessions list` or `clinvk sessions search` choose sessions without one",
    )?;
    ctx.catch_up();
    let store = ctx.store()?;
    let purpose = Purpose {
        prompt: "Pick:",
        enter: "print its id",
    };
    let filtered = args.select.to_filter()? != Default::default() || !query.last_used.is_open();
    let none = || Error::NothingToPick(if filtered { " with these filters" } else { "" }.into());
    match pick(&store, query, purpose, none)? {
        Some(id) => {
            print(&format!("{id}\n"))?;
            Ok(exit::OK)
        }
        None => {
            output::message("No session chosen.");
            Ok(exit::INTERRUPTED)
        }
    }
}
