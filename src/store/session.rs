//! The session file format (the guide's JSON), its ids, and how hand-written or older files are
//! read: missing optional fields get defaults, unknown fields are kept and written back untouched.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// Longest id accepted: ids are file names, and 64 is plenty for any scheme.
const MAX_ID_LEN: usize = 64;
/// Shortest prefix that may stand for an id (an exact id of any length is always accepted).
pub const MIN_PREFIX_LEN: usize = 4;
/// Alphabet of generated ids: lowercase, without the look-alikes i, l, o, u.
const ID_ALPHABET: &[u8] = b"0123456789abcdefghjkmnpqrstvwxyz";
const NEW_ID_LEN: usize = 8;

/// A session id: letters, digits, `-` and `_`, so that it is always a safe file name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SessionId(String);

impl SessionId {
    pub fn parse(text: &str) -> Result<Self> {
        if is_valid_id(text) {
            Ok(SessionId(text.to_string()))
        } else {
            Err(Error::usage(format!(
                "'{}' is not a session id: ids are 1 to {MAX_ID_LEN} letters, digits, '-' or '_'",
                text.escape_debug()
            )))
        }
    }

    /// A fresh random id. Uniqueness is checked by the store under its lock.
    pub fn generate() -> Self {
        let mut bytes = [0u8; NEW_ID_LEN];
        getrandom::fill(&mut bytes).expect("the operating system has no random source");
        SessionId(
            bytes
                .iter()
                .map(|b| ID_ALPHABET[usize::from(*b) % ID_ALPHABET.len()] as char)
                .collect(),
        )
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn file_name(&self) -> String {
        format!("{}.json", self.0)
    }
}

pub fn is_valid_id(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= MAX_ID_LEN
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for SessionId {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for SessionId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        SessionId::parse(&text).map_err(serde::de::Error::custom)
    }
}

macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident, $what:literal, { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            fn expected() -> String {
                let names: Vec<&str> = Self::ALL.iter().map(|v| v.as_str()).collect();
                names.join(", ")
            }
        }

