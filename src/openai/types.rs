//! Chat Completions request, response and stream chunk types.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A `POST /v1/chat/completions` body.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ChatRequest {
    pub model: String,
    pub messages: Vec<Message>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_options: Option<StreamOptions>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<Tool>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_completion_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<Stop>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_format: Option<Value>,
    /// Everything else the client sent, passed through untouched.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ChatRequest {
    pub fn is_stream(&self) -> bool {
        self.stream.unwrap_or(false)
    }

    pub fn include_usage(&self) -> bool {
        self.stream_options
            .as_ref()
            .and_then(|o| o.include_usage)
            .unwrap_or(false)
    }

    /// `max_completion_tokens`, else the deprecated `max_tokens`.
    pub fn max_output_tokens(&self) -> Option<u64> {
        self.max_completion_tokens.or(self.max_tokens)
    }
}

/// A request body read as JSON: 400s for malformed JSON, a body that is no object, and a
/// `model` that is missing, empty or no string (naming the parameter). Every endpoint
/// that takes a `model` reads its body through this.
pub fn request_object(body: &[u8]) -> Result<Value, super::ApiError> {
    use super::ApiError;
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        ApiError::invalid_json(format!(
            "We could not parse the JSON body of your request: {e}. Send a valid JSON object."
        ))
    })?;
    let obj = value
        .as_object()
        .ok_or_else(|| ApiError::bad_request("The request body must be a JSON object."))?;
    match obj.get("model") {
        None | Some(Value::Null) => Err(ApiError::missing_param("model")),
        Some(Value::String(s)) if s.is_empty() => Err(ApiError::missing_param("model")),
        Some(Value::String(_)) => Ok(value),
        Some(_) => Err(ApiError::bad_request("'model' must be a string.").with_param("model")),
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct StreamOptions {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_usage: Option<bool>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `stop`: one string or several.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum Stop {
    One(String),
    Many(Vec<String>),
}

impl Stop {
    pub fn to_vec(&self) -> Vec<String> {
        match self {
            Stop::One(s) => vec![s.clone()],
            Stop::Many(v) => v.clone(),
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    Developer,
    #[default]
    User,
    Assistant,
    Tool,
    Function,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::Developer => "developer",
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::Tool => "tool",
            Role::Function => "function",
        }
    }

    /// `system` and `developer` both instruct the model.
    pub fn is_system(self) -> bool {
        matches!(self, Role::System | Role::Developer)
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Message {
    pub role: Role,
    #[serde(default = "crate::openai::de::filled")]
    pub content: Option<Content>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<ToolCall>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refusal: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Message {
    /// The deprecated `function_call` (legacy function calling: one call a turn, no id),
    /// when it names a function.
    pub fn function_call(&self) -> Option<FunctionCall> {
        let call = self.extra.get("function_call")?;
        Some(FunctionCall {
            name: call.get("name")?.as_str()?.to_string(),
            arguments: call
                .get("arguments")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
        })
    }

    pub fn text(role: Role, text: impl Into<String>) -> Message {
        Message {
            role,
            content: Some(Content::Text(text.into())),
            ..Message::default()
        }
    }

    /// The text of the message: the string content, or its text parts joined.
    pub fn text_content(&self) -> String {
        self.content.as_ref().map(Content::text).unwrap_or_default()
    }
}

/// Message content: a string or a list of typed parts.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum Content {
    Text(String),
    Parts(Vec<ContentPart>),
}

impl Content {
    pub fn text(&self) -> String {
        match self {
            Content::Text(s) => s.clone(),
            Content::Parts(parts) => {
                let mut out = String::new();
                for p in parts {
                    if let Some(t) = &p.text {
                        if !out.is_empty() {
                            out.push('\n');
                        }
                        out.push_str(t);
                    }
                }
                out
            }
        }
    }

    /// Every text fragment, mutable: how redaction rewrites content in place.
    pub fn texts_mut(&mut self) -> Vec<&mut String> {
        match self {
            Content::Text(s) => vec![s],
            Content::Parts(parts) => parts.iter_mut().filter_map(|p| p.text.as_mut()).collect(),
        }
    }
}

/// One content part (`text`, `image_url`, `input_audio`, `file`, …). Kept as a loose struct
/// so part types kt does not know pass through unchanged.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ContentPart {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_url: Option<ImageUrl>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ImageUrl {
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// A tool offered: a function (`function`), or a custom tool (`type: "custom"`,
/// GPT-5's freeform tools: `custom: {name, description, format}`, kept in `extra`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Tool {
    #[serde(rename = "type", default = "function_type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "FunctionDef::is_unset")]
    pub function: FunctionDef,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Tool {
    /// The tool's name: its function's, its custom tool's, or (kt's view of a Responses
    /// built-in tool, `responses::request::tool_view_name`) the `name` it was given.
    pub fn name(&self) -> &str {
        if !self.function.is_unset() {
            return &self.function.name;
        }
        let custom = self.extra.get("custom").and_then(|c| c.get("name"));
        match custom.or_else(|| self.extra.get("name")) {
            Some(Value::String(n)) => n,
            _ => &self.function.name,
        }
    }

    /// The tool's description, for the model.
    pub fn description(&self) -> Option<&str> {
        match self.extra.get("custom").and_then(|c| c.get("description")) {
            Some(Value::String(d)) if self.function.is_unset() => Some(d),
            _ => self.function.description.as_deref(),
        }
    }

    /// Whether this is a function tool (what every provider but OpenAI can express).
    pub fn is_function(&self) -> bool {
        self.kind == "function" && !self.function.is_unset()
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct FunctionDef {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strict: Option<bool>,
}

impl FunctionDef {
    /// Absent from the JSON (a custom tool has none).
    pub fn is_unset(&self) -> bool {
        self.name.is_empty()
            && self.description.is_none()
            && self.parameters.is_none()
            && self.strict.is_none()
    }
}

pub fn function_type() -> String {
    "function".to_string()
}

/// A call the model made: of a function (`function`: JSON arguments), or of a custom
/// tool (`type: "custom"`, `custom`: free-text input).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ToolCall {
    pub id: String,
    #[serde(rename = "type", default = "crate::openai::de::filled_function_type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "FunctionCall::is_unset")]
    pub function: FunctionCall,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom: Option<CustomCall>,
}

impl ToolCall {
    /// The called tool's name.
    pub fn name(&self) -> &str {
        match &self.custom {
            Some(c) if self.function.is_unset() => &c.name,
            _ => &self.function.name,
        }
    }

    /// What the call passes: a function's JSON arguments, a custom tool's input.
    pub fn input(&self) -> &str {
        match &self.custom {
            Some(c) if self.function.is_unset() => &c.input,
            _ => &self.function.arguments,
        }
    }
}

/// A custom tool's call: its input is free text, not JSON.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct CustomCall {
    pub name: String,
    #[serde(default)]
    pub input: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct FunctionCall {
    pub name: String,
    /// Always a JSON string, never an object.
    #[serde(default = "crate::openai::de::filled")]
    pub arguments: String,
}

impl FunctionCall {
    /// Absent from the JSON (a custom tool's call has none).
    pub fn is_unset(&self) -> bool {
        self.name.is_empty() && self.arguments.is_empty()
    }
}

/// A non-streaming `chat.completion`. Deserialised in one pass (`de.rs`): members kt
/// does not model go to `extra` as they are met, where `#[serde(flatten)]` would buffer
/// the whole object first; a member left out gets its default (noted, see
/// `ChatResponse::parse`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct ChatResponse {
    pub id: String,
    pub object: String,
    pub created: u64,
    pub model: String,
    pub choices: Vec<Choice>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub x_keeptrusts: Option<KeeptrustsMeta>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

pub(super) fn completion_object() -> String {
    "chat.completion".to_string()
}

impl ChatResponse {
    /// The text of every choice, joined: what the output phase of a policy reads.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for c in &self.choices {
            out.push_str(&c.message.text_content());
        }
        out
    }
}

/// One choice of a `ChatResponse` (deserialised in one pass, `de.rs`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Choice {
    pub index: u32,
    pub message: Message,
    pub finish_reason: Option<String>,
    pub logprobs: Option<Value>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Token counts (deserialised in one pass, `de.rs`).
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub total_tokens: u64,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Usage {
    pub fn new(prompt_tokens: u64, completion_tokens: u64) -> Usage {
        Usage {
            prompt_tokens,
            completion_tokens,
            total_tokens: prompt_tokens + completion_tokens,
            extra: Map::new(),
        }
    }
}

/// Gateway metadata added to every completion (seed 000).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct KeeptrustsMeta {
    pub routing_decision_id: String,
    pub provider_used: String,
    pub cache_status: Option<String>,
    pub region: Option<String>,
}

/// One `chat.completion.chunk` (deserialised in one pass, `de.rs`: a stream reads one
/// per token).
#[derive(Debug, Clone, Default, Serialize)]
pub struct ChatChunk {
    pub id: String,
    pub object: String,
    pub created: u64,
    pub model: String,
    pub choices: Vec<ChunkChoice>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub x_keeptrusts: Option<KeeptrustsMeta>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

pub fn chunk_object() -> String {
    "chat.completion.chunk".to_string()
}

/// One choice of a `ChatChunk` (deserialised in one pass, `de.rs`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct ChunkChoice {
    pub index: u32,
    pub delta: Delta,
    pub finish_reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logprobs: Option<Value>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// What a chunk's choice adds (deserialised in one pass, `de.rs`).
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Delta {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<ToolCallDelta>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refusal: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A streamed fragment of a tool call. The first fragment of a call carries `id`, `type`
/// and `function.name`; later ones only `index` and an `arguments` piece.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ToolCallDelta {
    pub index: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<FunctionCallDelta>,
    /// A custom tool's call: `name`, then `input` in pieces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom: Option<CustomCallDelta>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct CustomCallDelta {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct FunctionCallDelta {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arguments: Option<String>,
}

/// `GET /v1/models` entry.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelEntry {
    pub id: String,
    pub object: String,
    pub created: u64,
    pub owned_by: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn request_keeps_unknown_fields() {
        let body = r#"{"model":"gpt-4o","messages":[{"role":"user","content":"hi","x":1}],"seed":7,"stream":true}"#;
        let req: ChatRequest = serde_json::from_str(body).unwrap();
        assert!(req.is_stream());
        assert_eq!(req.extra["seed"], 7);
        let back = serde_json::to_value(&req).unwrap();
        assert_eq!(back["seed"], 7);
        assert_eq!(back["messages"][0]["x"], 1);
    }

    #[test]
    fn content_parts_text_is_joined() {
        let m: Message = serde_json::from_str(
            r#"{"role":"user","content":[{"type":"text","text":"a"},{"type":"image_url","image_url":{"url":"http://x/i.png"}},{"type":"text","text":"b"}]}"#,
        )
        .unwrap();
        assert_eq!(m.text_content(), "a\nb");
    }
}
