//! `openai:responses:<model>` targets: the upstream answered the client's own Responses
//! request, and its answer is relayed, not rebuilt (unknown fields and event types pass
//! through). The output phase still runs: on the `response` body's output text (a
//! redaction rewrites it, a block is a 409), and on a stream through the same stream
//! filter as chat (`response.output_text.delta` redacted as it flows; a block at the end
//! is an in-band `error` and `response.failed`). Usage comes from the `response`.

use std::io::Read;
use std::sync::Arc;
use std::time::Instant;

use crate::gateway::conn::Request;
use serde_json::Value;

use super::{error_code, failed_code, write_events};
use crate::config::Target;
use crate::gateway::chat::{self, finish_event, finish_ok, meta, ms, Prepared, Upstream};
use crate::gateway::http::Reply;
use crate::gateway::streaming::SseWriter;
use crate::gateway::transport::UpstreamResponse;
use crate::gateway::{routing, stream, State};
use crate::openai::ApiError;
use crate::policy::audit_logger::Payload;
use crate::policy::chain::Block;
use crate::policy::{ChainOutcome, StreamFilter};
use crate::providers::responses::native::{native_usage, native_view};
use crate::providers::responses::relay::{Relay, Rewriter};
use crate::providers::responses::{write_back, TypedEvent};
use crate::providers::sse::SseParser;
use crate::store::Event;

impl Rewriter for StreamFilter {
    fn push(&mut self, text: &str) -> String {
        StreamFilter::push(self, text)
    }

    fn finish(&mut self) -> String {
        StreamFilter::finish(self)
    }

    fn is_empty(&self) -> bool {
        StreamFilter::is_empty(self)
    }
}

fn http(upstream: Upstream) -> Result<UpstreamResponse, ApiError> {
    match upstream {
        Upstream::Http(resp) => Ok(resp),
        Upstream::Mock => Err(ApiError::internal(
            "the mock provider does not speak the Responses API",
        )),
    }
}

/// The upstream's `response` body after the output phase, with `x_keeptrusts`.
pub fn unary(
    state: &State,
    p: &mut Prepared,
    ev: &mut Event,
    target: &Target,
    upstream: Upstream,
) -> Result<Vec<u8>, ApiError> {
    let resp = http(upstream)?;
    if !(200..300).contains(&resp.status) {
        return Err(chat::upstream_error(target, resp));
    }
    let bytes = resp.read_all()?;
    let mut body: Value = serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::bad_gateway(format!("upstream returned an invalid response object: {e}"))
    })?;
    ev.ttft_ms = Some(ms(p.started));
    if let Some(u) = native_usage(&body) {
        chat::set_usage(ev, &u);
    }
    chat::settle(state, p, ev, Some(target));
    let payload = chat::payload_mode(&p.runtime);
    if payload == Payload::Full {
        ev.response_body = Some(String::from_utf8_lossy(&bytes).into_owned());
    }
    let (mut view, origins) = native_view(&body);
    chat::output_phase(p, ev, &mut view)?;
    if let Some(c) = view.choices.first() {
        write_back(&mut body, std::slice::from_ref(&c.message), &origins);
    }
    if let (Some(o), Ok(m)) = (
        body.as_object_mut(),
        serde_json::to_value(meta(p, Some(target))),
    ) {
        o.insert("x_keeptrusts".to_string(), m);
    }
    let out = serde_json::to_vec(&body)
        .map_err(|e| ApiError::internal(format!("failed to serialize the response: {e}")))?;
    if payload == Payload::Redacted {
        ev.response_body = Some(String::from_utf8_lossy(&out).into_owned());
    }
    Ok(out)
}

/// Why a relayed stream stopped early.
enum Stop {
    ClientGone,
    Upstream(ApiError),
    /// The output phase refused a tool call before the client saw it complete.
    Blocked(ChainOutcome),
}

/// Checks each tool call of a native stream once its arguments are complete, before the
/// client gets the event that completes it (`.done`): an agent may act on that event, so
/// a call the policies refuse (`agent-firewall`) must not reach it. The call's name comes
/// from its `response.output_item.added`.
struct CallCheck<'a> {
    p: &'a Prepared,
    /// `output_index` → the call item as announced (type, name, call id).
    announced: Vec<(u64, Value)>,
    checked: Vec<u64>,
}

