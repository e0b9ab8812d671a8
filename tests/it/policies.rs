//! The content and tool policies end to end through the real gateway against a mock
//! OpenAI upstream: `pii-detector`, `dlp-filter`, `safety-filter`, `agent-firewall`.
//! For each: a blocked request never reaches the upstream, redacted values never reach
//! it, responses are redacted or blocked both whole and streamed, and the event records
//! the decision and its findings but never a raw value.

use std::time::Duration;

use serde_json::{json, Value};

use crate::support::*;

fn config(upstream: &str, chain: &str, blocks: &str) -> String {
    format!(
        "pack: {{name: policies, version: 1.0.0}}
providers:
  targets:
    - id: primary
      provider: openai
      model: gpt-4o
      base_url: {upstream}
policies:
  chain: [{chain}, audit-logger]
policy:
{blocks}"
    )
}

fn completion(content: &str) -> Value {
    json!({
        "id": "chatcmpl-up", "object": "chat.completion", "created": 1, "model": "gpt-4o",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}
    })
}

fn tool_completion(name: &str, args: &str) -> Value {
    json!({
        "id": "chatcmpl-up", "object": "chat.completion", "created": 1, "model": "gpt-4o",
        "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {"role": "assistant", "content": null,
            "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": name, "arguments": args}}]}}]
    })
}

