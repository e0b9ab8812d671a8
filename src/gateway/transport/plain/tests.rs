//! kt's own client against loopback servers that answer with exact bytes.
use super::super::UpstreamResponse;
use super::*;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

#[test]
fn urls() {
    let u = parse_url("http://127.0.0.1:8080/v1/chat/completions?x=1#f").unwrap();
    assert_eq!(
        (u.authority, u.host, u.port, u.target),
        (
            "127.0.0.1:8080",
            "127.0.0.1",
            8080,
            "/v1/chat/completions?x=1"
        )
    );
    let u = parse_url("http://[::1]:9/x").unwrap();
    assert_eq!((u.host, u.port, u.authority), ("::1", 9, "[::1]:9"));
    let u = parse_url("http://[::1]/").unwrap();
    assert_eq!((u.host, u.port), ("::1", 80));
    let u = parse_url("http://model.internal").unwrap();
    assert_eq!((u.host, u.port, u.target), ("model.internal", 80, "/"));
    for bad in [
        "https://x/",
        "http:///x",
        "http://user:pw@host/",
        "http://h:notaport/",
        "http://:80/",
    ] {
        assert!(parse_url(bad).is_none(), "{bad}");
    }
}

fn up(headers: &[(&str, &str)]) -> UpstreamRequest {
    UpstreamRequest {
        method: "POST",
        url: "http://h:1/v1/x".into(),
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        body: b"{}".to_vec(),
    }
}

#[test]
fn request_head_and_body() {
    let r = up(&[("content-type", "application/json"), ("User-Agent", "mine")]);
    let url = parse_url(&r.url).unwrap();
    let bytes = request_bytes(&r, &url).unwrap();
    assert_eq!(
        String::from_utf8(bytes).unwrap(),
        "POST /v1/x HTTP/1.1\r\nhost: h:1\r\ncontent-type: application/json\r\n\
         User-Agent: mine\r\naccept: */*\r\naccept-encoding: identity\r\n\
         content-length: 2\r\n\r\n{}"
    );
    for bad in [("x-a", "v\r\nx-b: 1"), ("bad name", "v"), ("", "v")] {
        let r = up(&[bad]);
        assert_eq!(request_bytes(&r, &url).unwrap_err().status, 502, "{bad:?}");
    }
}

/// A loopback server answering requests with `answers` in turn (raw bytes; after an
/// answer marked `true` it closes that connection; an empty answer closes it without
/// answering); returns its address and a count of the connections it accepted.
fn server(answers: Vec<(&'static [u8], bool)>) -> (String, Arc<AtomicUsize>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let conns = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&conns);
    std::thread::spawn(move || {
        let answers = Arc::new(answers);
        let next = Arc::new(AtomicUsize::new(0));
        for mut s in l.incoming().flatten() {
            counted.fetch_add(1, SeqCst);
            let (answers, next) = (Arc::clone(&answers), Arc::clone(&next));
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 65536];
                let mut have = Vec::new();
                loop {
                    // One request: its head, then Content-Length bytes.
                    let n = match s.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    have.extend_from_slice(&buf[..n]);
                    let Some(end) = have.windows(4).position(|w| w == b"\r\n\r\n") else {
                        continue;
                    };
                    let head = String::from_utf8_lossy(&have[..end]).to_lowercase();
                    let len: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length: "))
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0);
                    if have.len() < end + 4 + len {
                        continue;
                    }
                    have.drain(..end + 4 + len);
                    let Some(&(answer, close)) = answers.get(next.fetch_add(1, SeqCst)) else {
                        return;
                    };
                    if s.write_all(answer).is_err() || close || answer.is_empty() {
                        return;
                    }
                }
            });
        }
    });
    (addr, conns)
}

fn request_to(
    pool: &Arc<Pool>,
    addr: &str,
    timeout: Duration,
) -> Result<UpstreamResponse, ApiError> {
    let mut r = up(&[]);
    r.url = format!("http://{addr}/v1/x");
    send(
        pool,
        &CachingResolver::default(),
        &r,
        &parse_url(&r.url).unwrap(),
        Timeouts::Call(timeout),
    )
}

