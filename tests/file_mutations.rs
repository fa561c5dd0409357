//! Fuzz-style: many random mutations of a valid session file (fields removed, types swapped,
//! extreme numbers and dates, invalid UTF-8, deep nesting, truncation, huge and control-laden
//! text), all in one store beside valid sessions. Every command must finish without a panic,
//! each mutated file must be either read as a session or reported invalid (never both, never
//! neither), reading commands must change no file, and a write to an invalid file must leave
//! it as it was.
//!
//! Deterministic: the cases come from a seeded generator. `CLINVK_FUZZ_SEED` and
//! `CLINVK_FUZZ_CASES` run other or more cases (`CLINVK_FUZZ_CASES=5000 cargo test --test
//! file_mutations`); a failure names the seed and the case.

#[macro_use]
#[allow(unused_macros)]
mod common;

use std::collections::BTreeSet;

use chrono::Duration;
use common::*;
use serde_json::{json, Value};

/// SplitMix64: small, fast, and the same everywhere.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// A session with everything a file can have: runs with models, costs and usage, tags, a fork
/// parent, metadata, and a field clinvk does not know.
fn rich_session(id: &str) -> Value {
    let mut value = session(id)
        .tags(&["bugfix", "project-x"])
        .turns(&[
            turn(&ago(Duration::hours(3)), 1200, 300, 100)
                .model("claude-sonnet-4-5")
                .cost(0.01)
                .cache_write(50),
            turn(&ago(Duration::hours(1)), 800, 200, 0).reasoning(20),
        ])
        .field("parent_id", json!("parent01"))
        .field("x_unknown", json!({"kept": [1, 2, 3]}))
        .value()
        .clone();
    value["metadata"]["error"] = json!("something happened");
    value
}

const DATES: &[&str] = &[
    "-262143-01-02T00:00:00Z",
    "+262142-12-31T23:59:59Z",
    "9999-12-31T23:59:59Z",
    "0000-01-01T00:00:00Z",
    "0001-01-01T00:00:00+14:00",
    "1970-01-01T00:00:00Z",
    "2025-02-30T00:00:00Z",
    "2025-01-27T25:61:61Z",
    "2025-01-27",
    "2025-01-27T12:00:00",
    "2025-01-27T12:00:00.123456789-23:59",
    "",
    "yesterday",
];

fn extreme_number(rng: &mut Rng) -> Value {
    let options = [
        json!(u64::MAX),
        json!(i64::MIN),
        json!(-1),
        json!(0),
        json!(1.5),
        json!(-0.0),
        json!(1e308),
        json!(-1e308),
        json!(4.9e-324),
        json!(9_007_199_254_740_993u64),
    ];
    rng.pick(&options).clone()
}

fn any_value(rng: &mut Rng) -> Value {
    match rng.below(9) {
        0 => Value::Null,
        1 => json!(rng.below(2) == 1),
        2 => extreme_number(rng),
        3 => json!(rng.pick(DATES)),
        4 => json!(rng.pick(&[
            "",
            "claude",
            "codex",
            "gemini",
            "CLAUDE",
            "active",
            "error",
            "../x",
            "a/b",
            "\u{1b}[2J\u{202e}",
            "\u{0}",
        ])),
        5 => json!([]),
        6 => json!({}),
        7 => json!(["a", 1, null, {"b": []}]),
        _ => json!("x".repeat(1 + rng.below(3) * 100_000)),
    }
}

/// Every path to a value in `v` (object keys and array indexes).
fn paths(v: &Value, at: &mut Vec<Step>, out: &mut Vec<Vec<Step>>) {
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                at.push(Step::Key(k.clone()));
                out.push(at.clone());
                paths(child, at, out);
                at.pop();
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                at.push(Step::Index(i));
                out.push(at.clone());
                paths(child, at, out);
                at.pop();
            }
        }
        _ => {}
    }
}

#[derive(Clone, Debug)]
enum Step {
    Key(String),
    Index(usize),
}

fn at_mut<'a>(v: &'a mut Value, path: &[Step]) -> &'a mut Value {
    path.iter().fold(v, |v, step| match step {
        Step::Key(k) => &mut v[k.as_str()],
        Step::Index(i) => &mut v[*i],
    })
}

