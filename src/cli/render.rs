//! Tables, relative times and JSON rows. Pure functions of their inputs, so they are unit-tested.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use tabled::builder::Builder;
use tabled::settings::{Padding, Style};

use super::output::escape_controls;
use crate::domain::{Backend, Status};
use crate::store::session::format_time;
use crate::store::{Session, SessionSummary};

/// "5 minutes ago", as the guide shows.
pub fn relative(t: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let secs = (now - t).num_seconds();
    if secs < 60 {
        return "just now".into();
    }
    let (n, unit) = match secs {
        s if s < 3600 => (s / 60, "minute"),
        s if s < 86_400 => (s / 3600, "hour"),
        s if s < 30 * 86_400 => (s / 86_400, "day"),
        s if s < 365 * 86_400 => (s / (30 * 86_400), "month"),
        s => (s / (365 * 86_400), "year"),
    };
    format!("{n} {unit}{} ago", if n == 1 { "" } else { "s" })
}

/// 1234567 -> "1,234,567".
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The first line of a prompt, whitespace folded, control characters escaped, cut to `max`
/// characters.
pub fn title(prompt: &str, max: usize) -> String {
    let line = prompt.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    let folded = escape_controls(&line.split_whitespace().collect::<Vec<_>>().join(" "));
    if folded.chars().count() <= max {
        folded
    } else {
        let mut cut: String = folded.chars().take(max.saturating_sub(1)).collect();
        cut.push('…');
        cut
    }
}

/// A plain table like the guide's: header row, columns separated by two spaces, no borders.
pub fn table(header: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut builder = Builder::default();
    builder.push_record(header.iter().copied());
    for row in rows {
        builder.push_record(row);
    }
    let mut table = builder.build();
    // Style::blank separates columns with one space; one more of padding makes the two.
    table.with(Style::blank()).with(Padding::new(0, 1, 0, 0));
    let mut out = String::new();
    for line in table.to_string().lines() {
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// The session list as the guide shows it. `width`: the terminal's, to fit the prompt column.
pub fn session_table(rows: &[SessionSummary], now: DateTime<Utc>, width: Option<usize>) -> String {
    let widest_id = rows
        .iter()
        .map(|r| r.id.as_str().len())
        .max()
        .unwrap_or(2)
        .max(2);
    // ID, BACKEND, STATUS, LAST USED, TOKENS and their gaps take about this much.
    let fixed = widest_id + 2 + 9 + 11 + 16 + 12;
    let prompt_width = width.map_or(100, |w| w.saturating_sub(fixed).clamp(20, 200));
    let body = rows
        .iter()
        .map(|r| {
            vec![
                r.id.to_string(),
                r.backend.to_string(),
                r.status.to_string(),
                relative(r.last_used_at, now),
                r.token_usage.total.to_string(),
                title(&r.prompt, prompt_width),
            ]
        })
        .collect();
    table(
        &[
            "ID",
            "BACKEND",
            "STATUS",
            "LAST USED",
            "TOKENS",
            "TITLE/PROMPT",
        ],
        body,
    )
}

fn secs(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// `secs`' text, made without allocating (a listing writes three a row, millions of rows).
struct Secs(DateTime<Utc>);

impl Serialize for Secs {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use chrono::{Datelike, Timelike};
        let t = &self.0;
        let year = t.year();
        if !(0..=9999).contains(&year) {
            return serializer.serialize_str(&secs(t));
        }
        let mut text = *b"0000-00-00T00:00:00Z";
        let mut put = |at: usize, width: usize, mut n: u32| {
            for i in (at..at + width).rev() {
                text[i] = b'0' + (n % 10) as u8;
                n /= 10;
            }
        };
        put(0, 4, year as u32);
        put(5, 2, t.month());
        put(8, 2, t.day());
        put(11, 2, t.hour());
        put(14, 2, t.minute());
        put(17, 2, t.second());
        serializer.serialize_str(std::str::from_utf8(&text).expect("digits"))
    }
}

/// One `sessions list --json` row, a view of a summary made only while it is written (a listing
/// of the whole store holds no second copy). The field names are a stable interface: the
/// guide's jq recipes use `id`, `prompt`, `last_used`, `created_at`, `tokens`,
/// `token_usage.total`.
pub struct JsonRow<'a>(pub &'a SessionSummary);

impl Serialize for JsonRow<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Usage {
            input: u64,
            output: u64,
            cached: u64,
            total: u64,
        }
        #[derive(Serialize)]
        struct Row<'a> {
            id: &'a str,
            backend: &'a str,
            status: &'a str,
            model: Option<&'a str>,
            created_at: Secs,
            last_used_at: Secs,
            last_used: Secs,
            workdir: &'a str,
            prompt: &'a str,
            tokens: u64,
            token_usage: Usage,
            tags: &'a [String],
            backend_session_id: Option<&'a str>,
            parent_id: Option<&'a str>,
            origin: &'a str,
            host: Option<&'a str>,
        }
        let r = self.0;
        let u = &r.token_usage;
        Row {
            id: r.id.as_str(),
            backend: r.backend.as_str(),
            status: r.status.as_str(),
            model: r.model.as_deref(),
            created_at: Secs(r.created_at),
            last_used_at: Secs(r.last_used_at),
            last_used: Secs(r.last_used_at),
            workdir: &r.workdir,
            prompt: &r.prompt,
            tokens: u.total,
            token_usage: Usage {
                input: u.input,
                output: u.output,
                cached: u.cached,
                total: u.total,
            },
            tags: &r.tags,
            backend_session_id: r.backend_session_id.as_deref(),
            parent_id: r.parent_id.as_ref().map(|p| p.as_str()),
            origin: r.origin.as_str(),
            host: r.host.as_deref(),
        }
        .serialize(serializer)
    }
}

