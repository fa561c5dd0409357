//! Writing the index: one session at a time (upsert, in the transaction of a store write), or
//! a bulk load (a rebuild), which lifts triggers and indexes and rebuilds them once.

use std::path::PathBuf;

use rusqlite::{named_params, params, Transaction};

use super::row::{INSERT_SESSION, UPSERT_SESSION};
use super::{keyed, turns, DIR_KEY};
use crate::domain::SessionId;
use crate::error::{Error, Result};
use crate::store::files::{DirStamp, FileStamp};
use crate::store::session::Session;
use crate::timespec::Zone;

/// Triggers and indexes lifted for a bulk load (see `IndexTx::begin_bulk`).
#[must_use = "end_bulk restores the triggers and indexes"]
pub struct BulkLoad {
    lifted: Vec<String>,
    /// The text index's triggers are among them.
    texts: bool,
}

/// The search indexes' triggers, lifted for a transaction of many writes (see
/// `IndexTx::defer_search`).
#[must_use = "end_deferred_search indexes the rows written and restores the triggers"]
pub struct DeferredSearch {
    lifted: Vec<String>,
}

/// The triggers that keep the search indexes, and what stands in for them while deferred: the
/// rows written are noted in `temp.search_pending` (kind 0: a message, 1: a session's prompt)
/// and indexed at the end; a row indexed before is taken out of the index as it changes.
const SEARCH_TRIGGERS: &str = "'texts_fts_insert', 'texts_fts_delete', 'sessions_fts_insert', \
                               'sessions_fts_delete', 'sessions_fts_update'";
const DEFER_SEARCH: &str = "
CREATE TEMP TABLE IF NOT EXISTS search_pending (
    kind INTEGER NOT NULL, id INTEGER NOT NULL, PRIMARY KEY (kind, id)) WITHOUT ROWID;
CREATE TEMP TRIGGER search_defer_text_insert AFTER INSERT ON main.texts BEGIN
    INSERT OR IGNORE INTO search_pending VALUES (0, new.id);
END;
CREATE TEMP TRIGGER search_defer_text_delete AFTER DELETE ON main.texts BEGIN
    INSERT INTO main.texts_fts (texts_fts, rowid, body)
        SELECT 'delete', old.id, clinvk_flat(old.body) || char(10, 10)
        WHERE NOT EXISTS (SELECT 1 FROM search_pending WHERE kind = 0 AND id = old.id);
    DELETE FROM search_pending WHERE kind = 0 AND id = old.id;
END;
CREATE TEMP TRIGGER search_defer_session_insert AFTER INSERT ON main.sessions BEGIN
    INSERT OR IGNORE INTO search_pending VALUES (1, new.pk);
END;
CREATE TEMP TRIGGER search_defer_session_update AFTER UPDATE OF prompt ON main.sessions
WHEN old.prompt IS NOT new.prompt BEGIN
    INSERT INTO main.prompts_fts (prompts_fts, rowid, prompt)
        SELECT 'delete', old.pk, old.prompt
        WHERE NOT EXISTS (SELECT 1 FROM search_pending WHERE kind = 1 AND id = old.pk);
    INSERT OR IGNORE INTO search_pending VALUES (1, new.pk);
END;
CREATE TEMP TRIGGER search_defer_session_delete AFTER DELETE ON main.sessions BEGIN
    INSERT INTO main.prompts_fts (prompts_fts, rowid, prompt)
        SELECT 'delete', old.pk, old.prompt
        WHERE NOT EXISTS (SELECT 1 FROM search_pending WHERE kind = 1 AND id = old.pk);
    DELETE FROM search_pending WHERE kind = 1 AND id = old.pk;
END;";
const END_DEFERRED_SEARCH: &str = "
INSERT INTO texts_fts (rowid, body)
    SELECT t.id, clinvk_flat(t.body) || char(10, 10)
    FROM search_pending p JOIN texts t ON t.id = p.id WHERE p.kind = 0;
INSERT INTO prompts_fts (rowid, prompt)
    SELECT s.pk, s.prompt FROM search_pending p JOIN sessions s ON s.pk = p.id WHERE p.kind = 1;
DELETE FROM search_pending;
DROP TRIGGER temp.search_defer_text_insert;
DROP TRIGGER temp.search_defer_text_delete;
DROP TRIGGER temp.search_defer_session_insert;
DROP TRIGGER temp.search_defer_session_update;
DROP TRIGGER temp.search_defer_session_delete;";

