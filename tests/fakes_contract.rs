//! The fake CLIs in `tests/fakes` against clinvk's own argv builder (`invoke::invocation`),
//! runner (`process::run`) and parsers: every scenario of every fake is run the way clinvk runs
//! the real CLI, and the parsed outcome is checked against what the reference
//! (`shared/reference/backend-cli-formats.md`) says the real CLI's output means. So the fakes
//! and the parsers are proven to agree, and other tests can rely on the fakes.
//!
//! The fakes' interface (FAKE_CLI_STATE, FAKE_CLI_LOG, FAKE_CLI_SCENARIO, FAKE_CLI_REPLY,
//! FAKE_CLI_SLEEP) is documented in `tests/fakes/common.sh`. Environment variables are set per
//! child (a `sh -c` wrapper for `process::run`, which inherits the environment; `Command::env`
//! where the test spawns the fake itself), never on the test process.
#![cfg(unix)]

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use clinvk::backend::invoke::{invocation, Invocation, Mode};
use clinvk::backend::process::{run, Captured};
use clinvk::backend::{claude, codex, gemini, Outcome, Usage};
use clinvk::store::session::Backend::{self, Claude, Codex, Gemini};

fn fake(backend: Backend) -> &'static str {
    match backend {
        Claude => concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fakes/claude"),
        Codex => concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fakes/codex"),
        Gemini => concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fakes/gemini"),
    }
}

fn parse(backend: Backend, stdout: &str, stderr: &str, exit_code: Option<i32>) -> Outcome {
    let parse = match backend {
        Claude => claude::parse,
        Codex => codex::parse,
        Gemini => gemini::parse,
    };
    parse(stdout, stderr, exit_code)
}

/// What an interrupted run wrote, and how it ended.
#[derive(Debug)]
struct Interrupted {
    stdout: String,
    exit_code: Option<i32>,
}

/// One call's entry in FAKE_CLI_LOG.
#[derive(Debug)]
struct Log {
    argv: Vec<String>,
    stdin: String,
    cwd: PathBuf,
    scenario: String,
}

impl Log {
    fn read(dir: &Path) -> Log {
        let argv = std::fs::read(dir.join("argv")).unwrap();
        assert!(argv.is_empty() || argv.ends_with(b"\0"), "{argv:?}");
        let argv = argv
            .split(|b| *b == 0)
            .map(|a| String::from_utf8(a.to_vec()).unwrap())
            .collect::<Vec<_>>();
        let read = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap();
        Log {
            argv: argv[..argv.len().saturating_sub(1)].to_vec(),
            stdin: read("stdin"),
            cwd: PathBuf::from(read("cwd")),
            scenario: read("env_scenario"),
        }
    }
}

/// What one run of a fake wrote, what clinvk's parser made of it, and what the fake logged.
#[derive(Debug)]
struct Run {
    cap: Captured,
    out: Outcome,
    log: Log,
}

impl Run {
    fn session(&self) -> &str {
        self.out.session_id.as_deref().expect("a session id")
    }

    fn error(&self) -> &str {
        self.out.error.as_deref().expect("an error")
    }

    /// The JSON lines on stdout.
    fn events(&self) -> Vec<serde_json::Value> {
        self.cap
            .stdout
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}

/// A temporary directory holding the fakes' state, their logs, and the project directories.
struct World {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    runs: AtomicUsize,
}

impl World {
    fn new() -> World {
        let tmp = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(tmp.path()).unwrap();
        World {
            _tmp: tmp,
            root,
            runs: AtomicUsize::new(0),
        }
    }

