//! Cohere v2 chat (`POST {base}/chat`, `Authorization: Bearer`), and Embed
//! (`POST {base}/embed`, [`embeddings`]).
//!
//! A pure translation: [`request`] builds the body, this file reads a complete answer and
//! errors, [`stream`] decodes the SSE stream. Cohere's `tool_plan` (the model's note before
//! calling tools) and citations have no OpenAI field and are dropped; a generation that
//! ends in `ERROR` or `TIMEOUT` is an error, not a short answer.

pub mod embeddings;
pub mod request;
pub mod stream;

use serde::Deserialize;
use serde_json::Value;

use super::{
    errors, unix_now, Adapter, BuildContext, EmbeddingAnswer, StreamDecoder, UpstreamRequest,
};
use crate::config::Target;
use crate::openai::embeddings::EmbeddingRequest;
use crate::openai::{
    function_type, ApiError, ChatRequest, ChatResponse, Choice, Content, FunctionCall, Message,
    Role, ToolCall, Usage,
};

/// Cohere asks integrations to name themselves.
pub const CLIENT_NAME: (&str, &str) = ("X-Client-Name", "keeptrusts-kt");

pub struct CohereAdapter;

pub static COHERE: CohereAdapter = CohereAdapter;

impl Adapter for CohereAdapter {
    fn build_request(
        &self,
        ctx: BuildContext<'_>,
        req: &ChatRequest,
    ) -> Result<UpstreamRequest, ApiError> {
        let target = ctx.target;
        super::native::openai_only(req, "Cohere")?;
        let body = request::to_cohere(req)?;
        let body = serde_json::to_vec(&body)
            .map_err(|e| ApiError::internal(format!("failed to serialize the request: {e}")))?;
        let accept = super::sse_if(req.is_stream()).unwrap_or("application/json");
        let headers = ctx.json_headers(Some(accept), &[CLIENT_NAME]);
        Ok(UpstreamRequest {
            method: "POST",
            url: format!("{}/chat", target.base_url.trim_end_matches('/')),
            headers,
            body,
        })
    }

    fn parse_response(&self, target: &Target, body: &[u8]) -> Result<ChatResponse, ApiError> {
        let resp: ChatResponseV2 = serde_json::from_slice(body).map_err(|e| {
            ApiError::bad_gateway(format!("cohere returned an invalid chat response: {e}"))
        })?;
        to_openai(resp, &target.model, unix_now())
    }

    fn parse_error(&self, status: u16, body: &[u8]) -> ApiError {
        errors::normalize(status, body)
    }

    fn stream_decoder(&self, target: &Target, _req: &ChatRequest) -> Box<dyn StreamDecoder> {
        Box::new(stream::CohereStreamDecoder::new(
            target.model.clone(),
            unix_now(),
        ))
    }

    fn build_embeddings(
        &self,
        ctx: BuildContext<'_>,
        req: &EmbeddingRequest,
    ) -> Result<UpstreamRequest, ApiError> {
        embeddings::build(ctx, req)
    }

    fn parse_embeddings(
        &self,
        _target: &Target,
        req: &EmbeddingRequest,
        body: &[u8],
    ) -> Result<EmbeddingAnswer, ApiError> {
        embeddings::parse(req, body)
    }
}

/// A complete v2 chat answer (only what kt reads).
#[derive(Debug, Deserialize)]
pub struct ChatResponseV2 {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub finish_reason: Option<String>,
    #[serde(default)]
    pub message: Value,
    #[serde(default)]
    pub usage: Option<Value>,
}

/// `finish_reason` → OpenAI's, or the error a failed generation stands for.
///
/// # Errors
/// `ERROR` is a 502 and `TIMEOUT` a 504, with Cohere's message when it sent one.
pub fn finish_reason(reason: Option<&str>, error: Option<&str>) -> Result<&'static str, ApiError> {
    match reason {
        Some("MAX_TOKENS") => Ok("length"),
        Some("TOOL_CALL") => Ok("tool_calls"),
        Some("TIMEOUT") => Err(ApiError::upstream_timeout(
            error.unwrap_or("cohere timed out while generating the answer"),
        )),
        Some("ERROR") => Err(ApiError::new(
            502,
            "upstream_error",
            Some("upstream_generation_error"),
            error.unwrap_or("cohere failed while generating the answer"),
        )),
        _ if error.is_some_and(|e| !e.is_empty()) => Err(ApiError::new(
            502,
            "upstream_error",
            Some("upstream_generation_error"),
            error.unwrap_or_default(),
        )),
        // COMPLETE, STOP_SEQUENCE and anything newer.
        _ => Ok("stop"),
    }
}

/// Cohere usage → OpenAI: `tokens` (what the model saw), else `billed_units`. Counts may
/// arrive as floats.
pub fn usage(v: Option<&Value>) -> Usage {
    let count = |key: &str| {
        let v = v?;
        let n = v
            .pointer(&format!("/tokens/{key}"))
            .or_else(|| v.pointer(&format!("/billed_units/{key}")))?;
        n.as_u64().or_else(|| {
            n.as_f64()
                .filter(|f| f.is_finite() && *f >= 0.0)
                .map(|f| f.round() as u64)
        })
    };
    Usage::new(
        count("input_tokens").unwrap_or(0),
        count("output_tokens").unwrap_or(0),
    )
}

