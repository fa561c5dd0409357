//! Every filter shape of `sessions list` must be answered from an index, newest first without a
//! sort: checked on SQLite's own `EXPLAIN QUERY PLAN`.

use chrono::{DateTime, Duration, Utc};
use clinvk::store::{
    Backend, Filter, ListQuery, Quiet, Session, SessionId, Status, Store, TimeRange,
};

fn store_with_sessions() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("sessions"), Box::new(Quiet)).unwrap();
    let now: DateTime<Utc> = "2025-01-27T12:00:00Z".parse().unwrap();
    for i in 0..50 {
        let mut s = Session::new(
            SessionId::generate(),
            Backend::ALL[i % 3],
            format!("/projects/p{}", i % 5),
            format!("prompt number {i} about auth"),
            now - Duration::hours(i as i64),
        );
        s.status = Status::ALL[i % 4];
        s.tags = vec![format!("t{}", i % 4), format!("u{}", i % 7)];
        store.create(s).unwrap();
    }
    (dir, store)
}

fn plan(store: &Store, query: ListQuery) -> String {
    let query = ListQuery {
        limit: Some(20),
        offset: 0,
        ..query
    };
    store.explain(&query).unwrap().join("\n")
}

/// A listing of the sessions `filter` selects.
fn of(filter: Filter) -> ListQuery {
    ListQuery {
        filter,
        ..Default::default()
    }
}

/// A listing of the sessions last used in `since..until`.
fn used(since: Option<DateTime<Utc>>, until: Option<DateTime<Utc>>) -> ListQuery {
    ListQuery {
        last_used: TimeRange { since, until },
        ..Default::default()
    }
}

fn assert_indexed(label: &str, plan: &str, may_sort: bool) {
    // "SCAN s" alone is a full table scan; "SCAN s USING INDEX" walks an index in order.
    for line in plan.lines() {
        let line = line.trim();
        let full_scan = (line == "SCAN s" || line == "SCAN t0")
            || (line.starts_with("SCAN ")
                && !line.contains("USING")
                && !line.contains("VIRTUAL TABLE"));
        assert!(!full_scan, "{label}: full table scan\n{plan}");
    }
    if !may_sort {
        assert!(
            !plan.contains("TEMP B-TREE FOR ORDER BY"),
            "{label}: sorts instead of walking an index\n{plan}"
        );
    }
}

#[test]
fn every_filter_shape_uses_an_index() {
    let (_dir, store) = store_with_sessions();
    let t = |s: &str| -> Option<DateTime<Utc>> { Some(s.parse().unwrap()) };
    let shapes: Vec<(&str, ListQuery, &str)> = vec![
        ("no filter", ListQuery::default(), "sessions_by_last_used"),
        (
            "backend",
            of(Filter {
                backend: Some(Backend::Codex),
                ..Default::default()
            }),
            "sessions_by_backend",
        ),
        (
            "status",
            of(Filter {
                status: Some(Status::Active),
                ..Default::default()
            }),
            "sessions_by_status",
        ),
        (
            "workdir",
            of(Filter {
                workdir: Some("/projects/p1".into()),
                ..Default::default()
            }),
            "sessions_by_workdir",
        ),
        (
            "since",
            used(t("2025-01-26T00:00:00Z"), None),
            "sessions_by_last_used",
        ),
        (
            "until",
            used(None, t("2025-01-26T00:00:00Z")),
            "sessions_by_last_used",
        ),
        (
            "since+until",
            used(t("2025-01-25T00:00:00Z"), t("2025-01-26T00:00:00Z")),
            "sessions_by_last_used",
        ),
        (
            "one tag",
            of(Filter {
                tags: vec!["t1".into()],
                ..Default::default()
            }),
            "session_tags_by_recent",
        ),
        (
            "two tags",
            of(Filter {
                tags: vec!["t1".into(), "u2".into()],
                ..Default::default()
            }),
            "session_tags_by_recent",
        ),
        (
            "search",
            ListQuery {
                search: Some("auth".into()),
                ..Default::default()
            },
            "prompts_fts",
        ),
        (
            "backend+since",
            ListQuery {
                filter: Filter {
                    backend: Some(Backend::Claude),
                    ..Default::default()
                },
                ..used(t("2025-01-26T00:00:00Z"), None)
            },
            "sessions_by_backend",
        ),
    ];
    for (label, filter, index) in shapes {
        let plan = plan(&store, filter);
        // A prompt search finds its matches through the trigram index, then sorts just those.
        assert_indexed(label, &plan, label == "search");
        assert!(plan.contains(index), "{label}: expected {index}\n{plan}");
    }
}

