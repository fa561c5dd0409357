//! Shared helpers for the integration tests: a temporary `CLINVK_HOME`, a command builder for the
//! real `clinvk` binary with a frozen clock, a builder for realistic session files, and
//! assertions about what a command printed.
//!
//! Every test file includes this module, and none uses all of it.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde_json::{json, Value};
use tempfile::TempDir;

pub mod native;
pub mod pty;

/// The frozen "now" every command sees (`CLINVK_NOW`), unless a test says otherwise.
pub const NOW: &str = "2025-01-27T12:00:00Z";

/// The path of the binary under test.
pub fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_clinvk"))
}

pub fn now() -> DateTime<Utc> {
    NOW.parse().expect("NOW is RFC 3339")
}

/// `t` as clinvk writes it: RFC 3339 UTC, whole seconds, `Z`.
pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The frozen now minus `ago`, as RFC 3339.
pub fn ago(ago: Duration) -> String {
    rfc3339(now() - ago)
}

/// The real clock minus `ago` (for recipes that use jq's or date's own clock).
pub fn real_ago(ago: Duration) -> String {
    rfc3339(Utc::now() - ago)
}

/// Whether an external program can be run (jq, flock, ...).
pub fn have(program: &str) -> bool {
    std::process::Command::new(program)
        .arg("--version")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok()
}

/// Skip the calling test (return early) with a printed note when `program` is missing. Test files
/// declare `#[macro_use] mod common;` to use it.
macro_rules! require {
    ($program:expr) => {
        if !$crate::common::have($program) {
            eprintln!(
                "note: skipping {}: `{}` is not on PATH",
                module_path!(),
                $program
            );
            return;
        }
    };
}

/// What a finished command printed.
#[derive(Debug, Clone)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// The `id` of each row of a `--json` listing.
pub fn ids_of(rows: &[Value]) -> Vec<String> {
    rows.iter()
        .map(|row| row["id"].as_str().expect("id is a string").to_string())
        .collect()
}

impl Run {
    /// The ids of a `--json` listing printed on stdout.
    pub fn ids(&self) -> Vec<String> {
        ids_of(self.json().as_array().expect("a JSON array"))
    }

    pub fn from_output(output: Output) -> Run {
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8(output.stdout).expect("stdout is UTF-8"),
            stderr: String::from_utf8(output.stderr).expect("stderr is UTF-8"),
        }
    }

    /// Assert success and return self, for chaining.
    #[track_caller]
    pub fn success(self) -> Run {
        assert_eq!(
            self.code, 0,
            "expected success\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }

    /// Assert the exit code and return self.
    #[track_caller]
    pub fn code(self, code: i32) -> Run {
        assert_eq!(
            self.code, code,
            "expected exit code {code}\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }

    /// stdout parsed as JSON.
    #[track_caller]
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.stdout))
    }

    /// The `session_id` of a run's `--json` output.
    #[track_caller]
    pub fn session_id(&self) -> String {
        self.json()["session_id"]
            .as_str()
            .unwrap_or_else(|| panic!("no session_id in:\n{}", self.stdout))
            .to_string()
    }

    /// Assert a failed command in the documented shape: exit `code`, nothing on stdout, and one
    /// error line on stderr: either ours (`clinvk: ...`, and nothing else), or clap's
    /// (`error: ...`, followed only by clap's usage line and "For more information" tip).
    #[track_caller]
    pub fn fails_with(self, code: i32) -> Run {
        assert_eq!(
            self.code, code,
            "expected exit code {code}\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        assert_eq!(
            self.stdout, "",
            "a failing command must print nothing on stdout"
        );
        let lines = self.stderr_lines();
        assert!(
            !lines.is_empty(),
            "a failing command must say why on stderr"
        );
        // README: "Errors are one line on stderr, starting `clinvk:`" (clap's too).
        assert!(
            lines.len() == 1 && lines[0].starts_with("clinvk: "),
            "expected exactly one error line starting `clinvk:`, got:\n{}",
            self.stderr
        );
        self
    }

    /// The first stderr line (the error message).
    pub fn error_line(&self) -> &str {
        self.stderr_lines().first().copied().unwrap_or("")
    }

    /// Non-empty stderr lines.
    pub fn stderr_lines(&self) -> Vec<&str> {
        self.stderr
            .lines()
            .filter(|l| !l.trim().is_empty())
            .collect()
    }
}

