//! The CLIs saying, while they run, that a request failed and they are trying again: Claude's
//! `system/api_retry` events and Codex's "Reconnecting..." errors on stdout, Gemini's "Attempt
//! N failed ... Retrying with backoff" lines on stderr. Read line by line as they come, so
//! that a run stuck retrying (Codex retries a dead network forever) is visible.

use serde_json::Value;

use super::failure::{self, Kind};
use super::process::Stream;
use crate::domain::Backend;

/// One retry, as a CLI announced it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retry {
    /// What failed, briefly: "API error 429", "network error".
    pub what: String,
    /// Which attempt this is, and of how many, when the CLI says.
    pub attempt: Option<u32>,
    pub of: Option<u32>,
}

impl Retry {
    /// "claude: API error 429, retrying (3/10)".
    pub fn line(&self, backend: Backend) -> String {
        let count = match (self.attempt, self.of) {
            (Some(n), Some(of)) => format!(" ({n}/{of})"),
            (Some(n), None) => format!(" (attempt {n})"),
            _ => String::new(),
        };
        format!("{backend}: {}, retrying{count}", self.what)
    }
}

/// The retry `line` (from `stream`) announces, if it is one.
pub fn notice(backend: Backend, stream: Stream, line: &str) -> Option<Retry> {
    match (backend, stream) {
        (Backend::Claude, Stream::Stdout) => claude(line),
        (Backend::Codex, Stream::Stdout) => codex(line),
        (Backend::Gemini, Stream::Stderr) => gemini(line),
        _ => None,
    }
}

/// `{"type":"system","subtype":"api_retry","attempt":1,"max_retries":10,"error_status":401,
/// "error":"authentication_failed"}`.
fn claude(line: &str) -> Option<Retry> {
    if !line.contains("api_retry") {
        return None;
    }
    let event: Value = serde_json::from_str(line).ok()?;
    if event["type"] != "system" || event["subtype"] != "api_retry" {
        return None;
    }
    let status = event["error_status"]
        .as_u64()
        .and_then(|s| u16::try_from(s).ok());
    let error = event["error"].as_str().unwrap_or_default();
    Some(Retry {
        what: what(status, error),
        attempt: count(&event["attempt"]),
        of: count(&event["max_retries"]),
    })
}

/// `{"type":"error","message":"Reconnecting... 2/5 (unexpected status 401 Unauthorized: ...)"}`
/// or "Reconnecting... waiting for network (...)".
fn codex(line: &str) -> Option<Retry> {
    if !line.contains("Reconnecting...") {
        return None;
    }
    let event: Value = serde_json::from_str(line).ok()?;
    let message = event["message"]
        .as_str()
        .filter(|_| event["type"] == "error")?;
    let rest = message.strip_prefix("Reconnecting... ")?;
    let (counter, why) = rest.split_once(" (").unwrap_or((rest, ""));
    let (attempt, of) = match counter.split_once('/') {
        Some((n, of)) => (n.parse().ok(), of.parse().ok()),
        None => (None, None),
    };
    let why = why.strip_suffix(')').unwrap_or(why);
    Some(Retry {
        what: what(failure::status_in(why), why),
        attempt,
        of,
    })
}

/// "Attempt 1 failed with status 429. Retrying with backoff... _ApiError: ..." or "Attempt 2
/// failed. Retrying with backoff... Error: exception TypeError: fetch failed sending request".
fn gemini(line: &str) -> Option<Retry> {
    let rest = line.trim().strip_prefix("Attempt ")?;
    let (head, why) = rest.split_once("Retrying with backoff...")?;
    let attempt = head
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|n| n.parse().ok());
    let status = head
        .split_once("with status ")
        .and_then(|(_, s)| s.trim_end_matches(['.', ' ']).parse().ok());
    Some(Retry {
        what: what(status, why),
        attempt,
        of: None,
    })
}

fn count(v: &Value) -> Option<u32> {
    v.as_u64().and_then(|n| u32::try_from(n).ok())
}

/// "API error 429", "network error", "service overloaded", or the CLI's reason in short.
fn what(status: Option<u16>, reason: &str) -> String {
    match (status, Kind::of(status, reason)) {
        (Some(status), _) => format!("API error {status}"),
        (None, Kind::Network) => "network error".into(),
        (None, Kind::Server) => "service overloaded".into(),
        _ if reason.is_empty() || reason == "unknown" => "no answer from the API".into(),
        _ => {
            let short: String = failure::one_line(reason).chars().take(60).collect();
            format!("error ({short})")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines_of(path: &str) -> Vec<String> {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/real-cli-captures/");
        std::fs::read_to_string(format!("{dir}{path}"))
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn notices(backend: Backend, stream: Stream, path: &str) -> Vec<String> {
        lines_of(path)
            .iter()
            .filter_map(|l| notice(backend, stream, l))
            .map(|r| r.line(backend))
            .collect()
    }

    #[test]
    fn claude_retry_events() {
        assert_eq!(
            notices(Backend::Claude, Stream::Stdout, "claude/retry-then-ok.out"),
            [
                "claude: API error 500, retrying (1/10)",
                "claude: API error 500, retrying (2/10)"
            ]
        );
        let dead = notices(Backend::Claude, Stream::Stdout, "claude/deadport.out");
        assert_eq!(dead.len(), 7);
        assert_eq!(dead[0], "claude: no answer from the API, retrying (1/10)");
        assert_eq!(
            notices(Backend::Claude, Stream::Stdout, "claude/fail401.out")[0],
            "claude: API error 401, retrying (1/10)"
        );
        assert!(notices(Backend::Claude, Stream::Stdout, "claude/new.out").is_empty());
    }

    #[test]
    fn codex_reconnects() {
        let auth = notices(Backend::Codex, Stream::Stdout, "codex/fail401.out");
        assert_eq!(auth[0], "codex: API error 401, retrying (2/5)");
        assert_eq!(auth.len(), 9);
        assert_eq!(
            notices(Backend::Codex, Stream::Stdout, "codex/fail500.out")[0],
            "codex: service overloaded, retrying (2/5)"
        );
        let dead = notices(Backend::Codex, Stream::Stdout, "codex/deadport.out");
        assert_eq!(dead[0], "codex: network error, retrying (2/5)");
        assert_eq!(dead.last().unwrap(), "codex: network error, retrying");
        assert!(notices(Backend::Codex, Stream::Stdout, "codex/new.out").is_empty());
    }

    #[test]
    fn gemini_attempts_on_stderr() {
        assert_eq!(
            notices(Backend::Gemini, Stream::Stderr, "gemini/retry-then-ok.err"),
            ["gemini: API error 500, retrying (attempt 1)"]
        );
        let dead = notices(Backend::Gemini, Stream::Stderr, "gemini/r1-deadport.err");
        assert_eq!(dead[0], "gemini: network error, retrying (attempt 1)");
        assert_eq!(dead.len(), 4);
        // "Max attempts reached" is the end, not a retry; stdout is not where Gemini says it.
        assert!(notices(Backend::Gemini, Stream::Stderr, "gemini/r1m-fail429.err").is_empty());
        assert!(notice(
            Backend::Gemini,
            Stream::Stdout,
            "Attempt 1 failed. Retrying with backoff..."
        )
        .is_none());
    }
}