fn call(pool: &Arc<Pool>, addr: &str) -> Result<(u16, Vec<u8>), ApiError> {
    let resp = request_to(pool, addr, Duration::from_secs(5))?;
    let status = resp.status;
    Ok((status, resp.read_all()?))
}

#[test]
fn framings_and_connection_reuse() {
    let (addr, conns) = server(vec![
        (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", false),
        (
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
              3;x=y\r\nabc\r\n1\r\nd\r\n0\r\nTrailer: t\r\n\r\n",
            false,
        ),
        (b"HTTP/1.1 204 No Content\r\n\r\n", false),
        (
            b"HTTP/1.1 500 Oops\r\nContent-Length: 2\r\nConnection: close\r\n\r\nno",
            false,
        ),
    ]);
    let pool = Arc::new(Pool::default());
    assert_eq!(call(&pool, &addr).unwrap(), (200, b"hello".to_vec()));
    assert_eq!(pool.idle(&addr), 1);
    assert_eq!(call(&pool, &addr).unwrap(), (200, b"abcd".to_vec()));
    assert_eq!(call(&pool, &addr).unwrap(), (204, Vec::new()));
    assert_eq!(call(&pool, &addr).unwrap(), (500, b"no".to_vec()));
    // Four answers on one connection; the last said close: not pooled.
    assert_eq!(conns.load(SeqCst), 1);
    assert_eq!(pool.idle(&addr), 0);
}

#[test]
fn headers_are_read_from_the_head_on_demand() {
    let (addr, _) = server(vec![(
        b"HTTP/1.1 429 Too Many\r\nRetry-After: 7\r\nX-Multi: a\r\nx-multi: b\r\n\
          X-Bin: \xff\r\nContent-Length: 0\r\n\r\n",
        false,
    )]);
    let pool = Arc::new(Pool::default());
    let resp = request_to(&pool, &addr, Duration::from_secs(5)).unwrap();
    assert_eq!(resp.status, 429);
    assert_eq!(resp.header("retry-after"), Some("7"));
    assert_eq!(resp.header("RETRY-AFTER"), Some("7"));
    assert_eq!(resp.header("x-multi"), Some("a"));
    assert_eq!(resp.header("x-bin"), None, "not text");
    assert_eq!(resp.header("missing"), None);
    assert_eq!(
        resp.header_pairs(),
        [
            ("retry-after", "7"),
            ("x-multi", "a"),
            ("x-multi", "b"),
            ("content-length", "0")
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()))
    );
    // An empty body ended at once: the connection went back to the pool, and the
    // headers were kept before it did.
    assert_eq!(pool.idle(&addr), 1);
}

#[test]
fn a_pooled_connection_the_upstream_closed_is_not_used() {
    let (addr, conns) = server(vec![
        (b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na", true),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nb", false),
    ]);
    let pool = Arc::new(Pool::default());
    assert_eq!(call(&pool, &addr).unwrap(), (200, b"a".to_vec()));
    assert_eq!(pool.idle(&addr), 1);
    // Let the upstream's FIN arrive: the probe on checkout then sees it.
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(call(&pool, &addr).unwrap(), (200, b"b".to_vec()));
    assert_eq!(conns.load(SeqCst), 2);
}

#[test]
fn bodies_to_the_close_short_bodies_and_stalls() {
    let pool = Arc::new(Pool::default());
    // HTTP/1.0 without a length: the body runs to the close; not pooled.
    let (addr, _) = server(vec![(b"HTTP/1.0 200 OK\r\n\r\nall of it", true)]);
    assert_eq!(call(&pool, &addr).unwrap(), (200, b"all of it".to_vec()));
    assert_eq!(pool.idle(&addr), 0);
    // Closed before the announced length: an error, not a short body.
    let (addr, _) = server(vec![(
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
        true,
    )]);
    let e = call(&pool, &addr).unwrap_err();
    assert_eq!(e.code_str(), Some("upstream_unreachable"));
    // Nothing more comes: the call's deadline ends the read with a 504.
    let (addr, _) = server(vec![(
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
        false,
    )]);
    let resp = request_to(&pool, &addr, Duration::from_millis(300)).unwrap();
    let e = resp.read_all().unwrap_err();
    assert_eq!((e.status, e.code_str()), (504, Some("upstream_timeout")));
    // No head at all within the deadline.
    let (addr, _) = server(vec![(b"", false)]);
    let Err(e) = request_to(&pool, &addr, Duration::from_millis(300)) else {
        panic!("an answer without a head");
    };
    assert!(matches!(e.status, 502 | 504), "{}", e.status);
}

