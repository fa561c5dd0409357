//! Bringing the conversations people have directly in the CLIs into the store: each native
//! conversation becomes one session file (origin `imported`), or adds what it did since to the
//! session that already holds it (a run through clinvk, an earlier import), every API request
//! counted once.
//!
//! - `sources.rs`: where each CLI keeps its transcripts, and finding them;
//! - `read.rs`: one file through its CLI's reader (`crate::transcripts`), in bounded memory;
//! - `merge.rs`: a conversation as a session, new or merged.
//!
//! An import reads only the files whose stamp (inode, size, mtime) changed since the last one
//! (the index remembers them), then merges under the store's lock. It never writes, locks or
//! moves the CLIs' files. A conversation whose session was deleted stays deleted unless it has
//! had activity since (or `include_deleted`); one whose transcript the CLI deleted keeps its
//! session, marked gone.

pub mod merge;
pub mod read;
pub mod sources;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use crate::domain::Backend;
use crate::error::Result;
use crate::store::index::native::{NativeFile, ReadPoint};
use crate::store::native::{
    FileRecord, FileTexts, GoneTranscript, ImportTurn, Merged, NativeKey, NativeMerge, PUT_ASIDE,
};
use crate::store::{Observer, Store};
use merge::Gathered;
use sources::{Found, Roots, Skip};

/// What to import, and how.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Only these CLIs (all when empty).
    pub backends: Vec<Backend>,
    /// Say what would be imported, and change nothing.
    pub dry_run: bool,
    /// Bring back conversations whose sessions were deleted.
    pub include_deleted: bool,
    /// Files read and merged at a time (None: `BATCH`).
    pub batch: Option<usize>,
    /// A catch-up before a command: nothing when another clinvk is importing (that one brings
    /// the files in), instead of waiting for it.
    pub unless_busy: bool,
}

/// How many conversations of one CLI went where.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    pub new: usize,
    pub updated: usize,
    pub unchanged: usize,
}

/// What an import found and did.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub by_backend: BTreeMap<Backend, Counts>,
    /// Transcript files read (changed since the last import), and left unread (unchanged).
    pub files_read: usize,
    pub files_unchanged: usize,
    /// Of the files read, those read only from where the last read stopped (they grew).
    pub files_appended: usize,
    /// The bytes of transcript read.
    pub bytes_read: u64,
    /// Conversations left out because their session was deleted.
    pub deleted: usize,
    /// Sessions whose transcript the CLI has deleted since the last import.
    pub transcripts_gone: usize,
    /// Lines of transcripts that could not be read (skipped; the rest was imported).
    pub skipped_lines: u64,
    /// Files, directories and conversations left out, each once with the reason.
    pub skipped: Vec<Skip>,
    /// The CLIs' directories looked in.
    pub looked_in: Vec<std::path::PathBuf>,
}

/// Files read and merged at a time: what an import holds in memory is bounded by this, not by
/// the size of the CLIs' histories. Each batch is merged under the exclusive lock and committed
/// (its session files flushed to disk first); other commands get the lock between two batches,
/// so that a long import holds none of them up for more than one batch's merge.
const BATCH: usize = 2000;

/// Catch the store up with the CLIs' transcripts under `roots`.
pub fn run(
    store: &Store,
    roots: &Roots,
    options: &Options,
    observer: &dyn Observer,
) -> Result<Report> {
    let _turn = match store.import_turn(!options.unless_busy)? {
        ImportTurn::Yours(guard) => guard,
        ImportTurn::Taken => return Ok(Report::default()),
    };
    let roots = roots.clone().only(&options.backends);
    let (found, walk_skips) = roots.discover();
    let mut report = Report {
        skipped: walk_skips,
        looked_in: roots.all(),
        ..Report::default()
    };
    // Nothing added, removed or changed since the last complete look (the common case, before
    // every `sessions list`): nothing to compare file by file.
    let walk = (roots.key(), sources::fingerprint(&found));
    // `built`: the index looked at; what is merged and remembered goes into that one only.
    let (last_walk, built) = store.native_walk(&walk.0)?;
    if last_walk == Some(walk.1) && !options.include_deleted {
        report.files_unchanged = found.len();
        return Ok(report);
    }
    let look = compare(store, &found, &roots, options)?;
    report.files_unchanged = found.len() - look.changed.len();
    report.files_read = look.changed.len();
    if look.changed.is_empty() && look.forget.is_empty() && look.gone.is_empty() {
        // Files touched, say: nothing to merge.
        if !options.dry_run {
            remember_walk(store, &walk, &built);
        }
        return Ok(report);
    }
    let merging = merge_in_batches(store, &look, options, observer, Some(built.clone()))?;
    // (Files to read again were not recorded as read: the next import reads them whole.)
    let (read_again, incomplete) = merging.finish(&mut report);
    // Everything found is recorded as it is now, unless some of it is to be read again.
    if !options.dry_run && read_again.is_empty() && !incomplete && last_walk != Some(walk.1) {
        remember_walk(store, &walk, &built);
    }
    Ok(report)
}

