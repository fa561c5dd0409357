//! Drawing the picker: the query line, the sessions (columns aligned, the selected row in
//! reverse video), a preview of the selected one (its details and the lines of its
//! conversation that match), and a line of keys. Beside the list on a wide terminal, below it
//! on a narrow one (80x24 included). Every text from a session is escaped first.

use chrono::{DateTime, Utc};
use ratatui::layout::{Constraint, Layout, Position, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row as TableRow, Table, Wrap};
use ratatui::Frame;

use super::state::State;
use super::Purpose;
use crate::cli::output::escape_controls;
use crate::cli::render::{relative, title};
use crate::store::{Session, Snippet};

/// From this width on, the preview goes beside the list.
const SIDE_BY_SIDE: u16 = 120;

/// What the preview pane shows of one session.
#[derive(Debug, Clone, Default)]
pub struct Preview {
    pub lines: Vec<Line<'static>>,
}

impl Preview {
    /// The session's details, then `said` (the lines that match the query, or without one
    /// the last things said).
    pub fn of(session: &Session, said: &[Snippet], matching: bool, now: DateTime<Utc>) -> Preview {
        let dim = Style::default().add_modifier(Modifier::DIM);
        let field = |name: &str, value: String| {
            Line::from(vec![
                Span::styled(format!("{name:<10}"), dim),
                Span::raw(value),
            ])
        };
        let model = session.model.as_deref().unwrap_or("-");
        let mut lines = vec![
            Line::from(vec![
                Span::styled(
                    session.id.to_string(),
                    Style::default().add_modifier(Modifier::BOLD),
                ),
                Span::raw(format!(
                    "  {} {} {}",
                    session.backend,
                    session.status,
                    escape_controls(model)
                )),
            ]),
            field(
                "used",
                format!(
                    "{} ({}), {} tokens",
                    relative(session.last_used_at, now),
                    session.last_used_at.format("%Y-%m-%d %H:%M"),
                    session.token_usage.total
                ),
            ),
            field("directory", escape_controls(&session.workdir)),
        ];
        if !session.tags.is_empty() {
            lines.push(field("tags", escape_controls(&session.tags.join(", "))));
        }
        let heading = if matching {
            "Matching lines"
        } else {
            "Last said"
        };
        lines.push(Line::from(Span::styled(heading, dim)));
        if said.is_empty() {
            lines.push(Line::from(Span::styled("(nothing)", dim)));
        }
        for s in said {
            lines.push(snippet_line(s));
        }
        Preview { lines }
    }
}

/// A snippet as "user: text" with its matches in bold.
pub fn snippet_line(s: &Snippet) -> Line<'static> {
    let mut spans = vec![Span::styled(
        format!("{}: ", s.role.as_str()),
        Style::default().add_modifier(Modifier::DIM),
    )];
    let mut at = 0;
    for &(start, end) in &s.marks {
        spans.push(Span::raw(escape_controls(&s.text[at..start])));
        spans.push(Span::styled(
            escape_controls(&s.text[start..end]),
            Style::default().add_modifier(Modifier::BOLD),
        ));
        at = end;
    }
    spans.push(Span::raw(escape_controls(&s.text[at..])));
    Line::from(spans)
}

/// The list's and the preview's places on a screen of `area`.
pub fn layout(area: Rect) -> (Rect, Rect, Rect, Rect) {
    let [query, body, keys] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(3),
        Constraint::Length(1),
    ])
    .areas(area);
    let (list, preview) = if area.width >= SIDE_BY_SIDE {
        let [l, p] = Layout::horizontal([Constraint::Percentage(55), Constraint::Percentage(45)])
            .areas(body);
        (l, p)
    } else {
        let preview_height = (body.height / 2)
            .clamp(6, 16)
            .min(body.height.saturating_sub(3));
        let [l, p] =
            Layout::vertical([Constraint::Min(3), Constraint::Length(preview_height)]).areas(body);
        (l, p)
    };
    (query, list, preview, keys)
}

/// How many session rows the list shows in `list` (its borders and header aside).
pub fn list_height(list: Rect) -> usize {
    usize::from(list.height.saturating_sub(3))
}

