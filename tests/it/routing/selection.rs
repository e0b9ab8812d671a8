//! Strategies (weighted round robin, latency), pins, aliases and deprecations, context
//! trimming and the data routing policy.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use super::*;

#[test]
fn weighted_round_robin_splits_an_ab_test_by_weight() {
    let a = ok("variant a");
    let b = ok("variant b");
    let config = pack(
        &format!(
            "  strategy: weighted_round_robin
  targets:
    - {{id: variant-a, provider: openai, model: gpt-4o, base_url: '{}', weight: 3}}
    - {{id: variant-b, provider: openai, model: gpt-4o-mini, base_url: '{}', weight: 1}}",
            a.v1(),
            b.v1()
        ),
        "",
    );
    let gw = start(&config);
    for _ in 0..12 {
        let (s, _, _) = chat(&gw, &ask("gpt-4o", "hi"));
        assert_eq!(s, 200);
    }
    assert_eq!((chats(&a).len(), chats(&b).len()), (9, 3));
    // Each variant gets its own model name upstream.
    assert_eq!(chats(&b)[0].json()["model"], "gpt-4o-mini");
    // Pinning the provider and model keeps the request on that model.
    for _ in 0..3 {
        chat(&gw, &ask("openai/gpt-4o-mini", "hi"));
    }
    assert_eq!(chats(&b).len(), 6);
}

