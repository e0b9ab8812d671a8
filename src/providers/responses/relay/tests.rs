use super::*;
use crate::providers::sse::{SseEvent, SseParser};

/// Masks digits with `#`, holding back a trailing run of digits (it may go on).
#[derive(Default)]
struct DigitMask {
    held: String,
}

impl Rewriter for DigitMask {
    fn push(&mut self, text: &str) -> String {
        self.held.push_str(text);
        let keep = self
            .held
            .char_indices()
            .rev()
            .take_while(|(_, c)| c.is_ascii_digit())
            .last()
            .map_or(self.held.len(), |(i, _)| i);
        let rest = self.held.split_off(keep);
        let out = std::mem::replace(&mut self.held, rest);
        mask(&out)
    }
    fn finish(&mut self) -> String {
        mask(&std::mem::take(&mut self.held))
    }
}

fn mask(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_ascii_digit() { '#' } else { c })
        .collect()
}

fn upstream(name: &str) -> Vec<Value> {
    let path = format!("{}/testdata/responses/{name}", env!("CARGO_MANIFEST_DIR"));
    let bytes = std::fs::read(path).unwrap();
    let mut p = SseParser::new();
    let mut events: Vec<SseEvent> = Vec::new();
    // Split anywhere: the parser must not care.
    for piece in bytes.chunks(7) {
        p.feed(piece, &mut events);
    }
    p.finish(&mut events);
    events
        .iter()
        .map(|e| serde_json::from_str(&e.data).unwrap())
        .collect()
}

#[test]
fn fixture_native_stream_is_relayed_with_redacted_text_and_renumbered() {
    let input = upstream("native_stream.sse");
    let mut relay = Relay::new(DigitMask::default);
    let mut out = Vec::new();
    for ev in input.clone() {
        out.extend(relay.push(ev));
    }
    let (kind, resp) = relay.terminal().unwrap();
    assert_eq!(kind, "response.completed");
    assert_eq!(
        resp["output"][1]["content"][0]["text"],
        "Your card: 4111 1111 1111 1111"
    );
    out.extend(relay.finish(vec![(
        "x_keeptrusts".to_string(),
        json!({"provider_used": "openai"}),
    )]));
    let kinds: Vec<&str> = out.iter().map(|e| e.kind.as_str()).collect();
    let mut expected: Vec<&str> = input.iter().map(|e| e["type"].as_str().unwrap()).collect();
    // The text the mask held back is one more delta, right before `.done`.
    let done = expected
        .iter()
        .position(|k| *k == "response.output_text.done")
        .unwrap();
    expected.insert(done, "response.output_text.delta");
    assert_eq!(kinds, expected);
    for (n, e) in out.iter().enumerate() {
        assert_eq!(e.data["sequence_number"], n);
        assert_eq!(e.data["type"], e.kind.as_str());
    }
    let deltas: Vec<&str> = out
        .iter()
        .filter(|e| e.kind == "response.output_text.delta")
        .map(|e| e.data["delta"].as_str().unwrap())
        .collect();
    assert_eq!(deltas, ["Your card: ", "#### ", "#### #### ", "####"]);
    let shown = "Your card: #### #### #### ####";
    let by_kind = |k: &str| out.iter().find(|e| e.kind == k).unwrap();
    assert_eq!(by_kind("response.output_text.done").data["text"], shown);
    assert_eq!(
        by_kind("response.content_part.done").data["part"]["text"],
        shown
    );
    let last = out.last().unwrap();
    let final_resp = &last.data["response"];
    assert_eq!(final_resp["output"][1]["content"][0]["text"], shown);
    assert_eq!(final_resp["x_keeptrusts"]["provider_used"], "openai");
    // Everything else is the upstream's, unknown fields included.
    assert_eq!(final_resp["x_upstream"], "kept");
    assert_eq!(
        final_resp["output"][2],
        input.last().unwrap()["response"]["output"][2]
    );
    assert_eq!(
        final_resp["usage"],
        input.last().unwrap()["response"]["usage"]
    );
    assert!(relay
        .push(json!({"type": "response.in_progress"}))
        .is_empty());
    assert!(relay.text_sent());
}

