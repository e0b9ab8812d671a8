//! The official `openai` Python SDK through kt to a fake Bedrock Runtime that speaks
//! Converse / ConverseStream (binary event stream) and verifies each request's SigV4
//! signature itself, with an implementation independent of kt's.

use std::time::Duration;

use hmac::{Hmac, Mac};
use kt::providers::bedrock::eventstream::{encode, encode_event, HeaderValue};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::support::*;

const AKID: &str = "AKIDBEDROCKTEST";
const SECRET: &str = "bedrock/test+secret/KEYEXAMPLE";
const TOKEN: &str = "IQoJb3JpZ2luX2VjEXAMPLE//session";
const REGION: &str = "eu-west-3";
const MODEL: &str = "us.anthropic.claude-3-7-sonnet-20250219-v1:0";
const WIRE_MODEL: &str = "us.anthropic.claude-3-7-sonnet-20250219-v1%3A0";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hmac(key: &[u8], data: &str) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(data.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

/// Recomputes the SigV4 signature of a received request with the test secret.
fn verify_sigv4(r: &Received) -> Result<(), String> {
    let auth = r.header("authorization").ok_or("no Authorization header")?;
    let fields = auth
        .strip_prefix("AWS4-HMAC-SHA256 ")
        .ok_or_else(|| format!("not a SigV4 header: {auth}"))?;
    let field = |name: &str| {
        fields
            .split(", ")
            .find_map(|f| f.strip_prefix(&format!("{name}=")))
            .ok_or_else(|| format!("no {name} in {auth}"))
    };
    let (credential, signed, signature) = (
        field("Credential")?,
        field("SignedHeaders")?,
        field("Signature")?,
    );
    let scope: Vec<&str> = credential.split('/').collect();
    let [akid, date, region, service, "aws4_request"] = scope[..] else {
        return Err(format!("bad credential scope {credential}"));
    };
    if (akid, region, service) != (AKID, REGION, "bedrock") {
        return Err(format!("wrong scope {credential}"));
    }
    let amz_date = r.header("x-amz-date").ok_or("no x-amz-date")?;
    if !amz_date.starts_with(date) || amz_date.len() != 16 {
        return Err(format!("x-amz-date {amz_date} does not match {date}"));
    }
    if r.header("x-amz-security-token") != Some(TOKEN) {
        return Err("missing or wrong session token".into());
    }
    let names: Vec<&str> = signed.split(';').collect();
    for must in ["host", "x-amz-date", "x-amz-security-token", "content-type"] {
        if !names.contains(&must) {
            return Err(format!("{must} is not signed: {signed}"));
        }
    }
    let mut sorted = names.clone();
    sorted.sort_unstable();
    if sorted != names {
        return Err(format!("signed headers are not sorted: {signed}"));
    }
    // Non-S3 services sign the wire path URI-encoded once more.
    let (path, query) = r.path.split_once('?').unwrap_or((&r.path, ""));
    let mut uri = String::new();
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~/".contains(&b) {
            uri.push(char::from(b));
        } else {
            uri.push_str(&format!("%{b:02X}"));
        }
    }
    let mut headers = String::new();
    for name in &names {
        let value = r
            .header(name)
            .ok_or_else(|| format!("signed header {name} was not sent"))?;
        headers.push_str(&format!(
            "{name}:{}\n",
            value.split_whitespace().collect::<Vec<_>>().join(" ")
        ));
    }
    let canonical = format!(
        "{}\n{uri}\n{query}\n{headers}\n{signed}\n{}",
        r.method,
        hex(&Sha256::digest(&r.body))
    );
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{date}/{REGION}/bedrock/aws4_request\n{}",
        hex(&Sha256::digest(canonical.as_bytes()))
    );
    let mut key = hmac(format!("AWS4{SECRET}").as_bytes(), date);
    for part in [REGION, "bedrock", "aws4_request"] {
        key = hmac(&key, part);
    }
    let want = hex(&hmac(&key, &to_sign));
    if want == signature {
        Ok(())
    } else {
        Err(format!(
            "signature mismatch for {} {}: got {signature}, want {want}",
            r.method, r.path
        ))
    }
}

