//! Running a prompt in a session: the lifecycle around one backend run.
//!
//! - The session file is written (`created`) before the CLI starts, so a crash leaves a trace.
//! - The store's lock is not held while the CLI runs (that takes minutes): the result is
//!   recorded afterwards with a read-modify-write under the lock, so concurrent runs in one
//!   session each append their turn and nothing is lost.
//! - Nothing is created when the run cannot start (CLI not installed, bad model name, a backend
//!   that cannot fork).
//! - A run has a deadline (`--timeout`, `run.timeout`): past it the CLI is stopped and the run
//!   recorded as timed out. Retries the CLI announces are passed to a `RunObserver` as they come.
//! - Each run records only its own usage: Codex reports a thread's running total, so the
//!   previous total (for a fork, the parent's, which its first total already holds) is taken
//!   off. What a CLI leaves out of its output is read from its transcript: a Codex thread's
//!   model, and whether a failed Gemini run left a chat to resume.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::backend::invoke::{self, Invocation, Mode};
use crate::backend::{self, process, retry, Outcome, Tokens};
use crate::clock;
use crate::config::Settings;
use crate::domain::{add_tags, normalize_tag, Backend, SessionId, Status};
use crate::error::{exit, Error, Result};
use crate::store::session::{truncate_prompt, Session, TokenUsage, Turn};
use crate::store::Store;
use crate::transcripts::{self, locate::Homes};

/// Between SIGTERM and SIGKILL when a run's deadline passes: time for the CLI to save its
/// transcript.
pub const KILL_GRACE: Duration = Duration::from_secs(10);

/// Hears what a run says while it runs (on a terminal, the CLI shows it).
pub trait RunObserver: Sync {
    /// The CLI announced a retry: "claude: API error 429, retrying (3/10)".
    fn retrying(&self, line: &str);
    /// The CLI has stopped (anything shown for the run can go).
    fn finished(&self);
}

/// An observer that ignores everything.
pub struct Quiet;

impl RunObserver for Quiet {
    fn retrying(&self, _: &str) {}
    fn finished(&self) {}
}

/// What to run the prompt in.
#[derive(Debug, Clone)]
pub enum Target {
    /// A new session in `workdir`.
    New { backend: Backend, workdir: String },
    /// An existing session (id or unique prefix), in its own working directory.
    Resume { key: String },
    /// A new session that starts from an existing one's context (Claude `--fork-session`).
    Fork { key: String },
    /// A run that leaves no session behind (`--ephemeral`).
    Ephemeral { backend: Backend, workdir: String },
}

/// One prompt to run.
#[derive(Debug, Clone)]
pub struct Request {
    pub target: Target,
    pub prompt: String,
    /// `-m`: passed to the CLI as `--model`.
    pub model: Option<String>,
    /// `--tag` values (already normalised), added to the session.
    pub tags: Vec<String>,
    /// Stop the CLI after this long (`--timeout`, `run.timeout`); None waits for it.
    pub timeout: Option<Duration>,
}

/// How a run went.
#[derive(Debug, Clone)]
pub struct Report {
    /// The session as recorded; None for an ephemeral run, or when the file vanished meanwhile.
    pub session: Option<Session>,
    pub backend: Backend,
    pub outcome: Outcome,
    /// This run's usage as recorded (the per-run share for Codex).
    pub usage: Option<Tokens>,
    /// The CLI's exit code; None when a signal ended it.
    pub backend_exit_code: Option<i32>,
    /// The signal clinvk got (and forwarded) while the CLI ran.
    pub interrupted: Option<i32>,
    /// The deadline the CLI was stopped at.
    pub timed_out: Option<Duration>,
    pub duration: Duration,
    /// Things worth a line on stderr that did not stop the run.
    pub warnings: Vec<String>,
    /// The exit code of the error that kept the run from being recorded (e.g. a lock timeout).
    pub record_failure: Option<i32>,
}

impl Report {
    /// Why the run failed, if it did.
    pub fn error(&self) -> Option<&str> {
        self.outcome.error.as_deref()
    }