/// Every byte of the answer in its own TCP segment: the head, chunk-size lines,
/// chunk data and trailers all arrive split at every possible point.
#[test]
fn answers_dribbled_a_byte_at_a_time() {
    let answer: &[u8] = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\
        Content-Type: text/event-stream\r\n\r\n\
        7\r\ndata: a\r\n10;ext\r\n\n\ndata: bcdefghi\r\n0\r\nx-t: 1\r\n\r\n";
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        s.set_nodelay(true).unwrap();
        let mut buf = [0u8; 4096];
        let mut have = Vec::new();
        while !have.windows(6).any(|w| w == b"\r\n\r\n{}") {
            let n = s.read(&mut buf).unwrap();
            assert!(n > 0);
            have.extend_from_slice(&buf[..n]);
        }
        for b in answer {
            s.write_all(std::slice::from_ref(b)).unwrap();
            std::thread::sleep(Duration::from_micros(200));
        }
        // Keep the connection open: the body must end by its framing, not the close.
        std::thread::sleep(Duration::from_secs(2));
    });
    let pool = Arc::new(Pool::default());
    let mut r = up(&[]);
    r.url = format!("http://{addr}/v1/x");
    let resp = send(
        &pool,
        &CachingResolver::default(),
        &r,
        &parse_url(&r.url).unwrap(),
        Timeouts::Stream(Duration::from_secs(5)),
    )
    .unwrap();
    assert_eq!(resp.header("content-type"), Some("text/event-stream"));
    let mut body = Vec::new();
    resp.into_reader().read_to_end(&mut body).unwrap();
    assert_eq!(body, b"data: a\n\ndata: bcdefghi");
    assert_eq!(pool.idle(&addr), 1, "read to its end: pooled");
}

#[test]
fn gzip_bodies_are_decoded() {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(b"{\"ok\":true}").unwrap();
    let gz = enc.finish().unwrap();
    let mut answer = format!(
        "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\n\r\n",
        gz.len()
    )
    .into_bytes();
    answer.extend_from_slice(&gz);
    let (addr, _) = server(vec![(Box::leak(answer.into_boxed_slice()), false)]);
    let pool = Arc::new(Pool::default());
    let resp = request_to(&pool, &addr, Duration::from_secs(5)).unwrap();
    assert_eq!(resp.header("content-encoding"), None);
    assert_eq!(resp.header("content-length"), None);
    assert!(resp.header_pairs().is_empty());
    assert_eq!(resp.read_all().unwrap(), b"{\"ok\":true}");
    assert_eq!(pool.idle(&addr), 1);
}

#[test]
fn bad_heads_are_bad_gateway() {
    let (addr, _) = server(vec![(b"NOT HTTP\r\n\r\n", false)]);
    let pool = Arc::new(Pool::default());
    let e = call(&pool, &addr).unwrap_err();
    assert_eq!(
        (e.status, e.code_str()),
        (502, Some("bad_upstream_response"))
    );
    let (addr, _) = server(vec![(
        b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
        false,
    )]);
    let e = call(&pool, &addr).unwrap_err();
    assert_eq!(e.code_str(), Some("bad_upstream_response"));
    // Nothing listening: unreachable.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    drop(l);
    let e = call(&pool, &addr).unwrap_err();
    assert_eq!(e.code_str(), Some("upstream_unreachable"));
}
