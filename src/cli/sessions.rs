//! `clinvk sessions ...`: turn flags into typed store calls and render what comes back.

use std::path::Path;

use chrono::{DateTime, Utc};
use serde_json::json;

use super::output::{self, print, print_json};
use super::render::{self, JsonRow};
use super::{Context, ListArgs, SessionFilterArgs, SessionsCommand};
use crate::clock;
use crate::domain::add_tags;
use crate::error::{exit, Error, Result};
use crate::store::{Filter, InvalidFile, ListQuery};
use crate::timespec::{parse_duration, parse_instant, Bound};

pub fn run(ctx: &Context, cmd: SessionsCommand) -> Result<i32> {
    let now = clock::now()?;
    match cmd {
        SessionsCommand::List(args) => list(ctx, &args, now),
        SessionsCommand::Show { id, json } => show(ctx, &id, json, now),
        SessionsCommand::Delete { ids } => delete(ctx, &ids),
        SessionsCommand::Tag { id, tags, remove } => tag(ctx, &id, &tags, remove),
        SessionsCommand::Fork { id, prompt, common } => {
            super::run_cmd::fork(ctx, &id, prompt, common)
        }
        SessionsCommand::Clean {
            older_than,
            dry_run,
            json,
        } => clean(ctx, older_than.as_deref(), dry_run, json, now),
        SessionsCommand::Stats(args) => super::stats::run(ctx, &args, now),
        SessionsCommand::Reindex { check: false, json } => reindex(ctx, json),
        SessionsCommand::Reindex { check: true, json } => check(ctx, json),
    }
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

impl SessionFilterArgs {
    /// The filter these flags mean (no time range, no search).
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
            ..Filter::default()
        })
    }
}

impl ListArgs {
    /// The typed query these flags mean, or a usage error naming the bad value.
    pub fn to_query(&self, now: DateTime<Utc>) -> Result<ListQuery> {
        let since = self
            .since
            .as_deref()
            .map(|t| parse_instant(t, Bound::Since, now))
            .transpose()?;
        let until = self
            .until
            .as_deref()
            .map(|t| parse_instant(t, Bound::Until, now))
            .transpose()?;
        Ok(ListQuery {
            filter: Filter {
                since,
                until,
                search: self.search.clone().filter(|s| !s.is_empty()),
                ..self.select.to_filter()?
            },
            limit: self.limit,
            offset: self.offset,
        })
    }
}

pub fn warn_invalid(files: &[InvalidFile]) {
    const SHOWN: usize = 3;
    for f in files.iter().take(SHOWN) {
        output::warning(&format!("skipped {}: {}", f.file_name, f.reason));
    }
    if files.len() > SHOWN {
        output::warning(&format!(
            "skipped {} more invalid session files: `clinvk sessions reindex --check` lists them all",
            files.len() - SHOWN
        ));
    }
}

pub fn terminal_width() -> Option<usize> {
    if !output::stdout_is_terminal() {
        return None;
    }
    terminal_size::terminal_size().map(|(w, _)| usize::from(w.0))
}

fn list(ctx: &Context, args: &ListArgs, now: DateTime<Utc>) -> Result<i32> {
    let query = args.to_query(now)?;
    let outcome = ctx.store()?.list(&query)?;
    warn_invalid(&outcome.invalid_files);
    if args.json {
        let rows: Vec<JsonRow> = outcome.sessions.iter().map(JsonRow).collect();
        print_json(&rows)?;
    } else if outcome.sessions.is_empty() {
        output::message("No sessions found.");
    } else {
        print(&render::session_table(
            &outcome.sessions,
            now,
            terminal_width(),
        ))?;
    }
    Ok(exit::OK)
}

fn show(ctx: &Context, id: &str, json: bool, now: DateTime<Utc>) -> Result<i32> {
    let session = ctx.store()?.get(id)?;
    if json {
        print_json(&session)?;
    } else {
        print(&render::show(&session, now))?;
    }
    Ok(exit::OK)
}

fn delete(ctx: &Context, ids: &[String]) -> Result<i32> {
    for id in ctx.store()?.delete(ids)? {
        output::message(&format!("Deleted session {id}"));
    }
    Ok(exit::OK)
}

