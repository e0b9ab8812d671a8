//! A streamed chat completion: every upstream event is translated and written to the
//! client as it arrives. The chunk that closes the stream (finish reason / usage) is held
//! back until the upstream ends, so the output policies can still replace it with an error
//! and `x_keeptrusts` can ride on it.
//!
//! What reaches the client goes through a `StreamOut`: chat SSE (`SseWriter` itself) or,
//! for `/v1/responses`, the typed Responses events made from the same chunks.

use std::io::{self, Read};
use std::sync::Arc;
use std::time::Instant;

use crate::gateway::conn::Request;

use super::chat::{
    self, add_trace, call_upstream, finish_event, finish_ok, meta, ms, Prepared, Upstream,
};
use super::choice_filter::{shows_nothing, ChoiceFilter};
use super::streaming::SseWriter;
use super::State;
use crate::config::Target;
use crate::openai::{ApiError, ChatChunk, StreamAccumulator};
use crate::policy::audit_logger::Payload;
use crate::policy::chain::PolicyTrace;
use crate::policy::{StreamFilter, Verdict};
use crate::providers::{self, StreamEvent};
use crate::store::Event;

/// Why a stream stopped early.
enum Stop {
    /// The client went away (write failed).
    ClientGone,
    /// The upstream failed mid-stream: sent to the client as an in-band error.
    Upstream(ApiError),
}

/// Where the chunks of a stream go, after the output phase's stream filter.
pub trait StreamOut {
    /// One chunk the client may see.
    fn chunk(&mut self, c: &ChatChunk) -> io::Result<()>;
    /// An in-band error (upstream failure, output block); `end` follows.
    fn error(&mut self, e: &ApiError) -> io::Result<()>;
    /// The closing chunk (finish reason, usage, `x_keeptrusts`); `end` follows.
    fn finish(&mut self, last: &ChatChunk) -> io::Result<()>;
    /// Ends the stream. Called once the request's event is recorded (with strict
    /// durability: committed), so a client never sees a complete stream whose audit
    /// event could be lost.
    fn end(&mut self) -> io::Result<()>;
}

/// Chat Completions SSE: `data: <chunk>` events, then `data: [DONE]`.
impl StreamOut for SseWriter {
    fn chunk(&mut self, c: &ChatChunk) -> io::Result<()> {
        self.data_with(|buf| Ok(serde_json::to_writer(buf, c)?))
    }

    fn error(&mut self, e: &ApiError) -> io::Result<()> {
        self.data(&e.to_json())
    }

    fn finish(&mut self, last: &ChatChunk) -> io::Result<()> {
        self.data_with(|buf| Ok(serde_json::to_writer(buf, last)?))
    }

    fn end(&mut self) -> io::Result<()> {
        self.done()
    }
}

pub fn run(state: &Arc<State>, req: Request, mut p: Prepared, mut ev: Event) {
    let request_id = p.ctx.request_id.clone();
    let (ti, upstream) = match call_upstream(state, &mut p, &mut ev) {
        Ok(x) => x,
        Err(e) => {
            finish_event(state, &mut ev, p.started, &e);
            super::http::Reply::error(&e).send(req, &request_id);
            return;
        }
    };
    deliver(state, req, p, ev, ti, upstream, Ok);
}

