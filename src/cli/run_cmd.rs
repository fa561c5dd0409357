//! The commands that run a prompt: `clinvk [PROMPT]`, `clinvk resume`, `clinvk sessions fork`.
//! They pick the session (id, --last, the picker), read the prompt, and print the response:
//! the text on stdout, clinvk's own lines on stderr.

use std::io::{IsTerminal, Read};
use std::path::Path;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::output::{self, print, print_json};
use super::render::{relative, thousands, title};
use super::sessions::normalize_dir;
use super::{Context, ResumeArgs, RunArgs, RunOptions};
use crate::clock;
use crate::config::Settings;
use crate::domain::{Backend, Status};
use crate::error::{exit, Error, Result};
use crate::run::{Report, Request, Runner, Target};
use crate::store::{Filter, ListQuery, Store};

/// `clinvk [PROMPT]`.
pub fn run(ctx: &Context, args: RunArgs) -> Result<i32> {
    let settings = ctx.settings()?;
    if args.continue_last {
        let store = ctx.store()?;
        let filter = Filter {
            backend: args.backend,
            ..resumable()
        };
        let key = last(&store, filter, "")?;
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
        let target = Target::Ephemeral { backend, workdir };
        return execute(None, &settings, target, prompt, args.common);
    }
    let target = Target::New { backend, workdir };
    execute(Some(&ctx.store()?), &settings, target, prompt, args.common)
}

