//! The worker model under load: `--max-concurrency` with its bounded admission queue (503
//! when full), and open streams never starving short requests.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::*;

fn config_for(upstream: &str) -> String {
    format!(
        "pack: {{name: load, version: 1.0.0}}
providers:
  targets:
    - id: primary
      provider: openai
      model: gpt-4o
      base_url: {upstream}
policies:
  chain: [audit-logger]
"
    )
}

fn completion(content: &str) -> Value {
    json!({
        "id": "chatcmpl-up", "object": "chat.completion", "created": 1, "model": "gpt-4o",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}
    })
}

fn ask(text: &str) -> Value {
    json!({"model": "gpt-4o", "messages": [{"role": "user", "content": text}]})
}

#[test]
fn over_max_concurrency_requests_queue_then_the_overflow_gets_503() {
    // The upstream holds a request that says "slow" for 2 s and answers others at once.
    let up = MockUpstream::start(|r| {
        if r.json()["messages"][0]["content"] == "slow please" {
            MockReply::Delay(
                Duration::from_secs(2),
                Box::new(MockReply::json(200, completion("slow"))),
            )
        } else {
            MockReply::json(200, completion("fast"))
        }
    });
    let gw = Gateway::start_with(
        Some(&config_for(&up.v1())),
        &["--max-concurrency", "1"],
        &[],
    );
    let url = format!("{}/v1/chat/completions", gw.url());
    let holder = {
        let url = url.clone();
        std::thread::spawn(move || post_json(&url, &ask("slow please"), &[]).0)
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    while up.count() == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(up.count(), 1, "the slow request reached the upstream");

    // One slot, taken; the queue holds 16 (the minimum). 20 more: 16 wait, 4 are shed.
    let shed_fast = Arc::new(AtomicUsize::new(0));
    let clients: Vec<_> = (0..20)
        .map(|i| {
            let url = url.clone();
            let shed_fast = shed_fast.clone();
            std::thread::spawn(move || {
                let started = Instant::now();
                let (status, headers, body) = post_json(&url, &ask(&format!("fast {i}")), &[]);
                if status == 503 {
                    assert_eq!(body["error"]["code"], "overloaded", "{body}");
                    assert_eq!(body["error"]["type"], "server_error");
                    assert_eq!(find_header(&headers, "retry-after"), Some("1"));
                    assert!(find_header(&headers, "x-request-id").is_some());
                    if started.elapsed() < Duration::from_secs(4) {
                        shed_fast.fetch_add(1, Ordering::SeqCst);
                    }
                }
                status
            })
        })
        .collect();
    let statuses: Vec<u16> = clients.into_iter().map(|c| c.join().unwrap()).collect();
    assert_eq!(holder.join().unwrap(), 200);
    let ok = statuses.iter().filter(|s| **s == 200).count();
    let shed = statuses.iter().filter(|s| **s == 503).count();
    assert_eq!(ok + shed, 20, "only 200s and 503s: {statuses:?}");
    assert_eq!(shed, 4, "the queue holds 16: {statuses:?}");
    assert_eq!(
        shed_fast.load(Ordering::SeqCst),
        4,
        "shed at once, not after the 5 s queue wait"
    );
    assert_eq!(up.count(), 17, "shed requests never reach the upstream");

    // Every request, shed or not, has its event.
    let events = gw.events(21);
    let overloaded = events.iter().filter(|e| e["status"] == 503).count();
    assert_eq!(overloaded, 4);
}

#[test]
fn open_streams_do_not_starve_short_requests() {
    // Far more open streams than the old fixed pool of 128 workers.
    const STREAMS: usize = 300;
    let up = MockUpstream::start(|r| {
        if r.json()["stream"] == true {
            let chunk = json!({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o",
                               "choices": [{"index": 0, "delta": {"content": "tick "}, "finish_reason": null}]});
            // 6 events 500 ms apart: each stream stays open ~3 s.
            MockReply::openai_sse(&vec![chunk; 6], Duration::from_millis(500))
        } else {
            MockReply::json(200, completion("short"))
        }
    });
    let gw = Gateway::start(Some(&config_for(&up.v1())));
    let url = format!("{}/v1/chat/completions", gw.url());
    let opened = Arc::new(AtomicUsize::new(0));
    let streams: Vec<_> = (0..STREAMS)
        .map(|_| {
            let url = url.clone();
            let opened = opened.clone();
            std::thread::Builder::new()
                .stack_size(128 * 1024)
                .spawn(move || {
                    let mut body = ask("stream please");
                    body["stream"] = json!(true);
                    let resp = http()
                        .post(&url)
                        .header("Content-Type", "application/json")
                        .send(body.to_string().as_bytes())
                        .unwrap();
                    let status = resp.status().as_u16();
                    opened.fetch_add(1, Ordering::SeqCst);
                    let text = resp.into_body().read_to_string().unwrap_or_default();
                    (status, text.contains("[DONE]"))
                })
                .unwrap()
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(10);
    while opened.load(Ordering::SeqCst) < STREAMS && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(
        opened.load(Ordering::SeqCst),
        STREAMS,
        "every stream opened"
    );

    // While every stream is open, short requests are answered promptly.
    for _ in 0..5 {
        let started = Instant::now();
        let (status, _, body) = post_json(&url, &ask("short one"), &[]);
        assert_eq!(status, 200, "{body}");
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "a short request waited {:?} behind open streams",
            started.elapsed()
        );
    }
    for s in streams {
        assert_eq!(s.join().unwrap(), (200, true));
    }
}
