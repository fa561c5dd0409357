//! Typed queries and the rows they return. The CLI builds these from flags (parsed dates,
//! normalised tags); the index turns them into SQL.

use chrono::{DateTime, Utc};

use crate::domain::{Backend, Origin, Role, SessionId, Status};
use crate::store::session::{Session, TokenUsage};

/// Which sessions: what `sessions list` and `sessions stats` both select by.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filter {
    pub backend: Option<Backend>,
    pub status: Option<Status>,
    /// All of these tags (AND).
    pub tags: Vec<String>,
    pub workdir: Option<String>,
    /// Only sessions run through clinvk, or only conversations imported from the CLIs.
    pub origin: Option<Origin>,
    /// Only sessions started on this machine (`host` in their file).
    pub host: Option<String>,
}

/// Instants `since <= t < until`; either end may be open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimeRange {
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
}

impl TimeRange {
    pub fn is_open(&self) -> bool {
        self.since.is_none() && self.until.is_none()
    }
}

/// `sessions list`: the selected sessions whose last activity is in `last_used`, newest first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ListQuery {
    pub filter: Filter,
    /// When the session was last used.
    pub last_used: TimeRange,
    /// Case-insensitive substring of the prompt.
    pub search: Option<String>,
    /// Only sessions with a backend session id (the ones that can be resumed).
    pub resumable: bool,
    /// None: every match.
    pub limit: Option<u64>,
    pub offset: u64,
}

/// What the index knows of a session: everything `sessions list` shows.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionSummary {
    pub id: SessionId,
    pub backend: Backend,
    pub backend_session_id: Option<String>,
    pub model: Option<String>,
    pub status: Status,
    pub created_at: DateTime<Utc>,
    pub last_used_at: DateTime<Utc>,
    pub workdir: String,
    pub prompt: String,
    pub token_usage: TokenUsage,
    pub tags: Vec<String>,
    pub parent_id: Option<SessionId>,
    pub origin: Origin,
    pub host: Option<String>,
}

impl Filter {
    /// Whether it says something of the `sessions` row itself (see `sql::row_conditions`).
    pub fn on_session_row(&self) -> bool {
        self.workdir.is_some() || self.origin.is_some() || self.host.is_some()
    }
}

impl From<&Session> for SessionSummary {
    fn from(s: &Session) -> Self {
        SessionSummary {
            id: s.id.clone(),
            backend: s.backend,
            backend_session_id: s.backend_session_id.clone(),
            model: s.model.clone(),
            status: s.status,
            // The index keeps milliseconds.
            created_at: truncate_ms(s.created_at),
            last_used_at: truncate_ms(s.last_used_at),
            workdir: s.workdir.clone(),
            prompt: s.prompt.clone(),
            // Only the guide's four counts are indexed.
            token_usage: TokenUsage {
                input: s.token_usage.input,
                output: s.token_usage.output,
                cached: s.token_usage.cached,
                total: s.token_usage.total,
                ..TokenUsage::default()
            },
            tags: s.tags.clone(),
            parent_id: s.parent_id.clone(),
            origin: s.origin,
            host: s.host.clone(),
        }
    }
}

fn truncate_ms(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(t.timestamp_millis()).unwrap_or(t)
}

/// A file in the sessions directory that is not a valid session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidFile {
    pub file_name: String,
    pub reason: String,
}

/// What `sessions search` looks for: words and quoted phrases, each a case-insensitive
/// substring of something said in the session (all of them, each anywhere in it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchTerms(Vec<String>);

impl SearchTerms {
    /// The words of `text`, and its `"quoted phrases"` as one term each (an unclosed quote
    /// runs to the end); None when there is nothing to look for.
    pub fn parse(text: &str) -> Option<SearchTerms> {
        let mut terms: Vec<String> = Vec::new();
        for (i, part) in text.split('"').enumerate() {
            if i % 2 == 1 {
                let phrase = part.split_whitespace().collect::<Vec<_>>().join(" ");
                terms.push(phrase);
            } else {
                terms.extend(part.split_whitespace().map(str::to_string));
            }
        }
        terms.retain(|t| !t.is_empty());
        let mut seen = std::collections::HashSet::new();
        terms.retain(|t| seen.insert(t.clone()));
        (!terms.is_empty()).then_some(SearchTerms(terms))
    }

    pub fn terms(&self) -> &[String] {
        &self.0
    }
}

/// `sessions search`: the sessions selected as `select` selects them (its prompt search
/// aside) in which every term was said, the most relevant first, then the most recent.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchQuery {
    pub terms: SearchTerms,
    pub select: ListQuery,
}

/// One session found by a search.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchHit {
    pub session: SessionSummary,
    /// How relevant: the number of the session's messages that say any of the terms.
    pub score: u32,
    pub snippet: Snippet,
}

/// A short piece of the message that matches best, with where the terms are in it.
#[derive(Debug, Clone, PartialEq)]
pub struct Snippet {
    pub role: Role,
    pub at: Option<DateTime<Utc>>,
    /// On one line (runs of white space as one space), cut with `…` at either end.
    pub text: String,
    /// Byte ranges of `text` that match a term, in order, not overlapping.
    pub marks: Vec<(usize, usize)>,
}
