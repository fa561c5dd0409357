//! The command line: clap definitions, turning flags into typed store queries, and rendering
//! results as tables or JSON. Nothing here touches SQL or session files directly.

mod config_cmd;
mod output;
mod render;
mod run_cmd;
mod sessions;
mod stats;

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, CommandFactory, Parser, Subcommand};

use crate::domain::{normalize_tag, Backend, Status};
use crate::error::{exit, Error, Result};
use crate::paths::Paths;
use crate::store::Store;

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
    pub run: RunArgs,
}

/// `clinvk [PROMPT]`: run a prompt in a new session (or the last one, with -c).
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The prompt; `-`, or none with a pipe on stdin, reads it from stdin
    pub prompt: Option<String>,
    /// claude, codex or gemini [default: config default_backend, else $CLINVK_BACKEND, else claude]
    #[arg(long, short = 'b', value_parser = parse_arg::<Backend>)]
    pub backend: Option<Backend>,
    #[command(flatten)]
    pub common: RunOptions,
    /// Run without keeping a session: no file, nothing in the index, not resumable
    #[arg(long, conflicts_with = "resume_last")]
    pub ephemeral: bool,
    /// Continue the most recently used resumable session, in any directory
    #[arg(long = "continue", short = 'c', id = "resume_last")]
    pub continue_last: bool,
}

/// Options of every command that runs a prompt.
#[derive(Debug, Args)]
pub struct RunOptions {
    /// Model name or alias, passed to the backend (e.g. sonnet, gpt-5.6-sol, pro)
    #[arg(long, short = 'm', value_name = "MODEL")]
    pub model: Option<String>,
    /// Add this tag to the session (repeat for several)
    #[arg(long = "tag", value_name = "TAG", value_parser = tag_arg)]
    pub tags: Vec<String>,
    /// Print one JSON object (response, session ids, model, usage, status) instead of the text
    #[arg(long)]
    pub json: bool,
    /// Stop the CLI if it runs longer: 30m, 90s, 2h, or 0 for no limit [default: config
    /// run.timeout, else 30m]
    #[arg(long, value_name = "DURATION", value_parser = timeout_arg)]
    pub timeout: Option<Deadline>,
}

/// A `--timeout`: a duration, or None for "no limit" (`0`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline(pub Option<Duration>);

fn timeout_arg(text: &str) -> std::result::Result<Deadline, String> {
    crate::timespec::parse_timeout(text)
        .map(Deadline)
        .map_err(|e| e.to_string())
}

#[derive(Debug, Args)]
pub struct ResumeArgs {
    /// Session id or unique prefix (with --last or -i, the first argument is the prompt)
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
    #[arg(long, short = 'b', value_parser = parse_arg::<Backend>)]
    pub backend: Option<Backend>,
    /// Pick the session from a list (the default without an id or --last)
    #[arg(long, short = 'i')]
    pub interactive: bool,
    #[command(flatten)]
    pub common: RunOptions,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Continue a session: by id, the last one, or picked from a list
    Resume(ResumeArgs),
    /// List, show, tag, delete and clean up stored sessions
    #[command(subcommand)]
    Sessions(SessionsCommand),
    /// Read and change settings in config.yaml
    #[command(subcommand)]
    Config(ConfigCommand),
}

