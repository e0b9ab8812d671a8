//! `GET /v1/realtime?model=…` (and `/realtime`): the WebSocket proxy for OpenAI's
//! realtime API.
//!
//! On the pool worker: the WebSocket handshake is checked, the caller authenticated as
//! for chat, `model` routed to an OpenAI-compatible target, admitted against the rate
//! limits, and the provider's WebSocket opened, all before the client gets its `101`
//! (so every failure is a plain HTTP error in OpenAI's shape). Then the session moves to
//! a thread of its own (`relay`) and the worker goes back to the pool. Text messages
//! pass the policy chain (`check`, `inspect`); the session and the messages a policy
//! acted on are recorded (`record`).

pub mod check;
pub mod handshake;
pub mod inspect;
pub mod record;
pub mod relay;
pub mod settings;
pub mod socket;
pub mod upstream;

use std::sync::Arc;
use std::time::Instant;

use crate::gateway::conn::Request;
use tungstenite::protocol::Role;
use tungstenite::WebSocket;

use super::admission::{self, Grant};
use super::auth::{self, Presented};
use super::http::{event_for, header, Reply};
use super::{chat, Runtime, State};
use crate::openai::{ApiError, ChatRequest};
use crate::policy::RequestContext;
use crate::router::breaker::{Outcome, Permit};
use crate::store::keys::KEY_PREFIX;
use crate::store::{Event, EventKind};
use handshake::{query_param, Handshake};
use record::SessionLog;
use relay::Session;
pub use settings::{Sessions, Settings, Slot, MAX_SESSIONS};
use socket::ClientStream;
use upstream::{ConnectError, Forward, UpstreamSocket};

/// A session ready to upgrade: both ends checked, the provider connected.
struct Opened {
    handshake: Handshake,
    runtime: Arc<Runtime>,
    ctx: RequestContext,
    settings: Settings,
    upstream: UpstreamSocket,
    /// The subprotocol the provider chose, echoed to the client.
    protocol: Option<String>,
    grant: Grant,
    target: usize,
    slot: Slot,
    headers: Vec<(String, String)>,
}

pub fn handle(state: &Arc<State>, req: Request, request_id: &str) {
    let started = Instant::now();
    let mut ev = Event {
        stream: true,
        ..event_for(&req, request_id, EventKind::Realtime, "/v1/realtime")
    };
    match open(state, &req, request_id, &mut ev) {
        Ok(opened) => upgrade(state, req, opened, ev, started),
        Err(e) => {
            chat::finish_event(state, &mut ev, started, &e);
            let mut reply = Reply::error(&e);
            if e.status == 426 {
                reply = reply.header("Sec-WebSocket-Version", "13");
            }
            reply.send(req, request_id);
        }
    }
}

