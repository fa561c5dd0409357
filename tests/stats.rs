//! `clinvk sessions stats`: totals and groups checked against an independent computation from
//! the session files (serde_json and chrono-tz here, no clinvk code), calendar periods in time
//! zones, the index's two ways to answer (daily rollup and raw runs), costs and unknown models,
//! budgets and their exit codes, refused flags, the JSON schema, an index upgrade, and the
//! guide's jq recipes.
//!
//! The index answers from its daily rollup when the question is in the rollup's zone (the local
//! zone: a question over several periods in another local zone rebuilds the index there) and
//! needs nothing finer than whole days; from the raw runs otherwise. `--timezone +01:00` is
//! Europe/Paris for the winter months used here, but never the rollup's zone (a fixed offset),
//! so it forces the raw runs; so does a `--since` that is no period boundary.

#[macro_use]
#[allow(unused_macros)]
mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Datelike, Duration, FixedOffset, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use common::*;
use serde_json::{json, Value};

// ----- prices ----------------------------------------------------------------------------------

/// Prices set through `pricing:` in config.yaml, USD per million tokens (input, output,
/// cache_read, cache_write), so that estimates do not depend on the embedded table. Every model
/// of the varied store is here except `UNKNOWN_MODEL` (and runs with no model at all).
const PRICES: [(&str, [f64; 4]); 6] = [
    ("claude-opus-4-5", [7.0, 35.0, 0.7, 8.75]),
    // The fake codex's default model (in its rollout only: codex prints no model).
    ("gpt-6.1-sol", [2.0, 10.0, 0.1, 2.5]),
    ("claude-sonnet-4-5", [2.5, 12.5, 0.25, 3.0]),
    ("gpt-5-codex", [1.5, 11.0, 0.15, 1.5]),
    ("gemini-2.5-pro", [1.0, 9.0, 0.1, 1.0]),
    ("house-model", [0.4, 1.6, 0.04, 0.5]),
];

/// A model in no price table.
const UNKNOWN_MODEL: &str = "mystery-9";

fn price_of(model: &str) -> Option<[f64; 4]> {
    PRICES.iter().find(|(m, _)| *m == model).map(|(_, p)| *p)
}

fn write_pricing(home: &Home) {
    let mut yaml = String::from("# prices for the tests\npricing:\n");
    for (model, [input, output, read, write]) in PRICES {
        yaml.push_str(&format!(
            "  {model}: {{input: {input}, output: {output}, cache_read: {read}, cache_write: {write}}}\n"
        ));
    }
    std::fs::write(home.config_path(), yaml).expect("write config.yaml");
}

// ----- helpers ---------------------------------------------------------------------------------

fn t(text: &str) -> DateTime<Utc> {
    text.parse().expect("an RFC 3339 time")
}

/// `clinvk sessions stats ARGS` with `TZ=tz`.
fn stats(home: &Home, tz: &str, args: &[&str]) -> Run {
    let mut all = vec!["sessions", "stats"];
    all.extend_from_slice(args);
    Run::from_output(
        home.cmd()
            .env("TZ", tz)
            .args(&all)
            .output()
            .expect("run clinvk"),
    )
}

/// `sessions stats --json ARGS` with `TZ=tz`, parsed (asserts exit 0).
#[track_caller]
fn stats_json(home: &Home, tz: &str, args: &[&str]) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let run = stats(home, tz, &all);
    assert_eq!(
        run.code,
        0,
        "`TZ={tz} clinvk sessions stats {}` failed\nstdout:\n{}\nstderr:\n{}",
        all.join(" "),
        run.stdout,
        run.stderr
    );
    run.json()
}

/// Build the index now, with `TZ=tz`: the zone of its daily rollup.
fn build_index_in(home: &Home, tz: &str) {
    let run = Run::from_output(
        home.cmd()
            .env("TZ", tz)
            .args(["sessions", "list", "--json"])
            .output()
            .expect("run clinvk"),
    );
    run.success();
}

/// A real directory under the home, canonical (for `--here`).
fn project_dir(home: &Home) -> PathBuf {
    let dir = home.path().join("work").join("app");
    std::fs::create_dir_all(&dir).expect("create the project dir");
    std::fs::canonicalize(dir).expect("canonical project dir")
}

