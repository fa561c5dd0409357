//! A conversation read from its transcript files, as a session: a new one (origin `imported`),
//! or what an existing session gains. Every API request is counted once:
//! - a request already in the session (same key) is not added again, only corrected when its
//!   final figures differ;
//! - a request made during a run through clinvk (within that run's start and duration) is that
//!   run's: the run's turn already counts it. A run that recorded no usage (killed at its
//!   deadline) gets the usage of the requests it made;
//! - Codex: a request up to the running total the session has accounted for was charged to a
//!   run through clinvk already (a run is charged the total's growth since the last one, which
//!   includes requests made in between in the CLI); the thread's running total seen in the
//!   rollout becomes the session's, so that the next run through clinvk is charged only what it
//!   adds.

use std::collections::HashSet;
use std::path::PathBuf;

use chrono::{DateTime, Duration, Utc};

use super::read::FileRead;
use super::sources::Found;
use crate::domain::{Backend, Origin, SessionId, Status, Tokens};
use crate::store::index::native::ReadPoint;
use crate::store::native::{MergeInput, NativeKey};
use crate::store::session::{truncate_prompt, TokenUsage, Turn};
use crate::store::Session;
use crate::transcripts::Request;

/// The reason given for a conversation whose session was deleted (and that has no activity
/// since): it stays deleted.
pub const DELETED: &str = "its session was deleted";

/// The reason given for a conversation with nothing to make a session of (a subagent's file
/// without its conversation's, a file without a request or a prompt).
pub use crate::store::native::NOTHING;

/// The reason given for a conversation read in part (what was appended) whose session is gone:
/// its files are read whole at the next import.
pub use crate::store::native::READ_AGAIN;

/// One conversation, gathered from the files of it that changed.
#[derive(Debug, Clone, Default)]
pub struct Gathered {
    pub backend: Option<Backend>,
    pub native_id: String,
    /// The conversation's own file (not a subagent's), when it was among those read.
    pub main: Option<PathBuf>,
    pub workdir: Option<String>,
    pub prompt: Option<String>,
    pub first_at: Option<DateTime<Utc>>,
    pub last_at: Option<DateTime<Utc>>,
    /// Every request, once (by key), from all its files.
    pub requests: Vec<Request>,
    pub forked_from: Option<String>,
    /// Codex: the thread's running total at the end of its rollout.
    pub running_total: Option<Tokens>,
    /// The newest mtime of its files: the time of last resort.
    pub modified: Option<DateTime<Utc>>,
    /// Some of its files were read only from where the last read stopped: this adds to the
    /// session that holds the rest.
    pub resumed: bool,
}

impl Gathered {
    pub fn key(&self) -> NativeKey {
        NativeKey {
            backend: self.backend.expect("gathered with its backend"),
            native_id: self.native_id.clone(),
        }
    }

    /// What one more file of the conversation says (its own file's metadata; any file's
    /// requests); where the next read of the file can start.
    pub fn add_file(&mut self, f: &Found, read: FileRead) -> Option<ReadPoint> {
        let c = read.conversation;
        self.resumed |= read.resumed;
        if f.parent.is_none() && !read.subagent {
            self.main = Some(f.path.clone());
            self.workdir = self
                .workdir
                .take()
                .or(c.workdir)
                .or_else(|| f.workdir.clone());
            self.prompt = self.prompt.take().or(c.prompt);
            self.forked_from = self.forked_from.take().or(c.forked_from);
            for t in [c.first_at, c.last_at].into_iter().flatten() {
                crate::transcripts::widen(&mut self.first_at, &mut self.last_at, t);
            }
            if let Some(total) = read.running_total {
                self.running_total = Some(self.running_total.map_or(total, |t| t.max_each(&total)));
            }
        }
        let modified = DateTime::from_timestamp_nanos(f.stamp.mtime_ns);
        self.modified = Some(self.modified.map_or(modified, |m| m.max(modified)));
        self.add_requests(c.requests);
        read.point
    }

