//! `sessions search`: the sessions in which every term was said, the most relevant first.
//!
//! 1. Each term names its candidate messages through the trigram index (`texts_fts`), by id
//!    alone: a term of three or more characters by all its trigrams (AND), a shorter one (a
//!    two-character CJK word) by any trigram that begins with it (the index's vocabulary
//!    says which there are). The runs of ids (`text_runs`) say whose they are, without reading
//!    a message.
//! 2. The sessions with a candidate for every term, among those the filters select, are
//!    ordered by how many candidate messages they have (an upper bound of their score), then
//!    by recency.
//! 3. In that order, each session's candidates are read and tested (the index knows trigrams,
//!    not phrases): its score is the number of its messages that really say a term, and its
//!    snippet comes from the one that says the most. The walk stops as soon as no session left
//!    can rank among the first `limit`: a common word reads a page's worth of messages, not
//!    every one that has it.

use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use rusqlite::types::Value as V;
use rusqlite::{params, OptionalExtension};

use super::list::Selection;
use super::row::{stamp_of, summary_from_row, SELECT_SESSION};
use super::texts::role_of;
use super::Index;
use crate::error::{Error, Result};
use crate::store::files::FileStamp;
use crate::store::query::{SearchHit, SearchQuery, Snippet};
use crate::store::sql;

/// The most words and phrases a search takes (a bit each in a `u64`).
pub const MAX_TERMS: usize = 64;

/// The messages that have every trigram of a term (an FTS5 expression).
const CANDIDATES: &str = "SELECT rowid FROM texts_fts WHERE texts_fts MATCH ?1";
/// Messages, to test.
const MESSAGES: &str = "SELECT id, role, at, body FROM texts WHERE id IN rarray(?1)";
/// The trigrams that begin with a term of one or two characters.
const TRIGRAMS_FROM: &str = "SELECT term FROM texts_trigrams WHERE term >= ?1 AND term < ?2";
/// The run of ids an id is in.
const RUN_OF: &str = "SELECT first, last, session_pk, source FROM text_runs
                      WHERE first <= ?1 ORDER BY first DESC LIMIT 1";
/// Beyond this many candidate ids, all runs are read in order instead of one lookup each.
const RUN_LOOKUPS_MAX: usize = 2000;
/// Which of the candidate sessions the filters select (after the selection's conditions).
const SELECTED: &str = "SELECT s.pk, s.last_used_at, s.id FROM";

/// Characters of context kept before the first match in a snippet, and its whole length.
const BEFORE: usize = 40;
const SNIPPET: usize = 160;

/// A session that may match: its candidate messages (id, source), and what orders it.
struct Candidate {
    pk: i64,
    last_used_at: i64,
    id: String,
    messages: Vec<(i64, i64)>,
}

/// Candidate messages (id, source) of a session, and how many terms they were found for.
type BySession = HashMap<i64, (usize, HashSet<(i64, i64)>)>;

/// A message tested against the terms.
struct Tested {
    /// Which terms it says (bit i: term i).
    says: u64,
    role: i64,
    at: Option<i64>,
    body: String,
}

