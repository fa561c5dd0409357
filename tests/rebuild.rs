//! Rebuilding the index while other clinvk processes go on: a rebuild holds nobody up, the
//! writes made during it are in the index it installs, one killed at any point leaves a working
//! index, and a damaged index found by several commands at once is rebuilt once while the others
//! wait instead of failing.

#[macro_use]
#[allow(unused_macros)]
mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// Enough files that a rebuild is under way long enough to be caught (and stopped).
const FILES: usize = 3000;

fn seed(home: &Home, n: usize) -> Vec<String> {
    let ids: Vec<String> = (0..n).map(|i| format!("s{i:05}")).collect();
    for (i, id) in ids.iter().enumerate() {
        home.add(
            &session(id)
                .tags(if i % 3 == 0 { &["third"] } else { &[] })
                .last_used(&format!("2025-01-{:02}T10:00:00Z", 1 + i % 28)),
        );
    }
    ids
}

fn spawn(home: &Home, args: &[&str]) -> Child {
    home.std_cmd()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn clinvk")
}

fn signal(child: &Child, sig: i32) {
    // SAFETY: a plain kill(2) on our own child.
    assert_eq!(unsafe { libc::kill(child.id() as i32, sig) }, 0);
}

/// Wait until `path` exists (the rebuild has begun building the new index).
fn wait_for(path: &Path) {
    let start = Instant::now();
    while !path.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn new_index(home: &Home) -> std::path::PathBuf {
    home.sessions_dir().join(".index-rebuild").join("index.db")
}

/// `sessions reindex --check` finds nothing to say.
#[track_caller]
fn assert_index_matches_files(home: &Home) {
    let check = home.ok(&["sessions", "reindex", "--check", "--json"]);
    assert_eq!(
        check.json()["differences"],
        serde_json::json!([]),
        "{}",
        check.stdout
    );
}

fn id_set(run: &Run) -> BTreeSet<String> {
    run.ids().into_iter().collect()
}

/// `sessions reindex` stopped (SIGSTOP) half-way through reading the files: listings, tag
/// writes, new files and deletions by hand all go on, answered from the live index; once it
/// goes on, the index it installs has every one of those changes.
#[test]
fn commands_go_on_during_a_rebuild_and_its_index_has_their_writes() {
    let home = Home::new();
    let ids = seed(&home, FILES);
    home.ok(&["sessions", "list", "-n", "1"]);
    let reindex = spawn(&home, &["sessions", "reindex"]);
    wait_for(&new_index(&home));
    signal(&reindex, libc::SIGSTOP);
    assert!(
        new_index(&home).exists(),
        "stopped while building, before its swap"
    );

    // Readers and writers while the rebuild holds its own lock only.
    let listed = home.ok_promptly(&["sessions", "list", "--json"]);
    assert_eq!(listed.ids().len(), FILES);
    home.ok_promptly(&["sessions", "tag", &ids[1], "during"]);
    home.ok_promptly(&["sessions", "tag", &ids[2], "during"]);
    home.add(&session("handmade1").tags(&["during"]));
    std::fs::remove_file(home.session_path(&ids[4])).unwrap();
    home.ok_promptly(&["sessions", "delete", &ids[5], &ids[6]]);
    let tagged = id_set(&home.ok_promptly(&["sessions", "list", "--tag", "during", "--json"]));
    let expected: BTreeSet<String> = [ids[1].clone(), ids[2].clone(), "handmade1".into()].into();
    assert_eq!(tagged, expected, "the live index answers, up to date");

    signal(&reindex, libc::SIGCONT);
    let done = Run::from_output(reindex.wait_with_output().unwrap()).success();
    assert!(done.stdout.contains("Indexed"), "{}", done.stdout);
    // The installed index is the new one, and nothing made meanwhile is missing from it.
    assert!(!new_index(&home).exists());
    assert_index_matches_files(&home);
    let tagged = id_set(&home.ok(&["sessions", "list", "--tag", "during", "--json"]));
    assert_eq!(tagged, expected);
    let all = id_set(&home.ok(&["sessions", "list", "--json"]));
    assert_eq!(all.len(), FILES - 3 + 1);
    for gone in [&ids[4], &ids[5], &ids[6]] {
        assert!(!all.contains(gone.as_str()), "{gone} was deleted");
    }
    assert!(all.contains("handmade1"));
}

/// A rebuild killed at any point leaves an index that answers (the old one or the new one),
/// and the next command's answer is right either way.
#[test]
fn a_rebuild_killed_anywhere_leaves_a_working_index() {
    let home = Home::new();
    seed(&home, FILES);
    home.ok(&["sessions", "list", "-n", "1"]);
    let mut delays = vec![0u64, 5, 20, 60, 150];
    // And once just as the new index appears, and just before it is swapped in.
    delays.push(u64::MAX);
    for (round, delay) in delays.into_iter().enumerate() {
        let reindex = spawn(&home, &["sessions", "reindex"]);
        if delay == u64::MAX {
            wait_for(&new_index(&home));
        } else {
            std::thread::sleep(Duration::from_millis(delay));
        }
        signal(&reindex, libc::SIGKILL);
        let _ = reindex.wait_with_output();
        // A write between kills: the next index must have it whichever one survived.
        let tag = format!("round{round}");
        home.ok_promptly(&["sessions", "tag", "s00007", &tag]);
        let listed = home.ok_promptly(&["sessions", "list", "--json"]);
        assert_eq!(
            listed.ids().len(),
            FILES,
            "round {round} (after {delay} ms)"
        );
        let tagged = home
            .ok_promptly(&["sessions", "list", "--tag", &tag, "--json"])
            .ids();
        assert_eq!(tagged, ["s00007"], "round {round}");
    }
    assert_index_matches_files(&home);
}

/// The replaced index is linked aside in the rebuild's directory only for the swap (so that
/// freeing its blocks waits until the lock is let go): no link stays behind, and one left by a
/// rebuild killed in that moment goes with the next.
#[test]
fn the_replaced_index_leaves_nothing_behind() {
    use std::os::unix::fs::MetadataExt;
    let home = Home::new();
    seed(&home, FILES);
    home.ok(&["sessions", "list", "-n", "1"]);
    let index = home.sessions_dir().join(".index.db");
    let old = home
        .sessions_dir()
        .join(".index-rebuild")
        .join("old-index.db");
    let before = std::fs::metadata(&index).unwrap().ino();
    home.ok(&["sessions", "reindex"]);
    assert_ne!(
        std::fs::metadata(&index).unwrap().ino(),
        before,
        "a new index"
    );
    assert!(std::fs::symlink_metadata(&old).is_err(), "no link left");
    // The copy left by a rebuild killed during its swap (here, some other file's bytes) goes
    // when the next rebuild starts, not only when it ends: stopped while it builds, the copy is
    // already gone.
    std::fs::write(&old, b"an older index").unwrap();
    let reindex = spawn(&home, &["sessions", "reindex"]);
    wait_for(&new_index(&home));
    signal(&reindex, libc::SIGSTOP);
    let gone_while_building = std::fs::symlink_metadata(&old).is_err();
    signal(&reindex, libc::SIGCONT);
    assert!(reindex.wait_with_output().unwrap().status.success());
    assert!(gone_while_building, "the leftover went at the start");
    assert!(
        std::fs::symlink_metadata(&old).is_err(),
        "the leftover went"
    );
    assert_eq!(home.ok(&["sessions", "list", "--json"]).ids().len(), FILES);
}

/// A damaged index found by two commands at once: the first rebuilds it (stopped half-way
/// here), the second waits for that rebuild, past its lock timeout, instead of failing with exit
/// 4 or rebuilding again; both answer right.
#[test]
fn a_damaged_index_is_rebuilt_once_while_the_other_commands_wait() {
    let home = Home::new();
    seed(&home, FILES);
    home.ok(&["sessions", "list", "-n", "1"]);
    std::fs::write(home.index_path(), b"garbage, not a database").unwrap();
    let first = spawn(&home, &["sessions", "list", "--json"]);
    wait_for(&new_index(&home));
    signal(&first, libc::SIGSTOP);
    assert!(
        new_index(&home).exists(),
        "stopped while building, before its swap"
    );
    let second = home
        .std_cmd()
        .env("CLINVK_LOCK_TIMEOUT", "1")
        .args(["sessions", "list", "--tag", "third", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    signal(&first, libc::SIGCONT);
    let first = Run::from_output(first.wait_with_output().unwrap()).success();
    let second = Run::from_output(second.wait_with_output().unwrap()).success();
    assert_eq!(first.ids().len(), FILES);
    assert_eq!(second.ids().len(), FILES.div_ceil(3));
    assert!(
        first
            .stderr
            .contains("rebuilt it from 3000 session file(s)"),
        "{}",
        first.stderr
    );
    assert!(
        second
            .stderr
            .contains("waiting for another clinvk to finish rebuilding the index"),
        "{}",
        second.stderr
    );
    assert!(
        !second.stderr.contains("rebuilt it"),
        "rebuilt once: {}",
        second.stderr
    );
}

/// Take `sessions/.lock` exclusive, as a writer would (released when dropped).
fn hold_exclusive(home: &Home) -> std::fs::File {
    use std::os::fd::AsRawFd;
    let file = std::fs::OpenOptions::new()
        .append(true)
        .open(home.lock_path())
        .unwrap();
    // SAFETY: flock(2) on a file we own.
    assert_eq!(unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) }, 0);
    file
}

/// The new index has read every file (its load is committed and marked complete).
fn loaded(path: &Path) -> bool {
    rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .and_then(|db| db.query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0)))
        .is_ok_and(|v| v > 0)
}

