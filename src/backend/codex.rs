//! Codex CLI: `codex exec --json` (and `codex exec resume --json <id>`), one JSON event per line.
//!
//! Traps handled here:
//! - Top-level `error` events are usually retries ("Reconnecting... 2/5"): only `turn.failed`,
//!   or no terminal event at all, means failure.
//! - `turn.completed.usage` is the thread's running total, across resumes: the caller stores it
//!   and subtracts the previous total (`Tokens::since`). `cached_input_tokens` and
//!   `cache_write_input_tokens` are parts of `input_tokens`, not additions.
//! - No model, cost or duration in the stream (0.169): the model is in the thread's rollout
//!   (`crate::transcripts::codex`), which the caller reads; a `model` in any event (should a
//!   release add one) is taken. The caller measures the time.
//! - `codex exec fork` starts a new thread whose first running total already includes the
//!   parent's: the caller subtracts the parent's total.
//! - API failures are retried ("Reconnecting... 2/5 (...)") then reported as `turn.failed` with
//!   the status in words ("unexpected status 401 Unauthorized", "last status: 429") or none at
//!   all (a 500 is "We're currently experiencing high demand").

use serde_json::Value;

use super::{failure, json_lines, str_at, u64_at, unexplained, Outcome, Tokens};

pub fn parse(stdout: &str, stderr: &str, exit_code: Option<i32>) -> Outcome {
    let mut out = Outcome {
        usage_is_cumulative: true,
        ..Outcome::default()
    };
    let mut messages: Vec<String> = Vec::new();
    let mut last_error: Option<String> = None;
    let mut completed = false;
    let mut failed: Option<String> = None;
    for event in json_lines(stdout) {
        if out.model.is_none() {
            out.model = str_at(&event, "model");
        }
        match event.get("type").and_then(Value::as_str) {
            Some("thread.started") => {
                out.session_id = out.session_id.or_else(|| str_at(&event, "thread_id"))
            }
            Some("item.completed") if event["item"]["type"] == "agent_message" => {
                messages.extend(str_at(&event["item"], "text"));
            }
            Some("error") => last_error = str_at(&event, "message"),
            Some("turn.completed") => {
                completed = true;
                let u = &event["usage"];
                out.usage = Some(Tokens {
                    input: u64_at(u, "input_tokens"),
                    output: u64_at(u, "output_tokens"),
                    cached: u64_at(u, "cached_input_tokens"),
                    cache_write: u64_at(u, "cache_write_input_tokens"),
                    reasoning: u64_at(u, "reasoning_output_tokens"),
                });
            }
            Some("turn.failed") => {
                failed = Some(
                    str_at(&event["error"], "message").unwrap_or_else(|| "turn failed".into()),
                );
            }
            _ => {}
        }
    }
    out.text = messages.join("\n\n");
    out.error = match (failed, completed, exit_code) {
        (Some(reason), _, _) => Some(failure::line("codex", None, &reason)),
        (None, true, Some(0) | None) => None,
        // No turn completed, or Codex exited 1 after one because a non-retryable error was
        // sticky.
        (None, _, _) => Some(match last_error {
            Some(reason) => failure::line("codex", None, retried(&reason)),
            None => unexplained("codex", exit_code, stderr),
        }),
    };
    out
}

