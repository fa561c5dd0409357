//! `clinvk sessions import`: the CLIs' own transcripts brought into the store, every request
//! counted once, checked against the truth the generator wrote (tests/common/native.rs), never
//! against the importer's own reading.

#[macro_use]
#[allow(unused_macros)]
mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use common::native::{Cli, NativeStore, Truth};
use common::*;
use serde_json::Value;

fn import(home: &Home, args: &[&str]) -> Value {
    let mut all = vec!["sessions", "import", "--json"];
    all.extend_from_slice(args);
    home.ok(&all).json()
}

/// `sessions import --json`, its command adjusted first (environment, directory), parsed.
fn import_adjusted(home: &Home, adjust: impl FnOnce(&mut assert_cmd::Command)) -> Value {
    let mut cmd = home.cmd();
    adjust(&mut cmd);
    let out = cmd.args(["sessions", "import", "--json"]).output().unwrap();
    Run::from_output(out).success().json()
}

fn stats(home: &Home, by: &[&str]) -> Value {
    let mut args = vec!["sessions", "stats", "--json"];
    for b in by {
        args.extend(["--by", b]);
    }
    home.ok(&args).json()
}

/// Every file under `dir` with its bytes and mtime: the CLIs' files must come out untouched.
fn tree(dir: &Path) -> BTreeMap<String, (Vec<u8>, std::time::SystemTime)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let meta = std::fs::symlink_metadata(e.path()).unwrap();
            if meta.is_dir() {
                stack.push(e.path());
            } else if meta.is_file() {
                out.insert(
                    e.path().display().to_string(),
                    (std::fs::read(e.path()).unwrap(), meta.modified().unwrap()),
                );
            }
        }
    }
    out
}

/// (input, output, cached) summed over `truths`.
fn sums<'a>(truths: impl Iterator<Item = &'a Truth>) -> (u64, u64, u64) {
    truths.fold((0, 0, 0), |(i, o, c), t| {
        (i + t.input, o + t.output, c + t.cached)
    })
}

fn figures(row: &Value) -> (u64, u64, u64) {
    (
        row["input"].as_u64().unwrap(),
        row["output"].as_u64().unwrap(),
        row["cached"].as_u64().unwrap(),
    )
}

/// The store's figures per session, backend, model and day equal the truth.
#[track_caller]
fn assert_counts_match(home: &Home, store: &NativeStore) {
    // Per session: the listing's totals.
    let listed: BTreeMap<String, u64> = home
        .list_json(&[])
        .iter()
        .map(|r| {
            (
                r["id"].as_str().unwrap().to_string(),
                r["tokens"].as_u64().unwrap(),
            )
        })
        .collect();
    let mut want: BTreeMap<String, u64> = BTreeMap::new();
    for t in &store.truth {
        *want.entry(t.conversation.clone()).or_default() += t.total();
    }
    for (id, total) in &want {
        assert_eq!(listed.get(id), Some(total), "session {id}");
    }
    // Per backend, model and day (UTC).
    let report = stats(home, &["backend", "model", "day"]);
    let mut got: BTreeMap<(String, String, String), (u64, u64, u64)> = BTreeMap::new();
    for row in report["rows"].as_array().unwrap() {
        let key = (
            row["backend"].as_str().unwrap().to_string(),
            row["model"].as_str().unwrap_or_default().to_string(),
            row["day"].as_str().unwrap().to_string(),
        );
        let f = figures(row);
        let e = got.entry(key).or_default();
        *e = (e.0 + f.0, e.1 + f.1, e.2 + f.2);
    }
    let mut expected: BTreeMap<(String, String, String), (u64, u64, u64)> = BTreeMap::new();
    for t in &store.truth {
        let key = (
            t.cli.name().to_string(),
            t.model.clone(),
            t.at.format("%Y-%m-%d").to_string(),
        );
        let e = expected.entry(key).or_default();
        *e = (e.0 + t.input, e.1 + t.output, e.2 + t.cached);
    }
    got.retain(|_, v| *v != (0, 0, 0));
    assert_eq!(got, expected, "per backend, model and day");
    let totals = figures(&report["totals"]);
    assert_eq!(totals, sums(store.truth.iter()), "the grand total");
}

