//! The official `openai` Python SDK → kt → a mock that speaks Anthropic's Messages API.
//!
//! The mock checks every request it receives (path, headers, body shape) and answers with
//! the recorded-style fixtures in `testdata/providers/anthropic/`; a failed check answers
//! 418 so the SDK script fails loudly. After the script, the recorded requests are checked
//! once more for the translations each scenario exercises.

use std::time::Duration;

use serde_json::{json, Value};

use crate::support::*;

const MODEL: &str = "claude-sonnet-4-5";

fn fixture(name: &str) -> String {
    std::fs::read_to_string(repo().join("testdata/providers/anthropic").join(name)).unwrap()
}

/// The scenario a request asks for: the word after `scenario:` in its body.
pub fn scenario(r: &Received) -> String {
    let body = String::from_utf8_lossy(&r.body);
    body.split("scenario:")
        .nth(1)
        .map(|s| {
            s.chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
                .collect()
        })
        .unwrap_or_default()
}

/// An SSE reply made of a fixture's events.
pub fn sse_fixture(text: &str) -> MockReply {
    MockReply::Sse {
        events: text.split_inclusive("\n\n").map(str::to_string).collect(),
        delay: Duration::from_millis(2),
        close_early: false,
    }
}

fn anthropic_error(
    status: u16,
    kind: &str,
    message: &str,
    headers: Vec<(String, String)>,
) -> MockReply {
    MockReply::Json(
        status,
        json!({"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_up_1"})
            .to_string(),
        headers,
    )
}

/// What every request must look like, whatever the scenario.
fn check_common(r: &Received) -> Result<(), String> {
    let body = r.json();
    let want = |ok: bool, what: &str| if ok { Ok(()) } else { Err(what.to_string()) };
    want(
        r.method == "POST" && r.path == "/v1/messages",
        "POST /v1/messages",
    )?;
    want(
        r.header("x-api-key") == Some("sk-ant-configured"),
        "x-api-key",
    )?;
    want(
        r.header("anthropic-version") == Some("2023-06-01"),
        "anthropic-version",
    )?;
    want(
        r.header("authorization").is_none(),
        "no authorization header",
    )?;
    want(
        r.header("content-type")
            .is_some_and(|c| c.starts_with("application/json")),
        "content-type",
    )?;
    want(body["model"] == MODEL, "model")?;
    want(
        body["max_tokens"].as_u64().is_some_and(|n| n > 0),
        "max_tokens",
    )?;
    let turns = body["messages"].as_array().ok_or("messages")?;
    want(!turns.is_empty(), "messages not empty")?;
    for (i, t) in turns.iter().enumerate() {
        want(
            t["role"] == "user" || t["role"] == "assistant",
            "roles are user/assistant",
        )?;
        if i > 0 {
            want(t["role"] != turns[i - 1]["role"], "roles alternate")?;
        }
    }
    for key in [
        "n",
        "seed",
        "stream_options",
        "response_format",
        "tool_choice",
    ] {
        if key == "tool_choice" && body.get("tools").is_some() {
            continue;
        }
        want(body.get(key).is_none(), key)?;
    }
    Ok(())
}

