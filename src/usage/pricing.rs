//! Embedded model prices and cost estimates for `clinvk sessions stats`.
//!
//! Prices are USD per million tokens at each provider's standard tier, as in force on
//! [`PriceTable::CHECKED`]: not batch, flex, priority/fast mode, regional processing or
//! subscription plans. Two are time-limited launch/promotional prices (GPT-5.6 Sol, Gemini 3.8
//! Flash), marked in the table. `pricing:` in config.yaml replaces or extends the table.
//!
//! Estimates use the base tier only. Several prices rise per request once a prompt passes a size
//! (Gemini Pro over 200k tokens, OpenAI GPT-5.4 and later over 272k, Claude Haiku 5.5 over 100k),
//! but the usage clinvk records for a run is the sum of many API requests, so the size of each
//! request is unknown and those tiers cannot be applied: long-prompt runs are underestimated.
//!
//! A model the table does not know gives `None`, and the caller reports "no cost" rather than
//! $0, which would read as free. Lookup never guesses from a prefix (see [`PriceTable::lookup`]).

use std::collections::HashMap;

use serde::Deserialize;

pub use crate::domain::Tokens;

/// USD per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    /// Uncached input.
    pub input: f64,
    /// Output, including reasoning/thinking tokens (every provider bills them as output).
    pub output: f64,
    /// Cache hits; `None` means 0.1 x input.
    #[serde(default)]
    pub cache_read: Option<f64>,
    /// Cache writes; `None` means 1.25 x input (Anthropic's 5-minute write).
    #[serde(default)]
    pub cache_write: Option<f64>,
}

impl Price {
    /// The cache-hit rate, with the 0.1 x input default most providers use.
    pub fn cache_read_rate(&self) -> f64 {
        self.cache_read.unwrap_or(self.input * 0.1)
    }

    /// The cache-write rate, with Anthropic's 5-minute 1.25 x input as the default.
    pub fn cache_write_rate(&self) -> f64 {
        self.cache_write.unwrap_or(self.input * 1.25)
    }

    /// Estimated USD for normalised tokens: `input` counts ALL prompt tokens including cache reads
    /// (`cached`) and cache writes (`cache_write`), which are subsets of `input`; `output` includes
    /// reasoning.
    /// cost = (input - cached - cache_write) * input + cached * cache_read
    ///        + cache_write * cache_write + output * output, all / 1e6
    /// (saturating subtraction: never negative).
    pub fn estimate(&self, t: &Tokens) -> f64 {
        // Counts that disagree (cached + cache_write > input) bill the cache parts as reported
        // and no uncached input, rather than a negative amount.
        let uncached = t
            .input
            .saturating_sub(t.cached)
            .saturating_sub(t.cache_write);
        (uncached as f64 * self.input
            + t.cached as f64 * self.cache_read_rate()
            + t.cache_write as f64 * self.cache_write_rate()
            + t.output as f64 * self.output)
            / 1e6
    }

    /// Checks all rates are finite and >= 0; Err(message) names the bad field.
    pub fn validate(&self) -> Result<(), String> {
        let fields = [
            ("input", Some(self.input)),
            ("output", Some(self.output)),
            ("cache_read", self.cache_read),
            ("cache_write", self.cache_write),
        ];
        for (name, value) in fields {
            if let Some(v) = value {
                // NaN is not finite, so it is caught before the comparison.
                if !v.is_finite() || v < 0.0 {
                    return Err(format!(
                        "{name} must be a finite number of USD per million tokens, 0 or more (got {v})"
                    ));
                }
            }
        }
        Ok(())
    }
}

/// The embedded table plus user overrides (config.yaml `pricing:`), looked up by model id.
#[derive(Debug, Clone)]
pub struct PriceTable {
    /// Keyed by lowercase model id; overrides have replaced embedded entries of the same id.
    prices: HashMap<String, Price>,
}

impl PriceTable {
    /// When the embedded prices were last checked against their sources.
    pub const CHECKED: &'static str = "2026-11-23";

