//! Where each CLI keeps its transcripts, and finding them all.
//! - Claude Code: `$CLAUDE_CONFIG_DIR` (a comma-separated list), else `~/.claude` and
//!   `~/.config/claude`; `projects/<dir>/<session id>.jsonl`, and the Task subagents'
//!   `projects/<dir>/<session id>/subagents/*.jsonl`.
//! - Codex: `$CODEX_HOME`, else `~/.codex`; `sessions/YYYY/MM/DD/rollout-*.jsonl` (or
//!   `.jsonl.zst`, compressed once idle for a week) and `archived_sessions/`.
//! - Gemini CLI: `$GEMINI_CLI_HOME/.gemini`, else `~/.gemini`; `tmp/<project>/chats/
//!   session-*.jsonl` (or the legacy `.json`), subagents' chats in `chats/<session id>/`, and
//!   the project's directory in `projects.json` or `tmp/<project>/.project_root`.
//!
//! `import.<cli>.dir` replaces the usual place; `import.<cli>.enabled: false` leaves a CLI out.
//! Directories are walked without following symbolic links below the roots (a link loop
//! cannot hang the walk); what cannot be read is reported and the rest walked.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::config::Settings;
use crate::domain::Backend;
use crate::store::files::FileStamp;

/// One transcript file found.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    pub backend: Backend,
    pub path: PathBuf,
    /// A subagent's file belongs to the conversation of its parent session (this id).
    pub parent: Option<String>,
    /// Gemini: the project's directory, from the CLI's registry (its chat files do not say).
    pub workdir: Option<String>,
    pub stamp: FileStamp,
}

/// Something in the CLIs' directories that could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skip {
    pub path: PathBuf,
    pub reason: String,
}

/// The CLIs' data directories to read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Roots {
    pub claude: Vec<PathBuf>,
    pub codex: Option<PathBuf>,
    pub gemini: Option<PathBuf>,
}

impl Roots {
    /// From the config (`import.<cli>.dir`, `import.<cli>.enabled`), then the CLIs' own
    /// variables, then the home directory.
    pub fn new(settings: &Settings) -> Roots {
        let usual = crate::transcripts::locate::Homes::from_env();
        let configured = |b: Backend| {
            let source = settings.import_source(b);
            source
                .enabled
                .then(|| source.dir.map(|d| crate::paths::expand_home(&d)))
        };
        let claude = match configured(Backend::Claude) {
            None => Vec::new(),
            Some(Some(dir)) => vec![dir],
            Some(None) => usual.claude,
        };
        Roots {
            claude: dedupe(claude.into_iter().map(settle).collect()),
            codex: configured(Backend::Codex)
                .and_then(|dir| dir.or(usual.codex))
                .map(settle),
            gemini: configured(Backend::Gemini)
                .and_then(|dir| dir.or(usual.gemini))
                .map(settle),
        }
    }

    /// The CLIs looked for.
    pub fn backends(&self) -> Vec<Backend> {
        let mut all = Vec::new();
        if !self.claude.is_empty() {
            all.push(Backend::Claude);
        }
        all.extend(self.codex.as_ref().map(|_| Backend::Codex));
        all.extend(self.gemini.as_ref().map(|_| Backend::Gemini));
        all
    }

    /// Leave out the CLIs not in `only` (all when empty).
    pub fn only(mut self, only: &[Backend]) -> Roots {
        if !only.is_empty() {
            if !only.contains(&Backend::Claude) {
                self.claude.clear();
            }
            if !only.contains(&Backend::Codex) {
                self.codex = None;
            }
            if !only.contains(&Backend::Gemini) {
                self.gemini = None;
            }
        }
        self
    }

    /// The directories looked in, as one text (what a look's fingerprint is kept under).
    pub fn key(&self) -> String {
        let name = |p: &PathBuf| p.display().to_string();
        format!(
            "claude={};codex={};gemini={}",
            self.claude.iter().map(name).collect::<Vec<_>>().join(","),
            self.codex.as_ref().map(name).unwrap_or_default(),
            self.gemini.as_ref().map(name).unwrap_or_default()
        )
    }

    /// Every directory to look in.
    pub fn all(&self) -> Vec<PathBuf> {
        self.claude
            .iter()
            .chain(&self.codex)
            .chain(&self.gemini)
            .cloned()
            .collect()
    }

