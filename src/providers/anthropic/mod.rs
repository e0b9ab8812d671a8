//! Anthropic Messages API (`POST {base}/messages`, `x-api-key` + `anthropic-version`).
//!
//! A pure translation: [`request`] builds the body, this file reads a complete answer and
//! errors, [`stream`] decodes the SSE stream into OpenAI chunks. JSON mode is carried by a
//! forced synthetic tool ([`JSON_TOOL`]) whose input is the answer; on the way back that
//! tool call becomes the message content and never reaches the client as a tool call.

pub mod request;
pub mod stream;

use serde::Deserialize;
use serde_json::Value;

use super::common::usage_with_cache;
use super::errors;
use super::{unix_now, Adapter, BuildContext, StreamDecoder, UpstreamRequest};
use crate::config::Target;
use crate::openai::{
    function_type, ApiError, ChatRequest, ChatResponse, Choice, Content, FunctionCall, Message,
    Role, ToolCall, Usage,
};

/// The `anthropic-version` header kt speaks.
pub const API_VERSION: &str = "2023-06-01";

/// Name of the synthetic tool that carries JSON-mode answers.
pub const JSON_TOOL: &str = "kt_json_response";

pub struct AnthropicAdapter;

pub static ANTHROPIC: AnthropicAdapter = AnthropicAdapter;

impl Adapter for AnthropicAdapter {
    fn build_request(
        &self,
        ctx: BuildContext<'_>,
        req: &ChatRequest,
    ) -> Result<UpstreamRequest, ApiError> {
        let target = ctx.target;
        super::native::openai_only(req, "Anthropic")?;
        let body = request::to_anthropic(req)?;
        let body = serde_json::to_vec(&body)
            .map_err(|e| ApiError::internal(format!("failed to serialize the request: {e}")))?;
        let has_version = target
            .headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("anthropic-version"));
        let version: &[(&str, &str)] = if has_version {
            &[]
        } else {
            &[("anthropic-version", API_VERSION)]
        };
        // Configured headers (e.g. `anthropic-beta`) go as they are.
        let headers = ctx.json_headers(super::sse_if(req.is_stream()), version);
        Ok(UpstreamRequest {
            method: "POST",
            url: format!("{}/messages", target.base_url.trim_end_matches('/')),
            headers,
            body,
        })
    }

    fn parse_response(&self, _target: &Target, body: &[u8]) -> Result<ChatResponse, ApiError> {
        let msg: MessageResponse = serde_json::from_slice(body).map_err(|e| {
            ApiError::bad_gateway(format!("anthropic returned an invalid message: {e}"))
        })?;
        if msg.kind.as_deref() == Some("error") {
            // An error body under a 2xx status (seen behind some proxies).
            let kind = msg
                .error
                .as_ref()
                .and_then(|e| e.get("type"))
                .and_then(Value::as_str)
                .unwrap_or("api_error");
            return Err(errors::normalize(status_for_error_type(kind), body));
        }
        Ok(to_openai(msg, unix_now()))
    }

    fn parse_error(&self, status: u16, body: &[u8]) -> ApiError {
        errors::normalize(status, body)
    }

    fn stream_decoder(&self, target: &Target, req: &ChatRequest) -> Box<dyn StreamDecoder> {
        let mut d = stream::AnthropicStreamDecoder::new(target.model.clone(), unix_now());
        d.json_only = request::forces_json_tool(req);
        Box::new(d)
    }
}

/// A complete Messages API answer (only what kt reads).
#[derive(Debug, Deserialize)]
pub struct MessageResponse {
    /// `message`, or `error` for an error body.
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub error: Option<Value>,
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub model: String,
    #[serde(default)]
    pub content: Vec<Value>,
    #[serde(default)]
    pub stop_reason: Option<String>,
    #[serde(default)]
    pub usage: AnthropicUsage,
}