#[test]
fn every_request_of_every_cli_is_counted_once() {
    let home = Home::new();
    let mut store = NativeStore::new(home.user_home(), 7);
    store.generate(40);
    let before = tree(home.user_home());
    let report = import(&home, &[]);
    assert_eq!(
        tree(home.user_home()),
        before,
        "the CLIs' files are untouched"
    );
    for cli in ["claude", "codex", "gemini"] {
        assert_eq!(report["backends"][cli]["new"], 40, "{cli}: {report}");
    }
    assert_eq!(report["skipped"].as_array().unwrap().len(), 0, "{report}");
    assert_counts_match(&home, &store);

    // Each session as the truth says: imported, resumable in its own directory, the prompt a
    // person typed.
    let rows = home.list_json(&[]);
    let by_id: BTreeMap<&str, &Value> = rows
        .iter()
        .map(|r| (r["id"].as_str().unwrap(), r))
        .collect();
    for w in &store.written {
        let row = by_id
            .get(w.id.as_str())
            .unwrap_or_else(|| panic!("{} listed", w.id));
        assert_eq!(row["origin"], "imported");
        assert_eq!(row["backend"], w.cli.name());
        assert_eq!(row["backend_session_id"], w.id.as_str());
        assert_eq!(row["workdir"], w.workdir.as_str(), "{}", w.id);
        assert_eq!(row["prompt"], w.prompt.as_str(), "{}", w.id);
        assert_eq!(row["status"], "active");
    }
    home.ok(&["sessions", "reindex", "--check"]);

    // Again: nothing changed, nothing read, nothing counted twice.
    let again = import(&home, &[]);
    assert_eq!(again["files_read"], 0, "{again}");
    assert_counts_match(&home, &store);
    // After a rebuild of the index (which forgets what was read), everything is read again and
    // still counted once.
    home.remove_index();
    let again = import(&home, &[]);
    assert!(again["files_read"].as_u64().unwrap() > 100, "{again}");
    assert_eq!(again["backends"]["claude"]["new"], 0, "{again}");
    assert_counts_match(&home, &store);
}

#[test]
fn the_real_samples_import_with_their_figures() {
    let home = Home::new();
    let samples = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/native-samples");
    let user = home.user_home();
    let claude = user.join(".claude/projects/-home-user-proj-claude-proj");
    let codex = user.join(".codex/sessions/2026/12/01");
    let gemini = user.join(".gemini/tmp/gemini-proj/chats");
    for d in [&claude, &codex, &gemini] {
        std::fs::create_dir_all(d).unwrap();
    }
    for e in std::fs::read_dir(&samples).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        let from = samples.join(&name);
        let (dir, to) = if let Some(rest) = name.strip_prefix("claude-") {
            (&claude, rest.trim_start_matches("failed-401-").to_string())
        } else if let Some(rest) = name.strip_prefix("codex-") {
            (&codex, rest.trim_start_matches("failed-401-").to_string())
        } else if name.starts_with("gemini-session-") {
            (&gemini, name.trim_start_matches("gemini-").to_string())
        } else if name == "gemini-projects.json" {
            std::fs::copy(&from, user.join(".gemini/projects.json")).unwrap();
            continue;
        } else {
            continue;
        };
        std::fs::copy(&from, dir.join(to)).unwrap();
    }
    let report = import(&home, &[]);
    assert_eq!(report["backends"]["claude"]["new"], 3, "{report}");
    assert_eq!(report["backends"]["codex"]["new"], 3, "{report}");
    assert_eq!(report["backends"]["gemini"]["new"], 1, "{report}");
    let rows = home.list_json(&[]);
    let get = |id: &str| {
        rows.iter()
            .find(|r| r["id"] == id)
            .unwrap_or_else(|| panic!("{id}"))
    };
    // Claude: two requests (102+2002+30002 in, 42 out; 103+...), the fork only its own one.
    let resumed = get("8804da8a-3e63-4991-a39b-a2fac3f7fd34");
    assert_eq!(resumed["token_usage"]["input"], 32106 + 32109);
    assert_eq!(resumed["token_usage"]["output"], 42 + 43);
    assert_eq!(resumed["prompt"], "hello");
    let fork = get("94895dfa-2027-4de2-9cdf-81bebfcae0c8");
    assert_eq!(fork["token_usage"]["input"], 32112);
    assert_eq!(fork["prompt"], "forked");
    assert_eq!(get("a7277a73-81ee-4c9f-9dff-9f13ee749f1b")["tokens"], 0);
    // Codex: the thread's running total, the fork only what it added.
    assert_eq!(
        get("01a2313a-0d07-7771-ad0b-6e3bccc3126b")["token_usage"]["input"],
        15018
    );
    assert_eq!(
        get("01a2313a-35f8-7cb3-ac16-2a856813b495")["token_usage"]["input"],
        20030 - 15018
    );
    // Gemini: three answers, each once, although the history was appended again twice.
    let chat = get("7a9ca440-ea38-4724-a496-49e63d279cdd");
    assert_eq!(chat["token_usage"]["input"], 4002 + 4004 + 4005);
    assert_eq!(chat["token_usage"]["output"], 32 + 17 + 34 + 19 + 35 + 20);
    assert_eq!(chat["workdir"], "/home/user/proj/gemini-proj");
    let show = home.ok(&["sessions", "show", "7a9c"]).stdout;
    assert!(
        show.contains("Origin:            imported from gemini's transcripts"),
        "{show}"
    );
    assert!(
        show.contains("session-2026-12-01T10-54-7a9ca440.jsonl"),
        "{show}"
    );
}

