//! The official `openai` Python SDK against kt (installed by `.ci/run`).

use std::time::Duration;

use serde_json::json;

use crate::support::*;

/// The upstream answers as OpenAI does (`logprobs`, `refusal`), so the SDK parses the
/// provider's bytes as kt passes them on, `x_keeptrusts` added.
#[test]
fn openai_python_sdk_against_an_openai_upstream() {
    let up = MockUpstream::start(|r| {
        let body = r.json();
        let text = body["messages"][0]["content"]
            .as_str()
            .unwrap_or("")
            .to_string();
        if body["stream"] == true {
            let mk = |delta: serde_json::Value, finish: Option<&str>| json!({"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]});
            let mut chunks = vec![mk(json!({"role": "assistant", "content": ""}), None)];
            for w in text.split_inclusive(' ') {
                chunks.push(mk(json!({"content": w}), None));
            }
            chunks.push(mk(json!({}), Some("stop")));
            chunks.push(json!({"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o", "choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}}));
            return MockReply::openai_sse(&chunks, Duration::from_millis(5));
        }
        if body["tools"].is_array() {
            return MockReply::json(
                200,
                json!({"id": "c2", "object": "chat.completion", "created": 1, "model": "gpt-4o",
                "choices": [{"index": 0, "finish_reason": "tool_calls", "logprobs": null, "message": {"role": "assistant", "content": null, "refusal": null,
                  "tool_calls": [{"id": "call_9", "type": "function", "function": {"name": "get_account_balance", "arguments": "{\"account_id\":\"AC-1234\"}"}}]}}],
                "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}}),
            );
        }
        MockReply::json(
            200,
            json!({"id": "c3", "object": "chat.completion", "created": 1, "model": "gpt-4o",
            "choices": [{"index": 0, "finish_reason": "stop", "logprobs": null, "message": {"role": "assistant", "content": format!("echo {text}"), "refusal": null}}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}}),
        )
    });
    let yaml = format!(
        "pack: {{name: sdk}}\nproviders:\n  targets:\n    - {{id: a, provider: openai, model: gpt-4o, base_url: '{}'}}\npolicies:\n  chain: [audit-logger]\n",
        up.v1()
    );
    let gw = Gateway::start(Some(&yaml));
    let out = run_python("sdk_basics.py", &gw.base_url(), &[]);
    assert!(out.contains("ALL OK"), "{out}");
    // The SDK's key was passed through to the upstream.
    assert_eq!(
        up.requests()[0].header("authorization"),
        Some("Bearer sk-test-passthrough")
    );
}

#[test]
fn openai_python_sdk_against_the_sandbox() {
    let gw = Gateway::start(None);
    let out = run_python("sdk_sandbox.py", &gw.base_url(), &[]);
    assert!(out.contains("ALL OK"), "{out}");
}
