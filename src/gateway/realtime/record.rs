//! The events of a realtime session: one when it ends (model, target, message counts,
//! how it closed, token usage) and one per text message a policy acted on (block,
//! redaction, flag) — or per checked text message when the audit-logger has
//! `log_all_access`. Every event goes through the batched writer; none waits on the disk.

use crate::store::events::JsonText;
use std::time::Instant;

use serde::Serialize;
use serde_json::json;

use super::inspect::{Direction, Parsed};
use crate::gateway::admission::{self, Grant};
use crate::gateway::chat;
use crate::gateway::http::now_ms;
use crate::gateway::State;
use crate::openai::Usage;
use crate::policy::audit_logger::Payload;
use crate::policy::{ChainOutcome, Verdict};
use crate::store::Event;

/// Messages relayed in one direction.
#[derive(Debug, Default, Clone, Copy, Serialize)]
pub struct Flow {
    pub messages: u64,
    pub bytes: u64,
}

/// How a session ended.
#[derive(Debug, Clone, Serialize)]
pub struct End {
    /// `client`, `upstream` or `gateway`.
    pub closed_by: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<u16>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// A connection that failed rather than closed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl End {
    pub fn closed(closed_by: &'static str, code: Option<u16>, reason: impl Into<String>) -> End {
        End {
            closed_by,
            code,
            reason: reason.into(),
            error: None,
        }
    }

    pub fn failed(closed_by: &'static str, error: impl Into<String>) -> End {
        End {
            closed_by,
            code: None,
            reason: String::new(),
            error: Some(error.into()),
        }
    }
}

/// What the session event accumulates while the session runs.
pub struct SessionLog {
    /// The session's event, filled in at the start (ids, key, model, target).
    pub event: Event,
    pub started: Instant,
    pub client: Flow,
    pub upstream: Flow,
    pub blocked: u64,
    pub redacted: u64,
    pub flagged: u64,
    pub duplex: bool,
    verdict: Verdict,
    seq: u64,
    payload: Payload,
    log_all: bool,
    usage: Option<Usage>,
}

impl SessionLog {
    pub fn new(event: Event, started: Instant, payload: Payload, log_all: bool) -> SessionLog {
        SessionLog {
            event,
            started,
            client: Flow::default(),
            upstream: Flow::default(),
            blocked: 0,
            redacted: 0,
            flagged: 0,
            duplex: true,
            verdict: Verdict::Allow,
            seq: 0,
            payload,
            log_all,
            usage: None,
        }
    }

    /// Counts one data message read from `direction`'s sender.
    pub fn count(&mut self, direction: Direction, bytes: usize) {
        let flow = match direction {
            Direction::Client => &mut self.client,
            Direction::Upstream => &mut self.upstream,
        };
        flow.messages += 1;
        flow.bytes += bytes as u64;
        self.seq += 1;
    }

    /// Adds the usage a `response.done` event reports.
    pub fn add_usage(&mut self, parsed: &Parsed) {
        let Some(json) = parsed.json() else { return };
        if json.get("type").and_then(|t| t.as_str()) != Some("response.done") {
            return;
        }
        let Some(u) = json.get("response").and_then(|r| r.get("usage")) else {
            return;
        };
        let get = |k: &str| u.get(k).and_then(serde_json::Value::as_u64).unwrap_or(0);
        let total = self.usage.get_or_insert_with(|| Usage::new(0, 0));
        let (input, output) = (get("input_tokens"), get("output_tokens"));
        *total = Usage::new(
            total.prompt_tokens + input,
            total.completion_tokens + output,
        );
    }

    /// Records the chain's decision about one message (when it is worth an event).
    /// `original` is the message as received, `forwarded` what was sent on, if anything.
    pub fn message(
        &mut self,
        state: &State,
        direction: Direction,
        event_type: Option<&str>,
        outcome: &ChainOutcome,
        original: &str,
        forwarded: Option<&str>,
    ) {
        let verdict = outcome.verdict();
        let observed_flag = outcome.trace.iter().any(|t| t.observed);
        match verdict {
            Verdict::Block => self.blocked += 1,
            Verdict::Redact => self.redacted += 1,
            Verdict::Flag => self.flagged += 1,
            Verdict::Allow => {}
        }
        self.verdict = self.verdict.max(verdict);
        if verdict == Verdict::Allow && !observed_flag && !self.log_all {
            return;
        }
        let mut ev = Event {
            ts_ms: now_ms(),
            status: if outcome.block.is_some() { 409 } else { 200 },
            verdict: Verdict::Allow.as_str().to_string(),
            blocked_by: outcome.block.as_ref().map(|b| b.policy.clone()),
            detail: Some(JsonText::of(&json!({"realtime": {
                "message": self.seq,
                "direction": direction.as_str(),
                "event_type": event_type,
            }}))),
            ..self.template()
        };
        chat::add_trace(&mut ev, &outcome.trace);
        let body = match self.payload {
            Payload::None => None,
            Payload::Redacted => forwarded,
            Payload::Full => Some(original),
        };
        match direction {
            Direction::Client => ev.request_body = body.map(str::to_string),
            Direction::Upstream => ev.response_body = body.map(str::to_string),
        }
        if let Some(block) = &outcome.block {
            self.event
                .blocked_by
                .get_or_insert_with(|| block.policy.clone());
        }
        state.events.record(ev);
    }

    /// The fields every event of this session shares.
    fn template(&self) -> Event {
        Event {
            request_id: self.event.request_id.clone(),
            kind: self.event.kind,
            endpoint: self.event.endpoint.clone(),
            configuration: self.event.configuration.clone(),
            model_requested: self.event.model_requested.clone(),
            model_used: self.event.model_used.clone(),
            target_id: self.event.target_id.clone(),
            provider: self.event.provider.clone(),
            stream: true,
            key_name: self.event.key_name.clone(),
            team: self.event.team.clone(),
            request_source: self.event.request_source.clone(),
            correlation_id: self.event.correlation_id.clone(),
            chain: self.event.chain,
            ..Event::default()
        }
    }

    /// Records the session event and settles the session's admission with its usage.
    pub fn finish(
        mut self,
        state: &State,
        end: &End,
        grant: Option<Grant>,
        pricing: Option<&crate::config::schema::PricingSpec>,
    ) {
        let mut ev = std::mem::take(&mut self.event);
        ev.status = 101;
        ev.verdict = self.verdict.as_str().to_string();
        ev.error.clone_from(&end.error);
        if let Some(u) = &self.usage {
            chat::set_usage(&mut ev, u);
            ev.cost_usd = admission::cost(pricing, u.prompt_tokens, u.completion_tokens);
        }
        let realtime = json!({
            "client": self.client,
            "upstream": self.upstream,
            "blocked": self.blocked,
            "redacted": self.redacted,
            "flagged": self.flagged,
            "duplex": self.duplex,
            "duration_ms": (chat::ms(self.started) * 10.0).round() / 10.0,
            "end": end,
        });
        ev.detail
            .get_or_insert_with(JsonText::empty_object)
            .insert("realtime", &realtime);
        if let Some(g) = grant {
            g.settle(state, self.usage.as_ref(), ev.cost_usd);
        }
        chat::finish_ok(state, &mut ev, self.started);
    }
}
