//! The routed upstream call: the router's plan is tried target by target, each with
//! retries (backoff with jitter, `retry-after` respected), recording every attempt in the
//! target's statistics and circuit breaker and in the event's `detail.routing`.
//!
//! Everything here happens before the first byte of an answer is sent to the client:
//! `call` returns the first usable upstream response (for a stream, once the upstream
//! answered 200), and nothing is retried after that.

use crate::store::events::JsonText;
use std::borrow::Cow;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::chat::{self, Native, Prepared, Upstream};
use super::http::Reply;
use super::probe::ProbeHandle;
use super::transport::{self, UpstreamResponse};
use super::State;
use crate::config::schema::ProviderKind;
use crate::config::{Config, Target};
use crate::openai::{ApiError, ChatRequest};
use crate::providers::{self, BuildContext, UpstreamRequest};
use crate::router::breaker::{BreakerConfig, Outcome, Permit};
use crate::router::compress::{self, Compression, Limits};
use crate::router::retry::{self, random_unit};
use crate::router::state::Skipped;
use crate::router::{RouterState, TargetState};
use crate::store::Event;

/// The router's live state and the health probe threads feeding it (stopped on drop).
#[derive(Debug, Default)]
pub struct Routing {
    pub router: RouterState,
    probes: ProbeHandle,
}

impl Routing {
    /// Registers every target of `configs` and starts their health probes.
    pub fn start<'a>(
        configs: impl IntoIterator<Item = &'a Config>,
        agent: &transport::Agents,
    ) -> Routing {
        let routing = Routing::default();
        for config in configs {
            routing.add(config, agent);
        }
        routing
    }

    /// After a reload: only the targets of `configs` stay (see `RouterState::retain`).
    pub fn retain<'a>(&self, configs: impl IntoIterator<Item = &'a Config>) {
        self.router.retain(configs);
    }

    /// Adds a configuration (e.g. after a reload): its targets show in the metrics, and
    /// targets with a `health_probe` not probed yet get a probe thread. Targets keep their
    /// state (breaker, health, statistics) across reloads when `id`, `base_url` and
    /// `model` are unchanged.
    pub fn add(&self, config: &Config, agent: &transport::Agents) {
        self.router.register(config);
        self.probes.start(&self.router, config, agent);
    }
}

/// `detail.routing` of an event.
#[derive(Debug, Default, Serialize)]
/// Target ids are borrowed from the configuration: nothing is copied per request.
struct RoutingDetail<'a> {
    requested: String,
    resolved: String,
    strategy: &'static str,
    /// Target ids the strategy could choose from, serving the model first.
    candidates: Vec<&'a str>,
    /// The plan's order of targets to try.
    order: Vec<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    skipped: Vec<Skipped>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    last_resort: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    explored: bool,
    chosen: Option<&'a str>,
    attempts: Vec<Attempt<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    compression: Vec<TargetCompression<'a>>,
}

#[derive(Debug, Serialize)]
struct Attempt<'a> {
    target: &'a str,
    attempt: u32,
    /// `ok`, `http <status>`, or the transport error.
    outcome: Cow<'static, str>,
    latency_ms: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    retry_in_ms: Option<u64>,
    /// The half-open circuit's probe request.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    probe: bool,
}

#[derive(Debug, Serialize)]
struct TargetCompression<'a> {
    target: &'a str,
    #[serde(flatten)]
    compression: Compression,
}

/// Sends the request along the router's plan. Returns the target index and its answer:
/// a 2xx, a non-retryable error status (the request's own fault), or, when every target
/// failed, the last target's retryable error status; transport failures of the last
/// target are an `Err`.
pub fn call(
    state: &State,
    p: &mut Prepared,
    ev: &mut Event,
) -> Result<(usize, Upstream), ApiError> {
    let config = p.runtime.config.clone();
    let mut detail = RoutingDetail {
        requested: p.resolution.requested.clone(),
        resolved: p.resolution.model.clone(),
        strategy: config.strategy.as_str(),
        candidates: p
            .resolution
            .candidates
            .iter()
            .filter_map(|&i| config.targets.get(i).map(|t| t.id.as_str()))
            .collect(),
        ..RoutingDetail::default()
    };
    let result = attempt_all(state, &config, p, ev, &mut detail);
    if let Err(e) = &result {
        if e.status == 409 {
            ev.blocked_by.clone_from(&e.body.policy);
        }
    }
    ev.detail
        .get_or_insert_with(JsonText::empty_object)
        .insert("routing", &detail);
    result
}

