//! `POST /v1/embeddings`: the chat path's auth, admission, input policies, routing and
//! events for an embeddings request.
//!
//! The input phase reads each text input as a user message (`EmbeddingRequest::chat_view`);
//! its redactions are written back before anything goes upstream, and a block is the
//! usual 409. Token-id inputs are read as the text they encode (`cl100k_base`); after a
//! redaction the redacted text goes instead of the ids. Only the targets serving the model
//! itself are tried — a fallback to another model would answer vectors of another space.
//! OpenAI-format targets get the client's own bytes while no policy rewrote them (and no
//! key is written twice: another parser could read the other value), and
//! their answer goes back as sent (plus `x_keeptrusts`); other providers' answers are
//! rebuilt as OpenAI's list, encoded as the client asked (`encoding_format`).

use std::sync::Arc;
use std::time::Instant;

use super::chat::{self, Native, Prepared, Upstream};
use super::conn::Request;
use super::http::{event_for, read_body};
use super::{unary, State};
use crate::openai::embeddings::{EmbeddingRequest, EmbeddingResponse};
use crate::openai::{splice, ApiError, Usage};
use crate::policy::audit_logger::Payload;
use crate::providers::{self, EmbeddingAnswer};
use crate::store::{Event, EventKind};

pub const ENDPOINT: &str = "/v1/embeddings";

pub fn handle(state: &Arc<State>, mut req: Request, request_id: &str) {
    let started = Instant::now();
    let mut ev = event_for(&req, request_id, EventKind::Embeddings, ENDPOINT);
    let mut headers = Vec::new();
    let mut p = match prepare(state, &mut req, request_id, started, &mut ev, &mut headers) {
        Ok(p) => p,
        Err(e) => return chat::refuse(state, req, request_id, &mut ev, started, headers, &e),
    };
    let result = answer(state, &mut p, &mut ev);
    unary::send(state, req, &p, &mut ev, result);
}

/// Auth, parse, then the chat path's routing, admission and input phase over the texts.
fn prepare(
    state: &State,
    req: &mut Request,
    request_id: &str,
    started: Instant,
    ev: &mut Event,
    headers: &mut Vec<(String, String)>,
) -> Result<Prepared, ApiError> {
    let (runtime, key, client_key) = chat::caller(state, req, ev)?;
    let body = read_body(req, runtime.config.max_body_bytes)?;
    let payload = chat::payload_mode(&runtime);
    if payload == Payload::Full {
        ev.request_body = Some(String::from_utf8_lossy(&body).into_owned());
    }
    let (mut embed, exact) = EmbeddingRequest::parse_exact(&body)?;
    ev.model_requested = Some(embed.model.clone());
    embed.decode_tokens()?;
    let view = embed.chat_view();
    // The client's bytes stay on `p.raw` while no policy rewrote the texts.
    let raw = exact.then_some(body);
    let mut p = chat::prepare_chat(
        state, runtime, key, client_key, view, raw, request_id, started, ev, headers,
    )?;
    // Only the model asked for: another model's vectors are not comparable.
    p.resolution.candidates.truncate(p.resolution.serving);
    let rewrote = p.chat.messages.iter().map(|m| m.text_content()).ne(embed
        .texts()
        .unwrap_or_default()
        .into_iter()
        .map(str::to_string));
    if rewrote {
        embed.write_back(&p.chat);
    }
    if payload == Payload::Redacted && p.raw.is_none() {
        // What goes upstream (`prepare_chat` recorded the client's bytes when they go).
        ev.request_body = serde_json::to_string(&embed).ok();
    }
    p.native = Some(Native::Embeddings(embed));
    Ok(p)
}

/// Calls the targets and gives the client's body.
fn answer(state: &State, p: &mut Prepared, ev: &mut Event) -> Result<Vec<u8>, ApiError> {
    let (ti, upstream) = chat::call_upstream(state, p, ev)?;
    let config = p.runtime.config.clone();
    let target = config
        .targets
        .get(ti)
        .ok_or_else(|| ApiError::internal("routing chose a missing target"))?;
    let Some(Native::Embeddings(embed)) = &p.native else {
        return Err(ApiError::internal("an embeddings request without its body"));
    };
    let (vectors, prompt_tokens) = match upstream {
        Upstream::Mock => {
            let (vectors, tokens) = providers::mock::embed(embed)?;
            (vectors, Some(tokens))
        }
        Upstream::Http(resp) => {
            if !(200..300).contains(&resp.status) {
                return Err(chat::upstream_error(target, resp));
            }
            let body = resp.read_all()?;
            match providers::adapter_for(target).parse_embeddings(target, embed, &body)? {
                EmbeddingAnswer::AsSent { usage } => {
                    let meta = serde_json::to_vec(&chat::meta(p, Some(target)))
                        .map_err(|e| ApiError::internal(format!("x_keeptrusts: {e}")))?;
                    let out =
                        splice::with_member(&body, "x_keeptrusts", &meta).ok_or_else(|| {
                            ApiError::bad_gateway(
                                "upstream returned an embeddings answer that is no JSON object",
                            )
                        })?;
                    let tokens = usage.map(|u| u.prompt_tokens);
                    return Ok(finish(state, p, ev, target, tokens, out));
                }
                EmbeddingAnswer::Vectors {
                    vectors,
                    prompt_tokens,
                } => (vectors, prompt_tokens),
            }
        }
    };
    if vectors.len() != embed.input.len() {
        return Err(ApiError::bad_gateway(format!(
            "upstream returned {} embeddings for {} inputs",
            vectors.len(),
            embed.input.len()
        )));
    }
    // A provider that does not count tokens: kt's estimate.
    let tokens = prompt_tokens.unwrap_or_else(|| embed.input.estimated_tokens());
    let mut resp = EmbeddingResponse::new(&target.model, vectors, embed.encoding(), tokens);
    resp.x_keeptrusts = Some(chat::meta(p, Some(target)));
    let out = serde_json::to_vec(&resp)
        .map_err(|e| ApiError::internal(format!("failed to serialize the response: {e}")))?;
    Ok(finish(state, p, ev, target, Some(tokens), out))
}

/// Usage and cost on the event, admission settled; the vectors are recorded only with
/// `payload: full` (they say nothing a redaction could hide, and they are large).
fn finish(
    state: &State,
    p: &mut Prepared,
    ev: &mut Event,
    target: &crate::config::Target,
    prompt_tokens: Option<u64>,
    out: Vec<u8>,
) -> Vec<u8> {
    ev.ttft_ms = Some(chat::ms(p.started));
    if let Some(t) = prompt_tokens {
        chat::set_usage(ev, &Usage::new(t, 0));
    }
    chat::settle(state, p, ev, Some(target));
    if chat::payload_mode(&p.runtime) == Payload::Full {
        ev.response_body = Some(String::from_utf8_lossy(&out).into_owned());
    }
    out
}
