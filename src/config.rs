//! `config.yaml`: typed settings with the guide's defaults, and `config get/set` by dotted key.
//! serde_yaml stays inside this module so that replacing it touches one file.

use std::path::{Path, PathBuf};

use serde_json::Value as Json;
use serde_yaml::{Mapping, Value as Yaml};

use crate::domain::{add_tags, normalize_tag, Backend};
use crate::error::{Error, Result};
use crate::fsio::{ensure_private_dir, write_atomic};
use crate::usage::pricing::Price;

/// The settings clinvk reads, with the guide's defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Days to keep sessions after their last use; 0 keeps them forever.
    pub retention_days: u64,
    pub store_token_usage: bool,
    /// Tags for new sessions, as written: `${VAR}` is expanded when a session is created.
    pub default_tags: Vec<String>,
    /// The backend of `clinvk PROMPT` without `-b`; None falls back to $CLINVK_BACKEND, then claude.
    pub default_backend: Option<Backend>,
    /// `backends.<name>.command`: the executable to run instead of `<name>` from $PATH.
    pub commands: Vec<(Backend, String)>,
    /// `session.token_budget`: tokens per budget period, for `sessions stats --period`.
    pub token_budget: Option<u64>,
    /// `session.cost_budget_usd`: US dollars per budget period.
    pub cost_budget_usd: Option<f64>,
    /// `pricing:`: prices per million tokens by model id, over the embedded table.
    pub pricing: Vec<(String, Price)>,
    /// `run.timeout`: how long a backend CLI may run; None for no limit.
    pub run_timeout: Option<std::time::Duration>,
    /// `import.auto`: list, show, stats, resume and `-c` first catch up with the CLIs'
    /// transcripts.
    pub import_auto: bool,
    /// `import.<name>.enabled` and `import.<name>.dir`: which CLIs' transcripts to import, and
    /// from where when not their usual place.
    pub import_sources: Vec<ImportSource>,
}

/// One CLI's transcripts as the config sets them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportSource {
    pub backend: Backend,
    pub enabled: bool,
    /// The CLI's data directory (`~/.claude`, `~/.codex`, `~/.gemini`) to read instead.
    pub dir: Option<String>,
}

impl Settings {
    /// The config's word on `backend`'s transcripts (enabled, from their usual place, if the
    /// file says nothing).
    pub fn import_source(&self, backend: Backend) -> ImportSource {
        self.import_sources
            .iter()
            .find(|s| s.backend == backend)
            .cloned()
            .unwrap_or_else(|| ImportSource::usual(backend))
    }
}

impl ImportSource {
    /// Read, from the CLI's usual place.
    fn usual(backend: Backend) -> ImportSource {
        ImportSource {
            backend,
            enabled: true,
            dir: None,
        }
    }
}

impl Settings {
    pub fn command(&self, backend: Backend) -> Option<&str> {
        self.commands
            .iter()
            .find(|(b, _)| *b == backend)
            .map(|(_, c)| c.as_str())
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            retention_days: 30,
            store_token_usage: true,
            default_tags: Vec::new(),
            default_backend: None,
            commands: Vec::new(),
            token_budget: None,
            cost_budget_usd: None,
            pricing: Vec::new(),
            run_timeout: Some(DEFAULT_TIMEOUT),
            import_auto: true,
            import_sources: Backend::ALL
                .iter()
                .copied()
                .map(ImportSource::usual)
                .collect(),
        }
    }
}

/// `run.timeout` when not set: long enough for real work, short enough that a CLI retrying a
/// dead network forever (Codex does) is stopped the same day.
pub const DEFAULT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30 * 60);
const DEFAULT_TIMEOUT_TEXT: &str = "30m";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Days,
    Bool,
    Tags,
    /// A backend name, or null for "not set".
    Backend,
    /// A program (a path, `~/...`, or a name looked up on $PATH), or null for "not set".
    Command,
    /// A positive whole number of tokens, or null for "no budget".
    Tokens,
    /// A positive amount of US dollars, or null for "no budget".
    Dollars,
    /// Model id -> {input, output, cache_read, cache_write} in USD per million tokens.
    Pricing,
    /// A duration such as `30m`, or 0 for none.
    Timeout,
    /// A directory (a path or `~/...`), or null for "the usual place".
    Dir,
}