/// Catch up with one conversation's files (`found`: its transcript and its subagents', from
/// `Roots::claude_conversation`), as a full import would, without looking at any other: what
/// a status line does on every refresh. Nothing when another clinvk is importing.
pub fn catch_up_conversation(
    store: &Store,
    found: &[Found],
    options: &Options,
    observer: &dyn Observer,
) -> Result<Report> {
    let _turn = match store.import_turn(false)? {
        ImportTurn::Yours(guard) => guard,
        ImportTurn::Taken => return Ok(Report::default()),
    };
    let keys: Vec<String> = found.iter().map(|f| path_key(&f.path)).collect();
    let known = store.native_files_among(&keys.iter().map(String::as_str).collect::<Vec<_>>())?;
    let changed: Vec<&Found> = found
        .iter()
        .zip(&keys)
        .filter(|(f, key)| known.get(*key).map(|k| k.stamp) != Some(f.stamp))
        .map(|(f, _)| f)
        .collect();
    let mut report = Report {
        files_unchanged: found.len() - changed.len(),
        files_read: changed.len(),
        ..Report::default()
    };
    if changed.is_empty() {
        return Ok(report);
    }
    let look = Look {
        points: store.read_points(&grown(&changed, &known))?,
        changed,
        forget: Vec::new(),
        gone: Vec::new(),
    };
    let merging = merge_in_batches(store, &look, options, observer, None)?;
    merging.finish(&mut report);
    Ok(report)
}

/// What a look at the CLIs' files found against what the index remembers.
struct Look<'f> {
    /// The files to read (new, changed, or of a conversation to bring back).
    changed: Vec<&'f Found>,
    /// Where the reads of files that grew in place can start.
    points: HashMap<String, ReadPoint>,
    /// The file records to forget, and the files gone.
    forget: Vec<String>,
    gone: Vec<Gone>,
}

fn compare<'f>(
    store: &Store,
    found: &'f [Found],
    roots: &Roots,
    options: &Options,
) -> Result<Look<'f>> {
    let known = store.native_files()?;
    let keys: Vec<String> = found.iter().map(|f| path_key(&f.path)).collect();
    // Bringing deleted conversations back: their files are read again, changed or not.
    let orphans = if options.include_deleted {
        store.native_files_without_session(None)?
    } else {
        Default::default()
    };
    let mut changed: Vec<&Found> = found
        .iter()
        .zip(&keys)
        .filter(|(f, key)| {
            known.get(*key).map(|k| k.stamp) != Some(f.stamp) || orphans.contains(*key)
        })
        .map(|(f, _)| f)
        .collect();
    with_subagents(store, found, &mut changed, orphans)?;
    let points = store.read_points(&grown(&changed, &known))?;
    let (forget, gone) = leftovers(known, found, &keys, roots);
    Ok(Look {
        changed,
        points,
        forget,
        gone,
    })
}

/// The files of `changed` that grew in place since they were read (`known`): read from where
/// the last read stopped.
fn grown<'f>(changed: &[&'f Found], known: &HashMap<String, NativeFile>) -> Vec<&'f str> {
    changed
        .iter()
        .filter_map(|f| {
            let path = f.path.to_str()?;
            let k = known.get(path)?;
            (k.stamp.ino == f.stamp.ino && k.stamp.size <= f.stamp.size).then_some(path)
        })
        .collect()
}

