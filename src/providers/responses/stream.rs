//! Chat chunks → the typed events of a streamed Responses answer, one chunk at a time:
//! `response.created` and `response.in_progress` at once, then per output item
//! `response.output_item.added`, its content part or argument deltas as the chunks bring
//! them, its `.done` events when the item ends, and `response.completed` (or
//! `response.incomplete`) with the whole `response`, usage included. A failure mid-stream
//! is an `error` event and `response.failed`.
//!
//! The chunks are what the client may see: the gateway feeds this translator after the
//! output phase's stream filter, exactly where a chat stream would write them.

use serde_json::{json, Value};

use super::response::{self, item_id};
use super::{with, Sequence, TypedEvent};
use crate::openai::responses::{OutputItem, OutputText, ResponseObject};
use crate::openai::{ChatChunk, KeeptrustsMeta, ToolCallDelta, Usage};

/// The translator of one stream.
#[derive(Debug)]
pub struct Translator {
    /// The `response` as it stands; `output` holds every item started so far.
    response: ResponseObject,
    seq: Sequence,
    started: bool,
    /// Which items of `response.output` are still open.
    open: Vec<bool>,
    /// The output index of the message item taking text, if one is open.
    message: Option<usize>,
    calls: Vec<Call>,
    finish_reason: Option<String>,
    usage: Option<Usage>,
}

/// A tool call of the chat stream (by its chat `index`).
#[derive(Debug)]
struct Call {
    index: u32,
    call_id: Option<String>,
    name: Option<String>,
    /// Arguments received before the call could start (no id or name yet).
    pending: String,
    /// Its output index once `output_item.added` was sent.
    output: Option<usize>,
}

impl Translator {
    /// A translator for the answer to `skeleton` (see `response::skeleton`).
    pub fn new(skeleton: ResponseObject) -> Translator {
        Translator {
            response: skeleton,
            seq: Sequence::default(),
            started: false,
            open: Vec::new(),
            message: None,
            calls: Vec::new(),
            finish_reason: None,
            usage: None,
        }
    }

    /// `response.created` and `response.in_progress` (once).
    pub fn start(&mut self) -> Vec<TypedEvent> {
        let mut out = Vec::new();
        self.begin(&mut out);
        out
    }

    fn begin(&mut self, out: &mut Vec<TypedEvent>) {
        if self.started {
            return;
        }
        self.started = true;
        let mut r = self.response.clone();
        r.status = "in_progress".to_string();
        r.output.clear();
        r.x_keeptrusts = None;
        out.push(self.seq.event("response.created", json!({"response": r})));
        out.push(
            self.seq
                .event("response.in_progress", json!({"response": r})),
        );
    }

    /// The events one chat chunk brings. Only choice 0 is translated (a Responses answer
    /// has one).
    pub fn push(&mut self, chunk: &ChatChunk) -> Vec<TypedEvent> {
        let mut out = Vec::new();
        self.begin(&mut out);
        if !chunk.model.is_empty() {
            self.response.model.clone_from(&chunk.model);
        }
        if let Some(u) = &chunk.usage {
            self.usage = Some(u.clone());
        }
        for choice in chunk.choices.iter().filter(|c| c.index == 0) {
            if let Some(text) = choice.delta.content.as_deref().filter(|t| !t.is_empty()) {
                self.text(text, &mut out);
            }
            for d in choice.delta.tool_calls.iter().flatten() {
                self.tool_call(d, &mut out);
            }
            if let Some(f) = &choice.finish_reason {
                self.finish_reason = Some(f.clone());
            }
        }
        out
    }

    fn text(&mut self, text: &str, out: &mut Vec<TypedEvent>) {
        let n = match self.message {
            Some(n) => n,
            None => {
                let n = self.response.output.len();
                let id = item_id("msg", &self.response.id, n);
                let item = OutputItem::Message {
                    id: id.clone(),
                    role: "assistant".to_string(),
                    status: "in_progress".to_string(),
                    content: Vec::new(),
                };
                out.push(self.seq.event(
                    "response.output_item.added",
                    json!({"output_index": n, "item": item}),
                ));
                out.push(self.seq.event(
                    "response.content_part.added",
                    json!({"item_id": id, "output_index": n, "content_index": 0,
                        "part": OutputText::new("")}),
                ));
                self.add(item_with_text(item, ""));
                self.message = Some(n);
                n
            }
        };
        if let Some(OutputItem::Message { id, content, .. }) = self.response.output.get_mut(n) {
            if let Some(part) = content.first_mut() {
                part.text.push_str(text);
            }
            let at = json!({"item_id": id, "output_index": n, "content_index": 0});
            out.push(self.seq.event(
                "response.output_text.delta",
                with(&at, json!({"delta": text, "logprobs": []})),
            ));
        }
    }

