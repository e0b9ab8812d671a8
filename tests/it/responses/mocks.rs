//! Upstream mocks for the Responses tests, in three formats — a native OpenAI Responses
//! API, OpenAI Chat Completions, Anthropic Messages — all answering the same script
//! (tests/python/sdk_responses.py), whole or streamed in small pieces `delay` apart.

use std::time::Duration;

use serde_json::{json, Value};

use crate::support::*;

/// The card number a "leak" prompt gets back.
pub const CARD: &str = "4111 1111 1111 1111";

/// What the script expects for a request.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    Text(String),
    /// `get_weather({"city": "Paris"})`.
    Call,
}

/// A content value's text: a string, or its parts' `text` (or `content`) joined.
pub fn text_of(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .map(|p| {
                p.get("text")
                    .map(text_of)
                    .or_else(|| p.get("content").map(text_of))
                    .unwrap_or_default()
            })
            .collect(),
        _ => String::new(),
    }
}

fn decide(prompt: &str, tool_output: Option<String>, has_tools: bool) -> Answer {
    match tool_output {
        Some(out) => Answer::Text(format!("It is {out} in Paris.")),
        None if has_tools => Answer::Call,
        None if prompt.contains("leak") => Answer::Text(format!("card {CARD}")),
        None => Answer::Text(format!("echo: {prompt}")),
    }
}

/// Text in pieces of 5 characters: a card number spans several.
fn pieces(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    chars.chunks(5).map(|c| c.iter().collect()).collect()
}

const ARGS: &str = r#"{"city":"Paris"}"#;

fn sse(events: Vec<String>, delay: Duration) -> MockReply {
    MockReply::Sse {
        events,
        delay,
        close_early: false,
    }
}

/// An OpenAI Chat Completions upstream; call id `call_w1`.
pub fn chat(delay: Duration) -> MockUpstream {
    MockUpstream::start(move |r| {
        if r.path != "/v1/chat/completions" {
            return MockReply::json(418, json!({"error": format!("unexpected path {}", r.path)}));
        }
        let body = r.json();
        let messages = body["messages"].as_array().cloned().unwrap_or_default();
        let last = messages.last().cloned().unwrap_or(Value::Null);
        let tool = (last["role"] == "tool").then(|| text_of(&last["content"]));
        let answer = decide(&text_of(&last["content"]), tool, body["tools"].is_array());
        let usage = json!({"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10});
        let call = |args: &str| {
            json!([{"index": 0, "id": "call_w1", "type": "function",
            "function": {"name": "get_weather", "arguments": args}}])
        };
        if body["stream"] != true {
            let message = match &answer {
                Answer::Text(t) => json!({"role": "assistant", "content": t}),
                Answer::Call => json!({"role": "assistant", "content": null,
                    "tool_calls": [{"id": "call_w1", "type": "function",
                        "function": {"name": "get_weather", "arguments": ARGS}}]}),
            };
            let finish = if answer == Answer::Call {
                "tool_calls"
            } else {
                "stop"
            };
            return MockReply::json(
                200,
                json!({"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4o",
                    "choices": [{"index": 0, "message": message, "finish_reason": finish}], "usage": usage}),
            );
        }
        let chunk = |delta: Value, finish: Value| {
            json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o",
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
        };
        let mut chunks = vec![chunk(
            json!({"role": "assistant", "content": ""}),
            Value::Null,
        )];
        let finish = match &answer {
            Answer::Text(t) => {
                chunks.extend(
                    pieces(t)
                        .iter()
                        .map(|p| chunk(json!({"content": p}), Value::Null)),
                );
                "stop"
            }
            Answer::Call => {
                chunks.push(chunk(json!({"tool_calls": call("")}), Value::Null));
                for p in pieces(ARGS) {
                    chunks.push(chunk(
                        json!({"tool_calls": [{"index": 0, "function": {"arguments": p}}]}),
                        Value::Null,
                    ));
                }
                "tool_calls"
            }
        };
        chunks.push(chunk(json!({}), json!(finish)));
        chunks.push(
            json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1,
            "model": "gpt-4o", "choices": [], "usage": usage}),
        );
        MockReply::openai_sse(&chunks, delay)
    })
}