fn remove_at(v: &mut Value, path: &[Step]) {
    let (last, parent) = path.split_last().expect("a path has a step");
    match (at_mut(v, parent), last) {
        (Value::Object(map), Step::Key(k)) => {
            map.remove(k);
        }
        (Value::Array(items), Step::Index(i)) if *i < items.len() => {
            items.remove(*i);
        }
        _ => {}
    }
}

/// One mutated file's bytes, and what was done (for a failure message).
fn mutate(rng: &mut Rng, id: &str) -> (Vec<u8>, String) {
    let mut value = rich_session(id);
    let mut what = Vec::new();
    for _ in 0..1 + rng.below(3) {
        let mut all = Vec::new();
        paths(&value, &mut Vec::new(), &mut all);
        let path = rng.pick(&all).clone();
        match rng.below(6) {
            0 => {
                remove_at(&mut value, &path);
                what.push(format!("removed {path:?}"));
            }
            1 | 2 => {
                let new = any_value(rng);
                what.push(format!("{path:?} = {}", short(&new)));
                *at_mut(&mut value, &path) = new;
            }
            3 => {
                let date = *rng.pick(DATES);
                what.push(format!("{path:?} = {date:?}"));
                *at_mut(&mut value, &path) = json!(date);
            }
            4 => {
                let new = extreme_number(rng);
                what.push(format!("{path:?} = {new}"));
                *at_mut(&mut value, &path) = new;
            }
            _ => {
                let depth = 100 + rng.below(20_000);
                let (open, close) = if rng.below(2) == 0 {
                    ("[", "]")
                } else {
                    ("{\"a\":", "}")
                };
                let nested = format!("{}1{}", open.repeat(depth), close.repeat(depth));
                // Spliced in as text: serde_json would refuse to build it.
                let marker = format!("\"__nested_{}__\"", rng.next());
                *at_mut(&mut value, &path) = serde_json::from_str(&marker).unwrap();
                what.push(format!("{path:?} nested {depth} deep"));
                let text = serde_json::to_string(&value)
                    .unwrap()
                    .replace(&marker, &nested);
                return (text.into_bytes(), what.join("; "));
            }
        }
    }
    let mut bytes = serde_json::to_vec_pretty(&value).unwrap();
    match rng.below(8) {
        0 => {
            // Invalid UTF-8 inside the text, where a string would be.
            let at = rng.below(bytes.len());
            bytes.splice(at..at, [0xff, 0xfe, 0xc3]);
            what.push(format!("invalid UTF-8 at byte {at}"));
        }
        1 => {
            let at = rng.below(bytes.len());
            bytes.truncate(at);
            what.push(format!("truncated at byte {at}"));
        }
        2 => {
            // A duplicate key: the last one wins, or the file is refused; never a panic.
            let text = String::from_utf8(bytes).unwrap();
            bytes = text
                .replacen('{', "{\"status\": \"bogus\", ", 1)
                .into_bytes();
            what.push("duplicate status".into());
        }
        _ => {}
    }
    (bytes, what.join("; "))
}

fn short(v: &Value) -> String {
    let text = v.to_string();
    if text.len() > 60 {
        format!("{}… ({} bytes)", &text[..60], text.len())
    } else {
        text
    }
}

#[track_caller]
fn no_panic(run: &Run, context: &str) {
    assert!(
        run.code != 101 && !run.stderr.contains("panicked"),
        "{context}: panicked (exit {})\n{}",
        run.code,
        run.stderr
    );
}