    /// The prices compiled into clinvk, without overrides.
    pub fn embedded() -> PriceTable {
        let prices = EMBEDDED
            .iter()
            .map(|(id, price)| ((*id).to_string(), *price))
            .collect();
        PriceTable { prices }
    }

    /// Overrides replace or extend embedded entries (keys are model ids as written by the user;
    /// match case-insensitively). Rates are taken as given: check them with [`Price::validate`]
    /// when reading the config. Of two keys differing only in case, the later one wins.
    pub fn with_overrides(
        mut self,
        overrides: impl IntoIterator<Item = (String, Price)>,
    ) -> PriceTable {
        for (id, price) in overrides {
            self.prices.insert(id.trim().to_lowercase(), price);
        }
        self
    }

    /// The price for a model id as the CLIs report it, or None (unknown model: the caller reports
    /// "no cost", never $0).
    ///
    /// The id is matched exactly (ignoring surrounding spaces), overrides winning over embedded
    /// entries; ids match case-insensitively. If that fails, these steps are applied one after
    /// another, trying the table after each:
    /// 1. strip a provider prefix: everything up to the last `/` (`anthropic/`, `openai/`,
    ///    `google/`, `models/`, `vertex_ai/`, `openrouter/anthropic/`, ...);
    /// 2. strip a bracketed suffix, e.g. Claude Code's `claude-opus-5[1m]`;
    /// 3. strip a trailing date snapshot, `-20251001` (8 digits) or `-2025-10-01`;
    /// 4. strip `-latest`.
    ///
    /// Nothing fuzzier: no prefix guessing (`gpt-5` never matches `gpt-5-mini` nor the reverse)
    /// and no aliases such as Claude Code's `opus`, whose model changes from release to release.
    pub fn lookup(&self, model: &str) -> Option<Price> {
        let mut id = model.trim().to_lowercase();
        if id.is_empty() {
            return None;
        }
        if let Some(price) = self.prices.get(&id) {
            return Some(*price);
        }
        let steps: [fn(&str) -> Option<&str>; 4] = [
            strip_provider_prefix,
            strip_bracket_suffix,
            strip_date_suffix,
            |s| s.strip_suffix("-latest"),
        ];
        for step in steps {
            if let Some(stripped) = step(&id) {
                id = stripped.to_string();
                if let Some(price) = self.prices.get(&id) {
                    return Some(*price);
                }
            }
        }
        None
    }
}

fn strip_provider_prefix(id: &str) -> Option<&str> {
    id.rsplit_once('/')
        .map(|(_, rest)| rest)
        .filter(|rest| !rest.is_empty())
}

fn strip_bracket_suffix(id: &str) -> Option<&str> {
    if !id.ends_with(']') {
        return None;
    }
    id.rfind('[')
        .map(|open| id[..open].trim_end())
        .filter(|rest| !rest.is_empty())
}

/// `-YYYYMMDD` or `-YYYY-MM-DD` at the end, as in `claude-haiku-4-5-20251001`, `gpt-5-2025-08-07`.
fn strip_date_suffix(id: &str) -> Option<&str> {
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let (rest, last) = id.rsplit_once('-')?;
    if last.len() == 8 && digits(last) {
        return Some(rest).filter(|r| !r.is_empty());
    }
    // The dashed form ends in three parts: YYYY-MM-DD.
    let day = last;
    let (rest, month) = rest.rsplit_once('-')?;
    let (rest, year) = rest.rsplit_once('-')?;
    let dashed = year.len() == 4 && month.len() == 2 && day.len() == 2;
    (dashed && digits(year) && digits(month) && digits(day) && !rest.is_empty()).then_some(rest)
}

/// A price with every rate stated, so the table never depends on the defaults.
const fn price(input: f64, output: f64, cache_read: f64, cache_write: f64) -> Price {
    Price {
        input,
        output,
        cache_read: Some(cache_read),
        cache_write: Some(cache_write),
    }
}

