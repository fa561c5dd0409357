//! Snapshots of what people read: the session table, `sessions show`, the `sessions stats`
//! tables, `clean --dry-run`, `reindex`, `config show`, `--help`, and the one-line errors, each
//! with the command line, its exit code, stdout and stderr, under the frozen clock (CLINVK_NOW,
//! TZ=UTC, set by `Home`). They guard refactors that must not change behaviour: any change in
//! these outputs fails here with a diff.
//!
//! The snapshots are the `.snap` files in tests/snapshots/. After an intended change, review and
//! accept the new output with `cargo insta review` (or rerun with `INSTA_UPDATE=always` and read
//! the diff in git). Under CI=true insta never writes a snapshot, so a missing one fails.
//!
//! Redacted, because they differ from run to run (literal replacements in `transcript`, and two
//! insta filters in `check`):
//! - temporary directories (the fakes' project root, CLINVK_HOME, HOME) become `[ROOT]`,
//!   `[CLINVK_HOME]` and `[HOME]`;
//! - the ids clinvk generates for new sessions (8 random characters) become `[CLAUDE]`,
//!   `[FORKED]`, ..., `[NEW-ID]`: as wide as the ids, so that tables stay aligned, and named, so
//!   that the snapshot still shows which session is which;
//! - the backend session ids the fake CLIs generate (random UUIDs) become `[UUID]`;
//! - the elapsed time `reindex` reports (`in 0.13s`) becomes `in [DURATION]`.
//!
//! Everything else is fixed: the clock, the zone, the store's contents, prices (set in config,
//! so that a change to the embedded price table does not show here), and the help width
//! (COLUMNS; no stream is a terminal, so clap wraps at COLUMNS and the table's prompt column
//! takes its default width).
#![cfg(unix)]

#[macro_use]
#[allow(unused_macros)]
mod common;

use std::path::Path;

use common::*;
use rstest::rstest;

/// The width clap wraps `--help` to (it reads COLUMNS when no stream is a terminal).
const COLUMNS: &str = "100";

/// `clinvk ARGS` in `home` with the snapshot environment: the test environment of `Home::cmd`,
/// a fixed COLUMNS, and nothing that forces colours on.
fn run_in(home: &Home, args: &[&str]) -> Run {
    Run::from_output(snap_cmd(home).args(args).output().expect("run clinvk"))
}

fn snap_cmd(home: &Home) -> assert_cmd::Command {
    let mut cmd = home.cmd();
    cmd.env("COLUMNS", COLUMNS)
        .env_remove("LINES")
        .env_remove("CLINVK_BACKEND")
        .env_remove("CLICOLOR_FORCE")
        .env_remove("FORCE_COLOR");
    cmd
}

/// A command's transcript as a snapshot holds it:
///
/// ```text
/// $ clinvk ARGS
/// exit: CODE
/// --- stdout ---
/// ...
/// --- stderr ---
/// ...
/// ```
///
/// An empty stream is `(empty)`; one whose last line has no newline ends with
/// `[no newline at end]`, so that a lost or added newline shows. Spaces at the end of a line
/// are shown as `␠` (clap pads arguments that have no help text), so that they show in a diff
/// and an editor that strips trailing spaces cannot break a snapshot. `redact`: literal
/// replacements, applied in order.
fn transcript(args: &[&str], run: &Run, redact: &[(String, String)]) -> String {
    fn stream(text: &str) -> String {
        if text.is_empty() {
            return "(empty)\n".to_string();
        }
        let mut out = String::new();
        for line in text.split_inclusive('\n') {
            let (body, end) = match line.strip_suffix('\n') {
                Some(body) => (body, "\n"),
                None => (line, "\n[no newline at end]\n"),
            };
            let kept = body.trim_end_matches(' ');
            out.push_str(kept);
            out.push_str(&"␠".repeat(body.len() - kept.len()));
            out.push_str(end);
        }
        out
    }
    let mut out = format!(
        "$ clinvk {}\nexit: {}\n--- stdout ---\n{}--- stderr ---\n{}",
        args.iter()
            .map(|a| shell_word(a))
            .collect::<Vec<_>>()
            .join(" "),
        run.code,
        stream(&run.stdout),
        stream(&run.stderr)
    );
    for (from, to) in redact {
        if !from.is_empty() {
            out = out.replace(from.as_str(), to.as_str());
        }
    }
    out
}

