//! Whole-process benchmark of the session store on seeded synthetic stores.
//!
//!     cargo bench --bench store                      # 10k, 100k and 1M sessions
//!     cargo bench --bench store -- --sizes 10000     # one size
//!     cargo bench --bench store -- --usage-only      # only `sessions stats` and its comparisons
//!
//! Stores are seeded once under target/bench-store/<n>/ (deterministic: fixed seed and fixed
//! "now", CLINVK_NOW) and reused by later runs. Every figure is the median wall time of running
//! the release `clinvk` binary as a new process, page cache warm. In the same run, the same
//! questions are answered by scanning the files: with jq (the guide's approach) and with a
//! parallel Rust scan (the best a scan can do), so the ratio is measured, not assumed.
//!
//! Every process runs with TZ=UTC, so the index's usage rollup (built in the local zone) counts
//! UTC days, as the `stats` questions do unless they name another zone. Each `stats` figure
//! says which table answered it: `rollup` (`usage_daily`) or `turns` (every run in range). The
//! `stats` answers are also checked: the rollup against the runs, and the index against the files.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use clap::Parser;

mod common;
use clinvk::store::session::Turn;
use clinvk::store::{
    Backend, Filter, ListQuery, Quiet, Session, SessionId, StatsQuery, Status, Store, TokenUsage,
};

const NOW: &str = "2025-06-30T12:00:00Z";
/// Part of the marker file name: bump it whenever the generator changes, so that stores seeded
/// by an older one are thrown away and seeded again. v2: sessions have turns (runs) with
/// several models per backend, and created_at..last_used_at spans their runs.
const SEED_VERSION: &str = "v2";
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

/// (model, weight in percent, $ per million tokens: input, output, cache read, cache write).
type ModelMix = &'static [(&'static str, u64, [f64; 4])];
const CLAUDE_MODELS: ModelMix = &[
    ("claude-sonnet-4-6", 60, [3.0, 15.0, 0.30, 3.75]),
    ("claude-opus-4-5", 25, [5.0, 25.0, 0.50, 6.25]),
    ("claude-haiku-4-5", 15, [1.0, 5.0, 0.10, 1.25]),
];
const CODEX_MODELS: ModelMix = &[
    ("gpt-5.1-codex", 65, [0.0; 4]),
    ("gpt-5.1-codex-mini", 35, [0.0; 4]),
];
const GEMINI_MODELS: ModelMix = &[
    ("gemini-2.5-pro", 45, [0.0; 4]),
    ("gemini-2.5-flash", 55, [0.0; 4]),
];

fn pick_model(rng: &mut Rng, models: ModelMix) -> usize {
    let mut r = rng.below(100);
    for (i, (_, weight, _)) in models.iter().enumerate() {
        if r < *weight {
            return i;
        }
        r -= weight;
    }
    models.len() - 1
}

fn words(rng: &mut Rng, n: u64) -> Vec<&'static str> {
    (0..n)
        .map(|_| WORDS[rng.below(WORDS.len() as u64) as usize])
        .collect()
}