#[test]
fn a_conversation_resumed_in_the_cli_gains_only_its_new_requests() {
    let home = Home::new();
    let mut store = NativeStore::new(home.user_home(), 11);
    let w = store.claude_conversation();
    store.generate(3);
    import(&home, &[]);
    assert_counts_match(&home, &store);
    let t = store.claude_resume(&w);
    let report = import(&home, &[]);
    assert_eq!(report["files_read"], 1, "only the file that grew: {report}");
    assert_eq!(report["backends"]["claude"]["updated"], 1, "{report}");
    assert_counts_match(&home, &store);
    let row = home
        .list_json(&[])
        .into_iter()
        .find(|r| r["id"] == w.id.as_str())
        .unwrap();
    assert_eq!(
        row["last_used_at"],
        t.at.format("%Y-%m-%dT%H:%M:%SZ").to_string()
    );
}

#[test]
fn a_transcript_the_cli_deleted_leaves_its_session_and_usage() {
    let home = Home::new();
    let mut store = NativeStore::new(home.user_home(), 13);
    store.generate(2);
    import(&home, &[]);
    let w = store
        .written
        .iter()
        .find(|w| w.cli == Cli::Gemini)
        .unwrap()
        .clone();
    std::fs::remove_file(&w.path).unwrap();
    let report = import(&home, &[]);
    assert_eq!(report["transcripts_gone"], 1, "{report}");
    assert_counts_match(&home, &store);
    let show = home.ok(&["sessions", "show", &w.id]).stdout;
    assert!(show.contains("(gone: the CLI deleted it"), "{show}");
    let file = home.read_session(&w.id);
    assert_eq!(file["native"]["gone"], true);
    // The CLI cannot resume it any more: said before it is run.
    let before = home.snapshot(false);
    let out = home
        .cmd()
        .env("PATH", path_with_fakes())
        .args(["resume", &w.id, "go on"])
        .output()
        .unwrap();
    let run = Run::from_output(out).fails_with(3);
    assert!(
        run.error_line().contains("no longer has this conversation"),
        "{}",
        run.stderr
    );
    assert_same_files(&before, &home.snapshot(false));
}

#[test]
fn a_deleted_session_stays_deleted_until_its_conversation_goes_on() {
    let home = Home::new();
    let mut store = NativeStore::new(home.user_home(), 17);
    let w = store.claude_conversation();
    store.codex_conversation();
    import(&home, &[]);
    home.ok(&["sessions", "delete", &w.id]);
    let report = import(&home, &[]);
    assert_eq!(
        report["deleted"], 0,
        "unchanged files are not read again: {report}"
    );
    assert!(!home.session_exists(&w.id));
    // Asked for, it comes back whole, although nothing changed in the CLI since; then it is
    // deleted again.
    let report = import(&home, &["--include-deleted"]);
    assert_eq!(report["backends"]["claude"]["new"], 1, "{report}");
    assert_counts_match(&home, &store);
    home.ok(&["sessions", "delete", &w.id]);
    assert_eq!(import(&home, &[])["deleted"], 0);
    assert!(!home.session_exists(&w.id));
    // A rebuilt index reads every transcript again: the deletion is still known.
    home.remove_index();
    let report = import(&home, &[]);
    assert_eq!(report["deleted"], 1, "{report}");
    assert!(!home.session_exists(&w.id));
    // A dry run with --include-deleted would bring it back, and changes nothing.
    home.remove_index();
    let before = home.snapshot(false);
    let dry = import(&home, &["--dry-run", "--include-deleted"]);
    assert_eq!(dry["backends"]["claude"]["new"], 1, "{dry}");
    assert_same_files(&before, &home.snapshot(false));
    // New activity in the CLI brings it back, whole.
    store.claude_resume(&w);
    let report = import(&home, &[]);
    assert_eq!(report["backends"]["claude"]["new"], 1, "{report}");
    assert!(home.session_exists(&w.id));
    assert_counts_match(&home, &store);
    // `clean` records its deletions too (run in the generator's future, so that all are old).
    let out = home
        .cmd()
        .env("CLINVK_NOW", "2030-01-01T00:00:00Z")
        .args(["sessions", "clean", "--older-than", "1d"])
        .output()
        .unwrap();
    Run::from_output(out).success();
    home.remove_index();
    let report = import(&home, &[]);
    assert_eq!(report["deleted"], 2, "{report}");
    assert_eq!(home.list_json(&[]).len(), 0);
}