fn open(
    state: &Arc<State>,
    req: &Request,
    request_id: &str,
    ev: &mut Event,
) -> Result<Opened, ApiError> {
    let handshake = Handshake::of(req)?;
    let presented = match auth::presented(req) {
        Presented::None => match handshake.protocol_key() {
            Some(k) if k.starts_with(KEY_PREFIX) => Presented::GatewayKey(k.to_string()),
            Some(k) => Presented::Other(k.to_string()),
            None => Presented::None,
        },
        p => p,
    };
    let (runtime, key, client_key) = chat::caller_for(state, req, presented, ev)?;
    let settings = Settings::of(&runtime.config);
    if !settings.enabled {
        return Err(ApiError::new(
            403,
            "invalid_request_error",
            Some("websocket_disabled"),
            "The WebSocket proxy is turned off for this configuration \
             (`gateway.websocket.enabled: false`).",
        ));
    }
    let model = query_param(req.url(), "model")
        .filter(|m| !m.is_empty())
        .ok_or_else(|| ApiError::missing_param("model").with_param("model"))?;
    ev.model_requested = Some(model.clone());
    let config = runtime.config.clone();
    let resolution = crate::router::resolve(&config, &model)?;
    let slot = Slot::acquire(state)?;
    let chat = ChatRequest {
        model: resolution.model.clone(),
        ..ChatRequest::default()
    };
    let pricing = resolution
        .candidates
        .first()
        .and_then(|&i| config.targets.get(i))
        .and_then(|t| t.pricing);
    let grant = admission::admit(
        state,
        &state.default_runtime().config,
        key.as_ref(),
        &chat,
        pricing.as_ref(),
    )?;
    let headers = grant.headers.clone();
    let ctx = RequestContext {
        request_id: request_id.to_string(),
        model: resolution.model.clone(),
        key_name: key.as_ref().map(|k| k.name.clone()),
        team: key.as_ref().and_then(|k| k.team.clone()),
    };
    let plan = state
        .routing
        .router
        .plan(&config, &resolution, &chat, Instant::now())?;
    let capable: Vec<usize> = plan
        .order
        .iter()
        .copied()
        .filter(|&i| {
            config
                .targets
                .get(i)
                .is_some_and(upstream::is_realtime_capable)
        })
        .collect();
    if capable.is_empty() {
        let served_by: Vec<String> = plan
            .order
            .iter()
            .filter_map(|&i| config.targets.get(i))
            .map(|t| format!("`{}` ({})", t.id, t.kind.as_str()))
            .collect();
        return Err(ApiError::new(
            400,
            "invalid_request_error",
            Some("realtime_not_supported"),
            format!(
                "Model `{model}` is served by {}, which has no realtime WebSocket API. Realtime \
                 sessions need an OpenAI-compatible target (provider `openai` or `openai-compatible`).",
                if served_by.is_empty() { "no available target".to_string() } else { served_by.join(", ") }
            ),
        )
        .with_param("model"));
    }
    let forward = Forward {
        openai_beta: header(req, "openai-beta").map(str::to_string),
        protocols: handshake.forwarded(),
        client_key,
    };
    let mut last_err = None;
    for i in capable {
        let Some(target) = config.targets.get(i) else {
            continue;
        };
        ev.target_id = Some(target.id.clone());
        ev.provider = Some(target.kind.as_str().to_string());
        ev.model_used = Some(target.model.clone());
        let ts = state.routing.router.target(target);
        let permit = ts.breaker.acquire(&plan.breaker, Instant::now());
        if permit == Permit::Rejected {
            continue;
        }
        let t0 = Instant::now();
        let result = upstream::connect(target, &forward, settings.socket_config());
        let now = Instant::now();
        match result {
            Ok((upstream, resp)) => {
                ts.stats.record_success(t0.elapsed(), now);
                ts.breaker
                    .record(&plan.breaker, permit, Outcome::Success, now);
                let protocol = resp
                    .headers()
                    .get("sec-websocket-protocol")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
                return Ok(Opened {
                    handshake,
                    runtime,
                    ctx,
                    settings,
                    upstream,
                    protocol,
                    grant,
                    target: i,
                    slot,
                    headers,
                });
            }
            Err(ConnectError::Refused {
                error,
                retryable: false,
            }) => {
                // The request's own fault (a bad key, an unknown model): another target
                // would say the same.
                ts.stats.record_other();
                ts.breaker
                    .record(&plan.breaker, permit, Outcome::Success, now);
                return Err(error);
            }
            Err(ConnectError::Refused { error, .. }) | Err(ConnectError::Transport(error)) => {
                ts.stats.record_failure(t0.elapsed(), now);
                ts.breaker
                    .record(&plan.breaker, permit, Outcome::Failure, now);
                last_err = Some(error);
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

/// Sends the `101`, takes the connection and starts the session's thread.
fn upgrade(state: &Arc<State>, req: Request, o: Opened, mut ev: Event, started: Instant) {
    let request_id = o.ctx.request_id.clone();
    let accept = tungstenite::handshake::derive_accept_key(o.handshake.key.as_bytes());
    let mut headers = vec![
        ("Sec-WebSocket-Accept".to_string(), accept),
        ("x-request-id".to_string(), request_id.clone()),
    ];
    if let Some(p) = &o.protocol {
        headers.push(("Sec-WebSocket-Protocol".to_string(), p.clone()));
    }
    headers.extend(o.headers.iter().cloned());
    let client = req
        .upgrade("websocket", &headers)
        .and_then(ClientStream::new);
    let (client_stream, buffered) = match client {
        Ok(s) => s,
        Err(e) => {
            let e = ApiError::new(
                499,
                "invalid_request_error",
                None,
                format!("the client connection failed during the upgrade: {e}"),
            );
            chat::finish_event(state, &mut ev, started, &e);
            return;
        }
    };
    let duplex = client_stream.tcp().is_some();
    if let Some(tcp) = upstream::tcp(&o.upstream) {
        if let Err(e) = tcp.set_nonblocking(true) {
            crate::logging::error(&format!("{request_id}: realtime: {e}"));
            return;
        }
    }
    let client = WebSocket::from_partially_read(
        client_stream,
        buffered,
        Role::Server,
        Some(o.settings.socket_config()),
    );
    let payload = chat::payload_mode(&o.runtime);
    let log_all = o.runtime.chain.audit().is_some_and(|a| a.log_all_access);
    let mut log = SessionLog::new(ev, started, payload, log_all);
    log.duplex = duplex;
    let session = Session {
        state: state.clone(),
        runtime: o.runtime,
        ctx: o.ctx,
        limits: o.settings.limits,
        client,
        upstream: o.upstream,
        log,
        grant: Some(o.grant),
        target: o.target,
        slot: o.slot,
    };
    let spawned = std::thread::Builder::new()
        .name("kt-realtime".into())
        .stack_size(512 * 1024)
        .spawn(move || {
            let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| session.run()));
            if run.is_err() {
                crate::logging::error("a realtime session panicked; its connections were dropped");
            }
        });
    if let Err(e) = spawned {
        crate::logging::error(&format!(
            "{request_id}: failed to start a realtime session thread: {e}"
        ));
    }
}
