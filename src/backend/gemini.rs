//! Gemini CLI: `gemini -p … -o stream-json` (one event per line, `init` first, `result` last),
//! or `-o json` (one pretty-printed object).
//!
//! Traps handled here:
//! - JSON-mode fatal errors are written to stderr as a pretty JSON object, after noise lines
//!   ("YOLO mode is enabled…", "Loaded cached credentials."), with the exit code 41-55;
//!   argument and resume errors are plain text on stderr (exit 42).
//! - An empty or blocked answer exits 0 with an `error` in the stdout object: a failure.
//! - `stats.models` lists router and utility models next to the one that answered: the model
//!   is the one whose `roles` has `main` (JSON mode), else the `init` model when it is a real
//!   one (`--model`), else the biggest after the router, which is listed first (`auto`).
//! - API failures exit with the HTTP status modulo 256 (401 -> 145, 429 -> 173, 500 -> 244),
//!   with `error.type: "unknown"` and the API's body inside `[API Error: ...]`, over lines.
//! - Token fields: `prompt` / `input_tokens` include cached tokens; `input` is the uncached
//!   part; `thoughts` come on top of `candidates` / `output_tokens`.

use serde_json::Value;

use super::{failure, json_lines, str_at, u64_at, unexplained, Outcome, Tokens};

pub fn parse(stdout: &str, stderr: &str, exit_code: Option<i32>) -> Outcome {
    let trimmed = stdout.trim();
    // JSON mode prints one object over many lines; stream mode one object per line.
    let whole = (trimmed.starts_with('{') && trimmed.contains('\n'))
        .then(|| serde_json::from_str::<Value>(trimmed).ok())
        .flatten();
    let mut out = match whole {
        Some(object) => from_json_object(&object, exit_code),
        None => from_stream(stdout, exit_code),
    };
    if out.error.is_none() && out.session_id.is_none() && out.usage.is_none() && out.text.is_empty()
    {
        // Nothing usable on stdout: the reason is on stderr, as JSON or as text.
        let reported = stderr_object(stderr).and_then(|e| {
            out.session_id = str_at(&e, "session_id");
            error_of(&e, exit_code)
        });
        out.error = Some(reported.unwrap_or_else(|| unexplained("gemini", exit_code, stderr)));
    } else if out.error.is_none() {
        if let Some(code) = exit_code.filter(|c| *c != 0) {
            out.error = Some(unexplained("gemini", Some(code), stderr));
        }
    }
    out
}

fn from_stream(stdout: &str, exit_code: Option<i32>) -> Outcome {
    let mut out = Outcome::default();
    let mut alias = None;
    let mut saw_result = false;
    for event in json_lines(stdout) {
        match event.get("type").and_then(Value::as_str) {
            Some("init") => {
                out.session_id = out.session_id.or_else(|| str_at(&event, "session_id"));
                alias = str_at(&event, "model");
            }
            Some("message") if event["role"] == "assistant" => {
                out.text
                    .push_str(event["content"].as_str().unwrap_or_default());
            }
            Some("result") => {
                saw_result = true;
                let stats = &event["stats"];
                let input = u64_at(stats, "input_tokens");
                let output = u64_at(stats, "output_tokens");
                // What the total holds beyond input and output is thinking (and tool prompts).
                let thoughts = u64_at(stats, "total_tokens").saturating_sub(input + output);
                out.usage = Some(Tokens {
                    input,
                    output: output + thoughts,
                    cached: u64_at(stats, "cached"),
                    cache_write: 0,
                    reasoning: thoughts,
                });
                out.model = main_model(&stats["models"], alias.as_deref(), |m| {
                    u64_at(m, "total_tokens")
                });
                if event["status"] == "error" {
                    out.error = Some(
                        error_of(&event, exit_code)
                            .unwrap_or_else(|| "gemini: the run failed".into()),
                    );
                }
            }
            _ => {}
        }
    }
    out.model = out.model.or(alias);
    if !saw_result && (out.session_id.is_some() || !out.text.is_empty()) {
        out.error = Some("gemini: the output ended without a result".into());
    }
    out
}