    /// clinvk's exit code for this run (see README "Exit codes").
    pub fn exit_code(&self) -> i32 {
        if self.interrupted.is_some() {
            exit::INTERRUPTED
        } else if self.timed_out.is_some() {
            exit::TIMED_OUT
        } else if let Some(code) = self.record_failure {
            code
        } else if self.outcome.error.is_none() {
            exit::OK
        } else {
            match self.backend_exit_code {
                // Gemini's documented codes (auth 41, input 42, ... untrusted 55) mean something
                // to its users; every other failure is one code.
                Some(code @ 41..=55) if self.backend == Backend::Gemini => code,
                _ => exit::BACKEND_FAILED,
            }
        }
    }
}

/// Runs prompts against the store with the user's settings.
pub struct Runner<'a> {
    pub store: Option<&'a Store>,
    pub settings: &'a Settings,
    /// $PATH, where the CLIs are looked up.
    pub path: Option<OsString>,
    /// Where the CLIs keep their transcripts.
    pub homes: Homes,
    pub observer: &'a dyn RunObserver,
}

impl Runner<'_> {
    pub fn run(&self, request: &Request) -> Result<Report> {
        // Before anything is made: a signal from here on is recorded, not a silent death.
        process::catch_interrupts().map_err(|e| Error::io("<signal handlers>", e))?;
        match &request.target {
            Target::Ephemeral { backend, workdir } => {
                let program = self.program(*backend)?;
                let invocation = self.invocation(*backend, Mode::Ephemeral, request)?;
                let run =
                    self.execute(*backend, &program, &invocation, request, Path::new(workdir))?;
                // A CLI that keeps its conversation even so (Gemini has no such flag): an import
                // must not bring in what the user asked clinvk not to keep.
                if let (Some(store), Some(id), true) = (
                    self.store,
                    run.outcome.session_id.as_deref(),
                    run.transcript.is_some(),
                ) {
                    let _ = store.forget_conversation(*backend, id, clock::now()?);
                }
                Ok(run.report(None, Vec::new()))
            }
            Target::New { backend, workdir } => {
                let program = self.program(*backend)?;
                let invocation = self.invocation(*backend, Mode::New, request)?;
                let mut session = Session::new(
                    SessionId::generate(),
                    *backend,
                    workdir.clone(),
                    truncate_prompt(&request.prompt),
                    clock::now()?,
                );
                session.model = request.model.clone();
                session.tags = self.new_tags(&[], &request.tags);
                let session = self.store()?.create(session)?;
                self.run_recorded(session, &program, &invocation, request, true, None)
            }
            Target::Resume { key } => {
                // One read and write of the session: check that it can be resumed (a failed
                // check writes nothing), then mark it in use from now on, so that a `sessions
                // clean` running meanwhile does not delete a session last used long ago.
                let now = clock::now()?;
                let (session, (program, invocation, request)) = self.store()?.update(key, |s| {
                    let mode = resume_mode(s)?;
                    let program = self.program(s.backend)?;
                    // Codex does not report the model: resume with the one the session was
                    // started with, or it would fall back to the CLI's default. A fork made
                    // without a prompt runs with the model it was made with (`-m`, else the
                    // parent's).
                    let mut request = request.clone();
                    let forking = matches!(mode, Mode::Fork(_));
                    if (s.backend == Backend::Codex || forking) && request.model.is_none() {
                        request.model = s.model.clone();
                    }
                    let invocation = self.invocation(s.backend, mode, &request)?;
                    check_transcript(s)?;
                    check_workdir(s)?;
                    let changed = s.last_used_at < now;
                    s.last_used_at = s.last_used_at.max(now);
                    Ok((changed, (program, invocation, request)))
                })?;
                // A fork made without a prompt forks now, from the parent as it is now.
                let parent_total = match (&session.metadata.fork_from, &session.parent_id) {
                    (Some(_), Some(parent)) if session.backend_session_id.is_none() => self
                        .store()?
                        .get(parent.as_str())
                        .ok()
                        .map(|p| thread_total(&p)),
                    _ => None,
                };
                self.run_recorded(
                    session,
                    &program,
                    &invocation,
                    &request,
                    false,
                    parent_total,
                )
            }
            Target::Fork { key } => {
                let parent = self.store()?.get(key)?;
                let (session, program, invocation) = self.prepare_fork(&parent, request)?;
                let session = self.store()?.create(session)?;
                let parent_total = Some(thread_total(&parent));
                self.run_recorded(session, &program, &invocation, request, true, parent_total)
            }
        }
    }

    /// `sessions fork ID` without a prompt: a new session that forks from the parent at its
    /// first run (`clinvk resume NEW "prompt"`). Nothing runs now.
    pub fn fork_later(&self, key: &str, tags: &[String], model: Option<&str>) -> Result<Session> {
        let parent = self.store()?.get(key)?;
        let request = Request {
            target: Target::Fork { key: key.into() },
            prompt: String::new(),
            model: model.map(str::to_string),
            tags: tags.to_vec(),
            timeout: None,
        };
        let (mut session, _, _) = self.prepare_fork(&parent, &request)?;
        session.metadata.fork_from = parent.backend_session_id.clone();
        self.store()?.create(session)
    }

    fn prepare_fork(
        &self,
        parent: &Session,
        request: &Request,
    ) -> Result<(Session, PathBuf, Invocation)> {
        let Some(parent_backend_id) = parent.backend_session_id.as_deref() else {
            return Err(not_resumable(parent));
        };
        let program = self.program(parent.backend)?;
        let model = request.model.clone().or_else(|| parent.model.clone());
        let invocation = self.invocation(
            parent.backend,
            Mode::Fork(parent_backend_id),
            &Request {
                model: model.clone(),
                ..request.clone()
            },
        )?;
        check_transcript(parent)?;
        check_workdir(parent)?;
        let mut session = Session::new(
            SessionId::generate(),
            parent.backend,
            parent.workdir.clone(),
            truncate_prompt(&request.prompt),
            clock::now()?,
        );
        session.model = model;
        session.parent_id = Some(parent.id.clone());
        session.tags = self.new_tags(&parent.tags, &request.tags);
        Ok((session, program, invocation))
    }

    fn store(&self) -> Result<&Store> {
        self.store
            .ok_or_else(|| Error::usage("internal: this run needs the session store"))
    }

    /// The CLI to run: `backends.<name>.command` if set, else `<name>` on $PATH.
    fn program(&self, backend: Backend) -> Result<PathBuf> {
        let configured = self.settings.command(backend);
        let program = configured.map_or_else(
            || PathBuf::from(backend.as_str()),
            crate::paths::expand_home,
        );
        invoke::locate(&program, self.path.as_deref()).ok_or_else(|| {
            let config_key = format!("backends.{backend}.command");
            let fix = format!("`clinvk config set {config_key} /path/to/{backend}`");
            let detail = match configured {
                Some(command) if program.components().count() == 1 => {
                    format!("{config_key} is '{command}', which is not on PATH; fix it with {fix}")
                }
                Some(command) => format!(
                    "{config_key} is '{command}', which is not an executable file; fix it with {fix}"
                ),
                None => format!(
                    "no `{backend}` on PATH; install it ({}) or point clinvk at it with {fix}",
                    install_hint(backend)
                ),
            };
            Error::BackendMissing {
                backend: backend.to_string(),
                detail,
            }
        })
    }

    fn invocation(
        &self,
        backend: Backend,
        mode: Mode<'_>,
        request: &Request,
    ) -> Result<Invocation> {
        invoke::invocation(backend, mode, request.model.as_deref(), &request.prompt)
            .map_err(|e| Error::usage(e.to_string()))
    }

    /// `session.default_tags` with `${VAR}` expanded, then `inherited`, then `extra`, without
    /// repeats. A default tag that expands to nothing (an unset variable) is left out.
    fn new_tags(&self, inherited: &[String], extra: &[String]) -> Vec<String> {
        let mut tags: Vec<String> = Vec::new();
        let defaults = self
            .settings
            .default_tags
            .iter()
            .filter_map(|t| normalize_tag(&expand_vars(t)).ok());
        add_tags(
            &mut tags,
            defaults
                .chain(inherited.iter().cloned())
                .chain(extra.iter().cloned()),
        );
        tags
    }

    /// Run the CLI in `session` and record the run. `parent_total`: for a fork, the parent's
    /// running total (Codex), known from the store; the fork's transcript knows it better.
    fn run_recorded(
        &self,
        session: Session,
        program: &Path,
        invocation: &Invocation,
        request: &Request,
        created_now: bool,
        parent_total: Option<Option<Tokens>>,
    ) -> Result<Report> {
        let store = self.store()?;
        let started = clock::now()?;
        let run = match self.execute(
            session.backend,
            program,
            invocation,
            request,
            Path::new(&session.workdir),
        ) {
            Ok(run) => run,
            Err(e) => {
                // The CLI never started: a session made for this run goes again (nothing ran
                // in it), an existing one is left as it was.
                if created_now {
                    let _ = store.delete(&[session.id.to_string()], false);
                }
                return Err(e);
            }
        };
        let mut run = run;
        let mut warnings = Vec::new();
        if session.backend_session_id.is_none() {
            self.check_first_run(&session, &mut run, parent_total, &mut warnings);
        }
        let run = run;
        let finished = clock::now()?;
        let keep_usage = self.settings.store_token_usage;
        let mut usage = None;
        let mut record_failure = None;
        let recorded = store.update(session.id.as_str(), |s| {
            Ok((
                true,
                record(s, &run, request, started, finished, keep_usage),
            ))
        });
        let session = match recorded {
            Ok((session, recorded_usage)) => {
                usage = recorded_usage;
                Some(session)
            }
            Err(Error::NotFound { .. }) => {
                warnings.push(format!(
                    "session {} was deleted while {} ran: this run is not recorded",
                    session.id, session.backend
                ));
                None
            }
            Err(e) => {
                // The response is still shown; the file keeps its `created` trace.
                let resume = run.outcome.session_id.as_ref().map_or(String::new(), |id| {
                    format!(" ({} session id: {id})", session.backend)
                });
                warnings.push(format!(
                    "could not record this run in session {}{resume}: {e}",
                    session.id
                ));
                record_failure = Some(e.exit_code());
                None
            }
        };
        warnings.extend(self.clean_if_due(store, finished));
        let mut report = run.report(session, warnings);
        report.usage = if keep_usage { usage } else { None };
        report.record_failure = record_failure;
        Ok(report)
    }

    /// Run the CLI once, with the request's deadline, passing its retries to the observer.
    fn execute(
        &self,
        backend: Backend,
        program: &Path,
        invocation: &Invocation,
        request: &Request,
        workdir: &Path,
    ) -> Result<Run> {
        if !workdir.is_dir() {
            return Err(Error::usage(format!(
                "the working directory '{}' does not exist",
                workdir.display()
            )));
        }
        let last_retry = Mutex::new(None::<String>);
        let on_line = |stream: process::Stream, line: &str| {
            if let Some(retry) = retry::notice(backend, stream, line) {
                let line = retry.line(backend);
                self.observer.retrying(&line);
                *last_retry.lock().unwrap_or_else(|e| e.into_inner()) = Some(line);
            }
        };
        let limits = process::Limits {
            timeout: request.timeout,
            grace: KILL_GRACE,
            on_line: &on_line,
        };
        let captured = process::run_with(program, invocation, &request.prompt, workdir, &limits);
        self.observer.finished();
        let captured = captured.map_err(|source| Error::Spawn {
            backend: backend.to_string(),
            program: program.to_path_buf(),
            source,
        })?;
        let mut outcome = backend::parse(
            backend,
            &captured.stdout,
            &captured.stderr,
            captured.exit_code,
        );
        let last_retry = last_retry.into_inner().unwrap_or_else(|e| e.into_inner());
        let timed_out = request.timeout.filter(|_| captured.timed_out);
        if let Some(signal) = captured.interrupted {
            outcome.error = Some(format!(
                "interrupted by {} before {backend} finished",
                signal_name(signal)
            ));
        } else if let Some(limit) = timed_out {
            let retrying = last_retry.map_or(String::new(), |l| format!(" (last: {l})"));
            outcome.error = Some(format!(
                "timed out after {}{retrying}; allow more with --timeout or `clinvk config set run.timeout`",
                human_duration(limit)
            ));
        }
        let transcript = outcome
            .session_id
            .as_deref()
            .and_then(|id| self.transcript_of(backend, id, workdir));
        // A Codex run that leaves no rollout (--ephemeral) has nothing to look for.
        let rollout_start = match backend {
            Backend::Codex if !matches!(request.target, Target::Ephemeral { .. }) => {
                let killed = captured.timed_out || captured.interrupted.is_some();
                self.read_codex_rollout(&mut outcome, killed)
            }
            _ => None,
        };
        Ok(Run {
            backend,
            outcome,
            exit_code: captured.exit_code,
            interrupted: captured.interrupted,
            timed_out: timed_out.filter(|_| captured.interrupted.is_none()),
            duration: captured.duration,
            rollout_start,
            thread_base: None,
            transcript,
        })
    }

    /// Where the CLI keeps the transcript of conversation `native_id` (run in `workdir`).
    fn transcript_of(&self, backend: Backend, native_id: &str, workdir: &Path) -> Option<PathBuf> {
        use transcripts::locate;
        let workdir = workdir.to_string_lossy();
        match backend {
            Backend::Claude => locate::claude_transcript(&self.homes.claude, &workdir, native_id),
            Backend::Codex => locate::codex_rollout(self.homes.codex.as_deref()?, native_id),
            Backend::Gemini => {
                locate::gemini_chat(self.homes.gemini.as_deref()?, native_id, &workdir)
            }
        }
    }

    /// What a Codex thread's rollout adds to its stream: the model (the turn that reached the
    /// reported total), and, for a run stopped before `turn.completed` (`killed`), the running
    /// total it had reached. For a fork, returns the total it started from: its own first count
    /// says, else (its first run counted nothing) its parent's rollout where it forked.
    fn read_codex_rollout(&self, outcome: &mut Outcome, killed: bool) -> Option<Tokens> {
        use transcripts::codex::Rollout;
        use transcripts::locate::{codex_rollout, read};
        let thread = outcome.session_id.as_deref()?;
        let codex_home = self.homes.codex.as_deref()?;
        let rollout = Rollout::parse(&read(&codex_rollout(codex_home, thread)?)?);
        if outcome.model.is_none() {
            outcome.model = rollout.model_at(outcome.usage.as_ref()).map(str::to_string);
        }
        if killed && outcome.usage.is_none() {
            outcome.usage = rollout.counts.last().map(|c| c.total);
        }
        let parent = rollout.forked_from.as_deref()?;
        rollout.starting_total().or_else(|| {
            let parent = Rollout::parse(&read(&codex_rollout(codex_home, parent)?)?);
            parent.total_before(rollout.forked_from_ordinal?)
        })
    }

    /// What a session's first run needs that later ones do not: a Codex fork's starting total,
    /// and, for a failed Gemini run, whether Gemini kept anything to resume.
    fn check_first_run(
        &self,
        session: &Session,
        run: &mut Run,
        parent_total: Option<Option<Tokens>>,
        warnings: &mut Vec<String>,
    ) {
        let forked = session.parent_id.is_some() || session.metadata.fork_from.is_some();
        if session.backend == Backend::Codex && forked {
            // The fork's first total includes its parent's: its transcript says how much, else
            // the parent's last recorded total does. Kept even when this run failed, for the
            // fork's next run.
            run.thread_base = run.rollout_start.or_else(|| parent_total.flatten());
            if run.thread_base.is_none() && run.outcome.session_id.is_some() {
                warnings.push(format!(
                    "the running total codex forked session {} from is unknown: its first run is charged with its parent's usage too",
                    session.id
                ));
            }
        }
        if session.backend == Backend::Gemini && run.outcome.error.is_some() {
            // Gemini saves a chat only once it has an answer: a first run that failed before
            // one leaves nothing to resume, whatever id it printed.
            let saved = run.outcome.session_id.as_deref().is_some_and(|id| {
                self.homes.gemini.as_deref().is_some_and(|dir| {
                    transcripts::locate::gemini_chat(dir, id, &session.workdir).is_some()
                })
            });
            if !saved {
                run.outcome.session_id = None;
            }
        }
    }

    /// The retention clean of session creation, at most once a day. It never fails the run.
    fn clean_if_due(&self, store: &Store, now: DateTime<Utc>) -> Option<String> {
        let days = i64::try_from(self.settings.retention_days).ok()?;
        if days == 0 {
            return None;
        }
        let cutoff = now.checked_sub_signed(chrono::Duration::try_days(days)?)?;
        match store.clean_if_due(cutoff, now, chrono::Duration::days(1)) {
            Ok(Some(removed)) if !removed.is_empty() => Some(format!(
                "removed {} session(s) not used for {days} days (session.retention_days)",
                removed.len()
            )),
            Ok(_) => None,
            Err(e) => Some(format!("the retention clean failed: {e}")),
        }
    }
}