/// A native stream of `deltas`, each with its token's logprobs entry.
fn with_logprobs(deltas: &[&str]) -> Vec<Value> {
    let lp =
        |t: &str| json!({"token": t, "logprob": -0.5, "bytes": t.as_bytes(), "top_logprobs": []});
    let text = deltas.concat();
    let all: Vec<Value> = deltas.iter().map(|t| lp(t)).collect();
    let part = json!({"type": "output_text", "text": text, "annotations": [], "logprobs": all});
    let item = json!({"id": "m", "type": "message", "role": "assistant", "content": [part]});
    let at = json!({"item_id": "m", "output_index": 0, "content_index": 0});
    let mut events = vec![json!({"type": "response.created", "response": {"output": []}})];
    for d in deltas {
        let mut e = at.clone();
        e["type"] = json!("response.output_text.delta");
        e["delta"] = json!(d);
        e["logprobs"] = json!([lp(d)]);
        events.push(e);
    }
    let mut done = at.clone();
    done["type"] = json!("response.output_text.done");
    done["text"] = json!(text);
    done["logprobs"] = json!(all);
    events.push(done);
    let mut part_done = at;
    part_done["type"] = json!("response.content_part.done");
    part_done["part"] = part;
    events.push(part_done);
    events.push(json!({"type": "response.output_item.done", "output_index": 0, "item": item}));
    events.push(json!({"type": "response.completed", "response": {"output": [item]}}));
    events
}

fn relay_all(input: Vec<Value>) -> Vec<TypedEvent> {
    let mut relay = Relay::new(DigitMask::default);
    let mut out: Vec<TypedEvent> = input.into_iter().flat_map(|e| relay.push(e)).collect();
    out.extend(relay.finish(Vec::new()));
    out
}

fn tokens(v: &Value) -> Vec<&str> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|e| e["token"].as_str().unwrap())
        .collect()
}

#[test]
fn token_logprobs_go_with_their_text_and_never_spell_a_rewrite() {
    let deltas = ["Hi ", "Bob", ", code ", "12", "34", " ok"];
    let out = relay_all(with_logprobs(&deltas));
    let sent: Vec<(&str, Vec<&str>)> = out
        .iter()
        .filter(|e| e.kind == "response.output_text.delta")
        .map(|e| {
            (
                e.data["delta"].as_str().unwrap(),
                tokens(&e.data["logprobs"]),
            )
        })
        .collect();
    // The masked digits were held, then rewritten: no entry follows from there.
    assert_eq!(
        sent,
        [
            ("Hi ", vec!["Hi "]),
            ("Bob", vec!["Bob"]),
            (", code ", vec![", code "]),
            ("#### ok", vec![])
        ]
    );
    for e in &out {
        assert!(!e.data.to_string().contains("12"), "{}", e.data);
    }
    let by_kind = |k: &str| &out.iter().find(|e| e.kind == k).unwrap().data;
    assert_eq!(by_kind("response.output_text.done")["logprobs"], json!([]));
    assert_eq!(
        by_kind("response.content_part.done")["part"]["logprobs"],
        json!([])
    );
    assert_eq!(
        by_kind("response.output_item.done")["item"]["content"][0]["logprobs"],
        json!([])
    );
    let last = &out.last().unwrap().data["response"]["output"][0]["content"][0];
    assert_eq!(last["text"], "Hi Bob, code #### ok");
    assert_eq!(last["logprobs"], json!([]));

    // Nothing rewritten: every entry arrives, and the whole lists stay as sent.
    let plain = ["Hi ", "Bob", ", all", " fine"];
    let out = relay_all(with_logprobs(&plain));
    let streamed: Vec<&str> = out
        .iter()
        .filter(|e| e.kind == "response.output_text.delta")
        .flat_map(|e| tokens(&e.data["logprobs"]))
        .collect();
    assert_eq!(streamed, plain);
    let last = &out.last().unwrap().data["response"]["output"][0]["content"][0];
    assert_eq!(tokens(&last["logprobs"]), plain);
}

