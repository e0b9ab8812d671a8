//! A native upstream's Responses stream → the client's, event by event, for
//! `openai:responses:<model>` targets. Events are passed on as the upstream sent them
//! (unknown types and fields included) with two changes: output text and refusals go
//! through a `Rewriter` (the output phase's stream filter, which may hold text back and
//! redact it), so every text an event carries (`output_text.delta`/`.done`,
//! `refusal.delta`/`.done`, `content_part.done`,
//! `output_item.done`, the final `response`) is what the client was shown, its token
//! `logprobs` held with the text and emptied once a rewrite changed it; and since
//! held-back text may need an extra delta, the events are renumbered (`sequence_number`).
//!
//! While a redaction is active, a function call's argument deltas are held and its
//! arguments go out whole, redacted value by value, as one delta before `.done`.
//!
//! The terminal event (`response.completed`, `.incomplete`, `.failed`) is held until the
//! gateway has run the output phase on the whole answer: `finish` sends it, `fail` ends
//! the stream with `error` and `response.failed` instead.

use serde_json::{json, Value};

use super::stream::error_body;
use super::{Sequence, TypedEvent};
use crate::policy::scan::walk;
use crate::policy::TokenHold;

/// Rewrites streamed text: `push` returns what may be shown now, `finish` the rest.
pub trait Rewriter {
    fn push(&mut self, text: &str) -> String;
    fn finish(&mut self) -> String;
    /// Whether it never changes anything (no redaction in the chain): what it would
    /// hold back then passes as it comes.
    fn is_empty(&self) -> bool {
        false
    }
}

/// The relay of one stream; `make` gives a fresh rewriter per content part.
pub struct Relay<F, M> {
    seq: Sequence,
    make: M,
    slots: Vec<Slot<F>>,
    calls: Vec<Call<F>>,
    /// The `response` of `response.created`, for a failure before the end.
    created: Option<Value>,
    terminal: Option<(String, Value)>,
    upstream_error: Option<Value>,
    text_sent: bool,
}

/// One `output_text` or `refusal` content part: `(output_index, content_index)`.
/// What a content part holds: output text (with logprobs) or a refusal.
#[derive(Clone, Copy, PartialEq)]
enum Part {
    Text,
    Refusal,
}

impl Part {
    fn of(part: &Value) -> Option<Part> {
        match part.get("type").and_then(Value::as_str) {
            Some("output_text") => Some(Part::Text),
            Some("refusal") => Some(Part::Refusal),
            _ => None,
        }
    }

    /// The member holding the part's text.
    fn field(self) -> &'static str {
        match self {
            Part::Text => "text",
            Part::Refusal => "refusal",
        }
    }

    fn delta_event(self) -> &'static str {
        match self {
            Part::Text => "response.output_text.delta",
            Part::Refusal => "response.refusal.delta",
        }
    }
}

struct Slot<F> {
    at: (u64, u64),
    item_id: String,
    rewriter: F,
    /// The deltas' token logprobs, held with their text.
    tokens: TokenHold,
    part: Part,
    shown: String,
    closed: bool,
}

/// One `function_call` output item: its arguments are held until complete and then
/// redacted value by value, as in a whole answer (a value cut across deltas, or a
/// number, cannot be rewritten in flight and leave the arguments valid JSON). A
/// `custom_tool_call` item's free-text `input` is held and redacted whole the same way.
struct Call<F> {
    at: u64,
    rewriter: F,
    /// The arguments shown, once complete.
    shown: Option<String>,
}

impl<F: Rewriter, M: FnMut() -> F> Relay<F, M> {
    pub fn new(make: M) -> Relay<F, M> {
        Relay {
            seq: Sequence::default(),
            make,
            slots: Vec::new(),
            calls: Vec::new(),
            created: None,
            terminal: None,
            upstream_error: None,
            text_sent: false,
        }
    }

