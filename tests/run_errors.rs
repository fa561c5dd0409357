//! Running prompts when things go wrong, end to end with the fake CLIs of tests/fakes: each
//! backend's failure scenarios (exit 7, Gemini's own 41-55 kept), noisy but successful runs, a
//! failed resume, a CLI that is not installed (exit 8), and bad flags (exit 2).
#![cfg(unix)]

#[macro_use]
#[allow(unused_macros)]
mod common;

use common::*;
use serde_json::{json, Value};

/// A failure scenario: the backend, FAKE_CLI_SCENARIO, clinvk's exit code, the backend's exit
/// code, and what the error must mention.
struct Failure {
    backend: &'static str,
    scenario: &'static str,
    code: i32,
    backend_code: i32,
    mention: &'static str,
}

const FAILURES: &[Failure] = &[
    Failure {
        backend: "claude",
        scenario: "api_error",
        code: 7,
        backend_code: 1,
        mention: "You've hit your org's monthly usage limit",
    },
    Failure {
        backend: "claude",
        scenario: "max_turns",
        code: 7,
        backend_code: 1,
        mention: "Reached maximum number of turns (1)",
    },
    Failure {
        backend: "claude",
        scenario: "garbage",
        code: 7,
        backend_code: 0,
        mention: "without a result",
    },
    Failure {
        backend: "claude",
        scenario: "crash",
        code: 7,
        backend_code: 1,
        // The Node error itself, not just the last lines of its stack trace.
        mention: "Cannot read properties of undefined",
    },
    Failure {
        backend: "codex",
        scenario: "turn_failed",
        code: 7,
        backend_code: 1,
        mention: "shared rollout token budget exhausted",
    },
    Failure {
        backend: "codex",
        scenario: "auth",
        code: 7,
        backend_code: 1,
        mention: "401 Unauthorized",
    },
    Failure {
        backend: "codex",
        scenario: "bad_model",
        code: 7,
        backend_code: 1,
        mention: "is not supported when using Codex with a ChatGPT account",
    },
    Failure {
        backend: "codex",
        scenario: "untrusted",
        code: 7,
        backend_code: 1,
        mention: "Not inside a trusted directory",
    },
    Failure {
        backend: "codex",
        scenario: "garbage",
        code: 7,
        backend_code: 0,
        mention: "without a result",
    },
    Failure {
        backend: "gemini",
        scenario: "auth",
        code: 41,
        backend_code: 41,
        mention: "Authentication required",
    },
    Failure {
        backend: "gemini",
        scenario: "api_error",
        code: 7,
        backend_code: 1,
        mention: "network error: exception TypeError: fetch failed sending request",
    },
    Failure {
        backend: "gemini",
        scenario: "garbage",
        code: 7,
        backend_code: 0,
        mention: "without a result",
    },
    Failure {
        backend: "claude",
        scenario: "fail401",
        code: 7,
        backend_code: 1,
        mention: "API error 401",
    },
    Failure {
        backend: "claude",
        scenario: "fail429",
        code: 7,
        backend_code: 1,
        mention: "API error 429",
    },
    Failure {
        backend: "claude",
        scenario: "fail500",
        code: 7,
        backend_code: 1,
        mention: "API error 500",
    },
    Failure {
        backend: "claude",
        scenario: "failclose",
        code: 7,
        backend_code: 1,
        mention: "network error",
    },
    Failure {
        backend: "codex",
        scenario: "fail401",
        code: 7,
        backend_code: 1,
        mention: "API error 401",
    },
    Failure {
        backend: "codex",
        scenario: "fail429",
        code: 7,
        backend_code: 1,
        mention: "API error 429",
    },
    Failure {
        backend: "codex",
        scenario: "fail500",
        code: 7,
        backend_code: 1,
        mention: "high demand",
    },
    Failure {
        backend: "codex",
        scenario: "failclose",
        code: 7,
        backend_code: 1,
        mention: "network error",
    },
    Failure {
        backend: "gemini",
        scenario: "fail401",
        code: 7,
        backend_code: 145,
        mention: "API error 401",
    },
    Failure {
        backend: "gemini",
        scenario: "fail429",
        code: 7,
        backend_code: 173,
        mention: "API error 429",
    },
    Failure {
        backend: "gemini",
        scenario: "fail500",
        code: 7,
        backend_code: 244,
        mention: "API error 500",
    },
    Failure {
        backend: "gemini",
        scenario: "failclose",
        code: 7,
        backend_code: 1,
        mention: "network error",
    },
];