/// How to continue `session`: resume its backend session, or make the fork it is waiting for.
fn resume_mode(session: &Session) -> Result<Mode<'_>> {
    match (&session.backend_session_id, &session.metadata.fork_from) {
        (Some(id), _) => Ok(Mode::Resume(id)),
        (None, Some(parent)) => Ok(Mode::Fork(parent)),
        (None, None) => Err(not_resumable(session)),
    }
}

fn not_resumable(session: &Session) -> Error {
    let why = match session.status {
        Status::Created => "it has no backend session id: its first run never finished",
        Status::Error => {
            "it has no backend session id: its run failed before the backend started a session"
        }
        _ => "it has no backend session id (the guide's \"Resume Requirements\")",
    };
    Error::NotResumable {
        id: session.id.to_string(),
        reason: format!("{why}; start a new session with `clinvk \"prompt\"`"),
    }
}

/// A conversation whose transcript the CLI deleted (its retention clean) cannot be resumed by
/// it any more: the session keeps its history and usage.
fn check_transcript(session: &Session) -> Result<()> {
    match &session.native {
        Some(native) if native.gone => Err(Error::NotResumable {
            id: session.id.to_string(),
            reason: format!(
                "{} no longer has this conversation: it deleted its transcript ({}); the history and usage stay here; start a new session with `clinvk \"prompt\"`",
                session.backend, native.path
            ),
        }),
        _ => Ok(()),
    }
}

