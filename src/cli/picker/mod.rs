//! The session picker of `clinvk resume` (no id, or `-i`) and `clinvk sessions pick`: recent
//! sessions, narrowed as one types by the same search as `sessions search`, with a preview of
//! the selected one. Drawn on stderr (stdout stays free for `sessions pick`'s answer:
//! `clinvk sessions show $(clinvk sessions pick)`), with ratatui on crossterm. It needs a
//! terminal to read keys from and draw on; without one it refuses at once rather than wait.
//!
//! - `state.rs`: the query, the rows, the cursor, and what each key does (pure);
//! - `view.rs`: the screen, from the state;
//! - `screen.rs`: the terminal while the picker is open, put back however it ends.

mod screen;
mod state;
mod view;

use std::collections::HashMap;
use std::io::IsTerminal;

use chrono::{DateTime, Utc};
use ratatui::crossterm::event::{self, Event};

use super::render::title;
use crate::clock;
use crate::error::{Error, Result};
use crate::store::{ListQuery, SearchQuery, SearchTerms, SessionId, Store};
use screen::{terminal_error, Screen, Term};
use state::{Action, Row, State};
use view::Preview;

/// How many recent sessions the picker offers without a query, and with one.
const PICKER_ROWS: u64 = 500;
const SEARCH_ROWS: u64 = 200;
/// Lines of a conversation the preview shows.
const PREVIEW_LINES: usize = 12;

/// What the picker is for: the question on its first line, what Enter does.
pub struct Purpose<'a> {
    pub prompt: &'a str,
    pub enter: &'a str,
}

/// The picker needs a terminal to read keys from and draw on (stdin and stderr): without one,
/// this says so and what to do instead (`instead`), at once, before anything else is done.
pub fn require_terminal(instead: &str) -> Result<()> {
    if std::io::stdin().is_terminal() && std::io::stderr().is_terminal() {
        Ok(())
    } else {
        Err(Error::usage(format!(
            "the session picker needs a terminal: {instead}"
        )))
    }
}

/// Pick one of the sessions `query` selects: Some(id), or None when cancelled (Esc, Ctrl-C).
/// `none` is the error when there is nothing to pick from. (The caller has checked for a
/// terminal with `require_terminal`.)
pub fn pick(
    store: &Store,
    query: ListQuery,
    purpose: Purpose<'_>,
    none: impl FnOnce() -> Error,
) -> Result<Option<String>> {
    let now = clock::now()?;
    let mut picker = Picker {
        store,
        query,
        now,
        state: State::default(),
        previews: HashMap::new(),
        trouble: None,
    };
    picker.search()?;
    if picker.state.rows.is_empty() {
        return Err(none());
    }
    let mut screen = Screen::open()?;
    let outcome = picker.run(&mut screen.terminal, &purpose);
    drop(screen);
    outcome
}

struct Picker<'s> {
    store: &'s Store,
    query: ListQuery,
    now: DateTime<Utc>,
    state: State,
    previews: HashMap<String, Preview>,
    /// What went wrong with the last search (shown instead of the keys; the rows stay).
    trouble: Option<String>,
}

impl Picker<'_> {
    fn run(&mut self, terminal: &mut Term, purpose: &Purpose<'_>) -> Result<Option<String>> {
        let mut pending: Option<Event> = None;
        // Drawn again only when a key or a resize changed something.
        let (mut stale, mut page) = (true, 10);
        loop {
            if stale {
                if let Err(e) = self.load_preview() {
                    self.trouble = Some(e.to_string());
                }
                let preview = self.state.current().and_then(|r| self.previews.get(&r.id));
                let state = &mut self.state;
                let trouble = self.trouble.as_deref();
                let frame = terminal
                    .draw(|f| view::draw(f, state, preview, purpose, trouble, self.now))
                    .map_err(terminal_error)?;
                page = view::list_height(view::layout(frame.area).1);
            }
            let event = match pending.take() {
                Some(event) => event,
                None => event::read().map_err(terminal_error)?,
            };
            let action = self.on(&event, page);
            stale = action != Action::Nothing;
            match action {
                Action::Nothing | Action::Redraw => {}
                Action::Search => {
                    // Typed ahead: one search for all of it; a key that is not typing waits
                    // for the rows of what was typed before it.
                    while event::poll(std::time::Duration::ZERO).map_err(terminal_error)? {
                        let next = event::read().map_err(terminal_error)?;
                        if !typing(&next) {
                            pending = Some(next);
                            break;
                        }
                        self.on(&next, page);
                    }
                    // A search that fails (the store busy, say) leaves the rows as they were.
                    self.trouble = self.search().err().map(|e| e.to_string());
                }
                Action::Resized => terminal.autoresize().map_err(terminal_error)?,
                Action::Choose(id) => return Ok(Some(id)),
                Action::Cancel => return Ok(None),
            }
        }
    }

    /// What `event` does to the state.
    fn on(&mut self, event: &Event, page: usize) -> Action {
        match event {
            Event::Key(key) => self.state.key(*key, page),
            Event::Paste(text) => self.state.paste(text),
            // Drawn again at the new size by the next draw.
            Event::Resize(..) => Action::Resized,
            _ => Action::Nothing,
        }
    }

    /// The rows for the query as typed: the most recent sessions, or the search's.
    fn search(&mut self) -> Result<()> {
        let rows = match SearchTerms::parse(&self.state.query) {
            None => self
                .store
                .list(&ListQuery {
                    limit: Some(PICKER_ROWS),
                    ..self.query.clone()
                })?
                .sessions
                .into_iter()
                .map(|s| Row {
                    id: s.id.to_string(),
                    backend: s.backend,
                    last_used: s.last_used_at,
                    title: title(&s.prompt, usize::MAX),
                    snippet: None,
                })
                .collect(),
            Some(terms) => self
                .store
                .search(&SearchQuery {
                    terms,
                    select: ListQuery {
                        limit: Some(SEARCH_ROWS),
                        ..self.query.clone()
                    },
                })?
                .into_iter()
                .map(|h| Row {
                    id: h.session.id.to_string(),
                    backend: h.session.backend,
                    last_used: h.session.last_used_at,
                    title: title(&h.session.prompt, usize::MAX),
                    snippet: Some(h.snippet),
                })
                .collect(),
        };
        self.state.set_rows(rows);
        self.previews.clear();
        Ok(())
    }

    /// The selected session's preview, read once per query.
    fn load_preview(&mut self) -> Result<()> {
        let Some(row) = self.state.current() else {
            return Ok(());
        };
        if self.previews.contains_key(&row.id) {
            return Ok(());
        }
        let id = SessionId::parse(&row.id)?;
        let terms: Vec<String> = SearchTerms::parse(&self.state.query)
            .map(|t| t.terms().to_vec())
            .unwrap_or_default();
        let preview = match self.store.get(id.as_str()) {
            Ok(session) => {
                let said = self.store.said_in(&id, &terms, PREVIEW_LINES)?;
                Preview::of(&session, &said, !terms.is_empty(), self.now)
            }
            // Deleted or broken since it was listed: nothing to show, nothing to stop for.
            Err(_) => Preview::default(),
        };
        self.previews.insert(row.id.clone(), preview);
        Ok(())
    }
}

/// Whether `event` only edits the query (what can be taken in before one search).
fn typing(event: &Event) -> bool {
    match event {
        Event::Paste(_) => true,
        Event::Key(key) => state::edits_query(key),
        _ => false,
    }
}