fn chunk(delta: Value, finish: Option<&str>) -> Value {
    json!({"id": "chatcmpl-up", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o",
           "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
}

/// An SSE reply that streams `pieces` as content deltas, `delay` apart; the last piece
/// rides on the chunk with the finish reason when `last_with_finish`.
fn sse(pieces: &[&str], delay: Duration, last_with_finish: bool) -> MockReply {
    let mut chunks = vec![chunk(json!({"role": "assistant", "content": ""}), None)];
    for (i, p) in pieces.iter().enumerate() {
        let finish = (last_with_finish && i + 1 == pieces.len()).then_some("stop");
        chunks.push(chunk(json!({"content": p}), finish));
    }
    if !last_with_finish {
        chunks.push(chunk(json!({}), Some("stop")));
    }
    MockReply::openai_sse(&chunks, delay)
}

/// The gateway with the chain `pii-detector` configured by `fields` (a YAML mapping).
fn pii_gateway(up: &MockUpstream, fields: &str) -> Gateway {
    Gateway::start(Some(&config(
        &up.v1(),
        "pii-detector",
        &format!("  pii-detector: {fields}\n"),
    )))
}

fn user(text: &str) -> Value {
    json!({"model": "gpt-4o", "messages": [{"role": "user", "content": text}]})
}

fn streamed(mut body: Value) -> Value {
    body["stream"] = json!(true);
    body
}

fn chat_url(gw: &Gateway) -> String {
    format!("{}/chat/completions", gw.base_url())
}

/// The content deltas of a stream, in order.
fn contents(arrivals: &[Arrival]) -> Vec<(Duration, String)> {
    arrivals
        .iter()
        .filter_map(|a| {
            let v: Value = serde_json::from_str(&a.data).ok()?;
            let c = v["choices"][0]["delta"]["content"].as_str()?.to_string();
            (!c.is_empty()).then_some((a.at, c))
        })
        .collect()
}

fn joined(arrivals: &[Arrival]) -> String {
    contents(arrivals).into_iter().map(|(_, c)| c).collect()
}

/// The block envelope of a policy.
fn assert_blocked(body: &Value, policy: &str, code: &str) {
    assert_eq!(body["error"]["type"], "policy_violation", "{body}");
    assert_eq!(body["error"]["policy"], policy, "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    let msg = body["error"]["message"].as_str().unwrap_or_default();
    assert!(msg.ends_with('.') && msg.len() > 30, "a sentence: {msg:?}");
}

/// A stream that ends with a policy error chunk and then `[DONE]`.
fn assert_stream_blocked(arrivals: &[Arrival], policy: &str) {
    let n = arrivals.len();
    assert!(n >= 2, "{arrivals:?}");
    assert_eq!(arrivals[n - 1].data, "[DONE]");
    let err: Value = serde_json::from_str(&arrivals[n - 2].data).unwrap();
    assert_blocked(&err, policy, "output_blocked");
}

/// The trace entries of a policy on the (only) event.
fn traces(ev: &Value, policy: &str) -> Vec<Value> {
    ev["policies"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|t| t["policy"] == policy)
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

/// The trace entry of a policy in one phase.
fn trace_in(ev: &Value, policy: &str, phase: &str) -> Value {
    traces(ev, policy)
        .into_iter()
        .find(|t| t["phase"] == phase)
        .unwrap_or(Value::Null)
}

fn finding(trace: &Value, kind: &str) -> u64 {
    trace["findings"]
        .as_array()
        .and_then(|fs| fs.iter().find(|f| f["kind"] == kind))
        .and_then(|f| f["count"].as_u64())
        .unwrap_or(0)
}

/// No raw value anywhere in the database file.
fn assert_db_clean(gw: &Gateway, raws: &[&str]) {
    let db = String::from_utf8_lossy(&std::fs::read(&gw.db).unwrap()).to_string();
    for raw in raws {
        assert!(!db.contains(raw), "`{raw}` stored in the database");
    }
}

const EMAIL: &str = "john.doe@example.com";
const CARD: &str = "4111 1111 1111 1111";
const SSN: &str = "123-45-6789";
const KEY: &str = "sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z";

#[test]
fn pii_redacted_values_never_reach_the_upstream() {
    let up = MockUpstream::start(|_| MockReply::json(200, completion("noted")));
    let gw = pii_gateway(&up, "{action: redact}");
    let body = json!({"model": "gpt-4o", "messages": [
        {"role": "system", "content": format!("Escalate to {EMAIL}.")},
        {"role": "user", "content": [{"type": "text", "text": format!("My SSN is {SSN} and my key is {KEY}")}]},
        {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function",
            "function": {"name": "charge", "arguments": json!({"card": CARD}).to_string()}}]},
        {"role": "tool", "tool_call_id": "c1", "content": format!("charged {CARD}")}
    ]});
    let (status, _, resp) = post_json(&chat_url(&gw), &body, &[]);
    assert_eq!(status, 200, "{resp}");
    assert_eq!(resp["choices"][0]["message"]["content"], "noted");
    let sent = String::from_utf8(up.requests()[0].body.clone()).unwrap();
    for raw in [EMAIL, SSN, KEY, CARD, "4111"] {
        assert!(!sent.contains(raw), "`{raw}` reached the upstream: {sent}");
    }
    let sent: Value = serde_json::from_str(&sent).unwrap();
    assert_eq!(sent["messages"][0]["content"], "Escalate to [EMAIL].");
    assert_eq!(
        sent["messages"][1]["content"][0]["text"],
        "My SSN is [US_SSN] and my key is [OPENAI_API_KEY]"
    );
    assert_eq!(
        sent["messages"][2]["tool_calls"][0]["function"]["arguments"],
        r#"{"card":"[CREDIT_CARD]"}"#
    );
    assert_eq!(sent["messages"][3]["content"], "charged [CREDIT_CARD]");

    let ev = &gw.events(1)[0];
    assert_eq!(ev["verdict"], "redact");
    let t = &traces(ev, "pii-detector")[0];
    assert_eq!(t["phase"], "input");
    assert_eq!(t["verdict"], "redact");
    assert_eq!(t["reason"], "pii_redacted");
    assert_eq!(finding(t, "email"), 1);
    assert_eq!(finding(t, "credit_card"), 2);
    assert_eq!(finding(t, "us_ssn"), 1);
    assert_eq!(finding(t, "openai_api_key"), 1);
    assert_db_clean(&gw, &[EMAIL, SSN, KEY, CARD]);
}

#[test]
fn pii_block_never_reaches_the_upstream() {
    let up = MockUpstream::start(|_| MockReply::json(200, completion("noted")));
    let gw = pii_gateway(&up, "{action: block}");
    let (status, _, body) = post_json(&chat_url(&gw), &user(&format!("card {CARD}")), &[]);
    assert_eq!(status, 409);
    assert_blocked(&body, "pii-detector", "input_blocked");
    assert_eq!(
        body["error"]["message"],
        "Your request was blocked because it contains sensitive data: a payment card number. Remove it and try again."
    );
    // Streaming requests are refused the same way, before any stream starts.
    let (status, _) = post_stream(&chat_url(&gw), &streamed(user(&format!("mail {EMAIL}"))));
    assert_eq!(status, 409);
    assert_eq!(up.count(), 0, "nothing went upstream");
    let evs = gw.events(2);
    assert_eq!(evs.len(), 2);
    for ev in &evs {
        assert_eq!(ev["verdict"], "block");
        assert_eq!(ev["blocked_by"], "pii-detector");
        assert_eq!(ev["status"], 409);
        assert_eq!(traces(ev, "pii-detector")[0]["reason"], "pii_detected");
    }
    assert_eq!(
        finding(&traces(&evs[0], "pii-detector")[0], "credit_card"),
        1
    );
    assert_db_clean(&gw, &[EMAIL, CARD]);
}

#[test]
fn pii_redacts_responses_whole_and_streamed() {
    // The email and the card are split across chunks 60 ms apart.
    let pieces = [
        "Sure. Contact jo",
        "hn.doe@exa",
        "mple.com or pay with 4111 11",
        "11 1111 1111",
        " today.",
    ];
    let up = MockUpstream::start(move |r| {
        if r.json()["stream"] == true {
            sse(&pieces, Duration::from_millis(60), false)
        } else {
            MockReply::json(200, completion(&pieces.concat()))
        }
    });
    let gw = pii_gateway(&up, "{}");
    let expected = "Sure. Contact [EMAIL] or pay with [CREDIT_CARD] today.";

    let (status, _, body) = post_json(&chat_url(&gw), &user("hi"), &[]);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["choices"][0]["message"]["content"], expected);

    let (status, arrivals) = post_stream(&chat_url(&gw), &streamed(user("hi")));
    assert_eq!(status, 200);
    // Any fragment of a raw value in any chunk would show in the concatenation.
    assert_eq!(joined(&arrivals), expected);
    for (_, c) in contents(&arrivals) {
        for frag in ["jo", "hn", "doe", "exa", "4111", "11 "] {
            assert!(!c.contains(frag), "chunk {c:?} leaks {frag:?}");
        }
    }
    // Text before the email flowed at once, not at the end of the stream.
    let parts = contents(&arrivals);
    assert_eq!(parts[0].1, "Sure. Contact ");
    let last = parts.last().unwrap().0;
    assert!(
        last - parts[0].0 >= Duration::from_millis(150),
        "tokens were held until the end: {parts:?}"
    );
    assert_eq!(arrivals.last().unwrap().data, "[DONE]");

    let evs = gw.events(2);
    for ev in &evs {
        assert_eq!(ev["verdict"], "redact", "{ev}");
        let t = traces(ev, "pii-detector");
        assert!(t.iter().any(|t| t["phase"] == "output"
            && finding(t, "email") == 1
            && finding(t, "credit_card") == 1));
    }
    // The stream's event also says what the filter rewrote on the way.
    assert!(traces(&evs[1], "pii-detector")
        .iter()
        .any(|t| t["reason"] == "stream_redaction" && finding(t, "email") == 1));
    assert_db_clean(&gw, &[EMAIL, "john.doe", CARD]);
}

#[test]
fn stream_redaction_keeps_text_order_when_the_last_chunk_carries_content() {
    // Providers may put the last content in the chunk that has the finish reason. What the
    // filter still held must come out before that chunk's own text.
    let up = MockUpstream::start(|_| {
        sse(
            &["Write to jo", "hn@exam", "ple.com thanks"],
            Duration::ZERO,
            true,
        )
    });
    let gw = pii_gateway(&up, "{}");
    let (status, arrivals) = post_stream(&chat_url(&gw), &streamed(user("hi")));
    assert_eq!(status, 200);
    assert_eq!(joined(&arrivals), "Write to [EMAIL] thanks");
    let last: Value = serde_json::from_str(&arrivals[arrivals.len() - 2].data).unwrap();
    assert_eq!(last["choices"][0]["finish_reason"], "stop");
}

/// Tokens as OpenAI's split them: each event ends inside a word.
const SPLIT_WORDS: [&str; 5] = ["Hello", " there", ",", " write", " back"];

#[test]
fn pii_holds_a_streamed_word_until_the_next_event_unless_limited_to_input() {
    let gap = Duration::from_millis(200);
    let up = MockUpstream::start(move |_| sse(&SPLIT_WORDS, gap, false));
    // The default (`apply_to: both`): the last word of what arrived may begin an email
    // address, so it waits for the next event: "Hello" leaves with " there".
    let gw = pii_gateway(&up, "{}");
    let (status, arrivals) = post_stream(&chat_url(&gw), &streamed(user("hi")));
    assert_eq!(status, 200);
    assert_eq!(joined(&arrivals), SPLIT_WORDS.concat());
    let first = &contents(&arrivals)[0];
    assert_eq!(first.1, "Hello ");
    assert!(
        first.0 - arrivals[0].at >= gap * 3 / 2,
        "the first word left before the next event came: {arrivals:?}"
    );

    // `apply_to: input`: requests are still redacted, and every event leaves as it comes.
    let gw = pii_gateway(&up, "{apply_to: input}");
    let (status, arrivals) = post_stream(
        &chat_url(&gw),
        &streamed(user(&format!("reply to {EMAIL}"))),
    );
    assert_eq!(status, 200);
    let parts = contents(&arrivals);
    let texts: Vec<&str> = parts.iter().map(|(_, c)| c.as_str()).collect();
    assert_eq!(texts, SPLIT_WORDS);
    assert!(
        parts[0].0 - arrivals[0].at < gap * 3 / 2,
        "the first word waited for the next event: {arrivals:?}"
    );
    let sent: Value = serde_json::from_slice(&up.requests()[1].body).unwrap();
    assert_eq!(sent["messages"][0]["content"], "reply to [EMAIL]");
}

#[test]
fn pii_blocks_responses_whole_and_streamed() {
    let up = MockUpstream::start(|r| {
        if r.json()["stream"] == true {
            sse(
                &[
                    "Your key: sk-proj-Ab3dEf6",
                    "hIj9kLm2nOp5qRs8tUv1wXy4z",
                    " keep it safe",
                ],
                Duration::from_millis(20),
                false,
            )
        } else {
            MockReply::json(200, completion(&format!("Your key: {KEY}")))
        }
    });
    let gw = pii_gateway(&up, "{action: block}");
    let (status, _, body) = post_json(&chat_url(&gw), &user("what is my key?"), &[]);
    assert_eq!(status, 409);
    assert_blocked(&body, "pii-detector", "output_blocked");
    assert_eq!(
        body["error"]["message"],
        "The response was blocked because it contained sensitive data: an OpenAI API key."
    );
    assert_eq!(up.count(), 1, "the clean request went upstream");

    let (status, arrivals) = post_stream(&chat_url(&gw), &streamed(user("what is my key?")));
    assert_eq!(status, 200);
    assert_stream_blocked(&arrivals, "pii-detector");
    for a in &arrivals {
        assert!(
            !a.data.contains("Ab3dEf6") && !a.data.contains("hIj9"),
            "leaked: {}",
            a.data
        );
    }
    let evs = gw.events(2);
    for ev in &evs {
        assert_eq!(ev["verdict"], "block");
        assert_eq!(ev["blocked_by"], "pii-detector");
    }
    assert_db_clean(&gw, &[KEY, "Ab3dEf6"]);
}

const DLP: &str = "  dlp-filter:
    redaction_marker: '[REDACTED:{name}]'
    rules:
      - {name: deals, phrases: [acme acquisition]}
      - {name: codenames, action: redact, keywords: [nightjar]}
      - {name: competitors, action: flag, keywords: [initech]}
";

#[test]
fn dlp_blocks_redacts_and_flags() {
    let up = MockUpstream::start(|r| {
        if r.json()["stream"] == true {
            sse(
                &[
                    "Project Night",
                    "jar ships Friday; the Acme acq",
                    "uisition is done.",
                ],
                Duration::from_millis(10),
                false,
            )
        } else {
            MockReply::json(200, completion("Initech called about Nightjar."))
        }
    });
    let gw = Gateway::start(Some(&config(&up.v1(), "dlp-filter", DLP)));
    let (status, _, body) = post_json(
        &chat_url(&gw),
        &user("Draft the ACME  acquisition memo"),
        &[],
    );
    assert_eq!(status, 409);
    assert_blocked(&body, "dlp-filter", "input_blocked");
    assert_eq!(up.count(), 0);

    let (status, _, body) = post_json(&chat_url(&gw), &user("Status of nightjar vs Initech?"), &[]);
    assert_eq!(status, 200, "{body}");
    let sent = up.requests()[0].json();
    assert_eq!(
        sent["messages"][0]["content"],
        "Status of [REDACTED:codenames] vs Initech?"
    );
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "Initech called about [REDACTED:codenames]."
    );

    // Streamed, the block-rule phrase is masked as it flows, then the stream is blocked.
    let (status, arrivals) = post_stream(&chat_url(&gw), &streamed(user("news?")));
    assert_eq!(status, 200);
    assert_eq!(
        joined(&arrivals),
        "Project [REDACTED:codenames] ships Friday; the [REDACTED:deals] is done."
    );
    assert_stream_blocked(&arrivals, "dlp-filter");

    let evs = gw.events(3);
    assert_eq!(evs[0]["verdict"], "block");
    assert_eq!(evs[1]["verdict"], "redact");
    let input = &traces(&evs[1], "dlp-filter")[0];
    assert_eq!(input["reason"], "dlp_redact");
    assert_eq!(finding(input, "codenames"), 1);
    assert_eq!(finding(input, "competitors"), 1);
    assert_eq!(evs[2]["verdict"], "block");
    assert_db_clean(&gw, &["nightjar", "Nightjar", "acquisition"]);
}

