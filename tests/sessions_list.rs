//! `clinvk sessions list`: the table, newest-first order, every filter, paging and `--json`.

#[macro_use]
#[allow(unused_macros)]
mod common;

use common::*;
use serde_json::{json, Value};

/// Split a table row into its fields at the header's column starts.
fn fields_at(line: &str, starts: &[usize]) -> Vec<String> {
    (0..starts.len())
        .map(|i| {
            let from = starts[i].min(line.len());
            let to = starts.get(i + 1).map_or(line.len(), |&e| e.min(line.len()));
            line[from..to].trim().to_string()
        })
        .collect()
}

const HEADER: [&str; 6] = [
    "ID",
    "BACKEND",
    "STATUS",
    "LAST USED",
    "TOKENS",
    "TITLE/PROMPT",
];

#[test]
fn table_matches_the_guide_layout_newest_first_with_relative_times() {
    let home = standard_home();
    let run = home.ok(&["sessions", "list"]);
    assert_eq!(
        run.stderr, "",
        "nothing but the table: stderr must be empty"
    );
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 7, "header + 6 rows:\n{}", run.stdout);

    // Header: the guide's columns, separated by at least two spaces.
    let header = lines[0];
    let names: Vec<&str> = header
        .split("  ")
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    assert_eq!(names, HEADER, "header: {header:?}");
    let starts: Vec<usize> = HEADER.iter().map(|h| header.find(h).unwrap()).collect();
    assert_eq!(starts[0], 0);

    let expected = [
        [
            "abc123",
            "claude",
            "active",
            "5 minutes ago",
            "1234",
            "fix the bug in auth.go",
        ],
        [
            "pqr678",
            "claude",
            "completed",
            "30 minutes ago",
            "6912",
            "add tests",
        ],
        [
            "def456",
            "codex",
            "completed",
            "2 hours ago",
            "5678",
            "implement user registration",
        ],
        [
            "ghi789",
            "gemini",
            "active",
            "1 day ago",
            "890",
            "explain algorithm",
        ],
        [
            "jkl012",
            "claude",
            "error",
            "7 days ago",
            "42",
            "Refactor the AUTH middleware",
        ],
        [
            "mno345",
            "codex",
            "created",
            "1 month ago",
            "0",
            "100% coverage for user_id parsing with \"quotes\"",
        ],
    ];
    for (line, want) in lines[1..].iter().zip(expected) {
        // Columns are aligned: each field starts exactly at its header's column, after a gap.
        for &s in &starts[1..] {
            assert_eq!(
                &line[s - 2..s],
                "  ",
                "columns must be separated by 2+ spaces: {line:?}"
            );
            assert_ne!(
                &line[s..s + 1],
                " ",
                "field must start at its column: {line:?}"
            );
        }
        assert_eq!(fields_at(line, &starts), want, "row {line:?}");
        assert_eq!(*line, line.trim_end(), "no trailing spaces");
    }
}

#[test]
fn relative_times_in_the_table() {
    let home = Home::new();
    home.add_all(&[
        session("s30m").used_ago(chrono::Duration::minutes(30)),
        session("s1h").used_ago(chrono::Duration::hours(1)),
        session("s3d").used_ago(chrono::Duration::days(3)),
        session("s10s").used_ago(chrono::Duration::seconds(10)),
        session("s1y").used_ago(chrono::Duration::days(400)),
    ]);
    let out = home.ok(&["sessions", "list"]).stdout;
    let row = |id: &str| out.lines().find(|l| l.starts_with(id)).unwrap().to_string();
    assert!(row("s30m ").contains("30 minutes ago"), "{out}");
    assert!(row("s1h ").contains("1 hour ago"), "{out}");
    assert!(row("s3d ").contains("3 days ago"), "{out}");
    assert!(row("s10s ").contains("just now"), "{out}");
    assert!(row("s1y ").contains("1 year ago"), "{out}");
}

