//! Pass-through for `openai:responses:<model>` targets: the upstream request is the
//! client's own Responses body (after the input phase) with the target's model, and the
//! upstream's `response` is read only for what kt checks and records — the chat view the
//! output phase reads (whose rewrites go back with `write_back`) and the usage.

use serde_json::Value;

use super::{Origin, Place};
use crate::openai::{
    ApiError, ChatResponse, Choice, Content, ContentPart, CustomCall, FunctionCall, Message, Role,
    ToolCall, Usage,
};
use crate::providers::{BuildContext, UpstreamRequest};

/// The request to an `openai:responses:<model>` target: the client's Responses body as
/// sent (after the input phase's redactions), with the target's model, to
/// `<base_url>/responses`.
pub fn native_request(ctx: BuildContext<'_>, body: &Value) -> Result<UpstreamRequest, ApiError> {
    let target = ctx.target;
    let mut body = body.clone();
    let stream = body.get("stream").and_then(Value::as_bool) == Some(true);
    match body.as_object_mut() {
        Some(o) => {
            o.insert("model".to_string(), Value::String(target.model.clone()));
        }
        None => {
            return Err(ApiError::bad_request(
                "The request body must be a JSON object.",
            ))
        }
    }
    let headers = ctx.json_headers(crate::providers::sse_if(stream), &[]);
    let body = serde_json::to_vec(&body)
        .map_err(|e| ApiError::internal(format!("failed to serialize the request: {e}")))?;
    Ok(UpstreamRequest {
        method: "POST",
        url: format!("{}/responses", target.base_url.trim_end_matches('/')),
        headers,
        body,
    })
}

/// The usage of a native `response` body, in chat terms.
pub fn native_usage(resp: &Value) -> Option<Usage> {
    let u = resp.get("usage").filter(|u| u.is_object())?;
    let n = |k: &str| u.get(k).and_then(Value::as_u64).unwrap_or(0);
    let mut usage = Usage::new(n("input_tokens"), n("output_tokens"));
    if let Some(t) = u.get("total_tokens").and_then(Value::as_u64) {
        usage.total_tokens = t;
    }
    Some(usage)
}