impl crate::cli::output::AsJson for SessionSummary {
    type Json<'a> = JsonRow<'a>;
    fn as_json(&self) -> JsonRow<'_> {
        JsonRow(self)
    }
}

/// `sessions show` in the guide's layout.
///
/// Every text from the file (model, directory, tags, prompt, ...) has its control and bidi
/// characters escaped: a session file must not be able to drive the terminal it is shown on.
pub fn show(s: &Session, now: DateTime<Utc>) -> String {
    let dash = |v: Option<&str>| v.map_or_else(|| "-".to_string(), escape_controls);
    let mut lines = vec![
        format!("ID:                {}", s.id),
        format!("Backend:           {}", s.backend),
        format!("Model:             {}", dash(s.model.as_deref())),
        format!("Status:            {}", s.status),
        format!("Host:              {}", dash(s.host.as_deref())),
        format!("Created:           {}", format_time(&s.created_at)),
        format!(
            "Last Used:         {} ({})",
            format_time(&s.last_used_at),
            relative(s.last_used_at, now)
        ),
        format!(
            "Working Directory: {}",
            if s.workdir.is_empty() {
                "-".to_string()
            } else {
                escape_controls(&s.workdir)
            }
        ),
        format!(
            "Backend Session:   {}",
            dash(s.backend_session_id.as_deref())
        ),
        resumable_line(s),
        format!("Fork:              {}", fork_meaning(s.backend)),
    ];
    if let Some(parent) = &s.parent_id {
        lines.push(format!("Forked From:       {parent}"));
    }
    if !s.origin.is_clinvk() {
        lines.push(format!(
            "Origin:            imported from {}'s transcripts",
            s.backend
        ));
    }
    if let Some(native) = &s.native {
        lines.push(format!(
            "Transcript:        {}{}",
            escape_controls(&native.path),
            if native.gone {
                " (gone: the CLI deleted it; what was read is kept)"
            } else {
                ""
            }
        ));
    }
    if let (Status::Error, Some(error)) = (s.status, &s.metadata.error) {
        lines.push(format!("Error:             {}", title(error, 200)));
    }
    if !s.turns.is_empty() {
        lines.push(runs_line(s));
    }
    let u = &s.token_usage;
    lines.extend([
        "Token Usage:".to_string(),
        format!("  Input:           {}", thousands(u.input)),
        format!("  Output:          {}", thousands(u.output)),
        format!("  Cached:          {}", thousands(u.cached)),
        format!("  Total:           {}", thousands(u.total)),
        format!(
            "Tags:              {}",
            if s.tags.is_empty() {
                "-".to_string()
            } else {
                escape_controls(&s.tags.join(", "))
            }
        ),
    ]);
    if !s.prompt.is_empty() {
        lines.push("Prompt:".to_string());
        // Tabs are harmless and common in pasted code: kept, as spaces.
        lines.extend(
            s.prompt
                .lines()
                .map(|l| format!("  {}", escape_controls(&l.replace('\t', "    ")))),
        );
    }
    let mut out = lines.join("\n");
    out.push('\n');
    out
}

