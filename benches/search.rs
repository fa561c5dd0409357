//! Whole-process benchmark of `sessions search` on native stores made by the tests' generator
//! with prose (tests/common/native.rs: prompts and answers in Latin, Cyrillic and CJK script,
//! tool output padding each request, a unique token planted in a quarter of the
//! conversations), and of the picker's first screen.
//!
//!     cargo bench --bench search                           # 10k conversations
//!     cargo bench --bench search -- --sizes 1000,10000
//!     cargo bench --bench search -- --fast-resume PATH/TO/fr   # side by side (BENCHMARKS.md)
//!
//! Stores are seeded once under target/bench-search/<n>-<padding>/ (with planted.json) and
//! reused. Every time is the median wall time of the release binary as a new process (page
//! cache warm, the catch-up included), with its peak memory. Recall: for each script, up to
//! `--recall` planted tokens searched one by one, counted when their conversation is the first
//! result. The text index's size is read from SQLite's own page accounting (dbstat).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use clap::Parser;

mod common;
#[path = "../tests/common/native.rs"]
mod native;
#[path = "../tests/common/pty.rs"]
mod pty;

use common::{as_user, clinvk, dir_bytes, fmt, measure, output, Table};

#[derive(Debug, Parser)]
#[command(about = "Whole-process benchmark of sessions search (see BENCHMARKS.md)")]
struct Args {
    /// Native conversations per store (a third each of Claude, Codex and Gemini)
    #[arg(long, value_delimiter = ',', default_value = "10000")]
    sizes: Vec<usize>,
    /// Runs per figure (the median is reported)
    #[arg(long, default_value_t = 11)]
    runs: usize,
    /// Bytes of tool output per request
    #[arg(long, default_value_t = 8000)]
    padding: usize,
    /// Planted tokens searched per script
    #[arg(long, default_value_t = 200)]
    recall: usize,
    /// fast-resume's `fr` binary (pip install fast-resume); left out when not given
    #[arg(long)]
    fast_resume: Option<String>,
    /// Passed by `cargo bench`; ignored
    #[arg(long, hide = true)]
    bench: bool,
}

/// What a search is timed for: a label, and the query's arguments.
const QUERIES: &[(&str, &[&str])] = &[
    ("a common word (retry)", &["retry"]),
    ("a two-word phrase (\"rate limiter\")", &["rate limiter"]),
    ("two words (backoff timeout)", &["backoff", "timeout"]),
    ("a Cyrillic word (ошибку)", &["ошибку"]),
    ("a CJK word inside sentences (令牌桶)", &["令牌桶"]),
    ("a CJK word of two characters (缓存)", &["缓存"]),
];

fn main() {
    let args = Args::parse();
    let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("../bench-search");
    let mut table = Table::new(&args.sizes);
    let mut put = |name: &str, col: usize, value: String| table.put(name, col, value);
    for (col, &n) in args.sizes.iter().enumerate() {
        let (user, planted) = seed(&root, n, args.padding);
        let dir = user.parent().unwrap().to_path_buf();
        put(
            "native store (MB)",
            col,
            format!("{}", dir_bytes(&user) >> 20),
        );
        let runs = args.runs;

        // The first import reads every message too (fresh homes, removed after).
        let mut fresh = 0;
        let (first, first_rss) = measure(3, || {
            fresh += 1;
            // SAFETY: sync(2) takes no arguments and cannot fail.
            unsafe { libc::sync() };
            let home = dir.join(format!("clinvk-first-{}-{fresh}", std::process::id()));
            let _ = std::fs::remove_dir_all(&home);
            clinvk(&user, &home, &["sessions", "import"])
        });
        for i in 1..=fresh {
            let _ = std::fs::remove_dir_all(
                dir.join(format!("clinvk-first-{}-{i}", std::process::id())),
            );
        }
        put(
            "sessions import, first (text index included)",
            col,
            fmt(first, first_rss),
        );
        let home = dir.join("clinvk");
        if !home.join("sessions").exists() {
            clinvk(&user, &home, &["sessions", "import"])
                .status()
                .unwrap();
        }
        let (text, fts, db) = sizes(&home.join("sessions/.index.db"));
        put("text held (MB)", col, format!("{:.1}", mb(text)));
        put(
            "text index, trigrams (MB; x the text)",
            col,
            format!("{:.1} ({:.2}x)", mb(fts), fts as f64 / text as f64),
        );
        put("whole index file (MB)", col, format!("{:.1}", mb(db)));

        let queries = queries(&planted);
        for (label, q) in &queries {
            let mut argv = vec!["sessions", "search"];
            argv.extend(q.iter().map(String::as_str));
            argv.extend(["-n", "20"]);
            let (t, rss) = measure(runs, || clinvk(&user, &home, &argv));
            let matches = count_matches(&user, &home, q);
            put(
                &format!("sessions search {label} -n 20"),
                col,
                format!("{} ({matches} sessions match)", fmt(t, rss)),
            );
        }

        // The picker's first screen, in a real terminal: from the start of the process until
        // the list, the preview of the first session and the keys line are all drawn.
        let first_screen = first_screen(
            runs,
            |_| clinvk(&user, &home, &["sessions", "pick"]),
            |s| s.contains("Esc cancel") && s.contains("Last said") && s.contains(" 1 of "),
            pty::ESC,
        );
        put(
            "picker (sessions pick): first screen, 100x30",
            col,
            first_screen,
        );

        // Recall, script by script.
        for script in SCRIPTS {
            let found = recall(
                &planted,
                script,
                args.recall,
                |_| true,
                |token| {
                    let argv = ["sessions", "search", token, "--json", "-n", "1"];
                    let out = output(clinvk(&user, &home, &argv));
                    out[0]["id"].as_str().map(str::to_string)
                },
            );
            put(
                &format!("recall, {script:?}: planted tokens ranked first"),
                col,
                found,
            );
        }

        if let Some(fr) = &args.fast_resume {
            fast_resume(fr, &user, &dir, &planted, &args, col, &mut put);
        }
    }
    table.print();
}