impl Index {
    /// Whether the search indexes hold exactly the messages and prompts of their tables
    /// (`reindex --check`): FTS5's own comparison of each index with its content. None when it
    /// cannot be asked (FTS5 asks it as a write: not of a read-only index).
    pub fn search_matches_rows(&self) -> Result<Option<bool>> {
        for fts in ["texts_fts", "prompts_fts"] {
            let check = format!("INSERT INTO {fts} ({fts}, rank) VALUES ('integrity-check', 1)");
            match self.conn.execute_batch(&check) {
                Ok(()) => {}
                Err(e) if super::is_corrupt_sqlite(&e) => return Ok(Some(false)),
                Err(e) if e.sqlite_error_code() == Some(rusqlite::ErrorCode::ReadOnly) => {
                    return Ok(None)
                }
                Err(e) => return Err(self.err(e)),
            }
        }
        Ok(Some(true))
    }
    /// The sessions matching `query`, the most relevant first, each with the stamp of the file
    /// version the index read it from.
    pub fn search(&self, query: &SearchQuery) -> Result<Vec<(SearchHit, FileStamp)>> {
        // A search reads the file through a map rather than copying it page by page: testing a
        // few thousand messages spent a third of its time in pread and page-cache allocations.
        // Only here: mapped pages count as the process's memory, and other commands gain
        // nothing from them. (The file is never truncated under a reader: a rebuild renames a
        // new one into place.)
        let _mapped = Mapped::on(&self.conn);
        let raw = query.terms.terms();
        if raw.len() > MAX_TERMS {
            return Err(Error::usage(format!(
                "a search takes at most {MAX_TERMS} words and phrases ({} given)",
                raw.len()
            )));
        }
        let limit = query.select.limit.map_or(usize::MAX, |n| n as usize);
        if limit == 0 {
            return Ok(Vec::new());
        }
        // Folded here for testing the text; the trigram index folds what it is given itself.
        let terms: Vec<String> = raw.iter().map(|t| super::fold_case(t)).collect();
        // Candidate messages per session, for every term.
        let mut by_session: BySession = HashMap::new();
        for (n, term) in raw.iter().enumerate() {
            let ids = self.candidates(term)?;
            for (id, (pk, source)) in ids.iter().zip(self.owners(&ids)?) {
                let entry = by_session.entry(pk).or_default();
                // Only sessions with candidates for every term before this one go on.
                if entry.0 >= n {
                    entry.0 = n + 1;
                    entry.1.insert((*id, source));
                }
            }
            by_session.retain(|_, (reached, _)| *reached == n + 1);
        }
        if by_session.is_empty() {
            return Ok(Vec::new());
        }
        let mut candidates = self.selected(query, &by_session)?;
        // Most candidate messages first, then newest, then by id (a stable order).
        candidates.sort_by(|a, b| {
            (b.messages.len(), b.last_used_at, &b.id).cmp(&(
                a.messages.len(),
                a.last_used_at,
                &a.id,
            ))
        });
        let offset = query.select.offset as usize;
        let wanted = limit.saturating_add(offset);
        let all_terms: u64 = if terms.len() == MAX_TERMS {
            u64::MAX
        } else {
            (1 << terms.len()) - 1
        };
        let mut found: Vec<(u32, i64, String, i64, Tested)> = Vec::new();
        // Sessions are tested a chunk at a time (their messages read in one statement), the
        // chunks growing, so that a common word reads little past the first page and a rare
        // phrase with many candidates does not pay a statement per message.
        let (mut next, mut chunk) = (0, 16);
        'chunks: while next < candidates.len() {
            let these = &candidates[next..(next + chunk).min(candidates.len())];
            next += these.len();
            chunk *= 2;
            let ids = these.iter().flat_map(|c| c.messages.iter().map(|m| m.0));
            let mut saying = self.saying(ids, &terms)?;
            for c in these {
                // No session from here on can rank above the last of a full page.
                if found.len() >= wanted {
                    let last = &found[wanted - 1];
                    let bound = (c.messages.len() as u32, c.last_used_at, &c.id);
                    if bound < (last.0, last.1, &last.2) {
                        break 'chunks;
                    }
                }
                let Some((score, best)) = test(&c.messages, &mut saying, all_terms) else {
                    continue;
                };
                let key = (score, c.last_used_at, c.id.clone());
                let at = found.partition_point(|f| (f.0, f.1, &f.2) > (key.0, key.1, &key.2));
                if at < wanted {
                    found.insert(at, (score, c.last_used_at, c.id.clone(), c.pk, best));
                    found.truncate(wanted);
                }
            }
        }
        let mut hits = Vec::new();
        let mut row = self
            .conn
            .prepare_cached(&format!(
                "SELECT {} FROM sessions s WHERE s.pk = ?1",
                *SELECT_SESSION
            ))
            .map_err(|e| self.err(e))?;
        for (score, _, _, pk, best) in found.into_iter().skip(offset).take(limit) {
            let (session, stamp) = row
                .query_row([pk], |r| Ok((summary_from_row(r)?, stamp_of(r)?)))
                .map_err(|e| self.err(e))?;
            hits.push((
                SearchHit {
                    session,
                    score,
                    snippet: snippet(&best, &terms),
                },
                stamp,
            ));
        }
        Ok(hits)
    }

    /// The ids (ascending) of the messages that may say `term`: those with every trigram of
    /// it, or for a term of one or two characters, those with a trigram that begins with it.
    fn candidates(&self, term: &str) -> Result<Vec<i64>> {
        let chars: Vec<char> = term.chars().collect();
        let quote = |t: &str| format!("\"{}\"", t.replace('"', "\"\""));
        if chars.len() >= 3 {
            let mut trigrams: Vec<String> = chars.windows(3).map(|w| w.iter().collect()).collect();
            trigrams.sort();
            trigrams.dedup();
            let all = trigrams
                .iter()
                .map(|t| quote(t))
                .collect::<Vec<_>>()
                .join(" AND ");
            return self.matching(&all);
        }
        // The vocabulary holds trigrams as the index folded them.
        let folded = super::fold_case(term);
        let mut stmt = self
            .conn
            .prepare_cached(TRIGRAMS_FROM)
            .map_err(|e| self.err(e))?;
        let mut trigrams = stmt
            .query_map(params![folded, format!("{folded}\u{10ffff}")], |r| {
                r.get::<_, String>(0)
            })
            .map_err(|e| self.err(e))?
            .collect::<rusqlite::Result<Vec<String>>>()
            .map_err(|e| self.err(e))?;
        // (A NUL would end the query string early: none is stored, but the index may say.)
        trigrams.retain(|t| !t.contains('\0'));
        let mut ids = Vec::new();
        for some in trigrams.chunks(200) {
            let any = some
                .iter()
                .map(|t| quote(t))
                .collect::<Vec<_>>()
                .join(" OR ");
            ids.extend(self.matching(&any)?);
        }
        ids.sort_unstable();
        ids.dedup();
        Ok(ids)
    }

    /// The ids of the messages matching an FTS5 expression, ascending.
    fn matching(&self, expression: &str) -> Result<Vec<i64>> {
        let mut stmt = self
            .conn
            .prepare_cached(CANDIDATES)
            .map_err(|e| self.err(e))?;
        let ids = stmt
            .query_map([expression], |r| r.get(0))
            .map_err(|e| self.err(e))?
            .collect::<rusqlite::Result<Vec<i64>>>()
            .map_err(|e| self.err(e))?;
        Ok(ids)
    }

    /// What was said in session `id`, for a preview: the messages that say any of `terms`
    /// (each a snippet around its match), or without terms the last messages; at most `max`,
    /// in the order they were said.
    pub fn said_in(&self, id: &str, terms: &[String], max: usize) -> Result<Vec<Snippet>> {
        let pk: Option<i64> = self
            .conn
            .prepare_cached("SELECT pk FROM sessions WHERE id = ?1")
            .and_then(|mut s| s.query_row([id], |r| r.get(0)).optional())
            .map_err(|e| self.err(e))?;
        let Some(pk) = pk else {
            return Ok(Vec::new());
        };
        let terms: Vec<String> = terms.iter().map(|t| super::fold_case(t)).collect();
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT t.role, t.at, t.body, r.source FROM text_runs r
                 JOIN texts t ON t.id BETWEEN r.first AND r.last
                 WHERE r.session_pk = ?1
                 ORDER BY coalesce(t.at, 0), t.id",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([pk], |r| {
                let m = Tested {
                    says: 0,
                    role: r.get(0)?,
                    at: r.get(1)?,
                    body: r.get(2)?,
                };
                Ok((m, r.get::<_, i64>(3)? == super::texts::SESSION_FILE))
            })
            .map_err(|e| self.err(e))?
            .collect::<rusqlite::Result<Vec<(Tested, bool)>>>()
            .map_err(|e| self.err(e))?;
        // The session file's prompts are the transcript's again, when there is one.
        let transcribed = rows.iter().any(|(_, own)| !own);
        let messages: Vec<Tested> = rows
            .into_iter()
            .filter(|(_, own)| !(transcribed && *own))
            .map(|(m, _)| m)
            .collect();
        let mut out: Vec<Snippet> = if terms.is_empty() {
            messages
                .iter()
                .rev()
                .take(max)
                .map(|m| snippet(m, &[]))
                .collect()
        } else {
            messages
                .iter()
                .filter(|m| {
                    let mut folded = String::new();
                    fold_into(&m.body, &mut folded);
                    terms.iter().any(|t| folded.contains(t.as_str()))
                })
                .take(max)
                .map(|m| snippet(m, &terms))
                .collect()
        };
        if terms.is_empty() {
            out.reverse();
        }
        Ok(out)
    }

    /// Whose each of `ids` (ascending) is: (session pk, source), from the runs of ids. An id in
    /// no run (none should be) is owned by pk 0, which no session has.
    fn owners(&self, ids: &[i64]) -> Result<Vec<(i64, i64)>> {
        self.owners_by(ids, ids.len() <= RUN_LOOKUPS_MAX)
    }

    /// `owners`, by one lookup per id, or by one walk over all runs.
    fn owners_by(&self, ids: &[i64], lookups: bool) -> Result<Vec<(i64, i64)>> {
        let mut out = Vec::with_capacity(ids.len());
        if lookups {
            let mut stmt = self.conn.prepare_cached(RUN_OF).map_err(|e| self.err(e))?;
            for &id in ids {
                let run: Option<(i64, i64, i64, i64)> = stmt
                    .query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
                    .optional()
                    .map_err(|e| self.err(e))?;
                out.push(match run {
                    Some((_, last, pk, source)) if id <= last => (pk, source),
                    _ => (0, 0),
                });
            }
            return Ok(out);
        }
        // Many: one walk over all runs, beside the ids.
        let mut stmt = self
            .conn
            .prepare_cached("SELECT first, last, session_pk, source FROM text_runs ORDER BY first")
            .map_err(|e| self.err(e))?;
        let mut runs = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get(2)?,
                    r.get(3)?,
                ))
            })
            .map_err(|e| self.err(e))?;
        let mut run: Option<(i64, i64, i64, i64)> = None;
        for &id in ids {
            while run.is_none_or(|r| r.1 < id) {
                match runs.next() {
                    Some(r) => run = Some(r.map_err(|e| self.err(e))?),
                    None => {
                        run = None;
                        break;
                    }
                }
            }
            out.push(match run {
                Some((first, _, pk, source)) if first <= id => (pk, source),
                _ => (0, 0),
            });
        }
        Ok(out)
    }

    /// The SQL that picks the candidate sessions (the first argument, not included: their pks
    /// as an array) the query's filters select; None when none can be.
    fn selected_sql(&self, query: &SearchQuery) -> Result<Option<(String, Vec<V>)>> {
        let select = crate::store::query::ListQuery {
            search: None,
            limit: None,
            offset: 0,
            ..query.select.clone()
        };
        let Some(Selection {
            from,
            mut conds,
            args,
            ..
        }) = self.selection(&select, None)?
        else {
            return Ok(None);
        };
        // The candidates drive the join (CROSS JOIN keeps them outermost): each is looked up
        // by its pk, whatever the filters, rather than walking a filter's index.
        conds.push("s.pk = c.value".into());
        if from.contains("t0") {
            conds.push("t0.session_pk = c.value".into());
        }
        let sql = format!(
            "{SELECTED} rarray(?) AS c CROSS JOIN {from} {}",
            sql::where_clause(&conds)
        );
        Ok(Some((sql, args)))
    }

    /// The query plans of a search's statements, each as "label: step; step".
    pub fn explain_search(&self, query: &SearchQuery) -> Result<Vec<String>> {
        let plan = |label: &str, sql: &str, args: &[V]| -> Result<String> {
            let steps = sql::explain_plan(&self.conn, sql, args).map_err(|e| self.err(e))?;
            Ok(format!("{label}: {}", steps.join("; ")))
        };
        let mut out = vec![plan(
            "candidates",
            CANDIDATES,
            &[V::Text("\"abc\"".into())],
        )?];
        if let Some((sql, args)) = self.selected_sql(query)? {
            let args: Vec<V> = std::iter::once(V::Null).chain(args).collect();
            out.push(plan("selected", &sql, &args)?);
        }
        out.push(plan(
            "trigrams",
            TRIGRAMS_FROM,
            &[V::Text("ab".into()), V::Text("ab\u{10ffff}".into())],
        )?);
        out.push(plan("run", RUN_OF, &[V::Integer(1)])?);
        out.push(plan("messages", MESSAGES, &[V::Null])?);
        Ok(out)
    }

    /// The sessions of `by_session` that the query's filters select, with what orders them.
    fn selected(&self, query: &SearchQuery, by_session: &BySession) -> Result<Vec<Candidate>> {
        let Some((sql, args)) = self.selected_sql(query)? else {
            return Ok(Vec::new());
        };
        let pks: rusqlite::vtab::array::Array =
            Rc::new(by_session.keys().map(|pk| V::Integer(*pk)).collect());
        // (The array's placeholder comes first.)
        let mut bound: Vec<&dyn rusqlite::ToSql> = vec![&pks];
        bound.extend(args.iter().map(|a| a as &dyn rusqlite::ToSql));
        let mut stmt = self.conn.prepare(&sql).map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(&bound[..], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, String>(2)?,
                ))
            })
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (pk, last_used_at, id) = row.map_err(|e| self.err(e))?;
            let mut messages: Vec<(i64, i64)> = by_session[&pk].1.iter().copied().collect();
            messages.sort_unstable();
            out.push(Candidate {
                pk,
                last_used_at,
                id,
                messages,
            });
        }
        Ok(out)
    }

    /// The messages among `ids` that say any of `terms`, read in one statement and tested as
    /// they are read (the others, most of a phrase's candidates, are never copied out).
    fn saying(
        &self,
        ids: impl Iterator<Item = i64>,
        terms: &[String],
    ) -> Result<HashMap<i64, Tested>> {
        let ids: rusqlite::vtab::array::Array = Rc::new(ids.map(V::Integer).collect());
        let mut stmt = self
            .conn
            .prepare_cached(MESSAGES)
            .map_err(|e| self.err(e))?;
        let mut rows = stmt.query([&ids]).map_err(|e| self.err(e))?;
        let mut out = HashMap::new();
        let mut folded = String::new();
        while let Some(r) = rows.next().map_err(|e| self.err(e))? {
            let body = r
                .get_ref(3)
                .and_then(|v| Ok(v.as_str()?))
                .map_err(|e| self.err(e))?;
            fold_into(body, &mut folded);
            let says = terms
                .iter()
                .enumerate()
                .filter(|(_, t)| folded.contains(t.as_str()))
                .fold(0u64, |bits, (i, _)| bits | 1 << i);
            if says == 0 {
                continue;
            }
            let m = Tested {
                says,
                role: r.get(1).map_err(|e| self.err(e))?,
                at: r.get(2).map_err(|e| self.err(e))?,
                body: body.to_string(),
            };
            out.insert(r.get(0).map_err(|e| self.err(e))?, m);
        }
        Ok(out)
    }
}