/// `clinvk resume [ID] [PROMPT]`.
pub fn resume(ctx: &Context, args: ResumeArgs) -> Result<i32> {
    let settings = ctx.settings()?;
    let store = ctx.store()?;
    let mut filter = Filter {
        backend: args.backend,
        ..resumable()
    };
    let mut scope = String::new();
    if args.here {
        let dir = normalize_dir(Path::new("."))?;
        scope = format!(" in {dir}");
        filter.workdir = Some(dir);
    }
    // With --last or -i there is no id: a single argument is the prompt.
    let (key, prompt) = if args.last || args.interactive || args.id.is_none() {
        if args.prompt.is_some() {
            return Err(Error::usage(
                "with --last or --interactive, give only the prompt (no session id)",
            ));
        }
        let key = if args.last {
            last(&store, filter, &scope)?
        } else {
            match pick(&store, filter, &scope)? {
                Some(key) => key,
                None => {
                    output::message("No session chosen.");
                    return Ok(exit::FAILURE);
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

/// `clinvk sessions fork ID [PROMPT]`.
pub fn fork(ctx: &Context, id: &str, prompt: Option<String>, common: RunOptions) -> Result<i32> {
    let settings = ctx.settings()?;
    let store = ctx.store()?;
    let Some(prompt) = prompt else {
        // No prompt: the fork is made at the new session's first run.
        let runner = runner(Some(&store), &settings, &crate::run::Quiet);
        let session = runner.fork_later(id, &common.tags, common.model.as_deref())?;
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
    let target = Target::Fork { key: id.into() };
    execute(Some(&store), &settings, target, prompt, common)
}

fn runner<'a>(
    store: Option<&'a Store>,
    settings: &'a Settings,
    observer: &'a dyn crate::run::RunObserver,
) -> Runner<'a> {
    Runner {
        store,
        settings,
        path: std::env::var_os("PATH"),
        homes: crate::transcripts::locate::Homes::from_env(),
        observer,
    }
}

fn resumable() -> Filter {
    Filter {
        resumable: true,
        ..Filter::default()
    }
}

/// Config `default_backend`, then $CLINVK_BACKEND, then claude.
fn default_backend(settings: &Settings) -> Result<Backend> {
    if let Some(b) = settings.default_backend {
        return Ok(b);
    }
    match std::env::var("CLINVK_BACKEND") {
        Ok(text) if !text.is_empty() => text
            .parse()
            .map_err(|e: Error| Error::usage(format!("CLINVK_BACKEND: {e}"))),
        _ => Ok(Backend::Claude),
    }
}

/// Run the prompt (`store` is None only for an ephemeral run) and print the outcome.
fn execute(
    store: Option<&Store>,
    settings: &Settings,
    target: Target,
    prompt: String,
    common: RunOptions,
) -> Result<i32> {
    let request = Request {
        target,
        prompt,
        model: common.model,
        tags: common.tags,
        timeout: common.timeout.map_or(settings.run_timeout, |d| d.0),
    };
    let report = runner(store, settings, &output::RetryLine::new()).run(&request)?;
    finish(&report, common.json)
}

/// The most recently used session matching `filter`.
fn last(store: &Store, filter: Filter, scope: &str) -> Result<String> {
    let backend = filter.backend;
    let query = ListQuery {
        filter,
        limit: Some(1),
        offset: 0,
    };
    match store.list(&query)?.sessions.into_iter().next() {
        Some(s) => Ok(s.id.to_string()),
        None => Err(nothing_to_resume(backend, scope)),
    }
}

fn nothing_to_resume(backend: Option<Backend>, scope: &str) -> Error {
    let what = backend.map_or(String::new(), |b| format!(" {b}"));
    Error::NotResumable {
        id: "(none)".into(),
        reason: format!(
            "there is no resumable{what} session{scope} (one with a backend_session_id); start one with `clinvk \"prompt\"`"
        ),
    }
}

/// The picker: recent resumable sessions, fuzzy-filtered, drawn on stderr. It needs a terminal
/// to read keys from; without one it refuses rather than wait for input that never comes.
fn pick(store: &Store, filter: Filter, scope: &str) -> Result<Option<String>> {
    if !(std::io::stdin().is_terminal() && std::io::stderr().is_terminal()) {
        return Err(Error::usage(
            "the session picker needs a terminal: give a session id, or use --last (`clinvk sessions list` shows the ids)",
        ));
    }
    let backend = filter.backend;
    let query = ListQuery {
        filter,
        limit: Some(PICKER_ROWS),
        offset: 0,
    };
    let sessions = store.list(&query)?.sessions;
    if sessions.is_empty() {
        return Err(nothing_to_resume(backend, scope));
    }
    let now = clock::now()?;
    let items: Vec<String> = sessions
        .iter()
        .map(|s| picker_row(s.id.as_str(), s.backend, s.last_used_at, &s.prompt, now))
        .collect();
    let term = dialoguer::console::Term::stderr();
    let choice = dialoguer::FuzzySelect::new()
        .with_prompt("Resume which session? (type to filter, Enter to choose, Esc to cancel)")
        .items(&items)
        .default(0)
        .max_length(15)
        .interact_on_opt(&term)
        .map_err(|e| Error::usage(format!("the session picker failed: {e}")))?;
    Ok(choice.map(|i| sessions[i].id.to_string()))
}

/// How many recent sessions the picker offers.
const PICKER_ROWS: u64 = 500;

fn picker_row(
    id: &str,
    backend: Backend,
    last_used: DateTime<Utc>,
    prompt: &str,
    now: DateTime<Utc>,
) -> String {
    format!(
        "{id:<10} {backend:<6}  {:<15} {}",
        relative(last_used, now),
        title(prompt, 70)
    )
}

/// The prompt: the argument, or stdin for `-` (or no argument with stdin not a terminal). With
/// `ask`, a terminal without an argument is asked for it.
fn read_prompt(given: Option<String>, ask: bool) -> Result<String> {
    let stdin_is_terminal = std::io::stdin().is_terminal();
    let text = match given.as_deref() {
        Some("-") => read_stdin()?,
        Some(text) => text.to_string(),
        None if !stdin_is_terminal => read_stdin()?,
        None if ask && std::io::stderr().is_terminal() => dialoguer::Input::<String>::new()
            .with_prompt("Prompt")
            .interact_text_on(&dialoguer::console::Term::stderr())
            .map_err(|e| Error::usage(format!("could not read the prompt: {e}")))?,
        None => {
            return Err(Error::usage(
                "no prompt: give it as an argument (`clinvk \"fix the bug\"`) or on stdin (`clinvk - < prompt.txt`)",
            ))
        }
    };
    if text.trim().is_empty() {
        return Err(Error::usage(
            "the prompt is empty: give it as an argument or on stdin",
        ));
    }
    Ok(text)
}

fn read_stdin() -> Result<String> {
    let mut bytes = Vec::new();
    std::io::stdin()
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io("<stdin>", e))?;
    String::from_utf8(bytes)
        .map_err(|_| Error::usage("the prompt on stdin is not UTF-8 text"))
        .map(|t| t.trim_end_matches(['\n', '\r']).to_string())
}

/// `--json` output of a run: one object, stable field names.
#[derive(Serialize)]
struct RunJson<'a> {
    response: &'a str,
    session_id: Option<&'a str>,
    parent_id: Option<&'a str>,
    backend: &'a str,
    backend_session_id: Option<&'a str>,
    model: Option<&'a str>,
    status: &'a str,
    usage: Option<UsageJson>,
    cost_usd: Option<f64>,
    duration_seconds: f64,
    exit_code: Option<i32>,
    error: Option<&'a str>,
}

#[derive(Serialize)]
struct UsageJson {
    input: u64,
    output: u64,
    cached: u64,
    cache_write: u64,
    reasoning: u64,
    total: u64,
}

fn finish(report: &Report, json: bool) -> Result<i32> {
    for warning in &report.warnings {
        output::warning(warning);
    }
    let session = report.session.as_ref();
    let status = match session {
        Some(s) => s.status,
        None if report.error().is_some() => Status::Error,
        None => Status::Completed,
    };
    // The run's exit code stands even when stdout was closed early.
    if json {
        output::unless_closed(print_json(&RunJson {
            response: &report.outcome.text,
            session_id: session.map(|s| s.id.as_str()),
            parent_id: session
                .and_then(|s| s.parent_id.as_ref())
                .map(|p| p.as_str()),
            backend: report.backend.as_str(),
            backend_session_id: session.map_or(report.outcome.session_id.as_deref(), |s| {
                s.backend_session_id.as_deref()
            }),
            model: session
                .and_then(|s| s.model.as_deref())
                .or(report.outcome.model.as_deref()),
            status: status.as_str(),
            usage: report.usage.map(|u| UsageJson {
                input: u.input,
                output: u.output,
                cached: u.cached,
                cache_write: u.cache_write,
                reasoning: u.reasoning,
                total: u.total(),
            }),
            cost_usd: report.outcome.cost_usd,
            duration_seconds: crate::run::round_ms(report.duration),
            exit_code: report.backend_exit_code,
            error: report.error(),
        }))?;
    } else if report.error().is_none() {
        let text = &report.outcome.text;
        output::unless_closed(if text.ends_with('\n') || text.is_empty() {
            print(text)
        } else {
            print(&format!("{text}\n"))
        })?;
    }
    let recorded = match session {
        Some(s) => format!("session {} ({})", s.id, s.status),
        None => "not recorded".into(),
    };
    if let Some(error) = report.error() {
        // The stored message names the backend; the line already does.
        let error = error
            .strip_prefix(&format!("{}: ", report.backend))
            .unwrap_or(error);
        output::message(&format!(
            "clinvk: {} failed: {error} [{recorded}]",
            report.backend
        ));
    } else if std::io::stderr().is_terminal() && !json {
        // A footer for people; scripts read --json.
        let tokens = report
            .usage
            .map(|u| format!(" · {} tokens", thousands(u.total())))
            .unwrap_or_default();
        let resume = session
            .filter(|s| s.status == Status::Active)
            .map(|s| format!(" · continue with `clinvk resume {} \"...\"`", s.id))
            .unwrap_or_default();
        output::message(&format!(
            "[{} · {recorded}{tokens}{resume}]",
            report.backend
        ));
    }
    Ok(report.exit_code())
}