fn check_workdir(session: &Session) -> Result<()> {
    if Path::new(&session.workdir).is_dir() {
        return Ok(());
    }
    Err(Error::NotResumable {
        id: session.id.to_string(),
        reason: format!(
            "its working directory '{}' no longer exists, and {} looks its sessions up by directory; recreate the directory",
            session.workdir, session.backend
        ),
    })
}

/// A finished CLI run.
struct Run {
    backend: Backend,
    outcome: Outcome,
    exit_code: Option<i32>,
    interrupted: Option<i32>,
    timed_out: Option<Duration>,
    duration: Duration,
    /// What a Codex fork's transcript says it started from.
    rollout_start: Option<Tokens>,
    /// The running total a new Codex thread started from (a fork's parent's), when known.
    thread_base: Option<Tokens>,
    /// The CLI's own transcript of the conversation, where it keeps it (none for an
    /// ephemeral run, or a CLI that kept nothing).
    transcript: Option<PathBuf>,
}

impl Run {
    fn report(self, session: Option<Session>, warnings: Vec<String>) -> Report {
        Report {
            session,
            backend: self.backend,
            usage: self.outcome.usage,
            outcome: self.outcome,
            backend_exit_code: self.exit_code,
            interrupted: self.interrupted,
            timed_out: self.timed_out,
            duration: self.duration,
            warnings,
            record_failure: None,
        }
    }
}

