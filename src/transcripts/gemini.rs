//! Gemini CLI chat files (`~/.gemini/tmp/<project>/chats/session-<time>-<id8>.jsonl` since
//! 0.39; one `.json` record, rewritten on every update, before). The JSONL file is an append
//! log:
//! - a metadata line (`{"sessionId", "projectHash", "startTime", ...}`), appended again at each
//!   resume;
//! - message lines (`{"id", "timestamp", "type": "user" | "gemini" | ..., "content", "tokens",
//!   "model"}`); the same id can come again, once its tokens are known;
//! - `{"$set": {...}}` patches: since 0.61 each run appends the whole history as
//!   `$set.messages`, in which earlier answers have lost their `tokens` and `model`;
//! - `{"$rewindTo": id}`: the user rewound; the requests made were still made.
//!
//! So the last occurrence of a message id wins, except that a copy without tokens never erases
//! them. `tokens.input` (or `prompt` in older files) includes the cached tokens; thoughts come on
//! top of the output and count as output and reasoning; tool-use prompt tokens are input.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;

use super::{human_prompt, time, Conversation, Request, Role};
use crate::domain::Tokens;

/// Reads one Gemini CLI chat file, line by line.
#[derive(Default)]
pub struct Reader {
    conversation: Conversation,
    /// Each message id seen with tokens (by `key_hash`): where its request is in
    /// `conversation.requests` (None for one read before a checkpoint resumed from).
    seen: HashMap<u64, Option<usize>>,
    /// Answers seen without tokens yet (their tokens may come with a later copy).
    pending: HashMap<String, (chrono::DateTime<chrono::Utc>, Option<String>)>,
    subagent: bool,
    /// The first prompt has been read (it may be in the part before a checkpoint).
    prompt_done: bool,
    /// The last time a message had: for a copy without one.
    last_time: Option<chrono::DateTime<chrono::Utc>>,
    /// The messages whose text has been kept (by `key_hash` of their id): the history's
    /// copies in `$set` patches are not kept again.
    said: HashSet<u64>,
}

/// What a reader needs to go on reading a chat file from where it stopped.
#[derive(Serialize, Deserialize)]
struct Checkpoint {
    last_time: Option<chrono::DateTime<chrono::Utc>>,
    native_id: Option<String>,
    workdir: Option<String>,
    subagent: bool,
    prompt_done: bool,
    seen: Vec<u64>,
    pending: Vec<(String, chrono::DateTime<chrono::Utc>, Option<String>)>,
    said: Vec<u64>,
}

impl Reader {
    pub fn new() -> Reader {
        Reader::default()
    }

    /// What `resume` needs to go on after the lines read so far.
    pub fn checkpoint(&self) -> Vec<u8> {
        let state = Checkpoint {
            last_time: self.last_time,
            native_id: self.conversation.native_id.clone(),
            workdir: self.conversation.workdir.clone(),
            subagent: self.subagent,
            prompt_done: self.prompt_done,
            seen: self.seen.keys().copied().collect(),
            pending: self
                .pending
                .iter()
                .map(|(id, (at, model))| (id.clone(), *at, model.clone()))
                .collect(),
            said: self.said.iter().copied().collect(),
        };
        super::save_checkpoint(&state)
    }

    /// A reader that goes on from `checkpoint`: the requests it gives are those of the lines
    /// read after it (an answer read before that comes again with tokens is given again). None
    /// if the checkpoint is not one.
    pub fn resume(checkpoint: &[u8]) -> Option<Reader> {
        let state: Checkpoint = super::load_checkpoint(checkpoint)?;
        Some(Reader {
            last_time: state.last_time,
            conversation: Conversation {
                native_id: state.native_id,
                workdir: state.workdir,
                ..Conversation::default()
            },
            seen: state.seen.into_iter().map(|h| (h, None)).collect(),
            pending: state
                .pending
                .into_iter()
                .map(|(id, at, model)| (id, (at, model)))
                .collect(),
            subagent: state.subagent,
            prompt_done: state.prompt_done,
            said: state.said.into_iter().collect(),
        })
    }