/// A deterministic pseudo-random number for (i, k) (splitmix64).
fn mix(i: u64, k: u64) -> u64 {
    let mut x = i
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(k.wrapping_mul(0xC2B2_AE3D_27D4_EB4F))
        .wrapping_add(0x1656_67B1_9E37_79F9);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

// ----- the varied store ------------------------------------------------------------------------

/// About 60 sessions over November 2024 to January 2025: three backends, priced models, an
/// unknown model and codex runs with no model, every status, overlapping tags, three working
/// directories (`real_dir` exists, for `--here`), runs whose month or week differs between UTC,
/// Europe/Paris and America/New_York (and across New York's DST change on 2024-11-03), files
/// without turns, files whose usage exceeds their turns', Claude runs with a reported cost,
/// cache writes and reasoning tokens, and a run that reported no usage.
fn varied_store(real_dir: &str) -> Vec<SessionJson> {
    let start = t("2024-11-01T00:00:00Z");
    let tag_sets: [&[&str]; 6] = [&[], &["a"], &["b"], &["a", "b"], &["a", "b", "c"], &["c"]];
    let workdirs = ["/projects/app", "/projects/api", real_dir];
    let mut out = Vec::new();
    for i in 0..54u64 {
        let iu = i as usize;
        let backend = ["claude", "codex", "gemini"][iu % 3];
        let status = ["active", "completed", "error", "created"][(iu / 3) % 4];
        let model: Option<&str> = match backend {
            "claude" if i % 2 == 0 => Some("claude-opus-4-5"),
            "claude" => Some("claude-sonnet-4-5"),
            "codex" if (i / 3) % 3 == 0 => None,
            "codex" => Some("gpt-5-codex"),
            _ => Some(["gemini-2.5-pro", UNKNOWN_MODEL, "house-model"][(iu / 3) % 3]),
        };
        let id = format!("{backend}-{i:02}");
        let mut s = session(&id)
            .backend(backend)
            .status(status)
            .tags(tag_sets[(iu / 2) % 6])
            .workdir(workdirs[(iu / 4) % 3])
            .field("model", model.map_or(Value::Null, |m| json!(m)));
        let n_turns = if status == "created" {
            0
        } else {
            mix(i, 0) % 5
        };
        let mut ats: Vec<DateTime<Utc>> = (0..n_turns)
            .map(|k| start + Duration::seconds((mix(i, k + 1) % (86 * 86_400)) as i64))
            .collect();
        ats.sort();
        let mut turns = Vec::new();
        for (k, at) in ats.iter().enumerate() {
            let k = k as u64;
            let input = 100 + mix(i, k + 100) % 5000;
            let output = 10 + mix(i, k + 200) % 900;
            let cached = if mix(i, k + 300).is_multiple_of(2) {
                input / 3
            } else {
                0
            };
            let mut turn = turn(&rfc3339(*at), input, output, cached);
            match backend {
                "claude" => {
                    turn = turn.cache_write(input / 10);
                    if k % 3 != 2 {
                        turn = turn
                            .cost((input + output) as f64 * 1.37e-5 + 0.000_123_456_7 * k as f64);
                    }
                    if k == 1 && i % 4 == 1 {
                        // A run on the other Claude model than the session's.
                        turn = turn.model(if i % 2 == 0 {
                            "claude-sonnet-4-5"
                        } else {
                            "claude-opus-4-5"
                        });
                    }
                }
                "codex" => turn = turn.reasoning(output / 4),
                _ => {
                    turn = turn.reasoning(output / 5);
                    if k == 2 {
                        turn = turn.model("house-model");
                    }
                }
            }
            turns.push(turn);
        }
        if let Some(first) = ats.first() {
            s = s.created(&rfc3339(*first)).turns(&turns);
            if i % 7 == 3 {
                // Usage the turns do not account for (a hand edit, an older clinvk).
                let mut usage = s.value()["token_usage"].clone();
                for (field, extra) in [("input", 500), ("output", 70), ("total", 570)] {
                    usage[field] = json!(usage[field].as_u64().unwrap() + extra);
                }
                s = s.field("token_usage", usage);
            }
        } else {
            let at = rfc3339(start + Duration::seconds((mix(i, 99) % (86 * 86_400)) as i64));
            s = s.created(&at).last_used(&at);
            s = if status == "created" && i != 21 {
                s.backend_session_id(None).tokens(0, 0, 0)
            } else {
                // Usage recorded before turns existed (i = 21: a `created` file with usage).
                s.tokens(1000 + i * 13, 50 + i, i * 3)
            };
        }
        out.push(s);
    }
    out.extend([
        // Both November runs are in November in UTC; the second is 1 December in Paris. The
        // third is December in UTC, January in Paris, and on the other Claude model.
        session("paris-edge")
            .model("claude-opus-4-5")
            .tags(&["a", "b"])
            .workdir("/projects/app")
            .created("2024-11-30T21:00:00Z")
            .turns(&[
                turn("2024-11-30T22:00:00Z", 1000, 100, 0).cost(0.25),
                turn("2024-11-30T23:30:00Z", 2000, 200, 500)
                    .cache_write(300)
                    .cost(0.5),
                turn("2024-12-31T23:15:00Z", 4000, 400, 0).model("claude-sonnet-4-5"),
            ]),
        // December in UTC; the first run is 30 November in New York.
        session("ny-edge")
            .backend("codex")
            .field("model", Value::Null)
            .workdir(real_dir)
            .tags(&["b"])
            .created("2024-12-01T03:00:00Z")
            .turns(&[
                turn("2024-12-01T03:00:00Z", 3000, 300, 1000).reasoning(100),
                turn("2024-12-01T06:00:00Z", 1500, 150, 0),
            ]),
        // Around New York's DST change (2024-11-03 06:00 UTC): 2 Nov 23:30 EDT, 3 Nov 00:30
        // EDT, 3 Nov 01:30 EST, 3 Nov 23:30 EST.
        session("dst-ny")
            .backend("gemini")
            .model("gemini-2.5-pro")
            .status("completed")
            .workdir("/projects/api")
            .created("2024-11-03T03:30:00Z")
            .turns(&[
                turn("2024-11-03T03:30:00Z", 700, 70, 0),
                turn("2024-11-03T04:30:00Z", 710, 71, 0),
                turn("2024-11-03T06:30:00Z", 720, 72, 0),
                turn("2024-11-04T04:30:00Z", 730, 73, 0).model(UNKNOWN_MODEL),
            ]),
        // Sunday 29 December in UTC, Monday 30 December (a new week) in Paris.
        session("week-edge")
            .model("claude-sonnet-4-5")
            .status("error")
            .tags(&["c"])
            .created("2024-12-29T23:30:00Z")
            .turns(&[
                turn("2024-12-29T23:30:00Z", 800, 80, 0).cost(0.123_456_789),
                turn("2024-12-30T00:30:00Z", 900, 90, 0),
            ]),
        session("no-usage")
            .backend("codex")
            .model("gpt-5-codex")
            .created("2025-01-05T10:00:00Z")
            .turns(&[
                turn("2025-01-05T10:00:00Z", 0, 0, 0).no_usage(),
                turn("2025-01-06T10:00:00Z", 300, 30, 0),
            ]),
        session("hand-old")
            .backend("gemini")
            .field("model", Value::Null)
            .status("completed")
            .backend_session_id(None)
            .created("2024-12-15T11:00:00Z")
            .last_used("2024-12-15T12:00:00Z")
            .tokens(5000, 600, 0)
            .tags(&["a"]),
        session("more-than-turns")
            .model("claude-opus-4-5")
            .workdir(real_dir)
            .created("2025-01-20T08:00:00Z")
            .turns(&[turn("2025-01-20T08:00:00Z", 100, 10, 0).cost(0.01)])
            .field(
                "token_usage",
                json!({"input": 2100, "output": 210, "cached": 40, "total": 2310, "cache_write": 60}),
            ),
        session("idle")
            .status("created")
            .backend_session_id(None)
            .created("2025-01-10T09:00:00Z")
            .last_used("2025-01-10T09:00:00Z")
            .tokens(0, 0, 0),
    ]);
    out
}

/// A home holding the varied store and the test prices.
fn varied_home() -> (Home, PathBuf) {
    let home = Home::new();
    let dir = project_dir(&home);
    home.add_all(&varied_store(&dir.display().to_string()));
    write_pricing(&home);
    (home, dir)
}

// ----- the oracle: usage computed from the files by the test itself ----------------------------

/// The usage fields, in the order `Usage::n` keeps them.
const FIELDS: [&str; 6] = [
    "input",
    "output",
    "cached",
    "cache_write",
    "reasoning",
    "total",
];

/// One use of tokens: a recorded run, or what a file's `token_usage` leaves unaccounted by its
/// runs (counted at `last_used_at`; a file without runs is one run unless it is `created`, and
/// a `created` file without usage counts for nothing).
#[derive(Debug, Clone)]
struct Usage {
    session: String,
    backend: String,
    status: String,
    tags: Vec<String>,
    workdir: String,
    /// '' for none (the run's model, else the session's).
    model: String,
    at: DateTime<Utc>,
    runs: u64,
    n: [u64; 6],
    reported_cost: Option<f64>,
}

fn time_of(v: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(v.as_str().expect("a time string"))
        .expect("RFC 3339")
        .with_timezone(&Utc)
}

fn counts_of(usage: &Value) -> [u64; 6] {
    FIELDS.map(|f| usage[f].as_u64().unwrap_or(0))
}

/// Every use of tokens recorded in the home's session files.
fn oracle_usage(home: &Home) -> Vec<Usage> {
    let mut out = Vec::new();
    for name in home.session_files() {
        let v = home.read_session(name.trim_end_matches(".json"));
        let text = |k: &str| v[k].as_str().unwrap_or_default().to_string();
        let session_model = text("model");
        let base = Usage {
            session: text("id"),
            backend: text("backend"),
            status: text("status"),
            tags: v["tags"]
                .as_array()
                .map(|a| a.iter().map(|t| t.as_str().unwrap().to_string()).collect())
                .unwrap_or_default(),
            workdir: text("workdir"),
            model: session_model.clone(),
            at: time_of(&v["last_used_at"]),
            runs: 0,
            n: [0; 6],
            reported_cost: None,
        };
        let turns = v["turns"].as_array().cloned().unwrap_or_default();
        let mut accounted = [0u64; 6];
        for turn in &turns {
            let n = counts_of(&turn["token_usage"]);
            for (a, x) in accounted.iter_mut().zip(n) {
                *a += x;
            }
            out.push(Usage {
                model: turn["model"]
                    .as_str()
                    .map_or(session_model.clone(), str::to_string),
                at: time_of(&turn["at"]),
                runs: 1,
                n,
                reported_cost: turn["cost_usd"].as_f64(),
                ..base.clone()
            });
        }
        let top = counts_of(&v["token_usage"]);
        let rest: [u64; 6] = std::array::from_fn(|i| top[i].saturating_sub(accounted[i]));
        let ran = turns.is_empty() && base.status != "created";
        if ran || rest.iter().any(|&x| x > 0) {
            out.push(Usage {
                runs: u64::from(ran),
                n: rest,
                ..base
            });
        }
    }
    out
}

/// A zone as the oracle counts days in it.
#[derive(Debug, Clone, Copy)]
enum OZone {
    Tz(Tz),
    Fixed(FixedOffset),
}

impl OZone {
    fn parse(name: &str) -> OZone {
        if name.starts_with('+') || name.starts_with('-') {
            let sign = if name.starts_with('-') { -1 } else { 1 };
            let (h, m) = name[1..].split_once(':').expect("+HH:MM");
            let secs = h.parse::<i32>().unwrap() * 3600 + m.parse::<i32>().unwrap() * 60;
            OZone::Fixed(FixedOffset::east_opt(sign * secs).unwrap())
        } else {
            OZone::Tz(name.parse().expect("an IANA zone"))
        }
    }

    fn name(&self) -> String {
        match self {
            OZone::Tz(tz) => tz.name().to_string(),
            OZone::Fixed(offset) => offset.to_string(),
        }
    }

    fn date_of(&self, at: DateTime<Utc>) -> NaiveDate {
        match self {
            OZone::Tz(tz) => at.with_timezone(tz).date_naive(),
            OZone::Fixed(offset) => at.with_timezone(offset).date_naive(),
        }
    }

    /// Midnight starting `day` (no zone used here skips midnight).
    fn start_of(&self, day: NaiveDate) -> DateTime<Utc> {
        let midnight = day.and_hms_opt(0, 0, 0).unwrap();
        match self {
            OZone::Tz(tz) => tz.from_local_datetime(&midnight).single().unwrap().to_utc(),
            OZone::Fixed(o) => o.from_local_datetime(&midnight).single().unwrap().to_utc(),
        }
    }
}

/// A `sessions stats --json` question, with what the oracle needs to answer it.
#[derive(Debug, Clone)]
struct Query {
    /// The process's TZ.
    env_tz: &'static str,
    args: Vec<String>,
    zone: OZone,
    by: Vec<String>,
    backend: Option<String>,
    status: Option<String>,
    tags: Vec<String>,
    workdir: Option<String>,
    since: Option<DateTime<Utc>>,
    /// The last instant counted.
    until: Option<DateTime<Utc>>,
    cwd: Option<PathBuf>,
    /// `-n N`: only the N biggest groups.
    top: Option<usize>,
}

impl Query {
    /// Periods in the local zone, `TZ=env_tz`.
    fn new(env_tz: &'static str) -> Query {
        Query {
            env_tz,
            args: Vec::new(),
            zone: OZone::parse(env_tz),
            by: Vec::new(),
            backend: None,
            status: None,
            tags: Vec::new(),
            workdir: None,
            since: None,
            until: None,
            cwd: None,
            top: None,
        }
    }

    fn top(mut self, n: usize) -> Self {
        self.top = Some(n);
        self.arg(&["-n", &n.to_string()])
    }

    fn arg(mut self, args: &[&str]) -> Self {
        self.args.extend(args.iter().map(|a| a.to_string()));
        self
    }

    fn by(mut self, dims: &[&str]) -> Self {
        for d in dims {
            self = self.arg(&["--by", d]);
            self.by.push(d.to_string());
        }
        self
    }

    /// `--by a,b` (one flag, a comma list).
    fn by_list(mut self, list: &str) -> Self {
        self = self.arg(&["--by", list]);
        self.by.extend(list.split(',').map(str::to_string));
        self
    }

    fn timezone(mut self, name: &str) -> Self {
        self.zone = OZone::parse(name);
        self.arg(&["--timezone", name])
    }

    fn utc(mut self) -> Self {
        self.zone = OZone::Tz(Tz::UTC);
        self.arg(&["--utc"])
    }

    fn backend(mut self, b: &str) -> Self {
        self.backend = Some(b.into());
        self.arg(&["--backend", b])
    }

    fn status(mut self, s: &str) -> Self {
        self.status = Some(s.into());
        self.arg(&["--status", s])
    }

    fn tag(mut self, tag: &str) -> Self {
        self.tags.push(tag.into());
        self.arg(&["--tag", tag])
    }

    fn workdir(mut self, dir: &str) -> Self {
        self.workdir = Some(dir.into());
        self.arg(&["--workdir", dir])
    }

    fn here(mut self, dir: &Path) -> Self {
        self.workdir = Some(dir.display().to_string());
        self.cwd = Some(dir.to_path_buf());
        self.arg(&["--here"])
    }

    /// `--since WHEN`: an RFC 3339 instant, or a day in the query's zone (set the zone first).
    fn since(mut self, when: &str) -> Self {
        self.since = Some(match DateTime::parse_from_rfc3339(when) {
            Ok(t) => t.to_utc(),
            Err(_) => self.zone.start_of(day(when)),
        });
        self.arg(&["--since", when])
    }

    /// `--until WHEN`, inclusive: an RFC 3339 instant, or a whole day in the query's zone.
    fn until(mut self, when: &str) -> Self {
        self.until = Some(match DateTime::parse_from_rfc3339(when) {
            Ok(t) => t.to_utc(),
            Err(_) => self.zone.start_of(day(when).succ_opt().unwrap()) - Duration::milliseconds(1),
        });
        self.arg(&["--until", when])
    }

    fn label(&self) -> String {
        format!("TZ={} sessions stats {}", self.env_tz, self.args.join(" "))
    }

    fn run(&self, home: &Home) -> Value {
        let mut cmd = home.cmd();
        cmd.env("TZ", self.env_tz)
            .args(["sessions", "stats", "--json"])
            .args(&self.args);
        if let Some(dir) = &self.cwd {
            cmd.current_dir(dir);
        }
        let run = Run::from_output(cmd.output().expect("run clinvk"));
        assert_eq!(
            run.code,
            0,
            "`{}` failed\nstdout:\n{}\nstderr:\n{}",
            self.label(),
            run.stdout,
            run.stderr
        );
        run.json()
    }

    fn selects(&self, u: &Usage) -> bool {
        self.backend.as_ref().is_none_or(|b| *b == u.backend)
            && self.status.as_ref().is_none_or(|s| *s == u.status)
            && self.tags.iter().all(|t| u.tags.contains(t))
            && self.workdir.as_ref().is_none_or(|w| *w == u.workdir)
            && self.since.is_none_or(|s| u.at >= s)
            && self.until.is_none_or(|until| u.at <= until)
    }

    /// The group keys a use of tokens counts in (several with `--by tag`).
    fn keys(&self, u: &Usage) -> Vec<Vec<String>> {
        let mut keys: Vec<Vec<String>> = vec![Vec::new()];
        for dim in &self.by {
            let date = self.zone.date_of(u.at);
            let values: Vec<String> = match dim.as_str() {
                "backend" => vec![u.backend.clone()],
                "model" => vec![u.model.clone()],
                "status" => vec![u.status.clone()],
                "workdir" => vec![u.workdir.clone()],
                "session" => vec![u.session.clone()],
                "tag" if u.tags.is_empty() => vec![String::new()],
                "tag" => u.tags.clone(),
                "day" => vec![date.format("%Y-%m-%d").to_string()],
                "week" => {
                    let monday =
                        date - Duration::days(i64::from(date.weekday().num_days_from_monday()));
                    vec![monday.format("%Y-%m-%d").to_string()]
                }
                "month" => vec![date.format("%Y-%m").to_string()],
                other => panic!("no dimension {other}"),
            };
            keys = keys
                .into_iter()
                .flat_map(|k| {
                    values.iter().map(move |v| {
                        let mut k = k.clone();
                        k.push(v.clone());
                        k
                    })
                })
                .collect();
        }
        keys
    }

    /// What the answer must be, from the uses of tokens alone.
    fn expected(&self, usage: &[Usage]) -> Expected {
        let mut e = Expected::default();
        for u in usage.iter().filter(|u| self.selects(u)) {
            e.totals.add(u, Some(&mut e.unpriced_models));
            if !self.by.is_empty() {
                for key in self.keys(u) {
                    e.rows.entry(key).or_default().add(u, None);
                }
            }
        }
        if let Some(n) = self.top {
            // The biggest totals; among equal ones, the first keys.
            let mut by_size: Vec<(u64, Vec<String>)> =
                e.rows.iter().map(|(k, a)| (a.n[5], k.clone())).collect();
            by_size.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
            let kept: BTreeSet<Vec<String>> = by_size.into_iter().take(n).map(|(_, k)| k).collect();
            e.rows.retain(|k, _| kept.contains(k));
        }
        e
    }

    /// Run the query and compare every figure with the oracle's.
    #[track_caller]
    fn check(&self, home: &Home, usage: &[Usage]) -> Value {
        let actual = self.run(home);
        self.check_value(&actual, usage);
        actual
    }

    #[track_caller]
    fn check_value(&self, actual: &Value, usage: &[Usage]) {
        let want = self.expected(usage);
        let mut problems = Vec::new();
        let mut expect = |what: &str, got: &Value, wanted: Value| {
            if *got != wanted {
                problems.push(format!("{what}: got {got}, expected {wanted}"));
            }
        };
        expect("schema_version", &actual["schema_version"], json!(1));
        expect("timezone", &actual["timezone"], json!(self.zone.name()));
        expect("group_by", &actual["group_by"], json!(self.by));
        expect(
            "unpriced_models",
            &actual["unpriced_models"],
            Value::Array(
                want.unpriced_models
                    .iter()
                    .map(|m| if m.is_empty() { Value::Null } else { json!(m) })
                    .collect(),
            ),
        );
        compare_figures(&mut problems, "totals", &actual["totals"], &want.totals);

        let rows = actual["rows"].as_array().expect("rows is an array");
        let mut seen: BTreeMap<Vec<String>, &Value> = BTreeMap::new();
        let mut order = Vec::new();
        for row in rows {
            let key: Vec<String> = self
                .by
                .iter()
                .map(|d| match &row[d.as_str()] {
                    Value::Null if d == "model" || d == "tag" => String::new(),
                    Value::String(s) if !s.is_empty() || d == "workdir" => s.clone(),
                    other => {
                        problems.push(format!("row {row}: {d} is {other}"));
                        String::new()
                    }
                })
                .collect();
            order.push((key.clone(), row["total"].as_u64().unwrap_or(0)));
            if seen.insert(key.clone(), row).is_some() {
                problems.push(format!("row {key:?} appears twice"));
            }
        }
        for (key, acc) in &want.rows {
            match seen.get(key) {
                Some(row) => compare_figures(&mut problems, &format!("row {key:?}"), row, acc),
                None => problems.push(format!("row {key:?} is missing")),
            }
        }
        for key in seen.keys() {
            if !want.rows.contains_key(key) {
                problems.push(format!("row {key:?} is not expected"));
            }
        }
        // Periods in time order; without periods, the biggest first.
        let has_period = self
            .by
            .iter()
            .any(|d| ["day", "week", "month"].contains(&d.as_str()));
        for pair in order.windows(2) {
            let ((k1, t1), (k2, t2)) = (&pair[0], &pair[1]);
            let in_order = if has_period { k1 < k2 } else { t1 >= t2 };
            if !in_order {
                problems.push(format!(
                    "rows out of order: {k1:?} ({t1}) before {k2:?} ({t2})"
                ));
            }
        }
        assert!(
            problems.is_empty(),
            "`{}` differs from the files:\n  {}\noutput:\n{}",
            self.label(),
            problems.join("\n  "),
            serde_json::to_string_pretty(actual).unwrap()
        );
    }
}

fn day(text: &str) -> NaiveDate {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").expect("YYYY-MM-DD")
}

/// A group's figures as the oracle adds them up.
#[derive(Debug, Clone, Default)]
struct Acc {
    sessions: BTreeSet<String>,
    runs: u64,
    n: [u64; 6],
    reported: f64,
    estimated: f64,
    unpriced: u64,
}

impl Acc {
    /// Add `u`: a reported cost is taken as it is, else the tokens are priced with `PRICES`
    /// (cached and cache_write are parts of input), else they are unpriced.
    fn add(&mut self, u: &Usage, unpriced_models: Option<&mut BTreeSet<String>>) {
        self.sessions.insert(u.session.clone());
        self.runs += u.runs;
        for (a, x) in self.n.iter_mut().zip(u.n) {
            *a += x;
        }
        let [input, output, cached, cache_write, _, _] = u.n;
        match (u.reported_cost, price_of(&u.model)) {
            (Some(usd), _) => self.reported += usd,
            (None, Some([p_in, p_out, p_read, p_write])) => {
                self.estimated += ((input - cached - cache_write) as f64 * p_in
                    + cached as f64 * p_read
                    + cache_write as f64 * p_write
                    + output as f64 * p_out)
                    / 1e6
            }
            (None, None) if input + output > 0 => {
                self.unpriced += input + output;
                if let Some(models) = unpriced_models {
                    models.insert(u.model.clone());
                }
            }
            (None, None) => {}
        }
    }
}

#[derive(Debug, Default)]
struct Expected {
    rows: BTreeMap<Vec<String>, Acc>,
    totals: Acc,
    unpriced_models: BTreeSet<String>,
}

fn compare_figures(problems: &mut Vec<String>, what: &str, got: &Value, want: &Acc) {
    let mut int = |field: &str, n: u64| {
        if got[field].as_u64() != Some(n) {
            problems.push(format!("{what}: {field} is {}, expected {n}", got[field]));
        }
    };
    int("sessions", want.sessions.len() as u64);
    int("runs", want.runs);
    for (field, n) in FIELDS.iter().zip(want.n) {
        int(field, n);
    }
    int("unpriced_tokens", want.unpriced);
    let total_cost = (want.unpriced == 0).then_some(want.reported + want.estimated);
    for (field, usd) in [
        ("reported_cost_usd", Some(want.reported)),
        ("estimated_cost_usd", Some(want.estimated)),
        ("cost_usd", total_cost),
    ] {
        let ok = match (got[field].as_f64(), usd) {
            (Some(g), Some(w)) => (g - w).abs() <= 1e-6,
            (None, None) => got[field].is_null(),
            _ => false,
        };
        if !ok {
            problems.push(format!(
                "{what}: {field} is {}, expected {usd:?}",
                got[field]
            ));
        }
    }
}

// ----- 1. the oracle ---------------------------------------------------------------------------

#[test]
fn totals_and_groups_match_an_independent_computation_from_the_files() {
    let (home, here) = varied_home();
    // Questions in the local zone over whole periods read the rollup (the index follows the
    // local zone); `--timezone`, `--utc`, tags, working directories and cut ranges read the
    // runs. `the_rollup_and_the_raw_runs_give_the_same_answers` compares the two on this store.
    home.warm();
    let usage = oracle_usage(&home);

    // The store is as varied as it claims.
    let sessions: BTreeSet<&str> = usage.iter().map(|u| u.session.as_str()).collect();
    assert!(home.session_files().len() >= 60);
    // `created` files that never ran and used nothing count for nothing.
    assert!(sessions.len() >= 45, "{} sessions", sessions.len());
    assert!(sessions.len() < home.session_files().len());
    let models: BTreeSet<&str> = usage.iter().map(|u| u.model.as_str()).collect();
    assert!(models.contains("") && models.contains(UNKNOWN_MODEL) && models.len() >= 7);
    assert!(
        usage.iter().any(|u| u.runs == 0 && u.n[5] > 0),
        "unaccounted usage"
    );
    assert!(usage.iter().filter(|u| u.reported_cost.is_some()).count() >= 10);
    let paris = OZone::parse("Europe/Paris");
    let month = |z: &OZone, u: &Usage| z.date_of(u.at).format("%Y-%m").to_string();
    assert!(usage
        .iter()
        .any(|u| month(&paris, u) != month(&OZone::Tz(Tz::UTC), u)));

    let real = here.display().to_string();
    let queries = [
        Query::new("UTC"),
        Query::new("Europe/Paris").by(&["month", "backend"]),
        Query::new("UTC").by(&["month", "backend"]),
        Query::new("UTC").by(&["tag"]),
        Query::new("UTC").by(&["model"]),
        Query::new("UTC").timezone("America/New_York").by(&["day"]),
        // --utc wins over the local zone.
        Query::new("Europe/Paris").utc().by(&["week"]),
        Query::new("Europe/Paris").by(&["month"]).backend("codex"),
        Query::new("UTC").by(&["tag", "backend"]).tag("a").tag("b"),
        Query::new("UTC").by(&["status"]).workdir("/projects/api"),
        Query::new("UTC").by(&["model"]).here(&here),
        Query::new("Europe/Paris")
            .by(&["session"])
            .since("2024-12-01")
            .until("2024-12-31"),
        Query::new("UTC")
            .by(&["workdir", "model"])
            .since("2024-12-15T06:30:00Z")
            .until("2025-01-05T18:00:00Z"),
        Query::new("UTC")
            .timezone("+05:30")
            .by(&["backend", "week"])
            .status("completed"),
        Query::new("America/New_York")
            .by_list("status,backend")
            .workdir(&real)
            .since("2024-11-03"),
        Query::new("UTC")
            .by(&["day", "model"])
            .tag("b")
            .backend("claude")
            .until("2024-12-31"),
        // The rollup by key: tags, directories, projects, a filter by one tag or directory.
        Query::new("Europe/Paris").by(&["month", "tag"]),
        Query::new("Europe/Paris").by(&["workdir", "backend"]),
        Query::new("UTC").by(&["month", "model"]).tag("b"),
        Query::new("UTC").by(&["month"]).workdir("/projects/api"),
        // The biggest sessions: from their totals, from the runs in a range, by tag.
        Query::new("UTC").by(&["session"]).top(5),
        Query::new("UTC").by(&["session"]).top(3).tag("a"),
        Query::new("UTC")
            .by(&["session"])
            .top(4)
            .since("2024-12-20"),
        Query::new("UTC").by(&["tag"]).top(2),
        Query::new("UTC").by(&["session"]).top(1000),
    ];
    for q in &queries {
        q.check(&home, &usage);
    }
}

// ----- 2. month boundaries ---------------------------------------------------------------------

/// A month's row: (label, runs, total).
type MonthRow = (&'static str, u64, u64);

/// `[month, sessions, runs, total]` of each row of a `--by month` report.
fn month_rows(report: &Value) -> Vec<Value> {
    report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| json!([r["month"], r["sessions"], r["runs"], r["total"]]))
        .collect()
}

#[test]
fn a_run_counts_in_the_month_of_its_zone() {
    let home = Home::new();
    home.add(
        &session("edge")
            .backend("codex")
            .model("gpt-5-codex")
            .created("2025-01-31T23:30:00Z")
            .turns(&[
                turn("2025-01-31T23:30:00Z", 1000, 100, 0),
                turn("2025-02-01T00:30:00Z", 2000, 200, 0),
            ]),
    );
    // (local zone, the same as a fixed offset in winter, months: (label, runs, total))
    let cases: [(&str, &str, &[MonthRow]); 3] = [
        (
            "UTC",
            "+00:00",
            &[("2025-01", 1, 1100), ("2025-02", 1, 2200)],
        ),
        ("Europe/Paris", "+01:00", &[("2025-02", 2, 3300)]),
        ("America/New_York", "-05:00", &[("2025-01", 2, 3300)]),
    ];
    build_index_in(&home, "UTC");
    for (tz, offset, months) in cases {
        let want: Vec<Value> = months
            .iter()
            .map(|(m, runs, total)| json!([m, 1, runs, total]))
            .collect();
        // From the rollup (the local zone), then from the runs (a fixed offset).
        for args in [
            vec!["--by", "month"],
            // `=`: see `a_negative_offset_is_a_zone_after_a_space`.
            vec!["--by", "month", &format!("--timezone={offset}")],
        ] {
            let report = stats_json(&home, tz, &args);
            assert_eq!(month_rows(&report), want, "TZ={tz} {args:?}");
            assert_eq!(report["totals"]["sessions"], 1, "TZ={tz} {args:?}");
            assert_eq!(report["totals"]["runs"], 2, "TZ={tz} {args:?}");
            assert_eq!(report["totals"]["total"], 3300, "TZ={tz} {args:?}");
        }
        // The zone given by name, from another local zone.
        let named = stats_json(&home, "Asia/Tokyo", &["--by", "month", "--timezone", tz]);
        assert_eq!(named["timezone"], tz);
        assert_eq!(month_rows(&named), want, "--timezone {tz}");
    }
}

#[test]
fn a_negative_offset_is_a_zone_after_a_space() {
    let home = Home::new();
    home.add(&session("ny").created("2025-02-01T03:00:00Z").turns(&[turn(
        "2025-02-01T03:00:00Z",
        100,
        10,
        0,
    )]));
    for args in [["--timezone", "-05:00"], ["--timezone", "-0500"]] {
        let run = stats(&home, "UTC", &["--json", "--by", "month", args[0], args[1]]);
        assert_eq!(run.code, 0, "{args:?}: {}", run.stderr);
        let report = run.json();
        assert_eq!(report["timezone"], "-05:00");
        assert_eq!(report["rows"][0]["month"], "2025-01");
    }
}

#[test]
fn totals_count_each_session_once() {
    // One session, one run in January and one in February, on two models: one session in
    // total whatever the rows, from the rollup (UTC, the index's zone) and from the runs.
    let home = Home::new();
    home.add(
        &session("edge")
            .model("claude-opus-4-5")
            .created("2025-01-31T12:00:00Z")
            .turns(&[
                turn("2025-01-31T12:00:00Z", 1000, 100, 0).cost(0.1),
                turn("2025-02-01T12:00:00Z", 2000, 200, 0)
                    .model("claude-sonnet-4-5")
                    .cost(0.2),
            ]),
    );
    build_index_in(&home, "UTC");
    for by in [
        "month",
        "week",
        "day",
        "model",
        "month,model",
        "tag",
        "session",
    ] {
        for zone in ["UTC", "+00:00"] {
            let report = stats_json(&home, "UTC", &["--by", by, "--timezone", zone]);
            assert_eq!(
                report["totals"]["sessions"], 1,
                "--by {by} --timezone {zone}"
            );
            assert_eq!(report["totals"]["runs"], 2, "--by {by} --timezone {zone}");
            let rows = report["rows"].as_array().unwrap();
            assert!(
                rows.iter().all(|r| r["sessions"] == 1),
                "--by {by}: {rows:?}"
            );
        }
    }
}

// ----- 3. the two query paths -------------------------------------------------------------------

/// Questions the rollup can answer in Europe/Paris.
/// The first `CORE_QUERIES` are asked after every change of the store, all of them at times.
fn paris_queries() -> Vec<Query> {
    vec![
        Query::new("Europe/Paris").by(&["month", "backend"]),
        Query::new("Europe/Paris").by(&["week", "model"]),
        Query::new("Europe/Paris").by(&["day", "status"]),
        Query::new("Europe/Paris"),
        Query::new("Europe/Paris").backend("codex"),
        Query::new("Europe/Paris").by(&["model"]),
        Query::new("Europe/Paris").by(&["status", "backend"]),
        Query::new("Europe/Paris")
            .by(&["month"])
            .status("completed"),
        // Whole months, whole weeks, one whole week.
        Query::new("Europe/Paris")
            .by(&["month", "model"])
            .since("2024-12-01")
            .until("2025-01-31"),
        Query::new("Europe/Paris")
            .by(&["week"])
            .since("2024-12-02")
            .until("2024-12-29"),
        Query::new("Europe/Paris")
            .since("2024-12-30")
            .until("2025-01-05"),
    ]
}

const CORE_QUERIES: usize = 4;

/// For each question: the Paris answer (from the rollup of an index built in Paris) equals the
/// answer from the raw runs, forced with `--timezone +01:00` (Paris in winter) and (`all`), for
/// questions without a range, with a `--since` before all data that is no period boundary. The
/// raw answers are checked against the oracle, and `sessions reindex --check` finds the rollup
/// equal to the runs it sums. `all`: every question of `paris_queries`, else the core ones.
#[track_caller]
fn assert_paths_agree(home: &Home, all: bool) {
    let usage = oracle_usage(home);
    let queries = paris_queries();
    let n = if all { queries.len() } else { CORE_QUERIES };
    for q in &queries[..n] {
        let rollup = q.run(home);
        // Another zone with Paris's winter offset: the rollup shifted by the hours summer time
        // moves. A range that starts at no day's start: the runs alone.
        let mut raws = vec![q.clone().timezone("+01:00")];
        if q.since.is_none() && q.until.is_none() {
            raws.push(q.clone().since("1999-12-31T23:59:59Z"));
            // Six hours west: the rollup's weeks and months, with the runs of the hours around
            // their starts moved (by day, most hours move: the runs), against the oracle.
            q.clone().timezone("America/New_York").check(home, &usage);
        }
        for raw_q in raws {
            let raw = raw_q.check(home, &usage);
            let what = format!("`{}` and `{}`", q.label(), raw_q.label());
            assert_eq!(rollup["rows"], raw["rows"], "rows of {what}");
            assert_eq!(
                rollup["unpriced_models"], raw["unpriced_models"],
                "unpriced_models of {what}"
            );
            assert_eq!(rollup["totals"], raw["totals"], "totals of {what}");
        }
    }
    let check = paris(home, &["sessions", "reindex", "--check"]);
    assert_eq!(
        check.code, 0,
        "reindex --check:\n{}{}",
        check.stdout, check.stderr
    );
}

/// `clinvk ARGS` with TZ=Europe/Paris (so that the index stays in Paris).
fn paris(home: &Home, args: &[&str]) -> Run {
    Run::from_output(
        home.cmd()
            .env("TZ", "Europe/Paris")
            .args(args)
            .output()
            .expect("run clinvk"),
    )
}

/// Rewrite a session file as an editor would (write a temporary file, rename it over).
fn edit_session(home: &Home, id: &str, edit: impl FnOnce(&mut Value)) {
    let mut v = home.read_session(id);
    edit(&mut v);
    let tmp = home.sessions_dir().join(format!("{id}.json.edit"));
    std::fs::write(&tmp, serde_json::to_string_pretty(&v).unwrap()).unwrap();
    std::fs::rename(&tmp, home.session_path(id)).unwrap();
}

#[cfg(unix)]
#[test]
fn the_rollup_and_the_raw_runs_give_the_same_answers() {
    let f = Fakes::new();
    let home = &f.home;
    let app = f.dir("app");
    home.add_all(&varied_store(&app.display().to_string()));
    write_pricing(home);
    // No retention clean when the CLIs run: every session stays.
    let mut config = std::fs::read_to_string(home.config_path()).unwrap();
    config.push_str("session:\n  retention_days: 0\n");
    std::fs::write(home.config_path(), config).unwrap();
    build_index_in(home, "Europe/Paris");
    assert_paths_agree(home, true);

    // The rollup is kept by triggers through every change of the index.
    paris(home, &["sessions", "tag", "paris-edge", "new-tag"]).success();
    paris(home, &["sessions", "tag", "gemini-08", "c", "--remove"]).success();
    assert_paths_agree(home, false);

    paris(
        home,
        &["sessions", "delete", "week-edge", "ny-edge", "codex-10"],
    )
    .success();
    assert_paths_agree(home, false);

    // By hand: another status, other usage, a run moved to another month, one more run.
    edit_session(home, "dst-ny", |v| {
        v["status"] = json!("error");
        v["turns"][1]["token_usage"] =
            json!({"input": 9000, "output": 900, "cached": 100, "total": 9900});
        v["turns"][2]["at"] = json!("2024-12-31T23:45:00Z");
        let mut extra = v["turns"][0].clone();
        extra["at"] = json!("2025-01-15T10:00:00Z");
        extra["model"] = json!("house-model");
        v["turns"].as_array_mut().unwrap().push(extra);
        // 150 input and 15 output more than the turns (11850, 1185).
        v["token_usage"] = json!({"input": 12000, "output": 1200, "cached": 100, "total": 13200});
    });
    assert_eq!(
        stats_json(
            home,
            "Europe/Paris",
            &["--status", "error", "--by", "session"]
        )["rows"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["session"] == "dst-ny")
            .count(),
        1,
        "the edit was picked up"
    );
    assert_paths_agree(home, false);
    // Edited in place (the directory does not change): `sessions reindex` picks it up.
    let mut v = home.read_session("hand-old");
    v["token_usage"] = json!({"input": 7000, "output": 700, "cached": 0, "total": 7700});
    v["status"] = json!("active");
    std::fs::write(
        home.session_path("hand-old"),
        serde_json::to_string_pretty(&v).unwrap(),
    )
    .unwrap();
    paris(home, &["sessions", "reindex"]).success();
    assert_paths_agree(home, false);

    // New runs through the CLIs: a new session, continued, and a codex run (its model read from
    // the rollout).
    f.at(&app)
        .args(["-b", "claude", "new work"])
        .env("TZ", "Europe/Paris")
        .ok();
    f.at(&app)
        .args(["-c", "more work"])
        .env("TZ", "Europe/Paris")
        .env("CLINVK_NOW", "2025-01-27T23:30:00Z")
        .ok();
    f.at(&app)
        .args(["-b", "codex", "other work"])
        .env("TZ", "Europe/Paris")
        .ok();
    assert_eq!(home.session_files().len(), 62 - 3 + 2);
    assert_paths_agree(home, false);

    // The comparison does see the rollup: damage it, and the Paris answer goes wrong while the
    // raw runs stay right; `sessions reindex` rebuilds it.
    let before = stats_json(home, "Europe/Paris", &["--by", "month"]);
    {
        let db = rusqlite::Connection::open(home.index_path()).unwrap();
        let changed = db
            .execute("UPDATE usage_daily SET total = total + 1", [])
            .unwrap();
        assert!(changed > 0);
    }
    let damaged = stats_json(home, "Europe/Paris", &["--by", "month"]);
    assert_ne!(damaged["rows"], before["rows"]);
    assert_ne!(damaged["totals"]["total"], before["totals"]["total"]);
    // (A range that starts at no day's start: the runs alone, totals too.)
    let raw = stats_json(
        home,
        "Europe/Paris",
        &["--by", "month", "--since", "1999-12-31T23:59:59Z"],
    );
    assert_eq!(raw["rows"], before["rows"]);
    assert_eq!(raw["totals"], before["totals"]);
    // Another zone's months come from the rollup too: they are as damaged.
    let shifted = stats_json(
        home,
        "Europe/Paris",
        &["--by", "month", "--timezone", "+01:00"],
    );
    assert_ne!(shifted["rows"], before["rows"]);
    assert_eq!(paris(home, &["sessions", "reindex", "--check"]).code, 6);
    paris(home, &["sessions", "reindex"]).success();
    assert_paths_agree(home, false);
}

/// The zone of the index's daily rollup, as recorded in it.
fn rollup_zone(home: &Home) -> String {
    rusqlite::Connection::open(home.index_path())
        .unwrap()
        .query_row(
            "SELECT value FROM store_state WHERE key = 'rollup_zone'",
            [],
            |r| r.get(0),
        )
        .unwrap()
}

/// stderr lines other than the warnings about prices.
fn notices(run: &Run) -> Vec<String> {
    run.stderr_lines()
        .into_iter()
        .filter(|l| !l.starts_with("clinvk: warning: "))
        .map(str::to_string)
        .collect()
}

#[test]
fn the_rollup_moves_to_a_new_local_zone_once() {
    let (home, _) = varied_home();
    build_index_in(&home, "UTC");
    assert_eq!(rollup_zone(&home), "UTC");
    // A zone on the command line, a budget check, tags, a range that cuts a period: the
    // rollup stays where it is.
    let stay: [&[&str]; 5] = [
        &["--by", "month", "--timezone", "Europe/Paris"],
        &["--by", "week", "--utc"],
        &["--budget", "1G"],
        &["--by", "month", "--since", "2024-12-01T10:00:00Z"],
        &["--by", "tag"],
    ];
    for args in stay {
        let run = stats(&home, "Europe/Paris", args).success();
        assert_eq!(notices(&run), Vec::<String>::new(), "{args:?}");
        assert_eq!(rollup_zone(&home), "UTC", "{args:?}");
    }
    // Periods in the new local zone: the index is rebuilt there, once, with one line.
    let run = stats(&home, "Europe/Paris", &["--json", "--by", "month"]).success();
    let lines = notices(&run);
    assert_eq!(lines.len(), 1, "{}", run.stderr);
    assert!(lines[0].contains("Europe/Paris"), "{}", lines[0]);
    assert_eq!(rollup_zone(&home), "Europe/Paris");
    let again = stats(&home, "Europe/Paris", &["--json", "--by", "month"]).success();
    assert_eq!(notices(&again), Vec::<String>::new());
    assert_eq!(again.json(), run.json());
    Query::new("Europe/Paris")
        .by(&["month"])
        .check_value(&again.json(), &oracle_usage(&home));
}

// ----- 4. unknown models -----------------------------------------------------------------------

#[test]
fn an_unknown_model_has_no_cost_and_one_warning() {
    let home = Home::new();
    home.add_all(&[
        session("u1")
            .backend("codex")
            .model("mystery-9")
            .created("2024-12-10T10:00:00Z")
            .turns(&[
                turn("2024-12-10T10:00:00Z", 600, 60, 0),
                turn("2025-01-10T10:00:00Z", 400, 40, 0),
            ]),
        // Reported by Claude: priced although the model is unknown.
        session("u2")
            .model("mystery-x")
            .created("2025-01-11T10:00:00Z")
            .turns(&[turn("2025-01-11T10:00:00Z", 500, 50, 0).cost(0.05)]),
        session("u3")
            .backend("gemini")
            .model("mystery-x")
            .created("2025-01-12T10:00:00Z")
            .turns(&[turn("2025-01-12T10:00:00Z", 300, 30, 0)]),
        // 1M input at $0.40, 100k output at $1.60 per million.
        session("u4")
            .backend("gemini")
            .model("house-model")
            .created("2025-01-13T10:00:00Z")
            .turns(&[turn("2025-01-13T10:00:00Z", 1_000_000, 100_000, 0)]),
    ]);
    write_pricing(&home);
    home.warm();

    let check_warnings = |run: &Run, what: &str| {
        let lines = run.stderr_lines();
        assert_eq!(
            lines.len(),
            2,
            "{what}: one line per unknown model:\n{}",
            run.stderr
        );
        for model in ["mystery-9", "mystery-x"] {
            let naming: Vec<&&str> = lines
                .iter()
                .filter(|l| l.contains(&format!("'{model}'")))
                .collect();
            assert_eq!(
                naming.len(),
                1,
                "{what}: {model} named once:\n{}",
                run.stderr
            );
            assert!(naming[0].starts_with("clinvk: warning: "), "{}", naming[0]);
        }
    };
    for by in ["model", "month", "backend"] {
        let run = stats(&home, "UTC", &["--json", "--by", by]).success();
        check_warnings(&run, by);
        let report = run.json();
        let totals = &report["totals"];
        assert_eq!(totals["cost_usd"], Value::Null, "--by {by}");
        assert_eq!(totals["reported_cost_usd"], 0.05);
        assert_eq!(totals["estimated_cost_usd"], 0.56);
        assert_eq!(totals["unpriced_tokens"], 1100 + 330);
        assert_eq!(report["unpriced_models"], json!(["mystery-9", "mystery-x"]));
    }

    let report = stats_json(&home, "UTC", &["--by", "model"]);
    let row = |model: &str| -> Value {
        report["rows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["model"] == model)
            .unwrap_or_else(|| panic!("no row for {model}"))
            .clone()
    };
    let costs = |r: &Value| {
        json!([
            r["cost_usd"],
            r["reported_cost_usd"],
            r["estimated_cost_usd"],
            r["unpriced_tokens"]
        ])
    };
    assert_eq!(costs(&row("mystery-9")), json!([null, 0.0, 0.0, 1100]));
    assert_eq!(costs(&row("mystery-x")), json!([null, 0.05, 0.0, 330]));
    assert_eq!(costs(&row("house-model")), json!([0.56, 0.0, 0.56, 0]));

    // The table: `?` when nothing is known, `>$` for a lower bound.
    let run = stats(&home, "UTC", &["--by", "model"]).success();
    check_warnings(&run, "table");
    let cost_cell = |first: &str| -> String {
        let line = run
            .stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(first))
            .unwrap_or_else(|| panic!("no line for {first}:\n{}", run.stdout));
        line.split_whitespace().last().unwrap().to_string()
    };
    assert_eq!(cost_cell("mystery-9"), "?");
    assert_eq!(cost_cell("mystery-x"), ">$0.05");
    assert_eq!(cost_cell("house-model"), "~$0.56");
    assert_eq!(cost_cell("TOTAL"), ">$0.61");

    // A question that leaves the unknown models out warns about nothing.
    let run = stats(&home, "UTC", &["--json", "--tag", "none-such"]).success();
    assert_eq!(run.stderr, "");
    let run = stats(
        &home,
        "UTC",
        &["--json", "--backend", "gemini", "--since", "2025-01-13"],
    )
    .success();
    assert_eq!(run.stderr, "");
    assert_eq!(run.json()["totals"]["cost_usd"], 0.56);
}

// ----- 5. budgets ------------------------------------------------------------------------------

/// Budget checks run on Wednesday 2025-01-29 at noon UTC.
const BUDGET_NOW: &str = "2025-01-29T12:00:00Z";

/// A store for budgets (TZ=UTC): in January 1020 tokens, $0.70 reported by Claude and $0.32
/// estimated; in the week from Monday 27: 500 tokens; on the 29th: 300 tokens. A December run
/// on New Year's Eve at 23:00 UTC is January in Paris, and a Sunday run at 23:30 UTC is Monday
/// in Paris.
fn budget_home() -> Home {
    let home = Home::new();
    home.add_all(&[
        session("b1")
            .model("claude-opus-4-5")
            .created("2024-12-31T23:00:00Z")
            .turns(&[
                turn("2024-12-31T23:00:00Z", 4000, 1000, 0).cost(9.0),
                turn("2025-01-10T10:00:00Z", 300, 100, 0).cost(0.4),
                turn("2025-01-28T09:00:00Z", 150, 50, 0).cost(0.2),
                turn("2025-01-29T08:00:00Z", 80, 20, 0).cost(0.1),
            ]),
        session("b2")
            .backend("codex")
            .model("budget-model")
            .created("2025-01-26T23:30:00Z")
            .turns(&[
                turn("2025-01-26T23:30:00Z", 100, 20, 0),
                turn("2025-01-29T09:00:00Z", 150, 50, 0),
            ]),
    ]);
    // $1000 per million tokens: a tenth of a cent a token.
    std::fs::write(
        home.config_path(),
        "pricing:\n  budget-model: {input: 1000, output: 1000}\n",
    )
    .unwrap();
    home.cmd()
        .env("CLINVK_NOW", BUDGET_NOW)
        .args(["sessions", "list"])
        .assert()
        .success();
    home
}

fn budget_run(home: &Home, tz: &str, args: &[&str]) -> Run {
    let mut all = vec!["sessions", "stats"];
    all.extend_from_slice(args);
    Run::from_output(
        home.cmd()
            .env("TZ", tz)
            .env("CLINVK_NOW", BUDGET_NOW)
            .args(&all)
            .output()
            .expect("run clinvk"),
    )
}

/// `--json` budget run: (exit code, report).
fn budget_json(home: &Home, tz: &str, args: &[&str]) -> (i32, Value) {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let run = budget_run(home, tz, &all);
    assert!(
        [0, 10, 11].contains(&run.code),
        "{args:?}: exit {}\n{}",
        run.code,
        run.stderr
    );
    (run.code, run.json())
}

#[test]
fn a_token_budget_sets_the_exit_code() {
    let home = budget_home();
    // (budget, percent, exit)
    for (budget, percent, code) in [
        ("2040", 50.0, 0),
        ("1276", 79.9, 0),
        ("1275", 80.0, 10),
        ("1200", 85.0, 10),
        ("1020", 100.0, 11),
        ("850", 120.0, 11),
        ("1k", 102.0, 11),
    ] {
        let (exit, report) = budget_json(&home, "UTC", &["--budget", budget]);
        assert_eq!(exit, code, "--budget {budget}");
        let tokens = &report["budget"]["tokens"];
        assert_eq!(tokens["used"], 1020, "--budget {budget}");
        assert_eq!(tokens["percent"], percent, "--budget {budget}");
        let status =
            ["ok", "warning", "exceeded"][[0, 10, 11].iter().position(|c| *c == code).unwrap()];
        assert_eq!(tokens["status"], status);
        assert_eq!(report["budget"]["status"], status);
        // The same without --json.
        let run = budget_run(&home, "UTC", &["--budget", budget]);
        assert_eq!(run.code, code, "--budget {budget} (table)\n{}", run.stdout);
        assert!(
            run.stdout.contains(&status.to_uppercase()),
            "{}",
            run.stdout
        );
    }

    // Every field, hand-computed. January is 744 hours, 684 of them gone at BUDGET_NOW:
    // 1020 * 744 / 684 = 1109.47.
    let (_, report) = budget_json(&home, "UTC", &["--budget", "1275"]);
    assert_eq!(
        report["budget"],
        json!({
            "period": "month",
            "label": "2025-01",
            "start": "2025-01-01T00:00:00.000Z",
            "end": "2025-02-01T00:00:00.000Z",
            "status": "warning",
            "tokens": {"limit": 1275, "used": 1020, "remaining": 255, "percent": 80.0,
                       "projected": 1109, "status": "warning"}
        })
    );
    assert_eq!(report["since"], "2025-01-01T00:00:00.000Z");
    assert_eq!(report["until"], "2025-02-01T00:00:00.000Z");
    assert_eq!(report["totals"]["total"], 1020);
    assert_eq!(report["totals"]["runs"], 5);

    // The current day (12 of 24 hours gone) and week (60 of 168 hours gone) only.
    let (exit, report) = budget_json(&home, "UTC", &["--budget", "350", "--period", "day"]);
    assert_eq!(exit, 10);
    assert_eq!(
        report["budget"],
        json!({
            "period": "day", "label": "2025-01-29",
            "start": "2025-01-29T00:00:00.000Z", "end": "2025-01-30T00:00:00.000Z",
            "status": "warning",
            "tokens": {"limit": 350, "used": 300, "remaining": 50, "percent": 85.7,
                       "projected": 600, "status": "warning"}
        })
    );
    let (exit, report) = budget_json(&home, "UTC", &["--budget", "2000", "--period", "week"]);
    assert_eq!(exit, 0);
    assert_eq!(
        report["budget"],
        json!({
            "period": "week", "label": "2025-01-27",
            "start": "2025-01-27T00:00:00.000Z", "end": "2025-02-03T00:00:00.000Z",
            "status": "ok",
            "tokens": {"limit": 2000, "used": 500, "remaining": 1500, "percent": 25.0,
                       "projected": 1400, "status": "ok"}
        })
    );

    // In Paris the periods start an hour earlier: the Sunday-night run is in this week, the
    // New Year's Eve run in January.
    let (_, report) = budget_json(
        &home,
        "Europe/Paris",
        &["--budget", "10000", "--period", "week"],
    );
    assert_eq!(report["budget"]["start"], "2025-01-26T23:00:00.000Z");
    assert_eq!(report["budget"]["tokens"]["used"], 620);
    let (exit, report) = budget_json(&home, "Europe/Paris", &["--budget", "6020"]);
    assert_eq!(exit, 11);
    assert_eq!(report["budget"]["tokens"]["used"], 6020);
    let (_, report) = budget_json(
        &home,
        "UTC",
        &["--budget", "6020", "--timezone", "Europe/Paris"],
    );
    assert_eq!(report["budget"]["tokens"]["used"], 6020);
    assert_eq!(report["timezone"], "Europe/Paris");

    // Filters still apply within the period.
    let (exit, report) = budget_json(&home, "UTC", &["--budget", "1000", "--backend", "codex"]);
    assert_eq!(
        (exit, &report["budget"]["tokens"]["used"]),
        (0, &json!(320))
    );
}

#[test]
fn a_cost_budget_counts_reported_and_estimated_costs() {
    let home = budget_home();
    // January: $0.40 + $0.20 + $0.10 reported, (120 + 200) tokens at $1000 per million.
    for (usd, code) in [("2", 0), ("1.2", 10), ("$1.2", 10), ("1", 11)] {
        let (exit, report) = budget_json(&home, "UTC", &["--budget-usd", usd]);
        assert_eq!(exit, code, "--budget-usd {usd}");
        let cost = &report["budget"]["cost_usd"];
        assert!(
            (cost["used"].as_f64().unwrap() - 1.02).abs() < 1e-9,
            "{cost}"
        );
        assert!(report["budget"].get("tokens").is_none());
    }
    let (_, report) = budget_json(&home, "UTC", &["--budget-usd", "1.2"]);
    assert_eq!(
        report["budget"]["cost_usd"],
        // 1.02 * 744 / 684 = 1.109474
        json!({"limit": 1.2, "used": 1.02, "remaining": 0.18, "percent": 85.0,
               "projected": 1.109474, "status": "warning", "complete": true})
    );
    assert_eq!(report["totals"]["reported_cost_usd"], 0.7);
    assert_eq!(report["totals"]["estimated_cost_usd"], 0.32);
    // Claude's reported costs alone: $0.70, and $9 on New Year's Eve in Paris.
    let (exit, _) = budget_json(
        &home,
        "UTC",
        &["--budget-usd", "0.8", "--backend", "claude"],
    );
    assert_eq!(exit, 10);
    let (exit, report) = budget_json(&home, "Europe/Paris", &["--budget-usd", "12"]);
    assert_eq!(exit, 10);
    assert_eq!(report["budget"]["cost_usd"]["used"], 10.02);
    // Both limits: the worse one decides.
    let (exit, report) = budget_json(&home, "UTC", &["--budget", "100000", "--budget-usd", "1"]);
    assert_eq!(exit, 11);
    assert_eq!(report["budget"]["status"], "exceeded");
    assert_eq!(report["budget"]["tokens"]["status"], "ok");
    assert_eq!(report["budget"]["cost_usd"]["status"], "exceeded");
}

#[test]
fn period_alone_checks_the_budgets_set_in_config() {
    let home = budget_home();
    home.ok(&["config", "set", "session.token_budget", "1200"]);
    assert_eq!(budget_run(&home, "UTC", &["--period", "month"]).code, 10);
    assert_eq!(budget_run(&home, "UTC", &["--period", "week"]).code, 0);
    let (exit, report) = budget_json(&home, "UTC", &["--period", "day"]);
    assert_eq!(exit, 0);
    assert_eq!(report["budget"]["tokens"]["limit"], 1200);
    assert_eq!(report["budget"]["tokens"]["used"], 300);
    assert!(report["budget"].get("cost_usd").is_none());

    home.ok(&["config", "set", "session.cost_budget_usd", "0.5"]);
    let (exit, report) = budget_json(&home, "UTC", &["--period", "month"]);
    assert_eq!(exit, 11);
    assert_eq!(report["budget"]["tokens"]["status"], "warning");
    assert_eq!(report["budget"]["cost_usd"]["limit"], 0.5);
    assert_eq!(report["budget"]["cost_usd"]["status"], "exceeded");

    // A limit on the command line replaces its own in config, not the other one.
    let (exit, report) = budget_json(&home, "UTC", &["--budget", "100000", "--period", "month"]);
    assert_eq!(exit, 11);
    assert_eq!(report["budget"]["tokens"]["limit"], 100000);
    assert_eq!(report["budget"]["tokens"]["status"], "ok");
    assert_eq!(report["budget"]["cost_usd"]["status"], "exceeded");
    let (exit, report) = budget_json(
        &home,
        "UTC",
        &[
            "--budget",
            "100000",
            "--budget-usd",
            "100",
            "--period",
            "month",
        ],
    );
    assert_eq!(exit, 0);
    assert_eq!(report["budget"]["cost_usd"]["limit"], 100.0);

    // Without --period or a budget flag, no budget is checked.
    let (exit, report) = budget_json(&home, "UTC", &[]);
    assert_eq!(exit, 0);
    assert_eq!(report["budget"], Value::Null);
    assert_eq!(report["totals"]["total"], 6020);
}

// ----- 6. refused flags ------------------------------------------------------------------------

#[test]
fn bad_flags_are_refused_with_one_line_and_change_nothing() {
    let home = standard_home();
    let before = home.snapshot(true);
    let cases: [(&[&str], &[&str]); 19] = [
        (&["--by", "year"], &["'year'"]),
        (&["--by", "day", "--by", "month"], &["day", "month"]),
        (&["--by", "week,month"], &["week", "month"]),
        (&["--period", "year"], &["'year'"]),
        (&["--budget", "0"], &["'0'"]),
        (&["--budget", "abc"], &["'abc'"]),
        (&["--budget", "1.5"], &["'1.5'"]),
        (&["--budget-usd=-3"], &["'-3'"]),
        (&["--budget-usd", "-3"], &["'-3'"]),
        (&["--budget", "-5"], &["'-5'"]),
        (&["--budget-usd", "free"], &["'free'"]),
        (&["--timezone", "Mars/Base"], &["'Mars/Base'"]),
        (&["--since", "yesterday"], &["'yesterday'"]),
        (
            &["--since", "2025-02-01", "--until", "2025-01-01"],
            &["2025-02-01", "2025-01-01"],
        ),
        (&["--budget", "10", "--since", "7d"], &["--since"]),
        (&["--period", "month"], &["budget"]),
        (
            &["--utc", "--timezone", "Europe/Paris"],
            &["--utc", "--timezone"],
        ),
        (&["--status", "sleeping"], &["'sleeping'"]),
        (
            &["--by", "backend", "--json", "--backend", "cursor"],
            &["'cursor'"],
        ),
    ];
    for (args, named) in cases {
        for json in [false, true] {
            let mut all = vec!["sessions", "stats"];
            all.extend_from_slice(args);
            if json {
                all.push("--json");
            }
            let run = home.run(&all).fails_with(2);
            let line = run.error_line();
            for word in named {
                assert!(line.contains(word), "{all:?}: {line:?} should name {word}");
            }
        }
    }
    assert_same_files(&before, &home.snapshot(true));
}

// ----- 7. the JSON schema ----------------------------------------------------------------------

/// Three sessions, each within one month: Claude with reported costs, Codex priced through
/// config, Gemini with no model and no turns.
fn schema_home() -> Home {
    let home = Home::new();
    home.add_all(&[
        session("s1")
            .model("claude-opus-4-5")
            .tags(&["x"])
            .created("2024-12-10T10:00:00Z")
            .turns(&[
                turn("2024-12-10T10:00:00Z", 1000, 100, 200)
                    .cache_write(50)
                    .cost(0.02),
                turn("2024-12-11T10:00:00Z", 500, 50, 0).cost(0.01),
            ]),
        session("s2")
            .backend("codex")
            .model("gpt-5-codex")
            .created("2025-01-05T10:00:00Z")
            .turns(&[turn("2025-01-05T10:00:00Z", 2000, 300, 1000).reasoning(100)]),
        session("s3")
            .backend("gemini")
            .field("model", Value::Null)
            .status("completed")
            .created("2025-01-06T09:00:00Z")
            .last_used("2025-01-06T10:00:00Z")
            .tokens(400, 40, 0),
    ]);
    write_pricing(&home);
    home.warm();
    home
}

#[test]
fn the_json_report_has_a_stable_schema() {
    let home = schema_home();
    // gpt-5-codex: 1000 uncached * $1.5 + 1000 cached * $0.15 + 300 out * $11 per million.
    let report = stats_json(&home, "UTC", &["--by", "month", "--by", "backend"]);
    assert_eq!(
        report,
        json!({
            "schema_version": 1,
            "timezone": "UTC",
            "since": null,
            "until": null,
            "group_by": ["month", "backend"],
            "rows": [
                {"month": "2024-12", "backend": "claude", "sessions": 1, "runs": 2,
                 "input": 1500, "output": 150, "cached": 200, "cache_write": 50, "reasoning": 0,
                 "total": 1650, "cost_usd": 0.03, "reported_cost_usd": 0.03,
                 "estimated_cost_usd": 0.0, "unpriced_tokens": 0},
                {"month": "2025-01", "backend": "codex", "sessions": 1, "runs": 1,
                 "input": 2000, "output": 300, "cached": 1000, "cache_write": 0, "reasoning": 100,
                 "total": 2300, "cost_usd": 0.00495, "reported_cost_usd": 0.0,
                 "estimated_cost_usd": 0.00495, "unpriced_tokens": 0},
                {"month": "2025-01", "backend": "gemini", "sessions": 1, "runs": 1,
                 "input": 400, "output": 40, "cached": 0, "cache_write": 0, "reasoning": 0,
                 "total": 440, "cost_usd": null, "reported_cost_usd": 0.0,
                 "estimated_cost_usd": 0.0, "unpriced_tokens": 440}
            ],
            "totals": {"sessions": 3, "runs": 4, "input": 3900, "output": 490, "cached": 1200,
                       "cache_write": 50, "reasoning": 100, "total": 4390, "cost_usd": null,
                       "reported_cost_usd": 0.03, "estimated_cost_usd": 0.00495,
                       "unpriced_tokens": 440},
            "unpriced_models": [null],
            "budget": null
        })
    );

    // With a budget (January, 636 of 744 hours gone at NOW) and a model/tag grouping.
    let report = stats_json(
        &home,
        "UTC",
        &[
            "--by",
            "tag,model",
            "--budget",
            "10000",
            "--budget-usd",
            "0.05",
        ],
    );
    assert_eq!(
        report,
        json!({
            "schema_version": 1,
            "timezone": "UTC",
            "since": "2025-01-01T00:00:00.000Z",
            "until": "2025-02-01T00:00:00.000Z",
            "group_by": ["tag", "model"],
            "rows": [
                {"tag": null, "model": "gpt-5-codex", "sessions": 1, "runs": 1,
                 "input": 2000, "output": 300, "cached": 1000, "cache_write": 0, "reasoning": 100,
                 "total": 2300, "cost_usd": 0.00495, "reported_cost_usd": 0.0,
                 "estimated_cost_usd": 0.00495, "unpriced_tokens": 0},
                {"tag": null, "model": null, "sessions": 1, "runs": 1,
                 "input": 400, "output": 40, "cached": 0, "cache_write": 0, "reasoning": 0,
                 "total": 440, "cost_usd": null, "reported_cost_usd": 0.0,
                 "estimated_cost_usd": 0.0, "unpriced_tokens": 440}
            ],
            "totals": {"sessions": 2, "runs": 2, "input": 2400, "output": 340, "cached": 1000,
                       "cache_write": 0, "reasoning": 100, "total": 2740, "cost_usd": null,
                       "reported_cost_usd": 0.0, "estimated_cost_usd": 0.00495,
                       "unpriced_tokens": 440},
            "unpriced_models": [null],
            "budget": {
                "period": "month", "label": "2025-01",
                "start": "2025-01-01T00:00:00.000Z", "end": "2025-02-01T00:00:00.000Z",
                "status": "ok",
                "tokens": {"limit": 10000, "used": 2740, "remaining": 7260, "percent": 27.4,
                           "projected": 3205, "status": "ok"},
                "cost_usd": {"limit": 0.05, "used": 0.00495, "remaining": 0.04505,
                             "percent": 9.9, "projected": 0.005791, "status": "ok",
                             "complete": false}
            }
        })
    );

    // Empty: zeros, not nulls, and no rows.
    let report = stats_json(
        &home,
        "UTC",
        &["--by", "day", "--backend", "codex", "--status", "error"],
    );
    assert_eq!(report["rows"], json!([]));
    assert_eq!(
        report["totals"],
        json!({"sessions": 0, "runs": 0, "input": 0, "output": 0, "cached": 0, "cache_write": 0,
               "reasoning": 0, "total": 0, "cost_usd": 0.0, "reported_cost_usd": 0.0,
               "estimated_cost_usd": 0.0, "unpriced_tokens": 0})
    );
    assert_eq!(report["unpriced_models"], json!([]));
}

// ----- 8. upgrading an index of the previous schema --------------------------------------------

#[test]
fn an_index_of_the_previous_schema_is_refilled_from_the_files() {
    let (home, _) = varied_home();
    build_index_in(&home, "Europe/Paris");
    let questions: [&[&str]; 3] = [
        &[],
        &["--by", "month", "--by", "backend"],
        &["--by", "tag", "--timezone", "+01:00"],
    ];
    let before: Vec<Value> = questions
        .iter()
        .map(|q| stats_json(&home, "Europe/Paris", q))
        .collect();
    assert!(before[0]["totals"]["total"].as_u64().unwrap() > 100_000);

    // What an older build left: schema version 1, without the usage tables (V2) or the
    // imported conversations' column and table (V3), where reads of them stopped (V4), or
    // what was said (V5).
    {
        let db = rusqlite::Connection::open(home.index_path()).unwrap();
        db.execute_batch(
            "DROP TABLE usage_daily; DROP TABLE turns;
             DROP TABLE native_files; DROP INDEX sessions_by_backend_id;
             DROP TABLE texts_fts; DROP TABLE texts_trigrams; DROP VIEW texts_indexed;
             DROP TABLE texts; DROP TABLE text_runs; DROP TABLE native_walks;
             ALTER TABLE sessions DROP COLUMN origin;
             DELETE FROM refinery_schema_history WHERE version >= 2;
             PRAGMA user_version = 1;",
        )
        .unwrap();
    }
    let after: Vec<Value> = questions
        .iter()
        .map(|q| stats_json(&home, "Europe/Paris", q))
        .collect();
    for ((q, b), a) in questions.iter().zip(&before).zip(&after) {
        assert_eq!(a["totals"], b["totals"], "totals of {q:?}");
        assert_eq!(a["rows"], b["rows"], "rows of {q:?}");
    }
    let db = rusqlite::Connection::open(home.index_path()).unwrap();
    let version: i64 = db
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    let latest = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations"))
        .unwrap()
        .count() as i64;
    assert_eq!(version, latest, "migrated to the latest schema");
    let days: i64 = db
        .query_row("SELECT count(*) FROM usage_daily", [], |r| r.get(0))
        .unwrap();
    assert!(days > 0, "the rollup was refilled");
    // And the raw answer agrees with the files.
    Query::new("Europe/Paris")
        .timezone("+01:00")
        .by(&["month", "backend"])
        .check(&home, &oracle_usage(&home));
}

// ----- 9. the guide's jq recipes ---------------------------------------------------------------

#[test]
fn the_guides_jq_recipes_agree_with_stats() {
    require!("jq");
    let (home, _) = varied_home();
    home.warm();
    let stats_report = stats_json(&home, "UTC", &["--by", "backend"]);

    let run = bash(
        &home,
        "clinvk sessions list --json | \\\n  jq '[.[].token_usage.total] | add'",
        true,
    )
    .success();
    assert_eq!(
        run.stdout.trim().parse::<u64>().unwrap(),
        stats_report["totals"]["total"].as_u64().unwrap()
    );

    let run = bash(
        &home,
        "clinvk sessions list --json | \\\n  jq 'group_by(.backend) | map({backend: .[0].backend, total: [.[].token_usage.total] | add})'",
        true,
    )
    .success();
    let recipe: BTreeMap<String, u64> = run
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["backend"].as_str().unwrap().to_string(),
                r["total"].as_u64().unwrap(),
            )
        })
        .collect();
    let ours: BTreeMap<String, u64> = stats_report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["backend"].as_str().unwrap().to_string(),
                r["total"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(recipe.len(), 3);
    assert_eq!(recipe, ours);
}

