//! `sessions reindex --check`: the index compared with the files, changing nothing.

use std::collections::{HashMap, HashSet};

use super::files;
use super::index::turns::{turn_rows, UsageDigest};
use super::index::Index;
use super::sync::Loaded;
use super::{InvalidFile, ListQuery, Session, SessionSummary, Store, INDEX_FILE};
use crate::error::Result;
use crate::lock::LockMode;
use crate::timespec::Zone;

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

/// What the index holds, to compare each file with as it is read.
struct Held {
    rows: HashMap<String, SessionSummary>,
    invalid: HashSet<String>,
    usage: HashMap<String, UsageDigest>,
    rollup_zone: Zone,
}

impl Held {
    fn of(index: &Index) -> Result<Held> {
        Ok(Held {
            rows: index
                .list(&ListQuery::default())?
                .into_iter()
                .map(|(s, _)| (s.id.to_string(), s))
                .collect(),
            invalid: index
                .invalid_files()?
                .into_iter()
                .map(|f| f.file_name)
                .collect(),
            usage: index.usage_digests()?,
            rollup_zone: index.rollup_zone(),
        })
    }

    /// How the index differs for a valid session file, if it does.
    fn differs_for_session(&mut self, session: &Session) -> Option<&'static str> {
        let id = session.id.as_str();
        match self.rows.remove(id) {
            None => Some("not in the index"),
            Some(row) if row != SessionSummary::from(session) => {
                Some("the index holds an older version of this file")
            }
            Some(_) => {
                let expected = UsageDigest::of(&turn_rows(session, &self.rollup_zone));
                let held = self.usage.remove(id).unwrap_or_default();
                (held != expected).then_some("the index holds other runs for this file")
            }
        }
    }

    /// How the index differs for an invalid file `stem`, if it does.
    fn differs_for_invalid(&mut self, stem: &str, file_name: &str) -> Option<&'static str> {
        if self.rows.remove(stem).is_some() {
            Some("invalid now, but the index lists it as a session")
        } else if !self.invalid.contains(file_name) {
            Some("invalid, and not yet known to the index")
        } else {
            None
        }
    }
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
        let mut index_problem = |problem: String| {
            differences.push(Difference {
                file_name: INDEX_FILE.into(),
                problem,
            })
        };
        // Without a usable index, that is the one difference: the files are still counted.
        let mut held = match Index::open_existing(&self.index_path)? {
            Ok(index) => {
                if !index.rollup_matches_runs()? {
                    index_problem("the daily usage rollup differs from the runs it sums".into());
                }
                if !index.keyed_match_runs()? {
                    index_problem(
                        "the usage by tag, directory or session differs from the runs it sums"
                            .into(),
                    );
                }
                if index.search_matches_rows()? == Some(false) {
                    index_problem("the search index differs from the messages it covers".into());
                }
                Some(Held::of(&index)?)
            }
            Err(why) => {
                index_problem(why.to_string());
                None
            }
        };
        let mut invalid_files = Vec::new();
        let mut sessions = 0;
        self.load_streaming(&entries, |batch| {
            for item in batch {
                let (file_name, problem) = match item {
                    Loaded::Valid(session, _) => {
                        sessions += 1;
                        let problem = held.as_mut().and_then(|h| h.differs_for_session(session));
                        (session.id.file_name(), problem)
                    }
                    Loaded::Invalid { stem, reason, .. } => {
                        let file_name = format!("{stem}.json");
                        invalid_files.push(InvalidFile {
                            file_name: file_name.clone(),
                            reason: reason.clone(),
                        });
                        let problem = held
                            .as_mut()
                            .and_then(|h| h.differs_for_invalid(stem, &file_name));
                        (file_name, problem)
                    }
                    Loaded::Gone(_) => continue,
                };
                if let Some(problem) = problem {
                    differences.push(Difference {
                        file_name,
                        problem: problem.to_string(),
                    });
                }
            }
            Ok(())
        })?;
        let mut gone: Vec<String> = held
            .map(|h| h.rows.into_keys().collect())
            .unwrap_or_default();
        gone.sort();
        for stem in gone {
            differences.push(Difference {
                file_name: format!("{stem}.json"),
                problem: "in the index, but the file is gone".into(),
            });
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
