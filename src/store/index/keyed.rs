//! The usage rollups by tag and by working directory (`usage_keyed`) and each session's total
//! (`session_totals`), for `sessions stats --by tag|workdir|project|session` without joining
//! every run to its session. The index's writes keep them: before a session's rows change, what
//! they counted is taken out; after, the new rows are put in. The changes gather in memory
//! (`Deltas`, a few entries per session, or one entry per key and month over a whole rebuild)
//! and are written when the transaction commits.

use std::collections::HashMap;

use rusqlite::{params, Connection, OptionalExtension, Transaction};

use super::turns::{TurnRow, FIRST_EVER, FIRST_MONTH, PER_MODEL};
use crate::store::session::Session;
use crate::timespec::{date_of_day_number, day_number, Granularity};

/// `usage_keyed.kind`: the key is a tag ('' for a session without tags).
pub const TAG: i64 = 0;
/// `usage_keyed.kind`: the key is a working directory.
pub const WORKDIR: i64 = 1;

/// The summed columns of `usage_keyed`, in order after its key.
const SUMS: usize = 13;

/// A row of `usage_keyed` by its key, the texts (key, backend, status, model) by their number
/// in `Deltas::names`: a rebuild adds millions of runs to a few thousand rows, without a
/// string made for each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Key {
    kind: i64,
    key: usize,
    month: i64,
    backend: usize,
    status: usize,
    model: usize,
    reported: bool,
}

/// One run row as the rollups count it.
struct Counted<'a> {
    month: i64,
    backend: &'a str,
    status: &'a str,
    model: &'a str,
    reported: bool,
    /// turn_rows (1), runs, input, output, cached, cache_write, reasoning, total, cost_nusd,
    /// first_month, first_ever, model_first_month, model_first_ever.
    sums: [i64; SUMS],
}

/// The first day of the month (in the rollup zone) of a run's day, as a day number.
pub fn month_of(day: i64) -> i64 {
    day_number(Granularity::Month.start(date_of_day_number(day)))
}

fn counted_sums(runs: i64, figures: [i64; 6], cost: i64, firsts: i64) -> [i64; SUMS] {
    let bit = |b: i64| i64::from(firsts & b != 0);
    let [input, output, cached, cache_write, reasoning, total] = figures;
    [
        1,
        runs,
        input,
        output,
        cached,
        cache_write,
        reasoning,
        total,
        cost,
        bit(FIRST_MONTH),
        bit(FIRST_EVER),
        bit(FIRST_MONTH * PER_MODEL),
        bit(FIRST_EVER * PER_MODEL),
    ]
}

/// What the writes of one transaction change in the rollups.
#[derive(Debug, Default)]
pub struct Deltas {
    sums: HashMap<Key, [i64; SUMS]>,
    names: Vec<String>,
    numbers: HashMap<String, usize>,
}

impl Deltas {
    fn number(&mut self, name: &str) -> usize {
        if let Some(n) = self.numbers.get(name) {
            return *n;
        }
        self.names.push(name.to_string());
        self.numbers.insert(name.to_string(), self.names.len() - 1);
        self.names.len() - 1
    }