/// A session's messages `ids` (those that say a term taken out of `saying`): None unless
/// together they say all the terms (`all`); else the score (messages that say a term, the same
/// text said by the session file and its transcript once) and the message that says most.
fn test(ids: &[(i64, i64)], saying: &mut HashMap<i64, Tested>, all: u64) -> Option<(u32, Tested)> {
    let mut said = 0u64;
    let mut from_transcript = 0u32;
    let mut transcript_texts = HashSet::new();
    let mut file_texts = HashSet::new();
    let mut best: Option<Tested> = None;
    for &(id, source) in ids {
        let Some(m) = saying.remove(&id) else {
            continue;
        };
        said |= m.says;
        let hash = crate::domain::fnv(m.body.as_bytes());
        if source == super::texts::SESSION_FILE {
            file_texts.insert(hash);
        } else {
            from_transcript += 1;
            transcript_texts.insert(hash);
        }
        if best
            .as_ref()
            .is_none_or(|b| m.says.count_ones() > b.says.count_ones())
        {
            best = Some(m);
        }
    }
    let score = from_transcript + file_texts.difference(&transcript_texts).count() as u32;
    (said & all == all).then(|| (score, best.expect("a message said a term")))
}

/// `text` as the trigram index sees it, folded as it folds it (`fold_case`), into `out`: runs
/// of white space as one space (`flatten`); ASCII (most text) by a plain lowercase copy.
fn fold_into(text: &str, out: &mut String) {
    out.clear();
    if text.is_ascii() {
        // Most text, and the hot loop of a search with many candidates: the words copied
        // whole, then lowercased in place.
        let mut bytes = std::mem::take(out).into_bytes();
        for word in text
            .as_bytes()
            .split(u8::is_ascii_whitespace)
            .filter(|w| !w.is_empty())
        {
            if !bytes.is_empty() {
                bytes.push(b' ');
            }
            bytes.extend_from_slice(word);
        }
        bytes.make_ascii_lowercase();
        *out = String::from_utf8(bytes).expect("ASCII in, ASCII out");
        return;
    }
    out.push_str(&super::fold_case(&super::flatten(text)));
}

