//! The guide's shell recipes, run with `bash -c` as written, with the built `clinvk` first on
//! PATH. Recipes that use jq are skipped (with a note) when jq is not installed.

#[macro_use]
mod common;

use std::path::PathBuf;

use chrono::Duration;
use common::*;
use serde_json::{json, Value};

/// jq prints a stream of JSON values; parse them all.
fn json_stream(text: &str) -> Vec<Value> {
    serde_json::Deserializer::from_str(text)
        .into_iter::<Value>()
        .map(|v| v.unwrap_or_else(|e| panic!("not a JSON stream ({e}):\n{text}")))
        .collect()
}

fn ids_of(values: &[Value]) -> Vec<String> {
    values
        .iter()
        .map(|v| v["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn aggregate_usage() {
    require!("jq");
    let home = standard_home();
    let run = bash(
        &home,
        "clinvk sessions list --json | \\\n  jq '[.[].token_usage.total] | add'",
        true,
    )
    .success();
    assert_eq!(run.stdout.trim(), "14756"); // 1234 + 6912 + 5678 + 890 + 42 + 0
    assert_eq!(run.stderr, "");
}

#[test]
fn usage_by_backend() {
    require!("jq");
    let home = standard_home();
    let run = bash(
        &home,
        "clinvk sessions list --json | \\\n  jq 'group_by(.backend) | map({backend: .[0].backend, total: [.[].token_usage.total] | add})'",
        true,
    )
    .success();
    assert_eq!(
        run.json(),
        json!([
            {"backend": "claude", "total": 8188},
            {"backend": "codex", "total": 5678},
            {"backend": "gemini", "total": 890}
        ])
    );
}

#[test]
fn search_by_prompt_content() {
    let home = standard_home();
    // grep on the table (case-sensitive, as grep is).
    let run = bash(&home, r#"clinvk sessions list | grep "auth""#, true).success();
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 1, "{}", run.stdout);
    assert!(lines[0].starts_with("abc123 ") && lines[0].contains("fix the bug in auth.go"));

    require!("jq");
    let run = bash(
        &home,
        r#"clinvk sessions list --json | jq '.[] | select(.prompt | contains("auth"))'"#,
        true,
    )
    .success();
    let found = json_stream(&run.stdout);
    assert_eq!(ids_of(&found), ["abc123"]);
    assert_eq!(found[0]["prompt"], "fix the bug in auth.go");
}

#[test]
fn sessions_from_the_last_24_hours_by_the_real_clock() {
    require!("jq");
    // jq's `now` is the real clock: build the store around it and leave CLINVK_NOW unset.
    let home = Home::new();
    home.add_all(&[
        session("recent1").last_used(&real_ago(Duration::hours(1))),
        session("recent2").last_used(&real_ago(Duration::hours(23))),
        session("old1").last_used(&real_ago(Duration::hours(25))),
        session("old2").last_used(&real_ago(Duration::days(3))),
    ]);
    let run = bash(
        &home,
        "clinvk sessions list --json | \\\n  jq '.[] | select(.last_used > (now - 86400 | todate))'",
        false,
    )
    .success();
    assert_eq!(ids_of(&json_stream(&run.stdout)), ["recent1", "recent2"]);
    // clinvk's own --since 24h agrees.
    let run = bash(&home, "clinvk sessions list --json --since 24h", false).success();
    assert_eq!(
        ids_of(run.json().as_array().unwrap()),
        ["recent1", "recent2"]
    );
}

#[test]
fn sessions_from_a_specific_date() {
    require!("jq");
    let home = standard_home();
    let run = bash(
        &home,
        "clinvk sessions list --json | \\\n  jq '.[] | select(.created_at | startswith(\"2025-01-27\"))'",
        true,
    )
    .success();
    assert_eq!(ids_of(&json_stream(&run.stdout)), ["abc123", "pqr678"]);
}

#[test]
fn bulk_deletion_of_completed_sessions() {
    require!("jq");
    let home = standard_home();
    let run = bash(
        &home,
        "clinvk sessions list --status completed --json | \\\n  jq -r '.[].id' | \\\n  xargs -I {} clinvk sessions delete {}",
        true,
    )
    .success();
    assert_eq!(run.stdout, "");
    assert!(!home.session_exists("pqr678") && !home.session_exists("def456"));
    assert_eq!(home.list_ids(&[]), ["abc123", "ghi789", "jkl012", "mno345"]);
    assert!(home.list_ids(&["--status", "completed"]).is_empty());
}

#[test]
fn bulk_deletion_by_backend() {
    require!("jq");
    let home = standard_home();
    bash(
        &home,
        "clinvk sessions list --backend codex --json | \\\n  jq -r '.[].id' | \\\n  xargs -I {} clinvk sessions delete {}",
        true,
    )
    .success();
    assert_eq!(home.list_ids(&[]), ["abc123", "pqr678", "ghi789", "jkl012"]);
    home.ok(&["sessions", "reindex", "--check"]);
}

#[test]
fn check_if_a_session_exists() {
    let home = Home::new();
    home.add(&session("abc123"));
    let recipe =
        r#"clinvk sessions show abc123 > /dev/null 2>&1 && echo "Exists" || echo "Not found""#;
    let run = bash(&home, recipe, true).success();
    assert_eq!(run.stdout, "Exists\n");
    home.ok(&["sessions", "delete", "abc123"]);
    let run = bash(&home, recipe, true).success();
    assert_eq!(run.stdout, "Not found\n");
}

#[test]
fn get_a_specific_field() {
    require!("jq");
    let home = Home::new();
    home.add(&session("abc123").status("active"));
    let run = bash(
        &home,
        "clinvk sessions show abc123 --json | jq '.status'",
        true,
    )
    .success();
    assert_eq!(run.stdout, "\"active\"\n");
    let run = bash(
        &home,
        "clinvk sessions show abc123 --json | jq -r '.backend_session_id'",
        true,
    )
    .success();
    assert_eq!(run.stdout, "sess_abc123\n");
}

#[test]
fn check_if_a_session_has_a_backend_id() {
    let home = Home::new();
    home.add(&session("withid").backend_session_id(Some("sess_xyz")));
    home.add(&session("noid").backend_session_id(None));
    let run = bash(
        &home,
        "clinvk sessions show withid | grep backend_session_id",
        true,
    )
    .success();
    assert!(run.stdout.contains("backend_session_id"), "{}", run.stdout);
    let all = home.ok(&["sessions", "show", "withid"]).stdout;
    assert!(all.contains("sess_xyz"));
    // For a session without one, the grep answers with a line saying it is missing.
    let run = bash(
        &home,
        "clinvk sessions show noid | grep backend_session_id",
        true,
    )
    .success();
    assert!(run.stdout.contains("missing"), "{}", run.stdout);
    // The guide's other troubleshooting step.
    let run = bash(&home, "clinvk sessions list --status active", true).success();
    assert!(run.stdout.contains("withid"), "{}", run.stdout);
}

#[test]
fn tagging_as_in_the_guide() {
    let home = standard_home();
    let run = bash(
        &home,
        r#"clinvk sessions tag abc123 "urgent" && clinvk sessions list --tag "urgent""#,
        true,
    )
    .success();
    assert!(
        run.stdout.lines().nth(1).unwrap().starts_with("abc123 "),
        "{}",
        run.stdout
    );
    let run = bash(
        &home,
        r#"clinvk sessions list --tag "project-x" --tag "bugfix""#,
        true,
    )
    .success();
    let ids: Vec<&str> = run
        .stdout
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(ids, ["pqr678", "ghi789"]);
}

#[test]
fn piping_the_list_into_head_exits_quietly() {
    let home = Home::new();
    home.ensure_sessions_dir();
    let prompt = "a long prompt that fills the table column with plenty of words ".repeat(3);
    for i in 0..1200 {
        home.add(
            &session(&format!("bulk{i:04}"))
                .prompt(&prompt)
                .used_ago(Duration::seconds(i)),
        );
    }
    home.warm();
    // Far more output than a pipe buffer holds, so clinvk writes into a closed pipe.
    let run = bash(
        &home,
        r#"clinvk sessions list | head -1; echo "clinvk exit: ${PIPESTATUS[0]}" >&2"#,
        true,
    );
    assert_eq!(run.code, 0);
    assert!(run.stdout.starts_with("ID "), "{}", run.stdout);
    assert_eq!(run.stdout.lines().count(), 1);
    assert_eq!(run.stderr, "clinvk exit: 0\n", "no 'Broken pipe' message");

    let run = bash(
        &home,
        r#"clinvk sessions list --json | head -1; echo "clinvk exit: ${PIPESTATUS[0]}" >&2"#,
        true,
    );
    assert_eq!(run.stdout, "[\n");
    assert_eq!(run.stderr, "clinvk exit: 0\n", "no 'Broken pipe' message");

    let run = bash(
        &home,
        r#"clinvk sessions clean --older-than 1s --dry-run | head -2 >/dev/null; echo "clinvk exit: ${PIPESTATUS[0]}" >&2"#,
        true,
    );
    assert!(run.stderr.ends_with("clinvk exit: 0\n"), "{}", run.stderr);
    assert!(
        !run.stderr.to_lowercase().contains("broken pipe"),
        "{}",
        run.stderr
    );
    assert_eq!(
        home.session_files().len(),
        1200,
        "a dry run deletes nothing"
    );
}

#[test]
fn token_budgeting_script() {
    require!("jq");
    // The script uses `date +%Y-%m`: the real clock, so the store is built around it.
    let home = Home::new();
    let this_month = real_ago(Duration::zero());
    home.add_all(&[
        session("big1")
            .created(&this_month)
            .last_used(&this_month)
            .tokens(500_000, 100_000, 0),
        session("big2")
            .created(&this_month)
            .last_used(&this_month)
            .tokens(400_000, 100_001, 0),
        session("lastyear")
            .created("2020-01-01T00:00:00Z")
            .last_used("2020-01-01T00:00:00Z")
            .tokens(9_000_000, 0, 0),
    ]);
    let script = r#"#!/bin/bash

# Check monthly usage
monthly_tokens=$(clinvk sessions list --json | \
  jq '[.[] | select(.created_at | startswith("'$(date +%Y-%m)'") ) | .token_usage.total] | add')

if [ "$monthly_tokens" -gt 1000000 ]; then
  echo "Warning: Token usage high ($monthly_tokens)"
fi
"#;
    let run = bash(&home, script, false).success();
    assert_eq!(run.stdout, "Warning: Token usage high (1100001)\n");
}

#[test]
fn archive_a_session_before_cleanup_and_restore_it() {
    let home = standard_home();
    let run = bash(
        &home,
        "clinvk sessions show mno345 --json > important-session.json && clinvk sessions clean --older-than 30d",
        true,
    )
    .success();
    assert!(run.stderr.contains("Deleted 1 session"), "{}", run.stderr);
    assert!(!home.session_exists("mno345"));
    // The export is a session file: copied back, the session is back as it was.
    let exported = home.path().join("important-session.json");
    std::fs::copy(&exported, home.session_path("mno345")).unwrap();
    let rows = home.list_json(&["--status", "created"]);
    assert_eq!(rows[0]["id"], "mno345");
    assert_eq!(
        rows[0]["prompt"],
        "100% coverage for user_id parsing with \"quotes\""
    );
}

#[test]
fn clean_recipes() {
    let home = standard_home();
    bash(&home, "clinvk sessions clean --older-than 7d", true).success();
    assert_eq!(
        home.list_ids(&[]).len(),
        5,
        "mno345 (57 days) is gone; jkl012 is exactly 7 days old"
    );
    bash(&home, "clinvk sessions clean --older-than 30d", true).success();
    bash(&home, "clinvk sessions clean", true).success();
    assert_eq!(home.list_ids(&[]).len(), 5);
}

// ----- recipes that name ~/.clinvk: run with HOME set and CLINVK_HOME unset --------------------

/// A user's home directory, so that `~/.clinvk` in a recipe is the store clinvk uses by default.
struct UserHome {
    dir: tempfile::TempDir,
}

impl UserHome {
    fn new() -> UserHome {
        UserHome {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn sessions(&self) -> PathBuf {
        self.dir.path().join(".clinvk").join("sessions")
    }

    fn add(&self, s: &SessionJson) {
        std::fs::create_dir_all(self.sessions()).unwrap();
        std::fs::write(
            self.sessions().join(format!("{}.json", s.id())),
            s.to_json(),
        )
        .unwrap();
    }

    fn bash(&self, script: &str) -> Run {
        Run::from_output(
            std::process::Command::new("bash")
                .arg("-c")
                .arg(script)
                .env("PATH", path_with_clinvk())
                .env("HOME", self.dir.path())
                .env_remove("CLINVK_HOME")
                .env_remove("CLINVK_CONFIG")
                .env("CLINVK_NOW", NOW)
                .env("TZ", "UTC")
                .current_dir(self.dir.path())
                .output()
                .unwrap(),
        )
    }
}

#[test]
fn the_default_store_is_in_home_dot_clinvk() {
    let user = UserHome::new();
    user.add(&session("abc123def"));
    let run = user
        .bash("clinvk sessions list --json && clinvk config path")
        .success();
    assert!(run.stdout.contains("\"abc123def\""), "{}", run.stdout);
    assert!(
        run.stdout.trim_end().ends_with(&format!(
            "{}/.clinvk/config.yaml",
            user.dir.path().display()
        )),
        "{}",
        run.stdout
    );
    // Check for lock files (troubleshooting).
    let run = user.bash("ls -la ~/.clinvk/sessions/.lock").success();
    assert!(run.stdout.contains(".lock"));
}

#[test]
fn troubleshooting_corruption_recipes() {
    require!("jq");
    let user = UserHome::new();
    for s in standard_sessions() {
        user.add(&s);
    }
    std::fs::write(user.sessions().join("corrupted-file.json"), "{ not json").unwrap();
    let run = user.bash("clinvk sessions list").success();
    assert!(run.stderr.contains("corrupted-file.json"), "{}", run.stderr);

    // 1. Check JSON validity.
    let run = user
        .bash(
            r#"for f in ~/.clinvk/sessions/*.json; do
  jq empty "$f" 2>/dev/null || echo "Invalid: $f"
done"#,
        )
        .success();
    assert_eq!(
        run.stdout,
        format!(
            "Invalid: {}/corrupted-file.json\n",
            user.sessions().display()
        )
    );
    // 2. Remove corrupted files: the warning is gone.
    user.bash("rm ~/.clinvk/sessions/corrupted-file.json")
        .success();
    let run = user.bash("clinvk sessions list --json").success();
    assert_eq!(run.stderr, "");
    assert_eq!(run.json().as_array().unwrap().len(), 6);
    // Files clinvk rewrote are valid JSON too.
    user.bash("clinvk sessions tag abc123 checked").success();
    let run = user
        .bash(r#"for f in ~/.clinvk/sessions/*.json; do jq empty "$f" 2>/dev/null || echo "Invalid: $f"; done"#)
        .success();
    assert_eq!(run.stdout, "");
    // Check for large sessions: only session files match the glob (the index is hidden).
    let run = user
        .bash("ls -lhS ~/.clinvk/sessions/*.json | head -10")
        .success();
    assert_eq!(run.stdout.lines().count(), 6, "{}", run.stdout);
    assert!(!run.stdout.contains(".index"));
}

#[test]
fn reset_the_session_store_as_the_guide_says() {
    let user = UserHome::new();
    for s in standard_sessions() {
        user.add(&s);
    }
    user.bash("clinvk sessions list").success();
    let run = user
        .bash("mv ~/.clinvk/sessions ~/.clinvk/sessions.backup\nmkdir ~/.clinvk/sessions\nclinvk sessions list --json")
        .success();
    assert_eq!(run.stdout.trim(), "[]");
    assert_eq!(run.stderr, "", "an empty store is not an error");
    let run = user.bash("clinvk sessions list").success();
    assert_eq!(run.stdout, "");
    assert!(!run.stderr.contains("clinvk:"), "{}", run.stderr);
    user.bash("clinvk sessions reindex --check").success();
    // The backup still holds everything.
    let run = user
        .bash("ls ~/.clinvk/sessions.backup/*.json | wc -l")
        .success();
    assert_eq!(run.stdout.trim(), "6");
}
