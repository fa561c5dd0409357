//! Several machines through an existing sync engine: two stores (a laptop's and a
//! workstation's) whose `sessions/` folders rsync copies both ways, as README says to set it up
//! (session files only, never the per-machine index: `--exclude '.*'`). Each session names the
//! machine it ran on; after syncing, both stores hold the union, each session once, their
//! indexes agree with their files, and their stats add up. A session changed on both machines
//! between two syncs ends as the newer version on both (`rsync -au`).

#[macro_use]
#[allow(unused_macros)]
mod common;

use std::collections::BTreeSet;
use std::path::Path;

use common::*;
use serde_json::Value;

/// `rsync -a [--update] --exclude '.*' FROM/sessions/ TO/sessions/`, asserting it worked.
fn rsync(from: &Home, to: &Home, update: bool) {
    let mut cmd = std::process::Command::new("rsync");
    cmd.arg("-a");
    if update {
        cmd.arg("--update");
    }
    let dir = |h: &Home| format!("{}/", h.sessions_dir().display());
    let out = cmd
        .args(["--exclude", ".*"])
        .arg(dir(from))
        .arg(dir(to))
        .output()
        .unwrap();
    Run::from_output(out).success();
}

/// A machine: its fakes and store, its runs naming it.
struct Machine {
    fakes: Fakes,
    host: &'static str,
}

impl Machine {
    fn new(host: &'static str) -> Machine {
        Machine {
            fakes: Fakes::new(),
            host,
        }
    }

    fn home(&self) -> &Home {
        &self.fakes.home
    }

    /// `clinvk PROMPT` through the fake backend, on this machine.
    fn run(&self, backend: &str, prompt: &str) {
        let dir = self.fakes.dir("app");
        self.fakes
            .at(&dir)
            .env("CLINVK_HOST", self.host)
            .args(["-b", backend, prompt])
            .ok();
    }

    fn clinvk(&self, args: &[&str]) -> Run {
        Run::from_output(
            self.home()
                .std_cmd()
                .env("CLINVK_HOST", self.host)
                .args(args)
                .output()
                .unwrap(),
        )
        .success()
    }

    fn ids(&self) -> BTreeSet<String> {
        let rows = self.clinvk(&["sessions", "list", "--json"]).json();
        let ids: Vec<String> = ids_of(rows.as_array().unwrap());
        let set: BTreeSet<String> = ids.iter().cloned().collect();
        assert_eq!(set.len(), ids.len(), "a session listed twice: {ids:?}");
        set
    }

    fn totals(&self, args: &[&str]) -> Value {
        let mut all = vec!["sessions", "stats", "--json"];
        all.extend_from_slice(args);
        self.clinvk(&all).json()
    }

    fn checked(&self) {
        self.clinvk(&["sessions", "reindex", "--check"]);
    }
}

fn figures(report: &Value) -> (u64, u64, u64) {
    let t = &report["totals"];
    (
        t["sessions"].as_u64().unwrap(),
        t["runs"].as_u64().unwrap(),
        t["total"].as_u64().unwrap(),
    )
}

fn file(home: &Home, id: &str) -> Vec<u8> {
    std::fs::read(home.sessions_dir().join(format!("{id}.json"))).unwrap()
}

fn set_mtime_back(path: &Path, seconds: u64) {
    let f = std::fs::File::options().write(true).open(path).unwrap();
    let t = std::time::SystemTime::now() - std::time::Duration::from_secs(seconds);
    f.set_modified(t).unwrap();
}

