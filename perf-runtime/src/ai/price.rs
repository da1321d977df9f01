//! [`PriceTable`]: what a model's tokens cost, for the cost and savings
//! metrics.
//!
//! Prices are US dollars per million tokens, input (prompt) and output
//! (completion) apart, as providers publish them. A few well-known models
//! are built in (list prices of November 2026; they change, so set your own
//! with `PERF_AI_PRICES`); a model not in the table costs nothing in the
//! metrics rather than a guess.
//!
//! `PERF_AI_PRICES` replaces or adds entries:
//! `gpt-4o=2.5/10,gpt-4o-mini=0.15/0.6,llama3=0/0` (model `=` input `/`
//! output). A model matches an entry by its exact name, else by the longest
//! entry that begins it (`gpt-4o-2024-08-06` is priced as `gpt-4o`).
//!
//! Costs are counted in micro-dollars so that they fit the integer counters
//! of the `metrics` facade: `perf_ai_cost_microdollars_total` for what calls
//! cost, `perf_ai_saved_microdollars_total` for what cache hits saved.

use std::collections::HashMap;
use std::sync::OnceLock;

use super::{AiError, Usage};

/// The variable that sets prices.
pub const PERF_AI_PRICES: &str = "PERF_AI_PRICES";

/// Built in: (model, input $/1M tokens, output $/1M tokens).
const BUILT_IN: &[(&str, f64, f64)] = &[
    ("gpt-4", 30.0, 60.0),
    ("gpt-4-turbo", 10.0, 30.0),
    ("gpt-4o", 2.5, 10.0),
    ("gpt-4o-mini", 0.15, 0.6),
    ("gpt-4.1", 2.0, 8.0),
    ("gpt-4.1-mini", 0.4, 1.6),
    ("gpt-3.5-turbo", 0.5, 1.5),
    ("o3-mini", 1.1, 4.4),
    ("claude-3-5-sonnet", 3.0, 15.0),
    ("claude-3-5-haiku", 0.8, 4.0),
    ("text-embedding-3-small", 0.02, 0.0),
    ("text-embedding-3-large", 0.13, 0.0),
];

/// Dollars per million tokens of one model.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Price {
    /// Per million prompt tokens.
    pub input: f64,
    /// Per million completion tokens.
    pub output: f64,
}

impl Price {
    /// What `usage` costs at this price, in micro-dollars.
    pub fn cost_microdollars(&self, usage: Usage) -> u64 {
        // $/1M tokens × tokens = micro-dollars.
        let micros =
            self.input * usage.prompt_tokens as f64 + self.output * usage.completion_tokens as f64;
        micros.round() as u64
    }
}

/// Prices by model name.
#[derive(Clone, Debug, Default)]
pub struct PriceTable {
    prices: HashMap<String, Price>,
}

impl PriceTable {
    /// The built-in prices only.
    pub fn built_in() -> Self {
        let prices = BUILT_IN
            .iter()
            .map(|&(model, input, output)| (model.to_owned(), Price { input, output }))
            .collect();
        PriceTable { prices }
    }

    /// The built-in prices with `PERF_AI_PRICES` applied.
    ///
    /// # Errors
    ///
    /// [`AiError::InvalidEnv`] naming the variable when its value is not a
    /// list of `model=input/output`.
    pub fn from_env() -> Result<Self, AiError> {
        let mut table = PriceTable::built_in();
        if let Ok(raw) = std::env::var(PERF_AI_PRICES) {
            table.apply(&raw)?;
        }
        Ok(table)
    }

