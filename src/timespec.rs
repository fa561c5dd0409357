//! Parsing of the time values users type: `--since`/`--until` bounds and `--older-than` ages.
//! Pure functions of (text, now, local zone) so that the CLI hands the store typed instants.

use chrono::{DateTime, Duration, Local, NaiveDate, NaiveTime, TimeZone, Utc};

use crate::error::{Error, Result};

/// A span such as `30d`, `12h`, `90m`, `2w`, `45s`.
pub fn parse_duration(text: &str) -> Result<Duration> {
    let bad = || {
        Error::usage(format!(
            "'{text}' is not a duration: use a number and a unit, e.g. 30d, 12h, 90m, 2w"
        ))
    };
    let text_trimmed = text.trim();
    let split = text_trimmed
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(bad)?;
    let (digits, unit) = text_trimmed.split_at(split);
    let n: i64 = digits.parse().map_err(|_| bad())?;
    let seconds_per_unit = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return Err(bad()),
    };
    n.checked_mul(seconds_per_unit)
        .and_then(Duration::try_seconds)
        .ok_or_else(bad)
}

/// Which end of a range a date names: a bare day means its start for `--since` and its end for
/// `--until`, so that `--since 2025-01-27 --until 2025-01-27` is that whole day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    Since,
    Until,
}

/// `YYYY-MM-DD`, `YYYYMMDD` (a day in the local time zone), RFC 3339, or a relative age (`24h`,
/// `7d`) counted back from `now`. The result is inclusive for `Since` and exclusive for `Until`.
pub fn parse_instant(text: &str, bound: Bound, now: DateTime<Utc>) -> Result<DateTime<Utc>> {
    let text = text.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        let t = t.with_timezone(&Utc);
        return Ok(match bound {
            Bound::Since => t,
            Bound::Until => t + Duration::milliseconds(1),
        });
    }
    let day = match text.len() {
        10 => NaiveDate::parse_from_str(text, "%Y-%m-%d").ok(),
        8 if text.bytes().all(|b| b.is_ascii_digit()) => {
            NaiveDate::parse_from_str(text, "%Y%m%d").ok()
        }
        _ => None,
    };
    if let Some(day) = day {
        let day = match bound {
            Bound::Since => day,
            Bound::Until => day.succ_opt().ok_or_else(|| out_of_range(text))?,
        };
        return local_midnight(day).ok_or_else(|| out_of_range(text));
    }
    if let Ok(age) = parse_duration(text) {
        return now
            .checked_sub_signed(age)
            .ok_or_else(|| out_of_range(text));
    }
    Err(Error::usage(format!(
        "'{text}' is not a date: use YYYY-MM-DD, YYYYMMDD, an RFC 3339 time \
         (2025-01-27T10:00:00Z) or an age such as 24h or 7d"
    )))
}

fn out_of_range(text: &str) -> Error {
    Error::usage(format!("'{text}' is outside the supported range of dates"))
}

/// The first instant of `day` in the local zone (a DST gap at midnight moves it forward).
fn local_midnight(day: NaiveDate) -> Option<DateTime<Utc>> {
    let naive = day.and_time(NaiveTime::MIN);
    match Local.from_local_datetime(&naive) {
        chrono::LocalResult::Single(t) | chrono::LocalResult::Ambiguous(t, _) => {
            Some(t.with_timezone(&Utc))
        }
        chrono::LocalResult::None => (1..=4).find_map(|h| {
            Local
                .from_local_datetime(&(naive + Duration::hours(h)))
                .earliest()
                .map(|t| t.with_timezone(&Utc))
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        "2025-01-27T12:00:00Z".parse().unwrap()
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30d").unwrap(), Duration::days(30));
        assert_eq!(parse_duration("12h").unwrap(), Duration::hours(12));
        assert_eq!(parse_duration("2w").unwrap(), Duration::days(14));
        assert_eq!(parse_duration("90m").unwrap(), Duration::minutes(90));
        for bad in [
            "",
            "d",
            "30",
            "30x",
            "-3d",
            "3.5d",
            "99999999999999999999d",
            "1 d",
        ] {
            let err = parse_duration(bad).unwrap_err().to_string();
            assert!(err.contains("is not a duration"), "{bad}: {err}");
        }
    }

    #[test]
    fn instants() {
        let t = parse_instant("2025-01-27T10:00:00+01:00", Bound::Since, now()).unwrap();
        assert_eq!(t.to_rfc3339(), "2025-01-27T09:00:00+00:00");
        assert_eq!(
            parse_instant("24h", Bound::Since, now()).unwrap(),
            now() - Duration::hours(24)
        );
        let since = parse_instant("2025-01-27", Bound::Since, now()).unwrap();
        let until = parse_instant("20250127", Bound::Until, now()).unwrap();
        assert_eq!(until - since, Duration::hours(24));
        for bad in [
            "2025-13-01",
            "yesterday",
            "2025-1-2",
            "202501271",
            "27/01/2025",
        ] {
            assert!(parse_instant(bad, Bound::Since, now()).is_err(), "{bad}");
        }
    }
}
