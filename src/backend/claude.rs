//! Claude Code: `claude -p --output-format stream-json --verbose`, one JSON event per line,
//! `system/init` first and `result` last. `--output-format json` (one object, or an array of
//! events when verbose is on in settings) is read the same way.
//!
//! Traps handled here:
//! - API and auth errors come as `subtype: "success"` with `is_error: true` (and exit 1):
//!   `is_error` decides, never `subtype`.
//! - A failed resume reports a fresh random `session_id` in its result: the session id is taken
//!   from `system/init` or assistant events, or from a result that succeeded.
//! - `usage` covers the main model only; `modelUsage` also has helper models, so totals and
//!   cost come from `modelUsage`. `input_tokens` excludes cache reads and writes.
//! - SIGINT ends the run with exit 0 and no `result` line: that is not a success.

use serde_json::Value;

use super::{json_lines, str_at, u64_at, unexplained, Outcome, Usage};

pub fn parse(stdout: &str, stderr: &str, exit_code: Option<i32>) -> Outcome {
    let mut out = Outcome::default();
    let mut result: Option<Value> = None;
    let mut streamed = String::new();
    for event in events(stdout) {
        match event.get("type").and_then(Value::as_str) {
            Some("system") if event.get("subtype").and_then(Value::as_str) == Some("init") => {
                out.session_id = out.session_id.or_else(|| str_at(&event, "session_id"));
                out.model = out.model.or_else(|| str_at(&event, "model"));
            }
            Some("assistant") => {
                out.session_id = out.session_id.or_else(|| str_at(&event, "session_id"));
                let message = &event["message"];
                out.model = out.model.or_else(|| str_at(message, "model"));
                for block in message["content"].as_array().into_iter().flatten() {
                    if block["type"] == "text" {
                        streamed.push_str(block["text"].as_str().unwrap_or_default());
                    }
                }
            }
            Some("result") => result = Some(event),
            _ => {}
        }
    }
    let Some(result) = result else {
        out.text = streamed;
        out.error = Some(unexplained("claude", exit_code, stderr));
        return out;
    };
    let failed = result["is_error"].as_bool().unwrap_or(false);
    if !failed {
        out.session_id = out.session_id.or_else(|| str_at(&result, "session_id"));
    }
    out.text = str_at(&result, "result").unwrap_or(streamed);
    out.cost_usd = result["total_cost_usd"].as_f64();
    out.duration_ms = result["duration_ms"].as_u64();
    out.usage = usage(&result);
    if out.model.is_none() {
        out.model = costliest_model(&result);
    }
    if failed {
        out.error = Some(error_message(&result));
    } else if let Some(code) = exit_code.filter(|c| *c != 0) {
        out.error = Some(unexplained("claude", Some(code), stderr));
    }
    out
}

/// Stream lines, or the events of a JSON array printed whole.
fn events(stdout: &str) -> Vec<Value> {
    let trimmed = stdout.trim_start();
    if trimmed.starts_with('[') {
        if let Ok(Value::Array(items)) = serde_json::from_str::<Value>(trimmed) {
            return items;
        }
    }
    json_lines(stdout).collect()
}

fn usage(result: &Value) -> Option<Usage> {
    let per_model = result["modelUsage"].as_object().filter(|m| !m.is_empty());
    let from = |input: u64, read: u64, write: u64, output: u64| Usage {
        input: input + read + write,
        output,
        cached: read,
        cache_write: write,
        reasoning: 0,
    };
    if let Some(models) = per_model {
        let mut total = Usage::default();
        for m in models.values() {
            let u = from(
                u64_at(m, "inputTokens"),
                u64_at(m, "cacheReadInputTokens"),
                u64_at(m, "cacheCreationInputTokens"),
                u64_at(m, "outputTokens"),
            );
            total.input += u.input;
            total.output += u.output;
            total.cached += u.cached;
            total.cache_write += u.cache_write;
        }
        return Some(total);
    }
    let u = result.get("usage")?;
    Some(from(
        u64_at(u, "input_tokens"),
        u64_at(u, "cache_read_input_tokens"),
        u64_at(u, "cache_creation_input_tokens"),
        u64_at(u, "output_tokens"),
    ))
}