#[test]
fn json_rows_carry_every_documented_field() {
    let home = standard_home();
    let run = home.ok(&["sessions", "list", "--json"]);
    assert_eq!(run.stderr, "");
    let rows = run.json();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 6);
    let ids: Vec<&str> = rows.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids, STANDARD_ORDER);

    let abc = &rows[0];
    for key in [
        "id",
        "backend",
        "status",
        "model",
        "created_at",
        "last_used_at",
        "last_used",
        "workdir",
        "prompt",
        "tokens",
        "token_usage",
        "tags",
        "backend_session_id",
    ] {
        assert!(abc.get(key).is_some(), "field {key} missing in {abc}");
    }
    assert_eq!(abc["id"], "abc123");
    assert_eq!(abc["backend"], "claude");
    assert_eq!(abc["status"], "active");
    assert_eq!(abc["model"], "claude-opus-4-5-20251101");
    assert_eq!(abc["created_at"], "2025-01-27T10:00:00Z");
    assert_eq!(abc["last_used_at"], "2025-01-27T11:55:00Z");
    assert_eq!(abc["last_used"], "2025-01-27T11:55:00Z");
    assert_eq!(abc["workdir"], "/projects/myapp");
    assert_eq!(abc["prompt"], "fix the bug in auth.go");
    assert_eq!(abc["tokens"], 1234);
    assert_eq!(
        abc["token_usage"],
        json!({"input": 1000, "output": 234, "cached": 500, "total": 1234})
    );
    assert_eq!(abc["tags"], json!(["bugfix", "auth"]));
    assert_eq!(abc["backend_session_id"], "sess_abc123");

    // A session without a backend session id says so with null, not a missing key.
    let jkl = rows.iter().find(|r| r["id"] == "jkl012").unwrap();
    assert_eq!(jkl["backend_session_id"], Value::Null);
    assert_eq!(jkl["tags"], json!([]));
}

#[test]
fn empty_store_json_is_an_empty_array_and_table_is_empty() {
    let home = Home::new();
    let run = home.ok(&["sessions", "list", "--json"]);
    assert_eq!(run.stdout.trim(), "[]");
    assert_eq!(run.stderr, "");
    let run = home.ok(&["sessions", "list"]);
    assert_eq!(run.stdout, "", "no rows, no header on stdout");
    assert!(!run.stderr.contains("clinvk:"), "no error: {}", run.stderr);
}

#[test]
fn filter_by_backend() {
    let home = standard_home();
    assert_eq!(
        home.list_ids(&["--backend", "claude"]),
        ["abc123", "pqr678", "jkl012"]
    );
    assert_eq!(home.list_ids(&["--backend", "codex"]), ["def456", "mno345"]);
    assert_eq!(home.list_ids(&["-b", "gemini"]), ["ghi789"]);
    // The table filters the same way.
    let out = home.ok(&["sessions", "list", "--backend", "codex"]).stdout;
    assert_eq!(out.lines().count(), 3, "{out}");
    assert!(out.lines().skip(1).all(|l| l.contains("codex")), "{out}");
}

#[test]
fn filter_by_status() {
    let home = standard_home();
    assert_eq!(home.list_ids(&["--status", "active"]), ["abc123", "ghi789"]);
    assert_eq!(
        home.list_ids(&["--status", "completed"]),
        ["pqr678", "def456"]
    );
    assert_eq!(home.list_ids(&["--status", "error"]), ["jkl012"]);
    assert_eq!(home.list_ids(&["--status", "created"]), ["mno345"]);
}