/// A conversation's own file read again while its session is gone (deleted, and now active
/// again) makes the session anew: its subagents' files, unchanged, are read again with it.
fn with_subagents<'f>(
    store: &Store,
    found: &'f [Found],
    changed: &mut Vec<&'f Found>,
    orphans: std::collections::HashSet<String>,
) -> Result<()> {
    let mut subagents: HashMap<&str, Vec<&Found>> = HashMap::new();
    for f in found {
        if let Some(parent) = &f.parent {
            subagents.entry(parent.as_str()).or_default().push(f);
        }
    }
    // Claude's own files with subagents (Gemini's are named after a session id only the file
    // says, read already).
    let candidates: Vec<(String, &Vec<&Found>)> = changed
        .iter()
        .filter(|f| f.backend == Backend::Claude && f.parent.is_none())
        .filter_map(|f| {
            let subs = subagents.get(own_id(f, None)?.as_str())?;
            Some((path_key(&f.path), subs))
        })
        .collect();
    if candidates.is_empty() {
        return Ok(());
    }
    let orphans = if orphans.is_empty() {
        let paths: Vec<&str> = candidates.iter().map(|(p, _)| p.as_str()).collect();
        store.native_files_without_session(Some(&paths))?
    } else {
        orphans
    };
    let reading: std::collections::HashSet<&Path> =
        changed.iter().map(|f| f.path.as_path()).collect();
    let more: Vec<&Found> = candidates
        .iter()
        .filter(|(path, _)| orphans.contains(path))
        .flat_map(|(_, subs)| subs.iter().copied())
        .filter(|sub| !reading.contains(sub.path.as_path()))
        .collect();
    changed.extend(more);
    Ok(())
}

/// Read and merge `look`'s changed files in batches (see `BATCH`), and forget its leftovers.
/// `built`: the index the look was made against (see `Store::merge_native_batch`; None: the
/// first batch's).
fn merge_in_batches<'o>(
    store: &Store,
    look: &Look<'_>,
    options: &'o Options,
    observer: &dyn Observer,
    mut built: Option<Option<String>>,
) -> Result<Merging<'o>> {
    let changed = &look.changed;
    let size = options.batch.unwrap_or(BATCH).max(1);
    let batches: Vec<&[&Found]> = changed.chunks(size).collect();
    let several = batches.len() > 1;
    let read_batch = |n: usize, observer: &dyn Observer| {
        let files = batches[n];
        let from: Vec<Option<&ReadPoint>> = files
            .iter()
            .map(|f| f.path.to_str().and_then(|p| look.points.get(p)))
            .collect();
        gather(
            files,
            read_all(files, &from, observer, n * size, changed.len()),
        )
    };
    // The first batch is read before the lock is taken: a catch-up holds it only to merge.
    let mut first = (!batches.is_empty()).then(|| read_batch(0, observer));
    // Gone files are forgotten in the same transaction that marks their sessions.
    let forget: Vec<String> = look
        .forget
        .iter()
        .cloned()
        .chain(look.gone.iter().map(|g| g.path.clone()))
        .collect();
    let gone: Vec<GoneTranscript> = look
        .gone
        .iter()
        .filter_map(|g| {
            Some(GoneTranscript {
                path: g.path.clone(),
                session: g.session.clone()?,
                instead: g.instead.clone(),
            })
        })
        .collect();
    // Each batch in a transaction of its own, under the exclusive lock only while it is merged.
    let mut merging = Merging::new(options);
    // One batch's transaction; None when the index was rebuilt since the first (the import
    // stops there).
    let mut in_one = |merging: &mut Merging<'o>,
                      expected: usize,
                      forget: &[String],
                      fill: &mut dyn FnMut(
        &Merging<'o>,
        &mut NativeMerge<'_, '_>,
    ) -> Result<BatchOutcome>| {
        let mut attempts = 0;
        let merged =
            store.merge_native_batch(expected, forget, options.dry_run, &mut built, |sink| {
                attempts += 1;
                fill(merging, sink)
            })?;
        // Retried with the index rebuilt, or rebuilt by another clinvk between two batches:
        // then it knows only the files read since, and the next import must compare every
        // file, not trust the walk.
        merging.rebuilt |= attempts > 1 || merged.is_none();
        Ok::<_, crate::error::Error>(merged.map(|m| merging.absorb(m)))
    };
    std::thread::scope(|scope| {
        let mut deferred = Vec::new();
        let mut current = first.take();
        let read_batch = &read_batch;
        for n in 0..batches.len() {
            let batch = current.take().unwrap_or_else(|| read_batch(n, observer));
            // The next batch is read while this one is merged (its progress shown after).
            let next = (n + 1 < batches.len())
                .then(|| scope.spawn(move || read_batch(n + 1, &crate::store::Quiet)));
            let last = n + 1 == batches.len() && !several;
            let (forget, gone): (&[String], &[GoneTranscript]) =
                if last { (&forget, &gone) } else { (&[], &[]) };
            let Some(put_aside) = in_one(
                &mut merging,
                batch.gathered.len(),
                forget,
                &mut |merging, sink| merging.merge(sink, &batch, several, gone),
            )?
            else {
                // The rest is for the next import (which reads every file again).
                return Ok(merging);
            };
            deferred.extend(put_aside);
            merging.read.add(batch.read);
            if let Some(next) = next {
                store.let_waiters_in();
                let batch = next
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
                let done = ((n + 2) * size).min(changed.len()) as u64;
                observer.progress(done, changed.len() as u64);
                current = Some(batch);
            }
        }
        if several || batches.is_empty() {
            // Subagents' files read in another batch than their conversation's own, and the
            // files gone.
            let batch = Batch::combine(deferred);
            store.let_waiters_in();
            in_one(&mut merging, 0, &forget, &mut |merging, sink| {
                merging.merge(sink, &batch, false, &gone)
            })?;
        }
        Ok(merging)
    })
}

