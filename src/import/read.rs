//! Reading one transcript file into its CLI's reader: a line at a time (a 1 GB transcript is
//! read in bounded memory), through zstd for Codex's compressed rollouts, and whole for Gemini's
//! legacy `.json` records. A file that breaks off (a torn line, a truncated `.zst`, an I/O error
//! half-way) gives what was read before, and says what went wrong.
//!
//! A JSONL transcript only grows, by appending: a read of one ends with a `ReadPoint` (the offset
//! past its last whole line, the bytes before it, the reader's checkpoint), and the next read
//! starts there when the file still has those bytes at that offset; otherwise (rewritten,
//! truncated, a checkpoint of another build) it is read whole again.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;

use super::sources::Found;
use crate::domain::{Backend, Tokens};
use crate::store::index::native::ReadPoint;
use crate::transcripts::{claude, codex, gemini, Conversation};

/// Lines longer than this are skipped (counted), not held: a transcript line is at most a few
/// MB (a pasted image).
const MAX_LINE: usize = 64 << 20;
/// A legacy Gemini `.json` record is read whole; bigger ones are skipped.
const MAX_WHOLE_FILE: u64 = 256 << 20;
/// What recognises a file again at a read point: a hash of its first 4 KiB (a file rewritten
/// or truncated and grown again differs there), and the 64 bytes just before the point.
const HEAD: u64 = 4 << 10;
const TAIL: u64 = 64;

/// What one file holds.
pub struct FileRead {
    pub conversation: Conversation,
    /// Codex: the thread's running total at the end of the file.
    pub running_total: Option<Tokens>,
    /// Gemini: the chat is a subagent's.
    pub subagent: bool,
    /// What went wrong part-way, if anything (what was read before still counts).
    pub problem: Option<String>,
    /// Where the next read of the file can start (None: read it whole next time).
    pub point: Option<ReadPoint>,
    /// Only what was appended since `from` was read (the conversation is the part after it).
    pub resumed: bool,
    /// The bytes of transcript read (decompressed, for a `.zst`).
    pub bytes: u64,
}

/// Read `found`, from `from` when the file is still the one that was read up to there. Err:
/// nothing could be read (the reason).
pub fn read(found: &Found, from: Option<&ReadPoint>) -> Result<FileRead, String> {
    let mut file = File::open(&found.path).map_err(|e| format!("cannot be read ({e})"))?;
    let name = found.path.to_string_lossy();
    if found.backend == Backend::Gemini && name.ends_with(".json") {
        return read_whole_gemini(file);
    }
    if name.ends_with(".zst") {
        let decoder =
            zstd::stream::read::Decoder::new(file).map_err(|e| format!("not a zstd file ({e})"))?;
        let mut reader = Reader::new(found.backend);
        let outcome = each_line(BufReader::with_capacity(256 << 10, decoder), |l| {
            reader.line(l)
        });
        return Ok(reader.done(outcome, None, false));
    }
    let resumed = from.and_then(|p| {
        let reader = Reader::resume(found.backend, &p.state)?;
        (recognise(&file, p.offset).as_ref() == Some(&p.tail)).then_some((reader, p.offset))
    });
    let is_resumed = resumed.is_some();
    let (mut reader, start) = resumed.unwrap_or_else(|| (Reader::new(found.backend), 0));
    file.seek(SeekFrom::Start(start))
        .map_err(|e| format!("cannot be read ({e})"))?;
    let outcome = each_line(BufReader::with_capacity(256 << 10, &file), |l| {
        reader.line(l)
    });
    let end = start + outcome.complete;
    let point = (outcome.error.is_none() && end > 0)
        .then(|| recognise(&file, end))
        .flatten()
        .map(|tail| ReadPoint {
            offset: end,
            tail,
            state: reader.checkpoint(),
        });
    Ok(reader.done(outcome, point, is_resumed))
}

/// What recognises `file` read up to `end` (see `HEAD`): the hash of its first bytes, then the
/// bytes just before `end`. None if it is shorter than that now.
fn recognise(file: &File, end: u64) -> Option<Vec<u8>> {
    let mut head = vec![0; end.min(HEAD) as usize];
    file.read_exact_at(&mut head, 0).ok()?;
    let len = end.min(TAIL);
    let mut bytes = crate::transcripts::fnv(&head).to_le_bytes().to_vec();
    let at = bytes.len();
    bytes.resize(at + len as usize, 0);
    file.read_exact_at(&mut bytes[at..], end - len).ok()?;
    Some(bytes)
}

/// One CLI's reader.
enum Reader {
    Claude(claude::Reader),
    Codex(Box<codex::Rollout>),
    Gemini(gemini::Reader),
}

impl Reader {
    fn new(backend: Backend) -> Reader {
        match backend {
            Backend::Claude => Reader::Claude(claude::Reader::new()),
            Backend::Codex => Reader::Codex(Box::default()),
            Backend::Gemini => Reader::Gemini(gemini::Reader::new()),
        }
    }

    fn resume(backend: Backend, state: &[u8]) -> Option<Reader> {
        Some(match backend {
            Backend::Claude => Reader::Claude(claude::Reader::resume(state)?),
            Backend::Codex => Reader::Codex(Box::new(codex::Rollout::resume(state)?)),
            Backend::Gemini => Reader::Gemini(gemini::Reader::resume(state)?),
        })
    }

    fn line(&mut self, l: &[u8]) {
        match self {
            Reader::Claude(r) => r.line(l),
            Reader::Codex(r) => r.line(l),
            Reader::Gemini(r) => r.line(l),
        }
    }

    fn checkpoint(&self) -> Vec<u8> {
        match self {
            Reader::Claude(r) => r.checkpoint(),
            Reader::Codex(r) => r.checkpoint(),
            Reader::Gemini(r) => r.checkpoint(),
        }
    }

