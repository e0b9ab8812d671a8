//! OpenAI chat request → Converse request body.
//!
//! - `system` / `developer` messages → `system` text blocks.
//! - user content → `text`, `image` (base64 `bytes` or `s3Location`) and `document` blocks;
//!   Bedrock cannot fetch `http(s)` URLs, so those are a 400 asking for a data URL.
//! - assistant `tool_calls` → `toolUse` blocks; `tool` messages → `toolResult` blocks in a
//!   user turn; consecutive turns of one role are merged (Converse requires alternation).
//! - `max_completion_tokens` / `max_tokens`, `temperature` (clamped to 0–1), `top_p`,
//!   `stop` → `inferenceConfig`; tools and `tool_choice` → `toolConfig` (kept, or synthesized, whenever
//!   the history holds tool blocks, which Converse requires).
//! - `response_format`: `json_schema` → `outputConfig.textFormat`; `json_object` has no
//!   native switch and becomes a system instruction.
//! - `n`, `seed`, `logprobs`, penalties, `logit_bias`, `user`, `parallel_tool_calls`: no
//!   Converse equivalent, dropped.

use serde_json::{json, Map, Value};

use crate::openai::{ApiError, ChatRequest, Message, Role};
use crate::providers::common::parse_arguments;
use crate::providers::native::{input_parts, system_texts, InputPart, ToolChoice};

/// What `json_object` mode asks of the model, as Converse has no JSON switch.
pub const JSON_OBJECT_INSTRUCTION: &str =
    "Respond with a single valid JSON object and nothing else: no prose, no code fences.";

/// The Converse body (no `modelId`: it travels in the URL).
pub fn to_converse(req: &ChatRequest) -> Result<Value, ApiError> {
    let mut body = Map::new();
    let mut turns: Vec<(&'static str, Vec<Value>)> = Vec::new();
    let mut names = DocumentNames::default();
    for m in &req.messages {
        let (role, blocks) = match m.role {
            Role::System | Role::Developer => continue,
            Role::User => ("user", user_blocks(m, &mut names)?),
            Role::Assistant => ("assistant", assistant_blocks(m)?),
            Role::Tool => ("user", vec![tool_result(m)?]),
            Role::Function => {
                return Err(ApiError::bad_request(
                    "legacy `function` messages are not supported for bedrock targets: use `tool` messages",
                )
                .with_param("messages"))
            }
        };
        if blocks.is_empty() {
            continue;
        }
        match turns.last_mut() {
            Some((last, existing)) if *last == role => existing.extend(blocks),
            _ => turns.push((role, blocks)),
        }
    }
    let history_tools = tool_names_in(&turns);
    body.insert(
        "messages".into(),
        Value::Array(
            turns
                .into_iter()
                .map(|(role, content)| json!({"role": role, "content": content}))
                .collect(),
        ),
    );

    let mut system: Vec<Value> = system_texts(req)
        .into_iter()
        .map(|t| json!({ "text": t }))
        .collect();
    let format = req.response_format.as_ref();
    match format.and_then(|f| f.get("type")).and_then(Value::as_str) {
        Some("json_object") => system.push(json!({ "text": JSON_OBJECT_INSTRUCTION })),
        Some("json_schema") => {
            if let Some(cfg) = format.and_then(output_config) {
                body.insert("outputConfig".into(), cfg);
            }
        }
        _ => {}
    }
    if !system.is_empty() {
        body.insert("system".into(), Value::Array(system));
    }

    let mut inference = Map::new();
    if let Some(n) = req.max_output_tokens() {
        inference.insert("maxTokens".into(), json!(n));
    }
    if let Some(t) = req.temperature {
        // OpenAI's range is 0–2; the models behind Converse take 0–1 and reject more.
        inference.insert("temperature".into(), json!(t.clamp(0.0, 1.0)));
    }
    if let Some(p) = req.top_p {
        inference.insert("topP".into(), json!(p));
    }
    if let Some(stop) = &req.stop {
        let stop = stop.to_vec();
        if !stop.is_empty() {
            inference.insert("stopSequences".into(), json!(stop));
        }
    }
    if !inference.is_empty() {
        body.insert("inferenceConfig".into(), Value::Object(inference));
    }
    if let Some(cfg) = tool_config(req, &history_tools) {
        body.insert("toolConfig".into(), cfg);
    }
    Ok(Value::Object(body))
}

/// Document names must be unique in a request and use a small alphabet.
#[derive(Default)]
struct DocumentNames(Vec<String>);

impl DocumentNames {
    fn name(&mut self, given: Option<&str>) -> String {
        let stem = given
            .map(|n| n.rsplit_once('.').map_or(n, |(s, _)| s))
            .unwrap_or("document");
        let mut clean = String::new();
        for c in stem.chars() {
            let c = if c.is_ascii_alphanumeric() || "-()[]".contains(c) {
                c
            } else if c.is_whitespace() {
                ' '
            } else {
                '-'
            };
            if !(c == ' ' && clean.ends_with(' ')) {
                clean.push(c);
            }
        }
        let clean = clean.trim().to_string();
        let base = if clean.is_empty() {
            "document".to_string()
        } else {
            clean
        };
        let mut name = base.clone();
        let mut n = 2;
        while self.0.contains(&name) {
            name = format!("{base} ({n})");
            n += 1;
        }
        self.0.push(name.clone());
        name
    }
}

fn image_format(mime: &str) -> Option<&'static str> {
    match mime {
        "image/png" => Some("png"),
        "image/jpeg" | "image/jpg" => Some("jpeg"),
        "image/gif" => Some("gif"),
        "image/webp" => Some("webp"),
        _ => None,
    }
}