/// Carries the field name so that the guide's `... | grep backend_session_id` answers.
fn resumable_line(s: &Session) -> String {
    match (&s.backend_session_id, &s.metadata.fork_from) {
        (Some(_), _) => "Resumable:         yes (backend_session_id is set)".to_string(),
        (None, Some(from)) => format!(
            "Resumable:         yes (backend_session_id is missing: its first run forks from {})",
            escape_controls(from)
        ),
        (None, None) => "Resumable:         no (backend_session_id is missing)".to_string(),
    }
}

/// How many runs through clinvk and requests read from the transcript, and what the backend
/// said the runs cost, if it did.
fn runs_line(s: &Session) -> String {
    let cost: Option<f64> = s
        .turns
        .iter()
        .filter_map(|t| t.cost_usd)
        .reduce(|a, b| a + b);
    let requests = s.turns.iter().filter(|t| t.request.is_some()).count();
    let runs = s.turns.len() - requests;
    let mut parts = Vec::new();
    if runs > 0 {
        parts.push(format!(
            "{runs}{}",
            cost.map_or(String::new(), |c| format!(
                " (cost reported by {}: ${c:.4})",
                s.backend
            ))
        ));
    }
    if requests > 0 {
        parts.push(format!(
            "{requests} API request(s) read from {}'s transcript",
            s.backend
        ));
    }
    format!("Runs:              {}", parts.join("; "))
}

/// What `sessions fork` does for a backend, said plainly (also in the README).
pub fn fork_meaning(backend: Backend) -> &'static str {
    match backend {
        Backend::Claude => {
            "`clinvk sessions fork` branches the conversation (claude --fork-session): full context, new backend session"
        }
        Backend::Codex => {
            "`clinvk sessions fork` branches the conversation (codex exec fork): full context, new thread, charged only its own usage"
        }
        Backend::Gemini => {
            "not available: gemini has no fork in headless mode; resume this session, or start a new one"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    /// The listing's times written by hand read as chrono writes them, at the edges of the
    /// years it can write by hand and beyond.
    #[test]
    fn listing_times_are_chronos() {
        let mut ms: i64 = -62_167_219_200_000 - 1000; // just before year 0
        let ends = [
            -62_167_219_200_000,
            0,
            1_735_689_599_999,
            253_402_300_799_000, // 9999-12-31T23:59:59
            253_402_300_800_000, // year 10000
        ];
        let mut times: Vec<i64> = ends.to_vec();
        for _ in 0..2000 {
            times.push(ms);
            ms = ms
                .wrapping_mul(6_364_136_223_846_793)
                .wrapping_add(1_442_695_040_888_963_407)
                % 253_402_300_800_000;
        }
        for ms in times {
            let Some(t) = DateTime::from_timestamp_millis(ms) else {
                continue;
            };
            let ours = serde_json::to_string(&Secs(t)).unwrap();
            assert_eq!(ours, format!("\"{}\"", secs(&t)), "{ms}");
        }
    }

    #[test]
    fn relative_times() {
        let now = at("2025-01-27T12:00:00Z");
        assert_eq!(relative(at("2025-01-27T11:59:30Z"), now), "just now");
        assert_eq!(relative(at("2025-01-27T11:55:00Z"), now), "5 minutes ago");
        assert_eq!(relative(at("2025-01-27T11:00:00Z"), now), "1 hour ago");
        assert_eq!(relative(at("2025-01-26T12:00:00Z"), now), "1 day ago");
        assert_eq!(relative(at("2024-11-27T12:00:00Z"), now), "2 months ago");
        assert_eq!(relative(at("2022-01-27T12:00:00Z"), now), "3 years ago");
        assert_eq!(relative(at("2025-01-28T12:00:00Z"), now), "just now");
    }

    #[test]
    fn numbers_and_titles() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(6912), "6,912");
        assert_eq!(thousands(1234567), "1,234,567");
        assert_eq!(title("\n  fix   the bug\nmore", 80), "fix the bug");
        assert_eq!(title("abcdefghij", 5), "abcd…");
    }

    #[test]
    fn tables_have_no_borders_or_trailing_space() {
        let t = table(
            &["ID", "NAME"],
            vec![vec!["a".into(), "x".into()], vec!["bbbb".into(), "".into()]],
        );
        assert_eq!(t, "ID    NAME\na     x\nbbbb\n");
    }
}
