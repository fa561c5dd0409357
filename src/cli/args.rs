//! Flags that several commands share, and how each becomes a typed value before it reaches the
//! store or a run: sessions selected by backend, status, tags and directory; a time range; the
//! options of every command that runs a prompt.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use clap::Args;

use crate::domain::{normalize_tag, Backend, Origin, Status};
use crate::error::{Error, Result};
use crate::store::{Filter, TimeRange};
use crate::timespec::{parse_instant_in, Bound, Zone};

/// Which sessions: the filters `sessions list` and `sessions stats` share.
#[derive(Debug, Args)]
pub struct SessionFilterArgs {
    /// Only this backend: claude, codex or gemini
    #[arg(long, short = 'b', value_parser = parse_arg::<Backend>, add = clap_complete::engine::ArgValueCandidates::new(crate::cli::complete::backends))]
    pub backend: Option<Backend>,
    /// Only this status: created, active, completed or error
    #[arg(long, value_parser = parse_arg::<Status>)]
    pub status: Option<Status>,
    /// Only sessions with this tag (repeat for several: all must match)
    #[arg(long = "tag", value_name = "TAG", value_parser = tag_arg, add = clap_complete::engine::ArgValueCompleter::new(crate::cli::complete::tags))]
    pub tags: Vec<String>,
    /// Only sessions whose working directory is the current one
    #[arg(long, conflicts_with = "workdir")]
    pub here: bool,
    /// Only sessions whose working directory is DIR
    #[arg(long, value_name = "DIR")]
    pub workdir: Option<PathBuf>,
    /// Only sessions run through clinvk (clinvk), or imported from the CLIs' transcripts (imported)
    #[arg(long, value_name = "ORIGIN", value_parser = parse_arg::<Origin>)]
    pub origin: Option<Origin>,
    /// Only sessions started on this machine (its host name, as `sessions show` gives it)
    #[arg(long, value_name = "HOST", value_parser = host_arg, add = clap_complete::engine::ArgValueCompleter::new(crate::cli::complete::hosts))]
    pub host: Option<String>,
}

impl SessionFilterArgs {
    /// The sessions these flags select.
    pub fn to_filter(&self) -> Result<Filter> {
        let workdir = match (&self.workdir, self.here) {
            (Some(dir), _) => Some(normalize_dir(dir)?),
            (None, true) => Some(normalize_dir(Path::new("."))?),
            (None, false) => None,
        };
        Ok(Filter {
            backend: self.backend,
            status: self.status,
            tags: self.tags.clone(),
            workdir,
            origin: self.origin,
            host: self.host.clone(),
        })
    }
}

/// `--since` / `--until`. What the instants are compared with is the command's to say: when a
/// session was last used (`list`), when a run happened (`stats`).
#[derive(Debug, Args)]
pub struct TimeRangeArgs {
    /// At or after WHEN: YYYY-MM-DD, YYYYMMDD, RFC 3339, or an age like 24h, 7d
    #[arg(long, value_name = "WHEN")]
    pub since: Option<String>,
    /// Before the end of WHEN: YYYY-MM-DD, YYYYMMDD, RFC 3339, or an age like 7d
    #[arg(long, value_name = "WHEN")]
    pub until: Option<String>,
}

/// `--since` / `--until` of when a session was last used (`list`, `search`, `pick`).
#[derive(Debug, Args)]
pub struct LastUsedArgs {
    /// Last used at or after: YYYY-MM-DD, YYYYMMDD, RFC 3339, or an age like 24h, 7d
    #[arg(long, value_name = "WHEN")]
    pub since: Option<String>,
    /// Last used before the end of: YYYY-MM-DD, YYYYMMDD, RFC 3339, or an age like 7d
    #[arg(long, value_name = "WHEN")]
    pub until: Option<String>,
}

