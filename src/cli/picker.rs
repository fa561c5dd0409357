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
    let rows: Vec<_> = sessions
        .iter()
        .map(|s| (s.id.as_str(), s.backend, s.last_used_at, s.prompt.as_str()))
        .collect();
    let items = picker_rows(&rows, now);
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

/// The picker's rows, columns aligned: id, backend, last use, title.
fn picker_rows(rows: &[(&str, Backend, DateTime<Utc>, &str)], now: DateTime<Utc>) -> Vec<String> {
    let width = |cells: &mut dyn Iterator<Item = usize>| cells.max().unwrap_or(0);
    let id_w = width(&mut rows.iter().map(|r| r.0.chars().count()));
    let backend_w = width(&mut rows.iter().map(|r| r.1.as_str().len()));
    let used: Vec<String> = rows.iter().map(|r| relative(r.2, now)).collect();
    let used_w = width(&mut used.iter().map(|u| u.chars().count()));
    rows.iter()
        .zip(&used)
        .map(|((id, backend, _, prompt), used)| {
            format!(
                "{id:<id_w$}  {backend:<backend_w$}  {used:<used_w$}  {}",
                title(prompt, 70)
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A prompt cannot drive the terminal the picker draws on (clear screen, title, bidi).
    #[test]
    fn prompts_are_shown_with_their_controls_escaped() {
        let now: DateTime<Utc> = "2025-01-27T12:00:00Z".parse().unwrap();
        let rows = picker_rows(
            &[("abc", Backend::Codex, now, "a\u{1b}[2J\u{202e}b\u{7}")],
            now,
        );
        assert!(rows[0].ends_with("a\\u{1b}[2J\\u{202e}b\\u{7}"), "{rows:?}");
        assert!(!rows[0].chars().any(|c| c.is_control() || c == '\u{202e}'));
    }

    #[test]
    fn the_columns_line_up() {
        let now: DateTime<Utc> = "2025-01-27T12:00:00Z".parse().unwrap();
        let t = |s: &str| -> DateTime<Utc> { s.parse().unwrap() };
        let rows = picker_rows(
            &[
                ("abc", Backend::Codex, t("2025-01-27T11:59:00Z"), "short"),
                (
                    "a-much-longer-id",
                    Backend::Claude,
                    t("2025-01-20T12:00:00Z"),
                    "second",
                ),
                ("xyz", Backend::Gemini, t("2025-01-27T09:00:00Z"), "third"),
            ],
            now,
        );
        let title_at: Vec<usize> = rows
            .iter()
            .zip(["short", "second", "third"])
            .map(|(r, title)| r.find(title).unwrap())
            .collect();
        assert!(title_at.iter().all(|at| *at == title_at[0]), "{rows:#?}");
        let backend_at: Vec<usize> = rows
            .iter()
            .zip(["codex", "claude", "gemini"])
            .map(|(r, b)| r.find(b).unwrap())
            .collect();
        assert!(
            backend_at.iter().all(|at| *at == backend_at[0]),
            "{rows:#?}"
        );
    }
}