/// Model id (lowercase, already normalised) -> price, as (input, output, cache_read, cache_write).
#[rustfmt::skip]
const EMBEDDED: &[(&str, Price)] = &[
    // Anthropic (Claude Code). Sources: https://platform.claude.com/docs/en/about-claude/pricing
    // and https://platform.claude.com/docs/en/models/<model>/overview (Opus 5.5, Sonnet 5.5,
    // Haiku 5.5), copies of Sep-Oct 2026; changes since then as quoted from the live pricing page
    // by third-party price tables: Sonnet 5.5 cache hits cut to $0.10 on 2026-10-07 (seen
    // 2026-10-24), Fable 5.2 released 2026-11-09 (seen 2026-11-10/12).
    // cache_write is the 5-minute write, Claude Code's default; 1-hour writes (2 x input) are
    // not distinguished. Models from Opus 4.6 / Sonnet 4.6 on bill their 1M context at these
    // rates; Sonnet 4.5 and 4 charged more above 200k prompt tokens (not applied).
    ("claude-fable-5-2",   price(8.00, 40.00, 0.20, 10.00)),
    ("claude-fable-5-1",   price(10.00, 50.00, 0.25, 12.50)), // hits at 0.025 x input
    ("claude-mythos-5-1",  price(10.00, 50.00, 0.25, 12.50)), // limited availability
    ("claude-fable-5",     price(10.00, 50.00, 1.00, 12.50)),
    ("claude-mythos-5",    price(10.00, 50.00, 1.00, 12.50)), // limited availability
    ("claude-opus-5-5",    price(4.00, 20.00, 0.20, 5.00)), // hits at 0.05 x input
    ("claude-opus-5",      price(5.00, 25.00, 0.50, 6.25)),
    ("claude-opus-4-8",    price(5.00, 25.00, 0.50, 6.25)),
    ("claude-opus-4-7",    price(5.00, 25.00, 0.50, 6.25)),
    ("claude-opus-4-6",    price(5.00, 25.00, 0.50, 6.25)),
    ("claude-opus-4-5",    price(5.00, 25.00, 0.50, 6.25)),
    ("claude-opus-4-1",    price(15.00, 75.00, 1.50, 18.75)), // retired on the Claude API
    ("claude-opus-4-0",    price(15.00, 75.00, 1.50, 18.75)),
    ("claude-opus-4",      price(15.00, 75.00, 1.50, 18.75)), // claude-opus-4-20250514
    ("claude-sonnet-5-5",  price(2.00, 10.00, 0.10, 2.50)), // hits at 0.05 x input since 2026-10-07
    ("claude-sonnet-5",    price(2.00, 10.00, 0.20, 2.50)), // the $3/$15 rise planned for 2026-09-01 was cancelled
    ("claude-sonnet-4-6",  price(3.00, 15.00, 0.30, 3.75)),
    ("claude-sonnet-4-5",  price(3.00, 15.00, 0.30, 3.75)),
    ("claude-sonnet-4-0",  price(3.00, 15.00, 0.30, 3.75)),
    ("claude-sonnet-4",    price(3.00, 15.00, 0.30, 3.75)), // claude-sonnet-4-20250514
    ("claude-3-7-sonnet",  price(3.00, 15.00, 0.30, 3.75)),
    ("claude-3-5-sonnet",  price(3.00, 15.00, 0.30, 3.75)),
    ("claude-haiku-5-5",   price(0.10, 0.50, 0.01, 0.125)), // prompts <= 100k; above: 5x every rate
    ("claude-haiku-4-5",   price(1.00, 5.00, 0.10, 1.25)),
    ("claude-3-5-haiku",   price(0.80, 4.00, 0.08, 1.00)),
    ("claude-3-haiku",     price(0.25, 1.25, 0.03, 0.30)),

    // OpenAI (Codex CLI). Sources: https://developers.openai.com/api/docs/models/<model> (pages
    // seen Sep-Nov 2026, GPT-6.2 Sol after its 2026-11-17 release) and
    // https://developers.openai.com/api/docs/pricing as quoted by third-party price tables.
    // cache_read is "cached input". From GPT-5.6 on, OpenAI bills cache writes (30-minute
    // retention) at 1.25 x input; earlier models bill them as plain input. Requests over 272k
    // input tokens cost 2x input and 1.5x output on GPT-5.4 and later (not applied).
    ("gpt-6.2-astra",      price(8.00, 40.00, 0.40, 10.00)), // cached input "60% cheaper" than GPT-6 Astra's $1; write = the 1.25x rule
    ("gpt-6.2-sol",        price(2.00, 10.00, 0.10, 2.50)),
    ("gpt-6.1-sol",        price(2.00, 10.00, 0.10, 2.50)),
    ("gpt-6.1-terra",      price(1.00, 5.00, 0.05, 1.25)),
    ("gpt-6-astra",        price(10.00, 50.00, 1.00, 12.50)),
    ("gpt-6-sol",          price(2.00, 10.00, 0.20, 2.50)),
    ("gpt-6-luna",         price(0.10, 0.50, 0.01, 0.125)),
    ("gpt-5.6-sol",        price(4.00, 20.00, 0.40, 5.00)), // promotional price "at least through 2026-11-21"; list was $5/$0.50/$30
    ("gpt-5.6",            price(4.00, 20.00, 0.40, 5.00)), // OpenAI's alias for gpt-5.6-sol
    ("gpt-5.6-terra",      price(2.00, 12.00, 0.20, 2.50)),
    ("gpt-5.6-luna",       price(0.20, 1.20, 0.02, 0.25)),
    ("gpt-5.5",            price(5.00, 30.00, 0.50, 5.00)),
    ("gpt-5.4",            price(2.50, 15.00, 0.25, 2.50)),
    ("gpt-5.4-mini",       price(0.75, 4.50, 0.075, 0.75)),
    ("gpt-5.4-nano",       price(0.20, 1.25, 0.02, 0.20)),
    ("gpt-5.3-codex",      price(1.75, 14.00, 0.175, 1.75)),
    ("gpt-5.2-codex",      price(1.75, 14.00, 0.175, 1.75)),
    ("gpt-5.2",            price(1.75, 14.00, 0.175, 1.75)),
    ("gpt-5.1-codex-max",  price(1.25, 10.00, 0.125, 1.25)),
    ("gpt-5.1-codex",      price(1.25, 10.00, 0.125, 1.25)),
    ("gpt-5.1-codex-mini", price(0.25, 2.00, 0.025, 0.25)),
    ("gpt-5.1",            price(1.25, 10.00, 0.125, 1.25)),
    ("gpt-5-codex",        price(1.25, 10.00, 0.125, 1.25)), // shut down
    ("gpt-5",              price(1.25, 10.00, 0.125, 1.25)),
    ("gpt-5-mini",         price(0.25, 2.00, 0.025, 0.25)),
    ("gpt-5-nano",         price(0.05, 0.40, 0.005, 0.05)),
    ("codex-mini-latest",  price(1.50, 6.00, 0.375, 1.50)), // shut down
    ("o3",                 price(2.00, 8.00, 0.50, 2.00)),
    ("o4-mini",            price(1.10, 4.40, 0.275, 1.10)),
    ("gpt-4.1",            price(2.00, 8.00, 0.50, 2.00)),

    // Google (Gemini CLI). Source: https://ai.google.dev/gemini-api/docs/pricing, paid tier,
    // input/output as transcribed on 2026-10-07; context-caching rates as quoted from it by
    // third-party price tables (2026-03..07). cache_read is the context-caching price (hourly
    // cache storage is not counted). No cache-write charge: cache_write = input. Pro models cost
    // more for prompts over 200k tokens (not applied).
    ("gemini-3.8-flash",      price(0.75, 3.75, 0.075, 0.75)), // launch price through 2026-12-31; $1.50/$7.50 from 2027-01-01
    ("gemini-3.6-flash",      price(1.50, 7.50, 0.15, 1.50)),
    ("gemini-3.5-flash",      price(1.50, 9.00, 0.15, 1.50)),
    ("gemini-3.5-flash-lite", price(0.30, 2.50, 0.03, 0.30)),
    ("gemini-3.1-pro-preview", price(2.00, 12.00, 0.20, 2.00)),
    ("gemini-3.1-flash-lite", price(0.25, 1.50, 0.025, 0.25)),
    ("gemini-3-pro-preview",  price(2.00, 12.00, 0.20, 2.00)), // shut down 2026-03-09
    ("gemini-3-flash-preview", price(0.50, 3.00, 0.05, 0.50)),
    ("gemini-2.5-pro",        price(1.25, 10.00, 0.125, 1.25)),
    ("gemini-2.5-flash",      price(0.30, 2.50, 0.03, 0.30)),
    ("gemini-2.5-flash-lite", price(0.10, 0.40, 0.01, 0.10)),
];

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    fn table() -> PriceTable {
        PriceTable::embedded()
    }

    fn get(id: &str) -> Price {
        match table().lookup(id) {
            Some(p) => p,
            None => panic!("{id} is not in the embedded table"),
        }
    }

    #[test]
    fn estimate_claude_with_cache_reads_and_writes() {
        // Opus 4.8: $5 in, $25 out, $0.50 hits, $6.25 5-minute writes.
        let t = Tokens {
            input: 1_000_000,
            cached: 600_000,
            cache_write: 100_000,
            output: 50_000,
            ..Tokens::default()
        };
        // 300k uncached * 5 + 600k * 0.5 + 100k * 6.25 + 50k * 25 = 1.5 + 0.3 + 0.625 + 1.25
        assert!(close(get("claude-opus-4-8").estimate(&t), 3.675));
    }

    #[test]
    fn estimate_openai_counts_cached_input_once() {
        // GPT-5.1-Codex: $1.25 in, $0.125 cached, $10 out; cached is part of input.
        let p = get("gpt-5.1-codex");
        let t = Tokens {
            input: 200_000,
            cached: 150_000,
            cache_write: 0,
            output: 10_000,
            ..Tokens::default()
        };
        // 50k * 1.25 + 150k * 0.125 + 10k * 10 = 0.0625 + 0.01875 + 0.1
        assert!(close(p.estimate(&t), 0.18125));
        // Charging all 200k at the full rate and the cache on top would be 0.36875.
        assert!(p.estimate(&t) < 0.2);
    }

    #[test]
    fn estimate_gemini() {
        // Gemini 2.5 Pro: $1.25 in, $0.125 context cache, $10 out (thinking included).
        let t = Tokens {
            input: 120_000,
            cached: 100_000,
            cache_write: 0,
            output: 2_000,
            ..Tokens::default()
        };
        // 20k * 1.25 + 100k * 0.125 + 2k * 10 = 0.025 + 0.0125 + 0.02
        assert!(close(get("gemini-2.5-pro").estimate(&t), 0.0575));
    }

    #[test]
    fn estimate_never_goes_negative() {
        let p = price(1.0, 2.0, 0.5, 1.0);
        let t = Tokens {
            input: 10,
            cached: 30,
            cache_write: 20,
            output: 0,
            ..Tokens::default()
        };
        // No uncached input; the cache parts are billed as reported.
        assert!(close(p.estimate(&t), (30.0 * 0.5 + 20.0) / 1e6));
        assert!(close(p.estimate(&Tokens::default()), 0.0));
    }

    #[test]
    fn cache_rates_default_from_input() {
        let p = Price {
            input: 2.0,
            output: 8.0,
            cache_read: None,
            cache_write: None,
        };
        assert!(close(p.cache_read_rate(), 0.2));
        assert!(close(p.cache_write_rate(), 2.5));
        let explicit = price(2.0, 8.0, 0.5, 2.0);
        assert!(close(explicit.cache_read_rate(), 0.5));
        assert!(close(explicit.cache_write_rate(), 2.0));
    }

    #[test]
    fn config_entries_deserialize_with_defaults_and_reject_typos() {
        let p: Price = serde_json::from_str(r#"{"input": 3, "output": 15}"#).unwrap();
        assert_eq!(p.cache_read, None);
        assert_eq!(p.cache_write, None);
        let p: Price =
            serde_json::from_str(r#"{"input": 3, "output": 15, "cache_read": 0.3}"#).unwrap();
        assert_eq!(p.cache_read, Some(0.3));
        assert!(
            serde_json::from_str::<Price>(r#"{"input": 3, "output": 15, "cached": 1}"#).is_err()
        );
        assert!(serde_json::from_str::<Price>(r#"{"input": 3}"#).is_err());
    }

    #[test]
    fn validate_names_the_bad_field() {
        assert!(price(1.0, 2.0, 0.0, 0.0).validate().is_ok());
        let bad = |p: Price, field: &str| {
            let err = p.validate().unwrap_err();
            assert!(err.starts_with(field), "{err}");
        };
        bad(price(-1.0, 2.0, 0.1, 1.0), "input");
        bad(price(1.0, f64::NAN, 0.1, 1.0), "output");
        bad(price(1.0, 2.0, f64::INFINITY, 1.0), "cache_read");
        bad(price(1.0, 2.0, 0.1, -0.5), "cache_write");
    }

    #[test]
    fn lookup_exact_and_case_insensitive() {
        let t = table();
        assert_eq!(t.lookup("claude-opus-4-8"), Some(get("claude-opus-4-8")));
        assert_eq!(t.lookup("Claude-Opus-4-8"), Some(get("claude-opus-4-8")));
        assert_eq!(t.lookup("  GPT-5.1-Codex \n"), Some(get("gpt-5.1-codex")));
        // Exact ids come first: `-latest` here is part of the id, not something to strip.
        assert_eq!(
            t.lookup("codex-mini-latest"),
            Some(get("codex-mini-latest"))
        );
    }

    #[test]
    fn lookup_strips_a_provider_prefix() {
        let t = table();
        assert_eq!(
            t.lookup("anthropic/claude-sonnet-4-6"),
            Some(get("claude-sonnet-4-6"))
        );
        assert_eq!(t.lookup("openai/gpt-5"), Some(get("gpt-5")));
        assert_eq!(
            t.lookup("google/gemini-2.5-flash"),
            Some(get("gemini-2.5-flash"))
        );
        assert_eq!(
            t.lookup("models/gemini-2.5-pro"),
            Some(get("gemini-2.5-pro"))
        );
        assert_eq!(
            t.lookup("vertex_ai/gemini-3.8-flash"),
            Some(get("gemini-3.8-flash"))
        );
        assert_eq!(
            t.lookup("openrouter/anthropic/claude-opus-5"),
            Some(get("claude-opus-5"))
        );
        assert_eq!(t.lookup("anthropic/"), None);
    }

    #[test]
    fn lookup_strips_a_bracketed_suffix() {
        let t = table();
        assert_eq!(t.lookup("claude-opus-5[1m]"), Some(get("claude-opus-5")));
        assert_eq!(
            t.lookup("claude-sonnet-4-6[1M]"),
            Some(get("claude-sonnet-4-6"))
        );
        assert_eq!(t.lookup("[1m]"), None);
    }

    #[test]
    fn lookup_strips_a_trailing_date() {
        let t = table();
        assert_eq!(
            t.lookup("claude-haiku-4-5-20251001"),
            Some(get("claude-haiku-4-5"))
        );
        assert_eq!(
            t.lookup("claude-opus-4-20250514"),
            Some(get("claude-opus-4"))
        );
        assert_eq!(t.lookup("gpt-5-2025-08-07"), Some(get("gpt-5")));
        assert_eq!(t.lookup("gpt-6.1-sol-2026-09-29"), Some(get("gpt-6.1-sol")));
        // Not dates: wrong digit counts.
        assert_eq!(t.lookup("gpt-5-202508"), None);
        assert_eq!(t.lookup("gpt-5-2025-8-07"), None);
    }

    #[test]
    fn lookup_strips_latest() {
        let t = table();
        assert_eq!(
            t.lookup("claude-3-5-haiku-latest"),
            Some(get("claude-3-5-haiku"))
        );
        assert_eq!(t.lookup("o3-latest"), Some(get("o3")));
    }

    #[test]
    fn lookup_combines_the_steps() {
        let t = table();
        assert_eq!(
            t.lookup("Anthropic/claude-sonnet-4-5-20250929[1m]"),
            Some(get("claude-sonnet-4-5"))
        );
        assert_eq!(t.lookup("openai/o4-mini-2025-04-16"), Some(get("o4-mini")));
    }

    #[test]
    fn lookup_does_not_guess() {
        let t = table();
        let gpt5 = get("gpt-5");
        assert_ne!(get("gpt-5-mini"), gpt5);
        assert_ne!(get("gpt-5.1-codex-mini"), get("gpt-5.1-codex"));
        for unknown in [
            "",
            "gpt",
            "gpt-5-turbo",
            "gpt-5.1-codex-ultra",
            "gpt-5.9",
            "claude-opus",
            "opus",
            "sonnet",
            "claude-opus-4-9",
            "gemini-flash-latest",
            "llama-4",
        ] {
            assert_eq!(t.lookup(unknown), None, "{unknown}");
        }
    }

    #[test]
    fn overrides_replace_and_extend_case_insensitively() {
        let cheap = price(0.1, 0.2, 0.01, 0.1);
        let local = Price {
            input: 0.0,
            output: 0.0,
            cache_read: None,
            cache_write: None,
        };
        let t = table().with_overrides([
            ("Claude-Opus-4-8".to_string(), cheap),
            ("My-Local-Model".to_string(), local),
        ]);
        assert_eq!(t.lookup("claude-opus-4-8"), Some(cheap));
        assert_eq!(
            t.lookup("anthropic/claude-opus-4-8-20260101[1m]"),
            Some(cheap)
        );
        assert_eq!(t.lookup("my-local-model"), Some(local));
        assert_eq!(t.lookup("MY-LOCAL-MODEL"), Some(local));
        // Other embedded entries stay.
        assert_eq!(t.lookup("gpt-5"), Some(get("gpt-5")));
        assert_eq!(table().lookup("my-local-model"), None);
    }

    #[test]
    fn an_exact_override_wins_over_a_normalised_embedded_match() {
        let special = price(9.0, 9.0, 9.0, 9.0);
        let t = table().with_overrides([("claude-opus-4-5-20251101".to_string(), special)]);
        assert_eq!(t.lookup("claude-opus-4-5-20251101"), Some(special));
        assert_eq!(t.lookup("claude-opus-4-5"), Some(get("claude-opus-4-5")));
    }

    #[test]
    fn embedded_entries_are_valid_unique_normalised_ids() {
        let t = table();
        let mut seen = std::collections::HashSet::new();
        for (id, p) in EMBEDDED {
            assert!(seen.insert(*id), "duplicate id {id}");
            assert_eq!(*id, id.to_lowercase(), "{id} is not lowercase");
            assert!(
                !id.is_empty() && !id.contains(char::is_whitespace),
                "{id:?}"
            );
            assert!(
                !id.contains('/') && !id.contains('['),
                "{id} is not normalised"
            );
            if let Err(e) = p.validate() {
                panic!("{id}: {e}");
            }
            // Every rate is stated, and output costs at least as much as input.
            assert!(p.cache_read.is_some() && p.cache_write.is_some(), "{id}");
            assert!(
                p.output >= p.input && p.cache_read_rate() <= p.input,
                "{id}"
            );
            assert_eq!(t.lookup(id), Some(*p), "{id}");
        }
    }

    #[test]
    fn checked_is_a_date() {
        let d = PriceTable::CHECKED;
        assert_eq!(d.len(), 10);
        assert!(d.bytes().enumerate().all(|(i, b)| if i == 4 || i == 7 {
            b == b'-'
        } else {
            b.is_ascii_digit()
        }));
    }
}
