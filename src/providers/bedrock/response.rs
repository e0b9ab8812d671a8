//! Converse answers → OpenAI: the completion, usage, stop reasons and errors.
//!
//! Errors name their type in the `x-amzn-ErrorType` header (or `__type` in the body); they
//! become OpenAI-shaped errors with the statuses the OpenAI SDK retries or raises on:
//! throttling 429, validation 400 (`context_length_exceeded` when the input is too long),
//! access denied 403, bad credentials 401, unknown model 404, model not ready / service
//! unavailable 503, model timeout 504, model errors 502.

use serde_json::{Map, Value};

use crate::config::Target;
use crate::openai::{
    function_type, ApiError, ChatResponse, Choice, Content, FunctionCall, Message, Role, ToolCall,
    Usage,
};
use crate::providers::common::usage_with_cache;
use crate::providers::errors::is_context_overflow;
use crate::providers::native::{random_id, u64_at};
use crate::providers::unix_now;

/// A Converse `stopReason` as an OpenAI `finish_reason`.
pub fn finish_reason(stop: Option<&str>, has_tool_calls: bool) -> &'static str {
    match stop {
        Some("tool_use") => "tool_calls",
        Some("max_tokens" | "model_context_window_exceeded") => "length",
        Some("guardrail_intervened" | "content_filtered") => "content_filter",
        // end_turn, stop_sequence, malformed_*; and a model that called tools but said
        // end_turn still asks for tool results.
        _ if has_tool_calls => "tool_calls",
        _ => "stop",
    }
}

/// Converse `usage` → OpenAI usage; cache reads and writes count as prompt tokens and are
/// reported as `cached_tokens` / `cache_write_tokens`.
pub fn usage_from(u: &Value) -> Usage {
    let cache_read = u64_at(u, "cacheReadInputTokens");
    let cache_write = u.get("cacheWriteInputTokens").and_then(Value::as_u64);
    let prompt = u64_at(u, "inputTokens") + cache_read + cache_write.unwrap_or(0);
    usage_with_cache(
        prompt,
        u64_at(u, "outputTokens"),
        Some(cache_read),
        cache_write,
    )
}

pub fn from_converse(target: &Target, body: &[u8]) -> Result<ChatResponse, ApiError> {
    let v: Value = serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_gateway(format!(
            "bedrock returned an invalid Converse response: {e}"
        ))
    })?;
    let blocks = v
        .pointer("/output/message/content")
        .and_then(Value::as_array)
        .ok_or_else(|| {
            ApiError::bad_gateway("bedrock returned a Converse response without `output.message`")
        })?;
    let mut text: Option<String> = None;
    let mut calls = Vec::new();
    for block in blocks {
        if let Some(t) = block.get("text").and_then(Value::as_str) {
            text.get_or_insert_with(String::new).push_str(t);
        } else if let Some(tu) = block.get("toolUse") {
            let input = tu
                .get("input")
                .cloned()
                .unwrap_or(Value::Object(Map::new()));
            calls.push(ToolCall {
                custom: None,
                id: tu
                    .get("toolUseId")
                    .and_then(Value::as_str)
                    .map_or_else(|| random_id("call_"), str::to_string),
                kind: function_type(),
                function: FunctionCall {
                    name: tu
                        .get("name")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string(),
                    arguments: input.to_string(),
                },
            });
        }
        // reasoningContent, citations, images: not part of the OpenAI message.
    }
    let finish = finish_reason(
        v.get("stopReason").and_then(Value::as_str),
        !calls.is_empty(),
    );
    Ok(ChatResponse {
        id: random_id("chatcmpl-"),
        object: "chat.completion".to_string(),
        created: unix_now(),
        model: target.model.clone(),
        choices: vec![Choice {
            index: 0,
            message: Message {
                role: Role::Assistant,
                content: text.map(Content::Text),
                tool_calls: (!calls.is_empty()).then_some(calls),
                ..Message::default()
            },
            finish_reason: Some(finish.to_string()),
            logprobs: None,
            extra: Map::new(),
        }],
        usage: v.get("usage").map(usage_from),
        x_keeptrusts: None,
        extra: Map::new(),
    })
}

