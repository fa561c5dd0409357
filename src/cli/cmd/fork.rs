//! `clinvk sessions fork ID [PROMPT]`: a new session that starts from another's context.

use clap::Args;

use crate::cli::args::{session_key, RunOptions};
use crate::cli::output::{self, print, print_json};
use crate::cli::running::{execute, read_prompt, runner};
use crate::cli::Context;
use crate::error::{exit, Result};
use crate::run::Target;

#[derive(Debug, Args)]
pub struct ForkArgs {
    /// The session to fork (id or unique prefix)
    #[arg(value_parser = session_key, add = clap_complete::engine::ArgValueCompleter::new(crate::cli::complete::session_ids))]
    pub id: String,
    /// The first prompt of the fork; without one, the fork happens at its first resume
    pub prompt: Option<String>,
    #[command(flatten)]
    pub common: RunOptions,
}

pub fn run(ctx: &Context, args: ForkArgs) -> Result<i32> {
    let ForkArgs { id, prompt, common } = args;
    let settings = ctx.settings()?;
    let store = ctx.store()?;
    let Some(prompt) = prompt else {
        // No prompt: the fork is made at the new session's first run.
        let runner = runner(Some(&store), &settings, &crate::run::Quiet);
        let session = runner.fork_later(&id, &common.tags, common.model.as_deref())?;
        if common.json {
            print_json(&serde_json::json!({
                "session_id": session.id.as_str(),
                "parent_id": session.parent_id.as_ref().map(|p| p.as_str()),
                "backend": session.backend.as_str(),
                "status": session.status.as_str(),
            }))?;
        } else {
            print(&format!("{}\n", session.id))?;
        }
        output::message(&format!(
            "Forked {} as {}: its first prompt continues from there (`clinvk resume {} \"prompt\"`)",
            session.parent_id.as_ref().map_or("", |p| p.as_str()),
            session.id,
            session.id
        ));
        return Ok(exit::OK);
    };
    let prompt = read_prompt(Some(prompt), false)?;
    let target = Target::Fork { key: id };
    execute(Some(&store), &settings, target, prompt, common)
}
