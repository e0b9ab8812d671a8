//! `kt gateway run` end to end: chat, streaming in real time, tools, errors, pass-through,
//! events and graceful shutdown.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use crate::support::*;

pub(crate) fn config_for(upstream: &str, extra_target: &str) -> String {
    format!(
        "pack: {{name: test, version: 1.0.0}}
providers:
  targets:
    - id: primary
      provider: openai
      model: gpt-4o
      base_url: {upstream}
{extra_target}
policies:
  chain: [audit-logger]
"
    )
}

pub(crate) fn completion(content: &str) -> Value {
    json!({
        "id": "chatcmpl-up", "object": "chat.completion", "created": 1, "model": "gpt-4o-2024",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}
    })
}

pub(crate) fn chunk(delta: Value, finish: Option<&str>) -> Value {
    json!({"id": "chatcmpl-up", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o",
           "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
}

fn user(text: &str) -> Value {
    json!({"model": "gpt-4o", "messages": [{"role": "user", "content": text}]})
}

#[test]
fn chat_completion_goes_upstream_and_comes_back_with_metadata() {
    let up = MockUpstream::start(|_| MockReply::json(200, completion("hello there")));
    let gw = Gateway::start_with(
        Some(&config_for(
            &up.v1(),
            "      secret_key_ref: {env: TEST_UPSTREAM_KEY}\n      region: eu",
        )),
        &[],
        &[("TEST_UPSTREAM_KEY", "sk-configured")],
    );
    let (status, headers, body) = post_json(
        &format!("{}/chat/completions", gw.base_url()),
        &json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}], "seed": 42, "temperature": 0.5}),
        &[
            ("Authorization", "Bearer sk-client"),
            ("X-Request-Source", "billing"),
            ("X-Correlation-Id", "corr-1"),
        ],
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["choices"][0]["message"]["content"], "hello there");
    assert_eq!(body["x_keeptrusts"]["provider_used"], "openai");
    assert_eq!(body["x_keeptrusts"]["region"], "eu");
    let rid = find_header(&headers, "x-request-id").unwrap().to_string();
    assert_eq!(
        body["x_keeptrusts"]["routing_decision_id"],
        format!("kt_decision_{rid}")
    );
    let reqs = up.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].path, "/v1/chat/completions");
    // The target's own key wins over the client's.
    assert_eq!(
        reqs[0].header("authorization"),
        Some("Bearer sk-configured")
    );
    let sent = reqs[0].json();
    assert_eq!(sent["seed"], 42, "unknown fields pass through");
    assert_eq!(sent["temperature"], 0.5);

    let evs = gw.events(1);
    assert_eq!(evs.len(), 1);
    let e = &evs[0];
    assert_eq!(e["request_id"], rid);
    assert_eq!(e["status"], 200);
    assert_eq!(e["model_requested"], "gpt-4o");
    assert_eq!(e["target_id"], "primary");
    assert_eq!(e["provider"], "openai");
    assert_eq!(e["prompt_tokens"], 7);
    assert_eq!(e["completion_tokens"], 3);
    assert_eq!(e["request_source"], "billing");
    assert_eq!(e["correlation_id"], "corr-1");
    assert!(e["latency_ms"].as_f64().unwrap() > 0.0);
    let raw = std::fs::read(&gw.db).unwrap();
    assert!(
        !String::from_utf8_lossy(&raw).contains("sk-configured"),
        "secrets never reach the store"
    );
}

#[test]
fn client_key_is_forwarded_when_the_target_has_none() {
    let up = MockUpstream::start(|_| MockReply::json(200, completion("ok")));
    let gw = Gateway::start(Some(&config_for(&up.v1(), "")));
    let (status, _, _) = post_json(
        &format!("{}/chat/completions", gw.base_url()),
        &user("hi"),
        &[
            ("Authorization", "Bearer sk-client-123"),
            ("OpenAI-Organization", "org-client"),
            ("OpenAI-Project", "proj_client"),
        ],
    );
    assert_eq!(status, 200);
    let r = &up.requests()[0];
    assert_eq!(r.header("authorization"), Some("Bearer sk-client-123"));
    // The account the client bills its own key to goes with the key.
    assert_eq!(r.header("openai-organization"), Some("org-client"));
    assert_eq!(r.header("openai-project"), Some("proj_client"));
    // A gateway key is never forwarded upstream (an unknown one is refused outright).
    let (status, _, _) = post_json(
        &format!("{}/chat/completions", gw.base_url()),
        &user("hi"),
        &[("Authorization", "Bearer kt_gk_secret")],
    );
    assert_eq!(status, 401);
    assert_eq!(up.count(), 1);
}