#[test]
fn filter_by_tags_is_an_and() {
    let home = standard_home();
    assert_eq!(
        home.list_ids(&["--tag", "project-x"]),
        ["pqr678", "def456", "ghi789", "mno345"]
    );
    assert_eq!(
        home.list_ids(&["--tag", "project-x", "--tag", "bugfix"]),
        ["pqr678", "ghi789"]
    );
    assert_eq!(
        home.list_ids(&["--tag", "bugfix", "--tag", "project-x", "--tag", "urgent"]),
        ["pqr678"]
    );
    assert!(home
        .list_ids(&["--tag", "auth", "--tag", "urgent"])
        .is_empty());
    assert!(home.list_ids(&["--tag", "nobody-has-this"]).is_empty());
    // The same tag twice is still that tag.
    assert_eq!(
        home.list_ids(&["--tag", "auth", "--tag", "auth"]),
        ["abc123"]
    );
    // Tags combine with other filters.
    assert_eq!(
        home.list_ids(&["--tag", "project-x", "--backend", "codex"]),
        ["def456", "mno345"]
    );
    assert_eq!(
        home.list_ids(&["--tag", "project-x", "--since", "2025-01-27"]),
        ["pqr678", "def456"]
    );
}

#[test]
fn filter_by_workdir_and_here() {
    let home = Home::new();
    let proj = home.path().join("proj");
    let other = home.path().join("other");
    std::fs::create_dir_all(proj.join("sub")).unwrap();
    std::fs::create_dir_all(&other).unwrap();
    let proj_s = std::fs::canonicalize(&proj).unwrap().display().to_string();
    let other_s = std::fs::canonicalize(&other).unwrap().display().to_string();
    let sub_s = format!("{proj_s}/sub");
    home.add_all(&[
        session("inproj1")
            .workdir(&proj_s)
            .used_ago(chrono::Duration::minutes(1)),
        session("inproj2")
            .workdir(&proj_s)
            .used_ago(chrono::Duration::minutes(2)),
        session("insub")
            .workdir(&sub_s)
            .used_ago(chrono::Duration::minutes(3)),
        session("inother")
            .workdir(&other_s)
            .used_ago(chrono::Duration::minutes(4)),
    ]);

    // --workdir DIR, absolute.
    assert_eq!(
        home.list_ids(&["--workdir", &proj_s]),
        ["inproj1", "inproj2"]
    );
    // --workdir DIR, relative to the current directory (the home here).
    assert_eq!(home.list_ids(&["--workdir", "other"]), ["inother"]);
    assert_eq!(home.list_ids(&["--workdir", "proj/sub"]), ["insub"]);

    // --here: the process's current directory.
    let run = Run::from_output(
        home.cmd()
            .current_dir(&proj)
            .args(["sessions", "list", "--json", "--here"])
            .output()
            .unwrap(),
    )
    .success();
    let ids = run.ids();
    assert_eq!(
        ids,
        ["inproj1", "inproj2"],
        "only this directory, not subdirectories"
    );

    let run = Run::from_output(
        home.cmd()
            .current_dir(proj.join("sub"))
            .args(["sessions", "list", "--here"])
            .output()
            .unwrap(),
    )
    .success();
    assert_eq!(run.stdout.lines().count(), 2, "{}", run.stdout);
    assert!(run.stdout.lines().nth(1).unwrap().starts_with("insub "));

    // --here and --workdir together make no sense.
    home.run(&["sessions", "list", "--here", "--workdir", "/tmp"])
        .fails_with(2);
}

