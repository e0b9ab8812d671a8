//! kt's HTTP/1.1 server: a thread per connection that parses each request (`httparse`),
//! runs the handler and writes the answer itself.
//!
//! tiny_http, which this replaces, parsed requests on a connection thread and handed each
//! one to a worker through a queue: two threads and several wake-ups per request, the
//! largest item of the gateway's own cost under load (bench/RESULTS.md). Here one thread
//! does it all, and connection threads are pooled: an idle one takes the next accepted
//! connection, a new one starts when none is idle, and threads above the minimum exit
//! after `IDLE_EXIT` without work.
//!
//! Hostile input: the request head is bounded in size (431) and in time (408); bodies are
//! framed by `Content-Length` or `chunked` (`body`); anything else is a 400 and the
//! connection closes. Accept errors (EMFILE) are retried, never fatal.

pub mod body;
pub mod date;
pub mod request;

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use body::{Body, Chunk};
use request::{take_home, write_response, Home, Io};
pub use request::{Header, Headers, Method, Request, Upgraded};

/// Request line and headers together may not exceed this (the header limits of
/// `http::check_head` apply on top).
pub const MAX_HEAD: usize = super::http::MAX_HEADER_BYTES + 8 * 1024;
/// Header fields parsed; more is a 431 (`http::check_head` allows fewer).
const HEADER_SLOTS: usize = 128;
/// A request head must arrive within this, however slowly it trickles.
const HEAD_DEADLINE: Duration = Duration::from_secs(10);
/// A connection thread above the minimum that waits this long for a connection exits.
const IDLE_EXIT: Duration = Duration::from_secs(30);
/// Stack of a connection thread: handlers keep large data on the heap.
const STACK: usize = 256 * 1024;
/// Unread body a finished request may leave; more and the connection closes.
const DRAIN_LIMIT: u64 = 256 * 1024;
/// Reading buffer of a connection.
const READ_BUFFER: usize = 16 * 1024;

/// What a connection thread does with each request.
pub type Handler = dyn Fn(Request) + Send + Sync;

/// The server's shared state: the pool of connection threads and what shutdown needs.
pub struct Server {
    min: usize,
    max: usize,
    pool: Mutex<PoolState>,
    wake: Condvar,
    /// Requests being handled now.
    busy: AtomicUsize,
    stopping: AtomicBool,
    handler: Box<Handler>,
}

#[derive(Default)]
struct PoolState {
    total: usize,
    idle: usize,
    queue: VecDeque<TcpStream>,
}