/// The model that cost the most: the one that answered, not a helper.
fn costliest_model(result: &Value) -> Option<String> {
    result["modelUsage"]
        .as_object()?
        .iter()
        .max_by(|a, b| {
            let cost = |v: &Value| v["costUSD"].as_f64().unwrap_or(0.0);
            cost(a.1).total_cmp(&cost(b.1))
        })
        .map(|(name, _)| name.clone())
}

fn error_message(result: &Value) -> String {
    let errors: Vec<&str> = result["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let what = if !errors.is_empty() {
        errors.join("; ")
    } else if let Some(text) = str_at(result, "result") {
        text
    } else {
        str_at(result, "terminal_reason")
            .or_else(|| str_at(result, "subtype"))
            .unwrap_or_else(|| "unknown error".into())
    };
    match result["api_error_status"].as_u64() {
        Some(status) => format!("claude: {what} (API status {status})"),
        None => format!("claude: {what}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INIT: &str = r#"{"type":"system","subtype":"init","cwd":"/tmp/p","session_id":"81898c55-fde9-4d44-b1f5-fbd77cd4fef6","tools":["Bash"],"model":"claude-sonnet-4-6","permissionMode":"default","claude_code_version":"2.1.195"}"#;
    const ASSISTANT: &str = r#"{"type":"assistant","message":{"model":"claude-sonnet-4-6","id":"msg_011CcoMtx3KD3YjwEV947Dei","type":"message","role":"assistant","content":[{"type":"text","text":"OK"}],"usage":{"input_tokens":2,"cache_creation_input_tokens":6354,"cache_read_input_tokens":15934,"output_tokens":1}},"parent_tool_use_id":null,"session_id":"81898c55-fde9-4d44-b1f5-fbd77cd4fef6"}"#;
    // The verbatim success result of claude 2.1.195 (backend-cli-formats.md §1.2).
    const RESULT: &str = r#"{"type":"result","subtype":"success","is_error":false,"api_error_status":null,"duration_ms":1425,"duration_api_ms":2492,"ttft_ms":1397,"ttft_stream_ms":1281,"time_to_request_ms":29,"num_turns":1,"result":"OK","stop_reason":"end_turn","session_id":"81898c55-fde9-4d44-b1f5-fbd77cd4fef6","total_cost_usd":0.043551200000000005,"usage":{"input_tokens":2,"cache_creation_input_tokens":6354,"cache_read_input_tokens":15934,"output_tokens":4,"server_tool_use":{"web_search_requests":0,"web_fetch_requests":0},"service_tier":"standard","cache_creation":{"ephemeral_1h_input_tokens":6354,"ephemeral_5m_input_tokens":0},"inference_geo":"not_available","iterations":[],"speed":"standard"},"modelUsage":{"claude-haiku-4-5-20251001":{"inputTokens":511,"outputTokens":14,"cacheReadInputTokens":0,"cacheCreationInputTokens":0,"webSearchRequests":0,"costUSD":0.0005809999999999999,"contextWindow":200000,"maxOutputTokens":32000},"claude-sonnet-4-6":{"inputTokens":2,"outputTokens":4,"cacheReadInputTokens":15934,"cacheCreationInputTokens":6354,"webSearchRequests":0,"costUSD":0.04297020000000001,"contextWindow":200000,"maxOutputTokens":32000}},"permission_denials":[],"terminal_reason":"completed","fast_mode_state":"off","uuid":"c5f593b6-760a-44cc-bbee-d525f35ecc48"}"#;

    #[test]
    fn success_stream() {
        let stdout = format!("{INIT}\n{ASSISTANT}\n{RESULT}\n");
        let out = parse(&stdout, "[claude-code:unrecognized_model] noise\n", Some(0));
        assert_eq!(out.error, None);
        assert_eq!(
            out.session_id.as_deref(),
            Some("81898c55-fde9-4d44-b1f5-fbd77cd4fef6")
        );
        assert_eq!(out.model.as_deref(), Some("claude-sonnet-4-6"));
        assert_eq!(out.text, "OK");
        assert_eq!(out.duration_ms, Some(1425));
        assert!((out.cost_usd.unwrap() - 0.0435512).abs() < 1e-9);
        // Helper model included; cache reads and writes count as input.
        let u = out.usage.unwrap();
        assert_eq!(u.input, 511 + 2 + 15934 + 6354);
        assert_eq!(u.output, 14 + 4);
        assert_eq!(u.cached, 15934);
        assert_eq!(u.cache_write, 6354);
        assert_eq!(u.total(), u.input + u.output);
        assert!(!out.usage_is_cumulative);
    }

    #[test]
    fn json_mode_object_and_verbose_array() {
        let single = parse(RESULT, "", Some(0));
        assert_eq!(single.text, "OK");
        assert_eq!(
            single.session_id.as_deref(),
            Some("81898c55-fde9-4d44-b1f5-fbd77cd4fef6")
        );
        // No init event: the answering model is the costliest one, not the helper.
        assert_eq!(single.model.as_deref(), Some("claude-sonnet-4-6"));
        let array = parse(&format!("[{INIT},{ASSISTANT},{RESULT}]"), "", Some(0));
        assert_eq!(array.text, "OK");
        assert_eq!(array.error, None);
    }

    #[test]
    fn api_error_disguised_as_success() {
        let line = r#"{"type":"result","subtype":"success","is_error":true,"api_error_status":429,"duration_ms":589,"num_turns":1,"result":"You've hit your org's monthly usage limit","session_id":"5d5593cd-b057-4a53-843d-4bc78f718378","total_cost_usd":0}"#;
        let out = parse(line, "", Some(1));
        assert_eq!(
            out.error.as_deref(),
            Some("claude: You've hit your org's monthly usage limit (API status 429)")
        );
        // A failed result's id is not trusted.
        assert_eq!(out.session_id, None);
    }

    #[test]
    fn resume_of_a_missing_session() {
        // Stream mode: a result with a fresh random id, and the reason in errors[].
        let line = r#"{"type":"result","subtype":"error_during_execution","duration_ms":0,"is_error":true,"num_turns":0,"session_id":"7cd10988-45cc-4e45-85ff-2d3d83316f0a","total_cost_usd":0,"usage":{"input_tokens":0,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":0},"modelUsage":{},"errors":["No conversation found with session ID: 32175d93-2cc2-4775-82a8-56ce80d73b2b"]}"#;
        let out = parse(line, "", Some(1));
        assert_eq!(out.session_id, None);
        assert!(out.error.unwrap().contains("No conversation found"));
        // Plain json mode: nothing on stdout, the reason on stderr.
        let out = parse(
            "",
            "No conversation found with session ID: 00000000-0000-0000-0000-000000000000\n",
            Some(1),
        );
        assert_eq!(
            out.error.as_deref(),
            Some("claude exited with code 1 without a result: No conversation found with session ID: 00000000-0000-0000-0000-000000000000")
        );
    }

    #[test]
    fn max_turns_and_interrupt() {
        let line = r#"{"type":"result","subtype":"error_max_turns","is_error":true,"num_turns":2,"stop_reason":"tool_use","terminal_reason":"max_turns","errors":["Reached maximum number of turns (1)"],"result":null}"#;
        assert_eq!(
            parse(line, "", Some(1)).error.as_deref(),
            Some("claude: Reached maximum number of turns (1)")
        );
        // SIGINT: exit 0, no result line. The session id seen so far is kept for resuming.
        let out = parse(&format!("{INIT}\n{ASSISTANT}\n"), "", Some(0));
        assert_eq!(
            out.error.as_deref(),
            Some("claude exited with code 0 without a result")
        );
        assert_eq!(
            out.session_id.as_deref(),
            Some("81898c55-fde9-4d44-b1f5-fbd77cd4fef6")
        );
        assert_eq!(out.text, "OK");
    }

    #[test]
    fn garbage_never_panics() {
        for junk in [
            "",
            "not json",
            "{",
            "[1,2",
            "{\"type\":\"result\"}",
            "\u{0}\u{1}",
        ] {
            let out = parse(junk, "boom", Some(2));
            assert!(out.error.is_some(), "{junk:?}");
        }
    }
}
