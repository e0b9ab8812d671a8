//! The order in which a pool of candidate targets is tried, per `providers.strategy`.
//! The first target of the order gets the request; the rest are its fallbacks.
//!
//! - `single` / `fallback`: config order.
//! - `weighted_round_robin`: smooth weighted round robin (nginx's algorithm) picks the
//!   first; over any run of decisions each target's share is exact to within one request.
//! - `latency`: lowest EWMA of recent response times first; targets never measured go
//!   first, and every [`EXPLORE_EVERY`]th decision tries the target measured longest ago,
//!   so a target that was slow or failing is noticed when it recovers.
//! - `cost`: cheapest first for the request's expected tokens under `pricing`; targets
//!   without `pricing` after every priced one.
//!
//! Pure: the state (WRR weights, decision counters, latencies) is passed in.

use std::cmp::Ordering;

use crate::config::schema::PricingSpec;

use super::metrics::LatencyView;

/// One decision in this many explores under `latency`.
pub const EXPLORE_EVERY: u64 = 10;

/// Completion tokens assumed by `cost` when the request sets no `max_tokens`.
pub const DEFAULT_EXPECTED_COMPLETION: u64 = 256;

/// Smooth weighted round robin over one pool: each decision adds every weight to its
/// target's current weight, picks the largest, and subtracts the total from it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SmoothWrr {
    current: Vec<f64>,
}

impl SmoothWrr {
    /// Picks an index into `weights`. Non-positive (and non-finite) weights are never
    /// picked; `None` when no weight is positive.
    pub fn pick(&mut self, weights: &[f64]) -> Option<usize> {
        if self.current.len() != weights.len() {
            self.current = vec![0.0; weights.len()];
        }
        let mut total = 0.0;
        let mut best: Option<(usize, f64)> = None;
        for (i, (&w, cur)) in weights.iter().zip(self.current.iter_mut()).enumerate() {
            if !(w.is_finite() && w > 0.0) {
                continue;
            }
            *cur += w;
            total += w;
            if best.is_none_or(|(_, b)| *cur > b) {
                best = Some((i, *cur));
            }
        }
        let (best, _) = best?;
        if let Some(c) = self.current.get_mut(best) {
            *c -= total;
        }
        Some(best)
    }
}

/// `weighted_round_robin`: the picked target first, the others in pool order.
pub fn weighted(pool: &[usize], weights: &[f64], wrr: &mut SmoothWrr) -> Vec<usize> {
    let Some(first) = wrr.pick(weights) else {
        return pool.to_vec();
    };
    let mut out = Vec::with_capacity(pool.len());
    out.extend(pool.get(first).copied());
    out.extend(
        pool.iter()
            .enumerate()
            .filter(|(i, _)| *i != first)
            .map(|(_, t)| *t),
    );
    out
}

/// `latency`: see the module doc. `views[i]` belongs to `pool[i]`.
pub fn latency(pool: &[usize], views: &[LatencyView], explore: bool) -> Vec<usize> {
    let mut ranked: Vec<(usize, LatencyView)> =
        pool.iter().copied().zip(views.iter().copied()).collect();
    // Unmeasured first (stable: config order), then fastest first.
    ranked.sort_by(|a, b| match (a.1.ewma_ms, b.1.ewma_ms) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (Some(x), Some(y)) => x.total_cmp(&y),
    });
    let all_measured = ranked.iter().all(|(_, v)| v.ewma_ms.is_some());
    if explore && all_measured && ranked.len() > 1 {
        // The target measured longest ago (never the current favourite) goes first.
        let stalest = ranked
            .iter()
            .enumerate()
            .skip(1)
            .min_by_key(|(_, (_, v))| v.last_sample)
            .map(|(i, _)| i);
        if let Some(i) = stalest {
            let t = ranked.remove(i);
            ranked.insert(0, t);
        }
    }
    ranked.into_iter().map(|(t, _)| t).collect()
}

/// USD for `prompt` and `completion` tokens at `pricing` (USD per 1M tokens).
pub fn expected_cost(pricing: &PricingSpec, prompt: u64, completion: u64) -> f64 {
    #[allow(clippy::cast_precision_loss)] // Token counts are far below 2^52.
    let (p, c) = (prompt as f64, completion as f64);
    (p * pricing.prompt + c * pricing.completion) / 1_000_000.0
}

