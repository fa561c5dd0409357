//! The session files themselves: the directory's `<id>.json` entries, the temp files interrupted
//! writes leave, and the cheap "has this changed?" stamps that let the index notice edits made
//! outside clinvk. Private files and atomic writes are `crate::fsio`'s.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};

use crate::domain::is_valid_id;
use crate::error::{Error, Result};
pub use crate::fsio::{
    ensure_private_dir, open_private, read_regular_file, remove_if_exists, sync_dir,
};

/// Write a session file atomically (`fsio::write_atomic`); the stamp of the file now there.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<FileStamp> {
    crate::fsio::write_atomic(path, bytes).map(|meta| FileStamp::of(&meta))
}

/// Identity of one file version. A rename over the file (editors, `mv`, sync tools, clinvk's own
/// atomic writes) changes the inode; an in-place edit changes size or mtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FileStamp {
    pub ino: i64,
    pub size: i64,
    pub mtime_ns: i64,
}

impl FileStamp {
    pub fn of(meta: &fs::Metadata) -> Self {
        FileStamp {
            ino: inode(meta),
            size: meta.len() as i64,
            mtime_ns: mtime_ns(meta),
        }
    }
}

#[cfg(unix)]
fn inode(meta: &fs::Metadata) -> i64 {
    use std::os::unix::fs::MetadataExt;
    meta.ino() as i64
}

#[cfg(not(unix))]
fn inode(_meta: &fs::Metadata) -> i64 {
    0
}

pub fn mtime_ns(meta: &fs::Metadata) -> i64 {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos() as i64)
}

pub fn modified_utc(meta: &fs::Metadata) -> DateTime<Utc> {
    meta.modified()
        .map(DateTime::<Utc>::from)
        .unwrap_or_default()
}

/// Remove the temp files `write_atomic` leaves when a session write is interrupted (a crash, a
/// kill, a full disk): `.<id>.json.<pid>.<hex>.tmp`. Only safe when no write can be under way.
pub fn remove_temp_files(dir: &Path) -> Result<usize> {
    crate::fsio::remove_temp_files(dir, is_session_file_name)
}

/// Those temp files, found now, to remove once no write can be under way (`fsio::remove_all`).
pub fn temp_files(dir: &Path) -> Result<Vec<PathBuf>> {
    crate::fsio::temp_files(dir, is_session_file_name)
}

fn is_session_file_name(name: &str) -> bool {
    name.strip_suffix(".json").is_some_and(is_valid_id)
}

/// One `<id>.json` entry of the sessions directory.
#[derive(Debug, Clone)]
pub struct DirEntry {
    pub id: String,
    pub path: PathBuf,
    pub stamp: FileStamp,
}

/// The stem the store knows the file `<stem>.json` by: the name as it is, unless it is not UTF-8
/// or holds a `\\`; then `\\` is written `\\\\` and each byte that is not UTF-8 `\\xNN`
/// (`caf\\xe9`), which is what is printed, and what `path_of` turns back into the name.
pub fn stem_of(name: &[u8]) -> String {
    match std::str::from_utf8(name) {
        Ok(text) if !text.contains('\\') => text.to_string(),
        _ => {
            let mut out = String::new();
            for chunk in name.utf8_chunks() {
                out.push_str(&chunk.valid().replace('\\', "\\\\"));
                for b in chunk.invalid() {
                    out.push_str(&format!("\\x{b:02x}"));
                }
            }
            out
        }
    }
}

/// The file `<stem>.json` in `dir`, for a stem made by `stem_of`.
pub fn path_of(dir: &Path, stem: &str) -> PathBuf {
    if !stem.contains('\\') {
        return dir.join(format!("{stem}.json"));
    }
    let mut bytes = Vec::new();
    let mut rest = stem.as_bytes();
    while let Some((&b, tail)) = rest.split_first() {
        match (b, tail) {
            (b'\\', [b'\\', more @ ..]) => {
                bytes.push(b'\\');
                rest = more;
            }
            (b'\\', [b'x', h, l, more @ ..]) => {
                let hex = [*h, *l];
                match std::str::from_utf8(&hex)
                    .ok()
                    .and_then(|x| u8::from_str_radix(x, 16).ok())
                {
                    Some(v) => bytes.push(v),
                    None => bytes.extend_from_slice(&[b'\\', b'x', *h, *l]),
                }
                rest = more;
            }
            _ => {
                bytes.push(b);
                rest = tail;
            }
        }
    }
    bytes.extend_from_slice(b".json");
    #[cfg(unix)]
    let name = <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(&bytes).to_os_string();
    #[cfg(not(unix))]
    let name = std::ffi::OsString::from(String::from_utf8_lossy(&bytes).into_owned());
    dir.join(name)
}

/// Every `*.json` file in `dir` that is not hidden (the index, lock and temp files are). A name
/// that is not a valid id is still listed, so that it is reported rather than silently ignored.
/// Without `stamps`, entries are not stat'ed (their stamp is zero).
pub fn scan_dir(dir: &Path, stamps: bool) -> Result<Vec<DirEntry>> {
    let mut out = Vec::new();
    let entries = fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let name = entry.file_name();
        let name = name.as_encoded_bytes();
        let Some(stem) = name.strip_suffix(b".json") else {
            continue;
        };
        if name.starts_with(b".") {
            continue;
        }
        // From the directory entry itself (d_type), no stat: regular files only, like the
        // stat below (symlinks, FIFOs and directories are not sessions).
        if !entry.file_type().is_ok_and(|t| t.is_file()) {
            continue;
        }
        // A name that is not UTF-8 is no session id either, but it is reported as such.
        out.push(DirEntry {
            id: stem_of(stem),
            path: entry.path(),
            stamp: FileStamp::default(),
        });
    }
    if stamps {
        stat_all(&mut out);
    }
    Ok(out)
}