    /// The events to send for one upstream event (its `data`, parsed). Events without a
    /// `type` are dropped (clients dispatch on it); nothing is sent after the terminal
    /// event.
    pub fn push(&mut self, mut data: Value) -> Vec<TypedEvent> {
        let mut out = Vec::new();
        if self.terminal.is_some() {
            return out;
        }
        let Some(kind) = data.get("type").and_then(Value::as_str).map(str::to_string) else {
            return out;
        };
        let o = data
            .get("output_index")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        let c = data
            .get("content_index")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        let item_id = data
            .get("item_id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        match kind.as_str() {
            "response.created" => self.created = data.get("response").cloned(),
            "response.completed" | "response.incomplete" | "response.failed" => {
                self.terminal = Some((kind, data));
                return out;
            }
            "error" => self.upstream_error = Some(data.clone()),
            "response.output_text.delta" | "response.refusal.delta" => {
                let part = if kind == "response.refusal.delta" {
                    Part::Refusal
                } else {
                    Part::Text
                };
                let (had, entries) = match data.get_mut("logprobs") {
                    Some(Value::Array(a)) => (true, std::mem::take(a)),
                    _ => (false, Vec::new()),
                };
                let delta = data
                    .get("delta")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let at = self.slot(o, c, &item_id, part);
                let Some(slot) = self.slots.get_mut(at) else {
                    return out;
                };
                slot.tokens.pushed(delta, entries);
                let shown = slot.rewriter.push(delta);
                let released = slot.tokens.shown(&shown);
                slot.shown.push_str(&shown);
                if shown.is_empty() && released.is_empty() {
                    return out;
                }
                self.text_sent |= !shown.is_empty();
                data["delta"] = json!(shown);
                if had || !released.is_empty() {
                    data["logprobs"] = Value::Array(released);
                }
            }
            "response.output_text.done" | "response.refusal.done" => {
                let part = if kind == "response.refusal.done" {
                    Part::Refusal
                } else {
                    Part::Text
                };
                let text = pointer_str(&data, &format!("/{}", part.field()));
                let text = self.close(o, c, &item_id, part, text, &mut out);
                show(&mut data, part, text);
            }
            "response.content_part.done" => {
                if let Some(part) = data.get("part").and_then(Part::of) {
                    let text = pointer_str(&data, &format!("/part/{}", part.field()));
                    let text = self.close(o, c, &item_id, part, text, &mut out);
                    if let Some(p) = data.get_mut("part") {
                        show(p, part, text);
                    }
                }
            }
            "response.function_call_arguments.delta" | "response.custom_tool_call_input.delta" => {
                let at = self.call(o);
                if self.calls.get(at).is_some_and(|c| !c.rewriter.is_empty()) {
                    return out; // Held: the whole arguments go out with `.done`.
                }
            }
            "response.function_call_arguments.done" | "response.custom_tool_call_input.done" => {
                let at = self.call(o);
                if self.calls.get(at).is_some_and(|c| !c.rewriter.is_empty()) {
                    let (field, delta_kind, free_text) = match kind.as_str() {
                        "response.custom_tool_call_input.done" => {
                            ("input", "response.custom_tool_call_input.delta", true)
                        }
                        _ => ("arguments", "response.function_call_arguments.delta", false),
                    };
                    let args = pointer_str(&data, &format!("/{field}")).unwrap_or_default();
                    let shown = self.call_arguments(o, args, free_text);
                    let delta = json!({"item_id": item_id, "output_index": o, "delta": shown});
                    out.push(self.seq.event(delta_kind, delta));
                    data[field] = json!(shown);
                }
            }
            "response.output_item.done" => {
                if let Some(item) = data.get_mut("item") {
                    self.rewrite_item(o, item, &mut out);
                }
            }
            _ => {}
        }
        out.push(self.seq.event(&kind, data));
        out
    }

    /// The index of the slot of part `(o, c)`, made on first use.
    fn slot(&mut self, o: u64, c: u64, item_id: &str, part: Part) -> usize {
        if let Some(at) = self.slots.iter().position(|s| s.at == (o, c)) {
            return at;
        }
        self.slots.push(Slot {
            at: (o, c),
            item_id: item_id.to_string(),
            rewriter: (self.make)(),
            tokens: TokenHold::default(),
            part,
            shown: String::new(),
            closed: false,
        });
        self.slots.len() - 1
    }

