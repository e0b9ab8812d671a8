//! Azure OpenAI through kt: the deployment URL form (with `api-version`) and the `/openai/v1`
//! form, the `api-key` header, and Azure's errors reaching the client in OpenAI's shape.

use std::time::Duration;

use serde_json::{json, Value};

use crate::support::*;

fn completion() -> Value {
    json!({"id": "chatcmpl-az", "object": "chat.completion", "created": 1, "model": "gpt-4o-2024-08-06",
           "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi from azure"}, "finish_reason": "stop"}],
           "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}})
}

fn reply(r: &Received) -> MockReply {
    let body = r.json();
    if body["messages"][0]["content"] == "throttle" {
        return MockReply::Json(
            429,
            json!({"error": {"code": "429", "message": "Requests to the ChatCompletions_Create Operation have exceeded call rate limit."}}).to_string(),
            vec![("retry-after-ms".into(), "1500".into())],
        );
    }
    if body["stream"] == true {
        let mk = |delta: Value, finish: Option<&str>| json!({"id": "chatcmpl-az", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]});
        return MockReply::openai_sse(
            &[
                // Azure sends a first chunk with no choices (prompt filter results).
                json!({"id": "", "object": "", "created": 0, "model": "", "choices": [], "prompt_filter_results": []}),
                mk(json!({"role": "assistant", "content": ""}), None),
                mk(json!({"content": "hi"}), None),
                mk(json!({}), Some("stop")),
                json!({"id": "chatcmpl-az", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o", "choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6}}),
            ],
            Duration::from_millis(1),
        );
    }
    MockReply::json(200, completion())
}

fn gateway(target: &str) -> Gateway {
    let yaml = format!("pack: {{name: azure}}\nproviders:\n  targets:\n    - {target}\n");
    Gateway::start_with(Some(&yaml), &[], &[("TEST_AZURE_KEY", "az-configured")])
}

#[test]
fn deployment_url_form_sends_api_version_and_api_key() {
    let up = MockUpstream::start(reply);
    let gw = gateway(&format!(
        "{{id: az, provider: azure-openai, model: gpt4o-prod, api_version: '2024-10-21', base_url: '{}', secret_key_ref: {{env: TEST_AZURE_KEY}}}}",
        up.url
    ));
    let url = format!("{}/chat/completions", gw.base_url());
    let (status, _, body) = post_json(
        &url,
        &json!({"model": "gpt4o-prod", "messages": [{"role": "user", "content": "hi"}]}),
        &[("Authorization", "Bearer sk-client")],
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["choices"][0]["message"]["content"], "hi from azure");
    assert_eq!(body["x_keeptrusts"]["provider_used"], "azure-openai");
    let r = &up.requests()[0];
    assert_eq!(
        r.path,
        "/openai/deployments/gpt4o-prod/chat/completions?api-version=2024-10-21"
    );
    assert_eq!(r.header("api-key"), Some("az-configured"));
    assert_eq!(r.header("authorization"), None);

    // Streaming: the choice-less first chunk does not break the stream, usage is passed
    // on when asked.
    let (status, arrivals) = post_stream(
        &url,
        &json!({"model": "gpt4o-prod", "messages": [{"role": "user", "content": "hi"}], "stream": true,
                "stream_options": {"include_usage": true}}),
    );
    assert_eq!(status, 200);
    let data: Vec<&str> = arrivals.iter().map(|a| a.data.as_str()).collect();
    assert_eq!(data.last(), Some(&"[DONE]"));
    let chunks: Vec<Value> = data[..data.len() - 1]
        .iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, "hi");
    assert!(
        chunks
            .iter()
            .all(|c| c["object"] == "chat.completion.chunk" && c["id"] == "chatcmpl-az"),
        "{chunks:?}"
    );
    assert_eq!(
        chunks.iter().filter(|c| !c["usage"].is_null()).count(),
        1,
        "{chunks:?}"
    );
    assert_eq!(
        up.requests()[1].json()["stream_options"]["include_usage"],
        true
    );

    // Throttling: 429, the retry hint kept, OpenAI's code.
    let (status, headers, body) = post_json(
        &url,
        &json!({"model": "gpt4o-prod", "messages": [{"role": "user", "content": "throttle"}]}),
        &[],
    );
    assert_eq!(status, 429, "{body}");
    assert_eq!(find_header(&headers, "retry-after-ms"), Some("1500"));
    assert_eq!(find_header(&headers, "retry-after"), Some("2"));
    assert_eq!(body["error"]["code"], "rate_limit_exceeded");
}

#[test]
fn v1_url_form_needs_no_api_version() {
    let up = MockUpstream::start(reply);
    let gw = gateway(&format!(
        "{{id: az, provider: azure-openai, model: gpt-4o-mini, base_url: '{}/openai/v1/', secret_key_ref: {{env: TEST_AZURE_KEY}}}}",
        up.url
    ));
    let (status, _, body) = post_json(
        &format!("{}/chat/completions", gw.base_url()),
        &json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}),
        &[],
    );
    assert_eq!(status, 200, "{body}");
    let r = &up.requests()[0];
    assert_eq!(r.path, "/openai/v1/chat/completions");
    assert_eq!(r.header("api-key"), Some("az-configured"));
    assert_eq!(r.json()["model"], "gpt-4o-mini");
}