/// Stamp every entry (a stat each), on every core: a million files take a second or two. A file
/// deleted (or no longer a regular file) since the directory was read is left out.
fn stat_all(entries: &mut Vec<DirEntry>) {
    let threads = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .min(8);
    let chunk = entries.len().div_ceil(threads).max(1);
    let mut gone = vec![false; entries.len()];
    std::thread::scope(|scope| {
        for (part, gone) in entries.chunks_mut(chunk).zip(gone.chunks_mut(chunk)) {
            scope.spawn(move || {
                for (e, gone) in part.iter_mut().zip(gone) {
                    match fs::symlink_metadata(&e.path) {
                        Ok(meta) if meta.is_file() => e.stamp = FileStamp::of(&meta),
                        _ => *gone = true,
                    }
                }
            });
        }
    });
    let mut gone = gone.into_iter();
    entries.retain(|_| !gone.next().unwrap_or(false));
}

/// What the index remembers of the sessions directory to know it has not changed: an add,
/// remove or rename in it moves its mtime and ctime. The ctime matters because restore tools
/// (`cp -a`, `rsync -a`) set the mtime back to an old value, but nothing can set the ctime back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DirStamp {
    pub ino: i64,
    pub mtime_ns: i64,
    pub ctime_ns: i64,
}

impl DirStamp {
    pub fn of(dir: &Path) -> Result<DirStamp> {
        let meta = fs::metadata(dir).map_err(|e| Error::io(dir, e))?;
        Ok(DirStamp {
            ino: inode(&meta),
            mtime_ns: mtime_ns(&meta),
            ctime_ns: ctime_ns(&meta),
        })
    }

    /// The form kept in the index.
    pub fn key(&self) -> String {
        format!("{}:{}:{}", self.ino, self.mtime_ns, self.ctime_ns)
    }
}

#[cfg(unix)]
fn ctime_ns(meta: &fs::Metadata) -> i64 {
    use std::os::unix::fs::MetadataExt;
    meta.ctime().saturating_mul(1_000_000_000) + meta.ctime_nsec()
}

#[cfg(not(unix))]
fn ctime_ns(meta: &fs::Metadata) -> i64 {
    mtime_ns(meta)
}

/// The sessions directory's stamp, if it can be trusted to change on the next edit.
///
/// Timestamps come from a clock with a granularity: a change within the same tick as the
/// recorded stamp would not move it. The clock is read after the stat, so:
/// - mtime below the coarse clock: that tick has passed; later changes get a later stamp.
/// - mtime above it: the kernel stamped it with the fine-grained clock (multigrain timestamps,
///   Linux 6.13+), which it does once the stamp has been read, as ours just was; the next change
///   then gets a new, later stamp.
/// - equal: racy. Wait for the next tick (at most a few ms), else give up and return `None`,
///   and the caller records the directory as "must rescan".
pub fn stable_dir_stamp(dir: &Path) -> Result<Option<DirStamp>> {
    let deadline = std::time::Instant::now() + Duration::from_millis(30);
    loop {
        let stamp = DirStamp::of(dir)?;
        let now = coarse_now_ns();
        let mtime = stamp.mtime_ns;
        // Whole-second mtimes suggest a file system with coarse timestamps (FAT, some network
        // mounts): only trust them once two seconds have passed.
        if mtime % 1_000_000_000 == 0 {
            return Ok((now > mtime + 2_000_000_000).then_some(stamp));
        }
        // Off Linux the clock below is a conservative stand-in, so only "passed" counts.
        let settled = if cfg!(target_os = "linux") {
            now != mtime
        } else {
            now > mtime
        };
        if settled {
            return Ok(Some(stamp));
        }
        if std::time::Instant::now() >= deadline {
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// The clock file systems stamp with (the kernel's tick-granular "coarse" real time). Later
/// changes get an mtime at least this value.
#[cfg(target_os = "linux")]
fn coarse_now_ns() -> i64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime only writes to the timespec we pass.
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME_COARSE, &mut ts) };
    ts.tv_sec * 1_000_000_000 + ts.tv_nsec
}

/// Elsewhere, be conservative: pretend the clock is 20 ms behind.
#[cfg(not(target_os = "linux"))]
fn coarse_now_ns() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
        - 20_000_000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn odd_names_have_stems_that_lead_back_to_them() {
        let dir = Path::new("/d");
        for name in [
            &b"abc123"[..],
            b"caf\xe9",
            b"a\\x41",
            b"\xff\xfe",
            "caf\u{e9}".as_bytes(),
        ] {
            let stem = stem_of(name);
            let mut want = name.to_vec();
            want.extend_from_slice(b".json");
            let path = path_of(dir, &stem);
            assert_eq!(
                path.file_name().unwrap().as_encoded_bytes(),
                &want[..],
                "{stem}"
            );
        }
        assert_eq!(stem_of(b"caf\xe9"), "caf\\xe9");
        assert_eq!(stem_of("caf\u{e9}".as_bytes()), "caf\u{e9}");
        // A real backslash is told apart from an escape.
        assert_ne!(stem_of(b"a\\x41"), stem_of(b"aA"));
    }

    #[test]
    fn temp_names() {
        let ours = |name: &str| {
            crate::fsio::temp_file_target(name).is_some_and(super::is_session_file_name)
        };
        assert!(ours(".abc123.json.4242.deadbeef.tmp"));
        for other in [
            ".syncthing.s000003.json.tmp",
            ".my notes.json.bak.tmp",
            ".abc.json.12.xyz.tmp",
            "abc.json.1.deadbeef.tmp",
            ".a/b.json.1.deadbeef.tmp",
        ] {
            assert!(!ours(other), "{other}");
        }
    }
}
