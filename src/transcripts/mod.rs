//! The CLIs' own transcripts on disk: Claude Code projects, Codex rollouts, Gemini CLI chats.
//! clinvk reads them and never writes, locks or moves them.
//!
//! `claude`, `codex` and `gemini` are pure (lines in, records out) and tested on the real
//! samples in `tests/data/native-samples`: each reader is fed a transcript line by line (so a
//! file of any size is read in bounded memory) and gives back a `Conversation` with every API
//! request once, by the backend's own rules for what repeats. `locate` knows where each CLI
//! keeps its files (its own directory variables first, then the home directory).
//!
//! Runs use them for what the CLIs' printed output leaves out (the model a Codex thread ran, the
//! total a Codex fork started from, whether a failed Gemini run left anything to resume); the
//! import (`crate::import`) turns whole conversations into sessions.

pub mod claude;
pub mod codex;
pub mod gemini;
pub mod locate;

use chrono::{DateTime, Utc};

pub(crate) use crate::domain::fnv;
use crate::domain::Tokens;
pub use crate::domain::{Message, Role, MESSAGE_MAX};

/// One API request, as its transcript records it, counted once.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// What tells the request apart within its conversation: Claude's `message.id` and
    /// `requestId`, Gemini's message id, Codex's line ordinal (or running total).
    pub key: String,
    pub at: DateTime<Utc>,
    pub model: Option<String>,
    pub tokens: Tokens,
    /// Codex: the thread's running total after this request (what a run through clinvk is
    /// charged against).
    pub running_total: Option<Tokens>,
}

/// What a transcript says about its conversation.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Conversation {
    /// The CLI's id for it (what `--resume` takes).
    pub native_id: Option<String>,
    /// The working directory, from the records themselves.
    pub workdir: Option<String>,
    /// The first prompt a person typed (not a command, context block or instructions file).
    pub prompt: Option<String>,
    pub first_at: Option<DateTime<Utc>>,
    pub last_at: Option<DateTime<Utc>>,
    /// Every request, in the order first seen.
    pub requests: Vec<Request>,
    /// The conversation this one was forked from (its native id), when the transcript says.
    pub forked_from: Option<String>,
    /// Lines that could not be read (not JSON, wrong types, too long): skipped.
    pub skipped_lines: u64,
    /// What a person typed and what the assistant answered, in the order read: what search
    /// looks in. Tool calls, tool results and the CLIs' own context blocks are left out.
    pub messages: Vec<Message>,
}

impl Conversation {
    /// Keep `text` as said by `role`, as search keeps it (`Message::of`).
    pub(crate) fn said(&mut self, role: Role, at: Option<DateTime<Utc>>, text: &str) {
        self.messages.extend(Message::of(role, at, text));
    }
}

impl Conversation {
    /// Widen the conversation's time span to include `at`.
    fn saw_time(&mut self, at: DateTime<Utc>) {
        widen(&mut self.first_at, &mut self.last_at, at);
    }
}

/// Widen the span `first..=last` to include `at`.
pub(crate) fn widen(
    first: &mut Option<DateTime<Utc>>,
    last: &mut Option<DateTime<Utc>>,
    at: DateTime<Utc>,
) {
    *first = Some(first.map_or(at, |t| t.min(at)));
    *last = Some(last.map_or(at, |t| t.max(at)));
}

/// A reader's checkpoint as bytes: the checkpoint version, then the reader's own state.
pub(crate) fn save_checkpoint<T: serde::Serialize>(state: &T) -> Vec<u8> {
    serde_json::to_vec(&Versioned {
        v: CHECKPOINT,
        state,
    })
    .expect("a checkpoint serializes")
}