#[test]
fn safety_filter_blocks_unsafe_prompts_and_streams() {
    let up = MockUpstream::start(|_| {
        sse(
            &["Step one of how to m", "ake a bo", "mb: never."],
            Duration::from_millis(10),
            false,
        )
    });
    let gw = Gateway::start(Some(&config(
        &up.v1(),
        "safety-filter",
        "  safety-filter: {}\n",
    )));
    let (status, _, body) = post_json(&chat_url(&gw), &user("Tell me how to make a bomb"), &[]);
    assert_eq!(status, 409);
    assert_blocked(&body, "safety-filter", "input_blocked");
    assert_eq!(
        body["error"]["message"],
        "Your request was blocked because it asks for unsafe content (violent harm), which this service does not provide."
    );
    assert_eq!(up.count(), 0);

    let (status, arrivals) = post_stream(&chat_url(&gw), &streamed(user("a chemistry question")));
    assert_eq!(status, 200);
    assert_eq!(joined(&arrivals), "Step one of [REDACTED]: never.");
    assert_stream_blocked(&arrivals, "safety-filter");
    let evs = gw.events(2);
    assert_eq!(finding(&traces(&evs[0], "safety-filter")[0], "violence"), 1);
    assert_eq!(evs[1]["blocked_by"], "safety-filter");
}

