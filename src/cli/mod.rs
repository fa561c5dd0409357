//! The command line: clap definitions, turning flags into typed queries, and rendering
//! results as tables or JSON. Nothing here touches SQL or session files directly.
//!
//! - `mod.rs`: the command tree, `main`, and the `Context` every command gets;
//! - `cmd/`: one file per command, its arguments and what it does;
//! - `args.rs`: flags several commands share, made into typed values (filters, time ranges,
//!   run options);
//! - `running.rs`: what the commands that run a prompt share; `picker.rs`: `resume -i`;
//! - `output.rs`: stdout and stderr; `render.rs`: tables and `show`.

mod args;
mod cmd;
mod complete;
mod output;
mod picker;
mod render;
mod running;

use std::time::Duration;

use clap::{CommandFactory, Parser, Subcommand};

use crate::error::{exit, Error, Result};
use crate::paths::Paths;
use crate::store::Store;
use cmd::config::ConfigCommand;

#[derive(Debug, Parser)]
#[command(
    name = "clinvk",
    version,
    about = "Run prompts through claude, codex and gemini, and keep every conversation as a session",
    after_help = "Data lives in ~/.clinvk (or $CLINVK_HOME): config.yaml and sessions/<id>.json.\n\
                  A prompt that is also a command's name runs as a prompt after `--`: clinvk -- resume",
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub run: cmd::run::RunArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Continue a session: by id, the last one, or picked from a list
    Resume(cmd::resume::ResumeArgs),
    /// List, show, tag, delete and clean up stored sessions
    #[command(subcommand)]
    Sessions(SessionsCommand),
    /// Read and change settings in config.yaml
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Print the script that makes a shell complete clinvk's commands, session ids and tags
    Completions(cmd::shell::CompletionsArgs),
    /// Print clinvk's manual page (or write one per command with --dir)
    Man(cmd::shell::ManArgs),
    /// One line for Claude Code's status line: this session's tokens and cost, today's, the
    /// 5-hour block, the budget (reads Claude Code's JSON on stdin)
    Statusline(cmd::statusline::StatuslineArgs),
}

#[derive(Debug, Subcommand)]
pub enum SessionsCommand {
    /// List sessions, most recently used first
    #[command(visible_alias = "ls")]
    List(cmd::list::ListArgs),
    /// Show one session (id or unique prefix of at least 4 characters)
    Show(cmd::show::ShowArgs),
    /// Find sessions by what was said in them: prompts and answers, most relevant first
    Search(cmd::search::SearchArgs),
    /// Choose a session in the picker (type to search) and print its id
    Pick(cmd::pick::PickArgs),
    /// Delete sessions; if any id is unknown, nothing is deleted
    #[command(visible_alias = "rm")]
    Delete(cmd::delete::DeleteArgs),
    /// Start a new session from a session's context, leaving the original unchanged
    Fork(cmd::fork::ForkArgs),
    /// Add tags to a session, or remove them with --remove
    Tag(cmd::tag::TagArgs),
    /// Delete sessions not used for a while (default: session.retention_days)
    Clean(cmd::clean::CleanArgs),
    /// Token usage and cost, in total or grouped (--by), and budget checks (--budget, --period)
    Stats(cmd::stats::StatsArgs),
    /// Rebuild the index from the session files
    Reindex(cmd::reindex::ReindexArgs),
    /// Bring in the conversations held directly in claude, codex and gemini
    Import(cmd::import::ImportArgs),
}

/// The setting in the environment variable `name`, if set: `parse` reads it, and a value it
/// cannot read is a usage error that says what `name` should be.
fn env_setting<T>(
    name: &str,
    should_be: &str,
    parse: impl Fn(&str) -> Option<T>,
) -> Result<Option<T>> {
    match std::env::var(name) {
        Ok(text) if !text.is_empty() => parse(&text).map(Some).ok_or_else(|| {
            Error::usage(format!(
                "{name}='{}' is not {should_be}",
                text.escape_debug()
            ))
        }),
        _ => Ok(None),
    }
}

/// What every command gets: where things are, and a way to open the store.
pub struct Context {
    pub paths: Paths,
    /// `CLINVK_LOCK_TIMEOUT`; None: the store's default.
    lock_timeout: Option<Duration>,
    /// `CLINVK_IMPORT_BATCH`; None: the import's default.
    import_batch: Option<usize>,
}

