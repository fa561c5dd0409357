//! Parsing of the time values users type: `--since`/`--until` bounds, `--older-than` ages and
//! `--timezone` zones, and the calendar periods (day, week, month) usage is counted in.
//! Pure functions of (text, now, zone) so that the CLI hands the store typed instants.

use chrono::{
    DateTime, Datelike, Duration, FixedOffset, Local, LocalResult, NaiveDate, NaiveDateTime,
    NaiveTime, TimeZone, Utc,
};
use chrono_tz::Tz;

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

/// A run's deadline: a duration (`30m`, `90s`, `2h`), or `0` for none.
pub fn parse_timeout(text: &str) -> Result<Option<std::time::Duration>> {
    let trimmed = text.trim();
    if trimmed.chars().all(|c| c == '0') && !trimmed.is_empty()
        || trimmed
            .strip_suffix(['s', 'm', 'h', 'd', 'w'])
            .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c == '0'))
    {
        return Ok(None);
    }
    let span = parse_duration(trimmed).map_err(|_| {
        Error::usage(format!(
            "'{}' is not a timeout: use a duration such as 30m, 90s or 2h, or 0 for none",
            text.escape_debug()
        ))
    })?;
    span.to_std()
        .ok()
        .filter(|d| !d.is_zero())
        .map(Some)
        .ok_or_else(|| {
            Error::usage(format!(
                "'{}' is not a timeout: it must be positive",
                text.escape_debug()
            ))
        })
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
    parse_instant_in(text, bound, now, &Zone::Local)
}

/// `parse_instant`, with bare days taken in `zone`.
pub fn parse_instant_in(
    text: &str,
    bound: Bound,
    now: DateTime<Utc>,
    zone: &Zone,
) -> Result<DateTime<Utc>> {
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
        return zone.start_of(day).ok_or_else(|| out_of_range(text));
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

/// A time zone that calendar days are counted in.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Zone {
    /// An IANA zone (UTC included), from the embedded time zone database.
    Named(Tz),
    /// A fixed offset such as `+05:30`.
    Fixed(FixedOffset),
    /// The process's own zone (`TZ`, else /etc/localtime) when it has no IANA name, e.g. a POSIX
    /// rule such as `EST5EDT`. Preferred only when no name can be found.
    Local,
}

impl Zone {
    pub const UTC: Zone = Zone::Named(Tz::UTC);

    /// The local zone, by IANA name when it has one: `TZ` first (as the C library and chrono
    /// read it), else the system's configured zone.
    pub fn local() -> Zone {
        let from_env = std::env::var("TZ").ok();
        let name = match from_env.as_deref() {
            Some(tz) if !tz.is_empty() => {
                // `:Europe/Paris` and `/usr/share/zoneinfo/Europe/Paris` name a zone too.
                let tz = tz.trim_start_matches(':');
                Some(
                    tz.rsplit_once("zoneinfo/")
                        .map_or(tz, |(_, n)| n)
                        .to_string(),
                )
            }
            _ => iana_time_zone::get_timezone().ok(),
        };
        match name.as_deref().map(str::parse::<Tz>) {
            Some(Ok(tz)) => Zone::named(tz),
            _ => Zone::Local,
        }
    }

    /// A named zone, UTC's many aliases (`Etc/UTC`, `Zulu`, `GMT`, ...) as plain `UTC`, so that
    /// they are one zone, not several.
    pub fn named(tz: Tz) -> Zone {
        const UTC_ALIASES: &[&str] = &[
            "UTC",
            "UCT",
            "Zulu",
            "Universal",
            "GMT",
            "GMT0",
            "GMT+0",
            "GMT-0",
            "Greenwich",
        ];
        let name = tz.name().strip_prefix("Etc/").unwrap_or(tz.name());
        if UTC_ALIASES.contains(&name) {
            Zone::UTC
        } else {
            Zone::Named(tz)
        }
    }

    /// `UTC`, an IANA name (`Europe/Paris`, any case), an offset (`+05:30`, `-0800`, `+09`), or
    /// `local`.
    pub fn parse(text: &str) -> Result<Zone> {
        let t = text.trim();
        if t.eq_ignore_ascii_case("local") {
            return Ok(Zone::local());
        }
        if t.eq_ignore_ascii_case("utc") || t.eq_ignore_ascii_case("z") {
            return Ok(Zone::UTC);
        }
        if let Some(offset) = parse_offset(t) {
            return Ok(Zone::Fixed(offset));
        }
        Tz::from_str_insensitive(t).map(Zone::named).map_err(|_| {
            Error::usage(format!(
                "'{}' is not a time zone: use an IANA name such as Europe/Paris, UTC, \
                 an offset such as +05:30, or local",
                t.escape_debug()
            ))
        })
    }

