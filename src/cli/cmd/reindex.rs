//! `clinvk sessions reindex [--check]`: rebuild the index from the files, or compare them.

use clap::Args;
use serde_json::json;

use crate::cli::output::{escape_controls, print, print_json};
use crate::cli::Context;
use crate::error::{exit, Result};
use crate::store::InvalidFile;

#[derive(Debug, Args)]
pub struct ReindexArgs {
    /// Compare the index with the files without changing anything; exit 6 if they differ
    #[arg(long)]
    pub check: bool,
    /// Print the counts, invalid files and differences as JSON
    #[arg(long)]
    pub json: bool,
}

pub fn run(ctx: &Context, args: &ReindexArgs) -> Result<i32> {
    if args.check {
        check(ctx, args.json)
    } else {
        reindex(ctx, args.json)
    }
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
            "moved_aside": report.moved_aside.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
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
        for path in &report.moved_aside {
            text.push_str(&format!(
                "Moved {} aside (it was not a file clinvk made), untouched\n",
                escape_controls(&path.display().to_string())
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