/// Files read before that were not found now, under the CLIs looked in: gone (the CLI's
/// retention clean: their sessions are marked, then they are forgotten), or no longer under the
/// roots (a source pointed elsewhere: only forgotten, so that they are not looked for on every
/// catch-up). The paths to forget, and the gone ones with their sessions and, when another file
/// of the same conversation is still there (a rollout both compressed and not for a moment),
/// that file.
fn leftovers(
    known: HashMap<String, NativeFile>,
    found: &[Found],
    keys: &[String],
    roots: &Roots,
) -> (Vec<String>, Vec<Gone>) {
    let walked = roots.backends();
    let present: std::collections::HashSet<&str> = keys.iter().map(String::as_str).collect();
    // A conversation's own files still there, by the session they went into.
    let mut still: HashMap<&str, &str> = HashMap::new();
    for (f, key) in found.iter().zip(keys) {
        let session = known.get(key).and_then(|k| k.session_id.as_deref());
        if let (None, Some(session)) = (&f.parent, session) {
            still.insert(session, key);
        }
    }
    let mut forget = Vec::new();
    let mut gone = Vec::new();
    for (path, file) in &known {
        if present.contains(path.as_str()) || !walked.contains(&file.backend) {
            continue;
        }
        match std::fs::symlink_metadata(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => gone.push(Gone {
                path: path.clone(),
                session: file.session_id.clone(),
                instead: file
                    .session_id
                    .as_deref()
                    .and_then(|s| still.get(s))
                    .map(|p| p.to_string()),
            }),
            // Cannot tell (a directory that cannot be read): asked again next time.
            Err(_) => {}
            Ok(_) => forget.push(path.clone()),
        }
    }
    (forget, gone)
}

/// A transcript file read before and gone now.
struct Gone {
    path: String,
    /// The session its conversation went into.
    session: Option<String>,
    /// Another file of the conversation, still there, that the session now comes from.
    instead: Option<String>,
}

/// Conversations gathered from a batch of files, and the files for the index to remember.
#[derive(Default)]
struct Batch {
    gathered: Vec<Gathered>,
    files: Vec<FileRecord>,
    /// What reading them came to, for the report.
    read: ReadTally,
}

/// What reading files came to.
#[derive(Default)]
struct ReadTally {
    skipped: Vec<Skip>,
    skipped_lines: u64,
    bytes_read: u64,
    files_appended: usize,
    /// Some file could not be read at all (it is tried again at the next look).
    unreadable: bool,
}

impl ReadTally {
    fn add(&mut self, other: ReadTally) {
        self.skipped.extend(other.skipped);
        self.skipped_lines += other.skipped_lines;
        self.bytes_read += other.bytes_read;
        self.files_appended += other.files_appended;
        self.unreadable |= other.unreadable;
    }
}