    fn tool_call(&mut self, d: &ToolCallDelta, out: &mut Vec<TypedEvent>) {
        let at = match self.calls.iter().position(|c| c.index == d.index) {
            Some(at) => at,
            None => {
                self.calls.push(Call {
                    index: d.index,
                    call_id: None,
                    name: None,
                    pending: String::new(),
                    output: None,
                });
                self.calls.len() - 1
            }
        };
        let args = d
            .function
            .as_ref()
            .and_then(|f| f.arguments.as_deref())
            .unwrap_or_default();
        let Some(call) = self.calls.get_mut(at) else {
            return;
        };
        if let Some(id) = d.id.as_ref().filter(|id| !id.is_empty()) {
            call.call_id.get_or_insert_with(|| id.clone());
        }
        if let Some(name) = d.function.as_ref().and_then(|f| f.name.as_ref()) {
            call.name.get_or_insert_with(|| name.clone());
        }
        match call.output {
            Some(n) => self.arguments(n, args, out),
            None => {
                call.pending.push_str(args);
                if call.call_id.is_some() && call.name.is_some() {
                    self.start_call(at, out);
                }
            }
        }
    }

    /// Sends `output_item.added` for the call at `at` (closing the message item first:
    /// text after a call is a new item) and its buffered arguments.
    fn start_call(&mut self, at: usize, out: &mut Vec<TypedEvent>) {
        self.close_message(out);
        let n = self.response.output.len();
        let fallback = item_id("call", &self.response.id, n);
        let Some(call) = self.calls.get_mut(at) else {
            return;
        };
        call.output = Some(n);
        let item = OutputItem::FunctionCall {
            id: item_id("fc", &self.response.id, n),
            call_id: call.call_id.clone().unwrap_or(fallback),
            name: call.name.clone().unwrap_or_default(),
            arguments: String::new(),
            status: "in_progress".to_string(),
        };
        let pending = std::mem::take(&mut call.pending);
        out.push(self.seq.event(
            "response.output_item.added",
            json!({"output_index": n, "item": item}),
        ));
        self.add(item);
        self.arguments(n, &pending, out);
    }

    fn arguments(&mut self, n: usize, piece: &str, out: &mut Vec<TypedEvent>) {
        if piece.is_empty() {
            return;
        }
        if let Some(OutputItem::FunctionCall { id, arguments, .. }) =
            self.response.output.get_mut(n)
        {
            arguments.push_str(piece);
            out.push(self.seq.event(
                "response.function_call_arguments.delta",
                json!({"item_id": id, "output_index": n, "delta": piece}),
            ));
        }
    }

    fn add(&mut self, item: OutputItem) {
        self.response.output.push(item);
        self.open.push(true);
    }

    fn close_message(&mut self, out: &mut Vec<TypedEvent>) {
        if let Some(n) = self.message.take() {
            self.close(n, out);
        }
    }

    /// The `.done` events of the item at `n`, if it is open.
    fn close(&mut self, n: usize, out: &mut Vec<TypedEvent>) {
        if !self.open.get(n).copied().unwrap_or(false) {
            return;
        }
        if let Some(o) = self.open.get_mut(n) {
            *o = false;
        }
        let Some(item) = self.response.output.get_mut(n) else {
            return;
        };
        match item {
            OutputItem::Message {
                id,
                status,
                content,
                ..
            } => {
                *status = "completed".to_string();
                let at = json!({"item_id": id, "output_index": n, "content_index": 0});
                if let Some(part) = content.first() {
                    out.push(self.seq.event(
                        "response.output_text.done",
                        with(&at, json!({"text": part.text, "logprobs": []})),
                    ));
                    out.push(self.seq.event(
                        "response.content_part.done",
                        with(&at, json!({"part": part})),
                    ));
                }
            }
            OutputItem::FunctionCall {
                id,
                name,
                arguments,
                status,
                ..
            } => {
                *status = "completed".to_string();
                out.push(self.seq.event(
                    "response.function_call_arguments.done",
                    json!({"item_id": id, "output_index": n, "name": name, "arguments": arguments}),
                ));
            }
        }
        out.push(self.seq.event(
            "response.output_item.done",
            json!({"output_index": n, "item": item}),
        ));
    }