struct Key {
    name: &'static str,
    kind: Kind,
}

/// The names of the keys `config get/set` accepts (for shell completion).
pub fn key_names() -> impl Iterator<Item = &'static str> {
    KEYS.iter().map(|k| k.name)
}

/// Every key `config get/set` accepts.
const KEYS: &[Key] = &[
    Key {
        name: "session.retention_days",
        kind: Kind::Days,
    },
    Key {
        name: "session.store_token_usage",
        kind: Kind::Bool,
    },
    Key {
        name: "session.default_tags",
        kind: Kind::Tags,
    },
    Key {
        name: "default_backend",
        kind: Kind::Backend,
    },
    Key {
        name: "backends.claude.command",
        kind: Kind::Command,
    },
    Key {
        name: "backends.codex.command",
        kind: Kind::Command,
    },
    Key {
        name: "backends.gemini.command",
        kind: Kind::Command,
    },
    Key {
        name: "session.token_budget",
        kind: Kind::Tokens,
    },
    Key {
        name: "session.cost_budget_usd",
        kind: Kind::Dollars,
    },
    Key {
        name: "pricing",
        kind: Kind::Pricing,
    },
    Key {
        name: "run.timeout",
        kind: Kind::Timeout,
    },
    Key {
        name: "import.auto",
        kind: Kind::Bool,
    },
    Key {
        name: "import.claude.enabled",
        kind: Kind::Bool,
    },
    Key {
        name: "import.codex.enabled",
        kind: Kind::Bool,
    },
    Key {
        name: "import.gemini.enabled",
        kind: Kind::Bool,
    },
    Key {
        name: "import.claude.dir",
        kind: Kind::Dir,
    },
    Key {
        name: "import.codex.dir",
        kind: Kind::Dir,
    },
    Key {
        name: "import.gemini.dir",
        kind: Kind::Dir,
    },
];

fn key(name: &str) -> Result<&'static Key> {
    KEYS.iter().find(|k| k.name == name).ok_or_else(|| {
        let known: Vec<&str> = KEYS.iter().map(|k| k.name).collect();
        Error::usage(format!(
            "unknown config key '{name}': known keys are {}",
            known.join(", ")
        ))
    })
}

/// The config file as a YAML document, so that `set` keeps every other key.
pub struct ConfigFile {
    path: PathBuf,
    /// The file as read, so that `set` can change one entry and leave comments and layout be.
    text: String,
    doc: Mapping,
}

impl ConfigFile {
    /// Load `path` as a YAML document without checking values, so that `config set` can repair
    /// a bad one. A missing file is an empty config.
    pub fn load_unchecked(path: &Path) -> Result<ConfigFile> {
        let text = match crate::fsio::read_regular_file(path, MAX_CONFIG_BYTES) {
            Ok(crate::fsio::Read::Bytes(_, bytes)) => String::from_utf8(bytes)
                .map_err(|_| invalid(path, "not UTF-8 text; fix it or move it aside".into()))?,
            Ok(crate::fsio::Read::TooBig(meta)) => {
                return Err(invalid(
                    path,
                    format!(
                        "{} KiB, more than a config file may be ({} KiB); fix it or move it aside",
                        meta.len() >> 10,
                        MAX_CONFIG_BYTES >> 10
                    ),
                ))
            }
            // Missing: an empty config. A symlink is followed (dotfile managers), within the
            // same limit.
            Ok(crate::fsio::Read::NotAFile) => match std::fs::metadata(path) {
                Ok(meta) if meta.is_file() && meta.len() <= MAX_CONFIG_BYTES => {
                    std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?
                }
                Ok(meta) if meta.is_file() => {
                    return Err(invalid(
                        path,
                        format!("{} KiB, more than a config file may be", meta.len() >> 10),
                    ));
                }
                Ok(_) => {
                    return Err(invalid(path, "not a regular file; move it aside".into()));
                }
                Err(_) => String::new(),
            },
            Err(e) => return Err(Error::io(path, e)),
        };
        // serde_yaml takes seconds (and gigabytes) on deeply nested or huge input: refuse it
        // first, for every command reads this file.
        if let Some(depth) = too_deep(&text) {
            return Err(invalid(
                path,
                format!("nested more than {depth} levels deep; fix it or move it aside"),
            ));
        }
        let doc = match serde_yaml::from_str::<Yaml>(&text) {
            Ok(Yaml::Mapping(map)) => map,
            Ok(Yaml::Null) => Mapping::new(),
            Ok(_) => {
                return Err(invalid(
                    path,
                    "the top level must be a mapping of keys (e.g. `session:`)".into(),
                ))
            }
            Err(e) => {
                return Err(invalid(
                    path,
                    format!("not valid YAML ({e}); fix it or move it aside"),
                ))
            }
        };
        Ok(ConfigFile {
            path: path.to_path_buf(),
            text,
            doc,
        })
    }

