//! Backend adapters: how each AI CLI reports a run, read into one shape.
//!
//! Each adapter is pure: it reads what the CLI wrote (stdout, stderr, exit code) and says what
//! happened. Spawning the CLI is a separate layer, so that every trap the CLIs are known for
//! (see `shared/reference/backend-cli-formats.md`) is covered by unit tests on real output.

pub mod claude;
pub mod codex;
pub mod failure;
pub mod gemini;
pub mod invoke;
pub mod process;
pub mod retry;

use serde_json::Value;

use crate::domain::Backend;
pub use crate::domain::Tokens;

/// Read a finished run of `backend`'s CLI.
pub fn parse(backend: Backend, stdout: &str, stderr: &str, exit_code: Option<i32>) -> Outcome {
    match backend {
        Backend::Claude => claude::parse(stdout, stderr, exit_code),
        Backend::Codex => codex::parse(stdout, stderr, exit_code),
        Backend::Gemini => gemini::parse(stdout, stderr, exit_code),
    }
}

/// What one run of a backend CLI produced.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outcome {
    /// The backend's own session id, needed to resume.
    pub session_id: Option<String>,
    /// The model that actually answered, when the backend says.
    pub model: Option<String>,
    /// The response text.
    pub text: String,
    pub usage: Option<Tokens>,
    /// True when `usage` is the thread's running total rather than this run's (Codex).
    pub usage_is_cumulative: bool,
    /// Cost the backend itself reported (Claude), in US dollars.
    pub cost_usd: Option<f64>,
    /// Why the run failed, if it did; None means success.
    pub error: Option<String>,
}

/// Money to a billionth of a dollar: what the CLIs report carries float noise
/// (`0.043551200000000005`) that would otherwise reach files and `--json`.
pub fn round_usd(usd: f64) -> f64 {
    (usd * 1e9).round() / 1e9
}

/// The JSON objects among `text`'s lines; other lines (noise, partial writes) are skipped.
fn json_lines(text: &str) -> impl Iterator<Item = Value> + '_ {
    text.lines()
        .filter(|l| l.trim_start().starts_with('{'))
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
}

/// A token count far above any real one: counts read from a backend are capped here, so that
/// adding a few of them (per model, cache reads and writes) cannot overflow.
const MAX_COUNT: u64 = 1 << 40;

/// The count at `key` (0 when absent or not a count), capped at `MAX_COUNT`.
fn u64_at(v: &Value, key: &str) -> u64 {
    v.get(key)
        .and_then(Value::as_u64)
        .unwrap_or(0)
        .min(MAX_COUNT)
}

fn str_at(v: &Value, key: &str) -> Option<String> {
    v.get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// What stderr says went wrong: a crash's `TypeError: ...` line (Node prints the stack frames and
/// its version after it), else the last non-empty lines.
fn stderr_tail(stderr: &str) -> String {
    let lines: Vec<&str> = stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let is_error_line = |l: &&&str| {
        l.split_once(": ")
            .is_some_and(|(head, _)| head.ends_with("Error") && !head.contains(char::is_whitespace))
    };
    if let Some(line) = lines.iter().rev().find(is_error_line) {
        return line.to_string();
    }
    lines[lines.len().saturating_sub(3)..].join(" | ")
}

/// An error message for a run that ended without saying why.
fn unexplained(cli: &str, exit_code: Option<i32>, stderr: &str) -> String {
    let how = match exit_code {
        Some(code) => format!("{cli} exited with code {code}"),
        None => format!("{cli} was stopped by a signal"),
    };
    match stderr_tail(stderr) {
        tail if tail.is_empty() => format!("{how} without a result"),
        tail => format!("{how} without a result: {tail}"),
    }
}

/// What the real CLIs printed (tests/data/real-cli-captures: Claude Code 2.1.328, Codex 0.169.0,
/// Gemini CLI 0.61.0), for the parsers' tests.
#[cfg(test)]
pub(crate) fn capture(backend: Backend, name: &str) -> Outcome {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/real-cli-captures");
    let read =
        |ext: &str| std::fs::read_to_string(format!("{dir}/{backend}/{name}.{ext}")).unwrap();
    let code = read("rc").trim().parse().unwrap();
    parse(backend, &read("out"), &read("err"), Some(code))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Garbage counts from a backend are capped, not added into an overflow (a debug build
    /// would panic, a release build wrap).
    #[test]
    fn absurd_counts_are_capped_before_they_are_added() {
        let result = serde_json::json!({
            "type": "result", "subtype": "success", "is_error": false, "session_id": "s",
            "usage": {"input_tokens": u64::MAX, "cache_read_input_tokens": u64::MAX,
                      "cache_creation_input_tokens": 1, "output_tokens": u64::MAX},
            "modelUsage": {
                "a": {"inputTokens": u64::MAX, "cacheReadInputTokens": 1, "outputTokens": u64::MAX},
                "b": {"inputTokens": u64::MAX, "outputTokens": u64::MAX}
            }
        });
        let out = parse(Backend::Claude, &result.to_string(), "", Some(0));
        let u = out.usage.expect("usage");
        assert_eq!(u.input, 2 * MAX_COUNT + 1);
        assert_eq!(u.output, 2 * MAX_COUNT);
    }

    #[test]
    fn stderr_tail_finds_the_error_line_of_a_crash() {
        let crash = "file:///x/cli.js:4512\n  throw new TypeError(\"bad\");\n  ^\n\nTypeError: Cannot read properties of undefined (reading 'map')\n    at file:///x/cli.js:4512:33\n    at process.processTicksAndRejections (node:internal/process/task_queues:105:5)\n\nNode.js v22.12.0\n";
        assert_eq!(
            stderr_tail(crash),
            "TypeError: Cannot read properties of undefined (reading 'map')"
        );
        assert_eq!(stderr_tail("a\nb\n\nc\nd\n"), "b | c | d");
        assert_eq!(
            stderr_tail(
                "Error resuming session: Invalid session identifier \"x\".\n  Searched in /h.\n"
            ),
            "Error resuming session: Invalid session identifier \"x\". | Searched in /h."
        );
    }
}