/// `word` as a reader would type it in a shell (quoted when it holds anything but plain
/// characters).
fn shell_word(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=,+@%".contains(c));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// Assert the snapshot `name` (tests/snapshots/NAME.snap), with insta's regex filters for what
/// literal replacement cannot catch: the fakes' UUIDs, reindex's elapsed time, and the times
/// and temporary names in transcript paths.
#[track_caller]
fn check(name: &str, text: &str) {
    let mut settings = insta::Settings::clone_current();
    settings.set_prepend_module_to_snapshot(false);
    settings.set_omit_expression(true);
    settings.add_filter(
        r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b",
        "[UUID]",
    );
    settings.add_filter(r"\bin \d+(\.\d+)?m?s\b", "in [DURATION]");
    // The CLIs' transcript paths: Claude's project name of a temporary directory, and the
    // times in Codex's and Gemini's file names.
    settings.add_filter(r"-tmp-clinvk-fakes-[A-Za-z0-9]+-", "-[FAKES]-");
    settings.add_filter(
        r"sessions/\d{4}/\d{2}/\d{2}/rollout-\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}-",
        "sessions/[DAY]/rollout-[TIME]-",
    );
    settings.add_filter(
        r"session-\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-[0-9a-f]{8}\.jsonl",
        "session-[TIME]-[ID8].jsonl",
    );
    settings.bind(|| insta::assert_snapshot!(name, text));
}

/// Run `clinvk ARGS` in `home` and check its transcript against the snapshot `name`; the run.
#[track_caller]
fn snap(name: &str, home: &Home, args: &[&str]) -> Run {
    let run = run_in(home, args);
    check(name, &transcript(args, &run, &home_redactions(home)));
    run
}

/// The home's temporary directories, for `transcript`.
fn home_redactions(home: &Home) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (dir, name) in [(home.path(), "[CLINVK_HOME]"), (home.user_home(), "[HOME]")] {
        // Both spellings: as given, and canonical (macOS's /var is /private/var).
        if let Ok(real) = std::fs::canonicalize(dir) {
            out.push((real.display().to_string(), name.to_string()));
        }
        out.push((dir.display().to_string(), name.to_string()));
    }
    out
}

// ----- sessions list ---------------------------------------------------------------------------

#[rstest]
#[case::all("list_all", &["sessions", "list"])]
#[case::tag("list_tag_bugfix", &["sessions", "list", "--tag", "bugfix"])]
#[case::backend_status("list_codex_completed", &["sessions", "list", "-b", "codex", "--status", "completed"])]
#[case::since_search("list_since_search", &["sessions", "list", "--since", "2025-01-26", "--search", "AUTH"])]
#[case::paged("list_paged", &["sessions", "ls", "-n", "2", "--offset", "1"])]
#[case::nothing("list_no_match", &["sessions", "list", "--tag", "nope"])]
#[case::json("list_json_project_x", &["sessions", "list", "--tag", "project-x", "--status", "active", "--json"])]
fn sessions_list(#[case] name: &str, #[case] args: &[&str]) {
    let home = standard_home();
    snap(name, &home, args).success();
}

/// Long and multi-line prompts, long ids and an empty store's table.
#[test]
fn sessions_list_titles() {
    let home = Home::new();
    home.add_all(&[
        session("long")
            .used_ago(chrono::Duration::minutes(3))
            .prompt(&format!("{} end", "word ".repeat(40))),
        session("multiline")
            .used_ago(chrono::Duration::hours(3))
            .prompt("first line of the prompt\nsecond line\n\nthird"),
        session("an-id-of-thirty-two-characters_x")
            .used_ago(chrono::Duration::days(400))
            .tokens(1_234_567, 89, 0)
            .prompt("  leading spaces and a tab\there"),
        session("empty")
            .used_ago(chrono::Duration::seconds(20))
            .prompt(""),
    ]);
    snap("list_titles", &home, &["sessions", "list"]).success();
    let empty = Home::new();
    snap("list_empty_store", &empty, &["sessions", "list"]).success();
}

// ----- sessions search -------------------------------------------------------------------------

#[rstest]
#[case::words("search_auth", &["sessions", "search", "auth"])]
#[case::json("search_json", &["sessions", "search", "auth", "--backend", "claude", "-n", "1", "--json"])]
#[case::nothing("search_no_match", &["sessions", "search", "zzqx"])]
fn sessions_search(#[case] name: &str, #[case] args: &[&str]) {
    let home = standard_home();
    snap(name, &home, args).success();
}

