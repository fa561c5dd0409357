//! `sessions reindex --check`: the index compared with the files, changing nothing.

use std::collections::{HashMap, HashSet};

use super::files;
use super::index::{self, Index};
use super::sync::Loaded;
use super::{InvalidFile, ListQuery, SessionSummary, Store, INDEX_FILE};
use crate::error::Result;
use crate::lock::LockMode;

/// One way in which the index and the files disagree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    pub file_name: String,
    pub problem: String,
}

#[derive(Debug)]
pub struct CheckReport {
    pub sessions: u64,
    pub differences: Vec<Difference>,
    pub invalid_files: Vec<InvalidFile>,
}

impl Store {
    /// Compare the index with the files, changing nothing.
    pub fn check(&self) -> Result<CheckReport> {
        // No lock file and none can be made (a read-only store): nor can anyone write.
        let _shared = match self.lock(LockMode::Shared) {
            Ok(guard) => Some(guard),
            Err(e) if e.is_unwritable() => None,
            Err(e) => return Err(e),
        };
        // Every file is read anyway (and stamped from its open handle): skip the stat.
        let entries = files::scan_dir(&self.dir, false)?;
        let mut differences = Vec::new();
        let mut invalid_files = Vec::new();
        let mut sessions = 0;
        let index = match Index::open_existing(&self.index_path)? {
            Ok(index) => Some(index),
            Err(why) => {
                differences.push(Difference {
                    file_name: INDEX_FILE.into(),
                    problem: why.to_string(),
                });
                None
            }
        };
        let (mut usage_rows, rollup_zone) = match &index {
            Some(index) => (index.usage_digests()?, Some(index.rollup_zone())),
            None => Default::default(),
        };
        if let Some(index) = &index {
            if !index.rollup_matches_runs()? {
                differences.push(Difference {
                    file_name: INDEX_FILE.into(),
                    problem: "the daily usage rollup differs from the runs it sums".into(),
                });
            }
        }
        let (mut indexed, indexed_invalid): (HashMap<String, SessionSummary>, HashSet<String>) =
            match &index {
                Some(index) => (
                    index
                        .list(&ListQuery::default())?
                        .into_iter()
                        .map(|(s, _)| (s.id.to_string(), s))
                        .collect(),
                    index
                        .invalid_files()?
                        .into_iter()
                        .map(|f| f.file_name)
                        .collect(),
                ),
                None => Default::default(),
            };
        let mut differ = |file_name: String, problem: &str| {
            if index.is_some() {
                differences.push(Difference {
                    file_name,
                    problem: problem.to_string(),
                })
            }
        };
        self.load_streaming(&entries, |batch| {
            for item in batch {
                match item {
                    Loaded::Valid(session, _) => {
                        sessions += 1;
                        let name = session.id.file_name();
                        match indexed.remove(session.id.as_str()) {
                            None => differ(name, "not in the index"),
                            Some(row) if row != SessionSummary::from(&**session) => {
                                differ(name, "the index holds an older version of this file")
                            }
                            Some(_) => {
                                if let Some(zone) = rollup_zone {
                                    let expected = index::turns::UsageDigest::of(
                                        &index::turns::turn_rows(session, &zone),
                                    );
                                    let held =
                                        usage_rows.remove(session.id.as_str()).unwrap_or_default();
                                    if held != expected {
                                        differ(name, "the index holds other runs for this file")
                                    }
                                }
                            }
                        }
                    }
                    Loaded::Invalid { stem, reason, .. } => {
                        let file_name = format!("{stem}.json");
                        if indexed.remove(stem).is_some() {
                            differ(
                                file_name.clone(),
                                "invalid now, but the index lists it as a session",
                            );
                        } else if !indexed_invalid.contains(&file_name) {
                            differ(file_name.clone(), "invalid, and not yet known to the index");
                        }
                        invalid_files.push(InvalidFile {
                            file_name,
                            reason: reason.clone(),
                        });
                    }
                    Loaded::Gone(_) => {}
                }
            }
            Ok(())
        })?;
        let mut gone: Vec<String> = indexed.into_keys().collect();
        gone.sort();
        for stem in gone {
            differ(format!("{stem}.json"), "in the index, but the file is gone");
        }
        invalid_files.sort_by(|a, b| a.file_name.cmp(&b.file_name));
        differences.sort_by(|a, b| a.file_name.cmp(&b.file_name));
        Ok(CheckReport {
            sessions,
            differences,
            invalid_files,
        })
    }
}
