//! clinvk: run prompts through the AI coding CLIs and keep every conversation as a session.
//!
//! Layers: `cli` (clap, tables, JSON output) calls `store` (session files, SQLite index, lock)
//! and `config`; `store` and `config` know nothing of the command line. `usage` prices what the
//! store sums and checks budgets; `run` and `backend` run the AI CLIs.

pub mod backend;
pub mod cli;
pub mod clock;
pub mod config;
pub mod domain;
pub mod error;
pub mod fsio;
pub mod lock;
pub mod paths;
pub mod run;
pub mod store;
pub mod timespec;
pub mod transcripts;
pub mod usage;

pub use error::{Error, Result};