fn from_json_object(object: &Value, exit_code: Option<i32>) -> Outcome {
    let models = &object["stats"]["models"];
    let mut usage = Tokens::default();
    for m in models.as_object().into_iter().flat_map(|m| m.values()) {
        let t = &m["tokens"];
        let cached = u64_at(t, "cached");
        // `prompt` includes cached tokens; older versions lack `input` (uncached).
        let prompt = t
            .get("prompt")
            .and_then(Value::as_u64)
            .unwrap_or(u64_at(t, "input") + cached);
        let thoughts = u64_at(t, "thoughts");
        usage.input += prompt;
        usage.cached += cached;
        usage.output += u64_at(t, "candidates") + thoughts;
        usage.reasoning += thoughts;
    }
    let main = models.as_object().and_then(|m| {
        m.iter()
            .find(|(_, v)| v["roles"].get("main").is_some())
            .map(|(name, _)| name.clone())
    });
    Outcome {
        session_id: str_at(object, "session_id"),
        model: main.or_else(|| main_model(models, None, |m| u64_at(&m["tokens"], "total"))),
        text: str_at(object, "response").unwrap_or_default(),
        usage: models.as_object().filter(|m| !m.is_empty()).map(|_| usage),
        error: error_of(object, exit_code),
        ..Outcome::default()
    }
}

/// The model of the main call among `models` (keyed by name, in the order they were called).
/// `requested` is the `init` model: a real model when given with `--model`, or an alias
/// (`auto`, `auto-gemini-3`) under which a router model is called first, then the main one.
fn main_model(
    models: &Value,
    requested: Option<&str>,
    size: impl Fn(&Value) -> u64,
) -> Option<String> {
    let models = models.as_object()?;
    if let Some(name) = requested.filter(|m| models.contains_key(*m)) {
        return Some(name.to_string());
    }
    let routed = requested.is_some_and(|m| m.starts_with("auto")) && models.len() > 1;
    models
        .iter()
        .skip(usize::from(routed))
        // The biggest; the earliest of equals (a failed run's are all zero).
        .fold(None::<(&String, u64)>, |best, (name, m)| match best {
            Some((_, top)) if top >= size(m) => best,
            _ => Some((name, size(m))),
        })
        .map(|(name, _)| name.clone())
}

/// The failure an object reports: its own type (`FatalAuthenticationError`), or for API
/// failures (`type: "unknown"`, `[API Error: ...]`) the status and what to do.
fn error_of(v: &Value, exit_code: Option<i32>) -> Option<String> {
    let e = v.get("error").filter(|e| e.is_object())?;
    let message = str_at(e, "message").unwrap_or_else(|| "unknown error".into());
    let status = exit_code.and_then(failure::status_of_exit_code);
    Some(
        match str_at(e, "type").filter(|t| t != "unknown" && t != "Error") {
            Some(kind) if status.is_none() && !message.starts_with("[API Error") => {
                format!("gemini: {} ({kind})", failure::one_line(&message))
            }
            _ => failure::describe("gemini", status, &message),
        },
    )
}

