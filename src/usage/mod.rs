//! What usage costs and how it compares with a budget: pure functions over the sums the store
//! returns (`store::StatsResult`), the price table, and the clock. No SQL, no flags.

pub mod blocks;
pub mod pricing;

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};

use crate::store::{ModelPart, StatsGroup, UsageSums};
use crate::timespec::{Granularity, Zone};
use pricing::PriceTable;

/// The cost of some usage, split by where each figure comes from.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Cost {
    /// Reported by the backend itself (Claude's `total_cost_usd`).
    pub reported_usd: f64,
    /// Estimated from list prices, for runs whose backend reports no cost.
    pub estimated_usd: f64,
    /// Tokens of models with no known price, left out of both figures.
    pub unpriced_tokens: u64,
}

impl Cost {
    /// The whole cost, or None when part of it is unknown (an unknown model costs "unknown",
    /// never $0).
    pub fn total_usd(&self) -> Option<f64> {
        (self.unpriced_tokens == 0).then_some(self.reported_usd + self.estimated_usd)
    }

    /// What is known of it: a lower bound when `unpriced_tokens` > 0.
    pub fn known_usd(&self) -> f64 {
        self.reported_usd + self.estimated_usd
    }
}

/// Prices usage, remembering the models it found no price for (to warn once about each).
pub struct Pricer<'a> {
    table: &'a PriceTable,
    /// Model ('' for none recorded) -> unpriced tokens.
    pub unpriced: BTreeMap<String, u64>,
}

impl<'a> Pricer<'a> {
    pub fn new(table: &'a PriceTable) -> Self {
        Pricer {
            table,
            unpriced: BTreeMap::new(),
        }
    }

    pub fn cost(&mut self, parts: &[ModelPart]) -> Cost {
        let mut cost = Cost::default();
        for part in parts {
            let s = &part.sums;
            if part.reported {
                cost.reported_usd += s.reported_cost_nusd as f64 / 1e9;
                continue;
            }
            if s.tokens.input == 0 && s.tokens.output == 0 {
                continue;
            }
            match self.table.lookup(&part.model) {
                Some(price) => cost.estimated_usd += price.estimate(&s.tokens),
                None => {
                    let tokens = s.tokens.total();
                    cost.unpriced_tokens += tokens;
                    *self.unpriced.entry(part.model.clone()).or_default() += tokens;
                }
            }
        }
        cost
    }
}

/// A group's figures: its sums and cost.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Figures {
    pub sessions: u64,
    pub sums: UsageSums,
    pub cost: Cost,
}

impl Figures {
    pub fn of(group: &StatsGroup, pricer: &mut Pricer<'_>) -> Figures {
        Figures {
            sessions: group.sessions,
            sums: group.sums(),
            cost: pricer.cost(&group.parts),
        }
    }
}

// ----- budgets -------------------------------------------------------------------------------

/// Share of a budget at which a check warns.
pub const WARN_AT_PERCENT: f64 = 80.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum BudgetStatus {
    Ok,
    Warning,
    Exceeded,
}

impl BudgetStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            BudgetStatus::Ok => "ok",
            BudgetStatus::Warning => "warning",
            BudgetStatus::Exceeded => "exceeded",
        }
    }
}

/// What a budget's period is: a calendar one, or the 5-hour block under way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeriodKind {
    Calendar(Granularity),
    Block,
}

impl PeriodKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PeriodKind::Calendar(g) => g.as_str(),
            PeriodKind::Block => "block",
        }
    }
}

/// The period a budget covers: the current day, week or month in `zone`, or the 5-hour block
/// under way.
#[derive(Debug, Clone, PartialEq)]
pub struct Period {
    pub kind: PeriodKind,
    pub label: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

impl Period {
    /// The period of `granularity` containing `now` (None only at the ends of time).
    pub fn current(granularity: Granularity, zone: &Zone, now: DateTime<Utc>) -> Option<Period> {
        let first = granularity.start(zone.date_of(now));
        Some(Period {
            kind: PeriodKind::Calendar(granularity),
            label: granularity.label(first),
            start: zone.start_of(first)?,
            end: zone.start_of(granularity.next(first))?,
        })
    }