#[test]
fn two_tag_and_starts_from_the_rarest_tag() {
    let (_dir, store) = store_with_sessions();
    // u3 (1 in 7) is rarer than t1 (1 in 4): the walk must start from u3 whichever order is given.
    for tags in [vec!["t1", "u3"], vec!["u3", "t1"]] {
        let query = ListQuery {
            filter: Filter {
                tags: tags.iter().map(|t| t.to_string()).collect(),
                ..Default::default()
            },
            ..Default::default()
        };
        let rows = store.list(&query).unwrap().sessions;
        assert!(!rows.is_empty());
        assert!(rows
            .iter()
            .all(|r| r.tags.contains(&"t1".to_string()) && r.tags.contains(&"u3".to_string())));
        assert!(rows
            .windows(2)
            .all(|w| w[0].last_used_at >= w[1].last_used_at));
    }
}

/// A one-page search first tests the newest 1000 sessions directly, then falls back to the
/// trigram index: whichever path answers, a page must equal the same slice of the full result.
#[test]
fn paged_search_equals_the_full_result_on_both_paths() {
    let dir = tempfile::tempdir().unwrap();
    let sessions = dir.path().join("sessions");
    std::fs::create_dir_all(&sessions).unwrap();
    let now: DateTime<Utc> = "2025-01-27T12:00:00Z".parse().unwrap();
    for i in 0..1500i64 {
        // "common" in every third prompt; "Rare" only in a few old ones (outside the window).
        let mut prompt = format!("prompt {i}");
        if i % 3 == 0 {
            prompt.push_str(" common word");
        }
        if i % 97 == 5 && i > 1100 {
            prompt.push_str(" Rare Éclair");
        }
        // Case folding must agree on both paths, final sigma included.
        match i {
            3 | 1200 => prompt.push_str(" ΟΔΟΣΑ road"),
            7 | 1300 => prompt.push_str(" οδοσα lower"),
            _ => {}
        }
        let id = SessionId::parse(&format!("s{i:05}")).unwrap();
        let s = Session::new(
            id,
            Backend::Claude,
            "/w".into(),
            prompt,
            now - Duration::minutes(i),
        );
        std::fs::write(sessions.join(s.id.file_name()), s.to_file_bytes()).unwrap();
    }
    let store = Store::open(&sessions, Box::new(Quiet)).unwrap();
    for term in [
        "common",
        "rare éclair",
        "RARE",
        "prompt 14",
        "nothing-like-this",
        "ΟΔΟΣΑ",
        "οδοσα",
    ] {
        let search = ListQuery {
            search: Some(term.into()),
            ..Default::default()
        };
        let all = store.list(&search).unwrap().sessions;
        for (limit, offset) in [(20, 0), (5, 3), (1000, 0)] {
            let page = store
                .list(&ListQuery {
                    limit: Some(limit),
                    offset,
                    ..search.clone()
                })
                .unwrap()
                .sessions;
            let expected: Vec<_> = all
                .iter()
                .skip(offset as usize)
                .take(limit as usize)
                .collect();
            assert_eq!(
                page.iter().collect::<Vec<_>>(),
                expected,
                "{term} limit {limit} offset {offset}"
            );
        }
        assert!(term == "nothing-like-this" || !all.is_empty(), "{term}");
        if term.starts_with('Ο') || term.starts_with('ο') {
            assert_eq!(all.len(), 4, "{term}: every spelling of οδοσ matches");
        }
    }
}

