//! The official `openai` Python SDK against kt (installed by `.ci/run`).

use std::time::Duration;

use serde_json::json;

use crate::support::*;

/// OpenAI's stream of `text`, a word per chunk `gap` apart, then the finish reason and
/// the usage chunk (3 + 2 tokens).
fn word_stream(text: &str, gap: Duration) -> MockReply {
    let mk = |delta: serde_json::Value, finish: Option<&str>| json!({"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]});
    let mut chunks = vec![mk(json!({"role": "assistant", "content": ""}), None)];
    for w in text.split_inclusive(' ') {
        chunks.push(mk(json!({"content": w}), None));
    }
    chunks.push(mk(json!({}), Some("stop")));
    chunks.push(json!({"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o", "choices": [],
                       "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}}));
    MockReply::openai_sse(&chunks, gap)
}

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
            return word_stream(&text, Duration::from_millis(5));
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

/// The official `openai` Node SDK (tests/node, the version its lock file pins) against the
/// sandbox: catalogue, chat, streams (whole, abandoned part-way, the streaming helper),
/// concurrency, tools run by the SDK, structured output, policy blocks, errors,
/// embeddings and the Responses API.
#[test]
fn openai_node_sdk_against_the_sandbox() {
    let gw = Gateway::start(None);
    let out = run_node("sdk_sandbox.js", &gw.base_url(), &[]);
    assert!(out.contains("ALL OK"), "{out}");
    let events = gw.events(30);
    assert!(
        events.iter().any(|e| e["status"] == 409),
        "no blocked request recorded: {events:?}"
    );
}

/// The Node SDK through kt to an OpenAI-format upstream: the provider's answer as sent,
/// a stream arriving as the upstream sends it, tool calls both ways, upstream errors with
/// their status and headers; the SDK's key and headers reach the upstream and the event.
#[test]
fn openai_node_sdk_against_an_openai_upstream() {
    const GAP_MS: u64 = 150;
    let up = MockUpstream::start(|r| {
        let body = r.json();
        let model = body["model"].as_str().unwrap_or("").to_string();
        let last = &body["messages"][body["messages"]
            .as_array()
            .map_or(0, Vec::len)
            .saturating_sub(1)];
        let text = last["content"].as_str().unwrap_or("").to_string();
        let usage = json!({"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5});
        match model.as_str() {
            "rate-limited" => {
                return MockReply::Json(
                    429,
                    json!({"error": {"message": "slow down", "type": "requests", "code": "rate_limit_exceeded"}}).to_string(),
                    vec![("retry-after".into(), "7".into())],
                );
            }
            "broken" => {
                return MockReply::json(
                    500,
                    json!({"error": {"message": "upstream fell over", "type": "server_error"}}),
                );
            }
            _ => {}
        }
        if body["stream"] == true {
            return word_stream(&text, Duration::from_millis(GAP_MS));
        }
        let message = if body["tools"].is_array() && last["role"] == "user" {
            json!({"role": "assistant", "content": null, "refusal": null,
                   "tool_calls": [{"id": "call_9", "type": "function", "function": {"name": "get_account_balance", "arguments": "{\"account_id\":\"AC-1234\"}"}}]})
        } else {
            json!({"role": "assistant", "content": format!("echo {text}"), "refusal": null})
        };
        let finish = if message["tool_calls"].is_array() {
            "tool_calls"
        } else {
            "stop"
        };
        MockReply::json(
            200,
            json!({"id": "c3", "object": "chat.completion", "created": 1, "model": model, "system_fingerprint": "fp_mock",
                   "choices": [{"index": 0, "finish_reason": finish, "logprobs": null, "message": message}], "usage": usage}),
        )
    });
    let target = |id: &str, model: &str| {
        format!(
            "    - {{id: {id}, provider: openai, model: {model}, base_url: '{}'}}\n",
            up.v1()
        )
    };
    let yaml = format!(
        "pack: {{name: node}}\nproviders:\n  strategy: single\n  targets:\n{}{}{}policies:\n  chain: [audit-logger]\n",
        target("main", "gpt-4o"),
        target("limited", "rate-limited"),
        target("broken", "broken"),
    );
    let gw = Gateway::start(Some(&yaml));
    let gap = GAP_MS.to_string();
    let out = run_node(
        "sdk_upstream.js",
        &gw.base_url(),
        &[("STREAM_GAP_MS", &gap)],
    );
    assert!(out.contains("ALL OK"), "{out}");
    let requests = up.requests();
    assert!(
        requests.iter().all(
            |r| r.header("authorization") == Some("Bearer sk-node-passthrough")
                && r.header("openai-organization") == Some("org-node")
                && r.header("openai-project") == Some("proj_node")
        ),
        "the SDK's key and account were not passed through"
    );
    // Six requests: chat, stream, two tool turns, the 429 and the 500.
    let events = gw.events(6);
    assert!(
        events
            .iter()
            .any(|e| e["request_source"] == "node-sdk-test" && e["correlation_id"] == "corr-node"),
        "the SDK's headers are not on the events: {events:?}"
    );
}

/// A tiktoken cache holding `cl100k_base`, for Python's tiktoken on a machine that reaches
/// no OpenAI host: the file is written back from the ranks kt itself decodes with
/// (tiktoken-rs), byte for byte the published one (tiktoken checks its SHA-256), under
/// the name tiktoken gives it: the SHA-1 of its URL,
/// `https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken`.
fn tiktoken_cache() -> std::path::PathBuf {
    use base64::Engine;
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("tiktoken");
    let file = dir.join("9b5ad71b2ce5302211f9c61530b329a4922fc6a4");
    if !file.exists() {
        let bpe = tiktoken_rs::cl100k_base_singleton();
        let mut text = String::new();
        for rank in 0..100_256u32 {
            let bytes = bpe.decode_bytes(&[rank]).unwrap();
            text.push_str(&base64::engine::general_purpose::STANDARD.encode(bytes));
            text.push(' ');
            text.push_str(&rank.to_string());
            text.push('\n');
        }
        std::fs::create_dir_all(&dir).unwrap();
        let tmp = dir.join(format!("tmp-{}", std::process::id()));
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, &file).unwrap();
    }
    dir
}

/// LangChain's `ChatOpenAI` and `OpenAIEmbeddings` (langchain-openai) against the
/// sandbox; its embeddings send token ids, which kt reads as their text.
#[test]
fn langchain_against_the_sandbox() {
    let gw = Gateway::start(None);
    let cache = tiktoken_cache();
    let out = run_python(
        "langchain_sandbox.py",
        &gw.base_url(),
        &[("TIKTOKEN_CACHE_DIR", cache.to_str().unwrap())],
    );
    assert!(out.contains("ALL OK"), "{out}");
}