#[test]
fn latency_strategy_moves_traffic_to_the_faster_target() {
    // Phase 1: `a` is slow and `b` fast; phase 2: the reverse.
    let flipped = Arc::new(AtomicBool::new(false));
    let slow_when = |slow_in_phase2: bool, flipped: Arc<AtomicBool>| {
        MockUpstream::start(move |_| {
            let reply = MockReply::json(200, completion("x"));
            if flipped.load(Ordering::SeqCst) == slow_in_phase2 {
                MockReply::Delay(Duration::from_millis(120), Box::new(reply))
            } else {
                reply
            }
        })
    };
    let a = slow_when(false, flipped.clone());
    let b = slow_when(true, flipped.clone());
    let config = pack(
        &format!(
            "  strategy: latency
  targets:
    - {{id: gpt4o-us, provider: openai, model: gpt-4o, base_url: '{}'}}
    - {{id: gpt4o-eu, provider: openai, model: gpt-4o, base_url: '{}'}}",
            a.v1(),
            b.v1()
        ),
        "",
    );
    let gw = start(&config);
    let phase = |n: usize| -> Vec<String> {
        (0..n)
            .map(|_| {
                let (s, _, _) = chat(&gw, &ask("gpt-4o", "hi"));
                assert_eq!(s, 200);
                let evs = read_events_now(&gw);
                evs.last().unwrap()["target_id"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect()
    };
    let p1 = phase(20);
    let to_eu = p1.iter().filter(|t| *t == "gpt4o-eu").count();
    assert!(to_eu >= 16, "{p1:?}");
    flipped.store(true, Ordering::SeqCst);
    let p2 = phase(20);
    // Exploration notices that `us` became fast; traffic follows.
    let tail_us = p2[10..].iter().filter(|t| *t == "gpt4o-us").count();
    assert!(tail_us >= 8, "{p2:?}");
    let m = target_metrics(&gw, "gpt4o-us");
    assert!(m["latency_ms"]["ewma"].as_f64().unwrap() < 100.0, "{m}");
}

#[test]
fn pins_aliases_and_deprecation_headers() {
    let openai = ok("openai");
    let groq = ok("groq");
    let claude = ok("claude");
    let config = pack(
        &format!(
            "  strategy: latency
  targets:
    - {{id: oa, provider: openai, model: gpt-4o, base_url: '{}'}}
    - {{id: gq, provider: groq, model: gpt-4o, base_url: '{}'}}
    - {{id: cl, provider: openai-compatible, model: claude-4-sonnet, base_url: '{}'}}",
            openai.v1(),
            groq.v1(),
            claude.v1()
        ),
        "models:\n  aliases: {fast: gpt-4o}\n  deprecations: {gpt-4: gpt-4o}",
    );
    let gw = start(&config);
    let content = |b: &Value| {
        b["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .to_string()
    };

    let (s, _, b) = chat(&gw, &ask("groq/gpt-4o", "hi"));
    assert_eq!((s, content(&b)), (200, "groq".to_string()));
    assert_eq!(chats(&groq)[0].json()["model"], "gpt-4o");
    let (_, _, b) = chat(&gw, &ask("openai/gpt-4o", "hi"));
    assert_eq!(content(&b), "openai");
    assert_eq!(b["x_keeptrusts"]["provider_used"], "openai");

    // The seed's default family alias.
    let (s, h, b) = chat(&gw, &ask("claude-sonnet", "hi"));
    assert_eq!((s, content(&b)), (200, "claude".to_string()));
    assert_eq!(chats(&claude)[0].json()["model"], "claude-4-sonnet");
    assert_eq!(find_header(&h, "deprecation"), None);

    let (s, h, _) = chat(&gw, &ask("gpt-4", "hi"));
    assert_eq!(s, 200);
    assert_eq!(find_header(&h, "deprecation"), Some("true"));
    assert_eq!(
        find_header(&h, "x-model-deprecated-successor"),
        Some("gpt-4o")
    );
    let last = chats(&openai).len() + chats(&groq).len();
    assert_eq!(last, 3, "gpt-4 was served by a gpt-4o target");

    let (s, _, b) = chat(&gw, &ask("gpt-5-nope", "hi"));
    assert_eq!(s, 404);
    assert_eq!(b["error"]["code"], "model_not_found");
    assert_eq!(
        b["error"]["message"],
        "Model 'gpt-5-nope' not found in catalog"
    );

    let (_, models) = get_json(&format!("{}/models", gw.base_url()));
    let ids: Vec<&str> = models["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["id"].as_str())
        .collect();
    assert!(
        ids.contains(&"claude-sonnet") && ids.contains(&"fast"),
        "{ids:?}"
    );

    let evs = gw.events(5);
    let r = routing_of(&evs[2]);
    assert_eq!(
        (r["requested"].as_str(), r["resolved"].as_str()),
        (Some("claude-sonnet"), Some("claude-4-sonnet"))
    );
}

#[test]
fn context_is_trimmed_per_target_and_recorded() {
    let up = ok("trimmed");
    let config = pack(
        &format!(
            "  targets:
    - {{id: small, provider: openai, model: gpt-4o, base_url: '{}', max_messages: 4, max_context_tokens: 200}}",
            up.v1()
        ),
        "",
    );
    let gw = start(&config);
    let body = json!({"model": "gpt-4o", "messages": [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "old question"},
        {"role": "assistant", "content": null, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "42"},
        {"role": "assistant", "content": "it is 42"},
        {"role": "user", "content": "thanks, and now?"}
    ]});
    let (s, _, _) = chat(&gw, &body);
    assert_eq!(s, 200);
    let sent = chats(&up)[0].json();
    let roles: Vec<&str> = sent["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    // The tool call went with its result; system and the newest message stayed.
    assert_eq!(roles, ["system", "assistant", "user"]);
    assert_eq!(sent["messages"][1]["content"], "it is 42");

    // A long history is cut to the token budget.
    let long = "word ".repeat(200); // ~250 tokens
    let body = json!({"model": "gpt-4o", "messages": [
        {"role": "user", "content": long},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": "short"}
    ]});
    chat(&gw, &body);
    let sent = chats(&up)[1].json();
    assert_eq!(sent["messages"].as_array().unwrap().len(), 2);

    let evs = gw.events(2);
    let c = &routing_of(&evs[0])["compression"][0];
    assert_eq!(c["target"], "small");
    assert_eq!(
        (c["messages_before"].as_u64(), c["messages_after"].as_u64()),
        (Some(6), Some(3))
    );
    assert!(
        routing_of(&evs[1])["compression"][0]["tokens_before"]
            .as_u64()
            .unwrap()
            > 200
    );
}

#[test]
fn data_routing_policy_restricts_targets_and_reports_the_region() {
    let plain = ok("plain");
    let zdr = ok("zdr");
    let targets = format!(
        "  strategy: fallback
  targets:
    - {{id: openai-main, provider: openai, model: gpt-4o, base_url: '{}', region: us}}
    - {{id: openai-zdr, provider: openai, model: gpt-4o, base_url: '{}', zdr: true, region: eu}}",
        plain.v1(),
        zdr.v1()
    );
    let config = format!(
        "pack: {{name: zdr}}\nproviders:\n{targets}\npolicies:\n  chain: [data-routing-policy, audit-logger]\npolicy:\n  data-routing-policy: {{require_zdr: true}}\n"
    );
    let gw = start(&config);
    let (s, _, b) = chat(&gw, &ask("gpt-4o", "hi"));
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["choices"][0]["message"]["content"], "zdr");
    assert_eq!(b["x_keeptrusts"]["region"], "eu");
    assert!(chats(&plain).is_empty());
    let r = routing_of(&gw.events(1)[0]).clone();
    assert_eq!(r["skipped"][0]["target"], "openai-main");

    let config = config.replace("{require_zdr: true}", "{allowed_regions: [ap-south]}");
    let gw = start(&config);
    let (s, _, b) = chat(&gw, &ask("gpt-4o", "hi"));
    assert_eq!(s, 409);
    assert_eq!(b["error"]["type"], "policy_violation");
    assert_eq!(b["error"]["policy"], "data-routing-policy");
    assert_eq!(b["error"]["code"], "input_blocked");
    let ev = &gw.events(1)[0];
    assert_eq!(
        (ev["verdict"].as_str(), ev["blocked_by"].as_str()),
        (Some("block"), Some("data-routing-policy"))
    );
}
