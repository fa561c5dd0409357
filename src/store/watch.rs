//! Which entries of a directory were created, deleted or renamed while clinvk wrote to it.
//!
//! A write records the directory's new stamp so that the next command need not rescan. If
//! someone else (a sync tool, a hand) added or removed a file during the write, the new stamp
//! would cover their change too and it would go unnoticed. A watch spanning the write tells the
//! two apart. Linux only (inotify); elsewhere `Watch::start` gives `None` and the caller decides.

use std::ffi::OsString;
use std::path::Path;

pub struct Watch {
    #[cfg(target_os = "linux")]
    fd: std::os::fd::OwnedFd,
}

/// One change to an entry of the directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Created,
    Deleted,
    MovedFrom,
    MovedTo,
    /// A file opened for writing was closed (only with `Watch::start_with_writes`).
    Written,
}

/// What a watch saw.
pub enum Seen {
    /// These changes, in order.
    Events(Vec<(Kind, OsString)>),
    /// Too much to tell (the kernel's queue overflowed, or reading failed).
    Unknown,
}

impl Watch {
    /// Entries created, deleted or renamed in `dir`.
    pub fn start(dir: &Path) -> Option<Watch> {
        Watch::with_mask(dir, false)
    }

    /// `start`, and files written in place too (a hand edit that keeps the directory as it is).
    pub fn start_with_writes(dir: &Path) -> Option<Watch> {
        Watch::with_mask(dir, true)
    }

    #[cfg(target_os = "linux")]
    fn with_mask(dir: &Path, writes: bool) -> Option<Watch> {
        use std::ffi::CString;
        use std::os::fd::{FromRawFd, OwnedFd};
        use std::os::unix::ffi::OsStrExt;

        let path = CString::new(dir.as_os_str().as_bytes()).ok()?;
        // SAFETY: plain syscalls; the fd is owned (and closed) by the OwnedFd from here on.
        let fd = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
        if fd < 0 {
            return None;
        }
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let mut mask = libc::IN_CREATE | libc::IN_DELETE | libc::IN_MOVED_FROM | libc::IN_MOVED_TO;
        if writes {
            mask |= libc::IN_CLOSE_WRITE;
        }
        let wd = unsafe {
            libc::inotify_add_watch(std::os::fd::AsRawFd::as_raw_fd(&fd), path.as_ptr(), mask)
        };
        (wd >= 0).then_some(Watch { fd })
    }

    #[cfg(not(target_os = "linux"))]
    fn with_mask(_dir: &Path, _writes: bool) -> Option<Watch> {
        None
    }

    /// Everything seen since `start`. Call `barrier` first.
    #[cfg(target_os = "linux")]
    pub fn seen(&self) -> Seen {
        use std::os::fd::AsRawFd;
        use std::os::unix::ffi::OsStrExt;

        let mut events = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        let header = std::mem::size_of::<libc::inotify_event>();
        loop {
            // SAFETY: reads at most buf.len() bytes into buf.
            let n = unsafe { libc::read(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if n < 0 {
                let err = std::io::Error::last_os_error();
                return if err.kind() == std::io::ErrorKind::WouldBlock {
                    Seen::Events(events)
                } else {
                    Seen::Unknown
                };
            }
            let mut at = 0usize;
            while at + header <= n as usize {
                // SAFETY: the kernel wrote whole events; read_unaligned copes with any offset.
                let event: libc::inotify_event =
                    unsafe { std::ptr::read_unaligned(buf[at..].as_ptr().cast()) };
                if event.mask & libc::IN_Q_OVERFLOW != 0 {
                    return Seen::Unknown;
                }
                let name = &buf[at + header..at + header + event.len as usize];
                let name = name.split(|b| *b == 0).next().unwrap_or_default();
                let kind = if event.mask & libc::IN_CREATE != 0 {
                    Kind::Created
                } else if event.mask & libc::IN_DELETE != 0 {
                    Kind::Deleted
                } else if event.mask & libc::IN_MOVED_FROM != 0 {
                    Kind::MovedFrom
                } else if event.mask & libc::IN_MOVED_TO != 0 {
                    Kind::MovedTo
                } else if event.mask & libc::IN_CLOSE_WRITE != 0 {
                    Kind::Written
                } else {
                    // IN_IGNORED and the like: the watch itself went away.
                    return Seen::Unknown;
                };
                events.push((kind, std::ffi::OsStr::from_bytes(name).to_os_string()));
                at += header + event.len as usize;
            }
        }
    }

    #[cfg(not(target_os = "linux"))]
    pub fn seen(&self) -> Seen {
        Seen::Unknown
    }

    /// Wait for changes already under way in `dir` to be reported. A create, unlink or rename
    /// moves the directory's mtime before it queues its event, both under the directory's
    /// lock; unlinking a name that does not exist takes that lock, so once it returns, every
    /// change the caller's last stat could see has its event in the queue.
    pub fn barrier(dir: &Path) {
        let _ = std::fs::remove_file(dir.join(".clinvk-barrier-no-such-file"));
    }
}