/// A temporary clinvk home (`CLINVK_HOME`).
/// The CLIs' own directory variables: unset in tests, so that everything is under HOME.
pub const CLI_DIR_VARS: [&str; 4] = [
    "CODEX_HOME",
    "GEMINI_CLI_HOME",
    "CLAUDE_CONFIG_DIR",
    "GEMINI_DATA_DIR",
];

pub struct Home {
    pub dir: TempDir,
    /// The user's home directory (HOME) for every command: where the CLIs (the fakes) keep
    /// their transcripts, so that no test reads or writes a real ~/.codex or ~/.gemini.
    pub user: TempDir,
}

impl Default for Home {
    fn default() -> Self {
        Self::new()
    }
}

impl Home {
    /// A fresh, empty home; `sessions/` is not created (clinvk creates it).
    pub fn new() -> Home {
        Home {
            dir: tempfile::Builder::new()
                .prefix("clinvk-test-")
                .tempdir()
                .expect("create a temporary directory"),
            user: tempfile::Builder::new()
                .prefix("clinvk-user-")
                .tempdir()
                .expect("create a temporary directory"),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn sessions_dir(&self) -> PathBuf {
        self.path().join("sessions")
    }

    pub fn session_path(&self, id: &str) -> PathBuf {
        self.sessions_dir().join(format!("{id}.json"))
    }

    pub fn config_path(&self) -> PathBuf {
        self.path().join("config.yaml")
    }

    pub fn lock_path(&self) -> PathBuf {
        self.sessions_dir().join(".lock")
    }

    pub fn index_path(&self) -> PathBuf {
        self.sessions_dir().join(".index.db")
    }

    /// The user's home directory (HOME), which holds the CLIs' `.codex` and `.gemini`.
    pub fn user_home(&self) -> &Path {
        self.user.path()
    }

    /// Environment every command gets: this home, a temporary HOME (the CLIs' own directory
    /// variables removed, so that they live under it), the frozen clock, UTC, a lock timeout
    /// short enough that a bug cannot hang the suite for 30 s, and no config override.
    fn env_pairs(&self) -> Vec<(&'static str, String)> {
        vec![
            ("HOME", self.user_home().display().to_string()),
            ("CLINVK_HOME", self.path().display().to_string()),
            ("CLINVK_NOW", NOW.to_string()),
            ("TZ", "UTC".to_string()),
            ("CLINVK_LOCK_TIMEOUT", "20".to_string()),
            // Session files name the machine: one name, whatever machine runs the tests.
            ("CLINVK_HOST", "testhost".to_string()),
        ]
    }

    /// An assert_cmd builder for the real binary with the test environment set.
    pub fn cmd(&self) -> assert_cmd::Command {
        let mut cmd = assert_cmd::Command::cargo_bin("clinvk").expect("the clinvk binary is built");
        for (k, v) in self.env_pairs() {
            cmd.env(k, v);
        }
        for k in CLI_DIR_VARS {
            cmd.env_remove(k);
        }
        cmd.env_remove("CLINVK_CONFIG");
        cmd.current_dir(self.path());
        cmd
    }

    /// A std builder (for spawning several processes at once).
    pub fn std_cmd(&self) -> std::process::Command {
        let mut cmd = std::process::Command::new(bin());
        for (k, v) in self.env_pairs() {
            cmd.env(k, v);
        }
        for k in CLI_DIR_VARS {
            cmd.env_remove(k);
        }
        cmd.env_remove("CLINVK_CONFIG");
        cmd.current_dir(self.path());
        cmd
    }

    /// Run `clinvk ARGS...` and capture everything.
    pub fn run(&self, args: &[&str]) -> Run {
        Run::from_output(self.cmd().args(args).output().expect("run clinvk"))
    }

    /// Run and assert success within a 2-second wait for the lock: a command that nothing
    /// under way should hold up (a rebuild, a streamed listing).
    #[track_caller]
    pub fn ok_promptly(&self, args: &[&str]) -> Run {
        Run::from_output(
            self.std_cmd()
                .env("CLINVK_LOCK_TIMEOUT", "2")
                .args(args)
                .output()
                .expect("run clinvk"),
        )
        .success()
    }

    /// Run and assert success.
    #[track_caller]
    pub fn ok(&self, args: &[&str]) -> Run {
        let run = self.run(args);
        assert_eq!(
            run.code,
            0,
            "`clinvk {}` failed\nstdout:\n{}\nstderr:\n{}",
            args.join(" "),
            run.stdout,
            run.stderr
        );
        run
    }

    /// `sessions list --json ARGS...`, parsed (asserts success).
    #[track_caller]
    pub fn list_json(&self, args: &[&str]) -> Vec<Value> {
        let mut all = vec!["sessions", "list", "--json"];
        all.extend_from_slice(args);
        let run = self.ok(&all);
        match run.json() {
            Value::Array(rows) => rows,
            other => panic!("list --json printed {other}, not an array"),
        }
    }

    /// The ids `sessions list --json ARGS...` returns, in order.
    #[track_caller]
    pub fn list_ids(&self, args: &[&str]) -> Vec<String> {
        ids_of(&self.list_json(args))
    }

    /// Build the index now, so that later commands do not print the "rebuilt" notice.
    pub fn warm(&self) {
        self.ok(&["sessions", "list", "--json"]);
    }

    pub fn ensure_sessions_dir(&self) {
        std::fs::create_dir_all(self.sessions_dir()).expect("create sessions dir");
    }

    /// Write `sessions/<id>.json` by hand (the "hand-edited store" path).
    pub fn write_session(&self, id: &str, text: &str) {
        self.ensure_sessions_dir();
        std::fs::write(self.session_path(id), text).expect("write session file");
    }

    pub fn add(&self, session: &SessionJson) {
        self.write_session(session.id(), &session.to_json());
    }

    pub fn add_all(&self, sessions: &[SessionJson]) {
        for s in sessions {
            self.add(s);
        }
    }

    pub fn read_session(&self, id: &str) -> Value {
        let bytes = std::fs::read(self.session_path(id)).expect("read session file");
        serde_json::from_slice(&bytes).expect("session file is JSON")
    }

    pub fn session_exists(&self, id: &str) -> bool {
        self.session_path(id).exists()
    }

    /// Every regular file under the home, by relative path, with its bytes: compare before and
    /// after a command that must change nothing (with `assert_same_files`). `with_index`: include
    /// the SQLite index files. The lock files (empty, created by any command) are left out.
    pub fn snapshot(&self, with_index: bool) -> BTreeMap<String, Vec<u8>> {
        fn walk(root: &Path, dir: &Path, with_index: bool, out: &mut BTreeMap<String, Vec<u8>>) {
            let Ok(entries) = std::fs::read_dir(dir) else {
                return;
            };
            for entry in entries {
                let entry = entry.expect("read dir entry");
                let path = entry.path();
                let name = entry.file_name().to_string_lossy().into_owned();
                if path.is_dir() {
                    walk(root, &path, with_index, out);
                } else {
                    // Lock files are empty and made by any command (`.lock`, `.config.yaml.lock`).
                    if name.ends_with(".lock") || (!with_index && name.starts_with(".index.db")) {
                        continue;
                    }
                    let rel = path.strip_prefix(root).unwrap().display().to_string();
                    out.insert(rel, std::fs::read(&path).expect("read file"));
                }
            }
        }
        let mut out = BTreeMap::new();
        walk(self.path(), self.path(), with_index, &mut out);
        out
    }

    /// The names of the session files (`*.json`, not hidden) in `sessions/`, sorted.
    pub fn session_files(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.sessions_dir())
            .map(|entries| {
                entries
                    .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .filter(|n| n.ends_with(".json") && !n.starts_with('.'))
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }

    /// Remove every index file (`rm sessions/.index.db*`).
    pub fn remove_index(&self) {
        for entry in std::fs::read_dir(self.sessions_dir()).unwrap() {
            let entry = entry.unwrap();
            if entry.file_name().to_string_lossy().starts_with(".index.db") {
                std::fs::remove_file(entry.path()).unwrap();
            }
        }
    }
}

/// Assert two snapshots are equal, naming the files that differ.
#[track_caller]
pub fn assert_same_files(before: &BTreeMap<String, Vec<u8>>, after: &BTreeMap<String, Vec<u8>>) {
    let mut problems = Vec::new();
    for (path, bytes) in before {
        match after.get(path) {
            None => problems.push(format!("{path}: removed")),
            Some(b) if b != bytes => problems.push(format!(
                "{path}: changed\n  before: {}\n  after:  {}",
                String::from_utf8_lossy(bytes),
                String::from_utf8_lossy(b)
            )),
            Some(_) => {}
        }
    }
    for path in after.keys() {
        if !before.contains_key(path) {
            problems.push(format!("{path}: created"));
        }
    }
    assert!(
        problems.is_empty(),
        "files changed:\n{}",
        problems.join("\n")
    );
}

/// A session file as a user (or an older clinvk) would write it, in the guide's format.
#[derive(Debug, Clone)]
pub struct SessionJson {
    value: Value,
}

/// A realistic session: claude, active, used an hour before NOW, with a backend session id.
pub fn session(id: &str) -> SessionJson {
    SessionJson {
        value: json!({
            "id": id,
            "backend": "claude",
            "backend_session_id": format!("sess_{id}"),
            "model": "claude-opus-4-5-20251101",
            "status": "active",
            "created_at": ago(Duration::hours(2)),
            "last_used_at": ago(Duration::hours(1)),
            "workdir": "/projects/myapp",
            "prompt": format!("prompt of {id}"),
            "token_usage": {"input": 100, "output": 200, "cached": 10, "total": 300},
            "tags": [],
            "metadata": {"exit_code": 0, "duration_seconds": 2.5}
        }),
    }
}

/// The guide's own example file, verbatim.
pub const GUIDE_EXAMPLE: &str = r#"{
  "id": "abc123def",
  "backend": "claude",
  "backend_session_id": "sess_abc123",
  "model": "claude-opus-4-5-20251101",
  "status": "active",
  "created_at": "2025-01-27T10:00:00Z",
  "last_used_at": "2025-01-27T11:30:00Z",
  "workdir": "/projects/myapp",
  "prompt": "fix the bug in auth.go",
  "token_usage": {
    "input": 1234,
    "output": 5678,
    "cached": 500,
    "total": 6912
  },
  "tags": ["bugfix", "auth"],
  "metadata": {
    "exit_code": 0,
    "duration_seconds": 2.5
  }
}
"#;

impl SessionJson {
    pub fn id(&self) -> &str {
        self.value["id"].as_str().expect("id")
    }

    pub fn backend(mut self, backend: &str) -> Self {
        self.value["backend"] = json!(backend);
        self
    }

    pub fn status(mut self, status: &str) -> Self {
        self.value["status"] = json!(status);
        self
    }

    pub fn tags(mut self, tags: &[&str]) -> Self {
        self.value["tags"] = json!(tags);
        self
    }

    pub fn workdir(mut self, dir: &str) -> Self {
        self.value["workdir"] = json!(dir);
        self
    }

    pub fn prompt(mut self, prompt: &str) -> Self {
        self.value["prompt"] = json!(prompt);
        self
    }

    pub fn model(mut self, model: &str) -> Self {
        self.value["model"] = json!(model);
        self
    }

    pub fn backend_session_id(mut self, bsid: Option<&str>) -> Self {
        match bsid {
            Some(b) => self.value["backend_session_id"] = json!(b),
            None => {
                self.value
                    .as_object_mut()
                    .unwrap()
                    .remove("backend_session_id");
            }
        }
        self
    }

    /// Last used at `t` (RFC 3339); created_at is moved back if it would be later.
    pub fn last_used(mut self, t: &str) -> Self {
        self.value["last_used_at"] = json!(t);
        let created = self.value["created_at"].as_str().unwrap_or(t).to_string();
        if created.as_str() > t {
            self.value["created_at"] = json!(t);
        }
        self
    }

    /// Last used `d` before NOW.
    pub fn used_ago(self, d: Duration) -> Self {
        self.last_used(&ago(d))
    }

    pub fn created(mut self, t: &str) -> Self {
        self.value["created_at"] = json!(t);
        self
    }

    /// Token usage with `total = input + output`, as the guide's example.
    pub fn tokens(mut self, input: u64, output: u64, cached: u64) -> Self {
        self.value["token_usage"] = json!({
            "input": input, "output": output, "cached": cached, "total": input + output
        });
        self
    }

    /// Set any field, known or not (`null` removes it).
    pub fn field(mut self, key: &str, value: Value) -> Self {
        if value.is_null() {
            self.value.as_object_mut().unwrap().remove(key);
        } else {
            self.value[key] = value;
        }
        self
    }

    pub fn value(&self) -> &Value {
        &self.value
    }

    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(&self.value).unwrap();
        text.push('\n');
        text
    }
}

/// The standard store most listing tests use (NOW = 2025-01-27T12:00:00Z), newest first:
///
/// | id     | backend | status    | last used          | total | tags                        |
/// |--------|---------|-----------|--------------------|-------|-----------------------------|
/// | abc123 | claude  | active    | 5 minutes ago      | 1234  | bugfix, auth                |
/// | pqr678 | claude  | completed | 30 minutes ago     | 6912  | project-x, bugfix, urgent   |
/// | def456 | codex   | completed | 2 hours ago        | 5678  | project-x, feature-y        |
/// | ghi789 | gemini  | active    | 1 day ago          | 890   | project-x, bugfix           |
/// | jkl012 | claude  | error     | 7 days ago         | 42    | -                           |
/// | mno345 | codex   | created   | 57 days ago        | 0     | project-x                   |
pub fn standard_sessions() -> Vec<SessionJson> {
    vec![
        session("abc123")
            .created("2025-01-27T10:00:00Z")
            .last_used("2025-01-27T11:55:00Z")
            .backend_session_id(Some("sess_abc123"))
            .tokens(1000, 234, 500)
            .prompt("fix the bug in auth.go")
            .tags(&["bugfix", "auth"])
            .workdir("/projects/myapp"),
        session("pqr678")
            .status("completed")
            .created("2025-01-27T11:00:00Z")
            .last_used("2025-01-27T11:30:00Z")
            .tokens(1234, 5678, 500)
            .prompt("add tests")
            .tags(&["project-x", "bugfix", "urgent"])
            .workdir("/projects/myapp"),
        session("def456")
            .backend("codex")
            .status("completed")
            .model("gpt-5-codex")
            .created("2025-01-26T09:00:00Z")
            .last_used("2025-01-27T10:00:00Z")
            .tokens(5000, 678, 0)
            .prompt("implement user registration")
            .tags(&["project-x", "feature-y"])
            .workdir("/projects/api"),
        session("ghi789")
            .backend("gemini")
            .model("gemini-2.5-pro")
            .created("2025-01-26T11:00:00Z")
            .last_used("2025-01-26T12:00:00Z")
            .tokens(800, 90, 0)
            .prompt("explain algorithm")
            .tags(&["project-x", "bugfix"])
            .workdir("/projects/myapp"),
        session("jkl012")
            .status("error")
            .created("2025-01-20T11:00:00Z")
            .last_used("2025-01-20T12:00:00Z")
            .backend_session_id(None)
            .tokens(40, 2, 0)
            .prompt("Refactor the AUTH middleware")
            .workdir("/projects/api"),
        session("mno345")
            .backend("codex")
            .status("created")
            .created("2024-12-01T12:00:00Z")
            .last_used("2024-12-01T12:00:00Z")
            .backend_session_id(None)
            .tokens(0, 0, 0)
            .prompt("100% coverage for user_id parsing with \"quotes\"")
            .tags(&["project-x"])
            .workdir("/projects/legacy"),
    ]
}

/// The standard ids, newest first.
pub const STANDARD_ORDER: [&str; 6] = ["abc123", "pqr678", "def456", "ghi789", "jkl012", "mno345"];

/// A home holding the standard store, index already built.
pub fn standard_home() -> Home {
    let home = Home::new();
    home.add_all(&standard_sessions());
    home.warm();
    home
}

#[cfg(unix)]
pub fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// A PATH with the directory of the built binary first, so that `clinvk` in a shell recipe is
/// the binary under test.
pub fn path_with_clinvk() -> String {
    let dir = bin().parent().expect("the binary has a directory");
    match std::env::var("PATH") {
        Ok(path) if !path.is_empty() => format!("{}:{path}", dir.display()),
        _ => dir.display().to_string(),
    }
}

/// Run a shell recipe with `bash -c`, `clinvk` on PATH, in this home. `frozen`: set
/// CLINVK_NOW (false for recipes that compare against jq's or date's real clock).
pub fn bash(home: &Home, script: &str, frozen: bool) -> Run {
    let mut cmd = std::process::Command::new("bash");
    cmd.arg("-c")
        .arg(script)
        .env("PATH", path_with_clinvk())
        .env("HOME", home.user_home())
        .env("CLINVK_HOME", home.path())
        .env("TZ", "UTC")
        .env("CLINVK_LOCK_TIMEOUT", "20")
        .env("CLINVK_HOST", "testhost")
        .env_remove("CLINVK_CONFIG")
        .current_dir(home.path());
    for k in CLI_DIR_VARS {
        cmd.env_remove(k);
    }
    if frozen {
        cmd.env("CLINVK_NOW", NOW);
    } else {
        cmd.env_remove("CLINVK_NOW");
    }
    Run::from_output(cmd.output().expect("run bash"))
}

// ----- Running prompts through the fake CLIs (tests/fakes) ------------------------------------

/// The directory of the fake `claude`, `codex` and `gemini` (interface: tests/fakes/common.sh).
pub const FAKES_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fakes");

/// A PATH with the fakes first, then the test process's PATH (the fakes need sh and coreutils).
pub fn path_with_fakes() -> String {
    match std::env::var("PATH") {
        Ok(path) if !path.is_empty() => format!("{FAKES_DIR}:{path}"),
        _ => format!("{FAKES_DIR}:/usr/bin:/bin"),
    }
}

/// One call of a fake CLI, as it logged it in FAKE_CLI_LOG.
#[derive(Debug, Clone)]
pub struct FakeCall {
    /// `claude`, `codex` or `gemini`.
    pub cli: String,
    pub argv: Vec<String>,
    pub stdin: String,
    pub cwd: PathBuf,
}

impl FakeCall {
    fn read(dir: &Path) -> FakeCall {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let cli = name.split('.').next().unwrap().to_string();
        let argv = std::fs::read(dir.join("argv")).expect("the fake logged its argv");
        let mut argv: Vec<String> = argv
            .split(|b| *b == 0)
            .map(|a| String::from_utf8(a.to_vec()).expect("argv is UTF-8"))
            .collect();
        argv.pop(); // after the last NUL
        let read = |file: &str| std::fs::read_to_string(dir.join(file)).unwrap_or_default();
        FakeCall {
            cli,
            argv,
            stdin: read("stdin"),
            cwd: PathBuf::from(read("cwd")),
        }
    }

