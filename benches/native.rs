//! Whole-process benchmark of importing the CLIs' own transcripts (`sessions import`, and the
//! catch-up before `sessions list`), on native stores made by the tests' generator
//! (tests/common/native.rs: the same traps, with tool output padding each request so that the
//! files weigh what real ones do).
//!
//!     cargo bench --bench native                          # 1k, 10k and 100k conversations
//!     cargo bench --bench native -- --sizes 10000         # one size
//!     cargo bench --bench native -- --ccusage PATH/TO/ccusage   # side by side (BENCHMARKS.md)
//!
//! Stores are seeded once under target/bench-native/<n>-<padding>/ and reused, with what the
//! generator knows was spent (truth.json: tokens per day and CLI). Every figure is the median
//! wall time of the release `clinvk` binary as a new process (page cache warm), with its peak
//! memory (max RSS) beside it. In the same run: one thread of serde_json over the same files
//! (the floor a reader that parses every line has), and, when given a command for it, ccusage's
//! `daily --offline --json` over the same three CLIs' files, whose figures, like clinvk's, are
//! checked day by day and CLI by CLI against the truth.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use clap::Parser;

mod common;
#[path = "../tests/common/native.rs"]
mod native;

use common::{
    append_request, as_user, clinvk, dir_bytes, files, first_claude_transcript, fmt, fmt_time,
    measure, output, Table,
};

/// `cargo bench --bench native -- [OPTIONS]`.
#[derive(Debug, Parser)]
#[command(about = "Whole-process benchmark of importing the CLIs' transcripts (see BENCHMARKS.md)")]
struct Args {
    /// Native conversations per store (a third each of Claude, Codex and Gemini)
    #[arg(long, value_delimiter = ',', default_value = "1000,10000,100000")]
    sizes: Vec<usize>,
    /// Runs per figure (the median is reported)
    #[arg(long, default_value_t = 11)]
    runs: usize,
    /// Bytes of tool output per request (about 30 KB per conversation at the default)
    #[arg(long, default_value_t = 8000)]
    padding: usize,
    /// The command that runs ccusage (e.g. `npx -y ccusage@20.0.24`); left out when not given
    #[arg(long)]
    ccusage: Option<String>,
    /// Passed by `cargo bench`; ignored
    #[arg(long, hide = true)]
    bench: bool,
}

