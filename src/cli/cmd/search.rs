//! `clinvk sessions search`: the sessions in which something was said, the most relevant
//! first, each with a snippet of the message that matches best.

use chrono::{DateTime, Utc};
use clap::Args;
use serde::Serialize;

use crate::cli::args::{LastUsedArgs, SessionFilterArgs};
use crate::cli::output::{self, json_rows, print, terminal_width, AsJson};
use crate::cli::render::{self, JsonRow};
use crate::cli::Context;
use crate::error::{exit, Error, Result};
use crate::store::{ListQuery, SearchHit, SearchQuery, SearchTerms, Snippet};

/// How many sessions a search shows unless told (`-n`).
pub const DEFAULT_LIMIT: u64 = 20;

#[derive(Debug, Args)]
pub struct SearchArgs {
    /// Words that must all have been said in the session (case-insensitive substrings, any
    /// script); an argument with spaces, or text in "double quotes", is one phrase
    #[arg(value_name = "QUERY", required = true, num_args = 1..)]
    pub query: Vec<String>,
    #[command(flatten)]
    pub select: SessionFilterArgs,
    #[command(flatten)]
    pub last_used: LastUsedArgs,
    /// Show at most N sessions
    #[arg(long, short = 'n', value_name = "N", default_value_t = DEFAULT_LIMIT)]
    pub limit: u64,
    /// Print a JSON array (each row with its snippet and score) instead of a table
    #[arg(long, conflicts_with = "ndjson")]
    pub json: bool,
    /// Print one JSON object per line (as `--json`'s rows) instead of a table
    #[arg(long)]
    pub ndjson: bool,
}

impl SearchArgs {
    /// The typed query these arguments mean, or a usage error.
    pub fn to_query(&self, now: DateTime<Utc>) -> Result<SearchQuery> {
        Ok(SearchQuery {
            terms: terms_of(&self.query)?,
            select: ListQuery {
                filter: self.select.to_filter()?,
                last_used: self.last_used.to_range(now)?,
                limit: Some(self.limit),
                ..ListQuery::default()
            },
        })
    }
}

/// The search terms of the command line's arguments: an argument the shell kept whole with
/// spaces in it (`"token bucket"`) is a phrase; others are read for words and `"phrases"`.
pub fn terms_of(args: &[String]) -> Result<SearchTerms> {
    let text = args
        .iter()
        .map(|a| {
            if a.contains(char::is_whitespace) && !a.contains('"') {
                format!("\"{a}\"")
            } else {
                a.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(" ");
    SearchTerms::parse(&text).ok_or_else(|| {
        Error::usage("nothing to search for: give a word or a \"phrase\" (e.g. clinvk sessions search retry)")
    })
}

pub fn run(ctx: &Context, args: &SearchArgs, now: DateTime<Utc>) -> Result<i32> {
    let query = args.to_query(now)?;
    let hits = ctx.store()?.search(&query)?;
    if args.json || args.ndjson {
        json_rows(args.ndjson, |emit| hits.iter().try_for_each(emit))?;
    } else if hits.is_empty() {
        output::message("No sessions found.");
    } else {
        let bold = output::color_on_stdout();
        print(&render_hits(&hits, now, terminal_width(), bold))?;
    }
    Ok(exit::OK)
}

/// One `sessions search --json` row: the listing's fields, and the search's.
#[derive(Serialize)]
pub struct JsonHit<'a> {
    #[serde(flatten)]
    row: JsonRow<'a>,
    score: u32,
    snippet: &'a str,
    /// Who said the snippet's message: `user` or `assistant`.
    snippet_role: &'static str,
}

impl AsJson for SearchHit {
    type Json<'a> = JsonHit<'a>;
    fn as_json(&self) -> JsonHit<'_> {
        JsonHit {
            row: JsonRow(&self.session),
            score: self.score,
            snippet: &self.snippet.text,
            snippet_role: self.snippet.role.as_str(),
        }
    }
}

/// The hits as rows (id, backend, last used, score, title), each with its snippet below.
pub fn render_hits(
    hits: &[SearchHit],
    now: DateTime<Utc>,
    width: Option<usize>,
    bold: bool,
) -> String {
    let rows: Vec<[String; 4]> = hits
        .iter()
        .map(|h| {
            [
                h.session.id.to_string(),
                h.session.backend.to_string(),
                render::relative(h.session.last_used_at, now),
                h.score.to_string(),
            ]
        })
        .collect();
    let header = ["ID", "BACKEND", "LAST USED", "SCORE"];
    let widths: Vec<usize> = (0..4)
        .map(|c| {
            rows.iter()
                .map(|r| r[c].len())
                .chain([header[c].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let fixed: usize = widths.iter().map(|w| w + 2).sum();
    let title_width = width.map_or(100, |w| w.saturating_sub(fixed).clamp(20, 200));
    let line = |cells: [&str; 4], title: &str| {
        let mut out = String::new();
        for (c, cell) in cells.iter().enumerate() {
            // The score is a number: right-aligned.
            if c == 3 {
                out.push_str(&format!("{cell:>w$}  ", w = widths[c]));
            } else {
                out.push_str(&format!("{cell:<w$}  ", w = widths[c]));
            }
        }
        out.push_str(title);
        out.trim_end().to_string() + "\n"
    };
    let mut out = line(header, "TITLE/PROMPT");
    for (h, r) in hits.iter().zip(&rows) {
        let cells = [r[0].as_str(), &r[1], &r[2], &r[3]];
        out.push_str(&line(cells, &render::title(&h.session.prompt, title_width)));
        out.push_str(&format!(
            "    {}: {}\n",
            h.snippet.role.as_str(),
            marked(&h.snippet, bold)
        ));
    }
    out
}

/// The snippet's text, escaped for a terminal, with its matches in bold when `bold`.
pub fn marked(s: &Snippet, bold: bool) -> String {
    if !bold {
        return output::escape_controls(&s.text);
    }
    let mut out = String::new();
    let mut at = 0;
    for &(start, end) in &s.marks {
        out.push_str(&output::escape_controls(&s.text[at..start]));
        out.push_str("\x1b[1m");
        out.push_str(&output::escape_controls(&s.text[start..end]));
        out.push_str("\x1b[0m");
        at = end;
    }
    out.push_str(&output::escape_controls(&s.text[at..]));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_as_terms() {
        let terms = |args: &[&str]| {
            let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
            terms_of(&args).map(|t| t.terms().to_vec())
        };
        assert_eq!(terms(&["retry", "bug"]).unwrap(), ["retry", "bug"]);
        // The shell kept it whole: a phrase.
        assert_eq!(terms(&["token  bucket"]).unwrap(), ["token bucket"]);
        assert_eq!(
            terms(&[r#"retry "token bucket" again"#]).unwrap(),
            ["retry", "token bucket", "again"]
        );
        assert_eq!(terms(&["x", "x"]).unwrap(), ["x"]);
        assert!(terms(&["  ", "\"\""]).is_err());
    }
}