    /// The block under way, `start..end` (labelled by its start); with none, an empty period at
    /// `now`, over which nothing is used yet.
    pub fn block(under_way: Option<(DateTime<Utc>, DateTime<Utc>)>, now: DateTime<Utc>) -> Period {
        let (start, end) = under_way.unwrap_or((now, now));
        Period {
            kind: PeriodKind::Block,
            label: crate::store::block_label(start.timestamp_millis()),
            start,
            end,
        }
    }
}

/// One limit checked against the usage so far.
#[derive(Debug, Clone, PartialEq)]
pub struct BudgetLine {
    pub limit: f64,
    pub used: f64,
    pub remaining: f64,
    pub percent: f64,
    /// Usage at the end of the period if it goes on at the rate seen so far.
    pub projected: f64,
    pub status: BudgetStatus,
}

impl BudgetLine {
    pub fn new(limit: f64, used: f64, period: &Period, now: DateTime<Utc>) -> BudgetLine {
        let percent = if limit > 0.0 {
            used / limit * 100.0
        } else {
            100.0
        };
        let length = (period.end - period.start).num_milliseconds() as f64;
        // An hour at least, so that the first minutes of a period do not project wildly.
        let elapsed = (now - period.start)
            .max(Duration::hours(1))
            .num_milliseconds() as f64;
        let projected = if now >= period.end {
            used
        } else {
            (used * length / elapsed).max(used)
        };
        let status = if percent >= 100.0 {
            BudgetStatus::Exceeded
        } else if percent >= WARN_AT_PERCENT {
            BudgetStatus::Warning
        } else {
            BudgetStatus::Ok
        };
        BudgetLine {
            limit,
            used,
            remaining: (limit - used).max(0.0),
            percent,
            projected,
            status,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Tokens;
    use crate::store::UsageSums;
    use pricing::Price;

    fn part(model: &str, reported: bool, input: u64, output: u64, nusd: i64) -> ModelPart {
        ModelPart {
            model: model.into(),
            reported,
            sums: UsageSums {
                runs: 1,
                tokens: Tokens {
                    input,
                    output,
                    ..Tokens::default()
                },
                total: input + output,
                reported_cost_nusd: nusd,
            },
        }
    }

    #[test]
    fn reported_estimated_and_unknown_costs_stay_apart() {
        let table = PriceTable::embedded().with_overrides([(
            "house-model".to_string(),
            Price {
                input: 1.0,
                output: 2.0,
                cache_read: None,
                cache_write: None,
            },
        )]);
        let mut pricer = Pricer::new(&table);
        let cost = pricer.cost(&[
            part("claude-x", true, 10, 10, 1_500_000_000),
            part("house-model", false, 1_000_000, 500_000, 0),
            part("mystery-9", false, 100, 20, 0),
            part("mystery-9", false, 0, 0, 0),
        ]);
        assert_eq!(cost.reported_usd, 1.5);
        assert!((cost.estimated_usd - 2.0).abs() < 1e-9);
        assert_eq!(cost.unpriced_tokens, 120);
        assert_eq!(cost.total_usd(), None);
        assert!((cost.known_usd() - 3.5).abs() < 1e-9);
        assert_eq!(pricer.unpriced.get("mystery-9"), Some(&120));
    }

    #[test]
    fn budget_lines_project_and_classify() {
        let zone = Zone::parse("UTC").unwrap();
        let now: DateTime<Utc> = "2025-06-11T00:00:00Z".parse().unwrap();
        let june = Period::current(Granularity::Month, &zone, now).unwrap();
        assert_eq!(june.label, "2025-06");
        assert_eq!(june.start.to_rfc3339(), "2025-06-01T00:00:00+00:00");
        assert_eq!(june.end.to_rfc3339(), "2025-07-01T00:00:00+00:00");
        // 10 of 30 days gone: 300 used projects to 900.
        let line = BudgetLine::new(1000.0, 300.0, &june, now);
        assert_eq!(line.status, BudgetStatus::Ok);
        assert!((line.projected - 900.0).abs() < 1e-6);
        assert_eq!(line.remaining, 700.0);
        assert_eq!(
            BudgetLine::new(1000.0, 800.0, &june, now).status,
            BudgetStatus::Warning
        );
        assert_eq!(
            BudgetLine::new(1000.0, 1000.0, &june, now).status,
            BudgetStatus::Exceeded
        );
        let week = Period::current(Granularity::Week, &zone, now).unwrap();
        assert_eq!(week.label, "2025-06-09");
    }
}
