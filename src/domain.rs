//! The words every layer shares: which backend, which status, a session's id, its tags, and
//! token counts. Nothing here reads files or knows the command line, so that the backends,
//! the config and the store can all use it without using each other.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

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
        // `pad`, not `write_str`: `{:<10}` in a table must line the column up.
        f.pad(&self.0)
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
                f.pad(self.as_str())
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

string_enum!(
    /// Where a session came from: a run through clinvk, or a conversation held directly in a
    /// CLI and imported from its transcripts (`sessions import`).
    Origin, "origin", { Clinvk => "clinvk", Imported => "imported" }
);

impl Origin {
    pub fn is_clinvk(&self) -> bool {
        *self == Origin::Clinvk
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

/// Token counts, of one run or summed over many, normalised across backends: `input` is every
/// prompt token (uncached + cache reads + cache writes), `cached` the part of `input` read from a
/// cache, `cache_write` the part written to one, `output` every generated token including
/// reasoning, `reasoning` the part of `output` spent thinking. The one type for token counts in
/// backends, transcripts, the store, stats and pricing; a session file writes it as its
/// `token_usage` (`store::session::TokenUsage`, which adds the guide's `total`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tokens {
    pub input: u64,
    pub output: u64,
    pub cached: u64,
    pub cache_write: u64,
    pub reasoning: u64,
}

impl Tokens {
    /// Anthropic's counts (`input_tokens` without the cache, cache reads, cache writes,
    /// `output_tokens`, thinking) in clinvk's terms: input includes cache reads and writes;
    /// thinking is part of the output (never more than it).
    pub fn anthropic(input: u64, read: u64, write: u64, output: u64, thinking: u64) -> Tokens {
        Tokens {
            input: input.saturating_add(read).saturating_add(write),
            output,
            cached: read,
            cache_write: write,
            reasoning: thinking.min(output),
        }
    }

    /// The guide's `total`: input + output (cached is part of input, not added again).
    pub fn total(&self) -> u64 {
        self.input.saturating_add(self.output)
    }

    /// Both counts together.
    pub fn plus(&self, other: &Tokens) -> Tokens {
        self.zip(other, u64::saturating_add)
    }

    /// The larger of each count, for the highest running total seen so far (Codex).
    pub fn max_each(&self, other: &Tokens) -> Tokens {
        self.zip(other, u64::max)
    }

    /// `self - earlier`, never below zero, for backends that report a thread's running total
    /// (Codex).
    pub fn since(&self, earlier: &Tokens) -> Tokens {
        self.zip(earlier, u64::saturating_sub)
    }

    fn zip(&self, o: &Tokens, f: impl Fn(u64, u64) -> u64) -> Tokens {
        Tokens {
            input: f(self.input, o.input),
            output: f(self.output, o.output),
            cached: f(self.cached, o.cached),
            cache_write: f(self.cache_write, o.cache_write),
            reasoning: f(self.reasoning, o.reasoning),
        }
    }
}

/// FNV-1a, 64 bits: small, and the same in every build (what is kept on disk, checkpoints and
/// index rows, outlives the binary that wrote it).
pub fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Who said a message of a conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Assistant,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Assistant => "assistant",
        }
    }
}

/// One thing said in a conversation (a prompt a person typed, an assistant's answer): what
/// search looks in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub role: Role,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<chrono::DateTime<chrono::Utc>>,
    pub text: String,
}

/// The most of one message kept for search: a pasted log or a long generated answer is
/// searchable by its beginning, and cannot grow the index without bound.
pub const MESSAGE_MAX: usize = 16 * 1024;

impl Message {
    /// `text` as search keeps it: trimmed, cut at `MESSAGE_MAX` bytes (at a character), NULs
    /// as spaces; None if nothing is left.
    pub fn of(
        role: Role,
        at: Option<chrono::DateTime<chrono::Utc>>,
        text: &str,
    ) -> Option<Message> {
        let text = text.trim();
        if text.is_empty() {
            return None;
        }
        let mut end = text.len().min(MESSAGE_MAX);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        Some(Message {
            role,
            at,
            text: text[..end].replace('\0', " "),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn names_pad_to_a_width_in_tables() {
        assert_eq!(format!("{:<6}|", Backend::Codex), "codex |");
        assert_eq!(format!("{:>9}|", Status::Active), "   active|");
        assert_eq!(format!("{:<5}|", SessionId::parse("ab").unwrap()), "ab   |");
    }

    #[test]
    fn token_arithmetic_saturates() {
        let a = Tokens {
            input: 10,
            output: 5,
            cached: 4,
            cache_write: 1,
            reasoning: 2,
        };
        let b = Tokens {
            input: 3,
            output: 9,
            ..Tokens::default()
        };
        assert_eq!(a.plus(&b).input, 13);
        assert_eq!(
            a.since(&b),
            Tokens {
                input: 7,
                output: 0,
                cached: 4,
                cache_write: 1,
                reasoning: 2
            }
        );
        assert_eq!(a.max_each(&b).output, 9);
        assert_eq!(
            Tokens {
                input: u64::MAX,
                output: 1,
                ..a
            }
            .total(),
            u64::MAX
        );
    }
}
