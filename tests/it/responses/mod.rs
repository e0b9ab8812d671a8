//! `POST /v1/responses`: the official openai SDK's `responses.create` / `responses.stream`
//! through kt to a native OpenAI Responses upstream (`openai:responses:<model>`, passed
//! through), an OpenAI chat upstream and an Anthropic one (translated), with function
//! calls, policy blocks and redactions, streams that arrive as the upstream sends them,
//! and the recorded events.

mod mocks;

use std::time::Duration;

use serde_json::{json, Value};

use crate::support::*;
use mocks::{text_of, typed_events, CARD};

const PIECE_DELAY: Duration = Duration::from_millis(5);

fn gateway(target: &str, action: &str) -> Gateway {
    // The native target's model has an alias, to show the upstream gets the target's name.
    let aliases = if target.contains("gpt-4.1") {
        "models:\n  aliases: {fast: gpt-4.1}\n"
    } else {
        ""
    };
    let yaml = format!(
        "pack: {{name: responses}}\nproviders:\n  retry: {{attempts: 1}}\n  targets:\n{target}\n{aliases}policies:\n  chain: [pii-detector, audit-logger]\npolicy:\n  pii-detector: {{action: {action}}}\n"
    );
    Gateway::start_with(
        Some(&yaml),
        &[],
        &[("TEST_ANTHROPIC_KEY", "sk-ant-configured")],
    )
}

fn native_target(up: &MockUpstream) -> String {
    format!(
        "    - {{id: r, provider: 'openai:responses:gpt-4.1', model: gpt-4.1, base_url: '{}'}}",
        up.v1()
    )
}

fn chat_target(up: &MockUpstream) -> String {
    format!(
        "    - {{id: a, provider: openai, model: gpt-4o, base_url: '{}'}}",
        up.v1()
    )
}

fn anthropic_target(up: &MockUpstream) -> String {
    format!(
        "    - id: claude\n      provider: anthropic\n      model: claude-sonnet-4-5\n      base_url: '{}'\n      secret_key_ref: {{env: TEST_ANTHROPIC_KEY}}",
        up.v1()
    )
}

/// Runs tests/python/sdk_responses.py under pii-detector `action`; checks the events.
fn run_script(gw: &Gateway, model: &str, call_id: &str, action: &str) {
    let out = run_python(
        "sdk_responses.py",
        &gw.base_url(),
        &[
            ("KT_TEST_MODEL", model),
            ("KT_CALL_ID", call_id),
            ("KT_PII_ACTION", action),
        ],
    );
    assert!(out.contains("ALL OK"), "{out}");
    // 8 answered requests, 2 with a card in the prompt, 2 with a card in the answer.
    let events = gw.events(12);
    assert_eq!(events.len(), 12, "{events:#?}");
    assert!(events
        .iter()
        .all(|e| e["kind"] == "responses" && e["endpoint"] == "/v1/responses"));
    let touched: Vec<&Value> = events.iter().filter(|e| e["verdict"] != "allow").collect();
    assert_eq!(touched.len(), 4, "{events:#?}");
    if action == "block" {
        assert!(touched
            .iter()
            .all(|e| e["status"] == 409 && e["blocked_by"] == "pii-detector"));
    } else {
        assert!(touched
            .iter()
            .all(|e| e["status"] == 200 && e["verdict"] == "redact"));
    }
    // Every answered request has its usage, streamed or not.
    for e in events.iter().filter(|e| e["status"] == 200) {
        assert_eq!(e["total_tokens"], 10, "{e:#?}");
    }
    assert!(events
        .iter()
        .any(|e| e["stream"] == true && e["status"] == 200));
}

/// No upstream request carried the raw card number; under `redact` one carried the marker.
fn check_card_never_sent(up: &MockUpstream, action: &str) {
    let bodies: Vec<String> = up
        .requests()
        .iter()
        .map(|r| String::from_utf8_lossy(&r.body).into_owned())
        .collect();
    assert!(bodies.iter().all(|b| !b.contains("4111")));
    assert_eq!(
        bodies.iter().any(|b| b.contains("[CREDIT_CARD]")),
        action == "redact"
    );
}

