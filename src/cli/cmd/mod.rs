//! One file per command: its clap arguments and what it does with them.

pub mod clean;
pub mod config;
pub mod delete;
pub mod fork;
pub mod import;
pub mod list;
pub mod pick;
pub mod reindex;
pub mod resume;
pub mod run;
pub mod search;
pub mod shell;
pub mod show;
pub mod stats;
pub mod statusline;
pub mod tag;
