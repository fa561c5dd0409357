//! Claude Code: `claude -p --output-format stream-json --verbose`, one JSON event per line,
//! `system/init` first and `result` last. `--output-format json` (one object, or an array of
//! events when verbose is on in settings) is read the same way.
//!
//! Traps handled here:
//! - API and auth errors come as `subtype: "success"` with `is_error: true` (and exit 1):
//!   `is_error` decides, never `subtype`. They follow up to 10 `system/api_retry` events.
//! - A failed resume reports a fresh random `session_id` in its result: the session id is taken
//!   from `system/init` or assistant events, or from a result that succeeded.
//! - Since 2.1.3xx, `modelUsage` and `total_cost_usd` are the conversation's running totals (a
//!   fork's include its parent's); this run's figures per model, with their cost, are in
//!   `model_usage_since_last_result`. Older releases put this run's figures in `modelUsage`
//!   and `total_cost_usd`. `usage` is this run's, for the main model only, in both.
//! - `modelUsage` also has helper models, so totals and cost come from the per-model figures.
//!   `input_tokens` excludes cache reads and writes; thinking is part of `output_tokens`.
//! - SIGINT ends the run with exit 0 and no `result` line: that is not a success.

use serde_json::Value;

use super::{failure, json_lines, str_at, u64_at, unexplained, Outcome, Tokens};

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
    let run = this_run(&result, out.model.as_deref());
    out.usage = run.usage;
    out.cost_usd = run.cost_usd.map(super::round_usd);
    if out.model.is_none() {
        out.model = run.costliest;
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

/// This run's own figures, whichever release wrote the result.
struct ThisRun {
    usage: Option<Tokens>,
    cost_usd: Option<f64>,
    /// The model that cost the most in this run: the one that answered, not a helper.
    costliest: Option<String>,
}

fn this_run(result: &Value, main_model: Option<&str>) -> ThisRun {
    let per_model = |key: &str| result.get(key).and_then(Value::as_object);
    let main_usage = result.get("usage").filter(|u| u.is_object());
    // Today's CLI: this run's figures per model, with their cost.
    if let Some(models) = per_model("model_usage_since_last_result") {
        if models.is_empty() {
            // Nothing was spent (a failed run): `usage` is this run's, and says so. Should it
            // say otherwise, there is no cost for it, and the estimate prices it.
            let usage = main_usage.map(from_usage_field);
            let spent = usage.is_some_and(|u| u.total() > 0);
            return ThisRun {
                usage,
                cost_usd: (!spent).then_some(0.0),
                costliest: None,
            };
        }
        return from_models(models, main_usage);
    }
    // Older releases: `modelUsage` is this run's, unless it holds more than this run's own
    // `usage` for the main model, which only a running total can (a release with running totals
    // but without the per-run map): then only `usage` is known to be this run's, and the cost
    // is left to the estimate.
    match per_model("modelUsage").filter(|m| !m.is_empty()) {
        Some(models) if !holds_more_than(models, main_model, main_usage) => {
            from_models(models, main_usage)
        }
        Some(models) => ThisRun {
            usage: main_usage.map(from_usage_field),
            cost_usd: None,
            costliest: costliest(models),
        },
        None => ThisRun {
            usage: main_usage.map(from_usage_field),
            cost_usd: result["total_cost_usd"].as_f64(),
            costliest: None,
        },
    }
}

/// The sum over per-model figures (`inputTokens`, `cacheReadInputTokens`, ...) and their costs.
fn from_models(models: &serde_json::Map<String, Value>, main_usage: Option<&Value>) -> ThisRun {
    let mut total = Tokens::default();
    let mut cost = None::<f64>;
    let mut thinking_reported = false;
    for m in models.values() {
        let u = Tokens::anthropic(
            u64_at(m, "inputTokens"),
            u64_at(m, "cacheReadInputTokens"),
            u64_at(m, "cacheCreationInputTokens"),
            u64_at(m, "outputTokens"),
            u64_at(m, "thinkingTokens"),
        );
        thinking_reported |= m.get("thinkingTokens").is_some();
        total = total.plus(&u);
        if let Some(c) = m.get("costUSD").and_then(Value::as_f64) {
            cost = Some(cost.unwrap_or(0.0) + c);
        }
    }
    if !thinking_reported {
        // Releases that count thinking only in `usage` (the main model's).
        total.reasoning = main_usage.map_or(0, |u| from_usage_field(u).reasoning);
    }
    ThisRun {
        usage: Some(total),
        cost_usd: cost,
        costliest: costliest(models),
    }
}

/// The `usage` object: the main model's figures in Anthropic's terms.
fn from_usage_field(u: &Value) -> Tokens {
    Tokens::anthropic(
        u64_at(u, "input_tokens"),
        u64_at(u, "cache_read_input_tokens"),
        u64_at(u, "cache_creation_input_tokens"),
        u64_at(u, "output_tokens"),
        u64_at(&u["output_tokens_details"], "thinking_tokens"),
    )
}

/// True when the per-model figures hold more for the main model than this run's `usage` says
/// it spent: they are a running total.
fn holds_more_than(
    models: &serde_json::Map<String, Value>,
    main_model: Option<&str>,
    main_usage: Option<&Value>,
) -> bool {
    let Some(run) = main_usage else {
        return false;
    };
    // The main model's entry: the init model's, by its id without a `[1m]`-style suffix; with
    // no init event (JSON mode), the costliest.
    let base = |id: &str| id.split('[').next().unwrap_or(id).to_string();
    let entry = match main_model {
        Some(main) => models
            .iter()
            .find(|(k, _)| base(k) == base(main))
            .map(|(_, v)| v),
        None => costliest(models).and_then(|k| models.get(&k)),
    };
    let Some(entry) = entry else {
        return false;
    };
    let run = from_usage_field(run);
    let listed = Tokens::anthropic(
        u64_at(entry, "inputTokens"),
        u64_at(entry, "cacheReadInputTokens"),
        u64_at(entry, "cacheCreationInputTokens"),
        u64_at(entry, "outputTokens"),
        0,
    );
    listed.input > run.input || listed.output > run.output
}

fn costliest(models: &serde_json::Map<String, Value>) -> Option<String> {
    models
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
    let status = result["api_error_status"]
        .as_u64()
        .and_then(|s| u16::try_from(s).ok());
    let api_error = status.is_some()
        || result["terminal_reason"] == "api_error"
        || result.get("api_error").is_some_and(|e| !e.is_null());
    if api_error {
        // "API Error: 500 Internal server error ..." says again what the line starts with.
        let message = what.strip_prefix("API Error: ").unwrap_or(&what);
        failure::describe("claude", status, message)
    } else {
        format!("claude: {}", failure::one_line(&what))
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
    fn money_has_no_float_noise() {
        // The 2.1.195 result reports 0.043551200000000005; the sum of its two models' costs is
        // noisy too. Files and --json get the figure to a billionth of a dollar.
        let out = parse(RESULT, "", Some(0));
        assert_eq!(out.cost_usd, Some(0.0435512));
        assert_eq!(serde_json::json!(out.cost_usd).to_string(), "0.0435512");
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
            Some("claude: API error 429: You've hit your org's monthly usage limit (rate limit or quota reached: wait and try again, or check the plan's limits)")
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

    fn capture(name: &str) -> Outcome {
        crate::backend::capture(crate::domain::Backend::Claude, name)
    }

    /// The stand-in numbered its requests n: input 100+n, cache writes 2000+n, cache reads
    /// 30000+n, output 40+n of which thinking 7+n (the captures' README).
    fn request(n: u64) -> Tokens {
        Tokens {
            input: (100 + n) + (2000 + n) + (30000 + n),
            output: 40 + n,
            cached: 30000 + n,
            cache_write: 2000 + n,
            reasoning: 7 + n,
        }
    }

    #[test]
    fn each_run_counts_only_itself_on_resume_and_fork() {
        // new (request 2), its resume (3), a fork of it (4): modelUsage and total_cost_usd are
        // the conversation's running totals by then, the per-run map is the run's own.
        for (name, n, cost) in [
            ("new", 2, 0.0172584),
            ("resume", 3, 0.0172876),
            ("fork", 4, 0.0173168),
        ] {
            let out = capture(name);
            assert_eq!(out.error, None, "{name}");
            assert_eq!(out.usage, Some(request(n)), "{name}");
            assert!(
                (out.cost_usd.unwrap() - cost).abs() < 1e-9,
                "{name}: {out:?}"
            );
            assert_eq!(out.model.as_deref(), Some("claude-opus-5-5"));
        }
        assert_eq!(
            capture("resume").session_id.as_deref(),
            Some("8804da8a-3e63-4991-a39b-a2fac3f7fd34")
        );
        assert_eq!(
            capture("fork").session_id.as_deref(),
            Some("94895dfa-2027-4de2-9cdf-81bebfcae0c8")
        );
        // A run that retried twice before it was answered.
        let out = capture("retry-then-ok");
        assert_eq!(out.usage, Some(request(43)));
        assert_eq!(out.error, None);
    }

    #[test]
    fn a_release_with_running_totals_but_no_per_run_map_counts_usage_only() {
        // The resume capture without `model_usage_since_last_result`: `modelUsage` holds more
        // than this run's `usage`, so only `usage` is this run's, and there is no cost to trust.
        let dir = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/real-cli-captures/claude/"
        );
        let stdout = std::fs::read_to_string(format!("{dir}resume.out")).unwrap();
        let stdout: String = stdout
            .lines()
            .map(|l| {
                let mut v: Value = serde_json::from_str(l).unwrap();
                if let Some(o) = v.as_object_mut() {
                    o.remove("model_usage_since_last_result");
                }
                v.to_string() + "\n"
            })
            .collect();
        let out = parse(&stdout, "", Some(0));
        assert_eq!(out.usage, Some(request(3)));
        assert_eq!(out.cost_usd, None);
    }

    #[test]
    fn api_failures_are_one_line_with_their_status() {
        for (name, want) in [
            ("r1-fail401", "claude: API error 401: Invalid API key · Fix external API key (check the API key or log in again)"),
            ("r1-fail429", "claude: API error 429: Request rejected (429) · Number of request tokens has exceeded your per-minute rate limit (mock) (rate limit or quota reached: wait and try again, or check the plan's limits)"),
            ("r1-failclose", "claude: network error: Connection dropped (ECONNRESET). Check the gateway set in ANTHROPIC_BASE_URL, then try again. (the API could not be reached: check the network, proxy or API base URL)"),
            ("r1-deadport", "claude: network error: Connection refused — a firewall or proxy may be blocking it (ECONNREFUSED) (the API could not be reached: check the network, proxy or API base URL)"),
        ] {
            let out = capture(name);
            assert_eq!(out.error.as_deref(), Some(want), "{name}");
            assert_eq!(out.usage, Some(Tokens::default()), "{name}: nothing was spent");
            assert_eq!(out.cost_usd, Some(0.0));
            // The session exists (its transcript was written): a failed first run keeps it.
            assert!(out.session_id.is_some(), "{name}");
        }
        let out = capture("r1-fail500");
        let error = out.error.unwrap();
        assert!(
            error.starts_with("claude: API error 500: 500 Internal server error (mock)."),
            "{error}"
        );
        assert!(error.ends_with("(the service is having trouble: try again later)"));
        // A resume of an id the CLI does not know.
        let out = capture("badresume");
        assert_eq!(
            out.error.as_deref(),
            Some("claude: No conversation found with session ID: 00000000-0000-4000-8000-000000000000")
        );
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