#[test]
fn custom_auth_header_prefix_and_extra_headers() {
    let up = MockUpstream::start(|_| MockReply::json(200, completion("ok")));
    let target = "      secret_key_ref: {env: TEST_KEY_2}\n      api_key_header: X-Custom-Auth\n      api_key_prefix: Token\n      headers: {X-Team: platform}";
    let gw = Gateway::start_with(
        Some(&config_for(&up.v1(), target)),
        &[],
        &[("TEST_KEY_2", "abc")],
    );
    let (status, _, _) = post_json(
        &format!("{}/chat/completions", gw.base_url()),
        &user("hi"),
        &[
            ("Authorization", "Bearer sk-client-123"),
            ("OpenAI-Organization", "org-client"),
        ],
    );
    assert_eq!(status, 200);
    let r = &up.requests()[0];
    assert_eq!(r.header("x-custom-auth"), Some("Token abc"));
    assert_eq!(r.header("x-team"), Some("platform"));
    assert_eq!(r.header("authorization"), None);
    // A client cannot bill the target's own key to another organization.
    assert_eq!(r.header("openai-organization"), None);
}

#[test]
fn stream_events_reach_the_client_while_the_upstream_is_still_sending() {
    let words = ["one", " two", " three", " four", " five"];
    let mut chunks = vec![chunk(json!({"role": "assistant", "content": ""}), None)];
    chunks.extend(words.iter().map(|w| chunk(json!({"content": w}), None)));
    chunks.push(chunk(json!({}), Some("stop")));
    let reply = MockReply::openai_sse(&chunks, Duration::from_millis(150));
    let up = MockUpstream::start(move |_| reply.clone());
    let gw = Gateway::start(Some(&config_for(&up.v1(), "")));
    let mut body = user("count");
    body["stream"] = json!(true);
    let (status, arrivals) = post_stream(&format!("{}/chat/completions", gw.base_url()), &body);
    assert_eq!(status, 200);
    let contents: Vec<(Duration, String)> = arrivals
        .iter()
        .filter_map(|a| {
            let v: Value = serde_json::from_str(&a.data).ok()?;
            let c = v["choices"][0]["delta"]["content"].as_str()?.to_string();
            (!c.is_empty()).then_some((a.at, c))
        })
        .collect();
    assert_eq!(
        contents.iter().map(|(_, c)| c.as_str()).collect::<String>(),
        "one two three four five"
    );
    // Upstream sends a word every 150 ms: each must arrive on its own, not all at the end.
    for pair in contents.windows(2) {
        let gap = pair[1].0 - pair[0].0;
        assert!(
            gap >= Duration::from_millis(100),
            "events arrived together: {contents:?}"
        );
    }
    assert!(
        contents[0].0 < Duration::from_millis(450),
        "first token late: {:?}",
        contents[0].0
    );
    assert_eq!(arrivals.last().unwrap().data, "[DONE]");
    let last: Value = serde_json::from_str(&arrivals[arrivals.len() - 2].data).unwrap();
    assert_eq!(last["choices"][0]["finish_reason"], "stop");
    assert_eq!(last["x_keeptrusts"]["provider_used"], "openai");
    // kt asked the upstream for usage even though the client did not; the client gets none.
    assert_eq!(
        up.requests()[0].json()["stream_options"]["include_usage"],
        true
    );
    assert!(arrivals.iter().all(|a| !a.data.contains("\"usage\":{")));
    let evs = gw.events(1);
    assert_eq!(evs[0]["stream"], true);
    assert!(evs[0]["ttft_ms"].as_f64().unwrap() < evs[0]["latency_ms"].as_f64().unwrap());
}