    /// Every transcript file under the roots, and what could not be read.
    /// The three CLIs' directories are walked at once (a walk is a stat per file, and every
    /// read of sessions starts with one).
    pub fn discover(&self) -> (Vec<Found>, Vec<Skip>) {
        let walks: Vec<Walk> = std::thread::scope(|scope| {
            let claude = scope.spawn(|| {
                let mut walk = Walk::default();
                for root in &self.claude {
                    walk.claude(root);
                }
                walk
            });
            let codex = scope.spawn(|| {
                let mut walk = Walk::default();
                if let Some(root) = &self.codex {
                    for sub in ["sessions", "archived_sessions"] {
                        walk.codex(&root.join(sub), 0);
                    }
                }
                walk
            });
            let mut gemini = Walk::default();
            if let Some(root) = &self.gemini {
                gemini.gemini(root);
            }
            vec![
                claude.join().unwrap_or_default(),
                codex.join().unwrap_or_default(),
                gemini,
            ]
        });
        let mut found = Vec::new();
        let mut skipped = Vec::new();
        for walk in walks {
            found.extend(walk.found);
            skipped.extend(walk.skipped);
        }
        (found, skipped)
    }
}

impl Roots {
    /// A Claude Code conversation's own transcript (`<root>/projects/<project>/<id>.jsonl`,
    /// under one of the roots) and its subagents' files, found as a walk would find them
    /// (the same paths, so the same records in the index). None for any other path.
    pub fn claude_conversation(&self, transcript: &Path) -> Option<Vec<Found>> {
        let project = std::fs::canonicalize(transcript.parent()?).ok()?;
        let name = transcript.file_name()?.to_str()?;
        let id = name.strip_suffix(".jsonl")?;
        if !self
            .claude
            .iter()
            .any(|r| Some(r.join("projects").as_path()) == project.parent())
        {
            return None;
        }
        let path = project.join(name);
        let meta = std::fs::metadata(&path).ok().filter(|m| m.is_file())?;
        let mut walk = Walk::default();
        walk.found.push(Found {
            backend: Backend::Claude,
            path,
            parent: None,
            workdir: None,
            stamp: FileStamp::of(&meta),
        });
        walk.claude_subagents(&project.join(id), id);
        Some(walk.found)
    }
}

/// What a look at the directories found, in one number: any file added, removed, grown or
/// touched changes it. (std's hasher with its fixed keys: the same in every run of a build; a
/// build with another one only compares the files one by one once.)
pub fn fingerprint(found: &[Found]) -> i64 {
    use std::hash::{Hash, Hasher};
    use std::os::unix::ffi::OsStrExt;
    let mut h = std::hash::DefaultHasher::new();
    for f in found {
        f.backend.as_str().hash(&mut h);
        f.path.as_os_str().as_bytes().hash(&mut h);
        f.parent.hash(&mut h);
        f.workdir.hash(&mut h);
        (f.stamp.ino, f.stamp.size, f.stamp.mtime_ns).hash(&mut h);
    }
    h.finish() as i64
}

/// A root as one name for it (links resolved, relative to nothing), so that the files under it
/// keep the names the index knows them by however the directory is reached (`HOME=.`, a link).
fn settle(root: PathBuf) -> PathBuf {
    std::fs::canonicalize(&root)
        .or_else(|_| std::path::absolute(&root))
        .unwrap_or(root)
}

/// The same directory named twice (`~/.claude` and a `$CLAUDE_CONFIG_DIR` pointing at it, once
/// settled) is read once.
fn dedupe(roots: Vec<PathBuf>) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = Vec::new();
    for root in roots {
        if !out.contains(&root) {
            out.push(root);
        }
    }
    out
}

#[derive(Default)]
struct Walk {
    found: Vec<Found>,
    skipped: Vec<Skip>,
}