/// An Anthropic Messages upstream; call id `toolu_w1`.
pub fn anthropic(delay: Duration) -> MockUpstream {
    MockUpstream::start(move |r| {
        if r.path != "/v1/messages" {
            return MockReply::json(418, json!({"error": format!("unexpected path {}", r.path)}));
        }
        let body = r.json();
        let messages = body["messages"].as_array().cloned().unwrap_or_default();
        let last = messages.last().cloned().unwrap_or(Value::Null);
        let result = last["content"]
            .as_array()
            .and_then(|parts| parts.iter().find(|p| p["type"] == "tool_result").cloned())
            .map(|res| text_of(&res["content"]));
        let answer = decide(&text_of(&last["content"]), result, body["tools"].is_array());
        let (block, stop) = match &answer {
            Answer::Text(t) => (json!({"type": "text", "text": t}), "end_turn"),
            Answer::Call => (
                json!({"type": "tool_use", "id": "toolu_w1", "name": "get_weather", "input": {"city": "Paris"}}),
                "tool_use",
            ),
        };
        if body["stream"] != true {
            return MockReply::json(
                200,
                json!({"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
                    "content": [block], "stop_reason": stop, "stop_sequence": null,
                    "usage": {"input_tokens": 7, "output_tokens": 3}}),
            );
        }
        let ev = |kind: &str, data: Value| format!("event: {kind}\ndata: {data}\n\n");
        let mut events = vec![ev(
            "message_start",
            json!({"type": "message_start", "message": {"id": "msg_1", "type": "message",
                "role": "assistant", "model": "claude-sonnet-4-5", "content": [], "stop_reason": null,
                "usage": {"input_tokens": 7, "output_tokens": 1}}}),
        )];
        let (start, deltas) = match &answer {
            Answer::Text(t) => (
                json!({"type": "text", "text": ""}),
                pieces(t)
                    .into_iter()
                    .map(|p| json!({"type": "text_delta", "text": p}))
                    .collect::<Vec<_>>(),
            ),
            Answer::Call => (
                json!({"type": "tool_use", "id": "toolu_w1", "name": "get_weather", "input": {}}),
                pieces(ARGS)
                    .into_iter()
                    .map(|p| json!({"type": "input_json_delta", "partial_json": p}))
                    .collect(),
            ),
        };
        events.push(ev(
            "content_block_start",
            json!({"type": "content_block_start", "index": 0, "content_block": start}),
        ));
        for d in deltas {
            events.push(ev(
                "content_block_delta",
                json!({"type": "content_block_delta", "index": 0, "delta": d}),
            ));
        }
        events.push(ev(
            "content_block_stop",
            json!({"type": "content_block_stop", "index": 0}),
        ));
        events.push(ev(
            "message_delta",
            json!({"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": null},
                "usage": {"output_tokens": 3}}),
        ));
        events.push(ev("message_stop", json!({"type": "message_stop"})));
        sse(events, delay)
    })
}

/// A native OpenAI Responses upstream; call id `call_n1`. Its `response` objects carry a
/// field kt does not know (`x_upstream_marker`), which must reach the client.
pub fn native(delay: Duration) -> MockUpstream {
    MockUpstream::start(move |r| {
        if r.path != "/v1/responses" {
            return MockReply::json(418, json!({"error": format!("unexpected path {}", r.path)}));
        }
        let body = r.json();
        let (prompt, tool) = match &body["input"] {
            Value::String(s) => (s.clone(), None),
            Value::Array(items) => {
                let last = items.last().cloned().unwrap_or(Value::Null);
                let tool =
                    (last["type"] == "function_call_output").then(|| text_of(&last["output"]));
                (text_of(&last["content"]), tool)
            }
            _ => (String::new(), None),
        };
        let answer = decide(&prompt, tool, body["tools"].is_array());
        let stream = body["stream"] == true;
        native_reply(&body, &answer, stream, delay)
    })
}

