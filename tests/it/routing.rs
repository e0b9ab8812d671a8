//! Routing and resilience end to end: several mock upstreams failing in scripted ways
//! behind the real gateway — fallback, retries, streams, strategies, circuit breaker,
//! health probes, model resolution, context trimming and data routing.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::*;

fn completion(content: &str) -> Value {
    json!({
        "id": "chatcmpl-up", "object": "chat.completion", "created": 1, "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}
    })
}

fn chunk(content: &str, finish: Option<&str>) -> Value {
    json!({"id": "chatcmpl-up", "object": "chat.completion.chunk", "created": 1, "model": "m",
           "choices": [{"index": 0, "delta": {"content": content}, "finish_reason": finish}]})
}

fn ask(model: &str, text: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": text}]})
}

/// An upstream that always answers `content`.
fn ok(content: &'static str) -> MockUpstream {
    MockUpstream::start(move |_| MockReply::json(200, completion(content)))
}

/// Chat requests the mock received (not health probes).
fn chats(up: &MockUpstream) -> Vec<Received> {
    up.requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/chat/completions"))
        .collect()
}

fn dead_url() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1", l.local_addr().unwrap());
    drop(l);
    url
}

fn pack(providers: &str, rest: &str) -> String {
    format!("pack: {{name: routing-test, version: 1.0.0}}\nproviders:\n{providers}\n{rest}\npolicies:\n  chain: [audit-logger]\n")
}

fn chat(gw: &Gateway, body: &Value) -> (u16, Vec<(String, String)>, Value) {
    post_json(&format!("{}/chat/completions", gw.base_url()), body, &[])
}

fn metrics(gw: &Gateway) -> Vec<Value> {
    let (s, b) = get_json(&format!("{}/keeptrusts/providers/metrics", gw.url()));
    assert_eq!(s, 200, "{b}");
    b["data"].as_array().unwrap().clone()
}

fn target_metrics(gw: &Gateway, id: &str) -> Value {
    metrics(gw)
        .into_iter()
        .find(|t| t["id"] == id)
        .unwrap_or_else(|| panic!("no metrics for `{id}`"))
}