/// Streams the answer of target `ti` to the client through the `StreamOut` that
/// `make_out` makes of the started SSE response.
pub fn deliver<O: StreamOut>(
    state: &Arc<State>,
    req: Request,
    mut p: Prepared,
    mut ev: Event,
    ti: usize,
    upstream: Upstream,
    make_out: impl FnOnce(SseWriter) -> io::Result<O>,
) {
    let request_id = p.ctx.request_id.clone();
    let config = p.runtime.config.clone();
    let Some(target) = config.targets.get(ti) else {
        let e = ApiError::internal("routing chose a missing target");
        finish_event(state, &mut ev, p.started, &e);
        super::http::Reply::error(&e).send(req, &request_id);
        return;
    };
    if let Upstream::Http(resp) = &upstream {
        if !(200..300).contains(&resp.status) {
            let Upstream::Http(resp) = upstream else {
                return;
            };
            let e = chat::upstream_error(target, resp);
            finish_event(state, &mut ev, p.started, &e);
            let mut reply = super::http::Reply::error(&e);
            reply.headers.extend(chat::response_headers(&p));
            reply.send(req, &request_id);
            return;
        }
    }
    let writer =
        match SseWriter::answer(req, &request_id, &chat::response_headers(&p)).and_then(make_out) {
            Ok(w) => w,
            Err(_) => {
                ev.status = 499;
                ev.error = Some("client closed the connection".to_string());
                finish_ok(state, &mut ev, p.started);
                return;
            }
        };
    let mut pump = Pump {
        writer,
        acc: StreamAccumulator::default(),
        filters: Vec::new(),
        held: None,
        hide_usage: !p.chat.include_usage(),
        first_token: None,
        started: p.started,
        make_filter: {
            let rt = p.runtime.clone();
            move || rt.chain.stream_filter()
        },
    };
    let result = match upstream {
        Upstream::Mock => pump_mock(&mut pump, &p),
        Upstream::Http(resp) => pump_http(&mut pump, target, &p, resp.into_reader()),
    };
    ev.ttft_ms = pump.first_token;
    let Pump {
        writer,
        acc,
        filters,
        held,
        make_filter,
        ..
    } = pump;
    match result {
        Err(Stop::ClientGone) => {
            ev.status = 499;
            ev.error = Some("client closed the connection during the stream".to_string());
            if let Some(u) = &acc.usage {
                chat::set_usage(&mut ev, u);
            }
            chat::settle(state, &mut p, &mut ev, Some(target));
            finish_ok(state, &mut ev, p.started);
        }
        Err(Stop::Upstream(e)) => {
            super::routing::record_stream_failure(state, &config, target);
            // The status is already 200: the error travels in-band; the stream ends once
            // the event is recorded.
            let mut writer = writer;
            let _ = writer.error(&e); // The client may be gone; the event says what happened.
            ev.status = e.status;
            ev.error = Some(e.body.message.clone());
            finish_ok(state, &mut ev, p.started);
            let _ = writer.end();
        }
        Ok(()) => finish_stream(
            state,
            &mut p,
            target,
            ev,
            writer,
            acc,
            filters,
            &make_filter,
            held,
        ),
    }
}

struct Pump<O: StreamOut, F: Fn() -> StreamFilter> {
    writer: O,
    acc: StreamAccumulator,
    /// One redaction filter per choice index.
    filters: Vec<ChoiceFilter>,
    held: Option<ChatChunk>,
    hide_usage: bool,
    first_token: Option<f64>,
    started: Instant,
    make_filter: F,
}

impl<O: StreamOut, F: Fn() -> StreamFilter> Pump<O, F> {
    fn chunk(&mut self, mut c: ChatChunk) -> Result<(), Stop> {
        self.acc.push(&c);
        if self.hide_usage {
            if c.choices.is_empty() && c.usage.is_some() {
                return Ok(());
            }
            c.usage = None;
        }
        let mut held = false;
        for choice in &mut c.choices {
            let idx = choice.index as usize;
            while self.filters.len() <= idx {
                self.filters.push(ChoiceFilter::new((self.make_filter)()));
            }
            if let Some(f) = self.filters.get_mut(idx) {
                held |= f.filter(choice, &self.make_filter);
            }
        }
        // A chunk whose every part the filters hold back is not sent empty.
        if held && c.usage.is_none() && c.choices.iter().all(shows_nothing) {
            return Ok(());
        }
        let closes = c.choices.iter().any(|ch| ch.finish_reason.is_some())
            || (c.choices.is_empty() && c.usage.is_some());
        if let Some(prev) = self.held.take() {
            self.emit(&prev)?;
        }
        if closes {
            self.held = Some(c);
            return Ok(());
        }
        self.emit(&c)
    }

    fn emit(&mut self, c: &ChatChunk) -> Result<(), Stop> {
        self.writer.chunk(c).map_err(|_| Stop::ClientGone)?;
        if self.first_token.is_none() && shows_a_token(c) {
            self.first_token = Some(ms(self.started));
        }
        Ok(())
    }
}

