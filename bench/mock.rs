//! The bench's upstream: a minimal keep-alive HTTP/1.1 server on loopback, a thread per
//! connection. A JSON completion at once; with `"stream":true` an SSE stream of
//! `STREAM_EVENTS` words `STREAM_GAP` apart; with `"hold"` in the prompt a long stream of
//! `HOLD_EVENTS` words `HOLD_GAP` apart (the open-streams measurement). Each event's text
//! is a word and the space after it (`w0 `, `w1 `…); with `"split"` in the prompt the
//! space comes first, as OpenAI's tokens have it (`w0`, ` w1`, ` w2`…), so every event
//! ends inside a word.

use std::io::{BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

/// An answer as OpenAI writes one: `refusal`, `annotations`, `logprobs`, the usage details,
/// `service_tier` and `system_fingerprint` included.
const COMPLETION: &str = r#"{"id":"chatcmpl-b","object":"chat.completion","created":1,"model":"gpt-4o-2024-08-06","choices":[{"index":0,"message":{"role":"assistant","content":"The quick brown fox jumps over the lazy dog.","refusal":null,"annotations":[]},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":10,"total_tokens":22,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}},"service_tier":"default","system_fingerprint":"fp_b"}"#;
pub const STREAM_EVENTS: usize = 20;
pub const STREAM_GAP: Duration = Duration::from_millis(5);
pub const HOLD_EVENTS: usize = 40;
pub const HOLD_GAP: Duration = Duration::from_millis(250);

/// Starts the mock; returns `host:port`.
pub fn start() -> String {
    let listener = listen();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for s in listener.incoming().flatten() {
            std::thread::Builder::new()
                .stack_size(64 * 1024)
                .spawn(move || serve(s))
                .ok();
        }
    });
    addr
}

/// A loopback listener with a backlog of 4096: std's 128 overflows when a thousand
/// streams connect at once (the held-streams rows connect them straight to the mock).
pub fn listen() -> TcpListener {
    use rustix::net::{bind, listen, socket, AddressFamily, SocketType};
    let fd = socket(AddressFamily::INET, SocketType::STREAM, None).unwrap();
    bind(&fd, &std::net::SocketAddr::from(([127, 0, 0, 1], 0))).unwrap();
    listen(&fd, 4096).unwrap();
    TcpListener::from(fd)
}

fn serve(stream: TcpStream) {
    stream.set_nodelay(true).ok();
    let mut r = BufReader::new(stream.try_clone().unwrap());
    let mut w = stream;
    let mut request = Vec::with_capacity(4096);
    while let Some(head) = crate::relay::read_message(&mut r, &mut request) {
        let body = &request[head..];
        let ok = if body.windows(13).any(|x| x == b"\"stream\":true") {
            let split = body.windows(5).any(|x| x == b"split");
            if body.windows(4).any(|x| x == b"hold") {
                sse(&mut w, HOLD_EVENTS, HOLD_GAP, split)
            } else {
                sse(&mut w, STREAM_EVENTS, STREAM_GAP, split)
            }
        } else {
            let resp = format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{COMPLETION}", COMPLETION.len());
            w.write_all(resp.as_bytes()).is_ok()
        };
        if !ok {
            return;
        }
    }
}

fn sse(w: &mut TcpStream, events: usize, gap: Duration, split: bool) -> bool {
    let head =
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n";
    if w.write_all(head.as_bytes()).is_err() {
        return false;
    }
    for i in 0..=events {
        let ev = if i == events {
            "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n".to_string()
        } else {
            let word = match (split, i) {
                (false, _) => format!("w{i} "),
                (true, 0) => "w0".to_string(),
                (true, _) => format!(" w{i}"),
            };
            format!("data: {{\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"{word}\"}},\"finish_reason\":null}}]}}\n\n")
        };
        if w.write_all(format!("{:x}\r\n{ev}\r\n", ev.len()).as_bytes())
            .is_err()
        {
            return false;
        }
        if i + 1 < events {
            std::thread::sleep(gap);
        }
    }
    w.write_all(b"0\r\n\r\n").is_ok()
}
