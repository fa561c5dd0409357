//! `clinvk config get | set | show | path`.

#[macro_use]
#[allow(unused_macros)]
mod common;

use common::*;
use serde_json::json;

fn yaml(path: &std::path::Path) -> serde_yaml::Value {
    serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn get_prints_the_guide_defaults() {
    let home = Home::new();
    let run = home.ok(&["config", "get", "session.retention_days"]);
    assert_eq!(run.stdout, "30\n");
    assert_eq!(run.stderr, "");
    assert_eq!(
        home.ok(&["config", "get", "session.store_token_usage"])
            .stdout,
        "true\n"
    );
    assert_eq!(
        home.ok(&["config", "get", "session.default_tags"]).stdout,
        "[]\n"
    );
    assert!(
        !home.config_path().exists(),
        "reading must not create the file"
    );
}

#[test]
fn path_prints_the_config_file() {
    let home = Home::new();
    let run = home.ok(&["config", "path"]);
    assert_eq!(run.stdout, format!("{}\n", home.config_path().display()));
    assert_eq!(run.stderr, "");
}

#[test]
fn set_default_tags_as_in_the_guide_keeps_the_rest_of_the_file() {
    let home = Home::new();
    std::fs::write(
        home.config_path(),
        "backends:\n  claude:\n    command: /opt/claude\n    timeout: 60\nsession:\n  retention_days: 7\n  store_token_usage: false\nui:\n  color: never\n",
    )
    .unwrap();
    let run = home.ok(&[
        "config",
        "set",
        "session.default_tags",
        r#"["project-x", "feature-y"]"#,
    ]);
    assert_eq!(run.stdout, "", "a confirmation is a message, on stderr");
    assert!(
        run.stderr.contains("session.default_tags"),
        "{}",
        run.stderr
    );

    let doc = yaml(&home.config_path());
    assert_eq!(
        doc["backends"]["claude"]["command"].as_str(),
        Some("/opt/claude")
    );
    assert_eq!(doc["backends"]["claude"]["timeout"].as_u64(), Some(60));
    assert_eq!(doc["session"]["retention_days"].as_u64(), Some(7));
    assert_eq!(doc["session"]["store_token_usage"].as_bool(), Some(false));
    assert_eq!(doc["ui"]["color"].as_str(), Some("never"));
    let tags: Vec<&str> = doc["session"]["default_tags"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(tags, ["project-x", "feature-y"]);

    let got = home.ok(&["config", "get", "session.default_tags"]);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&got.stdout).unwrap(),
        json!(["project-x", "feature-y"])
    );
    assert_eq!(
        home.ok(&["config", "get", "session.retention_days"]).stdout,
        "7\n"
    );
}

#[test]
fn set_through_a_shell_exactly_as_the_guide_writes_it() {
    let home = Home::new();
    let run = bash(
        &home,
        r#"clinvk config set session.default_tags '["project-x", "feature-y"]'"#,
        true,
    )
    .success();
    assert_eq!(run.stdout, "");
    let got = home.ok(&["config", "get", "session.default_tags"]).stdout;
    assert_eq!(got, "[\"project-x\",\"feature-y\"]\n");
}

#[test]
fn set_creates_a_missing_file_and_values_round_trip() {
    let home = Home::new();
    home.ok(&["config", "set", "session.retention_days", "7"]);
    assert!(home.config_path().exists());
    assert_eq!(
        home.ok(&["config", "get", "session.retention_days"]).stdout,
        "7\n"
    );
    home.ok(&["config", "set", "session.store_token_usage", "false"]);
    assert_eq!(
        home.ok(&["config", "get", "session.store_token_usage"])
            .stdout,
        "false\n"
    );
    home.ok(&["config", "set", "session.retention_days", "0"]);
    assert_eq!(
        home.ok(&["config", "get", "session.retention_days"]).stdout,
        "0\n"
    );
    // The guide's default_tags example, with ${USER} kept for expansion later.
    home.ok(&[
        "config",
        "set",
        "session.default_tags",
        r#"["clinvk", "${USER}"]"#,
    ]);
    assert_eq!(
        home.ok(&["config", "get", "session.default_tags"]).stdout,
        "[\"clinvk\",\"${USER}\"]\n"
    );
    // Duplicate and padded tags are normalised.
    home.ok(&[
        "config",
        "set",
        "session.default_tags",
        r#"[" a ", "a", "b"]"#,
    ]);
    assert_eq!(
        home.ok(&["config", "get", "session.default_tags"]).stdout,
        "[\"a\",\"b\"]\n"
    );
    home.ok(&["config", "set", "session.default_tags", "[]"]);
    assert_eq!(
        home.ok(&["config", "get", "session.default_tags"]).stdout,
        "[]\n"
    );
    // The file is plain YAML others can read.
    let doc = yaml(&home.config_path());
    assert_eq!(doc["session"]["retention_days"].as_u64(), Some(0));
    assert_eq!(doc["session"]["store_token_usage"].as_bool(), Some(false));
}

