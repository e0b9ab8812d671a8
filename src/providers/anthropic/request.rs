//! OpenAI chat request → Anthropic Messages request body.
//!
//! What cannot be expressed is dropped (`n`, `seed`, `logprobs`, penalties, `logit_bias`,
//! …); what Anthropic would reject is repaired (whitespace-only stop sequences, both
//! `temperature` and `top_p`, temperature above 1, empty text blocks). Content kt cannot
//! translate faithfully (audio, non-PDF files, unsupported image types) is a 400 naming
//! the part, never silently lost.

use serde_json::{json, Map, Value};

use super::JSON_TOOL;
use crate::openai::{ApiError, ChatRequest, Content, ContentPart, Message, Role, Tool};
use crate::providers::common::{parse_arguments, parse_data_url};

/// Image media types the Messages API accepts.
const IMAGE_TYPES: &[&str] = &["image/jpeg", "image/png", "image/gif", "image/webp"];

/// `max_tokens` is required by Anthropic; this is sent when the client set no limit.
/// Every Claude 3 model accepts 4096, Claude 3.5 8192, Claude 3.7 and 4.x at least 32000.
pub fn default_max_tokens(model: &str) -> u64 {
    let m = model.to_ascii_lowercase();
    if m.contains("claude-3-5") || m.contains("claude-3.5") {
        8192
    } else if m.contains("claude-3-7")
        || m.contains("claude-3.7")
        || m.contains("-4-")
        || m.contains("-4.")
        || m.ends_with("-4")
        || m.contains("claude-4")
    {
        32000
    } else {
        4096
    }
}

/// Builds the Messages API body for `req` (whose `model` is already the target's).
///
/// # Errors
/// 400 for content or parameters that cannot be translated (see the module header).
pub fn to_anthropic(req: &ChatRequest) -> Result<Value, ApiError> {
    let mut body = Map::new();
    body.insert("model".into(), Value::String(req.model.clone()));
    let (system, messages) = convert_messages(&req.messages)?;
    body.insert(
        "max_tokens".into(),
        Value::from(
            req.max_output_tokens()
                .unwrap_or_else(|| default_max_tokens(&req.model)),
        ),
    );
    if !system.is_empty() {
        body.insert("system".into(), Value::Array(system));
    }
    body.insert("messages".into(), Value::Array(messages));
    if let Some(t) = req.temperature {
        // OpenAI's range is 0–2, Anthropic's 0–1.
        body.insert("temperature".into(), Value::from(t.clamp(0.0, 1.0)));
    } else if let Some(p) = req.top_p {
        // Recent Claude models reject requests that set both.
        body.insert("top_p".into(), Value::from(p));
    }
    if let Some(k) = req.extra.get("top_k").filter(|v| v.is_u64()) {
        body.insert("top_k".into(), k.clone());
    }
    if let Some(stop) = &req.stop {
        // Anthropic rejects whitespace-only stop sequences ("\n" is a common OpenAI one).
        let stops: Vec<Value> = stop
            .to_vec()
            .into_iter()
            .filter(|s| !s.trim().is_empty())
            .map(Value::String)
            .collect();
        if !stops.is_empty() {
            body.insert("stop_sequences".into(), Value::Array(stops));
        }
    }
    if let Some(user) = req.extra.get("user").and_then(Value::as_str) {
        // Anthropic asks for an opaque id and refuses identifying data such as emails.
        if !user.is_empty() && !user.contains('@') {
            body.insert("metadata".into(), json!({ "user_id": user }));
        }
    }
    add_tools(req, &mut body)?;
    if req.is_stream() {
        body.insert("stream".into(), Value::Bool(true));
    }
    Ok(Value::Object(body))
}

