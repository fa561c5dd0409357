//! Reading one transcript file into its CLI's reader: a line at a time (a 1 GB transcript is
//! read in bounded memory), through zstd for Codex's compressed rollouts, and whole for Gemini's
//! legacy `.json` records. A file that breaks off (a torn line, a truncated `.zst`, an I/O error
//! half-way) gives what was read before, and says what went wrong.

use std::io::{BufRead, BufReader, Read};

use super::sources::Found;
use crate::domain::Backend;
use crate::transcripts::{claude, codex, gemini, Conversation};

/// Lines longer than this are skipped (counted), not held: a transcript line is at most a few
/// MB (a pasted image).
const MAX_LINE: usize = 64 << 20;
/// A legacy Gemini `.json` record is read whole; bigger ones are skipped.
const MAX_WHOLE_FILE: u64 = 256 << 20;

/// What one file holds.
pub struct FileRead {
    pub conversation: Conversation,
    /// Codex: the thread's running total at the end of the file.
    pub running_total: Option<crate::domain::Tokens>,
    /// Gemini: the chat is a subagent's.
    pub subagent: bool,
    /// What went wrong part-way, if anything (what was read before still counts).
    pub problem: Option<String>,
}

/// Read `found`. Err: nothing could be read (the reason).
pub fn read(found: &Found) -> Result<FileRead, String> {
    let file = std::fs::File::open(&found.path).map_err(|e| format!("cannot be read ({e})"))?;
    let name = found.path.to_string_lossy();
    if found.backend == Backend::Gemini && name.ends_with(".json") {
        return read_whole_gemini(file);
    }
    let source: Box<dyn Read> = if name.ends_with(".zst") {
        Box::new(
            zstd::stream::read::Decoder::new(file).map_err(|e| format!("not a zstd file ({e})"))?,
        )
    } else {
        Box::new(file)
    };
    let reader = BufReader::with_capacity(256 << 10, source);
    match found.backend {
        Backend::Claude => {
            let mut r = claude::Reader::new();
            let outcome = each_line(reader, |l| r.line(l));
            Ok(done(r.finish(), None, false, outcome))
        }
        Backend::Codex => {
            let mut r = codex::Rollout::default();
            let outcome = each_line(reader, |l| r.line(l));
            let total = r
                .counts
                .iter()
                .map(|c| c.total)
                .reduce(|a, b| a.max_each(&b));
            Ok(done(r.conversation(), total, false, outcome))
        }
        Backend::Gemini => {
            let mut r = gemini::Reader::new();
            let outcome = each_line(reader, |l| r.line(l));
            let subagent = r.is_subagent();
            Ok(done(r.finish(), None, subagent, outcome))
        }
    }
}

fn done(
    mut conversation: Conversation,
    running_total: Option<crate::domain::Tokens>,
    subagent: bool,
    outcome: Lines,
) -> FileRead {
    conversation.skipped_lines += outcome.too_long;
    FileRead {
        conversation,
        running_total,
        subagent,
        problem: outcome.error.map(|e| format!("read only in part ({e})")),
    }
}

fn read_whole_gemini(file: std::fs::File) -> Result<FileRead, String> {
    let mut bytes = Vec::new();
    file.take(MAX_WHOLE_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot be read ({e})"))?;
    if bytes.len() as u64 > MAX_WHOLE_FILE {
        return Err(format!("more than {} MiB: not read", MAX_WHOLE_FILE >> 20));
    }
    Ok(FileRead {
        conversation: gemini::parse(&bytes),
        running_total: None,
        subagent: false,
        problem: None,
    })
}

/// How a read of lines went.
#[derive(Default)]
struct Lines {
    too_long: u64,
    error: Option<std::io::Error>,
}

/// Hand each line of `reader` (without its `\n`, `\r`) to `line`, skipping blank lines and
/// lines longer than `MAX_LINE`. Stops at the end, or at an error (kept in the outcome).
fn each_line(mut reader: impl BufRead, mut line: impl FnMut(&[u8])) -> Lines {
    let mut outcome = Lines::default();
    let mut current: Vec<u8> = Vec::new();
    let mut overlong = false;
    loop {
        let chunk = match reader.fill_buf() {
            Ok([]) => break,
            Ok(chunk) => chunk,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                outcome.error = Some(e);
                break;
            }
        };
        let (piece, ends_line) = match chunk.iter().position(|b| *b == b'\n') {
            Some(at) => (&chunk[..at], true),
            None => (chunk, false),
        };
        // A whole line in the buffer (the common case): handed over without a copy.
        if ends_line && current.is_empty() && !overlong {
            if piece.len() <= MAX_LINE {
                let l = piece.strip_suffix(b"\r").unwrap_or(piece);
                if !l.trim_ascii().is_empty() {
                    line(l);
                }
            } else {
                outcome.too_long += 1;
            }
            let used = piece.len() + 1;
            reader.consume(used);
            continue;
        }
        if !overlong {
            if current.len() + piece.len() > MAX_LINE {
                overlong = true;
                current = Vec::new();
            } else {
                current.extend_from_slice(piece);
            }
        }
        let used = piece.len() + usize::from(ends_line);
        reader.consume(used);
        if ends_line {
            finish_line(&mut current, &mut overlong, &mut outcome, &mut line);
        }
    }
    // A last line without `\n` (a file still being written, or torn): read as it is; a torn
    // line is not JSON and is counted skipped by the reader.
    finish_line(&mut current, &mut overlong, &mut outcome, &mut line);
    outcome
}

fn finish_line(
    current: &mut Vec<u8>,
    overlong: &mut bool,
    outcome: &mut Lines,
    line: &mut impl FnMut(&[u8]),
) {
    if *overlong {
        outcome.too_long += 1;
    } else {
        let l = current.strip_suffix(b"\r").unwrap_or(current);
        if !l.trim_ascii().is_empty() {
            line(l);
        }
    }
    current.clear();
    *overlong = false;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines_of(bytes: &[u8]) -> Vec<Vec<u8>> {
        let mut got = Vec::new();
        // A tiny buffer, so that lines span several reads.
        let reader = BufReader::with_capacity(3, bytes);
        let outcome = each_line(reader, |l| got.push(l.to_vec()));
        assert!(outcome.error.is_none());
        got
    }

    #[test]
    fn lines_across_reads() {
        assert_eq!(
            lines_of(b"ab\r\n\ncdefgh\n  \nlast"),
            [b"ab".to_vec(), b"cdefgh".to_vec(), b"last".to_vec()]
        );
        assert!(lines_of(b"").is_empty());
    }

    #[test]
    fn a_truncated_zstd_stream_gives_what_came_before() {
        // Enough lines, and varied enough, to fill several zstd blocks (128 KiB each).
        let mut x: u64 = 1;
        let text: String = (0..20000)
            .map(|i| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                format!("{{\"type\":\"turn_context\",\"payload\":{{\"model\":\"m{i}-{x:x}\"}}}}\n")
            })
            .collect();
        let packed = zstd::stream::encode_all(text.as_bytes(), 3).unwrap();
        let cut = &packed[..packed.len() / 2];
        let decoder = zstd::stream::read::Decoder::new(cut).unwrap();
        let mut n = 0;
        let outcome = each_line(BufReader::new(decoder), |_| n += 1);
        assert!(outcome.error.is_some(), "the cut is noticed");
        assert!(n > 0 && n < 20000, "{n} lines before the cut");
    }
}
