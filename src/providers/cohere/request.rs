//! OpenAI chat request → Cohere v2 `/chat` request body.
//!
//! Cohere's message shapes are close to OpenAI's; the differences handled here: `top_p` is
//! `p` (0.01–0.99), penalties are 0–1, `tool_choice` is only `REQUIRED`/`NONE` (a named
//! choice becomes `REQUIRED` with only that tool offered), text before tool calls is the
//! assistant's `tool_plan`, and JSON mode is `{"type":"json_object","json_schema":…}`.
//! Dropped: `n`, `user`, `logprobs`, `logit_bias`, `parallel_tool_calls` and anything else
//! Cohere has no field for.

use serde_json::{json, Map, Value};

use crate::openai::{ApiError, ChatRequest, Content, Message, Role, Tool};

/// Cohere accepts at most this many stop sequences.
const MAX_STOP_SEQUENCES: usize = 5;

/// Builds the v2 chat body for `req` (whose `model` is already the target's).
///
/// # Errors
/// 400 for content or parameters that cannot be translated.
pub fn to_cohere(req: &ChatRequest) -> Result<Value, ApiError> {
    let mut body = Map::new();
    body.insert("model".into(), Value::String(req.model.clone()));
    body.insert(
        "messages".into(),
        Value::Array(convert_messages(&req.messages)?),
    );
    body.insert("stream".into(), Value::Bool(req.is_stream()));
    if let Some(n) = req.max_output_tokens() {
        body.insert("max_tokens".into(), Value::from(n));
    }
    if let Some(stop) = &req.stop {
        let stops: Vec<Value> = stop
            .to_vec()
            .into_iter()
            .filter(|s| !s.is_empty())
            .take(MAX_STOP_SEQUENCES)
            .map(Value::String)
            .collect();
        if !stops.is_empty() {
            body.insert("stop_sequences".into(), Value::Array(stops));
        }
    }
    if let Some(t) = req.temperature {
        body.insert("temperature".into(), Value::from(t.max(0.0)));
    }
    if let Some(p) = req.top_p {
        body.insert("p".into(), Value::from(p.clamp(0.01, 0.99)));
    }
    if let Some(seed) = req.extra.get("seed").filter(|s| s.is_i64() || s.is_u64()) {
        body.insert("seed".into(), seed.clone());
    }
    for name in ["frequency_penalty", "presence_penalty"] {
        // OpenAI allows -2–2; Cohere 0–1.
        if let Some(v) = req.extra.get(name).and_then(Value::as_f64) {
            body.insert(name.into(), Value::from(v.clamp(0.0, 1.0)));
        }
    }
    add_tools(req, &mut body)?;
    if let Some(format) = response_format(req.response_format.as_ref())? {
        body.insert("response_format".into(), format);
    }
    Ok(Value::Object(body))
}

fn add_tools(req: &ChatRequest, body: &mut Map<String, Value>) -> Result<(), ApiError> {
    let tools: Vec<&Tool> = req
        .tools
        .as_deref()
        .unwrap_or_default()
        .iter()
        .filter(|t| t.kind == "function")
        .collect();
    if tools.is_empty() {
        return Ok(());
    }
    let bad = |c: &Value| {
        ApiError::bad_request(format!("invalid `tool_choice`: {c}")).with_param("tool_choice")
    };
    let (choice, only): (Option<&str>, Option<&str>) = match &req.tool_choice {
        None | Some(Value::Null) => (None, None),
        Some(Value::String(s)) => match s.as_str() {
            "auto" => (None, None),
            "required" => (Some("REQUIRED"), None),
            "none" => (Some("NONE"), None),
            _ => return Err(bad(&Value::String(s.clone()))),
        },
        Some(c @ Value::Object(o)) => match o.get("type").and_then(Value::as_str) {
            Some("function") => {
                let name = c
                    .pointer("/function/name")
                    .and_then(Value::as_str)
                    .ok_or_else(|| bad(c))?;
                (Some("REQUIRED"), Some(name))
            }
            Some("allowed_tools") => {
                let required =
                    c.pointer("/allowed_tools/mode").and_then(Value::as_str) == Some("required");
                (required.then_some("REQUIRED"), None)
            }
            _ => return Err(bad(c)),
        },
        Some(c) => return Err(bad(c)),
    };
    let offered: Vec<&Tool> = match only {
        // Cohere cannot name a tool: offer only that one and require a call.
        Some(name) => tools
            .into_iter()
            .filter(|t| t.function.name == name)
            .collect(),
        None => tools,
    };
    if offered.is_empty() {
        return Err(ApiError::bad_request(format!(
            "`tool_choice` names the tool `{}`, which is not in `tools`",
            only.unwrap_or_default()
        ))
        .with_param("tool_choice"));
    }
    if offered.iter().any(|t| t.function.strict == Some(true)) {
        body.insert("strict_tools".into(), Value::Bool(true));
    }
    let tools: Vec<Value> = offered.into_iter().map(convert_tool).collect();
    body.insert("tools".into(), Value::Array(tools));
    if let Some(c) = choice {
        body.insert("tool_choice".into(), Value::String(c.to_string()));
    }
    Ok(())
}

