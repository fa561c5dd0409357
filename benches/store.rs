//! Whole-process benchmark of the session store on seeded synthetic stores.
//!
//!     cargo bench --bench store                      # 10k, 100k and 1M sessions
//!     cargo bench --bench store -- --sizes 10000     # one size
//!
//! Stores are seeded once under target/bench-store/<n>/ (deterministic: fixed seed and fixed
//! "now", CLINVK_NOW) and reused by later runs. Every figure is the median wall time of running
//! the release `clinvk` binary as a new process, page cache warm. In the same run, the same
//! questions are answered by scanning the files: with jq (the guide's approach) and with a
//! parallel Rust scan (the best a scan can do), so the ratio is measured, not assumed.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use clinvk::store::{Backend, Filter, ListQuery, Quiet, Session, SessionId, Status, Store};

const NOW: &str = "2025-06-30T12:00:00Z";
const SEED_VERSION: &str = "v1";
const TAGS: &[(&str, u32)] = &[
    // (tag, per-mille of sessions carrying it)
    ("bugfix", 200),
    ("feature", 150),
    ("refactor", 100),
    ("project-x", 80),
    ("backend", 60),
    ("frontend", 60),
    ("tests", 50),
    ("docs", 30),
    ("urgent", 20),
    ("security", 10),
];
const WORDS: &[&str] = &[
    "fix",
    "the",
    "bug",
    "in",
    "handler",
    "add",
    "tests",
    "for",
    "parser",
    "refactor",
    "module",
    "explain",
    "why",
    "this",
    "fails",
    "on",
    "ci",
    "implement",
    "user",
    "registration",
    "update",
    "docs",
    "migrate",
    "database",
    "schema",
    "optimize",
    "query",
    "cache",
    "layer",
    "review",
    "pull",
    "request",
    "split",
    "function",
    "rename",
];

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn now() -> DateTime<Utc> {
    NOW.parse().unwrap()
}

fn synthetic_session(rng: &mut Rng, ids: &mut HashSet<String>) -> Session {
    const ALPHABET: &[u8] = b"0123456789abcdefghjkmnpqrstvwxyz";
    let id = loop {
        let id: String = (0..8)
            .map(|_| ALPHABET[rng.below(32) as usize] as char)
            .collect();
        if ids.insert(id.clone()) {
            break id;
        }
    };
    let backend = match rng.below(10) {
        0..=4 => Backend::Claude,
        5..=7 => Backend::Codex,
        _ => Backend::Gemini,
    };
    let last_used = now() - chrono::Duration::seconds(rng.below(365 * 86_400) as i64);
    let words = 5 + rng.below(35);
    let mut prompt: Vec<&str> = (0..words)
        .map(|_| WORDS[rng.below(WORDS.len() as u64) as usize])
        .collect();
    if rng.below(100) < 5 {
        prompt.insert(rng.below(prompt.len() as u64) as usize, "auth.go");
    }
    let project = rng.below(200).min(rng.below(200)); // skewed towards low numbers
    let mut s = Session::new(
        SessionId::parse(&id).unwrap(),
        backend,
        format!("/home/dev/projects/p{project}"),
        prompt.join(" "),
        last_used - chrono::Duration::seconds(rng.below(3 * 86_400) as i64),
    );
    s.last_used_at = last_used;
    s.status = match rng.below(100) {
        0..=39 => Status::Active,
        40..=84 => Status::Completed,
        85..=94 => Status::Error,
        _ => Status::Created,
    };
    if s.status == Status::Active || rng.below(2) == 0 {
        s.backend_session_id = Some(format!("{:016x}-{:016x}", rng.next(), rng.next()));
    }
    s.model = Some(
        match backend {
            Backend::Claude => "claude-sonnet-4-6",
            Backend::Codex => "gpt-5.6-sol",
            Backend::Gemini => "gemini-3-flash-preview",
        }
        .into(),
    );
    s.token_usage.input = rng.below(50_000);
    s.token_usage.output = rng.below(8_000);
    s.token_usage.cached = s.token_usage.input / 2;
    s.token_usage.total = s.token_usage.input + s.token_usage.output;
    for (tag, per_mille) in TAGS {
        if rng.below(1000) < u64::from(*per_mille) {
            s.tags.push((*tag).to_string());
        }
    }
    s.metadata.exit_code = Some(0);
    s.metadata.duration_seconds = Some(rng.below(120_000) as f64 / 1000.0);
    s
}