fn document_format(mime: &str) -> Option<&'static str> {
    match mime {
        "application/pdf" => Some("pdf"),
        "text/csv" => Some("csv"),
        "application/msword" => Some("doc"),
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document" => Some("docx"),
        "application/vnd.ms-excel" => Some("xls"),
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" => Some("xlsx"),
        "text/html" => Some("html"),
        "text/plain" => Some("txt"),
        "text/markdown" => Some("md"),
        _ => None,
    }
}

/// An image or document block from a MIME type and a `source`.
fn media_block(
    mime: &str,
    source: Value,
    name: Option<&str>,
    names: &mut DocumentNames,
) -> Result<Value, ApiError> {
    if let Some(format) = image_format(mime) {
        return Ok(json!({"image": {"format": format, "source": source}}));
    }
    if let Some(format) = document_format(mime) {
        return Ok(
            json!({"document": {"format": format, "name": names.name(name), "source": source}}),
        );
    }
    Err(ApiError::bad_request(format!(
        "media type `{mime}` is not supported by bedrock (images: png, jpeg, gif, webp; documents: pdf, csv, doc, docx, xls, xlsx, html, txt, md)"
    ))
    .with_param("messages"))
}

fn user_blocks(m: &Message, names: &mut DocumentNames) -> Result<Vec<Value>, ApiError> {
    let mut blocks = Vec::new();
    for part in input_parts(m.content.as_ref())? {
        match part {
            InputPart::Text(t) if t.is_empty() => {}
            InputPart::Text(t) => blocks.push(json!({ "text": t })),
            InputPart::Media { mime, data, name } => blocks.push(media_block(
                &mime,
                json!({ "bytes": data }),
                name.as_deref(),
                names,
            )?),
            InputPart::Url { url, mime } if url.starts_with("s3://") => {
                let mime = mime.unwrap_or_default();
                let file = url.rsplit('/').next();
                blocks.push(media_block(
                    &mime,
                    json!({"s3Location": {"uri": url}}),
                    file,
                    names,
                )?);
            }
            InputPart::Url { url, .. } => {
                let shown: String = url.chars().take(80).collect();
                return Err(ApiError::bad_request(format!(
                    "bedrock cannot fetch `{shown}`: send images as base64 data URLs (`data:image/png;base64,…`) or `s3://` URIs"
                ))
                .with_param("messages"));
            }
        }
    }
    Ok(blocks)
}

