//! Bad input: every rejection exits with its documented code (2 usage, 3 not found, 5 config),
//! prints one error line on stderr and nothing on stdout, and changes no file (session files,
//! config and index compared byte for byte).

#[macro_use]
#[allow(unused_macros)]
mod common;

use common::*;

const USAGE: i32 = 2;
const CONFIG: i32 = 5;

/// A standard store plus a valid config file.
fn home() -> Home {
    let home = standard_home();
    std::fs::write(
        home.config_path(),
        "session:\n  retention_days: 7\n  default_tags:\n  - clinvk\nbackends:\n  claude:\n    command: /opt/claude\n",
    )
    .unwrap();
    home
}

/// `clinvk ARGS` must fail with `code`, name `mention` in its one error line, and change nothing.
#[track_caller]
fn rejects(home: &Home, args: &[&str], code: i32, mention: &str) {
    let before = home.snapshot(true);
    let run = home.run(args);
    let context = format!("`clinvk {}`", args.join(" "));
    assert_eq!(run.code, code, "{context}: {run:?}");
    let run = run.fails_with(code);
    assert!(
        run.error_line().contains(mention),
        "{context}: the error should mention {mention:?}: {}",
        run.stderr
    );
    assert_same_files(&before, &home.snapshot(true));
}

#[test]
fn unknown_status_or_backend() {
    let home = home();
    rejects(
        &home,
        &["sessions", "list", "--status", "paused"],
        USAGE,
        "paused",
    );
    rejects(
        &home,
        &["sessions", "list", "--status", "expired"],
        USAGE,
        "expired",
    );
    rejects(
        &home,
        &["sessions", "list", "--status", ""],
        USAGE,
        "status",
    );
    rejects(
        &home,
        &["sessions", "list", "--backend", "gpt"],
        USAGE,
        "gpt",
    );
    rejects(
        &home,
        &["sessions", "list", "-b", "Claude!"],
        USAGE,
        "Claude!",
    );
    // The message says what would have been accepted.
    let run = home.run(&["sessions", "list", "--status", "paused"]);
    let line = run.error_line().to_string();
    for s in ["created", "active", "completed", "error"] {
        assert!(line.contains(s), "{line}");
    }
    let run = home.run(&["sessions", "list", "--backend", "gpt"]);
    for b in ["claude", "codex", "gemini"] {
        assert!(run.error_line().contains(b), "{}", run.stderr);
    }
}

#[test]
fn malformed_since_and_until() {
    let home = home();
    for bad in [
        "yesterday",
        "2025-13-01",
        "2025-02-30",
        "2025-1-2",
        "202501271",
        "27/01/2025",
        "2025-01-27T25:00:00Z",
        "7x",
        "3.5d",
        "d",
    ] {
        rejects(&home, &["sessions", "list", "--since", bad], USAGE, bad);
        rejects(&home, &["sessions", "list", "--until", bad], USAGE, bad);
    }
    rejects(&home, &["sessions", "list", "--since="], USAGE, "date");
}

#[test]
fn bad_older_than() {
    let home = home();
    for bad in [
        "30",
        "3.5d",
        "30x",
        "1 d",
        "d",
        "99999999999999999999d",
        "thirty days",
    ] {
        let arg = format!("--older-than={bad}");
        rejects(&home, &["sessions", "clean", &arg], USAGE, bad);
        rejects(&home, &["sessions", "clean", &arg, "--dry-run"], USAGE, bad);
    }
    rejects(
        &home,
        &["sessions", "clean", "--older-than=-3d"],
        USAGE,
        "-3d",
    );
    rejects(
        &home,
        &["sessions", "clean", "--older-than="],
        USAGE,
        "duration",
    );
}

#[test]
fn ids_with_slashes_or_dots() {
    let home = home();
    for bad in [
        "a/b",
        "../abc123",
        "..",
        ".",
        "abc123/..",
        "/etc/passwd",
        "a b",
        "abc123.json",
    ] {
        rejects(&home, &["sessions", "show", bad], USAGE, bad);
        rejects(&home, &["sessions", "show", bad, "--json"], USAGE, bad);
        rejects(&home, &["sessions", "delete", bad], USAGE, bad);
        rejects(&home, &["sessions", "tag", bad, "x"], USAGE, bad);
    }
    rejects(&home, &["sessions", "show", ""], USAGE, "session id");
    // A bad id among good ones: nothing is deleted.
    rejects(
        &home,
        &["sessions", "delete", "abc123", "../def456"],
        USAGE,
        "../def456",
    );
    assert!(home.session_exists("abc123") && home.session_exists("def456"));
}

