//! kt's HTTP/1.1 server (`kt::gateway::conn`): the chunked body decoder, and whole
//! connections fed arbitrary bytes.
//!
//! Properties: the decoder never yields more bytes than it was given and gives back
//! exactly the data of any valid chunked encoding, however the reads are sized; a
//! connection fed anything answers (if at all) with an HTTP/1.x status line, closes in
//! bounded time, and the server answers the next client.

use std::io::{BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use kt::gateway::conn::body::{Body, Chunk};
use kt::gateway::conn::{Handler, Request, Server};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

use crate::{harness, mutate};

const TARGET: &str = "http";

const DICT: &[&str] = &[
    "\r\n",
    "\r\n\r\n",
    "POST /echo HTTP/1.1\r\n",
    "GET /echo HTTP/1.0\r\n",
    "GET /stream HTTP/1.1\r\n",
    "Content-Length: ",
    "Transfer-Encoding: chunked\r\n",
    "Expect: 100-continue\r\n",
    "Connection: close\r\n",
    "0\r\n\r\n",
    "ffffffff\r\n",
    ";ext=",
    ": ",
];

/// Decodes `input` as a chunked body with reads of `buf` bytes.
fn decode(input: &[u8], buf: usize) -> std::io::Result<Vec<u8>> {
    let mut r = BufReader::with_capacity(7, input);
    let mut body = Body::Chunked(Chunk::Size);
    let mut out = Vec::new();
    let mut b = vec![0u8; buf.max(1)];
    loop {
        let n = body.read(&mut r, &mut b)?;
        if n == 0 {
            return Ok(out);
        }
        out.extend_from_slice(&b[..n]);
    }
}

/// `data` in chunks of the given sizes (the rest in one last chunk).
fn encode(data: &[u8], sizes: &[usize]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = data;
    for &s in sizes {
        if rest.is_empty() {
            break;
        }
        let (a, b) = rest.split_at(s.clamp(1, rest.len()));
        out.extend_from_slice(format!("{:x}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
        rest = b;
    }
    if !rest.is_empty() {
        out.extend_from_slice(format!("{:X};x=y\r\n", rest.len()).as_bytes());
        out.extend_from_slice(rest);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\nTrailer: 1\r\n\r\n");
    out
}

/// One server for the whole run: echoes the body length, or streams a raw chunked answer
/// for `/stream`.
fn server() -> SocketAddr {
    static ADDR: OnceLock<SocketAddr> = OnceLock::new();
    *ADDR.get_or_init(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        socket2::SockRef::from(&listener)
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let handler: Box<Handler> = Box::new(|mut req: Request| {
            if req.url() == "/stream" {
                let mut w = req.into_writer();
                let _ = w.write_all(
                    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
                );
                return;
            }
            let mut body = Vec::new();
            let read = req.as_reader().take(1 << 20).read_to_end(&mut body);
            let text = format!("{} {}", body.len(), read.is_ok());
            let _ = req.respond(200, &[], text.as_bytes());
        });
        let s: Arc<Server> = Server::new(2, 256, handler);
        s.start(listener).unwrap();
        addr
    })
}

/// Sends `input` on a fresh connection, half-closes, and reads what comes back.
fn exchange(input: &[u8]) -> Vec<u8> {
    let mut c = TcpStream::connect(server()).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    // The server may answer and close before taking everything.
    let _ = c.write_all(input);
    let _ = c.shutdown(Shutdown::Write);
    let mut out = Vec::new();
    let _ = c.read_to_end(&mut out);
    out
}

fn check_connection(input: &[u8]) -> Result<(), TestCaseError> {
    let reply = exchange(input);
    if !reply.is_empty() {
        prop_assert!(
            reply.starts_with(b"HTTP/1.1 ") || reply.starts_with(b"HTTP/1.0 "),
            "reply: {:?}",
            String::from_utf8_lossy(&reply[..reply.len().min(200)])
        );
    }
    let ok = exchange(b"GET /echo HTTP/1.1\r\nConnection: close\r\n\r\n");
    prop_assert!(
        ok.starts_with(b"HTTP/1.1 200 "),
        "the server stopped answering: {:?}",
        String::from_utf8_lossy(&ok)
    );
    Ok(())
}

#[test]
fn corpus() {
    harness::replay(TARGET, |_, bytes| check_connection(bytes));
}

#[test]
fn connections() {
    let seeds = harness::corpus(TARGET)
        .into_iter()
        .map(|(_, b)| b)
        .collect();
    harness::fuzz(TARGET, 300, mutate::mutated(seeds, DICT), |input| {
        check_connection(&input.0)
    });
}

#[test]
fn chunked_decoder() {
    let strategy = (
        mutate::mutated(
            vec![
                encode(b"hello world", &[5]),
                encode(&[0xff; 40], &[1, 2, 3]),
            ],
            DICT,
        ),
        1usize..64,
    );
    harness::fuzz(TARGET, 4000, strategy, |(input, buf)| {
        if let Ok(out) = decode(&input.0, *buf) {
            prop_assert!(out.len() <= input.0.len(), "more out than in");
        }
        Ok(())
    });
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(harness::cases(2000)))]
    #[test]
    fn chunked_round_trip(
        data in proptest::collection::vec(any::<u8>(), 0..3000),
        sizes in proptest::collection::vec(1usize..700, 0..8),
        buf in 1usize..100,
    ) {
        let decoded = decode(&encode(&data, &sizes), buf).unwrap();
        prop_assert_eq!(decoded, data);
    }
}