/// Apply a finished run to the session (under the store's lock); returns the run's usage.
fn record(
    s: &mut Session,
    run: &Run,
    request: &Request,
    started: DateTime<Utc>,
    finished: DateTime<Utc>,
    keep_usage: bool,
) -> Option<Tokens> {
    let outcome = &run.outcome;
    let failed = outcome.error.is_some();
    // A failed resume can report an id that is not the session's (Claude's fresh random id):
    // only a successful run, or a first run, sets it.
    if let Some(id) = &outcome.session_id {
        if !failed || s.backend_session_id.is_none() {
            if s.backend_session_id.as_deref() != Some(id.as_str()) {
                // A new backend thread: Codex's running total starts again, from what the
                // thread inherited (a fork's parent's total), else from zero.
                s.metadata.thread_usage = run.thread_base.map(TokenUsage::from);
            }
            s.backend_session_id = Some(id.clone());
        }
    }
    if !failed && s.backend_session_id.is_some() {
        s.metadata.fork_from = None;
    }
    // The transcript of the session's own conversation (not of a failed resume's fresh id):
    // what an import of it reads, so that it finds this run already counted.
    if let Some(path) = &run.transcript {
        if s.backend_session_id == outcome.session_id {
            s.transcript_at(path);
        }
    }
    let usage = outcome.usage.map(|u| {
        if !outcome.usage_is_cumulative {
            return u;
        }
        // The thread's highest total recorded so far (a new thread id has reset it above).
        // Runs of one thread may be recorded out of order: each counts only what it adds to
        // that highest total, so the turns always add up to the thread's real total.
        let previous = s
            .metadata
            .thread_usage
            .as_ref()
            .map(TokenUsage::tokens)
            .unwrap_or_default();
        let highest = u.max_each(&previous);
        s.metadata.thread_usage = Some(TokenUsage::from(highest));
        u.since(&previous)
    });
    let model = outcome.model.clone().or_else(|| request.model.clone());
    if model.is_some() {
        s.model = model.clone();
    }
    if s.prompt.is_empty() {
        s.prompt = truncate_prompt(&request.prompt);
    }
    add_tags(&mut s.tags, request.tags.iter().cloned());
    let turn_usage = usage.filter(|_| keep_usage).map(TokenUsage::from);
    if let Some(u) = &turn_usage {
        s.token_usage.add(u);
    }
    s.status = if failed {
        Status::Error
    } else if s.backend_session_id.is_some() {
        Status::Active
    } else {
        Status::Completed
    };
    s.metadata.error = outcome.error.clone();
    s.metadata.exit_code = run.exit_code;
    s.metadata.duration_seconds = Some(round_ms(run.duration));
    s.last_used_at = s.last_used_at.max(finished);
    s.turns.push(Turn {
        at: started,
        prompt: truncate_prompt(&request.prompt),
        model,
        exit_code: run.exit_code,
        duration_seconds: Some(round_ms(run.duration)),
        token_usage: turn_usage,
        cost_usd: outcome.cost_usd.filter(|_| keep_usage),
        error: outcome.error.clone(),
        request: None,
        extra: Default::default(),
    });
    usage
}

