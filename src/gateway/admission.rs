//! Admission of a chat request: rate limits (key and gateway scopes), budgets (reserve
//! now, settle with the real cost later) and the cost of a request from target pricing.

use std::sync::Arc;

use super::limits::{budget_headers, Limits, RateLimit, Reservation, Scope};
use super::State;
use crate::config::schema::{BudgetPeriod, PricingSpec};
use crate::config::Config;
use crate::openai::{ApiError, ChatRequest, Usage};
use crate::store::keys::KeyRecord;

/// Completion tokens assumed for a budget reservation when the request sets no limit.
pub const DEFAULT_RESERVED_COMPLETION_TOKENS: u64 = 1024;

/// What a request was admitted with; settle it once the usage is known.
#[derive(Debug, Default)]
pub struct Grant {
    scopes: Vec<Scope>,
    estimated_tokens: u64,
    reservations: Vec<Reservation>,
    pub headers: Vec<(String, String)>,
}

/// Prompt tokens of a request, estimated before the call (about 4 characters a token).
pub fn estimate_prompt_tokens(req: &ChatRequest) -> u64 {
    let chars: usize = req
        .messages
        .iter()
        .map(|m| {
            m.text_content().chars().count()
                + m.tool_calls
                    .iter()
                    .flatten()
                    .map(|c| c.input().len() + c.name().len())
                    .sum::<usize>()
        })
        .sum();
    (chars as u64).div_ceil(4) + 4 * req.messages.len() as u64
}

/// USD for `usage` at `pricing` (USD per 1M tokens).
pub fn cost(pricing: Option<&PricingSpec>, prompt: u64, completion: u64) -> Option<f64> {
    pricing.map(|p| (prompt as f64 * p.prompt + completion as f64 * p.completion) / 1_000_000.0)
}

fn now_secs() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Checks rate limits and reserves budget. `pricing` is that of the first candidate target.
pub fn admit(
    state: &State,
    config: &Config,
    key: Option<&KeyRecord>,
    req: &ChatRequest,
    pricing: Option<&PricingSpec>,
) -> Result<Grant, ApiError> {
    let mut scopes = Vec::new();
    if let Some(k) = key {
        scopes.push(Scope {
            id: format!("key:{}", k.name),
            label: "key",
            limit: RateLimit {
                rpm: k.rpm,
                tpm: k.tpm,
            },
        });
    }
    if let Some(org) = config.spec.gateway.rate_limits {
        scopes.push(Scope {
            id: "org".into(),
            label: "org",
            limit: RateLimit {
                rpm: org.rpm,
                tpm: org.tpm,
            },
        });
    }
    let estimated_tokens = estimate_prompt_tokens(req);
    let now = now_secs();
    let status = state.limits.admit(&scopes, estimated_tokens, now)?;
    let mut grant = Grant {
        scopes,
        estimated_tokens,
        ..Grant::default()
    };
    if let Some(s) = status {
        grant.headers.extend(s.headers());
    }
    let completion = req
        .max_output_tokens()
        .unwrap_or(DEFAULT_RESERVED_COMPLETION_TOKENS);
    let estimate = cost(pricing, estimated_tokens, completion).unwrap_or(0.0);
    let limits: &Arc<Limits> = &state.limits;
    if let Some(k) = key {
        if let Some(limit) = k.budget_usd {
            let id = format!("key:{}", k.name);
            let r = limits.reserve(&id, limit, estimate, || state.keys.spent_by_key(&k.name))?;
            grant.reservations.push(r);
        }
    }
    if let Some(b) = config.spec.gateway.budget {
        let (id, since) = period(b.period, now);
        let r = limits.reserve(&id, b.limit_usd, estimate, || state.keys.spent_since(since))?;
        grant.reservations.push(r);
    }
    for r in &grant.reservations {
        if let Some((spent, limit)) = limits.budget_status(r.id()) {
            let h = budget_headers(spent, limit);
            if !h.is_empty() {
                grant.headers.extend(h);
                break;
            }
        }
    }
    Ok(grant)
}

impl Grant {
    /// Records the real usage: corrects token windows and settles reservations.
    pub fn settle(self, state: &State, usage: Option<&Usage>, cost_usd: Option<f64>) {
        let Grant {
            scopes,
            estimated_tokens,
            reservations,
            ..
        } = self;
        if let Some(u) = usage {
            state
                .limits
                .correct_tokens(&scopes, estimated_tokens, u.total_tokens, now_secs());
        }
        for r in reservations {
            r.settle(cost_usd.unwrap_or(0.0));
        }
    }
}

/// The budget id of the current period and the period's start (ms), UTC calendar periods.
fn period(p: BudgetPeriod, now_secs: f64) -> (String, i64) {
    let days = (now_secs / 86_400.0).floor() as i64;
    match p {
        BudgetPeriod::Total => ("org:total".into(), 0),
        BudgetPeriod::Daily => (format!("org:day:{days}"), days * 86_400_000),
        BudgetPeriod::Weekly => {
            // 1970-01-01 was a Thursday: weeks start on Monday.
            let start = days - (days + 3).rem_euclid(7);
            (format!("org:week:{start}"), start * 86_400_000)
        }
        BudgetPeriod::Monthly => {
            let (y, m, d) = crate::civil::from_days(days);
            let start = days - (d as i64 - 1);
            (format!("org:month:{y}-{m:02}"), start * 86_400_000)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendar_periods() {
        // 2026-11-30 is a Monday.
        let monday = 20_787.0 * 86_400.0 + 3600.0;
        assert_eq!(period(BudgetPeriod::Weekly, monday).1, 20_787 * 86_400_000);
        assert_eq!(period(BudgetPeriod::Monthly, monday).0, "org:month:2026-11");
        assert_eq!(period(BudgetPeriod::Daily, monday).1, 20_787 * 86_400_000);
    }

    #[test]
    fn cost_from_pricing() {
        let p = PricingSpec {
            prompt: 2.5,
            completion: 10.0,
        };
        assert_eq!(cost(Some(&p), 1_000_000, 100_000), Some(3.5));
        assert_eq!(cost(None, 1, 1), None);
    }
}