    /// Whether `arg` is one of the arguments.
    pub fn has(&self, arg: &str) -> bool {
        self.argv.iter().any(|a| a == arg)
    }
}

/// The calls logged in `log` (one directory per call), in no particular order.
pub fn fake_calls(log: &Path) -> Vec<FakeCall> {
    let Ok(entries) = std::fs::read_dir(log) else {
        return Vec::new();
    };
    entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .map(|p| FakeCall::read(&p))
        .collect()
}

/// A home plus the fakes' world: their state (their own "sessions"), per-command call logs, and
/// project directories, all in one temporary directory (canonical paths, as `pwd -P`).
pub struct Fakes {
    pub home: Home,
    _tmp: TempDir,
    pub root: PathBuf,
    logs: std::sync::atomic::AtomicUsize,
}

impl Default for Fakes {
    fn default() -> Self {
        Self::new()
    }
}

impl Fakes {
    /// The fake `cli` run directly in `dir`, as a user would (clinvk does not see this run),
    /// with the CLIs' directories under the test's HOME; asserts it succeeded.
    #[track_caller]
    pub fn outside(&self, dir: &Path, cli: &str, args: &[&str]) {
        let out = std::process::Command::new(format!("{FAKES_DIR}/{cli}"))
            .args(args)
            .current_dir(dir)
            .env("HOME", self.home.user_home())
            .env("FAKE_CLI_STATE", self.state())
            .env("GEMINI_CLI_TRUST_WORKSPACE", "true")
            .env_remove("CODEX_HOME")
            .env_remove("GEMINI_CLI_HOME")
            .env_remove("CLAUDE_CONFIG_DIR")
            .env_remove("FAKE_CLI_SCENARIO")
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        Run::from_output(out).success();
    }