fn convert_tool(t: &Tool) -> Value {
    let mut f = Map::new();
    f.insert("name".into(), Value::String(t.function.name.clone()));
    if let Some(d) = t.function.description.as_ref().filter(|d| !d.is_empty()) {
        f.insert("description".into(), Value::String(d.clone()));
    }
    let params = t
        .function
        .parameters
        .clone()
        .filter(Value::is_object)
        .unwrap_or_else(|| json!({"type": "object", "properties": {}}));
    f.insert("parameters".into(), params);
    json!({"type": "function", "function": f})
}

fn response_format(format: Option<&Value>) -> Result<Option<Value>, ApiError> {
    let Some(f) = format.filter(|f| !f.is_null()) else {
        return Ok(None);
    };
    match f.get("type").and_then(Value::as_str) {
        Some("text") => Ok(None),
        Some("json_object") => Ok(Some(json!({"type": "json_object"}))),
        Some("json_schema") => Ok(Some(match f.pointer("/json_schema/schema") {
            Some(schema) => json!({"type": "json_object", "json_schema": schema}),
            None => json!({"type": "json_object"}),
        })),
        _ => Err(ApiError::bad_request(
            "invalid `response_format`: `type` must be `text`, `json_object` or `json_schema`",
        )
        .with_param("response_format")),
    }
}

fn convert_messages(messages: &[Message]) -> Result<Vec<Value>, ApiError> {
    let mut out = Vec::with_capacity(messages.len());
    for (i, m) in messages.iter().enumerate() {
        let msg = match m.role {
            Role::System | Role::Developer => {
                let text = m.text_content();
                if text.is_empty() {
                    continue;
                }
                json!({"role": "system", "content": text})
            }
            Role::User => json!({"role": "user", "content": user_content(m, i)?}),
            Role::Assistant => match assistant(m) {
                Some(v) => v,
                None => continue,
            },
            Role::Tool => {
                let id = m.tool_call_id.as_deref().filter(|s| !s.is_empty()).ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "messages[{i}]: a `tool` message needs `tool_call_id`"
                    ))
                    .with_param("messages")
                })?;
                json!({"role": "tool", "tool_call_id": id, "content": m.text_content()})
            }
            Role::Function => {
                return Err(ApiError::bad_request(format!(
                    "messages[{i}]: the legacy `function` role cannot be sent to Cohere; use `tool` messages"
                ))
                .with_param("messages"))
            }
        };
        out.push(msg);
    }
    Ok(out)
}

fn user_content(m: &Message, i: usize) -> Result<Value, ApiError> {
    let parts = match &m.content {
        None => return Ok(Value::String(String::new())),
        Some(Content::Text(s)) => return Ok(Value::String(s.clone())),
        Some(Content::Parts(parts)) => parts,
    };
    let mut out = Vec::with_capacity(parts.len());
    for (j, p) in parts.iter().enumerate() {
        match p.kind.as_str() {
            "text" => out.push(json!({"type": "text", "text": p.text.as_deref().unwrap_or("")})),
            "image_url" => {
                // Cohere's vision models take OpenAI's image part as it is (URL or data URL).
                let mut image = Map::new();
                let url = p.image_url.as_ref().map(|u| u.url.clone()).unwrap_or_default();
                image.insert("url".into(), Value::String(url));
                if let Some(d) = p.image_url.as_ref().and_then(|u| u.detail.clone()) {
                    image.insert("detail".into(), Value::String(d));
                }
                out.push(json!({"type": "image_url", "image_url": image}));
            }
            other => {
                return Err(ApiError::bad_request(format!(
                    "messages[{i}].content[{j}]: content parts of type `{other}` cannot be sent to Cohere"
                ))
                .with_param("messages"))
            }
        }
    }
    Ok(Value::Array(out))
}