fn attempt_all<'a>(
    state: &State,
    config: &'a Config,
    p: &mut Prepared,
    ev: &mut Event,
    detail: &mut RoutingDetail<'a>,
) -> Result<(usize, Upstream), ApiError> {
    let stream = p.chat.is_stream();
    let plan = state
        .routing
        .router
        .plan(config, &p.resolution, &p.chat, Instant::now())?;
    detail.order = plan
        .order
        .iter()
        .filter_map(|&i| config.targets.get(i).map(|t| t.id.as_str()))
        .collect();
    detail.skipped.clone_from(&plan.skipped);
    detail.last_resort = plan.last_resort;
    detail.explored = plan.explored;
    let mut last_err = None;
    for (n, &i) in plan.order.iter().enumerate() {
        let Some(target) = config.targets.get(i) else {
            continue;
        };
        let is_last_target = n + 1 == plan.order.len();
        let ts = state.routing.router.target(target);
        ev.target_id = Some(target.id.clone());
        ev.provider = Some(target.kind.as_str().to_string());
        ev.model_used = Some(target.model.clone());
        p.chat.model.clone_from(&target.model);
        if let Some(Native::Embeddings(e)) = &mut p.native {
            e.model.clone_from(&target.model);
        }
        if target.kind == ProviderKind::Mock {
            ts.stats.record_success(Duration::ZERO, Instant::now());
            detail
                .attempts
                .push(attempt(target, 1, "ok".into(), Duration::ZERO));
            detail.chosen = Some(&target.id);
            return Ok((i, Upstream::Mock));
        }
        let (body, compression) = match p.native {
            // Embeddings inputs are not a conversation to trim.
            Some(Native::Embeddings(_)) => (Cow::Borrowed(&p.chat), None),
            _ => body_for(target, &p.chat, stream),
        };
        if let Some(c) = compression {
            detail.compression.push(TargetCompression {
                target: &target.id,
                compression: c,
            });
        }
        // The client's bytes go on as they are when nothing about them changed, or with
        // only the model replaced when that is all that changed.
        let spliced;
        let raw = match (&body, &p.raw) {
            (Cow::Borrowed(_), Some(raw)) if raw.model == p.chat.model => Some(&raw.bytes[..]),
            (Cow::Borrowed(_), Some(raw)) => {
                spliced = crate::openai::splice::with_model(&raw.bytes, &p.chat.model);
                spliced.as_deref()
            }
            _ => None,
        };
        let up = match build(target, p, &body, raw) {
            Ok(up) => up,
            Err(e) => {
                // This target cannot take the request (format, credentials): another may.
                detail.attempts.push(attempt(
                    target,
                    1,
                    e.body.message.clone().into(),
                    Duration::ZERO,
                ));
                last_err = Some(e);
                continue;
            }
        };
        let tries = if plan.last_resort {
            1
        } else {
            plan.retry.attempts
        };
        for n_try in 1..=tries {
            let permit = ts.breaker.acquire(&plan.breaker, Instant::now());
            if permit == Permit::Rejected {
                // Opened by this request's failures or a concurrent one's.
                let a = attempt(target, n_try, "circuit_open".into(), Duration::ZERO);
                detail.attempts.push(a);
                break;
            }
            let t0 = Instant::now();
            let result = send_one(state, target, &up, stream);
            let elapsed = t0.elapsed();
            let now = Instant::now();
            let mut a = attempt(target, n_try, "".into(), elapsed);
            a.probe = permit == Permit::Probe;
            let more = n_try < tries;
            match result {
                Ok(resp) if (200..300).contains(&resp.status) => {
                    ts.stats.record_success(elapsed, now);
                    ts.breaker
                        .record(&plan.breaker, permit, Outcome::Success, now);
                    a.outcome = "ok".into();
                    detail.attempts.push(a);
                    detail.chosen = Some(&target.id);
                    return Ok((i, Upstream::Http(resp)));
                }
                Ok(resp) if plan.retry.is_retryable_status(resp.status) => {
                    let outcome = if resp.status == 429 {
                        Outcome::Neutral
                    } else {
                        Outcome::Failure
                    };
                    ts.stats.record_failure(elapsed, now);
                    ts.breaker.record(&plan.breaker, permit, outcome, now);
                    a.outcome = format!("http {}", resp.status).into();
                    let wait = if more {
                        plan.retry.delay(
                            n_try,
                            random_unit(),
                            retry::retry_after(&resp.header_pairs()),
                        )
                    } else {
                        None
                    };
                    if wait.is_none() && is_last_target {
                        // Nothing left to try: the client gets the upstream's own answer.
                        detail.attempts.push(a);
                        detail.chosen = Some(&target.id);
                        return Ok((i, Upstream::Http(resp)));
                    }
                    last_err = Some(chat::upstream_error(target, resp));
                    if !wait_or_stop(detail, a, wait) {
                        break;
                    }
                }
                Ok(resp) => {
                    // The request's own fault (400, 401, 404, …): the target works, and
                    // another one would say the same.
                    ts.stats.record_other();
                    ts.breaker
                        .record(&plan.breaker, permit, Outcome::Success, now);
                    a.outcome = format!("http {}", resp.status).into();
                    detail.attempts.push(a);
                    detail.chosen = Some(&target.id);
                    return Ok((i, Upstream::Http(resp)));
                }
                Err(e) => {
                    ts.stats.record_failure(elapsed, now);
                    ts.breaker
                        .record(&plan.breaker, permit, Outcome::Failure, now);
                    a.outcome = e.body.message.clone().into();
                    let wait = if more {
                        plan.retry.delay(n_try, random_unit(), None)
                    } else {
                        None
                    };
                    last_err = Some(e);
                    if !wait_or_stop(detail, a, wait) {
                        break;
                    }
                }
            }
        }
    }
    Err(last_err.unwrap_or_else(|| {
        ApiError::new(
            503,
            "upstream_error",
            Some("circuit_open"),
            "No provider target is available right now. Retry later.",
        )
    }))
}

