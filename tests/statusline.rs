//! `clinvk statusline`, run as Claude Code runs it: its JSON on stdin (tests/data/statusline),
//! the real transcript of that session on disk, one line out, exit 0 whatever happens.

#[macro_use]
#[allow(unused_macros)]
mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use common::*;

const NOW: &str = "2026-12-01T12:00:00Z";
const ID: &str = "8804da8a-3e63-4991-a39b-a2fac3f7fd34";

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

/// A home with the sample conversation where Claude Code keeps it, and an index (the status
/// line never builds one: `reindex` does, without reading the transcripts); the path of the
/// transcript.
fn claude_home() -> (Home, PathBuf) {
    let home = Home::new();
    home.ok(&["sessions", "reindex"]);
    let dir = home
        .user_home()
        .join(".claude/projects/-home-user-proj-claude-proj");
    std::fs::create_dir_all(&dir).unwrap();
    let transcript = dir.join(format!("{ID}.jsonl"));
    std::fs::copy(
        data(&format!("native-samples/claude-{ID}.jsonl")),
        &transcript,
    )
    .unwrap();
    (home, transcript)
}

/// `clinvk statusline` with `stdin`, as Claude Code runs it (stdout a pipe).
fn statusline(home: &Home, stdin: &[u8], env: &[(&str, &str)]) -> Run {
    let mut cmd = home.std_cmd();
    cmd.env("CLINVK_NOW", NOW)
        .env("TZ", "UTC")
        .arg("statusline")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let run = Run::from_output(child.wait_with_output().unwrap());
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout.lines().count(), 1, "one line: {:?}", run.stdout);
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    run
}

fn stdin_for(transcript: &Path) -> Vec<u8> {
    let sample = std::fs::read_to_string(data("statusline/claude-stdin.json")).unwrap();
    sample
        .replace("TRANSCRIPT", transcript.to_str().unwrap())
        .into_bytes()
}

fn usd(x: f64) -> String {
    if x > 0.0 && x < 0.01 {
        format!("${x:.4}")
    } else {
        format!("${x:.2}")
    }
}

#[test]
fn the_line_shows_the_session_the_day_and_the_block() {
    let (home, transcript) = claude_home();
    // Another conversation on disk: the status line reads its own transcript only.
    let other = transcript.with_file_name("94895dfa-2027-4de2-9cdf-81bebfcae0c8.jsonl");
    std::fs::copy(
        data("native-samples/claude-94895dfa-2027-4de2-9cdf-81bebfcae0c8.jsonl"),
        &other,
    )
    .unwrap();
    let line = statusline(&home, &stdin_for(&transcript), &[("NO_COLOR", "1")]).stdout;
    home.ok(&["config", "set", "import.auto", "false"]);
    let listed = home.list_json(&[]);
    assert_eq!(ids_of(&listed), [ID], "only its own transcript was read");
    // Its figures are what `sessions stats` says of that session, today and the block.
    let figures = |args: &[&str]| {
        let mut all = vec!["sessions", "stats", "--json"];
        all.extend_from_slice(args);
        let run = Run::from_output(
            home.cmd()
                .env("CLINVK_NOW", NOW)
                .env("TZ", "UTC")
                .args(&all)
                .output()
                .unwrap(),
        )
        .success();
        let totals = run.json()["totals"].clone();
        (
            totals["total"].as_u64().unwrap(),
            totals["cost_usd"].as_f64().unwrap(),
        )
    };
    let (tokens, cost) = figures(&[]);
    assert!(tokens > 0, "the sample has usage");
    let parts: Vec<&str> = line.trim_end().split(" │ ").collect();
    assert_eq!(parts[0], "Opus 5.5", "{line}");
    assert!(parts[1].ends_with(&format!("tok {}", usd(cost))), "{line}");
    let (_, today) = figures(&["--since", "2026-12-01"]);
    assert_eq!(parts[2], format!("today {}", usd(today)), "{line}");
    // Its runs at 10:37: the 10:00 block, three hours left at noon.
    let (_, block) = figures(&[
        "--since",
        "2026-12-01T10:00:00Z",
        "--until",
        "2026-12-01T15:00:00Z",
    ]);
    assert_eq!(
        parts[3],
        format!("block {} 3h 00m left", usd(block)),
        "{line}"
    );
    assert!(!line.contains('\x1b'), "NO_COLOR: {line:?}");

    // More said in the session: the next refresh counts it.
    home.ok(&["config", "set", "import.auto", "true"]);
    let before = parts[1].to_string();
    let mut lines = std::fs::read_to_string(&transcript).unwrap();
    let extra = lines
        .lines()
        .find(|l| l.contains("\"type\":\"assistant\"") && l.contains("\"usage\""))
        .unwrap()
        .replace("\"id\":\"msg_", "\"id\":\"msg_again_")
        .replace("\"requestId\":\"req_", "\"requestId\":\"req_again_");
    lines.push_str(&extra);
    lines.push('\n');
    std::fs::write(&transcript, lines).unwrap();
    let after = statusline(&home, &stdin_for(&transcript), &[("NO_COLOR", "1")]).stdout;
    let after = after.trim_end().split(" │ ").nth(1).unwrap().to_string();
    assert_ne!(before, after, "the appended request is counted");

    // In color unless NO_COLOR says otherwise: Claude Code shows the escapes.
    let colored = statusline(&home, &stdin_for(&transcript), &[]).stdout;
    assert!(colored.contains("\x1b[1mOpus 5.5\x1b[0m"), "{colored:?}");
}