/// One run's usage as the backends report it once normalised: `input` includes cache reads
/// (`cached`) and writes, `reasoning` is part of `output`; Claude also reports its cost.
fn synthetic_usage(rng: &mut Rng, backend: Backend, prices: [f64; 4]) -> (TokenUsage, Option<f64>) {
    let mut u = TokenUsage {
        input: 3_000 + rng.below(120_000),
        output: 200 + rng.below(6_000),
        ..TokenUsage::default()
    };
    let cached_pct = match backend {
        Backend::Gemini => rng.below(50),
        _ => rng.below(90),
    };
    u.cached = u.input * cached_pct / 100;
    match backend {
        Backend::Claude => u.cache_write = rng.below(u.input - u.cached + 1) / 4,
        Backend::Codex => u.reasoning = rng.below(u.output / 2 + 1),
        Backend::Gemini => u.reasoning = rng.below(u.output / 3 + 1),
    }
    u.total = u.input + u.output;
    let cost = (backend == Backend::Claude).then(|| {
        let [input, output, read, write] = prices;
        let plain = u.input - u.cached - u.cache_write;
        let usd = (plain as f64 * input
            + u.output as f64 * output
            + u.cached as f64 * read
            + u.cache_write as f64 * write)
            / 1e6;
        (usd * 1e6).round() / 1e6
    });
    (u, cost)
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
    let models = match backend {
        Backend::Claude => CLAUDE_MODELS,
        Backend::Codex => CODEX_MODELS,
        Backend::Gemini => GEMINI_MODELS,
    };
    let status = match rng.below(100) {
        0..=39 => Status::Active,
        40..=84 => Status::Completed,
        85..=94 => Status::Error,
        _ => Status::Created,
    };
    // A `created` session never ran; the others ran 1 to 4 times.
    let n_turns = match (status, rng.below(100)) {
        (Status::Created, _) => 0,
        (_, 0..=44) => 1,
        (_, 45..=69) => 2,
        (_, 70..=87) => 3,
        _ => 4,
    };
    // When the runs started, oldest first: within one sitting (up to 2 h), over a few days, or
    // continued 1 to 6 weeks later. last_used_at is when the last run ended.
    let last_used = now() - chrono::Duration::seconds(rng.below(365 * 86_400) as i64);
    let durations: Vec<u64> = (0..n_turns).map(|_| 2_000 + rng.below(298_000)).collect();
    let last_start =
        last_used - chrono::Duration::milliseconds(durations.last().copied().unwrap_or(0) as i64);
    let span_s = match (n_turns, rng.below(100)) {
        (0 | 1, _) => 0,
        (_, 0..=59) => 300 + rng.below(2 * 3600),
        (_, 60..=84) => 3600 + rng.below(3 * 86_400),
        _ => 7 * 86_400 + rng.below(35 * 86_400),
    };
    let first_start = last_start - chrono::Duration::seconds(span_s as i64);
    let mut starts: Vec<DateTime<Utc>> = vec![first_start];
    let mut middle: Vec<u64> = (2..n_turns.max(2)).map(|_| rng.below(span_s + 1)).collect();
    middle.sort_unstable();
    starts.extend(
        middle
            .iter()
            .map(|&o| first_start + chrono::Duration::seconds(o as i64)),
    );
    if n_turns > 1 {
        starts.push(last_start);
    }
    starts.truncate(n_turns);

    let n_words = 5 + rng.below(35);
    let mut prompt = words(rng, n_words);
    if rng.below(100) < 5 {
        prompt.insert(rng.below(prompt.len() as u64) as usize, "auth.go");
    }
    let project = rng.below(200).min(rng.below(200)); // skewed towards low numbers
    let mut s = Session::new(
        SessionId::parse(&id).unwrap(),
        backend,
        format!("/home/dev/projects/p{project}"),
        prompt.join(" "),
        if n_turns == 0 { last_used } else { first_start },
    );
    s.last_used_at = last_used;
    s.status = status;
    if status == Status::Active || (status != Status::Created && rng.below(2) == 0) {
        s.backend_session_id = Some(format!("{:016x}-{:016x}", rng.next(), rng.next()));
    }
    // One model per session, switched for a run now and then (`-m`).
    let session_model = pick_model(rng, models);
    for (i, at) in starts.into_iter().enumerate() {
        let model = if rng.below(10) == 0 {
            pick_model(rng, models)
        } else {
            session_model
        };
        let (name, _, prices) = models[model];
        let failed = status == Status::Error && i + 1 == n_turns;
        // A failed run reports usage half the time.
        let (usage, cost) = if failed && rng.below(2) == 0 {
            (None, None)
        } else {
            let (u, c) = synthetic_usage(rng, backend, prices);
            (Some(u), c)
        };
        if let Some(u) = &usage {
            s.token_usage.add(u);
        }
        let duration = durations[i] as f64 / 1000.0;
        s.model = Some(name.to_string());
        s.metadata.exit_code = Some(i32::from(failed));
        s.metadata.duration_seconds = Some(duration);
        s.metadata.error = failed.then(|| format!("{backend} exited with code 1"));
        s.turns.push(Turn {
            at,
            prompt: if i == 0 {
                s.prompt.clone()
            } else {
                let n_words = 3 + rng.below(10);
                words(rng, n_words).join(" ")
            },
            model: Some(name.to_string()),
            exit_code: Some(i32::from(failed)),
            duration_seconds: Some(duration),
            token_usage: usage,
            cost_usd: cost,
            error: s.metadata.error.clone(),
            request: None,
            extra: Default::default(),
        });
    }
    for (tag, per_mille) in TAGS {
        if rng.below(1000) < u64::from(*per_mille) {
            s.tags.push((*tag).to_string());
        }
    }
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
fn time(runs: usize, make: impl FnMut() -> Command) -> Duration {
    time_with_codes(runs, &[0], make)
}

/// The same, accepting any of `codes` as the exit code (budget checks exit 10 or 11).
fn time_with_codes(runs: usize, codes: &[i32], mut make: impl FnMut() -> Command) -> Duration {
    let mut samples: Vec<Duration> = (0..runs)
        .map(|_| {
            let mut cmd = make();
            cmd.stdout(Stdio::null()).stderr(Stdio::null());
            let start = Instant::now();
            let status = cmd.status().expect("the command runs");
            let elapsed = start.elapsed();
            assert!(
                status.code().is_some_and(|c| codes.contains(&c)),
                "benchmark command failed ({status}): {cmd:?}"
            );
            elapsed
        })
        .collect();
    samples.sort();
    samples[samples.len() / 2]
}

/// The peak resident memory of the process `cmd` starts, in KiB (output discarded).
fn peak_rss_kib(mut cmd: Command) -> u64 {
    let child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (status, rss) = common::wait_with_rss(child);
    assert_eq!(status, 0, "{cmd:?} failed");
    rss
}

fn clinvk(home: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_clinvk"));
    cmd.args(args)
        .env("CLINVK_HOME", home)
        .env("CLINVK_NOW", NOW)
        .env("TZ", "UTC");
    cmd
}

/// The session files of `dir`.
fn json_files(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect()
}

/// Read and parse every file on all cores, `each` turning one file into a list of results.
fn par_scan<T: Send>(
    files: &[PathBuf],
    each: impl Fn(serde_json::Value) -> Vec<T> + Sync,
) -> Vec<T> {
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let chunk = files.len().div_ceil(threads).max(1);
    let each = &each;
    std::thread::scope(|scope| {
        let workers: Vec<_> = files
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    part.iter()
                        .filter_map(|p| serde_json::from_slice(&std::fs::read(p).ok()?).ok())
                        .flat_map(each)
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect()
    })
}

/// The best a scan can do: this benchmark re-run as `--scan DIR BACKEND`, reading and parsing
/// every file on all cores, then filtering, sorting and taking 20.
fn scan_mode(dir: &Path, backend: &str) {
    let mut hits: Vec<(String, String)> = par_scan(&json_files(dir), |v| {
        if v["backend"] != backend {
            return Vec::new();
        }
        match (v["last_used_at"].as_str(), v["id"].as_str()) {
            (Some(t), Some(id)) => vec![(t.to_string(), id.to_string())],
            _ => Vec::new(),
        }
    });
    hits.sort_unstable_by(|a, b| b.cmp(a));
    hits.truncate(20);
    println!("{hits:?}");
}

/// `--scan-usage DIR`: tokens per (UTC month of the run, backend) as `sessions stats --by month
/// --by backend` counts them (each run at its start; whatever `token_usage` has beyond the
/// runs at `last_used_at`), printed as JSON rows [{month, backend, total}].
fn scan_usage_mode(dir: &Path) {
    let runs: Vec<((String, String), u64)> = par_scan(&json_files(dir), |v| {
        let backend = v["backend"].as_str().unwrap_or_default().to_string();
        let month =
            |t: &serde_json::Value| t.as_str().unwrap_or_default().get(..7).map(String::from);
        let mut out = Vec::new();
        let mut accounted = 0;
        for t in v["turns"].as_array().into_iter().flatten() {
            let total = t["token_usage"]["total"].as_u64().unwrap_or(0);
            accounted += total;
            if let Some(m) = month(&t["at"]) {
                out.push(((m, backend.clone()), total));
            }
        }
        let rest = v["token_usage"]["total"]
            .as_u64()
            .unwrap_or(0)
            .saturating_sub(accounted);
        if rest > 0 {
            if let Some(m) = month(&v["last_used_at"]) {
                out.push(((m, backend.clone()), rest));
            }
        }
        out
    });
    let mut sums: std::collections::BTreeMap<(String, String), u64> = Default::default();
    for (key, total) in runs {
        *sums.entry(key).or_default() += total;
    }
    let rows: Vec<serde_json::Value> = sums
        .into_iter()
        .map(|((month, backend), total)| {
            serde_json::json!({"month": month, "backend": backend, "total": total})
        })
        .collect();
    println!("{}", serde_json::Value::Array(rows));
}

/// The `sessions stats` questions timed, each labelled in the table with the table it reads:
/// `rollup` (the daily rollup, `usage_daily`) or `turns` (every run in range).
const STATS_QUERIES: &[(&str, &[&str])] = &[
    ("stats (totals)", &["sessions", "stats"]),
    (
        "stats --by month --by backend",
        &["sessions", "stats", "--by", "month", "--by", "backend"],
    ),
    (
        "stats --by backend",
        &["sessions", "stats", "--by", "backend"],
    ),
    ("stats --by model", &["sessions", "stats", "--by", "model"]),
    (
        "stats --by day --since 30d",
        &["sessions", "stats", "--by", "day", "--since", "30d"],
    ),
    (
        "stats --by day --since 2025-06-01",
        &["sessions", "stats", "--by", "day", "--since", "2025-06-01"],
    ),
    ("stats --by tag", &["sessions", "stats", "--by", "tag"]),
    (
        "stats --by workdir",
        &["sessions", "stats", "--by", "workdir"],
    ),
    (
        "stats --budget 1000000",
        &["sessions", "stats", "--budget", "1000000"],
    ),
    (
        "stats --budget-usd 50 --period week",
        &[
            "sessions",
            "stats",
            "--budget-usd",
            "50",
            "--period",
            "week",
        ],
    ),
    (
        "stats --by month --by backend --timezone America/New_York",
        &[
            "sessions",
            "stats",
            "--by",
            "month",
            "--by",
            "backend",
            "--timezone",
            "America/New_York",
        ],
    ),
    (
        "stats --by month --by backend --tag bugfix",
        &[
            "sessions", "stats", "--by", "month", "--by", "backend", "--tag", "bugfix",
        ],
    ),
];

/// jq over the raw files: every run's total by the (UTC) month it started in and the backend.
const JQ_RUNS_BY_MONTH_BACKEND: &str = "'[.[] | .backend as $b | .turns[]? | \
     {month: .at[0:7], backend: $b, total: (.token_usage.total // 0)}] \
     | group_by([.month, .backend]) \
     | map({month: .[0].month, backend: .[0].backend, total: (map(.total) | add)})'";

/// The query `clinvk sessions stats ARGS` runs, built by the command's own code, to ask the
/// store in-process which table answers it. TZ is UTC throughout, so the default zone is UTC.
fn stats_query(argv: &[&str]) -> StatsQuery {
    clinvk::cli::stats_query(argv, now()).expect("the benchmark's stats questions parse")
}

/// Which table answers `sessions stats ARGS`: its groups, and its totals (planned on their own).
fn answered_from(store: &Store, argv: &[&str]) -> &'static str {
    let q = stats_query(argv);
    let totals = StatsQuery {
        group_by: Vec::new(),
        top: None,
        ..q.clone()
    };
    let answer = store.stats(&q).unwrap().0;
    if answer.shifted_rollup {
        return "rollup of another zone, and the runs of the hours it moves";
    }
    let table = |q: &StatsQuery| store.stats(q).unwrap().0.from_rollup;
    match (answer.from_rollup, table(&totals)) {
        (true, true) => "rollup",
        (false, false) => "turns",
        (true, false) => "rollup, totals: turns",
        (false, true) => "turns, totals: rollup",
    }
}