    /// The process's table: [`from_env`](Self::from_env) on first use; a
    /// bad `PERF_AI_PRICES` is logged once and the built-in table used.
    pub fn global() -> &'static PriceTable {
        static TABLE: OnceLock<PriceTable> = OnceLock::new();
        TABLE.get_or_init(|| {
            PriceTable::from_env().unwrap_or_else(|error| {
                tracing::warn!(%error, "using the built-in AI prices");
                PriceTable::built_in()
            })
        })
    }

    /// Sets the price of `model`.
    #[must_use]
    pub fn with(mut self, model: impl Into<String>, price: Price) -> Self {
        self.prices.insert(model.into(), price);
        self
    }

    /// Applies `model=input/output` entries separated by commas.
    fn apply(&mut self, raw: &str) -> Result<(), AiError> {
        const EXPECTED: &str = "comma-separated `model=input/output` in dollars per million tokens, e.g. `gpt-4o=2.5/10,llama3=0/0`";
        for entry in raw.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let invalid = || AiError::InvalidEnv {
                variable: PERF_AI_PRICES.to_owned(),
                expected: EXPECTED,
                found: entry.to_owned(),
            };
            let (model, prices) = entry.split_once('=').ok_or_else(invalid)?;
            let (input, output) = prices.split_once('/').ok_or_else(invalid)?;
            let parse = |v: &str| {
                v.trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|p| p.is_finite() && *p >= 0.0)
            };
            let (Some(input), Some(output)) = (parse(input), parse(output)) else {
                return Err(invalid());
            };
            let model = model.trim();
            if model.is_empty() {
                return Err(invalid());
            }
            self.prices
                .insert(model.to_owned(), Price { input, output });
        }
        Ok(())
    }

    /// The price of `model`: its own entry, else the longest entry that
    /// begins its name.
    pub fn price(&self, model: &str) -> Option<Price> {
        if let Some(price) = self.prices.get(model) {
            return Some(*price);
        }
        self.prices
            .iter()
            .filter(|(name, _)| model.starts_with(name.as_str()))
            .max_by_key(|(name, _)| name.len())
            .map(|(_, price)| *price)
    }

    /// What `usage` of `model` costs, in micro-dollars (0 when unpriced).
    pub fn cost_microdollars(&self, model: &str, usage: Usage) -> u64 {
        self.price(model)
            .map_or(0, |price| price.cost_microdollars(usage))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(prompt_tokens: u64, completion_tokens: u64) -> Usage {
        Usage {
            prompt_tokens,
            completion_tokens,
        }
    }

    #[test]
    fn costs_follow_the_published_price_per_million() {
        let table = PriceTable::built_in();
        // 1,000 prompt tokens at $30/1M + 500 completion at $60/1M = $0.06.
        assert_eq!(table.cost_microdollars("gpt-4", usage(1000, 500)), 60_000);
        assert_eq!(
            table.cost_microdollars("unknown-model", usage(1000, 500)),
            0
        );
    }

    #[test]
    fn dated_model_names_take_the_longest_matching_entry() {
        let table = PriceTable::built_in();
        assert_eq!(
            table.price("gpt-4o-mini-2024-07-18"),
            table.price("gpt-4o-mini")
        );
        assert_eq!(table.price("gpt-4o-2024-08-06"), table.price("gpt-4o"));
    }

    #[test]
    fn entries_from_the_variable_replace_and_add() {
        let mut table = PriceTable::built_in();
        table.apply("gpt-4=1/2, llama3=0/0").unwrap();
        assert_eq!(
            table.price("gpt-4"),
            Some(Price {
                input: 1.0,
                output: 2.0
            })
        );
        assert_eq!(table.cost_microdollars("llama3:8b", usage(10, 10)), 0);
    }

    #[test]
    fn a_bad_entry_names_the_variable_and_the_form() {
        let mut table = PriceTable::built_in();
        for bad in ["gpt-4", "gpt-4=1", "gpt-4=a/b", "=1/2", "gpt-4=-1/2"] {
            let error = table.apply(bad).unwrap_err().to_string();
            assert!(error.contains(PERF_AI_PRICES), "{error}");
            assert!(error.contains("model=input/output"), "{error}");
        }
    }
}