#[test]
fn openai_sdk_responses_passed_through_to_a_native_responses_upstream() {
    for action in ["block", "redact"] {
        let up = mocks::native(PIECE_DELAY);
        let gw = gateway(&native_target(&up), action);
        // `fast` is an alias: the upstream gets the target's model.
        run_script(&gw, "fast", "call_n1", action);
        let reqs = up.requests();
        // The upstream got Responses bodies, as the SDK sent them, never chat.
        for r in &reqs {
            let b = r.json();
            assert_eq!(r.path, "/v1/responses");
            assert_eq!(b["model"], "gpt-4.1");
            assert!(
                b.get("messages").is_none() && b.get("input").is_some(),
                "{b}"
            );
        }
        let first = reqs[0].json();
        assert_eq!(first["instructions"], "Be terse.");
        assert_eq!(first["input"], "hello there");
        let round = reqs
            .iter()
            .map(Received::json)
            .find(|b| b["input"][2]["type"] == "function_call_output")
            .unwrap();
        assert_eq!(round["input"][1]["type"], "function_call");
        assert_eq!(round["input"][1]["call_id"], "call_n1");
        assert_eq!(round["input"][2]["output"], "21C");
        assert_eq!(round["tools"][0]["name"], "get_weather");
        assert!(reqs.iter().any(|r| r.json()["stream"] == true));
        check_card_never_sent(&up, action);
    }
}

#[test]
fn openai_sdk_responses_translated_for_an_openai_chat_upstream() {
    for action in ["block", "redact"] {
        let up = mocks::chat(PIECE_DELAY);
        let gw = gateway(&chat_target(&up), action);
        run_script(&gw, "gpt-4o", "call_w1", action);
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
        // Streams were streamed upstream too, asking for usage.
        let streamed: Vec<Value> = reqs
            .iter()
            .map(Received::json)
            .filter(|b| b["stream"] == true)
            .collect();
        assert!(!streamed.is_empty());
        assert!(streamed
            .iter()
            .all(|b| b["stream_options"]["include_usage"] == true));
        check_card_never_sent(&up, action);
    }
}

#[test]
fn openai_sdk_responses_translated_for_an_anthropic_upstream() {
    for action in ["block", "redact"] {
        let up = mocks::anthropic(PIECE_DELAY);
        let gw = gateway(&anthropic_target(&up), action);
        run_script(&gw, "claude-sonnet-4-5", "toolu_w1", action);
        let first = up.requests()[0].json();
        assert_eq!(text_of(&first["system"]), "Be terse.");
        assert!(up.requests().iter().any(|r| r.json()["stream"] == true));
        check_card_never_sent(&up, action);
    }
}

/// Streams the Responses answer to "count to five" and checks that the text deltas
/// reached the client one by one while the upstream was still sending.
fn assert_incremental(gw: &Gateway, model: &str) -> Vec<Value> {
    let body = json!({"model": model, "input": "count to five", "stream": true});
    let (status, arrivals) = post_stream(&format!("{}/responses", gw.base_url()), &body);
    assert_eq!(status, 200);
    let events = typed_events(&arrivals);
    let kinds: Vec<&str> = events
        .iter()
        .filter_map(|(_, e)| e["type"].as_str())
        .collect();
    assert_eq!(kinds[..2], ["response.created", "response.in_progress"]);
    assert_eq!(kinds.last(), Some(&"response.completed"), "{kinds:?}");
    let deltas: Vec<(Duration, &str)> = events
        .iter()
        .filter(|(_, e)| e["type"] == "response.output_text.delta")
        .map(|(at, e)| (*at, e["delta"].as_str().unwrap()))
        .collect();
    let text: String = deltas.iter().map(|(_, d)| *d).collect();
    assert_eq!(text, "echo: count to five");
    // The upstream sends a piece every 150 ms: each must arrive on its own.
    for pair in deltas.windows(2) {
        assert!(
            pair[1].0 - pair[0].0 >= Duration::from_millis(100),
            "deltas arrived together: {deltas:?}"
        );
    }
    let (last_at, last) = events.last().unwrap();
    assert!(
        *last_at - deltas[0].0 >= Duration::from_millis(400),
        "the first delta came {:?}, the end {:?}",
        deltas[0].0,
        last_at
    );
    // `response.created` went out before the first delta, as soon as the upstream answered.
    assert!(events[0].0 < deltas[0].0);
    for (n, (_, e)) in events.iter().enumerate() {
        assert_eq!(e["sequence_number"], n);
    }
    assert_eq!(last["response"]["output"][0]["content"][0]["text"], text);
    assert_eq!(last["response"]["usage"]["total_tokens"], 10);
    let ev = &gw.events(1)[0];
    assert!(ev["ttft_ms"].as_f64().unwrap() + 300.0 < ev["latency_ms"].as_f64().unwrap());
    events.into_iter().map(|(_, e)| e).collect()
}