    /// Load `path` and check every known setting's value.
    pub fn load(path: &Path) -> Result<ConfigFile> {
        let file = Self::load_unchecked(path)?;
        file.settings()?;
        Ok(file)
    }

    /// The typed settings, defaults filled in.
    pub fn settings(&self) -> Result<Settings> {
        // `get` has checked each value's type, so the conversions cannot fail.
        Ok(Settings {
            retention_days: self
                .get("session.retention_days")?
                .as_u64()
                .unwrap_or_default(),
            store_token_usage: self
                .get("session.store_token_usage")?
                .as_bool()
                .unwrap_or_default(),
            default_tags: serde_json::from_value(self.get("session.default_tags")?)
                .unwrap_or_default(),
            default_backend: self
                .get("default_backend")?
                .as_str()
                .and_then(|b| b.parse().ok()),
            commands: Backend::ALL
                .iter()
                .filter_map(|b| {
                    let value = self.get(&format!("backends.{b}.command"));
                    value
                        .map(|v| v.as_str().map(|c| (*b, c.to_string())))
                        .transpose()
                })
                .collect::<Result<_>>()?,
            token_budget: self.get("session.token_budget")?.as_u64(),
            cost_budget_usd: self.get("session.cost_budget_usd")?.as_f64(),
            pricing: match self.lookup("pricing") {
                Some(value) => pricing(value).map_err(|message| invalid(&self.path, message))?,
                None => Vec::new(),
            },
            run_timeout: self
                .get("run.timeout")?
                .as_str()
                .and_then(|t| crate::timespec::parse_timeout(t).ok())
                .flatten(),
            import_auto: self.get("import.auto")?.as_bool().unwrap_or(true),
            import_sources: Backend::ALL
                .iter()
                .map(|b| {
                    Ok(ImportSource {
                        backend: *b,
                        enabled: self
                            .get(&format!("import.{b}.enabled"))?
                            .as_bool()
                            .unwrap_or(true),
                        dir: self
                            .get(&format!("import.{b}.dir"))?
                            .as_str()
                            .map(str::to_string),
                    })
                })
                .collect::<Result<_>>()?,
        })
    }

    /// The effective value of `name` (the default when the file does not set it).
    pub fn get(&self, name: &str) -> Result<Json> {
        let key = key(name)?;
        match self.lookup(name) {
            Some(value) => check(key, value).map_err(|message| invalid(&self.path, message)),
            None => Ok(default_of(key)),
        }
    }

    /// All known keys with their effective values.
    pub fn effective(&self) -> Result<Vec<(&'static str, Json)>> {
        KEYS.iter()
            .map(|k| Ok((k.name, self.get(k.name)?)))
            .collect()
    }