#[test]
fn stream_usage_is_passed_on_when_asked() {
    let chunks = vec![
        chunk(json!({"role": "assistant", "content": "hi"}), None),
        chunk(json!({}), Some("stop")),
        json!({"id": "chatcmpl-up", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o", "choices": [],
               "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6}}),
    ];
    let reply = MockReply::openai_sse(&chunks, Duration::ZERO);
    let up = MockUpstream::start(move |_| reply.clone());
    let gw = Gateway::start(Some(&config_for(&up.v1(), "")));
    let mut body = user("hi");
    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});
    let (_, arrivals) = post_stream(&format!("{}/chat/completions", gw.base_url()), &body);
    let usage_chunk: Value = serde_json::from_str(&arrivals[arrivals.len() - 2].data).unwrap();
    assert_eq!(usage_chunk["usage"]["total_tokens"], 6);
    assert_eq!(usage_chunk["choices"], json!([]));
    assert!(usage_chunk["x_keeptrusts"].is_object());
    assert_eq!(gw.events(1)[0]["total_tokens"], 6);
}

#[test]
fn tool_calls_pass_through_both_ways() {
    let call = json!({"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}});
    let resp = json!({"id": "x", "object": "chat.completion", "created": 1, "model": "gpt-4o",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": null, "tool_calls": [call]}, "finish_reason": "tool_calls"}]});
    let stream_chunks = vec![
        chunk(
            json!({"role": "assistant", "tool_calls": [{"index": 0, "id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": ""}}]}),
            None,
        ),
        chunk(
            json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"city\":"}}]}),
            None,
        ),
        chunk(
            json!({"tool_calls": [{"index": 0, "function": {"arguments": "\"Paris\"}"}}]}),
            None,
        ),
        chunk(json!({}), Some("tool_calls")),
    ];
    let up = MockUpstream::start(move |r| {
        if r.json()["stream"] == true {
            MockReply::openai_sse(&stream_chunks, Duration::ZERO)
        } else {
            MockReply::json(200, resp.clone())
        }
    });
    let gw = Gateway::start(Some(&config_for(&up.v1(), "")));
    let tools = json!([{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]);
    let history = json!([
        {"role": "user", "content": "weather in Paris?"},
        {"role": "assistant", "content": null, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_1", "content": "{\"temp_c\":21}"}
    ]);
    let body =
        json!({"model": "gpt-4o", "messages": history, "tools": tools, "tool_choice": "auto"});
    let (status, _, out) = post_json(&format!("{}/chat/completions", gw.base_url()), &body, &[]);
    assert_eq!(status, 200);
    assert_eq!(out["choices"][0]["message"]["tool_calls"][0], call);
    let sent = up.requests()[0].json();
    assert_eq!(sent["tools"], tools);
    assert_eq!(sent["messages"], history);
    assert_eq!(sent["tool_choice"], "auto");

    let mut sbody = body.clone();
    sbody["stream"] = json!(true);
    let (_, arrivals) = post_stream(&format!("{}/chat/completions", gw.base_url()), &sbody);
    let args: String = arrivals
        .iter()
        .filter_map(|a| serde_json::from_str::<Value>(&a.data).ok())
        .filter_map(|v| {
            v["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"]
                .as_str()
                .map(str::to_string)
        })
        .collect();
    assert_eq!(args, "{\"city\":\"Paris\"}");
}

/// A gateway with the default chain in front of one OpenAI target at `upstream`, and
/// `extra` config sections.
fn default_chain(upstream: &str, extra: &str) -> Gateway {
    Gateway::start(Some(&format!(
        "pack: {{name: t}}
providers:
  targets:
    - {{id: primary, provider: openai, model: gpt-4o, base_url: '{upstream}'}}
{extra}policies:
  chain: [prompt-injection, pii-detector, audit-logger]
"
    )))
}

/// POSTs `body` and returns the answer's text, which must be a 200.
fn post_ok(url: &str, body: &str) -> String {
    let mut r = post_text(url, body);
    let text = r.body_mut().read_to_string().unwrap();
    assert_eq!(r.status().as_u16(), 200, "{text}");
    text
}

/// What a transparent proxy owes the client: its request reaches an OpenAI-format provider
/// as written (spacing, key order, a number no f64 holds, unknown fields) unless kt had to
/// change it — another model, a redaction, usage asked for on a stream.
#[test]
fn the_clients_body_goes_upstream_as_sent_unless_kt_changes_it() {
    let up = MockUpstream::start(|r| {
        if r.json()["stream"] == true {
            MockReply::openai_sse(
                &[chunk(json!({"content": "ok"}), Some("stop"))],
                Duration::ZERO,
            )
        } else {
            MockReply::json(200, completion("ok"))
        }
    });
    let gw = default_chain(&up.v1(), "models:\n  aliases: {fast: gpt-4o}\n");
    let url = format!("{}/chat/completions", gw.base_url());
    let send = |body: &str| {
        post_ok(&url, body);
    };
    let sent = |i: usize| String::from_utf8(up.requests()[i].body.clone()).unwrap();
    let body = r#"{ "messages": [{"content": "Bonjour, \u00e7a va ?", "role": "user"}],
  "model": "gpt-4o", "seed": 123456789012345678901234567890, "temperature": 0.70,
  "metadata": {"z": 1, "a": 2} }"#;
    send(body);
    assert_eq!(sent(0), body);
    // The event keeps what went upstream.
    assert_eq!(gw.events(1)[0]["request_body"], body);

    // An alias: the provider gets the client's bytes with the target's model in place.
    send(&body.replace("\"gpt-4o\"", "\"fast\""));
    assert_eq!(sent(1), body);
    // A model kt cannot find written plainly (an escaped key): the request as parsed.
    send(&body.replace("\"model\": \"gpt-4o\"", "\"mod\\u0065l\": \"fast\""));
    let got: Value = serde_json::from_str(&sent(2)).unwrap();
    assert_eq!(got["model"], "gpt-4o");
    assert_eq!(got["metadata"], json!({"z": 1, "a": 2}));
    assert_eq!(got["messages"][0]["content"], "Bonjour, \u{e7}a va ?");

    // A redaction: the rewritten request, never the client's bytes.
    send(&body.replace(r"Bonjour, \u00e7a va ?", "write to jane.doe@example.com"));
    assert!(!sent(3).contains("jane.doe@example.com"), "{}", sent(3));
    assert!(sent(3).contains("\"model\":\"gpt-4o\""), "{}", sent(3));

    // A stream: kt asks for usage (for the event) on the client's behalf.
    send(&body.replace("\"model\"", "\"stream\": true, \"model\""));
    let got: Value = serde_json::from_str(&sent(4)).unwrap();
    assert_eq!(got["stream_options"]["include_usage"], true);
    assert_eq!(got["seed"], json!(123456789012345678901234567890.0));
}