    /// What another gathering of the same conversation's subagents' files adds.
    pub fn absorb(&mut self, other: Gathered) {
        self.resumed |= other.resumed;
        if let Some(m) = other.modified {
            self.modified = Some(self.modified.map_or(m, |mine| mine.max(m)));
        }
        self.add_requests(other.requests);
    }

    /// Add requests from one more file of the conversation (a subagent's, a copy), once each.
    pub fn add_requests(&mut self, requests: Vec<Request>) {
        let mut known: HashSet<String> = self.requests.iter().map(|r| r.key.clone()).collect();
        for r in requests {
            if known.insert(r.key.clone()) {
                self.requests.push(r);
            }
        }
    }
}

/// What the session holding `g` should be now: Ok(None) to leave it (or make none), Err(why)
/// to skip the conversation.
pub fn apply(
    g: &Gathered,
    input: MergeInput<'_>,
    include_deleted: bool,
) -> Result<Option<Session>, String> {
    match input.existing {
        Some(existing) => Ok(Some(update(g, existing))),
        // Only the end of its files was read: not a session of its own.
        None if g.resumed => Err(READ_AGAIN.into()),
        // A subagent's file alone: its session comes with its conversation's own file (read in
        // another batch, say), which also says whether a deleted one comes back.
        None if g.main.is_none() => Ok(None),
        None => {
            if let Some(d) = input.deleted {
                let active_since = g.last_at.is_some_and(|t| t > d.last_used_at);
                if !include_deleted && !active_since {
                    return Err(DELETED.into());
                }
            }
            Ok(create(g))
        }
    }
}

fn create(g: &Gathered) -> Option<Session> {
    let backend = g.backend?;
    // A subagent's file alone: its session comes with its own file.
    let main = g.main.as_ref()?;
    if g.requests.is_empty() && g.prompt.is_none() {
        return None;
    }
    let first_request = g.requests.iter().map(|r| r.at).min();
    let last_request = g.requests.iter().map(|r| r.at).max();
    let created = g.first_at.or(first_request).or(g.modified)?;
    let mut session = Session::new(
        SessionId::generate(),
        backend,
        g.workdir.clone().unwrap_or_default(),
        truncate_prompt(g.prompt.as_deref().unwrap_or_default()),
        created,
    );
    session.backend_session_id = Some(g.native_id.clone());
    session.status = Status::Active;
    session.origin = Origin::Imported;
    session.last_used_at = g
        .last_at
        .into_iter()
        .chain(last_request)
        .max()
        .unwrap_or(created);
    session.transcript_at(main);
    session.turns = g.requests.iter().map(turn).collect();
    session.turns.sort_by_key(|t| t.at);
    session.model = g
        .requests
        .iter()
        .max_by_key(|r| r.at)
        .and_then(|r| r.model.clone());
    let mut usage = TokenUsage::default();
    for t in &session.turns {
        usage.add(t.token_usage.as_ref().expect("a request's turn has usage"));
    }
    session.token_usage = usage;
    if backend == Backend::Codex {
        session.metadata.thread_usage = g.running_total.map(TokenUsage::from);
    }
    Some(session)
}

