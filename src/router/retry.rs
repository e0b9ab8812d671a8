//! Retry policy (`providers.retry`): which failures are worth another try, and how long
//! to wait first (exponential backoff with jitter, an upstream `retry-after` respected).
//! Pure: the gateway does the waiting.

use std::time::Duration;

use crate::config::schema::RetrySpec;

pub const DEFAULT_ATTEMPTS: u32 = 2;
pub const DEFAULT_BACKOFF: Duration = Duration::from_millis(100);
pub const DEFAULT_MAX_BACKOFF: Duration = Duration::from_millis(2000);
/// 529: Anthropic's "overloaded".
pub const DEFAULT_ON_STATUS: [u16; 6] = [429, 500, 502, 503, 504, 529];

/// Validated `providers.retry`.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Tries per target, the first included (at least 1).
    pub attempts: u32,
    pub backoff: Duration,
    pub max_backoff: Duration,
    pub on_status: Vec<u16>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy::from_spec(None)
    }
}

impl RetryPolicy {
    pub fn from_spec(spec: Option<&RetrySpec>) -> RetryPolicy {
        let spec = spec.cloned().unwrap_or_default();
        let backoff = spec
            .backoff_ms
            .map_or(DEFAULT_BACKOFF, Duration::from_millis);
        RetryPolicy {
            attempts: spec.attempts.unwrap_or(DEFAULT_ATTEMPTS).clamp(1, 10),
            backoff,
            max_backoff: spec
                .max_backoff_ms
                .map_or(DEFAULT_MAX_BACKOFF, Duration::from_millis)
                .max(backoff),
            on_status: spec.on_status.unwrap_or_else(|| DEFAULT_ON_STATUS.to_vec()),
        }
    }

    /// Whether an upstream status is a transient failure (retry, then fall back).
    pub fn is_retryable_status(&self, status: u16) -> bool {
        self.on_status.contains(&status)
    }

    /// The wait before retry number `retry` (1 for the first retry): `backoff · 2^(retry-1)`
    /// capped at `max_backoff`, scaled by `jitter` in [0, 1) into its upper half, so
    /// concurrent clients spread out. An upstream `retry_after` is waited in full; when it
    /// is longer than `max_backoff` the answer is `None`: do not retry this target.
    pub fn delay(
        &self,
        retry: u32,
        jitter: f64,
        retry_after: Option<Duration>,
    ) -> Option<Duration> {
        if let Some(ra) = retry_after {
            return (ra <= self.max_backoff).then_some(ra);
        }
        let exp = 2u32.saturating_pow(retry.saturating_sub(1));
        let full = self.backoff.saturating_mul(exp).min(self.max_backoff);
        let jitter = if jitter.is_finite() {
            jitter.clamp(0.0, 1.0)
        } else {
            0.0
        };
        Some(full.mul_f64(0.5 + 0.5 * jitter))
    }
}

/// The upstream's `retry-after-ms` or `retry-after` (seconds; an HTTP date is ignored).
pub fn retry_after(headers: &[(String, String)]) -> Option<Duration> {
    let get = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| v.trim().parse::<f64>().ok())
            .filter(|v| v.is_finite() && *v >= 0.0)
    };
    get("retry-after-ms")
        .map(|ms| ms / 1000.0)
        .or_else(|| get("retry-after"))
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
}

/// A number in [0, 1) from the OS generator (jitter, exploration); 0.5 if unavailable.
pub fn random_unit() -> f64 {
    #[allow(clippy::cast_precision_loss)] // 53 bits of randomness are plenty.
    getrandom::u64().map_or(0.5, |n| (n >> 11) as f64 / (1u64 << 53) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_is_capped_and_jittered_into_its_upper_half() {
        let p = RetryPolicy::from_spec(Some(&RetrySpec {
            attempts: Some(4),
            backoff_ms: Some(100),
            max_backoff_ms: Some(300),
            on_status: None,
        }));
        assert_eq!(p.delay(1, 1.0, None), Some(Duration::from_millis(100)));
        assert_eq!(p.delay(1, 0.0, None), Some(Duration::from_millis(50)));
        assert_eq!(p.delay(2, 1.0, None), Some(Duration::from_millis(200)));
        assert_eq!(p.delay(3, 1.0, None), Some(Duration::from_millis(300)));
        assert_eq!(p.delay(30, 1.0, None), Some(Duration::from_millis(300)));
        for _ in 0..100 {
            let d = p.delay(2, random_unit(), None).unwrap();
            assert!(d >= Duration::from_millis(100) && d <= Duration::from_millis(200));
        }
    }

    #[test]
    fn retry_after_is_respected_or_the_target_is_given_up() {
        let p = RetryPolicy::default();
        let ra = Some(Duration::from_millis(700));
        assert_eq!(p.delay(1, 0.0, ra), ra);
        assert_eq!(p.delay(1, 0.0, Some(Duration::from_secs(7))), None);
        let h = |k: &str, v: &str| vec![(k.to_string(), v.to_string())];
        assert_eq!(
            retry_after(&h("Retry-After", "2")),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            retry_after(&h("retry-after-ms", "250")),
            Some(Duration::from_millis(250))
        );
        assert_eq!(
            retry_after(&h("retry-after", "Wed, 21 Oct 2015 07:28:00 GMT")),
            None
        );
    }

    #[test]
    fn defaults() {
        let p = RetryPolicy::default();
        assert_eq!(p.attempts, 2);
        assert!(p.is_retryable_status(503) && p.is_retryable_status(429));
        assert!(!p.is_retryable_status(400));
        let one = RetryPolicy::from_spec(Some(&RetrySpec {
            attempts: Some(0),
            ..RetrySpec::default()
        }));
        assert_eq!(one.attempts, 1);
    }
}