    fn add(&mut self, sign: i64, tags: &[String], workdir: &str, rows: &[Counted<'_>]) {
        // Each tag once, as `session_tags` holds them (a file may name one twice).
        let mut tags: Vec<&str> = tags.iter().map(String::as_str).collect();
        tags.sort_unstable();
        tags.dedup();
        if tags.is_empty() {
            tags.push("");
        }
        let keys = tags
            .into_iter()
            .map(|t| (TAG, t))
            .chain([(WORKDIR, workdir)]);
        for (kind, key) in keys {
            let key = self.number(key);
            for row in rows {
                let k = Key {
                    kind,
                    key,
                    month: row.month,
                    backend: self.number(row.backend),
                    status: self.number(row.status),
                    model: self.number(row.model),
                    reported: row.reported,
                };
                let entry = self.sums.entry(k).or_insert([0; SUMS]);
                for (sum, value) in entry.iter_mut().zip(row.sums) {
                    *sum += sign * value;
                }
            }
        }
    }

    /// Count `session`'s new rows (`rows`, as `turns` holds them, values clamped).
    pub fn put_in(&mut self, session: &Session, rows: &[TurnRow]) {
        let counted: Vec<Counted<'_>> = rows
            .iter()
            .map(|r| Counted {
                month: month_of(r.day),
                backend: session.backend.as_str(),
                status: session.status.as_str(),
                model: &r.model,
                reported: r.cost_nusd.is_some(),
                sums: counted_sums(r.runs, r.counts(), r.cost_nusd.unwrap_or(0), r.firsts),
            })
            .collect();
        self.add(1, &session.tags, &session.workdir, &counted);
    }

    /// Take out what the session `<stem>.json` counts now, as the index has it (before its
    /// rows change or go), if the index has it.
    pub fn take_out(&mut self, tx: &Transaction<'_>, stem: &str) -> rusqlite::Result<()> {
        let Some((pk, workdir)) = tx
            .prepare_cached("SELECT pk, workdir FROM sessions WHERE id = ?1")?
            .query_row([stem], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
            })
            .optional()?
        else {
            return Ok(());
        };
        let tags: Vec<String> = tx
            .prepare_cached("SELECT tag FROM session_tags WHERE session_pk = ?1")?
            .query_map([pk], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        let mut stmt = tx.prepare_cached(
            "SELECT day, backend, status, model, cost_nusd IS NOT NULL, runs, input, output,
                    cached, cache_write, reasoning, total, coalesce(cost_nusd, 0), firsts
             FROM turns WHERE session_pk = ?1",
        )?;
        let rows: Vec<(i64, String, String, String, bool, [i64; SUMS])> = stmt
            .query_map([pk], |r| {
                let figures = [
                    r.get(6)?,
                    r.get(7)?,
                    r.get(8)?,
                    r.get(9)?,
                    r.get(10)?,
                    r.get(11)?,
                ];
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    counted_sums(r.get(5)?, figures, r.get(12)?, r.get(13)?),
                ))
            })?
            .collect::<rusqlite::Result<_>>()?;
        let counted: Vec<Counted<'_>> = rows
            .iter()
            .map(|(day, backend, status, model, reported, sums)| Counted {
                month: month_of(*day),
                backend,
                status,
                model,
                reported: *reported,
                sums: *sums,
            })
            .collect();
        self.add(-1, &tags, &workdir, &counted);
        Ok(())
    }

    /// Write the changes (before the transaction commits).
    pub fn flush(&mut self, tx: &Transaction<'_>) -> rusqlite::Result<()> {
        let mut upsert = tx.prepare_cached(
            "INSERT INTO usage_keyed VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12,
                 ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20)
             ON CONFLICT (kind, key, month, backend, status, model, reported) DO UPDATE SET
                 turn_rows = turn_rows + excluded.turn_rows, runs = runs + excluded.runs,
                 input = input + excluded.input, output = output + excluded.output,
                 cached = cached + excluded.cached, cache_write = cache_write + excluded.cache_write,
                 reasoning = reasoning + excluded.reasoning, total = total + excluded.total,
                 cost_nusd = cost_nusd + excluded.cost_nusd,
                 first_month = first_month + excluded.first_month,
                 first_ever = first_ever + excluded.first_ever,
                 model_first_month = model_first_month + excluded.model_first_month,
                 model_first_ever = model_first_ever + excluded.model_first_ever",
        )?;
        let mut emptied = tx.prepare_cached(
            "DELETE FROM usage_keyed WHERE kind = ?1 AND key = ?2 AND month = ?3 AND backend = ?4
                 AND status = ?5 AND model = ?6 AND reported = ?7 AND turn_rows <= 0",
        )?;
        let names = std::mem::take(&mut self.names);
        self.numbers.clear();
        for (k, s) in self.sums.drain() {
            if s.iter().all(|v| *v == 0) {
                continue;
            }
            let text = |n: usize| names[n].as_str();
            let key = params![
                k.kind,
                text(k.key),
                k.month,
                text(k.backend),
                text(k.status),
                text(k.model),
                k.reported
            ];
            let mut values: Vec<&dyn rusqlite::ToSql> = key.to_vec();
            values.extend(s.iter().map(|v| v as &dyn rusqlite::ToSql));
            upsert.execute(values.as_slice())?;
            if s[0] < 0 {
                emptied.execute(key)?;
            }
        }
        Ok(())
    }
}

/// The rollups' rows as the runs make them (what the writes keep `usage_keyed` equal to).
const KEYED_OF_TURNS: &str = "
    SELECT k.kind, k.key,
           CAST(julianday(date(x.day * 86400, 'unixepoch', 'start of month')) - 2440587.5 AS INTEGER),
           x.backend, x.status, x.model, x.cost_nusd IS NOT NULL, count(*), sum(x.runs),
           sum(x.input), sum(x.output), sum(x.cached), sum(x.cache_write), sum(x.reasoning),
           sum(x.total), sum(coalesce(x.cost_nusd, 0)), sum((x.firsts & 4) > 0),
           sum((x.firsts & 8) > 0), sum((x.firsts & 64) > 0), sum((x.firsts & 128) > 0)
    FROM turns x
    JOIN (SELECT 0 AS kind, g.tag AS key, g.session_pk FROM session_tags g
          UNION ALL
          SELECT 0, '', s.pk FROM sessions s
          WHERE NOT EXISTS (SELECT 1 FROM session_tags g WHERE g.session_pk = s.pk)
          UNION ALL
          SELECT 1, s.workdir, s.pk FROM sessions s) k ON k.session_pk = x.session_pk
    GROUP BY 1, 2, 3, 4, 5, 6, 7";

/// Whether the rollups by tag and directory, and the sessions' totals, hold exactly what the
/// runs make (`sessions reindex --check`).
pub fn keyed_match_runs(conn: &Connection) -> rusqlite::Result<bool> {
    let differing: i64 = conn.query_row(
        &format!(
            "SELECT (SELECT count(*) FROM (SELECT * FROM usage_keyed EXCEPT {KEYED_OF_TURNS}))
                  + (SELECT count(*) FROM ({KEYED_OF_TURNS} EXCEPT SELECT * FROM usage_keyed))
                  + (SELECT count(*) FROM (SELECT session_pk, total FROM session_totals
                         EXCEPT SELECT session_pk, sum(total) FROM turns GROUP BY session_pk))
                  + (SELECT count(*) FROM (SELECT session_pk, sum(total) FROM turns
                         GROUP BY session_pk EXCEPT SELECT session_pk, total FROM session_totals))"
        ),
        [],
        |r| r.get(0),
    )?;
    Ok(differing == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_day_counts_in_its_month() {
        let day = |y, m, d| day_number(chrono::NaiveDate::from_ymd_opt(y, m, d).unwrap());
        assert_eq!(month_of(day(2025, 2, 17)), day(2025, 2, 1));
        assert_eq!(month_of(day(2024, 12, 31)), day(2024, 12, 1));
        assert_eq!(month_of(day(1970, 1, 1)), 0);
    }
}