fn update(g: &Gathered, mut s: Session) -> Session {
    let mut added = TokenUsage::default();
    let mut removed = TokenUsage::default();
    let mut new_turns: Vec<Turn> = Vec::new();
    // Codex: the thread's running total the session has accounted for (its runs were charged
    // up to it, the part before a run included).
    let accounted = s.metadata.thread_usage.as_ref().map(|u| u.tokens().total());
    for r in &g.requests {
        if let Some(t) = s
            .turns
            .iter_mut()
            .find(|t| t.request.as_deref() == Some(r.key.as_str()))
        {
            // The same request, read again: its final figures.
            let now = TokenUsage::from(r.tokens);
            if t.token_usage.as_ref() != Some(&now) {
                if let Some(old) = &t.token_usage {
                    removed.add(old);
                }
                added.add(&now);
                t.token_usage = Some(now);
                if r.model.is_some() {
                    t.model = r.model.clone();
                }
            }
            continue;
        }
        // Codex says exactly which requests the runs were charged: the running total decides,
        // not the clock.
        if let Some(after) = r.running_total {
            if accounted.is_none_or(|a| after.total() > a) {
                new_turns.push(turn(r));
            }
            continue;
        }
        if let Some(run) = s
            .turns
            .iter()
            .position(|t| t.request.is_none() && covers(t, r.at))
        {
            // A run through clinvk made it; a run that recorded no usage gets it now.
            let covered = covered_usage(g, &s.turns[run]);
            let t = &mut s.turns[run];
            if t.token_usage.is_none() && covered != TokenUsage::default() {
                added.add(&covered);
                t.token_usage = Some(covered);
            }
            continue;
        }
        new_turns.push(turn(r));
    }
    for t in &new_turns {
        added.add(t.token_usage.as_ref().expect("a request's turn has usage"));
    }
    if !new_turns.is_empty() {
        s.turns.extend(new_turns);
        s.turns.sort_by_key(|t| t.at);
    }
    if added != TokenUsage::default() || removed != TokenUsage::default() {
        let mut usage = s.token_usage.saturating_sub(&removed);
        usage.add(&added);
        // Keep what the file had beyond the counts (unknown fields).
        usage.extra = std::mem::take(&mut s.token_usage.extra);
        s.token_usage = usage;
    }
    // As for a new session: its last record, or its last request (a subagent's) if later.
    if let Some(last) = g
        .last_at
        .into_iter()
        .chain(g.requests.iter().map(|r| r.at))
        .max()
    {
        s.last_used_at = s.last_used_at.max(last);
    }
    if let Some(main) = &g.main {
        s.transcript_at(main);
    }
    if s.workdir.is_empty() {
        s.workdir = g.workdir.clone().unwrap_or_default();
    }
    if s.prompt.is_empty() {
        s.prompt = truncate_prompt(g.prompt.as_deref().unwrap_or_default());
    }
    if s.model.is_none() {
        s.model = g
            .requests
            .iter()
            .max_by_key(|r| r.at)
            .and_then(|r| r.model.clone());
    }
    if let Some(total) = g.running_total {
        let known = s.metadata.thread_usage.as_ref().map(TokenUsage::tokens);
        let highest = known.map_or(total, |k| k.max_each(&total));
        if known != Some(highest) {
            s.metadata.thread_usage = Some(TokenUsage::from(highest));
        }
    }
    s
}

/// Whether a run through clinvk (started at `t.at`, lasting `t.duration_seconds`) made a
/// request at `at`. Both clocks are the machine's.
fn covers(t: &Turn, at: DateTime<Utc>) -> bool {
    // The run's start is taken before the CLI is started, its end after the CLI exited: what
    // the CLI wrote in between is stamped in between (to the millisecond, by all three).
    let (before, after) = (Duration::milliseconds(10), Duration::milliseconds(10));
    let lasted = t
        .duration_seconds
        .filter(|d| d.is_finite() && *d >= 0.0)
        .map_or(Duration::minutes(1), |d| {
            Duration::milliseconds((d * 1000.0).min(1e12) as i64)
        });
    at >= t.at - before && at <= t.at + lasted + after
}

/// The usage of the requests the run `t` made.
fn covered_usage(g: &Gathered, t: &Turn) -> TokenUsage {
    let mut usage = TokenUsage::default();
    for r in g.requests.iter().filter(|r| covers(t, r.at)) {
        usage.add(&TokenUsage::from(r.tokens));
    }
    usage
}

fn turn(r: &Request) -> Turn {
    Turn {
        at: r.at,
        prompt: String::new(),
        model: r.model.clone(),
        exit_code: None,
        duration_seconds: None,
        token_usage: Some(TokenUsage::from(r.tokens)),
        cost_usd: None,
        error: None,
        request: Some(r.key.clone()),
        extra: Default::default(),
    }
}
