//! Rate limits (requests and tokens per minute, per key and for the whole gateway) and
//! budgets (USD, per key and per gateway) with an atomic reserve-then-settle, so
//! concurrent requests cannot overspend.
//!
//! Rate windows are sliding-window counters over two fixed minutes: the estimate is
//! `previous × (1 − elapsed fraction) + current`, smooth at minute boundaries without
//! keeping a log of every request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use crate::openai::ApiError;

/// Limits that apply to one scope.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RateLimit {
    pub rpm: Option<u64>,
    pub tpm: Option<u64>,
}

impl RateLimit {
    pub fn is_empty(&self) -> bool {
        self.rpm.is_none() && self.tpm.is_none()
    }
}

#[derive(Debug, Default, Clone, Copy)]
struct Window {
    minute: u64,
    cur_req: f64,
    prev_req: f64,
    cur_tok: f64,
    prev_tok: f64,
}

impl Window {
    fn roll(&mut self, minute: u64) {
        if minute == self.minute {
            return;
        }
        if minute == self.minute + 1 {
            self.prev_req = self.cur_req;
            self.prev_tok = self.cur_tok;
        } else {
            self.prev_req = 0.0;
            self.prev_tok = 0.0;
        }
        self.cur_req = 0.0;
        self.cur_tok = 0.0;
        self.minute = minute;
    }

    fn used(&self, frac: f64) -> (f64, f64) {
        (
            self.prev_req * (1.0 - frac) + self.cur_req,
            self.prev_tok * (1.0 - frac) + self.cur_tok,
        )
    }
}

/// What the `X-RateLimit-*` headers report.
#[derive(Debug, Clone, PartialEq)]
pub struct RateStatus {
    pub scope: &'static str,
    pub limit: RateLimit,
    pub remaining_requests: Option<u64>,
    pub remaining_tokens: Option<u64>,
    pub reset_seconds: u64,
}

impl RateStatus {
    pub fn headers(&self) -> Vec<(String, String)> {
        let mut h = Vec::new();
        if let Some(l) = self.limit.rpm {
            h.push(("X-RateLimit-Limit-Requests".into(), l.to_string()));
            h.push((
                "X-RateLimit-Remaining-Requests".into(),
                self.remaining_requests.unwrap_or(0).to_string(),
            ));
        }
        if let Some(l) = self.limit.tpm {
            h.push(("X-RateLimit-Limit-Tokens".into(), l.to_string()));
            h.push((
                "X-RateLimit-Remaining-Tokens".into(),
                self.remaining_tokens.unwrap_or(0).to_string(),
            ));
        }
        h.push(("X-RateLimit-Reset".into(), self.reset_seconds.to_string()));
        h.push(("X-RateLimit-Scope".into(), self.scope.into()));
        h
    }
}

#[derive(Debug, Default)]
struct BudgetState {
    limit: f64,
    spent: f64,
    reserved: f64,
}

/// All limit state of a gateway. Short critical sections only; never held across I/O.
#[derive(Debug, Default)]
pub struct Limits {
    windows: Mutex<HashMap<String, Window>>,
    budgets: Mutex<HashMap<String, BudgetState>>,
}

/// A scope to check: a key (`key:<name>`) or the whole gateway (`org`).
#[derive(Debug, Clone)]
pub struct Scope {
    pub id: String,
    pub label: &'static str,
    pub limit: RateLimit,
}

