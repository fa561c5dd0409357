//! Running prompts end to end: the real `clinvk` binary with the fake `claude`, `codex` and
//! `gemini` of tests/fakes first on PATH. New sessions, `-c`, `resume`, `sessions fork`,
//! `--ephemeral`, `--json`, token usage, retention, Ctrl-C and concurrent runs.
//!
//! Failures of the backends and of the command line are in run_errors.rs.
#![cfg(unix)]

#[macro_use]
#[allow(unused_macros)]
mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

const CLAUDE_NEW: [&str; 4] = ["-p", "--output-format", "stream-json", "--verbose"];
const CODEX_NEW: [&str; 4] = ["exec", "--json", "--skip-git-repo-check", "-"];

/// The fake claude's usage for a conversation's first run, normalised: the sum over its per-run
/// map (haiku 511 in / 14 out, the main model 2 + 15934 cache reads + 6354 cache writes in / 4
/// out of which 2 thinking). Run k of a conversation reports k times as much (run_fidelity.rs).
fn claude_usage() -> Value {
    json!({"input": 22801, "output": 18, "cached": 15934, "total": 22819, "cache_write": 6354, "reasoning": 2})
}

/// The fake codex's usage for a thread's first run (its turn.completed reports the thread's
/// running total).
fn codex_usage() -> Value {
    json!({"input": 5003, "output": 63, "cached": 3003, "total": 5066, "cache_write": 203, "reasoning": 23})
}

/// The fake gemini's usage (every run): the router's and the main model's, thoughts in output.
fn gemini_usage() -> Value {
    json!({"input": 8037, "output": 164, "cached": 2037, "total": 8201, "reasoning": 67})
}

/// The fake claude's cost of a conversation's first run.
const CLAUDE_COST: f64 = 0.0435512;

/// Start a session with `clinvk -b BACKEND --json PROMPT ARGS` in `dir`; its id.
#[track_caller]
fn start(f: &Fakes, dir: &Path, backend: &str, prompt: &str) -> String {
    let ran = f.at(dir).args(["-b", backend, "--json", prompt]).ok();
    let id = ran.run.json()["session_id"]
        .as_str()
        .expect("a session id")
        .to_string();
    assert_eq!(f.home.read_session(&id)["status"], "active");
    id
}

fn bsid(f: &Fakes, id: &str) -> String {
    f.home.read_session(id)["backend_session_id"]
        .as_str()
        .expect("a backend_session_id")
        .to_string()
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|a| a.to_string()).collect()
}

fn dir_str(dir: &Path) -> String {
    dir.display().to_string()
}

/// Gemini's argv with the prompt spelled one way: `-p PROMPT` becomes `--prompt=PROMPT` (both
/// reach the CLI as the same prompt; the README documents `--prompt=PROMPT`).
fn gemini_argv(call: &FakeCall) -> Vec<String> {
    let mut argv = call.argv.clone();
    if let Some(at) = argv.iter().position(|a| a == "-p" || a == "--prompt") {
        if at + 1 < argv.len() {
            let prompt = argv.remove(at + 1);
            argv[at] = format!("--prompt={prompt}");
        }
    }
    argv
}

/// The prompt gemini was given (`--prompt=` or `-p`).
fn gemini_prompt(call: &FakeCall) -> String {
    gemini_argv(call)
        .iter()
        .find_map(|a| a.strip_prefix("--prompt="))
        .unwrap_or_else(|| panic!("no prompt in {:?}", call.argv))
        .to_string()
}

// ----- new sessions ---------------------------------------------------------------------------

