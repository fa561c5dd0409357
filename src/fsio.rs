//! Private files and atomic writes, for the session store and the config alike: directories
//! and files only the user can read (prompts are private), a write that a crash leaves either
//! old or new and never half done, and a read that never blocks on a FIFO or follows a symlink.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The end of the temp files `write_atomic` makes: `.<name>.<pid>.<8 hex>.tmp`.
pub const TEMP_SUFFIX: &str = ".tmp";

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
            match fs::set_permissions(dir, fs::Permissions::from_mode(0o700)) {
                // Nothing can be written there either (a read-only mount of a backup): reading
                // it is still allowed.
                Err(e) if e.kind() == std::io::ErrorKind::ReadOnlyFilesystem => {}
                other => other.map_err(|e| Error::io(dir, e))?,
            }
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

/// What reading a file with `read_regular_file` found.
pub enum Read {
    /// Gone, a symlink, or not a regular file.
    NotAFile,
    /// Bigger than the limit: not read.
    TooBig(fs::Metadata),
    /// Its metadata (from the open handle, so it describes exactly these bytes) and bytes.
    Bytes(fs::Metadata, Vec<u8>),
}

/// The contents of the regular file at `path`, if it holds at most `max` bytes (read in bounded
/// memory: a file that grows while being read stops at the limit and counts as too big).
pub fn read_regular_file(path: &Path, max: u64) -> std::io::Result<Read> {
    let file = match open_for_reading(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Read::NotAFile),
        #[cfg(unix)]
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => return Ok(Read::NotAFile),
        Err(e) => return Err(e),
    };
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Ok(Read::NotAFile);
    }
    if meta.len() > max {
        return Ok(Read::TooBig(meta));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize + 1);
    std::io::Read::read_to_end(&mut std::io::Read::take(file, max + 1), &mut bytes)?;
    if bytes.len() as u64 > max {
        return Ok(Read::TooBig(meta));
    }
    Ok(Read::Bytes(meta, bytes))
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
/// Returns the metadata of the file now at `path`.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<fs::Metadata> {
    let dir = parent_of(path);
    let tmp = temp_path(path);
    let result = (|| {
        let mut file = open_private(&tmp, OpenOptions::new().write(true).create_new(true))?;
        file.write_all(bytes)?;
        file.sync_all()?;
        let meta = file.metadata()?;
        fs::rename(&tmp, path)?;
        sync_dir(dir)?;
        Ok(meta)
    })();
    result.map_err(|e| {
        let _ = fs::remove_file(&tmp);
        Error::io(path, e)
    })
}

fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

/// A fresh temp file name beside `path`: `.<name>.<pid>.<8 hex>.tmp`.
fn temp_path(path: &Path) -> std::path::PathBuf {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("session");
    let mut nonce = [0u8; 4];
    getrandom::fill(&mut nonce).ok();
    parent_of(path).join(format!(
        ".{name}.{}.{:08x}{TEMP_SUFFIX}",
        std::process::id(),
        u32::from_le_bytes(nonce)
    ))
}