    /// The one session file in the home, as JSON (asserting there is exactly one).
    #[track_caller]
    pub fn only_session(&self) -> Value {
        let files = self.home.session_files();
        assert_eq!(files.len(), 1, "expected one session file: {files:?}");
        self.home.read_session(files[0].trim_end_matches(".json"))
    }

    pub fn new() -> Fakes {
        let tmp = tempfile::Builder::new()
            .prefix("clinvk-fakes-")
            .tempdir()
            .expect("create a temporary directory");
        let root = std::fs::canonicalize(tmp.path()).expect("canonical temp dir");
        Fakes {
            home: Home::new(),
            _tmp: tmp,
            root,
            logs: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    /// FAKE_CLI_STATE.
    pub fn state(&self) -> PathBuf {
        self.root.join("state")
    }

    /// The fake's record of its session `id` (holding the directory it was made in).
    pub fn fake_session(&self, cli: &str, id: &str) -> PathBuf {
        self.state().join(cli).join(id)
    }

    /// A project directory `name` (created).
    pub fn dir(&self, name: &str) -> PathBuf {
        let dir = self.root.join("projects").join(name);
        std::fs::create_dir_all(&dir).expect("create project dir");
        dir
    }

    fn new_log(&self) -> PathBuf {
        let n = self.logs.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.root.join("logs").join(format!("{n:03}"))
    }

    /// `clinvk ARGS` in `dir` with the fakes first on PATH, scenario `success`, a fresh
    /// FAKE_CLI_LOG of its own, the frozen clock, and stdin from /dev/null unless given.
    /// Run `cmd`, expecting exit `code`, no CLI called, and the store's files unchanged.
    pub fn refused(&self, cmd: FakeCmd, code: i32) -> Run {
        let before = self.home.snapshot(false);
        let ran = cmd.run();
        assert!(ran.calls.is_empty(), "a CLI was called: {:?}", ran.run);
        assert_same_files(&before, &self.home.snapshot(false));
        ran.run.fails_with(code)
    }

    pub fn at(&self, dir: &Path) -> FakeCmd {
        let log = self.new_log();
        let mut cmd = self.home.std_cmd();
        cmd.current_dir(dir)
            .env("PATH", path_with_fakes())
            .env("FAKE_CLI_STATE", self.state())
            .env("FAKE_CLI_LOG", &log)
            .env("FAKE_CLI_SCENARIO", "success")
            .env_remove("FAKE_CLI_REPLY")
            .env_remove("FAKE_CLI_SLEEP")
            .env_remove("CLINVK_BACKEND")
            .env_remove("GEMINI_CLI_TRUST_WORKSPACE");
        FakeCmd {
            cmd,
            log,
            stdin: None,
        }
    }
}

/// A `clinvk` command with the fakes (see `Fakes::at`).
pub struct FakeCmd {
    pub cmd: std::process::Command,
    /// This command's FAKE_CLI_LOG.
    pub log: PathBuf,
    stdin: Option<Vec<u8>>,
}

/// A finished `FakeCmd`: what clinvk printed, and the fake calls it made.
#[derive(Debug, Clone)]
pub struct FakeRun {
    pub run: Run,
    pub calls: Vec<FakeCall>,
}

impl FakeRun {
    /// The one fake call (asserts there was exactly one).
    #[track_caller]
    pub fn call(&self) -> &FakeCall {
        assert_eq!(
            self.calls.len(),
            1,
            "expected one call of a fake CLI, got {:?}\nstderr:\n{}",
            self.calls,
            self.run.stderr
        );
        &self.calls[0]
    }
}

impl FakeCmd {
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        self.cmd.args(args);
        self
    }

    pub fn env(mut self, key: &str, value: impl AsRef<std::ffi::OsStr>) -> Self {
        self.cmd.env(key, value);
        self
    }

    /// The fakes' FAKE_CLI_SCENARIO.
    pub fn scenario(self, scenario: &str) -> Self {
        self.env("FAKE_CLI_SCENARIO", scenario)
    }

    /// Bytes to pipe into clinvk's stdin.
    pub fn stdin(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.stdin = Some(bytes.into());
        self
    }

    /// Start it (stdout and stderr piped; stdin as set, else /dev/null).
    pub fn spawn(mut self) -> (std::process::Child, PathBuf) {
        use std::process::Stdio;
        self.cmd
            .stdin(if self.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = self.cmd.spawn().expect("spawn clinvk");
        if let Some(bytes) = self.stdin.take() {
            use std::io::Write;
            let mut stdin = child.stdin.take().unwrap();
            // clinvk may refuse before reading: a closed pipe is not the test's failure.
            let _ = stdin.write_all(&bytes);
        }
        (child, self.log)
    }

    /// Run to the end (at most 60 s) and collect everything.
    pub fn run(self) -> FakeRun {
        let (child, log) = self.spawn();
        let output = wait_with_deadline(child, std::time::Duration::from_secs(60));
        FakeRun {
            run: Run::from_output(output),
            calls: fake_calls(&log),
        }
    }

    /// Run and assert exit 0.
    #[track_caller]
    pub fn ok(self) -> FakeRun {
        let ran = self.run();
        assert_eq!(
            ran.run.code, 0,
            "expected success\nstdout:\n{}\nstderr:\n{}",
            ran.run.stdout, ran.run.stderr
        );
        ran
    }
}

/// Wait for `child` (stdout and stderr piped), killing it (and failing) after `limit`. The pipes
/// are drained meanwhile, so a chatty child cannot block on a full pipe.
#[track_caller]
pub fn wait_with_deadline(mut child: std::process::Child, limit: std::time::Duration) -> Output {
    use std::io::Read;
    fn drain(pipe: Option<impl Read + Send + 'static>) -> std::thread::JoinHandle<Vec<u8>> {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut buf);
            }
            buf
        })
    }
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let start = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for clinvk") {
            break status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "clinvk did not finish within {limit:?}\nstdout:\n{}\nstderr:\n{}",
                String::from_utf8_lossy(&stdout.join().unwrap()),
                String::from_utf8_lossy(&stderr.join().unwrap())
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    };
    Output {
        status,
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    }
}