    /// How the zone is written back: its IANA name, `+05:30`, or `local` for an unnamed zone.
    pub fn name(&self) -> String {
        match self {
            Zone::Named(tz) => tz.name().to_string(),
            Zone::Fixed(offset) => offset.to_string(),
            Zone::Local => "local".to_string(),
        }
    }

    /// The calendar date at instant `t` in this zone.
    pub fn date_of(&self, t: DateTime<Utc>) -> NaiveDate {
        match self {
            Zone::Named(tz) => t.with_timezone(tz).date_naive(),
            Zone::Fixed(offset) => t.with_timezone(offset).date_naive(),
            Zone::Local => t.with_timezone(&Local).date_naive(),
        }
    }

    /// The wall-clock time at instant `t` in this zone.
    pub fn local_time(&self, t: DateTime<Utc>) -> chrono::NaiveDateTime {
        match self {
            Zone::Named(tz) => t.with_timezone(tz).naive_local(),
            Zone::Fixed(offset) => t.with_timezone(offset).naive_local(),
            Zone::Local => t.with_timezone(&Local).naive_local(),
        }
    }

    /// The first instant of `day` in this zone. A day whose midnight falls in a DST gap starts
    /// at the first valid local time after it.
    pub fn start_of(&self, day: NaiveDate) -> Option<DateTime<Utc>> {
        match self {
            Zone::Named(tz) => first_instant(tz, day),
            Zone::Fixed(offset) => first_instant(offset, day),
            Zone::Local => first_instant(&Local, day),
        }
    }
}

/// `+05:30`, `-0800`, `+09`: a sign is required, so that `2025` is never read as an offset.
fn parse_offset(text: &str) -> Option<FixedOffset> {
    let (sign, rest) = match text.as_bytes().first()? {
        b'+' => (1, &text[1..]),
        b'-' => (-1, &text[1..]),
        _ => return None,
    };
    let digits: String = rest.chars().filter(|c| *c != ':').collect();
    if !digits.bytes().all(|b| b.is_ascii_digit()) || rest.matches(':').count() > 1 {
        return None;
    }
    let (h, m) = match digits.len() {
        2 => (digits.parse::<i32>().ok()?, 0),
        4 => (
            digits[..2].parse::<i32>().ok()?,
            digits[2..].parse::<i32>().ok()?,
        ),
        _ => return None,
    };
    if h > 23 || m > 59 {
        return None;
    }
    FixedOffset::east_opt(sign * (h * 3600 + m * 60))
}

fn first_instant<Z: TimeZone>(zone: &Z, day: NaiveDate) -> Option<DateTime<Utc>> {
    let naive: NaiveDateTime = day.and_time(NaiveTime::MIN);
    match zone.from_local_datetime(&naive) {
        LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => Some(t.with_timezone(&Utc)),
        // A gap at midnight: the day starts when the clocks resume (gaps are at most a few hours).
        LocalResult::None => (1..=16).find_map(|quarter| {
            zone.from_local_datetime(&(naive + Duration::minutes(15 * quarter)))
                .earliest()
                .map(|t| t.with_timezone(&Utc))
        }),
    }
}

/// The calendar periods usage is grouped and budgeted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Granularity {
    Day,
    /// ISO weeks, Monday to Sunday.
    Week,
    Month,
}

impl Granularity {
    pub fn as_str(self) -> &'static str {
        match self {
            Granularity::Day => "day",
            Granularity::Week => "week",
            Granularity::Month => "month",
        }
    }

    /// The first date of the period containing `date`.
    pub fn start(self, date: NaiveDate) -> NaiveDate {
        match self {
            Granularity::Day => date,
            Granularity::Week => {
                date - Duration::days(i64::from(date.weekday().num_days_from_monday()))
            }
            Granularity::Month => date.with_day(1).unwrap_or(date),
        }
    }

    /// The first date of the period after the one starting at `start`.
    pub fn next(self, start: NaiveDate) -> NaiveDate {
        match self {
            Granularity::Day => start + Duration::days(1),
            Granularity::Week => start + Duration::days(7),
            Granularity::Month => {
                let (y, m) = if start.month() == 12 {
                    (start.year() + 1, 1)
                } else {
                    (start.year(), start.month() + 1)
                };
                NaiveDate::from_ymd_opt(y, m, 1).unwrap_or(start)
            }
        }
    }

    /// How a period is named in output: `2025-06-03` (day), `2025-06-02` (the week's Monday),
    /// `2025-06` (month).
    pub fn label(self, start: NaiveDate) -> String {
        match self {
            Granularity::Day | Granularity::Week => start.format("%Y-%m-%d").to_string(),
            Granularity::Month => start.format("%Y-%m").to_string(),
        }
    }
}

