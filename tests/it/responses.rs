//! `POST /v1/responses`: the official openai SDK's `responses.create` / `responses.stream`
//! through kt, translated to chat completions for an OpenAI-format upstream and for an
//! Anthropic one, with function calls, policy blocks and the recorded events.

use serde_json::{json, Value};

use crate::support::*;

/// A content value's text: a string, or its parts' `text` (or `content`) joined.
fn text_of(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .map(|p| {
                p.get("text")
                    .map(text_of)
                    .or_else(|| p.get("content").map(text_of))
                    .unwrap_or_default()
            })
            .collect(),
        _ => String::new(),
    }
}

/// What the script expects for a prompt (see tests/python/sdk_responses.py).
fn answer_for(prompt: &str) -> String {
    if prompt.contains("leak") {
        "card 4111 1111 1111 1111".to_string()
    } else {
        format!("echo: {prompt}")
    }
}

fn openai_chat_mock() -> MockUpstream {
    MockUpstream::start(|r| {
        let body = r.json();
        let messages = body["messages"].as_array().cloned().unwrap_or_default();
        let last = messages.last().cloned().unwrap_or(Value::Null);
        let usage = json!({"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10});
        let message = if last["role"] == "tool" {
            json!({"role": "assistant", "content": format!("It is {} in Paris.", text_of(&last["content"]))})
        } else if body["tools"].is_array() {
            json!({"role": "assistant", "content": null, "tool_calls": [{"id": "call_w1", "type": "function",
                "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]})
        } else {
            json!({"role": "assistant", "content": answer_for(&text_of(&last["content"]))})
        };
        let finish = if message["tool_calls"].is_array() {
            "tool_calls"
        } else {
            "stop"
        };
        MockReply::json(
            200,
            json!({"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4o",
                "choices": [{"index": 0, "message": message, "finish_reason": finish}], "usage": usage}),
        )
    })
}

fn anthropic_mock() -> MockUpstream {
    MockUpstream::start(|r| {
        if r.path != "/v1/messages" {
            return MockReply::json(418, json!({"error": format!("unexpected path {}", r.path)}));
        }
        let body = r.json();
        let messages = body["messages"].as_array().cloned().unwrap_or_default();
        let last = messages.last().cloned().unwrap_or(Value::Null);
        let result = last["content"]
            .as_array()
            .and_then(|parts| parts.iter().find(|p| p["type"] == "tool_result").cloned());
        let (content, stop) = if let Some(res) = result {
            (
                json!([{"type": "text", "text": format!("It is {} in Paris.", text_of(&res["content"]))}]),
                "end_turn",
            )
        } else if body["tools"].is_array() {
            (
                json!([{"type": "tool_use", "id": "toolu_w1", "name": "get_weather", "input": {"city": "Paris"}}]),
                "tool_use",
            )
        } else {
            (
                json!([{"type": "text", "text": answer_for(&text_of(&last["content"]))}]),
                "end_turn",
            )
        };
        MockReply::json(
            200,
            json!({"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
                "content": content, "stop_reason": stop, "stop_sequence": null,
                "usage": {"input_tokens": 7, "output_tokens": 3}}),
        )
    })
}

fn gateway(target: &str) -> Gateway {
    let yaml = format!(
        "pack: {{name: responses}}\nproviders:\n  retry: {{attempts: 1}}\n  targets:\n{target}\npolicies:\n  chain: [pii-detector, audit-logger]\npolicy:\n  pii-detector: {{action: block}}\n"
    );
    Gateway::start_with(
        Some(&yaml),
        &[],
        &[("TEST_ANTHROPIC_KEY", "sk-ant-configured")],
    )
}

/// Checks the events the script's requests left: kind, endpoint, verdicts.
fn check_events(gw: &Gateway) {
    // 7 answered requests + 4 blocks.
    let events = gw.events(11);
    assert!(events
        .iter()
        .all(|e| e["kind"] == "responses" && e["endpoint"] == "/v1/responses"));
    let blocked: Vec<&Value> = events.iter().filter(|e| e["status"] == 409).collect();
    assert_eq!(blocked.len(), 4, "{events:#?}");
    assert!(blocked
        .iter()
        .all(|e| e["verdict"] == "block" && e["blocked_by"] == "pii-detector"));
    assert!(events
        .iter()
        .any(|e| e["stream"] == true && e["status"] == 200));
}

#[test]
fn openai_sdk_responses_through_an_openai_chat_upstream() {
    let up = openai_chat_mock();
    let gw = gateway(&format!(
        "    - {{id: a, provider: openai, model: gpt-4o, base_url: '{}'}}",
        up.v1()
    ));
    let out = run_python(
        "sdk_responses.py",
        &gw.base_url(),
        &[("KT_TEST_MODEL", "gpt-4o"), ("KT_CALL_ID", "call_w1")],
    );
    assert!(out.contains("ALL OK"), "{out}");
    let reqs = up.requests();
    // `instructions` became the system message; the upstream was called as chat.
    let first = reqs[0].json();
    assert_eq!(reqs[0].path, "/v1/chat/completions");
    assert_eq!(
        first["messages"][0],
        json!({"role": "system", "content": "Be terse."})
    );
    // The tool round trip became an assistant tool call and a tool message.
    let round = reqs
        .iter()
        .map(Received::json)
        .find(|b| {
            b["messages"]
                .as_array()
                .is_some_and(|m| m.iter().any(|m| m["role"] == "tool"))
        })
        .unwrap();
    assert_eq!(round["tools"][0]["function"]["name"], "get_weather");
    assert_eq!(round["messages"][1]["tool_calls"][0]["id"], "call_w1");
    assert_eq!(round["messages"][2]["tool_call_id"], "call_w1");
    // The input block never reached the upstream: 2 blocks are on input.
    assert!(reqs
        .iter()
        .all(|r| !String::from_utf8_lossy(&r.body).contains("4111")));
    check_events(&gw);
}

#[test]
fn openai_sdk_responses_through_an_anthropic_upstream() {
    let up = anthropic_mock();
    let gw = gateway(&format!(
        "    - id: claude\n      provider: anthropic\n      model: claude-sonnet-4-5\n      base_url: '{}'\n      secret_key_ref: {{env: TEST_ANTHROPIC_KEY}}",
        up.v1()
    ));
    let out = run_python(
        "sdk_responses.py",
        &gw.base_url(),
        &[
            ("KT_TEST_MODEL", "claude-sonnet-4-5"),
            ("KT_CALL_ID", "toolu_w1"),
        ],
    );
    assert!(out.contains("ALL OK"), "{out}");
    let first = up.requests()[0].json();
    assert_eq!(text_of(&first["system"]), "Be terse.");
    check_events(&gw);
}

#[test]
fn responses_errors_are_400s_naming_the_parameter() {
    let up = openai_chat_mock();
    let gw = gateway(&format!(
        "    - {{id: a, provider: openai, model: gpt-4o, base_url: '{}'}}",
        up.v1()
    ));
    let url = format!("{}/responses", gw.base_url());
    let (status, _, body) = post_json(&url, &json!({"model": "gpt-4o"}), &[]);
    assert_eq!(status, 400);
    assert_eq!(body["error"]["param"], "input");
    let (status, _, body) = post_json(
        &url,
        &json!({"model": "gpt-4o", "input": "hi", "previous_response_id": "resp_1"}),
        &[],
    );
    assert_eq!(status, 400);
    assert_eq!(body["error"]["param"], "previous_response_id");
    assert_eq!(up.count(), 0);
}
