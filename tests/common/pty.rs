//! A real pseudo-terminal for tests of what clinvk draws: the child gets the terminal as its
//! controlling terminal on stdin and stderr (stdout as the test says: a pipe, as in
//! `$(clinvk sessions pick)`); what it writes is read by a terminal emulator (vt100) whose
//! screen the test reads; keys are written as a terminal sends them.

#![allow(dead_code)]

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const DOWN: &str = "\x1b[B";
pub const UP: &str = "\x1b[A";
pub const ENTER: &str = "\r";
pub const ESC: &str = "\x1b";

pub struct Pty {
    master: File,
    child: Child,
    parser: Arc<Mutex<vt100::Parser>>,
    /// Everything the child wrote to the terminal.
    raw: Arc<Mutex<Vec<u8>>>,
}

fn winsize(cols: u16, rows: u16) -> libc::winsize {
    libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    }
}

impl Pty {
    /// Start `cmd` on a new `cols`x`rows` terminal, stdout piped.
    pub fn spawn(cmd: Command, cols: u16, rows: u16) -> Pty {
        Pty::start(cmd, cols, rows, false)
    }

    /// Start `cmd` with stdout on the terminal too.
    pub fn on_terminal_stdout(cmd: Command, cols: u16, rows: u16) -> Pty {
        Pty::start(cmd, cols, rows, true)
    }

    fn start(mut cmd: Command, cols: u16, rows: u16, stdout_too: bool) -> Pty {
        let (mut master, mut slave) = (0, 0);
        let size = winsize(cols, rows);
        // SAFETY: openpty fills two descriptors we then own; the name buffer is not asked for.
        let rc = unsafe {
            libc::openpty(
                &mut master,
                &mut slave,
                std::ptr::null_mut(),
                std::ptr::null(),
                &size,
            )
        };
        assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
        // SAFETY: both were just opened and are owned here only.
        let (master, slave) =
            unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
        cmd.stdin(Stdio::from(slave.try_clone().unwrap()))
            .stderr(Stdio::from(slave.try_clone().unwrap()))
            .stdout(if stdout_too {
                Stdio::from(slave.try_clone().unwrap())
            } else {
                Stdio::piped()
            })
            .env("TERM", "xterm-256color");
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                // A session of its own, with the terminal (its stdin) as controlling terminal.
                if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY as _, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().expect("spawn on the terminal");
        drop(slave);
        let master = File::from(master);
        let parser = Arc::new(Mutex::new(vt100::Parser::new(
            rows.try_into().unwrap(),
            cols.try_into().unwrap(),
            0,
        )));
        let raw = Arc::new(Mutex::new(Vec::new()));
        let mut reader = master.try_clone().unwrap();
        let (p, r) = (parser.clone(), raw.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            // Ends with EIO once the child and its terminal are gone.
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                p.lock().unwrap().process(&buf[..n]);
                r.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        Pty {
            master,
            child,
            parser,
            raw,
        }
    }

    /// The screen as text, a line per row.
    pub fn screen(&self) -> String {
        self.parser.lock().unwrap().screen().contents()
    }

    /// For each place `text` is on screen (top to bottom, left to right): whether it is drawn
    /// in bold.
    pub fn bolds(&self, text: &str) -> Vec<bool> {
        let parser = self.parser.lock().unwrap();
        let screen = parser.screen();
        let (rows, cols) = screen.size();
        let mut out = Vec::new();
        if text.is_empty() {
            return out;
        }
        let n = text.chars().count();
        for row in 0..rows.get() {
            // A character per cell; a wide character's second cell is empty and joins it.
            let cells: Vec<(String, bool)> = (0..cols.get())
                .filter_map(|c| screen.cell(row, c))
                .map(|x| (x.contents().to_string(), x.bold()))
                .filter(|(text, _)| !text.is_empty())
                .collect();
            for start in 0..cells.len().saturating_sub(n - 1) {
                let here: String = cells[start..start + n]
                    .iter()
                    .map(|c| c.0.as_str())
                    .collect();
                if here == text {
                    out.push(cells[start..start + n].iter().all(|c| c.1));
                }
            }
        }
        out
    }

    /// Wait (at most 10 s) until the screen shows `text`; the screen then.
    #[track_caller]
    pub fn wait_for(&self, text: &str) -> String {
        self.wait_until(
            |s| s.contains(text),
            &format!("the screen to show {text:?}"),
        )
    }

    /// Wait (at most 10 s) until `ready` holds of the screen.
    #[track_caller]
    pub fn wait_until(&self, ready: impl Fn(&str) -> bool, what: &str) -> String {
        let start = Instant::now();
        loop {
            let screen = self.screen();
            if ready(&screen) {
                return screen;
            }
            if start.elapsed() > Duration::from_secs(10) {
                panic!("timed out waiting for {what}; the screen:\n{screen}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Type `keys` as the terminal sends them.
    pub fn send(&mut self, keys: &str) {
        self.master.write_all(keys.as_bytes()).unwrap();
        self.master.flush().unwrap();
    }

    /// Resize the terminal (the child gets SIGWINCH), and the emulator with it.
    pub fn resize(&mut self, cols: u16, rows: u16) {
        // The emulator first, and held, so that nothing drawn at the new size lands in a
        // screen of the old one.
        let mut parser = self.parser.lock().unwrap();
        parser
            .screen_mut()
            .set_size(rows.try_into().unwrap(), cols.try_into().unwrap());
        let size = winsize(cols, rows);
        // SAFETY: TIOCSWINSZ on our own terminal's master with a valid winsize.
        let rc = unsafe { libc::ioctl(self.master.as_raw_fd(), libc::TIOCSWINSZ as _, &size) };
        assert_eq!(rc, 0);
    }

    /// Whether the terminal is back in its usual mode: lines edited and echoed (not raw).
    pub fn cooked(&self) -> bool {
        // SAFETY: tcgetattr on the master reads the terminal's settings into a termios we own.
        let mut t: libc::termios = unsafe { std::mem::zeroed() };
        let rc = unsafe { libc::tcgetattr(self.master.as_raw_fd(), &mut t) };
        rc == 0 && t.c_lflag & libc::ICANON != 0 && t.c_lflag & libc::ECHO != 0
    }

    /// The child's pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything the child wrote to the terminal so far.
    pub fn raw(&self) -> Vec<u8> {
        self.raw.lock().unwrap().clone()
    }

    /// Wait (at most 10 s) until what the child wrote to the terminal holds `bytes`.
    #[track_caller]
    pub fn wait_raw(&self, bytes: &str) -> Vec<u8> {
        let start = Instant::now();
        loop {
            let raw = self.raw();
            if String::from_utf8_lossy(&raw).contains(bytes) {
                return raw;
            }
            if start.elapsed() > Duration::from_secs(10) {
                panic!("timed out waiting for {bytes:?} on the terminal");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Wait (at most 10 s) for the child to end: its exit code and what it printed on stdout
    /// (nothing when stdout is the terminal).
    #[track_caller]
    pub fn finish(&mut self) -> (i32, String) {
        let mut stdout = self.child.stdout.take();
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                let mut out = String::new();
                if let Some(s) = stdout.as_mut() {
                    s.read_to_string(&mut out).unwrap();
                }
                // Ended by a signal: 128 + its number, as a shell says.
                use std::os::unix::process::ExitStatusExt;
                let code = status.code().or(status.signal().map(|s| 128 + s));
                return (code.unwrap_or(-1), out);
            }
            if start.elapsed() > Duration::from_secs(10) {
                let _ = self.child.kill();
                panic!("still running after 10 s; the screen:\n{}", self.screen());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Pty {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
