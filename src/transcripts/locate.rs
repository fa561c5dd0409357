//! Where each CLI keeps its transcripts, and finding one conversation's file.
//! - Claude Code: `$CLAUDE_CONFIG_DIR` (a comma-separated list), else `~/.claude` and
//!   `~/.config/claude`; `projects/<the directory, every character but letters and digits as
//!   '-'>/<session id>.jsonl`.
//! - Codex: `$CODEX_HOME`, else `~/.codex`; `sessions/YYYY/MM/DD/rollout-<time>-<thread
//!   id>.jsonl` (the day the thread began, in local time) and `archived_sessions/`.
//! - Gemini CLI: `$GEMINI_CLI_HOME/.gemini`, else `~/.gemini`; `tmp/<project>/chats/
//!   session-<time>-<first 8 of the id>.jsonl` (or `.json`), the project's directory name
//!   kept in `projects.json`.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Days, Local, TimeZone, Utc};

/// The CLIs' data directories, from their own variables and the home directory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Homes {
    pub claude: Vec<PathBuf>,
    pub codex: Option<PathBuf>,
    pub gemini: Option<PathBuf>,
}

impl Homes {
    pub fn from_env() -> Homes {
        let var = |name: &str| {
            std::env::var_os(name)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        let home = dirs::home_dir();
        let claude = match std::env::var("CLAUDE_CONFIG_DIR") {
            Ok(list) if !list.trim().is_empty() => list
                .split(',')
                .map(str::trim)
                .filter(|d| !d.is_empty())
                .map(PathBuf::from)
                .collect(),
            _ => home
                .iter()
                .flat_map(|h| [h.join(".claude"), h.join(".config").join("claude")])
                .collect(),
        };
        Homes {
            claude,
            codex: var("CODEX_HOME").or_else(|| home.as_ref().map(|h| h.join(".codex"))),
            gemini: var("GEMINI_CLI_HOME")
                .or_else(|| home.clone())
                .map(|h| h.join(".gemini")),
        }
    }
}

/// Claude's name for a project directory: every character but ASCII letters and digits as `-`.
/// (Beyond 200 characters the CLI cuts it and adds a hash; `claude_transcript` then looks in
/// every project.)
pub fn claude_project(workdir: &str) -> String {
    workdir
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}

/// The transcript of Claude session `session_id` under `roots`: in the project of `workdir`
/// first, then in any project.
pub fn claude_transcript(roots: &[PathBuf], workdir: &str, session_id: &str) -> Option<PathBuf> {
    if !is_plain_id(session_id) {
        return None;
    }
    let name = format!("{session_id}.jsonl");
    let project = claude_project(workdir);
    for root in roots {
        let projects = root.join("projects");
        let mine = projects.join(&project).join(&name);
        if mine.is_file() {
            return Some(mine);
        }
        for dir in subdirs(&projects) {
            let candidate = dir.join(&name);
            if candidate.is_file() {
                return Some(candidate);
            }
        }
    }
    None
}

/// Rollouts bigger than this are not read (a thread's rollout is a few MB at most).
const MAX_TRANSCRIPT_BYTES: u64 = 256 << 20;

/// The bytes of a transcript, if it is a regular file of sane size that can be read.
pub fn read(path: &Path) -> Option<Vec<u8>> {
    let meta = std::fs::metadata(path).ok()?;
    if !meta.is_file() || meta.len() > MAX_TRANSCRIPT_BYTES {
        return None;
    }
    std::fs::read(path).ok()
}

/// The first `max` bytes of a regular file, cut after its first line when it has one.
fn read_head(path: &Path, max: u64) -> Option<Vec<u8>> {
    use std::io::Read;
    let file = std::fs::File::open(path).ok()?;
    if !file.metadata().ok()?.is_file() {
        return None;
    }
    let mut head = Vec::new();
    file.take(max).read_to_end(&mut head).ok()?;
    let end = head.iter().position(|b| *b == b'\n')?;
    head.truncate(end);
    Some(head)
}

/// The rollout of Codex thread `thread_id` under `codex_home`.
pub fn codex_rollout(codex_home: &Path, thread_id: &str) -> Option<PathBuf> {
    if !is_plain_id(thread_id) {
        return None;
    }
    let suffix = format!("-{thread_id}.jsonl");
    let sessions = codex_home.join("sessions");
    // A UUIDv7 begins with its creation time in milliseconds: look in that day's folder (and
    // its neighbours, for a zone that differs from Codex's) before walking every day.
    let days: Vec<PathBuf> = created_at(thread_id)
        .map(|t| {
            let local = t.with_timezone(&Local).date_naive();
            [
                local.checked_sub_days(Days::new(1)),
                Some(local),
                local.checked_add_days(Days::new(1)),
            ]
            .into_iter()
            .flatten()
            .map(|d| sessions.join(d.format("%Y/%m/%d").to_string()))
            .collect()
        })
        .unwrap_or_default();
    days.iter()
        .find_map(|dir| file_ending_with(dir, &suffix))
        .or_else(|| {
            subdirs(&sessions)
                .iter()
                .flat_map(|year| subdirs(year))
                .flat_map(|month| subdirs(&month))
                .find_map(|day| file_ending_with(&day, &suffix))
        })
        .or_else(|| file_ending_with(&codex_home.join("archived_sessions"), &suffix))
}

/// The chat file of Gemini session `session_id` (checked by its `sessionId`), looked for in the
/// project of `workdir` first, then in every project.
pub fn gemini_chat(gemini_dir: &Path, session_id: &str, workdir: &str) -> Option<PathBuf> {
    if !is_plain_id(session_id) || session_id.len() < 8 {
        return None;
    }
    let short = &session_id[..8];
    let tmp = gemini_dir.join("tmp");
    let mine = project_of(gemini_dir, workdir).map(|slug| tmp.join(slug));
    let projects = mine.into_iter().chain(subdirs(&tmp));
    for project in projects {
        let Ok(entries) = std::fs::read_dir(project.join("chats")) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let candidate = name.starts_with("session-")
                && (name.ends_with(&format!("-{short}.jsonl"))
                    || name.ends_with(&format!("-{short}.json")));
            if !candidate {
                continue;
            }
            let path = entry.path();
            // The first line names the session: read only that much, unless the file is the
            // legacy pretty-printed record (one object over many lines).
            let owner = read_head(&path, 64 << 10)
                .and_then(|head| super::gemini::session_id(&head))
                .or_else(|| read(&path).and_then(|bytes| super::gemini::session_id(&bytes)));
            if owner.as_deref() == Some(session_id) {
                return Some(path);
            }
        }
    }
    None
}