/// Whether a chunk carries text or a tool call: the client's first token, the first time.
fn shows_a_token(c: &ChatChunk) -> bool {
    c.choices.iter().any(|ch| {
        ch.delta.content.as_deref().is_some_and(|s| !s.is_empty())
            || ch.delta.tool_calls.is_some()
            || ch.delta.extra.contains_key("function_call")
            || ch.delta.extra.contains_key("audio")
    })
}

fn pump_mock<O: StreamOut, F: Fn() -> StreamFilter>(
    pump: &mut Pump<O, F>,
    p: &Prepared,
) -> Result<(), Stop> {
    let id = chat::completion_id(&p.ctx.request_id);
    // Always ask the mock for usage so the event has token counts; `hide_usage` keeps it
    // from a client that did not ask.
    let mut req = p.chat.clone();
    req.stream_options
        .get_or_insert_with(Default::default)
        .include_usage = Some(true);
    for (i, c) in providers::mock::stream(&req, &id, providers::unix_now())
        .into_iter()
        .enumerate()
    {
        if i > 1 {
            std::thread::sleep(providers::mock::WORD_DELAY);
        }
        pump.chunk(c)?;
    }
    Ok(())
}

/// The most bytes an upstream stream may send without completing an event.
const MAX_EVENT_BYTES: u64 = 16 * 1024 * 1024;
/// The most bytes one upstream stream may send.
const MAX_STREAM_BYTES: u64 = 256 * 1024 * 1024;

/// Bytes read from an upstream stream, in all and since the decoder last produced an
/// event: an upstream that sends endless bytes without an event boundary (or a
/// decompression bomb) is cut off with a 502.
#[derive(Debug, Default)]
pub struct StreamBudget {
    total: u64,
    since_event: u64,
}

impl StreamBudget {
    /// Counts `n` bytes read.
    pub fn read(&mut self, n: usize) -> Result<(), ApiError> {
        self.total += n as u64;
        self.since_event += n as u64;
        if self.total > MAX_STREAM_BYTES || self.since_event > MAX_EVENT_BYTES {
            return Err(ApiError::bad_gateway(format!(
                "the upstream stream exceeded the gateway limit ({} MiB per event, {} MiB in all)",
                MAX_EVENT_BYTES >> 20,
                MAX_STREAM_BYTES >> 20
            )));
        }
        Ok(())
    }

    /// Counts events the decoder produced.
    pub fn events(&mut self, n: usize) {
        if n > 0 {
            self.since_event = 0;
        }
    }
}

/// A failed read of an upstream stream: 504 when it stalled, 502 otherwise.
pub fn read_error(e: &io::Error) -> ApiError {
    let timed_out = matches!(
        e.kind(),
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
    ) || e.to_string().contains("timeout");
    if timed_out {
        ApiError::upstream_timeout(format!("the upstream stream stalled: {e}"))
    } else {
        ApiError::bad_gateway(format!("the upstream stream failed: {e}"))
    }
}