// ----- sessions show ---------------------------------------------------------------------------

/// Sessions written as files: the guide's example, a fork, one with turns and reported costs,
/// one that failed, one with no backend session and nothing optional.
#[test]
fn sessions_show_files() {
    let home = Home::new();
    home.write_session("abc123def", GUIDE_EXAMPLE);
    home.add_all(&[
        session("child1")
            .field("parent_id", serde_json::json!("abc123def"))
            .tags(&["bugfix", "auth", "alt"])
            .prompt("try another way"),
        session("child2")
            .field("parent_id", serde_json::json!("abc123def"))
            .used_ago(chrono::Duration::days(3)),
        session("turns1")
            .model("claude-opus-4-5")
            .created("2025-01-20T09:00:00Z")
            .tags(&["release"])
            .prompt("write the release notes\nfor 1.2")
            .turns(&[
                turn("2025-01-20T09:00:00Z", 12_000, 800, 9_000)
                    .cache_write(2_000)
                    .cost(0.0612),
                turn("2025-01-26T15:00:00Z", 30_500, 1_250, 28_000)
                    .reasoning(300)
                    .cost(0.1034),
                turn("2025-01-27T11:00:00Z", 400, 20, 0).model("claude-sonnet-4-5"),
            ]),
        session("failed1")
            .status("error")
            .backend("codex")
            .model("gpt-5-codex")
            .field(
                "metadata",
                serde_json::json!({
                    "exit_code": 1,
                    "duration_seconds": 4.2,
                    "error": "codex failed: HTTP 429: rate limit or quota reached: wait and try again"
                }),
            ),
        session("bare1")
            .backend("gemini")
            .status("completed")
            .backend_session_id(None)
            .field("model", serde_json::Value::Null)
            .workdir("")
            .prompt("")
            .tokens(0, 0, 0)
            .used_ago(chrono::Duration::days(45)),
    ]);
    home.warm();
    for (name, id) in [
        ("show_guide_example", "abc123def"),
        ("show_forked_file", "child1"),
        ("show_turns_and_cost", "turns1"),
        ("show_error_file", "failed1"),
        ("show_bare_gemini", "bare1"),
        ("show_by_prefix", "turn"),
    ] {
        snap(name, &home, &["sessions", "show", id]).success();
    }
    snap(
        "error_ambiguous_prefix",
        &home,
        &["sessions", "show", "chil"],
    );
}

/// What `f`'s run printed, with its generated ids named.
fn fake_transcript(f: &Fakes, args: &[&str], run: &Run, ids: &[(&str, &str)]) -> String {
    transcript(args, run, &fake_redactions(f, ids))
}

/// The fakes' temporary directories and the given (generated id, placeholder) pairs. A
/// placeholder is as wide as the id it replaces, so that the table's columns stay aligned.
#[track_caller]
fn fake_redactions(f: &Fakes, ids: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut out = vec![(f.root.display().to_string(), "[ROOT]".to_string())];
    out.extend(home_redactions(&f.home));
    for (id, name) in ids {
        assert_eq!(
            id.len(),
            name.chars().count(),
            "the placeholder {name} must be as wide as the id {id}"
        );
        out.push((id.to_string(), name.to_string()));
    }
    out
}

/// Start a session through the fake CLI: `clinvk -b BACKEND --json PROMPT` in `dir`; its id.
#[track_caller]
fn start(f: &Fakes, dir: &Path, backend: &str, prompt: &str) -> String {
    f.at(dir)
        .args(["-b", backend, "--json", prompt])
        .ok()
        .run
        .session_id()
}

/// `sessions show ID` of a home run by the fakes, against the snapshot `name`.
#[track_caller]
fn snap_show(f: &Fakes, name: &str, id: &str, ids: &[(&str, &str)]) {
    let args = ["sessions", "show", id];
    let run = run_in(&f.home, &args).success();
    check(name, &fake_transcript(f, &args, &run, ids));
}

