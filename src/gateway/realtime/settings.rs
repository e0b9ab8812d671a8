//! `gateway.websocket` (enabled, message size and idle limits, with seed 001's defaults)
//! and the bound on open sessions.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tungstenite::protocol::WebSocketConfig;

use super::relay::Limits;
use crate::config::Config;
use crate::gateway::State;
use crate::openai::ApiError;

/// Realtime sessions open at once; more are refused with 503 before the upgrade. Each
/// holds a relay thread (the connection's thread goes back to the pool).
pub const MAX_SESSIONS: usize = 256;
/// `gateway.websocket.max_message_size_bytes` by default (seed 001).
pub const DEFAULT_MAX_MESSAGE_BYTES: u64 = 1_048_576;
/// `gateway.websocket.idle_timeout_seconds` by default (seed 001).
pub const DEFAULT_IDLE_TIMEOUT_SECONDS: f64 = 300.0;

/// The count of open sessions.
#[derive(Debug, Default)]
pub struct Sessions {
    live: AtomicUsize,
}

impl Sessions {
    pub fn live(&self) -> usize {
        self.live.load(Ordering::SeqCst)
    }

    /// Waits (at most until `deadline`) for open sessions to close; they close within a
    /// second of shutdown.
    pub fn wait_closed(&self, deadline: Instant) {
        while self.live() > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// A place among the `MAX_SESSIONS`, given back on drop.
pub struct Slot(Arc<State>);

impl Slot {
    pub fn acquire(state: &Arc<State>) -> Result<Slot, ApiError> {
        let taken = state
            .realtime
            .live
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < MAX_SESSIONS).then_some(n + 1)
            });
        match taken {
            Ok(_) => Ok(Slot(state.clone())),
            Err(_) => {
                let mut e = ApiError::new(
                    503,
                    "server_error",
                    Some("too_many_sessions"),
                    format!("The gateway has {MAX_SESSIONS} realtime sessions open. Retry later."),
                );
                e.retry_after = Some(1.0);
                Err(e)
            }
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.realtime.live.fetch_sub(1, Ordering::SeqCst);
    }
}

/// `gateway.websocket` of a configuration, with the defaults.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    pub enabled: bool,
    pub limits: Limits,
}

impl Settings {
    pub fn of(config: &Config) -> Settings {
        let ws = config.spec.gateway.websocket.as_ref();
        let max = ws
            .and_then(|w| w.max_message_size_bytes)
            .unwrap_or(DEFAULT_MAX_MESSAGE_BYTES);
        let idle = ws
            .and_then(|w| w.idle_timeout_seconds)
            .filter(|s| s.is_finite() && *s > 0.0)
            .unwrap_or(DEFAULT_IDLE_TIMEOUT_SECONDS);
        Settings {
            enabled: ws.and_then(|w| w.enabled).unwrap_or(true),
            limits: Limits {
                max_message: usize::try_from(max).unwrap_or(usize::MAX),
                idle: Duration::from_secs_f64(idle.min(1e9)),
            },
        }
    }

    pub fn socket_config(&self) -> WebSocketConfig {
        let max = self.limits.max_message;
        WebSocketConfig::default()
            .read_buffer_size(64 * 1024)
            // Every message is written out at once: no batching.
            .write_buffer_size(0)
            .max_write_buffer_size(max.saturating_mul(4).saturating_add(1 << 20))
            .max_message_size(Some(max))
            .max_frame_size(Some(max))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn websocket_settings_default_to_seed_001() {
        let (cfg, _) = crate::config::load_str(
            "pack: {name: t}\nproviders:\n  targets:\n    - {id: a, provider: mock, model: m}\n",
            std::path::Path::new("t.yaml"),
        )
        .unwrap();
        let s = Settings::of(&cfg);
        assert!(s.enabled);
        assert_eq!(s.limits.max_message, 1_048_576);
        assert_eq!(s.limits.idle, Duration::from_secs(300));
        let (cfg, _) = crate::config::load_str(
            "pack: {name: t}\nproviders:\n  targets:\n    - {id: a, provider: mock, model: m}\n\
             gateway:\n  websocket: {enabled: false, max_message_size_bytes: 10, idle_timeout_seconds: 1.5}\n",
            std::path::Path::new("t.yaml"),
        )
        .unwrap();
        let s = Settings::of(&cfg);
        assert!(!s.enabled);
        assert_eq!(s.limits.max_message, 10);
        assert_eq!(s.limits.idle, Duration::from_millis(1500));
    }
}
