//! Claude Code transcripts: `<root>/projects/<dir>/<session id>.jsonl`, one JSON record per
//! line, and the Task subagents' `<session id>/subagents/*.jsonl` beside them (their lines say
//! `isSidechain` and carry the parent's `sessionId`: their usage is the parent's).
//!
//! What counts, once (the rules ccusage and Claude Code's own `/cost` follow):
//! - one request per `message.id` + `requestId`: a response is written as several `assistant`
//!   lines (one per content block) repeating its usage; the last one holds the final figures;
//! - `<synthetic>` lines (errors the CLI wrote itself) are no request;
//! - a sidechain line that replays a main-chain message is not counted again;
//! - a fork's file begins with a copy of its parent's lines, whose assistant lines keep
//!   `requestSessionId` pointing at the parent: those requests are the parent's.
//!
//! Many record types (`mode`, `cost-state`, `last-prompt`, ...) have no timestamp and no usage;
//! they are read past.

use std::borrow::Cow;
use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::{human_prompt, time, Conversation, Request, Role};
use crate::domain::Tokens;

#[derive(Deserialize)]
struct Line<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<Cow<'a, str>>,
    #[serde(rename = "sessionId", borrow, default)]
    session_id: Option<Cow<'a, str>>,
    #[serde(rename = "requestSessionId", borrow, default)]
    request_session_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    cwd: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    timestamp: Option<Cow<'a, str>>,
    #[serde(rename = "isSidechain", default)]
    is_sidechain: Option<bool>,
    #[serde(rename = "isMeta", default)]
    is_meta: Option<bool>,
    /// The CLI's summary of the conversation so far, written when it compacts the context.
    #[serde(rename = "isCompactSummary", default)]
    is_compact_summary: Option<bool>,
    #[serde(rename = "requestId", borrow, default)]
    request_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    message: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct Assistant<'a> {
    #[serde(borrow, default)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    model: Option<Cow<'a, str>>,
    #[serde(default)]
    usage: Option<Usage>,
    #[serde(borrow, default)]
    content: Option<&'a RawValue>,
}

#[derive(Deserialize, Default)]
struct Usage {
    #[serde(default)]
    input_tokens: Option<u64>,
    #[serde(default)]
    cache_creation_input_tokens: Option<u64>,
    #[serde(default)]
    cache_read_input_tokens: Option<u64>,
    #[serde(default)]
    output_tokens: Option<u64>,
    #[serde(default)]
    output_tokens_details: Option<Details>,
}

#[derive(Deserialize, Default)]
struct Details {
    #[serde(default)]
    thinking_tokens: Option<u64>,
}

impl Usage {
    fn tokens(&self) -> Tokens {
        Tokens::anthropic(
            self.input_tokens.unwrap_or(0),
            self.cache_read_input_tokens.unwrap_or(0),
            self.cache_creation_input_tokens.unwrap_or(0),
            self.output_tokens.unwrap_or(0),
            self.output_tokens_details
                .as_ref()
                .and_then(|d| d.thinking_tokens)
                .unwrap_or(0),
        )
    }
}

#[derive(Deserialize)]
struct User<'a> {
    #[serde(borrow, default)]
    content: Option<&'a RawValue>,
}