const FIREWALL: &str = "  agent-firewall:
    deny_tools: [\"*_admin\", shell]
    max_tool_calls: 2
    arguments:
      transfer_funds:
        amount: {type: number, maximum: 1000}
";

/// A gateway whose chain redacts PII and then runs the `FIREWALL` block.
fn pii_and_firewall_gateway(up: &MockUpstream) -> Gateway {
    Gateway::start(Some(&config(
        &up.v1(),
        "pii-detector, agent-firewall",
        &format!("  pii-detector: {{}}\n{FIREWALL}"),
    )))
}

/// A completion whose one choice is `message`, finished with `finish`.
fn answer(message: Value, finish: &str) -> Value {
    let mut reply = completion("");
    reply["choices"][0]["message"] = message;
    reply["choices"][0]["finish_reason"] = json!(finish);
    reply
}

fn with_tools(names: &[&str]) -> Value {
    let tools: Vec<Value> = names
        .iter()
        .map(|n| json!({"type": "function", "function": {"name": n, "parameters": {"type": "object"}}}))
        .collect();
    json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "do it"}], "tools": tools})
}

#[test]
fn agent_firewall_checks_offered_tools_and_calls() {
    let up = MockUpstream::start(|r| {
        let body = r.json();
        let args = r#"{"amount":5000}"#;
        if body["stream"] == true {
            let chunks = vec![
                chunk(
                    json!({"role": "assistant", "tool_calls": [{"index": 0, "id": "call_1", "type": "function", "function": {"name": "transfer_funds", "arguments": ""}}]}),
                    None,
                ),
                chunk(
                    json!({"tool_calls": [{"index": 0, "function": {"arguments": args}}]}),
                    None,
                ),
                chunk(json!({}), Some("tool_calls")),
            ];
            MockReply::openai_sse(&chunks, Duration::ZERO)
        } else if body["messages"][0]["content"] == "reset" {
            MockReply::json(200, tool_completion("reset_admin", "{}"))
        } else {
            MockReply::json(200, tool_completion("transfer_funds", args))
        }
    });
    let gw = Gateway::start(Some(&config(&up.v1(), "agent-firewall", FIREWALL)));
    let (status, _, body) = post_json(&chat_url(&gw), &with_tools(&["search", "shell"]), &[]);
    assert_eq!(status, 409);
    assert_blocked(&body, "agent-firewall", "input_blocked");
    assert_eq!(
        body["error"]["message"],
        "Your request was blocked because it offers the tool `shell`, which the agent firewall does not allow."
    );
    assert_eq!(up.count(), 0);

    let mut reset = with_tools(&["search", "reset_user"]);
    reset["messages"][0]["content"] = json!("reset");
    let (status, _, body) = post_json(&chat_url(&gw), &reset, &[]);
    assert_eq!(status, 409);
    assert_blocked(&body, "agent-firewall", "output_blocked");

    let (status, _, body) = post_json(&chat_url(&gw), &with_tools(&["transfer_funds"]), &[]);
    assert_eq!(status, 409);
    assert_eq!(
        body["error"]["message"],
        "The response was blocked because the model tried to call the tool `transfer_funds` with an argument `amount` that is not allowed: it is above the allowed maximum."
    );

    let (status, arrivals) =
        post_stream(&chat_url(&gw), &streamed(with_tools(&["transfer_funds"])));
    assert_eq!(status, 200);
    assert_stream_blocked(&arrivals, "agent-firewall");
    // Alone, the firewall lets the fragments pass as they come; with an output redaction
    // in the chain the call is held whole, so the refused call never reaches the client.
    assert!(arrivals.iter().any(|a| a.data.contains("5000")));
    let gw2 = pii_and_firewall_gateway(&up);
    let (status, arrivals) =
        post_stream(&chat_url(&gw2), &streamed(with_tools(&["transfer_funds"])));
    assert_eq!(status, 200);
    assert_stream_blocked(&arrivals, "agent-firewall");
    assert!(
        arrivals
            .iter()
            .all(|a| !a.data.contains("tool_calls") && !a.data.contains("5000")),
        "{arrivals:?}"
    );

    let evs = gw.events(4);
    assert_eq!(
        trace_in(&evs[0], "agent-firewall", "input")["reason"],
        "tool_not_allowed"
    );
    assert_eq!(
        trace_in(&evs[1], "agent-firewall", "output")["reason"],
        "tool_not_allowed"
    );
    for ev in &evs[2..] {
        let t = trace_in(ev, "agent-firewall", "output");
        assert_eq!(t["reason"], "argument_not_allowed", "{ev}");
        assert_eq!(finding(&t, "argument_not_allowed"), 1);
    }
    assert!(evs.iter().all(|e| e["verdict"] == "block"));
}

