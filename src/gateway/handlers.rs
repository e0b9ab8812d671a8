//! The route table: `(method, path) → handler`. Handlers live beside it (small ones) or in
//! their own file (`chat`).

use std::sync::Arc;

use super::conn::{Method, Request};

use super::http::{event_for, Reply};
use super::{admin, chat, cors, embeddings, realtime, reload, responses, State};

use crate::openai::{ApiError, ModelEntry};
use crate::store::{Event, EventKind};

pub fn handle(state: &Arc<State>, req: Request) {
    let request_id = super::http::request_id();
    let path = req.url().split('?').next().unwrap_or("").to_string();
    // HEAD is GET without the body (monitors and load balancers probe with it); the
    // answer leaves out the body because the request says HEAD.
    let method = match req.method() {
        Method::Head => Method::Get,
        m => m.clone(),
    };
    if let Err(e) = super::http::check_head(&req) {
        Reply::error(&e).send(req, &request_id);
        return;
    }
    let req = match super::http::header(&req, "origin") {
        None => req,
        Some(_) => match browser(state, req, &request_id, &path) {
            Some(req) => req,
            None => return,
        },
    };
    match (&method, path.trim_end_matches('/')) {
        (Method::Post, "/v1/chat/completions") | (Method::Post, "/chat/completions") => {
            match state.slots.acquire() {
                Ok(_slot) => chat::handle(state, req, &request_id),
                Err(e) => shed(state, req, &request_id, "/v1/chat/completions", &e),
            }
        }
        (Method::Post, "/v1/responses") | (Method::Post, "/responses") => {
            match state.slots.acquire() {
                Ok(_slot) => responses::handle(state, req, &request_id),
                Err(e) => shed(state, req, &request_id, "/v1/responses", &e),
            }
        }
        (Method::Post, "/v1/embeddings") | (Method::Post, "/embeddings") => {
            match state.slots.acquire() {
                Ok(_slot) => embeddings::handle(state, req, &request_id),
                Err(e) => shed(state, req, &request_id, embeddings::ENDPOINT, &e),
            }
        }
        (Method::Get, "/v1/realtime") | (Method::Get, "/realtime")
            if *req.method() != Method::Head =>
        {
            realtime::handle(state, req, &request_id);
        }
        (Method::Get, "/v1/models") | (Method::Get, "/models") => {
            read_models(state, req, &request_id, || models(state));
        }
        (m, p) if model_path(p).is_some() => {
            if *m != Method::Get {
                not_allowed(req, &request_id, p);
                return;
            }
            let id = model_path(p).unwrap_or_default();
            read_models(state, req, &request_id, || model(state, id));
        }
        (Method::Get, "/v1/events") => admin::events(state, &req).send(req, &request_id),
        (Method::Get, "/keeptrusts/config") => admin::config(state, &req).send(req, &request_id),
        (Method::Post, reload::ENDPOINT) => {
            reload::handle(state, &req, &request_id).send(req, &request_id)
        }
        (Method::Get, "/health") | (Method::Get, "/healthz") => {
            health(state).send(req, &request_id)
        }
        (Method::Get, "/keeptrusts/providers/metrics") => {
            super::routing::metrics(state, &req).send(req, &request_id)
        }
        (_, p) if is_known_path(p) => not_allowed(req, &request_id, p),
        (_, p) => Reply::error(&ApiError::not_found(p)).send(req, &request_id),
    }
}

/// A request from a web page (it carries `Origin`): refused unless `gateway.cors` allows
/// the page; a preflight is answered here; otherwise its answer gets the CORS headers.
/// Gives the request back when it goes on to its handler.
fn browser(state: &State, mut req: Request, request_id: &str, path: &str) -> Option<Request> {
    let rt = state.default_runtime();
    let spec = rt.config.spec.gateway.cors.as_ref();
    let origin = super::http::header(&req, "origin");
    let origin = match cors::access(origin, spec) {
        cors::Access::NotBrowser => return Some(req),
        cors::Access::Allowed(origin) => origin,
        cors::Access::Refused(e) => {
            // A refused preflight is the browser asking, not a model request: no event.
            let preflight = matches!(req.method(), Method::Other(m) if m == "OPTIONS");
            match model_endpoint(path.trim_end_matches('/')).filter(|_| !preflight) {
                Some((kind, endpoint)) => refuse(state, req, request_id, kind, endpoint, &e),
                None => Reply::error(&e).send(req, request_id),
            }
            return None;
        }
    };
    let asked = super::http::header(&req, "access-control-request-method");
    if !cors::is_preflight(req.method().as_str(), asked) {
        req.add_answer_headers(cors::answer_headers(&origin));
        return Some(req);
    }
    let p = path.trim_end_matches('/');
    let reply = if is_known_path(p) || model_path(p).is_some() {
        let private = super::http::header(&req, "access-control-request-private-network")
            .is_some_and(|v| v.eq_ignore_ascii_case("true"));
        Reply {
            status: 204,
            headers: cors::preflight_headers(
                &origin,
                super::http::header(&req, "access-control-request-headers"),
                private,
                spec,
            ),
            body: Vec::new(),
        }
    } else {
        Reply::error(&ApiError::not_found(p)).header("Access-Control-Allow-Origin", origin)
    };
    reply.send(req, request_id);
    None
}

/// 405 for a path kt serves with another method, with the `Allow` header HTTP asks for.
fn not_allowed(req: Request, request_id: &str, path: &str) {
    let e = ApiError::method_not_allowed(req.method().as_str(), path);
    Reply::error(&e)
        .header("Allow", allowed_methods(path).unwrap_or("GET, HEAD"))
        .send(req, request_id);
}