#[test]
fn a_hand_written_config_as_in_the_guide_is_read() {
    let home = Home::new();
    std::fs::write(
        home.config_path(),
        "session:\n  # Days to keep sessions (0 = keep forever)\n  retention_days: 30\n\n  # Store token usage in session metadata\n  store_token_usage: true\n\n  # Tags automatically added to new sessions\n  default_tags: []\n",
    )
    .unwrap();
    assert_eq!(
        home.ok(&["config", "get", "session.retention_days"]).stdout,
        "30\n"
    );
    std::fs::write(
        home.config_path(),
        "session:\n  default_tags:\n    - \"clinvk\"\n    - \"${USER}\"\n",
    )
    .unwrap();
    assert_eq!(
        home.ok(&["config", "get", "session.default_tags"]).stdout,
        "[\"clinvk\",\"${USER}\"]\n"
    );
    // An empty file is all defaults.
    std::fs::write(home.config_path(), "").unwrap();
    assert_eq!(
        home.ok(&["config", "get", "session.retention_days"]).stdout,
        "30\n"
    );
}

#[test]
fn run_timeout_is_a_duration_or_zero() {
    let home = Home::new();
    assert_eq!(home.ok(&["config", "get", "run.timeout"]).stdout, "30m\n");
    home.ok(&["config", "set", "run.timeout", "90s"]);
    assert_eq!(home.ok(&["config", "get", "run.timeout"]).stdout, "90s\n");
    home.ok(&["config", "set", "run.timeout", "0"]);
    assert_eq!(home.ok(&["config", "get", "run.timeout"]).stdout, "0\n");
    let before = home.snapshot(true);
    for bad in ["soon", "30", "-5m", "[1]"] {
        let run = home
            .run(&["config", "set", "run.timeout", bad])
            .fails_with(2);
        assert!(
            run.error_line()
                .contains("run.timeout must be a duration such as 30m"),
            "{bad}: {}",
            run.stderr
        );
    }
    assert_same_files(&before, &home.snapshot(true));
    // A bad value written by hand is a config error (5) for the commands that read it.
    std::fs::write(home.config_path(), "run:\n  timeout: 5\n").unwrap();
    let run = home.run(&["config", "get", "run.timeout"]).fails_with(5);
    assert!(
        run.error_line().contains("run.timeout must be a duration"),
        "{}",
        run.stderr
    );
}

#[test]
fn show_prints_every_setting() {
    let home = Home::new();
    home.ok(&["config", "set", "session.retention_days", "14"]);
    let run = home.ok(&["config", "show"]);
    assert_eq!(
        run.stdout,
        "session.retention_days = 14\nsession.store_token_usage = true\nsession.default_tags = []\n\
         default_backend = (not set)\nbackends.claude.command = (not set)\n\
         backends.codex.command = (not set)\nbackends.gemini.command = (not set)\n\
         session.token_budget = (not set)\nsession.cost_budget_usd = (not set)\npricing = {}\n\
         run.timeout = 30m\nimport.auto = true\nimport.claude.enabled = true\n\
         import.codex.enabled = true\nimport.gemini.enabled = true\nimport.claude.dir = (not set)\n\
         import.codex.dir = (not set)\nimport.gemini.dir = (not set)\n"
    );
    assert_eq!(run.stderr, "");
    let shown = home.ok(&["config", "show", "--json"]).json();
    assert_eq!(
        shown,
        json!({
            "session.retention_days": 14,
            "session.store_token_usage": true,
            "session.default_tags": [],
            "default_backend": null,
            "backends.claude.command": null,
            "backends.codex.command": null,
            "backends.gemini.command": null,
            "session.token_budget": null,
            "session.cost_budget_usd": null,
            "pricing": {},
            "run.timeout": "30m",
            "import.auto": true,
            "import.claude.enabled": true,
            "import.codex.enabled": true,
            "import.gemini.enabled": true,
            "import.claude.dir": null,
            "import.codex.dir": null,
            "import.gemini.dir": null
        })
    );
}