/// A stream of one function call whose arguments come in `deltas`.
fn function_call(deltas: &[&str]) -> Vec<Value> {
    let args = deltas.concat();
    let item = |a: &str| json!({"id": "fc", "type": "function_call", "call_id": "call_1", "name": "charge", "arguments": a});
    let mut events = vec![
        json!({"type": "response.created", "response": {"output": []}}),
        json!({"type": "response.output_item.added", "output_index": 0, "item": item("")}),
    ];
    for d in deltas {
        events.push(json!({"type": "response.function_call_arguments.delta", "item_id": "fc", "output_index": 0, "delta": d}));
    }
    events.push(json!({"type": "response.function_call_arguments.done", "item_id": "fc", "output_index": 0, "arguments": args}));
    events
        .push(json!({"type": "response.output_item.done", "output_index": 0, "item": item(&args)}));
    events.push(json!({"type": "response.completed", "response": {"output": [item(&args)]}}));
    events
}

/// Changes nothing, like a chain without redaction.
struct Pass;

impl Rewriter for Pass {
    fn push(&mut self, text: &str) -> String {
        text.to_string()
    }
    fn finish(&mut self) -> String {
        String::new()
    }
    fn is_empty(&self) -> bool {
        true
    }
}

#[test]
fn function_call_arguments_are_held_whole_and_redacted_value_by_value() {
    let deltas = ["{\"card\": 41", "11, \"memo\": \"order 7", "\"}"];
    let out = relay_all(function_call(&deltas));
    let shown = "{\"card\":\"####\",\"memo\":\"order #\"}";
    let sent: Vec<&str> = out
        .iter()
        .filter(|e| e.kind == "response.function_call_arguments.delta")
        .map(|e| e.data["delta"].as_str().unwrap())
        .collect();
    assert_eq!(sent, [shown], "one delta with the whole arguments");
    let by_kind = |k: &str| &out.iter().find(|e| e.kind == k).unwrap().data;
    assert_eq!(
        by_kind("response.function_call_arguments.done")["arguments"],
        shown
    );
    assert_eq!(
        by_kind("response.output_item.done")["item"]["arguments"],
        shown
    );
    let last = &out.last().unwrap().data["response"]["output"][0];
    assert_eq!(last["arguments"], shown);
    assert_eq!(last["call_id"], "call_1");
    for (n, e) in out.iter().enumerate() {
        assert_eq!(e.data["sequence_number"], n);
        assert!(!e.data.to_string().contains("411"), "{}", e.data);
    }

    // No redaction in the chain: each delta passes as it comes.
    let mut relay = Relay::new(|| Pass);
    let out: Vec<TypedEvent> = function_call(&deltas)
        .into_iter()
        .flat_map(|e| relay.push(e))
        .collect();
    let sent: Vec<&str> = out
        .iter()
        .filter(|e| e.kind == "response.function_call_arguments.delta")
        .map(|e| e.data["delta"].as_str().unwrap())
        .collect();
    assert_eq!(sent, deltas);
}

/// A custom tool's call: its free-text input is held and redacted whole, like arguments.
#[test]
fn custom_tool_call_input_is_held_whole_and_redacted() {
    let deltas = ["charge 41", "11 now"];
    let input = deltas.concat();
    let item = |i: &str| json!({"id": "ct", "type": "custom_tool_call", "call_id": "call_2", "name": "shell", "input": i});
    let mut events = vec![
        json!({"type": "response.created", "response": {"output": []}}),
        json!({"type": "response.output_item.added", "output_index": 0, "item": item("")}),
    ];
    for d in deltas {
        events.push(json!({"type": "response.custom_tool_call_input.delta", "item_id": "ct", "output_index": 0, "delta": d}));
    }
    events.push(json!({"type": "response.custom_tool_call_input.done", "item_id": "ct", "output_index": 0, "input": input}));
    events.push(
        json!({"type": "response.output_item.done", "output_index": 0, "item": item(&input)}),
    );
    events.push(json!({"type": "response.completed", "response": {"output": [item(&input)]}}));
    let out = relay_all(events);
    let shown = "charge #### now";
    let sent: Vec<&str> = out
        .iter()
        .filter(|e| e.kind == "response.custom_tool_call_input.delta")
        .map(|e| e.data["delta"].as_str().unwrap())
        .collect();
    assert_eq!(sent, [shown], "one delta with the whole input");
    let by_kind = |k: &str| &out.iter().find(|e| e.kind == k).unwrap().data;
    assert_eq!(
        by_kind("response.custom_tool_call_input.done")["input"],
        shown
    );
    assert_eq!(by_kind("response.output_item.done")["item"]["input"], shown);
    assert_eq!(
        out.last().unwrap().data["response"]["output"][0]["input"],
        shown
    );
    for e in &out {
        assert!(!e.data.to_string().contains("411"), "{}", e.data);
    }
}

