//! `POST /v1/chat/completions`: parse, input policies, route, call the upstream in its
//! own format, translate back, output policies, reply (or stream), record the event.

use std::sync::Arc;
use std::time::Instant;

use crate::gateway::conn::Request;
use crate::store::events::JsonText;

use super::admission::{self, Grant};
use super::auth::{self, ClientKey, Presented};
use super::http::{event_for, read_body, Reply};
use super::transport::UpstreamResponse;
use super::{stream, unary, Runtime, State};
use crate::config::Target;
use crate::openai::embeddings::EmbeddingRequest;
use crate::openai::{ApiError, ChatRequest, ChatResponse, KeeptrustsMeta};
use crate::policy::audit_logger::Payload;
use crate::policy::chain::{ChainOutcome, PolicyTrace};
use crate::policy::{RequestContext, Verdict};
use crate::providers;
use crate::router::{self, Resolution};
use crate::store::keys::KeyRecord;
use crate::store::writer::Recorded;
use crate::store::{Event, EventKind};

/// What the client sent, checked and routed, ready to go upstream.
pub struct Prepared {
    pub runtime: Arc<Runtime>,
    pub chat: ChatRequest,
    pub resolution: Resolution,
    pub ctx: RequestContext,
    /// A non-gateway key the client sent, forwarded when the target has none.
    pub client_key: Option<ClientKey>,
    pub started: Instant,
    /// Rate-limit and budget admission; settled with the real usage.
    pub grant: Option<Grant>,
    /// Headers for every response to this request (rate limits, budget).
    pub headers: Vec<(String, String)>,
    /// A body that is no chat request, which targets get instead of `chat` (the input
    /// phase's view of it).
    pub native: Option<Native>,
    /// The client's body as sent, while no policy rewrote the request (OpenAI-format
    /// targets get these bytes: `BuildContext::raw_body`).
    pub raw: Option<RawBody>,
}

/// What goes upstream instead of the chat request.
pub enum Native {
    /// `/v1/responses`: the Responses body (after the input phase) that
    /// `openai:responses:<model>` targets get as it is.
    Responses(serde_json::Value),
    /// `/v1/embeddings`: the request (after the input phase), for every target in its
    /// provider's format.
    Embeddings(EmbeddingRequest),
}

/// A request body as the client sent it.
pub struct RawBody {
    pub bytes: Vec<u8>,
    /// The `model` it names.
    pub model: String,
}

/// The upstream that answered.
pub enum Upstream {
    /// The built-in mock provider.
    Mock,
    Http(UpstreamResponse),
}

pub fn handle(state: &Arc<State>, mut req: Request, request_id: &str) {
    let started = Instant::now();
    let mut ev = event_for(
        &req,
        request_id,
        EventKind::ChatCompletion,
        "/v1/chat/completions",
    );
    let mut headers = Vec::new();
    let prepared = caller(state, &req, &mut ev).and_then(|(runtime, key, client_key)| {
        prepare(
            state,
            runtime,
            key,
            client_key,
            &mut req,
            request_id,
            started,
            &mut ev,
            &mut headers,
        )
    });
    let prepared = match prepared {
        Ok(p) => p,
        Err(e) => return refuse(state, req, request_id, &mut ev, started, headers, &e),
    };
    if prepared.chat.is_stream() {
        stream::run(state, req, prepared, ev);
    } else {
        unary::run(state, req, prepared, ev);
    }
}

/// Answers a request refused before it was prepared (auth, body, routing, admission,
/// input policies), with the headers admission gave, and records its event.
pub fn refuse(
    state: &State,
    req: Request,
    request_id: &str,
    ev: &mut Event,
    started: Instant,
    headers: Vec<(String, String)>,
    e: &ApiError,
) {
    finish_event(state, ev, started, e);
    let mut reply = Reply::error(e);
    reply.headers.extend(headers);
    reply.send(req, request_id);
}

/// Who is calling and under which configuration: a gateway key selects its bound
/// configuration; without one, the gateway's default (unless `gateway.auth.require_key`).
pub fn caller(state: &State, req: &Request, ev: &mut Event) -> Result<Caller, ApiError> {
    caller_for(state, req, auth::presented(req), ev)
}

