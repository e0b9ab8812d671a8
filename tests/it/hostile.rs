//! Hostile clients against the real gateway over raw TCP on loopback: after each attack the
//! gateway must still answer a normal request within 1 s.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::support::*;

/// A normal request answers 200 within 1 s of the attack (a crashed server process counts
/// only if the supervisor has a new one answering by then).
fn assert_alive(gw: &Gateway, after: &str) {
    let started = Instant::now();
    let mut reply = String::new();
    while started.elapsed() < Duration::from_secs(1) {
        let left = Duration::from_secs(1).saturating_sub(started.elapsed());
        reply = exchange(
            gw,
            b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            left.max(Duration::from_millis(10)),
        );
        if reply.starts_with("HTTP/1.1 200") {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(
        reply.starts_with("HTTP/1.1 200"),
        "after {after}: the gateway did not answer a normal request ({:?} in {:?}); stderr:\n{}",
        reply.lines().next(),
        started.elapsed(),
        gw.stderr()
    );
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "after {after}: too slow"
    );
}

fn connect(gw: &Gateway, timeout: Duration) -> TcpStream {
    let s = TcpStream::connect(&gw.addr).unwrap();
    s.set_read_timeout(Some(timeout)).unwrap();
    s.set_write_timeout(Some(timeout)).unwrap();
    s
}

/// Sends `bytes`, then reads what comes back until EOF or `timeout`.
fn exchange(gw: &Gateway, bytes: &[u8], timeout: Duration) -> String {
    let Ok(mut s) = TcpStream::connect(&gw.addr) else {
        return String::new();
    };
    s.set_read_timeout(Some(timeout)).unwrap();
    s.set_write_timeout(Some(timeout)).unwrap();
    let _ = s.write_all(bytes);
    read_some(&mut s, timeout)
}

fn read_some(s: &mut TcpStream, timeout: Duration) -> String {
    let deadline = Instant::now() + timeout;
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn status_of(reply: &str) -> Option<u16> {
    reply.split_whitespace().nth(1)?.parse().ok()
}

fn chat_head(content_length: &str) -> Vec<u8> {
    format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {content_length}\r\n\r\n"
    )
    .into_bytes()
}

#[test]
fn lying_and_huge_content_lengths_are_refused_without_crashing() {
    let gw = Gateway::start(None);
    for len in [
        "18446744073709551615", // u64::MAX
        "10000000000",          // 10 GB
        "1099511627776000",     // 1 PB
        "99999999999999999999999",
        "-1",
        "12abc",
    ] {
        let mut head = chat_head(len);
        head.extend_from_slice(b"{\"model\":");
        let reply = exchange(&gw, &head, Duration::from_secs(2));
        let status = status_of(&reply);
        assert!(
            matches!(status, Some(400 | 413) | None),
            "Content-Length {len}: {reply}"
        );
        assert_alive(&gw, &format!("Content-Length: {len}"));
    }
    // A body over the limit that really arrives: 413, and the gateway lives on.
    let mut s = connect(&gw, Duration::from_secs(2));
    let _ = s.write_all(&chat_head("20000000"));
    let _ = s.write_all(&vec![b' '; 1 << 20]);
    let reply = read_some(&mut s, Duration::from_secs(2));
    assert_eq!(status_of(&reply), Some(413), "{reply}");
    drop(s);
    assert_alive(&gw, "an oversized body");
}

#[test]
fn endless_chunked_body_is_cut_off() {
    let gw = Gateway::start(None);
    let mut s = connect(&gw, Duration::from_secs(5));
    s.write_all(
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
    )
    .unwrap();
    let chunk = format!("{:x}\r\n{}\r\n", 65536, " ".repeat(65536));
    let started = Instant::now();
    let mut refused = false;
    // Keep sending until the gateway stops reading (it must, well before 64 MB).
    for _ in 0..1024 {
        if s.write_all(chunk.as_bytes()).is_err() {
            refused = true;
            break;
        }
        if started.elapsed() > Duration::from_secs(10) {
            break;
        }
    }
    let reply = read_some(&mut s, Duration::from_secs(2));
    assert!(
        refused || status_of(&reply) == Some(413),
        "the gateway kept swallowing an endless body: {reply}"
    );
    drop(s);
    assert_alive(&gw, "an endless chunked body");
}

#[test]
fn header_floods_are_refused() {
    let gw = Gateway::start(None);
    // One enormous header.
    let mut big = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ".to_vec();
    big.extend(std::iter::repeat_n(b'a', 1 << 20));
    big.extend_from_slice(b"\r\n\r\n");
    let reply = exchange(&gw, &big, Duration::from_secs(3));
    assert!(
        matches!(status_of(&reply), Some(431 | 400) | None),
        "{reply}"
    );
    assert_alive(&gw, "a 1 MB header");
    // Many small headers.
    let mut many = b"GET /healthz HTTP/1.1\r\nHost: x\r\n".to_vec();
    for i in 0..20_000 {
        many.extend_from_slice(format!("X-H{i}: v\r\n").as_bytes());
    }
    many.extend_from_slice(b"\r\n");
    let reply = exchange(&gw, &many, Duration::from_secs(3));
    assert!(
        matches!(status_of(&reply), Some(431 | 400) | None),
        "{reply}"
    );
    assert_alive(&gw, "20 000 headers");
}

#[test]
fn slowloris_and_idle_connections_do_not_starve_normal_clients() {
    let gw = Gateway::start(None);
    let mut trickling = Vec::new();
    for _ in 0..50 {
        let mut s = connect(&gw, Duration::from_secs(1));
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            .unwrap();
        trickling.push(s);
    }
    let mut idle = Vec::new();
    for _ in 0..500 {
        idle.push(connect(&gw, Duration::from_secs(1)));
    }
    for round in 0..3 {
        for s in &mut trickling {
            let _ = s.write_all(format!("X-Slow-{round}: 1\r\n").as_bytes());
        }
        assert_alive(
            &gw,
            "slowloris clients trickling headers and 500 idle connections",
        );
    }
    drop(trickling);
    drop(idle);
    assert_alive(&gw, "closing the slow clients");
}

#[test]
fn garbage_bad_utf8_and_deep_json_get_clean_errors() {
    let gw = Gateway::start(None);
    let garbage: &[&[u8]] = &[
        b"\x00\x01\x02\xff\xfe\r\n\r\n",
        b"GET / HTTP/9.9\r\n\r\n",
        b"NONSENSE\r\n\r\nGET /healthz HTTP/1.1\r\n\r\n\x16\x03\x01\x00\xa5",
        b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n\xff\xff\xff\xff\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", // a TLS ClientHello
    ];
    for g in garbage {
        let _ = exchange(&gw, g, Duration::from_millis(500));
        assert_alive(&gw, &format!("garbage {:?}", String::from_utf8_lossy(g)));
    }
    // Invalid UTF-8 in a JSON body: a 400 in OpenAI's shape.
    let body =
        b"{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"\xff\xfe\"}]}";
    let mut req = chat_head(&body.len().to_string());
    req.extend_from_slice(body);
    let reply = exchange(&gw, &req, Duration::from_secs(2));
    assert_eq!(status_of(&reply), Some(400), "{reply}");
    assert!(reply.contains("\"error\""), "{reply}");
    assert_alive(&gw, "invalid UTF-8");
    // 100 000 nested arrays: a 400, not a stack overflow.
    let deep = "[".repeat(100_000);
    let mut req = chat_head(&deep.len().to_string());
    req.extend_from_slice(deep.as_bytes());
    let reply = exchange(&gw, &req, Duration::from_secs(2));
    assert_eq!(status_of(&reply), Some(400), "{reply}");
    assert_alive(&gw, "deeply nested JSON");
}

/// The server process's pid: the supervisor's only child.
fn server_pid(gw: &Gateway) -> u32 {
    let pid = gw.child.as_ref().unwrap().id();
    let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap();
    children.split_whitespace().next().unwrap().parse().unwrap()
}

#[test]
fn a_crashed_server_process_is_restarted_on_the_same_port() {
    let mut gw = Gateway::start(None);
    let first = server_pid(&gw);
    let killed = std::process::Command::new("kill")
        .args(["-ABRT", &first.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline && std::fs::metadata(format!("/proc/{first}")).is_ok() {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_alive(&gw, "the server process aborted");
    assert_ne!(server_pid(&gw), first);
    assert!(gw.stderr().contains("restarting it on"));
    // SIGTERM still reaches the new server and the whole gateway exits cleanly.
    assert!(gw.terminate(Duration::from_secs(10)).success());
}

#[test]
fn http_1_0_clients_get_answers_streaming_or_not() {
    let gw = Gateway::start(None);
    let reply = exchange(
        &gw,
        b"GET /healthz HTTP/1.0\r\n\r\n",
        Duration::from_secs(2),
    );
    assert_eq!(status_of(&reply), Some(200), "{reply}");
    for stream in [false, true] {
        let body = format!(
            "{{\"model\":\"gpt-4o\",\"stream\":{stream},\"messages\":[{{\"role\":\"user\",\"content\":\"hi\"}}]}}"
        );
        let mut req = format!(
            "POST /v1/chat/completions HTTP/1.0\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        req.extend_from_slice(body.as_bytes());
        // HTTP/1.0 has no chunked encoding: the reply ends when the connection closes.
        let reply = exchange(&gw, &req, Duration::from_secs(5));
        assert_eq!(status_of(&reply), Some(200), "stream={stream}: {reply}");
        if stream {
            assert!(reply.contains("[DONE]"), "{reply}");
            assert!(!reply.contains("Transfer-Encoding: chunked"), "{reply}");
        } else {
            assert!(reply.contains("chat.completion"), "{reply}");
        }
        assert_alive(&gw, &format!("an HTTP/1.0 client (stream={stream})"));
    }
}
