//! One error type for the library. Every variant carries the path, id or value it is about and
//! says what to do next; `main` prints it as one line and maps it to a documented exit code.

use std::path::PathBuf;
use std::time::Duration;

/// Exit codes, documented in README.md. Scripts rely on them: never renumber.
pub mod exit {
    pub const OK: i32 = 0;
    /// I/O or database failure, or a session file that cannot be read.
    pub const FAILURE: i32 = 1;
    /// Bad command line: unknown flag, malformed date/duration/id/tag, unknown config key.
    pub const USAGE: i32 = 2;
    /// No session matches the id, or a prefix matches several.
    pub const NOT_FOUND: i32 = 3;
    /// Another clinvk held `sessions/.lock` for longer than the timeout.
    pub const LOCK_TIMEOUT: i32 = 4;
    /// `config.yaml` is not valid YAML or has a value of the wrong type.
    pub const CONFIG: i32 = 5;
    /// `sessions reindex --check` found the index out of step with the files.
    pub const INDEX_DIFFERS: i32 = 6;
    /// The backend CLI ran and reported a failure (Gemini's own codes 41-55 are kept instead).
    pub const BACKEND_FAILED: i32 = 7;
    /// The backend CLI is not installed (not on PATH, or the configured command is missing).
    pub const BACKEND_MISSING: i32 = 8;
    /// `sessions stats` with a budget: 80 % or more of a budget is used.
    pub const BUDGET_WARNING: i32 = 10;
    /// `sessions stats` with a budget: a budget is used up.
    pub const BUDGET_EXCEEDED: i32 = 11;
    /// The backend CLI ran past its deadline (`--timeout`, `run.timeout`) and was stopped; 124
    /// as coreutils' `timeout` exits.
    pub const TIMED_OUT: i32 = 124;
    /// The run was interrupted (Ctrl-C): 128 + SIGINT, as shells report it.
    pub const INTERRUPTED: i32 = 130;
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Usage(String),

    #[error("no session matches '{id}': run `clinvk sessions list` to see the ids")]
    NotFound { id: String },

    #[error("no session has the id '{prefix}', and a prefix needs at least {min} characters: run `clinvk sessions list` to see the ids")]
    PrefixTooShort { prefix: String, min: usize },

    #[error("'{prefix}' matches {} sessions ({}): give more characters", candidates.len(), candidates.join(", "))]
    Ambiguous {
        prefix: String,
        candidates: Vec<String>,
    },

