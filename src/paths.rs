//! Where clinvk keeps its data: `~/.clinvk` or `$CLINVK_HOME`, config at `config.yaml`
//! (or `$CLINVK_CONFIG`), sessions in `sessions/`.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

#[derive(Debug, Clone)]
pub struct Paths {
    pub home: PathBuf,
    pub config: PathBuf,
    pub sessions: PathBuf,
}

impl Paths {
    /// Resolve from the environment, as the guide documents.
    pub fn from_env() -> Result<Self> {
        let home = match std::env::var_os("CLINVK_HOME").filter(|v| !v.is_empty()) {
            Some(dir) => PathBuf::from(dir),
            None => dirs::home_dir().ok_or(Error::NoHome)?.join(".clinvk"),
        };
        let config = std::env::var_os("CLINVK_CONFIG")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| home.join("config.yaml"));
        Ok(Self::new(&home, config))
    }

    pub fn new(home: &Path, config: PathBuf) -> Self {
        Paths {
            home: home.to_path_buf(),
            sessions: home.join("sessions"),
            config,
        }
    }
}

/// `~/rest` as a path under the home directory; anything else as written.
pub fn expand_home(text: &str) -> PathBuf {
    match (text.strip_prefix("~/"), dirs::home_dir()) {
        (Some(rest), Some(home)) => home.join(rest),
        _ if text == "~" => dirs::home_dir().unwrap_or_else(|| PathBuf::from(text)),
        _ => PathBuf::from(text),
    }
}
