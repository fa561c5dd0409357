//! The session files themselves: private directories, atomic writes, and the cheap "has this
//! changed?" stamps that let the index notice edits made outside clinvk.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};

use crate::error::{Error, Result};
use crate::store::session::is_valid_id;

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

/// Create `dir` (and missing parents) private to the user. With `tighten`, also remove group and
/// other access from an existing `dir` (the guide's `mkdir ~/.clinvk/sessions` makes it 0755);
/// only for directories that are clinvk's own.
pub fn ensure_private_dir(dir: &Path, tighten: bool) -> Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        builder.mode(0o700);
        builder.create(dir).map_err(|e| Error::io(dir, e))?;
        let meta = fs::metadata(dir).map_err(|e| Error::io(dir, e))?;
        if tighten && meta.permissions().mode() & 0o077 != 0 {
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
                .map_err(|e| Error::io(dir, e))?;
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tighten;
        builder.create(dir).map_err(|e| Error::io(dir, e))?;
    }
    Ok(())
}

/// Open a session file for reading without ever blocking (a FIFO named `x.json` must not hang
/// the store while it holds the lock).
fn open_for_reading(path: &Path) -> std::io::Result<File> {
    let mut options = OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW);
    }
    options.open(path)
}

/// The metadata and contents of the regular file at `path`; None when it is gone, a symlink or
/// not a regular file (none of which is a session file). Metadata comes from the open handle,
/// so it describes exactly the bytes read.
pub fn read_regular_file(path: &Path) -> std::io::Result<Option<(fs::Metadata, Vec<u8>)>> {
    let mut file = match open_for_reading(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        #[cfg(unix)]
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => return Ok(None),
        Err(e) => return Err(e),
    };
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Ok(None);
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize + 1);
    std::io::Read::read_to_end(&mut file, &mut bytes)?;
    Ok(Some((meta, bytes)))
}

/// Open (creating if needed) a file readable by its owner only.
pub fn open_private(path: &Path, options: &mut OpenOptions) -> std::io::Result<File> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)
}

/// Write `bytes` to `path` so that a crash at any point leaves either the old file or the new
/// one, never a mix: temp file in the same directory, fsync, rename, fsync the directory.
/// Returns the stamp of the file now at `path`.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<FileStamp> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("session");
    let mut nonce = [0u8; 4];
    getrandom::fill(&mut nonce).ok();
    let tmp = dir.join(format!(
        ".{name}.{}.{:08x}{TEMP_SUFFIX}",
        std::process::id(),
        u32::from_le_bytes(nonce)
    ));
    let result = (|| {
        let mut file = open_private(&tmp, OpenOptions::new().write(true).create_new(true))?;
        file.write_all(bytes)?;
        file.sync_all()?;
        let stamp = FileStamp::of(&file.metadata()?);
        fs::rename(&tmp, path)?;
        sync_dir(dir)?;
        Ok(stamp)
    })();
    result.map_err(|e| {
        let _ = fs::remove_file(&tmp);
        Error::io(path, e)
    })
}

const TEMP_SUFFIX: &str = ".tmp";

/// Remove the temp files `write_atomic` leaves when a write is interrupted (a crash, a kill,
/// a full disk): `.<id>.json.<pid>.<hex>.tmp`. Only safe when no write can be under way.
pub fn remove_temp_files(dir: &Path) -> Result<usize> {
    let mut removed = 0;
    for entry in fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let ours = is_our_temp_name(name) && entry.file_type().is_ok_and(|t| t.is_file());
        if ours && remove_if_exists(&entry.path())? {
            removed += 1;
        }
    }
    Ok(removed)
}

/// Exactly the names `write_atomic` makes, `.<id>.json.<pid>.<8 hex>.tmp`, so that other tools'
/// temp files (Syncthing's `.syncthing.<name>.tmp`, a user's `.notes.json.bak.tmp`) are never
/// taken for ours.
fn is_our_temp_name(name: &str) -> bool {
    let Some(rest) = name
        .strip_prefix('.')
        .and_then(|n| n.strip_suffix(TEMP_SUFFIX))
    else {
        return false;
    };
    let mut parts = rest.rsplitn(3, '.');
    let (Some(nonce), Some(pid), Some(file)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    nonce.len() == 8
        && nonce.bytes().all(|b| b.is_ascii_hexdigit())
        && !pid.is_empty()
        && pid.bytes().all(|b| b.is_ascii_digit())
        && file.strip_suffix(".json").is_some_and(is_valid_id)
}

/// Make a rename or unlink in `dir` durable.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    File::open(dir)?.sync_all()?;
    Ok(())
}

/// Remove a file, treating "already gone" as done.
pub fn remove_if_exists(path: &Path) -> Result<bool> {
    match fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(Error::io(path, e)),
    }
}

/// One `<id>.json` entry of the sessions directory.
#[derive(Debug, Clone)]
pub struct DirEntry {
    pub id: String,
    pub path: PathBuf,
    pub stamp: FileStamp,
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
        let Some(name) = name.to_str() else { continue };
        let Some(id) = name.strip_suffix(".json") else {
            continue;
        };
        if name.starts_with('.') {
            continue;
        }
        let stamp = if stamps {
            // A file deleted between readdir and stat is simply gone.
            let Ok(meta) = entry.metadata() else { continue };
            if !meta.is_file() {
                continue;
            }
            FileStamp::of(&meta)
        } else {
            // From the directory entry itself (d_type), no stat: regular files only, like the
            // stat path (symlinks, FIFOs and directories are not sessions).
            if !entry.file_type().is_ok_and(|t| t.is_file()) {
                continue;
            }
            FileStamp::default()
        };
        out.push(DirEntry {
            id: id.to_string(),
            path: entry.path(),
            stamp,
        });
    }
    Ok(out)
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
    #[test]
    fn temp_names() {
        assert!(super::is_our_temp_name(".abc123.json.4242.deadbeef.tmp"));
        for other in [
            ".syncthing.s000003.json.tmp",
            ".my notes.json.bak.tmp",
            ".abc.json.12.xyz.tmp",
            "abc.json.1.deadbeef.tmp",
            ".a/b.json.1.deadbeef.tmp",
        ] {
            assert!(!super::is_our_temp_name(other), "{other}");
        }
    }
}
