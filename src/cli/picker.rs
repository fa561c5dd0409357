//! The session picker of `clinvk resume` (no id, or `-i`): recent resumable sessions,
//! fuzzy-filtered, drawn on stderr. It needs a terminal to read keys from; without one it
//! refuses rather than wait for input that never comes.

use std::io::IsTerminal;

use chrono::{DateTime, Utc};

use super::render::{relative, title};
use crate::clock;
use crate::domain::Backend;
use crate::error::{Error, Result};
use crate::store::{ListQuery, Store};

/// The picker: recent resumable sessions, fuzzy-filtered, drawn on stderr. It needs a terminal
/// to read keys from; without one it refuses rather than wait for input that never comes.
pub fn pick(store: &Store, query: ListQuery, scope: &str) -> Result<Option<String>> {
    if !(std::io::stdin().is_terminal() && std::io::stderr().is_terminal()) {
        return Err(Error::usage(
            "the session picker needs a terminal: give a session id, or use --last (`clinvk sessions list` shows the ids)",
        ));
    }
    let backend = query.filter.backend;
    let query = ListQuery {
        limit: Some(PICKER_ROWS),
        ..query
    };
    let sessions = store.list(&query)?.sessions;
    if sessions.is_empty() {
        return Err(super::running::nothing_to_resume(backend, scope));
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