#[test]
fn only_the_cli_asked_for_and_sources_turned_off_or_elsewhere() {
    let home = Home::new();
    let mut store = NativeStore::new(home.user_home(), 19);
    store.generate(2);
    let report = import(&home, &["--backend", "codex"]);
    let backends: BTreeSet<&str> = report["backends"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(backends, BTreeSet::from(["codex"]));
    home.ok(&["config", "set", "import.gemini.enabled", "false"]);
    let report = import(&home, &[]);
    assert!(report["backends"].get("gemini").is_none(), "{report}");
    assert_eq!(report["backends"]["claude"]["new"], 2, "{report}");
    // Claude's transcripts moved elsewhere: the config points there.
    let elsewhere = home.path().join("claude-elsewhere");
    std::fs::rename(store.claude_root(), &elsewhere).unwrap();
    home.remove_index();
    home.ok(&[
        "config",
        "set",
        "import.claude.dir",
        elsewhere.to_str().unwrap(),
    ]);
    let report = import(&home, &[]);
    // The same conversations (nothing counted again), now read from there.
    assert_eq!(report["backends"]["claude"]["updated"], 2, "{report}");
    assert_eq!(report["looked_in"][0], elsewhere.to_str().unwrap());
    for w in store.written.iter().filter(|w| w.cli == Cli::Claude) {
        let file = home.read_session(&w.id);
        assert!(file["native"]["path"]
            .as_str()
            .unwrap()
            .starts_with(elsewhere.to_str().unwrap()));
    }
    let (input, _, _) = store.totals_of(Cli::Claude);
    let report = stats(&home, &["backend"]);
    let claude = report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["backend"] == "claude")
        .unwrap();
    assert_eq!(claude["input"], input);
}

#[test]
fn bad_transcripts_never_stop_an_import() {
    let home = Home::new();
    let mut store = NativeStore::new(home.user_home(), 23);
    store.generate(3);
    let projects = store.claude_root().join("projects/-junk");
    std::fs::create_dir_all(&projects).unwrap();
    // Not UTF-8, not JSON, empty, a directory named like a transcript, a symlink loop.
    std::fs::write(
        projects.join("0e0e0e0e-0000-4000-8000-000000000001.jsonl"),
        [0xff, 0xfe, b'\n', 0xc3],
    )
    .unwrap();
    std::fs::write(
        projects.join("0e0e0e0e-0000-4000-8000-000000000002.jsonl"),
        "garbage\n{\n",
    )
    .unwrap();
    std::fs::write(
        projects.join("0e0e0e0e-0000-4000-8000-000000000003.jsonl"),
        "",
    )
    .unwrap();
    std::fs::create_dir_all(projects.join("dir.jsonl")).unwrap();
    std::os::unix::fs::symlink(&projects, projects.join("loop")).unwrap();
    // A compressed rollout cut short.
    let day = store.codex_root().join("sessions/2026/12/24");
    std::fs::create_dir_all(&day).unwrap();
    let text: String = (0..500)
        .map(|i| format!("{{\"timestamp\":\"2026-12-24T10:00:00Z\",\"type\":\"turn_context\",\"payload\":{{\"model\":\"m{i}\"}}}}\n"))
        .collect();
    let packed = zstd::stream::encode_all(text.as_bytes(), 3).unwrap();
    let torn =
        day.join("rollout-2026-12-24T10-00-00-0e0e0e0e-0000-7000-8000-000000000009.jsonl.zst");
    std::fs::write(&torn, &packed[..packed.len() / 2]).unwrap();
    let run = home.ok(&["sessions", "import"]);
    assert!(run.stdout.contains("read only in part"), "{}", run.stdout);
    assert!(run.stdout.contains("Skipped"), "{}", run.stdout);
    // The real conversations are all there, counted right.
    assert_counts_match(&home, &store);
}

#[test]
fn origin_filters_and_projects() {
    let home = standard_home();
    let mut store = NativeStore::new(home.user_home(), 29);
    store.generate(4);
    import(&home, &[]);
    let imported = home.list_ids(&["--origin", "imported"]);
    assert_eq!(imported.len(), 12);
    assert!(imported
        .iter()
        .all(|id| store.written.iter().any(|w| &w.id == id)));
    assert_eq!(home.list_ids(&["--origin", "clinvk"]), STANDARD_ORDER);
    let (claude_in, _, _) = store.totals_of(Cli::Claude);
    let only = stats(&home, &[]);
    let all_input = only["totals"]["input"].as_u64().unwrap();
    let v = home
        .ok(&[
            "sessions", "stats", "--json", "--origin", "imported", "-b", "claude",
        ])
        .json();
    assert_eq!(v["totals"]["input"], claude_in);
    let v = home
        .ok(&["sessions", "stats", "--json", "--origin", "clinvk"])
        .json();
    let (i, _, _) = sums(store.truth.iter());
    assert_eq!(v["totals"]["input"].as_u64().unwrap() + i, all_input);
    // Projects: by directory, named by its last component.
    let v = stats(&home, &["project"]);
    let mut want: BTreeMap<String, u64> = BTreeMap::new();
    for t in &store.truth {
        let w = store
            .written
            .iter()
            .find(|w| w.id == t.conversation)
            .unwrap();
        *want.entry(w.workdir.clone()).or_default() += t.input;
    }
    for row in v["rows"].as_array().unwrap() {
        let dir = row["workdir"].as_str().unwrap();
        if let Some(input) = want.get(dir) {
            assert_eq!(row["input"], *input, "{dir}");
            assert_eq!(row["project"], dir.rsplit('/').next().unwrap());
        }
    }
    let table = home.ok(&["sessions", "stats", "--by", "project"]).stdout;
    assert!(table.starts_with("PROJECT"), "{table}");
    assert!(table.contains("proj-") || table.contains("gem-"), "{table}");
    home.run(&["sessions", "list", "--origin", "elsewhere"])
        .fails_with(2);
}