impl CallCheck<'_> {
    /// `Some` when the policies refuse the call this upstream event completes.
    fn check(&mut self, event: &Value) -> Option<ChainOutcome> {
        let kind = event.get("type").and_then(Value::as_str)?;
        let o = event.get("output_index").and_then(Value::as_u64)?;
        let is_call = |item: &Value| {
            matches!(
                item.get("type").and_then(Value::as_str),
                Some("function_call" | "custom_tool_call")
            )
        };
        let item = match kind {
            "response.output_item.added" => {
                if let Some(item) = event.get("item").filter(|i| is_call(i)) {
                    self.announced.push((o, item.clone()));
                }
                return None;
            }
            "response.function_call_arguments.done" | "response.custom_tool_call_input.done" => {
                let field = if kind == "response.custom_tool_call_input.done" {
                    "input"
                } else {
                    "arguments"
                };
                let mut item = self
                    .announced
                    .iter()
                    .find(|(at, _)| *at == o)
                    .map(|(_, item)| item.clone())?;
                item[field] = event.get(field).cloned().unwrap_or(Value::Null);
                if let Some(name) = event.get("name").filter(|n| n.is_string()) {
                    item["name"] = name.clone();
                }
                item
            }
            "response.output_item.done" => event.get("item").filter(|i| is_call(i))?.clone(),
            _ => return None,
        };
        if self.checked.contains(&o) {
            return None;
        }
        self.checked.push(o);
        let (mut view, _) = native_view(&serde_json::json!({ "output": [item] }));
        let outcome = self.p.runtime.chain.run_output(&self.p.ctx, &mut view);
        outcome.block.is_some().then_some(outcome)
    }
}

type NativeRelay = Relay<StreamFilter, Box<dyn FnMut() -> StreamFilter>>;

/// Relays the upstream's Responses events to the client as they arrive.
pub fn stream(
    state: &Arc<State>,
    req: Request,
    mut p: Prepared,
    mut ev: Event,
    target: &Target,
    upstream: Upstream,
) {
    let request_id = p.ctx.request_id.clone();
    let resp = match http(upstream) {
        Ok(r) if (200..300).contains(&r.status) => r,
        Ok(r) => return refuse(state, req, &p, &mut ev, &chat::upstream_error(target, r)),
        Err(e) => return refuse(state, req, &p, &mut ev, &e),
    };
    let Ok(mut writer) = SseWriter::answer(req, &request_id, &chat::response_headers(&p)) else {
        ev.status = 499;
        ev.error = Some("client closed the connection".to_string());
        finish_ok(state, &mut ev, p.started);
        return;
    };
    let rt = p.runtime.clone();
    let mut relay: NativeRelay = Relay::new(Box::new(move || rt.chain.stream_filter()));
    let mut first_text = None;
    let mut calls = CallCheck {
        p: &p,
        announced: Vec::new(),
        checked: Vec::new(),
    };
    let result = pump(
        &mut writer,
        &mut relay,
        &mut calls,
        resp.into_reader(),
        p.started,
        &mut first_text,
    );
    ev.ttft_ms = first_text;
    if let Some(u) = relay.terminal().and_then(|(_, r)| native_usage(r)) {
        chat::set_usage(&mut ev, &u);
    }
    chat::settle(state, &mut p, &mut ev, Some(target));
    match result {
        Err(Stop::ClientGone) => {
            ev.status = 499;
            ev.error = Some("client closed the connection during the stream".to_string());
        }
        Err(Stop::Upstream(e)) => {
            routing::record_stream_failure(state, &p.runtime.config, target);
            let events = relay.fail(&error_code(&e), &e.body.message, None, failed_code(&e));
            // The client may be gone; the event says what happened.
            let _ = write_events(&mut writer, events).and_then(|()| writer.end());
            ev.status = e.status;
            ev.error = Some(e.body.message.clone());
        }
        Err(Stop::Blocked(mut outcome)) => {
            stream::add_stream_traces(&mut ev, &outcome.trace, &[]);
            if let Some(block) = outcome.block.take() {
                let events = output_blocked(&mut relay, &mut ev, block);
                ev.status = match write_events(&mut writer, events).and_then(|()| writer.end()) {
                    Ok(()) => 409,
                    Err(_) => 499,
                };
            }
        }
        Ok(()) => complete(&p, target, &mut ev, &mut writer, &mut relay),
    }
    finish_ok(state, &mut ev, p.started);
}