/// The median time from starting `make`'s process on a 100x30 terminal until `drawn` holds of
/// its screen (then it is sent `quit`), over `runs` runs.
fn first_screen(
    runs: usize,
    mut make: impl FnMut(usize) -> Command,
    drawn: impl Fn(&str) -> bool,
    quit: &str,
) -> String {
    let mut times = Vec::new();
    for run in 0..runs.max(1) {
        // The terminal is its stdin, stdout and stderr.
        let cmd = make(run);
        let start = Instant::now();
        let mut terminal = pty::Pty::on_terminal_stdout(cmd, 100, 30);
        loop {
            if drawn(&terminal.screen()) {
                break;
            }
            assert!(
                start.elapsed().as_secs() < 10,
                "no first screen:\n{}",
                terminal.screen()
            );
            std::thread::sleep(std::time::Duration::from_micros(500));
        }
        times.push(start.elapsed());
        // Asked to quit, then killed if it has not (dropped).
        terminal.send(quit);
        std::thread::sleep(std::time::Duration::from_millis(50));
        drop(terminal);
    }
    times.sort();
    eprintln!(
        "{} runs, {:.0} to {:.0} ms: first screen",
        times.len(),
        times[0].as_secs_f64() * 1000.0,
        times[times.len() - 1].as_secs_f64() * 1000.0
    );
    format!("{:.0} ms", times[times.len() / 2].as_secs_f64() * 1000.0)
}

/// What is searched for: a planted Latin token (a rare word), then `QUERIES`, with their labels.
fn queries(planted: &[(String, String, native::Script)]) -> Vec<(String, Vec<String>)> {
    let rare = planted
        .iter()
        .find(|p| p.2 == native::Script::Latin)
        .map(|p| p.1.clone())
        .expect("a planted token");
    let mut queries = vec![(format!("a rare word (a planted token, {rare})"), vec![rare])];
    queries.extend(
        QUERIES
            .iter()
            .map(|(label, q)| (label.to_string(), q.iter().map(|s| s.to_string()).collect())),
    );
    queries
}

/// fast-resume over the same store: its index built, then the same queries and the recall of
/// the tokens planted in the CLIs it reads (Claude Code and Codex).
fn fast_resume(
    fr: &str,
    user: &Path,
    dir: &Path,
    planted: &[(String, String, native::Script)],
    args: &Args,
    col: usize,
    put: &mut impl FnMut(&str, usize, String),
) {
    let cache = dir.join("fast-resume-cache");
    let cmd = |argv: &[&str]| {
        let mut c = Command::new(fr);
        c.args(argv).env("XDG_CACHE_HOME", &cache);
        as_user(&mut c, user);
        c
    };
    let start = Instant::now();
    cmd(&["--rebuild", "--json", "--limit", "1", "x"])
        .status()
        .unwrap();
    put(
        "fast-resume: index built (fr --rebuild)",
        col,
        format!("{:.2} s", start.elapsed().as_secs_f64()),
    );
    let queries = queries(planted);
    for (label, q) in &queries {
        let query = q.join(" ");
        let (t, rss) = measure(args.runs, || cmd(&["--json", "--limit", "20", &query]));
        put(
            &format!("fast-resume: fr {label} --limit 20"),
            col,
            fmt(t, rss),
        );
    }
    // Its TUI as it starts by default (it asks the terminal which image protocol it speaks,
    // and waits for the answer), and without images.
    for (label, argv) in [("", &[][..]), (" --no-images", &["--no-images"][..])] {
        let tui = first_screen(
            args.runs,
            |_| cmd(argv),
            |s| s.contains("Esc  quit") && s.contains("» "),
            "\x03",
        );
        put(
            &format!("fast-resume: fr{label} (its TUI): first screen, 100x30"),
            col,
            tui,
        );
    }
    let (t, rss) = measure(args.runs, || {
        cmd(&["--no-refresh", "--json", "--limit", "20", "retry"])
    });
    put(
        "fast-resume: fr retry --no-refresh --limit 20",
        col,
        fmt(t, rss),
    );
    // Only the CLIs it reads: the generator recorded which conversations are Gemini's.
    let gemini = std::fs::read_to_string(dir.join("gemini-ids.txt")).unwrap_or_default();
    let gemini: std::collections::HashSet<&str> = gemini.lines().collect();
    for script in SCRIPTS {
        let found = recall(
            planted,
            script,
            args.recall,
            |id| !gemini.contains(id),
            |token| {
                let out = output(cmd(&["--no-refresh", "--json", "--limit", "1", token]));
                out["sessions"][0]["id"].as_str().map(str::to_string)
            },
        );
        put(
            &format!("fast-resume: recall, {script:?} (Claude and Codex tokens)"),
            col,
            found,
        );
    }
}

