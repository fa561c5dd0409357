//! Where output goes: results to stdout (buffered; a closed pipe ends quietly), messages and
//! progress to stderr (a progress bar only on a terminal).

use std::cell::RefCell;
use std::io::{IsTerminal, Write};

use serde::Serialize;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::error::{Error, Result};
use crate::store::{Notice, Observer};

/// Print `text` to stdout in one buffered write.
pub fn print(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| Error::io("<stdout>", e))
}

/// Print a value as pretty JSON plus a newline.
pub fn print_json(value: &impl serde::Serialize) -> Result<()> {
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    serde_json::to_writer_pretty(&mut out, value)
        .map_err(std::io::Error::from)
        .and_then(|()| out.write_all(b"\n"))
        .and_then(|()| out.flush())
        .map_err(|e| Error::io("<stdout>", e))
}

/// A row's JSON form, borrowed from it.
pub trait AsJson {
    type Json<'a>: serde::Serialize
    where
        Self: 'a;
    fn as_json(&self) -> Self::Json<'_>;
}

/// Rows written to stdout as `produce` hands them over, never all in memory: one JSON array
/// (exactly what `print_json` writes for them collected) or, with `ndjson`, one compact object
/// per line (for `jq --stream`-free pipelines and warehouses).
pub fn json_rows<T: AsJson, R>(
    ndjson: bool,
    produce: impl FnOnce(&mut dyn FnMut(&T) -> Result<()>) -> Result<R>,
) -> Result<R> {
    let stdout_err = |e: std::io::Error| Error::io("<stdout>", e);
    let json_err = |e: serde_json::Error| stdout_err(std::io::Error::from(e));
    // Rows of a whole store come to hundreds of MB: fewer, bigger writes.
    let mut out = std::io::BufWriter::with_capacity(64 << 10, std::io::stdout().lock());
    let mut rows = 0u64;
    let result = produce(&mut |row| {
        if ndjson {
            serde_json::to_writer(&mut out, &row.as_json()).map_err(json_err)?;
            return out.write_all(b"\n").map_err(stdout_err);
        }
        // `[` only with the first row: a listing that fails before it prints nothing. Each row
        // pretty, one level in: what `print_json` writes for the rows collected.
        out.write_all(if rows == 0 { b"[\n  " } else { b",\n  " })
            .map_err(stdout_err)?;
        write_pretty_in(&mut out, &row.as_json(), 1).map_err(json_err)?;
        rows += 1;
        Ok(())
    });
    let end: &[u8] = match (ndjson, rows) {
        (true, _) => b"",
        (false, 0) => b"[]\n",
        (false, _) => b"\n]\n",
    };
    // After an error, what was printed stays as it is (a cut array says so by not parsing).
    let result = result?;
    out.write_all(end)
        .and_then(|()| out.flush())
        .map_err(stdout_err)?;
    Ok(result)
}

/// Write `value` as serde_json's pretty printer writes it `depth` levels in (1: an element of a
/// pretty array; 2: of an array in a pretty object), straight into `out`: for rows streamed
/// into a document that is otherwise pretty.
pub fn write_pretty_in<W: Write>(
    out: &mut W,
    value: &impl Serialize,
    depth: usize,
) -> serde_json::Result<()> {
    let formatter = InArray {
        level: depth.saturating_sub(1),
        has_value: false,
    };
    value.serialize(&mut serde_json::Serializer::with_formatter(out, formatter))
}

/// serde_json's pretty layout (two spaces a level), `level + 1` levels in.
#[derive(Default)]
struct InArray {
    level: usize,
    has_value: bool,
}

impl InArray {
    fn line<W: ?Sized + Write>(&self, out: &mut W, first: bool) -> std::io::Result<()> {
        if !first {
            out.write_all(b",")?;
        }
        self.newline(out)
    }

    /// A newline and the indent, in one write where it fits (most lines).
    fn newline<W: ?Sized + Write>(&self, out: &mut W) -> std::io::Result<()> {
        const LINE: &[u8] = b"\n                                ";
        let width = 2 * (self.level + 1);
        if width < LINE.len() {
            return out.write_all(&LINE[..=width]);
        }
        out.write_all(b"\n")?;
        (0..=self.level).try_for_each(|_| out.write_all(b"  "))
    }

    fn open<W: ?Sized + Write>(&mut self, out: &mut W, bracket: &[u8]) -> std::io::Result<()> {
        self.level += 1;
        self.has_value = false;
        out.write_all(bracket)
    }