    /// `config set`: load the file at `path`, set `name` to `text` and save it, all under the
    /// config's lock (`.<file name>.lock` beside it), so that two at once cannot lose either
    /// change. The file is loaded unchecked, so that a bad value can be repaired.
    pub fn set_in(
        path: &Path,
        name: &str,
        text: &str,
        timeout: std::time::Duration,
    ) -> Result<Json> {
        // A bad key or value is refused before anything is touched, the lock file included.
        let key = key(name)?;
        let value: Yaml = serde_yaml::from_str(text)
            .map_err(|e| Error::usage(format!("'{text}' is not a valid value ({e})")))?;
        check(key, &value).map_err(Error::Usage)?;
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        ensure_private_dir(dir, false)?;
        let file_name = path
            .file_name()
            .map_or("config.yaml".into(), |n| n.to_string_lossy().into_owned());
        let lock_path = dir.join(format!(".{file_name}.lock"));
        let _held = crate::lock::acquire(&lock_path, crate::lock::LockMode::Exclusive, timeout)?;
        // Every write of the file holds this lock while its temp file exists: any there now was
        // left by an interrupted `config set`. (A best effort: a leftover is harmless.)
        let _ = crate::fsio::remove_temp_files(dir, |target| target == file_name);
        Self::load_unchecked(path)?.set(name, text)
    }

    /// Set `name` to `text` (parsed as YAML: `30`, `true`, `'["a", "b"]'`) and save the file.
    pub fn set(&mut self, name: &str, text: &str) -> Result<Json> {
        let key = key(name)?;
        let value: Yaml = serde_yaml::from_str(text)
            .map_err(|e| Error::usage(format!("'{text}' is not a valid value ({e})")))?;
        let checked = check(key, &value).map_err(Error::Usage)?;
        let yaml = serde_yaml::to_value(&checked).expect("JSON values convert to YAML");
        let mut map = &mut self.doc;
        let mut parts = name.split('.').peekable();
        while let Some(part) = parts.next() {
            let part_key = Yaml::String(part.to_string());
            if parts.peek().is_none() {
                map.insert(part_key, yaml);
                break;
            }
            let entry = map
                .entry(part_key)
                .or_insert_with(|| Yaml::Mapping(Mapping::new()));
            if !entry.is_mapping() {
                *entry = Yaml::Mapping(Mapping::new());
            }
            map = entry.as_mapping_mut().expect("just made a mapping");
        }
        let edited = edit_in_place(&self.text, name, &checked.to_string());
        self.save(edited)?;
        Ok(checked)
    }

    /// Write the document: as `edited` (the old text with one entry changed) when that reads
    /// back as exactly the document, else re-serialised in normal form (comments lost).
    fn save(&mut self, edited: Option<String>) -> Result<()> {
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            ensure_private_dir(dir, false)?;
        }
        let text = edited
            .filter(|t| matches!(serde_yaml::from_str::<Yaml>(t), Ok(Yaml::Mapping(m)) if m == self.doc))
            .unwrap_or_else(|| serde_yaml::to_string(&self.doc).expect("a YAML mapping serializes"));
        // A config.yaml that is a symlink (dotfile managers) is written through, not replaced.
        let target = match std::fs::symlink_metadata(&self.path) {
            Ok(meta) if meta.file_type().is_symlink() => match std::fs::canonicalize(&self.path) {
                Ok(target) => target,
                // A dangling link: create the file it points to.
                Err(_) => {
                    let link =
                        std::fs::read_link(&self.path).map_err(|e| Error::io(&self.path, e))?;
                    self.path
                        .parent()
                        .map_or(link.clone(), |dir| dir.join(&link))
                }
            },
            _ => self.path.clone(),
        };
        write_atomic(&target, text.as_bytes())?;
        self.text = text;
        Ok(())
    }

    fn lookup(&self, name: &str) -> Option<&Yaml> {
        let mut parts = name.split('.');
        let mut value = self.doc.get(parts.next()?)?;
        for part in parts {
            value = value.as_mapping()?.get(part)?;
        }
        (!value.is_null()).then_some(value)
    }
}

