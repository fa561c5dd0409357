//! `clinvk sessions show | delete | tag | clean`.

#[macro_use]
#[allow(unused_macros)]
mod common;

use chrono::Duration;
use common::*;
use serde_json::{json, Value};

// ----- show -----------------------------------------------------------------------------------

#[test]
fn show_prints_the_guide_layout() {
    let home = Home::new();
    home.write_session("abc123def", GUIDE_EXAMPLE);
    home.warm();
    let run = home.ok(&["sessions", "show", "abc123def"]);
    assert_eq!(run.stderr, "");
    let lines: Vec<&str> = run.stdout.lines().collect();
    // The guide's lines, in the guide's order (other lines may sit between them).
    let expected = [
        "ID:                abc123def",
        "Backend:           claude",
        "Model:             claude-opus-4-5-20251101",
        "Status:            active",
        "Created:           2025-01-27T10:00:00Z",
        "Last Used:         2025-01-27T11:30:00Z (30 minutes ago)",
        "Working Directory: /projects/myapp",
        "Backend Session:   sess_abc123",
        "Token Usage:",
        "  Input:           1,234",
        "  Output:          5,678",
        "  Cached:          500",
        "  Total:           6,912",
        "Tags:              bugfix, auth",
    ];
    let mut at = 0;
    for want in expected {
        let found = lines[at..].iter().position(|l| *l == want);
        let found =
            found.unwrap_or_else(|| panic!("line {want:?} missing (in order) in:\n{}", run.stdout));
        at += found + 1;
    }
    // The guide: "Look for backend_session_id in the output".
    assert!(
        lines.iter().any(|l| l.contains("backend_session_id")),
        "{}",
        run.stdout
    );
}

#[test]
fn show_of_a_session_without_backend_session_id_says_it_is_not_resumable() {
    let home = Home::new();
    home.add(&session("nobsid").backend_session_id(None).tags(&[]));
    let out = home.ok(&["sessions", "show", "nobsid"]).stdout;
    assert!(out.contains("Backend Session:   -\n"), "{out}");
    let line = out
        .lines()
        .find(|l| l.contains("backend_session_id"))
        .expect("a line names backend_session_id");
    assert!(line.contains("missing") || line.contains("no"), "{line}");
    assert!(out.contains("Tags:              -\n"), "{out}");
}

#[test]
fn show_json_is_the_file_with_unknown_fields_preserved() {
    let home = Home::new();
    let mut value: Value = serde_json::from_str(GUIDE_EXAMPLE).unwrap();
    value["future_field"] = json!({"nested": [1, 2, 3]});
    value["token_usage"]["reasoning"] = json!(77);
    value["metadata"]["host"] = json!("devbox");
    home.write_session("abc123def", &serde_json::to_string_pretty(&value).unwrap());
    let run = home.ok(&["sessions", "show", "abc123def", "--json"]);
    let shown = run.json();
    assert_eq!(shown, value);
    let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&shown), keys(&value), "field order is the file's");
}

