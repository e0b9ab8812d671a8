//! The official `openai` Python SDK through kt to a fake Gemini that speaks the native
//! Generative Language API (generateContent, streamGenerateContent?alt=sse) and checks
//! what it receives.

use std::time::Duration;

use serde_json::{json, Value};

use crate::support::*;

const KEY: &str = "gm-test-key";
const MODEL: &str = "gemini-2.5-flash";

/// The text of the last `user` content's text parts.
fn last_user_text(body: &Value) -> String {
    body["contents"]
        .as_array()
        .and_then(|c| c.iter().rev().find(|c| c["role"] == "user"))
        .and_then(|c| c["parts"].as_array())
        .map(|parts| {
            parts
                .iter()
                .filter_map(|p| p["text"].as_str())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

fn usage(prompt: u64, candidates: u64) -> Value {
    json!({"promptTokenCount": prompt, "candidatesTokenCount": candidates, "totalTokenCount": prompt + candidates})
}

fn error(status: u16, code: &str, message: &str, details: Value) -> MockReply {
    MockReply::json(
        status,
        json!({"error": {"code": status, "message": message, "status": code, "details": details}}),
    )
}

/// One answer as whole candidates parts, for both protocols: the unary body, or SSE events
/// (text split by word, then the rest, then finishReason + usage), CRLF separated.
fn answer(stream: bool, parts: Vec<Value>, finish: &str) -> MockReply {
    let done = json!({"candidates": [{"content": {"role": "model", "parts": parts.clone()}, "finishReason": finish, "index": 0}],
        "usageMetadata": usage(11, 7), "modelVersion": "gemini-2.5-flash-001", "responseId": "resp-it-1"});
    if !stream {
        return MockReply::json(200, done);
    }
    let mut events = Vec::new();
    let frame = |parts: Value, extra: Value| {
        let mut c = json!({"content": {"role": "model", "parts": parts}, "index": 0});
        if let Some(o) = extra.as_object() {
            for (k, v) in o {
                c[k] = v.clone();
            }
        }
        let ev = json!({"candidates": [c], "usageMetadata": usage(11, 3), "modelVersion": "gemini-2.5-flash-001", "responseId": "resp-it-1"});
        format!("data: {ev}\r\n\r\n")
    };
    for p in &parts {
        match p["text"].as_str() {
            Some(text) => {
                for w in text.split_inclusive(' ') {
                    events.push(frame(json!([{ "text": w }]), json!({})));
                }
            }
            None => events.push(frame(json!([p]), json!({}))),
        }
    }
    let last = json!({"candidates": [{"content": {"role": "model", "parts": []}, "finishReason": finish, "index": 0}],
        "usageMetadata": usage(11, 7), "modelVersion": "gemini-2.5-flash-001", "responseId": "resp-it-1"});
    events.push(format!("data: {last}\r\n\r\n"));
    MockReply::Sse {
        events,
        delay: Duration::from_millis(2),
        close_early: false,
    }
}

/// What a Gemini endpoint would answer, keyed on the prompt.
fn fake_gemini(r: &Received) -> MockReply {
    let body = r.json();
    let stream = r.path.ends_with(":streamGenerateContent?alt=sse");
    let path_ok = r.path == format!("/v1beta/models/{MODEL}:generateContent")
        || r.path == format!("/v1beta/models/{MODEL}:streamGenerateContent?alt=sse");
    if r.method != "POST" || !path_ok {
        return error(
            404,
            "NOT_FOUND",
            &format!("unexpected {} {}", r.method, r.path),
            json!([]),
        );
    }
    if r.header("x-goog-api-key") != Some(KEY) || r.header("authorization").is_some() {
        return error(401, "UNAUTHENTICATED", "wrong auth headers", json!([]));
    }
    let text = last_user_text(&body);
    let last_parts = body["contents"]
        .as_array()
        .and_then(|c| c.last())
        .map(|c| c["parts"].clone())
        .unwrap_or(Value::Null);
    if text.contains("trigger-429") {
        return error(
            429,
            "RESOURCE_EXHAUSTED",
            "Resource has been exhausted (e.g. check quota).",
            json!([{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "17s"}]),
        );
    }
    if text.contains("trigger-bad-key") {
        return error(
            400,
            "INVALID_ARGUMENT",
            "API key not valid. Please pass a valid API key.",
            json!([{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}]),
        );
    }
    if text.contains("trigger-too-long") {
        return error(
            400,
            "INVALID_ARGUMENT",
            "The input token count (2000000) exceeds the maximum number of tokens allowed (1048576).",
            json!([]),
        );
    }
    if text.contains("trigger-blocked") {
        let blocked = json!({"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}, "usageMetadata": usage(5, 0)});
        if stream {
            return MockReply::Sse {
                events: vec![format!("data: {blocked}\r\n\r\n")],
                delay: Duration::ZERO,
                close_early: false,
            };
        }
        return MockReply::json(200, blocked);
    }
    if text.contains("trigger-unsafe-answer") {
        return answer(stream, vec![json!({"text": "I cannot "})], "SAFETY");
    }
    // A tool result came back: answer with it.
    if let Some(fr) = last_parts
        .as_array()
        .and_then(|p| p.iter().find(|p| p.get("functionResponse").is_some()))
    {
        let r = &fr["functionResponse"];
        return answer(
            stream,
            vec![
                json!({"text": format!("{} says {}", r["name"].as_str().unwrap_or("?"), r["response"])}),
            ],
            "STOP",
        );
    }
    if body["tools"].is_array() {
        let mut calls = vec![
            json!({"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}, "thoughtSignature": "c2lnLXBhcmlz"}),
        ];
        if text.contains("two cities") {
            calls.push(json!({"functionCall": {"name": "get_weather", "args": {"city": "Tokyo", "unit": "c"}}}));
        }
        let mut parts = vec![json!({"text": "Checking."})];
        parts.extend(calls);
        return answer(stream, parts, "STOP");
    }
    if body.pointer("/generationConfig/responseMimeType") == Some(&json!("application/json")) {
        return answer(
            stream,
            vec![json!({"text": "{\"answer\": \"Paris\"}"})],
            "STOP",
        );
    }
    let media: Vec<String> = body["contents"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|c| c["parts"].as_array().cloned().unwrap_or_default())
        .filter_map(|p| {
            if let Some(d) = p.get("inlineData") {
                Some(format!("inline {}", d["mimeType"].as_str().unwrap_or("")))
            } else {
                p.get("fileData")
                    .map(|f| format!("file {}", f["fileUri"].as_str().unwrap_or("")))
            }
        })
        .collect();
    if !media.is_empty() {
        return answer(
            stream,
            vec![json!({"text": format!("saw {}", media.join(", "))})],
            "STOP",
        );
    }
    answer(
        stream,
        vec![json!({"text": format!("echo {text}")})],
        "STOP",
    )
}

#[test]
fn openai_sdk_through_kt_to_gemini() {
    let up = MockUpstream::start(fake_gemini);
    let yaml = format!(
        "pack: {{name: gem}}\nproviders:\n  targets:\n    - {{id: g, provider: gemini, model: {MODEL}, base_url: '{}/v1beta'}}\n",
        up.url
    );
    let gw = Gateway::start_with(Some(&yaml), &[], &[("GEMINI_API_KEY", KEY)]);
    let out = run_python("sdk_gemini.py", &gw.base_url(), &[]);
    assert!(out.contains("ALL OK"), "{out}");

    let reqs = up.requests();
    assert!(reqs.len() >= 10, "{}", reqs.len());
    for r in &reqs {
        // The configured key goes to Gemini; the client's key never does.
        assert_eq!(r.header("x-goog-api-key"), Some(KEY));
        assert_eq!(r.header("authorization"), None);
        assert_eq!(r.header("content-type"), Some("application/json"));
        let body = r.json();
        assert!(body["contents"].is_array(), "{body}");
        for key in [
            "model",
            "messages",
            "stream",
            "stream_options",
            "n",
            "max_tokens",
        ] {
            assert!(body.get(key).is_none(), "`{key}` leaked into {body}");
        }
    }
    let find = |needle: &str| {
        reqs.iter()
            .find(|r| last_user_text(&r.json()).contains(needle))
            .unwrap_or_else(|| panic!("no request with {needle}"))
            .json()
    };
    // Plain chat: system instruction, generation config.
    let chat = find("hello gemini");
    assert_eq!(
        chat["systemInstruction"],
        json!({"parts": [{"text": "You are terse."}]})
    );
    assert_eq!(chat["contents"][0]["role"], "user");
    assert_eq!(chat["generationConfig"]["maxOutputTokens"], 64);
    assert_eq!(chat["generationConfig"]["temperature"], 0.3);
    assert_eq!(chat["generationConfig"]["stopSequences"], json!(["END"]));
    // Streaming went to the SSE endpoint.
    assert!(reqs
        .iter()
        .any(|r| r.path.ends_with(":streamGenerateContent?alt=sse")
            && last_user_text(&r.json()).contains("stream me")));
    // Tools: declarations and the forced mode.
    let tools = find("weather in Paris");
    assert_eq!(
        tools["tools"][0]["functionDeclarations"][0]["name"],
        "get_weather"
    );
    assert!(tools["tools"][0]["functionDeclarations"][0]["parametersJsonSchema"].is_object());
    assert_eq!(
        tools["toolConfig"],
        json!({"functionCallingConfig": {"mode": "ANY"}})
    );
    // The tool round trip: a model turn with the call (and its thought signature), then a
    // functionResponse with the name looked up from the call id.
    let round = reqs
        .iter()
        .map(Received::json)
        .find(|b| b["contents"].as_array().is_some_and(|c| c.len() == 3))
        .expect("a request with the tool result");
    assert_eq!(round["contents"][1]["role"], "model");
    assert_eq!(
        round["contents"][1]["parts"][1],
        json!({"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}, "thoughtSignature": "c2lnLXBhcmlz"})
    );
    assert_eq!(
        round["contents"][2]["parts"][0],
        json!({"functionResponse": {"name": "get_weather", "response": {"temp_c": 21}}})
    );
    // Images: inline data and a file URI.
    let image = find("describe these");
    assert_eq!(
        image["contents"][0]["parts"][1],
        json!({"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}})
    );
    assert_eq!(
        image["contents"][0]["parts"][2],
        json!({"fileData": {"mimeType": "image/jpeg", "fileUri": "https://example.com/cat.jpg"}})
    );
    // JSON modes.
    let schema = find("json schema please");
    assert_eq!(
        schema["generationConfig"]["responseMimeType"],
        "application/json"
    );
    assert_eq!(
        schema["generationConfig"]["responseJsonSchema"]["required"],
        json!(["answer"])
    );
    let n = find("two candidates");
    assert_eq!(n["generationConfig"]["candidateCount"], 2);
}
