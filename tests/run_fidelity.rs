//! The CLIs as they are today (Claude Code 2.1.328, Codex 0.169.0, Gemini CLI 0.61.0, as the
//! fakes of tests/fakes reproduce them from tests/data/real-cli-captures), end to end:
//! - each run records only its own usage and cost, on resume and fork alike (Claude reports
//!   running totals; Codex forks start from their parent's total), and `sessions stats` adds
//!   up the runs' own figures;
//! - reasoning (Claude's thinking) is recorded;
//! - Codex sessions fork (`codex exec fork`);
//! - runs have a deadline (exit 124) and their retries show on a terminal;
//! - a failed first Gemini run is not resumable;
//! - every API failure is one line with its status and what to do;
//! - the Codex model comes from the rollout, Gemini's from the main call.
//!
//! The fakes number a conversation's runs k = 1, 2, ... (a fork continues its parent's count)
//! and report k times their base figures for run k, so every turn can be checked.
#![cfg(unix)]

#[macro_use]
#[allow(unused_macros)]
mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

/// Claude run k's own usage: the main model (2 in + 15934 cache reads + 6354 cache writes, 4
/// out of which 2 thinking) and the haiku helper (511 in, 14 out), times k.
fn claude_run(k: u64) -> Value {
    json!({
        "input": 22801 * k, "output": 18 * k, "cached": 15934 * k, "total": 22819 * k,
        "cache_write": 6354 * k, "reasoning": 2 * k
    })
}

/// Claude run k's own cost, as reported in `model_usage_since_last_result`.
fn claude_cost(k: u64) -> f64 {
    0.0435512 * k as f64
}

/// Codex run k's own usage (its stream reports the thread's running total).
fn codex_run(k: u64) -> Value {
    json!({
        "input": 5003 * k, "output": 63 * k, "cached": 3003 * k, "total": 5066 * k,
        "cache_write": 203 * k, "reasoning": 23 * k
    })
}

/// Every Gemini run's usage: the router (gemini-3.5-flash-lite, 4035 in of which 1035 cached,
/// 65 out + 50 thoughts) and the main model (gemini-3.8-flash, 4002 in of which 1002 cached,
/// 32 out + 17 thoughts).
fn gemini_run() -> Value {
    json!({"input": 8037, "output": 164, "cached": 2037, "total": 8201, "reasoning": 67})
}

/// `clinvk ARGS --json` in `dir` at the clock `at`; the printed object.
#[track_caller]
fn run_json(f: &Fakes, dir: &Path, at: &str, args: &[&str]) -> Value {
    let ran = f.at(dir).env("CLINVK_NOW", at).args(args).arg_json().ok();
    ran.run.json()
}

trait JsonArg {
    fn arg_json(self) -> Self;
}

impl JsonArg for FakeCmd {
    fn arg_json(self) -> Self {
        self.args(["--json"])
    }
}

fn turns(session: &Value) -> Vec<Value> {
    session["turns"].as_array().cloned().unwrap_or_default()
}

fn turn_usages(session: &Value) -> Vec<Value> {
    turns(session)
        .iter()
        .map(|t| t["token_usage"].clone())
        .collect()
}

/// `sessions stats --json` totals.
fn stats_totals(f: &Fakes, args: &[&str]) -> Value {
    let mut all = vec!["sessions", "stats", "--json"];
    all.extend_from_slice(args);
    f.home.ok(&all).json()["totals"].clone()
}

