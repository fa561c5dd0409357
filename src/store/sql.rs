//! Small pieces of SQL building that the listing (`index.rs`) and the usage queries
//! (`usage.rs`) share.

use rusqlite::types::Value;
use rusqlite::{params_from_iter, Connection};

use crate::store::query::Filter;

/// Conditions on the session attributes both `sessions` and the usage tables carry (backend,
/// status), on the table aliased `alias`.
pub fn session_conditions(f: &Filter, alias: &str, conds: &mut Vec<String>, args: &mut Vec<Value>) {
    if let Some(b) = f.backend {
        conds.push(format!("{alias}.backend = ?"));
        args.push(Value::Text(b.as_str().into()));
    }
    if let Some(s) = f.status {
        conds.push(format!("{alias}.status = ?"));
        args.push(Value::Text(s.as_str().into()));
    }
}

/// Conditions on what only the `sessions` row says (working directory, origin, host), on the
/// row aliased `alias`.
pub fn row_conditions(f: &Filter, alias: &str, conds: &mut Vec<String>, args: &mut Vec<Value>) {
    if let Some(w) = &f.workdir {
        conds.push(format!("{alias}.workdir = ?"));
        args.push(Value::Text(w.clone()));
    }
    if let Some(o) = f.origin {
        conds.push(format!("{alias}.origin = ?"));
        args.push(Value::Text(o.as_str().into()));
    }
    if let Some(h) = &f.host {
        conds.push(format!("{alias}.host = ?"));
        args.push(Value::Text(h.clone()));
    }
}

/// Conditions on the runs aliased `x` of the sessions `f` selects: what the runs carry of their
/// session, what only its row says (aliased `s`, to be joined when `f.on_session_row()`), and
/// its tags (all of them).
pub fn run_conditions(f: &Filter, conds: &mut Vec<String>, args: &mut Vec<Value>) {
    session_conditions(f, "x", conds, args);
    row_conditions(f, "s", conds, args);
    for tag in &f.tags {
        conds.push("x.session_pk IN (SELECT session_pk FROM session_tags WHERE tag = ?)".into());
        args.push(Value::Text(tag.clone()));
    }
}

/// `WHERE a AND b`, or nothing.
pub fn where_clause(conds: &[String]) -> String {
    if conds.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", conds.join(" AND "))
    }
}

/// The plan SQLite picks for `sql`, one line per step (for tests and benchmarks).
pub fn explain_plan(conn: &Connection, sql: &str, args: &[Value]) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))?;
    let rows = stmt.query_map(params_from_iter(args.iter()), |r| r.get::<_, String>(3))?;
    rows.collect()
}
