//! What was said in each session (`texts`, and its trigram index `texts_fts`): written with the
//! session (its runs' prompts, source 0) and by the import (a transcript's messages, by source).
//! A message's id is its session's pk shifted left by `SHIFT`, plus its number in the session.

use rusqlite::params;

use super::IndexTx;
use crate::domain::{Message, Role};
use crate::error::Result;
use crate::store::session::Session;

/// Bits of a message id that number the message within its session (16M messages each).
pub(crate) const SHIFT: u32 = 24;

/// The source of what a session file itself says.
pub(crate) const SESSION_FILE: i64 = 0;

/// A session's message ids: `first..=last`.
pub(crate) fn id_range(pk: i64) -> (i64, i64) {
    (pk << SHIFT, (pk << SHIFT) | ((1 << SHIFT) - 1))
}

/// The session pk a message id belongs to.
pub(crate) fn session_of(id: i64) -> i64 {
    id >> SHIFT
}

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
    /// What the session file says was typed: each run's prompt, else the session's.
    pub(super) fn session_texts(&self, pk: i64, session: &Session) -> Result<()> {
        if !self.fresh {
            self.forget_source(pk, SESSION_FILE)?;
        }
        let runs: Vec<Message> = session
            .turns
            .iter()
            .filter(|t| !t.prompt.trim().is_empty())
            .map(|t| Message {
                role: Role::User,
                at: Some(t.at),
                text: t.prompt.clone(),
            })
            .collect();
        if runs.is_empty() {
            let first = Message {
                role: Role::User,
                at: Some(session.created_at),
                text: session.prompt.clone(),
            };
            self.insert_texts(pk, SESSION_FILE, std::slice::from_ref(&first))
        } else {
            self.insert_texts(pk, SESSION_FILE, &runs)
        }
    }

    /// What a transcript of session `session_id` said: all of it (`whole`: replacing what an
    /// earlier read of it gave), or what was appended since the last read.
    pub fn record_texts(
        &self,
        session_id: &str,
        path: &str,
        whole: bool,
        messages: &[Message],
    ) -> Result<()> {
        let Some(pk) = self.session_pk(session_id)? else {
            return Ok(());
        };
        let source = source_of(path);
        if whole {
            self.forget_source(pk, source)?;
        }
        self.insert_texts(pk, source, messages)
    }

    /// Forget what a transcript of session `session_id` said (it is gone, and another file of
    /// the conversation says it again).
    pub fn forget_texts(&self, session_id: &str, path: &str) -> Result<()> {
        match self.session_pk(session_id)? {
            Some(pk) => self.forget_source(pk, source_of(path)),
            None => Ok(()),
        }
    }

    /// Forget everything said in the session `pk` (it is removed from the index).
    pub(super) fn forget_session_texts(&self, stem: &str) -> Result<()> {
        let Some(pk) = self.session_pk(stem)? else {
            return Ok(());
        };
        let (first, last) = id_range(pk);
        self.tx
            .prepare_cached("DELETE FROM texts WHERE id BETWEEN ?1 AND ?2")
            .and_then(|mut s| s.execute(params![first, last]))
            .map(drop)
            .map_err(|e| self.err(e))
    }

    fn session_pk(&self, id: &str) -> Result<Option<i64>> {
        use rusqlite::OptionalExtension;
        self.tx
            .prepare_cached("SELECT pk FROM sessions WHERE id = ?1")
            .and_then(|mut s| s.query_row([id], |r| r.get(0)).optional())
            .map_err(|e| self.err(e))
    }

    fn forget_source(&self, pk: i64, source: i64) -> Result<()> {
        let (first, last) = id_range(pk);
        self.tx
            .prepare_cached("DELETE FROM texts WHERE id BETWEEN ?1 AND ?2 AND source = ?3")
            .and_then(|mut s| s.execute(params![first, last, source]))
            .map(drop)
            .map_err(|e| self.err(e))
    }

    fn insert_texts(&self, pk: i64, source: i64, messages: &[Message]) -> Result<()> {
        let (first, last) = id_range(pk);
        if messages.is_empty() {
            return Ok(());
        }
        let mut next: i64 = if self.fresh && source == SESSION_FILE {
            first
        } else {
            self.tx
                .prepare_cached("SELECT max(id) FROM texts WHERE id BETWEEN ?1 AND ?2")
                .and_then(|mut s| s.query_row(params![first, last], |r| r.get::<_, Option<i64>>(0)))
                .map_err(|e| self.err(e))?
                .map_or(first, |id| id + 1)
        };
        let mut insert = self
            .tx
            .prepare_cached(
                "INSERT INTO texts (id, source, role, at, body) VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .map_err(|e| self.err(e))?;
        for m in messages.iter().filter(|m| !m.text.trim().is_empty()) {
            // A session of more messages than its range holds: the rest is not searchable.
            if next > last {
                break;
            }
            insert
                .execute(params![
                    next,
                    source,
                    role_code(m.role),
                    m.at.map(|t| t.timestamp_millis()),
                    m.text
                ])
                .map_err(|e| self.err(e))?;
            next += 1;
        }
        Ok(())
    }
}
