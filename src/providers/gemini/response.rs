//! Gemini `GenerateContentResponse` → OpenAI: candidates, finish reasons, usage, tool-call
//! ids, blocked prompts.
//!
//! Gemini rarely names its function calls, so kt makes ids that are stable for one
//! response: `call_` + 24 hex digits of SHA-256 over the response id, the candidate and the
//! call's position. A `thoughtSignature` (Gemini 2.5/3) rides along in the id after
//! `__thought__`, so a client that sends the history back sends it back too.

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::config::Target;
use crate::openai::{
    function_type, ApiError, ChatResponse, Choice, Content, FunctionCall, Message, Role, ToolCall,
    Usage,
};
use crate::providers::common::usage_with_cache;
use crate::providers::native::{hex, random_id, u64_at};
use crate::providers::unix_now;

/// Separates a tool-call id from the Gemini thought signature folded into it.
pub const THOUGHT_SEPARATOR: &str = "__thought__";

/// A function call's OpenAI id: Gemini's own when it sent one, else derived from `seed`.
pub fn tool_call_id(seed: &str, candidate: u32, ordinal: u32, part: &Value) -> String {
    let given = part
        .pointer("/functionCall/id")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty());
    let base = match given {
        Some(id) => id.to_string(),
        None => {
            let digest = Sha256::digest(format!("{seed}\n{candidate}\n{ordinal}").as_bytes());
            format!("call_{}", hex(digest.get(..12).unwrap_or_default()))
        }
    };
    match part.get("thoughtSignature").and_then(Value::as_str) {
        Some(sig) if !sig.is_empty() => format!("{base}{THOUGHT_SEPARATOR}{sig}"),
        _ => base,
    }
}

/// `(name, arguments as a JSON string)` of a `functionCall` part.
pub fn function_call(part: &Value) -> Option<(String, String)> {
    let call = part.get("functionCall")?;
    let name = call.get("name").and_then(Value::as_str)?.to_string();
    let args = match call.get("args") {
        Some(v @ Value::Object(_)) => v.to_string(),
        _ => "{}".to_string(),
    };
    Some((name, args))
}

/// The visible text of a part (thought summaries are not part of the answer).
pub fn part_text(part: &Value) -> Option<&str> {
    if part.get("thought").and_then(Value::as_bool) == Some(true) {
        return None;
    }
    part.get("text").and_then(Value::as_str)
}

/// A Gemini `finishReason` as an OpenAI `finish_reason`.
pub fn finish_reason(reason: &str, has_tool_calls: bool) -> &'static str {
    match reason {
        "MAX_TOKENS" => "length",
        // RECITATION counts as filtering: the answer was withheld, not finished.
        "SAFETY" | "RECITATION" | "PROHIBITED_CONTENT" | "SPII" | "BLOCKLIST" | "IMAGE_SAFETY"
        | "LANGUAGE" => "content_filter",
        // STOP even when it called functions; MALFORMED_FUNCTION_CALL, OTHER, unknown.
        _ if has_tool_calls => "tool_calls",
        _ => "stop",
    }
}

/// `usageMetadata` → OpenAI usage. Tool-use prompt tokens count as prompt tokens; thought
/// tokens count as completion tokens (`reasoning_tokens`) unless the candidate count
/// already includes them.
pub fn usage_from(m: &Value) -> Usage {
    let prompt = u64_at(m, "promptTokenCount");
    let candidates = u64_at(m, "candidatesTokenCount");
    let thoughts = u64_at(m, "thoughtsTokenCount");
    let tool_prompt = u64_at(m, "toolUsePromptTokenCount");
    let total = u64_at(m, "totalTokenCount");
    let inclusive = thoughts > 0 && total > 0 && prompt + candidates + tool_prompt == total;
    let completion = if inclusive {
        candidates
    } else {
        candidates + thoughts
    };
    let mut u = usage_with_cache(
        prompt + tool_prompt,
        completion,
        Some(u64_at(m, "cachedContentTokenCount")),
        None,
    );
    u.extra.insert(
        "completion_tokens_details".into(),
        serde_json::json!({ "reasoning_tokens": thoughts }),
    );
    u
}