/// A message's content: a string, or blocks. (Read from the raw JSON by its first character:
/// an untagged enum would copy every tool result whole before trying each form.)
enum Content<'a> {
    Text(Cow<'a, str>),
    Blocks(Vec<Block<'a>>),
}

impl<'a> Content<'a> {
    fn of(raw: Option<&'a RawValue>) -> Option<Content<'a>> {
        let raw = raw?.get();
        match raw.trim_start().as_bytes().first()? {
            b'"' => serde_json::from_str(raw).ok().map(Content::Text),
            b'[' => serde_json::from_str(raw).ok().map(Content::Blocks),
            _ => None,
        }
    }
}

#[derive(Deserialize)]
struct Block<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    text: Option<Cow<'a, str>>,
}

/// Reads one Claude Code transcript, line by line.
#[derive(Default)]
pub struct Reader {
    conversation: Conversation,
    /// Each request key seen (by `key_hash`): where it is in `conversation.requests` (None for
    /// one read before a checkpoint this reader resumed from), and whether it came from a
    /// sidechain line.
    seen: HashMap<u64, (Option<usize>, bool)>,
    /// The first prompt has been read (it may be in the part before a checkpoint).
    prompt_done: bool,
    /// The last timestamp read: for a request line without one.
    last_time: Option<chrono::DateTime<chrono::Utc>>,
}

/// What a reader needs to go on reading a transcript from where it stopped.
#[derive(Serialize, Deserialize)]
struct Checkpoint {
    native_id: Option<String>,
    workdir: Option<String>,
    forked_from: Option<String>,
    prompt_done: bool,
    last_time: Option<chrono::DateTime<chrono::Utc>>,
    /// The keys seen, by hash, the lowest bit set for a sidechain's.
    seen: Vec<u64>,
}

impl Reader {
    pub fn new() -> Reader {
        Reader::default()
    }

    /// What `resume` needs to go on after the lines read so far.
    pub fn checkpoint(&self) -> Vec<u8> {
        let c = &self.conversation;
        let state = Checkpoint {
            native_id: c.native_id.clone(),
            workdir: c.workdir.clone(),
            forked_from: c.forked_from.clone(),
            prompt_done: self.prompt_done,
            last_time: self.last_time,
            seen: self
                .seen
                .iter()
                .map(|(hash, (_, sidechain))| hash & !1 | u64::from(*sidechain))
                .collect(),
        };
        super::save_checkpoint(&state)
    }

    /// A reader that goes on from `checkpoint`: the requests it gives are those of the lines
    /// read after it (a later snapshot of a request read before comes again, with its final
    /// figures). None if the checkpoint is not one.
    pub fn resume(checkpoint: &[u8]) -> Option<Reader> {
        let state: Checkpoint = super::load_checkpoint(checkpoint)?;
        Some(Reader {
            conversation: Conversation {
                native_id: state.native_id,
                workdir: state.workdir,
                forked_from: state.forked_from,
                ..Conversation::default()
            },
            seen: state
                .seen
                .into_iter()
                .map(|h| (h & !1, (None, h & 1 == 1)))
                .collect(),
            prompt_done: state.prompt_done,
            last_time: state.last_time,
        })
    }

    pub fn line(&mut self, bytes: &[u8]) {
        let Ok(line) = serde_json::from_slice::<Line<'_>>(bytes) else {
            self.conversation.skipped_lines += 1;
            return;
        };
        let c = &mut self.conversation;
        if c.native_id.is_none() {
            c.native_id = line.session_id.as_deref().map(str::to_string);
        }
        if c.workdir.is_none() {
            c.workdir = line
                .cwd
                .as_deref()
                .filter(|d| !d.is_empty())
                .map(str::to_string);
        }
        let at = line.timestamp.as_deref().and_then(time);
        let sidechain = line.is_sidechain == Some(true);
        if let Some(at) = at {
            self.last_time = Some(at);
            // A subagent's lines are the parent's work, but not its span of activity.
            if !sidechain {
                c.saw_time(at);
            }
        }
        let Some(message) = line.message else {
            return;
        };
        match line.kind.as_deref() {
            Some("assistant") => {
                let Ok(m) = serde_json::from_str::<Assistant<'_>>(message.get()) else {
                    self.conversation.skipped_lines += 1;
                    return;
                };
                // A subagent's answers are its parent's tool results, not the conversation; a
                // fork's copy of its parent's is part of the fork's (as its prompts are).
                if !sidechain && m.model.as_deref() != Some("<synthetic>") {
                    for text in texts(Content::of(m.content).as_ref()) {
                        self.conversation.said(Role::Assistant, at, text);
                    }
                }
                let foreign = match (&line.request_session_id, &line.session_id) {
                    (Some(request), Some(own)) => request != own,
                    _ => false,
                };
                if foreign {
                    // A fork's copy of its parent: the parent's requests, and the parent's
                    // prompts before them.
                    let c = &mut self.conversation;
                    c.forked_from = line.request_session_id.as_deref().map(str::to_string);
                    c.prompt = None;
                    self.prompt_done = false;
                    return;
                }
                let (Some(id), Some(usage)) = (m.id, m.usage) else {
                    return;
                };
                if m.model.as_deref() == Some("<synthetic>") {
                    return;
                }
                let key = match &line.request_id {
                    Some(r) => format!("{id}:{r}"),
                    None => id.into_owned(),
                };
                let Some(at) = at.or(self.last_time) else {
                    self.conversation.skipped_lines += 1;
                    return;
                };
                self.request(
                    key,
                    at,
                    m.model.map(Cow::into_owned),
                    usage.tokens(),
                    sidechain,
                );
            }
            Some("user")
                if !sidechain
                    && line.is_meta != Some(true)
                    && line.is_compact_summary != Some(true) =>
            {
                let Ok(u) = serde_json::from_str::<User<'_>>(message.get()) else {
                    return;
                };
                // A tool result is the CLI answering itself, not a person.
                let content = Content::of(u.content);
                let typed: Vec<&str> = match &content {
                    Some(Content::Blocks(blocks))
                        if blocks
                            .iter()
                            .any(|b| b.kind.as_deref() == Some("tool_result")) =>
                    {
                        Vec::new()
                    }
                    content => texts(content.as_ref()).filter_map(human_prompt).collect(),
                };
                for text in &typed {
                    self.conversation.said(Role::User, at, text);
                }
                if !self.prompt_done {
                    self.conversation.prompt = typed.first().map(|t| t.to_string());
                    self.prompt_done = self.conversation.prompt.is_some();
                }
            }
            _ => {}
        }
    }

    fn request(
        &mut self,
        key: String,
        at: chrono::DateTime<chrono::Utc>,
        model: Option<String>,
        tokens: Tokens,
        sidechain: bool,
    ) {
        let requests = &mut self.conversation.requests;
        // The lowest bit is the sidechain flag's in a checkpoint: not part of the key's hash.
        let hash = super::key_hash(&key) & !1;
        let new = |requests: &mut Vec<Request>, key, model| {
            requests.push(Request {
                key,
                at,
                model,
                tokens,
                running_total: None,
            });
            Some(requests.len() - 1)
        };
        match self.seen.get_mut(&hash) {
            // A replay of a main-chain request on a sidechain: counted there already.
            Some((_, false)) if sidechain => {}
            // A later snapshot of the same response: its figures are the final ones.
            Some((Some(at_index), was_sidechain)) => {
                let r = &mut requests[*at_index];
                r.tokens = tokens;
                if model.is_some() {
                    r.model = model;
                }
                *was_sidechain &= sidechain;
            }
            // The same, of a response read before the checkpoint: given again, final.
            Some((at_index @ None, was_sidechain)) => {
                *at_index = new(requests, key, model);
                *was_sidechain &= sidechain;
            }
            None => {
                let at_index = new(requests, key, model);
                self.seen.insert(hash, (at_index, sidechain));
            }
        }
    }

    pub fn finish(self) -> Conversation {
        self.conversation
    }
}