/// Sessions made by running the fake CLIs: Claude with a resume, a fork made without a prompt
/// (pending, then run), Codex and Gemini.
#[test]
fn sessions_show_runs() {
    let f = Fakes::new();
    let dir = f.dir("app");
    let claude = start(&f, &dir, "claude", "fix the bug in auth.go");
    f.at(&dir)
        .args(["resume", &claude, "now add a test"])
        .env("CLINVK_NOW", "2025-01-27T12:10:00Z")
        .ok();
    f.home.ok(&["sessions", "tag", &claude, "auth"]);

    let fork_args = ["sessions", "fork", claude.as_str()];
    let forked = f.at(&dir).args(fork_args).ok().run;
    let fork = forked.stdout.trim_end().to_string();
    let ids = [(claude.as_str(), "[CLAUDE]"), (fork.as_str(), "[FORKED]")];
    check(
        "fork_without_prompt",
        &fake_transcript(&f, &fork_args, &forked, &ids),
    );
    snap_show(&f, "show_fork_pending", &fork, &ids);
    f.at(&f.dir("elsewhere"))
        .args(["resume", &fork, "try another way"])
        .env("CLINVK_NOW", "2025-01-27T12:20:00Z")
        .ok();

    let codex_dir = f.dir("api");
    let codex = start(&f, &codex_dir, "codex", "implement user registration");
    // A minute earlier than the codex session: sessions used at the same instant are listed
    // by id, and these ids are random.
    let gemini = f
        .at(&f.dir("docs"))
        .env("CLINVK_NOW", "2025-01-27T11:59:00Z")
        .args(["-b", "gemini", "--json", "explain the algorithm"])
        .ok()
        .run
        .session_id();
    let ids = [
        (claude.as_str(), "[CLAUDE]"),
        (fork.as_str(), "[FORKED]"),
        (codex.as_str(), "[CODEX1]"),
        (gemini.as_str(), "[GEMINI]"),
    ];
    snap_show(&f, "show_claude_resumed", &claude, &ids);
    snap_show(&f, "show_fork_after_run", &fork, &ids);
    snap_show(&f, "show_codex", &codex, &ids);
    snap_show(&f, "show_gemini", &gemini, &ids);
    let args = ["sessions", "list"];
    let run = run_in(&f.home, &args).success();
    check("list_after_runs", &fake_transcript(&f, &args, &run, &ids));
}

/// A first run that failed: Claude keeps its backend session (resumable), Gemini does not. The
/// run's own one-line error is in the snapshot too.
#[rstest]
#[case::claude("claude", "fail429")]
#[case::gemini("gemini", "fail401")]
fn sessions_show_failed_first_run(#[case] backend: &str, #[case] scenario: &str) {
    let f = Fakes::new();
    let dir = f.dir("app");
    let args = ["-b", backend, "fix the bug"];
    let ran = f.at(&dir).args(args).scenario(scenario).run().run;
    let id = f.only_session()["id"].as_str().unwrap().to_string();
    let ids = [(id.as_str(), "[NEW-ID]")];
    check(
        &format!("run_{backend}_{scenario}"),
        &fake_transcript(&f, &args, &ran, &ids),
    );
    snap_show(&f, &format!("show_{backend}_first_run_failed"), &id, &ids);
}

// ----- sessions stats --------------------------------------------------------------------------

/// Prices for the stats store, USD per million tokens (input, output, cache_read, cache_write).
const STATS_PRICING: &str = "pricing:
  claude-opus-4-5: {input: 5, output: 25, cache_read: 0.5, cache_write: 6.25}
  claude-sonnet-4-5: {input: 3, output: 15, cache_read: 0.3, cache_write: 3.75}
  gpt-5-codex: {input: 1.25, output: 10, cache_read: 0.125, cache_write: 1.25}
  gemini-2.5-pro: {input: 1.25, output: 10, cache_read: 0.125, cache_write: 1.25}
";

