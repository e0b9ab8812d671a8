use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use super::*;

/// A server on 127.0.0.1:0 whose handler answers by path:
/// `/echo` the method, url and body; `/panic` panics; `/stream` and `/stream-cut` take the
/// raw writer (with and without ending the chunked body).
fn server() -> (Arc<Server>, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener
        .set_nonblocking(false)
        .and_then(|()| {
            socket2::SockRef::from(&listener).set_read_timeout(Some(Duration::from_secs(2)))
        })
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let handler: Box<Handler> = Box::new(|mut req: Request| match req.url() {
        "/panic" => panic!("handler bug"),
        "/stream" | "/stream-cut" => {
            let cut = req.url() == "/stream-cut";
            let mut w = req.into_writer();
            w.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
                .unwrap();
            w.write_all(b"5\r\nhello\r\n").unwrap();
            if !cut {
                w.write_all(b"0\r\n\r\n").unwrap();
            }
        }
        _ => {
            let mut body = Vec::new();
            let read = req.as_reader().read_to_end(&mut body);
            let text = format!(
                "{} {} {} {}",
                req.method().as_str(),
                req.url(),
                String::from_utf8_lossy(&body),
                read.is_ok()
            );
            req.respond(200, &[("X-Test".into(), "1".into())], text.as_bytes())
                .unwrap();
        }
    });
    let s = Server::new(2, 64, handler);
    s.start(listener).unwrap();
    (s, addr)
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s
}

/// Reads one response with a `Content-Length` body; returns (head, body).
fn response(s: &mut TcpStream) -> (String, String) {
    let mut data = Vec::new();
    let mut byte = [0u8; 1];
    while !data.ends_with(b"\r\n\r\n") {
        assert_eq!(s.read(&mut byte).unwrap(), 1, "closed mid-head: {data:?}");
        data.push(byte[0]);
    }
    let head = String::from_utf8(data).unwrap();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .map_or(0, |v| v.trim().parse().unwrap());
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).unwrap();
    (head, String::from_utf8(body).unwrap())
}

fn is_closed(s: &mut TcpStream) -> bool {
    let mut buf = [0u8; 16];
    matches!(s.read(&mut buf), Ok(0) | Err(_))
}

#[test]
fn keep_alive_and_pipelined_requests_are_answered_in_order() {
    let (_s, addr) = server();
    let mut c = connect(addr);
    c.write_all(b"POST /echo?a=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc")
        .unwrap();
    let (head, body) = response(&mut c);
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(
        head.contains("\r\nDate: ") && head.contains("\r\nX-Test: 1\r\n"),
        "{head}"
    );
    assert_eq!(body, "POST /echo?a=1 abc true");
    // Two pipelined requests in one write, the second with leading empty lines.
    c.write_all(
        b"GET /echo HTTP/1.1\r\nHost: x\r\n\r\n\r\nPOST /echo HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi",
    )
    .unwrap();
    assert_eq!(response(&mut c).1, "GET /echo  true");
    assert_eq!(response(&mut c).1, "POST /echo hi true");
}

#[test]
fn an_unread_body_is_drained_before_the_next_request() {
    let (_s, addr) = server();
    let mut c = connect(addr);
    // `/stream` never reads its body; the connection stays in step.
    c.write_all(b"POST /stream HTTP/1.1\r\nContent-Length: 4\r\n\r\nbody")
        .unwrap();
    let mut head = [0u8; 64];
    let mut got = Vec::new();
    while !got.ends_with(b"0\r\n\r\n") {
        let n = c.read(&mut head).unwrap();
        assert!(n > 0);
        got.extend_from_slice(&head[..n]);
    }
    c.write_all(b"GET /echo HTTP/1.1\r\n\r\n").unwrap();
    assert_eq!(response(&mut c).1, "GET /echo  true");
}

#[test]
fn chunked_bodies_and_expect_continue() {
    let (_s, addr) = server();
    let mut c = connect(addr);
    c.write_all(
        b"POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n",
    )
    .unwrap();
    assert_eq!(response(&mut c).1, "POST /echo abcde true");
    c.write_all(b"POST /echo HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n")
        .unwrap();
    let mut buf = [0u8; 25];
    c.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"HTTP/1.1 100 Continue\r\n\r\n");
    c.write_all(b"ok").unwrap();
    assert_eq!(response(&mut c).1, "POST /echo ok true");
}

#[test]
fn head_and_http_1_0() {
    let (_s, addr) = server();
    let mut c = connect(addr);
    c.write_all(b"HEAD /echo HTTP/1.1\r\n\r\nGET /echo HTTP/1.1\r\n\r\n")
        .unwrap();
    let mut data = Vec::new();
    let mut byte = [0u8; 1];
    while !data.ends_with(b"\r\n\r\n") {
        c.read_exact(&mut byte).unwrap();
        data.push(byte[0]);
    }
    let head = String::from_utf8(data).unwrap();
    assert!(head.contains("Content-Length: 16\r\n"), "{head}");
    // No body followed the HEAD answer: the next bytes are the GET's answer.
    assert_eq!(response(&mut c).1, "GET /echo  true");

    let mut c = connect(addr);
    c.write_all(b"GET /echo HTTP/1.0\r\n\r\n").unwrap();
    let (head, _) = response(&mut c);
    assert!(head.starts_with("HTTP/1.0 200 OK\r\n"), "{head}");
    assert!(head.contains("Connection: close\r\n"), "{head}");
    assert!(is_closed(&mut c));
}

