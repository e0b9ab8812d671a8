//! `POST /v1/responses`: the Responses API through the same path as
//! `/v1/chat/completions` (auth, admission, input and output policies, routing, events).
//!
//! The request is translated into a chat request (`providers::responses::request`), which
//! the input phase checks. The target the router picks decides the rest:
//! - `openai:responses:<model>` targets get the client's Responses body as sent (with the
//!   input phase's redactions written back) and their answer is relayed (`native`);
//! - every other target is called in chat form, and the answer translated back: the
//!   `response` object, or — streaming — the typed Responses events made chunk by chunk
//!   from the chat stream (`stream::deliver` with a `ResponsesOut`), as they arrive.
//!
//! Native pass-through needs every target the model may route to to speak the Responses
//! API; when some do not, the request is checked as chat would need it (server-side state
//! is refused) and the Responses targets among them still get the native body.

mod native;

use std::io;
use std::sync::Arc;
use std::time::Instant;

use crate::gateway::conn::Request;
use serde_json::Value;

use super::chat::{self, finish_event, Prepared, Upstream};
use super::http::{event_for, read_body, Reply};
use super::stream::{self, StreamOut};
use super::streaming::SseWriter;
use super::{unary, State};
use crate::openai::responses::ResponsesRequest;
use crate::openai::{ApiError, ChatChunk};
use crate::policy::audit_logger::Payload;
use crate::providers::responses::stream::Translator;
use crate::providers::responses::{self as translate, Strictness, Translated, TypedEvent};
use crate::providers::{self};
use crate::router;
use crate::store::{Event, EventKind};

pub fn handle(state: &Arc<State>, mut req: Request, request_id: &str) {
    let started = Instant::now();
    let mut ev = event_for(&req, request_id, EventKind::Responses, "/v1/responses");
    let mut headers = Vec::new();
    let prepared = prepare(state, &mut req, request_id, started, &mut ev, &mut headers);
    let (rreq, mut p) = match prepared {
        Ok(x) => x,
        Err(e) => return chat::refuse(state, req, request_id, &mut ev, started, headers, &e),
    };
    ev.stream = rreq.is_stream();
    let (ti, upstream) = match chat::call_upstream(state, &mut p, &mut ev) {
        Ok(x) => x,
        Err(e) => return fail(state, req, &p, &mut ev, &e),
    };
    let config = p.runtime.config.clone();
    let Some(target) = config.targets.get(ti) else {
        let e = ApiError::internal("routing chose a missing target");
        return fail(state, req, &p, &mut ev, &e);
    };
    let id = format!("resp_{}", request_id.trim_start_matches("req_"));
    let is_native = p.native.is_some() && target.is_responses_api();
    match (is_native, rreq.is_stream()) {
        (true, true) => native::stream(state, req, p, ev, target, upstream),
        (true, false) => {
            let result = native::unary(state, &mut p, &mut ev, target, upstream);
            unary::send(state, req, &p, &mut ev, result);
        }
        (false, true) => {
            let mut skeleton = translate::skeleton(&rreq, &id, providers::unix_now());
            skeleton.model.clone_from(&p.chat.model);
            stream::deliver(state, req, p, ev, ti, upstream, |w| {
                ResponsesOut::start(w, skeleton)
            });
        }
        (false, false) => {
            let result = translated(state, &mut p, &mut ev, ti, upstream, &rreq, &id);
            unary::send(state, req, &p, &mut ev, result);
        }
    }
}

/// Auth, parse, translate, then the chat path's admission and input policies. When the
/// model routes to `openai:responses:` targets, the body they get is kept on `native`.
fn prepare(
    state: &State,
    req: &mut Request,
    request_id: &str,
    started: Instant,
    ev: &mut Event,
    headers: &mut Vec<(String, String)>,
) -> Result<(ResponsesRequest, Prepared), ApiError> {
    let (runtime, key, client_key) = chat::caller(state, req, ev)?;
    let body = read_body(req, runtime.config.max_body_bytes)?;
    if chat::payload_mode(&runtime) == Payload::Full {
        ev.request_body = Some(String::from_utf8_lossy(&body).into_owned());
    }
    let (rreq, raw) = parse_request(&body)?;
    // An unknown model is reported by `prepare_chat`, as for chat.
    let natives: Vec<bool> = router::resolve(&runtime.config, &rreq.model)
        .map(|r| {
            r.candidates
                .iter()
                .filter_map(|&i| runtime.config.targets.get(i))
                .map(|t| t.is_responses_api())
                .collect()
        })
        .unwrap_or_default();
    let any_native = natives.iter().any(|n| *n);
    let strictness = if any_native && natives.iter().all(|n| *n) {
        Strictness::Lenient
    } else {
        Strictness::Strict
    };
    let Translated { chat, origins } = translate::to_chat(&rreq, strictness)?;
    let mut p = chat::prepare_chat(
        state, runtime, key, client_key, chat, None, request_id, started, ev, headers,
    )?;
    if any_native {
        let mut native = raw;
        translate::write_back(&mut native, &p.chat.messages, &origins);
        translate::write_back_tools(&mut native, &p.chat);
        if chat::payload_mode(&p.runtime) == Payload::Redacted {
            ev.request_body = serde_json::to_string(&native).ok();
        }
        p.native = Some(chat::Native::Responses(native));
    }
    Ok((rreq, p))
}