/// An assistant turn; `None` when it says nothing (Cohere rejects empty turns).
fn assistant(m: &Message) -> Option<Value> {
    let text = m.text_content();
    let calls = m.tool_calls.as_deref().unwrap_or_default();
    if calls.is_empty() {
        return (!text.is_empty()).then(|| json!({"role": "assistant", "content": text}));
    }
    let calls: Vec<Value> = calls
        .iter()
        .map(|c| {
            let args = if c.function.arguments.trim().is_empty() {
                "{}"
            } else {
                c.function.arguments.as_str()
            };
            json!({"id": c.id, "type": "function", "function": {"name": c.function.name, "arguments": args}})
        })
        .collect();
    let mut v = json!({"role": "assistant", "tool_calls": calls});
    if !text.is_empty() {
        v["tool_plan"] = Value::String(text);
    }
    Some(v)
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
            "../../../testdata/providers/cohere/request.openai.json"
        ))
        .unwrap();
        let want: Value = serde_json::from_str(include_str!(
            "../../../testdata/providers/cohere/request.cohere.json"
        ))
        .unwrap();
        assert_eq!(to_cohere(&input).unwrap(), want);
    }

    #[test]
    fn named_tool_choice_offers_only_that_tool() {
        let b = to_cohere(&req(json!({
            "model": "m", "messages": [{"role": "user", "content": "x"}],
            "tools": [{"type": "function", "function": {"name": "a"}}, {"type": "function", "function": {"name": "b"}}],
            "tool_choice": {"type": "function", "function": {"name": "b"}}
        })))
        .unwrap();
        assert_eq!(b["tool_choice"], "REQUIRED");
        assert_eq!(b["tools"].as_array().unwrap().len(), 1);
        assert_eq!(b["tools"][0]["function"]["name"], "b");
        assert_eq!(
            b["tools"][0]["function"]["parameters"],
            json!({"type": "object", "properties": {}})
        );
        let e = to_cohere(&req(json!({
            "model": "m", "messages": [{"role": "user", "content": "x"}],
            "tools": [{"type": "function", "function": {"name": "a"}}],
            "tool_choice": {"type": "function", "function": {"name": "zzz"}}
        })))
        .unwrap_err();
        assert_eq!(e.status, 400);
        let b = to_cohere(&req(json!({
            "model": "m", "messages": [{"role": "user", "content": "x"}],
            "tools": [{"type": "function", "function": {"name": "a"}}], "tool_choice": "auto"
        })))
        .unwrap();
        assert!(b.get("tool_choice").is_none());
        let b = to_cohere(&req(json!({
            "model": "m", "messages": [{"role": "user", "content": "x"}],
            "tools": [{"type": "function", "function": {"name": "a"}}], "tool_choice": "none"
        })))
        .unwrap();
        assert_eq!(b["tool_choice"], "NONE");
    }

    #[test]
    fn sampling_is_clamped_and_json_mode_mapped() {
        let b = to_cohere(&req(json!({
            "model": "m", "messages": [{"role": "user", "content": "x"}],
            "top_p": 1.0, "frequency_penalty": 1.5, "presence_penalty": -1.0,
            "response_format": {"type": "json_object"}, "n": 1, "user": "u", "logprobs": true
        })))
        .unwrap();
        assert_eq!(b["p"], 0.99);
        assert_eq!(b["frequency_penalty"], 1.0);
        assert_eq!(b["presence_penalty"], 0.0);
        assert_eq!(b["response_format"], json!({"type": "json_object"}));
        assert_eq!(b["stream"], false);
        for dropped in ["n", "user", "logprobs", "top_p", "max_tokens"] {
            assert!(b.get(dropped).is_none(), "{dropped}");
        }
        let e = to_cohere(&req(json!({
            "model": "m", "messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}]
        })))
        .unwrap_err();
        assert!(e.body.message.contains("messages[0].content[0]"));
    }
}