#[test]
fn responses_streams_arrive_while_the_upstream_is_still_sending() {
    let slow = Duration::from_millis(150);
    let up = mocks::native(slow);
    let gw = gateway(&native_target(&up), "redact");
    let events = assert_incremental(&gw, "gpt-4.1");
    // Relayed, not rebuilt: the upstream's ids and fields reach the client.
    let last = events.last().unwrap();
    assert_eq!(last["response"]["id"], "resp_n1");
    assert_eq!(last["response"]["x_upstream_marker"], "native");
    assert_eq!(last["response"]["x_keeptrusts"]["provider_used"], "openai");

    let up = mocks::chat(slow);
    let gw = gateway(&chat_target(&up), "redact");
    let events = assert_incremental(&gw, "gpt-4o");
    assert_eq!(
        events.last().unwrap()["response"]["x_keeptrusts"]["provider_used"],
        "openai"
    );
}

#[test]
fn a_broken_upstream_stream_ends_with_error_and_response_failed() {
    fn truncated(events: Vec<String>) -> MockReply {
        MockReply::Sse {
            events,
            delay: Duration::ZERO,
            close_early: true,
        }
    }
    let chunk = json!({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o",
        "choices": [{"index": 0, "delta": {"content": "It was fine. "}, "finish_reason": null}]});
    let chat_events = vec![format!("data: {chunk}\n\n")];
    let up = MockUpstream::start(move |_| truncated(chat_events.clone()));
    let gw = gateway(&chat_target(&up), "redact");
    let native_up = MockUpstream::start(move |r| {
        let MockReply::Sse { events, .. } = mocks::native_reply(
            &r.json(),
            &mocks::Answer::Text("It was fine. And then".into()),
            true,
            Duration::ZERO,
        ) else {
            unreachable!()
        };
        // Up to the second delta, then the connection drops.
        truncated(events.into_iter().take(6).collect())
    });
    let native_gw = gateway(&native_target(&native_up), "redact");
    for (gw, model, id) in [
        (&gw, "gpt-4o", None),
        (&native_gw, "gpt-4.1", Some("resp_n1")),
    ] {
        let body = json!({"model": model, "input": "hi", "stream": true});
        let (status, arrivals) = post_stream(&format!("{}/responses", gw.base_url()), &body);
        assert_eq!(status, 200);
        let events = events_of(&arrivals);
        let kinds = kinds_of(&events);
        assert!(kinds.contains(&"response.output_text.delta"), "{kinds:?}");
        assert_eq!(
            kinds[kinds.len() - 2..],
            ["error", "response.failed"],
            "{kinds:?}"
        );
        let failed = &events.last().unwrap()["response"];
        assert_eq!(failed["status"], "failed");
        assert_eq!(failed["error"]["code"], "server_error");
        if let Some(id) = id {
            assert_eq!(failed["id"], id);
        }
        let ev = &gw.events(1)[0];
        assert_eq!(ev["status"], 502, "{ev:#?}");
    }
}

