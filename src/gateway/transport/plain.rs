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
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustix::net::RecvFlags;

use super::Timeouts;
use crate::gateway::resolver::CachingResolver;
use crate::openai::ApiError;
use crate::providers::UpstreamRequest;

/// Largest response head.
const MAX_HEAD: usize = 32 * 1024;
/// Most response headers parsed.
const MAX_HEADERS: usize = 128;
/// A connection's read buffer to start with (and what it shrinks back to).
const BUF_START: usize = 8 * 1024;
/// Longest chunk-size or trailer line.
const MAX_LINE: usize = 4 * 1024;
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
    /// The socket's current SO_RCVTIMEO / SO_SNDTIMEO.
    read_timeout: Option<Duration>,
    write_timeout: Option<Duration>,
}

impl Conn {
    /// Nothing to read and not closed: the upstream is waiting for a request.
    fn is_idle(&self) -> bool {
        let mut byte = [0u8; 1];
        matches!(
            rustix::net::recv(&self.stream, &mut byte[..], RecvFlags::PEEK | RecvFlags::DONTWAIT),
            Err(e) if e == rustix::io::Errno::AGAIN
        )
    }

    fn set_read_timeout(&mut self, wanted: Option<Duration>) -> io::Result<()> {
        if !super::tcp::close_enough(self.read_timeout, wanted) {
            self.stream.set_read_timeout(wanted)?;
            self.read_timeout = wanted;
        }
        Ok(())
    }

    fn set_write_timeout(&mut self, wanted: Option<Duration>) -> io::Result<()> {
        if !super::tcp::close_enough(self.write_timeout, wanted) {
            self.stream.set_write_timeout(wanted)?;
            self.write_timeout = wanted;
        }
        Ok(())
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

/// The parts of a plain `http://` URL.
struct Url<'a> {
    /// `host:port` as written (the pool key and the `Host` header).
    authority: &'a str,
    host: &'a str,
    port: u16,
    /// Path and query, `/` when empty.
    target: &'a str,
}

fn parse_url(url: &str) -> Option<Url<'_>> {
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

/// Whether this client takes `url`: plain HTTP it can parse.
pub fn handles(url: &str) -> bool {
    parse_url(url).is_some()
}

/// Sends `up` and reads the response head.
pub fn send(
    pool: &Arc<Pool>,
    resolver: &CachingResolver,
    up: &UpstreamRequest,
    timeouts: Timeouts,
) -> Result<super::UpstreamResponse, ApiError> {
    let url = parse_url(&up.url).ok_or_else(|| {
        ApiError::bad_gateway(format!("upstream request failed: bad URL {}", up.url))
    })?;
    let (timing, head_wait) = match timeouts {
        Timeouts::Call(t) => {
            let d = Instant::now() + t;
            (Timing::Deadline(d), Timing::Deadline(d))
        }
        Timeouts::Stream(t) => (Timing::PerRead(t), Timing::Deadline(Instant::now() + t)),
    };
    let request = request_bytes(up, &url)?;
    let map = |e: io::Error| {
        if matches!(
            e.kind(),
            io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
        ) {
            ApiError::upstream_timeout(format!("upstream timed out ({e})"))
        } else if e.kind() == io::ErrorKind::InvalidData {
            ApiError::bad_gateway(format!("upstream request failed: {e}"))
        } else {
            ApiError::upstream_unreachable(format!("upstream unreachable: {e}"))
        }
    };
    // A pooled connection the upstream closed just now fails on the write: the request
    // was not delivered, so it goes once more on a new connection.
    let mut conn = match pool.take(url.authority) {
        Some(mut conn) => match write_request(&mut conn, &request, head_wait) {
            Ok(()) => conn,
            Err(e) if is_timeout(&e) => return Err(map(e)),
            Err(_) => fresh(resolver, &url, &request, head_wait).map_err(map)?,
        },
        None => fresh(resolver, &url, &request, head_wait).map_err(map)?,
    };
    let head = read_head(&mut conn, head_wait).map_err(map)?;
    let headers = RawHeaders {
        head: conn
            .buf
            .get(..head.len)
            .map(<[u8]>::to_vec)
            .unwrap_or_default(),
        hide_length_and_encoding: head.gzip,
    };
    let body = PlainBody::new(&head, conn, timing, pool, url.authority).map_err(map)?;
    Ok(super::UpstreamResponse::plain(
        head.status,
        headers,
        Box::new(body),
        head.gzip,
    ))
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
    )
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
    let budget = match timing.next() {
        Ok(left) => left.min(CONNECT_TIMEOUT),
        Err(e) => return Err(e),
    };
    let stream = super::tcp::connect_within(&addrs, budget)?;
    stream.set_nodelay(true)?;
    let mut conn = Conn {
        stream,
        buf: Vec::with_capacity(BUF_START),
        read_timeout: None,
        write_timeout: None,
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
    conn.set_write_timeout(Some(timing.next()?))?;
    (&conn.stream).write_all(request)
}

/// A parsed response head: what framing the body needs; its length is where the body
/// starts in the buffer. The headers stay bytes ([`RawHeaders`]), read only when asked
/// (error answers): an upstream like OpenAI sends ~20 of them, an allocation or two each
/// as an `http::HeaderMap`.
struct Head {
    status: u16,
    /// HTTP/1.1 without `Connection: close`.
    keep_alive: bool,
    /// The last `Transfer-Encoding` value ends in `chunked` (`None`: no such header).
    chunked: Option<bool>,
    /// `Content-Length` (`Err`: invalid or conflicting).
    length: Result<Option<u64>, &'static str>,
    gzip: bool,
    len: usize,
}

/// A response head's bytes; header lookups parse them again.
pub struct RawHeaders {
    head: Vec<u8>,
    /// Headers that no longer describe the (decoded) body: left out of lookups.
    hide_length_and_encoding: bool,
}

impl RawHeaders {
    /// Every header as (name, value) bytes, in order.
    fn each(&self, mut f: impl FnMut(&str, &[u8])) {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut resp = httparse::Response::new(&mut headers);
        if resp.parse(&self.head).is_err() {
            return;
        }
        for h in resp.headers.iter() {
            let hidden = self.hide_length_and_encoding
                && (h.name.eq_ignore_ascii_case("content-length")
                    || h.name.eq_ignore_ascii_case("content-encoding"));
            if !hidden {
                f(h.name, h.value);
            }
        }
    }

