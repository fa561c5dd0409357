//! What a 5-hour block (cut by the store, `store::index::blocks`) comes to for the people
//! watching it: whether it is under way, how fast it is being used, and where that leads by
//! its end. The figures follow ccusage's `blocks`: the burn rate is the block's usage over the
//! time between its first and last runs, and the projection adds that rate over the minutes
//! left.

use chrono::{DateTime, Duration, Utc};

use crate::store::{block_under_way, BLOCK_MS};

/// One block's times and use.
#[derive(Debug, Clone, PartialEq)]
pub struct BlockUse {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub first_run: DateTime<Utc>,
    pub last_run: DateTime<Utc>,
    /// Under way at the time asked: before its end, and its last run less than 5 hours old.
    pub active: bool,
    /// Of an active block whose runs span some time.
    pub burn: Option<Burn>,
    pub projection: Option<Projection>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Burn {
    pub tokens_per_minute: f64,
    pub usd_per_hour: f64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Projection {
    pub tokens: u64,
    pub usd: f64,
    pub minutes_left: i64,
}

impl BlockUse {
    /// The block starting at `start` whose runs span `first..=last` (Unix ms) and used `tokens`
    /// and `usd`, as it stands at `now`.
    pub fn new(
        start: DateTime<Utc>,
        (first, last): (i64, i64),
        tokens: u64,
        usd: f64,
        now: DateTime<Utc>,
    ) -> BlockUse {
        let at = |ms: i64| DateTime::from_timestamp_millis(ms).unwrap_or_default();
        let end = start + Duration::milliseconds(BLOCK_MS);
        let (first_run, last_run) = (at(first), at(last));
        let active = block_under_way(start.timestamp_millis(), last, now.timestamp_millis());
        let minutes = (last - first) as f64 / 60_000.0;
        let burn = (active && minutes > 0.0).then(|| Burn {
            tokens_per_minute: tokens as f64 / minutes,
            usd_per_hour: usd / minutes * 60.0,
        });
        let projection = burn.map(|b| {
            let minutes_left = ((end - now).num_milliseconds() as f64 / 60_000.0).round() as i64;
            Projection {
                tokens: (tokens as f64 + b.tokens_per_minute * minutes_left as f64).round() as u64,
                usd: usd + b.usd_per_hour / 60.0 * minutes_left as f64,
                minutes_left,
            }
        });
        BlockUse {
            start,
            end,
            first_run,
            last_run,
            active,
            burn,
            projection,
        }
    }
}

/// `2h 13m`, `45m`.
pub fn hours_minutes(d: Duration) -> String {
    let minutes = d.num_minutes().max(0);
    match minutes / 60 {
        0 => format!("{}m", minutes % 60),
        h => format!("{h}h {:02}m", minutes % 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn burn_rate_and_projection_of_the_active_block() {
        let start = t("2026-12-01T10:00:00Z");
        let (first, last) = (t("2026-12-01T10:10:00Z"), t("2026-12-01T11:10:00Z"));
        let span = (first.timestamp_millis(), last.timestamp_millis());
        // 60 minutes of runs, 6,000 tokens and $3: 100 a minute, $3 an hour; at 12:00, 180
        // minutes are left.
        let b = BlockUse::new(start, span, 6_000, 3.0, t("2026-12-01T12:00:00Z"));
        assert!(b.active);
        assert_eq!(b.end, t("2026-12-01T15:00:00Z"));
        assert_eq!(
            b.burn,
            Some(Burn {
                tokens_per_minute: 100.0,
                usd_per_hour: 3.0
            })
        );
        let p = b.projection.unwrap();
        assert_eq!((p.tokens, p.minutes_left), (24_000, 180));
        assert!((p.usd - 12.0).abs() < 1e-9);
        // Over at its end, or once its last run is 5 hours old; one run makes no rate.
        assert!(!BlockUse::new(start, span, 6_000, 3.0, t("2026-12-01T15:00:00Z")).active);
        let one = (first.timestamp_millis(), first.timestamp_millis());
        let b = BlockUse::new(start, one, 10, 0.1, t("2026-12-01T12:00:00Z"));
        assert!(b.active && b.burn.is_none() && b.projection.is_none());
        assert_eq!(hours_minutes(Duration::minutes(133)), "2h 13m");
        assert_eq!(hours_minutes(Duration::minutes(45)), "45m");
    }
}