fn assistant_blocks(m: &Message) -> Result<Vec<Value>, ApiError> {
    let mut blocks = Vec::new();
    let text = m.text_content();
    if !text.trim().is_empty() {
        blocks.push(json!({ "text": text }));
    }
    for call in m.tool_calls.iter().flatten() {
        blocks.push(json!({"toolUse": {
            "toolUseId": call.id,
            "name": call.function.name,
            "input": parse_arguments(&call.function.name, &call.function.arguments)?,
        }}));
    }
    Ok(blocks)
}

fn tool_result(m: &Message) -> Result<Value, ApiError> {
    let id = m
        .tool_call_id
        .as_deref()
        .ok_or_else(|| ApiError::missing_param("messages.tool_call_id"))?;
    let text = m.text_content();
    let content = match serde_json::from_str::<Value>(&text) {
        Ok(v @ Value::Object(_)) => json!([{ "json": v }]),
        _ => json!([{ "text": text }]),
    };
    Ok(json!({"toolResult": {"toolUseId": id, "content": content}}))
}

/// Tool names used by `toolUse` blocks, and whether any tool block is present at all.
fn tool_names_in(turns: &[(&str, Vec<Value>)]) -> (bool, Vec<String>) {
    let mut any = false;
    let mut names = Vec::new();
    for block in turns.iter().flat_map(|(_, b)| b) {
        if block.get("toolResult").is_some() {
            any = true;
        }
        if let Some(name) = block.pointer("/toolUse/name").and_then(Value::as_str) {
            any = true;
            if !names.iter().any(|n| n == name) {
                names.push(name.to_string());
            }
        }
    }
    (any, names)
}

fn tool_config(req: &ChatRequest, history: &(bool, Vec<String>)) -> Option<Value> {
    let (history_has_tools, history_names) = history;
    let choice = ToolChoice::from_request(req);
    let mut tools: Vec<Value> = req
        .tools
        .iter()
        .flatten()
        .filter(|t| t.kind == "function")
        .map(|t| {
            let mut spec = Map::new();
            spec.insert("name".into(), json!(t.function.name));
            if let Some(d) = t.function.description.as_ref().filter(|d| !d.is_empty()) {
                spec.insert("description".into(), json!(d));
            }
            let schema = t
                .function
                .parameters
                .clone()
                .unwrap_or_else(|| json!({"type": "object", "properties": {}}));
            spec.insert("inputSchema".into(), json!({ "json": schema }));
            json!({ "toolSpec": spec })
        })
        .collect();
    if choice == Some(ToolChoice::None) && !history_has_tools {
        // Converse has no "none": offering no tools is the same thing.
        return None;
    }
    if tools.is_empty() && *history_has_tools {
        // Converse rejects tool blocks without a toolConfig: describe the tools the
        // history used, loosely.
        tools = history_names
            .iter()
            .map(|n| json!({"toolSpec": {"name": n, "inputSchema": {"json": {"type": "object"}}}}))
            .collect();
    }
    if tools.is_empty() {
        return None;
    }
    let mut cfg = Map::new();
    cfg.insert("tools".into(), Value::Array(tools));
    match choice {
        Some(ToolChoice::Auto) => {
            cfg.insert("toolChoice".into(), json!({"auto": {}}));
        }
        Some(ToolChoice::Required) => {
            cfg.insert("toolChoice".into(), json!({"any": {}}));
        }
        Some(ToolChoice::Named(name)) => {
            cfg.insert("toolChoice".into(), json!({"tool": {"name": name}}));
        }
        Some(ToolChoice::None) | None => {}
    }
    Some(Value::Object(cfg))
}