/// The index file mapped into memory while this lives.
struct Mapped<'c>(&'c rusqlite::Connection);

impl<'c> Mapped<'c> {
    fn on(conn: &'c rusqlite::Connection) -> Mapped<'c> {
        let _ = conn.pragma_update(None, "mmap_size", 1i64 << 30);
        Mapped(conn)
    }
}

impl Drop for Mapped<'_> {
    fn drop(&mut self) {
        let _ = self.0.pragma_update(None, "mmap_size", 0);
    }
}

/// Text folded as the trigram index folds it (`fold_case`), with where each folded byte came
/// from in the original.
struct Folded {
    text: String,
    origin: Vec<usize>,
}

impl Folded {
    fn new(original: &str) -> Folded {
        let mut text = String::with_capacity(original.len());
        let mut origin = Vec::with_capacity(original.len());
        let mut buf = [0u8; 4];
        let mut space = false;
        for (at, c) in original.char_indices() {
            // White space as the index sees it: a run of it as one space.
            if c.is_whitespace() {
                if !space && !text.is_empty() {
                    text.push(' ');
                    origin.push(at);
                }
                space = true;
                continue;
            }
            space = false;
            let s = super::fold_char(c).encode_utf8(&mut buf);
            text.push_str(s);
            origin.extend(std::iter::repeat_n(at, s.len()));
        }
        origin.push(original.len());
        Folded { text, origin }
    }

