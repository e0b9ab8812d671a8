//! Fallback on 500 / timeout / connection refused, retries and `retry-after`, streams
//! (no retry once the client has bytes), the circuit breaker and health probes.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::*;

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
    let gw = start(&config);
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
    // Like every `/keeptrusts/*` endpoint, the metrics need the admin token.
    let (s, b) = get_json(&format!("{}/keeptrusts/providers/metrics", gw.url()));
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (401, Some("invalid_api_key"))
    );
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
    let gw = start(&config);
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
    let gw = start(&config);
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
    let gw = start(&config);
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
    let gw = start(&config);
    let url = format!("{}/chat/completions", gw.base_url());

    let mut body = ask("gpt-4o", "fail-before");
    body["stream"] = json!(true);
    let (status, arrivals) = post_stream(&url, &body);
    assert_eq!(status, 200);
    assert_eq!(streamed_text(&arrivals), "from second");
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
    // A stream's event is written after its last byte, so the two may land in either
    // order.
    let evs = gw.events(2);
    let broken = evs
        .iter()
        .find(|e| e["status"] == 502)
        .expect("the broken stream");
    let r = routing_of(broken);
    assert_eq!(r["attempts"].as_array().unwrap().len(), 1, "{r}");
    // The broken stream still counts against the target: two failed tries of the first
    // request, then this one.
    let m = target_metrics(&gw, "first");
    assert_eq!(
        (m["requests"].as_u64(), m["errors"].as_u64()),
        (Some(3), Some(3))
    );
    assert_eq!(m["circuit"]["consecutive_failures"], 3);
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
    let gw = start(&config);
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
    let gw = start(&config);
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
    let gw = start(&config);
    let health = |gw: &Gateway| target_metrics(gw, "primary")["health"]["status"].clone();
    eventually(Duration::from_secs(5), "first probe", || {
        health(&gw) == "up"
    });
    assert_eq!(primary.requests()[0].path, "/health");

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
    let gw = start(&config);
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
