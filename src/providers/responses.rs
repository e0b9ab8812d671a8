//! Chat Completions ↔ Responses API, PURE: a Responses request becomes a `ChatRequest`
//! (so every provider serves it), a chat answer becomes a `response` object, and a
//! finished `response` becomes the typed SSE event sequence of a streamed answer.

use serde_json::{json, Map, Value};

use crate::openai::responses::{
    OutputItem, OutputText, ResponseError, ResponseObject, ResponseUsage, ResponsesRequest,
    TokensDetails,
};
use crate::openai::{
    ApiError, ChatRequest, ChatResponse, Content, ContentPart, FunctionCall, FunctionDef, ImageUrl,
    Message, Role, Tool, ToolCall,
};

/// Translates a Responses request into the chat request kt routes.
pub fn to_chat(req: &ResponsesRequest) -> Result<ChatRequest, ApiError> {
    if req.store == Some(true) {
        return Err(stateless("store"));
    }
    if req.previous_response_id.is_some() {
        return Err(stateless("previous_response_id"));
    }
    if req.conversation.as_ref().is_some_and(|c| !c.is_null()) {
        return Err(stateless("conversation"));
    }
    let mut messages = Vec::new();
    if let Some(i) = req.instructions.as_ref().filter(|i| !i.is_empty()) {
        messages.push(Message::text(Role::System, i.clone()));
    }
    match &req.input {
        Some(Value::String(s)) => messages.push(Message::text(Role::User, s.clone())),
        Some(Value::Array(items)) => {
            for (n, item) in items.iter().enumerate() {
                push_item(&mut messages, item)
                    .map_err(|e| ApiError::bad_request(e).with_param(&format!("input[{n}]")))?;
            }
        }
        None | Some(Value::Null) => return Err(ApiError::missing_param("input")),
        Some(_) => {
            return Err(
                ApiError::bad_request("'input' must be a string or an array of items.")
                    .with_param("input"),
            )
        }
    }
    if messages.iter().all(|m| m.role.is_system()) {
        return Err(
            ApiError::bad_request("'input' must contain at least one message.").with_param("input"),
        );
    }
    let tools = match &req.tools {
        Some(t) if !t.is_empty() => Some(
            t.iter()
                .map(to_chat_tool)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| ApiError::bad_request(e).with_param("tools"))?,
        ),
        _ => None,
    };
    let mut extra = Map::new();
    if let Some(p) = req.parallel_tool_calls.filter(|_| tools.is_some()) {
        extra.insert("parallel_tool_calls".to_string(), Value::Bool(p));
    }
    Ok(ChatRequest {
        model: req.model.clone(),
        messages,
        stream: None,
        tools,
        tool_choice: req.tool_choice.as_ref().map(to_chat_tool_choice),
        max_completion_tokens: req.max_output_tokens,
        temperature: req.temperature,
        top_p: req.top_p,
        response_format: req
            .text
            .as_ref()
            .and_then(|t| t.get("format"))
            .and_then(to_response_format),
        extra,
        ..ChatRequest::default()
    })
}

fn stateless(param: &str) -> ApiError {
    ApiError::bad_request(format!(
        "`{param}` needs server-side response state, which kt does not keep; send the whole conversation in `input` instead."
    ))
    .with_param(param)
}