#[test]
fn show_json_of_a_minimal_hand_written_file_has_defaults() {
    let home = Home::new();
    home.write_session("hand_made-1", r#"{"backend": "gemini"}"#);
    let shown = home
        .ok(&["sessions", "show", "hand_made-1", "--json"])
        .json();
    assert_eq!(shown["id"], "hand_made-1");
    assert_eq!(shown["backend"], "gemini");
    assert_eq!(
        shown["status"], "completed",
        "no backend session id: not resumable"
    );
    assert_eq!(shown["tags"], json!([]));
    assert_eq!(shown["token_usage"]["total"], 0);
    assert!(shown["created_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(shown["created_at"], shown["last_used_at"]);
}

#[test]
fn show_resolves_unique_prefixes_of_four_or_more_characters() {
    let home = Home::new();
    home.add_all(&[session("abc123def"), session("abx99999"), session("xy")]);
    home.warm();
    let shown = home.ok(&["sessions", "show", "abc1", "--json"]).json();
    assert_eq!(shown["id"], "abc123def");
    let out = home.ok(&["sessions", "show", "abc123"]).stdout;
    assert!(out.starts_with("ID:                abc123def\n"), "{out}");
    // Three characters are not enough to stand for an id ...
    let run = home.run(&["sessions", "show", "abc"]).fails_with(3);
    assert!(run.error_line().contains("'abc'"), "{}", run.stderr);
    // ... but an exact id of any length is always accepted.
    assert_eq!(
        home.ok(&["sessions", "show", "xy", "--json"]).json()["id"],
        "xy"
    );
}

#[test]
fn ambiguous_prefix_exits_3_and_names_the_candidates() {
    let home = Home::new();
    home.add_all(&[session("abcd1111"), session("abcd2222"), session("abcd")]);
    home.warm();
    let run = home.run(&["sessions", "show", "abcd1"]).success();
    assert!(run.stdout.contains("abcd1111"));
    // An exact id wins over being a prefix of others.
    let shown = home.ok(&["sessions", "show", "abcd", "--json"]).json();
    assert_eq!(shown["id"], "abcd");
    std::fs::remove_file(home.session_path("abcd")).unwrap();
    let run = home.run(&["sessions", "show", "abcd"]).fails_with(3);
    let line = run.error_line();
    assert!(
        line.contains("abcd1111") && line.contains("abcd2222"),
        "{line}"
    );
    // delete and tag resolve the same way, and change nothing when ambiguous.
    let before = home.snapshot(false);
    home.run(&["sessions", "delete", "abcd"]).fails_with(3);
    home.run(&["sessions", "tag", "abcd", "x"]).fails_with(3);
    assert_same_files(&before, &home.snapshot(false));
}

#[test]
fn show_of_a_missing_id_exits_3_with_a_message_on_stderr_only() {
    let home = standard_home();
    let run = home.run(&["sessions", "show", "nosuchid"]).fails_with(3);
    assert!(run.error_line().contains("nosuchid"), "{}", run.stderr);
    let run = home
        .run(&["sessions", "show", "nosuchid", "--json"])
        .fails_with(3);
    assert!(run.error_line().contains("nosuchid"));
    // Even in an empty store.
    Home::new()
        .run(&["sessions", "show", "abc123"])
        .fails_with(3);
}

#[test]
fn show_of_a_corrupt_file_fails_and_keeps_the_file() {
    let home = Home::new();
    home.write_session("broken", "{ this is not json");
    home.warm();
    let run = home.run(&["sessions", "show", "broken"]).fails_with(1);
    assert!(run.error_line().contains("broken.json"), "{}", run.stderr);
    assert_eq!(
        std::fs::read_to_string(home.session_path("broken")).unwrap(),
        "{ this is not json"
    );
}

// ----- delete ---------------------------------------------------------------------------------

#[test]
fn delete_removes_the_files_and_the_listing() {
    let home = standard_home();
    let run = home.ok(&["sessions", "delete", "abc123", "def456"]);
    assert_eq!(run.stdout, "", "messages go to stderr");
    assert!(run.stderr.contains("abc123") && run.stderr.contains("def456"));
    assert!(!home.session_exists("abc123"));
    assert!(!home.session_exists("def456"));
    assert_eq!(home.list_ids(&[]), ["pqr678", "ghi789", "jkl012", "mno345"]);
    home.run(&["sessions", "show", "abc123"]).fails_with(3);
    // rm is an alias, and prefixes work.
    home.ok(&["sessions", "rm", "ghi7"]);
    assert!(!home.session_exists("ghi789"));
    assert_eq!(home.list_ids(&[]), ["pqr678", "jkl012", "mno345"]);
    home.ok(&["sessions", "reindex", "--check"]);
}

#[test]
fn delete_is_all_or_nothing_when_one_id_is_unknown() {
    let home = standard_home();
    let before = home.snapshot(false);
    let run = home
        .run(&["sessions", "delete", "abc123", "nosuchid", "def456"])
        .fails_with(3);
    assert!(run.error_line().contains("nosuchid"));
    assert_same_files(&before, &home.snapshot(false));
    assert_eq!(home.list_ids(&[]).len(), 6);
}

#[test]
fn delete_the_same_session_twice_in_one_command() {
    let home = standard_home();
    home.ok(&["sessions", "delete", "abc123", "abc123", "abc1"]);
    assert!(!home.session_exists("abc123"));
    assert_eq!(home.list_ids(&[]).len(), 5);
}

/// The issue's report: `delete` removed files `show` calls invalid, which README says are never
/// deleted. Now it refuses them, by name and reason, unless `--force`.
#[test]
fn delete_refuses_a_file_that_is_not_a_valid_session_unless_forced() {
    let home = standard_home();
    home.write_session("truncated", r#"{"id": "truncated", "backend": "cla"#);
    home.write_session("mismatch", r#"{"id": "otherid", "backend": "claude"}"#);
    home.warm();
    for bad in ["truncated", "mismatch"] {
        let before = home.snapshot(false);
        let run = home.run(&["sessions", "delete", bad]).fails_with(1);
        assert!(
            run.error_line().contains("not a valid session"),
            "{}",
            run.stderr
        );
        assert!(run.error_line().contains("--force"), "{}", run.stderr);
        // With a valid one beside it: nothing deleted either.
        home.run(&["sessions", "delete", "abc123", bad])
            .fails_with(1);
        assert_same_files(&before, &home.snapshot(false));
    }
    let run = home.ok(&["sessions", "delete", "--force", "truncated", "mismatch"]);
    assert!(
        run.stderr.contains("Deleted session truncated"),
        "{}",
        run.stderr
    );
    assert!(!home.session_exists("truncated") && !home.session_exists("mismatch"));
    assert_eq!(home.list_ids(&[]), STANDARD_ORDER, "the valid ones stay");
    home.ok(&["sessions", "reindex", "--check"]);
}

// ----- tag ------------------------------------------------------------------------------------

#[test]
fn tag_adds_tags_rewrites_the_file_and_keeps_unknown_fields() {
    let home = Home::new();
    let original = session("abc123")
        .tags(&["bugfix"])
        .field("future_field", json!({"keep": ["me", 1]}))
        .field("parent_id", json!("zzz999"));
    let mut value = original.value().clone();
    value["token_usage"]["reasoning"] = json!(5);
    value["metadata"]["host"] = json!("devbox");
    home.write_session("abc123", &serde_json::to_string_pretty(&value).unwrap());
    home.warm();

    let run = home.ok(&["sessions", "tag", "abc123", "urgent", "project-x"]);
    assert_eq!(run.stdout, "");
    assert!(
        run.stderr.contains("bugfix, urgent, project-x"),
        "{}",
        run.stderr
    );

    let after = home.read_session("abc123");
    assert_eq!(after["tags"], json!(["bugfix", "urgent", "project-x"]));
    // Everything else is as it was, unknown fields included.
    let mut expected = value.clone();
    expected["tags"] = after["tags"].clone();
    assert_eq!(after, expected);

    // The new tags are filterable at once.
    assert_eq!(home.list_ids(&["--tag", "urgent"]), ["abc123"]);
    assert_eq!(
        home.list_ids(&["--tag", "urgent", "--tag", "bugfix"]),
        ["abc123"]
    );
    home.ok(&["sessions", "reindex", "--check"]);
}

#[test]
fn tag_remove_and_no_op_changes() {
    let home = Home::new();
    home.add(&session("abc123").tags(&["bugfix", "auth"]));
    home.warm();

    // Adding a tag it already has leaves the file untouched.
    let before = std::fs::read(home.session_path("abc123")).unwrap();
    home.ok(&["sessions", "tag", "abc123", "auth"]);
    assert_eq!(std::fs::read(home.session_path("abc123")).unwrap(), before);

    // Whitespace around a tag is not part of it.
    home.ok(&["sessions", "tag", "abc1", "  urgent "]);
    assert_eq!(
        home.read_session("abc123")["tags"],
        json!(["bugfix", "auth", "urgent"])
    );

    let run = home.ok(&["sessions", "tag", "abc123", "auth", "bugfix", "--remove"]);
    assert!(run.stderr.contains("urgent"));
    assert_eq!(home.read_session("abc123")["tags"], json!(["urgent"]));
    assert!(home.list_ids(&["--tag", "auth"]).is_empty());
    assert_eq!(home.list_ids(&["--tag", "urgent"]), ["abc123"]);

    // Removing a tag it does not have is fine and changes nothing.
    let before = std::fs::read(home.session_path("abc123")).unwrap();
    home.ok(&["sessions", "tag", "abc123", "never-had", "--remove"]);
    assert_eq!(std::fs::read(home.session_path("abc123")).unwrap(), before);

    home.ok(&["sessions", "tag", "abc123", "urgent", "--remove"]);
    assert_eq!(home.read_session("abc123")["tags"], json!([]));
    assert!(home.list_ids(&["--tag", "urgent"]).is_empty());
}

#[test]
fn tag_a_minimal_hand_written_file() {
    let home = Home::new();
    home.write_session("handmade", r#"{"backend":"codex","prompt":"hello"}"#);
    home.ok(&["sessions", "tag", "handmade", "imported"]);
    let after = home.read_session("handmade");
    assert_eq!(after["id"], "handmade");
    assert_eq!(after["backend"], "codex");
    assert_eq!(after["prompt"], "hello");
    assert_eq!(after["tags"], json!(["imported"]));
    assert_eq!(home.list_ids(&["--tag", "imported"]), ["handmade"]);
}

#[test]
fn tag_of_a_missing_or_corrupt_session_fails_and_changes_nothing() {
    let home = Home::new();
    home.write_session("broken", "{\"backend\": \"claude\", ");
    home.add(&session("fine"));
    home.warm();
    let before = home.snapshot(false);
    home.run(&["sessions", "tag", "nosuch", "x"]).fails_with(3);
    let run = home.run(&["sessions", "tag", "broken", "x"]).fails_with(1);
    assert!(run.error_line().contains("broken.json"), "{}", run.stderr);
    assert_same_files(&before, &home.snapshot(false));
}

// ----- clean ----------------------------------------------------------------------------------

/// Sessions last used 1 h, 13 h, 3 d, 8 d and 40 d before NOW, plus one created 90 d ago but
/// used 1 h ago (age counts from the last use).
fn clean_home() -> Home {
    let home = Home::new();
    home.add_all(&[
        session("h1").used_ago(Duration::hours(1)),
        session("h13").used_ago(Duration::hours(13)),
        session("d3").used_ago(Duration::days(3)),
        session("d8").used_ago(Duration::days(8)),
        session("d40").used_ago(Duration::days(40)),
        session("oldbutused")
            .created(&ago(Duration::days(90)))
            .used_ago(Duration::minutes(90)),
    ]);
    home.warm();
    home
}

fn left(home: &Home) -> Vec<String> {
    let mut ids = home.list_ids(&[]);
    ids.sort();
    let mut files: Vec<String> = home
        .session_files()
        .into_iter()
        .map(|f| f.trim_end_matches(".json").to_string())
        .collect();
    files.sort();
    assert_eq!(ids, files, "the listing and the files agree");
    ids
}

#[test]
fn clean_older_than_deletes_by_time_since_last_use() {
    let home = clean_home();
    let run = home.ok(&["sessions", "clean", "--older-than", "30d"]);
    assert_eq!(run.stdout, "");
    assert!(run.stderr.contains("Deleted 1 session"), "{}", run.stderr);
    assert_eq!(left(&home), ["d3", "d8", "h1", "h13", "oldbutused"]);

    home.ok(&["sessions", "clean", "--older-than", "7d"]);
    assert_eq!(left(&home), ["d3", "h1", "h13", "oldbutused"]);

    home.ok(&["sessions", "clean", "--older-than", "12h"]);
    assert_eq!(left(&home), ["h1", "oldbutused"]);
    home.ok(&["sessions", "reindex", "--check"]);
}

#[test]
fn clean_boundary_is_strictly_older() {
    let home = Home::new();
    home.add(&session("exactly7d").used_ago(Duration::days(7)));
    home.add(&session("just_over").used_ago(Duration::days(7) + Duration::seconds(1)));
    home.ok(&["sessions", "clean", "--older-than", "7d"]);
    assert_eq!(left(&home), ["exactly7d"]);
}

#[test]
fn clean_dry_run_lists_but_deletes_nothing() {
    let home = clean_home();
    let before = home.snapshot(false);
    let run = home.ok(&["sessions", "clean", "--older-than", "12h", "--dry-run"]);
    assert!(
        run.stderr.contains("Would delete 4 session"),
        "{}",
        run.stderr
    );
    let rows: Vec<&str> = run.stdout.lines().skip(1).collect();
    let ids: Vec<&str> = rows
        .iter()
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(ids, ["h13", "d3", "d8", "d40"], "{}", run.stdout);
    assert_same_files(&before, &home.snapshot(false));

    let run = home.ok(&[
        "sessions",
        "clean",
        "--older-than",
        "7d",
        "--dry-run",
        "--json",
    ]);
    let ids = run.ids();
    assert_eq!(ids, ["d8", "d40"]);
    assert_same_files(&before, &home.snapshot(false));
    assert_eq!(left(&home).len(), 6);
}

#[test]
fn clean_json_prints_what_was_deleted() {
    let home = clean_home();
    let run = home.ok(&["sessions", "clean", "--older-than", "7d", "--json"]);
    let rows = run.json();
    let ids: Vec<&str> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["d8", "d40"]);
    assert!(run.stderr.contains("Deleted 2 session"), "{}", run.stderr);
    assert_eq!(left(&home), ["d3", "h1", "h13", "oldbutused"]);
    // Nothing left to clean: an empty array.
    let run = home.ok(&["sessions", "clean", "--older-than", "7d", "--json"]);
    assert_eq!(run.json(), json!([]));
}

#[test]
fn clean_without_a_flag_uses_the_default_retention_of_30_days() {
    let home = clean_home();
    let run = home.ok(&["sessions", "clean"]);
    assert!(run.stderr.contains("Deleted 1 session"), "{}", run.stderr);
    assert_eq!(left(&home), ["d3", "d8", "h1", "h13", "oldbutused"]);
}

#[test]
fn clean_without_a_flag_uses_session_retention_days() {
    let home = clean_home();
    std::fs::write(home.config_path(), "session:\n  retention_days: 7\n").unwrap();
    home.ok(&["sessions", "clean"]);
    assert_eq!(left(&home), ["d3", "h1", "h13", "oldbutused"]);
    // Set through the CLI, as the guide does.
    home.ok(&["config", "set", "session.retention_days", "2"]);
    let run = home.ok(&["sessions", "clean", "--dry-run", "--json"]);
    assert_eq!(run.json()[0]["id"], "d3");
    home.ok(&["sessions", "clean"]);
    assert_eq!(left(&home), ["h1", "h13", "oldbutused"]);
}

#[test]
fn retention_days_zero_keeps_everything_forever() {
    let home = clean_home();
    std::fs::write(home.config_path(), "session:\n  retention_days: 0\n").unwrap();
    let before = home.snapshot(false);
    let run = home.ok(&["sessions", "clean"]);
    assert_eq!(run.stdout, "");
    assert!(
        !run.stderr.contains("clinvk:"),
        "not an error: {}",
        run.stderr
    );
    let run = home.ok(&["sessions", "clean", "--json"]);
    assert_eq!(run.json(), json!([]));
    assert_same_files(&before, &home.snapshot(false));
    assert_eq!(left(&home).len(), 6);
    // An explicit --older-than still works.
    home.ok(&["sessions", "clean", "--older-than", "30d"]);
    assert_eq!(left(&home).len(), 5);
}

#[test]
fn clean_never_deletes_invalid_files() {
    let home = clean_home();
    home.write_session("corrupt", "{ definitely not json");
    home.write_session("wrongbackend", r#"{"backend":"gpt-9"}"#);
    // Make them look ancient.
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(400 * 86_400);
    for id in ["corrupt", "wrongbackend"] {
        let f = std::fs::File::options()
            .write(true)
            .open(home.session_path(id))
            .unwrap();
        f.set_modified(old).unwrap();
    }
    home.ok(&["sessions", "clean", "--older-than", "1h"]);
    assert!(home.session_exists("corrupt"));
    assert!(home.session_exists("wrongbackend"));
    assert_eq!(
        std::fs::read_to_string(home.session_path("corrupt")).unwrap(),
        "{ definitely not json"
    );
}
