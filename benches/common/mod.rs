//! What the whole-process benchmarks share: running the release binary as a given user, the
//! median time and peak memory of fresh processes, and sizes on disk.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub fn clinvk(user: &Path, home: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_clinvk"));
    cmd.args(args).env("CLINVK_HOME", home);
    as_user(&mut cmd, user);
    cmd
}

/// Run as the user whose home is `user` (the CLIs' directories under it, in UTC), quietly.
pub fn as_user(cmd: &mut Command, user: &Path) {
    cmd.env("HOME", user)
        .env("TZ", "UTC")
        .env_remove("CLAUDE_CONFIG_DIR")
        .env_remove("CODEX_HOME")
        .env_remove("GEMINI_CLI_HOME")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
}

/// Median wall time of `runs` fresh processes, and the largest peak memory among them.
pub fn measure(runs: usize, mut make: impl FnMut() -> Command) -> (Duration, u64) {
    let mut times = Vec::new();
    let mut peak = 0;
    let mut what = String::new();
    for _ in 0..runs.max(1) {
        let mut cmd = make();
        what = format!("{:?}", cmd.get_args().collect::<Vec<_>>());
        let start = Instant::now();
        let child = cmd.spawn().expect("run");
        let (status, rss) = wait_with_rss(child);
        times.push(start.elapsed());
        assert!(status == 0, "{cmd:?} failed");
        peak = peak.max(rss);
    }
    times.sort();
    let ms = |d: &Duration| format!("{:.0} ms", d.as_secs_f64() * 1000.0);
    eprintln!(
        "{} runs, {} to {}: {what}",
        times.len(),
        ms(&times[0]),
        ms(&times[times.len() - 1]),
    );
    (times[times.len() / 2], peak)
}

/// Wait for `child`; its exit status and its own peak resident memory (kB), from wait4(2).
pub fn wait_with_rss(child: std::process::Child) -> (i32, u64) {
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: wait4 on our own child, with buffers it fills; the Child is not waited again
    // (it is forgotten, and std does not reap on drop).
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    std::mem::forget(child);
    (status, usage.ru_maxrss as u64)
}

pub fn fmt(d: Duration, rss_kb: u64) -> String {
    format!("{}, {} MB", fmt_time(d), rss_kb / 1024)
}

pub fn fmt_time(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms >= 1000.0 {
        format!("{:.2} s", ms / 1000.0)
    } else {
        format!("{ms:.0} ms")
    }
}

pub fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            files(&p, out);
        } else {
            out.push(p);
        }
    }
}

pub fn dir_bytes(dir: &Path) -> u64 {
    let mut all = Vec::new();
    files(dir, &mut all);
    all.iter()
        .filter_map(|p| p.metadata().ok())
        .map(|m| m.len())
        .sum()
}

/// What `cmd` prints on stdout, as JSON (null if it is not).
pub fn output(mut cmd: Command) -> serde_json::Value {
    let out = cmd.stdout(Stdio::piped()).output().unwrap();
    serde_json::from_slice(&out.stdout).unwrap_or_default()
}

/// A table of figures: a row per operation, a column per store size; printed as Markdown.
pub struct Table {
    sizes: Vec<usize>,
    rows: Vec<(String, Vec<String>)>,
}

impl Table {
    pub fn new(sizes: &[usize]) -> Table {
        Table {
            sizes: sizes.to_vec(),
            rows: Vec::new(),
        }
    }

    /// `value` in row `name`, column `col` (a size's place).
    pub fn put(&mut self, name: &str, col: usize, value: String) {
        if let Some(r) = self.rows.iter_mut().find(|(n, _)| n == name) {
            r.1[col] = value;
        } else {
            let mut cells = vec!["-".to_string(); self.sizes.len()];
            cells[col] = value;
            self.rows.push((name.to_string(), cells));
        }
    }

    pub fn print(&self) {
        println!(
            "\n| operation | {} |",
            self.sizes
                .iter()
                .map(|n| format!("{n} conversations"))
                .collect::<Vec<_>>()
                .join(" | ")
        );
        println!("|---|{}", "---|".repeat(self.sizes.len()));
        for (name, cells) in &self.rows {
            println!("| {name} | {} |", cells.join(" | "));
        }
    }
}

pub fn first_claude_transcript(user: &Path) -> PathBuf {
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
pub fn append_request(path: &Path) {
    use std::io::Write;
    let id = path.file_stem().unwrap().to_string_lossy().into_owned();
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let line = serde_json::json!({
        "type": "assistant", "sessionId": id, "timestamp": "2099-01-01T00:00:00.000Z",
        "requestId": format!("req_bench_{n}"),
        "message": {"id": format!("msg_bench_{n}"), "model": "claude-sonnet-4-6",
                    "usage": {"input_tokens": 10, "output_tokens": 5}}
    });
    let mut f = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    writeln!(f, "{line}").unwrap();
}
