//! Running a backend CLI: no shell (a prompt is never parsed as a command line), the prompt
//! written to stdin from its own thread, stdout and stderr read as they come with poll(2) (a
//! CLI that fills one pipe while we wait on the other would otherwise hang both), in the
//! session's directory, with a deadline. Output that something the CLI left running keeps
//! open is read for 2 s more after the CLI exited, then left: it cannot hold the run.
//!
//! Unix only: process groups, signals, poll(2).
//!
//! The CLI runs in its own process group, and clinvk forwards SIGINT, SIGTERM and SIGHUP to it:
//! a Ctrl-C reaches the CLI exactly once (two SIGINTs make some CLIs quit without saving), and
//! clinvk itself lives on to record the session as interrupted. A second signal kills the CLI.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::invoke::Invocation;

/// What a finished run wrote and how it ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Captured {
    pub stdout: String,
    pub stderr: String,
    /// None when the process was ended by a signal.
    pub exit_code: Option<i32>,
    pub duration: Duration,
    /// The first signal clinvk received and forwarded while the CLI ran (e.g. SIGINT).
    pub interrupted: Option<i32>,
    /// The deadline passed and the CLI was stopped (SIGTERM, then SIGKILL after the grace).
    pub timed_out: bool,
}

/// Which of the CLI's output streams a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// How long a run may take, and who hears of each line as it comes.
pub struct Limits<'a> {
    /// Stop the CLI after this long; None waits as long as it takes.
    pub timeout: Option<Duration>,
    /// Between SIGTERM and SIGKILL when the deadline passes.
    pub grace: Duration,
    /// Called with every complete line of stdout and stderr, from the reader threads.
    pub on_line: &'a (dyn Fn(Stream, &str) + Sync),
}

impl Limits<'_> {
    /// No deadline, nobody listening.
    pub fn none() -> Limits<'static> {
        Limits {
            timeout: None,
            grace: Duration::ZERO,
            on_line: &|_, _| {},
        }
    }
}

/// Run without a deadline (see `run_with`).
pub fn run(
    program: &Path,
    invocation: &Invocation,
    prompt: &str,
    workdir: &Path,
) -> std::io::Result<Captured> {
    run_with(program, invocation, prompt, workdir, &Limits::none())
}

/// Catch SIGINT, SIGTERM and SIGHUP from now on, for a run about to start. Without this, one
/// that came before the CLI was started (while the session is being created) would kill clinvk
/// on the spot, leaving the session `created` without a word; caught, it stops the run before
/// the CLI starts, and the session is recorded as interrupted, as for a Ctrl-C during the run.
pub fn catch_interrupts() -> std::io::Result<()> {
    #[cfg(unix)]
    {
        let mut result = Ok(());
        EARLY.get_or_init(|| {
            let flag = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
            for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
                let registered =
                    signal_hook::flag::register_usize(signal, flag.clone(), signal as usize);
                if let Err(e) = registered {
                    result = Err(e);
                }
            }
            flag
        });
        result
    }
    #[cfg(not(unix))]
    Ok(())
}

/// The latest signal `catch_interrupts` caught, if any.
#[cfg(unix)]
static EARLY: std::sync::OnceLock<std::sync::Arc<std::sync::atomic::AtomicUsize>> =
    std::sync::OnceLock::new();

fn early_signal() -> Option<i32> {
    #[cfg(unix)]
    {
        let flag = EARLY.get()?;
        let signal = flag.load(std::sync::atomic::Ordering::SeqCst);
        i32::try_from(signal).ok().filter(|s| *s != 0)
    }
    #[cfg(not(unix))]
    None
}