/// Files added, deleted, replaced and edited in place after the rebuild read them (the rebuild
/// is kept from finishing by a writer holding the lock) are read again before its index is
/// swapped in, so that it does not install an index already behind the files.
#[test]
fn changes_after_the_build_read_the_files_are_in_the_new_index() {
    let home = Home::new();
    let ids = seed(&home, FILES);
    home.ok(&["sessions", "list", "-n", "1"]);
    let writer = hold_exclusive(&home);
    let reindex = spawn(&home, &["sessions", "reindex"]);
    // Its first step needs the lock: let it have it, then hold the lock again before the end.
    drop(writer);
    wait_for(&new_index(&home));
    let writer = hold_exclusive(&home);
    let start = Instant::now();
    while !loaded(&new_index(&home)) {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the load never finished"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    home.add(&session("handmade2").tags(&["after"]));
    std::fs::remove_file(home.session_path(&ids[8])).unwrap();
    // Replaced by a rename, as a sync tool does, and edited in place, as an editor may.
    let replaced = home.sessions_dir().join("replacement.tmp");
    std::fs::write(&replaced, session(&ids[9]).tags(&["after"]).to_json()).unwrap();
    std::fs::rename(&replaced, home.session_path(&ids[9])).unwrap();
    std::fs::write(
        home.session_path(&ids[10]),
        session(&ids[10]).tags(&["after"]).to_json(),
    )
    .unwrap();
    drop(writer);
    Run::from_output(reindex.wait_with_output().unwrap()).success();
    assert_index_matches_files(&home);
    let tagged = id_set(&home.ok(&["sessions", "list", "--tag", "after", "--json"]));
    let expected: BTreeSet<String> =
        ["handmade2".to_string(), ids[9].clone(), ids[10].clone()].into();
    assert_eq!(tagged, expected);
    assert_eq!(home.ok(&["sessions", "list", "--json"]).ids().len(), FILES);
}

/// Something other than a directory where a rebuild builds (a file, a symbolic link that could
/// lead anywhere) is moved aside untouched, and the rebuild goes on.
#[test]
fn what_is_in_the_rebuilds_place_is_moved_aside() {
    let home = Home::new();
    seed(&home, 10);
    let elsewhere = tempfile::tempdir().unwrap();
    let work = home.sessions_dir().join(".index-rebuild");
    std::os::unix::fs::symlink(elsewhere.path(), &work).unwrap();
    home.ok(&["sessions", "reindex"]);
    assert!(std::fs::symlink_metadata(&work).unwrap().is_dir());
    assert!(
        std::fs::symlink_metadata(home.sessions_dir().join(".index-rebuild.aside-1"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(
        std::fs::read_dir(elsewhere.path()).unwrap().count(),
        0,
        "nothing written there"
    );
    std::fs::remove_dir_all(&work).unwrap();
    std::fs::write(&work, "not a directory").unwrap();
    std::fs::write(home.index_path(), "garbage").unwrap();
    assert_eq!(home.ok(&["sessions", "list", "--json"]).ids().len(), 10);
    assert_eq!(
        std::fs::read_to_string(home.sessions_dir().join(".index-rebuild.aside-2")).unwrap(),
        "not a directory"
    );
}