/// The first JSON object in stderr, which may follow noise lines and span several lines.
fn stderr_object(stderr: &str) -> Option<Value> {
    let start = stderr.find('{')?;
    serde_json::Deserializer::from_str(&stderr[start..])
        .into_iter::<Value>()
        .next()?
        .ok()
        .filter(Value::is_object)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOISE: &str = "YOLO mode is enabled. All tool calls will be automatically approved.\nLoaded cached credentials.\n";

    #[test]
    fn stream_success_picks_the_answering_model() {
        let stdout = r#"{"type":"init","timestamp":"2026-03-19T08:07:58.120Z","session_id":"fa0c256e-36e1-40a2-a3b1-0d52c243792d","model":"auto-gemini-3"}
{"type":"message","timestamp":"2026-03-19T08:07:58.131Z","role":"user","content":"reply GEMINI_OK"}
{"type":"message","timestamp":"2026-03-19T08:08:03.150Z","role":"assistant","content":"GEMINI_","delta":true}
{"type":"message","timestamp":"2026-03-19T08:08:03.151Z","role":"assistant","content":"OK","delta":true}
{"type":"result","timestamp":"2026-03-19T08:08:03.160Z","status":"success","stats":{"total_tokens":12965,"input_tokens":12663,"output_tokens":56,"cached":0,"input":12663,"duration_ms":5040,"tool_calls":0,"models":{"gemini-2.5-flash-lite":{"total_tokens":3852,"input_tokens":3605,"output_tokens":52,"cached":0,"input":3605},"gemini-3-flash-preview":{"total_tokens":9113,"input_tokens":9058,"output_tokens":4,"cached":0,"input":9058}}}}
"#;
        let out = parse(stdout, NOISE, Some(0));
        assert_eq!(out.error, None);
        assert_eq!(
            out.session_id.as_deref(),
            Some("fa0c256e-36e1-40a2-a3b1-0d52c243792d")
        );
        assert_eq!(out.text, "GEMINI_OK");
        assert_eq!(out.model.as_deref(), Some("gemini-3-flash-preview"));
        let u = out.usage.unwrap();
        assert_eq!((u.input, u.output, u.reasoning), (12663, 56 + 246, 246));
    }

    #[test]
    fn stream_fatal_error() {
        let stdout = r#"{"type":"init","timestamp":"2026-03-19T08:07:58.120Z","session_id":"fa0c256e-36e1-40a2-a3b1-0d52c243792d","model":"auto-gemini-3"}
{"type":"result","timestamp":"2026-03-19T08:07:59.002Z","status":"error","error":{"type":"FatalAuthenticationError","message":"Authentication required"},"stats":{"total_tokens":0,"input_tokens":0,"output_tokens":0,"cached":0,"input":0,"duration_ms":0,"tool_calls":0,"models":{}}}
"#;
        let out = parse(stdout, "", Some(41));
        assert_eq!(
            out.error.as_deref(),
            Some("gemini: Authentication required (FatalAuthenticationError)")
        );
    }

    #[test]
    fn json_mode_success_uses_the_main_role() {
        let stdout = r#"{
  "session_id": "fa0c256e-36e1-40a2-a3b1-0d52c243792d",
  "response": "GEMINI_OK",
  "stats": {
    "models": {
      "gemini-2.5-flash-lite": {
        "tokens": {"input": 3605, "prompt": 3605, "candidates": 52, "total": 3852, "cached": 0, "thoughts": 195, "tool": 0},
        "roles": {"utility_router": {"totalRequests": 1}}
      },
      "gemini-3-flash-preview": {
        "tokens": {"input": 29146, "prompt": 102307, "candidates": 965, "total": 105572, "cached": 73161, "thoughts": 2300, "tool": 0},
        "roles": {"main": {"totalRequests": 1}}
      }
    }
  }
}
"#;
        let out = parse(stdout, NOISE, Some(0));
        assert_eq!(out.error, None);
        assert_eq!(out.model.as_deref(), Some("gemini-3-flash-preview"));
        assert_eq!(out.text, "GEMINI_OK");
        let u = out.usage.unwrap();
        // prompt includes cached (102307 = 29146 + 73161); thoughts come on top of candidates.
        assert_eq!(u.input, 3605 + 102307);
        assert_eq!(u.cached, 73161);
        assert_eq!(u.output, 52 + 195 + 965 + 2300);
    }

    #[test]
    fn json_mode_errors() {
        // Fatal: stdout empty, pretty JSON on stderr after noise.
        let stderr = format!("{NOISE}{{\n  \"session_id\": \"5305e2ef-1267-488b-8679-f88dadf0c6e1\",\n  \"error\": {{\n    \"type\": \"FatalAuthenticationError\",\n    \"message\": \"Authentication required\",\n    \"code\": 41\n  }}\n}}\n");
        let out = parse("", &stderr, Some(41));
        assert_eq!(
            out.error.as_deref(),
            Some("gemini: Authentication required (FatalAuthenticationError)")
        );
        // Empty answer: exit 0, but an error in the object.
        let out = parse("{\n  \"session_id\": \"s\",\n  \"response\": \"\",\n  \"error\": {\"type\": \"INVALID_STREAM\", \"message\": \"empty\"}\n}\n", "", Some(0));
        assert_eq!(out.error.as_deref(), Some("gemini: empty (INVALID_STREAM)"));
        // Bad resume id: plain text on stderr, exit 42.
        let stderr = "Error resuming session: Invalid session identifier \"abc123\".\n  Searched for sessions in /home/u/.gemini/tmp/myproj/chats.\n  Use --list-sessions to see available sessions.\n";
        let out = parse("", stderr, Some(42));
        let error = out.error.unwrap();
        assert!(
            error.starts_with("gemini exited with code 42")
                && error.contains("Invalid session identifier"),
            "{error}"
        );
    }

    fn capture(name: &str) -> Outcome {
        crate::backend::capture(crate::domain::Backend::Gemini, name)
    }

    #[test]
    fn the_model_is_the_main_call_not_the_router() {
        // `auto`: the router (listed first) and the main model; the router's call may be the
        // bigger one, so size alone does not tell.
        let out = capture("new");
        assert_eq!(out.model.as_deref(), Some("gemini-3.8-flash"));
        assert_eq!(out.error, None);
        let u = out.usage.unwrap();
        // 8099 total = 8003 prompt (2003 cached) + 63 candidates + 33 thoughts.
        assert_eq!(
            (u.input, u.cached, u.output, u.reasoning),
            (8003, 2003, 96, 33)
        );
        assert_eq!(
            capture("resume-model").model.as_deref(),
            Some("gemini-2.5-pro")
        );
        let swapped = r#"{"type":"init","session_id":"s","model":"auto"}
{"type":"result","status":"success","stats":{"total_tokens":9,"input_tokens":5,"output_tokens":2,"models":{"gemini-3.5-flash-lite":{"total_tokens":6},"gemini-3.8-flash":{"total_tokens":3}}}}"#;
        assert_eq!(
            parse(swapped, "", Some(0)).model.as_deref(),
            Some("gemini-3.8-flash")
        );
        // A failed routed run: nothing was used, and the model is the one it was routed to.
        assert_eq!(
            capture("r1-failclose").model.as_deref(),
            Some("gemini-3.1-pro-preview")
        );
    }

    #[test]
    fn api_failures_name_the_status_the_exit_code_stands_for() {
        for (name, want) in [
            ("fail401", "gemini: API error 401: Request had invalid authentication credentials (mock). (check the API key or log in again)"),
            ("r1m-fail401", "gemini: API error 401: Request had invalid authentication credentials (mock). (check the API key or log in again)"),
            ("r1m-fail429", "gemini: API error 429: Resource has been exhausted (e.g. check quota) (mock). Please wait and try again later. To increase your limits, request a quota increase through AI Studio, or switch to another /auth method (rate limit or quota reached: wait and try again, or check the plan's limits)"),
            ("r1m-fail500", "gemini: API error 500: An internal error has occurred (mock). (the service is having trouble: try again later)"),
            ("r1-failclose", "gemini: network error: exception TypeError: fetch failed sending request (the API could not be reached: check the network, proxy or API base URL)"),
        ] {
            let out = capture(name);
            assert_eq!(out.error.as_deref(), Some(want), "{name}");
            assert!(out.session_id.is_some(), "{name}");
        }
        let out = capture("badresume");
        assert!(out.error.unwrap().contains("Invalid session identifier"));
    }

    #[test]
    fn garbage_never_panics() {
        for junk in [
            "",
            "{",
            "{\n",
            "[]",
            "{\"type\":\"init\",\"session_id\":\"x\"}",
            "\u{0}",
        ] {
            assert!(parse(junk, "noise", Some(1)).error.is_some(), "{junk:?}");
        }
    }
}
