//! The per-target circuit breaker: `failure_threshold` consecutive failures (or a
//! `failure_rate` over the last `window` requests) open the circuit; an open target is
//! skipped; after `cooldown_seconds` exactly one probe request is let through (half-open),
//! whose outcome closes or re-opens the circuit.
//!
//! Time is passed in (`now`) so the state machine is tested without sleeping. The mutex
//! is held for a few field updates, never across I/O.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::config::schema::CircuitBreakerSpec;

pub const DEFAULT_FAILURE_THRESHOLD: u32 = 5;
pub const DEFAULT_WINDOW: u32 = 20;
pub const DEFAULT_COOLDOWN: Duration = Duration::from_secs(30);

/// Validated `providers.circuit_breaker`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BreakerConfig {
    pub enabled: bool,
    pub failure_threshold: u32,
    pub failure_rate: Option<f64>,
    pub window: u32,
    pub cooldown: Duration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig::from_spec(None)
    }
}

impl BreakerConfig {
    /// Defaults for absent fields; out-of-range values are clamped (`kt policy lint`
    /// reports them).
    pub fn from_spec(spec: Option<&CircuitBreakerSpec>) -> BreakerConfig {
        let spec = spec.cloned().unwrap_or_default();
        BreakerConfig {
            enabled: spec.enabled.unwrap_or(true),
            failure_threshold: spec
                .failure_threshold
                .unwrap_or(DEFAULT_FAILURE_THRESHOLD)
                .max(1),
            failure_rate: spec
                .failure_rate
                .filter(|r| r.is_finite() && *r > 0.0)
                .map(|r| r.min(1.0)),
            window: spec.window.unwrap_or(DEFAULT_WINDOW).clamp(1, 64),
            cooldown: spec
                .cooldown_seconds
                .filter(|s| s.is_finite() && *s >= 0.0)
                // Past what a `Duration` holds (1e20 s) the circuit simply stays open.
                .map_or(DEFAULT_COOLDOWN, |s| {
                    Duration::try_from_secs_f64(s).unwrap_or(Duration::MAX)
                }),
        }
    }
}

/// What the circuit says about a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CircuitState {
    Closed,
    Open,
    /// The cooldown is over: the next request is the probe.
    HalfOpen,
}

impl CircuitState {
    pub fn as_str(self) -> &'static str {
        match self {
            CircuitState::Closed => "closed",
            CircuitState::Open => "open",
            CircuitState::HalfOpen => "half_open",
        }
    }
}

/// Whether a request may go to the target now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permit {
    Allowed,
    /// This request is the half-open probe; its outcome decides the circuit.
    Probe,
    Rejected,
}

/// How an attempt ended, as far as the breaker cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The upstream answered (2xx, or a 4xx that is the request's fault).
    Success,
    /// Connect error, timeout, 5xx.
    Failure,
    /// Neither (429: the target works but is busy). A probe that gets it re-opens.
    Neutral,
}

#[derive(Debug, Default)]
struct Inner {
    consecutive: u32,
    /// The count the last success reset, in case that success turns out to be a failure.
    before_success: u32,
    /// Last outcomes, newest in bit 0, 1 = failure.
    history: u64,
    seen: u32,
    opened_at: Option<Instant>,
    probe_since: Option<Instant>,
    opens: u64,
}

/// One target's breaker.
#[derive(Debug, Default)]
pub struct Breaker {
    inner: Mutex<Inner>,
}

/// A copy of a breaker, for metrics.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BreakerSnapshot {
    pub state: CircuitState,
    pub consecutive_failures: u32,
    /// Times the circuit opened since start.
    pub opens: u64,
    /// Until the probe is allowed, when open.
    pub retry_in: Option<Duration>,
}

impl Breaker {
    pub fn state(&self, cfg: &BreakerConfig, now: Instant) -> CircuitState {
        Self::state_of(&self.lock(), cfg, now)
    }

    fn state_of(inner: &Inner, cfg: &BreakerConfig, now: Instant) -> CircuitState {
        let Some(opened) = inner.opened_at else {
            return CircuitState::Closed;
        };
        if !cfg.enabled {
            return CircuitState::Closed;
        }
        let cooled = now.saturating_duration_since(opened) >= cfg.cooldown;
        // A probe that never reported back (it cannot happen on kt's paths, but a stuck
        // flag must not keep the target out forever) is given up after a long while.
        let probing = inner
            .probe_since
            .is_some_and(|p| now.saturating_duration_since(p) < cfg.cooldown.max(MIN_PROBE));
        if cooled && !probing {
            CircuitState::HalfOpen
        } else {
            CircuitState::Open
        }
    }