/// Anthropic usage. `input_tokens` excludes cached tokens, so OpenAI's `prompt_tokens` is
/// the sum of all three input counts. Every field may be absent or null.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
pub struct AnthropicUsage {
    #[serde(default)]
    pub input_tokens: Option<u64>,
    #[serde(default)]
    pub output_tokens: Option<u64>,
    #[serde(default)]
    pub cache_creation_input_tokens: Option<u64>,
    #[serde(default)]
    pub cache_read_input_tokens: Option<u64>,
}

impl AnthropicUsage {
    /// Later values win (stream `message_delta` usage is cumulative).
    pub fn merge(&mut self, newer: AnthropicUsage) {
        self.input_tokens = newer.input_tokens.or(self.input_tokens);
        self.output_tokens = newer.output_tokens.or(self.output_tokens);
        self.cache_creation_input_tokens = newer
            .cache_creation_input_tokens
            .or(self.cache_creation_input_tokens);
        self.cache_read_input_tokens = newer
            .cache_read_input_tokens
            .or(self.cache_read_input_tokens);
    }

    pub fn to_openai(self) -> Usage {
        let cache_read = self.cache_read_input_tokens.unwrap_or(0);
        let prompt = self.input_tokens.unwrap_or(0)
            + self.cache_creation_input_tokens.unwrap_or(0)
            + cache_read;
        usage_with_cache(
            prompt,
            self.output_tokens.unwrap_or(0),
            Some(cache_read),
            self.cache_creation_input_tokens,
        )
    }
}

/// `stop_reason` → `finish_reason`.
pub fn finish_reason(stop_reason: Option<&str>) -> &'static str {
    match stop_reason {
        Some("max_tokens" | "model_context_window_exceeded") => "length",
        Some("tool_use") => "tool_calls",
        Some("refusal") => "content_filter",
        // end_turn, stop_sequence, pause_turn and anything newer.
        _ => "stop",
    }
}

/// The HTTP status an Anthropic error `type` stands for (for errors that arrive in-band,
/// after the 200).
pub fn status_for_error_type(kind: &str) -> u16 {
    match kind {
        "invalid_request_error" => 400,
        "authentication_error" => 401,
        "billing_error" => 402,
        "permission_error" => 403,
        "not_found_error" => 404,
        "request_too_large" => 413,
        "rate_limit_error" => 429,
        "timeout_error" => 504,
        "overloaded_error" => 529,
        _ => 500,
    }
}