pub fn run_with(
    program: &Path,
    invocation: &Invocation,
    prompt: &str,
    workdir: &Path,
    limits: &Limits<'_>,
) -> std::io::Result<Captured> {
    let start = Instant::now();
    let forward = Forwarder::install()?;
    // Interrupted before the CLI could start: it is not started at all.
    if let Some(signal) = forward.first_so_far().or_else(early_signal) {
        forward.finish();
        return Ok(Captured {
            stdout: String::new(),
            stderr: String::new(),
            exit_code: None,
            duration: start.elapsed(),
            interrupted: Some(signal),
            timed_out: false,
        });
    }
    let mut child = match command(program, invocation, workdir).spawn() {
        Ok(child) => child,
        Err(e) => {
            forward.finish();
            return Err(e);
        }
    };
    forward.target(child.id());
    if let Some(mut stdin) = child.stdin.take() {
        // Its own thread, never waited for: a CLI that does not read its input (or leaves it to
        // a process that outlives it) must not hold the run.
        let prompt = prompt.to_string();
        std::thread::spawn(move || {
            // A CLI that exits without reading its input closes the pipe: not our error.
            let _ = stdin.write_all(prompt.as_bytes());
            // Dropping stdin closes it, so the CLI sees the end of the prompt.
        });
    }
    let mut out = Pipe::new(
        child.stdout.take().expect("stdout is piped"),
        Stream::Stdout,
    );
    let mut err = Pipe::new(
        child.stderr.take().expect("stderr is piped"),
        Stream::Stderr,
    );
    let mut stop = Stopper::new(child.id(), start, limits);
    let mut status = None;
    // Until the CLI has exited and its output is read: read what comes, stop the CLI at the
    // deadline. Output still held open by something the CLI left running (a server it
    // started) is read a little longer, then left: it must not hold the run either.
    let interrupted = loop {
        let waiting = if status.is_some() {
            DRAIN_STEP
        } else {
            POLL_STEP
        };
        read_ready(&mut [&mut out, &mut err], waiting, limits.on_line)?;
        if status.is_none() {
            if has_exited(child.id())? {
                // Seen before it is reaped, so no signal can reach another process that took
                // its id: forwarding stops, what it left in its group goes after a deadline,
                // then it is reaped. Signals that come now found the CLI gone: they do not make
                // the run interrupted.
                forward.disarm();
                let first = forward.first_so_far();
                stop.exited();
                status = Some(child.wait()?);
                if out.done && err.done {
                    break first;
                }
                stop.draining = Some((Instant::now(), first));
            } else {
                stop.tick();
            }
        }
        if let Some((since, first)) = stop.draining {
            if (out.done && err.done) || since.elapsed() >= DRAIN_LIMIT {
                break first;
            }
        }
    };
    forward.finish();
    let status = status.expect("the loop ends after the CLI exited");
    Ok(Captured {
        stdout: String::from_utf8_lossy(&out.bytes).into_owned(),
        stderr: String::from_utf8_lossy(&err.bytes).into_owned(),
        exit_code: status.code(),
        duration: start.elapsed(),
        interrupted,
        timed_out: stop.timed_out,
    })
}