/// `text` with the dotted key `name` (any depth) set to `value` (a YAML flow value) by editing
/// only that entry's lines, for block-style files like the guide's; None for shapes this does
/// not handle (flow mappings, tabs). The caller checks that the result parses to the intended
/// document before using it.
fn edit_in_place(text: &str, name: &str, value: &str) -> Option<String> {
    let parts: Vec<&str> = name.split('.').collect();
    let lines: Vec<&str> = text.lines().collect();
    if lines.iter().any(|l| l.contains('\t')) {
        return None;
    }
    let indent = |l: &str| l.len() - l.trim_start_matches(' ').len();
    let quiet = |l: &str| {
        let t = l.trim();
        t.is_empty() || t.starts_with('#')
    };
    // What follows `name:` on a line that starts (after its indent) with that key.
    let after_key = |l: &str, name: &str| -> Option<String> {
        l.trim_start()
            .strip_prefix(name)
            .and_then(|rest| rest.strip_prefix(':'))
            .map(str::to_string)
    };
    let mut out: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    let done = |out: Vec<String>| Some(out.join("\n") + "\n");
    // The block being searched: lines lo..hi, whose entries sit at indent `ind`.
    let (mut lo, mut hi, mut ind) = (0, lines.len(), 0);
    for (depth, part) in parts.iter().enumerate() {
        let last = depth + 1 == parts.len();
        let found = (lo..hi).find(|&i| {
            !quiet(lines[i]) && indent(lines[i]) == ind && after_key(lines[i], part).is_some()
        });
        let Some(at) = found else {
            // Not there: add it (and the sections above it) after the block's last entry.
            let mut new: Vec<String> = parts[depth..]
                .iter()
                .enumerate()
                .map(|(k, p)| {
                    let pad = " ".repeat(ind + 2 * k);
                    if depth + k + 1 == parts.len() {
                        format!("{pad}{p}: {value}")
                    } else {
                        format!("{pad}{p}:")
                    }
                })
                .collect();
            let at = if ind == 0 {
                if out.last().is_some_and(|l| !l.trim().is_empty()) {
                    new.insert(0, String::new());
                }
                out.len()
            } else {
                // Not after blank lines or a comment at column 0, which belong to whatever
                // follows.
                let mut at = hi;
                while at > lo && (lines[at - 1].trim().is_empty() || lines[at - 1].starts_with('#'))
                {
                    at -= 1;
                }
                at
            };
            out.splice(at..at, new);
            return done(out);
        };
        if last {
            // The old value: more-indented lines, or `- ` items at the key's own indent.
            let mut stop = at + 1;
            for (i, l) in lines.iter().enumerate().take(hi).skip(at + 1) {
                if !quiet(l) {
                    let item = indent(l) == ind && l.trim_start().starts_with('-');
                    if indent(l) <= ind && !item {
                        break;
                    }
                    stop = i + 1;
                }
            }
            out.splice(at..stop, [format!("{}{part}: {value}", " ".repeat(ind))]);
            return done(out);
        }
        // A section: `part:` alone on its line (a comment may follow), then its entries.
        if !after_key(lines[at], part).is_some_and(|rest| quiet(&rest)) {
            return None;
        }
        let mut end = at + 1;
        while end < hi && (quiet(lines[end]) || indent(lines[end]) > ind) {
            end += 1;
        }
        let child = lines[at + 1..end]
            .iter()
            .find(|l| !quiet(l))
            .map_or(ind + 2, |l| indent(l));
        if child <= ind {
            return None;
        }
        (lo, hi, ind) = (at + 1, end, child);
    }
    None
}

/// The most a config file may hold; the guide's is a few hundred bytes.
const MAX_CONFIG_BYTES: u64 = 1 << 20;
/// The deepest nesting a config file may have (flow brackets, or indentation in steps of two).
const MAX_CONFIG_DEPTH: usize = 64;

