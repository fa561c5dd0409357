//! The listing: sessions matching a filter, newest activity first, with the file stamp each row
//! was read from. Tags walk the rarest tag's sessions; prompt search uses the trigram index,
//! or tests the newest sessions' text directly when that fills the page.

use rusqlite::types::Value as V;
use rusqlite::{params_from_iter, OptionalExtension};

use super::row::{stamp_of, summary_from_row, SELECT_SESSION};
use super::Index;
use crate::error::Result;
use crate::store::files::FileStamp;
use crate::store::query::{ListQuery, SessionSummary};
use crate::store::sql;

/// Up to this many prompt matches, a search fetches and sorts them; beyond, it walks sessions
/// newest first (measured: the crossover at 100k sessions is a few thousand).
const SEARCH_LOOKUP_MAX: i64 = 3000;
/// How many of the newest sessions a one-page search tests directly before using the index.
const SEARCH_WINDOW: i64 = 1000;

/// A row of a listing as its pks are taken: the session's pk and a tag of its id (a pk freed by
/// a deletion can be given to a new session: the tag tells them apart), and when it had last
/// been used then (its place in the listing, whatever happens to it later). 16 bytes.
#[derive(Debug, Clone, Copy)]
pub struct ListKey {
    /// The pk in the low 40 bits, the id's tag above.
    pk_and_tag: u64,
    pub last_used_ms: i64,
}

impl ListKey {
    const PK_BITS: u32 = 40;

    fn new(pk: i64, id: &str, last_used_ms: i64) -> ListKey {
        let pk = (pk as u64) & ((1 << Self::PK_BITS) - 1);
        ListKey {
            pk_and_tag: pk | (id_tag(id) << Self::PK_BITS),
            last_used_ms,
        }
    }

    pub fn pk(&self) -> i64 {
        (self.pk_and_tag & ((1 << Self::PK_BITS) - 1)) as i64
    }

    /// Whether this key may be the session `id` (false: another session holds its pk now).
    pub fn may_be(&self, id: &str) -> bool {
        self.pk_and_tag >> Self::PK_BITS == id_tag(id)
    }
}

/// 24 bits of a hash of `id`.
fn id_tag(id: &str) -> u64 {
    crate::domain::fnv(id.as_bytes()) >> 40
}

/// The sessions a query selects, as SQL: `FROM`, the conditions and their arguments, and the
/// order (newest first).
pub(super) struct Selection {
    pub from: &'static str,
    pub conds: Vec<String>,
    pub args: Vec<V>,
    pub order: &'static str,
}