    /// The first value of header `name` (any case) that is text.
    pub fn get(&self, name: &str) -> Option<&str> {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut resp = httparse::Response::new(&mut headers);
        resp.parse(&self.head).ok()?;
        let hidden = self.hide_length_and_encoding
            && (name.eq_ignore_ascii_case("content-length")
                || name.eq_ignore_ascii_case("content-encoding"));
        if hidden {
            return None;
        }
        resp.headers
            .iter()
            .filter(|h| h.name.eq_ignore_ascii_case(name))
            .find_map(|h| std::str::from_utf8(h.value).ok())
    }

    /// Every header whose value is text, names in lower case (as `http::HeaderMap`
    /// gives them), in order.
    pub fn pairs(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        self.each(|name, value| {
            if let Ok(v) = std::str::from_utf8(value) {
                out.push((name.to_ascii_lowercase(), v.to_string()));
            }
        });
        out
    }
}

/// Reads into `conn.buf` until a final (non-1xx) response head is complete.
fn read_head(conn: &mut Conn, timing: Timing) -> io::Result<Head> {
    conn.buf.clear();
    loop {
        if let Some(head) = parse_head(&conn.buf)? {
            if (100..200).contains(&head.status) && head.status != 101 {
                // An interim response (100 Continue, 103 Early Hints): the real one follows.
                conn.buf.drain(..head.len);
                continue;
            }
            return Ok(head);
        }
        if conn.buf.len() >= MAX_HEAD {
            return Err(invalid("the response head is over 32 KiB"));
        }
        if fill(conn, timing)? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the upstream closed the connection before the response head",
            ));
        }
    }
}

/// Reads more bytes onto the end of `conn.buf`.
fn fill(conn: &mut Conn, timing: Timing) -> io::Result<usize> {
    if conn.buf.capacity() - conn.buf.len() < 1024 {
        conn.buf.reserve(conn.buf.capacity().max(BUF_START));
    }
    let start = conn.buf.len();
    let spare = conn.buf.capacity() - start;
    conn.buf.resize(start + spare, 0);
    let result = read_socket(conn, timing, start);
    let n = *result.as_ref().unwrap_or(&0);
    conn.buf.truncate(start + n);
    result
}

/// One `recv` into `conn.buf[at..]`, within the timing (retried when a signal
/// interrupts it).
fn read_socket(conn: &mut Conn, timing: Timing, at: usize) -> io::Result<usize> {
    loop {
        conn.set_read_timeout(Some(timing.next()?))?;
        let Conn { stream, buf, .. } = conn;
        match stream.read(buf.get_mut(at..).unwrap_or_default()) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            other => return other,
        }
    }
}