/// A write transaction on the index; dropped without `commit`, it rolls back.
pub struct IndexTx<'a> {
    pub(super) tx: Transaction<'a>,
    pub(super) path: PathBuf,
    pub(super) fresh: bool,
    pub(super) rollup_zone: Zone,
    /// The next free message id, once known in this transaction (ids only grow in it).
    pub(super) next_text: std::cell::Cell<Option<i64>>,
    /// What this transaction's writes change in the rollups by tag and directory.
    pub(super) keyed: std::cell::RefCell<keyed::Deltas>,
}

impl IndexTx<'_> {
    pub(super) fn err(&self, source: rusqlite::Error) -> Error {
        Error::index(&self.path, source)
    }

    /// Declare the index empty for the rest of this transaction (a fresh rebuild), so that rows
    /// are plainly inserted: no conflict handling, no old tags to delete.
    pub fn assume_empty(&mut self) {
        self.fresh = true;
    }

    /// Index `session` (read from a file of `stamp`); its row's pk.
    pub fn upsert(&self, session: &Session, stamp: FileStamp) -> Result<i64> {
        let tags_json = serde_json::to_string(&session.tags).expect("tags serialize");
        let last_used = session.last_used_at.timestamp_millis();
        let values = named_params! {
            ":id": session.id.as_str(),
            ":backend": session.backend.as_str(),
            ":backend_session_id": session.backend_session_id,
            ":model": session.model,
            ":status": session.status.as_str(),
            ":created_at": session.created_at.timestamp_millis(),
            ":last_used_at": last_used,
            ":workdir": session.workdir,
            ":prompt": session.prompt,
            ":input_tokens": clamp(session.token_usage.input),
            ":output_tokens": clamp(session.token_usage.output),
            ":cached_tokens": clamp(session.token_usage.cached),
            ":total_tokens": clamp(session.token_usage.total),
            ":tags": tags_json,
            ":parent_id": session.parent_id.as_ref().map(SessionId::as_str),
            ":file_ino": stamp.ino,
            ":file_size": stamp.size,
            ":file_mtime_ns": stamp.mtime_ns,
            ":origin": session.origin.as_str(),
            ":host": session.host,
        };
        let pk: i64 = if self.fresh {
            self.tx
                .prepare_cached(&INSERT_SESSION)
                .and_then(|mut stmt| stmt.execute(values))
                .map_err(|e| self.err(e))?;
            self.tx.last_insert_rowid()
        } else {
            // What it counted before, out of the rollups, while its old rows are still there.
            self.take_out(session.id.as_str())?;
            let pk = self
                .tx
                .prepare_cached(&UPSERT_SESSION)
                .and_then(|mut stmt| stmt.query_row(values, |r| r.get(0)))
                .map_err(|e| self.err(e))?;
            for sql in [
                "DELETE FROM session_tags WHERE session_pk = ?1",
                "DELETE FROM turns WHERE session_pk = ?1",
                "DELETE FROM invalid_files WHERE name = (SELECT id FROM sessions WHERE pk = ?1)",
            ] {
                self.tx
                    .prepare_cached(sql)
                    .and_then(|mut s| s.execute([pk]))
                    .map_err(|e| self.err(e))?;
            }
            pk
        };
        self.insert_tags(pk, session, last_used)?;
        let rows = self.insert_turns(pk, session)?;
        self.keyed.borrow_mut().put_in(session, &rows);
        // A session that never ran has no rows, and no total either.
        let total: i64 = rows.iter().map(|r| r.counts()[5]).sum();
        let set_total = if rows.is_empty() {
            (!self.fresh).then(|| {
                self.tx
                    .prepare_cached("DELETE FROM session_totals WHERE session_pk = ?1")
                    .and_then(|mut s| s.execute([pk]))
            })
        } else {
            Some(
                self.tx
                    .prepare_cached(
                        "INSERT OR REPLACE INTO session_totals (session_pk, total) VALUES (?1, ?2)",
                    )
                    .and_then(|mut s| s.execute(params![pk, total])),
            )
        };
        set_total.transpose().map_err(|e| self.err(e))?;
        self.session_texts(pk, session)?;
        Ok(pk)
    }

    /// Take what the session `<stem>.json` counts out of the rollups by tag and directory
    /// (before its rows are changed or deleted).
    fn take_out(&self, stem: &str) -> Result<()> {
        self.keyed
            .borrow_mut()
            .take_out(&self.tx, stem)
            .map_err(|e| self.err(e))
    }

    fn insert_tags(&self, pk: i64, session: &Session, last_used: i64) -> Result<()> {
        let mut insert_tag = self
            .tx
            .prepare_cached("INSERT OR IGNORE INTO session_tags (tag, session_pk, last_used_at) VALUES (?1, ?2, ?3)")
            .map_err(|e| self.err(e))?;
        for tag in &session.tags {
            insert_tag
                .execute(params![tag, pk, last_used])
                .map_err(|e| self.err(e))?;
        }
        Ok(())
    }

    /// The session's runs, for `sessions stats`, with the day each counts in (rollup zone).
    fn insert_turns(&self, pk: i64, session: &Session) -> Result<Vec<turns::TurnRow>> {
        let mut insert_turn = self
            .tx
            .prepare_cached(
                "INSERT INTO turns (session_pk, seq, at, backend, status, model, runs, input, output,
                     cached, cache_write, reasoning, total, cost_nusd, day, firsts)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
            )
            .map_err(|e| self.err(e))?;
        let rows = turns::turn_rows(session, &self.rollup_zone);
        for row in &rows {
            let [input, output, cached, cache_write, reasoning, total] = row.counts();
            insert_turn
                .execute(params![
                    pk,
                    row.seq,
                    row.at,
                    session.backend.as_str(),
                    session.status.as_str(),
                    row.model,
                    row.runs,
                    input,
                    output,
                    cached,
                    cache_write,
                    reasoning,
                    total,
                    row.cost_nusd,
                    row.day,
                    row.firsts,
                ])
                .map_err(|e| self.err(e))?;
        }
        Ok(rows)
    }

    /// Prepare for loading many rows: lift the triggers and secondary indexes and rebuild them
    /// once at the end, from the SQL saved here (the migrations stay their only source).
    /// Row-by-row maintenance is what makes bulk loads slow: FTS5 flushes its pending terms at
    /// every statement savepoint, and each index is a random-order B-tree insert per row.
    /// `with_texts`: the text index too (rebuilt whole at the end: for a load that brings
    /// most of its text, a rebuild or an import, not for many sessions' own prompts).
    pub fn begin_bulk(&self, with_texts: bool) -> Result<BulkLoad> {
        let lifted: Vec<(String, String, String)> = self
            .tx
            .prepare(
                "SELECT type, name, sql FROM sqlite_master
                 WHERE (tbl_name IN ('sessions', 'session_tags', 'turns', 'session_totals')
                        OR (tbl_name = 'texts' AND ?1))
                   AND sql IS NOT NULL AND (type = 'trigger' OR type = 'index')
                   -- the load itself deletes a session's old tags through this one
                   AND name != 'session_tags_by_session'",
            )
            .and_then(|mut stmt| {
                stmt.query_map([with_texts], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                    .collect::<rusqlite::Result<_>>()
            })
            .map_err(|e| self.err(e))?;
        for (kind, name, _) in &lifted {
            let drop = if kind == "index" {
                "DROP INDEX"
            } else {
                "DROP TRIGGER"
            };
            self.tx
                .execute_batch(&format!("{drop} \"{}\"", name.replace('"', "\"\"")))
                .map_err(|e| self.err(e))?;
        }
        Ok(BulkLoad {
            lifted: lifted.into_iter().map(|(_, _, sql)| sql).collect(),
            texts: with_texts,
        })
    }

    /// For a transaction of many writes that must leave the index whole (an import's batch,
    /// which readers see once it is committed): the search indexes take the rows written in
    /// one statement each at the end (`end_deferred_search`), instead of one at a time
    /// through their triggers. FTS5 writes what it holds out to disk at every statement that
    /// opens a savepoint (any with a trigger), so that row by row, every message would make a
    /// segment of its own to be merged again and again.
    pub fn defer_search(&self) -> Result<DeferredSearch> {
        let lifted: Vec<(String, String)> = self
            .tx
            .prepare(&format!(
                "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND name IN ({SEARCH_TRIGGERS})"
            ))
            .and_then(|mut stmt| {
                stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect::<rusqlite::Result<_>>()
            })
            .map_err(|e| self.err(e))?;
        for (name, _) in &lifted {
            self.tx
                .execute_batch(&format!("DROP TRIGGER \"{}\"", name.replace('"', "\"\"")))
                .map_err(|e| self.err(e))?;
        }
        self.tx
            .execute_batch(DEFER_SEARCH)
            .map_err(|e| self.err(e))?;
        Ok(DeferredSearch {
            lifted: lifted.into_iter().map(|(_, sql)| sql).collect(),
        })
    }

    /// Index the rows written since `defer_search`, and put its triggers back.
    pub fn end_deferred_search(&self, deferred: DeferredSearch) -> Result<()> {
        self.tx
            .execute_batch(END_DEFERRED_SEARCH)
            .map_err(|e| self.err(e))?;
        for sql in deferred.lifted {
            self.tx.execute_batch(&sql).map_err(|e| self.err(e))?;
        }
        Ok(())
    }

    /// Rebuild what `begin_bulk` lifted: the search index, tag counts, indexes and triggers.
    pub fn end_bulk(&self, bulk: BulkLoad) -> Result<()> {
        self.tx
            .execute_batch(
                "INSERT INTO prompts_fts (prompts_fts, rank) VALUES ('hashsize', 67108864);
                 INSERT INTO prompts_fts (prompts_fts) VALUES ('rebuild');
                 INSERT INTO prompts_fts (prompts_fts, rank) VALUES ('hashsize', 1048576);
                 DELETE FROM tag_counts;
                 INSERT INTO tag_counts (tag, n) SELECT tag, count(*) FROM session_tags GROUP BY tag;",
            )
            .map_err(|e| self.err(e))?;
        if bulk.texts {
            self.tx
                .execute_batch(
                    "INSERT INTO texts_fts (texts_fts, rank) VALUES ('hashsize', 16777216);
                     INSERT INTO texts_fts (texts_fts) VALUES ('rebuild');
                     INSERT INTO texts_fts (texts_fts, rank) VALUES ('hashsize', 1048576);",
                )
                .map_err(|e| self.err(e))?;
        }
        self.tx
            .execute_batch(turns::REFILL_ROLLUP)
            .map_err(|e| self.err(e))?;
        for sql in bulk.lifted {
            self.tx.execute_batch(&sql).map_err(|e| self.err(e))?;
        }
        Ok(())
    }

    /// Forget the file `<stem>.json`, valid or not.
    pub fn remove(&self, stem: &str) -> Result<()> {
        self.forget_session_texts(stem)?;
        self.take_out(stem)?;
        for sql in [
            "DELETE FROM sessions WHERE id = ?1",
            "DELETE FROM invalid_files WHERE name = ?1",
        ] {
            self.tx
                .prepare_cached(sql)
                .and_then(|mut s| s.execute([stem]))
                .map_err(|e| self.err(e))?;
        }
        Ok(())
    }

    pub fn mark_invalid(&self, stem: &str, reason: &str, stamp: FileStamp) -> Result<()> {
        if !self.fresh {
            self.forget_session_texts(stem)?;
            self.take_out(stem)?;
            self.tx
                .prepare_cached("DELETE FROM sessions WHERE id = ?1")
                .and_then(|mut s| s.execute([stem]))
                .map_err(|e| self.err(e))?;
        }
        self.tx
            .prepare_cached(
                "INSERT OR REPLACE INTO invalid_files (name, reason, file_ino, file_size, file_mtime_ns)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .and_then(|mut s| s.execute(params![stem, reason, stamp.ino, stamp.size, stamp.mtime_ns]))
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Remember the sessions directory's stamp (None: unknown, rescan next time).
    pub fn set_dir_stamp(&self, stamp: Option<DirStamp>) -> Result<()> {
        self.tx
            .prepare_cached("INSERT OR REPLACE INTO store_state (key, value) VALUES (?1, ?2)")
            .and_then(|mut s| s.execute(params![DIR_KEY, stamp.map(|d| d.key())]))
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    pub fn commit(self) -> Result<()> {
        let path = self.path;
        self.keyed
            .borrow_mut()
            .flush(&self.tx)
            .map_err(|e| Error::index(&path, e))?;
        self.tx.commit().map_err(|e| Error::index(path, e))
    }
}

/// A count as SQLite's signed 64-bit integer (counts beyond it are not real).
fn clamp(n: u64) -> i64 {
    n.min(i64::MAX as u64) as i64
}