/// Whether /proc can be read (Linux), for `children_of` and `fake_is_sleeping`.
pub fn have_proc() -> bool {
    Path::new("/proc/self/stat").exists()
}

/// The processes whose parent is `pid`, with their names (from /proc; empty without it).
pub fn children_of(pid: u32) -> Vec<(u32, String)> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| {
            let e = e.ok()?;
            let child: u32 = e.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
            // "pid (comm) state ppid ...": comm may hold spaces and parentheses.
            let close = stat.rfind(')')?;
            let comm = stat[stat.find('(')? + 1..close].to_string();
            let ppid: u32 = stat[close + 1..].split_whitespace().nth(1)?.parse().ok()?;
            (ppid == pid).then_some((child, comm))
        })
        .collect()
}

/// Whether the fake CLI run by the clinvk process `pid` is in its `slow` scenario's sleep (so
/// it has printed its first events and handles signals).
pub fn fake_is_sleeping(pid: u32) -> bool {
    children_of(pid)
        .into_iter()
        .any(|(fake, _)| children_of(fake).iter().any(|(_, name)| name == "sleep"))
}

// ----- Runs recorded in session files (`turns`) ------------------------------------------------

/// One entry of a session file's `turns` (src/store/session.rs `Turn`), built by `turn`.
#[derive(Debug, Clone)]
pub struct TurnJson {
    value: Value,
}