    pub fn line(&mut self, bytes: &[u8]) {
        let Ok(record) = serde_json::from_slice::<Record<'_>>(bytes) else {
            self.conversation.skipped_lines += 1;
            return;
        };
        self.record(&record);
    }

    /// One record: a metadata line, a message, a `$set` patch, or a whole legacy `.json`
    /// conversation. Big fields (answers, tool output) are read past, not held.
    fn record(&mut self, r: &Record<'_>) {
        if let Some(set) = r.set {
            if let Ok(set) = serde_json::from_str::<Set<'_>>(set.get()) {
                self.messages(set.messages);
            }
            return;
        }
        if r.rewind.is_some() {
            return;
        }
        if r.kind.is_some() && r.id.is_some() {
            self.message(r);
            return;
        }
        // Metadata (the legacy record is metadata with its messages inside).
        let c = &mut self.conversation;
        if c.native_id.is_none() {
            c.native_id = r
                .session_id
                .as_deref()
                .filter(|s| !s.is_empty())
                .map(str::to_string);
        }
        if r.session_kind.as_deref() == Some("subagent") {
            self.subagent = true;
        }
        if c.workdir.is_none() {
            c.workdir = r
                .directories
                .and_then(|d| serde_json::from_str::<Vec<String>>(d.get()).ok())
                .and_then(|d| d.into_iter().next());
        }
        for t in [&r.start_time, &r.last_updated].into_iter().flatten() {
            if let Some(at) = time(t) {
                c.saw_time(at);
            }
        }
        if let Some(messages) = r.messages {
            if let Ok(messages) = serde_json::from_str::<Vec<&RawValue>>(messages.get()) {
                self.messages(Some(messages));
            }
        }
    }

    fn messages(&mut self, messages: Option<Vec<&RawValue>>) {
        for m in messages.into_iter().flatten() {
            if let Ok(m) = serde_json::from_str::<Record<'_>>(m.get()) {
                self.message(&m);
            }
        }
    }

    fn message(&mut self, m: &Record<'_>) {
        let Some(id) = m.id.as_deref() else {
            return;
        };
        let at = m.timestamp.as_deref().and_then(time);
        if let Some(at) = at {
            self.conversation.saw_time(at);
            self.last_time = Some(at);
        }
        let role = match m.kind.as_deref() {
            Some("user") => Some(Role::User),
            Some("gemini") => Some(Role::Assistant),
            _ => None,
        };
        if let Some(role) = role {
            if self.said.insert(super::key_hash(id)) {
                let content = m
                    .content
                    .and_then(|c| serde_json::from_str::<Value>(c.get()).ok())
                    .unwrap_or(Value::Null);
                let texts = texts_of(&content);
                let mut kept = false;
                for text in texts {
                    let text = match role {
                        Role::User => human_prompt(text),
                        Role::Assistant => Some(text),
                    };
                    let Some(text) = text.filter(|t| !t.trim().is_empty()) else {
                        continue;
                    };
                    kept = true;
                    self.conversation.said(role, at, text);
                    if role == Role::User && !self.prompt_done {
                        self.conversation.prompt = Some(text.to_string());
                        self.prompt_done = true;
                    }
                }
                // An answer written before its text: its later copy may have it.
                if !kept && role == Role::Assistant {
                    self.said.remove(&super::key_hash(id));
                }
            }
        }
        if m.kind.as_deref() != Some("gemini") {
            return;
        }
        let model = m
            .model
            .as_deref()
            .filter(|s| !s.is_empty())
            .map(str::to_string);
        let tokens = m
            .tokens
            .and_then(|t| serde_json::from_str::<Value>(t.get()).ok())
            .filter(Value::is_object)
            .map(|t| tokens(&t));
        let hash = super::key_hash(id);
        match (self.seen.get(&hash).copied(), tokens) {
            (Some(Some(at_index)), Some(tokens)) => {
                let r = &mut self.conversation.requests[at_index];
                r.tokens = tokens;
                if model.is_some() {
                    r.model = model;
                }
            }
            // Read before the checkpoint: given again, with these figures.
            (Some(None), Some(tokens)) => {
                // Its time does not matter: the session knows the request already.
                let Some(at) = at.or(self.last_time) else {
                    return;
                };
                self.push(hash, id, at, model, tokens);
            }
            // A copy without tokens (a `$set` of the history) keeps what was counted.
            (Some(_), None) => {}
            (None, Some(tokens)) => {
                let pending = self.pending.remove(id);
                let Some(at) = at.or(pending.as_ref().map(|p| p.0)) else {
                    self.conversation.skipped_lines += 1;
                    return;
                };
                let model = model.or_else(|| pending.and_then(|p| p.1));
                self.push(hash, id, at, model, tokens);
            }
            (None, None) => {
                if let Some(at) = at {
                    self.pending.entry(id.to_string()).or_insert((at, model));
                }
            }
        }
    }

    /// A request for the answer `id`, seen now.
    fn push(
        &mut self,
        hash: u64,
        id: &str,
        at: chrono::DateTime<chrono::Utc>,
        model: Option<String>,
        tokens: Tokens,
    ) {
        self.seen
            .insert(hash, Some(self.conversation.requests.len()));
        self.conversation.requests.push(Request {
            key: id.to_string(),
            at,
            model,
            tokens,
            running_total: None,
        });
    }

    /// Whether the file is a subagent's chat (its usage belongs to its parent session).
    pub fn is_subagent(&self) -> bool {
        self.subagent
    }

    pub fn finish(self) -> Conversation {
        self.conversation
    }
}