/// The other way: an OpenAI-format provider's answer reaches the client as the provider
/// wrote it (spacing, key order, `refusal: null`, a number no f64 holds, members kt does
/// not model) with kt's `x_keeptrusts` added, unless kt had to change it — an output
/// redaction, or a member missing that kt fills in for the SDKs.
#[test]
fn the_providers_answer_reaches_the_client_as_sent_unless_kt_changes_it() {
    const ANSWER: &str = r#"{
  "id": "chatcmpl-9", "object": "chat.completion", "created": 1733000000,
  "model": "gpt-4o-2024-08-06", "x_big": 123456789012345678901234567890,
  "choices": [{"index": 0, "finish_reason": "stop",
    "logprobs": {"content": [{"token": "x", "logprob": -0.25, "bytes": [120]}]},
    "message": {"role": "assistant", "content": "CONTENT", "refusal": null}}],
  "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6,
    "prompt_tokens_details": {"cached_tokens": 2}},
  "system_fingerprint": "fp_1"
}
"#;
    let up = MockUpstream::start(|r| {
        let prompt = r.json()["messages"][0]["content"]
            .as_str()
            .unwrap()
            .to_string();
        let mut answer = ANSWER.replace("CONTENT", &prompt);
        if prompt == "contact" {
            answer = ANSWER.replace("CONTENT", "write to jane.doe@example.com");
        }
        if prompt == "no object" {
            answer = answer.replace("\"object\": \"chat.completion\", ", "");
        }
        MockReply::Json(200, answer, Vec::new())
    });
    let gw = default_chain(&up.v1(), "");
    let url = format!("{}/chat/completions", gw.base_url());
    let ask = |prompt: &str| {
        let body = json!({"model": "gpt-4o", "messages": [{"role": "user", "content": prompt}]});
        post_ok(&url, &body.to_string())
    };

    let text = ask("hello");
    let sent = ANSWER.replace("CONTENT", "hello");
    // Up to its last member as sent, then kt's, then the provider's own ending.
    let at = sent.trim_end().trim_end_matches('}').trim_end().len();
    assert_eq!(text[..at], sent[..at], "{text}");
    assert!(text[at..].starts_with(",\"x_keeptrusts\":{"), "{text}");
    assert!(text.ends_with("}\n}\n"), "{text}");
    let got: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(got["x_keeptrusts"]["provider_used"], "openai");
    assert_eq!(got["choices"][0]["message"]["refusal"], Value::Null);

    // A redaction in the answer: the answer as rewritten, with every member kt does
    // not model (read only now: the parse skipped them while the bytes could go as sent)
    // but its logprobs.
    let text = ask("contact");
    assert!(!text.contains("jane.doe@example.com"), "{text}");
    let got: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(got["system_fingerprint"], "fp_1");
    assert_eq!(got["usage"]["prompt_tokens_details"]["cached_tokens"], 2);
    // Not the token logprobs: they spell the answer as written, the address included.
    assert_eq!(got["choices"][0]["logprobs"], Value::Null, "{text}");
    assert!(got["x_big"].is_number(), "{text}");
    assert!(got["x_keeptrusts"]["routing_decision_id"].is_string());

    // A member kt fills in for the SDKs: the answer as parsed, with it.
    let text = ask("no object");
    let got: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(got["object"], "chat.completion", "{text}");
    assert_eq!(got["choices"][0]["message"]["content"], "no object");
}

