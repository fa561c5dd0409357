//! Whole-process benchmark of importing the CLIs' own transcripts (`sessions import`, and the
//! catch-up before `sessions list`), on native stores made by the tests' generator
//! (tests/common/native.rs: the same traps, with tool output padding each request so that the
//! files weigh what real ones do).
//!
//!     cargo bench --bench native                          # 1k, 10k and 100k conversations
//!     cargo bench --bench native -- --sizes 10000         # one size
//!     cargo bench --bench native -- --ccusage 'npx -y ccusage@20.0.24'
//!
//! Stores are seeded once under target/bench-native/<n>/ and reused. Every figure is the median
//! wall time of the release `clinvk` binary as a new process (page cache warm), with its peak
//! memory (max RSS) beside it. In the same run: one thread of serde_json over the same files
//! (the floor a reader that parses every line has), and, when given a command for it, ccusage's
//! `daily --offline --json` over the same Claude files, its totals checked against clinvk's.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use clap::Parser;

#[path = "../tests/common/native.rs"]
mod native;

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
    let mut rows: Vec<(String, Vec<String>)> = Vec::new();
    let mut put = |name: &str, col: usize, value: String, cols: usize| {
        if let Some(r) = rows.iter_mut().find(|(n, _)| n == name) {
            r.1[col] = value;
        } else {
            let mut cells = vec!["-".to_string(); cols];
            cells[col] = value;
            rows.push((name.to_string(), cells));
        }
    };
    let cols = args.sizes.len();
    for (col, &n) in args.sizes.iter().enumerate() {
        let user = seed(&root, n, args.padding);
        let bytes = dir_bytes(&user);
        put("native store (MB)", col, format!("{}", bytes >> 20), cols);
        let runs = if n >= 100_000 { 3 } else { args.runs };

        // First import: a fresh clinvk home each time, never one just deleted (ext4 is slow to
        // create files where many were just removed); removed after the timing.
        let mut fresh = 0;
        let (first, first_rss) = measure(runs.min(5), || {
            fresh += 1;
            let home = user
                .parent()
                .unwrap()
                .join(format!("clinvk-first-{}-{fresh}", std::process::id()));
            clinvk(&user, &home, &["sessions", "import"])
        });
        for e in std::fs::read_dir(user.parent().unwrap()).unwrap().flatten() {
            if e.file_name().to_string_lossy().starts_with("clinvk-first-") {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
        put("sessions import, first", col, fmt(first, first_rss), cols);
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

        if let Some(ccusage) = &args.ccusage {
            let (t, rss) = measure(runs.min(5), || {
                let mut c = Command::new("bash");
                c.arg("-c")
                    .arg(format!("{ccusage} daily --offline --json"))
                    .env("CLAUDE_CONFIG_DIR", user.join(".claude"));
                c
            });
            put(
                "ccusage daily --offline --json (Claude only)",
                col,
                fmt(t, rss),
                cols,
            );
            compare_with_ccusage(ccusage, &user, &home);
        }
    }
    println!(
        "\n| operation | {} |",
        args.sizes
            .iter()
            .map(|n| format!("{n} conversations"))
            .collect::<Vec<_>>()
            .join(" | ")
    );
    println!("|---|{}", "---|".repeat(cols));
    for (name, cells) in &rows {
        println!("| {name} | {} |", cells.join(" | "));
    }
}

/// The user's home holding `.claude`, `.codex` and `.gemini`, seeded once.
fn seed(root: &Path, n: usize, padding: usize) -> PathBuf {
    let dir = root.join(format!("{n}-{padding}"));
    let user = dir.join("user");
    let marker = dir.join("seeded-v1");
    if marker.exists() {
        return user;
    }
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&user).unwrap();
    let start = Instant::now();
    let mut store = native::NativeStore::new(&user, n as u64).with_padding(padding);
    store.generate(n.div_ceil(3));
    std::fs::write(&marker, "").unwrap();
    eprintln!(
        "seeded {n} conversations in {:.1}s",
        start.elapsed().as_secs_f64()
    );
    user
}