#[test]
fn a_configured_budget_shows_its_state() {
    let (home, transcript) = claude_home();
    home.ok(&["config", "set", "session.cost_budget_usd", "0.01"]);
    let line = statusline(&home, &stdin_for(&transcript), &[("NO_COLOR", "1")]).stdout;
    assert!(line.contains("month budget"), "{line}");
    assert!(line.trim_end().ends_with("exceeded"), "{line}");
    let line = Run::from_output(
        home.std_cmd()
            .env("CLINVK_NOW", NOW)
            .env("NO_COLOR", "1")
            .args(["statusline", "--period", "block"])
            .stdin(Stdio::null())
            .output()
            .unwrap(),
    )
    .success()
    .stdout;
    assert!(line.contains("block budget"), "{line}");
    // A day's budget is today's usage, the figure the line shows before it.
    let line = Run::from_output(
        home.std_cmd()
            .env("CLINVK_NOW", NOW)
            .env("NO_COLOR", "1")
            .args(["statusline", "--period", "day"])
            .stdin(Stdio::null())
            .output()
            .unwrap(),
    )
    .success()
    .stdout;
    let stats = home
        .cmd()
        .env("CLINVK_NOW", NOW)
        .args([
            "sessions",
            "stats",
            "--json",
            "--budget-usd",
            "0.01",
            "--period",
            "day",
        ])
        .output()
        .unwrap();
    let stats: serde_json::Value = serde_json::from_slice(&stats.stdout).unwrap();
    let state = stats["budget"]["status"].as_str().unwrap().to_string();
    assert!(line.contains("day budget"), "{line}");
    assert!(line.trim_end().ends_with(&state), "{line} / {state}");
}

#[test]
fn nothing_goes_wrong_in_the_status_bar() {
    // No index yet: a marker that says what to do.
    let fresh = Home::new();
    let line = statusline(&fresh, b"{}", &[]).stdout;
    assert!(line.starts_with("clinvk ⚠ index not ready"), "{line}");
    let (home, transcript) = claude_home();
    // Garbage, nothing, or a path outside Claude's directories: still a line, exit 0.
    for stdin in [
        &b"{not json"[..],
        b"",
        b"{\"transcript_path\": \"/etc/passwd\"}",
    ] {
        let line = statusline(&home, stdin, &[("NO_COLOR", "1")]).stdout;
        assert!(line.contains("today $"), "{line}");
    }
    // A damaged index: no rebuild in the status bar (the next command does it), a marker.
    let index = home.index_path();
    let kept = std::fs::read(&index).unwrap();
    std::fs::write(&index, b"not an index").unwrap();
    let start = std::time::Instant::now();
    let line = statusline(&home, &stdin_for(&transcript), &[]).stdout;
    assert!(line.starts_with("clinvk ⚠ index not ready"), "{line}");
    assert!(
        start.elapsed() < std::time::Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
    std::fs::write(&index, kept).unwrap();
    // A broken config: a short marker, not an error.
    std::fs::write(home.config_path(), "session: [unclosed").unwrap();
    let line = statusline(&home, &stdin_for(&transcript), &[]).stdout;
    assert!(line.starts_with("clinvk ⚠"), "{line}");
    std::fs::remove_file(home.config_path()).unwrap();
    // Another clinvk holding the store: a line within a moment.
    home.ok(&["sessions", "list"]);
    let held = std::fs::File::open(home.lock_path()).unwrap();
    fs2::FileExt::lock_exclusive(&held).unwrap();
    let start = std::time::Instant::now();
    let line = statusline(&home, &stdin_for(&transcript), &[]).stdout;
    assert!(
        start.elapsed() < std::time::Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
    // It gave up on the lock and said so, rather than answering as if it had read.
    assert!(line.starts_with("clinvk ⚠"), "{line}");
}
