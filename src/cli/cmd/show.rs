//! `clinvk sessions show ID`: one session, for people or as its file's JSON.

use chrono::{DateTime, Utc};
use clap::Args;

use crate::cli::args::session_key;
use crate::cli::output::{print, print_json};
use crate::cli::render;
use crate::cli::Context;
use crate::error::{exit, Result};

#[derive(Debug, Args)]
pub struct ShowArgs {
    #[arg(value_parser = session_key, add = clap_complete::engine::ArgValueCompleter::new(crate::cli::complete::session_ids))]
    pub id: String,
    /// Print the session file as JSON
    #[arg(long)]
    pub json: bool,
}

pub fn run(ctx: &Context, args: &ShowArgs, now: DateTime<Utc>) -> Result<i32> {
    let (id, json) = (args.id.as_str(), args.json);
    let mut session = ctx.store()?.get(id)?;
    if json {
        print_json(&session)?;
    } else {
        // Checked now too: the CLI may have deleted it since the last import.
        if let Some(native) = session.native.as_mut() {
            native.gone |= !native.is_present();
        }
        print(&render::show(&session, now))?;
    }
    Ok(exit::OK)
}
