//! What was said in each session (`texts`, and its trigram index `texts_fts`): written with the
//! session (its runs' prompts, source 0) and by the import (a transcript's messages, by source).
//! Each write takes the next ids in one run (`text_runs`: first..=last, whose, from where).

use rusqlite::{params, OptionalExtension};

use super::IndexTx;
use crate::domain::{Message, Role};
use crate::error::Result;
use crate::store::session::Session;

/// The source of what a session file itself says.
pub(crate) const SESSION_FILE: i64 = 0;

/// The source number of a transcript (never `SESSION_FILE`).
fn source_of(path: &str) -> i64 {
    let hash = crate::domain::fnv(path.as_bytes()) >> 1;
    (hash as i64).max(1)
}

pub(crate) fn role_code(role: Role) -> i64 {
    match role {
        Role::User => 0,
        Role::Assistant => 1,
    }
}

pub(crate) fn role_of(code: i64) -> Role {
    if code == 0 {
        Role::User
    } else {
        Role::Assistant
    }
}

impl IndexTx<'_> {
    /// What the session file says was said: what it kept of a transcript the CLI deleted,
    /// else each run's prompt, else the session's.
    pub(super) fn session_texts(&self, pk: i64, session: &Session) -> Result<()> {
        if !self.fresh {
            self.forget_source(pk, SESSION_FILE)?;
        }
        if let Some(kept) = session
            .native
            .as_ref()
            .map(|n| &n.messages)
            .filter(|m| !m.is_empty())
        {
            return self.insert_texts(pk, SESSION_FILE, kept);
        }
        // (As a transcript's messages are kept, so that the same prompt is the same text.)
        let runs: Vec<Message> = session
            .turns
            .iter()
            .filter_map(|t| Message::of(Role::User, Some(t.at), &t.prompt))
            .collect();
        if runs.is_empty() {
            let first = Message::of(Role::User, Some(session.created_at), &session.prompt);
            self.insert_texts(pk, SESSION_FILE, first.as_slice())
        } else {
            self.insert_texts(pk, SESSION_FILE, &runs)
        }
    }

    /// What a transcript of session `session_id` said: all of it (`whole`: replacing what an
    /// earlier read of it gave), or what was appended since the last read.
    /// (`pk`: the session's row, when the caller knows it.)
    pub fn record_texts(
        &self,
        session_id: &str,
        pk: Option<i64>,
        path: &str,
        whole: bool,
        messages: &[Message],
    ) -> Result<()> {
        let pk = match pk {
            Some(pk) => pk,
            None => match self.session_pk(session_id)? {
                Some(pk) => pk,
                None => return Ok(()),
            },
        };
        let source = source_of(path);
        if whole {
            self.forget_source(pk, source)?;
        }
        self.insert_texts(pk, source, messages)
    }

    /// What a transcript of session `session_id` said, in order, up to `max` bytes of text.
    pub fn texts_of(&self, session_id: &str, path: &str, max: usize) -> Result<Vec<Message>> {
        let Some(pk) = self.session_pk(session_id)? else {
            return Ok(Vec::new());
        };
        let mut stmt = self
            .tx
            .prepare_cached(
                "SELECT t.role, t.at, t.body FROM text_runs r
                 JOIN texts t ON t.id BETWEEN r.first AND r.last
                 WHERE r.session_pk = ?1 AND r.source = ?2 ORDER BY t.id",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![pk, source_of(path)], |r| {
                Ok(Message {
                    role: role_of(r.get(0)?),
                    at: r
                        .get::<_, Option<i64>>(1)?
                        .and_then(chrono::DateTime::from_timestamp_millis),
                    text: r.get(2)?,
                })
            })
            .map_err(|e| self.err(e))?;
        let mut kept = Vec::new();
        let mut bytes = 0;
        for m in rows {
            let m = m.map_err(|e| self.err(e))?;
            bytes += m.text.len();
            if bytes > max {
                break;
            }
            kept.push(m);
        }
        Ok(kept)
    }

    /// Forget what a transcript of session `session_id` said (it is gone, and another file of
    /// the conversation says it again).
    pub fn forget_texts(&self, session_id: &str, path: &str) -> Result<()> {
        match self.session_pk(session_id)? {
            Some(pk) => self.forget_source(pk, source_of(path)),
            None => Ok(()),
        }
    }

    /// Forget everything said in the session `stem` (it is removed from the index).
    pub(super) fn forget_session_texts(&self, stem: &str) -> Result<()> {
        match self.session_pk(stem)? {
            Some(pk) => self.forget_runs(pk, None),
            None => Ok(()),
        }
    }

    fn session_pk(&self, id: &str) -> Result<Option<i64>> {
        self.tx
            .prepare_cached("SELECT pk FROM sessions WHERE id = ?1")
            .and_then(|mut s| s.query_row([id], |r| r.get(0)).optional())
            .map_err(|e| self.err(e))
    }

    fn forget_source(&self, pk: i64, source: i64) -> Result<()> {
        self.forget_runs(pk, Some(source))
    }

    /// Forget the session's runs (of one source, or all) and their messages.
    fn forget_runs(&self, pk: i64, source: Option<i64>) -> Result<()> {
        let runs: Vec<(i64, i64)> = self
            .tx
            .prepare_cached(
                "SELECT first, last FROM text_runs
                 WHERE session_pk = ?1 AND (?2 IS NULL OR source = ?2)",
            )
            .and_then(|mut s| {
                s.query_map(params![pk, source], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect::<rusqlite::Result<_>>()
            })
            .map_err(|e| self.err(e))?;
        for (first, last) in runs {
            for sql in [
                "DELETE FROM texts WHERE id BETWEEN ?1 AND ?2",
                "DELETE FROM text_runs WHERE first = ?1 AND last = ?2",
            ] {
                self.tx
                    .prepare_cached(sql)
                    .and_then(|mut s| s.execute(params![first, last]))
                    .map_err(|e| self.err(e))?;
            }
        }
        Ok(())
    }

    /// The messages as the next run of ids.
    fn insert_texts(&self, pk: i64, source: i64, messages: &[Message]) -> Result<()> {
        let said: Vec<&Message> = messages
            .iter()
            .filter(|m| !m.text.trim().is_empty())
            .collect();
        if said.is_empty() {
            return Ok(());
        }
        let first: i64 = match self.next_text.get() {
            Some(next) => next,
            None => self
                .tx
                // (Runs do not overlap: the one that starts last ends last.)
                .prepare_cached(
                    "SELECT coalesce((SELECT last FROM text_runs ORDER BY first DESC LIMIT 1), 0) + 1",
                )
                .and_then(|mut s| s.query_row([], |r| r.get(0)))
                .map_err(|e| self.err(e))?,
        };
        self.next_text.set(Some(first + said.len() as i64));
        // One statement for the run: the text index's trigger flushes at the end of each.
        let rows: Vec<serde_json::Value> = said
            .iter()
            .map(|m| {
                serde_json::json!([
                    role_code(m.role),
                    m.at.map(|t| t.timestamp_millis()),
                    m.text
                ])
            })
            .collect();
        let rows = serde_json::to_string(&rows).expect("rows serialize");
        self.tx
            .prepare_cached(
                "INSERT INTO texts (id, role, at, body)
                 SELECT ?1 + key, value ->> 0, value ->> 1, value ->> 2 FROM json_each(?2)",
            )
            .and_then(|mut s| s.execute(params![first, rows]))
            .map_err(|e| self.err(e))?;
        let last = first + said.len() as i64 - 1;
        self.tx
            .prepare_cached(
                "INSERT INTO text_runs (first, last, session_pk, source) VALUES (?1, ?2, ?3, ?4)",
            )
            .and_then(|mut s| s.execute(params![first, last, pk, source]))
            .map(drop)
            .map_err(|e| self.err(e))
    }
}