#[test]
fn since_and_until_accept_every_documented_form() {
    let home = standard_home();
    // YYYY-MM-DD: a bare day is its start for --since ...
    assert_eq!(
        home.list_ids(&["--since", "2025-01-27"]),
        ["abc123", "pqr678", "def456"]
    );
    // ... YYYYMMDD is the same day ...
    assert_eq!(
        home.list_ids(&["--since", "20250127"]),
        ["abc123", "pqr678", "def456"]
    );
    // ... and its end for --until.
    assert_eq!(
        home.list_ids(&["--until", "2025-01-26"]),
        ["ghi789", "jkl012", "mno345"]
    );
    assert_eq!(
        home.list_ids(&["--until", "20250126"]),
        ["ghi789", "jkl012", "mno345"]
    );
    assert_eq!(
        home.list_ids(&["--since", "2025-01-26", "--until", "2025-01-26"]),
        ["ghi789"]
    );
    // RFC 3339, in UTC or with an offset.
    assert_eq!(
        home.list_ids(&["--since", "2025-01-27T11:00:00Z"]),
        ["abc123", "pqr678"]
    );
    assert_eq!(
        home.list_ids(&["--since", "2025-01-27T06:00:00-05:00"]),
        ["abc123", "pqr678"]
    );
    assert_eq!(
        home.list_ids(&["--until", "2025-01-27T10:00:00Z"]),
        ["def456", "ghi789", "jkl012", "mno345"],
        "an RFC 3339 --until includes that instant"
    );
    // Relative ages, counted back from now; --since is inclusive.
    assert_eq!(
        home.list_ids(&["--since", "24h"]),
        ["abc123", "pqr678", "def456", "ghi789"]
    );
    assert_eq!(home.list_ids(&["--since", "1h"]), ["abc123", "pqr678"]);
    assert_eq!(
        home.list_ids(&["--since", "7d"]),
        ["abc123", "pqr678", "def456", "ghi789", "jkl012"]
    );
    assert_eq!(home.list_ids(&["--until", "6d"]), ["jkl012", "mno345"]);
    assert_eq!(
        home.list_ids(&["--since", "30d", "--until", "2d"]),
        ["jkl012"]
    );
}

#[test]
fn bare_dates_are_days_in_the_local_time_zone() {
    let home = Home::new();
    // 03:00 UTC on the 27th is still the 26th in New York (UTC-5).
    home.add(&session("early").last_used("2025-01-27T03:00:00Z"));
    home.warm();
    assert_eq!(home.list_ids(&["--since", "2025-01-27"]), ["early"]);
    let run = Run::from_output(
        home.cmd()
            .env("TZ", "EST5")
            .args(["sessions", "list", "--json", "--since", "2025-01-27"])
            .output()
            .unwrap(),
    )
    .success();
    assert_eq!(run.json(), json!([]));
    let run = Run::from_output(
        home.cmd()
            .env("TZ", "EST5")
            .args(["sessions", "list", "--json", "--until", "2025-01-26"])
            .output()
            .unwrap(),
    )
    .success();
    assert_eq!(run.json()[0]["id"], "early");
}

#[test]
fn search_is_a_case_insensitive_substring_of_the_prompt() {
    let home = standard_home();
    assert_eq!(home.list_ids(&["--search", "auth"]), ["abc123", "jkl012"]);
    assert_eq!(home.list_ids(&["--search", "AUTH"]), ["abc123", "jkl012"]);
    assert_eq!(home.list_ids(&["--search", "Auth.Go"]), ["abc123"]);
    assert_eq!(
        home.list_ids(&["--search", "user registration"]),
        ["def456"]
    );
    assert!(home.list_ids(&["--search", "nothing like this"]).is_empty());
    // Substring, not word: "plement" is inside "implement".
    assert_eq!(home.list_ids(&["--search", "plement"]), ["def456"]);
    // Search combines with other filters.
    assert_eq!(
        home.list_ids(&["--search", "auth", "--status", "error"]),
        ["jkl012"]
    );
    // An empty search is no filter.
    assert_eq!(home.list_ids(&["--search", ""]).len(), 6);
}

#[test]
fn search_with_one_or_two_characters() {
    let home = standard_home();
    assert_eq!(home.list_ids(&["--search", "te"]), ["pqr678", "mno345"]);
    assert_eq!(home.list_ids(&["--search", "TE"]), ["pqr678", "mno345"]);
    // "fix the bug ...", "explain algorithm".
    assert_eq!(home.list_ids(&["--search", "X"]), ["abc123", "ghi789"]);
    assert_eq!(home.list_ids(&["--search", "Q"]), ["mno345"]);
    assert!(home.list_ids(&["--search", "zq"]).is_empty());
}