    fn close<W: ?Sized + Write>(&mut self, out: &mut W, bracket: &[u8]) -> std::io::Result<()> {
        self.level -= 1;
        if self.has_value {
            self.newline(out)?;
        }
        out.write_all(bracket)
    }
}

impl serde_json::ser::Formatter for InArray {
    fn begin_array<W: ?Sized + Write>(&mut self, out: &mut W) -> std::io::Result<()> {
        self.open(out, b"[")
    }
    fn end_array<W: ?Sized + Write>(&mut self, out: &mut W) -> std::io::Result<()> {
        self.close(out, b"]")
    }
    fn begin_array_value<W: ?Sized + Write>(
        &mut self,
        out: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        self.line(out, first)
    }
    fn end_array_value<W: ?Sized + Write>(&mut self, _: &mut W) -> std::io::Result<()> {
        self.has_value = true;
        Ok(())
    }
    fn begin_object<W: ?Sized + Write>(&mut self, out: &mut W) -> std::io::Result<()> {
        self.open(out, b"{")
    }
    fn end_object<W: ?Sized + Write>(&mut self, out: &mut W) -> std::io::Result<()> {
        self.close(out, b"}")
    }
    fn begin_object_key<W: ?Sized + Write>(
        &mut self,
        out: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        self.line(out, first)
    }
    fn begin_object_value<W: ?Sized + Write>(&mut self, out: &mut W) -> std::io::Result<()> {
        out.write_all(b": ")
    }
    fn end_object_value<W: ?Sized + Write>(&mut self, _: &mut W) -> std::io::Result<()> {
        self.has_value = true;
        Ok(())
    }
}

/// A line on stderr. A closed stderr is no reason to fail (or panic, as `eprintln!` would).
/// Control characters are escaped, so that a message quoting user text (`--since $'5d\nx'`)
/// or a file's stays one line and cannot drive the terminal.
pub fn message(text: &str) {
    let _ = writeln!(std::io::stderr(), "{}", escape_controls(text));
}

