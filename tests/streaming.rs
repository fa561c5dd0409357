//! `sessions list --json` and `--ndjson` write rows as they are read, a page at a time: the
//! output is the listing (one valid array, or one object per line), the same whichever way it
//! is asked for, across pages, filters and paging; and a reader that stops reading holds no
//! lock, so writes and rebuilds go on meanwhile without a session shown twice or lost.

#[macro_use]
#[allow(unused_macros)]
mod common;

use std::collections::BTreeSet;
use std::io::Read;
use std::process::Stdio;
use std::time::Duration;

use common::*;
use serde_json::Value;

/// More than two pages of the streamed listing (2,000 rows each).
const FILES: usize = 4500;

fn seed(home: &Home) -> Vec<String> {
    let ids: Vec<String> = (0..FILES).map(|i| format!("s{i:05}")).collect();
    for (i, id) in ids.iter().enumerate() {
        // Many sessions share a last use, so that the order within one (by id) matters too.
        home.add(
            &session(id)
                .tags(if i % 4 == 0 { &["quarter"] } else { &[] })
                .backend(["claude", "codex", "gemini"][i % 3])
                .last_used(&format!("2025-02-{:02}T08:{:02}:00Z", 1 + i % 27, i % 7)),
        );
    }
    ids
}

fn ndjson(run: &Run) -> Vec<Value> {
    parse_lines(run.stdout.lines())
}

fn parse_lines<'a>(lines: impl Iterator<Item = &'a str>) -> Vec<Value> {
    lines
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect()
}

/// The ids of `--ndjson` lines, in order.
fn ids_of_lines<'a>(lines: impl Iterator<Item = &'a str>) -> Vec<String> {
    ids_of(&parse_lines(lines))
}