#[test]
fn search_treats_percent_underscore_and_quotes_literally() {
    let home = standard_home();
    // `%` and `_` are LIKE wildcards; they must match only themselves.
    assert_eq!(home.list_ids(&["--search", "%"]), ["mno345"]);
    assert_eq!(home.list_ids(&["--search", "_"]), ["mno345"]);
    assert!(home.list_ids(&["--search", "%%"]).is_empty());
    assert!(home.list_ids(&["--search", "__"]).is_empty());
    assert_eq!(home.list_ids(&["--search", "100%"]), ["mno345"]);
    assert_eq!(home.list_ids(&["--search", "user_id"]), ["mno345"]);
    assert!(home.list_ids(&["--search", "user%id"]).is_empty());
    assert!(home.list_ids(&["--search", "a_d"]).is_empty());
    // Double quotes are plain characters too (FTS phrase syntax must not leak).
    assert_eq!(home.list_ids(&["--search", "\""]), ["mno345"]);
    assert_eq!(home.list_ids(&["--search", "\"quotes\""]), ["mno345"]);
    assert_eq!(home.list_ids(&["--search", "with \"q"]), ["mno345"]);
    assert!(home.list_ids(&["--search", "\"auth"]).is_empty());
    // Other FTS operators as plain text.
    for text in ["auth*", "NEAR(auth)", "auth OR tests", "-auth", "a:b", "(x"] {
        let arg = format!("--search={text}");
        let run = home.ok(&["sessions", "list", "--json", &arg]);
        assert_eq!(run.json(), json!([]), "--search {text:?}");
    }
}

#[test]
fn limit_and_offset_page_through_newest_first() {
    let home = standard_home();
    assert_eq!(home.list_ids(&["--limit", "2"]), ["abc123", "pqr678"]);
    assert_eq!(home.list_ids(&["-n", "2"]), ["abc123", "pqr678"]);
    assert_eq!(
        home.list_ids(&["--limit", "2", "--offset", "2"]),
        ["def456", "ghi789"]
    );
    assert_eq!(home.list_ids(&["--offset", "5"]), ["mno345"]);
    assert!(home.list_ids(&["--offset", "6"]).is_empty());
    assert!(home.list_ids(&["--limit", "0"]).is_empty());
    assert_eq!(home.list_ids(&["--limit", "100"]).len(), 6);
    // The table honours --limit too: header + 1 row.
    let out = home.ok(&["sessions", "list", "-n", "1"]).stdout;
    assert_eq!(out.lines().count(), 2, "{out}");
    assert!(out.lines().nth(1).unwrap().starts_with("abc123 "));
}

#[test]
fn combined_filters_from_the_guide() {
    let home = standard_home();
    assert_eq!(
        home.list_ids(&["--backend", "claude", "--status", "active", "--limit", "5"]),
        ["abc123"]
    );
    assert_eq!(
        home.list_ids(&[
            "--backend",
            "claude",
            "--tag",
            "bugfix",
            "--workdir",
            "/projects/myapp",
            "--since",
            "24h",
            "--search",
            "tests",
        ]),
        ["pqr678"]
    );
}

#[test]
fn ls_is_an_alias_of_list() {
    let home = standard_home();
    let a = home.ok(&["sessions", "ls", "--json"]).stdout;
    let b = home.ok(&["sessions", "list", "--json"]).stdout;
    assert_eq!(a, b);
}

#[test]
fn long_and_multiline_prompts_are_one_table_line() {
    let home = Home::new();
    let long = "word ".repeat(100);
    home.add(&session("long1").prompt(&format!("first line\nsecond line\n{long}")));
    home.add(
        &session("long2")
            .prompt(&long)
            .used_ago(chrono::Duration::hours(2)),
    );
    let out = home.ok(&["sessions", "list"]).stdout;
    assert_eq!(out.lines().count(), 3, "{out}");
    assert!(out.contains("first line"));
    assert!(!out.contains("second line"));
    // The full prompt is still in the JSON.
    let rows = home.list_json(&[]);
    assert_eq!(rows[1]["prompt"], long.as_str());
}