        impl FromStr for $name {
            type Err = Error;
            fn from_str(text: &str) -> Result<Self> {
                match text {
                    $($text => Ok($name::$variant),)+
                    _ => Err(Error::usage(format!(
                        concat!("unknown ", $what, " '{}': expected one of {}"),
                        text.escape_debug(), Self::expected()
                    ))),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
                let text = String::deserialize(d)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

string_enum!(
    /// The AI CLI a session runs on.
    Backend, "backend", { Claude => "claude", Codex => "codex", Gemini => "gemini" }
);

string_enum!(
    /// The guide's lifecycle states that are stored (`expired` sessions no longer exist).
    Status, "status", {
        Created => "created",
        Active => "active",
        Completed => "completed",
        Error => "error",
    }
);

/// The guide's `token_usage`: `total = input + output`; `cached` is the part of `input` read from
/// a cache and is not added again.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TokenUsage {
    #[serde(default)]
    pub input: u64,
    #[serde(default)]
    pub output: u64,
    #[serde(default)]
    pub cached: u64,
    #[serde(default)]
    pub total: u64,
    /// The part of `input` written to a cache (Claude, Codex); not in the guide, so only
    /// written when there is some.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cache_write: u64,
    /// The part of `output` spent reasoning (Codex, Gemini's thoughts).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub reasoning: u64,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl TokenUsage {
    /// Add `other`'s counts (for a session's total over its turns).
    pub fn add(&mut self, other: &TokenUsage) {
        self.input = self.input.saturating_add(other.input);
        self.output = self.output.saturating_add(other.output);
        self.cached = self.cached.saturating_add(other.cached);
        self.total = self.total.saturating_add(other.total);
        self.cache_write = self.cache_write.saturating_add(other.cache_write);
        self.reasoning = self.reasoning.saturating_add(other.reasoning);
    }

    /// What is left of these counts after `other`'s, never below zero.
    pub fn saturating_sub(&self, other: &TokenUsage) -> TokenUsage {
        TokenUsage {
            input: self.input.saturating_sub(other.input),
            output: self.output.saturating_sub(other.output),
            cached: self.cached.saturating_sub(other.cached),
            total: self.total.saturating_sub(other.total),
            cache_write: self.cache_write.saturating_sub(other.cache_write),
            reasoning: self.reasoning.saturating_sub(other.reasoning),
            extra: Map::new(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Metadata {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_seconds: Option<f64>,
    /// Why the last run failed, when the status is `error`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Codex reports a thread's running total, not one run's: the last total seen, from which
    /// the next run's share is computed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thread_usage: Option<TokenUsage>,
    /// A fork made without a prompt: the parent's backend session id, forked from at this
    /// session's first run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fork_from: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One run of the backend in a session: when it happened and what it cost, so that usage can be
/// counted at the time it was spent (a session continued next month counts in both months).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Turn {
    /// When the run started.
    #[serde(serialize_with = "rfc3339")]
    pub at: DateTime<Utc>,
    /// The prompt, truncated like the session's.
    #[serde(default)]
    pub prompt: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// The backend's exit code; None when it was ended by a signal.
    #[serde(default)]
    pub exit_code: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_seconds: Option<f64>,
    /// This run's usage (None when not reported, or with `store_token_usage: false`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_usage: Option<TokenUsage>,
    /// The cost the backend itself reported (Claude), in US dollars.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
    /// Why the run failed; absent when it succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Prompts longer than this are stored truncated (the guide: "truncated if very long"), so that
/// a pasted file does not bloat every listing.
pub const PROMPT_MAX_CHARS: usize = 2000;

/// `prompt` cut to `PROMPT_MAX_CHARS` characters, with `…` marking a cut.
pub fn truncate_prompt(prompt: &str) -> String {
    match prompt.char_indices().nth(PROMPT_MAX_CHARS) {
        None => prompt.to_string(),
        Some((at, _)) => format!("{}…", &prompt[..at]),
    }
}

/// One session, as stored in `sessions/<id>.json`. Field order is the guide's.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Session {
    pub id: SessionId,
    pub backend: Backend,
    pub backend_session_id: Option<String>,
    pub model: Option<String>,
    pub status: Status,
    #[serde(serialize_with = "rfc3339")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "rfc3339")]
    pub last_used_at: DateTime<Utc>,
    pub workdir: String,
    pub prompt: String,
    pub token_usage: TokenUsage,
    pub tags: Vec<String>,
    pub metadata: Metadata,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<SessionId>,
    /// Every run, oldest first (absent in files from before turns were kept).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub turns: Vec<Turn>,
    /// Fields this version does not know; kept so that a rewrite loses nothing.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Timestamps are written as RFC 3339 UTC with a `Z`, whole seconds unless the value has more.
pub fn format_time(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

fn rfc3339<S: Serializer>(t: &DateTime<Utc>, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(&format_time(t))
}

/// The file as written by anyone: everything optional, so that defaults can depend on each other.
#[derive(Deserialize)]
struct RawSession {
    id: Option<String>,
    backend: Option<Value>,
    backend_session_id: Option<String>,
    model: Option<String>,
    status: Option<Value>,
    created_at: Option<String>,
    last_used_at: Option<String>,
    workdir: Option<String>,
    prompt: Option<String>,
    token_usage: Option<TokenUsage>,
    tags: Option<Vec<String>>,
    metadata: Option<Metadata>,
    parent_id: Option<String>,
    turns: Option<Vec<Turn>>,
    #[serde(flatten)]
    extra: Map<String, Value>,
}

impl Session {
    /// A new session, not yet saved.
    pub fn new(
        id: SessionId,
        backend: Backend,
        workdir: String,
        prompt: String,
        now: DateTime<Utc>,
    ) -> Self {
        Session {
            id,
            backend,
            backend_session_id: None,
            model: None,
            status: Status::Created,
            created_at: now,
            last_used_at: now,
            workdir,
            prompt,
            token_usage: TokenUsage::default(),
            tags: Vec::new(),
            metadata: Metadata::default(),
            parent_id: None,
            turns: Vec::new(),
            extra: Map::new(),
        }
    }

    /// Read a session file's bytes. `file_id` is the file name without `.json`; `modified` the
    /// file's mtime, the last resort for a missing timestamp. The error is the reason, for a
    /// message that names the file.
    pub fn from_file_bytes(
        bytes: &[u8],
        file_id: &str,
        modified: DateTime<Utc>,
    ) -> std::result::Result<Self, String> {
        let value: Value =
            serde_json::from_slice(bytes).map_err(|e| format!("not valid JSON ({e})"))?;
        if !value.is_object() {
            return Err("not a JSON object".into());
        }
        let raw: RawSession = serde_json::from_value(value).map_err(|e| e.to_string())?;

        let id = match raw.id {
            Some(id) if id == file_id => SessionId::parse(&id).map_err(|e| e.to_string())?,
            Some(id) => {
                return Err(format!(
                    "its id '{}' does not match the file name '{file_id}.json'",
                    id.escape_debug()
                ))
            }
            None => SessionId::parse(file_id)
                .map_err(|_| "the file name is not a valid session id".to_string())?,
        };
        let backend = match raw.backend {
            None => return Err("field `backend` is missing".into()),
            Some(Value::String(text)) => text.parse::<Backend>().map_err(|e| e.to_string())?,
            Some(other) => return Err(format!("field `backend` is {other}, not a string")),
        };
        let time = |field: &str,
                    text: Option<String>|
         -> std::result::Result<Option<DateTime<Utc>>, String> {
            text.map(|t| {
                DateTime::parse_from_rfc3339(&t)
                    .map(|t| t.with_timezone(&Utc))
                    .map_err(|e| {
                        format!(
                            "field `{field}` is not an RFC 3339 time ('{}': {e})",
                            t.escape_debug()
                        )
                    })
            })
            .transpose()
        };
        let created_at = time("created_at", raw.created_at)?;
        let last_used_at = time("last_used_at", raw.last_used_at)?;
        let created_at = created_at.or(last_used_at).unwrap_or(modified);
        let last_used_at = last_used_at.unwrap_or(created_at);
        let backend_session_id = raw.backend_session_id.filter(|s| !s.is_empty());
        let status = match raw.status {
            None | Some(Value::Null) => {
                if backend_session_id.is_some() {
                    Status::Active
                } else {
                    Status::Completed
                }
            }
            Some(Value::String(text)) => text.parse::<Status>().map_err(|e| e.to_string())?,
            Some(other) => return Err(format!("field `status` is {other}, not a string")),
        };
        let mut token_usage = raw.token_usage.unwrap_or_default();
        if token_usage.total == 0 {
            token_usage.total = token_usage.input.saturating_add(token_usage.output);
        }
        let parent_id = raw
            .parent_id
            .map(|p| SessionId::parse(&p).map_err(|e| format!("field `parent_id`: {e}")))
            .transpose()?;

        Ok(Session {
            id,
            backend,
            backend_session_id,
            model: raw.model.filter(|m| !m.is_empty()),
            status,
            created_at,
            last_used_at,
            workdir: raw.workdir.unwrap_or_default(),
            prompt: raw.prompt.unwrap_or_default(),
            token_usage,
            tags: raw.tags.unwrap_or_default(),
            metadata: raw.metadata.unwrap_or_default(),
            parent_id,
            turns: raw.turns.unwrap_or_default(),
            extra: raw.extra,
        })
    }

    pub fn to_file_bytes(&self) -> Vec<u8> {
        let mut bytes = serde_json::to_vec_pretty(self).expect("a session always serializes");
        bytes.push(b'\n');
        bytes
    }
}

/// Append the tags `tags` does not have yet, in order (a session's tags are a set kept in the
/// order they were added).
pub fn add_tags(tags: &mut Vec<String>, new: impl IntoIterator<Item = String>) {
    for tag in new {
        if !tags.contains(&tag) {
            tags.push(tag);
        }
    }
}

/// A tag as typed by a user: trimmed, non-empty, printable, no commas (they separate tags in
/// `sessions show`). Case is kept; matching is exact.
pub fn normalize_tag(text: &str) -> Result<String> {
    let tag = text.trim();
    if tag.is_empty() || tag.len() > 100 || tag.contains(',') || tag.chars().any(char::is_control) {
        return Err(Error::usage(format!(
            "'{}' is not a tag: tags are 1 to 100 printable characters without commas",
            text.escape_debug()
        )));
    }
    Ok(tag.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn epoch() -> DateTime<Utc> {
        "2025-01-01T00:00:00Z".parse().unwrap()
    }

    const GUIDE_EXAMPLE: &str = r#"{
  "id": "abc123def",
  "backend": "claude",
  "backend_session_id": "sess_abc123",
  "model": "claude-opus-4-5-20251101",
  "status": "active",
  "created_at": "2025-01-27T10:00:00Z",
  "last_used_at": "2025-01-27T11:30:00Z",
  "workdir": "/projects/myapp",
  "prompt": "fix the bug in auth.go",
  "token_usage": {
    "input": 1234,
    "output": 5678,
    "cached": 500,
    "total": 6912
  },
  "tags": [
    "bugfix",
    "auth"
  ],
  "metadata": {
    "exit_code": 0,
    "duration_seconds": 2.5
  }
}
"#;

    #[test]
    fn the_guide_example_round_trips_byte_for_byte() {
        let s = Session::from_file_bytes(GUIDE_EXAMPLE.as_bytes(), "abc123def", epoch()).unwrap();
        assert_eq!(s.token_usage.total, 6912);
        assert_eq!(String::from_utf8(s.to_file_bytes()).unwrap(), GUIDE_EXAMPLE);
    }

    #[test]
    fn unknown_fields_survive_a_rewrite() {
        let text = r#"{"id":"x1","backend":"codex","future":{"a":[1,2]},"token_usage":{"input":1,"reasoning":7},
                       "metadata":{"exit_code":1,"host":"box"}}"#;
        let s = Session::from_file_bytes(text.as_bytes(), "x1", epoch()).unwrap();
        let back: Value = serde_json::from_slice(&s.to_file_bytes()).unwrap();
        assert_eq!(back["future"]["a"][1], 2);
        assert_eq!(back["token_usage"]["reasoning"], 7);
        assert_eq!(back["metadata"]["host"], "box");
    }

    #[test]
    fn minimal_hand_written_file_gets_defaults() {
        let s = Session::from_file_bytes(
            br#"{"backend":"gemini","backend_session_id":"g1"}"#,
            "hand_made-1",
            epoch(),
        )
        .unwrap();
        assert_eq!(s.id.as_str(), "hand_made-1");
        assert_eq!(s.status, Status::Active);
        assert_eq!(s.created_at, epoch());
        assert_eq!(s.last_used_at, epoch());
        assert!(s.tags.is_empty());
    }

    #[test]
    fn invalid_files_give_reasons() {
        let cases: &[(&[u8], &str)] = &[
            (b"{not json", "not valid JSON"),
            (b"[1,2]", "not a JSON object"),
            (br#"{"id":"x"}"#, "`backend` is missing"),
            (br#"{"backend":"gpt"}"#, "unknown backend 'gpt'"),
            (
                br#"{"backend":"claude","status":"paused"}"#,
                "unknown status 'paused'",
            ),
            (
                br#"{"backend":"claude","created_at":"yesterday"}"#,
                "`created_at` is not an RFC 3339 time",
            ),
            (
                br#"{"id":"other","backend":"claude"}"#,
                "does not match the file name",
            ),
            (br#"{"backend":"claude","tags":"a,b"}"#, "invalid type"),
        ];
        for (bytes, reason) in cases {
            let err = Session::from_file_bytes(bytes, "x", epoch()).unwrap_err();
            assert!(err.contains(reason), "{err} should contain {reason}");
        }
    }

    #[test]
    fn ids() {
        for ok in ["abc123def", "A-b_9", "x"] {
            assert!(SessionId::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", "a/b", "..", "../x", "a b", "é", &"x".repeat(65)] {
            assert!(SessionId::parse(bad).is_err(), "{bad}");
        }
        let id = SessionId::generate();
        assert_eq!(id.as_str().len(), NEW_ID_LEN);
        assert!(id.as_str().bytes().all(|b| ID_ALPHABET.contains(&b)));
    }

    #[test]
    fn tags() {
        assert_eq!(normalize_tag("  urgent ").unwrap(), "urgent");
        for bad in ["", "  ", "a,b", "a\nb"] {
            assert!(normalize_tag(bad).is_err());
        }
    }
}