#[test]
fn observe_mode_records_without_acting() {
    let up = MockUpstream::start(|_| MockReply::json(200, completion("ok")));
    let blocks = "  pii-detector: {mode: observe, action: block}\n  agent-firewall: {mode: observe, deny_tools: [shell]}\n";
    let gw = Gateway::start(Some(&config(
        &up.v1(),
        "pii-detector, agent-firewall",
        blocks,
    )));
    let mut body = with_tools(&["shell"]);
    body["messages"][0]["content"] = json!(format!("mail {EMAIL}"));
    let (status, _, resp) = post_json(&chat_url(&gw), &body, &[]);
    assert_eq!(status, 200, "{resp}");
    let sent = up.requests()[0].json();
    assert_eq!(
        sent["messages"][0]["content"],
        format!("mail {EMAIL}"),
        "observe rewrites nothing"
    );
    let ev = &gw.events(1)[0];
    assert_eq!(ev["verdict"], "allow");
    for policy in ["pii-detector", "agent-firewall"] {
        let t = &traces(ev, policy)[0];
        assert_eq!(t["verdict"], "block", "{policy}");
        assert_eq!(t["observed"], true, "{policy}");
    }
}

#[test]
fn openai_python_sdk_sees_policy_blocks_and_redactions() {
    let up = MockUpstream::start(|r| {
        if r.json()["stream"] == true {
            sse(
                &["mail jo", "hn.doe@exa", "mple.com"],
                Duration::from_millis(5),
                false,
            )
        } else {
            MockReply::json(200, completion("mail john.doe@example.com"))
        }
    });
    let blocks = "  safety-filter: {}\n  pii-detector: {}\n";
    let gw = Gateway::start(Some(&config(
        &up.v1(),
        "safety-filter, pii-detector",
        blocks,
    )));
    let out = run_python("sdk_policies.py", &gw.base_url(), &[]);
    assert!(out.contains("ALL OK"), "{out}");
}

/// A token's `logprobs` entry, as OpenAI writes one.
fn logprob(token: &str) -> Value {
    json!({"token": token, "logprob": -0.1, "bytes": token.as_bytes(),
           "top_logprobs": [{"token": token, "logprob": -0.1, "bytes": token.as_bytes()}]})
}

/// Chunks of `tokens`, each with its logprobs entry, then the finish chunk.
fn logprob_stream(tokens: &[&str]) -> MockReply {
    let mut chunks = vec![chunk(json!({"role": "assistant", "content": ""}), None)];
    for t in tokens {
        let mut c = chunk(json!({"content": t}), None);
        c["choices"][0]["logprobs"] = json!({"content": [logprob(t)], "refusal": null});
        chunks.push(c);
    }
    chunks.push(chunk(json!({}), Some("stop")));
    MockReply::openai_sse(&chunks, Duration::from_millis(5))
}

/// The tokens of a stream's logprobs entries, in the order they arrived.
fn streamed_tokens(arrivals: &[Arrival]) -> Vec<String> {
    arrivals
        .iter()
        .filter_map(|a| serde_json::from_str::<Value>(&a.data).ok())
        .flat_map(|v| {
            let entries = v["choices"][0]["logprobs"]["content"].as_array().cloned();
            entries.unwrap_or_default()
        })
        .filter_map(|e| e["token"].as_str().map(str::to_string))
        .collect()
}

#[test]
fn pii_redaction_keeps_logprobs_from_spelling_what_it_removed() {
    const WITH_EMAIL: [&str; 9] = [
        "Write", " to", " john", ".doe", "@", "example", ".com", " today", ".",
    ];
    const PLAIN: [&str; 4] = ["Hello", " there", ",", " friend"];
    let up = MockUpstream::start(|r| {
        let tokens: &[&str] = if r.json()["messages"][0]["content"] == "email" {
            &WITH_EMAIL
        } else {
            &PLAIN
        };
        if r.json()["stream"] == true {
            return logprob_stream(tokens);
        }
        let mut body = completion(&tokens.concat());
        body["choices"][0]["logprobs"] = json!({"content": tokens.iter().map(|t| logprob(t)).collect::<Vec<_>>(), "refusal": null});
        MockReply::json(200, body)
    });
    let gw = pii_gateway(&up, "{}");
    let url = chat_url(&gw);
    let ask = |what: &str| {
        let mut b = user(what);
        b["logprobs"] = json!(true);
        b["top_logprobs"] = json!(1);
        b
    };

    // Whole answers: a redacted one loses its logprobs; an untouched one keeps them.
    let (status, _, body) = post_json(&url, &ask("email"), &[]);
    assert_eq!(status, 200);
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "Write to [EMAIL] today."
    );
    assert_eq!(body["choices"][0]["logprobs"], Value::Null, "{body}");
    assert!(!body.to_string().contains("john"), "{body}");
    let (status, _, body) = post_json(&url, &ask("plain"), &[]);
    assert_eq!(status, 200);
    let tokens: Vec<&str> = body["choices"][0]["logprobs"]["content"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["token"].as_str().unwrap())
        .collect();
    assert_eq!(tokens, PLAIN);

    // Streams: an entry leaves only with its text, as written; none after a redaction.
    let (status, arrivals) = post_stream(&url, &streamed(ask("email")));
    assert_eq!(status, 200);
    assert_eq!(streamed_text(&arrivals), "Write to [EMAIL] today.");
    assert_eq!(streamed_tokens(&arrivals), ["Write", " to"]);
    for a in &arrivals {
        for leaked in ["john", "doe", "@", "example"] {
            assert!(!a.data.contains(leaked), "{leaked} in {}", a.data);
        }
    }
    let (status, arrivals) = post_stream(&url, &streamed(ask("plain")));
    assert_eq!(status, 200);
    assert_eq!(streamed_text(&arrivals), PLAIN.concat());
    assert_eq!(streamed_tokens(&arrivals), PLAIN);
    // Each entry comes with (or after) the text it spells, never before it.
    let mut shown = String::new();
    let mut spelled = String::new();
    for a in &arrivals {
        let v: Value = serde_json::from_str(&a.data).unwrap_or_default();
        shown.push_str(
            v["choices"][0]["delta"]["content"]
                .as_str()
                .unwrap_or_default(),
        );
        for e in v["choices"][0]["logprobs"]["content"]
            .as_array()
            .into_iter()
            .flatten()
        {
            spelled.push_str(e["token"].as_str().unwrap());
        }
        assert!(shown.starts_with(&spelled), "{spelled:?} before {shown:?}");
    }
}

