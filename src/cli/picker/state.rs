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
    /// The terminal changed size.
    Resized,
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
            KeyCode::Char('c') | KeyCode::Char('d') if ctrl && !alt(&key) => return Action::Cancel,
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
            _ if edits_query(&key) => return self.edit(key),
            _ => return Action::Nothing,
        }
        if self.selected == before {
            Action::Nothing
        } else {
            Action::Redraw
        }
    }

    fn edit(&mut self, key: KeyEvent) -> Action {
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL) && !alt(&key);
        let changed = match key.code {
            // (Ctrl-H is what many terminals send for Backspace.)
            KeyCode::Backspace => self.query.pop().is_some(),
            KeyCode::Char('h') if ctrl => self.query.pop().is_some(),
            KeyCode::Char('u') if ctrl => !std::mem::take(&mut self.query).is_empty(),
            KeyCode::Char(c) => {
                self.query.push(c);
                true
            }
            _ => false,
        };
        if changed {
            Action::Search
        } else {
            Action::Nothing
        }
    }

    /// Pasted text, into the query (on one line).
    pub fn paste(&mut self, text: &str) -> Action {
        let text: String = text
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        if text.is_empty() {
            return Action::Nothing;
        }
        self.query.push_str(&text);
        Action::Search
    }
}

fn alt(key: &KeyEvent) -> bool {
    key.modifiers.contains(KeyModifiers::ALT)
}

/// Whether `key` edits the query: a character typed (AltGr's, which come as Ctrl+Alt, too;
/// not Alt+letter, nor other control keys), Backspace, Ctrl-H, Ctrl-U.
pub fn edits_query(key: &KeyEvent) -> bool {
    if key.kind == KeyEventKind::Release {
        return false;
    }
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    match key.code {
        KeyCode::Backspace => true,
        KeyCode::Char('h') | KeyCode::Char('u') if ctrl && !alt(key) => true,
        KeyCode::Char(c) => !c.is_control() && ctrl == alt(key),
        _ => false,
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
        // Ctrl-H is Backspace; Alt+letter types nothing; AltGr (Ctrl+Alt) types its character.
        s.key(key(KeyCode::Char('h')), 10);
        assert_eq!(s.query, "h");
        assert_eq!(s.key(ctrl('h'), 10), Action::Search);
        assert_eq!(s.query, "");
        let alt_x = KeyEvent::new(KeyCode::Char('x'), KeyModifiers::ALT);
        assert_eq!(s.key(alt_x, 10), Action::Nothing);
        let alt_gr = KeyEvent::new(
            KeyCode::Char('@'),
            KeyModifiers::CONTROL | KeyModifiers::ALT,
        );
        assert_eq!(s.key(alt_gr, 10), Action::Search);
        assert_eq!(s.query, "@");
        // A paste, on one line.
        assert_eq!(s.paste("token\nbucket"), Action::Search);
        assert_eq!(s.query, "@token bucket");
        s.query.clear();
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