/// "Reconnecting... 5/5 (unexpected status 401 ...)" as what it retried: "unexpected status
/// 401 ...".
fn retried(message: &str) -> &str {
    message
        .strip_prefix("Reconnecting... ")
        .and_then(|rest| rest.split_once(" ("))
        .and_then(|(_, why)| why.strip_suffix(')'))
        .unwrap_or(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn success_with_tool_items() {
        // Verbatim, codex 0.151.0 (backend-cli-formats.md §2.2).
        let stdout = r#"{"type":"thread.started","thread_id":"01a05921-0893-77c3-b394-899ea5fc089e"}
{"type":"turn.started"}
{"type":"item.completed","item":{"id":"item_0","type":"agent_message","text":"I'll create `hello.txt` and verify its contents."}}
{"type":"item.started","item":{"id":"item_1","type":"file_change","changes":[{"path":"/tmp/cxprobe/hello.txt","kind":"add"}],"status":"in_progress"}}
{"type":"item.completed","item":{"id":"item_1","type":"file_change","changes":[{"path":"/tmp/cxprobe/hello.txt","kind":"add"}],"status":"completed"}}
{"type":"item.completed","item":{"id":"item_2","type":"command_execution","command":"/bin/zsh -lc 'cat hello.txt'","aggregated_output":"hello\n","exit_code":0,"status":"completed"}}
{"type":"item.completed","item":{"id":"item_3","type":"agent_message","text":"Done. `hello.txt` contains `hello`, verified with `cat hello.txt`."}}
{"type":"turn.completed","usage":{"input_tokens":34172,"cached_input_tokens":27136,"cache_write_input_tokens":0,"output_tokens":163,"reasoning_output_tokens":26}}
"#;
        let out = parse(stdout, "Reading additional input from stdin...\n", Some(0));
        assert_eq!(out.error, None);
        assert_eq!(
            out.session_id.as_deref(),
            Some("01a05921-0893-77c3-b394-899ea5fc089e")
        );
        assert!(out.text.starts_with("I'll create") && out.text.ends_with("`cat hello.txt`."));
        let u = out.usage.unwrap();
        // Cached is part of input, not added to it.
        assert_eq!(
            (u.input, u.cached, u.output, u.reasoning),
            (34172, 27136, 163, 26)
        );
        assert_eq!(u.total(), 34172 + 163);
        assert!(out.usage_is_cumulative);
        assert_eq!(out.model, None);
    }

    #[test]
    fn cumulative_usage_across_a_resume() {
        let first = Tokens {
            input: 13912,
            cached: 11008,
            output: 9,
            ..Tokens::default()
        };
        let stdout = r#"{"type":"thread.started","thread_id":"019f4a34-2fc9-7622-8e24-21c7200fcf8d"}
{"type":"turn.started"}
{"type":"item.completed","item":{"id":"item_0","type":"agent_message","text":"PACER_RESUME_OK"}}
{"type":"turn.completed","usage":{"input_tokens":27853,"cached_input_tokens":24064,"output_tokens":18,"reasoning_output_tokens":0}}
"#;
        let run = parse(stdout, "", Some(0)).usage.unwrap().since(&first);
        assert_eq!(
            (run.input, run.cached, run.output),
            (27853 - 13912, 24064 - 11008, 9)
        );
    }

    #[test]
    fn retries_are_not_failures() {
        let stdout = r#"{"type":"thread.started","thread_id":"019e2a11-0000-7000-8000-000000000001"}
{"type":"turn.started"}
{"type":"error","message":"Reconnecting... 2/5 (timeout waiting for child process to exit)"}
{"type":"error","message":"Reconnecting... 3/5 (timeout waiting for child process to exit)"}
{"type":"item.completed","item":{"id":"item_0","type":"agent_message","text":"OK"}}
{"type":"turn.completed","usage":{"input_tokens":13912,"cached_input_tokens":11008,"output_tokens":9}}
"#;
        let out = parse(stdout, "", Some(0));
        assert_eq!(out.error, None);
        assert_eq!(out.text, "OK");
    }

    #[test]
    fn turn_failed_and_bad_model() {
        let stdout = r#"{"type":"error","message":"shared rollout token budget exhausted"}
{"type":"turn.failed","error":{"message":"shared rollout token budget exhausted"}}
"#;
        assert_eq!(
            parse(stdout, "", Some(1)).error.as_deref(),
            Some("codex: shared rollout token budget exhausted")
        );
        let stdout = r#"{"type":"thread.started","thread_id":"01a0592f-c91c-79e1-894e-92516e2f8c7a"}
{"type":"item.completed","item":{"id":"item_0","type":"error","message":"Model metadata for `x` not found. Defaulting to fallback metadata."}}
{"type":"turn.started"}
{"type":"turn.failed","error":{"message":"The 'x' model is not supported when using Codex with a ChatGPT account."}}
"#;
        let out = parse(stdout, "", Some(1));
        assert!(out.error.unwrap().contains("model is not supported"));
        // The reference's shape: the API's JSON body as the message.
        let stdout = r#"{"type":"turn.failed","error":{"message":"{\"type\":\"error\",\"status\":400,\"error\":{\"type\":\"invalid_request_error\",\"message\":\"The 'x' model is not supported.\"}}"}}"#;
        assert_eq!(
            parse(stdout, "", Some(1)).error.as_deref(),
            Some("codex: API error 400: The 'x' model is not supported.")
        );
        // The thread exists, so it can still be resumed.
        assert_eq!(
            out.session_id.as_deref(),
            Some("01a0592f-c91c-79e1-894e-92516e2f8c7a")
        );
    }

    fn capture(name: &str) -> Outcome {
        crate::backend::capture(crate::domain::Backend::Codex, name)
    }

    #[test]
    fn todays_runs_resumes_and_forks() {
        // Running totals of one thread: new (request 3), resume (6), resume with a model (9);
        // the fork (12) of it starts from the parent's 15018.
        let total = |name: &str| capture(name).usage.unwrap();
        assert_eq!(
            total("new"),
            Tokens {
                input: 5003,
                cached: 3003,
                cache_write: 203,
                output: 63,
                reasoning: 23
            }
        );
        assert_eq!(total("resume").input, 5003 + 5006);
        assert_eq!(total("resume2-model").input, 15018);
        let fork = capture("fork");
        assert_eq!(fork.usage.unwrap().input, 15018 + 5012);
        assert_eq!(
            fork.session_id.as_deref(),
            Some("01a2313a-35f8-7cb3-ac16-2a856813b495")
        );
        assert!(fork.usage_is_cumulative);
        // The stream names no model: the rollout has it.
        assert_eq!(fork.model, None);
        let with_model = r#"{"type":"thread.started","thread_id":"t","model":"gpt-6.1-sol"}
{"type":"turn.completed","usage":{"input_tokens":1,"output_tokens":1}}"#;
        assert_eq!(
            parse(with_model, "", Some(0)).model.as_deref(),
            Some("gpt-6.1-sol")
        );
    }

    #[test]
    fn api_failures_are_one_line_with_their_status() {
        for (name, want) in [
            ("fail401", "codex: API error 401: unexpected status 401 Unauthorized: Incorrect API key provided: sk-dummy (mock)., url: http://127.0.0.1:33979/v1/responses (check the API key or log in again)"),
            ("fail429", "codex: API error 429: exceeded retry limit, last status: 429 Too Many Requests (rate limit or quota reached: wait and try again, or check the plan's limits)"),
            ("fail500", "codex: API error: We’re currently experiencing high demand, which may cause temporary errors. (the service is having trouble: try again later)"),
            ("failclose", "codex: network error: stream disconnected before completion: error sending request (the API could not be reached: check the network, proxy or API base URL)"),
        ] {
            let out = capture(name);
            assert_eq!(out.error.as_deref(), Some(want), "{name}");
            // The thread exists: it can be resumed.
            assert!(out.session_id.is_some(), "{name}");
        }
        let out = capture("badresume");
        assert!(
            out.error
                .unwrap()
                .contains("no rollout found for thread id"),
            "{:?}",
            capture("badresume")
        );
    }

    #[test]
    fn no_terminal_event() {
        // Auth failure that stopped after retries, SIGINT, or a pre-flight refusal on stderr.
        let stdout = r#"{"type":"thread.started","thread_id":"t1"}
{"type":"error","message":"Reconnecting... 5/5 (unexpected status 401 Unauthorized)"}
"#;
        assert_eq!(
            parse(stdout, "", Some(1)).error.as_deref(),
            Some("codex: API error 401: unexpected status 401 Unauthorized (check the API key or log in again)")
        );
        let out = parse(
            "",
            "Not inside a trusted directory and --skip-git-repo-check was not specified.\n",
            Some(1),
        );
        assert!(out
            .error
            .unwrap()
            .contains("Not inside a trusted directory"));
        assert!(parse("garbage\n{", "", None)
            .error
            .unwrap()
            .contains("stopped by a signal"));
    }
}