/// A conversation of `cli` written to a plain JSONL file (not compressed, not a legacy record).
fn plain(store: &mut NativeStore, cli: Cli) -> common::native::Written {
    loop {
        let w = match cli {
            Cli::Claude => store.claude_conversation(),
            Cli::Codex => store.codex_conversation(),
            Cli::Gemini => store.gemini_conversation(),
        };
        if w.path.extension().is_some_and(|e| e == "jsonl") {
            return w;
        }
    }
}

fn size(path: &Path) -> u64 {
    std::fs::metadata(path).unwrap().len()
}

#[test]
fn a_transcript_that_grew_is_read_from_where_the_last_read_stopped() {
    let home = Home::new();
    let mut store = NativeStore::new(home.user_home(), 17);
    let written: Vec<_> = [Cli::Claude, Cli::Codex, Cli::Gemini]
        .into_iter()
        .map(|cli| plain(&mut store, cli))
        .collect();
    store.generate(2);
    let first = import(&home, &[]);
    assert_eq!(first["files_appended"], 0, "{first}");
    let before: u64 = written.iter().map(|w| size(&w.path)).sum();
    store.claude_resume(&written[0]);
    store.codex_resume(&written[1]);
    store.gemini_resume(&written[2]);
    let grown: u64 = written.iter().map(|w| size(&w.path)).sum::<u64>() - before;
    let report = import(&home, &[]);
    assert_eq!(report["files_read"], 3, "{report}");
    assert_eq!(report["files_appended"], 3, "{report}");
    assert_eq!(
        report["bytes_read"], grown,
        "only the appended bytes: {report}"
    );
    assert_eq!(report["skipped_lines"], 0, "{report}");
    assert_counts_match(&home, &store);

    // Touched, not grown: nothing to read.
    let f = std::fs::File::options()
        .append(true)
        .open(&written[0].path)
        .unwrap();
    f.set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(5))
        .unwrap();
    let report = import(&home, &[]);
    assert_eq!(
        (
            report["files_appended"].as_u64(),
            report["bytes_read"].as_u64()
        ),
        (Some(1), Some(0)),
        "{report}"
    );

    // Rewritten in place (the same inode, an early line longer), then grown: read whole, and
    // its requests, read again, are still counted once.
    let text = std::fs::read_to_string(&written[0].path).unwrap();
    let changed = text.replacen(
        "\"version\":\"2.1.328\"",
        "\"version\":\"2.1.328-rewritten\"",
        1,
    );
    assert_ne!(text, changed);
    std::fs::write(&written[0].path, changed).unwrap();
    store.claude_resume(&written[0]);
    let report = import(&home, &[]);
    assert_eq!(
        report["files_appended"], 0,
        "a rewrite is noticed: {report}"
    );
    assert_eq!(report["bytes_read"], size(&written[0].path), "{report}");
    assert_counts_match(&home, &store);

    // Truncated (its last lines cut): read whole again; what was counted stays counted.
    let text = std::fs::read_to_string(&written[1].path).unwrap();
    let half: Vec<&str> = text.lines().take(text.lines().count() / 2).collect();
    std::fs::write(&written[1].path, half.join("\n") + "\n").unwrap();
    let report = import(&home, &[]);
    assert_eq!(report["files_appended"], 0, "{report}");
    assert_counts_match(&home, &store);
}

#[test]
fn a_response_split_across_two_reads_counts_its_final_figures_once() {
    let home = Home::new();
    let mut store = NativeStore::new(home.user_home(), 19);
    let w = plain(&mut store, Cli::Claude);
    import(&home, &[]);
    // One response in two content blocks, each line with the usage so far; the catch-up runs
    // between the two.
    let line = |output: u64| {
        serde_json::json!({
            "type": "assistant", "isSidechain": false, "sessionId": w.id, "cwd": w.workdir,
            "timestamp": "2026-12-01T09:00:00.000Z", "requestId": "req_split",
            "message": {"id": "msg_split", "model": "claude-opus-4-6", "role": "assistant",
                        "usage": {"input_tokens": 10, "cache_read_input_tokens": 100,
                                  "cache_creation_input_tokens": 0, "output_tokens": output}}
        })
        .to_string()
            + "\n"
    };
    let append = |text: String| {
        use std::io::Write;
        let mut f = std::fs::File::options().append(true).open(&w.path).unwrap();
        f.write_all(text.as_bytes()).unwrap();
    };
    append(line(3));
    let report = import(&home, &[]);
    assert_eq!(report["files_appended"], 1, "{report}");
    // The final snapshot; then, read apart, a sidechain replay of it with other figures (not
    // counted).
    append(line(7));
    import(&home, &[]);
    append(line(99).replace("\"isSidechain\":false", "\"isSidechain\":true"));
    import(&home, &[]);
    store.truth.push(Truth {
        cli: Cli::Claude,
        conversation: w.id.clone(),
        at: "2026-12-01T09:00:00Z".parse().unwrap(),
        model: "claude-opus-4-6".into(),
        input: 110,
        output: 7,
        cached: 100,
    });
    assert_counts_match(&home, &store);
}