impl Limits {
    /// Admits a request of `tokens` estimated tokens under every scope, or answers 429.
    /// Returns the status of the scope to report in headers (the first one with limits).
    pub fn admit(
        &self,
        scopes: &[Scope],
        tokens: u64,
        now_secs: f64,
    ) -> Result<Option<RateStatus>, ApiError> {
        let minute = (now_secs / 60.0) as u64;
        let frac = (now_secs % 60.0) / 60.0;
        let reset = (60.0 - now_secs % 60.0).ceil() as u64;
        let mut windows = self.windows.lock().unwrap_or_else(PoisonError::into_inner);
        // Check every scope first, so a rejected request counts nowhere.
        for s in scopes.iter().filter(|s| !s.limit.is_empty()) {
            let w = windows.entry(s.id.clone()).or_default();
            w.roll(minute);
            let (req, tok) = w.used(frac);
            let over_requests = s.limit.rpm.is_some_and(|l| req + 1.0 > l as f64);
            let over_tokens = s.limit.tpm.is_some_and(|l| tok + tokens as f64 > l as f64);
            if over_requests || over_tokens {
                let what = if over_requests { "requests" } else { "tokens" };
                let limit = if over_requests {
                    s.limit.rpm
                } else {
                    s.limit.tpm
                }
                .unwrap_or(0);
                let mut e = ApiError::new(
                    429,
                    what,
                    Some("rate_limit_exceeded"),
                    format!(
                        "Rate limit reached for {} ({limit} {what} per minute). Please try again in {reset}s.",
                        if s.label == "key" { "this gateway key" } else { "this gateway" }
                    ),
                );
                e.retry_after = Some(reset.max(1) as f64);
                return Err(e);
            }
        }
        let mut report = None;
        for s in scopes.iter().filter(|s| !s.limit.is_empty()) {
            let w = windows.entry(s.id.clone()).or_default();
            w.cur_req += 1.0;
            w.cur_tok += tokens as f64;
            let (req, tok) = w.used(frac);
            if report.is_none() {
                report = Some(RateStatus {
                    scope: s.label,
                    limit: s.limit,
                    remaining_requests: s.limit.rpm.map(|l| (l as f64 - req).max(0.0) as u64),
                    remaining_tokens: s.limit.tpm.map(|l| (l as f64 - tok).max(0.0) as u64),
                    reset_seconds: reset,
                });
            }
        }
        Ok(report)
    }

    /// Corrects a scope's token count once the real usage is known.
    pub fn correct_tokens(&self, scopes: &[Scope], estimated: u64, actual: u64, now_secs: f64) {
        let minute = (now_secs / 60.0) as u64;
        let mut windows = self.windows.lock().unwrap_or_else(PoisonError::into_inner);
        for s in scopes.iter().filter(|s| s.limit.tpm.is_some()) {
            if let Some(w) = windows.get_mut(&s.id) {
                w.roll(minute);
                w.cur_tok = (w.cur_tok + actual as f64 - estimated as f64).max(0.0);
            }
        }
    }

    /// Reserves `estimate` USD under a budget, loading what was already spent with
    /// `load_spent` the first time the budget is seen.
    pub fn reserve(
        self: &Arc<Self>,
        id: &str,
        limit: f64,
        estimate: f64,
        load_spent: impl FnOnce() -> f64,
    ) -> Result<Reservation, ApiError> {
        let mut budgets = self.budgets.lock().unwrap_or_else(PoisonError::into_inner);
        let b = budgets
            .entry(id.to_string())
            .or_insert_with(|| BudgetState {
                limit,
                spent: load_spent(),
                reserved: 0.0,
            });
        b.limit = limit;
        if b.spent + b.reserved + estimate > limit || b.spent >= limit {
            let mut e = ApiError::new(
                429,
                "insufficient_quota",
                Some("budget_exceeded"),
                format!(
                    "Budget exhausted: ${:.4} of ${limit:.2} spent{}.",
                    b.spent,
                    if b.reserved > 0.0 {
                        " with more reserved by requests in flight"
                    } else {
                        ""
                    }
                ),
            );
            e.retryable = Some(false);
            return Err(e);
        }
        b.reserved += estimate;
        Ok(Reservation {
            limits: self.clone(),
            id: id.to_string(),
            estimate,
            settled: false,
        })
    }

    /// `(spent, limit)` of a budget.
    pub fn budget_status(&self, id: &str) -> Option<(f64, f64)> {
        let budgets = self.budgets.lock().unwrap_or_else(PoisonError::into_inner);
        budgets.get(id).map(|b| (b.spent + b.reserved, b.limit))
    }
}

