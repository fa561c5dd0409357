//! Shell completion: the values the shells offer for an argument (session ids with their
//! prompt, tags and hosts with their sessions, config keys, backends), asked of clinvk itself on every
//! tab through clap_complete's dynamic completion (`CLINVK_COMPLETE=<shell> clinvk -- WORDS`,
//! which the script `clinvk completions <shell>` prints sets up).
//!
//! A completer never fails and never waits: it answers from the index as it stands (no rebuild,
//! no catch-up with the CLIs' transcripts) or with nothing.

use std::ffi::OsStr;

use clap_complete::engine::CompletionCandidate;

use crate::store::{Completing, Quiet, Store};

/// The environment variable that turns a run of clinvk into a completion request.
pub const ENV: &str = "CLINVK_COMPLETE";

/// Longest description shown beside a candidate, in characters.
const DESCRIPTION: usize = 60;

/// Session ids starting with what was typed, the most recently used first, described by their
/// first prompt.
pub fn session_ids(current: &OsStr) -> Vec<CompletionCandidate> {
    from_store(Completing::Sessions, current)
}

/// Tags starting with what was typed, the most used first.
pub fn tags(current: &OsStr) -> Vec<CompletionCandidate> {
    from_store(Completing::Tags, current)
}

/// Hosts sessions were started on (`--host`), the most used first.
pub fn hosts(current: &OsStr) -> Vec<CompletionCandidate> {
    from_store(Completing::Hosts, current)
}

/// The keys `config get|set` take.
pub fn config_keys(current: &OsStr) -> Vec<CompletionCandidate> {
    let typed = current.to_string_lossy();
    crate::config::key_names()
        .filter(|k| k.starts_with(typed.as_ref()))
        .map(CompletionCandidate::new)
        .collect()
}

/// The backends (`-b`, `--backend`).
pub fn backends() -> Vec<CompletionCandidate> {
    crate::domain::Backend::ALL
        .iter()
        .map(|b| CompletionCandidate::new(b.as_str()))
        .collect()
}

fn from_store(what: Completing, current: &OsStr) -> Vec<CompletionCandidate> {
    let Some(typed) = current.to_str() else {
        return Vec::new();
    };
    let Ok(paths) = crate::paths::Paths::from_env() else {
        return Vec::new();
    };
    // Completing makes nothing: no store where there is none.
    if !paths.sessions.is_dir() {
        return Vec::new();
    }
    let Ok(store) = Store::open(&paths.sessions, Box::new(Quiet)) else {
        return Vec::new();
    };
    store
        .complete(what, typed)
        .into_iter()
        .map(|(value, about)| {
            let short = crate::cli::render::title(&about, DESCRIPTION);
            let help = (!short.is_empty()).then(|| short.into());
            CompletionCandidate::new(value).help(help)
        })
        .collect()
}
