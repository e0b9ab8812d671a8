//! OpenAI chat request → Gemini `GenerateContentRequest`.
//!
//! - `system` / `developer` → `systemInstruction` (or, when they are the only messages,
//!   the one user turn: Gemini rejects empty `contents`).
//! - roles: `assistant` → `model`; `tool` → a `user` turn of `functionResponse` parts whose
//!   name comes from the matching assistant tool call; consecutive same-role turns merge.
//! - images and files: data URLs → `inlineData`; other URLs (`https`, `gs://`, Files API)
//!   → `fileData` with the MIME type from the extension (else `image/jpeg`).
//! - `generationConfig`: `n` → `candidateCount`, max tokens → `maxOutputTokens`, `stop` →
//!   `stopSequences`, `temperature`, `top_p` → `topP`, `seed`, `presence_penalty`,
//!   `frequency_penalty`; `json_object` → `responseMimeType: application/json`;
//!   `json_schema` → that plus `responseJsonSchema` (standard JSON Schema).
//! - tools → `functionDeclarations` with `parametersJsonSchema`; `tool_choice` →
//!   `toolConfig.functionCallingConfig` (`AUTO`, `NONE`, `ANY`, `ANY` + one allowed name).
//! - dropped (no Gemini equivalent kt maps): `logprobs`, `top_logprobs`, `logit_bias`,
//!   `user`, `parallel_tool_calls`, `stream_options`.

use serde_json::{json, Map, Value};

use super::response::THOUGHT_SEPARATOR;
use crate::openai::{ApiError, ChatRequest, Message, Role};
use crate::providers::common::parse_arguments;
use crate::providers::native::{input_parts, system_texts, tool_call_name, InputPart, ToolChoice};

/// The MIME type sent for a URL whose extension says nothing (image parts are the usual
/// case).
const DEFAULT_URL_MIME: &str = "image/jpeg";

pub fn to_gemini(req: &ChatRequest) -> Result<Value, ApiError> {
    let mut turns: Vec<(&'static str, Vec<Value>)> = Vec::new();
    for m in &req.messages {
        let (role, parts) = match m.role {
            Role::System | Role::Developer => continue,
            Role::User => ("user", user_parts(m)?),
            Role::Assistant => ("model", model_parts(m)?),
            Role::Tool | Role::Function => ("user", vec![function_response(req, m)?]),
        };
        if parts.is_empty() {
            continue;
        }
        match turns.last_mut() {
            Some((last, existing)) if *last == role => existing.extend(parts),
            _ => turns.push((role, parts)),
        }
    }
    let system = system_texts(req);
    let mut body = Map::new();
    if turns.is_empty() && !system.is_empty() {
        // Only instructions: Gemini needs at least one content, so they become the prompt.
        turns.push(("user", vec![json!({ "text": system.join("\n\n") })]));
    } else if !system.is_empty() {
        let parts: Vec<Value> = system.iter().map(|t| json!({ "text": t })).collect();
        body.insert("systemInstruction".into(), json!({ "parts": parts }));
    }
    let contents: Vec<Value> = turns
        .into_iter()
        .map(|(role, parts)| json!({"role": role, "parts": parts}))
        .collect();
    // Field order as in Google's samples: contents first.
    let mut ordered = Map::new();
    ordered.insert("contents".into(), Value::Array(contents));
    ordered.extend(body);
    let mut body = ordered;

    if let Some(tools) = function_declarations(req) {
        body.insert("tools".into(), json!([{ "functionDeclarations": tools }]));
        if let Some(cfg) = tool_config(req) {
            body.insert("toolConfig".into(), cfg);
        }
    }
    let config = generation_config(req);
    if !config.is_empty() {
        body.insert("generationConfig".into(), Value::Object(config));
    }
    Ok(Value::Object(body))
}

fn user_parts(m: &Message) -> Result<Vec<Value>, ApiError> {
    let mut parts = Vec::new();
    for p in input_parts(m.content.as_ref())? {
        parts.push(match p {
            InputPart::Text(t) if t.is_empty() => continue,
            InputPart::Text(t) => json!({ "text": t }),
            InputPart::Media { mime, data, .. } => {
                json!({"inlineData": {"mimeType": mime, "data": data}})
            }
            InputPart::Url { url, mime } => json!({"fileData": {
                "mimeType": mime.as_deref().unwrap_or(DEFAULT_URL_MIME),
                "fileUri": url,
            }}),
        });
    }
    Ok(parts)
}

fn model_parts(m: &Message) -> Result<Vec<Value>, ApiError> {
    let mut parts = Vec::new();
    let text = m.text_content();
    if !text.is_empty() {
        parts.push(json!({ "text": text }));
    }
    for call in m.tool_calls.iter().flatten() {
        let args = parse_arguments(&call.function.name, &call.function.arguments)?;
        let mut part = Map::new();
        part.insert(
            "functionCall".into(),
            json!({"name": call.function.name, "args": args}),
        );
        // The signature kt folded into the id on the way out goes back where Gemini wants
        // it (Gemini 3 rejects a function-call history without it).
        if let Some((_, signature)) = call.id.split_once(THOUGHT_SEPARATOR) {
            part.insert("thoughtSignature".into(), json!(signature));
        }
        parts.push(Value::Object(part));
    }
    Ok(parts)
}

fn function_response(req: &ChatRequest, m: &Message) -> Result<Value, ApiError> {
    let name = m
        .tool_call_id
        .as_deref()
        .and_then(|id| tool_call_name(req, id))
        .or_else(|| m.name.clone())
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "tool message `tool_call_id` `{}` matches no earlier assistant tool call",
                m.tool_call_id.as_deref().unwrap_or_default()
            ))
            .with_param("messages")
        })?;
    let text = m.text_content();
    // `response` must be a JSON object: other results are wrapped.
    let response = match serde_json::from_str::<Value>(&text) {
        Ok(v @ Value::Object(_)) => v,
        Ok(other) => json!({ "content": other }),
        Err(_) => json!({ "content": text }),
    };
    Ok(json!({"functionResponse": {"name": name, "response": response}}))
}