/// `text` with newlines, escapes and other control characters (and bidi overrides) written as
/// `\n`, `\u{1b}`, ...: what may reach a terminal from user or file text.
pub fn escape_controls(text: &str) -> String {
    let unsafe_char =
        |c: char| c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
    if !text.chars().any(unsafe_char) {
        return text.to_string();
    }
    text.chars()
        .map(|c| {
            if unsafe_char(c) {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

pub fn warning(text: &str) {
    message(&format!("clinvk: warning: {text}"));
}

/// The one line a failing command prints.
pub fn error_line(err: &Error) {
    message(&format!("clinvk: {err}"));
}

/// Printing's result with a closed stdout (`clinvk ... | head`) counted as done.
pub fn unless_closed(result: Result<()>) -> Result<()> {
    match result {
        Err(e) if e.is_broken_pipe() => Ok(()),
        other => other,
    }
}

/// Whether stdout may have colour and bold: a terminal, and no `NO_COLOR` (no-color.org:
/// set and not empty).
pub fn color_on_stdout() -> bool {
    stdout_is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

pub fn stdout_is_terminal() -> bool {
    std::io::stdout().is_terminal()
}

/// The terminal's width, when stdout is one (tables fit it); None for a pipe.
pub fn terminal_width() -> Option<usize> {
    if !stdout_is_terminal() {
        return None;
    }
    terminal_size::terminal_size().map(|(w, _)| usize::from(w.0))
}

/// A warning per invalid session file skipped (the first few, then how many more).
pub fn warn_invalid(files: &[crate::store::InvalidFile]) {
    const SHOWN: usize = 3;
    for f in files.iter().take(SHOWN) {
        warning(&format!("skipped {}: {}", f.file_name, f.reason));
    }
    if files.len() > SHOWN {
        warning(&format!(
            "skipped {} more invalid session files: `clinvk sessions reindex --check` lists them all",
            files.len() - SHOWN
        ));
    }
}

/// Shows a CLI's retries while it runs, as one updating line on stderr, on a terminal only
/// (scripts see the outcome, and `--json` has it).
pub struct RetryLine {
    bar: Option<ProgressBar>,
}

impl RetryLine {
    pub fn new() -> Self {
        RetryLine {
            bar: std::io::stderr().is_terminal().then(|| {
                let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
                bar.set_style(
                    ProgressStyle::with_template("{msg}").expect("the template is valid"),
                );
                bar
            }),
        }
    }
}

impl Default for RetryLine {
    fn default() -> Self {
        Self::new()
    }
}

impl crate::run::RunObserver for RetryLine {
    fn retrying(&self, line: &str) {
        if let Some(bar) = &self.bar {
            bar.set_message(line.to_string());
        }
    }

    fn finished(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// Shows the store's notices on stderr, and a progress bar while it reads many files.
pub struct StderrObserver {
    bar: RefCell<Option<ProgressBar>>,
    terminal: bool,
    /// What the progress bar says is being read.
    what: &'static str,
}

/// Below this many files, reading is quick enough not to need a bar.
const BAR_THRESHOLD: u64 = 2000;

impl StderrObserver {
    pub fn new() -> Self {
        Self::reading("session files")
    }

    /// An observer whose progress bar says it is reading `what`.
    pub fn reading(what: &'static str) -> Self {
        StderrObserver {
            bar: RefCell::new(None),
            terminal: std::io::stderr().is_terminal(),
            what,
        }
    }
}

impl Default for StderrObserver {
    fn default() -> Self {
        Self::new()
    }
}

impl Observer for StderrObserver {
    fn notice(&self, notice: &Notice) {
        match notice {
            Notice::IndexRebuilt { why, sessions, invalid } => {
                let skipped = match invalid {
                    0 => String::new(),
                    n => format!("; skipped {n} invalid file(s), see `clinvk sessions reindex --check`"),
                };
                message(&format!("clinvk: {why}: rebuilt it from {sessions} session file(s){skipped}"));
            }
            Notice::IndexLagging { error } => warning(&format!(
                "the change is saved in the session file, but the index could not be updated ({error}); \
                 the next command will catch up"
            )),
            Notice::AnsweredFromFiles { why } => warning(&format!(
                "read the session files directly, as the index cannot be updated: {why}"
            )),
            Notice::WaitingForRebuild => {
                message("clinvk: waiting for another clinvk to finish rebuilding the index")
            }
            Notice::WaitingForImport => message(
                "clinvk: waiting for another clinvk to finish importing the CLIs' transcripts",
            ),
            // Only worth a line for someone watching.
            Notice::Comparing { files } if self.terminal => message(&format!(
                "clinvk: the sessions directory changed: comparing it with the {files} files the index knows…"
            )),
            Notice::Comparing { .. } => {}
        }
    }

    fn progress(&self, done: u64, total: u64) {
        if !self.terminal || total < BAR_THRESHOLD {
            return;
        }
        let mut bar = self.bar.borrow_mut();
        let bar = bar.get_or_insert_with(|| {
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template(&format!(
                    "reading {} {{bar:30}} {{pos}}/{{len}} ({{eta}} left)",
                    self.what
                ))
                .expect("the template is valid"),
            );
            bar
        });
        bar.set_position(done);
        if done >= total {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows written one level in read as serde_json's own pretty array of them: nested objects,
    /// empty and full arrays, escapes.
    #[test]
    fn a_row_in_an_array_is_laid_out_as_serde_json_lays_it_out() {
        let rows = [
            serde_json::json!({"id": "a", "tags": [], "u": {"n": 1, "deep": [[], {}, [1, {"x": "\n\""}]]}, "m": null}),
            serde_json::json!({}),
            serde_json::json!([]),
            serde_json::json!(["x", {"y": []}]),
            // Deeper than the indents written in one go.
            (0..20).fold(
                serde_json::json!({"z": 1}),
                |v, _| serde_json::json!({"in": [v]}),
            ),
        ];
        let mut ours = Vec::new();
        for (i, row) in rows.iter().enumerate() {
            ours.extend_from_slice(if i == 0 { b"[\n  " } else { b",\n  " });
            let mut ser = serde_json::Serializer::with_formatter(&mut ours, InArray::default());
            row.serialize(&mut ser).unwrap();
        }
        ours.extend_from_slice(b"\n]");
        assert_eq!(
            String::from_utf8(ours).unwrap(),
            serde_json::to_string_pretty(&rows).unwrap()
        );
        // Two levels in: the rows of a report.
        let mut ours = b"{\n  \"rows\": [".to_vec();
        for (i, row) in rows.iter().enumerate() {
            ours.extend_from_slice(if i == 0 { b"\n    " } else { b",\n    " });
            write_pretty_in(&mut ours, row, 2).unwrap();
        }
        ours.extend_from_slice(b"\n  ]\n}");
        assert_eq!(
            String::from_utf8(ours).unwrap(),
            serde_json::to_string_pretty(&serde_json::json!({ "rows": rows })).unwrap()
        );
    }
}
