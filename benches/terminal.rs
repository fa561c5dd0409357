//! Whole-process timings of what runs inside the terminal on every keystroke or message: shell
//! completion of session ids and tags (on the store benchmark's stores), and the status line
//! Claude Code runs after each message (on the native benchmark's 10k store).
//!
//!     cargo bench --bench store -- --sizes 10000,100000 --seed-only   # the stores, once
//!     cargo bench --bench native -- --sizes 10000                     # the native store, once
//!     cargo bench --bench terminal                                    # these figures
//!
//! Every figure is the median wall time of the release binary as a new process, page cache
//! warm, beside the floor of any process of it (`clinvk --version`).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use clap::Parser;

mod common;

use common::{append_request, clinvk, first_claude_transcript, fmt, measure, Table};

#[derive(Debug, Parser)]
#[command(about = "Completion and status-line timings (see BENCHMARKS.md)")]
struct Args {
    /// Sizes of the store benchmark's stores to complete from
    #[arg(long, value_delimiter = ',', default_value = "10000,100000")]
    sizes: Vec<usize>,
    /// Runs per figure (the median is reported)
    #[arg(long, default_value_t = 21)]
    runs: usize,
    /// Passed by `cargo bench`; ignored
    #[arg(long, hide = true)]
    bench: bool,
}

fn main() {
    let args = Args::parse();
    let target = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("..");
    let empty_user = tempfile::tempdir().unwrap();
    let user = empty_user.path();
    let mut table = Table::new(&args.sizes);
    for (col, &n) in args.sizes.iter().enumerate() {
        let home = target.join(format!("bench-store/{n}"));
        if !home.join("sessions").is_dir() {
            eprintln!("no store of {n} sessions: `cargo bench --bench store -- --sizes {n} --seed-only` first");
            continue;
        }
        // Brought up to this build's schema once, untimed.
        clinvk(user, &home, &["sessions", "list", "-n", "1"])
            .status()
            .unwrap();
        let complete = |words: &[&str]| {
            let mut all = vec!["--", "clinvk"];
            all.extend_from_slice(words);
            let (t, rss) = measure(args.runs, || {
                let mut cmd = clinvk(user, &home, &all);
                cmd.env("CLINVK_COMPLETE", "fish");
                cmd
            });
            fmt(t, rss)
        };
        let (floor, rss) = measure(args.runs, || clinvk(user, &home, &["--version"]));
        table.put("a process (`clinvk --version`)", col, fmt(floor, rss));
        table.put(
            "complete `sessions show <TAB>` (200 recent ids)",
            col,
            complete(&["sessions", "show", ""]),
        );
        table.put(
            "complete `sessions show 3f<TAB>`",
            col,
            complete(&["sessions", "show", "3f"]),
        );
        table.put(
            "complete `sessions list --tag <TAB>`",
            col,
            complete(&["sessions", "list", "--tag", ""]),
        );
    }
    table.print();

    let native = target.join("bench-native/10000-8000");
    let (native_user, native_home) = (native.join("user"), native.join("clinvk"));
    if !native_home.join("sessions").is_dir() {
        eprintln!("no native store: `cargo bench --bench native -- --sizes 10000` first");
        return;
    }
    let transcript = first_claude_transcript(&native_user);
    let id = transcript
        .file_stem()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let stdin = std::env::temp_dir().join(format!("clinvk-statusline-{}.json", std::process::id()));
    std::fs::write(
        &stdin,
        serde_json::json!({
            "session_id": id,
            "transcript_path": transcript,
            "model": {"id": "claude-opus-4-5", "display_name": "Opus 4.5"},
        })
        .to_string(),
    )
    .unwrap();
    let statusline = |cmd_stdin: &Path| {
        let mut cmd = clinvk(&native_user, &native_home, &["statusline"]);
        cmd.stdin(Stdio::from(std::fs::File::open(cmd_stdin).unwrap()));
        cmd
    };
    statusline(&stdin).status().unwrap();
    let mut table = Table::new(&[10_000]);
    let (t, rss) = measure(args.runs, || statusline(&stdin));
    table.put("statusline, nothing new", 0, fmt(t, rss));
    let (t, rss) = measure(args.runs, || {
        append_request(&transcript);
        statusline(&stdin)
    });
    table.put(
        "statusline, one request appended to its transcript",
        0,
        fmt(t, rss),
    );
    let (t, rss) = measure(args.runs, || {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_clinvk"));
        cmd.arg("--version").stdout(Stdio::null());
        cmd
    });
    table.put("a process (`clinvk --version`)", 0, fmt(t, rss));
    table.print();
    let _ = std::fs::remove_file(stdin);
}