/// `caller` for a credential found elsewhere than in the headers (a WebSocket
/// subprotocol); a provider key goes on with `req`'s account headers.
pub fn caller_for(
    state: &State,
    req: &Request,
    presented: Presented,
    ev: &mut Event,
) -> Result<Caller, ApiError> {
    let loaded = state.loaded();
    let default = loaded.default.clone();
    ev.configuration = Some(default.config.name.clone());
    ev.chain = default.chain.audit().is_some_and(|a| a.immutable);
    let (runtime, key, client_key) = match presented {
        Presented::GatewayKey(k) => {
            let record = state.keys.validate(&k)?;
            ev.key_name = Some(record.name.clone());
            ev.team.clone_from(&record.team);
            let rt = loaded.by_name.get(&record.configuration_id).cloned().ok_or_else(|| {
                ApiError::new(
                    403,
                    "invalid_request_error",
                    Some("configuration_not_loaded"),
                    format!(
                        "Gateway key `{}` is bound to configuration `{}`, which this gateway has not loaded.",
                        record.name, record.configuration_id
                    ),
                )
            })?;
            (rt, Some(record), None)
        }
        Presented::Other(_) | Presented::None if require_key(&default) => {
            return Err(ApiError::unauthorized(
                "This gateway requires a gateway key: send `Authorization: Bearer kt_gk_…` (create one with `kt gateway-key create`).",
            ))
        }
        Presented::Other(k) => (default, None, Some(ClientKey::with_account(k, req))),
        Presented::None => (default, None, None),
    };
    ev.configuration = Some(runtime.config.name.clone());
    ev.chain = runtime.chain.audit().is_some_and(|a| a.immutable);
    Ok((runtime, key, client_key))
}

/// The configuration a request runs under, its gateway key, and a provider key to forward.
pub type Caller = (Arc<Runtime>, Option<KeyRecord>, Option<ClientKey>);

fn require_key(rt: &Runtime) -> bool {
    rt.config
        .spec
        .gateway
        .auth
        .as_ref()
        .is_some_and(|a| a.require_key)
}

#[allow(clippy::too_many_arguments)]
fn prepare(
    state: &State,
    runtime: Arc<Runtime>,
    key: Option<KeyRecord>,
    client_key: Option<ClientKey>,
    req: &mut Request,
    request_id: &str,
    started: Instant,
    ev: &mut Event,
    headers: &mut Vec<(String, String)>,
) -> Result<Prepared, ApiError> {
    let body = read_body(req, runtime.config.max_body_bytes)?;
    let payload = payload_mode(&runtime);
    if payload == Payload::Full {
        ev.request_body = Some(String::from_utf8_lossy(&body).into_owned());
    }
    let (chat, exact) = parse_request(&body)?;
    prepare_chat(
        state,
        runtime,
        key,
        client_key,
        chat,
        exact.then_some(body),
        request_id,
        started,
        ev,
        headers,
    )
}

/// The steps after parsing: route, admission, input policies. Shared with
/// `/v1/responses`, which parses its own body into a chat request. `raw`: the body
/// `chat` was parsed from, when it is a chat request.
#[allow(clippy::too_many_arguments)]
pub fn prepare_chat(
    state: &State,
    runtime: Arc<Runtime>,
    key: Option<KeyRecord>,
    client_key: Option<ClientKey>,
    mut chat: ChatRequest,
    raw: Option<Vec<u8>>,
    request_id: &str,
    started: Instant,
    ev: &mut Event,
    headers: &mut Vec<(String, String)>,
) -> Result<Prepared, ApiError> {
    let payload = payload_mode(&runtime);
    ev.model_requested = Some(chat.model.clone());
    ev.stream = chat.is_stream();
    let resolution = router::resolve(&runtime.config, &chat.model)?;
    let pricing = resolution
        .candidates
        .first()
        .and_then(|&i| runtime.config.targets.get(i))
        .and_then(|t| t.pricing);
    // The gateway-wide limits come from the default configuration.
    let grant = admission::admit(
        state,
        &state.default_runtime().config,
        key.as_ref(),
        &chat,
        pricing.as_ref(),
    )?;
    headers.extend(grant.headers.iter().cloned());
    let ctx = RequestContext {
        request_id: request_id.to_string(),
        model: resolution.model.clone(),
        key_name: key.as_ref().map(|k| k.name.clone()),
        team: key.as_ref().and_then(|k| k.team.clone()),
    };
    let input = runtime.chain.run_input(&ctx, &mut chat);
    add_trace(ev, &input.trace);
    if let Some(block) = input.block {
        ev.blocked_by = Some(block.policy.clone());
        return Err(ApiError::policy_violation(
            &block.policy,
            false,
            block.message,
        ));
    }
    let raw = raw.filter(|_| !input.rewrote()).map(|bytes| RawBody {
        bytes,
        model: chat.model.clone(),
    });
    if payload == Payload::Redacted {
        // What was sent upstream: after every input redaction (none: the client's body).
        ev.request_body = raw
            .as_ref()
            .and_then(|r| std::str::from_utf8(&r.bytes).ok())
            .map(str::to_string)
            .or_else(|| serde_json::to_string(&chat).ok());
    }
    Ok(Prepared {
        runtime,
        chat,
        resolution,
        ctx,
        client_key,
        started,
        grant: Some(grant),
        headers: std::mem::take(headers),
        native: None,
        raw,
    })
}

