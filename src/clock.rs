//! The current time. `CLINVK_NOW` (RFC 3339) freezes it, so that tests and benchmarks of relative
//! dates ("5 minutes ago", `--since 7d`, `clean --older-than`) are deterministic.

use chrono::{DateTime, Utc};

use crate::error::{Error, Result};

pub fn now() -> Result<DateTime<Utc>> {
    match std::env::var("CLINVK_NOW") {
        Ok(value) if !value.is_empty() => DateTime::parse_from_rfc3339(&value)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| {
                Error::usage(format!(
                    "CLINVK_NOW='{value}' is not an RFC 3339 time ({e}): unset it or use e.g. 2025-01-27T10:00:00Z"
                ))
            }),
        // Milliseconds, as the index keeps them: a file's time and its row then agree, and
        // session files stay readable (`2026-11-23T22:16:19.925Z`).
        _ => {
            let now = Utc::now();
            Ok(DateTime::from_timestamp_millis(now.timestamp_millis()).unwrap_or(now))
        }
    }
}