/// `clinvk sessions stats ARGS --json`, parsed.
fn stats_json(home: &Path, args: &[&str]) -> serde_json::Value {
    let mut argv = vec!["sessions", "stats", "--json"];
    argv.extend_from_slice(args);
    let out = clinvk(home, &argv).output().unwrap();
    assert!(
        matches!(out.status.code(), Some(0 | 10 | 11)),
        "clinvk {argv:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Check the figures rather than only timing them: the rollup against the runs, and the index
/// against the files. Differences are printed, not fatal. To make `sessions stats` read `turns`
/// for the same question, it is asked in Africa/Abidjan (UTC+0 all year, but not the rollup's
/// zone) with a `--since` before every run that is not the start of a day (a range that cuts a
/// day, which no rollup answers).
fn check_stats(store: &Store, home: &Path, sessions: &Path, skip_jq: bool) {
    eprintln!("\nchecks:");
    let from_rollup = |argv: &[&str]| store.stats(&stats_query(argv)).unwrap().0.from_rollup;
    let report = |what: &str, a: &serde_json::Value, b: &serde_json::Value| {
        if a == b {
            eprintln!("  ok: {what}");
        } else {
            eprintln!("  DIFFERENT: {what}:\n    {a}\n    {b}");
        }
    };
    for args in [
        &[][..],
        &["--by", "month", "--by", "backend"],
        &["--by", "month"],
        &["--by", "week"],
        &["--by", "model"],
        &["--by", "month", "--by", "model"],
        &["--by", "status"],
        &["--budget", "1000000"],
        &["--budget-usd", "50", "--period", "week"],
    ] {
        let rollup = stats_json(home, args);
        let mut raw_args = args.to_vec();
        raw_args.extend(["--timezone", "Africa/Abidjan"]);
        let budget = args
            .iter()
            .any(|a| matches!(*a, "--budget" | "--budget-usd"));
        if !budget {
            raw_args.extend(["--since", "2000-01-01T00:00:01Z"]);
        }
        let raw = stats_json(home, &raw_args);
        let mut argv = vec!["sessions", "stats"];
        argv.extend_from_slice(args);
        let mut raw_argv = vec!["sessions", "stats"];
        raw_argv.extend_from_slice(&raw_args);
        if !from_rollup(&argv) || from_rollup(&raw_argv) {
            eprintln!(
                "  not a check: stats {} reads the same table both ways",
                args.join(" ")
            );
        }
        for field in ["rows", "totals", "budget"] {
            report(
                &format!("rollup = runs, stats {} : {field}", args.join(" ")),
                &rollup[field],
                &raw[field],
            );
        }
    }
    // The index against the files: runs by month and backend.
    let ours: Vec<serde_json::Value> = stats_json(home, &["--by", "month", "--by", "backend"])
        ["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| serde_json::json!({"month": r["month"], "backend": r["backend"], "total": r["total"]}))
        .collect();
    let scanned = Command::new(std::env::current_exe().unwrap())
        .args(["--scan-usage", sessions.to_str().unwrap()])
        .output()
        .unwrap();
    let scanned: serde_json::Value = serde_json::from_slice(&scanned.stdout).unwrap();
    report(
        "stats --by month --by backend = parallel Rust scan of the files",
        &serde_json::Value::Array(ours),
        &scanned,
    );
    if !skip_jq {
        // The guide's all-time total over `list --json` = the runs' total.
        let out = Command::new("bash")
            .arg("-c")
            .arg(format!(
                "'{}' sessions list --json | jq '[.[].token_usage.total] | add'",
                env!("CARGO_BIN_EXE_clinvk")
            ))
            .env("CLINVK_HOME", home)
            .env("CLINVK_NOW", NOW)
            .env("TZ", "UTC")
            .output()
            .unwrap();
        let jq: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        report(
            "stats totals.total = the guide's jq total",
            &stats_json(home, &[])["totals"]["total"],
            &jq,
        );
    }
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

/// `cargo bench --bench store -- [OPTIONS]`.
#[derive(Debug, Parser)]
#[command(about = "Whole-process benchmark of clinvk's session store (see BENCHMARKS.md)")]
struct BenchArgs {
    /// Store sizes to measure, in sessions
    #[arg(long, value_delimiter = ',', default_value = "10000,100000,1000000")]
    sizes: Vec<usize>,
    /// Runs per figure (the median is reported)
    #[arg(long, default_value_t = 21)]
    runs: usize,
    /// Only `sessions stats` and its comparisons
    #[arg(long)]
    usage_only: bool,
    /// Leave out the jq comparisons
    #[arg(long)]
    no_jq: bool,
    /// Only seed the stores (for measuring by hand)
    #[arg(long)]
    seed_only: bool,
    /// Only the figures of a big store (issue 14): rebuilds and commands during them, the
    /// streamed listing's time and memory, stats by key, outside changes
    #[arg(long)]
    scale: bool,
    /// Internal: scan DIR's files for BACKEND's sessions (the parallel-scan comparison)
    #[arg(long, num_args = 2, value_names = ["DIR", "BACKEND"], hide = true)]
    scan: Vec<String>,
    /// Internal: sum DIR's files' runs by month and backend (the parallel-scan comparison)
    #[arg(long, value_name = "DIR", hide = true)]
    scan_usage: Option<PathBuf>,
    /// Passed by `cargo bench`; ignored
    #[arg(long, hide = true)]
    bench: bool,
}

/// What `sessions list` is asked, by label.
const LIST_QUERIES: &[(&str, &[&str])] = &[
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

/// The figures of a run: one row per operation with a cell per store size, and the ratios of
/// `sessions stats` to the other ways of answering its questions.
struct Results {
    sizes: Vec<usize>,
    table: Vec<(String, Vec<String>)>,
    /// (sessions, question, clinvk's time, the other way, its time)
    ratios: Vec<(usize, String, Duration, String, Duration)>,
}

impl Results {
    fn row(&mut self, name: &str, col: usize, d: Duration) {
        self.text_row(name, col, fmt(d));
    }

    fn text_row(&mut self, name: &str, col: usize, value: String) {
        if let Some(r) = self.table.iter_mut().find(|(n, _)| n == name) {
            r.1[col] = value;
        } else {
            let mut cells = vec!["-".to_string(); self.sizes.len()];
            cells[col] = value;
            self.table.push((name.to_string(), cells));
        }
    }

    fn print(&self) {
        println!(
            "\n| operation | {} |",
            self.sizes
                .iter()
                .map(|n| format!("{n} sessions"))
                .collect::<Vec<_>>()
                .join(" | ")
        );
        println!("|---|{}", "---|".repeat(self.sizes.len()));
        for (name, cells) in &self.table {
            println!("| {name} | {} |", cells.join(" | "));
        }
        println!(
            "\n| sessions | question | clinvk sessions stats | other way | its time | ratio |"
        );
        println!("|---|---|---|---|---|---|");
        for (n, question, ours, other, theirs) in &self.ratios {
            println!(
                "| {n} | {question} | {} | {other} | {} | {:.0}x |",
                fmt(*ours),
                fmt(*theirs),
                theirs.as_secs_f64() / ours.as_secs_f64()
            );
        }
    }
}

/// One seeded store of `n` sessions, in column `col` of the results.
struct Bench<'a> {
    home: PathBuf,
    sessions: PathBuf,
    store: Store,
    n: usize,
    col: usize,
    args: &'a BenchArgs,
    skip_jq: bool,
}

impl Bench<'_> {
    /// Runs for a slow operation (a rebuild, a pipeline over every session).
    /// One `sessions list -n 20`: whether it succeeded, and how long it took.
    fn timed_list(&self) -> (bool, Duration) {
        let start = Instant::now();
        let ok = clinvk(&self.home, &["sessions", "list", "-n", "20"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap()
            .success();
        (ok, start.elapsed())
    }

    /// Issue 14's figures: what a big store costs the commands people run against it.
    fn scale(&self, results: &mut Results) {
        let col = self.col;
        // `sessions list -n 20` while rebuilds run, one after the other: 100 tries.
        let mut latencies = Vec::new();
        let mut failures = 0;
        let mut rebuilds = 0;
        while latencies.len() < 100 {
            let mut reindex = clinvk(&self.home, &["sessions", "reindex"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            rebuilds += 1;
            // Let it get going: the listing must meet it reading the files.
            std::thread::sleep(Duration::from_millis(50));
            while latencies.len() < 100 && reindex.try_wait().unwrap().is_none() {
                let (ok, took) = self.timed_list();
                latencies.push(took);
                failures += usize::from(!ok);
                std::thread::sleep(Duration::from_millis(20));
            }
            assert!(reindex.wait().unwrap().success());
        }
        latencies.sort();
        results.text_row(
            "list -n 20 during a rebuild: median / slowest of 100, failures",
            col,
            format!(
                "{} / {}, {failures} failed ({rebuilds} rebuilds)",
                fmt(latencies[50]),
                fmt(latencies[99])
            ),
        );
        // The streamed listing: time, and the process's peak memory.
        let json = time(self.slow_runs(), || {
            clinvk(&self.home, &["sessions", "list", "--json"])
        });
        results.row("list --json (every session)", col, json);
        results.text_row(
            "list --json peak memory (max RSS)",
            col,
            format!(
                "{} MB",
                peak_rss_kib(clinvk(&self.home, &["sessions", "list", "--json"])) / 1024
            ),
        );
        results.row(
            "list --ndjson (every session)",
            col,
            time(self.slow_runs(), || {
                clinvk(&self.home, &["sessions", "list", "--ndjson"])
            }),
        );
        // The guide's recipes read it whole.
        let count = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "{:?} sessions list --json | jq length",
                env!("CARGO_BIN_EXE_clinvk")
            ))
            .env("CLINVK_HOME", &self.home)
            .env("CLINVK_NOW", NOW)
            .env("TZ", "UTC")
            .output()
            .unwrap();
        if count.status.success() && !count.stdout.is_empty() {
            let listed: usize = String::from_utf8_lossy(&count.stdout)
                .trim()
                .parse()
                .unwrap();
            assert_eq!(
                listed, self.n,
                "jq reads every session from the streamed array"
            );
        }
        // The usage benchmark's questions this issue is about, and its own.
        let shared = [
            "stats --by tag",
            "stats --by workdir",
            "stats --by month --by backend --timezone America/New_York",
        ];
        let scale_only: &[(&str, &[&str])] = &[
            (
                "stats --by project",
                &["sessions", "stats", "--by", "project"],
            ),
            (
                "stats --by session -n 20",
                &["sessions", "stats", "--by", "session", "-n", "20"],
            ),
            (
                "stats --by month --by tag",
                &["sessions", "stats", "--by", "month", "--by", "tag"],
            ),
            (
                "stats --by week --by model --timezone America/New_York",
                &[
                    "sessions",
                    "stats",
                    "--by",
                    "week",
                    "--by",
                    "model",
                    "--timezone",
                    "America/New_York",
                ],
            ),
            (
                "stats --by day --timezone +05:30",
                &["sessions", "stats", "--by", "day", "--timezone", "+05:30"],
            ),
        ];
        for &(label, argv) in STATS_QUERIES
            .iter()
            .filter(|(label, _)| shared.contains(label))
            .chain(scale_only)
        {
            let runs = if label.contains("timezone") {
                self.slow_runs()
            } else {
                self.args.runs
            };
            let took = time(runs, || clinvk(&self.home, argv));
            results.row(
                &format!("{label} [{}]", answered_from(&self.store, argv)),
                col,
                took,
            );
        }
        // A file added by hand, then removed: the next command compares every file.
        let mut samples = Vec::new();
        let model = json_files(&self.sessions).into_iter().next().unwrap();
        let text = std::fs::read_to_string(&model).unwrap();
        let stem = model.file_stem().unwrap().to_string_lossy().to_string();
        for i in 0..self.slow_runs() {
            let id = format!("handmade{i}");
            let added = self.sessions.join(format!("{id}.json"));
            std::fs::write(&added, text.replace(&stem, &id)).unwrap();
            for _ in 0..2 {
                let (ok, took) = self.timed_list();
                assert!(ok);
                samples.push(took);
                if added.exists() {
                    std::fs::remove_file(&added).unwrap();
                }
            }
        }
        samples.sort();
        results.row(
            "list -n 20 after a file is added or removed by hand",
            col,
            samples[samples.len() / 2],
        );
    }

    fn slow_runs(&self) -> usize {
        if self.n >= 1_000_000 {
            3
        } else {
            5
        }
    }

    /// Runs for a scan of every file.
    fn scan_runs(&self) -> usize {
        if self.n >= 1_000_000 {
            1
        } else {
            3
        }
    }

    /// This program again, scanning the files (`--scan`, `--scan-usage`).
    fn scan(&self, mode: &[&str]) -> Command {
        let mut cmd = Command::new(std::env::current_exe().unwrap());
        cmd.args(mode).arg(&self.sessions);
        cmd
    }

    fn jq_over_files(&self, filter: &str) -> Command {
        let mut cmd = Command::new("bash");
        cmd.arg("-c").arg(format!(
            "find {} -maxdepth 1 -name '*.json' -print0 | xargs -0 cat | jq -s {filter}",
            self.sessions.display()
        ));
        cmd
    }

    /// Listing, writes and `show`, next to the same question answered by scanning the files.
    fn listing(&self, results: &mut Results) {
        let (home, col, runs) = (&self.home, self.col, self.args.runs);
        for (name, argv) in LIST_QUERIES {
            results.row(name, col, time(runs, || clinvk(home, argv)));
        }

        // Writes: lock, read file, atomic write with fsync, index update.
        let one = self
            .store
            .list(&ListQuery {
                limit: Some(1),
                ..Default::default()
            })
            .unwrap()
            .sessions[0]
            .id
            .to_string();
        let mut add = true;
        let tag = time(runs, || {
            add = !add;
            let mut argv = vec!["sessions", "tag", one.as_str(), "bench"];
            if add {
                argv.push("--remove");
            }
            clinvk(home, &argv)
        });
        results.row("sessions tag ID x (one write)", col, tag);
        let show = time(runs, || clinvk(home, &["sessions", "show", &one[..5]]));
        results.row("sessions show PREFIX", col, show);

        // The same question answered by scanning every file.
        let rust_scan = time(self.scan_runs(), || {
            let mut cmd = self.scan(&["--scan"]);
            cmd.arg("codex");
            cmd
        });
        results.row(
            "scan files, parallel Rust (backend=codex, newest 20)",
            col,
            rust_scan,
        );
        if !self.skip_jq {
            let jq = time(self.scan_runs(), || {
                self.jq_over_files(
                    "'[.[] | select(.backend==\"codex\")] | sort_by(.last_used_at) | reverse | .[:20]'",
                )
            });
            results.row("scan files, jq (backend=codex, newest 20)", col, jq);
        }
        self.list_plans();
    }

    /// The plans SQLite chose at this size.
    fn list_plans(&self) {
        eprintln!("\nquery plans at {} sessions:", self.n);
        let backend = Filter {
            backend: Some(Backend::Codex),
            ..Default::default()
        };
        let two_tags = Filter {
            tags: vec!["bugfix".into(), "security".into()],
            ..Default::default()
        };
        for (label, query) in [
            (
                "backend",
                ListQuery {
                    filter: backend,
                    ..Default::default()
                },
            ),
            (
                "two tags",
                ListQuery {
                    filter: two_tags,
                    ..Default::default()
                },
            ),
            (
                "search",
                ListQuery {
                    search: Some("auth.go".into()),
                    ..Default::default()
                },
            ),
        ] {
            let query = ListQuery {
                limit: Some(20),
                ..query
            };
            let plan = self.store.explain(&query).unwrap();
            eprintln!("  {label}: {}", plan.join(" | "));
        }
    }

    /// `sessions stats` (usage and budgets), next to the guide's `list --json | jq` pipelines
    /// and scans of the files; its answers checked, and its plans shown.
    fn stats(&self, results: &mut Results) {
        let (home, col, runs, n) = (&self.home, self.col, self.args.runs, self.n);
        let mut stats_times = Vec::new();
        for (label, argv) in STATS_QUERIES {
            let path = answered_from(&self.store, argv);
            let d = time_with_codes(runs, &[0, 10, 11], || clinvk(home, argv));
            results.row(&format!("{label} [{path}]"), col, d);
            stats_times.push((*label, d));
        }
        let stats_time = |label: &str| stats_times.iter().find(|(l, _)| *l == label).unwrap().1;

        // The guide's pipelines, on the same store: every session out of `list --json`, summed
        // by jq. They sum each session's total by its creation month, not each run by when it
        // happened, so the monthly figure is not the same number as the budget check's.
        let month = &NOW[..7];
        let pipelines = [
            (
                "stats (totals)",
                "list --json, jq: total",
                "[.[].token_usage.total] | add".to_string(),
            ),
            (
                "stats --by backend",
                "list --json, jq: by backend",
                "group_by(.backend) | map({backend: .[0].backend, total: [.[].token_usage.total] | add})"
                    .to_string(),
            ),
            (
                "stats --budget 1000000",
                "list --json, jq: this month's total",
                format!(
                    "[.[] | select(.created_at | startswith(\"{month}\")) | .token_usage.total] | add"
                ),
            ),
        ];
        let bin = env!("CARGO_BIN_EXE_clinvk");
        if !self.skip_jq {
            for (question, label, filter) in &pipelines {
                let d = time(self.slow_runs(), || {
                    let mut cmd = Command::new("bash");
                    cmd.arg("-c")
                        .arg(format!(
                            "set -o pipefail; '{bin}' sessions list --json | jq '{filter}'"
                        ))
                        .env("CLINVK_HOME", home)
                        .env("CLINVK_NOW", NOW)
                        .env("TZ", "UTC");
                    cmd
                });
                results.row(label, col, d);
                let ours = stats_time(question);
                results
                    .ratios
                    .push((n, question.to_string(), ours, label.to_string(), d));
            }
        }
        // Runs by month and backend straight from the files.
        let by_month_backend = "stats --by month --by backend";
        let ours = stats_time(by_month_backend);
        let rust_usage = time(self.scan_runs(), || self.scan(&["--scan-usage"]));
        results.row(
            "scan files, parallel Rust (runs by month and backend)",
            col,
            rust_usage,
        );
        results.ratios.push((
            n,
            by_month_backend.into(),
            ours,
            "scan files, parallel Rust".into(),
            rust_usage,
        ));
        if !self.skip_jq {
            let jq = time(self.scan_runs(), || {
                self.jq_over_files(JQ_RUNS_BY_MONTH_BACKEND)
            });
            results.row("scan files, jq (runs by month and backend)", col, jq);
            results.ratios.push((
                n,
                by_month_backend.into(),
                ours,
                "scan files, jq".into(),
                jq,
            ));
        }

        check_stats(&self.store, home, &self.sessions, self.skip_jq);
        // The plans of the statements each stats question runs (its groups, then its totals).
        eprintln!("\nstats query plans at {n} sessions:");
        for (label, argv) in STATS_QUERIES {
            let plan = self.store.explain_stats(&stats_query(argv)).unwrap();
            eprintln!("  {label}: {}", plan.join(" | "));
        }
    }
}

fn main() {
    // Every day and month here is a UTC one: the clinvk processes run with TZ=UTC (see
    // `clinvk`), and so does this one, should it ever have to rebuild the index itself.
    std::env::set_var("TZ", "UTC");
    let args = BenchArgs::parse();
    if let [dir, backend] = args.scan.as_slice() {
        scan_mode(Path::new(dir), backend);
        return;
    }
    if let Some(dir) = &args.scan_usage {
        scan_usage_mode(dir);
        return;
    }
    let skip_jq = args.no_jq || Command::new("jq").arg("--version").output().is_err();
    let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("../bench-store");
    let mut results = Results {
        sizes: args.sizes.clone(),
        table: Vec::new(),
        ratios: Vec::new(),
    };
    for (col, &n) in args.sizes.iter().enumerate() {
        let home = seed(&root, n);
        if args.seed_only {
            continue;
        }
        let sessions = home.join("sessions");
        let bench = Bench {
            store: Store::open(&sessions, Box::new(Quiet)).unwrap(),
            home,
            sessions,
            n,
            col,
            args: &args,
            skip_jq,
        };
        let reindex = time(bench.slow_runs(), || {
            clinvk(&bench.home, &["sessions", "reindex"])
        });
        results.row("sessions reindex (full rebuild)", col, reindex);
        if args.scale {
            bench.scale(&mut results);
            continue;
        }
        if !args.usage_only {
            bench.listing(&mut results);
        }
        bench.stats(&mut results);
    }
    results.print();
}