impl Server {
    /// `min` threads are kept; at most `max` connections are served at once (more are
    /// answered 503 and closed).
    pub fn new(min: usize, max: usize, handler: Box<Handler>) -> Arc<Server> {
        let min = min.max(1);
        Arc::new(Server {
            min,
            max: max.max(min),
            pool: Mutex::new(PoolState::default()),
            wake: Condvar::new(),
            busy: AtomicUsize::new(0),
            stopping: AtomicBool::new(false),
            handler,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, PoolState> {
        self.pool
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Starts the minimum threads and the accept loop.
    pub fn start(self: &Arc<Self>, listener: TcpListener) -> std::io::Result<()> {
        for _ in 0..self.min {
            self.lock().total += 1;
            let server = self.clone();
            if let Err(e) = std::thread::Builder::new()
                .name("kt-conn".into())
                .stack_size(STACK)
                .spawn(move || server.park())
            {
                self.lock().total -= 1;
                return Err(e);
            }
        }
        let server = self.clone();
        std::thread::Builder::new()
            .name("kt-accept".into())
            .spawn(move || server.accept_loop(&listener))
            .map(drop)
    }

    /// Requests being handled now.
    pub fn busy(&self) -> usize {
        self.busy.load(Ordering::SeqCst)
    }

    /// Connection threads alive now.
    pub fn threads(&self) -> usize {
        self.lock().total
    }

    /// Stops accepting; requests read from now on are answered 503. `addr` is the
    /// listener's, to wake the accept loop.
    pub fn stop(&self, addr: SocketAddr) {
        self.stopping.store(true, Ordering::SeqCst);
        let wake = if addr.ip().is_unspecified() {
            SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), addr.port())
        } else {
            addr
        };
        drop(TcpStream::connect_timeout(
            &wake,
            Duration::from_millis(200),
        ));
        self.wake.notify_all();
    }

    fn accept_loop(self: &Arc<Self>, listener: &TcpListener) {
        let mut backoff = Duration::from_millis(5);
        while !self.stopping.load(Ordering::SeqCst) {
            match listener.accept() {
                Ok((stream, _)) => {
                    backoff = Duration::from_millis(5);
                    if self.stopping.load(Ordering::SeqCst) {
                        break;
                    }
                    self.dispatch(stream);
                }
                // The listener's read timeout also bounds accept(): nothing arrived.
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock
                            | std::io::ErrorKind::TimedOut
                            | std::io::ErrorKind::Interrupted
                            | std::io::ErrorKind::ConnectionAborted
                            | std::io::ErrorKind::ConnectionReset
                    ) => {}
                Err(e) => {
                    // Out of descriptors (EMFILE/ENFILE) or memory: wait for connections
                    // to end, then accept again. Never give up on the listener.
                    crate::logging::error(&format!("accept failed: {e}; retrying"));
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(Duration::from_millis(500));
                }
            }
        }
    }

    /// Gives a new connection to an idle thread, or starts one.
    fn dispatch(self: &Arc<Self>, stream: TcpStream) {
        let mut pool = self.lock();
        if pool.idle > pool.queue.len() {
            pool.queue.push_back(stream);
            drop(pool);
            self.wake.notify_one();
            return;
        }
        if pool.total >= self.max {
            drop(pool);
            refuse(stream);
            return;
        }
        pool.total += 1;
        drop(pool);
        let server = self.clone();
        let (tx, rx) = std::sync::mpsc::sync_channel::<TcpStream>(1);
        let spawned = std::thread::Builder::new()
            .name("kt-conn".into())
            .stack_size(STACK)
            .spawn(move || {
                if let Ok(stream) = rx.recv() {
                    server.connection(stream);
                }
                server.park();
            });
        match spawned {
            Ok(_) => {
                let _ = tx.send(stream); // The thread waits for it.
            }
            Err(e) => {
                self.lock().total -= 1;
                crate::logging::error(&format!("failed to start a connection thread: {e}"));
                refuse(stream);
            }
        }
    }

    /// An idle thread: serves queued connections until it has waited `IDLE_EXIT` for one
    /// (and the pool is above its minimum) or the server stops.
    fn park(self: &Arc<Self>) {
        let mut pool = self.lock();
        loop {
            pool.idle += 1;
            let deadline = Instant::now() + IDLE_EXIT;
            while pool.queue.is_empty() && !self.stopping.load(Ordering::SeqCst) {
                let now = Instant::now();
                if now >= deadline {
                    break;
                }
                pool = self
                    .wake
                    .wait_timeout(pool, deadline - now)
                    .map(|(g, _)| g)
                    .unwrap_or_else(|e| e.into_inner().0);
            }
            pool.idle -= 1;
            if let Some(stream) = pool.queue.pop_front() {
                drop(pool);
                self.connection(stream);
                pool = self.lock();
                continue;
            }
            if self.stopping.load(Ordering::SeqCst) || pool.total > self.min {
                pool.total -= 1;
                return;
            }
        }
    }

    /// Serves one connection's requests until it closes.
    fn connection(&self, stream: TcpStream) {
        let remote = stream.peer_addr().ok();
        let Ok(writer) = stream.try_clone() else {
            return;
        };
        let home: Home = Arc::new(Mutex::new(None));
        let mut io = Io::new(stream, writer, READ_BUFFER);
        loop {
            let head = match read_head(&mut io.reader) {
                Ok(Some(head)) => head,
                Ok(None) => return,
                Err(HeadError::Refuse(status, message)) => {
                    io.close = true;
                    reject(&mut io, status, &message);
                    return;
                }
            };
            let req = match parse(&head, &mut io) {
                Ok(parsed) => parsed,
                Err((status, message)) => {
                    io.close = true;
                    reject(&mut io, status, &message);
                    return;
                }
            };
            // Counted before looking at `stopping`: shutdown waits for every request
            // that saw it unset (see `stop`).
            self.busy.fetch_add(1, Ordering::SeqCst);
            if self.stopping.load(Ordering::SeqCst) {
                self.busy.fetch_sub(1, Ordering::SeqCst);
                io.close = true;
                reject(&mut io, 503, "The gateway is shutting down; retry.");
                return;
            }
            let (method, url, headers, body_length) = req;
            let request = Request::new(method, url, headers, remote, body_length, io, home.clone());
            let handled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                (self.handler)(request);
            }));
            self.busy.fetch_sub(1, Ordering::SeqCst);
            if handled.is_err() {
                crate::logging::error("a request handler panicked; it was answered 500");
            }
            // The request was answered (its `Io` came home) or the connection was taken
            // (upgraded).
            let Some(back) = take_home(&home) else {
                return;
            };
            io = back;
            if !io.close && !io.body.is_done() {
                // An unread body: drain it unless the client still waits for a
                // `100 Continue` (it may never send it) or it is large.
                if io.continue_pending || !io.body.drain(&mut io.reader, DRAIN_LIMIT) {
                    io.close = true;
                }
            }
            if io.close || self.stopping.load(Ordering::SeqCst) {
                linger(&io);
                return;
            }
        }
    }
}