fn main() {
    let args = Args::parse();
    let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("../bench-native");
    let mut table = Table::new(&args.sizes);
    let mut put = |name: &str, col: usize, value: String, _cols: usize| {
        table.put(name, col, value);
    };
    let cols = args.sizes.len();
    if remove_first_imports(&root) {
        eprintln!("waiting 40 s after removing the last run's first imports (see below)");
        std::thread::sleep(Duration::from_secs(40));
    }
    for (col, &n) in args.sizes.iter().enumerate() {
        let user = seed(&root, n, args.padding);
        let bytes = dir_bytes(&user);
        put("native store (MB)", col, format!("{}", bytes >> 20), cols);
        let runs = if n >= 100_000 { 3 } else { args.runs };

        // First import: a fresh clinvk home each time, never one just deleted (ext4 is slow to
        // create files for half a minute after many were removed); removed when all is done.
        let mut fresh = 0;
        let (first, first_rss) = measure(runs.min(7), || {
            fresh += 1;
            // Untimed: what other processes left unwritten is flushed first, so that the
            // import's one sync waits for its own files only.
            // SAFETY: sync(2) takes no arguments and cannot fail.
            unsafe { libc::sync() };
            let home = user
                .parent()
                .unwrap()
                .join(format!("clinvk-first-{}-{fresh}", std::process::id()));
            clinvk(&user, &home, &["sessions", "import"])
        });
        put("sessions import, first", col, fmt(first, first_rss), cols);
        put(
            "list -n 20 during a first import: median / slowest, failures",
            col,
            lists_during_first_import(&user, fresh + 1),
            cols,
        );
        let home = user.parent().unwrap().join("clinvk");
        if !home.join("sessions").exists() {
            clinvk(&user, &home, &["sessions", "import"])
                .status()
                .unwrap();
        }
        let (list, list_rss) = measure(runs, || {
            clinvk(&user, &home, &["sessions", "list", "-n", "20"])
        });
        put(
            "sessions list -n 20 (catch-up: nothing new)",
            col,
            fmt(list, list_rss),
            cols,
        );
        // One appended request, then the catch-up that reads it.
        let transcript = first_claude_transcript(&user);
        let (appended, appended_rss) = measure(runs, || {
            append_request(&transcript);
            clinvk(&user, &home, &["sessions", "list", "-n", "20"])
        });
        put(
            "sessions list -n 20 (catch-up: one request appended)",
            col,
            fmt(appended, appended_rss),
            cols,
        );
        let (stats, stats_rss) = measure(runs, || {
            clinvk(
                &user,
                &home,
                &["sessions", "stats", "--by", "day", "--json"],
            )
        });
        put(
            "sessions stats --by day --json",
            col,
            fmt(stats, stats_rss),
            cols,
        );

        // The floor: one thread of serde_json over every line of every file.
        let start = Instant::now();
        let lines = serde_floor(&user);
        put(
            "one thread of serde_json over the files",
            col,
            format!(
                "{:.0} ms ({lines} lines)",
                start.elapsed().as_secs_f64() * 1000.0
            ),
            cols,
        );

        // A report of the last day only: clinvk answers from the index; a reader of the files
        // reads them all anyway.
        let truth: serde_json::Value = serde_json::from_slice(
            &std::fs::read(user.parent().unwrap().join("truth.json")).unwrap(),
        )
        .unwrap();
        let last_day = truth["all"]
            .as_object()
            .and_then(|days| days.keys().max().cloned())
            .unwrap();
        let (recent, recent_rss) = measure(runs, || {
            clinvk(
                &user,
                &home,
                &[
                    "sessions", "stats", "--by", "day", "--since", &last_day, "--json",
                ],
            )
        });
        put(
            "sessions stats --by day --since <last day> --json",
            col,
            fmt(recent, recent_rss),
            cols,
        );
        let ours = by_day_and_cli(&output(clinvk(
            &user,
            &home,
            &[
                "sessions", "stats", "--by", "day", "--by", "backend", "--json",
            ],
        )));
        put(
            "clinvk: days x CLIs equal to the truth",
            col,
            agreement(&ours, &truth["all"]),
            cols,
        );

        if let Some(ccusage) = &args.ccusage {
            let (t, rss) = measure(runs.min(5), || ccusage_cmd(ccusage, &user, &[]));
            put(
                "ccusage daily --offline --json (the three CLIs)",
                col,
                fmt(t, rss),
                cols,
            );
            put(
                "clinvk stats --by day: times faster than ccusage daily",
                col,
                format!("{:.0}x", t.as_secs_f64() / stats.as_secs_f64()),
                cols,
            );
            let (t_recent, rss) = measure(runs.min(5), || {
                ccusage_cmd(ccusage, &user, &["--since", &last_day.replace('-', "")])
            });
            put(
                "ccusage daily --since <last day> --offline --json",
                col,
                fmt(t_recent, rss),
                cols,
            );
            let theirs = ccusage_by_day_and_cli(&output(ccusage_cmd(ccusage, &user, &[])));
            put(
                "ccusage: days x CLIs equal to the truth",
                col,
                agreement(&theirs, &truth["all"]),
                cols,
            );
            put(
                "ccusage: ... to the truth without compressed rollouts",
                col,
                agreement(&theirs, &truth["uncompressed"]),
                cols,
            );
        }
    }
    remove_first_imports(&root);
    table.print();
}

