//! Codex rollouts (`~/.codex/sessions/YYYY/MM/DD/rollout-<time>-<thread id>.jsonl`, and
//! `.jsonl.zst` once idle for a week): one JSON object per line, `{"timestamp", "ordinal",
//! "type", "payload"}`. What is read here:
//! - `session_meta`: the thread id, its working directory, and for a fork `forked_from_id` (a
//!   fork's file holds only its own lines);
//! - `turn_context`: the model each turn ran;
//! - `response_item` user messages: the first prompt a person typed (the environment context
//!   and instructions blocks come first, as user messages too);
//! - `event_msg` `token_count`: the thread's running total (`total_token_usage`, which for a
//!   fork already includes the parent's) and the request's own (`last_token_usage`). A request's
//!   usage is the change of the running total: a count emitted again, or one with `info: null`,
//!   adds nothing.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;

use super::{human_prompt, time, Conversation, Message, Request, Role};
use crate::domain::Tokens;

/// What a rollout says about its thread.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rollout {
    pub thread_id: Option<String>,
    /// The thread this one was forked from, and the first of the parent's lines (by ordinal) it
    /// did not take.
    pub forked_from: Option<String>,
    pub forked_from_ordinal: Option<u64>,
    pub cwd: Option<String>,
    /// Every request's counts, in order, with the model of the turn it belongs to.
    pub counts: Vec<TokenCount>,
    /// The model of the last turn (also of turns that reported no usage, like a failed one).
    pub last_model: Option<String>,
    /// The first prompt a person typed.
    pub prompt: Option<String>,
    pub first_at: Option<chrono::DateTime<chrono::Utc>>,
    pub last_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Lines that are not JSON (a torn last line): skipped.
    pub skipped_lines: u64,
    /// What the user typed and the assistant answered, for search.
    pub messages: Vec<Message>,
    /// Resumed from a checkpoint: the running total reached before it (what the first request
    /// read since added to).
    resumed_total: Option<Tokens>,
    /// The first prompt has been read (it may be in the part before a checkpoint).
    prompt_done: bool,
}

/// A `response_item` payload, as far as search reads it.
#[derive(Deserialize)]
struct Item<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    role: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    content: Option<Vec<Part<'a>>>,
}

#[derive(Deserialize)]
struct Part<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    text: Option<Cow<'a, str>>,
}

/// What a rollout reader needs to go on from where it stopped.
#[derive(Serialize, Deserialize)]
struct Checkpoint {
    /// For a count without a time of its own.
    first_at: Option<chrono::DateTime<chrono::Utc>>,
    thread_id: Option<String>,
    forked_from: Option<String>,
    forked_from_ordinal: Option<u64>,
    cwd: Option<String>,
    last_model: Option<String>,
    prompt_done: bool,
    total: Option<Tokens>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TokenCount {
    /// The line's place in the thread (a fork's lines go on from its parent's).
    pub ordinal: Option<u64>,
    pub at: Option<chrono::DateTime<chrono::Utc>>,
    /// The thread's running total after this request.
    pub total: Tokens,
    /// This request's own counts.
    pub last: Option<Tokens>,
    pub model: Option<String>,
}

impl Rollout {
    /// What `resume` needs to go on after the lines read so far.
    pub fn checkpoint(&self) -> Vec<u8> {
        let state = Checkpoint {
            first_at: self.first_at,
            thread_id: self.thread_id.clone(),
            forked_from: self.forked_from.clone(),
            forked_from_ordinal: self.forked_from_ordinal,
            cwd: self.cwd.clone(),
            last_model: self.last_model.clone(),
            prompt_done: self.prompt_done,
            total: self.running_total(),
        };
        super::save_checkpoint(&state)
    }

