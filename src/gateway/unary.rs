//! The non-streamed reply of `POST /v1/chat/completions` (the streamed one is
//! `stream.rs`): the provider's answer parsed, the output phase, the client's body — the
//! provider's bytes plus `x_keeptrusts` when they stand for the answer, else kt's
//! serialisation — and the event.

use std::sync::Arc;

use super::chat::{
    audit_unavailable, call_upstream, completion_id, finish_event, finish_ok, meta, ms,
    output_phase, payload_mode, response_headers, set_usage, settle, upstream_error, Prepared,
    Upstream,
};
use super::conn::Request;
use super::http::Reply;
use super::State;
use crate::openai::{splice, ApiError, AsSent, ChatResponse};
use crate::policy::audit_logger::Payload;
use crate::providers;
use crate::store::Event;

/// Answers a non-streamed chat request and records its event.
pub fn run(state: &Arc<State>, req: Request, mut p: Prepared, mut ev: Event) {
    let result = reply_body(state, &mut p, &mut ev);
    send(state, req, &p, &mut ev, result);
}

/// Records the event of a non-streamed answer and sends the answer (a JSON body) or its
/// error. Shared with `/v1/responses` and `/v1/embeddings`.
pub fn send(
    state: &State,
    req: Request,
    p: &Prepared,
    ev: &mut Event,
    result: Result<Vec<u8>, ApiError>,
) {
    let mut reply = match result {
        Ok(body) => {
            ev.status = 200;
            // Strict durability: no answer leaves without its committed event.
            if finish_ok(state, ev, p.started).is_unavailable() {
                Reply::error(&audit_unavailable())
            } else {
                Reply::json(200, body)
            }
        }
        Err(e) => {
            finish_event(state, ev, p.started, &e);
            Reply::error(&e)
        }
    };
    reply.headers.extend(response_headers(p));
    reply.send(req, &p.ctx.request_id);
}

/// Calls the upstream and gives the client's body (the event is finished by `run`).
fn reply_body(state: &State, p: &mut Prepared, ev: &mut Event) -> Result<Vec<u8>, ApiError> {
    let (ti, upstream) = call_upstream(state, p, ev)?;
    let answered = answer(state, p, ev, ti, upstream)?;
    // The provider's bytes with kt's member added, when they stand for the answer as
    // parsed; else the answer serialised. As a `String` (serde_json prints UTF-8): the
    // event's copy needs no re-validation.
    let spliced = answered.raw.as_ref().and_then(|raw| {
        let meta = serde_json::to_vec(&answered.resp.x_keeptrusts).ok()?;
        String::from_utf8(splice::with_member(raw, "x_keeptrusts", &meta)?).ok()
    });
    let body = match spliced {
        Some(body) => body,
        None => serde_json::to_string(&answered.into_response()?)
            .map_err(|e| ApiError::internal(format!("failed to serialize the response: {e}")))?,
    };
    if payload_mode(&p.runtime) == Payload::Redacted {
        ev.response_body = Some(body.clone());
    }
    Ok(body.into_bytes())
}

/// Once target `ti` answered a non-streaming call: parses the answer and runs the output
/// policies, giving the answer the client may see (a block is a 409). Shared with
/// `/v1/responses`.
pub fn answer_whole(
    state: &State,
    p: &mut Prepared,
    ev: &mut Event,
    ti: usize,
    upstream: Upstream,
) -> Result<ChatResponse, ApiError> {
    answer(state, p, ev, ti, upstream)?.into_response()
}

/// A provider's answer after the output phase, with its bytes when they can stand for it.
struct Answered {
    resp: ChatResponse,
    /// The provider's bytes, when the client may get them (plus `x_keeptrusts`).
    raw: Option<Vec<u8>>,
    /// `resp` was read lean (`AsSent::Lean`): what kt does not model is only in `raw`.
    lean: bool,
}

impl Answered {
    /// The answer parsed whole, for serialising or translating it.
    fn into_response(self) -> Result<ChatResponse, ApiError> {
        let Answered {
            mut resp,
            raw,
            lean,
        } = self;
        if let (true, Some(raw)) = (lean, raw) {
            restore(&mut resp, &raw)?;
        }
        Ok(resp)
    }
}

fn restore(resp: &mut ChatResponse, raw: &[u8]) -> Result<(), ApiError> {
    resp.restore(raw)
        .map_err(providers::openai::invalid_completion)
}

/// `answer_whole`, with the provider's body when it is an OpenAI chat completion that
/// holds everything the parsed answer would serialise to and no output policy rewrote
/// it (`ChatResponse::parse`): the client then gets the provider's bytes (its numbers,
/// key order and fields kt does not model, such as `refusal: null`, as sent) and kt
/// skips a serialisation, and the parse skips building what kt does not model.
fn answer(
    state: &State,
    p: &mut Prepared,
    ev: &mut Event,
    ti: usize,
    upstream: Upstream,
) -> Result<Answered, ApiError> {
    let config = p.runtime.config.clone();
    let target = config.targets.get(ti);
    let (mut resp, mut raw, mut lean) = match (upstream, target) {
        (Upstream::Mock, _) => (
            providers::mock::respond(
                &p.chat,
                &completion_id(&p.ctx.request_id),
                providers::unix_now(),
            ),
            None,
            false,
        ),
        (Upstream::Http(resp), Some(target)) => {
            if !(200..300).contains(&resp.status) {
                return Err(upstream_error(target, resp));
            }
            let body = resp.read_all()?;
            let (parsed, as_sent) =
                providers::adapter_for(target).parse_response_as_sent(target, &body)?;
            (
                parsed,
                as_sent.yes().then_some(body),
                as_sent == AsSent::Lean,
            )
        }
        (Upstream::Http(_), None) => {
            return Err(ApiError::internal("routing chose a missing target"))
        }
    };
    ev.ttft_ms = Some(ms(p.started));
    if let Some(u) = &resp.usage {
        set_usage(ev, u);
    }
    settle(state, p, ev, target);
    let payload = payload_mode(&p.runtime);
    if payload == Payload::Full {
        ev.response_body = match &raw {
            Some(raw) => String::from_utf8(raw.clone()).ok(),
            None => serde_json::to_string(&resp).ok(),
        };
    }
    if output_phase(p, ev, &mut resp)?.rewrote() {
        // kt serialises the rewritten answer: with what the lean read skipped.
        if let Some(raw) = raw.take().filter(|_| lean) {
            restore(&mut resp, &raw)?;
        }
        lean = false;
        // Token logprobs spell the text as the provider wrote it, what was redacted
        // included: they go with a rewrite.
        for c in &mut resp.choices {
            c.logprobs = None;
        }
    }
    resp.x_keeptrusts = Some(meta(p, target));
    Ok(Answered { resp, raw, lean })
}