impl Batch {
    /// Conversations put aside from several batches, each once.
    fn combine(parts: Vec<(Gathered, Vec<FileRecord>)>) -> Batch {
        let mut batch = Batch::default();
        let mut at: HashMap<NativeKey, usize> = HashMap::new();
        for (g, files) in parts {
            let i = *at.entry(g.key()).or_insert_with(|| {
                batch.gathered.push(Gathered {
                    backend: g.backend,
                    native_id: g.native_id.clone(),
                    ..Gathered::default()
                });
                batch.gathered.len() - 1
            });
            batch.gathered[i].absorb(g);
            batch.files.extend(files.into_iter().map(|f| FileRecord {
                conversation: Some(i),
                ..f
            }));
        }
        batch
    }
}

/// Each conversation of `files` once, with what each of its files adds.
fn gather(files: &[&Found], reads: Vec<std::result::Result<read::FileRead, String>>) -> Batch {
    let mut batch = Batch::default();
    let tally = &mut batch.read;
    let mut at: HashMap<NativeKey, usize> = HashMap::new();
    for (f, read) in files.iter().zip(reads) {
        let mut read = match read {
            Ok(read) => read,
            Err(reason) => {
                tally.unreadable = true;
                tally.skipped.push(Skip {
                    path: f.path.clone(),
                    reason,
                });
                continue;
            }
        };
        if let Some(problem) = &read.problem {
            tally.skipped.push(Skip {
                path: f.path.clone(),
                reason: problem.clone(),
            });
        }
        tally.skipped_lines += read.conversation.skipped_lines;
        tally.bytes_read += read.bytes;
        tally.files_appended += usize::from(read.resumed);
        let native_id = f
            .parent
            .clone()
            .or_else(|| own_id(f, read.conversation.native_id.as_deref()));
        let Some(native_id) = native_id else {
            tally.skipped.push(Skip {
                path: f.path.clone(),
                reason: "names no conversation id".into(),
            });
            // Remembered, so that it is named once, not on every catch-up.
            batch.files.push(record(f, None, None));
            continue;
        };
        let key = NativeKey {
            backend: f.backend,
            native_id: native_id.clone(),
        };
        let i = *at.entry(key).or_insert_with(|| {
            batch.gathered.push(Gathered {
                backend: Some(f.backend),
                native_id,
                ..Gathered::default()
            });
            batch.gathered.len() - 1
        });
        let texts = (f.parent.is_none() && !read.subagent).then(|| FileTexts {
            whole: !read.resumed,
            messages: std::mem::take(&mut read.conversation.messages),
        });
        let point = batch.gathered[i].add_file(f, read);
        batch.files.push(FileRecord {
            texts,
            ..record(f, point, Some(i))
        });
    }
    batch
}

/// The merges of an import's batches, and what they came to, by conversation.
struct Merging<'a> {
    options: &'a Options,
    /// Each conversation's outcome over all batches (a session made in one batch and added to
    /// in another is new).
    outcomes: HashMap<NativeKey, Outcome>,
    read_again: Vec<String>,
    read: ReadTally,
    /// Sessions marked as having lost their transcript.
    transcripts_gone: usize,
    /// The index was rebuilt during the merge.
    rebuilt: bool,
}

/// What one batch's merge came to (see `Merging::merge`).
#[derive(Default)]
struct BatchOutcome {
    outcomes: Vec<(NativeKey, Outcome)>,
    read_again: Vec<String>,
    skipped: Vec<Skip>,
    transcripts_gone: usize,
    put_aside: Vec<(Gathered, Vec<FileRecord>)>,
}

/// What became of a conversation, the strongest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Outcome {
    Deleted,
    Unchanged,
    Updated,
    New,
}