#[test]
fn no_mutation_of_a_session_file_makes_any_command_panic_or_lose_a_file() {
    let seed: u64 = std::env::var("CLINVK_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_c11e);
    let cases: usize = std::env::var("CLINVK_FUZZ_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(160);
    let mut rng = Rng(seed);
    let home = standard_home();
    let mut made = Vec::new();
    for n in 0..cases {
        let id = format!("mut{n:05}");
        let (bytes, what) = mutate(&mut rng, &id);
        std::fs::write(home.session_path(&id), &bytes).unwrap();
        made.push((id, what));
    }
    let context = |id: &str| {
        let what = made.iter().find(|(m, _)| m == id).map_or("", |(_, w)| w);
        format!("seed {seed}, {id} ({what})")
    };

    // Reading commands, in two zones (one of them far from UTC): no panic, no file changed.
    let before = home.snapshot(false);
    let mut reindexed = None;
    for tz in ["UTC", "Asia/Tokyo", "Pacific/Kiritimati"] {
        for args in [
            &["sessions", "reindex", "--json"][..],
            &["sessions", "list", "--json"],
            &[
                "sessions", "list", "--json", "--since", "1d", "--tag", "bugfix",
            ],
            &["sessions", "list", "--search", "prompt"],
            &["sessions", "list"],
            &["sessions", "stats", "--json"],
            &["sessions", "stats", "--by", "model,tag,day"],
            &["sessions", "stats", "--by", "week", "--since", "30d"],
            &["sessions", "reindex", "--check", "--json"],
            &["sessions", "clean", "--older-than", "1d", "--dry-run"],
        ] {
            let run = Run::from_output(home.cmd().env("TZ", tz).args(args).output().unwrap());
            no_panic(&run, &format!("seed {seed}, TZ={tz} {args:?}"));
            assert!(
                run.code == 0 || (args.contains(&"--check") && run.code == 6),
                "seed {seed}, TZ={tz} {args:?}: exit {}\n{}",
                run.code,
                run.stderr
            );
            if args[1] == "reindex" && !args.contains(&"--check") {
                reindexed = Some(run.json());
            }
        }
    }
    assert_same_files(&before, &home.snapshot(false));

    // Each mutated file is a session or an invalid file: exactly one of the two.
    let listed: BTreeSet<String> = home.list_ids(&[]).into_iter().collect();
    let reindexed = reindexed.unwrap();
    let invalid: BTreeSet<String> = reindexed["invalid_files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            f["file"]
                .as_str()
                .unwrap()
                .trim_end_matches(".json")
                .to_string()
        })
        .collect();
    for (id, _) in &made {
        assert!(
            listed.contains(id) != invalid.contains(id),
            "{}: listed {}, invalid {}",
            context(id),
            listed.contains(id),
            invalid.contains(id)
        );
    }
    let read = made.iter().filter(|(id, _)| listed.contains(id)).count();
    eprintln!(
        "seed {seed}: {cases} mutated files, {read} read as sessions, {} invalid",
        cases - read
    );
    // A generator that only ever made one kind would test little.
    assert!(
        read > 0 && read < cases,
        "seed {seed}: {read} of {cases} read"
    );
    for valid in STANDARD_ORDER {
        assert!(
            listed.contains(valid),
            "seed {seed}: {valid} is still listed"
        );
    }

    // `show`, `tag` and `delete` on each: a valid one answers; an invalid one fails with one
    // line, exit 1, and is left exactly as it was.
    for (id, _) in &made {
        let bytes = std::fs::read(home.session_path(id)).unwrap();
        let show = home.run(&["sessions", "show", id, "--json"]);
        no_panic(&show, &context(id));
        let tag = home.run(&["sessions", "tag", id, "fuzzed"]);
        no_panic(&tag, &context(id));
        let delete = home.run(&["sessions", "delete", id]);
        no_panic(&delete, &context(id));
        if listed.contains(id) {
            assert_eq!(show.code, 0, "{}: {}", context(id), show.stderr);
            assert_eq!(tag.code, 0, "{}: {}", context(id), tag.stderr);
            assert_eq!(delete.code, 0, "{}: {}", context(id), delete.stderr);
        } else {
            for (what, run) in [("show", show), ("tag", tag), ("delete", delete)] {
                let run = run.fails_with(1);
                assert!(
                    run.error_line().contains("not valid")
                        || run.error_line().contains("not a valid"),
                    "{}: {what}: {}",
                    context(id),
                    run.stderr
                );
            }
            assert_eq!(
                std::fs::read(home.session_path(id)).unwrap(),
                bytes,
                "{}: changed",
                context(id)
            );
        }
    }
    // The valid sessions came through all of it untouched, and the index agrees with the files.
    let standard: Vec<String> = home
        .list_ids(&[])
        .into_iter()
        .filter(|id| !id.starts_with("mut"))
        .collect();
    assert_eq!(standard, STANDARD_ORDER);
    let check = home.run(&["sessions", "reindex", "--check"]);
    no_panic(&check, "final check");
    assert!(check.code == 0 || check.code == 6, "{}", check.stderr);
}