#[test]
fn native_pass_through_keeps_what_kt_does_not_know() {
    let up = mocks::native(Duration::ZERO);
    let gw = gateway(&native_target(&up), "redact");
    let url = format!("{}/responses", gw.base_url());
    // Server-side state and built-in tools are the upstream's business: sent as they are.
    let body = json!({"model": "gpt-4.1", "previous_response_id": "resp_0", "store": true,
        "input": [{"type": "item_reference", "id": "msg_0"},
                  {"role": "user", "content": [{"type": "input_text", "text": format!("pay {CARD}")}]}],
        "reasoning": {"effort": "low"}, "x_vendor": {"a": 1}});
    let (status, _, resp) = post_json(&url, &body, &[]);
    assert_eq!(status, 200, "{resp}");
    assert_eq!(resp["x_upstream_marker"], "native");
    assert_eq!(
        resp["output"][0]["content"][0]["text"],
        "echo: pay [CREDIT_CARD]"
    );
    let sent = up.requests()[0].json();
    let mut expected = body.clone();
    expected["input"][1]["content"][0]["text"] = json!("pay [CREDIT_CARD]");
    assert_eq!(sent, expected);
    // The same request to a chat target is refused: kt keeps no response state.
    let chat_up = mocks::chat(Duration::ZERO);
    let chat_gw = gateway(&chat_target(&chat_up), "redact");
    let mut body = body;
    body["model"] = json!("gpt-4o");
    let (status, _, err) = post_json(&format!("{}/responses", chat_gw.base_url()), &body, &[]);
    assert_eq!(status, 400);
    assert_eq!(err["error"]["param"], "store");
    assert_eq!(chat_up.count(), 0);
}