/// `response_format: json_schema` → `outputConfig.textFormat` (the schema as a string).
fn output_config(format: &Value) -> Option<Value> {
    let js = format.get("json_schema")?;
    let schema = js.get("schema")?;
    let mut def = Map::new();
    def.insert("schema".into(), json!(schema.to_string()));
    if let Some(name) = js.get("name").and_then(Value::as_str) {
        def.insert("name".into(), json!(name));
    }
    if let Some(d) = js.get("description").and_then(Value::as_str) {
        def.insert("description".into(), json!(d));
    }
    Some(json!({"textFormat": {"type": "json_schema", "structure": {"jsonSchema": def}}}))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Value {
        let path = format!(
            "{}/testdata/providers/bedrock/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
    }

    #[test]
    fn full_request_translation_matches_the_fixture() {
        let case = fixture("request_full.json");
        let req: ChatRequest = serde_json::from_value(case["openai"].clone()).unwrap();
        assert_eq!(to_converse(&req).unwrap(), case["converse"]);
    }

    #[test]
    fn json_modes_and_tool_choice_none() {
        let req: ChatRequest = serde_json::from_value(json!({
            "model": "m", "messages": [{"role": "user", "content": "hi"}],
            "response_format": {"type": "json_object"},
            "tools": [{"type": "function", "function": {"name": "f"}}], "tool_choice": "none",
            "n": 2, "seed": 4, "logprobs": true, "user": "u", "temperature": 1.7
        }))
        .unwrap();
        let body = to_converse(&req).unwrap();
        assert_eq!(body["inferenceConfig"], json!({"temperature": 1.0}));
        assert_eq!(body["system"], json!([{ "text": JSON_OBJECT_INSTRUCTION }]));
        assert!(body.get("toolConfig").is_none());
        for dropped in ["n", "seed", "logprobs", "user"] {
            assert!(body.get(dropped).is_none(), "{dropped}");
        }
        let req: ChatRequest = serde_json::from_value(json!({
            "model": "m", "messages": [{"role": "user", "content": "hi"}],
            "response_format": {"type": "json_schema", "json_schema": {"name": "answer", "schema": {"type": "object"}}}
        }))
        .unwrap();
        assert_eq!(
            to_converse(&req).unwrap()["outputConfig"],
            json!({"textFormat": {"type": "json_schema", "structure": {"jsonSchema": {"schema": "{\"type\":\"object\"}", "name": "answer"}}}})
        );
    }

    #[test]
    fn tool_history_without_tools_gets_a_synthesized_tool_config() {
        let req: ChatRequest = serde_json::from_value(json!({"model": "m", "messages": [
            {"role": "user", "content": "weather?"},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "t1", "type": "function", "function": {"name": "get_weather", "arguments": ""}}]},
            {"role": "tool", "tool_call_id": "t1", "content": "sunny"}
        ]}))
        .unwrap();
        let body = to_converse(&req).unwrap();
        assert_eq!(
            body["toolConfig"],
            json!({"tools": [{"toolSpec": {"name": "get_weather", "inputSchema": {"json": {"type": "object"}}}}]})
        );
        assert_eq!(
            body["messages"][1]["content"][0]["toolUse"]["input"],
            json!({})
        );
        assert_eq!(
            body["messages"][2]["content"][0],
            json!({"toolResult": {"toolUseId": "t1", "content": [{"text": "sunny"}]}})
        );
    }

    #[test]
    fn unfetchable_and_unknown_media_are_clear_400s() {
        let req: ChatRequest = serde_json::from_value(json!({"model": "m", "messages": [
            {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://e.com/cat.png"}}]}
        ]}))
        .unwrap();
        let e = to_converse(&req).unwrap_err();
        assert_eq!(e.status, 400);
        assert!(e.body.message.contains("data URL"), "{}", e.body.message);
        let req: ChatRequest = serde_json::from_value(json!({"model": "m", "messages": [
            {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/tiff;base64,AAAA"}}]}
        ]}))
        .unwrap();
        assert!(to_converse(&req)
            .unwrap_err()
            .body
            .message
            .contains("image/tiff"));
        let req: ChatRequest = serde_json::from_value(json!({"model": "m", "messages": [
            {"role": "assistant", "content": null, "tool_calls": [{"id": "t1", "type": "function", "function": {"name": "f", "arguments": "{oops"}}]}
        ]}))
        .unwrap();
        assert_eq!(to_converse(&req).unwrap_err().status, 400);
    }

    #[test]
    fn document_names_are_clean_and_unique() {
        let mut n = DocumentNames::default();
        assert_eq!(n.name(Some("Q3 report (final)!.pdf")), "Q3 report (final)-");
        assert_eq!(n.name(Some("a.pdf")), "a");
        assert_eq!(n.name(Some("a.txt")), "a (2)");
        assert_eq!(n.name(None), "document");
        assert_eq!(n.name(Some("  ")), "document (2)");
    }
}
