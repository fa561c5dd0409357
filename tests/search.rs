//! `clinvk sessions search`: everything said in a session (prompts and answers, imported or run
//! through clinvk) found by words, phrases and substrings of any script, ranked by relevance
//! then recency, with a snippet; checked against what the generator planted and against
//! transcripts written here by hand.

#[macro_use]
#[allow(unused_macros)]
mod common;

use common::native::{claude_chat, claude_lines, uuid, NativeStore, Script};
use common::*;
use serde_json::{json, Value};

/// `sessions search --json ARGS`, checked against `--ndjson` (the same rows, one per line).
fn search(home: &Home, args: &[&str]) -> Vec<Value> {
    let mut all = vec!["sessions", "search", "--json"];
    all.extend_from_slice(args);
    let rows = home.ok(&all).json().as_array().unwrap().clone();
    all[2] = "--ndjson";
    let lines: Vec<Value> = home
        .ok(&all)
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines, rows, "--ndjson {args:?}");
    rows
}

fn search_ids(home: &Home, args: &[&str]) -> Vec<String> {
    ids_of(&search(home, args))
}

#[test]
fn every_planted_token_is_found_first_in_every_script() {
    let home = Home::new();
    let mut store = NativeStore::new(home.user_home(), 41).with_prose(60);
    store.generate(25);
    let planted = store.planted.clone();
    for script in [Script::Latin, Script::Cyrillic, Script::Cjk] {
        assert!(
            planted.iter().any(|p| p.script == script),
            "the generator planted {script:?} tokens"
        );
    }
    for p in &planted {
        let rows = search(&home, &[&p.token]);
        assert_eq!(
            ids_of(&rows),
            std::slice::from_ref(&p.conversation),
            "{:?} token {}",
            p.script,
            p.token
        );
        let snippet = rows[0]["snippet"].as_str().unwrap();
        assert!(snippet.contains(&p.token), "{snippet}");
        assert_eq!(rows[0]["score"], 1);
        assert!(["user", "assistant"].contains(&rows[0]["snippet_role"].as_str().unwrap()));
    }
    // CJK inside a sentence: a part of a token, and a part of the prose around it.
    let cjk = planted.iter().find(|p| p.script == Script::Cjk).unwrap();
    let middle: String = cjk.token.chars().skip(1).take(4).collect();
    assert!(search_ids(&home, &[&middle]).contains(&cjk.conversation));
}

#[test]
fn ranked_by_matching_messages_then_recency() {
    let home = Home::new();
    // Older, but says it three times.
    claude_chat(
        home.user_home(),
        &uuid(1),
        "2025-01-20T10:00:00Z",
        &[
            ("user", "the test is flaky again"),
            ("assistant", "Flaky tests usually mean shared state."),
            ("user", "still FLAKY after the fix"),
        ],
    );
    claude_chat(
        home.user_home(),
        &uuid(2),
        "2025-01-22T10:00:00Z",
        &[("user", "a flaky one")],
    );
    claude_chat(
        home.user_home(),
        &uuid(3),
        "2025-01-24T10:00:00Z",
        &[("assistant", "not flaky here")],
    );
    claude_chat(
        home.user_home(),
        &uuid(4),
        "2025-01-25T10:00:00Z",
        &[("user", "unrelated")],
    );
    let rows = search(&home, &["flaky"]);
    assert_eq!(ids_of(&rows), [uuid(1), uuid(3), uuid(2)]);
    let scores: Vec<u64> = rows.iter().map(|r| r["score"].as_u64().unwrap()).collect();
    assert_eq!(scores, [3, 1, 1]);
    // -n keeps the best.
    assert_eq!(search_ids(&home, &["flaky", "-n", "1"]), [uuid(1)]);
}