#[test]
fn budgets_and_pricing_are_checked_when_set() {
    let home = Home::new();
    home.ok(&["config", "set", "session.token_budget", "1000000"]);
    home.ok(&["config", "set", "session.cost_budget_usd", "12.5"]);
    home.ok(&[
        "config",
        "set",
        "pricing",
        r#"{"house-model": {input: 1, output: 2}, "gpt-5.1": {input: 1.25, output: 10, cache_read: 0.125}}"#,
    ]);
    assert_eq!(
        home.ok(&["config", "get", "session.token_budget"]).stdout,
        "1000000\n"
    );
    assert_eq!(
        home.ok(&["config", "get", "pricing"]).json(),
        json!({
            "house-model": {"input": 1.0, "output": 2.0},
            "gpt-5.1": {"input": 1.25, "output": 10.0, "cache_read": 0.125}
        })
    );
    let before = std::fs::read_to_string(home.config_path()).unwrap();
    for (key, value, says) in [
        ("session.token_budget", "0", "above 0"),
        ("session.token_budget", "lots", "whole number of tokens"),
        ("session.cost_budget_usd", "-5", "US dollars above 0"),
        ("pricing", "{m: {input: 1}}", "missing field `output`"),
        (
            "pricing",
            "{m: {input: 1, output: 2, typo: 3}}",
            "unknown field `typo`",
        ),
        ("pricing", "{m: {input: -1, output: 2}}", "pricing.m"),
        ("pricing", "[1, 2]", "pricing must map model ids"),
    ] {
        let run = home.run(&["config", "set", key, value]);
        assert_eq!(run.code, 2, "{key} {value}: {}", run.stderr);
        assert!(run.stderr.contains(says), "{key} {value}: {}", run.stderr);
        assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    }
    assert_eq!(std::fs::read_to_string(home.config_path()).unwrap(), before);
    // Unset again with null.
    home.ok(&["config", "set", "session.token_budget", "null"]);
    assert_eq!(
        home.ok(&["config", "get", "session.token_budget"]).stdout,
        "\n"
    );
}

#[test]
fn clinvk_config_overrides_the_config_path() {
    let home = Home::new();
    std::fs::write(home.config_path(), "session:\n  retention_days: 3\n").unwrap();
    let other = home.path().join("elsewhere").join("my-config.yaml");
    let with_override = |args: &[&str]| {
        Run::from_output(
            home.cmd()
                .env("CLINVK_CONFIG", &other)
                .args(args)
                .output()
                .unwrap(),
        )
        .success()
    };
    assert_eq!(
        with_override(&["config", "path"]).stdout,
        format!("{}\n", other.display())
    );
    assert_eq!(
        with_override(&["config", "get", "session.retention_days"]).stdout,
        "30\n",
        "the override file does not exist yet: defaults, not the home's config"
    );
    with_override(&["config", "set", "session.retention_days", "9"]);
    assert!(other.exists());
    assert_eq!(
        with_override(&["config", "get", "session.retention_days"]).stdout,
        "9\n"
    );
    // The home's config.yaml is untouched and still used without the override.
    assert_eq!(
        std::fs::read_to_string(home.config_path()).unwrap(),
        "session:\n  retention_days: 3\n"
    );
    assert_eq!(
        home.ok(&["config", "get", "session.retention_days"]).stdout,
        "3\n"
    );

    // `sessions clean` reads the retention from the overriding file.
    home.add_all(&[
        session("d5").used_ago(chrono::Duration::days(5)),
        session("d12").used_ago(chrono::Duration::days(12)),
    ]);
    with_override(&["sessions", "clean"]);
    assert!(home.session_exists("d5"));
    assert!(!home.session_exists("d12"));
}