/// Speech cannot be redacted: an answer whose audio says what `pii-detector` redacts is
/// withheld (409 `output_blocked`, or the stream's error event), whole or streamed, and
/// none of its speech reaches the client; audio with nothing to redact arrives as sent
/// (streamed: held until the choice finishes, then as one `audio`).
#[test]
fn pii_withholds_audio_that_says_what_it_would_redact() {
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine;
    const SPEECH: [&[u8]; 2] = [b"SPOKEN-ONE", b"SPOKEN-TWO"];
    let up = MockUpstream::start(|r| {
        let transcript: [&str; 2] = if r.json()["messages"][0]["content"] == "email" {
            ["Write to john", ".doe@example.com today."]
        } else {
            ["Paris is the capital", " of France."]
        };
        if r.json()["stream"] != true {
            let message = json!({"role": "assistant", "content": null,
                "refusal": null, "audio": {"id": "audio_1", "expires_at": 1700000000,
                "data": STANDARD.encode(SPEECH.concat()), "transcript": transcript.concat()}});
            return MockReply::json(200, answer(message, "stop"));
        }
        let audio = |a: Value| chunk(json!({"audio": a}), None);
        let chunks = vec![
            chunk(
                json!({"role": "assistant", "content": null, "refusal": null,
                "audio": {"id": "audio_1", "transcript": transcript[0]}}),
                None,
            ),
            audio(json!({"data": STANDARD.encode(SPEECH[0])})),
            audio(json!({"transcript": transcript[1]})),
            audio(json!({"data": STANDARD.encode(SPEECH[1])})),
            audio(json!({"expires_at": 1700000000})),
            chunk(json!({}), Some("stop")),
        ];
        MockReply::openai_sse(&chunks, Duration::from_millis(5))
    });
    let gw = pii_gateway(&up, "{}");
    let url = chat_url(&gw);
    let ask = |what: &str| {
        let mut b = user(what);
        b["modalities"] = json!(["text", "audio"]);
        b["audio"] = json!({"voice": "alloy", "format": "pcm16"});
        b
    };
    let leaks = |text: &str| {
        [
            "john",
            "doe@",
            "SPOKEN",
            &STANDARD.encode(SPEECH[0]),
            &STANDARD.encode(SPEECH.concat()),
        ]
        .iter()
        .any(|l| text.contains(*l))
    };

    // Whole answers.
    let (status, _, body) = post_json(&url, &ask("email"), &[]);
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "output_blocked");
    assert_eq!(body["error"]["policy"], "pii-detector");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("speech cannot be redacted"), "{message}");
    assert!(!leaks(&body.to_string()), "{body}");
    let (status, _, body) = post_json(&url, &ask("plain"), &[]);
    assert_eq!(status, 200, "{body}");
    let audio = &body["choices"][0]["message"]["audio"];
    assert_eq!(audio["transcript"], "Paris is the capital of France.");
    assert_eq!(audio["data"], STANDARD.encode(SPEECH.concat()));
    assert_eq!(audio["id"], "audio_1");

    // Streams: the audio waits for the end of the choice; a redaction there ends the
    // stream with the error instead.
    let (status, arrivals) = post_stream(&url, &streamed(ask("email")));
    assert_eq!(status, 200);
    for a in &arrivals {
        assert!(!leaks(&a.data), "{}", a.data);
    }
    let last: Value = serde_json::from_str(&arrivals[arrivals.len() - 2].data).unwrap();
    assert_eq!(last["error"]["code"], "output_blocked", "{arrivals:?}");
    assert_eq!(arrivals.last().unwrap().data, "[DONE]");

    let (status, arrivals) = post_stream(&url, &streamed(ask("plain")));
    assert_eq!(status, 200);
    let audios: Vec<Value> = arrivals
        .iter()
        .filter_map(|a| serde_json::from_str::<Value>(&a.data).ok())
        .filter(|v| v["choices"][0]["delta"]["audio"].is_object())
        .collect();
    assert_eq!(
        audios.len(),
        1,
        "one audio, on the finishing chunk: {arrivals:?}"
    );
    assert_eq!(audios[0]["choices"][0]["finish_reason"], "stop");
    let audio = &audios[0]["choices"][0]["delta"]["audio"];
    assert_eq!(audio["transcript"], "Paris is the capital of France.");
    assert_eq!(audio["expires_at"], 1700000000);
    let speech = STANDARD.decode(audio["data"].as_str().unwrap()).unwrap();
    assert_eq!(speech, SPEECH.concat());

    let events = gw.events(4);
    assert_eq!(events.len(), 4);
    let blocked: Vec<&Value> = events.iter().filter(|e| e["status"] == 409).collect();
    assert_eq!(blocked.len(), 2, "{events:?}");
    for e in blocked {
        assert_eq!(e["blocked_by"], "pii-detector");
        assert!(
            e["policies"].to_string().contains("audio_not_redactable"),
            "{e}"
        );
    }

    // Limited to input, the policy leaves answers alone: audio streams as it comes.
    let gw = pii_gateway(&up, "{apply_to: input}");
    let (status, arrivals) = post_stream(&chat_url(&gw), &streamed(ask("email")));
    assert_eq!(status, 200);
    let pieces = arrivals
        .iter()
        .filter(|a| a.data.contains("\"audio\""))
        .count();
    assert_eq!(pieces, 5, "{arrivals:?}");
}

