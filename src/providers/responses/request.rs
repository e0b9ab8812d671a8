//! A Responses request → the `ChatRequest` kt routes and the policies check, and the
//! native upstream request for `openai:responses:<model>` targets.
//!
//! `Strictness::Strict` is for a request that may be sent as chat: what chat cannot carry
//! (server-side state, built-in tools, file inputs) is a 400 naming the parameter.
//! `Strictness::Lenient` is for a request passed through natively: such parts are skipped
//! in the chat view (the upstream gets them as sent), so the policies see every text
//! kt understands; tools other than functions enter it by name only
//! ([`tool_view_name`]), for the firewall. Either way every text's `Origin` is kept for
//! `write_back`, and [`write_back_tools`] takes the tools the policies removed out of the
//! native body.
//!
//! The request an `openai:responses:<model>` target gets is built in `native`.

use serde_json::{json, Map, Value};

use super::{Origin, Place};
use crate::openai::responses::ResponsesRequest;
use crate::openai::{
    ApiError, ChatRequest, Content, ContentPart, FunctionCall, FunctionDef, ImageUrl, Message,
    Role, StreamOptions, Tool, ToolCall,
};

/// How to treat what chat cannot carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strictness {
    /// Refuse it (400): the request may be sent as chat.
    Strict,
    /// Leave it out of the chat view: the request goes upstream natively.
    Lenient,
}

/// The chat view of a Responses request and where its texts came from.
#[derive(Debug, Clone)]
pub struct Translated {
    pub chat: ChatRequest,
    pub origins: Vec<Origin>,
}