pub fn draw(
    frame: &mut Frame,
    state: &mut State,
    preview: Option<&Preview>,
    purpose: &Purpose<'_>,
    trouble: Option<&str>,
    now: DateTime<Utc>,
) {
    let (query_area, list_area, preview_area, keys_area) = layout(frame.area());
    // The query's end stays in view (a long one shows its tail); widths are the terminal's
    // columns (a CJK character takes two).
    let prompt = Span::styled(
        format!("{} ", purpose.prompt),
        Style::default().add_modifier(Modifier::BOLD),
    );
    let room = usize::from(query_area.width).saturating_sub(prompt.width() + 1);
    let typed = escape_controls(&state.query);
    let mut shown = typed.as_str();
    while Span::raw(shown).width() > room {
        let mut chars = shown.chars();
        chars.next();
        shown = chars.as_str();
    }
    let cursor_x = query_area.x + (prompt.width() + Span::raw(shown).width()) as u16;
    frame.render_widget(
        Paragraph::new(Line::from(vec![prompt, Span::raw(shown.to_string())])),
        query_area,
    );
    frame.set_cursor_position(Position::new(
        cursor_x.min(query_area.right().saturating_sub(1)),
        query_area.y,
    ));

    let height = list_height(list_area);
    state.scroll_into_view(height);
    let shown = &state.rows[state.offset.min(state.rows.len())..];
    let shown = &shown[..shown.len().min(height)];
    let used: Vec<String> = shown.iter().map(|r| relative(r.last_used, now)).collect();
    let id_width = shown
        .iter()
        .map(|r| r.id.chars().count())
        .max()
        .unwrap_or(2)
        .clamp(2, 12);
    let used_width = used.iter().map(|u| u.len()).max().unwrap_or(9).max(9);
    let rows: Vec<TableRow> = shown
        .iter()
        .zip(&used)
        .enumerate()
        .map(|(i, (r, used))| {
            let row = TableRow::new(vec![
                // (Cut to its column: the whole id is in the preview.)
                Cell::from(title(&r.id, id_width)),
                Cell::from(r.backend.as_str()),
                Cell::from(used.clone()),
                Cell::from(escape_controls(&r.title)),
            ]);
            if state.offset + i == state.selected {
                row.style(Style::default().add_modifier(Modifier::REVERSED))
            } else {
                row
            }
        })
        .collect();
    let count = if state.rows.is_empty() {
        " no sessions match ".to_string()
    } else {
        format!(" {} of {} ", state.selected + 1, state.rows.len())
    };
    let table = Table::new(
        rows,
        [
            Constraint::Length(id_width as u16),
            Constraint::Length(7),
            Constraint::Length(used_width as u16),
            Constraint::Fill(1),
        ],
    )
    .header(
        TableRow::new(vec!["ID", "BACKEND", "LAST USED", "TITLE/PROMPT"])
            .style(Style::default().add_modifier(Modifier::BOLD)),
    )
    .block(Block::default().borders(Borders::ALL).title(count));
    frame.render_widget(table, list_area);

    let lines = preview.map(|p| p.lines.clone()).unwrap_or_default();
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(Block::default().borders(Borders::ALL).title(" Preview ")),
        preview_area,
    );
    let keys = match trouble {
        Some(why) => Span::styled(
            format!("search failed: {}", escape_controls(why)),
            Style::default().add_modifier(Modifier::BOLD),
        ),
        None => Span::styled(
            format!(
                "type to search  ↑↓ move  Enter {}  Esc cancel",
                purpose.enter
            ),
            Style::default().add_modifier(Modifier::DIM),
        ),
    };
    frame.render_widget(Paragraph::new(keys), keys_area);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::picker::state::Row;
    use crate::domain::Backend;
    use ratatui::backend::TestBackend;
    use ratatui::Terminal;

    fn screen(width: u16, height: u16, state: &mut State) -> Vec<String> {
        let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
        let now: DateTime<Utc> = "2025-01-27T12:00:00Z".parse().unwrap();
        let purpose = Purpose {
            prompt: "Resume:",
            enter: "resume",
        };
        terminal
            .draw(|f| draw(f, state, None, &purpose, None, now))
            .unwrap();
        let buffer = terminal.backend().buffer().clone();
        (0..height)
            .map(|y| {
                (0..width)
                    .map(|x| buffer[(x, y)].symbol().to_string())
                    .collect::<String>()
            })
            .collect()
    }

    fn rows() -> Vec<Row> {
        let t = |s: &str| -> DateTime<Utc> { s.parse().unwrap() };
        vec![
            Row {
                id: "abc".into(),
                backend: Backend::Codex,
                last_used: t("2025-01-27T11:59:00Z"),
                title: "short".into(),
                snippet: None,
            },
            Row {
                id: "0123456789abcdef-long-id".into(),
                backend: Backend::Claude,
                last_used: t("2025-01-20T12:00:00Z"),
                title: "a \u{1b}[2J prompt".into(),
                snippet: None,
            },
        ]
    }

    #[test]
    fn columns_line_up_at_80x24_and_controls_are_escaped() {
        let mut state = State::default();
        state.set_rows(rows());
        let lines = screen(80, 24, &mut state);
        let header = lines
            .iter()
            .position(|l| l.contains("TITLE/PROMPT"))
            .unwrap();
        // (In characters: the borders and the ellipsis take more than a byte.)
        let column = |line: &str, text: &str| line.find(text).map(|b| line[..b].chars().count());
        let title_at = column(&lines[header], "TITLE/PROMPT");
        assert_eq!(column(&lines[header + 1], "short"), title_at, "{lines:#?}");
        assert_eq!(
            column(&lines[header + 2], "a \\u{1b}[2J"),
            title_at,
            "{lines:#?}"
        );
        // The long id cut to its column.
        assert!(lines[header + 2].contains("0123456789a…"), "{lines:#?}");
        assert!(lines.iter().any(|l| l.contains("Preview")));
        assert!(lines[23].contains("Esc cancel"));
        assert!(lines.iter().any(|l| l.contains(" 1 of 2 ")));
    }

    #[test]
    fn the_preview_goes_beside_the_list_when_there_is_room() {
        let mut state = State::default();
        state.set_rows(rows());
        let wide = screen(140, 30, &mut state);
        let header = wide
            .iter()
            .position(|l| l.contains("TITLE/PROMPT"))
            .unwrap();
        assert!(wide[header - 1].contains("Preview"), "{wide:#?}");
        let narrow = screen(80, 24, &mut state);
        let header = narrow
            .iter()
            .position(|l| l.contains("TITLE/PROMPT"))
            .unwrap();
        assert!(!narrow[header - 1].contains("Preview"), "{narrow:#?}");
    }
}