/// `cost`: cheapest first; unpriced targets last; ties keep pool order.
pub fn cost(pool: &[usize], costs: &[Option<f64>]) -> Vec<usize> {
    let mut ranked: Vec<(usize, Option<f64>)> =
        pool.iter().copied().zip(costs.iter().copied()).collect();
    ranked.sort_by(|a, b| match (a.1, b.1) {
        (Some(x), Some(y)) => x.total_cmp(&y),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    });
    ranked.into_iter().map(|(t, _)| t).collect()
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    #[test]
    fn weighted_split_is_within_two_percent_over_10000_decisions() {
        for weights in [vec![5.0, 3.0, 2.0], vec![0.7, 0.2, 0.1], vec![1.0, 1.0]] {
            let mut wrr = SmoothWrr::default();
            let mut counts = vec![0u32; weights.len()];
            for _ in 0..10_000 {
                let i = wrr.pick(&weights).unwrap();
                counts[i] += 1;
            }
            let total: f64 = weights.iter().sum();
            for (c, w) in counts.iter().zip(&weights) {
                let share = f64::from(*c) / 10_000.0;
                assert!((share - w / total).abs() <= 0.02, "{weights:?}: {counts:?}");
                // Smooth WRR is in fact exact to within a request.
                assert!((f64::from(*c) - 10_000.0 * w / total).abs() <= 1.0);
            }
        }
    }

    #[test]
    fn smooth_wrr_interleaves_instead_of_bursting() {
        let mut wrr = SmoothWrr::default();
        let seq: Vec<usize> = (0..7)
            .map(|_| wrr.pick(&[5.0, 1.0, 1.0]).unwrap())
            .collect();
        assert_eq!(seq, [0, 0, 1, 0, 2, 0, 0]);
    }

    #[test]
    fn zero_weights_are_never_first_but_stay_as_fallbacks() {
        let mut wrr = SmoothWrr::default();
        for _ in 0..10 {
            assert_eq!(weighted(&[4, 7], &[0.0, 1.0], &mut wrr), [7, 4]);
        }
        assert_eq!(weighted(&[4, 7], &[0.0, 0.0], &mut wrr), [4, 7]);
    }

    #[test]
    fn latency_prefers_unmeasured_then_fastest_and_explores_the_stalest() {
        let t0 = Instant::now();
        let v = |ms: Option<f64>, age: u64| LatencyView {
            ewma_ms: ms,
            last_sample: ms.map(|_| t0 + Duration::from_secs(age)),
        };
        let views = [v(Some(300.0), 1), v(Some(20.0), 3), v(Some(90.0), 2)];
        assert_eq!(latency(&[0, 1, 2], &views, false), [1, 2, 0]);
        assert_eq!(latency(&[0, 1, 2], &views, true), [0, 1, 2]);
        let views = [v(Some(300.0), 1), v(None, 0)];
        assert_eq!(latency(&[0, 1], &views, false), [1, 0]);
        assert_eq!(latency(&[0, 1], &views, true), [1, 0]);
    }

    #[test]
    fn cost_orders_by_expected_price_for_the_request() {
        let cheap_prompt = PricingSpec {
            prompt: 1.0,
            completion: 20.0,
        };
        let cheap_completion = PricingSpec {
            prompt: 10.0,
            completion: 2.0,
        };
        // Long prompt, short answer: cheap prompt pricing wins; and the reverse.
        let long_prompt = [
            Some(expected_cost(&cheap_prompt, 10_000, 10)),
            Some(expected_cost(&cheap_completion, 10_000, 10)),
            None,
        ];
        assert_eq!(cost(&[0, 1, 2], &long_prompt), [0, 1, 2]);
        let long_answer = [
            Some(expected_cost(&cheap_prompt, 10, 10_000)),
            Some(expected_cost(&cheap_completion, 10, 10_000)),
            None,
        ];
        assert_eq!(cost(&[0, 1, 2], &long_answer), [1, 0, 2]);
        assert!((expected_cost(&cheap_prompt, 1_000_000, 0) - 1.0).abs() < 1e-12);
    }
}