    /// Whether a request could be let through now (without claiming the probe).
    pub fn is_available(&self, cfg: &BreakerConfig, now: Instant) -> bool {
        self.state(cfg, now) != CircuitState::Open
    }

    /// Asks to send a request; a half-open circuit hands out one probe.
    pub fn acquire(&self, cfg: &BreakerConfig, now: Instant) -> Permit {
        let mut inner = self.lock();
        match Self::state_of(&inner, cfg, now) {
            CircuitState::Closed => Permit::Allowed,
            CircuitState::Open => Permit::Rejected,
            CircuitState::HalfOpen => {
                inner.probe_since = Some(now);
                Permit::Probe
            }
        }
    }

    /// Records how a request that got a permit ended.
    pub fn record(&self, cfg: &BreakerConfig, permit: Permit, outcome: Outcome, now: Instant) {
        if !cfg.enabled {
            return;
        }
        let mut inner = self.lock();
        if permit == Permit::Probe {
            inner.probe_since = None;
            if outcome == Outcome::Success {
                *inner = Inner {
                    opens: inner.opens,
                    ..Inner::default()
                };
            } else {
                inner.opened_at = Some(now);
            }
            return;
        }
        let failed = match outcome {
            Outcome::Success => false,
            Outcome::Failure => true,
            Outcome::Neutral => return,
        };
        inner.history = (inner.history << 1) | u64::from(failed);
        inner.seen = inner.seen.saturating_add(1).min(cfg.window);
        if failed {
            inner.consecutive = inner.consecutive.saturating_add(1);
        } else {
            inner.before_success = inner.consecutive;
            inner.consecutive = 0;
        }
        Self::maybe_open(&mut inner, cfg, failed, now);
    }

    /// A request already recorded as a success failed after all (a stream that broke
    /// after its `200`): counted as a failure in place of that success.
    pub fn record_late_failure(&self, cfg: &BreakerConfig, now: Instant) {
        if !cfg.enabled {
            return;
        }
        let mut inner = self.lock();
        inner.consecutive = inner
            .consecutive
            .max(inner.before_success)
            .saturating_add(1);
        inner.before_success = 0;
        inner.history |= 1;
        Self::maybe_open(&mut inner, cfg, true, now);
    }

    fn maybe_open(inner: &mut Inner, cfg: &BreakerConfig, failed: bool, now: Instant) {
        if inner.opened_at.is_some() {
            // A request that started before the circuit opened does not extend the cooldown.
            return;
        }
        let mask = if cfg.window >= 64 {
            u64::MAX
        } else {
            (1u64 << cfg.window) - 1
        };
        let rate_tripped = cfg.failure_rate.is_some_and(|rate| {
            inner.seen >= cfg.window
                && f64::from((inner.history & mask).count_ones()) >= rate * f64::from(cfg.window)
        });
        if failed && (inner.consecutive >= cfg.failure_threshold || rate_tripped) {
            inner.opened_at = Some(now);
            inner.opens += 1;
        }
    }