/// Records the attempt; sleeps before the next try when there is one. `false`: stop
/// trying this target.
fn wait_or_stop<'a>(
    detail: &mut RoutingDetail<'a>,
    mut a: Attempt<'a>,
    wait: Option<Duration>,
) -> bool {
    a.retry_in_ms = wait.map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    detail.attempts.push(a);
    match wait {
        Some(d) => {
            std::thread::sleep(d);
            true
        }
        None => false,
    }
}

fn attempt<'a>(
    target: &'a Target,
    n: u32,
    outcome: Cow<'static, str>,
    latency: Duration,
) -> Attempt<'a> {
    Attempt {
        target: &target.id,
        attempt: n,
        outcome,
        latency_ms: (latency.as_secs_f64() * 10_000.0).round() / 10.0,
        retry_in_ms: None,
        probe: false,
    }
}

/// A stream that broke after the upstream answered `200` (it was not retried: the client
/// already had bytes) still counts against the target: statistics and circuit breaker.
pub fn record_stream_failure(state: &State, config: &Config, target: &Target) {
    let ts = state.routing.router.target(target);
    let breaker = BreakerConfig::from_spec(config.spec.providers.circuit_breaker.as_ref());
    ts.stats.record_late_failure();
    ts.breaker.record_late_failure(&breaker, Instant::now());
}