/// The state in a checkpoint of this build's making (None: another version, or not one).
pub(crate) fn load_checkpoint<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Option<T> {
    let saved: Versioned<T> = serde_json::from_slice(bytes).ok()?;
    (saved.v == CHECKPOINT).then_some(saved.state)
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Versioned<T> {
    v: u32,
    state: T,
}

/// A transcript's timestamp (RFC 3339, as every CLI writes them); None for anything else.
pub fn time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// The text of a prompt a person typed, or None for what the CLIs put in the user's place: their
/// context blocks (`<environment_context>`, `<session_context>`, `<system-reminder>`, ...),
/// slash-command records (`<command-name>`, `<local-command-stdout>`), instructions files
/// (`# AGENTS.md instructions ...`) and Claude's caveats. Whitespace-only text is none either.
pub fn human_prompt(text: &str) -> Option<&str> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    let generated = context_block(text)
        || text.starts_with("# AGENTS.md")
        || text.starts_with("Caveat: The messages below were generated")
        || text.starts_with("[Request interrupted");
    (!generated).then_some(text)
}

/// Whether `text` opens with one of the CLIs' context tags: `<environment_context>`,
/// `<system-reminder>`, `<command-name>`, ... (their names join words with `_` or `-`); not a
/// pasted `<div>` or `<Button>`, which a person may well have typed.
fn context_block(text: &str) -> bool {
    let Some(rest) = text.strip_prefix('<') else {
        return false;
    };
    let name: String = rest
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .collect();
    name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name.contains(['_', '-'])
        && rest[name.len()..].starts_with(['>', ' '])
}

/// The version of the readers' checkpoints: a change to what they hold or mean bumps it, and
/// files with older ones are read whole again.
const CHECKPOINT: u32 = 3;

/// A request key as a reader's checkpoint keeps it: 8 bytes however long the key, and the same
/// in every build (FNV-1a), since checkpoints outlive the binary that wrote them.
pub(crate) fn key_hash(key: &str) -> u64 {
    fnv(key.as_bytes())
}

/// Feed `bytes` to `line` a line at a time (tests and small files).
pub fn each_line(bytes: &[u8], mut line: impl FnMut(&[u8])) {
    for l in bytes.split(|b| *b == b'\n') {
        let l = l.strip_suffix(b"\r").unwrap_or(l);
        if !l.trim_ascii().is_empty() {
            line(l);
        }
    }
}

#[cfg(test)]
pub(crate) fn sample(name: &str) -> Vec<u8> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/native-samples/");
    std::fs::read(format!("{dir}{name}")).expect("a native sample")
}

/// A reader that can stop and go on (see `assert_resumes_alike`).
#[cfg(test)]
pub(crate) trait Resumable: Sized {
    fn fresh() -> Self;
    fn feed(&mut self, line: &[u8]);
    fn save(&self) -> Vec<u8>;
    fn restore(checkpoint: &[u8]) -> Option<Self>;
    fn conversation(self) -> Conversation;
}

/// `Resumable` for a reader with `line`, `checkpoint` and `resume`, made by `$fresh` and
/// finished by `$finish`.
#[cfg(test)]
macro_rules! resumable {
    ($reader:ty, $fresh:expr, $finish:expr) => {
        impl crate::transcripts::Resumable for $reader {
            fn fresh() -> Self {
                $fresh
            }
            fn feed(&mut self, line: &[u8]) {
                self.line(line)
            }
            fn save(&self) -> Vec<u8> {
                self.checkpoint()
            }
            fn restore(checkpoint: &[u8]) -> Option<Self> {
                <$reader>::resume(checkpoint)
            }
            fn conversation(self) -> crate::transcripts::Conversation {
                $finish(self)
            }
        }
    };
}
#[cfg(test)]
pub(crate) use resumable;

