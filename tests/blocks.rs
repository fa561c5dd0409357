//! 5-hour blocks (`sessions stats --by block`, `--period block`): the blocks clinvk cuts checked
//! against an independent cut of the session files' runs (written here from ccusage's rule,
//! with chrono, no clinvk code) at the edges of the rule: a run exactly 5 hours after a block's
//! start, a millisecond later, a gap of more than 5 hours, a range that starts mid-block.

#[macro_use]
#[allow(unused_macros)]
mod common;

use chrono::{DateTime, Duration, DurationRound, Utc};
use common::*;
use serde_json::Value;

const NOW: &str = "2025-03-02T12:30:00Z";

fn t(text: &str) -> DateTime<Utc> {
    text.parse().expect("an RFC 3339 time")
}

/// Runs at the edges of the rule, in two sessions of two backends.
fn edge_home() -> Home {
    let home = Home::new();
    home.add_all(&[
        session("a")
            .model("claude-opus-4-5")
            .created("2025-03-01T08:17:00Z")
            .turns(&[
                // Block 08:00: 08:17, 13:00 exactly (5 h after its start: still in it).
                turn("2025-03-01T08:17:00Z", 100, 10, 0).cost(0.5),
                turn("2025-03-01T13:00:00Z", 200, 20, 0).cost(0.25),
                // 13:00 and a millisecond: the next block, at 13:00.
                turn("2025-03-01T13:00:00.001Z", 300, 30, 0).cost(0.125),
                // More than 5 hours after the 13:00 block's start: a block at 19:00.
                turn("2025-03-01T19:45:00Z", 400, 40, 0).cost(1.0),
                // After a gap of more than 5 hours, the block under way at NOW (12:30): from
                // 10:00.
                turn("2025-03-02T10:05:00Z", 500, 50, 0).cost(2.0),
                turn("2025-03-02T11:05:00Z", 600, 60, 0).cost(3.0),
            ]),
        session("b")
            .backend("codex")
            .model("gpt-5-codex")
            .created("2025-03-01T09:30:00Z")
            .turns(&[
                turn("2025-03-01T09:30:00Z", 1000, 100, 0),
                turn("2025-03-01T18:00:00Z", 2000, 200, 0),
                turn("2025-03-02T12:00:00Z", 3000, 300, 0),
            ]),
    ]);
    std::fs::write(
        home.config_path(),
        "pricing:\n  gpt-5-codex: {input: 1, output: 10}\n",
    )
    .unwrap();
    home
}

fn stats(home: &Home, args: &[&str]) -> Run {
    let mut all = vec!["sessions", "stats"];
    all.extend_from_slice(args);
    Run::from_output(
        home.cmd()
            .env("TZ", "UTC")
            .env("CLINVK_NOW", NOW)
            .args(&all)
            .output()
            .expect("run clinvk"),
    )
}

fn stats_json(home: &Home, args: &[&str]) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    stats(home, &all).success().json()
}

/// A run of the files: when, its backend, and its total.
#[derive(Debug, Clone)]
struct Run1 {
    at: DateTime<Utc>,
    backend: String,
    total: u64,
}

fn runs_of(home: &Home) -> Vec<Run1> {
    let mut out = Vec::new();
    for name in home.session_files() {
        let v = home.read_session(name.trim_end_matches(".json"));
        for turn in v["turns"].as_array().into_iter().flatten() {
            out.push(Run1 {
                at: turn["at"].as_str().unwrap().parse().unwrap(),
                backend: v["backend"].as_str().unwrap().to_string(),
                total: turn["token_usage"]["total"].as_u64().unwrap(),
            });
        }
    }
    out.sort_by_key(|r| r.at);
    out
}

/// A block: its start, total, first run and last run.
type Block = (DateTime<Utc>, u64, DateTime<Utc>, DateTime<Utc>);