/// Polls `f` until it is true or `within` passed; returns how long it took.
fn eventually(within: Duration, what: &str, mut f: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    loop {
        if f() {
            return start.elapsed();
        }
        assert!(start.elapsed() < within, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn routing_of(ev: &Value) -> &Value {
    &ev["detail"]["routing"]
}

#[test]
fn fallback_on_500_timeout_and_connection_refused() {
    let broken =
        MockUpstream::start(|_| MockReply::Raw(500, "text/plain".into(), "internal error".into()));
    let slow = MockUpstream::start(|_| {
        MockReply::Delay(
            Duration::from_secs(3),
            Box::new(MockReply::json(200, completion("late"))),
        )
    });
    let good = ok("from the fourth");
    let config = pack(
        &format!(
            "  strategy: fallback
  retry: {{attempts: 2, backoff_ms: 10, max_backoff_ms: 50}}
  targets:
    - {{id: broken, provider: openai, model: gpt-4o, base_url: '{}'}}
    - {{id: slow, provider: openai, model: gpt-4o, base_url: '{}', timeout_seconds: 0.3}}
    - {{id: refused, provider: openai, model: gpt-4o, base_url: '{}'}}
    - {{id: good, provider: openai, model: gpt-4o, base_url: '{}'}}",
            broken.v1(),
            slow.v1(),
            dead_url(),
            good.v1()
        ),
        "",
    );
    let gw = Gateway::start(Some(&config));
    let started = Instant::now();
    let (s, _, b) = chat(&gw, &ask("gpt-4o", "hi"));
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["choices"][0]["message"]["content"], "from the fourth");
    assert!(started.elapsed() < Duration::from_secs(3));
    // Each failing target was retried once before the next was tried.
    assert_eq!(chats(&broken).len(), 2);
    assert_eq!(chats(&slow).len(), 2);
    assert_eq!(chats(&good).len(), 1);

    let ev = &gw.events(1)[0];
    assert_eq!(ev["target_id"], "good");
    let r = routing_of(ev);
    assert_eq!(r["strategy"], "fallback");
    assert_eq!(r["chosen"], "good");
    assert_eq!(r["order"], json!(["broken", "slow", "refused", "good"]));
    let attempts = r["attempts"].as_array().unwrap();
    let summary: Vec<(String, u64)> = attempts
        .iter()
        .map(|a| {
            (
                a["target"].as_str().unwrap().to_string(),
                a["attempt"].as_u64().unwrap(),
            )
        })
        .collect();
    let want = [
        ("broken", 1),
        ("broken", 2),
        ("slow", 1),
        ("slow", 2),
        ("refused", 1),
        ("refused", 2),
        ("good", 1),
    ];
    assert_eq!(
        summary,
        want.map(|(t, n)| (t.to_string(), n)).to_vec(),
        "{r}"
    );
    assert_eq!(attempts[0]["outcome"], "http 500");
    assert!(attempts[0]["retry_in_ms"].as_u64().unwrap() <= 50);
    assert!(attempts[2]["outcome"]
        .as_str()
        .unwrap()
        .contains("timed out"));
    assert!(attempts[4]["outcome"]
        .as_str()
        .unwrap()
        .contains("unreachable"));
    assert_eq!(attempts[6]["outcome"], "ok");

    // Metrics count every attempt.
    let m = target_metrics(&gw, "broken");
    assert_eq!(
        (m["requests"].as_u64(), m["errors"].as_u64()),
        (Some(2), Some(2))
    );
    let m = target_metrics(&gw, "good");
    assert_eq!(
        (m["requests"].as_u64(), m["errors"].as_u64()),
        (Some(1), Some(0))
    );
    assert!(m["latency_ms"]["p50"].as_f64().is_some());
    assert_eq!(m["circuit"]["state"], "closed");
}

#[test]
fn the_last_targets_own_error_reaches_the_client_when_everything_fails() {
    let a = MockUpstream::start(|_| MockReply::Raw(503, "text/plain".into(), "a down".into()));
    let b = MockUpstream::start(|_| {
        MockReply::json(
            502,
            json!({"error": {"message": "b down", "type": "server_error"}}),
        )
    });
    let config = pack(
        &format!(
            "  strategy: fallback
  retry: {{attempts: 1}}
  targets:
    - {{id: a, provider: openai, model: gpt-4o, base_url: '{}'}}
    - {{id: b, provider: openai, model: gpt-4o, base_url: '{}'}}",
            a.v1(),
            b.v1()
        ),
        "",
    );
    let gw = Gateway::start(Some(&config));
    let (s, _, body) = chat(&gw, &ask("gpt-4o", "hi"));
    assert_eq!(s, 502);
    assert_eq!(body["error"]["message"], "b down");
    // A client error is not the target's fault: no fallback.
    let c = MockUpstream::start(|_| {
        MockReply::json(
            400,
            json!({"error": {"message": "bad param", "type": "invalid_request_error"}}),
        )
    });
    let d = ok("never");
    let config = pack(
        &format!(
            "  strategy: fallback
  targets:
    - {{id: c, provider: openai, model: gpt-4o, base_url: '{}'}}
    - {{id: d, provider: openai, model: gpt-4o, base_url: '{}'}}",
            c.v1(),
            d.v1()
        ),
        "",
    );
    let gw = Gateway::start(Some(&config));
    let (s, _, body) = chat(&gw, &ask("gpt-4o", "hi"));
    assert_eq!(
        (s, body["error"]["message"].as_str()),
        (400, Some("bad param"))
    );
    assert_eq!((chats(&c).len(), chats(&d).len()), (1, 0));
}

#[test]
fn retry_after_is_respected_and_a_long_one_moves_on() {
    let calls = Arc::new(AtomicUsize::new(0));
    let n = calls.clone();
    let limited = MockUpstream::start(move |r| {
        let first = n.fetch_add(1, Ordering::SeqCst) == 0;
        if r.json()["messages"][0]["content"] == "long" {
            MockReply::Json(
                429,
                json!({"error": {"message": "slow down"}}).to_string(),
                vec![("retry-after".into(), "30".into())],
            )
        } else if first {
            MockReply::Json(
                429,
                json!({"error": {"message": "slow down"}}).to_string(),
                vec![("retry-after-ms".into(), "300".into())],
            )
        } else {
            MockReply::json(200, completion("after waiting"))
        }
    });
    let backup = ok("backup");
    let config = pack(
        &format!(
            "  strategy: fallback
  retry: {{attempts: 3, backoff_ms: 10, max_backoff_ms: 1000}}
  targets:
    - {{id: limited, provider: openai, model: gpt-4o, base_url: '{}'}}
    - {{id: backup, provider: openai, model: gpt-4o, base_url: '{}'}}",
            limited.v1(),
            backup.v1()
        ),
        "",
    );
    let gw = Gateway::start(Some(&config));
    let started = Instant::now();
    let (s, _, b) = chat(&gw, &ask("gpt-4o", "short"));
    assert_eq!(s, 200);
    assert_eq!(b["choices"][0]["message"]["content"], "after waiting");
    assert!(started.elapsed() >= Duration::from_millis(300));
    let ev = &gw.events(1)[0];
    assert_eq!(routing_of(ev)["attempts"][0]["retry_in_ms"], 300);

    // 30 s is over `max_backoff_ms`: no waiting, the next target answers at once.
    let started = Instant::now();
    let (s, _, b) = chat(&gw, &ask("gpt-4o", "long"));
    assert_eq!(s, 200);
    assert_eq!(b["choices"][0]["message"]["content"], "backup");
    assert!(started.elapsed() < Duration::from_secs(2));
    // A 429 says "busy", not "broken": the circuit stays closed.
    assert_eq!(
        target_metrics(&gw, "limited")["circuit"]["consecutive_failures"],
        0
    );
}

#[test]
fn streams_fall_back_before_the_upstream_answers_and_never_after() {
    let first = MockUpstream::start(|r| {
        if r.json()["messages"][0]["content"] == "fail-before" {
            MockReply::Raw(500, "text/plain".into(), "no".into())
        } else {
            MockReply::Sse {
                events: vec![format!("data: {}\n\n", chunk("partial", None))],
                delay: Duration::ZERO,
                close_early: true,
            }
        }
    });
    let second = MockUpstream::start(|_| {
        MockReply::openai_sse(
            &[chunk("from second", None), chunk("", Some("stop"))],
            Duration::ZERO,
        )
    });
    let config = pack(
        &format!(
            "  strategy: fallback
  retry: {{attempts: 2, backoff_ms: 5}}
  targets:
    - {{id: first, provider: openai, model: gpt-4o, base_url: '{}'}}
    - {{id: second, provider: openai, model: gpt-4o, base_url: '{}'}}",
            first.v1(),
            second.v1()
        ),
        "",
    );
    let gw = Gateway::start(Some(&config));
    let url = format!("{}/chat/completions", gw.base_url());

    let mut body = ask("gpt-4o", "fail-before");
    body["stream"] = json!(true);
    let (status, arrivals) = post_stream(&url, &body);
    assert_eq!(status, 200);
    let text: String = arrivals
        .iter()
        .filter_map(|a| serde_json::from_str::<Value>(&a.data).ok())
        .filter_map(|v| {
            v["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_string)
        })
        .collect();
    assert_eq!(text, "from second");
    assert_eq!((chats(&first).len(), chats(&second).len()), (2, 1));

    // The upstream answered 200 and sent a token, then broke: the client already has
    // bytes, so the error travels in-band and nothing is retried.
    let mut body = ask("gpt-4o", "break-mid-stream");
    body["stream"] = json!(true);
    let (status, arrivals) = post_stream(&url, &body);
    assert_eq!(status, 200);
    assert!(arrivals[0].data.contains("partial"), "{arrivals:?}");
    let err: Value = serde_json::from_str(&arrivals[arrivals.len() - 2].data).unwrap();
    assert!(err["error"]["message"].is_string(), "{arrivals:?}");
    assert_eq!(arrivals.last().unwrap().data, "[DONE]");
    assert_eq!((chats(&first).len(), chats(&second).len()), (3, 1));
    let evs = gw.events(2);
    let r = routing_of(&evs[1]);
    assert_eq!(r["attempts"].as_array().unwrap().len(), 1, "{r}");
    assert_eq!(evs[1]["status"], 502);
}

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
    let gw = Gateway::start(Some(&config));
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
    let gw = Gateway::start(Some(&config));
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

/// Events so far, waiting for the writer to catch up with every request sent.
fn read_events_now(gw: &Gateway) -> Vec<Value> {
    let sent = metrics(gw)
        .iter()
        .map(|t| t["requests"].as_u64().unwrap_or(0))
        .sum::<u64>() as usize;
    gw.events(sent)
}

#[test]
fn circuit_breaker_opens_skips_and_recovers_through_a_probe() {
    let failing = Arc::new(AtomicBool::new(true));
    let f = failing.clone();
    let flaky = MockUpstream::start(move |_| {
        if f.load(Ordering::SeqCst) {
            MockReply::Raw(500, "text/plain".into(), "broken".into())
        } else {
            MockReply::json(200, completion("flaky recovered"))
        }
    });
    let steady = ok("steady");
    let config = pack(
        &format!(
            "  strategy: fallback
  retry: {{attempts: 1}}
  circuit_breaker: {{failure_threshold: 2, cooldown_seconds: 0.4}}
  targets:
    - {{id: openai-main, provider: openai, model: gpt-4o, base_url: '{}'}}
    - {{id: backup, provider: openai, model: gpt-4o, base_url: '{}'}}",
            flaky.v1(),
            steady.v1()
        ),
        "",
    );
    let gw = Gateway::start(Some(&config));
    for _ in 0..2 {
        let (s, _, b) = chat(&gw, &ask("gpt-4o", "hi"));
        assert_eq!(
            (s, b["choices"][0]["message"]["content"].as_str()),
            (200, Some("steady"))
        );
    }
    assert_eq!(chats(&flaky).len(), 2);
    let m = target_metrics(&gw, "openai-main");
    assert_eq!(m["circuit"]["state"], "open", "{m}");
    assert_eq!(m["circuit"]["opens"], 1);

    // Open: skipped without a request.
    let (s, _, _) = chat(&gw, &ask("gpt-4o", "hi"));
    assert_eq!(s, 200);
    assert_eq!(chats(&flaky).len(), 2);
    let ev = gw.events(3).pop().unwrap();
    assert_eq!(
        routing_of(&ev)["skipped"],
        json!([{"target": "openai-main", "reason": "circuit_open"}])
    );

    // Recovered upstream: after the cooldown one probe request closes the circuit.
    failing.store(false, Ordering::SeqCst);
    eventually(Duration::from_secs(5), "the probe request", || {
        let (_, _, b) = chat(&gw, &ask("gpt-4o", "hi"));
        b["choices"][0]["message"]["content"] == "flaky recovered"
    });
    assert_eq!(
        target_metrics(&gw, "openai-main")["circuit"]["state"],
        "closed"
    );
    let evs = read_events_now(&gw);
    let probe = &routing_of(evs.last().unwrap())["attempts"][0];
    assert_eq!(probe["probe"], true, "{probe}");
    assert_eq!(chats(&flaky).len(), 3);
}

#[test]
fn every_open_circuit_fails_fast_with_503() {
    let flaky = MockUpstream::start(|_| MockReply::Raw(502, "text/plain".into(), "bad".into()));
    let config = pack(
        &format!(
            "  retry: {{attempts: 1}}
  circuit_breaker: {{failure_threshold: 1, cooldown_seconds: 30}}
  targets:
    - {{id: only, provider: openai, model: gpt-4o, base_url: '{}'}}",
            flaky.v1()
        ),
        "",
    );
    let gw = Gateway::start(Some(&config));
    assert_eq!(chat(&gw, &ask("gpt-4o", "hi")).0, 502);
    let (s, h, b) = chat(&gw, &ask("gpt-4o", "hi"));
    assert_eq!(s, 503);
    assert_eq!(b["error"]["code"], "circuit_open");
    let retry: f64 = find_header(&h, "retry-after").unwrap().parse().unwrap();
    assert!(retry > 25.0 && retry <= 30.0, "{retry}");
    assert_eq!(chats(&flaky).len(), 1);
}

#[test]
fn probes_mark_a_dead_target_down_within_one_interval() {
    let dead = Arc::new(AtomicBool::new(false));
    let d = dead.clone();
    let primary = MockUpstream::start(move |r| {
        match (d.load(Ordering::SeqCst), r.path.ends_with("/health")) {
            (true, true) => MockReply::Raw(503, "text/plain".into(), "down".into()),
            (false, true) => MockReply::Raw(200, "text/plain".into(), "ok".into()),
            (_, false) => MockReply::json(200, completion("primary")),
        }
    });
    let backup = ok("backup");
    let config = pack(
        &format!(
            "  strategy: fallback
  targets:
    - id: primary
      provider: openai
      model: gpt-4o
      base_url: '{}'
      health_probe: {{path: /health, interval_seconds: 0.3, timeout_seconds: 0.2}}
    - {{id: backup, provider: openai, model: gpt-4o, base_url: '{}'}}",
            primary.v1(),
            backup.v1()
        ),
        "",
    );
    let gw = Gateway::start(Some(&config));
    let health = |gw: &Gateway| target_metrics(gw, "primary")["health"]["status"].clone();
    eventually(Duration::from_secs(5), "first probe", || {
        health(&gw) == "up"
    });
    assert_eq!(primary.requests()[0].path, "/v1/health");

    dead.store(true, Ordering::SeqCst);
    let took = eventually(Duration::from_secs(5), "marked down", || {
        health(&gw) == "down"
    });
    assert!(took < Duration::from_millis(300 + 200), "took {took:?}");
    let (s, _, b) = chat(&gw, &ask("gpt-4o", "hi"));
    assert_eq!(
        (s, b["choices"][0]["message"]["content"].as_str()),
        (200, Some("backup"))
    );
    assert!(chats(&primary).is_empty());
    let ev = &gw.events(1)[0];
    assert_eq!(
        routing_of(ev)["skipped"],
        json!([{"target": "primary", "reason": "health_down"}])
    );

    dead.store(false, Ordering::SeqCst);
    eventually(Duration::from_secs(5), "marked up", || health(&gw) == "up");
    let (_, _, b) = chat(&gw, &ask("gpt-4o", "hi"));
    assert_eq!(b["choices"][0]["message"]["content"], "primary");
}

#[test]
fn when_every_target_is_down_it_is_still_tried() {
    // The probe path fails, the API works: the probe's word alone must not cause an outage.
    let up = MockUpstream::start(|r| {
        if r.path.ends_with("/health") {
            MockReply::Raw(500, "text/plain".into(), "no".into())
        } else {
            MockReply::json(200, completion("still works"))
        }
    });
    let config = pack(
        &format!(
            "  targets:
    - id: only
      provider: openai
      model: gpt-4o
      base_url: '{}'
      health_probe: {{path: /health, interval_seconds: 5, timeout_seconds: 0.2}}",
            up.v1()
        ),
        "",
    );
    let gw = Gateway::start(Some(&config));
    eventually(Duration::from_secs(5), "marked down", || {
        target_metrics(&gw, "only")["health"]["status"] == "down"
    });
    let (s, _, b) = chat(&gw, &ask("gpt-4o", "hi"));
    assert_eq!(
        (s, b["choices"][0]["message"]["content"].as_str()),
        (200, Some("still works"))
    );
    assert_eq!(routing_of(&gw.events(1)[0])["last_resort"], true);
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
    let gw = Gateway::start(Some(&config));
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
    let gw = Gateway::start(Some(&config));
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
    let gw = Gateway::start(Some(&config));
    let (s, _, b) = chat(&gw, &ask("gpt-4o", "hi"));
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["choices"][0]["message"]["content"], "zdr");
    assert_eq!(b["x_keeptrusts"]["region"], "eu");
    assert!(chats(&plain).is_empty());
    let r = routing_of(&gw.events(1)[0]).clone();
    assert_eq!(r["skipped"][0]["target"], "openai-main");

    let config = config.replace("{require_zdr: true}", "{allowed_regions: [ap-south]}");
    let gw = Gateway::start(Some(&config));
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
