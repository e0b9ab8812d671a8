//! A scriptable in-process upstream on 127.0.0.1:0: it records what it
//! receives and answers as the test says — JSON, SSE with delays, errors, stalls, or a
//! dropped connection.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A request the mock received.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// How the mock answers.
#[derive(Debug, Clone)]
pub enum MockReply {
    /// Status, body, extra headers.
    Json(u16, String, Vec<(String, String)>),
    /// Raw body with a content type.
    Raw(u16, String, String),
    /// SSE: each string is one event's full text (e.g. `data: {...}\n\n`), written and
    /// flushed `delay` apart. `close_early` drops the connection after the events without
    /// ending the chunked body properly.
    Sse {
        events: Vec<String>,
        delay: Duration,
        close_early: bool,
    },
    /// A binary streamed body (e.g. an AWS event stream): each piece is written and flushed
    /// as one HTTP chunk, `delay` apart, with extra headers.
    Bytes {
        status: u16,
        content_type: String,
        headers: Vec<(String, String)>,
        pieces: Vec<Vec<u8>>,
        delay: Duration,
    },
    /// Wait, then answer.
    Delay(Duration, Box<MockReply>),
    /// Close the connection without answering.
    Drop,
    /// Answer, then close the connection without having said so (like a server whose
    /// keep-alive timer ran out between two requests).
    CloseAfter(Box<MockReply>),
    /// Answer, then write bytes nobody asked for on the kept-alive connection.
    StrayAfter(Box<MockReply>, Vec<u8>),
}

impl MockReply {
    pub fn json(status: u16, body: serde_json::Value) -> MockReply {
        MockReply::Json(status, body.to_string(), Vec::new())
    }

    /// An OpenAI SSE stream from JSON chunks (adds `data: [DONE]`).
    pub fn openai_sse(chunks: &[serde_json::Value], delay: Duration) -> MockReply {
        let mut events: Vec<String> = chunks.iter().map(|c| format!("data: {c}\n\n")).collect();
        events.push("data: [DONE]\n\n".to_string());
        MockReply::Sse {
            events,
            delay,
            close_early: false,
        }
    }
}

type Handler = dyn Fn(&Received) -> MockReply + Send + Sync;

/// Built on a plain `TcpListener` (not tiny_http) so a test can close, stall or truncate a
/// connection exactly as a failing provider would.
pub struct MockUpstream {
    pub url: String,
    pub received: Arc<Mutex<Vec<Received>>>,
    /// Connections accepted so far (to check keep-alive reuse).
    pub connections: Arc<std::sync::atomic::AtomicUsize>,
}

impl MockUpstream {
    pub fn start(handler: impl Fn(&Received) -> MockReply + Send + Sync + 'static) -> MockUpstream {
        MockUpstream::serve_on(None, handler)
    }

    /// The same over TLS: `https://localhost:PORT`, with the test certificate of
    /// testdata/tls (trusted by kt through `SSL_CERT_FILE=`[`test_ca_file`]).
    pub fn start_tls(
        handler: impl Fn(&Received) -> MockReply + Send + Sync + 'static,
    ) -> MockUpstream {
        MockUpstream::serve_on(Some(tls_server_config()), handler)
    }

    fn serve_on(
        tls: Option<Arc<rustls::ServerConfig>>,
        handler: impl Fn(&Received) -> MockReply + Send + Sync + 'static,
    ) -> MockUpstream {
        let scheme_host = if tls.is_some() {
            "https://localhost"
        } else {
            "http://127.0.0.1"
        };
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let received = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let handler: Arc<Handler> = Arc::new(handler);
        let rec2 = received.clone();
        let conns = connections.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { break };
                conns.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let handler = handler.clone();
                let received = rec2.clone();
                let tls = tls.clone();
                std::thread::spawn(move || {
                    stream.set_nodelay(true).ok();
                    // Kept to shut the socket down under a TLS stream too.
                    let sock = stream.try_clone().unwrap();
                    match tls {
                        Some(config) => {
                            let conn = rustls::ServerConnection::new(config).unwrap();
                            let tls_stream = rustls::StreamOwned::new(conn, stream);
                            serve(tls_stream, &sock, &*handler, &received);
                        }
                        None => serve(stream, &sock, &*handler, &received),
                    }
                });
            }
        });
        MockUpstream {
            url: format!("{scheme_host}:{port}"),
            received,
            connections,
        }
    }

    /// `http://127.0.0.1:PORT/v1`
    pub fn v1(&self) -> String {
        format!("{}/v1", self.url)
    }

    pub fn requests(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    pub fn count(&self) -> usize {
        self.received.lock().unwrap().len()
    }
}

fn read_request(r: &mut impl BufRead) -> Option<Received> {
    let mut line = String::new();
    if r.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let path = parts.next()?.to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).ok()? == 0 {
            return None;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    let len: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    r.read_exact(&mut body).ok()?;
    Some(Received {
        method,
        path,
        headers,
        body,
    })
}

