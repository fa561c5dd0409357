//! clinvk: run prompts through the AI coding CLIs and keep every conversation as a session.
//!
//! Layers (ARCHITECTURE.md has the map): `cli` (clap, tables, JSON output) calls `run` (a run's
//! lifecycle), `store` (session files, SQLite index, lock) and `config`; none of those knows the
//! command line. `backend` runs and reads the AI CLIs, `transcripts` reads their own files,
//! `usage` prices what the store sums and checks budgets; `domain` has the words they share.

pub mod backend;
pub mod cli;
pub mod clock;
pub mod config;
pub mod domain;
pub mod error;
pub mod fsio;
pub mod host;
pub mod import;
pub mod lock;
pub mod paths;
pub mod run;
pub mod store;
pub mod timespec;
pub mod transcripts;
pub mod usage;

pub use error::{Error, Result};