#[test]
fn refusals_are_rewritten_as_they_flow_like_output_text() {
    let part = |r: &str| json!({"type": "refusal", "refusal": r});
    let item =
        |r: &str| json!({"id": "m", "type": "message", "role": "assistant", "content": [part(r)]});
    let at =
        |kind: &str| json!({"type": kind, "item_id": "m", "output_index": 0, "content_index": 0});
    let raw = "I can't share 1234 sorry";
    let mut input = vec![json!({"type": "response.created", "response": {"output": []}})];
    for d in ["I can't share 12", "34 sorry"] {
        let mut e = at("response.refusal.delta");
        e["delta"] = json!(d);
        input.push(e);
    }
    let mut done = at("response.refusal.done");
    done["refusal"] = json!(raw);
    input.push(done);
    let mut part_done = at("response.content_part.done");
    part_done["part"] = part(raw);
    input.push(part_done);
    input.push(json!({"type": "response.output_item.done", "output_index": 0, "item": item(raw)}));
    input.push(json!({"type": "response.completed", "response": {"output": [item(raw)]}}));

    let out = relay_all(input);
    let deltas: Vec<&str> = out
        .iter()
        .filter(|e| e.kind == "response.refusal.delta")
        .map(|e| e.data["delta"].as_str().unwrap())
        .collect();
    assert_eq!(deltas, ["I can't share ", "#### sorry"]);
    let shown = "I can't share #### sorry";
    let by_kind = |k: &str| &out.iter().find(|e| e.kind == k).unwrap().data;
    assert_eq!(by_kind("response.refusal.done")["refusal"], shown);
    assert_eq!(
        by_kind("response.content_part.done")["part"]["refusal"],
        shown
    );
    assert_eq!(
        by_kind("response.output_item.done")["item"]["content"][0]["refusal"],
        shown
    );
    let last = &out.last().unwrap().data["response"]["output"][0]["content"][0];
    assert_eq!(last["refusal"], shown);
}

#[test]
fn a_failure_ends_with_error_and_response_failed_from_the_last_response() {
    let input = upstream("native_stream.sse");
    let mut relay = Relay::new(DigitMask::default);
    let mut out = Vec::new();
    // Up to the first delta only.
    for ev in input
        .iter()
        .take_while(|e| e["type"] != "response.output_text.done")
    {
        out.extend(relay.push(ev.clone()));
    }
    let n = out.len();
    let end = relay.fail(
        "output_blocked",
        "blocked",
        Some("pii-detector"),
        "output_blocked",
    );
    assert_eq!(end[0].kind, "error");
    assert_eq!(end[0].data["sequence_number"], n);
    assert_eq!(end[0].data["policy"], "pii-detector");
    let failed = &end[1].data["response"];
    assert_eq!(end[1].kind, "response.failed");
    assert_eq!(failed["status"], "failed");
    assert_eq!(failed["id"], "resp_up1");
    assert_eq!(failed["error"]["code"], "output_blocked");
    assert!(relay
        .push(json!({"type": "response.completed", "response": {}}))
        .is_empty());
    // An upstream that reported its own error is not reported twice.
    let mut relay = Relay::new(DigitMask::default);
    relay.push(input[0].clone());
    let e = relay.push(json!({"type": "error", "code": "server_error", "message": "x"}));
    assert_eq!(e[0].data["sequence_number"], 1);
    let end = relay.fail("server_error", "x", None, "server_error");
    assert_eq!(end.len(), 1);
    assert_eq!(end[0].kind, "response.failed");
}
