//! Running a backend CLI: no shell (a prompt is never parsed as a command line), the prompt
//! written to stdin from its own thread, stdout and stderr read concurrently (a CLI that fills
//! one pipe while we wait on the other would otherwise hang both), in the session's directory.
//!
//! The CLI runs in its own process group, and clinvk forwards SIGINT, SIGTERM and SIGHUP to it:
//! a Ctrl-C reaches the CLI exactly once (two SIGINTs make some CLIs quit without saving), and
//! clinvk itself lives on to record the session as interrupted. A second signal kills the CLI.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
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

pub fn run_with(
    program: &Path,
    invocation: &Invocation,
    prompt: &str,
    workdir: &Path,
    limits: &Limits<'_>,
) -> std::io::Result<Captured> {
    let start = Instant::now();
    let forward = Forwarder::install()?;
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
    let child = command
        .args(&invocation.args)
        .current_dir(workdir)
        .stdin(if invocation.prompt_on_stdin {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(e) => {
            forward.finish();
            return Err(e);
        }
    };
    let pid = child.id();
    forward.target(pid);
    let stdin = child.stdin.take();
    let stdout = child.stdout.take().expect("stdout is piped");
    let stderr = child.stderr.take().expect("stderr is piped");
    let (out, err, status, timed_out) = std::thread::scope(|scope| {
        if let Some(mut stdin) = stdin {
            scope.spawn(move || {
                // A CLI that exits without reading its input closes the pipe: not our error.
                let _ = stdin.write_all(prompt.as_bytes());
                // Dropping stdin closes it, so the CLI sees the end of the prompt.
            });
        }
        let on_line = limits.on_line;
        let err = scope.spawn(move || read_lines(stderr, Stream::Stderr, on_line));
        let out = scope.spawn(move || read_lines(stdout, Stream::Stdout, on_line));
        let (done, exited) = mpsc::channel();
        scope.spawn(move || {
            let _ = done.send(child.wait());
        });
        let (status, timed_out) = wait_until(&exited, pid, start, limits);
        let out = out.join().expect("the stdout reader does not panic");
        let err = err.join().expect("the stderr reader does not panic");
        (out, err, status, timed_out)
    });
    let status = status?;
    Ok(Captured {
        stdout: String::from_utf8_lossy(&out?).into_owned(),
        stderr: String::from_utf8_lossy(&err?).into_owned(),
        exit_code: status.code(),
        duration: start.elapsed(),
        interrupted: forward.finish(),
        timed_out,
    })
}

/// All of `pipe`, handing each line to `on_line` as it comes.
fn read_lines(
    pipe: impl Read,
    stream: Stream,
    on_line: &(dyn Fn(Stream, &str) + Sync),
) -> std::io::Result<Vec<u8>> {
    let mut reader = BufReader::new(pipe);
    let mut all = Vec::new();
    loop {
        let from = all.len();
        if reader.read_until(b'\n', &mut all)? == 0 {
            return Ok(all);
        }
        let line = String::from_utf8_lossy(&all[from..]);
        on_line(stream, line.trim_end_matches(['\n', '\r']));
    }
}

/// The child's exit status, stopping it when the deadline passes: SIGTERM to its process group,
/// then SIGKILL after the grace. True when the deadline passed.
fn wait_until(
    exited: &mpsc::Receiver<std::io::Result<std::process::ExitStatus>>,
    pid: u32,
    start: Instant,
    limits: &Limits<'_>,
) -> (std::io::Result<std::process::ExitStatus>, bool) {
    let gone = || -> std::io::Result<std::process::ExitStatus> {
        Err(std::io::Error::other("the waiting thread stopped"))
    };
    let Some(timeout) = limits.timeout else {
        return (exited.recv().unwrap_or_else(|_| gone()), false);
    };
    match exited.recv_timeout(timeout.saturating_sub(start.elapsed())) {
        Ok(status) => return (status, false),
        Err(mpsc::RecvTimeoutError::Disconnected) => return (gone(), false),
        Err(mpsc::RecvTimeoutError::Timeout) => {}
    }
    signal_group(pid, Signal::Terminate);
    if let Ok(status) = exited.recv_timeout(limits.grace) {
        return (status, true);
    }
    signal_group(pid, Signal::Kill);
    (exited.recv().unwrap_or_else(|_| gone()), true)
}

#[derive(Clone, Copy)]
enum Signal {
    Terminate,
    Kill,
}

/// Send a signal to the process group the CLI leads (it and everything it started).
fn signal_group(pid: u32, signal: Signal) {
    #[cfg(unix)]
    {
        let signal = match signal {
            Signal::Terminate => libc::SIGTERM,
            Signal::Kill => libc::SIGKILL,
        };
        if let Ok(pid) = i32::try_from(pid) {
            // SAFETY: kill(2) with a process group id; no memory is involved. The child is not
            // reaped before the waiting thread returns, so the group id is still its own.
            unsafe { libc::kill(-pid, signal) };
        }
    }
    #[cfg(not(unix))]
    let _ = (pid, signal);
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

    fn limits(timeout_ms: u64, grace_ms: u64) -> Limits<'static> {
        Limits {
            timeout: Some(Duration::from_millis(timeout_ms)),
            grace: Duration::from_millis(grace_ms),
            on_line: &|_, _| {},
        }
    }

    #[test]
    fn a_cli_past_its_deadline_gets_sigterm() {
        let dir = tempfile::tempdir().unwrap();
        let cli = script(dir.path(), "echo started; exec sleep 30");
        let t = Instant::now();
        let run = run_with(
            &cli,
            &invocation(&[], false),
            "",
            dir.path(),
            &limits(300, 5000),
        )
        .unwrap();
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
        let run = run_with(
            &cli,
            &invocation(&[], false),
            "",
            dir.path(),
            &limits(200, 300),
        )
        .unwrap();
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