/// The deprecated function calling (`functions`, `message.function_call`), which OpenAI
/// still serves, is no way around the policies: the firewall checks the functions
/// offered and the calls made, and the PII detector redacts their arguments, whole and
/// streamed (a streamed call held until complete, as a tool call is).
#[test]
fn deprecated_function_calls_pass_the_same_policies_as_tool_calls() {
    let up = MockUpstream::start(|r| {
        let body = r.json();
        let (name, args) = match body["messages"][0]["content"].as_str().unwrap_or_default() {
            "reset" => ("reset_admin", "{}"),
            _ => (
                "send_email",
                r#"{"to": "john.doe@example.com", "subject": "hi"}"#,
            ),
        };
        if body["stream"] == true {
            let (a, b) = args.split_at(args.len().min(14));
            let call = |v: Value| chunk(json!({"function_call": v}), None);
            let chunks = vec![
                chunk(
                    json!({"role": "assistant", "content": null,
                    "function_call": {"name": name, "arguments": ""}}),
                    None,
                ),
                call(json!({"arguments": a})),
                call(json!({"arguments": b})),
                chunk(json!({}), Some("function_call")),
            ];
            return MockReply::openai_sse(&chunks, Duration::from_millis(5));
        }
        let message = json!({"role": "assistant", "content": null,
            "function_call": {"name": name, "arguments": args}});
        MockReply::json(200, answer(message, "function_call"))
    });
    let gw = pii_and_firewall_gateway(&up);
    let url = chat_url(&gw);
    let legacy = |text: &str, functions: &[&str]| {
        let mut b = user(text);
        b["functions"] = functions
            .iter()
            .map(|n| json!({"name": n, "parameters": {"type": "object"}}))
            .collect();
        b
    };

    // Offered a denied function: refused before anything goes upstream.
    let (status, _, body) = post_json(&url, &legacy("mail", &["send_email", "shell"]), &[]);
    assert_eq!(status, 409, "{body}");
    assert_blocked(&body, "agent-firewall", "input_blocked");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("`shell`"));
    assert_eq!(up.count(), 0);

    // A call to a denied function: refused on the way out.
    let (status, _, body) = post_json(&url, &legacy("reset", &["reset_admin2"]), &[]);
    assert_eq!(status, 409, "{body}");
    assert_blocked(&body, "agent-firewall", "output_blocked");

    // A call's arguments are redacted, and stay valid JSON.
    let (status, _, body) = post_json(&url, &legacy("mail", &["send_email"]), &[]);
    assert_eq!(status, 200, "{body}");
    let call = &body["choices"][0]["message"]["function_call"];
    assert_eq!(call["name"], "send_email");
    let args: Value = serde_json::from_str(call["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(args, json!({"to": "[EMAIL]", "subject": "hi"}));
    assert_eq!(body["choices"][0]["finish_reason"], "function_call");

    // Streamed: held until complete, then one delta with the finish; nothing leaks.
    let (status, arrivals) = post_stream(&url, &streamed(legacy("mail", &["send_email"])));
    assert_eq!(status, 200);
    assert!(
        !arrivals.iter().any(|a| a.data.contains("john")),
        "{arrivals:?}"
    );
    let calls: Vec<Value> = arrivals
        .iter()
        .filter_map(|a| serde_json::from_str::<Value>(&a.data).ok())
        .filter(|v| v["choices"][0]["delta"]["function_call"].is_object())
        .collect();
    assert_eq!(calls.len(), 1, "{arrivals:?}");
    assert_eq!(calls[0]["choices"][0]["finish_reason"], "function_call");
    let call = &calls[0]["choices"][0]["delta"]["function_call"];
    assert_eq!(call["name"], "send_email");
    let args: Value = serde_json::from_str(call["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(args, json!({"to": "[EMAIL]", "subject": "hi"}));

    // Streamed call to a denied function: the stream ends with the block, the call unseen.
    let (status, arrivals) = post_stream(&url, &streamed(legacy("reset", &["reset_admin2"])));
    assert_eq!(status, 200);
    assert_stream_blocked(&arrivals, "agent-firewall");
    assert!(
        !arrivals
            .iter()
            .any(|a| a.data.contains("\"function_call\":{")),
        "{arrivals:?}"
    );
}

/// Custom tools (`type: "custom"`, GPT-5's freeform tools) reach an OpenAI target as
/// sent, and pass the same policies as functions: the firewall checks the tools offered
/// and the calls made, the PII detector redacts a call's input (free text), whole and
/// streamed.
#[test]
fn custom_tools_pass_through_and_the_same_policies() {
    let up = MockUpstream::start(|r| {
        let body = r.json();
        let (name, input) = match body["messages"][0]["content"].as_str().unwrap_or_default() {
            "reset" => ("reset_admin", "now"),
            _ => ("code_exec", "send_report('john.doe@example.com')"),
        };
        if body["stream"] == true {
            let (a, b) = input.split_at(input.len().min(20));
            let piece = |v: Value| chunk(json!({"tool_calls": [v]}), None);
            let chunks = vec![
                chunk(json!({"role": "assistant", "content": null}), None),
                piece(json!({"index": 0, "id": "call_c", "type": "custom",
                    "custom": {"name": name, "input": a}})),
                piece(json!({"index": 0, "custom": {"input": b}})),
                chunk(json!({}), Some("tool_calls")),
            ];
            return MockReply::openai_sse(&chunks, Duration::from_millis(5));
        }
        let message = json!({"role": "assistant", "content": null,
            "tool_calls": [{"id": "call_c", "type": "custom",
                "custom": {"name": name, "input": input}}]});
        MockReply::json(200, answer(message, "tool_calls"))
    });
    let gw = pii_and_firewall_gateway(&up);
    let url = chat_url(&gw);
    let ask = |text: &str, tools: &[&str]| {
        let mut b = user(text);
        b["tools"] = tools
            .iter()
            .map(|n| {
                json!({"type": "custom", "custom": {"name": n, "description": "runs it",
                "format": {"type": "text"}}})
            })
            .collect();
        b
    };

    // Offered a denied custom tool: refused before anything goes upstream.
    let (status, _, body) = post_json(&url, &ask("run", &["code_exec", "shell"]), &[]);
    assert_eq!(status, 409, "{body}");
    assert_blocked(&body, "agent-firewall", "input_blocked");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("`shell`"));
    assert_eq!(up.count(), 0);

    // The request reaches the provider as sent; the call's input is redacted.
    let request = ask("run", &["code_exec"]);
    let (status, _, body) = post_json(&url, &request, &[]);
    assert_eq!(status, 200, "{body}");
    assert_eq!(up.requests()[0].json()["tools"], request["tools"]);
    let call = &body["choices"][0]["message"]["tool_calls"][0];
    assert_eq!(
        call,
        &json!({"id": "call_c", "type": "custom",
            "custom": {"name": "code_exec", "input": "send_report('[EMAIL]')"}})
    );

    // A call to a denied custom tool: refused on the way out.
    let (status, _, body) = post_json(&url, &ask("reset", &["reset_admin2"]), &[]);
    assert_eq!(status, 409, "{body}");
    assert_blocked(&body, "agent-firewall", "output_blocked");

    // Streamed: held until complete, its input redacted; nothing leaks.
    let (status, arrivals) = post_stream(&url, &streamed(ask("run", &["code_exec"])));
    assert_eq!(status, 200);
    assert!(
        !arrivals.iter().any(|a| a.data.contains("john")),
        "{arrivals:?}"
    );
    let calls: Vec<Value> = arrivals
        .iter()
        .filter_map(|a| serde_json::from_str::<Value>(&a.data).ok())
        .filter_map(|v| v["choices"][0]["delta"]["tool_calls"].as_array().cloned())
        .flatten()
        .collect();
    assert_eq!(
        calls,
        [json!({"index": 0, "id": "call_c", "type": "custom",
            "custom": {"name": "code_exec", "input": "send_report('[EMAIL]')"}})]
    );
    let (status, arrivals) = post_stream(&url, &streamed(ask("reset", &["reset_admin2"])));
    assert_eq!(status, 200);
    assert_stream_blocked(&arrivals, "agent-firewall");

    // The official SDK reads them as its typed custom tool calls, whole and streamed.
    let out = run_python("sdk_custom_tools.py", &gw.base_url(), &[]);
    assert!(out.contains("ALL OK"), "{out}");
}

#[test]
fn pii_redacts_streamed_tool_calls_and_refusals_before_they_leave() {
    let up = MockUpstream::start(|r| {
        let first = |delta: Value| chunk(delta, None);
        let chunks = if r.json()["messages"][0]["content"] == "refuse" {
            vec![
                first(json!({"role": "assistant", "refusal": ""})),
                first(json!({"refusal": "I can't email john"})),
                first(json!({"refusal": ".doe@example.com, sorry."})),
                chunk(json!({}), Some("stop")),
            ]
        } else {
            // Two calls, their arguments cut inside the value and inside a number.
            let call = |i: u32, id: &str, name: &str| {
                json!({"tool_calls": [{"index": i, "id": id, "type": "function",
                    "function": {"name": name, "arguments": ""}}]})
            };
            let args = |i: u32, a: &str| json!({"tool_calls": [{"index": i, "function": {"arguments": a}}]});
            vec![
                first(json!({"role": "assistant", "content": null})),
                first(call(0, "call_a", "send_email")),
                first(args(0, "{\"to\": \"john.d")),
                first(args(0, "oe@example.com\", \"subject\": \"hi\"}")),
                first(call(1, "call_b", "charge")),
                first(args(1, "{\"card\": 41111111")),
                first(args(1, "11111111, \"note\": \"ok\"}")),
                chunk(json!({}), Some("tool_calls")),
            ]
        };
        MockReply::openai_sse(&chunks, Duration::from_millis(5))
    });
    let gw = pii_gateway(&up, "{}");
    let url = chat_url(&gw);

    let (status, arrivals) = post_stream(&url, &streamed(user("call")));
    assert_eq!(status, 200);
    for a in &arrivals {
        for leaked in ["john", "doe@", "41111111", "11111111"] {
            assert!(!a.data.contains(leaked), "{leaked} in {}", a.data);
        }
    }
    // Each call arrives whole, its arguments still a JSON document, with the finish.
    let mut calls = Vec::new();
    for a in &arrivals {
        let Ok(v) = serde_json::from_str::<Value>(&a.data) else {
            continue;
        };
        if let Some(list) = v["choices"][0]["delta"]["tool_calls"].as_array() {
            assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");
            calls.extend(list.iter().cloned());
        }
    }
    assert_eq!(calls.len(), 2, "{arrivals:?}");
    assert_eq!(calls[0]["id"], "call_a");
    assert_eq!(calls[0]["function"]["name"], "send_email");
    let a: Value =
        serde_json::from_str(calls[0]["function"]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(a, json!({"to": "[EMAIL]", "subject": "hi"}));
    assert_eq!(calls[1]["index"], 1);
    let b: Value =
        serde_json::from_str(calls[1]["function"]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(b, json!({"card": "[CREDIT_CARD]", "note": "ok"}));
    // No empty chunk stands in for a held fragment.
    let chunks = arrivals.iter().filter(|a| a.data.starts_with('{')).count();
    assert_eq!(
        chunks, 2,
        "the role chunk, then the calls with the finish: {arrivals:?}"
    );
    let events = gw.events(1);
    let trace = events[0]["policies"].to_string();
    assert!(trace.contains("stream_redaction"), "{trace}");
    assert!(trace.contains("credit_card"), "{trace}");
    assert!(
        events[0]["ttft_ms"].is_number(),
        "the calls were the first token"
    );

    // A refusal is redacted as it flows, like the content.
    let (status, arrivals) = post_stream(&url, &streamed(user("refuse")));
    assert_eq!(status, 200);
    let refusal: String = arrivals
        .iter()
        .filter_map(|a| serde_json::from_str::<Value>(&a.data).ok())
        .filter_map(|v| {
            v["choices"][0]["delta"]["refusal"]
                .as_str()
                .map(str::to_string)
        })
        .collect();
    assert_eq!(refusal, "I can't email [EMAIL], sorry.");
}
