//! The official `openai` Python SDK → kt → a mock that speaks Cohere's v2 chat API.
//!
//! Same shape as `providers_anthropic`: the mock checks each request and answers with the
//! fixtures in `testdata/providers/cohere/` (418 on a failed check), then the recorded
//! requests are checked for what each scenario exercises.

use serde_json::{json, Value};

use crate::providers_anthropic::{scenario, sse_fixture};
use crate::support::*;

const MODEL: &str = "command-a-03-2025";

fn fixture(name: &str) -> String {
    std::fs::read_to_string(repo().join("testdata/providers/cohere").join(name)).unwrap()
}

fn cohere_error(status: u16, message: &str, headers: Vec<(String, String)>) -> MockReply {
    MockReply::Json(
        status,
        json!({"id": "err-1", "message": message}).to_string(),
        headers,
    )
}

fn text_reply(text: &str) -> MockReply {
    MockReply::json(
        200,
        json!({"id": "chat-1", "finish_reason": "COMPLETE",
               "message": {"role": "assistant", "content": [{"type": "text", "text": text}]},
               "usage": {"billed_units": {"input_tokens": 3, "output_tokens": 4},
                         "tokens": {"input_tokens": 12, "output_tokens": 4}}}),
    )
}

/// What every request must look like, whatever the scenario.
fn check_common(r: &Received) -> Result<(), String> {
    let body = r.json();
    let want = |ok: bool, what: &str| if ok { Ok(()) } else { Err(what.to_string()) };
    want(r.method == "POST" && r.path == "/v2/chat", "POST /v2/chat")?;
    want(
        r.header("authorization") == Some("Bearer co-configured"),
        "authorization",
    )?;
    want(
        r.header("content-type")
            .is_some_and(|c| c.starts_with("application/json")),
        "content-type",
    )?;
    want(body["model"] == MODEL, "model")?;
    want(body["stream"].is_boolean(), "stream is a boolean")?;
    let messages = body["messages"].as_array().ok_or("messages")?;
    for m in messages {
        let role = m["role"].as_str().unwrap_or("");
        want(
            ["system", "user", "assistant", "tool"].contains(&role),
            "roles",
        )?;
    }
    for key in [
        "n",
        "user",
        "logit_bias",
        "stream_options",
        "top_p",
        "max_completion_tokens",
        "logprobs",
        "parallel_tool_calls",
    ] {
        want(body.get(key).is_none(), key)?;
    }
    if body.get("tool_choice").is_some() {
        want(body.get("tools").is_some(), "tool_choice only with tools")?;
    }
    Ok(())
}

fn reply(r: &Received) -> MockReply {
    if let Err(what) = check_common(r) {
        return cohere_error(418, &format!("mock check failed: {what}"), vec![]);
    }
    let stream = r.json()["stream"] == true;
    match (scenario(r).as_str(), stream) {
        ("chat", false) => text_reply("Hello from Cohere"),
        ("chat", true) => sse_fixture(&fixture("stream.text.sse")),
        ("tools", false) => MockReply::Json(200, fixture("response.tool_call.json"), vec![]),
        ("tools", true) => sse_fixture(&fixture("stream.tool_call.sse")),
        ("toolresult" | "image", false) => text_reply("Rome is warmer."),
        ("json", false) => MockReply::Json(200, fixture("response.json.json"), vec![]),
        ("json", true) => sse_fixture(&fixture("stream.json.sse")),
        ("ratelimit", _) => cohere_error(
            429,
            "You are using a Trial key, which is limited to 10 API calls / minute.",
            vec![("retry-after".into(), "1".into())],
        ),
        ("overloaded", _) => cohere_error(503, "service unavailable, please try again", vec![]),
        ("toolong", _) => cohere_error(
            400,
            "too many tokens: the total number of tokens in the prompt exceeds the limit of 128000",
            vec![],
        ),
        ("badkey", _) => cohere_error(401, "invalid api token", vec![]),
        ("midstream", true) => sse_fixture(&fixture("stream.error.sse")),
        (other, s) => cohere_error(
            418,
            &format!("mock check failed: no scenario `{other}` (stream {s})"),
            vec![],
        ),
    }
}

fn sent(up: &MockUpstream, name: &str) -> Vec<Value> {
    up.requests()
        .iter()
        .filter(|r| scenario(r) == name)
        .map(Received::json)
        .collect()
}

#[test]
fn openai_sdk_through_kt_to_cohere() {
    let up = MockUpstream::start(reply);
    // No gateway retries: the SDK's own retry of a 429 is under test.
    let yaml = format!(
        "pack: {{name: cohere-sdk}}\nproviders:\n  retry: {{attempts: 1}}\n  targets:\n    - id: command\n      provider: cohere\n      model: {MODEL}\n      base_url: '{}/v2'\n      secret_key_ref: {{env: TEST_COHERE_KEY}}\npolicies:\n  chain: [audit-logger]\n",
        up.url
    );
    let gw = Gateway::start_with(Some(&yaml), &[], &[("TEST_COHERE_KEY", "co-configured")]);
    let out = run_python("sdk_cohere.py", &gw.base_url(), &[("KT_TEST_MODEL", MODEL)]);
    assert!(out.contains("ALL OK"), "{out}");

    let chat = sent(&up, "chat");
    let plain = chat.iter().find(|b| b["stream"] == false).unwrap();
    assert_eq!(
        plain["messages"][0],
        json!({"role": "system", "content": "You are terse."})
    );
    assert_eq!(plain["stop_sequences"], json!(["END", "\n"]));
    assert_eq!(plain["seed"], 7);
    assert_eq!(plain["temperature"], 1.5);
    assert!(plain.get("max_tokens").is_none());

    for b in sent(&up, "tools") {
        assert_eq!(b["tool_choice"], "REQUIRED");
        assert_eq!(b["max_tokens"], 300);
        assert_eq!(
            b["tools"][0]["function"]["parameters"]["required"],
            json!(["city"])
        );
        assert_eq!(
            b["tools"][1]["function"]["parameters"],
            json!({"type": "object", "properties": {}})
        );
    }

    let tr = &sent(&up, "toolresult")[0];
    let msgs = tr["messages"].as_array().unwrap();
    assert_eq!(msgs[2]["role"], "assistant");
    assert_eq!(
        msgs[2]["tool_calls"][0],
        json!({"id": "get_weather_1byjy32y4hvq", "type": "function",
               "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}})
    );
    assert!(msgs[2].get("content").is_none());
    assert_eq!(
        msgs[3],
        json!({"role": "tool", "tool_call_id": "get_weather_1byjy32y4hvq", "content": "{\"temp_c\": 21}"})
    );
    assert_eq!(msgs[4]["tool_call_id"], "get_time_9ab");

    let img = &sent(&up, "image")[0];
    assert_eq!(
        img["messages"][0]["content"][1],
        json!({"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgoAAAANSUhEUg==", "detail": "low"}})
    );
    assert_eq!(
        img["messages"][0]["content"][2]["image_url"]["url"],
        "https://example.com/cat.jpg"
    );

    for b in sent(&up, "json") {
        assert_eq!(b["response_format"]["type"], "json_object");
        assert_eq!(
            b["response_format"]["json_schema"]["required"],
            json!(["city", "temp_c"])
        );
        assert!(b.get("tools").is_none());
    }

    assert_eq!(
        sent(&up, "ratelimit").len(),
        1 + 2,
        "one call without a retry, one with one"
    );
    let events = gw.events(10);
    assert!(
        events.iter().all(|e| e["provider"] == "cohere"),
        "{events:?}"
    );
}