#[test]
fn two_stores_synced_both_ways_hold_the_union_once() {
    require!("rsync");
    let laptop = Machine::new("laptop");
    let work = Machine::new("workstation");
    laptop.run("claude", "fix the login bug");
    laptop.run("codex", "write the changelog");
    laptop.run("claude", "review the api");
    work.run("gemini", "profile the build");
    work.run("claude", "port the parser");
    let (mine, theirs) = (laptop.ids(), work.ids());
    let (l, w) = (figures(&laptop.totals(&[])), figures(&work.totals(&[])));
    // Each session names its machine.
    let shown = laptop
        .clinvk(&["sessions", "show", mine.iter().next().unwrap()])
        .stdout;
    assert!(shown.contains("Host:              laptop"), "{shown}");

    rsync(&laptop.fakes.home, &work.fakes.home, false);
    rsync(&work.fakes.home, &laptop.fakes.home, false);
    let union: BTreeSet<String> = mine.union(&theirs).cloned().collect();
    assert_eq!(union.len(), 5);
    for m in [&laptop, &work] {
        assert_eq!(m.ids(), union, "{}", m.host);
        m.checked();
        // The stats add up: the two machines' own usage, each once, split by host.
        assert_eq!(figures(&m.totals(&[])), (l.0 + w.0, l.1 + w.1, l.2 + w.2));
        let by_host = m.totals(&["--by", "host"]);
        let rows: Vec<(String, u64)> = by_host["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["host"].as_str().unwrap().to_string(),
                    r["total"].as_u64().unwrap(),
                )
            })
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        assert_eq!(
            rows,
            [
                ("laptop".to_string(), l.2),
                ("workstation".to_string(), w.2)
            ]
        );
        let here: Vec<String> = ids_of(
            m.clinvk(&["sessions", "list", "--json", "--host", "laptop"])
                .json()
                .as_array()
                .unwrap(),
        );
        assert_eq!(here.into_iter().collect::<BTreeSet<_>>(), mine);
    }
    // The index was never copied: each machine keeps its own.
    assert!(laptop.home().index_path().exists() && work.home().index_path().exists());

    // Changed on both machines between two syncs: the newer version wins on both.
    let shared = mine.iter().next().unwrap().clone();
    laptop.clinvk(&["sessions", "tag", &shared, "from-laptop"]);
    set_mtime_back(
        &laptop.home().sessions_dir().join(format!("{shared}.json")),
        60,
    );
    work.clinvk(&["sessions", "tag", &shared, "from-work"]);
    // And a new session on each side.
    laptop.run("claude", "one more on the laptop");
    work.run("codex", "one more at work");
    rsync(&laptop.fakes.home, &work.fakes.home, true);
    rsync(&work.fakes.home, &laptop.fakes.home, true);
    assert_eq!(file(laptop.home(), &shared), file(work.home(), &shared));
    let tags =
        |m: &Machine| m.clinvk(&["sessions", "show", &shared, "--json"]).json()["tags"].clone();
    assert_eq!(tags(&laptop), tags(&work));
    // The workstation's edit was the newer: its version, without the laptop's tag.
    let kept: Vec<Value> = tags(&laptop).as_array().unwrap().clone();
    assert!(kept.iter().any(|t| t == "from-work"), "{kept:?}");
    assert!(!kept.iter().any(|t| t == "from-laptop"), "{kept:?}");
    let union = laptop.ids();
    assert_eq!(union.len(), 7);
    assert_eq!(work.ids(), union);
    for m in [&laptop, &work] {
        m.checked();
    }
    assert_eq!(figures(&laptop.totals(&[])), figures(&work.totals(&[])));
    assert_eq!(
        laptop.totals(&["--by", "day"])["totals"],
        work.totals(&["--by", "day"])["totals"]
    );
}

#[test]
fn a_sync_conflict_copy_is_reported_not_counted() {
    // Syncthing keeps the losing version of a file changed on both sides beside it, as
    // `<id>.sync-conflict-<date>-<time>-<device>.json`: not a session of its own.
    let home = Home::new();
    home.add(&session("abc123").prompt("p"));
    let conflict = home
        .sessions_dir()
        .join("abc123.sync-conflict-20261201-101010-ABCDEFG.json");
    std::fs::copy(home.sessions_dir().join("abc123.json"), &conflict).unwrap();
    let run = home.run(&["sessions", "list", "--json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(ids_of(run.json().as_array().unwrap()), ["abc123"]);
    assert!(run.stderr.contains("sync-conflict"), "{}", run.stderr);
}