/// Days since 1970-01-01 (negative before), the index's integer form of a calendar date.
pub fn day_number(date: NaiveDate) -> i64 {
    i64::from(date.num_days_from_ce()) - 719_163
}

/// The date of a day number (clamped to chrono's range).
pub fn date_of_day_number(n: i64) -> NaiveDate {
    i32::try_from(n + 719_163)
        .ok()
        .and_then(NaiveDate::from_num_days_from_ce_opt)
        .unwrap_or(if n < 0 {
            NaiveDate::MIN
        } else {
            NaiveDate::MAX
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        "2025-01-27T12:00:00Z".parse().unwrap()
    }

    #[test]
    fn timeouts() {
        let secs = |n| Some(std::time::Duration::from_secs(n));
        assert_eq!(parse_timeout("30m").unwrap(), secs(1800));
        assert_eq!(parse_timeout(" 90s ").unwrap(), secs(90));
        assert_eq!(parse_timeout("2h").unwrap(), secs(7200));
        for none in ["0", "00", "0s", "0m"] {
            assert_eq!(parse_timeout(none).unwrap(), None, "{none}");
        }
        for bad in ["", "30", "-5m", "5x", "1.5h", "m", "9999999999999999999w"] {
            let e = parse_timeout(bad).unwrap_err().to_string();
            assert!(e.contains("is not a timeout"), "{bad}: {e}");
        }
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
        let paris = Zone::parse("europe/paris").unwrap();
        let t = parse_instant_in("2025-06-03", Bound::Since, now(), &paris).unwrap();
        assert_eq!(t.to_rfc3339(), "2025-06-02T22:00:00+00:00");
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

    #[test]
    fn zones() {
        assert_eq!(Zone::parse("UTC").unwrap(), Zone::Named(Tz::UTC));
        // UTC's aliases are one zone.
        for alias in [
            "Etc/UTC",
            "etc/uct",
            "Zulu",
            "GMT",
            "Etc/GMT+0",
            "Universal",
        ] {
            assert_eq!(Zone::parse(alias).unwrap(), Zone::Named(Tz::UTC), "{alias}");
        }
        assert_ne!(Zone::parse("Europe/London").unwrap(), Zone::Named(Tz::UTC));
        assert_eq!(Zone::parse("Asia/Kolkata").unwrap().name(), "Asia/Kolkata");
        assert_eq!(Zone::parse("+05:30").unwrap().name(), "+05:30");
        assert_eq!(Zone::parse("-0800").unwrap().name(), "-08:00");
        assert_eq!(Zone::parse("+09").unwrap().name(), "+09:00");
        for bad in ["Mars/Olympus", "2025", "+25:00", "+5:3", "", "+05:30:00"] {
            let err = Zone::parse(bad).unwrap_err().to_string();
            assert!(err.contains("is not a time zone"), "{bad}: {err}");
        }
        let ny = Zone::parse("America/New_York").unwrap();
        let t: DateTime<Utc> = "2025-07-01T03:30:00Z".parse().unwrap();
        assert_eq!(ny.date_of(t).to_string(), "2025-06-30");
        let day = NaiveDate::from_ymd_opt(2025, 7, 1).unwrap();
        assert_eq!(
            ny.start_of(day).unwrap().to_rfc3339(),
            "2025-07-01T04:00:00+00:00"
        );
        // Santiago skips from midnight to 01:00 on its DST start (2024-09-08).
        let santiago = Zone::parse("America/Santiago").unwrap();
        let gap = NaiveDate::from_ymd_opt(2024, 9, 8).unwrap();
        assert_eq!(
            santiago.start_of(gap).unwrap().to_rfc3339(),
            "2024-09-08T04:00:00+00:00"
        );
    }

    #[test]
    fn periods() {
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        assert_eq!(Granularity::Week.start(d("2025-06-08")), d("2025-06-02"));
        assert_eq!(Granularity::Week.start(d("2025-06-02")), d("2025-06-02"));
        assert_eq!(Granularity::Month.start(d("2025-06-30")), d("2025-06-01"));
        assert_eq!(Granularity::Month.next(d("2025-12-01")), d("2026-01-01"));
        assert_eq!(Granularity::Month.label(d("2025-06-01")), "2025-06");
        assert_eq!(Granularity::Week.label(d("2025-06-02")), "2025-06-02");
        assert_eq!(day_number(d("1970-01-01")), 0);
        assert_eq!(day_number(d("1969-12-31")), -1);
        assert_eq!(
            date_of_day_number(day_number(d("2025-06-03"))),
            d("2025-06-03")
        );
    }
}