#[test]
fn responses_errors_are_400s_naming_the_parameter() {
    let up = mocks::chat(Duration::ZERO);
    let gw = gateway(&chat_target(&up), "block");
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

/// Tools a native Responses request offers beyond functions — custom tools, built-in ones
/// (by type), remote MCP servers (`mcp:<server_label>`) — pass the firewall by name:
/// blocked, or removed from what the provider gets; a custom tool's call is checked and
/// its input redacted on the way out.
#[test]
fn native_responses_tools_pass_the_firewall_by_name() {
    let up = MockUpstream::start(|r| {
        let body = r.json();
        let (name, input) = if body["input"] == "reset" {
            ("reset_admin", "now")
        } else {
            ("notes", "mail john.doe@example.com")
        };
        MockReply::json(
            200,
            json!({"id": "resp_1", "object": "response", "status": "completed",
            "model": "gpt-4.1", "output": [{"type": "custom_tool_call", "id": "ctc_1",
            "call_id": "call_1", "name": name, "input": input, "status": "completed"}],
            "usage": {"input_tokens": 5, "output_tokens": 5, "total_tokens": 10}}),
        )
    });
    let gateway = |firewall: &str| {
        Gateway::start(Some(&format!(
            "pack: {{name: responses}}\nproviders:\n  targets:\n{}\npolicies:\n  chain: [pii-detector, agent-firewall, audit-logger]\npolicy:\n  pii-detector: {{}}\n  agent-firewall: {firewall}\n",
            native_target(&up)
        )))
    };
    let tools = json!([
        {"type": "function", "name": "shell", "parameters": {"type": "object"}},
        {"type": "custom", "name": "notes"},
        {"type": "web_search"},
        {"type": "local_shell"},
        {"type": "mcp", "server_label": "internal_db", "server_url": "https://mcp.example"}]);
    let ask =
        |input: &str, tools: Value| json!({"model": "gpt-4.1", "input": input, "tools": tools});

    let gw = gateway("{deny_tools: [shell, local_shell, \"mcp:internal*\", reset_admin], remove_denied_tools: true}");
    let url = format!("{}/responses", gw.base_url());
    let (status, _, resp) = post_json(&url, &ask("go", tools.clone()), &[]);
    assert_eq!(status, 200, "{resp}");
    let sent = up.requests()[0].json();
    assert_eq!(
        sent["tools"],
        json!([{"type": "custom", "name": "notes"}, {"type": "web_search"}]),
        "the provider never sees the removed tools"
    );
    // The custom tool's input is redacted on the way out.
    assert_eq!(resp["output"][0]["input"], "mail [EMAIL]");
    // A call to a denied tool is refused.
    let (status, _, resp) = post_json(
        &url,
        &ask("reset", json!([{"type": "custom", "name": "notes"}])),
        &[],
    );
    assert_eq!(status, 409, "{resp}");
    assert_eq!(resp["error"]["code"], "output_blocked");

    // Enforcing: any denied tool offered blocks the request, before the provider.
    let gw = gateway("{deny_tools: [\"mcp:internal*\"]}");
    let before = up.count();
    let (status, _, resp) = post_json(
        &format!("{}/responses", gw.base_url()),
        &ask("go", tools),
        &[],
    );
    assert_eq!(status, 409, "{resp}");
    assert!(
        resp["error"]["message"]
            .as_str()
            .unwrap()
            .contains("`mcp:internal_db`"),
        "{resp}"
    );
    assert_eq!(up.count(), before);
}

/// A native stream's tool call is checked once its arguments are complete, before the
/// event that completes it: a client (an agent) acting on `.done` never gets a call the
/// firewall refuses.
#[test]
fn a_refused_call_in_a_native_stream_never_completes() {
    let up = mocks::native(Duration::ZERO);
    let yaml = format!(
        "pack: {{name: responses}}\nproviders:\n  targets:\n{}\npolicies:\n  chain: [agent-firewall, audit-logger]\npolicy:\n  agent-firewall: {{deny_tools: [get_weather]}}\n",
        native_target(&up)
    );
    let gw = Gateway::start(Some(&yaml));
    let body = json!({"model": "gpt-4.1", "input": "What's the weather in Paris?", "stream": true,
                      "tools": [{"type": "function", "name": "lookup", "parameters": {"type": "object"}}]});
    let (status, arrivals) = post_stream(&format!("{}/responses", gw.base_url()), &body);
    assert_eq!(status, 200);
    let events = events_of(&arrivals);
    let kinds = kinds_of(&events);
    assert!(kinds.contains(&"response.output_item.added"), "{kinds:?}");
    for completes in [
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ] {
        assert!(!kinds.contains(&completes), "{completes} in {kinds:?}");
    }
    assert_eq!(
        kinds[kinds.len() - 2..],
        ["error", "response.failed"],
        "{kinds:?}"
    );
    let failed = &events.last().unwrap()["response"];
    assert_eq!(failed["error"]["code"], "output_blocked");
    let ev = &gw.events(1)[0];
    assert_eq!(ev["status"], 409, "{ev:#?}");
    assert_eq!(ev["blocked_by"], "agent-firewall");

    // An allowed call streams to its end.
    let yaml = yaml.replace("deny_tools: [get_weather]", "deny_tools: [shell]");
    let gw = Gateway::start(Some(&yaml));
    let (status, arrivals) = post_stream(&format!("{}/responses", gw.base_url()), &body);
    assert_eq!(status, 200);
    let events = events_of(&arrivals);
    let kinds = kinds_of(&events);
    assert!(
        kinds.contains(&"response.function_call_arguments.done"),
        "{kinds:?}"
    );
    assert_eq!(kinds.last(), Some(&"response.completed"), "{kinds:?}");
}

/// A Responses stream's events, in order.
fn events_of(arrivals: &[Arrival]) -> Vec<Value> {
    typed_events(arrivals).into_iter().map(|(_, e)| e).collect()
}

/// Their `type`s.
fn kinds_of(events: &[Value]) -> Vec<&str> {
    events.iter().filter_map(|e| e["type"].as_str()).collect()
}