const SCRIPTS: [native::Script; 3] = [
    native::Script::Latin,
    native::Script::Cyrillic,
    native::Script::Cjk,
];

/// How many of (up to `max`) tokens planted in `script`, in conversations `keep` keeps, have
/// their conversation first in `first`'s answer: "found/searched".
fn recall(
    planted: &[(String, String, native::Script)],
    script: native::Script,
    max: usize,
    keep: impl Fn(&str) -> bool,
    first: impl Fn(&str) -> Option<String>,
) -> String {
    let mine: Vec<_> = planted
        .iter()
        .filter(|p| p.2 == script && keep(&p.0))
        .take(max)
        .collect();
    let found = mine
        .iter()
        .filter(|(id, token, _)| first(token).as_deref() == Some(id.as_str()))
        .count();
    format!("{found}/{}", mine.len())
}

/// The store, seeded once: its user home and the planted tokens (conversation, token, script).
fn seed(root: &Path, n: usize, padding: usize) -> (PathBuf, Vec<(String, String, native::Script)>) {
    let dir = root.join(format!("{n}-{padding}"));
    let user = dir.join("user");
    let marker = dir.join("seeded-v3");
    if !marker.exists() {
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&user).unwrap();
        let start = Instant::now();
        let mut store = native::NativeStore::new(&user, n as u64)
            .with_padding(padding)
            .with_prose(25);
        store.generate(n.div_ceil(3));
        let planted: Vec<serde_json::Value> = store
            .planted
            .iter()
            .map(|p| serde_json::json!([p.conversation, p.token, format!("{:?}", p.script)]))
            .collect();
        std::fs::write(
            dir.join("planted.json"),
            serde_json::to_vec(&planted).unwrap(),
        )
        .unwrap();
        let gemini: Vec<&str> = store
            .written
            .iter()
            .filter(|w| w.cli == native::Cli::Gemini)
            .map(|w| w.id.as_str())
            .collect();
        std::fs::write(dir.join("gemini-ids.txt"), gemini.join("\n")).unwrap();
        std::fs::write(&marker, "").unwrap();
        eprintln!(
            "seeded {n} conversations in {:.1}s",
            start.elapsed().as_secs_f64()
        );
    }
    let planted: Vec<serde_json::Value> =
        serde_json::from_slice(&std::fs::read(dir.join("planted.json")).unwrap()).unwrap();
    let planted = planted
        .iter()
        .map(|p| {
            let script = match p[2].as_str().unwrap() {
                "Latin" => native::Script::Latin,
                "Cyrillic" => native::Script::Cyrillic,
                _ => native::Script::Cjk,
            };
            (
                p[0].as_str().unwrap().to_string(),
                p[1].as_str().unwrap().to_string(),
                script,
            )
        })
        .collect();
    (user, planted)
}

/// (text held, text index, whole file) in bytes, from SQLite's page accounting.
fn sizes(db: &Path) -> (u64, u64, u64) {
    let conn = rusqlite::Connection::open(db).unwrap();
    let text: i64 = conn
        .query_row(
            "SELECT sum(length(CAST(body AS BLOB))) FROM texts",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let fts: i64 = conn
        .query_row(
            "SELECT sum(pgsize) FROM dbstat WHERE name LIKE 'texts_fts%'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let file = std::fs::metadata(db).unwrap().len();
    (text as u64, fts as u64, file)
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / (1 << 20) as f64
}

fn count_matches(user: &Path, home: &Path, q: &[String]) -> usize {
    let mut argv = vec!["sessions", "search"];
    argv.extend(q.iter().map(String::as_str));
    argv.extend(["--json", "-n", "1000000"]);
    output(clinvk(user, home, &argv))
        .as_array()
        .map_or(0, Vec::len)
}