/// The native upstream's answer to `body`: the `response` object, or its event stream.
pub fn native_reply(body: &Value, answer: &Answer, stream: bool, delay: Duration) -> MockReply {
    let item = match answer {
        Answer::Text(t) => json!({"id": "msg_n1", "type": "message", "role": "assistant",
            "status": "completed", "content": [{"type": "output_text", "text": t, "annotations": []}]}),
        Answer::Call => json!({"id": "fc_n1", "type": "function_call", "call_id": "call_n1",
            "name": "get_weather", "arguments": ARGS, "status": "completed"}),
    };
    let response = |status: &str, output: Value, usage: Value| {
        json!({"id": "resp_n1", "object": "response", "created_at": 1, "model": body["model"],
            "status": status, "output": output, "usage": usage, "parallel_tool_calls": true,
            "tool_choice": "auto", "tools": body.get("tools").cloned().unwrap_or(json!([])),
            "error": null, "incomplete_details": null, "instructions": body["instructions"],
            "metadata": {}, "temperature": 1.0, "top_p": 1.0, "x_upstream_marker": "native"})
    };
    let usage = json!({"input_tokens": 7, "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": 3, "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 10});
    if !stream {
        return MockReply::json(200, response("completed", json!([item]), usage));
    }
    let mut seq = 0;
    let mut events = Vec::new();
    let mut ev = |kind: &str, mut data: Value| {
        data["type"] = json!(kind);
        data["sequence_number"] = json!(seq);
        seq += 1;
        events.push(format!("event: {kind}\ndata: {data}\n\n"));
    };
    let start = response("in_progress", json!([]), Value::Null);
    ev("response.created", json!({"response": start}));
    ev("response.in_progress", json!({"response": start}));
    match answer {
        Answer::Text(t) => {
            let at = |mut v: Value| {
                v["item_id"] = json!("msg_n1");
                v["output_index"] = json!(0);
                v["content_index"] = json!(0);
                v
            };
            ev(
                "response.output_item.added",
                json!({"output_index": 0, "item": {"id": "msg_n1",
                "type": "message", "role": "assistant", "status": "in_progress", "content": []}}),
            );
            let part = json!({"type": "output_text", "text": "", "annotations": []});
            ev("response.content_part.added", at(json!({"part": part})));
            for p in pieces(t) {
                ev(
                    "response.output_text.delta",
                    at(json!({"delta": p, "logprobs": []})),
                );
            }
            ev(
                "response.output_text.done",
                at(json!({"text": t, "logprobs": []})),
            );
            let part = json!({"type": "output_text", "text": t, "annotations": []});
            ev("response.content_part.done", at(json!({"part": part})));
        }
        Answer::Call => {
            let mut added = item.clone();
            added["arguments"] = json!("");
            added["status"] = json!("in_progress");
            ev(
                "response.output_item.added",
                json!({"output_index": 0, "item": added}),
            );
            for p in pieces(ARGS) {
                ev(
                    "response.function_call_arguments.delta",
                    json!({"item_id": "fc_n1", "output_index": 0, "delta": p}),
                );
            }
            ev(
                "response.function_call_arguments.done",
                json!({"item_id": "fc_n1", "output_index": 0, "arguments": ARGS}),
            );
        }
    }
    ev(
        "response.output_item.done",
        json!({"output_index": 0, "item": item}),
    );
    ev(
        "response.completed",
        json!({"response": response("completed", json!([item]), usage)}),
    );
    sse(events, delay)
}

/// The typed events of a Responses stream read by a plain client: `(arrival, data)`.
pub fn typed_events(arrivals: &[Arrival]) -> Vec<(Duration, Value)> {
    arrivals
        .iter()
        .filter_map(|a| Some((a.at, serde_json::from_str(&a.data).ok()?)))
        .collect()
}
