//! How to call each CLI: the program, its arguments, and where the prompt goes. Pure, so that
//! the flags the reference calls for (and the traps it warns of) are unit-tested.
//!
//! - Claude and Codex read the prompt from stdin: nothing after a variadic flag can swallow it.
//!   Gemini takes it with `--prompt=` (stdin would be read with a 500 ms timeout and prepended).
//! - Values go in `--flag=value` form: Claude's and Gemini's `--resume` take an optional value,
//!   so a value starting with `-` would otherwise read as another flag.
//! - `codex exec resume` (and `codex exec fork`, since 0.16x) accept neither `--sandbox` nor
//!   `-C`; the working directory is the process's, and it is where Claude and Gemini look
//!   sessions up too.

use std::path::{Path, PathBuf};

use crate::domain::Backend;

/// What to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode<'a> {
    /// A new conversation.
    New,
    /// A new conversation the CLI does not save either where it can (Claude
    /// `--no-session-persistence`, Codex `--ephemeral`; Gemini has no such flag).
    Ephemeral,
    /// Continue the backend session with this id.
    Resume(&'a str),
    /// A new conversation that starts from this backend session's context (Claude
    /// `--fork-session`, `codex exec fork`; Gemini has none headless).
    Fork(&'a str),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    pub args: Vec<String>,
    /// Write the prompt to the child's stdin and close it (else stdin is /dev/null).
    pub prompt_on_stdin: bool,
}

/// Why a run cannot be started as asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvokeError {
    #[error("{0} cannot fork a session: its headless mode has no fork; start a new session, or resume this one")]
    NoFork(Backend),
    #[error(
        "'{0}' is not a usable backend session id or model name (it starts with '-' or is empty)"
    )]
    BadValue(String),
    #[error("the prompt is {0} bytes: {1} takes it on its command line, which holds at most {MAX_ARG_BYTES} bytes; shorten it")]
    PromptTooLong(usize, Backend),
}

/// Linux refuses a single argument over 128 KiB (MAX_ARG_STRLEN); stay clear of it.
pub const MAX_ARG_BYTES: usize = 120_000;

pub fn invocation(
    backend: Backend,
    mode: Mode<'_>,
    model: Option<&str>,
    prompt: &str,
) -> Result<Invocation, InvokeError> {
    for value in model.into_iter().chain(match mode {
        Mode::New | Mode::Ephemeral => None,
        Mode::Resume(id) | Mode::Fork(id) => Some(id),
    }) {
        if value.is_empty() || value.starts_with('-') {
            return Err(InvokeError::BadValue(value.to_string()));
        }
    }
    let model_arg = model.map(|m| format!("--model={m}"));
    let args: Vec<String> = match backend {
        Backend::Claude => {
            let mut a = vec![
                "-p".into(),
                "--output-format".into(),
                "stream-json".into(),
                "--verbose".into(),
            ];
            a.extend(model_arg);
            match mode {
                Mode::New => {}
                Mode::Ephemeral => a.push("--no-session-persistence".into()),
                Mode::Resume(id) => a.push(format!("--resume={id}")),
                Mode::Fork(id) => a.extend([format!("--resume={id}"), "--fork-session".into()]),
            }
            a
        }
        Backend::Codex => {
            let mut a = vec!["exec".to_string()];
            let id = match mode {
                Mode::New | Mode::Ephemeral => None,
                Mode::Resume(id) => {
                    a.push("resume".into());
                    Some(id)
                }
                Mode::Fork(id) => {
                    a.push("fork".into());
                    Some(id)
                }
            };
            if mode == Mode::Ephemeral {
                a.push("--ephemeral".into());
            }
            a.extend(["--json".into(), "--skip-git-repo-check".into()]);
            a.extend(model_arg);
            a.extend(id.map(str::to_string));
            a.push("-".into()); // the prompt, from stdin
            a
        }
        Backend::Gemini => {
            let mut a = vec!["-o".into(), "stream-json".into(), "--skip-trust".into()];
            a.extend(model_arg);
            match mode {
                Mode::New | Mode::Ephemeral => {}
                Mode::Resume(id) => a.push(format!("--resume={id}")),
                Mode::Fork(_) => return Err(InvokeError::NoFork(backend)),
            }
            // One argument: yargs would read a prompt starting with `-` after `-p` as flags.
            if prompt.len() > MAX_ARG_BYTES {
                return Err(InvokeError::PromptTooLong(prompt.len(), backend));
            }
            a.push(format!("--prompt={prompt}"));
            a
        }
    };
    Ok(Invocation {
        args,
        prompt_on_stdin: backend != Backend::Gemini,
    })
}

