//! `POST /keeptrusts/config/reload` and SIGHUP: the `--policy-config` files read again
//! and put in place without a restart.
//!
//! The new configurations are loaded, validated and their policy chains built before
//! anything changes: an invalid file is a 400 and the gateway goes on with what it ran.
//! Requests in flight finish under the configurations they started with; the next ones
//! get the new. Targets keep their routing state (breaker, health, statistics) when
//! `id`, `base_url` and `model` are unchanged. What the event writer fixed at start —
//! the default configuration's `retention_days` and every configuration's
//! `durability` — needs a restart: a reload that changes it is refused (409). Every
//! reload, refused or not, is an event (`kind: config_reload`).

use std::collections::BTreeMap;
use std::time::Instant;

use serde::Serialize;

use super::conn::Request;
use super::http::{event_for, Reply};
use super::{Loaded, State};
use crate::config::{Config, ConfigError, ConfigSet};
use crate::openai::ApiError;
use crate::policy::audit_logger::{settings_of, Durability};
use crate::store::{Event, EventKind};

pub const ENDPOINT: &str = "/keeptrusts/config/reload";

/// What the event writer fixed at start: the default configuration's retention, its
/// durability, and each configuration's.
#[derive(Debug, PartialEq)]
pub struct AuditFixed {
    pub retention_days: Option<u32>,
    pub durability: Durability,
    pub by_configuration: BTreeMap<String, Durability>,
}

impl AuditFixed {
    pub fn of<'a>(
        default: &Config,
        by_name: impl IntoIterator<Item = (&'a String, &'a Config)>,
    ) -> AuditFixed {
        let d = settings_of(default).unwrap_or_default();
        AuditFixed {
            retention_days: d.retention_days,
            durability: d.durability,
            by_configuration: by_name
                .into_iter()
                .map(|(name, cfg)| {
                    (
                        name.clone(),
                        settings_of(cfg).unwrap_or_default().durability,
                    )
                })
                .collect(),
        }
    }

    fn of_set(set: &ConfigSet) -> AuditFixed {
        AuditFixed::of(&set.default, set.by_name.iter().map(|(n, c)| (n, &**c)))
    }

    fn of_loaded(loaded: &Loaded) -> AuditFixed {
        AuditFixed::of(
            &loaded.default.config,
            loaded.by_name.iter().map(|(n, rt)| (n, &*rt.config)),
        )
    }
}

/// A reload done.
#[derive(Debug, Serialize)]
pub struct Reloaded {
    pub object: &'static str,
    /// The configuration requests without a gateway key now run under.
    pub default: String,
    pub configurations: Vec<String>,
    /// The default configuration's targets.
    pub targets: usize,
    /// `kt policy lint`'s warnings on the new files.
    pub warnings: Vec<String>,
}

/// Reads the files again and puts the configurations in place, or says why not (the
/// running ones unchanged).
pub fn reload(state: &State) -> Result<Reloaded, ApiError> {
    let (set, warnings) = ConfigSet::load(&state.policy_config).map_err(|e| invalid(&e))?;
    if AuditFixed::of_set(&set) != AuditFixed::of_loaded(&state.loaded()) {
        return Err(ApiError::new(
            409,
            "invalid_request_error",
            Some("restart_required"),
            "The new configuration changes the audit-logger's `durability` or the default configuration's `retention_days`, which the event writer fixes at start: restart the gateway to apply it. The running configuration is unchanged.",
        ));
    }
    let loaded = Loaded::build(&set, state.fail_mode, state.upstream.as_ref()).map_err(|e| {
        ApiError::new(
            400,
            "invalid_request_error",
            Some("invalid_config"),
            format!("{e}. The running configuration is unchanged."),
        )
    })?;
    let done = Reloaded {
        object: "config.reload",
        default: loaded.default.config.name.clone(),
        configurations: loaded.by_name.keys().cloned().collect(),
        targets: loaded.default.config.targets.len(),
        warnings: warnings.iter().map(ToString::to_string).collect(),
    };
    state.replace(loaded);
    crate::logging::info(&format!(
        "configuration reloaded: default `{}` ({} target(s)), {} configuration(s)",
        done.default,
        done.targets,
        done.configurations.len()
    ));
    Ok(done)
}

fn invalid(e: &ConfigError) -> ApiError {
    let detail = match e {
        ConfigError::Invalid { path, diagnostics } => {
            let all: Vec<String> = diagnostics.iter().map(ToString::to_string).collect();
            format!(
                "`{}` is not a valid policy config: {}",
                path.display(),
                all.join("; ")
            )
        }
        ConfigError::Read { path, source } => {
            format!("failed to read `{}`: {source}", path.display())
        }
    };
    ApiError::new(
        400,
        "invalid_request_error",
        Some("invalid_config"),
        format!("{detail}. The running configuration is unchanged (check the files with `kt policy lint`)."),
    )
}

/// `POST /keeptrusts/config/reload` (admin token).
pub fn handle(state: &State, req: &Request, request_id: &str) -> Reply {
    if let Err(e) = state.admin.check(req) {
        return Reply::error(&e);
    }
    let ev = event_for(req, request_id, EventKind::ConfigReload, ENDPOINT);
    let (result, ev) = reload_recorded(state, ev);
    state.events.record(ev);
    match result {
        Ok(done) => match serde_json::to_vec(&done) {
            Ok(body) => Reply::json(200, body),
            Err(e) => Reply::error(&ApiError::internal(e.to_string())),
        },
        Err(e) => Reply::error(&e),
    }
}

/// SIGHUP: the same reload, its outcome logged and recorded.
pub fn on_signal(state: &State) {
    let request_id = super::http::request_id();
    let ev = Event {
        request_id,
        ts_ms: super::http::now_ms(),
        kind: EventKind::ConfigReload,
        endpoint: "SIGHUP".to_string(),
        verdict: crate::policy::Verdict::Allow.as_str().to_string(),
        ..Event::default()
    };
    let (result, ev) = reload_recorded(state, ev);
    state.events.record(ev);
    if let Err(e) = result {
        crate::logging::error(&format!("configuration reload failed: {}", e.body.message));
    }
}

/// Runs the reload and fills its event: the configuration now in force, the status, the
/// error when refused.
fn reload_recorded(state: &State, mut ev: Event) -> (Result<Reloaded, ApiError>, Event) {
    let started = Instant::now();
    let result = reload(state);
    let rt = state.default_runtime();
    ev.configuration = Some(rt.config.name.clone());
    ev.chain = rt.chain.audit().is_some_and(|a| a.immutable);
    ev.latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    match &result {
        Ok(_) => ev.status = 200,
        Err(e) => {
            ev.status = e.status;
            ev.error = Some(e.body.message.clone());
        }
    }
    (result, ev)
}