fn is_known_path(p: &str) -> bool {
    allowed_methods(p).is_some()
}

/// The methods a path of kt's takes (`None`: not one of kt's paths; the models under
/// `/v1/models/` are matched apart).
fn allowed_methods(p: &str) -> Option<&'static str> {
    match p {
        "/v1/chat/completions"
        | "/chat/completions"
        | "/v1/responses"
        | "/responses"
        | "/v1/embeddings"
        | "/embeddings"
        | "/keeptrusts/config/reload" => Some("POST"),
        "/v1/realtime" | "/realtime" => Some("GET"),
        "/v1/models"
        | "/models"
        | "/health"
        | "/healthz"
        | "/v1/events"
        | "/keeptrusts/config"
        | "/keeptrusts/providers/metrics" => Some("GET, HEAD"),
        _ => None,
    }
}

/// A model request refused because the gateway is at `--max-concurrency` with a full
/// admission queue: answered 503 at once and recorded like any other request.
fn shed(state: &State, req: Request, request_id: &str, endpoint: &str, err: &ApiError) {
    let kind = model_endpoint(endpoint).map_or(EventKind::ChatCompletion, |(k, _)| k);
    refuse(state, req, request_id, kind, endpoint, err);
}

/// A model request's path (with or without `/v1`): the kind of its events and the
/// endpoint they name.
fn model_endpoint(path: &str) -> Option<(EventKind, &'static str)> {
    match path.strip_prefix("/v1").unwrap_or(path) {
        "/chat/completions" => Some((EventKind::ChatCompletion, "/v1/chat/completions")),
        "/responses" => Some((EventKind::Responses, "/v1/responses")),
        "/embeddings" => Some((EventKind::Embeddings, embeddings::ENDPOINT)),
        "/realtime" => Some((EventKind::Realtime, "/v1/realtime")),
        _ => None,
    }
}

/// A model request refused before its handler ran: answered with `err` and recorded
/// under the default configuration.
fn refuse(
    state: &State,
    req: Request,
    request_id: &str,
    kind: EventKind,
    endpoint: &str,
    err: &ApiError,
) {
    state.events.record(Event {
        configuration: Some(state.default_runtime().config.name.clone()),
        status: err.status,
        error: Some(err.body.message.clone()),
        ..event_for(&req, request_id, kind, endpoint)
    });
    Reply::error(err).send(req, request_id);
}

/// Answers a read of the catalog (`make` gives the reply) and records the access.
fn read_models(state: &State, req: Request, request_id: &str, make: impl FnOnce() -> Reply) {
    let started = std::time::Instant::now();
    let reply = make();
    record_access(state, &req, request_id, "/v1/models", reply.status, started);
    reply.send(req, request_id);
}

/// With audit-logger `log_all_access`, reads are recorded too.
fn record_access(
    state: &State,
    req: &Request,
    request_id: &str,
    endpoint: &str,
    status: u16,
    started: std::time::Instant,
) {
    let rt = state.default_runtime();
    let Some(audit) = rt.chain.audit().filter(|a| a.log_all_access) else {
        return;
    };
    state.events.record(Event {
        configuration: Some(rt.config.name.clone()),
        status,
        latency_ms: started.elapsed().as_secs_f64() * 1000.0,
        chain: audit.immutable,
        ..event_for(req, request_id, EventKind::Models, endpoint)
    });
}

fn models(state: &State) -> Reply {
    let created = crate::providers::unix_now();
    let data: Vec<ModelEntry> = crate::router::catalog(&state.default_runtime().config)
        .into_iter()
        .map(|(id, owned_by)| ModelEntry {
            id,
            object: "model".to_string(),
            created,
            owned_by,
        })
        .collect();
    let body = serde_json::json!({"object": "list", "data": data});
    Reply::json(200, body.to_string().into_bytes())
}

/// The model id of `GET /v1/models/{model}` (percent-decoded; it may hold `/`, as a
/// provider pin `openai/gpt-4o` does).
fn model_path(path: &str) -> Option<String> {
    let id = path
        .strip_prefix("/v1/models/")
        .or_else(|| path.strip_prefix("/models/"))?;
    let id = percent_encoding::percent_decode_str(id)
        .decode_utf8()
        .ok()?;
    (!id.is_empty()).then(|| id.into_owned())
}

/// `GET /v1/models/{model}`: the model, when a request naming it would be served (the
/// catalog's names, provider pins, target ids, deprecated names); else the chat path's
/// 404 `model_not_found`.
fn model(state: &State, id: String) -> Reply {
    let rt = state.default_runtime();
    let config = &rt.config;
    match crate::router::resolve(config, &id) {
        Ok(res) => {
            let owned_by = res
                .candidates
                .first()
                .and_then(|i| config.targets.get(*i))
                .map_or("keeptrusts", |t| t.kind.as_str());
            let entry = ModelEntry {
                owned_by: owned_by.to_string(),
                id,
                object: "model".to_string(),
                created: crate::providers::unix_now(),
            };
            match serde_json::to_vec(&entry) {
                Ok(body) => Reply::json(200, body),
                Err(e) => Reply::error(&ApiError::internal(e.to_string())),
            }
        }
        Err(e) => Reply::error(&e),
    }
}

fn health(state: &State) -> Reply {
    // The event writer's counters; `degraded` while it retries a failing database.
    let events = state.events.stats();
    let rt = state.default_runtime();
    let body = serde_json::json!({
        "status": if events.error.is_some() { "degraded" } else { "ok" },
        "version": env!("CARGO_PKG_VERSION"),
        "configuration": rt.config.name,
        "policies": rt.chain.names(),
        "events": events,
    });
    Reply::json(200, body.to_string().into_bytes())
}