/// `sessions stats`: the rollup is read by its key (a day range walks the primary key), and a
/// range of runs walks the runs' time index instead of reading every run.
#[test]
fn stats_read_the_rollup_or_the_runs_time_index() {
    use clinvk::store::{Dimension, StatsQuery};
    use clinvk::timespec::{Granularity, Zone};
    let (_dir, store) = store_with_sessions();
    // Created by this process: the rollup is in its local zone.
    let zone = Zone::local();
    let zone = if zone == Zone::Local {
        Zone::parse("UTC").unwrap()
    } else {
        zone
    };
    let query = |dims: Vec<Dimension>, filter: Filter, runs: TimeRange, zone: Zone| StatsQuery {
        filter,
        runs,
        group_by: dims,
        zone,
        top: None,
        adopt_zone_at: None,
    };
    let month = Granularity::Month;
    let june = chrono::NaiveDate::from_ymd_opt(2025, 6, 1).unwrap();
    let budget = TimeRange {
        since: zone.start_of(june),
        until: zone.start_of(month.next(june)),
    };
    let plan = store
        .explain_stats(&query(vec![], Filter::default(), budget, zone))
        .unwrap()
        .join("\n");
    assert!(
        plan.contains("SEARCH x USING PRIMARY KEY (day>? AND day<?)"),
        "a budget month reads the rollup by day\n{plan}"
    );
    // The same month in another zone: the runs of that range only.
    let other = Zone::parse("+05:45").unwrap();
    let shifted = TimeRange {
        since: other.start_of(june),
        until: other.start_of(month.next(june)),
    };
    let plan = store
        .explain_stats(&query(
            vec![Dimension::Period(Granularity::Day)],
            Filter::default(),
            shifted,
            other,
        ))
        .unwrap()
        .join("\n");
    assert!(
        plan.lines().all(|l| !l.trim().starts_with("SCAN x")),
        "a range of runs is searched by time, not scanned\n{plan}"
    );
    assert!(plan.contains("turns_by_time"), "{plan}");
    // Months in another zone: the daily rollup, the hours of the days that zone's months cut
    // by the runs' time index, and their sessions' runs by their key; no run read through.
    let plan = store
        .explain_stats(&query(
            vec![Dimension::Period(Granularity::Month), Dimension::Backend],
            Filter::default(),
            TimeRange::default(),
            other,
        ))
        .unwrap()
        .join("\n");
    assert!(plan.contains("SCAN x"), "the rollup's days\n{plan}");
    assert!(
        plan.contains("SEARCH x USING INDEX turns_by_time (at>? AND at<?)"),
        "{plan}"
    );
    assert!(
        plan.contains("SEARCH x USING PRIMARY KEY (session_pk=?)"),
        "{plan}"
    );
    assert_eq!(
        plan.lines()
            .filter(|l| l.trim().starts_with("SCAN x"))
            .count(),
        1,
        "only the rollup is read through\n{plan}"
    );
    // By tag, by directory, or filtered by one of them: the rollup by key, read by its key.
    for (dims, filter) in [
        (vec![Dimension::Tag], Filter::default()),
        (
            vec![Dimension::Workdir, Dimension::Model],
            Filter::default(),
        ),
        (vec![Dimension::Project], Filter::default()),
        (
            vec![Dimension::Period(Granularity::Month)],
            Filter {
                tags: vec!["t1".into()],
                ..Default::default()
            },
        ),
    ] {
        let plan = store
            .explain_stats(&query(dims.clone(), filter, TimeRange::default(), zone))
            .unwrap()
            .join("\n");
        assert!(
            plan.contains("SEARCH x USING PRIMARY KEY (kind=?"),
            "{dims:?}: the rollup by key\n{plan}"
        );
        assert!(!plan.contains("turns"), "{dims:?}: no run read\n{plan}");
    }
    // The sessions that used the most: their totals, biggest first, then only their runs.
    let mut top = query(
        vec![Dimension::Session],
        Filter::default(),
        TimeRange::default(),
        zone,
    );
    top.top = Some(20);
    let plan = store.explain_stats(&top).unwrap().join("\n");
    assert!(
        plan.contains("SCAN st USING COVERING INDEX session_totals_by_total"),
        "walks the totals' index\n{plan}"
    );
    assert!(
        plan.contains("SEARCH x USING PRIMARY KEY (session_pk=?)"),
        "{plan}"
    );
    // Two tags (AND) start from the first tag's sessions.
    let tagged = Filter {
        tags: vec!["t1".into(), "t2".into()],
        ..Default::default()
    };
    let plan = store
        .explain_stats(&query(
            vec![Dimension::Backend],
            tagged,
            TimeRange::default(),
            zone,
        ))
        .unwrap()
        .join("\n");
    assert!(
        plan.contains("SEARCH session_tags")
            && plan.contains("SEARCH x USING PRIMARY KEY (session_pk=?)"),
        "{plan}"
    );
    assert!(
        plan.lines().all(|l| !l.trim().starts_with("SCAN x")),
        "{plan}"
    );
}