/// A store with runs in December and January (NOW is Monday 2025-01-27): Claude with reported
/// costs, Codex and Gemini estimated from STATS_PRICING, a file without turns, a session that
/// never ran. In January 871,300 tokens: 87 % of a 1,000,000 budget.
fn stats_home() -> Home {
    let home = Home::new();
    home.add_all(&[
        session("s1claude")
            .model("claude-opus-4-5")
            .tags(&["auth"])
            .workdir("/projects/myapp")
            .created("2024-12-15T10:00:00Z")
            .turns(&[
                turn("2024-12-15T10:00:00Z", 1_000, 200, 300).cost(0.05),
                turn("2025-01-10T10:00:00Z", 400_000, 20_000, 300_000)
                    .cache_write(50_000)
                    .cost(1.25),
            ]),
        session("s2codex")
            .backend("codex")
            .model("gpt-5-codex")
            .tags(&["auth", "api"])
            .workdir("/projects/api")
            .created("2025-01-20T08:00:00Z")
            .turns(&[turn("2025-01-20T08:00:00Z", 300_000, 50_000, 100_000).reasoning(10_000)]),
        session("s3gemini")
            .backend("gemini")
            .model("gemini-2.5-pro")
            .workdir("/projects/myapp")
            .created("2024-12-20T09:00:00Z")
            .turns(&[
                turn("2024-12-20T09:00:00Z", 50_000, 5_000, 0),
                turn("2025-01-26T09:00:00Z", 90_000, 9_000, 20_000),
            ]),
        session("s4sonnet")
            .model("claude-sonnet-4-5")
            .status("completed")
            .workdir("/projects/api")
            .created("2025-01-05T10:00:00Z")
            .last_used("2025-01-05T11:00:00Z")
            .tokens(2_000, 300, 0),
        session("s5new")
            .backend("codex")
            .status("created")
            .backend_session_id(None)
            .created("2025-01-27T11:00:00Z")
            .last_used("2025-01-27T11:00:00Z")
            .tokens(0, 0, 0),
    ]);
    std::fs::write(home.config_path(), STATS_PRICING).expect("write config.yaml");
    home.warm();
    home
}

#[rstest]
#[case::totals("stats_totals", &[])]
#[case::month_backend("stats_by_month_backend", &["--by", "month", "--by", "backend"])]
#[case::model("stats_by_model", &["--by", "model"])]
#[case::tag_since("stats_by_tag_since", &["--by", "tag", "--since", "2025-01-01"])]
#[case::day_backend_filter("stats_by_day_codex_gemini", &["--by", "day,backend", "--since", "2025-01-20", "--status", "active"])]
#[case::budget("stats_budget_tokens", &["--budget", "1000000"])]
#[case::budget_exceeded("stats_budget_both_exceeded", &["--budget", "200k", "--budget-usd", "1.5"])]
#[case::budget_week("stats_budget_week_no_runs", &["--budget-usd", "1.5", "--period", "week"])]
#[case::budget_under("stats_budget_under", &["--by", "backend", "--budget", "2M"])]
fn sessions_stats(#[case] name: &str, #[case] args: &[&str]) {
    let home = stats_home();
    let mut all = vec!["sessions", "stats"];
    all.extend_from_slice(args);
    snap(name, &home, &all);
}

/// A model with no price: no cost for it, and one warning naming it.
#[test]
fn sessions_stats_unpriced_model() {
    let home = stats_home();
    home.add(
        &session("s6house")
            .model("mystery-9")
            .created("2025-01-25T10:00:00Z")
            .turns(&[turn("2025-01-25T10:00:00Z", 7_000, 700, 0)]),
    );
    home.warm();
    snap(
        "stats_unpriced_model",
        &home,
        &["sessions", "stats", "--by", "model"],
    )
    .success();
}

// ----- clean, reindex, config ------------------------------------------------------------------

#[rstest]
#[case::default("clean_dry_run", &["sessions", "clean", "--dry-run"])]
#[case::older("clean_dry_run_older_than", &["sessions", "clean", "--dry-run", "--older-than", "1d"])]
#[case::nothing("clean_dry_run_nothing", &["sessions", "clean", "--dry-run", "--older-than", "90d"])]
fn sessions_clean(#[case] name: &str, #[case] args: &[&str]) {
    let home = standard_home();
    let before = home.snapshot(false);
    snap(name, &home, args).success();
    assert_same_files(&before, &home.snapshot(false));
}

/// `clean` for real, after its dry run.
#[test]
fn sessions_clean_deletes() {
    let home = standard_home();
    snap(
        "clean_older_than",
        &home,
        &["sessions", "clean", "--older-than", "1d"],
    )
    .success();
}

/// reindex's counts, with an invalid file and an interrupted write's temp file, then `--check`.
#[test]
fn sessions_reindex() {
    let home = standard_home();
    home.write_session("broken", "{\"id\": \"broken\", \"backend\": ");
    home.write_session(
        "wrongbackend",
        &session("wrongbackend").backend("nope").to_json(),
    );
    std::fs::write(home.sessions_dir().join(".abc123.json.4242.1f2e.tmp"), "{").unwrap();
    snap("reindex", &home, &["sessions", "reindex"]).success();
    snap("reindex_check", &home, &["sessions", "reindex", "--check"]).success();
    let clean = standard_home();
    snap("reindex_clean_store", &clean, &["sessions", "reindex"]).success();
}

