//! kt's own HTTP/1.1 client for plain `http://` upstreams when no proxy is configured (a
//! model server on the same host or network: vLLM, Ollama, an internal gateway, the
//! sandbox mock). Everything else — `https://`, proxies from the environment — goes
//! through ureq.
//!
//! Why: under load, ureq's own code was ~14 % of the gateway's CPU per request (perf, c=32:
//! building an `http::Request` from the URL, its header analysis and prelude writer, its
//! response parser, pool lookups, the layered body reader), for what is here one formatted
//! head, one `send`, `httparse` on the bytes of one `recv` and a framed body reader
//! (bench/RESULTS.md, eighth session).
//!
//! What it does, as ureq did for these calls: keep-alive connections pooled per host
//! (most recently used first, at most 256 idle per host and 512 in all, none older than
//! 60 s, each checked with one `recv(MSG_PEEK | MSG_DONTWAIT)` before reuse), a 10 s
//! connect timeout, the call's timeouts (end to end for a call; the wait for the head and
//! each read for a stream), response heads up to 32 KiB, bodies framed by
//! `Content-Length`, chunked encoding or the connection's end, `Content-Encoding: gzip`
//! decoded, no redirects followed. A connection goes back to the pool only when its body
//! was read to the end and nothing followed it.

use std::collections::HashMap;
use std::io::{self, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::tcp::SocketTimeouts;
use super::Timeouts;
use crate::gateway::resolver::CachingResolver;
use crate::openai::ApiError;
use crate::providers::UpstreamRequest;

mod response;
#[cfg(test)]
mod tests;

use response::read_head;
pub use response::{PlainBody, RawHeaders};

/// A connection's read buffer to start with (and what it shrinks back to).
const BUF_START: usize = 8 * 1024;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_IDLE: usize = 512;
const MAX_IDLE_PER_HOST: usize = 256;
const MAX_IDLE_AGE: Duration = Duration::from_secs(60);

/// Idle keep-alive connections by `host:port`.
#[derive(Default)]
pub struct Pool {
    idle: Mutex<Idle>,
}

#[derive(Default)]
struct Idle {
    by_host: HashMap<String, Vec<(Instant, Conn)>>,
    count: usize,
}

impl Pool {
    /// The most recently returned live connection to `host`, if any.
    fn take(&self, host: &str) -> Option<Conn> {
        loop {
            let (since, conn) = {
                let mut idle = self.idle.lock().ok()?;
                let list = idle.by_host.get_mut(host)?;
                let found = list.pop()?;
                idle.count -= 1;
                found
            };
            // Probed outside the lock. Too old, closed by the upstream, or with stray
            // bytes waiting: closed here, and the next one is tried.
            if since.elapsed() < MAX_IDLE_AGE && conn.is_idle() {
                return Some(conn);
            }
        }
    }

    fn put(&self, host: &str, conn: Conn) {
        let Ok(mut idle) = self.idle.lock() else {
            return;
        };
        if idle.count >= MAX_IDLE {
            // Make room: drop the oldest connections of every host.
            let now = Instant::now();
            for list in idle.by_host.values_mut() {
                list.retain(|(since, _)| now.duration_since(*since) < MAX_IDLE_AGE / 2);
            }
            idle.by_host.retain(|_, list| !list.is_empty());
            idle.count = idle.by_host.values().map(Vec::len).sum();
            if idle.count >= MAX_IDLE {
                return;
            }
        }
        if let Some(list) = idle.by_host.get_mut(host) {
            if list.len() >= MAX_IDLE_PER_HOST {
                return;
            }
            list.push((Instant::now(), conn));
        } else {
            idle.by_host
                .insert(host.to_string(), vec![(Instant::now(), conn)]);
        }
        idle.count += 1;
    }

    #[cfg(test)]
    fn idle(&self, host: &str) -> usize {
        self.idle
            .lock()
            .map_or(0, |i| i.by_host.get(host).map_or(0, Vec::len))
    }
}

/// One upstream connection with its read buffer.
struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    timeouts: SocketTimeouts,
}

impl Conn {
    /// Nothing to read and not closed: the upstream is waiting for a request.
    fn is_idle(&self) -> bool {
        super::tcp::waits_for_request(&self.stream)
    }

    /// One read (`read` on the stream) within `timing`, retried when a signal
    /// interrupts it.
    fn recv(
        stream: &TcpStream,
        timeouts: &mut SocketTimeouts,
        timing: Timing,
        mut read: impl FnMut(&TcpStream) -> io::Result<usize>,
    ) -> io::Result<usize> {
        loop {
            timeouts.read(stream, Some(timing.next()?))?;
            match read(stream) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                other => return other,
            }
        }
    }
}

/// How long reads may take.
#[derive(Debug, Clone, Copy)]
enum Timing {
    /// A call: everything before this instant.
    Deadline(Instant),
    /// A stream: each read within this long.
    PerRead(Duration),
}

impl Timing {
    fn next(self) -> io::Result<Duration> {
        match self {
            Timing::Deadline(d) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    Err(timed_out())
                } else {
                    Ok(left)
                }
            }
            Timing::PerRead(t) => Ok(t),
        }
    }
}

fn timed_out() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "timed out")
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}