#[test]
fn models_lists_targets_and_aliases() {
    let yaml = "pack: {name: m}
providers:
  targets:
    - {id: a, provider: openai, model: gpt-4o, base_url: 'http://127.0.0.1:9/v1'}
    - {id: b, provider: groq, model: llama-3.3-70b}
models:
  aliases: {fast: llama-3.3-70b}
";
    let gw = Gateway::start(Some(yaml));
    let (status, body) = get_json(&format!("{}/models", gw.base_url()));
    assert_eq!(status, 200);
    assert_eq!(body["object"], "list");
    let ids: Vec<&str> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["gpt-4o", "llama-3.3-70b", "fast"]);
    assert_eq!(body["data"][1]["owned_by"], "groq");

    // One model: what a request naming it would be served by (names, aliases, pins).
    for (id, path, owner) in [
        ("fast", "fast", "groq"),
        ("gpt-4o", "gpt-4o", "openai"),
        ("groq/llama-3.3-70b", "groq/llama-3.3-70b", "groq"),
        ("openai/gpt-4o", "openai%2Fgpt-4o", "openai"),
    ] {
        let (status, m) = get_json(&format!("{}/models/{path}", gw.base_url()));
        assert_eq!(status, 200, "{path}: {m}");
        assert_eq!(m["id"], id);
        assert_eq!(m["object"], "model");
        assert_eq!(m["owned_by"], owner);
        assert!(m["created"].is_u64());
    }
    let (status, m) = get_json(&format!("{}/models/nope", gw.base_url()));
    assert_error(status, &m, 404, Some("model"));
    assert_eq!(m["error"]["code"], "model_not_found");
    assert_eq!(m["error"]["message"], "Model 'nope' not found in catalog");
    let (status, _, m) = post_json(&format!("{}/models/fast", gw.base_url()), &json!({}), &[]);
    assert_eq!(status, 405, "{m}");
    let (status, health) = get_json(&format!("{}/health", gw.url()));
    assert_eq!(status, 200);
    assert_eq!(health["status"], "ok");
}