/// ccusage's cut, independently: (block start, total, first run, last run) of the runs at or
/// after `since`, the blocks cut from all of them.
fn oracle(runs: &[Run1], since: Option<DateTime<Utc>>) -> Vec<Block> {
    let five = Duration::hours(5);
    let mut out: Vec<Block> = Vec::new();
    let mut start: Option<DateTime<Utc>> = None;
    let mut last: Option<DateTime<Utc>> = None;
    for r in runs {
        let new = match (start, last) {
            (Some(s), Some(l)) => r.at - s > five || r.at - l > five,
            _ => true,
        };
        if new {
            start = Some(r.at.duration_trunc(Duration::hours(1)).unwrap());
        }
        last = Some(r.at);
        if since.is_some_and(|s| r.at < s) {
            continue;
        }
        let s = start.unwrap();
        match out.last_mut() {
            Some(b) if b.0 == s => {
                b.1 += r.total;
                b.3 = r.at;
            }
            _ => out.push((s, r.total, r.at, r.at)),
        }
    }
    out
}

fn block_rows(report: &Value) -> Vec<Block> {
    report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let time = |k: &str| -> DateTime<Utc> { r[k].as_str().unwrap().parse().unwrap() };
            (
                time("block"),
                r["total"].as_u64().unwrap(),
                time("first_run_at"),
                time("last_run_at"),
            )
        })
        .collect()
}

#[test]
fn blocks_match_an_independent_cut_at_the_edges_of_the_rule() {
    let home = edge_home();
    let runs = runs_of(&home);
    let report = stats_json(&home, &["--by", "block"]);
    let want = oracle(&runs, None);
    assert_eq!(block_rows(&report), want, "{report:#}");
    // The edges, spelled out: 13:00 stays in the 08:00 block, 13:00.001 starts the next, whose
    // run at 18:00 (codex's) is still in it; 19:45 is not, and starts the 19:00 block.
    let starts: Vec<String> = want
        .iter()
        .map(|b| b.0.format("%d %H:%M").to_string())
        .collect();
    assert_eq!(starts, ["01 08:00", "01 13:00", "01 19:00", "02 10:00"]);
    // They add up to the totals, and to the days'.
    let sum: u64 = want.iter().map(|b| b.1).sum();
    assert_eq!(report["totals"]["total"], sum);
    let days = stats_json(&home, &["--by", "day"]);
    assert_eq!(days["totals"], report["totals"]);
    let sessions = stats_json(&home, &["--by", "session"]);
    assert_eq!(sessions["totals"], report["totals"]);
    let by_session: u64 = sessions["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["total"].as_u64().unwrap())
        .sum();
    assert_eq!(by_session, sum);

    // One backend: cut from its runs alone.
    let codex: Vec<Run1> = runs
        .iter()
        .filter(|r| r.backend == "codex")
        .cloned()
        .collect();
    let report = stats_json(&home, &["--by", "block", "--backend", "codex"]);
    assert_eq!(block_rows(&report), oracle(&codex, None));

    // A range from mid-block: the block keeps its start (cut from the last gap before the
    // range), and counts only the runs in the range.
    for since in [
        "2025-03-01T13:00:00.001Z",
        "2025-03-01T10:00:00Z",
        "2025-03-01T19:00:00Z",
    ] {
        let report = stats_json(&home, &["--by", "block", "--since", since]);
        assert_eq!(
            block_rows(&report),
            oracle(&runs, Some(t(since))),
            "since {since}"
        );
    }

    // By block and backend: each block split, the same blocks.
    let report = stats_json(&home, &["--by", "block,backend"]);
    let mut split: Vec<(String, String, u64)> = report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["block"].as_str().unwrap().to_string(),
                r["backend"].as_str().unwrap().to_string(),
                r["total"].as_u64().unwrap(),
            )
        })
        .collect();
    split.sort();
    let mut expected: Vec<(String, String, u64)> = Vec::new();
    for b in &want {
        for backend in ["claude", "codex"] {
            let total: u64 = runs
                .iter()
                .filter(|r| r.backend == backend && r.at >= b.2 && r.at <= b.3)
                .map(|r| r.total)
                .sum();
            if total > 0 {
                expected.push((
                    b.0.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                    backend.to_string(),
                    total,
                ));
            }
        }
    }
    expected.sort();
    assert_eq!(split, expected);
}