/// The running total a session's backend thread has reached (Codex), as clinvk recorded it.
fn thread_total(session: &Session) -> Option<Tokens> {
    session
        .metadata
        .thread_usage
        .as_ref()
        .map(TokenUsage::tokens)
}

/// `30m`, `90s`, `2h`: a deadline as `--timeout` takes it (one unit, the largest that is exact).
pub fn human_duration(d: Duration) -> String {
    let secs = d.as_secs();
    if secs == 0 && d.subsec_millis() > 0 {
        return format!("{}ms", d.subsec_millis());
    }
    match secs {
        s if s > 0 && s % 3600 == 0 => format!("{}h", s / 3600),
        s if s > 0 && s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// Seconds, to the millisecond (as session files record durations).
pub fn round_ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0).round() / 1000.0
}

fn signal_name(signal: i32) -> String {
    match signal {
        2 => "Ctrl-C (SIGINT)".into(),
        15 => "SIGTERM".into(),
        1 => "SIGHUP".into(),
        other => format!("signal {other}"),
    }
}

fn install_hint(backend: Backend) -> &'static str {
    match backend {
        Backend::Claude => "npm install -g @anthropic-ai/claude-code",
        Backend::Codex => "npm install -g @openai/codex",
        Backend::Gemini => "npm install -g @google/gemini-cli",
    }
}

