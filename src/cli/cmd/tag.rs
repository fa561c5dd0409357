//! `clinvk sessions tag ID TAG... [--remove]`.

use clap::Args;

use crate::cli::args::{session_key, tag_arg};
use crate::cli::output;
use crate::cli::Context;
use crate::domain::add_tags;
use crate::error::{exit, Result};

#[derive(Debug, Args)]
pub struct TagArgs {
    #[arg(value_parser = session_key, add = clap_complete::engine::ArgValueCompleter::new(crate::cli::complete::session_ids))]
    pub id: String,
    #[arg(required = true, value_name = "TAG", value_parser = tag_arg, add = clap_complete::engine::ArgValueCompleter::new(crate::cli::complete::tags))]
    pub tags: Vec<String>,
    /// Remove the tags instead of adding them
    #[arg(long)]
    pub remove: bool,
}

pub fn run(ctx: &Context, args: &TagArgs) -> Result<i32> {
    let (id, tags, remove) = (args.id.as_str(), &args.tags, args.remove);
    let (session, ()) = ctx.store()?.update(id, |session| {
        let before = session.tags.clone();
        if remove {
            session.tags.retain(|t| !tags.contains(t));
        } else {
            add_tags(&mut session.tags, tags.iter().cloned());
        }
        Ok((session.tags != before, ()))
    })?;
    let shown = if session.tags.is_empty() {
        "none".to_string()
    } else {
        session.tags.join(", ")
    };
    output::message(&format!("Session {} tags: {shown}", session.id));
    Ok(exit::OK)
}
