//! The store as users really treat it: files added, removed, moved and edited by hand, corrupt
//! files, a deleted or garbage index, the guide's "reset the store" recipe, `sessions reindex`
//! and `reindex --check`, and the private permissions of everything clinvk creates.

#[macro_use]
#[allow(unused_macros)]
mod common;

use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use chrono::Duration;
use common::*;
use serde_json::{json, Value};

fn ino(path: &Path) -> u64 {
    std::fs::metadata(path).unwrap().ino()
}

/// Rewrite a file in place: same inode, truncated and written again (what `>` in a shell, many
/// editors and sync tools do).
fn rewrite_in_place(path: &Path, text: &str) {
    let before = ino(path);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
    f.sync_all().unwrap();
    drop(f);
    assert_eq!(ino(path), before, "the edit must keep the inode");
}

fn row<'a>(rows: &'a [Value], id: &str) -> &'a Value {
    rows.iter()
        .find(|r| r["id"] == id)
        .unwrap_or_else(|| panic!("{id} not listed in {rows:?}"))
}

// ----- reindex and reindex --check ------------------------------------------------------------

fn store_with_invalid_files() -> Home {
    let home = Home::new();
    home.add_all(&[session("good1"), session("good2"), session("good3")]);
    home.write_session("corrupt", "{\"backend\": \"claude\",");
    home.write_session("wrongid", r#"{"id": "otherid", "backend": "claude"}"#);
    home.write_session("bad name", r#"{"backend": "claude"}"#);
    home.write_session("nobackend", r#"{"prompt": "hi"}"#);
    home
}

#[test]
fn reindex_reports_counts_and_names_each_invalid_file_with_its_reason() {
    let home = store_with_invalid_files();
    let before = home.snapshot(false);
    let run = home.ok(&["sessions", "reindex"]);
    let out = &run.stdout;
    assert!(out.contains("Indexed 3 session(s)"), "{out}");
    assert!(out.contains("Skipped 4 invalid file(s)"), "{out}");
    let line = |name: &str| {
        out.lines()
            .find(|l| l.trim_start().starts_with(&format!("{name}:")))
            .unwrap_or_else(|| panic!("{name} not reported in:\n{out}"))
            .to_string()
    };
    assert!(line("corrupt.json").contains("not valid JSON"));
    assert!(line("wrongid.json").contains("does not match the file name"));
    assert!(line("bad name.json").contains("not a valid session id"));
    assert!(line("nobackend.json").contains("backend"));
    // Invalid files are reported, never deleted or changed.
    assert_same_files(&before, &home.snapshot(false));

    let report = home.ok(&["sessions", "reindex", "--json"]).json();
    assert_eq!(report["sessions"], 3);
    let mut names: Vec<&str> = report["invalid_files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["file"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "bad name.json",
            "corrupt.json",
            "nobackend.json",
            "wrongid.json"
        ]
    );
    assert!(report["invalid_files"][0]["reason"].as_str().unwrap().len() > 5);
    assert_eq!(home.list_ids(&[]).len(), 3);
}

#[test]
fn reindex_check_exits_0_when_index_and_files_agree() {
    let home = standard_home();
    let run = home.ok(&["sessions", "reindex", "--check"]);
    assert!(
        run.stdout.contains("matches the 6 session file(s)"),
        "{}",
        run.stdout
    );
    let report = home
        .ok(&["sessions", "reindex", "--check", "--json"])
        .json();
    assert_eq!(report["ok"], true);
    assert_eq!(report["differences"], json!([]));
    // Known invalid files are not a difference.
    let home = store_with_invalid_files();
    home.ok(&["sessions", "reindex"]);
    let run = home.ok(&["sessions", "reindex", "--check"]);
    assert!(
        run.stdout.contains("corrupt.json"),
        "still reported: {}",
        run.stdout
    );
}

#[test]
fn reindex_check_sees_a_file_added_by_hand_and_changes_nothing() {
    let home = standard_home();
    home.add(&session("byhand"));
    let snapshot = home.snapshot(false);
    // Run check BEFORE any list: it must not quietly reconcile the index.
    let run = home.run(&["sessions", "reindex", "--check"]).code(6);
    assert!(
        run.stdout.contains("byhand.json: not in the index"),
        "{}",
        run.stdout
    );
    // Nothing was fixed: a second check finds the same difference.
    let run = home
        .run(&["sessions", "reindex", "--check", "--json"])
        .code(6);
    let report = run.json();
    assert_eq!(report["ok"], false);
    assert_eq!(report["differences"][0]["file"], "byhand.json");
    assert_same_files(&snapshot, &home.snapshot(false));
    // The next list heals the index.
    assert!(home.list_ids(&[]).contains(&"byhand".to_string()));
    home.ok(&["sessions", "reindex", "--check"]);
}

#[test]
fn reindex_check_sees_removed_and_edited_files() {
    let home = standard_home();
    std::fs::remove_file(home.session_path("abc123")).unwrap();
    let path = home.session_path("def456");
    let text = std::fs::read_to_string(&path).unwrap();
    rewrite_in_place(
        &path,
        &text.replace("implement user registration", "changed"),
    );
    let run = home.run(&["sessions", "reindex", "--check"]).code(6);
    assert!(
        run.stdout
            .contains("abc123.json: in the index, but the file is gone"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("def456.json: the index holds an older version"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("2 place(s)"), "{}", run.stdout);
    home.run(&["sessions", "reindex", "--check"]).code(6);
    home.ok(&["sessions", "reindex"]);
    home.ok(&["sessions", "reindex", "--check"]);
    assert_eq!(row(&home.list_json(&[]), "def456")["prompt"], "changed");
}

#[test]
fn reindex_check_without_an_index_differs_and_creates_none() {
    let home = standard_home();
    home.remove_index();
    let run = home.run(&["sessions", "reindex", "--check"]).code(6);
    assert!(run.stdout.contains(".index.db"), "{}", run.stdout);
    assert!(
        !home.index_path().exists(),
        "check must not build the index"
    );
    home.warm();
    home.ok(&["sessions", "reindex", "--check"]);
}

#[test]
fn reindex_check_sees_a_new_corrupt_file() {
    let home = standard_home();
    home.write_session("junk", "not json at all");
    let run = home.run(&["sessions", "reindex", "--check"]).code(6);
    assert!(run.stdout.contains("junk.json"), "{}", run.stdout);
    home.warm();
    home.ok(&["sessions", "reindex", "--check"]);
}

// ----- hand-edited stores ---------------------------------------------------------------------

#[test]
fn a_file_added_by_hand_shows_in_the_next_list() {
    let home = standard_home();
    home.add(
        &session("handadd")
            .prompt("added by hand")
            .used_ago(Duration::seconds(5)),
    );
    let run = home.ok(&["sessions", "list", "--json"]);
    assert_eq!(run.stderr, "", "no warning, no rebuild notice");
    let rows = run.json();
    assert_eq!(rows[0]["id"], "handadd");
    assert_eq!(rows[0]["prompt"], "added by hand");
    assert_eq!(rows.as_array().unwrap().len(), 7);
    // And in filtered lists, show and prefixes.
    assert_eq!(home.list_ids(&["--search", "by hand"]), ["handadd"]);
    home.ok(&["sessions", "show", "handa"]);
}

#[test]
fn a_file_removed_with_rm_disappears() {
    let home = standard_home();
    std::fs::remove_file(home.session_path("pqr678")).unwrap();
    let run = home.ok(&["sessions", "list", "--json"]);
    assert_eq!(run.stderr, "");
    assert_eq!(run.json().as_array().unwrap().len(), 5);
    assert!(!home.list_ids(&[]).contains(&"pqr678".to_string()));
    assert!(home.list_ids(&["--tag", "urgent"]).is_empty());
    home.run(&["sessions", "show", "pqr678"]).fails_with(3);
}

#[test]
fn a_file_replaced_by_mv_shows_its_new_content() {
    let home = standard_home();
    let target = home.session_path("ghi789");
    let before = ino(&target);

    // mv from outside the sessions directory over the file.
    let staging = home.path().join("staging.json");
    let replacement = session("ghi789")
        .backend("codex")
        .status("completed")
        .prompt("replaced by mv")
        .tags(&["moved"])
        .used_ago(Duration::minutes(1));
    std::fs::write(&staging, replacement.to_json()).unwrap();
    std::fs::rename(&staging, &target).unwrap();
    assert_ne!(ino(&target), before);

    let rows = home.list_json(&[]);
    assert_eq!(rows[0]["id"], "ghi789", "newest now");
    assert_eq!(rows[0]["prompt"], "replaced by mv");
    assert_eq!(rows[0]["backend"], "codex");
    assert_eq!(home.list_ids(&["--tag", "moved"]), ["ghi789"]);
    assert_eq!(home.list_ids(&["--status", "completed"])[0], "ghi789");

    // mv of another file (not *.json, so not a session yet) inside the directory over it.
    let side = home.sessions_dir().join("ghi789.json.new");
    std::fs::write(
        &side,
        session("ghi789").prompt("second replacement").to_json(),
    )
    .unwrap();
    std::fs::rename(&side, &target).unwrap();
    assert_eq!(
        row(&home.list_json(&[]), "ghi789")["prompt"],
        "second replacement"
    );
    assert_eq!(home.list_ids(&["--search", "second repl"]), ["ghi789"]);
    home.ok(&["sessions", "reindex", "--check"]);
}

#[test]
fn a_file_edited_in_place_shows_its_new_content() {
    let home = standard_home();
    let path = home.session_path("abc123");
    let text = std::fs::read_to_string(&path).unwrap();
    let edited = text
        .replace(
            "fix the bug in auth.go",
            "fix the bug in auth.go and session.go",
        )
        .replace("\"input\": 1000", "\"input\": 2000")
        .replace("\"total\": 1234", "\"total\": 2234");
    rewrite_in_place(&path, &edited);

    let run = home.ok(&["sessions", "list"]);
    assert!(
        run.stdout.contains("fix the bug in auth.go and session.go"),
        "{}",
        run.stdout
    );
    let rows = home.list_json(&[]);
    let abc = row(&rows, "abc123");
    assert_eq!(abc["prompt"], "fix the bug in auth.go and session.go");
    assert_eq!(abc["tokens"], 2234);
    let shown = home.ok(&["sessions", "show", "abc123", "--json"]).json();
    assert_eq!(shown["token_usage"]["input"], 2000);
    home.ok(&["sessions", "reindex", "--check"]);
}

/// Edit jkl012 in place (error -> completed, new prompt, used a minute ago); the size changes,
/// so the file's stamp certainly changes too.
fn in_place_status_edit(home: &Home) {
    let path = home.session_path("jkl012");
    let text = std::fs::read_to_string(&path).unwrap();
    let edited = text
        .replace("\"status\": \"error\"", "\"status\": \"completed\"")
        .replace("Refactor the AUTH middleware", "zebra crossing")
        .replace("2025-01-20T12:00:00Z", "2025-01-27T11:59:00Z");
    rewrite_in_place(&path, &edited);
}

/// Documented limit (README, "How the index stays right"): a file edited in place keeps its
/// inode and does not touch the directory, so only the rows a listing shows are re-checked at
/// once (a stat each; checking every file on every filtered listing would cost a stat per
/// session). Filters catch up at the next change to the directory, or `sessions reindex`.
#[test]
fn a_file_edited_in_place_is_seen_by_filters_after_the_next_directory_change() {
    let home = standard_home();
    in_place_status_edit(&home);
    // The limit itself: a filter on the new status does not see the edit yet.
    assert!(!home
        .list_ids(&["--status", "completed"])
        .contains(&"jkl012".to_string()));
    // Any change to the directory (here a new file) brings the filters up to date.
    home.add(&session("zzz999"));
    assert!(home
        .list_ids(&["--status", "completed"])
        .contains(&"jkl012".to_string()));
    assert_eq!(home.list_ids(&["--search", "zebra"]), ["jkl012"]);
    assert!(!home
        .list_ids(&["--status", "error"])
        .contains(&"jkl012".to_string()));
}

/// Shown rows are re-checked at once: an unfiltered listing shows the new version.
#[test]
fn a_file_edited_in_place_is_shown_as_it_is_now() {
    let home = standard_home();
    in_place_status_edit(&home);
    let all = home.run(&["sessions", "list", "--json"]);
    assert!(all.stdout.contains("zebra crossing"), "{}", all.stdout);
}

#[test]
fn a_file_edited_in_place_is_seen_by_filters_after_reindex() {
    let home = standard_home();
    in_place_status_edit(&home);
    home.ok(&["sessions", "reindex"]);
    assert_eq!(home.list_ids(&["--search", "zebra"]), ["jkl012"]);
    assert_eq!(
        home.list_ids(&["-n", "1"]),
        ["jkl012"],
        "edited to be the newest"
    );
}

#[test]
fn clean_does_not_delete_a_session_edited_in_place_to_be_recent() {
    let home = standard_home();
    in_place_status_edit(&home); // jkl012 was used 7 days ago, now 1 minute ago.
    home.ok(&["sessions", "clean", "--older-than", "3d"]);
    assert!(
        home.session_exists("jkl012"),
        "a session used a minute ago was deleted by clean --older-than 3d"
    );
    assert!(!home.session_exists("mno345"));
    // The dry run must not name it either.
    let home = standard_home();
    in_place_status_edit(&home);
    let run = home.ok(&[
        "sessions",
        "clean",
        "--older-than",
        "3d",
        "--dry-run",
        "--json",
    ]);
    assert!(!run.stdout.contains("jkl012"), "{}", run.stdout);
}

#[test]
fn a_corrupt_file_is_skipped_with_a_warning_and_never_deleted() {
    let home = standard_home();
    let garbage = "{\"id\": \"broken\", \"backend\": \"claude\", \"prompt\": \"trunc";
    home.write_session("broken", garbage);

    for _ in 0..2 {
        let run = home.ok(&["sessions", "list", "--json"]);
        // Results still on stdout, as valid JSON.
        assert_eq!(run.json().as_array().unwrap().len(), 6);
        let warnings = run.stderr_lines();
        assert_eq!(warnings.len(), 1, "{}", run.stderr);
        assert!(
            warnings[0].starts_with("clinvk: warning:"),
            "{}",
            warnings[0]
        );
        assert!(warnings[0].contains("broken.json"), "{}", warnings[0]);
    }
    // Table output too.
    let run = home.ok(&["sessions", "list"]);
    assert!(run.stderr.contains("broken.json"));
    assert_eq!(run.stdout.lines().count(), 7);

    // Nothing else deletes or touches it.
    home.ok(&["sessions", "reindex"]);
    home.ok(&["sessions", "tag", "abc123", "x"]);
    home.ok(&["sessions", "delete", "def456"]);
    home.ok(&["sessions", "clean", "--older-than", "1s"]);
    home.remove_index();
    home.warm();
    assert_eq!(
        std::fs::read_to_string(home.session_path("broken")).unwrap(),
        garbage
    );
    // Fixed (a repaired copy moved over it), it is a session again.
    let fixed = home.path().join("fixed.json");
    std::fs::write(&fixed, session("broken").prompt("repaired").to_json()).unwrap();
    std::fs::rename(&fixed, home.session_path("broken")).unwrap();
    let run = home.ok(&["sessions", "list", "--json"]);
    assert_eq!(run.stderr, "");
    assert_eq!(run.json()[0]["prompt"], "repaired");
}

#[test]
fn a_corrupt_file_repaired_in_place_becomes_a_session_again() {
    let home = standard_home();
    home.write_session("broken", "{ \"backend\": ");
    let run = home.ok(&["sessions", "list", "--json"]);
    assert!(run.stderr.contains("broken.json"));
    rewrite_in_place(
        &home.session_path("broken"),
        &session("broken").prompt("repaired in place").to_json(),
    );
    let run = home.ok(&["sessions", "list", "--json"]);
    assert_eq!(run.stderr, "", "the file is valid now");
    assert_eq!(
        row(run.json().as_array().unwrap(), "broken")["prompt"],
        "repaired in place"
    );
}

#[test]
fn a_valid_file_that_becomes_corrupt_leaves_the_listing_with_a_warning() {
    let home = standard_home();
    rewrite_in_place(&home.session_path("abc123"), "{ oops");
    let run = home.ok(&["sessions", "list", "--json"]);
    assert!(run.stderr.contains("abc123.json"), "{}", run.stderr);
    let ids = run.ids();
    assert!(!ids.contains(&"abc123".to_string()), "{ids:?}");
    assert!(home.session_exists("abc123"));
    home.ok(&["sessions", "reindex", "--check"]);
}

#[test]
fn other_invalid_files_are_reported_by_name_with_a_reason() {
    let home = standard_home();
    home.write_session("wrongid", r#"{"id": "elsewhere", "backend": "claude"}"#);
    home.write_session("gpt", r#"{"backend": "gpt-9"}"#);
    home.write_session("arr", "[1, 2, 3]");
    let run = home.ok(&["sessions", "list", "--json"]);
    assert_eq!(run.json().as_array().unwrap().len(), 6);
    for (name, reason) in [
        ("wrongid.json", "does not match"),
        ("gpt.json", "gpt-9"),
        ("arr.json", "not a JSON object"),
    ] {
        let line = run
            .stderr_lines()
            .into_iter()
            .find(|l| l.contains(name))
            .unwrap_or_else(|| panic!("{name} not reported: {}", run.stderr));
        assert!(line.contains(reason), "{line}");
    }
}

#[test]
fn hidden_and_non_json_files_are_ignored() {
    let home = standard_home();
    std::fs::write(home.sessions_dir().join(".hidden.json"), "garbage").unwrap();
    std::fs::write(home.sessions_dir().join("notes.txt"), "garbage").unwrap();
    std::fs::write(home.sessions_dir().join("abc123.json.bak"), "garbage").unwrap();
    std::fs::create_dir(home.sessions_dir().join("folder.json")).unwrap();
    let run = home.ok(&["sessions", "list", "--json"]);
    assert_eq!(run.stderr, "");
    assert_eq!(run.json().as_array().unwrap().len(), 6);
    home.ok(&["sessions", "reindex", "--check"]);
}

#[test]
fn a_minimal_hand_written_file_loads_with_defaults() {
    let home = Home::new();
    home.write_session("onlybackend", r#"{"backend": "claude"}"#);
    home.write_session(
        "resumable",
        r#"{"backend": "gemini", "backend_session_id": "g-1", "last_used_at": "2025-01-27T11:00:00Z"}"#,
    );
    let rows = home.list_json(&[]);
    let only = row(&rows, "onlybackend");
    assert_eq!(only["backend"], "claude");
    assert_eq!(only["status"], "completed");
    assert_eq!(only["tokens"], 0);
    assert_eq!(
        only["token_usage"],
        json!({"input": 0, "output": 0, "cached": 0, "total": 0})
    );
    assert_eq!(only["tags"], json!([]));
    assert_eq!(only["prompt"], "");
    assert_eq!(only["workdir"], "");
    assert_eq!(only["model"], Value::Null);
    assert_eq!(only["backend_session_id"], Value::Null);
    assert_eq!(only["created_at"], only["last_used_at"]);

    let res = row(&rows, "resumable");
    assert_eq!(
        res["status"], "active",
        "a backend session id makes it resumable"
    );
    assert_eq!(res["created_at"], "2025-01-27T11:00:00Z");
    // The table shows both.
    let out = home.ok(&["sessions", "list"]).stdout;
    assert!(
        out.contains("onlybackend") && out.contains("resumable"),
        "{out}"
    );
    home.ok(&["sessions", "show", "onlybackend"]);
}

#[test]
fn token_total_defaults_to_input_plus_output() {
    let home = Home::new();
    home.write_session(
        "nototal",
        r#"{"backend": "codex", "token_usage": {"input": 10, "output": 5, "cached": 3}}"#,
    );
    assert_eq!(row(&home.list_json(&[]), "nototal")["tokens"], 15);
}

// ----- the index ------------------------------------------------------------------------------

fn assert_rebuilt_quietly_with_one_line(home: &Home) {
    let run = home.ok(&["sessions", "list", "--json"]);
    let lines = run.stderr_lines();
    assert_eq!(lines.len(), 1, "one line on stderr, got:\n{}", run.stderr);
    assert!(lines[0].contains("rebuilt"), "{}", lines[0]);
    let ids = run.ids();
    assert_eq!(ids, STANDARD_ORDER, "everything is back");
    // Once rebuilt, quiet again, and consistent.
    let run = home.ok(&["sessions", "list", "--json"]);
    assert_eq!(run.stderr, "");
    home.ok(&["sessions", "reindex", "--check"]);
    assert_eq!(
        home.list_ids(&["--tag", "project-x", "--tag", "bugfix"]),
        ["pqr678", "ghi789"]
    );
    assert_eq!(home.list_ids(&["--search", "auth"]), ["abc123", "jkl012"]);
}

#[test]
fn deleted_index_is_rebuilt_with_one_line_on_stderr() {
    let home = standard_home();
    home.remove_index(); // rm sessions/.index.db*
    assert_rebuilt_quietly_with_one_line(&home);
}

#[test]
fn deleted_index_file_with_leftover_journal_is_rebuilt() {
    let home = standard_home();
    home.ok(&["sessions", "tag", "abc123", "fresh"]);
    std::fs::remove_file(home.index_path()).unwrap(); // rm sessions/.index.db, not its -journal
    assert_rebuilt_quietly_with_one_line(&home);
    assert_eq!(home.list_ids(&["--tag", "fresh"]), ["abc123"]);
}

#[test]
fn garbage_index_is_rebuilt_with_one_line_on_stderr() {
    let home = standard_home();
    home.remove_index();
    let garbage: Vec<u8> = (0..16384u32).map(|i| (i * 7 + 13) as u8).collect();
    std::fs::write(home.index_path(), &garbage).unwrap();
    assert_rebuilt_quietly_with_one_line(&home);
}

#[test]
fn garbage_index_beside_its_old_journal_still_answers_correctly() {
    let home = standard_home();
    home.ok(&["sessions", "tag", "ghi789", "late"]);
    // Overwrite only .index.db; its (empty, TRUNCATE-mode) -journal stays and must not be
    // replayed into the garbage: clinvk finds the file unusable and rebuilds it, saying so once.
    std::fs::write(
        home.index_path(),
        b"this is not an SQLite database, just some bytes\n".repeat(200),
    )
    .unwrap();
    let run = home.ok(&["sessions", "list", "--json"]);
    assert!(run.stderr_lines().len() <= 1, "{}", run.stderr);
    assert!(run.stderr.contains("rebuilt"), "{}", run.stderr);
    let ids = run.ids();
    assert_eq!(ids, STANDARD_ORDER);
    assert_eq!(home.list_ids(&["--tag", "late"]), ["ghi789"]);
    home.ok(&["sessions", "tag", "abc123", "after"]);
    assert_eq!(home.list_ids(&["--tag", "after"]), ["abc123"]);
    home.ok(&["sessions", "reindex", "--check"]);
}

#[test]
fn empty_index_file_is_rebuilt() {
    let home = standard_home();
    home.remove_index();
    std::fs::write(home.index_path(), b"").unwrap();
    assert_rebuilt_quietly_with_one_line(&home);
}

#[test]
fn index_of_an_unknown_schema_is_rebuilt() {
    let home = standard_home();
    {
        let conn = rusqlite::Connection::open(home.index_path()).unwrap();
        conn.pragma_update(None, "user_version", 999).unwrap();
    }
    assert_rebuilt_quietly_with_one_line(&home);
}

#[test]
fn index_with_a_dropped_table_is_rebuilt() {
    let home = standard_home();
    {
        let conn = rusqlite::Connection::open(home.index_path()).unwrap();
        conn.execute_batch("DROP TABLE session_tags").unwrap();
    }
    // Healed transparently: rebuilt with one line on stderr, the right rows. Then `reindex`
    // must restore everything too.
    let run = home.ok(&["sessions", "list", "--json", "--tag", "bugfix"]);
    assert_eq!(run.json().as_array().unwrap().len(), 3, "{}", run.stdout);
    assert_eq!(run.stderr_lines().len(), 1, "{}", run.stderr);
    assert!(run.stderr.contains("rebuilt"), "{}", run.stderr);
    home.ok(&["sessions", "reindex"]);
    assert_eq!(
        home.list_ids(&["--tag", "bugfix"]),
        ["abc123", "pqr678", "ghi789"]
    );
    home.ok(&["sessions", "reindex", "--check"]);
}

/// Every file in `dir`, by name, with its bytes (to show another program's files untouched).
fn files_in(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let bytes = std::fs::read(e.path()).unwrap();
            (e.file_name().to_string_lossy().into_owned(), bytes)
        })
        .collect();
    files.sort();
    files
}

/// The issue's report: a symlinked `.index.db` had its journal mode rewritten and a `-journal`
/// made beside another program's database. Now it is never opened: moved aside, untouched.
#[test]
fn a_symlinked_index_is_never_opened_but_moved_aside() {
    let home = standard_home();
    let other = tempfile::tempdir().unwrap();
    let theirs = other.path().join("app.db");
    {
        let conn = rusqlite::Connection::open(&theirs).unwrap();
        conn.execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1);")
            .unwrap();
    }
    let before = files_in(other.path());
    home.remove_index();
    std::os::unix::fs::symlink(&theirs, home.index_path()).unwrap();

    let run = home.ok(&["sessions", "list", "--json"]);
    assert_eq!(run.ids(), STANDARD_ORDER);
    let lines = run.stderr_lines();
    assert_eq!(lines.len(), 1, "{}", run.stderr);
    assert!(lines[0].contains("symbolic link"), "{}", lines[0]);
    assert!(lines[0].contains(".index.db.aside-1"), "{}", lines[0]);
    assert_eq!(
        files_in(other.path()),
        before,
        "their database is untouched"
    );
    let aside = home.sessions_dir().join(".index.db.aside-1");
    assert_eq!(std::fs::read_link(&aside).unwrap(), theirs);
    assert!(std::fs::symlink_metadata(home.index_path())
        .unwrap()
        .file_type()
        .is_file());
    home.ok(&["sessions", "tag", "abc123", "after"]);
    assert_eq!(home.list_ids(&["--tag", "after"]), ["abc123"]);
    assert_eq!(files_in(other.path()), before);
    home.ok(&["sessions", "reindex", "--check"]);
}

#[test]
fn a_symlinked_index_journal_is_never_written_through() {
    let home = standard_home();
    let other = tempfile::tempdir().unwrap();
    let precious = other.path().join("precious.txt");
    std::fs::write(&precious, b"not yours\n").unwrap();
    let journal = home.sessions_dir().join(".index.db-journal");
    let _ = std::fs::remove_file(&journal);
    std::os::unix::fs::symlink(&precious, &journal).unwrap();

    let run = home.ok(&["sessions", "tag", "abc123", "x"]);
    assert!(run.stderr.contains("symbolic link"), "{}", run.stderr);
    assert_eq!(std::fs::read(&precious).unwrap(), b"not yours\n");
    assert!(std::fs::symlink_metadata(&journal).unwrap().is_file());
    assert_eq!(home.list_ids(&["--tag", "x"]), ["abc123"]);
    home.ok(&["sessions", "reindex", "--check"]);
}

/// `.index.db` or its journal being a directory stopped every command, `reindex` included.
#[test]
fn an_index_or_journal_that_is_a_directory_is_moved_aside_and_rebuilt() {
    for name in [".index.db", ".index.db-journal"] {
        for first in [
            &["sessions", "list", "--json"][..],
            &["sessions", "reindex"][..],
        ] {
            let home = standard_home();
            let path = home.sessions_dir().join(name);
            let _ = std::fs::remove_file(&path);
            std::fs::create_dir(&path).unwrap();
            std::fs::write(path.join("inside"), b"kept").unwrap();

            let run = home.ok(first);
            assert!(
                run.stderr.contains("directory") || run.stdout.contains("aside"),
                "{name}, {first:?}: {}{}",
                run.stdout,
                run.stderr
            );
            let aside = home.sessions_dir().join(format!("{name}.aside-1"));
            assert_eq!(std::fs::read(aside.join("inside")).unwrap(), b"kept");
            assert_eq!(home.list_ids(&[]), STANDARD_ORDER, "{name}, {first:?}");
            let quiet = home.ok(&["sessions", "list", "--json"]);
            assert_eq!(quiet.stderr, "", "{name}, {first:?}");
            home.ok(&["sessions", "reindex", "--check"]);
        }
    }
}

#[test]
fn resetting_the_store_as_the_guide_says_gives_an_empty_list() {
    let home = standard_home();
    // mv ~/.clinvk/sessions ~/.clinvk/sessions.backup && mkdir ~/.clinvk/sessions
    let backup = home.path().join("sessions.backup");
    std::fs::rename(home.sessions_dir(), &backup).unwrap();
    std::fs::create_dir(home.sessions_dir()).unwrap();

    let run = home.ok(&["sessions", "list", "--json"]);
    assert_eq!(run.json(), json!([]));
    assert_eq!(run.stderr, "", "an empty store is not an error");
    let run = home.ok(&["sessions", "list"]);
    assert_eq!(run.stdout, "");
    assert!(!run.stderr.contains("clinvk:"), "{}", run.stderr);
    home.run(&["sessions", "show", "abc123"]).fails_with(3);
    // The backup is untouched and can be put back.
    assert!(std::fs::read_dir(&backup).unwrap().count() >= 6);
    std::fs::remove_dir_all(home.sessions_dir()).unwrap();
    std::fs::rename(&backup, home.sessions_dir()).unwrap();
    assert_eq!(home.list_ids(&[]), STANDARD_ORDER);
    home.ok(&["sessions", "reindex", "--check"]);
}

// ----- permissions ----------------------------------------------------------------------------

#[test]
fn everything_clinvk_creates_is_private() {
    let home = Home::new();
    // A home that does not exist yet: clinvk creates it.
    let clinvk_home = home.path().join("new-home");
    let run = Run::from_output(
        home.cmd()
            .env("CLINVK_HOME", &clinvk_home)
            .args(["sessions", "list", "--json"])
            .output()
            .unwrap(),
    )
    .success();
    assert_eq!(run.json(), json!([]));
    assert_eq!(mode(&clinvk_home), 0o700);
    assert_eq!(mode(&clinvk_home.join("sessions")), 0o700);

    // Session files rewritten by clinvk, the lock and the index files: 0600.
    let sessions = clinvk_home.join("sessions");
    std::fs::write(
        sessions.join("handmade.json"),
        session("handmade").to_json(),
    )
    .unwrap();
    std::fs::set_permissions(
        sessions.join("handmade.json"),
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .unwrap();
    Run::from_output(
        home.cmd()
            .env("CLINVK_HOME", &clinvk_home)
            .args(["sessions", "tag", "handmade", "private"])
            .output()
            .unwrap(),
    )
    .success();
    assert_eq!(mode(&sessions.join("handmade.json")), 0o600);
    let mut checked = 0;
    for entry in std::fs::read_dir(&sessions).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.file_type().unwrap().is_dir() {
            // Where a rebuild builds the new index, and its lock.
            assert_eq!(name, ".index-rebuild");
            assert_eq!(mode(&entry.path()), 0o700, "{name}");
            for inner in std::fs::read_dir(entry.path()).unwrap() {
                let inner = inner.unwrap().path();
                assert_eq!(mode(&inner), 0o600, "{}", inner.display());
            }
        } else {
            assert_eq!(mode(&entry.path()), 0o600, "{name}");
        }
        checked += 1;
    }
    assert!(checked >= 3, "session file, .lock and .index.db at least");
    assert!(sessions.join(".lock").exists());
    assert!(sessions.join(".index.db").exists());

    // config.yaml written by `config set`.
    Run::from_output(
        home.cmd()
            .env("CLINVK_HOME", &clinvk_home)
            .args(["config", "set", "session.retention_days", "9"])
            .output()
            .unwrap(),
    )
    .success();
    assert_eq!(mode(&clinvk_home.join("config.yaml")), 0o600);
}

#[test]
fn a_sessions_dir_made_with_mkdir_is_made_private() {
    let home = Home::new();
    std::fs::create_dir(home.sessions_dir()).unwrap();
    std::fs::set_permissions(
        home.sessions_dir(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    home.warm();
    assert_eq!(mode(&home.sessions_dir()), 0o700);
}

#[test]
fn thousands_of_files_added_by_hand_at_once() {
    // Enough new files for the index to take its bulk-load path on an existing index, and
    // enough search matches for the "many matches" search strategy.
    let home = standard_home();
    let n = 3100;
    for i in 0..n {
        let parity = if i % 2 == 0 { "even" } else { "odd" };
        home.add(
            &session(&format!("bulk{i:04}"))
                .prompt(&format!("bulk prompt number {i:04} about Widgets"))
                .tags(&["bulk", parity])
                .used_ago(Duration::days(2) + Duration::minutes(i)),
        );
    }
    // Meanwhile an old file is replaced and another removed.
    let staging = home.path().join("abc123.json");
    std::fs::write(
        &staging,
        session("abc123").prompt("fix the auth bug again").to_json(),
    )
    .unwrap();
    std::fs::rename(&staging, home.session_path("abc123")).unwrap();
    std::fs::remove_file(home.session_path("def456")).unwrap();

    let run = home.ok(&["sessions", "list", "--json"]);
    assert!(!run.stderr.contains("clinvk: warning"), "{}", run.stderr);
    assert_eq!(run.json().as_array().unwrap().len(), 6 - 1 + n as usize);

    assert_eq!(
        home.list_ids(&["--search", "WIDGETS", "-n", "3"]),
        ["bulk0000", "bulk0001", "bulk0002"]
    );
    assert_eq!(
        home.list_ids(&["--search", "widgets", "--tag", "odd", "-n", "2", "--offset", "1"]),
        ["bulk0003", "bulk0005"]
    );
    assert_eq!(home.list_ids(&["--search", "number 3099"]), ["bulk3099"]);
    assert_eq!(home.list_ids(&["--search", "auth"]), ["abc123", "jkl012"]);
    assert!(home.list_ids(&["--search", "implement user"]).is_empty());
    assert_eq!(
        home.list_ids(&["--tag", "bulk", "--tag", "even"]).len(),
        (n / 2) as usize
    );
    assert_eq!(
        home.list_ids(&["--tag", "project-x"]),
        ["pqr678", "ghi789", "mno345"]
    );
    assert_eq!(
        home.list_ids(&["--tag", "project-x", "--tag", "feature-y"]),
        Vec::<String>::new()
    );
    assert_eq!(home.list_ids(&["--backend", "gemini"]), ["ghi789"]);
    home.ok(&["sessions", "reindex", "--check"]);
}

#[test]
fn reindex_removes_temp_files_of_interrupted_writes_and_nothing_else() {
    let home = standard_home();
    let dir = home.sessions_dir();
    // What a write killed between creating its temp file and renaming it leaves behind.
    std::fs::write(dir.join(".abc123.json.4242.deadbeef.tmp"), "{\"half\":").unwrap();
    // Not ours: a user's hidden note and a session file are left alone.
    std::fs::write(dir.join(".notes.tmp"), "mine").unwrap();
    let before = home.list_ids(&[]);
    let run = home.ok(&["sessions", "reindex"]);
    assert!(
        run.stdout.contains("Removed 1 temp file(s)"),
        "{}",
        run.stdout
    );
    assert!(!dir.join(".abc123.json.4242.deadbeef.tmp").exists());
    assert!(dir.join(".notes.tmp").exists());
    assert_eq!(home.list_ids(&[]), before);
    let again = home.ok(&["sessions", "reindex", "--json"]).json();
    assert_eq!(again["removed_temp_files"], 0);
}

/// A `*.json` whose name is not UTF-8 is reported like any invalid file, not skipped in silence.
#[cfg(target_os = "linux")]
#[test]
fn a_file_name_that_is_not_utf8_is_reported() {
    use std::os::unix::ffi::OsStrExt;
    let home = standard_home();
    let odd = home
        .sessions_dir()
        .join(std::ffi::OsStr::from_bytes(b"caf\xe9.json"));
    std::fs::write(&odd, session("x").to_json()).unwrap();
    let run = home.ok(&["sessions", "list"]);
    assert!(
        run.stderr
            .contains("skipped caf\\xe9.json: the file name is not a valid session id"),
        "{}",
        run.stderr
    );
    let run = home.ok(&["sessions", "reindex"]);
    assert!(run.stdout.contains("caf\\xe9.json"), "{}", run.stdout);
    assert!(odd.exists(), "never deleted");
}

/// A deletion of several sessions that stopped half-way (a crash, a kill) is finished by the
/// next command: all or nothing.
#[test]
fn an_unfinished_deletion_is_finished_by_the_next_command() {
    let home = standard_home();
    let journal = home.sessions_dir().join(".delete-journal");
    // As a `sessions delete abc123 def456` killed after its first unlink leaves it.
    std::fs::write(&journal, "abc123\ndef456\n").unwrap();
    std::fs::remove_file(home.session_path("abc123")).unwrap();
    let ids = home.list_ids(&[]);
    assert!(
        !ids.contains(&"abc123".to_string()) && !ids.contains(&"def456".to_string()),
        "{ids:?}"
    );
    assert!(!home.session_exists("def456"));
    assert!(!journal.exists());
    assert_eq!(ids.len(), STANDARD_ORDER.len() - 2);
    home.ok(&["sessions", "reindex", "--check"]);
    // A deletion that finishes leaves no journal behind.
    home.ok(&["sessions", "delete", "ghi789", "jkl012"]);
    assert!(!journal.exists());
    assert_eq!(home.list_ids(&[]).len(), STANDARD_ORDER.len() - 4);
    home.ok(&["sessions", "reindex", "--check"]);
}

/// A file with a time chrono reads but cannot shift (a year of ±262142) is invalid like any
/// other: no command panics on it (they all did, in `turn_rows`'s day arithmetic).
#[test]
fn times_out_of_range_make_a_file_invalid_not_a_panic() {
    for (name, text) in [
        (
            "edge0001",
            r#"{"id":"edge0001","backend":"claude","turns":[{"at":"-262143-01-02T00:00:00Z"}]}"#,
        ),
        (
            "edge0002",
            r#"{"id":"edge0002","backend":"codex","turns":[{"at":"+262142-12-31T23:59:59Z"}]}"#,
        ),
    ] {
        let home = standard_home();
        home.write_session(name, text);
        for args in [
            vec!["sessions", "list"],
            vec!["sessions", "stats", "--by", "week"],
            vec!["sessions", "reindex"],
            vec!["sessions", "tag", "abc123", "t"],
            vec!["sessions", "clean", "--dry-run", "--older-than", "1d"],
        ] {
            let run = Run::from_output(
                home.cmd()
                    .env("TZ", "Asia/Tokyo")
                    .args(&args)
                    .output()
                    .unwrap(),
            );
            assert_eq!(run.code, 0, "{args:?}: {}", run.stderr);
            assert!(!run.stderr.contains("panicked"), "{args:?}: {}", run.stderr);
        }
        let run = home.run(&["sessions", "show", name]).fails_with(1);
        assert!(
            run.error_line()
                .contains("is not an RFC 3339 time with a four-digit year"),
            "{}",
            run.stderr
        );
        assert!(home.session_exists(name), "never deleted");
    }
}

/// A session file bigger than 32 MiB is reported invalid, not read: reading one cost several
/// times its size in memory in every command.
#[test]
fn a_huge_session_file_is_refused_with_its_size() {
    let home = standard_home();
    let prompt = "x".repeat(33 << 20);
    home.write_session(
        "huge1",
        &format!(r#"{{"id":"huge1","backend":"claude","prompt":"{prompt}"}}"#),
    );
    let run = home.ok(&["sessions", "list"]);
    assert!(
        run.stderr
            .contains("skipped huge1.json: it is 33 MiB, more than a session file may be (32 MiB)"),
        "{}",
        run.stderr
    );
    let run = home.run(&["sessions", "show", "huge1"]).fails_with(1);
    assert!(run.error_line().contains("33 MiB"), "{}", run.stderr);
    assert!(home.session_exists("huge1"), "never deleted");
}