/// `sessions search`: candidates come from the trigram index, their runs, sessions and messages
/// are looked up by their keys, whatever the filters; no statement reads a table through.
#[test]
fn search_reads_no_table_through() {
    use clinvk::store::{SearchQuery, SearchTerms};
    let (_dir, store) = store_with_sessions();
    let search = |select: ListQuery| SearchQuery {
        terms: SearchTerms::parse("auth").unwrap(),
        select: ListQuery {
            limit: Some(20),
            ..select
        },
    };
    let shapes = [
        ("no filter", ListQuery::default()),
        (
            "backend",
            of(Filter {
                backend: Some(Backend::Codex),
                ..Default::default()
            }),
        ),
        (
            "tags",
            of(Filter {
                tags: vec!["t1".into(), "u2".into()],
                ..Default::default()
            }),
        ),
        (
            "since",
            used(Some("2025-01-26T00:00:00Z".parse().unwrap()), None),
        ),
    ];
    for (label, select) in shapes {
        let plans = store.explain_search(&search(select)).unwrap();
        assert_eq!(plans.len(), 5, "{label}: {plans:?}");
        assert!(
            plans[0].contains("VIRTUAL TABLE INDEX"),
            "{label}: {}",
            plans[0]
        );
        // The candidates outermost, each session by its pk (not a filter's index walked).
        assert!(
            plans[1].starts_with("selected: SCAN c VIRTUAL TABLE")
                && plans[1].contains("SEARCH s USING INTEGER PRIMARY KEY"),
            "{label}: {}",
            plans[1]
        );
        // The vocabulary read by a range of terms (fts5vocab's index 0: without constraints).
        assert!(
            plans[2].contains("VIRTUAL TABLE INDEX") && !plans[2].contains("INDEX 0:"),
            "{label}: {}",
            plans[2]
        );
        assert!(
            plans[3].contains("SEARCH text_runs USING INTEGER PRIMARY KEY (rowid<?)"),
            "{label}: {}",
            plans[3]
        );
        assert!(
            plans[4].contains("SEARCH texts USING INTEGER PRIMARY KEY"),
            "{label}: {}",
            plans[4]
        );
        for plan in &plans {
            for step in plan.split(": ").nth(1).unwrap().split("; ") {
                let full = step.starts_with("SCAN ")
                    && !step.contains("USING")
                    && !step.contains("VIRTUAL TABLE");
                assert!(!full, "{label}: a table read through: {plan}");
            }
        }
    }
}