/// Appends one input item: a message, a function call (merged into the preceding
/// assistant tool-call message), or a function call output.
fn push_item(messages: &mut Vec<Message>, item: &Value) -> Result<(), String> {
    let kind = item
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("message");
    match kind {
        "message" => {
            let role = match item.get("role").and_then(Value::as_str) {
                Some("user") => Role::User,
                Some("assistant") => Role::Assistant,
                Some("system") => Role::System,
                Some("developer") => Role::Developer,
                other => return Err(format!("unknown message role `{}`", other.unwrap_or(""))),
            };
            let content = match item.get("content") {
                Some(Value::String(s)) => Content::Text(s.clone()),
                Some(Value::Array(parts)) => Content::Parts(
                    parts
                        .iter()
                        .map(to_chat_part)
                        .collect::<Result<Vec<_>, _>>()?,
                ),
                _ => return Err("a message item needs `content`".to_string()),
            };
            messages.push(Message {
                role,
                content: Some(content),
                ..Message::default()
            });
        }
        "function_call" => {
            let s = |k: &str| item.get(k).and_then(Value::as_str).map(str::to_string);
            let call = ToolCall {
                id: s("call_id").ok_or("a function_call item needs `call_id`")?,
                kind: "function".to_string(),
                function: FunctionCall {
                    name: s("name").ok_or("a function_call item needs `name`")?,
                    arguments: s("arguments").unwrap_or_default(),
                },
            };
            match messages.last_mut() {
                Some(m) if m.role == Role::Assistant && m.tool_calls.is_some() => {
                    if let Some(calls) = m.tool_calls.as_mut() {
                        calls.push(call);
                    }
                }
                _ => messages.push(Message {
                    role: Role::Assistant,
                    content: None,
                    tool_calls: Some(vec![call]),
                    ..Message::default()
                }),
            }
        }
        "function_call_output" => {
            let call_id = item
                .get("call_id")
                .and_then(Value::as_str)
                .ok_or("a function_call_output item needs `call_id`")?;
            let output = match item.get("output") {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Array(parts)) => parts
                    .iter()
                    .filter_map(|p| p.get("text").and_then(Value::as_str))
                    .collect::<Vec<_>>()
                    .join("\n"),
                _ => return Err("a function_call_output item needs `output`".to_string()),
            };
            messages.push(Message {
                role: Role::Tool,
                content: Some(Content::Text(output)),
                tool_call_id: Some(call_id.to_string()),
                ..Message::default()
            });
        }
        other => return Err(format!("input items of type `{other}` are not supported")),
    }
    Ok(())
}

fn to_chat_part(part: &Value) -> Result<ContentPart, String> {
    let kind = part.get("type").and_then(Value::as_str).unwrap_or("");
    let text = part.get("text").and_then(Value::as_str).map(str::to_string);
    match kind {
        "input_text" | "output_text" | "text" => Ok(ContentPart {
            kind: "text".to_string(),
            text: Some(text.unwrap_or_default()),
            ..ContentPart::default()
        }),
        "refusal" => Ok(ContentPart {
            kind: "text".to_string(),
            text: part
                .get("refusal")
                .and_then(Value::as_str)
                .map(str::to_string),
            ..ContentPart::default()
        }),
        "input_image" => {
            let url = part
                .get("image_url")
                .and_then(Value::as_str)
                .ok_or("an input_image part needs `image_url` (file ids need stored state)")?;
            Ok(ContentPart {
                kind: "image_url".to_string(),
                image_url: Some(ImageUrl {
                    url: url.to_string(),
                    detail: part
                        .get("detail")
                        .and_then(Value::as_str)
                        .map(str::to_string),
                }),
                ..ContentPart::default()
            })
        }
        other => Err(format!("content parts of type `{other}` are not supported")),
    }
}

/// A flat Responses function tool → a chat tool.
fn to_chat_tool(tool: &Value) -> Result<Tool, String> {
    let kind = tool.get("type").and_then(Value::as_str).unwrap_or("");
    if kind != "function" {
        return Err(format!(
            "tools of type `{kind}` are not supported; only `function` tools are"
        ));
    }
    let name = tool
        .get("name")
        .and_then(Value::as_str)
        .ok_or("a function tool needs `name`")?;
    Ok(Tool {
        kind: "function".to_string(),
        function: FunctionDef {
            name: name.to_string(),
            description: tool
                .get("description")
                .and_then(Value::as_str)
                .map(str::to_string),
            parameters: tool.get("parameters").filter(|p| !p.is_null()).cloned(),
            strict: tool.get("strict").and_then(Value::as_bool),
        },
        extra: Map::new(),
    })
}

fn to_chat_tool_choice(choice: &Value) -> Value {
    match choice.get("name").and_then(Value::as_str) {
        Some(name) if choice.get("type").and_then(Value::as_str) == Some("function") => {
            json!({"type": "function", "function": {"name": name}})
        }
        _ => choice.clone(),
    }
}

/// `text.format` → `response_format` (`json_schema` gains its wrapper).
fn to_response_format(format: &Value) -> Option<Value> {
    match format.get("type").and_then(Value::as_str)? {
        "text" => None,
        "json_object" => Some(json!({"type": "json_object"})),
        "json_schema" => {
            let mut schema = Map::new();
            for k in ["name", "schema", "strict", "description"] {
                if let Some(v) = format.get(k) {
                    schema.insert(k.to_string(), v.clone());
                }
            }
            Some(json!({"type": "json_schema", "json_schema": schema}))
        }
        _ => Some(format.clone()),
    }
}