    /// A reader that goes on from `checkpoint`: its requests are those of the lines read after
    /// it, each what it added to the running total the checkpoint had reached. None if the
    /// checkpoint is not one.
    pub fn resume(checkpoint: &[u8]) -> Option<Rollout> {
        let state: Checkpoint = super::load_checkpoint(checkpoint)?;
        Some(Rollout {
            first_at: state.first_at,
            thread_id: state.thread_id,
            forked_from: state.forked_from,
            forked_from_ordinal: state.forked_from_ordinal,
            cwd: state.cwd,
            last_model: state.last_model,
            prompt_done: state.prompt_done,
            // No count read yet: the first one read says what the thread started from.
            resumed_total: state.total,
            ..Rollout::default()
        })
    }

    /// The thread's running total at the end of what was read (None: no counts read, nor
    /// before a checkpoint).
    pub fn running_total(&self) -> Option<Tokens> {
        self.counts
            .iter()
            .map(|c| c.total)
            .chain(self.resumed_total)
            .reduce(|a, b| a.max_each(&b))
    }

    /// Read a rollout held in memory (see `Rollout::line`).
    pub fn parse(bytes: &[u8]) -> Rollout {
        let mut rollout = Rollout::default();
        super::each_line(bytes, |l| rollout.line(l));
        rollout
    }