/// A run started at `at` (RFC 3339) that succeeded with this usage (`total = input + output`),
/// with no model of its own (it inherits the session's) and no reported cost.
pub fn turn(at: &str, input: u64, output: u64, cached: u64) -> TurnJson {
    TurnJson {
        value: json!({
            "at": at,
            "prompt": format!("prompt at {at}"),
            "exit_code": 0,
            "duration_seconds": 1.5,
            "token_usage": {"input": input, "output": output, "cached": cached, "total": input + output}
        }),
    }
}

impl TurnJson {
    /// The run's own model.
    pub fn model(mut self, model: &str) -> Self {
        self.value["model"] = json!(model);
        self
    }

    /// The cost the backend reported (Claude's `cost_usd`).
    pub fn cost(mut self, usd: f64) -> Self {
        self.value["cost_usd"] = json!(usd);
        self
    }

    /// The part of `input` written to a cache.
    pub fn cache_write(mut self, n: u64) -> Self {
        self.value["token_usage"]["cache_write"] = json!(n);
        self
    }

    /// The part of `output` spent reasoning.
    pub fn reasoning(mut self, n: u64) -> Self {
        self.value["token_usage"]["reasoning"] = json!(n);
        self
    }

    /// No `token_usage` at all (a run that reported none).
    pub fn no_usage(mut self) -> Self {
        self.value.as_object_mut().unwrap().remove("token_usage");
        self
    }
}