fn reply(r: &Received) -> MockReply {
    if let Err(what) = check_common(r) {
        return anthropic_error(
            418,
            "invalid_request_error",
            &format!("mock check failed: {what}"),
            vec![],
        );
    }
    let stream = r.json()["stream"] == true;
    match (scenario(r).as_str(), stream) {
        ("chat", false) => MockReply::json(
            200,
            json!({"id": "msg_chat", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5-20250929",
                   "content": [{"type": "text", "text": "Hello from Claude"}],
                   "stop_reason": "end_turn", "stop_sequence": null,
                   "usage": {"input_tokens": 10, "cache_creation_input_tokens": 2, "cache_read_input_tokens": 5, "output_tokens": 4}}),
        ),
        ("chat", true) => sse_fixture(&fixture("stream.text.sse")),
        ("tools", false) => MockReply::Json(200, fixture("response.tool_use.json"), vec![]),
        ("tools", true) => sse_fixture(&fixture("stream.tool_use.sse")),
        ("toolresult" | "image", false) => MockReply::json(
            200,
            json!({"id": "msg_x", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5-20250929",
                   "content": [{"type": "text", "text": "Rome is warmer."}],
                   "stop_reason": "end_turn", "usage": {"input_tokens": 50, "output_tokens": 5}}),
        ),
        ("json", false) => MockReply::Json(200, fixture("response.json_mode.json"), vec![]),
        ("json", true) => sse_fixture(&fixture("stream.json_mode.sse")),
        ("ratelimit", _) => anthropic_error(
            429,
            "rate_limit_error",
            "Number of request tokens has exceeded your per-minute rate limit",
            vec![("retry-after".into(), "1".into())],
        ),
        ("overloaded", _) => anthropic_error(529, "overloaded_error", "Overloaded", vec![]),
        ("toolong", _) => anthropic_error(
            400,
            "invalid_request_error",
            "prompt is too long: 208310 tokens > 200000 maximum",
            vec![],
        ),
        ("badkey", _) => anthropic_error(401, "authentication_error", "invalid x-api-key", vec![]),
        ("midstream", true) => sse_fixture(&fixture("stream.error.sse")),
        (other, s) => anthropic_error(
            418,
            "invalid_request_error",
            &format!("mock check failed: no scenario `{other}` (stream {s})"),
            vec![],
        ),
    }
}

fn gateway(up: &MockUpstream) -> Gateway {
    // No gateway retries: the SDK's own retry of a 429 is under test.
    let yaml = format!(
        "pack: {{name: anthropic-sdk}}\nproviders:\n  retry: {{attempts: 1}}\n  targets:\n    - id: claude\n      provider: anthropic\n      model: {MODEL}\n      base_url: '{}'\n      secret_key_ref: {{env: TEST_ANTHROPIC_KEY}}\npolicies:\n  chain: [audit-logger]\n",
        up.v1()
    );
    Gateway::start_with(
        Some(&yaml),
        &[],
        &[("TEST_ANTHROPIC_KEY", "sk-ant-configured")],
    )
}

fn sent(up: &MockUpstream, name: &str) -> Vec<Value> {
    up.requests()
        .iter()
        .filter(|r| scenario(r) == name)
        .map(Received::json)
        .collect()
}

