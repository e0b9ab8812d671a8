//! `POST /v1/responses`: the Responses API on top of the chat path. The request is
//! translated into a chat request (`providers::responses`), checked, routed and answered
//! exactly like `/v1/chat/completions` (admission, input and output policies, routing,
//! events), and the answer is translated back: a `response` object, or its typed SSE
//! event sequence when the client asked to stream.

use std::sync::Arc;
use std::time::Instant;

use tiny_http::Request;

use super::chat::{self, finish_event, finish_ok, Prepared};
use super::http::{header, now_ms, read_body, Reply};
use super::streaming::SseWriter;
use super::State;
use crate::openai::responses::{ResponseObject, ResponsesRequest};
use crate::openai::ApiError;
use crate::policy::audit_logger::Payload;
use crate::policy::Verdict;
use crate::providers::{self, responses as translate};
use crate::store::{Event, EventKind};

/// Characters per streamed text or arguments delta.
const DELTA_CHARS: usize = 24;

pub fn handle(state: &Arc<State>, mut req: Request, request_id: &str) {
    let started = Instant::now();
    let mut ev = Event {
        request_id: request_id.to_string(),
        ts_ms: now_ms(),
        kind: EventKind::Responses,
        endpoint: "/v1/responses".to_string(),
        verdict: Verdict::Allow.as_str().to_string(),
        request_source: header(&req, "x-request-source").map(str::to_string),
        correlation_id: header(&req, "x-correlation-id").map(str::to_string),
        ..Event::default()
    };
    let mut headers = Vec::new();
    let prepared = prepare(state, &mut req, request_id, started, &mut ev, &mut headers);
    let (rreq, mut p) = match prepared {
        Ok(x) => x,
        Err(e) => {
            finish_event(state, &mut ev, started, &e);
            let mut reply = Reply::error(&e);
            reply.headers.extend(headers);
            reply.send(req, request_id);
            return;
        }
    };
    ev.stream = rreq.is_stream();
    let id = format!("resp_{}", request_id.trim_start_matches("req_"));
    let result = answer(state, &mut p, &mut ev, &rreq, &id);
    let done = match result {
        Ok(done) => done,
        Err(e) => {
            finish_event(state, &mut ev, p.started, &e);
            let mut reply = Reply::error(&e);
            reply.headers.extend(chat::response_headers(&p));
            reply.send(req, request_id);
            return;
        }
    };
    ev.status = 200;
    if rreq.is_stream() {
        let http10 = req.http_version() == &tiny_http::HTTPVersion(1, 0);
        let sent = SseWriter::start(
            req.into_writer(),
            http10,
            request_id,
            &chat::response_headers(&p),
        )
        .and_then(|mut w| {
            for (kind, data) in translate::events(&done, DELTA_CHARS) {
                w.event(&kind, data.to_string().as_bytes())?;
            }
            Ok(())
        });
        if sent.is_err() {
            ev.status = 499;
            ev.error = Some("client closed the connection".to_string());
        }
        finish_ok(state, &mut ev, p.started);
        return;
    }
    finish_ok(state, &mut ev, p.started);
    match serde_json::to_vec(&done) {
        Ok(body) => {
            let mut reply = Reply::json(200, body);
            reply.headers.extend(chat::response_headers(&p));
            reply.send(req, request_id);
        }
        Err(e) => Reply::error(&ApiError::internal(format!(
            "failed to serialize the response: {e}"
        )))
        .send(req, request_id),
    }
}

/// Auth, parse, translate, then the chat path's admission and input policies.
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
    let rreq = parse_request(&body)?;
    let chat_req = translate::to_chat(&rreq)?;
    let p = chat::prepare_chat(
        state, runtime, key, client_key, chat_req, request_id, started, ev, headers,
    )?;
    Ok((rreq, p))
}

/// The whole answer, after the output policies, as a `response` object.
fn answer(
    state: &State,
    p: &mut Prepared,
    ev: &mut Event,
    rreq: &ResponsesRequest,
    id: &str,
) -> Result<ResponseObject, ApiError> {
    let chat_resp = chat::unary_response(state, p, ev)?;
    let mut done = translate::from_chat(&chat_resp, rreq, id, providers::unix_now());
    done.x_keeptrusts = chat_resp.x_keeptrusts.clone();
    if chat::payload_mode(&p.runtime) == Payload::Redacted {
        ev.response_body = serde_json::to_string(&done).ok();
    }
    Ok(done)
}

/// Parses and checks the body: malformed JSON and a missing `model` are 400s naming the
/// parameter.
pub fn parse_request(body: &[u8]) -> Result<ResponsesRequest, ApiError> {
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|e| {
        ApiError::invalid_json(format!(
            "We could not parse the JSON body of your request: {e}. Send a valid JSON object."
        ))
    })?;
    let model = value.get("model").and_then(serde_json::Value::as_str);
    if model.is_none_or(str::is_empty) {
        return Err(ApiError::missing_param("model"));
    }
    serde_json::from_value(value)
        .map_err(|e| ApiError::bad_request(format!("Invalid request: {e}")).with_param("input"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_validation_names_the_parameter() {
        assert_eq!(parse_request(b"{nope").unwrap_err().status, 400);
        let e = parse_request(br#"{"input":"x"}"#).unwrap_err();
        assert_eq!(e.body.param.as_deref(), Some("model"));
        let e =
            parse_request(br#"{"model":"m","input":"x","max_output_tokens":"many"}"#).unwrap_err();
        assert_eq!(e.status, 400);
        assert!(parse_request(br#"{"model":"m","input":"x"}"#).is_ok());
    }
}