    pub fn snapshot(&self, cfg: &BreakerConfig, now: Instant) -> BreakerSnapshot {
        let inner = self.lock();
        let state = Self::state_of(&inner, cfg, now);
        BreakerSnapshot {
            state,
            consecutive_failures: inner.consecutive,
            opens: inner.opens,
            retry_in: match (state, inner.opened_at) {
                (CircuitState::Open, Some(at)) => Some(
                    cfg.cooldown
                        .saturating_sub(now.saturating_duration_since(at)),
                ),
                _ => None,
            },
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// How long a probe is waited for before another one may go. Longer than any request.
const MIN_PROBE: Duration = Duration::from_secs(600);

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(threshold: u32, cooldown_ms: u64) -> BreakerConfig {
        BreakerConfig {
            failure_threshold: threshold,
            cooldown: Duration::from_millis(cooldown_ms),
            ..BreakerConfig::default()
        }
    }

    fn fail(b: &Breaker, c: &BreakerConfig, now: Instant) {
        let p = b.acquire(c, now);
        b.record(c, p, Outcome::Failure, now);
    }

    /// Found by the fuzz target `config` (testdata/fuzz/config/crash-huge-cooldown.yaml):
    /// `cooldown_seconds: 1e20` panicked building the breaker, on every request.
    #[test]
    fn a_cooldown_too_long_for_a_duration_keeps_the_circuit_open() {
        let spec = CircuitBreakerSpec {
            cooldown_seconds: Some(1e20),
            ..CircuitBreakerSpec::default()
        };
        let c = BreakerConfig::from_spec(Some(&spec));
        assert_eq!(c.cooldown, Duration::MAX);
        let b = Breaker::default();
        let t0 = Instant::now();
        for _ in 0..c.failure_threshold {
            fail(&b, &c, t0);
        }
        assert_eq!(
            b.state(&c, t0 + Duration::from_secs(3600)),
            CircuitState::Open
        );
        assert!(b.snapshot(&c, t0).retry_in.is_some());
    }

    #[test]
    fn opens_after_consecutive_failures_and_recovers_through_one_probe() {
        let c = cfg(3, 1000);
        let b = Breaker::default();
        let t0 = Instant::now();
        fail(&b, &c, t0);
        fail(&b, &c, t0);
        // A success resets the count.
        let p = b.acquire(&c, t0);
        b.record(&c, p, Outcome::Success, t0);
        fail(&b, &c, t0);
        fail(&b, &c, t0);
        assert_eq!(b.state(&c, t0), CircuitState::Closed);
        fail(&b, &c, t0);
        assert_eq!(b.state(&c, t0), CircuitState::Open);
        assert_eq!(b.acquire(&c, t0), Permit::Rejected);
        let t1 = t0 + Duration::from_millis(1000);
        assert_eq!(b.state(&c, t1), CircuitState::HalfOpen);
        assert_eq!(b.acquire(&c, t1), Permit::Probe);
        // Only one probe at a time.
        assert_eq!(b.acquire(&c, t1), Permit::Rejected);
        b.record(&c, Permit::Probe, Outcome::Failure, t1);
        assert_eq!(b.state(&c, t1), CircuitState::Open);
        let t2 = t1 + Duration::from_millis(1000);
        assert_eq!(b.acquire(&c, t2), Permit::Probe);
        b.record(&c, Permit::Probe, Outcome::Success, t2);
        assert_eq!(b.state(&c, t2), CircuitState::Closed);
        let s = b.snapshot(&c, t2);
        assert_eq!((s.opens, s.consecutive_failures), (1, 0));
    }

    #[test]
    fn streams_that_break_after_their_200_count_as_failures() {
        let c = cfg(3, 1000);
        let b = Breaker::default();
        let now = Instant::now();
        for _ in 0..3 {
            let p = b.acquire(&c, now);
            b.record(&c, p, Outcome::Success, now);
            assert_eq!(b.state(&c, now), CircuitState::Closed);
            b.record_late_failure(&c, now);
        }
        assert_eq!(b.state(&c, now), CircuitState::Open);
    }

    #[test]
    fn failure_rate_opens_without_consecutive_failures() {
        let c = BreakerConfig {
            failure_threshold: 100,
            failure_rate: Some(0.5),
            window: 10,
            ..BreakerConfig::default()
        };
        let b = Breaker::default();
        let now = Instant::now();
        for i in 0..9 {
            let p = b.acquire(&c, now);
            let o = if i % 2 == 0 {
                Outcome::Failure
            } else {
                Outcome::Success
            };
            b.record(&c, p, o, now);
        }
        assert_eq!(
            b.state(&c, now),
            CircuitState::Closed,
            "window not full yet"
        );
        fail(&b, &c, now);
        assert_eq!(b.state(&c, now), CircuitState::Open);
    }

    #[test]
    fn neutral_outcomes_and_a_disabled_breaker_change_nothing() {
        let c = cfg(1, 1000);
        let b = Breaker::default();
        let now = Instant::now();
        b.record(&c, Permit::Allowed, Outcome::Neutral, now);
        assert_eq!(b.state(&c, now), CircuitState::Closed);
        let off = BreakerConfig {
            enabled: false,
            ..c
        };
        fail(&b, &off, now);
        assert_eq!(b.state(&off, now), CircuitState::Closed);
        assert_eq!(b.state(&c, now), CircuitState::Closed);
    }

    #[test]
    fn spec_defaults_and_clamps() {
        let d = BreakerConfig::from_spec(None);
        assert_eq!(d.failure_threshold, 5);
        assert_eq!(d.cooldown, Duration::from_secs(30));
        let s = CircuitBreakerSpec {
            failure_threshold: Some(0),
            window: Some(1000),
            failure_rate: Some(3.0),
            cooldown_seconds: Some(0.25),
            enabled: None,
        };
        let c = BreakerConfig::from_spec(Some(&s));
        assert_eq!(
            (c.failure_threshold, c.window, c.failure_rate),
            (1, 64, Some(1.0))
        );
        assert_eq!(c.cooldown, Duration::from_millis(250));
    }
}
