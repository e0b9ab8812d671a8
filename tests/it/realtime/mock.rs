//! A scripted OpenAI-style realtime server for the realtime tests.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use tungstenite::handshake::server::{Request as HsRequest, Response as HsResponse};
use tungstenite::{Message, WebSocket};

/// What the mock realtime server saw.
#[derive(Default)]
pub struct Seen {
    /// Handshake: request path and query, and headers (lowercase names).
    pub handshakes: Vec<(String, Vec<(String, String)>)>,
    /// Text messages received, in order.
    pub texts: Vec<String>,
    /// Close frames received (code).
    pub closes: Vec<Option<u16>>,
}

/// A scripted OpenAI-style realtime server on 127.0.0.1:0. It greets with
/// `session.created`, echoes `conversation.item.create` as `conversation.item.created`,
/// answers `response.create` with `deltas` (`gap` apart), `response.text.done` and
/// `response.done` with usage, echoes binary, and answers anything else with `echo`.
pub struct MockRealtime {
    pub addr: String,
    pub seen: Arc<Mutex<Seen>>,
    tls: bool,
}

impl MockRealtime {
    pub fn start(deltas: &[&str], gap: Duration) -> MockRealtime {
        MockRealtime::serve_on(deltas, gap, None)
    }

    /// The same over TLS (`wss://`), with the certificate of testdata/tls for `localhost`.
    pub fn start_tls(deltas: &[&str], gap: Duration) -> MockRealtime {
        MockRealtime::serve_on(deltas, gap, Some(crate::support::tls_server_config()))
    }

    fn serve_on(
        deltas: &[&str],
        gap: Duration,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> MockRealtime {
        let tls_on = tls.is_some();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let seen = Arc::new(Mutex::new(Seen::default()));
        let deltas: Vec<String> = deltas.iter().map(|s| s.to_string()).collect();
        let seen2 = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let seen = seen2.clone();
                let deltas = deltas.clone();
                let tls = tls.clone();
                stream
                    .set_read_timeout(Some(Duration::from_secs(30)))
                    .unwrap();
                std::thread::spawn(move || match tls {
                    Some(config) => {
                        let conn = rustls::ServerConnection::new(config).unwrap();
                        let stream = rustls::StreamOwned::new(conn, stream);
                        serve(stream, &seen, &deltas, gap);
                    }
                    None => serve(stream, &seen, &deltas, gap),
                });
            }
        });
        MockRealtime {
            addr,
            seen,
            tls: tls_on,
        }
    }

    /// The `base_url` of a target pointing here.
    pub fn v1(&self) -> String {
        if self.tls {
            let port = self.addr.rsplit(':').next().unwrap_or_default();
            format!("https://localhost:{port}/v1")
        } else {
            format!("http://{}/v1", self.addr)
        }
    }

    pub fn texts(&self) -> Vec<String> {
        self.seen.lock().unwrap().texts.clone()
    }

    pub fn handshake_header(&self, name: &str) -> Option<String> {
        let seen = self.seen.lock().unwrap();
        let (_, headers) = seen.handshakes.last()?;
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    }
}

fn serve<S: Read + Write>(stream: S, seen: &Mutex<Seen>, deltas: &[String], gap: Duration) {
    let callback = |req: &HsRequest, mut resp: HsResponse| {
        let headers = req
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_ascii_lowercase(),
                    v.to_str().unwrap_or("").to_string(),
                )
            })
            .collect::<Vec<_>>();
        let offered = headers
            .iter()
            .find(|(k, _)| k == "sec-websocket-protocol")
            .map(|(_, v)| v.clone());
        if offered.is_some_and(|p| p.split(',').any(|p| p.trim() == "realtime")) {
            resp.headers_mut()
                .insert("Sec-WebSocket-Protocol", "realtime".parse().unwrap());
        }
        let path = req.uri().to_string();
        seen.lock().unwrap().handshakes.push((path, headers));
        Ok(resp)
    };
    let Ok(mut ws) = tungstenite::accept_hdr(stream, callback) else {
        return;
    };
    let send = |ws: &mut WebSocket<S>, v: Value| ws.send(Message::text(v.to_string()));
    if send(
        &mut ws,
        json!({"type": "session.created", "event_id": "ev_1", "session": {"id": "sess_1"}}),
    )
    .is_err()
    {
        return;
    }
    loop {
        let msg = match ws.read() {
            Ok(m) => m,
            Err(_) => return,
        };
        let result = match msg {
            Message::Text(t) => {
                seen.lock().unwrap().texts.push(t.to_string());
                let v: Value = serde_json::from_str(t.as_str()).unwrap_or(Value::Null);
                match v["type"].as_str() {
                    Some("conversation.item.create") => send(
                        &mut ws,
                        json!({"type": "conversation.item.created", "event_id": "ev_2", "item": v["item"]}),
                    ),
                    // `instructions: "call:<name>:<arguments>"`: the model calls a function.
                    Some("response.create") => match v["response"]["instructions"]
                        .as_str()
                        .and_then(|i| i.strip_prefix("call:"))
                        .and_then(|c| c.split_once(':'))
                    {
                        Some((name, args)) => send(
                            &mut ws,
                            json!({"type": "response.output_item.done", "response_id": "resp_2",
                                "output_index": 0, "item": {"id": "fc_1", "type": "function_call",
                                "status": "completed", "call_id": "call_1", "name": name,
                                "arguments": args}}),
                        ),
                        None => respond(&mut ws, deltas, gap),
                    },
                    _ => send(&mut ws, json!({"type": "echo", "received": v})),
                }
            }
            Message::Binary(b) => ws.send(Message::Binary(b)),
            Message::Close(frame) => {
                seen.lock()
                    .unwrap()
                    .closes
                    .push(frame.map(|f| u16::from(f.code)));
                // tungstenite answers the close; reading on finishes the handshake.
                continue;
            }
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => Ok(()),
        };
        if result.is_err() {
            return;
        }
    }
}

fn respond<S: Read + Write>(
    ws: &mut WebSocket<S>,
    deltas: &[String],
    gap: Duration,
) -> tungstenite::Result<()> {
    for d in deltas {
        ws.send(Message::text(
            json!({"type": "response.text.delta", "response_id": "resp_1", "item_id": "item_1",
                "output_index": 0, "content_index": 0, "delta": d})
            .to_string(),
        ))?;
        std::thread::sleep(gap);
    }
    ws.send(Message::text(
        json!({"type": "response.text.done", "response_id": "resp_1", "item_id": "item_1",
            "output_index": 0, "content_index": 0, "text": deltas.concat()})
        .to_string(),
    ))?;
    ws.send(Message::text(
        json!({"type": "response.done", "response": {"id": "resp_1", "status": "completed",
            "usage": {"total_tokens": 30, "input_tokens": 20, "output_tokens": 10}}})
        .to_string(),
    ))
}