/// Why a request head was refused: status and message.
enum HeadError {
    Refuse(u16, String),
}

/// Reads one request head (up to and including its empty line). `None`: the connection
/// closed or stayed idle before a request began.
fn read_head(reader: &mut BufReader<TcpStream>) -> Result<Option<Vec<u8>>, HeadError> {
    let mut head: Vec<u8> = Vec::new();
    let started = Instant::now();
    loop {
        let buf = match reader.fill_buf() {
            Ok(buf) => buf,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) if is_timeout(&e) && !head.is_empty() => {
                return Err(HeadError::Refuse(
                    408,
                    "The request head did not arrive in time.".into(),
                ))
            }
            Err(_) => return Ok(None),
        };
        if buf.is_empty() {
            return Ok(None);
        }
        let mut buf = buf;
        let mut skipped = 0;
        if head.is_empty() {
            // Empty lines before a request line are ignored (RFC 9112 §2.2).
            while let Some((&b, rest)) = buf.split_first() {
                if b != b'\r' && b != b'\n' {
                    break;
                }
                buf = rest;
                skipped += 1;
            }
            if buf.is_empty() {
                reader.consume(skipped);
                continue;
            }
        }
        let old = head.len();
        head.extend_from_slice(buf);
        let from = old.saturating_sub(3);
        if let Some(end) = find_head_end(&head[from..]).map(|e| e + from) {
            head.truncate(end);
            reader.consume(skipped + end - old);
            if head.len() > MAX_HEAD {
                return Err(too_large());
            }
            return Ok(Some(head));
        }
        let n = buf.len();
        reader.consume(skipped + n);
        if head.len() > MAX_HEAD {
            return Err(too_large());
        }
        if started.elapsed() > HEAD_DEADLINE {
            return Err(HeadError::Refuse(
                408,
                "The request head did not arrive in time.".into(),
            ));
        }
    }
}

fn too_large() -> HeadError {
    HeadError::Refuse(
        431,
        format!("The request head exceeds the gateway limit of {MAX_HEAD} bytes."),
    )
}

/// The end of a head: just past its `\r\n\r\n` (or `\n\n`).
fn find_head_end(bytes: &[u8]) -> Option<usize> {
    let mut i = 0;
    while let Some(p) = bytes[i..].iter().position(|b| *b == b'\n') {
        let at = i + p;
        let rest = &bytes[at + 1..];
        if rest.first() == Some(&b'\n') {
            return Some(at + 2);
        }
        if rest.starts_with(b"\r\n") {
            return Some(at + 3);
        }
        i = at + 1;
    }
    None
}

type Parsed = (Method, String, Headers, Option<usize>);