/// The `response` object's echo of the request, before any output.
pub fn skeleton(req: &ResponsesRequest, id: &str, created_at: u64) -> ResponseObject {
    ResponseObject {
        id: id.to_string(),
        object: "response".to_string(),
        created_at,
        model: req.model.clone(),
        status: "in_progress".to_string(),
        output: Vec::new(),
        usage: None,
        parallel_tool_calls: req.parallel_tool_calls.unwrap_or(true),
        tool_choice: req.tool_choice.clone().unwrap_or_else(|| json!("auto")),
        tools: req.tools.clone().unwrap_or_default(),
        error: None,
        incomplete_details: None,
        instructions: req.instructions.clone(),
        metadata: req.metadata.clone().unwrap_or_else(|| json!({})),
        temperature: req.temperature,
        top_p: req.top_p,
        x_keeptrusts: None,
    }
}

/// A chat answer → the finished `response` object. Item ids derive from `id`.
pub fn from_chat(
    resp: &ChatResponse,
    req: &ResponsesRequest,
    id: &str,
    created_at: u64,
) -> ResponseObject {
    let mut out = skeleton(req, id, created_at);
    out.model.clone_from(&resp.model);
    let suffix = id.trim_start_matches("resp_");
    let choice = resp.choices.first();
    if let Some(c) = choice {
        let text = c.message.text_content();
        if !text.is_empty() {
            out.output.push(OutputItem::Message {
                id: format!("msg_{suffix}"),
                role: "assistant".to_string(),
                status: "completed".to_string(),
                content: vec![OutputText::new(text)],
            });
        }
        for (n, call) in c.message.tool_calls.iter().flatten().enumerate() {
            out.output.push(OutputItem::FunctionCall {
                id: format!("fc_{suffix}_{n}"),
                call_id: call.id.clone(),
                name: call.function.name.clone(),
                arguments: call.function.arguments.clone(),
                status: "completed".to_string(),
            });
        }
    }
    let reason = match choice.and_then(|c| c.finish_reason.as_deref()) {
        Some("length") => Some("max_output_tokens"),
        Some("content_filter") => Some("content_filter"),
        _ => None,
    };
    match reason {
        Some(r) => {
            out.status = "incomplete".to_string();
            out.incomplete_details = Some(json!({"reason": r}));
        }
        None => out.status = "completed".to_string(),
    }
    out.usage = resp.usage.as_ref().map(|u| ResponseUsage {
        input_tokens: u.prompt_tokens,
        input_tokens_details: TokensDetails {
            cached_tokens: Some(0),
            reasoning_tokens: None,
        },
        output_tokens: u.completion_tokens,
        output_tokens_details: TokensDetails {
            cached_tokens: None,
            reasoning_tokens: Some(0),
        },
        total_tokens: u.total_tokens,
    });
    out
}

/// The text of every `output_text` part: what the output policies see.
pub fn output_text(resp: &ResponseObject) -> String {
    let mut text = String::new();
    for item in &resp.output {
        if let OutputItem::Message { content, .. } = item {
            for part in content {
                text.push_str(&part.text);
            }
        }
    }
    text
}

/// A failed `response`: the skeleton with `error` set.
pub fn failed(mut skeleton: ResponseObject, code: &str, message: &str) -> ResponseObject {
    skeleton.status = "failed".to_string();
    skeleton.error = Some(ResponseError {
        code: code.to_string(),
        message: message.to_string(),
    });
    skeleton
}