#[test]
fn config_show() {
    let home = Home::new();
    snap("config_show_defaults", &home, &["config", "show"]).success();
    std::fs::write(
        home.config_path(),
        "# mine\nsession:\n  retention_days: 14\n  default_tags: [\"${USER}\", team]\n  token_budget: 2000000\ndefault_backend: codex\nbackends:\n  claude:\n    command: ~/bin/claude\nrun:\n  timeout: 90s\npricing:\n  house-model: {input: 0.4, output: 1.6}\n",
    )
    .unwrap();
    snap("config_show_set", &home, &["config", "show"]).success();
    snap(
        "config_set",
        &home,
        &["config", "set", "session.retention_days", "7"],
    )
    .success();
    snap(
        "config_get",
        &home,
        &["config", "get", "session.default_tags"],
    )
    .success();
    snap("config_path", &home, &["config", "path"]).success();
}

/// tag, untag and delete: their confirmations, and delete's refusal of an unknown id.
#[test]
fn sessions_tag_and_delete() {
    let home = standard_home();
    snap(
        "tag_add",
        &home,
        &["sessions", "tag", "def456", "urgent", "project-x"],
    )
    .success();
    snap(
        "tag_remove",
        &home,
        &["sessions", "tag", "def456", "feature-y", "--remove"],
    )
    .success();
    snap(
        "delete_unknown",
        &home,
        &["sessions", "delete", "abc123", "nope1234"],
    );
    snap("delete", &home, &["sessions", "rm", "abc123", "pqr6"]).success();
}

// ----- --help ----------------------------------------------------------------------------------

#[rstest]
#[case::top("help_top", &["--help"])]
#[case::resume("help_resume", &["resume", "--help"])]
#[case::sessions("help_sessions", &["sessions", "--help"])]
#[case::list("help_sessions_list", &["sessions", "list", "--help"])]
#[case::show("help_sessions_show", &["sessions", "show", "--help"])]
#[case::stats("help_sessions_stats", &["sessions", "stats", "--help"])]
#[case::fork("help_sessions_fork", &["sessions", "fork", "--help"])]
#[case::clean("help_sessions_clean", &["sessions", "clean", "--help"])]
#[case::config("help_config", &["config", "--help"])]
#[case::config_set("help_config_set", &["config", "set", "--help"])]
fn help(#[case] name: &str, #[case] args: &[&str]) {
    let home = Home::new();
    snap(name, &home, args).success();
}

// ----- one-line errors -------------------------------------------------------------------------

#[rstest]
#[case::unknown_status("error_unknown_status", &["sessions", "list", "--status", "done"])]
#[case::unknown_backend("error_unknown_backend", &["sessions", "list", "-b", "gpt"])]
#[case::bad_date("error_malformed_date", &["sessions", "list", "--since", "2025-13-01"])]
#[case::bad_age("error_malformed_age", &["sessions", "list", "--until", "7 days"])]
#[case::unknown_id("error_unknown_session", &["sessions", "show", "zzzz9999"])]
#[case::short_prefix("error_short_prefix", &["sessions", "show", "abc"])]
#[case::unknown_flag("error_unknown_flag", &["sessions", "list", "--colour"])]
#[case::unknown_dim("error_unknown_group", &["sessions", "stats", "--by", "hour"])]
#[case::bad_budget("error_malformed_budget", &["sessions", "stats", "--budget", "lots"])]
#[case::unknown_key("error_unknown_config_key", &["config", "set", "session.retention", "7"])]
#[case::bad_value("error_config_value_type", &["config", "set", "session.retention_days", "soon"])]
#[case::bad_tag("error_malformed_tag", &["sessions", "tag", "abc123", "a,b"])]
#[case::resume_none("error_resume_no_backend_session", &["resume", "jkl012", "again"])]
#[case::command_name("error_prompt_is_a_command", &["-b", "codex", "resume"])]
fn errors(#[case] name: &str, #[case] args: &[&str]) {
    let home = standard_home();
    let before = home.snapshot(false);
    let run = snap(name, &home, args);
    assert_ne!(run.code, 0, "{name} must fail");
    assert_same_files(&before, &home.snapshot(false));
}
