//! `clinvk sessions import [--backend B]... [--dry-run] [--include-deleted] [--json]`: bring in
//! the conversations held directly in the CLIs, from their transcripts.

use clap::Args;
use serde_json::json;

use crate::cli::output::{self, escape_controls, print, print_json};
use crate::cli::render::{table, thousands};
use crate::cli::Context;
use crate::domain::Backend;
use crate::error::{exit, Result};
use crate::import::{self, sources::Roots, Options, Report};

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Only this CLI's conversations: claude, codex or gemini (repeatable)
    #[arg(long = "backend", short = 'b', value_name = "BACKEND", add = clap_complete::engine::ArgValueCandidates::new(crate::cli::complete::backends))]
    pub backends: Vec<Backend>,
    /// Say what would be imported, and change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Bring back conversations whose sessions were deleted
    #[arg(long)]
    pub include_deleted: bool,
    /// Print the report as JSON
    #[arg(long)]
    pub json: bool,
}

pub fn run(ctx: &Context, args: &ImportArgs) -> Result<i32> {
    let settings = ctx.settings()?;
    let store = ctx.store()?;
    let options = Options {
        backends: args.backends.clone(),
        dry_run: args.dry_run,
        include_deleted: args.include_deleted,
        ..ctx.import_options()
    };
    let observer = output::StderrObserver::reading("transcripts");
    let report = import::run(&store, &Roots::new(&settings), &options, &observer)?;
    if args.json {
        print_json(&report_json(&report, args.dry_run))?;
    } else {
        print(&report_text(&report, args.dry_run))?;
    }
    Ok(exit::OK)
}

fn report_json(r: &Report, dry_run: bool) -> serde_json::Value {
    let backends: serde_json::Map<String, serde_json::Value> = r
        .by_backend
        .iter()
        .map(|(b, c)| {
            (
                b.to_string(),
                json!({"new": c.new, "updated": c.updated, "unchanged": c.unchanged}),
            )
        })
        .collect();
    json!({
        "dry_run": dry_run,
        "backends": backends,
        "looked_in": r.looked_in.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
        "files_read": r.files_read,
        "files_unchanged": r.files_unchanged,
        "files_appended": r.files_appended,
        "bytes_read": r.bytes_read,
        "deleted": r.deleted,
        "transcripts_gone": r.transcripts_gone,
        "skipped_lines": r.skipped_lines,
        "skipped": r.skipped.iter().map(|s| json!({
            "path": s.path.display().to_string(),
            "reason": s.reason,
        })).collect::<Vec<_>>(),
    })
}

fn report_text(r: &Report, dry_run: bool) -> String {
    let mut text = String::new();
    if dry_run {
        text.push_str("Dry run: nothing was changed. An import would make:\n");
    }
    if r.by_backend.is_empty() && r.files_unchanged > 0 {
        text.push_str("Nothing new in the CLIs' transcripts since the last import.\n");
    } else if r.by_backend.is_empty() {
        let places: Vec<String> = r
            .looked_in
            .iter()
            .map(|p| escape_controls(&p.display().to_string()))
            .collect();
        text.push_str(&format!(
            "No transcripts found (looked in {}; `clinvk config set import.<cli>.dir DIR` points elsewhere).\n",
            if places.is_empty() { "nothing: every CLI is turned off".to_string() } else { places.join(", ") }
        ));
    } else {
        let rows = r
            .by_backend
            .iter()
            .map(|(b, c)| {
                vec![
                    b.to_string(),
                    thousands(c.new as u64),
                    thousands(c.updated as u64),
                    thousands(c.unchanged as u64),
                ]
            })
            .collect();
        text.push_str(&table(&["BACKEND", "NEW", "UPDATED", "UNCHANGED"], rows));
    }
    let appended = match r.files_appended {
        0 => String::new(),
        n => format!(" ({} of them only where they grew)", thousands(n as u64)),
    };
    text.push_str(&format!(
        "Read {} transcript file(s){appended}; {} unchanged since the last import.\n",
        thousands(r.files_read as u64),
        thousands(r.files_unchanged as u64)
    ));
    if r.deleted > 0 {
        text.push_str(&format!(
            "Left out {} conversation(s) whose sessions were deleted (--include-deleted brings them back).\n",
            r.deleted
        ));
    }
    if r.transcripts_gone > 0 {
        text.push_str(&format!(
            "{} session(s) lost their transcript (the CLI deleted it); what was read is kept.\n",
            r.transcripts_gone
        ));
    }
    if r.skipped_lines > 0 {
        text.push_str(&format!(
            "Skipped {} transcript line(s) that could not be read.\n",
            thousands(r.skipped_lines)
        ));
    }
    if !r.skipped.is_empty() {
        text.push_str(&format!("Skipped {}:\n", r.skipped.len()));
        for s in &r.skipped {
            text.push_str(&format!(
                "  {}: {}\n",
                escape_controls(&s.path.display().to_string()),
                escape_controls(&s.reason)
            ));
        }
    }
    text
}