/// HEAD answers as GET without the body (monitors probe with it); a method a path does
/// not take is a 405 naming the ones it does (`Allow`).
#[test]
fn head_is_get_without_a_body_and_405_says_what_is_allowed() {
    let gw = Gateway::start(None);
    for path in ["/health", "/v1/models", "/v1/models/gpt-4o"] {
        let mut resp = http().head(format!("{}{path}", gw.url())).call().unwrap();
        assert_eq!(resp.status().as_u16(), 200, "{path}");
        let len: usize = resp.headers()["content-length"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(len > 0, "{path}: the length of the GET answer");
        assert_eq!(resp.body_mut().read_to_string().unwrap(), "", "{path}");
    }
    for (method, path, allow) in [
        ("PUT", "/v1/chat/completions", "POST"),
        ("HEAD", "/v1/embeddings", "POST"),
        ("DELETE", "/v1/models/gpt-4o", "GET, HEAD"),
        ("POST", "/health", "GET, HEAD"),
        ("HEAD", "/v1/realtime", "GET"),
    ] {
        let url = format!("{}{path}", gw.url());
        let resp = match method {
            "PUT" => http().put(&url).send("{}"),
            "HEAD" => http().head(&url).call(),
            "DELETE" => http().delete(&url).call(),
            _ => http().post(&url).send("{}"),
        }
        .unwrap();
        assert_eq!(resp.status().as_u16(), 405, "{method} {path}");
        assert_eq!(resp.headers()["allow"], allow, "{method} {path}");
    }
}

fn assert_error(status: u16, body: &Value, want_status: u16, want_param: Option<&str>) {
    assert_eq!(status, want_status, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert!(body["error"]["type"].is_string(), "{body}");
    if let Some(p) = want_param {
        assert_eq!(body["error"]["param"], p, "{body}");
    }
}

#[test]
fn request_errors_have_the_openai_shape() {
    let up = MockUpstream::start(|_| MockReply::json(200, completion("ok")));
    let yaml = config_for(&up.v1(), "") + "gateway:\n  max_body_bytes: 2048\n";
    let gw = Gateway::start(Some(&yaml));
    let url = format!("{}/chat/completions", gw.base_url());
    let raw = |body: &str| {
        let mut r = post_text(&url, body);
        let status = r.status().as_u16();
        let has_id = r.headers().get("x-request-id").is_some();
        let v: Value = serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
        assert!(has_id, "x-request-id on every response");
        (status, v)
    };
    let (s, b) = raw("{not json");
    assert_error(s, &b, 400, None);
    let (s, b) = raw(r#"{"messages":[{"role":"user","content":"x"}]}"#);
    assert_error(s, &b, 400, Some("model"));
    let (s, b) = raw(r#"{"model":"gpt-4o"}"#);
    assert_error(s, &b, 400, Some("messages"));
    let (s, b) = raw(r#"{"model":"gpt-5-nope","messages":[{"role":"user","content":"x"}]}"#);
    assert_error(s, &b, 404, Some("model"));
    assert_eq!(
        b["error"]["message"],
        "Model 'gpt-5-nope' not found in catalog"
    );
    let big = format!(
        r#"{{"model":"gpt-4o","messages":[{{"role":"user","content":"{}"}}]}}"#,
        "x".repeat(4096)
    );
    let (s, b) = raw(&big);
    assert_error(s, &b, 413, None);
    assert_eq!(up.count(), 0, "nothing bad reaches the upstream");
    let (s, b) = get_json(&format!("{}/nope", gw.base_url()));
    assert_error(s, &b, 404, None);
    // Every rejected request is still recorded.
    assert_eq!(gw.events(5).len(), 5);
}

#[test]
fn upstream_failures_map_to_502_504_and_keep_upstream_statuses() {
    // A port nothing listens on.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_url = format!("http://{}/v1", dead.local_addr().unwrap());
    drop(dead);
    let gw = Gateway::start(Some(&config_for(&dead_url, "")));
    let (s, _, b) = post_json(
        &format!("{}/chat/completions", gw.base_url()),
        &user("hi"),
        &[],
    );
    assert_error(s, &b, 502, None);
    drop(gw);

    let slow = MockUpstream::start(|_| {
        MockReply::Delay(
            Duration::from_secs(3),
            Box::new(MockReply::json(200, completion("late"))),
        )
    });
    let gw = Gateway::start(Some(&config_for(&slow.v1(), "      timeout_seconds: 0.3")));
    let started = std::time::Instant::now();
    let (s, _, b) = post_json(
        &format!("{}/chat/completions", gw.base_url()),
        &user("hi"),
        &[],
    );
    assert_error(s, &b, 504, None);
    assert!(started.elapsed() < Duration::from_secs(2));
    drop(gw);

    let limited = MockUpstream::start(|r| {
        if r.json()["messages"][0]["content"] == "429" {
            MockReply::Json(429, json!({"error": {"message": "Rate limit reached", "type": "requests", "code": "rate_limit_exceeded"}}).to_string(), vec![("retry-after".into(), "7".into())])
        } else {
            MockReply::Raw(500, "text/html".into(), "<h1>upstream exploded</h1>".into())
        }
    });
    let gw = Gateway::start(Some(&config_for(&limited.v1(), "")));
    let (s, h, b) = post_json(
        &format!("{}/chat/completions", gw.base_url()),
        &user("429"),
        &[],
    );
    assert_error(s, &b, 429, None);
    assert_eq!(b["error"]["code"], "rate_limit_exceeded");
    assert_eq!(find_header(&h, "retry-after"), Some("7"));
    let (s, _, b) = post_json(
        &format!("{}/chat/completions", gw.base_url()),
        &user("500"),
        &[],
    );
    assert_error(s, &b, 500, None);
    assert_eq!(b["error"]["message"], "<h1>upstream exploded</h1>");
}

#[test]
fn broken_streams_end_with_an_error_not_a_silent_success() {
    let chunks = [chunk(
        json!({"role": "assistant", "content": "partial"}),
        None,
    )];
    let up = MockUpstream::start(move |_| MockReply::Sse {
        events: chunks.iter().map(|c| format!("data: {c}\n\n")).collect(),
        delay: Duration::ZERO,
        close_early: true,
    });
    let gw = Gateway::start(Some(&config_for(&up.v1(), "")));
    let mut body = user("hi");
    body["stream"] = json!(true);
    let (status, arrivals) = post_stream(&format!("{}/chat/completions", gw.base_url()), &body);
    assert_eq!(status, 200);
    let err: Value = serde_json::from_str(&arrivals[arrivals.len() - 2].data).unwrap();
    assert!(err["error"]["message"].is_string(), "{arrivals:?}");
    assert_eq!(arrivals.last().unwrap().data, "[DONE]");
    assert_eq!(gw.events(1)[0]["status"], 502);
}

#[test]
fn sandbox_works_with_no_config_and_no_key() {
    let gw = Gateway::start(None);
    let (s, _, b) = post_json(
        &format!("{}/chat/completions", gw.base_url()),
        &user("echo: ping"),
        &[],
    );
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["choices"][0]["message"]["content"], "ping");
    let tools = json!([{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]);
    let body = json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "What is the weather in London?"}], "tools": tools, "stream": true});
    let (_, arrivals) = post_stream(&format!("{}/chat/completions", gw.base_url()), &body);
    let args: String = arrivals
        .iter()
        .filter_map(|a| serde_json::from_str::<Value>(&a.data).ok())
        .filter_map(|v| {
            v["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"]
                .as_str()
                .map(str::to_string)
        })
        .collect();
    assert_eq!(args, r#"{"city":"London"}"#);
}

#[test]
fn sigterm_finishes_in_flight_requests_and_loses_no_event() {
    let up = MockUpstream::start(|_| {
        MockReply::Delay(
            Duration::from_millis(600),
            Box::new(MockReply::json(200, completion("done"))),
        )
    });
    let mut gw = Gateway::start(Some(&config_for(&up.v1(), "")));
    let url = format!("{}/chat/completions", gw.base_url());
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || post_json(&url, &user("hi"), &[]).0)
        })
        .collect();
    // Wait until all eight reached the upstream, then stop the gateway.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while up.count() < 8 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let status = gw.terminate(Duration::from_secs(20));
    assert!(status.success(), "exit status {status}");
    for h in handles {
        assert_eq!(h.join().unwrap(), 200);
    }
    assert_eq!(read_events(&gw.db).len(), 8);
}