#[test]
fn invalid_tags() {
    let home = home();
    rejects(&home, &["sessions", "tag", "abc123", ""], USAGE, "tag");
    rejects(&home, &["sessions", "tag", "abc123", "   "], USAGE, "tag");
    rejects(&home, &["sessions", "tag", "abc123", "a,b"], USAGE, "a,b");
    rejects(
        &home,
        &["sessions", "tag", "abc123", "tab\there"],
        USAGE,
        "tag",
    );
    // One bad tag among good ones: none is added.
    rejects(
        &home,
        &["sessions", "tag", "abc123", "good", "x,y"],
        USAGE,
        "x,y",
    );
    rejects(
        &home,
        &["sessions", "tag", "abc123", "good", "", "--remove"],
        USAGE,
        "tag",
    );
    let long = "t".repeat(101);
    rejects(&home, &["sessions", "tag", "abc123", &long], USAGE, "tag");
    rejects(&home, &["sessions", "list", "--tag", ""], USAGE, "tag");
    rejects(&home, &["sessions", "list", "--tag", "a,b"], USAGE, "a,b");
    // No tag at all.
    rejects(&home, &["sessions", "tag", "abc123"], USAGE, "required");
}

#[test]
fn bad_flags_and_numbers() {
    let home = home();
    rejects(&home, &["sessions", "list", "--bogus"], USAGE, "--bogus");
    rejects(&home, &["sessions", "list", "--limit", "abc"], USAGE, "abc");
    rejects(&home, &["sessions", "list", "--limit=-1"], USAGE, "-1");
    rejects(&home, &["sessions", "list", "--offset", "x"], USAGE, "x");
    rejects(&home, &["sessions", "delete"], USAGE, "required");
    rejects(&home, &["sessions", "frobnicate"], USAGE, "frobnicate");
}

#[test]
fn bad_environment() {
    let home = home();
    let before = home.snapshot(true);
    // Not a number, and numbers no Duration holds (they panicked).
    for value in ["soon", "1e20", "18446744073709551616", "-1", "inf", "NaN"] {
        let run = Run::from_output(
            home.cmd()
                .env("CLINVK_LOCK_TIMEOUT", value)
                .args(["sessions", "tag", "abc123", "x"])
                .output()
                .unwrap(),
        )
        .fails_with(USAGE);
        assert!(
            run.error_line().contains("CLINVK_LOCK_TIMEOUT")
                && run.error_line().contains("is not a number of seconds"),
            "{value}: {}",
            run.stderr
        );
    }
    let run = Run::from_output(
        home.cmd()
            .env("CLINVK_NOW", "tomorrow")
            .args(["sessions", "clean", "--older-than", "1s"])
            .output()
            .unwrap(),
    )
    .fails_with(USAGE);
    assert!(run.error_line().contains("CLINVK_NOW"), "{}", run.stderr);
    assert_same_files(&before, &home.snapshot(true));
}

#[test]
fn unknown_config_keys() {
    let home = home();
    for key in [
        "session.nope",
        "nope",
        "session",
        "session.retention_days.x",
        "",
    ] {
        rejects(&home, &["config", "get", key], USAGE, "config key");
        rejects(&home, &["config", "set", key, "1"], USAGE, "config key");
    }
    // The message lists the keys that exist.
    let run = home.run(&["config", "get", "session.nope"]);
    assert!(
        run.error_line().contains("session.retention_days"),
        "{}",
        run.stderr
    );
}