impl Context {
    fn from_env() -> Result<Context> {
        // `try_`: 1e20 seconds is more than a Duration holds.
        let lock_timeout = env_setting(
            "CLINVK_LOCK_TIMEOUT",
            "a number of seconds (e.g. 30)",
            |t| Duration::try_from_secs_f64(t.parse().ok()?).ok(),
        )?;
        let import_batch = env_setting(
            "CLINVK_IMPORT_BATCH",
            "a number of files (e.g. 2000)",
            |t| t.parse::<usize>().ok().filter(|n| *n > 0),
        )?;
        Ok(Context {
            paths: Paths::from_env()?,
            lock_timeout,
            import_batch,
        })
    }

    /// How an import runs when nothing is asked of it.
    pub(crate) fn import_options(&self) -> crate::import::Options {
        crate::import::Options {
            batch: self.import_batch,
            ..crate::import::Options::default()
        }
    }

    /// The settings in config.yaml, checked, with defaults filled in.
    fn settings(&self) -> Result<crate::config::Settings> {
        // `settings` checks every value (`load` would check them a first time).
        crate::config::ConfigFile::load_unchecked(&self.paths.config)?.settings()
    }

    /// How long to wait for a lock held by another clinvk.
    fn lock_timeout(&self) -> Duration {
        self.lock_timeout.unwrap_or(crate::lock::DEFAULT_TIMEOUT)
    }

    /// Bring in what changed in the CLIs' transcripts since the last time (`import.auto`), before
    /// a command that reads sessions. Quiet: a progress bar on a terminal when it is long, one
    /// warning line when files could not be read, and a failure never stops the command (a
    /// read-only store, say, cannot take anything in, and still answers).
    pub(crate) fn catch_up(&self) {
        let result = (|| -> Result<crate::import::Report> {
            let settings = self.settings()?;
            if !settings.import_auto {
                return Ok(crate::import::Report::default());
            }
            // A held lock is the command's to wait for (and report): this waits briefly.
            let store = self
                .store()?
                .with_lock_timeout(self.lock_timeout().min(Duration::from_secs(2)));
            let observer = output::StderrObserver::reading("transcripts");
            crate::import::run(
                &store,
                &crate::import::sources::Roots::new(&settings),
                &crate::import::Options {
                    unless_busy: true,
                    ..self.import_options()
                },
                &observer,
            )
        })();
        match result {
            Ok(report) if !report.skipped.is_empty() => output::warning(&format!(
                "{} of the CLIs' transcript files or folders could not be read: `clinvk sessions import` names them",
                report.skipped.len()
            )),
            Ok(_) => {}
            // A config error is the command's to report; nothing can be taken in on a full
            // disk or a read-only store, and the command answers anyway.
            Err(Error::Config { .. } | Error::LockTimeout { .. }) => {}
            Err(e) if e.is_unwritable() => {}
            Err(e) => output::warning(&format!(
                "could not catch up with the CLIs' transcripts ({e}); `clinvk sessions import` tries again"
            )),
        }
    }

    fn store(&self) -> Result<Store> {
        let store = Store::open(
            &self.paths.sessions,
            Box::new(output::StderrObserver::new()),
        )?;
        Ok(match self.lock_timeout {
            Some(timeout) => store.with_lock_timeout(timeout),
            None => store,
        })
    }
}

/// The store query `clinvk ARGV` (a `sessions stats` command line, without the program name)
/// would run, built by the command's own code with default settings and without moving the
/// rollup: for the benchmark, which asks the store in-process which table answers it.
pub fn stats_query(
    argv: &[&str],
    now: chrono::DateTime<chrono::Utc>,
) -> Result<crate::store::StatsQuery> {
    let cli = Cli::try_parse_from(std::iter::once("clinvk").chain(argv.iter().copied()))
        .map_err(|e| Error::usage(e.to_string()))?;
    let Some(Command::Sessions(SessionsCommand::Stats(args))) = cli.command else {
        return Err(Error::usage("not a `sessions stats` command line"));
    };
    let (query, _) = cmd::stats::plan(&args, &crate::config::Settings::default(), now)?;
    Ok(crate::store::StatsQuery {
        adopt_zone_at: None,
        ..query
    })
}

/// clap's error (its message, tips, a blank line, the usage, a pointer to --help) as the one line
/// every clinvk error is: the message, its tips, and which `--help` to read.
fn one_line_usage_error(e: &clap::Error, raw: &[std::ffi::OsString]) -> String {
    let text = e.render().to_string();
    let mut message = String::new();
    let mut in_usage = false;
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if let Some(rest) = line.strip_prefix("error: ") {
            message.push_str(rest);
        } else if line.starts_with("Usage: ") {
            in_usage = true;
        } else if in_usage || line.starts_with("For more information") {
        } else if message.ends_with(':') {
            // The list a message announces ("the following required arguments ...:").
            message.push(' ');
            message.push_str(line);
        } else {
            // Tips ("tip: a similar argument exists: '--since'").
            message.push_str(&format!(" ({line})"));
        }
    }
    format!("{message}; see `{} --help`", command_path(raw))
}