fn pump_http<O: StreamOut, F: Fn() -> StreamFilter>(
    pump: &mut Pump<O, F>,
    target: &Target,
    p: &Prepared,
    mut reader: impl Read,
) -> Result<(), Stop> {
    let mut decoder = providers::adapter_for(target).stream_decoder(target, &p.chat);
    let mut buf = vec![0u8; 16 * 1024];
    let mut events = Vec::new();
    let mut done = false;
    let mut budget = StreamBudget::default();
    loop {
        let n = match reader.read(&mut buf) {
            Ok(n) => n,
            Err(e) if done => {
                // Already complete; the connection just will not be reused.
                crate::logging::debug(&format!("after [DONE]: {e}"));
                return Ok(());
            }
            Err(e) => return Err(Stop::Upstream(read_error(&e))),
        };
        budget.read(n).map_err(Stop::Upstream)?;
        if n == 0 {
            decoder.finish(&mut events).map_err(Stop::Upstream)?;
        } else if !done {
            decoder
                .feed(buf.get(..n).unwrap_or_default(), &mut events)
                .map_err(Stop::Upstream)?;
        }
        budget.events(events.len());
        for ev in events.drain(..) {
            match ev {
                StreamEvent::Chunk(c) if !done => pump.chunk(c)?,
                StreamEvent::Chunk(_) => {}
                StreamEvent::Done => done = true,
                StreamEvent::Error(e) => return Err(Stop::Upstream(e)),
            }
        }
        if n == 0 {
            return if done {
                Ok(())
            } else {
                Err(Stop::Upstream(ApiError::bad_gateway(
                    "the upstream closed the stream before it was complete",
                )))
            };
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn finish_stream<O: StreamOut>(
    state: &State,
    p: &mut Prepared,
    target: &Target,
    mut ev: Event,
    mut writer: O,
    acc: StreamAccumulator,
    mut filters: Vec<ChoiceFilter>,
    make_filter: &dyn Fn() -> StreamFilter,
    held: Option<ChatChunk>,
) {
    let id = acc.id.clone();
    let model = acc.model.clone();
    let created = acc.created;
    let usage = acc.usage.clone();
    // What the redaction filters held back: sent after the output phase, unless it
    // refuses the answer (a held tool call never reaches the client then).
    let rest: Vec<ChatChunk> = filters
        .iter_mut()
        .enumerate()
        .filter_map(|(i, f)| f.finish(u32::try_from(i).unwrap_or(0), make_filter))
        .map(|choice| ChatChunk {
            id: id.clone(),
            created,
            model: model.clone(),
            choices: vec![choice],
            ..ChatChunk::default()
        })
        .collect();
    let mut resp = acc.into_response();
    let payload = chat::payload_mode(&p.runtime);
    if payload == Payload::Full {
        ev.response_body = serde_json::to_string(&resp).ok();
    }
    let output = p.runtime.chain.run_output(&p.ctx, &mut resp);
    if payload == Payload::Redacted {
        ev.response_body = serde_json::to_string(&resp).ok();
    }
    let streamed: Vec<_> = filters.iter().flat_map(ChoiceFilter::trace).collect();
    add_stream_traces(&mut ev, &output.trace, &streamed);

    if let Some(u) = &usage {
        chat::set_usage(&mut ev, u);
    }
    chat::settle(state, p, &mut ev, Some(target));
    if let Some(block) = output.block {
        let e = ApiError::policy_violation(&block.policy, true, block.message);
        ev.blocked_by = Some(block.policy);
        ev.status = 409;
        let _ = writer.error(&e); // Recorded on the event either way.
        finish_ok(state, &mut ev, p.started);
        let _ = writer.end();
        return;
    }
    for c in &rest {
        let _ = writer.chunk(c); // A gone client shows up on the final write below.
    }
    let mut last = held.unwrap_or_else(|| ChatChunk {
        id,
        created,
        model,
        ..ChatChunk::default()
    });
    // The filters may have held everything until now (a tool call is held whole).
    if ev.ttft_ms.is_none() && rest.iter().chain([&last]).any(shows_a_token) {
        ev.ttft_ms = Some(ms(p.started));
    }
    last.x_keeptrusts = Some(meta(p, Some(target)));
    if writer.finish(&last).is_err() {
        ev.status = 499;
        finish_ok(state, &mut ev, p.started);
        return;
    }
    // The stream ends only once the event is recorded: with strict durability, committed,
    // or else the client gets an in-band `audit_unavailable` error instead.
    ev.status = 200;
    if finish_ok(state, &mut ev, p.started).is_unavailable() {
        let _ = writer.error(&chat::audit_unavailable()); // The event is queued either way.
    }
    let _ = writer.end(); // Recorded as answered: the whole completion was written.
}

/// Records the output phase of a stream. A policy that redacted the stream as it flowed
/// is recorded once, from its filter (`streamed`); its output-phase redaction of the
/// assembled copy is not what the client received.
pub fn add_stream_traces(ev: &mut Event, output: &[PolicyTrace], streamed: &[PolicyTrace]) {
    let output_trace: Vec<_> = output
        .iter()
        .filter(|t| {
            !(t.verdict == Verdict::Redact && streamed.iter().any(|s| s.policy == t.policy))
        })
        .cloned()
        .collect();
    add_trace(ev, &output_trace);
    add_trace(ev, streamed);
}