/// `tools`, `tool_choice`, `parallel_tool_calls` and JSON mode (a forced synthetic tool whose
/// input is the answer: the approach Anthropic documents for JSON output on every model).
fn add_tools(req: &ChatRequest, body: &mut Map<String, Value>) -> Result<(), ApiError> {
    let mut tools: Vec<Value> = req
        .tools
        .as_deref()
        .unwrap_or_default()
        .iter()
        .filter(|t| t.kind == "function")
        .map(convert_tool)
        .collect();
    let parallel = req
        .extra
        .get("parallel_tool_calls")
        .and_then(Value::as_bool);
    let mut choice = match &req.tool_choice {
        None | Some(Value::Null) => None,
        Some(c) => Some(convert_tool_choice(c)?),
    };
    if let Some(schema) = json_mode_schema(req.response_format.as_ref())? {
        if forces_json_tool(req) {
            tools = Vec::new();
            choice = Some(json!({"type": "tool", "name": JSON_TOOL}));
        }
        tools.push(json!({
            "name": JSON_TOOL,
            "description": "Give the final answer by calling this tool exactly once; its input is the answer, a JSON value matching the schema.",
            "input_schema": schema,
        }));
    }
    if tools.is_empty() {
        return Ok(());
    }
    if parallel == Some(false) {
        let c = choice.get_or_insert_with(|| json!({"type": "auto"}));
        if c["type"] != "none" {
            c["disable_parallel_tool_use"] = Value::Bool(true);
        }
    }
    body.insert("tools".into(), Value::Array(tools));
    if let Some(c) = choice {
        body.insert("tool_choice".into(), c);
    }
    Ok(())
}

/// Whether JSON mode forces the synthetic tool: JSON was asked for and the client offered
/// no tools of its own (or forbade them). Then the tool's input is the whole answer.
pub fn forces_json_tool(req: &ChatRequest) -> bool {
    let json_mode = matches!(json_mode_schema(req.response_format.as_ref()), Ok(Some(_)));
    let own_tools = req
        .tools
        .as_deref()
        .unwrap_or_default()
        .iter()
        .any(|t| t.kind == "function");
    let none = req.tool_choice.as_ref().and_then(Value::as_str) == Some("none");
    json_mode && (!own_tools || none)
}

fn convert_tool(t: &Tool) -> Value {
    let mut out = Map::new();
    out.insert("name".into(), Value::String(t.function.name.clone()));
    if let Some(d) = t.function.description.as_ref().filter(|d| !d.is_empty()) {
        out.insert("description".into(), Value::String(d.clone()));
    }
    let schema = t
        .function
        .parameters
        .clone()
        .filter(Value::is_object)
        .unwrap_or_else(|| json!({"type": "object", "properties": {}}));
    out.insert("input_schema".into(), schema);
    if let Some(cc) = t.extra.get("cache_control") {
        out.insert("cache_control".into(), cc.clone());
    }
    Value::Object(out)
}

fn convert_tool_choice(c: &Value) -> Result<Value, ApiError> {
    let bad =
        || ApiError::bad_request(format!("invalid `tool_choice`: {c}")).with_param("tool_choice");
    match c {
        Value::String(s) => match s.as_str() {
            "auto" => Ok(json!({"type": "auto"})),
            "required" => Ok(json!({"type": "any"})),
            "none" => Ok(json!({"type": "none"})),
            _ => Err(bad()),
        },
        Value::Object(o) => match o.get("type").and_then(Value::as_str) {
            Some("function") => {
                let name = c
                    .pointer("/function/name")
                    .and_then(Value::as_str)
                    .ok_or_else(bad)?;
                Ok(json!({"type": "tool", "name": name}))
            }
            Some("allowed_tools") => {
                let required =
                    c.pointer("/allowed_tools/mode").and_then(Value::as_str) == Some("required");
                Ok(json!({"type": if required { "any" } else { "auto" }}))
            }
            _ => Err(bad()),
        },
        _ => Err(bad()),
    }
}

/// The schema of the answer when `response_format` asks for JSON.
fn json_mode_schema(format: Option<&Value>) -> Result<Option<Value>, ApiError> {
    let Some(f) = format.filter(|f| !f.is_null()) else {
        return Ok(None);
    };
    let bad = |why: &str| {
        ApiError::bad_request(format!("invalid `response_format`: {why}"))
            .with_param("response_format")
    };
    match f.get("type").and_then(Value::as_str) {
        Some("text") => Ok(None),
        Some("json_object") => Ok(Some(json!({"type": "object"}))),
        Some("json_schema") => {
            let schema = f
                .pointer("/json_schema/schema")
                .cloned()
                .unwrap_or_else(|| json!({"type": "object"}));
            match schema.get("type") {
                None => Ok(Some(schema)),
                Some(t) if t == "object" => Ok(Some(schema)),
                Some(_) => Err(bad("the root of `json_schema.schema` must be an object")),
            }
        }
        _ => Err(bad("`type` must be `text`, `json_object` or `json_schema`")),
    }
}

/// One Anthropic turn being assembled.
struct Turn {
    role: &'static str,
    blocks: Vec<Value>,
}

