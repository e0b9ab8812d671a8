//! Active health probes: one background thread per target with a `health_probe`, which
//! sends `GET <url>` every `interval_seconds` through the gateway's ureq agent and marks
//! the target up or down in the router. Up: any HTTP answer below 500 within
//! `timeout_seconds` (a 401 or 404 still proves the server is there); down: a connect
//! error, a timeout or a 5xx.
//!
//! Threads stop when the [`ProbeHandle`] is dropped (the gateway's `State`), and a
//! target's when a reload retires it.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::Duration;

use crate::config::Config;
use crate::router::health::ProbeSettings;
use crate::router::{RouterState, TargetState};

use super::http::now_ms;
use super::transport::Agents;

#[derive(Debug, Default)]
struct Stop {
    stopped: Mutex<bool>,
    wake: Condvar,
}

impl Stop {
    /// Waits up to `d`; `true` when stopped.
    fn wait(&self, d: Duration) -> bool {
        let guard = self.stopped.lock().unwrap_or_else(PoisonError::into_inner);
        let (guard, _) = self
            .wake
            .wait_timeout_while(guard, d, |stopped| !*stopped)
            .unwrap_or_else(PoisonError::into_inner);
        *guard
    }
}

/// Owns the probe threads: dropping it stops them.
#[derive(Debug, Default)]
pub struct ProbeHandle {
    stop: Arc<Stop>,
}

impl Drop for ProbeHandle {
    fn drop(&mut self) {
        *self
            .stop
            .stopped
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = true;
        self.stop.wake.notify_all();
    }
}

impl ProbeHandle {
    /// Starts a probe thread for every target of `config` that has a `health_probe` and
    /// no thread yet. The first probe goes out at once.
    pub fn start(&self, router: &RouterState, config: &Config, agents: &Agents) {
        for t in &config.targets {
            let ts = router.target(t);
            let Some(settings) = ts.probe.clone() else {
                continue;
            };
            if ts.probing.swap(true, Ordering::SeqCst) {
                continue;
            }
            let headers = probe_headers(t);
            let agent = agents.base().clone();
            let stop = self.stop.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("kt-probe-{}", t.id))
                .spawn(move || run(&agent, &ts, &settings, &headers, &stop));
            if let Err(e) = spawned {
                crate::logging::warn(&format!(
                    "failed to start the health probe of target `{}`: {e}",
                    t.id
                ));
            }
        }
    }
}

/// The target's auth and extra headers, so an authenticated `/models` answers 200.
fn probe_headers(t: &crate::config::Target) -> Vec<(String, String)> {
    let mut h = t.headers.clone();
    if let Some(key) = &t.credential {
        h.push((
            t.api_key_header.clone(),
            format!("{}{}", t.api_key_prefix, key.expose()),
        ));
    }
    h
}

fn run(
    agent: &ureq::Agent,
    ts: &TargetState,
    settings: &ProbeSettings,
    headers: &[(String, String)],
    stop: &Stop,
) {
    loop {
        let error = probe_once(agent, settings, headers);
        let changed = ts.health.is_down() != error.is_some();
        if changed {
            let msg = match &error {
                Some(e) => format!("target `{}` is down: {e}", ts.id),
                None => format!("target `{}` is up", ts.id),
            };
            crate::logging::info(&msg);
        }
        ts.health
            .set(error, u64::try_from(now_ms()).unwrap_or_default());
        if stop.wait(settings.interval) || ts.retired.load(Ordering::SeqCst) {
            return;
        }
    }
}

/// `None` when the target answered like a live server.
fn probe_once(
    agent: &ureq::Agent,
    settings: &ProbeSettings,
    headers: &[(String, String)],
) -> Option<String> {
    let mut req = agent.get(&settings.url);
    for (k, v) in headers {
        req = req.header(k.as_str(), v.as_str());
    }
    let result = req
        .config()
        .timeout_global(Some(settings.timeout))
        .build()
        .call();
    match result {
        Ok(mut resp) => {
            let status = resp.status().as_u16();
            // Read (a bounded amount of) the body so the connection can be reused.
            let drained = resp.body_mut().with_config().limit(64 * 1024).read_to_vec();
            if let Err(e) = drained {
                crate::logging::debug(&format!("probe body of `{}`: {e}", settings.url));
            }
            (status >= 500).then(|| format!("HTTP {status}"))
        }
        Err(e) => Some(super::transport::map_error(&e).body.message),
    }
}
