//! The terminal while the picker is open: raw mode, the alternate screen, bracketed paste, drawn
//! on stderr through a buffer. Whatever ends the picker puts the terminal back as it was: a
//! return or an error (`Drop`), a panic (a hook that restores before the message is printed),
//! and a termination signal (SIGTERM, SIGHUP, SIGINT, SIGQUIT from outside: a handler that
//! restores, then lets the signal do what it would have done).

use std::io::{BufWriter, Stderr};
use std::sync::{Arc, OnceLock};

use ratatui::backend::CrosstermBackend;
use ratatui::crossterm::{event, execute, terminal};
use ratatui::Terminal;

use crate::error::{Error, Result};

pub type Term = Terminal<CrosstermBackend<BufWriter<Stderr>>>;

/// What the terminal's own settings were before raw mode (for the signal handler, which may
/// not lock or allocate).
static SAVED: OnceLock<libc::termios> = OnceLock::new();

/// Bracketed paste off, the alternate screen left, the cursor shown.
const RESET: &[u8] = b"\x1b[?2004l\x1b[?1049l\x1b[?25h";

const SIGNALS: [libc::c_int; 4] = [libc::SIGTERM, libc::SIGHUP, libc::SIGINT, libc::SIGQUIT];

type PanicHook = Box<dyn Fn(&std::panic::PanicHookInfo<'_>) + Sync + Send + 'static>;

pub struct Screen {
    pub terminal: Term,
    /// The signal actions in place before the picker's, put back when it closes.
    signals: Vec<(libc::c_int, libc::sigaction)>,
    /// The panic hook before the picker's.
    panic_hook: Option<Arc<PanicHook>>,
}

impl Screen {
    pub fn open() -> Result<Screen> {
        let mut screen = Screen {
            terminal: Terminal::new(CrosstermBackend::new(BufWriter::new(std::io::stderr())))
                .map_err(terminal_error)?,
            signals: Vec::new(),
            panic_hook: None,
        };
        // SAFETY: tcgetattr fills a termios we own, from stdin (a terminal: checked before).
        let mut saved: libc::termios = unsafe { std::mem::zeroed() };
        if unsafe { libc::tcgetattr(0, &mut saved) } == 0 {
            let _ = SAVED.set(saved);
        }
        screen.catch_signals();
        screen.catch_panics();
        // From here on, dropping `screen` puts everything back, whatever failed.
        terminal::enable_raw_mode().map_err(terminal_error)?;
        execute!(
            screen.terminal.backend_mut(),
            terminal::EnterAlternateScreen,
            event::EnableBracketedPaste
        )
        .map_err(terminal_error)?;
        // Listen for keys and resizes from now on: a resize before the first read of events
        // would otherwise be lost (crossterm starts watching SIGWINCH at its first poll).
        let _ = event::poll(std::time::Duration::ZERO);
        Ok(screen)
    }

    fn catch_signals(&mut self) {
        for signal in SIGNALS {
            // SAFETY: installing a handler that only makes async-signal-safe calls; the old
            // action is kept to be put back.
            unsafe {
                let mut action: libc::sigaction = std::mem::zeroed();
                action.sa_sigaction = on_signal as *const () as libc::sighandler_t;
                libc::sigemptyset(&mut action.sa_mask);
                let mut old: libc::sigaction = std::mem::zeroed();
                if libc::sigaction(signal, &action, &mut old) == 0 {
                    self.signals.push((signal, old));
                }
            }
        }
    }

    fn catch_panics(&mut self) {
        let previous: Arc<PanicHook> = Arc::new(std::panic::take_hook());
        let chained = previous.clone();
        std::panic::set_hook(Box::new(move |info| {
            restore();
            chained(info);
        }));
        self.panic_hook = Some(previous);
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        restore();
        for (signal, old) in self.signals.drain(..) {
            // SAFETY: putting back the action sigaction gave us.
            unsafe { libc::sigaction(signal, &old, std::ptr::null_mut()) };
        }
        if let Some(previous) = self.panic_hook.take() {
            std::panic::set_hook(Box::new(move |info| previous(info)));
        }
    }
}

/// The terminal as it was: its settings, then the screen.
fn restore() {
    let _ = terminal::disable_raw_mode();
    if let Some(saved) = SAVED.get() {
        // SAFETY: the settings read from the same terminal when the picker opened.
        unsafe { libc::tcsetattr(0, libc::TCSANOW, saved) };
    }
    use std::io::Write;
    let mut err = std::io::stderr();
    let _ = err.write_all(RESET);
    let _ = err.flush();
}

/// A termination signal while the picker is open: the terminal put back (with calls that are
/// safe in a signal handler only), then the signal's own action (the process ends by it).
extern "C" fn on_signal(signal: libc::c_int) {
    // SAFETY: tcsetattr, write, signal and raise are async-signal-safe; SAVED is only read.
    unsafe {
        if let Some(saved) = SAVED.get() {
            libc::tcsetattr(0, libc::TCSANOW, saved);
        }
        libc::write(2, RESET.as_ptr().cast(), RESET.len());
        libc::signal(signal, libc::SIG_DFL);
        libc::raise(signal);
    }
}

pub fn terminal_error(e: std::io::Error) -> Error {
    Error::io("<terminal>", e)
}