/// `projects.json`'s name for the project of `workdir`: `{"projects": {"/path": "slug"}}`.
fn project_of(gemini_dir: &Path, workdir: &str) -> Option<String> {
    let bytes = read(&gemini_dir.join("projects.json"))?;
    let projects: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    projects["projects"][workdir]
        .as_str()
        .filter(|slug| {
            !slug.is_empty() && !slug.contains(['/', '\\']) && !matches!(*slug, "." | "..")
        })
        .map(str::to_string)
}

/// When a UUIDv7 was made (its first 48 bits are Unix milliseconds).
fn created_at(uuid: &str) -> Option<DateTime<Utc>> {
    let hex: String = uuid.chars().filter(|c| *c != '-').take(12).collect();
    if hex.len() != 12 || uuid.chars().nth(14) != Some('7') {
        return None;
    }
    let ms = i64::from_str_radix(&hex, 16).ok()?;
    Utc.timestamp_millis_opt(ms).single()
}

fn file_ending_with(dir: &Path, suffix: &str) -> Option<PathBuf> {
    std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .find(|e| e.file_name().to_string_lossy().ends_with(suffix))
        .map(|e| e.path())
}

fn subdirs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut dirs: Vec<PathBuf> = entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .collect();
    // Newest first: dates sort by name.
    dirs.sort_by(|a, b| b.cmp(a));
    dirs
}

