//! What the picker shows and where its cursor is, and what each key does to that: no terminal,
//! no store (tested without either).

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use crate::domain::Backend;
use crate::store::Snippet;

/// One session in the list.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub id: String,
    pub backend: Backend,
    pub last_used: chrono::DateTime<chrono::Utc>,
    pub title: String,
    /// With a query: the snippet of the message that matches best.
    pub snippet: Option<Snippet>,
}

/// What a key asks of the picker's loop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Nothing to do (a key the picker does not use).
    Nothing,
    /// Draw again (the cursor moved).
    Redraw,
    /// The query changed: look again, then draw.
    Search,
    /// This session.
    Choose(String),
    /// Esc or Ctrl-C.
    Cancel,
}

#[derive(Debug, Default)]
pub struct State {
    pub query: String,
    pub rows: Vec<Row>,
    /// The row under the cursor.
    pub selected: usize,
    /// The first row on screen (the selected one is kept in view).
    pub offset: usize,
}

impl State {
    /// New rows for the query: the cursor back on the first.
    pub fn set_rows(&mut self, rows: Vec<Row>) {
        self.rows = rows;
        self.selected = 0;
        self.offset = 0;
    }

    pub fn current(&self) -> Option<&Row> {
        self.rows.get(self.selected)
    }

    /// Keep the selected row among the `height` rows on screen.
    pub fn scroll_into_view(&mut self, height: usize) {
        let height = height.max(1);
        if self.selected < self.offset {
            self.offset = self.selected;
        } else if self.selected >= self.offset + height {
            self.offset = self.selected + 1 - height;
        }
    }

    /// What `key` does; `page` is how many rows a page moves.
    pub fn key(&mut self, key: KeyEvent, page: usize) -> Action {
        if key.kind == KeyEventKind::Release {
            return Action::Nothing;
        }
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        let last = self.rows.len().saturating_sub(1);
        let before = self.selected;
        match key.code {
            KeyCode::Esc => return Action::Cancel,
            KeyCode::Char('c') | KeyCode::Char('d') if ctrl => return Action::Cancel,
            KeyCode::Enter => {
                return match self.current() {
                    Some(row) => Action::Choose(row.id.clone()),
                    None => Action::Nothing,
                }
            }
            KeyCode::Up => self.selected = self.selected.saturating_sub(1),
            KeyCode::Char('p') if ctrl => self.selected = self.selected.saturating_sub(1),
            KeyCode::Down => self.selected = (self.selected + 1).min(last),
            KeyCode::Char('n') if ctrl => self.selected = (self.selected + 1).min(last),
            KeyCode::PageUp => self.selected = self.selected.saturating_sub(page.max(1)),
            KeyCode::PageDown => self.selected = (self.selected + page.max(1)).min(last),
            KeyCode::Home => self.selected = 0,
            KeyCode::End => self.selected = last,
            KeyCode::Backspace => {
                return if self.query.pop().is_some() {
                    Action::Search
                } else {
                    Action::Nothing
                };
            }
            KeyCode::Char('u') if ctrl => {
                return if self.query.is_empty() {
                    Action::Nothing
                } else {
                    self.query.clear();
                    Action::Search
                };
            }
            KeyCode::Char(c) if !ctrl && !c.is_control() => {
                self.query.push(c);
                return Action::Search;
            }
            _ => return Action::Nothing,
        }
        if self.selected == before {
            Action::Nothing
        } else {
            Action::Redraw
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    fn ctrl(c: char) -> KeyEvent {
        KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL)
    }

    fn rows(n: usize) -> Vec<Row> {
        (0..n)
            .map(|i| Row {
                id: format!("s{i}"),
                backend: Backend::Claude,
                last_used: chrono::DateTime::UNIX_EPOCH,
                title: format!("title {i}"),
                snippet: None,
            })
            .collect()
    }

    #[test]
    fn keys_move_type_choose_and_cancel() {
        let mut s = State::default();
        s.set_rows(rows(30));
        assert_eq!(s.key(key(KeyCode::Up), 10), Action::Nothing);
        assert_eq!(s.key(key(KeyCode::Down), 10), Action::Redraw);
        assert_eq!(s.key(ctrl('n'), 10), Action::Redraw);
        assert_eq!(s.selected, 2);
        assert_eq!(s.key(key(KeyCode::PageDown), 10), Action::Redraw);
        assert_eq!(s.selected, 12);
        assert_eq!(s.key(key(KeyCode::End), 10), Action::Redraw);
        assert_eq!(s.key(key(KeyCode::Down), 10), Action::Nothing);
        assert_eq!(s.selected, 29);
        assert_eq!(s.key(key(KeyCode::Home), 10), Action::Redraw);
        assert_eq!(s.key(key(KeyCode::Char('x')), 10), Action::Search);
        assert_eq!(s.key(key(KeyCode::Char('y')), 10), Action::Search);
        assert_eq!(s.query, "xy");
        assert_eq!(s.key(key(KeyCode::Backspace), 10), Action::Search);
        assert_eq!(s.key(ctrl('u'), 10), Action::Search);
        assert_eq!(s.key(key(KeyCode::Backspace), 10), Action::Nothing);
        assert_eq!(s.query, "");
        s.selected = 3;
        assert_eq!(s.key(key(KeyCode::Enter), 10), Action::Choose("s3".into()));
        assert_eq!(s.key(key(KeyCode::Esc), 10), Action::Cancel);
        assert_eq!(s.key(ctrl('c'), 10), Action::Cancel);
        s.set_rows(Vec::new());
        assert_eq!(s.key(key(KeyCode::Enter), 10), Action::Nothing);
        assert_eq!(s.key(key(KeyCode::Down), 10), Action::Nothing);
    }

    #[test]
    fn the_selected_row_stays_in_view() {
        let mut s = State::default();
        s.set_rows(rows(30));
        s.selected = 15;
        s.scroll_into_view(10);
        assert_eq!(s.offset, 6);
        s.selected = 2;
        s.scroll_into_view(10);
        assert_eq!(s.offset, 2);
        s.selected = 11;
        s.scroll_into_view(10);
        assert_eq!(s.offset, 2);
    }
}