/// `sessions list -n 20`, over and over, while a first import (into fresh home number
/// `fresh`) runs: the median and slowest, and how many failed.
fn lists_during_first_import(user: &Path, fresh: usize) -> String {
    let home = user
        .parent()
        .unwrap()
        .join(format!("clinvk-first-{}-{fresh}", std::process::id()));
    // SAFETY: as above.
    unsafe { libc::sync() };
    let mut import = clinvk(user, &home, &["sessions", "import"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // The lists meet it merging: once its first session files are there.
    let sessions = home.join("sessions");
    let written = || {
        std::fs::read_dir(&sessions).map_or(0, |d| {
            d.flatten()
                .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
                .count()
        })
    };
    while written() < 10 && import.try_wait().unwrap().is_none() {
        std::thread::sleep(Duration::from_millis(5));
    }
    let (mut latencies, mut failures) = (Vec::new(), 0);
    while import.try_wait().unwrap().is_none() {
        let start = Instant::now();
        let ok = clinvk(user, &home, &["sessions", "list", "-n", "20"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap()
            .success();
        latencies.push(start.elapsed());
        failures += usize::from(!ok);
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(import.wait().unwrap().success());
    latencies.sort();
    match latencies.last() {
        Some(slowest) => format!(
            "{} / {} of {}, {failures} failed",
            fmt_time(latencies[latencies.len() / 2]),
            fmt_time(*slowest),
            latencies.len()
        ),
        None => "the import was over first".into(),
    }
}

/// Remove the clinvk homes of first imports left under `root`; whether there were any.
fn remove_first_imports(root: &Path) -> bool {
    let mut removed = false;
    for size in std::fs::read_dir(root).into_iter().flatten().flatten() {
        for e in std::fs::read_dir(size.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            if e.file_name().to_string_lossy().starts_with("clinvk-first-") {
                removed |= std::fs::remove_dir_all(e.path()).is_ok();
            }
        }
    }
    removed
}

/// The user's home holding `.claude`, `.codex` and `.gemini`, seeded once.
fn seed(root: &Path, n: usize, padding: usize) -> PathBuf {
    let dir = root.join(format!("{n}-{padding}"));
    let user = dir.join("user");
    let marker = dir.join("seeded-v4");
    if marker.exists() {
        return user;
    }
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&user).unwrap();
    let start = Instant::now();
    let mut store = native::NativeStore::new(&user, n as u64).with_padding(padding);
    store.generate(n.div_ceil(3));
    // Tokens per day and CLI: all of them, and those outside compressed rollouts.
    let compressed: std::collections::HashSet<&str> = store
        .written
        .iter()
        .filter(|w| w.path.extension().is_some_and(|e| e == "zst"))
        .map(|w| w.id.as_str())
        .collect();
    let mut truth = serde_json::json!({"all": {}, "uncompressed": {}});
    for t in &store.truth {
        let day = t.at.format("%Y-%m-%d").to_string();
        let mut add = |part: &str| {
            let cell = &mut truth[part][&day][t.cli.name()];
            *cell = serde_json::json!(cell.as_u64().unwrap_or(0) + t.total());
        };
        add("all");
        if !compressed.contains(t.conversation.as_str()) {
            add("uncompressed");
        }
    }
    std::fs::write(dir.join("truth.json"), truth.to_string()).unwrap();
    std::fs::write(&marker, "").unwrap();
    eprintln!(
        "seeded {n} conversations in {:.1}s",
        start.elapsed().as_secs_f64()
    );
    user
}

fn serde_floor(user: &Path) -> u64 {
    let mut all = Vec::new();
    files(user, &mut all);
    let mut lines = 0;
    for p in all {
        let Ok(bytes) = std::fs::read(&p) else {
            continue;
        };
        let text = if p.extension().is_some_and(|e| e == "zst") {
            zstd::stream::decode_all(&bytes[..]).unwrap_or_default()
        } else {
            bytes
        };
        for line in text.split(|b| *b == b'\n') {
            if serde_json::from_slice::<serde_json::Value>(line).is_ok() {
                lines += 1;
            }
        }
    }
    lines
}

/// ccusage's daily report over the user's three CLIs (`exec`: the figures are its own process's).
fn ccusage_cmd(ccusage: &str, user: &Path, extra: &[&str]) -> Command {
    let mut c = Command::new("bash");
    c.arg("-c").arg(format!(
        "exec {ccusage} daily --offline --json --by-agent {}",
        extra.join(" ")
    ));
    as_user(&mut c, user);
    c
}

type ByDay = std::collections::BTreeMap<(String, String), u64>;

/// clinvk's `stats --by day --by backend` rows as (day, CLI) -> tokens.
fn by_day_and_cli(report: &serde_json::Value) -> ByDay {
    let mut all = ByDay::new();
    for row in report["rows"].as_array().into_iter().flatten() {
        let key = (
            row["day"].as_str().unwrap_or_default().to_string(),
            row["backend"].as_str().unwrap_or_default().to_string(),
        );
        *all.entry(key).or_default() += row["total"].as_u64().unwrap_or(0);
    }
    all
}

/// ccusage's `daily --by-agent` as (day, CLI) -> tokens (its total counts cache reads and writes
/// apart from input; clinvk's input includes them, so the totals compare).
fn ccusage_by_day_and_cli(report: &serde_json::Value) -> ByDay {
    let mut all = ByDay::new();
    for day in report["daily"].as_array().into_iter().flatten() {
        for agent in day["agents"].as_array().into_iter().flatten() {
            let key = (
                day["period"].as_str().unwrap_or_default().to_string(),
                agent["agent"].as_str().unwrap_or_default().to_string(),
            );
            *all.entry(key).or_default() += agent["totalTokens"].as_u64().unwrap_or(0);
        }
    }
    all
}

/// How many (day, CLI) cells of the truth `got` has exactly, per CLI, and the totals.
fn agreement(got: &ByDay, truth: &serde_json::Value) -> String {
    let mut want = ByDay::new();
    for (day, clis) in truth.as_object().into_iter().flatten() {
        for (cli, tokens) in clis.as_object().into_iter().flatten() {
            want.insert((day.clone(), cli.clone()), tokens.as_u64().unwrap_or(0));
        }
    }
    let mut parts = Vec::new();
    for cli in ["claude", "codex", "gemini"] {
        let cells: Vec<_> = want.iter().filter(|((_, c), _)| c == cli).collect();
        let equal = cells
            .iter()
            .filter(|(k, v)| got.get(*k) == Some(*v))
            .count();
        let (theirs, truth): (u64, u64) = cells
            .iter()
            .map(|(k, v)| (got.get(*k).copied().unwrap_or(0), **v))
            .fold((0, 0), |(a, b), (x, y)| (a + x, b + y));
        parts.push(format!(
            "{cli} {equal}/{} ({:.2}% of the tokens)",
            cells.len(),
            theirs as f64 * 100.0 / truth.max(1) as f64
        ));
    }
    parts.join(", ")
}