/// Splits the conversation into the top-level `system` blocks and alternating turns.
fn convert_messages(messages: &[Message]) -> Result<(Vec<Value>, Vec<Value>), ApiError> {
    let mut system = Vec::new();
    let mut turns: Vec<Turn> = Vec::new();
    for (i, m) in messages.iter().enumerate() {
        let (role, mut blocks) = match m.role {
            Role::System | Role::Developer => {
                let mut blocks = text_blocks(m.content.as_ref());
                apply_message_cache_control(m, &mut blocks);
                system.extend(blocks);
                continue;
            }
            Role::User => ("user", user_blocks(m, i)?),
            Role::Assistant => ("assistant", assistant_blocks(m)?),
            Role::Tool => ("user", vec![tool_result(m, i)?]),
            Role::Function => {
                return Err(ApiError::bad_request(format!(
                    "messages[{i}]: the legacy `function` role cannot be sent to Anthropic; use `tool` messages"
                ))
                .with_param("messages"))
            }
        };
        apply_message_cache_control(m, &mut blocks);
        if blocks.is_empty() {
            continue;
        }
        match turns.last_mut() {
            Some(last) if last.role == role => last.blocks.append(&mut blocks),
            _ => turns.push(Turn { role, blocks }),
        }
    }
    let out = turns
        .into_iter()
        .map(|mut t| {
            // A user turn that answers tool calls must start with its tool results.
            t.blocks
                .sort_by_key(|b| b.get("type").and_then(Value::as_str) != Some("tool_result"));
            json!({"role": t.role, "content": t.blocks})
        })
        .collect();
    Ok((system, out))
}

/// A message-level `cache_control` (an extension some SDK users send) marks its last block.
fn apply_message_cache_control(m: &Message, blocks: &mut [Value]) {
    if let (Some(cc), Some(last)) = (m.extra.get("cache_control"), blocks.last_mut()) {
        last["cache_control"] = cc.clone();
    }
}

fn text_block(text: &str, part: Option<&ContentPart>) -> Option<Value> {
    if text.is_empty() {
        // Anthropic rejects empty text blocks.
        return None;
    }
    let mut b = json!({"type": "text", "text": text});
    if let Some(cc) = part.and_then(|p| p.extra.get("cache_control")) {
        b["cache_control"] = cc.clone();
    }
    Some(b)
}

/// The text of a message as text blocks (non-text parts are ignored).
fn text_blocks(content: Option<&Content>) -> Vec<Value> {
    match content {
        None => Vec::new(),
        Some(Content::Text(s)) => text_block(s, None).into_iter().collect(),
        Some(Content::Parts(parts)) => parts
            .iter()
            .filter_map(|p| text_block(p.text.as_deref().unwrap_or_default(), Some(p)))
            .collect(),
    }
}

fn user_blocks(m: &Message, i: usize) -> Result<Vec<Value>, ApiError> {
    let parts = match &m.content {
        None => return Ok(Vec::new()),
        Some(Content::Text(s)) => return Ok(text_block(s, None).into_iter().collect()),
        Some(Content::Parts(parts)) => parts,
    };
    let mut out = Vec::with_capacity(parts.len());
    for (j, p) in parts.iter().enumerate() {
        let block = match p.kind.as_str() {
            "text" => text_block(p.text.as_deref().unwrap_or_default(), Some(p)),
            "image_url" => {
                let url = p.image_url.as_ref().map(|u| u.url.as_str()).unwrap_or("");
                Some(image_block(url, i, j)?)
            }
            "file" => Some(document_block(p, i, j)?),
            other => return Err(unsupported_part(other, i, j)),
        };
        if let Some(mut b) = block {
            if let (Some(cc), false) = (
                p.extra.get("cache_control"),
                b.get("cache_control").is_some(),
            ) {
                b["cache_control"] = cc.clone();
            }
            out.push(b);
        }
    }
    Ok(out)
}

fn unsupported_part(kind: &str, i: usize, j: usize) -> ApiError {
    ApiError::bad_request(format!(
        "messages[{i}].content[{j}]: content parts of type `{kind}` cannot be sent to Anthropic"
    ))
    .with_param("messages")
}

