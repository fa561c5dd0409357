//! What every command that runs a prompt shares: the runner with the user's settings, the
//! prompt read from the argument or stdin, the last resumable session, and printing the outcome
//! (the response on stdout, clinvk's own lines on stderr, or one JSON object).

use std::io::{IsTerminal, Read};

use serde::Serialize;

use super::args::RunOptions;
use super::output::{self, print, print_json};
use super::render::thousands;
use crate::config::Settings;
use crate::domain::{Backend, Status};
use crate::error::{Error, Result};
use crate::run::{Report, Request, Runner, Target};
use crate::store::{Filter, ListQuery, Store};

pub fn runner<'a>(
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

/// Resumable sessions (with a backend session id), of `backend` if given, in `workdir` if
/// given.
pub fn resumable(backend: Option<Backend>, workdir: Option<String>) -> ListQuery {
    ListQuery {
        filter: Filter {
            backend,
            workdir,
            ..Filter::default()
        },
        resumable: true,
        ..ListQuery::default()
    }
}

/// Config `default_backend`, then $CLINVK_BACKEND, then claude.
pub fn default_backend(settings: &Settings) -> Result<Backend> {
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

/// Run the prompt and print the outcome.
pub fn execute(
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

/// The most recently used session `query` finds.
pub fn last(store: &Store, query: ListQuery, scope: &str) -> Result<String> {
    let backend = query.filter.backend;
    let query = ListQuery {
        limit: Some(1),
        ..query
    };
    match store.list(&query)?.sessions.into_iter().next() {
        Some(s) => Ok(s.id.to_string()),
        None => Err(nothing_to_resume(backend, scope)),
    }
}

pub fn nothing_to_resume(backend: Option<Backend>, scope: &str) -> Error {
    let what = backend.map_or(String::new(), |b| format!(" {b}"));
    Error::NothingToResume(format!(
        "there is no resumable{what} session{scope} (one with a backend_session_id): start one with `clinvk \"prompt\"`"
    ))
}

/// The prompt: the argument, or stdin for `-` (or no argument with stdin not a terminal). With
/// `ask`, a terminal without an argument is asked for it.
pub fn read_prompt(given: Option<String>, ask: bool) -> Result<String> {
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
