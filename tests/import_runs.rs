//! Runs through clinvk and conversations continued directly in the CLI, imported: one session,
//! every request counted once, whatever the order. The fakes write their transcripts as the real
//! CLIs do; the truth here is what the CLIs themselves said (a run's reported usage; the last
//! running total of a Codex rollout; each Gemini answer's last tokens in its chat), computed by
//! this file's own simple rules, not by the importer.
//!
//! These runs use the real clock (no CLINVK_NOW): a run's turn and the requests it made in the
//! transcript must be timed by the same clock, as they are for a user.

#[macro_use]
#[allow(unused_macros)]
mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::*;
use serde_json::Value;

/// `clinvk ARGS --json` in `dir`, on the real clock.
fn clinvk(f: &Fakes, dir: &Path, args: &[&str]) -> Value {
    let mut cmd = f.at(dir).args(args).args(["--json"]);
    cmd.cmd.env_remove("CLINVK_NOW");
    cmd.ok().run.json()
}

fn import(f: &Fakes) -> Value {
    let mut cmd = f.home.cmd();
    cmd.env_remove("CLINVK_NOW");
    Run::from_output(cmd.args(["sessions", "import", "--json"]).output().unwrap())
        .success()
        .json()
}

fn files_under(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.to_string_lossy().ends_with(suffix) {
                out.push(p);
            }
        }
    }
    out
}

/// (input, output) a Codex rollout's thread spent: its last running total.
fn codex_truth(rollout: &Path) -> (u64, u64) {
    let mut last = (0, 0);
    for line in std::fs::read_to_string(rollout).unwrap().lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        let t = &v["payload"]["info"]["total_token_usage"];
        if t.is_object() {
            last = (
                t["input_tokens"].as_u64().unwrap(),
                t["output_tokens"].as_u64().unwrap(),
            );
        }
    }
    last
}

/// (input, output) of a Gemini chat: each answer's last tokens, input including tool tokens,
/// output including thoughts.
fn gemini_truth(chat: &Path) -> (u64, u64) {
    let mut answers: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for line in std::fs::read_to_string(chat).unwrap().lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        if v["type"] == "gemini" && v["tokens"].is_object() {
            let t = &v["tokens"];
            let n = |k: &str| t[k].as_u64().unwrap_or(0);
            answers.insert(
                v["id"].as_str().unwrap().to_string(),
                (n("input") + n("tool"), n("output") + n("thoughts")),
            );
        }
    }
    answers
        .values()
        .fold((0, 0), |(i, o), (a, b)| (i + a, o + b))
}

fn usage_of(f: &Fakes, id: &str) -> (u64, u64) {
    let s = f.home.read_session(id);
    (
        s["token_usage"]["input"].as_u64().unwrap(),
        s["token_usage"]["output"].as_u64().unwrap(),
    )
}

/// Every report adds up to the same total.
fn stats_total(f: &Fakes) -> (u64, u64) {
    let v = Run::from_output(
        f.home
            .cmd()
            .args(["sessions", "stats", "--json"])
            .output()
            .unwrap(),
    )
    .success()
    .json();
    (
        v["totals"]["input"].as_u64().unwrap(),
        v["totals"]["output"].as_u64().unwrap(),
    )
}

#[test]
fn a_codex_thread_run_through_clinvk_and_continued_in_the_cli_counts_each_request_once() {
    let f = Fakes::new();
    let dir = f.dir("svc");
    let id = clinvk(&f, &dir, &["-b", "codex", "first"])["session_id"]
        .as_str()
        .unwrap()
        .to_string();
    let thread = f.home.read_session(&id)["backend_session_id"]
        .as_str()
        .unwrap()
        .to_string();
    let rollouts = files_under(&f.home.user_home().join(".codex"), ".jsonl");
    assert_eq!(rollouts.len(), 1);
    let rollout = &rollouts[0];
    assert_eq!(
        usage_of(&f, &id),
        codex_truth(rollout),
        "one run, one truth"
    );

    // Twice in the CLI itself, then an import: the session gains those two requests only.
    let resume = [
        "exec",
        "resume",
        "--json",
        "--skip-git-repo-check",
        &thread,
        "outside",
    ];
    f.outside(&dir, "codex", &resume);
    f.outside(&dir, "codex", &resume);
    let report = import(&f);
    assert_eq!(report["backends"]["codex"]["updated"], 1, "{report}");
    assert_eq!(
        report["backends"]["codex"]["new"], 0,
        "one session: {report}"
    );
    assert_eq!(usage_of(&f, &id), codex_truth(rollout));

    // Through clinvk again: charged only its own request.
    clinvk(&f, &dir, &["resume", &id, "again"]);
    assert_eq!(usage_of(&f, &id), codex_truth(rollout));
    // Once more in the CLI, and this time clinvk runs before any import: the run is charged
    // what the thread spent since the last run it saw, the CLI's request included; the import
    // afterwards must not add that request again.
    f.outside(&dir, "codex", &resume);
    clinvk(&f, &dir, &["resume", &id, "and again"]);
    import(&f);
    import(&f);
    assert_eq!(usage_of(&f, &id), codex_truth(rollout));
    assert_eq!(stats_total(&f), codex_truth(rollout));
    assert_eq!(f.home.session_files().len(), 1);
}