/// The end of a complete upstream stream: the output phase on the whole answer, then the
/// terminal event (or, on a block, `error` and `response.failed`).
fn complete(
    p: &Prepared,
    target: &Target,
    ev: &mut Event,
    writer: &mut SseWriter,
    relay: &mut NativeRelay,
) {
    let Some((kind, resp)) = relay.terminal() else {
        return;
    };
    let upstream_failed = (kind == "response.failed").then(|| {
        resp.pointer("/error/message")
            .and_then(Value::as_str)
            .unwrap_or("the upstream response failed")
            .to_string()
    });
    let payload = chat::payload_mode(&p.runtime);
    if payload == Payload::Full {
        ev.response_body = serde_json::to_string(resp).ok();
    }
    let (mut view, _) = native_view(resp);
    let output = p.runtime.chain.run_output(&p.ctx, &mut view);
    let streamed: Vec<_> = relay.rewriters().flat_map(StreamFilter::trace).collect();
    stream::add_stream_traces(ev, &output.trace, &streamed);
    let (events, status) = match output.block {
        Some(block) => (output_blocked(relay, ev, block), 409),
        None => {
            let m = serde_json::to_value(meta(p, Some(target))).unwrap_or(Value::Null);
            let events = relay.finish(vec![("x_keeptrusts".to_string(), m)]);
            if payload == Payload::Redacted {
                ev.response_body = events.last().map(|e| e.data["response"].to_string());
            }
            (events, 200)
        }
    };
    ev.status = match write_events(writer, events).and_then(|()| writer.end()) {
        Ok(()) => status,
        Err(_) => 499,
    };
    if let Some(message) = upstream_failed.filter(|_| ev.status == 200) {
        ev.status = 502;
        ev.error = Some(message);
    }
}

/// The events ending a stream the output policies refused (`error`, `response.failed`),
/// the refusing policy noted on the event.
fn output_blocked(relay: &mut NativeRelay, ev: &mut Event, block: Block) -> Vec<TypedEvent> {
    let events = relay.fail(
        "output_blocked",
        &block.message,
        Some(&block.policy),
        "output_blocked",
    );
    ev.blocked_by = Some(block.policy);
    events
}

/// Reads the upstream stream and writes what the relay makes of each event, flushed at
/// once; a tool call the policies refuse stops it before its completing event.
/// Ends at the upstream's end; complete only if a terminal event came.
fn pump(
    writer: &mut SseWriter,
    relay: &mut NativeRelay,
    calls: &mut CallCheck<'_>,
    mut reader: impl Read,
    started: Instant,
    first_text: &mut Option<f64>,
) -> Result<(), Stop> {
    let mut sse = SseParser::new();
    let mut events = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    let mut budget = stream::StreamBudget::default();
    loop {
        let n = match reader.read(&mut buf) {
            Ok(n) => n,
            // Already complete; the connection just will not be reused.
            Err(_) if relay.terminal().is_some() => return Ok(()),
            Err(e) => return Err(Stop::Upstream(stream::read_error(&e))),
        };
        budget.read(n).map_err(Stop::Upstream)?;
        if n == 0 {
            sse.finish(&mut events);
        } else {
            sse.feed(buf.get(..n).unwrap_or_default(), &mut events);
        }
        budget.events(events.len());
        for e in events.drain(..) {
            let data = e.data.trim();
            if data.is_empty() || data == "[DONE]" {
                continue;
            }
            let value: Value = serde_json::from_str(data).map_err(|err| {
                Stop::Upstream(ApiError::bad_gateway(format!(
                    "upstream sent a malformed stream event: {err}"
                )))
            })?;
            if let Some(refused) = calls.check(&value) {
                return Err(Stop::Blocked(refused));
            }
            for out in relay.push(value) {
                writer
                    .event_with(&out.kind, |buf| Ok(serde_json::to_writer(buf, &out.data)?))
                    .map_err(|_| Stop::ClientGone)?;
            }
            if first_text.is_none() && relay.text_sent() {
                *first_text = Some(ms(started));
            }
        }
        if n == 0 {
            if relay.terminal().is_some() {
                return Ok(());
            }
            let message = relay
                .upstream_error()
                .and_then(|e| e.get("message").and_then(Value::as_str))
                .unwrap_or("the upstream closed the stream before it was complete")
                .to_string();
            return Err(Stop::Upstream(ApiError::bad_gateway(message)));
        }
    }
}

fn refuse(state: &State, req: Request, p: &Prepared, ev: &mut Event, e: &ApiError) {
    finish_event(state, ev, p.started, e);
    let mut reply = Reply::error(e);
    reply.headers.extend(chat::response_headers(p));
    reply.send(req, &p.ctx.request_id);
}