#[test]
fn set_keeps_comments() {
    let home = Home::new();
    let text = "session:\n  # Days to keep sessions (0 = keep forever)\n  retention_days: 30\n\n  # Tags automatically added to new sessions\n  default_tags: []\n";
    std::fs::write(home.config_path(), text).unwrap();
    home.ok(&["config", "set", "session.retention_days", "7"]);
    let after = std::fs::read_to_string(home.config_path()).unwrap();
    assert!(
        after.contains("# Days to keep sessions (0 = keep forever)"),
        "{after}"
    );
    assert!(
        after.contains("# Tags automatically added to new sessions"),
        "{after}"
    );
}

/// `config set` reads, edits and writes the file under a lock: eight at once, each setting its
/// own key, lose none of them.
#[test]
fn concurrent_sets_lose_no_update() {
    let home = Home::new();
    let sets: [(&str, &str); 8] = [
        ("session.retention_days", "7"),
        ("session.store_token_usage", "false"),
        ("default_backend", "codex"),
        ("backends.claude.command", "/opt/claude"),
        ("backends.codex.command", "/opt/codex"),
        ("backends.gemini.command", "/opt/gemini"),
        ("session.token_budget", "500000"),
        ("run.timeout", "90s"),
    ];
    for round in 0..3 {
        let _ = std::fs::remove_file(home.config_path());
        let children: Vec<_> = sets
            .iter()
            .map(|(k, v)| {
                home.std_cmd()
                    .args(["config", "set", k, v])
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for child in children {
            let out = child.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        for (k, v) in sets {
            assert_eq!(
                home.ok(&["config", "get", k]).stdout.trim(),
                v,
                "round {round}: {k} was lost\n{}",
                std::fs::read_to_string(home.config_path()).unwrap()
            );
        }
    }
}

/// A config.yaml nested thousands deep, or of many megabytes, took seconds (and gigabytes) to
/// refuse, in every command: it is refused at once, with the reason.
#[test]
fn huge_or_deeply_nested_config_is_refused_at_once() {
    let home = Home::new();
    for (text, reason) in [
        ("[".repeat(200_000), "nested more than 64 levels deep"),
        (
            format!(
                "session:\n  default_tags: [{}]\n",
                "\"a\", ".repeat(400_000)
            ),
            "more than a config file may be",
        ),
    ] {
        std::fs::write(home.config_path(), text).unwrap();
        let t = std::time::Instant::now();
        let run = home.run(&["config", "show"]).fails_with(5);
        assert!(
            t.elapsed() < std::time::Duration::from_secs(3),
            "{:?}",
            t.elapsed()
        );
        assert!(run.error_line().contains(reason), "{}", run.stderr);
        home.run(&["sessions", "clean", "--dry-run"]).fails_with(5);
    }
}

/// The issue's report: an interrupted `config set` left `.config.yaml.<pid>.<hex>.tmp` that
/// nothing removed. The next `config set` removes it (under the config lock, so never one in
/// use), and only names of exactly that shape.
#[test]
fn config_set_removes_temp_files_left_by_an_interrupted_one() {
    let home = Home::new();
    std::fs::create_dir_all(home.path()).unwrap();
    let leftover = home.path().join(".config.yaml.4242.deadbeef.tmp");
    let theirs = home.path().join(".config.yaml.bak.tmp");
    let other_target = home.path().join(".notes.yaml.4242.deadbeef.tmp");
    for f in [&leftover, &theirs, &other_target] {
        std::fs::write(f, "session:\n  retention_days: 1\n").unwrap();
    }
    home.ok(&["config", "set", "session.retention_days", "9"]);
    assert!(!leftover.exists(), "the leftover is removed");
    assert!(theirs.exists() && other_target.exists(), "other files stay");
    assert_eq!(
        yaml(&home.config_path())["session"]["retention_days"],
        serde_yaml::Value::from(9)
    );
}