    /// A project directory (canonical, as the fakes' `pwd -P`).
    fn dir(&self, name: &str) -> PathBuf {
        let dir = self.root.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn state(&self, backend: Backend, id: &str) -> Option<String> {
        std::fs::read_to_string(self.root.join("state").join(backend.as_str()).join(id)).ok()
    }

    /// The environment of one call: the fakes' variables, nothing inherited that matters.
    fn env(&self, log: &Path, scenario: &str, extra: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut env = vec![
            ("HOME".into(), self.root.join("home").display().to_string()),
            (
                "FAKE_CLI_STATE".into(),
                self.root.join("state").display().to_string(),
            ),
            ("FAKE_CLI_LOG".into(), log.display().to_string()),
            ("FAKE_CLI_SCENARIO".into(), scenario.into()),
        ];
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        env
    }

    fn new_log_dir(&self) -> PathBuf {
        let n = self.runs.fetch_add(1, Ordering::SeqCst);
        self.root.join("log").join(n.to_string())
    }

    /// Runs the fake the way clinvk does: `process::run` with the `invocation` argv, in `cwd`.
    /// The environment comes from a `sh -c` wrapper, since `process::run` inherits ours.
    fn call(
        &self,
        backend: Backend,
        inv: &Invocation,
        prompt: &str,
        cwd: &Path,
        scenario: &str,
        extra_env: &[(&str, &str)],
    ) -> Run {
        let log = self.new_log_dir();
        std::fs::create_dir_all(&log).unwrap();
        // `sh -c 'export …; exec fake "$@"' sh ARGS…`: no script file, so no ETXTBSY when
        // another test forks while it would be written.
        let mut script =
            String::from("unset FAKE_CLI_REPLY FAKE_CLI_SLEEP GEMINI_CLI_TRUST_WORKSPACE\n");
        for (k, v) in self.env(&log, scenario, extra_env) {
            script.push_str(&format!("export {k}={}\n", quoted(&v)));
        }
        script.push_str(&format!("exec {} \"$@\"\n", quoted(fake(backend))));
        let mut wrapped = inv.clone();
        wrapped.args = ["-c".to_string(), script, "sh".into()]
            .into_iter()
            .chain(inv.args.iter().cloned())
            .collect();
        let cap = run(Path::new("/bin/sh"), &wrapped, prompt, cwd).unwrap();
        let out = parse(backend, &cap.stdout, &cap.stderr, cap.exit_code);
        let entries: Vec<PathBuf> = std::fs::read_dir(&log)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_dir())
            .collect();
        assert_eq!(entries.len(), 1, "one log entry per call: {entries:?}");
        let name = entries[0]
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        assert!(name.starts_with(&format!("{backend}.")), "{name}");
        Run {
            cap,
            out,
            log: Log::read(&entries[0]),
        }
    }

    /// Runs `mode` of `backend` with the argv clinvk builds, and checks the log entry.
    fn run(
        &self,
        backend: Backend,
        mode: Mode<'_>,
        model: Option<&str>,
        cwd: &Path,
        scenario: &str,
    ) -> Run {
        self.run_env(backend, mode, model, cwd, scenario, &[])
    }

    fn run_env(
        &self,
        backend: Backend,
        mode: Mode<'_>,
        model: Option<&str>,
        cwd: &Path,
        scenario: &str,
        env: &[(&str, &str)],
    ) -> Run {
        let prompt = PROMPT;
        let inv = invocation(backend, mode, model, prompt).unwrap();
        let run = self.call(backend, &inv, prompt, cwd, scenario, env);
        assert_eq!(run.log.argv, inv.args);
        assert_eq!(run.log.cwd, cwd);
        assert_eq!(run.log.scenario, scenario);
        // Claude and Codex read the prompt from stdin, Gemini takes it from -p only.
        let read = if inv.prompt_on_stdin { prompt } else { "" };
        assert_eq!(run.log.stdin, read, "{backend} stdin");
        run
    }