#[test]
fn search_folds_non_ascii_case_for_short_terms_too() {
    let home = Home::new();
    home.add(&session("eclair").prompt("Éclair recipe for ÜBER fans"));
    home.warm();
    // Three or more characters: case folded across Unicode.
    assert_eq!(home.list_ids(&["--search", "écl"]), ["eclair"]);
    assert_eq!(home.list_ids(&["--search", "über"]), ["eclair"]);
    // One or two characters must behave the same.
    assert_eq!(home.list_ids(&["--search", "éc"]), ["eclair"]);
    assert_eq!(home.list_ids(&["--search", "ü"]), ["eclair"]);
}

/// Sessions last used at the same instant come by id, the same way after a rebuild, so that
/// `--offset` paging across a rebuild neither repeats nor skips a row.
#[test]
fn ties_are_ordered_by_id_and_stay_so_across_rebuilds() {
    let home = Home::new();
    // Names written out of order, so that the rebuild's insertion order is not the answer.
    let ids: Vec<String> = (0..40).map(|i| format!("tie{:02}", (i * 7) % 40)).collect();
    for id in &ids {
        home.add(&session(id).last_used("2025-01-27T10:00:00Z").tags(&["t"]));
    }
    let mut want = ids.clone();
    want.sort();
    want.reverse();
    for args in [vec![], vec!["--tag", "t"]] {
        let pages = |home: &Home| -> Vec<String> {
            (0..4)
                .flat_map(|page| {
                    let offset = (page * 10).to_string();
                    let mut all = args.clone();
                    all.extend(["-n", "10", "--offset", offset.as_str()]);
                    home.list_ids(&all)
                })
                .collect()
        };
        assert_eq!(pages(&home), want, "{args:?}");
        home.ok(&["sessions", "reindex"]);
        assert_eq!(pages(&home), want, "{args:?} after a rebuild");
    }
}

/// The report: prompts, models, working directories and tags reached the terminal raw
/// (clear screen, window title, right-to-left override). Human output escapes them; `--json`
/// keeps them exact.
#[test]
fn terminal_escapes_in_session_text_are_shown_escaped_and_kept_in_json() {
    let home = Home::new();
    let nasty = session("nasty1")
        .model("m\u{1b}]0;pwned\u{7}")
        .workdir("/tmp/\u{1b}[2J")
        .tags(&["\u{202e}evil"])
        .prompt("hi \u{1b}[31mred\u{9b}1m and\tmore")
        .turns(&[turn(&ago(chrono::Duration::minutes(5)), 10, 5, 0)]);
    home.add(&nasty);
    home.warm();
    let raw = |text: &str| {
        text.chars()
            .filter(|c| {
                (c.is_control() && !matches!(c, '\n' | '\t'))
                    || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
            })
            .collect::<String>()
    };
    for args in [
        &["sessions", "list"][..],
        &["sessions", "show", "nasty1"],
        &["sessions", "stats", "--by", "model,tag,workdir"],
    ] {
        let run = home.ok(args);
        assert_eq!(
            raw(&run.stdout),
            "",
            "{args:?} printed raw controls: {:?}",
            run.stdout
        );
        assert!(run.stdout.contains("\\u{1b}"), "{args:?}: {}", run.stdout);
    }
    let show = home.ok(&["sessions", "show", "nasty1"]).stdout;
    assert!(show.contains("\\u{202e}evil"), "{show}");
    assert!(show.contains("and    more"), "tabs kept as spaces: {show}");
    // JSON is exact.
    let row = &home.list_json(&[])[0];
    assert_eq!(row["model"], "m\u{1b}]0;pwned\u{7}");
    assert_eq!(row["tags"][0], "\u{202e}evil");
    let full = home.ok(&["sessions", "show", "nasty1", "--json"]).json();
    assert_eq!(full["workdir"], "/tmp/\u{1b}[2J");
    assert_eq!(full["prompt"], "hi \u{1b}[31mred\u{9b}1m and\tmore");
}
