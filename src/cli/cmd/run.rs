//! `clinvk [PROMPT]`: run a prompt in a new session, or the last one with `-c`, or in none
//! with `--ephemeral`.

use std::path::Path;

use clap::Args;

use crate::cli::args::{normalize_dir, parse_arg, RunOptions};
use crate::cli::running::{default_backend, execute, last, read_prompt, resumable};
use crate::cli::Context;
use crate::domain::Backend;
use crate::error::Result;
use crate::run::Target;

/// `clinvk [PROMPT]`: run a prompt in a new session (or the last one, with -c).
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The prompt; `-`, or none with a pipe on stdin, reads it from stdin
    pub prompt: Option<String>,
    /// claude, codex or gemini [default: config default_backend, else $CLINVK_BACKEND, else claude]
    #[arg(long, short = 'b', value_parser = parse_arg::<Backend>, add = clap_complete::engine::ArgValueCandidates::new(crate::cli::complete::backends))]
    pub backend: Option<Backend>,
    #[command(flatten)]
    pub common: RunOptions,
    /// Run without keeping a session: no file, nothing in the index, not resumable (so no --tag)
    #[arg(long, conflicts_with_all = ["resume_last", "tags"])]
    pub ephemeral: bool,
    /// Continue the most recently used resumable session, in any directory
    #[arg(long = "continue", short = 'c', id = "resume_last")]
    pub continue_last: bool,
}

pub fn run(ctx: &Context, args: RunArgs) -> Result<i32> {
    let settings = ctx.settings()?;
    if args.continue_last {
        let store = ctx.store()?;
        let key = last(&store, resumable(args.backend, None), "")?;
        let prompt = read_prompt(args.prompt, false)?;
        return execute(
            Some(&store),
            &settings,
            Target::Resume { key },
            prompt,
            args.common,
        );
    }
    let backend = match args.backend {
        Some(b) => b,
        None => default_backend(&settings)?,
    };
    let prompt = read_prompt(args.prompt, false)?;
    let workdir = normalize_dir(Path::new("."))?;
    if args.ephemeral {
        // The store keeps no session; it only remembers not to import what a CLI kept anyway.
        let target = Target::Ephemeral { backend, workdir };
        return execute(Some(&ctx.store()?), &settings, target, prompt, args.common);
    }
    let target = Target::New { backend, workdir };
    execute(Some(&ctx.store()?), &settings, target, prompt, args.common)
}