#[test]
fn claude_new_session_records_everything() {
    let f = Fakes::new();
    std::fs::write(
        f.home.config_path(),
        "session:\n  default_tags: [\"${CLINVK_TEST_USER}\", \"clinvk\", \"${CLINVK_TEST_SURELY_UNSET}\"]\n",
    )
    .unwrap();
    let dir = f.dir("myapp");
    let ran = f
        .at(&dir)
        .env("CLINVK_TEST_USER", "alice")
        .args([
            "fix the bug in auth.go",
            "--tag",
            "bugfix",
            "--tag",
            "clinvk",
        ])
        .ok();
    assert_eq!(ran.run.stdout, "OK\n", "only the response on stdout");
    assert_eq!(ran.run.stderr, "", "nothing on stderr without a terminal");

    let call = ran.call();
    assert_eq!(call.cli, "claude");
    assert_eq!(call.argv, s(&CLAUDE_NEW));
    assert_eq!(call.stdin, "fix the bug in auth.go");
    assert_eq!(call.cwd, dir);

    let session = f.only_session();
    let fake_ids: Vec<_> = std::fs::read_dir(f.state().join("claude"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(fake_ids.len(), 1);
    assert_eq!(session["backend"], "claude");
    assert_eq!(session["backend_session_id"], json!(fake_ids[0]));
    assert_eq!(session["model"], "claude-sonnet-4-6");
    assert_eq!(session["status"], "active");
    assert_eq!(session["workdir"], json!(dir_str(&dir)));
    assert_eq!(session["prompt"], "fix the bug in auth.go");
    assert_eq!(session["created_at"], NOW);
    assert_eq!(session["last_used_at"], NOW);
    assert_eq!(session["tags"], json!(["alice", "clinvk", "bugfix"]));
    assert_eq!(session["token_usage"], claude_usage());
    assert_eq!(session["metadata"]["exit_code"], 0);
    assert!(session.get("parent_id").is_none(), "{session}");
    let turns = session["turns"].as_array().expect("turns");
    assert_eq!(turns.len(), 1);
    let turn = &turns[0];
    assert_eq!(turn["at"], NOW);
    assert_eq!(turn["prompt"], "fix the bug in auth.go");
    assert_eq!(turn["exit_code"], 0);
    assert!(turn["duration_seconds"].as_f64().is_some_and(|d| d >= 0.0));
    assert_eq!(turn["token_usage"], claude_usage());
    assert_eq!(turn["cost_usd"], json!(CLAUDE_COST));
    assert!(turn.get("error").is_none(), "{turn}");

    // The index knows it too.
    let rows = f.home.list_json(&[]);
    assert_eq!(ids_of(&rows), [session["id"].as_str().unwrap()]);
    assert_eq!(rows[0]["status"], "active");
}

#[test]
fn the_workdir_is_the_canonical_directory() {
    let f = Fakes::new();
    let real = f.dir("real");
    let link = f.root.join("projects").join("link");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let ran = f.at(&link.join(".")).args(["hi"]).ok();
    assert_eq!(ran.call().cwd, real);
    assert_eq!(f.only_session()["workdir"], json!(dir_str(&real)));
    // `resume --here` from the link finds it.
    let ran = f
        .at(&link)
        .args(["resume", "--here", "--last", "again"])
        .ok();
    assert_eq!(ran.call().cwd, real);
}

#[test]
fn codex_new_session_with_a_model() {
    let f = Fakes::new();
    let dir = f.dir("api");
    let ran = f
        .at(&dir)
        .args(["-b", "codex", "-m", "gpt-5.6-sol", "implement registration"])
        .ok();
    assert_eq!(ran.run.stdout, "OK\n");
    assert_eq!(ran.run.stderr, "");
    let call = ran.call();
    assert_eq!(call.cli, "codex");
    assert_eq!(
        call.argv,
        s(&[
            "exec",
            "--json",
            "--skip-git-repo-check",
            "--model=gpt-5.6-sol",
            "-"
        ])
    );
    assert_eq!(call.stdin, "implement registration");
    assert_eq!(call.cwd, dir);

    let session = f.only_session();
    let bsid = session["backend_session_id"].as_str().expect("a thread id");
    assert!(f.fake_session("codex", bsid).is_file(), "{bsid}");
    assert_eq!(session["backend"], "codex");
    assert_eq!(session["model"], "gpt-5.6-sol");
    assert_eq!(session["status"], "active");
    assert_eq!(session["workdir"], json!(dir_str(&dir)));
    assert_eq!(session["token_usage"], codex_usage());
    let turn = &session["turns"][0];
    assert_eq!(turn["token_usage"], codex_usage());
    assert_eq!(turn["exit_code"], 0);
    assert!(
        turn.get("cost_usd").is_none(),
        "codex reports no cost: {turn}"
    );
}

#[test]
fn gemini_new_session_gets_the_prompt_as_an_argument() {
    let f = Fakes::new();
    let dir = f.dir("algo");
    let ran = f
        .at(&dir)
        .args(["-b", "gemini", "explain the algorithm"])
        .env("FAKE_CLI_REPLY", "It sorts things")
        .ok();
    assert_eq!(ran.run.stdout, "It sorts things\n");
    let call = ran.call();
    assert_eq!(call.cli, "gemini");
    assert_eq!(
        gemini_argv(call),
        s(&[
            "-o",
            "stream-json",
            "--skip-trust",
            "--prompt=explain the algorithm"
        ])
    );
    assert_eq!(call.stdin, "", "gemini gets nothing on stdin");
    assert_eq!(call.cwd, dir);

    let session = f.only_session();
    let bsid = session["backend_session_id"].as_str().unwrap();
    assert!(f.fake_session("gemini", bsid).is_file(), "{bsid}");
    assert_eq!(session["model"], "gemini-3.8-flash");
    assert_eq!(session["status"], "active");
    assert_eq!(session["token_usage"], gemini_usage());
    assert_eq!(session["turns"][0]["token_usage"], gemini_usage());
}

#[test]
fn the_backend_comes_from_the_flag_then_config_then_environment_then_claude() {
    let f = Fakes::new();
    let dir = f.dir("p");
    let cli_of = |ran: &FakeRun| ran.call().cli.clone();

    assert_eq!(cli_of(&f.at(&dir).args(["one"]).ok()), "claude");
    let env = f
        .at(&dir)
        .args(["two"])
        .env("CLINVK_BACKEND", "gemini")
        .ok();
    assert_eq!(cli_of(&env), "gemini");

    f.home.ok(&["config", "set", "default_backend", "codex"]);
    let config = f
        .at(&dir)
        .args(["three"])
        .env("CLINVK_BACKEND", "gemini")
        .ok();
    assert_eq!(cli_of(&config), "codex");
    let flag = f
        .at(&dir)
        .args(["-b", "claude", "four"])
        .env("CLINVK_BACKEND", "gemini")
        .ok();
    assert_eq!(cli_of(&flag), "claude");

    let mut backends: Vec<String> = f
        .home
        .list_json(&[])
        .iter()
        .map(|r| r["backend"].as_str().unwrap().to_string())
        .collect();
    backends.sort();
    assert_eq!(backends, ["claude", "claude", "codex", "gemini"]);
}

#[test]
fn a_multi_line_response_is_printed_with_one_trailing_newline() {
    let f = Fakes::new();
    let dir = f.dir("p");
    for backend in ["claude", "codex", "gemini"] {
        let ran = f
            .at(&dir)
            .args(["-b", backend, "hi"])
            .env("FAKE_CLI_REPLY", "line one\n  \"two\"\twith a tab")
            .ok();
        assert_eq!(
            ran.run.stdout, "line one\n  \"two\"\twith a tab\n",
            "{backend}"
        );
    }
}

/// Shell syntax, quotes, globs, newlines, a leading dash, non-ASCII: none of it is interpreted.
const NASTY: &str = "-rm -rf / $(touch pwned) `id` && echo 'it''s' \"$HOME\" | tee *.rs; \
                     ~ {a,b} [x] \\n \\ --help\n  second line\ttab -- -p --resume=x é 中文 ✓";

#[test]
fn a_prompt_full_of_shell_syntax_reaches_each_cli_byte_for_byte() {
    let f = Fakes::new();
    let dir = f.dir("p");
    for backend in ["claude", "codex", "gemini"] {
        let ran = f.at(&dir).args(["-b", backend, "--", NASTY]).ok();
        let call = ran.call();
        if backend == "gemini" {
            assert_eq!(gemini_prompt(call), NASTY);
        } else {
            assert_eq!(call.stdin, NASTY, "{backend}");
        }
    }
    assert!(!dir.join("pwned").exists());
    let rows = f.home.list_json(&[]);
    assert_eq!(rows.len(), 3, "one session per backend");
    for row in rows {
        let id = row["id"].as_str().unwrap();
        assert_eq!(f.home.read_session(id)["prompt"], NASTY);
    }
}

#[test]
fn the_prompt_can_come_from_stdin() {
    let f = Fakes::new();
    let dir = f.dir("p");
    // `-`: stdin, trailing newlines dropped, everything else kept.
    let dash = f
        .at(&dir)
        .args(["-"])
        .stdin("first line\n$(not run) 'q'\n\n")
        .ok();
    assert_eq!(dash.run.stdout, "OK\n");
    assert_eq!(dash.call().stdin, "first line\n$(not run) 'q'");
    // No argument and a pipe on stdin.
    let piped = f
        .at(&dir)
        .args(["-b", "gemini"])
        .stdin("from a pipe\n")
        .ok();
    assert_eq!(gemini_prompt(piped.call()), "from a pipe");

    let mut prompts: Vec<String> = f
        .home
        .list_json(&[])
        .iter()
        .map(|r| {
            f.home.read_session(r["id"].as_str().unwrap())["prompt"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    prompts.sort();
    assert_eq!(prompts, ["first line\n$(not run) 'q'", "from a pipe"]);
}

#[test]
fn an_empty_prompt_is_a_usage_error_and_creates_nothing() {
    let f = Fakes::new();
    let dir = f.dir("p");
    let cases: Vec<(Vec<&str>, Option<&str>)> = vec![
        (vec![""], None),
        (vec!["   \n\t"], None),
        (vec!["-"], Some("")),
        (vec!["-"], Some("\n\n")),
        (vec![], Some("")),
        (vec![], None), // stdin is /dev/null: nothing to read
        (vec!["-b", "codex", ""], None),
    ];
    for (args, stdin) in cases {
        let mut cmd = f.at(&dir).args(&args);
        if let Some(text) = stdin {
            cmd = cmd.stdin(text);
        }
        let ran = cmd.run();
        let run = ran.run.clone().fails_with(2);
        assert!(
            run.error_line().contains("prompt"),
            "{args:?}: {}",
            run.stderr
        );
        assert!(ran.calls.is_empty(), "{args:?}: the CLI was called");
    }
    assert_eq!(f.home.session_files(), Vec::<String>::new());
}

#[test]
fn a_prompt_that_is_a_command_name_runs_after_double_dash() {
    let f = Fakes::new();
    let dir = f.dir("p");
    for word in ["resume", "sessions", "config"] {
        let ran = f.at(&dir).args(["--", word]).ok();
        assert_eq!(ran.run.stdout, "OK\n");
        assert_eq!(ran.call().stdin, word);
    }
    assert_eq!(f.home.session_files().len(), 3);
}

// ----- --json ---------------------------------------------------------------------------------

const JSON_KEYS: [&str; 12] = [
    "response",
    "session_id",
    "parent_id",
    "backend",
    "backend_session_id",
    "model",
    "status",
    "usage",
    "cost_usd",
    "duration_seconds",
    "exit_code",
    "error",
];

#[track_caller]
fn assert_run_json(v: &Value, f: &Fakes) {
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, JSON_KEYS, "{v}");
    let id = v["session_id"].as_str().expect("session_id");
    let session = f.home.read_session(id);
    assert_eq!(v["backend_session_id"], session["backend_session_id"]);
    assert_eq!(v["backend"], session["backend"]);
    assert_eq!(v["model"], session["model"]);
    assert_eq!(v["status"], "active");
    assert_eq!(v["parent_id"], Value::Null);
    assert_eq!(v["exit_code"], 0);
    assert_eq!(v["error"], Value::Null);
    assert!(
        v["duration_seconds"].as_f64().is_some_and(|d| d >= 0.0),
        "{v}"
    );
    let usage = &v["usage"];
    assert_eq!(
        usage["total"].as_u64().unwrap(),
        usage["input"].as_u64().unwrap() + usage["output"].as_u64().unwrap()
    );
}

#[test]
fn json_output_for_each_backend() {
    let f = Fakes::new();
    let dir = f.dir("p");

    let claude = f
        .at(&dir)
        .args(["--json", "hi"])
        .env("FAKE_CLI_REPLY", "Hello \"you\"")
        .ok();
    assert_eq!(claude.run.stderr, "");
    let v = claude.run.json();
    assert_run_json(&v, &f);
    assert_eq!(v["response"], "Hello \"you\"");
    assert_eq!(v["backend"], "claude");
    assert_eq!(v["model"], "claude-sonnet-4-6");
    assert_eq!(
        v["usage"],
        json!({"input": 22801, "output": 18, "cached": 15934, "cache_write": 6354, "reasoning": 2, "total": 22819})
    );
    assert_eq!(v["cost_usd"], json!(CLAUDE_COST));

    let codex = f.at(&dir).args(["--json", "-b", "codex", "hi"]).ok();
    assert_eq!(codex.call().argv, s(&CODEX_NEW));
    let v = codex.run.json();
    assert_run_json(&v, &f);
    assert_eq!(v["response"], "OK");
    assert_eq!(v["backend"], "codex");
    assert_eq!(
        v["model"], "gpt-6.1-sol",
        "codex does not say, and none was asked for: the rollout says"
    );
    assert_eq!(
        v["usage"],
        json!({"input": 5003, "output": 63, "cached": 3003, "cache_write": 203, "reasoning": 23, "total": 5066})
    );
    assert_eq!(v["cost_usd"], Value::Null);

    let gemini = f
        .at(&dir)
        .args(["--json", "-b", "gemini", "-m", "gemini-2.5-pro", "hi"])
        .ok();
    let v = gemini.run.json();
    assert_run_json(&v, &f);
    assert_eq!(v["backend"], "gemini");
    assert_eq!(v["model"], "gemini-2.5-pro");
    assert_eq!(
        v["usage"],
        json!({"input": 4002, "output": 49, "cached": 1002, "cache_write": 0, "reasoning": 17, "total": 4051})
    );
    assert_eq!(v["cost_usd"], Value::Null);
    assert!(gemini.call().has("--model=gemini-2.5-pro"));
}

// ----- -c / --continue ------------------------------------------------------------------------

#[test]
fn continue_resumes_the_most_recently_used_session_in_its_own_directory() {
    let f = Fakes::new();
    let (a, b, c, elsewhere) = (f.dir("a"), f.dir("b"), f.dir("c"), f.dir("elsewhere"));
    let old = start_at(&f, &a, "claude", "2025-01-27T09:00:00Z");
    let codex = start_at(&f, &b, "codex", "2025-01-27T10:00:00Z");
    let newest = start_at(&f, &c, "claude", "2025-01-27T11:00:00Z");

    let ran = f.at(&elsewhere).args(["-c", "and now the tests"]).ok();
    assert_eq!(ran.run.stdout, "OK\n");
    let call = ran.call();
    assert_eq!(call.cli, "claude");
    assert_eq!(
        call.cwd, c,
        "run in the session's directory, not the current one"
    );
    let mut want = s(&CLAUDE_NEW);
    want.push(format!("--resume={}", bsid(&f, &newest)));
    assert_eq!(call.argv, want);
    assert_eq!(call.stdin, "and now the tests");

    let session = f.home.read_session(&newest);
    assert_eq!(session["status"], "active");
    assert_eq!(session["last_used_at"], NOW, "last_used_at moved");
    assert_eq!(session["created_at"], "2025-01-27T11:00:00Z");
    assert_eq!(
        session["prompt"], "first prompt",
        "the session's prompt is its first"
    );
    let turns = session["turns"].as_array().unwrap();
    assert_eq!(turns.len(), 2);
    assert_eq!(turns[1]["prompt"], "and now the tests");
    assert_eq!(turns[1]["at"], NOW);
    // Runs 1 and 2 of the conversation: 1 + 2 times the first run's.
    assert_eq!(session["token_usage"]["total"], 3 * 22819);
    assert_eq!(
        f.home.read_session(&old)["turns"].as_array().unwrap().len(),
        1
    );

    // -b codex: only codex sessions.
    let ran = f
        .at(&elsewhere)
        .args(["-c", "-b", "codex", "more"])
        .env("CLINVK_NOW", "2025-01-27T12:30:00Z")
        .ok();
    let call = ran.call();
    assert_eq!(call.cli, "codex");
    assert_eq!(call.cwd, b);
    // With the model its rollout named (codex prints none), so the thread keeps it.
    assert_eq!(
        call.argv,
        s(&[
            "exec",
            "resume",
            "--json",
            "--skip-git-repo-check",
            "--model=gpt-6.1-sol",
            &bsid(&f, &codex),
            "-"
        ])
    );
    assert_eq!(call.stdin, "more");
    let session = f.home.read_session(&codex);
    assert_eq!(session["turns"].as_array().unwrap().len(), 2);
    assert_eq!(session["last_used_at"], "2025-01-27T12:30:00Z");
    // The codex session is now the most recent: a plain -c goes there.
    let ran = f
        .at(&elsewhere)
        .args(["-c", "again"])
        .env("CLINVK_NOW", "2025-01-27T13:00:00Z")
        .ok();
    assert_eq!(ran.call().cli, "codex");
}

/// Start a session at the time `at` (CLINVK_NOW), with the prompt "first prompt".
fn start_at(f: &Fakes, dir: &Path, backend: &str, at: &str) -> String {
    let ran = f
        .at(dir)
        .args(["-b", backend, "--json", "first prompt"])
        .env("CLINVK_NOW", at)
        .ok();
    ran.run.session_id()
}

#[test]
fn continue_gemini_resumes_by_id() {
    let f = Fakes::new();
    let (a, other) = (f.dir("a"), f.dir("other"));
    let id = start_at(&f, &a, "gemini", "2025-01-27T11:00:00Z");
    let ran = f.at(&other).args(["-c", "next"]).ok();
    let call = ran.call();
    assert_eq!(call.cwd, a);
    assert_eq!(
        gemini_argv(call),
        s(&[
            "-o",
            "stream-json",
            "--skip-trust",
            &format!("--resume={}", bsid(&f, &id)),
            "--prompt=next"
        ])
    );
    let session = f.home.read_session(&id);
    assert_eq!(session["status"], "active");
    assert_eq!(session["turns"].as_array().unwrap().len(), 2);
}

#[test]
fn continue_without_a_resumable_session_is_exit_3() {
    let f = Fakes::new();
    let dir = f.dir("p");
    let ran = f.at(&dir).args(["-c", "hello"]).run();
    let run = ran.run.fails_with(3);
    assert_eq!(
        run.error_line(),
        "clinvk: there is no resumable session (one with a backend_session_id): start one with `clinvk \"prompt\"`",
    );
    assert!(ran.calls.is_empty());

    // Sessions without a backend session id do not count; nor do other backends with -b.
    f.home.add(
        &session("nobsid")
            .backend_session_id(None)
            .status("created")
            .workdir(&dir_str(&dir)),
    );
    start(&f, &dir, "claude", "x");
    let run = f.refused(f.at(&dir).args(["-c", "-b", "codex", "hello"]), 3);
    assert!(run.error_line().contains("codex"), "{}", run.stderr);
}

// ----- resume -----------------------------------------------------------------------------------

#[test]
fn resume_by_id_and_by_prefix() {
    let f = Fakes::new();
    let dir = f.dir("p");
    let id = start(&f, &dir, "claude", "first");
    let elsewhere = f.dir("elsewhere");
    let ran = f
        .at(&elsewhere)
        .args(["resume", &id, "second"])
        .env("CLINVK_NOW", "2025-01-27T12:10:00Z")
        .ok();
    assert_eq!(ran.run.stdout, "OK\n");
    let call = ran.call();
    assert_eq!(call.cwd, dir);
    assert!(call.has(&format!("--resume={}", bsid(&f, &id))), "{call:?}");
    assert_eq!(call.stdin, "second");

    let ran = f
        .at(&elsewhere)
        .args(["resume", &id[..4], "third", "--tag", "later"])
        .env("CLINVK_NOW", "2025-01-27T12:20:00Z")
        .ok();
    assert_eq!(ran.call().stdin, "third");
    let session = f.home.read_session(&id);
    let prompts: Vec<&str> = session["turns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["prompt"].as_str().unwrap())
        .collect();
    assert_eq!(prompts, ["first", "second", "third"]);
    assert_eq!(session["last_used_at"], "2025-01-27T12:20:00Z");
    assert_eq!(session["tags"], json!(["later"]));
    assert_eq!(
        session["token_usage"],
        // Runs 1, 2 and 3: each its own (1 + 2 + 3 times the first), not the running totals.
        json!({
            "input": 6 * 22801, "output": 6 * 18, "cached": 6 * 15934, "total": 6 * 22819,
            "cache_write": 6 * 6354, "reasoning": 6 * 2
        })
    );
    assert_eq!(f.home.session_files().len(), 1, "no new session");
}

#[test]
fn resume_last_here_and_backend() {
    let f = Fakes::new();
    let (a, b) = (f.dir("a"), f.dir("b"));
    let claude_a = start_at(&f, &a, "claude", "2025-01-27T09:00:00Z");
    let codex_a = start_at(&f, &a, "codex", "2025-01-27T10:00:00Z");
    let gemini_b = start_at(&f, &b, "gemini", "2025-01-27T11:00:00Z");

    // --last: the most recent anywhere.
    let ran = f.at(&a).args(["resume", "--last", "p1"]).ok();
    assert_eq!(ran.call().cli, "gemini");
    assert_eq!(ran.call().cwd, b);
    assert_eq!(
        f.home.read_session(&gemini_b)["turns"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    // --here --last: only sessions of the current directory.
    let ran = f
        .at(&a)
        .args(["resume", "--here", "--last", "p2"])
        .env("CLINVK_NOW", "2025-01-27T12:01:00Z")
        .ok();
    assert_eq!(ran.call().cli, "codex");
    assert!(ran.call().has(&bsid(&f, &codex_a)));
    assert_eq!(ran.call().stdin, "p2");

    // --backend claude --last.
    let ran = f
        .at(&b)
        .args(["resume", "--backend", "claude", "--last", "p3"])
        .env("CLINVK_NOW", "2025-01-27T12:02:00Z")
        .ok();
    assert_eq!(ran.call().cli, "claude");
    assert_eq!(ran.call().cwd, a);
    assert!(ran.call().has(&format!("--resume={}", bsid(&f, &claude_a))));

    // --here in a directory without sessions.
    let empty = f.dir("empty");
    let ran = f
        .at(&empty)
        .args(["resume", "--here", "--last", "p4"])
        .run();
    ran.run.fails_with(3);
    assert!(ran.calls.is_empty());
}

#[test]
fn flags_that_would_do_nothing_are_usage_errors() {
    let f = Fakes::new();
    let dir = f.dir("p");
    let id = start(&f, &dir, "claude", "x");
    // --here and --backend choose a session: an id already has (`hello` was read as one).
    for args in [
        vec!["resume", id.as_str(), "--here", "more"],
        vec!["resume", id.as_str(), "--backend", "codex", "more"],
        vec!["resume", "--here", "hello"],
    ] {
        let run = f.refused(f.at(&dir).args(&args), 2);
        assert!(
            run.error_line()
                .contains("--here and --backend choose the session to resume"),
            "{args:?}: {}",
            run.stderr
        );
    }
    // With --last they choose.
    let ran = f.at(&dir).args(["resume", "--last", "--here", "more"]).ok();
    assert_eq!(ran.call().cwd, dir);
    // --ephemeral keeps no session: there is nothing to tag.
    let run = f.refused(f.at(&dir).args(["--ephemeral", "--tag", "t", "hi"]), 2);
    assert!(run.error_line().contains("--ephemeral"), "{}", run.stderr);
}

#[test]
fn resume_without_id_or_last_refuses_the_picker_without_a_terminal() {
    let f = Fakes::new();
    let dir = f.dir("p");
    start(&f, &dir, "claude", "x");
    let started = Instant::now();
    // stdin is /dev/null (not a terminal); the deadline in `run` guards against a hang.
    let ran = f.at(&dir).args(["resume"]).run();
    assert!(started.elapsed() < Duration::from_secs(10));
    let run = ran.run.fails_with(2);
    assert!(run.error_line().contains("terminal"), "{}", run.stderr);
    assert!(ran.calls.is_empty());
    let ran = f.at(&dir).args(["resume", "-i"]).run();
    ran.run.fails_with(2);
}

#[test]
fn a_session_without_backend_session_id_cannot_be_resumed() {
    let f = Fakes::new();
    let dir = f.dir("p");
    f.home.add(
        &session("nobsid1")
            .backend_session_id(None)
            .status("created")
            .workdir(&dir_str(&dir))
            .tokens(0, 0, 0),
    );
    f.home.warm();
    let run = f.refused(f.at(&dir).args(["resume", "nobsid1", "go on"]), 3);
    assert!(
        run.error_line().contains("cannot be resumed"),
        "{}",
        run.stderr
    );
    assert!(run.error_line().contains("nobsid1"), "{}", run.stderr);
}

#[test]
fn a_session_whose_directory_is_gone_cannot_be_resumed() {
    let f = Fakes::new();
    let dir = f.dir("gone");
    let id = start(&f, &dir, "claude", "x");
    std::fs::remove_dir(&dir).unwrap();
    let run = f.refused(f.at(&f.root).args(["resume", &id, "go on"]), 3);
    assert!(run.error_line().contains(&dir_str(&dir)), "{}", run.stderr);
}

#[test]
fn resume_of_an_unknown_id_is_exit_3() {
    let f = Fakes::new();
    let dir = f.dir("p");
    start(&f, &dir, "claude", "x");
    let run = f.refused(f.at(&dir).args(["resume", "zzzzzzzz", "go on"]), 3);
    assert!(run.error_line().contains("zzzzzzzz"), "{}", run.stderr);
}

#[test]
fn codex_usage_is_recorded_per_run_not_as_the_running_total() {
    let f = Fakes::new();
    let dir = f.dir("p");
    let id = start(&f, &dir, "codex", "one");
    let thread = bsid(&f, &id);
    for (k, prompt) in [(2, "two"), (3, "three")] {
        let ran = f.at(&dir).args(["resume", &id, prompt, "--json"]).ok();
        // --json's usage is this run's too: run k of the thread reports k times the first's.
        assert_eq!(ran.run.json()["usage"]["input"], k * 5003);
        assert_eq!(ran.run.json()["usage"]["total"], k * 5066);
    }
    // The fake's running total is 1 + 2 + 3 runs' worth...
    let total = std::fs::read_to_string(f.state().join("codex.usage").join(&thread)).unwrap();
    assert_eq!(total.trim(), "30018 18018 1218 378 138");
    // ...and so is the session's, turn by turn.
    let session = f.home.read_session(&id);
    let turns = session["turns"].as_array().unwrap();
    assert_eq!(turns.len(), 3);
    for (k, turn) in (1..).zip(turns) {
        assert_eq!(turn["token_usage"]["input"], k * 5003, "{turn}");
        assert_eq!(turn["token_usage"]["reasoning"], k * 23, "{turn}");
    }
    assert_eq!(
        session["token_usage"],
        json!({"input": 30018, "output": 378, "cached": 18018, "total": 30396, "cache_write": 1218, "reasoning": 138})
    );
    assert_eq!(
        session["backend_session_id"],
        json!(thread),
        "the same thread"
    );
}

#[test]
fn codex_resume_keeps_the_model_the_session_started_with() {
    let f = Fakes::new();
    let dir = f.dir("p");
    let ran = f
        .at(&dir)
        .args(["-b", "codex", "-m", "gpt-5.6-sol", "--json", "one"])
        .ok();
    let id = ran.run.session_id();
    let ran = f.at(&dir).args(["resume", &id, "two"]).ok();
    assert!(ran.call().has("--model=gpt-5.6-sol"), "{:?}", ran.call());
    assert_eq!(f.home.read_session(&id)["model"], "gpt-5.6-sol");
}

// ----- sessions fork --------------------------------------------------------------------------

#[test]
fn fork_a_claude_session_with_a_prompt() {
    let f = Fakes::new();
    let dir = f.dir("p");
    let parent = start(&f, &dir, "claude", "the original");
    f.home.ok(&["sessions", "tag", &parent, "base"]);
    let parent_bsid = bsid(&f, &parent);
    let parent_bytes = std::fs::read(f.home.session_path(&parent)).unwrap();

    let other = f.dir("other");
    let ran = f
        .at(&other)
        .args([
            "sessions",
            "fork",
            &parent,
            "try another way",
            "--json",
            "--tag",
            "alt",
        ])
        .env("CLINVK_NOW", "2025-01-27T12:30:00Z")
        .ok();
    let v = ran.run.json();
    let child = v["session_id"].as_str().unwrap().to_string();
    assert_ne!(child, parent);
    assert_eq!(v["parent_id"], json!(parent));
    assert_eq!(v["status"], "active");
    let call = ran.call();
    assert_eq!(call.cwd, dir, "the fork runs in the parent's directory");
    let mut want = s(&CLAUDE_NEW);
    want.extend([
        "--model=claude-sonnet-4-6".to_string(),
        format!("--resume={parent_bsid}"),
        "--fork-session".to_string(),
    ]);
    // The model is inherited from the parent.
    assert_eq!(call.argv, want);
    assert_eq!(call.stdin, "try another way");

    let session = f.home.read_session(&child);
    assert_eq!(session["parent_id"], json!(parent));
    assert_eq!(session["status"], "active");
    assert_eq!(session["workdir"], json!(dir_str(&dir)));
    let child_bsid = session["backend_session_id"].as_str().unwrap();
    assert_ne!(child_bsid, parent_bsid, "a new backend session");
    assert!(f.fake_session("claude", child_bsid).is_file());
    assert_eq!(session["prompt"], "try another way");
    assert_eq!(
        session["tags"],
        json!(["base", "alt"]),
        "the parent's tags, then its own"
    );
    assert_eq!(session["turns"].as_array().unwrap().len(), 1);
    assert_eq!(
        std::fs::read(f.home.session_path(&parent)).unwrap(),
        parent_bytes,
        "the parent is unchanged"
    );
}

#[test]
fn fork_without_a_prompt_forks_at_the_first_resume() {
    let f = Fakes::new();
    let dir = f.dir("p");
    let parent = start(&f, &dir, "claude", "the original");
    let parent_bsid = bsid(&f, &parent);
    let parent_bytes = std::fs::read(f.home.session_path(&parent)).unwrap();

    let ran = f.at(&dir).args(["sessions", "fork", &parent]).ok();
    assert!(ran.calls.is_empty(), "nothing runs yet");
    let child = ran.run.stdout.trim_end_matches('\n').to_string();
    assert_eq!(
        ran.run.stdout,
        format!("{child}\n"),
        "only the new id on stdout"
    );
    let session = f.home.read_session(&child);
    assert_eq!(session["status"], "created");
    assert_eq!(session["parent_id"], json!(parent));
    assert_eq!(session["metadata"]["fork_from"], json!(parent_bsid));
    assert!(
        session.get("backend_session_id").is_none_or(Value::is_null),
        "{session}"
    );
    assert_eq!(session["workdir"], json!(dir_str(&dir)));

    let ran = f
        .at(&f.dir("elsewhere"))
        .args(["resume", &child, "now go"])
        .env("CLINVK_NOW", "2025-01-27T12:40:00Z")
        .ok();
    let call = ran.call();
    assert_eq!(call.cwd, dir);
    assert!(call.has(&format!("--resume={parent_bsid}")), "{call:?}");
    assert!(call.has("--fork-session"), "{call:?}");
    assert_eq!(call.stdin, "now go");
    let session = f.home.read_session(&child);
    assert_eq!(session["status"], "active");
    let child_bsid = session["backend_session_id"].as_str().expect("its own id");
    assert_ne!(child_bsid, parent_bsid);
    assert!(session["metadata"].get("fork_from").is_none(), "{session}");
    assert_eq!(session["turns"].as_array().unwrap().len(), 1);

    // The next resume resumes the fork's own backend session, no more forking.
    let ran = f.at(&dir).args(["resume", &child, "more"]).ok();
    assert!(ran.call().has(&format!("--resume={child_bsid}")));
    assert!(!ran.call().has("--fork-session"));
    assert_eq!(
        std::fs::read(f.home.session_path(&parent)).unwrap(),
        parent_bytes,
        "the parent is unchanged"
    );
}

#[test]
fn gemini_sessions_cannot_be_forked() {
    let f = Fakes::new();
    let dir = f.dir("p");
    let id = start(&f, &dir, "gemini", "x");
    let before = f.home.snapshot(false);
    for args in [
        vec!["sessions", "fork", id.as_str(), "a prompt"],
        vec!["sessions", "fork", id.as_str()],
    ] {
        let ran = f.at(&dir).args(&args).run();
        let run = ran.run.fails_with(2);
        assert!(run.error_line().contains("gemini"), "{}", run.stderr);
        assert!(ran.calls.is_empty(), "{args:?}");
        assert_same_files(&before, &f.home.snapshot(false));
    }
}

// ----- --ephemeral ----------------------------------------------------------------------------

#[test]
fn ephemeral_runs_leave_nothing_behind() {
    let f = Fakes::new();
    let dir = f.dir("p");
    let claude = f
        .at(&dir)
        .args(["--ephemeral", "quick question"])
        .env("FAKE_CLI_REPLY", "quick answer")
        .ok();
    assert_eq!(claude.run.stdout, "quick answer\n");
    let mut want = s(&CLAUDE_NEW);
    want.push("--no-session-persistence".into());
    assert_eq!(claude.call().argv, want);
    assert_eq!(claude.call().stdin, "quick question");

    let codex = f
        .at(&dir)
        .args(["--ephemeral", "-b", "codex", "--json", "q"])
        .ok();
    assert_eq!(
        codex.call().argv,
        s(&[
            "exec",
            "--ephemeral",
            "--json",
            "--skip-git-repo-check",
            "-"
        ])
    );
    let v = codex.run.json();
    assert_eq!(v["response"], "OK");
    assert_eq!(v["session_id"], Value::Null);
    assert_eq!(v["usage"]["total"], 5066);

    // Gemini has no such flag, but clinvk keeps nothing either.
    let gemini = f.at(&dir).args(["--ephemeral", "-b", "gemini", "q"]).ok();
    assert_eq!(gemini.run.stdout, "OK\n");
    assert_eq!(gemini_prompt(gemini.call()), "q");

    assert_eq!(f.home.session_files(), Vec::<String>::new());
    assert_eq!(f.home.list_json(&[]), Vec::<Value>::new());
    // Nor did the fakes keep anything.
    assert!(!f.state().join("claude").exists());
    assert!(!f.state().join("codex").exists());
}

#[test]
fn ephemeral_and_continue_do_not_go_together() {
    let f = Fakes::new();
    let dir = f.dir("p");
    start(&f, &dir, "claude", "x");
    f.refused(f.at(&dir).args(["--ephemeral", "-c", "q"]), 2);
}

// ----- settings -------------------------------------------------------------------------------

#[test]
fn store_token_usage_false_keeps_no_usage() {
    let f = Fakes::new();
    std::fs::write(
        f.home.config_path(),
        "session:\n  store_token_usage: false\n",
    )
    .unwrap();
    let dir = f.dir("p");
    let id = start(&f, &dir, "codex", "one");
    f.at(&dir).args(["resume", &id, "two"]).ok();
    let session = f.home.read_session(&id);
    assert_eq!(
        session["token_usage"],
        json!({"input": 0, "output": 0, "cached": 0, "total": 0})
    );
    let turns = session["turns"].as_array().unwrap();
    assert_eq!(turns.len(), 2);
    for turn in turns {
        assert!(turn.get("token_usage").is_none(), "{turn}");
    }
    assert_eq!(session["status"], "active");
}

#[test]
fn retention_removes_old_sessions_at_most_once_a_day() {
    let f = Fakes::new();
    std::fs::write(f.home.config_path(), "session:\n  retention_days: 1\n").unwrap();
    let dir = f.dir("p");
    f.home
        .add(&session("oldone").used_ago(chrono::Duration::days(10)));
    f.home
        .add(&session("recent").used_ago(chrono::Duration::hours(2)));
    f.home.warm();

    let ran = f.at(&dir).args(["first"]).ok();
    assert_eq!(ran.run.stdout, "OK\n");
    let lines = ran.run.stderr_lines();
    assert_eq!(lines.len(), 1, "{}", ran.run.stderr);
    assert!(lines[0].starts_with("clinvk: warning: "), "{}", lines[0]);
    assert!(lines[0].contains("removed 1 session"), "{}", lines[0]);
    assert!(!f.home.session_exists("oldone"));
    assert!(f.home.session_exists("recent"));

    // Another old session, and another run the same day: not cleaned again.
    f.home
        .add(&session("oldtwo").used_ago(chrono::Duration::days(10)));
    let ran = f
        .at(&dir)
        .args(["second"])
        .env("CLINVK_NOW", rfc3339(now() + chrono::Duration::hours(3)))
        .ok();
    assert_eq!(ran.run.stderr, "");
    assert!(f.home.session_exists("oldtwo"));

    // A day later it is.
    // A day later it is (with "recent" and the first run's session, now over a day old too).
    let ran = f
        .at(&dir)
        .args(["--json", "third"])
        .env("CLINVK_NOW", rfc3339(now() + chrono::Duration::hours(25)))
        .ok();
    assert!(
        ran.run.stderr.contains("removed 3 session"),
        "{}",
        ran.run.stderr
    );
    assert!(!f.home.session_exists("oldtwo"));
    assert!(!f.home.session_exists("recent"));
    let third = ran.run.session_id();
    assert!(f.home.session_exists(&third));
    assert_eq!(
        f.home.session_files().len(),
        2,
        "the second and third runs' sessions stay"
    );
}

// ----- Ctrl-C ---------------------------------------------------------------------------------

/// Poll `cond` every 10 ms until it holds, failing after `limit`.
#[track_caller]
fn wait_for(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// `clinvk "a long task"` on the fake claude's `slow` scenario (a 30 s sleep mid-answer).
fn start_slow_run(f: &Fakes) -> std::process::Child {
    let dir = f.dir("p");
    f.at(&dir)
        .args(["a long task"])
        .scenario("slow")
        .env("FAKE_CLI_SLEEP", "30")
        .spawn()
        .0
}

#[test]
fn ctrl_c_is_forwarded_and_the_session_recorded_as_interrupted() {
    let f = Fakes::new();
    let child = start_slow_run(&f);
    let started = Instant::now();
    // The fake saves its session after setting up its signal handling, then prints its first
    // events and sleeps.
    let fake_sessions = f.state().join("claude");
    wait_for(Duration::from_secs(10), "the fake to start", || {
        std::fs::read_dir(&fake_sessions).is_ok_and(|mut d| d.next().is_some())
    });
    wait_for_sleep_under(child.id());
    // While the CLI runs, the session exists, as `created`.
    let files = f.home.session_files();
    assert_eq!(files.len(), 1, "{files:?}");
    let id = files[0].trim_end_matches(".json").to_string();
    let during = f.home.read_session(&id);
    assert_eq!(during["status"], "created");
    assert_eq!(during["prompt"], "a long task");

    // SAFETY: kill(2) on the pid of a child this test spawned.
    let rc = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
    assert_eq!(rc, 0);
    let out = wait_with_deadline(child, Duration::from_secs(10));
    let run = Run::from_output(out);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the fake's 30 s sleep was cut short"
    );
    assert_eq!(
        run.code, 130,
        "stdout:\n{}\nstderr:\n{}",
        run.stdout, run.stderr
    );
    assert_eq!(run.stdout, "");
    assert!(
        run.error_line().starts_with("clinvk: claude failed: "),
        "{}",
        run.stderr
    );
    assert!(run.error_line().contains("interrupted"), "{}", run.stderr);

    let session = f.home.read_session(&id);
    assert_eq!(session["status"], "error");
    let error = session["metadata"]["error"].as_str().unwrap_or_default();
    assert!(error.contains("interrupted"), "{session}");
    let turn = &session["turns"][0];
    // The fake claude exits 0 without a result line when it gets SIGINT (not killed by it, not
    // finished): so it got the signal and handled it.
    assert_eq!(turn["exit_code"], 0, "{turn}");
    assert!(turn["error"]
        .as_str()
        .unwrap_or_default()
        .contains("interrupted"));
    // What the fake printed before the signal counts: its session id, from the init event.
    let fake_ids: Vec<_> = std::fs::read_dir(&fake_sessions)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        session["backend_session_id"],
        json!(fake_ids[0]),
        "{session}"
    );
}

/// Defect from issue 9: a signal that came after the CLI exited, while clinvk still read the
/// output something the CLI left running held open, marked a completed run interrupted.
#[test]
fn a_signal_after_the_cli_exited_leaves_the_run_completed() {
    use std::os::unix::fs::PermissionsExt;
    let f = Fakes::new();
    let dir = f.dir("p");
    let bin = f.dir("bin");
    let marker = f.dir("marks").join("exited");
    // The real fake, then a background process that keeps its stdout open, then exit.
    let wrapper = bin.join("claude");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\n\"{FAKES_DIR}/claude\" \"$@\"\nrc=$?\nsleep 3 &\n: > \"{}\"\nexit $rc\n",
            marker.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let (child, _log) = f
        .at(&dir)
        .env("PATH", format!("{}:{}", bin.display(), path_with_fakes()))
        .args(["a short task"])
        .spawn();
    wait_for(Duration::from_secs(10), "the CLI to exit", || {
        marker.exists()
    });
    // clinvk sees the exit within a poll step (20 ms), then reads on for up to 2 s.
    std::thread::sleep(Duration::from_millis(300));
    // SAFETY: kill(2) on the pid of a child this test spawned.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
    let run = Run::from_output(wait_with_deadline(child, Duration::from_secs(20)));
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(!run.stderr.contains("interrupted"), "{}", run.stderr);
    let session = f.only_session();
    assert_eq!(session["status"], "active", "{session}");
    assert!(session["metadata"]["error"].is_null(), "{session}");
}

/// The report: SIGTERM in the first 10-20 ms of a run killed clinvk outright (exit 143,
/// no message) and left the session `created`. Whenever it comes, either clinvk had not made
/// anything yet (killed before its handlers, no session), or the session is recorded as
/// interrupted and clinvk exits 130 with one line. The sharpest moment is the one just after
/// the session file appears, before the CLI is started: aimed at three times.
#[test]
fn sigterm_at_any_moment_of_a_run_never_leaves_a_created_session() {
    use std::os::unix::process::ExitStatusExt;
    let mut recorded = 0;
    let moments = [None, None, None]
        .into_iter()
        .chain([0u64, 2, 5, 10, 20, 50].map(Some));
    for delay_ms in moments {
        let f = Fakes::new();
        let child = start_slow_run(&f);
        match delay_ms {
            Some(ms) => std::thread::sleep(Duration::from_millis(ms)),
            None => {
                let start = Instant::now();
                while f.home.session_files().is_empty() {
                    assert!(
                        start.elapsed() < Duration::from_secs(10),
                        "no session appeared"
                    );
                }
            }
        }
        // SAFETY: kill(2) on the pid of a child this test spawned.
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
        let out = wait_with_deadline(child, Duration::from_secs(20));
        let files = f.home.session_files();
        let when = format!("SIGTERM at {delay_ms:?} ms (None: as the file appeared)");
        if out.status.signal() == Some(libc::SIGTERM) {
            assert_eq!(
                files,
                Vec::<String>::new(),
                "{when}: killed, yet a session is left"
            );
            continue;
        }
        let run = Run::from_output(out);
        assert_eq!(run.code, 130, "{when}: {}", run.stderr);
        assert!(
            run.error_line().contains("interrupted by SIGTERM"),
            "{}",
            run.stderr
        );
        assert_eq!(files.len(), 1, "{when}: {files:?}");
        let session = f.home.read_session(files[0].trim_end_matches(".json"));
        assert_eq!(session["status"], "error", "{when}: {session}");
        let error = session["metadata"]["error"].as_str().unwrap_or_default();
        assert!(error.contains("interrupted by SIGTERM"), "{session}");
        recorded += 1;
    }
    assert!(
        recorded >= 3,
        "the tries aimed at the session file must reach the run"
    );
}

/// Wait until the fake under clinvk `pid` is in its `slow` sleep (so it has printed its first
/// events). Without /proc, a short pause instead.
fn wait_for_sleep_under(pid: u32) {
    if !have_proc() {
        std::thread::sleep(Duration::from_millis(300));
        return;
    }
    wait_for(Duration::from_secs(10), "the fake's sleep", || {
        fake_is_sleeping(pid)
    });
}

// ----- concurrency ----------------------------------------------------------------------------

#[test]
fn concurrent_resumes_of_one_session_each_add_their_turn() {
    let f = Fakes::new();
    let dir = f.dir("p");
    let id = start(&f, &dir, "claude", "base");
    let children: Vec<_> = (0..6)
        .map(|n| {
            f.at(&dir)
                .args(["resume", &id, &format!("prompt {n}")])
                .scenario("slow")
                .env("FAKE_CLI_SLEEP", "0.3")
                .spawn()
        })
        .collect();
    for (n, (child, log)) in children.into_iter().enumerate() {
        let run = Run::from_output(wait_with_deadline(child, Duration::from_secs(30)));
        assert_eq!(run.code, 0, "resume {n}: {}", run.stderr);
        assert_eq!(run.stdout, "OK\n");
        assert_eq!(fake_calls(&log).len(), 1);
    }
    let session = f.home.read_session(&id);
    let turns = session["turns"].as_array().unwrap();
    assert_eq!(turns.len(), 7, "1 + 6 turns");
    let mut prompts: Vec<&str> = turns
        .iter()
        .map(|t| t["prompt"].as_str().unwrap())
        .collect();
    prompts.sort();
    assert_eq!(
        prompts,
        ["base", "prompt 0", "prompt 1", "prompt 2", "prompt 3", "prompt 4", "prompt 5"]
    );
    let sum: u64 = turns
        .iter()
        .map(|t| t["token_usage"]["total"].as_u64().unwrap())
        .sum();
    assert_eq!(session["token_usage"]["total"].as_u64().unwrap(), sum);
    // Concurrent runs race for the fake's run number, so each is some k times the first run's;
    // none is the running total of a seventh run (28 times).
    for t in turns {
        let total = t["token_usage"]["total"].as_u64().unwrap();
        assert!(total % 22819 == 0 && total <= 7 * 22819, "{t}");
    }
    assert_eq!(session["status"], "active");
    f.home.ok(&["sessions", "reindex", "--check"]);
}

#[test]
fn concurrent_new_sessions_all_land() {
    let f = Fakes::new();
    let children: Vec<_> = (0..8)
        .map(|n| {
            let backend = ["claude", "codex", "gemini"][n % 3];
            f.at(&f.dir(&format!("p{n}")))
                .args(["-b", backend, &format!("task {n}")])
                .spawn()
        })
        .collect();
    for (child, _) in children {
        let run = Run::from_output(wait_with_deadline(child, Duration::from_secs(30)));
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert_eq!(run.stdout, "OK\n");
    }
    assert_eq!(f.home.session_files().len(), 8);
    f.home.ok(&["sessions", "reindex", "--check"]);
    let rows = f.home.list_json(&[]);
    assert_eq!(rows.len(), 8);
    assert!(rows.iter().all(|r| r["status"] == "active"), "{rows:?}");
}

#[test]
fn a_session_being_resumed_survives_a_clean_running_meanwhile() {
    let f = Fakes::new();
    let dir = f.dir("p");
    let id = start(&f, &dir, "claude", "old work");
    // Last used two months ago: `clean --older-than 30d` would take it.
    let path = f.home.session_path(&id);
    let mut file = f.home.read_session(&id);
    file["last_used_at"] = json!(ago(chrono::Duration::days(60)));
    std::fs::write(&path, serde_json::to_vec_pretty(&file).unwrap()).unwrap();
    f.home.ok(&["sessions", "reindex"]);

    let (child, _log) = f
        .at(&dir)
        .args(["resume", id.as_str(), "more work"])
        .scenario("slow")
        .env("FAKE_CLI_SLEEP", "1")
        .spawn();
    wait_for_sleep_under(child.id());
    let cleaned = f
        .home
        .ok(&["sessions", "clean", "--older-than", "30d", "--json"]);
    assert_eq!(cleaned.json(), json!([]), "{}", cleaned.stderr);
    let run = Run::from_output(wait_with_deadline(child, Duration::from_secs(10)));
    assert_eq!(run.code, 0, "{}", run.stderr);
    let after = f.home.read_session(&id);
    assert_eq!(after["status"], "active");
    assert_eq!(after["turns"].as_array().unwrap().len(), 2);
}

#[test]
fn a_prompt_that_is_a_command_name_needs_dashes() {
    let f = Fakes::new();
    let dir = f.dir("p");
    let run = f.at(&dir).args(["-b", "codex", "resume"]).run();
    assert_eq!(run.run.code, 2, "{}", run.run.stderr);
    assert!(
        run.run.stderr.contains("clinvk -- resume"),
        "{}",
        run.run.stderr
    );
    assert!(f.home.session_files().is_empty());
}

#[cfg(target_os = "linux")]
#[test]
fn the_cli_is_stopped_when_clinvk_itself_is_killed() {
    let f = Fakes::new();
    let dir = f.dir("p");
    let (mut child, _log) = f
        .at(&dir)
        .args(["a long task"])
        .scenario("slow")
        .env("FAKE_CLI_SLEEP", "30")
        .spawn();
    wait_for_sleep_under(child.id());
    let fakes: Vec<u32> = children_of(child.id())
        .into_iter()
        .map(|(p, _)| p)
        .collect();
    assert_eq!(fakes.len(), 1, "{fakes:?}");
    // SIGKILL: clinvk gets no chance to forward anything; the kernel's parent-death signal must.
    child.kill().unwrap();
    child.wait().unwrap();
    let fake = std::path::PathBuf::from(format!("/proc/{}", fakes[0]));
    wait_for(Duration::from_secs(10), "the orphaned CLI to stop", || {
        // Gone, or a zombie waiting for init to reap it.
        std::fs::read_to_string(fake.join("stat")).map_or(true, |stat| {
            stat.rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z')
        })
    });
}