/// `clinvk sessions list`: the subcommands named on the command line, for its `--help`.
fn command_path(raw: &[std::ffi::OsString]) -> String {
    let mut path = vec!["clinvk".to_string()];
    let mut command = Cli::command();
    for arg in raw.iter().skip(1).filter_map(|a| a.to_str()) {
        if arg.starts_with('-') {
            continue;
        }
        let Some(sub) = command.find_subcommand(arg).cloned() else {
            break;
        };
        path.push(sub.get_name().to_string());
        command = sub;
    }
    path.join(" ")
}

/// Parse the command line, run it, and return the process exit code.
pub fn main() -> i32 {
    // A shell asking for completions (see `complete`): answered, and nothing else runs.
    clap_complete::CompleteEnv::with_factory(Cli::command)
        .var(complete::ENV)
        .complete();
    let raw: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let cli = match Cli::try_parse_from(&raw) {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            // Help and version are what was asked for; a missing subcommand shows the help.
            if matches!(
                e.kind(),
                ErrorKind::DisplayHelp
                    | ErrorKind::DisplayVersion
                    | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            ) {
                let _ = e.print();
                return if e.use_stderr() {
                    exit::USAGE
                } else {
                    exit::OK
                };
            }
            output::message(&format!("clinvk: {}", one_line_usage_error(&e, &raw)));
            return exit::USAGE;
        }
    };
    // `clinvk -b codex resume` parses as the prompt "resume": refuse rather than spend a run
    // on a command name. `clinvk -- resume` runs it as a prompt.
    if let (None, Some(prompt)) = (&cli.command, &cli.run.prompt) {
        if Cli::command().find_subcommand(prompt).is_some() && !raw.iter().any(|a| a == "--") {
            output::error_line(&Error::usage(format!(
                "'{prompt}' is a command: put options after it (`clinvk {prompt} ...`), or run it as a prompt with `clinvk -- {prompt}`"
            )));
            return exit::USAGE;
        }
    }
    // A status bar shows a marker, never an error and its exit code.
    let in_status_bar = matches!(cli.command, Some(Command::Statusline(_)));
    match Context::from_env().and_then(|ctx| run(&ctx, cli)) {
        Err(e) if in_status_bar => {
            let _ = output::print(&format!("{}\n", cmd::statusline::marker(&e)));
            exit::OK
        }
        Ok(code) => code,
        Err(e) if e.is_broken_pipe() => exit::OK,
        Err(e) => {
            output::error_line(&e);
            e.exit_code()
        }
    }
}

fn run(ctx: &Context, cli: Cli) -> Result<i32> {
    let Some(command) = cli.command else {
        if cli.run.continue_last {
            ctx.catch_up();
        }
        return cmd::run::run(ctx, cli.run);
    };
    let now = crate::clock::now()?;
    // Commands that read sessions see the conversations held directly in the CLIs too.
    // (`resume` and `sessions pick` catch up themselves, once their arguments and the terminal
    // are checked.)
    if matches!(
        command,
        Command::Sessions(
            SessionsCommand::List(_)
                | SessionsCommand::Show(_)
                | SessionsCommand::Search(_)
                | SessionsCommand::Stats(_)
        )
    ) {
        ctx.catch_up();
    }
    match command {
        Command::Resume(args) => cmd::resume::run(ctx, args),
        Command::Config(c) => cmd::config::run(ctx, c),
        Command::Completions(args) => cmd::shell::completions(&args),
        Command::Man(args) => cmd::shell::man(&args),
        Command::Statusline(args) => Ok(cmd::statusline::run(ctx, &args, now)),
        Command::Sessions(s) => match s {
            SessionsCommand::List(args) => cmd::list::run(ctx, &args, now),
            SessionsCommand::Show(args) => cmd::show::run(ctx, &args, now),
            SessionsCommand::Search(args) => cmd::search::run(ctx, &args, now),
            SessionsCommand::Pick(args) => cmd::pick::run(ctx, &args, now),
            SessionsCommand::Delete(args) => cmd::delete::run(ctx, &args),
            SessionsCommand::Fork(args) => cmd::fork::run(ctx, args),
            SessionsCommand::Tag(args) => cmd::tag::run(ctx, &args),
            SessionsCommand::Clean(args) => cmd::clean::run(ctx, &args, now),
            SessionsCommand::Stats(args) => cmd::stats::run(ctx, &args, now),
            SessionsCommand::Reindex(args) => cmd::reindex::run(ctx, &args),
            SessionsCommand::Import(args) => cmd::import::run(ctx, &args),
        },
    }
}
