//! `clinvk resume [ID] [PROMPT]`: continue a session by id, the last one, or one picked from a
//! list.

use std::path::Path;

use clap::Args;

use crate::cli::args::{normalize_dir, parse_arg, RunOptions};
use crate::cli::output;
use crate::cli::picker::{pick, Purpose};
use crate::cli::running::{execute, last, nothing_to_resume, read_prompt, resumable};
use crate::cli::Context;
use crate::domain::Backend;
use crate::error::{exit, Error, Result};
use crate::run::Target;

#[derive(Debug, Args)]
pub struct ResumeArgs {
    /// Session id or unique prefix (with --last or -i, the first argument is the prompt)
    #[arg(add = clap_complete::engine::ArgValueCompleter::new(crate::cli::complete::session_ids))]
    pub id: Option<String>,
    /// The prompt; `-`, or none with a pipe on stdin, reads it from stdin; asked for on a terminal
    pub prompt: Option<String>,
    /// Resume the most recently used resumable session
    #[arg(long, conflicts_with = "interactive")]
    pub last: bool,
    /// Only sessions whose working directory is the current one
    #[arg(long)]
    pub here: bool,
    /// Only sessions of this backend
    #[arg(long, short = 'b', value_parser = parse_arg::<Backend>, add = clap_complete::engine::ArgValueCandidates::new(crate::cli::complete::backends))]
    pub backend: Option<Backend>,
    /// Pick the session from a list (the default without an id or --last)
    #[arg(long, short = 'i')]
    pub interactive: bool,
    #[command(flatten)]
    pub common: RunOptions,
}

pub fn run(ctx: &Context, args: ResumeArgs) -> Result<i32> {
    let by_id = !(args.last || args.interactive) && args.id.is_some();
    if by_id && (args.here || args.backend.is_some()) {
        // They choose the session; an id already has. (`resume --here fix-it` meant a prompt.)
        return Err(Error::usage(format!(
            "--here and --backend choose the session to resume, with --last or the picker; '{}' is taken as a session id: drop them, or use `clinvk resume --last --here PROMPT`",
            args.id.as_deref().unwrap_or_default().escape_debug()
        )));
    }
    if let Some(id) = args.id.as_deref().filter(|_| by_id) {
        // Before the store is opened (and its directory made).
        crate::domain::SessionId::parse(id)?;
    }
    let picking = !args.last && (args.interactive || args.id.is_none());
    if picking {
        crate::cli::picker::require_terminal(
            "give a session id, or use --last (`clinvk sessions list` shows the ids)",
        )?;
    }
    ctx.catch_up();
    let settings = ctx.settings()?;
    let store = ctx.store()?;
    let (workdir, scope) = if args.here {
        let dir = normalize_dir(Path::new("."))?;
        let scope = format!(" in {dir}");
        (Some(dir), scope)
    } else {
        (None, String::new())
    };
    let query = resumable(args.backend, workdir);
    // With --last or -i there is no id: a single argument is the prompt.
    let (key, prompt) = if args.last || args.interactive || args.id.is_none() {
        if args.prompt.is_some() {
            return Err(Error::usage(
                "with --last or --interactive, give only the prompt (no session id)",
            ));
        }
        let key = if args.last {
            last(&store, query, &scope)?
        } else {
            let purpose = Purpose {
                prompt: "Resume:",
                enter: "resume",
            };
            let backend = args.backend;
            match pick(&store, query, purpose, || {
                nothing_to_resume(backend, &scope)
            })? {
                Some(key) => key,
                None => {
                    output::message("No session chosen.");
                    return Ok(exit::INTERRUPTED);
                }
            }
        };
        (key, args.id)
    } else {
        (args.id.unwrap_or_default(), args.prompt)
    };
    let prompt = read_prompt(prompt, true)?;
    execute(
        Some(&store),
        &settings,
        Target::Resume { key },
        prompt,
        args.common,
    )
}