    /// The end of a complete stream: every open item's `.done` events, then
    /// `response.completed` (or `response.incomplete`) with the whole response.
    pub fn finish(&mut self, meta: Option<KeeptrustsMeta>) -> Vec<TypedEvent> {
        let mut out = Vec::new();
        self.begin(&mut out);
        for at in 0..self.calls.len() {
            if self.calls.get(at).is_some_and(|c| c.output.is_none()) {
                self.start_call(at, &mut out);
            }
        }
        for n in 0..self.response.output.len() {
            self.close(n, &mut out);
        }
        self.message = None;
        response::finish(
            &mut self.response,
            self.finish_reason.as_deref(),
            self.usage.as_ref(),
        );
        self.response.x_keeptrusts = meta;
        let kind = if self.response.status == "incomplete" {
            "response.incomplete"
        } else {
            "response.completed"
        };
        out.push(self.seq.event(kind, json!({"response": self.response})));
        out
    }

    /// A stream that cannot complete: an `error` event (`code`, `message`, and the
    /// blocking `policy` if any), then `response.failed` with the output so far and
    /// `error.code` = `failed_code`.
    pub fn fail(
        &mut self,
        code: &str,
        message: &str,
        policy: Option<&str>,
        failed_code: &str,
    ) -> Vec<TypedEvent> {
        let mut out = Vec::new();
        self.begin(&mut out);
        out.push(self.seq.event("error", error_body(code, message, policy)));
        for (item, open) in self.response.output.iter_mut().zip(&self.open) {
            if *open {
                set_status(item, "incomplete");
            }
        }
        let mut failed = response::failed(self.response.clone(), failed_code, message);
        failed.usage = self.usage.as_ref().map(response::to_response_usage);
        out.push(
            self.seq
                .event("response.failed", json!({"response": failed})),
        );
        out
    }

    /// The usage the stream reported, if any.
    pub fn usage(&self) -> Option<&Usage> {
        self.usage.as_ref()
    }
}

/// The body of an `error` event.
pub fn error_body(code: &str, message: &str, policy: Option<&str>) -> Value {
    let mut body = json!({"code": code, "message": message, "param": null});
    if let (Some(p), Some(o)) = (policy, body.as_object_mut()) {
        o.insert("policy".to_string(), json!(p));
    }
    body
}

fn item_with_text(item: OutputItem, text: &str) -> OutputItem {
    match item {
        OutputItem::Message {
            id, role, status, ..
        } => OutputItem::Message {
            id,
            role,
            status,
            content: vec![OutputText::new(text)],
        },
        call @ OutputItem::FunctionCall { .. } => call,
    }
}

