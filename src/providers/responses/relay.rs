//! A native upstream's Responses stream → the client's, event by event, for
//! `openai:responses:<model>` targets. Events are passed on as the upstream sent them
//! (unknown types and fields included) with two changes: output text goes through a
//! `Rewriter` (the output phase's stream filter, which may hold text back and redact it),
//! so every text an event carries (`output_text.delta`/`.done`, `content_part.done`,
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

/// One `output_text` content part: `(output_index, content_index)`.
struct Slot<F> {
    at: (u64, u64),
    item_id: String,
    rewriter: F,
    /// The deltas' token logprobs, held with their text.
    tokens: TokenHold,
    shown: String,
    closed: bool,
}

/// One `function_call` output item: its arguments are held until complete and then
/// redacted value by value, as in a whole answer (a value cut across deltas, or a
/// number, cannot be rewritten in flight and leave the arguments valid JSON).
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
            "response.output_text.delta" => {
                let (had, entries) = match data.get_mut("logprobs") {
                    Some(Value::Array(a)) => (true, std::mem::take(a)),
                    _ => (false, Vec::new()),
                };
                let delta = data
                    .get("delta")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let at = self.slot(o, c, &item_id);
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
            "response.output_text.done" => {
                let text = self.close(o, c, &item_id, pointer_str(&data, "/text"), &mut out);
                show(&mut data, text);
            }
            "response.content_part.done"
                if data.pointer("/part/type").and_then(Value::as_str) == Some("output_text") =>
            {
                let text = self.close(o, c, &item_id, pointer_str(&data, "/part/text"), &mut out);
                if let Some(part) = data.get_mut("part") {
                    show(part, text);
                }
            }
            "response.function_call_arguments.delta" => {
                let at = self.call(o);
                if self.calls.get(at).is_some_and(|c| !c.rewriter.is_empty()) {
                    return out; // Held: the whole arguments go out with `.done`.
                }
            }
            "response.function_call_arguments.done" => {
                let at = self.call(o);
                if self.calls.get(at).is_some_and(|c| !c.rewriter.is_empty()) {
                    let args = pointer_str(&data, "/arguments").unwrap_or_default();
                    let shown = self.call_arguments(o, args);
                    let delta = json!({"item_id": item_id, "output_index": o, "delta": shown});
                    out.push(
                        self.seq
                            .event("response.function_call_arguments.delta", delta),
                    );
                    data["arguments"] = json!(shown);
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
    fn slot(&mut self, o: u64, c: u64, item_id: &str) -> usize {
        if let Some(at) = self.slots.iter().position(|s| s.at == (o, c)) {
            return at;
        }
        self.slots.push(Slot {
            at: (o, c),
            item_id: item_id.to_string(),
            rewriter: (self.make)(),
            tokens: TokenHold::default(),
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
        text: Option<String>,
        out: &mut Vec<TypedEvent>,
    ) -> String {
        let known = self.slots.iter().any(|s| s.at == (o, c));
        let at = self.slot(o, c, item_id);
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
        let (shown, id) = (slot.shown.clone(), slot.item_id.clone());
        self.text_sent |= !rest.is_empty();
        out.push(self.seq.event(
            "response.output_text.delta",
            json!({"item_id": id, "output_index": o, "content_index": c,
                "delta": rest, "logprobs": released}),
        ));
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

    /// The arguments of call `o` as shown: `args` (complete) redacted value by value, once.
    fn call_arguments(&mut self, o: u64, args: String) -> String {
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
            walk::arguments(&mut shown, &mut |value| {
                let mut v = r.push(value);
                v.push_str(&r.finish());
                let changed = v != *value;
                *value = v;
                changed
            });
        }
        call.shown = Some(shown.clone());
        shown
    }

    /// Puts the shown text into every `output_text` part of output item `o`, or the
    /// shown arguments into a `function_call` item.
    fn rewrite_item(&mut self, o: u64, item: &mut Value, out: &mut Vec<TypedEvent>) {
        if item.get("type").and_then(Value::as_str) == Some("function_call") {
            if let Some(args) = item.get("arguments").and_then(Value::as_str) {
                let shown = self.call_arguments(o, args.to_string());
                item["arguments"] = Value::String(shown);
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
        for (j, part) in parts.iter_mut().enumerate() {
            if part.get("type").and_then(Value::as_str) != Some("output_text") {
                continue;
            }
            let text = part.get("text").and_then(Value::as_str).map(str::to_string);
            let c = u64::try_from(j).unwrap_or(u64::MAX);
            let shown = self.close(o, c, &id, text, out);
            show(part, shown);
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

/// Puts the text shown into `part` (an object with `text`, and `logprobs` when the client
/// asked for them). Logprobs spell the text as the upstream wrote it: when the text shown
/// differs, they are emptied.
fn show(part: &mut Value, shown: String) {
    if part.get("text").and_then(Value::as_str) != Some(shown.as_str()) {
        if let Some(lp) = part.get_mut("logprobs") {
            *lp = Value::Array(Vec::new());
        }
    }
    part["text"] = Value::String(shown);
}

fn pointer_str(v: &Value, p: &str) -> Option<String> {
    v.pointer(p).and_then(Value::as_str).map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::sse::{SseEvent, SseParser};

    /// Masks digits with `#`, holding back a trailing run of digits (it may go on).
    #[derive(Default)]
    struct DigitMask {
        held: String,
    }

    impl Rewriter for DigitMask {
        fn push(&mut self, text: &str) -> String {
            self.held.push_str(text);
            let keep = self
                .held
                .char_indices()
                .rev()
                .take_while(|(_, c)| c.is_ascii_digit())
                .last()
                .map_or(self.held.len(), |(i, _)| i);
            let rest = self.held.split_off(keep);
            let out = std::mem::replace(&mut self.held, rest);
            mask(&out)
        }
        fn finish(&mut self) -> String {
            mask(&std::mem::take(&mut self.held))
        }
    }

    fn mask(s: &str) -> String {
        s.chars()
            .map(|c| if c.is_ascii_digit() { '#' } else { c })
            .collect()
    }

    fn upstream(name: &str) -> Vec<Value> {
        let path = format!("{}/testdata/responses/{name}", env!("CARGO_MANIFEST_DIR"));
        let bytes = std::fs::read(path).unwrap();
        let mut p = SseParser::new();
        let mut events: Vec<SseEvent> = Vec::new();
        // Split anywhere: the parser must not care.
        for piece in bytes.chunks(7) {
            p.feed(piece, &mut events);
        }
        p.finish(&mut events);
        events
            .iter()
            .map(|e| serde_json::from_str(&e.data).unwrap())
            .collect()
    }

    #[test]
    fn fixture_native_stream_is_relayed_with_redacted_text_and_renumbered() {
        let input = upstream("native_stream.sse");
        let mut relay = Relay::new(DigitMask::default);
        let mut out = Vec::new();
        for ev in input.clone() {
            out.extend(relay.push(ev));
        }
        let (kind, resp) = relay.terminal().unwrap();
        assert_eq!(kind, "response.completed");
        assert_eq!(
            resp["output"][1]["content"][0]["text"],
            "Your card: 4111 1111 1111 1111"
        );
        out.extend(relay.finish(vec![(
            "x_keeptrusts".to_string(),
            json!({"provider_used": "openai"}),
        )]));
        let kinds: Vec<&str> = out.iter().map(|e| e.kind.as_str()).collect();
        let mut expected: Vec<&str> = input.iter().map(|e| e["type"].as_str().unwrap()).collect();
        // The text the mask held back is one more delta, right before `.done`.
        let done = expected
            .iter()
            .position(|k| *k == "response.output_text.done")
            .unwrap();
        expected.insert(done, "response.output_text.delta");
        assert_eq!(kinds, expected);
        for (n, e) in out.iter().enumerate() {
            assert_eq!(e.data["sequence_number"], n);
            assert_eq!(e.data["type"], e.kind.as_str());
        }
        let deltas: Vec<&str> = out
            .iter()
            .filter(|e| e.kind == "response.output_text.delta")
            .map(|e| e.data["delta"].as_str().unwrap())
            .collect();
        assert_eq!(deltas, ["Your card: ", "#### ", "#### #### ", "####"]);
        let shown = "Your card: #### #### #### ####";
        let by_kind = |k: &str| out.iter().find(|e| e.kind == k).unwrap();
        assert_eq!(by_kind("response.output_text.done").data["text"], shown);
        assert_eq!(
            by_kind("response.content_part.done").data["part"]["text"],
            shown
        );
        let last = out.last().unwrap();
        let final_resp = &last.data["response"];
        assert_eq!(final_resp["output"][1]["content"][0]["text"], shown);
        assert_eq!(final_resp["x_keeptrusts"]["provider_used"], "openai");
        // Everything else is the upstream's, unknown fields included.
        assert_eq!(final_resp["x_upstream"], "kept");
        assert_eq!(
            final_resp["output"][2],
            input.last().unwrap()["response"]["output"][2]
        );
        assert_eq!(
            final_resp["usage"],
            input.last().unwrap()["response"]["usage"]
        );
        assert!(relay
            .push(json!({"type": "response.in_progress"}))
            .is_empty());
        assert!(relay.text_sent());
    }

    /// A native stream of `deltas`, each with its token's logprobs entry.
    fn with_logprobs(deltas: &[&str]) -> Vec<Value> {
        let lp = |t: &str| json!({"token": t, "logprob": -0.5, "bytes": t.as_bytes(), "top_logprobs": []});
        let text = deltas.concat();
        let all: Vec<Value> = deltas.iter().map(|t| lp(t)).collect();
        let part = json!({"type": "output_text", "text": text, "annotations": [], "logprobs": all});
        let item = json!({"id": "m", "type": "message", "role": "assistant", "content": [part]});
        let at = json!({"item_id": "m", "output_index": 0, "content_index": 0});
        let mut events = vec![json!({"type": "response.created", "response": {"output": []}})];
        for d in deltas {
            let mut e = at.clone();
            e["type"] = json!("response.output_text.delta");
            e["delta"] = json!(d);
            e["logprobs"] = json!([lp(d)]);
            events.push(e);
        }
        let mut done = at.clone();
        done["type"] = json!("response.output_text.done");
        done["text"] = json!(text);
        done["logprobs"] = json!(all);
        events.push(done);
        let mut part_done = at;
        part_done["type"] = json!("response.content_part.done");
        part_done["part"] = part;
        events.push(part_done);
        events.push(json!({"type": "response.output_item.done", "output_index": 0, "item": item}));
        events.push(json!({"type": "response.completed", "response": {"output": [item]}}));
        events
    }

    fn relay_all(input: Vec<Value>) -> Vec<TypedEvent> {
        let mut relay = Relay::new(DigitMask::default);
        let mut out: Vec<TypedEvent> = input.into_iter().flat_map(|e| relay.push(e)).collect();
        out.extend(relay.finish(Vec::new()));
        out
    }

    fn tokens(v: &Value) -> Vec<&str> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|e| e["token"].as_str().unwrap())
            .collect()
    }

    #[test]
    fn token_logprobs_go_with_their_text_and_never_spell_a_rewrite() {
        let deltas = ["Hi ", "Bob", ", code ", "12", "34", " ok"];
        let out = relay_all(with_logprobs(&deltas));
        let sent: Vec<(&str, Vec<&str>)> = out
            .iter()
            .filter(|e| e.kind == "response.output_text.delta")
            .map(|e| {
                (
                    e.data["delta"].as_str().unwrap(),
                    tokens(&e.data["logprobs"]),
                )
            })
            .collect();
        // The masked digits were held, then rewritten: no entry follows from there.
        assert_eq!(
            sent,
            [
                ("Hi ", vec!["Hi "]),
                ("Bob", vec!["Bob"]),
                (", code ", vec![", code "]),
                ("#### ok", vec![])
            ]
        );
        for e in &out {
            assert!(!e.data.to_string().contains("12"), "{}", e.data);
        }
        let by_kind = |k: &str| &out.iter().find(|e| e.kind == k).unwrap().data;
        assert_eq!(by_kind("response.output_text.done")["logprobs"], json!([]));
        assert_eq!(
            by_kind("response.content_part.done")["part"]["logprobs"],
            json!([])
        );
        assert_eq!(
            by_kind("response.output_item.done")["item"]["content"][0]["logprobs"],
            json!([])
        );
        let last = &out.last().unwrap().data["response"]["output"][0]["content"][0];
        assert_eq!(last["text"], "Hi Bob, code #### ok");
        assert_eq!(last["logprobs"], json!([]));

        // Nothing rewritten: every entry arrives, and the whole lists stay as sent.
        let plain = ["Hi ", "Bob", ", all", " fine"];
        let out = relay_all(with_logprobs(&plain));
        let streamed: Vec<&str> = out
            .iter()
            .filter(|e| e.kind == "response.output_text.delta")
            .flat_map(|e| tokens(&e.data["logprobs"]))
            .collect();
        assert_eq!(streamed, plain);
        let last = &out.last().unwrap().data["response"]["output"][0]["content"][0];
        assert_eq!(tokens(&last["logprobs"]), plain);
    }

    /// A stream of one function call whose arguments come in `deltas`.
    fn function_call(deltas: &[&str]) -> Vec<Value> {
        let args = deltas.concat();
        let item = |a: &str| json!({"id": "fc", "type": "function_call", "call_id": "call_1", "name": "charge", "arguments": a});
        let mut events = vec![
            json!({"type": "response.created", "response": {"output": []}}),
            json!({"type": "response.output_item.added", "output_index": 0, "item": item("")}),
        ];
        for d in deltas {
            events.push(json!({"type": "response.function_call_arguments.delta", "item_id": "fc", "output_index": 0, "delta": d}));
        }
        events.push(json!({"type": "response.function_call_arguments.done", "item_id": "fc", "output_index": 0, "arguments": args}));
        events.push(
            json!({"type": "response.output_item.done", "output_index": 0, "item": item(&args)}),
        );
        events.push(json!({"type": "response.completed", "response": {"output": [item(&args)]}}));
        events
    }

    /// Changes nothing, like a chain without redaction.
    struct Pass;

    impl Rewriter for Pass {
        fn push(&mut self, text: &str) -> String {
            text.to_string()
        }
        fn finish(&mut self) -> String {
            String::new()
        }
        fn is_empty(&self) -> bool {
            true
        }
    }

    #[test]
    fn function_call_arguments_are_held_whole_and_redacted_value_by_value() {
        let deltas = ["{\"card\": 41", "11, \"memo\": \"order 7", "\"}"];
        let out = relay_all(function_call(&deltas));
        let shown = "{\"card\":\"####\",\"memo\":\"order #\"}";
        let sent: Vec<&str> = out
            .iter()
            .filter(|e| e.kind == "response.function_call_arguments.delta")
            .map(|e| e.data["delta"].as_str().unwrap())
            .collect();
        assert_eq!(sent, [shown], "one delta with the whole arguments");
        let by_kind = |k: &str| &out.iter().find(|e| e.kind == k).unwrap().data;
        assert_eq!(
            by_kind("response.function_call_arguments.done")["arguments"],
            shown
        );
        assert_eq!(
            by_kind("response.output_item.done")["item"]["arguments"],
            shown
        );
        let last = &out.last().unwrap().data["response"]["output"][0];
        assert_eq!(last["arguments"], shown);
        assert_eq!(last["call_id"], "call_1");
        for (n, e) in out.iter().enumerate() {
            assert_eq!(e.data["sequence_number"], n);
            assert!(!e.data.to_string().contains("411"), "{}", e.data);
        }

        // No redaction in the chain: each delta passes as it comes.
        let mut relay = Relay::new(|| Pass);
        let out: Vec<TypedEvent> = function_call(&deltas)
            .into_iter()
            .flat_map(|e| relay.push(e))
            .collect();
        let sent: Vec<&str> = out
            .iter()
            .filter(|e| e.kind == "response.function_call_arguments.delta")
            .map(|e| e.data["delta"].as_str().unwrap())
            .collect();
        assert_eq!(sent, deltas);
    }

    #[test]
    fn a_failure_ends_with_error_and_response_failed_from_the_last_response() {
        let input = upstream("native_stream.sse");
        let mut relay = Relay::new(DigitMask::default);
        let mut out = Vec::new();
        // Up to the first delta only.
        for ev in input
            .iter()
            .take_while(|e| e["type"] != "response.output_text.done")
        {
            out.extend(relay.push(ev.clone()));
        }
        let n = out.len();
        let end = relay.fail(
            "output_blocked",
            "blocked",
            Some("pii-detector"),
            "output_blocked",
        );
        assert_eq!(end[0].kind, "error");
        assert_eq!(end[0].data["sequence_number"], n);
        assert_eq!(end[0].data["policy"], "pii-detector");
        let failed = &end[1].data["response"];
        assert_eq!(end[1].kind, "response.failed");
        assert_eq!(failed["status"], "failed");
        assert_eq!(failed["id"], "resp_up1");
        assert_eq!(failed["error"]["code"], "output_blocked");
        assert!(relay
            .push(json!({"type": "response.completed", "response": {}}))
            .is_empty());
        // An upstream that reported its own error is not reported twice.
        let mut relay = Relay::new(DigitMask::default);
        relay.push(input[0].clone());
        let e = relay.push(json!({"type": "error", "code": "server_error", "message": "x"}));
        assert_eq!(e[0].data["sequence_number"], 1);
        let end = relay.fail("server_error", "x", None, "server_error");
        assert_eq!(end.len(), 1);
        assert_eq!(end[0].kind, "response.failed");
    }
}