/// (input, output) a run through clinvk reported (its `--json` output's `usage`): what the CLI
/// itself said, router calls included, which its chat file does not list.
fn reported(v: &Value) -> (u64, u64) {
    (
        v["usage"]["input"].as_u64().unwrap(),
        v["usage"]["output"].as_u64().unwrap(),
    )
}

fn plus(a: (u64, u64), b: (u64, u64)) -> (u64, u64) {
    (a.0 + b.0, a.1 + b.1)
}

#[test]
fn a_gemini_chat_run_through_clinvk_and_continued_in_the_cli_counts_each_answer_once() {
    let f = Fakes::new();
    let dir = f.dir("web");
    let first = clinvk(&f, &dir, &["-b", "gemini", "first"]);
    let id = first["session_id"].as_str().unwrap().to_string();
    let native = f.home.read_session(&id)["backend_session_id"]
        .as_str()
        .unwrap()
        .to_string();
    let chats = files_under(&f.home.user_home().join(".gemini/tmp"), ".jsonl");
    assert_eq!(chats.len(), 1);
    let chat = &chats[0];
    // A run's requests are the run's: the import adds nothing.
    let mut truth = reported(&first);
    import(&f);
    assert_eq!(usage_of(&f, &id), truth);

    // In the CLI itself: the import adds what its chat gained.
    let before = gemini_truth(chat);
    let resume = format!("--resume={native}");
    f.outside(&dir, "gemini", &[&resume, "-p", "outside", "-o", "json"]);
    let gained = gemini_truth(chat);
    truth = plus(truth, (gained.0 - before.0, gained.1 - before.1));
    let report = import(&f);
    assert_eq!(report["backends"]["gemini"]["updated"], 1, "{report}");
    assert_eq!(usage_of(&f, &id), truth);
    // Through clinvk again, then imports: that run counts once, as it reported.
    truth = plus(
        truth,
        reported(&clinvk(&f, &dir, &["resume", &id, "again"])),
    );
    import(&f);
    import(&f);
    assert_eq!(usage_of(&f, &id), truth);
    assert_eq!(stats_total(&f), truth);
    assert_eq!(f.home.session_files().len(), 1);
}

/// (input, output) of a Claude transcript: one request per message.id and requestId with its
/// last figures, no `<synthetic>` lines, none copied from another session.
fn claude_truth(transcript: &Path) -> (u64, u64) {
    let mut requests: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for line in std::fs::read_to_string(transcript).unwrap().lines() {
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        let m = &v["message"];
        if v["type"] != "assistant" || m["model"] == "<synthetic>" || !m["usage"].is_object() {
            continue;
        }
        if v.get("requestSessionId")
            .is_some_and(|r| *r != v["sessionId"])
        {
            continue;
        }
        let u = &m["usage"];
        let n = |k: &str| u[k].as_u64().unwrap_or(0);
        requests.insert(
            format!("{}:{}", m["id"], v["requestId"]),
            (
                n("input_tokens") + n("cache_read_input_tokens") + n("cache_creation_input_tokens"),
                n("output_tokens"),
            ),
        );
    }
    requests
        .values()
        .fold((0, 0), |(i, o), (a, b)| (i + a, o + b))
}

#[test]
fn a_claude_conversation_run_through_clinvk_and_continued_in_the_cli_counts_each_request_once() {
    let f = Fakes::new();
    let dir = f.dir("app");
    let first = clinvk(&f, &dir, &["-b", "claude", "first"]);
    let id = first["session_id"].as_str().unwrap().to_string();
    let native = f.home.read_session(&id)["backend_session_id"]
        .as_str()
        .unwrap()
        .to_string();
    let transcripts = files_under(&f.home.user_home().join(".claude/projects"), ".jsonl");
    assert_eq!(transcripts.len(), 1);
    let transcript = &transcripts[0];
    assert_eq!(
        reported(&first),
        claude_truth(transcript),
        "the fake is consistent"
    );
    import(&f);
    assert_eq!(usage_of(&f, &id), claude_truth(transcript));
    let resume = format!("--resume={native}");
    let args = [
        "-p",
        &resume,
        "--output-format",
        "stream-json",
        "--verbose",
        "outside",
    ];
    f.outside(&dir, "claude", &args);
    let report = import(&f);
    assert_eq!(report["backends"]["claude"]["updated"], 1, "{report}");
    assert_eq!(usage_of(&f, &id), claude_truth(transcript));
    clinvk(&f, &dir, &["resume", &id, "again"]);
    f.outside(&dir, "claude", &args);
    import(&f);
    import(&f);
    assert_eq!(usage_of(&f, &id), claude_truth(transcript));
    assert_eq!(stats_total(&f), claude_truth(transcript));
    assert_eq!(f.home.session_files().len(), 1);
}