    /// The file's conversation, once the line left unfinished at the end (if any) is read too:
    /// after the read point, so that the next read reads it again, whole by then.
    fn done(mut self, outcome: Lines, point: Option<ReadPoint>, resumed: bool) -> FileRead {
        if let Some(last) = &outcome.unterminated {
            self.line(last);
        }
        let (mut conversation, running_total, subagent) = match self {
            Reader::Claude(r) => (r.finish(), None, false),
            Reader::Codex(r) => {
                let total = r.running_total();
                (r.conversation(), total, false)
            }
            Reader::Gemini(r) => {
                let subagent = r.is_subagent();
                (r.finish(), None, subagent)
            }
        };
        conversation.skipped_lines += outcome.too_long;
        FileRead {
            conversation,
            running_total,
            subagent,
            problem: outcome.error.map(|e| format!("read only in part ({e})")),
            point,
            resumed,
            bytes: outcome.read,
        }
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
        point: None,
        resumed: false,
        bytes: bytes.len() as u64,
    })
}

/// How a read of lines went.
#[derive(Default)]
struct Lines {
    too_long: u64,
    error: Option<std::io::Error>,
    /// The bytes up to the end of the last whole line (its `\n` included).
    complete: u64,
    /// All the bytes read.
    read: u64,
    /// The last line, when it has no `\n` (a file still being written, or torn): not handed
    /// over, so that the caller can take its checkpoint before it.
    unterminated: Option<Vec<u8>>,
}

/// Hand each line of `reader` (without its `\n`, `\r`) to `line`, skipping blank lines and
/// lines longer than `MAX_LINE`. Stops at the end, or at an error (kept in the outcome).
fn each_line(mut reader: impl BufRead, mut line: impl FnMut(&[u8])) -> Lines {
    let mut outcome = Lines::default();
    let mut consumed = 0u64;
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
            consumed += used as u64;
            outcome.complete = consumed;
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
        consumed += used as u64;
        if ends_line {
            outcome.complete = consumed;
            finish_line(&mut current, &mut overlong, &mut outcome, &mut line);
        }
    }
    // A last line without `\n`: the caller reads it as it is (a torn line is not JSON, and is
    // counted skipped by the reader).
    let mut last = None;
    finish_line(
        &mut current,
        &mut overlong,
        &mut outcome,
        &mut |l: &[u8]| {
            last = Some(l.to_vec());
        },
    );
    outcome.unterminated = last;
    outcome.read = consumed;
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
        got.extend(outcome.unterminated);
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

    fn claude_line(id: &str, output: u64) -> String {
        format!(
            r#"{{"type":"assistant","sessionId":"s1","timestamp":"2026-01-01T00:00:00Z","requestId":"r{id}","message":{{"id":"m{id}","usage":{{"input_tokens":1,"output_tokens":{output}}}}}}}"#
        )
    }

    fn found(path: &std::path::Path) -> Found {
        Found {
            backend: Backend::Claude,
            path: path.to_path_buf(),
            parent: None,
            workdir: None,
            stamp: Default::default(),
        }
    }

    fn outputs(r: &FileRead) -> Vec<(String, u64)> {
        let c = &r.conversation;
        c.requests
            .iter()
            .map(|r| (r.key.clone(), r.tokens.output))
            .collect()
    }

    #[test]
    fn a_file_that_grows_is_read_from_its_last_whole_line() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s1.jsonl");
        let first = claude_line("1", 5) + "\n";
        // The CLI is writing its next line: half of it is there.
        let second = claude_line("2", 7);
        let (half, rest) = second.split_at(second.len() / 2);
        std::fs::write(&path, format!("{first}{half}")).unwrap();
        let r = read(&found(&path), None).unwrap();
        assert!(!r.resumed);
        assert_eq!(outputs(&r), [("m1:r1".to_string(), 5)]);
        assert_eq!(r.conversation.skipped_lines, 1, "the torn line");
        let point = r.point.expect("a point to go on from");
        assert_eq!(
            point.offset,
            first.len() as u64,
            "before the unfinished line"
        );

        let mut f = std::fs::File::options().append(true).open(&path).unwrap();
        writeln!(f, "{rest}").unwrap();
        let r = read(&found(&path), Some(&point)).unwrap();
        assert!(r.resumed);
        assert_eq!(r.bytes, second.len() as u64 + 1);
        assert_eq!(outputs(&r), [("m2:r2".to_string(), 7)]);
        assert_eq!(r.conversation.skipped_lines, 0);
        let point = r.point.unwrap();
        assert_eq!(point.offset, (first.len() + second.len() + 1) as u64);

        // Rewritten: the bytes before the point differ, so the file is read whole.
        std::fs::write(
            &path,
            format!("{}\n{}\n", claude_line("3", 1), claude_line("4", 2)),
        )
        .unwrap();
        let r = read(&found(&path), Some(&point)).unwrap();
        assert!(!r.resumed);
        assert_eq!(outputs(&r).len(), 2);
        // Rewritten with the same length and the same last line (its ending is all the bytes
        // before the point look at): the start differs, so it is read whole.
        let point = r.point.clone().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, text.replacen("\"r3\"", "\"r9\"", 1)).unwrap();
        let r = read(&found(&path), Some(&point)).unwrap();
        assert!(!r.resumed, "a rewrite of the start is noticed");
        // A checkpoint this build cannot read: whole too.
        let foreign = ReadPoint {
            state: b"{}x".to_vec(),
            ..r.point.unwrap()
        };
        assert!(!read(&found(&path), Some(&foreign)).unwrap().resumed);
    }
}
