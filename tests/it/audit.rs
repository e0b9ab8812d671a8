//! audit-logger through the gateway: payload modes, access logging and the hash chain.

use serde_json::json;

use crate::support::*;

fn config(upstream: &str, audit: &str) -> String {
    format!(
        "pack: {{name: audit}}
providers:
  targets:
    - {{id: a, provider: openai, model: gpt-4o, base_url: '{upstream}'}}
policies:
  chain: [audit-logger]
policy:
  audit-logger:
{audit}
"
    )
}

fn upstream() -> MockUpstream {
    MockUpstream::start(|_| {
        MockReply::json(
            200,
            json!({"id": "c", "object": "chat.completion", "created": 1, "model": "gpt-4o",
                   "choices": [{"index": 0, "message": {"role": "assistant", "content": "the answer"}, "finish_reason": "stop"}]}),
        )
    })
}

#[test]
fn payload_modes_decide_what_is_stored() {
    let up = upstream();
    for (mode, want_request) in [("none", false), ("redacted", true), ("full", true)] {
        let gw = Gateway::start(Some(&config(&up.v1(), &format!("    payload: {mode}"))));
        let body =
            json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "question 42"}]});
        let (s, _, _) = post_json(&format!("{}/chat/completions", gw.base_url()), &body, &[]);
        assert_eq!(s, 200);
        let e = &gw.events(1)[0];
        assert_eq!(
            e["request_body"]
                .as_str()
                .is_some_and(|b| b.contains("question 42")),
            want_request,
            "{mode}: {e}"
        );
        assert_eq!(
            e["response_body"]
                .as_str()
                .is_some_and(|b| b.contains("the answer")),
            want_request,
            "{mode}: {e}"
        );
    }
}

#[test]
fn immutable_log_chains_rows_and_access_is_logged() {
    let up = upstream();
    let gw = Gateway::start(Some(&config(
        &up.v1(),
        "    immutable: true\n    log_all_access: true\n    retention_days: 365",
    )));
    for i in 0..3 {
        let body =
            json!({"model": "gpt-4o", "messages": [{"role": "user", "content": format!("q{i}")}]});
        post_json(&format!("{}/chat/completions", gw.base_url()), &body, &[]);
    }
    get_json(&format!("{}/models", gw.base_url()));
    let evs = gw.events(4);
    assert_eq!(evs.len(), 4);
    assert_eq!(evs[3]["kind"], "models");
    let rows = kt::store::events::recent(&kt::store::open(&gw.db).unwrap(), 100).unwrap();
    let mut prev = String::new();
    for r in &rows {
        assert_eq!(r.prev_hash.as_deref(), Some(prev.as_str()));
        let h = kt::store::events::chain_hash(&prev, r);
        assert_eq!(r.hash.as_deref(), Some(h.as_str()));
        prev = h;
    }
}