fn sum_field(usages: &[Value], field: &str) -> u64 {
    usages.iter().map(|u| u[field].as_u64().unwrap_or(0)).sum()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

// ----- 1, 2: Claude's running totals, thinking ------------------------------------------------

#[test]
fn claude_runs_count_once_on_continue_fork_and_resume_of_the_fork() {
    let f = Fakes::new();
    let dir = f.dir("app");
    let new = run_json(&f, &dir, "2026-11-02T10:00:00Z", &["first"]);
    let parent = new["session_id"].as_str().unwrap().to_string();
    assert_eq!(new["usage"]["input"], 22801);
    let c1 = run_json(&f, &dir, "2026-11-02T11:00:00Z", &["-c", "second"]);
    // The run's own figures, not the conversation's running total (3 x base by now).
    assert_eq!(c1["usage"]["input"], 2 * 22801, "{c1}");
    assert!(
        close(c1["cost_usd"].as_f64().unwrap(), claude_cost(2)),
        "{c1}"
    );
    run_json(&f, &dir, "2026-11-02T12:00:00Z", &["-c", "third"]);
    let fork = run_json(
        &f,
        &dir,
        "2026-11-03T09:00:00Z",
        &["sessions", "fork", &parent, "a branch"],
    );
    let child = fork["session_id"].as_str().unwrap().to_string();
    assert_eq!(fork["parent_id"], json!(parent));
    run_json(
        &f,
        &dir,
        "2026-11-03T10:00:00Z",
        &["resume", &child, "on the branch"],
    );

    // Every turn is its run's own: the parent's runs 1-3, the fork's 4 and 5 (its modelUsage
    // included the parent's three runs, its per-run map did not).
    let p = f.home.read_session(&parent);
    assert_eq!(
        turn_usages(&p),
        [claude_run(1), claude_run(2), claude_run(3)]
    );
    let c = f.home.read_session(&child);
    assert_eq!(turn_usages(&c), [claude_run(4), claude_run(5)]);
    for (session, ks) in [(&p, vec![1, 2, 3]), (&c, vec![4, 5])] {
        let costs: Vec<f64> = turns(session)
            .iter()
            .map(|t| t["cost_usd"].as_f64().unwrap())
            .collect();
        assert_eq!(costs.len(), ks.len());
        for (cost, k) in costs.iter().zip(ks) {
            assert!(close(*cost, claude_cost(k)), "{cost} vs run {k}");
        }
        // The session's total is its turns' sum (the guide's jq recipes read it).
        let usages = turn_usages(session);
        assert_eq!(session["token_usage"]["input"], sum_field(&usages, "input"));
        assert_eq!(
            session["token_usage"]["reasoning"],
            sum_field(&usages, "reasoning")
        );
    }
    // stats adds up the runs' own figures: 15 x base in all, 15 runs' worth of cost.
    let totals = stats_totals(&f, &[]);
    assert_eq!(totals["runs"], 5);
    assert_eq!(totals["input"], 15 * 22801);
    assert_eq!(totals["reasoning"], 15 * 2);
    assert!(
        close(
            totals["reported_cost_usd"].as_f64().unwrap(),
            claude_cost(15)
        ),
        "{totals}"
    );
    let by_session = f
        .home
        .ok(&["sessions", "stats", "--by", "session", "--json"])
        .json();
    let rows = by_session["rows"].as_array().unwrap();
    let input_of = |id: &str| {
        rows.iter()
            .find(|r| r["session"] == json!(id))
            .map(|r| r["input"].clone())
            .unwrap()
    };
    assert_eq!(input_of(&parent), 6 * 22801);
    assert_eq!(input_of(&child), 9 * 22801);
}

#[test]
fn a_failed_claude_resume_is_not_charged_with_the_conversation_so_far() {
    let f = Fakes::new();
    let dir = f.dir("app");
    let id = run_json(&f, &dir, "2026-11-02T10:00:00Z", &["first"])["session_id"]
        .as_str()
        .unwrap()
        .to_string();
    run_json(&f, &dir, "2026-11-02T10:30:00Z", &["resume", &id, "second"]);
    // The failed run's result carries the running totals (3 x base) and their cost.
    let ran = f
        .at(&dir)
        .env("CLINVK_NOW", "2026-11-02T11:00:00Z")
        .args(["resume", &id, "third"])
        .scenario("fail429")
        .run();
    assert_eq!(ran.run.code, 7, "{}", ran.run.stderr);
    let s = f.home.read_session(&id);
    let t = turns(&s);
    assert_eq!(t.len(), 3);
    let spent = &t[2]["token_usage"];
    assert!(spent.is_null() || spent["total"] == 0, "{spent}");
    assert!(
        t[2]["cost_usd"].is_null() || t[2]["cost_usd"] == 0.0,
        "{}",
        t[2]
    );
    assert_eq!(s["token_usage"]["input"], 3 * 22801);
    assert_eq!(stats_totals(&f, &[])["input"], 3 * 22801);
    // Still resumable: a failed resume keeps the session's id.
    assert_eq!(s["status"], "error");
    assert!(s["backend_session_id"].is_string());
}

// ----- 3: Codex forks --------------------------------------------------------------------------

#[test]
fn codex_runs_and_forks_are_charged_only_their_own_part() {
    let f = Fakes::new();
    let dir = f.dir("svc");
    let new = run_json(&f, &dir, "2026-11-02T10:00:00Z", &["-b", "codex", "first"]);
    let parent = new["session_id"].as_str().unwrap().to_string();
    run_json(&f, &dir, "2026-11-02T11:00:00Z", &["-c", "second"]);
    run_json(&f, &dir, "2026-11-02T12:00:00Z", &["-c", "third"]);
    let fork = f
        .at(&dir)
        .env("CLINVK_NOW", "2026-11-03T09:00:00Z")
        .args(["sessions", "fork", &parent, "a branch", "--json"])
        .ok();
    let call = fork.call();
    let parent_thread = f.home.read_session(&parent)["backend_session_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        call.argv,
        [
            "exec",
            "fork",
            "--json",
            "--skip-git-repo-check",
            "--model=gpt-6.1-sol",
            &parent_thread,
            "-"
        ]
    );
    let child = fork.run.json()["session_id"].as_str().unwrap().to_string();
    run_json(
        &f,
        &dir,
        "2026-11-03T10:00:00Z",
        &["resume", &child, "on the branch"],
    );

    let p = f.home.read_session(&parent);
    assert_eq!(turn_usages(&p), [codex_run(1), codex_run(2), codex_run(3)]);
    let c = f.home.read_session(&child);
    // The fork's first total held the parent's 6 x base: only its own 4 x base is charged.
    assert_eq!(turn_usages(&c), [codex_run(4), codex_run(5)]);
    assert_ne!(c["backend_session_id"], p["backend_session_id"]);
    assert_eq!(c["parent_id"], json!(parent));
    assert_eq!(c["metadata"]["thread_usage"]["input"], 15 * 5003);
    // The model is read from the rollouts: the stream names none.
    for s in [&p, &c] {
        assert_eq!(s["model"], "gpt-6.1-sol");
        assert!(turns(s).iter().all(|t| t["model"] == "gpt-6.1-sol"), "{s}");
    }
    let totals = stats_totals(&f, &[]);
    assert_eq!(totals["input"], 15 * 5003);
    assert_eq!(totals["runs"], 5);
    // ... so they get a price.
    assert!(
        totals["estimated_cost_usd"].as_f64().unwrap() > 0.0,
        "{totals}"
    );
    assert!(totals["cost_usd"].is_number(), "{totals}");
    let show = f.home.ok(&["sessions", "show", &parent]).stdout;
    assert!(show.contains("codex exec fork"), "{show}");
}

#[test]
fn a_codex_fork_without_a_prompt_is_made_at_its_first_run_with_its_model() {
    let f = Fakes::new();
    let dir = f.dir("svc");
    let parent = run_json(
        &f,
        &dir,
        "2026-11-02T10:00:00Z",
        &["-b", "codex", "-m", "gpt-6.2-sol", "first"],
    )["session_id"]
        .as_str()
        .unwrap()
        .to_string();
    let made = f
        .at(&dir)
        .args(["sessions", "fork", &parent, "-m", "gpt-6.1-terra"])
        .ok();
    assert!(made.calls.is_empty(), "nothing runs yet");
    let child = made.run.stdout.trim().to_string();
    // The parent runs again before the fork's first run: the fork starts from 3 x base.
    run_json(
        &f,
        &dir,
        "2026-11-02T11:00:00Z",
        &["resume", &parent, "second"],
    );
    let ran = f
        .at(&dir)
        .env("CLINVK_NOW", "2026-11-02T12:00:00Z")
        .args(["resume", &child, "now the branch", "--json"])
        .ok();
    assert!(ran.call().has("fork"), "{:?}", ran.call());
    assert!(ran.call().has("--model=gpt-6.1-terra"), "{:?}", ran.call());
    let c = f.home.read_session(&child);
    assert_eq!(turn_usages(&c), [codex_run(3)]);
    assert_eq!(c["model"], "gpt-6.1-terra");
}

#[test]
fn a_claude_fork_without_a_prompt_keeps_its_model_for_the_first_run() {
    let f = Fakes::new();
    let dir = f.dir("app");
    let parent = run_json(&f, &dir, "2026-11-02T10:00:00Z", &["first"])["session_id"]
        .as_str()
        .unwrap()
        .to_string();
    let child = f
        .at(&dir)
        .args(["sessions", "fork", &parent, "-m", "claude-opus-5-5"])
        .ok()
        .run
        .stdout
        .trim()
        .to_string();
    let ran = f.at(&dir).args(["resume", &child, "go"]).ok();
    assert!(
        ran.call().has("--model=claude-opus-5-5"),
        "{:?}",
        ran.call()
    );
    assert!(ran.call().has("--fork-session"), "{:?}", ran.call());
    assert_eq!(turn_usages(&f.home.read_session(&child)), [claude_run(2)]);
}

#[test]
fn gemini_runs_count_once_and_gemini_still_cannot_fork() {
    let f = Fakes::new();
    let dir = f.dir("web");
    let id = run_json(&f, &dir, "2026-11-02T10:00:00Z", &["-b", "gemini", "first"])["session_id"]
        .as_str()
        .unwrap()
        .to_string();
    run_json(&f, &dir, "2026-11-02T11:00:00Z", &["-c", "second"]);
    run_json(&f, &dir, "2026-11-02T12:00:00Z", &["resume", &id, "third"]);
    let s = f.home.read_session(&id);
    assert_eq!(turn_usages(&s), [gemini_run(), gemini_run(), gemini_run()]);
    // The main call's model, not the (bigger) router's.
    assert_eq!(s["model"], "gemini-3.8-flash");
    assert_eq!(stats_totals(&f, &[])["input"], 3 * 8037);
    let refused = f.refused(f.at(&dir).args(["sessions", "fork", &id, "branch"]), 2);
    assert!(
        refused.error_line().contains("gemini cannot fork"),
        "{}",
        refused.stderr
    );
}

// ----- 4: deadlines and retries ----------------------------------------------------------------

#[test]
fn a_run_past_its_deadline_is_stopped_and_recorded_as_timed_out() {
    for backend in ["claude", "codex", "gemini"] {
        let f = Fakes::new();
        let dir = f.dir("p");
        let t = Instant::now();
        let ran = f
            .at(&dir)
            .args(["-b", backend, "--timeout", "1s", "do it"])
            .scenario("hang")
            .run();
        let took = t.elapsed();
        assert_eq!(ran.run.code, 124, "{backend}: {}", ran.run.stderr);
        assert!(took < Duration::from_secs(8), "{backend}: took {took:?}");
        assert_eq!(ran.run.stdout, "");
        let line = ran.run.error_line();
        assert!(
            line.starts_with(&format!(
                "clinvk: {backend} failed: timed out after 1s (last: {backend}: "
            )),
            "{backend}: {line}"
        );
        assert!(line.contains("retrying"), "{line}");
        assert_eq!(ran.run.stderr_lines().len(), 1, "{}", ran.run.stderr);
        let s = f.only_session();
        assert_eq!(s["status"], "error");
        assert!(
            s["metadata"]["error"]
                .as_str()
                .unwrap()
                .starts_with("timed out after 1s"),
            "{s}"
        );
        assert_eq!(turns(&s).len(), 1);
    }
}

#[test]
fn the_deadline_comes_from_config_and_zero_means_none() {
    let f = Fakes::new();
    let dir = f.dir("p");
    std::fs::write(f.home.config_path(), "run:\n  timeout: 1s\n").unwrap();
    let ran = f.at(&dir).args(["-b", "codex", "x"]).scenario("hang").run();
    assert_eq!(ran.run.code, 124, "{}", ran.run.stderr);
    // --timeout 0 lifts the configured limit: a 2 s run finishes.
    let ran = f
        .at(&dir)
        .args(["--timeout", "0", "y"])
        .scenario("slow")
        .env("FAKE_CLI_SLEEP", "2")
        .run();
    assert_eq!(ran.run.code, 0, "{}", ran.run.stderr);
    // A bad value is a usage error, before anything runs.
    let bad = f.refused(f.at(&dir).args(["--timeout", "soon", "z"]), 2);
    assert!(
        bad.error_line().contains("is not a timeout"),
        "{}",
        bad.stderr
    );
}

#[test]
fn a_cli_that_ignores_sigterm_is_killed_after_the_grace() {
    let f = Fakes::new();
    let dir = f.dir("p");
    let t = Instant::now();
    let ran = f
        .at(&dir)
        .args(["--timeout", "1s", "x"])
        .scenario("hang")
        .env("FAKE_CLI_IGNORE_TERM", "1")
        .run();
    let took = t.elapsed();
    assert_eq!(ran.run.code, 124, "{}", ran.run.stderr);
    // 1 s, then the 10 s grace, then SIGKILL.
    assert!(
        took >= Duration::from_secs(10) && took < Duration::from_secs(30),
        "{took:?}"
    );
    assert_eq!(f.only_session()["status"], "error");
}

/// Run `clinvk ARGS` with a terminal (script(1) gives it a pty); what the terminal showed.
fn on_a_terminal(f: &Fakes, dir: &Path, scenario: &str, args: &[&str]) -> Option<String> {
    if !have("script") {
        // CI installs it (.ci/run): there, a missing script(1) must not pass as a skip.
        assert!(
            std::env::var_os("CI").is_none(),
            "script(1) is needed to give clinvk a terminal"
        );
        eprintln!("note: script(1) is not installed; the terminal test is skipped");
        return None;
    }
    let command = std::iter::once(bin().display().to_string())
        .chain(args.iter().map(|a| a.to_string()))
        .map(|a| format!("'{}'", a.replace('\'', "'\\''")))
        .collect::<Vec<_>>()
        .join(" ");
    let mut cmd = f.at(dir).scenario(scenario).cmd;
    cmd.program_is(Path::new("script"), ["-qec", &command, "/dev/null"]);
    let out = wait_with_deadline(
        cmd.stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .stdin(std::process::Stdio::null())
            .spawn()
            .unwrap(),
        Duration::from_secs(60),
    );
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

trait ProgramIs {
    fn program_is(&mut self, program: &Path, args: [&str; 3]);
}

impl ProgramIs for std::process::Command {
    /// The same environment and directory, another program.
    fn program_is(&mut self, program: &Path, args: [&str; 3]) {
        let mut other = std::process::Command::new(program);
        other.args(args);
        for (k, v) in self.get_envs() {
            match v {
                Some(v) => other.env(k, v),
                None => other.env_remove(k),
            };
        }
        if let Some(dir) = self.get_current_dir() {
            other.current_dir(dir);
        }
        *self = other;
    }
}

#[test]
fn retries_show_as_one_line_on_a_terminal_and_not_otherwise() {
    let f = Fakes::new();
    let dir = f.dir("p");
    for (backend, shown) in [
        ("claude", "claude: no answer from the API, retrying ("),
        ("codex", "codex: network error, retrying"),
        ("gemini", "gemini: network error, retrying (attempt "),
    ] {
        if let Some(screen) =
            on_a_terminal(&f, &dir, "hang", &["-b", backend, "--timeout", "2s", "x"])
        {
            assert!(screen.contains(shown), "{backend}: {screen:?}");
        }
        let ran = f
            .at(&dir)
            .args(["-b", backend, "--timeout", "1s", "x"])
            .scenario("hang")
            .run();
        assert_eq!(
            ran.run.stderr_lines().len(),
            1,
            "{backend}: {}",
            ran.run.stderr
        );
    }
    // A run that retried and then succeeded prints only its answer.
    let ran = f.at(&dir).args(["y"]).scenario("retries").ok();
    assert_eq!(
        (ran.run.stdout.as_str(), ran.run.stderr.as_str()),
        ("OK\n", "")
    );
}

// ----- 5: a failed first Gemini run ------------------------------------------------------------

#[test]
fn a_failed_first_gemini_run_is_not_resumable_and_a_failed_resume_stays_resumable() {
    let f = Fakes::new();
    let dir = f.dir("web");
    let ran = f
        .at(&dir)
        .args(["-b", "gemini", "hi"])
        .scenario("fail401")
        .run();
    assert_eq!(ran.run.code, 7, "{}", ran.run.stderr);
    let s = f.only_session();
    let id = s["id"].as_str().unwrap().to_string();
    assert_eq!(s["status"], "error");
    assert!(
        s["backend_session_id"].is_null(),
        "Gemini kept no chat: {s}"
    );
    let refused = f.refused(f.at(&dir).args(["resume", &id, "again"]), 3);
    assert!(
        refused.error_line().contains("cannot be resumed"),
        "{}",
        refused.stderr
    );
    assert!(f.home.list_json(&["--status", "error"]).len() == 1);

    // After a success, a failure keeps the chat (and the id).
    let ok = run_json(&f, &dir, "2026-11-02T10:00:00Z", &["-b", "gemini", "hello"]);
    let good = ok["session_id"].as_str().unwrap().to_string();
    let ran = f
        .at(&dir)
        .args(["resume", &good, "more"])
        .scenario("fail429")
        .run();
    assert_eq!(ran.run.code, 7);
    let s = f.home.read_session(&good);
    assert_eq!(s["status"], "error");
    assert_eq!(s["backend_session_id"], ok["backend_session_id"]);
    f.at(&dir).args(["resume", &good, "and again"]).ok();
}

#[test]
fn failed_first_claude_and_codex_runs_stay_resumable() {
    for backend in ["claude", "codex"] {
        let f = Fakes::new();
        let dir = f.dir("p");
        let ran = f
            .at(&dir)
            .args(["-b", backend, "hi"])
            .scenario("fail500")
            .run();
        assert_eq!(ran.run.code, 7, "{backend}: {}", ran.run.stderr);
        let s = f.only_session();
        assert!(s["backend_session_id"].is_string(), "{backend}: {s}");
        let id = s["id"].as_str().unwrap().to_string();
        f.at(&dir).args(["resume", &id, "again"]).ok();
    }
}

// ----- 6: one line per failure -----------------------------------------------------------------

#[test]
fn every_api_failure_is_one_line_with_its_status_and_what_to_do() {
    let cases: &[(&str, &str, &str)] = &[
        ("claude", "fail401", "API error 401: Invalid API key · Fix external API key (check the API key or log in again)"),
        ("claude", "fail429", "API error 429: Request rejected (429) · Number of request tokens has exceeded your per-minute rate limit (mock) (rate limit or quota reached"),
        ("claude", "fail500", "API error 500: 500 Internal server error (mock)."),
        ("claude", "failclose", "network error: Connection dropped (ECONNRESET)."),
        ("codex", "fail401", "API error 401: unexpected status 401 Unauthorized: Incorrect API key provided: sk-dummy (mock)."),
        ("codex", "fail429", "API error 429: exceeded retry limit, last status: 429 Too Many Requests (rate limit or quota reached"),
        ("codex", "fail500", "API error: We’re currently experiencing high demand, which may cause temporary errors. (the service is having trouble: try again later)"),
        ("codex", "failclose", "network error: stream disconnected before completion: error sending request (the API could not be reached"),
        ("gemini", "fail401", "API error 401: Request had invalid authentication credentials (mock). (check the API key or log in again)"),
        ("gemini", "fail429", "API error 429: Resource has been exhausted (e.g. check quota) (mock). Please wait and try again later."),
        ("gemini", "fail500", "API error 500: An internal error has occurred (mock). (the service is having trouble: try again later)"),
        ("gemini", "failclose", "network error: exception TypeError: fetch failed sending request (the API could not be reached"),
    ];
    let mut problems = Vec::new();
    for (backend, scenario, want) in cases {
        let f = Fakes::new();
        let dir = f.dir("p");
        let ran = f
            .at(&dir)
            .args(["-b", backend, "hi"])
            .scenario(scenario)
            .run();
        let run = &ran.run;
        let lines = run.stderr_lines();
        let prefix = format!("clinvk: {backend} failed: {want}");
        if run.code != 7 || lines.len() != 1 || !lines[0].starts_with(&prefix) {
            problems.push(format!(
                "{backend} {scenario}: exit {}, stderr {:?}",
                run.code, run.stderr
            ));
        }
        let error = f.only_session()["metadata"]["error"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let head: String = want.chars().take(20).collect();
        if error.contains('\n') || !error.starts_with(&format!("{backend}: {head}")) {
            problems.push(format!("{backend} {scenario}: metadata.error {error:?}"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

// ----- 7: models -------------------------------------------------------------------------------

#[test]
fn the_codex_model_comes_from_the_rollout_and_is_none_without_one() {
    let f = Fakes::new();
    let dir = f.dir("svc");
    let v = run_json(&f, &dir, "2026-11-02T10:00:00Z", &["-b", "codex", "hi"]);
    assert_eq!(v["model"], "gpt-6.1-sol", "{v}");
    // With -m, the rollout agrees with what was asked.
    let v = run_json(
        &f,
        &dir,
        "2026-11-02T10:05:00Z",
        &["-b", "codex", "-m", "gpt-6.2-sol", "hi"],
    );
    assert_eq!(v["model"], "gpt-6.2-sol");
    // Rollouts are read where CODEX_HOME says, and never written.
    let elsewhere = f.root.join("codex-home");
    let v = f
        .at(&dir)
        .env("CODEX_HOME", &elsewhere)
        .args(["-b", "codex", "--json", "hi"])
        .ok()
        .run
        .json();
    assert_eq!(v["model"], "gpt-6.1-sol");
    assert!(
        elsewhere.join("sessions").is_dir(),
        "the fake wrote its rollout there"
    );
    // A run that leaves no rollout (--ephemeral) has no model to read.
    let v = f
        .at(&dir)
        .args(["-b", "codex", "--ephemeral", "--json", "hi"])
        .ok()
        .run
        .json();
    assert_eq!(v["model"], Value::Null, "{v}");
}

// ----- review follow-ups: forks whose parent is gone or moved on, runs stopped midway --------

/// Resume Codex thread `thread` directly, as a user running `codex exec resume` would: clinvk
/// does not see this run.
fn codex_outside_clinvk(f: &Fakes, dir: &Path, thread: &str) {
    f.outside(
        dir,
        "codex",
        &[
            "exec",
            "resume",
            "--json",
            "--skip-git-repo-check",
            thread,
            "outside",
        ],
    );
}

#[test]
fn a_codex_fork_is_charged_its_own_part_when_the_parent_moved_on_outside_clinvk() {
    let f = Fakes::new();
    let dir = f.dir("svc");
    let parent = run_json(&f, &dir, "2026-11-02T10:00:00Z", &["-b", "codex", "first"])
        ["session_id"]
        .as_str()
        .unwrap()
        .to_string();
    let thread = f.home.read_session(&parent)["backend_session_id"]
        .as_str()
        .unwrap()
        .to_string();
    // Run 2 of the thread happens outside clinvk: the parent's recorded total is 1 x base,
    // the thread's is 3 x base.
    codex_outside_clinvk(&f, &dir, &thread);
    run_json(
        &f,
        &dir,
        "2026-11-02T11:00:00Z",
        &["sessions", "fork", &parent, "branch"],
    );
    let forks: Vec<Value> = f
        .home
        .list_json(&[])
        .into_iter()
        .filter(|s| s["parent_id"] == json!(parent))
        .collect();
    let child = f.home.read_session(forks[0]["id"].as_str().unwrap());
    // Its own run 3, not the run clinvk never saw on top.
    assert_eq!(turn_usages(&child), [codex_run(3)]);
}

#[test]
fn a_codex_fork_made_later_is_charged_its_own_part_when_the_parent_is_deleted_meanwhile() {
    let f = Fakes::new();
    let dir = f.dir("svc");
    let parent = run_json(&f, &dir, "2026-11-02T10:00:00Z", &["-b", "codex", "first"])
        ["session_id"]
        .as_str()
        .unwrap()
        .to_string();
    run_json(&f, &dir, "2026-11-02T10:30:00Z", &["-c", "second"]);
    let child = f
        .at(&dir)
        .args(["sessions", "fork", &parent])
        .ok()
        .run
        .stdout
        .trim()
        .to_string();
    f.home.ok(&["sessions", "delete", &parent]);
    let ran = f.at(&dir).args(["resume", &child, "branch"]).run();
    assert_eq!(ran.run.code, 0, "{}", ran.run.stderr);
    assert_eq!(turn_usages(&f.home.read_session(&child)), [codex_run(3)]);
}

#[test]
fn a_codex_run_stopped_midway_records_what_it_had_spent() {
    let f = Fakes::new();
    let dir = f.dir("svc");
    let id = run_json(&f, &dir, "2026-11-02T10:00:00Z", &["-b", "codex", "first"])["session_id"]
        .as_str()
        .unwrap()
        .to_string();
    // Run 2 answers one request (counted in the rollout), then retries until the deadline.
    let ran = f
        .at(&dir)
        .env("CLINVK_NOW", "2026-11-02T11:00:00Z")
        .args(["resume", &id, "second", "--timeout", "1s"])
        .scenario("hang_midway")
        .run();
    assert_eq!(ran.run.code, 124, "{}", ran.run.stderr);
    // Run 3 completes: its own part only, not run 2's on top.
    run_json(&f, &dir, "2026-11-02T12:00:00Z", &["resume", &id, "third"]);
    let s = f.home.read_session(&id);
    assert_eq!(turn_usages(&s), [codex_run(1), codex_run(2), codex_run(3)]);
    assert_eq!(
        turns(&s)[1]["error"]
            .as_str()
            .map(|e| e.starts_with("timed out")),
        Some(true)
    );
}