/// A non-2xx Converse answer. `kind` is the `x-amzn-ErrorType` header when there is one.
pub fn parse_error(status: u16, kind: Option<&str>, body: &[u8]) -> ApiError {
    let v: Option<Value> = serde_json::from_slice(body).ok();
    let message = v
        .as_ref()
        .and_then(|v| v.get("message").or_else(|| v.get("Message")))
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| {
            let text = String::from_utf8_lossy(body).trim().to_string();
            if text.is_empty() {
                format!("bedrock returned HTTP {status}")
            } else {
                text.chars().take(2000).collect()
            }
        });
    let kind = kind.or_else(|| {
        v.as_ref()
            .and_then(|v| v.get("__type").or_else(|| v.get("code")))
            .and_then(Value::as_str)
    });
    error_for(kind, status, message)
}

/// An error of a given AWS type (`ThrottlingException`, `throttlingException`, or the
/// header form `ThrottlingException:http://…`); unknown types fall back on `status`.
pub fn error_for(kind: Option<&str>, status: u16, message: String) -> ApiError {
    // Forms: `Name`, `Name:namespace-url` (the header), `namespace#Name` (`__type`).
    let kind = kind
        .and_then(|k| k.split(':').next())
        .and_then(|k| k.rsplit('#').next())
        .map(|k| k.trim().to_ascii_lowercase())
        .unwrap_or_default();
    let name = kind.trim_end_matches("exception");
    let invalid = "invalid_request_error";
    let mut e = match name {
        "validation" => {
            let lower = message.to_ascii_lowercase();
            let code = (is_context_overflow(&lower)
                || lower.contains("too many input tokens")
                || lower.contains("context window"))
            .then_some("context_length_exceeded");
            ApiError::new(400, invalid, code, message)
        }
        "accessdenied" => ApiError::new(403, invalid, Some("access_denied"), message),
        "unrecognizedclient"
        | "invalidsignature"
        | "incompletesignature"
        | "expiredtoken"
        | "missingauthenticationtoken"
        | "invalidclienttokenid" => ApiError::new(401, invalid, Some("invalid_api_key"), message),
        "resourcenotfound" => ApiError::new(404, invalid, Some("model_not_found"), message),
        "throttling" | "servicequotaexceeded" | "toomanyrequests" => ApiError::new(
            429,
            "rate_limit_error",
            Some("rate_limit_exceeded"),
            message,
        ),
        "modelnotready" => {
            let mut e = ApiError::new(503, "server_error", Some("model_not_ready"), message);
            e.retry_after = Some(1.0);
            e
        }
        "serviceunavailable" => {
            let mut e = ApiError::new(503, "server_error", Some("service_unavailable"), message);
            e.retry_after = Some(1.0);
            e
        }
        "internalserver" => ApiError::new(500, "server_error", None, message),
        "modeltimeout" => ApiError::upstream_timeout(message),
        "modelerror" | "modelstreamerror" => ApiError::bad_gateway(message),
        _ => match status {
            400 => ApiError::new(400, invalid, None, message),
            401 => ApiError::unauthorized(message),
            403 => ApiError::new(403, invalid, Some("access_denied"), message),
            404 => ApiError::new(404, invalid, Some("model_not_found"), message),
            408 => ApiError::upstream_timeout(message),
            424 => ApiError::bad_gateway(message),
            429 => ApiError::new(
                429,
                "rate_limit_error",
                Some("rate_limit_exceeded"),
                message,
            ),
            s if s >= 500 => ApiError::new(s, "server_error", None, message),
            s => ApiError::new(s, "api_error", None, message),
        },
    };
    if e.body.message.is_empty() {
        e.body.message = format!("bedrock returned HTTP {status}");
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::bedrock::tests::target;
    use serde_json::json;

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(format!(
            "{}/testdata/providers/bedrock/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    }

    #[test]
    fn tool_use_response_matches_the_fixture() {
        let resp = from_converse(&target(""), &fixture("response_tool_use.json")).unwrap();
        let c = &resp.choices[0];
        assert_eq!(c.finish_reason.as_deref(), Some("tool_calls"));
        assert_eq!(
            c.message.content,
            Some(Content::Text("Let me check.".into()))
        );
        let call = &c.message.tool_calls.as_ref().unwrap()[0];
        assert_eq!(call.id, "tooluse_kZJMlvQmRJ6eAyJE5GIl7Q");
        assert_eq!(call.function.name, "get_weather");
        assert_eq!(call.function.arguments, r#"{"city":"Paris","unit":"c"}"#);
        let u = resp.usage.unwrap();
        assert_eq!(
            (u.prompt_tokens, u.completion_tokens, u.total_tokens),
            (432, 40, 472)
        );
        assert_eq!(
            u.extra["prompt_tokens_details"],
            json!({"cached_tokens": 32, "cache_write_tokens": 0})
        );
        assert_eq!(resp.model, "us.anthropic.claude-3-7-sonnet-20250219-v1:0");
        assert!(resp.id.starts_with("chatcmpl-"));
    }

    #[test]
    fn stop_reasons() {
        assert_eq!(finish_reason(Some("end_turn"), false), "stop");
        assert_eq!(finish_reason(Some("stop_sequence"), false), "stop");
        assert_eq!(finish_reason(Some("end_turn"), true), "tool_calls");
        assert_eq!(finish_reason(Some("max_tokens"), true), "length");
        assert_eq!(
            finish_reason(Some("model_context_window_exceeded"), false),
            "length"
        );
        assert_eq!(
            finish_reason(Some("guardrail_intervened"), false),
            "content_filter"
        );
        assert_eq!(
            finish_reason(Some("content_filtered"), false),
            "content_filter"
        );
        assert_eq!(finish_reason(Some("malformed_tool_use"), false), "stop");
    }

    #[test]
    fn errors_map_to_openai_statuses() {
        // (status, x-amzn-ErrorType, body, OpenAI status, OpenAI code)
        type Case<'a> = (u16, Option<&'a str>, &'a str, u16, Option<&'a str>);
        let cases: &[Case] = &[
            (
                400,
                Some("ValidationException:http://internal.amazon.com/coral/com.amazon.bedrock/"),
                r#"{"message":"Input is too long for requested model."}"#,
                400,
                Some("context_length_exceeded"),
            ),
            (
                400,
                Some("ValidationException"),
                r#"{"message":"bad field"}"#,
                400,
                None,
            ),
            (
                429,
                Some("ThrottlingException"),
                r#"{"message":"Too many requests"}"#,
                429,
                Some("rate_limit_exceeded"),
            ),
            (
                429,
                Some("ModelNotReadyException"),
                r#"{"message":"warming"}"#,
                503,
                Some("model_not_ready"),
            ),
            (503, None, r#"{"message":"unavailable"}"#, 503, None),
            (
                403,
                Some("AccessDeniedException"),
                r#"{"message":"no access"}"#,
                403,
                Some("access_denied"),
            ),
            (
                403,
                Some("UnrecognizedClientException"),
                r#"{"message":"The security token included in the request is invalid."}"#,
                401,
                Some("invalid_api_key"),
            ),
            (
                404,
                None,
                r#"{"__type":"ResourceNotFoundException","message":"no model"}"#,
                404,
                Some("model_not_found"),
            ),
            (
                408,
                Some("ModelTimeoutException"),
                r#"{"message":"slow"}"#,
                504,
                Some("upstream_timeout"),
            ),
            (
                424,
                Some("ModelErrorException"),
                r#"{"message":"model failed"}"#,
                502,
                Some("bad_upstream_response"),
            ),
            (500, Some("InternalServerException"), "", 500, None),
        ];
        for (status, kind, body, want_status, want_code) in cases {
            let e = parse_error(*status, *kind, body.as_bytes());
            assert_eq!(e.status, *want_status, "{kind:?} {body}");
            assert_eq!(e.code_str(), *want_code, "{kind:?} {body}");
            assert!(!e.body.message.is_empty());
        }
        let e = parse_error(500, None, b"");
        assert!(e.body.message.contains("500"), "{}", e.body.message);
        assert_eq!(
            error_for(Some("throttlingException"), 200, "slow".into()).status,
            429
        );
    }
}
