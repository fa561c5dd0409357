//! A store that cannot be written: a full disk and a read-only mount. Reads keep answering (from
//! the index as it is, or from the files), writes fail with one line that says why, and nothing
//! is lost: a rebuild never deletes the working index before the new one is complete.
//!
//! The disk and the mount are real: a size-limited tmpfs and a read-only bind mount, made in a
//! user and mount namespace of their own (`unshare -rm`), so no privilege is needed and nothing
//! outside the test's temp dirs is touched. Where namespaces are not allowed, the tests say so
//! and skip.

#[macro_use]
#[allow(unused_macros)]
mod common;

use std::path::Path;

use common::*;
use serde_json::Value;

/// Whether this machine lets an unprivileged process make its own mount namespace.
fn namespaces_allowed() -> bool {
    std::process::Command::new("unshare")
        .args(["-rm", "true"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

macro_rules! require_namespaces {
    () => {
        if !namespaces_allowed() {
            eprintln!(
                "note: skipping {}: `unshare -rm` (user and mount namespaces) is not allowed here",
                module_path!()
            );
            return;
        }
    };
}

/// What each step of a scenario printed, read back after the namespace is gone.
struct Steps {
    dir: tempfile::TempDir,
}

impl Steps {
    fn run(&self, name: &str) -> Run {
        let read = |ext: &str| {
            std::fs::read_to_string(self.dir.path().join(format!("{name}.{ext}")))
                .unwrap_or_else(|_| panic!("step {name} did not run"))
        };
        Run {
            code: read("rc").trim().parse().unwrap(),
            stdout: read("out"),
            stderr: read("err"),
        }
    }

    fn file(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.dir.path().join(name)).unwrap_or_else(|_| panic!("no {name} copied out"))
    }
}

/// Run `scenario` (bash) in a namespace of its own where `$CLINVK_HOME` is `mount` (shell
/// commands run as the first thing, given `$CLINVK_HOME`), holding a copy of `home`'s files.
/// In the scenario, `step NAME clinvk ARGS...` records a command's output and exit code, and
/// `keep FILE NAME` copies a file out.
fn in_namespace(home: &Home, mount: &str, scenario: &str) -> Steps {
    let out = tempfile::tempdir().unwrap();
    let staging = out.path().join("staging");
    copy_dir(home.path(), &staging);
    let script = format!(
        r#"set -u
OUT={out}
step() {{ local name=$1; shift; "$@" >"$OUT/$name.out" 2>"$OUT/$name.err"; echo $? >"$OUT/$name.rc"; }}
keep() {{ cp "$1" "$OUT/$2"; }}
fill() {{ dd if=/dev/zero of="$CLINVK_HOME/fill" bs=4096 2>/dev/null; true; }}
unfill() {{ rm -f "$CLINVK_HOME/fill"; }}
{mount}
cp -a {staging}/. "$CLINVK_HOME"/
{scenario}
"#,
        out = out.path().display(),
        staging = staging.display(),
    );
    let file = out.path().join("scenario.sh");
    std::fs::write(&file, script).unwrap();
    let run = bash(home, &format!("unshare -rm bash {}", file.display()), true);
    assert_eq!(run.code, 0, "the scenario failed to run: {}", run.stderr);
    Steps { dir: out }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

fn rows(run: &Run) -> Vec<String> {
    match run.json() {
        Value::Array(rows) => ids_of(&rows),
        other => panic!("not a listing: {other}"),
    }
}

const TMPFS: &str = r#"mount -t tmpfs -o size=1m tmpfs "$CLINVK_HOME""#;

/// The issue's report: with the disk full, every command failed, reads included, and the
/// suggested `reindex` deleted the old index before failing to write a new one.
#[test]
fn a_full_disk_still_lists_shows_and_sums_and_reindex_keeps_the_old_index() {
    require_namespaces!();
    let home = standard_home();
    let sums = home.ok(&["sessions", "stats", "--json"]).json();
    let late = session("late01").used_ago(chrono::Duration::minutes(1));
    let late_json = late.to_json();
    let scenario = format!(
        r#"
step warm clinvk sessions list --json
fill
step list clinvk sessions list --json
step stats clinvk sessions stats --json
step show clinvk sessions show abc123 --json
keep "$CLINVK_HOME/sessions/abc123.json" abc123.before
step tag clinvk sessions tag abc123 full
keep "$CLINVK_HOME/sessions/abc123.json" abc123.after
ls -a "$CLINVK_HOME/sessions" > "$OUT/names.after-tag"
# A file added by hand: the index is behind the directory, and cannot catch up.
unfill
printf '%s' '{late_json}' > "$CLINVK_HOME/sessions/late01.json"
fill
step behind clinvk sessions list --json
keep "$CLINVK_HOME/sessions/.index.db" index.before
step reindex clinvk sessions reindex
keep "$CLINVK_HOME/sessions/.index.db" index.after
ls -a "$CLINVK_HOME/sessions" > "$OUT/names.after-reindex"
step after_reindex clinvk sessions list --json
unfill
step freed clinvk sessions list --json
step check clinvk sessions reindex --check
"#
    );
    let steps = in_namespace(&home, TMPFS, &scenario);

    // An index up to date answers as ever, without a word.
    let list = steps.run("list");
    assert_eq!(
        (list.code, list.stderr.as_str()),
        (0, ""),
        "{}",
        list.stderr
    );
    assert_eq!(rows(&list), STANDARD_ORDER);
    assert_eq!(steps.run("stats").success().json(), sums);
    assert_eq!(steps.run("show").success().json()["id"], "abc123");

    // A write fails with one line that says the disk is full, and changes nothing.
    let tag = steps.run("tag").fails_with(1);
    assert!(tag.error_line().contains("no space left"), "{}", tag.stderr);
    assert!(!tag.error_line().contains("reindex"), "{}", tag.stderr);
    assert_eq!(steps.file("abc123.before"), steps.file("abc123.after"));
    let names = String::from_utf8(steps.file("names.after-tag")).unwrap();
    assert!(!names.contains(".tmp"), "no temp file left: {names}");

    // Behind the directory, the answer comes from the files, with a warning.
    let behind = steps.run("behind");
    assert_eq!(behind.code, 0, "{}", behind.stderr);
    assert_eq!(rows(&behind)[0], "late01", "{}", behind.stdout);
    assert_eq!(rows(&behind).len(), STANDARD_ORDER.len() + 1);
    let warning = behind.stderr_lines();
    assert_eq!(warning.len(), 1, "{}", behind.stderr);
    assert!(
        warning[0].contains("session files directly"),
        "{}",
        warning[0]
    );
    assert!(warning[0].contains("no space left"), "{}", warning[0]);

    // `reindex` fails, says why, and leaves the old index as it was: nothing half-built.
    let reindex = steps.run("reindex").fails_with(1);
    assert!(
        reindex.error_line().contains("no space left"),
        "{}",
        reindex.stderr
    );
    assert_eq!(steps.file("index.before"), steps.file("index.after"));
    let names = String::from_utf8(steps.file("names.after-reindex")).unwrap();
    assert!(!names.contains(".index.db.new"), "{names}");
    assert_eq!(
        rows(&steps.run("after_reindex")).len(),
        STANDARD_ORDER.len() + 1
    );

    // Space again: the index catches up, quietly enough, and agrees with the files.
    let freed = steps.run("freed");
    assert_eq!(freed.code, 0, "{}", freed.stderr);
    assert!(!freed.stderr.contains("directly"), "{}", freed.stderr);
    assert_eq!(rows(&freed).len(), STANDARD_ORDER.len() + 1);
    steps.run("check").success();
}

const READ_ONLY: &str = r#"mount --bind "$CLINVK_HOME" "$CLINVK_HOME""#;
const REMOUNT_RO: &str = r#"mount -o remount,bind,ro "$CLINVK_HOME""#;

/// What a read-only store (a read-only mount, a backup) must do, whatever state its index is in:
/// list, show and sum; refuse to change anything with one line that says why.
fn read_only_scenario(prepare: &str) -> (Steps, Value) {
    let home = standard_home();
    let sums = home.ok(&["sessions", "stats", "--json"]).json();
    let scenario = format!(
        r#"
step warm clinvk sessions list --json
{prepare}
{REMOUNT_RO}
step list clinvk sessions list --json
step show clinvk sessions show abc123 --json
step stats clinvk sessions stats --json
step tag clinvk sessions tag abc123 ro
step delete clinvk sessions delete abc123
step reindex clinvk sessions reindex
"#
    );
    (in_namespace(&home, READ_ONLY, &scenario), sums)
}

fn assert_reads_work_and_writes_refused((steps, sums): (Steps, Value), from_files: bool) {
    let list = steps.run("list");
    assert_eq!(list.code, 0, "{}", list.stderr);
    assert_eq!(rows(&list), STANDARD_ORDER);
    if from_files {
        assert!(list.stderr.contains("read-only"), "{}", list.stderr);
        assert_eq!(list.stderr_lines().len(), 1, "{}", list.stderr);
    } else {
        assert_eq!(list.stderr, "");
    }
    assert_eq!(steps.run("show").success().json()["id"], "abc123");
    assert_eq!(steps.run("stats").success().json(), sums);
    for write in ["tag", "delete", "reindex"] {
        let run = steps.run(write).fails_with(1);
        assert!(
            run.error_line().contains("read-only"),
            "{write}: {}",
            run.stderr
        );
    }
}

#[test]
fn a_read_only_store_with_a_current_index_reads_and_refuses_writes() {
    require_namespaces!();
    assert_reads_work_and_writes_refused(read_only_scenario(""), false);
}

#[test]
fn a_read_only_store_whose_index_is_behind_reads_from_the_files() {
    require_namespaces!();
    // A directory change the index has not seen.
    let steps =
        read_only_scenario(r#"touch "$CLINVK_HOME/sessions/x"; rm "$CLINVK_HOME/sessions/x""#);
    assert_reads_work_and_writes_refused(steps, true);
}

#[test]
fn a_read_only_store_without_index_or_lock_file_reads_from_the_files() {
    require_namespaces!();
    let steps = read_only_scenario(
        r#"rm -f "$CLINVK_HOME"/sessions/.index.db* "$CLINVK_HOME/sessions/.lock""#,
    );
    assert_reads_work_and_writes_refused(steps, true);
}