impl LastUsedArgs {
    /// The range, with bare days in the local zone (as `TimeRangeArgs::to_range`).
    pub fn to_range(&self, now: DateTime<Utc>) -> Result<TimeRange> {
        TimeRangeArgs {
            since: self.since.clone(),
            until: self.until.clone(),
        }
        .to_range(now, &Zone::Local)
    }
}

impl TimeRangeArgs {
    pub fn is_given(&self) -> bool {
        self.since.is_some() || self.until.is_some()
    }

    /// The range, with bare days in `zone`; a range that holds nothing is a usage error.
    pub fn to_range(&self, now: DateTime<Utc>, zone: &Zone) -> Result<TimeRange> {
        let instant = |text: &Option<String>, bound| {
            text.as_deref()
                .map(|t| parse_instant_in(t, bound, now, zone))
                .transpose()
        };
        let range = TimeRange {
            since: instant(&self.since, Bound::Since)?,
            until: instant(&self.until, Bound::Until)?,
        };
        if let (Some(s), Some(u)) = (range.since, range.until) {
            if s >= u {
                return Err(Error::usage(format!(
                    "--since {} is not before --until {}: nothing could match",
                    self.since.as_deref().unwrap_or_default(),
                    self.until.as_deref().unwrap_or_default()
                )));
            }
        }
        Ok(range)
    }
}

/// Options of every command that runs a prompt.
#[derive(Debug, Args)]
pub struct RunOptions {
    /// Model name or alias, passed to the backend (e.g. sonnet, gpt-5.6-sol, pro)
    #[arg(long, short = 'm', value_name = "MODEL")]
    pub model: Option<String>,
    /// Add this tag to the session (repeat for several)
    #[arg(long = "tag", value_name = "TAG", value_parser = tag_arg, add = clap_complete::engine::ArgValueCompleter::new(crate::cli::complete::tags))]
    pub tags: Vec<String>,
    /// Print one JSON object (response, session ids, model, usage, status) instead of the text
    #[arg(long)]
    pub json: bool,
    /// Stop the CLI if it runs longer: 30m, 90s, 2h, or 0 for no limit [default: config
    /// run.timeout, else 30m]
    #[arg(long, value_name = "DURATION", value_parser = timeout_arg)]
    pub timeout: Option<Deadline>,
}

/// A `--timeout`: a duration, or None for "no limit" (`0`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline(pub Option<Duration>);

fn timeout_arg(text: &str) -> std::result::Result<Deadline, String> {
    crate::timespec::parse_timeout(text)
        .map(Deadline)
        .map_err(|e| e.to_string())
}

/// A value clap parses with the type's own `FromStr` (its error message included).
pub fn parse_arg<T: std::str::FromStr<Err = Error>>(text: &str) -> std::result::Result<T, String> {
    text.parse().map_err(|e: Error| e.to_string())
}

/// A session id or prefix as typed: checked before anything is opened or created.
pub fn session_key(text: &str) -> std::result::Result<String, String> {
    crate::domain::SessionId::parse(text)
        .map(|_| text.to_string())
        .map_err(|e| e.to_string())
}

/// A host name: what `CLINVK_HOST` or the system calls a machine.
pub fn host_arg(text: &str) -> std::result::Result<String, String> {
    let host = text.trim();
    if host.is_empty() {
        return Err("a host name cannot be empty".into());
    }
    Ok(host.to_string())
}

pub fn tag_arg(text: &str) -> std::result::Result<String, String> {
    normalize_tag(text).map_err(|e| e.to_string())
}

/// A directory as sessions record it: absolute, symlinks resolved when it still exists.
pub fn normalize_dir(dir: &Path) -> Result<String> {
    let absolute = if dir.is_absolute() {
        dir.to_path_buf()
    } else {
        std::env::current_dir()
            .map_err(|e| Error::io(".", e))?
            .join(dir)
    };
    let resolved = std::fs::canonicalize(&absolute).unwrap_or(absolute);
    Ok(resolved.to_string_lossy().into_owned())
}
