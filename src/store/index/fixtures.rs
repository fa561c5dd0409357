//! Sessions and turns for the index's unit tests.

use chrono::{DateTime, Utc};

use crate::domain::{Backend, SessionId, Status};
use crate::store::session::{Session, TokenUsage, Turn};
use crate::timespec::Zone;

pub fn t(text: &str) -> DateTime<Utc> {
    text.parse().unwrap()
}

pub fn usage(input: u64, output: u64) -> TokenUsage {
    TokenUsage {
        input,
        output,
        total: input + output,
        ..TokenUsage::default()
    }
}

pub fn turn(at: &str, model: Option<&str>, input: u64, output: u64, cost: Option<f64>) -> Turn {
    Turn {
        at: t(at),
        prompt: "p".into(),
        model: model.map(String::from),
        exit_code: Some(0),
        duration_seconds: None,
        token_usage: Some(usage(input, output)),
        cost_usd: cost,
        error: None,
        request: None,
        extra: Default::default(),
    }
}

pub fn session(id: &str, backend: Backend, turns: Vec<Turn>) -> Session {
    let mut s = Session::new(
        SessionId::parse(id).unwrap(),
        backend,
        "/w".into(),
        "p".into(),
        turns.first().map_or(t("2025-01-01T00:00:00Z"), |x| x.at),
    );
    s.status = Status::Completed;
    s.model = Some("m-session".into());
    for x in &turns {
        s.token_usage.add(x.token_usage.as_ref().unwrap());
        s.last_used_at = x.at;
    }
    s.turns = turns;
    s
}

pub fn utc() -> Zone {
    Zone::parse("UTC").unwrap()
}