impl<'a> Merging<'a> {
    fn new(options: &'a Options) -> Merging<'a> {
        Merging {
            options,
            outcomes: HashMap::new(),
            read_again: Vec::new(),
            read: ReadTally::default(),
            transcripts_gone: 0,
            rebuilt: false,
        }
    }

    /// Merge `batch` into `sink`, and mark the sessions of the transcripts `gone`. With
    /// `defer`, conversations of which only subagents' files were read, and that have no
    /// session yet, are handed back to be merged once their own file's batch has been. What it
    /// came to is for `absorb` once the batch is committed (it may be merged again, into a
    /// rebuilt index).
    fn merge(
        &self,
        sink: &mut NativeMerge<'_, '_>,
        batch: &Batch,
        defer: bool,
        gone: &[GoneTranscript],
    ) -> Result<BatchOutcome> {
        let mut merged = BatchOutcome::default();
        // Then the gone, so that a session that moved on to another file read now is not marked.
        let mark_gone = |sink: &mut NativeMerge<'_, '_>, merged: &mut BatchOutcome| {
            if !gone.is_empty() && !self.options.dry_run {
                merged.transcripts_gone = sink.mark_gone(gone)?;
            }
            Ok(())
        };
        if batch.gathered.is_empty() && batch.files.is_empty() {
            mark_gone(sink, &mut merged)?;
            return Ok(merged);
        }
        let keys: Vec<NativeKey> = batch.gathered.iter().map(Gathered::key).collect();
        let include_deleted = self.options.include_deleted;
        let outcomes = sink.merge(
            &keys,
            |i, input| {
                let g = &batch.gathered[i];
                if defer && g.main.is_none() && input.existing.is_none() {
                    return Err(PUT_ASIDE.into());
                }
                merge::apply(g, input, include_deleted)
            },
            &batch.files,
        )?;
        for (i, (key, outcome)) in keys.into_iter().zip(outcomes).enumerate() {
            let seen = match outcome {
                Merged::Created(_) => Outcome::New,
                Merged::Updated(_) => Outcome::Updated,
                Merged::Unchanged(_) => Outcome::Unchanged,
                Merged::Skipped(why) if why == merge::DELETED => Outcome::Deleted,
                Merged::Skipped(why) if why == PUT_ASIDE => {
                    let files = batch
                        .files
                        .iter()
                        .filter(|f| f.conversation == Some(i))
                        .cloned()
                        .collect();
                    merged.put_aside.push((batch.gathered[i].clone(), files));
                    continue;
                }
                Merged::Skipped(why) if why == merge::NOTHING => continue,
                Merged::Skipped(why) if why == merge::READ_AGAIN => {
                    merged.read_again.extend(
                        batch
                            .files
                            .iter()
                            .filter(|f| f.conversation == Some(i))
                            .map(|f| f.path.clone()),
                    );
                    continue;
                }
                Merged::Skipped(why) => {
                    merged.skipped.push(Skip {
                        path: batch.gathered[i].main.clone().unwrap_or_default(),
                        reason: why,
                    });
                    continue;
                }
            };
            merged.outcomes.push((key, seen));
        }
        mark_gone(sink, &mut merged)?;
        Ok(merged)
    }

    /// Count a committed batch's outcomes; the conversations it put aside.
    fn absorb(&mut self, merged: BatchOutcome) -> Vec<(Gathered, Vec<FileRecord>)> {
        for (key, seen) in merged.outcomes {
            let known = self.outcomes.entry(key).or_insert(seen);
            *known = (*known).max(seen);
        }
        self.read_again.extend(merged.read_again);
        self.read.skipped.extend(merged.skipped);
        self.transcripts_gone += merged.transcripts_gone;
        merged.put_aside
    }

    /// The counts into `report`; the files to read again, and whether the look is incomplete
    /// (some could not be read, or the index was rebuilt meanwhile).
    fn finish(self, report: &mut Report) -> (Vec<String>, bool) {
        for (key, outcome) in self.outcomes {
            let counts = report.by_backend.entry(key.backend).or_default();
            match outcome {
                Outcome::New => counts.new += 1,
                Outcome::Updated => counts.updated += 1,
                Outcome::Unchanged => counts.unchanged += 1,
                Outcome::Deleted => report.deleted += 1,
            }
        }
        report.transcripts_gone = self.transcripts_gone;
        let read = self.read;
        report.skipped.extend(read.skipped);
        report.skipped_lines += read.skipped_lines;
        report.bytes_read += read.bytes_read;
        report.files_appended += read.files_appended;
        (self.read_again, read.unreadable || self.rebuilt)
    }
}

/// Remember a complete look's fingerprint. Only a shortcut for the next look: a store that
/// cannot take it (read-only, full) is compared file by file again next time.
fn remember_walk(store: &Store, (roots, fingerprint): &(String, i64), built: &Option<String>) {
    let _ = store.record_native_walk(roots, *fingerprint, built);
}

/// The conversation id of a file that is not a subagent's: Claude's is its file name (what
/// `--resume` takes; a fork's copied lines keep other ids), the others' what the file says,
/// else what its name says.
fn own_id(f: &Found, said: Option<&str>) -> Option<String> {
    let name = f.path.file_name()?.to_str()?;
    let from_name = match f.backend {
        Backend::Claude => name.strip_suffix(".jsonl").map(str::to_string),
        // rollout-<time>-<thread id>.jsonl[.zst]: the id is the last 36 characters.
        Backend::Codex => {
            let stem = name.trim_end_matches(".zst").trim_end_matches(".jsonl");
            // (Bytes, not characters: a name of other characters names no id, and no panic.)
            stem.get(stem.len().saturating_sub(36)..)
                .filter(|id| id.len() == 36 && id.len() < stem.len())
                .map(str::to_string)
        }
        Backend::Gemini => None,
    };
    match f.backend {
        Backend::Claude => from_name.or_else(|| said.map(str::to_string)),
        _ => said.map(str::to_string).or(from_name),
    }
    .filter(|id| !id.is_empty())
}

fn record(f: &Found, point: Option<ReadPoint>, conversation: Option<usize>) -> FileRecord {
    FileRecord {
        path: path_key(&f.path),
        file: NativeFile {
            backend: f.backend,
            stamp: f.stamp,
            session_id: None,
        },
        point,
        conversation,
        texts: None,
    }
}

/// A path as the index keeps it.
fn path_key(path: &Path) -> String {
    path.display().to_string()
}

/// Read the files in parallel (at most eight threads: reading is I/O and JSON), in their
/// order; a few on this thread.
fn read_all(
    files: &[&Found],
    from: &[Option<&ReadPoint>],
    observer: &dyn Observer,
    done_before: usize,
    total: usize,
) -> Vec<std::result::Result<read::FileRead, String>> {
    if files.len() <= 4 {
        return files
            .iter()
            .zip(from)
            .map(|(f, from)| read::read(f, *from))
            .collect();
    }
    let threads = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .min(8);
    let next = AtomicUsize::new(0);
    let results: Vec<Mutex<Option<std::result::Result<read::FileRead, String>>>> =
        files.iter().map(|_| Mutex::new(None)).collect();
    let (before, total) = (done_before as u64, total as u64);
    std::thread::scope(|scope| {
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        for _ in 0..threads {
            let done_tx = done_tx.clone();
            let (next, results) = (&next, &results);
            scope.spawn(move || loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(f) = files.get(i) else { break };
                let result = read::read(f, from[i]);
                *results[i].lock().unwrap_or_else(|e| e.into_inner()) = Some(result);
                let _ = done_tx.send(());
            });
        }
        drop(done_tx);
        // Progress from this thread only (the observer is not shared across threads).
        let mut done = before;
        while done_rx.recv().is_ok() {
            done += 1;
            if done.is_multiple_of(64) || done == total {
                observer.progress(done, total);
            }
        }
    });
    results
        .into_iter()
        .map(|m| {
            m.into_inner()
                .unwrap_or_else(|e| e.into_inner())
                .unwrap_or_else(|| Err("not read".into()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codex(name: &str) -> Found {
        Found {
            backend: Backend::Codex,
            path: std::path::PathBuf::from("/x").join(name),
            parent: None,
            workdir: None,
            stamp: Default::default(),
        }
    }

    #[test]
    fn a_rollout_names_its_thread_or_nothing() {
        let id = "01a2313a-0d07-7771-ad0b-6e3bccc3126b";
        let name = format!("rollout-2026-12-01T10-50-17-{id}.jsonl.zst");
        assert_eq!(own_id(&codex(&name), None).as_deref(), Some(id));
        assert_eq!(own_id(&codex(&name), Some("said")).as_deref(), Some("said"));
        // Multi-byte characters where the id would be: no id from the name, and no panic.
        let odd = format!("rollout-\u{20ac}{}.jsonl", "a".repeat(35));
        assert_eq!(own_id(&codex(&odd), None), None);
        assert_eq!(own_id(&codex("rollout-short.jsonl"), None), None);
    }
}