#[test]
fn invalid_config_refuses_to_start_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.yaml");
    std::fs::write(
        &path,
        "pack: {name: x}\nproviders:\n  targets:\n    - {id: a, provider: openia, model: m}\n",
    )
    .unwrap();
    let mut cmd = kt(dir.path());
    cmd.args(["gateway", "run", "--port", "0", "--policy-config"])
        .arg(&path);
    let out = run(cmd, None, Duration::from_secs(10));
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    assert!(out.stderr.contains("openia"), "{}", out.stderr);
}

// Regression: the listener's read timeout also bounds accept() (tiny_http, which kt
// once used, stopped accepting for good after that); the gateway must still answer after
// being idle for longer than that timeout.
#[test]
fn keeps_accepting_after_an_idle_period_and_a_burst_of_connections() {
    let gw = Gateway::start(None);
    std::thread::sleep(Duration::from_millis(3500));
    let (status, _) = get_json(&format!("{}/health", gw.url()));
    assert_eq!(status, 200);
    // A burst of new keep-alive connections, each waiting on the others (as an async SDK
    // client's pool does), is served without stalling until a timeout.
    let started = std::time::Instant::now();
    let url = format!("{}/chat/completions", gw.base_url());
    let agents: Vec<ureq::Agent> = (0..12).map(|_| http()).collect();
    let handles: Vec<_> = agents
        .into_iter()
        .map(|agent| {
            let url = url.clone();
            std::thread::spawn(move || {
                let mut r = agent
                    .post(&url)
                    .header("Content-Type", "application/json")
                    .send(user("echo: burst").to_string().as_bytes())
                    .unwrap();
                let status = r.status().as_u16();
                r.body_mut().read_to_string().ok();
                (status, agent)
            })
        })
        .collect();
    let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert!(results.iter().all(|(s, _)| *s == 200));
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "burst took {:?}",
        started.elapsed()
    );
    assert!(gw.stderr().lines().all(|l| !l.contains("accept failed")));
}