/// `Some(limit)` when `text` nests deeper than the limit: flow collections (`[`, `{`) or block
/// indentation. Quotes are not parsed: a bracket in a string counts too, which only matters
/// for strings full of them.
fn too_deep(text: &str) -> Option<usize> {
    let mut depth = 0usize;
    for c in text.chars() {
        match c {
            '[' | '{' => {
                depth += 1;
                if depth > MAX_CONFIG_DEPTH {
                    return Some(MAX_CONFIG_DEPTH);
                }
            }
            ']' | '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    let indented = text
        .lines()
        .any(|l| l.len() - l.trim_start_matches(' ').len() > 2 * MAX_CONFIG_DEPTH);
    indented.then_some(MAX_CONFIG_DEPTH)
}

fn invalid(path: &Path, message: String) -> Error {
    Error::Config {
        path: path.to_path_buf(),
        message,
    }
}

fn default_of(key: &Key) -> Json {
    let d = Settings::default();
    match key.name {
        "session.retention_days" => Json::from(d.retention_days),
        "session.store_token_usage" => Json::from(d.store_token_usage),
        "session.default_tags" => Json::from(d.default_tags),
        "pricing" => Json::Object(Default::default()),
        "run.timeout" => Json::from(DEFAULT_TIMEOUT_TEXT),
        "import.auto"
        | "import.claude.enabled"
        | "import.codex.enabled"
        | "import.gemini.enabled" => Json::from(true),
        // Optional settings: unset means "use the fallback" ($CLINVK_BACKEND, $PATH, no budget).
        _ if is_optional(key.kind) => Json::Null,
        other => unreachable!("no default for {other}: every key in KEYS has one"),
    }
}

/// Validate a value for `key`, as JSON (the form `config get` prints).
fn check(key: &Key, value: &Yaml) -> std::result::Result<Json, String> {
    let shown = serde_yaml::to_string(value)
        .unwrap_or_default()
        .trim()
        .to_string();
    if value.is_null() && is_optional(key.kind) {
        return Ok(Json::Null);
    }
    match key.kind {
        Kind::Backend => value
            .as_str()
            .ok_or_else(|| format!("{} must be a backend name, not '{shown}'", key.name))?
            .parse::<Backend>()
            .map(|b| Json::from(b.as_str()))
            .map_err(|e| format!("{}: {e}", key.name)),
        Kind::Dir => match value.as_str() {
            Some(text) if !text.trim().is_empty() => Ok(Json::from(text)),
            _ => Err(format!(
                "{} must be a directory (e.g. ~/.{}), not '{shown}'",
                key.name,
                key.name.split('.').nth(1).unwrap_or_default()
            )),
        },
        Kind::Command => match value.as_str() {
            Some(text) if !text.trim().is_empty() => Ok(Json::from(text)),
            _ => Err(format!(
                "{} must be the path of the program to run (e.g. /opt/bin/{}), not '{shown}'",
                key.name,
                key.name.split('.').nth(1).unwrap_or_default()
            )),
        },
        Kind::Days => value.as_u64().map(Json::from).ok_or_else(|| {
            format!(
                "{} must be a whole number of days (0 keeps sessions forever), not '{shown}'",
                key.name
            )
        }),
        Kind::Tokens => value
            .as_u64()
            .filter(|n| *n > 0)
            .map(Json::from)
            .ok_or_else(|| {
                format!(
                    "{} must be a whole number of tokens above 0 (or null for none), not '{shown}'",
                    key.name
                )
            }),
        Kind::Dollars => value
            .as_f64()
            .filter(|x| x.is_finite() && *x > 0.0)
            .map(Json::from)
            .ok_or_else(|| {
                format!(
                    "{} must be an amount of US dollars above 0, e.g. 50 or 12.5 (or null for none), not '{shown}'",
                    key.name
                )
            }),
        Kind::Pricing => pricing(value).map(pricing_json),
        Kind::Timeout => check_timeout(key, value, &shown),
        Kind::Bool => value
            .as_bool()
            .map(Json::from)
            .ok_or_else(|| format!("{} must be true or false, not '{shown}'", key.name)),
        Kind::Tags => check_tags(key, value, &shown),
    }
}

/// The prices of `pricing` as the JSON `config get` shows (cache prices only when set).
fn pricing_json(prices: Vec<(String, Price)>) -> Json {
    Json::Object(
        prices
            .into_iter()
            .map(|(model, p)| {
                let mut entry = serde_json::Map::new();
                entry.insert("input".into(), Json::from(p.input));
                entry.insert("output".into(), Json::from(p.output));
                if let Some(r) = p.cache_read {
                    entry.insert("cache_read".into(), Json::from(r));
                }
                if let Some(w) = p.cache_write {
                    entry.insert("cache_write".into(), Json::from(w));
                }
                (model, Json::Object(entry))
            })
            .collect(),
    )
}

fn check_timeout(key: &Key, value: &Yaml, shown: &str) -> std::result::Result<Json, String> {
    let text = match value {
        Yaml::String(text) => text.trim().to_string(),
        Yaml::Number(n) if n.as_u64() == Some(0) => "0".into(),
        _ => String::new(),
    };
    crate::timespec::parse_timeout(&text)
        .map(|_| Json::from(text))
        .map_err(|_| {
            format!(
                "{} must be a duration such as 30m, 90s or 2h, or 0 for none, not '{shown}'",
                key.name
            )
        })
}

fn check_tags(key: &Key, value: &Yaml, shown: &str) -> std::result::Result<Json, String> {
    let items = value.as_sequence().ok_or_else(|| {
        format!(
            "{} must be a list of tags such as '[\"project-x\", \"feature-y\"]', not '{shown}'",
            key.name
        )
    })?;
    let mut tags = Vec::new();
    for item in items {
        let text = item
            .as_str()
            .ok_or_else(|| format!("{}: each tag must be a string", key.name))?;
        let tag = normalize_tag(text).map_err(|e| format!("{}: {e}", key.name))?;
        add_tags(&mut tags, [tag]);
    }
    Ok(Json::from(tags))
}

fn is_optional(kind: Kind) -> bool {
    matches!(
        kind,
        Kind::Backend | Kind::Command | Kind::Tokens | Kind::Dollars | Kind::Dir
    )
}

/// `pricing:` entries: model id -> prices per million tokens.
fn pricing(value: &Yaml) -> std::result::Result<Vec<(String, Price)>, String> {
    const EXAMPLE: &str =
        "e.g. `pricing: {my-model: {input: 3, output: 15, cache_read: 0.3, cache_write: 3.75}}` (USD per million tokens)";
    if value.is_null() {
        return Ok(Vec::new());
    }
    let map = value
        .as_mapping()
        .ok_or_else(|| format!("pricing must map model ids to prices, {EXAMPLE}"))?;
    let mut out = Vec::new();
    for (model, price) in map {
        let model = model
            .as_str()
            .filter(|m| !m.trim().is_empty())
            .ok_or_else(|| {
                format!("pricing: each model id must be a non-empty string, {EXAMPLE}")
            })?;
        let price: Price = serde_yaml::from_value(price.clone())
            .map_err(|e| format!("pricing.{model}: {e}; {EXAMPLE}"))?;
        price
            .validate()
            .map_err(|e| format!("pricing.{model}: {e}"))?;
        out.push((model.trim().to_string(), price));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_keeps_other_keys_and_validates() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.yaml");
        std::fs::write(
            &path,
            "backends:\n  claude:\n    command: /opt/claude\nsession:\n  retention_days: 7\n",
        )
        .unwrap();
        let mut file = ConfigFile::load(&path).unwrap();
        file.set("session.default_tags", r#"["project-x", "feature-y"]"#)
            .unwrap();
        let again = ConfigFile::load(&path).unwrap();
        let s = again.settings().unwrap();
        assert_eq!(s.default_tags, vec!["project-x", "feature-y"]);
        assert_eq!(s.retention_days, 7);
        assert!(std::fs::read_to_string(&path)
            .unwrap()
            .contains("/opt/claude"));
        assert!(file.set("session.retention_days", "-1").is_err());
        assert!(file.set("session.store_token_usage", "maybe").is_err());
        assert!(file.set("session.nope", "1").is_err());
        assert_eq!(ConfigFile::load(&path).unwrap().settings().unwrap(), s);
    }

    #[test]
    fn set_edits_one_entry_and_keeps_comments() {
        let guide = "# clinvk settings\nsession:\n  # Days to keep sessions (0 = keep forever)\n  retention_days: 30\n\n  # Tags automatically added to new sessions\n  default_tags:\n    - \"clinvk\"\n    - \"${USER}\"\n\n  store_token_usage: true\n";
        let edited = edit_in_place(guide, "session.default_tags", r#"["a","b"]"#).unwrap();
        assert_eq!(
            edited,
            "# clinvk settings\nsession:\n  # Days to keep sessions (0 = keep forever)\n  retention_days: 30\n\n  # Tags automatically added to new sessions\n  default_tags: [\"a\",\"b\"]\n\n  store_token_usage: true\n"
        );
        let edited = edit_in_place(guide, "session.retention_days", "7").unwrap();
        assert!(
            edited.contains("  # Days to keep sessions (0 = keep forever)\n  retention_days: 7\n")
        );
        let added = edit_in_place("other: 1 # keep\n", "session.retention_days", "7").unwrap();
        assert_eq!(added, "other: 1 # keep\n\nsession:\n  retention_days: 7\n");
        let inserted = edit_in_place(
            "session:\n  retention_days: 3\n",
            "session.store_token_usage",
            "false",
        )
        .unwrap();
        assert_eq!(
            inserted,
            "session:\n  retention_days: 3\n  store_token_usage: false\n"
        );
    }

    #[test]
    fn a_new_key_goes_before_the_next_sections_comment() {
        let edited = edit_in_place(
            "session:\n  retention_days: 30\n\n# Backend settings\nbackends: {}\n",
            "session.store_token_usage",
            "false",
        )
        .unwrap();
        assert_eq!(
            edited,
            "session:\n  retention_days: 30\n  store_token_usage: false\n\n# Backend settings\nbackends: {}\n"
        );
    }

    #[test]
    fn top_level_and_nested_keys_are_edited_in_place() {
        let text = "# mine\ndefault_backend: claude # the usual\nbackends:\n  # local builds\n  claude:\n    command: /opt/claude\n\n# retention\nsession:\n  retention_days: 7\n";
        let edited = edit_in_place(text, "backends.claude.command", "/usr/bin/claude").unwrap();
        assert_eq!(edited, text.replace("/opt/claude", "/usr/bin/claude"));
        let edited = edit_in_place(text, "default_backend", "codex").unwrap();
        assert_eq!(
            edited,
            text.replace(
                "default_backend: claude # the usual",
                "default_backend: codex"
            )
        );
        let added = edit_in_place(text, "backends.gemini.command", "gem").unwrap();
        assert_eq!(
            added,
            text.replace(
                "    command: /opt/claude\n",
                "    command: /opt/claude\n  gemini:\n    command: gem\n"
            )
        );
        let fresh = edit_in_place("", "backends.codex.command", "/x/codex").unwrap();
        assert_eq!(fresh, "backends:\n  codex:\n    command: /x/codex\n");
        // A flow mapping is left to the full rewrite.
        assert_eq!(
            edit_in_place("backends: {}\n", "backends.codex.command", "c"),
            None
        );
    }

    #[test]
    fn backend_keys_are_checked_and_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.yaml");
        std::fs::write(&path, "backends: {}\n").unwrap();
        let mut file = ConfigFile::load(&path).unwrap();
        assert_eq!(file.get("default_backend").unwrap(), Json::Null);
        assert!(file.set("default_backend", "copilot").is_err());
        file.set("default_backend", "gemini").unwrap();
        file.set("backends.codex.command", "~/bin/codex").unwrap();
        assert!(file.set("backends.codex.command", "''").is_err());
        assert!(file.set("backends.cursor.command", "x").is_err());
        let s = ConfigFile::load(&path).unwrap().settings().unwrap();
        assert_eq!(s.default_backend, Some(Backend::Gemini));
        assert_eq!(s.command(Backend::Codex), Some("~/bin/codex"));
        assert_eq!(s.command(Backend::Claude), None);
        file.set("default_backend", "null").unwrap();
        let s = ConfigFile::load(&path).unwrap().settings().unwrap();
        assert_eq!(s.default_backend, None);
    }

    #[test]
    fn invalid_files_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.yaml");
        for text in [
            "session: [",
            "- a\n- b\n",
            "session:\n  retention_days: thirty\n",
        ] {
            std::fs::write(&path, text).unwrap();
            assert!(
                matches!(ConfigFile::load(&path), Err(Error::Config { .. })),
                "{text}"
            );
        }
        std::fs::write(&path, "").unwrap();
        assert_eq!(
            ConfigFile::load(&path).unwrap().settings().unwrap(),
            Settings::default()
        );
    }
}
