//! Upstream faults: each maps to a correct OpenAI error (or an in-band stream error — never a
//! silently truncated "success"), the event records it, and the gateway keeps serving.

use std::io::Write;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::*;

fn config_for(upstream: &str) -> String {
    format!(
        "pack: {{name: faults, version: 1.0.0}}
providers:
  targets:
    - id: primary
      provider: openai
      model: gpt-4o
      base_url: {upstream}
      timeout_seconds: 1
      stream_timeout_seconds: 1
policies:
  chain: [audit-logger]
"
    )
}

fn chunk(text: &str) -> Value {
    json!({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o",
           "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": null}]})
}

fn completion() -> Value {
    json!({
        "id": "chatcmpl-up", "object": "chat.completion", "created": 1, "model": "gpt-4o",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "fine"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}
    })
}

/// Which fault the mock plays is chosen by the user message.
fn fault(kind: &str) -> MockReply {
    let sse = |events: Vec<String>, close_early| MockReply::Sse {
        events,
        delay: Duration::from_millis(10),
        close_early,
    };
    match kind {
        "stall-stream" => MockReply::Sse {
            events: vec![format!("data: {}\n\n", chunk("hello")), String::new()],
            // The second (empty) write comes after the stall timeout.
            delay: Duration::from_secs(4),
            close_early: false,
        },
        "stall-unary" => MockReply::Delay(
            Duration::from_secs(4),
            Box::new(MockReply::json(200, completion())),
        ),
        "malformed-sse" => sse(
            vec![
                format!("data: {}\n\n", chunk("hello")),
                "data: {\"id\": \"c\", \"choices\": [ not json\n\n".to_string(),
                "data: [DONE]\n\n".to_string(),
            ],
            false,
        ),
        "reset-mid-stream" => sse(vec![format!("data: {}\n\n", chunk("hello"))], true),
        "truncated-json" => {
            let full = completion().to_string();
            MockReply::Raw(
                200,
                "application/json".into(),
                full.get(..full.len() / 2).unwrap().to_string(),
            )
        }
        "gzip-bomb" => MockReply::Bytes {
            status: 200,
            content_type: "application/json".into(),
            headers: vec![("Content-Encoding".into(), "gzip".into())],
            pieces: vec![gzip_bomb()],
            delay: Duration::ZERO,
        },
        "gzip-bomb-stream" => MockReply::Bytes {
            status: 200,
            content_type: "text/event-stream".into(),
            headers: vec![("Content-Encoding".into(), "gzip".into())],
            pieces: vec![gzip_bomb()],
            delay: Duration::ZERO,
        },
        "enormous" => MockReply::Bytes {
            status: 200,
            content_type: "application/json".into(),
            headers: Vec::new(),
            pieces: (0..80).map(|_| vec![b' '; 1024 * 1024]).collect(),
            delay: Duration::ZERO,
        },
        "endless-line" => MockReply::Bytes {
            status: 200,
            content_type: "text/event-stream".into(),
            headers: Vec::new(),
            pieces: std::iter::once(b"data: {\"x\":\"".to_vec())
                .chain((0..24).map(|_| vec![b'a'; 1024 * 1024]))
                .collect(),
            delay: Duration::ZERO,
        },
        _ => MockReply::json(200, completion()),
    }
}

/// 200 MiB of zeros, gzip-compressed (~200 KB), compressed once: compressing it in the
/// mock's handler took most of the gateway's 1 s upstream timeout on a loaded machine.
fn gzip_bomb() -> Vec<u8> {
    static BOMB: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    BOMB.get_or_init(|| gzip_zeros(200 * 1024 * 1024)).clone()
}

/// `n` zero bytes, gzip-compressed (about n/1000 bytes).
fn gzip_zeros(n: usize) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let block = vec![0u8; 1024 * 1024];
    for _ in 0..n / block.len() {
        enc.write_all(&block).unwrap();
    }
    enc.finish().unwrap()
}