impl SessionJson {
    /// Set `turns`, as clinvk writes them: `token_usage` becomes their sum (cache_write and
    /// reasoning only when some) and `last_used_at` the start of the latest one.
    pub fn turns(mut self, turns: &[TurnJson]) -> Self {
        let mut sum: BTreeMap<&str, u64> = BTreeMap::new();
        for key in ["input", "output", "cached", "total"] {
            sum.insert(key, 0);
        }
        for t in turns {
            for key in [
                "input",
                "output",
                "cached",
                "total",
                "cache_write",
                "reasoning",
            ] {
                if let Some(n) = t.value["token_usage"][key].as_u64() {
                    *sum.entry(key).or_default() += n;
                }
            }
        }
        let usage: serde_json::Map<String, Value> = ["input", "output", "cached", "total"]
            .into_iter()
            .chain(
                ["cache_write", "reasoning"]
                    .into_iter()
                    .filter(|k| sum.contains_key(k)),
            )
            .map(|k| (k.to_string(), json!(sum[k])))
            .collect();
        self.value["token_usage"] = Value::Object(usage);
        self.value["turns"] = Value::Array(turns.iter().map(|t| t.value.clone()).collect());
        let latest = turns
            .iter()
            .filter_map(|t| t.value["at"].as_str())
            .max()
            .map(str::to_string);
        match latest {
            Some(at) => self.last_used(&at),
            None => self,
        }
    }
}