impl Index {
    /// Up to `at_most` sessions whose id starts with `prefix`, the most recently used first,
    /// each with its first prompt (for shell completion).
    pub fn ids_starting(
        &self,
        prefix: &str,
        at_most: u32,
    ) -> Result<Vec<(String, Option<String>)>> {
        let (sql, args): (&str, Vec<V>) = if prefix.is_empty() {
            (
                "SELECT id, prompt FROM sessions ORDER BY last_used_at DESC, id DESC LIMIT ?1",
                vec![V::Integer(at_most.into())],
            )
        } else {
            (
                "SELECT id, prompt FROM sessions WHERE id >= ?1 AND id < ?2
                 ORDER BY last_used_at DESC, id DESC LIMIT ?3",
                vec![
                    V::Text(prefix.to_string()),
                    V::Text(format!("{prefix}\u{10FFFF}")),
                    V::Integer(at_most.into()),
                ],
            )
        };
        self.conn
            .prepare(sql)
            .and_then(|mut stmt| {
                stmt.query_map(params_from_iter(args.iter()), |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })?
                .collect()
            })
            .map_err(|e| self.err(e))
    }

    /// Up to `at_most` hosts starting with `prefix`, the most used first, with their sessions.
    pub fn hosts_starting(&self, prefix: &str, at_most: u32) -> Result<Vec<(String, u64)>> {
        self.counted_starting(
            "SELECT host, count(*) AS n FROM sessions INDEXED BY sessions_by_host
             WHERE host >= ?1 AND host < ?2 GROUP BY host ORDER BY n DESC, host LIMIT ?3",
            prefix,
            at_most,
        )
    }

    /// Up to `at_most` tags starting with `prefix`, the most used first, with their sessions.
    pub fn tags_starting(&self, prefix: &str, at_most: u32) -> Result<Vec<(String, u64)>> {
        self.counted_starting(
            "SELECT tag, n FROM tag_counts WHERE tag >= ?1 AND tag < ?2
             ORDER BY n DESC, tag LIMIT ?3",
            prefix,
            at_most,
        )
    }

    /// (value, count) rows of `sql`, given the range of values starting with `prefix` (?1, ?2)
    /// and a limit (?3).
    fn counted_starting(
        &self,
        sql: &str,
        prefix: &str,
        at_most: u32,
    ) -> Result<Vec<(String, u64)>> {
        self.conn
            .prepare(sql)
            .and_then(|mut stmt| {
                stmt.query_map(
                    rusqlite::params![prefix, format!("{prefix}\u{10FFFF}"), at_most],
                    |r| Ok((r.get(0)?, r.get::<_, i64>(1)?.max(0) as u64)),
                )?
                .collect()
            })
            .map_err(|e| self.err(e))
    }

    /// Sessions matching `query`, newest activity first, each with the stamp of the file version
    /// the index read it from.
    pub fn list(&self, query: &ListQuery) -> Result<Vec<(SessionSummary, FileStamp)>> {
        self.listing(query, &SELECT_SESSION, None, |r| {
            Ok((summary_from_row(r)?, stamp_of(r)?))
        })
    }

    /// The pks of the sessions `list` would give, in its order: a streamed listing takes
    /// these first (8 bytes a session), then fetches the rows a page at a time
    /// (`rows_by_pk`). `after`: only the sessions after this one (last used, in Unix ms, and
    /// id) in that order.
    /// `at_most`: only the first rows (the query's own limit still applies).
    pub fn list_keys(
        &self,
        query: &ListQuery,
        at_most: Option<u64>,
        after: Option<(i64, &str)>,
    ) -> Result<Vec<ListKey>> {
        let limited;
        let query = match at_most {
            Some(n) => {
                limited = ListQuery {
                    limit: Some(query.limit.map_or(n, |l| l.min(n))),
                    ..query.clone()
                };
                &limited
            }
            None => query,
        };
        // All from the index the listing walks (with tags, `last_used_at` is copied there).
        self.listing(query, "s.pk, s.last_used_at, s.id", after, |r| {
            let id = r.get_ref(2)?.as_str().unwrap_or_default();
            Ok(ListKey::new(r.get(0)?, id, r.get(1)?))
        })
    }

    /// `list` after the session `after` (see `list_keys`), without the stamps.
    pub fn list_after(
        &self,
        query: &ListQuery,
        after: Option<(i64, &str)>,
    ) -> Result<Vec<SessionSummary>> {
        self.listing(query, &SELECT_SESSION, after, summary_from_row)
    }

    /// The sessions of these pks, in this order, each with its pk and its file's stamp; pks
    /// that are gone are left out.
    pub fn rows_by_pk(&self, pks: &[i64]) -> Result<Vec<(i64, SessionSummary, FileStamp)>> {
        // Looked up in storage order, for the B-tree's sake; handed back in the listing's.
        let mut sorted = pks.to_vec();
        sorted.sort_unstable();
        let values: Vec<V> = sorted.into_iter().map(V::Integer).collect();
        let sql = format!(
            "SELECT {}, s.pk FROM sessions s WHERE s.pk IN rarray(?1)",
            *SELECT_SESSION
        );
        let mut stmt = self.conn.prepare_cached(&sql).map_err(|e| self.err(e))?;
        let mut found: Vec<(i64, Option<(SessionSummary, FileStamp)>)> = stmt
            .query_map([std::rc::Rc::new(values)], |r| {
                let pk = r.get(super::row::SESSION_COLUMNS.len())?;
                Ok((pk, Some((summary_from_row(r)?, stamp_of(r)?))))
            })
            .and_then(|rows| rows.collect())
            .map_err(|e| self.err(e))?;
        // Sorted already, as they were asked for; sorted again in case SQLite's order differs.
        found.sort_unstable_by_key(|(pk, _)| *pk);
        Ok(pks
            .iter()
            .filter_map(|pk| {
                let at = found.binary_search_by_key(pk, |(pk, _)| *pk).ok()?;
                let (row, stamp) = found[at].1.take()?;
                Some((*pk, row, stamp))
            })
            .collect())
    }

    /// `query`'s listing with `columns` of each row, read by `map`.
    fn listing<T>(
        &self,
        query: &ListQuery,
        columns: &str,
        after: Option<(i64, &str)>,
        map: impl Fn(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Vec<T>> {
        // A prompt search for one page first looks at the newest sessions only, testing the
        // text directly: if that fills the page, it is the answer (every other session is
        // older). Common words answer here in a few ms whatever the store's size; rarer ones
        // go on to the trigram index, whose cost grows with the number of matches.
        if let (Some(_), Some(limit)) = (&query.search, query.limit) {
            let cutoff = self.recent_cutoff()?;
            let rows = self.run_list(
                query,
                Some(cutoff.unwrap_or(i64::MIN)),
                columns,
                after,
                &map,
            )?;
            if cutoff.is_none() || rows.len() as u64 >= limit {
                return Ok(rows);
            }
        }
        self.run_list(query, None, columns, after, &map)
    }
    /// The last activity of the SEARCH_WINDOW-th newest session (None: fewer sessions).
    fn recent_cutoff(&self) -> Result<Option<i64>> {
        self.conn
            .prepare_cached(
                "SELECT last_used_at FROM sessions ORDER BY last_used_at DESC LIMIT 1 OFFSET ?1",
            )
            .and_then(|mut stmt| stmt.query_row([SEARCH_WINDOW - 1], |r| r.get(0)).optional())
            .map_err(|e| self.err(e))
    }
    fn run_list<T>(
        &self,
        query: &ListQuery,
        window: Option<i64>,
        columns: &str,
        after: Option<(i64, &str)>,
        map: &impl Fn(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Vec<T>> {
        let Some((sql, args)) = self.list_sql(query, window, columns, after)? else {
            return Ok(Vec::new());
        };
        let mut stmt = self.conn.prepare(&sql).map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params_from_iter(args.iter()), map)
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<_>>()
            .map_err(|e| self.err(e))
    }
    /// The SQL for a query, or None when it cannot match anything (a tag nobody has).
    /// `window`: search only sessions last used at or after this time, by testing the text.
    fn list_sql(
        &self,
        query: &ListQuery,
        window: Option<i64>,
        columns: &str,
        after: Option<(i64, &str)>,
    ) -> Result<Option<(String, Vec<V>)>> {
        let Some(Selection {
            from,
            mut conds,
            mut args,
            order,
        }) = self.selection(query, window)?
        else {
            return Ok(None);
        };
        if let Some((last_used, id)) = after {
            let time_col = order.split(' ').next().unwrap_or("s.last_used_at");
            conds.push(format!("({time_col} < ? OR ({time_col} = ? AND s.id < ?))"));
            args.extend([
                V::Integer(last_used),
                V::Integer(last_used),
                V::Text(id.into()),
            ]);
        }
        let where_clause = sql::where_clause(&conds);
        let limit = query.limit.map_or(-1, |n| n.min(i64::MAX as u64) as i64);
        args.push(V::Integer(limit));
        args.push(V::Integer(query.offset.min(i64::MAX as u64) as i64));
        let sql = format!(
            "SELECT {columns} FROM {from} {where_clause} ORDER BY {order} LIMIT ? OFFSET ?"
        );
        Ok(Some((sql, args)))
    }

    /// What a query selects (sessions `s`), or None when it cannot match anything.
    pub(super) fn selection(
        &self,
        query: &ListQuery,
        window: Option<i64>,
    ) -> Result<Option<Selection>> {
        let f = &query.filter;
        let mut conds: Vec<String> = Vec::new();
        let mut args: Vec<V> = Vec::new();
        // Newest first; sessions used at the same instant by id, so that the order (and
        // `--offset` paging) is the same after a rebuild, which numbers rows anew.
        let (from, order, time_col) = if f.tags.is_empty() {
            (
                "sessions s",
                "s.last_used_at DESC, s.id DESC",
                "s.last_used_at",
            )
        } else {
            if !self.tag_conditions(&f.tags, &mut conds, &mut args)? {
                return Ok(None);
            }
            (
                "session_tags t0 JOIN sessions s ON s.pk = t0.session_pk",
                "t0.last_used_at DESC, s.id DESC",
                "t0.last_used_at",
            )
        };
        sql::session_conditions(f, "s", &mut conds, &mut args);
        if query.resumable {
            conds.push("s.backend_session_id IS NOT NULL".into());
        }
        sql::row_conditions(f, "s", &mut conds, &mut args);
        if let Some(t) = query.last_used.since {
            conds.push(format!("{time_col} >= ?"));
            args.push(V::Integer(t.timestamp_millis()));
        }
        if let Some(t) = query.last_used.until {
            conds.push(format!("{time_col} < ?"));
            args.push(V::Integer(t.timestamp_millis()));
        }
        if let Some(text) = &query.search {
            if !self.search_conditions(text, window, time_col, &mut conds, &mut args)? {
                return Ok(None);
            }
        }
        Ok(Some(Selection {
            from,
            conds,
            args,
            order,
        }))
    }

    /// Conditions for sessions carrying every tag: walk the rarest tag's sessions (`t0`, newest
    /// first) and check the others per session. False when a tag has no session at all.
    fn tag_conditions(
        &self,
        wanted: &[String],
        conds: &mut Vec<String>,
        args: &mut Vec<V>,
    ) -> Result<bool> {
        let mut tags: Vec<(&String, i64)> = Vec::new();
        for tag in wanted {
            let n: i64 = self
                .conn
                .query_row("SELECT n FROM tag_counts WHERE tag = ?1", [tag], |r| {
                    r.get(0)
                })
                .optional()
                .map_err(|e| self.err(e))?
                .unwrap_or(0);
            if n == 0 {
                return Ok(false);
            }
            tags.push((tag, n));
        }
        tags.sort_by_key(|(_, n)| *n);
        tags.dedup_by_key(|(t, _)| t.as_str());
        conds.push("t0.tag = ?".into());
        args.push(V::Text(tags[0].0.clone()));
        for (tag, _) in &tags[1..] {
            conds.push(
                "EXISTS (SELECT 1 FROM session_tags tn WHERE tn.tag = ? AND tn.session_pk = s.pk)"
                    .into(),
            );
            args.push(V::Text((*tag).clone()));
        }
        Ok(true)
    }

    /// Conditions for sessions whose prompt contains `text`. With `window`, only the sessions
    /// last used since then, tested directly; otherwise through the trigram index when `text`
    /// is long enough. False when nothing can match.
    fn search_conditions(
        &self,
        text: &str,
        window: Option<i64>,
        time_col: &str,
        conds: &mut Vec<String>,
        args: &mut Vec<V>,
    ) -> Result<bool> {
        if let Some(cutoff) = window {
            conds.push(format!("{time_col} >= ?"));
            args.push(V::Integer(cutoff));
            conds.push("clinvk_contains(s.prompt, ?)".into());
            args.push(V::Text(fold_case(text)));
            return Ok(true);
        }
        if text.chars().count() < 3 {
            // Too short for trigrams: test every prompt, reading the table in storage order
            // (far cheaper than one lookup per index entry), then sort the matches.
            conds.push("s.pk IN (SELECT pk FROM sessions WHERE clinvk_contains(prompt, ?))".into());
            args.push(V::Text(fold_case(text)));
            return Ok(true);
        }
        // A quoted FTS5 phrase over trigrams is a case-insensitive substring match.
        let phrase = format!("\"{}\"", text.replace('"', "\"\""));
        let matches: i64 = self
            .conn
            .query_row(
                "SELECT count(*) FROM prompts_fts WHERE prompts_fts MATCH ?1",
                [&phrase],
                |r| r.get(0),
            )
            .map_err(|e| self.err(e))?;
        if matches == 0 {
            return Ok(false);
        }
        // Few matches: fetch them and sort. Many: walk sessions newest first and test each
        // against the match set (`+` keeps SQLite from driving the join by it), stopping as
        // soon as the page is full.
        let test = if matches <= SEARCH_LOOKUP_MAX {
            "s.pk"
        } else {
            "+s.pk"
        };
        conds.push(format!(
            "{test} IN (SELECT rowid FROM prompts_fts WHERE prompts_fts MATCH ?)"
        ));
        args.push(V::Text(phrase));
        Ok(true)
    }

    /// The query plan SQLite picks for `query`, one line per step (for tests and benchmarks).
    pub fn explain(&self, query: &ListQuery) -> Result<Vec<String>> {
        let Some((sql, args)) = self.list_sql(query, None, &SELECT_SESSION, None)? else {
            return Ok(vec!["(no tag match: nothing to run)".into()]);
        };
        sql::explain_plan(&self.conn, &sql, &args).map_err(|e| self.err(e))
    }
}

/// Case folding as FTS5's trigram index does it, so that both search paths agree: each
/// character on its own, to one character (see `fold_char`).
pub fn fold_case(text: &str) -> String {
    text.chars().map(fold_char).collect()
}

/// One character folded as FTS5 folds it: its lower case when that is one character (no
/// context rules: Rust's `to_lowercase` of a final Σ is ς, folded as σ), else itself (FTS5
/// never makes one character two, as `to_lowercase` does of İ).
pub fn fold_char(c: char) -> char {
    let mut lower = c.to_lowercase();
    match (lower.next(), lower.next()) {
        (Some('ς'), None) => 'σ',
        (Some(l), None) => l,
        _ => c,
    }
}