fn aws_error(status: u16, kind: &str, message: &str) -> MockReply {
    MockReply::Json(
        status,
        json!({ "message": message }).to_string(),
        vec![(
            "x-amzn-ErrorType".to_string(),
            format!("{kind}:http://internal.amazon.com/coral/com.amazon.bedrock/"),
        )],
    )
}

/// One answer: text and tool uses, as a Converse body or a ConverseStream event stream.
fn answer(stream: bool, text: &str, tools: &[(&str, &str, Value)], stop: &str) -> MockReply {
    let usage = json!({"inputTokens": 12, "outputTokens": 8, "totalTokens": 26, "cacheReadInputTokens": 4, "cacheWriteInputTokens": 2});
    if !stream {
        let mut content = vec![json!({ "text": text })];
        for (id, name, input) in tools {
            content.push(json!({"toolUse": {"toolUseId": id, "name": name, "input": input}}));
        }
        return MockReply::json(
            200,
            json!({"output": {"message": {"role": "assistant", "content": content}},
                   "stopReason": stop, "usage": usage, "metrics": {"latencyMs": 42}}),
        );
    }
    let mut bytes = encode_event("messageStart", br#"{"role":"assistant"}"#);
    let ev = |name: &str, v: Value| encode_event(name, v.to_string().as_bytes());
    for w in text.split_inclusive(' ') {
        bytes.extend(ev(
            "contentBlockDelta",
            json!({"contentBlockIndex": 0, "delta": {"text": w}}),
        ));
    }
    bytes.extend(ev("contentBlockStop", json!({"contentBlockIndex": 0})));
    for (i, (id, name, input)) in tools.iter().enumerate() {
        let block = i + 1;
        bytes.extend(ev("contentBlockStart", json!({"contentBlockIndex": block, "start": {"toolUse": {"toolUseId": id, "name": name}}})));
        let input = input.to_string();
        let (a, b) = input.split_at(input.len() / 2);
        for piece in [a, b] {
            bytes.extend(ev(
                "contentBlockDelta",
                json!({"contentBlockIndex": block, "delta": {"toolUse": {"input": piece}}}),
            ));
        }
        bytes.extend(ev("contentBlockStop", json!({"contentBlockIndex": block})));
    }
    bytes.extend(ev("messageStop", json!({ "stopReason": stop })));
    bytes.extend(ev(
        "metadata",
        json!({"usage": usage, "metrics": {"latencyMs": 42}}),
    ));
    stream_reply(bytes)
}

/// The event stream cut into 13-byte HTTP chunks: frames straddle reads.
fn stream_reply(bytes: Vec<u8>) -> MockReply {
    MockReply::Bytes {
        status: 200,
        content_type: "application/vnd.amazon.eventstream".to_string(),
        headers: vec![("x-amzn-RequestId".into(), "req-1".into())],
        pieces: bytes.chunks(13).map(<[u8]>::to_vec).collect(),
        delay: Duration::ZERO,
    }
}

fn texts(blocks: &Value) -> String {
    blocks
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|b| b["text"].as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

fn fake_bedrock(r: &Received) -> MockReply {
    let stream = r.path == format!("/model/{WIRE_MODEL}/converse-stream");
    if r.method != "POST" || !(stream || r.path == format!("/model/{WIRE_MODEL}/converse")) {
        return aws_error(
            404,
            "ResourceNotFoundException",
            &format!("unexpected {} {}", r.method, r.path),
        );
    }
    if let Err(e) = verify_sigv4(r) {
        return aws_error(403, "InvalidSignatureException", &e);
    }
    let body = r.json();
    let last = body["messages"]
        .as_array()
        .and_then(|m| m.last())
        .cloned()
        .unwrap_or(Value::Null);
    let text = texts(&last["content"]);
    if text.contains("trigger-throttle") {
        return aws_error(
            429,
            "ThrottlingException",
            "Too many requests, please wait before trying again.",
        );
    }
    if text.contains("trigger-too-long") {
        return aws_error(
            400,
            "ValidationException",
            "Input is too long for requested model.",
        );
    }
    if text.contains("trigger-denied") {
        return aws_error(
            403,
            "AccessDeniedException",
            "You don't have access to the model with the specified model ID.",
        );
    }
    if text.contains("trigger-not-ready") {
        return aws_error(
            429,
            "ModelNotReadyException",
            "Model is not ready to serve inference requests.",
        );
    }
    if text.contains("trigger-stream-exception") && stream {
        let mut bytes = encode_event("messageStart", br#"{"role":"assistant"}"#);
        bytes.extend(encode_event(
            "contentBlockDelta",
            br#"{"contentBlockIndex":0,"delta":{"text":"partial "}}"#,
        ));
        bytes.extend(encode(
            &[
                (
                    ":exception-type",
                    HeaderValue::String("modelStreamErrorException".into()),
                ),
                (
                    ":content-type",
                    HeaderValue::String("application/json".into()),
                ),
                (":message-type", HeaderValue::String("exception".into())),
            ],
            br#"{"message":"The model stream failed."}"#,
        ));
        return stream_reply(bytes);
    }
    if let Some(result) = last["content"]
        .as_array()
        .and_then(|c| c.iter().find_map(|b| b.get("toolResult")))
    {
        return answer(
            stream,
            &format!(
                "{} says {}",
                result["toolUseId"].as_str().unwrap_or("?"),
                result["content"]
            ),
            &[],
            "end_turn",
        );
    }
    if body.get("toolConfig").is_some() {
        let mut calls = vec![("tooluse_paris", "get_weather", json!({"city": "Paris"}))];
        if text.contains("two cities") {
            calls.push((
                "tooluse_tokyo",
                "get_weather",
                json!({"city": "Tokyo", "unit": "c"}),
            ));
        }
        return answer(stream, "Checking.", &calls, "tool_use");
    }
    if body.get("outputConfig").is_some() || texts(&body["system"]).contains("JSON object") {
        return answer(stream, "{\"answer\": \"Paris\"}", &[], "end_turn");
    }
    let images: Vec<String> = last["content"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|b| b.get("image"))
        .map(|i| {
            format!(
                "{} {}",
                i["format"].as_str().unwrap_or(""),
                i["source"]["bytes"].as_str().unwrap_or("")
            )
        })
        .collect();
    if !images.is_empty() {
        return answer(
            stream,
            &format!("saw {}", images.join(", ")),
            &[],
            "end_turn",
        );
    }
    if text.contains("max out") {
        return answer(stream, "cut", &[], "max_tokens");
    }
    answer(stream, &format!("echo {text}"), &[], "end_turn")
}

#[test]
fn openai_sdk_through_kt_to_bedrock() {
    let up = MockUpstream::start(fake_bedrock);
    let yaml = format!(
        "pack: {{name: br}}\nproviders:\n  targets:\n    - id: claude\n      provider: bedrock\n      model: '{MODEL}'\n      base_url: '{}'\n      region: {REGION}\n      secret_key_ref: {{access_key_id_env: BR_TEST_AKID, secret_access_key_env: BR_TEST_SECRET, session_token_env: BR_TEST_TOKEN}}\n",
        up.url
    );
    let gw = Gateway::start_with(
        Some(&yaml),
        &[],
        &[
            ("BR_TEST_AKID", AKID),
            ("BR_TEST_SECRET", SECRET),
            ("BR_TEST_TOKEN", TOKEN),
        ],
    );
    let out = run_python("sdk_bedrock.py", &gw.base_url(), &[]);
    assert!(out.contains("ALL OK"), "{out}");

    let reqs = up.requests();
    assert!(reqs.len() >= 12, "{}", reqs.len());
    for r in &reqs {
        verify_sigv4(r).unwrap();
        assert_eq!(r.header("content-type"), Some("application/json"));
        let body = r.json();
        assert!(body["messages"].is_array(), "{body}");
        for key in [
            "model",
            "modelId",
            "stream",
            "stream_options",
            "tools",
            "max_tokens",
        ] {
            assert!(body.get(key).is_none(), "`{key}` leaked into {body}");
        }
    }
    let find = |needle: &str| {
        reqs.iter()
            .map(Received::json)
            .find(|b| {
                b["messages"]
                    .as_array()
                    .and_then(|m| m.last())
                    .is_some_and(|m| texts(&m["content"]).contains(needle))
            })
            .unwrap_or_else(|| panic!("no request with {needle}"))
    };
    let chat = find("hello bedrock");
    assert_eq!(chat["system"], json!([{"text": "You are terse."}]));
    assert_eq!(
        chat["inferenceConfig"],
        json!({"maxTokens": 64, "temperature": 0.3, "stopSequences": ["END"]})
    );
    assert!(reqs.iter().any(|r| r.path.ends_with("/converse-stream")
        && texts(&r.json()["messages"][0]["content"]).contains("stream me")));
    let tools = find("weather in Paris");
    assert_eq!(tools["toolConfig"]["toolChoice"], json!({"any": {}}));
    assert_eq!(
        tools["toolConfig"]["tools"][0]["toolSpec"]["inputSchema"]["json"]["required"],
        json!(["city"])
    );
    let round = reqs
        .iter()
        .map(Received::json)
        .find(|b| b["messages"].as_array().is_some_and(|m| m.len() == 3))
        .expect("a request with the tool result");
    assert_eq!(
        round["messages"][1]["content"][1],
        json!({"toolUse": {"toolUseId": "tooluse_paris", "name": "get_weather", "input": {"city": "Paris"}}})
    );
    assert_eq!(
        round["messages"][2]["content"][0],
        json!({"toolResult": {"toolUseId": "tooluse_paris", "content": [{"json": {"temp_c": 21}}]}})
    );
    assert!(round["toolConfig"].is_object());
    let image = find("describe this");
    assert_eq!(
        image["messages"][0]["content"][1],
        json!({"image": {"format": "png", "source": {"bytes": "iVBORw0KGgo="}}})
    );
    let schema = find("json schema please");
    assert_eq!(
        schema["outputConfig"]["textFormat"]["structure"]["jsonSchema"]["name"],
        "a"
    );
    // The http image never reached the upstream.
    assert!(!reqs
        .iter()
        .any(|r| String::from_utf8_lossy(&r.body).contains("https://example.com/cat.png")));
}

/// Without `secret_key_ref` or `region`, a Bedrock target signs with `AWS_ACCESS_KEY_ID`,
/// `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN` and `AWS_REGION`.
#[test]
fn bedrock_credentials_and_region_from_the_aws_environment() {
    let up = MockUpstream::start(fake_bedrock);
    let yaml = format!(
        "pack: {{name: br}}\nproviders:\n  targets:\n    - {{id: claude, provider: bedrock, model: '{MODEL}', base_url: '{}'}}\n",
        up.url
    );
    let gw = Gateway::start_with(
        Some(&yaml),
        &[],
        &[
            ("AWS_ACCESS_KEY_ID", AKID),
            ("AWS_SECRET_ACCESS_KEY", SECRET),
            ("AWS_SESSION_TOKEN", TOKEN),
            ("AWS_REGION", REGION),
        ],
    );
    let (status, _, body) = post_json(
        &format!("{}/chat/completions", gw.base_url()),
        &json!({"model": "claude", "messages": [{"role": "user", "content": "hello env"}]}),
        &[],
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["choices"][0]["message"]["content"], "echo hello env");
    verify_sigv4(&up.requests()[0]).unwrap();
}

/// `POST /v1/embeddings` through kt to Bedrock's InvokeModel, signed as Converse is:
/// Titan (one text, its token count) and Cohere Embed (a batch).
#[test]
fn embeddings_through_kt_to_bedrock_titan_and_cohere() {
    const TITAN: &str = "amazon.titan-embed-text-v2:0";
    const COHERE: &str = "cohere.embed-english-v3";
    let up = MockUpstream::start(|r| {
        if let Err(e) = verify_sigv4(r) {
            return aws_error(403, "InvalidSignatureException", &e);
        }
        let body = r.json();
        match r.path.as_str() {
            "/model/amazon.titan-embed-text-v2%3A0/invoke" => MockReply::json(
                200,
                json!({"embedding": [0.5, 0.25], "inputTextTokenCount": 3}),
            ),
            "/model/cohere.embed-english-v3/invoke" => {
                let n = body["texts"].as_array().map_or(0, Vec::len);
                let v: Vec<Value> = (0..n).map(|i| json!([i as f64, -1.0])).collect();
                MockReply::json(
                    200,
                    json!({"id": "e", "embeddings": {"float": v}, "texts": body["texts"]}),
                )
            }
            other => aws_error(
                404,
                "ResourceNotFoundException",
                &format!("unexpected {other}"),
            ),
        }
    });
    let yaml = format!(
        "pack: {{name: br}}\nproviders:\n  targets:\n    - {{id: titan, provider: bedrock, model: '{TITAN}', base_url: '{url}', region: {REGION}, secret_key_ref: {{access_key_id_env: BR_TEST_AKID, secret_access_key_env: BR_TEST_SECRET, session_token_env: BR_TEST_TOKEN}}}}\n    - {{id: cohere, provider: bedrock, model: '{COHERE}', base_url: '{url}', region: {REGION}, secret_key_ref: {{access_key_id_env: BR_TEST_AKID, secret_access_key_env: BR_TEST_SECRET, session_token_env: BR_TEST_TOKEN}}}}\n    - {{id: claude, provider: bedrock, model: '{MODEL}', base_url: '{url}', region: {REGION}, secret_key_ref: {{access_key_id_env: BR_TEST_AKID, secret_access_key_env: BR_TEST_SECRET, session_token_env: BR_TEST_TOKEN}}}}\npolicies:\n  chain: [audit-logger]\n",
        url = up.url
    );
    let gw = Gateway::start_with(
        Some(&yaml),
        &[],
        &[
            ("BR_TEST_AKID", AKID),
            ("BR_TEST_SECRET", SECRET),
            ("BR_TEST_TOKEN", TOKEN),
        ],
    );
    let url = format!("{}/embeddings", gw.base_url());
    let (status, _, body) = post_json(
        &url,
        &json!({"model": TITAN, "input": "one text", "dimensions": 256}),
        &[],
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"][0]["embedding"], json!([0.5, 0.25]));
    assert_eq!(body["usage"]["prompt_tokens"], 3);
    assert_eq!(body["x_keeptrusts"]["provider_used"], "bedrock");
    assert_eq!(
        up.requests()[0].json(),
        json!({"inputText": "one text", "dimensions": 256})
    );
    // Titan embeds one text per request: a batch is refused before anything is sent.
    let (status, _, body) = post_json(&url, &json!({"model": TITAN, "input": ["a", "b"]}), &[]);
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["param"], "input");
    assert_eq!(up.count(), 1);

    let (status, _, body) = post_json(
        &url,
        &json!({"model": COHERE, "input": ["a", "b"], "input_type": "search_query"}),
        &[],
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"][1]["embedding"], json!([1.0, -1.0]));
    assert_eq!(
        up.requests()[1].json(),
        json!({"texts": ["a", "b"], "input_type": "search_query", "embedding_types": ["float"]})
    );
    // A chat model is no embedding model.
    let (status, _, body) = post_json(&url, &json!({"model": MODEL, "input": "x"}), &[]);
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["param"], "model");
    assert_eq!(up.count(), 2);
    let evs = gw.events(4);
    assert_eq!(evs[0]["kind"], "embeddings");
    assert_eq!(evs[0]["prompt_tokens"], 3);
}