    /// Spawns the fake directly (to know its pid), waits for `lines` lines of stdout, sends
    /// `signal`, and collects the rest.
    fn interrupt(
        &self,
        backend: Backend,
        mode: Mode<'_>,
        cwd: &Path,
        lines: usize,
        signal: i32,
    ) -> (Interrupted, Outcome) {
        let prompt = "take your time";
        let inv = invocation(backend, mode, None, prompt).unwrap();
        let log = self.new_log_dir();
        let start = Instant::now();
        let mut child = Command::new(fake(backend))
            .args(&inv.args)
            .current_dir(cwd)
            .env_remove("FAKE_CLI_SLEEP") // the default, 30 s: the signal must cut it short
            .env_remove("FAKE_CLI_REPLY")
            .envs(self.env(&log, "slow", &[]))
            .stdin(if inv.prompt_on_stdin {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        if let Some(mut stdin) = child.stdin.take() {
            stdin.write_all(prompt.as_bytes()).unwrap();
        }
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut seen = String::new();
        for _ in 0..lines {
            assert_ne!(stdout.read_line(&mut seen).unwrap(), 0, "{seen}");
        }
        // SAFETY: kill(2) on our own child's pid, which has not been waited for yet.
        assert_eq!(unsafe { libc::kill(child.id() as libc::pid_t, signal) }, 0);
        stdout.read_to_string(&mut seen).unwrap();
        let mut stderr = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        let status = child.wait().unwrap();
        let duration = start.elapsed();
        assert!(duration < Duration::from_secs(5), "{backend}: {duration:?}");
        let out = parse(backend, &seen, &stderr, status.code());
        let cap = Interrupted {
            stdout: seen,
            exit_code: status.code(),
        };
        (cap, out)
    }
}

fn insert(args: &mut Vec<String>, at: usize, new: &[&str]) {
    for (i, arg) in new.iter().enumerate() {
        args.insert(at + i, arg.to_string());
    }
}

/// The prompt of most runs: shell syntax, quotes and a newline reach the CLI untouched.
const PROMPT: &str = "fix the bug in 'main.rs'\nand \"explain\" $(why)";

fn quoted(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn is_uuid(id: &str) -> bool {
    id.len() == 36
        && id.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// An Invocation with `args` changed by `edit`, for argv the builder would never produce.
fn edited(inv: Invocation, edit: impl FnOnce(&mut Vec<String>)) -> Invocation {
    let mut inv = inv;
    edit(&mut inv.args);
    inv
}

// ---------------------------------------------------------------------------------------------
// Claude

/// The reference's success numbers: helper model included, cache reads and writes in input.
const CLAUDE_USAGE: Usage = Usage {
    input: 511 + 2 + 15934 + 6354,
    output: 14 + 4,
    cached: 15934,
    cache_write: 6354,
    reasoning: 0,
};

#[test]
fn claude_new_resume_and_other_directory() {
    let w = World::new();
    let (here, there) = (w.dir("proj"), w.dir("elsewhere"));

    let new = w.run(Claude, Mode::New, None, &here, "success");
    assert_eq!(new.cap.exit_code, Some(0));
    assert_eq!(new.out.error, None, "{:?}", new.cap);
    let id = new.session().to_string();
    assert!(is_uuid(&id), "{id}");
    assert_eq!(new.out.model.as_deref(), Some("claude-sonnet-4-6"));
    assert_eq!(new.out.text, "OK");
    assert_eq!(new.out.usage, Some(CLAUDE_USAGE));
    assert!(!new.out.usage_is_cumulative);
    assert!((new.out.cost_usd.unwrap() - 0.0435512).abs() < 1e-9);
    assert_eq!(new.out.duration_ms, Some(1425));
    assert_eq!(new.cap.stderr, "");
    assert_eq!(
        w.state(Claude, &id).as_deref(),
        Some(here.to_str().unwrap())
    );
    let events = new.events();
    assert_eq!(events.len(), 3);
    assert_eq!(events[0]["cwd"], here.to_str().unwrap());
    assert!(events.iter().all(|e| e["session_id"] == id.as_str()));

    let resumed = w.run(Claude, Mode::Resume(&id), None, &here, "success");
    assert_eq!(resumed.out.error, None);
    assert_eq!(resumed.session(), id);
    assert!(resumed.log.argv.contains(&format!("--resume={id}")));

    // Claude looks sessions up in the directory's project only.
    let elsewhere = w.run(Claude, Mode::Resume(&id), None, &there, "success");
    assert_eq!(elsewhere.cap.exit_code, Some(1));
    assert_eq!(elsewhere.out.session_id, None);
    assert_eq!(
        elsewhere.error(),
        format!("claude: No conversation found with session ID: {id}")
    );
    // The result carries a fresh random id, not the one asked for.
    let events = elsewhere.events();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["subtype"], "error_during_execution");
    let fresh = events[0]["session_id"].as_str().unwrap();
    assert!(is_uuid(fresh) && fresh != id, "{fresh}");
    assert_eq!(w.state(Claude, fresh), None);

    let unknown = "00000000-0000-4000-8000-000000000000";
    let missing = w.run(Claude, Mode::Resume(unknown), None, &here, "success");
    assert!(missing.error().contains(unknown));
}

#[test]
fn claude_fork_and_model() {
    let w = World::new();
    let (here, there) = (w.dir("proj"), w.dir("elsewhere"));
    let parent = w.run(Claude, Mode::New, Some("opus"), &here, "success");
    assert_eq!(parent.out.model.as_deref(), Some("opus"));
    assert_eq!(parent.out.usage, Some(CLAUDE_USAGE));
    let parent = parent.session().to_string();

    let fork = w.run(Claude, Mode::Fork(&parent), None, &here, "success");
    assert_eq!(fork.out.error, None);
    let child = fork.session().to_string();
    assert!(is_uuid(&child) && child != parent);
    assert!(fork.log.argv.contains(&format!("--resume={parent}")));
    assert!(fork.log.argv.iter().any(|a| a == "--fork-session"));
    assert_eq!(
        w.state(Claude, &child).as_deref(),
        Some(here.to_str().unwrap())
    );
    assert!(w.state(Claude, &parent).is_some(), "the parent stays");

    let again = w.run(Claude, Mode::Resume(&child), None, &here, "success");
    assert_eq!(again.session(), child);

    let elsewhere = w.run(Claude, Mode::Fork(&parent), None, &there, "success");
    assert_eq!(elsewhere.cap.exit_code, Some(1));
    assert_eq!(elsewhere.out.session_id, None);
    assert!(elsewhere.error().contains("No conversation found"));
}

#[test]
fn claude_error_scenarios() {
    let w = World::new();
    let here = w.dir("proj");

    let noise = w.run(Claude, Mode::New, None, &here, "noise");
    assert_eq!(noise.out.error, None);
    assert_eq!(noise.out.usage, Some(CLAUDE_USAGE));
    assert!(noise
        .cap
        .stderr
        .contains("[claude-code:unrecognized_model]"));

    let api = w.run(Claude, Mode::New, None, &here, "api_error");
    assert_eq!(api.cap.exit_code, Some(1));
    assert_eq!(
        api.error(),
        "claude: You've hit your org's monthly usage limit (API status 429)"
    );
    let last = api.events().pop().unwrap();
    assert_eq!(last["subtype"], "success");
    assert_eq!(last["is_error"], true);
    // The session started (system/init), so it can be resumed.
    let id = api.session().to_string();
    assert!(w.state(Claude, &id).is_some());

    let turns = w.run(Claude, Mode::New, None, &here, "max_turns");
    assert_eq!(turns.cap.exit_code, Some(1));
    assert_eq!(turns.error(), "claude: Reached maximum number of turns (1)");
    assert!(turns.out.session_id.is_some());
    assert_eq!(turns.out.usage, Some(CLAUDE_USAGE));

    let garbage = w.run(Claude, Mode::New, None, &here, "garbage");
    assert_eq!(garbage.cap.exit_code, Some(0));
    assert!(!garbage.cap.stdout.is_empty());
    assert_eq!(garbage.out.session_id, None);
    assert_eq!(
        garbage.error(),
        "claude exited with code 0 without a result"
    );

    let crash = w.run(Claude, Mode::New, None, &here, "crash");
    assert_eq!(
        (crash.cap.exit_code, crash.cap.stdout.as_str()),
        (Some(1), "")
    );
    assert_eq!(crash.out.session_id, None);
    assert!(
        crash
            .error()
            .starts_with("claude exited with code 1 without a result: ")
            && crash
                .error()
                .ends_with("TypeError: Cannot read properties of undefined (reading 'map')"),
        "{}",
        crash.error()
    );
}

#[test]
fn claude_argv_is_checked_like_the_real_cli() {
    let w = World::new();
    let here = w.dir("proj");
    let prompt = "hi";
    let base = || invocation(Claude, Mode::New, None, prompt).unwrap();
    let call = |inv: &Invocation| w.call(Claude, inv, prompt, &here, "success", &[]);

    let no_verbose = call(&edited(base(), |a| a.retain(|x| x != "--verbose")));
    assert_eq!(no_verbose.cap.exit_code, Some(1));
    assert_eq!(
        no_verbose.cap.stderr,
        "Error: When using --print, --output-format=stream-json requires --verbose\n"
    );
    assert!(no_verbose.error().contains("requires --verbose"));
    assert_eq!(
        no_verbose.log.stdin, "",
        "argv errors come before reading stdin"
    );

    let no_print = call(&edited(base(), |a| a.retain(|x| x != "-p")));
    assert_eq!(no_print.cap.exit_code, Some(1));
    assert!(no_print.out.error.is_some());

    let unknown = call(&edited(base(), |a| a.push("--bogus".into())));
    assert_eq!(unknown.cap.exit_code, Some(1));
    assert_eq!(unknown.cap.stderr, "error: unknown option '--bogus'\n");

    // A variadic flag swallows a positional prompt; with stdin empty there is no prompt.
    let swallowed = edited(base(), |a| {
        a.extend(["--allowedTools", "Bash", "do it"].map(String::from))
    });
    let swallowed = w.call(Claude, &swallowed, "", &here, "success", &[]);
    assert_eq!(swallowed.cap.exit_code, Some(1));
    assert!(swallowed.cap.stderr.contains("Input must be provided"));
}

#[test]
fn claude_slow_then_signals() {
    let w = World::new();
    let here = w.dir("proj");
    // SIGINT: exit 0 and no result line, which is not a success; the session id is kept.
    let (cap, out) = w.interrupt(Claude, Mode::New, &here, 2, libc::SIGINT);
    assert_eq!(cap.exit_code, Some(0));
    assert!(
        !cap.stdout.contains("\"type\":\"result\""),
        "{}",
        cap.stdout
    );
    assert_eq!(
        out.error.as_deref(),
        Some("claude exited with code 0 without a result")
    );
    let id = out.session_id.expect("the id from system/init");
    assert_eq!(out.text, "OK");
    assert!(w.state(Claude, &id).is_some());

    let (cap, out) = w.interrupt(Claude, Mode::Resume(&id), &here, 2, libc::SIGTERM);
    assert_eq!(cap.exit_code, Some(143));
    assert_eq!(out.session_id.as_deref(), Some(id.as_str()));
    assert_eq!(
        out.error.as_deref(),
        Some("claude exited with code 143 without a result")
    );

    // Left alone, it finishes.
    let done = w.run_env(
        Claude,
        Mode::Resume(&id),
        None,
        &here,
        "slow",
        &[("FAKE_CLI_SLEEP", "0")],
    );
    assert_eq!(done.out.error, None);
    assert_eq!(done.session(), id);
}

// ---------------------------------------------------------------------------------------------
// Codex

/// What every completed Codex turn adds to its thread's running total.
const CODEX_PER_RUN: Usage = Usage {
    input: 13912,
    output: 9,
    cached: 11008,
    cache_write: 0,
    reasoning: 0,
};

fn times(u: Usage, n: u64) -> Usage {
    Usage {
        input: u.input * n,
        output: u.output * n,
        cached: u.cached * n,
        cache_write: u.cache_write * n,
        reasoning: u.reasoning * n,
    }
}

#[test]
fn codex_usage_is_cumulative_per_thread() {
    let w = World::new();
    let (here, there) = (w.dir("proj"), w.dir("elsewhere"));
    let first = w.run(Codex, Mode::New, Some("gpt-5.6-sol"), &here, "success");
    assert_eq!(first.out.error, None, "{:?}", first.cap);
    let id = first.session().to_string();
    assert!(is_uuid(&id) && &id[14..15] == "7", "a v7-shaped id: {id}");
    assert_eq!(first.out.text, "OK");
    assert_eq!(first.out.model, None, "codex does not say");
    assert!(first.out.usage_is_cumulative);
    assert_eq!(first.out.usage, Some(CODEX_PER_RUN));
    assert_eq!(w.state(Codex, &id).as_deref(), Some(here.to_str().unwrap()));

    let mut previous = first.out.usage.unwrap();
    // Codex finds a thread from any directory.
    for (n, dir) in [(2, &here), (3, &there)] {
        let next = w.run(Codex, Mode::Resume(&id), None, dir, "success");
        assert_eq!(next.out.error, None);
        assert_eq!(next.session(), id);
        assert!(next.out.usage_is_cumulative);
        let total = next.out.usage.unwrap();
        assert_eq!(total, times(CODEX_PER_RUN, n));
        assert_eq!(total.since(&previous), CODEX_PER_RUN);
        previous = total;
    }
    assert_eq!(previous.input, 41736);
}

#[test]
fn codex_error_scenarios() {
    let w = World::new();
    let here = w.dir("proj");

    let noise = w.run(Codex, Mode::New, None, &here, "noise");
    assert_eq!(noise.out.error, None);
    assert!(noise.cap.stderr.contains("ERROR codex_core"));

    let retries = w.run(Codex, Mode::New, None, &here, "retries");
    assert_eq!(retries.cap.exit_code, Some(0));
    assert_eq!(retries.out.error, None, "Reconnecting... is not a failure");
    assert_eq!(retries.out.usage, Some(CODEX_PER_RUN));
    assert_eq!(
        retries
            .events()
            .iter()
            .filter(|e| e["type"] == "error")
            .count(),
        2
    );

    let failed = w.run(Codex, Mode::New, None, &here, "turn_failed");
    assert_eq!(failed.cap.exit_code, Some(1));
    assert_eq!(
        failed.error(),
        "codex: shared rollout token budget exhausted"
    );
    assert!(failed.out.session_id.is_some());
    assert_eq!(failed.out.usage, None);

    let model = "definitely-not-a-real-model-xyz";
    let bad = w.run(Codex, Mode::New, Some(model), &here, "bad_model");
    assert_eq!(bad.cap.exit_code, Some(1));
    assert_eq!(bad.events().len(), 5);
    assert!(
        bad.error().contains(&format!(
            "The '{model}' model is not supported when using Codex with a ChatGPT account."
        )),
        "{}",
        bad.error()
    );
    // The thread exists, so it can be resumed with another model.
    let id = bad.session().to_string();
    let resumed = w.run(
        Codex,
        Mode::Resume(&id),
        Some("gpt-5.6-sol"),
        &here,
        "success",
    );
    assert_eq!(resumed.session(), id);
    assert_eq!(
        resumed.out.usage,
        Some(CODEX_PER_RUN),
        "the failed turn added nothing"
    );

    let auth = w.run(Codex, Mode::New, None, &here, "auth");
    assert_eq!(auth.cap.exit_code, Some(1));
    assert!(auth
        .error()
        .starts_with("codex: unexpected status 401 Unauthorized"));
    assert_eq!(
        auth.events()
            .iter()
            .filter(|e| e["type"] == "error")
            .count(),
        5
    );

    let untrusted = w.run(Codex, Mode::New, None, &here, "untrusted");
    assert_eq!(
        (untrusted.cap.exit_code, untrusted.cap.stdout.as_str()),
        (Some(1), "")
    );
    assert!(untrusted
        .error()
        .ends_with("Not inside a trusted directory and --skip-git-repo-check was not specified."));

    let garbage = w.run(Codex, Mode::New, None, &here, "garbage");
    assert_eq!(garbage.cap.exit_code, Some(0));
    assert!(garbage.cap.stdout.contains("OpenAI Codex"));
    assert_eq!(garbage.out.session_id, None);
    assert_eq!(garbage.error(), "codex exited with code 0 without a result");

    let unknown = "019f4a34-2fc9-7622-8e24-21c7200fcf8d";
    let missing = w.run(Codex, Mode::Resume(unknown), None, &here, "success");
    assert_eq!(
        (missing.cap.exit_code, missing.cap.stdout.as_str()),
        (Some(1), "")
    );
    assert_eq!(missing.out.session_id, None);
    assert!(missing
        .error()
        .contains(&format!("no rollout found for thread id {unknown}")));
}

#[test]
fn codex_argv_is_checked_like_the_real_cli() {
    let w = World::new();
    let here = w.dir("proj");
    let prompt = "hi";
    let call = |inv: &Invocation| w.call(Codex, inv, prompt, &here, "success", &[]);
    let id = w
        .run(Codex, Mode::New, None, &here, "success")
        .session()
        .to_string();
    let resume = || invocation(Codex, Mode::Resume(&id), None, prompt).unwrap();
    let new = || invocation(Codex, Mode::New, None, prompt).unwrap();

    for flag in [["--sandbox", "workspace-write"], ["-C", "/tmp"]] {
        let bad = call(&edited(resume(), |a| insert(a, 2, &flag)));
        assert_eq!(bad.cap.exit_code, Some(2));
        assert!(
            bad.cap
                .stderr
                .starts_with(&format!("error: unexpected argument '{}' found", flag[0])),
            "{}",
            bad.cap.stderr
        );
        assert!(bad.out.error.is_some());
    }
    // exec (not resume) takes --sandbox.
    let sandboxed = call(&edited(new(), |a| {
        insert(a, 1, &["--sandbox", "read-only"])
    }));
    assert_eq!(sandboxed.out.error, None);

    let no_skip = call(&edited(new(), |a| {
        a.retain(|x| x != "--skip-git-repo-check")
    }));
    assert_eq!(no_skip.cap.exit_code, Some(1));
    assert!(no_skip.error().contains("Not inside a trusted directory"));

    let no_json = call(&edited(new(), |a| a.retain(|x| x != "--json")));
    assert_eq!(no_json.cap.exit_code, Some(2));
    assert!(no_json.out.error.is_some());

    let no_exec = call(&edited(new(), |a| a.retain(|x| x != "exec")));
    assert_eq!(no_exec.cap.exit_code, Some(1));
    assert_eq!(no_exec.cap.stderr, "Error: stdin is not a terminal\n");
}

#[test]
fn codex_slow_then_sigint() {
    let w = World::new();
    let here = w.dir("proj");
    let (cap, out) = w.interrupt(Codex, Mode::New, &here, 2, libc::SIGINT);
    assert_eq!(cap.exit_code, Some(1));
    let last = cap.stdout.lines().last().unwrap();
    assert_eq!(last, r#"{"type":"turn.started"}"#, "no terminal event");
    assert!(out.session_id.is_some());
    assert_eq!(out.usage, None);
    assert_eq!(
        out.error.as_deref(),
        Some("codex exited with code 1 without a result")
    );
}

// ---------------------------------------------------------------------------------------------
// Gemini

/// The reference stream's stats: input includes cached; what total has beyond input and output
/// (246) is thinking, counted in output.
const GEMINI_USAGE: Usage = Usage {
    input: 12663,
    output: 56 + 246,
    cached: 0,
    cache_write: 0,
    reasoning: 246,
};

#[test]
fn gemini_new_resume_and_unknown_ids() {
    let w = World::new();
    let (here, there) = (w.dir("proj"), w.dir("elsewhere"));
    let reply = [("FAKE_CLI_REPLY", "Hello from \"the\" fake")];

    let new = w.run_env(Gemini, Mode::New, None, &here, "success", &reply);
    assert_eq!(new.cap.exit_code, Some(0));
    assert_eq!(new.out.error, None, "{:?}", new.cap);
    let id = new.session().to_string();
    assert!(is_uuid(&id));
    assert_eq!(new.out.text, "Hello from \"the\" fake", "deltas joined");
    assert!(new.events().iter().filter(|e| e["delta"] == true).count() >= 2);
    assert_eq!(new.events()[0]["model"], "auto-gemini-3");
    assert_eq!(new.out.model.as_deref(), Some("gemini-3-flash-preview"));
    assert_eq!(new.out.usage, Some(GEMINI_USAGE));
    assert_eq!(new.out.duration_ms, Some(5040));
    assert_eq!(new.out.cost_usd, None);
    assert_eq!(
        w.state(Gemini, &id).as_deref(),
        Some(here.to_str().unwrap())
    );
    // The user message echoes the -p prompt.
    assert_eq!(new.events()[1]["content"], PROMPT);

    let resumed = w.run(
        Gemini,
        Mode::Resume(&id),
        Some("gemini-2.5-pro"),
        &here,
        "success",
    );
    assert_eq!(resumed.out.error, None);
    assert_eq!(resumed.session(), id);
    assert_eq!(resumed.out.model.as_deref(), Some("gemini-2.5-pro"));

    for (dir, asked) in [
        (&there, id.as_str()),
        (&here, "fa0c256e-36e1-40a2-a3b1-0d52c243792d"),
    ] {
        let bad = w.run(Gemini, Mode::Resume(asked), None, dir, "success");
        assert_eq!((bad.cap.exit_code, bad.cap.stdout.as_str()), (Some(42), ""));
        assert_eq!(bad.cap.stderr.lines().count(), 3);
        assert_eq!(bad.out.session_id, None);
        let error = bad.error();
        assert!(
            error.starts_with("gemini exited with code 42")
                && error.contains(&format!("Invalid session identifier \"{asked}\"")),
            "{error}"
        );
    }
}

#[test]
fn gemini_error_scenarios() {
    let w = World::new();
    let here = w.dir("proj");

    let noise = w.run(Gemini, Mode::New, None, &here, "noise");
    assert_eq!(noise.out.error, None);
    assert_eq!(noise.out.usage, Some(GEMINI_USAGE));
    assert!(noise.cap.stderr.starts_with("YOLO mode is enabled."));
    assert!(noise.cap.stderr.contains("Loaded cached credentials.\n"));

    let auth = w.run(Gemini, Mode::New, None, &here, "auth");
    assert_eq!(auth.cap.exit_code, Some(41));
    assert_eq!(
        auth.error(),
        "gemini: Authentication required (FatalAuthenticationError)"
    );
    assert_eq!(auth.out.duration_ms, None);

    let api = w.run(Gemini, Mode::New, None, &here, "api_error");
    assert_eq!(api.cap.exit_code, Some(1));
    assert!(
        api.error().starts_with("gemini: [API Error:"),
        "{}",
        api.error()
    );

    let garbage = w.run(Gemini, Mode::New, None, &here, "garbage");
    assert_eq!(garbage.cap.exit_code, Some(0));
    assert_eq!(garbage.out.session_id, None);
    assert_eq!(
        garbage.error(),
        "gemini exited with code 0 without a result"
    );
}

#[test]
fn gemini_argv_is_checked_like_the_real_cli() {
    let w = World::new();
    let here = w.dir("proj");
    let prompt = "hi";
    let new = || invocation(Gemini, Mode::New, None, prompt).unwrap();

    let untrusted = edited(new(), |a| a.retain(|x| x != "--skip-trust"));
    let run = w.call(Gemini, &untrusted, prompt, &here, "success", &[]);
    assert_eq!(run.cap.exit_code, Some(55));
    assert!(
        run.error().contains("not running in a trusted directory"),
        "{}",
        run.error()
    );
    let trusted = [("GEMINI_CLI_TRUST_WORKSPACE", "true")];
    let run = w.call(Gemini, &untrusted, prompt, &here, "success", &trusted);
    assert_eq!(run.out.error, None);

    let no_prompt = edited(new(), |a| {
        a.retain(|x| x != "-p" && x != prompt && !x.starts_with("--prompt"))
    });
    let run = w.call(Gemini, &no_prompt, prompt, &here, "success", &[]);
    assert_eq!(run.cap.exit_code, Some(42));
    assert!(run.error().contains("--prompt"));

    let unknown = edited(new(), |a| a.insert(0, "--bogus".into()));
    let run = w.call(Gemini, &unknown, prompt, &here, "success", &[]);
    assert_eq!(run.cap.exit_code, Some(1));
    assert_eq!(run.cap.stderr, "Unknown argument: bogus\n");

    // yargs' trap: a separate value starting with `-` is read as flags, never as the prompt.
    let dashed = "-rm -rf";
    let run = w.call(
        Gemini,
        &invocation(Gemini, Mode::New, None, dashed).unwrap(),
        dashed,
        &here,
        "success",
        &[],
    );
    assert_eq!(run.out.error, None, "clinvk's argv survives it");
    assert_eq!(run.events()[1]["content"], dashed);
    let split = edited(new(), |a| {
        a.retain(|x| !x.starts_with("--prompt"));
        a.extend(["-p".into(), dashed.into()]);
    });
    let run = w.call(Gemini, &split, dashed, &here, "success", &[]);
    assert_eq!(run.cap.exit_code, Some(1));
    assert_eq!(run.cap.stderr, "Not enough arguments following: p\n");

    // Gemini never reads stdin, even when it is given one.
    let with_stdin = Invocation {
        prompt_on_stdin: true,
        ..new()
    };
    let run = w.call(Gemini, &with_stdin, "piped text", &here, "success", &[]);
    assert_eq!(run.out.error, None);
    assert_eq!(run.log.stdin, "");
}

#[test]
fn gemini_slow_then_sigint() {
    let w = World::new();
    let here = w.dir("proj");
    let (cap, out) = w.interrupt(Gemini, Mode::New, &here, 2, libc::SIGINT);
    assert_eq!(cap.exit_code, Some(130));
    assert!(out.session_id.is_some());
    assert_eq!(
        out.error.as_deref(),
        Some("gemini: the output ended without a result")
    );
}

// ---------------------------------------------------------------------------------------------

#[test]
fn ephemeral_runs_leave_nothing_to_resume() {
    let w = World::new();
    let here = w.dir("proj");
    for (backend, flag, missing) in [
        (Claude, "--no-session-persistence", "No conversation found"),
        (Codex, "--ephemeral", "no rollout found"),
    ] {
        let eph = w.run(backend, Mode::Ephemeral, None, &here, "success");
        assert!(eph.log.argv.iter().any(|a| a == flag), "{:?}", eph.log.argv);
        assert_eq!(eph.out.error, None);
        assert!(eph.out.usage.is_some());
        let id = eph.session().to_string();
        assert_eq!(w.state(backend, &id), None, "{backend} saved nothing");
        let resume = w.run(backend, Mode::Resume(&id), None, &here, "success");
        assert!(resume.error().contains(missing), "{}", resume.error());
    }
    // Gemini has no such flag: the run is an ordinary one.
    let eph = w.run(Gemini, Mode::Ephemeral, None, &here, "success");
    assert_eq!(eph.out.error, None);
    assert!(w.state(Gemini, eph.session()).is_some());
}

#[test]
fn concurrent_calls_log_separately() {
    let w = World::new();
    let here = w.dir("proj");
    let log = w.root.join("shared-log");
    let inv = invocation(Claude, Mode::New, None, "p").unwrap();
    let ids: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..6)
            .map(|i| {
                let (inv, here, log, w) = (&inv, &here, &log, &w);
                s.spawn(move || {
                    let prompt = format!("prompt {i}");
                    let mut child = Command::new(fake(Claude))
                        .args(&inv.args)
                        .current_dir(here)
                        .envs(w.env(log, "success", &[]))
                        .stdin(Stdio::piped())
                        .stdout(Stdio::piped())
                        .stderr(Stdio::piped())
                        .spawn()
                        .unwrap();
                    child
                        .stdin
                        .take()
                        .unwrap()
                        .write_all(prompt.as_bytes())
                        .unwrap();
                    let output = child.wait_with_output().unwrap();
                    let stdout = String::from_utf8(output.stdout).unwrap();
                    claude::parse(&stdout, "", output.status.code())
                        .session_id
                        .unwrap()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut prompts: Vec<String> = std::fs::read_dir(&log)
        .unwrap()
        .map(|e| Log::read(&e.unwrap().path()).stdin)
        .collect();
    prompts.sort();
    assert_eq!(
        prompts,
        (0..6).map(|i| format!("prompt {i}")).collect::<Vec<_>>()
    );
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 6);
}