/// The text of a message's content: the string, or its `text` blocks.
fn texts<'c>(content: Option<&'c Content<'_>>) -> impl Iterator<Item = &'c str> {
    let (whole, blocks) = match content {
        Some(Content::Text(text)) => (Some(text.as_ref()), &[][..]),
        Some(Content::Blocks(blocks)) => (None, blocks.as_slice()),
        None => (None, &[][..]),
    };
    whole.into_iter().chain(
        blocks
            .iter()
            .filter(|b| b.kind.as_deref() == Some("text"))
            .filter_map(|b| b.text.as_deref()),
    )
}

/// Read a whole transcript held in memory.
pub fn parse(bytes: &[u8]) -> Conversation {
    let mut reader = Reader::new();
    super::each_line(bytes, |l| reader.line(l));
    reader.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transcripts::sample;

    const RESUMED: &str = "claude-8804da8a-3e63-4991-a39b-a2fac3f7fd34.jsonl";
    const FORK: &str = "claude-94895dfa-2027-4de2-9cdf-81bebfcae0c8.jsonl";
    const FAILED: &str = "claude-failed-401-a7277a73-81ee-4c9f-9dff-9f13ee749f1b.jsonl";

    fn tokens(n: u64) -> Tokens {
        // The samples' mock figures for request n: 100+n uncached, 2000+n written, 30000+n read,
        // 40+n out of which 7+n thinking.
        Tokens::anthropic(100 + n, 30000 + n, 2000 + n, 40 + n, 7 + n)
    }

    #[test]
    fn a_conversation_resumed_once() {
        let c = parse(&sample(RESUMED));
        assert_eq!(
            c.native_id.as_deref(),
            Some("8804da8a-3e63-4991-a39b-a2fac3f7fd34")
        );
        assert_eq!(c.workdir.as_deref(), Some("/home/user/proj/claude-proj"));
        assert_eq!(c.prompt.as_deref(), Some("hello"));
        assert_eq!(c.forked_from, None);
        let keys: Vec<&str> = c.requests.iter().map(|r| r.key.as_str()).collect();
        assert_eq!(
            keys,
            ["msg_mock_002:req_mock_002", "msg_mock_003:req_mock_003"]
        );
        assert_eq!(c.requests[0].tokens, tokens(2));
        assert_eq!(c.requests[1].tokens, tokens(3));
        assert_eq!(c.requests[0].model.as_deref(), Some("claude-opus-5-5"));
        assert_eq!(c.requests[1].at, time("2026-12-01T10:38:03.763Z").unwrap());
        assert_eq!(c.first_at, time("2026-12-01T10:37:37.309Z"));
        assert_eq!(c.last_at, time("2026-12-01T10:38:03.763Z"));
        assert_eq!(c.skipped_lines, 0);
    }

    #[test]
    fn a_fork_counts_only_its_own_requests() {
        let c = parse(&sample(FORK));
        assert_eq!(
            c.forked_from.as_deref(),
            Some("8804da8a-3e63-4991-a39b-a2fac3f7fd34")
        );
        assert_eq!(
            c.prompt.as_deref(),
            Some("forked"),
            "not the parent's prompt"
        );
        assert_eq!(c.requests.len(), 1);
        assert_eq!(c.requests[0].key, "msg_mock_004:req_mock_004");
        assert_eq!(c.requests[0].tokens, tokens(4));
    }

    #[test]
    fn a_failed_run_has_no_request() {
        let c = parse(&sample(FAILED));
        assert_eq!(c.prompt.as_deref(), Some("hi"));
        assert!(c.requests.is_empty(), "{:?}", c.requests);
    }

    fn assistant(id: &str, req: &str, out: u64, extra: &str) -> String {
        format!(
            r#"{{"type":"assistant","sessionId":"s1","timestamp":"2026-01-01T00:00:0{out}Z","requestId":"{req}","message":{{"id":"{id}","model":"claude-sonnet-4-6","usage":{{"input_tokens":1,"output_tokens":{out}}}}}{extra}}}"#
        )
    }

    #[test]
    fn repeats_snapshots_replays_and_junk() {
        let lines = [
            r#"{"type":"user","sessionId":"s1","isMeta":true,"message":{"role":"user","content":"<command-name>/init</command-name>"}}"#.to_string(),
            r#"{"type":"user","sessionId":"s1","message":{"role":"user","content":[{"type":"tool_result","content":"x"}]}}"#.to_string(),
            r#"{"type":"user","sessionId":"s1","cwd":"/w","message":{"role":"user","content":[{"type":"text","text":"<system-reminder>x</system-reminder>"},{"type":"text","text":"real prompt"}]}}"#.to_string(),
            // One response in two content blocks: the second holds the final output count.
            assistant("m1", "r1", 3, ""),
            assistant("m1", "r1", 5, ""),
            // A sidechain replay of m1, and a subagent request of its own.
            assistant("m1", "r1", 9, r#","isSidechain":true"#),
            assistant("m2", "r2", 4, r#","isSidechain":true"#),
            // The CLI's own error line.
            r#"{"type":"assistant","sessionId":"s1","message":{"id":"x","model":"<synthetic>","usage":{"input_tokens":0,"output_tokens":0}}}"#.to_string(),
            "not json".to_string(),
            r#"{"type":"assistant","sessionId":"s1","message":{"id":"m3","usage":{"input_tokens":-1}}}"#.to_string(),
        ];
        let c = parse(lines.join("\n").as_bytes());
        assert_eq!(c.prompt.as_deref(), Some("real prompt"));
        assert_eq!(c.workdir.as_deref(), Some("/w"));
        let got: Vec<(&str, u64)> = c
            .requests
            .iter()
            .map(|r| (r.key.as_str(), r.tokens.output))
            .collect();
        assert_eq!(got, [("m1:r1", 5), ("m2:r2", 4)]);
        assert_eq!(c.skipped_lines, 2);
        // The subagent's line is no activity of the conversation's own.
        assert_eq!(c.last_at, time("2026-01-01T00:00:05Z"));
    }

    #[test]
    fn what_was_said() {
        use crate::transcripts::said;
        let resumed = &crate::transcripts::THREE_RUNS_SAID[..4];
        assert_eq!(said(&parse(&sample(RESUMED))), resumed);
        // A fork holds its parent's conversation, then its own.
        let mut fork = resumed.to_vec();
        fork.extend(["u: forked", "a: MOCK_OK"]);
        assert_eq!(said(&parse(&sample(FORK))), fork);
        // The CLI's own error line is not an answer.
        assert_eq!(said(&parse(&sample(FAILED))), ["u: hi"]);
        let line = |kind: &str, extra: &str, content: &str| {
            format!(
                r#"{{"type":"{kind}","sessionId":"s1"{extra},"message":{{"id":"m","content":{content}}}}}"#
            )
        };
        let lines = [
            line(
                "user",
                r#","isMeta":true"#,
                r#""<command-name>/init</command-name>""#,
            ),
            line(
                "user",
                "",
                r#"[{"type":"tool_result","content":"file dump"}]"#,
            ),
            line(
                "user",
                r#","isCompactSummary":true"#,
                r#""This session is being continued from a previous conversation""#,
            ),
            line(
                "user",
                "",
                r#"[{"type":"text","text":"<system-reminder>x</system-reminder>"},{"type":"text","text":"two"},{"type":"text","text":"parts"}]"#,
            ),
            line(
                "assistant",
                "",
                r#"[{"type":"thinking","thinking":"hmm"},{"type":"text","text":"the answer"},{"type":"tool_use","input":{"cmd":"ls"}}]"#,
            ),
            line(
                "assistant",
                r#","isSidechain":true"#,
                r#"[{"type":"text","text":"a subagent's"}]"#,
            ),
            line("user", r#","isSidechain":true"#, r#""a task's prompt""#),
        ];
        let c = parse(lines.join("\n").as_bytes());
        assert_eq!(said(&c), ["u: two", "u: parts", "a: the answer"]);
    }

    crate::transcripts::resumable!(Reader, Reader::new(), Reader::finish);

    #[test]
    fn read_in_two_parts_as_whole() {
        use crate::transcripts::assert_resumes_alike;
        assert_resumes_alike::<Reader>(&sample(RESUMED));
        assert_resumes_alike::<Reader>(&sample(FORK));
        // Snapshots, a replay and a subagent's request, split anywhere; keys whose hashes are
        // even (m1:r1) and odd (m2:r1, m1:r2).
        assert_eq!(
            (
                crate::transcripts::key_hash("m1:r1") & 1,
                crate::transcripts::key_hash("m2:r1") & 1
            ),
            (0, 1)
        );
        let lines = [
            assistant("m1", "r1", 3, ""),
            assistant("m1", "r1", 5, ""),
            assistant("m1", "r1", 9, r#","isSidechain":true"#),
            assistant("m2", "r2", 4, r#","isSidechain":true"#),
            assistant("m2", "r2", 6, ""),
            assistant("m2", "r2", 8, r#","isSidechain":true"#),
            assistant("m2", "r1", 5, ""),
            assistant("m2", "r1", 9, r#","isSidechain":true"#),
            assistant("m1", "r2", 2, r#","isSidechain":true"#),
            assistant("m1", "r2", 3, r#","isSidechain":true"#),
        ];
        assert_resumes_alike::<Reader>(lines.join("\n").as_bytes());
    }
}
