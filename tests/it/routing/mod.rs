//! Routing and resilience end to end: several mock upstreams failing in scripted ways
//! behind the real gateway. `resilience`: fallback, retries, streams, circuit breaker,
//! health probes. `selection`: strategies, model resolution, context trimming, data
//! routing. Shared helpers live here.

mod resilience;
mod selection;

use std::time::{Duration, Instant};

use serde_json::{json, Value};

pub use crate::support::*;

pub fn completion(content: &str) -> Value {
    json!({
        "id": "chatcmpl-up", "object": "chat.completion", "created": 1, "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}
    })
}

pub fn chunk(content: &str, finish: Option<&str>) -> Value {
    json!({"id": "chatcmpl-up", "object": "chat.completion.chunk", "created": 1, "model": "m",
           "choices": [{"index": 0, "delta": {"content": content}, "finish_reason": finish}]})
}

pub fn ask(model: &str, text: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": text}]})
}

/// An upstream that always answers `content`.
pub fn ok(content: &'static str) -> MockUpstream {
    MockUpstream::start(move |_| MockReply::json(200, completion(content)))
}

/// Chat requests the mock received (not health probes).
pub fn chats(up: &MockUpstream) -> Vec<Received> {
    up.requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/chat/completions"))
        .collect()
}

pub fn dead_url() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1", l.local_addr().unwrap());
    drop(l);
    url
}

pub fn pack(providers: &str, rest: &str) -> String {
    format!("pack: {{name: routing-test, version: 1.0.0}}\nproviders:\n{providers}\n{rest}\npolicies:\n  chain: [audit-logger]\n")
}

pub fn chat(gw: &Gateway, body: &Value) -> (u16, Vec<(String, String)>, Value) {
    post_json(&format!("{}/chat/completions", gw.base_url()), body, &[])
}

/// The admin token the routing tests' gateways run with.
pub const ADMIN: &str = "routing-admin-token";

/// A gateway with `config` and a known admin token (the metrics endpoint needs it).
pub fn start(config: &str) -> Gateway {
    Gateway::start_with(Some(config), &[], &[("KT_ADMIN_TOKEN", ADMIN)])
}

pub fn metrics(gw: &Gateway) -> Vec<Value> {
    let mut resp = http()
        .get(format!("{}/keeptrusts/providers/metrics", gw.url()))
        .header("Authorization", format!("Bearer {ADMIN}"))
        .call()
        .unwrap();
    let text = resp.body_mut().read_to_string().unwrap();
    assert_eq!(resp.status().as_u16(), 200, "{text}");
    let b: Value = serde_json::from_str(&text).unwrap();
    b["data"].as_array().unwrap().clone()
}

pub fn target_metrics(gw: &Gateway, id: &str) -> Value {
    metrics(gw)
        .into_iter()
        .find(|t| t["id"] == id)
        .unwrap_or_else(|| panic!("no metrics for `{id}`"))
}

/// Polls `f` until it is true or `within` passed; returns how long it took.
pub fn eventually(within: Duration, what: &str, mut f: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    loop {
        if f() {
            return start.elapsed();
        }
        assert!(start.elapsed() < within, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn routing_of(ev: &Value) -> &Value {
    &ev["detail"]["routing"]
}

/// Events so far, waiting for the writer to catch up with every request sent.
pub fn read_events_now(gw: &Gateway) -> Vec<Value> {
    let sent = metrics(gw)
        .iter()
        .map(|t| t["requests"].as_u64().unwrap_or(0))
        .sum::<u64>() as usize;
    gw.events(sent)
}

#[test]
fn readme_configs_load() {
    let doc = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let blocks: Vec<&str> = doc
        .split("```yaml\n")
        .skip(1)
        .filter_map(|b| b.split("```").next())
        .filter(|b| b.contains("pack:"))
        .collect();
    assert!(blocks.len() >= 9, "{}", blocks.len());
    for yaml in blocks {
        // Policies that live in other modules are checked where they are built.
        let value: serde_yaml::Value = serde_yaml::from_str(yaml).unwrap();
        let chain = value["policies"]["chain"]
            .as_sequence()
            .cloned()
            .unwrap_or_default();
        if chain
            .iter()
            .any(|p| !kt::policy::is_known(p.as_str().unwrap_or_default()))
        {
            continue;
        }
        if let Err(e) = kt::config::load_str(yaml, std::path::Path::new("README.md")) {
            panic!("{e:?}\n{yaml}");
        }
    }
}