fn parse_head(buf: &[u8]) -> io::Result<Option<Head>> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut headers);
    let len = match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(invalid(&format!("invalid response head ({e})"))),
    };
    let mut head = Head {
        status: resp.code.unwrap_or(0),
        keep_alive: resp.version == Some(1),
        chunked: None,
        length: Ok(None),
        gzip: false,
        len,
    };
    let is = |t: &[u8], word: &[u8]| t.trim_ascii().eq_ignore_ascii_case(word);
    for h in resp.headers.iter() {
        let name = h.name;
        if name.eq_ignore_ascii_case("connection") {
            if h.value.split(|&b| b == b',').any(|t| is(t, b"close")) {
                head.keep_alive = false;
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            // The last coding of the last such header decides.
            let last = h.value.rsplit(|&b| b == b',').next();
            head.chunked = Some(last.is_some_and(|t| is(t, b"chunked")));
        } else if name.eq_ignore_ascii_case("content-length") {
            let n = std::str::from_utf8(h.value)
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok());
            head.length = match (head.length, n) {
                (Err(e), _) => Err(e),
                (_, None) => Err("invalid Content-Length"),
                (Ok(None), Some(n)) => Ok(Some(n)),
                (Ok(Some(m)), Some(n)) if m == n => Ok(Some(n)),
                (Ok(Some(_)), Some(_)) => Err("conflicting Content-Length headers"),
            };
        } else if name.eq_ignore_ascii_case("content-encoding") {
            head.gzip = h.value.trim_ascii().eq_ignore_ascii_case(b"gzip");
        }
    }
    Ok(Some(head))
}

/// How the body ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// This many bytes are left.
    Length(u64),
    Chunked(Chunk),
    /// At the connection's end.
    Close,
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    Size,
    Data(u64),
    DataEnd,
    Trailer,
}

/// The body of a response from [`send`]: a reader that returns its connection to the
/// pool when it has read the body to the end.
pub struct PlainBody {
    conn: Option<Conn>,
    /// Unread body bytes are `conn.buf[pos..]`.
    pos: usize,
    framing: Framing,
    timing: Timing,
    reusable: bool,
    pool: Arc<Pool>,
    host: String,
    content_length: Option<u64>,
}

impl PlainBody {
    /// The body after `head` (already in `conn.buf`). `Err` for contradictory framing.
    fn new(
        head: &Head,
        conn: Conn,
        timing: Timing,
        pool: &Arc<Pool>,
        host: &str,
    ) -> io::Result<PlainBody> {
        let chunked = head.chunked;
        let length = head.length.map_err(invalid)?;
        let (framing, reusable) = if head.status == 204 || head.status == 304 {
            (Framing::Done, head.keep_alive)
        } else {
            match (chunked, length) {
                (Some(true), _) => (Framing::Chunked(Chunk::Size), head.keep_alive),
                // A transfer coding that does not end in chunked: the body runs to the end.
                (Some(false), _) => (Framing::Close, false),
                (None, Some(n)) => (Framing::Length(n), head.keep_alive),
                (None, None) => (Framing::Close, false),
            }
        };
        let mut body = PlainBody {
            conn: Some(conn),
            pos: head.len,
            framing,
            timing,
            reusable,
            pool: Arc::clone(pool),
            host: host.to_string(),
            content_length: length.filter(|_| chunked.is_none()),
        };
        if body.framing == Framing::Done || body.framing == Framing::Length(0) {
            body.finish();
        }
        Ok(body)
    }

    pub fn content_length(&self) -> Option<u64> {
        self.content_length
    }

    /// The body ended: the connection goes back to the pool if it can carry another
    /// request (nothing unread after the body).
    fn finish(&mut self) {
        self.framing = Framing::Done;
        if let Some(mut conn) = self.conn.take() {
            if self.reusable && self.pos >= conn.buf.len() {
                conn.buf.clear();
                if conn.buf.capacity() > 4 * BUF_START {
                    conn.buf = Vec::with_capacity(BUF_START);
                }
                self.pool.put(&self.host, conn);
            }
        }
    }