fn tag(ctx: &Context, id: &str, tags: &[String], remove: bool) -> Result<i32> {
    let (session, ()) = ctx.store()?.update(id, |session| {
        let before = session.tags.clone();
        if remove {
            session.tags.retain(|t| !tags.contains(t));
        } else {
            add_tags(&mut session.tags, tags.iter().cloned());
        }
        Ok((session.tags != before, ()))
    })?;
    let shown = if session.tags.is_empty() {
        "none".to_string()
    } else {
        session.tags.join(", ")
    };
    output::message(&format!("Session {} tags: {shown}", session.id));
    Ok(exit::OK)
}

fn clean(
    ctx: &Context,
    older_than: Option<&str>,
    dry_run: bool,
    json: bool,
    now: DateTime<Utc>,
) -> Result<i32> {
    let (age, source) = match older_than {
        Some(text) => (parse_duration(text)?, format!("--older-than {text}")),
        None => {
            let settings = ctx.settings()?;
            if settings.retention_days == 0 {
                output::message(
                    "session.retention_days is 0 (keep forever): nothing to clean. Pass --older-than to clean anyway.",
                );
                if json {
                    print_json(&Vec::<JsonRow>::new())?;
                }
                return Ok(exit::OK);
            }
            let days = i64::try_from(settings.retention_days).unwrap_or(i64::MAX);
            let age = chrono::Duration::try_days(days)
                .ok_or_else(|| Error::usage("session.retention_days is too large"))?;
            (age, format!("session.retention_days = {days}"))
        }
    };
    let cutoff = now
        .checked_sub_signed(age)
        .unwrap_or(DateTime::<Utc>::MIN_UTC);
    let sessions = ctx.store()?.clean(cutoff, dry_run)?;
    let verb = if dry_run { "Would delete" } else { "Deleted" };
    output::message(&format!(
        "{verb} {} session(s) not used since {} ({source})",
        sessions.len(),
        crate::store::session::format_time(&cutoff)
    ));
    if json {
        let rows: Vec<JsonRow> = sessions.iter().map(JsonRow).collect();
        print_json(&rows)?;
    } else if dry_run && !sessions.is_empty() {
        print(&render::session_table(&sessions, now, terminal_width()))?;
    }
    Ok(exit::OK)
}

fn invalid_json(files: &[InvalidFile]) -> serde_json::Value {
    files
        .iter()
        .map(|f| json!({ "file": f.file_name, "reason": f.reason }))
        .collect()
}

fn reindex(ctx: &Context, json: bool) -> Result<i32> {
    let store = ctx.store()?;
    let report = store.reindex()?;
    if json {
        print_json(&json!({
            "sessions": report.sessions,
            "invalid_files": invalid_json(&report.invalid_files),
            "removed_temp_files": report.removed_temp_files,
            "elapsed_ms": report.elapsed.as_millis() as u64,
        }))?;
    } else {
        let mut text = format!(
            "Indexed {} session(s) in {:.2}s from {}\n",
            report.sessions,
            report.elapsed.as_secs_f64(),
            store.dir().display()
        );
        if report.removed_temp_files > 0 {
            text.push_str(&format!(
                "Removed {} temp file(s) left by interrupted writes\n",
                report.removed_temp_files
            ));
        }
        if !report.invalid_files.is_empty() {
            text.push_str(&format!(
                "Skipped {} invalid file(s):\n",
                report.invalid_files.len()
            ));
            for f in &report.invalid_files {
                text.push_str(&format!("  {}: {}\n", f.file_name, f.reason));
            }
        }
        print(&text)?;
    }
    Ok(exit::OK)
}

fn check(ctx: &Context, json: bool) -> Result<i32> {
    let report = ctx.store()?.check()?;
    let clean = report.differences.is_empty();
    if json {
        print_json(&json!({
            "ok": clean,
            "sessions": report.sessions,
            "differences": report.differences.iter()
                .map(|d| json!({ "file": d.file_name, "problem": d.problem }))
                .collect::<Vec<_>>(),
            "invalid_files": invalid_json(&report.invalid_files),
        }))?;
    } else {
        let mut text = String::new();
        for d in &report.differences {
            text.push_str(&format!("{}: {}\n", d.file_name, d.problem));
        }
        for f in &report.invalid_files {
            text.push_str(&format!("{}: invalid: {}\n", f.file_name, f.reason));
        }
        text.push_str(&if clean {
            format!("The index matches the {} session file(s).\n", report.sessions)
        } else {
            format!(
                "The index differs from the files in {} place(s): run `clinvk sessions reindex` to rebuild it.\n",
                report.differences.len()
            )
        });
        print(&text)?;
    }
    Ok(if clean { exit::OK } else { exit::INDEX_DIFFERS })
}
