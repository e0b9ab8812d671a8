//! Browser access (`gateway.cors`): a web page the gateway does not allow cannot make it
//! call a provider with its keys (a form-style post, a WebSocket), pages on this machine
//! and configured origins get their preflight answered and the CORS headers, and
//! requests without `Origin` (SDKs, curl) are untouched.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::{json, Value};

use crate::support::*;

/// One request written as given (with `Connection: close`); the status, the head's
/// fields (lower-case names) and the body.
fn exchange(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, Vec<(String, String)>, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() || method == "POST" {
        req.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap_or("")
        .split(' ')
        .nth(1)
        .unwrap_or("0")
        .parse()
        .unwrap();
    let fields = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (status, fields, body.to_string())
}

fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

const CHAT: &str = r#"{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}"#;

/// An OpenAI target holding kt's own key: what a hostile page would like to spend.
fn gateway_with_a_key(extra: &str) -> (MockUpstream, Gateway) {
    let up = MockUpstream::start(|_| {
        MockReply::json(
            200,
            json!({"id": "c", "object": "chat.completion", "created": 1, "model": "gpt-4o",
                   "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "ok"}}],
                   "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}),
        )
    });
    let yaml = format!(
        "pack: {{name: cors}}\nproviders:\n  targets:\n    - {{id: a, provider: openai, model: gpt-4o, base_url: '{}', secret_key_ref: {{env: CORS_KEY}}}}\npolicies:\n  chain: [audit-logger]\n{extra}",
        up.v1()
    );
    let gw = Gateway::start_with(Some(&yaml), &[], &[("CORS_KEY", "sk-kt-own-key")]);
    (up, gw)
}

#[test]
fn a_page_kt_does_not_allow_cannot_spend_its_keys() {
    let (up, gw) = gateway_with_a_key("");
    // A form-style cross-site post (no preflight): refused before anything runs.
    let (status, fields, body) = exchange(
        &gw.addr,
        "POST",
        "/v1/chat/completions",
        &[
            ("Origin", "https://evil.example"),
            ("Content-Type", "text/plain"),
        ],
        CHAT,
    );
    assert_eq!(status, 403, "{body}");
    let err: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(err["error"]["code"], "origin_not_allowed", "{err}");
    assert!(err["error"]["message"]
        .as_str()
        .unwrap()
        .contains("`https://evil.example`"));
    assert!(err["error"]["message"]
        .as_str()
        .unwrap()
        .contains("gateway.cors.allowed_origins"));
    assert_eq!(field(&fields, "x-should-retry"), Some("false"));
    assert_eq!(field(&fields, "access-control-allow-origin"), None);
    // Its preflight gets no CORS headers, so a browser stops there.
    let (status, fields, _) = exchange(
        &gw.addr,
        "OPTIONS",
        "/v1/chat/completions",
        &[
            ("Origin", "https://evil.example"),
            ("Access-Control-Request-Method", "POST"),
        ],
        "",
    );
    assert_eq!(status, 403);
    assert_eq!(field(&fields, "access-control-allow-origin"), None);
    // A WebSocket handshake (browsers send Origin, CORS does not apply): no upgrade.
    let (status, _, body) = exchange(
        &gw.addr,
        "GET",
        "/v1/realtime?model=gpt-4o",
        &[
            ("Origin", "https://evil.example"),
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Version", "13"),
            ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ],
        "",
    );
    assert_eq!(status, 403, "{body}");
    // DNS rebinding: the page's own name resolved to 127.0.0.1 is still its origin.
    let (status, _, _) = exchange(
        &gw.addr,
        "POST",
        "/v1/embeddings",
        &[
            (
                "Origin",
                &format!(
                    "http://rebind.example:{}",
                    gw.addr.rsplit(':').next().unwrap()
                ),
            ),
            ("Content-Type", "application/json"),
        ],
        r#"{"model":"gpt-4o","input":"x"}"#,
    );
    assert_eq!(status, 403);
    // The provider never heard of any of it; the model requests are on record.
    assert_eq!(up.count(), 0);
    let events = gw.events(3);
    let refused: Vec<&Value> = events.iter().filter(|e| e["status"] == 403).collect();
    assert_eq!(refused.len(), 3, "{events:?}");
    assert!(refused.iter().any(|e| e["kind"] == "realtime"));
    assert!(refused
        .iter()
        .all(|e| e["error"].as_str().unwrap().contains("not allowed")));
    // Without Origin (an SDK, curl) nothing changed.
    let (status, fields, _) = exchange(
        &gw.addr,
        "POST",
        "/v1/chat/completions",
        &[("Content-Type", "application/json")],
        CHAT,
    );
    assert_eq!(status, 200);
    assert_eq!(field(&fields, "access-control-allow-origin"), None);
    assert_eq!(up.count(), 1);
}

#[test]
fn pages_on_this_machine_are_served_with_cors_headers() {
    let (_up, gw) = gateway_with_a_key("");
    let origin = "http://localhost:5173";
    let (status, fields, body) = exchange(
        &gw.addr,
        "OPTIONS",
        "/v1/chat/completions",
        &[
            ("Origin", origin),
            ("Access-Control-Request-Method", "POST"),
            (
                "Access-Control-Request-Headers",
                "authorization, content-type, x-stainless-os",
            ),
        ],
        "",
    );
    assert_eq!(status, 204, "{body}");
    assert!(body.is_empty());
    assert_eq!(field(&fields, "content-length"), None);
    assert_eq!(field(&fields, "access-control-allow-origin"), Some(origin));
    assert_eq!(
        field(&fields, "access-control-allow-methods"),
        Some("GET, POST, OPTIONS")
    );
    assert_eq!(
        field(&fields, "access-control-allow-headers"),
        Some("authorization, content-type, x-stainless-os")
    );
    assert_eq!(field(&fields, "access-control-max-age"), Some("600"));
    // The request itself: served, readable by the page, its request id exposed.
    let (status, fields, body) = exchange(
        &gw.addr,
        "POST",
        "/v1/chat/completions",
        &[
            ("Origin", origin),
            ("Content-Type", "application/json"),
            ("Authorization", "Bearer sk-page"),
        ],
        CHAT,
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(field(&fields, "access-control-allow-origin"), Some(origin));
    assert!(field(&fields, "access-control-expose-headers")
        .unwrap()
        .contains("x-request-id"));
    assert_eq!(field(&fields, "vary"), Some("Origin"));
    // A stream's head carries them too, and so does an error.
    let stream = CHAT.replacen('{', r#"{"stream":true,"#, 1);
    let (status, fields, body) = exchange(
        &gw.addr,
        "POST",
        "/v1/chat/completions",
        &[
            ("Origin", "http://127.0.0.1:8080"),
            ("Content-Type", "application/json"),
        ],
        &stream,
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        field(&fields, "content-type"),
        Some("text/event-stream; charset=utf-8")
    );
    assert_eq!(
        field(&fields, "access-control-allow-origin"),
        Some("http://127.0.0.1:8080")
    );
    let (status, fields, _) = exchange(
        &gw.addr,
        "POST",
        "/v1/chat/completions",
        &[("Origin", origin), ("Content-Type", "application/json")],
        r#"{"model":"nope","messages":[{"role":"user","content":"hi"}]}"#,
    );
    assert_eq!(status, 404);
    assert_eq!(field(&fields, "access-control-allow-origin"), Some(origin));
    // A preflight for a path kt does not serve.
    let (status, _, _) = exchange(
        &gw.addr,
        "OPTIONS",
        "/v1/nothing",
        &[
            ("Origin", origin),
            ("Access-Control-Request-Method", "POST"),
        ],
        "",
    );
    assert_eq!(status, 404);
}

#[test]
fn configured_origins_are_allowed_and_localhost_can_be_refused() {
    let (up, gw) = gateway_with_a_key(
        "gateway:\n  cors:\n    allowed_origins: ['https://app.example.com']\n    allow_localhost: false\n    max_age_seconds: 60\n",
    );
    let app = "https://app.example.com";
    // Chrome asks before a public page may call a private-network address.
    let (status, fields, _) = exchange(
        &gw.addr,
        "OPTIONS",
        "/v1/chat/completions",
        &[
            ("Origin", app),
            ("Access-Control-Request-Method", "POST"),
            ("Access-Control-Request-Private-Network", "true"),
        ],
        "",
    );
    assert_eq!(status, 204);
    assert_eq!(field(&fields, "access-control-allow-origin"), Some(app));
    assert_eq!(
        field(&fields, "access-control-allow-private-network"),
        Some("true")
    );
    assert_eq!(field(&fields, "access-control-max-age"), Some("60"));
    let (status, fields, _) = exchange(
        &gw.addr,
        "POST",
        "/v1/chat/completions",
        &[("Origin", app), ("Content-Type", "application/json")],
        CHAT,
    );
    assert_eq!(status, 200);
    assert_eq!(field(&fields, "access-control-allow-origin"), Some(app));
    let (status, _, _) = exchange(
        &gw.addr,
        "POST",
        "/v1/chat/completions",
        &[
            ("Origin", "http://localhost:5173"),
            ("Content-Type", "application/json"),
        ],
        CHAT,
    );
    assert_eq!(status, 403);
    assert_eq!(up.count(), 1);
}

#[test]
fn lint_names_an_allowed_origin_that_is_not_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cors.yaml");
    std::fs::write(
        &path,
        "pack: {name: cors}\nproviders:\n  targets:\n    - {id: m, provider: mock, model: gpt-4o}\npolicies:\n  chain: [audit-logger]\ngateway:\n  cors:\n    allowed_origins: ['https://app.example.com/chat', 'app.example.com']\n",
    )
    .unwrap();
    let mut cmd = kt(dir.path());
    cmd.args(["policy", "lint", "--file"]).arg(&path);
    let out = run(cmd, None, Duration::from_secs(30));
    assert_eq!(out.status.code(), Some(2), "{}", out.stdout);
    assert!(out.stdout.contains("error[E010]"), "{}", out.stdout);
    assert!(
        out.stdout.contains("gateway.cors.allowed_origins[0]"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("drop `/chat`"), "{}", out.stdout);
    assert!(
        out.stdout.contains("gateway.cors.allowed_origins[1]"),
        "{}",
        out.stdout
    );
}