/// Answers the requests of one connection (`stream`: the socket `sock`, or TLS over it).
fn serve(
    stream: impl Read + Write,
    sock: &TcpStream,
    handler: &Handler,
    received: &Mutex<Vec<Received>>,
) {
    let mut reader = BufReader::new(stream);
    while let Some(req) = read_request(&mut reader) {
        received.lock().unwrap().push(req.clone());
        let reply = handler(&req);
        if !answer(reader.get_mut(), sock, reply) || reader.get_mut().flush().is_err() {
            return;
        }
    }
}

/// Writes the reply; `false` when the connection must be closed.
fn answer(w: &mut impl Write, sock: &TcpStream, reply: MockReply) -> bool {
    match reply {
        MockReply::CloseAfter(reply) => {
            answer(w, sock, *reply);
            sock.shutdown(std::net::Shutdown::Both).ok();
            false
        }
        MockReply::StrayAfter(reply, bytes) => {
            answer(w, sock, *reply) && w.write_all(&bytes).and_then(|_| w.flush()).is_ok()
        }
        MockReply::Json(status, body, headers) => {
            let mut head = format!(
                "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
                body.len()
            );
            for (k, v) in headers {
                head.push_str(&format!("{k}: {v}\r\n"));
            }
            head.push_str("\r\n");
            w.write_all(head.as_bytes()).is_ok() && w.write_all(body.as_bytes()).is_ok()
        }
        MockReply::Raw(status, ctype, body) => {
            let head = format!(
                "HTTP/1.1 {status} X\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n\r\n",
                body.len()
            );
            w.write_all(head.as_bytes()).is_ok() && w.write_all(body.as_bytes()).is_ok()
        }
        MockReply::Sse {
            events,
            delay,
            close_early,
        } => {
            let head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n";
            if w.write_all(head.as_bytes()).is_err() {
                return false;
            }
            for (i, e) in events.iter().enumerate() {
                if i > 0 && !delay.is_zero() {
                    std::thread::sleep(delay);
                }
                let frame = format!("{:x}\r\n{}\r\n", e.len(), e);
                if w.write_all(frame.as_bytes())
                    .and_then(|_| w.flush())
                    .is_err()
                {
                    return false;
                }
            }
            if close_early {
                w.flush().ok();
                sock.shutdown(std::net::Shutdown::Both).ok();
                return false;
            }
            w.write_all(b"0\r\n\r\n").is_ok()
        }
        MockReply::Bytes {
            status,
            content_type,
            headers,
            pieces,
            delay,
        } => {
            let mut head = format!(
                "HTTP/1.1 {status} X\r\nContent-Type: {content_type}\r\nTransfer-Encoding: chunked\r\n"
            );
            for (k, v) in headers {
                head.push_str(&format!("{k}: {v}\r\n"));
            }
            head.push_str("\r\n");
            if w.write_all(head.as_bytes()).is_err() {
                return false;
            }
            for (i, piece) in pieces.iter().filter(|p| !p.is_empty()).enumerate() {
                if i > 0 && !delay.is_zero() {
                    std::thread::sleep(delay);
                }
                let ok = w
                    .write_all(format!("{:x}\r\n", piece.len()).as_bytes())
                    .and_then(|_| w.write_all(piece))
                    .and_then(|_| w.write_all(b"\r\n"))
                    .and_then(|_| w.flush());
                if ok.is_err() {
                    return false;
                }
            }
            w.write_all(b"0\r\n\r\n").is_ok()
        }
        MockReply::Delay(d, inner) => {
            std::thread::sleep(d);
            answer(w, sock, *inner)
        }
        MockReply::Drop => {
            sock.shutdown(std::net::Shutdown::Both).ok();
            false
        }
    }
}

fn tls_file(name: &str) -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/tls")
        .join(name)
}

/// The test CA of testdata/tls, for `SSL_CERT_FILE`.
pub fn test_ca_file() -> std::path::PathBuf {
    tls_file("ca.pem")
}

/// A TLS server configuration with the test certificate for `localhost` (testdata/tls).
pub fn tls_server_config() -> Arc<rustls::ServerConfig> {
    let pem = |name| std::fs::read(tls_file(name)).unwrap();
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(&pem("localhost.pem")) {
        if let Ok(ureq::tls::PemItem::Certificate(c)) = item {
            certs.push(rustls::pki_types::CertificateDer::from(c.der().to_vec()));
        }
    }
    let key = ureq::tls::parse_pem(&pem("localhost.key"))
        .find_map(|item| match item {
            Ok(ureq::tls::PemItem::PrivateKey(k)) => Some(k.der().to_vec()),
            _ => None,
        })
        .unwrap();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(key.into());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    Arc::new(config)
}