fn image_block(url: &str, i: usize, j: usize) -> Result<Value, ApiError> {
    match parse_data_url(url) {
        Some(Ok(d)) => {
            if !IMAGE_TYPES.contains(&d.media_type) {
                return Err(ApiError::bad_request(format!(
                    "messages[{i}].content[{j}]: image type `{}` is not supported by Anthropic (use jpeg, png, gif or webp)",
                    d.media_type
                ))
                .with_param("messages"));
            }
            Ok(
                json!({"type": "image", "source": {"type": "base64", "media_type": d.media_type, "data": d.data}}),
            )
        }
        Some(Err(e)) => Err(e.with_param("messages")),
        None if url.starts_with("https://") || url.starts_with("http://") => {
            Ok(json!({"type": "image", "source": {"type": "url", "url": url}}))
        }
        None => Err(ApiError::bad_request(format!(
            "messages[{i}].content[{j}]: an image URL must be `http(s)://…` or a base64 `data:` URL"
        ))
        .with_param("messages")),
    }
}

/// `{"type":"file","file":{"file_data":"data:application/pdf;base64,…"}}` → a PDF document.
fn document_block(p: &ContentPart, i: usize, j: usize) -> Result<Value, ApiError> {
    let data = p
        .extra
        .get("file")
        .and_then(|f| f.get("file_data"))
        .and_then(Value::as_str)
        .and_then(parse_data_url);
    match data {
        Some(Ok(d)) if d.media_type == "application/pdf" => Ok(json!({
            "type": "document",
            "source": {"type": "base64", "media_type": "application/pdf", "data": d.data}
        })),
        Some(Err(e)) => Err(e.with_param("messages")),
        _ => Err(ApiError::bad_request(format!(
            "messages[{i}].content[{j}]: only PDF files sent inline as `file_data` can be sent to Anthropic"
        ))
        .with_param("messages")),
    }
}

fn assistant_blocks(m: &Message) -> Result<Vec<Value>, ApiError> {
    let mut blocks = text_blocks(m.content.as_ref());
    for call in m.tool_calls.as_deref().unwrap_or_default() {
        let input = parse_arguments(&call.function.name, &call.function.arguments)?;
        blocks.push(json!({
            "type": "tool_use",
            "id": call.id,
            "name": call.function.name,
            "input": input,
        }));
    }
    Ok(blocks)
}