fn to_openai(resp: ChatResponseV2, model: &str, created: u64) -> Result<ChatResponse, ApiError> {
    let finish = finish_reason(resp.finish_reason.as_deref(), None)?;
    let msg = &resp.message;
    let text: String = msg
        .get("content")
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter(|i| i.get("type").and_then(Value::as_str) == Some("text"))
                .filter_map(|i| i.get("text").and_then(Value::as_str))
                .collect()
        })
        .unwrap_or_default();
    let calls: Vec<ToolCall> = msg
        .get("tool_calls")
        .and_then(Value::as_array)
        .map(|calls| {
            calls
                .iter()
                .map(|c| {
                    let arguments = match c.pointer("/function/arguments") {
                        Some(Value::String(s)) if !s.is_empty() => s.clone(),
                        Some(v @ Value::Object(_)) => v.to_string(),
                        _ => "{}".to_string(),
                    };
                    ToolCall {
                        custom: None,
                        id: c
                            .get("id")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .to_string(),
                        kind: function_type(),
                        function: FunctionCall {
                            name: c
                                .pointer("/function/name")
                                .and_then(Value::as_str)
                                .unwrap_or("")
                                .to_string(),
                            arguments,
                        },
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    let content = if text.is_empty() && !calls.is_empty() {
        None
    } else {
        Some(Content::Text(text))
    };
    Ok(ChatResponse {
        id: resp.id,
        object: "chat.completion".to_string(),
        created,
        model: model.to_string(),
        choices: vec![Choice {
            index: 0,
            message: Message {
                role: Role::Assistant,
                content,
                tool_calls: (!calls.is_empty()).then_some(calls),
                ..Message::default()
            },
            finish_reason: Some(finish.to_string()),
            ..Choice::default()
        }],
        usage: Some(usage(resp.usage.as_ref())),
        ..ChatResponse::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::load_str;
    use serde_json::json;

    fn target() -> Target {
        let yaml = "pack: {name: t}\nproviders:\n  targets:\n    - {id: c, provider: cohere, model: command-a-03-2025}\n";
        load_str(yaml, std::path::Path::new("t.yaml"))
            .unwrap()
            .0
            .targets
            .remove(0)
    }

    #[test]
    fn request_url_and_headers() {
        let t = target();
        let req: ChatRequest = serde_json::from_value(json!({
            "model": "command-a-03-2025", "messages": [{"role": "user", "content": "hi"}]
        }))
        .unwrap();
        let up = COHERE
            .build_request(
                BuildContext {
                    target: &t,
                    api_key: Some("co-key"),
                    account: &[],
                    now: std::time::SystemTime::now(),
                    raw_body: None,
                },
                &req,
            )
            .unwrap();
        assert_eq!(up.url, "https://api.cohere.com/v2/chat");
        assert!(up
            .headers
            .contains(&("Authorization".to_string(), "Bearer co-key".to_string())));
        let body: Value = serde_json::from_slice(&up.body).unwrap();
        assert_eq!(body["model"], "command-a-03-2025");
        assert_eq!(
            body["messages"][0],
            json!({"role": "user", "content": "hi"})
        );
    }

    #[test]
    fn fixture_responses_translate() {
        for (native, openai) in [
            (
                include_str!("../../../testdata/providers/cohere/response.tool_call.json"),
                include_str!("../../../testdata/providers/cohere/response.tool_call.openai.json"),
            ),
            (
                include_str!("../../../testdata/providers/cohere/response.text.json"),
                include_str!("../../../testdata/providers/cohere/response.text.openai.json"),
            ),
        ] {
            let got = COHERE.parse_response(&target(), native.as_bytes()).unwrap();
            let mut got = serde_json::to_value(got).unwrap();
            got["created"] = json!(0);
            let want: Value = serde_json::from_str(openai).unwrap();
            assert_eq!(got, want);
        }
    }

    #[test]
    fn failed_generations_are_errors() {
        let e = COHERE
            .parse_response(
                &target(),
                br#"{"id":"x","finish_reason":"ERROR","message":{"role":"assistant","content":[]}}"#,
            )
            .unwrap_err();
        assert_eq!(e.status, 502);
        let e = COHERE
            .parse_response(
                &target(),
                br#"{"id":"x","finish_reason":"TIMEOUT","message":{}}"#,
            )
            .unwrap_err();
        assert_eq!(e.status, 504);
        assert_eq!(finish_reason(Some("STOP_SEQUENCE"), None).unwrap(), "stop");
        assert_eq!(finish_reason(Some("MAX_TOKENS"), None).unwrap(), "length");
    }

    #[test]
    fn errors_keep_cohere_messages() {
        let e = COHERE.parse_error(
            429,
            br#"{"id":"e1","message":"You are using a Trial key, which is limited to 10 API calls / minute."}"#,
        );
        assert_eq!((e.status, e.code_str()), (429, Some("rate_limit_exceeded")));
        assert!(e.body.message.starts_with("You are using a Trial key"));
        let e = COHERE.parse_error(
            400,
            br#"{"id":"e2","message":"too many tokens: size limit exceeded by 1042 tokens. Try using shorter or fewer inputs, or setting prompt_truncation='AUTO'."}"#,
        );
        assert_eq!(e.code_str(), Some("context_length_exceeded"));
    }

    #[test]
    fn usage_falls_back_to_billed_units() {
        let u = usage(Some(
            &json!({"billed_units": {"input_tokens": 20.0, "output_tokens": 15.0}}),
        ));
        assert_eq!(
            (u.prompt_tokens, u.completion_tokens, u.total_tokens),
            (20, 15, 35)
        );
        assert_eq!(usage(None).total_tokens, 0);
    }
}