// A body larger than the upstream TCP layer's send batch (64 KiB) leaves in several
// sends and arrives whole, and the connection stays usable for the next request.
#[test]
fn a_large_request_body_reaches_the_upstream_whole() {
    let up = MockUpstream::start(|_| MockReply::json(200, completion("ok")));
    let gw = Gateway::start(Some(&config_for(&up.v1(), "")));
    let url = format!("{}/chat/completions", gw.base_url());
    let text: String = (0..40_000).map(|i| format!("w{i} ")).collect();
    assert!(text.len() > 200 * 1024);
    for _ in 0..2 {
        let (status, _, body) = post_json(&url, &user(&text), &[]);
        assert_eq!(status, 200, "{body}");
    }
    let got = up.requests();
    assert_eq!(got.len(), 2);
    for r in got {
        let v: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(v["messages"][0]["content"], text.as_str());
    }
    assert_eq!(up.connections.load(std::sync::atomic::Ordering::SeqCst), 1);
}

// A pooled connection is checked before it carries a request: one the upstream closed
// while idle, or wrote stray bytes on, is dropped and the request goes on a new one.
#[test]
fn a_pooled_upstream_connection_closed_or_dirtied_by_the_upstream_is_not_reused() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let n = Arc::new(AtomicUsize::new(0));
    let seen = n.clone();
    let up = MockUpstream::start(move |_| {
        let ok = MockReply::json(200, completion("hello"));
        match seen.fetch_add(1, Ordering::SeqCst) {
            0 => MockReply::CloseAfter(Box::new(ok)),
            1 => MockReply::StrayAfter(Box::new(ok), b"HTTP/1.1 200 OK\r\n".to_vec()),
            _ => ok,
        }
    });
    let gw = Gateway::start(Some(&config_for(&up.v1(), "")));
    let url = format!("{}/chat/completions", gw.base_url());
    for i in 0..4 {
        // Time for the close or the stray bytes to reach kt's side of the socket.
        std::thread::sleep(Duration::from_millis(50));
        let (status, _, body) = post_json(&url, &user("hi"), &[]);
        assert_eq!(status, 200, "request {i}: {body}");
    }
    assert_eq!(
        n.load(Ordering::SeqCst),
        4,
        "each request reached the upstream once"
    );
    // First connection closed by the upstream, second dirtied: the third carries the rest.
    assert_eq!(up.connections.load(Ordering::SeqCst), 3);
}

// Upstream connections are pooled: sequential requests, streamed or not, reuse one
// keep-alive connection instead of opening one each (counted at the mock's accept).
#[test]
fn upstream_connections_are_reused_across_requests() {
    let up = MockUpstream::start(|r| {
        if r.json()["stream"] == true {
            MockReply::openai_sse(
                &[
                    chunk(json!({"role": "assistant", "content": "hi"}), None),
                    chunk(json!({}), Some("stop")),
                ],
                Duration::ZERO,
            )
        } else {
            MockReply::json(200, completion("hello"))
        }
    });
    let gw = Gateway::start(Some(&config_for(&up.v1(), "")));
    let url = format!("{}/chat/completions", gw.base_url());
    for i in 0..30 {
        if i % 2 == 0 {
            let (status, _, body) = post_json(&url, &user("hi"), &[]);
            assert_eq!(status, 200, "{body}");
        } else {
            let (status, events) = post_stream(
                &url,
                &json!({"model": "gpt-4o", "stream": true, "messages": [{"role": "user", "content": "hi"}]}),
            );
            assert_eq!(status, 200);
            assert_eq!(events.last().map(|e| e.data.as_str()), Some("[DONE]"));
        }
    }
    assert_eq!(up.count(), 30);
    let opened = up.connections.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        opened <= 2,
        "{opened} upstream connections for 30 sequential requests"
    );
}