/// Write n session files (once; a marker records what was seeded).
fn seed(root: &Path, n: usize) -> PathBuf {
    let home = root.join(n.to_string());
    let sessions = home.join("sessions");
    let marker = home.join(format!("seeded-{SEED_VERSION}"));
    if marker.exists() {
        return home;
    }
    let _ = std::fs::remove_dir_all(&home);
    std::fs::create_dir_all(&sessions).unwrap();
    let start = Instant::now();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ n as u64);
    let mut ids = HashSet::with_capacity(n);
    for _ in 0..n {
        let s = synthetic_session(&mut rng, &mut ids);
        std::fs::write(sessions.join(s.id.file_name()), s.to_file_bytes()).unwrap();
    }
    std::fs::write(&marker, "").unwrap();
    eprintln!(
        "seeded {n} sessions in {:.1}s",
        start.elapsed().as_secs_f64()
    );
    home
}

/// Median wall time of `runs` executions of a fresh process.
fn time(runs: usize, mut make: impl FnMut() -> Command) -> Duration {
    let mut samples: Vec<Duration> = (0..runs)
        .map(|_| {
            let mut cmd = make();
            cmd.stdout(Stdio::null()).stderr(Stdio::null());
            let start = Instant::now();
            let status = cmd.status().expect("the command runs");
            let elapsed = start.elapsed();
            assert!(status.success(), "benchmark command failed: {cmd:?}");
            elapsed
        })
        .collect();
    samples.sort();
    samples[samples.len() / 2]
}

fn clinvk(home: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_clinvk"));
    cmd.args(args)
        .env("CLINVK_HOME", home)
        .env("CLINVK_NOW", NOW)
        .env("TZ", "UTC");
    cmd
}