fn to_openai(msg: MessageResponse, created: u64) -> ChatResponse {
    let mut text = String::new();
    let mut json_answer = None;
    let mut calls = Vec::new();
    for block in &msg.content {
        match block.get("type").and_then(Value::as_str) {
            Some("text") => text.push_str(block.get("text").and_then(Value::as_str).unwrap_or("")),
            Some("tool_use") => {
                let name = block.get("name").and_then(Value::as_str).unwrap_or("");
                let input = block.get("input").cloned().unwrap_or(Value::Null);
                let arguments = if input.is_null() {
                    "{}".to_string()
                } else {
                    input.to_string()
                };
                if name == JSON_TOOL {
                    json_answer = Some(arguments);
                    continue;
                }
                calls.push(ToolCall {
                    custom: None,
                    id: block
                        .get("id")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string(),
                    kind: function_type(),
                    function: FunctionCall {
                        name: name.to_string(),
                        arguments,
                    },
                });
            }
            // thinking, redacted_thinking, server tool blocks: nothing OpenAI can carry.
            _ => {}
        }
    }
    let mut finish = finish_reason(msg.stop_reason.as_deref());
    let content = match json_answer {
        Some(json) => {
            if calls.is_empty() {
                // The forced JSON tool is how the answer ends, not a tool call.
                finish = if finish == "tool_calls" {
                    "stop"
                } else {
                    finish
                };
            }
            Some(json)
        }
        None if !text.is_empty() => Some(text),
        None if calls.is_empty() => Some(String::new()),
        None => None,
    };
    ChatResponse {
        id: msg.id,
        object: "chat.completion".to_string(),
        created,
        model: msg.model,
        choices: vec![Choice {
            index: 0,
            message: Message {
                role: Role::Assistant,
                content: content.map(Content::Text),
                tool_calls: (!calls.is_empty()).then_some(calls),
                ..Message::default()
            },
            finish_reason: Some(finish.to_string()),
            ..Choice::default()
        }],
        usage: Some(msg.usage.to_openai()),
        ..ChatResponse::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::load_str;
    use serde_json::json;

    pub fn target(extra: &str) -> Target {
        let yaml = format!(
            "pack: {{name: t}}\nproviders:\n  targets:\n    - {{id: a, provider: anthropic, model: claude-sonnet-4-5{extra}}}\n"
        );
        load_str(&yaml, std::path::Path::new("t.yaml"))
            .unwrap()
            .0
            .targets
            .remove(0)
    }

    #[test]
    fn request_url_and_headers() {
        let t = target(", headers: {anthropic-beta: 'prompt-caching-2024-07-31'}");
        let req: ChatRequest = serde_json::from_value(json!({
            "model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": "hi"}], "stream": true
        }))
        .unwrap();
        let up = ANTHROPIC
            .build_request(
                BuildContext {
                    target: &t,
                    api_key: Some("sk-ant-x"),
                    account: &[],
                    now: std::time::SystemTime::now(),
                    raw_body: None,
                },
                &req,
            )
            .unwrap();
        assert_eq!(up.url, "https://api.anthropic.com/v1/messages");
        let h = |n: &str| {
            up.headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(n))
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(h("x-api-key"), Some("sk-ant-x"));
        assert_eq!(h("anthropic-version"), Some(API_VERSION));
        assert_eq!(h("anthropic-beta"), Some("prompt-caching-2024-07-31"));
        assert_eq!(h("authorization"), None);
        let body: Value = serde_json::from_slice(&up.body).unwrap();
        assert_eq!(body["stream"], true);
        assert_eq!(body["max_tokens"], 32000);
    }

    #[test]
    fn fixture_responses_translate() {
        for (native, openai) in [
            (
                include_str!("../../../testdata/providers/anthropic/response.tool_use.json"),
                include_str!("../../../testdata/providers/anthropic/response.tool_use.openai.json"),
            ),
            (
                include_str!("../../../testdata/providers/anthropic/response.json_mode.json"),
                include_str!(
                    "../../../testdata/providers/anthropic/response.json_mode.openai.json"
                ),
            ),
        ] {
            let got = ANTHROPIC
                .parse_response(&target(""), native.as_bytes())
                .unwrap();
            let mut got = serde_json::to_value(got).unwrap();
            got["created"] = json!(0);
            let want: Value = serde_json::from_str(openai).unwrap();
            assert_eq!(got, want);
        }
    }

    #[test]
    fn finish_reasons() {
        assert_eq!(finish_reason(Some("end_turn")), "stop");
        assert_eq!(finish_reason(Some("stop_sequence")), "stop");
        assert_eq!(finish_reason(Some("pause_turn")), "stop");
        assert_eq!(finish_reason(Some("max_tokens")), "length");
        assert_eq!(
            finish_reason(Some("model_context_window_exceeded")),
            "length"
        );
        assert_eq!(finish_reason(Some("tool_use")), "tool_calls");
        assert_eq!(finish_reason(Some("refusal")), "content_filter");
    }

    #[test]
    fn errors_map_to_openai_statuses() {
        let e = ANTHROPIC.parse_error(
            529,
            br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
        );
        assert_eq!(e.status, 503);
        let e = ANTHROPIC.parse_error(
            400,
            br#"{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: 201000 tokens > 200000 maximum"}}"#,
        );
        assert_eq!(e.code_str(), Some("context_length_exceeded"));
        assert_eq!(status_for_error_type("overloaded_error"), 529);
        assert_eq!(status_for_error_type("something_new"), 500);
    }

    #[test]
    fn invalid_or_error_bodies_are_errors() {
        let e = ANTHROPIC
            .parse_response(&target(""), b"not json")
            .unwrap_err();
        assert_eq!(e.status, 502);
        let e = ANTHROPIC
            .parse_response(
                &target(""),
                br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
            )
            .unwrap_err();
        assert_eq!((e.status, e.body.message.as_str()), (503, "Overloaded"));
    }
}