/// Parses and checks the body: malformed JSON and missing fields are 400s naming the
/// parameter. The flag: the body says exactly what the request says (no duplicate key
/// whose value another parser could take differently), so its bytes may go upstream.
pub fn parse_request(body: &[u8]) -> Result<(ChatRequest, bool), ApiError> {
    // The usual well-formed request straight into its type; anything this does not take
    // (bad JSON, a missing or empty field, a duplicate key) goes the checking way below,
    // which gives the same request when there is one and the precise error otherwise.
    if let Ok(chat) = crate::openai::from_json::<ChatRequest>(body) {
        if !chat.model.is_empty() && !chat.messages.is_empty() {
            return Ok((chat, true));
        }
    }
    let value = crate::openai::request_object(body)?;
    match value.get("messages") {
        None | Some(serde_json::Value::Null) => return Err(ApiError::missing_param("messages")),
        Some(serde_json::Value::Array(a)) if a.is_empty() => {
            return Err(
                ApiError::bad_request("'messages' must contain at least one message.")
                    .with_param("messages"),
            )
        }
        Some(serde_json::Value::Array(_)) => {}
        Some(_) => {
            return Err(
                ApiError::bad_request("'messages' must be an array of messages.")
                    .with_param("messages"),
            )
        }
    }
    serde_json::from_value(value)
        .map(|chat| (chat, false))
        .map_err(|e| ApiError::bad_request(format!("Invalid request: {e}")).with_param("messages"))
}

pub fn add_trace(ev: &mut Event, trace: &[PolicyTrace]) {
    if trace.is_empty() {
        return;
    }
    let mut verdict = Verdict::Allow;
    for t in trace.iter().filter(|t| !t.observed) {
        verdict = verdict.max(t.verdict);
    }
    let current = match ev.verdict.as_str() {
        "block" => Verdict::Block,
        "redact" => Verdict::Redact,
        "flag" => Verdict::Flag,
        _ => Verdict::Allow,
    };
    ev.verdict = current.max(verdict).as_str().to_string();
    ev.policies
        .get_or_insert_with(JsonText::empty_array)
        .extend_array_with(trace, |t, buf| t.write_json(buf));
}

/// The output phase of a non-streamed answer: its trace goes on the event, and a block
/// is the client's 409 `policy_violation`.
pub fn output_phase(
    p: &Prepared,
    ev: &mut Event,
    resp: &mut ChatResponse,
) -> Result<ChainOutcome, ApiError> {
    let mut output = p.runtime.chain.run_output(&p.ctx, resp);
    add_trace(ev, &output.trace);
    if let Some(block) = output.block.take() {
        let e = ApiError::policy_violation(&block.policy, true, block.message);
        ev.blocked_by = Some(block.policy);
        return Err(e);
    }
    Ok(output)
}

/// Sends the request along the router's plan (strategy, retries, circuit breakers,
/// health, fallback); see `gateway::routing`. Records the decision in `detail.routing`.
pub fn call_upstream(
    state: &State,
    p: &mut Prepared,
    ev: &mut Event,
) -> Result<(usize, Upstream), ApiError> {
    let result = super::routing::call(state, p, ev);
    // The client's bytes only build upstream requests: not held for a long stream.
    p.raw = None;
    result
}

/// Turns a non-2xx upstream answer into the client's error, keeping the status and the
/// retry hints.
pub fn upstream_error(target: &Target, resp: UpstreamResponse) -> ApiError {
    let status = resp.status;
    let retry_after = resp
        .header("retry-after-ms")
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map(|ms| ms / 1000.0)
        .or_else(|| {
            resp.header("retry-after")
                .and_then(|v| v.trim().parse::<f64>().ok())
        });
    let headers = resp.header_pairs();
    let body = resp.read_all().unwrap_or_default();
    let mut err = providers::adapter_for(target).parse_error_with_headers(status, &headers, &body);
    err.retry_after = retry_after.or(err.retry_after);
    err
}

/// Headers every completion carries: deprecation notices.
pub fn response_headers(p: &Prepared) -> Vec<(String, String)> {
    let mut h = p.headers.clone();
    if let Some(succ) = &p.resolution.deprecated_successor {
        h.push(("Deprecation".to_string(), "true".to_string()));
        h.push(("X-Model-Deprecated-Successor".to_string(), succ.clone()));
    }
    h
}