#[test]
fn phrases_words_and_short_terms() {
    let home = Home::new();
    claude_chat(
        home.user_home(),
        &uuid(1),
        "2025-01-20T10:00:00Z",
        &[("user", "use a token bucket for the limiter")],
    );
    // Both words, apart, in different messages.
    claude_chat(
        home.user_home(),
        &uuid(2),
        "2025-01-21T10:00:00Z",
        &[
            ("user", "the bucket is full"),
            ("assistant", "refresh the token"),
        ],
    );
    claude_chat(
        home.user_home(),
        &uuid(3),
        "2025-01-22T10:00:00Z",
        &[("user", "token only")],
    );
    // A phrase: one argument with a space, or quotes inside one.
    assert_eq!(search_ids(&home, &["token bucket"]), [uuid(1)]);
    assert_eq!(search_ids(&home, &[r#""token bucket" limiter"#]), [uuid(1)]);
    // Words: all of them, anywhere in the session.
    let mut both = search_ids(&home, &["token", "bucket"]);
    both.sort();
    assert_eq!(both, [uuid(1), uuid(2)]);
    assert!(search_ids(&home, &["token", "bucket", "nowhere"]).is_empty());
    // Case-insensitive substrings, and terms shorter than a trigram.
    assert_eq!(search_ids(&home, &["LIMIT"]), [uuid(1)]);
    assert_eq!(search_ids(&home, &["ll"]), [uuid(2)]);
    assert_eq!(search_ids(&home, &["ll", "bucket"]), [uuid(2)]);
}

#[test]
fn cjk_and_cyrillic_inside_sentences() {
    let home = Home::new();
    claude_chat(
        home.user_home(),
        &uuid(1),
        "2025-01-20T10:00:00Z",
        &[
            (
                "user",
                "昨日のミーティングで東京オフィスの移転について話しました",
            ),
            ("assistant", "Повторная попытка запроса помогла."),
        ],
    );
    claude_chat(
        home.user_home(),
        &uuid(2),
        "2025-01-21T10:00:00Z",
        &[("user", "大阪の話")],
    );
    assert_eq!(search_ids(&home, &["東京オフィス"]), [uuid(1)]);
    // Two characters (no trigram), inside a sentence.
    assert_eq!(search_ids(&home, &["移転"]), [uuid(1)]);
    assert_eq!(search_ids(&home, &["大阪"]), [uuid(2)]);
    // One character, inside and at the end of a message.
    assert_eq!(search_ids(&home, &["阪"]), [uuid(2)]);
    let mut both = search_ids(&home, &["話"]);
    both.sort();
    assert_eq!(both, [uuid(1), uuid(2)]);
    assert_eq!(search_ids(&home, &["話", "大"]), [uuid(2)]);
    assert_eq!(search_ids(&home, &["ПОПЫТКА"]), [uuid(1)]);
    let rows = search(&home, &["попытка"]);
    assert_eq!(rows[0]["snippet"], "Повторная попытка запроса помогла.");
    assert_eq!(rows[0]["snippet_role"], "assistant");
}

#[test]
fn tool_output_and_context_blocks_are_not_searched() {
    let home = Home::new();
    let id = uuid(1);
    let dir = home.user_home().join(".claude/projects/-w");
    std::fs::create_dir_all(&dir).unwrap();
    let lines = [
        json!({"type": "user", "sessionId": id, "timestamp": "2025-01-20T10:00:00Z",
               "message": {"role": "user", "content": "list the files"}}),
        json!({"type": "user", "sessionId": id, "timestamp": "2025-01-20T10:00:01Z",
               "message": {"role": "user", "content": [{"type": "tool_result", "content": "dumpedsecret.txt"}]}}),
        json!({"type": "user", "sessionId": id, "timestamp": "2025-01-20T10:00:02Z",
               "message": {"role": "user", "content": "<system-reminder>reminderword</system-reminder>"}}),
        json!({"type": "assistant", "sessionId": id, "timestamp": "2025-01-20T10:00:03Z", "requestId": "r",
               "message": {"id": "m", "content": [{"type": "tool_use", "input": {"cmd": "toolcallword"}},
                                                  {"type": "text", "text": "here they are"}],
                           "usage": {"input_tokens": 1, "output_tokens": 1}}}),
    ];
    let text: String = lines.iter().map(|l| l.to_string() + "\n").collect();
    std::fs::write(dir.join(format!("{id}.jsonl")), text).unwrap();
    assert_eq!(search_ids(&home, &["here they"]), std::slice::from_ref(&id));
    for hidden in ["dumpedsecret", "reminderword", "toolcallword"] {
        assert!(search_ids(&home, &[hidden]).is_empty(), "{hidden}");
    }
}

#[test]
fn filters_select_as_list_does() {
    let home = Home::new();
    let mut store = NativeStore::new(home.user_home(), 43).with_prose(0);
    store.generate(6);
    // "the" is common in the Latin prose: many sessions of every CLI.
    let all = search(&home, &["the", "-n", "1000"]);
    let backends: std::collections::BTreeSet<&str> =
        all.iter().map(|r| r["backend"].as_str().unwrap()).collect();
    assert!(backends.len() >= 2, "{backends:?}");
    for backend in &backends {
        let rows = search(&home, &["the", "--backend", backend, "-n", "1000"]);
        assert!(!rows.is_empty());
        assert!(rows.iter().all(|r| r["backend"] == *backend));
        assert_eq!(
            rows.len(),
            all.iter().filter(|r| r["backend"] == *backend).count()
        );
    }
    // A tag, and a time range.
    let tagged = all[0]["id"].as_str().unwrap().to_string();
    home.ok(&["sessions", "tag", &tagged, "found"]);
    assert_eq!(search_ids(&home, &["the", "--tag", "found"]), [tagged]);
    assert!(search_ids(&home, &["the", "--since", "2099-01-01"]).is_empty());
    // The order: relevance, then the most recent.
    let key = |r: &Value| {
        (
            r["score"].as_u64().unwrap(),
            r["last_used_at"].as_str().unwrap().to_string(),
        )
    };
    assert!(all.windows(2).all(|w| key(&w[0]) >= key(&w[1])));
}

#[test]
fn prompts_of_sessions_run_through_clinvk_and_a_rebuilt_index() {
    let home = Home::new();
    let turn = |at: &str, prompt: &str| json!({"at": at, "prompt": prompt, "exit_code": 0});
    home.add(&session("run1").prompt("first prompt about parsers").field(
        "turns",
        json!([
            turn("2025-01-27T10:00:00Z", "first prompt about parsers"),
            turn("2025-01-27T10:05:00Z", "then the lexer crashed"),
        ]),
    ));
    home.add(&session("run2").prompt("something else"));
    assert_eq!(search_ids(&home, &["lexer crashed"]), ["run1"]);
    assert_eq!(search_ids(&home, &["something"]), ["run2"]);
    // Only the first prompt is what `list --search` means.
    assert!(home.list_ids(&["--search", "lexer"]).is_empty());
    // An imported conversation too, and then without the index.
    claude_chat(
        home.user_home(),
        &uuid(7),
        "2025-01-20T10:00:00Z",
        &[("assistant", "the lexer is fine")],
    );
    let mut found = search_ids(&home, &["lexer"]);
    found.sort();
    assert_eq!(found, [uuid(7), "run1".to_string()]);
    home.remove_index();
    let mut again = search_ids(&home, &["lexer"]);
    again.sort();
    assert_eq!(again, found);
    // Edited by hand (saved as editors do, by a rename): the next search sees it.
    let edited = home.sessions_dir().join("run2.json.edit");
    std::fs::write(
        &edited,
        session("run2").prompt("now about the lexer").to_json(),
    )
    .unwrap();
    std::fs::rename(&edited, home.session_path("run2")).unwrap();
    assert_eq!(search_ids(&home, &["now about"]), ["run2"]);
}

#[test]
fn appended_rewritten_and_deleted_transcripts() {
    let home = Home::new();
    let id = uuid(1);
    let path = claude_chat(
        home.user_home(),
        &id,
        "2025-01-20T10:00:00Z",
        &[("user", "first words")],
    );
    assert_eq!(
        search_ids(&home, &["first words"]),
        std::slice::from_ref(&id)
    );
    // Appended (read from where the last read stopped): the new words, the old ones once.
    let more = claude_lines(
        &id,
        "2025-01-21T10:00:00Z",
        &[("assistant", "second words")],
    );
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    std::io::Write::write_all(
        &mut file,
        more.replace("m0", "m9").replace("r0", "r9").as_bytes(),
    )
    .unwrap();
    drop(file);
    let rows = search(&home, &["words"]);
    assert_eq!(ids_of(&rows), std::slice::from_ref(&id));
    assert_eq!(rows[0]["score"], 2);
    // Rewritten: what it says now (and the session's first prompt, which it keeps).
    std::fs::write(
        &path,
        claude_lines(&id, "2025-01-20T10:00:00Z", &[("user", "other text")]),
    )
    .unwrap();
    assert!(search_ids(&home, &["second words"]).is_empty());
    assert_eq!(search(&home, &["words"])[0]["score"], 1);
    assert_eq!(
        search_ids(&home, &["other text"]),
        std::slice::from_ref(&id)
    );
    // A deleted session's words go with it, and a new session does not inherit them.
    home.ok(&["sessions", "delete", &id]);
    assert!(search_ids(&home, &["other text"]).is_empty());
    home.add(&session("fresh").prompt("unrelated"));
    assert!(search_ids(&home, &["other text"]).is_empty());
}

#[test]
fn output_for_people_and_for_pipes() {
    let home = Home::new();
    claude_chat(
        home.user_home(),
        &uuid(1),
        "2025-01-20T10:00:00Z",
        &[("user", "why does the\nretry\x1b[31m loop spin")],
    );
    let out = home.ok(&["sessions", "search", "retry"]).stdout;
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("ID") && lines[0].contains("SCORE"),
        "{out}"
    );
    assert!(lines[1].starts_with(&uuid(1)), "{out}");
    // On one line, escaped, and no bold in a pipe.
    assert_eq!(
        lines[2],
        r"    user: why does the retry\u{1b}[31m loop spin"
    );
    assert!(!out.contains('\x1b'));
    let none = home.ok(&["sessions", "search", "absent"]);
    assert!(none.stdout.is_empty());
    assert!(none.stderr.contains("No sessions found."));
    assert_eq!(search(&home, &["absent"]), Vec::<Value>::new());
    // Nothing to look for: a usage error.
    let run = home.run(&["sessions", "search", "  "]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.starts_with("clinvk: nothing to search for"),
        "{}",
        run.stderr
    );
}

#[test]
fn an_index_of_the_previous_schema_is_filled_with_what_was_said() {
    let home = Home::new();
    claude_chat(
        home.user_home(),
        &uuid(1),
        "2025-01-20T10:00:00Z",
        &[("assistant", "the answer mentions zeppelins")],
    );
    home.add(&session("run1").prompt("a prompt about gondolas"));
    assert_eq!(search_ids(&home, &["zeppelins"]), [uuid(1)]);
    // What the previous build left: schema 4, its sessions and transcripts read, no texts.
    {
        let db = rusqlite::Connection::open(home.index_path()).unwrap();
        db.execute_batch(
            "DROP TABLE texts_fts; DROP TABLE texts_trigrams; DROP VIEW texts_indexed;
             DROP TABLE texts; DROP TABLE text_runs;
             DELETE FROM refinery_schema_history WHERE version >= 5;
             PRAGMA user_version = 4;",
        )
        .unwrap();
    }
    assert_eq!(search_ids(&home, &["zeppelins"]), [uuid(1)]);
    assert_eq!(search_ids(&home, &["gondolas"]), ["run1"]);
}

#[test]
fn what_a_deleted_transcript_said_is_kept_in_the_session_file() {
    let home = Home::new();
    let path = claude_chat(
        home.user_home(),
        &uuid(1),
        "2025-01-20T10:00:00Z",
        &[
            ("user", "plan the migration of the ledger"),
            ("assistant", "Start with a shadow table for the ledger."),
        ],
    );
    assert_eq!(search_ids(&home, &["shadow table"]), [uuid(1)]);
    // The CLI's retention clean deletes it; the next catch-up notices.
    std::fs::remove_file(&path).unwrap();
    home.ok(&["sessions", "list"]);
    let file = home.read_session(&uuid(1));
    assert_eq!(file["native"]["gone"], true);
    let kept = &file["native"]["messages"];
    assert_eq!(kept[0]["role"], "user");
    assert_eq!(kept[1]["text"], "Start with a shadow table for the ledger.");
    // Still found, also once the index is rebuilt from the files alone.
    assert_eq!(search_ids(&home, &["shadow table"]), [uuid(1)]);
    home.remove_index();
    let rows = search(&home, &["shadow table"]);
    assert_eq!(ids_of(&rows), [uuid(1)]);
    assert_eq!(rows[0]["snippet_role"], "assistant");
    assert_eq!(rows[0]["score"], 1);
}

#[test]
fn a_transcript_moved_elsewhere_counts_once() {
    let home = Home::new();
    let path = claude_chat(
        home.user_home(),
        &uuid(1),
        "2025-01-20T10:00:00Z",
        &[
            ("user", "the kestrel flies"),
            ("assistant", "a kestrel hovers"),
        ],
    );
    assert_eq!(search(&home, &["kestrel"])[0]["score"], 2);
    // The same conversation's file, now in another project directory.
    let moved = home.user_home().join(".claude/projects/-elsewhere");
    std::fs::create_dir_all(&moved).unwrap();
    std::fs::rename(&path, moved.join(path.file_name().unwrap())).unwrap();
    let rows = search(&home, &["kestrel"]);
    assert_eq!(ids_of(&rows), [uuid(1)]);
    assert_eq!(rows[0]["score"], 2, "each message once");
}

#[test]
fn phrases_across_lines_and_the_limits_of_a_query() {
    let home = Home::new();
    claude_chat(
        home.user_home(),
        &uuid(1),
        "2025-01-20T10:00:00Z",
        &[("assistant", "use a token\n   bucket here")],
    );
    let rows = search(&home, &["token bucket"]);
    assert_eq!(ids_of(&rows), [uuid(1)]);
    assert_eq!(rows[0]["snippet"], "use a token bucket here");
    assert!(search(&home, &["token", "-n", "0"]).is_empty());
    let many: Vec<String> = (0..65).map(|i| format!("w{i}")).collect();
    let mut args = vec!["sessions", "search"];
    args.extend(many.iter().map(String::as_str));
    let run = home.run(&args);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.error_line().contains("at most 64"), "{}", run.stderr);
}

#[test]
fn the_search_indexes_match_their_rows_after_imports_in_batches() {
    // Batches of more than 20 conversations fill the search indexes at each batch's end; every
    // way a message or prompt is added, replaced or removed must leave them equal to their
    // rows (`reindex --check` asks FTS5 to compare), and searches right.
    let home = Home::new();
    let word = |n: u32| format!("marmot{n:03}x");
    let paths: Vec<std::path::PathBuf> = (1..=60)
        .map(|n| {
            claude_chat(
                home.user_home(),
                &uuid(n),
                "2025-01-20T10:00:00Z",
                &[
                    ("user", &format!("about {}", word(n))),
                    ("assistant", "noted"),
                ],
            )
        })
        .collect();
    let import = |home: &Home| {
        home.cmd()
            .env("CLINVK_IMPORT_BATCH", "25")
            .args(["sessions", "import", "--json"])
            .assert()
            .success();
    };
    import(&home);
    home.ok(&["sessions", "reindex", "--check"]);
    assert_eq!(search_ids(&home, &[&word(7)]), [uuid(7)]);
    // Appended to, rewritten, deleted; a session run through clinvk beside them.
    for (n, path) in paths.iter().enumerate().take(30) {
        let more = claude_lines(
            &uuid(n as u32 + 1),
            "2025-01-21T10:00:00Z",
            &[("assistant", &format!("later {}", word(100 + n as u32)))],
        );
        let mut file = std::fs::OpenOptions::new().append(true).open(path).unwrap();
        std::io::Write::write_all(
            &mut file,
            more.replace("m0", "m9").replace("r0", "r9").as_bytes(),
        )
        .unwrap();
    }
    for (n, path) in paths.iter().enumerate().skip(30).take(10) {
        let n = n as u32 + 1;
        std::fs::write(
            path,
            claude_lines(
                &uuid(n),
                "2025-01-20T10:00:00Z",
                &[("user", &format!("now {}", word(200 + n)))],
            ),
        )
        .unwrap();
    }
    for n in 41..=45 {
        home.ok(&["sessions", "delete", &uuid(n)]);
    }
    home.add(&session("run1").prompt(&format!("a prompt of {}", word(300))));
    import(&home);
    home.ok(&["sessions", "reindex", "--check"]);
    assert_eq!(search_ids(&home, &[&word(103)]), [uuid(4)]);
    assert_eq!(search_ids(&home, &[&word(4)]), [uuid(4)]);
    assert_eq!(search_ids(&home, &[&word(231)]), [uuid(31)]);
    assert!(search_ids(&home, &[&word(43)]).is_empty());
    assert_eq!(search_ids(&home, &[&word(300)]), ["run1"]);
    // A damaged search index is caught.
    {
        let db = rusqlite::Connection::open(home.index_path()).unwrap();
        db.execute_batch("INSERT INTO texts_fts (rowid, body) VALUES (999999, 'no such message')")
            .unwrap();
    }
    let check = home.run(&["sessions", "reindex", "--check"]);
    assert_ne!(check.code, 0, "{}", check.stdout);
    assert!(
        check.stdout.contains("search index") || check.stderr.contains("search index"),
        "{}{}",
        check.stdout,
        check.stderr
    );
}