    /// Read one line; lines that are not JSON (a torn last line) and unknown types are skipped.
    /// Only the envelope is parsed for every line: the payloads clinvk reads are small, and the
    /// big ones (tool output, the model's messages) are read past without being held.
    pub fn line(&mut self, bytes: &[u8]) {
        let Ok(line) = serde_json::from_slice::<Envelope<'_>>(bytes) else {
            self.skipped_lines += 1;
            return;
        };
        let at = line.timestamp.as_deref().and_then(time);
        if let Some(at) = at {
            super::widen(&mut self.first_at, &mut self.last_at, at);
        }
        let Some(raw) = line.payload else { return };
        let payload = || serde_json::from_str::<Value>(raw.get()).unwrap_or(Value::Null);
        match line.kind.as_deref() {
            Some("session_meta") if self.thread_id.is_none() => {
                let payload = payload();
                self.thread_id = text(&payload, "id").or_else(|| text(&payload, "session_id"));
                self.forked_from = text(&payload, "forked_from_id");
                self.forked_from_ordinal = payload["forked_from_ordinal_exclusive"].as_u64();
                self.cwd = text(&payload, "cwd");
            }
            Some("turn_context") => {
                if let Some(m) = text(&payload(), "model") {
                    self.last_model = Some(m);
                }
            }
            Some("response_item") => {
                // Tool calls and their output (the big items) are read past by type.
                let Ok(item) = serde_json::from_str::<Item<'_>>(raw.get()) else {
                    return;
                };
                if item.kind.as_deref() != Some("message") {
                    return;
                }
                let (role, part_kind) = match item.role.as_deref() {
                    Some("user") => (Role::User, "input_text"),
                    Some("assistant") => (Role::Assistant, "output_text"),
                    _ => return,
                };
                let parts = item.content.unwrap_or_default();
                let texts = parts
                    .iter()
                    .filter(|p| p.kind.as_deref() == Some(part_kind))
                    .filter_map(|p| p.text.as_deref());
                let mut said = Conversation::default();
                for text in texts {
                    let text = match role {
                        Role::User => human_prompt(text),
                        Role::Assistant => Some(text),
                    };
                    let Some(text) = text else { continue };
                    said.said(role, at, text);
                    if role == Role::User && !self.prompt_done {
                        self.prompt = Some(text.to_string());
                        self.prompt_done = true;
                    }
                }
                self.messages.append(&mut said.messages);
            }
            Some("event_msg") => {
                let Ok(event) = serde_json::from_str::<Event<'_>>(raw.get()) else {
                    return;
                };
                match event.kind.as_deref() {
                    Some("user_message") if !self.prompt_done => {
                        self.prompt = event
                            .message
                            .and_then(|m| serde_json::from_str::<String>(m.get()).ok())
                            .as_deref()
                            .and_then(human_prompt)
                            .map(str::to_string);
                        self.prompt_done = self.prompt.is_some();
                    }
                    Some("token_count") => {
                        let info = event
                            .info
                            .and_then(|i| serde_json::from_str::<Value>(i.get()).ok())
                            .unwrap_or(Value::Null);
                        // A rate-limit update without counts: nothing.
                        if let Some(total) = usage(&info["total_token_usage"]) {
                            self.counts.push(TokenCount {
                                ordinal: line.ordinal,
                                at,
                                total,
                                last: usage(&info["last_token_usage"]),
                                model: self.last_model.clone(),
                            });
                        }
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }

    /// The thread as a conversation (what it said moved in, not copied): each request's usage
    /// is what it added to the running total; counts that add nothing (emitted again) are no
    /// request.
    pub fn conversation(self) -> Conversation {
        let mut requests = Vec::new();
        let mut before = self
            .resumed_total
            .or_else(|| self.starting_total())
            .unwrap_or_default();
        for c in &self.counts {
            let tokens = c.total.since(&before);
            before = before.max_each(&c.total);
            let Some(at) = c.at.or(self.first_at) else {
                continue;
            };
            if tokens == Tokens::default() {
                continue;
            }
            requests.push(Request {
                // The ordinal is the line's place in the thread; without one, the running total
                // (which only grows) tells requests apart.
                key: c
                    .ordinal
                    .map_or_else(|| format!("t{}", c.total.total()), |o| format!("o{o}")),
                at,
                model: c.model.clone(),
                tokens,
                running_total: Some(c.total),
            });
        }
        Conversation {
            native_id: self.thread_id,
            workdir: self.cwd,
            prompt: self.prompt,
            first_at: self.first_at,
            last_at: self.last_at,
            requests,
            forked_from: self.forked_from,
            skipped_lines: self.skipped_lines,
            messages: self.messages,
        }
    }

    /// The model that ran up to the running total `total` (the stream's `turn.completed`
    /// figure), else the last turn's.
    pub fn model_at(&self, total: Option<&Tokens>) -> Option<&str> {
        total
            .and_then(|t| self.counts.iter().rev().find(|c| c.total == *t))
            .and_then(|c| c.model.as_deref())
            .or(self.last_model.as_deref())
    }

    /// The running total the thread had reached before line `ordinal` (what a fork of it made
    /// there started from); zero if it had spent nothing by then. None when the lines have no
    /// ordinals to tell.
    pub fn total_before(&self, ordinal: u64) -> Option<Tokens> {
        if self.counts.iter().any(|c| c.ordinal.is_none()) {
            return None;
        }
        Some(
            self.counts
                .iter()
                .rev()
                .find(|c| c.ordinal.is_some_and(|o| o < ordinal))
                .map_or_else(Tokens::default, |c| c.total),
        )
    }

    /// The running total the thread had before this file's first request: for a fork, what it
    /// inherited from its parent; zero for a new thread.
    pub fn starting_total(&self) -> Option<Tokens> {
        let first = self.counts.first()?;
        Some(first.total.since(first.last.as_ref()?))
    }
}

/// A rollout line's envelope: `{"timestamp", "ordinal", "type", "payload"}`.
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow, default)]
    timestamp: Option<Cow<'a, str>>,
    #[serde(default)]
    ordinal: Option<u64>,
    #[serde(rename = "type", borrow, default)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    payload: Option<&'a RawValue>,
}

/// An `event_msg` payload, its big fields left unread.
#[derive(Deserialize)]
struct Event<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    info: Option<&'a RawValue>,
    #[serde(borrow, default)]
    message: Option<&'a RawValue>,
}