/// Translates a Responses request into the chat request kt routes. A streamed request
/// asks for usage, which the final `response.completed` carries.
pub fn to_chat(req: &ResponsesRequest, strictness: Strictness) -> Result<Translated, ApiError> {
    let strict = strictness == Strictness::Strict;
    if strict {
        if req.store == Some(true) {
            return Err(stateless("store"));
        }
        if req.previous_response_id.is_some() {
            return Err(stateless("previous_response_id"));
        }
        if req.conversation.as_ref().is_some_and(|c| !c.is_null()) {
            return Err(stateless("conversation"));
        }
    }
    let mut t = Builder {
        strict,
        messages: Vec::new(),
        origins: Vec::new(),
    };
    if let Some(i) = req.instructions.as_ref().filter(|i| !i.is_empty()) {
        t.text_message(Role::System, i, "/instructions".to_string());
    }
    match &req.input {
        Some(Value::String(s)) => t.text_message(Role::User, s, "/input".to_string()),
        Some(Value::Array(items)) => {
            for (n, item) in items.iter().enumerate() {
                t.item(n, item)
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
    if strict && t.messages.iter().all(|m| m.role.is_system()) {
        return Err(
            ApiError::bad_request("'input' must contain at least one message.").with_param("input"),
        );
    }
    let mut tools = Vec::new();
    for tool in req.tools.iter().flatten() {
        match to_chat_tool(tool) {
            Ok(t) => tools.push(t),
            Err(e) if strict => return Err(ApiError::bad_request(e).with_param("tools")),
            Err(_) => tools.extend(named_tool(tool)),
        }
    }
    let tools = (!tools.is_empty()).then_some(tools);
    let mut extra = Map::new();
    if let Some(p) = req.parallel_tool_calls.filter(|_| tools.is_some()) {
        extra.insert("parallel_tool_calls".to_string(), Value::Bool(p));
    }
    let stream = req.is_stream();
    let chat = ChatRequest {
        model: req.model.clone(),
        messages: t.messages,
        stream: stream.then_some(true),
        stream_options: stream.then(|| StreamOptions {
            include_usage: Some(true),
            ..StreamOptions::default()
        }),
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
    };
    Ok(Translated {
        chat,
        origins: t.origins,
    })
}

fn stateless(param: &str) -> ApiError {
    ApiError::bad_request(format!(
        "`{param}` needs server-side response state, which kt does not keep for this model's provider; send the whole conversation in `input` instead."
    ))
    .with_param(param)
}

struct Builder {
    strict: bool,
    messages: Vec<Message>,
    origins: Vec<Origin>,
}

impl Builder {
    fn origin(&mut self, place: Place, pointer: String, original: &str) {
        self.origins.push(Origin {
            message: self.messages.len(),
            place,
            pointer,
            original: original.to_string(),
        });
    }

    fn text_message(&mut self, role: Role, text: &str, pointer: String) {
        self.origin(Place::Content, pointer, text);
        self.messages.push(Message::text(role, text));
    }

    /// Appends one input item: a message, a function call (merged into the preceding
    /// assistant tool-call message), or a function call output. Other item types are an
    /// error when strict, skipped when lenient.
    fn item(&mut self, n: usize, item: &Value) -> Result<(), String> {
        let kind = item
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("message");
        match kind {
            "message" => self.message_item(n, item),
            "function_call" => self.function_call(n, item),
            "function_call_output" => self.function_call_output(n, item),
            other if self.strict => Err(format!("input items of type `{other}` are not supported")),
            _ => Ok(()),
        }
    }

    fn message_item(&mut self, n: usize, item: &Value) -> Result<(), String> {
        let role = match item.get("role").and_then(Value::as_str) {
            Some("user") => Role::User,
            Some("assistant") => Role::Assistant,
            Some("system") => Role::System,
            Some("developer") => Role::Developer,
            other if self.strict => {
                return Err(format!("unknown message role `{}`", other.unwrap_or("")))
            }
            _ => return Ok(()),
        };
        match item.get("content") {
            Some(Value::String(s)) => {
                self.text_message(role, s, format!("/input/{n}/content"));
                Ok(())
            }
            Some(Value::Array(parts)) => {
                let mut chat_parts = Vec::with_capacity(parts.len());
                for (k, part) in parts.iter().enumerate() {
                    let chat_part = match to_chat_part(part) {
                        Ok(p) => p,
                        Err(e) if self.strict => return Err(e),
                        Err(_) => continue,
                    };
                    if let Some(text) = &chat_part.text {
                        let field = if part.get("type").and_then(Value::as_str) == Some("refusal") {
                            "refusal"
                        } else {
                            "text"
                        };
                        self.origin(
                            Place::Part(chat_parts.len()),
                            format!("/input/{n}/content/{k}/{field}"),
                            text,
                        );
                    }
                    chat_parts.push(chat_part);
                }
                self.messages.push(Message {
                    role,
                    content: Some(Content::Parts(chat_parts)),
                    ..Message::default()
                });
                Ok(())
            }
            _ if self.strict => Err("a message item needs `content`".to_string()),
            _ => Ok(()),
        }
    }

    fn function_call(&mut self, n: usize, item: &Value) -> Result<(), String> {
        let s = |k: &str| item.get(k).and_then(Value::as_str).map(str::to_string);
        let (Some(id), Some(name)) = (s("call_id"), s("name")) else {
            return if self.strict {
                Err("a function_call item needs `call_id` and `name`".to_string())
            } else {
                Ok(())
            };
        };
        let arguments = s("arguments").unwrap_or_default();
        let call = ToolCall {
            custom: None,
            id,
            kind: "function".to_string(),
            function: FunctionCall {
                name,
                arguments: arguments.clone(),
            },
        };
        let pointer = format!("/input/{n}/arguments");
        let merge = self
            .messages
            .last()
            .is_some_and(|m| m.role == Role::Assistant && m.tool_calls.is_some());
        if merge {
            let at = self.messages.len() - 1;
            if let Some(calls) = self.messages.last_mut().and_then(|m| m.tool_calls.as_mut()) {
                self.origins.push(Origin {
                    message: at,
                    place: Place::Arguments(calls.len()),
                    pointer,
                    original: arguments,
                });
                calls.push(call);
            }
        } else {
            self.origin(Place::Arguments(0), pointer, &arguments);
            self.messages.push(Message {
                role: Role::Assistant,
                content: None,
                tool_calls: Some(vec![call]),
                ..Message::default()
            });
        }
        Ok(())
    }

    fn function_call_output(&mut self, n: usize, item: &Value) -> Result<(), String> {
        let Some(call_id) = item.get("call_id").and_then(Value::as_str) else {
            return if self.strict {
                Err("a function_call_output item needs `call_id`".to_string())
            } else {
                Ok(())
            };
        };
        let output = match item.get("output") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Array(parts)) => parts
                .iter()
                .filter_map(|p| p.get("text").and_then(Value::as_str))
                .collect::<Vec<_>>()
                .join("\n"),
            _ if self.strict => {
                return Err("a function_call_output item needs `output`".to_string())
            }
            _ => return Ok(()),
        };
        self.origin(Place::Content, format!("/input/{n}/output"), &output);
        self.messages.push(Message {
            role: Role::Tool,
            content: Some(Content::Text(output)),
            tool_call_id: Some(call_id.to_string()),
            ..Message::default()
        });
        Ok(())
    }
}

fn to_chat_part(part: &Value) -> Result<ContentPart, String> {
    let kind = part.get("type").and_then(Value::as_str).unwrap_or("");
    let text = |k: &str| part.get(k).and_then(Value::as_str).map(str::to_string);
    match kind {
        "input_text" | "output_text" | "text" => Ok(ContentPart {
            kind: "text".to_string(),
            text: Some(text("text").unwrap_or_default()),
            ..ContentPart::default()
        }),
        "refusal" => Ok(ContentPart {
            kind: "text".to_string(),
            text: Some(text("refusal").unwrap_or_default()),
            ..ContentPart::default()
        }),
        "input_image" => {
            let url = text("image_url")
                .ok_or("an input_image part needs `image_url` (file ids need stored state)")?;
            Ok(ContentPart {
                kind: "image_url".to_string(),
                image_url: Some(ImageUrl {
                    url,
                    detail: text("detail"),
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
            "tools of type `{kind}` are not supported for this model's provider; only `function` tools are"
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

/// The name the policies know a Responses tool by: a function's or custom tool's `name`;
/// `mcp:<server_label>` for a remote MCP server; else its `type` (`web_search`,
/// `code_interpreter`, `local_shell`, `computer_use_preview`, …).
pub fn tool_view_name(tool: &Value) -> Option<String> {
    let s = |k: &str| tool.get(k).and_then(Value::as_str);
    match s("type")? {
        "function" | "custom" => s("name").map(str::to_string),
        "mcp" => Some(format!("mcp:{}", s("server_label").unwrap_or_default())),
        other => Some(other.to_string()),
    }
}

/// A Responses-shaped tool (flat: `{type, name, parameters}`, as realtime sessions offer
/// them too) as the policies see it: a function tool, or any other by name.
pub fn policy_tool(tool: &Value) -> Option<Tool> {
    to_chat_tool(tool).ok().or_else(|| named_tool(tool))
}

/// A tool chat cannot carry, in the chat view by name (and a custom tool's description,
/// which the prompt-injection check reads): the policies see every tool offered.
fn named_tool(tool: &Value) -> Option<Tool> {
    let name = tool_view_name(tool)?;
    let kind = tool.get("type").and_then(Value::as_str)?.to_string();
    let mut extra = Map::new();
    if kind == "custom" {
        let mut custom = json!({"name": name});
        if let Some(d) = tool.get("description") {
            custom["description"] = d.clone();
        }
        extra.insert("custom".to_string(), custom);
    } else {
        extra.insert("name".to_string(), Value::String(name));
    }
    Some(Tool {
        kind,
        function: FunctionDef::default(),
        extra,
    })
}

/// Takes out of a native body the tools its chat view no longer offers (an
/// `agent-firewall` with `remove_denied_tools` removed them), and a `tool_choice` that
/// names one (an `allowed_tools` choice loses them, and goes when none is left).
/// Returns how many tools were taken out.
pub fn write_back_tools(body: &mut Value, chat: &ChatRequest) -> usize {
    let kept: Vec<&str> = chat.tools.iter().flatten().map(Tool::name).collect();
    let Some(obj) = body.as_object_mut() else {
        return 0;
    };
    let removed = retain_tools(obj, &kept);
    if obj
        .get("tools")
        .and_then(Value::as_array)
        .is_some_and(Vec::is_empty)
    {
        obj.remove("tools");
    }
    removed
}

/// Keeps in `obj`'s `tools` (Responses-shaped, as a native body or a realtime session
/// offers them) only those named in `kept` ([`tool_view_name`]); once some went, a
/// `tool_choice` naming a removed one goes too (an `allowed_tools` choice loses them,
/// and goes when none is left). An emptied list stays, empty. Returns how many went.
pub fn retain_tools(obj: &mut Map<String, Value>, kept: &[&str]) -> usize {
    let offered = |t: &Value| tool_view_name(t).is_none_or(|n| kept.contains(&n.as_str()));
    let Some(Value::Array(tools)) = obj.get_mut("tools") else {
        return 0;
    };
    let before = tools.len();
    tools.retain(offered);
    let removed = before - tools.len();
    if removed == 0 {
        return 0;
    }
    let drop_choice = tools.is_empty()
        || match obj.get_mut("tool_choice") {
            Some(c) if c.get("type").and_then(Value::as_str) == Some("allowed_tools") => {
                match c.get_mut("tools") {
                    Some(Value::Array(list)) => {
                        list.retain(offered);
                        list.is_empty()
                    }
                    _ => false,
                }
            }
            Some(c @ Value::Object(_)) => !offered(c),
            _ => false,
        };
    if drop_choice {
        obj.remove("tool_choice");
    }
    removed
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::responses::write_back;

    fn fixture(name: &str) -> Value {
        let path = format!("{}/testdata/responses/{name}", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    fn request(v: &Value) -> ResponsesRequest {
        serde_json::from_value(v.clone()).unwrap()
    }

    #[test]
    fn fixture_request_items_translate_to_chat() {
        let t = to_chat(&request(&fixture("request_items.json")), Strictness::Strict).unwrap();
        assert_eq!(
            serde_json::to_value(&t.chat).unwrap(),
            fixture("request_items.chat.json")
        );
    }

    #[test]
    fn every_text_has_an_origin_and_redactions_write_back() {
        let body = fixture("request_items.json");
        let mut t = to_chat(&request(&body), Strictness::Strict).unwrap();
        let pointers: Vec<&str> = t.origins.iter().map(|o| o.pointer.as_str()).collect();
        assert_eq!(
            pointers,
            [
                "/instructions",
                "/input/0/content/0/text",
                "/input/1/arguments",
                "/input/2/arguments",
                "/input/3/output",
                "/input/4/output",
                "/input/5/content/0/text",
                "/input/6/content",
            ]
        );
        for o in &t.origins {
            assert_eq!(
                body.pointer(&o.pointer).and_then(Value::as_str),
                Some(o.original.as_str())
            );
        }
        // A policy rewrites every text; each lands where it came from.
        for m in &mut t.chat.messages {
            if let Some(c) = &mut m.content {
                for s in c.texts_mut() {
                    *s = format!("<{s}>");
                }
            }
            for call in m.tool_calls.iter_mut().flatten() {
                call.function.arguments = "{\"x\":1}".to_string();
            }
        }
        let mut out = body.clone();
        assert_eq!(write_back(&mut out, &t.chat.messages, &t.origins), 8);
        assert_eq!(out["instructions"], "<Be terse.>");
        assert_eq!(out["input"][0]["content"][0]["text"], "<Weather in Paris?>");
        assert_eq!(
            out["input"][0]["content"][1],
            body["input"][0]["content"][1]
        );
        assert_eq!(out["input"][1]["arguments"], "{\"x\":1}");
        assert_eq!(out["input"][4]["output"], "<noon>");
        assert_eq!(out["input"][6]["content"], "<thanks>");
        assert_eq!(out["text"], body["text"]);
    }

    #[test]
    fn tools_the_policies_removed_leave_the_native_body() {
        let body = json!({"model": "m", "input": "hi", "tools": [
            {"type": "function", "name": "shell", "parameters": {}},
            {"type": "custom", "name": "notes"},
            {"type": "web_search"},
            {"type": "mcp", "server_label": "internal", "server_url": "https://x"}],
            "tool_choice": {"type": "allowed_tools", "mode": "auto", "tools": [
                {"type": "function", "name": "shell"}, {"type": "web_search"}]}});
        let t = to_chat(&request(&body), Strictness::Lenient).unwrap();
        let names: Vec<&str> = t.chat.tools.iter().flatten().map(Tool::name).collect();
        assert_eq!(names, ["shell", "notes", "web_search", "mcp:internal"]);

        // Nothing removed: the body stays as sent.
        let mut same = body.clone();
        assert_eq!(write_back_tools(&mut same, &t.chat), 0);
        assert_eq!(same, body);

        let mut chat = t.chat.clone();
        chat.tools
            .as_mut()
            .unwrap()
            .retain(|t| !["shell", "mcp:internal"].contains(&t.name()));
        let mut out = body.clone();
        assert_eq!(write_back_tools(&mut out, &chat), 2);
        assert_eq!(
            out["tools"],
            json!([{"type": "custom", "name": "notes"}, {"type": "web_search"}])
        );
        assert_eq!(
            out["tool_choice"],
            json!({"type": "allowed_tools", "mode": "auto", "tools": [{"type": "web_search"}]})
        );

        let mut forced = body.clone();
        forced["tool_choice"] = json!({"type": "function", "name": "shell"});
        write_back_tools(&mut forced, &chat);
        assert!(forced.get("tool_choice").is_none());
        chat.tools = None;
        let mut none = body.clone();
        assert_eq!(write_back_tools(&mut none, &chat), 4);
        assert!(none.get("tools").is_none() && none.get("tool_choice").is_none());
    }

    #[test]
    fn lenient_skips_what_chat_cannot_carry_and_strict_refuses_it() {
        let body = fixture("request_native.json");
        let req = request(&body);
        let e = to_chat(&req, Strictness::Strict).unwrap_err();
        assert_eq!((e.status, e.body.param.as_deref()), (400, Some("store")));
        let t = to_chat(&req, Strictness::Lenient).unwrap();
        let texts: Vec<String> = t.chat.messages.iter().map(Message::text_content).collect();
        assert_eq!(
            texts,
            [
                "Answer in French.",
                "what is on this file?",
                "and the date 2024-01-01"
            ]
        );
        // The built-in tool is in the view by name only, for the firewall.
        let names: Vec<&str> = t.chat.tools.iter().flatten().map(Tool::name).collect();
        assert_eq!(names, ["web_search", "lookup"]);
        assert!(!t.chat.tools.as_ref().unwrap()[0].is_function());
        assert_eq!(t.chat.stream, Some(true));
        assert_eq!(
            t.chat.stream_options.as_ref().and_then(|s| s.include_usage),
            Some(true)
        );
        for o in &t.origins {
            assert_eq!(
                body.pointer(&o.pointer).and_then(Value::as_str),
                Some(o.original.as_str())
            );
        }
    }

    #[test]
    fn string_input_is_one_user_message_and_stateful_fields_are_refused() {
        let req = request(&json!({"model": "m", "input": "hi"}));
        let t = to_chat(&req, Strictness::Strict).unwrap();
        assert_eq!(t.chat.messages, vec![Message::text(Role::User, "hi")]);
        assert!(t.chat.tools.is_none() && t.chat.response_format.is_none());
        assert!(t.chat.stream.is_none());
        for (field, value) in [
            ("store", json!(true)),
            ("previous_response_id", json!("resp_0")),
            ("conversation", json!("conv_1")),
        ] {
            let mut body = json!({"model": "m", "input": "hi"});
            body[field] = value;
            let e = to_chat(&request(&body), Strictness::Strict).unwrap_err();
            assert_eq!((e.status, e.body.param.as_deref()), (400, Some(field)));
            assert!(to_chat(&request(&body), Strictness::Lenient).is_ok());
        }
        let bad =
            request(&json!({"model": "m", "input": [{"type": "web_search_call", "id": "x"}]}));
        assert_eq!(
            to_chat(&bad, Strictness::Strict)
                .unwrap_err()
                .body
                .param
                .as_deref(),
            Some("input[0]")
        );
        let tool =
            request(&json!({"model": "m", "input": "hi", "tools": [{"type": "web_search"}]}));
        assert_eq!(
            to_chat(&tool, Strictness::Strict)
                .unwrap_err()
                .body
                .param
                .as_deref(),
            Some("tools")
        );
        let missing = request(&json!({"model": "m"}));
        assert_eq!(
            to_chat(&missing, Strictness::Lenient)
                .unwrap_err()
                .body
                .param
                .as_deref(),
            Some("input")
        );
    }
}