#[test]
fn a_rollout_archived_or_compressed_stays_the_same_session() {
    let home = Home::new();
    let mut store = NativeStore::new(home.user_home(), 23);
    let a = plain(&mut store, Cli::Codex);
    let b = plain(&mut store, Cli::Codex);
    import(&home, &[]);
    let sessions = home.list_json(&[]).len();
    // Codex compresses a rollout idle for a while, and archives others.
    let packed = a.path.with_extension("jsonl.zst");
    let bytes = zstd::stream::encode_all(&std::fs::read(&a.path).unwrap()[..], 3).unwrap();
    std::fs::write(&packed, bytes).unwrap();
    std::fs::remove_file(&a.path).unwrap();
    let archive = store.codex_root().join("archived_sessions");
    std::fs::create_dir_all(&archive).unwrap();
    let moved = archive.join(b.path.file_name().unwrap());
    std::fs::rename(&b.path, &moved).unwrap();
    let report = import(&home, &[]);
    assert_eq!(report["transcripts_gone"], 0, "{report}");
    assert_eq!(report["backends"]["codex"]["new"], 0, "{report}");
    assert_eq!(home.list_json(&[]).len(), sessions);
    assert_counts_match(&home, &store);
    for (w, now) in [(&a, &packed), (&b, &moved)] {
        let show = home.ok(&["sessions", "show", &w.id]).stdout;
        assert!(show.contains(&now.display().to_string()), "{show}");
        assert!(!show.contains("gone"), "{show}");
    }
}

#[test]
fn the_same_directories_reached_another_way_are_not_read_again() {
    let home = Home::new();
    let mut store = NativeStore::new(home.user_home(), 29);
    store.generate(2);
    let first = import(&home, &[]);
    assert!(first["files_read"].as_u64().unwrap() > 0, "{first}");
    // HOME given relative to the working directory, and through a link.
    let link = home.path().join("user-link");
    std::os::unix::fs::symlink(home.user_home(), &link).unwrap();
    let parent = home.user_home().parent().unwrap().to_path_buf();
    let relative = home.user_home().file_name().unwrap().to_owned();
    for (dir, user) in [
        (parent, std::path::PathBuf::from(relative)),
        (home.path().to_path_buf(), link),
    ] {
        let report = import_adjusted(&home, |c| {
            c.current_dir(&dir).env("HOME", &user);
        });
        assert_eq!(report["files_read"], 0, "HOME={}: {report}", user.display());
        assert_eq!(report["transcripts_gone"], 0, "{report}");
    }
    assert_counts_match(&home, &store);
}

