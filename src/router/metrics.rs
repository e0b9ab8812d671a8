//! Per-target request statistics: counters, recent latencies (for percentiles) and the
//! latency EWMA the `latency` strategy ranks by.
//!
//! Counters are atomics; the latency window sits behind a mutex held only to push one
//! sample or to copy the window out. Nothing here does I/O.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Latencies kept for percentiles.
const WINDOW: usize = 1024;

/// Weight of a new sample in the EWMA.
pub const EWMA_ALPHA: f64 = 0.3;

/// What a failed attempt counts as for the `latency` strategy: failing fast (connection
/// refused) must not look fast.
pub const FAILURE_PENALTY: Duration = Duration::from_secs(10);

#[derive(Debug, Default)]
struct Latencies {
    recent: VecDeque<f32>,
    ewma_ms: Option<f64>,
    last_failed: bool,
    last_sample: Option<Instant>,
}

/// Counters and latencies of one target.
#[derive(Debug, Default)]
pub struct TargetStats {
    requests: AtomicU64,
    errors: AtomicU64,
    latencies: Mutex<Latencies>,
}

/// A copy of a target's statistics.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StatsSnapshot {
    pub requests: u64,
    pub errors: u64,
    pub samples: usize,
    pub p50_ms: Option<f64>,
    pub p90_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub ewma_ms: Option<f64>,
}

/// What the `latency` strategy needs of a target.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LatencyView {
    pub ewma_ms: Option<f64>,
    pub last_sample: Option<Instant>,
}

impl TargetStats {
    /// A request answered (any status that says the upstream works) after `latency`
    /// (time to the response head).
    pub fn record_success(&self, latency: Duration, now: Instant) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let ms = latency.as_secs_f64() * 1000.0;
        let mut l = self.lock();
        l.ewma_ms = Some(match l.ewma_ms {
            // After a failure (or with no history), the fresh sample is the truth: one
            // good answer is enough for a recovered target to compete again.
            Some(prev) if !l.last_failed => EWMA_ALPHA * ms + (1.0 - EWMA_ALPHA) * prev,
            _ => ms,
        });
        l.last_failed = false;
        l.last_sample = Some(now);
        if l.recent.len() == WINDOW {
            l.recent.pop_front();
        }
        #[allow(clippy::cast_possible_truncation)] // Milliseconds fit an f32 comfortably.
        l.recent.push_back(ms as f32);
    }

    /// A failed attempt (connect error, timeout, retryable status) after `elapsed`.
    pub fn record_failure(&self, elapsed: Duration, now: Instant) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.errors.fetch_add(1, Ordering::Relaxed);
        let ms = elapsed.max(FAILURE_PENALTY).as_secs_f64() * 1000.0;
        let mut l = self.lock();
        l.ewma_ms = Some(l.ewma_ms.map_or(ms, |prev| prev.max(ms)));
        l.last_failed = true;
        l.last_sample = Some(now);
    }

    /// A request already counted as a success failed after all (a broken stream).
    pub fn record_late_failure(&self) {
        self.errors.fetch_add(1, Ordering::Relaxed);
    }

    /// An answer that says nothing about the target's speed or health (e.g. the request
    /// was bad): counted, not sampled.
    pub fn record_other(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }

    pub fn latency_view(&self) -> LatencyView {
        let l = self.lock();
        LatencyView {
            ewma_ms: l.ewma_ms,
            last_sample: l.last_sample,
        }
    }

    pub fn snapshot(&self) -> StatsSnapshot {
        let (mut sorted, ewma_ms) = {
            let l = self.lock();
            (l.recent.iter().copied().collect::<Vec<f32>>(), l.ewma_ms)
        };
        sorted.sort_by(f32::total_cmp);
        StatsSnapshot {
            requests: self.requests.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            samples: sorted.len(),
            p50_ms: percentile(&sorted, 50.0),
            p90_ms: percentile(&sorted, 90.0),
            p99_ms: percentile(&sorted, 99.0),
            ewma_ms,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Latencies> {
        // A panic while holding this lock cannot leave the numbers inconsistent enough to
        // matter; keep serving.
        self.latencies
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// Nearest-rank percentile of sorted samples.
pub fn percentile(sorted: &[f32], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    let idx = rank.clamp(1, sorted.len()) - 1;
    sorted.get(idx).map(|v| f64::from(*v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_nearest_rank() {
        let v: Vec<f32> = (1..=100).map(|i| i as f32).collect();
        assert_eq!(percentile(&v, 50.0), Some(50.0));
        assert_eq!(percentile(&v, 90.0), Some(90.0));
        assert_eq!(percentile(&v, 99.0), Some(99.0));
        assert_eq!(percentile(&[7.0], 99.0), Some(7.0));
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn ewma_blends_successes_and_a_recovery_resets_it() {
        let s = TargetStats::default();
        let now = Instant::now();
        s.record_success(Duration::from_millis(100), now);
        assert_eq!(s.latency_view().ewma_ms, Some(100.0));
        s.record_success(Duration::from_millis(200), now);
        let e = s.latency_view().ewma_ms.unwrap();
        assert!((e - 130.0).abs() < 1e-9, "{e}");
        // A fast failure still ranks the target behind slow working ones.
        s.record_failure(Duration::from_millis(1), now);
        assert!(s.latency_view().ewma_ms.unwrap() >= 10_000.0);
        s.record_success(Duration::from_millis(20), now);
        assert_eq!(s.latency_view().ewma_ms, Some(20.0));
        let snap = s.snapshot();
        assert_eq!((snap.requests, snap.errors, snap.samples), (4, 1, 3));
        assert_eq!(snap.p50_ms, Some(100.0));
    }

    #[test]
    fn the_window_is_bounded() {
        let s = TargetStats::default();
        let now = Instant::now();
        for i in 0..(WINDOW + 10) {
            s.record_success(Duration::from_millis(i as u64), now);
        }
        assert_eq!(s.snapshot().samples, WINDOW);
    }
}