fn tool_result(m: &Message, i: usize) -> Result<Value, ApiError> {
    let id = m
        .tool_call_id
        .as_deref()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "messages[{i}]: a `tool` message needs `tool_call_id`"
            ))
            .with_param("messages")
        })?;
    let mut b = json!({"type": "tool_result", "tool_use_id": id});
    let text = m.text_content();
    if !text.is_empty() {
        b["content"] = Value::String(text);
    }
    Ok(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(v: Value) -> ChatRequest {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn fixture_request_translates() {
        let input: ChatRequest = serde_json::from_str(include_str!(
            "../../../testdata/providers/anthropic/request.openai.json"
        ))
        .unwrap();
        let want: Value = serde_json::from_str(include_str!(
            "../../../testdata/providers/anthropic/request.anthropic.json"
        ))
        .unwrap();
        assert_eq!(to_anthropic(&input).unwrap(), want);
    }

    #[test]
    fn defaults_and_repairs() {
        let b = to_anthropic(&req(json!({
            "model": "claude-3-5-haiku-latest",
            "messages": [{"role": "user", "content": "hi"}],
            "temperature": 1.7, "top_p": 0.5, "stop": "\n", "n": 1, "seed": 3,
            "user": "someone@example.com", "logprobs": true
        })))
        .unwrap();
        assert_eq!(b["max_tokens"], 8192);
        assert_eq!(b["temperature"], 1.0);
        assert!(b.get("top_p").is_none());
        assert!(b.get("stop_sequences").is_none());
        assert!(b.get("metadata").is_none());
        for dropped in ["n", "seed", "logprobs", "user", "stream"] {
            assert!(b.get(dropped).is_none(), "{dropped}");
        }
        assert_eq!(default_max_tokens("claude-sonnet-4-5"), 32000);
        assert_eq!(default_max_tokens("claude-3-haiku-20240307"), 4096);
        assert_eq!(default_max_tokens("claude-opus-4-1-20250805"), 32000);
    }

    #[test]
    fn tool_choice_forms() {
        let base = |choice: Value| {
            to_anthropic(&req(json!({
                "model": "m", "messages": [{"role": "user", "content": "x"}],
                "tools": [{"type": "function", "function": {"name": "f"}}],
                "tool_choice": choice, "parallel_tool_calls": false
            })))
            .unwrap()
        };
        assert_eq!(
            base(json!("auto"))["tool_choice"],
            json!({"type": "auto", "disable_parallel_tool_use": true})
        );
        assert_eq!(base(json!("required"))["tool_choice"]["type"], "any");
        assert_eq!(base(json!("none"))["tool_choice"], json!({"type": "none"}));
        assert_eq!(
            base(json!({"type": "function", "function": {"name": "f"}}))["tool_choice"],
            json!({"type": "tool", "name": "f", "disable_parallel_tool_use": true})
        );
        assert_eq!(
            base(json!("auto"))["tools"][0]["input_schema"],
            json!({"type": "object", "properties": {}})
        );
        let e = to_anthropic(&req(json!({
            "model": "m", "messages": [{"role": "user", "content": "x"}],
            "tools": [{"type": "function", "function": {"name": "f"}}], "tool_choice": "sometimes"
        })))
        .unwrap_err();
        assert_eq!(
            (e.status, e.body.param.as_deref()),
            (400, Some("tool_choice"))
        );
        // A tool_choice without tools is dropped.
        let b = to_anthropic(&req(json!({
            "model": "m", "messages": [{"role": "user", "content": "x"}], "tool_choice": "auto"
        })))
        .unwrap();
        assert!(b.get("tool_choice").is_none() && b.get("tools").is_none());
    }

    #[test]
    fn json_mode_forces_the_synthetic_tool() {
        let b = to_anthropic(&req(json!({
            "model": "m", "messages": [{"role": "user", "content": "x"}],
            "response_format": {"type": "json_schema", "json_schema": {"name": "a", "schema": {"type": "object", "properties": {"t": {"type": "string"}}}}}
        })))
        .unwrap();
        assert_eq!(b["tool_choice"], json!({"type": "tool", "name": JSON_TOOL}));
        assert_eq!(b["tools"][0]["name"], JSON_TOOL);
        assert_eq!(
            b["tools"][0]["input_schema"]["properties"]["t"]["type"],
            "string"
        );
        // With the client's own tools, the JSON tool joins them and the choice is kept.
        let b = to_anthropic(&req(json!({
            "model": "m", "messages": [{"role": "user", "content": "x"}],
            "tools": [{"type": "function", "function": {"name": "f"}}], "tool_choice": "auto",
            "response_format": {"type": "json_object"}
        })))
        .unwrap();
        assert_eq!(b["tools"].as_array().unwrap().len(), 2);
        assert_eq!(b["tool_choice"]["type"], "auto");
        let e = to_anthropic(&req(json!({
            "model": "m", "messages": [{"role": "user", "content": "x"}],
            "response_format": {"type": "json_schema", "json_schema": {"name": "a", "schema": {"type": "array"}}}
        })))
        .unwrap_err();
        assert_eq!(e.status, 400);
    }

    #[test]
    fn unsupported_content_is_a_400_naming_the_part() {
        for part in [
            json!({"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}),
            json!({"type": "image_url", "image_url": {"url": "data:image/bmp;base64,AAAA"}}),
            json!({"type": "image_url", "image_url": {"url": "ftp://x/y.png"}}),
        ] {
            let e = to_anthropic(&req(json!({
                "model": "m", "messages": [{"role": "user", "content": [{"type": "text", "text": "x"}, part]}]
            })))
            .unwrap_err();
            assert_eq!(e.status, 400);
            assert!(
                e.body.message.contains("messages[0].content[1]"),
                "{}",
                e.body.message
            );
        }
        let e = to_anthropic(&req(json!({
            "model": "m", "messages": [{"role": "user", "content": "x"},
              {"role": "assistant", "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{bad"}}]}]
        })))
        .unwrap_err();
        assert_eq!(e.status, 400);
    }

    #[test]
    fn tool_results_lead_their_turn() {
        let b = to_anthropic(&req(json!({
            "model": "m", "messages": [
                {"role": "user", "content": "x"},
                {"role": "assistant", "content": "", "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": ""}}]},
                {"role": "user", "content": "also"},
                {"role": "tool", "tool_call_id": "c1", "content": "ok"}
            ]
        })))
        .unwrap();
        let turns = b["messages"].as_array().unwrap();
        assert_eq!(turns.len(), 3);
        assert_eq!(
            turns[1]["content"],
            json!([{"type": "tool_use", "id": "c1", "name": "f", "input": {}}])
        );
        assert_eq!(turns[2]["content"][0]["type"], "tool_result");
        assert_eq!(
            turns[2]["content"][1],
            json!({"type": "text", "text": "also"})
        );
    }
}