/// One file with absurd counts (garbage from a backend or a bad edit) must not overflow the
/// index's sums and break every command: its runs are capped.
#[test]
fn absurd_counts_are_capped_not_fatal() {
    let home = Home::new();
    let huge = 9_223_372_036_854_775_000u64;
    for id in ["huge1", "huge2"] {
        home.add(&session(id).created("2025-01-20T10:00:00Z").turns(&[turn(
            "2025-01-20T10:00:00Z",
            huge,
            huge,
            0,
        )]));
    }
    home.add(
        &session("small")
            .created("2025-01-20T11:00:00Z")
            .turns(&[turn("2025-01-20T11:00:00Z", 100, 10, 0)]),
    );
    home.ok(&["sessions", "list"]);
    let report = stats_json(&home, "UTC", &["--by", "day"]);
    let cap = 1u64 << 40;
    assert_eq!(report["totals"]["input"], json!(2 * cap + 100));
    assert_eq!(report["totals"]["sessions"], 3);
    assert_eq!(
        stats(&home, "UTC", &["--by", "month", "--by", "backend"]).code,
        0
    );
}

/// A file that names a tag twice counts once under it, and stays counted once through writes.
#[test]
fn a_tag_named_twice_in_a_file_counts_once() {
    let home = Home::new();
    home.add(&session("twice").tags(&["a", "a"]).tokens(100, 20, 0));
    home.add(&session("once").tags(&["a"]).tokens(10, 2, 0));
    let by_tag = |home: &Home| {
        let report = stats_json(home, "UTC", &["--by", "tag"]);
        report["rows"][0]["total"].as_u64().unwrap()
    };
    assert_eq!(by_tag(&home), 132);
    home.ok(&["sessions", "tag", "twice", "b"]);
    home.ok(&["sessions", "tag", "twice", "b", "--remove"]);
    assert_eq!(by_tag(&home), 132);
    home.ok(&["sessions", "reindex", "--check"]);
}