/// Read a whole chat file held in memory: JSONL, or a legacy `.json` record.
pub fn parse(bytes: &[u8]) -> Conversation {
    let mut reader = Reader::new();
    match serde_json::from_slice::<Record<'_>>(bytes) {
        // One object for the whole file: a legacy record (or a JSONL file of one line).
        Ok(whole) => reader.record(&whole),
        _ => super::each_line(bytes, |l| reader.line(l)),
    }
    reader.finish()
}

/// Any record of a chat file: metadata, a message, a patch; the fields clinvk reads, the big
/// ones borrowed unparsed.
#[derive(Deserialize)]
struct Record<'a> {
    #[serde(borrow, default)]
    id: Option<Cow<'a, str>>,
    #[serde(rename = "type", borrow, default)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    timestamp: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    content: Option<&'a RawValue>,
    #[serde(borrow, default)]
    tokens: Option<&'a RawValue>,
    #[serde(borrow, default)]
    model: Option<Cow<'a, str>>,
    #[serde(rename = "sessionId", borrow, default)]
    session_id: Option<Cow<'a, str>>,
    #[serde(rename = "startTime", borrow, default)]
    start_time: Option<Cow<'a, str>>,
    #[serde(rename = "lastUpdated", borrow, default)]
    last_updated: Option<Cow<'a, str>>,
    #[serde(rename = "kind", borrow, default)]
    session_kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    directories: Option<&'a RawValue>,
    #[serde(borrow, default)]
    messages: Option<&'a RawValue>,
    #[serde(rename = "$set", borrow, default)]
    set: Option<&'a RawValue>,
    #[serde(rename = "$rewindTo", borrow, default)]
    rewind: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct Set<'a> {
    #[serde(borrow, default)]
    messages: Option<Vec<&'a RawValue>>,
}

/// The session id a chat file belongs to: its first metadata line's (or the legacy record's)
/// `sessionId`.
pub fn session_id(bytes: &[u8]) -> Option<String> {
    let first = bytes
        .split(|b| *b == b'\n')
        .find(|l| !l.trim_ascii().is_empty())?;
    let value: Value = serde_json::from_slice(first)
        .or_else(|_| serde_json::from_slice(bytes))
        .ok()?;
    text(&value, "sessionId")
}