    /// Ends a content part: what its rewriter still held goes out as one more delta; the
    /// full text shown is returned. A part never streamed (`text` only in a `.done` event)
    /// is rewritten whole.
    fn close(
        &mut self,
        o: u64,
        c: u64,
        item_id: &str,
        part: Part,
        text: Option<String>,
        out: &mut Vec<TypedEvent>,
    ) -> String {
        let known = self.slots.iter().any(|s| s.at == (o, c));
        let at = self.slot(o, c, item_id, part);
        let Some(slot) = self.slots.get_mut(at) else {
            return String::new();
        };
        if slot.closed {
            return slot.shown.clone();
        }
        slot.closed = true;
        if !known {
            let mut t = slot.rewriter.push(&text.unwrap_or_default());
            t.push_str(&slot.rewriter.finish());
            slot.shown = t;
            return slot.shown.clone();
        }
        let rest = slot.rewriter.finish();
        let released = slot.tokens.shown(&rest);
        if rest.is_empty() && released.is_empty() {
            return slot.shown.clone();
        }
        slot.shown.push_str(&rest);
        let (shown, id, part) = (slot.shown.clone(), slot.item_id.clone(), slot.part);
        self.text_sent |= !rest.is_empty();
        let mut delta = json!({"item_id": id, "output_index": o, "content_index": c,
            "delta": rest});
        if part == Part::Text {
            delta["logprobs"] = Value::Array(released);
        }
        out.push(self.seq.event(part.delta_event(), delta));
        shown
    }

    /// The index of the call of output item `o`, made on first use.
    fn call(&mut self, o: u64) -> usize {
        if let Some(at) = self.calls.iter().position(|c| c.at == o) {
            return at;
        }
        self.calls.push(Call {
            at: o,
            rewriter: (self.make)(),
            shown: None,
        });
        self.calls.len() - 1
    }

    /// The arguments of call `o` as shown: `args` (complete) redacted value by value (a
    /// custom tool's `free_text` input whole), once.
    fn call_arguments(&mut self, o: u64, args: String, free_text: bool) -> String {
        let at = self.call(o);
        let Some(call) = self.calls.get_mut(at) else {
            return args;
        };
        if let Some(shown) = &call.shown {
            return shown.clone();
        }
        let mut shown = args;
        if !call.rewriter.is_empty() {
            let r = &mut call.rewriter;
            let mut redact = |value: &mut String| {
                let mut v = r.push(value);
                v.push_str(&r.finish());
                let changed = v != *value;
                *value = v;
                changed
            };
            if free_text {
                redact(&mut shown);
            } else {
                walk::arguments(&mut shown, &mut redact);
            }
        }
        call.shown = Some(shown.clone());
        shown
    }

    /// Puts the shown text into every `output_text` and `refusal` part of output item `o`, or the
    /// shown arguments into a `function_call` item (the input into a `custom_tool_call`).
    fn rewrite_item(&mut self, o: u64, item: &mut Value, out: &mut Vec<TypedEvent>) {
        let call = match item.get("type").and_then(Value::as_str) {
            Some("function_call") => Some(("arguments", false)),
            Some("custom_tool_call") => Some(("input", true)),
            _ => None,
        };
        if let Some((field, free_text)) = call {
            if let Some(args) = item.get(field).and_then(Value::as_str) {
                let shown = self.call_arguments(o, args.to_string(), free_text);
                item[field] = Value::String(shown);
            }
            return;
        }
        let id = item
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let Some(parts) = item.get_mut("content").and_then(Value::as_array_mut) else {
            return;
        };
        for (j, p) in parts.iter_mut().enumerate() {
            let Some(part) = Part::of(p) else {
                continue;
            };
            let text = p
                .get(part.field())
                .and_then(Value::as_str)
                .map(str::to_string);
            let c = u64::try_from(j).unwrap_or(u64::MAX);
            let shown = self.close(o, c, &id, part, text, out);
            show(p, part, shown);
        }
    }