/// `write_atomic` for many files of one directory at once, with one flush to disk for all
/// instead of two per file: every temp file is written, the file system is synced once, then
/// each is renamed into place and the directory synced. A crash leaves each file old or new
/// (and temp files that `sessions reindex` removes). Returns each file's metadata, in order.
///
/// `bytes(i)` makes the bytes of `paths[i]` when it is written, so that they need not all be
/// held at once.
pub fn write_atomic_batch(
    dir: &Path,
    paths: &[std::path::PathBuf],
    mut bytes: impl FnMut(usize) -> Vec<u8>,
) -> Result<Vec<fs::Metadata>> {
    let mut temps: Vec<std::path::PathBuf> = Vec::with_capacity(paths.len());
    let cleanup = |temps: &[std::path::PathBuf]| {
        for t in temps {
            let _ = fs::remove_file(t);
        }
    };
    let mut metas = Vec::with_capacity(paths.len());
    // A few files are flushed one by one: a sync of the whole file system costs more then.
    let each = paths.len() <= 8;
    for (i, path) in paths.iter().enumerate() {
        let tmp = temp_path(path);
        let written = open_private(&tmp, OpenOptions::new().write(true).create_new(true)).and_then(
            |mut f| {
                f.write_all(&bytes(i))?;
                if each {
                    f.sync_all()?;
                }
                f.metadata()
            },
        );
        temps.push(tmp);
        match written {
            Ok(meta) => metas.push(meta),
            Err(e) => {
                cleanup(&temps);
                return Err(Error::io(path, e));
            }
        }
    }
    if !each {
        if let Err(e) = sync_contents(dir, &temps) {
            cleanup(&temps);
            return Err(Error::io(dir, e));
        }
    }
    for (i, (path, tmp)) in paths.iter().zip(&temps).enumerate() {
        if let Err(e) = fs::rename(tmp, path) {
            cleanup(&temps[i..]);
            return Err(Error::io(path, e));
        }
    }
    sync_dir(dir).map_err(|e| Error::io(dir, e))?;
    Ok(metas)
}

/// Make the contents of `files` (in `dir`) durable: one syncfs of their file system on Linux,
/// an fsync each elsewhere.
fn sync_contents(dir: &Path, files: &[std::path::PathBuf]) -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        let _ = files;
        use std::os::fd::AsRawFd;
        let d = File::open(dir)?;
        // SAFETY: syncfs on a descriptor this process owns.
        if unsafe { libc::syncfs(d.as_raw_fd()) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = dir;
        for f in files {
            File::open(f)?.sync_all()?;
        }
        Ok(())
    }
}

/// The file name a temp file of `write_atomic` was for, if `name` is exactly such a temp file's
/// name (`.<name>.<pid>.<8 hex>.tmp`), so that other tools' temp files (Syncthing's
/// `.syncthing.<name>.tmp`, a user's `.notes.json.bak.tmp`) are never taken for ours.
pub fn temp_file_target(name: &str) -> Option<&str> {
    let rest = name.strip_prefix('.')?.strip_suffix(TEMP_SUFFIX)?;
    let mut parts = rest.rsplitn(3, '.');
    let (nonce, pid, target) = (parts.next()?, parts.next()?, parts.next()?);
    let ours = nonce.len() == 8
        && nonce.bytes().all(|b| b.is_ascii_hexdigit())
        && !pid.is_empty()
        && pid.bytes().all(|b| b.is_ascii_digit());
    ours.then_some(target)
}

/// Remove the temp files an interrupted `write_atomic` (a crash, a kill, a full disk) left in
/// `dir`, for the targets `wanted` accepts; returns how many. Only safe when no write can be
/// under way (the caller holds the lock every such write takes).
pub fn remove_temp_files(dir: &Path, wanted: impl Fn(&str) -> bool) -> Result<usize> {
    remove_all(&temp_files(dir, wanted)?)
}

/// The temp files of `write_atomic` in `dir` for the targets `wanted` accepts (to remove with
/// `remove_all` once no write can be under way: one found before that was stale or is gone).
pub fn temp_files(dir: &Path, wanted: impl Fn(&str) -> bool) -> Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if temp_file_target(name).is_some_and(&wanted)
            && entry.file_type().is_ok_and(|t| t.is_file())
        {
            found.push(entry.path());
        }
    }
    Ok(found)
}

/// Remove the files `paths` (those gone, or no longer files, are left and not counted); how
/// many were removed.
pub fn remove_all(paths: &[PathBuf]) -> Result<usize> {
    let mut removed = 0;
    for path in paths {
        if fs::symlink_metadata(path).is_ok_and(|m| m.is_file()) && remove_if_exists(path)? {
            removed += 1;
        }
    }
    Ok(removed)
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