/// Parses a head and sets up the body framing on `io`.
fn parse(head: &[u8], io: &mut Io) -> Result<Parsed, (u16, String)> {
    let mut slots = [httparse::EMPTY_HEADER; HEADER_SLOTS];
    let mut req = httparse::Request::new(&mut slots);
    match req.parse(head) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => {
            return Err((400, "The request head is incomplete.".into()));
        }
        Err(httparse::Error::TooManyHeaders) => {
            return Err((
                431,
                format!("The request has more than {HEADER_SLOTS} header fields."),
            ));
        }
        Err(httparse::Error::Version) => {
            return Err((505, "The gateway speaks HTTP/1.0 and HTTP/1.1.".into()));
        }
        Err(e) => return Err((400, format!("Malformed request: {e}."))),
    }
    let method = Method::parse(req.method.unwrap_or_default());
    let url = req.path.unwrap_or("/").to_string();
    let http10 = req.version == Some(0);
    let mut headers = Headers::with_capacity(
        req.headers.len(),
        req.headers
            .iter()
            .map(|h| h.name.len() + h.value.len())
            .sum(),
    );
    for h in req.headers.iter() {
        headers.push(h.name, &String::from_utf8_lossy(h.value));
    }

    let mut close = http10;
    let mut chunked = false;
    let mut other_coding = false;
    let mut length: Option<u64> = None;
    let mut expect_continue = false;
    for h in headers.iter() {
        let name = h.name;
        if name.eq_ignore_ascii_case("content-length") {
            let v = h.value.trim();
            let n = (!v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
                .then(|| v.parse::<u64>().ok())
                .flatten()
                .ok_or_else(|| (400, format!("Invalid Content-Length `{v}`.")))?;
            if length.is_some_and(|l| l != n) {
                return Err((400, "Conflicting Content-Length headers.".into()));
            }
            length = Some(n);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            for coding in h.value.split(',').map(str::trim).filter(|c| !c.is_empty()) {
                if coding.eq_ignore_ascii_case("chunked") {
                    chunked = true;
                } else if !coding.eq_ignore_ascii_case("identity") {
                    other_coding = true;
                }
            }
        } else if name.eq_ignore_ascii_case("connection") {
            for token in h.value.split(',').map(str::trim) {
                if token.eq_ignore_ascii_case("close") {
                    close = true;
                }
            }
        } else if name.eq_ignore_ascii_case("expect") {
            if h.value.trim().eq_ignore_ascii_case("100-continue") {
                expect_continue = !http10;
            } else {
                return Err((417, format!("Unsupported expectation `{}`.", h.value)));
            }
        }
    }
    if other_coding {
        return Err((
            501,
            "Unsupported Transfer-Encoding: the gateway reads `chunked` request bodies only."
                .into(),
        ));
    }
    let (body, body_length) = if chunked {
        // With both framings, chunked wins and the connection ends after the request
        // (RFC 9112 §6.3): no second request can be smuggled in the body.
        if length.is_some() {
            close = true;
        }
        (Body::Chunked(Chunk::Size), None)
    } else {
        let n = length.unwrap_or(0);
        (
            Body::Length(n),
            length.map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
        )
    };
    io.body = body;
    io.http10 = http10;
    io.close = close;
    io.continue_pending = expect_continue && !body.is_done();
    Ok((method, url, headers, body_length))
}

/// Answers a request the connection layer refuses, in OpenAI's error shape.
fn reject(io: &mut Io, status: u16, message: &str) {
    let body = serde_json::json!({"error": {
        "message": message,
        "type": "invalid_request_error",
        "param": null,
        "code": null,
    }})
    .to_string();
    let headers = [("Content-Type".to_string(), "application/json".to_string())];
    // The client may be gone already.
    let _ = write_response(io, status, &[&headers], body.as_bytes(), false);
    linger(io);
}

/// The gateway is at its connection limit: a 503 and close.
fn refuse(stream: TcpStream) {
    let Ok(writer) = stream.try_clone() else {
        return;
    };
    let mut io = Io::new(stream, writer, 1024);
    io.close = true;
    reject(
        &mut io,
        503,
        "The gateway is at its connection limit; retry shortly.",
    );
}

/// Closes a connection without destroying the answer just written: closing a socket with
/// unread input sends a reset that can overtake the answer, so stop writing, read what
/// the client still sends for a moment, then close.
fn linger(io: &Io) {
    let stream = io.reader.get_ref();
    if stream.shutdown(Shutdown::Write).is_err() {
        return;
    }
    if stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .is_err()
    {
        return;
    }
    let mut buf = [0u8; 8192];
    let deadline = Instant::now() + Duration::from_secs(1);
    let mut s = stream;
    while Instant::now() < deadline {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}

#[cfg(test)]
mod tests;
