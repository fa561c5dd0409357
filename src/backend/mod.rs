//! Backend adapters: how each AI CLI reports a run, read into one shape.
//!
//! Each adapter is pure: it reads what the CLI wrote (stdout, stderr, exit code) and says what
//! happened. Spawning the CLI is a separate layer, so that every trap the CLIs are known for
//! (see `shared/reference/backend-cli-formats.md`) is covered by unit tests on real output.

pub mod claude;
pub mod codex;
pub mod gemini;
pub mod invoke;
pub mod process;

use serde_json::Value;

use crate::store::session::Backend;

/// Read a finished run of `backend`'s CLI.
pub fn parse(backend: Backend, stdout: &str, stderr: &str, exit_code: Option<i32>) -> Outcome {
    match backend {
        Backend::Claude => claude::parse(stdout, stderr, exit_code),
        Backend::Codex => codex::parse(stdout, stderr, exit_code),
        Backend::Gemini => gemini::parse(stdout, stderr, exit_code),
    }
}

/// Token counts of one run, normalised across backends:
/// `input` is every prompt token (uncached + cache reads + cache writes), `cached` the part of
/// `input` read from a cache, `cache_write` the part written to one, `output` every generated
/// token including reasoning, `reasoning` the part of `output` spent thinking.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub input: u64,
    pub output: u64,
    pub cached: u64,
    pub cache_write: u64,
    pub reasoning: u64,
}

impl Usage {
    /// The guide's `total`: input + output (cached is part of input, not added again).
    pub fn total(&self) -> u64 {
        self.input.saturating_add(self.output)
    }

    /// `self - earlier`, for backends that report a thread's running total (Codex).
    pub fn since(&self, earlier: &Usage) -> Usage {
        Usage {
            input: self.input.saturating_sub(earlier.input),
            output: self.output.saturating_sub(earlier.output),
            cached: self.cached.saturating_sub(earlier.cached),
            cache_write: self.cache_write.saturating_sub(earlier.cache_write),
            reasoning: self.reasoning.saturating_sub(earlier.reasoning),
        }
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
    pub usage: Option<Usage>,
    /// True when `usage` is the thread's running total rather than this run's (Codex).
    pub usage_is_cumulative: bool,
    /// Cost the backend itself reported (Claude), in US dollars.
    pub cost_usd: Option<f64>,
    pub duration_ms: Option<u64>,
    /// Why the run failed, if it did; None means success.
    pub error: Option<String>,
}

/// The JSON objects among `text`'s lines; other lines (noise, partial writes) are skipped.
fn json_lines(text: &str) -> impl Iterator<Item = Value> + '_ {
    text.lines()
        .filter(|l| l.trim_start().starts_with('{'))
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
}

fn u64_at(v: &Value, key: &str) -> u64 {
    v.get(key).and_then(Value::as_u64).unwrap_or(0)
}

fn str_at(v: &Value, key: &str) -> Option<String> {
    v.get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// The last non-empty lines of stderr, for an error message when the output says nothing.
fn stderr_tail(stderr: &str) -> String {
    let lines: Vec<&str> = stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
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