/// `sessions list FORMAT` started, its output left in the pipe for the test to read.
fn listing_under_way(home: &Home, format: &str) -> std::process::Child {
    home.std_cmd()
        .args(["sessions", "list", format])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// What the listing must be, from the files: newest first, then by id, descending.
fn expected(home: &Home, keep: impl Fn(&Value) -> bool) -> Vec<String> {
    let mut rows: Vec<(String, String)> = home
        .session_files()
        .iter()
        .map(|name| home.read_session(name.trim_end_matches(".json")))
        .filter(|s| keep(s))
        .map(|s| {
            (
                s["last_used_at"].as_str().unwrap().to_string(),
                s["id"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    rows.sort();
    rows.reverse();
    rows.into_iter().map(|(_, id)| id).collect()
}

#[test]
fn streamed_json_and_ndjson_are_the_listing_across_pages() {
    let home = Home::new();
    seed(&home);
    let all = expected(&home, |_| true);
    let quarter = expected(&home, |s| s["tags"].to_string().contains("quarter"));
    let codex = expected(&home, |s| s["backend"] == "codex");
    for (args, want) in [
        (vec![], all.clone()),
        (vec!["--tag", "quarter"], quarter),
        (vec!["--backend", "codex"], codex),
        // A page boundary inside the window, and an offset past the first page.
        (
            vec!["-n", "2500", "--offset", "1999"],
            all[1999..4499].to_vec(),
        ),
        (vec!["--offset", "4490"], all[4490..].to_vec()),
        (vec!["--offset", "9999"], vec![]),
    ] {
        let mut json = vec!["sessions", "list", "--json"];
        json.extend(&args);
        let array = home.ok(&json);
        let rows = match array.json() {
            Value::Array(rows) => rows,
            other => panic!("not an array: {other}"),
        };
        assert_eq!(ids_of(&rows), want, "--json {args:?}");
        let mut lines = vec!["sessions", "list", "--ndjson"];
        lines.extend(&args);
        let lines = ndjson(&home.ok(&lines));
        assert_eq!(lines, rows, "--ndjson {args:?} gives the same objects");
    }
    // Nothing listed: still one valid array; no lines at all.
    let none = home.ok(&["sessions", "list", "--json", "--tag", "nobody"]);
    assert_eq!(none.stdout, "[]\n");
    assert_eq!(
        home.ok(&["sessions", "list", "--ndjson", "--tag", "nobody"])
            .stdout,
        ""
    );
    // The guide's jq recipes read it as before.
    let run = home.ok(&["sessions", "list", "--json"]);
    let total: u64 = run
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["token_usage"]["total"].as_u64().unwrap())
        .sum();
    assert_eq!(total, FILES as u64 * 300, "every session once");
    assert_eq!(
        home.run(&["sessions", "list", "--json", "--ndjson"]).code,
        2,
        "one format at a time"
    );
}

/// `list --json` with nobody reading its output: writes, a deletion and a full rebuild go on
/// (no lock is held while the pipe is full), and what it then prints is one valid array with
/// every session that was not deleted exactly once.
#[test]
fn a_reader_that_stops_reading_holds_nobody_up() {
    let home = Home::new();
    let ids = seed(&home);
    home.ok(&["sessions", "list", "-n", "1"]);
    let mut child = listing_under_way(&home, "--json");
    let mut stdout = child.stdout.take().unwrap();
    // Read a little, then stop: the listing blocks on a full pipe within its first page.
    let mut head = vec![0u8; 4096];
    stdout.read_exact(&mut head).unwrap();
    std::thread::sleep(Duration::from_millis(300));

    home.ok_promptly(&["sessions", "tag", &ids[4000], "meanwhile"]);
    home.ok_promptly(&["sessions", "delete", &ids[4001]]);
    // Its rows are numbered anew: the listing goes on in the new index where it was.
    home.ok_promptly(&["sessions", "reindex"]);
    home.ok_promptly(&["sessions", "tag", &ids[4002], "meanwhile"]);

    let mut rest = Vec::new();
    stdout.read_to_end(&mut rest).unwrap();
    let status = child.wait().unwrap();
    assert!(status.success());
    head.extend(rest);
    let rows: Vec<Value> = serde_json::from_slice(&head).expect("one valid JSON array");
    let listed = ids_of(&rows);
    let unique: BTreeSet<&String> = listed.iter().collect();
    assert_eq!(unique.len(), listed.len(), "no session twice");
    let mut want: BTreeSet<&String> = ids.iter().collect();
    want.remove(&ids[4001]);
    assert_eq!(unique, want, "every session still there, once");
    let tagged = rows.iter().find(|r| r["id"] == ids[4002].as_str()).unwrap();
    assert_eq!(
        tagged["tags"],
        serde_json::json!(["meanwhile"]),
        "a row read after a change shows it"
    );
}

/// The listing goes on in a rebuilt index from the place its last row had when the listing
/// began: a session used again meanwhile (now the newest) that ends a page read before the
/// rebuild does not make the rest start over from the newest session.
#[test]
fn a_session_used_again_before_a_rebuild_does_not_restart_the_listing() {
    let home = Home::new();
    seed(&home);
    let order = expected(&home, |_| true);
    home.ok(&["sessions", "list", "-n", "1"]);
    let mut child = listing_under_way(&home, "--ndjson");
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut lines: Vec<String> = Vec::new();
    let mut read_line = |lines: &mut Vec<String>| {
        let mut line = String::new();
        use std::io::BufRead;
        assert!(
            stdout.read_line(&mut line).unwrap() > 0,
            "the listing ended early"
        );
        lines.push(line);
    };
    // The first page is read (the listing waits on the pipe in it); then the session that
    // ends the second page is used again, before that page is read.
    read_line(&mut lines);
    std::thread::sleep(Duration::from_millis(200));
    let ends_second_page = &order[3999];
    // Replaced by a rename, as clinvk or a sync tool does: the index sees it at once.
    let replacement = home.sessions_dir().join("replacement.tmp");
    std::fs::write(
        &replacement,
        session(ends_second_page)
            .last_used("2025-06-01T00:00:00Z")
            .to_json(),
    )
    .unwrap();
    std::fs::rename(&replacement, home.session_path(ends_second_page)).unwrap();
    // Into the second page (read after the change), then a rebuild before the third.
    while !lines.last().unwrap().contains(&order[3000]) {
        read_line(&mut lines);
    }
    std::thread::sleep(Duration::from_millis(200));
    home.ok_promptly(&["sessions", "reindex"]);
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    assert!(child.wait().unwrap().success());
    let listed = ids_of_lines(lines.iter().map(String::as_str).chain(rest.lines()));
    assert_eq!(
        listed, order,
        "every session once, in the order the listing began with"
    );
}

/// A session created while a listing streams is not in it, even when it takes the row (the
/// pk) of a session deleted meanwhile.
#[test]
fn a_new_session_in_a_deleted_ones_row_is_not_listed() {
    let home = Home::new();
    seed(&home);
    home.ok(&["sessions", "list", "-n", "1"]);
    // The newest row of the index, listed last (the oldest use).
    home.add(&session("lastrow").last_used("2024-01-01T00:00:00Z"));
    home.ok(&["sessions", "list", "-n", "1"]);
    let pk_of = |id: &str| -> i64 {
        rusqlite::Connection::open(home.index_path())
            .unwrap()
            .query_row("SELECT pk FROM sessions WHERE id = ?1", [id], |r| r.get(0))
            .unwrap()
    };
    let freed = pk_of("lastrow");
    let mut child = listing_under_way(&home, "--ndjson");
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut first).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    home.ok_promptly(&["sessions", "delete", "lastrow"]);
    home.add(&session("newcomer").last_used("2024-01-01T00:00:00Z"));
    home.ok_promptly(&["sessions", "list", "-n", "1"]);
    assert_eq!(
        pk_of("newcomer"),
        freed,
        "the new session took the freed row"
    );
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    assert!(child.wait().unwrap().success());
    let listed = ids_of_lines(std::iter::once(first.as_str()).chain(rest.lines()));
    assert_eq!(listed.len(), FILES, "the seeded sessions, once each");
    assert!(!listed.iter().any(|id| id == "newcomer" || id == "lastrow"));
}

#[test]
fn stats_by_session_is_streamed_and_equals_the_collected_report() {
    // Totals from a few values, so that ties (ordered by id) cross the 2,000-session pages.
    let home = Home::new();
    let sessions: Vec<SessionJson> = (0..FILES)
        .map(|i| {
            let s = session(&format!("s{i:05}"))
                .tags(if i % 4 == 0 { &["quarter"] } else { &[] })
                .backend(["claude", "codex", "gemini"][i % 3])
                .last_used(&format!("2025-02-{:02}T08:00:00Z", 1 + i % 27));
            // A tenth never ran: no row.
            match i % 10 {
                0 => s.status("created"),
                k => s.tokens(100 * (k as u64 % 4), 10, 0),
            }
        })
        .collect();
    home.add_all(&sessions);
    for filters in [vec![], vec!["--tag", "quarter"], vec!["--backend", "codex"]] {
        let mut args = vec!["sessions", "stats", "--json", "--by", "session"];
        args.extend_from_slice(&filters);
        let streamed = home.ok(&args).stdout;
        let value: Value = serde_json::from_str(&streamed).unwrap();
        // Byte for byte what printing the whole report writes.
        assert_eq!(
            streamed,
            format!("{}\n", serde_json::to_string_pretty(&value).unwrap()),
            "{filters:?}"
        );
        // The same bytes as the collected answer (`-n` past the end is collected).
        args.extend(["-n", "1000000"]);
        let collected = home.ok(&args).stdout;
        assert_eq!(streamed, collected, "{filters:?}");
        let collected: Value = serde_json::from_str(&collected).unwrap();
        assert_eq!(value, collected, "{filters:?}");
        let rows = value["rows"].as_array().unwrap();
        assert!(rows.len() > 2000 || !filters.is_empty(), "{}", rows.len());
        let ids: BTreeSet<&str> = rows
            .iter()
            .map(|r| r["session"].as_str().unwrap())
            .collect();
        assert_eq!(ids.len(), rows.len(), "a session twice");
    }
}
