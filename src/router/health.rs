//! Health of a target as the active probes (`health_probe`) see it, and the probe
//! settings. The probing itself (network) is `gateway::probe`; this holds only state.
//!
//! A target is `unknown` until its first probe (and forever without a probe); unknown
//! counts as up. Routing skips `down` targets, but when every candidate is down it still
//! tries them: a probe path can fail while the API works, and refusing every request on
//! the probe's word alone would turn a probe misconfiguration into an outage.

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use crate::config::Target;

pub const DEFAULT_PATH: &str = "/models";
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    Unknown,
    Up,
    Down,
}

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Unknown => "unknown",
            Health::Up => "up",
            Health::Down => "down",
        }
    }

    fn from_u8(v: u8) -> Health {
        match v {
            1 => Health::Up,
            2 => Health::Down,
            _ => Health::Unknown,
        }
    }

    fn to_u8(self) -> u8 {
        match self {
            Health::Unknown => 0,
            Health::Up => 1,
            Health::Down => 2,
        }
    }
}

/// Where and how often a target is probed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeSettings {
    /// `path` on the target's host (`scheme://host:port` of `base_url`); without a
    /// `path`, `base_url` + `/models`.
    pub url: String,
    pub interval: Duration,
    pub timeout: Duration,
}

impl ProbeSettings {
    /// The probe of a target with `health_probe`; `None` without one, and for targets
    /// without an HTTP base URL (`mock`, Bedrock).
    pub fn of(target: &Target) -> Option<ProbeSettings> {
        let spec = target.spec.health_probe.as_ref()?;
        let base = target.base_url.trim_end_matches('/');
        let (scheme, rest) = base.split_once("://")?;
        if scheme != "http" && scheme != "https" {
            return None;
        }
        let url = match &spec.path {
            Some(path) => {
                let host = rest.split('/').next().unwrap_or(rest);
                format!("{scheme}://{host}/{}", path.trim_start_matches('/'))
            }
            None => format!("{base}{DEFAULT_PATH}"),
        };
        let secs = |v: Option<f64>, default: Duration| {
            v.filter(|s| s.is_finite() && *s > 0.0)
                .map_or(default, |s| Duration::from_secs_f64(s.max(0.01)))
        };
        Some(ProbeSettings {
            url,
            interval: secs(spec.interval_seconds, DEFAULT_INTERVAL),
            timeout: secs(spec.timeout_seconds, DEFAULT_TIMEOUT),
        })
    }
}

/// A target's probe results.
#[derive(Debug, Default)]
pub struct HealthState {
    status: AtomicU8,
    /// Unix milliseconds of the last probe (0: never).
    last_probe_ms: AtomicU64,
    last_error: Mutex<Option<String>>,
}

impl HealthState {
    pub fn get(&self) -> Health {
        Health::from_u8(self.status.load(Ordering::Relaxed))
    }

    pub fn is_down(&self) -> bool {
        self.get() == Health::Down
    }

    /// Records a probe result (`error` set when it failed) at `now_ms`.
    pub fn set(&self, error: Option<String>, now_ms: u64) {
        let h = if error.is_some() {
            Health::Down
        } else {
            Health::Up
        };
        self.status.store(h.to_u8(), Ordering::Relaxed);
        self.last_probe_ms.store(now_ms, Ordering::Relaxed);
        *self
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = error;
    }

    pub fn last_probe_ms(&self) -> Option<u64> {
        Some(self.last_probe_ms.load(Ordering::Relaxed)).filter(|v| *v > 0)
    }

    pub fn last_error(&self) -> Option<String> {
        self.last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::load_str;

    #[test]
    fn probe_urls_and_defaults() {
        let yaml = "pack: {name: t}
providers:
  targets:
    - {id: a, provider: openai, model: m, base_url: 'http://h:1/v1/', health_probe: {path: /health, interval_seconds: 0.5}}
    - {id: b, provider: openai, model: m, base_url: 'https://h/openai/v1', health_probe: {path: /v1/models}}
    - {id: c, provider: openai, model: m, base_url: 'http://h:1/v1', health_probe: {}}
    - {id: d, provider: openai, model: m, base_url: 'http://h:1/v1'}
    - {id: e, provider: mock, model: m, health_probe: {}}
";
        let c = load_str(yaml, std::path::Path::new("t.yaml")).unwrap().0;
        let a = ProbeSettings::of(&c.targets[0]).unwrap();
        assert_eq!(a.url, "http://h:1/health");
        assert_eq!(a.interval, Duration::from_millis(500));
        assert_eq!(a.timeout, DEFAULT_TIMEOUT);
        assert_eq!(
            ProbeSettings::of(&c.targets[1]).unwrap().url,
            "https://h/v1/models"
        );
        assert_eq!(
            ProbeSettings::of(&c.targets[2]).unwrap().url,
            "http://h:1/v1/models"
        );
        assert_eq!(ProbeSettings::of(&c.targets[3]), None);
        assert_eq!(ProbeSettings::of(&c.targets[4]), None);
    }

    #[test]
    fn state_transitions() {
        let h = HealthState::default();
        assert_eq!(h.get(), Health::Unknown);
        assert!(!h.is_down());
        h.set(Some("connection refused".into()), 5);
        assert!(h.is_down());
        assert_eq!(h.last_error().as_deref(), Some("connection refused"));
        h.set(None, 6);
        assert_eq!((h.get(), h.last_probe_ms()), (Health::Up, Some(6)));
        assert_eq!(h.last_error(), None);
    }
}