/// The streamed event sequence that delivers `done` (whose skeleton is `done` without
/// output): `(event type, data)`, with increasing `sequence_number`s. Text and arguments
/// are sent in deltas of at most `chunk` characters.
pub fn events(done: &ResponseObject, chunk: usize) -> Vec<(String, Value)> {
    let mut seq = Seq::default();
    let mut start = done.clone();
    start.status = "in_progress".to_string();
    start.output.clear();
    start.usage = None;
    start.incomplete_details = None;
    start.x_keeptrusts = None;
    seq.push("response.created", json!({"response": start}));
    seq.push("response.in_progress", json!({"response": start}));
    for (n, item) in done.output.iter().enumerate() {
        match item {
            OutputItem::Message {
                id, role, content, ..
            } => {
                let empty = json!({"id": id, "type": "message", "role": role,
                    "status": "in_progress", "content": []});
                seq.push(
                    "response.output_item.added",
                    json!({"output_index": n, "item": empty}),
                );
                for (c, part) in content.iter().enumerate() {
                    let at = json!({"item_id": id, "output_index": n, "content_index": c});
                    seq.push(
                        "response.content_part.added",
                        with(&at, json!({"part": OutputText::new("")})),
                    );
                    for piece in pieces(&part.text, chunk) {
                        seq.push(
                            "response.output_text.delta",
                            with(&at, json!({"delta": piece, "logprobs": []})),
                        );
                    }
                    seq.push(
                        "response.output_text.done",
                        with(&at, json!({"text": part.text, "logprobs": []})),
                    );
                    seq.push(
                        "response.content_part.done",
                        with(&at, json!({"part": part})),
                    );
                }
            }
            OutputItem::FunctionCall {
                id,
                call_id,
                name,
                arguments,
                ..
            } => {
                let empty = json!({"id": id, "type": "function_call", "call_id": call_id,
                    "name": name, "arguments": "", "status": "in_progress"});
                seq.push(
                    "response.output_item.added",
                    json!({"output_index": n, "item": empty}),
                );
                let at = json!({"item_id": id, "output_index": n});
                for piece in pieces(arguments, chunk) {
                    seq.push(
                        "response.function_call_arguments.delta",
                        with(&at, json!({"delta": piece})),
                    );
                }
                seq.push(
                    "response.function_call_arguments.done",
                    with(&at, json!({"name": name, "arguments": arguments})),
                );
            }
        }
        seq.push(
            "response.output_item.done",
            json!({"output_index": n, "item": item}),
        );
    }
    let last = match done.status.as_str() {
        "incomplete" => "response.incomplete",
        "failed" => "response.failed",
        _ => "response.completed",
    };
    seq.push(last, json!({"response": done}));
    seq.events
}

#[derive(Default)]
struct Seq {
    next: u64,
    events: Vec<(String, Value)>,
}

impl Seq {
    fn push(&mut self, kind: &str, body: Value) {
        let mut body = body;
        if let Some(o) = body.as_object_mut() {
            o.insert("type".to_string(), json!(kind));
            o.insert("sequence_number".to_string(), json!(self.next));
        }
        self.next += 1;
        self.events.push((kind.to_string(), body));
    }
}

fn with(base: &Value, more: Value) -> Value {
    let mut out = base.clone();
    if let (Some(o), Some(m)) = (out.as_object_mut(), more.as_object()) {
        for (k, v) in m {
            o.insert(k.clone(), v.clone());
        }
    }
    out
}