/// A chat answer as the `response` object, after the output policies.
fn translated(
    state: &State,
    p: &mut Prepared,
    ev: &mut Event,
    ti: usize,
    upstream: Upstream,
    rreq: &ResponsesRequest,
    id: &str,
) -> Result<Vec<u8>, ApiError> {
    let chat_resp = unary::answer_whole(state, p, ev, ti, upstream)?;
    let mut done = translate::from_chat(&chat_resp, rreq, id, providers::unix_now());
    done.x_keeptrusts = chat_resp.x_keeptrusts.clone();
    let body = serde_json::to_string(&done)
        .map_err(|e| ApiError::internal(format!("failed to serialize the response: {e}")))?;
    if chat::payload_mode(&p.runtime) == Payload::Redacted {
        ev.response_body = Some(body.clone());
    }
    Ok(body.into_bytes())
}

fn fail(state: &State, req: Request, p: &Prepared, ev: &mut Event, e: &ApiError) {
    finish_event(state, ev, p.started, e);
    let mut reply = Reply::error(e);
    reply.headers.extend(chat::response_headers(p));
    reply.send(req, &p.ctx.request_id);
}

/// Parses and checks the body: malformed JSON and a missing `model` are 400s naming the
/// parameter. Returns the typed request and the body as sent.
pub fn parse_request(body: &[u8]) -> Result<(ResponsesRequest, Value), ApiError> {
    let value = crate::openai::request_object(body)?;
    let rreq = serde_json::from_value(value.clone())
        .map_err(|e| ApiError::bad_request(format!("Invalid request: {e}")).with_param("input"))?;
    Ok((rreq, value))
}

/// A chat stream as Responses events: each chunk becomes its events at once.
struct ResponsesOut {
    writer: SseWriter,
    events: Translator,
}

impl ResponsesOut {
    /// Sends `response.created` and `response.in_progress` right away.
    fn start(
        mut writer: SseWriter,
        skeleton: crate::openai::responses::ResponseObject,
    ) -> io::Result<ResponsesOut> {
        let mut events = Translator::new(skeleton);
        write_events(&mut writer, events.start())?;
        Ok(ResponsesOut { writer, events })
    }
}

impl StreamOut for ResponsesOut {
    fn chunk(&mut self, c: &ChatChunk) -> io::Result<()> {
        write_events(&mut self.writer, self.events.push(c))
    }

    fn error(&mut self, e: &ApiError) -> io::Result<()> {
        let code = error_code(e);
        let events = self.events.fail(
            &code,
            &e.body.message,
            e.body.policy.as_deref(),
            failed_code(e),
        );
        write_events(&mut self.writer, events)
    }

    fn finish(&mut self, last: &ChatChunk) -> io::Result<()> {
        let mut events = self.events.push(last);
        events.extend(self.events.finish(last.x_keeptrusts.clone()));
        write_events(&mut self.writer, events)
    }

    fn end(&mut self) -> io::Result<()> {
        self.writer.end()
    }
}

/// Writes typed events, each flushed at once.
pub fn write_events(w: &mut SseWriter, events: Vec<TypedEvent>) -> io::Result<()> {
    for e in events {
        w.event_with(&e.kind, |buf| Ok(serde_json::to_writer(buf, &e.data)?))?;
    }
    Ok(())
}

/// The `code` of an in-band `error` event: the error's own code, else its type.
pub fn error_code(e: &ApiError) -> String {
    e.code_str().unwrap_or(&e.body.kind).to_string()
}

/// `response.error.code` of a failed response: a policy block keeps its code; otherwise
/// the Responses API's codes for rate limits and server errors.
pub fn failed_code(e: &ApiError) -> &str {
    match e.status {
        409 => e.code_str().unwrap_or("output_blocked"),
        429 => "rate_limit_exceeded",
        _ => "server_error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_validation_names_the_parameter() {
        assert_eq!(parse_request(b"{nope").unwrap_err().status, 400);
        assert_eq!(parse_request(b"[1]").unwrap_err().status, 400);
        let e = parse_request(br#"{"input":"x"}"#).unwrap_err();
        assert_eq!(e.body.param.as_deref(), Some("model"));
        let e =
            parse_request(br#"{"model":"m","input":"x","max_output_tokens":"many"}"#).unwrap_err();
        assert_eq!(e.status, 400);
        let (_, raw) = parse_request(br#"{"model":"m","input":"x","x_new":1}"#).unwrap();
        assert_eq!(raw["x_new"], 1);
    }

    #[test]
    fn failures_carry_the_responses_codes() {
        let block = ApiError::policy_violation("pii-detector", true, "no");
        assert_eq!(
            (error_code(&block).as_str(), failed_code(&block)),
            ("output_blocked", "output_blocked")
        );
        let e = ApiError::bad_gateway("the upstream stream failed");
        assert_eq!(failed_code(&e), "server_error");
        assert_eq!(
            failed_code(&ApiError::new(429, "rate_limit_error", None, "slow")),
            "rate_limit_exceeded"
        );
    }
}