fn set_status(item: &mut OutputItem, to: &str) {
    match item {
        OutputItem::Message { status, .. } | OutputItem::FunctionCall { status, .. } => {
            *status = to.to_string();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::openai::responses::ResponsesRequest;
    use crate::openai::ChatResponse;

    fn fixture(name: &str) -> Value {
        let path = format!("{}/testdata/responses/{name}", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    fn translator() -> Translator {
        let req: ResponsesRequest = serde_json::from_value(fixture("request_items.json")).unwrap();
        Translator::new(response::skeleton(&req, "resp_1", 1_700_000_000))
    }

    fn chunks() -> Vec<ChatChunk> {
        serde_json::from_value(fixture("chat_stream.json")).unwrap()
    }

    fn kinds(events: &[TypedEvent]) -> Vec<&str> {
        events.iter().map(|e| e.kind.as_str()).collect()
    }

    #[test]
    fn fixture_chat_stream_becomes_the_typed_event_sequence() {
        let mut t = translator();
        let mut events = t.start();
        assert_eq!(kinds(&events), ["response.created", "response.in_progress"]);
        let mut per_chunk = Vec::new();
        for c in chunks() {
            let e = t.push(&c);
            per_chunk.push(
                kinds(&e)
                    .iter()
                    .map(|k| (*k).to_string())
                    .collect::<Vec<_>>(),
            );
            events.extend(e);
        }
        // Each text chunk is a delta at once; the call starts when its id and name came.
        assert_eq!(
            per_chunk[1],
            [
                "response.output_item.added",
                "response.content_part.added",
                "response.output_text.delta"
            ]
        );
        assert_eq!(per_chunk[2], ["response.output_text.delta"]);
        assert_eq!(
            per_chunk[3],
            [
                "response.output_text.done",
                "response.content_part.done",
                "response.output_item.done",
                "response.output_item.added",
                "response.function_call_arguments.delta"
            ]
        );
        events.extend(t.finish(None));
        let expected: Vec<String> = fixture("chat_stream.events.json")
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k.as_str().unwrap().to_string())
            .collect();
        assert_eq!(kinds(&events), expected);
        for (n, e) in events.iter().enumerate() {
            assert_eq!(e.data["type"], e.kind.as_str());
            assert_eq!(e.data["sequence_number"], n);
        }
        let text: String = events
            .iter()
            .filter(|e| e.kind == "response.output_text.delta")
            .filter_map(|e| e.data["delta"].as_str())
            .collect();
        assert_eq!(text, "Checking.");
        let args: String = events
            .iter()
            .filter(|e| e.kind == "response.function_call_arguments.delta")
            .filter_map(|e| e.data["delta"].as_str())
            .collect();
        assert_eq!(args, "{\"city\":\"Paris\"}");
        // Indexes and ids agree across an item's events.
        for e in &events {
            if let (Some(n), Some(id)) =
                (e.data["output_index"].as_u64(), e.data["item_id"].as_str())
            {
                assert_eq!(
                    id,
                    item_id(if n == 0 { "msg" } else { "fc" }, "resp_1", n as usize)
                );
            }
        }
        // The final response is the one the unary path builds from the same answer.
        let last = events.last().unwrap();
        let chat: ChatResponse = serde_json::from_value(fixture("chat_answer.json")).unwrap();
        let req: ResponsesRequest = serde_json::from_value(fixture("request_items.json")).unwrap();
        let unary = response::from_chat(&chat, &req, "resp_1", 1_700_000_000);
        assert_eq!(last.data["response"], serde_json::to_value(&unary).unwrap());
    }

    #[test]
    fn a_call_without_its_id_waits_and_a_failure_ends_with_response_failed() {
        let mut t = translator();
        t.start();
        let chunk = |delta: Value| -> ChatChunk {
            serde_json::from_value(json!({"choices": [{"index": 0, "delta": delta}]})).unwrap()
        };
        let c = chunk(json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"a\""}}]}));
        assert!(
            t.push(&c).is_empty(),
            "no id nor name yet: nothing to announce"
        );
        let c = chunk(json!({"tool_calls": [{"index": 0, "id": "call_z",
            "function": {"name": "f", "arguments": ":1}"}}]}));
        let e = t.push(&c);
        assert_eq!(
            kinds(&e),
            [
                "response.output_item.added",
                "response.function_call_arguments.delta"
            ]
        );
        assert_eq!(e[1].data["delta"], "{\"a\":1}");
        assert_eq!(e[0].data["item"]["call_id"], "call_z");
        let e = t.fail(
            "output_blocked",
            "no",
            Some("pii-detector"),
            "output_blocked",
        );
        assert_eq!(kinds(&e), ["error", "response.failed"]);
        assert_eq!(
            e[0].data,
            json!({"type": "error", "code": "output_blocked", "message": "no",
            "param": null, "policy": "pii-detector", "sequence_number": 4})
        );
        let failed = &e[1].data["response"];
        assert_eq!(failed["status"], "failed");
        assert_eq!(
            failed["error"],
            json!({"code": "output_blocked", "message": "no"})
        );
        assert_eq!(failed["output"][0]["arguments"], "{\"a\":1}");
        assert_eq!(failed["output"][0]["status"], "incomplete");
    }

    #[test]
    fn an_empty_or_length_limited_answer_still_completes_in_order() {
        let mut t = translator();
        let e = t.finish(None);
        assert_eq!(
            kinds(&e),
            [
                "response.created",
                "response.in_progress",
                "response.completed"
            ]
        );
        assert_eq!(e[2].data["response"]["output"], json!([]));
        let mut t = translator();
        let mut c: ChatChunk = serde_json::from_value(json!({"choices": [{"index": 0,
            "delta": {"content": "abc"}, "finish_reason": "length"}],
            "usage": {"prompt_tokens": 2, "completion_tokens": 3, "total_tokens": 5}}))
        .unwrap();
        t.push(&c);
        c.choices.clear();
        let e = t.finish(None);
        let last = e.last().unwrap();
        assert_eq!(last.kind, "response.incomplete");
        assert_eq!(
            last.data["response"]["incomplete_details"]["reason"],
            "max_output_tokens"
        );
        assert_eq!(last.data["response"]["usage"]["total_tokens"], 5);
        assert_eq!(
            last.data["response"]["output"][0]["content"][0]["text"],
            "abc"
        );
    }
}