pub fn meta(p: &Prepared, target: Option<&Target>) -> KeeptrustsMeta {
    KeeptrustsMeta {
        routing_decision_id: ["kt_decision_", p.ctx.request_id.as_str()].concat(),
        provider_used: target.map_or_else(String::new, |t| t.kind.as_str().to_string()),
        cache_status: None,
        region: target.and_then(|t| t.region.clone()),
    }
}

/// What the audit-logger stores of bodies (nothing when it is not in the chain).
pub fn payload_mode(rt: &Runtime) -> Payload {
    rt.chain.audit().map_or(Payload::None, |a| a.payload)
}

/// Prices the request from the usage on the event and the target's pricing, and settles
/// its rate-limit and budget admission.
pub fn settle(state: &State, p: &mut Prepared, ev: &mut Event, target: Option<&Target>) {
    let usage = match (ev.prompt_tokens, ev.completion_tokens) {
        (Some(pt), Some(ct)) => Some(crate::openai::Usage::new(
            u64::try_from(pt).unwrap_or(0),
            u64::try_from(ct).unwrap_or(0),
        )),
        _ => None,
    };
    if let Some(u) = &usage {
        ev.cost_usd = admission::cost(
            target.and_then(|t| t.pricing.as_ref()),
            u.prompt_tokens,
            u.completion_tokens,
        );
    }
    if let Some(g) = p.grant.take() {
        g.settle(state, usage.as_ref(), ev.cost_usd);
    }
}

pub fn set_usage(ev: &mut Event, u: &crate::openai::Usage) {
    ev.prompt_tokens = i64::try_from(u.prompt_tokens).ok();
    ev.completion_tokens = i64::try_from(u.completion_tokens).ok();
    ev.total_tokens = i64::try_from(u.total_tokens).ok();
}

pub fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1000.0
}

/// Records the request's event. With strict durability this returns once the event is
/// committed, or `Recorded::Unavailable`: then a success must not be sent
/// (`audit_unavailable`).
pub fn finish_ok(state: &State, ev: &mut Event, started: Instant) -> Recorded {
    ev.latency_ms = ms(started);
    state.events.record(std::mem::take(ev))
}

pub fn finish_event(state: &State, ev: &mut Event, started: Instant, e: &ApiError) -> Recorded {
    ev.status = e.status;
    if e.status == 409 {
        ev.verdict = Verdict::Block.as_str().to_string();
    } else {
        ev.error = Some(e.body.message.clone());
    }
    finish_ok(state, ev, started)
}

/// Strict durability could not commit the request's event: the answer is withheld.
pub fn audit_unavailable() -> ApiError {
    let mut e = ApiError::new(
        503,
        "server_error",
        Some("audit_unavailable"),
        "The gateway could not record this request in its audit log (audit-logger `durability: strict`), so the answer is withheld. Retry later.",
    );
    e.retry_after = Some(1.0);
    e
}

/// `chatcmpl-…` for answers kt makes itself (mock provider).
pub fn completion_id(request_id: &str) -> String {
    format!("chatcmpl-{}", request_id.trim_start_matches("req_"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_validation_names_the_parameter() {
        assert_eq!(parse_request(b"{nope").unwrap_err().status, 400);
        let e = parse_request(br#"{"messages":[{"role":"user","content":"x"}]}"#).unwrap_err();
        assert_eq!(e.body.param.as_deref(), Some("model"));
        let e = parse_request(br#"{"model":"m"}"#).unwrap_err();
        assert_eq!(e.body.param.as_deref(), Some("messages"));
        let e = parse_request(br#"{"model":"m","messages":[]}"#).unwrap_err();
        assert_eq!(e.body.param.as_deref(), Some("messages"));
        assert!(
            parse_request(br#"{"model":"m","messages":[{"role":"user","content":"x"}]}"#).is_ok()
        );
    }

    #[test]
    fn only_a_body_without_duplicate_keys_may_go_upstream_as_sent() {
        let (chat, exact) =
            parse_request(br#"{"model":"m","messages":[{"role":"user","content":"x"}],"seed":1}"#)
                .unwrap();
        assert!(exact);
        assert_eq!(chat.extra["seed"], 1);
        // Another parser may take the first `content`: the policies saw the last.
        for body in [
            &br#"{"model":"m","messages":[{"role":"user","content":"a","content":"b"}]}"#[..],
            br#"{"model":"m","model":"n","messages":[{"role":"user","content":"x"}]}"#,
            br#"{"messages":[],"model":"m","messages":[{"role":"user","content":"x"}]}"#,
        ] {
            let (_, exact) = parse_request(body).unwrap();
            assert!(!exact, "{}", String::from_utf8_lossy(body));
        }
    }
}