#[test]
fn an_import_in_small_batches_makes_the_same_sessions() {
    // Subagents' files are found before their conversation's own file: batches of a few files
    // split conversations, whose parts must still come together, each counted once.
    let home = Home::new();
    let mut store = NativeStore::new(home.user_home(), 31);
    store.generate(25);
    let whole = Home::new();
    copy_tree(home.user_home(), whole.user_home());
    let import_with = |h: &Home, batch: &str| -> Value {
        import_adjusted(h, |c| {
            c.env("CLINVK_IMPORT_BATCH", batch);
        })
    };
    let small = import_with(&home, "3");
    let big = import_with(&whole, "100000");
    assert_eq!(small["backends"], big["backends"], "{small}\n{big}");
    for cli in ["claude", "codex", "gemini"] {
        assert_eq!(small["backends"][cli]["new"], 25, "{cli}: {small}");
    }
    assert_counts_match(&home, &store);
    let sessions = |h: &Home| -> BTreeSet<(String, u64, String)> {
        h.list_json(&[])
            .iter()
            .map(|r| {
                (
                    r["id"].as_str().unwrap().to_string(),
                    r["tokens"].as_u64().unwrap(),
                    r["last_used_at"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    assert_eq!(sessions(&home), sessions(&whole));
    // A bad batch size is refused in one line.
    let bad = Run::from_output(
        home.cmd()
            .env("CLINVK_IMPORT_BATCH", "0")
            .args(["sessions", "import"])
            .output()
            .unwrap(),
    );
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    assert!(bad.stderr.contains("CLINVK_IMPORT_BATCH"), "{}", bad.stderr);
}

/// `sessions import` in batches of `batch` files, started and under way: `files` session files
/// written (or it ended first). With `report`, its `--json` report is piped for the test.
fn import_under_way(home: &Home, batch: &str, report: bool, files: usize) -> std::process::Child {
    let pipe = || match report {
        true => std::process::Stdio::piped(),
        false => std::process::Stdio::null(),
    };
    let mut child = home
        .std_cmd()
        .env("CLINVK_IMPORT_BATCH", batch)
        .args(["sessions", "import", "--json"])
        .stdout(pipe())
        .stderr(pipe())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while home.session_files().len() < files && started.elapsed().as_secs() < 60 {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    child
}

fn copy_tree(from: &Path, to: &Path) {
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_tree(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).unwrap();
        }
    }
}

#[test]
fn a_big_first_import_in_batches_counts_everything_once() {
    // Over the store's bulk-load threshold (2000 sessions): the index by the CLI's id is lifted
    // for the whole import, and the batches (of 7 files: conversations split across them) find
    // the sessions earlier ones made.
    let home = Home::new();
    let mut store = NativeStore::new(home.user_home(), 37);
    store.generate(700);
    let report = import_adjusted(&home, |c| {
        c.env("CLINVK_IMPORT_BATCH", "7");
    });
    for cli in ["claude", "codex", "gemini"] {
        assert_eq!(report["backends"][cli]["new"], 700, "{cli}: {report}");
    }
    assert_counts_match(&home, &store);
    home.ok(&["sessions", "reindex", "--check"]);
    // Once more, whole: nothing new, nothing counted twice.
    home.remove_index();
    let again = import(&home, &[]);
    assert_eq!(again["backends"]["claude"]["new"], 0, "{again}");
    assert_counts_match(&home, &store);
}

#[test]
fn an_import_killed_half_way_loses_nothing_and_counts_nothing_twice() {
    let home = Home::new();
    let mut store = NativeStore::new(home.user_home(), 41);
    store.generate(300);
    let conversations = store.written.len();
    // Small batches, each flushed before the next: kill it once some are on disk.
    let mut child = import_under_way(&home, "5", false, 30);
    let _ = child.kill(); // SIGKILL
    child.wait().unwrap();
    let written = home.session_files().len();
    assert!(
        written > 0 && written < conversations,
        "killed half-way: {written} of {conversations} session files"
    );
    // The files written are valid, and the next import finds them: one session each.
    let report = import(&home, &[]);
    assert_eq!(report["skipped"].as_array().unwrap().len(), 0, "{report}");
    assert_eq!(home.list_json(&[]).len(), conversations);
    assert_counts_match(&home, &store);
    home.ok(&["sessions", "reindex", "--check"]);
    let left: Vec<String> = std::fs::read_dir(home.sessions_dir())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp") || n == ".import-writing")
        .collect();
    assert!(left.is_empty(), "the killed import's temp files: {left:?}");
}

#[test]
fn commands_are_answered_between_an_imports_batches() {
    // One conversation a batch, each committed: the import releases the lock after each, and
    // lets in those waiting for it. A command's own catch-up leaves the files to the import
    // under way instead of reading them again.
    let home = Home::new();
    let mut store = NativeStore::new(home.user_home(), 53);
    store.generate(400);
    let mut import = import_under_way(&home, "1", true, 3);
    // A list counts if the import was still running when it ended: with the lock held for the
    // whole import, a list gets in only once it is over (or fails after its 1 s).
    let mut during = 0;
    while import.try_wait().unwrap().is_none() && during < 5 {
        let list = home
            .std_cmd()
            .env("CLINVK_LOCK_TIMEOUT", "1")
            .args(["sessions", "list", "-n", "5", "--json"])
            .output()
            .unwrap();
        let list = Run::from_output(list).success();
        let rows = list.json();
        assert!(rows.as_array().unwrap().len() <= 5, "{rows}");
        if import.try_wait().unwrap().is_none() {
            during += 1;
        }
    }
    let report = Run::from_output(import.wait_with_output().unwrap())
        .success()
        .json();
    assert!(
        during >= 3,
        "only {during} lists answered while the import ran"
    );
    for cli in ["claude", "codex", "gemini"] {
        assert_eq!(report["backends"][cli]["new"], 400, "{cli}: {report}");
    }
    assert_counts_match(&home, &store);
    home.ok(&["sessions", "reindex", "--check"]);
}

#[test]
fn a_rebuild_between_an_imports_batches_loses_nothing() {
    // The rebuilt index knows the session files, not the transcripts read so far: the import
    // stops at the first batch after it, and the next one reads again what it does not know
    // (what was said included).
    let home = Home::new();
    let mut store = NativeStore::new(home.user_home(), 59).with_prose(100);
    store.generate(40);
    let signal = |child: &std::process::Child, sig| {
        // SAFETY: a signal to our own child.
        assert_eq!(unsafe { libc::kill(child.id() as i32, sig) }, 0);
    };
    let mut import = import_under_way(&home, "2", false, 6);
    signal(&import, libc::SIGSTOP);
    let reindex = home
        .std_cmd()
        .args(["sessions", "reindex"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Let the rebuild get going, then the import: the rebuild's swap waits for its batch.
    std::thread::sleep(std::time::Duration::from_millis(300));
    signal(&import, libc::SIGCONT);
    assert!(reindex.wait_with_output().unwrap().status.success());
    assert!(import.wait().unwrap().success());
    import_adjusted(&home, |_| {});
    assert_counts_match(&home, &store);
    home.ok(&["sessions", "reindex", "--check"]);
    for p in &store.planted {
        let rows = home.ok(&["sessions", "search", "--json", &p.token]).json();
        assert_eq!(
            ids_of(rows.as_array().unwrap()),
            std::slice::from_ref(&p.conversation),
            "{}",
            p.token
        );
    }
}

#[test]
fn two_imports_at_once_make_each_session_once() {
    let home = Home::new();
    let mut store = NativeStore::new(home.user_home(), 43);
    store.generate(60);
    let children: Vec<_> = (0..2)
        .map(|_| {
            home.std_cmd()
                .env("CLINVK_IMPORT_BATCH", "25")
                .args(["sessions", "import", "--json"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut new = 0;
    for child in children {
        let report = Run::from_output(child.wait_with_output().unwrap())
            .success()
            .json();
        new += ["claude", "codex", "gemini"]
            .iter()
            .map(|cli| report["backends"][cli]["new"].as_u64().unwrap_or(0))
            .sum::<u64>();
    }
    assert_eq!(
        new as usize,
        store.written.len(),
        "each made once, by one of them"
    );
    assert_eq!(home.list_json(&[]).len(), store.written.len());
    assert_counts_match(&home, &store);
}

#[test]
fn a_deleted_conversation_that_goes_on_comes_back_with_its_subagents() {
    let home = Home::new();
    let mut store = NativeStore::new(home.user_home(), 47);
    store.generate(30);
    let with_subagents = |store: &NativeStore| {
        store
            .written
            .iter()
            .filter(|w| {
                w.cli == Cli::Claude && w.path.with_extension("").join("subagents").is_dir()
            })
            .cloned()
            .collect::<Vec<_>>()
    };
    let picked = with_subagents(&store);
    assert!(picked.len() >= 2, "the generator writes Task subagents");
    let (caught_up, rebuilt) = (&picked[0], &picked[1]);
    import(&home, &[]);
    home.ok(&["sessions", "delete", &caught_up.id, &rebuilt.id]);
    assert_eq!(import(&home, &[])["deleted"], 0);
    // One goes on in the CLI: the catch-up reads the grown file, and its subagents' unchanged
    // files with it.
    store.claude_resume(caught_up);
    let report = import(&home, &[]);
    assert_eq!(report["backends"]["claude"]["new"], 1, "{report}");
    let truth_now: Vec<Truth> = store
        .truth
        .iter()
        .filter(|t| t.conversation != rebuilt.id)
        .cloned()
        .collect();
    let listed = home
        .list_json(&[])
        .into_iter()
        .find(|r| r["id"] == caught_up.id.as_str())
        .expect("back");
    let want: u64 = truth_now
        .iter()
        .filter(|t| t.conversation == caught_up.id)
        .map(Truth::total)
        .sum();
    assert_eq!(listed["tokens"], want, "with its subagents' usage");
    // The other goes on too, and everything is read again from scratch, one file at a time (a
    // subagent's file comes before its conversation's).
    store.claude_resume(rebuilt);
    home.remove_index();
    let report = import_adjusted(&home, |c| {
        c.env("CLINVK_IMPORT_BATCH", "1");
    });
    assert_eq!(report["backends"]["claude"]["new"], 1, "{report}");
    assert_counts_match(&home, &store);
    assert_eq!(import(&home, &[])["files_read"], 0);
}

#[test]
fn a_rollout_seen_in_both_forms_is_not_gone_when_one_goes() {
    let home = Home::new();
    let mut store = NativeStore::new(home.user_home(), 53);
    let w = plain(&mut store, Cli::Codex);
    import(&home, &[]);
    // Codex compressing it: the `.zst` is written before the `.jsonl` is removed, and an
    // import sees both; then the `.jsonl` is touched and read last.
    let packed = w.path.with_extension("jsonl.zst");
    let bytes = zstd::stream::encode_all(&std::fs::read(&w.path).unwrap()[..], 3).unwrap();
    std::fs::write(&packed, bytes).unwrap();
    import(&home, &[]);
    std::fs::File::options()
        .append(true)
        .open(&w.path)
        .unwrap()
        .set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(9))
        .unwrap();
    import(&home, &[]);
    std::fs::remove_file(&w.path).unwrap();
    let report = import(&home, &[]);
    assert_eq!(report["transcripts_gone"], 0, "{report}");
    let show = home.ok(&["sessions", "show", &w.id]).stdout;
    assert!(show.contains(&packed.display().to_string()), "{show}");
    assert!(!show.contains("gone"), "{show}");
    assert_eq!(home.list_json(&[]).len(), 1);
    assert_counts_match(&home, &store);
}
