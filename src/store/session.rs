//! The session file format (the guide's JSON), its ids, and how hand-written or older files are
//! read: missing optional fields get defaults, unknown fields are kept and written back untouched.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::domain::{Backend, Origin, SessionId, Status, Tokens};

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

    /// The counts, without the file's `total` and unknown fields.
    pub fn tokens(&self) -> Tokens {
        Tokens {
            input: self.input,
            output: self.output,
            cached: self.cached,
            cache_write: self.cache_write,
            reasoning: self.reasoning,
        }
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

impl From<Tokens> for TokenUsage {
    /// As a file writes them: `total` = input + output.
    fn from(t: Tokens) -> TokenUsage {
        TokenUsage {
            input: t.input,
            output: t.output,
            cached: t.cached,
            total: t.total(),
            cache_write: t.cache_write,
            reasoning: t.reasoning,
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
    /// When the run started (for a request read from a transcript, when it was made).
    #[serde(serialize_with = "rfc3339", deserialize_with = "file_time")]
    pub at: DateTime<Utc>,
    /// The prompt, truncated like the session's (none for a request read from a transcript).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub prompt: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// The backend's exit code; None when it was ended by a signal (`error` says which), or
    /// for a request read from a transcript.
    #[serde(default, skip_serializing_if = "Option::is_none")]
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
    /// For one API request read from the CLI's transcript (not a run through clinvk): the
    /// transcript's key for it (`transcripts::Request::key`), so that it is counted once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The CLI's own transcript of a session: which kind of file, and where.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NativeSource {
    /// `claude`, `codex` or `gemini`, as the file's CLI.
    pub kind: String,
    pub path: String,
    /// The CLI deleted it (its retention clean): the session keeps what was read.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub gone: bool,
    /// What the transcript said (prompts and answers: what search looks in), kept here when
    /// the CLI deleted it, up to `KEPT_MAX` bytes of text from its start.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub messages: Vec<crate::domain::Message>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The most text a session file keeps of a deleted transcript's messages.
pub const KEPT_MAX: usize = 1 << 20;

impl NativeSource {
    /// Whether the transcript is still there.
    pub fn is_present(&self) -> bool {
        std::fs::symlink_metadata(&self.path).is_ok()
    }
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
    #[serde(skip_serializing_if = "Origin::is_clinvk")]
    pub origin: Origin,
    /// The machine it was started on (`crate::host`); None in files from before hosts were kept.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// The CLI's transcript of this conversation, once clinvk has read it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub native: Option<NativeSource>,
    /// Every run (and every request read from the transcript), oldest first (absent in files
    /// from before turns were kept).
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

/// An instant as a session file writes it: RFC 3339 with a four-digit year. One parser for every
/// time in a file, so that each has a day, a week and a month in any zone (chrono accepts years
/// to ±262143, where shifting a date by a zone or a week overflows).
pub fn parse_file_time(text: &str) -> std::result::Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| {
            format!(
                "'{}' is not an RFC 3339 time with a four-digit year ({e})",
                text.escape_debug()
            )
        })
}

fn file_time<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<DateTime<Utc>, D::Error> {
    let text = String::deserialize(d)?;
    parse_file_time(&text).map_err(|e| serde::de::Error::custom(format!("a turn's `at`: {e}")))
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
    origin: Option<Value>,
    host: Option<Value>,
    native: Option<NativeSource>,
    turns: Option<Vec<Turn>>,
    #[serde(flatten)]
    extra: Map<String, Value>,
}

impl Session {
    /// The CLI keeps this session's transcript at `path` (there now): recorded, unless it is
    /// already.
    pub fn transcript_at(&mut self, path: &std::path::Path) {
        let path = path.display().to_string();
        if self.native.as_ref().map(|n| (n.path.as_str(), n.gone)) != Some((path.as_str(), false)) {
            // What an earlier transcript said, kept when the CLI deleted it, stays kept: the
            // new file may hold only part of the conversation.
            let messages = self.native.take().map(|n| n.messages).unwrap_or_default();
            self.native = Some(NativeSource {
                kind: self.backend.to_string(),
                path,
                gone: false,
                messages,
                extra: Default::default(),
            });
        }
    }

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
            origin: Origin::Clinvk,
            host: crate::host::this_host(),
            native: None,
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
            text.map(|t| parse_file_time(&t).map_err(|e| format!("field `{field}`: {e}")))
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
        let origin = match raw.origin {
            None | Some(Value::Null) => Origin::Clinvk,
            Some(Value::String(text)) => text.parse::<Origin>().map_err(|e| e.to_string())?,
            Some(other) => return Err(format!("field `origin` is {other}, not a string")),
        };
        let host = match raw.host {
            None | Some(Value::Null) => None,
            Some(Value::String(text)) => Some(text).filter(|h| !h.is_empty()),
            Some(other) => return Err(format!("field `host` is {other}, not a string")),
        };
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
            origin,
            host,
            native: raw.native,
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
                "`created_at`: 'yesterday' is not an RFC 3339 time",
            ),
            // Years chrono takes but cannot shift by a zone or a week.
            (
                br#"{"backend":"claude","turns":[{"at":"-262143-01-02T00:00:00Z"}]}"#,
                "a turn's `at`: '-262143-01-02T00:00:00Z' is not an RFC 3339 time with a four-digit year",
            ),
            (
                br#"{"backend":"claude","turns":[{"at":"+262142-12-31T23:59:59Z"}]}"#,
                "is not an RFC 3339 time with a four-digit year",
            ),
            (
                br#"{"backend":"claude","last_used_at":"+262142-12-31T23:59:59Z"}"#,
                "field `last_used_at`",
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
}
