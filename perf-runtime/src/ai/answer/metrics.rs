//! What the AI cache counts. Labels are bounded: the function's name, the
//! attribute's provider and model, the hit kind and the guard's reasons;
//! never a prompt or a scope.

use std::sync::{Once, OnceLock};

use metrics::Counter;

use super::{AiAnswer, AiSpec, Canonical};
use crate::ai::{Price, PriceTable, Usage};

const REQUESTS: &str = "perf_ai_cache_requests_total";
const REFUSALS: &str = "perf_ai_cache_guard_refusals_total";
const NOT_ADMITTED: &str = "perf_ai_cache_not_admitted_total";
const SAVED_TOKENS: &str = "perf_ai_saved_tokens_total";
const SAVED_MONEY: &str = "perf_ai_saved_microdollars_total";
const SIMILARITY: &str = "perf_ai_cache_hit_similarity";
const SYNC_ERRORS: &str = "perf_ai_cache_backend_errors_total";

/// Which tier served a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HitKind {
    /// The same prompt and context, from L1 or L2 (or a call made at the
    /// same moment by another caller of the same prompt).
    Exact,
    /// A cached prompt close enough in meaning, in the same partition.
    Semantic,
    /// Neither: the body ran.
    Miss,
}

impl HitKind {
    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            HitKind::Exact => "exact",
            HitKind::Semantic => "semantic",
            HitKind::Miss => "miss",
        }
    }
}

fn describe() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        metrics::describe_counter!(
            REQUESTS,
            "Calls of #[ai_optimized] functions by how they were served (exact, semantic, miss)."
        );
        metrics::describe_counter!(
            REFUSALS,
            "Semantic matches above the threshold refused by the false-hit guard, by reason."
        );
        metrics::describe_counter!(
            NOT_ADMITTED,
            "Answers not cached, by reason (tool_calls, incomplete_stream)."
        );
        metrics::describe_counter!(
            SAVED_TOKENS,
            "Tokens that cache hits did not spend, by hit kind (the cached answer's usage, else an estimate)."
        );
        metrics::describe_counter!(
            SAVED_MONEY,
            "Money that cache hits did not spend, in micro-dollars: the answering model's price (else the function's model's) from the price table (PERF_AI_PRICES)."
        );
        metrics::describe_histogram!(
            SIMILARITY,
            "Similarity of the cached prompt that served a semantic hit."
        );
        metrics::describe_counter!(
            SYNC_ERRORS,
            "Redis failures of the semantic cache's shared entries (the call went on without them)."
        );
    });
}

/// The counters of one function, registered once the metrics recorder is
/// settled: a hit then costs atomic adds, not label lookups.
pub(crate) struct SiteCounters {
    requests: [Counter; 3],
    saved_tokens: [Counter; 2],
    saved_money: [Counter; 2],
    /// The price of the function's model, looked up once.
    price: Option<Price>,
    /// The first answering model other than the function's, and its price:
    /// a site asks one model at a time, so this spares most hits a table
    /// search (a prefix scan for dated names), with no lock to take.
    answering: OnceLock<(Box<str>, Option<Price>)>,
}

impl SiteCounters {
    fn register(spec: &AiSpec) -> Self {
        describe();
        let request = |kind: HitKind| metrics::counter!(REQUESTS, "function" => spec.name, "provider" => spec.provider, "model" => spec.model, "outcome" => kind.as_str());
        let tokens = |kind: HitKind| metrics::counter!(SAVED_TOKENS, "provider" => spec.provider, "model" => spec.model, "kind" => kind.as_str());
        let money = |kind: HitKind| metrics::counter!(SAVED_MONEY, "provider" => spec.provider, "model" => spec.model, "kind" => kind.as_str());
        SiteCounters {
            requests: [HitKind::Exact, HitKind::Semantic, HitKind::Miss].map(request),
            saved_tokens: [HitKind::Exact, HitKind::Semantic].map(tokens),
            saved_money: [HitKind::Exact, HitKind::Semantic].map(money),
            price: PriceTable::global().price(spec.model),
            answering: OnceLock::new(),
        }
    }

    /// The price of a hit answered by `model`: that model's, else the
    /// function's own.
    fn price_of(&self, spec: &AiSpec, model: Option<&str>) -> Option<Price> {
        let Some(model) = model.filter(|model| *model != spec.model) else {
            return self.price;
        };
        let look_up = || PriceTable::global().price(model).or(self.price);
        let (known, price) = self.answering.get_or_init(|| (model.into(), look_up()));
        if **known == *model { *price } else { look_up() }
    }
}

/// Where a site keeps its counters.
#[derive(Default)]
pub(crate) struct SiteMetrics(OnceLock<SiteCounters>);

impl SiteMetrics {
    fn counters(&self, spec: &AiSpec) -> Option<&SiteCounters> {
        if let Some(counters) = self.0.get() {
            return Some(counters);
        }
        // Handles taken before the recorder is installed would point to
        // nothing: wait for it.
        crate::monitor::recorder::settled()
            .then(|| self.0.get_or_init(|| SiteCounters::register(spec)))
    }

    /// Counts one served call; a hit also counts what it saved.
    pub(crate) fn served<T: AiAnswer>(
        &self,
        spec: &AiSpec,
        kind: HitKind,
        answer: Option<&T>,
        canonical: &Canonical,
    ) {
        let Some(counters) = self.counters(spec) else {
            return;
        };
        let slot = match kind {
            HitKind::Exact => 0,
            HitKind::Semantic => 1,
            HitKind::Miss => 2,
        };
        counters.requests[slot].increment(1);
        let (true, Some(answer)) = (slot < 2, answer) else {
            return;
        };
        let usage = answer.usage().unwrap_or_else(|| Usage {
            prompt_tokens: canonical.prompt_tokens,
            completion_tokens: crate::ai::chat::estimate_tokens(&answer.text()),
        });
        counters.saved_tokens[slot].increment(usage.total());
        if let Some(price) = counters.price_of(spec, answer.model()) {
            counters.saved_money[slot].increment(price.cost_microdollars(usage));
        }
    }
}

pub(crate) fn semantic_similarity(spec: &AiSpec, similarity: f32) {
    metrics::histogram!(SIMILARITY, "function" => spec.name).record(f64::from(similarity));
}

pub(crate) fn refused(spec: &AiSpec, reason: &'static str) {
    describe();
    metrics::counter!(REFUSALS, "function" => spec.name, "reason" => reason).increment(1);
}

pub(crate) fn not_admitted(spec: &AiSpec, reason: &'static str) {
    describe();
    metrics::counter!(NOT_ADMITTED, "function" => spec.name, "reason" => reason).increment(1);
}

#[cfg_attr(not(feature = "redis"), allow(dead_code))]
pub(crate) fn backend_error(spec: &AiSpec, command: &str, reason: &str) {
    describe();
    metrics::counter!(SYNC_ERRORS, "function" => spec.name).increment(1);
    crate::cache::rate_limited_warn(command, reason);
}
