//! Upstream calls over plain HTTP. Without a proxy they go through kt's own HTTP/1.1
//! client (src/gateway/transport/plain.rs): one kept-alive connection carries calls and
//! streams alike, and the request is well formed. With a proxy in the environment they go
//! through ureq and the proxy's CONNECT tunnel.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;

use serde_json::json;

use crate::gateway::{chunk, completion, config_for};
use crate::support::*;

/// A mock upstream's handler: the chat completion `text`, or, when the body asks for a
/// stream, `pieces` streamed as deltas.
pub(crate) fn answering(
    text: &'static str,
    pieces: [&'static str; 2],
) -> impl Fn(&Received) -> MockReply + Send + Sync + 'static {
    move |r| {
        if r.json()["stream"] == true {
            MockReply::openai_sse(
                &[
                    chunk(json!({"role": "assistant", "content": pieces[0]}), None),
                    chunk(json!({"content": pieces[1]}), None),
                    chunk(json!({}), Some("stop")),
                ],
                std::time::Duration::ZERO,
            )
        } else {
            MockReply::json(200, completion(text))
        }
    }
}

fn upstream() -> MockUpstream {
    MockUpstream::start(answering("over http", ["pl", "ain"]))
}

/// Two calls and two streams, alternating, through `gw`: the calls answer `call_text`,
/// the streams stream `stream_text` and end with `[DONE]`.
pub(crate) fn calls_and_streams(gw: &Gateway, call_text: &str, stream_text: &str) {
    let url = format!("{}/chat/completions", gw.base_url());
    let user = json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]});
    for i in 0..4 {
        if i % 2 == 0 {
            let (status, _, body) = post_json(&url, &user, &[]);
            assert_eq!(status, 200, "{body}");
            assert_eq!(body["choices"][0]["message"]["content"], call_text);
        } else {
            let mut req = user.clone();
            req["stream"] = json!(true);
            let (status, events) = post_stream(&url, &req);
            assert_eq!(status, 200);
            assert_eq!(streamed_text(&events), stream_text);
            assert_eq!(events.last().map(|e| e.data.as_str()), Some("[DONE]"));
        }
    }
}

#[test]
fn plain_http_calls_and_streams_share_one_kept_alive_connection() {
    let up = upstream();
    let gw = Gateway::start(Some(&config_for(&up.v1(), "")));
    calls_and_streams(&gw, "over http", "plain");
    assert_eq!(up.count(), 4);
    // Sequential calls and streams (each read to its end) reuse one connection.
    assert_eq!(up.connections.load(SeqCst), 1);
    for r in up.requests() {
        assert_eq!(
            (r.method.as_str(), r.path.as_str()),
            ("POST", "/v1/chat/completions")
        );
        assert_eq!(r.header("host"), up.url.strip_prefix("http://"));
        assert_eq!(r.header("user-agent"), Some("keeptrusts-kt"));
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert_eq!(
            r.header("content-length"),
            Some(r.body.len().to_string().as_str())
        );
        assert_eq!(r.json()["model"], "gpt-4o");
    }
}

/// An HTTP CONNECT proxy on loopback: tunnels each connection to the `host:port` it
/// names; counts the tunnels.
fn connect_proxy() -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let tunnels = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&tunnels);
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let counted = Arc::clone(&counted);
            std::thread::spawn(move || {
                let mut from_client = BufReader::new(client.try_clone().unwrap());
                let mut first = String::new();
                from_client.read_line(&mut first).unwrap();
                let mut line = String::new();
                while from_client.read_line(&mut line).unwrap_or(0) > 2 {
                    line.clear();
                }
                let target = first.split_whitespace().nth(1).unwrap_or_default();
                assert!(first.starts_with("CONNECT "), "{first}");
                let Ok(up) = TcpStream::connect(target) else {
                    return;
                };
                counted.fetch_add(1, SeqCst);
                let mut to_client = client;
                to_client
                    .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    .unwrap();
                let mut to_up = up.try_clone().unwrap();
                std::thread::spawn(move || {
                    std::io::copy(&mut from_client, &mut to_up).ok();
                    to_up.shutdown(std::net::Shutdown::Write).ok();
                });
                let mut from_up = up;
                std::io::copy(&mut from_up, &mut to_client).ok();
                to_client.shutdown(std::net::Shutdown::Write).ok();
            });
        }
    });
    (addr, tunnels)
}

#[test]
fn a_proxy_in_the_environment_carries_plain_http_calls() {
    let up = upstream();
    let (proxy, tunnels) = connect_proxy();
    let gw = Gateway::start_with(
        Some(&config_for(&up.v1(), "")),
        &[],
        // An empty NO_PROXY: a NO_PROXY of the machine must not exempt loopback here.
        &[("HTTP_PROXY", &format!("http://{proxy}")), ("NO_PROXY", "")],
    );
    calls_and_streams(&gw, "over http", "plain");
    assert_eq!(up.count(), 4);
    assert!(tunnels.load(SeqCst) >= 1, "the calls went around the proxy");
}
