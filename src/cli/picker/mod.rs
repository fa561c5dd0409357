//! The session picker of `clinvk resume` (no id, or `-i`) and `clinvk sessions pick`: recent
//! sessions, narrowed as one types by the same search as `sessions search`, with a preview of
//! the selected one. Drawn on stderr (stdout stays free for `sessions pick`'s answer:
//! `clinvk sessions show $(clinvk sessions pick)`), with ratatui on crossterm. It needs a
//! terminal to read keys from and draw on; without one it refuses at once rather than wait.
//!
//! - `state.rs`: the query, the rows, the cursor, and what each key does (pure);
//! - `view.rs`: the screen, from the state.

mod state;
mod view;

use std::collections::HashMap;
use std::io::IsTerminal;

use chrono::{DateTime, Utc};
use ratatui::backend::CrosstermBackend;
use ratatui::crossterm::event::{self, Event};
use ratatui::crossterm::{execute, terminal};
use ratatui::Terminal;

use crate::clock;
use crate::error::{Error, Result};
use crate::store::{ListQuery, SearchQuery, SearchTerms, SessionId, Store};
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

/// Pick one of the sessions `query` selects: Some(id), or None when cancelled (Esc, Ctrl-C).
/// `none` is the error when there is nothing to pick from.
pub fn pick(
    store: &Store,
    query: ListQuery,
    purpose: Purpose<'_>,
    none: impl FnOnce() -> Error,
) -> Result<Option<String>> {
    if !(std::io::stdin().is_terminal() && std::io::stderr().is_terminal()) {
        return Err(Error::usage(
            "the session picker needs a terminal: give a session id, or use --last (`clinvk sessions list` shows the ids)",
        ));
    }
    let now = clock::now()?;
    let mut picker = Picker {
        store,
        query,
        now,
        state: State::default(),
        previews: HashMap::new(),
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
}

impl Picker<'_> {
    fn run(
        &mut self,
        terminal: &mut Terminal<CrosstermBackend<std::io::Stderr>>,
        purpose: &Purpose<'_>,
    ) -> Result<Option<String>> {
        loop {
            self.load_preview()?;
            let preview = self.state.current().and_then(|r| self.previews.get(&r.id));
            let state = &mut self.state;
            terminal
                .draw(|f| view::draw(f, state, preview, purpose.prompt, purpose.enter, self.now))
                .map_err(terminal_error)?;
            let page = terminal
                .size()
                .map(|s| view::list_height(view::layout(s.into()).1))
                .unwrap_or(10);
            match event::read().map_err(terminal_error)? {
                Event::Key(key) => match self.state.key(key, page) {
                    Action::Nothing | Action::Redraw => {}
                    Action::Search => self.search()?,
                    Action::Choose(id) => return Ok(Some(id)),
                    Action::Cancel => return Ok(None),
                },
                // Drawn again at the new size by the next draw.
                Event::Resize(..) => terminal.autoresize().map_err(terminal_error)?,
                _ => {}
            }
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
                    title: first_line(&s.prompt),
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
                    title: first_line(&h.session.prompt),
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

/// The terminal in raw mode on the alternate screen, drawn on through stderr; put back as it
/// was when dropped (also on an error or a panic's unwinding).
struct Screen {
    terminal: Terminal<CrosstermBackend<std::io::Stderr>>,
}

impl Screen {
    fn open() -> Result<Screen> {
        terminal::enable_raw_mode().map_err(terminal_error)?;
        // Listen for keys and resizes from now on: a resize before the first read of events
        // would otherwise be lost (crossterm starts watching SIGWINCH at its first poll).
        let _ = event::poll(std::time::Duration::ZERO);
        let entered = execute!(std::io::stderr(), terminal::EnterAlternateScreen);
        let terminal = entered
            .and_then(|()| Terminal::new(CrosstermBackend::new(std::io::stderr())))
            .map_err(|e| {
                let _ = terminal::disable_raw_mode();
                terminal_error(e)
            })?;
        Ok(Screen { terminal })
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        let _ = terminal::disable_raw_mode();
        let _ = execute!(self.terminal.backend_mut(), terminal::LeaveAlternateScreen);
        let _ = self.terminal.show_cursor();
    }
}

fn terminal_error(e: std::io::Error) -> Error {
    Error::io("<terminal>", e)
}

/// The first line of a prompt with text, for a title.
fn first_line(prompt: &str) -> String {
    let line = prompt.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    line.split_whitespace().collect::<Vec<_>>().join(" ")
}
