//! `clinvk sessions delete ID...`: all or nothing.

use clap::Args;

use crate::cli::args::session_key;
use crate::cli::output;
use crate::cli::Context;
use crate::error::{exit, Result};

#[derive(Debug, Args)]
pub struct DeleteArgs {
    #[arg(required = true, value_name = "ID", value_parser = session_key, add = clap_complete::engine::ArgValueCompleter::new(crate::cli::complete::session_ids))]
    pub ids: Vec<String>,
    /// Delete even a file that is not a valid session (truncated, unreadable, another id inside)
    #[arg(long)]
    pub force: bool,
}

pub fn run(ctx: &Context, args: &DeleteArgs) -> Result<i32> {
    let ids = &args.ids;
    for id in ctx.store()?.delete(ids, args.force)? {
        output::message(&format!("Deleted session {id}"));
    }
    Ok(exit::OK)
}