/// The chat view of a native `response` body: one assistant choice whose content parts
/// are the `output_text` (and `refusal`) parts of every message item, and whose tool
/// calls are the `function_call` and `custom_tool_call` items. Other items (reasoning,
/// built-in tool calls, run by the provider) have no text the output phase checks. With the origins, for `write_back` (message 0).
pub fn native_view(resp: &Value) -> (ChatResponse, Vec<Origin>) {
    let mut parts = Vec::new();
    let mut calls = Vec::new();
    let mut origins = Vec::new();
    let items = resp.get("output").and_then(Value::as_array);
    for (i, item) in items.into_iter().flatten().enumerate() {
        let s = |k: &str| item.get(k).and_then(Value::as_str).unwrap_or_default();
        match s("type") {
            "message" => {
                let content = item.get("content").and_then(Value::as_array);
                for (j, part) in content.into_iter().flatten().enumerate() {
                    let field = match part.get("type").and_then(Value::as_str) {
                        Some("output_text") => "text",
                        Some("refusal") => "refusal",
                        _ => continue,
                    };
                    let text = part.get(field).and_then(Value::as_str).unwrap_or_default();
                    origins.push(Origin {
                        message: 0,
                        place: Place::Part(parts.len()),
                        pointer: format!("/output/{i}/content/{j}/{field}"),
                        original: text.to_string(),
                    });
                    parts.push(ContentPart {
                        kind: "text".to_string(),
                        text: Some(text.to_string()),
                        ..ContentPart::default()
                    });
                }
            }
            kind @ ("function_call" | "custom_tool_call") => {
                // A function's JSON `arguments`, or a custom tool's free-text `input`.
                let custom = kind == "custom_tool_call";
                let field = if custom { "input" } else { "arguments" };
                origins.push(Origin {
                    message: 0,
                    place: Place::Arguments(calls.len()),
                    pointer: format!("/output/{i}/{field}"),
                    original: s(field).to_string(),
                });
                let (name, text) = (s("name").to_string(), s(field).to_string());
                let (function, custom_call) = if custom {
                    (
                        FunctionCall::default(),
                        Some(CustomCall { name, input: text }),
                    )
                } else {
                    let arguments = text;
                    (FunctionCall { name, arguments }, None)
                };
                calls.push(ToolCall {
                    id: s("call_id").to_string(),
                    kind: if custom { "custom" } else { "function" }.to_string(),
                    function,
                    custom: custom_call,
                });
            }
            _ => {}
        }
    }
    let finish_reason = match (
        resp.get("status").and_then(Value::as_str),
        resp.pointer("/incomplete_details/reason")
            .and_then(Value::as_str),
    ) {
        (Some("incomplete"), Some("max_output_tokens")) => "length",
        (Some("incomplete"), Some("content_filter")) => "content_filter",
        _ if !calls.is_empty() => "tool_calls",
        _ => "stop",
    };
    let chat = ChatResponse {
        id: resp
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        model: resp
            .get("model")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        choices: vec![Choice {
            index: 0,
            message: Message {
                role: Role::Assistant,
                content: Some(Content::Parts(parts)),
                tool_calls: (!calls.is_empty()).then_some(calls),
                ..Message::default()
            },
            finish_reason: Some(finish_reason.to_string()),
            ..Choice::default()
        }],
        usage: native_usage(resp),
        ..ChatResponse::default()
    };
    (chat, origins)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::responses::write_back;
    use serde_json::json;

    fn fixture(name: &str) -> Value {
        let path = format!("{}/testdata/responses/{name}", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    #[test]
    fn the_native_request_keeps_the_body_and_sets_the_target_model() {
        let yaml = "pack: {name: t}\nproviders:\n  targets:\n    - {id: r, provider: 'openai:responses:gpt-4.1', model: gpt-4.1, base_url: 'http://127.0.0.1:9/v1/', api_key_header: x-key, api_key_prefix: 'K ', headers: {x-team: a}}\n";
        let (config, _) = crate::config::load_str(yaml, std::path::Path::new("t.yaml")).unwrap();
        let target = &config.targets[0];
        assert!(target.is_responses_api());
        let body = fixture("request_native.json");
        let up = native_request(
            BuildContext {
                target,
                api_key: Some("sk-1"),
                account: &[],
                now: std::time::SystemTime::now(),
                raw_body: None,
            },
            &body,
        )
        .unwrap();
        assert_eq!(up.url, "http://127.0.0.1:9/v1/responses");
        let sent: Value = serde_json::from_slice(&up.body).unwrap();
        assert_eq!(sent["model"], "gpt-4.1");
        let mut expected = body.clone();
        expected["model"] = json!("gpt-4.1");
        assert_eq!(sent, expected);
        let h = |k: &str| {
            up.headers
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(h("x-key"), Some("K sk-1"));
        assert_eq!(h("x-team"), Some("a"));
        assert_eq!(h("Accept"), Some("text/event-stream"));
    }
    #[test]
    fn fixture_native_response_has_a_chat_view_and_takes_rewrites_back() {
        let body = fixture("native_response.json");
        let (mut chat, origins) = native_view(&body);
        let msg = &chat.choices[0].message;
        assert_eq!(
            msg.text_content(),
            "Your card: 4111 1111 1111 1111\nSee you."
        );
        let calls = msg.tool_calls.as_ref().unwrap();
        assert_eq!(calls[0].id, "call_n1");
        assert_eq!(calls[0].function.name, "get_weather");
        assert_eq!(chat.choices[0].finish_reason.as_deref(), Some("tool_calls"));
        assert_eq!(chat.usage, Some(Usage::new(11, 7)));
        // A redaction of the first part lands in `output[1].content[0].text` only.
        if let Some(Content::Parts(parts)) = &mut chat.choices[0].message.content {
            parts[0].text = Some("Your card: [CARD]".to_string());
        }
        // The part's token logprobs spell the card: they go with the rewrite.
        let mut body = body;
        body["output"][1]["content"][0]["logprobs"] = json!([{"token": "4111", "logprob": -0.1, "bytes": [52, 49, 49, 49], "top_logprobs": []}]);
        let mut out = body.clone();
        assert_eq!(
            write_back(&mut out, &[chat.choices[0].message.clone()], &origins),
            1
        );
        assert_eq!(out["output"][1]["content"][0]["text"], "Your card: [CARD]");
        assert_eq!(out["output"][1]["content"][0]["logprobs"], json!([]));
        out["output"][1]["content"][0]["text"] = body["output"][1]["content"][0]["text"].clone();
        out["output"][1]["content"][0]["logprobs"] =
            body["output"][1]["content"][0]["logprobs"].clone();
        assert_eq!(out, body, "nothing else changes, unknown fields included");
    }
}
