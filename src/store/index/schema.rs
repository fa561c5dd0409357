//! The index's schema: the migrations in `migrations/`, embedded at build time (build.rs reruns
//! when a file there changes), and a fingerprint of everything that decides what the index
//! holds, so that an index built otherwise is rebuilt rather than trusted.

use std::sync::OnceLock;

use super::turns;

pub(super) mod embedded {
    refinery::embed_migrations!("migrations");
}

/// A hash of every embedded migration's SQL, and of what else decides the rows: how usage rows
/// are derived from a file, and the time zone rules days are counted with. An index whose
/// recorded fingerprint differs was built by migrations that have since changed (which should
/// never happen once shipped, but a development build or a botched edit must not leave a wrong
/// index trusted), or with other rules: rebuild it.
pub(super) fn schema_fingerprint() -> &'static str {
    static FINGERPRINT: OnceLock<String> = OnceLock::new();
    FINGERPRINT.get_or_init(|| {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325; // FNV-1a
        for m in embedded::migrations::runner().get_migrations() {
            for b in m
                .sql()
                .unwrap_or_default()
                .bytes()
                .chain(m.version().to_le_bytes())
            {
                hash = (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
            }
        }
        for b in turns::ROWS_VERSION
            .bytes()
            .chain(chrono_tz::IANA_TZDB_VERSION.bytes())
        {
            hash = (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        format!("{hash:016x}")
    })
}

/// The schema version this build writes, kept in `PRAGMA user_version` so that opening the index
/// costs one pragma read instead of a migration-history query.
pub(super) fn latest_version() -> i64 {
    // Building the runner parses every embedded migration: once per process is enough.
    static LATEST: OnceLock<i64> = OnceLock::new();
    *LATEST.get_or_init(|| {
        embedded::migrations::runner()
            .get_migrations()
            .iter()
            .map(|m| i64::from(m.version()))
            .max()
            .unwrap_or(0)
    })
}