    /// Byte ranges of the original where `terms` are, in order, merged where they overlap.
    fn marks(&self, original: &str, terms: &[String]) -> Vec<(usize, usize)> {
        let mut marks: Vec<(usize, usize)> = Vec::new();
        for t in terms {
            for (at, m) in self.text.match_indices(t.as_str()) {
                let start = self.origin[at];
                // The end of the original character holding the match's last byte.
                let last = self.origin[at + m.len() - 1];
                let end = last + original[last..].chars().next().map_or(0, char::len_utf8);
                marks.push((start, end));
            }
        }
        marks.sort_unstable();
        let mut merged: Vec<(usize, usize)> = Vec::new();
        for (s, e) in marks {
            match merged.last_mut() {
                Some(last) if s <= last.1 => last.1 = last.1.max(e),
                _ => merged.push((s, e)),
            }
        }
        merged
    }
}

/// A snippet of `m` around its first match, on one line.
fn snippet(m: &Tested, terms: &[String]) -> Snippet {
    let body = &m.body;
    let marks = Folded::new(body).marks(body, terms);
    let first = marks.first().map_or(0, |m| m.0);
    // Back up BEFORE characters, to the start of a word when one is near.
    let mut start = body[..first]
        .char_indices()
        .rev()
        .nth(BEFORE.saturating_sub(1))
        .map_or(0, |(i, _)| i);
    if start > 0 {
        if let Some(space) = body[start..first].find(char::is_whitespace) {
            start += space;
        }
    }
    let end = body[start..]
        .char_indices()
        .nth(SNIPPET)
        .map_or(body.len(), |(i, _)| start + i);
    let mut text = String::new();
    let mut out_marks = Vec::new();
    if start > 0 {
        text.push('…');
    }
    let mut in_space = false;
    let mut open: Option<usize> = None;
    let mut pending = marks.iter().filter(|m| m.1 > start && m.0 < end).peekable();
    for (i, c) in body[start..end].char_indices() {
        let at = start + i;
        if let Some(m) = pending.peek() {
            if open.is_none() && at >= m.0 {
                open = Some(text.len());
            }
        }
        if c.is_whitespace() {
            if !in_space && !text.is_empty() && !text.ends_with('…') {
                text.push(' ');
            }
            in_space = true;
        } else {
            text.push(c);
            in_space = false;
        }
        if let (Some(o), Some(m)) = (open, pending.peek()) {
            if at + c.len_utf8() >= m.1 {
                out_marks.push((o, text.len()));
                open = None;
                pending.next();
            }
        }
    }
    if let Some(o) = open {
        out_marks.push((o, text.len()));
    }
    let text_end = text.trim_end().len();
    text.truncate(text_end);
    for m in &mut out_marks {
        m.1 = m.1.min(text_end);
    }
    out_marks.retain(|m| m.0 < m.1);
    if end < body.len() {
        text.push('…');
    }
    Snippet {
        role: role_of(m.role),
        at: m.at.and_then(chrono::DateTime::from_timestamp_millis),
        text,
        marks: out_marks,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Backend, Message, Role};
    use crate::store::files::FileStamp;
    use crate::store::index::fixtures::{session, turn};

    #[test]
    fn the_search_indexes_are_checked_where_they_can_be() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("i.db");
        let index = Index::create_fresh(&path, Some(crate::timespec::Zone::UTC)).unwrap();
        assert_eq!(index.search_matches_rows().unwrap(), Some(true));
        index
            .conn
            .execute_batch("INSERT INTO texts_fts (rowid, body) VALUES (7, 'not a message')")
            .unwrap();
        assert_eq!(index.search_matches_rows().unwrap(), Some(false));
        drop(index);
        // Read only (a read-only mount, a backup): not asked, rather than an error.
        let conn = rusqlite::Connection::open_with_flags(
            &path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .unwrap();
        let index = Index {
            conn,
            path,
            rollup_zone: crate::timespec::Zone::UTC,
        };
        assert_eq!(index.search_matches_rows().unwrap(), None);
    }

    #[test]
    fn runs_say_whose_each_message_is_by_lookups_or_one_walk() {
        let mut index = Index::in_memory(std::path::Path::new("runs")).unwrap();
        let tx = index.transaction().unwrap();
        let said = |n: usize| -> Vec<Message> {
            (0..n)
                .map(|i| Message {
                    role: Role::Assistant,
                    at: None,
                    text: format!("message {i}"),
                })
                .collect()
        };
        for (i, id) in ["s1", "s2", "s3"].iter().enumerate() {
            let s = session(
                id,
                Backend::Claude,
                vec![turn("2025-01-01T00:00:00Z", None, 1, 1, None)],
            );
            tx.upsert(&s, FileStamp::default()).unwrap();
            tx.record_texts(id, None, &format!("/t/{id}"), true, &said(3 + i))
                .unwrap();
        }
        // Appended, then one transcript read again whole: its run goes, a new one comes.
        tx.record_texts("s1", None, "/t/s1", false, &said(2))
            .unwrap();
        tx.record_texts("s2", None, "/t/s2", true, &said(1))
            .unwrap();
        tx.commit().unwrap();
        let ids: Vec<i64> = index
            .conn
            .prepare("SELECT id FROM texts ORDER BY id")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        // s1: its prompt, 3 + 2 said; s2: its prompt, 1; s3: its prompt, 5.
        assert_eq!(ids.len(), 1 + 5 + 1 + 1 + 1 + 5);
        let by_lookups = index.owners_by(&ids, true).unwrap();
        assert_eq!(index.owners_by(&ids, false).unwrap(), by_lookups);
        let pk = |id: &str| -> i64 {
            index
                .conn
                .query_row("SELECT pk FROM sessions WHERE id = ?1", [id], |r| r.get(0))
                .unwrap()
        };
        let count = |id: &str| by_lookups.iter().filter(|(p, _)| *p == pk(id)).count();
        assert_eq!((count("s1"), count("s2"), count("s3")), (6, 2, 6));
        assert!(by_lookups.iter().all(|(p, _)| *p != 0));
        // An id in no run is nobody's.
        assert_eq!(index.owners_by(&[i64::MAX], true).unwrap(), [(0, 0)]);
        assert_eq!(index.owners_by(&[i64::MAX], false).unwrap(), [(0, 0)]);
    }

    fn tested(body: &str) -> Tested {
        Tested {
            says: 1,
            role: 0,
            at: None,
            body: body.to_string(),
        }
    }

    fn marked(s: &Snippet) -> String {
        let mut out = String::new();
        let mut at = 0;
        for (a, b) in &s.marks {
            out.push_str(&s.text[at..*a]);
            out.push('[');
            out.push_str(&s.text[*a..*b]);
            out.push(']');
            at = *b;
        }
        out.push_str(&s.text[at..]);
        out
    }

    #[test]
    fn snippets_mark_every_term_on_one_line() {
        let terms = vec!["retry".to_string(), "bug".to_string()];
        let s = snippet(&tested("The Retry\n\nlogic has a bug; retry again"), &terms);
        assert_eq!(marked(&s), "The [Retry] logic has a [bug]; [retry] again");
        // Far into a long message: cut at a word before, and after.
        let long = format!(
            "{} the needle is here {}",
            "word ".repeat(100),
            "tail ".repeat(100)
        );
        let s = snippet(&tested(&long), &["needle".to_string()]);
        assert!(
            s.text.starts_with('…') && s.text.ends_with('…'),
            "{}",
            s.text
        );
        assert!(
            marked(&s).contains("the [needle] is here"),
            "{}",
            marked(&s)
        );
        assert!(s.text.chars().count() <= SNIPPET + 2);
    }

    #[test]
    fn snippets_of_other_scripts_and_folds() {
        // CJK inside a sentence; a match whose folded form is longer than the original (İ).
        let s = snippet(
            &tested("我们昨天讨论了令牌桶算法的问题"),
            &["令牌桶".to_string()],
        );
        assert_eq!(marked(&s), "我们昨天讨论了[令牌桶]算法的问题");
        // (İ folds to itself: FTS5 folds one character to one.)
        let s = snippet(
            &tested("ПРИВЕТ мир İstanbul"),
            &["привет".to_string(), super::super::fold_case("İSTANBUL")],
        );
        assert_eq!(marked(&s), "[ПРИВЕТ] мир [İstanbul]");
    }
}