fn text(v: &Value, key: &str) -> Option<String> {
    v.get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// `{input_tokens, cached_input_tokens, cache_write_input_tokens, output_tokens,
/// reasoning_output_tokens}`: cached and cache writes are parts of input, reasoning of output.
fn usage(v: &Value) -> Option<Tokens> {
    let count = |key: &str| v.get(key).and_then(Value::as_u64).unwrap_or(0).min(1 << 40);
    v.is_object().then(|| Tokens {
        input: count("input_tokens"),
        output: count("output_tokens"),
        cached: count("cached_input_tokens"),
        cache_write: count("cache_write_input_tokens"),
        reasoning: count("reasoning_output_tokens"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(name: &str) -> Rollout {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/native-samples/");
        Rollout::parse(&std::fs::read(format!("{dir}{name}")).unwrap())
    }

    const THREAD: &str =
        "codex-rollout-2026-12-01T10-50-17-01a2313a-0d07-7771-ad0b-6e3bccc3126b.jsonl";
    const FORK: &str =
        "codex-rollout-2026-12-01T10-50-28-01a2313a-35f8-7cb3-ac16-2a856813b495.jsonl";

    #[test]
    fn what_was_said() {
        use crate::transcripts::said;
        // The environment context and the developer's instructions are not; event copies of
        // the same messages are not read again.
        let c = sample(THREAD).conversation();
        assert_eq!(said(&c), crate::transcripts::THREE_RUNS_SAID);
        // A fork's rollout holds only its own lines.
        assert_eq!(
            said(&sample(FORK).conversation())
                .first()
                .map(String::as_str),
            Some("u: forked")
        );
        let lines = [
            r#"{"type":"response_item","payload":{"type":"function_call_output","output":"file dump"}}"#,
            r#"{"type":"response_item","payload":{"type":"message","role":"user","content":[{"type":"input_image","image_url":"x"},{"type":"input_text","text":"look"}]}}"#,
        ];
        let c = Rollout::parse(lines.join("\n").as_bytes()).conversation();
        assert_eq!(said(&c), ["u: look"]);
    }

    #[test]
    fn a_thread_with_three_runs() {
        let r = sample(THREAD);
        assert_eq!(
            r.thread_id.as_deref(),
            Some("01a2313a-0d07-7771-ad0b-6e3bccc3126b")
        );
        assert_eq!(r.forked_from, None);
        assert_eq!(r.cwd.as_deref(), Some("/home/user/proj/codex-proj"));
        let totals: Vec<u64> = r.counts.iter().map(|c| c.total.input).collect();
        assert_eq!(totals, [5003, 10009, 15018]);
        assert_eq!(r.last_model.as_deref(), Some("gpt-6.1-sol"));
        assert_eq!(r.model_at(Some(&r.counts[1].total)), Some("gpt-6.1-sol"));
        assert_eq!(r.starting_total(), Some(Tokens::default()));
    }

    #[test]
    fn a_fork_starts_from_its_parents_total() {
        let r = sample(FORK);
        assert_eq!(
            r.forked_from.as_deref(),
            Some("01a2313a-0d07-7771-ad0b-6e3bccc3126b")
        );
        let start = r.starting_total().unwrap();
        // The parent's last total (15018 input), which the fork's first total already holds.
        assert_eq!(
            start,
            Tokens {
                input: 15018,
                cached: 9018,
                cache_write: 618,
                output: 198,
                reasoning: 78
            }
        );
        assert_eq!(r.counts[0].total.input, 20030);
    }

    #[test]
    fn what_a_fork_took_from_its_parent_is_the_parents_total_before_the_fork() {
        let fork = sample(FORK);
        assert_eq!(fork.forked_from_ordinal, Some(44));
        let parent = sample(THREAD);
        // The fork took lines 0..44: all three of the parent's runs.
        assert_eq!(parent.total_before(44), fork.starting_total());
        assert_eq!(parent.total_before(44).unwrap().input, 15018);
        assert_eq!(parent.total_before(1), Some(Tokens::default()));
        assert_eq!(parent.total_before(31).unwrap().input, 10009);
    }

    #[test]
    fn a_failed_run_has_a_model_and_no_counts() {
        let r = sample("codex-failed-401-rollout-2026-12-01T10-51-11-01a2313a-dd3c-7ad1-bae1-4cbbbedb5606.jsonl");
        assert!(r.counts.is_empty());
        assert_eq!(r.model_at(None), Some("gpt-6.1-sol"));
        assert_eq!(r.starting_total(), None);
    }

    #[test]
    fn a_thread_as_a_conversation() {
        let c = sample(THREAD).conversation();
        assert_eq!(
            c.prompt.as_deref(),
            Some("hello"),
            "not the environment context"
        );
        assert_eq!(c.workdir.as_deref(), Some("/home/user/proj/codex-proj"));
        let inputs: Vec<u64> = c.requests.iter().map(|r| r.tokens.input).collect();
        assert_eq!(inputs, [5003, 5006, 5009]);
        assert_eq!(c.requests[2].key, "o42");
        assert_eq!(c.requests[0].model.as_deref(), Some("gpt-6.1-sol"));
        let fork = sample(FORK).conversation();
        // Only what the fork added to the parent's total.
        assert_eq!(fork.requests.len(), 1);
        assert_eq!(fork.requests[0].tokens.input, 20030 - 15018);
        assert_eq!(fork.prompt.as_deref(), Some("forked"));
    }

    #[test]
    fn counts_emitted_again_add_nothing() {
        let count = |ordinal: u64, total: u64| {
            format!(
                r#"{{"timestamp":"2026-01-01T00:00:00Z","ordinal":{ordinal},"type":"event_msg","payload":{{"type":"token_count","info":{{"total_token_usage":{{"input_tokens":{total},"output_tokens":1}},"last_token_usage":{{"input_tokens":10,"output_tokens":1}}}}}}}}"#
            )
        };
        let lines = [count(1, 10), count(2, 10), count(3, 25)].join("\n");
        let c = Rollout::parse(lines.as_bytes()).conversation();
        let got: Vec<(&str, u64)> = c
            .requests
            .iter()
            .map(|r| (r.key.as_str(), r.tokens.input))
            .collect();
        assert_eq!(got, [("o1", 10), ("o3", 15)]);
    }

    #[test]
    fn junk_is_skipped() {
        let r = Rollout::parse(b"not json\n{\"type\":\"turn_context\",\"payload\":{\"model\":\"m\"}}\n{\"type\":\"event_msg\",\"payload\":{\"type\":\"token_count\",\"info\":null}}\n{\"trunc");
        assert_eq!(r.last_model.as_deref(), Some("m"));
        assert!(r.counts.is_empty());
        assert_eq!(Rollout::parse(b""), Rollout::default());
        assert_eq!(Rollout::parse(&[0xff, 0xfe, b'\n']).counts, []);
    }

    crate::transcripts::resumable!(Rollout, Rollout::default(), |r: Rollout| {
        Rollout::conversation(r)
    });

    #[test]
    fn read_in_two_parts_as_whole() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/native-samples/");
        for name in [THREAD, FORK] {
            let bytes = std::fs::read(format!("{dir}{name}")).unwrap();
            crate::transcripts::assert_resumes_alike::<Rollout>(&bytes);
        }
        // A count without a time of its own, after the checkpoint.
        let lines = [
            r#"{"timestamp":"2026-01-01T00:00:00Z","ordinal":0,"type":"session_meta","payload":{"id":"t1","cwd":"/w"}}"#,
            r#"{"timestamp":"2026-01-01T00:00:01Z","ordinal":1,"type":"event_msg","payload":{"type":"token_count","info":{"total_token_usage":{"input_tokens":10,"output_tokens":1},"last_token_usage":{"input_tokens":10,"output_tokens":1}}}}"#,
            r#"{"ordinal":2,"type":"event_msg","payload":{"type":"token_count","info":{"total_token_usage":{"input_tokens":25,"output_tokens":3},"last_token_usage":{"input_tokens":15,"output_tokens":2}}}}"#,
        ];
        crate::transcripts::assert_resumes_alike::<Rollout>(lines.join("\n").as_bytes());
    }
}