/// A failed exchange as the client's error, as ureq's were mapped (`transport::map_error`):
/// 504 when it timed out, 502 `bad_upstream_response` for a malformed answer (or gzip
/// stream), 502 `upstream_unreachable` otherwise.
pub fn api_error(e: &io::Error) -> ApiError {
    match e.kind() {
        _ if super::tcp::is_timeout(e) => {
            ApiError::upstream_timeout(format!("upstream timed out ({e})"))
        }
        io::ErrorKind::InvalidData | io::ErrorKind::InvalidInput => {
            ApiError::bad_gateway(format!("upstream request failed: {e}"))
        }
        _ => ApiError::upstream_unreachable(format!("upstream unreachable: {e}")),
    }
}

/// The parts of a plain `http://` URL.
pub struct Url<'a> {
    /// `host:port` as written (the pool key and the `Host` header).
    authority: &'a str,
    host: &'a str,
    port: u16,
    /// Path and query, `/` when empty.
    target: &'a str,
}

/// `url`'s parts when it is plain HTTP this client can take.
pub fn parse_url(url: &str) -> Option<Url<'_>> {
    let rest = url.strip_prefix("http://")?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    let target = tail.split('#').next().unwrap_or_default();
    let target = if target.is_empty() { "/" } else { target };
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !p.contains(']') => (h, p.parse().ok()?),
        _ => (authority, 80),
    };
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if host.is_empty() {
        return None;
    }
    Some(Url {
        authority,
        host,
        port,
        target,
    })
}

/// Sends `up` to `url` (its parsed URL) and reads the response head.
pub fn send(
    pool: &Arc<Pool>,
    resolver: &CachingResolver,
    up: &UpstreamRequest,
    url: &Url<'_>,
    timeouts: Timeouts,
) -> Result<super::UpstreamResponse, ApiError> {
    let (timing, head_wait) = match timeouts {
        Timeouts::Call(t) => {
            let d = Instant::now() + t;
            (Timing::Deadline(d), Timing::Deadline(d))
        }
        Timeouts::Stream(t) => (Timing::PerRead(t), Timing::Deadline(Instant::now() + t)),
    };
    let request = request_bytes(up, url)?;
    let map = |e: io::Error| api_error(&e);
    // A pooled connection the upstream closed just now fails on the write: the request
    // was not delivered, so it goes once more on a new connection.
    let mut conn = match pool.take(url.authority) {
        Some(mut conn) => match write_request(&mut conn, &request, head_wait) {
            Ok(()) => conn,
            Err(e) if super::tcp::is_timeout(&e) => return Err(map(e)),
            Err(_) => fresh(resolver, url, &request, head_wait).map_err(map)?,
        },
        None => fresh(resolver, url, &request, head_wait).map_err(map)?,
    };
    let head = read_head(&mut conn, head_wait).map_err(map)?;
    let headers = RawHeaders::of(&head, &conn.buf);
    let gzip = head.gzip;
    let body = PlainBody::new(&head, conn, timing, pool, url.authority).map_err(map)?;
    Ok(super::UpstreamResponse::plain(
        head.status,
        headers,
        Box::new(body),
        gzip,
    ))
}

/// A new connection with the request written on it.
fn fresh(
    resolver: &CachingResolver,
    url: &Url<'_>,
    request: &[u8],
    timing: Timing,
) -> io::Result<Conn> {
    let addrs = resolver
        .lookup(url.host, url.port)
        .map_err(|e| io::Error::new(io::ErrorKind::NotFound, e))?;
    let budget = timing.next()?.min(CONNECT_TIMEOUT);
    let stream = super::tcp::connect_within(&addrs, budget)?;
    stream.set_nodelay(true)?;
    let mut conn = Conn {
        stream,
        buf: Vec::with_capacity(BUF_START),
        timeouts: SocketTimeouts::default(),
    };
    write_request(&mut conn, request, timing)?;
    Ok(conn)
}

/// The request's head and body, ready to send in one write. Header names and values
/// that would break the message framing are refused.
fn request_bytes(up: &UpstreamRequest, url: &Url<'_>) -> Result<Vec<u8>, ApiError> {
    let mut out = Vec::with_capacity(256 + up.body.len());
    out.extend_from_slice(up.method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(url.target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\nhost: ");
    out.extend_from_slice(url.authority.as_bytes());
    out.extend_from_slice(b"\r\n");
    let mut has = [false; 3];
    const DEFAULTS: [(&str, &str); 3] = [
        ("user-agent", "keeptrusts-kt"),
        ("accept", "*/*"),
        ("accept-encoding", "identity"),
    ];
    for (name, value) in &up.headers {
        let bad_name = name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
        if bad_name || value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
            return Err(ApiError::bad_gateway(format!(
                "upstream request failed: header `{name}` cannot be sent"
            )));
        }
        if name.eq_ignore_ascii_case("host")
            || name.eq_ignore_ascii_case("content-length")
            || name.eq_ignore_ascii_case("transfer-encoding")
        {
            continue;
        }
        for (i, (default, _)) in DEFAULTS.iter().enumerate() {
            has[i] |= name.eq_ignore_ascii_case(default);
        }
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    for (i, (name, value)) in DEFAULTS.iter().enumerate() {
        if !has[i] {
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
    }
    out.extend_from_slice(b"content-length: ");
    out.extend_from_slice(up.body.len().to_string().as_bytes());
    out.extend_from_slice(b"\r\n\r\n");
    out.extend_from_slice(&up.body);
    Ok(out)
}

fn write_request(conn: &mut Conn, request: &[u8], timing: Timing) -> io::Result<()> {
    conn.timeouts.write(&conn.stream, Some(timing.next()?))?;
    (&conn.stream).write_all(request)
}
