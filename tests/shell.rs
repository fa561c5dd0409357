//! Fitting into the shell: `clinvk completions <shell>` (scripts that ask clinvk itself for
//! session ids, tags, config keys and backends as one types, checked through a real bash) and
//! `clinvk man` (pages that `man -l` renders).

#[macro_use]
#[allow(unused_macros)]
mod common;

use common::*;

fn completion_home() -> Home {
    let home = Home::new();
    home.add_all(&[
        session("abc123")
            .prompt("fix the login bug\nand more")
            .last_used("2025-01-02T10:00:00Z"),
        session("abd999")
            .prompt("write the release notes")
            .tags(&["release", "docs"])
            .last_used("2025-01-03T10:00:00Z"),
        session("zzz000")
            .field("host", serde_json::json!("workstation"))
            .prompt("unrelated")
            .tags(&["release"])
            .last_used("2025-01-01T10:00:00Z"),
    ]);
    home.ok(&["sessions", "list"]);
    home
}

/// What fish would be offered for the command line `words` (the last one being typed), as
/// `value<TAB>description` lines.
fn offered(home: &Home, words: &[&str]) -> Vec<String> {
    let mut args = vec!["--", "clinvk"];
    args.extend_from_slice(words);
    let run = Run::from_output(
        home.std_cmd()
            .env("CLINVK_COMPLETE", "fish")
            .args(&args)
            .output()
            .unwrap(),
    )
    .success();
    run.stdout.lines().map(str::to_string).collect()
}

#[test]
fn a_partial_id_completes_to_the_sessions_it_starts_with() {
    let home = completion_home();
    // The most recently used first, each described by its first prompt's first line.
    assert_eq!(
        offered(&home, &["sessions", "show", "ab"]),
        [
            "abd999\twrite the release notes",
            "abc123\tfix the login bug"
        ]
    );
    assert_eq!(offered(&home, &["resume", "zz"]), ["zzz000\tunrelated"]);
    assert_eq!(
        offered(&home, &["sessions", "delete", "abc123", "ab"]).len(),
        2
    );
    // Tags, by how many sessions have them; config keys; backends.
    assert_eq!(
        offered(&home, &["sessions", "list", "--tag", ""]),
        ["release\t2 sessions", "docs\t1 session"]
    );
    assert_eq!(
        offered(&home, &["sessions", "tag", "abc123", "do"]),
        ["docs\t1 session"]
    );
    assert_eq!(
        offered(&home, &["config", "get", "import.c"]),
        [
            "import.claude.enabled",
            "import.codex.enabled",
            "import.claude.dir",
            "import.codex.dir"
        ]
    );
    assert_eq!(
        offered(&home, &["sessions", "stats", "--host", "w"]),
        ["workstation\t1 session"]
    );
    assert_eq!(
        offered(&home, &["sessions", "list", "-b", ""]),
        ["claude", "codex", "gemini"]
    );
    // Commands, from the clap definitions.
    assert!(offered(&home, &["sess"])
        .iter()
        .any(|l| l.starts_with("sessions\t")));
}

#[test]
fn completing_changes_nothing_and_never_waits() {
    // No store: nothing offered, nothing made.
    let empty = Home::new();
    assert!(offered(&empty, &["sessions", "show", "ab"]).is_empty());
    assert!(!empty.sessions_dir().exists(), "completion made the store");
    // A store whose lock another clinvk holds: nothing rather than a wait.
    let home = completion_home();
    let before = home.snapshot(true);
    let held = std::fs::File::open(home.lock_path()).unwrap();
    fs2::FileExt::lock_exclusive(&held).unwrap();
    let start = std::time::Instant::now();
    assert!(offered(&home, &["sessions", "show", "ab"]).is_empty());
    assert!(
        start.elapsed() < std::time::Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    drop(held);
    assert_eq!(offered(&home, &["sessions", "show", "ab"]).len(), 2);
    assert_eq!(before, home.snapshot(true));
}

#[test]
fn the_bash_script_completes_through_a_real_bash() {
    require!("bash");
    let home = completion_home();
    let script = home.ok(&["completions", "bash"]).stdout;
    assert!(script.contains("CLINVK_COMPLETE"), "{script}");
    let probe = format!(
        "{script}\nCOMP_WORDS=(clinvk sessions show ab); COMP_CWORD=3; COMP_TYPE=9\n\
         _clap_complete_clinvk clinvk ab clinvk\nprintf '%s\\n' \"${{COMPREPLY[@]}}\"\n"
    );
    let out = bash(&home, &probe, true);
    let words: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(words, ["abd999", "abc123"], "{}", out.stderr);
    // Every shell gets a script naming this binary.
    for shell in ["zsh", "fish", "elvish", "powershell"] {
        let script = home.ok(&["completions", shell]).stdout;
        assert!(script.contains("CLINVK_COMPLETE"), "{shell}: {script}");
        assert!(script.contains("clinvk"), "{shell}");
    }
    let bad = home.run(&["completions", "tcsh"]);
    assert_eq!(bad.code, 2, "{}", bad.stderr);
}

#[test]
fn the_manual_pages_render() {
    require!("man");
    let home = Home::new();
    let page = home.ok(&["man"]).stdout;
    let rendered = |roff: &str| {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("page.1");
        std::fs::write(&file, roff).unwrap();
        let out = std::process::Command::new("man")
            .env("MANWIDTH", "100")
            .arg("-l")
            .arg(&file)
            .output()
            .unwrap();
        Run::from_output(out).success().stdout
    };
    let text = rendered(&page);
    for word in ["NAME", "SYNOPSIS", "sessions", "completions", "--backend"] {
        assert!(text.contains(word), "{word} missing from:\n{text}");
    }
    // One page per command, into a directory.
    let dir = home.path().join("man1");
    home.ok(&["man", "--dir", dir.to_str().unwrap()]);
    let stats = std::fs::read_to_string(dir.join("clinvk-sessions-stats.1")).unwrap();
    let text = rendered(&stats);
    assert!(text.contains("--period"), "{text}");
    assert!(dir.join("clinvk-sessions-list.1").exists());
}