/// The error for a prompt Gemini refused to answer (`promptFeedback.blockReason`).
pub fn blocked_prompt(v: &Value) -> Option<ApiError> {
    let has_candidates = v
        .get("candidates")
        .and_then(Value::as_array)
        .is_some_and(|c| !c.is_empty());
    let reason = v
        .pointer("/promptFeedback/blockReason")
        .and_then(Value::as_str)?;
    if has_candidates {
        return None;
    }
    let detail = v
        .pointer("/promptFeedback/blockReasonMessage")
        .and_then(Value::as_str)
        .map(|m| format!(": {m}"))
        .unwrap_or_default();
    Some(
        ApiError::new(
            400,
            "invalid_request_error",
            Some("content_filter"),
            format!("gemini blocked the prompt (block reason `{reason}`){detail}"),
        )
        .not_retryable(),
    )
}

/// A candidate's position: its `index` (absent for 0 in proto3 JSON), else its place.
pub fn candidate_index(c: &Value, position: usize) -> u32 {
    c.get("index")
        .and_then(Value::as_u64)
        .and_then(|i| u32::try_from(i).ok())
        .unwrap_or_else(|| u32::try_from(position).unwrap_or(u32::MAX))
}

pub fn parse_response(target: &Target, body: &[u8]) -> Result<ChatResponse, ApiError> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_gateway(format!("gemini returned an invalid response: {e}")))?;
    if let Some(e) = blocked_prompt(&v) {
        return Err(e);
    }
    let seed = v
        .get("responseId")
        .and_then(Value::as_str)
        .map_or_else(|| random_id(""), str::to_string);
    let mut choices = Vec::new();
    for (pos, c) in v
        .get("candidates")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let index = candidate_index(c, pos);
        let mut text: Option<String> = None;
        let mut calls = Vec::new();
        for part in c
            .pointer("/content/parts")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some((name, arguments)) = function_call(part) {
                let ordinal = u32::try_from(calls.len()).unwrap_or(u32::MAX);
                calls.push(ToolCall {
                    custom: None,
                    id: tool_call_id(&seed, index, ordinal, part),
                    kind: function_type(),
                    function: FunctionCall { name, arguments },
                });
            } else if let Some(t) = part_text(part) {
                text.get_or_insert_with(String::new).push_str(t);
            }
        }
        let reason = c
            .get("finishReason")
            .and_then(Value::as_str)
            .unwrap_or("STOP");
        choices.push(Choice {
            index,
            finish_reason: Some(finish_reason(reason, !calls.is_empty()).to_string()),
            message: Message {
                role: Role::Assistant,
                content: text.map(Content::Text),
                tool_calls: (!calls.is_empty()).then_some(calls),
                ..Message::default()
            },
            logprobs: None,
            extra: Map::new(),
        });
    }
    if choices.is_empty() {
        return Err(ApiError::bad_gateway(
            "gemini returned no candidates and no block reason",
        ));
    }
    Ok(ChatResponse {
        id: format!("chatcmpl-{seed}"),
        object: "chat.completion".to_string(),
        created: unix_now(),
        model: v
            .get("modelVersion")
            .and_then(Value::as_str)
            .map_or_else(|| target.model.clone(), str::to_string),
        choices,
        usage: v.get("usageMetadata").map(usage_from),
        x_keeptrusts: None,
        extra: Map::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::gemini::tests::target;
    use serde_json::json;

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(format!(
            "{}/testdata/providers/gemini/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    }

    #[test]
    fn function_call_response_matches_the_fixture() {
        let resp = parse_response(&target(""), &fixture("response_tool_call.json")).unwrap();
        assert_eq!(resp.id, "chatcmpl-Ua1aZ8rXK-mOqtsP8pWf8Qg");
        assert_eq!(resp.model, "gemini-2.5-flash");
        let c = &resp.choices[0];
        // Gemini said STOP; a function call makes it tool_calls.
        assert_eq!(c.finish_reason.as_deref(), Some("tool_calls"));
        assert_eq!(
            c.message.content,
            Some(Content::Text("Checking both.".into()))
        );
        let calls = c.message.tool_calls.as_ref().unwrap();
        assert_eq!(calls.len(), 2);
        assert_eq!(calls[0].function.name, "get_weather");
        assert_eq!(calls[0].function.arguments, r#"{"city":"Paris"}"#);
        assert_eq!(calls[1].function.arguments, "{}");
        let (id0, sig) = calls[0].id.split_once(THOUGHT_SEPARATOR).unwrap();
        assert!(id0.starts_with("call_") && id0.len() == 29, "{id0}");
        assert_eq!(sig, "CsYBAdHtim9EXAMPLE==");
        assert!(!calls[1].id.contains(THOUGHT_SEPARATOR));
        assert_ne!(id0, calls[1].id);
        // Stable: the same response gives the same ids.
        let again = parse_response(&target(""), &fixture("response_tool_call.json")).unwrap();
        assert_eq!(again.choices[0].message.tool_calls, c.message.tool_calls);
        let u = resp.usage.unwrap();
        assert_eq!(
            (u.prompt_tokens, u.completion_tokens, u.total_tokens),
            (120, 42, 162)
        );
        assert_eq!(
            u.extra["completion_tokens_details"],
            json!({"reasoning_tokens": 30})
        );
        assert_eq!(
            u.extra["prompt_tokens_details"],
            json!({"cached_tokens": 100})
        );
    }

    #[test]
    fn several_candidates_and_finish_reasons() {
        let body = json!({"candidates": [
            {"content": {"role": "model", "parts": [{"text": "a", "thought": true}, {"text": "one"}]}, "finishReason": "STOP"},
            {"index": 1, "content": {"role": "model", "parts": [{"text": "tw"}]}, "finishReason": "MAX_TOKENS"},
            {"index": 2, "finishReason": "SAFETY"}
        ]});
        let resp = parse_response(&target(""), body.to_string().as_bytes()).unwrap();
        let got: Vec<(u32, Option<String>, Option<&str>)> = resp
            .choices
            .iter()
            .map(|c| {
                (
                    c.index,
                    c.message.content.as_ref().map(Content::text),
                    c.finish_reason.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (0, Some("one".into()), Some("stop")),
                (1, Some("tw".into()), Some("length")),
                (2, None, Some("content_filter"))
            ]
        );
        assert_eq!(resp.model, "gemini-2.5-flash-lite");
        assert!(resp.usage.is_none());
    }

    #[test]
    fn blocked_prompt_is_a_clear_error() {
        let e = parse_response(&target(""), &fixture("response_blocked.json")).unwrap_err();
        assert_eq!(e.status, 400);
        assert_eq!(e.code_str(), Some("content_filter"));
        assert!(e.body.message.contains("`SAFETY`"), "{}", e.body.message);
        assert_eq!(parse_response(&target(""), b"{}").unwrap_err().status, 502);
        assert_eq!(
            parse_response(&target(""), b"nope").unwrap_err().status,
            502
        );
    }

    #[test]
    fn thoughts_are_not_counted_twice() {
        let separate = json!({"promptTokenCount": 10, "candidatesTokenCount": 5, "thoughtsTokenCount": 7, "totalTokenCount": 22});
        assert_eq!(usage_from(&separate).completion_tokens, 12);
        let inclusive = json!({"promptTokenCount": 10, "candidatesTokenCount": 12, "thoughtsTokenCount": 7, "totalTokenCount": 22});
        assert_eq!(usage_from(&inclusive).completion_tokens, 12);
        let tools = json!({"promptTokenCount": 10, "toolUsePromptTokenCount": 3, "candidatesTokenCount": 2, "totalTokenCount": 15});
        let u = usage_from(&tools);
        assert_eq!(
            (u.prompt_tokens, u.completion_tokens, u.total_tokens),
            (13, 2, 15)
        );
    }

    #[test]
    fn finish_reasons() {
        assert_eq!(finish_reason("STOP", false), "stop");
        assert_eq!(finish_reason("STOP", true), "tool_calls");
        assert_eq!(finish_reason("MAX_TOKENS", true), "length");
        for r in [
            "SAFETY",
            "RECITATION",
            "PROHIBITED_CONTENT",
            "SPII",
            "BLOCKLIST",
            "IMAGE_SAFETY",
            "LANGUAGE",
        ] {
            assert_eq!(finish_reason(r, false), "content_filter", "{r}");
        }
        assert_eq!(finish_reason("MALFORMED_FUNCTION_CALL", false), "stop");
        assert_eq!(finish_reason("OTHER", false), "stop");
    }
}