#[derive(Debug, Subcommand)]
pub enum SessionsCommand {
    /// List sessions, most recently used first
    #[command(visible_alias = "ls")]
    List(ListArgs),
    /// Show one session (id or unique prefix of at least 4 characters)
    Show {
        id: String,
        /// Print the session file as JSON
        #[arg(long)]
        json: bool,
    },
    /// Delete sessions; if any id is unknown, nothing is deleted
    #[command(visible_alias = "rm")]
    Delete {
        #[arg(required = true, value_name = "ID")]
        ids: Vec<String>,
    },
    /// Start a new session from a session's context, leaving the original unchanged
    Fork {
        /// The session to fork (id or unique prefix)
        id: String,
        /// The first prompt of the fork; without one, the fork happens at its first resume
        prompt: Option<String>,
        #[command(flatten)]
        common: RunOptions,
    },
    /// Add tags to a session, or remove them with --remove
    Tag {
        id: String,
        #[arg(required = true, value_name = "TAG", value_parser = tag_arg)]
        tags: Vec<String>,
        /// Remove the tags instead of adding them
        #[arg(long)]
        remove: bool,
    },
    /// Delete sessions not used for a while (default: session.retention_days)
    Clean {
        /// Age since last use, e.g. 30d, 7d, 12h
        #[arg(long, value_name = "AGE")]
        older_than: Option<String>,
        /// Only list what would be deleted
        #[arg(long)]
        dry_run: bool,
        /// Print the deleted (or, with --dry-run, doomed) sessions as a JSON array
        #[arg(long)]
        json: bool,
    },
    /// Token usage and cost, in total or grouped (--by), and budget checks (--budget, --period)
    Stats(StatsArgs),
    /// Rebuild the index from the session files
    Reindex {
        /// Compare the index with the files without changing anything; exit 6 if they differ
        #[arg(long)]
        check: bool,
        /// Print the counts, invalid files and differences as JSON
        #[arg(long)]
        json: bool,
    },
}

/// Which sessions: the filters `sessions list` and `sessions stats` share.
#[derive(Debug, Args)]
pub struct SessionFilterArgs {
    /// Only this backend: claude, codex or gemini
    #[arg(long, short = 'b', value_parser = parse_arg::<Backend>)]
    pub backend: Option<Backend>,
    /// Only this status: created, active, completed or error
    #[arg(long, value_parser = parse_arg::<Status>)]
    pub status: Option<Status>,
    /// Only sessions with this tag (repeat for several: all must match)
    #[arg(long = "tag", value_name = "TAG", value_parser = tag_arg)]
    pub tags: Vec<String>,
    /// Only sessions whose working directory is the current one
    #[arg(long, conflicts_with = "workdir")]
    pub here: bool,
    /// Only sessions whose working directory is DIR
    #[arg(long, value_name = "DIR")]
    pub workdir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub select: SessionFilterArgs,
    /// Last used at or after: YYYY-MM-DD, YYYYMMDD, RFC 3339, or an age like 24h, 7d
    #[arg(long, value_name = "WHEN")]
    pub since: Option<String>,
    /// Last used before the end of: YYYY-MM-DD, YYYYMMDD, RFC 3339, or an age like 7d
    #[arg(long, value_name = "WHEN")]
    pub until: Option<String>,
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
    #[arg(long)]
    pub json: bool,
}

