//! The machine a session runs on (`host` in its file): a store synced between machines
//! (Syncthing, rsync) says where each conversation happened, and `--host` / `--by host` select
//! and split by it.

use std::sync::OnceLock;

/// This machine's name: `CLINVK_HOST` when set (a name of one's own, or tests), else the
/// system's host name, without a domain. None when it has none.
pub fn this_host() -> Option<String> {
    static HOST: OnceLock<Option<String>> = OnceLock::new();
    HOST.get_or_init(|| {
        let name = match std::env::var("CLINVK_HOST") {
            Ok(name) if !name.trim().is_empty() => name.trim().to_string(),
            _ => system_host_name()?,
        };
        Some(name)
    })
    .clone()
}

#[cfg(unix)]
fn system_host_name() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most `buf.len()` bytes into `buf`.
    if unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } != 0 {
        return None;
    }
    let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    let name = String::from_utf8_lossy(&buf[..end]);
    // `laptop.example.org` and `laptop` are one machine.
    let short = name.split('.').next().unwrap_or_default().trim();
    (!short.is_empty()).then(|| short.to_string())
}

#[cfg(not(unix))]
fn system_host_name() -> Option<String> {
    std::env::var("COMPUTERNAME").ok().filter(|n| !n.is_empty())
}