/// Money held for a request in flight; settled with the real cost (or released on drop).
#[derive(Debug)]
pub struct Reservation {
    limits: Arc<Limits>,
    id: String,
    estimate: f64,
    settled: bool,
}

impl Reservation {
    pub fn settle(mut self, actual: f64) {
        self.finish(actual);
    }

    fn finish(&mut self, actual: f64) {
        if self.settled {
            return;
        }
        self.settled = true;
        let mut budgets = self
            .limits
            .budgets
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(b) = budgets.get_mut(&self.id) {
            b.reserved = (b.reserved - self.estimate).max(0.0);
            b.spent += actual.max(0.0);
        }
    }

    pub fn id(&self) -> &str {
        &self.id
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        // A request that ended without a known cost releases what it held.
        self.finish(0.0);
    }
}

/// `X-Budget-*` headers once more than 80 % of a budget is used.
pub fn budget_headers(spent: f64, limit: f64) -> Vec<(String, String)> {
    if limit <= 0.0 || spent < 0.8 * limit {
        return Vec::new();
    }
    vec![
        (
            "X-Budget-Remaining-USD".into(),
            format!("{:.4}", (limit - spent).max(0.0)),
        ),
        ("X-Budget-Limit-USD".into(), format!("{limit:.2}")),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(rpm: Option<u64>, tpm: Option<u64>) -> Vec<Scope> {
        vec![Scope {
            id: "key:a".into(),
            label: "key",
            limit: RateLimit { rpm, tpm },
        }]
    }

    #[test]
    fn requests_per_minute_are_enforced_and_recover() {
        let l = Limits::default();
        let s = key(Some(3), None);
        for i in 0..3 {
            let st = l.admit(&s, 10, 60.0 * 100.0 + 1.0).unwrap().unwrap();
            assert_eq!(st.remaining_requests, Some(2 - i));
        }
        let e = l.admit(&s, 10, 60.0 * 100.0 + 2.0).unwrap_err();
        assert_eq!(e.status, 429);
        assert_eq!(e.code_str(), Some("rate_limit_exceeded"));
        assert!(e.retry_after.unwrap() >= 1.0);
        // Two minutes later the window is empty again.
        assert!(l.admit(&s, 10, 60.0 * 102.0 + 1.0).is_ok());
    }

    #[test]
    fn tokens_are_estimated_then_corrected() {
        let l = Limits::default();
        let s = key(None, Some(100));
        l.admit(&s, 60, 6000.0).unwrap();
        assert!(l.admit(&s, 60, 6000.0).is_err());
        l.correct_tokens(&s, 60, 10, 6000.0);
        assert!(l.admit(&s, 60, 6000.0).is_ok());
    }

    #[test]
    fn concurrent_reservations_never_overspend() {
        let l = Arc::new(Limits::default());
        let handles: Vec<_> = (0..50)
            .map(|_| {
                let l = l.clone();
                std::thread::spawn(move || match l.reserve("key:a", 10.0, 1.0, || 0.0) {
                    Ok(r) => {
                        std::thread::sleep(std::time::Duration::from_millis(5));
                        r.settle(1.0);
                        true
                    }
                    Err(_) => false,
                })
            })
            .collect();
        let ok = handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .filter(|x| *x)
            .count();
        assert_eq!(ok, 10);
        assert_eq!(l.budget_status("key:a"), Some((10.0, 10.0)));
    }

    #[test]
    fn dropped_reservation_releases_its_hold() {
        let l = Arc::new(Limits::default());
        drop(l.reserve("org", 1.0, 0.9, || 0.0).unwrap());
        assert!(l.reserve("org", 1.0, 0.9, || 0.0).is_ok());
        assert!(budget_headers(0.85, 1.0).len() == 2 && budget_headers(0.5, 1.0).is_empty());
    }
}