/// `sessions stats`: which runs to count, how to group them, and an optional budget.
#[derive(Debug, Args)]
#[command(
    after_help = "Runs are counted when they happened, so a session continued next month counts in both months.\n\
    Cost: reported by the backend where it gives one (claude), else estimated from list prices (`pricing:` in config.yaml adds or overrides models).\n\
    Budget exit codes: 0 under 80 %, 10 at 80 % or more (warning), 11 at 100 % or more (exceeded)."
)]
pub struct StatsArgs {
    /// Group by backend, model, status, tag, workdir, session, day, week or month (repeat, or
    /// comma-separate, e.g. --by month,backend)
    #[arg(long = "by", value_name = "DIM", value_delimiter = ',', value_parser = parse_arg::<stats::GroupBy>)]
    pub by: Vec<stats::GroupBy>,
    #[command(flatten)]
    pub select: SessionFilterArgs,
    /// Runs at or after: YYYY-MM-DD, YYYYMMDD, RFC 3339, or an age like 24h, 7d
    #[arg(long, value_name = "WHEN")]
    pub since: Option<String>,
    /// Runs before the end of: YYYY-MM-DD, YYYYMMDD, RFC 3339, or an age like 7d
    #[arg(long, value_name = "WHEN")]
    pub until: Option<String>,
    /// Count days, weeks (Monday to Sunday) and months in UTC
    #[arg(long, conflicts_with = "timezone")]
    pub utc: bool,
    /// Count days, weeks and months in this zone: an IANA name (Europe/Paris), UTC, or +05:30
    /// [default: the local zone]
    #[arg(long, value_name = "TZ", allow_hyphen_values = true)]
    pub timezone: Option<String>,
    /// Check a token budget over the current --period (1000000, 500k, 2M)
    #[arg(long, value_name = "TOKENS", value_parser = stats::parse_tokens, allow_hyphen_values = true)]
    pub budget: Option<u64>,
    /// Check a cost budget in US dollars over the current --period
    #[arg(long, value_name = "USD", value_parser = stats::parse_usd, allow_hyphen_values = true)]
    pub budget_usd: Option<f64>,
    /// The budget period: day, week or month [default: month]. Limits not given as flags come
    /// from session.token_budget and session.cost_budget_usd; --period alone checks those
    #[arg(long, value_name = "PERIOD", value_parser = parse_arg::<stats::PeriodArg>)]
    pub period: Option<stats::PeriodArg>,
    /// Print one JSON object (schema_version 1) instead of the table
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the effective value of a key (the default when unset)
    Get { key: String },
    /// Set a key, keeping the rest of the file; VALUE is YAML, e.g. 7, true, '["a", "b"]'
    Set {
        key: String,
        // A negative number is a value here (and gets a clear error), not an unknown flag.
        #[arg(allow_hyphen_values = true)]
        value: String,
    },
    /// Print every setting with its effective value
    Show {
        /// Print a JSON object of key: value
        #[arg(long)]
        json: bool,
    },
    /// Print the path of the config file
    Path,
}

fn parse_arg<T: std::str::FromStr<Err = Error>>(text: &str) -> std::result::Result<T, String> {
    text.parse().map_err(|e: Error| e.to_string())
}

fn tag_arg(text: &str) -> std::result::Result<String, String> {
    normalize_tag(text).map_err(|e| e.to_string())
}

/// What every command gets: where things are, and a way to open the store.
pub struct Context {
    pub paths: Paths,
    lock_timeout: Duration,
}

impl Context {
    fn from_env() -> Result<Context> {
        let lock_timeout = match std::env::var("CLINVK_LOCK_TIMEOUT") {
            Ok(text) if !text.is_empty() => text
                .parse::<f64>()
                .ok()
                .filter(|s| s.is_finite() && *s >= 0.0)
                .map(Duration::from_secs_f64)
                .ok_or_else(|| {
                    Error::usage(format!(
                        "CLINVK_LOCK_TIMEOUT='{text}' is not a number of seconds"
                    ))
                })?,
            _ => crate::store::lock::DEFAULT_TIMEOUT,
        };
        Ok(Context {
            paths: Paths::from_env()?,
            lock_timeout,
        })
    }

    /// The settings in config.yaml, checked, with defaults filled in.
    fn settings(&self) -> Result<crate::config::Settings> {
        // `settings` checks every value (`load` would check them a first time).
        crate::config::ConfigFile::load_unchecked(&self.paths.config)?.settings()
    }

    fn store(&self) -> Result<Store> {
        Ok(Store::open(
            &self.paths.sessions,
            Box::new(output::StderrObserver::new()),
        )?
        .with_lock_timeout(self.lock_timeout))
    }
}

/// Parse the command line, run it, and return the process exit code.
pub fn main() -> i32 {
    let raw: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let cli = match Cli::try_parse_from(&raw) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            };
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
    match Context::from_env().and_then(|ctx| run(&ctx, cli)) {
        Ok(code) => code,
        Err(e) if e.is_broken_pipe() => exit::OK,
        Err(e) => {
            output::error_line(&e);
            e.exit_code()
        }
    }
}

fn run(ctx: &Context, cli: Cli) -> Result<i32> {
    match cli.command {
        None => run_cmd::run(ctx, cli.run),
        Some(Command::Resume(args)) => run_cmd::resume(ctx, args),
        Some(Command::Sessions(cmd)) => sessions::run(ctx, cmd),
        Some(Command::Config(cmd)) => config_cmd::run(ctx, cmd),
    }
}