#[test]
fn openai_sdk_through_kt_to_anthropic() {
    let up = MockUpstream::start(reply);
    let gw = gateway(&up);
    let out = run_python(
        "sdk_anthropic.py",
        &gw.base_url(),
        &[("KT_TEST_MODEL", MODEL)],
    );
    assert!(out.contains("ALL OK"), "{out}");

    // Plain chat: the system prompt is lifted, the default max_tokens is set.
    let chat = sent(&up, "chat");
    let plain = chat.iter().find(|b| b.get("stream").is_none()).unwrap();
    assert_eq!(
        plain["system"],
        json!([{"type": "text", "text": "You are terse."}])
    );
    assert_eq!(plain["max_tokens"], 32000);
    assert_eq!(plain["stop_sequences"], json!(["END"]));
    assert_eq!(plain["temperature"], 1.0);
    let streamed = chat.iter().filter(|b| b["stream"] == true).count();
    assert!(streamed >= 2, "{chat:?}");

    // Tools: definitions, the named choice and max_completion_tokens.
    for b in sent(&up, "tools") {
        assert_eq!(b["tools"][0]["name"], "get_weather");
        assert_eq!(b["tools"][0]["input_schema"]["required"], json!(["city"]));
        assert_eq!(b["tool_choice"], json!({"type": "any"}));
        assert_eq!(b["max_tokens"], 300);
    }

    // Tool results: one user turn, results first, assistant tool_use blocks before it.
    let tr = &sent(&up, "toolresult")[0];
    let turns = tr["messages"].as_array().unwrap();
    assert_eq!(turns.len(), 3, "{tr}");
    assert_eq!(
        turns[1]["content"][0],
        json!({"type": "tool_use", "id": "toolu_01A", "name": "get_weather", "input": {"city": "Paris"}})
    );
    assert_eq!(turns[1]["content"][1]["input"], json!({"city": "Rome"}));
    assert_eq!(
        turns[2]["content"][0],
        json!({"type": "tool_result", "tool_use_id": "toolu_01A", "content": "{\"temp_c\": 21}"})
    );
    assert_eq!(turns[2]["content"][1]["tool_use_id"], "toolu_01B");

    // Images: base64 data URL and plain URL.
    let img = &sent(&up, "image")[0];
    let blocks = &img["messages"][0]["content"];
    assert_eq!(
        blocks[1],
        json!({"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgoAAAANSUhEUg=="}})
    );
    assert_eq!(
        blocks[2],
        json!({"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}})
    );

    // JSON mode: the synthetic tool, forced.
    for b in sent(&up, "json") {
        assert_eq!(
            b["tool_choice"],
            json!({"type": "tool", "name": "kt_json_response"})
        );
        assert_eq!(
            b["tools"][0]["input_schema"]["required"],
            json!(["city", "temp_c"])
        );
    }

    // The SDK retried the 429 once (max_retries=1), after the forwarded retry-after.
    assert_eq!(
        sent(&up, "ratelimit").len(),
        1 + 2,
        "one call without a retry, one with one"
    );
}

#[test]
fn anthropic_errors_and_streams_seen_by_a_plain_http_client() {
    let up = MockUpstream::start(reply);
    let gw = gateway(&up);
    let url = format!("{}/chat/completions", gw.base_url());
    let ask = |text: &str| json!({"model": MODEL, "messages": [{"role": "user", "content": text}]});

    let (status, headers, body) = post_json(&url, &ask("scenario:ratelimit"), &[]);
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"]["code"], "rate_limit_exceeded");
    assert_eq!(find_header(&headers, "retry-after"), Some("1"));
    assert_eq!(find_header(&headers, "retry-after-ms"), Some("1000"));

    let (status, _, body) = post_json(&url, &ask("scenario:overloaded"), &[]);
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["type"], "server_error");
    assert_eq!(body["error"]["message"], "Overloaded");

    // The deprecated function calling has no Anthropic form: a 400 naming it, not a
    // request whose functions the model would never see.
    let mut legacy = ask("scenario:chat");
    legacy["functions"] = json!([{"name": "get_weather", "parameters": {"type": "object"}}]);
    let (status, _, body) = post_json(&url, &legacy, &[]);
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["param"], "functions");
    assert_eq!(
        body["error"]["message"],
        "the deprecated `functions` parameter cannot be sent to Anthropic; use `tools` and `tool_choice`"
    );
    let mut custom = ask("scenario:chat");
    custom["tools"] = json!([{"type": "custom", "custom": {"name": "code_exec"}}]);
    let (status, _, body) = post_json(&url, &custom, &[]);
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["param"], "tools");
    assert_eq!(
        body["error"]["message"],
        "tools[0]: tools of type `custom` cannot be sent to Anthropic; only `function` tools can"
    );

    // Streaming with no include_usage: the usage chunk is not passed on.
    let mut req = ask("scenario:chat");
    req["stream"] = json!(true);
    let (status, arrivals) = post_stream(&url, &req);
    assert_eq!(status, 200);
    let data: Vec<&str> = arrivals.iter().map(|a| a.data.as_str()).collect();
    assert_eq!(data.last(), Some(&"[DONE]"));
    let chunks: Vec<Value> = data
        .iter()
        .filter(|d| **d != "[DONE]")
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    assert!(chunks
        .iter()
        .all(|c| c["object"] == "chat.completion.chunk" && c["id"] == "msg_01T"));
    assert!(
        chunks
            .iter()
            .all(|c| c.get("usage").is_none_or(Value::is_null)),
        "{chunks:?}"
    );
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, "Bonjour, ça va? 🌍");

    // The event records the provider and the token counts the stream reported.
    let events = gw.events(5);
    let ev = events.iter().find(|e| e["stream"] == true).unwrap();
    assert_eq!(ev["provider"], "anthropic");
    assert_eq!(ev["total_tokens"], 44);
}