/// The best a scan can do: this benchmark re-run as `--scan DIR BACKEND`, reading and parsing
/// every file on all cores, then filtering, sorting and taking 20.
fn scan_mode(dir: &Path, backend: &str) {
    let entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let chunk = entries.len().div_ceil(threads).max(1);
    let mut hits: Vec<(String, String)> = std::thread::scope(|scope| {
        let workers: Vec<_> = entries
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    part.iter()
                        .filter_map(|p| {
                            let v: serde_json::Value =
                                serde_json::from_slice(&std::fs::read(p).ok()?).ok()?;
                            if v["backend"] != backend {
                                return None;
                            }
                            Some((
                                v["last_used_at"].as_str()?.to_string(),
                                v["id"].as_str()?.to_string(),
                            ))
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect()
    });
    hits.sort_unstable_by(|a, b| b.cmp(a));
    hits.truncate(20);
    println!("{hits:?}");
}

fn fmt(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms >= 10_000.0 {
        format!("{:.1} s", ms / 1000.0)
    } else if ms >= 100.0 {
        format!("{ms:.0} ms")
    } else {
        format!("{ms:.1} ms")
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--scan") {
        scan_mode(Path::new(&args[i + 1]), &args[i + 2]);
        return;
    }
    let sizes: Vec<usize> = args
        .iter()
        .position(|a| a == "--sizes")
        .map(|i| args[i + 1].split(',').map(|s| s.parse().unwrap()).collect())
        .unwrap_or_else(|| vec![10_000, 100_000, 1_000_000]);
    let runs: usize = args
        .iter()
        .position(|a| a == "--runs")
        .map_or(21, |i| args[i + 1].parse().unwrap());
    let skip_jq = args.iter().any(|a| a == "--no-jq")
        || Command::new("jq").arg("--version").output().is_err();
    let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("../bench-store");

    let queries: &[(&str, &[&str])] = &[
        ("list -n 20", &["sessions", "list", "-n", "20"]),
        (
            "list -n 20 --backend codex",
            &["sessions", "list", "-n", "20", "--backend", "codex"],
        ),
        (
            "list -n 20 --status error",
            &["sessions", "list", "-n", "20", "--status", "error"],
        ),
        (
            "list -n 20 --tag urgent",
            &["sessions", "list", "-n", "20", "--tag", "urgent"],
        ),
        (
            "list -n 20 --tag bugfix --tag security",
            &[
                "sessions", "list", "-n", "20", "--tag", "bugfix", "--tag", "security",
            ],
        ),
        (
            "list -n 20 --since 7d",
            &["sessions", "list", "-n", "20", "--since", "7d"],
        ),
        (
            "list -n 20 --workdir /home/dev/projects/p7",
            &[
                "sessions",
                "list",
                "-n",
                "20",
                "--workdir",
                "/home/dev/projects/p7",
            ],
        ),
        (
            "list -n 20 --search auth.go",
            &["sessions", "list", "-n", "20", "--search", "auth.go"],
        ),
        (
            "list -n 20 --search fix (common)",
            &["sessions", "list", "-n", "20", "--search", "fix"],
        ),
        (
            "list -n 20 --json",
            &["sessions", "list", "-n", "20", "--json"],
        ),
    ];

    let mut table: Vec<(String, Vec<String>)> = Vec::new();
    let mut row = |name: &str, col: usize, value: String| {
        if let Some(r) = table.iter_mut().find(|(n, _)| n == name) {
            r.1[col] = value;
        } else {
            let mut cells = vec!["-".to_string(); sizes.len()];
            cells[col] = value;
            table.push((name.to_string(), cells));
        }
    };

    for (col, &n) in sizes.iter().enumerate() {
        let home = seed(&root, n);
        let sessions = home.join("sessions");
        let slow_runs = if n >= 1_000_000 { 3 } else { 5 };

        let reindex = time(slow_runs, || clinvk(&home, &["sessions", "reindex"]));
        row("sessions reindex (full rebuild)", col, fmt(reindex));

        for (name, argv) in queries {
            row(name, col, fmt(time(runs, || clinvk(&home, argv))));
        }

        // Writes: lock, read file, atomic write with fsync, index update.
        let store = Store::open(&sessions, Box::new(Quiet)).unwrap();
        let one = store
            .list(&ListQuery {
                limit: Some(1),
                ..Default::default()
            })
            .unwrap()
            .sessions[0]
            .id
            .to_string();
        let mut add = true;
        row(
            "sessions tag ID x (one write)",
            col,
            fmt(time(runs, || {
                add = !add;
                let mut argv = vec!["sessions", "tag", one.as_str(), "bench"];
                if add {
                    argv.push("--remove");
                }
                clinvk(&home, &argv)
            })),
        );
        row(
            "sessions show PREFIX",
            col,
            fmt(time(runs, || {
                clinvk(&home, &["sessions", "show", &one[..5]])
            })),
        );

        // The same question answered by scanning every file.
        let scan_runs = if n >= 1_000_000 { 1 } else { 3 };
        let rust_scan = time(scan_runs, || {
            let mut cmd = Command::new(std::env::current_exe().unwrap());
            cmd.args(["--scan", sessions.to_str().unwrap(), "codex"]);
            cmd
        });
        row(
            "scan files, parallel Rust (backend=codex, newest 20)",
            col,
            fmt(rust_scan),
        );
        if !skip_jq {
            let jq = time(scan_runs, || {
                let mut cmd = Command::new("bash");
                cmd.arg("-c").arg(format!(
                    "find {} -maxdepth 1 -name '*.json' -print0 | xargs -0 cat | \
                     jq -s '[.[] | select(.backend==\"codex\")] | sort_by(.last_used_at) | reverse | .[:20]'",
                    sessions.display()
                ));
                cmd
            });
            row("scan files, jq (backend=codex, newest 20)", col, fmt(jq));
        }

        // The plans SQLite chose at this size.
        eprintln!("\nquery plans at {n} sessions:");
        for (label, filter) in [
            (
                "backend",
                Filter {
                    backend: Some(Backend::Codex),
                    ..Default::default()
                },
            ),
            (
                "two tags",
                Filter {
                    tags: vec!["bugfix".into(), "security".into()],
                    ..Default::default()
                },
            ),
            (
                "search",
                Filter {
                    search: Some("auth.go".into()),
                    ..Default::default()
                },
            ),
        ] {
            let plan = store
                .explain(&ListQuery {
                    filter,
                    limit: Some(20),
                    offset: 0,
                })
                .unwrap();
            eprintln!("  {label}: {}", plan.join(" | "));
        }
    }

    println!(
        "\n| operation | {} |",
        sizes
            .iter()
            .map(|n| format!("{n} sessions"))
            .collect::<Vec<_>>()
            .join(" | ")
    );
    println!("|---|{}", "---|".repeat(sizes.len()));
    for (name, cells) in &table {
        println!("| {name} | {} |", cells.join(" | "));
    }
}