    #[error(
        "timed out after {:.1}s waiting for the session store lock {}: another clinvk is still running; \
         wait for it, or find it with `fuser {}`",
        waited.as_secs_f64(), path.display(), path.display()
    )]
    LockTimeout { path: PathBuf, waited: Duration },

    #[error("config file {}: {message}", path.display())]
    Config { path: PathBuf, message: String },

    /// Asked of a store that answers from its index as it stands (`Store::as_it_stands`).
    #[error("the index {} is not ready ({why}); the next command brings it up to date", path.display())]
    NotReady { path: PathBuf, why: String },

    #[error("session file {} is not valid: {reason}; fix it with a text editor or remove it", path.display())]
    InvalidSession { path: PathBuf, reason: String },

    /// `sessions delete` of a file that is not a valid session (README: never deleted unasked).
    #[error("{} is not a valid session ({reason}), so it was not deleted: fix it with a text editor, or delete it anyway with `clinvk sessions delete --force {id}`", path.display())]
    InvalidNotDeleted {
        id: String,
        path: PathBuf,
        reason: String,
    },

    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("session index {}: {source}; run `clinvk sessions reindex` to rebuild it", path.display())]
    Index {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },

    #[error("session index {}: {message}", path.display())]
    Migration { path: PathBuf, message: String },

    /// No space left for a write (`ENOSPC`, `SQLITE_FULL`). Nothing was half-written: session
    /// files are replaced atomically and the index is only ever replaced by a complete one.
    #[error("cannot write {}: no space left on the disk; free some space and try again (listing and showing sessions still work)", path.display())]
    DiskFull { path: PathBuf },

    /// A write to a read-only file system (a read-only mount, a backup).
    #[error("cannot write {}: the file system is read-only; sessions can be listed and shown, but not changed", path.display())]
    ReadOnly { path: PathBuf },

    #[error("cannot find a home directory: set CLINVK_HOME")]
    NoHome,

    #[error("session {id} cannot be resumed: {reason}")]
    NotResumable { id: String, reason: String },

    /// A deletion of several sessions stopped on an I/O error after deleting some.
    #[error(
        "deleted {} but not {}: {source}; {}",
        if deleted.is_empty() { "none".to_string() } else { deleted.join(", ") },
        left.join(", "),
        if *journal { "the next clinvk command finishes deleting them" } else { "try again" }
    )]
    DeletionUnfinished {
        deleted: Vec<String>,
        left: Vec<String>,
        /// Whether the delete journal is there for the next command to finish the deletion.
        journal: bool,
        source: Box<Error>,
    },

    /// `-c` or `resume --last` (or the picker) found no session to resume.
    #[error("{0}")]
    NothingToResume(String),

    /// `sessions pick` found no session its filters select.
    #[error("no session to pick from{0}: `clinvk sessions list` shows the sessions there are")]
    NothingToPick(String),

    #[error("{backend} is not installed: {detail}")]
    BackendMissing { backend: String, detail: String },

    #[error("cannot run {}: {source}; check `clinvk config get backends.{backend}.command`", program.display())]
    Spawn {
        backend: String,
        program: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Usage(_) => exit::USAGE,
            Error::NotFound { .. }
            | Error::PrefixTooShort { .. }
            | Error::Ambiguous { .. }
            | Error::NotResumable { .. }
            | Error::NothingToResume(_)
            | Error::NothingToPick(_) => exit::NOT_FOUND,
            Error::BackendMissing { .. } => exit::BACKEND_MISSING,
            // The program vanished after it was found, or a script's interpreter is missing (the
            // kernel says ENOENT for both); anything else (too long a command line, no
            // permission) is a plain failure.
            Error::Spawn { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                exit::BACKEND_MISSING
            }
            Error::Spawn { .. } => exit::FAILURE,
            Error::LockTimeout { .. } | Error::NotReady { .. } => exit::LOCK_TIMEOUT,
            Error::Config { .. } => exit::CONFIG,
            Error::InvalidSession { .. }
            | Error::InvalidNotDeleted { .. }
            | Error::Io { .. }
            | Error::Index { .. }
            | Error::Migration { .. }
            | Error::DiskFull { .. }
            | Error::ReadOnly { .. }
            | Error::NoHome
            | Error::DeletionUnfinished { .. } => exit::FAILURE,
        }
    }

    pub fn usage(message: impl Into<String>) -> Self {
        Error::Usage(message.into())
    }

    /// An I/O error on `path`; a full disk or a read-only file system get their own variants,
    /// which say what to do and let reads carry on without writing.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        use std::io::ErrorKind;
        let path = path.into();
        #[cfg(unix)]
        let over_quota = source.raw_os_error() == Some(libc::EDQUOT);
        #[cfg(not(unix))]
        let over_quota = false;
        match source.kind() {
            ErrorKind::StorageFull => Error::DiskFull { path },
            _ if over_quota => Error::DiskFull { path },
            ErrorKind::ReadOnlyFilesystem => Error::ReadOnly { path },
            _ => Error::Io { path, source },
        }
    }

    /// An SQLite error on the index at `path`, classified like `io`.
    pub fn index(path: impl Into<PathBuf>, source: rusqlite::Error) -> Self {
        use rusqlite::ErrorCode;
        let path = path.into();
        match source.sqlite_error_code() {
            Some(ErrorCode::DiskFull) => Error::DiskFull { path },
            Some(ErrorCode::ReadOnly) => Error::ReadOnly { path },
            _ => Error::Index { path, source },
        }
    }

    /// True when the error means that the store cannot be written here and now (a full disk, a
    /// read-only file system or directory), so that a read can still be answered from the files.
    pub fn is_unwritable(&self) -> bool {
        match self {
            Error::DiskFull { .. } | Error::ReadOnly { .. } => true,
            Error::Io { source, .. } => source.kind() == std::io::ErrorKind::PermissionDenied,
            Error::Index { source, .. } => matches!(
                source.sqlite_error_code(),
                Some(rusqlite::ErrorCode::CannotOpen | rusqlite::ErrorCode::PermissionDenied)
            ),
            _ => false,
        }
    }

    /// True when the error is a closed stdout (`clinvk sessions list | head`), which is not a failure.
    pub fn is_broken_pipe(&self) -> bool {
        matches!(self, Error::Io { source, .. } if source.kind() == std::io::ErrorKind::BrokenPipe)
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