    /// Up to `limit` body bytes into `out`: buffered ones first, else one `recv`.
    fn read_some(&mut self, out: &mut [u8], limit: u64) -> io::Result<usize> {
        let Some(conn) = self.conn.as_mut() else {
            return Ok(0);
        };
        let want = out.len().min(usize::try_from(limit).unwrap_or(usize::MAX));
        let buffered = conn.buf.len().saturating_sub(self.pos);
        if buffered > 0 {
            let n = want.min(buffered);
            out[..n].copy_from_slice(&conn.buf[self.pos..self.pos + n]);
            self.pos += n;
            return Ok(n);
        }
        loop {
            conn.set_read_timeout(Some(self.timing.next()?))?;
            match (&conn.stream).read(&mut out[..want]) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                other => return other,
            }
        }
    }

    /// [`read_some`](Self::read_some) of bytes the framing says are coming (`left` > 0):
    /// the connection's end first is an error, and the connection is not reused.
    fn read_owed(&mut self, out: &mut [u8], left: u64) -> io::Result<usize> {
        let n = self.read_some(out, left)?;
        if n == 0 {
            self.conn = None;
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the upstream closed the connection before the end of the body",
            ));
        }
        Ok(n)
    }

    /// The next line (without its CRLF) of a chunked body, as a range of `conn.buf`.
    fn line(&mut self) -> io::Result<std::ops::Range<usize>> {
        let timing = self.timing;
        let conn = self
            .conn
            .as_mut()
            .ok_or_else(|| invalid("body already ended"))?;
        loop {
            if let Some(i) = conn.buf[self.pos..].iter().position(|&b| b == b'\n') {
                let start = self.pos;
                let mut end = start + i;
                self.pos = end + 1;
                if end > start && conn.buf[end - 1] == b'\r' {
                    end -= 1;
                }
                return Ok(start..end);
            }
            if conn.buf.len() - self.pos > MAX_LINE {
                return Err(invalid("chunk line too long"));
            }
            // Keep only the unread bytes before reading more.
            conn.buf.drain(..self.pos);
            self.pos = 0;
            if fill(conn, timing)? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the upstream closed the connection inside a chunked body",
                ));
            }
        }
    }

    fn line_text(&self, range: std::ops::Range<usize>) -> &[u8] {
        self.conn
            .as_ref()
            .and_then(|c| c.buf.get(range))
            .unwrap_or_default()
    }
}

impl Read for PlainBody {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        loop {
            match self.framing {
                Framing::Done => return Ok(0),
                Framing::Length(left) => {
                    let n = self.read_owed(out, left)?;
                    let left = left - n as u64;
                    self.framing = Framing::Length(left);
                    if left == 0 {
                        self.finish();
                    }
                    return Ok(n);
                }
                Framing::Close => {
                    let n = self.read_some(out, u64::MAX)?;
                    if n == 0 {
                        self.framing = Framing::Done;
                        self.conn = None;
                    }
                    return Ok(n);
                }
                Framing::Chunked(Chunk::Data(left)) => {
                    let n = self.read_owed(out, left)?;
                    let left = left - n as u64;
                    self.framing = Framing::Chunked(if left == 0 {
                        Chunk::DataEnd
                    } else {
                        Chunk::Data(left)
                    });
                    return Ok(n);
                }
                Framing::Chunked(Chunk::Size) => {
                    let range = self.line()?;
                    let size = parse_chunk_size(self.line_text(range))?;
                    self.framing = Framing::Chunked(if size == 0 {
                        Chunk::Trailer
                    } else {
                        Chunk::Data(size)
                    });
                }
                Framing::Chunked(Chunk::DataEnd) => {
                    let range = self.line()?;
                    if !range.is_empty() {
                        return Err(invalid("chunk data not followed by CRLF"));
                    }
                    self.framing = Framing::Chunked(Chunk::Size);
                }
                Framing::Chunked(Chunk::Trailer) => {
                    if self.line()?.is_empty() {
                        self.finish();
                        return Ok(0);
                    }
                }
            }
        }
    }
}

/// A chunk-size line: hex digits, then optional `;extensions`.
fn parse_chunk_size(line: &[u8]) -> io::Result<u64> {
    let digits = line
        .split(|&b| b == b';')
        .next()
        .unwrap_or_default()
        .trim_ascii();
    std::str::from_utf8(digits)
        .ok()
        .filter(|d| !d.is_empty() && d.len() <= 15)
        .and_then(|d| u64::from_str_radix(d, 16).ok())
        .ok_or_else(|| invalid("invalid chunk size"))
}

#[cfg(test)]
mod tests {
    use super::super::UpstreamResponse;
    use super::*;
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

    #[test]
    fn chunk_sizes() {
        assert_eq!(parse_chunk_size(b"1a").unwrap(), 26);
        assert_eq!(parse_chunk_size(b" A ;ext=1").unwrap(), 10);
        assert!(parse_chunk_size(b"").is_err());
        assert!(parse_chunk_size(b"zz").is_err());
        assert!(parse_chunk_size(b"ffffffffffffffffff").is_err());
    }
}