/// An id that is safe in a file name (no separators, no dots).
fn is_plain_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/native-samples/");

    #[test]
    fn rollouts_are_found_by_thread_id() {
        let home = tempfile::tempdir().unwrap();
        let id = "01a2313a-0d07-7771-ad0b-6e3bccc3126b";
        let name = format!("rollout-2026-12-01T10-50-17-{id}.jsonl");
        // Its day's folder (the UUIDv7's time is 2026-12-01T10:50:17Z).
        let day = home.path().join("sessions/2026/12/01");
        std::fs::create_dir_all(&day).unwrap();
        std::fs::write(day.join(&name), b"{}\n").unwrap();
        assert_eq!(
            created_at(id).unwrap().to_rfc3339(),
            "2026-12-01T10:50:17.735+00:00"
        );
        assert_eq!(codex_rollout(home.path(), id), Some(day.join(&name)));
        // Its day is looked at before any other: a stray copy in a later folder (which a walk,
        // newest first, would meet first) is not taken.
        let later = home.path().join("sessions/2027/01/01");
        std::fs::create_dir_all(&later).unwrap();
        std::fs::write(later.join(format!("rollout-stray-{id}.jsonl")), b"{}\n").unwrap();
        assert_eq!(codex_rollout(home.path(), id), Some(day.join(&name)));
        // A Codex in a zone behind this one filed it under the day before.
        let late = "01a22f02-2740-7000-8000-000000000001"; // 2026-12-01T00:30:00Z
        assert_eq!(
            created_at(late).unwrap().to_rfc3339(),
            "2026-12-01T00:30:00+00:00"
        );
        let before = home.path().join("sessions/2026/11/30");
        std::fs::create_dir_all(&before).unwrap();
        std::fs::write(later.join(format!("rollout-stray-{late}.jsonl")), b"{}\n").unwrap();
        std::fs::write(before.join(format!("rollout-x-{late}.jsonl")), b"{}\n").unwrap();
        assert_eq!(
            codex_rollout(home.path(), late),
            Some(before.join(format!("rollout-x-{late}.jsonl")))
        );
        // Elsewhere: another day (a moved clock), or archived.
        let other = "01a2313a-35f8-7cb3-ac16-2a856813b495";
        let far = home.path().join("sessions/2025/01/02");
        std::fs::create_dir_all(&far).unwrap();
        std::fs::write(far.join(format!("rollout-x-{other}.jsonl")), b"{}\n").unwrap();
        assert!(codex_rollout(home.path(), other).is_some());
        let archived = home.path().join("archived_sessions");
        std::fs::create_dir_all(&archived).unwrap();
        std::fs::write(archived.join("rollout-y-not-a-uuid7.jsonl"), b"{}\n").unwrap();
        assert!(codex_rollout(home.path(), "not-a-uuid7").is_some());
        assert_eq!(codex_rollout(home.path(), "../../etc"), None);
        assert_eq!(
            codex_rollout(home.path(), "01a2313a-0000-7000-8000-000000000000"),
            None
        );
        assert_eq!(codex_rollout(&home.path().join("missing"), id), None);
    }

    #[test]
    fn gemini_chats_are_found_by_session_id_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let gemini = dir.path();
        let chats = gemini.join("tmp/gemini-proj/chats");
        std::fs::create_dir_all(&chats).unwrap();
        std::fs::copy(
            format!("{SAMPLES}gemini-projects.json"),
            gemini.join("projects.json"),
        )
        .unwrap();
        let name = "session-2026-12-01T10-54-7a9ca440.jsonl";
        std::fs::copy(
            format!("{SAMPLES}gemini-session-2026-12-01T10-54-7a9ca440.jsonl"),
            chats.join(name),
        )
        .unwrap();
        let id = "7a9ca440-ea38-4724-a496-49e63d279cdd";
        assert_eq!(
            gemini_chat(gemini, id, "/home/user/proj/gemini-proj"),
            Some(chats.join(name))
        );
        // From another directory: every project is looked at.
        assert_eq!(
            gemini_chat(gemini, id, "/elsewhere"),
            Some(chats.join(name))
        );
        // Same first 8 characters, another session: not it.
        assert_eq!(
            gemini_chat(gemini, "7a9ca440-0000-4000-8000-000000000000", "/x"),
            None
        );
        assert_eq!(gemini_chat(gemini, "../../x", "/x"), None);
    }
}