fn clinvk(user: &Path, home: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_clinvk"));
    cmd.args(args)
        .env("HOME", user)
        .env("CLINVK_HOME", home)
        .env("TZ", "UTC")
        .env_remove("CLAUDE_CONFIG_DIR")
        .env_remove("CODEX_HOME")
        .env_remove("GEMINI_CLI_HOME")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    cmd
}

/// Median wall time of `runs` fresh processes, and the largest peak memory among them.
fn measure(runs: usize, mut make: impl FnMut() -> Command) -> (Duration, u64) {
    let mut times = Vec::new();
    let mut peak = 0;
    for _ in 0..runs.max(1) {
        let mut cmd = make();
        let start = Instant::now();
        let child = cmd.spawn().expect("run");
        let (status, rss) = wait_with_rss(child);
        times.push(start.elapsed());
        assert!(status == 0, "{cmd:?} failed");
        peak = peak.max(rss);
    }
    times.sort();
    (times[times.len() / 2], peak)
}

/// Wait for `child`; its exit status and its own peak resident memory (kB), from wait4(2).
fn wait_with_rss(child: std::process::Child) -> (i32, u64) {
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: wait4 on our own child, with buffers it fills; the Child is not waited again
    // (it is forgotten, and std does not reap on drop).
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    std::mem::forget(child);
    (status, usage.ru_maxrss as u64)
}

fn fmt(d: Duration, rss_kb: u64) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    let t = if ms >= 1000.0 {
        format!("{:.2} s", ms / 1000.0)
    } else {
        format!("{ms:.0} ms")
    };
    format!("{t}, {} MB", rss_kb / 1024)
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            files(&p, out);
        } else {
            out.push(p);
        }
    }
}

fn dir_bytes(dir: &Path) -> u64 {
    let mut all = Vec::new();
    files(dir, &mut all);
    all.iter()
        .filter_map(|p| p.metadata().ok())
        .map(|m| m.len())
        .sum()
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

fn first_claude_transcript(user: &Path) -> PathBuf {
    let mut all = Vec::new();
    files(&user.join(".claude/projects"), &mut all);
    all.sort();
    all.into_iter()
        .find(|p| {
            p.extension().is_some_and(|e| e == "jsonl")
                && !p.to_string_lossy().contains("subagents")
        })
        .expect("a Claude transcript")
}

/// Append one request to a Claude transcript, as a resume in the CLI does.
fn append_request(path: &Path) {
    use std::io::Write;
    let id = path.file_stem().unwrap().to_string_lossy().into_owned();
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let line = serde_json::json!({
        "type": "assistant", "sessionId": id, "timestamp": "2027-01-01T00:00:00.000Z",
        "requestId": format!("req_bench_{n}"),
        "message": {"id": format!("msg_bench_{n}"), "model": "claude-sonnet-4-6",
                    "usage": {"input_tokens": 10, "output_tokens": 5}}
    });
    let mut f = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    writeln!(f, "{line}").unwrap();
}

/// ccusage's daily totals for the Claude files against clinvk's, day by day.
fn compare_with_ccusage(ccusage: &str, user: &Path, home: &Path) {
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!("{ccusage} daily --offline --json"))
        .env("CLAUDE_CONFIG_DIR", user.join(".claude"))
        .env("TZ", "UTC")
        .output()
        .unwrap();
    let theirs: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    let ours = clinvk(
        user,
        home,
        &["sessions", "stats", "--by", "day", "-b", "claude", "--json"],
    )
    .stdout(Stdio::piped())
    .output()
    .unwrap();
    let ours: serde_json::Value = serde_json::from_slice(&ours.stdout).unwrap_or_default();
    let their_total: u64 = theirs["daily"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|d| {
            [
                "inputTokens",
                "outputTokens",
                "cacheCreationTokens",
                "cacheReadTokens",
            ]
            .iter()
            .map(|k| d[*k].as_u64().unwrap_or(0))
            .sum::<u64>()
        })
        .sum();
    let our_total = ours["totals"]["total"].as_u64().unwrap_or(0);
    eprintln!(
        "ccusage daily total (input + output + cache): {their_total}; clinvk sessions stats -b claude total: {our_total}{}",
        if their_total == our_total { " (equal)" } else { " (DIFFERENT)" }
    );
}