fn text(v: &Value, key: &str) -> Option<String> {
    v.get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// A message's text: a string, or parts with `text`.
fn texts_of(content: &Value) -> Vec<&str> {
    match content {
        Value::String(s) => vec![s.as_str()],
        Value::Array(parts) => parts.iter().filter_map(|p| p["text"].as_str()).collect(),
        _ => Vec::new(),
    }
}

fn tokens(t: &Value) -> Tokens {
    let count = |key: &str| t.get(key).and_then(Value::as_u64).unwrap_or(0).min(1 << 40);
    let prompt = t.get("prompt").map_or(count("input"), |_| count("prompt"));
    let candidates = t
        .get("candidates")
        .map_or(count("output"), |_| count("candidates"));
    let thoughts = count("thoughts");
    Tokens {
        input: prompt + count("tool"),
        output: candidates + thoughts,
        cached: count("cached"),
        cache_write: 0,
        reasoning: thoughts,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transcripts::sample;

    const CHAT: &str = "gemini-session-2026-12-01T10-54-7a9ca440.jsonl";

    #[test]
    fn what_was_said() {
        use crate::transcripts::said;
        // Each message once, though every resume copies the history again.
        let c = parse(&sample(CHAT));
        assert_eq!(said(&c), crate::transcripts::THREE_RUNS_SAID);
        // An answer written before its text has it from its later copy.
        let lines = [
            r#"{"id":"g1","timestamp":"2026-01-01T00:00:02Z","type":"gemini","content":""}"#,
            r#"{"$set":{"messages":[{"id":"g1","type":"gemini","content":[{"text":"later"}]}]}}"#,
            r#"{"id":"i1","type":"info","content":"not said"}"#,
        ];
        assert_eq!(said(&parse(lines.join("\n").as_bytes())), ["a: later"]);
    }

    #[test]
    fn the_session_of_a_chat_file() {
        assert_eq!(
            session_id(&sample(CHAT)).as_deref(),
            Some("7a9ca440-ea38-4724-a496-49e63d279cdd")
        );
        // The legacy record: one pretty-printed object.
        let legacy = b"{\n  \"sessionId\": \"abc\",\n  \"messages\": []\n}\n";
        assert_eq!(session_id(legacy).as_deref(), Some("abc"));
        assert_eq!(session_id(b""), None);
        assert_eq!(session_id(b"garbage\n"), None);
        assert_eq!(session_id(b"{\"sessionId\":\"\"}"), None);
    }

    #[test]
    fn a_chat_resumed_twice_counts_each_answer_once() {
        let c = parse(&sample(CHAT));
        assert_eq!(
            c.native_id.as_deref(),
            Some("7a9ca440-ea38-4724-a496-49e63d279cdd")
        );
        // The `<session_context>` block in the history is not the prompt.
        assert_eq!(c.prompt.as_deref(), Some("hello"));
        let got: Vec<(u64, u64, u64, u64, Option<&str>)> = c
            .requests
            .iter()
            .map(|r| {
                let t = r.tokens;
                (t.input, t.cached, t.output, t.reasoning, r.model.as_deref())
            })
            .collect();
        // The `$set` copies of the history carry no tokens: the answers keep theirs.
        assert_eq!(
            got,
            [
                (4002, 1002, 32 + 17, 17, Some("gemini-3.8-flash")),
                (4004, 1004, 34 + 19, 19, Some("gemini-3.8-flash")),
                (4005, 1005, 35 + 20, 20, Some("gemini-2.5-pro")),
            ]
        );
        // total = input + output = the file's own total.
        assert_eq!(c.requests[0].tokens.total(), 4051);
        assert_eq!(c.first_at, time("2026-12-01T10:54:26.144Z"));
    }

    #[test]
    fn tokens_arrive_late_and_legacy_records() {
        let lines = [
            r#"{"sessionId":"s","startTime":"2026-01-01T00:00:00Z","directories":["/w"]}"#,
            r#"{"id":"u1","timestamp":"2026-01-01T00:00:01Z","type":"user","content":"hi there"}"#,
            r#"{"id":"g1","timestamp":"2026-01-01T00:00:02Z","type":"gemini","content":"x","tokens":null,"model":"gemini-3-flash-preview"}"#,
            r#"{"id":"g1","timestamp":"2026-01-01T00:00:02Z","type":"gemini","content":"x","tokens":{"input":10,"output":2,"cached":4,"thoughts":1,"tool":3,"total":16}}"#,
            r#"{"$rewindTo":"u1"}"#,
            "{broken",
        ]
        .join("\n");
        let c = parse(lines.as_bytes());
        assert_eq!(c.workdir.as_deref(), Some("/w"));
        assert_eq!(c.prompt.as_deref(), Some("hi there"));
        assert_eq!(c.requests.len(), 1);
        let r = &c.requests[0];
        assert_eq!(r.model.as_deref(), Some("gemini-3-flash-preview"));
        assert_eq!(
            (r.tokens.input, r.tokens.output, r.tokens.total()),
            (13, 3, 16)
        );
        assert_eq!(c.skipped_lines, 1);

        let legacy = r#"{"sessionId":"old","startTime":"2025-05-01T00:00:00Z","messages":[
            {"id":"u","timestamp":"2025-05-01T00:00:01Z","type":"user","content":[{"text":"legacy prompt"}]},
            {"id":"g","timestamp":"2025-05-01T00:00:02Z","type":"gemini","tokens":{"prompt":100,"candidates":5,"cached":50,"thoughts":0,"total":105}}]}"#;
        let c = parse(legacy.as_bytes());
        assert_eq!(c.native_id.as_deref(), Some("old"));
        assert_eq!(c.prompt.as_deref(), Some("legacy prompt"));
        assert_eq!(c.requests[0].tokens.input, 100);
        assert_eq!(c.requests[0].tokens.cached, 50);
    }

    crate::transcripts::resumable!(Reader, Reader::new(), Reader::finish);

    #[test]
    fn read_in_two_parts_as_whole() {
        crate::transcripts::assert_resumes_alike::<Reader>(&sample(CHAT));
        // Tokens that come with a later copy of the answer, split between the two.
        let lines = [
            r#"{"sessionId":"s","startTime":"2026-01-01T00:00:00Z"}"#,
            r#"{"id":"g1","timestamp":"2026-01-01T00:00:02Z","type":"gemini","tokens":null,"model":"gemini-3-flash-preview"}"#,
            r#"{"id":"g1","type":"gemini","tokens":{"input":10,"output":2,"cached":4,"total":12}}"#,
            r#"{"$set":{"messages":[{"id":"g1","timestamp":"2026-01-01T00:00:02Z","type":"gemini"}]}}"#,
            // Corrected by a copy without a time.
            r#"{"id":"g1","type":"gemini","tokens":{"input":10,"output":7,"cached":4,"total":17}}"#,
        ];
        crate::transcripts::assert_resumes_alike::<Reader>(lines.join("\n").as_bytes());
    }
}