#[test]
fn each_backend_failure_is_one_error_line_and_an_error_session() {
    let mut problems = Vec::new();
    for case in FAILURES {
        let f = Fakes::new();
        let dir = f.dir("p");
        let ran = f
            .at(&dir)
            .args(["-b", case.backend, "do it"])
            .scenario(case.scenario)
            .run();
        let what = format!("{} {}", case.backend, case.scenario);
        let run = &ran.run;
        let mut check = |ok: bool, msg: String| {
            if !ok {
                problems.push(format!("{what}: {msg}"));
            }
        };
        check(
            run.code == case.code,
            format!(
                "exit {} (expected {})\nstderr: {}",
                run.code, case.code, run.stderr
            ),
        );
        check(run.stdout.is_empty(), format!("stdout: {:?}", run.stdout));
        let lines = run.stderr_lines();
        check(
            lines.len() == 1,
            format!("stderr is not one line: {:?}", run.stderr),
        );
        let prefix = format!("clinvk: {} failed: ", case.backend);
        check(
            run.error_line().starts_with(&prefix),
            format!("error line {:?}", run.error_line()),
        );
        check(
            run.error_line().contains(case.mention),
            format!("error line {:?} lacks {:?}", run.error_line(), case.mention),
        );
        check(ran.calls.len() == 1, format!("calls: {:?}", ran.calls));

        let session = f.only_session();
        check(
            session["status"] == "error",
            format!("status {}", session["status"]),
        );
        let error = session["metadata"]["error"].as_str().unwrap_or_default();
        check(
            error.contains(case.mention),
            format!("metadata.error {error:?} lacks {:?}", case.mention),
        );
        check(
            session["metadata"]["exit_code"] == json!(case.backend_code),
            format!("metadata.exit_code {}", session["metadata"]["exit_code"]),
        );
        let turns = session["turns"].as_array().cloned().unwrap_or_default();
        check(turns.len() == 1, format!("turns: {turns:?}"));
        if let Some(turn) = turns.first() {
            check(
                turn["error"]
                    .as_str()
                    .is_some_and(|e| e.contains(case.mention)),
                format!("turn error {}", turn["error"]),
            );
            check(
                turn["exit_code"] == json!(case.backend_code),
                format!("turn exit_code {}", turn["exit_code"]),
            );
        }
        // The index agrees.
        let rows = f.home.list_json(&["--status", "error"]);
        check(rows.len() == 1, format!("list --status error: {rows:?}"));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn a_failure_with_json_prints_the_object_with_the_error() {
    for (backend, scenario, code, mention) in [
        ("claude", "api_error", 7, "monthly usage limit"),
        ("codex", "turn_failed", 7, "token budget exhausted"),
        ("gemini", "auth", 41, "Authentication required"),
    ] {
        let f = Fakes::new();
        let dir = f.dir("p");
        let ran = f
            .at(&dir)
            .args(["-b", backend, "--json", "do it"])
            .scenario(scenario)
            .run();
        assert_eq!(
            ran.run.code, code,
            "{backend} {scenario}: {}",
            ran.run.stderr
        );
        let v = ran.run.json();
        assert_eq!(v["status"], "error", "{v}");
        assert_eq!(v["backend"], backend);
        assert!(
            v["error"].as_str().is_some_and(|e| e.contains(mention)),
            "{v}"
        );
        let session = f.only_session();
        assert_eq!(v["session_id"], session["id"]);
        assert_eq!(session["status"], "error");
        assert_eq!(v["exit_code"], session["metadata"]["exit_code"]);
        // The error line still goes to stderr, for people watching.
        assert!(
            ran.run
                .error_line()
                .starts_with(&format!("clinvk: {backend} failed: ")),
            "{}",
            ran.run.stderr
        );
    }
}

#[test]
fn noisy_runs_and_codex_retries_are_successes_with_clean_output() {
    for (backend, scenario) in [
        ("claude", "noise"),
        ("codex", "noise"),
        ("codex", "retries"),
        ("gemini", "noise"),
    ] {
        let f = Fakes::new();
        let dir = f.dir("p");
        let ran = f
            .at(&dir)
            .args(["-b", backend, "do it"])
            .scenario(scenario)
            .env("FAKE_CLI_REPLY", "All good")
            .run();
        assert_eq!(
            (
                ran.run.code,
                ran.run.stdout.as_str(),
                ran.run.stderr.as_str()
            ),
            (0, "All good\n", ""),
            "{backend} {scenario}: the backend's stderr is not clinvk's"
        );
        let session = f.only_session();
        assert_eq!(session["status"], "active", "{backend} {scenario}");
        assert!(
            session["metadata"].get("error").is_none(),
            "{backend} {scenario}: {session}"
        );
        assert!(session["token_usage"]["total"].as_u64().unwrap() > 0);
    }
}

#[test]
fn a_failed_resume_keeps_the_backend_session_id_and_a_later_one_recovers() {
    let f = Fakes::new();
    let dir = f.dir("p");
    let ran = f.at(&dir).args(["--json", "first"]).ok();
    let id = ran.run.session_id();
    let bsid = ran.run.json()["backend_session_id"]
        .as_str()
        .unwrap()
        .to_string();
    // Claude lost the conversation (the fake looks it up in this directory).
    let record = f.fake_session("claude", &bsid);
    let saved = record.with_extension("saved");
    std::fs::rename(&record, &saved).unwrap();

    let ran = f
        .at(&dir)
        .args(["resume", &id, "second"])
        .env("CLINVK_NOW", "2025-01-27T12:10:00Z")
        .run();
    let run = ran.run.clone().fails_with(7);
    assert!(
        run.error_line().contains("No conversation found"),
        "{}",
        run.stderr
    );
    assert!(ran.call().has(&format!("--resume={bsid}")));
    let session = f.home.read_session(&id);
    assert_eq!(session["status"], "error");
    assert_eq!(
        session["backend_session_id"],
        json!(bsid),
        "not the fake's fresh random id of the failed result"
    );
    assert!(session["metadata"]["error"]
        .as_str()
        .unwrap()
        .contains("No conversation found"));
    assert_eq!(session["turns"].as_array().unwrap().len(), 2);
    assert_eq!(session["last_used_at"], "2025-01-27T12:10:00Z");

    // It is still resumable, and a successful resume makes it active again.
    std::fs::rename(&saved, &record).unwrap();
    let ran = f
        .at(&dir)
        .args(["resume", "--last", "third"])
        .env("CLINVK_NOW", "2025-01-27T12:20:00Z")
        .ok();
    assert!(ran.call().has(&format!("--resume={bsid}")));
    let session = f.home.read_session(&id);
    assert_eq!(session["status"], "active");
    assert_eq!(session["backend_session_id"], json!(bsid));
    assert!(session["metadata"].get("error").is_none(), "{session}");
    let turns = session["turns"].as_array().unwrap();
    assert_eq!(turns.len(), 3);
    assert!(
        turns[1]["error"].is_string(),
        "the failed turn keeps its error"
    );
    assert!(turns[2].get("error").is_none());
}

#[test]
fn gemini_and_codex_resume_failures() {
    let f = Fakes::new();
    let dir = f.dir("p");
    for (backend, code, mention) in [
        ("gemini", 42, "Invalid session identifier"),
        ("codex", 7, "no rollout found"),
    ] {
        let ran = f.at(&dir).args(["-b", backend, "--json", "first"]).ok();
        let id = ran.run.session_id();
        let bsid = ran.run.json()["backend_session_id"]
            .as_str()
            .unwrap()
            .to_string();
        std::fs::remove_file(f.fake_session(backend, &bsid)).unwrap();
        let ran = f.at(&dir).args(["resume", &id, "second"]).run();
        let run = ran.run.fails_with(code);
        assert!(
            run.error_line().contains(mention),
            "{backend}: {}",
            run.stderr
        );
        let session = f.home.read_session(&id);
        assert_eq!(session["status"], "error", "{backend}");
        assert_eq!(session["backend_session_id"], json!(bsid), "{backend}");
        assert!(session["metadata"]["error"]
            .as_str()
            .is_some_and(|e| e.contains(mention)));
    }
}

// ----- the CLI is missing -----------------------------------------------------------------------

#[test]
fn a_cli_that_is_not_on_path_is_exit_8_and_creates_nothing() {
    let f = Fakes::new();
    let dir = f.dir("p");
    for (backend, package) in [
        ("claude", "@anthropic-ai/claude-code"),
        ("codex", "@openai/codex"),
        ("gemini", "@google/gemini-cli"),
    ] {
        let ran = f
            .at(&dir)
            .args(["-b", backend, "hello"])
            .env("PATH", "/usr/bin:/bin")
            .run();
        let run = ran.run.fails_with(8);
        let line = run.error_line();
        assert!(
            line.contains(&format!("`{backend}`")) || line.contains(backend),
            "{line}"
        );
        assert!(line.contains(package), "how to install: {line}");
        assert!(
            line.contains(&format!("clinvk config set backends.{backend}.command")),
            "how to configure: {line}"
        );
    }
    assert_eq!(f.home.session_files(), Vec::<String>::new());
    assert_eq!(f.home.list_json(&[]), Vec::<Value>::new());
}

#[test]
fn resuming_or_forking_with_the_cli_missing_changes_nothing() {
    let f = Fakes::new();
    let dir = f.dir("p");
    let ran = f.at(&dir).args(["--json", "first"]).ok();
    let id = ran.run.session_id();
    let before = f.home.snapshot(false);
    for args in [
        vec!["resume", id.as_str(), "more"],
        vec!["-c", "more"],
        vec!["sessions", "fork", id.as_str(), "other way"],
    ] {
        let ran = f.at(&dir).args(&args).env("PATH", "/usr/bin:/bin").run();
        ran.run.fails_with(8);
        assert_same_files(&before, &f.home.snapshot(false));
    }
}

#[test]
fn a_configured_command_is_used_without_path_and_checked() {
    let f = Fakes::new();
    let dir = f.dir("p");
    let fake = format!("{FAKES_DIR}/claude");
    f.home
        .ok(&["config", "set", "backends.claude.command", &fake]);
    let ran = f.at(&dir).args(["hello"]).env("PATH", "/usr/bin:/bin").ok();
    assert_eq!(ran.run.stdout, "OK\n");
    assert_eq!(ran.call().cli, "claude");
    assert_eq!(f.only_session()["status"], "active");

    let missing = f.root.join("nowhere").join("claude");
    let missing = missing.to_str().unwrap();
    f.home
        .ok(&["config", "set", "backends.claude.command", missing]);
    let before = f.home.snapshot(false);
    // Even with a claude on PATH: the configured one is the one to run.
    let ran = f.at(&dir).args(["hello"]).run();
    let run = ran.run.fails_with(8);
    assert!(run.error_line().contains(missing), "{}", run.stderr);
    assert!(
        run.error_line().contains("backends.claude.command"),
        "{}",
        run.stderr
    );
    assert!(ran.calls.is_empty());
    assert_same_files(&before, &f.home.snapshot(false));
}

/// The README: a CLI that is found but cannot start because its script's interpreter is
/// missing exits 8 and creates no session.
#[test]
fn a_script_whose_interpreter_is_missing_exits_8_and_creates_nothing() {
    use std::os::unix::fs::PermissionsExt;
    let f = Fakes::new();
    let dir = f.dir("p");
    let script = f.root.join("broken-claude");
    std::fs::write(&script, "#!/nonexistent/interpreter\necho hi\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    f.home.ok(&[
        "config",
        "set",
        "backends.claude.command",
        script.to_str().unwrap(),
    ]);
    let before = f.home.snapshot(false);
    let ran = f.at(&dir).args(["hello"]).run();
    let run = ran.run.fails_with(8);
    assert!(run.error_line().contains("broken-claude"), "{}", run.stderr);
    assert_same_files(&before, &f.home.snapshot(false));
}

// ----- bad command lines ------------------------------------------------------------------------

#[test]
fn bad_backends_and_models_are_usage_errors_that_create_nothing() {
    let f = Fakes::new();
    let dir = f.dir("p");
    for (args, env) in [
        (vec!["-b", "copilot", "hello"], None),
        (vec!["-m=-x", "hello"], None),
        (vec!["--model=-x", "hello"], None),
        (vec!["-b", "codex", "--model=--help", "hello"], None),
        (vec!["-b", "gemini", "-m", "", "hello"], None),
        (vec!["hello"], Some(("CLINVK_BACKEND", "copilot"))),
        (vec!["--ephemeral", "-m=-x", "hello"], None),
    ] {
        let mut cmd = f.at(&dir).args(&args);
        if let Some((k, v)) = env {
            cmd = cmd.env(k, v);
        }
        let ran = cmd.run();
        ran.run.clone().fails_with(2);
        assert!(ran.calls.is_empty(), "{args:?}: the CLI was called");
    }
    assert_eq!(f.home.session_files(), Vec::<String>::new());

    // Nor does a resume or fork with a bad model change the session.
    let ran = f.at(&dir).args(["--json", "first"]).ok();
    let id = ran.run.session_id();
    let before = f.home.snapshot(false);
    for args in [
        vec!["resume", id.as_str(), "-m=-x", "more"],
        vec!["sessions", "fork", id.as_str(), "--model=-rf", "more"],
    ] {
        let ran = f.at(&dir).args(&args).run();
        ran.run.clone().fails_with(2);
        assert!(ran.calls.is_empty(), "{args:?}");
        assert_same_files(&before, &f.home.snapshot(false));
    }
}

// ----- the store is locked when the run ends ---------------------------------------------------

#[test]
fn a_run_that_cannot_be_recorded_still_shows_the_response() {
    use std::os::unix::io::AsRawFd;
    use std::time::{Duration, Instant};
    if !have_proc() {
        eprintln!("note: skipping: needs /proc to see the fake's sleep");
        return;
    }
    let f = Fakes::new();
    let dir = f.dir("p");
    let (child, _log) = f
        .at(&dir)
        .args(["a task"])
        .scenario("slow")
        .env("FAKE_CLI_SLEEP", "1.5")
        .env("CLINVK_LOCK_TIMEOUT", "0.3")
        .spawn();
    let pid = child.id();
    let start = Instant::now();
    while !fake_is_sleeping(pid) {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the fake never slept"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    // The session exists (created); now hold the store's lock until clinvk is done.
    let lock = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(f.home.lock_path())
        .expect("clinvk created the lock file");
    // SAFETY: flock(2) on a file descriptor this test owns.
    assert_eq!(unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) }, 0);
    assert!(
        start.elapsed() < Duration::from_millis(1200),
        "took the lock too late for this test to mean anything"
    );
    let run = Run::from_output(wait_with_deadline(child, Duration::from_secs(20)));
    drop(lock);
    assert_eq!(run.stdout, "OK\n", "the response is shown anyway");
    assert_eq!(
        run.code, 4,
        "the lock timeout's code\nstderr:\n{}",
        run.stderr
    );
    let line = run
        .stderr_lines()
        .into_iter()
        .find(|l| l.contains("could not record"))
        .unwrap_or_else(|| panic!("no warning about the record: {}", run.stderr));
    assert!(line.starts_with("clinvk: warning: "), "{line}");
    assert!(line.contains(".lock"), "names the lock file: {line}");
    let session = f.only_session();
    assert_eq!(session["status"], "created", "the trace stays: {session}");
    f.home.ok(&["sessions", "reindex", "--check"]);
}
