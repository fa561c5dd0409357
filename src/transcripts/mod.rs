//! The CLIs' own transcripts on disk: Codex rollouts, Gemini chat files. clinvk reads them and
//! never writes, locks or moves them.
//!
//! `codex` and `gemini` are pure (bytes in, records out) and tested on the real samples in
//! `tests/data/native-samples`; `locate` knows where each CLI keeps its files (its own
//! directory variables first, then the home directory) and finds one conversation's file.
//!
//! Runs use them for what the CLIs' printed output leaves out: the model a Codex thread ran
//! (the stream has none), the total a Codex fork started from, and whether a failed Gemini run
//! left anything to resume.

pub mod codex;
pub mod gemini;
pub mod locate;