fn start() -> (MockUpstream, Gateway) {
    let up = MockUpstream::start(|r| {
        let kind = r.json()["messages"][0]["content"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        fault(&kind)
    });
    let gw = Gateway::start(Some(&config_for(&up.v1())));
    (up, gw)
}

fn ask(kind: &str, stream: bool) -> Value {
    json!({"model": "gpt-4o", "stream": stream, "messages": [{"role": "user", "content": kind}]})
}

/// The gateway still answers a normal request within 1 s.
fn assert_serving(gw: &Gateway) {
    let started = Instant::now();
    let (status, _, body) = post_json(
        &format!("{}/v1/chat/completions", gw.url()),
        &ask("ok", false),
        &[],
    );
    assert_eq!(status, 200, "{body}");
    assert!(started.elapsed() < Duration::from_secs(1));
}

/// A unary fault: the expected status and error code; the event says the same.
fn unary_fault(gw: &Gateway, kind: &str, status: u16, code: &str, message_has: &str) {
    let started = Instant::now();
    let (got, headers, body) = post_json(
        &format!("{}/v1/chat/completions", gw.url()),
        &ask(kind, false),
        &[],
    );
    assert_eq!(got, status, "{kind}: {body}");
    assert_eq!(body["error"]["code"], code, "{kind}: {body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains(message_has)),
        "{kind}: {body}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{kind} took {:?}",
        started.elapsed()
    );
    let id = find_header(&headers, "x-request-id").unwrap().to_string();
    let ev = event_for(gw, &id);
    assert_eq!(ev["status"], status, "{kind}: {ev}");
    assert!(ev["error"].as_str().is_some(), "{kind}: {ev}");
}

/// A stream fault: the stream carries an in-band error and never ends as a success.
fn stream_fault(gw: &Gateway, kind: &str, status: u16, message_has: &str) {
    let started = Instant::now();
    let (got, arrivals) = post_stream(
        &format!("{}/v1/chat/completions", gw.url()),
        &ask(kind, true),
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{kind} took {:?}",
        started.elapsed()
    );
    if got != 200 {
        // Failed before the stream started: a plain error answer is right too.
        assert_eq!(got, status, "{kind}");
        return;
    }
    let error = arrivals
        .iter()
        .filter_map(|a| serde_json::from_str::<Value>(&a.data).ok())
        .find(|v| v.get("error").is_some())
        .unwrap_or_else(|| panic!("{kind}: no in-band error in {:?}", data_of(&arrivals)));
    assert!(
        error["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains(message_has)),
        "{kind}: {error}"
    );
    assert!(
        !arrivals
            .iter()
            .any(|a| a.data.contains("\"finish_reason\":\"stop\"")),
        "{kind}: a failed stream must not end like a complete one"
    );
    wait_event(
        gw,
        &format!("{kind}: a stream event with status {status}"),
        |e| e["stream"] == true && e["status"] == status,
    );
}

fn data_of(arrivals: &[Arrival]) -> Vec<&str> {
    arrivals.iter().map(|a| a.data.as_str()).collect()
}

fn event_for(gw: &Gateway, request_id: &str) -> Value {
    wait_event(gw, request_id, |e| e["request_id"] == request_id)
}

/// Polls the database until an event matches (events are written in batches).
fn wait_event(gw: &Gateway, what: &str, matches: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(e) = read_events(&gw.db).into_iter().find(|e| matches(e)) {
            return e;
        }
        assert!(Instant::now() < deadline, "no event: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn stalled_upstreams_time_out_and_free_the_worker() {
    let (_up, gw) = start();
    unary_fault(&gw, "stall-unary", 504, "upstream_timeout", "timed out");
    assert_serving(&gw);
    stream_fault(&gw, "stall-stream", 504, "stalled");
    assert_serving(&gw);
}

#[test]
fn broken_streams_end_with_an_in_band_error() {
    let (_up, gw) = start();
    for (kind, message_has) in [
        ("malformed-sse", ""),
        ("reset-mid-stream", ""),
        ("endless-line", "limit"),
    ] {
        stream_fault(&gw, kind, 502, message_has);
        assert_serving(&gw);
    }
}

#[test]
fn broken_and_oversized_bodies_are_bad_gateway() {
    let (_up, gw) = start();
    unary_fault(&gw, "truncated-json", 502, "bad_upstream_response", "");
    assert_serving(&gw);
    unary_fault(&gw, "enormous", 502, "bad_upstream_response", "limit");
    assert_serving(&gw);
}

#[test]
fn decompression_bombs_are_cut_off() {
    gzip_bomb();
    let (_up, gw) = start();
    unary_fault(&gw, "gzip-bomb", 502, "bad_upstream_response", "limit");
    assert_serving(&gw);
    stream_fault(&gw, "gzip-bomb-stream", 502, "limit");
    assert_serving(&gw);
}