#[test]
fn the_active_block_has_a_burn_rate_and_a_projection() {
    let home = edge_home();
    let report = stats_json(&home, &["--by", "block"]);
    let rows = report["rows"].as_array().unwrap();
    let (active, past): (Vec<&Value>, Vec<&Value>) = rows.iter().partition(|r| r["active"] == true);
    assert_eq!(active.len(), 1, "{report:#}");
    assert!(past
        .iter()
        .all(|r| r["burn_rate"].is_null() && r["projection"].is_null()));
    let a = active[0];
    assert_eq!(a["block"], "2025-03-02T10:00:00.000Z");
    assert_eq!(a["block_end"], "2025-03-02T15:00:00.000Z");
    // 10:05 to 12:00: 115 minutes for 550 + 660 + 3300 tokens.
    let total = 550 + 660 + 3300;
    assert_eq!(a["total"], total);
    let rate = a["burn_rate"]["tokens_per_minute"].as_f64().unwrap();
    assert!(
        (rate - (total as f64 / 115.0 * 10.0).round() / 10.0).abs() < 1e-9,
        "{rate}"
    );
    // At 12:30, 150 minutes are left.
    assert_eq!(a["projection"]["minutes_left"], 150);
    let projected = (total as f64 + total as f64 / 115.0 * 150.0).round() as u64;
    assert_eq!(a["projection"]["total"], projected);
    // The table says the same to a person.
    let text = stats(&home, &["--by", "block"]).success().stdout;
    assert!(text.contains("2025-03-02 10:00 (active)"), "{text}");
    assert!(
        text.contains("Active block 10:00-15:00 (UTC): 2h 30m left"),
        "{text}"
    );
    // Split by backend, the line is still the whole block's.
    let line = |text: &str| {
        text.lines()
            .find(|l| l.starts_with("Active block"))
            .unwrap()
            .to_string()
    };
    let split = stats(&home, &["--by", "block,backend"]).success().stdout;
    assert_eq!(line(&split), line(&text));
}

#[test]
fn a_budget_over_the_block_under_way() {
    let home = edge_home();
    let (used, code) = {
        let run = stats(&home, &["--json", "--period", "block", "--budget", "5000"]);
        assert_eq!(run.code, 10, "{}", run.stderr);
        let report = run.json();
        let b = &report["budget"];
        assert_eq!(b["period"], "block");
        assert_eq!(b["start"], "2025-03-02T10:00:00.000Z");
        assert_eq!(b["end"], "2025-03-02T15:00:00.000Z");
        (b["tokens"]["used"].as_u64().unwrap(), run.code)
    };
    assert_eq!((used, code), (4510, 10));
    assert_eq!(
        stats(&home, &["--period", "block", "--budget", "4000"]).code,
        11
    );
    assert_eq!(
        stats(&home, &["--period", "block", "--budget", "100k"]).code,
        0
    );
    // Of one backend: its own block (codex's last run, 12:00, starts one at 12:00).
    let run = stats(
        &home,
        &[
            "--json",
            "--period",
            "block",
            "--budget",
            "3000",
            "--backend",
            "codex",
        ],
    );
    assert_eq!(run.code, 11);
    assert_eq!(run.json()["budget"]["start"], "2025-03-02T12:00:00.000Z");
    // With no block under way, nothing is used: exit 0, and the text says why.
    let later = Run::from_output(
        home.cmd()
            .env("TZ", "UTC")
            .env("CLINVK_NOW", "2025-03-02T18:00:00Z")
            .args(["sessions", "stats", "--period", "block", "--budget", "1"])
            .output()
            .unwrap(),
    );
    assert_eq!(later.code, 0, "{}", later.stderr);
    assert!(later.stdout.contains("none under way"), "{}", later.stdout);
}

#[test]
fn blocks_are_refused_with_what_they_cannot_group_by() {
    let home = edge_home();
    for (args, says) in [
        (vec!["--by", "block,day"], "one period at a time"),
        (vec!["--by", "block,tag"], "not tag"),
        (vec!["--by", "session,block"], "not session"),
        (
            vec!["--period", "hour", "--budget", "5"],
            "day, week, month or block",
        ),
    ] {
        let run = stats(&home, &args);
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains(says), "{args:?}: {}", run.stderr);
    }
    // The biggest blocks first with -n; the totals still count all.
    let top = stats_json(&home, &["--by", "block", "-n", "1"]);
    assert_eq!(top["rows"].as_array().unwrap().len(), 1);
    assert_eq!(top["rows"][0]["block"], "2025-03-02T10:00:00.000Z");
    assert_eq!(top["totals"], stats_json(&home, &[])["totals"]);
}