/// Read `bytes` whole, and in two parts at every line boundary with a checkpoint between (what
/// an import of a file that grew does): the requests of the two parts, a later figure of a
/// request replacing the earlier one (as the import's merge does), are the whole read's.
#[cfg(test)]
pub(crate) fn assert_resumes_alike<R: Resumable>(bytes: &[u8]) {
    use std::collections::BTreeMap;
    let mut lines = Vec::new();
    each_line(bytes, |l| lines.push(l.to_vec()));
    let figures = |requests: &[Request], into: &mut BTreeMap<String, (Tokens, Option<String>)>| {
        for r in requests {
            let known = into.get(&r.key).and_then(|k| k.1.clone());
            into.insert(r.key.clone(), (r.tokens, r.model.clone().or(known)));
        }
    };
    let mut whole_reader = R::fresh();
    lines.iter().for_each(|l| whole_reader.feed(l));
    let whole = whole_reader.conversation();
    let mut want = BTreeMap::new();
    figures(&whole.requests, &mut want);
    assert!(!want.is_empty(), "a sample with requests");
    for split in 0..=lines.len() {
        let mut first = R::fresh();
        lines[..split].iter().for_each(|l| first.feed(l));
        let checkpoint = first.save();
        let mut second = R::restore(&checkpoint).expect("a checkpoint resumes");
        lines[split..].iter().for_each(|l| second.feed(l));
        let (first, second) = (first.conversation(), second.conversation());
        let mut got = BTreeMap::new();
        figures(&first.requests, &mut got);
        figures(&second.requests, &mut got);
        assert_eq!(got, want, "split after line {split}");
        let said: Vec<&Message> = first.messages.iter().chain(&second.messages).collect();
        assert_eq!(
            said,
            whole.messages.iter().collect::<Vec<_>>(),
            "messages, split after line {split}"
        );
        if split > 0 {
            assert_eq!(
                second.native_id, whole.native_id,
                "split after line {split}"
            );
        }
    }
    assert_eq!(R::restore(b"not a checkpoint").map(|_| ()), None);
}

/// What the samples of three runs say (hello, again, third), as `said` shows it.
#[cfg(test)]
pub(crate) const THREE_RUNS_SAID: [&str; 6] = [
    "u: hello",
    "a: MOCK_OK",
    "u: again",
    "a: MOCK_OK",
    "u: third",
    "a: MOCK_OK",
];

/// Each message as "u: text" or "a: text", for tests.
#[cfg(test)]
pub(crate) fn said(c: &Conversation) -> Vec<String> {
    c.messages
        .iter()
        .map(|m| {
            let who = if m.role == Role::User { "u" } else { "a" };
            format!("{who}: {}", m.text)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_trimmed_and_cut_at_a_character() {
        let mut c = Conversation::default();
        c.said(Role::User, None, "  \n ");
        c.said(Role::User, None, " hi \n");
        c.said(Role::Assistant, None, &"é".repeat(MESSAGE_MAX));
        assert_eq!(c.messages.len(), 2);
        assert_eq!(c.messages[0].text, "hi");
        assert_eq!(c.messages[1].text.len(), MESSAGE_MAX);
    }

    #[test]
    fn what_a_person_typed() {
        assert_eq!(human_prompt("  fix the bug\n"), Some("fix the bug"));
        assert_eq!(human_prompt("<2 lines"), Some("<2 lines"));
        // Pasted markup is what a person typed.
        assert_eq!(
            human_prompt("<div>why is this</div>"),
            Some("<div>why is this</div>")
        );
        assert_eq!(human_prompt("<Button onClick>"), Some("<Button onClick>"));
        for generated in [
            "<environment_context>\n  <cwd>/x</cwd>",
            "<session_context>\nThis is the Gemini CLI.",
            "<command-name>/clear</command-name>",
            "<local-command-stdout></local-command-stdout>",
            "# AGENTS.md instructions for /x",
            "Caveat: The messages below were generated by the user while running local commands.",
            "[Request interrupted by user]",
            "   ",
        ] {
            assert_eq!(human_prompt(generated), None, "{generated}");
        }
    }

    #[test]
    fn key_hashes_are_fixed() {
        // What earlier checkpoints hold: a change here would make every resumed read wrong.
        assert_eq!(key_hash(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(key_hash("a"), 0xaf63_dc4c_8601_ec8c);
        assert_ne!(key_hash("m1:r1"), key_hash("m1:r2"));
    }

    #[test]
    fn times() {
        assert!(time("2026-12-01T10:37:37.430Z").is_some());
        assert!(time("2026-12-01T10:37:37+02:00").is_some());
        assert_eq!(time("yesterday"), None);
        assert_eq!(time("+262142-12-31T23:59:59Z"), None);
    }
}