/// The request as this target gets it: trimmed to its context limits, and asking for
/// usage on OpenAI-format streams so the event has token counts (the usage chunk is not
/// passed on to a client that did not ask for it).
fn body_for<'a>(
    target: &Target,
    chat: &'a ChatRequest,
    stream: bool,
) -> (Cow<'a, ChatRequest>, Option<Compression>) {
    let mut body = Cow::Borrowed(chat);
    let limits = Limits {
        max_messages: target.max_messages,
        max_context_tokens: target.max_context_tokens,
    };
    let mut compression = None;
    if !limits.is_empty() {
        let mut trimmed = chat.clone();
        compression = compress::compress(&mut trimmed, limits);
        if compression.is_some() {
            body = Cow::Owned(trimmed);
        }
    }
    if stream
        && !chat.include_usage()
        && matches!(
            target.kind,
            ProviderKind::Openai | ProviderKind::AzureOpenai
        )
    {
        body.to_mut()
            .stream_options
            .get_or_insert_with(Default::default)
            .include_usage = Some(true);
    }
    (body, compression)
}

/// The upstream HTTP request for `target`: its credential, else the client's own key.
/// An `openai:responses:<model>` target gets a `/v1/responses` request's own body; an
/// embeddings request goes in the target's embeddings format.
fn build(
    target: &Target,
    p: &Prepared,
    body: &ChatRequest,
    raw_body: Option<&[u8]>,
) -> Result<UpstreamRequest, ApiError> {
    let (key, account) = super::auth::upstream_key(target, p.client_key.as_ref());
    let ctx = BuildContext {
        target,
        api_key: key,
        account,
        now: std::time::SystemTime::now(),
        raw_body,
    };
    match &p.native {
        Some(Native::Responses(native)) if target.is_responses_api() => {
            providers::responses::native_request(ctx, native)
        }
        Some(Native::Embeddings(e)) => providers::adapter_for(target).build_embeddings(ctx, e),
        _ => providers::adapter_for(target).build_request(ctx, body),
    }
}

/// One try: the target's timeout (stream timeout for streams) bounds it.
pub fn send_one(
    state: &State,
    target: &Target,
    up: &UpstreamRequest,
    stream: bool,
) -> Result<UpstreamResponse, ApiError> {
    let timeout = if stream {
        target.stream_timeout
    } else {
        target.timeout
    };
    transport::send(&state.agent, up, timeout, stream)
}

/// `GET /keeptrusts/providers/metrics` (admin token): per target requests, errors,
/// latency percentiles, circuit state and health.
pub fn metrics(state: &State, req: &super::conn::Request) -> Reply {
    if let Err(e) = state.admin.check(req) {
        return Reply::error(&e);
    }
    let now = Instant::now();
    let data: Vec<serde_json::Value> = state
        .routing
        .router
        .all()
        .iter()
        // A request in flight under a replaced configuration may touch a retired target.
        .filter(|ts| !ts.configurations().is_empty())
        .map(|ts| target_metrics(ts, now))
        .collect();
    let body = serde_json::json!({"object": "list", "data": data});
    Reply::json(200, body.to_string().into_bytes())
}

fn target_metrics(ts: &TargetState, now: Instant) -> serde_json::Value {
    let s = ts.stats.snapshot();
    let cfg = ts.breaker_config();
    let b = ts.breaker.snapshot(&cfg, now);
    let round = |v: Option<f64>| v.map(|x| (x * 10.0).round() / 10.0);
    #[allow(clippy::cast_precision_loss)] // Request counts are far below 2^52.
    let error_rate = if s.requests == 0 {
        0.0
    } else {
        s.errors as f64 / s.requests as f64
    };
    serde_json::json!({
        "id": ts.id,
        "provider": ts.provider,
        "model": ts.model,
        "configurations": ts.configurations(),
        "requests": s.requests,
        "errors": s.errors,
        "error_rate": error_rate,
        "latency_ms": {
            "p50": round(s.p50_ms),
            "p90": round(s.p90_ms),
            "p99": round(s.p99_ms),
            "ewma": round(s.ewma_ms),
            "samples": s.samples,
        },
        "circuit": {
            "enabled": cfg.enabled,
            "state": b.state.as_str(),
            "consecutive_failures": b.consecutive_failures,
            "opens": b.opens,
            "retry_in_seconds": b.retry_in.map(|d| (d.as_secs_f64() * 10.0).round() / 10.0),
        },
        "health": {
            "status": ts.health.get().as_str(),
            "probed": ts.probe.is_some(),
            "last_probe_ms": ts.health.last_probe_ms(),
            "last_error": ts.health.last_error(),
        },
    })
}