    /// Puts the shown text into every output item of a `response` object.
    fn rewrite_response(&mut self, resp: &mut Value, out: &mut Vec<TypedEvent>) {
        let Some(items) = resp.get_mut("output").and_then(Value::as_array_mut) else {
            return;
        };
        for (i, item) in items.iter_mut().enumerate() {
            self.rewrite_item(u64::try_from(i).unwrap_or(u64::MAX), item, out);
        }
    }

    /// The upstream's terminal event, as received: `(type, response)`.
    pub fn terminal(&self) -> Option<(&str, &Value)> {
        self.terminal
            .as_ref()
            .and_then(|(k, d)| d.get("response").map(|r| (k.as_str(), r)))
    }

    /// An `error` event the upstream sent, if any.
    pub fn upstream_error(&self) -> Option<&Value> {
        self.upstream_error.as_ref()
    }

    /// Whether any output text has been sent.
    pub fn text_sent(&self) -> bool {
        self.text_sent
    }

    /// The rewriters, for what they found.
    pub fn rewriters(&self) -> impl Iterator<Item = &F> {
        self.slots
            .iter()
            .map(|s| &s.rewriter)
            .chain(self.calls.iter().map(|c| &c.rewriter))
    }

    /// Sends the held terminal event with the shown texts and `extra` fields added to its
    /// `response` (e.g. `x_keeptrusts`). Nothing when there is none.
    pub fn finish(&mut self, extra: Vec<(String, Value)>) -> Vec<TypedEvent> {
        let mut out = Vec::new();
        let Some((kind, mut data)) = self.terminal.take() else {
            return out;
        };
        if let Some(mut resp) = data.get_mut("response").map(Value::take) {
            self.rewrite_response(&mut resp, &mut out);
            if let Some(o) = resp.as_object_mut() {
                o.extend(extra);
            }
            data["response"] = resp;
        }
        out.push(self.seq.event(&kind, data));
        // Nothing may follow the terminal event.
        self.terminal = Some((kind, Value::Null));
        out
    }

    /// Ends the stream as failed: an `error` event (`code`, `message`, `policy`; unless the
    /// upstream sent its own), then
    /// `response.failed` whose `response` (the upstream's last, with the shown texts) has
    /// `status: failed` and `error.code` = `failed_code`.
    pub fn fail(
        &mut self,
        code: &str,
        message: &str,
        policy: Option<&str>,
        failed_code: &str,
    ) -> Vec<TypedEvent> {
        let mut out = Vec::new();
        let base = match self.terminal.take() {
            Some((_, mut d)) => d.get_mut("response").map(Value::take),
            None => self.created.clone(),
        };
        let mut resp = base.unwrap_or_else(|| json!({"object": "response", "output": []}));
        let mut extra = Vec::new();
        self.rewrite_response(&mut resp, &mut extra);
        if let Some(o) = resp.as_object_mut() {
            o.insert("status".to_string(), json!("failed"));
            o.insert(
                "error".to_string(),
                json!({"code": failed_code, "message": message}),
            );
        }
        if self.upstream_error.is_none() {
            out.push(self.seq.event("error", error_body(code, message, policy)));
        }
        out.push(self.seq.event("response.failed", json!({"response": resp})));
        self.terminal = Some(("response.failed".to_string(), Value::Null));
        out
    }
}

/// Puts the text shown into `obj` (a part or a `.done` event: its `text` or `refusal`,
/// and `logprobs` when the client asked for them). Logprobs spell the text as the
/// upstream wrote it: when the text shown differs, they are emptied.
fn show(obj: &mut Value, part: Part, shown: String) {
    let field = part.field();
    if obj.get(field).and_then(Value::as_str) != Some(shown.as_str()) {
        if let Some(lp) = obj.get_mut("logprobs") {
            *lp = Value::Array(Vec::new());
        }
    }
    obj[field] = Value::String(shown);
}

fn pointer_str(v: &Value, p: &str) -> Option<String> {
    v.pointer(p).and_then(Value::as_str).map(str::to_string)
}

#[cfg(test)]
mod tests;