/// The executable `program` names: a bare name (`claude`, `claude-beta`) is the first one on
/// `path` (the value of $PATH); anything with a directory is that file, made absolute (the CLI
/// runs in the session's directory, not this one). None when there is none to run.
pub fn locate(program: &Path, path: Option<&std::ffi::OsStr>) -> Option<PathBuf> {
    if program.components().count() > 1 {
        let absolute = std::path::absolute(program).ok()?;
        return is_executable(&absolute).then_some(absolute);
    }
    std::env::split_paths(path?)
        .map(|dir| dir.join(program))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    let Ok(meta) = std::fs::metadata(path) else {
        return false;
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        meta.is_file() && meta.permissions().mode() & 0o111 != 0
    }
    #[cfg(not(unix))]
    meta.is_file()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(backend: Backend, mode: Mode<'_>, model: Option<&str>) -> Vec<String> {
        invocation(backend, mode, model, "fix the bug")
            .unwrap()
            .args
    }

    #[test]
    fn claude() {
        assert_eq!(
            args(Backend::Claude, Mode::New, None),
            ["-p", "--output-format", "stream-json", "--verbose"]
        );
        assert_eq!(
            args(Backend::Claude, Mode::Fork("81898c55"), Some("sonnet")),
            [
                "-p",
                "--output-format",
                "stream-json",
                "--verbose",
                "--model=sonnet",
                "--resume=81898c55",
                "--fork-session"
            ]
        );
        assert_eq!(
            args(Backend::Claude, Mode::Ephemeral, None)[4],
            "--no-session-persistence"
        );
        assert!(
            invocation(Backend::Claude, Mode::New, None, "p")
                .unwrap()
                .prompt_on_stdin
        );
    }

    #[test]
    fn codex() {
        assert_eq!(
            args(Backend::Codex, Mode::New, Some("gpt-5.6-sol")),
            [
                "exec",
                "--json",
                "--skip-git-repo-check",
                "--model=gpt-5.6-sol",
                "-"
            ]
        );
        assert_eq!(
            args(Backend::Codex, Mode::Resume("019f4a34-2fc9"), None),
            [
                "exec",
                "resume",
                "--json",
                "--skip-git-repo-check",
                "019f4a34-2fc9",
                "-"
            ]
        );
        assert_eq!(
            args(Backend::Codex, Mode::Ephemeral, None),
            [
                "exec",
                "--ephemeral",
                "--json",
                "--skip-git-repo-check",
                "-"
            ]
        );
        // As recorded from codex 0.169.0 (tests/data/real-cli-captures/codex/fork.argv).
        assert_eq!(
            args(
                Backend::Codex,
                Mode::Fork("01a2313a-0d07-7771-ad0b-6e3bccc3126b"),
                None
            ),
            [
                "exec",
                "fork",
                "--json",
                "--skip-git-repo-check",
                "01a2313a-0d07-7771-ad0b-6e3bccc3126b",
                "-"
            ]
        );
    }

    #[test]
    fn gemini() {
        let inv = invocation(
            Backend::Gemini,
            Mode::Resume("fa0c256e"),
            Some("pro"),
            "-rm -rf",
        )
        .unwrap();
        assert_eq!(
            inv.args,
            [
                "-o",
                "stream-json",
                "--skip-trust",
                "--model=pro",
                "--resume=fa0c256e",
                "--prompt=-rm -rf"
            ]
        );
        assert!(!inv.prompt_on_stdin);
        assert!(matches!(
            invocation(
                Backend::Gemini,
                Mode::New,
                None,
                &"x".repeat(MAX_ARG_BYTES + 1)
            ),
            Err(InvokeError::PromptTooLong(_, Backend::Gemini))
        ));
    }

    #[test]
    fn dash_values_are_refused() {
        for (mode, model) in [
            (Mode::Resume("--help"), None),
            (Mode::New, Some("-x")),
            (Mode::Fork(""), None),
        ] {
            assert!(matches!(
                invocation(Backend::Claude, mode, model, "p"),
                Err(InvokeError::BadValue(_))
            ));
        }
    }

    #[test]
    fn locating_the_cli() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("codex");
        std::fs::write(&bin, "#!/bin/sh\n").unwrap();
        let path = std::env::join_paths([dir.path()]).unwrap();
        assert_eq!(
            locate(Path::new("codex"), Some(&path)),
            None,
            "not executable yet"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        assert_eq!(locate(Path::new("codex"), Some(&path)), Some(bin.clone()));
        assert_eq!(locate(Path::new("claude"), Some(&path)), None);
        assert_eq!(locate(&bin, None), Some(bin));
        assert_eq!(locate(Path::new("/nonexistent/claude"), Some(&path)), None);
    }
}