#[test]
fn bad_heads_get_their_status_and_the_connection_closes() {
    let (_s, addr) = server();
    let mut big = b"GET /echo HTTP/1.1\r\nX-Big: ".to_vec();
    big.extend(std::iter::repeat_n(b'a', MAX_HEAD + 10));
    big.extend_from_slice(b"\r\n\r\n");
    let mut many = b"GET /echo HTTP/1.1\r\n".to_vec();
    for i in 0..HEADER_SLOTS + 1 {
        many.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
    }
    many.extend_from_slice(b"\r\n");
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (big, "431"),
        (many, "431"),
        (b"GET / HTTP/9.9\r\n\r\n".to_vec(), "505"),
        (b"\x16\x03\x01\x02\x00\x01\r\n\r\n".to_vec(), "400"),
        (
            b"POST /echo HTTP/1.1\r\nContent-Length: 12abc\r\n\r\n".to_vec(),
            "400",
        ),
        (
            b"POST /echo HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n".to_vec(),
            "400",
        ),
        (
            b"POST /echo HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n".to_vec(),
            "501",
        ),
        (
            b"POST /echo HTTP/1.1\r\nExpect: magic\r\n\r\n".to_vec(),
            "417",
        ),
    ];
    for (bytes, status) in cases {
        let mut c = connect(addr);
        // The server may answer and close before reading everything.
        let _ = c.write_all(&bytes);
        let (head, body) = response(&mut c);
        assert!(
            head.starts_with(&format!("HTTP/1.1 {status} ")),
            "{status}: {head}"
        );
        assert!(body.contains("\"error\""), "{body}");
        assert!(is_closed(&mut c), "{status}: still open");
    }
}

#[test]
fn a_panicking_handler_answers_500_and_the_server_lives_on() {
    let (s, addr) = server();
    let mut c = connect(addr);
    c.write_all(b"GET /panic HTTP/1.1\r\n\r\n").unwrap();
    let (head, body) = response(&mut c);
    assert!(head.starts_with("HTTP/1.1 500 "), "{head}");
    assert!(body.contains("server_error"), "{body}");
    let mut c = connect(addr);
    c.write_all(b"GET /echo HTTP/1.1\r\n\r\n").unwrap();
    assert_eq!(response(&mut c).1, "GET /echo  true");
    // The handler returns just after its answer left.
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    while s.busy() > 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(s.busy(), 0);
}

#[test]
fn a_raw_stream_keeps_the_connection_only_when_it_ended_its_body() {
    let (_s, addr) = server();
    let mut c = connect(addr);
    c.write_all(b"GET /stream HTTP/1.1\r\n\r\n").unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 64];
    while !got.ends_with(b"0\r\n\r\n") {
        let n = c.read(&mut buf).unwrap();
        assert!(n > 0);
        got.extend_from_slice(&buf[..n]);
    }
    c.write_all(b"GET /echo HTTP/1.1\r\n\r\n").unwrap();
    assert_eq!(response(&mut c).1, "GET /echo  true");

    let mut c = connect(addr);
    c.write_all(b"GET /stream-cut HTTP/1.1\r\n\r\n").unwrap();
    let mut all = Vec::new();
    c.read_to_end(&mut all).unwrap();
    assert!(all.ends_with(b"5\r\nhello\r\n"), "{all:?}");
}

#[test]
fn after_stop_requests_are_refused_with_503() {
    let (s, addr) = server();
    let mut c = connect(addr);
    c.write_all(b"GET /echo HTTP/1.1\r\n\r\n").unwrap();
    assert_eq!(response(&mut c).1, "GET /echo  true");
    // Let the connection's thread get back to waiting for the next request (a connection
    // that finishes a request after the stop is closed instead).
    std::thread::sleep(Duration::from_millis(200));
    s.stop(addr);
    c.write_all(b"GET /echo HTTP/1.1\r\n\r\n").unwrap();
    let (head, _) = response(&mut c);
    assert!(head.starts_with("HTTP/1.1 503 "), "{head}");
}

#[test]
fn head_end_is_found_across_line_endings() {
    assert_eq!(find_head_end(b"GET / HTTP/1.1\r\n\r\nrest"), Some(18));
    assert_eq!(find_head_end(b"GET / HTTP/1.1\n\nrest"), Some(16));
    assert_eq!(find_head_end(b"GET / HTTP/1.1\r\nHost: x\r\n"), None);
}

#[test]
fn headers_keep_their_fields_in_order() {
    let mut h = Headers::with_capacity(3, 16);
    for (name, value) in [("Host", "a"), ("X-Empty", ""), ("host", "b, c")] {
        h.push(name, value);
    }
    let fields: Vec<(&str, &str)> = h.iter().map(|f| (f.name, f.value)).collect();
    assert_eq!(fields, [("Host", "a"), ("X-Empty", ""), ("host", "b, c")]);
    assert_eq!(h.len(), 3);
    assert!(Headers::default().iter().next().is_none());
}