/// The CLI's command: no shell, in `workdir`, in a process group of its own, pipes for its
/// output (and its input when the prompt goes there).
fn command(program: &Path, invocation: &Invocation, workdir: &Path) -> Command {
    let mut command = Command::new(program);
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    // Its own process group keeps the CLI from a terminal's Ctrl-C, so if clinvk itself is
    // killed (kill -9, OOM), nothing would stop it: have the kernel send it SIGTERM then.
    #[cfg(target_os = "linux")]
    // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut command, || {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            Ok(())
        });
    }
    command
        .args(&invocation.args)
        .current_dir(workdir)
        .stdin(if invocation.prompt_on_stdin {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// How often the child's exit and the deadline are checked while nothing is written.
const POLL_STEP: Duration = Duration::from_millis(20);
/// How long output is still read after the CLI exited, while something else holds it open.
const DRAIN_LIMIT: Duration = Duration::from_secs(2);
const DRAIN_STEP: Duration = Duration::from_millis(50);

/// One of the CLI's output pipes, read without blocking.
struct Pipe {
    file: std::fs::File,
    stream: Stream,
    bytes: Vec<u8>,
    /// Where the line being read starts in `bytes`.
    line_start: usize,
    done: bool,
}

impl Pipe {
    fn new(pipe: impl Into<std::os::fd::OwnedFd>, stream: Stream) -> Pipe {
        let file = std::fs::File::from(pipe.into());
        set_nonblocking(&file);
        Pipe {
            file,
            stream,
            bytes: Vec::new(),
            line_start: 0,
            done: false,
        }
    }

    /// Read what is there; each complete line goes to `on_line`.
    fn read_some(&mut self, on_line: &(dyn Fn(Stream, &str) + Sync)) -> std::io::Result<()> {
        let mut buf = [0u8; 64 * 1024];
        loop {
            match self.file.read(&mut buf) {
                Ok(0) => {
                    self.done = true;
                    if self.line_start < self.bytes.len() {
                        let line = String::from_utf8_lossy(&self.bytes[self.line_start..]);
                        on_line(self.stream, line.trim_end_matches('\r'));
                        self.line_start = self.bytes.len();
                    }
                    return Ok(());
                }
                Ok(n) => {
                    let from = self.bytes.len();
                    self.bytes.extend_from_slice(&buf[..n]);
                    for at in from..self.bytes.len() {
                        if self.bytes[at] == b'\n' {
                            let line = String::from_utf8_lossy(&self.bytes[self.line_start..at]);
                            on_line(self.stream, line.trim_end_matches('\r'));
                            self.line_start = at + 1;
                        }
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }
}

/// Whether the child `pid` has exited, without reaping it (its id stays its own until
/// `wait`).
fn has_exited(pid: u32) -> std::io::Result<bool> {
    let pid: libc::id_t = pid;
    // SAFETY: waitid with WNOWAIT only reads the child's state into `info`, which is a valid,
    // zeroed siginfo_t for the call's duration.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    let rc = unsafe {
        libc::waitid(
            libc::P_PID,
            pid,
            &mut info,
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
        )
    };
    if rc != 0 {
        let e = std::io::Error::last_os_error();
        return if e.kind() == std::io::ErrorKind::Interrupted {
            Ok(false)
        } else {
            Err(e)
        };
    }
    // SAFETY: si_pid is set by waitid (0 when no child has changed state).
    Ok(unsafe { info.si_pid() } != 0)
}

fn set_nonblocking(file: &std::fs::File) {
    use std::os::fd::AsRawFd;
    let fd = file.as_raw_fd();
    // SAFETY: fcntl on a descriptor this process owns; no memory is passed.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK);
    }
}

/// Wait up to `timeout` for output on the pipes still open, and read it.
fn read_ready(
    pipes: &mut [&mut Pipe],
    timeout: Duration,
    on_line: &(dyn Fn(Stream, &str) + Sync),
) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let mut fds: Vec<libc::pollfd> = pipes
        .iter()
        .filter(|p| !p.done)
        .map(|p| libc::pollfd {
            fd: p.file.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    if fds.is_empty() {
        std::thread::sleep(timeout);
        return Ok(());
    }
    let ms = libc::c_int::try_from(timeout.as_millis()).unwrap_or(libc::c_int::MAX);
    // SAFETY: `fds` is a valid array of `fds.len()` pollfd structs for the call's duration.
    let ready = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
    if ready < 0 {
        let e = std::io::Error::last_os_error();
        return if e.kind() == std::io::ErrorKind::Interrupted {
            Ok(())
        } else {
            Err(e)
        };
    }
    for pipe in pipes.iter_mut().filter(|p| !p.done) {
        let fd = pipe.file.as_raw_fd();
        let woke = fds.iter().any(|f| f.fd == fd && f.revents != 0);
        if woke {
            pipe.read_some(on_line)?;
        }
    }
    Ok(())
}

/// The deadline: SIGTERM to the CLI's process group when it passes, SIGKILL after the grace.
struct Stopper {
    pid: u32,
    deadline: Option<Instant>,
    grace: Duration,
    terminated_at: Option<Instant>,
    killed: bool,
    timed_out: bool,
    /// Since when the CLI has exited while its output is still open, and the signal clinvk had
    /// received by then.
    draining: Option<(Instant, Option<i32>)>,
}

impl Stopper {
    fn new(pid: u32, start: Instant, limits: &Limits<'_>) -> Stopper {
        Stopper {
            pid,
            deadline: limits.timeout.map(|t| start + t),
            grace: limits.grace,
            terminated_at: None,
            killed: false,
            timed_out: false,
            draining: None,
        }
    }

    /// The CLI has not exited yet (its pid is still its own): act on the deadline.
    fn tick(&mut self) {
        let now = Instant::now();
        match self.terminated_at {
            None if self.deadline.is_some_and(|d| now >= d) => {
                self.timed_out = true;
                self.terminated_at = Some(now);
                signal_group(self.pid, Signal::Terminate);
            }
            Some(at) if !self.killed && now >= at + self.grace => {
                self.killed = true;
                signal_group(self.pid, Signal::Kill);
            }
            _ => {}
        }
    }

    /// The CLI exited: whatever it left in its group goes too once the deadline has passed.
    fn exited(&mut self) {
        if self.timed_out && !self.killed {
            self.killed = true;
            signal_group(self.pid, Signal::Kill);
        }
    }
}

#[derive(Clone, Copy)]
enum Signal {
    Terminate,
    Kill,
}

/// Send a signal to the process group the CLI leads (it and everything it started).
fn signal_group(pid: u32, signal: Signal) {
    let signal = match signal {
        Signal::Terminate => libc::SIGTERM,
        Signal::Kill => libc::SIGKILL,
    };
    if let Ok(pid) = i32::try_from(pid) {
        // SAFETY: kill(2) with a process group id; no memory is involved. The group leader is
        // only reaped by this thread (`try_wait`), after which nothing is signalled, so the id
        // is still its own.
        unsafe { libc::kill(-pid, signal) };
    }
}

/// Forwards termination signals to the child's process group while it runs.
#[cfg(unix)]
struct Forwarder {
    handle: signal_hook::iterator::Handle,
    thread: std::thread::JoinHandle<()>,
    /// The child's pid (= its process group), 0 until it is spawned.
    pid: std::sync::Arc<std::sync::atomic::AtomicI32>,
    first: std::sync::Arc<std::sync::atomic::AtomicI32>,
    /// Set by whoever passes the first signal on (the thread, or `target` for a signal that
    /// came before the child existed), so that it is passed on once.
    delivered: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

#[cfg(unix)]
impl Forwarder {
    fn install() -> std::io::Result<Forwarder> {
        use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
        use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
        use std::sync::Arc;
        let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])?;
        let handle = signals.handle();
        let pid = Arc::new(AtomicI32::new(0));
        let first = Arc::new(AtomicI32::new(0));
        let delivered = Arc::new(AtomicBool::new(false));
        let thread = {
            let (pid, first, delivered) = (pid.clone(), first.clone(), delivered.clone());
            std::thread::spawn(move || {
                for signal in signals.forever() {
                    let again = first
                        .compare_exchange(0, signal, Ordering::SeqCst, Ordering::SeqCst)
                        .is_err();
                    let child = pid.load(Ordering::SeqCst);
                    if child <= 0 {
                        continue;
                    }
                    if again {
                        // SAFETY: kill(2) with a process group id; no memory is involved.
                        unsafe { libc::kill(-child, libc::SIGKILL) };
                    } else if !delivered.swap(true, Ordering::SeqCst) {
                        // SAFETY: as above.
                        unsafe { libc::kill(-child, signal) };
                    }
                }
            })
        };
        Ok(Forwarder {
            handle,
            thread,
            pid,
            first,
            delivered,
        })
    }

    fn target(&self, pid: u32) {
        use std::sync::atomic::Ordering;
        let pid = i32::try_from(pid).unwrap_or(0);
        self.pid.store(pid, Ordering::SeqCst);
        // A signal that came before the child existed is delivered now.
        let early = self.first.load(Ordering::SeqCst);
        if early != 0 && pid > 0 && !self.delivered.swap(true, Ordering::SeqCst) {
            // SAFETY: as above.
            unsafe { libc::kill(-pid, early) };
        }
    }

    /// Stop forwarding: the child has exited.
    fn disarm(&self) {
        self.pid.store(0, std::sync::atomic::Ordering::SeqCst);
    }

    /// The first signal received so far.
    fn first_so_far(&self) -> Option<i32> {
        use std::sync::atomic::Ordering;
        Some(self.first.load(Ordering::SeqCst)).filter(|s| *s != 0)
    }

    fn finish(self) -> Option<i32> {
        use std::sync::atomic::Ordering;
        self.handle.close();
        let _ = self.thread.join();
        // The handlers stay installed (signal-hook cannot remove them), so a late Ctrl-C is
        // ignored while the session is recorded; clinvk exits right after.
        Some(self.first.load(Ordering::SeqCst)).filter(|s| *s != 0)
    }
}

#[cfg(not(unix))]
struct Forwarder;

#[cfg(not(unix))]
impl Forwarder {
    fn install() -> std::io::Result<Forwarder> {
        Ok(Forwarder)
    }
    fn target(&self, _pid: u32) {}
    fn disarm(&self) {}
    fn first_so_far(&self) -> Option<i32> {
        None
    }
    fn finish(self) -> Option<i32> {
        None
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::time::Instant;

    fn script(dir: &Path, body: &str) -> std::path::PathBuf {
        let path = dir.join("fake-cli");
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    fn invocation(args: &[&str], stdin: bool) -> Invocation {
        Invocation {
            args: args.iter().map(|a| a.to_string()).collect(),
            prompt_on_stdin: stdin,
        }
    }

    #[test]
    fn prompt_on_stdin_args_cwd_and_both_streams() {
        let dir = tempfile::tempdir().unwrap();
        let cli = script(
            dir.path(),
            r#"printf 'args:%s|' "$@"; printf 'cwd:%s|' "$PWD"; printf 'in:'; cat; echo 'warn' >&2; exit 3"#,
        );
        // A prompt full of shell syntax reaches the CLI untouched.
        let prompt = "$(rm -rf /); `id` && echo 'x' | tee";
        let run = run(&cli, &invocation(&["-p", "a b"], true), prompt, dir.path()).unwrap();
        let cwd = std::fs::canonicalize(dir.path()).unwrap();
        assert_eq!(
            run.stdout,
            format!("args:-p|args:a b|cwd:{}|in:{prompt}", cwd.display())
        );
        assert_eq!(run.stderr, "warn\n");
        assert_eq!(run.exit_code, Some(3));
    }

    #[test]
    fn no_stdin_means_end_of_input_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let cli = script(dir.path(), "cat; echo done");
        let run = run(&cli, &invocation(&[], false), "ignored", dir.path()).unwrap();
        assert_eq!(run.stdout, "done\n");
    }

    #[test]
    fn big_outputs_on_both_pipes_do_not_deadlock() {
        let dir = tempfile::tempdir().unwrap();
        // 1 MiB to stderr before anything to stdout, then 1 MiB to stdout: a sequential reader
        // would block forever on a full stderr pipe.
        let cli = script(
            dir.path(),
            "head -c 1048576 /dev/zero | tr '\\0' e >&2; head -c 1048576 /dev/zero | tr '\\0' o",
        );
        let run = run(&cli, &invocation(&[], true), "", dir.path()).unwrap();
        assert_eq!((run.stdout.len(), run.stderr.len()), (1 << 20, 1 << 20));
    }

    #[test]
    fn a_signal_leaves_no_exit_code() {
        let dir = tempfile::tempdir().unwrap();
        let cli = script(dir.path(), "echo partial; kill -TERM $$");
        let run = run(&cli, &invocation(&[], false), "", dir.path()).unwrap();
        assert_eq!(run.exit_code, None);
        assert_eq!(run.stdout, "partial\n");
    }

    /// Run `cli` (no input) in `dir` with a deadline of `timeout_ms` and a grace of `grace_ms`.
    fn run_limited(cli: &Path, dir: &Path, timeout_ms: u64, grace_ms: u64) -> Captured {
        let limits = Limits {
            timeout: Some(Duration::from_millis(timeout_ms)),
            grace: Duration::from_millis(grace_ms),
            on_line: &|_, _| {},
        };
        run_with(cli, &invocation(&[], false), "", dir, &limits).unwrap()
    }

    #[test]
    fn a_cli_past_its_deadline_gets_sigterm() {
        let dir = tempfile::tempdir().unwrap();
        let cli = script(dir.path(), "echo started; exec sleep 30");
        let t = Instant::now();
        let run = run_limited(&cli, dir.path(), 300, 5000);
        assert!(run.timed_out);
        assert_eq!(run.exit_code, None, "ended by the signal");
        assert_eq!(run.stdout, "started\n");
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "SIGTERM was enough: {:?}",
            t.elapsed()
        );
    }

    #[test]
    fn a_cli_that_ignores_sigterm_gets_sigkill_after_the_grace() {
        let dir = tempfile::tempdir().unwrap();
        // The shell and its sleep both ignore SIGTERM; the group is killed after the grace.
        let cli = script(
            dir.path(),
            "trap '' TERM; echo started; sleep 30; echo never",
        );
        let t = Instant::now();
        let run = run_limited(&cli, dir.path(), 200, 300);
        assert!(run.timed_out);
        assert_eq!(run.exit_code, None);
        assert_eq!(run.stdout, "started\n");
        let took = t.elapsed();
        assert!(
            took >= Duration::from_millis(500) && took < Duration::from_secs(10),
            "{took:?}"
        );
    }

    #[test]
    fn a_cli_within_its_deadline_is_untouched_and_lines_are_heard_as_they_come() {
        let dir = tempfile::tempdir().unwrap();
        let cli = script(dir.path(), "echo one; echo warn >&2; echo two; exit 4");
        let heard = std::sync::Mutex::new(Vec::new());
        let on_line =
            |stream: Stream, line: &str| heard.lock().unwrap().push((stream, line.to_string()));
        let limits = Limits {
            timeout: Some(Duration::from_secs(30)),
            grace: Duration::from_secs(1),
            on_line: &on_line,
        };
        let run = run_with(&cli, &invocation(&[], false), "", dir.path(), &limits).unwrap();
        assert!(!run.timed_out);
        assert_eq!(run.exit_code, Some(4));
        assert_eq!(run.stdout, "one\ntwo\n");
        let mut heard = heard.into_inner().unwrap();
        heard.sort();
        assert_eq!(
            heard,
            [
                (Stream::Stdout, "one".to_string()),
                (Stream::Stdout, "two".to_string()),
                (Stream::Stderr, "warn".to_string())
            ]
        );
    }

    #[test]
    fn something_the_cli_leaves_running_does_not_hold_the_run() {
        let dir = tempfile::tempdir().unwrap();
        // A background job that keeps stdout and stderr open after the CLI exits (an MCP
        // server, a dev server), and one that left the process group too.
        let cli = script(
            dir.path(),
            "sleep 20 & setsid sleep 20 & echo '{\"done\":true}'; exit 0",
        );
        let t = Instant::now();
        let run = run(&cli, &invocation(&[], false), "", dir.path()).unwrap();
        assert_eq!(run.exit_code, Some(0));
        assert_eq!(run.stdout, "{\"done\":true}\n");
        assert!(t.elapsed() < Duration::from_secs(8), "{:?}", t.elapsed());
        // The same while the CLI itself hangs past its deadline.
        let cli = script(dir.path(), "setsid sleep 20 & echo started; exec sleep 100");
        let t = Instant::now();
        let run = run_limited(&cli, dir.path(), 300, 300);
        assert!(run.timed_out);
        assert_eq!(run.stdout, "started\n");
        assert!(t.elapsed() < Duration::from_secs(8), "{:?}", t.elapsed());
    }

    #[test]
    fn a_cli_that_ignores_its_input_is_fine() {
        let dir = tempfile::tempdir().unwrap();
        let cli = script(dir.path(), "exit 0");
        let big = "x".repeat(4 << 20);
        assert_eq!(
            run(&cli, &invocation(&[], true), &big, dir.path())
                .unwrap()
                .exit_code,
            Some(0)
        );
    }
}