fn function_declarations(req: &ChatRequest) -> Option<Vec<Value>> {
    let decls: Vec<Value> = req
        .tools
        .iter()
        .flatten()
        .filter(|t| t.kind == "function")
        .map(|t| {
            let mut d = Map::new();
            d.insert("name".into(), json!(t.function.name));
            if let Some(desc) = t.function.description.as_ref().filter(|d| !d.is_empty()) {
                d.insert("description".into(), json!(desc));
            }
            if let Some(p) = &t.function.parameters {
                d.insert("parametersJsonSchema".into(), p.clone());
            }
            Value::Object(d)
        })
        .collect();
    (!decls.is_empty()).then_some(decls)
}

fn tool_config(req: &ChatRequest) -> Option<Value> {
    let cfg = match ToolChoice::from_request(req)? {
        ToolChoice::Auto => json!({"mode": "AUTO"}),
        ToolChoice::None => json!({"mode": "NONE"}),
        ToolChoice::Required => json!({"mode": "ANY"}),
        ToolChoice::Named(name) => json!({"mode": "ANY", "allowedFunctionNames": [name]}),
    };
    Some(json!({ "functionCallingConfig": cfg }))
}

fn generation_config(req: &ChatRequest) -> Map<String, Value> {
    let mut c = Map::new();
    if let Some(t) = req.temperature {
        c.insert("temperature".into(), json!(t));
    }
    if let Some(p) = req.top_p {
        c.insert("topP".into(), json!(p));
    }
    if let Some(n) = req.n {
        c.insert("candidateCount".into(), json!(n));
    }
    if let Some(max) = req.max_output_tokens() {
        c.insert("maxOutputTokens".into(), json!(max));
    }
    if let Some(stop) = &req.stop {
        let stop = stop.to_vec();
        if !stop.is_empty() {
            c.insert("stopSequences".into(), json!(stop));
        }
    }
    for (openai, gemini) in [
        ("seed", "seed"),
        ("presence_penalty", "presencePenalty"),
        ("frequency_penalty", "frequencyPenalty"),
    ] {
        if let Some(v) = req.extra.get(openai).filter(|v| v.is_number()) {
            c.insert(gemini.into(), v.clone());
        }
    }
    let format = req.response_format.as_ref();
    match format.and_then(|f| f.get("type")).and_then(Value::as_str) {
        Some("json_object") => {
            c.insert("responseMimeType".into(), json!("application/json"));
        }
        Some("json_schema") => {
            c.insert("responseMimeType".into(), json!("application/json"));
            if let Some(schema) = format.and_then(|f| f.pointer("/json_schema/schema")) {
                c.insert("responseJsonSchema".into(), schema.clone());
            }
        }
        _ => {}
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Value {
        let path = format!(
            "{}/testdata/providers/gemini/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
    }

    #[test]
    fn full_request_translation_matches_the_fixture() {
        let case = fixture("request_full.json");
        let req: ChatRequest = serde_json::from_value(case["openai"].clone()).unwrap();
        assert_eq!(to_gemini(&req).unwrap(), case["gemini"]);
    }

    #[test]
    fn only_a_system_message_becomes_the_prompt() {
        let req: ChatRequest = serde_json::from_value(json!({
            "model": "m", "messages": [{"role": "system", "content": "Say hi."}]
        }))
        .unwrap();
        assert_eq!(
            to_gemini(&req).unwrap(),
            json!({"contents": [{"role": "user", "parts": [{"text": "Say hi."}]}]})
        );
    }

    #[test]
    fn json_object_mode_named_tool_choice_and_dropped_params() {
        let req: ChatRequest = serde_json::from_value(json!({
            "model": "m", "messages": [{"role": "user", "content": "hi"}],
            "response_format": {"type": "json_object"},
            "tools": [{"type": "function", "function": {"name": "f"}}, {"type": "function", "function": {"name": "g"}}],
            "tool_choice": {"type": "function", "function": {"name": "g"}},
            "logprobs": true, "top_logprobs": 2, "user": "u", "parallel_tool_calls": false, "logit_bias": {"1": 2}
        }))
        .unwrap();
        let body = to_gemini(&req).unwrap();
        assert_eq!(
            body["generationConfig"],
            json!({"responseMimeType": "application/json"})
        );
        assert_eq!(
            body["toolConfig"],
            json!({"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["g"]}})
        );
        assert_eq!(
            body["tools"],
            json!([{"functionDeclarations": [{"name": "f"}, {"name": "g"}]}])
        );
        let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            ["contents", "tools", "toolConfig", "generationConfig"]
        );
    }

    #[test]
    fn unknown_tool_call_ids_and_bad_arguments_are_400s() {
        let req: ChatRequest = serde_json::from_value(json!({"model": "m", "messages": [
            {"role": "tool", "tool_call_id": "nope", "content": "x"}
        ]}))
        .unwrap();
        let e = to_gemini(&req).unwrap_err();
        assert_eq!(e.status, 400);
        assert!(e.body.message.contains("`nope`"), "{}", e.body.message);
        let req: ChatRequest = serde_json::from_value(json!({"model": "m", "messages": [
            {"role": "assistant", "tool_calls": [{"id": "a", "type": "function", "function": {"name": "f", "arguments": "[]"}}]}
        ]}))
        .unwrap();
        assert_eq!(to_gemini(&req).unwrap_err().status, 400);
    }
}