/// `text` split into pieces of at most `chunk` characters (on char boundaries).
fn pieces(text: &str, chunk: usize) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    chars
        .chunks(chunk.max(1))
        .map(|c| c.iter().collect())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Value {
        let path = format!("{}/testdata/responses/{name}", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    fn request(name: &str) -> ResponsesRequest {
        serde_json::from_value(fixture(name)).unwrap()
    }

    #[test]
    fn fixture_request_items_translate_to_chat() {
        let chat = to_chat(&request("request_items.json")).unwrap();
        assert_eq!(
            serde_json::to_value(&chat).unwrap(),
            fixture("request_items.chat.json")
        );
    }

    #[test]
    fn string_input_is_one_user_message_and_stateful_fields_are_refused() {
        let req: ResponsesRequest =
            serde_json::from_value(json!({"model": "m", "input": "hi"})).unwrap();
        let chat = to_chat(&req).unwrap();
        assert_eq!(chat.messages, vec![Message::text(Role::User, "hi")]);
        assert!(chat.tools.is_none() && chat.response_format.is_none());
        for (field, value) in [
            ("store", json!(true)),
            ("previous_response_id", json!("resp_0")),
            ("conversation", json!("conv_1")),
        ] {
            let mut body = json!({"model": "m", "input": "hi"});
            body[field] = value;
            let e = to_chat(&serde_json::from_value(body).unwrap()).unwrap_err();
            assert_eq!((e.status, e.body.param.as_deref()), (400, Some(field)));
        }
        let bad: ResponsesRequest = serde_json::from_value(
            json!({"model": "m", "input": [{"type": "web_search_call", "id": "x"}]}),
        )
        .unwrap();
        assert_eq!(
            to_chat(&bad).unwrap_err().body.param.as_deref(),
            Some("input[0]")
        );
        let tool: ResponsesRequest = serde_json::from_value(
            json!({"model": "m", "input": "hi", "tools": [{"type": "web_search"}]}),
        )
        .unwrap();
        assert_eq!(
            to_chat(&tool).unwrap_err().body.param.as_deref(),
            Some("tools")
        );
    }

    #[test]
    fn fixture_chat_answer_translates_to_a_response() {
        let chat: ChatResponse = serde_json::from_value(fixture("chat_answer.json")).unwrap();
        let done = from_chat(
            &chat,
            &request("request_items.json"),
            "resp_1",
            1_700_000_000,
        );
        assert_eq!(
            serde_json::to_value(&done).unwrap(),
            fixture("chat_answer.response.json")
        );
        assert_eq!(output_text(&done), "Checking.");
    }

    #[test]
    fn length_and_content_filter_are_incomplete() {
        let mut chat: ChatResponse = serde_json::from_value(fixture("chat_answer.json")).unwrap();
        for (finish, reason) in [
            ("length", "max_output_tokens"),
            ("content_filter", "content_filter"),
        ] {
            if let Some(c) = chat.choices.first_mut() {
                c.finish_reason = Some(finish.to_string());
            }
            let done = from_chat(&chat, &request("request_items.json"), "resp_1", 1);
            assert_eq!(done.status, "incomplete");
            assert_eq!(done.incomplete_details, Some(json!({"reason": reason})));
        }
    }

    #[test]
    fn events_deliver_the_response_in_order() {
        let chat: ChatResponse = serde_json::from_value(fixture("chat_answer.json")).unwrap();
        let done = from_chat(&chat, &request("request_items.json"), "resp_1", 1);
        let events = events(&done, 4);
        let kinds: Vec<&str> = events.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            kinds,
            [
                "response.created",
                "response.in_progress",
                "response.output_item.added",
                "response.content_part.added",
                "response.output_text.delta",
                "response.output_text.delta",
                "response.output_text.delta",
                "response.output_text.done",
                "response.content_part.done",
                "response.output_item.done",
                "response.output_item.added",
                "response.function_call_arguments.delta",
                "response.function_call_arguments.delta",
                "response.function_call_arguments.delta",
                "response.function_call_arguments.delta",
                "response.function_call_arguments.done",
                "response.output_item.done",
                "response.completed",
            ]
        );
        for (n, (kind, data)) in events.iter().enumerate() {
            assert_eq!(data["type"], kind.as_str());
            assert_eq!(data["sequence_number"], n);
        }
        let (_, created) = &events[0];
        assert_eq!(created["response"]["status"], "in_progress");
        assert_eq!(created["response"]["output"], json!([]));
        let text: String = events
            .iter()
            .filter(|(k, _)| k == "response.output_text.delta")
            .filter_map(|(_, d)| d["delta"].as_str())
            .collect();
        assert_eq!(text, "Checking.");
        let args: String = events
            .iter()
            .filter(|(k, _)| k == "response.function_call_arguments.delta")
            .filter_map(|(_, d)| d["delta"].as_str())
            .collect();
        assert_eq!(args, "{\"city\":\"Paris\"}");
        let (_, last) = &events[17];
        assert_eq!(last["response"], serde_json::to_value(&done).unwrap());
        let failed = failed(
            skeleton(&request("request_items.json"), "resp_2", 1),
            "x",
            "y",
        );
        assert_eq!(events_last(&failed), "response.failed");
    }

    fn events_last(done: &ResponseObject) -> String {
        events(done, 8)
            .last()
            .map(|(k, _)| k.clone())
            .unwrap_or_default()
    }

    #[test]
    fn pieces_split_on_char_boundaries() {
        assert_eq!(pieces("ça va🌍", 2), ["ça", " v", "a🌍"]);
        assert!(pieces("", 3).is_empty());
    }
}