impl Walk {
    /// The entries of `dir` as (name, entry, kind), not following links; their kind comes with
    /// the directory listing (no stat). A missing directory has none; one that cannot be read
    /// is reported.
    fn entries(&mut self, dir: &Path) -> Vec<(String, std::fs::DirEntry, std::fs::FileType)> {
        let reader = match std::fs::read_dir(dir) {
            Ok(reader) => reader,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
            Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => return Vec::new(),
            Err(e) => {
                self.skipped.push(Skip {
                    path: dir.to_path_buf(),
                    reason: format!("cannot be read ({e})"),
                });
                return Vec::new();
            }
        };
        let mut out = Vec::new();
        for entry in reader.flatten() {
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            let name = entry.file_name().to_string_lossy().into_owned();
            out.push((name, entry, kind));
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// A transcript file found (its stamp from a stat relative to its directory); a link to
    /// one is read through (its target's stamp), a link to a directory is not followed.
    fn file(
        &mut self,
        backend: Backend,
        entry: &std::fs::DirEntry,
        kind: std::fs::FileType,
    ) -> Option<usize> {
        let meta = if kind.is_symlink() {
            match std::fs::metadata(entry.path()) {
                Ok(m) if m.is_file() => m,
                _ => return None,
            }
        } else if kind.is_file() {
            entry.metadata().ok()?
        } else {
            return None;
        };
        self.found.push(Found {
            backend,
            path: entry.path(),
            parent: None,
            workdir: None,
            stamp: FileStamp::of(&meta),
        });
        Some(self.found.len() - 1)
    }

    fn claude(&mut self, root: &Path) {
        for (_, project, kind) in self.entries(&root.join("projects")) {
            if !kind.is_dir() {
                continue;
            }
            for (name, entry, kind) in self.entries(&project.path()) {
                if kind.is_dir() {
                    self.claude_subagents(&entry.path(), &name);
                } else if name.ends_with(".jsonl") {
                    self.file(Backend::Claude, &entry, kind);
                }
            }
        }
    }

    /// `<session id>/subagents/*.jsonl` in `dir` (the session's directory): the Task subagents
    /// of session `id`.
    fn claude_subagents(&mut self, dir: &Path, id: &str) {
        for (sub, entry, kind) in self.entries(&dir.join("subagents")) {
            if sub.ends_with(".jsonl") {
                if let Some(i) = self.file(Backend::Claude, &entry, kind) {
                    self.found[i].parent = Some(id.to_string());
                }
            }
        }
    }

    /// `sessions/YYYY/MM/DD/` (or anything nested a few levels) with `rollout-*` files.
    fn codex(&mut self, dir: &Path, depth: usize) {
        for (name, entry, kind) in self.entries(dir) {
            if kind.is_dir() && depth < 4 {
                self.codex(&entry.path(), depth + 1);
            } else if name.starts_with("rollout-")
                && (name.ends_with(".jsonl") || name.ends_with(".jsonl.zst"))
            {
                self.file(Backend::Codex, &entry, kind);
            }
        }
    }

    fn gemini(&mut self, root: &Path) {
        let registry = gemini_projects(root);
        for (slug, project, kind) in self.entries(&root.join("tmp")) {
            if !kind.is_dir() {
                continue;
            }
            let project = project.path();
            let workdir = registry.get(&slug).cloned().or_else(|| {
                std::fs::read_to_string(project.join(".project_root"))
                    .ok()
                    .map(|t| t.trim().to_string())
                    .filter(|t| !t.is_empty())
            });
            for (name, entry, kind) in self.entries(&project.join("chats")) {
                if kind.is_dir() {
                    // `chats/<session id>/*.jsonl`: subagents' chats of that session.
                    for (sub, entry, kind) in self.entries(&entry.path()) {
                        if sub.ends_with(".jsonl") {
                            if let Some(i) = self.file(Backend::Gemini, &entry, kind) {
                                self.found[i].parent = Some(name.clone());
                                self.found[i].workdir = workdir.clone();
                            }
                        }
                    }
                } else if name.starts_with("session-")
                    && (name.ends_with(".jsonl") || name.ends_with(".json"))
                {
                    if let Some(i) = self.file(Backend::Gemini, &entry, kind) {
                        self.found[i].workdir = workdir.clone();
                    }
                }
            }
        }
    }
}

/// `projects.json`: `{"projects": {"<project root>": "<slug>"}}`, as slug -> root.
fn gemini_projects(root: &Path) -> HashMap<String, String> {
    let Some(bytes) = crate::transcripts::locate::read(&root.join("projects.json")) else {
        return HashMap::new();
    };
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
        return HashMap::new();
    };
    value["projects"]
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(dir, slug)| Some((slug.as_str()?.to_string(), dir.clone())))
        .collect()
}