#[test]
fn bad_config_values() {
    let home = home();
    let cases: &[(&str, &str)] = &[
        ("session.retention_days", "-1"),
        ("session.retention_days", "thirty"),
        ("session.retention_days", "1.5"),
        ("session.retention_days", "[1]"),
        ("session.store_token_usage", "maybe"),
        ("session.store_token_usage", "2"),
        ("session.default_tags", "notalist"),
        ("session.default_tags", r#"["a,b"]"#),
        ("session.default_tags", r#"[""]"#),
        ("session.default_tags", "[1, 2]"),
        ("session.default_tags", "{a: b}"),
    ];
    // Not YAML at all: the message names the value.
    rejects(
        &home,
        &["config", "set", "session.default_tags", "[unclosed"],
        USAGE,
        "[unclosed",
    );
    for (key, value) in cases {
        // `--` so that "-1" reaches clinvk's own validation rather than clap's flag parsing.
        rejects(&home, &["config", "set", key, "--", value], USAGE, key);
    }
    // Without `--`, clap rejects "-1" as an unknown flag: still exit 2 and nothing changed.
    rejects(
        &home,
        &["config", "set", "session.retention_days", "-1"],
        USAGE,
        "-1",
    );
}

#[test]
fn config_file_that_is_not_valid_yaml() {
    let home = home();
    for text in [
        "session: [\n",
        "session:\n  retention_days: 7\n bad indent: x\n",
        "\t- tabs\n",
        "- a\n- b\n",
        "session:\n  retention_days: thirty\n",
        "session:\n  store_token_usage: maybe\n",
        "session:\n  default_tags: oops\n",
    ] {
        std::fs::write(home.config_path(), text).unwrap();
        rejects(
            &home,
            &["config", "get", "session.retention_days"],
            CONFIG,
            "config.yaml",
        );
        // A file that does not parse cannot be edited safely; a bad value can be (and setting
        // that key is how it gets repaired), so only syntax errors block `config set`.
        let parses = !text.starts_with("session: [")
            && !text.contains(" bad indent")
            && !text.starts_with('\t')
            && !text.starts_with("- ");
        if !parses {
            rejects(
                &home,
                &["config", "set", "session.retention_days", "3"],
                CONFIG,
                "config.yaml",
            );
        }
        rejects(&home, &["config", "show"], CONFIG, "config.yaml");
        rejects(&home, &["config", "show", "--json"], CONFIG, "config.yaml");
        // `clean` without --older-than needs the retention: it must not guess and delete.
        rejects(&home, &["sessions", "clean"], CONFIG, "config.yaml");
        rejects(
            &home,
            &["sessions", "clean", "--dry-run"],
            CONFIG,
            "config.yaml",
        );
        assert_eq!(std::fs::read_to_string(home.config_path()).unwrap(), text);
    }
    // Commands that do not need the config still work.
    assert_eq!(home.list_ids(&[]).len(), 6);
    home.ok(&["config", "path"]);
}

#[test]
fn config_set_repairs_a_bad_value() {
    let home = home();
    std::fs::write(
        home.config_path(),
        "# mine\nsession:\n  retention_days: thirty\n",
    )
    .unwrap();
    let out = home
        .cmd()
        .args(["config", "set", "session.retention_days", "3"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = home
        .cmd()
        .args(["config", "get", "session.retention_days"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "3\n");
}

/// User text in an error is escaped, so the error stays one line and cannot drive a terminal.
#[test]
fn user_text_in_errors_is_escaped_to_one_line() {
    let home = home();
    for args in [
        vec!["sessions", "list", "--since", "5d\nDROP"],
        vec!["config", "set", "session.retention_days", "{a: 1,\n b: 2}"],
        vec!["sessions", "show", "ab\u{1b}[2Jcd"],
        vec!["sessions", "list", "--status", "x\ny"],
    ] {
        let run = home.run(&args).fails_with(USAGE);
        assert!(!run.stderr.contains('\u{1b}'), "{args:?}: {:?}", run.stderr);
        assert!(
            run.stderr.trim_end().lines().count() == 1,
            "{args:?}: {:?}",
            run.stderr
        );
    }
}

/// An id that cannot be one is refused before anything is opened: not even the store's
/// directory is made.
#[test]
fn a_malformed_id_creates_nothing() {
    for args in [
        vec!["sessions", "show", "../x"],
        vec!["sessions", "tag", "a/b", "t"],
        vec!["sessions", "delete", "ok1", "../../etc"],
        vec!["sessions", "fork", "x y"],
        vec!["resume", "../x", "prompt"],
    ] {
        let home = Home::new();
        let run = home.run(&args).fails_with(USAGE);
        assert!(
            run.error_line().contains("is not a session id"),
            "{args:?}: {}",
            run.stderr
        );
        assert!(
            !home.sessions_dir().exists(),
            "{args:?} made the store directory"
        );
    }
}
