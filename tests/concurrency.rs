//! Several real clinvk processes at once, and the lock on `sessions/.lock`: no lost update, a
//! consistent index afterwards, a timeout that names the lock file, and a killed holder that
//! blocks nobody.

#[macro_use]
#[allow(unused_macros)]
mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::json;

/// Start `clinvk ARGS` without waiting.
fn spawn(home: &Home, args: &[&str]) -> (String, Child) {
    let child = home
        .std_cmd()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn clinvk");
    (args.join(" "), child)
}

/// Wait for every process and assert each succeeded.
fn wait_all_ok(children: Vec<(String, Child)>) -> Vec<Run> {
    children
        .into_iter()
        .map(|(what, child)| {
            let run = Run::from_output(child.wait_with_output().unwrap());
            assert_eq!(
                run.code, 0,
                "`clinvk {what}` failed under concurrency\nstdout:\n{}\nstderr:\n{}",
                run.stdout, run.stderr
            );
            run
        })
        .collect()
}

fn tags_of(home: &Home, id: &str) -> Vec<String> {
    let mut tags: Vec<String> = home.read_session(id)["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_string())
        .collect();
    tags.sort();
    tags
}

#[test]
fn eight_processes_tagging_one_session_lose_no_update() {
    let home = Home::new();
    home.add(
        &session("shared")
            .tags(&["base"])
            .field("future_field", json!({"kept": true})),
    );
    // Round 1 starts on a cold store (no index yet: the first process builds it while the others
    // wait); round 2 on a warm one.
    for round in 0..2 {
        let tags: Vec<String> = (0..8).map(|n| format!("r{round}-tag{n}")).collect();
        let children: Vec<_> = tags
            .iter()
            .map(|t| spawn(&home, &["sessions", "tag", "shared", t]))
            .collect();
        wait_all_ok(children);
        let have = tags_of(&home, "shared");
        for t in &tags {
            assert!(
                have.contains(t),
                "round {round}: lost update, {t} missing from {have:?}"
            );
        }
    }
    assert_eq!(tags_of(&home, "shared").len(), 17);
    assert_eq!(
        home.read_session("shared")["future_field"],
        json!({"kept": true})
    );
    for t in ["base", "r0-tag3", "r1-tag7"] {
        assert_eq!(home.list_ids(&["--tag", t]), ["shared"]);
    }
    home.ok(&["sessions", "reindex", "--check"]);
}

#[test]
fn mixed_concurrent_writers_readers_and_reindex_all_succeed() {
    let home = Home::new();
    let ids = ["s0", "s1", "s2", "s3"];
    for (i, id) in ids.iter().enumerate() {
        home.add(&session(id).used_ago(chrono::Duration::minutes(i as i64 + 1)));
    }
    home.add(&session("doomed").used_ago(chrono::Duration::hours(5)));
    home.add(&session("ancient").used_ago(chrono::Duration::days(90)));
    home.warm();

    let mut children = Vec::new();
    for id in ids {
        for n in 0..3 {
            let tag = format!("{id}-t{n}");
            children.push(spawn(&home, &["sessions", "tag", id, &tag]));
        }
        children.push(spawn(&home, &["sessions", "show", id, "--json"]));
    }
    children.push(spawn(&home, &["sessions", "reindex"]));
    for _ in 0..3 {
        children.push(spawn(&home, &["sessions", "list", "--json"]));
    }
    children.push(spawn(&home, &["sessions", "list", "--backend", "claude"]));
    children.push(spawn(&home, &["sessions", "delete", "doomed"]));
    children.push(spawn(&home, &["sessions", "clean", "--older-than", "30d"]));
    children.push(spawn(&home, &["sessions", "reindex", "--json"]));
    let runs = wait_all_ok(children);

    // Every listing printed complete, valid JSON.
    let listings: Vec<_> = runs
        .iter()
        .filter(|r| r.stdout.trim_start().starts_with('['))
        .collect();
    assert_eq!(listings.len(), 3, "the three `list --json` runs");
    for run in listings {
        let rows = run.json();
        assert!(rows.as_array().unwrap().len() >= 4, "{}", run.stdout);
    }
    for id in ids {
        let tags = tags_of(&home, id);
        assert_eq!(
            tags,
            [format!("{id}-t0"), format!("{id}-t1"), format!("{id}-t2")],
            "lost update on {id}"
        );
    }
    assert!(!home.session_exists("doomed"));
    assert!(!home.session_exists("ancient"));
    assert_eq!(home.list_ids(&[]), ids);
    let run = home.ok(&["sessions", "reindex", "--check"]);
    assert!(
        run.stdout.contains("matches the 4 session file(s)"),
        "{}",
        run.stdout
    );
    assert!(home.lock_path().exists(), "the lock file is never deleted");
    // No temp files left behind.
    let leftovers: Vec<String> = std::fs::read_dir(home.sessions_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn concurrent_commands_right_after_files_were_added_by_hand() {
    let home = Home::new();
    for i in 0..4 {
        home.add(&session(&format!("p{i}")));
    }
    home.warm();
    // Files appear by hand; then several processes start at once and must all see them.
    for i in 0..4 {
        home.add(&session(&format!("hand{i}")));
    }
    std::fs::remove_file(home.session_path("p3")).unwrap();
    let mut children = Vec::new();
    for i in 0..3 {
        children.push(spawn(
            &home,
            &["sessions", "tag", &format!("p{i}"), "x", "y"],
        ));
        children.push(spawn(
            &home,
            &["sessions", "tag", &format!("hand{i}"), "x", "y"],
        ));
        children.push(spawn(&home, &["sessions", "list", "--json"]));
    }
    let runs = wait_all_ok(children);
    let listings: Vec<_> = runs.iter().filter(|r| r.stdout.starts_with('[')).collect();
    assert_eq!(listings.len(), 3, "the three `list --json` runs");
    for run in listings {
        assert_eq!(run.json().as_array().unwrap().len(), 7, "{}", run.stdout);
    }
    assert_eq!(home.list_ids(&[]).len(), 7);
    assert_eq!(home.list_ids(&["--tag", "x", "--tag", "y"]).len(), 6);
    home.ok(&["sessions", "reindex", "--check"]);
}

// ----- the lock -------------------------------------------------------------------------------

/// Another process holding `sessions/.lock` (a POSIX advisory lock taken by flock(1)). The shell
/// execs into `sleep`, so the one process that holds the lock is the one we can kill.
struct Holder {
    child: Child,
}

impl Holder {
    /// `mode`: "-x" (exclusive, like a writer) or "-s" (shared, like a reader).
    fn start(lock: &Path, mode: &str, seconds: f64) -> Holder {
        let child = Command::new("bash")
            .arg("-c")
            .arg(r#"exec 9>>"$1" && flock "$2" 9 && exec sleep "$3""#)
            .arg("holder")
            .arg(lock)
            .arg(mode)
            .arg(seconds.to_string())
            .spawn()
            .expect("spawn the lock holder");
        let holder = Holder { child };
        let deadline = Instant::now() + Duration::from_secs(10);
        // Held once a non-blocking exclusive attempt fails.
        while Command::new("flock")
            .args(["-n", "-x"])
            .arg(lock)
            .arg("true")
            .status()
            .unwrap()
            .success()
        {
            assert!(Instant::now() < deadline, "the holder never took the lock");
            std::thread::sleep(Duration::from_millis(10));
        }
        holder
    }

    fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn with_timeout(home: &Home, timeout: &str, args: &[&str]) -> (Run, Duration) {
    let start = Instant::now();
    let run = Run::from_output(
        home.cmd()
            .env("CLINVK_LOCK_TIMEOUT", timeout)
            .args(args)
            .output()
            .unwrap(),
    );
    (run, start.elapsed())
}

#[test]
fn a_held_lock_times_out_with_exit_4_naming_the_lock_file() {
    require!("flock");
    let home = standard_home();
    let before = home.snapshot(false);
    let holder = Holder::start(&home.lock_path(), "-x", 20.0);

    let (run, took) = with_timeout(&home, "0.5", &["sessions", "tag", "abc123", "urgent"]);
    let run = run.fails_with(4);
    assert!(
        run.error_line()
            .contains(&home.lock_path().display().to_string()),
        "the message names the lock file: {}",
        run.stderr
    );
    assert!(took >= Duration::from_millis(450), "it waited: {took:?}");
    assert!(took < Duration::from_secs(10), "it gave up: {took:?}");

    // Reads take a shared lock, which an exclusive holder also blocks.
    let (run, _) = with_timeout(&home, "0.3", &["sessions", "list", "--json"]);
    run.fails_with(4);
    let (run, _) = with_timeout(&home, "0.3", &["sessions", "delete", "abc123"]);
    run.fails_with(4);
    let (run, _) = with_timeout(&home, "0", &["sessions", "clean", "--older-than", "1s"]);
    run.fails_with(4);
    assert_same_files(&before, &home.snapshot(false));

    // A killed holder blocks nobody: advisory locks die with their process.
    holder.kill();
    let (run, took) = with_timeout(&home, "2", &["sessions", "tag", "abc123", "urgent"]);
    run.success();
    assert!(took < Duration::from_secs(2), "{took:?}");
    assert!(tags_of(&home, "abc123").contains(&"urgent".to_string()));
    assert!(home.lock_path().exists(), "the lock file is never deleted");
}

#[test]
fn a_shared_holder_lets_readers_in_and_keeps_writers_out() {
    require!("flock");
    let home = standard_home();
    let _holder = Holder::start(&home.lock_path(), "-s", 20.0);
    let (run, _) = with_timeout(&home, "1", &["sessions", "list", "--json"]);
    let run = run.success();
    assert_eq!(run.json().as_array().unwrap().len(), 6);
    let (run, _) = with_timeout(&home, "1", &["sessions", "show", "abc123"]);
    run.success();
    let (run, _) = with_timeout(&home, "1", &["sessions", "reindex", "--check"]);
    run.success();
    let (run, _) = with_timeout(&home, "0.3", &["sessions", "tag", "abc123", "x"]);
    run.fails_with(4);
    let (run, _) = with_timeout(&home, "0.3", &["sessions", "reindex"]);
    run.fails_with(4);
}

#[test]
fn a_writer_waits_for_a_holder_that_finishes_within_the_timeout() {
    require!("flock");
    let home = standard_home();
    let _holder = Holder::start(&home.lock_path(), "-x", 0.6);
    let (run, took) = with_timeout(&home, "10", &["sessions", "tag", "abc123", "waited"]);
    run.success();
    assert!(
        took >= Duration::from_millis(100),
        "it had to wait: {took:?}"
    );
    assert!(tags_of(&home, "abc123").contains(&"waited".to_string()));
}

#[test]
fn a_crashed_clinvk_leaves_no_lock_behind() {
    let home = standard_home();
    // Kill clinvk processes mid-flight, then everything still works at once.
    for _ in 0..3 {
        let (_, mut child) = spawn(&home, &["sessions", "reindex"]);
        std::thread::sleep(Duration::from_millis(5));
        let _ = child.kill();
        let _ = child.wait();
    }
    let (run, _) = with_timeout(&home, "1", &["sessions", "tag", "abc123", "after-crash"]);
    run.success();
    assert_eq!(home.list_ids(&["--tag", "after-crash"]), ["abc123"]);
    assert_eq!(home.list_ids(&[]).len(), 6);
}

#[test]
fn lock_timeout_message_reports_the_real_wait() {
    require!("flock");
    let home = standard_home();
    let _holder = Holder::start(&home.lock_path(), "-x", 20.0);
    let (run, _) = with_timeout(&home, "0.5", &["sessions", "tag", "abc123", "x"]);
    let run = run.fails_with(4);
    assert!(!run.error_line().contains("after 0s"), "{}", run.stderr);
}

#[test]
fn files_added_by_hand_during_clinvk_writes_are_not_lost() {
    let home = Home::new();
    home.add(&session("busy"));
    home.warm();
    // Add one file by hand at a different moment of each `tag` process's life (0 to 40 ms
    // after it starts), then list at once: the file must be there every time.
    for step in 0..80u64 {
        let id = format!("hand{step}");
        let (_, child) = spawn(&home, &["sessions", "tag", "busy", &format!("t{step}")]);
        std::thread::sleep(Duration::from_micros(step * 500));
        home.add(&session(&id));
        wait_all_ok(vec![(format!("tag busy t{step}"), child)]);
        let listed = home.list_ids(&[]);
        if !listed.contains(&id) {
            let check = home.run(&["sessions", "reindex", "--check"]);
            let again = home.list_ids(&[]).contains(&id);
            panic!(
                "{id}.json, added {} ms into a `tag`, is missing from list (found on a \
                 second list: {again}); reindex --check says:\n{}",
                step as f64 / 2.0,
                check.stdout
            );
        }
    }
}