/// `~/x` as a path under the home directory.
/// `${VAR}` replaced by the variable's value (empty when unset), as in the guide's
/// `default_tags: ["${USER}"]`. Anything else is kept as written.
fn expand_vars(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        let Some(len) = rest[start + 2..].find('}') else {
            break;
        };
        out.push_str(&rest[..start]);
        let name = &rest[start + 2..start + 2 + len];
        out.push_str(&std::env::var(name).unwrap_or_default());
        rest = &rest[start + 3 + len..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_read_as_they_are_written() {
        let d = Duration::from_secs;
        assert_eq!(human_duration(d(1800)), "30m");
        assert_eq!(human_duration(d(90)), "90s");
        assert_eq!(human_duration(d(7200)), "2h");
        assert_eq!(human_duration(d(5400)), "90m");
        // Each is what --timeout takes back.
        for secs in [1, 90, 1800, 5400, 7200, 86_400] {
            let text = human_duration(d(secs));
            assert_eq!(
                crate::timespec::parse_timeout(&text).unwrap(),
                Some(d(secs)),
                "{text}"
            );
        }
        assert_eq!(human_duration(d(1)), "1s");
        assert_eq!(human_duration(Duration::from_millis(250)), "250ms");
        assert_eq!(human_duration(Duration::ZERO), "0s");
    }

    #[test]
    fn variables_expand_in_default_tags() {
        // PATH and HOME are set in any test environment; the unset one expands to nothing.
        let home = std::env::var("HOME").unwrap();
        assert_eq!(expand_vars("u-${HOME}"), format!("u-{home}"));
        assert_eq!(expand_vars("${CLINVK_SURELY_UNSET_VAR}"), "");
        assert_eq!(expand_vars("plain $HOME ${open"), "plain $HOME ${open");
    }

    fn codex_session(at: DateTime<Utc>) -> Session {
        Session::new(
            SessionId::generate(),
            Backend::Codex,
            "/w".into(),
            "p".into(),
            at,
        )
    }

    /// Record a Codex run (cumulative usage) that started and finished at `at`.
    fn codex_run(
        s: &mut Session,
        usage: Option<Tokens>,
        id: Option<&str>,
        error: Option<&str>,
        at: DateTime<Utc>,
        keep_usage: bool,
    ) -> Option<Tokens> {
        let run = Run {
            backend: Backend::Codex,
            outcome: Outcome {
                session_id: id.map(str::to_string),
                usage,
                usage_is_cumulative: true,
                error: error.map(str::to_string),
                ..Outcome::default()
            },
            exit_code: Some(if error.is_some() { 1 } else { 0 }),
            interrupted: None,
            timed_out: None,
            duration: Duration::from_millis(1500),
            rollout_start: None,
            thread_base: None,
            transcript: None,
        };
        let request = Request {
            target: Target::Resume { key: "x".into() },
            prompt: "go on".into(),
            model: None,
            tags: vec![],
            timeout: None,
        };
        record(s, &run, &request, at, at, keep_usage)
    }

    fn total(input: u64, output: u64) -> Tokens {
        Tokens {
            input,
            output,
            ..Tokens::default()
        }
    }

    #[test]
    fn cumulative_usage_is_recorded_per_run() {
        let t0: DateTime<Utc> = "2026-01-31T23:00:00Z".parse().unwrap();
        let t1: DateTime<Utc> = "2026-02-01T01:00:00Z".parse().unwrap();
        let mut s = codex_session(t0);
        let first = codex_run(&mut s, Some(total(100, 10)), Some("th"), None, t0, true);
        assert_eq!(first, Some(total(100, 10)));
        let second = codex_run(&mut s, Some(total(250, 25)), Some("th"), None, t1, true);
        assert_eq!(second, Some(total(150, 15)));
        assert_eq!(
            (
                s.token_usage.input,
                s.token_usage.output,
                s.token_usage.total
            ),
            (250, 25, 275)
        );
        assert_eq!(s.turns.len(), 2);
        assert_eq!(s.turns[1].at, t1);
        assert_eq!(s.turns[1].token_usage.as_ref().unwrap().input, 150);
        assert_eq!(s.status, Status::Active);
        assert_eq!(s.last_used_at, t1);
        // A failed run keeps the id and records why.
        codex_run(&mut s, None, Some("other"), Some("boom"), t1, true);
        assert_eq!(s.backend_session_id.as_deref(), Some("th"));
        assert_eq!(s.status, Status::Error);
        assert_eq!(s.metadata.error.as_deref(), Some("boom"));
        assert_eq!(s.token_usage.total, 275);
    }

    #[test]
    fn cumulative_totals_recorded_out_of_order_are_not_counted_twice() {
        let t0: DateTime<Utc> = "2026-01-31T23:00:00Z".parse().unwrap();
        let mut s = codex_session(t0);
        // The thread went 100 -> 200 -> 300, but the 300 run is recorded before the 200 one.
        for reported in [100, 300, 200] {
            codex_run(&mut s, Some(total(reported, 0)), Some("th"), None, t0, true);
        }
        let turns: Vec<u64> = s
            .turns
            .iter()
            .map(|t| t.token_usage.as_ref().unwrap().input)
            .collect();
        assert_eq!(turns, [100, 200, 0]);
        assert_eq!(s.token_usage.input, 300);
    }

    #[test]
    fn usage_is_not_kept_when_switched_off() {
        let t0: DateTime<Utc> = "2026-01-31T23:00:00Z".parse().unwrap();
        let mut s = codex_session(t0);
        codex_run(&mut s, Some(total(5, 0)), None, None, t0, false);
        assert_eq!(s.token_usage, TokenUsage::default());
        assert_eq!(s.turns[0].token_usage, None);
        // The running total is kept all the same, so that switching usage back on later
        // does not charge the next run with the thread's whole history.
        assert_eq!(s.metadata.thread_usage.as_ref().map(|t| t.input), Some(5));
        assert_eq!(s.status, Status::Completed);
    }
}
